/* Private: the connector, its tables, and the one loop that drives progress.
 *
 * Locking: one mutex per connector guards everything below and every UCX
 * call (the UCX worker runs in serialized mode). UCX callbacks run inside
 * ucp_worker_progress, hence with the lock held. Waiting uses a
 * leader/follower scheme: one waiting thread at a time (the leader) drives
 * the transport - spinning briefly, then sleeping in epoll_wait on the
 * connector's epoll fd *without* the lock - while the other waiters sleep on
 * a condition variable and are woken whenever progress changed any op's
 * state. A thread that changes state while the leader sleeps pokes the
 * wake eventfd so the leader re-arms. */
#ifndef NXC_CONNECTOR_H
#define NXC_CONNECTOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <ucp/api/ucp.h>

#include "codec/metadata.h"
#include "engine/keytable.h"
#include "engine/op.h"
#include "engine/peer.h"

#define NXC_CLOSED_KEYS 256 /* see closed below */

struct nxc_connector {
    pthread_mutex_t lock;
    atomic_uint     contenders;    /* threads queued on `lock` */
    pthread_cond_t  changed;      /* broadcast when ops change state */
    char            name[NXC_NAME_MAX + 1];
    nxc_identity_t  identity;
    unsigned        spin_us;
    nxc_wire_t      wire;          /* what passive ops publish */
    unsigned        n_in_progress; /* ops moving data: waiters spin longer */

    ucp_context_h   context;
    ucp_worker_h    worker;
    ucp_address_t  *worker_addr;
    size_t          worker_addr_len;
    uint64_t        memory_types;  /* what UCX can register */
    int             has_shm;       /* UCX may use shared memory to same-host peers */
    int             has_rdma;      /* UCX has InfiniBand/RoCE transports (rc, dc, ud) */
    int             tcp_only_am;   /* other peers over TCP, no RDMA transport (am.c) */
    unsigned        n_shm_peers;   /* known peers it does use it to (peer.c) */

    int             epfd;          /* the fd users poll: UCX efd + wake + pidfds */
    int             ucx_efd;
    int             wakefd;        /* eventfd to interrupt the leader's sleep */

    int             leader;        /* a thread is driving progress in a wait */
    int             sleeping;      /* ... and is blocked in epoll_wait */
    int             armed;         /* the fd is armed: a sleeper or a poller waits */
    int             poller_armed;  /* ... armed by nxc_progress_and_arm for a caller */
    int             after_backstop; /* the leader's last sleep ended by the cap */
    nxc_wakeup_stats_t wakeups;
    unsigned        followers;     /* threads blocked on `changed` */
    uint64_t        next_peer_serial;
    pthread_t       thread;        /* the optional progress thread */
    int             has_thread;
    int             stopping;      /* asks the progress thread to exit */

    nxc_op_t       *open_ops;      /* every live op, for teardown and peer failure */
    nxc_op_t       *zombies;       /* released ops UCX may still call back; freed
                                      after the worker is destroyed */
    int             tearing_down;
    unsigned        zombies_done;  /* zombies whose requests all finished */
    struct nxc_keytable passive_keys, /* passive ops still waiting for their peer */
                        active_keys;  /* active ops until final (key + tag) */
    /* Keys of the last passive ops that ended, and how (a NACK reason): a
     * late BEGIN for one is told why (completed, cancelled, released...).
     * A fixed ring, so memory stays bounded: a BEGIN for a key not here
     * (forgotten, or never ours) is answered NACK "closed" all the same. */
    struct nxc_closed_key {
        uint8_t     key[NXC_KEY_BYTES];
        uint8_t     reason;        /* enum nxc_nack_reason; 0: unused */
    }               closed[NXC_CLOSED_KEYS];
    unsigned        closed_next;
    uint64_t        next_tag;      /* tags of active ops: random start, +1 each */
    /* Keys of passive ops come from here: one getrandom per 64 keys (one
     * per op cost ~0.4 us). Handed-out bytes are wiped. */
    uint8_t         key_pool[64 * NXC_KEY_BYTES];
    unsigned        key_pool_left; /* bytes not handed out yet */
    const nxc_protocol_t *proto;   /* what new active ops use by default */
    int              proto_forced; /* NXC_PROTOCOL chose it: no per-op choice */
    nxc_peer_t     *peers;
    nxc_registration_t *regs;      /* nxc_mem_alloc and nxc_mem_register memory */
    struct nxc_regcache *regcache; /* see registration.h; NULL when off */
    unsigned        reg_cache;     /* its capacity from the config */
    int             direct_local;  /* passive ops offer same-host direct copies */
    struct nxc_gate *gate;         /* their slots (direct.h); NULL without direct_local */
    unsigned        reach_timeout_ms; /* NXC_REACH_TIMEOUT_MS, or the default */
    unsigned        addrless_peers;   /* peers with address-less BEGINs unanswered */
    uint64_t        unanswerable_begins; /* address-less BEGINs from peers we had no
                                          * endpoint to: dropped (peer.h, knows_us) */
    ucs_status_ptr_t *closing;     /* endpoint close requests still running */
    size_t          n_closing, cap_closing;
    unsigned        n_answering;   /* passive ops whose ACK/NACK has not left yet */
    unsigned        failing_peers; /* peers reported dead, failed after a drain */
    unsigned        unreached_peers; /* peers that have not answered yet (a hint:
                                        nxc_peers_check_reached recounts) */
    unsigned long   spoofed_notifications; /* rejected: wrong key or sender */
    unsigned        changes;       /* counts nxc_notify_change (a waiter may be done) */
    uint64_t        fds_checked_ns; /* when a progress pass last looked at the fds */
    unsigned        generation;    /* nxc_process_generation() at create */
    nxc_connector_t *live_next;    /* the process's live connectors (names) */
    int             name_claimed;  /* on that list */
};

/* NXC_OK in the process that created the connector; NXC_ERR_STATE with a
 * detail in a child forked from it, where the connector's UCX state, locks
 * and fds are copies it must not touch. Called first by every public call
 * that would drive or change the connector (no lock taken). */
int nxc_check_process(const nxc_connector_t *c);

/* Takes the connector lock. The progress leader yields it between passes
 * when someone is queued, so API calls never wait for a spin to end. */
void nxc_lock(nxc_connector_t *c);
void nxc_unlock(nxc_connector_t *c);

/* Live op list. */
void nxc_open_add(nxc_connector_t *c, nxc_op_t *op);
void nxc_open_remove(nxc_connector_t *c, nxc_op_t *op);

/* Records that op states changed: wakes followers and a sleeping leader. */
void nxc_notify_change(nxc_connector_t *c);

/* One non-blocking pass: UCX progress, endpoint closes, peer deaths seen on
 * the epoll fd (check_fds). `leading`: the waiting leader's pass, which
 * stops progressing UCX as soon as an op changed. Returns how much
 * happened. Lock held. */
unsigned nxc_progress_locked(nxc_connector_t *c, int check_fds, int leading);

/* A fresh unguessable key for a passive op. Lock held. */
int nxc_connector_new_key(nxc_connector_t *c, uint8_t key[NXC_KEY_BYTES]);

/* Whether a polling caller (nxc_op_status) should look at the fds in its
 * pass: each look is an epoll_wait syscall, so one polling an op in a
 * tight loop (Python's spin) looks once per 100 us; one calling now and
 * then looks every time. */
int nxc_fd_check_due(const nxc_connector_t *c);

/* A non-blocking pass that leaves the epoll fd armed (or readable when
 * events keep arriving), so a caller may sleep on it right after. Cheaper
 * paths (nxc_op_status) only progress: if they take events from an armed
 * fd, nxc_progress_locked makes the fd readable instead. */
unsigned nxc_progress_and_arm(nxc_connector_t *c);

/* Drives progress (as leader or follower) until done(arg) is true or the
 * deadline (absolute ns, UINT64_MAX = none) passes. Lock held on entry and
 * exit. Returns 0 or NXC_ERR_TIMED_OUT. */
int nxc_drive_until(nxc_connector_t *c, int (*done)(void *), void *arg,
                    uint64_t deadline_ns);

/* Keeps an endpoint-close request until UCX finishes it. */
void nxc_track_close(nxc_connector_t *c, ucs_status_ptr_t req);

#endif
