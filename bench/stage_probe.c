/*
 * nxc_stage_probe - how fast two processes on one host could move a large
 * buffer of 4 KiB pages if both CPUs copied, by each way that keeps the
 * data in the processes' own hands. An upper bound for a protocol, not a
 * protocol: no op, no gate, no validation, no failure handling.
 *
 * The "reader" (this process) copies a SIZE-byte buffer of the "owner" (a
 * forked child, pinned to the other CPU, spinning as a busy passive worker
 * does) into its own buffer; both are posix_memalign'ed and touched, so
 * they sit on 4 KiB pages like the `malloc` rows of bench/compare.sh.
 *
 *   cma     the reader copies everything with process_vm_readv (one CPU:
 *           what the direct path and UCX's rendezvous do today)
 *   cma2    the reader reads the front half, the owner writes the back half
 *           into the reader with process_vm_writev (two CPUs; NOT a safe
 *           design: a stopped owner would write after the reader is done)
 *   ring    the owner copies CHUNK-byte pieces into a shared ring of RING
 *           slots it owns, the reader copies them out (two CPUs, memcpy on
 *           both: UCX's emulated get moves data this way, through its FIFO)
 *   hybrid  the reader takes chunks from the front with process_vm_readv
 *           while the owner stages chunks from the back through the ring;
 *           the reader drains the ring between its own chunks
 *
 * Each mode's result is checked against the owner's pattern once.
 *
 * usage: nxc_stage_probe [--sizes 16M,64M] [--chunk 256K] [--ring 8]
 *                        [--iters N] [--modes cma,cma2,ring,hybrid]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RING 64

enum mode { M_CMA, M_CMA2, M_RING, M_HYBRID, M_QUIT };
static const char *const mode_names[] = { "cma", "cma2", "ring", "hybrid" };

typedef struct shared {
    _Alignas(64) atomic_uint_fast64_t go;     /* iteration number, set by the reader */
    _Alignas(64) atomic_uint_fast64_t done;   /* iteration the owner finished */
    _Alignas(64) atomic_uint_fast64_t cursor; /* front << 32 | back: chunks not yet taken */
    _Alignas(64) int mode;
    size_t           size, chunk;
    unsigned         ring;
    pid_t            reader_pid;
    atomic_int       owner_ready;
    char            *reader_buf;
    char            *owner_buf;
    /* Slot s holds the owner's n-th staged chunk where n % ring == s:
     * full[s] = n + 1 once written, chunk_of[s] = its chunk index;
     * freed[s] = n + 1 once the reader copied it out. */
    _Alignas(64) atomic_uint_fast64_t full[MAX_RING];
    _Alignas(64) atomic_uint_fast64_t freed[MAX_RING];
    uint32_t         chunk_of[MAX_RING];
} shared_t;

static shared_t *sh;
static char     *ring_mem;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static cpu_set_t allowed; /* at start, before this process pins itself */

static void pin(int nth)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &allowed) && seen++ == nth) {
            CPU_SET(cpu, &one);
            sched_setaffinity(0, sizeof one, &one);
            return;
        }
}

static char *pages(size_t size, int fill)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, size) != 0) {
        perror("posix_memalign");
        exit(1);
    }
    for (size_t i = 0; i < size; i += 8)
        *(uint64_t *)((char *)p + i) = fill ? i * 0x9e3779b97f4a7c15ull : 0;
    return p;
}

/* Takes one chunk from the front (reader) or the back (owner); -1 when none is left. */
static long take_chunk(int from_back)
{
    uint64_t c = atomic_load(&sh->cursor);
    for (;;) {
        uint32_t front = (uint32_t)(c >> 32), back = (uint32_t)c;
        if (front >= back)
            return -1;
        uint64_t next = from_back ? (uint64_t)front << 32 | (back - 1)
                                  : (uint64_t)(front + 1) << 32 | back;
        if (atomic_compare_exchange_weak(&sh->cursor, &c, next))
            return from_back ? (long)back - 1 : (long)front;
    }
}

/* ---- the owner ---- */

static void owner_stage(int hybrid)
{
    size_t n_chunks = sh->size / sh->chunk;
    for (uint64_t n = 0;; n++) {
        long k = hybrid ? take_chunk(1) : (n < n_chunks ? (long)n : -1);
        if (k < 0)
            return;
        unsigned s = (unsigned)(n % sh->ring);
        while (atomic_load_explicit(&sh->freed[s], memory_order_acquire) + sh->ring < n + 1)
            ; /* the slot's previous chunk is still being read */
        memcpy(ring_mem + (size_t)s * sh->chunk, sh->owner_buf + (size_t)k * sh->chunk, sh->chunk);
        sh->chunk_of[s] = (uint32_t)k;
        atomic_store_explicit(&sh->full[s], n + 1, memory_order_release);
    }
}

static void owner_loop(void)
{
    pin(1);
    sh->owner_buf = pages(sh->size, 1);
    atomic_store(&sh->owner_ready, 1);
    uint64_t seen = 0;
    for (;;) {
        uint64_t it;
        while ((it = atomic_load_explicit(&sh->go, memory_order_acquire)) == seen)
            ; /* a busy passive worker spins */
        seen = it;
        if (sh->mode == M_QUIT)
            _exit(0);
        if (sh->mode == M_CMA2) {
            size_t half = sh->size / 2;
            struct iovec l = { sh->owner_buf + half, sh->size - half };
            struct iovec r = { sh->reader_buf + half, sh->size - half };
            if (process_vm_writev(sh->reader_pid, &l, 1, &r, 1, 0) != (ssize_t)(sh->size - half)) {
                perror("process_vm_writev");
                _exit(1);
            }
        } else if (sh->mode == M_RING || sh->mode == M_HYBRID) {
            owner_stage(sh->mode == M_HYBRID);
        }
        atomic_store_explicit(&sh->done, it, memory_order_release);
    }
}

/* ---- the reader ---- */

static pid_t owner;

static void read_range(size_t off, size_t len)
{
    struct iovec l = { sh->reader_buf + off, len }, r = { sh->owner_buf + off, len };
    if (process_vm_readv(owner, &l, 1, &r, 1, 0) != (ssize_t)len) {
        perror("process_vm_readv");
        exit(1);
    }
}

/* Copies out what the owner staged; returns how many slots it drained. */
static unsigned drain(uint64_t *next)
{
    unsigned got = 0;
    for (;;) {
        unsigned s = (unsigned)(*next % sh->ring);
        if (atomic_load_explicit(&sh->full[s], memory_order_acquire) != *next + 1)
            return got;
        memcpy(sh->reader_buf + (size_t)sh->chunk_of[s] * sh->chunk,
               ring_mem + (size_t)s * sh->chunk, sh->chunk);
        atomic_store_explicit(&sh->freed[s], *next + 1, memory_order_release);
        ++*next;
        got++;
    }
}

static void reset_ring(void)
{
    for (unsigned s = 0; s < MAX_RING; s++) {
        atomic_store(&sh->full[s], 0);
        atomic_store(&sh->freed[s], 0);
    }
}

static double one_iteration(enum mode m, uint64_t it)
{
    size_t n_chunks = sh->size / sh->chunk;
    reset_ring();
    atomic_store(&sh->cursor, (uint64_t)0 << 32 | n_chunks);
    sh->mode = (int)m;
    uint64_t t0 = now_ns();
    atomic_store_explicit(&sh->go, it, memory_order_release);
    uint64_t next = 0;
    size_t copied = 0;
    switch (m) {
    case M_CMA:
        read_range(0, sh->size);
        break;
    case M_CMA2:
        read_range(0, sh->size / 2);
        break;
    case M_RING:
        while (copied < n_chunks)
            copied += drain(&next);
        break;
    case M_HYBRID:
        for (;;) {
            copied += drain(&next);
            long k = take_chunk(0);
            if (k < 0)
                break;
            read_range((size_t)k * sh->chunk, sh->chunk);
            copied++;
        }
        while (copied < n_chunks)
            copied += drain(&next);
        break;
    default:
        break;
    }
    while (atomic_load_explicit(&sh->done, memory_order_acquire) != it)
        ;
    return (double)(now_ns() - t0);
}

static int check(void)
{
    for (size_t i = 0; i < sh->size; i += 8)
        if (*(uint64_t *)(sh->reader_buf + i) != i * 0x9e3779b97f4a7c15ull) {
            fprintf(stderr, "wrong byte at offset %zu\n", i);
            return 0;
        }
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Whether the comma-separated list names the mode. */
static int listed(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len)
        if ((p == list || p[-1] == ',') && (p[len] == ',' || p[len] == '\0'))
            return 1;
    return 0;
}

static size_t parse_size(const char *s)
{
    char *end;
    size_t v = strtoull(s, &end, 10);
    if (*end == 'K')
        v <<= 10;
    else if (*end == 'M')
        v <<= 20;
    else if (*end == 'G')
        v <<= 30;
    return v;
}

int main(int argc, char **argv)
{
    const char *sizes = "16M,64M", *modes = "cma,cma2,ring,hybrid";
    size_t chunk = 256 << 10;
    unsigned ring = 8, iters = 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--sizes") == 0)
            sizes = argv[i + 1];
        else if (strcmp(argv[i], "--chunk") == 0)
            chunk = parse_size(argv[i + 1]);
        else if (strcmp(argv[i], "--ring") == 0)
            ring = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--iters") == 0)
            iters = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--modes") == 0)
            modes = argv[i + 1];
        else {
            fprintf(stderr, "usage: %s [--sizes L] [--chunk S] [--ring N] [--iters N] "
                            "[--modes cma,cma2,ring,hybrid]\n", argv[0]);
            return 2;
        }
    }
    if (ring == 0 || ring > MAX_RING || chunk == 0 || chunk % 4096 != 0) {
        fprintf(stderr, "--ring 1..%d, --chunk a multiple of 4K\n", MAX_RING);
        return 2;
    }
    sched_getaffinity(0, sizeof allowed, &allowed);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ring_mem = mmap(NULL, (size_t)ring * chunk, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED || ring_mem == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(ring_mem, 0, (size_t)ring * chunk);
    printf("mode      size    chunk ring iters   GB/s_p50  GB/s_best   us_p50\n");
    char list[256];
    snprintf(list, sizeof list, "%s", sizes);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t size = parse_size(tok);
        if (size % chunk != 0 || size / chunk > UINT32_MAX) {
            fprintf(stderr, "size %zu is not a multiple of the chunk\n", size);
            return 2;
        }
        memset(sh, 0, sizeof *sh);
        sh->size = size;
        sh->chunk = chunk;
        sh->ring = ring;
        sh->reader_pid = getpid();
        sh->reader_buf = pages(size, 0);
        owner = fork();
        if (owner == 0)
            owner_loop();
        pin(0);
        while (!atomic_load(&sh->owner_ready))
            ;
        uint64_t it = 0;
        for (int m = 0; m < 4; m++) {
            if (!listed(modes, mode_names[m]))
                continue;
            memset(sh->reader_buf, 0, size);
            one_iteration((enum mode)m, ++it);
            if (!check()) {
                fprintf(stderr, "%s copied wrong bytes\n", mode_names[m]);
                return 1;
            }
            double ns[1000];
            unsigned n = iters > 1000 ? 1000 : iters;
            for (unsigned i = 0; i < n; i++)
                ns[i] = one_iteration((enum mode)m, ++it);
            qsort(ns, n, sizeof *ns, cmp_double);
            printf("%-6s %7zuK %7zuK %4u %5u %10.2f %10.2f %8.0f\n", mode_names[m], size >> 10,
                   chunk >> 10, ring, n, size / ns[n / 2], size / ns[0], ns[n / 2] / 1e3);
            fflush(stdout);
        }
        sh->mode = M_QUIT;
        atomic_store(&sh->go, ++it);
        waitpid(owner, NULL, 0);
        free(sh->reader_buf);
    }
    return 0;
}
