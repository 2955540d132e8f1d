/* nxc bench, passive worker: owns the memory, creates readable or writable
 * operations on request, sends their metadata over the channel and waits
 * for them to complete. Commands (one line each, from the active worker):
 *   CFG KIND SIZE DESCS  allocate buffers        -> OK
 *   VERIFY SEED          one checked op          -> MD json, then VOK | VBAD ...
 *   BATCH N              N ops created up front  -> N x MD json, then TS t1..tN
 *   CYCLE N              N ops one at a time     -> MD json (each), then CDONE
 *   WAKES                wake-up counters        -> WAKES sleeps fd fired served
 *   QUIT                 exit 0
 * Any failure is reported as "ERR <sentence>" and ends the worker. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nxc_bench.h"
#include "nxc_chan.h"

typedef struct passive {
    const bench_cfg_t *cfg;
    nxc_connector_t   *conn;
    chan_t             ch;
    bench_buf_t        buf;
    nxc_op_kind_t      kind;
} passive_t;

/* Reports a failure to the active worker (or on stderr if it is gone). */
static int fail(passive_t *p, const char *fmt, ...) NXC_PRINTF(2, 3);
static int fail(passive_t *p, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++)
        if (*c == '\n')
            *c = ' ';
    if (chan_sendf(&p->ch, "ERR %s", msg) != 0)
        fprintf(stderr, "nxc: bench: passive worker: %s\n", msg);
    return -1;
}

static int fail_lib(passive_t *p, int rc, const char *what)
{
    const char *detail = nxc_last_error();
    return fail(p, "%s: %s (%s)", what, nxc_strerror(rc), detail);
}

static int fail_op(passive_t *p, nxc_op_t *op, int rc, const char *what)
{
    const char *detail = "";
    if (nxc_op_error(op, &detail) == NXC_OK || !detail)
        detail = "";
    return fail(p, "%s: %s (%s)", what, nxc_strerror(rc), detail);
}

static int send_line(passive_t *p, const char *fmt, ...) NXC_PRINTF(2, 3);
static int send_line(passive_t *p, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (chan_sendf(&p->ch, "%s", line) != 0) {
        fprintf(stderr, "nxc: bench: passive worker: the channel broke\n");
        return -1;
    }
    return 0;
}

static int create_op(passive_t *p, nxc_op_t **op)
{
    int rc = p->kind == NXC_OP_READ
                 ? nxc_create_readable(p->conn, p->buf.descs, p->buf.n, op)
                 : nxc_create_writable(p->conn, p->buf.descs, p->buf.n, op);
    if (rc != NXC_OK)
        return fail_lib(p, rc, p->kind == NXC_OP_READ ? "create_readable"
                                                      : "create_writable");
    return 0;
}

static int send_metadata(passive_t *p, nxc_op_t *op)
{
    const char *json;
    size_t len;
    int rc = nxc_op_metadata(op, &json, &len);
    if (rc != NXC_OK)
        return fail_lib(p, rc, "op_metadata");
    if (memchr(json, '\n', len))
        return fail(p, "the metadata text contains a newline");
    if (chan_send2(&p->ch, "MD ", json, len) != 0) {
        fprintf(stderr, "nxc: bench: passive worker: the channel broke\n");
        return -1;
    }
    return 0;
}

static int wait_done(passive_t *p, nxc_op_t *op)
{
    int rc = wait_op(op, p->cfg->timeout);
    if (rc != NXC_OK)
        return fail_op(p, op, rc, "waiting for a passive op");
    return 0;
}

static int cmd_cfg(passive_t *p, const char *args)
{
    int kind;
    unsigned long long size, descs;
    if (sscanf(args, "%d %llu %llu", &kind, &size, &descs) != 3 || descs == 0)
        return fail(p, "bad CFG '%s'", args);
    bench_buf_free(&p->buf);
    p->kind = (nxc_op_kind_t)kind;
    if (bench_buf_alloc(&p->buf, size, (size_t)descs, p->cfg->mem, p->conn) != 0)
        return fail(p, "cannot allocate %llu bytes", size);
    return send_line(p, "OK");
}

/* Test hook: with NXC_BENCH_CORRUPT set, one byte is damaged on this side,
 * so that the tests can see the data check fail loudly. */
static void maybe_corrupt(passive_t *p)
{
    if (getenv("NXC_BENCH_CORRUPT") && p->buf.size > 0)
        p->buf.base[p->buf.size / 2] ^= 0x5a;
}

/* One op whose data is checked: READ exposes the pattern, WRITE checks it. */
static int cmd_verify(passive_t *p, const char *args)
{
    unsigned long long seed;
    nxc_op_t *op = NULL;
    if (sscanf(args, "%llu", &seed) != 1)
        return fail(p, "bad VERIFY '%s'", args);
    if (p->kind == NXC_OP_READ)
        pattern_fill(p->buf.base, p->buf.size, seed);
    else
        memset(p->buf.base, 0, p->buf.size);
    if (p->kind == NXC_OP_READ)
        maybe_corrupt(p);
    if (create_op(p, &op) || send_metadata(p, op) || wait_done(p, op)) {
        nxc_op_release(op);
        return -1;
    }
    nxc_op_release(op);
    if (p->kind == NXC_OP_WRITE)
        maybe_corrupt(p);
    int64_t bad = p->kind == NXC_OP_WRITE
                      ? pattern_check(p->buf.base, p->buf.size, seed) : -1;
    if (bad >= 0)
        return send_line(p, "VBAD %lld %u %u", (long long)bad,
                         p->buf.base[bad], pattern_byte((uint64_t)bad, seed));
    return send_line(p, "VOK");
}

static void release_all(nxc_op_t **ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        nxc_op_release(ops[i]);
}

/* Sends "TS t1 ... tn": when each op's wait returned (CLOCK_MONOTONIC ns). */
static int send_times(passive_t *p, const uint64_t *ts, size_t n)
{
    char line[BENCH_BATCH_MAX * 24 + 8];
    size_t off = (size_t)snprintf(line, sizeof line, "TS");
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(line + off, sizeof line - off, " %llu",
                                (unsigned long long)ts[i]);
    if (chan_sendf(&p->ch, "%s", line) != 0) {
        fprintf(stderr, "nxc: bench: passive worker: the channel broke\n");
        return -1;
    }
    return 0;
}

static int cmd_batch(passive_t *p, const char *args)
{
    nxc_op_t *ops[BENCH_BATCH_MAX] = { 0 };
    uint64_t ts[BENCH_BATCH_MAX];
    size_t n = (size_t)strtoul(args, NULL, 10), made = 0;
    int rc = 0;
    if (n == 0 || n > BENCH_BATCH_MAX)
        return fail(p, "bad BATCH '%s'", args);
    for (; made < n && rc == 0; made++)
        rc = create_op(p, &ops[made]);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = send_metadata(p, ops[i]);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = wait_done(p, ops[i]);
        ts[i] = now_ns();
    }
    release_all(ops, made);
    return rc ? rc : send_times(p, ts, n);
}

static int cmd_cycle(passive_t *p, const char *args)
{
    unsigned long long n = strtoull(args, NULL, 10);
    for (unsigned long long i = 0; i < n; i++) {
        nxc_op_t *op = NULL;
        int rc = create_op(p, &op);
        if (rc == 0)
            rc = send_metadata(p, op);
        if (rc == 0)
            rc = wait_done(p, op);
        nxc_op_release(op);
        if (rc)
            return rc;
    }
    return send_line(p, "CDONE");
}

static int cmd_wakes(passive_t *p)
{
    nxc_wakeup_stats_t w;
    int rc = nxc_connector_wakeups(p->conn, &w);
    if (rc != NXC_OK)
        return fail_lib(p, rc, "connector_wakeups");
    return send_line(p, "WAKES %llu %llu %llu %llu", (unsigned long long)w.sleeps,
                     (unsigned long long)w.fd_wakeups, (unsigned long long)w.backstop_fired,
                     (unsigned long long)w.backstop_served);
}

/* Runs one command; 1 after QUIT. */
static int dispatch(passive_t *p, const char *line)
{
    if (strncmp(line, "CFG ", 4) == 0)    return cmd_cfg(p, line + 4);
    if (strncmp(line, "VERIFY ", 7) == 0) return cmd_verify(p, line + 7);
    if (strncmp(line, "BATCH ", 6) == 0)  return cmd_batch(p, line + 6);
    if (strncmp(line, "CYCLE ", 6) == 0)  return cmd_cycle(p, line + 6);
    if (strcmp(line, "WAKES") == 0)       return cmd_wakes(p);
    if (strcmp(line, "QUIT") == 0)        return 1;
    return fail(p, "unknown command '%.40s'", line);
}

int bench_passive(const bench_cfg_t *cfg, int fd)
{
    passive_t p = { .cfg = cfg };
    chan_init(&p.ch, fd);
    p.ch.spin_us = cfg->chan_spin_us;
    if (bench_connector(cfg, "passive", &p.conn) != 0)
        return NXC_EXIT_RUNTIME;
    int rc = 0;
    while (rc == 0) {
        char *line;
        long n = chan_recv(&p.ch, &line, -1);
        if (n < 0) {
            rc = -1; /* the active worker went away: it reports why */
            break;
        }
        rc = dispatch(&p, line);
    }
    bench_buf_free(&p.buf);
    nxc_connector_destroy(p.conn);
    chan_free(&p.ch);
    return rc == 1 ? NXC_EXIT_OK : NXC_EXIT_RUNTIME;
}
