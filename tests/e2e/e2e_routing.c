/*
 * e2e_routing — notifications reach exactly their own operation.
 *
 * 200 passive ops are open at once on one connector (even: writable, odd:
 * readable; distinct sizes and patterns). An nxc_test_peer process completes
 * them one at a time in random order. After each peer op completes, exactly
 * that passive op becomes COMPLETE (with its data in place); every other op
 * not yet completed is still INITIALIZED or IN_PROGRESS, and the buffers of
 * the writable ones not yet written are untouched. All notification keys
 * are distinct.
 */
#include "e2e_common.h"

#include <stdlib.h>
#include <string.h>

#define NOPS 200

int main(void)
{
    e2e_init("e2e_routing", 170);
    nxc_connector_t *A = e2e_connector("e2e-routing");
    e2e_peer_t peer;
    e2e_peer_start(&peer);

    static nxc_op_t *ops[NOPS];
    static e2e_bufs_t bufs[NOPS];
    static char *keys[NOPS];
    static int done[NOPS], order[NOPS];
    for (int i = 0; i < NOPS; i++) {
        size_t size = 64 + (size_t)i * 13;
        nxc_op_kind_t kind = (i % 2) ? NXC_OP_READ : NXC_OP_WRITE;
        e2e_bufs_alloc(&bufs[i], 1000u + (uint32_t)i, 1, &size);
        e2e_bufs_fill(&bufs[i], kind == NXC_OP_READ ? 0 : E2E_INIT_XOR);
        if (kind == NXC_OP_READ)
            CHECK_RC(nxc_create_readable(A, bufs[i].d, 1, &ops[i]), NXC_OK, "(op %d)", i);
        else
            CHECK_RC(nxc_create_writable(A, bufs[i].d, 1, &ops[i]), NXC_OK, "(op %d)", i);
        nxc_metadata_t *md = e2e_parse(e2e_op_metadata(ops[i]));
        keys[i] = strdup(nxc_metadata_notification_key(md));
        nxc_metadata_free(md);
        for (int j = 0; j < i; j++)
            CHECK(strcmp(keys[i], keys[j]) != 0, "ops %d and %d share key %s", i, j, keys[i]);
        order[i] = i;
    }
    for (int i = NOPS - 1; i > 0; i--) {
        int j = (int)(e2e_rand() % (uint32_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }

    for (int k = 0; k < NOPS; k++) {
        int i = order[k];
        nxc_op_kind_t kind = nxc_op_kind(ops[i]);
        size_t size = bufs[i].d[0].size;
        int id = e2e_peer_active(&peer, A, kind, bufs[i].seed, 1, &size,
                                 e2e_op_metadata(ops[i]));
        CHECK(id >= 0, "peer begin on op %d failed: %d", i, id);
        e2e_peer_res_t r;
        e2e_peer_wait(&peer, A, id, 30000, &r);
        CHECK(r.rc == NXC_OK && r.status == NXC_OP_COMPLETE && r.verify == 0,
              "step %d (op %d, %s): peer rc %d status %d verify %d: %s", k, i,
              nxc_op_kind_name(kind), r.rc, r.status, r.verify, r.detail);
        e2e_peer_release(&peer, A, id);

        CHECK_RC(nxc_op_wait(ops[i], 10000), NXC_OK, "(step %d: passive op %d)", k, i);
        done[i] = 1;
        size_t bi, bo;
        CHECK(e2e_bufs_verify(&bufs[i], 0, &bi, &bo) == 0, "op %d: data wrong at %zu", i, bo);
        e2e_check_results(ops[i], &bufs[i], "passive op");
        for (int j = 0; j < NOPS; j++) {
            nxc_op_status_t st = nxc_op_status(ops[j]);
            if (done[j])
                CHECK(st == NXC_OP_COMPLETE, "step %d: op %d (completed earlier) is now %s", k,
                      j, nxc_op_status_name(st));
            else
                CHECK(st == NXC_OP_INITIALIZED || st == NXC_OP_IN_PROGRESS,
                      "step %d: peer completed op %d, but op %d is %s", k, i, j,
                      nxc_op_status_name(st));
        }
        if (k % 20 == 19 || k == NOPS - 1)
            for (int j = 0; j < NOPS; j++)
                if (!done[j] && nxc_op_kind(ops[j]) == NXC_OP_WRITE)
                    CHECK(e2e_bufs_verify(&bufs[j], E2E_INIT_XOR, &bi, &bo) == 0,
                          "step %d: writable op %d (not yet written) changed at %zu", k, j, bo);
    }

    e2e_peer_stop(&peer);
    e2e_peer_close(&peer);
    for (int i = 0; i < NOPS; i++) {
        nxc_op_release(ops[i]);
        e2e_bufs_free(&bufs[i]);
        free(keys[i]);
    }
    nxc_connector_destroy(A);
    return e2e_pass("%d passive ops completed in random order, each exactly by its own transfer",
                    NOPS);
}
