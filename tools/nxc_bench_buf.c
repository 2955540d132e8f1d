/* nxc bench: buffers, the data pattern, latency samples, the connector. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nxc_bench.h"

int bench_buf_alloc(bench_buf_t *b, uint64_t size, size_t ndescs, const char *mem,
                    nxc_connector_t *c)
{
    void *p = NULL;
    memset(b, 0, sizeof *b);
    if (strcmp(mem, "ucx") == 0) {
        int rc = nxc_mem_alloc(c, size ? size : 1, &p);
        if (rc != NXC_OK)
            return runtime_error("bench: nxc_mem_alloc(%llu): %s (%s)",
                                 (unsigned long long)size, nxc_strerror(rc), nxc_last_error());
        b->owner = c;
    } else if (posix_memalign(&p, 4096, size ? size : 1) != 0) {
        return runtime_error("bench: cannot allocate %llu bytes",
                             (unsigned long long)size);
    }
    memset(p, 0, size ? size : 1); /* fault the pages in before timing */
    b->descs = calloc(ndescs, sizeof *b->descs);
    b->base = p;
    if (!b->descs) {
        bench_buf_free(b);
        return runtime_error("bench: cannot allocate %zu descriptors", ndescs);
    }
    b->base = p;
    b->size = size;
    b->n = ndescs;
    split_descs(p, size, ndescs, b->descs);
    return 0;
}

void bench_buf_free(bench_buf_t *b)
{
    if (b->owner != NULL)
        nxc_mem_free(b->owner, b->base);
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

int bench_connector(const char *role, nxc_connector_t **out)
{
    char name[64];
    snprintf(name, sizeof name, "nxc-bench-%s-%ld", role, (long)getpid());
    nxc_connector_config_t cfg = { .field_mask = NXC_CONFIG_NAME, .name = name };
    int rc = nxc_connector_create(&cfg, out);
    if (rc != NXC_OK)
        return lib_error(rc, "bench: %s worker: cannot create a connector", role);
    return 0;
}
