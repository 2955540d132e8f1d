/* Who a peer is, and BEGINs without our worker address (engine/peer.h,
 * knows_us). The first BEGIN to a peer carries the address, later ones do
 * not once the peer has answered; a passive side that lost its endpoint to us (it declared us
 * failed while we lived) drops an address-less BEGIN untouched, and the
 * active side sends it again with the address after NXC_REACH_TIMEOUT_MS:
 * every op still completes with its data, none waits for its own timeout.
 * And a connector destroyed and created again under the same name in the
 * same process is a new peer to the other side, in both roles.
 *
 * Shared memory only: forgetting a live peer force-closes our endpoint to
 * it, which over TCP closes the connection under the other side (its ops
 * then fail, as they should, and UCX 1.13 has crashed on that path). */
#include <stdlib.h>
#include <string.h>

#include "e2e_common.h"
#include "e2e_private.h"
#include "engine/op.h"
#include "engine/peer.h"

#define REACH_MS 400

static nxc_connector_t *make(const char *name)
{
    nxc_connector_config_t cfg = {
        .field_mask = NXC_CONFIG_NAME | NXC_CONFIG_PROGRESS_THREAD,
        .name = name,
        .progress_thread = 1,
    };
    nxc_connector_t *c = NULL;
    CHECK_RC(nxc_connector_create(&cfg, &c), NXC_OK);
    return c;
}

static uint64_t unanswerable(nxc_connector_t *c)
{
    nxc_lock(c);
    uint64_t n = c->unanswerable_begins;
    nxc_unlock(c);
    return n;
}

/* The passive side declares the active one failed although it lives:
 * its endpoint to it is closed and its record forgotten. */
static void forget(nxc_connector_t *c, const char *name)
{
    nxc_lock(c);
    for (nxc_peer_t *p = c->peers, *next; p != NULL; p = next) {
        next = p->next; /* nxc_peer_fail may free p */
        if (strcmp(p->name, name) == 0 && !p->dead)
            nxc_peer_fail(c, p, "test: worker '%s' declared failed while alive", name);
    }
    nxc_unlock(c);
}

/* One op of `size` bytes; returns whether its BEGIN left without our
 * address, and the begin -> COMPLETE time in *ms. */
static int transfer(nxc_connector_t *P, nxc_connector_t *A, nxc_op_kind_t kind, size_t size,
                    uint32_t seed, double *ms)
{
    size_t sizes[1] = { size };
    e2e_bufs_t src, dst;
    e2e_bufs_alloc(&src, seed, 1, sizes);
    e2e_bufs_alloc(&dst, seed, 1, sizes);
    e2e_bufs_fill(&src, 0);
    e2e_bufs_fill(&dst, E2E_INIT_XOR);
    nxc_op_t *passive = NULL, *active = NULL;
    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_create_readable(P, src.d, 1, &passive), NXC_OK);
    else
        CHECK_RC(nxc_create_writable(P, dst.d, 1, &passive), NXC_OK);
    nxc_metadata_t *md = e2e_parse(e2e_op_metadata(passive));
    double t0 = e2e_now_ms();
    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_begin_read(A, md, dst.d, 1, &active), NXC_OK);
    else
        CHECK_RC(nxc_begin_write(A, src.d, 1, md, &active), NXC_OK);
    nxc_lock(A);
    int omitted = active->addr_omitted;
    nxc_unlock(A);
    CHECK_RC(nxc_op_wait(active, 20000), NXC_OK, "active %s of %zu B",
             nxc_op_kind_name(kind), size);
    *ms = e2e_now_ms() - t0;
    CHECK_RC(nxc_op_wait(passive, 20000), NXC_OK, "passive side of %s of %zu B",
             nxc_op_kind_name(kind), size);
    size_t bad_idx = 0, bad_off = 0;
    CHECK(e2e_bufs_verify(&dst, 0, &bad_idx, &bad_off) == 0, "%s of %zu B: differs at %zu",
          nxc_op_kind_name(kind), size, bad_off);
    nxc_op_release(active);
    nxc_op_release(passive);
    nxc_metadata_free(md);
    e2e_bufs_free(&src);
    e2e_bufs_free(&dst);
    return omitted;
}

int main(void)
{
    char reach[16];
    snprintf(reach, sizeof reach, "%d", REACH_MS);
    setenv("NXC_REACH_TIMEOUT_MS", reach, 1);
    e2e_init("e2e_addrless", 120);
    nxc_connector_t *P = make("keeper"), *A = make("asker");
    double ms = 0;
    static const struct { nxc_op_kind_t kind; size_t size; } ops[] = {
        { NXC_OP_WRITE, 8 },         /* one WRITE message */
        { NXC_OP_WRITE, 64 << 10 },  /* BEGIN, data, DONE */
        { NXC_OP_READ, 8 },          /* a pulled read */
        { NXC_OP_READ, 1 << 20 },
    };

    e2e_step("the first BEGIN carries our address, the next ones do not");
    CHECK(!transfer(P, A, NXC_OP_WRITE, 8, 1, &ms), "the first BEGIN left without an address");
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        CHECK(transfer(P, A, ops[i].kind, ops[i].size, 2 + (uint32_t)i, &ms),
              "%s of %zu B after an answer still carried our address",
              nxc_op_kind_name(ops[i].kind), ops[i].size);
    CHECK(unanswerable(P) == 0, "the passive side dropped %llu BEGINs it could answer",
          (unsigned long long)unanswerable(P));

    e2e_step("a passive side that forgot us drops the BEGIN; it comes again with the address");
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        forget(P, "asker");
        uint64_t before = unanswerable(P);
        CHECK(transfer(P, A, ops[i].kind, ops[i].size, 10 + (uint32_t)i, &ms),
              "%s of %zu B: its BEGIN carried our address", nxc_op_kind_name(ops[i].kind),
              ops[i].size);
        CHECK(unanswerable(P) > before, "%s of %zu B: the passive side, which had forgotten "
              "us, did not drop the address-less BEGIN", nxc_op_kind_name(ops[i].kind),
              ops[i].size);
        CHECK(ms >= REACH_MS * 0.9, "%s of %zu B completed in %.0f ms, before the resend "
              "(%d ms)", nxc_op_kind_name(ops[i].kind), ops[i].size, ms, REACH_MS);
        /* answered again: the next BEGIN goes without the address, and is taken */
        uint64_t dropped = unanswerable(P);
        CHECK(transfer(P, A, ops[i].kind, ops[i].size, 20 + (uint32_t)i, &ms),
              "after the resend was answered, BEGINs still carry our address");
        CHECK(unanswerable(P) == dropped, "an address-less BEGIN was dropped after the "
              "passive side had our address again");
    }
    /* A connector destroyed and created again under the same name in the
     * same process has the same identity but a new worker: each side must
     * take it for a new peer (both hung until their timeouts before). */
    e2e_step("a passive connector created again under its name is a new peer");
    nxc_connector_destroy(P);
    P = make("keeper");
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        CHECK(!transfer(P, A, ops[i].kind, ops[i].size, 30 + (uint32_t)i, &ms) || i > 0,
              "the first BEGIN to the new passive connector left without our address");
    e2e_step("an active connector created again under its name is a new peer");
    nxc_connector_destroy(A);
    A = make("asker");
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        transfer(P, A, ops[i].kind, ops[i].size, 40 + (uint32_t)i, &ms);
    nxc_connector_destroy(A);
    nxc_connector_destroy(P);
    return e2e_pass("address-less BEGINs: omitted after an answer, resent when dropped; "
                    "connectors created again under their names are new peers");
}
