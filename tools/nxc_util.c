/* nxc: messages, clocks, sizes and descriptor helpers shared by commands. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "nxc.h"

static char last_msg[512];   /* the last message, for --json results */
static const char *last_code; /* the name of a library's code behind it, or NULL */

static void vmessage(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    vsnprintf(last_msg, sizeof last_msg, fmt, copy);
    va_end(copy);
    last_code = NULL;
    fputs("nxc: ", stderr);
    vfprintf(stderr, fmt, ap);
}

const char *last_message(void)
{
    return last_msg;
}

const char *last_code_name(void)
{
    return last_code;
}

void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return NXC_EXIT_USAGE;
}

int runtime_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return NXC_EXIT_RUNTIME;
}

int vcoded_error(const char *name, const char *sentence, const char *detail,
                 const char *fmt, va_list ap)
{
    char tail[1024];  /* a sentence and a detail of at most 512 bytes */
    bool has_detail = detail && detail[0];
    vmessage(fmt, ap);
    snprintf(tail, sizeof tail, "%s%s%s%s", sentence, has_detail ? " (" : "",
             has_detail ? detail : "", has_detail ? ")" : "");
    fprintf(stderr, ": %s\n", tail);
    size_t n = strlen(last_msg);
    if (snprintf(last_msg + n, sizeof last_msg - n, ": %s", tail) < 0)
        last_msg[n] = '\0';
    last_code = name;
    return NXC_EXIT_RUNTIME;
}

int lib_error(int rc, const char *fmt, ...)
{
    const char *detail = nxc_last_error(); /* before any other nxc_ call */
    va_list ap;
    va_start(ap, fmt);
    vcoded_error(nxc_err_name(rc), nxc_strerror(rc), detail, fmt, ap);
    va_end(ap);
    return NXC_EXIT_RUNTIME;
}

int op_error(nxc_op_t *op, int rc, const char *fmt, ...)
{
    const char *detail = NULL;
    if (op && nxc_op_error(op, &detail) == NXC_OK)
        detail = NULL; /* not ERRORED: timed out or cancelled */
    va_list ap;
    va_start(ap, fmt);
    vcoded_error(nxc_err_name(rc), nxc_strerror(rc), detail, fmt, ap);
    va_end(ap);
    return NXC_EXIT_RUNTIME;
}

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *human_bytes(uint64_t n, char *buf, size_t size)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    unsigned u = 0;
    double v = (double)n;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    if (u == 0 || v == (double)(uint64_t)v)
        snprintf(buf, size, "%llu %s", (unsigned long long)v, units[u]);
    else
        snprintf(buf, size, "%.1f %s", v, units[u]);
    return buf;
}

void split_descs(void *base, uint64_t total, size_t n, nxc_descriptor_t *out)
{
    uint64_t each = total / n, extra = total % n, off = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t sz = each + (i < extra ? 1 : 0);
        out[i].ptr = (char *)base + off;
        out[i].size = sz;
        out[i].device.kind = NXC_DEVICE_HOST;
        out[i].device.id = 0;
        off += sz;
    }
}

int wait_op(nxc_op_t *op, double timeout_s)
{
    int ms = timeout_s > 0 ? (int)(timeout_s * 1000.0 + 0.5) : -1;
    return nxc_op_wait(op, ms);
}
