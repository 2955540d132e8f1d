/* nxc bench, active worker: drives the sweep, moves the data, measures, and
 * prints the results (see nxc_bench_passive.c for the protocol). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nxc_bench.h"
#include "nxc_chan.h"

typedef struct active {
    const bench_cfg_t *cfg;
    nxc_connector_t   *conn;
    chan_t             ch;
    bench_buf_t        buf;
    nxc_op_kind_t      kind;
    char               label[64];  /* "read 1 MiB x1" */
    bool               tty;        /* live progress on stderr */
    uint64_t           shown_ns;   /* when the progress line was drawn */
    bool               shown;      /* a progress line is on screen */
} active_t;

/* ---- progress line --------------------------------------------------------- */

static void progress(active_t *a, const char *phase, uint64_t done, uint64_t total)
{
    uint64_t t = now_ns();
    if (!a->tty || t - a->shown_ns < 100000000ull)
        return;
    a->shown_ns = t;
    a->shown = true;
    if (total)
        fprintf(stderr, "\r\033[K%s: %s %" PRIu64 "/%" PRIu64, a->label, phase,
                done, total);
    else
        fprintf(stderr, "\r\033[K%s: %s %" PRIu64, a->label, phase, done);
}

static void progress_clear(active_t *a)
{
    if (a->shown)
        fputs("\r\033[K", stderr);
    a->shown = false;
}

/* ---- channel --------------------------------------------------------------- */

static int send_cmd(active_t *a, const char *fmt, ...) NXC_PRINTF(2, 3);
static int send_cmd(active_t *a, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (chan_sendf(&a->ch, "%s", line) != 0)
        return runtime_error("bench: the passive worker went away");
    return 0;
}

/* The next line, which must start with @p prefix; *rest follows it. */
static int expect(active_t *a, const char *prefix, char **rest, size_t *len)
{
    char *line;
    int ms = (int)(a->cfg->timeout * 1000);
    long n = chan_recv(&a->ch, &line, ms);
    if (n < 0 || strncmp(line, prefix, strlen(prefix)) != 0)
        progress_clear(a);
    if (n < 0)
        return runtime_error("bench: passive worker: %s", chan_strerror(n));
    if (strncmp(line, "ERR ", 4) == 0)
        return runtime_error("bench: passive worker failed: %s", line + 4);
    size_t pl = strlen(prefix);
    if (strncmp(line, prefix, pl) != 0)
        return runtime_error("bench: unexpected message from the passive "
                             "worker: '%.60s'", line);
    *rest = line + pl;
    if (len)
        *len = (size_t)n - pl;
    return 0;
}

static int recv_metadata(active_t *a, nxc_metadata_t **md)
{
    char *json;
    size_t len;
    if (expect(a, "MD ", &json, &len) != 0)
        return -1;
    int rc = nxc_metadata_parse(json, len, md);
    if (rc != NXC_OK)
        return lib_error(rc, "bench: cannot parse the passive worker's metadata");
    return 0;
}

/* ---- one transfer -------------------------------------------------------- */

static const char *kind_word(nxc_op_kind_t k)
{
    return k == NXC_OP_READ ? "read" : "write";
}

static int transfer(active_t *a, const nxc_metadata_t *md, uint64_t *t_begin,
                    uint64_t *t_end)
{
    nxc_op_t *op = NULL;
    uint64_t t0 = now_ns();
    int rc = a->kind == NXC_OP_READ
                 ? nxc_begin_read(a->conn, md, a->buf.descs, a->buf.n, &op)
                 : nxc_begin_write(a->conn, a->buf.descs, a->buf.n, md, &op);
    if (rc != NXC_OK) {
        progress_clear(a);
        return lib_error(rc, "bench: begin_%s (%s)", kind_word(a->kind), a->label);
    }
    rc = wait_op(op, a->cfg->timeout);
    uint64_t t1 = now_ns();
    if (rc != NXC_OK) {
        progress_clear(a);
        op_error(op, rc, "bench: %s (%s)", kind_word(a->kind), a->label);
        nxc_op_release(op);
        return -1;
    }
    nxc_op_release(op);
    if (t_begin)
        *t_begin = t0;
    if (t_end)
        *t_end = t1;
    return 0;
}

/* ---- data check ------------------------------------------------------------ */

static int verify(active_t *a, uint64_t seed)
{
    nxc_metadata_t *md = NULL;
    char *rest;
    if (a->kind == NXC_OP_READ)
        memset(a->buf.base, 0, a->buf.size);
    else
        pattern_fill(a->buf.base, a->buf.size, seed);
    if (send_cmd(a, "VERIFY %" PRIu64, seed) || recv_metadata(a, &md))
        return -1;
    int rc = transfer(a, md, NULL, NULL);
    nxc_metadata_free(md);
    if (rc)
        return -1;
    int64_t bad = a->kind == NXC_OP_READ
                      ? pattern_check(a->buf.base, a->buf.size, seed) : -1;
    if (bad >= 0)
        return runtime_error("bench: DATA CHECK FAILED (%s): byte %" PRId64
                             " read as 0x%02x, expected 0x%02x", a->label, bad,
                             a->buf.base[bad], pattern_byte((uint64_t)bad, seed));
    if (expect(a, "V", &rest, NULL) != 0)
        return -1;
    if (strcmp(rest, "OK") != 0)
        return runtime_error("bench: DATA CHECK FAILED (%s): the passive worker "
                             "found (offset, got, expected) = %s", a->label,
                             rest + 4);
    return 0;
}

/* ---- batches: the data path, metadata in hand ------------------------------- */

typedef struct measure {
    samples_t lat, plat;
    uint64_t  busy_ns, ops;
} measure_t;

static int recv_times(active_t *a, const uint64_t *t0, size_t n, measure_t *m)
{
    char *rest, *end;
    if (expect(a, "TS", &rest, NULL) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint64_t ts = strtoull(rest, &end, 10);
        if (end == rest)
            return runtime_error("bench: bad timestamps from the passive worker");
        rest = end;
        if (m && samples_push(&m->plat, ts > t0[i] ? ts - t0[i] : 0) != 0)
            return -1;
    }
    return 0;
}

/* --passive-idle: lets the passive worker fall asleep before the next op.
 * Sleeping here idles the active side too (its CPU may halt, its caches
 * cool), which costs the next op tens to hundreds of microseconds even
 * when the passive never sleeps; --active-busy keeps it awake instead. */
static void idle_before_op(const active_t *a)
{
    long ms = a->cfg->passive_idle_ms;
    if (ms <= 0)
        return;
    if (a->cfg->active_busy) {
        uint64_t until = now_ns() + (uint64_t)ms * 1000000u;
        while (now_ns() < until)
            ;
        return;
    }
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* N ops: the passive side creates them all and sends their metadata first;
 * only begin -> completion is timed here. */
static int run_batch(active_t *a, size_t n, measure_t *m)
{
    nxc_metadata_t *md[BENCH_BATCH_MAX] = { 0 };
    uint64_t t0[BENCH_BATCH_MAX], t1;
    int rc = send_cmd(a, "BATCH %zu", n);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = recv_metadata(a, &md[i]);
    for (size_t i = 0; i < n && rc == 0; i++) {
        idle_before_op(a);
        rc = transfer(a, md[i], &t0[i], &t1);
        if (rc == 0 && m) {
            m->busy_ns += t1 - t0[i];
            m->ops++;
            rc = samples_push(&m->lat, t1 - t0[i]);
        }
    }
    if (rc == 0)
        rc = recv_times(a, t0, n, m);
    for (size_t i = 0; i < n; i++)
        nxc_metadata_free(md[i]);
    return rc;
}

static size_t batch_size(const active_t *a, uint64_t remaining)
{
    uint64_t cap = 65536 / a->buf.n;
    if (cap > BENCH_BATCH_MAX)
        cap = BENCH_BATCH_MAX;
    if (cap < 1)
        cap = 1;
    return (size_t)(remaining < cap ? remaining : cap);
}

/* Runs @p count ops (or, with --duration and m set, for that long). */
static int run_ops(active_t *a, const char *phase, uint64_t count, measure_t *m)
{
    bool by_time = m && a->cfg->duration > 0;
    uint64_t start = now_ns(), limit = (uint64_t)(a->cfg->duration * 1e9), done = 0;
    while (by_time ? now_ns() - start < limit : done < count) {
        size_t n = batch_size(a, by_time ? BENCH_BATCH_MAX : count - done);
        if (run_batch(a, n, m) != 0)
            return -1;
        done += n;
        progress(a, phase, done, by_time ? 0 : count);
    }
    return 0;
}

/* ---- full cycle ------------------------------------------------------------ */

static int cycle_once(active_t *a)
{
    nxc_metadata_t *md = NULL;
    if (recv_metadata(a, &md) != 0)
        return -1;
    int rc = transfer(a, md, NULL, NULL);
    nxc_metadata_free(md);
    return rc;
}

static int run_cycle(active_t *a, uint64_t n)
{
    char *rest;
    if (send_cmd(a, "CYCLE %" PRIu64, n) != 0)
        return -1;
    for (uint64_t i = 0; i < n; i++)
        if (cycle_once(a) != 0)
            return -1;
    return expect(a, "CDONE", &rest, NULL);
}

/* Ops per second of the whole loop, in chunks of at most 16 cycles. */
static int measure_cycle(active_t *a, uint64_t count, bench_result_t *r)
{
    bool by_time = a->cfg->duration > 0;
    uint64_t limit = (uint64_t)(a->cfg->duration * 1e9), done = 0;
    uint64_t start = now_ns();
    while (by_time ? now_ns() - start < limit : done < count) {
        uint64_t n = by_time ? 16 : (count - done < 16 ? count - done : 16);
        if (run_cycle(a, n) != 0)
            return -1;
        done += n;
        progress(a, "cycle", done, by_time ? 0 : count);
    }
    r->cycle_iters = done;
    r->cycle_ops_per_s = (double)done / ((double)(now_ns() - start) / 1e9);
    return 0;
}

/* ---- the passive worker's wake-ups ------------------------------------------ */

typedef struct wakes {
    unsigned long long sleeps, fd, fired, served;
} wakes_t;

static int passive_wakes(active_t *a, wakes_t *w)
{
    char *rest;
    if (send_cmd(a, "WAKES") != 0 || expect(a, "WAKES ", &rest, NULL) != 0)
        return -1;
    if (sscanf(rest, "%llu %llu %llu %llu", &w->sleeps, &w->fd, &w->fired, &w->served) != 4)
        return runtime_error("bench: bad WAKES line from the passive worker");
    return 0;
}

/* ---- one configuration ------------------------------------------------------ */

static int setup(active_t *a, nxc_op_kind_t kind, uint64_t size, uint64_t descs)
{
    char h[32];
    a->kind = kind;
    snprintf(a->label, sizeof a->label, "%s %s x%" PRIu64, kind_word(kind),
             human_bytes(size, h, sizeof h), descs);
    bench_buf_free(&a->buf);
    if (bench_buf_alloc(&a->buf, size, (size_t)descs, a->cfg->mem, a->conn) != 0)
        return -1;
    char *rest;
    if (send_cmd(a, "CFG %d %" PRIu64 " %" PRIu64, (int)kind, size, descs) != 0)
        return -1;
    return expect(a, "OK", &rest, NULL);
}

static void summarize(active_t *a, measure_t *m, bench_result_t *r)
{
    r->iters = m->ops;
    r->gbps = m->busy_ns ? (double)a->buf.size * (double)m->ops / (double)m->busy_ns : 0;
    r->lat_p50_us = samples_percentile_us(&m->lat, 50);
    r->lat_p90_us = samples_percentile_us(&m->lat, 90);
    r->lat_p99_us = samples_percentile_us(&m->lat, 99);
    r->plat_p50_us = samples_percentile_us(&m->plat, 50);
    r->plat_p90_us = samples_percentile_us(&m->plat, 90);
    r->plat_p99_us = samples_percentile_us(&m->plat, 99);
}

static int run_config(active_t *a, nxc_op_kind_t kind, uint64_t size, uint64_t descs)
{
    bench_result_t r = { .kind = kind, .size = size, .descs = descs,
                         .desc_size = size / descs, .warmup = a->cfg->warmup };
    measure_t m = { 0 };
    wakes_t w0, w1;
    uint64_t iters = bench_iters(a->cfg, size);
    uint64_t seed = size * 31 + descs * 7 + (uint64_t)kind;
    int rc = setup(a, kind, size, descs);
    if (rc == 0)
        rc = verify(a, seed);
    if (rc == 0 && a->cfg->warmup)
        rc = run_ops(a, "warmup", a->cfg->warmup, NULL);
    if (rc == 0)
        rc = passive_wakes(a, &w0);
    if (rc == 0)
        rc = run_ops(a, "timed", iters, &m);
    if (rc == 0)
        rc = passive_wakes(a, &w1);
    if (rc == 0 && a->cfg->passive_idle_ms < 0)
        rc = measure_cycle(a, iters, &r);
    progress_clear(a);
    if (rc == 0) {
        summarize(a, &m, &r);
        r.pasv_sleeps = w1.sleeps - w0.sleeps;
        r.pasv_backstop_fired = w1.fired - w0.fired;
        r.pasv_backstop_served = w1.served - w0.served;
        rc = report_result(a->cfg, &r);
    }
    samples_free(&m.lat);
    samples_free(&m.plat);
    return rc;
}

static int sweep_kind(active_t *a, nxc_op_kind_t kind)
{
    const bench_cfg_t *cfg = a->cfg;
    for (size_t s = 0; s < cfg->nsizes; s++)
        for (size_t d = 0; d < cfg->ndescs; d++) {
            if (cfg->sizes[s] < cfg->descs[d]) {
                report_skip(cfg, kind, cfg->sizes[s], cfg->descs[d]);
                continue;
            }
            if (run_config(a, kind, cfg->sizes[s], cfg->descs[d]) != 0)
                return -1;
        }
    return 0;
}

int bench_active(const bench_cfg_t *cfg, int fd)
{
    active_t a = { .cfg = cfg, .tty = isatty(2) != 0 };
    chan_init(&a.ch, fd);
    a.ch.spin_us = cfg->chan_spin_us;
    if (bench_connector(cfg, "active", &a.conn) != 0)
        return NXC_EXIT_RUNTIME;
    report_header(cfg);
    int rc = 0;
    if (cfg->op_read)
        rc = sweep_kind(&a, NXC_OP_READ);
    if (rc == 0 && cfg->op_write)
        rc = sweep_kind(&a, NXC_OP_WRITE);
    if (rc == 0)
        rc = send_cmd(&a, "QUIT");
    bench_buf_free(&a.buf);
    nxc_connector_destroy(a.conn);
    chan_free(&a.ch);
    return rc == 0 ? NXC_EXIT_OK : NXC_EXIT_RUNTIME;
}
