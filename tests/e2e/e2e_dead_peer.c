/*
 * e2e_dead_peer — a peer process killed (SIGKILL) mid-transfer never leaves
 * a waiter hanging (run over shared memory and over TCP by ctest).
 *
 * (a) the PASSIVE process dies while we read / write 256 MiB from / into it:
 *     a calibration transfer measures how long 256 MiB takes (D); then a
 *     thread SIGKILLs the peer D/3 after the begin starts (shorter if the
 *     transfer still wins; begin itself may refuse with PEER_FAILED); our
 *     nxc_op_wait() returns NXC_ERR_PEER_FAILED within 10 s, the op is
 *     ERRORED with that code and a detail, cancel on it gives NXC_ERR_STATE.
 * (b) the ACTIVE process dies after beginning: our passive op (256 MiB)
 *     leaves INITIALIZED when the peer's begin reaches us (the active side
 *     announces itself), we SIGKILL the peer, and our wait returns
 *     NXC_ERR_PEER_FAILED within 10 s (same-host peers: pidfd; TCP: UCX
 *     peer error handling).
 * (c) a peer that is already dead (killed and reaped) when we begin: begin
 *     refuses with an error, or the op fails within 10 s; no hang.
 * (d) the ACTIVE process dies BEFORE it begins: nothing has told our
 *     passive op who will use its metadata, so there is nobody to watch;
 *     the wait ends with NXC_ERR_TIMED_OUT at the caller's timeout, the op
 *     is still INITIALIZED and cancel ends it CANCELLED.
 * (e) the ACTIVE process dies AFTER its 256 MiB write finished: our op is
 *     COMPLETE with every byte verified and stays COMPLETE.
 * After each case the same connector completes a transfer with a new peer,
 * and its open file descriptors (pidfds, UCX sockets) are counted: the
 * count after the last case may not exceed the count after the first.
 */
#include "e2e_common.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#define HUGE (256 * MiB)
#define BOUND_MS 10000.0

static double g_worst_ms;

static void check_failed_op(nxc_op_t *op, int rc, double dt, const char *what)
{
    CHECK(rc != NXC_OK, "%s: the transfer completed although the peer was killed (too fast "
          "to test?)", what);
    CHECK(rc != NXC_ERR_TIMED_OUT, "%s: wait still TIMED_OUT %.0f ms after the peer died", what,
          dt);
    CHECK_RC(rc, NXC_ERR_PEER_FAILED, "(%s)", what);
    CHECK(dt < BOUND_MS, "%s: took %.0f ms to notice the dead peer (bound %.0f)", what, dt,
          BOUND_MS);
    CHECK(nxc_op_status(op) == NXC_OP_ERRORED, "%s: status %s", what,
          nxc_op_status_name(nxc_op_status(op)));
    const char *detail = NULL;
    CHECK_RC(nxc_op_error(op, &detail), NXC_ERR_PEER_FAILED, "(%s: nxc_op_error)", what);
    CHECK(detail && detail[0], "%s: no detail for the failure", what);
    CHECK_RC(nxc_op_cancel(op), NXC_ERR_STATE, "(%s: cancel on ERRORED)", what);
    CHECK(nxc_op_status(op) == NXC_OP_ERRORED, "%s: cancel changed ERRORED", what);
    const nxc_descriptor_t *d;
    size_t n;
    CHECK_RC(nxc_op_results(op, &d, &n), NXC_ERR_STATE, "(%s: results on ERRORED)", what);
    fprintf(stderr, "  %s: %s after %.0f ms: %s\n", what, nxc_strerror(rc), dt, detail);
    if (dt > g_worst_ms) g_worst_ms = dt;
}

/* the connector still works with a fresh peer, both roles */
static void check_usable(nxc_connector_t *A, uint32_t seed)
{
    e2e_peer_t peer;
    e2e_peer_start(&peer);
    size_t sizes[2] = { 4 * KiB, 1 * MiB + 3 };
    /* we read from the peer */
    char *json;
    int id = e2e_peer_passive(&peer, A, NXC_OP_READ, seed, 2, sizes, &json);
    nxc_metadata_t *md = e2e_parse(json);
    free(json);
    e2e_bufs_t b;
    e2e_bufs_alloc(&b, seed, 2, sizes);
    e2e_bufs_fill(&b, E2E_INIT_XOR);
    nxc_op_t *a = NULL;
    CHECK_RC(nxc_begin_read(A, md, b.d, 2, &a), NXC_OK, "(read after a dead peer)");
    nxc_metadata_free(md);
    CHECK_RC(nxc_op_wait(a, 30000), NXC_OK, "(read after a dead peer)");
    CHECK(e2e_bufs_verify(&b, 0, NULL, NULL) == 0, "data wrong");
    nxc_op_release(a);
    e2e_peer_release(&peer, A, id);
    /* the peer writes into us */
    e2e_bufs_fill(&b, E2E_INIT_XOR);
    nxc_op_t *p = NULL;
    CHECK_RC(nxc_create_writable(A, b.d, 2, &p), NXC_OK);
    id = e2e_peer_active(&peer, A, NXC_OP_WRITE, seed, 2, sizes, e2e_op_metadata(p));
    CHECK(id >= 0, "peer begin failed %d", id);
    CHECK_RC(nxc_op_wait(p, 30000), NXC_OK, "(passive after a dead peer)");
    CHECK(e2e_bufs_verify(&b, 0, NULL, NULL) == 0, "data wrong");
    e2e_peer_res_t r;
    e2e_peer_wait(&peer, A, id, 30000, &r);
    CHECK(r.rc == 0 && r.verify == 0, "peer rc %d verify %d", r.rc, r.verify);
    e2e_peer_release(&peer, A, id);
    nxc_op_release(p);
    e2e_bufs_free(&b);
    e2e_peer_stop(&peer);
    e2e_peer_close(&peer);
}

static int g_fds_first = -1;

/* after each case: usable, and no descriptor left behind by dead peers */
static void check_usable_and_count(nxc_connector_t *A, uint32_t seed, const char *after)
{
    check_usable(A, seed);
    int fds = e2e_open_fds();
    if (g_fds_first < 0) g_fds_first = fds;
    fprintf(stderr, "  after %s: %d open fds (first case: %d)\n", after, fds, g_fds_first);
}

/* (a) */
typedef struct killer {
    pid_t pid;
    int delay_us;
    double killed_at;
} killer_t;

static void *killer_main(void *arg)
{
    killer_t *k = arg;
    if (k->delay_us > 0) usleep((useconds_t)k->delay_us);
    k->killed_at = e2e_now_ms();
    kill(k->pid, SIGKILL);
    return NULL;
}

/* begins a 256 MiB transfer against a fresh passive peer; with kill_delay_us
 * >= 0 a thread SIGKILLs the peer that long after the begin starts (so the
 * kill lands mid-transfer even if begin itself moves data). Returns the
 * duration of the transfer (calibration) or checks the failure. Returns -1
 * if the transfer completed before the kill (try a shorter delay). */
static double passive_dies_once(nxc_connector_t *A, nxc_op_kind_t kind, int kill_delay_us,
                                const char *what)
{
    e2e_peer_t peer;
    e2e_peer_start(&peer);
    size_t size = HUGE;
    char *json;
    int id = e2e_peer_passive(&peer, A, kind, 5, 1, &size, &json);
    nxc_metadata_t *md = e2e_parse(json);
    free(json);
    e2e_bufs_t b;
    e2e_bufs_alloc(&b, 5, 1, &size);
    memset(b.mem[0], 0x11, HUGE);
    nxc_op_t *a = NULL;
    killer_t k = { peer.pid, kill_delay_us, 0 };
    pthread_t th;
    double t0 = e2e_now_ms();
    if (kill_delay_us >= 0) CHECK(pthread_create(&th, NULL, killer_main, &k) == 0, "thread");
    int rc = kind == NXC_OP_READ ? nxc_begin_read(A, md, b.d, 1, &a)
                                 : nxc_begin_write(A, b.d, 1, md, &a);
    nxc_metadata_free(md);
    double result = 0;
    if (kill_delay_us < 0) { /* calibration */
        CHECK_RC(rc, NXC_OK);
        CHECK_RC(nxc_op_wait(a, 60000), NXC_OK, "(calibration transfer)");
        result = e2e_now_ms() - t0;
        nxc_op_release(a);
        e2e_peer_release(&peer, A, id);
        e2e_peer_stop(&peer);
    } else if (rc != NXC_OK) {
        pthread_join(th, NULL);
        /* the kill landed inside begin: it may refuse, naming the dead peer */
        CHECK_RC(rc, NXC_ERR_PEER_FAILED, "(%s: begin during the kill)", what);
        fprintf(stderr, "  %s: begin failed: %s\n", what, nxc_last_error());
    } else {
        rc = nxc_op_wait(a, 20000);
        double t1 = e2e_now_ms();
        pthread_join(th, NULL);
        if (rc == NXC_OK) {
            result = -1;
        } else {
            check_failed_op(a, rc, t1 - k.killed_at, what);
        }
        nxc_op_release(a);
    }
    e2e_peer_close(&peer); /* reaps */
    e2e_bufs_free(&b);
    return result;
}

static void passive_dies(nxc_connector_t *A, nxc_op_kind_t kind)
{
    char what[64];
    snprintf(what, sizeof what, "(a) passive peer killed during %s", nxc_op_kind_name(kind));
    double d = passive_dies_once(A, kind, -1, what);
    fprintf(stderr, "  %s: a whole 256 MiB transfer takes %.1f ms here\n", what, d);
    int delays[3] = { (int)(d * 1000 / 3), (int)(d * 1000 / 8), 0 };
    for (int i = 0; i < 3; i++) {
        if (passive_dies_once(A, kind, delays[i], what) >= 0) return;
        fprintf(stderr, "  %s: transfer finished before the kill at %d us; shorter delay\n",
                what, delays[i]);
    }
    CHECK(0, "%s: could not kill the peer mid-transfer", what);
}

/* (b) */
static void active_dies(nxc_connector_t *A, nxc_op_kind_t kind)
{
    char what[64];
    snprintf(what, sizeof what, "(b) active peer killed during %s", nxc_op_kind_name(kind));
    e2e_peer_t peer;
    e2e_peer_start(&peer);
    size_t size = HUGE;
    e2e_bufs_t b;
    e2e_bufs_alloc(&b, 6, 1, &size);
    memset(b.mem[0], 0x22, HUGE);
    nxc_op_t *p = NULL;
    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_create_readable(A, b.d, 1, &p), NXC_OK);
    else
        CHECK_RC(nxc_create_writable(A, b.d, 1, &p), NXC_OK);
    int id = e2e_peer_active(&peer, A, kind, 6, 1, &size, e2e_op_metadata(p));
    CHECK(id >= 0, "%s: peer begin failed %d", what, id);
    /* wait until the peer's begin has reached us, then kill it */
    double deadline = e2e_now_ms() + 5000;
    nxc_op_status_t st;
    while ((st = nxc_op_status(p)) == NXC_OP_INITIALIZED) {
        CHECK(e2e_now_ms() < deadline,
              "%s: our passive op is still INITIALIZED 5 s after the peer began "
              "(the active side's announcement never arrived)",
              what);
    }
    if (st == NXC_OP_COMPLETE) {
        /* Over CMA the passive side pulls a write inside one progress call,
         * so the transfer can win the race: then this is the "killed after
         * the transfer" case, and the finished op must stay COMPLETE. */
        kill(peer.pid, SIGKILL);
        e2e_sleep_ms(50);
        nxc_connector_progress(A);
        CHECK(nxc_op_status(p) == NXC_OP_COMPLETE, "%s: a COMPLETE op changed to %s after "
              "its peer died", what, nxc_op_status_name(nxc_op_status(p)));
        fprintf(stderr, "  %s: finished before the kill; stays COMPLETE\n", what);
        nxc_op_release(p);
        e2e_peer_close(&peer);
        e2e_bufs_free(&b);
        return;
    }
    CHECK(st == NXC_OP_IN_PROGRESS, "%s: passive op is %s before the kill", what,
          nxc_op_status_name(st));
    kill(peer.pid, SIGKILL);
    double t0 = e2e_now_ms();
    int rc = nxc_op_wait(p, 20000);
    double dt = e2e_now_ms() - t0;
    if (rc == NXC_OK && kind == NXC_OP_WRITE) {
        /* The peer finished and sent DONE before the kill landed (a write
         * over CMA takes a few ms): then every byte must be there. */
        CHECK(e2e_bufs_verify(&b, 0, NULL, NULL) == 0,
              "%s: COMPLETE after the kill but the data is wrong", what);
        fprintf(stderr, "  %s: the write finished before the kill; data verified\n", what);
    } else {
        check_failed_op(p, rc, dt, what);
    }
    nxc_op_release(p);
    e2e_peer_close(&peer);
    e2e_bufs_free(&b);
}

/* (c) */
static void already_dead(nxc_connector_t *A)
{
    e2e_peer_t peer;
    e2e_peer_start(&peer);
    size_t size = 1 * MiB;
    char *json;
    (void)e2e_peer_passive(&peer, A, NXC_OP_READ, 7, 1, &size, &json);
    e2e_peer_close(&peer); /* SIGKILL + reap */
    nxc_metadata_t *md = e2e_parse(json);
    free(json);
    e2e_bufs_t b;
    e2e_bufs_alloc(&b, 7, 1, &size);
    nxc_op_t *a = NULL;
    double t0 = e2e_now_ms();
    int rc = nxc_begin_read(A, md, b.d, 1, &a);
    nxc_metadata_free(md);
    if (rc == NXC_OK) {
        rc = nxc_op_wait(a, 20000);
        double dt = e2e_now_ms() - t0;
        CHECK(rc != NXC_OK && rc != NXC_ERR_TIMED_OUT,
              "(c) read from a dead peer: wait returned %d (%s) after %.0f ms", rc,
              nxc_strerror(rc), dt);
        CHECK(dt < BOUND_MS, "(c) took %.0f ms", dt);
        CHECK(nxc_op_status(a) == NXC_OP_ERRORED, "(c) status %s",
              nxc_op_status_name(nxc_op_status(a)));
        fprintf(stderr, "  (c) read from an already dead peer: %s after %.0f ms\n",
                nxc_strerror(rc), dt);
        nxc_op_release(a);
    } else {
        CHECK(rc < 0, "rc %d", rc);
        fprintf(stderr, "  (c) begin_read to an already dead peer refused: %s (%s)\n",
                nxc_strerror(rc), nxc_last_error());
    }
    e2e_bufs_free(&b);
}

/* (d) */
static void active_dies_before_begin(nxc_connector_t *A)
{
    e2e_peer_t peer;
    e2e_peer_start(&peer);
    size_t size = 1 * MiB;
    e2e_bufs_t b;
    e2e_bufs_alloc(&b, 8, 1, &size);
    e2e_bufs_fill(&b, E2E_INIT_XOR);
    nxc_op_t *p = NULL;
    CHECK_RC(nxc_create_writable(A, b.d, 1, &p), NXC_OK);
    e2e_peer_close(&peer); /* SIGKILL + reap, before it was told anything */
    double t0 = e2e_now_ms();
    CHECK_RC(nxc_op_wait(p, 1000), NXC_ERR_TIMED_OUT,
             "((d) no active peer ever began: only the caller's timeout can end the wait)");
    double dt = e2e_now_ms() - t0;
    CHECK(dt < BOUND_MS, "(d) a 1 s wait took %.0f ms", dt);
    CHECK(nxc_op_status(p) == NXC_OP_INITIALIZED, "(d) status %s",
          nxc_op_status_name(nxc_op_status(p)));
    CHECK_RC(nxc_op_cancel(p), NXC_OK, "((d) cancel)");
    CHECK(nxc_op_status(p) == NXC_OP_CANCELLED, "(d) status after cancel %s",
          nxc_op_status_name(nxc_op_status(p)));
    CHECK(e2e_bufs_verify(&b, E2E_INIT_XOR, NULL, NULL) == 0, "(d) buffer changed");
    fprintf(stderr, "  (d) active peer killed before begin: TIMED_OUT after %.0f ms "
            "(nobody to watch), then CANCELLED\n", dt);
    nxc_op_release(p);
    e2e_bufs_free(&b);
}

/* (e) */
static void active_dies_after(nxc_connector_t *A)
{
    e2e_peer_t peer;
    e2e_peer_start(&peer);
    size_t size = HUGE;
    e2e_bufs_t b;
    e2e_bufs_alloc(&b, 9, 1, &size);
    e2e_bufs_fill(&b, E2E_INIT_XOR);
    nxc_op_t *p = NULL;
    CHECK_RC(nxc_create_writable(A, b.d, 1, &p), NXC_OK);
    int id = e2e_peer_active(&peer, A, NXC_OP_WRITE, 9, 1, &size, e2e_op_metadata(p));
    CHECK(id >= 0, "(e) peer begin failed %d", id);
    CHECK_RC(nxc_op_wait(p, 60000), NXC_OK, "((e) the 256 MiB write)");
    e2e_peer_res_t r;
    e2e_peer_wait(&peer, A, id, 30000, &r);
    CHECK(r.rc == 0, "(e) the peer's write ended %d", r.rc);
    e2e_peer_close(&peer); /* SIGKILL + reap, after the transfer */
    for (int i = 0; i < 10; i++) {
        e2e_sleep_ms(10);
        nxc_connector_progress(A);
    }
    CHECK(nxc_op_status(p) == NXC_OP_COMPLETE, "(e) a COMPLETE op became %s after its peer died",
          nxc_op_status_name(nxc_op_status(p)));
    e2e_check_results(p, &b, "(e) results after the peer died");
    CHECK(e2e_bufs_verify(&b, 0, NULL, NULL) == 0, "(e) data wrong");
    fprintf(stderr, "  (e) active peer killed after its 256 MiB write: stays COMPLETE, "
            "data verified\n");
    nxc_op_release(p);
    e2e_bufs_free(&b);
}

int main(void)
{
    e2e_init("e2e_dead_peer", 230);
    nxc_connector_t *A = e2e_connector("e2e-dead-peer");
    e2e_step("(a) passive dies during READ");
    passive_dies(A, NXC_OP_READ);
    e2e_step("transfer with a new peer after (a) READ");
    check_usable_and_count(A, 100, "(a) read");
    e2e_step("(a) passive dies during WRITE");
    passive_dies(A, NXC_OP_WRITE);
    e2e_step("transfer with a new peer after (a) WRITE");
    check_usable_and_count(A, 101, "(a) write");
    e2e_step("(b) active dies during WRITE");
    active_dies(A, NXC_OP_WRITE);
    e2e_step("transfer with a new peer after (b) WRITE");
    check_usable_and_count(A, 102, "(b) write");
    e2e_step("(b) active dies during READ");
    active_dies(A, NXC_OP_READ);
    e2e_step("transfer with a new peer after (b) READ");
    check_usable_and_count(A, 103, "(b) read");
    e2e_step("(c) peer already dead");
    already_dead(A);
    e2e_step("transfer with a new peer after (c)");
    check_usable_and_count(A, 104, "(c)");
    e2e_step("(d) active dies before it begins");
    active_dies_before_begin(A);
    check_usable_and_count(A, 105, "(d)");
    e2e_step("(e) active dies after its write finished");
    active_dies_after(A);
    check_usable_and_count(A, 106, "(e)");
    /* "did not grow", never "equals". The count after each case moves by
     * one either way (seen: 22, 23, 22; 23 vs 24 failed an equality check):
     * UCX closes the last peer's socket or eventfd lazily. A descriptor left
     * per dead peer grows by one per case, seven here (the mutation test,
     * pidfds not closed: 36 vs 25), so one fd of slack hides no leak. */
    CHECK(e2e_open_fds() <= g_fds_first + 1, "%d fds open after the last case, %d after the "
          "first: dead peers left descriptors behind", e2e_open_fds(), g_fds_first);
    e2e_step("nxc_connector_destroy");
    nxc_connector_destroy(A);
    return e2e_pass("dead passive and active peers detected, worst %.0f ms; connector reusable",
                    g_worst_ms);
}
