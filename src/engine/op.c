#include "engine/op.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/connector.h"
#include "transport/transport.h"

/* Release waits for UCX to stop writing into an op's buffers (receives)
 * for up to this long before it declares the peer failed and closes its
 * endpoint, then as long for it to stop reading them (data sends, which a
 * peer may pull): the caller may free the buffers once release returns.
 * A peer that pulls nothing for that long is not failed: see
 * drain_locked. Requests that touch only the op's own memory (control
 * messages) get the shorter grace; then the op is parked and freed when
 * they finish. */
#define NXC_RELEASE_DATA_LIMIT_NS (10ull * 1000000000ull)
#define NXC_RELEASE_CTRL_GRACE_NS (1ull * 1000000000ull)

int nxc_op_is_final(const nxc_op_t *op)
{
    return op->status == NXC_OP_COMPLETE || op->status == NXC_OP_CANCELLED ||
           op->status == NXC_OP_ERRORED;
}

void nxc_op_set_in_progress(nxc_op_t *op)
{
    if (op->status != NXC_OP_INITIALIZED && op->status != NXC_OP_UNINITIALIZED)
        return;
    op->status = NXC_OP_IN_PROGRESS;
    op->c->n_in_progress++;
    nxc_notify_change(op->c);
}

/* How a passive op that just ended would answer a later BEGIN. */
static uint8_t nack_reason_of(const nxc_op_t *op, nxc_op_status_t status)
{
    if (status == NXC_OP_COMPLETE)
        return NXC_NACK_COMPLETED;
    if (status == NXC_OP_CANCELLED)
        return op->close_reason ? op->close_reason : NXC_NACK_CANCELLED;
    return NXC_NACK_FAILED;
}

/* The key of a passive op that ended goes into the bounded ring, so that
 * a late BEGIN for it is told why. */
static void remember_closed(nxc_op_t *op, uint8_t reason)
{
    nxc_connector_t *c = op->c;
    struct nxc_closed_key *k = &c->closed[c->closed_next];
    memcpy(k->key, op->key, NXC_KEY_BYTES);
    k->reason = reason;
    c->closed_next = (c->closed_next + 1) % NXC_CLOSED_KEYS;
}

static uint8_t closed_reason(const nxc_connector_t *c, const uint8_t key[NXC_KEY_BYTES])
{
    for (unsigned i = 0; i < NXC_CLOSED_KEYS; i++)
        if (c->closed[i].reason && memcmp(c->closed[i].key, key, NXC_KEY_BYTES) == 0)
            return c->closed[i].reason;
    return NXC_NACK_CLOSED;
}

/* A passive op that ended tells its owner: ACK if it completed, else NACK
 * with the reason - except when the owner aborted it or is dead. */
static void tell_owner(nxc_op_t *op, nxc_op_status_t status, int err)
{
    if (op->peer == NULL || op->tag == 0 || err == NXC_ERR_PEER_ABORTED)
        return;
    if (status == NXC_OP_COMPLETE)
        nxc_transport_tell_owner(op, NXC_CTRL_ACK, 0);
    else
        nxc_transport_tell_owner(op, NXC_CTRL_NACK, nack_reason_of(op, status));
}

/* Failure details are allocated when an op fails, so that the op itself
 * stays small (see NXC_CTRL_BEGIN_INLINE). */
#define NXC_DETAIL_MAX 320

static const char *op_detail(const nxc_op_t *op)
{
    return op->err_detail != NULL ? op->err_detail
                                  : "(no memory was left to record why this op failed)";
}

void nxc_op_finish(nxc_op_t *op, nxc_op_status_t status, int err, const char *fmt, ...)
{
    if (nxc_op_is_final(op))
        return;
    if (op->status == NXC_OP_IN_PROGRESS)
        op->c->n_in_progress--;
    op->status = status;
    op->err = err;
    /* The answer leaves first: the peer's op completes on it, and nothing
     * below changes what it says. */
    if (op->passive && op->key_table != NULL)
        tell_owner(op, status, err);
    /* Only a failure's detail is ever read (nxc_op_error): a completion
     * does not pay for formatting one. */
    if (status != NXC_OP_COMPLETE) {
        va_list ap;
        va_start(ap, fmt);
        op->err_detail = malloc(NXC_DETAIL_MAX);
        if (op->err_detail != NULL)
            vsnprintf(op->err_detail, NXC_DETAIL_MAX, fmt, ap);
        va_end(ap);
    }
    NXC_LOG(status == NXC_OP_ERRORED ? NXC_LOG_WARN : NXC_LOG_DEBUG,
            "connector '%s': %s %s op %p is %s%s%s", op->c->name,
            op->passive ? "passive" : "active", nxc_op_kind_name(op->kind), (void *)op,
            nxc_op_status_name(status), status == NXC_OP_ERRORED ? ": " : "",
            status == NXC_OP_ERRORED ? op_detail(op) : "");
    if (op->passive && op->key_table != NULL)
        remember_closed(op, nack_reason_of(op, status));
    /* An op that ended takes no direct copy either (one running is waited
     * for at release). */
    if (op->passive)
        nxc_gate_shut(op, nack_reason_of(op, status));
    /* A final op accepts no further message. */
    nxc_keys_remove(op);
    nxc_notify_change(op->c);
}

void nxc_op_request_done(nxc_op_t *op)
{
    op->inflight--;
    if (op->zombie && op->inflight == 0)
        op->c->zombies_done++; /* freed after the progress call, not inside it */
    nxc_notify_change(op->c);
}

/* ---- validation ----------------------------------------------------------- */

static int check_descriptors(const nxc_connector_t *c, const nxc_descriptor_t *d, size_t n,
                             const char *which)
{
    if (d == NULL || n == 0)
        return nxc_fail(NXC_ERR_INVALID_ARG, "the %s descriptor list is empty", which);
    if (n > NXC_MAX_DESCRIPTORS)
        return nxc_fail(NXC_ERR_INVALID_ARG, "the %s descriptor list has %zu entries, more "
                        "than the %u allowed", which, n, NXC_MAX_DESCRIPTORS);
    for (size_t i = 0; i < n; i++) {
        if (d[i].ptr == NULL)
            return nxc_fail(NXC_ERR_INVALID_ARG, "%s descriptor %zu has a NULL pointer",
                            which, i);
        if (d[i].device.kind != NXC_DEVICE_HOST && d[i].device.kind != NXC_DEVICE_CUDA)
            return nxc_fail(NXC_ERR_DEVICE, "%s descriptor %zu has device kind %d, which is "
                            "neither host nor CUDA", which, i, (int)d[i].device.kind);
        if (d[i].device.kind != d[0].device.kind)
            return nxc_fail(NXC_ERR_DEVICE, "%s descriptor %zu is %s memory but descriptor 0 "
                            "is %s: one list must hold one kind", which, i,
                            d[i].device.kind == NXC_DEVICE_CUDA ? "CUDA" : "host",
                            d[0].device.kind == NXC_DEVICE_CUDA ? "CUDA" : "host");
        if ((uintptr_t)d[i].ptr + d[i].size < (uintptr_t)d[i].ptr)
            return nxc_fail(NXC_ERR_INVALID_ARG, "%s descriptor %zu wraps around the address "
                            "space", which, i);
    }
    if (d[0].device.kind == NXC_DEVICE_CUDA)
        return nxc_fail(NXC_ERR_UNSUPPORTED, "%s descriptors are CUDA memory, which this "
                        "build does not move yet%s", which,
                        (c->memory_types & UCS_BIT(UCS_MEMORY_TYPE_CUDA))
                            ? ""
                            : " (and this UCX has no CUDA support: `ucx_info -d` lists no "
                              "cuda transport)");
    return NXC_OK;
}

static int check_pairing(const nxc_metadata_t *md, nxc_op_kind_t kind,
                         const nxc_descriptor_t *local, size_t n)
{
    if (md->kind != kind)
        return nxc_fail(NXC_ERR_WRONG_KIND, "nxc_begin_%s needs the metadata of a %s op, "
                        "but this metadata is of kind %s",
                        kind == NXC_OP_READ ? "read" : "write",
                        kind == NXC_OP_READ ? "readable" : "writable",
                        nxc_op_kind_name(md->kind));
    if (md->n_descs != n)
        return nxc_fail(NXC_ERR_SIZE_MISMATCH, "%zu local descriptors but the remote op "
                        "exposes %zu", n, md->n_descs);
    for (size_t i = 0; i < n; i++)
        if (local[i].size != md->descs[i].size)
            return nxc_fail(NXC_ERR_SIZE_MISMATCH, "descriptor %zu: local size %zu differs "
                            "from remote size %zu", i, local[i].size, md->descs[i].size);
    return NXC_OK;
}

/* ---- creation -------------------------------------------------------------- */

static nxc_op_t *op_new(nxc_connector_t *c, nxc_op_kind_t kind, int passive,
                        const nxc_descriptor_t *descs, size_t n)
{
    nxc_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    op->descs = n == 1 ? &op->desc_one : malloc(n * sizeof(*descs));
    if (op->descs == NULL) {
        free(op);
        return NULL;
    }
    memcpy(op->descs, descs, n * sizeof(*descs));
    op->n = n;
    op->c = c;
    op->kind = kind;
    op->passive = passive;
    op->status = NXC_OP_UNINITIALIZED;
    for (size_t i = 0; i < n; i++)
        op->expected += descs[i].size;
    return op;
}

void nxc_op_destroy(nxc_op_t *op)
{
    if (op == NULL)
        return;
    nxc_keys_remove(op); /* no-op unless a failed begin left it in a table */
    nxc_gate_free_slot(op);
    nxc_transport_release(op);
    nxc_transport_unexpose(op);
    if (op->peer != NULL)
        nxc_peer_unref(op->c, op->peer);
    free(op->json);
    free(op->err_detail);
    if (op->descs != &op->desc_one)
        free(op->descs);
    free(op);
}

static int create_passive(nxc_connector_t *c, nxc_op_kind_t kind, const nxc_descriptor_t *local,
                          size_t n, nxc_op_t **out)
{
    if (c == NULL || out == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "connector and out must not be NULL");
    if (nxc_check_process(c) != NXC_OK)
        return NXC_ERR_STATE;
    int rc = check_descriptors(c, local, n, "local");
    if (rc != NXC_OK)
        return rc;
    nxc_op_t *op = op_new(c, kind, 1, local, n);
    if (op == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for an op of %zu descriptors", n);
    nxc_lock(c);
    rc = nxc_connector_new_key(c, op->key);
    if (rc == NXC_OK)
        rc = nxc_transport_publish(op);
    if (rc == NXC_OK)
        rc = nxc_keys_insert(&c->passive_keys, op);
    if (rc != NXC_OK) {
        nxc_op_destroy(op);
        nxc_unlock(c);
        return rc;
    }
    op->status = NXC_OP_INITIALIZED;
    nxc_open_add(c, op);
    nxc_unlock(c);
    nxc_clear_error();
    *out = op;
    return NXC_OK;
}

int nxc_create_readable(nxc_connector_t *c, const nxc_descriptor_t *local, size_t n,
                        nxc_op_t **out)
{
    return create_passive(c, NXC_OP_READ, local, n, out);
}

int nxc_create_writable(nxc_connector_t *c, const nxc_descriptor_t *local, size_t n,
                        nxc_op_t **out)
{
    return create_passive(c, NXC_OP_WRITE, local, n, out);
}

static int begin_active(nxc_connector_t *c, nxc_op_kind_t kind, const nxc_metadata_t *md,
                        const nxc_descriptor_t *local, size_t n, nxc_op_t **out)
{
    if (c == NULL || md == NULL || out == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "connector, metadata and out must not be NULL");
    if (nxc_check_process(c) != NXC_OK)
        return NXC_ERR_STATE;
    int rc = check_descriptors(c, local, n, "local");
    if (rc == NXC_OK)
        rc = check_pairing(md, kind, local, n);
    if (rc != NXC_OK)
        return rc;
    nxc_op_t *op = op_new(c, kind, 0, local, n);
    if (op == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for an op of %zu descriptors", n);
    memcpy(op->key, md->key, sizeof(op->key));
    nxc_lock(c);
    op->tag = ++c->next_tag ? c->next_tag : ++c->next_tag;
    rc = nxc_peer_for_target(c, &md->blob, &op->peer);
    if (rc == NXC_OK)
        rc = nxc_transport_prepare(op, md);
    if (rc == NXC_OK) /* the passive side's ACK or NACK finds it here */
        rc = nxc_keys_insert(&c->active_keys, op);
    if (rc != NXC_OK) {
        nxc_op_destroy(op);
        nxc_unlock(c);
        return rc;
    }
    nxc_open_add(c, op);
    nxc_op_set_in_progress(op);
    nxc_transport_start(op);
    nxc_notify_change(c);
    nxc_unlock(c);
    nxc_clear_error();
    *out = op;
    return NXC_OK;
}

int nxc_begin_read(nxc_connector_t *c, const nxc_metadata_t *remote,
                   const nxc_descriptor_t *local, size_t n, nxc_op_t **out)
{
    return begin_active(c, NXC_OP_READ, remote, local, n, out);
}

int nxc_begin_write(nxc_connector_t *c, const nxc_descriptor_t *local, size_t n,
                    const nxc_metadata_t *remote, nxc_op_t **out)
{
    return begin_active(c, NXC_OP_WRITE, remote, local, n, out);
}

/* ---- notifications from the active side ----------------------------------- */

static int same_sender(const nxc_peer_t *p, const nxc_ctrl_msg_t *m)
{
    return strlen(p->name) == m->name_len && memcmp(p->name, m->name, m->name_len) == 0 &&
           p->identity.pid == m->sender.pid;
}

void nxc_op_check_landed(nxc_op_t *op)
{
    if (op->done_heard && op->status == NXC_OP_IN_PROGRESS && nxc_transport_all_landed(op))
        nxc_op_finish(op, NXC_OP_COMPLETE, NXC_OK, "complete");
}

static int owned_by(const nxc_op_t *op, const nxc_ctrl_msg_t *m)
{
    return op->tag == m->tag && op->peer != NULL && same_sender(op->peer, m);
}

/* Whether we can answer a BEGIN: it carries its sender's address, or we
 * hold a live endpoint to the sender. Otherwise it is dropped untouched,
 * and the sender sends it again with its address (peer.h, knows_us). */
static int answerable(nxc_connector_t *c, const nxc_ctrl_msg_t *m)
{
    if (m->flags & NXC_CTRL_FLAG_ADDR)
        return 1;
    const nxc_peer_t *p = nxc_peer_find_sender(c, m->name, m->name_len, &m->sender);
    if (p != NULL && p->ep != NULL && !p->dead && !p->failing)
        return 1;
    c->unanswerable_begins++;
    return 0;
}

/* BEGIN: the first active op to speak for a passive op takes it; any
 * other BEGIN is answered NACK at once, whatever became of the op. */
static void on_begin(nxc_connector_t *c, nxc_op_t *op, const nxc_ctrl_msg_t *m)
{
    const nxc_protocol_t *proto = nxc_protocol_for_begin(op, m);
    if (proto == NULL) {
        c->spoofed_notifications++; /* no honest peer sends these */
        return;
    }
    if (!answerable(c, m))
        return;
    uint8_t refusal = 0;
    if (op == NULL)
        refusal = closed_reason(c, m->key);
    else if ((op->tag != 0 && op->tag != m->tag) ||
             (op->peer != NULL && !same_sender(op->peer, m)))
        refusal = NXC_NACK_TAKEN;
    if (!refusal && op->peer == NULL)
        refusal = nxc_gate_take_for_am(op); /* a same-host direct copy may have it */
    if (refusal) {
        c->spoofed_notifications++;
        nxc_transport_refuse(c, m, refusal);
        return;
    }
    if (op->peer != NULL)
        return; /* a repeated BEGIN */
    op->peer = nxc_peer_for_sender(c, m->name, m->name_len, &m->sender, m->addr, m->addr_len);
    if (op->peer == NULL)
        return;
    op->tag = m->tag;
    if (op->proto == NULL) /* else data that overtook this BEGIN chose it */
        op->proto = proto;
    nxc_op_set_in_progress(op);
    /* The endpoint carries our answer (and, for a pulled read, the data). */
    int rc = nxc_transport_connect(c, op->peer, m->addr, m->addr_len);
    if (rc != NXC_OK)
        nxc_op_finish(op, NXC_OP_ERRORED, rc, "cannot reach worker '%s' to answer it: %s",
                      op->peer->name, nxc_last_error());
    else
        nxc_transport_begun(op, m);
}

/* DONE or ABORT from the op's owner (from anyone else: dropped; the
 * sender's BEGIN was answered already). */
static void on_end(nxc_connector_t *c, nxc_op_t *op, const nxc_ctrl_msg_t *m)
{
    if (op == NULL || !owned_by(op, m)) {
        c->spoofed_notifications++;
        return;
    }
    if (m->type == NXC_CTRL_ABORT) {
        nxc_op_finish(op, NXC_OP_ERRORED, NXC_ERR_PEER_ABORTED,
                      "worker '%s' cancelled its %s of this op", op->peer->name,
                      op->kind == NXC_OP_READ ? "read" : "write");
    } else {
        op->done_heard = 1; /* it completes once every buffer it receives landed */
        nxc_op_check_landed(op);
    }
}

/* WRITE: BEGIN, the data and DONE of a small write, handled as those three
 * messages would be, in that order. */
static void on_write(nxc_connector_t *c, nxc_op_t *op, const nxc_ctrl_msg_t *m)
{
    if (nxc_protocol_for_begin(op, m) == NULL) {
        c->spoofed_notifications++; /* no honest peer sends these */
        return;
    }
    on_begin(c, op, m); /* drops it if we cannot answer: then op has no owner */
    if (op == NULL || !owned_by(op, m) || op->status != NXC_OP_IN_PROGRESS)
        return; /* refused (and told), or it failed on our side */
    if (nxc_transport_take_inline(op, m))
        on_end(c, op, m);
}

static const char *nack_sentence(uint8_t reason)
{
    switch (reason) {
    case NXC_NACK_CANCELLED: return "cancelled its op before this one could complete";
    case NXC_NACK_RELEASED:  return "released its op before this one could complete";
    case NXC_NACK_COMPLETED: return "had already completed that op (an earlier read or write "
                                    "with the same metadata, from this or another worker, "
                                    "finished it)";
    case NXC_NACK_TAKEN:     return "has that op taken by another active op (another worker's, "
                                    "or an earlier one of this worker): an op has one taker";
    case NXC_NACK_FAILED:    return "had that op fail on its side";
    default:                 return "has no open op with this key (closed, and forgotten "
                                    "since, or never created)";
    }
}

/* ACK or NACK for one of our active ops, found by key and tag. */
static void on_answer(nxc_connector_t *c, const nxc_ctrl_msg_t *m)
{
    nxc_op_t *op = nxc_keys_find_tagged(&c->active_keys, m->key, m->tag);
    if (op == NULL || !same_sender(op->peer, m) ||
        (m->type == NXC_CTRL_ACK && !op->done_sent)) {
        c->spoofed_notifications++;
        return;
    }
    nxc_peer_answered_us(c, op->peer);
    if (m->type == NXC_CTRL_ACK)
        nxc_op_finish(op, NXC_OP_COMPLETE, NXC_OK, "complete");
    else
        nxc_op_refused(op, m->reason ? m->reason : NXC_NACK_CLOSED);
}

/* Whether requests of an active op may still read or write its buffers. */
static int still_moving(const nxc_op_t *op)
{
    return !op->moved && nxc_transport_busy(op);
}

void nxc_op_refused(nxc_op_t *op, uint8_t reason)
{
    op->refused = reason;
    if (!still_moving(op))
        nxc_op_finish(op, NXC_OP_ERRORED, NXC_ERR_PEER_ABORTED, "refused: worker '%s' %s",
                      op->peer->name, nack_sentence(reason));
}

void nxc_op_on_ctrl(nxc_connector_t *c, const nxc_ctrl_msg_t *m)
{
    switch (m->type) {
    case NXC_CTRL_BEGIN:
        on_begin(c, nxc_keys_find(&c->passive_keys, m->key), m);
        break;
    case NXC_CTRL_DONE:
    case NXC_CTRL_ABORT:
        on_end(c, nxc_keys_find(&c->passive_keys, m->key), m);
        break;
    case NXC_CTRL_WRITE:
        on_write(c, nxc_keys_find(&c->passive_keys, m->key), m);
        break;
    case NXC_CTRL_ACK:
    case NXC_CTRL_NACK:
        on_answer(c, m);
        break;
    default:
        c->spoofed_notifications++;
        break;
    }
}

/* ---- public lifecycle ------------------------------------------------------ */

int nxc_op_metadata(nxc_op_t *op, const char **json, size_t *len)
{
    if (op == NULL || json == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "op and json must not be NULL");
    if (!op->passive)
        return nxc_fail(NXC_ERR_STATE, "only a readable or writable op has metadata; this "
                        "op was begun from a peer's metadata");
    *json = op->json;
    if (len != NULL)
        *len = op->json_len;
    return NXC_OK;
}

/* A passive op's wait also lets its ACK or NACK leave: a worker that stops
 * driving its connector once its op is COMPLETE must not strand the peer's
 * op, which completes only when that answer arrives. */
static int op_final(void *arg)
{
    nxc_op_t *op = arg;
    nxc_gate_poll(op); /* a same-host direct copy needs no message to end */
    return nxc_op_is_final(op) && !op->answering;
}

nxc_op_status_t nxc_op_status(nxc_op_t *op)
{
    if (op == NULL || nxc_check_process(op->c) != NXC_OK)
        return NXC_OP_UNINITIALIZED;
    nxc_connector_t *c = op->c;
    nxc_lock(c);
    if (!op_final(op))
        nxc_progress_locked(c, nxc_fd_check_due(c), 0);
    nxc_op_status_t st = op->status;
    nxc_unlock(c);
    return st;
}

static int outcome(const nxc_op_t *op)
{
    switch (op->status) {
    case NXC_OP_COMPLETE:
        return NXC_OK;
    case NXC_OP_CANCELLED:
        return nxc_fail(NXC_ERR_CANCELLED, "the op was cancelled");
    default:
        return nxc_fail(op->err, "%s", op_detail(op));
    }
}

int nxc_op_wait(nxc_op_t *op, int timeout_ms)
{
    if (op == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "op must not be NULL");
    if (timeout_ms < -1)
        return nxc_fail(NXC_ERR_INVALID_ARG, "timeout_ms is %d; use -1 for no limit",
                        timeout_ms);
    if (nxc_check_process(op->c) != NXC_OK)
        return NXC_ERR_STATE;
    nxc_connector_t *c = op->c;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : nxc_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    nxc_lock(c);
    int rc;
    nxc_gate_waiting(op, 1);
    int driven = nxc_drive_until(c, op_final, op, deadline);
    nxc_gate_waiting(op, -1);
    if (driven != NXC_OK && !nxc_op_is_final(op))
        rc = nxc_fail(NXC_ERR_TIMED_OUT, "the op is still %s after %d ms",
                      nxc_op_status_name(op->status), timeout_ms);
    else
        rc = outcome(op);
    nxc_unlock(c);
    return rc;
}

/* Cancels with the lock held; `reason` is what a passive op's peer is
 * told (NXC_NACK_CANCELLED or NXC_NACK_RELEASED). */
static void cancel_locked(nxc_op_t *op, uint8_t reason)
{
    op->close_reason = reason;
    nxc_op_finish(op, NXC_OP_CANCELLED, NXC_ERR_CANCELLED, "cancelled by the caller");
    if (op->passive)
        nxc_transport_unexpose(op);
    else
        nxc_transport_cancelled(op);
}

int nxc_op_cancel(nxc_op_t *op)
{
    if (op == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "op must not be NULL");
    if (nxc_check_process(op->c) != NXC_OK)
        return NXC_ERR_STATE;
    nxc_lock(op->c);
    int rc = NXC_OK;
    if (!nxc_op_is_final(op))
        nxc_gate_close(op, NXC_NACK_CANCELLED); /* a direct copy may have completed it */
    if (op->status == NXC_OP_ERRORED)
        rc = nxc_fail(NXC_ERR_STATE, "an ERRORED op cannot be cancelled (it failed: %s)",
                      op_detail(op));
    else if (!nxc_op_is_final(op))
        cancel_locked(op, NXC_NACK_CANCELLED);
    nxc_unlock(op->c);
    return rc;
}

int nxc_op_results(nxc_op_t *op, const nxc_descriptor_t **descs, size_t *n)
{
    if (op == NULL || descs == NULL || n == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "op, descs and n must not be NULL");
    if (nxc_check_process(op->c) != NXC_OK)
        return NXC_ERR_STATE;
    nxc_lock(op->c);
    nxc_op_status_t st = op->status;
    nxc_unlock(op->c);
    if (st != NXC_OP_COMPLETE)
        return nxc_fail(NXC_ERR_STATE, "results are available once the op is COMPLETE; "
                        "it is %s", nxc_op_status_name(st));
    *descs = op->descs;
    *n = op->n;
    return NXC_OK;
}

int nxc_op_error(nxc_op_t *op, const char **detail)
{
    if (op == NULL)
        return NXC_ERR_INVALID_ARG;
    if (nxc_check_process(op->c) != NXC_OK)
        return NXC_ERR_STATE;
    nxc_lock(op->c);
    int err = op->status == NXC_OP_ERRORED ? op->err : NXC_OK;
    if (detail != NULL)
        *detail = err != NXC_OK ? op_detail(op) : "";
    nxc_unlock(op->c);
    return err;
}

nxc_op_kind_t nxc_op_kind(const nxc_op_t *op)
{
    return op == NULL ? NXC_OP_KIND_UNSPECIFIED : op->kind;
}

int nxc_op_bytes_done(const nxc_op_t *op, uint64_t *bytes)
{
    if (op == NULL || bytes == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "op and bytes must not be NULL");
    if (nxc_check_process(op->c) != NXC_OK)
        return NXC_ERR_STATE;
    nxc_lock(op->c);
    nxc_gate_poll((nxc_op_t *)op);
    *bytes = op->status == NXC_OP_COMPLETE ? op->expected : nxc_transport_bytes_moved(op);
    nxc_unlock(op->c);
    return NXC_OK;
}

/* Requests to a dead peer whose endpoint UCX cannot close (same-host peer,
 * no peer-error mode) never complete; UCX will not run them either. */
static int stuck_on_dead_peer(const nxc_op_t *op)
{
    return op->peer != NULL && op->peer->dead && !nxc_transport_can_close(op->peer);
}

static int drained_or_stuck(void *arg)
{
    const nxc_op_t *op = arg;
    return op->inflight == 0 || stuck_on_dead_peer(op);
}

static int nothing_writes_into_it(void *arg)
{
    const nxc_op_t *op = arg;
    return drained_or_stuck(arg) || nxc_transport_receiving(op) == 0;
}

/* Data sent from the op's buffers has all left: AM sends completed (a
 * rendezvous completes once the peer pulled it), and puts were flushed. */
static int nothing_reads_from_it(void *arg)
{
    const nxc_op_t *op = arg;
    return drained_or_stuck(arg) || !nxc_transport_sending(op);
}

/* Waits until UCX no longer writes into the op's buffers, then until it
 * no longer reads them (see the limits above), and briefly for its control
 * messages. A peer that keeps writing past the limit is declared failed
 * (its endpoint closed, its requests ended, or left stuck on a dead peer:
 * drained_or_stuck). One that has not pulled our data by then is left
 * alone and the op parked, so UCX may still read the buffers: failing it
 * would force-close its endpoint, and over TCP UCX 1.13 then crashed in
 * uct_tcp_iface_progress once the live peer sent again (e2e_limits
 * stalled, 2026-11-30). */
static void drain_locked(nxc_op_t *op)
{
    nxc_connector_t *c = op->c;
    if (nxc_drive_until(c, nothing_writes_into_it, op,
                        nxc_now_ns() + NXC_RELEASE_DATA_LIMIT_NS) != NXC_OK &&
        op->peer != NULL) {
        nxc_peer_fail(c, op->peer, "worker '%s' stopped sending the data of a released op "
                      "for %llu s", op->peer->name, NXC_RELEASE_DATA_LIMIT_NS / 1000000000ull);
        nxc_drive_until(c, nothing_writes_into_it, op, UINT64_MAX);
    }
    nxc_drive_until(c, nothing_reads_from_it, op, nxc_now_ns() + NXC_RELEASE_DATA_LIMIT_NS);
    nxc_drive_until(c, drained_or_stuck, op, nxc_now_ns() + NXC_RELEASE_CTRL_GRACE_NS);
}

void nxc_op_release_locked(nxc_op_t *op)
{
    if (!nxc_op_is_final(op))
        nxc_gate_close(op, NXC_NACK_RELEASED); /* a direct copy may have completed it */
    if (!nxc_op_is_final(op))
        cancel_locked(op, NXC_NACK_RELEASED);
    nxc_keys_remove(op);
    nxc_transport_unexpose(op); /* UCX's own registrations serve requests in flight */
    drain_locked(op);
    nxc_open_remove(op->c, op);
    if (op->inflight > 0) {
        /* UCX still holds requests whose callbacks name this op: keep the
         * struct (not the caller's buffers) until they finish, or until the
         * worker is destroyed. */
        op->zombie = 1;
        op->open_next = op->c->zombies;
        op->c->zombies = op;
        return;
    }
    nxc_op_destroy(op);
}

void nxc_op_release(nxc_op_t *op)
{
    if (op == NULL || nxc_check_process(op->c) != NXC_OK)
        return;
    nxc_connector_t *c = op->c;
    nxc_lock(c);
    nxc_op_release_locked(op);
    nxc_unlock(c);
}
