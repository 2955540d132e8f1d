/* nxc kvbench: the disaggregated-serving workload as one command.
 *
 * Prefill and decode workers run as processes forked from this one (before
 * any connector or NATS connection exists). Every request moves one KV
 * cache (layers x blocks descriptors of block_size bytes) between a prefill
 * and a decode worker; the passive side of the pair creates the op and hands
 * its metadata to the active side over NATS (nxc_nats_send, acknowledged),
 * keeping --inflight requests open per pair. WRITE is Dynamo's direction
 * (decode exposes writables, prefill writes); READ the reverse (prefill
 * exposes readables, decode reads). Workers report to this process over a
 * pipe; it prints goodput, latency percentiles, requests/s and CPU time. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "nxc.h"

#ifdef NXC_HAVE_NATS
#include <nixl_connect_nats.h>
#endif

void kvbench_help(void)
{
    fputs(
"Usage: nxc kvbench [options]\n"
"\n"
"The disaggregated-serving workload: prefill and decode workers (processes on\n"
"this host) move one KV cache per request, metadata over NATS. Reports\n"
"goodput, per-request latency (p50/p99/max, measured by the active side from\n"
"begin to completion), requests/s and CPU time per worker.\n"
"Names shared with nixlbench mean the same thing there.\n"
"\n"
"Options:\n"
"  --op_type OP         WRITE: decode exposes writables, prefill writes into\n"
"                       them (Dynamo's direction); READ: prefill exposes\n"
"                       readables, decode reads them [default: WRITE]\n"
"  --scheme NAME        pairwise (prefill i with decode i), manytoone (every\n"
"                       prefill with decode 0), onetomany (prefill 0 with\n"
"                       every decode) [default: from the worker counts]\n"
"  --num_prefill N      prefill workers [default: 1]\n"
"  --num_decode N       decode workers [default: 1]\n"
"  --num_layers L       layers per KV cache [default: 32]\n"
"  --num_blocks B       blocks per layer and request [default: 128, i.e.\n"
"                       2048 tokens of 16]\n"
"  --block_size S       bytes per block and layer, one descriptor each, a\n"
"                       multiple of 8, at least 16 [default: 64K: K and V of\n"
"                       16 tokens x 8 heads x 128 x bf16, as Llama-3-8B]\n"
"  --num_iter N         measured requests per pair [default: 20]\n"
"  --warmup_iter N      unmeasured requests per pair first [default: 2]\n"
"  --inflight R         requests open at once per pair [default: 2]\n"
"  --check_consistency  compare every byte moved (always: each block's stamp)\n"
"  --enable_pt          the active workers' connectors run their progress\n"
"                       thread too (the passive ones always do: they block in\n"
"                       NATS calls while their peers' transfers need them)\n"
"  --mem KIND           malloc, or ucx (nxc_mem_alloc) [default: malloc]\n"
"  --nats URL           NATS server(s) for the metadata [default: start a\n"
"                       nats-server on 127.0.0.1 for the run]\n"
"  --nats-creds FILE    a NATS credentials file (.creds) for --nats\n"
"  --netns P,D          run the prefill workers in network namespace P and\n"
"                       the decode workers in D (names as 'ip netns' shows\n"
"                       them; needs root, and --nats reachable from both)\n"
"  --timeout SEC        fail when the run takes longer [default: 300]\n"
"  --role ROLE          run only this role's workers, for roles on several\n"
"                       hosts: one 'prefill' process (all prefill workers; it\n"
"                       assigns the decode workers, starts the run, gathers\n"
"                       and prints the results) and any number of 'decode'\n"
"                       processes; all with the same --nats, workload\n"
"                       options and --benchmark_group [default: both roles\n"
"                       here]\n"
"  --num_local N        with --role decode: decode workers this process runs\n"
"                       [default: all of --num_decode]\n"
"  --benchmark_group G  the run's name on NATS, so several runs can share a\n"
"                       server [default: default]\n"
"  --join_timeout SEC   with --role: fail when the other roles have not all\n"
"                       joined within this time [default: 60]\n"
"  --json               one JSON object instead of the table\n"
"  -h, --help           show this help and exit\n",
    stdout);
}

typedef enum { SCHEME_AUTO, SCHEME_PAIRWISE, SCHEME_MANYTOONE, SCHEME_ONETOMANY } scheme_t;

/* --role: which workers this process runs (ROLE_BOTH: all, on this host). */
typedef enum { ROLE_BOTH, ROLE_PREFILL, ROLE_DECODE } role_t;

static const char *const scheme_names[] = { "auto", "pairwise", "manytoone", "onetomany" };

typedef struct kv_cfg {
    nxc_op_kind_t op;
    scheme_t      scheme;
    uint64_t      prefill, decode;
    uint64_t      layers, blocks, block_size;
    uint64_t      num_iter, warmup_iter, inflight;
    bool          check, enable_pt, json, ucx_mem;
    const char   *nats;
    const char   *nats_creds;   /* --nats-creds FILE, or NULL */
    char          netns[2][64]; /* --netns: prefill's, decode's; "" for ours */
    double        timeout_s;
    role_t        role;
    uint64_t      num_local;    /* --num_local: decode workers of this process */
    const char   *group;        /* --benchmark_group */
    double        join_timeout_s;
    char          run[72];      /* subject prefix, unique per run */
} kv_cfg_t;

/* A pair of workers: requests flow between prefill p and decode d. */
typedef struct pair {
    unsigned p, d;
} pair_t;

/* What a worker tells the parent at the end, followed by `samples`
 * records of (pair, latency in ns) when it was the active side. */
typedef struct kv_result {
    uint64_t requests;      /* measured requests it took part in */
    uint64_t t_first, t_last; /* first measured begin, last completion (ns) */
    double   cpu_s, run_s;  /* CPU time and wall time of the run phase */
    uint64_t rss_kib, fds;  /* peak RSS and open fds at the end */
    uint64_t samples;
    uint64_t err_len;       /* a failed worker's message follows, this long */
} kv_result_t;

typedef struct kv_sample {
    uint64_t pair, ns;
} kv_sample_t;

enum {
    O_OP = OPT_LONG, O_SCHEME, O_PREFILL, O_DECODE, O_LAYERS, O_BLOCKS, O_BSIZE,
    O_ITER, O_WARMUP, O_INFLIGHT, O_CHECK, O_PT, O_MEM, O_NATS, O_CREDS, O_NETNS, O_TIMEOUT,
    O_JSON, O_ROLE, O_LOCAL, O_GROUP, O_JOIN, O_HELP = 'h'
};

static const struct option kv_opts[] = {
    { "op_type",           required_argument, NULL, O_OP },
    { "scheme",            required_argument, NULL, O_SCHEME },
    { "num_prefill",       required_argument, NULL, O_PREFILL },
    { "num_decode",        required_argument, NULL, O_DECODE },
    { "num_layers",        required_argument, NULL, O_LAYERS },
    { "num_blocks",        required_argument, NULL, O_BLOCKS },
    { "block_size",        required_argument, NULL, O_BSIZE },
    { "num_iter",          required_argument, NULL, O_ITER },
    { "warmup_iter",       required_argument, NULL, O_WARMUP },
    { "inflight",          required_argument, NULL, O_INFLIGHT },
    { "check_consistency", no_argument,       NULL, O_CHECK },
    { "enable_pt",         no_argument,       NULL, O_PT },
    { "mem",               required_argument, NULL, O_MEM },
    { "nats",              required_argument, NULL, O_NATS },
    { "nats-creds",        required_argument, NULL, O_CREDS },
    { "netns",             required_argument, NULL, O_NETNS },
    { "timeout",           required_argument, NULL, O_TIMEOUT },
    { "json",              no_argument,       NULL, O_JSON },
    { "role",              required_argument, NULL, O_ROLE },
    { "num_local",         required_argument, NULL, O_LOCAL },
    { "benchmark_group",   required_argument, NULL, O_GROUP },
    { "join_timeout",      required_argument, NULL, O_JOIN },
    { "help",              no_argument,       NULL, O_HELP },
    { NULL, 0, NULL, 0 }
};

#define MAX_WORKERS 256
#define MAX_KV_BYTES (64 * GIB)

/* ---- options ------------------------------------------------------------- */

static int parse_op(const char *arg, nxc_op_kind_t *op)
{
    if (strcasecmp(arg, "WRITE") == 0)
        *op = NXC_OP_WRITE;
    else if (strcasecmp(arg, "READ") == 0)
        *op = NXC_OP_READ;
    else
        return usage_error("kvbench: --op_type: '%s' is neither READ nor WRITE", arg);
    return 0;
}

static int parse_scheme(const char *arg, scheme_t *s)
{
    for (int i = SCHEME_PAIRWISE; i <= SCHEME_ONETOMANY; i++)
        if (strcasecmp(arg, scheme_names[i]) == 0) {
            *s = (scheme_t)i;
            return 0;
        }
    return usage_error("kvbench: --scheme: '%s' is not pairwise, manytoone or onetomany", arg);
}

#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

/* "P,D": two names of at most 63 letters, digits, '.', '_' or '-'. */
static int parse_netns(const char *arg, kv_cfg_t *c)
{
    const char *comma = strchr(arg, ',');
    size_t lp = comma ? (size_t)(comma - arg) : 0, ld = comma ? strlen(comma + 1) : 0;
    if (!comma || lp == 0 || ld == 0 || lp >= sizeof c->netns[0] ||
        ld >= sizeof c->netns[1] || strspn(arg, NAME_CHARS) != lp ||
        strspn(comma + 1, NAME_CHARS) != ld)
        return usage_error("kvbench: --netns: '%s' is not PREFILL_NS,DECODE_NS", arg);
    memcpy(c->netns[0], arg, lp);
    memcpy(c->netns[1], comma + 1, ld);
    return 0;
}

static int parse_role(const char *arg, role_t *r)
{
    if (strcmp(arg, "prefill") == 0)
        *r = ROLE_PREFILL;
    else if (strcmp(arg, "decode") == 0)
        *r = ROLE_DECODE;
    else
        return usage_error("kvbench: --role: '%s' is neither prefill nor decode", arg);
    return 0;
}

/* A NATS subject token: letters, digits, '_' and '-', at most 48. */
static int parse_group(const char *arg, kv_cfg_t *c)
{
    size_t n = strlen(arg);
    if (n == 0 || n > 48 || strspn(arg, NAME_CHARS) != n || strchr(arg, '.'))
        return usage_error("kvbench: --benchmark_group: '%s' is not 1-48 letters, digits, "
                           "'_' or '-'", arg);
    c->group = arg;
    return 0;
}

static int kv_option(kv_cfg_t *c, int id, const char *arg)
{
    switch (id) {
    case O_OP:       return parse_op(arg, &c->op);
    case O_SCHEME:   return parse_scheme(arg, &c->scheme);
    case O_PREFILL:  return parse_count("--num_prefill", arg, 1, MAX_WORKERS, &c->prefill);
    case O_DECODE:   return parse_count("--num_decode", arg, 1, MAX_WORKERS, &c->decode);
    case O_LAYERS:   return parse_count("--num_layers", arg, 1, 4096, &c->layers);
    case O_BLOCKS:   return parse_count("--num_blocks", arg, 1, 1u << 20, &c->blocks);
    case O_BSIZE:    return parse_size("--block_size", arg, GIB, &c->block_size);
    case O_ITER:     return parse_count("--num_iter", arg, 1, 1u << 30, &c->num_iter);
    case O_WARMUP:   return parse_count("--warmup_iter", arg, 0, 1u << 30, &c->warmup_iter);
    case O_INFLIGHT: return parse_count("--inflight", arg, 1, 4096, &c->inflight);
    case O_CHECK:    c->check = true; return 0;
    case O_PT:       c->enable_pt = true; return 0;
    case O_NATS:     c->nats = arg; return 0;
    case O_CREDS:    c->nats_creds = arg; return 0;
    case O_NETNS:    return parse_netns(arg, c);
    case O_TIMEOUT:  return parse_seconds("--timeout", arg, &c->timeout_s);
    case O_JSON:     c->json = true; return 0;
    case O_ROLE:     return parse_role(arg, &c->role);
    case O_LOCAL:    return parse_count("--num_local", arg, 1, MAX_WORKERS, &c->num_local);
    case O_GROUP:    return parse_group(arg, c);
    case O_JOIN:     return parse_seconds("--join_timeout", arg, &c->join_timeout_s);
    case O_MEM:
        if (strcmp(arg, "malloc") != 0 && strcmp(arg, "ucx") != 0)
            return usage_error("kvbench: --mem: unknown memory kind '%s' (malloc or ucx)", arg);
        c->ucx_mem = strcmp(arg, "ucx") == 0;
        return 0;
    default:         return NXC_EXIT_USAGE;
    }
}

/* The scheme fits the counts; without --scheme, the counts choose it. */
static int check_scheme(kv_cfg_t *c)
{
    if (c->scheme == SCHEME_AUTO)
        c->scheme = c->prefill == c->decode ? SCHEME_PAIRWISE
                  : c->decode == 1          ? SCHEME_MANYTOONE
                  : c->prefill == 1         ? SCHEME_ONETOMANY : SCHEME_AUTO;
    if (c->scheme == SCHEME_AUTO)
        return usage_error("kvbench: %" PRIu64 " prefill and %" PRIu64 " decode workers "
                           "fit no scheme (equal counts, or one of either)",
                           c->prefill, c->decode);
    if ((c->scheme == SCHEME_PAIRWISE && c->prefill != c->decode) ||
        (c->scheme == SCHEME_MANYTOONE && c->decode != 1) ||
        (c->scheme == SCHEME_ONETOMANY && c->prefill != 1))
        return usage_error("kvbench: --scheme %s does not fit %" PRIu64 " prefill and %"
                           PRIu64 " decode workers", scheme_names[c->scheme],
                           c->prefill, c->decode);
    if (c->prefill + c->decode > MAX_WORKERS)
        return usage_error("kvbench: at most %d workers in all", MAX_WORKERS);
    return 0;
}

static int check_sizes(const kv_cfg_t *c)
{
    if (c->block_size < 16 || c->block_size % 8)
        return usage_error("kvbench: --block_size: %" PRIu64 " is not a multiple of 8 "
                           "of at least 16 (each block carries a 16-byte stamp)",
                           c->block_size);
    if (c->layers * c->blocks > (1u << 20))
        return usage_error("kvbench: %" PRIu64 " x %" PRIu64 " descriptors per request: "
                           "at most 1048576", c->layers, c->blocks);
    if (c->layers * c->blocks * c->block_size > MAX_KV_BYTES / c->inflight)
        return usage_error("kvbench: a KV cache of %" PRIu64 " bytes, %" PRIu64
                           " in flight: more than 64 GiB per pair",
                           c->layers * c->blocks * c->block_size, c->inflight);
    return 0;
}

static int kv_parse(int argc, char **argv, kv_cfg_t *c, bool *help)
{
    *c = (kv_cfg_t){ .op = NXC_OP_WRITE, .prefill = 1, .decode = 1, .layers = 32,
                     .blocks = 128, .block_size = 64 * KIB, .num_iter = 20,
                     .warmup_iter = 2, .inflight = 2, .timeout_s = 300,
                     .group = "default", .join_timeout_s = 60 };
    opt_init();
    const char *arg = NULL;
    int id;
    while ((id = opt_next(argc, argv, kv_opts, &arg)) != OPT_END) {
        if (id == OPT_ERROR)
            return NXC_EXIT_USAGE;
        if (id == OPT_POSITIONAL)
            return usage_error("kvbench: unexpected argument '%s'", arg);
        if (id == O_HELP) {
            *help = true;
            return 0;
        }
        if (kv_option(c, id, arg) != 0)
            return NXC_EXIT_USAGE;
    }
    if (check_scheme(c) != 0 || check_sizes(c) != 0)
        return NXC_EXIT_USAGE;
    if (c->nats_creds && !c->nats)
        return usage_error("kvbench: --nats-creds needs --nats URL");
    if (c->netns[0][0] && !c->nats) /* ours listens on 127.0.0.1 */
        return usage_error("kvbench: --netns needs --nats URL, a server both namespaces reach");
    if (c->role != ROLE_BOTH && !c->nats)
        return usage_error("kvbench: --role needs --nats URL, a server every role reaches");
    if (c->role != ROLE_BOTH && c->netns[0][0])
        return usage_error("kvbench: --role and --netns exclude each other (start each role "
                           "in its namespace)");
    if (c->num_local && c->role != ROLE_DECODE)
        return usage_error("kvbench: --num_local goes with --role decode");
    if (c->num_local > c->decode)
        return usage_error("kvbench: --num_local %" PRIu64 ": more than the %" PRIu64
                           " decode workers", c->num_local, c->decode);
    if (!c->num_local)
        c->num_local = c->decode;
    snprintf(c->run, sizeof c->run, "kvbench.%s.%x%04x", c->group, (unsigned)getpid(),
             (unsigned)(now_ns() & 0xffff));
    return 0;
}

/* The workload of a parsed command line (below, or refused in a build
 * without the NATS module). */
static int kv_run(kv_cfg_t *cfg);

/* A wrong command line gets the same answer in every build. */
int kvbench_main(int argc, char **argv)
{
    kv_cfg_t cfg;
    bool help = false;
    int rc = kv_parse(argc, argv, &cfg, &help);
    if (rc != 0 || help) {
        if (help)
            kvbench_help();
        return rc;
    }
    return kv_run(&cfg);
}

#ifndef NXC_HAVE_NATS
static int kv_run(kv_cfg_t *cfg)
{
    (void)cfg;
    return usage_error("kvbench: nxc was built without the NATS module "
                       "(libnats-dev was missing at build time)");
}
#else

/* ---- the pairs ------------------------------------------------------------ */

static unsigned pair_count(const kv_cfg_t *c)
{
    return (unsigned)(c->scheme == SCHEME_MANYTOONE ? c->prefill
                    : c->scheme == SCHEME_ONETOMANY ? c->decode : c->prefill);
}

static pair_t pair_at(const kv_cfg_t *c, unsigned i)
{
    switch (c->scheme) {
    case SCHEME_MANYTOONE: return (pair_t){ i, 0 };
    case SCHEME_ONETOMANY: return (pair_t){ 0, i };
    default:               return (pair_t){ i, i };
    }
}

/* Workers are numbered prefill 0..P-1, then decode 0..D-1. */
typedef struct worker_id {
    bool     decode;
    unsigned index;
} worker_id_t;

static worker_id_t worker_at(const kv_cfg_t *c, unsigned w)
{
    return w < c->prefill ? (worker_id_t){ false, w }
                          : (worker_id_t){ true, (unsigned)(w - c->prefill) };
}

static bool in_pair(worker_id_t w, pair_t p)
{
    return w.decode ? p.d == w.index : p.p == w.index;
}

/* The active side: prefill for WRITE, decode for READ. */
static bool is_active(const kv_cfg_t *c, worker_id_t w)
{
    return w.decode == (c->op == NXC_OP_READ);
}

static void worker_name(worker_id_t w, char *buf, size_t size)
{
    snprintf(buf, size, "%s%u", w.decode ? "decode" : "prefill", w.index);
}

/* The subject the active worker of a pair listens on. */
static void active_subject(const kv_cfg_t *c, pair_t p, char *buf, size_t size)
{
    if (c->op == NXC_OP_WRITE)
        snprintf(buf, size, "%s.prefill%u", c->run, p.p);
    else
        snprintf(buf, size, "%s.decode%u", c->run, p.d);
}

/* ---- buffers, stamps and the data pattern ------------------------------- */

typedef struct kv_mem {
    nxc_connector_t *conn;
    bool             ucx;
    uint8_t         *base;
    uint64_t         size;
} kv_mem_t;

static uint64_t kv_bytes(const kv_cfg_t *c)
{
    return c->layers * c->blocks * c->block_size;
}

static uint64_t kv_descs(const kv_cfg_t *c)
{
    return c->layers * c->blocks;
}

static int mem_alloc(kv_mem_t *m, uint64_t size)
{
    m->size = size;
    if (m->ucx) {
        int rc = nxc_mem_alloc(m->conn, size, (void **)&m->base);
        return rc == NXC_OK ? 0 : lib_error(rc, "kvbench: nxc_mem_alloc(%" PRIu64 ")", size);
    }
    m->base = aligned_alloc(4096, (size + 4095) & ~(uint64_t)4095);
    return m->base ? 0 : runtime_error("kvbench: out of memory (%" PRIu64 " bytes)", size);
}

static void mem_free(kv_mem_t *m)
{
    if (m->ucx)
        nxc_mem_free(m->conn, m->base);
    else
        free(m->base);
    m->base = NULL;
}

/* Word k >= 2 of block i: a function of both, so a block landing in the
 * wrong place or a torn block shows. */
static uint64_t pattern_word(uint64_t block, uint64_t k)
{
    return (block << 32 | k) * 0x9E3779B97F4A7C15ull;
}

static void fill_pattern(const kv_cfg_t *c, uint8_t *kv)
{
    uint64_t words = c->block_size / 8;
    for (uint64_t i = 0; i < kv_descs(c); i++) {
        uint64_t *w = (uint64_t *)(kv + i * c->block_size);
        w[0] = w[1] = 0;
        for (uint64_t k = 2; k < words; k++)
            w[k] = pattern_word(i, k);
    }
}

/* Words 0-1 of every block: the request's id and the block index. */
static void stamp(const kv_cfg_t *c, uint8_t *kv, uint64_t req)
{
    for (uint64_t i = 0; i < kv_descs(c); i++) {
        uint64_t *w = (uint64_t *)(kv + i * c->block_size);
        w[0] = req;
        w[1] = i;
    }
}

/* Before a destination is lent out: no stamp of an earlier request stays
 * (with --check_consistency nothing at all stays). */
static void clear_dest(const kv_cfg_t *c, uint8_t *kv)
{
    if (c->check)
        memset(kv, 0, kv_bytes(c));
    else
        stamp(c, kv, 0);
}

static int verify(const kv_cfg_t *c, const uint8_t *kv, uint64_t req)
{
    uint64_t words = c->block_size / 8;
    for (uint64_t i = 0; i < kv_descs(c); i++) {
        const uint64_t *w = (const uint64_t *)(kv + i * c->block_size);
        if (w[0] != req || w[1] != i)
            return runtime_error("kvbench: request %" PRIx64 ", block %" PRIu64
                                 ": stamp (%" PRIx64 ", %" PRIu64 ") instead of its own",
                                 req, i, w[0], w[1]);
        for (uint64_t k = 2; c->check && k < words; k++)
            if (w[k] != pattern_word(i, k))
                return runtime_error("kvbench: request %" PRIx64 ", block %" PRIu64
                                     ", byte %" PRIu64 ": data differs", req, i, k * 8);
    }
    return 0;
}

static void kv_descriptors(const kv_cfg_t *c, uint8_t *kv, nxc_descriptor_t *d)
{
    for (uint64_t i = 0; i < kv_descs(c); i++)
        d[i] = (nxc_descriptor_t){ kv + i * c->block_size, c->block_size,
                                   { NXC_DEVICE_HOST, 0 } };
}

/* ---- one worker process ---------------------------------------------------- */

/* One request slot: a KV cache's memory of one pair, and its op. */
typedef struct slot {
    uint8_t  *kv;
    nxc_op_t *op;
    unsigned  pair;
    uint64_t  seq;      /* request number within its pair */
    uint64_t  t_begin;
    bool      busy;
} slot_t;

typedef struct worker {
    const kv_cfg_t  *cfg;
    worker_id_t      id;
    char             name[32];
    nxc_connector_t *conn;
    nxc_nats_t      *nats;
    kv_mem_t         mem;
    unsigned        *pairs;     /* indexes of this worker's pairs */
    unsigned         npairs;
    slot_t          *slots;     /* inflight slots per pair, in pair order */
    nxc_descriptor_t *descs;
    uint64_t         deadline;
    kv_result_t      res;
    kv_sample_t     *samples;
    size_t           nsamples, cap_samples;
} worker_t;

static uint64_t request_id(const kv_cfg_t *c, unsigned pair, uint64_t seq)
{
    (void)c;
    return ((uint64_t)(pair + 1) << 40) | (seq + 1);
}

static int remaining_ms(const worker_t *w)
{
    uint64_t now = now_ns();
    if (now >= w->deadline)
        return 0;
    uint64_t ms = (w->deadline - now) / 1000000 + 1;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static int nats_fail(int rc, const worker_t *w, const char *what)
{
    return nats_error(rc, "kvbench: %s: %s", w->name, what);
}

static slot_t *pair_slots(worker_t *w, unsigned k)
{
    return &w->slots[(size_t)k * w->cfg->inflight];
}

/* Passive workers block in NATS calls (each publish waits for the server)
 * while their peers' transfers need their progress, so their connectors
 * always drive themselves (measured: 64-to-1 WRITE went from ~350 to ~2000
 * requests/s); active ones with --enable_pt. */
static bool own_progress(const kv_cfg_t *c, worker_id_t w)
{
    return c->enable_pt || !is_active(c, w);
}

static int worker_setup(worker_t *w)
{
    const kv_cfg_t *c = w->cfg;
    nxc_connector_config_t cc = { .field_mask = NXC_CONFIG_NAME | NXC_CONFIG_PROGRESS_THREAD,
                                  .name = w->name, .progress_thread = own_progress(c, w->id) };
    int rc = nxc_connector_create(&cc, &w->conn);
    if (rc != NXC_OK)
        return lib_error(rc, "kvbench: %s: cannot create a connector", w->name);
    nxc_nats_config_t nc = { .field_mask = NXC_NATS_CONFIG_TIMEOUT, .timeout_ms = 5000,
                             .creds_file = c->nats_creds };
    if (c->nats_creds)
        nc.field_mask |= NXC_NATS_CONFIG_CREDS;
    if ((rc = nxc_nats_connect(c->nats, &nc, &w->nats)) != NXC_OK)
        return nats_fail(rc, w, "cannot connect to NATS");
    unsigned total = pair_count(c);
    w->pairs = calloc(total, sizeof *w->pairs);
    for (unsigned i = 0; w->pairs && i < total; i++)
        if (in_pair(w->id, pair_at(c, i)))
            w->pairs[w->npairs++] = i;
    size_t nslots = (size_t)w->npairs * c->inflight;
    w->slots = calloc(nslots, sizeof *w->slots);
    w->descs = calloc(kv_descs(c), sizeof *w->descs);
    if (!w->pairs || !w->slots || !w->descs)
        return runtime_error("kvbench: %s: out of memory", w->name);
    w->mem.conn = w->conn;
    w->mem.ucx = c->ucx_mem;
    if ((rc = mem_alloc(&w->mem, nslots * kv_bytes(c))) != 0)
        return rc;
    bool source = (c->op == NXC_OP_WRITE) == is_active(c, w->id);
    for (size_t s = 0; s < nslots; s++) {
        w->slots[s].kv = w->mem.base + s * kv_bytes(c);
        w->slots[s].pair = w->pairs[s / c->inflight];
        if (source)
            fill_pattern(c, w->slots[s].kv);
        else
            memset(w->slots[s].kv, 0, kv_bytes(c));
    }
    return 0;
}

static void worker_teardown(worker_t *w)
{
    for (size_t s = 0; w->slots && s < (size_t)w->npairs * w->cfg->inflight; s++)
        nxc_op_release(w->slots[s].op);
    if (w->mem.base)
        mem_free(&w->mem);
    nxc_nats_close(w->nats);
    nxc_connector_destroy(w->conn);
    free(w->pairs);
    free(w->slots);
    free(w->descs);
    free(w->samples);
}

static bool measured(const kv_cfg_t *c, uint64_t seq)
{
    return seq >= c->warmup_iter;
}

static void count_done(worker_t *w, const slot_t *s, uint64_t t_end, bool sample)
{
    const kv_cfg_t *c = w->cfg;
    if (!measured(c, s->seq))
        return;
    if (!w->res.t_first || s->t_begin < w->res.t_first)
        w->res.t_first = s->t_begin;
    if (t_end > w->res.t_last)
        w->res.t_last = t_end;
    w->res.requests++;
    if (sample && w->nsamples < w->cap_samples)
        w->samples[w->nsamples++] = (kv_sample_t){ s->pair, t_end - s->t_begin };
}

/* ---- the event loop of both sides ------------------------------------------ */

/* Sleeps until the connector has work or @p kick_fd fires, at most as long
 * as the connector allows (nxc_connector_timeout_ms) and 100 ms. With the
 * progress thread on, that thread owns the connector's fd: then a 1 ms nap. */
static void sleep_on_connector(worker_t *w, int kick_fd)
{
    int t = own_progress(w->cfg, w->id) ? 1 : nxc_connector_timeout_ms(w->conn);
    if (t < 0 || t > 100)
        t = 100;
    struct pollfd pf[2] = { { .fd = own_progress(w->cfg, w->id) ? -1 : nxc_connector_fd(w->conn),
                              .events = POLLIN },
                            { .fd = kick_fd, .events = POLLIN } };
    if (poll(pf, 2, t) > 0 && (pf[1].revents & POLLIN)) {
        uint64_t v;
        if (read(kick_fd, &v, sizeof v) < 0)
            return; /* another wake-up will come */
    }
}

static int op_failed(worker_t *w, const slot_t *s)
{
    return op_error(s->op, nxc_op_wait(s->op, 0), "kvbench: %s: request %" PRIu64
                    " of pair %u", w->name, s->seq, s->pair);
}

/* -- passive side: expose a KV cache, hand its metadata over, reuse the slot -- */

static void pair_subject(const worker_t *w, unsigned pair, char *buf, size_t size)
{
    active_subject(w->cfg, pair_at(w->cfg, pair), buf, size);
}

/* Acknowledged: returns once the active worker took it (retries while it
 * has not subscribed yet). */
static int send_text(worker_t *w, unsigned pair, const char *text, size_t len)
{
    char subject[96];
    pair_subject(w, pair, subject, sizeof subject);
    for (;;) {
        int left = remaining_ms(w);
        int rc = left ? nxc_nats_send(w->nats, subject, text, len, left) : NXC_ERR_TIMED_OUT;
        if (rc == NXC_OK)
            return 0;
        if (rc != NXC_NATS_ERR_NO_RESPONDERS || remaining_ms(w) < 20)
            return nats_fail(rc, w, "no active worker took the metadata");
        struct timespec ts = { 0, 10 * 1000000L };   /* it is not subscribed yet */
        nanosleep(&ts, NULL);
    }
}

/* Once the pair's first message was taken, the active worker is subscribed
 * until it has all: later ones need no round trip (NATS keeps their order,
 * so the acknowledged "end" arrives after them). */
static int publish_text(worker_t *w, unsigned pair, const char *text, size_t len)
{
    char subject[96];
    pair_subject(w, pair, subject, sizeof subject);
    int rc = nxc_nats_publish(w->nats, subject, text, len);
    return rc == NXC_OK ? 0 : nats_fail(rc, w, "cannot publish the metadata");
}

static int post_passive(worker_t *w, slot_t *s, uint64_t seq)
{
    const kv_cfg_t *c = w->cfg;
    uint64_t req = request_id(c, s->pair, seq);
    if (c->op == NXC_OP_READ)
        stamp(c, s->kv, req);
    else
        clear_dest(c, s->kv);
    kv_descriptors(c, s->kv, w->descs);
    int rc = c->op == NXC_OP_READ ? nxc_create_readable(w->conn, w->descs, kv_descs(c), &s->op)
                                  : nxc_create_writable(w->conn, w->descs, kv_descs(c), &s->op);
    if (rc != NXC_OK)
        return lib_error(rc, "kvbench: %s: cannot expose a KV cache", w->name);
    const char *json;
    size_t len;
    if ((rc = nxc_op_metadata(s->op, &json, &len)) != NXC_OK)
        return lib_error(rc, "kvbench: %s: no metadata", w->name);
    char head[64];
    int hl = snprintf(head, sizeof head, "kv %u %" PRIu64 "\n", s->pair, seq);
    char *msg = malloc((size_t)hl + len);
    if (!msg)
        return runtime_error("kvbench: %s: out of memory", w->name);
    memcpy(msg, head, (size_t)hl);
    memcpy(msg + hl, json, len);
    s->seq = seq;
    s->busy = true;
    s->t_begin = now_ns();
    rc = seq == 0 ? send_text(w, s->pair, msg, (size_t)hl + len)
                  : publish_text(w, s->pair, msg, (size_t)hl + len);
    free(msg);
    return rc;
}

static int finish_passive(worker_t *w, slot_t *s)
{
    count_done(w, s, now_ns(), false);
    nxc_op_release(s->op);
    s->op = NULL;
    s->busy = false;
    return w->cfg->op == NXC_OP_WRITE ? verify(w->cfg, s->kv, request_id(w->cfg, s->pair, s->seq))
                                      : 0;
}

/* Keeps --inflight ops open per pair until each pair had all its requests;
 * every finished op is seen in the round it finishes, whichever pair. */
static int run_passive(worker_t *w)
{
    const kv_cfg_t *c = w->cfg;
    uint64_t total = c->warmup_iter + c->num_iter;
    size_t nslots = (size_t)w->npairs * c->inflight, busy = 0, round = 0;
    uint64_t *next = calloc(w->npairs, sizeof *next);
    if (!next)
        return runtime_error("kvbench: %s: out of memory", w->name);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < nslots; i++) {
        unsigned k = (unsigned)(i / c->inflight);
        if (next[k] < total && (rc = post_passive(w, &w->slots[i], next[k]++)) == 0)
            busy++;
    }
    while (rc == 0 && busy) {
        bool moved = false;
        /* each round starts one slot further, so no pair is always last */
        round = (round + 1) % nslots;
        for (size_t j = 0; rc == 0 && j < nslots; j++) {
            size_t i = (round + j) % nslots;
            slot_t *s = &w->slots[i];
            if (!s->busy)
                continue;
            nxc_op_status_t st = nxc_op_status(s->op);
            if (st < NXC_OP_COMPLETE)
                continue;
            if (st != NXC_OP_COMPLETE) {
                rc = op_failed(w, s);
                break;
            }
            moved = true;
            busy--;
            unsigned k = (unsigned)(i / c->inflight);
            if ((rc = finish_passive(w, s)) == 0 && next[k] < total &&
                (rc = post_passive(w, s, next[k]++)) == 0)
                busy++;
        }
        if (rc == 0 && !moved && remaining_ms(w) == 0)
            rc = runtime_error("kvbench: %s: timed out (--timeout %.0f s) with %zu requests "
                               "open", w->name, c->timeout_s, busy);
        if (rc == 0 && !moved)
            sleep_on_connector(w, -1);
    }
    for (unsigned k = 0; rc == 0 && k < w->npairs; k++) {
        char end[32];
        int len = snprintf(end, sizeof end, "end %u\n", w->pairs[k]);
        rc = send_text(w, w->pairs[k], end, (size_t)len);
    }
    free(next);
    return rc;
}

/* -- active side: a receiver thread takes metadata and begins; the main
 *    thread drives the connector and reaps completions as they happen -- */

typedef struct active {
    worker_t         *w;
    nxc_nats_inbox_t *in;
    pthread_mutex_t   lock;
    pthread_cond_t    freed;   /* a slot became free */
    int               kick;    /* eventfd: a new op began, or the receiver ended */
    unsigned          ended;   /* pairs whose passive side said "end" */
    bool              stop;    /* the main thread failed: receiver, give up */
    bool              done;    /* the receiver has finished */
    int               rc;      /* the receiver's result */
} active_t;

static int local_index(const worker_t *w, unsigned pair)
{
    for (unsigned k = 0; k < w->npairs; k++)
        if (w->pairs[k] == pair)
            return (int)k;
    return -1;
}

static void kick(active_t *a)
{
    uint64_t one = 1;
    if (write(a->kick, &one, sizeof one) < 0)
        return; /* the counter is full: the main thread wakes anyway */
}

/* Reserves a free slot of local pair @p k (waits for the main thread to
 * reap one). NULL when told to stop or out of time. */
static slot_t *reserve_slot(active_t *a, unsigned k)
{
    worker_t *w = a->w;
    slot_t *s = NULL;
    pthread_mutex_lock(&a->lock);
    while (!a->stop && remaining_ms(w) > 0) {
        slot_t *ps = pair_slots(w, k);
        for (uint64_t r = 0; !s && r < w->cfg->inflight; r++)
            if (!ps[r].busy)
                s = &ps[r];
        if (s)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&a->freed, &a->lock, &ts);
    }
    if (s)
        s->busy = true;  /* reserved: op still NULL */
    pthread_mutex_unlock(&a->lock);
    return s;
}

static int begin_active(active_t *a, const char *msg, size_t len)
{
    worker_t *w = a->w;
    const kv_cfg_t *c = w->cfg;
    unsigned pair;
    uint64_t seq;
    int hl = 0;
    int k;
    if (sscanf(msg, "kv %u %" SCNu64 "\n%n", &pair, &seq, &hl) != 2 || hl <= 0 ||
        (k = local_index(w, pair)) < 0)
        return runtime_error("kvbench: %s: unexpected message '%.40s'", w->name, msg);
    slot_t *s = reserve_slot(a, (unsigned)k);
    if (!s)
        return runtime_error("kvbench: %s: no free slot for pair %u in time", w->name, pair);
    nxc_metadata_t *md;
    nxc_op_t *op = NULL;
    int rc = nxc_metadata_parse(msg + hl, len - (size_t)hl, &md);
    if (rc != NXC_OK)
        return lib_error(rc, "kvbench: %s: metadata of pair %u", w->name, pair);
    uint64_t req = request_id(c, pair, seq);
    if (c->op == NXC_OP_WRITE)
        stamp(c, s->kv, req);
    else
        clear_dest(c, s->kv);
    kv_descriptors(c, s->kv, w->descs);
    uint64_t t = now_ns();
    rc = c->op == NXC_OP_WRITE ? nxc_begin_write(w->conn, w->descs, kv_descs(c), md, &op)
                               : nxc_begin_read(w->conn, md, w->descs, kv_descs(c), &op);
    nxc_metadata_free(md);
    if (rc != NXC_OK)
        return lib_error(rc, "kvbench: %s: cannot begin request %" PRIu64 " of pair %u",
                         w->name, seq, pair);
    pthread_mutex_lock(&a->lock);
    s->seq = seq;
    s->t_begin = t;
    s->op = op;
    pthread_mutex_unlock(&a->lock);
    kick(a);
    return 0;
}

static void *receiver(void *arg)
{
    active_t *a = arg;
    worker_t *w = a->w;
    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&a->lock);
        bool stop = a->stop;
        pthread_mutex_unlock(&a->lock);
        if (stop || a->ended == w->npairs)
            break;
        int left = remaining_ms(w);
        if (!left) {
            rc = runtime_error("kvbench: %s: timed out (--timeout %.0f s) waiting for metadata",
                               w->name, w->cfg->timeout_s);
            break;
        }
        char *msg = NULL;
        size_t len = 0;
        int nrc = nxc_nats_next(a->in, left < 100 ? left : 100, &msg, &len);
        if (nrc == NXC_ERR_TIMED_OUT)
            continue;
        if (nrc != NXC_OK) {
            rc = nats_fail(nrc, w, "cannot take metadata");
            break;
        }
        if (strncmp(msg, "end ", 4) == 0)
            a->ended++;
        else
            rc = begin_active(a, msg, len);
        nxc_nats_free(msg);
        if (rc != 0)
            break;
    }
    pthread_mutex_lock(&a->lock);
    a->rc = rc;
    a->done = true;
    pthread_mutex_unlock(&a->lock);
    kick(a);
    return NULL;
}

/* One pass over the slots: reaps every op that finished. *open tells
 * whether any slot is still busy (reserved or in flight). */
static int reap(active_t *a, bool *moved, bool *open)
{
    worker_t *w = a->w;
    const kv_cfg_t *c = w->cfg;
    *moved = *open = false;
    for (size_t i = 0; i < (size_t)w->npairs * c->inflight; i++) {
        slot_t *s = &w->slots[i];
        pthread_mutex_lock(&a->lock);
        nxc_op_t *op = s->op;
        *open |= s->busy;
        pthread_mutex_unlock(&a->lock);
        if (!op)
            continue;
        nxc_op_status_t st = nxc_op_status(op);
        if (st < NXC_OP_COMPLETE)
            continue;
        uint64_t t_end = now_ns();
        if (st != NXC_OP_COMPLETE)
            return op_failed(w, s);
        count_done(w, s, t_end, true);
        nxc_op_release(op);
        int rc = c->op == NXC_OP_READ ? verify(c, s->kv, request_id(c, s->pair, s->seq)) : 0;
        pthread_mutex_lock(&a->lock);
        s->op = NULL;
        s->busy = false;
        pthread_cond_signal(&a->freed);
        pthread_mutex_unlock(&a->lock);
        if (rc != 0)
            return rc;
        *moved = true;
    }
    return 0;
}

static int drive_active(active_t *a)
{
    worker_t *w = a->w;
    for (;;) {
        if (!own_progress(w->cfg, w->id))
            nxc_connector_progress(w->conn);
        bool moved, open;
        int rc = reap(a, &moved, &open);
        if (rc != 0)
            return rc;
        pthread_mutex_lock(&a->lock);
        bool done = a->done;
        pthread_mutex_unlock(&a->lock);
        if (done && !open)
            return 0;
        if (remaining_ms(w) == 0)
            return runtime_error("kvbench: %s: timed out (--timeout %.0f s)", w->name,
                                 w->cfg->timeout_s);
        if (!moved)
            sleep_on_connector(w, a->kick);
    }
}

static int run_active(worker_t *w)
{
    char subject[96];
    const kv_cfg_t *c = w->cfg;
    active_subject(c, pair_at(c, w->pairs[0]), subject, sizeof subject);
    w->cap_samples = (size_t)w->npairs * c->num_iter;
    w->samples = calloc(w->cap_samples, sizeof *w->samples);
    if (!w->samples)
        return runtime_error("kvbench: %s: out of memory", w->name);
    active_t a = { .w = w, .kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) };
    if (a.kick < 0)
        return runtime_error("kvbench: %s: eventfd: %s", w->name, strerror(errno));
    int rc = nxc_nats_subscribe(w->nats, subject, &a.in);
    if (rc != NXC_OK) {
        close(a.kick);
        return nats_fail(rc, w, "cannot subscribe");
    }
    pthread_mutex_init(&a.lock, NULL);
    pthread_cond_init(&a.freed, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, receiver, &a) != 0) {
        rc = runtime_error("kvbench: %s: cannot start the receiver thread", w->name);
    } else {
        rc = drive_active(&a);
        pthread_mutex_lock(&a.lock);
        a.stop = true;
        pthread_cond_broadcast(&a.freed);
        pthread_mutex_unlock(&a.lock);
        pthread_join(th, NULL);
        if (rc == 0)
            rc = a.rc;
    }
    nxc_nats_unsubscribe(a.in);
    pthread_cond_destroy(&a.freed);
    pthread_mutex_destroy(&a.lock);
    close(a.kick);
    return rc;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    uint64_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* Moves this worker into its --netns namespace, before any socket exists,
 * as 'ip netns exec' does: UCX lists network devices in /sys/class/net,
 * which shows the namespace of whoever mounted /sys, so the worker gets a
 * mount namespace of its own with a /sys of its network namespace. */
static int join_netns(const kv_cfg_t *c, const worker_t *w)
{
    const char *ns = c->netns[w->id.decode];
    if (!ns[0])
        return 0;
    char path[96];
    snprintf(path, sizeof path, "/run/netns/%s", ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    const char *step = "open";
    int ok = fd >= 0 && (step = "setns", setns(fd, CLONE_NEWNET) == 0) &&
             (step = "unshare(CLONE_NEWNS)", unshare(CLONE_NEWNS) == 0) &&
             (step = "mount --make-rslave /", mount("", "/", NULL, MS_SLAVE | MS_REC, NULL) == 0) &&
             (step = "umount /sys", umount2("/sys", MNT_DETACH) == 0) &&
             (step = "mount sysfs", mount(ns, "/sys", "sysfs", 0, NULL) == 0);
    int err = errno;
    if (fd >= 0)
        close(fd);
    if (!ok)
        return runtime_error("kvbench: %s: cannot join network namespace '%s' (%s: %s; "
                             "needs root)", w->name, ns, step, strerror(err));
    return 0;
}

/* The run's span in wall-clock time, which hosts share (roughly, through
 * NTP) where their monotonic clocks have nothing in common. */
static void to_realtime(kv_result_t *r)
{
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    uint64_t offset = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec - now_ns();
    if (r->requests) {
        r->t_first += offset;
        r->t_last += offset;
    }
}

/* The whole life of a forked worker; its exit status. */
static int worker_main(const kv_cfg_t *c, unsigned index, int out_fd)
{
    worker_t w = { .cfg = c, .id = worker_at(c, index) };
    worker_name(w.id, w.name, sizeof w.name);
    w.deadline = now_ns() + (uint64_t)(c->timeout_s * 1e9);
    int rc = join_netns(c, &w);
    if (rc == 0)
        rc = worker_setup(&w);
    if (rc == 0) {
        double cpu0 = cpu_seconds();
        uint64_t t0 = now_ns();
        rc = is_active(c, w.id) ? run_active(&w) : run_passive(&w);
        w.res.cpu_s = cpu_seconds() - cpu0;
        w.res.run_s = (double)(now_ns() - t0) / 1e9;
        to_realtime(&w.res);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    w.res.rss_kib = (uint64_t)ru.ru_maxrss;
    w.res.fds = count_fds();
    w.res.samples = rc == 0 ? w.nsamples : 0;
    /* a failure is reported too, with its message, for the other roles */
    const char *why = rc == 0 ? "" : last_message();
    w.res.err_len = strlen(why);
    if (write_all(out_fd, &w.res, sizeof w.res) != 0 ||
        write_all(out_fd, w.samples, w.res.samples * sizeof *w.samples) != 0 ||
        write_all(out_fd, why, w.res.err_len) != 0)
        rc = rc ? rc : runtime_error("kvbench: %s: cannot report to the parent", w.name);
    worker_teardown(&w);
    return rc;
}

/* ---- the parent: nats-server, workers, results ----------------------------- */

typedef struct child {
    pid_t        pid;
    int          fd;
    char        *buf;
    size_t       len, cap;
    bool         eof;
} child_t;

typedef struct nats_proc {
    pid_t pid;
    char  dir[64];
    char  url[64];
} nats_proc_t;

static const char *find_nats_server(void)
{
    static const char *const where[] = { "/usr/sbin/nats-server", "/usr/bin/nats-server",
                                         "/usr/local/bin/nats-server" };
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++)
        if (access(where[i], X_OK) == 0)
            return where[i];
    return NULL;
}

/* The port from the server's log line "Listening for client connections
 * on 127.0.0.1:PORT"; 0 while not there. */
static unsigned logged_port(const char *log)
{
    FILE *f = fopen(log, "r");
    if (!f)
        return 0;
    char line[512];
    unsigned port = 0;
    while (!port && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "client connections on 127.0.0.1:");
        if (p)
            port = (unsigned)strtoul(p + strlen("client connections on 127.0.0.1:"), NULL, 10);
    }
    fclose(f);
    return port;
}

static int start_nats(nats_proc_t *np)
{
    const char *bin = find_nats_server();
    if (!bin)
        return runtime_error("kvbench: no nats-server found (apt-get install nats-server, "
                             "or give --nats URL)");
    snprintf(np->dir, sizeof np->dir, "/tmp/nxc-kvbench-XXXXXX");
    if (!mkdtemp(np->dir))
        return runtime_error("kvbench: mkdtemp: %s", strerror(errno));
    char log[128];
    snprintf(log, sizeof log, "%s/nats.log", np->dir);
    np->pid = fork();
    if (np->pid < 0)
        return runtime_error("kvbench: fork: %s", strerror(errno));
    if (np->pid == 0) {
        execl(bin, bin, "-a", "127.0.0.1", "-p", "-1", "-l", log, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        unsigned port = logged_port(log);
        if (port) {
            snprintf(np->url, sizeof np->url, "nats://127.0.0.1:%u", port);
            return 0;
        }
        if (waitpid(np->pid, NULL, WNOHANG) == np->pid) {
            np->pid = 0;
            return runtime_error("kvbench: %s exited at start (see %s)", bin, log);
        }
        struct timespec ts = { 0, 25 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return runtime_error("kvbench: %s did not start listening within 5 s", bin);
}

static void stop_nats(nats_proc_t *np)
{
    if (np->pid > 0) {
        kill(np->pid, SIGTERM);
        waitpid(np->pid, NULL, 0);
    }
    if (np->dir[0]) {
        char log[128];
        snprintf(log, sizeof log, "%s/nats.log", np->dir);
        unlink(log);
        rmdir(np->dir);
    }
}

/* Forks workers first..first+n-1 (they die with this process). */
static int spawn_workers(const kv_cfg_t *c, child_t *ch, unsigned first, unsigned n)
{
    fflush(NULL);
    pid_t self = getpid();
    for (unsigned i = first; i < first + n; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0)
            return runtime_error("kvbench: pipe: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0)
            return runtime_error("kvbench: fork: %s", strerror(errno));
        if (pid == 0) {
            close(p[0]);
            for (unsigned j = first; j < i; j++)
                close(ch[j].fd);
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != self)
                _exit(NXC_EXIT_RUNTIME);
            _exit(worker_main(c, i, p[1]));
        }
        close(p[1]);
        ch[i] = (child_t){ .pid = pid, .fd = p[0] };
    }
    return 0;
}

static int read_some(child_t *ch)
{
    if (ch->cap - ch->len < 65536) {
        size_t cap = ch->cap ? ch->cap * 2 : 131072;
        char *b = realloc(ch->buf, cap);
        if (!b)
            return -1;
        ch->buf = b;
        ch->cap = cap;
    }
    ssize_t k = read(ch->fd, ch->buf + ch->len, ch->cap - ch->len);
    if (k < 0)
        return errno == EINTR ? 0 : -1;
    if (k == 0)
        ch->eof = true;
    ch->len += (size_t)k;
    return 0;
}

static const kv_result_t *result_of(const child_t *ch)
{
    return (const kv_result_t *)ch->buf;
}

/* Why worker @p i ended badly, into @p why: its own message when it sent
 * one (then true: it printed it too), else how it ended. */
static bool failure_text(const kv_cfg_t *c, const child_t *ch, unsigned i, int st,
                         char *why, size_t size)
{
    char name[32];
    worker_name(worker_at(c, i), name, sizeof name);
    const kv_result_t *r = result_of(&ch[i]);
    if (ch[i].len >= sizeof *r && r->err_len &&
        ch[i].len == sizeof *r + r->samples * sizeof(kv_sample_t) + r->err_len)
        return snprintf(why, size, "%s failed: %.*s", name, (int)r->err_len,
                        ch[i].buf + ch[i].len - r->err_len) > 0;
    if (WIFSIGNALED(st))
        snprintf(why, size, "%s (pid %d) was killed by signal %d (%s)", name, (int)ch[i].pid,
                 WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(why, size, "%s (pid %d) exited with status %d", name, (int)ch[i].pid,
                 WEXITSTATUS(st));
    return false;
}

/* A worker of first..first+n-1 other than @p skip that was killed by a
 * signal, reaped here, its text in @p why; looked for during 200 ms. A
 * peer sees such a death at once (a same-host copy gets ESRCH as soon as
 * the victim's memory is gone, before it can be reaped) and reports its own
 * failure first; the killed worker is the cause to name. */
static bool killed_sibling(const kv_cfg_t *c, child_t *ch, unsigned first, unsigned n,
                           unsigned skip, char *why, size_t size)
{
    uint64_t until = now_ns() + 200000000ull;
    do {
        for (unsigned j = first; j < first + n; j++) {
            int st;
            if (j == skip || ch[j].pid <= 0 || waitpid(ch[j].pid, &st, WNOHANG) != ch[j].pid)
                continue;
            bool killed = WIFSIGNALED(st);
            if (killed)
                failure_text(c, ch, j, st, why, size);
            ch[j].pid = 0;    /* reaped: stop_workers() must not wait for it */
            if (killed)
                return true;
        }
        usleep(5000);
    } while (now_ns() < until);
    return false;
}

/* Called about every 100 ms while collect() waits: 0, or an exit code to
 * stop the run with (its message printed). */
typedef int (*tick_fn)(void *arg);

/* Reads the reports of workers first..first+n-1; the first one that fails
 * ends the wait at once (its text in @p why), so the caller can stop the
 * others. */
static int collect(const kv_cfg_t *c, child_t *ch, unsigned first, unsigned n,
                   tick_fn tick, void *tick_arg, char *why, size_t why_size)
{
    struct pollfd *pf = calloc(n, sizeof *pf);
    if (!pf)
        return runtime_error("kvbench: out of memory");
    uint64_t deadline = now_ns() + (uint64_t)((c->timeout_s + 30) * 1e9);
    unsigned open = n;
    int rc = 0;
    while (rc == 0 && open) {
        for (unsigned i = 0; i < n; i++)
            pf[i] = (struct pollfd){ .fd = ch[first + i].eof ? -1 : ch[first + i].fd,
                                     .events = POLLIN };
        if (now_ns() > deadline) {
            rc = runtime_error("kvbench: workers did not finish in time");
            break;
        }
        if (poll(pf, n, 100) < 0 && errno != EINTR) {
            rc = runtime_error("kvbench: poll: %s", strerror(errno));
            break;
        }
        for (unsigned k = 0; rc == 0 && k < n; k++) {
            unsigned i = first + k;
            if (ch[i].eof || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (read_some(&ch[i]) != 0) {
                rc = runtime_error("kvbench: reading a worker's report failed");
                break;
            }
            if (!ch[i].eof)
                continue;
            open--;
            int st;
            waitpid(ch[i].pid, &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                char name[32];
                worker_name(worker_at(c, i), name, sizeof name);
                bool said = failure_text(c, ch, i, st, why, why_size);
                if (killed_sibling(c, ch, first, n, i, why, why_size))
                    rc = runtime_error("kvbench: %s; stopping the other workers", why);
                else
                    rc = said ? runtime_error("kvbench: %s failed (above); stopping the "
                                              "other workers", name)
                              : runtime_error("kvbench: %s; stopping the other workers", why);
            }
            ch[i].pid = 0;
        }
        if (rc == 0 && tick)
            rc = tick(tick_arg);
    }
    free(pf);
    return rc;
}

static void stop_workers(child_t *ch, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (ch[i].pid > 0)
            kill(ch[i].pid, SIGTERM);
    for (unsigned i = 0; i < n; i++) {
        if (ch[i].pid > 0)
            waitpid(ch[i].pid, NULL, 0);
        if (ch[i].fd > 0)
            close(ch[i].fd);
        free(ch[i].buf);
    }
}

/* ---- report ----------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct pct {
    double p50, p99, max; /* ms */
} pct_t;

static pct_t percentiles(uint64_t *ns, size_t n)
{
    if (!n)
        return (pct_t){ 0, 0, 0 };
    qsort(ns, n, sizeof *ns, cmp_u64);
    size_t i99 = (99 * n + 99) / 100 - 1;   /* ceil(0.99 n) - 1 */
    return (pct_t){ (double)ns[(n - 1) / 2] / 1e6, (double)ns[i99] / 1e6,
                    (double)ns[n - 1] / 1e6 };
}

typedef struct summary {
    uint64_t requests, bytes;
    double   wall_s, gbps, rps, cpu_total_s;
    pct_t    lat;
    pct_t   *per_pair;
} summary_t;

static const kv_sample_t *samples_of(const child_t *ch)
{
    return (const kv_sample_t *)(ch->buf + sizeof(kv_result_t));
}

static int check_reports(const child_t *ch, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (ch[i].len < sizeof(kv_result_t) || result_of(&ch[i])->err_len ||
            ch[i].len != sizeof(kv_result_t) + result_of(&ch[i])->samples * sizeof(kv_sample_t))
            return runtime_error("kvbench: worker %u sent a truncated report", i);
    return 0;
}

static int summarize(const kv_cfg_t *c, const child_t *ch, unsigned n, summary_t *s)
{
    unsigned npairs = pair_count(c);
    size_t total = 0;
    uint64_t t_first = UINT64_MAX, t_last = 0;
    *s = (summary_t){ 0 };
    for (unsigned i = 0; i < n; i++) {
        const kv_result_t *r = result_of(&ch[i]);
        total += r->samples;
        s->cpu_total_s += r->cpu_s;
        if (!is_active(c, worker_at(c, i)))
            continue;
        s->requests += r->requests;
        if (r->requests && r->t_first < t_first)
            t_first = r->t_first;
        if (r->t_last > t_last)
            t_last = r->t_last;
    }
    uint64_t *all = malloc((total + 1) * sizeof *all);
    uint64_t *pp = malloc((total + 1) * sizeof *pp);
    s->per_pair = calloc(npairs, sizeof *s->per_pair);
    if (!all || !pp || !s->per_pair) {
        free(all);
        free(pp);
        return runtime_error("kvbench: out of memory");
    }
    size_t k = 0;
    for (unsigned i = 0; i < n; i++)
        for (uint64_t j = 0; j < result_of(&ch[i])->samples; j++)
            all[k++] = samples_of(&ch[i])[j].ns;
    s->lat = percentiles(all, k);
    for (unsigned p = 0; p < npairs; p++) {
        size_t m = 0;
        for (unsigned i = 0; i < n; i++)
            for (uint64_t j = 0; j < result_of(&ch[i])->samples; j++)
                if (samples_of(&ch[i])[j].pair == p)
                    pp[m++] = samples_of(&ch[i])[j].ns;
        s->per_pair[p] = percentiles(pp, m);
    }
    free(all);
    free(pp);
    s->bytes = s->requests * kv_bytes(c);
    s->wall_s = t_last > t_first ? (double)(t_last - t_first) / 1e9 : 0;
    s->gbps = s->wall_s > 0 ? (double)s->bytes / s->wall_s / 1e9 : 0;
    s->rps = s->wall_s > 0 ? (double)s->requests / s->wall_s : 0;
    return 0;
}

static void print_json(const kv_cfg_t *c, const child_t *ch, unsigned n, const summary_t *s)
{
    printf("{\"op_type\":\"%s\",\"scheme\":\"%s\",\"num_prefill\":%" PRIu64
           ",\"num_decode\":%" PRIu64 ",\"num_layers\":%" PRIu64 ",\"num_blocks\":%" PRIu64
           ",\"block_size\":%" PRIu64 ",\"kv_bytes\":%" PRIu64 ",\"num_iter\":%" PRIu64
           ",\"warmup_iter\":%" PRIu64 ",\"inflight\":%" PRIu64 ",\"check_consistency\":%s"
           ",\"enable_pt\":%s,\"mem\":\"%s\",\"netns\":\"%s%s%s\",\"requests\":%" PRIu64
           ",\"bytes\":%" PRIu64
           ",\"wall_s\":%.6g,\"goodput_gbps\":%.6g,\"requests_per_s\":%.6g"
           ",\"latency_ms\":{\"p50\":%.6g,\"p99\":%.6g,\"max\":%.6g},\"cpu_s_total\":%.6g"
           ",\"cpus\":%ld,\"pairs\":[",
           nxc_op_kind_name(c->op), scheme_names[c->scheme], c->prefill, c->decode,
           c->layers, c->blocks, c->block_size, kv_bytes(c), c->num_iter, c->warmup_iter,
           c->inflight, c->check ? "true" : "false", c->enable_pt ? "true" : "false",
           c->ucx_mem ? "ucx" : "malloc", c->netns[0], c->netns[0][0] ? "," : "", c->netns[1],
           s->requests, s->bytes, s->wall_s, s->gbps, s->rps,
           s->lat.p50, s->lat.p99, s->lat.max, s->cpu_total_s, sysconf(_SC_NPROCESSORS_ONLN));
    for (unsigned p = 0; p < pair_count(c); p++) {
        pair_t pr = pair_at(c, p);
        printf("%s{\"prefill\":%u,\"decode\":%u,\"p50_ms\":%.6g,\"p99_ms\":%.6g,\"max_ms\":%.6g}",
               p ? "," : "", pr.p, pr.d, s->per_pair[p].p50, s->per_pair[p].p99,
               s->per_pair[p].max);
    }
    printf("],\"workers\":[");
    for (unsigned i = 0; i < n; i++) {
        const kv_result_t *r = result_of(&ch[i]);
        char name[32];
        worker_name(worker_at(c, i), name, sizeof name);
        printf("%s{\"name\":\"%s\",\"role\":\"%s\",\"requests\":%" PRIu64 ",\"cpu_s\":%.6g"
               ",\"run_s\":%.6g,\"rss_kib\":%" PRIu64 ",\"fds\":%" PRIu64 "}",
               i ? "," : "", name, is_active(c, worker_at(c, i)) ? "active" : "passive",
               r->requests, r->cpu_s, r->run_s, r->rss_kib, r->fds);
    }
    printf("]}\n");
}

static void print_table(const kv_cfg_t *c, const child_t *ch, unsigned n, const summary_t *s)
{
    char h[32];
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("kvbench: %s (%s), %s, %" PRIu64 " prefill + %" PRIu64 " decode workers\n",
           nxc_op_kind_name(c->op),
           c->op == NXC_OP_WRITE ? "decode exposes writables, prefill writes"
                                 : "prefill exposes readables, decode reads",
           scheme_names[c->scheme], c->prefill, c->decode);
    if (c->netns[0][0])
        printf("network namespaces: prefill in %s, decode in %s\n", c->netns[0], c->netns[1]);
    printf("KV cache per request: %" PRIu64 " layers x %" PRIu64 " blocks x %s = %s; "
           "%" PRIu64 " in flight per pair\n", c->layers, c->blocks,
           human_bytes(c->block_size, h, sizeof h),
           human_bytes(kv_bytes(c), (char[32]){ 0 }, 32), c->inflight);
    printf("goodput      %10.3f GB/s  (%" PRIu64 " requests, %s in %.3f s)\n", s->gbps,
           s->requests, human_bytes(s->bytes, h, sizeof h), s->wall_s);
    printf("requests/s   %10.1f\n", s->rps);
    printf("latency      p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", s->lat.p50, s->lat.p99,
           s->lat.max);
    printf("%-10s %-8s %9s %9s %9s %8s %5s\n", "worker", "role", "requests", "cpu_s",
           "cpu/wall", "rss_MiB", "fds");
    for (unsigned i = 0; i < n; i++) {
        const kv_result_t *r = result_of(&ch[i]);
        char name[32];
        worker_name(worker_at(c, i), name, sizeof name);
        printf("%-10s %-8s %9" PRIu64 " %9.3f %8.0f%% %8.1f %5" PRIu64 "\n", name,
               is_active(c, worker_at(c, i)) ? "active" : "passive", r->requests, r->cpu_s,
               r->run_s > 0 ? 100.0 * r->cpu_s / r->run_s : 0.0, (double)r->rss_kib / 1024,
               r->fds);
    }
    double avail = s->wall_s * (double)cpus;
    printf("CPU: workers used %.2f s of CPU during the run, %ld cores x %.2f s wall = %.0f%%"
           " of the machine%s\n", s->cpu_total_s, cpus, s->wall_s,
           avail > 0 ? 100.0 * s->cpu_total_s / avail : 0.0,
           avail > 0 && s->cpu_total_s > 0.8 * avail ? " (CPU-bound)" : "");
}

/* ---- roles on several hosts: coordination over NATS ------------------------ */

/* With --role, one process per role and host. The prefill process
 * coordinates, on subjects "kvbench.<group>.*": decode processes join it
 * ("join", saying how many decode workers they run and the workload they
 * were given); once every decode worker is accounted for it answers each
 * on "role.<id>" with the run's name and its first decode index (the start
 * barrier), and takes their workers' reports on "result". Every process
 * answers on "alive.<id>" and asks the others there every 500 ms: the NATS
 * server forgets a dead process's subscriptions at once, so a role that
 * died is noticed within about a second. A role that fails says why on
 * "abort"; every role stops there. */

#define COORD_ID "prefill"

typedef struct role_peer {
    char     id[64];
    unsigned first, count;     /* its decode workers */
    unsigned reported;         /* their reports taken: all, and it may leave */
} role_peer_t;

typedef struct role_link {
    const kv_cfg_t    *cfg;
    nxc_nats_t        *nats;
    char               prefix[64];  /* kvbench.<group> */
    char               id[64];      /* this process's */
    nxc_nats_server_t *alive;
    nxc_nats_inbox_t  *abort_in;
    nxc_nats_inbox_t  *own_in;      /* "join" (prefill) or "role.<id>" (decode) */
    nxc_nats_inbox_t  *result_in;   /* prefill: the decode workers' reports */
    role_peer_t        peers[MAX_WORKERS]; /* prefill: the decode processes */
    unsigned           npeers;
    child_t           *ch;          /* prefill: every worker's report */
    unsigned           reported;    /* decode workers whose report arrived */
    uint64_t           next_check;
    bool               told;        /* the failure came from another role */
} role_link_t;

static int link_fail(role_link_t *l, int rc, const char *what)
{
    return nats_error(rc, "kvbench: %s role: %s", l->id, what);
}

static void subject_of(const role_link_t *l, const char *what, char *buf, size_t size)
{
    snprintf(buf, size, "%s.%s", l->prefix, what);
}

/* The workload every role must have been given alike. */
static void workload_text(const kv_cfg_t *c, char *buf, size_t size)
{
    snprintf(buf, size, "op_type=%s scheme=%s num_prefill=%" PRIu64 " num_decode=%" PRIu64
             " num_layers=%" PRIu64 " num_blocks=%" PRIu64 " block_size=%" PRIu64
             " num_iter=%" PRIu64 " warmup_iter=%" PRIu64 " inflight=%" PRIu64 " check=%d",
             nxc_op_kind_name(c->op), scheme_names[c->scheme], c->prefill, c->decode,
             c->layers, c->blocks, c->block_size, c->num_iter, c->warmup_iter, c->inflight,
             c->check);
}

/* Asks role @p id whether it is there: NXC_OK when it answered. */
static int ask_role(role_link_t *l, const char *id)
{
    char subject[160], *text = NULL;
    snprintf(subject, sizeof subject, "%s.alive.%s", l->prefix, id);
    int rc = nxc_nats_request(l->nats, subject, 2000, &text, NULL);
    nxc_nats_free(text);
    return rc;
}

static bool peer_alive(role_link_t *l, const char *id)
{
    int rc = ask_role(l, id);
    /* a late answer (busy machine) is no proof of death */
    return rc != NXC_NATS_ERR_NO_RESPONDERS && rc != NXC_NATS_ERR_CLOSED;
}

static int role_connect(role_link_t *l, const kv_cfg_t *c)
{
    *l = (role_link_t){ .cfg = c };
    snprintf(l->prefix, sizeof l->prefix, "kvbench.%s", c->group);
    if (c->role == ROLE_PREFILL) {
        snprintf(l->id, sizeof l->id, COORD_ID);
    } else {
        char host[32] = "host";
        gethostname(host, sizeof host - 1);
        host[strcspn(host, ". *>")] = '\0';
        snprintf(l->id, sizeof l->id, "decode-%s-%d", host, (int)getpid());
    }
    nxc_nats_config_t nc = { .field_mask = NXC_NATS_CONFIG_TIMEOUT, .timeout_ms = 5000,
                             .creds_file = c->nats_creds };
    if (c->nats_creds)
        nc.field_mask |= NXC_NATS_CONFIG_CREDS;
    int rc = nxc_nats_connect(c->nats, &nc, &l->nats);
    if (rc != NXC_OK)
        return link_fail(l, rc, "cannot connect to NATS");
    if (c->role == ROLE_PREFILL && ask_role(l, COORD_ID) == NXC_OK)
        return runtime_error("kvbench: another prefill role already runs benchmark group "
                             "'%s' on this NATS server", c->group);
    char subject[160];
    subject_of(l, "abort", subject, sizeof subject);
    if ((rc = nxc_nats_subscribe(l->nats, subject, &l->abort_in)) != NXC_OK)
        return link_fail(l, rc, "cannot subscribe");
    snprintf(subject, sizeof subject, "%s.%s%s", l->prefix,
             c->role == ROLE_PREFILL ? "join" : "role.", c->role == ROLE_PREFILL ? "" : l->id);
    if ((rc = nxc_nats_subscribe(l->nats, subject, &l->own_in)) != NXC_OK)
        return link_fail(l, rc, "cannot subscribe");
    if (c->role == ROLE_PREFILL) {
        subject_of(l, "result", subject, sizeof subject);
        if ((rc = nxc_nats_subscribe(l->nats, subject, &l->result_in)) != NXC_OK)
            return link_fail(l, rc, "cannot subscribe");
    }
    snprintf(subject, sizeof subject, "%s.alive.%s", l->prefix, l->id);
    if ((rc = nxc_nats_serve(l->nats, subject, "yes", 3, &l->alive)) != NXC_OK)
        return link_fail(l, rc, "cannot answer on NATS");
    return 0;
}

static void role_close(role_link_t *l)
{
    nxc_nats_close(l->nats); /* also stops its server and inboxes */
}

/* Tells every role why this one stops (unless another role told us): a
 * worker's failure, else our own last message. */
static void role_abort(role_link_t *l, const char *why)
{
    if (!l->nats || l->told)
        return;
    char subject[160], text[700];
    subject_of(l, "abort", subject, sizeof subject);
    int len = snprintf(text, sizeof text, "the %s role failed: %s", l->id,
                       why[0] ? why : last_message());
    nxc_nats_publish(l->nats, subject, text, (size_t)(len < (int)sizeof text ? len
                                                      : (int)sizeof text - 1));
}

/* Another role's failure, or a role gone: an exit code with its message. */
static int role_check(role_link_t *l)
{
    char *msg = NULL;
    size_t len = 0;
    if (nxc_nats_next(l->abort_in, 0, &msg, &len) == NXC_OK) {
        l->told = true;
        int rc = runtime_error("kvbench: %s role: stopped, %.*s", l->id, (int)len, msg);
        nxc_nats_free(msg);
        return rc;
    }
    if (now_ns() < l->next_check)
        return 0;
    l->next_check = now_ns() + 500 * 1000000ull;
    if (l->cfg->role == ROLE_DECODE && !peer_alive(l, COORD_ID))
        return runtime_error("kvbench: %s role: the prefill role is gone from NATS "
                             "(it exited or lost its server)", l->id);
    for (unsigned i = 0; i < l->npeers; i++)
        if (l->peers[i].reported < l->peers[i].count && !peer_alive(l, l->peers[i].id))
            return runtime_error("kvbench: prefill role: the decode role %s (decode "
                                 "workers %u-%u) is gone from NATS (it exited or lost its "
                                 "server)", l->peers[i].id, l->peers[i].first,
                                 l->peers[i].first + l->peers[i].count - 1);
    return 0;
}

/* The prefill role takes one "join <id> <count> <workload>". */
static int take_join(role_link_t *l, const char *msg, unsigned *assigned)
{
    const kv_cfg_t *c = l->cfg;
    char id[64], ours[400];
    unsigned count;
    int at = 0;
    if (sscanf(msg, "join %63s %u %n", id, &count, &at) != 2 || at <= 0)
        return runtime_error("kvbench: prefill role: unexpected message '%.60s'", msg);
    workload_text(c, ours, sizeof ours);
    const char *why = strcmp(msg + at, ours) != 0 ? "was given another workload"
                    : count > c->decode - *assigned ? "brings more decode workers than "
                                                      "--num_decode has left" : NULL;
    if (why)
        return runtime_error("kvbench: prefill role: the decode role %s %s (its: %s %u "
                             "workers; ours: %s, %u of %" PRIu64 " decode workers taken)",
                             id, why, msg + at, count, ours, *assigned, c->decode);
    role_peer_t *p = &l->peers[l->npeers++];
    snprintf(p->id, sizeof p->id, "%s", id);
    p->first = *assigned;
    p->count = count;
    *assigned += count;
    return 0;
}

/* The start barrier, prefill side: every decode worker joined, then each
 * decode role hears the run's name and its first decode index. */
static int gather_roles(role_link_t *l, kv_cfg_t *c)
{
    uint64_t deadline = now_ns() + (uint64_t)(c->join_timeout_s * 1e9);
    unsigned assigned = 0;
    int rc = 0;
    while (rc == 0 && assigned < c->decode) {
        if (now_ns() >= deadline) {
            rc = runtime_error("kvbench: prefill role: decode workers %u-%" PRIu64 " did not "
                               "join within %.0f s (start 'nxc kvbench --role decode' with "
                               "the same --nats, --benchmark_group and workload)", assigned,
                               c->decode - 1, c->join_timeout_s);
            break;
        }
        char *msg = NULL;
        size_t len = 0;
        int nrc = nxc_nats_next(l->own_in, 100, &msg, &len);
        if (nrc == NXC_OK)
            rc = take_join(l, msg, &assigned);
        else if (nrc != NXC_ERR_TIMED_OUT)
            rc = link_fail(l, nrc, "cannot take a join");
        nxc_nats_free(msg);
        if (rc == 0)
            rc = role_check(l);
    }
    for (unsigned i = 0; rc == 0 && i < l->npeers; i++) {
        char subject[160], text[160];
        snprintf(subject, sizeof subject, "%s.role.%s", l->prefix, l->peers[i].id);
        int len = snprintf(text, sizeof text, "start %s %u", c->run, l->peers[i].first);
        int nrc = nxc_nats_send(l->nats, subject, text, (size_t)len, 5000);
        if (nrc != NXC_OK)
            rc = link_fail(l, nrc, "a decode role did not take the start");
    }
    return rc;
}

/* The start barrier, decode side: joins (the prefill role may not be up
 * yet), then waits for the start; *first: our first decode index. */
static int join_run(role_link_t *l, kv_cfg_t *c, unsigned *first)
{
    char subject[160], text[600], work[400];
    subject_of(l, "join", subject, sizeof subject);
    workload_text(c, work, sizeof work);
    int len = snprintf(text, sizeof text, "join %s %" PRIu64 " %s", l->id, c->num_local, work);
    uint64_t deadline = now_ns() + (uint64_t)(c->join_timeout_s * 1e9);
    int rc;
    while ((rc = nxc_nats_send(l->nats, subject, text, (size_t)len, 5000)) ==
           NXC_NATS_ERR_NO_RESPONDERS && now_ns() < deadline) {
        struct timespec ts = { 0, 100 * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (rc == NXC_NATS_ERR_NO_RESPONDERS)
        return runtime_error("kvbench: %s role: no prefill role of benchmark group '%s' on "
                             "NATS within %.0f s (start 'nxc kvbench --role prefill' with "
                             "the same --nats)", l->id, c->group, c->join_timeout_s);
    if (rc != NXC_OK)
        return link_fail(l, rc, "cannot join the run");
    /* the prefill role waits at most its own --join_timeout for the others */
    deadline = now_ns() + (uint64_t)((c->join_timeout_s + 10) * 1e9);
    while ((rc = role_check(l)) == 0) {
        if (now_ns() >= deadline)
            return runtime_error("kvbench: %s role: joined, but the prefill role did not "
                                 "start the run in time", l->id);
        char *msg = NULL;
        size_t mlen = 0;
        int nrc = nxc_nats_next(l->own_in, 100, &msg, &mlen);
        if (nrc == NXC_ERR_TIMED_OUT)
            continue;
        if (nrc != NXC_OK)
            return link_fail(l, nrc, "cannot take the start");
        char run[sizeof c->run];
        int ok = sscanf(msg, "start %71s %u", run, first) == 2 && *first < c->decode;
        nxc_nats_free(msg);
        if (!ok)
            return runtime_error("kvbench: %s role: unexpected start message", l->id);
        snprintf(c->run, sizeof c->run, "%s", run);
        return 0;
    }
    return rc;
}

static void count_report(role_link_t *l, unsigned decode_index)
{
    for (unsigned k = 0; k < l->npeers; k++)
        if (decode_index - l->peers[k].first < l->peers[k].count)
            l->peers[k].reported++;
}

/* The prefill role takes the decode workers' reports ("result <i>\n" and
 * the worker's report as it wrote it to its pipe). */
static int take_results(role_link_t *l)
{
    const kv_cfg_t *c = l->cfg;
    char *msg = NULL;
    size_t len = 0;
    int nrc;
    while ((nrc = nxc_nats_next(l->result_in, 0, &msg, &len)) == NXC_OK) {
        unsigned i;
        int at = 0;
        bool ok = sscanf(msg, "result %u\n%n", &i, &at) == 1 && at > 0 &&
                  i >= c->prefill && i < c->prefill + c->decode && !l->ch[i].buf;
        if (ok && (l->ch[i].buf = malloc(len - (size_t)at + 1)) != NULL) {
            memcpy(l->ch[i].buf, msg + at, len - (size_t)at);
            l->ch[i].len = len - (size_t)at;
            l->reported++;
            count_report(l, i - (unsigned)c->prefill);
        }
        nxc_nats_free(msg);
        if (!ok)
            return runtime_error("kvbench: prefill role: unexpected or repeated report");
        if (!l->ch[i].buf)
            return runtime_error("kvbench: out of memory");
    }
    return nrc == NXC_ERR_TIMED_OUT ? 0 : link_fail(l, nrc, "cannot take a report");
}

static int prefill_tick(void *arg)
{
    role_link_t *l = arg;
    int rc = role_check(l);
    return rc ? rc : take_results(l);
}

static int decode_tick(void *arg)
{
    return role_check(arg);
}

/* Sends each local worker's report to the prefill role. */
static int send_results(role_link_t *l, const child_t *ch, unsigned first, unsigned n)
{
    char subject[160];
    subject_of(l, "result", subject, sizeof subject);
    for (unsigned i = first; i < first + n; i++) {
        char head[32];
        int hl = snprintf(head, sizeof head, "result %u\n", i);
        size_t len = (size_t)hl + ch[i].len;
        if (len > nxc_nats_max_message(l->nats))
            return runtime_error("kvbench: %s role: a report of %zu bytes exceeds the NATS "
                                 "server's max_payload (%zu); fewer --num_iter", l->id, len,
                                 nxc_nats_max_message(l->nats));
        char *msg = malloc(len);
        if (!msg)
            return runtime_error("kvbench: out of memory");
        memcpy(msg, head, (size_t)hl);
        memcpy(msg + hl, ch[i].buf, ch[i].len);
        int rc = nxc_nats_send(l->nats, subject, msg, len, 10000);
        free(msg);
        if (rc != NXC_OK)
            return link_fail(l, rc, "the prefill role did not take a report");
    }
    return 0;
}

/* Waits for the decode workers' reports after the local workers ended. */
static int await_results(role_link_t *l)
{
    uint64_t deadline = now_ns() + (uint64_t)((l->cfg->timeout_s + 30) * 1e9);
    int rc = 0;
    while (rc == 0 && l->reported < l->cfg->decode) {
        if (now_ns() >= deadline)
            return runtime_error("kvbench: prefill role: the decode workers' reports did "
                                 "not arrive in time");
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
        rc = prefill_tick(l);
    }
    return rc;
}

/* ---- the three ways to run -------------------------------------------------- */

static int report(const kv_cfg_t *c, child_t *ch, unsigned n)
{
    int rc = check_reports(ch, n);
    summary_t s = { 0 };
    if (rc == 0)
        rc = summarize(c, ch, n, &s);
    if (rc == 0 && c->json)
        print_json(c, ch, n, &s);
    else if (rc == 0)
        print_table(c, ch, n, &s);
    free(s.per_pair);
    return rc;
}

/* Both roles here: this process starts and watches every worker. */
static int run_here(kv_cfg_t *c, child_t *ch, unsigned n)
{
    nats_proc_t np = { 0 };
    int rc = 0;
    if (!c->nats && (rc = start_nats(&np)) == 0)
        c->nats = np.url;
    char why[700];
    if (rc == 0)
        rc = spawn_workers(c, ch, 0, n);
    if (rc == 0)
        rc = collect(c, ch, 0, n, NULL, NULL, why, sizeof why);
    if (rc == 0)
        rc = report(c, ch, n);
    stop_workers(ch, n);
    stop_nats(&np);
    return rc;
}

static int run_prefill_role(kv_cfg_t *c, child_t *ch, unsigned n)
{
    role_link_t *l = calloc(1, sizeof *l);
    if (!l)
        return runtime_error("kvbench: out of memory");
    int rc = role_connect(l, c);
    l->ch = ch;
    if (rc == 0)
        rc = gather_roles(l, c);
    char why[700] = "";
    unsigned np = (unsigned)c->prefill;
    if (rc == 0)
        rc = spawn_workers(c, ch, 0, np);
    if (rc == 0)
        rc = collect(c, ch, 0, np, prefill_tick, l, why, sizeof why);
    if (rc == 0)
        rc = await_results(l);
    if (rc == 0)
        rc = report(c, ch, n);
    if (rc != 0)
        role_abort(l, why);
    stop_workers(ch, n);
    role_close(l);
    free(l);
    return rc;
}

static int run_decode_role(kv_cfg_t *c, child_t *ch)
{
    role_link_t *l = calloc(1, sizeof *l);
    if (!l)
        return runtime_error("kvbench: out of memory");
    unsigned first = 0, nl = (unsigned)c->num_local;
    int rc = role_connect(l, c);
    if (rc == 0)
        rc = join_run(l, c, &first);
    first += (unsigned)c->prefill;
    char why[700] = "";
    if (rc == 0)
        rc = spawn_workers(c, ch, first, nl);
    if (rc == 0)
        rc = collect(c, ch, first, nl, decode_tick, l, why, sizeof why);
    if (rc == 0)
        rc = send_results(l, ch, first, nl);
    if (rc == 0 && !c->json)
        printf("kvbench: decode workers %u-%u done; the prefill role prints the results\n",
               first - (unsigned)c->prefill, first - (unsigned)c->prefill + nl - 1);
    if (rc != 0)
        role_abort(l, why);
    stop_workers(ch, (unsigned)(c->prefill + c->decode));
    role_close(l);
    free(l);
    return rc;
}

static int kv_run(kv_cfg_t *cfg)
{
    unsigned n = (unsigned)(cfg->prefill + cfg->decode);
    child_t *ch = calloc(n, sizeof *ch);
    if (!ch)
        return runtime_error("kvbench: out of memory");
    int rc = cfg->role == ROLE_PREFILL ? run_prefill_role(cfg, ch, n)
           : cfg->role == ROLE_DECODE  ? run_decode_role(cfg, ch)
                                       : run_here(cfg, ch, n);
    free(ch);
    return rc;
}
#endif /* NXC_HAVE_NATS */
