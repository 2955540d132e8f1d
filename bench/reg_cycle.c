/*
 * nxc_reg_cycle - what registration costs a full cycle, in one process.
 *
 * Two connectors in one thread (so no socket and no second process adds
 * noise): a passive one exposing a 4 KiB buffer and an active one. For each
 * way of registering the passive memory it times
 *   expose   create_readable + metadata + release, no transfer: the passive
 *            side's own cost per op;
 *   parse    (once, first) nxc_metadata_parse + free of one op's metadata
 *   cycle    create the passive op, serialize its metadata, parse it, begin
 *            the write (or read), poll both ops (nxc_op_status, which drives
 *            their connectors) until both are complete, release both.
 * Registration modes:
 *   per-op   reg_cache = 0: ucp_mem_map + ucp_rkey_pack per op (as before
 *            the cache existed)
 *   cache    the default registration cache
 *   prereg   reg_cache = 0 and nxc_mem_register of the buffer once
 * Each figure is ops/s by the wall clock and, in brackets, by this process's
 * CPU time (one thread does everything, so on a loaded machine the CPU
 * figure is the one that still compares modes fairly).
 * With --buffers N each side's op has N descriptors, each a buffer of its
 * own (malloc'd separately, so N registrations: e.g. per-layer KV tensors).
 * With --blocks N each side's op has N descriptors of --size bytes, back
 * to back in one buffer (one registration: the blocks of a KV region).
 * Public API only.
 * Usage: nxc_reg_cycle [--size BYTES] [--iters N] [--buffers N | --blocks N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nixl_connect.h"

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(int rc, const char *what)
{
    fprintf(stderr, "nxc_reg_cycle: %s: %s (%s)\n", what, nxc_strerror(rc), nxc_last_error());
    exit(1);
}

static nxc_connector_t *connector(unsigned reg_cache)
{
    nxc_connector_config_t cfg = { .field_mask = NXC_CONFIG_REG_CACHE, .reg_cache = reg_cache };
    nxc_connector_t *c;
    int rc = nxc_connector_create(&cfg, &c);
    if (rc != NXC_OK)
        die(rc, "nxc_connector_create");
    return c;
}

static void expose_once(nxc_connector_t *P, const nxc_descriptor_t *pd, size_t n)
{
    nxc_op_t *op;
    const char *json;
    int rc = nxc_create_readable(P, pd, n, &op);
    if (rc != NXC_OK || (rc = nxc_op_metadata(op, &json, NULL)) != NXC_OK)
        die(rc, "create_readable");
    nxc_op_release(op);
}

static int final(nxc_op_status_t s)
{
    return s >= NXC_OP_COMPLETE;
}

static void cycle_once(nxc_connector_t *P, nxc_connector_t *A, nxc_op_kind_t kind,
                       const nxc_descriptor_t *pd, const nxc_descriptor_t *ad, size_t n)
{
    nxc_op_t *passive, *active;
    nxc_metadata_t *md;
    const char *json;
    size_t len;
    int rc = kind == NXC_OP_READ ? nxc_create_readable(P, pd, n, &passive)
                                 : nxc_create_writable(P, pd, n, &passive);
    if (rc != NXC_OK || (rc = nxc_op_metadata(passive, &json, &len)) != NXC_OK ||
        (rc = nxc_metadata_parse(json, len, &md)) != NXC_OK)
        die(rc, "passive op");
    rc = kind == NXC_OP_READ ? nxc_begin_read(A, md, ad, n, &active)
                             : nxc_begin_write(A, ad, n, md, &active);
    if (rc != NXC_OK)
        die(rc, "begin");
    /* nxc_op_status() drives the op's connector without arming its fd;
     * nxc_connector_progress() would arm P on every pass, and an armed
     * shared-memory worker is signalled through a socket per message. */
    for (;;) {
        int a = final(nxc_op_status(active)), p = final(nxc_op_status(passive));
        if (a && p)
            break;
    }
    if ((rc = nxc_op_wait(active, 0)) != NXC_OK || (rc = nxc_op_wait(passive, 0)) != NXC_OK)
        die(rc, "transfer");
    nxc_op_release(active);
    nxc_op_release(passive);
    nxc_metadata_free(md);
}

/* nxc_metadata_parse + free of one op's metadata: what the active side
 * pays before it can begin. */
static void print_parse_rate(const nxc_descriptor_t *pd, size_t n, long iters)
{
    nxc_connector_t *P = connector(NXC_REG_CACHE_DEFAULT);
    nxc_op_t *op;
    nxc_metadata_t *md;
    const char *json;
    size_t len;
    int rc = nxc_create_readable(P, pd, n, &op);
    if (rc != NXC_OK || (rc = nxc_op_metadata(op, &json, &len)) != NXC_OK)
        die(rc, "create_readable");
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (long i = 0; i < iters; i++) {
        if ((rc = nxc_metadata_parse(json, len, &md)) != NXC_OK)
            die(rc, "nxc_metadata_parse");
        nxc_metadata_free(md);
    }
    printf("parse %zu-byte metadata: %.0f (%.0f) /s\n", len,
           (double)iters / (clock_s(CLOCK_MONOTONIC) - t0),
           (double)iters / (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0));
    nxc_op_release(op);
    nxc_connector_destroy(P);
}

int main(int argc, char **argv)
{
    size_t size = 4096, n = 1;
    long iters = 20000;
    int blocks = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--size") == 0)
            size = strtoul(argv[i + 1], NULL, 0);
        else if (strcmp(argv[i], "--iters") == 0)
            iters = strtol(argv[i + 1], NULL, 0);
        else if (strcmp(argv[i], "--buffers") == 0 || strcmp(argv[i], "--blocks") == 0) {
            n = strtoul(argv[i + 1], NULL, 0);
            blocks = strcmp(argv[i], "--blocks") == 0;
        }
    }
    nxc_descriptor_t *pd = calloc(n, sizeof *pd), *ad = calloc(n, sizeof *ad);
    if (pd == NULL || ad == NULL || n == 0 || iters <= 0)
        return 1;
    char *pblock = blocks ? malloc(n * size) : NULL, *ablock = blocks ? malloc(n * size) : NULL;
    if (blocks && (pblock == NULL || ablock == NULL))
        return 1;
    for (size_t i = 0; i < n; i++) {
        pd[i] = (nxc_descriptor_t){ blocks ? pblock + i * size : malloc(size), size,
                                    { NXC_DEVICE_HOST, 0 } };
        ad[i] = (nxc_descriptor_t){ blocks ? ablock + i * size : malloc(size), size,
                                    { NXC_DEVICE_HOST, 0 } };
        if (pd[i].ptr == NULL || ad[i].ptr == NULL)
            return 1;
        memset(pd[i].ptr, 1, size);
        memset(ad[i].ptr, 2, size);
    }
    static const char *const modes[] = { "per-op", "cache", "prereg" };
    printf("# %zu %s of %zu bytes, %ld iterations; ops/s by wall clock (by CPU time)\n", n,
           blocks ? "blocks of one buffer" : "buffer(s)", size, iters);
    print_parse_rate(pd, n, iters);
    printf("%-8s %18s %18s %18s\n", "mode", "expose", "cycle write", "cycle read");
    for (int m = 0; m < 3; m++) {
        nxc_connector_t *P = connector(m == 1 ? NXC_REG_CACHE_DEFAULT : 0), *A = connector(0);
        nxc_registration_t **regs = calloc(n, sizeof *regs);
        int rc;
        if (regs == NULL)
            return 1;
        for (size_t i = 0; m == 2 && i < n; i++)
            if ((rc = nxc_mem_register(P, &pd[i], &regs[i])) != NXC_OK)
                die(rc, "nxc_mem_register");
        for (int w = 0; w < 100; w++)
            cycle_once(P, A, NXC_OP_WRITE, pd, ad, n);
        double rate[3], cpu_rate[3];
        for (int phase = 0; phase < 3; phase++) {
            double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
            for (long i = 0; i < iters; i++) {
                if (phase == 0)
                    expose_once(P, pd, n);
                else
                    cycle_once(P, A, phase == 1 ? NXC_OP_WRITE : NXC_OP_READ, pd, ad, n);
            }
            rate[phase] = (double)iters / (clock_s(CLOCK_MONOTONIC) - t0);
            cpu_rate[phase] = (double)iters / (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0);
        }
        printf("%-8s", modes[m]);
        for (int phase = 0; phase < 3; phase++)
            printf(" %8.0f (%7.0f)", rate[phase], cpu_rate[phase]);
        printf("\n");
        for (size_t i = 0; i < n; i++)
            nxc_mem_deregister(regs[i]);
        free(regs);
        nxc_connector_destroy(A);
        nxc_connector_destroy(P);
    }
    for (size_t i = 0; i < n && !blocks; i++) {
        free(pd[i].ptr);
        free(ad[i].ptr);
    }
    free(pblock);
    free(ablock);
    free(pd);
    free(ad);
    return 0;
}
