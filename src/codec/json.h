/* Private: the strict JSON reader behind nxc_metadata_parse().
 *
 * Not a general JSON library: it reads exactly the tokens the metadata
 * schema needs (objects, arrays, strings, integers) from a cursor and fails
 * on anything else, so nothing unknown is ever skipped. It follows RFC 8259
 * strictly: white space only between tokens, valid UTF-8, every escape
 * checked, no leading zeros or '+'. Each failure sets the detail through
 * nxc_fail() with NXC_ERR_BAD_METADATA, naming the field and byte offset. */
#ifndef NXC_JSON_H
#define NXC_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct nxc_json {
    const char *text;
    size_t      len;
    size_t      pos; /* next unread byte; never beyond len */
} nxc_json_t;

/* Where a value sits, for error details: "<field>", or "descriptor <index>:
 * <field>" when index >= 0 (the metadata's only nesting). A NULL field
 * means the enclosing object itself ("metadata" or "descriptor <index>"). */
typedef struct nxc_json_where {
    const char *field;
    long        index;
} nxc_json_where_t;

/* A JSON integer: sign and magnitude, so callers can say "-5 is negative"
 * and still accept the full unsigned 64-bit range. */
typedef struct nxc_json_int {
    bool     negative; /* false for -0 */
    uint64_t magnitude;
} nxc_json_int_t;

void nxc_json_init(nxc_json_t *j, const char *text, size_t len);

/* Skips white space and consumes `c` if it is next. */
bool nxc_json_accept(nxc_json_t *j, char c);

/* Skips white space and consumes `c`, or fails "<where>: expected <what>,
 * found <next token> at offset N". */
int nxc_json_expect(nxc_json_t *j, char c, const char *what, nxc_json_where_t w);

/* True if only white space remains. */
bool nxc_json_at_end(nxc_json_t *j);

/* Offset of the next token (after white space). */
size_t nxc_json_offset(nxc_json_t *j);

/* Names the next token for an error: "a string", "an array", "the end of
 * the text", "'x'"... Returns a static string or `buf`. */
const char *nxc_json_describe_next(nxc_json_t *j, char *buf, size_t size);

/* Reads a string into buf (cap bytes including the NUL). A string that
 * does not fit, or contains U+0000, fails. */
int nxc_json_string(nxc_json_t *j, nxc_json_where_t w, char *buf, size_t cap,
                    size_t *len);

/* Reads a string of any length into a malloc'd, NUL-terminated buffer
 * sized by the string's actual extent in the text. */
int nxc_json_string_alloc(nxc_json_t *j, nxc_json_where_t w, char **out, size_t *len);

/* Reads an integer: no fraction, no exponent, at most 64 bits of magnitude. */
int nxc_json_integer(nxc_json_t *j, nxc_json_where_t w, nxc_json_int_t *out);

#endif
