/* The passive side's help with a same-host direct copy (direct_help.c),
 * white-box: the protocol's steps one at a time, in the orders that
 * matter (a passive side stopped between its steps, a request that does
 * not fit the op, a claimer that died), then both sides in two threads of
 * this process (run under TSan by `make test-tsan`). The copies use
 * process_vm_readv/writev on this process itself. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "transport/direct_help.c"

#define SLOT 7u
/* Not a whole number of chunks: the last one is short. */
#define SIZE ((size_t)16 * HELP_CHUNK + 4097)

static struct nxc_gate_help *area(void)
{
    void *p = mmap(NULL, nxc_help_bytes(), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

static void drop_area(struct nxc_gate_help *h)
{
    munmap(h, nxc_help_bytes());
}

static char *pattern(size_t size, unsigned seed)
{
    char *p = malloc(size);
    assert_non_null(p);
    for (size_t i = 0; i < size; i++)
        p[i] = (char)(i * 131 + seed + (i >> 12));
    return p;
}

static char *zeros(size_t size)
{
    char *p = calloc(1, size);
    assert_non_null(p);
    return p;
}

/* The passive buffer is `theirs`; `ours` is the active side's. */
static nxc_help_job_t job(struct nxc_gate_help *h, int write, char *ours, char *theirs)
{
    return (nxc_help_job_t){ .h = h, .write = write, .local = ours,
                             .remote = (uint64_t)(uintptr_t)theirs, .size = SIZE,
                             .pid = getpid() };
}

static void assert_ring_free(struct nxc_gate_help *h)
{
    for (unsigned s = 0; s < HELP_RING; s++)
        assert_int_equal(atomic_load(&h->tag[s]), 0);
}

static void assert_owner_free(struct nxc_gate_help *h)
{
    assert_int_equal(low_of(atomic_load(&h->owner)), H_FREE);
}

/* A read the passive side staged part of: the active side copies the
 * staged chunks out of the ring and the rest itself. */
static void test_read_staged_then_run(void **state)
{
    (void)state;
    struct nxc_gate_help *h = area();
    char *theirs = pattern(SIZE, 1), *ours = zeros(SIZE);
    nxc_help_job_t j = job(h, 0, ours, theirs);
    assert_true(nxc_help_ask(&j, SLOT));
    uint32_t pid = 0;
    assert_int_equal(nxc_help_asked(h, &pid), SLOT);
    assert_int_equal(pid, (uint32_t)getpid());
    /* Four chunks per call, until the ring is full. */
    assert_int_equal(nxc_help_serve(h, SLOT, 1, theirs, SIZE), 4);
    assert_int_equal(nxc_help_serve(h, SLOT, 1, theirs, SIZE), 4);
    assert_int_equal(nxc_help_serve(h, SLOT, 1, theirs, SIZE), 0);
    size_t n = chunks_of(SIZE);
    for (size_t k = n - 8; k < n; k++)
        assert_int_equal(low_of(atomic_load(&h->state[k])), C_STAGED);
    assert_int_equal(nxc_help_run(&j), 0);
    assert_memory_equal(ours, theirs, SIZE);
    assert_int_equal(j.moved, SIZE);
    assert_ring_free(h);
    assert_owner_free(h);
    assert_int_equal(nxc_help_serve(h, SLOT, 1, theirs, SIZE), 0); /* the request is over */
    free(theirs);
    free(ours);
    drop_area(h);
}

/* A passive side stopped between taking a chunk and publishing it: the
 * active side takes the chunk back and copies it itself; the late
 * publication fails and frees the ring buffer. */
static void test_read_passive_stopped_mid_chunk(void **state)
{
    (void)state;
    struct nxc_gate_help *h = area();
    char *theirs = pattern(SIZE, 2), *ours = zeros(SIZE);
    nxc_help_job_t j = job(h, 0, ours, theirs);
    assert_true(nxc_help_ask(&j, SLOT));
    /* The passive side's first steps (stage_chunks), then it stops. */
    int s = hold_ring(h, j.epoch, 0);
    assert_true(s >= 0);
    long k = take_back(h);
    assert_int_equal(k, (long)chunks_of(SIZE) - 1);
    uint64_t before = atomic_load(&h->state[k]);
    uint64_t t0 = nxc_now_ns();
    assert_int_equal(nxc_help_run(&j), 0);
    assert_true(nxc_now_ns() - t0 >= STALL_MIN_NS); /* it waited for the chunk first */
    assert_memory_equal(ours, theirs, SIZE);
    assert_int_equal(atomic_load(&h->state[k]), word(j.epoch, 0, C_TAKEN));
    /* It resumes: copies into its ring, and its publication fails. */
    memcpy(h->ring[s], theirs + (size_t)k * HELP_CHUNK, chunk_len(SIZE, (size_t)k));
    assert_false(atomic_compare_exchange_strong(&h->state[k], &before,
                                                word(j.epoch, (unsigned)s, C_STAGED)));
    free_ring(h, (unsigned)s);
    assert_ring_free(h);
    free(theirs);
    free(ours);
    drop_area(h);
}

/* A write nobody drains: the active side stages a few chunks, then takes
 * them back and writes everything itself. */
static void test_write_alone(void **state)
{
    (void)state;
    struct nxc_gate_help *h = area();
    char *ours = pattern(SIZE, 3), *theirs = zeros(SIZE);
    nxc_help_job_t j = job(h, 1, ours, theirs);
    assert_true(nxc_help_ask(&j, SLOT));
    assert_int_equal(nxc_help_run(&j), 0);
    assert_memory_equal(theirs, ours, SIZE);
    /* The first chunk from the back was staged (the ring is tried until
     * timed); whatever was staged was taken back. */
    size_t n = chunks_of(SIZE);
    assert_int_equal(low_of(atomic_load(&h->state[n - 1])), C_TAKEN);
    for (size_t k = 0; k < n; k++) {
        uint64_t st = atomic_load(&h->state[k]);
        assert_true(st == 0 || (epoch_of(st) == j.epoch && low_of(st) == C_TAKEN));
    }
    assert_ring_free(h);
    assert_owner_free(h);
    free(theirs);
    free(ours);
    drop_area(h);
}

/* The passive side drains a staged chunk; another one it starts draining
 * and is stopped: the active side writes that chunk itself, and the ring
 * buffer stays held (not reused) until the passive side's copy ends. */
static void test_write_drained_and_stopped_mid_drain(void **state)
{
    (void)state;
    struct nxc_gate_help *h = area();
    char *ours = pattern(SIZE, 4), *theirs = zeros(SIZE);
    nxc_help_job_t j = job(h, 1, ours, theirs);
    size_t n = chunks_of(SIZE), a = n - 1, b = n - 2;
    assert_true(nxc_help_ask(&j, SLOT));
    assert_int_equal(nxc_help_serve(h, SLOT, 0, theirs, SIZE), 0); /* present, nothing staged */
    int sa = hold_ring(h, j.epoch, a), sb = hold_ring(h, j.epoch, b);
    assert_true(sa >= 0 && sb >= 0);
    stage(&j, a, sa);
    assert_int_equal(nxc_help_serve(h, SLOT, 0, theirs, SIZE), 1);
    assert_memory_equal(theirs + a * HELP_CHUNK, ours + a * HELP_CHUNK, chunk_len(SIZE, a));
    assert_int_equal(atomic_load(&h->state[a]), word(j.epoch, 0, C_DRAINED));
    assert_int_equal(atomic_load(&h->tag[sa]), 0);
    stage(&j, b, sb);
    uint64_t staged = word(j.epoch, (unsigned)sb, C_STAGED);
    uint64_t draining = word(j.epoch, (unsigned)sb, C_DRAINING);
    assert_true(atomic_compare_exchange_strong(&h->state[b], &staged, draining));
    /* The claimer settles both: a is DRAINED, b DRAINING for too long. */
    assert_int_equal(settle_write(&j, b, n, 0), 0);
    assert_memory_equal(theirs + b * HELP_CHUNK, ours + b * HELP_CHUNK, chunk_len(SIZE, b));
    assert_int_equal(atomic_load(&h->tag[sb]), tag_word(j.epoch, b));
    atomic_store(&h->owner, word(j.epoch, 0, H_FREE));
    /* A later write's staging leaves buffer sb alone. */
    nxc_help_job_t j2 = job(h, 1, ours, theirs);
    assert_true(nxc_help_ask(&j2, SLOT));
    for (int k = 0; k < (int)HELP_RING - 1; k++)
        assert_true(hold_ring(h, j2.epoch, (size_t)k) != sb);
    assert_int_equal(hold_ring(h, j2.epoch, 0), -1);
    /* The stopped passive side resumes: its copy ends, its CAS finds the
     * word of the old request, the buffer is freed. */
    memcpy(theirs + b * HELP_CHUNK, h->ring[sb], chunk_len(SIZE, b));
    atomic_store(&h->state[b], word(j2.epoch, 0, C_STAGED)); /* j2 staged b meanwhile */
    assert_false(atomic_compare_exchange_strong(&h->state[b], &draining,
                                                word(j.epoch, 0, C_DRAINED)));
    assert_int_equal(atomic_load(&h->state[b]), word(j2.epoch, 0, C_STAGED));
    free_ring(h, (unsigned)sb);
    assert_memory_equal(theirs + b * HELP_CHUNK, ours + b * HELP_CHUNK, chunk_len(SIZE, b));
    free(theirs);
    free(ours);
    drop_area(h);
}

/* Requests that do not fit the passive op are ignored, and numbers a
 * claimer wrote are checked before they index anything. */
static void test_requests_that_do_not_fit(void **state)
{
    (void)state;
    struct nxc_gate_help *h = area();
    char *theirs = pattern(SIZE, 5), *ours = zeros(SIZE);
    nxc_help_job_t j = job(h, 0, ours, theirs);
    assert_true(nxc_help_ask(&j, SLOT));
    nxc_help_job_t other = job(h, 0, ours, theirs);
    assert_false(nxc_help_ask(&other, SLOT + 1)); /* one request at a time */
    assert_int_equal(nxc_help_serve(h, SLOT, 1, theirs, SIZE - 1), 0);  /* size */
    assert_int_equal(nxc_help_serve(h, SLOT, 0, theirs, SIZE), 0);      /* direction */
    assert_int_equal(nxc_help_serve(h, SLOT + 1, 1, theirs, SIZE), 0);  /* another op */
    assert_false(nxc_help_worth(HELP_MIN_READ - 1, 0));
    assert_true(nxc_help_worth(HELP_MIN_READ, 0));
    assert_false(nxc_help_worth(HELP_MIN_WRITE - 1, 1));
    atomic_store(&h->size, HELP_MIN_READ - 1); /* a request too small to help */
    assert_int_equal(nxc_help_serve(h, SLOT, 1, theirs, HELP_MIN_READ - 1), 0);
    atomic_store(&h->size, SIZE);
    /* A cursor past the op's chunks. */
    atomic_store(&h->cursor, (uint64_t)HELP_MAX_CHUNKS + 5);
    assert_int_equal(nxc_help_serve(h, SLOT, 1, theirs, SIZE), 0);
    assert_ring_free(h);
    /* A write whose tags name chunks past the op. */
    atomic_store(&h->write, 1);
    atomic_store(&h->tag[0], tag_word(j.epoch, chunks_of(SIZE)));
    atomic_store(&h->state[chunks_of(SIZE)], word(j.epoch, 0, C_STAGED));
    char *before = malloc(SIZE);
    memcpy(before, theirs, SIZE);
    assert_int_equal(nxc_help_serve(h, SLOT, 0, theirs, SIZE), 0);
    assert_memory_equal(theirs, before, SIZE);
    assert_int_equal(atomic_load(&h->state[chunks_of(SIZE)]), word(j.epoch, 0, C_STAGED));
    free(before);
    free(theirs);
    free(ours);
    drop_area(h);
}

/* A claimer that died with its request open: the passive side frees the
 * area and the ring buffers the request held, and others ask again. */
static void test_forget_dead_claimer(void **state)
{
    (void)state;
    struct nxc_gate_help *h = area();
    char *ours = pattern(SIZE, 6), *theirs = zeros(SIZE);
    nxc_help_job_t j = job(h, 1, ours, theirs);
    assert_true(nxc_help_ask(&j, SLOT));
    int s = hold_ring(h, j.epoch, 3);
    stage(&j, 3, s);
    nxc_help_forget(h, SLOT + 1); /* not its slot: nothing */
    assert_int_equal(low_of(atomic_load(&h->owner)), H_READY);
    nxc_help_forget(h, SLOT);
    assert_ring_free(h);
    assert_owner_free(h);
    nxc_help_job_t j2 = job(h, 1, ours, theirs);
    assert_true(nxc_help_ask(&j2, SLOT));
    assert_true(j2.epoch > j.epoch);
    free(theirs);
    free(ours);
    drop_area(h);
}

/* ---- a peer that breaks the protocol ------------------------------------ *
 * Either process may write any word of the area: the passive process owns
 * it, and the claimer need not be able to write the passive process's
 * memory, nor the passive process the claimer's (ptrace rights go one
 * way). So neither side may let a number it reads there index anything of
 * its own unchecked, or wait on it without bound. */

/* A buffer of SIZE at the start of a mapping with BEYOND more bytes after
 * it, filled with `fill`: a copy that strays past the buffer lands there
 * (or in its last page, and any stray read of ours past the mapping
 * faults). */
#define BEYOND ((size_t)40 * HELP_CHUNK)
static char *fenced(int fill)
{
    char *p = mmap(NULL, SIZE + BEYOND, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    memset(p, fill, SIZE + BEYOND);
    return p;
}

static void unfence(char *p)
{
    munmap(p, SIZE + BEYOND);
}

static void assert_beyond_is(const char *p, int fill)
{
    static char block[4096];
    memset(block, fill, sizeof(block));
    for (size_t off = SIZE; off < SIZE + BEYOND; off += sizeof(block)) {
        size_t len = SIZE + BEYOND - off < sizeof(block) ? SIZE + BEYOND - off : sizeof(block);
        if (memcmp(p + off, block, len) != 0)
            fail_msg("bytes %zu-%zu past the buffer changed", off - SIZE, off - SIZE + len);
    }
}

static void fill_pattern(char *p, unsigned seed)
{
    char *src = pattern(SIZE, seed);
    memcpy(p, src, SIZE);
    free(src);
}

/* A passive side that moves the cursor's front past the op: the claimer
 * is handed a chunk it did not expect, copies the rest alone, and writes
 * nothing past its buffer. */
static void test_claimer_ignores_a_forged_cursor(void **state)
{
    (void)state;
    struct nxc_gate_help *h = area();
    char *theirs = fenced(0x5a), *ours = fenced(0);
    fill_pattern(theirs, 21);
    nxc_help_job_t j = job(h, 0, ours, theirs);
    assert_true(nxc_help_ask(&j, SLOT));
    size_t n = chunks_of(SIZE);
    atomic_store(&h->cursor, (uint64_t)(n + 3) << 32 | (n + 40));
    assert_int_equal(nxc_help_run(&j), 0);
    assert_memory_equal(ours, theirs, SIZE);
    assert_beyond_is(ours, 0);
    assert_owner_free(h);
    unfence(theirs);
    unfence(ours);
    drop_area(h);
}

/* A STAGED word naming a ring buffer that does not exist: the claimer
 * takes the chunk back and copies it itself. */
static void test_claimer_ignores_a_forged_ring_index(void **state)
{
    (void)state;
    struct nxc_gate_help *h = area();
    char *theirs = pattern(SIZE, 22), *ours = zeros(SIZE);
    nxc_help_job_t j = job(h, 0, ours, theirs);
    assert_true(nxc_help_ask(&j, SLOT));
    size_t n = chunks_of(SIZE);
    for (unsigned i = 0; i < 3; i++) {
        long k = take_back(h);
        assert_int_equal(k, (long)(n - 1 - i));
        atomic_store(&h->state[k], word(j.epoch, i == 0 ? 0xffffu : HELP_RING + i, C_STAGED));
    }
    assert_int_equal(nxc_help_run(&j), 0);
    assert_memory_equal(ours, theirs, SIZE);
    assert_ring_free(h);
    free(theirs);
    free(ours);
    drop_area(h);
}

/* A write that finds every ring buffer held (a passive side stopped in
 * its copies of earlier requests) writes alone, and its short last chunk
 * no further than the buffer's end. */
static void test_write_alone_with_the_ring_held(void **state)
{
    (void)state;
    struct nxc_gate_help *h = area();
    char *ours = fenced(0), *theirs = fenced(0x5a);
    fill_pattern(ours, 23);
    memset(theirs, 0, SIZE);
    for (unsigned s = 0; s < HELP_RING; s++)
        atomic_store(&h->tag[s], tag_word(1000 + s, s));
    nxc_help_job_t j = job(h, 1, ours, theirs);
    assert_true(nxc_help_ask(&j, SLOT));
    assert_int_equal(nxc_help_run(&j), 0);
    assert_memory_equal(theirs, ours, SIZE);
    assert_beyond_is(theirs, 0x5a);
    unfence(theirs);
    unfence(ours);
    drop_area(h);
}

/* Overwrites the help area's words with values a broken peer might
 * write, most of them close to valid (this request's epoch, codes and
 * indexes a little out of range), until told to stop. */
struct scribbler {
    struct nxc_gate_help *h;
    uint64_t              epoch;
    int                   with_owner; /* the owner word and the request too */
    _Atomic int           stop;
    unsigned long         writes;
};

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static uint64_t forged_word(uint64_t *x, uint64_t epoch)
{
    uint64_t r = next_rand(x);
    uint64_t e = r % 4 == 0 ? r >> 40 : epoch + (r >> 8) % 2;
    unsigned mid = r % 3 == 0 ? (unsigned)(r >> 16) : (unsigned)(r >> 16) % (HELP_RING + 2);
    return word(e, mid, (unsigned)(r >> 32) % 7);
}

static void scribble_once(struct nxc_gate_help *h, uint64_t epoch, int with_owner,
                          uint64_t *x)
{
    size_t n = chunks_of(SIZE);
    uint64_t r = next_rand(x);
    switch (r % (with_owner ? 6 : 4)) {
    case 0:
        atomic_store(&h->state[(r >> 8) % (n + 4)], forged_word(x, epoch));
        break;
    case 1:
        atomic_store(&h->tag[(r >> 8) % HELP_RING],
                     r % 5 == 0 ? next_rand(x)
                                : tag_word(epoch, (size_t)((r >> 16) % (n + 4))));
        break;
    case 2:
        atomic_store(&h->cursor, r % 5 == 0 ? next_rand(x)
                                            : ((r >> 8) % (n + 4)) << 32 | (r >> 24) % (n + 4));
        break;
    case 3:
        atomic_store(&h->present, r % 2 ? epoch : r >> 8);
        break;
    case 4:
        atomic_store(&h->owner, r % 3 == 0 ? next_rand(x)
                                           : word(epoch + r % 2, SLOT, (unsigned)(r >> 8) % 4));
        break;
    default:
        atomic_store(&h->size, r % 2 ? SIZE : next_rand(x) % (SIZE * 4));
        atomic_store(&h->write, (uint32_t)(r >> 8) % 3);
        break;
    }
}

static void *scribble_loop(void *arg)
{
    struct scribbler *s = arg;
    uint64_t x = 0x9e3779b97f4a7c15ull ^ s->epoch;
    while (!atomic_load(&s->stop)) {
        scribble_once(s->h, s->epoch, s->with_owner, &x);
        s->writes++;
    }
    return NULL;
}

/* Reads and writes while another thread forges the area's words: every
 * copy ends, nothing is written past either buffer, and a write the
 * passive side never drains still puts every byte in place (the claimer
 * writes what it cannot see drained; a forged DRAINED is the passive
 * side's own loss, so the scribbler here forges no DRAINED of a write). */
static void test_claimer_against_a_scribbling_peer(void **state)
{
    (void)state;
    struct nxc_gate_help *h = area();
    char *ours = fenced(0), *theirs = fenced(0x5a);
    pthread_t t;
    for (unsigned i = 0; i < 40; i++) {
        int write = (int)(i & 1);
        char *src = pattern(SIZE, 30 + i);
        memcpy(write ? ours : theirs, src, SIZE);
        memset(write ? theirs : ours, 0, SIZE);
        atomic_store(&h->owner, word(epoch_of(atomic_load(&h->owner)), 0, H_FREE));
        nxc_help_job_t j = job(h, write, ours, theirs);
        assert_true(nxc_help_ask(&j, SLOT));
        struct scribbler s = { .h = h, .epoch = j.epoch, .with_owner = (i & 2) != 0 };
        assert_int_equal(pthread_create(&t, NULL, scribble_loop, &s), 0);
        assert_int_equal(nxc_help_run(&j), 0);
        atomic_store(&s.stop, 1);
        pthread_join(t, NULL);
        assert_beyond_is(ours, 0);
        assert_beyond_is(theirs, 0x5a);
        free(src);
    }
    unfence(ours);
    unfence(theirs);
    drop_area(h);
}

/* The passive side serves its op while another thread forges the area's
 * words (in half the rounds the owner word and the request too): it
 * copies nothing past its buffer and never writes into a readable one. */
static void test_passive_against_a_scribbling_peer(void **state)
{
    (void)state;
    struct nxc_gate_help *h = area();
    char *buf = fenced(0x5a), *src = pattern(SIZE, 40);
    pthread_t t;
    unsigned long served = 0;
    for (unsigned i = 0; i < 8; i++) {
        int readable = (int)(i & 1);
        memcpy(buf, src, SIZE);
        atomic_store(&h->owner, word(epoch_of(atomic_load(&h->owner)), 0, H_FREE));
        nxc_help_job_t j = job(h, !readable, NULL, NULL);
        assert_true(nxc_help_ask(&j, SLOT));
        struct scribbler s = { .h = h, .epoch = j.epoch, .with_owner = (i & 2) != 0 };
        assert_int_equal(pthread_create(&t, NULL, scribble_loop, &s), 0);
        for (unsigned k = 0; k < 20000; k++)
            served += nxc_help_serve(h, SLOT, readable, buf, SIZE);
        atomic_store(&s.stop, 1);
        pthread_join(t, NULL);
        if (readable)
            assert_memory_equal(buf, src, SIZE);
        assert_beyond_is(buf, 0x5a);
    }
    printf("the passive side served %lu forged chunks\n", served);
    free(src);
    unfence(buf);
    drop_area(h);
}

/* Both sides at once, in two threads, alternating reads and writes. */
struct passive {
    struct nxc_gate_help *h;
    char                 *buf;
    _Atomic int           readable;
    _Atomic int           stop;
    unsigned long         chunks;
};

static void *serve_loop(void *arg)
{
    struct passive *p = arg;
    while (!atomic_load(&p->stop))
        p->chunks += nxc_help_serve(p->h, SLOT, atomic_load(&p->readable), p->buf, SIZE);
    return NULL;
}

static void test_both_sides_in_threads(void **state)
{
    (void)state;
    struct nxc_gate_help *h = area();
    struct passive p = { .h = h, .buf = zeros(SIZE) };
    char *ours = zeros(SIZE);
    pthread_t t;
    for (unsigned i = 0; i < 24; i++) {
        int write = (int)(i & 1);
        char *src = pattern(SIZE, 10 + i);
        memcpy(write ? ours : p.buf, src, SIZE);
        memset(write ? p.buf : ours, 0, SIZE);
        atomic_store(&p.readable, !write);
        atomic_store(&p.stop, 0);
        assert_int_equal(pthread_create(&t, NULL, serve_loop, &p), 0);
        nxc_help_job_t j = job(h, write, ours, p.buf);
        assert_true(nxc_help_ask(&j, SLOT));
        assert_int_equal(nxc_help_run(&j), 0);
        atomic_store(&p.stop, 1);
        pthread_join(t, NULL);
        assert_memory_equal(write ? p.buf : ours, src, SIZE);
        assert_owner_free(h);
        free(src);
    }
    /* Every ring buffer came back. */
    assert_ring_free(h);
    printf("the passive thread moved %lu chunks of %u in 24 copies\n", p.chunks,
           24 * (unsigned)chunks_of(SIZE));
    free(p.buf);
    free(ours);
    drop_area(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_staged_then_run),
        cmocka_unit_test(test_read_passive_stopped_mid_chunk),
        cmocka_unit_test(test_write_alone),
        cmocka_unit_test(test_write_drained_and_stopped_mid_drain),
        cmocka_unit_test(test_requests_that_do_not_fit),
        cmocka_unit_test(test_forget_dead_claimer),
        cmocka_unit_test(test_both_sides_in_threads),
        cmocka_unit_test(test_claimer_ignores_a_forged_cursor),
        cmocka_unit_test(test_claimer_ignores_a_forged_ring_index),
        cmocka_unit_test(test_write_alone_with_the_ring_held),
        cmocka_unit_test(test_claimer_against_a_scribbling_peer),
        cmocka_unit_test(test_passive_against_a_scribbling_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
