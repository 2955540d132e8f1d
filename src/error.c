/* The one error model: codes with fixed sentences, plus a thread-local
 * detail saying what exactly went wrong in the last failing call. */
#include "error.h"

#include <stdarg.h>
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

const char *nxc_strerror(int err)
{
    switch (err) {
    case NXC_OK:
        return "Success.";
    case NXC_ERR_INVALID_ARG:
        return "An argument is invalid (a NULL handle, an empty list, a zero pointer or a bad setting).";
    case NXC_ERR_NO_MEMORY:
        return "Memory could not be allocated.";
    case NXC_ERR_BAD_METADATA:
        return "The metadata text or its agent blob is malformed.";
    case NXC_ERR_WRONG_KIND:
        return "The metadata is of the wrong kind (a read needs READ metadata, a write needs WRITE metadata).";
    case NXC_ERR_SIZE_MISMATCH:
        return "The local and remote descriptor lists differ in count or in sizes.";
    case NXC_ERR_STATE:
        return "The operation's state does not allow this call.";
    case NXC_ERR_TIMED_OUT:
        return "The wait timed out; the operation goes on.";
    case NXC_ERR_CANCELLED:
        return "The operation was cancelled locally.";
    case NXC_ERR_PEER_FAILED:
        return "The remote worker died or became unreachable.";
    case NXC_ERR_PEER_ABORTED:
        return "The remote worker cancelled its side of the operation, or refused this one.";
    case NXC_ERR_TRANSPORT:
        return "The UCX transport reported an error.";
    case NXC_ERR_UNSUPPORTED:
        return "The request is not supported by this build or transport.";
    case NXC_ERR_DEVICE:
        return "A device string is invalid, or descriptors mix device kinds.";
    case NXC_ERR_SYSTEM:
        return "An operating system call failed.";
    case NXC_ERR_RECURSIVE:
        return "The call is not allowed from this context (for example from inside a callback).";
    default:
        return "Unknown error code.";
    }
}

#define NXC_STR2(x) #x
#define NXC_STR(x) NXC_STR2(x)

const char *nxc_version(void)
{
    return NXC_STR(NXC_VERSION_MAJOR) "." NXC_STR(NXC_VERSION_MINOR) "." NXC_STR(NXC_VERSION_PATCH);
}
