/* Private: who a process is, so a peer on the same host can watch it with a
 * pidfd (peer-death detection) and a peer elsewhere is never mistaken for
 * a local process. Carried in the agent blob and in every control message. */
#ifndef NXC_IDENTITY_H
#define NXC_IDENTITY_H

#include <stdint.h>

#define NXC_HOST_ID_BYTES 16

/* Identity of a process: same host_id and pidns means a pidfd can watch it. */
typedef struct nxc_identity {
    uint32_t pid;
    uint64_t pidns;                       /* inode of /proc/self/ns/pid */
    uint8_t  host_id[NXC_HOST_ID_BYTES];  /* /proc/sys/kernel/random/boot_id */
} nxc_identity_t;

/* This process: pid, pid namespace and boot id. Returns 0 or NXC_ERR_SYSTEM. */
int nxc_identity_self(nxc_identity_t *out);

/* True when a pidfd opened here can watch the process `id` names. */
int nxc_identity_same_host(const nxc_identity_t *a, const nxc_identity_t *b);

/* pidfd_open(2); -1 with errno on failure. */
int nxc_pidfd_open(uint32_t pid);

/* Whether the process behind `pidfd` has exited (a zombie has), waiting at
 * most `ms` for it. */
int nxc_pidfd_exits_within(int pidfd, int ms);

/* How long a failure that may be a peer's death waits for the exit to
 * show. A killed process loses its shared-memory files before its pidfd
 * reports the exit, so UCX connecting to its segments fails with a
 * shared-memory error for the milliseconds its teardown takes. */
#define NXC_DYING_WAIT_MS 200

#endif
