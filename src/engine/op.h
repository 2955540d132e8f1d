/* Private: the operation and its state machine.
 *
 *   passive:  INITIALIZED --BEGIN--> IN_PROGRESS --DONE--> COMPLETE (sends ACK)
 *   active:   IN_PROGRESS --data moved, DONE sent, ACK heard--> COMPLETE
 *   any non-final --cancel--> CANCELLED; --failure or NACK--> ERRORED
 *
 * A passive op belongs to the first active op (peer + tag) that speaks for
 * it; when it ends it tells that owner: ACK for COMPLETE, NACK with the
 * reason otherwise (unless the owner aborted or died).
 *
 * Final states never change. An active op counts the UCX requests still
 * using its buffers (`inflight`); it is freed only when it is released *and*
 * that count is zero, so no UCX callback ever sees a freed op, and release
 * waits for the count to drain so the caller may free its buffers. */
#ifndef NXC_OP_H
#define NXC_OP_H

#include <ucp/api/ucp.h>

#include "codec/ctrl.h"
#include "codec/metadata.h"
#include "engine/peer.h"
#include "transport/protocol.h"

/* Room for an address-less BEGIN, or such a WRITE of a few bytes, inside
 * the op (bigger ones are allocated): with the rest of the op it keeps the
 * struct small enough for malloc's per-thread cache. */
#define NXC_CTRL_BEGIN_INLINE 128u

struct nxc_op {
    nxc_connector_t  *c;
    nxc_op_kind_t     kind;
    int               passive;
    nxc_op_status_t   status;
    int               err;
    char             *err_detail; /* why it failed or was cancelled; NULL until then */
    size_t            n;
    nxc_descriptor_t *descs;
    uint8_t           key[NXC_KEY_BYTES];
    uint64_t          tag;        /* active: ours; passive: the owner's (0: no owner yet) */
    nxc_peer_t       *peer;       /* target (active) or initiator once known (passive) */
    int               done_sent;  /* active: DONE left, an ACK may complete it */
    int               moved;      /* active: the data movement is over (transport_moved) */
    uint8_t           refused;    /* active: a NACK's reason, held until it is over */
    uint8_t           close_reason; /* passive: NACK reason if cancelled (or released) */
    int               answering;  /* passive: its ACK/NACK has not left this process yet */
    struct nxc_op    *open_prev, *open_next;   /* connector's list of live ops */
    struct nxc_op    *key_next;                /* key table chain */
    struct nxc_keytable *key_table;            /* the table holding it, or NULL */
    unsigned          inflight;   /* UCX requests that may still touch our buffers */
    int               zombie;     /* released while requests were still pending */

    nxc_wire_t        wire;       /* the peer's wire (nixl_peer.h for NIXL) */
    size_t            expected;   /* bytes to move (sum of the sizes) */
    int               done_heard; /* passive: the peer said DONE */
    uint8_t          *ctrl_begin; /* BEGIN may carry our worker address */
    uint8_t           begin_flags;  /* active: what its BEGIN said (for a resend) */
    uint8_t           begin_inline; /* active: its BEGIN was a WRITE with the data */
    uint8_t           addr_omitted; /* active: its BEGIN went without our address */

    /* How it moves its bytes, chosen once (passive: by its BEGIN, or by
     * data that overtook it), and that protocol's own state
     * (transport/protocol.h). */
    const nxc_protocol_t *proto;  /* NULL until chosen */
    union nxc_protocol_state state;

    /* passive side */
    char             *json;
    size_t            json_len;
    nxc_registration_t **regs;    /* one per span of its memory (registration.h) */
    size_t            n_regs;
    int               has_slot;   /* offers same-host direct copies (direct.h) */
    uint32_t          slot, slot_gen;
    uint64_t          claimer_checked_ns; /* last look for its copier's death */

    uint8_t           ctrl_end[NXC_CTRL_MAX];
    /* The common case needs no allocation of its own: one descriptor, and
     * a BEGIN (or small WRITE) that fits here. */
    nxc_descriptor_t  desc_one;
    uint8_t           ctrl_begin_inline[NXC_CTRL_BEGIN_INLINE];
};

/* Moves a non-final op to a final state, records why, and tells waiters.
 * No-op on a final op. */
void nxc_op_finish(nxc_op_t *op, nxc_op_status_t status, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

int nxc_op_is_final(const nxc_op_t *op);

/* INITIALIZED (or new) -> IN_PROGRESS, counted by the connector. */
void nxc_op_set_in_progress(nxc_op_t *op);

/* Stops exposing a passive op's memory (deregisters it). Idempotent. */
void nxc_op_revoke(nxc_op_t *op);

/* Frees an op whose transport work is over (released and inflight == 0). */
void nxc_op_destroy(nxc_op_t *op);

/* Called by the transport when one of the op's requests completes. */
void nxc_op_request_done(nxc_op_t *op);

/* A control message arrived: route it to its op by key (hash lookup), check
 * the sender is the op's peer, apply it. */
void nxc_op_on_ctrl(nxc_connector_t *c, const nxc_ctrl_msg_t *msg);

/* Completes a passive op once DONE was heard and every buffer it receives
 * has landed. */
void nxc_op_check_landed(nxc_op_t *op);

/* The passive side refused an active op (NACK `reason`): it ends ERRORED,
 * PEER_ABORTED with a sentence saying why - at once if its transfer is
 * over, else when it is (nxc_transport_moved), so that an op that ended
 * has no request left reading or writing its buffers. */
void nxc_op_refused(nxc_op_t *op, uint8_t reason);

/* Release with the connector lock held (connector teardown). */
void nxc_op_release_locked(nxc_op_t *op);

#endif
