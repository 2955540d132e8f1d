/*
 * nxc_memcpy_probe - single-thread copy ceiling for nixl_connect (issue #3).
 *
 * Copies between two distinct, page-touched, 4 KiB-aligned buffers and
 * reports bytes copied per second (1e9 B/s; a copy reads and writes each
 * byte, the figure counts it once, as a transfer would). Variants:
 *   glibc  memcpy()
 *   nt     SSE2 non-temporal stores (x86-64 only), streaming past the cache
 * Latency percentiles are per copy; small copies are timed in batches.
 * Memory kinds (--mem), as nxc bench --mem names them:
 *   malloc posix_memalign: 4 KiB pages
 *   thp    2 MiB-aligned anonymous mmap + madvise(MADV_HUGEPAGE)
 *   ucx    System V shared memory advised to huge pages, what UCX's
 *          allocator (nxc_mem_alloc) hands out on one host
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <time.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define HAVE_NT 1
#else
#define HAVE_NT 0
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define BARRIER(p) __asm__ __volatile__("" : : "r"(p) : "memory")

typedef void (*copy_fn)(void *dst, const void *src, size_t n);

static void copy_glibc(void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
}

#if HAVE_NT
static void copy_nt(void *dst, const void *src, size_t n)
{
    char *d = dst;
    const char *s = src;
    /* both buffers are 4 KiB aligned; the tail is copied normally */
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m128i a = _mm_load_si128((const __m128i *)(s + i));
        __m128i b = _mm_load_si128((const __m128i *)(s + i + 16));
        __m128i c = _mm_load_si128((const __m128i *)(s + i + 32));
        __m128i e = _mm_load_si128((const __m128i *)(s + i + 48));
        _mm_stream_si128((__m128i *)(d + i), a);
        _mm_stream_si128((__m128i *)(d + i + 16), b);
        _mm_stream_si128((__m128i *)(d + i + 32), c);
        _mm_stream_si128((__m128i *)(d + i + 48), e);
    }
    _mm_sfence();
    if (i < n)
        memcpy(d + i, s + i, n - i);
}
#endif

#define HUGE_PAGE (2ul << 20)

static void advise_huge(void *p, size_t len)
{
    uintptr_t start = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    uintptr_t end = ((uintptr_t)p + len) & ~(uintptr_t)(HUGE_PAGE - 1);
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
}

/* A buffer of the kind --mem names (freed at exit). */
static void *mem_alloc(const char *kind, size_t len)
{
    size_t rounded = (len + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    if (strcmp(kind, "thp") == 0) {
        char *raw = mmap(NULL, rounded + HUGE_PAGE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED)
            return NULL;
        void *p = (void *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
        advise_huge(p, rounded);
        return p;
    }
    if (strcmp(kind, "ucx") == 0) {
        int id = shmget(IPC_PRIVATE, rounded, IPC_CREAT | 0600);
        void *p = id < 0 ? (void *)-1 : shmat(id, NULL, 0);
        if (id >= 0)
            shmctl(id, IPC_RMID, NULL); /* gone once detached */
        if (p == (void *)-1)
            return NULL;
        advise_huge(p, rounded);
        return p;
    }
    void *p = NULL;
    return posix_memalign(&p, 4096, len) == 0 ? p : NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pctl(const double *v, long n, double q)
{
    long i = (long)(q * (double)n + 0.999999) - 1;
    if (i < 0)
        i = 0;
    if (i >= n)
        i = n - 1;
    return v[i];
}

static size_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        goto bad;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'I')
        end++;
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end != '\0' || v == 0)
        goto bad;
    return (size_t)v;
bad:
    fprintf(stderr, "nxc_memcpy_probe: bad size '%s'\n", s);
    exit(2);
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: nxc_memcpy_probe [--sizes LIST] [--time SEC] [--variant glibc,nt]\n"
"                        [--mem malloc|thp|ucx] [--json]\n"
"  --sizes LIST   K/M/G suffixes (default 8,4K,64K,1M,16M,64M)\n"
"  --time SEC     measuring time per size and variant (default 0.3)\n"
"  --variant LIST glibc (memcpy) and/or nt (SSE2 non-temporal stores)\n"
"  --mem KIND     malloc (4 KiB pages, default), thp (2 MiB-aligned +\n"
"                 MADV_HUGEPAGE) or ucx (System V shared memory + MADV_HUGEPAGE)\n"
"  --json         one JSON object per line\n");
}

int main(int argc, char **argv)
{
    size_t sizes[64] = {8, 4096, 65536, 1u << 20, 16u << 20, 64u << 20};
    int nsizes = 6;
    double budget = 0.3;
    int json = 0, want_glibc = 1, want_nt = HAVE_NT;
    const char *mem = "malloc";

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "--sizes") || !strcmp(a, "--size")) && i + 1 < argc) {
            char *dup = strdup(argv[++i]), *save = NULL;
            nsizes = 0;
            for (char *t = strtok_r(dup, ",", &save); t && nsizes < 64;
                 t = strtok_r(NULL, ",", &save))
                sizes[nsizes++] = parse_size(t);
            free(dup);
        } else if (!strcmp(a, "--time") && i + 1 < argc) {
            budget = atof(argv[++i]);
        } else if (!strcmp(a, "--variant") && i + 1 < argc) {
            const char *v = argv[++i];
            want_glibc = strstr(v, "glibc") != NULL;
            want_nt    = HAVE_NT && strstr(v, "nt") != NULL;
        } else if (!strcmp(a, "--mem") && i + 1 < argc) {
            mem = argv[++i];
            if (strcmp(mem, "malloc") && strcmp(mem, "thp") && strcmp(mem, "ucx")) {
                usage(stderr);
                return 2;
            }
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    size_t maxsz = 0;
    for (int s = 0; s < nsizes; s++)
        if (sizes[s] > maxsz)
            maxsz = sizes[s];
    void *src = mem_alloc(mem, maxsz), *dst = mem_alloc(mem, maxsz);
    if (src == NULL || dst == NULL) {
        fprintf(stderr, "nxc_memcpy_probe: out of memory\n");
        return 1;
    }
    memset(src, 0x5a, maxsz); /* touch pages */
    memset(dst, 0xa5, maxsz);

    struct { const char *name; copy_fn fn; int on; } variants[] = {
        {"glibc", copy_glibc, want_glibc},
#if HAVE_NT
        {"nt", copy_nt, want_nt},
#endif
    };
    const int nvar = (int)(sizeof(variants) / sizeof(variants[0]));

    if (!json)
        printf("# nxc_memcpy_probe: single thread, GB/s = 1e9 bytes copied/s\n"
               "%-6s %10s %10s %9s %10s %10s\n", "kind", "size", "iters", "GB/s",
               "lat_p50", "lat_p99");
    for (int s = 0; s < nsizes; s++) {
        size_t n = sizes[s];
        /* batch small copies so clock overhead stays negligible */
        long batch = (long)((size_t)(256u << 10) / n);
        if (batch < 1)
            batch = 1;
        for (int v = 0; v < nvar; v++) {
            if (!variants[v].on)
                continue;
            copy_fn fn = variants[v].fn;
            /* warm-up and calibration: ~10% of the budget */
            long calib = 0;
            double t0 = now_s(), t;
            do {
                for (long b = 0; b < batch; b++) {
                    fn(dst, src, n);
                    BARRIER(dst);
                }
                calib++;
                t = now_s() - t0;
            } while (t < budget * 0.1 && calib < 1000000);
            long rounds = (long)((double)calib * 10.0 * 0.9);
            if (rounds < 3)
                rounds = 3;
            if (rounds > 2000000)
                rounds = 2000000;
            double *lat = malloc(sizeof(double) * (size_t)rounds);
            if (!lat) {
                fprintf(stderr, "nxc_memcpy_probe: out of memory\n");
                return 1;
            }
            double start = now_s(), prev = start;
            for (long r = 0; r < rounds; r++) {
                for (long b = 0; b < batch; b++) {
                    fn(dst, src, n);
                    BARRIER(dst);
                }
                double tn = now_s();
                lat[r] = (tn - prev) / (double)batch;
                prev = tn;
            }
            double elapsed = prev - start;
            if (memcmp(dst, src, n) != 0) {
                fprintf(stderr, "nxc_memcpy_probe: copy mismatch at size %zu\n", n);
                return 1;
            }
            qsort(lat, (size_t)rounds, sizeof(double), cmp_double);
            long iters = rounds * batch;
            double gbps = (double)n * (double)iters / elapsed / 1e9;
            double p50 = pctl(lat, rounds, 0.5) * 1e6, p99 = pctl(lat, rounds, 0.99) * 1e6;
            if (json)
                printf("{\"tool\":\"memcpy\",\"variant\":\"%s\",\"pattern\":\"memcpy_%s\","
                       "\"mem\":\"%s\",\"size\":%zu,\"blocks\":1,\"iters\":%ld,"
                       "\"gbps\":%.4f,\"lat_p50_us\":%.4f,\"lat_p99_us\":%.4f}\n",
                       variants[v].name, variants[v].name, mem, n, iters, gbps, p50, p99);
            else
                printf("%-6s %10zu %10ld %9.3f %10.4f %10.4f\n", variants[v].name, n,
                       iters, gbps, p50, p99);
            fflush(stdout);
            free(lat);
        }
    }
    return 0; /* the buffers go with the process */
}
