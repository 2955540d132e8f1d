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
    op->rkey_owned = calloc(b->n_regions + 1, 1);
    if (op->rkey_owned == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for %u remote keys", b->n_regions);
    for (uint32_t r = 0; r < b->n_regions; r++) {
        const nxc_region_t *reg = &b->regions[r];
        ucs_status_t st = UCS_OK;
        if (reg->flags & NXC_REGION_UCX_ALLOCATED)
            op->rkeys[r] = nxc_peer_cached_rkey(op->peer, reg->rkey, reg->rkey_len, &st);
        if (op->rkeys[r] == NULL && st == UCS_OK) {
            st = ucp_ep_rkey_unpack(op->peer->ep, reg->rkey, &op->rkeys[r]);
            op->rkey_owned[r] = st == UCS_OK;
        }
        op->n_rkeys++;
        if (st != UCS_OK)
            return nxc_fail(NXC_ERR_BAD_METADATA, "remote key %u of worker '%s' cannot be "
                            "unpacked: %s", r, md->name, ucs_status_string(st));
    }
    for (size_t i = 0; i < op->n; i++) {
        uint64_t addr = (uint64_t)(uintptr_t)md->descs[i].ptr;
        op->raddr[i] = addr;
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
        op->rkey_index[i] = lo;
    }
    return NXC_OK;
}

/* Also its drop_remote: rkeys must go before the worker. */
static void rma_release(nxc_op_t *op)
{
    for (size_t r = 0; r < op->n_rkeys; r++)
        if (op->rkey_owned[r])
            ucp_rkey_destroy(op->rkeys[r]);
    op->n_rkeys = 0;
    free(op->rkey_owned);
    op->rkey_owned = NULL;
    free(op->rkeys);
    free(op->raddr);
    free(op->rkey_index);
    op->rkeys = NULL;
    op->raddr = NULL;
    op->rkey_index = NULL;
}

static void flushed_cb(void *req, ucs_status_t st, void *user)
{
    ucp_request_free(req);
    nxc_transport_moved(user, st);
    nxc_op_request_done(user);
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
