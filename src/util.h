/* Private: small OS helpers (time, randomness, process identity). */
#ifndef NXC_UTIL_H
#define NXC_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "metadata.h"

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t nxc_now_ns(void);

/* Fills buf from the kernel's CSPRNG (getrandom). Returns 0 or NXC_ERR_SYSTEM. */
int nxc_random_bytes(void *buf, size_t n);

/* Who this process is: pid, pid namespace and boot id, so a peer on the
 * same host can watch us with a pidfd. Returns 0 or NXC_ERR_SYSTEM. */
int nxc_identity_self(nxc_identity_t *out);

/* True when a pidfd opened here can watch the process `id` names. */
int nxc_identity_same_host(const nxc_identity_t *a, const nxc_identity_t *b);

/* pidfd_open(2); -1 with errno on failure. */
int nxc_pidfd_open(uint32_t pid);

#endif
