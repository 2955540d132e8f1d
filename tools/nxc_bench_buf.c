/* nxc bench: buffers, the data pattern, latency samples, the connector. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nxc_bench.h"

#define HUGE_PAGE (2ull << 20)

/* Anonymous memory on a 2 MiB boundary, advised to be backed by
 * transparent huge pages (honoured when THP is "madvise" or "always"). */
static void *thp_alloc(uint64_t size, uint64_t *mapped)
{
    uint64_t len = (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    uint8_t *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    if (start > (uintptr_t)raw)
        munmap(raw, start - (uintptr_t)raw);
    uintptr_t end = start + len, raw_end = (uintptr_t)raw + len + HUGE_PAGE;
    if (raw_end > end)
        munmap((void *)end, raw_end - end);
    (void)madvise((void *)start, len, MADV_HUGEPAGE);
    *mapped = len;
    return (void *)start;
}

int bench_buf_alloc(bench_buf_t *b, uint64_t size, size_t ndescs, const char *mem,
                    nxc_connector_t *c)
{
    void *p = NULL;
    uint64_t bytes = size ? size : 1;
    memset(b, 0, sizeof *b);
    if (strcmp(mem, "ucx") == 0) {
        int rc = nxc_mem_alloc(c, bytes, &p);
        if (rc != NXC_OK)
            return runtime_error("bench: nxc_mem_alloc(%llu): %s (%s)",
                                 (unsigned long long)size, nxc_strerror(rc), nxc_last_error());
        b->owner = c;
    } else if (strcmp(mem, "thp") == 0) {
        p = thp_alloc(bytes, &b->mapped);
        if (p == NULL)
            return runtime_error("bench: cannot map %llu bytes", (unsigned long long)size);
    } else if (posix_memalign(&p, 4096, bytes) != 0) {
        return runtime_error("bench: cannot allocate %llu bytes",
                             (unsigned long long)size);
    }
    memset(p, 0, bytes); /* fault the pages in before timing */
    b->base = p;
    b->descs = calloc(ndescs, sizeof *b->descs);
    if (!b->descs) {
        bench_buf_free(b);
        return runtime_error("bench: cannot allocate %zu descriptors", ndescs);
    }
    b->size = size;
    b->n = ndescs;
    split_descs(p, size, ndescs, b->descs);
    return 0;
}

void bench_buf_free(bench_buf_t *b)
{
    if (b->owner != NULL)
        nxc_mem_free(b->owner, b->base);
    else if (b->mapped != 0)
        munmap(b->base, b->mapped);
    else
        free(b->base);
    free(b->descs);
    memset(b, 0, sizeof *b);
}

static uint64_t pattern_word(uint64_t index, uint64_t seed)
{
    uint64_t x = (index + seed) * 0x9E3779B97F4A7C15ull;
    return x ^ (x >> 29) ^ seed;
}

uint8_t pattern_byte(uint64_t offset, uint64_t seed)
{
    uint64_t w = pattern_word(offset / 8, seed);
    return (uint8_t)(w >> (8 * (offset % 8)));
}

void pattern_fill(uint8_t *p, uint64_t n, uint64_t seed)
{
    uint64_t words = n / 8;
    for (uint64_t i = 0; i < words; i++) {
        uint64_t w = pattern_word(i, seed);
        memcpy(p + 8 * i, &w, 8); /* little-endian: byte k = bits 8k.. */
    }
    for (uint64_t off = words * 8; off < n; off++)
        p[off] = pattern_byte(off, seed);
}

int64_t pattern_check(const uint8_t *p, uint64_t n, uint64_t seed)
{
    uint64_t words = n / 8;
    for (uint64_t i = 0; i < words; i++) {
        uint64_t w = pattern_word(i, seed);
        if (memcmp(p + 8 * i, &w, 8) != 0)
            for (uint64_t off = 8 * i;; off++)
                if (p[off] != pattern_byte(off, seed))
                    return (int64_t)off;
    }
    for (uint64_t off = words * 8; off < n; off++)
        if (p[off] != pattern_byte(off, seed))
            return (int64_t)off;
    return -1;
}

int samples_push(samples_t *s, uint64_t x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        uint64_t *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return runtime_error("bench: out of memory for samples");
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return 0;
}

void samples_free(samples_t *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

double samples_percentile_us(samples_t *s, double p)
{
    if (s->n == 0)
        return 0;
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    size_t rank = (size_t)((p / 100.0) * (double)s->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > s->n)
        rank = s->n;
    return (double)s->v[rank - 1] / 1000.0;
}

int bench_connector(const bench_cfg_t *bc, const char *role, nxc_connector_t **out)
{
    char name[64];
    snprintf(name, sizeof name, "nxc-bench-%s-%ld", role, (long)getpid());
    nxc_connector_config_t cfg = { .field_mask = NXC_CONFIG_NAME, .name = name };
    if (strcmp(role, "passive") == 0 && bc->passive_spin_us >= 0) {
        cfg.field_mask |= NXC_CONFIG_SPIN_US;
        cfg.spin_us = (unsigned)bc->passive_spin_us;
    }
    if (strcmp(role, "passive") == 0 && bc->direct_local) {
        cfg.field_mask |= NXC_CONFIG_DIRECT_LOCAL;
        cfg.direct_local = 1;
    }
    if (strcmp(role, "passive") == 0 && bc->passive_thread) {
        cfg.field_mask |= NXC_CONFIG_PROGRESS_THREAD;
        cfg.progress_thread = 1;
    }
    int rc = nxc_connector_create(&cfg, out);
    if (rc != NXC_OK)
        return lib_error(rc, "bench: %s worker: cannot create a connector", role);
    return 0;
}
