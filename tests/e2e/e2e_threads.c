/*
 * e2e_threads — one connector used from several threads at once.
 *
 * Phase 1 (passive): 4 threads each create 25 passive ops (writable and
 *   readable alternating) on the shared connector and then wait on them
 *   (nxc_op_wait, concurrently). The main thread hands the metadata to an
 *   nxc_test_peer process, which completes all 100 in random order, while
 *   the main thread itself drives the same connector (progress + fd). Each
 *   op must complete with its data; then every thread releases the ops of
 *   ANOTHER thread (release on a different thread than creation).
 * Phase 2 (active): the peer exposes 4 x 10 ops; the parsed metadata is
 *   shared between threads (immutable); 4 threads begin reads and writes
 *   concurrently, wait and check their data; the peer checks its side.
 */
#include "e2e_common.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NT 4
#define PER1 25
#define PER2 10

static nxc_connector_t *g_A;
static pthread_barrier_t g_bar;

typedef struct t1 {
    int t;
    nxc_op_t *ops[PER1];
    e2e_bufs_t bufs[PER1];
    char *json[PER1];
    int completed;
} t1_t;
static t1_t g_t1[NT];

static size_t size_of(int t, int k)
{
    return 1 + (size_t)(t * PER1 + k) * 331; /* 1 B .. ~33 KiB, distinct */
}

static void *phase1_thread(void *arg)
{
    t1_t *me = arg;
    for (int k = 0; k < PER1; k++) {
        size_t sz = size_of(me->t, k);
        nxc_op_kind_t kind = (k % 2) ? NXC_OP_READ : NXC_OP_WRITE;
        e2e_bufs_alloc(&me->bufs[k], (uint32_t)(me->t * 100 + k), 1, &sz);
        e2e_bufs_fill(&me->bufs[k], kind == NXC_OP_READ ? 0 : E2E_INIT_XOR);
        if (kind == NXC_OP_READ)
            CHECK_RC(nxc_create_readable(g_A, me->bufs[k].d, 1, &me->ops[k]), NXC_OK);
        else
            CHECK_RC(nxc_create_writable(g_A, me->bufs[k].d, 1, &me->ops[k]), NXC_OK);
        me->json[k] = strdup(e2e_op_metadata(me->ops[k]));
        CHECK(me->json[k], "oom");
    }
    pthread_barrier_wait(&g_bar); /* 1: all created */
    /* wait in reverse order of creation: completions arrive in random order */
    for (int k = PER1 - 1; k >= 0; k--) {
        int rc = nxc_op_wait(me->ops[k], 60000);
        CHECK_RC(rc, NXC_OK, "(thread %d op %d)", me->t, k);
        CHECK(nxc_op_status(me->ops[k]) == NXC_OP_COMPLETE, "thread %d op %d status", me->t, k);
        size_t bi, bo;
        CHECK(e2e_bufs_verify(&me->bufs[k], 0, &bi, &bo) == 0, "thread %d op %d data at %zu",
              me->t, k, bo);
        e2e_check_results(me->ops[k], &me->bufs[k], "threaded passive op");
        me->completed++;
    }
    pthread_barrier_wait(&g_bar); /* 2: all completed */
    /* release the ops created by the next thread */
    t1_t *other = &g_t1[(me->t + 1) % NT];
    for (int k = 0; k < PER1; k++) {
        nxc_op_release(other->ops[k]);
        other->ops[k] = NULL;
    }
    pthread_barrier_wait(&g_bar); /* 3: all released */
    for (int k = 0; k < PER1; k++) {
        e2e_bufs_free(&me->bufs[k]);
        free(me->json[k]);
    }
    return NULL;
}

typedef struct t2 {
    int t;
    const nxc_metadata_t *md[PER2];
    nxc_op_kind_t kind[PER2];
    uint32_t seed[PER2];
    size_t size[PER2];
    int done;
} t2_t;
static t2_t g_t2[NT];

static void *phase2_thread(void *arg)
{
    t2_t *me = arg;
    pthread_barrier_wait(&g_bar);
    nxc_op_t *ops[PER2];
    e2e_bufs_t bufs[PER2];
    for (int k = 0; k < PER2; k++) {
        e2e_bufs_alloc(&bufs[k], me->seed[k], 1, &me->size[k]);
        e2e_bufs_fill(&bufs[k], me->kind[k] == NXC_OP_READ ? E2E_INIT_XOR : 0);
        if (me->kind[k] == NXC_OP_READ)
            CHECK_RC(nxc_begin_read(g_A, me->md[k], bufs[k].d, 1, &ops[k]), NXC_OK);
        else
            CHECK_RC(nxc_begin_write(g_A, bufs[k].d, 1, me->md[k], &ops[k]), NXC_OK);
    }
    for (int k = 0; k < PER2; k++) {
        CHECK_RC(nxc_op_wait(ops[k], 60000), NXC_OK, "(phase 2 thread %d op %d)", me->t, k);
        size_t bi, bo;
        CHECK(e2e_bufs_verify(&bufs[k], 0, &bi, &bo) == 0, "phase 2 thread %d op %d data at %zu",
              me->t, k, bo);
        e2e_check_results(ops[k], &bufs[k], "threaded active op");
        nxc_op_release(ops[k]);
        e2e_bufs_free(&bufs[k]);
        me->done++;
    }
    return NULL;
}

int main(void)
{
    e2e_init("e2e_threads", 170);
    g_A = e2e_connector("e2e-threads");
    e2e_peer_t peer;
    e2e_peer_start(&peer); /* from the main thread: PDEATHSIG follows this thread */

    /* ---- phase 1 ---- */
    pthread_barrier_init(&g_bar, NULL, NT + 1);
    pthread_t th[NT];
    for (int t = 0; t < NT; t++) {
        g_t1[t].t = t;
        CHECK(pthread_create(&th[t], NULL, phase1_thread, &g_t1[t]) == 0, "pthread_create");
    }
    pthread_barrier_wait(&g_bar); /* 1 */
    int order[NT * PER1], ids[NT * PER1];
    for (int i = 0; i < NT * PER1; i++) order[i] = i;
    for (int i = NT * PER1 - 1; i > 0; i--) {
        int j = (int)(e2e_rand() % (uint32_t)(i + 1)), x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    for (int i = 0; i < NT * PER1; i++) {
        int t = order[i] / PER1, k = order[i] % PER1;
        size_t sz = size_of(t, k);
        nxc_op_kind_t kind = (k % 2) ? NXC_OP_READ : NXC_OP_WRITE;
        ids[i] = e2e_peer_active(&peer, g_A, kind, (uint32_t)(t * 100 + k), 1, &sz,
                                 g_t1[t].json[k]);
        CHECK(ids[i] >= 0, "peer begin (thread %d op %d) failed: %d", t, k, ids[i]);
    }
    for (int i = 0; i < NT * PER1; i++) {
        e2e_peer_res_t r;
        e2e_peer_wait(&peer, g_A, ids[i], 60000, &r);
        CHECK(r.rc == NXC_OK && r.verify == 0, "peer op for %d: rc %d verify %d %s", order[i],
              r.rc, r.verify, r.detail);
        e2e_peer_release(&peer, g_A, ids[i]);
    }
    pthread_barrier_wait(&g_bar); /* 2 */
    pthread_barrier_wait(&g_bar); /* 3 */
    for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < NT; t++)
        CHECK(g_t1[t].completed == PER1, "thread %d completed %d", t, g_t1[t].completed);

    /* ---- phase 2 ---- */
    nxc_metadata_t *mds[NT * PER2];
    int pids[NT * PER2];
    for (int i = 0; i < NT * PER2; i++) {
        int t = i % NT, k = i / NT;
        t2_t *x = &g_t2[t];
        x->t = t;
        x->kind[k] = (i % 3) ? NXC_OP_WRITE : NXC_OP_READ;
        x->seed[k] = 5000u + (uint32_t)i;
        x->size[k] = (i % 7 == 0) ? 1 * MiB + 3 : 4 * KiB + (size_t)i;
        char *json;
        pids[i] = e2e_peer_passive(&peer, g_A, x->kind[k], x->seed[k], 1, &x->size[k], &json);
        mds[i] = e2e_parse(json);
        free(json);
        x->md[k] = mds[i];
    }
    for (int t = 0; t < NT; t++)
        CHECK(pthread_create(&th[t], NULL, phase2_thread, &g_t2[t]) == 0, "pthread_create");
    pthread_barrier_wait(&g_bar); /* start together */
    for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < NT; t++) CHECK(g_t2[t].done == PER2, "thread %d done %d", t, g_t2[t].done);
    for (int i = 0; i < NT * PER2; i++) {
        e2e_peer_res_t r;
        e2e_peer_wait(&peer, g_A, pids[i], 30000, &r);
        CHECK(r.rc == NXC_OK && r.status == NXC_OP_COMPLETE && r.verify == 0,
              "peer passive op %d: rc %d status %d verify %d %s", i, r.rc, r.status, r.verify,
              r.detail);
        e2e_peer_release(&peer, g_A, pids[i]);
        nxc_metadata_free(mds[i]);
    }
    pthread_barrier_destroy(&g_bar);

    e2e_peer_stop(&peer);
    e2e_peer_close(&peer);
    nxc_connector_destroy(g_A);
    return e2e_pass("%d threads: %d passive ops waited concurrently and released cross-thread, "
                    "%d active ops begun concurrently",
                    NT, NT * PER1, NT * PER2);
}
