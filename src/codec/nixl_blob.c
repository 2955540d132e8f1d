/* NIXL's agent metadata blob: strict decoder and encoder (see nixl_blob.h). */
#include <stdlib.h>
#include <string.h>

#include "codec/cursor.h"
#include "codec/nixl_blob.h"
#include "common/error.h"

#define UCX_BACKEND      "UCX"
#define UCX_BACKEND_LEN  3
#define MEM_SECTION      "MemSection"
#define SD_LIST          "nixlSDList"
#define BASIC_DESC_LEN   24          /* u64 addr, u64 len, u64 devId */
#define RECORD_OVERHEAD  (8 + 1)     /* length field and the closing '|' */
#define MAX_BACKEND_NAME 64
#define MAX_CONNS        64          /* one per backend; NIXL has ~15 */
/* The smallest record a region can be: empty tag, the basic descriptor and
 * at least one byte of rkey. Bounds a claimed count by the bytes left. */
#define MIN_REGION_RECORD (RECORD_OVERHEAD + BASIC_DESC_LEN + 1)

bool nxc_nixl_blob_is(const uint8_t *buf, size_t len)
{
    return len >= NXC_NIXL_MAGIC_LEN && memcmp(buf, NXC_NIXL_MAGIC, NXC_NIXL_MAGIC_LEN) == 0;
}

/* ---- decoding --------------------------------------------------------- */

/* One record: the tag must be exactly `tag` (NIXL compares the tag bytes
 * and reads the length right after them), the value must fit in what
 * remains and be followed by '|'. */
static int record(nxc_reader_t *r, const char *tag, const uint8_t **val, size_t *val_len)
{
    size_t tag_len = strlen(tag), at = nxc_reader_offset(r);
    if (r->left < tag_len + 8)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "NIXL agent blob is truncated: record \"%s\" needs %zu header bytes at "
                        "offset %zu, %zu remain",
                        tag, tag_len + 8, at, r->left);
    if (memcmp(r->p, tag, tag_len) != 0)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "NIXL agent blob: expected record \"%s\" at offset %zu", tag, at);
    uint64_t n = nxc_get_u64(r->p + tag_len);
    size_t rest = r->left - tag_len - 8;
    if (rest == 0 || n > rest - 1)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "NIXL agent blob: record \"%s\" at offset %zu claims %llu bytes, %zu "
                        "remain",
                        tag, at, (unsigned long long)n, rest);
    const uint8_t *v = r->p + tag_len + 8;
    if (v[n] != '|')
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "NIXL agent blob: record \"%s\" at offset %zu does not end in '|'", tag,
                        at);
    *val = v;
    *val_len = (size_t)n;
    nxc_reader_advance(r, tag_len + 8 + (size_t)n + 1);
    return NXC_OK;
}

/* A record whose value is a little-endian integer of exactly `width` bytes. */
static int record_uint(nxc_reader_t *r, const char *tag, size_t width, uint64_t *out)
{
    const uint8_t *v = NULL;
    size_t n = 0;
    int rc = record(r, tag, &v, &n);
    if (rc != NXC_OK)
        return rc;
    if (n != width)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "NIXL agent blob: record \"%s\" holds %zu bytes, expected %zu", tag, n,
                        width);
    uint8_t b[8] = { 0 };
    memcpy(b, v, width);
    *out = nxc_get_u64(b);
    return NXC_OK;
}

/* A record whose value must be exactly the text `want`. */
static int record_equal(nxc_reader_t *r, const char *tag, const char *want)
{
    const uint8_t *v = NULL;
    size_t n = 0;
    int rc = record(r, tag, &v, &n);
    if (rc == NXC_OK && (n != strlen(want) || memcmp(v, want, n) != 0))
        rc = nxc_fail(NXC_ERR_BAD_METADATA, "NIXL agent blob: record \"%s\" is not \"%s\"", tag,
                      want);
    return rc;
}

/* A record holding 1..max bytes. */
static int record_sized(nxc_reader_t *r, const char *tag, size_t max, const uint8_t **v, size_t *n)
{
    int rc = record(r, tag, v, n);
    if (rc == NXC_OK && (*n == 0 || *n > max))
        rc = nxc_fail(NXC_ERR_BAD_METADATA,
                      "NIXL agent blob: record \"%s\" holds %zu bytes, expected 1 to %zu", tag,
                      *n, max);
    return rc;
}

static bool is_ucx(const uint8_t *v, size_t n)
{
    return n == UCX_BACKEND_LEN && memcmp(v, UCX_BACKEND, UCX_BACKEND_LEN) == 0;
}

static int decode_agent(nxc_reader_t *r, nxc_agent_blob_t *b)
{
    const uint8_t *name = NULL;
    size_t name_len = 0;
    int rc = record_sized(r, "Agent", NXC_NAME_MAX, &name, &name_len);
    if (rc != NXC_OK)
        return rc;
    if (memchr(name, '\0', name_len) != NULL)
        return nxc_fail(NXC_ERR_BAD_METADATA, "NIXL agent blob: name contains a NUL byte");
    b->name = (const char *)name;
    b->name_len = (uint16_t)name_len;
    return NXC_OK;
}

/* The backends' connection records; keeps the UCX one's worker address. */
static int decode_conns(nxc_reader_t *r, nxc_agent_blob_t *b)
{
    uint64_t count = 0;
    int rc = record_uint(r, "Conns", 8, &count);
    if (rc != NXC_OK)
        return rc;
    if (count == 0 || count > MAX_CONNS)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "NIXL agent blob: %llu backend connections, expected 1 to %d",
                        (unsigned long long)count, MAX_CONNS);
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *t = NULL, *c = NULL;
        size_t t_len = 0, c_len = 0;
        if ((rc = record_sized(r, "t", MAX_BACKEND_NAME, &t, &t_len)) != NXC_OK ||
            (rc = record_sized(r, "c", NXC_MAX_WORKER_ADDR, &c, &c_len)) != NXC_OK)
            return rc;
        if (is_ucx(t, t_len) && b->worker_addr == NULL) {
            b->worker_addr = c;
            b->worker_addr_len = (uint32_t)c_len;
        }
    }
    if (b->worker_addr == NULL)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "NIXL agent blob: the agent has no UCX backend (the only one we speak)");
    return NXC_OK;
}

/* Grows the region array by n, refusing counts the bytes left cannot hold
 * (so a claimed count never drives an allocation). */
static int reserve_regions(nxc_reader_t *r, nxc_agent_blob_t *b, uint64_t n, size_t *cap)
{
    if (n > r->left / MIN_REGION_RECORD ||
        b->n_regions + n > (uint64_t)NXC_MAX_DESCRIPTORS)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "NIXL agent blob: a section claims %llu regions, more than the %zu bytes "
                        "left or the %u-region limit allow",
                        (unsigned long long)n, r->left, NXC_MAX_DESCRIPTORS);
    size_t want = b->n_regions + (size_t)n;
    if (want <= *cap)
        return NXC_OK;
    nxc_region_t *grown = realloc(b->regions, want * sizeof *grown);
    if (grown == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "NIXL agent blob: cannot allocate %zu regions",
                        want);
    b->regions = grown;
    *cap = want;
    return NXC_OK;
}

static int decode_region(nxc_reader_t *r, bool keep, nxc_agent_blob_t *b)
{
    const uint8_t *v = NULL;
    size_t n = 0;
    size_t at = nxc_reader_offset(r);
    int rc = record(r, "", &v, &n);
    if (rc != NXC_OK)
        return rc;
    if (n < BASIC_DESC_LEN + (keep ? 1 : 0) || n - BASIC_DESC_LEN > NXC_MAX_RKEY_LEN)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "NIXL agent blob: region record at offset %zu holds %zu bytes, expected "
                        "%d plus a packed rkey of 1 to %u bytes",
                        at, n, BASIC_DESC_LEN, NXC_MAX_RKEY_LEN);
    uint64_t base = nxc_get_u64(v), len = nxc_get_u64(v + 8);
    if (len > UINT64_MAX - base)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "NIXL agent blob: region at offset %zu [0x%llx,+%llu) wraps around", at,
                        (unsigned long long)base, (unsigned long long)len);
    if (!keep)
        return NXC_OK;
    b->regions[b->n_regions++] = (nxc_region_t){
        .base = base,
        .len = len,
        .rkey = v + BASIC_DESC_LEN,
        .rkey_len = (uint32_t)(n - BASIC_DESC_LEN),
    };
    return NXC_OK;
}

/* One section: a backend's descriptor list of one memory type. Regions of
 * other backends are checked and skipped: we cannot use their keys. */
static int decode_section(nxc_reader_t *r, nxc_agent_blob_t *b, size_t *cap)
{
    const uint8_t *bk = NULL;
    size_t bk_len = 0;
    uint64_t mem_type = 0, count = 0;
    int rc = record_sized(r, "bknd", MAX_BACKEND_NAME, &bk, &bk_len);
    if (rc == NXC_OK)
        rc = record_equal(r, "nixlDList", SD_LIST);
    if (rc == NXC_OK)
        rc = record_uint(r, "t", 4, &mem_type);
    if (rc == NXC_OK)
        rc = record_uint(r, "n", 8, &count);
    if (rc != NXC_OK)
        return rc;
    if (count == 0) /* NIXL's own reader refuses an empty list too */
        return nxc_fail(NXC_ERR_BAD_METADATA, "NIXL agent blob: a section has no regions");
    bool keep = is_ucx(bk, bk_len);
    if (keep && (rc = reserve_regions(r, b, count, cap)) != NXC_OK)
        return rc;
    for (uint64_t i = 0; i < count && rc == NXC_OK; i++)
        rc = decode_region(r, keep, b);
    return rc;
}

static int decode_sections(nxc_reader_t *r, nxc_agent_blob_t *b)
{
    uint64_t count = 0;
    size_t cap = 0;
    int rc = record_equal(r, "", MEM_SECTION);
    if (rc == NXC_OK)
        rc = record_uint(r, "nixlSecElms", 8, &count);
    if (rc != NXC_OK)
        return rc;
    /* A section is at least its five records: bounds the loop. */
    if (count > r->left / (5 * RECORD_OVERHEAD))
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "NIXL agent blob: %llu sections cannot fit in the %zu bytes left",
                        (unsigned long long)count, r->left);
    for (uint64_t i = 0; i < count && rc == NXC_OK; i++)
        rc = decode_section(r, b, &cap);
    return rc;
}

static int compare_region_base(const void *a, const void *b)
{
    uint64_t x = ((const nxc_region_t *)a)->base, y = ((const nxc_region_t *)b)->base;
    return (x > y) - (x < y);
}

int nxc_nixl_blob_decode(const uint8_t *buf, size_t len, nxc_agent_blob_t *out)
{
    if (buf == NULL || out == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "nxc_nixl_blob_decode: NULL argument");
    if (!nxc_nixl_blob_is(buf, len))
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "not a NIXL agent blob (it does not start with \"%s\")", NXC_NIXL_MAGIC);
    nxc_reader_t r = nxc_reader_at(buf, len, NXC_NIXL_MAGIC_LEN);
    nxc_agent_blob_t b;
    memset(&b, 0, sizeof b);
    int rc = decode_agent(&r, &b);
    if (rc == NXC_OK)
        rc = decode_conns(&r, &b);
    if (rc == NXC_OK)
        rc = decode_sections(&r, &b);
    if (rc == NXC_OK && r.left != 0)
        rc = nxc_fail(NXC_ERR_BAD_METADATA,
                      "NIXL agent blob: %zu bytes of trailing garbage at offset %zu", r.left,
                      nxc_reader_offset(&r));
    if (rc != NXC_OK) {
        free(b.regions);
        return rc;
    }
    if (b.n_regions > 1)
        qsort(b.regions, b.n_regions, sizeof *b.regions, compare_region_base);
    *out = b;
    return NXC_OK;
}

/* ---- encoding --------------------------------------------------------- */

static void put_record(nxc_writer_t *w, const char *tag, const void *v, size_t n)
{
    nxc_write_bytes(w, tag, strlen(tag));
    nxc_write_u64(w, n);
    nxc_write_bytes(w, v, n);
    nxc_write_bytes(w, "|", 1);
}

static void put_record_u64(nxc_writer_t *w, const char *tag, uint64_t v, size_t width)
{
    uint8_t b[8];
    nxc_put_u64(b, v);
    put_record(w, tag, b, width);
}

static size_t record_len(const char *tag, size_t n)
{
    return strlen(tag) + RECORD_OVERHEAD + n;
}

static size_t encoded_len(const nxc_agent_blob_t *b)
{
    size_t total = NXC_NIXL_MAGIC_LEN + record_len("Agent", b->name_len) +
                   record_len("Conns", 8) + record_len("t", UCX_BACKEND_LEN) +
                   record_len("c", b->worker_addr_len) + record_len("", strlen(MEM_SECTION)) +
                   record_len("nixlSecElms", 8);
    if (b->n_regions == 0)
        return total;
    total += record_len("bknd", UCX_BACKEND_LEN) + record_len("nixlDList", strlen(SD_LIST)) +
             record_len("t", 4) + record_len("n", 8);
    for (uint32_t i = 0; i < b->n_regions; i++)
        total += record_len("", BASIC_DESC_LEN + b->regions[i].rkey_len);
    return total;
}

int nxc_nixl_blob_encode(const nxc_agent_blob_t *b, uint8_t **out, size_t *out_len)
{
    if (b == NULL || out == NULL || out_len == NULL || b->name == NULL || b->name_len == 0 ||
        b->worker_addr == NULL || b->worker_addr_len == 0 ||
        (b->n_regions > 0 && b->regions == NULL))
        return nxc_fail(NXC_ERR_INVALID_ARG, "nxc_nixl_blob_encode: incomplete agent blob");
    size_t size = encoded_len(b);
    uint8_t *buf = malloc(size);
    if (buf == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "NIXL agent blob: cannot allocate %zu bytes", size);
    nxc_writer_t w = { buf };
    memcpy(w.p, NXC_NIXL_MAGIC, NXC_NIXL_MAGIC_LEN);
    w.p += NXC_NIXL_MAGIC_LEN;
    put_record(&w, "Agent", b->name, b->name_len);
    put_record_u64(&w, "Conns", 1, 8);
    put_record(&w, "t", UCX_BACKEND, UCX_BACKEND_LEN);
    put_record(&w, "c", b->worker_addr, b->worker_addr_len);
    put_record(&w, "", MEM_SECTION, strlen(MEM_SECTION));
    /* NIXL leaves out a backend with nothing registered. */
    put_record_u64(&w, "nixlSecElms", b->n_regions > 0 ? 1 : 0, 8);
    if (b->n_regions > 0) {
        put_record(&w, "bknd", UCX_BACKEND, UCX_BACKEND_LEN);
        put_record(&w, "nixlDList", SD_LIST, strlen(SD_LIST));
        put_record_u64(&w, "t", NXC_NIXL_MEM_DRAM, 4);
        put_record_u64(&w, "n", b->n_regions, 8);
    }
    for (uint32_t i = 0; i < b->n_regions; i++) {
        const nxc_region_t *rg = &b->regions[i];
        /* Empty tag: the record starts with its length; the value is the
         * basic descriptor followed by the rkey. */
        nxc_write_u64(&w, BASIC_DESC_LEN + rg->rkey_len);
        nxc_write_u64(&w, rg->base);
        nxc_write_u64(&w, rg->len);
        nxc_write_u64(&w, 0); /* devId: host memory */
        memcpy(w.p, rg->rkey, rg->rkey_len);
        w.p += rg->rkey_len;
        *w.p++ = '|';
    }
    *out = buf;
    *out_len = size;
    return NXC_OK;
}

/* ---- rkeys ---------------------------------------------------------- */

int nxc_nixl_rkey_strip(const uint8_t *in, size_t len, uint8_t *out, size_t *out_len)
{
    if (len < 9)
        return nxc_fail(NXC_ERR_TRANSPORT, "a packed rkey of %zu bytes is too short", len);
    uint64_t map = nxc_get_u64(in), kept = map;
    size_t r = 9, w = 9;
    out[8] = in[8];
    for (int bit = 0; bit < 64; bit++) {
        if (!(map & (1ull << bit)))
            continue;
        if (r >= len || in[r] > len - r - 1)
            return nxc_fail(NXC_ERR_TRANSPORT, "packed rkey entry %d overruns its %zu bytes",
                            bit, len);
        size_t n = in[r];
        if (n == 0) {
            kept &= ~(1ull << bit);
        } else {
            memmove(out + w, in + r, n + 1);
            w += n + 1;
        }
        r += n + 1;
    }
    memmove(out + w, in + r, len - r);
    w += len - r;
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(kept >> (8 * i));
    *out_len = w;
    return NXC_OK;
}

/* ---- notifications ---------------------------------------------------- */

int nxc_nixl_notif_encode(const char *name, size_t name_len, const char *msg, size_t msg_len,
                          uint8_t **out, size_t *out_len)
{
    size_t size = NXC_NIXL_MAGIC_LEN + record_len("name", name_len) + record_len("msg", msg_len);
    uint8_t *buf = malloc(size);
    if (buf == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for a NIXL notification");
    nxc_writer_t w = { buf };
    memcpy(w.p, NXC_NIXL_MAGIC, NXC_NIXL_MAGIC_LEN);
    w.p += NXC_NIXL_MAGIC_LEN;
    put_record(&w, "name", name, name_len);
    put_record(&w, "msg", msg, msg_len);
    *out = buf;
    *out_len = size;
    return NXC_OK;
}

int nxc_nixl_notif_decode(const uint8_t *buf, size_t len, const char **name, size_t *name_len,
                          const char **msg, size_t *msg_len)
{
    if (!nxc_nixl_blob_is(buf, len))
        return nxc_fail(NXC_ERR_BAD_METADATA, "a NIXL notification must start with \"%s\"",
                        NXC_NIXL_MAGIC);
    nxc_reader_t r = nxc_reader_at(buf, len, NXC_NIXL_MAGIC_LEN);
    const uint8_t *n = NULL, *m = NULL;
    int rc = record_sized(&r, "name", NXC_NAME_MAX, &n, name_len);
    if (rc == NXC_OK)
        rc = record(&r, "msg", &m, msg_len);
    if (rc == NXC_OK && r.left != 0)
        rc = nxc_fail(NXC_ERR_BAD_METADATA,
                      "NIXL notification: %zu bytes of trailing garbage", r.left);
    if (rc != NXC_OK)
        return rc;
    *name = (const char *)n;
    *msg = (const char *)m;
    return NXC_OK;
}
