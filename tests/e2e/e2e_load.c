/*
 * e2e_load inflight [ops_per_thread] | cycles local|proc [cycles]
 *
 * inflight: 10,000 passive writable ops open on one connector A at once,
 *   created by 4 threads (2,500 each, sizes 1 B..1 KiB); each thread hands
 *   its metadata to connector B of this process (its own progress thread),
 *   which begins a write into every one, so 10,000 passive and 10,000
 *   active ops are in flight together; then the 4 threads wait on their ops
 *   concurrently (they drive A: A has no thread of its own), check every
 *   byte and results(), release them, and wait for and release B's ops.
 *   Two such rounds after a warm-up round of 100 ops.
 * cycles: 1,000 sequential full cycles with one peer (B in this process,
 *   or an nxc_test_peer process): create -> metadata -> parse -> begin ->
 *   wait -> release, cycling through A passive/active x read/write, every
 *   byte checked. After 50 warm-up cycles.
 *
 * Both print VmRSS (/proc/self/status) and the number of open fds
 * (/proc/self/fd) after the warm-up and at the end (after releasing
 * everything, and malloc_trim(0) so that the figure is what the process
 * holds, not what glibc keeps cached), and assert:
 *   - the fd count does not grow (no pidfd, eventfd, socket or UCX fd per op
 *     or per cycle);
 *   - RSS grew by less than 32 MiB (inflight) / 16 MiB (cycles). Why these
 *     bounds: a round of 10,000 ops holds ~10 MiB of buffers on each side
 *     plus ~20,000 op structs, metadata texts and UCX requests (~30 MiB at
 *     the peak, printed). After release only what UCX keeps pooled (its
 *     request and registration-cache pools grow to the peak and are not
 *     returned) and heap fragmentation remain; a leak of one buffer or one
 *     registration per op would be 10-20 MiB per round and fail the second
 *     round's bound together with the first. Not asserted under ASan/TSan
 *     or valgrind, whose allocators keep freed memory (quarantine) and
 *     whose shadow memory counts in our RSS.
 *   - each connector knows exactly one peer and holds at most one endpoint
 *     to it, however many ops went to it (the test links the private
 *     library to count them; in proc mode the peer process is counted
 *     through our fds only).
 */
#include "e2e_common.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "e2e_private.h" /* the peer list, to count endpoints */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif
/* valgrind's own memory (shadow, translations) grows inside our RSS */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifdef RUNNING_ON_VALGRIND
#define UNDER_TOOL (UNDER_SANITIZER || RUNNING_ON_VALGRIND)
#else
#define UNDER_TOOL UNDER_SANITIZER
#endif

#define NT 4
#define WAIT_MS 60000 /* hang bound for one op */

/* ---------- process figures ---------- */

typedef struct figures {
    long rss_kib;
    int fds;
} figures_t;

static figures_t measure(const char *when)
{
    if (!UNDER_SANITIZER) malloc_trim(0);
    figures_t f = { e2e_rss_kib(), e2e_open_fds() };
    printf("  %-34s VmRSS %7ld KiB, %3d fds\n", when, f.rss_kib, f.fds);
    return f;
}

static void check_growth(figures_t start, figures_t end, long bound_mib)
{
    CHECK(end.fds <= start.fds, "open fds grew from %d to %d", start.fds, end.fds);
    long grew = end.rss_kib - start.rss_kib;
    printf("  RSS grew by %ld KiB (bound %ld MiB%s), fds %d -> %d\n", grew, bound_mib,
           UNDER_TOOL ? ", not asserted under a sanitizer or valgrind" : "", start.fds,
           end.fds);
    if (!UNDER_TOOL)
        CHECK(grew < bound_mib * 1024, "RSS grew by %ld KiB, more than %ld MiB", grew, bound_mib);
}

/* One peer, at most one endpoint to it (private structures, under the
 * connector's lock). */
static void check_one_peer(nxc_connector_t *c, const char *who)
{
    unsigned peers, eps;
    e2e_count_peers(c, &peers, &eps);
    printf("  %s knows %u peer(s), %u endpoint(s)\n", who, peers, eps);
    CHECK(peers == 1 && eps <= 1, "%s knows %u peers with %u endpoints; want 1 peer, at most "
          "one endpoint", who, peers, eps);
}

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

/* ---------- inflight ---------- */

static nxc_connector_t *g_A, *g_B;
static pthread_barrier_t g_bar;
static int g_per;

typedef struct worker {
    int t;
    int round;
    nxc_op_t **passive;  /* on A */
    nxc_op_t **active;   /* on B */
    e2e_bufs_t *dst;     /* A's buffers */
    e2e_bufs_t *src;     /* B's buffers */
    long verified_bytes;
} worker_t;

static size_t op_size(int t, int k)
{
    return 1 + (size_t)(k * 131 + t * 17) % 1024;
}

static uint32_t op_seed(int round, int t, int k)
{
    return (uint32_t)(round * 1000003 + t * 10007 + k);
}

static void *inflight_thread(void *arg)
{
    worker_t *w = arg;
    /* 1: create every passive op (they stay open until phase 3) */
    for (int k = 0; k < g_per; k++) {
        size_t sz = op_size(w->t, k);
        e2e_bufs_alloc(&w->dst[k], op_seed(w->round, w->t, k), 1, &sz);
        e2e_bufs_fill(&w->dst[k], E2E_INIT_XOR);
        CHECK_RC(nxc_create_writable(g_A, w->dst[k].d, 1, &w->passive[k]), NXC_OK,
                 "(thread %d op %d)", w->t, k);
    }
    pthread_barrier_wait(&g_bar);
    /* 2: hand the metadata to B, which begins every write */
    for (int k = 0; k < g_per; k++) {
        size_t sz = op_size(w->t, k);
        e2e_bufs_alloc(&w->src[k], op_seed(w->round, w->t, k), 1, &sz);
        e2e_bufs_fill(&w->src[k], 0);
        nxc_metadata_t *md = e2e_parse(e2e_op_metadata(w->passive[k]));
        CHECK_RC(nxc_begin_write(g_B, w->src[k].d, 1, md, &w->active[k]), NXC_OK,
                 "(thread %d op %d)", w->t, k);
        nxc_metadata_free(md);
    }
    pthread_barrier_wait(&g_bar); /* main measures: everything in flight */
    pthread_barrier_wait(&g_bar);
    /* 3: wait (newest first), verify, release */
    for (int k = g_per - 1; k >= 0; k--) {
        CHECK_RC(nxc_op_wait(w->passive[k], WAIT_MS), NXC_OK, "(thread %d passive op %d)",
                 w->t, k);
        size_t bi, bo;
        CHECK(e2e_bufs_verify(&w->dst[k], 0, &bi, &bo) == 0,
              "thread %d op %d: byte %zu of %zu wrong", w->t, k, bo, w->dst[k].d[0].size);
        e2e_check_results(w->passive[k], &w->dst[k], "passive op under load");
        w->verified_bytes += (long)w->dst[k].d[0].size;
        nxc_op_release(w->passive[k]);
        e2e_bufs_free(&w->dst[k]);
    }
    for (int k = 0; k < g_per; k++) {
        CHECK_RC(nxc_op_wait(w->active[k], WAIT_MS), NXC_OK, "(thread %d active op %d)", w->t,
                 k);
        e2e_check_results(w->active[k], &w->src[k], "active op under load");
        nxc_op_release(w->active[k]);
        e2e_bufs_free(&w->src[k]);
    }
    return NULL;
}

static long inflight_round(int round, figures_t *peak)
{
    worker_t w[NT];
    pthread_t th[NT];
    for (int t = 0; t < NT; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].t = t;
        w[t].round = round;
        w[t].passive = calloc((size_t)g_per, sizeof *w[t].passive);
        w[t].active = calloc((size_t)g_per, sizeof *w[t].active);
        w[t].dst = calloc((size_t)g_per, sizeof *w[t].dst);
        w[t].src = calloc((size_t)g_per, sizeof *w[t].src);
        CHECK(w[t].passive && w[t].active && w[t].dst && w[t].src, "oom");
        CHECK(pthread_create(&th[t], NULL, inflight_thread, &w[t]) == 0, "pthread_create");
    }
    pthread_barrier_wait(&g_bar); /* created */
    pthread_barrier_wait(&g_bar); /* begun */
    if (peak) *peak = measure("all in flight:");
    pthread_barrier_wait(&g_bar);
    long bytes = 0;
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        bytes += w[t].verified_bytes;
        free(w[t].passive);
        free(w[t].active);
        free(w[t].dst);
        free(w[t].src);
    }
    return bytes;
}

static int run_inflight(int per)
{
    g_per = 25;
    g_A = e2e_connector("load-A"); /* the waiters drive it */
    g_B = connector_with_thread("load-B");
    pthread_barrier_init(&g_bar, NULL, NT + 1);
    double t0 = e2e_now_ms();

    e2e_step("warm-up round");
    inflight_round(0, NULL);
    figures_t start = measure("after warm-up (100 ops):");

    g_per = per;
    long bytes = 0;
    figures_t peak;
    for (int round = 1; round <= 2; round++) {
        e2e_step(round == 1 ? "round 1" : "round 2");
        double r0 = e2e_now_ms();
        bytes += inflight_round(round, &peak);
        char what[64];
        snprintf(what, sizeof what, "after round %d (%.1f s):", round, (e2e_now_ms() - r0) / 1e3);
        measure(what);
    }
    figures_t end = measure("end:");
    check_growth(start, end, 32);
    check_one_peer(g_A, "A (passive side)");
    check_one_peer(g_B, "B (active side)");

    pthread_barrier_destroy(&g_bar);
    nxc_connector_destroy(g_B);
    nxc_connector_destroy(g_A);
    return e2e_pass("2 rounds of %d passive writable ops in flight at once (%d threads x %d), "
                    "%ld bytes verified, peak VmRSS %ld KiB, RSS %+ld KiB, fds %d -> %d, "
                    "%.1f s",
                    NT * per, NT, per, bytes, peak.rss_kib, end.rss_kib - start.rss_kib,
                    start.fds, end.fds, (e2e_now_ms() - t0) / 1e3);
}

/* ---------- cycles ---------- */

typedef struct cyc_env {
    int proc;
    nxc_connector_t *A, *B;
    e2e_peer_t peer;
} cyc_env_t;

static const size_t k_cycle_sizes[3] = { 4 * KiB + 1, 100, 64 * KiB };

/* One full cycle; variant: bit 0 = read, bit 1 = A is the active side. */
static void cycle(cyc_env_t *e, int i)
{
    nxc_op_kind_t kind = (i & 1) ? NXC_OP_READ : NXC_OP_WRITE;
    int a_active = (i & 2) != 0;
    uint32_t seed = 7000u + (uint32_t)i;
    size_t n = 1 + (size_t)(i / 4) % 3;
    e2e_bufs_t mine;
    e2e_bufs_alloc(&mine, seed, n, k_cycle_sizes);
    /* the receiving side starts with pattern ^ 0x5A, the sending side with the pattern */
    int mine_receives = a_active ? kind == NXC_OP_READ : kind == NXC_OP_WRITE;
    e2e_bufs_fill(&mine, mine_receives ? E2E_INIT_XOR : 0);
    nxc_op_t *op = NULL;
    if (!e->proc) {
        e2e_bufs_t theirs;
        e2e_bufs_alloc(&theirs, seed, n, k_cycle_sizes);
        e2e_bufs_fill(&theirs, mine_receives ? 0 : E2E_INIT_XOR);
        nxc_connector_t *P = a_active ? e->B : e->A, *Q = a_active ? e->A : e->B;
        e2e_bufs_t *pb = a_active ? &theirs : &mine, *qb = a_active ? &mine : &theirs;
        nxc_op_t *p = NULL, *q = NULL;
        if (kind == NXC_OP_READ)
            CHECK_RC(nxc_create_readable(P, pb->d, n, &p), NXC_OK, "(cycle %d)", i);
        else
            CHECK_RC(nxc_create_writable(P, pb->d, n, &p), NXC_OK, "(cycle %d)", i);
        nxc_metadata_t *md = e2e_parse(e2e_op_metadata(p));
        if (kind == NXC_OP_READ)
            CHECK_RC(nxc_begin_read(Q, md, qb->d, n, &q), NXC_OK, "(cycle %d)", i);
        else
            CHECK_RC(nxc_begin_write(Q, qb->d, n, md, &q), NXC_OK, "(cycle %d)", i);
        nxc_metadata_free(md);
        op = a_active ? q : p;
        CHECK_RC(nxc_op_wait(op, WAIT_MS), NXC_OK, "(cycle %d, ours)", i);
        nxc_op_t *other = a_active ? p : q;
        CHECK_RC(nxc_op_wait(other, WAIT_MS), NXC_OK, "(cycle %d, B's)", i);
        CHECK(e2e_bufs_verify(&theirs, 0, NULL, NULL) == 0, "cycle %d: B's data wrong", i);
        e2e_check_results(other, &theirs, "B's op");
        nxc_op_release(other);
        e2e_bufs_free(&theirs);
    } else if (a_active) {
        char *json;
        int id = e2e_peer_passive(&e->peer, e->A, kind, seed, n, k_cycle_sizes, &json);
        nxc_metadata_t *md = e2e_parse(json);
        free(json);
        if (kind == NXC_OP_READ)
            CHECK_RC(nxc_begin_read(e->A, md, mine.d, n, &op), NXC_OK, "(cycle %d)", i);
        else
            CHECK_RC(nxc_begin_write(e->A, mine.d, n, md, &op), NXC_OK, "(cycle %d)", i);
        nxc_metadata_free(md);
        CHECK_RC(nxc_op_wait(op, WAIT_MS), NXC_OK, "(cycle %d, ours)", i);
        e2e_peer_res_t r;
        e2e_peer_wait(&e->peer, e->A, id, WAIT_MS, &r);
        CHECK(r.rc == NXC_OK && r.verify == 0, "cycle %d: peer rc %d verify %d %s", i, r.rc,
              r.verify, r.detail);
        e2e_peer_release(&e->peer, e->A, id);
    } else {
        if (kind == NXC_OP_READ)
            CHECK_RC(nxc_create_readable(e->A, mine.d, n, &op), NXC_OK, "(cycle %d)", i);
        else
            CHECK_RC(nxc_create_writable(e->A, mine.d, n, &op), NXC_OK, "(cycle %d)", i);
        int id = e2e_peer_active(&e->peer, e->A, kind, seed, n, k_cycle_sizes,
                                 e2e_op_metadata(op));
        CHECK(id >= 0, "cycle %d: peer begin failed: %d", i, id);
        CHECK_RC(nxc_op_wait(op, WAIT_MS), NXC_OK, "(cycle %d, ours)", i);
        e2e_peer_res_t r;
        e2e_peer_wait(&e->peer, e->A, id, WAIT_MS, &r);
        CHECK(r.rc == NXC_OK && r.verify == 0, "cycle %d: peer rc %d verify %d %s", i, r.rc,
              r.verify, r.detail);
        e2e_peer_release(&e->peer, e->A, id);
    }
    CHECK(e2e_bufs_verify(&mine, 0, NULL, NULL) == 0, "cycle %d: our data wrong", i);
    e2e_check_results(op, &mine, "our op");
    nxc_op_release(op);
    e2e_bufs_free(&mine);
}

static int run_cycles(int proc, int count)
{
    cyc_env_t e;
    memset(&e, 0, sizeof e);
    e.proc = proc;
    e.A = e2e_connector("cycles-A");
    if (proc)
        e2e_peer_start(&e.peer);
    else
        e.B = connector_with_thread("cycles-B");
    double t0 = e2e_now_ms();
    e2e_step("warm-up cycles");
    for (int i = 0; i < 50; i++) cycle(&e, i);
    figures_t start = measure("after 50 warm-up cycles:");
    e2e_step("cycles");
    double c0 = e2e_now_ms();
    for (int i = 0; i < count; i++) cycle(&e, 50 + i);
    double secs = (e2e_now_ms() - c0) / 1e3;
    figures_t end = measure("end:");
    check_growth(start, end, 16);
    check_one_peer(e.A, "A");
    if (!proc) check_one_peer(e.B, "B");
    if (proc) {
        e2e_peer_stop(&e.peer);
        e2e_peer_close(&e.peer);
    }
    nxc_connector_destroy(e.B);
    nxc_connector_destroy(e.A);
    return e2e_pass("%d full cycles with one %s peer (%.0f cycles/s), RSS %+ld KiB, fds %d -> "
                    "%d, %.1f s",
                    count, proc ? "process" : "in-process", count / secs,
                    end.rss_kib - start.rss_kib, start.fds, end.fds,
                    (e2e_now_ms() - t0) / 1e3);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "inflight")) {
        int per = argc > 2 ? atoi(argv[2]) : 2500;
        e2e_init("e2e_load_inflight", 290);
        return run_inflight(per > 0 ? per : 1);
    }
    if (argc >= 3 && !strcmp(argv[1], "cycles") &&
        (!strcmp(argv[2], "local") || !strcmp(argv[2], "proc"))) {
        int count = argc > 3 ? atoi(argv[3]) : 1000;
        char title[64];
        snprintf(title, sizeof title, "e2e_load_cycles_%s", argv[2]);
        e2e_init(title, 290);
        return run_cycles(!strcmp(argv[2], "proc"), count > 0 ? count : 1);
    }
    fprintf(stderr, "usage: %s inflight [ops_per_thread] | cycles local|proc [cycles]\n",
            argv[0]);
    return 64;
}
