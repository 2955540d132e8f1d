/* Private: the operation and its state machine.
 *
 *   passive:  INITIALIZED --BEGIN--> IN_PROGRESS --DONE--> COMPLETE
 *   active:   IN_PROGRESS --flush ok + DONE sent--> COMPLETE
 *   any non-final --cancel--> CANCELLED; --failure--> ERRORED
 *
 * Final states never change. An active op counts the UCX requests still
 * using its buffers (`inflight`); it is freed only when it is released *and*
 * that count is zero, so no UCX callback ever sees a freed op, and release
 * waits for the count to drain so the caller may free its buffers. */
#ifndef NXC_OP_H
#define NXC_OP_H

#include <ucp/api/ucp.h>

#include "metadata.h"
#include "peer.h"

#define NXC_CTRL_MAX (48 + NXC_NAME_MAX)

struct nxc_op {
    nxc_connector_t  *c;
    nxc_op_kind_t     kind;
    int               passive;
    nxc_op_status_t   status;
    int               err;
    char              err_detail[320];
    size_t            n;
    nxc_descriptor_t *descs;
    uint8_t           key[NXC_KEY_BYTES];
    nxc_peer_t       *peer;       /* target (active) or initiator once known (passive) */
    struct nxc_op    *open_prev, *open_next;   /* connector's list of live ops */
    struct nxc_op    *key_next;                /* connector's key table chain */
    int               in_key_table;
    unsigned          inflight;   /* UCX requests that may still touch our buffers */

    /* passive side */
    char             *json;
    size_t            json_len;
    ucp_mem_h        *memh;
    size_t            n_memh;

    /* active side */
    ucp_rkey_h       *rkeys;      /* one per remote region */
    size_t            n_rkeys;
    uint64_t         *raddr;      /* remote address per descriptor */
    size_t           *rkey_index; /* region of each descriptor */
    uint8_t           ctrl_begin[NXC_CTRL_MAX];
    uint8_t           ctrl_end[NXC_CTRL_MAX];
};

/* Moves a non-final op to a final state, records why, and tells waiters.
 * No-op on a final op. */
void nxc_op_finish(nxc_op_t *op, nxc_op_status_t status, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

int nxc_op_is_final(const nxc_op_t *op);

/* Stops exposing a passive op's memory (deregisters it). Idempotent. */
void nxc_op_revoke(nxc_op_t *op);

/* Frees an op whose transport work is over (released and inflight == 0). */
void nxc_op_destroy(nxc_op_t *op);

/* Called by the transport when one of the op's requests completes. */
void nxc_op_request_done(nxc_op_t *op);

/* A control message arrived for `key` from `name`/`sender`: route it to its
 * op (hash lookup), check the sender is the op's peer, apply it. */
void nxc_op_on_ctrl(nxc_connector_t *c, int type, const uint8_t key[NXC_KEY_BYTES],
                    const char *name, size_t name_len, const nxc_identity_t *sender);

/* Release with the connector lock held (connector teardown). */
void nxc_op_release_locked(nxc_op_t *op);

#endif
