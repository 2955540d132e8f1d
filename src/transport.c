#include "transport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "error.h"

#define NXC_AM_CTRL_ID     0x4e58u /* one AM id for all control messages */
#define NXC_CTRL_VERSION   1u
#define NXC_CTRL_FIXED_LEN 48u     /* bytes before the sender's name */

/* Whether an endpoint to a peer should ask UCX for peer-failure reports.
 * Same host: no (it would disable shared memory; a pidfd watches instead). */
static ucp_err_handling_mode_t err_mode_for(const nxc_peer_t *p)
{
    return p->same_host ? UCP_ERR_HANDLING_MODE_NONE : UCP_ERR_HANDLING_MODE_PEER;
}

/* ---- control messages --------------------------------------------------- */

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Layout: u8 type, u8 version, u16 name_len, u32 pid, u64 pidns,
 * 16 B host id, 16 B key, name. */
static size_t ctrl_encode(const nxc_connector_t *c, uint8_t type,
                          const uint8_t key[NXC_KEY_BYTES], uint8_t *buf)
{
    size_t name_len = strlen(c->name);
    buf[0] = type;
    buf[1] = NXC_CTRL_VERSION;
    put_u16(buf + 2, (uint16_t)name_len);
    put_u32(buf + 4, c->identity.pid);
    put_u64(buf + 8, c->identity.pidns);
    memcpy(buf + 16, c->identity.host_id, NXC_HOST_ID_BYTES);
    memcpy(buf + 32, key, NXC_KEY_BYTES);
    memcpy(buf + NXC_CTRL_FIXED_LEN, c->name, name_len);
    return NXC_CTRL_FIXED_LEN + name_len;
}

static ucs_status_t ctrl_received(void *arg, const void *header, size_t header_len,
                                  void *data, size_t len, const ucp_am_recv_param_t *param)
{
    nxc_connector_t *c = arg;
    const uint8_t *m = data;
    (void)header;
    (void)header_len;
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
        /* We never send control messages by rendezvous: refuse the data. */
        ucp_am_data_release(c->worker, data);
        c->spoofed_notifications++;
        return UCS_OK;
    }
    if (len < NXC_CTRL_FIXED_LEN || m[1] != NXC_CTRL_VERSION ||
        get_u16(m + 2) == 0 || get_u16(m + 2) > NXC_NAME_MAX ||
        len != NXC_CTRL_FIXED_LEN + get_u16(m + 2)) {
        c->spoofed_notifications++;
        return UCS_OK;
    }
    nxc_identity_t sender;
    sender.pid = get_u32(m + 4);
    sender.pidns = get_u64(m + 8);
    memcpy(sender.host_id, m + 16, NXC_HOST_ID_BYTES);
    nxc_op_on_ctrl(c, m[0], m + 32, (const char *)m + NXC_CTRL_FIXED_LEN,
                   get_u16(m + 2), &sender);
    return UCS_OK;
}

/* ---- context, worker, event fd ----------------------------------------- */

static int ucx_fail(ucs_status_t st, const char *what)
{
    return nxc_fail(NXC_ERR_TRANSPORT, "%s failed: %s", what, ucs_status_string(st));
}

static int create_context(nxc_connector_t *c)
{
    ucp_config_t *config;
    ucs_status_t st = ucp_config_read(NULL, NULL, &config);
    if (st != UCS_OK)
        return ucx_fail(st, "reading the UCX configuration (UCX_* variables)");
    ucp_params_t params = {
        .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
        .features = UCP_FEATURE_RMA | UCP_FEATURE_AM | UCP_FEATURE_WAKEUP,
        .mt_workers_shared = 0,
    };
    st = ucp_init(&params, config, &c->context);
    ucp_config_release(config);
    if (st != UCS_OK)
        return ucx_fail(st, "ucp_init");
    ucp_context_attr_t attr = { .field_mask = UCP_ATTR_FIELD_MEMORY_TYPES };
    if (ucp_context_query(c->context, &attr) == UCS_OK)
        c->memory_types = attr.memory_types;
    return NXC_OK;
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
        return ucx_fail(st, "ucp_worker_create");
    st = ucp_worker_get_address(c->worker, &c->worker_addr, &c->worker_addr_len);
    if (st != UCS_OK)
        return ucx_fail(st, "ucp_worker_get_address");
    if (c->worker_addr_len > NXC_MAX_WORKER_ADDR)
        return nxc_fail(NXC_ERR_TRANSPORT, "the UCX worker address is %zu bytes, more than "
                        "the %u the metadata format allows", c->worker_addr_len,
                        NXC_MAX_WORKER_ADDR);
    st = ucp_worker_get_efd(c->worker, &c->ucx_efd);
    if (st != UCS_OK)
        return ucx_fail(st, "ucp_worker_get_efd");
    ucp_am_handler_param_t am = {
        .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                      UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
        .id = NXC_AM_CTRL_ID,
        .cb = ctrl_received,
        .arg = c,
        .flags = UCP_AM_FLAG_WHOLE_MSG,
    };
    st = ucp_worker_set_am_recv_handler(c->worker, &am);
    if (st != UCS_OK)
        return ucx_fail(st, "ucp_worker_set_am_recv_handler");
    return NXC_OK;
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
    return rc;
}

void nxc_transport_fini(nxc_connector_t *c)
{
    if (c->worker_addr != NULL)
        ucp_worker_release_address(c->worker, c->worker_addr);
    if (c->worker != NULL)
        ucp_worker_destroy(c->worker);
    if (c->context != NULL)
        ucp_cleanup(c->context);
    c->worker_addr = NULL;
    c->worker = NULL;
    c->context = NULL;
}

int nxc_transport_arm(nxc_connector_t *c)
{
    ucs_status_t st = ucp_worker_arm(c->worker);
    if (st == UCS_OK)
        return 0;
    if (st == UCS_ERR_BUSY)
        return 1;
    return ucx_fail(st, "ucp_worker_arm");
}

/* ---- passive side: exposing memory ------------------------------------- */

static int by_address(const void *a, const void *b)
{
    const nxc_descriptor_t *x = a, *y = b;
    uintptr_t px = (uintptr_t)x->ptr, py = (uintptr_t)y->ptr;
    return (px > py) - (px < py);
}

/* Contiguous spans covering exactly the op's non-empty buffers: touching or
 * overlapping buffers share one registration, gaps are never exposed. */
static size_t merge_spans(const nxc_descriptor_t *descs, size_t n, nxc_descriptor_t *spans)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (descs[i].size > 0)
            spans[k++] = descs[i];
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

static int map_region(nxc_connector_t *c, const nxc_descriptor_t *span, ucp_mem_h *memh,
                      nxc_region_t *region)
{
    ucp_mem_map_params_t params = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH,
        .address = span->ptr,
        .length = span->size,
    };
    ucs_status_t st = ucp_mem_map(c->context, &params, memh);
    if (st != UCS_OK)
        return nxc_fail(NXC_ERR_TRANSPORT, "registering %zu bytes at %p failed: %s",
                        span->size, span->ptr, ucs_status_string(st));
    void *rkey;
    size_t rkey_len;
    st = ucp_rkey_pack(c->context, *memh, &rkey, &rkey_len);
    if (st != UCS_OK) {
        ucp_mem_unmap(c->context, *memh);
        return ucx_fail(st, "ucp_rkey_pack");
    }
    region->base = (uint64_t)(uintptr_t)span->ptr;
    region->len = span->size;
    region->flags = 0;
    region->rkey = rkey;
    region->rkey_len = (uint32_t)rkey_len;
    return NXC_OK;
}

void nxc_transport_free_regions(nxc_region_t *regions, uint32_t n_regions)
{
    for (uint32_t i = 0; regions != NULL && i < n_regions; i++)
        ucp_rkey_buffer_release((void *)regions[i].rkey);
    free(regions);
}

int nxc_transport_expose(nxc_op_t *op, nxc_region_t **regions_out, uint32_t *n_out)
{
    nxc_connector_t *c = op->c;
    nxc_descriptor_t *spans = malloc((op->n + 1) * sizeof(*spans));
    size_t n_spans = spans ? merge_spans(op->descs, op->n, spans) : 0;
    nxc_region_t *regions = calloc(n_spans + 1, sizeof(*regions));
    op->memh = calloc(n_spans + 1, sizeof(*op->memh));
    if (spans == NULL || regions == NULL || op->memh == NULL) {
        free(spans);
        free(regions);
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for %zu registrations", op->n);
    }
    int rc = NXC_OK;
    for (size_t i = 0; i < n_spans && rc == NXC_OK; i++) {
        rc = map_region(c, &spans[i], &op->memh[i], &regions[i]);
        if (rc == NXC_OK)
            op->n_memh++;
    }
    free(spans);
    if (rc != NXC_OK) {
        nxc_transport_free_regions(regions, (uint32_t)op->n_memh);
        nxc_transport_unexpose(op);
        return rc;
    }
    *regions_out = regions;
    *n_out = (uint32_t)n_spans;
    return NXC_OK;
}

void nxc_transport_unexpose(nxc_op_t *op)
{
    for (size_t i = 0; i < op->n_memh; i++)
        ucp_mem_unmap(op->c->context, op->memh[i]);
    free(op->memh);
    op->memh = NULL;
    op->n_memh = 0;
}

/* ---- endpoints ----------------------------------------------------------- */

static void endpoint_failed(void *arg, ucp_ep_h ep, ucs_status_t status)
{
    nxc_peer_t *p = arg;
    (void)ep;
    /* Closing the endpoint from inside UCX's callback is not allowed: note
     * it and let the progress loop fail the peer right after. */
    if (!p->dead && !p->failing) {
        p->failing = 1;
        snprintf(p->reason, sizeof(p->reason), "UCX reported %s on the endpoint to '%s'",
                 ucs_status_string(status), p->name);
        p->owner->failing_peers++;
    }
}

int nxc_transport_connect(nxc_connector_t *c, nxc_peer_t *p)
{
    ucp_ep_params_t params = {
        .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                      UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .address = (const ucp_address_t *)p->worker_addr,
        .err_mode = err_mode_for(p),
        .err_handler = { .cb = endpoint_failed, .arg = p },
    };
    ucs_status_t st = ucp_ep_create(c->worker, &params, &p->ep);
    if (st != UCS_OK)
        return nxc_fail(NXC_ERR_TRANSPORT, "connecting to worker '%s' failed: %s",
                        p->name, ucs_status_string(st));
    return NXC_OK;
}

void nxc_transport_disconnect(nxc_connector_t *c, nxc_peer_t *p)
{
    if (p->ep == NULL)
        return;
    /* A dead peer will never confirm a flush: close without asking it. */
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
        .flags = p->dead ? UCP_EP_CLOSE_FLAG_FORCE : 0,
    };
    ucs_status_ptr_t req = ucp_ep_close_nbx(p->ep, &param);
    p->ep = NULL;
    if (req != NULL && !UCS_PTR_IS_ERR(req))
        nxc_track_close(c, req);
}

/* ---- active side: the transfer ------------------------------------------ */

int nxc_transport_prepare(nxc_op_t *op, const nxc_metadata_t *md)
{
    const nxc_agent_blob_t *b = &md->blob;
    for (uint32_t r = 1; r < b->n_regions; r++)
        if (b->regions[r].base < b->regions[r - 1].base + b->regions[r - 1].len)
            return nxc_fail(NXC_ERR_BAD_METADATA, "agent blob regions %u and %u are not "
                            "sorted and disjoint", r - 1, r);
    op->rkeys = calloc(b->n_regions + 1, sizeof(*op->rkeys));
    op->raddr = calloc(op->n + 1, sizeof(*op->raddr));
    op->rkey_index = calloc(op->n + 1, sizeof(*op->rkey_index));
    if (op->rkeys == NULL || op->raddr == NULL || op->rkey_index == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for %u remote keys", b->n_regions);
    for (uint32_t r = 0; r < b->n_regions; r++) {
        ucs_status_t st = ucp_ep_rkey_unpack(op->peer->ep, b->regions[r].rkey, &op->rkeys[r]);
        if (st != UCS_OK)
            return nxc_fail(NXC_ERR_BAD_METADATA, "remote key %u of worker '%s' cannot be "
                            "unpacked: %s", r, md->name, ucs_status_string(st));
        op->n_rkeys++;
    }
    for (size_t i = 0; i < op->n; i++) {
        uint64_t addr = (uint64_t)(uintptr_t)md->descs[i].ptr;
        op->raddr[i] = addr;
        if (md->descs[i].size == 0)
            continue;
        size_t lo = 0, hi = b->n_regions;
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (b->regions[mid].base <= addr)
                lo = mid;
            else
                hi = mid;
        }
        op->rkey_index[i] = lo;
    }
    return NXC_OK;
}

void nxc_transport_release_rkeys(nxc_op_t *op)
{
    for (size_t r = 0; r < op->n_rkeys; r++)
        ucp_rkey_destroy(op->rkeys[r]);
    op->n_rkeys = 0;
}

static void send_ctrl(nxc_op_t *op, uint8_t type, uint8_t *buf, ucp_send_nbx_callback_t cb);

/* DONE left our hands: the passive side will complete on its own. */
static void end_sent(nxc_op_t *op, ucs_status_t st)
{
    if (st != UCS_OK)
        nxc_op_finish(op, NXC_OP_ERRORED, NXC_ERR_PEER_FAILED,
                      "the completion notice to worker '%s' could not be sent: %s",
                      op->peer->name, ucs_status_string(st));
    else if (op->ctrl_end[0] == NXC_CTRL_DONE)
        nxc_op_finish(op, NXC_OP_COMPLETE, NXC_OK, "complete");
}

static void end_sent_cb(void *req, ucs_status_t st, void *user)
{
    ucp_request_free(req);
    end_sent(user, st);
    nxc_op_request_done(user);
}

static void begin_sent(nxc_op_t *op, ucs_status_t st)
{
    if (st != UCS_OK)
        nxc_op_finish(op, NXC_OP_ERRORED, NXC_ERR_PEER_FAILED,
                      "the begin notice to worker '%s' could not be sent: %s",
                      op->peer->name, ucs_status_string(st));
}

static void begin_sent_cb(void *req, ucs_status_t st, void *user)
{
    ucp_request_free(req);
    begin_sent(user, st);
    nxc_op_request_done(user);
}

/* All puts/gets are done (flush completed): tell the passive side. */
static void flushed(nxc_op_t *op, ucs_status_t st)
{
    if (st != UCS_OK) {
        nxc_op_finish(op, NXC_OP_ERRORED, op->peer->dead ? NXC_ERR_PEER_FAILED : NXC_ERR_TRANSPORT,
                      "moving data %s worker '%s' failed: %s%s%s",
                      op->kind == NXC_OP_READ ? "from" : "to", op->peer->name,
                      ucs_status_string(st), op->peer->dead ? "; " : "",
                      op->peer->dead ? op->peer->reason : "");
        return;
    }
    if (op->peer->dead)
        return;
    if (op->status == NXC_OP_IN_PROGRESS)
        send_ctrl(op, NXC_CTRL_DONE, op->ctrl_end, end_sent_cb);
    else if (op->status == NXC_OP_CANCELLED)
        send_ctrl(op, NXC_CTRL_ABORT, op->ctrl_end, end_sent_cb);
}

static void flushed_cb(void *req, ucs_status_t st, void *user)
{
    ucp_request_free(req);
    flushed(user, st);
    nxc_op_request_done(user);
}

static void send_ctrl(nxc_op_t *op, uint8_t type, uint8_t *buf, ucp_send_nbx_callback_t cb)
{
    size_t len = ctrl_encode(op->c, type, op->key, buf);
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.send = cb,
        .user_data = op,
    };
    ucs_status_ptr_t req = ucp_am_send_nbx(op->peer->ep, NXC_AM_CTRL_ID, NULL, 0, buf, len,
                                           &param);
    if (req != NULL && !UCS_PTR_IS_ERR(req)) {
        op->inflight++;
        return;
    }
    ucs_status_t st = UCS_PTR_STATUS(req);
    if (cb == begin_sent_cb)
        begin_sent(op, st);
    else
        end_sent(op, st);
}

static ucs_status_ptr_t post_one(nxc_op_t *op, size_t i)
{
    ucp_request_param_t param = { .op_attr_mask = 0 };
    ucp_rkey_h rkey = op->rkeys[op->rkey_index[i]];
    if (op->kind == NXC_OP_WRITE)
        return ucp_put_nbx(op->peer->ep, op->descs[i].ptr, op->descs[i].size, op->raddr[i],
                           rkey, &param);
    return ucp_get_nbx(op->peer->ep, op->descs[i].ptr, op->descs[i].size, op->raddr[i],
                       rkey, &param);
}

int nxc_transport_start(nxc_op_t *op)
{
    send_ctrl(op, NXC_CTRL_BEGIN, op->ctrl_begin, begin_sent_cb);
    for (size_t i = 0; i < op->n && !nxc_op_is_final(op); i++) {
        if (op->descs[i].size == 0)
            continue;
        ucs_status_ptr_t req = post_one(op, i);
        if (UCS_PTR_IS_ERR(req)) {
            nxc_op_finish(op, NXC_OP_ERRORED, NXC_ERR_TRANSPORT,
                          "posting descriptor %zu (%zu bytes) failed: %s", i,
                          op->descs[i].size, ucs_status_string(UCS_PTR_STATUS(req)));
            break;
        }
        /* Freed now, released by UCX when done: the flush below tells us. */
        if (req != NULL)
            ucp_request_free(req);
    }
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.send = flushed_cb,
        .user_data = op,
    };
    ucs_status_ptr_t req = ucp_ep_flush_nbx(op->peer->ep, &param);
    if (req != NULL && !UCS_PTR_IS_ERR(req))
        op->inflight++;
    else
        flushed(op, UCS_PTR_STATUS(req));
    return NXC_OK;
}
