/* Runs of adjacent buffers: the AM protocol sends descriptors adjacent on
 * both sides as one message. Checked byte for byte when the blocks are
 * adjacent on both sides, on one side only (the other side's blocks are
 * every other block of a larger buffer), and with empty descriptors in the
 * middle of a run, for reads and writes. Two connectors in one process. */
#include <stdlib.h>
#include <string.h>

#include "e2e_common.h"

#define BLOCKS 64
#define BLOCK  4096

enum layout { ADJACENT, SPREAD, HOLES };

/* Carves `BLOCKS` descriptors out of one allocation. SPREAD leaves a block
 * of gap after each; HOLES makes every 5th descriptor empty. */
static uint8_t *carve(enum layout l, nxc_descriptor_t *d)
{
    size_t stride = l == SPREAD ? 2 * BLOCK : BLOCK;
    uint8_t *base = malloc(stride * BLOCKS);
    CHECK(base != NULL, "malloc");
    for (size_t i = 0; i < BLOCKS; i++) {
        d[i].ptr = base + i * stride;
        d[i].size = (l == HOLES && i % 5 == 4) ? 0 : BLOCK;
        d[i].device = (nxc_device_t){ NXC_DEVICE_HOST, 0 };
    }
    return base;
}

static void run_case(nxc_connector_t *P, nxc_connector_t *A, nxc_op_kind_t kind,
                     enum layout passive_layout, enum layout active_layout)
{
    nxc_descriptor_t pd[BLOCKS], ad[BLOCKS];
    uint8_t *pbase = carve(passive_layout, pd), *abase = carve(active_layout, ad);
    if (passive_layout == HOLES || active_layout == HOLES)
        for (size_t i = 0; i < BLOCKS; i++) /* sizes must pair up */
            pd[i].size = ad[i].size = (i % 5 == 4) ? 0 : BLOCK;
    nxc_descriptor_t *src = kind == NXC_OP_READ ? pd : ad, *dst = kind == NXC_OP_READ ? ad : pd;
    for (size_t i = 0; i < BLOCKS; i++) {
        e2e_fill(src[i].ptr, src[i].size, 7, i, 0);
        e2e_fill(dst[i].ptr, dst[i].size, 7, i, 0x5a);
    }
    e2e_local_transfer(P, A, kind, pd, ad, BLOCKS);
    for (size_t i = 0; i < BLOCKS; i++)
        CHECK(e2e_verify(dst[i].ptr, dst[i].size, 7, i, 0) == (size_t)-1 ||
                  dst[i].size == 0,
              "%s, passive layout %d, active layout %d: block %zu wrong",
              nxc_op_kind_name(kind), passive_layout, active_layout, i);
    free(pbase);
    free(abase);
}

int main(void)
{
    e2e_init("e2e_runs", 60);
    nxc_connector_t *P = e2e_connector(NULL), *A = e2e_connector(NULL);
    static const enum layout pairs[][2] = {
        { ADJACENT, ADJACENT }, { ADJACENT, SPREAD }, { SPREAD, ADJACENT },
        { SPREAD, SPREAD },     { HOLES, HOLES },     { HOLES, SPREAD },
    };
    int cases = 0;
    for (int k = NXC_OP_READ; k <= NXC_OP_WRITE; k++)
        for (size_t p = 0; p < sizeof(pairs) / sizeof(pairs[0]); p++, cases++)
            run_case(P, A, (nxc_op_kind_t)k, pairs[p][0], pairs[p][1]);
    nxc_connector_destroy(A);
    nxc_connector_destroy(P);
    return e2e_pass("%d layouts of %d x %d B checked", cases, BLOCKS, BLOCK);
}
