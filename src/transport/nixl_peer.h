/* Private: operations whose peer is a NIXL agent (a Dynamo Python worker).
 *
 * Active side (we read or write a NIXL agent's memory): one ucp_get/put per
 * descriptor with the rkeys from its agent blob, one flush, then NIXL's
 * notification carrying the op's notification key, which completes
 * Dynamo's ReadableOperation/WritableOperation. Nothing else is sent: no
 * BEGIN/DONE control messages and never a rendezvous active message
 * (between Debian's UCX 1.13 and NIXL's UCX >= 1.19 rendezvous AMs failed
 * over TCP; NIXL's own notifications are eager). The endpoint is ours,
 * created before we send anything (NIXL only connects back once it loads
 * our metadata), in UCX peer-error mode like NIXL's, so a dead agent fails
 * the op with NXC_ERR_PEER_FAILED.
 *
 * Passive side (a NIXL agent reads or writes ours; the connector was made
 * with wire NXC_WIRE_NIXL): the metadata carries NIXL agent metadata whose
 * rkeys have UCX 1.13's 0-byte placeholder entries removed (UCX >= 1.20
 * refuses to unpack them), and the op completes when a NIXL notification
 * (active message id 0) carrying its notification key arrives. We never
 * create an endpoint to such a peer: it connects to us. */
#ifndef NXC_NIXL_PEER_H
#define NXC_NIXL_PEER_H

#include "engine/op.h"

/* A passive op's metadata in NIXL's format, from its exposed regions
 * (borrowed; their rkeys are copied without placeholder entries). */
int nxc_nixl_build_metadata(nxc_op_t *op, const nxc_region_t *regions, uint32_t n);

#endif
