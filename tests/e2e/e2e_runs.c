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
    nxc_op_t *passive, *active;
    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_create_readable(P, pd, BLOCKS, &passive), NXC_OK);
    else
        CHECK_RC(nxc_create_writable(P, pd, BLOCKS, &passive), NXC_OK);
    nxc_metadata_t *md = e2e_parse(e2e_op_metadata(passive));
    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_begin_read(A, md, ad, BLOCKS, &active), NXC_OK);
    else
        CHECK_RC(nxc_begin_write(A, ad, BLOCKS, md, &active), NXC_OK);
    nxc_op_t *ops[2] = { passive, active };
    CHECK(e2e_drive_until_final(ops, 2, P, A, 10000) == 0, "ops did not finish");
    CHECK_RC(nxc_op_wait(active, 0), NXC_OK);
    CHECK_RC(nxc_op_wait(passive, 0), NXC_OK);
    for (size_t i = 0; i < BLOCKS; i++)
        CHECK(e2e_verify(dst[i].ptr, dst[i].size, 7, i, 0) == (size_t)-1 ||
                  dst[i].size == 0,
              "%s, passive layout %d, active layout %d: block %zu wrong",
              nxc_op_kind_name(kind), passive_layout, active_layout, i);
    nxc_op_release(active);
    nxc_op_release(passive);
    nxc_metadata_free(md);
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
