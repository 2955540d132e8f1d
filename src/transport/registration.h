/* Private: registered memory (ucp_mem_map + one packed rkey), shared by
 * every passive op whose buffers it covers.
 *
 * A passive op needs each contiguous span of its memory registered, so that
 * its metadata can carry an rkey. Registering costs ~5-7 us per span here
 * (ucp_mem_map + ucp_mem_unmap, UCX 1.13), a large part of a 40 us full
 * cycle. Three sources of registrations, looked up in this order:
 *
 *   ALLOC   nxc_mem_alloc: UCX allocated and registered the memory;
 *   USER    nxc_mem_register: the application registered it, as with NIXL's
 *           register_mem, and keeps it until nxc_mem_deregister;
 *   CACHED  the registration cache, the default for any other host memory;
 *   OP      the op's own, when the cache is off or full of spans in use.
 *
 * Each registration counts its users (ops, plus one for the list or cache
 * that holds it) and is unmapped when the count drops to zero, so
 * deregistering or freeing memory that an open op still uses postpones the
 * unmap to that op's release instead of pulling the memory from under it.
 *
 * How the cache knows that memory was freed and reused: a registration
 * names virtual addresses, and stays right exactly as long as those
 * addresses keep their pages. free() of a small block keeps the pages
 * (they stay mapped in the heap, and a later malloc at that address reuses
 * the same pages, so the registration is still right). What changes the
 * pages is munmap, mremap, madvise(DONTNEED), brk shrinking, shmdt, and
 * mmap(MAP_FIXED) over a mapping. UCX's memory hooks (libucm, the same
 * mechanism UCX's own registration cache relies on) report every one of
 * these as UCM_EVENT_VM_UNMAPPED, before the memory goes; our handler marks
 * the cached registrations that overlap the range stale, and the next
 * lookup drops them and registers afresh. Keying the cache by mapping
 * identity instead would need a system call per lookup to validate it
 * (there is no cheap "which mapping is this" query; /proc/self/maps costs
 * far more than the registration it would save).
 * The hooks may be missing (UCX_MEM_EVENTS=n, a static allocator, a
 * sanitizer that owns munmap): the cache therefore starts only after a probe
 * munmap at connector creation was seen by the handler, and otherwise stays
 * off (ops register per op, as before). fork() is not an event here: a child
 * that exposes memory inherited from its parent should use its own connector
 * (it must anyway: UCX contexts do not survive fork).
 *
 * The UCM handler runs inside munmap on any thread, possibly while this
 * thread holds the connector lock, and must not allocate: it takes only the
 * cache's own lock, which is never held across a call that can allocate or
 * unmap memory, and it only sets flags. */
#ifndef NXC_REGISTRATION_H
#define NXC_REGISTRATION_H

#include <stdatomic.h>

#include "engine/connector.h"

typedef enum nxc_reg_origin {
    NXC_REG_OP     = 0,
    NXC_REG_CACHED = 1,
    NXC_REG_USER   = 2,
    NXC_REG_ALLOC  = 3
} nxc_reg_origin_t;

struct nxc_registration {
    struct nxc_registration *next; /* connector's list of USER and ALLOC ones */
    nxc_connector_t  *c;
    uintptr_t         base;
    size_t            len;
    ucp_mem_h         memh;
    void             *rkey;        /* packed once; ops' blobs copy it */
    size_t            rkey_len;
    unsigned          refs;        /* ops using it, + 1 for its list or cache */
    nxc_reg_origin_t  origin;
    atomic_int        stale;       /* CACHED: its pages went (UCM event) */
    uint64_t          last_use;    /* CACHED: LRU eviction */
};

/* Counters of the registration cache (read by tests and benchmarks). */
typedef struct nxc_regcache_stats {
    int           enabled;         /* the probe saw UCX's unmap events */
    unsigned      entries, capacity;
    unsigned long hits, misses, evictions, invalidations;
} nxc_regcache_stats_t;

/* Starts the cache with room for `capacity` spans (0: off). Called by
 * nxc_transport_init once the UCX context exists. */
int  nxc_regcache_init(nxc_connector_t *c, unsigned capacity);
/* Unmaps what is left (cache, user registrations, allocations) and stops
 * listening to UCX's memory events. Before ucp_cleanup. */
void nxc_registrations_fini(nxc_connector_t *c);

/* A registration covering `span` (host memory, size > 0), with one
 * reference for the caller: release it with nxc_reg_put. Lock held. */
int  nxc_reg_for_span(nxc_connector_t *c, const nxc_descriptor_t *span,
                      nxc_registration_t **out);
void nxc_reg_put(nxc_registration_t *r);

void nxc_regcache_stats(nxc_connector_t *c, nxc_regcache_stats_t *out);

#endif
