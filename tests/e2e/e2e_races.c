/*
 * e2e_races cancel|release local|proc [iterations] — cancellation and
 * release racing completion, many times over (default 1000 per scenario;
 * the argument or env NXC_E2E_RACE_ITERS lowers it for slow builds).
 *
 *   local: the other side is a second connector of this process with its
 *          own progress thread (so it completes its part while we race).
 *   proc:  the other side is an nxc_test_peer process.
 *
 * cancel: a racer thread calls nxc_op_cancel() while the main thread sits
 *   in nxc_op_wait() on the same op (allowed: the header lets threads share
 *   an op until one releases it) and the transfer completes:
 *   - passive: our readable/writable op, the other side reads/writes it;
 *   - active:  our read/write of the other side's op.
 * release: the header forbids releasing an op another thread may still
 *   use, so nxc_op_release() races *completion* instead, driven by our
 *   connector's own progress thread (no waiter at all):
 *   - passive: our readable/writable op released while the other side
 *     reads/writes it;
 *   - active:  our read/write released while in flight.
 *
 * The racer's delay is drawn from [0, 2w] where w adapts per scenario and
 * size (x1.1 after a cancel/release won, x0.9 after completion won), so the
 * calls land around the moment of completion and both outcomes happen; the
 * split is printed, never asserted (timing on a shared machine).
 *
 * Asserted on every iteration (cancel):
 *   - the waiter returns once the op is final, not at its 10 s deadline
 *     (in local mode a third thread drives our connector with
 *     nxc_connector_progress, as an event loop would: it must not steal
 *     the waiter's wake-up);
 *   - nxc_op_cancel() returns NXC_OK; the status seen right after it is
 *     COMPLETE or CANCELLED, and it is the final status: never both,
 *     never neither, never changing later;
 *   - nxc_op_wait() returned NXC_OK for COMPLETE, NXC_ERR_CANCELLED for
 *     CANCELLED (and does so again with timeout 0 later);
 *   - nxc_op_results() gives our descriptors for COMPLETE, NXC_ERR_STATE
 *     otherwise; a second cancel changes nothing;
 *   - our receiving buffer (passive writable, active read): all pattern if
 *     COMPLETE; after release only pattern or initial bytes (no foreign
 *     byte). A CANCELLED op's buffer is not read before release: data the
 *     transport accepted before the cancel may still land until then;
 *   - the other side's op is final within 10 s (never hangs): COMPLETE or
 *     ERRORED; if ours is COMPLETE, theirs is COMPLETE; if we cancelled
 *     our passive op first, theirs is not COMPLETE; their write is COMPLETE
 *     only if all its data is in our buffer (eager sizes too); their
 *     receiving buffer holds no foreign byte and all of the pattern if
 *     COMPLETE.
 * Asserted on every iteration (release):
 *   - the other side's op is final within 10 s: COMPLETE or ERRORED;
 *   - right after release our source buffer is overwritten with a marker:
 *     no marker byte may ever reach the other side (a transfer reading our
 *     buffer after release would carry one);
 *   - our receiving buffer is snapshotted right after release and must not
 *     change afterwards (nothing may write into it after release);
 *   - data the other side received is all pattern if its op is COMPLETE,
 *     and a write of theirs is COMPLETE only if it is all in our buffer;
 *     our read released in flight: if the passive side is COMPLETE, the
 *     data was all in place before release returned.
 * ASan/TSan builds run the same (no use-after-free, no data race).
 */
#include "e2e_common.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ITERS_DEFAULT 1000
#define WAIT_MS       10000 /* bound on every wait: a hang fails the test */

typedef struct size_class {
    size_t n;
    size_t sizes[2];
} size_class_t;

/* eager and rendezvous sizes of both transports, one and two descriptors */
static const size_class_t k_classes[] = {
    { 1, { 1, 0 } },          { 1, { 64, 0 } },          { 1, { 3000, 0 } },
    { 1, { 8 * KiB + 5, 0 } }, { 1, { 64 * KiB, 0 } },   { 1, { 256 * KiB + 1, 0 } },
    { 2, { 100, 70 * KiB } },
};
#define NCLASSES (sizeof k_classes / sizeof k_classes[0])

enum { BUF_FINAL = 0, BUF_MIXED = 1, BUF_INIT = 2, BUF_FOREIGN = 3 };
static const char *const k_class_names[] = { "all data", "partly written", "untouched",
                                             "FOREIGN BYTE" };

typedef struct env {
    int proc;
    nxc_connector_t *A; /* ours */
    nxc_connector_t *B; /* local: the other side (own progress thread) */
    e2e_peer_t peer;    /* proc: the other side */
    pthread_t driver;   /* local cancel runs: drives A like its worker would */
    _Atomic int stop_driver;
} env_t;

/* ---------- small helpers ---------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void spin_ns(uint64_t ns)
{
    uint64_t end = now_ns() + ns;
    while (now_ns() < end) {
    }
}

/* Each byte is pattern ^ final_xr, pattern ^ init_xr, or foreign. */
static int classify(const e2e_bufs_t *b, uint8_t final_xr, uint8_t init_xr, size_t *bad_i,
                    size_t *bad_off)
{
    size_t nfinal = 0, ninit = 0;
    for (size_t i = 0; i < b->n; i++) {
        const uint8_t *p = b->mem[i];
        for (size_t off = 0; off < b->d[i].size; off++) {
            uint8_t pat = e2e_pat(b->seed, i, off);
            if (p[off] == (uint8_t)(pat ^ final_xr)) {
                nfinal++;
            } else if (p[off] == (uint8_t)(pat ^ init_xr)) {
                ninit++;
            } else {
                if (bad_i) *bad_i = i;
                if (bad_off) *bad_off = off;
                return BUF_FOREIGN;
            }
        }
    }
    return ninit == 0 ? BUF_FINAL : nfinal == 0 ? BUF_INIT : BUF_MIXED;
}

static int same_bytes(const e2e_bufs_t *b, void *const *copy)
{
    for (size_t i = 0; i < b->n; i++)
        if (memcmp(b->mem[i], copy[i], b->d[i].size) != 0) return 0;
    return 1;
}

static void **snapshot(const e2e_bufs_t *b)
{
    void **copy = calloc(b->n, sizeof *copy);
    CHECK(copy != NULL, "oom");
    for (size_t i = 0; i < b->n; i++) {
        copy[i] = malloc(b->d[i].size ? b->d[i].size : 1);
        CHECK(copy[i] != NULL, "oom");
        memcpy(copy[i], b->mem[i], b->d[i].size);
    }
    return copy;
}

static void free_snapshot(const e2e_bufs_t *b, void **copy)
{
    for (size_t i = 0; i < b->n; i++) free(copy[i]);
    free(copy);
}

static int final_ok(nxc_op_status_t s)
{
    return s == NXC_OP_COMPLETE || s == NXC_OP_CANCELLED;
}

/* In local cancel runs A has no progress thread, and the main thread may
 * block in a call on B (releasing B's op waits for B's sends, which need A
 * to receive them): this thread drives A meanwhile, as A's own worker
 * would (fd + progress), besides the waiter that drives it in the race. */
static void *driver_main(void *arg)
{
    env_t *e = arg;
    struct pollfd pfd = { .fd = nxc_connector_fd(e->A), .events = POLLIN };
    while (!e->stop_driver) {
        nxc_connector_progress(e->A);
        poll(&pfd, 1, 5);
    }
    return NULL;
}

/* ---------- the adaptive race window ---------- */

typedef struct window {
    double ns;
} window_t;

static uint64_t window_draw(const window_t *w)
{
    uint64_t span = (uint64_t)(2.0 * w->ns) + 1;
    uint64_t r = ((uint64_t)e2e_rand() << 32) | e2e_rand();
    return r % span;
}

static void window_update(window_t *w, int won)
{
    w->ns *= won ? 1.1 : 0.9;
    if (w->ns < 200.0) w->ns = 200.0;
    if (w->ns > 20e6) w->ns = 20e6;
}

/* ---------- the other side ---------- */

typedef struct other {
    nxc_op_kind_t kind;
    int active;
    /* local */
    nxc_op_t *op;
    e2e_bufs_t b;
    /* proc */
    int id;
    int pending;   /* ACTIVE sent, its reply not read yet */
    char *json;    /* proc passive: the peer's metadata */
} other_t;

typedef struct other_res {
    int rc;        /* their nxc_op_wait() */
    int status;    /* their final status */
    int errcode;   /* their nxc_op_error() */
    int cls;       /* their receiving buffer (passive writable / active read), else -1 */
    int verify;    /* proc: the peer's verify code */
    char detail[512];
} other_res_t;

/* The other side exposes memory; returns the metadata text (valid until
 * other_finish). */
static const char *other_passive(env_t *e, other_t *o, nxc_op_kind_t kind, uint32_t seed,
                                 const size_class_t *sc)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    if (!e->proc) {
        e2e_bufs_alloc(&o->b, seed, sc->n, sc->sizes);
        e2e_bufs_fill(&o->b, kind == NXC_OP_READ ? 0 : E2E_INIT_XOR);
        if (kind == NXC_OP_READ)
            CHECK_RC(nxc_create_readable(e->B, o->b.d, o->b.n, &o->op), NXC_OK);
        else
            CHECK_RC(nxc_create_writable(e->B, o->b.d, o->b.n, &o->op), NXC_OK);
        return e2e_op_metadata(o->op);
    }
    o->id = e2e_peer_passive(&e->peer, e->A, kind, seed, sc->n, sc->sizes, &o->json);
    return o->json;
}

/* The other side begins a read/write against our metadata; in proc mode
 * the command is sent and its reply read later (other_finish), so the
 * transfer starts while we race. */
static void other_begin(env_t *e, other_t *o, nxc_op_kind_t kind, uint32_t seed,
                        const size_class_t *sc, const char *json)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->active = 1;
    if (!e->proc) {
        e2e_bufs_alloc(&o->b, seed, sc->n, sc->sizes);
        e2e_bufs_fill(&o->b, kind == NXC_OP_READ ? E2E_INIT_XOR : 0);
        nxc_metadata_t *md = e2e_parse(json);
        if (kind == NXC_OP_READ)
            CHECK_RC(nxc_begin_read(e->B, md, o->b.d, o->b.n, &o->op), NXC_OK);
        else
            CHECK_RC(nxc_begin_write(e->B, o->b.d, o->b.n, md, &o->op), NXC_OK);
        nxc_metadata_free(md);
        return;
    }
    if (sc->n == 1)
        e2e_peer_send(&e->peer, "ACTIVE %c %u 1 %zu", kind == NXC_OP_READ ? 'R' : 'W', seed,
                      sc->sizes[0]);
    else
        e2e_peer_send(&e->peer, "ACTIVE %c %u 2 %zu %zu", kind == NXC_OP_READ ? 'R' : 'W',
                      seed, sc->sizes[0], sc->sizes[1]);
    e2e_peer_send(&e->peer, "%s", json);
    o->pending = 1;
}

/* Waits (at most WAIT_MS, driving our connector A meanwhile: it may owe
 * the other side an ABORT or data) until the other side's op is final,
 * records the outcome, releases it. */
static void other_finish(env_t *e, other_t *o, other_res_t *r)
{
    memset(r, 0, sizeof *r);
    r->cls = -1;
    int receiving = o->active ? o->kind == NXC_OP_READ : o->kind == NXC_OP_WRITE;
    if (!e->proc) {
        nxc_op_t *ops[1] = { o->op };
        e2e_drive_until_final(ops, 1, e->A, NULL, WAIT_MS);
        r->rc = nxc_op_wait(o->op, 0);
        r->status = nxc_op_status(o->op);
        const char *detail = NULL;
        r->errcode = nxc_op_error(o->op, &detail);
        snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
        if (r->status == NXC_OP_COMPLETE) {
            e2e_check_results(o->op, &o->b, "the other side's COMPLETE op");
        } else {
            const nxc_descriptor_t *d;
            size_t n;
            CHECK_RC(nxc_op_results(o->op, &d, &n), NXC_ERR_STATE, "(other side, %s)",
                     nxc_op_status_name(r->status));
        }
        nxc_op_release(o->op);
        /* after release: an ERRORED op may still receive data it accepted */
        if (receiving) r->cls = classify(&o->b, 0, E2E_INIT_XOR, NULL, NULL);
        e2e_bufs_free(&o->b);
        return;
    }
    if (o->pending) {
        char *l = e2e_peer_readline(&e->peer, e->A, 60000);
        CHECK(sscanf(l, "OK %d", &o->id) == 1, "peer's begin failed: '%.300s'", l);
        o->pending = 0;
    }
    e2e_peer_res_t pr;
    e2e_peer_wait(&e->peer, e->A, o->id, WAIT_MS, &pr);
    r->rc = pr.rc;
    r->status = pr.status;
    r->errcode = pr.errcode;
    r->verify = pr.verify;
    snprintf(r->detail, sizeof r->detail, "%s", pr.detail);
    CHECK(pr.verify == 0 || pr.verify == 1 || pr.verify == 3,
          "peer: results() inconsistent with status %d (verify %d)", pr.status, pr.verify);
    if (receiving) r->cls = e2e_peer_check(&e->peer, e->A, o->id);
    e2e_peer_release(&e->peer, e->A, o->id);
    free(o->json);
    o->json = NULL;
}

/* ---------- outcome tallies ---------- */

typedef struct tally {
    const char *name;
    int iters;
    int won;              /* cancel/release took effect before completion */
    int lost;             /* completion came first */
    int other_complete;   /* other side COMPLETE */
    int other_aborted;    /* other side ERRORED with NXC_ERR_PEER_ABORTED */
    int other_failed;     /* other side ERRORED with another code */
    int other_complete_after_won; /* other side COMPLETE although we cancelled/released */
    double window_end_us; /* mean final window over the size classes */
} tally_t;

static void tally_other(tally_t *t, const other_res_t *r, int won)
{
    if (r->status == NXC_OP_COMPLETE) {
        t->other_complete++;
        if (won) t->other_complete_after_won++;
    } else if (r->errcode == NXC_ERR_PEER_ABORTED) {
        t->other_aborted++;
    } else {
        t->other_failed++;
    }
}

static void tally_print(const tally_t *t)
{
    printf("  %-16s %5d iterations: %s won %d, completion won %d | other side: COMPLETE %d "
           "(%d of them after ours %s), "
           "ERRORED/PEER_ABORTED %d, ERRORED/other %d | window ~%.0f us\n",
           t->name, t->iters, strstr(t->name, "release") ? "release" : "cancel", t->won,
           t->lost, t->other_complete, t->other_complete_after_won,
           strstr(t->name, "release") ? "was released" : "was cancelled",
           t->other_aborted, t->other_failed, t->window_end_us);
}

static void check_other_final(const other_t *o, const other_res_t *r, const char *what, int i)
{
    CHECK(r->rc != NXC_ERR_TIMED_OUT,
          "%s iteration %d: the other side's %s %s op is still %s after %d ms (hangs)", what,
          i, o->active ? "active" : "passive", nxc_op_kind_name(o->kind),
          nxc_op_status_name((nxc_op_status_t)r->status), WAIT_MS);
    CHECK(r->status == NXC_OP_COMPLETE || r->status == NXC_OP_ERRORED,
          "%s iteration %d: the other side's op ended %s (rc %d %s)", what, i,
          nxc_op_status_name((nxc_op_status_t)r->status), r->rc, r->detail);
    CHECK((r->status == NXC_OP_COMPLETE) == (r->rc == NXC_OK),
          "%s iteration %d: the other side's wait returned %d for status %s", what, i, r->rc,
          nxc_op_status_name((nxc_op_status_t)r->status));
    if (r->cls >= 0) {
        CHECK(r->cls != BUF_FOREIGN,
              "%s iteration %d: the other side's buffer holds a foreign byte", what, i);
        if (r->status == NXC_OP_COMPLETE)
            CHECK(r->cls == BUF_FINAL,
                  "%s iteration %d: the other side is COMPLETE but its buffer is %s", what, i,
                  k_class_names[r->cls]);
    }
}

/* Every scenario keeps one adaptive window per kind and size class. */
static void windows_init(window_t win[2][NCLASSES])
{
    for (size_t k = 0; k < 2; k++)
        for (size_t c = 0; c < NCLASSES; c++) win[k][c].ns = 50e3;
}

static double windows_mean_us(window_t win[2][NCLASSES])
{
    double sum = 0;
    for (size_t k = 0; k < 2; k++)
        for (size_t c = 0; c < NCLASSES; c++) sum += win[k][c].ns;
    return sum / (2 * NCLASSES) / 1e3;
}

/* One iteration's outcome: the window adapts, the tallies count. */
static void iteration_done(tally_t *t, window_t *w, const other_res_t *r, int won)
{
    window_update(w, won);
    tally_other(t, r, won);
    t->won += won;
    t->lost += !won;
    t->iters++;
}

/* ---------- cancel racing completion ---------- */

typedef struct racer {
    pthread_t th;
    pthread_barrier_t go, done;
    nxc_op_t *op;
    uint64_t delay_ns;
    int quit;
    int rc;
    nxc_op_status_t after;
} racer_t;

static void *racer_main(void *arg)
{
    racer_t *r = arg;
    for (;;) {
        pthread_barrier_wait(&r->go);
        if (r->quit) return NULL;
        spin_ns(r->delay_ns);
        r->rc = nxc_op_cancel(r->op);
        r->after = nxc_op_status(r->op);
        pthread_barrier_wait(&r->done);
    }
}

/* The cancel race on `op` (ours); checks our side; returns 1 if the cancel
 * won (CANCELLED), 0 if completion did. */
static int race_cancel(racer_t *rc, nxc_op_t *op, const window_t *w, const e2e_bufs_t *ours,
                       int receiving, const char *what, int i)
{
    rc->op = op;
    rc->delay_ns = window_draw(w);
    pthread_barrier_wait(&rc->go);
    double t0 = e2e_now_ms();
    int wrc = nxc_op_wait(op, WAIT_MS);
    double waited = e2e_now_ms() - t0;
    pthread_barrier_wait(&rc->done);

    CHECK(wrc != NXC_ERR_TIMED_OUT, "%s iteration %d: our op still %s after %d ms", what, i,
          nxc_op_status_name(nxc_op_status(op)), WAIT_MS);
    /* a hang bound, not a timing check: the op became final, but the waiter
     * only noticed when its deadline came (a lost wake-up) */
    CHECK(waited < WAIT_MS, "%s iteration %d: nxc_op_wait returned %s only at its %d ms "
          "deadline: the waiter slept through its op's change", what, i, nxc_strerror(wrc),
          WAIT_MS);
    CHECK_RC(rc->rc, NXC_OK, "(%s iteration %d: nxc_op_cancel racing completion; op %s)", what,
             i, nxc_op_status_name(nxc_op_status(op)));
    nxc_op_status_t st = nxc_op_status(op);
    CHECK(final_ok(st), "%s iteration %d: op ended %s, want COMPLETE or CANCELLED", what, i,
          nxc_op_status_name(st));
    CHECK(rc->after == st, "%s iteration %d: status right after cancel was %s, now %s", what,
          i, nxc_op_status_name(rc->after), nxc_op_status_name(st));
    CHECK_RC(wrc, st == NXC_OP_COMPLETE ? NXC_OK : NXC_ERR_CANCELLED,
             "(%s iteration %d: wait's result vs status %s)", what, i, nxc_op_status_name(st));
    if (st == NXC_OP_COMPLETE) {
        e2e_check_results(op, ours, what);
    } else {
        const nxc_descriptor_t *d;
        size_t n;
        CHECK_RC(nxc_op_results(op, &d, &n), NXC_ERR_STATE, "(%s iteration %d, CANCELLED)",
                 what, i);
    }
    /* A COMPLETE op's buffers are all in place. A CANCELLED op's may still
     * be receiving data accepted before the cancel, until release: the
     * caller looks at them only after releasing (see check_after_release). */
    if (receiving && st == NXC_OP_COMPLETE) {
        int cls = classify(ours, 0, E2E_INIT_XOR, NULL, NULL);
        CHECK(cls == BUF_FINAL, "%s iteration %d: COMPLETE but our buffer is %s", what, i,
              k_class_names[cls]);
    }
    return st == NXC_OP_CANCELLED;
}

/* Our receiving buffer once the op is released: no foreign byte. */
static int check_after_release(const e2e_bufs_t *ours, const char *what, int i)
{
    size_t bi = 0, bo = 0;
    int cls = classify(ours, 0, E2E_INIT_XOR, &bi, &bo);
    CHECK(cls != BUF_FOREIGN, "%s iteration %d: foreign byte in descriptor %zu at %zu", what,
          i, bi, bo);
    return cls;
}

/* After the other side is final: ours has not moved; a second cancel and a
 * zero wait agree with it. */
static void recheck_ours(nxc_op_t *op, int won, const char *what, int i)
{
    nxc_op_status_t st = won ? NXC_OP_CANCELLED : NXC_OP_COMPLETE;
    CHECK(nxc_op_status(op) == st, "%s iteration %d: final status changed from %s to %s", what,
          i, nxc_op_status_name(st), nxc_op_status_name(nxc_op_status(op)));
    CHECK_RC(nxc_op_cancel(op), NXC_OK, "(%s iteration %d: second cancel)", what, i);
    CHECK_RC(nxc_op_wait(op, 0), won ? NXC_ERR_CANCELLED : NXC_OK,
             "(%s iteration %d: wait again)", what, i);
    CHECK(nxc_op_status(op) == st, "%s iteration %d: second cancel changed %s to %s", what, i,
          nxc_op_status_name(st), nxc_op_status_name(nxc_op_status(op)));
}

static void cancel_passive(env_t *e, racer_t *rc, int iters, tally_t *t)
{
    static window_t win[2][NCLASSES];
    windows_init(win);
    for (int i = 0; i < iters; i++) {
        nxc_op_kind_t kind = (i % 2) ? NXC_OP_READ : NXC_OP_WRITE;
        size_t ci = (size_t)(i / 2) % NCLASSES;
        const size_class_t *sc = &k_classes[ci];
        uint32_t seed = 10000u + (uint32_t)i;
        e2e_bufs_t b;
        e2e_bufs_alloc(&b, seed, sc->n, sc->sizes);
        e2e_bufs_fill(&b, kind == NXC_OP_READ ? 0 : E2E_INIT_XOR);
        nxc_op_t *p = NULL;
        if (kind == NXC_OP_READ)
            CHECK_RC(nxc_create_readable(e->A, b.d, b.n, &p), NXC_OK);
        else
            CHECK_RC(nxc_create_writable(e->A, b.d, b.n, &p), NXC_OK);
        other_t o;
        other_begin(e, &o, kind, seed, sc, e2e_op_metadata(p));
        int won = race_cancel(rc, p, &win[kind == NXC_OP_READ][ci], &b, kind == NXC_OP_WRITE,
                              "cancel_passive", i);
        other_res_t r;
        other_finish(e, &o, &r);
        check_other_final(&o, &r, "cancel_passive", i);
        if (!won)
            CHECK(r.status == NXC_OP_COMPLETE,
                  "cancel_passive iteration %d: ours COMPLETE, the other side's %s ended %s "
                  "(%s)", i, nxc_op_kind_name(kind), nxc_op_status_name(r.status), r.detail);
        recheck_ours(p, won, "cancel_passive", i);
        nxc_op_release(p);
        if (kind == NXC_OP_WRITE && check_after_release(&b, "cancel_passive", i) != BUF_FINAL)
            CHECK(r.status != NXC_OP_COMPLETE, "cancel_passive iteration %d: the other side's "
                  "write is COMPLETE but we dropped its data", i);
        if (won)
            CHECK(r.status != NXC_OP_COMPLETE, "cancel_passive iteration %d: we cancelled "
                  "first, yet the other side's %s is COMPLETE (%s)", i,
                  nxc_op_kind_name(kind), r.detail);
        e2e_bufs_free(&b);
        iteration_done(t, &win[kind == NXC_OP_READ][ci], &r, won);
    }
    t->window_end_us = windows_mean_us(win);
}

static void cancel_active(env_t *e, racer_t *rc, int iters, tally_t *t)
{
    static window_t win[2][NCLASSES];
    windows_init(win);
    for (int i = 0; i < iters; i++) {
        nxc_op_kind_t kind = (i % 2) ? NXC_OP_READ : NXC_OP_WRITE;
        size_t ci = (size_t)(i / 2) % NCLASSES;
        const size_class_t *sc = &k_classes[ci];
        uint32_t seed = 20000u + (uint32_t)i;
        other_t o;
        nxc_metadata_t *md = e2e_parse(other_passive(e, &o, kind, seed, sc));
        e2e_bufs_t b;
        e2e_bufs_alloc(&b, seed, sc->n, sc->sizes);
        e2e_bufs_fill(&b, kind == NXC_OP_READ ? E2E_INIT_XOR : 0);
        nxc_op_t *a = NULL;
        if (kind == NXC_OP_READ)
            CHECK_RC(nxc_begin_read(e->A, md, b.d, b.n, &a), NXC_OK);
        else
            CHECK_RC(nxc_begin_write(e->A, b.d, b.n, md, &a), NXC_OK);
        nxc_metadata_free(md);
        int won = race_cancel(rc, a, &win[kind == NXC_OP_READ][ci], &b, kind == NXC_OP_READ,
                              "cancel_active", i);
        other_res_t r;
        other_finish(e, &o, &r);
        check_other_final(&o, &r, "cancel_active", i);
        if (!won)
            CHECK(r.status == NXC_OP_COMPLETE,
                  "cancel_active iteration %d: ours COMPLETE, the other side's %s op ended "
                  "%s (%s)", i, kind == NXC_OP_READ ? "readable" : "writable",
                  nxc_op_status_name(r.status), r.detail);
        recheck_ours(a, won, "cancel_active", i);
        nxc_op_release(a);
        if (kind == NXC_OP_READ) check_after_release(&b, "cancel_active", i);
        e2e_bufs_free(&b);
        iteration_done(t, &win[kind == NXC_OP_READ][ci], &r, won);
    }
    t->window_end_us = windows_mean_us(win);
}

/* ---------- release racing completion (our progress thread) ---------- */

static void release_passive(env_t *e, int iters, tally_t *t)
{
    static window_t win[2][NCLASSES];
    windows_init(win);
    for (int i = 0; i < iters; i++) {
        nxc_op_kind_t kind = (i % 2) ? NXC_OP_READ : NXC_OP_WRITE;
        size_t ci = (size_t)(i / 2) % NCLASSES;
        const size_class_t *sc = &k_classes[ci];
        uint32_t seed = 30000u + (uint32_t)i;
        e2e_bufs_t b;
        e2e_bufs_alloc(&b, seed, sc->n, sc->sizes);
        e2e_bufs_fill(&b, kind == NXC_OP_READ ? 0 : E2E_INIT_XOR);
        nxc_op_t *p = NULL;
        if (kind == NXC_OP_READ)
            CHECK_RC(nxc_create_readable(e->A, b.d, b.n, &p), NXC_OK);
        else
            CHECK_RC(nxc_create_writable(e->A, b.d, b.n, &p), NXC_OK);
        other_t o;
        other_begin(e, &o, kind, seed, sc, e2e_op_metadata(p));
        spin_ns(window_draw(&win[kind == NXC_OP_READ][ci]));
        nxc_op_release(p); /* our progress thread may be completing it right now */
        void **snap = NULL;
        if (kind == NXC_OP_READ)
            e2e_bufs_fill(&b, E2E_MARKER_XOR); /* a later read of it would carry these */
        else
            snap = snapshot(&b);
        other_res_t r;
        other_finish(e, &o, &r);
        check_other_final(&o, &r, "release_passive", i);
        int won = r.status != NXC_OP_COMPLETE;
        if (kind == NXC_OP_WRITE) {
            size_t bi = 0, bo = 0;
            CHECK(same_bytes(&b, snap),
                  "release_passive iteration %d: our writable buffer changed after release", i);
            int cls = classify(&b, 0, E2E_INIT_XOR, &bi, &bo);
            CHECK(cls != BUF_FOREIGN, "release_passive iteration %d: foreign byte at %zu/%zu",
                  i, bi, bo);
            /* A write is COMPLETE for its sender only once our op took all
             * of it (the acknowledgement), eager sizes too. */
            CHECK(r.status != NXC_OP_COMPLETE || cls == BUF_FINAL,
                  "release_passive iteration %d: the other side's write is COMPLETE but we "
                  "dropped its data (buffer %s)", i, k_class_names[cls]);
            free_snapshot(&b, snap);
        }
        e2e_bufs_free(&b);
        iteration_done(t, &win[kind == NXC_OP_READ][ci], &r, won);
    }
    t->window_end_us = windows_mean_us(win);
}

static void release_active(env_t *e, int iters, tally_t *t)
{
    static window_t win[2][NCLASSES];
    windows_init(win);
    for (int i = 0; i < iters; i++) {
        nxc_op_kind_t kind = (i % 2) ? NXC_OP_READ : NXC_OP_WRITE;
        size_t ci = (size_t)(i / 2) % NCLASSES;
        const size_class_t *sc = &k_classes[ci];
        uint32_t seed = 40000u + (uint32_t)i;
        other_t o;
        nxc_metadata_t *md = e2e_parse(other_passive(e, &o, kind, seed, sc));
        e2e_bufs_t b;
        e2e_bufs_alloc(&b, seed, sc->n, sc->sizes);
        e2e_bufs_fill(&b, kind == NXC_OP_READ ? E2E_INIT_XOR : 0);
        nxc_op_t *a = NULL;
        if (kind == NXC_OP_READ)
            CHECK_RC(nxc_begin_read(e->A, md, b.d, b.n, &a), NXC_OK);
        else
            CHECK_RC(nxc_begin_write(e->A, b.d, b.n, md, &a), NXC_OK);
        nxc_metadata_free(md);
        spin_ns(window_draw(&win[kind == NXC_OP_READ][ci]));
        nxc_op_release(a); /* racing our progress thread's completion */
        void **snap = NULL;
        if (kind == NXC_OP_WRITE)
            e2e_bufs_fill(&b, E2E_MARKER_XOR);
        else
            snap = snapshot(&b);
        other_res_t r;
        other_finish(e, &o, &r);
        check_other_final(&o, &r, "release_active", i);
        int won = r.status != NXC_OP_COMPLETE;
        if (kind == NXC_OP_READ) {
            size_t bi = 0, bo = 0;
            CHECK(same_bytes(&b, snap),
                  "release_active iteration %d: our read's buffer changed after release", i);
            int cls = classify(&b, 0, E2E_INIT_XOR, &bi, &bo);
            CHECK(cls != BUF_FOREIGN, "release_active iteration %d: foreign byte at %zu/%zu", i,
                  bi, bo);
            if (r.status == NXC_OP_COMPLETE)
                CHECK(cls == BUF_FINAL,
                      "release_active iteration %d: the passive side is COMPLETE, but our "
                      "read's buffer is %s after release", i, k_class_names[cls]);
            free_snapshot(&b, snap);
        }
        e2e_bufs_free(&b);
        iteration_done(t, &win[kind == NXC_OP_READ][ci], &r, won);
    }
    t->window_end_us = windows_mean_us(win);
}

/* ---------- main ---------- */

static nxc_connector_t *connector_with_thread(const char *name)
{
    nxc_connector_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.field_mask = NXC_CONFIG_NAME | NXC_CONFIG_PROGRESS_THREAD;
    cfg.name = name;
    cfg.progress_thread = 1;
    nxc_connector_t *c = NULL;
    CHECK_RC(nxc_connector_create(&cfg, &c), NXC_OK);
    return c;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "cancel") && strcmp(argv[1], "release")) ||
        (strcmp(argv[2], "local") && strcmp(argv[2], "proc"))) {
        fprintf(stderr, "usage: %s cancel|release local|proc [iterations]\n", argv[0]);
        return 64;
    }
    int release = !strcmp(argv[1], "release");
    env_t e;
    memset(&e, 0, sizeof e);
    e.proc = !strcmp(argv[2], "proc");
    int iters = ITERS_DEFAULT;
    const char *env_iters = getenv("NXC_E2E_RACE_ITERS");
    if (argc > 3)
        iters = atoi(argv[3]);
    else if (env_iters && *env_iters)
        iters = atoi(env_iters);
    if (iters < 1) iters = 1;
    char title[64];
    snprintf(title, sizeof title, "e2e_races_%s_%s", argv[1], argv[2]);
    e2e_init(title, 290);
    double t0 = e2e_now_ms();

    /* release races our own progress thread; cancel races a waiter that
     * drives the connector (or its thread with NXC_E2E_PROGRESS_THREAD=1) */
    e.A = release ? connector_with_thread("races-A") : e2e_connector("races-A");
    if (e.proc)
        e2e_peer_start(&e.peer);
    else
        e.B = connector_with_thread("races-B");
    int driven = !e.proc && !release;
    if (driven) CHECK(pthread_create(&e.driver, NULL, driver_main, &e) == 0, "pthread_create");

    tally_t passive = { .name = release ? "release_passive" : "cancel_passive" };
    tally_t active = { .name = release ? "release_active" : "cancel_active" };
    if (!release) {
        racer_t rc;
        memset(&rc, 0, sizeof rc);
        pthread_barrier_init(&rc.go, NULL, 2);
        pthread_barrier_init(&rc.done, NULL, 2);
        CHECK(pthread_create(&rc.th, NULL, racer_main, &rc) == 0, "pthread_create");
        e2e_step("cancel racing completion of passive ops");
        cancel_passive(&e, &rc, iters, &passive);
        e2e_step("cancel racing completion of active ops");
        cancel_active(&e, &rc, iters, &active);
        rc.quit = 1;
        pthread_barrier_wait(&rc.go);
        pthread_join(rc.th, NULL);
        pthread_barrier_destroy(&rc.go);
        pthread_barrier_destroy(&rc.done);
    } else {
        e2e_step("release racing completion of passive ops");
        release_passive(&e, iters, &passive);
        e2e_step("release racing completion of active ops");
        release_active(&e, iters, &active);
    }
    tally_print(&passive);
    tally_print(&active);

    e2e_step("teardown");
    if (driven) {
        e.stop_driver = 1;
        pthread_join(e.driver, NULL);
    }
    if (e.proc) {
        e2e_peer_stop(&e.peer);
        e2e_peer_close(&e.peer);
    }
    nxc_connector_destroy(e.B);
    nxc_connector_destroy(e.A);
    return e2e_pass("%d passive + %d active ops, each exactly COMPLETE or %s, in %.1f s",
                    passive.iters, active.iters, release ? "released" : "CANCELLED",
                    (e2e_now_ms() - t0) / 1e3);
}
