/*
 * Fan-in and fan-out at scale, with real peer processes (nxc_test_peer).
 *
 *   e2e_fan in  [PEERS [OPS]]   one passive worker (this process), PEERS
 *                               active peers each writing OPS ops into it
 *   e2e_fan out [PEERS [OPS]]   one active worker (this process) writing
 *                               OPS ops into each of PEERS passive peers
 *
 * Defaults: 64 peers x 16 ops = 1,024 ops open at once: fan-in exposes all
 * 1,024 writables before any peer begins (the peers then begin together);
 * fan-out begins all 1,024 writes back to back before driving anything.
 * Each scenario runs a pair round (1 peer) first, then the full round twice.
 *
 * Asserted: every op completes on both sides; every byte is verified (here
 * for fan-in, by the peer for fan-out); this connector knows each peer once
 * and holds at most one endpoint per peer; open fds do not grow from the
 * first full round to the second.
 * Printed, not asserted (no timing assertions in the suite): per-op latency
 * from begin to completion, each peer's p99 against the median of the
 * peers' p99s (starvation would show as a peer far above it), VmRSS and
 * fds against the pair round.
 */
#include "e2e_common.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "e2e_private.h" /* the peer list, to count endpoints */

#define OP_SIZE (16 * KiB)
#define DRAIN_MS 120000

typedef struct fan {
    nxc_connector_t *c;
    e2e_peer_t      *peers;
    int              npeers, ops;
    bool             in;      /* fan-in: we are passive */
} fan_t;

/* One op of the round: ours, the peer's id, its buffers and timings. */
typedef struct fop {
    nxc_op_t      *op;
    nxc_metadata_t *md;
    e2e_bufs_t     b;
    int            peer_id;
    double         t_begin, t_done;
} fop_t;

/* Each peer known once, at most one endpoint each. */
static void check_endpoints(nxc_connector_t *c, int talked_to)
{
    unsigned peers, eps;
    e2e_count_peers(c, &peers, &eps);
    printf("  connector knows %u peer(s), %u endpoint(s), talked to %d\n", peers, eps,
           talked_to);
    CHECK(peers == (unsigned)talked_to && eps <= peers,
          "%u peers with %u endpoints after talking to %d peers", peers, eps, talked_to);
}

static uint32_t seed_of(int peer, int j)
{
    return (uint32_t)(peer * 1000 + j + 1);
}

/* Fan-in: every writable is exposed first; then every peer is told to
 * begin writing all of its ops (commands pipelined, replies read after), so
 * the peers begin concurrently while this process drives its connector. */
static void begin_in(fan_t *f, fop_t *ops, int npeers)
{
    size_t size = OP_SIZE;
    for (int i = 0; i < npeers * f->ops; i++) {
        e2e_bufs_alloc(&ops[i].b, seed_of(i / f->ops, i % f->ops), 1, &size);
        e2e_bufs_fill(&ops[i].b, E2E_INIT_XOR);
        CHECK_RC(nxc_create_writable(f->c, ops[i].b.d, 1, &ops[i].op), NXC_OK);
    }
    for (int j = 0; j < f->ops; j++)
        for (int p = 0; p < npeers; p++) {
            fop_t *o = &ops[p * f->ops + j];
            e2e_peer_send(&f->peers[p], "ACTIVE W %u 1 %zu", seed_of(p, j), size);
            e2e_peer_send(&f->peers[p], "%s", e2e_op_metadata(o->op));
            o->t_begin = e2e_now_ms();
        }
    for (int j = 0; j < f->ops; j++)
        for (int p = 0; p < npeers; p++) {
            char *l = e2e_peer_readline(&f->peers[p], f->c, 60000);
            CHECK(sscanf(l, "OK %d", &ops[p * f->ops + j].peer_id) == 1,
                  "peer %d could not begin op %d: %.200s", p, j, l);
        }
}

/* Fan-out: every peer exposes its writables (commands pipelined); then
 * this process begins all the writes back to back. */
static void begin_out(fan_t *f, fop_t *ops, int npeers)
{
    size_t size = OP_SIZE;
    for (int j = 0; j < f->ops; j++)
        for (int p = 0; p < npeers; p++)
            e2e_peer_send(&f->peers[p], "PASSIVE W %u 1 %zu", seed_of(p, j), size);
    for (int j = 0; j < f->ops; j++)
        for (int p = 0; p < npeers; p++) {
            fop_t *o = &ops[p * f->ops + j];
            char *l = e2e_peer_readline(&f->peers[p], NULL, 60000);
            int off = 0;
            CHECK(sscanf(l, "OK %d %n", &o->peer_id, &off) == 1 && off > 0,
                  "peer %d could not expose op %d: %.200s", p, j, l);
            o->md = e2e_parse(l + off);
            e2e_bufs_alloc(&o->b, seed_of(p, j), 1, &size);
            e2e_bufs_fill(&o->b, 0);
        }
    for (int j = 0; j < f->ops; j++)
        for (int p = 0; p < npeers; p++) {
            fop_t *o = &ops[p * f->ops + j];
            o->t_begin = e2e_now_ms();
            CHECK_RC(nxc_begin_write(f->c, o->b.d, 1, o->md, &o->op), NXC_OK);
        }
}

static void begin_round(fan_t *f, fop_t *ops, int npeers)
{
    if (f->in)
        begin_in(f, ops, npeers);
    else
        begin_out(f, ops, npeers);
}

/* Drives our connector until every op is final, noting when each got there. */
static void drain(fan_t *f, fop_t *ops, int n)
{
    double deadline = e2e_now_ms() + DRAIN_MS;
    int open = n;
    while (open) {
        nxc_connector_progress(f->c);
        for (int i = 0; i < n; i++) {
            if (ops[i].t_done || !e2e_is_final(nxc_op_status(ops[i].op)))
                continue;
            ops[i].t_done = e2e_now_ms();
            open--;
        }
        CHECK(e2e_now_ms() < deadline, "%d of %d ops still open after %d ms", open, n, DRAIN_MS);
    }
}

static void check_and_release(fan_t *f, fop_t *ops, int npeers)
{
    for (int p = 0; p < npeers; p++)
        for (int j = 0; j < f->ops; j++) {
            fop_t *o = &ops[p * f->ops + j];
            CHECK_RC(nxc_op_wait(o->op, 0), NXC_OK, "peer %d op %d (ours)", p, j);
            e2e_peer_res_t r;
            e2e_peer_wait(&f->peers[p], f->c, o->peer_id, 30000, &r);
            CHECK(r.rc == NXC_OK && r.verify == 0, "peer %d op %d: rc %d verify %d (%s)", p, j,
                  r.rc, r.verify, r.detail);
            size_t bad_i, bad_off;
            if (f->in)
                CHECK(e2e_bufs_verify(&o->b, 0, &bad_i, &bad_off) == 0,
                      "peer %d op %d: byte %zu differs", p, j, bad_off);
            e2e_peer_release(&f->peers[p], f->c, o->peer_id);
            nxc_op_release(o->op);
            nxc_metadata_free(o->md);
            e2e_bufs_free(&o->b);
        }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Latency percentiles per peer, printed against the median of the peers. */
static void report_latency(const fan_t *f, const fop_t *ops, int npeers)
{
    double *lat = malloc(sizeof *lat * (size_t)f->ops);
    double *p99 = malloc(sizeof *p99 * (size_t)npeers);
    CHECK(lat && p99, "oom");
    for (int p = 0; p < npeers; p++) {
        for (int j = 0; j < f->ops; j++)
            lat[j] = ops[p * f->ops + j].t_done - ops[p * f->ops + j].t_begin;
        qsort(lat, (size_t)f->ops, sizeof *lat, cmp_double);
        p99[p] = lat[(size_t)(0.99 * (f->ops - 1) + 0.5)];
    }
    qsort(p99, (size_t)npeers, sizeof *p99, cmp_double);
    double med = p99[(npeers - 1) / 2];
    printf("  per-peer p99 latency: min %.2f ms, median %.2f ms, max %.2f ms "
           "(max/median %.2f)\n", p99[0], med, p99[npeers - 1], med > 0 ? p99[npeers - 1] / med : 0);
    free(lat);
    free(p99);
}

static void round_with(fan_t *f, int npeers, int *talked, const char *label)
{
    int n = npeers * f->ops;
    fop_t *ops = calloc((size_t)n, sizeof *ops);
    CHECK(ops != NULL, "oom");
    e2e_step(label);
    double t0 = e2e_now_ms();
    begin_round(f, ops, npeers);
    double t1 = e2e_now_ms();
    drain(f, ops, n);
    double t2 = e2e_now_ms();
    printf("%s: %d peers x %d ops = %d in flight, %s: begun in %.0f ms, drained in %.0f ms "
           "(%.0f ops/s)\n", label, npeers, f->ops, n, f->in ? "fan-in" : "fan-out", t1 - t0,
           t2 - t1, n / ((t2 - t1) / 1e3));
    report_latency(f, ops, npeers);
    check_and_release(f, ops, npeers);
    if (npeers > *talked)
        *talked = npeers;
    check_endpoints(f->c, *talked);
    free(ops);
}

int main(int argc, char **argv)
{
    CHECK(argc >= 2 && (strcmp(argv[1], "in") == 0 || strcmp(argv[1], "out") == 0),
          "usage: e2e_fan in|out [PEERS [OPS]]");
    fan_t f = { .in = strcmp(argv[1], "in") == 0,
                .npeers = argc > 2 ? atoi(argv[2]) : 64,
                .ops = argc > 3 ? atoi(argv[3]) : 16 };
    CHECK(f.npeers >= 1 && f.ops >= 1, "bad counts");
    e2e_init(f.in ? "e2e_fan in" : "e2e_fan out", 600);
    f.c = e2e_connector(f.in ? "fan-in" : "fan-out");
    f.peers = calloc((size_t)f.npeers, sizeof *f.peers);
    CHECK(f.peers != NULL, "oom");
    e2e_step("starting peers");
    for (int p = 0; p < f.npeers; p++)
        e2e_peer_start(&f.peers[p]);
    int talked = 0;
    round_with(&f, 1, &talked, "pair");
    long rss_pair = e2e_rss_kib();
    int fds_pair = e2e_open_fds();
    round_with(&f, f.npeers, &talked, "full");
    long rss_full = e2e_rss_kib();
    int fds_full = e2e_open_fds();
    round_with(&f, f.npeers, &talked, "again");
    long rss_again = e2e_rss_kib();
    int fds_again = e2e_open_fds();
    printf("  VmRSS KiB: pair %ld, full %ld, again %ld; fds: pair %d, full %d, again %d "
           "(%d of them the peers' channels)\n", rss_pair, rss_full, rss_again, fds_pair,
           fds_full, fds_again, f.npeers);
    CHECK(fds_again <= fds_full, "open fds grew from %d to %d between two full rounds",
          fds_full, fds_again);
    /* ours first: a peer closing its endpoint to a live connector that
     * nobody drives waits for it (over TCP ~2 s per peer) */
    nxc_connector_destroy(f.c);
    for (int p = 0; p < f.npeers; p++) {
        e2e_peer_stop(&f.peers[p]);
        e2e_peer_close(&f.peers[p]);
    }
    free(f.peers);
    return e2e_pass("%s: %d peers x %d ops in flight, all complete and verified, one endpoint "
                    "per peer at most, fds %d -> %d", f.in ? "fan-in" : "fan-out", f.npeers,
                    f.ops, fds_full, fds_again);
}
