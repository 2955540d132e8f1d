/* Private: the protocols an op moves its bytes with, behind one table.
 *
 * am.c         rendezvous active messages into the exposed buffers;
 * rma.c        one-sided ucp_put/get + flush;
 * nixl_peer.c  toward a NIXL agent: RMA, then NIXL's notification instead
 *              of our control messages;
 * direct.c     to a same-host passive op that offers it: process_vm_*
 *              straight into its buffers, claimed through its gate slot.
 * Why which one: transport.h. protocol.c chooses, once per op: for an
 * active op from its metadata and the connector's default
 * (nxc_protocol_for_target), for a passive op from the BEGIN that takes it
 * (nxc_protocol_for_begin) or from the first data message, which may
 * overtake its BEGIN (am.c). The engine never names a protocol: it calls
 * the nxc_transport_* functions of transport.h, which call through
 * op->proto. Only the protocol's own file and this table name it. */
#ifndef NXC_PROTOCOL_H
#define NXC_PROTOCOL_H

#include <stddef.h>
#include <ucp/api/ucp.h>

#include "codec/ctrl.h"
#include "codec/metadata.h"

typedef struct nxc_protocol nxc_protocol_t;

/* ---- each protocol's per-op state (a union in struct nxc_op) ---- */

/* AM. Receiving side (passive write, active read): which buffers an
 * incoming message has claimed, how many bytes are in place, how many
 * receives still run; the op completes only when every non-empty buffer
 * has landed, whatever order the messages came in. Sending side (active
 * write, passive read): a slot per descriptor, each message using its
 * first's, and how the sends went. */
struct nxc_am_op {
    uint8_t            *claimed;
    size_t              landed;      /* bytes in place */
    unsigned            receiving;
    int                 runs_ok;     /* data may come as runs of adjacent buffers */
    struct nxc_am_send *sends;
    size_t              sends_left;
    size_t              sent;        /* bytes of the sends that completed */
    ucs_status_t        send_status;
    uint64_t           *raddr;       /* active write: remote address per descriptor */
    uint64_t            raddr_one[2]; /* raddr's storage for one descriptor */
    uint8_t             claimed_few[8]; /* claimed's storage for up to 8 */
};

/* RMA (active side): the rkeys of the remote regions, and where each
 * descriptor goes. */
struct nxc_rma_op {
    ucp_rkey_h *rkeys;      /* one per remote region */
    uint8_t    *rkey_owned; /* ours to destroy, or borrowed from the peer's cache */
    size_t      n_rkeys;
    uint64_t   *raddr;      /* remote address per descriptor */
    size_t     *rkey_index; /* region of each descriptor */
};

/* NIXL (active side) runs on RMA: its state starts with RMA's, which rma.c
 * works on as op->state.rma (the union's members share their first bytes). */
struct nxc_nixl_op {
    struct nxc_rma_op rma;
    uint8_t          *notif;     /* the notification */
    size_t            notif_len;
    uint8_t           probe;     /* where the 1-byte reachability probe lands */
};
_Static_assert(offsetof(struct nxc_nixl_op, rma) == 0, "rma.c works on a NIXL op's state");

/* Direct (active side, direct.c): the peer's slot, mapped here, and where
 * each descriptor goes in the peer's process. */
struct nxc_direct_op {
    struct nxc_gate_view *view;
    struct nxc_gate_slot *slot;
    uint32_t              slot_no;
    uint32_t              gen;
    uint32_t              pid;
    nxc_descriptor_t     *remote;
    uint64_t              moved;
};

/* One per op (struct nxc_op): only the member of its protocol is used. */
union nxc_protocol_state {
    struct nxc_am_op     am;
    struct nxc_rma_op    rma;
    struct nxc_nixl_op   nixl;
    struct nxc_direct_op direct;
};

struct nxc_protocol {
    const char *name;          /* for the log */
    uint8_t     ctrl_flags;    /* what our control messages say about it (ctrl.h) */

    /* Active side. prepare resolves the remote side (rkeys, addresses);
     * start posts the whole transfer, BEGIN included (completion arrives
     * through callbacks, which end in nxc_transport_moved); tell_moved
     * tells the passive side the data is in place (or the op was
     * cancelled). */
    int  (*prepare)(nxc_op_t *op, const nxc_metadata_t *md);
    void (*start)(nxc_op_t *op);
    void (*tell_moved)(nxc_op_t *op);
    /* The op was just cancelled (NULL: its requests draining tell). */
    void (*cancelled)(nxc_op_t *op);
    /* Before its movement is over: whether requests may still read or
     * write the op's buffers. */
    int  (*busy)(const nxc_op_t *op);

    /* Passive side. begun: its BEGIN took the op, whose peer is connected
     * (NULL: nothing to do). take_inline: the data of a WRITE control
     * message (NULL: this protocol never sends one). all_landed: every
     * byte the op receives is in place. */
    void (*begun)(nxc_op_t *op, const nxc_ctrl_msg_t *begin);
    void (*take_inline)(nxc_op_t *op, const nxc_ctrl_msg_t *write);
    int  (*all_landed)(const nxc_op_t *op);

    /* Both sides. receiving: requests writing into the op's buffers;
     * sending: whether requests may still read them (NULL: none);
     * bytes_moved: bytes sent or landed so far (nxc_op_bytes_done);
     * drop_remote: frees what the worker owns (rkeys) before it is
     * destroyed, NULL if nothing; release: frees all the op's protocol
     * state (idempotent). */
    unsigned (*receiving)(const nxc_op_t *op);
    int      (*sending)(const nxc_op_t *op);
    uint64_t (*bytes_moved)(const nxc_op_t *op);
    void (*drop_remote)(nxc_op_t *op);
    void (*release)(nxc_op_t *op);
};

extern const nxc_protocol_t nxc_protocol_am, nxc_protocol_rma, nxc_protocol_nixl,
    nxc_protocol_direct;

/* ---- protocol.c: choosing ---- */

/* The connector's default for new active ops: NXC_PROTOCOL=rma|am, else
 * RMA where UCX has real RDMA hardware, else AM. Logs the choice. */
int nxc_protocol_choose_default(nxc_connector_t *c);

/* The protocol of a new active op toward the target `md` describes. */
const nxc_protocol_t *nxc_protocol_for_target(nxc_op_t *op, const nxc_metadata_t *md);

/* nxc_protocol_for_begin: transport.h. */

/* Sets the UCX handlers of the messages protocols receive. */
int nxc_protocols_listen(nxc_connector_t *c);

/* ---- shared with the protocols (transport.c) ---- */

/* Sends BEGIN, with `flags` added to the protocol's (ctrl.h), or for
 * `with_data` WRITE: BEGIN, the op's one buffer and DONE at once (then the
 * op's data has moved and its DONE has left as soon as it is posted). It
 * carries our worker address unless the peer answered us before (peer.h,
 * knows_us). On failure the op is ERRORED and the code returned. */
int  nxc_transport_send_begin(nxc_op_t *op, uint8_t flags, int with_data);
/* Sends DONE, or ABORT for an op cancelled meanwhile (tell_moved of the
 * protocols that speak our control messages). */
void nxc_transport_send_end(nxc_op_t *op);
/* Sets the UCX handler of the active messages with id `id`. */
int  nxc_transport_listen(nxc_connector_t *c, unsigned id, ucp_am_recv_callback_t cb);

/* ---- the protocols' own entry points ---- */

/* rma.c: the puts/gets and the flush, without BEGIN (NIXL runs on RMA). */
void nxc_rma_post(nxc_op_t *op);

/* am.c, nixl_peer.c: their UCX message handlers. */
ucs_status_t nxc_am_data_received(void *arg, const void *header, size_t header_len,
                                  void *data, size_t len, const ucp_am_recv_param_t *param);
ucs_status_t nxc_nixl_notif_received(void *arg, const void *header, size_t header_len,
                                     void *data, size_t len, const ucp_am_recv_param_t *param);

#define NXC_DATA_HDR 36         /* AM data: key, first index, count, sender pid, tag */
#define NXC_AM_DATA_ID 0x4e59u
/* A write this small into one buffer travels as one WRITE control message
 * (BEGIN, data and DONE): one message each way instead of three and one. */
#define NXC_INLINE_WRITE_MAX 4096u

#endif
