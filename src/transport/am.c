/* The rendezvous active-message protocol (see transport.h). One message per
 * run of adjacent non-empty descriptors (up to NXC_AM_JOIN_MAX); its
 * 36-byte header names the op's key, the first descriptor, how many, the
 * sender's pid and the active op's tag. The receiver checks them and the
 * size against its own op (and its owner) before a single byte is written,
 * and receives large messages zero-copy straight into the buffer. */
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/error.h"
#include "transport/protocol.h"
#include "transport/transport.h"

/* Adjacent buffers are joined into one message only up to this size, so
 * that a large transfer completes (and nxc_op_bytes_done() advances) in
 * steps: a buffer larger than this is still one message of its own. The
 * cost is one more rendezvous handshake (microseconds) per 64 MiB (5 ms
 * or more of copying), and none for transfers up to 64 MiB, which move as
 * before; docs/PERFORMANCE.md has the runs. */
#define NXC_AM_JOIN_MAX (64u << 20)

/* Messages up to this size go eagerly (no rendezvous) to peers UCX
 * reaches over TCP alone. There, in the peer-error mode our endpoints
 * need, UCX 1.13 has no zero-copy lanes and its rendezvous sends the data
 * in fragments anyway, after one more round trip (RTS, then RTR). Eagerly,
 * `nxc bench --tls tcp` writes 64 KiB in 38-48 us instead of 55-66 and
 * 128 KiB in 55-75 instead of 69-87 (5 interleaved rounds;
 * docs/PERFORMANCE.md, session 16). At 256 KiB the receiver's two extra
 * copies of an eager message (UCX assembles the fragments, then we place
 * them) cost what the round trip saves: equal in those rounds. Not where
 * UCX has RDMA transports, whose rendezvous is zero-copy. */
#define NXC_AM_EAGER_MAX (128u << 10)

/* One data message in flight: the header UCX reads until the send
 * completes, and what its completion counts. */
struct nxc_am_send {
    uint8_t   hdr[NXC_DATA_HDR];
    size_t    len;
    nxc_op_t *op;
};

static int adjacent(const nxc_descriptor_t *d, size_t i)
{
    return d[i].size > 0 && d[i + 1].size > 0 &&
           (uintptr_t)d[i].ptr + d[i].size == (uintptr_t)d[i + 1].ptr;
}

/* Whether buffers i and i+1 may travel as one message: adjacent here and,
 * as far as the sender can know, at the other end too. */
static int joinable(const nxc_op_t *op, size_t i)
{
    const struct nxc_am_op *am = &op->state.am;
    if (!adjacent(op->descs, i))
        return 0;
    if (op->passive)
        return am->runs_ok; /* the reader said its side follows ours */
    return am->raddr[i] + op->descs[i].size == am->raddr[i + 1];
}

/* An active read accepts runs when every pair adjacent on the remote side
 * is adjacent on ours too: then the passive side may join by its own view. */
static int runs_follow(const nxc_op_t *op, const nxc_metadata_t *md)
{
    for (size_t i = 0; i + 1 < op->n; i++)
        if (adjacent(md->descs, i) && !adjacent(op->descs, i))
            return 0;
    return 1;
}

/* Zeroed flags, one per descriptor: inside the op for a few. */
static uint8_t *claimed_storage(nxc_op_t *op)
{
    struct nxc_am_op *am = &op->state.am;
    if (op->n > sizeof(am->claimed_few))
        return calloc(op->n, 1);
    memset(am->claimed_few, 0, sizeof(am->claimed_few));
    return am->claimed_few;
}

static int am_prepare(nxc_op_t *op, const nxc_metadata_t *md)
{
    struct nxc_am_op *am = &op->state.am;
    if (op->kind == NXC_OP_WRITE) {
        am->raddr = op->n == 1 ? am->raddr_one : malloc((op->n + 1) * sizeof(*am->raddr));
        if (am->raddr == NULL)
            return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for %zu descriptors", op->n);
        for (size_t i = 0; i < op->n; i++)
            am->raddr[i] = (uint64_t)(uintptr_t)md->descs[i].ptr;
        return NXC_OK;
    }
    am->runs_ok = runs_follow(op, md);
    am->claimed = claimed_storage(op);
    if (am->claimed == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for %zu descriptors", op->n);
    return NXC_OK;
}

static void am_release(nxc_op_t *op)
{
    struct nxc_am_op *am = &op->state.am;
    free(am->sends);
    if (am->claimed != am->claimed_few)
        free(am->claimed);
    if (am->raddr != am->raddr_one)
        free(am->raddr);
    am->sends = NULL;
    am->claimed = NULL;
    am->raddr = NULL;
}

/* Counts one finished send; the last one ends the movement. */
static void sent_one(nxc_op_t *op, ucs_status_t st)
{
    struct nxc_am_op *am = &op->state.am;
    if (st != UCS_OK && am->send_status == UCS_OK)
        am->send_status = st;
    if (--am->sends_left > 0)
        return;
    if (!op->passive)
        nxc_transport_moved(op, am->send_status);
    else if (am->send_status != UCS_OK)
        nxc_op_finish(op, NXC_OP_ERRORED, NXC_ERR_PEER_FAILED,
                      "sending the data to worker '%s' failed: %s", op->peer->name,
                      ucs_status_string(am->send_status));
}

static void count_sent(struct nxc_am_send *s, ucs_status_t st)
{
    if (st == UCS_OK)
        s->op->state.am.sent += s->len;
    sent_one(s->op, st);
}

static void data_sent_cb(void *req, ucs_status_t st, void *user)
{
    struct nxc_am_send *s = user;
    nxc_op_t *op = s->op;
    ucp_request_free(req);
    count_sent(s, st);
    nxc_op_request_done(op);
}

static void send_run(nxc_op_t *op, size_t first, size_t count, size_t len)
{
    struct nxc_am_op *am = &op->state.am;
    struct nxc_am_send *s = &am->sends[first];
    uint8_t *h = s->hdr;
    s->len = len;
    s->op = op;
    memcpy(h, op->key, NXC_KEY_BYTES);
    nxc_put_u32(h + 16, (uint32_t)first);
    nxc_put_u32(h + 20, (uint32_t)count);
    nxc_put_u32(h + 24, op->c->identity.pid);
    nxc_put_u64(h + 28, op->tag);
    int eager = op->c->tcp_only_am && !op->peer->via_shm && len <= NXC_AM_EAGER_MAX;
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                        UCP_OP_ATTR_FIELD_FLAGS,
        .cb.send = data_sent_cb,
        .user_data = s,
        .flags = eager ? UCP_AM_SEND_FLAG_EAGER : 0,
    };
    am->sends_left++;
    ucs_status_ptr_t req = ucp_am_send_nbx(op->peer->ep, NXC_AM_DATA_ID, h, NXC_DATA_HDR,
                                           op->descs[first].ptr, len, &param);
    if (req != NULL && !UCS_PTR_IS_ERR(req))
        op->inflight++;
    else
        count_sent(s, UCS_PTR_STATUS(req));
}

/* Sends every non-empty descriptor to the op's peer (active write, or the
 * passive side of a read), runs of adjacent buffers as one message: a KV
 * cache split in 4096 blocks of one region travels in 64 MiB messages. */
static void send_all(nxc_op_t *op)
{
    struct nxc_am_op *am = &op->state.am;
    am->sends = malloc(op->n * sizeof(*am->sends));
    am->send_status = am->sends ? UCS_OK : UCS_ERR_NO_MEMORY;
    am->sends_left = 1; /* held until every send is posted */
    for (size_t i = 0; i < op->n && am->sends != NULL; i++) {
        if (op->descs[i].size == 0)
            continue;
        size_t first = i, len = op->descs[i].size;
        while (i + 1 < op->n && len < NXC_AM_JOIN_MAX && joinable(op, i) &&
               len + op->descs[i + 1].size > len)
            len += op->descs[++i].size;
        send_run(op, first, i - first + 1, len);
    }
    sent_one(op, UCS_OK);
}

/* A small write into one buffer: its data rides in the BEGIN. */
static int writes_inline(const nxc_op_t *op)
{
    return op->kind == NXC_OP_WRITE && op->n == 1 && op->descs[0].size > 0 &&
           op->descs[0].size <= NXC_INLINE_WRITE_MAX;
}

/* A read asks the passive side to send (PULL), joining runs if ours
 * follow its buffers. */
static void am_start(nxc_op_t *op)
{
    uint8_t pull = op->kind == NXC_OP_READ
                       ? NXC_CTRL_FLAG_PULL | (op->state.am.runs_ok ? NXC_CTRL_FLAG_RUNS : 0)
                       : 0;
    if (nxc_transport_send_begin(op, pull, writes_inline(op)) != NXC_OK || op->moved)
        return; /* failed, or the data went with the BEGIN */
    if (op->kind == NXC_OP_WRITE)
        send_all(op);
    else if (op->expected == 0)
        nxc_transport_moved(op, UCS_OK); /* nothing will come: say DONE now */
}

/* Passive side of a read: send every descriptor to the op's peer. */
static void am_begun(nxc_op_t *op, const nxc_ctrl_msg_t *begin)
{
    struct nxc_am_op *am = &op->state.am;
    am->runs_ok = (begin->flags & NXC_CTRL_FLAG_RUNS) != 0;
    if ((begin->flags & NXC_CTRL_FLAG_PULL) && am->sends == NULL)
        send_all(op); /* a repeated BEGIN does not send twice */
}

/* A passive write has every buffer in place; a passive read received
 * nothing (it sent). */
static int am_all_landed(const nxc_op_t *op)
{
    const struct nxc_am_op *am = &op->state.am;
    return op->kind == NXC_OP_READ || (am->landed == op->expected && am->receiving == 0);
}

/* An active read that receives nothing more tells its peer now. */
static void am_cancelled(nxc_op_t *op)
{
    if (op->kind == NXC_OP_READ && op->state.am.receiving == 0)
        nxc_transport_moved(op, UCS_OK);
}

/* Sends read the buffers of a write until they complete; a read's buffers
 * are written only while receives run. */
static int am_busy(const nxc_op_t *op)
{
    return op->kind == NXC_OP_WRITE || op->state.am.receiving > 0;
}

static unsigned am_receiving(const nxc_op_t *op)
{
    return op->state.am.receiving;
}

static int am_sending(const nxc_op_t *op)
{
    return op->state.am.sends_left > 0;
}

/* A sending op counts its finished sends, a receiving one its landed
 * buffers; the other counter stays 0. */
static uint64_t am_bytes_moved(const nxc_op_t *op)
{
    const struct nxc_am_op *am = &op->state.am;
    return am->landed + am->sent;
}

/* `len` bytes are in place (or failed to arrive). */
static void landed(nxc_op_t *op, ucs_status_t st, size_t len)
{
    struct nxc_am_op *am = &op->state.am;
    if (st != UCS_OK) {
        nxc_op_finish(op, NXC_OP_ERRORED, NXC_ERR_PEER_FAILED,
                      "receiving data from worker '%s' failed: %s",
                      op->peer ? op->peer->name : "(unknown)", ucs_status_string(st));
    } else {
        am->landed += len;
    }
    if (op->passive) {
        nxc_op_check_landed(op);
    } else if (am->receiving == 0 &&
               ((op->status == NXC_OP_IN_PROGRESS &&
                 (am->landed == op->expected || op->refused)) ||
                op->status == NXC_OP_CANCELLED)) {
        nxc_transport_moved(op, UCS_OK);
    }
}

static void landed_cb(void *req, ucs_status_t st, size_t length, void *user)
{
    nxc_op_t *op = user;
    ucp_request_free(req);
    op->state.am.receiving--;
    landed(op, st, length);
    nxc_op_request_done(op);
}

/* The op a data message is for, if any may receive it: a passive writable
 * op not yet finished, or an active AM read in progress (key and tag). */
static nxc_op_t *receiver_for(nxc_connector_t *c, const uint8_t *key, uint64_t tag)
{
    nxc_op_t *op = nxc_keys_find(&c->passive_keys, key);
    if (op != NULL)
        return op->kind == NXC_OP_WRITE && (op->proto == NULL || op->proto == &nxc_protocol_am)
                   ? op
                   : NULL;
    op = nxc_keys_find_tagged(&c->active_keys, key, tag);
    return op != NULL && op->kind == NXC_OP_READ && op->proto == &nxc_protocol_am &&
                   op->status == NXC_OP_IN_PROGRESS
               ? op
               : NULL;
}

/* Claims buffers [first, first+count) for one message of `len` bytes from
 * the active op `tag`: it must own the op (or be the first to speak for
 * it), and the buffers must exist, be unclaimed, adjacent here, and add up
 * to exactly `len`. */
static int claim(nxc_op_t *op, uint32_t first, uint32_t count, size_t len, uint32_t pid,
                 uint64_t tag)
{
    struct nxc_am_op *am = &op->state.am;
    if (op->peer != NULL && op->peer->identity.pid != pid)
        return 0;
    if (tag == 0 || (op->tag != 0 && op->tag != tag))
        return 0;
    if (count == 0 || first >= op->n || count > op->n - first || len == 0)
        return 0;
    size_t total = 0;
    for (size_t k = first; k < (size_t)first + count; k++) {
        if ((am->claimed != NULL && am->claimed[k]) || op->descs[k].size == 0 ||
            (k + 1 < (size_t)first + count && !adjacent(op->descs, k)))
            return 0;
        total += op->descs[k].size;
    }
    /* Allocated only once it is taken: until then the op has no protocol
     * to release it, and may get another, whose state shares these bytes. */
    if (total != len || (op->tag == 0 && nxc_gate_take_for_am(op) != 0) ||
        (am->claimed == NULL && (am->claimed = claimed_storage(op)) == NULL))
        return 0;
    memset(am->claimed + first, 1, count);
    /* Data that overtook its BEGIN claims the op like BEGIN would, and
     * chooses its protocol (the BEGIN keeps it: nxc_op_on_ctrl). */
    op->tag = tag;
    op->proto = &nxc_protocol_am;
    return 1;
}

/* The data of a WRITE control message: checked and placed exactly as if it
 * had come in its own data message. */
static void am_take_inline(nxc_op_t *op, const nxc_ctrl_msg_t *m)
{
    if (op->kind != NXC_OP_WRITE || op->n != 1 ||
        !claim(op, 0, 1, m->data_len, m->sender.pid, m->tag)) {
        op->c->spoofed_notifications++;
        return;
    }
    memcpy(op->descs[0].ptr, m->data, m->data_len);
    landed(op, UCS_OK, m->data_len);
}

ucs_status_t nxc_am_data_received(void *arg, const void *header, size_t header_len,
                                  void *data, size_t len, const ucp_am_recv_param_t *param)
{
    nxc_connector_t *c = arg;
    const uint8_t *h = header;
    int rndv = (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0;
    uint64_t tag = header_len == NXC_DATA_HDR ? nxc_get_u64(h + 28) : 0;
    nxc_op_t *op = header_len == NXC_DATA_HDR ? receiver_for(c, h, tag) : NULL;
    if (op == NULL || !claim(op, nxc_get_u32(h + 16), nxc_get_u32(h + 20), len,
                             nxc_get_u32(h + 24), tag)) {
        /* Refusing a rendezvous fails the sender's request: a late or
         * forged write errors on the active side and touches nothing here. */
        c->spoofed_notifications++;
        return rndv ? UCS_ERR_REJECTED : UCS_OK;
    }
    void *dst = op->descs[nxc_get_u32(h + 16)].ptr;
    if (!rndv) {
        memcpy(dst, data, len);
        landed(op, UCS_OK, len);
        return UCS_OK;
    }
    ucp_request_param_t rp = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.recv_am = landed_cb,
        .user_data = op,
    };
    ucs_status_ptr_t req = ucp_am_recv_data_nbx(c->worker, data, dst, len, &rp);
    if (req == NULL)
        landed(op, UCS_OK, len);
    else if (UCS_PTR_IS_ERR(req))
        landed(op, UCS_PTR_STATUS(req), 0);
    else {
        op->state.am.receiving++;
        op->inflight++;
    }
    return UCS_OK;
}

const nxc_protocol_t nxc_protocol_am = {
    .name = "AM",
    .ctrl_flags = NXC_CTRL_FLAG_AM,
    .prepare = am_prepare,
    .start = am_start,
    .tell_moved = nxc_transport_send_end,
    .cancelled = am_cancelled,
    .busy = am_busy,
    .begun = am_begun,
    .take_inline = am_take_inline,
    .all_landed = am_all_landed,
    .receiving = am_receiving,
    .sending = am_sending,
    .bytes_moved = am_bytes_moved,
    .drop_remote = NULL,
    .release = am_release,
};
