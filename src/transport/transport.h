/* Private: everything that talks to UCX, and the engine's one interface to
 * it.
 *
 * transport.c  context, worker, event fd, registration, endpoints, and the
 *              control messages the protocols share;
 * protocol.c   which protocol an op uses, and the engine's calls into it
 *              (each protocol is a table of functions: protocol.h);
 * rma.c        the one-sided protocol: ucp_put/get + flush;
 * am.c         the rendezvous active-message protocol;
 * nixl_peer.c  RMA toward a NIXL agent, which expects NIXL's notification.
 *
 * Which protocol (figures: docs/PERFORMANCE.md, "What each protocol choice
 * buys"): on this kind of machine, UCX has no
 * transport that does true one-sided put/get on ordinary (malloc'd) memory:
 * it emulates them with active messages, which needs the target's progress
 * and is 2-5x slower than rendezvous active messages (zero-copy over CMA on
 * one host). So an active op uses RMA only where UCX has a real RDMA
 * transport (InfiniBand/RoCE: rc, dc, ud), and AM otherwise. NXC_PROTOCOL=rma
 * or =am in the environment forces one (tests cover both).
 *
 * RMA: the passive side maps each contiguous span of the op's memory with
 * ucp_mem_map and packs one rkey per span into the agent blob; the active
 * side posts one put/get per descriptor, then one ucp_ep_flush_nbx. When the
 * flush completes the data is in place (puts) or has arrived (gets), and only
 * then is DONE sent.
 *
 * AM: writes send one message per descriptor whose header names the op's key
 * and the descriptor index; the passive side checks the key, the index and
 * the size against its own op and receives the bytes straight into the
 * exposed buffer (ucp_am_recv_data_nbx), or refuses them, which fails the
 * sender's request: memory is only ever written by the passive side itself,
 * for an open op. Reads: BEGIN carries the active worker's address, and the
 * passive side sends the descriptors the same way. Either op completes when
 * every non-empty descriptor has landed and DONE has been heard.
 *
 * Control messages (one AM id, layout in ctrl.h): BEGIN (an active op
 * started: the passive side learns whom to watch and where to answer),
 * DONE (data in place), ABORT (the active op was cancelled and its
 * requests have drained); back from the passive side ACK (its op took the
 * data and is COMPLETE: only this completes the active op) and NACK (it
 * will not: closed, cancelled, released, already completed, taken by
 * another active op, failed). Every BEGIN is answered by one of the two.
 * Each message carries the op's key, the active op's tag and the sender's
 * identity. */
#ifndef NXC_TRANSPORT_H
#define NXC_TRANSPORT_H

#include "codec/ctrl.h"
#include "engine/connector.h"


/* ---- transport.c ---- */

/* Creates the UCX context and worker, the AM handlers and the event fd. */
int  nxc_transport_init(nxc_connector_t *c);
void nxc_transport_fini(nxc_connector_t *c);

/* Records a UCX failure of `what` with the right code: NXC_ERR_NO_MEMORY,
 * NXC_ERR_SYSTEM when a process limit (fds, locked memory) is the likely
 * cause and the sentence names it, else NXC_ERR_TRANSPORT. Returns the code. */
int nxc_ucx_fail(ucs_status_t st, const char *what);

/* tls_hint.c: nxc_ucx_fail() for ucp_init, except that when UCX_TLS is set
 * and UCX found no usable transport the sentence names UCX_TLS and lists
 * the transports UCX offers here. */
int nxc_ucx_init_failed(ucs_status_t st, const ucp_params_t *params);

/* Re-arms the event fd: 0 when armed, 1 when events are pending (progress
 * again first), negative on error. for_poller: the fd goes to an outside
 * poller, not to a thread of ours about to sleep (nxc_gate_arm). */
int  nxc_transport_arm(nxc_connector_t *c, int for_poller);

/* Registers the passive op's memory (one region per contiguous span,
 * reusing registrations where they exist: registration.h) and fills
 * *regions (malloc'd, rkeys borrowed from the op's registrations: free with
 * nxc_transport_free_regions before the op is unexposed). */
int  nxc_transport_expose(nxc_op_t *op, nxc_region_t **regions, uint32_t *n_regions);
void nxc_transport_free_regions(nxc_region_t *regions, uint32_t n_regions);
void nxc_transport_unexpose(nxc_op_t *op);
/* registration.c: nxc_mem_alloc memory, and everything registered. */
int  nxc_transport_alloc(nxc_connector_t *c, size_t size, void **ptr);
void nxc_transport_free(nxc_connector_t *c, void *ptr);
void nxc_transport_free_all(nxc_connector_t *c);

/* Connects to a peer at `addr` (a UCX worker address, copied), unless it
 * has an endpoint already: the metadata gives the passive side's address,
 * a pulling BEGIN the active side's. */
int  nxc_transport_connect(nxc_connector_t *c, nxc_peer_t *p, const uint8_t *addr, size_t len);
void nxc_transport_disconnect(nxc_connector_t *c, nxc_peer_t *p);

/* False for a dead peer whose endpoint has no peer-error mode: UCX can
 * neither flush nor force-close it, and requests to it never complete. */
int  nxc_transport_can_close(const nxc_peer_t *p);

/* Picks the protocol of a new active op and resolves its remote side. */
int  nxc_transport_prepare(nxc_op_t *op, const nxc_metadata_t *md);

/* Posts the whole transfer. Completion arrives through callbacks. */
void nxc_transport_start(nxc_op_t *op);

/* Frees what its protocol attached to the op (rkeys, message headers). */
void nxc_transport_release(nxc_op_t *op);

/* The active side's data movement is over, with `st`: fail the op, or send
 * DONE (ABORT if it was cancelled meanwhile). */
void nxc_transport_moved(nxc_op_t *op, ucs_status_t st);

/* An active op was just cancelled: one that receives nothing more tells
 * its peer now (others do when their requests drain). */
void nxc_transport_cancelled(nxc_op_t *op);

/* A passive op that ended sends ACK or NACK (with its reason) to its
 * owner. Counted in the op's requests, so nxc_op_release() drives the
 * connector until the answer has left (a worker that releases its op and
 * stops driving does not strand its peer). Nothing is sent to a dead or
 * unconnected peer. */
void nxc_transport_tell_owner(nxc_op_t *op, uint8_t type, uint8_t reason);

/* Answers a BEGIN that may not take its op with NACK(reason), from no op,
 * connecting to the sender at the address the BEGIN carries (or over the
 * endpoint we hold to it). */
void nxc_transport_refuse(nxc_connector_t *c, const nxc_ctrl_msg_t *m, uint8_t reason);

/* Sends an active op's BEGIN again, with our address, and its DONE if it
 * had left (peer.h, knows_us). */
void nxc_transport_resend_begin(nxc_op_t *op);

/* True for UCX statuses that say the peer is dead or unreachable. */
int  nxc_status_means_peer_gone(ucs_status_t st);


/* ---- direct.c: the gate of passive ops (the same-host direct protocol) ---- */

/* Makes the connector's gate if its config asks for one (direct_local,
 * wire NXC); without a memfd it logs why and makes none. */
void nxc_gate_create(nxc_connector_t *c);

/* Gives a new passive op a slot and fills *ref for its metadata. With no
 * gate (direct_local off, NIXL wire, memfd refused) or all slots taken,
 * ref->present is 0 and the op offers the message protocols only. */
int  nxc_gate_assign(nxc_op_t *op, nxc_gate_ref_t *ref);

/* An active-message BEGIN or data message is about to take the op: takes
 * its slot for that path. Returns 0, or the NACK reason (ctrl.h) when a
 * direct copy took it or the op is closed. Always 0 for an op without a
 * slot. */
uint8_t nxc_gate_take_for_am(nxc_op_t *op);

/* Moves what the slot says into the op: IN_PROGRESS while a peer copies,
 * COMPLETE once its copy is over, ERRORED if it failed or its process died
 * mid-copy. No-op for an op without a slot or a final op. */
void nxc_gate_poll(nxc_op_t *op);

/* Before cancel or release ends an op (`reason`: NXC_NACK_CANCELLED or
 * NXC_NACK_RELEASED): closes its slot so that no copy starts after this
 * returns, waiting for one that runs (as long as its process lives). If a
 * copy finished first the op is COMPLETE (or ERRORED) on return. */
void nxc_gate_close(nxc_op_t *op, uint8_t reason);

/* A thread starts (+1) or ends (-1) nxc_op_wait() on the passive op. On
 * start it also polls the op's slot (after the count is visible: a copy
 * that ends then wakes us, see WAKING in direct.c). */
void nxc_gate_waiting(nxc_op_t *op, int delta);

/* Before a thread of ours sleeps (for_poller 0) or the connector leaves its
 * fd to an outside poller (1): asks same-host peers to write the wake
 * eventfd when their copies end, every copy for a poller, only of ops a
 * thread waits for otherwise. 1 when one ended since the last
 * nxc_gate_check (progress first), else 0. */
int nxc_gate_arm(nxc_connector_t *c, int for_poller);

/* A progress pass of a connector with a gate: if a same-host peer poked it
 * since the last look, polls the slot of every open op. Returns how many
 * ops that ended. */
unsigned nxc_gate_check(nxc_connector_t *c);

/* The op just ended (nxc_op_finish): an OPEN slot closes with `reason`, so
 * no direct copy starts any more. Never waits. */
void nxc_gate_shut(nxc_op_t *op, uint8_t reason);

/* The op is going: its slot may serve another op (under a new
 * generation, so old metadata never reaches it). Idempotent. */
void nxc_gate_free_slot(nxc_op_t *op);

/* Connector teardown, after every op was released. */
void nxc_gate_destroy(nxc_connector_t *c);

/* Unmaps a peer's gate (the peer is freed). */
void nxc_direct_forget_peer(nxc_peer_t *p);

/* ---- protocol.c: the op's protocol (protocol.h), for the engine ---- */

/* Exposes a passive op's memory (nxc_transport_expose) and writes the
 * metadata it publishes into op->json: nxc's agent blob, or on a connector
 * of wire NXC_WIRE_NIXL a NIXL agent's (nixl_peer.h). */
int nxc_transport_publish(nxc_op_t *op);

/* The protocol a BEGIN or WRITE asks of the passive op `op` (NULL: none
 * found), or NULL when no honest peer sends it (malformed for its op). */
const nxc_protocol_t *nxc_protocol_for_begin(const nxc_op_t *op, const nxc_ctrl_msg_t *m);

/* Passive side: the BEGIN `m` took the op, whose peer is connected (a
 * pulled read starts sending). */
void nxc_transport_begun(nxc_op_t *op, const nxc_ctrl_msg_t *m);

/* Passive side: places the data of the WRITE `m`, as its own data message
 * would be. Returns 0 (and counts the message spoofed) when the op's
 * protocol never sends one. */
int  nxc_transport_take_inline(nxc_op_t *op, const nxc_ctrl_msg_t *m);

/* Passive side: every byte the op receives is in place. */
int  nxc_transport_all_landed(const nxc_op_t *op);

/* Active side, before its movement is over: whether requests may still
 * read or write the op's buffers. */
int  nxc_transport_busy(const nxc_op_t *op);

/* Requests writing into the op's buffers now. */
unsigned nxc_transport_receiving(const nxc_op_t *op);

/* Whether requests may still read the op's buffers: data sends not
 * completed (a rendezvous completes once the peer pulled it), puts not
 * flushed. */
int  nxc_transport_sending(const nxc_op_t *op);

/* Bytes sent or landed so far (nxc_op_bytes_done before COMPLETE). */
uint64_t nxc_transport_bytes_moved(const nxc_op_t *op);

/* Frees what the worker owns (rkeys) of an op outliving it, before the
 * worker is destroyed (connector teardown). */
void nxc_transport_drop_remote(nxc_op_t *op);

#define NXC_AM_CTRL_ID 0x4e58u /* one AM id for all control messages */

#endif
