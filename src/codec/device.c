/* Device strings: "cpu"/"host", "cuda"/"gpu", "cuda:N"/"gpu:N". */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"

#define NXC_DEVICE_ID_MAX 65535

/* The C locale's white space, without depending on the process locale. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static char to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* True if the n bytes at s equal the lowercase word w, ignoring case. */
static bool word_equals(const char *s, size_t n, const char *w)
{
    if (strlen(w) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (to_lower(s[i]) != w[i])
            return false;
    return true;
}

/* Parses 1+ decimal digits making up the whole span, at most 65535.
 * Stops accumulating once over the limit so long inputs cannot overflow. */
static bool parse_ordinal(const char *s, size_t n, int *id)
{
    long v = 0;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
        if (v > NXC_DEVICE_ID_MAX)
            return false;
    }
    *id = (int)v;
    return true;
}

/* Recognizes the trimmed span; false if it is not a device. */
static bool parse_trimmed(const char *s, size_t n, nxc_device_t *dev)
{
    if (word_equals(s, n, "cpu") || word_equals(s, n, "host")) {
        *dev = (nxc_device_t){ .kind = NXC_DEVICE_HOST, .id = 0 };
        return true;
    }
    if (word_equals(s, n, "cuda") || word_equals(s, n, "gpu")) {
        *dev = (nxc_device_t){ .kind = NXC_DEVICE_CUDA, .id = 0 };
        return true;
    }
    const char *colon = memchr(s, ':', n);
    if (colon == NULL)
        return false;
    size_t prefix = (size_t)(colon - s);
    if (!word_equals(s, prefix, "cuda") && !word_equals(s, prefix, "gpu"))
        return false;
    int id;
    if (!parse_ordinal(colon + 1, n - prefix - 1, &id))
        return false;
    *dev = (nxc_device_t){ .kind = NXC_DEVICE_CUDA, .id = id };
    return true;
}

int nxc_device_parse(const char *text, nxc_device_t *out)
{
    nxc_clear_error();
    if (text == NULL || out == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "nxc_device_parse: %s is NULL",
                        text == NULL ? "text" : "out");

    size_t len = strlen(text);
    size_t begin = 0, end = len;
    while (begin < end && is_space(text[begin]))
        begin++;
    while (end > begin && is_space(text[end - 1]))
        end--;

    nxc_device_t dev;
    if (!parse_trimmed(text + begin, end - begin, &dev)) {
        char q[80];
        return nxc_fail(NXC_ERR_DEVICE,
                        "device %s is not \"cpu\", \"host\", \"cuda\", \"gpu\", "
                        "\"cuda:N\" or \"gpu:N\" (N from 0 to %d)",
                        nxc_quote(text, len, q, sizeof q), NXC_DEVICE_ID_MAX);
    }
    *out = dev;
    return NXC_OK;
}

int nxc_device_format(nxc_device_t dev, char *buf, size_t size)
{
    char tmp[16];
    int n;

    nxc_clear_error();
    if (buf == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "nxc_device_format: buf is NULL");
    switch (dev.kind) {
    case NXC_DEVICE_HOST:
        n = snprintf(tmp, sizeof tmp, "cpu");
        break;
    case NXC_DEVICE_CUDA:
        if (dev.id < 0 || dev.id > NXC_DEVICE_ID_MAX)
            return nxc_fail(NXC_ERR_INVALID_ARG,
                            "nxc_device_format: CUDA device id %d is outside 0..%d",
                            dev.id, NXC_DEVICE_ID_MAX);
        n = snprintf(tmp, sizeof tmp, "cuda:%d", dev.id);
        break;
    default:
        return nxc_fail(NXC_ERR_INVALID_ARG,
                        "nxc_device_format: device kind %d is not HOST (1) or CUDA (2)",
                        (int)dev.kind);
    }
    if ((size_t)n >= size)
        return nxc_fail(NXC_ERR_NO_MEMORY,
                        "nxc_device_format: \"%s\" needs %d bytes, buf has %zu", tmp,
                        n + 1, size);
    memcpy(buf, tmp, (size_t)n + 1);
    return n;
}
