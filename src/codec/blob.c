/* The agent blob: our own versioned binary record describing the passive
 * worker and this op's registered regions (see metadata.h).
 *
 * Layout, all integers little-endian:
 *   u32 magic (NXC_BLOB_MAGIC)   u16 version   u16 reserved (0)
 *   u16 name_len                 name bytes (1..255)
 *   u32 pid   u64 pidns   16 bytes host_id
 *   u32 worker_addr_len          worker address bytes (1..NXC_MAX_WORKER_ADDR)
 *   u32 n_regions, then per region:
 *     u64 base   u64 len   u32 flags   u32 rkey_len   rkey bytes (1..NXC_MAX_RKEY_LEN)
 *   version 2 only, the op's gate (direct.h):
 *     u64 gate id   u32 gate fd   u32 slot   u32 generation
 * A blob without a gate is written as version 1, so peers that predate
 * the gate read every blob of a connector that does not offer it.
 *
 * Region flags are carried as they are: a reader ignores bits it does not
 * know, so a writer may add hints without a version bump. Anything that
 * changes the meaning of existing fields bumps NXC_BLOB_VERSION. */
#include <stdlib.h>
#include <string.h>

#include "codec/cursor.h"
#include "codec/metadata.h"
#include "common/error.h"

#define BLOB_HEADER_LEN   (4 + 2 + 2)
#define BLOB_IDENTITY_LEN (4 + 8 + NXC_HOST_ID_BYTES)
#define REGION_FIXED_LEN  (8 + 8 + 4 + 4)
/* A region also carries at least one rkey byte. */
#define REGION_MIN_LEN    (REGION_FIXED_LEN + 1)
#define GATE_LEN          (8 + 4 + 4 + 4)

/* ---- encoding --------------------------------------------------------- */

/* Checks what the decoder would refuse, so we never emit a blob our own
 * peers reject, and sums the encoded size. */
static int check_blob_for_encoding(const nxc_agent_blob_t *b, size_t *size)
{
    if (b->name == NULL || b->name_len == 0 || b->name_len > NXC_NAME_MAX)
        return nxc_fail(NXC_ERR_INVALID_ARG, "agent blob: name must be 1 to %d bytes, got %u",
                        NXC_NAME_MAX, (unsigned)b->name_len);
    if (b->worker_addr == NULL || b->worker_addr_len == 0 ||
        b->worker_addr_len > NXC_MAX_WORKER_ADDR)
        return nxc_fail(NXC_ERR_INVALID_ARG,
                        "agent blob: worker address must be 1 to %u bytes, got %u",
                        NXC_MAX_WORKER_ADDR, (unsigned)b->worker_addr_len);
    if (b->n_regions > 0 && b->regions == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "agent blob: %u regions but regions is NULL",
                        (unsigned)b->n_regions);
    size_t total = BLOB_HEADER_LEN + 2 + b->name_len + BLOB_IDENTITY_LEN + 4 +
                   b->worker_addr_len + 4;
    for (uint32_t i = 0; i < b->n_regions; i++) {
        const nxc_region_t *r = &b->regions[i];
        if (r->rkey == NULL || r->rkey_len == 0 || r->rkey_len > NXC_MAX_RKEY_LEN)
            return nxc_fail(NXC_ERR_INVALID_ARG,
                            "agent blob: region %u: rkey must be 1 to %u bytes, got %u",
                            (unsigned)i, NXC_MAX_RKEY_LEN, (unsigned)r->rkey_len);
        if (r->len > UINT64_MAX - r->base)
            return nxc_fail(NXC_ERR_INVALID_ARG,
                            "agent blob: region %u: base 0x%llx + len %llu overflows",
                            (unsigned)i, (unsigned long long)r->base,
                            (unsigned long long)r->len);
        total += REGION_FIXED_LEN + r->rkey_len;
        if (total > NXC_MAX_BLOB_LEN)
            return nxc_fail(NXC_ERR_INVALID_ARG,
                            "agent blob: more than %u bytes at region %u", NXC_MAX_BLOB_LEN,
                            (unsigned)i);
    }
    *size = total + (b->gate.present ? GATE_LEN : 0);
    return NXC_OK;
}

int nxc_blob_encode(const nxc_agent_blob_t *b, uint8_t **out, size_t *out_len)
{
    size_t size = 0;
    if (b == NULL || out == NULL || out_len == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "nxc_blob_encode: NULL argument");
    int rc = check_blob_for_encoding(b, &size);
    if (rc != NXC_OK)
        return rc;
    uint8_t *buf = malloc(size);
    if (buf == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "agent blob: cannot allocate %zu bytes", size);

    nxc_writer_t w = { buf };
    nxc_write_u32(&w, NXC_BLOB_MAGIC);
    nxc_write_u16(&w, b->gate.present ? NXC_BLOB_VERSION_GATE : NXC_BLOB_VERSION);
    nxc_write_u16(&w, 0);
    nxc_write_u16(&w, b->name_len);
    nxc_write_bytes(&w, b->name, b->name_len);
    nxc_write_u32(&w, b->identity.pid);
    nxc_write_u64(&w, b->identity.pidns);
    nxc_write_bytes(&w, b->identity.host_id, NXC_HOST_ID_BYTES);
    nxc_write_u32(&w, b->worker_addr_len);
    nxc_write_bytes(&w, b->worker_addr, b->worker_addr_len);
    nxc_write_u32(&w, b->n_regions);
    for (uint32_t i = 0; i < b->n_regions; i++) {
        const nxc_region_t *r = &b->regions[i];
        nxc_write_u64(&w, r->base);
        nxc_write_u64(&w, r->len);
        nxc_write_u32(&w, r->flags);
        nxc_write_u32(&w, r->rkey_len);
        nxc_write_bytes(&w, r->rkey, r->rkey_len);
    }
    if (b->gate.present) {
        nxc_write_u64(&w, b->gate.id);
        nxc_write_u32(&w, b->gate.fd);
        nxc_write_u32(&w, b->gate.slot);
        nxc_write_u32(&w, b->gate.gen);
    }
    *out = buf;
    *out_len = size;
    return NXC_OK;
}

/* ---- decoding --------------------------------------------------------- */

/* Every read says which field it is for, so a short blob fails with a
 * sentence naming the field it stopped in. */
static int truncated(const nxc_reader_t *r, const char *field, size_t need)
{
    return nxc_fail(NXC_ERR_BAD_METADATA,
                    "agent blob is truncated: %s needs %zu bytes at offset %zu, %zu remain",
                    field, need, nxc_reader_offset(r), r->left);
}

static int take(nxc_reader_t *r, size_t n, const char *field, const uint8_t **out)
{
    if (r->left < n)
        return truncated(r, field, n);
    *out = nxc_reader_advance(r, n);
    return NXC_OK;
}

static int get_u16(nxc_reader_t *r, const char *field, uint16_t *v)
{
    const uint8_t *b = NULL;
    int rc = take(r, 2, field, &b);
    if (rc == NXC_OK)
        *v = nxc_get_u16(b);
    return rc;
}

static int get_u32(nxc_reader_t *r, const char *field, uint32_t *v)
{
    const uint8_t *b = NULL;
    int rc = take(r, 4, field, &b);
    if (rc == NXC_OK)
        *v = nxc_get_u32(b);
    return rc;
}

static int get_u64(nxc_reader_t *r, const char *field, uint64_t *v)
{
    uint32_t lo, hi;
    int rc = get_u32(r, field, &lo);
    if (rc == NXC_OK)
        rc = get_u32(r, field, &hi);
    if (rc == NXC_OK)
        *v = (uint64_t)hi << 32 | lo;
    return rc;
}

/* A length field followed by that many bytes, checked against [1, max]
 * and against what remains before anything is taken. */
static int get_counted(nxc_reader_t *r, uint32_t len, uint32_t max, const char *field,
                       const uint8_t **out)
{
    if (len == 0 || len > max)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "agent blob: %s length %u is outside 1..%u", field, (unsigned)len,
                        (unsigned)max);
    return take(r, len, field, out);
}

static int decode_header(nxc_reader_t *r, uint16_t *version_out)
{
    uint32_t magic;
    uint16_t version, reserved;
    int rc = get_u32(r, "magic", &magic);
    if (rc != NXC_OK)
        return rc;
    if (magic != NXC_BLOB_MAGIC)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "neither an nxc agent blob (magic 0x%08x, expected 0x%08x) nor NIXL "
                        "agent metadata",
                        (unsigned)magic, NXC_BLOB_MAGIC);
    if ((rc = get_u16(r, "version", &version)) != NXC_OK)
        return rc;
    if (version != NXC_BLOB_VERSION && version != NXC_BLOB_VERSION_GATE)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "agent blob version %u is not supported (this library reads versions "
                        "%u and %u)", (unsigned)version, NXC_BLOB_VERSION,
                        NXC_BLOB_VERSION_GATE);
    *version_out = version;
    if ((rc = get_u16(r, "reserved field", &reserved)) != NXC_OK)
        return rc;
    if (reserved != 0)
        return nxc_fail(NXC_ERR_BAD_METADATA, "agent blob: reserved field is %u, expected 0",
                        (unsigned)reserved);
    return NXC_OK;
}

static int decode_worker(nxc_reader_t *r, nxc_agent_blob_t *b)
{
    uint16_t name_len;
    uint32_t addr_len;
    const uint8_t *name = NULL, *host_id = NULL;
    int rc = get_u16(r, "name length", &name_len);
    if (rc == NXC_OK)
        rc = get_counted(r, name_len, NXC_NAME_MAX, "name", &name);
    if (rc == NXC_OK)
        rc = get_u32(r, "pid", &b->identity.pid);
    if (rc == NXC_OK)
        rc = get_u64(r, "pid namespace", &b->identity.pidns);
    if (rc == NXC_OK)
        rc = take(r, NXC_HOST_ID_BYTES, "host id", &host_id);
    if (rc == NXC_OK)
        rc = get_u32(r, "worker address length", &addr_len);
    if (rc == NXC_OK)
        rc = get_counted(r, addr_len, NXC_MAX_WORKER_ADDR, "worker address", &b->worker_addr);
    if (rc != NXC_OK)
        return rc;
    /* Names are text: one with a NUL could not be shown or compared whole. */
    if (memchr(name, '\0', name_len) != NULL)
        return nxc_fail(NXC_ERR_BAD_METADATA, "agent blob: name contains a NUL byte");
    b->name = (const char *)name;
    b->name_len = name_len;
    memcpy(b->identity.host_id, host_id, NXC_HOST_ID_BYTES);
    b->worker_addr_len = addr_len;
    return NXC_OK;
}

static int decode_region(nxc_reader_t *r, uint32_t i, nxc_region_t *out)
{
    int rc = get_u64(r, "region base", &out->base);
    if (rc == NXC_OK)
        rc = get_u64(r, "region length", &out->len);
    if (rc == NXC_OK)
        rc = get_u32(r, "region flags", &out->flags);
    if (rc == NXC_OK)
        rc = get_u32(r, "rkey length", &out->rkey_len);
    if (rc == NXC_OK)
        rc = get_counted(r, out->rkey_len, NXC_MAX_RKEY_LEN, "rkey", &out->rkey);
    if (rc != NXC_OK)
        return nxc_fail(rc, "region %u: %s", (unsigned)i, nxc_last_error());
    if (out->len > UINT64_MAX - out->base)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "agent blob: region %u: base 0x%llx + length %llu overflows",
                        (unsigned)i, (unsigned long long)out->base,
                        (unsigned long long)out->len);
    return NXC_OK;
}

static int decode_regions(nxc_reader_t *r, nxc_agent_blob_t *b)
{
    uint32_t n;
    int rc = get_u32(r, "region count", &n);
    if (rc != NXC_OK)
        return rc;
    /* Checked against the bytes that remain before allocating, so an
     * absurd count fails here instead of asking malloc for gigabytes. */
    if (n > r->left / REGION_MIN_LEN)
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "agent blob: %u regions cannot fit in the %zu bytes that remain "
                        "(each takes at least %d)",
                        (unsigned)n, r->left, REGION_MIN_LEN);
    nxc_region_t *regions = NULL;
    if (n > 0 && (regions = calloc(n, sizeof *regions)) == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "agent blob: cannot allocate %u regions",
                        (unsigned)n);
    for (uint32_t i = 0; i < n; i++) {
        rc = decode_region(r, i, &regions[i]);
        if (rc != NXC_OK) {
            free(regions);
            return rc;
        }
    }
    b->n_regions = n;
    b->regions = regions;
    return NXC_OK;
}

static int decode_gate(nxc_reader_t *r, nxc_gate_ref_t *g)
{
    int rc = get_u64(r, "gate id", &g->id);
    if (rc == NXC_OK)
        rc = get_u32(r, "gate fd", &g->fd);
    if (rc == NXC_OK)
        rc = get_u32(r, "gate slot", &g->slot);
    if (rc == NXC_OK)
        rc = get_u32(r, "gate generation", &g->gen);
    if (rc == NXC_OK && g->fd > INT32_MAX)
        rc = nxc_fail(NXC_ERR_BAD_METADATA, "agent blob: gate fd %u is not an fd number",
                      (unsigned)g->fd);
    g->present = rc == NXC_OK;
    return rc;
}

int nxc_blob_decode(const uint8_t *buf, size_t len, nxc_agent_blob_t *out)
{
    if (buf == NULL || out == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "nxc_blob_decode: NULL argument");
    nxc_reader_t r = nxc_reader_at(buf, len, 0);
    nxc_agent_blob_t b;
    memset(&b, 0, sizeof b);
    uint16_t version = 0;
    int rc = decode_header(&r, &version);
    if (rc == NXC_OK)
        rc = decode_worker(&r, &b);
    if (rc == NXC_OK)
        rc = decode_regions(&r, &b);
    if (rc == NXC_OK && version == NXC_BLOB_VERSION_GATE && (rc = decode_gate(&r, &b.gate)) != NXC_OK)
        free(b.regions);
    if (rc != NXC_OK)
        return rc;
    if (r.left != 0) {
        free(b.regions);
        return nxc_fail(NXC_ERR_BAD_METADATA,
                        "agent blob has %zu bytes of trailing garbage after offset %zu",
                        r.left, nxc_reader_offset(&r));
    }
    *out = b;
    return NXC_OK;
}
