#include "transport/transport.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "transport/protocol.h"
#include "transport/registration.h"


/* Whether an endpoint to a peer should ask UCX for peer-failure reports.
 * Not to a peer over shared memory (it would disable that; a pidfd watches
 * instead); to every other, which the mode keeps off shared memory. */
static int wants_peer_error_mode(const nxc_peer_t *p)
{
    return !p->via_shm;
}

/* Whether the context's resources (ucp_context_print_info) name any of
 * `tls`, e.g. "-- sysv/". */
static int context_lists(ucp_context_h ctx, const char *const *tls)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return 0;
    ucp_context_print_info(ctx, f);
    fclose(f);
    int found = 0;
    for (size_t i = 0; text != NULL && tls[i] != NULL && !found; i++)
        found = strstr(text, tls[i]) != NULL;
    free(text);
    return found;
}

/* Whether UCX may reach same-host peers over shared memory (sysv, posix or
 * xpmem among the context's resources). Without it, same-host traffic goes
 * over TCP, where peer-error mode costs nothing and is needed: UCX aborts the
 * process when a TCP peer fails on an endpoint created without it. */
static int context_has_shm(ucp_context_h ctx)
{
    static const char *const shm[] = { "-- sysv/", "-- posix/", "-- xpmem/", NULL };
    return context_lists(ctx, shm);
}

/* ---- control messages --------------------------------------------------- */

static ucs_status_t ctrl_received(void *arg, const void *header, size_t header_len,
                                  void *data, size_t len, const ucp_am_recv_param_t *param)
{
    nxc_connector_t *c = arg;
    nxc_ctrl_msg_t msg;
    (void)header;
    (void)header_len;
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
        /* We never send control messages by rendezvous: refuse the data. */
        c->spoofed_notifications++;
        return UCS_ERR_REJECTED;
    }
    if (nxc_ctrl_decode(data, len, &msg) != 0) {
        c->spoofed_notifications++;
        return UCS_OK;
    }
    nxc_op_on_ctrl(c, &msg);
    return UCS_OK;
}

/* ---- context, worker, event fd ----------------------------------------- */

/* UCX says "Input/output error" when the fd table is full (its own stderr
 * line has the cause): name the exhausted limit when one is. */
int nxc_ucx_fail(ucs_status_t st, const char *what)
{
    int oom = st == UCS_ERR_NO_MEMORY;
    const char *hint = nxc_limit_hint(oom);
    int code = oom ? NXC_ERR_NO_MEMORY : hint[0] != '\0' ? NXC_ERR_SYSTEM : NXC_ERR_TRANSPORT;
    return nxc_fail(code, "%s failed: %s%s", what, ucs_status_string(st), hint);
}

static int context_has_tcp(ucp_context_h ctx)
{
    static const char *const tcp[] = { "-- tcp/", NULL };
    return context_lists(ctx, tcp);
}

/* InfiniBand and RoCE transports (verbs, mlx5: rc, dc, ud). */
static int context_has_rdma(ucp_context_h ctx)
{
    static const char *const rdma[] = { "-- rc_", "-- dc_", "-- ud_", NULL };
    return context_lists(ctx, rdma);
}

/* UCX 1.13 connects its TCP endpoints with a blocking connect() inside
 * ucp_ep_create unless CONN_NB is set: a peer whose SYN-ACKs never come
 * back (a firewall that drops them) held nxc_begin_* for the kernel's whole
 * SYN retry series (~130 s), past the op's own timeout. Non-blocking, the
 * begin returns at once and the first-answer deadline (NXC_REACH_TIMEOUT_MS)
 * reports the peer unreachable. The user's own UCX_TCP_CONN_NB wins. UCX
 * warns on stdout about a setting that no transport took, so a context
 * without TCP is made again without it. */
static ucs_status_t init_context(ucp_config_t *config, const ucp_params_t *params,
                                 ucp_context_h *out)
{
    int nonblocking = !getenv("UCX_TCP_CONN_NB") &&
                      ucp_config_modify(config, "CONN_NB", "y") == UCS_OK;
    ucs_status_t st = ucp_init(params, config, out);
    if (st != UCS_OK || !nonblocking || context_has_tcp(*out))
        return st;
    ucp_cleanup(*out);
    *out = NULL;
    ucp_config_t *plain;
    if ((st = ucp_config_read(NULL, NULL, &plain)) != UCS_OK)
        return st;
    st = ucp_init(params, plain, out);
    ucp_config_release(plain);
    return st;
}

static int create_context(nxc_connector_t *c)
{
    ucp_config_t *config;
    ucs_status_t st = ucp_config_read(NULL, NULL, &config);
    if (st != UCS_OK)
        return nxc_ucx_fail(st, "reading the UCX configuration (UCX_* variables)");
    ucp_params_t params = {
        .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
        .features = UCP_FEATURE_RMA | UCP_FEATURE_AM | UCP_FEATURE_WAKEUP,
        .mt_workers_shared = 0,
    };
    st = init_context(config, &params, &c->context);
    ucp_config_release(config);
    if (st != UCS_OK)
        return nxc_ucx_init_failed(st, &params);
    ucp_context_attr_t attr = { .field_mask = UCP_ATTR_FIELD_MEMORY_TYPES };
    if (ucp_context_query(c->context, &attr) == UCS_OK)
        c->memory_types = attr.memory_types;
    c->has_shm = context_has_shm(c->context);
    c->has_rdma = context_has_rdma(c->context);
    c->tcp_only_am = context_has_tcp(c->context) && !c->has_rdma;
    return nxc_protocol_choose_default(c);
}

int nxc_transport_listen(nxc_connector_t *c, unsigned id, ucp_am_recv_callback_t cb)
{
    ucp_am_handler_param_t am = {
        .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                      UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
        .id = id,
        .cb = cb,
        .arg = c,
        .flags = UCP_AM_FLAG_WHOLE_MSG,
    };
    ucs_status_t st = ucp_worker_set_am_recv_handler(c->worker, &am);
    return st == UCS_OK ? NXC_OK : nxc_ucx_fail(st, "ucp_worker_set_am_recv_handler");
}

static int create_worker(nxc_connector_t *c)
{
    ucp_worker_params_t params = {
        .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE | UCP_WORKER_PARAM_FIELD_EVENTS,
        /* Serialized: our connector lock admits one thread at a time. */
        .thread_mode = UCS_THREAD_MODE_SERIALIZED,
        .events = UCP_WAKEUP_RMA | UCP_WAKEUP_AMO | UCP_WAKEUP_TX | UCP_WAKEUP_RX,
    };
    ucs_status_t st = ucp_worker_create(c->context, &params, &c->worker);
    if (st != UCS_OK)
        return nxc_ucx_fail(st, "ucp_worker_create");
    st = ucp_worker_get_address(c->worker, &c->worker_addr, &c->worker_addr_len);
    if (st != UCS_OK)
        return nxc_ucx_fail(st, "ucp_worker_get_address");
    if (c->worker_addr_len > NXC_MAX_WORKER_ADDR)
        return nxc_fail(NXC_ERR_TRANSPORT, "the UCX worker address is %zu bytes, more than "
                        "the %u the metadata format allows", c->worker_addr_len,
                        NXC_MAX_WORKER_ADDR);
    st = ucp_worker_get_efd(c->worker, &c->ucx_efd);
    if (st != UCS_OK)
        return nxc_ucx_fail(st, "ucp_worker_get_efd");
    int rc = nxc_transport_listen(c, NXC_AM_CTRL_ID, ctrl_received);
    return rc == NXC_OK ? nxc_protocols_listen(c) : rc;
}

static int add_to_epoll(int epfd, int fd, uint64_t tag)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        return nxc_fail(NXC_ERR_SYSTEM, "epoll_ctl(ADD, fd %d) failed: %s", fd, strerror(errno));
    return NXC_OK;
}

int nxc_transport_init(nxc_connector_t *c)
{
    int rc = create_context(c);
    if (rc == NXC_OK)
        rc = create_worker(c);
    if (rc == NXC_OK)
        rc = add_to_epoll(c->epfd, c->ucx_efd, 0 /* NXC_TAG_UCX */);
    if (rc == NXC_OK)
        rc = nxc_regcache_init(c, c->reg_cache);
    return rc;
}

/* Workers we could not destroy stay reachable from here (see below). */
static struct parked_worker {
    struct parked_worker *next;
    ucp_worker_h          worker;
    ucp_context_h         context;
} *parked_workers;
static pthread_mutex_t parked_lock = PTHREAD_MUTEX_INITIALIZER;

/* UCX 1.13 can neither cancel nor complete requests posted to a same-host
 * peer that died mid-transfer over shared memory, and destroying a worker
 * that still holds them aborts the process in its registration cache. Such
 * a worker is parked instead: a bounded leak, only after a peer's death. */
static void park_worker(nxc_connector_t *c)
{
    struct parked_worker *p = malloc(sizeof(*p));
    if (p == NULL)
        return;
    p->worker = c->worker;
    p->context = c->context;
    pthread_mutex_lock(&parked_lock);
    p->next = parked_workers;
    parked_workers = p;
    pthread_mutex_unlock(&parked_lock);
}

void nxc_transport_fini(nxc_connector_t *c)
{
    if (c->context != NULL)
        nxc_registrations_fini(c);
    if (c->worker_addr != NULL)
        ucp_worker_release_address(c->worker, c->worker_addr);
    if (c->zombies != NULL && c->worker != NULL) {
        park_worker(c);
    } else {
        if (c->worker != NULL)
            ucp_worker_destroy(c->worker);
        if (c->context != NULL)
            ucp_cleanup(c->context);
    }
    c->worker_addr = NULL;
    c->worker = NULL;
    c->context = NULL;
}

int nxc_transport_arm(nxc_connector_t *c, int for_poller)
{
    ucs_status_t st = ucp_worker_arm(c->worker);
    if (st == UCS_OK)
        return nxc_gate_arm(c, for_poller);
    if (st == UCS_ERR_BUSY)
        return 1;
    return nxc_ucx_fail(st, "ucp_worker_arm");
}

/* ---- passive side: exposing memory ------------------------------------- */

static int by_address(const void *a, const void *b)
{
    const nxc_descriptor_t *x = a, *y = b;
    uintptr_t px = (uintptr_t)x->ptr, py = (uintptr_t)y->ptr;
    return (px > py) - (px < py);
}

static int sorted_by_address(const nxc_descriptor_t *d, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if ((uintptr_t)d[i].ptr < (uintptr_t)d[i - 1].ptr)
            return 0;
    return 1;
}

/* Contiguous spans covering exactly the op's non-empty buffers: touching or
 * overlapping buffers share one registration, gaps are never exposed. */
static size_t merge_spans(const nxc_descriptor_t *descs, size_t n, nxc_descriptor_t *spans)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (descs[i].size > 0)
            spans[k++] = descs[i];
    if (!sorted_by_address(spans, k)) /* blocks of a KV region usually are */
        qsort(spans, k, sizeof(*spans), by_address);
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        uintptr_t start = (uintptr_t)spans[i].ptr, end = start + spans[i].size;
        if (m > 0) {
            uintptr_t last_end = (uintptr_t)spans[m - 1].ptr + spans[m - 1].size;
            if (start <= last_end) {
                if (end > last_end)
                    spans[m - 1].size = end - (uintptr_t)spans[m - 1].ptr;
                continue;
            }
        }
        spans[m++] = spans[i];
    }
    return m;
}

/* The region of one span for the op's blob. Its rkey is the registration's
 * (borrowed: the op holds the registration until unexpose), and reaches the
 * whole registration, which may be larger than the span (see the header's
 * exposure rules for registered memory). */
static int map_region(nxc_connector_t *c, const nxc_descriptor_t *span,
                      nxc_registration_t **reg, nxc_region_t *region)
{
    int rc = nxc_reg_for_span(c, span, reg);
    if (rc != NXC_OK)
        return rc;
    region->base = (uint64_t)(uintptr_t)span->ptr;
    region->len = span->size;
    region->flags = (*reg)->origin == NXC_REG_ALLOC ? NXC_REGION_UCX_ALLOCATED : 0;
    region->rkey = (*reg)->rkey;
    region->rkey_len = (uint32_t)(*reg)->rkey_len;
    return NXC_OK;
}

void nxc_transport_free_regions(nxc_region_t *regions, uint32_t n_regions)
{
    (void)n_regions; /* their rkeys belong to the op's registrations */
    free(regions);
}

int nxc_transport_expose(nxc_op_t *op, nxc_region_t **regions_out, uint32_t *n_out)
{
    nxc_connector_t *c = op->c;
    nxc_descriptor_t *spans = malloc((op->n + 1) * sizeof(*spans));
    size_t n_spans = spans ? merge_spans(op->descs, op->n, spans) : 0;
    nxc_region_t *regions = calloc(n_spans + 1, sizeof(*regions));
    op->regs = calloc(n_spans + 1, sizeof(*op->regs));
    if (spans == NULL || regions == NULL || op->regs == NULL) {
        free(spans);
        free(regions);
        nxc_transport_unexpose(op);
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for %zu registrations", op->n);
    }
    int rc = NXC_OK;
    for (size_t i = 0; i < n_spans && rc == NXC_OK; i++) {
        rc = map_region(c, &spans[i], &op->regs[i], &regions[i]);
        if (rc == NXC_OK)
            op->n_regs++;
    }
    free(spans);
    if (rc != NXC_OK) {
        free(regions);
        nxc_transport_unexpose(op);
        return rc;
    }
    *regions_out = regions;
    *n_out = (uint32_t)n_spans;
    return NXC_OK;
}

void nxc_transport_unexpose(nxc_op_t *op)
{
    for (size_t i = 0; i < op->n_regs; i++)
        nxc_reg_put(op->regs[i]);
    free(op->regs);
    op->regs = NULL;
    op->n_regs = 0;
}

/* ---- endpoints ----------------------------------------------------------- */

static void endpoint_failed(void *arg, ucp_ep_h ep, ucs_status_t status)
{
    nxc_peer_t *p = arg;
    (void)ep;
    /* Closing the endpoint from inside UCX's callback is not allowed: note
     * it and let the progress loop fail the peer right after. */
    (void)nxc_peer_report_failure(p, "UCX reported %s on the endpoint to '%s'",
                                  ucs_status_string(status), p->name);
}

static int create_endpoint(nxc_connector_t *c, nxc_peer_t *p)
{
    p->ucx_reports_failure = wants_peer_error_mode(p);
    ucp_ep_params_t params = {
        .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                      UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .address = (const ucp_address_t *)p->worker_addr,
        .err_mode = p->ucx_reports_failure ? UCP_ERR_HANDLING_MODE_PEER
                                           : UCP_ERR_HANDLING_MODE_NONE,
        .err_handler = { .cb = endpoint_failed, .arg = p },
    };
    ucs_status_t st = ucp_ep_create(c->worker, &params, &p->ep);
    if (st == UCS_ERR_UNREACHABLE)
        return nxc_fail(NXC_ERR_PEER_FAILED, "cannot reach worker '%s': %s over the transports "
                        "UCX chose (check UCX_TLS and UCX_NET_DEVICES on both sides: another "
                        "network namespace or host needs a device both reach)", p->name,
                        ucs_status_string(st));
    if (st != UCS_OK && p->pidfd >= 0 && nxc_pidfd_exits_within(p->pidfd, NXC_DYING_WAIT_MS))
        return nxc_fail(NXC_ERR_PEER_FAILED, "worker '%s' (pid %u) exited while we connected "
                        "to it (%s)", p->name, p->identity.pid, ucs_status_string(st));
    if (st != UCS_OK) {
        char what[NXC_NAME_MAX + 32];
        snprintf(what, sizeof(what), "connecting to worker '%s'", p->name);
        return nxc_ucx_fail(st, what);
    }
    return NXC_OK;
}

int nxc_transport_can_close(const nxc_peer_t *p)
{
    /* A dead peer never confirms a flush, so its endpoint can only be
     * force-closed, which UCX supports in peer-error mode alone (measured
     * here: a forced close in mode NONE leaves our requests pending). Once
     * no op refers to the peer, none of ours are, and closing frees it. */
    return !p->dead || p->ucx_reports_failure || p->refs == 0;
}

void nxc_transport_disconnect(nxc_connector_t *c, nxc_peer_t *p)
{
    if (p->ep == NULL || !nxc_transport_can_close(p))
        return;
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
        .flags = p->dead ? UCP_EP_CLOSE_FLAG_FORCE : 0,
    };
    ucs_status_ptr_t req = ucp_ep_close_nbx(p->ep, &param);
    p->ep = NULL;
    if (req != NULL && !UCS_PTR_IS_ERR(req))
        nxc_track_close(c, req);
}

int nxc_transport_connect(nxc_connector_t *c, nxc_peer_t *p, const uint8_t *addr, size_t len)
{
    if (p->ep != NULL)
        return NXC_OK;
    int rc = nxc_require_free_fds(); /* a TCP endpoint opens sockets */
    if (rc != NXC_OK)
        return rc;
    free(p->worker_addr);
    p->worker_addr = malloc(len);
    if (p->worker_addr == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for a worker address");
    memcpy(p->worker_addr, addr, len);
    p->worker_addr_len = len;
    return create_endpoint(c, p);
}

/* ---- active side ----------------------------------------------------------- */

int nxc_transport_prepare(nxc_op_t *op, const nxc_metadata_t *md)
{
    op->proto = nxc_protocol_for_target(op, md);
    NXC_LOG(NXC_LOG_INFO, "connector '%s': %s with worker '%s' (%s host) by %s",
            op->c->name, op->kind == NXC_OP_READ ? "read" : "write", op->peer->name,
            op->peer->same_host ? "same" : "other", op->proto->name);
    return op->proto->prepare(op, md);
}

void nxc_transport_release(nxc_op_t *op)
{
    if (op->proto != NULL)
        op->proto->release(op);
    if (op->ctrl_begin != op->ctrl_begin_inline)
        free(op->ctrl_begin);
    op->ctrl_begin = NULL;
}

typedef void (*sent_fn)(nxc_op_t *op, ucs_status_t st);

/* Sends a control message from `buf` (which lives in the op until the send
 * completes); `done` runs on completion, immediate or later. */
static void send_ctrl(nxc_op_t *op, const nxc_ctrl_msg_t *m, uint8_t *buf,
                      ucp_send_nbx_callback_t cb, sent_fn done)
{
    nxc_peer_t *p = op->peer;
    if (p->ep == NULL || p->dead)
        return; /* the endpoint is gone (teardown or failure): nobody to tell */
    if (!p->reached && p->waiting_since == 0) {
        p->waiting_since = nxc_now_ns();
        op->c->unreached_peers++; /* nxc_peers_check_reached watches it */
    }
    size_t len = nxc_ctrl_encode(m, buf);
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.send = cb,
        .user_data = op,
    };
    ucs_status_ptr_t req = ucp_am_send_nbx(op->peer->ep, NXC_AM_CTRL_ID, NULL, 0, buf, len,
                                           &param);
    if (req != NULL && !UCS_PTR_IS_ERR(req))
        op->inflight++;
    else
        done(op, UCS_PTR_STATUS(req));
}

static void unreachable(nxc_op_t *op, const char *what, ucs_status_t st)
{
    nxc_peer_t *p = op->peer;
    nxc_op_finish(op, NXC_OP_ERRORED, NXC_ERR_PEER_FAILED,
                  "worker '%s' could not be reached (%s) when sending %s%s%s", p->name,
                  ucs_status_string(st), what, p->dead ? ": " : "",
                  p->dead ? p->reason
                          : p->reached ? "" : "; check UCX_TLS and UCX_NET_DEVICES on both sides");
}

/* A message we sent it completed: the peer is reachable. */
static void answered(nxc_op_t *op, ucs_status_t st)
{
    if (st == UCS_OK)
        op->peer->reached = 1;
}

/* DONE or ABORT left our hands. The op completes when the passive side's
 * ACK arrives (nxc_op_on_ctrl), not here. */
static void end_sent(nxc_op_t *op, ucs_status_t st)
{
    answered(op, st);
    if (st != UCS_OK)
        unreachable(op, "the completion notice", st);
}

static void end_sent_cb(void *req, ucs_status_t st, void *user)
{
    ucp_request_free(req);
    end_sent(user, st);
    nxc_op_request_done(user);
}

static void begin_sent(nxc_op_t *op, ucs_status_t st)
{
    answered(op, st);
    if (st != UCS_OK)
        unreachable(op, "the begin notice", st);
}

static void begin_sent_cb(void *req, ucs_status_t st, void *user)
{
    ucp_request_free(req);
    begin_sent(user, st);
    nxc_op_request_done(user);
}

/* A control message from us: the op's key, our identity, and the flags
 * saying how the op moves its data. */
static nxc_ctrl_msg_t our_ctrl_msg(const nxc_connector_t *c, const uint8_t *key, uint64_t tag,
                                   uint8_t type, uint8_t flags)
{
    nxc_ctrl_msg_t m = {
        .type = type,
        .flags = flags,
        .key = key,
        .tag = tag,
        .name = c->name,
        .name_len = strlen(c->name),
        .sender = c->identity,
    };
    return m;
}

static nxc_ctrl_msg_t ctrl_msg(const nxc_op_t *op, uint8_t type)
{
    return our_ctrl_msg(op->c, op->key, op->tag, type, op->proto->ctrl_flags);
}

/* BEGIN (or the one-message WRITE) as it goes now: with our address
 * unless the peer has answered us before (peer.h, knows_us). */
static nxc_ctrl_msg_t begin_msg(const nxc_op_t *op, int with_addr)
{
    nxc_ctrl_msg_t m = ctrl_msg(op, op->begin_inline ? NXC_CTRL_WRITE : NXC_CTRL_BEGIN);
    m.flags |= op->begin_flags;
    if (with_addr) {
        m.flags |= NXC_CTRL_FLAG_ADDR;
        m.addr = (const uint8_t *)op->c->worker_addr;
        m.addr_len = op->c->worker_addr_len;
    }
    if (op->begin_inline) {
        m.data = op->descs[0].ptr;
        m.data_len = op->descs[0].size;
    }
    return m;
}

/* The data is copied into a WRITE, so the op's buffer is free and its DONE
 * has left (for cancel) as soon as the message is posted. */
int nxc_transport_send_begin(nxc_op_t *op, uint8_t flags, int inline_write)
{
    nxc_peer_t *p = op->peer;
    op->begin_flags = flags;
    op->begin_inline = (uint8_t)inline_write;
    op->addr_omitted = p->knows_us && !p->dead;
    nxc_ctrl_msg_t m = begin_msg(op, !op->addr_omitted);
    size_t len = nxc_ctrl_len(&m);
    op->ctrl_begin = len <= sizeof(op->ctrl_begin_inline) ? op->ctrl_begin_inline : malloc(len);
    if (op->ctrl_begin == NULL) {
        int rc = nxc_fail(NXC_ERR_NO_MEMORY, "no memory for a control message");
        nxc_op_finish(op, NXC_OP_ERRORED, rc, "%s", nxc_last_error());
        return rc;
    }
    if (inline_write)
        op->moved = op->done_sent = 1;
    if (op->addr_omitted)
        nxc_peer_sent_addrless(op->c, p);
    send_ctrl(op, &m, op->ctrl_begin, begin_sent_cb, begin_sent);
    return NXC_OK;
}

static void detached_sent_cb(void *req, ucs_status_t st, void *buf)
{
    (void)st; /* a peer that is gone needs no answer */
    ucp_request_free(req);
    free(buf);
}

/* Sends m to p from a buffer of its own, freed when the send completes:
 * for messages no op waits on (a refusal, a resent BEGIN). */
static void send_detached(nxc_peer_t *p, const nxc_ctrl_msg_t *m)
{
    uint8_t *buf = malloc(nxc_ctrl_len(m));
    if (buf == NULL || p->ep == NULL || p->dead) {
        free(buf);
        return;
    }
    size_t len = nxc_ctrl_encode(m, buf);
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.send = detached_sent_cb,
        .user_data = buf,
    };
    ucs_status_ptr_t req = ucp_am_send_nbx(p->ep, NXC_AM_CTRL_ID, NULL, 0, buf, len, &param);
    if (req == NULL || UCS_PTR_IS_ERR(req))
        free(buf);
}

/* The passive side may have dropped our address-less BEGIN, and with it
 * the DONE that followed (no owner yet): both go again, the BEGIN with our
 * address. A passive side that had taken them ignores the repeats (a
 * repeated BEGIN is a no-op; a DONE or WRITE for an op that ended gets a
 * NACK that finds no op here). */
void nxc_transport_resend_begin(nxc_op_t *op)
{
    op->addr_omitted = 0;
    nxc_ctrl_msg_t m = begin_msg(op, 1);
    send_detached(op->peer, &m);
    if (op->done_sent && !op->begin_inline) {
        nxc_ctrl_msg_t done = ctrl_msg(op, NXC_CTRL_DONE);
        send_detached(op->peer, &done);
    }
}

static void told_sent(nxc_op_t *op, ucs_status_t st)
{
    answered(op, st); /* else the owner would be declared unreachable */
    /* an owner that is gone needs no answer */
    if (op->answering) {
        op->answering = 0;
        op->c->n_answering--;
        nxc_notify_change(op->c);
    }
}

static void told_sent_cb(void *req, ucs_status_t st, void *user)
{
    ucp_request_free(req);
    told_sent(user, st);
    nxc_op_request_done(user);
}

void nxc_transport_tell_owner(nxc_op_t *op, uint8_t type, uint8_t reason)
{
    nxc_ctrl_msg_t m = our_ctrl_msg(op->c, op->key, op->tag, type, 0);
    m.reason = reason;
    if (op->peer->ep != NULL && !op->peer->dead) { /* else send_ctrl sends nothing */
        op->answering = 1;
        op->c->n_answering++;
    }
    send_ctrl(op, &m, op->ctrl_end, told_sent_cb, told_sent);
}

void nxc_transport_refuse(nxc_connector_t *c, const nxc_ctrl_msg_t *m, uint8_t reason)
{
    nxc_peer_t *p = nxc_peer_for_sender(c, m->name, m->name_len, &m->sender, m->addr,
                                        m->addr_len);
    if (p == NULL)
        return;
    nxc_ctrl_msg_t nack = our_ctrl_msg(c, m->key, m->tag, NXC_CTRL_NACK, 0);
    nack.reason = reason;
    if (!p->dead && nxc_transport_connect(c, p, m->addr, m->addr_len) == NXC_OK)
        send_detached(p, &nack);
    nxc_peer_unref(c, p); /* a live peer stays cached with its endpoint */
}

int nxc_status_means_peer_gone(ucs_status_t st)
{
    return st == UCS_ERR_CONNECTION_RESET || st == UCS_ERR_ENDPOINT_TIMEOUT ||
           st == UCS_ERR_UNREACHABLE || st == UCS_ERR_CANCELED || st == UCS_ERR_IO_ERROR ||
           st == UCS_ERR_REJECTED;
}

void nxc_transport_moved(nxc_op_t *op, ucs_status_t st)
{
    nxc_peer_t *p = op->peer;
    op->moved = 1;
    if (op->refused) {
        nxc_op_refused(op, op->refused); /* its NACK came first: now it ends */
        return;
    }
    if (st == UCS_ERR_REJECTED)
        return; /* the passive side refused our data, and says why in its NACK */
    if (st != UCS_OK) {
        nxc_op_finish(op, NXC_OP_ERRORED,
                      p->dead || nxc_status_means_peer_gone(st) ? NXC_ERR_PEER_FAILED
                                                                : NXC_ERR_TRANSPORT,
                      "moving data %s worker '%s' failed: %s%s%s",
                      op->kind == NXC_OP_READ ? "from" : "to", p->name, ucs_status_string(st),
                      p->dead ? "; " : "", p->dead ? p->reason : "");
        return;
    }
    op->proto->tell_moved(op);
}

void nxc_transport_send_end(nxc_op_t *op)
{
    if (op->status == NXC_OP_IN_PROGRESS || op->status == NXC_OP_CANCELLED) {
        nxc_ctrl_msg_t m = ctrl_msg(op, op->status == NXC_OP_IN_PROGRESS ? NXC_CTRL_DONE
                                                                          : NXC_CTRL_ABORT);
        op->done_sent = m.type == NXC_CTRL_DONE;
        send_ctrl(op, &m, op->ctrl_end, end_sent_cb, end_sent);
    }
}

void nxc_transport_start(nxc_op_t *op)
{
    op->proto->start(op);
}

void nxc_transport_cancelled(nxc_op_t *op)
{
    if (op->proto->cancelled != NULL)
        op->proto->cancelled(op);
}
