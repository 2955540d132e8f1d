/* nxc bench: configuration and the pieces shared by its two roles. */
#ifndef NXC_BENCH_H
#define NXC_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "nxc.h"

#define BENCH_MAX_LIST   32
#define BENCH_MAX_SIZE   GIB        /* bytes per operation */
#define BENCH_MAX_DESCS  65536ull   /* descriptors per operation */
#define BENCH_BATCH_MAX  64         /* passive ops pre-created per batch */
#define BENCH_NAME_MAX   64         /* a namespace or device name, with NUL */

typedef struct bench_cfg {
    uint64_t    sizes[BENCH_MAX_LIST];
    size_t      nsizes;
    uint64_t    descs[BENCH_MAX_LIST];
    size_t      ndescs;
    bool        op_read, op_write;
    uint64_t    iters;     /* 0: automatic, from the size */
    uint64_t    warmup;
    double      duration;  /* seconds per timed phase; 0: by --iters */
    double      timeout;   /* seconds any single step may wait */
    const char *tls;       /* --tls, NULL: inherit UCX_TLS */
    const char *mem;       /* "malloc", "thp" or "ucx" (see bench_buf_alloc) */
    bool        json, quick;
    /* --passive-idle MS: the active side waits MS ms before each timed
     * begin, so the passive worker has gone to sleep in nxc_op_wait;
     * negative: not set (back to back). */
    long        passive_idle_ms;
    long        passive_spin_us;   /* --passive-spin-us; negative: default */
    bool        passive_thread;    /* --passive-thread */
    bool        direct_local;      /* --direct-local: the passive connector's direct_local */
    unsigned    chan_spin_us;      /* --chan-spin-us: both workers' channel polls first */
    /* --active-busy: the active side busy-waits through each idle gap
     * instead of sleeping, so that only the passive worker is idle. */
    bool        active_busy;
    /* --netns P,A: the passive and the active worker's network namespaces
     * (names under /run/netns); --net-devices P,A: their UCX_NET_DEVICES.
     * Empty strings: not set. */
    char        netns[2][BENCH_NAME_MAX];
    char        netdev[2][BENCH_NAME_MAX];
} bench_cfg_t;

/* Parses bench options (argv[0] is skipped). 0, or an exit code. */
int bench_parse(int argc, char **argv, bench_cfg_t *cfg);
/* Timed iterations for one size (--iters, or automatic). */
uint64_t bench_iters(const bench_cfg_t *cfg, uint64_t size);

/* Buffers of one side: one contiguous region split into descriptors. */
typedef struct bench_buf {
    nxc_connector_t  *owner;  /* set when the memory came from nxc_mem_alloc */
    uint64_t          mapped; /* bytes mmapped ("thp"), 0 otherwise */
    uint8_t          *base;
    uint64_t          size;
    nxc_descriptor_t *descs;
    size_t            n;
} bench_buf_t;

/* mem: "malloc" (4 KiB pages), "thp" (2 MiB-aligned, madvise(MADV_HUGEPAGE))
 * or "ucx" for the connector's allocator (nxc_mem_alloc). */
int  bench_buf_alloc(bench_buf_t *b, uint64_t size, size_t ndescs, const char *mem,
                     nxc_connector_t *c);
void bench_buf_free(bench_buf_t *b);
void pattern_fill(uint8_t *p, uint64_t n, uint64_t seed);
/* Offset of the first byte that differs from the pattern, or -1. */
int64_t pattern_check(const uint8_t *p, uint64_t n, uint64_t seed);
uint8_t pattern_byte(uint64_t offset, uint64_t seed);

/* Creates the role's connector, printing the failure; the passive one
 * takes --passive-spin-us and --passive-thread. */
int bench_connector(const bench_cfg_t *cfg, const char *role, nxc_connector_t **out);

/* The two roles, each on its end of the channel; return an exit code. */
int bench_active(const bench_cfg_t *cfg, int fd);
int bench_passive(const bench_cfg_t *cfg, int fd);

/* One line of results. */
typedef struct bench_result {
    nxc_op_kind_t kind;
    uint64_t      size, desc_size, descs, iters, warmup, cycle_iters;
    double        gbps;
    double        lat_p50_us, lat_p90_us, lat_p99_us;
    double        plat_p50_us, plat_p90_us, plat_p99_us;
    double        cycle_ops_per_s;
    /* The passive worker's sleeps during the timed phase: all, and those
     * ended by its safety bound rather than by the message
     * (nxc_connector_wakeups). */
    uint64_t      pasv_sleeps, pasv_backstop_fired, pasv_backstop_served;
} bench_result_t;

void report_header(const bench_cfg_t *cfg);
void report_skip(const bench_cfg_t *cfg, nxc_op_kind_t kind, uint64_t size,
                 uint64_t descs);
/* Prints one result; fails (message printed) when stdout is gone. */
int  report_result(const bench_cfg_t *cfg, const bench_result_t *r);
/* The UCX_TLS the workers run with, or "default". */
const char *bench_tls(void);

/* Growable array of nanosecond samples, with nearest-rank percentiles. */
typedef struct samples {
    uint64_t *v;
    size_t    n, cap;
} samples_t;

int    samples_push(samples_t *s, uint64_t x);
void   samples_free(samples_t *s);
double samples_percentile_us(samples_t *s, double p); /* sorts */

#endif /* NXC_BENCH_H */
