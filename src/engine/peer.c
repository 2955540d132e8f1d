#include "engine/peer.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/identity.h"
#include "common/util.h"
#include "engine/connector.h"
#include "engine/op.h"
#include "transport/transport.h"

static int same_incarnation(const nxc_peer_t *p, const char *name, size_t name_len,
                            const nxc_identity_t *id)
{
    return strlen(p->name) == name_len && memcmp(p->name, name, name_len) == 0 &&
           p->identity.pid == id->pid && p->identity.pidns == id->pidns &&
           memcmp(p->identity.host_id, id->host_id, NXC_HOST_ID_BYTES) == 0;
}

static nxc_peer_t *find_peer(nxc_connector_t *c, const char *name, size_t name_len,
                             const nxc_identity_t *id)
{
    for (nxc_peer_t *p = c->peers; p != NULL; p = p->next)
        if (!p->superseded && same_incarnation(p, name, name_len, id))
            return p;
    return NULL;
}

/* Whether the peer's worker is the one at this address. A connector
 * destroyed and created again under the same name in the same process
 * (or a NIXL agent restarted under its name, which carries no pid) has
 * the same identity but a new worker. */
static int same_worker(const nxc_peer_t *p, const uint8_t *addr, size_t len)
{
    return p->worker_addr == NULL || addr == NULL ||
           (p->worker_addr_len == len && memcmp(p->worker_addr, addr, len) == 0);
}

static void free_peer(nxc_connector_t *c, nxc_peer_t *p);
static void unlink_peer(nxc_connector_t *c, nxc_peer_t *p);

/* A new worker speaks under this peer's identity: the record is never
 * found again, and goes once no op refers to it. Its ops are left alone:
 * if the old worker is gone they end by their own timeouts or peer
 * failure, and if it lives on (two connectors of one name in one process)
 * they may still complete. */
static void supersede(nxc_connector_t *c, nxc_peer_t *p)
{
    p->superseded = 1;
    if (p->refs == 0 && !c->tearing_down) {
        unlink_peer(c, p);
        free_peer(c, p);
    }
}

/* Same-host peers are watched with a pidfd in the connector's epoll set:
 * it turns readable the moment the process exits. A peer in our own
 * process needs no watch. Failing to open one only loses promptness:
 * timeouts still bound every wait. */
static void watch_process(nxc_connector_t *c, nxc_peer_t *p)
{
    if (!p->same_host || p->identity.pid == c->identity.pid)
        return;
    p->pidfd = nxc_pidfd_open(p->identity.pid);
    if (p->pidfd < 0) {
        if (errno == ESRCH) {
            p->dead = 1;
            snprintf(p->reason, sizeof(p->reason), "worker '%s' (pid %u) has already exited",
                     p->name, p->identity.pid);
        }
        return;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = p->serial };
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, p->pidfd, &ev) != 0) {
        close(p->pidfd);
        p->pidfd = -1;
    }
}

/* Whether process `pid` shares our `ns` namespace (net, ipc, mnt). */
static int shares_namespace(uint32_t pid, const char *ns)
{
    char path[64];
    struct stat ours, theirs;
    snprintf(path, sizeof(path), "/proc/%u/ns/%s", pid, ns);
    if (stat(path, &theirs) != 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
    return stat(path, &ours) == 0 && ours.st_ino == theirs.st_ino && ours.st_dev == theirs.st_dev;
}

/* Whether UCX may reach the peer over shared memory: on our host, in our
 * pid, network, IPC and mount namespaces. Another network namespace is not
 * enough: UCX 1.13 reads a shared-memory FIFO only after a datagram to the
 * receiver's abstract unix socket woke it (adaptive progress), and abstract
 * sockets belong to one network namespace, so a wire-up written into the
 * FIFO of a peer in another one is never read (docs/PERFORMANCE.md,
 * containers). Such a peer gets an endpoint in peer-error mode, which UCX
 * builds on TCP only.
 *
 * Such a peer is also reached from the start: shared memory needs nothing
 * from it but its progress, so an answer that is late means the peer is
 * busy (64 writers queue behind its 64-slot receive FIFO, and it serves
 * them as its CPU allows), never that UCX cannot reach it, and its death is
 * seen by its pidfd. The first-answer deadline (nxc_peers_check_reached) is
 * for every other peer, where a missing answer is the only sign. Failing a
 * live shared-memory peer would not even stop our messages (its endpoint
 * cannot be force-closed): they land after our op ended, and its op then
 * waits for a DONE that never comes. */
static int via_shared_memory(const nxc_connector_t *c, const nxc_peer_t *p)
{
    return p->same_host && c->has_shm && shares_namespace(p->identity.pid, "net") &&
           shares_namespace(p->identity.pid, "ipc") && shares_namespace(p->identity.pid, "mnt");
}

static nxc_peer_t *new_peer(nxc_connector_t *c, const char *name, size_t name_len,
                            const nxc_identity_t *id)
{
    nxc_peer_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->owner = c;
    p->serial = c->next_peer_serial++;
    memcpy(p->name, name, name_len);
    p->name[name_len] = '\0';
    p->identity = *id;
    p->same_host = nxc_identity_same_host(id, &c->identity);
    p->pidfd = -1;
    watch_process(c, p);
    p->via_shm = via_shared_memory(c, p);
    c->n_shm_peers += (unsigned)p->via_shm;
    p->reached = p->via_shm;
    p->next = c->peers;
    c->peers = p;
    return p;
}

/* A sender we declared dead that speaks again was alive after all (it
 * stalled, or only its endpoint broke): it gets a record of its own, and
 * with it an endpoint our answers can take. */
static nxc_peer_t *find_live_sender(nxc_connector_t *c, const char *name, size_t name_len,
                                    const nxc_identity_t *id)
{
    for (nxc_peer_t *p = c->peers; p != NULL; p = p->next)
        if (!p->dead && !p->superseded && same_incarnation(p, name, name_len, id))
            return p;
    return NULL;
}

nxc_peer_t *nxc_peer_find_sender(nxc_connector_t *c, const char *name, size_t name_len,
                                 const nxc_identity_t *id)
{
    return find_live_sender(c, name, name_len, id);
}

static void stop_waiting_addrless(nxc_connector_t *c, nxc_peer_t *p)
{
    if (!p->addrless_waiting)
        return;
    p->addrless_waiting = 0;
    p->addrless_since = 0;
    c->addrless_peers--;
}

void nxc_peer_answered_us(nxc_connector_t *c, nxc_peer_t *p)
{
    p->knows_us = 1;
    stop_waiting_addrless(c, p);
}

void nxc_peer_sent_addrless(nxc_connector_t *c, nxc_peer_t *p)
{
    if (p->addrless_waiting)
        return;
    p->addrless_waiting = 1;
    c->addrless_peers++; /* the clock starts at the next check: none read here */
}

static void resend_with_address(nxc_connector_t *c, nxc_peer_t *p)
{
    p->knows_us = 0;
    stop_waiting_addrless(c, p);
    for (nxc_op_t *op = c->open_ops; op != NULL; op = op->open_next)
        if (op->peer == p && op->addr_omitted && !op->passive && !nxc_op_is_final(op))
            nxc_transport_resend_begin(op);
}

void nxc_peers_check_addrless(nxc_connector_t *c)
{
    uint64_t now = nxc_now_ns();
    for (nxc_peer_t *p = c->peers, *next; p != NULL && c->addrless_peers > 0; p = next) {
        next = p->next;
        if (!p->addrless_waiting || p->dead)
            continue;
        if (p->addrless_since == 0)
            p->addrless_since = now;
        else if (now - p->addrless_since >= c->reach_timeout_ms * 1000000ull)
            resend_with_address(c, p);
    }
}

nxc_peer_t *nxc_peer_for_sender(nxc_connector_t *c, const char *name, size_t name_len,
                                const nxc_identity_t *id, const uint8_t *addr, size_t addr_len)
{
    nxc_peer_t *p = find_live_sender(c, name, name_len, id);
    if (p != NULL && !same_worker(p, addr, addr_len)) {
        supersede(c, p);
        p = NULL;
    }
    if (p == NULL)
        p = new_peer(c, name, name_len, id);
    if (p != NULL) {
        p->refs++;
        /* It just sent us a message: it is alive and drives its connector,
         * so our answer's wait for its first reply (an endpoint's wire-up
         * under load) is not a sign that it cannot be reached. */
        p->reached = 1;
    }
    return p;
}

int nxc_peer_for_target(nxc_connector_t *c, const nxc_agent_blob_t *blob, nxc_peer_t **out)
{
    nxc_peer_t *p = find_peer(c, blob->name, blob->name_len, &blob->identity);
    if (p != NULL && !same_worker(p, blob->worker_addr, blob->worker_addr_len)) {
        supersede(c, p); /* a new incarnation: a peer of its own */
        p = NULL;
    }
    if (p == NULL && (p = new_peer(c, blob->name, blob->name_len, &blob->identity)) == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory for a peer");
    if (p->dead || p->failing)
        return nxc_fail(NXC_ERR_PEER_FAILED, "%s", p->reason);
    int rc = nxc_transport_connect(c, p, blob->worker_addr, blob->worker_addr_len);
    if (rc != NXC_OK)
        return rc;
    p->refs++;
    *out = p;
    return NXC_OK;
}

static void unlink_peer(nxc_connector_t *c, nxc_peer_t *p)
{
    for (nxc_peer_t **pp = &c->peers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            return;
        }
    }
}

ucp_rkey_h nxc_peer_cached_rkey(nxc_peer_t *p, const uint8_t *bytes, uint32_t len,
                                ucs_status_t *st)
{
    *st = UCS_OK;
    for (unsigned i = 0; i < p->n_cached_rkeys; i++) {
        struct nxc_cached_rkey *k = &p->rkey_cache[i];
        if (k->len == len && memcmp(k->bytes, bytes, len) == 0)
            return k->rkey;
    }
    if (p->n_cached_rkeys == NXC_PEER_RKEY_CACHE)
        return NULL;
    struct nxc_cached_rkey *k = &p->rkey_cache[p->n_cached_rkeys];
    k->bytes = malloc(len);
    if (k->bytes == NULL)
        return NULL;
    *st = ucp_ep_rkey_unpack(p->ep, bytes, &k->rkey);
    if (*st != UCS_OK) {
        free(k->bytes);
        return NULL;
    }
    memcpy(k->bytes, bytes, len);
    k->len = len;
    p->n_cached_rkeys++;
    return k->rkey;
}

/* Before the endpoint and the worker go. */
static void drop_cached_rkeys(nxc_peer_t *p)
{
    for (unsigned i = 0; i < p->n_cached_rkeys; i++) {
        ucp_rkey_destroy(p->rkey_cache[i].rkey);
        free(p->rkey_cache[i].bytes);
    }
    p->n_cached_rkeys = 0;
}

static void free_peer(nxc_connector_t *c, nxc_peer_t *p)
{
    c->n_shm_peers -= (unsigned)p->via_shm;
    stop_waiting_addrless(c, p);
    drop_cached_rkeys(p);
    nxc_direct_forget_peer(p);
    nxc_transport_disconnect(c, p);
    if (p->pidfd >= 0) {
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, p->pidfd, NULL);
        close(p->pidfd);
    }
    free(p->worker_addr);
    free(p);
}

/* Live peers stay cached with their endpoint (warm for the next op); dead
 * ones go as soon as nothing refers to them. */
void nxc_peer_unref(nxc_connector_t *c, nxc_peer_t *p)
{
    if (p == NULL || --p->refs > 0 || !(p->dead || p->superseded) || c->tearing_down)
        return;
    unlink_peer(c, p);
    free_peer(c, p);
}

static int depends_on(const nxc_op_t *op, const nxc_peer_t *p)
{
    return op->peer == p && !nxc_op_is_final(op);
}

int nxc_peer_report_failure(nxc_peer_t *p, const char *fmt, ...)
{
    if (p->dead || p->failing)
        return 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
    va_end(ap);
    p->failing = 1;
    p->owner->failing_peers++;
    return 1;
}

void nxc_peer_fail(nxc_connector_t *c, nxc_peer_t *p, const char *fmt, ...)
{
    if (p->dead)
        return;
    if (p->failing) {
        p->failing = 0;
        c->failing_peers--;
    } else {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
        va_end(ap);
    }
    p->dead = 1;
    p->refs++; /* keep p alive while its ops fail and release it */
    for (nxc_op_t *op = c->open_ops; op != NULL; op = op->open_next)
        if (depends_on(op, p))
            nxc_op_finish(op, NXC_OP_ERRORED, NXC_ERR_PEER_FAILED, "%s", p->reason);
    /* Requests still posted to it complete (with an error) once it is closed. */
    nxc_transport_disconnect(c, p);
    if (p->pidfd >= 0) {
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, p->pidfd, NULL);
        close(p->pidfd);
        p->pidfd = -1;
    }
    nxc_peer_unref(c, p);
}

int nxc_reach_timeout_from_env(unsigned *ms)
{
    *ms = NXC_REACH_TIMEOUT_MS;
    const char *text = getenv("NXC_REACH_TIMEOUT_MS");
    if (text == NULL || text[0] == '\0')
        return NXC_OK;
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || text[0] == '-' || v < NXC_REACH_TIMEOUT_MIN_MS ||
        v > UINT_MAX)
        return nxc_fail(NXC_ERR_INVALID_ARG, "NXC_REACH_TIMEOUT_MS is '%s'; use a number of "
                        "milliseconds, at least %d", text, NXC_REACH_TIMEOUT_MIN_MS);
    *ms = (unsigned)v;
    return NXC_OK;
}

void nxc_peers_check_reached(nxc_connector_t *c)
{
    uint64_t now = nxc_now_ns();
    unsigned waiting = 0;
    for (nxc_peer_t *p = c->peers; p != NULL; p = p->next) {
        if (p->reached || p->waiting_since == 0 || p->dead || p->failing)
            continue;
        if (now - p->waiting_since < c->reach_timeout_ms * 1000000ull) {
            waiting++;
            continue;
        }
        nxc_peer_report_failure(
            p, "worker '%s' did not answer within %g s: UCX cannot reach it over the "
            "transports it chose (check UCX_TLS and UCX_NET_DEVICES on both sides: another "
            "network namespace or host needs a device both reach, e.g. UCX_TLS=tcp "
            "UCX_NET_DEVICES=eth0), or it does not drive its connector",
            p->name, c->reach_timeout_ms / 1000.0);
    }
    c->unreached_peers = waiting;
}

void nxc_peers_disconnect_all(nxc_connector_t *c)
{
    for (nxc_peer_t *p = c->peers; p != NULL; p = p->next) {
        drop_cached_rkeys(p);
        nxc_transport_disconnect(c, p);
        p->ep = NULL;
    }
}

void nxc_peers_free_all(nxc_connector_t *c)
{
    while (c->peers != NULL) {
        nxc_peer_t *p = c->peers;
        c->peers = p->next;
        free_peer(c, p);
    }
}
