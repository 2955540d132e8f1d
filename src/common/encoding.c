/* Base64 (RFC 4648, standard alphabet, padded) and hex. */
#include "common/encoding.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t nxc_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

void nxc_base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0, o = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
}

size_t nxc_base64_decoded_max(size_t n)
{
    return n / 4 * 3;
}

/* The 6-bit value of a base64 character, or -1. */
static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static bool fail_at(nxc_decode_error_t *err, const char *reason, size_t offset)
{
    err->reason = reason;
    err->offset = offset;
    return false;
}

/* Decodes one 4-character group; `last` allows padding in it. Returns the
 * number of bytes produced (1..3) or 0 on error. */
static size_t b64_group(const char *g, bool last, uint8_t *out, size_t base,
                        nxc_decode_error_t *err)
{
    int pad = 0;
    if (last && g[3] == '=')
        pad = (g[2] == '=') ? 2 : 1;
    uint32_t v = 0;
    for (int k = 0; k < 4 - pad; k++) {
        int x = b64_value(g[k]);
        if (x < 0) {
            fail_at(err, g[k] == '=' ? "padding '=' before the end" : "a character outside the base64 alphabet",
                    base + (size_t)k);
            return 0;
        }
        v = v << 6 | (uint32_t)x;
    }
    /* Unused low bits must be zero so each byte string has one encoding. */
    if (pad == 2) {
        if (v & 0xf) {
            fail_at(err, "non-zero bits in the final character", base + 1);
            return 0;
        }
        out[0] = (uint8_t)(v >> 4);
        return 1;
    }
    if (pad == 1) {
        if (v & 0x3) {
            fail_at(err, "non-zero bits in the final character", base + 2);
            return 0;
        }
        out[0] = (uint8_t)(v >> 10);
        out[1] = (uint8_t)(v >> 2);
        return 2;
    }
    out[0] = (uint8_t)(v >> 16);
    out[1] = (uint8_t)(v >> 8);
    out[2] = (uint8_t)v;
    return 3;
}

bool nxc_base64_decode(const char *in, size_t n, uint8_t *out, size_t *out_len,
                       nxc_decode_error_t *err)
{
    if (n % 4 != 0)
        return fail_at(err, "a length that is not a multiple of 4", n);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        size_t got = b64_group(in + i, i + 4 == n, out + o, i, err);
        if (got == 0)
            return false;
        o += got;
    }
    *out_len = o;
    return true;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool nxc_hex_decode(const char *in, size_t n, uint8_t *out, nxc_decode_error_t *err)
{
    if (n % 2 != 0)
        return fail_at(err, "an odd number of hex digits", n);
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_value(in[i]), lo = hex_value(in[i + 1]);
        if (hi < 0 || lo < 0)
            return fail_at(err, "a character that is not a hex digit", hi < 0 ? i : i + 1);
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

void nxc_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}
