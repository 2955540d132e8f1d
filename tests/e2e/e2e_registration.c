/* Registered memory (registration.h): the registration cache and
 * nxc_mem_register. Two connectors of this process, writes and reads
 * checked byte for byte, and the cache's counters (private API) read to see
 * that a registration was reused or made afresh:
 *   - an op over the same memory again reuses the cached registration;
 *   - memory unmapped and mapped again at the same address (munmap + mmap,
 *     and free + malloc of a block glibc maps, which glibc puts at the same
 *     address; ASan's and valgrind's allocators do not) is registered
 *     afresh, and the data lands in the new pages;
 *   - free + malloc of a small heap block (pages kept) may reuse it;
 *   - the cache never holds more than its capacity;
 *   - a cache of 256 holds an op over 160 separate buffers, and finds
 *     them wherever the previous lookup stopped;
 *   - ops inside an nxc_mem_register range add nothing to the cache, and a
 *     deregistration while an op is open waits for that op;
 *   - argument errors of nxc_mem_register and of the reg_cache option.
 * With the argument "threads": two threads share the connectors, each
 * unmapping and mapping its own buffer again between transfers, so UCX's
 * unmap events reach the cache while the other thread looks it up (run
 * under TSan: see the Makefile's TSAN_TESTS). */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "transport/registration.h"
#include "e2e_common.h"

#define SIZE (64u << 10)

/* Whether malloc is a sanitizer's, not glibc's. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZER_MALLOC 1
#endif
#endif
#ifndef SANITIZER_MALLOC
#define SANITIZER_MALLOC 0
#endif

static nxc_connector_t *connector(unsigned reg_cache)
{
    nxc_connector_config_t cfg = { .field_mask = NXC_CONFIG_REG_CACHE, .reg_cache = reg_cache };
    nxc_connector_t *c = NULL;
    CHECK_RC(nxc_connector_create(&cfg, &c), NXC_OK);
    return c;
}

static nxc_regcache_stats_t stats(nxc_connector_t *c)
{
    nxc_regcache_stats_t s;
    nxc_regcache_stats(c, &s);
    return s;
}

/* A write from A into `buf` (exposed by P), then a read back; both checked. */
static void round_trip(nxc_connector_t *P, nxc_connector_t *A, uint8_t *buf, size_t size,
                       uint32_t seed)
{
    uint8_t *src = malloc(size), *back = malloc(size);
    CHECK(src != NULL && back != NULL, "malloc");
    nxc_descriptor_t pd = { buf, size, { NXC_DEVICE_HOST, 0 } };
    nxc_descriptor_t ad = { src, size, { NXC_DEVICE_HOST, 0 } };
    e2e_fill(src, size, seed, 0, 0);
    memset(buf, 0, size);
    e2e_local_transfer(P, A, NXC_OP_WRITE, &pd, &ad, 1);
    CHECK(e2e_verify(buf, size, seed, 0, 0) == (size_t)-1, "seed %u: write did not land", seed);
    ad.ptr = back;
    e2e_local_transfer(P, A, NXC_OP_READ, &pd, &ad, 1);
    CHECK(e2e_verify(back, size, seed, 0, 0) == (size_t)-1, "seed %u: read back wrong", seed);
    free(src);
    free(back);
}

static uint8_t *map_at(void *hint, size_t size)
{
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | (hint ? MAP_FIXED_NOREPLACE : 0);
    void *p = mmap(hint, size, PROT_READ | PROT_WRITE, flags, -1, 0);
    CHECK(p != MAP_FAILED, "mmap of %zu bytes at %p failed", size, hint);
    return p;
}

static void cache_reuses_and_invalidates(nxc_connector_t *P, nxc_connector_t *A)
{
    e2e_step("same memory twice: one registration");
    uint8_t *m = map_at(NULL, SIZE);
    nxc_regcache_stats_t s0 = stats(P);
    round_trip(P, A, m, SIZE, 1);
    nxc_regcache_stats_t s1 = stats(P);
    CHECK(s1.misses == s0.misses + 1 && s1.hits == s0.hits + 1,
          "first write + read: %lu misses, %lu hits; want 1 and 1",
          s1.misses - s0.misses, s1.hits - s0.hits);

    e2e_step("munmap + mmap at the same address: registered afresh");
    CHECK(munmap(m, SIZE) == 0, "munmap");
    uint8_t *again = map_at(m, SIZE);
    CHECK(again == m, "the new mapping is at %p, not %p", (void *)again, (void *)m);
    round_trip(P, A, again, SIZE, 2);
    nxc_regcache_stats_t s2 = stats(P);
    CHECK(s2.invalidations > s1.invalidations, "the unmapped registration was not dropped");
    CHECK(s2.misses == s1.misses + 1, "the new mapping reused a registration (%lu misses)",
          s2.misses - s1.misses);
    CHECK(munmap(again, SIZE) == 0, "munmap");

    e2e_step("free + malloc of a mapped block at the same address: registered afresh");
    /* glibc's own malloc (not ASan's, TSan's or valgrind's, which keep
     * freed blocks mapped or hold them back) maps a block this size, unmaps
     * it on free and puts the next one at the same address. */
    const char *preload = getenv("LD_PRELOAD");
    int glibc = mallopt(M_MMAP_THRESHOLD, 128 << 10) == 1 && /* fixed: no dynamic raise */
                !SANITIZER_MALLOC && !(preload && strstr(preload, "vgpreload"));
    size_t big = 1u << 20;
    uint8_t *b = malloc(big);
    CHECK(b != NULL, "malloc");
    round_trip(P, A, b, big, 3);
    nxc_regcache_stats_t s3 = stats(P);
    volatile uintptr_t old = (uintptr_t)b; /* volatile: gcc flags comparing a freed address */
    free(b);
    uint8_t *b2 = malloc(big);
    CHECK(b2 != NULL, "malloc");
    int same = (uintptr_t)b2 == old;
    round_trip(P, A, b2, big, 4);
    nxc_regcache_stats_t s4 = stats(P);
    if (glibc) {
        CHECK(same, "glibc put the new block elsewhere");
        CHECK(s4.invalidations > s3.invalidations && s4.misses == s3.misses + 1,
              "free + malloc: %lu invalidations, %lu misses; want >0 and 1",
              s4.invalidations - s3.invalidations, s4.misses - s3.misses);
    } else {
        /* Pages kept (a hit is right) or dropped (a miss): never a hit on
         * memory that was unmapped. */
        CHECK(s4.invalidations == s3.invalidations || s4.misses == s3.misses + 1,
              "the registration was dropped but reused");
        e2e_step("(not glibc's allocator: the same-address case is glibc's)");
    }
    free(b2);

    e2e_step("free + malloc of a small heap block: pages kept, data right");
    uint8_t *h = malloc(4096);
    round_trip(P, A, h, 4096, 5);
    free(h);
    h = malloc(4096);
    round_trip(P, A, h, 4096, 6);
    free(h);
}

static void cache_is_bounded(void)
{
    e2e_step("capacity 4, 10 buffers: at most 4 kept");
    nxc_connector_t *P = connector(4), *A = e2e_connector(NULL);
    uint8_t *bufs[10];
    for (int i = 0; i < 10; i++) {
        bufs[i] = map_at(NULL, SIZE);
        round_trip(P, A, bufs[i], SIZE, 10 + (uint32_t)i);
        nxc_regcache_stats_t s = stats(P);
        CHECK(s.entries <= 4, "%u entries in a cache of 4", s.entries);
    }
    CHECK(stats(P).evictions >= 6, "%lu evictions; want at least 6", stats(P).evictions);
    for (int i = 0; i < 10; i++)
        munmap(bufs[i], SIZE);
    nxc_connector_destroy(A);
    nxc_connector_destroy(P);
}

/* Exposes bufs[order[0..n)] as one readable op, then releases it. */
static void expose(nxc_connector_t *P, uint8_t **bufs, const int *order, int n)
{
    nxc_descriptor_t d[160];
    for (int i = 0; i < n; i++)
        d[i] = (nxc_descriptor_t){ bufs[order[i]], 4096, { NXC_DEVICE_HOST, 0 } };
    nxc_op_t *op = NULL;
    const char *json;
    CHECK_RC(nxc_create_readable(P, d, (size_t)n, &op), NXC_OK);
    CHECK_RC(nxc_op_metadata(op, &json, NULL), NXC_OK);
    nxc_op_release(op);
}

static uint8_t **sort_base;
static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)sort_base[*(const int *)a], y = (uintptr_t)sort_base[*(const int *)b];
    return (x > y) - (x < y);
}

static void many_buffers(void)
{
    e2e_step("a cache of 256, 160 separate buffers (80 layers' K and V): registered once");
    enum { N = 160 };
    nxc_connector_t *P = connector(256);
    uint8_t *bufs[N];
    int all[N];
    for (int i = 0; i < N; i++) { /* a page apart: adjacent buffers would be one span */
        bufs[i] = map_at(NULL, 8192);
        all[i] = i;
    }
    expose(P, bufs, all, N);
    nxc_regcache_stats_t first = stats(P);
    CHECK(first.misses == N && first.entries == N, "first op: %lu misses, %u entries; want %d",
          first.misses, first.entries, N);
    /* An op's spans are looked up by address, and the cache scans on from
     * the last hit: after an op over the lower half, one over all of them
     * must find the lower half behind where the scan starts. */
    sort_base = bufs;
    qsort(all, N, sizeof all[0], by_address);
    expose(P, bufs, all, N / 2);
    expose(P, bufs, all, N);
    expose(P, bufs, all, N);
    nxc_regcache_stats_t again = stats(P);
    CHECK(again.misses == first.misses && again.hits == first.hits + N / 2 + 2 * N,
          "ops 2-4: %lu misses (want %lu), %lu hits (want %lu)", again.misses, first.misses,
          again.hits, first.hits + N / 2 + 2 * N);
    munmap(bufs[0], 8192);
    int one[1] = { 0 };
    bufs[0] = map_at(NULL, 8192);
    expose(P, bufs, one, 1);
    CHECK(stats(P).misses == first.misses + 1, "a buffer mapped afresh was not registered afresh");
    for (int i = 0; i < N; i++)
        munmap(bufs[i], 8192);
    nxc_connector_destroy(P);
}

static void explicit_registration(nxc_connector_t *P, nxc_connector_t *A)
{
    e2e_step("nxc_mem_register: ops inside the range reuse it");
    size_t pool_size = 8 * SIZE;
    uint8_t *pool = map_at(NULL, pool_size);
    nxc_registration_t *reg = NULL;
    nxc_descriptor_t all = { pool, pool_size, { NXC_DEVICE_HOST, 0 } };
    CHECK_RC(nxc_mem_register(P, &all, &reg), NXC_OK);
    nxc_regcache_stats_t s0 = stats(P);
    for (uint32_t i = 0; i < 8; i++)
        round_trip(P, A, pool + i * SIZE, SIZE, 20 + i);
    nxc_regcache_stats_t s1 = stats(P);
    CHECK(s1.misses == s0.misses && s1.hits == s0.hits,
          "ops over registered memory went to the cache (%lu misses, %lu hits)",
          s1.misses - s0.misses, s1.hits - s0.hits);

    e2e_step("deregistered while an op is open: the op still completes");
    uint8_t src[4096];
    e2e_fill(src, sizeof src, 30, 0, 0);
    nxc_descriptor_t pd = { pool, sizeof src, { NXC_DEVICE_HOST, 0 } };
    nxc_descriptor_t ad = { src, sizeof src, { NXC_DEVICE_HOST, 0 } };
    nxc_op_t *writable = NULL, *write = NULL;
    CHECK_RC(nxc_create_writable(P, &pd, 1, &writable), NXC_OK);
    nxc_mem_deregister(reg);
    nxc_metadata_t *md = e2e_parse(e2e_op_metadata(writable));
    CHECK_RC(nxc_begin_write(A, &ad, 1, md, &write), NXC_OK);
    nxc_op_t *ops[2] = { writable, write };
    CHECK(e2e_drive_until_final(ops, 2, P, A, 10000) == 0, "ops did not finish");
    CHECK_RC(nxc_op_wait(writable, 0), NXC_OK);
    CHECK(e2e_verify(pool, sizeof src, 30, 0, 0) == (size_t)-1, "write after deregister lost");
    nxc_op_release(write);
    nxc_op_release(writable);
    nxc_metadata_free(md);
    munmap(pool, pool_size);
}

static void argument_errors(nxc_connector_t *P)
{
    e2e_step("argument errors");
    char b[16];
    nxc_registration_t *reg = NULL;
    nxc_descriptor_t ok = { b, sizeof b, { NXC_DEVICE_HOST, 0 } };
    nxc_descriptor_t null_ptr = { NULL, 16, { NXC_DEVICE_HOST, 0 } };
    nxc_descriptor_t empty = { b, 0, { NXC_DEVICE_HOST, 0 } };
    nxc_descriptor_t cuda = { b, sizeof b, { NXC_DEVICE_CUDA, 0 } };
    nxc_descriptor_t none = { b, sizeof b, { NXC_DEVICE_UNSPECIFIED, 0 } };
    CHECK_RC(nxc_mem_register(NULL, &ok, &reg), NXC_ERR_INVALID_ARG);
    CHECK_RC(nxc_mem_register(P, NULL, &reg), NXC_ERR_INVALID_ARG);
    CHECK_RC(nxc_mem_register(P, &ok, NULL), NXC_ERR_INVALID_ARG);
    CHECK_RC(nxc_mem_register(P, &null_ptr, &reg), NXC_ERR_INVALID_ARG);
    CHECK_RC(nxc_mem_register(P, &empty, &reg), NXC_ERR_INVALID_ARG);
    CHECK_RC(nxc_mem_register(P, &cuda, &reg), NXC_ERR_UNSUPPORTED);
    CHECK_RC(nxc_mem_register(P, &none, &reg), NXC_ERR_DEVICE);
    CHECK(reg == NULL, "out written on failure");
    nxc_mem_deregister(NULL);
    CHECK_RC(nxc_mem_register(P, &ok, &reg), NXC_OK); /* left to destroy (ASan: no leak) */

    nxc_connector_config_t cfg = { .field_mask = NXC_CONFIG_REG_CACHE,
                                   .reg_cache = NXC_REG_CACHE_MAX + 1 };
    nxc_connector_t *c = NULL;
    CHECK_RC(nxc_connector_create(&cfg, &c), NXC_ERR_INVALID_ARG);
    CHECK(strstr(nxc_last_error(), "reg_cache") != NULL, "detail: %s", nxc_last_error());
    c = connector(0);
    CHECK(stats(c).capacity == 0 && !stats(c).enabled, "reg_cache 0 left a cache");
    nxc_connector_destroy(c);
}

#define THREAD_ROUNDS 200

typedef struct {
    nxc_connector_t *P, *A;
    uint32_t         seed;
} worker_t;

static void *remap_and_transfer(void *arg)
{
    worker_t *w = arg;
    uint8_t *m = map_at(NULL, SIZE);
    for (uint32_t i = 0; i < THREAD_ROUNDS; i++) {
        round_trip(w->P, w->A, m, SIZE, w->seed + i);
        CHECK(munmap(m, SIZE) == 0, "munmap");
        m = map_at(NULL, SIZE); /* often the same address again */
    }
    munmap(m, SIZE);
    return NULL;
}

static int threads(void)
{
    nxc_connector_t *P = connector(NXC_REG_CACHE_DEFAULT), *A = e2e_connector(NULL);
    worker_t w[2] = { { P, A, 1000 }, { P, A, 5000 } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, remap_and_transfer, &w[i]) == 0, "pthread_create");
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    nxc_regcache_stats_t s = stats(P);
    nxc_connector_destroy(A);
    nxc_connector_destroy(P);
    return e2e_pass("2 threads x %d remaps and transfers; %lu invalidations, %lu misses",
                    THREAD_ROUNDS, s.invalidations, s.misses);
}

int main(int argc, char **argv)
{
    e2e_init("e2e_registration", 120);
    if (argc > 1 && strcmp(argv[1], "threads") == 0)
        return threads();
    nxc_connector_t *P = connector(NXC_REG_CACHE_DEFAULT), *A = e2e_connector(NULL);
    CHECK(stats(P).enabled, "the registration cache is off: UCX's memory hooks did not "
          "report a probe munmap (UCX_MEM_EVENTS=n?)");
    cache_reuses_and_invalidates(P, A);
    cache_is_bounded();
    many_buffers();
    explicit_registration(P, A);
    argument_errors(P);
    nxc_connector_destroy(A);
    nxc_connector_destroy(P);
    return e2e_pass("cache reuse, invalidation by munmap and free, bound, nxc_mem_register");
}
