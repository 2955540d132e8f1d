/*
 * nxc_ucx_raw - raw UCP baseline for nixl_connect (issue #3).
 *
 * The minimal transfer patterns the library builds on, with no library
 * around them, between two processes on this host:
 *
 *   put      ucp_put_nbx (whole buffer, or --blocks puts) + ucp_ep_flush_nbx
 *            + 8-byte ucp_am_send_nbx notification; the target answers each
 *            notification with an 8-byte ack AM.
 *   get      ucp_get_nbx + ucp_ep_flush_nbx + 8-byte notification + ack.
 *   am_rndv  ucp_am_send_nbx(UCP_AM_SEND_FLAG_RNDV) of the buffer (or one
 *            per block); the target's AM handler receives it with
 *            ucp_am_recv_data_nbx into its registered destination and sends
 *            an 8-byte ack once all bytes of the iteration are in place.
 *
 * What is measured, per iteration (warm-up iterations excluded):
 *   local_*  post -> initiator-side completion (flush and notification send
 *            completed; for am_rndv the rendezvous send completed).
 *   lat_*    post -> ack from the target seen by the initiator (the full
 *            round trip: data in place, target saw it, target said so).
 *   gbps     bytes moved / wall time of the timed loop, where every
 *            iteration includes its ack (1e9 bytes/s).
 *   gbps_local  bytes / sum of the local_* times (what a begin->complete
 *            timer on the initiator sees, as nxc bench measures).
 * The two processes are pinned to the first two allowed CPUs (--no-pin).
 *
 * Process model: the program fork()s and exec()s itself (before any UCX
 * initialisation) as the target; the two processes talk over a socketpair
 * to exchange worker addresses, packed rkeys and per-case set-up/verify
 * messages. UCX configuration (UCX_TLS, ...) comes from the environment.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <ucp/api/ucp.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { AM_NOTIFY = 11, AM_ACK = 12, AM_DATA = 13 };
enum { PAT_PUT, PAT_GET, PAT_AM_RNDV, PAT_COUNT };
enum { MEM_MALLOC, MEM_UCX, MEM_THP, MEM_COUNT };
enum { CMD_SETUP = 1, CMD_DONE = 2, CMD_QUIT = 3 };

static const char *const pat_names[PAT_COUNT] = {"put", "get", "am_rndv"};
static const char *const mem_names[MEM_COUNT] = {"malloc", "ucx", "thp"};

struct ctl_req {
    uint32_t cmd;
    uint32_t pattern;
    uint32_t mem;
    uint32_t pad;
    uint64_t size;   /* bytes per block */
    uint64_t blocks; /* blocks per iteration */
    uint64_t seed;
};

struct ctl_setup_resp {
    uint64_t addr;
    uint64_t rkey_len;
};

struct ctl_done_resp {
    int64_t  bad_index; /* -1: data verified */
    uint64_t iterations;
};

struct am_data_hdr {
    uint64_t seq;
    uint64_t offset;
};

/* ------------------------------------------------------------------ */

static const char *g_role = "initiator";
/* The endpoints' UCX error-handling mode (--err-mode): NONE keeps shared
 * memory; PEER is what a library that must learn of a peer's death uses
 * over TCP (and what UCX 1.13 builds on TCP only). */
static ucp_err_handling_mode_t g_err_mode = UCP_ERR_HANDLING_MODE_NONE;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "nxc_ucx_raw[%s]: FATAL: ", g_role);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

#define UCS_CHECK(expr)                                                       \
    do {                                                                      \
        ucs_status_t st_ = (expr);                                            \
        if (st_ != UCS_OK)                                                    \
            die("%s:%d: %s: %s", __FILE__, __LINE__, #expr,                   \
                ucs_status_string(st_));                                      \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Pin the calling process to the index-th CPU it is allowed to run on (as
 * nxc bench does with its two workers), so the two busy-polling processes
 * don't share a core or migrate. No-op with fewer than two allowed CPUs. */
static void pin_to(int index)
{
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || CPU_COUNT(&allowed) < 2)
        return;
    for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed))
            continue;
        if (seen++ == index) {
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            if (sched_setaffinity(0, sizeof(one), &one) != 0)
                fprintf(stderr, "nxc_ucx_raw[%s]: sched_setaffinity(cpu %d): %s\n",
                        g_role, cpu, strerror(errno));
            return;
        }
    }
}

/* ---------------- control channel (socketpair) ---------------------- */

static void write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("control write: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

static void read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            die("control channel closed by peer (peer died?)");
        if (n < 0)
            die("control read: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

static int fd_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 0) > 0;
}

/* Wait for control data while keeping the UCX worker progressing, so that
 * the peer's outstanding UCX work (wire-up, flush, close) never stalls. */
static void ctl_recv(ucp_worker_h worker, int fd, void *buf, size_t len)
{
    if (worker != NULL) {
        unsigned spin = 0;
        while (!fd_readable(fd)) {
            if (ucp_worker_progress(worker) == 0 && ++spin > 4096) {
                spin = 0;
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                (void)poll(&pfd, 1, 1);
            }
        }
    }
    read_full(fd, buf, len);
}

/* ---------------- UCX helpers --------------------------------------- */

static ucs_status_t wait_req(ucp_worker_h worker, ucs_status_ptr_t req)
{
    if (req == NULL)
        return UCS_OK;
    if (UCS_PTR_IS_ERR(req))
        return UCS_PTR_STATUS(req);
    ucs_status_t st;
    while ((st = ucp_request_check_status(req)) == UCS_INPROGRESS)
        ucp_worker_progress(worker);
    ucp_request_free(req);
    return st;
}

/* Post-and-forget: completion is covered by a later flush (RMA). */
static void release_req(ucs_status_ptr_t req, const char *what)
{
    if (req == NULL)
        return;
    if (UCS_PTR_IS_ERR(req))
        die("%s: %s", what, ucs_status_string(UCS_PTR_STATUS(req)));
    ucp_request_free(req);
}

struct buf {
    void     *ptr;
    size_t    len;
    ucp_mem_h memh;
    int       kind;
    size_t    mapped; /* MEM_THP: bytes mmapped */
};

#define HUGE_PAGE (2ul << 20)

/* Anonymous memory on a 2 MiB boundary advised to transparent huge pages,
 * as nxc bench --mem thp allocates it. */
static void *thp_alloc(size_t len, size_t *mapped)
{
    size_t rounded = (len + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    char *raw = mmap(NULL, rounded + HUGE_PAGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        die("mmap(%zu) failed", rounded + HUGE_PAGE);
    uintptr_t start = ((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    if (start > (uintptr_t)raw)
        munmap(raw, start - (uintptr_t)raw);
    uintptr_t end = start + rounded, raw_end = (uintptr_t)raw + rounded + HUGE_PAGE;
    if (raw_end > end)
        munmap((void *)end, raw_end - end);
    (void)madvise((void *)start, rounded, MADV_HUGEPAGE);
    *mapped = rounded;
    return (void *)start;
}

/* The 2 MiB-aligned interior of a UCX allocation advised to huge pages, as
 * nxc_mem_alloc does (effective where shmem THP is allowed). */
static void advise_huge(void *p, size_t len)
{
    uintptr_t start = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    uintptr_t end = ((uintptr_t)p + len) & ~(uintptr_t)(HUGE_PAGE - 1);
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
}

static void buf_alloc(ucp_context_h ctx, struct buf *b, size_t len, int kind)
{
    ucp_mem_map_params_t mp;
    memset(&mp, 0, sizeof(mp));
    b->len  = len;
    b->kind = kind;
    if (kind == MEM_MALLOC || kind == MEM_THP) {
        if (kind == MEM_THP)
            b->ptr = thp_alloc(len, &b->mapped);
        else if (posix_memalign(&b->ptr, 4096, len) != 0)
            die("posix_memalign(%zu) failed", len);
        memset(b->ptr, 0, len); /* touch pages */
        mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS |
                        UCP_MEM_MAP_PARAM_FIELD_LENGTH;
        mp.address    = b->ptr;
        mp.length     = len;
        UCS_CHECK(ucp_mem_map(ctx, &mp, &b->memh));
    } else {
        mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS |
                        UCP_MEM_MAP_PARAM_FIELD_LENGTH |
                        UCP_MEM_MAP_PARAM_FIELD_FLAGS;
        mp.address    = NULL;
        mp.length     = len;
        mp.flags      = UCP_MEM_MAP_ALLOCATE;
        UCS_CHECK(ucp_mem_map(ctx, &mp, &b->memh));
        ucp_mem_attr_t attr;
        attr.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH;
        UCS_CHECK(ucp_mem_query(b->memh, &attr));
        if (attr.length < len)
            die("ucp_mem_map ALLOCATE gave %zu bytes < %zu", attr.length, len);
        b->ptr = attr.address;
        advise_huge(b->ptr, attr.length);
        memset(b->ptr, 0, len);
    }
}

static void buf_free(ucp_context_h ctx, struct buf *b)
{
    UCS_CHECK(ucp_mem_unmap(ctx, b->memh));
    if (b->kind == MEM_MALLOC)
        free(b->ptr);
    else if (b->kind == MEM_THP)
        munmap(b->ptr, b->mapped);
    memset(b, 0, sizeof(*b));
}

/* ---------------- data pattern --------------------------------------- */

static uint64_t pat_word(uint64_t i, uint64_t seed)
{
    return (i + seed) * 0x9E3779B97F4A7C15ull ^ (seed << 7);
}

static void pat_fill(void *p, size_t len, uint64_t seed)
{
    uint64_t *w = p;
    size_t nw = len / 8;
    for (size_t i = 0; i < nw; i++)
        w[i] = pat_word(i, seed);
    unsigned char *c = p;
    for (size_t i = nw * 8; i < len; i++)
        c[i] = (unsigned char)(i ^ seed);
}

/* Returns -1 if the buffer holds the pattern, else the first bad byte. */
static int64_t pat_check(const void *p, size_t len, uint64_t seed)
{
    const uint64_t *w = p;
    size_t nw = len / 8;
    for (size_t i = 0; i < nw; i++)
        if (w[i] != pat_word(i, seed))
            return (int64_t)(i * 8);
    const unsigned char *c = p;
    for (size_t i = nw * 8; i < len; i++)
        if (c[i] != (unsigned char)(i ^ seed))
            return (int64_t)i;
    return -1;
}

/* ---------------- shared state and AM handlers ---------------------- */

struct peer {
    ucp_context_h ctx;
    ucp_worker_h  worker;
    ucp_ep_h      ep;
    int           fd;
    /* initiator */
    volatile uint64_t acks;
    /* target */
    volatile uint64_t notifies;
    volatile uint64_t blocks_done;
    int               fatal;
    char             *dst;     /* target region for am_rndv */
    size_t            dst_len;
};

static void set_am_handler(struct peer *p, unsigned id, ucp_am_recv_callback_t cb)
{
    ucp_am_handler_param_t hp;
    memset(&hp, 0, sizeof(hp));
    hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                    UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
    hp.id    = id;
    hp.cb    = cb;
    hp.arg   = p;
    hp.flags = UCP_AM_FLAG_WHOLE_MSG;
    UCS_CHECK(ucp_worker_set_am_recv_handler(p->worker, &hp));
}

static ucs_status_t on_ack(void *arg, const void *header, size_t header_length,
                           void *data, size_t length, const ucp_am_recv_param_t *param)
{
    (void)header; (void)header_length; (void)data; (void)param;
    struct peer *p = arg;
    if (length != 8)
        die("ack AM of %zu bytes", length);
    p->acks++;
    return UCS_OK;
}

static ucs_status_t on_notify(void *arg, const void *header, size_t header_length,
                              void *data, size_t length, const ucp_am_recv_param_t *param)
{
    (void)header; (void)header_length; (void)data; (void)param;
    struct peer *p = arg;
    if (length != 8)
        die("notification AM of %zu bytes", length);
    p->notifies++;
    return UCS_OK;
}

static void on_rndv_recv_done(void *request, ucs_status_t status, size_t length,
                              void *user_data)
{
    (void)length;
    struct peer *p = user_data;
    ucp_request_free(request); /* freeing here, in the callback, is the rule */
    if (status != UCS_OK) {
        fprintf(stderr, "nxc_ucx_raw[target]: rndv receive failed: %s\n",
                ucs_status_string(status));
        p->fatal = 1;
    }
    p->blocks_done++;
}

static ucs_status_t on_data(void *arg, const void *header, size_t header_length,
                            void *data, size_t length, const ucp_am_recv_param_t *param)
{
    struct peer *p = arg;
    struct am_data_hdr h;
    if (header_length != sizeof(h))
        die("data AM header of %zu bytes", header_length);
    memcpy(&h, header, sizeof(h));
    if (p->dst == NULL || h.offset > p->dst_len || length > p->dst_len - h.offset)
        die("data AM out of range: offset %" PRIu64 " length %zu", h.offset, length);

    if (!(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) {
        /* eager (should not happen with UCP_AM_SEND_FLAG_RNDV) */
        memcpy(p->dst + h.offset, data, length);
        p->blocks_done++;
        return UCS_OK;
    }
    ucp_request_param_t rp;
    memset(&rp, 0, sizeof(rp));
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                      UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
    rp.cb.recv_am   = on_rndv_recv_done;
    rp.user_data    = p;
    ucs_status_ptr_t r = ucp_am_recv_data_nbx(p->worker, data, p->dst + h.offset,
                                              length, &rp);
    if (UCS_PTR_IS_ERR(r))
        die("ucp_am_recv_data_nbx: %s", ucs_status_string(UCS_PTR_STATUS(r)));
    /* Do NOT ucp_request_free(r) here: on UCX 1.13 freeing a request before
     * it completes also drops its completion callback (the free clears
     * UCP_REQUEST_FLAG_CALLBACK), so completion would never be seen. The
     * callback frees it. NO_IMM_CMPL guarantees the callback runs. */
    if (r == NULL)
        p->blocks_done++;
    return UCS_INPROGRESS;
}

/* ---------------- UCX set-up ----------------------------------------- */

static void ucx_setup(struct peer *p)
{
    ucp_config_t *cfg;
    UCS_CHECK(ucp_config_read(NULL, NULL, &cfg)); /* honours UCX_* env */
    ucp_params_t pp;
    memset(&pp, 0, sizeof(pp));
    pp.field_mask = UCP_PARAM_FIELD_FEATURES;
    pp.features   = UCP_FEATURE_RMA | UCP_FEATURE_AM;
    UCS_CHECK(ucp_init(&pp, cfg, &p->ctx));
    ucp_config_release(cfg);

    ucp_worker_params_t wp;
    memset(&wp, 0, sizeof(wp));
    wp.field_mask  = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    wp.thread_mode = UCS_THREAD_MODE_SINGLE;
    UCS_CHECK(ucp_worker_create(p->ctx, &wp, &p->worker));

    ucp_address_t *addr;
    size_t addr_len;
    UCS_CHECK(ucp_worker_get_address(p->worker, &addr, &addr_len));
    uint64_t len64 = addr_len;
    write_full(p->fd, &len64, sizeof(len64));
    write_full(p->fd, addr, addr_len);
    ucp_worker_release_address(p->worker, addr);

    read_full(p->fd, &len64, sizeof(len64));
    if (len64 == 0 || len64 > (1u << 20))
        die("bad peer address length %" PRIu64, len64);
    void *peer_addr = malloc(len64);
    if (!peer_addr)
        die("out of memory");
    read_full(p->fd, peer_addr, len64);

    ucp_ep_params_t ep;
    memset(&ep, 0, sizeof(ep));
    ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
    ep.address    = peer_addr;
    ep.err_mode   = g_err_mode;
    UCS_CHECK(ucp_ep_create(p->worker, &ep, &p->ep));
    free(peer_addr);
}

static void ucx_teardown(struct peer *p)
{
    ucp_request_param_t cp;
    memset(&cp, 0, sizeof(cp));
    ucs_status_ptr_t r = ucp_ep_close_nbx(p->ep, &cp);
    ucs_status_t st = wait_req(p->worker, r);
    if (st != UCS_OK && st != UCS_ERR_CANCELED && st != UCS_ERR_ENDPOINT_TIMEOUT &&
        st != UCS_ERR_CONNECTION_RESET)
        fprintf(stderr, "nxc_ucx_raw[%s]: ep close: %s\n", g_role, ucs_status_string(st));
    /* both sides closed; exchange a byte while progressing, then destroy */
    char b = 'x';
    write_full(p->fd, &b, 1);
    ctl_recv(p->worker, p->fd, &b, 1);
    ucp_worker_destroy(p->worker);
    ucp_cleanup(p->ctx);
}

static void send_am8(struct peer *p, unsigned id, uint64_t value)
{
    ucp_request_param_t rp;
    memset(&rp, 0, sizeof(rp));
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    rp.flags        = UCP_AM_SEND_FLAG_EAGER;
    ucs_status_ptr_t r = ucp_am_send_nbx(p->ep, id, NULL, 0, &value, sizeof(value), &rp);
    ucs_status_t st = wait_req(p->worker, r);
    if (st != UCS_OK)
        die("8-byte AM send: %s", ucs_status_string(st));
}

/* ---------------- target ---------------------------------------------- */

static int run_target(int fd)
{
    g_role = "target";
    struct peer p;
    memset(&p, 0, sizeof(p));
    p.fd = fd;
    ucx_setup(&p);
    set_am_handler(&p, AM_NOTIFY, on_notify);
    set_am_handler(&p, AM_DATA, on_data);

    for (;;) {
        struct ctl_req req;
        ctl_recv(p.worker, fd, &req, sizeof(req));
        if (req.cmd == CMD_QUIT)
            break;
        if (req.cmd != CMD_SETUP)
            die("unexpected control command %u", req.cmd);

        size_t total = (size_t)(req.size * req.blocks);
        struct buf region;
        buf_alloc(p.ctx, &region, total, (int)req.mem);
        if (req.pattern == PAT_GET)
            pat_fill(region.ptr, total, req.seed);

        void *rkey_buf;
        size_t rkey_len;
        UCS_CHECK(ucp_rkey_pack(p.ctx, region.memh, &rkey_buf, &rkey_len));
        struct ctl_setup_resp sr = {.addr = (uint64_t)(uintptr_t)region.ptr,
                                    .rkey_len = rkey_len};
        p.notifies = p.blocks_done = 0;
        p.dst      = region.ptr;
        p.dst_len  = total;
        write_full(fd, &sr, sizeof(sr));
        write_full(fd, rkey_buf, rkey_len);
        ucp_rkey_buffer_release(rkey_buf);

        /* Serve until the initiator says DONE: progress (RMA emulation needs
         * it), and ack every notification / every completed rndv iteration. */
        uint64_t acked = 0;
        unsigned idle = 0;
        for (;;) {
            unsigned n = ucp_worker_progress(p.worker);
            if (p.fatal)
                die("receive failed");
            uint64_t done = (req.pattern == PAT_AM_RNDV) ? p.blocks_done / req.blocks
                                                         : p.notifies;
            if (done > acked) {
                send_am8(&p, AM_ACK, acked);
                acked++;
                continue;
            }
            if (n == 0 && ++idle >= 256) {
                idle = 0;
                if (fd_readable(fd))
                    break;
            }
        }
        ctl_recv(p.worker, fd, &req, sizeof(req));
        if (req.cmd != CMD_DONE)
            die("expected DONE, got %u", req.cmd);

        struct ctl_done_resp dr = {.bad_index = -1, .iterations = acked};
        if (req.pattern != PAT_GET)
            dr.bad_index = pat_check(region.ptr, total, req.seed);
        write_full(fd, &dr, sizeof(dr));
        p.dst = NULL;
        p.dst_len = 0;
        buf_free(p.ctx, &region);
    }
    ucx_teardown(&p);
    return 0;
}

/* ---------------- initiator ------------------------------------------- */

struct opts {
    int      patterns[PAT_COUNT];
    int      mems[MEM_COUNT];
    size_t   sizes[64];
    int      nsizes;
    uint64_t blocks;
    long     iters;    /* <=0: auto */
    long     warmup;   /* <0: auto */
    double   budget_s; /* time per case when iters is auto */
    int      json;
    int      info;
    int      pin;
};

struct result {
    long   iters;
    double gbps, gbps_local;
    double lat_p50, lat_p99, local_p50, local_p99;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pctl(double *v, long n, double q)
{
    long i = (long)(q * (double)n + 0.999999) - 1;
    if (i < 0)
        i = 0;
    if (i >= n)
        i = n - 1;
    return v[i];
}

/* One iteration; returns initiator-side completion and ack times (seconds
 * since t0) through *t_local and *t_ack. */
static void one_iter(struct peer *p, int pattern, struct buf *local, uint64_t raddr,
                     ucp_rkey_h rkey, size_t bsize, uint64_t blocks, uint64_t seq,
                     struct am_data_hdr *hdrs, ucs_status_ptr_t *reqs,
                     double *t_local, double *t_ack)
{
    uint64_t want = p->acks + 1;
    double t0 = now_s();
    ucp_request_param_t rp;
    memset(&rp, 0, sizeof(rp));

    if (pattern == PAT_PUT || pattern == PAT_GET) {
        for (uint64_t b = 0; b < blocks; b++) {
            char *lp = (char *)local->ptr + b * bsize;
            uint64_t ra = raddr + b * bsize;
            ucs_status_ptr_t r = (pattern == PAT_PUT)
                                     ? ucp_put_nbx(p->ep, lp, bsize, ra, rkey, &rp)
                                     : ucp_get_nbx(p->ep, lp, bsize, ra, rkey, &rp);
            release_req(r, pattern == PAT_PUT ? "ucp_put_nbx" : "ucp_get_nbx");
        }
        ucs_status_t st = wait_req(p->worker, ucp_ep_flush_nbx(p->ep, &rp));
        if (st != UCS_OK)
            die("ucp_ep_flush_nbx: %s", ucs_status_string(st));
        send_am8(p, AM_NOTIFY, seq);
    } else {
        rp.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
        rp.flags        = UCP_AM_SEND_FLAG_RNDV;
        for (uint64_t b = 0; b < blocks; b++) {
            hdrs[b].seq    = seq;
            hdrs[b].offset = b * bsize;
            reqs[b] = ucp_am_send_nbx(p->ep, AM_DATA, &hdrs[b], sizeof(hdrs[b]),
                                      (char *)local->ptr + b * bsize, bsize, &rp);
            if (UCS_PTR_IS_ERR(reqs[b]))
                die("ucp_am_send_nbx(RNDV): %s",
                    ucs_status_string(UCS_PTR_STATUS(reqs[b])));
        }
        for (uint64_t b = 0; b < blocks; b++) {
            ucs_status_t st = wait_req(p->worker, reqs[b]);
            if (st != UCS_OK)
                die("rndv AM send: %s", ucs_status_string(st));
        }
    }
    *t_local = now_s() - t0;
    while (p->acks < want)
        ucp_worker_progress(p->worker);
    *t_ack = now_s() - t0;
}

static struct result run_case(struct peer *p, const struct opts *o, int pattern,
                              int mem, size_t bsize, uint64_t seed)
{
    uint64_t blocks = o->blocks;
    size_t total = bsize * blocks;
    struct ctl_req req = {.cmd = CMD_SETUP, .pattern = (uint32_t)pattern,
                          .mem = (uint32_t)mem, .size = bsize, .blocks = blocks,
                          .seed = seed};
    write_full(p->fd, &req, sizeof(req));

    struct buf local;
    buf_alloc(p->ctx, &local, total, mem);
    if (pattern != PAT_GET)
        pat_fill(local.ptr, total, seed);

    struct ctl_setup_resp sr;
    ctl_recv(p->worker, p->fd, &sr, sizeof(sr));
    if (sr.rkey_len == 0 || sr.rkey_len > (1u << 20))
        die("bad rkey length %" PRIu64, sr.rkey_len);
    void *rkey_buf = malloc(sr.rkey_len);
    if (!rkey_buf)
        die("out of memory");
    read_full(p->fd, rkey_buf, sr.rkey_len);
    ucp_rkey_h rkey;
    UCS_CHECK(ucp_ep_rkey_unpack(p->ep, rkey_buf, &rkey));
    free(rkey_buf);

    struct am_data_hdr *hdrs = calloc(blocks, sizeof(*hdrs));
    ucs_status_ptr_t *reqs = calloc(blocks, sizeof(*reqs));
    if (!hdrs || !reqs)
        die("out of memory");

    long warm = o->warmup;
    if (warm < 0) {
        size_t w = (size_t)(256u << 20) / (total ? total : 1);
        warm = (long)(w < 2 ? 2 : (w > 100 ? 100 : w));
    }
    uint64_t seq = 0;
    double tl, ta, warm_time = 0;
    long warm_done = 0;
    for (long i = 0; i < warm; i++) {
        one_iter(p, pattern, &local, sr.addr, rkey, bsize, blocks, seq++, hdrs, reqs,
                 &tl, &ta);
        warm_time += ta;
        warm_done++;
        if (o->iters <= 0 && warm_time > o->budget_s)
            break; /* auto mode: never let warm-up eat more than the budget */
    }
    long iters = o->iters;
    if (iters <= 0) {
        double per = warm_done > 0 ? warm_time / (double)warm_done : 1e-3;
        double n = o->budget_s / (per > 1e-9 ? per : 1e-9);
        iters = n < 5 ? 5 : (n > 200000 ? 200000 : (long)n);
    }
    double *lat = malloc(sizeof(double) * (size_t)iters);
    double *loc = malloc(sizeof(double) * (size_t)iters);
    if (!lat || !loc)
        die("out of memory");
    /* auto mode: hard stop at 3x the budget (a loaded machine makes the
     * warm-up estimate wrong); an explicit --iters is always honoured. */
    double cap = o->iters <= 0 ? 3.0 * o->budget_s + 0.2 : 1e30;
    double t_start = now_s();
    long done_iters = 0;
    for (long i = 0; i < iters; i++) {
        one_iter(p, pattern, &local, sr.addr, rkey, bsize, blocks, seq++, hdrs, reqs,
                 &loc[i], &lat[i]);
        done_iters++;
        if (done_iters >= 3 && now_s() - t_start > cap)
            break;
    }
    double elapsed = now_s() - t_start;
    iters = done_iters;

    /* verify */
    req.cmd = CMD_DONE;
    write_full(p->fd, &req, sizeof(req));
    struct ctl_done_resp dr;
    ctl_recv(p->worker, p->fd, &dr, sizeof(dr));
    if (pattern == PAT_GET)
        dr.bad_index = pat_check(local.ptr, total, seed);
    if (dr.bad_index >= 0)
        die("DATA MISMATCH: pattern %s mem %s size %zu blocks %" PRIu64
            ": first bad byte at offset %" PRId64,
            pat_names[pattern], mem_names[mem], bsize, blocks, dr.bad_index);
    if (dr.iterations != seq)
        die("target acked %" PRIu64 " iterations, expected %" PRIu64, dr.iterations, seq);

    ucp_rkey_destroy(rkey);
    buf_free(p->ctx, &local);
    free(hdrs);
    free(reqs);

    struct result r;
    r.iters = iters;
    r.gbps  = (double)total * (double)iters / elapsed / 1e9;
    double sum_local = 0;
    for (long i = 0; i < iters; i++)
        sum_local += loc[i];
    r.gbps_local = (double)total * (double)iters / sum_local / 1e9;
    qsort(lat, (size_t)iters, sizeof(double), cmp_double);
    qsort(loc, (size_t)iters, sizeof(double), cmp_double);
    r.lat_p50   = pctl(lat, iters, 0.50) * 1e6;
    r.lat_p99   = pctl(lat, iters, 0.99) * 1e6;
    r.local_p50 = pctl(loc, iters, 0.50) * 1e6;
    r.local_p99 = pctl(loc, iters, 0.99) * 1e6;
    free(lat);
    free(loc);
    return r;
}

static size_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        die("bad size '%s'", s);
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'I')
        end++;
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end != '\0' || v == 0)
        die("bad size '%s'", s);
    return (size_t)v;
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: nxc_ucx_raw [options]\n"
"  --pattern LIST     put,get,am_rndv (default: all)\n"
"  --mem LIST         malloc,thp,ucx (default: all)\n"
"                     malloc: posix_memalign + ucp_mem_map (registration)\n"
"                     thp:    2 MiB-aligned mmap + madvise(MADV_HUGEPAGE) + ucp_mem_map\n"
"                     ucx:    ucp_mem_map(UCP_MEM_MAP_ALLOCATE) on both sides\n"
"  --sizes LIST       bytes per transfer, K/M/G suffixes (default 8,4K,64K,1M,16M,64M)\n"
"  --blocks N         N separate transfers of --block-size per iteration, then\n"
"                     one flush + notification (default 1)\n"
"  --block-size S     with --blocks (default 4K); replaces --sizes\n"
"  --iters N          timed iterations per case (default: auto, ~--time s)\n"
"  --warmup N         warm-up iterations (default: auto)\n"
"  --time SEC         time budget per case when --iters is auto (default 0.3)\n"
"  --json             one JSON object per line instead of a table\n"
"  --info             print the endpoint's UCX configuration (lanes) to stderr\n"
"  --no-pin           don't pin initiator and target to the first two allowed CPUs\n"
"  --err-mode MODE    none (default) or peer: the endpoints' UCX error-handling\n"
"                     mode; peer is what a library that must learn of a peer's\n"
"                     death uses (UCX 1.13 then uses TCP only, and its rendezvous\n"
"                     moves data in fragments the receiver copies)\n"
"Transport: UCX_TLS etc. from the environment (unset = UCX default).\n"
"lat_* = post -> target's 8-byte ack seen (round trip); local_* = post ->\n"
"initiator-side completion (flush + notify sent / rndv send done);\n"
"gbps = bytes / wall time of the timed loop (each iteration incl. its ack);\n"
"gbps_local (JSON) = bytes / sum of initiator-side completion times.\n");
}

static void parse_list(const char *arg, const char *const *names, int n, int *flags)
{
    memset(flags, 0, sizeof(int) * (size_t)n);
    char *dup = strdup(arg), *save = NULL;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int i = 0; i < n; i++)
            if (strcmp(t, names[i]) == 0)
                flags[i] = found = 1;
        if (strcmp(t, "all") == 0)
            for (int i = 0; i < n; i++)
                flags[i] = found = 1;
        if (!found)
            die("unknown value '%s'", t);
    }
    free(dup);
}

int main(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof(o));
    for (int i = 0; i < PAT_COUNT; i++)
        o.patterns[i] = 1;
    for (int i = 0; i < MEM_COUNT; i++)
        o.mems[i] = 1;
    static const size_t def_sizes[] = {8, 4096, 65536, 1u << 20, 16u << 20, 64u << 20};
    o.nsizes = (int)(sizeof(def_sizes) / sizeof(def_sizes[0]));
    memcpy(o.sizes, def_sizes, sizeof(def_sizes));
    o.blocks   = 1;
    o.iters    = 0;
    o.warmup   = -1;
    o.budget_s = 0.3;
    o.pin      = 1;
    size_t block_size = 4096;
    int target_fd = -1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (die("%s needs a value", a), (char *)0))
        if (!strcmp(a, "--pattern") || !strcmp(a, "--patterns"))
            parse_list(NEXT(), pat_names, PAT_COUNT, o.patterns);
        else if (!strcmp(a, "--mem"))
            parse_list(NEXT(), mem_names, MEM_COUNT, o.mems);
        else if (!strcmp(a, "--sizes") || !strcmp(a, "--size")) {
            char *dup = strdup(NEXT()), *save = NULL;
            o.nsizes = 0;
            for (char *t = strtok_r(dup, ",", &save); t && o.nsizes < 64;
                 t = strtok_r(NULL, ",", &save))
                o.sizes[o.nsizes++] = parse_size(t);
            free(dup);
        } else if (!strcmp(a, "--blocks"))
            o.blocks = (uint64_t)parse_size(NEXT());
        else if (!strcmp(a, "--block-size"))
            block_size = parse_size(NEXT());
        else if (!strcmp(a, "--iters"))
            o.iters = atol(NEXT());
        else if (!strcmp(a, "--warmup"))
            o.warmup = atol(NEXT());
        else if (!strcmp(a, "--time"))
            o.budget_s = atof(NEXT());
        else if (!strcmp(a, "--json"))
            o.json = 1;
        else if (!strcmp(a, "--info"))
            o.info = 1;
        else if (!strcmp(a, "--no-pin"))
            o.pin = 0;
        else if (!strcmp(a, "--err-mode")) {
            const char *m = NEXT();
            if (!strcmp(m, "peer"))
                g_err_mode = UCP_ERR_HANDLING_MODE_PEER;
            else if (strcmp(m, "none") != 0)
                die("--err-mode is '%s'; use none or peer", m);
        }
        else if (!strcmp(a, "--target-fd"))
            target_fd = atoi(NEXT());
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            die("unknown option '%s'", a);
        }
#undef NEXT
    }
    if (target_fd >= 0) {
        g_role = "target";
        if (o.pin)
            pin_to(1);
        return run_target(target_fd);
    }
    if (o.blocks > 1) {
        o.nsizes   = 1;
        o.sizes[0] = block_size;
    }

    /* fork + exec the target BEFORE any UCX initialisation */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        die("socketpair: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(sv[0]);
        char fdstr[16];
        snprintf(fdstr, sizeof(fdstr), "%d", sv[1]);
        char **nargv = calloc((size_t)argc + 3, sizeof(char *));
        if (!nargv)
            _exit(1);
        for (int i = 0; i < argc; i++)
            nargv[i] = argv[i];
        nargv[argc]     = "--target-fd";
        nargv[argc + 1] = fdstr;
        execv("/proc/self/exe", nargv);
        fprintf(stderr, "nxc_ucx_raw: execv(/proc/self/exe): %s\n", strerror(errno));
        _exit(127);
    }
    close(sv[1]);
    if (o.pin)
        pin_to(0);

    struct peer p;
    memset(&p, 0, sizeof(p));
    p.fd = sv[0];
    ucx_setup(&p);
    set_am_handler(&p, AM_ACK, on_ack);

    const char *tls = getenv("UCX_TLS");
    if (!tls || !*tls)
        tls = "default";
    if (!o.json)
        printf("# nxc_ucx_raw  UCX %s  UCX_TLS=%s  err_mode=%s\n"
               "# lat = post->ack round trip; local = initiator-side completion;"
               " GB/s = 1e9 B/s incl. ack per iteration\n"
               "%-8s %-6s %10s %6s %8s %9s %9s %9s %9s %9s\n",
               ucp_get_version_string(), tls,
               g_err_mode == UCP_ERR_HANDLING_MODE_PEER ? "peer" : "none", "pattern", "mem", "size", "blocks",
               "iters", "GB/s", "lat_p50", "lat_p99", "loc_p50", "loc_p99");
    uint64_t seed = 1;
    for (int m = 0; m < MEM_COUNT; m++) {
        if (!o.mems[m])
            continue;
        for (int pt = 0; pt < PAT_COUNT; pt++) {
            if (!o.patterns[pt])
                continue;
            for (int s = 0; s < o.nsizes; s++) {
                struct result r = run_case(&p, &o, pt, m, o.sizes[s], seed++);
                if (o.json)
                    printf("{\"tool\":\"ucx_raw\",\"pattern\":\"%s\",\"mem\":\"%s\","
                           "\"tls\":\"%s\",\"size\":%zu,\"blocks\":%" PRIu64
                           ",\"iters\":%ld,\"gbps\":%.4f,\"gbps_local\":%.4f,"
                           "\"pinned\":%s,\"err_mode\":\"%s\",\"lat_p50_us\":%.3f,"
                           "\"lat_p99_us\":%.3f,\"local_p50_us\":%.3f,"
                           "\"local_p99_us\":%.3f,\"verified\":true}\n",
                           pat_names[pt], mem_names[m], tls, o.sizes[s], o.blocks,
                           r.iters, r.gbps, r.gbps_local, o.pin ? "true" : "false",
                           g_err_mode == UCP_ERR_HANDLING_MODE_PEER ? "peer" : "none",
                           r.lat_p50, r.lat_p99, r.local_p50,
                           r.local_p99);
                else
                    printf("%-8s %-6s %10zu %6" PRIu64 " %8ld %9.3f %9.2f %9.2f "
                           "%9.2f %9.2f\n",
                           pat_names[pt], mem_names[m], o.sizes[s], o.blocks, r.iters,
                           r.gbps, r.lat_p50, r.lat_p99, r.local_p50, r.local_p99);
                fflush(stdout);
                if (o.info) { /* lanes/transports UCX chose, once wired up */
                    ucp_ep_print_info(p.ep, stderr);
                    o.info = 0;
                }
            }
        }
    }
    struct ctl_req q = {.cmd = CMD_QUIT};
    write_full(p.fd, &q, sizeof(q));
    ucx_teardown(&p);
    int wst;
    if (waitpid(pid, &wst, 0) < 0 || !WIFEXITED(wst) || WEXITSTATUS(wst) != 0)
        die("target process failed (status 0x%x)", wst);
    return 0;
}
