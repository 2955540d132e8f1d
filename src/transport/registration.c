#include "transport/registration.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucm/api/ucm.h>
#include <unistd.h>

#include "common/error.h"
#include "transport/transport.h"


/* The UCM handler also runs where instrumented code cannot: glibc
 * madvise()s a finished thread's stack after ThreadSanitizer has let go of
 * the thread, and TSan then crashes on any instrumented call. So the
 * handler and the lock it takes are left uninstrumented, and that lock is a
 * spinlock (a mutex would go through TSan's interceptor). It is held for a
 * scan of at most NXC_REG_CACHE_MAX pointers. TSan still checks every other
 * access: lookups also hold the connector lock. */
#if defined(__clang__) && __has_attribute(disable_sanitizer_instrumentation)
#define NOT_FOR_TSAN __attribute__((disable_sanitizer_instrumentation))
#else
#define NOT_FOR_TSAN __attribute__((no_sanitize("thread")))
#endif

static NOT_FOR_TSAN void spin_lock(atomic_flag *f)
{
    while (atomic_flag_test_and_set_explicit(f, memory_order_acquire))
        sched_yield();
}

static NOT_FOR_TSAN void spin_unlock(atomic_flag *f)
{
    atomic_flag_clear_explicit(f, memory_order_release);
}

struct nxc_regcache {
    atomic_flag          lock;     /* entries vs the UCM handler; see registration.h */
    nxc_registration_t **entries;  /* `n` used slots of `capacity` */
    unsigned             n, capacity;
    uint64_t             clock;
    unsigned             next;     /* where the next lookup starts: after the last hit */
    atomic_uint          n_stale;
    int                  hooked;
    void                *probe;    /* the page unmapped to test the hooks */
    atomic_int           probe_seen;
    unsigned long        hits, misses, evictions, invalidations;
};

static NOT_FOR_TSAN int overlaps(uintptr_t base, size_t len, uintptr_t addr, size_t size)
{
    return addr < base + len && base < addr + size;
}

static int covers(const nxc_registration_t *r, uintptr_t p, size_t len)
{
    return p >= r->base && len <= r->len && p - r->base <= r->len - len;
}

/* UCM_EVENT_VM_UNMAPPED, inside munmap & co. on any thread: flags only. */
static NOT_FOR_TSAN void memory_unmapped(ucm_event_type_t type, ucm_event_t *event, void *arg)
{
    struct nxc_regcache *rc = arg;
    uintptr_t addr = (uintptr_t)event->vm_unmapped.address;
    size_t size = event->vm_unmapped.size;
    (void)type;
    if (overlaps((uintptr_t)rc->probe, 1, addr, size))
        atomic_store(&rc->probe_seen, 1);
    spin_lock(&rc->lock);
    for (unsigned i = 0; i < rc->n; i++) {
        nxc_registration_t *r = rc->entries[i];
        if (overlaps(r->base, r->len, addr, size) && !atomic_exchange(&r->stale, 1))
            atomic_fetch_add(&rc->n_stale, 1);
    }
    spin_unlock(&rc->lock);
}

/* Whether UCX's hooks report an munmap to us: unmaps one page of our own. */
static int hooks_work(struct nxc_regcache *rc)
{
    long page = sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        return 0;
    rc->probe = p;
    munmap(p, (size_t)page);
    rc->probe = NULL;
    return atomic_load(&rc->probe_seen);
}

int nxc_regcache_init(nxc_connector_t *c, unsigned capacity)
{
    if (capacity == 0)
        return NXC_OK;
    struct nxc_regcache *rc = calloc(1, sizeof(*rc));
    if (rc == NULL || (rc->entries = calloc(capacity, sizeof(*rc->entries))) == NULL) {
        free(rc);
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for a registration cache of %u",
                        capacity);
    }
    rc->capacity = capacity;
    atomic_flag_clear(&rc->lock);
    c->regcache = rc;
    rc->hooked = ucm_set_event_handler(UCM_EVENT_VM_UNMAPPED, -1, memory_unmapped, rc) ==
                 UCS_OK;
    if (rc->hooked && !hooks_work(rc)) {
        /* Without the events a cached registration could outlive its
         * pages: no cache (the stats say so). */
        ucm_unset_event_handler(UCM_EVENT_VM_UNMAPPED, memory_unmapped, rc);
        rc->hooked = 0;
    }
    return NXC_OK;
}

static int register_span(nxc_connector_t *c, const nxc_descriptor_t *span,
                         nxc_reg_origin_t origin, nxc_registration_t **out)
{
    nxc_registration_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for a registration");
    ucp_mem_map_params_t params = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH,
        .address = span->ptr,
        .length = span->size,
    };
    ucs_status_t st = ucp_mem_map(c->context, &params, &r->memh);
    if (st != UCS_OK) {
        free(r);
        char what[96];
        snprintf(what, sizeof(what), "registering %zu bytes at %p", span->size, span->ptr);
        return nxc_ucx_fail(st, what);
    }
    st = ucp_rkey_pack(c->context, r->memh, &r->rkey, &r->rkey_len);
    if (st != UCS_OK) {
        ucp_mem_unmap(c->context, r->memh);
        free(r);
        return nxc_ucx_fail(st, "ucp_rkey_pack");
    }
    r->c = c;
    r->base = (uintptr_t)span->ptr;
    r->len = span->size;
    r->origin = origin;
    r->refs = 1;
    *out = r;
    return NXC_OK;
}

void nxc_reg_put(nxc_registration_t *r)
{
    if (r == NULL || --r->refs > 0)
        return;
    ucp_rkey_buffer_release(r->rkey);
    ucp_mem_unmap(r->c->context, r->memh); /* for ALLOC this frees the memory */
    free(r);
}

/* ---- the cache ------------------------------------------------------------ */

/* Takes entry i out of the cache (cache lock held); the caller drops the
 * cache's reference once the lock is released. */
static nxc_registration_t *take_entry(struct nxc_regcache *rc, unsigned i)
{
    nxc_registration_t *r = rc->entries[i];
    rc->entries[i] = rc->entries[--rc->n];
    if (atomic_load(&r->stale))
        atomic_fetch_sub(&rc->n_stale, 1);
    return r;
}

/* Drops every stale entry. The references are put outside the cache lock:
 * unmapping may unmap memory and so call our handler. */
static void drop_stale(struct nxc_regcache *rc)
{
    while (atomic_load(&rc->n_stale) > 0) {
        nxc_registration_t *r = NULL;
        spin_lock(&rc->lock);
        for (unsigned i = 0; i < rc->n && r == NULL; i++)
            if (atomic_load(&rc->entries[i]->stale))
                r = take_entry(rc, i);
        spin_unlock(&rc->lock);
        if (r == NULL)
            return;
        rc->invalidations++;
        nxc_reg_put(r);
    }
}

/* Entries are scanned from just after the last hit, round: an op over
 * the buffers of the one before it looks its spans up in the order they
 * were cached, so each is found at once (1,024 separate buffers, all
 * cached: create + metadata + release 1.1 ms -> 0.34 ms). */
static nxc_registration_t *cache_find(struct nxc_regcache *rc, uintptr_t p, size_t len)
{
    nxc_registration_t *found = NULL;
    spin_lock(&rc->lock);
    unsigned n = rc->n, start = rc->next < n ? rc->next : 0;
    for (unsigned k = 0; k < n && found == NULL; k++) {
        unsigned i = start + k < n ? start + k : start + k - n;
        nxc_registration_t *r = rc->entries[i];
        if (!atomic_load(&r->stale) && covers(r, p, len)) {
            found = r;
            rc->next = i + 1;
        }
    }
    if (found != NULL) {
        found->refs++;
        found->last_use = ++rc->clock;
    }
    spin_unlock(&rc->lock);
    return found;
}

/* Adds `r` (one reference, the caller's) to the cache, evicting the least
 * recently used entry no op uses when full. Returns 0 when every entry is in
 * use: `r` then stays the op's own. */
static int cache_insert(struct nxc_regcache *rc, nxc_registration_t *r)
{
    nxc_registration_t *evicted = NULL;
    int added = 0;
    spin_lock(&rc->lock);
    if (rc->n == rc->capacity) {
        unsigned lru = rc->n;
        for (unsigned i = 0; i < rc->n; i++)
            if (rc->entries[i]->refs == 1 &&
                (lru == rc->n || rc->entries[i]->last_use < rc->entries[lru]->last_use))
                lru = i;
        if (lru < rc->n)
            evicted = take_entry(rc, lru);
    }
    if (rc->n < rc->capacity) {
        r->origin = NXC_REG_CACHED;
        r->refs++;
        r->last_use = ++rc->clock;
        rc->entries[rc->n++] = r;
        added = 1;
    }
    spin_unlock(&rc->lock);
    if (evicted != NULL) {
        rc->evictions++;
        nxc_reg_put(evicted);
    }
    return added;
}

static int cache_on(const nxc_connector_t *c)
{
    return c->regcache != NULL && c->regcache->hooked;
}

/* ---- lookup ---------------------------------------------------------------- */

int nxc_reg_for_span(nxc_connector_t *c, const nxc_descriptor_t *span,
                     nxc_registration_t **out)
{
    uintptr_t p = (uintptr_t)span->ptr;
    for (nxc_registration_t *r = c->regs; r != NULL; r = r->next)
        if (covers(r, p, span->size)) {
            r->refs++;
            *out = r;
            return NXC_OK;
        }
    struct nxc_regcache *rc = c->regcache;
    if (cache_on(c)) {
        drop_stale(rc);
        if ((*out = cache_find(rc, p, span->size)) != NULL) {
            rc->hits++;
            return NXC_OK;
        }
        rc->misses++;
    }
    int err = register_span(c, span, NXC_REG_OP, out);
    if (err == NXC_OK && cache_on(c))
        cache_insert(rc, *out);
    return err;
}

void nxc_regcache_stats(nxc_connector_t *c, nxc_regcache_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    struct nxc_regcache *rc = c->regcache;
    if (rc == NULL)
        return;
    nxc_lock(c);
    out->enabled = rc->hooked;
    out->entries = rc->n;
    out->capacity = rc->capacity;
    out->hits = rc->hits;
    out->misses = rc->misses;
    out->evictions = rc->evictions;
    out->invalidations = rc->invalidations;
    nxc_unlock(c);
}

/* ---- registrations the application owns ---------------------------------- */

static void list_add(nxc_connector_t *c, nxc_registration_t *r)
{
    r->next = c->regs;
    c->regs = r;
}

static void list_remove(nxc_connector_t *c, nxc_registration_t *r)
{
    for (nxc_registration_t **pp = &c->regs; *pp != NULL; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            r->next = NULL;
            return;
        }
}

#define HUGE_PAGE_BYTES (2ul << 20)

/* Asks for huge pages over the 2 MiB-aligned interior of a fresh allocation,
 * before anything touches it. A same-host peer's CMA copy pins every page
 * it moves: one pin per 2 MiB instead of 512, and fewer TLB misses on both
 * sides. UCX 1.13 already tries hugetlbfs for its shared segments (used
 * when the system has reserved such pages); this covers transparent huge
 * pages, which the kernel gives a shared segment only when
 * /sys/kernel/mm/transparent_hugepage/shmem_enabled allows ("advise",
 * "within_size" or "always"). Elsewhere the advice is a no-op, and a
 * failure is harmless: the memory works the same on 4 KiB pages. */
static void advise_huge_pages(void *p, size_t len)
{
    uintptr_t start = ((uintptr_t)p + HUGE_PAGE_BYTES - 1) & ~(uintptr_t)(HUGE_PAGE_BYTES - 1);
    uintptr_t end = ((uintptr_t)p + len) & ~(uintptr_t)(HUGE_PAGE_BYTES - 1);
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
}

int nxc_transport_alloc(nxc_connector_t *c, size_t size, void **ptr)
{
    nxc_registration_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for an allocation record");
    ucp_mem_map_params_t params = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH |
                      UCP_MEM_MAP_PARAM_FIELD_FLAGS,
        .address = NULL, .length = size, .flags = UCP_MEM_MAP_ALLOCATE,
    };
    ucs_status_t st = ucp_mem_map(c->context, &params, &r->memh);
    ucp_mem_attr_t attr = { .field_mask = UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH };
    if (st == UCS_OK)
        st = ucp_mem_query(r->memh, &attr);
    if (st == UCS_OK)
        st = ucp_rkey_pack(c->context, r->memh, &r->rkey, &r->rkey_len);
    if (st != UCS_OK) {
        if (r->memh != NULL)
            ucp_mem_unmap(c->context, r->memh);
        free(r);
        char what[64];
        snprintf(what, sizeof(what), "allocating %zu bytes of UCX memory", size);
        return nxc_ucx_fail(st, what);
    }
    advise_huge_pages(attr.address, attr.length);
    r->c = c;
    r->base = (uintptr_t)attr.address;
    r->len = attr.length;
    r->origin = NXC_REG_ALLOC;
    r->refs = 1;
    list_add(c, r);
    *ptr = attr.address;
    return NXC_OK;
}

void nxc_transport_free(nxc_connector_t *c, void *ptr)
{
    for (nxc_registration_t *r = c->regs; r != NULL; r = r->next)
        if (r->origin == NXC_REG_ALLOC && r->base == (uintptr_t)ptr) {
            list_remove(c, r);
            nxc_reg_put(r);
            return;
        }
}

void nxc_transport_free_all(nxc_connector_t *c)
{
    while (c->regs != NULL) {
        nxc_registration_t *r = c->regs;
        list_remove(c, r);
        nxc_reg_put(r);
    }
}

void nxc_registrations_fini(nxc_connector_t *c)
{
    nxc_transport_free_all(c);
    struct nxc_regcache *rc = c->regcache;
    if (rc == NULL)
        return;
    if (rc->hooked)
        ucm_unset_event_handler(UCM_EVENT_VM_UNMAPPED, memory_unmapped, rc);
    while (rc->n > 0)
        nxc_reg_put(take_entry(rc, rc->n - 1));
    free(rc->entries);
    free(rc);
    c->regcache = NULL;
}

/* ---- public API ------------------------------------------------------------ */

int nxc_mem_register(nxc_connector_t *c, const nxc_descriptor_t *mem, nxc_registration_t **out)
{
    if (c == NULL || mem == NULL || out == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "connector, mem and out must not be NULL");
    if (mem->ptr == NULL || mem->size == 0)
        return nxc_fail(NXC_ERR_INVALID_ARG, "cannot register %zu bytes at %p: the pointer "
                        "must not be NULL and the size not 0", mem->size, mem->ptr);
    if ((uintptr_t)mem->ptr + mem->size < (uintptr_t)mem->ptr)
        return nxc_fail(NXC_ERR_INVALID_ARG, "%zu bytes at %p wrap around the address space",
                        mem->size, mem->ptr);
    if (mem->device.kind == NXC_DEVICE_CUDA)
        return nxc_fail(NXC_ERR_UNSUPPORTED, "CUDA memory cannot be registered by this build");
    if (mem->device.kind != NXC_DEVICE_HOST)
        return nxc_fail(NXC_ERR_DEVICE, "device kind %d is neither host nor CUDA",
                        (int)mem->device.kind);
    nxc_registration_t *r;
    nxc_lock(c);
    int rc = register_span(c, mem, NXC_REG_USER, &r);
    if (rc == NXC_OK)
        list_add(c, r);
    nxc_unlock(c);
    if (rc != NXC_OK)
        return rc;
    nxc_clear_error();
    *out = r;
    return NXC_OK;
}

void nxc_mem_deregister(nxc_registration_t *r)
{
    if (r == NULL)
        return;
    nxc_connector_t *c = r->c;
    nxc_lock(c);
    list_remove(c, r);
    nxc_reg_put(r);
    nxc_unlock(c);
}
