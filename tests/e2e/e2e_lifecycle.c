/*
 * e2e_lifecycle local|proc — waiting, cancelling, releasing (the header's
 * "Waiting, cancelling, releasing" group).
 *
 *   local: two connectors in this process, P (passive) and A (active); a
 *          thread drives P (poll on its fd + progress) as its own worker
 *          would, besides the main thread's calls.
 *   proc:  our connector against an nxc_test_peer process.
 *
 * 1. Timeout: nxc_op_wait(op, 200) on an untouched passive op returns
 *    NXC_ERR_TIMED_OUT after >= 200 ms and without hanging (< 3 s: an upper
 *    bound any tighter fails on a starved machine, and is a benchmark's
 *    business), the op is unchanged and still waitable; nxc_op_wait(op, 0)
 *    returns without waiting (< 1 s, the same reasoning); the op then
 *    completes.
 * 2. Cancel on COMPLETE: NXC_OK, status stays COMPLETE, results still work.
 * 3. Cancel of an INITIALIZED passive op: CANCELLED, wait returns
 *    NXC_ERR_CANCELLED, a second cancel changes nothing, results refused.
 *    (Run last:) once a writable op is cancelled or released its memory is
 *    no longer exposed: a peer beginning a write against its metadata must
 *    not complete (refused at begin or ending in an error, not hanging) and
 *    the buffer stays untouched. A read against a cancelled or released
 *    readable op's metadata ends ERRORED/PEER_ABORTED (not hanging) and
 *    receives nothing.
 * 4. Active op cancelled right after begin (64 MiB, in flight): it is never
 *    reported COMPLETE and its passive peer ends ERRORED with
 *    NXC_ERR_PEER_ABORTED — or the transfer won the race and both are
 *    COMPLETE; exactly one of the two. Cancel on an ERRORED op ->
 *    NXC_ERR_STATE (status stays ERRORED).
 * 5. Passive op cancelled while a 64 MiB write to it is in flight: it stays
 *    CANCELLED (never COMPLETE) and the active side does not hang.
 * 6. Release in flight: begin a 64 MiB write/read, release at once, then
 *    overwrite the local buffer with a marker and free it (ASan would catch a
 *    later access from this process; a late transfer from/into it would put
 *    marker bytes into the peer's buffer or overwrite our marker). The passive
 *    side ends COMPLETE or ERRORED/PEER_ABORTED, never hangs, never holds a
 *    foreign byte; the connector then completes a new transfer.
 */
#include "e2e_common.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BIG (64 * MiB)

typedef struct env {
    int proc;
    pthread_t driver;   /* local mode: drives P like a second worker would */
    volatile int stop_driver;
    nxc_connector_t *A; /* ours: active in local mode; both roles in proc mode */
    nxc_connector_t *P; /* local mode: the passive connector */
    e2e_peer_t peer;
} env_t;

static int g_cancel_won, g_cancel_lost, g_errored_checked;

static nxc_op_t *make_passive(nxc_connector_t *c, nxc_op_kind_t kind, e2e_bufs_t *b)
{
    nxc_op_t *op = NULL;
    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_create_readable(c, b->d, b->n, &op), NXC_OK);
    else
        CHECK_RC(nxc_create_writable(c, b->d, b->n, &op), NXC_OK);
    return op;
}

static nxc_op_t *begin(nxc_connector_t *c, nxc_op_kind_t kind, e2e_bufs_t *b,
                       const nxc_metadata_t *md)
{
    nxc_op_t *op = NULL;
    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_begin_read(c, md, b->d, b->n, &op), NXC_OK);
    else
        CHECK_RC(nxc_begin_write(c, b->d, b->n, md, &op), NXC_OK);
    return op;
}

static void check_cancel_on_errored(nxc_op_t *op, int expect_code)
{
    CHECK(nxc_op_status(op) == NXC_OP_ERRORED, "op is %s, not ERRORED",
          nxc_op_status_name(nxc_op_status(op)));
    const char *detail = NULL;
    int ec = nxc_op_error(op, &detail);
    if (expect_code) CHECK_RC(ec, expect_code, "(nxc_op_error of the ERRORED op)");
    CHECK(ec < 0 && detail && detail[0], "ERRORED op has code %d and detail '%s'", ec,
          detail ? detail : "(null)");
    CHECK_RC(nxc_op_cancel(op), NXC_ERR_STATE, "(cancel on ERRORED)");
    CHECK(nxc_op_status(op) == NXC_OP_ERRORED, "cancel changed an ERRORED op to %s",
          nxc_op_status_name(nxc_op_status(op)));
    CHECK_RC(nxc_op_wait(op, 0), ec, "(wait on ERRORED op returns its code)");
    g_errored_checked++;
}

/* keeps the connectors driven for ms milliseconds */
static void drive_for(env_t *e, int ms)
{
    double end = e2e_now_ms() + ms;
    while (e2e_now_ms() < end) {
        nxc_connector_progress(e->A);
        if (e->P) nxc_connector_progress(e->P);
    }
}

/* local mode: a thread drives the passive connector P the way its own
 * worker would (fd + progress), so P makes progress while the main thread
 * blocks in a call on A (e.g. release, which waits for the buffers) */
static void *driver_main(void *arg)
{
    env_t *e = arg;
    struct pollfd pfd = { .fd = nxc_connector_fd(e->P), .events = POLLIN };
    while (!e->stop_driver) {
        nxc_connector_progress(e->P);
        poll(&pfd, 1, 5);
    }
    return NULL;
}

/* Our passive op on connector c gets completed by "the other side"
 * (A in local mode, the peer in proc mode) with a write of pattern seed. */
static void complete_by_other_side(env_t *e, nxc_op_t *p, e2e_bufs_t *pb)
{
    nxc_metadata_t *md = e2e_parse(e2e_op_metadata(p));
    if (!e->proc) {
        e2e_bufs_t src;
        size_t sizes[1] = { pb->d[0].size };
        e2e_bufs_alloc(&src, pb->seed, 1, sizes);
        e2e_bufs_fill(&src, 0);
        nxc_op_t *a = begin(e->A, NXC_OP_WRITE, &src, md);
        nxc_op_t *both[2] = { a, p };
        CHECK(e2e_drive_until_final(both, 2, e->A, e->P, 30000) == 0, "write did not finish");
        CHECK(nxc_op_status(a) == NXC_OP_COMPLETE, "active ended %s",
              nxc_op_status_name(nxc_op_status(a)));
        nxc_op_release(a);
        e2e_bufs_free(&src);
    } else {
        size_t sizes[1] = { pb->d[0].size };
        int id = e2e_peer_active(&e->peer, e->A, NXC_OP_WRITE, pb->seed, 1, sizes,
                                 e2e_op_metadata(p));
        CHECK(id >= 0, "peer begin failed: %d", id);
        CHECK_RC(nxc_op_wait(p, 30000), NXC_OK);
        e2e_peer_res_t r;
        e2e_peer_wait(&e->peer, e->A, id, 30000, &r);
        CHECK(r.rc == 0 && r.verify == 0, "peer op rc %d verify %d %s", r.rc, r.verify, r.detail);
        e2e_peer_release(&e->peer, e->A, id);
    }
    nxc_metadata_free(md);
}

static nxc_connector_t *passive_conn(env_t *e)
{
    return e->proc ? e->A : e->P;
}

/* 1 + 2 */
static void test_timeout_and_cancel_complete(env_t *e)
{
    size_t sizes[1] = { 4 * KiB };
    e2e_bufs_t pb;
    e2e_bufs_alloc(&pb, 21, 1, sizes);
    e2e_bufs_fill(&pb, E2E_INIT_XOR);
    nxc_op_t *p = make_passive(passive_conn(e), NXC_OP_WRITE, &pb);

    double t0 = e2e_now_ms();
    int rc = nxc_op_wait(p, 200);
    double dt = e2e_now_ms() - t0;
    CHECK_RC(rc, NXC_ERR_TIMED_OUT, "(wait 200 ms on untouched op)");
    CHECK(dt >= 199.5 && dt < 3000.0, "wait(200) took %.1f ms (want >= 200, < 3000)", dt);
    CHECK(nxc_op_status(p) == NXC_OP_INITIALIZED, "after timeout: %s",
          nxc_op_status_name(nxc_op_status(p)));

    t0 = e2e_now_ms();
    CHECK_RC(nxc_op_wait(p, 0), NXC_ERR_TIMED_OUT, "(wait 0)");
    dt = e2e_now_ms() - t0;
    CHECK(dt < 1000.0, "wait(0) took %.1f ms", dt);

    t0 = e2e_now_ms();
    CHECK_RC(nxc_op_wait(p, 200), NXC_ERR_TIMED_OUT, "(second wait 200 ms)");
    dt = e2e_now_ms() - t0;
    CHECK(dt >= 199.5 && dt < 3000.0, "second wait(200) took %.1f ms", dt);
    CHECK(e2e_bufs_verify(&pb, E2E_INIT_XOR, NULL, NULL) == 0, "untouched buffer changed");

    /* still waitable: it completes */
    complete_by_other_side(e, p, &pb);
    CHECK(nxc_op_status(p) == NXC_OP_COMPLETE, "not COMPLETE");
    CHECK(e2e_bufs_verify(&pb, 0, NULL, NULL) == 0, "data wrong");

    /* 2: cancel on COMPLETE has no effect */
    CHECK_RC(nxc_op_cancel(p), NXC_OK, "(cancel on COMPLETE)");
    CHECK(nxc_op_status(p) == NXC_OP_COMPLETE, "cancel changed COMPLETE to %s",
          nxc_op_status_name(nxc_op_status(p)));
    CHECK_RC(nxc_op_wait(p, 0), NXC_OK, "(wait after cancel on COMPLETE)");
    e2e_check_results(p, &pb, "results after cancel on COMPLETE");
    nxc_op_release(p);
    e2e_bufs_free(&pb);
}

/* 3 */
static void test_cancel_initialized(env_t *e)
{
    size_t sizes[2] = { 64 * KiB, 3 };
    e2e_bufs_t pb;
    e2e_bufs_alloc(&pb, 31, 2, sizes);
    e2e_bufs_fill(&pb, E2E_INIT_XOR);
    nxc_op_t *p = make_passive(passive_conn(e), NXC_OP_WRITE, &pb);
    char *json = strdup(e2e_op_metadata(p));
    CHECK(json, "oom");

    CHECK_RC(nxc_op_cancel(p), NXC_OK, "(cancel INITIALIZED passive)");
    CHECK(nxc_op_status(p) == NXC_OP_CANCELLED, "after cancel: %s",
          nxc_op_status_name(nxc_op_status(p)));
    double t0 = e2e_now_ms();
    CHECK_RC(nxc_op_wait(p, 5000), NXC_ERR_CANCELLED, "(wait on CANCELLED)");
    CHECK(e2e_now_ms() - t0 < 100.0, "wait on a CANCELLED op blocked %.1f ms",
          e2e_now_ms() - t0);
    CHECK_RC(nxc_op_cancel(p), NXC_OK, "(cancel on CANCELLED)");
    CHECK(nxc_op_status(p) == NXC_OP_CANCELLED, "second cancel: %s",
          nxc_op_status_name(nxc_op_status(p)));
    const nxc_descriptor_t *d;
    size_t n;
    CHECK_RC(nxc_op_results(p, &d, &n), NXC_ERR_STATE, "(results on CANCELLED)");
    CHECK_RC(nxc_op_error(p, NULL), NXC_OK, "(op_error on CANCELLED, not ERRORED)");

    CHECK(nxc_op_status(p) == NXC_OP_CANCELLED, "cancelled op became %s",
          nxc_op_status_name(nxc_op_status(p)));
    nxc_op_release(p);
    e2e_bufs_free(&pb);
    free(json);
}

/* 3b: once a writable op is cancelled (or released), its metadata no longer
 * grants access: a write begun against it must not complete and the buffer
 * must stay untouched (for a released op the buffer is kept alive here; a
 * real caller may already have freed it). Soft checks: reported, the rest of
 * the test goes on. */
static void test_no_exposure_after(env_t *e, int release)
{
    const char *how = release ? "RELEASED" : "CANCELLED";
    size_t sizes[2] = { 64 * KiB, 3 };
    e2e_bufs_t pb, src;
    e2e_bufs_alloc(&pb, 33, 2, sizes);
    e2e_bufs_fill(&pb, E2E_INIT_XOR);
    e2e_bufs_alloc(&src, 33, 2, sizes);
    e2e_bufs_fill(&src, 0);
    nxc_op_t *p = make_passive(passive_conn(e), NXC_OP_WRITE, &pb);
    char *json = strdup(e2e_op_metadata(p));
    CHECK(json, "oom");
    if (release) {
        nxc_op_release(p);
        p = NULL;
    } else {
        CHECK_RC(nxc_op_cancel(p), NXC_OK);
    }
    int completed = 0;
    if (!e->proc) {
        nxc_metadata_t *md = e2e_parse(json);
        nxc_op_t *a = NULL;
        int rc = nxc_begin_write(e->A, src.d, 2, md, &a);
        nxc_metadata_free(md);
        if (rc == NXC_OK) {
            nxc_op_t *ops[1] = { a };
            SOFT_CHECK(e2e_drive_until_final(ops, 1, e->A, e->P, 10000) == 0,
                       "write against a %s passive op hangs (status %s after 10 s)", how,
                       nxc_op_status_name(nxc_op_status(a)));
            completed = nxc_op_status(a) == NXC_OP_COMPLETE;
            if (nxc_op_status(a) == NXC_OP_ERRORED) check_cancel_on_errored(a, 0);
            nxc_op_release(a);
        } else {
            CHECK(rc < 0, "begin rc %d", rc);
        }
    } else {
        int id = e2e_peer_active(&e->peer, e->A, NXC_OP_WRITE, 33, 2, sizes, json);
        if (id >= 0) {
            e2e_peer_res_t r;
            e2e_peer_wait(&e->peer, e->A, id, 10000, &r);
            SOFT_CHECK(r.rc != NXC_ERR_TIMED_OUT,
                       "peer's write against our %s op hangs (status %d after 10 s)", how,
                       r.status);
            completed = r.rc == NXC_OK;
            e2e_peer_release(&e->peer, e->A, id);
        }
        drive_for(e, 50);
    }
    size_t bi = 0, bo = 0;
    int untouched = e2e_bufs_verify(&pb, E2E_INIT_XOR, &bi, &bo) == 0;
    SOFT_CHECK(!completed, "a write against a %s writable op's metadata was reported COMPLETE",
               how);
    SOFT_CHECK(untouched,
               "a %s writable op's buffer was written through its old metadata (descriptor "
               "%zu offset %zu): the memory is still exposed",
               how, bi, bo);
    if (p) {
        CHECK(nxc_op_status(p) == NXC_OP_CANCELLED, "cancelled op became %s",
              nxc_op_status_name(nxc_op_status(p)));
        nxc_op_release(p);
    }
    e2e_bufs_free(&pb);
    e2e_bufs_free(&src);
    free(json);
}

/* 3c: a read against a cancelled or released readable op's metadata gets
 * no data and does not wait forever either: the passive side remembers the
 * closed op's key and answers the reader's BEGIN with ABORT, so the read
 * ends ERRORED with NXC_ERR_PEER_ABORTED (bounded here by 10 s). */
static void test_no_read_after(env_t *e, int release)
{
    const char *how = release ? "RELEASED" : "CANCELLED";
    size_t sizes[2] = { 64 * KiB, 3 };
    e2e_bufs_t pb;
    e2e_bufs_alloc(&pb, 34, 2, sizes);
    e2e_bufs_fill(&pb, 0);
    nxc_op_t *p = make_passive(passive_conn(e), NXC_OP_READ, &pb);
    char *json = strdup(e2e_op_metadata(p));
    CHECK(json, "oom");
    if (release) {
        nxc_op_release(p);
        p = NULL;
    } else {
        CHECK_RC(nxc_op_cancel(p), NXC_OK);
    }
    if (!e->proc) {
        e2e_bufs_t dst;
        e2e_bufs_alloc(&dst, 34, 2, sizes);
        e2e_bufs_fill(&dst, E2E_INIT_XOR);
        nxc_metadata_t *md = e2e_parse(json);
        nxc_op_t *a = begin(e->A, NXC_OP_READ, &dst, md);
        nxc_metadata_free(md);
        nxc_op_t *ops[1] = { a };
        SOFT_CHECK(e2e_drive_until_final(ops, 1, e->A, e->P, 10000) == 0,
                   "read against a %s readable op hangs (status %s after 10 s)", how,
                   nxc_op_status_name(nxc_op_status(a)));
        SOFT_CHECK(nxc_op_status(a) == NXC_OP_ERRORED &&
                       nxc_op_error(a, NULL) == NXC_ERR_PEER_ABORTED,
                   "read against a %s readable op ended %s (%s), want ERRORED/PEER_ABORTED",
                   how, nxc_op_status_name(nxc_op_status(a)),
                   nxc_strerror(nxc_op_error(a, NULL)));
        if (nxc_op_status(a) == NXC_OP_ERRORED) check_cancel_on_errored(a, NXC_ERR_PEER_ABORTED);
        nxc_op_release(a);
        SOFT_CHECK(e2e_bufs_verify(&dst, E2E_INIT_XOR, NULL, NULL) == 0,
                   "a read against a %s readable op received data", how);
        e2e_bufs_free(&dst);
    } else {
        int id = e2e_peer_active(&e->peer, e->A, NXC_OP_READ, 34, 2, sizes, json);
        CHECK(id >= 0, "peer begin failed: %d", id);
        e2e_peer_res_t r;
        e2e_peer_wait(&e->peer, e->A, id, 10000, &r);
        SOFT_CHECK(r.rc == NXC_ERR_PEER_ABORTED && r.status == NXC_OP_ERRORED,
                   "peer's read against our %s readable op: rc %d (%s), status %d (want "
                   "ERRORED/PEER_ABORTED, not a hang): %s", how, r.rc, nxc_strerror(r.rc),
                   r.status, r.detail);
        SOFT_CHECK(e2e_peer_check(&e->peer, e->A, id) == 2,
                   "a read against a %s readable op received data", how);
        e2e_peer_release(&e->peer, e->A, id);
    }
    if (p) {
        CHECK(nxc_op_status(p) == NXC_OP_CANCELLED, "cancelled op became %s",
              nxc_op_status_name(nxc_op_status(p)));
        nxc_op_release(p);
    }
    e2e_bufs_free(&pb);
    free(json);
}

/* 4: active cancelled right after begin */
static void test_cancel_active_inflight(env_t *e, nxc_op_kind_t kind)
{
    size_t sizes[1] = { BIG };
    uint32_t seed = kind == NXC_OP_READ ? 41 : 42;
    e2e_bufs_t ab, pb;
    e2e_bufs_alloc(&ab, seed, 1, sizes);
    e2e_bufs_fill(&ab, kind == NXC_OP_READ ? E2E_INIT_XOR : 0);
    nxc_op_t *p = NULL;
    int id = -1;
    nxc_metadata_t *md;
    if (!e->proc) {
        e2e_bufs_alloc(&pb, seed, 1, sizes);
        e2e_bufs_fill(&pb, kind == NXC_OP_READ ? 0 : E2E_INIT_XOR);
        p = make_passive(e->P, kind, &pb);
        md = e2e_parse(e2e_op_metadata(p));
    } else {
        char *json;
        id = e2e_peer_passive(&e->peer, e->A, kind, seed, 1, sizes, &json);
        md = e2e_parse(json);
        free(json);
    }
    nxc_op_t *a = begin(e->A, kind, &ab, md);
    nxc_metadata_free(md);
    CHECK_RC(nxc_op_cancel(a), NXC_OK, "(cancel right after begin)");
    nxc_op_status_t st = nxc_op_status(a);
    CHECK(st == NXC_OP_CANCELLED || st == NXC_OP_COMPLETE,
          "after cancel the active op is %s (want CANCELLED, or COMPLETE if it had finished)",
          nxc_op_status_name(st));
    int won = st == NXC_OP_CANCELLED;

    if (!e->proc) {
        /* drive both sides until the passive op is final; the active op must
         * never change */
        double deadline = e2e_now_ms() + 15000;
        while (!e2e_is_final(nxc_op_status(p))) {
            nxc_connector_progress(e->A); /* status of a final op need not drive */
            CHECK(nxc_op_status(a) == st, "cancelled active op changed to %s",
                  nxc_op_status_name(nxc_op_status(a)));
            CHECK(e2e_now_ms() < deadline, "passive op still %s 15 s after the cancel",
                  nxc_op_status_name(nxc_op_status(p)));
        }
        if (won) {
            CHECK_RC(nxc_op_wait(p, 0), NXC_ERR_PEER_ABORTED, "(passive peer of cancelled op)");
            check_cancel_on_errored(p, NXC_ERR_PEER_ABORTED);
            const nxc_descriptor_t *d;
            size_t n;
            CHECK_RC(nxc_op_results(p, &d, &n), NXC_ERR_STATE);
        } else {
            CHECK_RC(nxc_op_wait(p, 0), NXC_OK, "(raced: passive should be COMPLETE)");
            CHECK(e2e_bufs_verify(kind == NXC_OP_READ ? &ab : &pb, 0, NULL, NULL) == 0,
                  "raced transfer: data wrong");
        }
    } else {
        e2e_peer_res_t r;
        e2e_peer_wait(&e->peer, e->A, id, 15000, &r);
        CHECK(nxc_op_status(a) == st, "cancelled active op changed to %s",
              nxc_op_status_name(nxc_op_status(a)));
        if (won) {
            CHECK(r.rc == NXC_ERR_PEER_ABORTED && r.status == NXC_OP_ERRORED &&
                      r.errcode == NXC_ERR_PEER_ABORTED,
                  "peer's passive op after our cancel: wait rc %d (%s), status %d, error %d "
                  "(want PEER_ABORTED / ERRORED): %s",
                  r.rc, nxc_strerror(r.rc), r.status, r.errcode, r.detail);
            int pst = -1;
            CHECK_RC(e2e_peer_cancel(&e->peer, e->A, id, &pst), NXC_ERR_STATE,
                     "(peer: cancel on ERRORED)");
            CHECK(pst == NXC_OP_ERRORED, "peer op after cancel on ERRORED: %d", pst);
            g_errored_checked++;
        } else {
            CHECK(r.rc == NXC_OK && r.verify == 0, "raced transfer: peer rc %d verify %d",
                  r.rc, r.verify);
        }
        e2e_peer_release(&e->peer, e->A, id);
    }
    if (won) {
        CHECK_RC(nxc_op_wait(a, 1000), NXC_ERR_CANCELLED, "(wait on cancelled active)");
        const nxc_descriptor_t *d;
        size_t n;
        CHECK_RC(nxc_op_results(a, &d, &n), NXC_ERR_STATE, "(results on cancelled active)");
        g_cancel_won++;
    } else {
        CHECK_RC(nxc_op_wait(a, 0), NXC_OK);
        g_cancel_lost++;
    }
    nxc_op_release(a);
    if (p) nxc_op_release(p);
    e2e_bufs_free(&ab);
    if (!e->proc) e2e_bufs_free(&pb);
}

/* 5: passive cancelled while a write into it is in flight */
static void test_cancel_passive_inflight(env_t *e)
{
    size_t sizes[1] = { BIG };
    e2e_bufs_t pb;
    e2e_bufs_alloc(&pb, 51, 1, sizes);
    e2e_bufs_fill(&pb, E2E_INIT_XOR);
    nxc_op_t *p = make_passive(passive_conn(e), NXC_OP_WRITE, &pb);
    nxc_op_t *a = NULL;
    e2e_bufs_t src;
    int id = -1;
    if (!e->proc) {
        e2e_bufs_alloc(&src, 51, 1, sizes);
        e2e_bufs_fill(&src, 0);
        nxc_metadata_t *md = e2e_parse(e2e_op_metadata(p));
        a = begin(e->A, NXC_OP_WRITE, &src, md);
        nxc_metadata_free(md);
    } else {
        id = e2e_peer_active(&e->peer, e->A, NXC_OP_WRITE, 51, 1, sizes, e2e_op_metadata(p));
        CHECK(id >= 0, "peer begin failed %d", id);
    }
    CHECK_RC(nxc_op_cancel(p), NXC_OK, "(cancel passive in flight)");
    nxc_op_status_t st = nxc_op_status(p);
    CHECK(st == NXC_OP_CANCELLED || st == NXC_OP_COMPLETE, "passive after cancel: %s",
          nxc_op_status_name(st));
    if (!e->proc) {
        double deadline = e2e_now_ms() + 15000;
        while (!e2e_is_final(nxc_op_status(a))) {
            nxc_connector_progress(e->P);
            CHECK(nxc_op_status(p) == st, "cancelled passive op changed to %s",
                  nxc_op_status_name(nxc_op_status(p)));
            CHECK(e2e_now_ms() < deadline,
                  "active write still %s 15 s after its passive peer cancelled",
                  nxc_op_status_name(nxc_op_status(a)));
        }
        fprintf(stderr, "  passive cancelled in flight: passive %s, active %s (%s)\n",
                nxc_op_status_name(st), nxc_op_status_name(nxc_op_status(a)),
                nxc_strerror(nxc_op_error(a, NULL)));
        nxc_op_release(a);
        e2e_bufs_free(&src);
    } else {
        e2e_peer_res_t r;
        e2e_peer_wait(&e->peer, e->A, id, 15000, &r);
        CHECK(r.rc != NXC_ERR_TIMED_OUT, "peer's write hangs after we cancelled (status %d)",
              r.status);
        fprintf(stderr, "  passive cancelled in flight: passive %s, peer active rc %d (%s)\n",
                nxc_op_status_name(st), r.rc, nxc_strerror(r.rc));
        e2e_peer_release(&e->peer, e->A, id);
    }
    CHECK(nxc_op_status(p) == st, "cancelled passive op changed to %s",
          nxc_op_status_name(nxc_op_status(p)));
    nxc_op_release(p);
    e2e_bufs_free(&pb);
}

/* a fresh transfer on the same connector(s) works */
static void check_usable(env_t *e, uint32_t seed)
{
    size_t sizes[2] = { 1 * MiB + 3, 17 };
    e2e_bufs_t ab;
    e2e_bufs_alloc(&ab, seed, 2, sizes);
    e2e_bufs_fill(&ab, 0);
    if (!e->proc) {
        e2e_bufs_t pb;
        e2e_bufs_alloc(&pb, seed, 2, sizes);
        e2e_bufs_fill(&pb, E2E_INIT_XOR);
        nxc_op_t *p = make_passive(e->P, NXC_OP_WRITE, &pb);
        nxc_metadata_t *md = e2e_parse(e2e_op_metadata(p));
        nxc_op_t *a = begin(e->A, NXC_OP_WRITE, &ab, md);
        nxc_metadata_free(md);
        nxc_op_t *both[2] = { a, p };
        CHECK(e2e_drive_until_final(both, 2, e->A, e->P, 30000) == 0, "new transfer did not finish");
        CHECK(nxc_op_status(a) == NXC_OP_COMPLETE && nxc_op_status(p) == NXC_OP_COMPLETE,
              "new transfer after release-in-flight: %s / %s",
              nxc_op_status_name(nxc_op_status(a)), nxc_op_status_name(nxc_op_status(p)));
        CHECK(e2e_bufs_verify(&pb, 0, NULL, NULL) == 0, "new transfer data wrong");
        nxc_op_release(a);
        nxc_op_release(p);
        e2e_bufs_free(&pb);
    } else {
        char *json;
        int id = e2e_peer_passive(&e->peer, e->A, NXC_OP_WRITE, seed, 2, sizes, &json);
        nxc_metadata_t *md = e2e_parse(json);
        free(json);
        nxc_op_t *a = begin(e->A, NXC_OP_WRITE, &ab, md);
        nxc_metadata_free(md);
        CHECK_RC(nxc_op_wait(a, 30000), NXC_OK, "(new transfer after release in flight)");
        e2e_peer_res_t r;
        e2e_peer_wait(&e->peer, e->A, id, 30000, &r);
        CHECK(r.rc == NXC_OK && r.verify == 0, "peer: rc %d verify %d", r.rc, r.verify);
        e2e_peer_release(&e->peer, e->A, id);
        nxc_op_release(a);
    }
    e2e_bufs_free(&ab);
}

/* 6 */
static void test_release_inflight(env_t *e, nxc_op_kind_t kind)
{
    size_t sizes[1] = { BIG };
    uint32_t seed = kind == NXC_OP_READ ? 61 : 62;
    e2e_bufs_t pb;
    nxc_op_t *p = NULL;
    int id = -1;
    nxc_metadata_t *md;
    if (!e->proc) {
        e2e_bufs_alloc(&pb, seed, 1, sizes);
        e2e_bufs_fill(&pb, kind == NXC_OP_READ ? 0 : E2E_INIT_XOR);
        p = make_passive(e->P, kind, &pb);
        md = e2e_parse(e2e_op_metadata(p));
    } else {
        char *json;
        id = e2e_peer_passive(&e->peer, e->A, kind, seed, 1, sizes, &json);
        md = e2e_parse(json);
        free(json);
    }
    uint8_t *buf = malloc(BIG);
    CHECK(buf, "oom");
    e2e_fill(buf, BIG, seed, 0, kind == NXC_OP_READ ? E2E_INIT_XOR : 0);
    nxc_descriptor_t d = { buf, BIG, { NXC_DEVICE_HOST, 0 } };
    nxc_op_t *a = NULL;
    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_begin_read(e->A, md, &d, 1, &a), NXC_OK);
    else
        CHECK_RC(nxc_begin_write(e->A, &d, 1, md, &a), NXC_OK);
    nxc_metadata_free(md);
    nxc_op_release(a); /* in flight: cancels, returns once the buffer is ours again */
    e2e_fill(buf, BIG, seed, 0, E2E_MARKER_XOR);
    if (kind == NXC_OP_READ) {
        /* nothing may land in our buffer any more */
        drive_for(e, 200);
        size_t off = e2e_verify(buf, BIG, seed, 0, E2E_MARKER_XOR);
        CHECK(off == (size_t)-1,
              "released read still wrote into the local buffer (offset %zu: 0x%02x)", off,
              buf[off]);
    }
    free(buf);

    /* the passive side: COMPLETE (raced) or ERRORED/PEER_ABORTED, never hangs,
     * never receives a byte read from the buffer after release */
    if (!e->proc) {
        double deadline = e2e_now_ms() + 15000;
        while (!e2e_is_final(nxc_op_status(p))) {
            nxc_connector_progress(e->A);
            CHECK(e2e_now_ms() < deadline, "passive op still %s 15 s after the release",
                  nxc_op_status_name(nxc_op_status(p)));
        }
        nxc_op_status_t st = nxc_op_status(p);
        CHECK(st == NXC_OP_COMPLETE ||
                  (st == NXC_OP_ERRORED && nxc_op_error(p, NULL) == NXC_ERR_PEER_ABORTED),
              "passive op after its peer released in flight: %s (%s)", nxc_op_status_name(st),
              nxc_strerror(nxc_op_error(p, NULL)));
        if (kind == NXC_OP_WRITE) {
            for (size_t off = 0; off < BIG; off++) {
                uint8_t pat = e2e_pat(seed, 0, off), v = ((uint8_t *)pb.mem[0])[off];
                CHECK(v == pat || v == (uint8_t)(pat ^ E2E_INIT_XOR),
                      "passive buffer holds a foreign byte at %zu (0x%02x): data read after "
                      "release",
                      off, v);
                if (st == NXC_OP_COMPLETE)
                    CHECK(v == pat, "COMPLETE but byte %zu not written", off);
            }
        }
        nxc_op_release(p);
        e2e_bufs_free(&pb);
    } else {
        e2e_peer_res_t r;
        e2e_peer_wait(&e->peer, e->A, id, 15000, &r);
        CHECK(r.rc == NXC_OK || r.rc == NXC_ERR_PEER_ABORTED,
              "peer's passive op after we released in flight: rc %d (%s) status %d: %s", r.rc,
              nxc_strerror(r.rc), r.status, r.detail);
        if (kind == NXC_OP_WRITE) {
            int code = e2e_peer_check(&e->peer, e->A, id);
            CHECK(code != 3, "peer buffer holds a foreign byte: data read after release");
            if (r.rc == NXC_OK) CHECK(code == 0, "peer COMPLETE but buffer class %d", code);
        }
        e2e_peer_release(&e->peer, e->A, id);
    }
    check_usable(e, seed + 100);
}

int main(int argc, char **argv)
{
    env_t e;
    memset(&e, 0, sizeof e);
    e.proc = argc > 1 && strcmp(argv[1], "proc") == 0;
    const char *which = argc > 2 ? argv[2] : "all";
    static const char *const names[] = { "timeout", "cancel_idle", "cancel_active",
                                         "cancel_passive", "release", "exposure", NULL };
    int known = !strcmp(which, "all");
    for (int i = 0; names[i]; i++) known |= !strcmp(which, names[i]);
    if (!known) {
        fprintf(stderr, "usage: %s local|proc [all|timeout|cancel_idle|cancel_active|"
                "cancel_passive|release|exposure]\n", argv[0]);
        return 64;
    }
    char title[96];
    snprintf(title, sizeof title, "e2e_lifecycle_%s_%s", e.proc ? "proc" : "local", which);
    e2e_init(title, 110);
#define RUN(name) (!strcmp(which, "all") || !strcmp(which, name))
    e.A = e2e_connector(NULL);
    if (e.proc)
        e2e_peer_start(&e.peer);
    else
        e.P = e2e_connector(NULL);
    if (!e.proc) CHECK(pthread_create(&e.driver, NULL, driver_main, &e) == 0, "thread");

    if (RUN("timeout")) {
        e2e_step("timeout and cancel on COMPLETE");
        test_timeout_and_cancel_complete(&e);
    }
    if (RUN("cancel_idle")) {
        e2e_step("cancel of an INITIALIZED passive op");
        test_cancel_initialized(&e);
    }
    if (RUN("cancel_active")) {
        for (int i = 0; i < 2; i++) {
            e2e_step("active write cancelled in flight");
            test_cancel_active_inflight(&e, NXC_OP_WRITE);
            e2e_step("active read cancelled in flight");
            test_cancel_active_inflight(&e, NXC_OP_READ);
        }
    }
    if (RUN("cancel_passive")) {
        e2e_step("passive op cancelled while a write is in flight");
        test_cancel_passive_inflight(&e);
    }
    if (RUN("release")) {
        e2e_step("release of an in-flight write");
        test_release_inflight(&e, NXC_OP_WRITE);
        e2e_step("release of an in-flight read");
        test_release_inflight(&e, NXC_OP_READ);
    }
    if (RUN("exposure")) {
        e2e_step("write against a cancelled op's metadata");
        test_no_exposure_after(&e, 0);
        e2e_step("write against a released op's metadata");
        test_no_exposure_after(&e, 1);
        e2e_step("read against a cancelled op's metadata");
        test_no_read_after(&e, 0);
        e2e_step("read against a released op's metadata");
        test_no_read_after(&e, 1);
    }
    e2e_step("final transfer on the same connector");
    check_usable(&e, 998);
#undef RUN

    e2e_step("teardown");
    if (!e.proc) {
        e.stop_driver = 1;
        pthread_join(e.driver, NULL);
    }
    if (e.proc) {
        e2e_peer_stop(&e.peer);
        e2e_peer_close(&e.peer);
    }
    nxc_connector_destroy(e.A);
    nxc_connector_destroy(e.P);
    return e2e_pass("%s (in-flight cancels: %d cancelled, %d raced to COMPLETE; %d ERRORED ops "
                    "checked)",
                    which, g_cancel_won, g_cancel_lost, g_errored_checked);
}
