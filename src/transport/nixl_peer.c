/* Operations toward NIXL agents (see nixl_peer.h). */
#include <stdlib.h>
#include <string.h>

#include "codec/nixl_blob.h"
#include "common/encoding.h"
#include "common/error.h"
#include "common/util.h"
#include "engine/connector.h"
#include "transport/nixl_peer.h"
#include "transport/protocol.h"
#include "transport/transport.h"

/* Active side: runs on RMA (its rkeys, puts/gets and flush), with the
 * notification instead of our control messages. */
static int nixl_prepare(nxc_op_t *op, const nxc_metadata_t *md)
{
    struct nxc_nixl_op *nixl = &op->state.nixl;
    op->wire = NXC_WIRE_NIXL;
    int rc = nxc_nixl_notif_encode(op->c->name, strlen(op->c->name), md->key_text, md->key_len,
                                   &nixl->notif, &nixl->notif_len);
    return rc == NXC_OK ? nxc_protocol_rma.prepare(op, md) : rc;
}

static void nixl_release(nxc_op_t *op)
{
    struct nxc_nixl_op *nixl = &op->state.nixl;
    nxc_protocol_rma.release(op);
    free(nixl->notif);
    nixl->notif = NULL;
}

static void probed(nxc_op_t *op, ucs_status_t st)
{
    if (st == UCS_OK)
        op->peer->reached = 1; /* else the data's flush reports the error */
}

static void probed_cb(void *req, ucs_status_t st, void *user)
{
    ucp_request_free(req);
    probed(user, st);
    nxc_op_request_done(user);
}

/* Reads one byte of the op's first remote buffer before the data moves:
 * its answer is the agent's first, and proves UCX reaches it. The flush of
 * the whole transfer would prove it too, but a big transfer to a busy agent
 * may take longer than the reach deadline without anything being wrong. */
static void probe_reach(nxc_op_t *op)
{
    struct nxc_nixl_op *nixl = &op->state.nixl;
    for (size_t i = 0; i < op->n; i++) {
        if (op->descs[i].size == 0)
            continue;
        ucp_request_param_t param = {
            .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
            .cb.send = probed_cb,
            .user_data = op,
        };
        ucs_status_ptr_t req = ucp_get_nbx(op->peer->ep, &nixl->probe, 1, nixl->rma.raddr[i],
                                           nixl->rma.rkeys[nixl->rma.rkey_index[i]], &param);
        if (req != NULL && !UCS_PTR_IS_ERR(req))
            op->inflight++;
        else
            probed(op, UCS_PTR_STATUS(req));
        return;
    }
}

static void nixl_drop_remote(nxc_op_t *op)
{
    nxc_protocol_rma.drop_remote(op);
}

static int nixl_busy(const nxc_op_t *op)
{
    return nxc_protocol_rma.busy(op);
}

static int nixl_sending(const nxc_op_t *op)
{
    return nxc_protocol_rma.sending(op);
}

static void nixl_start(nxc_op_t *op)
{
    nxc_peer_t *p = op->peer;
    /* An agent UCX cannot reach is reported failed by
     * nxc_peers_check_reached, as for our peers; the probe's answer (or,
     * failing a probe, the flush's) is the agent's first. */
    if (!p->reached && p->waiting_since == 0) {
        p->waiting_since = nxc_now_ns();
        op->c->unreached_peers++;
    }
    if (!p->reached)
        probe_reach(op);
    nxc_rma_post(op);
}

static void notified(nxc_op_t *op, ucs_status_t st)
{
    if (st != UCS_OK)
        nxc_op_finish(op, NXC_OP_ERRORED, NXC_ERR_PEER_FAILED,
                      "NIXL agent '%s' could not be sent its notification: %s", op->peer->name,
                      ucs_status_string(st));
    else
        nxc_op_finish(op, NXC_OP_COMPLETE, NXC_OK, "complete");
}

static void notified_cb(void *req, ucs_status_t st, void *user)
{
    ucp_request_free(req);
    notified(user, st);
    nxc_op_request_done(user);
}

/* The bytes are in place (the flush completed): send the notification;
 * the op completes once it has left. NIXL has no abort: a cancelled op
 * says nothing. */
static void nixl_tell_moved(nxc_op_t *op)
{
    struct nxc_nixl_op *nixl = &op->state.nixl;
    if (op->status != NXC_OP_IN_PROGRESS)
        return;
    op->peer->reached = 1; /* the flush completed */
    if (op->peer->ep == NULL || op->peer->dead) {
        notified(op, UCS_ERR_UNREACHABLE);
        return;
    }
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                        UCP_OP_ATTR_FIELD_FLAGS,
        .cb.send = notified_cb,
        .user_data = op,
        .flags = UCP_AM_SEND_FLAG_EAGER,
    };
    ucs_status_ptr_t req = ucp_am_send_nbx(op->peer->ep, NXC_NIXL_NOTIF_AM_ID, NULL, 0,
                                           nixl->notif, nixl->notif_len, &param);
    if (req != NULL && !UCS_PTR_IS_ERR(req))
        op->inflight++;
    else
        notified(op, UCS_PTR_STATUS(req));
}

const nxc_protocol_t nxc_protocol_nixl = {
    .name = "NIXL (RMA)",
    .ctrl_flags = 0,
    .prepare = nixl_prepare,
    .start = nixl_start,
    .tell_moved = nixl_tell_moved,
    .cancelled = NULL,
    .busy = nixl_busy,
    .begun = NULL,
    .take_inline = NULL,
    .all_landed = NULL,
    .receiving = NULL,
    .sending = nixl_sending,
    .bytes_moved = NULL,
    .drop_remote = nixl_drop_remote,
    .release = nixl_release,
};

/* ---- passive side ---------------------------------------------------------- */

/* Dynamo drops a remote agent (remove_remote_agent) when the Remote made
 * from one op's metadata is released, and NIXL keeps one agent per name:
 * were all our ops one agent, releasing one would cut off the others a
 * Dynamo worker holds. So each op is an agent of its own, named after the
 * connector and the op (as Dynamo names its own, "<id>-<n>"). */
#define AGENT_SUFFIX_HEX 8

static int op_agent_name(const nxc_op_t *op, char *out)
{
    size_t len = strlen(op->c->name);
    if (len + 1 + AGENT_SUFFIX_HEX > NXC_NAME_MAX)
        return nxc_fail(NXC_ERR_INVALID_ARG,
                        "the connector name is %zu bytes: NIXL-format metadata needs it at most "
                        "%d, to name each op's agent",
                        len, NXC_NAME_MAX - 1 - AGENT_SUFFIX_HEX);
    char hex[2 * NXC_KEY_BYTES + 1];
    nxc_hex_encode(op->key, NXC_KEY_BYTES, hex);
    memcpy(out, op->c->name, len);
    out[len] = '-';
    memcpy(out + len + 1, hex, AGENT_SUFFIX_HEX);
    out[len + 1 + AGENT_SUFFIX_HEX] = '\0';
    return NXC_OK;
}

int nxc_nixl_build_metadata(nxc_op_t *op, const nxc_region_t *regions, uint32_t n)
{
    nxc_connector_t *c = op->c;
    char name[NXC_NAME_MAX + 1];
    if (op_agent_name(op, name) != NXC_OK)
        return NXC_ERR_INVALID_ARG;
    nxc_region_t *stripped = calloc(n + 1, sizeof *stripped);
    uint8_t **keys = calloc(n + 1, sizeof *keys);
    int rc = stripped != NULL && keys != NULL
                 ? NXC_OK
                 : nxc_fail(NXC_ERR_NO_MEMORY, "no memory for %u regions", n);
    for (uint32_t i = 0; i < n && rc == NXC_OK; i++) {
        size_t len = 0;
        stripped[i] = regions[i];
        keys[i] = malloc(regions[i].rkey_len);
        rc = keys[i] != NULL ? nxc_nixl_rkey_strip(regions[i].rkey, regions[i].rkey_len,
                                                   keys[i], &len)
                             : nxc_fail(NXC_ERR_NO_MEMORY, "no memory for an rkey");
        stripped[i].rkey = keys[i];
        stripped[i].rkey_len = (uint32_t)len;
    }
    nxc_agent_blob_t blob = {
        .name = name,
        .name_len = (uint16_t)strlen(name),
        .worker_addr = (const uint8_t *)c->worker_addr,
        .worker_addr_len = (uint32_t)c->worker_addr_len,
        .n_regions = n,
        .regions = stripped,
    };
    if (rc == NXC_OK)
        rc = nxc_metadata_encode_wire(op->kind, op->key, op->descs, op->n, &blob, NXC_WIRE_NIXL,
                                      &op->json, &op->json_len);
    if (rc == NXC_OK)
        op->wire = NXC_WIRE_NIXL;
    for (uint32_t i = 0; keys != NULL && i < n; i++)
        free(keys[i]);
    free(keys);
    free(stripped);
    return rc;
}

/* The message of a notification meant for one of our passive ops is its
 * key as 32 hex digits; anything else is not for us. */
static nxc_op_t *op_for_message(nxc_connector_t *c, const char *msg, size_t len)
{
    uint8_t key[NXC_KEY_BYTES];
    nxc_decode_error_t err;
    if (len != NXC_KEY_HEX_LEN || !nxc_hex_decode(msg, len, key, &err))
        return NULL;
    nxc_op_t *op = nxc_keys_find(&c->passive_keys, key);
    return op != NULL && op->wire == NXC_WIRE_NIXL ? op : NULL;
}

ucs_status_t nxc_nixl_notif_received(void *arg, const void *header, size_t header_len,
                                     void *data, size_t len, const ucp_am_recv_param_t *param)
{
    nxc_connector_t *c = arg;
    const char *name = NULL, *msg = NULL;
    size_t name_len = 0, msg_len = 0;
    (void)header;
    if (header_len != 0 || (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) ||
        nxc_nixl_notif_decode(data, len, &name, &name_len, &msg, &msg_len) != NXC_OK) {
        c->spoofed_notifications++; /* NIXL sends eager, header-less notifications */
        return (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) ? UCS_ERR_REJECTED : UCS_OK;
    }
    nxc_op_t *op = op_for_message(c, msg, msg_len);
    if (op == NULL) {
        c->spoofed_notifications++;
        return UCS_OK;
    }
    nxc_op_finish(op, NXC_OP_COMPLETE, NXC_OK, "complete");
    return UCS_OK;
}
