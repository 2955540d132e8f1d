/* Metadata text: Dynamo's RdmaMetadata JSON, written and strictly parsed.
 *
 * Every problem found while parsing, including a bad device string or
 * descriptors of mixed device kinds, is reported as NXC_ERR_BAD_METADATA:
 * the caller learns "this text is unusable" from one code, and the detail
 * says which field, descriptor and offset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "codec/json.h"
#include "codec/metadata.h"
#include "codec/nixl_blob.h"
#include "common/encoding.h"
#include "common/error.h"

#define B64_PREFIX     "b64:"
#define B64_PREFIX_LEN 4
/* Longest text of one descriptor and its separator:
 * {"device":"cuda:65535","ptr":18446744073709551615,"size":18446744073709551615}, */
#define DESC_TEXT_MAX 96
/* Largest first allocation when inflating; more is grown into. */
#define INFLATE_GUESS_MAX (16u << 20)

/* ---- zlib ------------------------------------------------------------- */

/* zlib's defaults (32 KiB window, memLevel 8) allocate ~256 KiB of state,
 * which glibc maps and unmaps afresh on every call: page faults were most
 * of the cost of creating a passive op. Agent blobs repeat themselves at
 * short range (one rkey per region), so a 4 KiB window and memLevel 4
 * (~24 KiB of state, served from the heap) compress them as well. Any
 * inflate, Python's zlib.decompress included, reads the result. */
#define DEFLATE_WINDOW_BITS 12
#define DEFLATE_MEM_LEVEL   4
/* Compressing a one-region blob (~330 bytes) took 11-12 us, half of a
 * whole 4 KiB read/write cycle's CPU, to save ~70 bytes; storing it (zlib
 * level 0: the same stream format, every inflate reads it) takes 0.5 us.
 * Above 4 KiB (some 80+ regions) the bytes saved start to matter to
 * whatever carries the metadata (1,024 regions: 37 KiB raw, 3.5 KiB
 * compressed), and level 1 compresses these blobs as well as level 6 in
 * half the time. */
#define DEFLATE_STORE_UP_TO 4096

static int deflate_level(size_t n)
{
    return n <= DEFLATE_STORE_UP_TO ? Z_NO_COMPRESSION : Z_BEST_SPEED;
}

static int deflate_blob(const uint8_t *in, size_t n, uint8_t **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    int zrc = deflateInit2(&z, deflate_level(n), Z_DEFLATED, DEFLATE_WINDOW_BITS,
                           DEFLATE_MEM_LEVEL, Z_DEFAULT_STRATEGY);
    if (zrc != Z_OK)
        return nxc_fail(zrc == Z_MEM_ERROR ? NXC_ERR_NO_MEMORY : NXC_ERR_INVALID_ARG,
                        "metadata: zlib initialisation failed (%s)", zError(zrc));
    uLong cap = deflateBound(&z, (uLong)n);
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        deflateEnd(&z);
        return nxc_fail(NXC_ERR_NO_MEMORY, "metadata: cannot allocate %lu bytes for zlib",
                        (unsigned long)cap);
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    zrc = deflate(&z, Z_FINISH);
    size_t produced = cap - z.avail_out;
    deflateEnd(&z);
    if (zrc != Z_STREAM_END) {
        free(buf);
        return nxc_fail(NXC_ERR_INVALID_ARG, "metadata: zlib compression failed (%s)",
                        zError(zrc));
    }
    *out = buf;
    *out_len = produced;
    return NXC_OK;
}

static int blob_too_big(void)
{
    return nxc_fail(NXC_ERR_BAD_METADATA,
                    "nixl_metadata: the agent blob inflates to more than %u bytes",
                    NXC_MAX_BLOB_LEN);
}

/* Grows the inflate output buffer, at most to NXC_MAX_BLOB_LEN + 1 bytes:
 * one byte past the limit is how we tell "exactly the limit" from "more". */
static int grow_output(uint8_t **buf, size_t *cap)
{
    const size_t hard_cap = (size_t)NXC_MAX_BLOB_LEN + 1;
    if (*cap >= hard_cap)
        return blob_too_big();
    size_t next = *cap > hard_cap / 2 ? hard_cap : *cap * 2;
    uint8_t *p = realloc(*buf, next);
    if (p == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "nixl_metadata: cannot allocate %zu bytes", next);
    *buf = p;
    *cap = next;
    return NXC_OK;
}

static int inflate_error(const z_stream *zs, int zrc)
{
    if (zrc == Z_MEM_ERROR)
        return nxc_fail(NXC_ERR_NO_MEMORY, "nixl_metadata: zlib ran out of memory");
    if (zrc == Z_BUF_ERROR)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "nixl_metadata: zlib stream is corrupt (truncated)");
    return nxc_fail(NXC_ERR_BAD_METADATA, "nixl_metadata: zlib stream is corrupt (%s)",
                    zs->msg != NULL ? zs->msg : zError(zrc));
}

/* Runs inflate() over the whole input into a buffer that grows with the
 * actual output (zlib claims no size we could trust), up to the cap. */
static int inflate_loop(z_stream *zs, uint8_t **buf, size_t *cap)
{
    for (;;) {
        if (zs->total_out == *cap) {
            int rc = grow_output(buf, cap);
            if (rc != NXC_OK)
                return rc;
        }
        zs->next_out = *buf + zs->total_out;
        zs->avail_out = (uInt)(*cap - zs->total_out);
        int zrc = inflate(zs, Z_NO_FLUSH);
        if (zrc == Z_STREAM_END)
            break;
        if (zrc != Z_OK)
            return inflate_error(zs, zrc);
    }
    if (zs->avail_in != 0)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "nixl_metadata: %u bytes of trailing garbage after the zlib stream",
                        zs->avail_in);
    if (zs->total_out > NXC_MAX_BLOB_LEN)
        return blob_too_big();
    return NXC_OK;
}

static int inflate_blob(const uint8_t *in, size_t n, uint8_t **out, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit(&zs) != Z_OK)
        return nxc_fail(NXC_ERR_NO_MEMORY, "nixl_metadata: zlib could not start");
    /* A first guess from the input size, only for speed (a blob of rkeys
     * compresses about 2-4x); the buffer grows with the actual output. */
    size_t cap = n < 1024 ? 4096 : (n < INFLATE_GUESS_MAX / 4 ? n * 4 : INFLATE_GUESS_MAX);
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        inflateEnd(&zs);
        return nxc_fail(NXC_ERR_NO_MEMORY, "nixl_metadata: cannot allocate %zu bytes", cap);
    }
    zs.next_in = (Bytef *)(uintptr_t)in; /* zlib's API is not const-correct */
    zs.avail_in = (uInt)n;
    int rc = inflate_loop(&zs, &buf, &cap);
    size_t produced = zs.total_out;
    inflateEnd(&zs);
    if (rc != NXC_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = produced;
    return NXC_OK;
}

/* ---- encoding --------------------------------------------------------- */

static int check_descriptors_for_encoding(const nxc_descriptor_t *descs, size_t n)
{
    if (descs == NULL || n == 0 || n > NXC_MAX_DESCRIPTORS)
        return nxc_fail(NXC_ERR_INVALID_ARG,
                        "metadata: need 1 to %u descriptors, got %zu%s", NXC_MAX_DESCRIPTORS,
                        n, descs == NULL ? " (NULL list)" : "");
    for (size_t i = 0; i < n; i++) {
        uint64_t ptr = (uint64_t)(uintptr_t)descs[i].ptr;
        if (ptr == 0)
            return nxc_fail(NXC_ERR_INVALID_ARG, "descriptor %zu: pointer is NULL", i);
        if ((uint64_t)descs[i].size > UINT64_MAX - ptr)
            return nxc_fail(NXC_ERR_INVALID_ARG,
                            "descriptor %zu: [%p,+%zu) wraps around the address space", i,
                            descs[i].ptr, descs[i].size);
        if (descs[i].device.kind != descs[0].device.kind)
            return nxc_fail(NXC_ERR_DEVICE,
                            "descriptor %zu: device kind %d differs from descriptor 0's (%d)",
                            i, (int)descs[i].device.kind, (int)descs[0].device.kind);
    }
    return NXC_OK;
}

static char *put_text(char *out, const char *text, size_t n)
{
    memcpy(out, text, n);
    return out + n;
}

static char *put_u64(char *out, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *out++ = digits[--n];
    return out;
}

#define PUT_LITERAL(out, lit) put_text((out), (lit), sizeof(lit) - 1)

/* Appends the descriptors list in Dynamo's field order; buf has room.
 * Written by hand: snprintf was most of the cost of exposing an op of
 * 1,024 blocks (docs/PERFORMANCE.md, "Many buffers per op"). */
static int write_descriptors(char *buf, size_t *pos, const nxc_descriptor_t *descs, size_t n)
{
    char dev[16];
    int dev_len = 0;
    char *out = buf + *pos;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || descs[i].device.kind != descs[i - 1].device.kind ||
            descs[i].device.id != descs[i - 1].device.id) {
            dev_len = nxc_device_format(descs[i].device, dev, sizeof dev);
            if (dev_len < 0)
                return nxc_fail(dev_len, "descriptor %zu: %s", i, nxc_last_error());
        }
        if (i > 0)
            *out++ = ',';
        out = PUT_LITERAL(out, "{\"device\":\"");
        out = put_text(out, dev, (size_t)dev_len);
        out = PUT_LITERAL(out, "\",\"ptr\":");
        out = put_u64(out, (uint64_t)(uintptr_t)descs[i].ptr);
        out = PUT_LITERAL(out, ",\"size\":");
        out = put_u64(out, (uint64_t)descs[i].size);
        *out++ = '}';
    }
    *pos = (size_t)(out - buf);
    return NXC_OK;
}

/* Formats the whole document into a buffer sized by an upper bound. */
static int write_document(nxc_op_kind_t kind, const char *key_hex,
                          const nxc_descriptor_t *descs, size_t n, const uint8_t *z,
                          size_t zlen, char **json, size_t *json_len)
{
    size_t b64_len = nxc_base64_encoded_len(zlen);
    size_t cap = 160 + b64_len + n * DESC_TEXT_MAX;
    char *buf = malloc(cap);
    if (buf == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "metadata: cannot allocate %zu bytes", cap);
    size_t pos = (size_t)snprintf(buf, cap, "{\"descriptors\":[");
    int rc = write_descriptors(buf, &pos, descs, n);
    if (rc != NXC_OK) {
        free(buf);
        return rc;
    }
    pos += (size_t)snprintf(buf + pos, cap - pos, "],\"nixl_metadata\":\"" B64_PREFIX);
    nxc_base64_encode(z, zlen, buf + pos);
    pos += b64_len;
    pos += (size_t)snprintf(buf + pos, cap - pos,
                            "\",\"notification_key\":\"%s\",\"operation_kind\":%d}", key_hex,
                            (int)kind);
    *json = buf;
    *json_len = pos;
    return NXC_OK;
}

int nxc_metadata_encode(nxc_op_kind_t kind, const uint8_t key[NXC_KEY_BYTES],
                        const nxc_descriptor_t *descs, size_t n,
                        const nxc_agent_blob_t *blob, char **json, size_t *json_len)
{
    return nxc_metadata_encode_wire(kind, key, descs, n, blob, NXC_WIRE_NXC, json, json_len);
}

int nxc_metadata_encode_wire(nxc_op_kind_t kind, const uint8_t key[NXC_KEY_BYTES],
                             const nxc_descriptor_t *descs, size_t n,
                             const nxc_agent_blob_t *blob, nxc_wire_t wire, char **json,
                             size_t *json_len)
{
    if (key == NULL || blob == NULL || json == NULL || json_len == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "nxc_metadata_encode: NULL argument");
    if (kind != NXC_OP_READ && kind != NXC_OP_WRITE)
        return nxc_fail(NXC_ERR_INVALID_ARG, "metadata: operation kind %d is not READ or WRITE",
                        (int)kind);
    int rc = check_descriptors_for_encoding(descs, n);
    if (rc != NXC_OK)
        return rc;

    uint8_t *raw = NULL, *z = NULL;
    size_t raw_len = 0, zlen = 0;
    rc = wire == NXC_WIRE_NIXL ? nxc_nixl_blob_encode(blob, &raw, &raw_len)
                               : nxc_blob_encode(blob, &raw, &raw_len);
    if (rc == NXC_OK)
        rc = deflate_blob(raw, raw_len, &z, &zlen);
    free(raw);
    if (rc != NXC_OK)
        return rc;
    char key_hex[NXC_KEY_HEX_LEN + 1];
    nxc_hex_encode(key, NXC_KEY_BYTES, key_hex);
    rc = write_document(kind, key_hex, descs, n, z, zlen, json, json_len);
    free(z);
    return rc;
}

/* ---- parsing: values -------------------------------------------------- */

typedef struct parser {
    nxc_json_t      j;
    nxc_metadata_t *md;
    size_t          descs_cap;
} parser_t;

static nxc_json_where_t where(const char *field, long index)
{
    return (nxc_json_where_t){ .field = field, .index = index };
}

/* Reads a non-negative integer no larger than max. */
static int read_unsigned(parser_t *p, const char *field, long index, uint64_t max,
                         uint64_t *out)
{
    nxc_json_int_t v;
    int rc = nxc_json_integer(&p->j, where(field, index), &v);
    if (rc != NXC_OK)
        return rc;
    if (!v.negative && v.magnitude <= max) {
        *out = v.magnitude;
        return NXC_OK;
    }
    char prefix[48] = "";
    if (index >= 0)
        snprintf(prefix, sizeof prefix, "descriptor %ld: ", index);
    if (v.negative)
        return nxc_fail(NXC_ERR_BAD_METADATA, "%s%s -%llu is negative", prefix, field,
                        (unsigned long long)v.magnitude);
    return nxc_fail(NXC_ERR_BAD_METADATA, "%s%s %llu is larger than %llu", prefix, field,
                    (unsigned long long)v.magnitude, (unsigned long long)max);
}

static int parse_kind(parser_t *p)
{
    nxc_json_int_t v;
    int rc = nxc_json_integer(&p->j, where("operation_kind", -1), &v);
    if (rc != NXC_OK)
        return rc;
    if (v.negative || (v.magnitude != NXC_OP_READ && v.magnitude != NXC_OP_WRITE))
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "operation_kind %s%llu is neither 1 (READ) nor 2 (WRITE)",
                        v.negative ? "-" : "", (unsigned long long)v.magnitude);
    p->md->kind = (nxc_op_kind_t)v.magnitude;
    return NXC_OK;
}

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* The key is read as text here and checked once the blob has said whose
 * wire it is (fields may come in any order). */
static int parse_key(parser_t *p)
{
    nxc_metadata_t *md = p->md;
    return nxc_json_string(&p->j, where("notification_key", -1), md->key_text,
                           sizeof md->key_text, &md->key_len);
}

static int bad_key(const nxc_metadata_t *md, const char *expected)
{
    char q[80];
    return nxc_fail(NXC_ERR_BAD_METADATA, "notification_key must be %s, got %s", expected,
                    nxc_quote(md->key_text, md->key_len, q, sizeof q));
}

static int check_key(nxc_metadata_t *md)
{
    if (md->wire == NXC_WIRE_NIXL) {
        if (md->key_len == 0)
            return bad_key(md, "1 to 255 printable bytes");
        for (size_t i = 0; i < md->key_len; i++)
            if ((unsigned char)md->key_text[i] < 0x20 || md->key_text[i] == 0x7f)
                return bad_key(md, "1 to 255 printable bytes");
        return NXC_OK;
    }
    if (md->key_len != NXC_KEY_HEX_LEN || !is_lower_hex(md->key_text, md->key_len))
        return bad_key(md, "32 lowercase hex digits");
    nxc_decode_error_t err;
    nxc_hex_decode(md->key_text, md->key_len, md->key, &err); /* cannot fail: checked */
    return NXC_OK;
}

/* Turns the nixl_metadata text into the zlib bytes it carries. */
static int decode_nixl_text(const char *text, size_t n, uint8_t **out, size_t *out_len)
{
    nxc_decode_error_t err;
    bool is_b64 = n >= B64_PREFIX_LEN && memcmp(text, B64_PREFIX, B64_PREFIX_LEN) == 0;
    const char *body = is_b64 ? text + B64_PREFIX_LEN : text;
    size_t body_len = is_b64 ? n - B64_PREFIX_LEN : n;

    if (body_len == 0)
        return nxc_fail(NXC_ERR_BAD_METADATA, "nixl_metadata is empty%s",
                        is_b64 ? " after \"b64:\"" : "");
    size_t cap = is_b64 ? nxc_base64_decoded_max(body_len) : body_len / 2;
    uint8_t *buf = malloc(cap > 0 ? cap : 1);
    if (buf == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "nixl_metadata: cannot allocate %zu bytes", cap);
    bool ok = is_b64 ? nxc_base64_decode(body, body_len, buf, out_len, &err)
                     : nxc_hex_decode(body, body_len, buf, &err);
    if (!ok) {
        free(buf);
        return nxc_fail(NXC_ERR_BAD_METADATA, "nixl_metadata: %s has %s at offset %zu",
                        is_b64 ? "base64 after \"b64:\"" : "bare hex (no \"b64:\" prefix)",
                        err.reason, err.offset);
    }
    if (!is_b64)
        *out_len = body_len / 2;
    *out = buf;
    return NXC_OK;
}

static int parse_nixl_metadata(parser_t *p)
{
    nxc_metadata_t *md = p->md;
    char *text = NULL;
    uint8_t *z = NULL;
    size_t text_len = 0, zlen = 0;
    int rc = nxc_json_string_alloc(&p->j, where("nixl_metadata", -1), &text, &text_len);
    if (rc == NXC_OK)
        rc = decode_nixl_text(text, text_len, &z, &zlen);
    free(text);
    if (rc == NXC_OK)
        rc = inflate_blob(z, zlen, &md->blob_buf, &md->blob_buf_len);
    free(z);
    if (rc != NXC_OK)
        return rc;
    md->wire = nxc_nixl_blob_is(md->blob_buf, md->blob_buf_len) ? NXC_WIRE_NIXL : NXC_WIRE_NXC;
    rc = md->wire == NXC_WIRE_NIXL ? nxc_nixl_blob_decode(md->blob_buf, md->blob_buf_len, &md->blob)
                                   : nxc_blob_decode(md->blob_buf, md->blob_buf_len, &md->blob);
    if (rc != NXC_OK)
        return nxc_fail(rc, "nixl_metadata: %s", nxc_last_error());
    memcpy(md->name, md->blob.name, md->blob.name_len);
    md->name[md->blob.name_len] = '\0';
    return NXC_OK;
}

/* ---- parsing: objects ------------------------------------------------- */

/* Handles one member of an object: `name` is its key, the cursor is at its
 * value, `at` is the key's offset (for duplicate and unknown fields). */
typedef int (*member_fn)(parser_t *p, void *ctx, const char *name, size_t at);

/* Reads `{ "key": value, ... }`, handing each value to fn. Field names of
 * the schema are short: a longer key cannot be one of them. */
static int parse_object(parser_t *p, nxc_json_where_t w, member_fn fn, void *ctx)
{
    int rc = nxc_json_expect(&p->j, '{', "an object", w);
    if (rc != NXC_OK || nxc_json_accept(&p->j, '}'))
        return rc;
    for (;;) {
        char name[64];
        size_t name_len, at = nxc_json_offset(&p->j);
        if ((rc = nxc_json_string(&p->j, w, name, sizeof name, &name_len)) != NXC_OK)
            return rc;
        if ((rc = nxc_json_expect(&p->j, ':', "':' after a field name", w)) != NXC_OK)
            return rc;
        if ((rc = fn(p, ctx, name, at)) != NXC_OK)
            return rc;
        if (nxc_json_accept(&p->j, ','))
            continue;
        return nxc_json_expect(&p->j, '}', "',' or '}'", w);
    }
}

/* Finds `name` in a field table; -1 if absent. */
static int field_index(const char *const *names, int count, const char *name)
{
    for (int i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

/* Marks field i seen, refusing unknown and repeated fields. */
static int claim_field(int i, unsigned *seen, const char *name, size_t at, long index)
{
    if (i >= 0 && !(*seen & (1u << i))) {
        *seen |= 1u << i;
        return NXC_OK;
    }
    /* Only now: formatting the prefix for every field of every descriptor
     * was a third of parsing 1,024 descriptors. */
    char q[80], prefix[48] = "metadata";
    if (index >= 0)
        snprintf(prefix, sizeof prefix, "descriptor %ld", index);
    if (i < 0)
        return nxc_fail(NXC_ERR_BAD_METADATA, "%s: unknown field %s at offset %zu", prefix,
                        nxc_quote(name, strlen(name), q, sizeof q), at);
    return nxc_fail(NXC_ERR_BAD_METADATA, "%s: duplicate field \"%s\" at offset %zu", prefix,
                    name, at);
}

static int require_fields(unsigned seen, const char *const *names, int count, long index)
{
    for (int i = 0; i < count; i++) {
        if (seen & (1u << i))
            continue;
        if (index >= 0)
            return nxc_fail(NXC_ERR_BAD_METADATA, "descriptor %ld: missing field \"%s\"",
                            index, names[i]);
        return nxc_fail(NXC_ERR_BAD_METADATA, "metadata: missing field \"%s\"", names[i]);
    }
    return NXC_OK;
}

/* ---- parsing: descriptors --------------------------------------------- */

enum { DESC_DEVICE, DESC_PTR, DESC_SIZE, DESC_FIELDS };
static const char *const desc_fields[DESC_FIELDS] = { "device", "ptr", "size" };

typedef struct desc_ctx {
    long             index;
    unsigned         seen;
    nxc_descriptor_t d;
} desc_ctx_t;

static int parse_device(parser_t *p, desc_ctx_t *dc)
{
    char text[64];
    size_t len;
    int rc = nxc_json_string(&p->j, where("device", dc->index), text, sizeof text, &len);
    if (rc != NXC_OK)
        return rc;
    if (nxc_device_parse(text, &dc->d.device) != NXC_OK)
        return nxc_fail(NXC_ERR_BAD_METADATA, "descriptor %ld: %s", dc->index,
                        nxc_last_error());
    return NXC_OK;
}

static int descriptor_member(parser_t *p, void *ctx, const char *name, size_t at)
{
    desc_ctx_t *dc = ctx;
    int field = field_index(desc_fields, DESC_FIELDS, name);
    int rc = claim_field(field, &dc->seen, name, at, dc->index);
    uint64_t v;
    if (rc != NXC_OK)
        return rc;
    switch (field) {
    case DESC_DEVICE:
        return parse_device(p, dc);
    case DESC_PTR:
        if ((rc = read_unsigned(p, "ptr", dc->index, UINTPTR_MAX, &v)) != NXC_OK)
            return rc;
        if (v == 0)
            return nxc_fail(NXC_ERR_BAD_METADATA,
                            "descriptor %ld: ptr 0 is refused (a null pointer)", dc->index);
        dc->d.ptr = (void *)(uintptr_t)v;
        return NXC_OK;
    default:
        if ((rc = read_unsigned(p, "size", dc->index, SIZE_MAX, &v)) != NXC_OK)
            return rc;
        dc->d.size = (size_t)v;
        return NXC_OK;
    }
}

/* Refuses what is well-formed JSON but not a usable descriptor list. */
static int check_descriptor(const nxc_metadata_t *md, const desc_ctx_t *dc)
{
    uint64_t ptr = (uint64_t)(uintptr_t)dc->d.ptr;
    if ((uint64_t)dc->d.size > UINT64_MAX - ptr)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "descriptor %ld: [0x%llx,+%llu) wraps around the address space",
                        dc->index, (unsigned long long)ptr, (unsigned long long)dc->d.size);
    if (md->n_descs > 0 && dc->d.device.kind != md->descs[0].device.kind) {
        char a[16], b[16];
        nxc_device_format(dc->d.device, a, sizeof a);
        nxc_device_format(md->descs[0].device, b, sizeof b);
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "descriptor %ld: device \"%s\" is not of the same kind as descriptor "
                        "0's \"%s\" (all descriptors must be of one kind)",
                        dc->index, a, b);
    }
    return NXC_OK;
}

/* Appends a descriptor; the array grows with the descriptors actually
 * read, never with a count the text claims. */
static int append_descriptor(parser_t *p, const nxc_descriptor_t *d)
{
    nxc_metadata_t *md = p->md;
    if (md->n_descs == NXC_MAX_DESCRIPTORS)
        return nxc_fail(NXC_ERR_BAD_METADATA, "descriptors: more than %u entries",
                        NXC_MAX_DESCRIPTORS);
    if (md->n_descs == p->descs_cap) {
        size_t cap = p->descs_cap == 0 ? 8 : p->descs_cap * 2;
        if (cap > NXC_MAX_DESCRIPTORS)
            cap = NXC_MAX_DESCRIPTORS;
        nxc_descriptor_t *grown = realloc(md->descs, cap * sizeof *grown);
        if (grown == NULL)
            return nxc_fail(NXC_ERR_NO_MEMORY, "descriptors: cannot allocate %zu entries",
                            cap);
        md->descs = grown;
        p->descs_cap = cap;
    }
    md->descs[md->n_descs++] = *d;
    return NXC_OK;
}

/* ---- parsing: descriptors as our encoder writes them ------------------ */

/* The offset after `lit` if the text has it at `at`, else 0 (also when
 * `at` is 0: no match so far). */
static size_t past_literal(const nxc_json_t *j, size_t at, const char *lit, size_t n)
{
    return at != 0 && j->len - at >= n && memcmp(j->text + at, lit, n) == 0 ? at + n : 0;
}

#define PAST_LITERAL(j, at, lit) past_literal((j), (at), (lit), sizeof(lit) - 1)

/* The offset after an integer of 1 to 19 digits without a leading zero
 * (so no overflow), else 0. */
static size_t past_small_unsigned(const nxc_json_t *j, size_t at, uint64_t *out)
{
    size_t start = at;
    uint64_t v = 0;
    if (at == 0)
        return 0;
    while (at < j->len && at - start < 19 && j->text[at] >= '0' && j->text[at] <= '9')
        v = v * 10 + (uint64_t)(j->text[at++] - '0');
    if (at == start || (j->text[start] == '0' && at - start > 1))
        return 0;
    *out = v;
    return at;
}

static int is_device_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':';
}

/* The offset after a device name of lower-case letters, digits and ':',
 * read into dev, else 0. */
static size_t past_device(const nxc_json_t *j, size_t at, nxc_device_t *dev)
{
    char text[24];
    size_t n = 0;
    if (at == 0)
        return 0;
    for (; at < j->len && j->text[at] != '"'; at++, n++) {
        if (n + 1 == sizeof text || !is_device_char(j->text[at]))
            return 0;
        text[n] = j->text[at];
    }
    text[n] = '\0';
    return at < j->len && nxc_device_parse(text, dev) == NXC_OK ? at : 0;
}

/* Reads a descriptor exactly as write_descriptors() wrote it,
 * {"device":"cpu","ptr":N,"size":N}, without the general reader: reading
 * 1,024 of them took ~145 us that way (docs/PERFORMANCE.md, "Many buffers
 * per op"). On anything else (white space, another order, escapes, a
 * number the general reader would refuse or that needs 20 digits, ptr 0)
 * it reads nothing and returns 0: the general reader then reads the same
 * text and names what is wrong. */
static int quick_descriptor(parser_t *p, nxc_descriptor_t *d)
{
    const nxc_json_t *j = &p->j;
    uint64_t ptr = 0, size = 0;
    /* A descriptor never starts at offset 0, which stands for no match. */
    size_t at = PAST_LITERAL(j, j->pos, "{\"device\":\"");
    at = past_device(j, at, &d->device);
    at = PAST_LITERAL(j, at, "\",\"ptr\":");
    at = past_small_unsigned(j, at, &ptr);
    at = PAST_LITERAL(j, at, ",\"size\":");
    at = past_small_unsigned(j, at, &size);
    at = PAST_LITERAL(j, at, "}");
    if (at == 0 || ptr == 0)
        return 0;
    d->ptr = (void *)(uintptr_t)ptr;
    d->size = (size_t)size;
    p->j.pos = at;
    return 1;
}

static int parse_descriptor(parser_t *p, long index)
{
    desc_ctx_t dc = { .index = index };
    int rc = NXC_OK;
    if (!quick_descriptor(p, &dc.d)) {
        rc = parse_object(p, where(NULL, index), descriptor_member, &dc);
        if (rc == NXC_OK)
            rc = require_fields(dc.seen, desc_fields, DESC_FIELDS, index);
    }
    if (rc == NXC_OK)
        rc = check_descriptor(p->md, &dc);
    if (rc == NXC_OK)
        rc = append_descriptor(p, &dc.d);
    return rc;
}

static int parse_descriptors(parser_t *p)
{
    nxc_json_where_t w = where("descriptors", -1);
    int rc = nxc_json_expect(&p->j, '[', "an array", w);
    if (rc != NXC_OK)
        return rc;
    if (nxc_json_accept(&p->j, ']'))
        return nxc_fail(NXC_ERR_BAD_METADATA, "descriptors: the list is empty");
    for (long i = 0;; i++) {
        if ((rc = parse_descriptor(p, i)) != NXC_OK)
            return rc;
        if (nxc_json_accept(&p->j, ','))
            continue;
        return nxc_json_expect(&p->j, ']', "',' or ']'", w);
    }
}

/* ---- parsing: the document -------------------------------------------- */

enum { TOP_DESCRIPTORS, TOP_NIXL, TOP_KEY, TOP_KIND, TOP_FIELDS };
static const char *const top_fields[TOP_FIELDS] = { "descriptors", "nixl_metadata",
                                                    "notification_key", "operation_kind" };

static int top_member(parser_t *p, void *ctx, const char *name, size_t at)
{
    unsigned *seen = ctx;
    int field = field_index(top_fields, TOP_FIELDS, name);
    int rc = claim_field(field, seen, name, at, -1);
    if (rc != NXC_OK)
        return rc;
    switch (field) {
    case TOP_DESCRIPTORS:
        return parse_descriptors(p);
    case TOP_NIXL:
        return parse_nixl_metadata(p);
    case TOP_KEY:
        return parse_key(p);
    default:
        return parse_kind(p);
    }
}

typedef struct span {
    uint64_t base;
    uint64_t end; /* after sorting: the largest end of this and all earlier spans */
} span_t;

static int compare_span_base(const void *a, const void *b)
{
    uint64_t x = ((const span_t *)a)->base, y = ((const span_t *)b)->base;
    return (x > y) - (x < y);
}

/* Index of the last span with base <= addr, or -1. */
static long last_span_at_or_below(const span_t *s, size_t n, uint64_t addr)
{
    size_t lo = 0, hi = n; /* answer is in [lo, hi) shifted by one */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid].base <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (long)lo - 1;
}

/* Every descriptor that moves bytes must lie inside one registered region,
 * or the peer would be sent to an address its rkeys do not open. Regions
 * sorted by base with a running maximum of their ends answer "does some
 * region starting at or below ptr reach ptr+size" in O(log n). */
static int check_coverage(const nxc_metadata_t *md)
{
    size_t n = md->blob.n_regions;
    span_t *s = n > 0 ? malloc(n * sizeof *s) : NULL;
    if (n > 0 && s == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "metadata: cannot allocate %zu spans", n);
    for (size_t i = 0; i < n; i++)
        s[i] = (span_t){ md->blob.regions[i].base,
                         md->blob.regions[i].base + md->blob.regions[i].len };
    if (n > 1)
        qsort(s, n, sizeof *s, compare_span_base);
    for (size_t i = 1; i < n; i++)
        if (s[i].end < s[i - 1].end)
            s[i].end = s[i - 1].end;

    int rc = NXC_OK;
    for (size_t i = 0; i < md->n_descs && rc == NXC_OK; i++) {
        uint64_t ptr = (uint64_t)(uintptr_t)md->descs[i].ptr, size = md->descs[i].size;
        if (size == 0)
            continue;
        long k = last_span_at_or_below(s, n, ptr);
        if (k < 0 || s[k].end < ptr + size)
            rc = nxc_fail(NXC_ERR_BAD_METADATA,
                          "descriptor %zu [0x%llx,+%llu) is not covered by any registered "
                          "region of the agent blob",
                          i, (unsigned long long)ptr, (unsigned long long)size);
    }
    free(s);
    return rc;
}

static int check_input(const char *json, size_t len)
{
    if (len == 0)
        return nxc_fail(NXC_ERR_BAD_METADATA, "metadata: the text is empty");
    if (len > NXC_MAX_METADATA_LEN)
        return nxc_fail(NXC_ERR_BAD_METADATA, "metadata: %zu bytes is over the %u-byte limit",
                        len, NXC_MAX_METADATA_LEN);
    const char *nul = memchr(json, '\0', len);
    if (nul != NULL)
        return nxc_fail(NXC_ERR_BAD_METADATA, "metadata: NUL byte at offset %zu",
                        (size_t)(nul - json));
    return NXC_OK;
}

static int parse_document(parser_t *p)
{
    unsigned seen = 0;
    int rc = parse_object(p, where(NULL, -1), top_member, &seen);
    if (rc == NXC_OK)
        rc = require_fields(seen, top_fields, TOP_FIELDS, -1);
    if (rc == NXC_OK && !nxc_json_at_end(&p->j)) {
        char buf[16];
        size_t at = nxc_json_offset(&p->j);
        rc = nxc_fail(NXC_ERR_BAD_METADATA,
                      "metadata: trailing garbage (%s) after the JSON object at offset %zu",
                      nxc_json_describe_next(&p->j, buf, sizeof buf), at);
    }
    if (rc == NXC_OK)
        rc = check_key(p->md);
    if (rc == NXC_OK)
        rc = check_coverage(p->md);
    return rc;
}

int nxc_metadata_parse(const char *json, size_t len, nxc_metadata_t **out)
{
    nxc_clear_error();
    if (json == NULL || out == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "nxc_metadata_parse: %s is NULL",
                        json == NULL ? "json" : "out");
    int rc = check_input(json, len);
    if (rc != NXC_OK)
        return rc;
    parser_t p = { .md = calloc(1, sizeof(nxc_metadata_t)) };
    if (p.md == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "metadata: cannot allocate the parsed form");
    nxc_json_init(&p.j, json, len);
    rc = parse_document(&p);
    if (rc != NXC_OK) {
        nxc_metadata_free(p.md);
        return rc;
    }
    nxc_clear_error(); /* inner helpers may have left a recovered detail */
    *out = p.md;
    return NXC_OK;
}

/* ---- parsed metadata -------------------------------------------------- */

void nxc_metadata_free(nxc_metadata_t *md)
{
    if (md == NULL)
        return;
    free(md->descs);
    free(md->blob.regions);
    free(md->blob_buf);
    free(md);
}

nxc_wire_t nxc_metadata_wire(const nxc_metadata_t *md)
{
    return md != NULL ? md->wire : NXC_WIRE_UNSPECIFIED;
}

nxc_op_kind_t nxc_metadata_kind(const nxc_metadata_t *md)
{
    return md != NULL ? md->kind : NXC_OP_KIND_UNSPECIFIED;
}

const char *nxc_metadata_notification_key(const nxc_metadata_t *md)
{
    return md != NULL ? md->key_text : "";
}

const char *nxc_metadata_worker_name(const nxc_metadata_t *md)
{
    return md != NULL ? md->name : "";
}

size_t nxc_metadata_descriptor_count(const nxc_metadata_t *md)
{
    return md != NULL ? md->n_descs : 0;
}

int nxc_metadata_descriptor(const nxc_metadata_t *md, size_t i, nxc_descriptor_t *out)
{
    if (md == NULL || out == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "nxc_metadata_descriptor: %s is NULL",
                        md == NULL ? "md" : "out");
    if (i >= md->n_descs)
        return nxc_fail(NXC_ERR_INVALID_ARG,
                        "nxc_metadata_descriptor: index %zu is out of range (%zu descriptors)",
                        i, md->n_descs);
    nxc_clear_error();
    *out = md->descs[i];
    return NXC_OK;
}
