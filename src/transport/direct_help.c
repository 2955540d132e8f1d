/* The passive side's CPU helping a large same-host direct copy (see
 * direct_help.h for why, direct.c for the gate and its slots).
 *
 * THE AREA. After its slots, a gate's memfd holds one help area: an owner
 * word naming the copy being helped, the copy's size, direction and
 * claimer, a cursor, one state word per chunk (HELP_CHUNK bytes) and a
 * ring of HELP_RING chunk-sized buffers with a tag each. One copy is
 * helped at a time per passive connector; a claimer that finds the area
 * taken copies alone.
 *
 *   owner  = epoch << 24 | slot << 8 | FREE, SETUP or READY
 *   state  = epoch << 24 | ring index << 8 | STAGED, TAKEN, DRAINING, DRAINED
 *   tag    = 0 (free) or epoch << 24 | chunk + 1 (held)
 *
 * Every request has a new epoch (the owner word keeps the last one), and
 * every state or tag word names its epoch, so no word of an earlier
 * request is ever taken for one of this request.
 *
 * A READ (the peer reads our op): the cursor hands out chunks, the active
 * side takes them from the front and copies each with process_vm_readv;
 * the passive side takes them from the back, copies each from its own
 * buffer into a free ring buffer and publishes it, STAGED, with a
 * compare-and-swap from the state it read before copying. The active side
 * copies STAGED chunks out of the ring and frees their buffers. Once the
 * cursor is empty it waits for the passive side's chunks, but only while
 * they keep coming (stall_ns): then it takes the rest back (CAS to TAKEN)
 * and copies them itself. One CAS per chunk decides between the two, and
 * a passive side whose CAS fails frees its buffer: a late passive side
 * (stopped, preempted) can only have copied into its own ring.
 *
 * A WRITE (the peer writes our op): the active side copies chunks from the
 * back of its buffer into free ring buffers (STAGED) and the front with
 * process_vm_writev; the passive side moves STAGED chunks into its buffer
 * (CAS to DRAINING, copy, CAS to DRAINED) and frees their ring buffers.
 * The active side ends only when each of its staged chunks is DRAINED or
 * taken back: STAGED -> TAKEN by CAS, or a chunk DRAINING for too long,
 * which it writes itself as well (the same bytes, from its own buffer; the
 * passive side's ring buffer stays held until its copy ends).
 *
 * WHY THE DIRECT PATH'S RULES STILL HOLD (direct.c, SAFETY):
 * - the active side's memory is written only by the active side itself
 *   (its process_vm_readv and its copies out of the ring): a passive side
 *   never writes into a peer, so a late passive side cannot touch a
 *   buffer the peer has reused;
 * - the passive side's buffer is written by the claimer's
 *   process_vm_writev, as before, and by the passive side's own copies
 *   from the ring, which it makes only while the op's slot is BUSY with
 *   that claimer and the request names the slot, inside its own progress
 *   under the connector's lock: no thread of ours sees the op end while a
 *   copy of ours into it runs. A chunk is DRAINED, or written by the
 *   claimer, before the claimer stores DONE; so DONE still means every
 *   byte is in place;
 * - the ring holds copies of a readable op's bytes after the op ends. It
 *   is in the gate, which only a process that may ptrace-read ours can
 *   map (direct.c, TRUST): no process can read the ring that could not
 *   read the buffer itself;
 * - a passive side checks every number in the area against its own op
 *   (size, direction, claimer, chunk index) before it copies a byte; a
 *   request that does not fit its op is ignored;
 * - the claimer trusts the area no more: the passive process writes it,
 *   and need not be able to write the claimer's memory (ptrace rights go
 *   one way). A ring index is checked before it indexes the ring, the
 *   cursor must hand the claimer its front chunks in order (else it
 *   copies the rest alone, reading no ring buffer), and a chunk whose word
 *   says anything unexpected once its wait is over (stall_ns for a read,
 *   STALL_NS for a write) is copied by the claimer itself. A passive side
 *   that breaks the protocol costs the claimer its help and, for a read,
 *   the truth of the bytes it staged (they are its own to give), never a
 *   byte of the claimer's outside its buffer or an unbounded wait.
 * WHEN THE RING IS USED. Every byte that goes through the ring the
 * active side copies once itself (into it or out of it), so the ring
 * saves the active side time only where that copy is cheaper than a
 * process_vm_* one: the active side times both as it goes (ring_pays) and
 * stops using the ring when it is not (huge pages, where process_vm_*
 * pins one page per 2 MiB; or phases in which this VM moves cache lines
 * between its CPUs slowly): a read then takes every chunk left in the
 * cursor, a write stages no more. A write also keeps no more chunks in
 * flight than the passive side drains while the front is written
 * (drain_keeps_up), or their drain would be a tail the write waits for.
 *
 * Nothing here waits without bound: the active side takes chunks back
 * after stall_ns (read) or STALL_NS (write) without news from the passive
 * side, and the passive side stops helping when the request ends or, with
 * nothing to do, after HELP_IDLE_NS (direct.c; it then sleeps as usual). */
#include "transport/direct_help.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/util.h"

#define HELP_CHUNK      (512u << 10)
#define HELP_RING       8u
#define HELP_MAX_CHUNKS 2048u /* 1 GiB */
/* The smallest copies helped. A read of 2 MiB takes 90-112 us instead of
 * 167-218 on 4 KiB pages, and no longer on huge pages; a write below 4 MiB
 * lost on huge pages (docs/PERFORMANCE.md, sessions 15 and 16). */
#define HELP_MIN_WRITE  (4u << 20)
#define HELP_MIN_READ   (2u << 20)
#define CMA_PIECE       (256u << 10)
/* How long the active side waits for news of a chunk the passive side
 * took before it takes the chunk back: STALL_NS, or for a read about twice
 * what copying the chunk itself costs it, within these bounds (stall_ns). */
#define STALL_NS        300000u
#define STALL_MIN_NS    30000u
/* Chunks the passive side copies per call: it holds its connector's lock
 * meanwhile (2 MiB, ~100-200 us here). */
#define SERVE_CHUNKS    4u
/* Before the passive side shows up the active side stages only this many
 * chunks of a write: a passive side that sleeps through the request costs
 * the active side that many extra copies. */
#define STAGE_UNSEEN    2u

enum { H_FREE, H_SETUP, H_READY };
enum { C_NONE, C_STAGED, C_TAKEN, C_DRAINING, C_DRAINED };

struct nxc_gate_help {
    _Alignas(64) _Atomic uint64_t owner;
    _Atomic uint64_t size;
    _Atomic uint32_t write;
    _Atomic uint32_t pid;
    _Alignas(64) _Atomic uint64_t cursor;  /* front << 32 | back, in chunks */
    _Alignas(64) _Atomic uint64_t present; /* the last epoch the passive side served */
    _Alignas(64) _Atomic uint64_t tag[HELP_RING];
    _Alignas(64) _Atomic uint64_t state[HELP_MAX_CHUNKS];
    _Alignas(4096) unsigned char ring[HELP_RING][HELP_CHUNK];
};

size_t nxc_help_bytes(void)
{
    return sizeof(struct nxc_gate_help);
}

#define EPOCH_MASK ((UINT64_C(1) << 40) - 1)

static uint64_t word(uint64_t epoch, unsigned mid, unsigned low)
{
    return epoch << 24 | (uint64_t)(mid & 0xffffu) << 8 | (low & 0xffu);
}
static uint64_t epoch_of(uint64_t w) { return w >> 24; }
static unsigned mid_of(uint64_t w) { return (unsigned)(w >> 8) & 0xffffu; }
static unsigned low_of(uint64_t w) { return (unsigned)w & 0xffu; }

static uint64_t tag_word(uint64_t epoch, size_t chunk)
{
    return epoch << 24 | (uint64_t)(chunk + 1);
}

static size_t chunks_of(size_t size)
{
    return (size + HELP_CHUNK - 1) / HELP_CHUNK;
}

static size_t chunk_len(size_t size, size_t k)
{
    size_t off = k * HELP_CHUNK;
    return size - off < HELP_CHUNK ? size - off : HELP_CHUNK;
}

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Takes the last chunk of the cursor (the passive side's end); -1 when
 * none is left. */
static long take_back(struct nxc_gate_help *h)
{
    uint64_t c = atomic_load_explicit(&h->cursor, memory_order_acquire);
    for (;;) {
        uint32_t front = (uint32_t)(c >> 32), back = (uint32_t)c;
        if (front >= back)
            return -1;
        if (atomic_compare_exchange_weak_explicit(&h->cursor, &c,
                                                  (uint64_t)front << 32 | (back - 1),
                                                  memory_order_acq_rel, memory_order_acquire))
            return (long)back - 1;
    }
}

/* Takes up to `max` chunks from the front of the cursor (the claimer's
 * end): returns the first and sets *end past the last; -1 when none is
 * left. */
static long take_front(struct nxc_gate_help *h, uint32_t max, long *end)
{
    uint64_t c = atomic_load_explicit(&h->cursor, memory_order_acquire);
    for (;;) {
        uint32_t front = (uint32_t)(c >> 32), back = (uint32_t)c;
        if (front >= back)
            return -1;
        uint32_t to = back - front > max ? front + max : back;
        if (atomic_compare_exchange_weak_explicit(&h->cursor, &c, (uint64_t)to << 32 | back,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            *end = (long)to;
            return (long)front;
        }
    }
}

/* A free ring buffer, marked held for `chunk`; -1 if none is free. */
static int hold_ring(struct nxc_gate_help *h, uint64_t epoch, size_t chunk)
{
    for (unsigned s = 0; s < HELP_RING; s++) {
        uint64_t free_tag = 0;
        if (atomic_load_explicit(&h->tag[s], memory_order_acquire) == 0 &&
            atomic_compare_exchange_strong_explicit(&h->tag[s], &free_tag,
                                                    tag_word(epoch, chunk),
                                                    memory_order_acq_rel, memory_order_acquire))
            return (int)s;
    }
    return -1;
}

static void free_ring(struct nxc_gate_help *h, unsigned s)
{
    atomic_store_explicit(&h->tag[s], 0, memory_order_release);
}

/* ---- active side ------------------------------------------------------ */

int nxc_help_worth(size_t size, int write)
{
    return size >= (write ? HELP_MIN_WRITE : HELP_MIN_READ) && chunks_of(size) <= HELP_MAX_CHUNKS;
}

int nxc_help_ask(nxc_help_job_t *j, uint32_t slot)
{
    struct nxc_gate_help *h = j->h;
    j->epoch = 0;
    uint64_t o = atomic_load_explicit(&h->owner, memory_order_acquire);
    if (low_of(o) != H_FREE)
        return 0;
    uint64_t epoch = (epoch_of(o) + 1) & EPOCH_MASK;
    if (epoch == 0)
        epoch = 1;
    if (!atomic_compare_exchange_strong_explicit(&h->owner, &o, word(epoch, slot, H_SETUP),
                                                 memory_order_acq_rel, memory_order_acquire))
        return 0;
    atomic_store_explicit(&h->size, j->size, memory_order_relaxed);
    atomic_store_explicit(&h->write, (uint32_t)j->write, memory_order_relaxed);
    atomic_store_explicit(&h->pid, (uint32_t)getpid(), memory_order_relaxed);
    atomic_store_explicit(&h->cursor, (uint64_t)chunks_of(j->size), memory_order_relaxed);
    atomic_store_explicit(&h->owner, word(epoch, slot, H_READY), memory_order_release);
    j->epoch = epoch;
    return 1;
}

/* Bytes [off, off + len) by process_vm_*, resuming after a short transfer. */
static int cma(nxc_help_job_t *j, size_t off, size_t len)
{
    uint64_t t0 = nxc_now_ns();
    j->cma_bytes += len;
    while (len > 0) {
        struct iovec l = { j->local + off, len };
        struct iovec r = { (void *)(uintptr_t)(j->remote + off), len };
        ssize_t got = j->write ? process_vm_writev(j->pid, &l, 1, &r, 1, 0)
                               : process_vm_readv(j->pid, &l, 1, &r, 1, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? errno : EFAULT;
        off += (size_t)got;
        len -= (size_t)got;
        j->moved += (uint64_t)got;
    }
    j->cma_ns += nxc_now_ns() - t0;
    return 0;
}

/* A copy between our buffer and the ring, timed. */
static void ring_copy(nxc_help_job_t *j, void *to, const void *from, size_t len)
{
    uint64_t t0 = nxc_now_ns();
    memcpy(to, from, len);
    j->ring_ns += nxc_now_ns() - t0;
    j->ring_bytes += len;
}

static double ns_per_byte(uint64_t ns, uint64_t bytes)
{
    return (double)ns / (double)bytes;
}

/* Whether a byte through the ring costs us no more than one we copy with
 * process_vm_*: every byte the passive side moves through the ring we
 * copy once more ourselves, so the ring helps only if that copy is the
 * cheaper one. It is on 4 KiB pages (process_vm_* pins each page: 2-3x
 * slower than memcpy here); on huge pages (one pin per 2 MiB) the two
 * cost about the same; and the ring costs more whenever moving cache
 * lines between the two CPUs is slow (this VM has such phases:
 * docs/PERFORMANCE.md). Until both were measured, it does. */
static int ring_pays(const nxc_help_job_t *j)
{
    if (j->ring_bytes == 0 || j->cma_bytes == 0)
        return 1;
    return ns_per_byte(j->ring_ns, j->ring_bytes) <= ns_per_byte(j->cma_ns, j->cma_bytes);
}

/* Whether the passive side can drain `in_flight` staged chunks while we
 * write `front_left` chunks from the front (its copy costs about what
 * ours into the ring did). */
static int drain_keeps_up(const nxc_help_job_t *j, size_t in_flight, size_t front_left)
{
    if (j->ring_bytes == 0 || j->cma_bytes == 0)
        return in_flight < front_left;
    return (double)in_flight * ns_per_byte(j->ring_ns, j->ring_bytes) <
           (double)front_left * ns_per_byte(j->cma_ns, j->cma_bytes);
}

/* Where chunks [0, k) end: the last chunk may be short. */
static size_t end_of_chunks(const nxc_help_job_t *j, size_t k)
{
    return k * HELP_CHUNK < j->size ? k * HELP_CHUNK : j->size;
}

/* How long a read waits for a chunk the passive side took: twice what
 * copying it ourselves takes, so that a passive side that is slow,
 * preempted or stopped costs the read about two chunks of our own time per
 * stall, not STALL_NS (a 2 MiB read takes ~80 us). Before we have timed a
 * copy of our own, STALL_NS. A write waits STALL_NS for the drain of what
 * it staged: with this bound, `malloc` writes of 16 MiB took back chunks
 * the passive side was about to drain, and ran 1.5-2x slower in 3 of 4
 * rounds. */
static uint64_t stall_ns(const nxc_help_job_t *j)
{
    if (j->cma_bytes == 0)
        return STALL_NS;
    double own = 2 * ns_per_byte(j->cma_ns, j->cma_bytes) * HELP_CHUNK;
    return own < STALL_MIN_NS ? STALL_MIN_NS : own > STALL_NS ? STALL_NS : (uint64_t)own;
}

static int cma_chunk(nxc_help_job_t *j, size_t k)
{
    return cma(j, k * HELP_CHUNK, chunk_len(j->size, k));
}

/* Copies chunk k out of ring buffer s and frees the buffer. */
static void copy_out(nxc_help_job_t *j, size_t k, unsigned s)
{
    size_t len = chunk_len(j->size, k);
    ring_copy(j, j->local + k * HELP_CHUNK, j->h->ring[s], len);
    j->moved += len;
    free_ring(j->h, s);
}

/* The ring buffer a state word says its chunk of this request is STAGED
 * in, or -1 if it says something else (or names no ring buffer: the
 * passive process wrote it). */
static int staged_ring(const nxc_help_job_t *j, uint64_t st)
{
    if (epoch_of(st) != j->epoch || low_of(st) != C_STAGED || mid_of(st) >= HELP_RING)
        return -1;
    return (int)mid_of(st);
}

/* Copies out the passive side's chunks down to `stop` that are STAGED, in
 * the order it takes them (from the back). */
static void drain_staged(nxc_help_job_t *j, long stop, long *next)
{
    for (; *next >= stop; --*next) {
        int s = staged_ring(j, atomic_load_explicit(&j->h->state[*next], memory_order_acquire));
        if (s < 0)
            return;
        copy_out(j, (size_t)*next, (unsigned)s);
    }
}

/* Settles chunks [from, *next] of a read, from the back: copied out if
 * the passive side STAGED them, else taken back after stall_ns without
 * news (at once after an error, `err`, when nothing more is copied) and
 * copied by us. `alone`: the passive side broke the protocol; every one
 * is copied by us, and no word of the area is trusted. */
static int settle_read(nxc_help_job_t *j, long from, long *next, int err, int alone)
{
    uint64_t last = nxc_now_ns();
    while (*next >= from) {
        _Atomic uint64_t *sw = &j->h->state[*next];
        uint64_t st = atomic_load_explicit(sw, memory_order_acquire);
        int s = alone ? -1 : staged_ring(j, st);
        if (s >= 0) {
            if (err)
                free_ring(j->h, (unsigned)s);
            else
                copy_out(j, (size_t)*next, (unsigned)s);
            --*next;
            last = nxc_now_ns();
            continue;
        }
        if (!alone && !err && nxc_now_ns() - last < stall_ns(j)) {
            relax();
            continue;
        }
        /* Taken back. Its word changes from anything but STAGED only if the
         * passive side breaks the protocol: then we copy the chunk anyway. */
        if (!alone &&
            !atomic_compare_exchange_strong_explicit(sw, &st, word(j->epoch, 0, C_TAKEN),
                                                     memory_order_acq_rel,
                                                     memory_order_acquire) &&
            staged_ring(j, st) >= 0)
            continue; /* staged meanwhile */
        if (!err)
            err = cma_chunk(j, (size_t)*next);
        --*next;
    }
    return err;
}

/* Reads our chunk k in pieces, copying out the passive side's staged
 * chunks between them, so that its ring does not stay full for long. */
static int read_front_chunk(nxc_help_job_t *j, size_t k, long *next)
{
    size_t end = k * HELP_CHUNK + chunk_len(j->size, k);
    for (size_t off = k * HELP_CHUNK; off < end; off += CMA_PIECE) {
        drain_staged(j, (long)k + 1, next);
        int err = cma(j, off, end - off < CMA_PIECE ? end - off : CMA_PIECE);
        if (err)
            return err;
    }
    return 0;
}

/* We take chunks from the front, one at a time while the ring pays, else
 * (or after an error) all that are left, so that the passive side stops;
 * we copy out what it staged meanwhile, then settle the chunks it took. */
static int run_read(nxc_help_job_t *j)
{
    long front = 0, next = (long)chunks_of(j->size) - 1, k, end;
    int err = 0, alone = 0;
    while ((k = take_front(j->h, err == 0 && ring_pays(j) ? 1 : HELP_MAX_CHUNKS, &end)) >= 0) {
        if (k != front || end - 1 > next) {
            alone = 1; /* a cursor we did not leave like that */
            break;
        }
        for (; front < end; front++)
            if (err == 0)
                err = read_front_chunk(j, (size_t)front, &next);
    }
    return settle_read(j, front, &next, err, alone);
}

/* Settles the staged chunks [back, n) of a write. */
static int settle_write(nxc_help_job_t *j, size_t back, size_t n, int err)
{
    struct nxc_gate_help *h = j->h;
    unsigned char settled[HELP_MAX_CHUNKS] = { 0 };
    size_t pending = n - back;
    uint64_t last = nxc_now_ns();
    int seen = atomic_load_explicit(&h->present, memory_order_acquire) == j->epoch;
    while (pending > 0) {
        int stalled = err || !seen || nxc_now_ns() - last >= STALL_NS;
        for (size_t k = back; k < n; k++) {
            if (settled[k])
                continue;
            uint64_t st = atomic_load_explicit(&h->state[k], memory_order_acquire);
            if (st == word(j->epoch, 0, C_DRAINED)) {
                settled[k] = 1;
                pending--;
                last = nxc_now_ns();
            } else if (stalled) {
                /* STAGED: taken back with its ring buffer. Else DRAINING
                 * (the passive side copies it, and may be stopped doing
                 * so: its ring buffer stays held until its copy ends), or
                 * a word the protocol does not allow: either way we write
                 * the same bytes ourselves. */
                int s = staged_ring(j, st);
                if (s >= 0 && atomic_compare_exchange_strong_explicit(
                                  &h->state[k], &st, word(j->epoch, (unsigned)s, C_TAKEN),
                                  memory_order_acq_rel, memory_order_acquire))
                    free_ring(h, (unsigned)s);
                if (!err)
                    err = cma_chunk(j, k);
                settled[k] = 1;
                pending--;
            }
        }
        if (pending > 0)
            relax();
    }
    return err;
}

/* Stages chunk k of a write into ring buffer s. */
static void stage(nxc_help_job_t *j, size_t k, int s)
{
    ring_copy(j, j->h->ring[s], j->local + k * HELP_CHUNK, chunk_len(j->size, k));
    atomic_store_explicit(&j->h->state[k], word(j->epoch, (unsigned)s, C_STAGED),
                          memory_order_release);
}

/* Stages chunks from the back while the ring has room and pays, writes
 * from the front in pieces otherwise (one piece first, to time it). The
 * write ends only when the passive side has drained every staged chunk:
 * so no more are in flight than it drains while we write what the front
 * has left, or that drain would be a tail we wait through. */
static int run_write(nxc_help_job_t *j)
{
    struct nxc_gate_help *h = j->h;
    size_t n = chunks_of(j->size), back = n, front = 0; /* front in bytes */
    size_t drained = n; /* chunks [drained, n) are DRAINED, as far as seen */
    unsigned staged = 0;
    int err = 0, s;
    while (err == 0 && front < end_of_chunks(j, back)) {
        while (drained > back &&
               atomic_load_explicit(&h->state[drained - 1], memory_order_acquire) ==
                   word(j->epoch, 0, C_DRAINED))
            drained--;
        size_t in_flight = drained - back;
        size_t front_left = (end_of_chunks(j, back) - front) / HELP_CHUNK;
        int may_stage = j->cma_bytes > 0 && drain_keeps_up(j, in_flight, front_left) &&
                        ring_pays(j) &&
                        (staged < STAGE_UNSEEN ||
                         atomic_load_explicit(&h->present, memory_order_acquire) == j->epoch);
        if (may_stage && (s = hold_ring(h, j->epoch, back - 1)) >= 0) {
            stage(j, --back, s);
            staged++;
            continue;
        }
        size_t left = end_of_chunks(j, back) - front;
        size_t len = left < CMA_PIECE ? left : CMA_PIECE;
        err = cma(j, front, len);
        front += len;
    }
    return settle_write(j, back, n, err);
}

int nxc_help_run(nxc_help_job_t *j)
{
    int err = j->write ? run_write(j) : run_read(j);
    /* Bytes the passive side drained count as moved once DRAINED. */
    if (err == 0)
        j->moved = j->size;
    atomic_store_explicit(&j->h->owner, word(j->epoch, 0, H_FREE), memory_order_release);
    return err;
}

/* ---- passive side ----------------------------------------------------- */

uint32_t nxc_help_asked(struct nxc_gate_help *h, uint32_t *pid)
{
    uint64_t o = atomic_load_explicit(&h->owner, memory_order_acquire);
    if (low_of(o) != H_READY)
        return 0;
    *pid = atomic_load_explicit(&h->pid, memory_order_relaxed);
    return mid_of(o);
}

/* Stages up to SERVE_CHUNKS chunks of our readable op, from the back. */
static unsigned stage_chunks(struct nxc_gate_help *h, uint64_t epoch, const char *buf,
                             size_t size)
{
    unsigned done = 0;
    for (unsigned i = 0; i < SERVE_CHUNKS; i++) {
        int s = hold_ring(h, epoch, 0);
        if (s < 0)
            return done;
        long k = take_back(h);
        if (k < 0 || (size_t)k >= chunks_of(size)) { /* the peer's cursor: checked */
            free_ring(h, (unsigned)s);
            return done;
        }
        _Atomic uint64_t *sw = &h->state[k];
        uint64_t st = atomic_load_explicit(sw, memory_order_acquire);
        if (epoch_of(st) != epoch || low_of(st) != C_TAKEN) {
            memcpy(h->ring[s], buf + (size_t)k * HELP_CHUNK, chunk_len(size, (size_t)k));
            if (atomic_compare_exchange_strong_explicit(sw, &st, word(epoch, (unsigned)s,
                                                                      C_STAGED),
                                                        memory_order_acq_rel,
                                                        memory_order_acquire)) {
                done++;
                continue;
            }
        }
        free_ring(h, (unsigned)s); /* taken back: the peer copied it itself */
    }
    return done;
}

/* Moves up to SERVE_CHUNKS STAGED chunks of our writable op into `buf`. */
static unsigned drain_chunks(struct nxc_gate_help *h, uint64_t epoch, char *buf, size_t size)
{
    unsigned done = 0;
    size_t n = chunks_of(size);
    for (unsigned s = 0; s < HELP_RING && done < SERVE_CHUNKS; s++) {
        uint64_t t = atomic_load_explicit(&h->tag[s], memory_order_acquire);
        uint64_t k = t & 0xffffffu;
        if (epoch_of(t) != epoch || k == 0 || k > n)
            continue;
        k--;
        _Atomic uint64_t *sw = &h->state[k];
        uint64_t staged = word(epoch, s, C_STAGED), draining = word(epoch, s, C_DRAINING);
        if (!atomic_compare_exchange_strong_explicit(sw, &staged, draining,
                                                     memory_order_acq_rel,
                                                     memory_order_acquire))
            continue;
        memcpy(buf + k * HELP_CHUNK, h->ring[s], chunk_len(size, k));
        /* A CAS, not a store: the word may belong to a later request by now
         * if we were stopped in the copy. */
        atomic_compare_exchange_strong_explicit(sw, &draining, word(epoch, 0, C_DRAINED),
                                                memory_order_acq_rel, memory_order_acquire);
        free_ring(h, s);
        done++;
    }
    return done;
}

unsigned nxc_help_serve(struct nxc_gate_help *h, uint32_t slot, int readable, char *buf,
                        size_t size)
{
    uint64_t o = atomic_load_explicit(&h->owner, memory_order_acquire);
    uint64_t epoch = epoch_of(o);
    if (low_of(o) != H_READY || mid_of(o) != slot)
        return 0;
    size_t asked = (size_t)atomic_load_explicit(&h->size, memory_order_relaxed);
    int write = atomic_load_explicit(&h->write, memory_order_relaxed) != 0;
    /* The fields are the request's only if the owner word did not change
     * while we read them. */
    if (atomic_load_explicit(&h->owner, memory_order_acquire) != o || asked != size ||
        write == readable || !nxc_help_worth(size, write))
        return 0;
    atomic_store_explicit(&h->present, epoch, memory_order_release);
    return readable ? stage_chunks(h, epoch, buf, size) : drain_chunks(h, epoch, buf, size);
}

void nxc_help_forget(struct nxc_gate_help *h, uint32_t slot)
{
    uint64_t o = atomic_load_explicit(&h->owner, memory_order_acquire);
    if (low_of(o) == H_FREE || mid_of(o) != slot)
        return;
    /* Its claimer is dead: the ring buffers held for its request are
     * nobody's (ours are not in use: we hold the connector's lock). */
    for (unsigned s = 0; s < HELP_RING; s++)
        if (epoch_of(atomic_load_explicit(&h->tag[s], memory_order_acquire)) == epoch_of(o))
            free_ring(h, s);
    atomic_compare_exchange_strong_explicit(&h->owner, &o, word(epoch_of(o), 0, H_FREE),
                                            memory_order_acq_rel, memory_order_acquire);
}
