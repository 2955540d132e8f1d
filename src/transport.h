/* Private: everything that talks to UCX.
 *
 * Data path (SPEC section 5): the passive side maps each contiguous span of
 * the op's memory with ucp_mem_map and packs one rkey per span into the
 * agent blob. The active side unpacks them on the endpoint it shares with
 * every other op to that peer, posts one ucp_put_nbx / ucp_get_nbx per
 * descriptor, then one ucp_ep_flush_nbx: when the flush completes the data
 * is in place (puts) or has arrived (gets), and only then is the DONE
 * control message sent to the passive side.
 *
 * Control messages are UCX active messages on one AM id: BEGIN (an active
 * op started: the passive side learns whom to watch), DONE (data in place),
 * ABORT (the active op was cancelled and its requests have drained). Each
 * carries the op's key and the sender's identity. */
#ifndef NXC_TRANSPORT_H
#define NXC_TRANSPORT_H

#include "connector.h"

enum nxc_ctrl_type { NXC_CTRL_BEGIN = 1, NXC_CTRL_DONE = 2, NXC_CTRL_ABORT = 3 };

/* Creates the UCX context and worker, the AM handler and the event fd. */
int  nxc_transport_init(nxc_connector_t *c);
void nxc_transport_fini(nxc_connector_t *c);

/* Maps the passive op's memory (one region per contiguous span) and fills
 * *regions (malloc'd; each rkey malloc'd by UCX: free with
 * nxc_transport_free_regions). */
int  nxc_transport_expose(nxc_op_t *op, nxc_region_t **regions, uint32_t *n_regions);
void nxc_transport_free_regions(nxc_region_t *regions, uint32_t n_regions);
void nxc_transport_unexpose(nxc_op_t *op);

/* Creates the endpoint to a peer that has a worker address. */
int  nxc_transport_connect(nxc_connector_t *c, nxc_peer_t *p);
void nxc_transport_disconnect(nxc_connector_t *c, nxc_peer_t *p);

/* Unpacks the remote keys and resolves each descriptor's remote address. */
int  nxc_transport_prepare(nxc_op_t *op, const nxc_metadata_t *md);
void nxc_transport_release_rkeys(nxc_op_t *op);

/* Posts the whole transfer: BEGIN, the puts or gets, the flush. The flush
 * completion sends DONE (or ABORT if the op was cancelled meanwhile). */
int  nxc_transport_start(nxc_op_t *op);

/* Re-arms the event fd: 0 when armed, 1 when events are pending (progress
 * again first), negative on error. */
int  nxc_transport_arm(nxc_connector_t *c);

#endif
