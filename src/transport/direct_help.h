/* Private: the passive side's CPU helping a large same-host direct copy
 * (see direct_help.c for the protocol and why it is safe).
 *
 * A direct copy moves every byte with process_vm_readv/writev on the
 * active side's CPU, which pins each 4 KiB page: ~4-6 GB/s here, where a
 * copy that both processes share through shared memory (as UCX's emulated
 * get does) reaches 8-14 (bench/stage_probe.c). When a passive worker is
 * there to help, the active side asks it: the passive side copies chunks
 * between its own buffer and a ring in its gate, the active side copies
 * between the ring and its buffer, and copies the rest itself, from the
 * other end. It never waits for the passive side beyond a stall bound: a
 * passive worker that is asleep, busy or stopped only helps less. */
#ifndef NXC_DIRECT_HELP_H
#define NXC_DIRECT_HELP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The help area of a gate, after its slots (layout in direct_help.c). */
struct nxc_gate_help;

/* Its size in the gate's memfd (a multiple of the page size). */
size_t nxc_help_bytes(void);

/* ---- active side ---- */

/* One direct copy of a span of bytes (buffers back to back) into or out
 * of a passive op's span of the same size. */
typedef struct nxc_help_job {
    struct nxc_gate_help *h;
    int                   write; /* 1: local -> passive, 0: passive -> local */
    char                 *local;
    uint64_t              remote; /* the buffer's address in the passive process */
    size_t                size;
    pid_t                 pid;
    uint64_t              epoch; /* 0: the passive side was not asked */
    uint64_t              moved;
    /* What a byte cost us each way, so far (nxc_help_run). */
    uint64_t              ring_ns, ring_bytes, cma_ns, cma_bytes;
} nxc_help_job_t;

/* Whether a copy of `size` bytes (`write`: into the passive side's op) is
 * worth the passive side's help. */
int nxc_help_worth(size_t size, int write);

/* Asks the passive side for help with the op in `slot` (which this process
 * has just claimed): returns 1 if asked, 0 if the help area serves another
 * copy (then nxc_help_run copies alone). The caller then wakes the passive
 * side. */
int nxc_help_ask(nxc_help_job_t *j, uint32_t slot);

/* Copies every byte, with whatever help comes; ends the request. Returns 0
 * or the errno of a failed process_vm_* call. */
int nxc_help_run(nxc_help_job_t *j);

/* ---- passive side ---- */

/* The slot whose op a peer asks help with, or 0, and the pid it claimed
 * with. */
uint32_t nxc_help_asked(struct nxc_gate_help *h, uint32_t *pid);

/* Helps with the asked-for op for a while: `readable` says which way the
 * bytes go (our span `buf` of `size` bytes is read by the peer, or
 * written). Returns nonzero while there is more to do (the caller should
 * not sleep), 0 when there is nothing to do for now. */
unsigned nxc_help_serve(struct nxc_gate_help *h, uint32_t slot, int readable, char *buf,
                        size_t size);

/* The op in `slot` ended without its claimer ending its request (the
 * claimer died): the area serves others again. */
void nxc_help_forget(struct nxc_gate_help *h, uint32_t slot);

#endif
