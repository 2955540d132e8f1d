/* nxc_mem_alloc: memory from UCX shared segments. Reads and writes between
 * two connectors of this process (same host: one-sided put/get into the
 * mapped segment, the peer's rkey cached across ops; over UCX_TLS=tcp the
 * message protocol), checked byte for byte, repeated so the cached rkey is
 * reused; mixed with malloc'd memory on the other side; argument errors;
 * memory left allocated at destroy is freed (ASan's leak check). */
#include <stdlib.h>
#include <string.h>

#include "e2e_common.h"

#define SIZE   (4u << 20)
#define BLOCKS 64

static void *ucx_mem(nxc_connector_t *c, size_t size)
{
    void *p = NULL;
    CHECK_RC(nxc_mem_alloc(c, size, &p), NXC_OK);
    CHECK(p != NULL, "nxc_mem_alloc gave NULL");
    return p;
}

static void transfer(nxc_connector_t *P, nxc_connector_t *A, nxc_op_kind_t kind, uint8_t *pbuf,
                     uint8_t *abuf, uint32_t seed)
{
    nxc_descriptor_t pd[BLOCKS], ad[BLOCKS];
    for (size_t i = 0; i < BLOCKS; i++) {
        pd[i] = (nxc_descriptor_t){ pbuf + i * (SIZE / BLOCKS), SIZE / BLOCKS,
                                    { NXC_DEVICE_HOST, 0 } };
        ad[i] = (nxc_descriptor_t){ abuf + i * (SIZE / BLOCKS), SIZE / BLOCKS,
                                    { NXC_DEVICE_HOST, 0 } };
    }
    nxc_descriptor_t *src = kind == NXC_OP_READ ? pd : ad, *dst = kind == NXC_OP_READ ? ad : pd;
    for (size_t i = 0; i < BLOCKS; i++) {
        e2e_fill(src[i].ptr, src[i].size, seed, i, 0);
        e2e_fill(dst[i].ptr, dst[i].size, seed, i, 0x5a);
    }
    e2e_local_transfer(P, A, kind, pd, ad, BLOCKS);
    for (size_t i = 0; i < BLOCKS; i++)
        CHECK(e2e_verify(dst[i].ptr, dst[i].size, seed, i, 0) == (size_t)-1,
              "%s seed %u: block %zu wrong", nxc_op_kind_name(kind), seed, i);
}

int main(void)
{
    e2e_init("e2e_alloc", 60);
    nxc_connector_t *P = e2e_connector(NULL), *A = e2e_connector(NULL);
    void *p = NULL;
    CHECK_RC(nxc_mem_alloc(NULL, 16, &p), NXC_ERR_INVALID_ARG);
    CHECK_RC(nxc_mem_alloc(P, 0, &p), NXC_ERR_INVALID_ARG);
    CHECK_RC(nxc_mem_alloc(P, 16, NULL), NXC_ERR_INVALID_ARG);
    int local = 7;
    nxc_mem_free(P, &local); /* not ours: ignored */
    nxc_mem_free(P, NULL);

    uint8_t *pbuf = ucx_mem(P, SIZE), *abuf = ucx_mem(A, SIZE), *plain = malloc(SIZE);
    CHECK(plain != NULL, "malloc");
    int n = 0;
    for (uint32_t round = 0; round < 3; round++) { /* later rounds reuse the cached rkey */
        for (int k = NXC_OP_READ; k <= NXC_OP_WRITE; k++, n++) {
            transfer(P, A, (nxc_op_kind_t)k, pbuf, abuf, 10 + round * 2 + (uint32_t)k);
            transfer(P, A, (nxc_op_kind_t)k, pbuf, plain, 20 + round * 2 + (uint32_t)k);
            transfer(P, A, (nxc_op_kind_t)k, plain, abuf, 30 + round * 2 + (uint32_t)k);
        }
    }
    nxc_mem_free(P, pbuf);
    free(plain);
    /* abuf is left to nxc_connector_destroy */
    nxc_connector_destroy(A);
    nxc_connector_destroy(P);
    return e2e_pass("%d transfers of %u bytes in %d blocks over UCX-allocated memory", n * 3,
                    SIZE, BLOCKS);
}
