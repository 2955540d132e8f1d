/* Strict JSON reader for the metadata schema; see json.h. */
#include "codec/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

void nxc_json_init(nxc_json_t *j, const char *text, size_t len)
{
    j->text = text;
    j->len = len;
    j->pos = 0;
}

/* Fails with "<where>: <message> at offset N". */
__attribute__((format(printf, 3, 4)))
static int fail_at(nxc_json_where_t w, size_t offset, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (w.index >= 0 && w.field != NULL)
        return nxc_fail(NXC_ERR_BAD_METADATA, "descriptor %ld: %s: %s at offset %zu",
                        w.index, w.field, msg, offset);
    if (w.index >= 0)
        return nxc_fail(NXC_ERR_BAD_METADATA, "descriptor %ld: %s at offset %zu", w.index,
                        msg, offset);
    return nxc_fail(NXC_ERR_BAD_METADATA, "%s: %s at offset %zu",
                    w.field != NULL ? w.field : "metadata", msg, offset);
}

static void skip_space(nxc_json_t *j)
{
    while (j->pos < j->len) {
        char c = j->text[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        j->pos++;
    }
}

/* The next byte after white space, or -1 at the end. */
static int peek(nxc_json_t *j)
{
    skip_space(j);
    return j->pos < j->len ? (unsigned char)j->text[j->pos] : -1;
}

bool nxc_json_accept(nxc_json_t *j, char c)
{
    if (peek(j) != (unsigned char)c)
        return false;
    j->pos++;
    return true;
}

bool nxc_json_at_end(nxc_json_t *j)
{
    return peek(j) < 0;
}

size_t nxc_json_offset(nxc_json_t *j)
{
    skip_space(j);
    return j->pos;
}

static bool next_is_word(const nxc_json_t *j, const char *word)
{
    size_t n = strlen(word);
    return j->len - j->pos >= n && memcmp(j->text + j->pos, word, n) == 0;
}

const char *nxc_json_describe_next(nxc_json_t *j, char *buf, size_t size)
{
    int c = peek(j);
    if (c < 0)
        return "the end of the text";
    switch (c) {
    case '"':
        return "a string";
    case '[':
        return "an array";
    case '{':
        return "an object";
    case '-':
        return "a number";
    default:
        break;
    }
    if (c >= '0' && c <= '9')
        return "a number";
    if (next_is_word(j, "true") || next_is_word(j, "false"))
        return "a boolean";
    if (next_is_word(j, "null"))
        return "null";
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, size, "'%c'", c);
    else
        snprintf(buf, size, "byte 0x%02x", (unsigned)c);
    return buf;
}

int nxc_json_expect(nxc_json_t *j, char c, const char *what, nxc_json_where_t w)
{
    if (nxc_json_accept(j, c))
        return 0;
    char buf[16];
    const char *found = nxc_json_describe_next(j, buf, sizeof buf);
    return fail_at(w, j->pos, "expected %s, found %s", what, found);
}

/* ---- strings ---------------------------------------------------------- */

static int hex4(const nxc_json_t *j, size_t p, uint32_t *out)
{
    uint32_t v = 0;
    if (j->len - p < 4)
        return -1;
    for (size_t k = 0; k < 4; k++) {
        char c = j->text[p + k];
        int d = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

static size_t utf8_put(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xc0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xe0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes \uXXXX at p (the backslash), joining a surrogate pair. */
static int read_unicode_escape(const nxc_json_t *j, nxc_json_where_t w, size_t *p,
                               uint8_t *out, size_t *n)
{
    uint32_t cp, lo;
    if (hex4(j, *p + 2, &cp) < 0)
        return fail_at(w, *p, "\\u is not followed by 4 hex digits");
    size_t used = 6;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        /* A high surrogate is only half a character: the low half must
         * follow at once, or the text is not valid Unicode. */
        if (j->len - *p < 12 || j->text[*p + 6] != '\\' || j->text[*p + 7] != 'u' ||
            hex4(j, *p + 8, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
            return fail_at(w, *p, "unpaired surrogate \\u%04x", (unsigned)cp);
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        used = 12;
    } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        return fail_at(w, *p, "unpaired surrogate \\u%04x", (unsigned)cp);
    }
    if (cp == 0)
        return fail_at(w, *p, "\\u0000 (NUL) is not allowed in a string");
    *n = utf8_put(cp, out);
    *p += used;
    return 0;
}

/* Decodes the escape at p (the backslash). */
static int read_escape(const nxc_json_t *j, nxc_json_where_t w, size_t *p, uint8_t *out,
                       size_t *n)
{
    static const char from[] = "\"\\/bfnrt";
    static const char to[] = "\"\\/\b\f\n\r\t";
    if (*p + 1 >= j->len)
        return fail_at(w, *p, "unterminated escape");
    char e = j->text[*p + 1];
    if (e == 'u')
        return read_unicode_escape(j, w, p, out, n);
    const char *hit = e != '\0' ? strchr(from, e) : NULL;
    if (hit == NULL) {
        char buf[16];
        return fail_at(w, *p, "invalid escape %s",
                       nxc_quote(j->text + *p, 2, buf, sizeof buf));
    }
    out[0] = (uint8_t)to[hit - from];
    *n = 1;
    *p += 2;
    return 0;
}

/* Validates the multi-byte UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF) and copies it. */
static int read_utf8(const nxc_json_t *j, nxc_json_where_t w, size_t *p, uint8_t *out,
                     size_t *n)
{
    const uint8_t *s = (const uint8_t *)j->text + *p;
    size_t need;
    uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        need = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        need = 3;
        if (s[0] == 0xe0)
            lo = 0xa0;
        else if (s[0] == 0xed)
            hi = 0x9f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        need = 4;
        if (s[0] == 0xf0)
            lo = 0x90;
        else if (s[0] == 0xf4)
            hi = 0x8f;
    } else {
        return fail_at(w, *p, "invalid UTF-8 byte 0x%02x", s[0]);
    }
    if (j->len - *p < need)
        return fail_at(w, *p, "truncated UTF-8 sequence");
    if (s[1] < lo || s[1] > hi)
        return fail_at(w, *p, "invalid UTF-8 sequence");
    for (size_t k = 2; k < need; k++)
        if (s[k] < 0x80 || s[k] > 0xbf)
            return fail_at(w, *p, "invalid UTF-8 sequence");
    memcpy(out, s, need);
    *n = need;
    *p += need;
    return 0;
}

/* Decodes one character of a string's body at *p into out (1-4 bytes). */
static int read_char(const nxc_json_t *j, nxc_json_where_t w, size_t *p, uint8_t *out,
                     size_t *n)
{
    unsigned char c = (unsigned char)j->text[*p];
    if (c < 0x20)
        return fail_at(w, *p, "unescaped control character 0x%02x in a string", c);
    if (c == '\\')
        return read_escape(j, w, p, out, n);
    if (c >= 0x80)
        return read_utf8(j, w, p, out, n);
    out[0] = c;
    *n = 1;
    (*p)++;
    return 0;
}

/* Length of the run of printable ASCII other than '"' and '\\' at p: bytes
 * that stand for themselves (all of a base64 agent blob). */
static size_t plain_run(const nxc_json_t *j, size_t p)
{
    size_t q = p;
    while (q < j->len) {
        unsigned char c = (unsigned char)j->text[q];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
            break;
        q++;
    }
    return q - p;
}

/* Decodes the string whose opening quote is at j->pos into out (cap bytes
 * including the NUL) and moves past the closing quote. */
static int read_string(nxc_json_t *j, nxc_json_where_t w, char *out, size_t cap,
                       size_t *len)
{
    size_t start = j->pos, p = start + 1, o = 0;
    for (;;) {
        size_t run = plain_run(j, p);
        if (run > 0) {
            if (cap - 1 - o < run)
                return fail_at(w, start, "string is longer than %zu bytes", cap - 1);
            memcpy(out + o, j->text + p, run);
            o += run;
            p += run;
        }
        if (p >= j->len)
            return fail_at(w, start, "unterminated string");
        if (j->text[p] == '"')
            break;
        uint8_t one[4];
        size_t n = 0;
        int rc = read_char(j, w, &p, one, &n);
        if (rc != 0)
            return rc;
        if (cap - 1 - o < n)
            return fail_at(w, start, "string is longer than %zu bytes", cap - 1);
        memcpy(out + o, one, n);
        o += n;
    }
    out[o] = '\0';
    *len = o;
    j->pos = p + 1;
    return 0;
}

static int expect_string_start(nxc_json_t *j, nxc_json_where_t w)
{
    if (peek(j) == '"')
        return 0;
    char buf[16];
    const char *found = nxc_json_describe_next(j, buf, sizeof buf);
    return fail_at(w, j->pos, "expected a string, found %s", found);
}

int nxc_json_string(nxc_json_t *j, nxc_json_where_t w, char *buf, size_t cap, size_t *len)
{
    int rc = expect_string_start(j, w);
    return rc != 0 ? rc : read_string(j, w, buf, cap, len);
}

/* Bytes between the quotes of the string at j->pos, found by skipping
 * escapes; the decoded string is never longer. */
static int string_extent(const nxc_json_t *j, nxc_json_where_t w, size_t *extent)
{
    size_t p = j->pos + 1;
    while (p < j->len && j->text[p] != '"')
        p += (j->text[p] == '\\') ? 2 : 1;
    if (p >= j->len)
        return fail_at(w, j->pos, "unterminated string");
    *extent = p - j->pos - 1;
    return 0;
}

int nxc_json_string_alloc(nxc_json_t *j, nxc_json_where_t w, char **out, size_t *len)
{
    size_t extent = 0;
    int rc = expect_string_start(j, w);
    if (rc == 0)
        rc = string_extent(j, w, &extent);
    if (rc != 0)
        return rc;
    char *buf = malloc(extent + 1);
    if (buf == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "%s: cannot allocate %zu bytes for a string",
                        w.field != NULL ? w.field : "metadata", extent + 1);
    rc = read_string(j, w, buf, extent + 1, len);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

/* ---- integers --------------------------------------------------------- */

static bool is_digit(const nxc_json_t *j, size_t p)
{
    return p < j->len && j->text[p] >= '0' && j->text[p] <= '9';
}

int nxc_json_integer(nxc_json_t *j, nxc_json_where_t w, nxc_json_int_t *out)
{
    int c = peek(j);
    size_t start = j->pos, p = start;
    if (c != '-' && !is_digit(j, p)) {
        char buf[16];
        return fail_at(w, start, "expected an integer, found %s",
                       nxc_json_describe_next(j, buf, sizeof buf));
    }
    bool minus = (c == '-');
    if (minus)
        p++;
    if (!is_digit(j, p))
        return fail_at(w, start, "malformed number: '-' without digits");
    if (j->text[p] == '0' && is_digit(j, p + 1))
        return fail_at(w, start, "malformed number: leading zero");
    uint64_t v = 0;
    for (; is_digit(j, p); p++) {
        unsigned d = (unsigned)(j->text[p] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return fail_at(w, start, "integer does not fit in 64 bits");
        v = v * 10 + d;
    }
    if (p < j->len && (j->text[p] == '.' || j->text[p] == 'e' || j->text[p] == 'E'))
        return fail_at(w, start, "expected an integer, found a number with a fraction or exponent");
    j->pos = p;
    out->negative = minus && v != 0;
    out->magnitude = v;
    return 0;
}
