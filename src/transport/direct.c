/* The same-host direct protocol: an active op copies its bytes straight
 * into (write) or out of (read) the passive op's buffers with
 * process_vm_writev/readv (the kernel's cross-memory attach, CMA), so the
 * passive process need not run at all.
 *
 * THE GATE. A passive connector with direct_local owns one memfd of
 * GATE_SLOTS slots of 64 bytes, mapped shared. Each open passive op that
 * offers the path holds a slot; its metadata (agent blob version 2) names
 * the gate's fd and id, the slot and the slot's generation. A slot is one
 * 64-bit word, changed only by compare-and-swap or by its current holder:
 *
 *     state = generation << 32 | phase << 24 | detail (24 bits)
 *
 *   FREE   no op; detail = how the last one ended (a NACK reason)
 *   OPEN   the op is open and untaken; the slot's key is the op's key
 *   BUSY   a same-host peer is copying; detail = its pid
 *   DONE   that copy is over: every byte is in place
 *   FAILED that copy failed, or its process died while BUSY
 *   CLOSED the op ended before any direct copy: detail = NACK reason
 *   AM     an active-message BEGIN or data message took the op
 *
 * Transitions and who makes them:
 *   passive, assign:  FREE(g) -> OPEN(g+1)     store (key written before)
 *   active, claim:    OPEN(g) -> BUSY(g, pid)  CAS; g and the key must be
 *                                              the metadata's
 *   active, end:      BUSY(g) -> DONE/FAILED   store (release), by the claimer
 *   passive, AM take: OPEN(g) -> AM(g)         CAS (on_begin, data claim)
 *   passive, close:   OPEN(g) -> CLOSED(g)     CAS (cancel, release, the op ended)
 *                     AM(g) -> CLOSED(g)       CAS (the op ended)
 *   passive, reap:    BUSY(g) -> FAILED(g)     CAS, only once the claimer's
 *                                              process has exited
 *   passive, free:    any but BUSY -> FREE(g)  at the op's release
 *
 * SAFETY. "Memory is reachable only while its op is open; a transfer
 * racing a release lands before release returns or is refused":
 * - a copy happens only between a successful claim and the claimer's end
 *   store; a claim succeeds only on OPEN with the metadata's generation, so
 *   metadata of a closed, completed, taken or recycled op claims nothing;
 * - cancel and release close the slot first (nxc_gate_close): the CAS
 *   OPEN -> CLOSED wins, or the slot is BUSY and they wait until the
 *   claimer's end store or its death (no syscall of a dead process runs),
 *   or it is DONE/FAILED/AM already. Nothing copies after that returns.
 * - DONE is stored after process_vm_* returned, with release order, and
 *   read with acquire order: a passive op COMPLETE on DONE has its bytes.
 * - one taker: both paths take the op through the same word.
 * - the right process: process_vm_* takes a pid, and a gate stays mapped
 *   here after its process died. The active side holds a pidfd of the
 *   passive process from before it read /proc to after (so the gate and
 *   wake fd it found are that process's) and refuses a copy once that
 *   pidfd says the process exited: its pid is never reused while the
 *   process lives or is an unreaped zombie. (The window left is between
 *   that check and the copy: the process would have to exit, be reaped
 *   and its pid be handed out again within it.)
 * The price of "never after": release waits for a claimer that is alive
 * but stopped (SIGSTOP, a debugger) until it resumes or dies. A copy
 * itself is bounded by the op's size (the copy runs inside the active
 * side's nxc_begin_*()).
 *
 * HELP. After its slots the gate holds a help area: a claimer of a large
 * op asks the passive side to copy part of it through a ring there, so
 * that both CPUs copy (direct_help.c has that protocol and why the rules
 * above still hold: the passive side never writes into the claimer).
 *
 * TRUST. Only a process that may ptrace-read ours can open the gate
 * (/proc/<pid>/fd/<fd> is checked like ptrace), and only one that may
 * ptrace-attach can copy: a process with those rights can read and write
 * all our memory anyway, so the gate protects against races and stale
 * metadata, not against a hostile process of our own user. Another user, a
 * container with its own pid namespace or a kernel without CMA (yama
 * ptrace_scope 1 or more, seccomp) fails to open or to copy, and the op
 * takes the active-message path instead: decided once per peer, at its
 * first op (nxc_direct_usable).
 *
 * WAKING THE PASSIVE SIDE. Slot 0 is the gate's header: a poke counter, a
 * "may be asleep" word and the number of the connector's wake eventfd.
 * After its end store the claimer bumps the counter and, if the word asks
 * for it, writes to that eventfd, which it holds through pidfd_getfd(2)
 * (the same ptrace check as CMA): a passive worker asleep in nxc_op_wait()
 * or polling nxc_connector_fd() wakes, and its next progress pass polls
 * the slots of its open ops (nxc_gate_check). No UCX message is involved
 * (a one-way message to a worker that never answers left UCX 1.13's TCP
 * wireup asserting). A poke proves nothing: the slots say what happened.
 * The word spares the claimer the eventfd write where nobody needs it: the
 * write costs the writer the wake-up of a halted vCPU, 7-46 us on the VMs
 * measured (docs/PERFORMANCE.md). It holds two bits:
 *   SLEEPER_POLLER  the fd is armed for the application's poller, which
 *                   learns of an op only from the fd: every copy writes
 *                   (a gate of an older version sets only this value);
 *   SLEEPER_WAITER  a thread of ours sleeps in nxc_op_wait(): only a copy
 *                   of an op some thread waits for (the slot's waiters)
 *                   writes. An op nobody waits for is found when someone
 *                   looks (its status, its wait, the next progress pass).
 * Its rule is Dekker's, twice. The passive side sets the word before it
 * looks at the counter one last time and sleeps (nxc_gate_arm, under the
 * connector's arming); the claimer bumps the counter before it reads the
 * word: either the passive side sees the bump and does not sleep, or the
 * claimer sees the word. A thread that starts waiting for an op counts
 * itself in the slot's waiters before it reads the counter and looks at
 * the slot (nxc_gate_waiting); the claimer bumps the counter before it
 * reads the waiters: either the waiter sees the copy's end, or the claimer
 * sees the waiter. (A thread that sleeps for its op set the word after it
 * counted itself, so a claimer that reads that word reads the count.) All
 * of these are sequentially consistent. The passive side clears a bit only
 * in a progress pass with no thread asleep (WAITER) or the fd not armed
 * for an outside poller (POLLER). */
#include "transport/direct.h"
#include "transport/direct_help.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/error.h"
#include "common/identity.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/op.h"
#include "transport/protocol.h"
#include "transport/registration.h"
#include "transport/transport.h"

#define GATE_SLOTS 4096u
#define IOV_BATCH  1024 /* IOV_MAX */

enum gate_phase { PH_FREE, PH_OPEN, PH_BUSY, PH_DONE, PH_FAILED, PH_CLOSED, PH_AM };

struct nxc_gate_slot {
    _Atomic uint64_t state;
    /* The op's key; atomic words because a claimer may read them while the
     * passive side reopens the slot (its claim then fails on the
     * generation). */
    _Atomic uint64_t key[2];
    /* Threads of the passive side in nxc_op_wait() on the op: a hint for
     * the claimer's choice of protocol (passive_waits_awake). */
    _Atomic uint32_t waiters;
    uint8_t          pad[64 - 8 - NXC_KEY_BYTES - 4];
};
_Static_assert(NXC_KEY_BYTES == 2 * sizeof(uint64_t), "a key is two words");
_Static_assert(sizeof(struct nxc_gate_slot) == 64, "a slot is one cache line");

/* Slot 0. */
struct nxc_gate_header {
    _Atomic uint64_t pokes;   /* copies that ended: bumped by each claimer */
    uint32_t         wake_fd; /* the passive connector's wake eventfd */
    uint32_t         magic;
    _Atomic uint64_t asleep;  /* who may sleep on wake_fd: SLEEPER_* bits */
    uint8_t          pad[64 - 24];
};
_Static_assert(sizeof(struct nxc_gate_header) == 64, "the header takes slot 0");
/* The header's asleep word (see WAKING at the top). */
#define SLEEPER_POLLER 1u
#define SLEEPER_WAITER 2u

/* "3GXN": gates with a help area (direct_help.c); "2GXN" had none, and
 * before the asleep word "GGXN". A claimer meeting a gate of another kind
 * takes the message path (the gate's size differs too). */
#define GATE_MAGIC 0x4e584733u
#define GATE_BYTES ((size_t)GATE_SLOTS * sizeof(struct nxc_gate_slot))
#define GATE_MAP_BYTES (GATE_BYTES + nxc_help_bytes())
/* A passive side with nothing to do for a help request keeps its waiter
 * awake this long (it would otherwise sleep and the claimer copy alone). */
#define HELP_IDLE_NS 2000000u

struct nxc_gate {
    int                   fd;
    uint64_t              id;
    struct nxc_gate_slot *slots;
    uint64_t              pokes_seen;
    struct nxc_gate_help *help;
    int                   serves_help; /* NXC_DIRECT_HELP is not 0 */
    uint64_t              help_request; /* slot << 32 | generation of the last one served */
    uint64_t              help_logged;  /* ... and of the last one logged */
    uint64_t              help_active_ns;
    uint32_t              n_free;
    uint32_t              free[GATE_SLOTS];
};

/* A peer's gate, mapped here, its wake eventfd and a pidfd of its
 * process (active side). */
struct nxc_gate_view {
    uint64_t              id;
    struct nxc_gate_slot *slots;
    int                   wake;
    int                   pidfd;
    uint64_t              alive_at_ns; /* when the pidfd last said "alive" */
};

static struct nxc_gate_header *header_of(struct nxc_gate_slot *slots)
{
    return (struct nxc_gate_header *)(void *)slots;
}

static struct nxc_gate_help *help_of(struct nxc_gate_slot *slots)
{
    return (struct nxc_gate_help *)(void *)((char *)slots + GATE_BYTES);
}

/* NXC_DIRECT_HELP=0 turns the passive side's help off on both sides
 * (for measurements: docs/PERFORMANCE.md). */
static int help_allowed(void)
{
    const char *v = getenv("NXC_DIRECT_HELP");
    return v == NULL || strcmp(v, "0") != 0;
}

static uint64_t make_state(uint32_t gen, unsigned phase, uint32_t detail)
{
    return (uint64_t)gen << 32 | (uint64_t)phase << 24 | (detail & 0xffffffu);
}
static uint32_t gen_of(uint64_t s) { return (uint32_t)(s >> 32); }
static unsigned phase_of(uint64_t s) { return (unsigned)(s >> 24) & 0xffu; }
static uint32_t detail_of(uint64_t s) { return (uint32_t)s & 0xffffffu; }

static int pidfd_exited(int pidfd)
{
    return nxc_pidfd_exits_within(pidfd, 0);
}

static void gate_name(uint64_t id, char *buf, size_t size)
{
    snprintf(buf, size, "nxc-gate-%016" PRIx64, id);
}

static void store_key(struct nxc_gate_slot *s, const uint8_t key[NXC_KEY_BYTES])
{
    for (int w = 0; w < 2; w++)
        atomic_store_explicit(&s->key[w], nxc_get_u64(key + 8 * w), memory_order_relaxed);
}

static int key_is(struct nxc_gate_slot *s, const uint8_t key[NXC_KEY_BYTES])
{
    for (int w = 0; w < 2; w++)
        if (atomic_load_explicit(&s->key[w], memory_order_relaxed) != nxc_get_u64(key + 8 * w))
            return 0;
    return 1;
}

/* Whether the buffers lie back to back (empty ones anywhere): then they
 * are one span, [*base, *base + *size). */
static int one_span(const nxc_descriptor_t *d, size_t n, char **base, size_t *size)
{
    char *start = NULL, *end = NULL;
    for (size_t i = 0; i < n; i++) {
        if (d[i].size == 0)
            continue;
        if (start == NULL)
            start = end = d[i].ptr;
        else if ((char *)d[i].ptr != end)
            return 0;
        end += d[i].size;
    }
    *base = start;
    *size = (size_t)(end - start);
    return start != NULL;
}

/* ---- passive side ----------------------------------------------------- */

static struct nxc_gate *gate_new(int wake_fd)
{
    struct nxc_gate *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    char name[32];
    if (nxc_random_bytes(&g->id, sizeof g->id) != NXC_OK)
        goto fail;
    gate_name(g->id, name, sizeof name);
    g->fd = memfd_create(name, MFD_CLOEXEC);
    if (g->fd < 0)
        goto fail;
    if (ftruncate(g->fd, (off_t)GATE_MAP_BYTES) != 0 ||
        (g->slots = mmap(NULL, GATE_MAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0)) ==
            MAP_FAILED) {
        close(g->fd);
        goto fail;
    }
    header_of(g->slots)->wake_fd = (uint32_t)wake_fd;
    header_of(g->slots)->magic = GATE_MAGIC;
    g->help = help_of(g->slots);
    g->serves_help = help_allowed();
    for (uint32_t i = 1; i < GATE_SLOTS; i++)
        g->free[i - 1] = GATE_SLOTS - i;
    g->n_free = GATE_SLOTS - 1;
    return g;
fail:
    free(g);
    return NULL;
}

void nxc_gate_destroy(nxc_connector_t *c)
{
    struct nxc_gate *g = c->gate;
    if (g == NULL)
        return;
    munmap(g->slots, GATE_MAP_BYTES);
    close(g->fd);
    free(g);
    c->gate = NULL;
}

void nxc_gate_create(nxc_connector_t *c)
{
    /* Only where UCX may use shared memory itself: a user who restricted
     * it (UCX_TLS=tcp) asked for no same-host shortcut. */
    if (!c->direct_local || !c->has_shm || c->wire != NXC_WIRE_NXC)
        return;
    if ((c->gate = gate_new(c->wakefd)) == NULL)
        NXC_LOG(NXC_LOG_WARN, "connector '%s': no same-host direct path (memfd: %s); ops "
                "use active messages", c->name, strerror(errno));
}

/* Whether any of the op's memory is UCX's own shared segments
 * (nxc_mem_alloc): a peer's UCX maps those and copies with memcpy, 2-4x
 * faster here than process_vm_* (64 KiB-16 MiB, docs/PERFORMANCE.md). */
static int in_ucx_segments(const nxc_op_t *op)
{
    for (size_t i = 0; i < op->n_regs; i++)
        if (op->regs[i]->origin == NXC_REG_ALLOC)
            return 1;
    return 0;
}

int nxc_gate_assign(nxc_op_t *op, nxc_gate_ref_t *ref)
{
    struct nxc_gate *g = op->c->gate;
    memset(ref, 0, sizeof *ref);
    /* No gate, every slot held by an open op, or memory UCX moves faster:
     * messages only. */
    if (g == NULL || g->n_free == 0 || in_ucx_segments(op))
        return NXC_OK;
    uint32_t i = g->free[--g->n_free];
    struct nxc_gate_slot *s = &g->slots[i];
    uint32_t gen = gen_of(atomic_load_explicit(&s->state, memory_order_relaxed)) + 1;
    store_key(s, op->key);
    atomic_store_explicit(&s->waiters, 0, memory_order_relaxed);
    atomic_store_explicit(&s->state, make_state(gen, PH_OPEN, 0), memory_order_release);
    op->has_slot = 1;
    op->slot = i;
    op->slot_gen = gen;
    *ref = (nxc_gate_ref_t){ .present = 1, .fd = (uint32_t)g->fd, .slot = i, .gen = gen,
                             .id = g->id };
    return NXC_OK;
}

static struct nxc_gate_slot *slot_of(const nxc_op_t *op)
{
    return &op->c->gate->slots[op->slot];
}

void nxc_gate_waiting(nxc_op_t *op, int delta)
{
    if (!op->has_slot)
        return;
    atomic_fetch_add(&slot_of(op)->waiters, (uint32_t)delta); /* seq_cst: WAKING */
    if (delta > 0) {
        /* Dekker with end_poke(): a copy that ended before the claimer
         * could see us is seen here. */
        (void)atomic_load(&header_of(op->c->gate->slots)->pokes);
        nxc_gate_poll(op);
    }
}

/* Why a slot that is not OPEN refuses a taker (a NACK reason). */
static uint8_t refusal_of(uint64_t s, uint32_t gen)
{
    if (gen_of(s) != gen)
        return NXC_NACK_CLOSED;
    switch (phase_of(s)) {
    case PH_BUSY:
    case PH_AM:     return NXC_NACK_TAKEN;
    case PH_DONE:   return NXC_NACK_COMPLETED;
    case PH_FAILED: return NXC_NACK_FAILED;
    case PH_CLOSED:
    case PH_FREE:   return detail_of(s) ? (uint8_t)detail_of(s) : NXC_NACK_CLOSED;
    default:        return NXC_NACK_CLOSED;
    }
}

uint8_t nxc_gate_take_for_am(nxc_op_t *op)
{
    if (!op->has_slot)
        return 0;
    struct nxc_gate_slot *s = slot_of(op);
    uint64_t seen = make_state(op->slot_gen, PH_OPEN, 0);
    if (atomic_compare_exchange_strong_explicit(&s->state, &seen,
                                                make_state(op->slot_gen, PH_AM, 0),
                                                memory_order_acq_rel, memory_order_acquire) ||
        phase_of(seen) == PH_AM)
        return 0;
    nxc_gate_poll(op);
    return refusal_of(seen, op->slot_gen);
}

/* Whether the process `pid` has exited (a zombie has). */
static int process_exited(uint32_t pid)
{
    int fd = nxc_pidfd_open(pid);
    if (fd < 0) /* no pidfd (old kernel, full fd table): a zombie looks alive */
        return errno == ESRCH || (kill((pid_t)pid, 0) != 0 && errno == ESRCH);
    int exited = pidfd_exited(fd);
    close(fd);
    return exited;
}

/* A BUSY slot (*st) whose claimer has exited: its copy will never end (a
 * dead process runs no syscall), so the slot becomes FAILED. Returns
 * whether this call made it so; *st is then the state it left, else the
 * state seen (changed only if the copy ended meanwhile). */
static int reap_dead_claimer(nxc_op_t *op, uint64_t *st)
{
    if (!process_exited(detail_of(*st)) ||
        !atomic_compare_exchange_strong_explicit(&slot_of(op)->state, st,
                                                 make_state(op->slot_gen, PH_FAILED, 0),
                                                 memory_order_acq_rel, memory_order_acquire))
        return 0;
    nxc_help_forget(op->c->gate->help, op->slot);
    return 1;
}

/* Looking for a dead claimer costs three syscalls: a waiter polling its op
 * in a tight loop while a copy runs looks once per millisecond. */
#define CLAIMER_CHECK_NS 1000000u

void nxc_gate_poll(nxc_op_t *op)
{
    if (!op->has_slot || nxc_op_is_final(op))
        return;
    struct nxc_gate_slot *s = slot_of(op);
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    const char *what = op->kind == NXC_OP_WRITE ? "write into" : "read from";
    switch (phase_of(st)) {
    case PH_BUSY: {
        nxc_op_set_in_progress(op);
        uint64_t now = nxc_now_ns();
        if (now - op->claimer_checked_ns < CLAIMER_CHECK_NS)
            return;
        op->claimer_checked_ns = now;
        if (reap_dead_claimer(op, &st))
            nxc_op_finish(op, NXC_OP_ERRORED, NXC_ERR_PEER_FAILED,
                          "process %u died during its same-host %s this op; its buffers "
                          "may hold part of the data", (unsigned)detail_of(st), what);
        else if (phase_of(st) != PH_BUSY)
            nxc_gate_poll(op); /* the copy ended meanwhile */
        return;
    }
    case PH_DONE:
        nxc_op_set_in_progress(op);
        nxc_op_finish(op, NXC_OP_COMPLETE, NXC_OK, "complete");
        return;
    case PH_FAILED:
        nxc_op_set_in_progress(op);
        nxc_op_finish(op, NXC_OP_ERRORED, NXC_ERR_PEER_FAILED,
                      "a same-host peer's direct %s this op failed; its buffers may hold "
                      "part of the data", what);
        return;
    default:
        return;
    }
}

int nxc_gate_arm(nxc_connector_t *c, int for_poller)
{
    struct nxc_gate *g = c->gate;
    if (g == NULL)
        return 0;
    /* seq_cst: see WAKING at the top */
    atomic_fetch_or(&header_of(g->slots)->asleep, for_poller ? SLEEPER_POLLER : SLEEPER_WAITER);
    return atomic_load(&header_of(g->slots)->pokes) != g->pokes_seen;
}

static nxc_op_t *open_op_in_slot(nxc_connector_t *c, uint32_t slot)
{
    for (nxc_op_t *op = c->open_ops; op != NULL; op = op->open_next)
        if (op->has_slot && op->slot == slot)
            return op;
    return NULL;
}

/* Helps a peer copying one of our ops, if it asked (direct_help.c).
 * Nonzero while the help goes on: the caller's waiter stays awake. */
static unsigned serve_help(nxc_connector_t *c)
{
    struct nxc_gate *g = c->gate;
    uint32_t pid = 0, slot = g->serves_help ? nxc_help_asked(g->help, &pid) : 0;
    nxc_op_t *op = slot != 0 && slot < GATE_SLOTS ? open_op_in_slot(c, slot) : NULL;
    char *base;
    size_t size;
    /* Only for the op's claimer, while it copies, and buffers in one span. */
    if (op == NULL || !one_span(op->descs, op->n, &base, &size) ||
        atomic_load_explicit(&slot_of(op)->state, memory_order_acquire) !=
            make_state(op->slot_gen, PH_BUSY, pid))
        return 0;
    unsigned did = nxc_help_serve(g->help, slot, op->kind == NXC_OP_READ, base, size);
    uint64_t now = nxc_now_ns(), request = (uint64_t)slot << 32 | op->slot_gen;
    if (did > 0 && request != g->help_logged)
        NXC_LOG(NXC_LOG_DEBUG, "connector '%s': helping process %u copy %s the op in slot "
                "%u (%zu bytes)", c->name, (unsigned)pid,
                op->kind == NXC_OP_READ ? "out of" : "into", (unsigned)slot, size);
    if (did > 0)
        g->help_logged = request;
    if (did > 0 || request != g->help_request) {
        g->help_request = request;
        g->help_active_ns = now;
    }
    return did > 0 || now - g->help_active_ns < HELP_IDLE_NS;
}

unsigned nxc_gate_check(nxc_connector_t *c)
{
    struct nxc_gate *g = c->gate;
    _Atomic uint64_t *asleep = &header_of(g->slots)->asleep;
    uint64_t keep = (c->poller_armed ? SLEEPER_POLLER : 0) | (c->sleeping ? SLEEPER_WAITER : 0);
    uint64_t who = atomic_load_explicit(asleep, memory_order_relaxed);
    if ((who & ~keep) != 0)
        atomic_fetch_and_explicit(asleep, keep, memory_order_relaxed);
    unsigned helped = serve_help(c);
    uint64_t pokes = atomic_load_explicit(&header_of(g->slots)->pokes, memory_order_acquire);
    if (pokes == g->pokes_seen)
        return helped;
    g->pokes_seen = pokes;
    unsigned ended = 0;
    for (nxc_op_t *op = c->open_ops; op != NULL; op = op->open_next) {
        /* polling may end the op, never unlink it */
        int was_final = nxc_op_is_final(op);
        nxc_gate_poll(op);
        ended += (unsigned)(!was_final && nxc_op_is_final(op));
    }
    return ended + helped;
}

/* OPEN -> CLOSED(reason), or wait out a copy. Returns the state it left. */
static uint64_t close_slot(nxc_op_t *op, uint8_t reason)
{
    struct nxc_gate_slot *s = slot_of(op);
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    uint64_t since = 0;
    for (;;) {
        if (phase_of(st) == PH_OPEN) {
            if (atomic_compare_exchange_weak_explicit(&s->state, &st,
                                                      make_state(op->slot_gen, PH_CLOSED,
                                                                 reason),
                                                      memory_order_acq_rel,
                                                      memory_order_acquire))
                return make_state(op->slot_gen, PH_CLOSED, reason);
            continue;
        }
        if (phase_of(st) != PH_BUSY)
            return st;
        if (reap_dead_claimer(op, &st))
            return make_state(op->slot_gen, PH_FAILED, 0);
        if (phase_of(st) != PH_BUSY)
            continue; /* the copy ended meanwhile */
        uint64_t now = nxc_now_ns();
        if (since == 0)
            since = now;
        else if (now - since > 1000000000ull) {
            NXC_LOG(NXC_LOG_WARN, "connector '%s': ending an op waits for process %u, which "
                    "is copying it directly (stopped?)", op->c->name,
                    (unsigned)detail_of(st));
            since = now;
        }
        struct timespec nap = { 0, 20000 };
        nanosleep(&nap, NULL);
        st = atomic_load_explicit(&s->state, memory_order_acquire);
    }
}

void nxc_gate_shut(nxc_op_t *op, uint8_t reason)
{
    if (!op->has_slot)
        return;
    /* OPEN, or taken by the message path, which is over now: a later
     * direct taker is told how the op ended. */
    struct nxc_gate_slot *s = slot_of(op);
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    while ((phase_of(st) == PH_OPEN || phase_of(st) == PH_AM) &&
           !atomic_compare_exchange_weak_explicit(&s->state, &st,
                                                  make_state(op->slot_gen, PH_CLOSED, reason),
                                                  memory_order_acq_rel, memory_order_acquire))
        ;
}

void nxc_gate_close(nxc_op_t *op, uint8_t reason)
{
    if (!op->has_slot)
        return;
    (void)close_slot(op, reason);
    nxc_gate_poll(op);
}

void nxc_gate_free_slot(nxc_op_t *op)
{
    if (!op->has_slot)
        return;
    uint64_t st = close_slot(op, NXC_NACK_RELEASED);
    struct nxc_gate *g = op->c->gate;
    /* Until the slot serves another op, a late taker is told how this one
     * ended. */
    atomic_store_explicit(&slot_of(op)->state,
                          make_state(gen_of(st), PH_FREE, refusal_of(st, op->slot_gen)),
                          memory_order_release);
    g->free[g->n_free++] = op->slot;
    nxc_help_forget(g->help, op->slot);
    op->has_slot = 0;
}

/* ---- active side ------------------------------------------------------ */

static void close_view(struct nxc_gate_view *v)
{
    if (v->slots != NULL)
        munmap(v->slots, GATE_MAP_BYTES);
    if (v->wake >= 0)
        close(v->wake);
    if (v->pidfd >= 0)
        close(v->pidfd);
    free(v);
}

void nxc_direct_forget_peer(nxc_peer_t *p)
{
    if (p->gate_view != NULL) {
        close_view(p->gate_view);
        p->gate_view = NULL;
    }
}

/* A copy of the peer's wake eventfd (pidfd_getfd), or -1 with a reason. */
static int take_wake_fd(int pidfd, const struct nxc_gate_header *h, const char **why)
{
    if (h->magic != GATE_MAGIC) {
        *why = "its gate has no header";
        return -1;
    }
#ifdef SYS_pidfd_getfd
    int fd = (int)syscall(SYS_pidfd_getfd, pidfd, (int)h->wake_fd, 0);
    int err = errno;
    char link[64] = "";
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (fd < 0 || readlink(path, link, sizeof link - 1) < 0 ||
        strcmp(link, "anon_inode:[eventfd]") != 0) {
        *why = fd < 0 ? strerror(err) : "its wake fd is not an eventfd";
        if (fd >= 0)
            close(fd);
        return -1;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#else
    (void)pidfd;
    *why = "this system has no pidfd_getfd";
    return -1;
#endif
}

/* Maps the memfd at /proc/<pid>/fd/<fd> if it is the gate of that id, or
 * returns NULL with a reason. */
static struct nxc_gate_slot *map_gate(const nxc_agent_blob_t *b, const char **why)
{
    char path[64], link[96], want[48];
    snprintf(path, sizeof path, "/proc/%u/fd/%u", (unsigned)b->identity.pid,
             (unsigned)b->gate.fd);
    gate_name(b->gate.id, want, sizeof want);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0) {
        *why = strerror(errno);
        return NULL;
    }
    link[n] = '\0';
    if (strncmp(link, "/memfd:", 7) != 0 || strncmp(link + 7, want, strlen(want)) != 0) {
        *why = "the fd is not that worker's gate";
        return NULL;
    }
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size != GATE_MAP_BYTES) {
        *why = fd < 0 ? strerror(errno) : "the gate has the wrong size";
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    void *map = mmap(NULL, GATE_MAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        *why = strerror(errno);
        return NULL;
    }
    return map;
}

/* Opens the gate the blob names, with a pidfd of the worker's process held
 * for as long as the view lives: the pidfd is opened first, and the process
 * is checked alive after /proc was read, so the gate and the wake fd are
 * that process's, and a copy never goes to another process that reused its
 * pid (direct_start checks the pidfd before each claim). */
static struct nxc_gate_view *open_gate(const nxc_agent_blob_t *b, const char **why)
{
    struct nxc_gate_view *v = calloc(1, sizeof *v);
    if (v == NULL) {
        *why = "no memory";
        return NULL;
    }
    v->id = b->gate.id;
    v->wake = -1;
    if ((v->pidfd = nxc_pidfd_open(b->identity.pid)) < 0)
        *why = strerror(errno);
    else if ((v->slots = map_gate(b, why)) != NULL &&
             (v->wake = take_wake_fd(v->pidfd, header_of(v->slots), why)) >= 0 &&
             pidfd_exited(v->pidfd))
        *why = "the worker's process has exited";
    else if (v->wake >= 0)
        return v;
    close_view(v);
    return NULL;
}

static int all_host(const nxc_descriptor_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (d[i].device.kind != NXC_DEVICE_HOST)
            return 0;
    return 1;
}

/* Whether the kernel lets us read the peer's memory: one byte of its
 * first non-empty buffer. Only a refusal counts; a fault says nothing
 * about permission (the claim decides about the op). */
static int kernel_refuses(uint32_t pid, const nxc_metadata_t *md)
{
    for (size_t i = 0; i < md->n_descs; i++) {
        if (md->descs[i].size == 0)
            continue;
        char byte;
        struct iovec l = { &byte, 1 }, r = { md->descs[i].ptr, 1 };
        if (process_vm_readv((pid_t)pid, &l, 1, &r, 1, 0) == 1)
            return 0;
        return errno == EPERM || errno == EACCES || errno == ENOSYS;
    }
    return 0;
}

/* Up to this size a shared-memory message is faster than a copy through
 * the kernel (a process_vm_* call costs ~1.5 us even for 8 bytes; the AM
 * path moves 8 B in 0.6-1.3 us and 8 KiB in ~2.5 us, eager) when the
 * passive side is there to take it: measured crossover 8-12 KiB,
 * docs/PERFORMANCE.md. Over TCP a copy is faster at every size. */
#define AM_UP_TO_BYTES 8192u

/* Whether a thread of the passive side waits for this very op and is not
 * asleep: it progresses until the op ends, so a message is taken at once.
 * A passive side that sleeps, or runs its own code and calls us now and
 * then, gets a direct copy. Only a hint: if the waiter falls asleep a
 * moment later UCX's wake-up serves the message; if its wait times out
 * the message waits for the passive side's next call. */
static int passive_waits_awake(const struct nxc_gate_view *v, const struct nxc_gate_slot *s)
{
    return atomic_load_explicit(&s->waiters, memory_order_relaxed) > 0 &&
           !atomic_load_explicit(&header_of(v->slots)->asleep, memory_order_relaxed);
}

int nxc_direct_usable(nxc_op_t *op, const nxc_metadata_t *md)
{
    const nxc_agent_blob_t *b = &md->blob;
    nxc_peer_t *p = op->peer;
    /* Only towards a peer UCX would reach over shared memory (not when
     * UCX_TLS excludes it, nor across network namespaces, which stand for
     * hosts): the direct path replaces UCX's same-host transports. */
    if (!b->gate.present || b->gate.slot == 0 || b->gate.slot >= GATE_SLOTS ||
        !p->via_shm || p->direct_refused ||
        !nxc_identity_same_host(&op->c->identity, &b->identity) || !all_host(op->descs, op->n) ||
        !all_host(md->descs, md->n_descs))
        return 0;
    if (p->gate_view != NULL && p->gate_view->id != b->gate.id)
        nxc_direct_forget_peer(p); /* the worker made a new gate */
    if (p->gate_view == NULL) {
        const char *why = NULL;
        if ((p->gate_view = open_gate(b, &why)) == NULL || kernel_refuses(b->identity.pid, md)) {
            NXC_LOG(NXC_LOG_INFO, "connector '%s': worker '%s' offers same-host direct copies, "
                    "but %s: using active messages", op->c->name, p->name,
                    why ? why : "the kernel refuses cross-process memory access (ptrace "
                                "permissions)");
            nxc_direct_forget_peer(p);
            p->direct_refused = 1;
            return 0;
        }
    }
    return op->expected > AM_UP_TO_BYTES ||
           !passive_waits_awake(p->gate_view, &p->gate_view->slots[b->gate.slot]);
}

static int direct_prepare(nxc_op_t *op, const nxc_metadata_t *md)
{
    struct nxc_direct_op *d = &op->state.direct;
    d->view = op->peer->gate_view;
    d->slot = &d->view->slots[md->blob.gate.slot];
    d->slot_no = md->blob.gate.slot;
    d->gen = md->blob.gate.gen;
    d->pid = md->blob.identity.pid;
    d->remote = malloc(op->n * sizeof *d->remote);
    if (d->remote == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for %zu remote buffers", op->n);
    memcpy(d->remote, md->descs, op->n * sizeof *d->remote);
    return NXC_OK;
}

/* Copies every buffer, IOV_BATCH at a time, resuming after a short
 * transfer. Returns 0 or an errno. */
static int copy_all(nxc_op_t *op)
{
    const struct nxc_direct_op *d = &op->state.direct;
    const nxc_descriptor_t *local = op->descs, *remote = d->remote;
    struct iovec liov[IOV_BATCH], riov[IOV_BATCH];
    size_t i = 0, off = 0;
    for (;;) {
        int k = 0;
        for (size_t j = i, o = off; j < op->n && k < IOV_BATCH; j++, o = 0) {
            if (local[j].size == o)
                continue;
            liov[k] = (struct iovec){ (char *)local[j].ptr + o, local[j].size - o };
            riov[k] = (struct iovec){ (char *)remote[j].ptr + o, remote[j].size - o };
            k++;
        }
        if (k == 0)
            return 0;
        ssize_t got = op->kind == NXC_OP_WRITE
                          ? process_vm_writev((pid_t)d->pid, liov, (unsigned long)k, riov,
                                              (unsigned long)k, 0)
                          : process_vm_readv((pid_t)d->pid, liov, (unsigned long)k, riov,
                                             (unsigned long)k, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? errno : EFAULT;
        for (size_t left = (size_t)got; left > 0;) {
            size_t rest = local[i].size - off;
            if (left >= rest) {
                left -= rest;
                i++;
                off = 0;
            } else {
                off += left;
                left = 0;
            }
        }
        op->state.direct.moved += (uint64_t)got;
    }
}

/* Tells the passive side a copy wants its help: any sleeper of it may
 * serve (see WAKING at the top). */
static void help_poke(nxc_op_t *op)
{
    struct nxc_gate_header *h = header_of(op->state.direct.view->slots);
    atomic_fetch_add(&h->pokes, 1);
    if (atomic_load(&h->asleep) != 0)
        (void)eventfd_write(op->state.direct.view->wake, 1);
}

/* Tells the passive side a copy ended, waking it only if it needs to know
 * now: its poller, or a thread that waits for this op (WAKING). */
static void end_poke(nxc_op_t *op)
{
    struct nxc_direct_op *d = &op->state.direct;
    struct nxc_gate_header *h = header_of(d->view->slots);
    atomic_fetch_add(&h->pokes, 1);
    uint64_t who = atomic_load(&h->asleep);
    if ((who & SLEEPER_POLLER) || ((who & SLEEPER_WAITER) && atomic_load(&d->slot->waiters) > 0))
        (void)eventfd_write(d->view->wake, 1);
}

/* Copies the claimed op's bytes: with the passive side's help where it
 * pays (large, and the buffers one span on each side: one buffer, or
 * blocks of one), else alone. Returns 0 or an errno. */
static int copy(nxc_op_t *op)
{
    struct nxc_direct_op *d = &op->state.direct;
    char *local, *remote;
    size_t size, remote_size;
    if (!one_span(op->descs, op->n, &local, &size) ||
        !one_span(d->remote, op->n, &remote, &remote_size) || remote_size != size ||
        !nxc_help_worth(size, op->kind == NXC_OP_WRITE) || !help_allowed())
        return copy_all(op);
    nxc_help_job_t j = { .h = help_of(d->view->slots),
                         .write = op->kind == NXC_OP_WRITE,
                         .local = local,
                         .remote = (uint64_t)(uintptr_t)remote,
                         .size = size,
                         .pid = (pid_t)d->pid };
    if (!nxc_help_ask(&j, d->slot_no))
        return copy_all(op);
    help_poke(op);
    int err = nxc_help_run(&j);
    d->moved = j.moved;
    return err;
}

/* How long a pidfd's "alive" is trusted. A pid returns to use only after
 * the kernel has handed out every other free pid of its range (allocation
 * is cyclic, alloc_pid): the process would have to exit, be reaped and its
 * pid come round again within this time, which takes one fork per free pid
 * (hundreds even at the smallest pid_max; 4 million by default on large
 * machines). Within it a dead process's pid is free or a zombie's, and a
 * copy to it fails with ESRCH. */
#define ALIVE_TRUST_NS 100000u

/* Whether the worker behind the view may have exited: its pid may belong
 * to another process by now. */
static int worker_gone(struct nxc_gate_view *v)
{
    uint64_t now = nxc_now_ns();
    if (now - v->alive_at_ns < ALIVE_TRUST_NS)
        return 0;
    if (pidfd_exited(v->pidfd))
        return 1;
    v->alive_at_ns = now;
    return 0;
}

/* Claims the slot, copies, says how it went, pokes the passive side. The
 * op is final when this returns. */
static void direct_start(nxc_op_t *op)
{
    struct nxc_direct_op *d = &op->state.direct;
    if (worker_gone(d->view)) {
        op->moved = 1;
        nxc_op_finish(op, NXC_OP_ERRORED, NXC_ERR_PEER_FAILED, "worker '%s' (pid %u) has "
                      "exited", op->peer->name, (unsigned)d->pid);
        return;
    }
    uint64_t open = make_state(d->gen, PH_OPEN, 0);
    uint64_t seen = atomic_load_explicit(&d->slot->state, memory_order_acquire);
    /* The key is read between an OPEN load and the claim: the passive side
     * writes a slot's key only before it opens it under a new generation. */
    if (seen != open || !key_is(d->slot, op->key) ||
        !atomic_compare_exchange_strong_explicit(&d->slot->state, &seen,
                                                 make_state(d->gen, PH_BUSY,
                                                            op->c->identity.pid),
                                                 memory_order_acq_rel, memory_order_acquire)) {
        op->moved = 1;
        nxc_op_refused(op, seen == open ? NXC_NACK_CLOSED : refusal_of(seen, d->gen));
        return;
    }
    int err = copy(op);
    atomic_store_explicit(&d->slot->state, make_state(d->gen, err ? PH_FAILED : PH_DONE, 0),
                          memory_order_release);
    op->moved = 1;
    end_poke(op);
    if (err)
        nxc_op_finish(op, NXC_OP_ERRORED, err == ESRCH ? NXC_ERR_PEER_FAILED : NXC_ERR_TRANSPORT,
                      "the same-host copy %s worker '%s' failed after %" PRIu64 " of %zu "
                      "bytes: %s", op->kind == NXC_OP_WRITE ? "into" : "from",
                      op->peer->name, d->moved, op->expected, strerror(err));
    else
        nxc_op_finish(op, NXC_OP_COMPLETE, NXC_OK, "complete");
}

static void direct_nothing(nxc_op_t *op)
{
    (void)op; /* the op is final before nxc_begin_*() returns */
}

static int direct_busy(const nxc_op_t *op)
{
    (void)op;
    return 0;
}

static uint64_t direct_bytes_moved(const nxc_op_t *op)
{
    return op->state.direct.moved;
}

static void direct_release(nxc_op_t *op)
{
    free(op->state.direct.remote); /* only active ops have this protocol */
    op->state.direct.remote = NULL;
}

const nxc_protocol_t nxc_protocol_direct = {
    .name = "same-host direct copy (process_vm_readv/writev)",
    .prepare = direct_prepare,
    .start = direct_start,
    .tell_moved = direct_nothing,
    .busy = direct_busy,
    .bytes_moved = direct_bytes_moved,
    .release = direct_release,
};
