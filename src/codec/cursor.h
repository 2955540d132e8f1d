/* Private to codec/: cursors over the binary blobs (ours, blob.c, and
 * NIXL's, nixl_blob.c). The reader only knows where it is; each decoder
 * checks lengths against r->left and words its own error sentences. The
 * writer trusts the size its encoder computed first. Integers are
 * little-endian (common/bytes.h). */
#ifndef NXC_CURSOR_H
#define NXC_CURSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/bytes.h"

typedef struct nxc_reader {
    const uint8_t *p;
    size_t         left;
    size_t         len; /* whole blob, for offsets in error sentences */
} nxc_reader_t;

/* A reader at byte `skip` (<= len) of a blob of `len` bytes. */
static inline nxc_reader_t nxc_reader_at(const uint8_t *buf, size_t len, size_t skip)
{
    nxc_reader_t r = { buf + skip, len - skip, len };
    return r;
}

static inline size_t nxc_reader_offset(const nxc_reader_t *r)
{
    return r->len - r->left;
}

/* Steps over n bytes, which the caller checked are there; returns where
 * they start. */
static inline const uint8_t *nxc_reader_advance(nxc_reader_t *r, size_t n)
{
    const uint8_t *at = r->p;
    r->p += n;
    r->left -= n;
    return at;
}

typedef struct nxc_writer {
    uint8_t *p;
} nxc_writer_t;

static inline void nxc_write_bytes(nxc_writer_t *w, const void *src, size_t n)
{
    if (n > 0)
        memcpy(w->p, src, n);
    w->p += n;
}

static inline void nxc_write_u16(nxc_writer_t *w, uint16_t v)
{
    nxc_put_u16(w->p, v);
    w->p += 2;
}

static inline void nxc_write_u32(nxc_writer_t *w, uint32_t v)
{
    nxc_put_u32(w->p, v);
    w->p += 4;
}

static inline void nxc_write_u64(nxc_writer_t *w, uint64_t v)
{
    nxc_put_u64(w->p, v);
    w->p += 8;
}

#endif
