/* Private: small OS helpers (time, randomness, forks, process limits). */
#ifndef NXC_UTIL_H
#define NXC_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t nxc_now_ns(void);

/* Fills buf from the kernel's CSPRNG (getrandom). Returns 0 or NXC_ERR_SYSTEM. */
int nxc_random_bytes(void *buf, size_t n);

/* How many forks separate this process from the first one that asked (a
 * pthread_atfork handler counts them). A connector remembers the value at
 * create; any other value means it was inherited by a forked child. Costs
 * an atomic load. */
unsigned nxc_process_generation(void);

/* " (...)": a clause naming the process limit that was probably hit when
 * an allocation of fds, memory or locked memory failed (ulimit -n, -v, -l),
 * with the figures; "" when none looks exhausted. Thread-local buffer. */
const char *nxc_limit_hint(int out_of_memory);

/* NXC_OK, or NXC_ERR_SYSTEM naming RLIMIT_NOFILE when fewer fds are free
 * than a connector's UCX worker needs: UCX 1.13 aborts the process (an
 * assertion in its async thread) when the fd table fills while it starts,
 * so a connector is refused before UCX is called. */
int nxc_require_free_fds(void);

#endif
