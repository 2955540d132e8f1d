#include "op.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"
#include "error.h"
#include "transport.h"
#include "util.h"

/* How long release waits for the transport to let go of an op's buffers
 * before it gives up on the peer and force-closes the endpoint. */
#define NXC_RELEASE_DRAIN_NS (10ull * 1000000000ull)

int nxc_op_is_final(const nxc_op_t *op)
{
    return op->status == NXC_OP_COMPLETE || op->status == NXC_OP_CANCELLED ||
           op->status == NXC_OP_ERRORED;
}

void nxc_op_finish(nxc_op_t *op, nxc_op_status_t status, int err, const char *fmt, ...)
{
    if (nxc_op_is_final(op))
        return;
    op->status = status;
    op->err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->err_detail, sizeof(op->err_detail), fmt, ap);
    va_end(ap);
    /* A final passive op accepts no further notification. */
    if (op->in_key_table)
        nxc_keys_remove(op->c, op);
    nxc_notify_change(op->c);
}

void nxc_op_request_done(nxc_op_t *op)
{
    op->inflight--;
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
    op->descs = malloc(n * sizeof(*descs));
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
    return op;
}

void nxc_op_destroy(nxc_op_t *op)
{
    if (op == NULL)
        return;
    nxc_transport_release_rkeys(op);
    nxc_transport_unexpose(op);
    if (op->peer != NULL)
        nxc_peer_unref(op->c, op->peer);
    free(op->rkeys);
    free(op->raddr);
    free(op->rkey_index);
    free(op->json);
    free(op->descs);
    free(op);
}

static int build_metadata(nxc_op_t *op)
{
    nxc_connector_t *c = op->c;
    nxc_region_t *regions = NULL;
    uint32_t n_regions = 0;
    int rc = nxc_transport_expose(op, &regions, &n_regions);
    if (rc != NXC_OK)
        return rc;
    nxc_agent_blob_t blob = {
        .name = c->name,
        .name_len = (uint16_t)strlen(c->name),
        .identity = c->identity,
        .worker_addr = (const uint8_t *)c->worker_addr,
        .worker_addr_len = (uint32_t)c->worker_addr_len,
        .n_regions = n_regions,
        .regions = regions,
    };
    rc = nxc_metadata_encode(op->kind, op->key, op->descs, op->n, &blob, &op->json,
                             &op->json_len);
    nxc_transport_free_regions(regions, n_regions);
    return rc;
}

static int create_passive(nxc_connector_t *c, nxc_op_kind_t kind, const nxc_descriptor_t *local,
                          size_t n, nxc_op_t **out)
{
    if (c == NULL || out == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "connector and out must not be NULL");
    int rc = check_descriptors(c, local, n, "local");
    if (rc != NXC_OK)
        return rc;
    nxc_op_t *op = op_new(c, kind, 1, local, n);
    if (op == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for an op of %zu descriptors", n);
    rc = nxc_random_bytes(op->key, sizeof(op->key));
    nxc_lock(c);
    if (rc == NXC_OK)
        rc = build_metadata(op);
    if (rc == NXC_OK)
        rc = nxc_keys_insert(c, op);
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
    rc = nxc_peer_for_target(c, &md->blob, &op->peer);
    if (rc == NXC_OK)
        rc = nxc_transport_prepare(op, md);
    if (rc != NXC_OK) {
        nxc_op_destroy(op);
        nxc_unlock(c);
        return rc;
    }
    op->status = NXC_OP_IN_PROGRESS;
    nxc_open_add(c, op);
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

void nxc_op_on_ctrl(nxc_connector_t *c, int type, const uint8_t key[NXC_KEY_BYTES],
                    const char *name, size_t name_len, const nxc_identity_t *sender)
{
    nxc_op_t *op = nxc_keys_find(c, key);
    if (op == NULL) {
        c->spoofed_notifications++;
        return;
    }
    /* The first peer to speak for a key owns the op; anyone else is ignored. */
    if (op->peer == NULL) {
        op->peer = nxc_peer_for_sender(c, name, name_len, sender);
        if (op->peer == NULL)
            return;
    } else if (strlen(op->peer->name) != name_len ||
               memcmp(op->peer->name, name, name_len) != 0 ||
               op->peer->identity.pid != sender->pid) {
        c->spoofed_notifications++;
        return;
    }
    switch (type) {
    case NXC_CTRL_BEGIN:
        if (op->status == NXC_OP_INITIALIZED) {
            op->status = NXC_OP_IN_PROGRESS;
            nxc_notify_change(c);
        }
        break;
    case NXC_CTRL_DONE:
        nxc_op_finish(op, NXC_OP_COMPLETE, NXC_OK, "complete");
        break;
    case NXC_CTRL_ABORT:
        nxc_op_finish(op, NXC_OP_ERRORED, NXC_ERR_PEER_ABORTED,
                      "worker '%s' cancelled its %s of this op", op->peer->name,
                      op->kind == NXC_OP_READ ? "read" : "write");
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

nxc_op_status_t nxc_op_status(nxc_op_t *op)
{
    if (op == NULL)
        return NXC_OP_UNINITIALIZED;
    nxc_connector_t *c = op->c;
    nxc_lock(c);
    if (!nxc_op_is_final(op))
        nxc_progress_locked(c, 1);
    nxc_op_status_t st = op->status;
    nxc_unlock(c);
    return st;
}

static int op_final(void *arg)
{
    return nxc_op_is_final(arg);
}

static int outcome(const nxc_op_t *op)
{
    switch (op->status) {
    case NXC_OP_COMPLETE:
        return NXC_OK;
    case NXC_OP_CANCELLED:
        return nxc_fail(NXC_ERR_CANCELLED, "the op was cancelled");
    default:
        return nxc_fail(op->err, "%s", op->err_detail);
    }
}

int nxc_op_wait(nxc_op_t *op, int timeout_ms)
{
    if (op == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "op must not be NULL");
    if (timeout_ms < -1)
        return nxc_fail(NXC_ERR_INVALID_ARG, "timeout_ms is %d; use -1 for no limit",
                        timeout_ms);
    nxc_connector_t *c = op->c;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : nxc_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    nxc_lock(c);
    int rc;
    if (nxc_drive_until(c, op_final, op, deadline) != NXC_OK)
        rc = nxc_fail(NXC_ERR_TIMED_OUT, "the op is still %s after %d ms",
                      nxc_op_status_name(op->status), timeout_ms);
    else
        rc = outcome(op);
    nxc_unlock(c);
    return rc;
}

/* Cancels with the lock held. */
static void cancel_locked(nxc_op_t *op)
{
    nxc_op_finish(op, NXC_OP_CANCELLED, NXC_ERR_CANCELLED, "cancelled by the caller");
    if (op->passive)
        nxc_transport_unexpose(op);
}

int nxc_op_cancel(nxc_op_t *op)
{
    if (op == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "op must not be NULL");
    nxc_lock(op->c);
    int rc = NXC_OK;
    if (op->status == NXC_OP_ERRORED)
        rc = nxc_fail(NXC_ERR_STATE, "an ERRORED op cannot be cancelled (it failed: %s)",
                      op->err_detail);
    else if (!nxc_op_is_final(op))
        cancel_locked(op);
    nxc_unlock(op->c);
    return rc;
}

int nxc_op_results(nxc_op_t *op, const nxc_descriptor_t **descs, size_t *n)
{
    if (op == NULL || descs == NULL || n == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "op, descs and n must not be NULL");
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
    nxc_lock(op->c);
    int err = op->status == NXC_OP_ERRORED ? op->err : NXC_OK;
    if (detail != NULL)
        *detail = err != NXC_OK ? op->err_detail : "";
    nxc_unlock(op->c);
    return err;
}

nxc_op_kind_t nxc_op_kind(const nxc_op_t *op)
{
    return op == NULL ? NXC_OP_KIND_UNSPECIFIED : op->kind;
}

static int drained(void *arg)
{
    return ((nxc_op_t *)arg)->inflight == 0;
}

/* Waits until UCX no longer touches the op's buffers. A peer that keeps us
 * waiting past the limit is given up on: closing its endpoint completes
 * every request still posted to it. */
static void drain_locked(nxc_op_t *op)
{
    nxc_connector_t *c = op->c;
    if (op->inflight == 0)
        return;
    if (nxc_drive_until(c, drained, op, nxc_now_ns() + NXC_RELEASE_DRAIN_NS) != NXC_OK &&
        op->peer != NULL)
        nxc_peer_fail(c, op->peer, "worker '%s' did not finish a released op within %llu s",
                      op->peer->name, NXC_RELEASE_DRAIN_NS / 1000000000ull);
    nxc_drive_until(c, drained, op, UINT64_MAX);
}

void nxc_op_release_locked(nxc_op_t *op)
{
    if (!nxc_op_is_final(op))
        cancel_locked(op);
    if (op->in_key_table)
        nxc_keys_remove(op->c, op);
    drain_locked(op);
    nxc_open_remove(op->c, op);
    nxc_op_destroy(op);
}

void nxc_op_release(nxc_op_t *op)
{
    if (op == NULL)
        return;
    nxc_connector_t *c = op->c;
    nxc_lock(c);
    nxc_op_release_locked(op);
    nxc_unlock(c);
}
