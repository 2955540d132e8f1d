/* The one-sided protocol: one ucp_put_nbx / ucp_get_nbx per descriptor on
 * the endpoint shared by every op to that peer, then one flush; when the
 * flush completes the bytes are in place and DONE may go. */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "transport/protocol.h"
#include "transport/transport.h"

static int rma_prepare(nxc_op_t *op, const nxc_metadata_t *md)
{
    struct nxc_rma_op *rma = &op->state.rma;
    const nxc_agent_blob_t *b = &md->blob;
    for (uint32_t r = 1; r < b->n_regions; r++)
        if (b->regions[r].base < b->regions[r - 1].base + b->regions[r - 1].len)
            return nxc_fail(NXC_ERR_BAD_METADATA, "agent blob regions %u and %u are not "
                            "sorted and disjoint", r - 1, r);
    rma->rkeys = calloc(b->n_regions + 1, sizeof(*rma->rkeys));
    rma->raddr = calloc(op->n + 1, sizeof(*rma->raddr));
    rma->rkey_index = calloc(op->n + 1, sizeof(*rma->rkey_index));
    if (rma->rkeys == NULL || rma->raddr == NULL || rma->rkey_index == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for %u remote keys", b->n_regions);
    rma->rkey_owned = calloc(b->n_regions + 1, 1);
    if (rma->rkey_owned == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for %u remote keys", b->n_regions);
    for (uint32_t r = 0; r < b->n_regions; r++) {
        const nxc_region_t *reg = &b->regions[r];
        ucs_status_t st = UCS_OK;
        if (reg->flags & NXC_REGION_UCX_ALLOCATED)
            rma->rkeys[r] = nxc_peer_cached_rkey(op->peer, reg->rkey, reg->rkey_len, &st);
        if (rma->rkeys[r] == NULL && st == UCS_OK) {
            st = ucp_ep_rkey_unpack(op->peer->ep, reg->rkey, &rma->rkeys[r]);
            rma->rkey_owned[r] = st == UCS_OK;
        }
        rma->n_rkeys++;
        if (st != UCS_OK)
            return nxc_fail(NXC_ERR_BAD_METADATA, "remote key %u of worker '%s' cannot be "
                            "unpacked: %s", r, md->name, ucs_status_string(st));
    }
    for (size_t i = 0; i < op->n; i++) {
        uint64_t addr = (uint64_t)(uintptr_t)md->descs[i].ptr;
        rma->raddr[i] = addr;
        if (md->descs[i].size == 0)
            continue;
        /* The parser checked every descriptor lies inside a region. */
        size_t lo = 0, hi = b->n_regions;
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (b->regions[mid].base <= addr)
                lo = mid;
            else
                hi = mid;
        }
        rma->rkey_index[i] = lo;
    }
    return NXC_OK;
}

/* Also its drop_remote: rkeys must go before the worker. */
static void rma_release(nxc_op_t *op)
{
    struct nxc_rma_op *rma = &op->state.rma;
    for (size_t r = 0; r < rma->n_rkeys; r++)
        if (rma->rkey_owned[r])
            ucp_rkey_destroy(rma->rkeys[r]);
    rma->n_rkeys = 0;
    free(rma->rkey_owned);
    rma->rkey_owned = NULL;
    free(rma->rkeys);
    free(rma->raddr);
    free(rma->rkey_index);
    rma->rkeys = NULL;
    rma->raddr = NULL;
    rma->rkey_index = NULL;
}

static void flushed_cb(void *req, ucs_status_t st, void *user)
{
    ucp_request_free(req);
    nxc_transport_moved(user, st);
    nxc_op_request_done(user);
}

static ucs_status_ptr_t post_one(nxc_op_t *op, size_t i)
{
    struct nxc_rma_op *rma = &op->state.rma;
    ucp_request_param_t param = { .op_attr_mask = 0 };
    ucp_rkey_h rkey = rma->rkeys[rma->rkey_index[i]];
    if (op->kind == NXC_OP_WRITE)
        return ucp_put_nbx(op->peer->ep, op->descs[i].ptr, op->descs[i].size, rma->raddr[i],
                           rkey, &param);
    return ucp_get_nbx(op->peer->ep, op->descs[i].ptr, op->descs[i].size, rma->raddr[i],
                       rkey, &param);
}

void nxc_rma_post(nxc_op_t *op)
{
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
    /* Flush even after a failure: it tells us when the posted ones are over. */
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.send = flushed_cb,
        .user_data = op,
    };
    ucs_status_ptr_t req = ucp_ep_flush_nbx(op->peer->ep, &param);
    if (req != NULL && !UCS_PTR_IS_ERR(req))
        op->inflight++;
    else
        nxc_transport_moved(op, UCS_PTR_STATUS(req));
}

static void rma_start(nxc_op_t *op)
{
    if (nxc_transport_send_begin(op, 0, 0) == NXC_OK)
        nxc_rma_post(op);
}

/* Puts and gets run until the flush says they are over. */
static int rma_busy(const nxc_op_t *op)
{
    (void)op;
    return 1;
}

/* Puts read an active write's buffers until their flush. */
static int rma_sending(const nxc_op_t *op)
{
    return !op->passive && op->kind == NXC_OP_WRITE && !op->moved;
}

/* The active side's flush completed before its DONE: everything is in
 * place when DONE is heard; nothing is received or counted by messages. */
const nxc_protocol_t nxc_protocol_rma = {
    .name = "RMA",
    .ctrl_flags = 0,
    .prepare = rma_prepare,
    .start = rma_start,
    .tell_moved = nxc_transport_send_end,
    .cancelled = NULL,
    .busy = rma_busy,
    .begun = NULL,
    .take_inline = NULL,
    .all_landed = NULL,
    .receiving = NULL,
    .sending = rma_sending,
    .bytes_moved = NULL,
    .drop_remote = rma_release,
    .release = rma_release,
};
