/* Shared helpers of the end-to-end tests; see e2e_common.h. */
#include "e2e_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef NXC_TEST_PEER
#error "NXC_TEST_PEER (path of nxc_test_peer) must be defined"
#endif

#define MAX_PEERS 64

static const char *g_name = "e2e";
static volatile pid_t g_peers[MAX_PEERS];
static _Thread_local char g_last_err[1024];
static uint64_t g_rng = 88172645463325252ull;

/* ---------- failure, alarm, cleanup ---------- */

static void kill_all_peers(void)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        pid_t pid = g_peers[i];
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            g_peers[i] = 0;
        }
    }
}

static void register_peer(pid_t pid)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (__sync_bool_compare_and_swap(&g_peers[i], 0, pid)) return;
}

static void unregister_peer(pid_t pid)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (g_peers[i] == pid) g_peers[i] = 0;
}

static _Thread_local int g_snapped;

void e2e_snap(void)
{
    snprintf(g_last_err, sizeof g_last_err, "%s", nxc_last_error());
    g_snapped = 1;
}

void e2e_fail(const char *file, int line, const char *what, const char *fmt, ...)
{
    if (!g_snapped) e2e_snap();
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s [%s]: FAIL at %s:%d: %s %s\n    nxc_last_error(): \"%s\"\n",
            g_name, e2e_transport(), file, line, what, msg, g_last_err);
    fflush(stderr);
    kill_all_peers();
    printf("%s [%s]: FAIL\n", g_name, e2e_transport());
    fflush(stdout);
    _exit(1);
}

/* The last steps and when each began, so that an alarm says where the
 * time went, not only where it ran out. */
enum { STEP_LOG = 8 };
static const char *volatile g_steps[STEP_LOG] = { "start" };
static volatile long g_step_ms[STEP_LOG];
static volatile unsigned g_nsteps = 1;

static long monotonic_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t); /* async-signal-safe */
    return (long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void e2e_step(const char *what)
{
    unsigned i = g_nsteps % STEP_LOG;
    g_step_ms[i] = monotonic_ms();
    g_steps[i] = what;
    g_nsteps = g_nsteps + 1;
}

/* write(2) only: we are in a signal handler. */
static void say(const char *s)
{
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void say_ms(long ms)
{
    char buf[24];
    int n = sizeof buf;
    buf[--n] = '\0';
    do
        buf[--n] = (char)('0' + ms % 10);
    while ((ms /= 10) > 0 && n > 0);
    say(buf + n);
    say(" ms");
}

static void on_alarm(int sig)
{
    (void)sig;
    long now = monotonic_ms();
    unsigned last = g_nsteps - 1;
    say(g_name);
    say(": TIMEOUT (alarm) during step: ");
    say(g_steps[last % STEP_LOG]);
    say(" - killing peers\n");
    unsigned first = last >= STEP_LOG - 1 ? last - (STEP_LOG - 1) : 1;
    for (unsigned i = first; i <= last; i++) {
        long end = i == last ? now : g_step_ms[(i + 1) % STEP_LOG];
        say("  step ");
        say(g_steps[i % STEP_LOG]);
        say(": ");
        say_ms(end - g_step_ms[i % STEP_LOG]);
        say(i == last ? " (running)\n" : "\n");
    }
    for (int i = 0; i < MAX_PEERS; i++) {
        pid_t pid = g_peers[i];
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
    _exit(2);
}

const char *e2e_transport(void)
{
    const char *t = getenv("UCX_TLS");
    return t && *t ? t : "default";
}

unsigned e2e_init(const char *test_name, unsigned alarm_seconds)
{
    g_name = test_name;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(alarm_seconds);
    unsigned seed;
    const char *s = getenv("NXC_E2E_SEED");
    if (s && *s)
        seed = (unsigned)strtoul(s, NULL, 0);
    else
        seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
    g_rng = 0x9E3779B97F4A7C15ull * (seed + 1);
    if (strcmp(test_name, "nxc_test_peer") != 0)
        fprintf(stderr, "%s [%s]: seed %u (set NXC_E2E_SEED to repeat)\n", test_name,
                e2e_transport(), seed);
    return seed;
}

static int g_soft_failures;

void e2e_soft_fail(const char *file, int line, const char *what, const char *fmt, ...)
{
    if (!g_snapped) e2e_snap();
    g_snapped = 0;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s [%s]: FAIL at %s:%d: %s %s\n    nxc_last_error(): \"%s\"\n",
            g_name, e2e_transport(), file, line, what, msg, g_last_err);
    g_soft_failures++;
}

int e2e_pass(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_soft_failures) {
        printf("%s [%s]: FAIL (%d failed checks; otherwise: %s)\n", g_name, e2e_transport(),
               g_soft_failures, msg);
        return 1;
    }
    printf("%s [%s]: PASS (%s)\n", g_name, e2e_transport(), msg);
    return 0;
}

double e2e_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void e2e_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int e2e_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL, "cannot open /proc/self/fd: %s", strerror(errno));
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the DIR's own fd */
}

long e2e_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL, "cannot open /proc/self/status: %s", strerror(errno));
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    CHECK(kib > 0, "no VmRSS in /proc/self/status");
    return kib;
}

uint32_t e2e_rand(void)
{
    /* xorshift64*, not thread-safe: call from one thread */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (uint32_t)((g_rng * 2685821657736338717ull) >> 32);
}

int e2e_has_number(const char *s, unsigned long long v)
{
    for (const char *p = s; *p;) {
        if (*p >= '0' && *p <= '9') {
            char *end;
            errno = 0;
            unsigned long long x = strtoull(p, &end, 10);
            if (errno == 0 && x == v) return 1;
            p = end;
        } else {
            p++;
        }
    }
    return 0;
}

/* ---------- patterns ---------- */

void e2e_fill(void *p, size_t n, uint32_t seed, size_t idx, uint8_t xr)
{
    uint8_t *b = p;
    for (size_t off = 0; off < n; off++) b[off] = (uint8_t)(e2e_pat(seed, idx, off) ^ xr);
}

size_t e2e_verify(const void *p, size_t n, uint32_t seed, size_t idx, uint8_t xr)
{
    const uint8_t *b = p;
    for (size_t off = 0; off < n; off++)
        if (b[off] != (uint8_t)(e2e_pat(seed, idx, off) ^ xr)) return off;
    return (size_t)-1;
}

void e2e_bufs_alloc(e2e_bufs_t *b, uint32_t seed, size_t n, const size_t *sizes)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    b->seed = seed;
    b->mem = calloc(n ? n : 1, sizeof *b->mem);
    b->d = calloc(n ? n : 1, sizeof *b->d);
    CHECK(b->mem && b->d, "out of memory");
    const char *span = getenv("NXC_E2E_ONE_SPAN");
    b->one_span = span != NULL && strcmp(span, "1") == 0 && n > 0;
    size_t total = 0;
    for (size_t i = 0; b->one_span && i < n; i++)
        total += sizes[i];
    char *block = b->one_span ? malloc(total ? total : 1) : NULL;
    CHECK(!b->one_span || block != NULL, "malloc(%zu) failed", total);
    for (size_t i = 0; i < n; i++) {
        b->mem[i] = b->one_span ? block : malloc(sizes[i] ? sizes[i] : 1);
        block += b->one_span ? sizes[i] : 0;
        CHECK(b->mem[i] != NULL, "malloc(%zu) failed", sizes[i]);
        b->d[i].ptr = b->mem[i];
        b->d[i].size = sizes[i];
        b->d[i].device.kind = NXC_DEVICE_HOST;
        b->d[i].device.id = 0;
    }
}

void e2e_bufs_fill(e2e_bufs_t *b, uint8_t xr)
{
    for (size_t i = 0; i < b->n; i++) e2e_fill(b->mem[i], b->d[i].size, b->seed, i, xr);
}

int e2e_bufs_verify(const e2e_bufs_t *b, uint8_t xr, size_t *bad_idx, size_t *bad_off)
{
    for (size_t i = 0; i < b->n; i++) {
        size_t off = e2e_verify(b->mem[i], b->d[i].size, b->seed, i, xr);
        if (off != (size_t)-1) {
            if (bad_idx) *bad_idx = i;
            if (bad_off) *bad_off = off;
            return -1;
        }
    }
    return 0;
}

void e2e_bufs_free(e2e_bufs_t *b)
{
    for (size_t i = 0; i < (b->one_span ? 1 : b->n); i++) free(b->mem[i]);
    free(b->mem);
    free(b->d);
    memset(b, 0, sizeof *b);
}

void e2e_check_results(nxc_op_t *op, const e2e_bufs_t *b, const char *what)
{
    const nxc_descriptor_t *d = NULL;
    size_t n = 0;
    CHECK_RC(nxc_op_results(op, &d, &n), NXC_OK, "(%s)", what);
    CHECK(d != NULL && n == b->n, "%s: results gave %zu descriptors, expected %zu", what, n,
          b->n);
    for (size_t i = 0; i < n; i++) {
        CHECK(d[i].ptr == b->d[i].ptr && d[i].size == b->d[i].size &&
                  d[i].device.kind == b->d[i].device.kind && d[i].device.id == b->d[i].device.id,
              "%s: results()[%zu] = {%p,%zu,%d:%d} differs from local {%p,%zu,%d:%d}", what, i,
              d[i].ptr, d[i].size, (int)d[i].device.kind, d[i].device.id, b->d[i].ptr,
              b->d[i].size, (int)b->d[i].device.kind, b->d[i].device.id);
    }
}

/* ---------- peers ---------- */

/* In the child before exec: process_vm_readv/writev fail with EPERM, as
 * under a kernel or container policy that refuses cross-process memory
 * access (seccomp, no privileges needed with no_new_privs). */
static int deny_cma(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_writev, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { (unsigned short)(sizeof f / sizeof f[0]), f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

void e2e_peer_start(e2e_peer_t *p)
{
    e2e_peer_start_opts(p, 0);
}

void e2e_peer_start_opts(e2e_peer_t *p, unsigned opts)
{
    memset(p, 0, sizeof *p);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s",
          strerror(errno));
    char *const argv[] = { (char *)NXC_TEST_PEER, (char *)"serve", (char *)"3", NULL };
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* child: async-signal-safe calls only until exec */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        if (sv[1] != 3) {
            if (dup2(sv[1], 3) < 0) _exit(127);
        } else {
            fcntl(3, F_SETFD, 0);
        }
        syscall(SYS_close_range, 4u, ~0u, 0u);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        if ((opts & E2E_PEER_NO_CMA) && deny_cma() != 0) _exit(126);
        execv(NXC_TEST_PEER, argv);
        _exit(127);
    }
    close(sv[1]);
    register_peer(pid);
    p->pid = pid;
    p->fd = sv[0];
}

void e2e_peer_send_raw(e2e_peer_t *p, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t w = send(p->fd, text, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        CHECK(w > 0, "send to peer %d: %s", (int)p->pid, strerror(errno));
        text += w;
        len -= (size_t)w;
    }
}

void e2e_peer_send(e2e_peer_t *p, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *buf = malloc((size_t)len + 2);
    CHECK(buf != NULL, "oom");
    vsnprintf(buf, (size_t)len + 1, fmt, ap2);
    va_end(ap2);
    buf[len] = '\n';
    e2e_peer_send_raw(p, buf, (size_t)len + 1);
    free(buf);
}

/* Returns the line, or NULL on EOF (*eof = 1) or timeout (*eof = 0). */
static char *chan_readline(e2e_peer_t *p, nxc_connector_t *drive, int timeout_ms, int *eof)
{
    double deadline = timeout_ms < 0 ? 0 : e2e_now_ms() + timeout_ms;
    *eof = 0;
    for (;;) {
        char *nl = p->rbuf ? memchr(p->rbuf, '\n', p->rlen) : NULL;
        if (nl) {
            size_t l = (size_t)(nl - p->rbuf);
            if (p->line_cap < l + 1) {
                p->line_cap = l + 1;
                p->line = realloc(p->line, p->line_cap);
                CHECK(p->line != NULL, "oom");
            }
            memcpy(p->line, p->rbuf, l);
            p->line[l] = 0;
            memmove(p->rbuf, nl + 1, p->rlen - l - 1);
            p->rlen -= l + 1;
            return p->line;
        }
        int wait = 10;
        if (timeout_ms >= 0) {
            double left = deadline - e2e_now_ms();
            if (left <= 0) return NULL;
            if (!drive) wait = (int)left + 1;
        } else if (!drive) {
            wait = -1;
        }
        struct pollfd fds[2] = { { p->fd, POLLIN, 0 }, { -1, POLLIN, 0 } };
        if (drive) {
            nxc_connector_progress(drive);
            fds[1].fd = nxc_connector_fd(drive);
        }
        int r = poll(fds, drive ? 2 : 1, wait);
        if (r < 0 && errno != EINTR) CHECK(0, "poll: %s", strerror(errno));
        if (r > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            if (p->rcap - p->rlen < 65536) {
                p->rcap = p->rcap * 2 + 65536;
                p->rbuf = realloc(p->rbuf, p->rcap);
                CHECK(p->rbuf != NULL, "oom");
            }
            ssize_t n = read(p->fd, p->rbuf + p->rlen, p->rcap - p->rlen);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                *eof = 1;
                return NULL;
            }
            p->rlen += (size_t)n;
        }
    }
}

char *e2e_peer_readline_opt(e2e_peer_t *p, nxc_connector_t *drive, int timeout_ms, int *eof)
{
    return chan_readline(p, drive, timeout_ms, eof);
}

char *e2e_peer_readline(e2e_peer_t *p, nxc_connector_t *drive, int timeout_ms)
{
    int eof;
    char *l = chan_readline(p, drive, timeout_ms, &eof);
    CHECK(l != NULL, "peer %d %s", (int)p->pid,
          eof ? "hung up (died?)" : "did not answer in time");
    return l;
}

void e2e_peer_kill(e2e_peer_t *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        unregister_peer(p->pid);
        p->pid = 0;
    }
}

void e2e_peer_stop(e2e_peer_t *p)
{
    e2e_peer_send(p, "QUIT");
    char *l = e2e_peer_readline(p, NULL, 30000);
    CHECK(strcmp(l, "BYE") == 0, "peer answered '%s' to QUIT", l);
    int st = 0;
    pid_t r;
    while ((r = waitpid(p->pid, &st, 0)) < 0 && errno == EINTR) {
    }
    CHECK(r == p->pid, "waitpid: %s", strerror(errno));
    unregister_peer(p->pid);
    p->pid = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "peer exit status 0x%x (exit %d, signal %d)",
          st, WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

void e2e_peer_close(e2e_peer_t *p)
{
    e2e_peer_kill(p);
    if (p->fd > 0) close(p->fd);
    free(p->rbuf);
    free(p->line);
    memset(p, 0, sizeof *p);
}

static void send_cmd_sizes(e2e_peer_t *p, const char *cmd, nxc_op_kind_t kind, uint32_t seed,
                           size_t n, const size_t *sizes)
{
    size_t cap = 64 + n * 24, len = 0;
    char *buf = malloc(cap);
    CHECK(buf != NULL, "oom");
    len += (size_t)snprintf(buf + len, cap - len, "%s %c %" PRIu32 " %zu", cmd,
                            kind == NXC_OP_READ ? 'R' : 'W', seed, n);
    for (size_t i = 0; i < n; i++) len += (size_t)snprintf(buf + len, cap - len, " %zu", sizes[i]);
    buf[len++] = '\n';
    e2e_peer_send_raw(p, buf, len);
    free(buf);
}

int e2e_peer_passive(e2e_peer_t *p, nxc_connector_t *drive, nxc_op_kind_t kind,
                     uint32_t seed, size_t n, const size_t *sizes, char **json)
{
    send_cmd_sizes(p, "PASSIVE", kind, seed, n, sizes);
    char *l = e2e_peer_readline(p, drive, 60000);
    int id = -1, off = 0;
    CHECK(sscanf(l, "OK %d %n", &id, &off) == 1 && off > 0,
          "peer failed to create a passive op: '%.300s'", l);
    *json = strdup(l + off);
    CHECK(*json != NULL, "oom");
    return id;
}

int e2e_peer_active(e2e_peer_t *p, nxc_connector_t *drive, nxc_op_kind_t kind,
                    uint32_t seed, size_t n, const size_t *sizes, const char *json)
{
    CHECK(strchr(json, '\n') == NULL, "metadata JSON contains a newline");
    send_cmd_sizes(p, "ACTIVE", kind, seed, n, sizes);
    e2e_peer_send(p, "%s", json);
    char *l = e2e_peer_readline(p, drive, 60000);
    int id = -1, rc = 0;
    if (sscanf(l, "OK %d", &id) == 1) return id;
    CHECK(sscanf(l, "ERR %d", &rc) == 1 && rc < 0, "bad peer reply '%.300s'", l);
    fprintf(stderr, "  (peer begin failed: %s)\n", l);
    return rc;
}

void e2e_peer_wait(e2e_peer_t *p, nxc_connector_t *drive, int id, int timeout_ms,
                   e2e_peer_res_t *res)
{
    e2e_peer_send(p, "WAIT %d %d", id, timeout_ms);
    char *l = e2e_peer_readline(p, drive, (timeout_ms < 0 ? 60000 : timeout_ms) + 30000);
    int off = 0;
    memset(res, 0, sizeof *res);
    CHECK(sscanf(l, "RES %d %d %d %d %n", &res->rc, &res->status, &res->verify, &res->errcode,
                 &off) == 4,
          "bad peer reply '%.300s'", l);
    snprintf(res->detail, sizeof res->detail, "%s", off ? l + off : "");
}

int e2e_peer_status(e2e_peer_t *p, nxc_connector_t *drive, int id)
{
    e2e_peer_send(p, "STATUS %d", id);
    char *l = e2e_peer_readline(p, drive, 30000);
    int st = -1;
    CHECK(sscanf(l, "ST %d", &st) == 1, "bad peer reply '%.300s'", l);
    return st;
}

int e2e_peer_check(e2e_peer_t *p, nxc_connector_t *drive, int id)
{
    e2e_peer_send(p, "CHECK %d", id);
    char *l = e2e_peer_readline(p, drive, 60000);
    int code = -1;
    size_t idx = 0, off = 0;
    CHECK(sscanf(l, "CHK %d %zu %zu", &code, &idx, &off) == 3, "bad peer reply '%.300s'", l);
    if (code == 3)
        fprintf(stderr, "  peer op %d: foreign byte in descriptor %zu at offset %zu\n", id, idx,
                off);
    return code;
}

int e2e_peer_cancel(e2e_peer_t *p, nxc_connector_t *drive, int id, int *status)
{
    e2e_peer_send(p, "CANCEL %d", id);
    char *l = e2e_peer_readline(p, drive, 30000);
    int rc = 0, st = -1;
    CHECK(sscanf(l, "RC %d %d", &rc, &st) == 2, "bad peer reply '%.300s'", l);
    if (status) *status = st;
    return rc;
}

void e2e_peer_release(e2e_peer_t *p, nxc_connector_t *drive, int id)
{
    e2e_peer_send(p, "RELEASE %d", id);
    char *l = e2e_peer_readline(p, drive, 30000);
    CHECK(strcmp(l, "OK") == 0, "bad peer reply to RELEASE: '%.300s'", l);
}

/* ---------- library helpers ---------- */

nxc_connector_t *e2e_connector(const char *name)
{
    nxc_connector_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    if (name) {
        cfg.field_mask |= NXC_CONFIG_NAME;
        cfg.name = name;
    }
    const char *pt = getenv("NXC_E2E_PROGRESS_THREAD");
    if (pt && *pt == '1') {
        cfg.field_mask |= NXC_CONFIG_PROGRESS_THREAD;
        cfg.progress_thread = 1;
    }
    const char *direct = getenv("NXC_E2E_DIRECT_LOCAL");
    if (direct && *direct == '1') {
        cfg.field_mask |= NXC_CONFIG_DIRECT_LOCAL;
        cfg.direct_local = 1;
    }
    nxc_connector_t *c = NULL;
    CHECK_RC(nxc_connector_create(&cfg, &c), NXC_OK);
    CHECK(c != NULL, "connector is NULL");
    return c;
}

nxc_metadata_t *e2e_parse(const char *json)
{
    nxc_metadata_t *md = NULL;
    CHECK_RC(nxc_metadata_parse(json, strlen(json), &md), NXC_OK);
    CHECK(md != NULL, "metadata is NULL");
    return md;
}

const char *e2e_op_metadata(nxc_op_t *op)
{
    const char *json = NULL;
    size_t len = 0;
    CHECK_RC(nxc_op_metadata(op, &json, &len), NXC_OK);
    CHECK(json != NULL && len == strlen(json) && len > 0, "metadata text/len inconsistent");
    CHECK(strchr(json, '\n') == NULL, "metadata JSON contains a newline");
    return json;
}

int e2e_is_final(nxc_op_status_t s)
{
    return s == NXC_OP_COMPLETE || s == NXC_OP_CANCELLED || s == NXC_OP_ERRORED;
}

int e2e_drive_until_final(nxc_op_t **ops, size_t n, nxc_connector_t *c1, nxc_connector_t *c2,
                          int timeout_ms)
{
    double deadline = e2e_now_ms() + timeout_ms;
    for (;;) {
        if (c1) nxc_connector_progress(c1);
        if (c2) nxc_connector_progress(c2);
        int all = 1;
        for (size_t i = 0; i < n; i++)
            if (!e2e_is_final(nxc_op_status(ops[i]))) all = 0;
        if (all) return 0;
        if (e2e_now_ms() > deadline) return -1;
    }
}

void e2e_local_transfer(nxc_connector_t *P, nxc_connector_t *A, nxc_op_kind_t kind,
                        const nxc_descriptor_t *pd, const nxc_descriptor_t *ad, size_t n)
{
    nxc_op_t *passive, *active;
    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_create_readable(P, pd, n, &passive), NXC_OK);
    else
        CHECK_RC(nxc_create_writable(P, pd, n, &passive), NXC_OK);
    nxc_metadata_t *md = e2e_parse(e2e_op_metadata(passive));
    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_begin_read(A, md, ad, n, &active), NXC_OK);
    else
        CHECK_RC(nxc_begin_write(A, ad, n, md, &active), NXC_OK);
    nxc_op_t *ops[2] = { passive, active };
    CHECK(e2e_drive_until_final(ops, 2, P, A, 10000) == 0, "ops did not finish");
    CHECK_RC(nxc_op_wait(active, 0), NXC_OK);
    CHECK_RC(nxc_op_wait(passive, 0), NXC_OK);
    nxc_op_release(active);
    nxc_op_release(passive);
    nxc_metadata_free(md);
}
