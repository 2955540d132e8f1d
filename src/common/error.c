/* The one error model: codes with fixed sentences, plus a thread-local
 * detail saying what exactly went wrong in the last failing call. */
#include "common/error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* 512 bytes holds any detail we write (a sentence with a few quoted,
 * truncated values); longer text is cut, never overrun. */
#define NXC_DETAIL_SIZE 512

static _Thread_local char tls_detail[NXC_DETAIL_SIZE];

int nxc_fail(int code, const char *fmt, ...)
{
    /* Format into a scratch buffer first: callers may pass nxc_last_error()
     * itself as an argument to wrap an inner detail with more context, and
     * vsnprintf into its own source is undefined. */
    char scratch[NXC_DETAIL_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(scratch, sizeof scratch, fmt, ap);
    va_end(ap);
    memcpy(tls_detail, scratch, sizeof tls_detail);
    return code;
}

void nxc_clear_error(void)
{
    tls_detail[0] = '\0';
}

const char *nxc_last_error(void)
{
    return tls_detail;
}

const char *nxc_quote(const char *s, size_t n, char *buf, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    /* Room for the closing quote, an ellipsis and the NUL. */
    if (size < 8)
        return "\"\"";
    buf[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? 1 : 4;
        if (o + need + 5 > size) {
            memcpy(buf + o, "\"...", 4);
            o += 4;
            buf[o] = '\0';
            return buf;
        }
        if (need == 1) {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 0xf];
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* Indexed by -code: the code's name and its sentence. */
static const struct {
    const char *name;
    const char *sentence;
} errors[] = {
    { "NXC_OK", "Success." },
    { "NXC_ERR_INVALID_ARG", "An argument is invalid (a NULL handle, an empty list, a zero pointer or a bad setting)." },
    { "NXC_ERR_NO_MEMORY", "Memory could not be allocated." },
    { "NXC_ERR_BAD_METADATA", "The metadata text or its agent blob is malformed." },
    { "NXC_ERR_WRONG_KIND", "The metadata is of the wrong kind (a read needs READ metadata, a write needs WRITE metadata)." },
    { "NXC_ERR_SIZE_MISMATCH", "The local and remote descriptor lists differ in count or in sizes." },
    { "NXC_ERR_STATE", "The operation's state does not allow this call." },
    { "NXC_ERR_TIMED_OUT", "The wait timed out; the operation goes on." },
    { "NXC_ERR_CANCELLED", "The operation was cancelled locally." },
    { "NXC_ERR_PEER_FAILED", "The remote worker died or became unreachable." },
    { "NXC_ERR_PEER_ABORTED", "The remote worker cancelled its side of the operation, or refused this one." },
    { "NXC_ERR_TRANSPORT", "The UCX transport reported an error." },
    { "NXC_ERR_UNSUPPORTED", "The request is not supported by this build or transport." },
    { "NXC_ERR_DEVICE", "A device string is invalid, or descriptors mix device kinds." },
    { "NXC_ERR_SYSTEM", "An operating system call failed." },
    { "NXC_ERR_RECURSIVE", "The call is not allowed from this context (for example from inside a callback)." },
};

static bool known_error(int err)
{
    return err <= 0 && -(long)err < (long)(sizeof errors / sizeof errors[0]);
}

const char *nxc_strerror(int err)
{
    return known_error(err) ? errors[-err].sentence : "Unknown error code.";
}

const char *nxc_err_name(int err)
{
    return known_error(err) ? errors[-err].name : "NXC_ERR_UNKNOWN";
}

#define NXC_STR2(x) #x
#define NXC_STR(x) NXC_STR2(x)

const char *nxc_version(void)
{
    return NXC_STR(NXC_VERSION_MAJOR) "." NXC_STR(NXC_VERSION_MINOR) "." NXC_STR(NXC_VERSION_PATCH);
}

/* Same major, and a library minor at least the header's: minors only add
 * (the soname changes with any ABI break). */
int nxc_check_compatibility(int major, int minor, int patch)
{
    if (major == NXC_VERSION_MAJOR && minor <= NXC_VERSION_MINOR)
        return NXC_OK;
    return nxc_fail(NXC_ERR_UNSUPPORTED,
                    "the program was built with nixl_connect.h %d.%d.%d, but the "
                    "library loaded is %s (needs the same major version and a minor "
                    "version at least as new)", major, minor, patch, nxc_version());
}
