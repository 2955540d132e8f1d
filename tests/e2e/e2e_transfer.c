/*
 * e2e_transfer local|proc — data moves byte for byte, end to end.
 *
 *   local: two connectors in this process (passive side waited on by a
 *          second thread, active side by the main thread).
 *   proc:  this process and an nxc_test_peer process, in both roles
 *          (we are active against the peer's passive op, and passive for
 *          the peer's active op).
 *
 * Matrix: READ and WRITE x descriptor counts {1, 3, 64} x sizes
 * {0 B, 1 B, 4 KiB, 128 KiB, 128 KiB + 1, 1 MiB + 3, 64 MiB}, plus two
 * mixed-size lists. (Over TCP a message of up to 128 KiB goes eagerly,
 * one byte more by rendezvous: am.c, NXC_AM_EAGER_MAX.)
 * Cap (to keep runtime sane; the full matrix would be 4 GiB): a case is
 * skipped when count x size exceeds 65 MiB, so 64 MiB runs with 1
 * descriptor only and 1 MiB + 3 with up to 64 (64 MiB + 192 B).
 *
 * Sources carry a pattern depending on seed, descriptor index and offset;
 * destinations are pre-filled with pattern ^ 0x5A (differs at every byte).
 * For every op: the passive op starts INITIALIZED, nxc_op_results() is
 * refused (NXC_ERR_STATE) before COMPLETE, both sides reach COMPLETE,
 * results() returns exactly the local descriptors, and the destination is
 * checked byte for byte (the source too: it must be left unchanged).
 */
#include "e2e_common.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CASE_CAP (65 * MiB)

static const size_t k_sizes[] = { 0, 1, 4 * KiB, 128 * KiB, 128 * KiB + 1, 1 * MiB + 3,
                                   64 * MiB };
static const size_t k_counts[] = { 1, 3, 64 };

static size_t g_cases, g_bytes;

typedef struct waiter {
    nxc_op_t *op;
    int rc;
} waiter_t;

static void *wait_thread(void *arg)
{
    waiter_t *w = arg;
    w->rc = nxc_op_wait(w->op, 120000);
    return NULL;
}

static void check_md(const nxc_metadata_t *md, nxc_op_kind_t kind, const e2e_bufs_t *b,
                     int same_process, const char *worker)
{
    CHECK(nxc_metadata_kind(md) == kind, "metadata kind %d, expected %d",
          (int)nxc_metadata_kind(md), (int)kind);
    CHECK(nxc_metadata_descriptor_count(md) == b->n, "metadata has %zu descriptors, expected %zu",
          nxc_metadata_descriptor_count(md), b->n);
    for (size_t i = 0; i < b->n; i++) {
        nxc_descriptor_t d;
        CHECK_RC(nxc_metadata_descriptor(md, i, &d), NXC_OK);
        CHECK(d.size == b->d[i].size, "metadata descriptor %zu size %zu, expected %zu", i,
              d.size, b->d[i].size);
        CHECK(d.device.kind == NXC_DEVICE_HOST, "metadata descriptor %zu device kind %d", i,
              (int)d.device.kind);
        if (same_process)
            CHECK(d.ptr == b->d[i].ptr, "metadata descriptor %zu ptr %p, expected %p", i, d.ptr,
                  b->d[i].ptr);
    }
    if (worker)
        CHECK(strcmp(nxc_metadata_worker_name(md), worker) == 0,
              "metadata worker '%s', expected '%s'", nxc_metadata_worker_name(md), worker);
    const char *key = nxc_metadata_notification_key(md);
    CHECK(key && strlen(key) >= 16, "notification key '%s' too short", key ? key : "(null)");
}

/* results() before COMPLETE must be refused; it may only succeed if the op
 * is COMPLETE (a small transfer may finish during begin). */
static void check_results_gate(nxc_op_t *op, const char *what)
{
    const nxc_descriptor_t *d = NULL;
    size_t n = 0;
    int rc = nxc_op_results(op, &d, &n);
    nxc_op_status_t st = nxc_op_status(op);
    if (rc == NXC_OK)
        CHECK(st == NXC_OP_COMPLETE, "%s: results() succeeded while status is %s", what,
              nxc_op_status_name(st));
    else
        CHECK_RC(rc, NXC_ERR_STATE, "(%s: results() before COMPLETE)", what);
}

static void src_dst(nxc_op_kind_t kind, e2e_bufs_t *passive, e2e_bufs_t *active)
{
    /* READ: passive is the source. WRITE: active is the source. */
    if (passive) e2e_bufs_fill(passive, kind == NXC_OP_READ ? 0 : E2E_INIT_XOR);
    if (active) e2e_bufs_fill(active, kind == NXC_OP_READ ? E2E_INIT_XOR : 0);
}

static void verify_bufs(const e2e_bufs_t *b, const char *what, nxc_op_kind_t kind, size_t n,
                        size_t size0)
{
    size_t bi = 0, bo = 0;
    CHECK(e2e_bufs_verify(b, 0, &bi, &bo) == 0,
          "%s (%s, n=%zu, size[0]=%zu): descriptor %zu differs at offset %zu "
          "(got 0x%02x, want 0x%02x)",
          what, nxc_op_kind_name(kind), n, size0, bi, bo, ((uint8_t *)b->mem[bi])[bo],
          e2e_pat(b->seed, bi, bo));
}

static size_t total(size_t n, const size_t *sizes)
{
    size_t t = 0;
    for (size_t i = 0; i < n; i++) t += sizes[i];
    return t;
}

/* ---------------- one process, two connectors ---------------- */
static void case_local(nxc_connector_t *A, nxc_connector_t *B, nxc_op_kind_t kind,
                       uint32_t seed, size_t n, const size_t *sizes)
{
    e2e_bufs_t pb, ab;
    e2e_bufs_alloc(&pb, seed, n, sizes);
    e2e_bufs_alloc(&ab, seed, n, sizes);
    src_dst(kind, &pb, &ab);

    nxc_op_t *p = NULL, *a = NULL;
    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_create_readable(B, pb.d, n, &p), NXC_OK);
    else
        CHECK_RC(nxc_create_writable(B, pb.d, n, &p), NXC_OK);
    CHECK(nxc_op_kind(p) == kind, "passive op kind %d", (int)nxc_op_kind(p));
    CHECK(nxc_op_status(p) == NXC_OP_INITIALIZED, "new passive op is %s",
          nxc_op_status_name(nxc_op_status(p)));
    {
        const nxc_descriptor_t *d;
        size_t dn;
        CHECK_RC(nxc_op_results(p, &d, &dn), NXC_ERR_STATE, "(results on INITIALIZED op)");
    }
    nxc_metadata_t *md = e2e_parse(e2e_op_metadata(p));
    check_md(md, kind, &pb, 1, nxc_connector_name(B));

    waiter_t w = { p, 1 };
    pthread_t th;
    CHECK(pthread_create(&th, NULL, wait_thread, &w) == 0, "pthread_create");

    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_begin_read(A, md, ab.d, n, &a), NXC_OK);
    else
        CHECK_RC(nxc_begin_write(A, ab.d, n, md, &a), NXC_OK);
    nxc_metadata_free(md);
    CHECK(nxc_op_kind(a) == kind, "active op kind %d", (int)nxc_op_kind(a));
    check_results_gate(a, "active op just begun");

    CHECK_RC(nxc_op_wait(a, 120000), NXC_OK, "(active wait, n=%zu size[0]=%zu)", n, sizes[0]);
    CHECK(nxc_op_status(a) == NXC_OP_COMPLETE, "active status %s",
          nxc_op_status_name(nxc_op_status(a)));
    pthread_join(th, NULL);
    CHECK_RC(w.rc, NXC_OK, "(passive wait, n=%zu size[0]=%zu)", n, sizes[0]);
    CHECK(nxc_op_status(p) == NXC_OP_COMPLETE, "passive status %s",
          nxc_op_status_name(nxc_op_status(p)));
    CHECK_RC(nxc_op_wait(p, 0), NXC_OK, "(wait on COMPLETE op)");

    e2e_check_results(a, &ab, "active");
    e2e_check_results(p, &pb, "passive");
    CHECK(nxc_op_error(a, NULL) == NXC_OK && nxc_op_error(p, NULL) == NXC_OK,
          "op_error on COMPLETE ops");
    verify_bufs(&ab, "local/active buffer", kind, n, sizes[0]);
    verify_bufs(&pb, "local/passive buffer", kind, n, sizes[0]);

    nxc_op_release(a);
    nxc_op_release(p);
    e2e_bufs_free(&pb);
    e2e_bufs_free(&ab);
    g_cases++;
    g_bytes += total(n, sizes);
}

/* ---------------- two processes ---------------- */
static void case_proc_we_active(e2e_peer_t *peer, nxc_connector_t *A, nxc_op_kind_t kind,
                                uint32_t seed, size_t n, const size_t *sizes)
{
    char *json = NULL;
    int id = e2e_peer_passive(peer, A, kind, seed, n, sizes, &json);
    nxc_metadata_t *md = e2e_parse(json);
    free(json);
    e2e_bufs_t ab;
    e2e_bufs_alloc(&ab, seed, n, sizes);
    check_md(md, kind, &ab, 0, NULL);
    src_dst(kind, NULL, &ab);

    nxc_op_t *a = NULL;
    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_begin_read(A, md, ab.d, n, &a), NXC_OK);
    else
        CHECK_RC(nxc_begin_write(A, ab.d, n, md, &a), NXC_OK);
    nxc_metadata_free(md);
    check_results_gate(a, "active op just begun");
    CHECK_RC(nxc_op_wait(a, 120000), NXC_OK, "(active wait, n=%zu size[0]=%zu)", n, sizes[0]);
    CHECK(nxc_op_status(a) == NXC_OP_COMPLETE, "active status %s",
          nxc_op_status_name(nxc_op_status(a)));
    e2e_check_results(a, &ab, "active");
    verify_bufs(&ab, "active buffer (this process)", kind, n, sizes[0]);

    e2e_peer_res_t r;
    e2e_peer_wait(peer, A, id, 60000, &r);
    CHECK(r.rc == NXC_OK && r.status == NXC_OP_COMPLETE && r.verify == 0,
          "peer's passive op: wait rc %d status %d verify %d (%s)", r.rc, r.status, r.verify,
          r.detail);
    e2e_peer_release(peer, A, id);
    nxc_op_release(a);
    e2e_bufs_free(&ab);
    g_cases++;
    g_bytes += total(n, sizes);
}

static void case_proc_we_passive(e2e_peer_t *peer, nxc_connector_t *A, nxc_op_kind_t kind,
                                 uint32_t seed, size_t n, const size_t *sizes)
{
    e2e_bufs_t pb;
    e2e_bufs_alloc(&pb, seed, n, sizes);
    src_dst(kind, &pb, NULL);
    nxc_op_t *p = NULL;
    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_create_readable(A, pb.d, n, &p), NXC_OK);
    else
        CHECK_RC(nxc_create_writable(A, pb.d, n, &p), NXC_OK);
    CHECK(nxc_op_status(p) == NXC_OP_INITIALIZED, "new passive op is %s",
          nxc_op_status_name(nxc_op_status(p)));
    {
        const nxc_descriptor_t *d;
        size_t dn;
        CHECK_RC(nxc_op_results(p, &d, &dn), NXC_ERR_STATE, "(results on INITIALIZED op)");
    }
    const char *json = e2e_op_metadata(p);
    nxc_metadata_t *md = e2e_parse(json);
    check_md(md, kind, &pb, 1, nxc_connector_name(A));
    nxc_metadata_free(md);

    int id = e2e_peer_active(peer, A, kind, seed, n, sizes, json);
    CHECK(id >= 0, "peer's begin failed with %d (%s)", id, nxc_strerror(id));
    CHECK_RC(nxc_op_wait(p, 120000), NXC_OK, "(passive wait, n=%zu size[0]=%zu)", n, sizes[0]);
    CHECK(nxc_op_status(p) == NXC_OP_COMPLETE, "passive status %s",
          nxc_op_status_name(nxc_op_status(p)));
    e2e_check_results(p, &pb, "passive");
    verify_bufs(&pb, "passive buffer (this process)", kind, n, sizes[0]);

    e2e_peer_res_t r;
    e2e_peer_wait(peer, A, id, 60000, &r);
    CHECK(r.rc == NXC_OK && r.status == NXC_OP_COMPLETE && r.verify == 0,
          "peer's active op: wait rc %d status %d verify %d (%s)", r.rc, r.status, r.verify,
          r.detail);
    e2e_peer_release(peer, A, id);
    nxc_op_release(p);
    e2e_bufs_free(&pb);
    g_cases++;
    g_bytes += total(n, sizes);
}


typedef struct ctx {
    int proc;
    nxc_connector_t *A, *B;
    e2e_peer_t *peer;
} ctx_t;

static void run_case(ctx_t *c, nxc_op_kind_t kind, uint32_t seed, size_t n, const size_t *sizes)
{
    if (!c->proc) {
        case_local(c->A, c->B, kind, seed, n, sizes);
    } else {
        case_proc_we_active(c->peer, c->A, kind, seed, n, sizes);
        case_proc_we_passive(c->peer, c->A, kind, seed + 1, n, sizes);
    }
}

int main(int argc, char **argv)
{
    int proc = argc > 1 && strcmp(argv[1], "proc") == 0;
    e2e_init(proc ? "e2e_transfer_proc" : "e2e_transfer_local", 280);
    ctx_t c = { proc, NULL, NULL, NULL };
    e2e_peer_t peer;
    c.A = e2e_connector("e2e-transfer-A");
    if (proc) {
        e2e_peer_start(&peer);
        c.peer = &peer;
    } else {
        c.B = e2e_connector("e2e-transfer-B");
    }

    uint32_t seed = 1;
    size_t sizes[64];
    for (int k = 0; k < 2; k++) {
        nxc_op_kind_t kind = k == 0 ? NXC_OP_WRITE : NXC_OP_READ;
        for (size_t ci = 0; ci < sizeof k_counts / sizeof *k_counts; ci++) {
            for (size_t si = 0; si < sizeof k_sizes / sizeof *k_sizes; si++) {
                size_t n = k_counts[ci], sz = k_sizes[si];
                if (n * sz > CASE_CAP) continue;
                for (size_t i = 0; i < n; i++) sizes[i] = sz;
                run_case(&c, kind, seed += 2, n, sizes);
            }
        }
        /* mixed sizes, zero-size entries in between */
        size_t mix3[3] = { 1 * MiB + 3, 0, 4097 };
        run_case(&c, kind, seed += 2, 3, mix3);
        for (size_t i = 0; i < 64; i++) sizes[i] = (i % 5 == 0) ? 0 : i * 997 + 1;
        run_case(&c, kind, seed += 2, 64, sizes);
    }

    if (proc) {
        e2e_peer_stop(&peer);
        e2e_peer_close(&peer);
    }
    nxc_connector_destroy(c.A);
    nxc_connector_destroy(c.B);
    return e2e_pass("%zu transfers, %.1f MiB moved and checked byte for byte", g_cases,
                    (double)g_bytes / (double)MiB);
}
