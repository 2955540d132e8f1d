/* Private: the same-host direct protocol - an active op copies straight
 * into or out of a passive op's buffers with process_vm_writev/readv, so
 * the passive process need not run (see direct.c for the protocol and why
 * it is safe).
 *
 * The passive connector (config direct_local) owns a gate: a memfd of
 * slots, one per open passive op that offers the direct path. Its
 * metadata names the gate (fd number, slot, generation); a same-host
 * active peer opens the gate through /proc/<pid>/fd/<fd>, claims the slot
 * with a compare-and-swap, copies, and marks the slot done. The passive
 * side reads its op's state from the slot. */
#ifndef NXC_DIRECT_H
#define NXC_DIRECT_H

#include "codec/metadata.h"
#include "engine/connector.h"

/* The passive side's gate functions are the engine's: transport.h. */

/* ---- active side ---- */

/* Whether an active op toward `md` may copy directly: the metadata offers
 * a slot, its worker is on this host in our pid namespace, every buffer on
 * both sides is host memory, and the peer's gate opens and the kernel lets
 * us reach its memory (tried once per peer). */
int  nxc_direct_usable(nxc_op_t *op, const nxc_metadata_t *md);

#endif
