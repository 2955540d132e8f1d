#include "engine/connector.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/encoding.h"
#include "common/error.h"
#include "common/identity.h"
#include "common/log.h"
#include "common/util.h"
#include "transport/transport.h"

#define DEFAULT_SPIN_US      50u
#define BUSY_SPIN_FACTOR     20u   /* spin while transfers are in flight */
#define MAX_SPIN_US          1000000u
#define PROGRESS_BURST       64u   /* UCX progress calls per pass, to bound lock hold */
#define FD_CHECK_INTERVAL    256u  /* spin passes between looks at pidfds */
#define FD_CHECK_NS          100000u /* nxc_op_status: at most one look per 100 us */
#define CLOCK_EVERY          4u    /* idle spin passes per clock read (lead) */
/* Longest sleep while any op is open and not final. UCX 1.13's wake-up
 * misses some shared-memory progress: both sides of a rendezvous were seen
 * asleep on armed workers with the transfer outstanding (the passive side's
 * op not yet begun), until a timeout woke one (e2e_transfer_proc_pthread
 * next to another test, 2 cores). While anything is pending we never sleep
 * longer than this, whatever the fd says; an idle connector sleeps freely. */
#define BUSY_SLEEP_MAX_MS    10
#define CLOSE_GRACE_NS       (2ull * 1000000000ull)
#define DRAIN_QUIET_CALLS    4u      /* see drain_transport */
#define DRAIN_MAX_CALLS      10000u

/* epoll tags: peers are tagged with their serial (>= NXC_TAG_FIRST_PEER)
 * rather than a pointer, because a peer may be freed while another thread
 * sleeps in epoll_wait holding its event. */
#define NXC_TAG_UCX  0u
#define NXC_TAG_WAKE 1u

/* ---- live ops ---------------------------------------------------------------- */

void nxc_open_add(nxc_connector_t *c, nxc_op_t *op)
{
    op->open_prev = NULL;
    op->open_next = c->open_ops;
    if (c->open_ops != NULL)
        c->open_ops->open_prev = op;
    c->open_ops = op;
}

void nxc_open_remove(nxc_connector_t *c, nxc_op_t *op)
{
    if (op->open_prev != NULL)
        op->open_prev->open_next = op->open_next;
    else if (c->open_ops == op)
        c->open_ops = op->open_next;
    if (op->open_next != NULL)
        op->open_next->open_prev = op->open_prev;
    op->open_prev = op->open_next = NULL;
}

/* ---- progress ---------------------------------------------------------------- */

void nxc_lock(nxc_connector_t *c)
{
    atomic_fetch_add_explicit(&c->contenders, 1, memory_order_relaxed);
    pthread_mutex_lock(&c->lock);
    atomic_fetch_sub_explicit(&c->contenders, 1, memory_order_relaxed);
}

void nxc_unlock(nxc_connector_t *c)
{
    pthread_mutex_unlock(&c->lock);
}

/* Between two progress passes: let queued API callers in. */
static void let_others_in(nxc_connector_t *c)
{
    if (atomic_load_explicit(&c->contenders, memory_order_relaxed) == 0)
        return;
    pthread_mutex_unlock(&c->lock);
    sched_yield();
    nxc_lock(c);
}

void nxc_notify_change(nxc_connector_t *c)
{
    c->changes++;
    if (c->followers > 0)
        pthread_cond_broadcast(&c->changed);
    if (c->sleeping)
        (void)eventfd_write(c->wakefd, 1);
}

void nxc_track_close(nxc_connector_t *c, ucs_status_ptr_t req)
{
    if (c->n_closing == c->cap_closing) {
        size_t cap = c->cap_closing ? 2 * c->cap_closing : 8;
        ucs_status_ptr_t *grown = realloc(c->closing, cap * sizeof(*grown));
        if (grown == NULL) {
            ucp_request_free(req); /* UCX finishes it on its own */
            return;
        }
        c->closing = grown;
        c->cap_closing = cap;
    }
    c->closing[c->n_closing++] = req;
}

static unsigned reap_closed_endpoints(nxc_connector_t *c)
{
    unsigned reaped = 0;
    for (size_t i = 0; i < c->n_closing;) {
        if (ucp_request_check_status(c->closing[i]) == UCS_INPROGRESS) {
            i++;
            continue;
        }
        ucp_request_free(c->closing[i]);
        c->closing[i] = c->closing[--c->n_closing];
        reaped++;
    }
    return reaped;
}

static nxc_peer_t *peer_by_serial(nxc_connector_t *c, uint64_t serial)
{
    for (nxc_peer_t *p = c->peers; p != NULL; p = p->next)
        if (p->serial == serial)
            return p;
    return NULL;
}

/* Drains the wake eventfd. Only a caller that arms the transport before
 * anyone sleeps again may do this (the leader after its own sleep, and
 * nxc_progress_and_arm): the wake-up is how a sleeping leader, or a caller
 * polling nxc_connector_fd() in its own loop, learns that it must come back
 * and re-arm. Drained anywhere else (nxc_op_status on another thread, say),
 * that sleeper would sleep on an unarmed worker until its deadline. */
static void drain_wake(nxc_connector_t *c)
{
    eventfd_t drop;
    (void)eventfd_read(c->wakefd, &drop);
}

/* A readable pidfd: that peer exited. Only noted here; fail_reported_peers
 * acts on it after the transport has been drained. */
static unsigned handle_fd_events(nxc_connector_t *c, const struct epoll_event *ev, int n)
{
    unsigned handled = 0;
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u64 != NXC_TAG_WAKE && ev[i].data.u64 != NXC_TAG_UCX) {
            nxc_peer_t *p = peer_by_serial(c, ev[i].data.u64);
            if (p != NULL)
                handled += (unsigned)nxc_peer_report_failure(
                    p, "worker '%s' (pid %u) exited", p->name, p->identity.pid);
        }
    }
    return handled;
}

/* Progress until UCX has nothing more to hand us. A peer that wrote, saw
 * COMPLETE and exited left its last messages (data, DONE) in a shared-memory
 * FIFO or a socket buffer, and the event telling us it died (its pidfd, an
 * endpoint error) often arrives in the same epoll batch or progress call:
 * those messages are processed before the peer's ops are failed, so a
 * transfer that finished is reported COMPLETE, not PEER_FAILED. Quiet means
 * DRAIN_QUIET_CALLS empty calls in a row; DRAIN_MAX_CALLS bounds the time
 * other busy peers could keep us here. */
static unsigned drain_transport(nxc_connector_t *c)
{
    unsigned n = 0, quiet = 0;
    for (unsigned i = 0; i < DRAIN_MAX_CALLS && quiet < DRAIN_QUIET_CALLS; i++) {
        unsigned k = ucp_worker_progress(c->worker);
        quiet = k > 0 ? 0 : quiet + 1;
        n += k;
    }
    return n;
}

static unsigned fail_reported_peers(nxc_connector_t *c)
{
    unsigned n = drain_transport(c);
    for (nxc_peer_t *p = c->peers, *next; p != NULL && c->failing_peers > 0; p = next) {
        next = p->next; /* nxc_peer_fail may free p */
        if (p->failing) {
            nxc_peer_fail(c, p, "%s", p->reason);
            n++;
        }
    }
    return n;
}

static void reap_zombies(nxc_connector_t *c)
{
    for (nxc_op_t **pp = &c->zombies; *pp != NULL && c->zombies_done > 0;) {
        nxc_op_t *z = *pp;
        if (z->inflight > 0) {
            pp = &z->open_next;
            continue;
        }
        *pp = z->open_next;
        c->zombies_done--;
        nxc_op_destroy(z);
    }
}

int nxc_connector_new_key(nxc_connector_t *c, uint8_t key[NXC_KEY_BYTES])
{
    if (c->key_pool_left < NXC_KEY_BYTES) {
        int rc = nxc_random_bytes(c->key_pool, sizeof c->key_pool);
        if (rc != NXC_OK)
            return rc;
        c->key_pool_left = sizeof c->key_pool;
    }
    uint8_t *k = c->key_pool + sizeof c->key_pool - c->key_pool_left;
    memcpy(key, k, NXC_KEY_BYTES);
    explicit_bzero(k, NXC_KEY_BYTES); /* a key lives only in its op */
    c->key_pool_left -= NXC_KEY_BYTES;
    return NXC_OK;
}

int nxc_fd_check_due(const nxc_connector_t *c)
{
    return nxc_now_ns() - c->fds_checked_ns >= FD_CHECK_NS;
}

unsigned nxc_progress_locked(nxc_connector_t *c, int check_fds, int leading)
{
    unsigned n = 0, changes = c->changes;
    /* The leader's burst ends once something changed, so that it looks at
     * its op at once rather than after one more (idle) UCX call. */
    for (unsigned i = 0; i < PROGRESS_BURST && !(leading && c->changes != changes) &&
                         ucp_worker_progress(c->worker) != 0; i++)
        n++;
    if (check_fds) {
        c->fds_checked_ns = nxc_now_ns();
        struct epoll_event ev[16];
        int k = epoll_wait(c->epfd, ev, 16, 0);
        if (k > 0)
            n += handle_fd_events(c, ev, k);
    }
    if (c->gate != NULL)
        n += nxc_gate_check(c);
    if (c->unreached_peers > 0)
        nxc_peers_check_reached(c);
    if (c->addrless_peers > 0 && check_fds)
        nxc_peers_check_addrless(c);
    if (c->failing_peers > 0)
        n += fail_reported_peers(c);
    if (c->zombies_done > 0)
        reap_zombies(c);
    if (c->n_closing > 0)
        n += reap_closed_endpoints(c);
    /* Progress after arming may take the very events the fd was armed for:
     * make the fd readable so whoever polls it comes back and re-arms. */
    if (n > 0 && c->armed) {
        c->armed = 0;
        c->poller_armed = 0;
        (void)eventfd_write(c->wakefd, 1);
    }
    return n;
}

static int ms_until(uint64_t deadline)
{
    if (deadline == UINT64_MAX)
        return -1;
    uint64_t now = nxc_now_ns();
    if (deadline <= now)
        return 0;
    uint64_t ms = (deadline - now + 999999) / 1000000;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

static int sleep_limit_ms(const nxc_connector_t *c)
{
    return c->n_in_progress > 0 || c->passive_keys.count > 0 || c->n_answering > 0
               ? BUSY_SLEEP_MAX_MS : -1;
}

/* Sleeps on the epoll fd without the lock. The transport must be armed. */
static void sleep_on_fd(nxc_connector_t *c, uint64_t deadline)
{
    struct epoll_event ev[16];
    int ms = ms_until(deadline), limit = sleep_limit_ms(c);
    int capped = limit >= 0 && (ms < 0 || ms > limit);
    if (capped)
        ms = limit;
    c->sleeping = 1;
    nxc_unlock(c);
    int k = epoll_wait(c->epfd, ev, 16, ms);
    nxc_lock(c);
    c->sleeping = 0;
    c->wakeups.sleeps++;
    if (k > 0) {
        c->wakeups.fd_wakeups++;
    } else if (k == 0 && capped) {
        c->wakeups.backstop_fired++;
        c->after_backstop = 1;
    }
    drain_wake(c); /* ours; lead() arms again before the next sleep */
    if (k > 0)
        handle_fd_events(c, ev, k);
}

/* Whether the pass after a backstop wake-up found work: then UCX's fd had
 * stayed quiet about it. */
static void note_backstop_pass(nxc_connector_t *c, unsigned n)
{
    if (!c->after_backstop)
        return;
    c->after_backstop = 0;
    if (n > 0)
        c->wakeups.backstop_served++;
}

/* How long to keep polling after the last event. Waking a sleeping thread
 * costs ~75 us on this kind of VM, and a transfer's completion chains
 * several such hops (data, acknowledgement, DONE), so while transfers are in
 * flight the leader spins BUSY_SPIN_FACTOR times longer than when idle. */
static uint64_t spin_window_ns(const nxc_connector_t *c)
{
    uint64_t us = c->spin_us;
    /* Only where shared memory is in play: over TCP the wake-up is small
     * next to the transport's latency, and spinning steals the CPU the
     * kernel needs to move the bytes (measured: 16 MiB reads over TCP
     * loopback fell from 3.6 to 1.4 GB/s on two cores). */
    if (c->n_in_progress > 0 && c->n_shm_peers > 0)
        us *= BUSY_SPIN_FACTOR;
    return us * 1000u;
}

/* The leader's loop: progress while there is work, spin a little when there
 * is none (a completion is often microseconds away), then sleep. */
static void lead(nxc_connector_t *c, int (*done)(void *), void *arg, uint64_t deadline)
{
    uint64_t now = nxc_now_ns(), spin_until = now + spin_window_ns(c);
    int slept = 0;
    for (unsigned pass = 1; !done(arg); pass++) {
        unsigned n = nxc_progress_locked(c, slept || pass % FD_CHECK_INTERVAL == 0, 1);
        slept = 0;
        note_backstop_pass(c, n);
        if (done(arg))
            return;
        /* The clock costs as much as an idle progress pass here (87 ns on
         * this VM): read it on every CLOCK_EVERY-th pass that found
         * nothing, so that a completion is seen sooner. */
        if (n > 0 || pass % CLOCK_EVERY == 0)
            now = nxc_now_ns();
        if (now >= deadline)
            return;
        if (n > 0 || now < spin_until) {
            if (n > 0)
                spin_until = now + spin_window_ns(c);
            /* Creating, cancelling or releasing ops must not wait for our
             * spin to end. */
            let_others_in(c);
            continue;
        }
        if (nxc_transport_arm(c, 0) != 0) {
            spin_until = now + spin_window_ns(c);
            continue;
        }
        c->armed = 1; /* another thread's progress now wakes us (nxc_progress_locked) */
        sleep_on_fd(c, deadline);
        slept = 1;
        now = nxc_now_ns();
        spin_until = now + spin_window_ns(c);
    }
}

static void follow(nxc_connector_t *c, uint64_t deadline)
{
    c->followers++;
    if (deadline == UINT64_MAX) {
        pthread_cond_wait(&c->changed, &c->lock);
    } else {
        struct timespec ts = { .tv_sec = (time_t)(deadline / 1000000000ull),
                               .tv_nsec = (long)(deadline % 1000000000ull) };
        pthread_cond_timedwait(&c->changed, &c->lock, &ts);
    }
    c->followers--;
}

int nxc_drive_until(nxc_connector_t *c, int (*done)(void *), void *arg, uint64_t deadline)
{
    for (;;) {
        if (done(arg))
            return NXC_OK;
        if (nxc_now_ns() >= deadline) {
            /* One last non-blocking look: a zero timeout still checks. */
            nxc_progress_and_arm(c);
            return done(arg) ? NXC_OK : NXC_ERR_TIMED_OUT;
        }
        if (c->leader) {
            follow(c, deadline);
            continue;
        }
        c->leader = 1;
        lead(c, done, arg, deadline);
        c->leader = 0;
        /* Hand leadership to a follower whose op is still pending. */
        if (c->followers > 0)
            pthread_cond_broadcast(&c->changed);
    }
}

/* ---- public connector API -------------------------------------------------- */

int nxc_check_process(const nxc_connector_t *c)
{
    if (c->generation == nxc_process_generation())
        return NXC_OK;
    return nxc_fail(NXC_ERR_STATE, "this connector belongs to process %u; a process forked "
                    "from it (pid %d) cannot use it or its ops: create a new connector here",
                    c->identity.pid, (int)getpid());
}

static int check_config(const nxc_connector_config_t *cfg)
{
    if (cfg == NULL)
        return NXC_OK;
    if (cfg->field_mask & NXC_CONFIG_NAME) {
        size_t len = cfg->name ? strlen(cfg->name) : 0;
        if (len == 0 || len > NXC_NAME_MAX)
            return nxc_fail(NXC_ERR_INVALID_ARG, "the worker name must be 1 to %d bytes; "
                            "got %zu", NXC_NAME_MAX, len);
    }
    if ((cfg->field_mask & NXC_CONFIG_SPIN_US) && cfg->spin_us > MAX_SPIN_US)
        return nxc_fail(NXC_ERR_INVALID_ARG, "spin_us %u is above the limit of %u",
                        cfg->spin_us, MAX_SPIN_US);
    if ((cfg->field_mask & NXC_CONFIG_REG_CACHE) && cfg->reg_cache > NXC_REG_CACHE_MAX)
        return nxc_fail(NXC_ERR_INVALID_ARG, "reg_cache %u is above the limit of %u",
                        cfg->reg_cache, NXC_REG_CACHE_MAX);
    if ((cfg->field_mask & NXC_CONFIG_WIRE) && cfg->wire != NXC_WIRE_NXC &&
        cfg->wire != NXC_WIRE_NIXL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "wire %d is neither NXC_WIRE_NXC nor NXC_WIRE_NIXL",
                        (int)cfg->wire);
    return NXC_OK;
}

/* direct_local when the config leaves it unset: NXC_DIRECT_LOCAL=0|1,
 * else on. */
static int direct_local_from_env(int *on)
{
    const char *text = getenv("NXC_DIRECT_LOCAL");
    *on = 1;
    if (text == NULL || text[0] == '\0')
        return NXC_OK;
    if ((text[0] != '0' && text[0] != '1') || text[1] != '\0')
        return nxc_fail(NXC_ERR_INVALID_ARG, "NXC_DIRECT_LOCAL is '%s'; use 0 (same-host ops "
                        "by messages) or 1 (direct copies, the default)", text);
    *on = text[0] == '1';
    return NXC_OK;
}

static int apply_config(nxc_connector_t *c, const nxc_connector_config_t *cfg)
{
    c->spin_us = DEFAULT_SPIN_US;
    if (cfg != NULL && (cfg->field_mask & NXC_CONFIG_SPIN_US))
        c->spin_us = cfg->spin_us;
    c->reg_cache = NXC_REG_CACHE_DEFAULT;
    if (cfg != NULL && (cfg->field_mask & NXC_CONFIG_REG_CACHE))
        c->reg_cache = cfg->reg_cache;
    c->wire = cfg != NULL && (cfg->field_mask & NXC_CONFIG_WIRE) ? cfg->wire : NXC_WIRE_NXC;
    if (cfg != NULL && (cfg->field_mask & NXC_CONFIG_DIRECT_LOCAL))
        c->direct_local = cfg->direct_local != 0;
    else {
        int rc = direct_local_from_env(&c->direct_local);
        if (rc != NXC_OK)
            return rc;
    }
    if (cfg != NULL && (cfg->field_mask & NXC_CONFIG_NAME)) {
        strcpy(c->name, cfg->name);
        return NXC_OK;
    }
    uint8_t raw[16];
    int rc = nxc_random_bytes(raw, sizeof(raw));
    if (rc == NXC_OK)
        nxc_hex_encode(raw, sizeof(raw), c->name);
    return rc;
}

static int init_sync(nxc_connector_t *c)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&c->changed, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0 || pthread_mutex_init(&c->lock, NULL) != 0)
        return nxc_fail(NXC_ERR_SYSTEM, "cannot create the connector's lock");
    return NXC_OK;
}

static int init_fds(nxc_connector_t *c)
{
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    c->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->epfd < 0 || c->wakefd < 0) {
        int err = errno;
        return nxc_fail(NXC_ERR_SYSTEM, "cannot create the connector's event fds: %s%s",
                        strerror(err), nxc_limit_hint(0));
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = NXC_TAG_WAKE };
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->wakefd, &ev) != 0)
        return nxc_fail(NXC_ERR_SYSTEM, "epoll_ctl failed: %s", strerror(errno));
    return NXC_OK;
}

/* ---- names: one live connector per name in a process ------------------ */

/* Peers tell workers apart by name and process, so two live connectors of
 * one process under one name would be taken for one worker: an answer meant
 * for one reaches the other, which drops it, and the op waits out its
 * timeout. So a name is claimed at create and given back at destroy. The
 * lock word holds the holder's process generation: a child forked while
 * the parent held it takes it all the same (nobody in the child will give
 * it back), and the parent's connectors on the list, which the child cannot
 * use, do not count there. */
static _Atomic unsigned long names_lock; /* generation << 1 | 1 while held */
static nxc_connector_t *live_connectors;

static void names_lock_take(unsigned gen)
{
    unsigned long mine = (unsigned long)gen << 1 | 1;
    for (;;) {
        unsigned long cur = atomic_load(&names_lock);
        if (cur == mine)
            sched_yield(); /* held by another thread of this process */
        else if (atomic_compare_exchange_weak(&names_lock, &cur, mine))
            return;
    }
}

static void names_lock_give(void)
{
    atomic_store(&names_lock, 0);
}

static int claim_name(nxc_connector_t *c)
{
    names_lock_take(c->generation);
    for (nxc_connector_t **pp = &live_connectors; *pp != NULL;) {
        nxc_connector_t *x = *pp;
        if (x->generation != c->generation) { /* a parent's: not ours to use */
            *pp = x->live_next;
            continue;
        }
        if (strcmp(x->name, c->name) == 0) {
            names_lock_give();
            return nxc_fail(NXC_ERR_INVALID_ARG, "a connector named '%s' is already live in "
                            "this process: give each live connector its own name (peers tell "
                            "workers apart by name and process)", c->name);
        }
        pp = &x->live_next;
    }
    c->live_next = live_connectors;
    live_connectors = c;
    c->name_claimed = 1;
    names_lock_give();
    return NXC_OK;
}

static void give_name_back(nxc_connector_t *c)
{
    if (!c->name_claimed)
        return;
    names_lock_take(c->generation);
    for (nxc_connector_t **pp = &live_connectors; *pp != NULL; pp = &(*pp)->live_next)
        if (*pp == c) {
            *pp = c->live_next;
            break;
        }
    names_lock_give();
    c->name_claimed = 0;
}

static void free_connector(nxc_connector_t *c)
{
    give_name_back(c);
    nxc_transport_fini(c);
    if (c->epfd >= 0)
        close(c->epfd);
    if (c->wakefd >= 0)
        close(c->wakefd);
    nxc_keys_fini(&c->passive_keys);
    nxc_keys_fini(&c->active_keys);
    nxc_gate_destroy(c);
    explicit_bzero(c->key_pool, sizeof c->key_pool);
    free(c->closing);
    pthread_cond_destroy(&c->changed);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static int stop_requested(void *arg)
{
    return ((nxc_connector_t *)arg)->stopping;
}

/* The optional progress thread is a permanent leader: it sleeps on the
 * epoll fd and drives the transport; waiters follow it. */
static void *progress_thread_main(void *arg)
{
    nxc_connector_t *c = arg;
    nxc_lock(c);
    nxc_drive_until(c, stop_requested, c, UINT64_MAX);
    nxc_unlock(c);
    return NULL;
}

static int start_progress_thread(nxc_connector_t *c, const nxc_connector_config_t *cfg)
{
    if (cfg == NULL || !(cfg->field_mask & NXC_CONFIG_PROGRESS_THREAD) || !cfg->progress_thread)
        return NXC_OK;
    int rc = pthread_create(&c->thread, NULL, progress_thread_main, c);
    if (rc != 0)
        return nxc_fail(NXC_ERR_SYSTEM, "cannot start the progress thread: %s", strerror(rc));
    c->has_thread = 1;
    return NXC_OK;
}

static void stop_progress_thread(nxc_connector_t *c)
{
    if (!c->has_thread)
        return;
    nxc_lock(c);
    c->stopping = 1;
    nxc_notify_change(c);
    nxc_unlock(c);
    pthread_join(c->thread, NULL);
    c->has_thread = 0;
}

int nxc_connector_create(const nxc_connector_config_t *cfg, nxc_connector_t **out)
{
    if (out == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "out must not be NULL");
    nxc_log_init();
    int rc = check_config(cfg);
    if (rc == NXC_OK)
        rc = nxc_require_free_fds();
    if (rc != NXC_OK)
        return rc;
    nxc_connector_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for a connector");
    c->epfd = c->wakefd = c->ucx_efd = -1;
    c->generation = nxc_process_generation();
    c->next_peer_serial = NXC_TAG_WAKE + 1;
    rc = init_sync(c);
    if (rc == NXC_OK)
        rc = apply_config(c, cfg);
    if (rc == NXC_OK)
        rc = claim_name(c);
    if (rc == NXC_OK)
        rc = nxc_reach_timeout_from_env(&c->reach_timeout_ms);
    if (rc == NXC_OK)
        rc = nxc_identity_self(&c->identity);
    if (rc == NXC_OK)
        rc = init_fds(c);
    if (rc == NXC_OK)
        rc = nxc_keys_init(&c->passive_keys);
    if (rc == NXC_OK)
        rc = nxc_keys_init(&c->active_keys);
    if (rc == NXC_OK) /* tags of two connectors' ops then never meet */
        rc = nxc_random_bytes(&c->next_tag, sizeof(c->next_tag));
    if (rc == NXC_OK)
        rc = nxc_transport_init(c);
    if (rc == NXC_OK)
        nxc_gate_create(c);
    if (rc == NXC_OK)
        rc = start_progress_thread(c, cfg);
    if (rc != NXC_OK) {
        free_connector(c);
        return rc;
    }
    nxc_clear_error();
    NXC_LOG(NXC_LOG_INFO, "connector '%s' created", c->name);
    *out = c;
    return NXC_OK;
}

static int closes_done(void *arg)
{
    return ((nxc_connector_t *)arg)->n_closing == 0;
}

void nxc_connector_destroy(nxc_connector_t *c)
{
    if (c == NULL || nxc_check_process(c) != NXC_OK)
        return; /* a forked child's copy: its exit reclaims it */
    stop_progress_thread(c);
    nxc_lock(c);
    while (c->open_ops != NULL)
        nxc_op_release_locked(c->open_ops);
    nxc_peers_disconnect_all(c);
    nxc_drive_until(c, closes_done, c, nxc_now_ns() + CLOSE_GRACE_NS);
    for (size_t i = 0; i < c->n_closing; i++)
        ucp_request_free(c->closing[i]);
    c->n_closing = 0;
    nxc_transport_free_all(c);
    c->tearing_down = 1;
    for (nxc_op_t *z = c->zombies; z != NULL; z = z->open_next)
        nxc_transport_drop_remote(z); /* rkeys must go before the worker */
    nxc_unlock(c);
    /* Destroying the worker may still call back into zombie ops. */
    nxc_transport_fini(c);
    while (c->zombies != NULL) {
        nxc_op_t *z = c->zombies;
        c->zombies = z->open_next;
        nxc_op_destroy(z);
    }
    nxc_peers_free_all(c);
    free_connector(c);
}

const char *nxc_connector_name(const nxc_connector_t *c)
{
    return c == NULL ? NULL : c->name;
}

int nxc_connector_fd(nxc_connector_t *c)
{
    if (c == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "connector must not be NULL");
    if (nxc_check_process(c) != NXC_OK)
        return NXC_ERR_STATE;
    return c->epfd;
}

int nxc_connector_timeout_ms(nxc_connector_t *c)
{
    if (c == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "connector must not be NULL");
    if (nxc_check_process(c) != NXC_OK)
        return NXC_ERR_STATE;
    nxc_lock(c);
    int ms = sleep_limit_ms(c);
    nxc_unlock(c);
    return ms;
}

int nxc_connector_wakeups(nxc_connector_t *c, nxc_wakeup_stats_t *out)
{
    if (c == NULL || out == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "connector and out must not be NULL");
    nxc_lock(c);
    *out = c->wakeups;
    nxc_unlock(c);
    return NXC_OK;
}

unsigned nxc_progress_and_arm(nxc_connector_t *c)
{
    if (!c->sleeping)
        drain_wake(c); /* we arm below, or make the fd readable again */
    unsigned n = nxc_progress_locked(c, 1, 0);
    for (int i = 0; i < 16; i++) {
        if (nxc_transport_arm(c, 1) == 0) {
            c->armed = 1;
            c->poller_armed = 1;
            return n;
        }
        n += nxc_progress_locked(c, 0, 0);
    }
    /* Events keep coming: make the fd readable so a poller comes back. */
    c->armed = 0;
    c->poller_armed = 0;
    (void)eventfd_write(c->wakefd, 1);
    return n;
}

int nxc_connector_progress(nxc_connector_t *c)
{
    if (c == NULL)
        return nxc_fail(NXC_ERR_INVALID_ARG, "connector must not be NULL");
    if (nxc_check_process(c) != NXC_OK)
        return NXC_ERR_STATE;
    nxc_lock(c);
    unsigned n = nxc_progress_and_arm(c);
    nxc_unlock(c);
    return n > 0x7fffffff ? 0x7fffffff : (int)n;
}

int nxc_mem_alloc(nxc_connector_t *c, size_t size, void **ptr)
{
    if (c == NULL || ptr == NULL || size == 0)
        return nxc_fail(NXC_ERR_INVALID_ARG, "connector and ptr must not be NULL, size not 0");
    if (nxc_check_process(c) != NXC_OK)
        return NXC_ERR_STATE;
    nxc_lock(c);
    int rc = nxc_transport_alloc(c, size, ptr);
    nxc_unlock(c);
    return rc;
}

void nxc_mem_free(nxc_connector_t *c, void *ptr)
{
    if (c == NULL || ptr == NULL || nxc_check_process(c) != NXC_OK)
        return;
    nxc_lock(c);
    nxc_transport_free(c, ptr);
    nxc_unlock(c);
}
