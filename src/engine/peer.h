/* Private: the peers a connector knows, and how it learns of their death.
 *
 * A peer is one remote worker incarnation (name + pid + host). The active
 * side knows its target from the metadata (and holds a UCX endpoint to it);
 * the passive side learns who is moving its data from the control messages
 * the active side sends (BEGIN/DONE/ABORT). Endpoints are created once per
 * peer, shared by all ops to it and reference-counted; a peer that fails is
 * marked dead, every op that depends on it is failed, and its endpoint is
 * closed.
 *
 * Death detection: across hosts UCX's peer error handling reports it. To a
 * peer over shared memory (same host and namespaces: via_shm) that mode
 * would cost the shared-memory transports (UCX 1.13 offers none in
 * peer-error mode: docs/INTEROP.md, NIXL peers), so its endpoint is created
 * without it and a pidfd registered in the connector's epoll set watches
 * the process instead; a same-host peer in another network, IPC or mount
 * namespace gets both (TCP in peer-error mode, and the pidfd). */
#ifndef NXC_PEER_H
#define NXC_PEER_H

#include <ucp/api/ucp.h>

#include "codec/metadata.h"

typedef struct nxc_connector nxc_connector_t;

#define NXC_PEER_RKEY_CACHE 16

typedef struct nxc_peer {
    struct nxc_peer *next;
    nxc_connector_t *owner;
    uint64_t         serial;    /* epoll tag: unique per connector */
    char             name[NXC_NAME_MAX + 1];
    nxc_identity_t   identity;
    int              same_host;
    int              via_shm;   /* UCX may use shared memory to it (peer.c) */
    int              ucx_reports_failure; /* endpoint in UCX peer-error mode */
    ucp_ep_h         ep;        /* NULL until we need to send to it */
    uint8_t         *worker_addr;
    size_t           worker_addr_len;
    int              pidfd;     /* -1 when not watched */
    unsigned         refs;      /* ops that depend on this peer */
    /* Unpacked rkeys of the peer's nxc_mem_alloc memory: unpacking one maps
     * the whole shared segment, so it is done once per peer, not per op. */
    struct nxc_cached_rkey {
        uint8_t   *bytes;
        uint32_t   len;
        ucp_rkey_h rkey;
    }                rkey_cache[NXC_PEER_RKEY_CACHE];
    unsigned         n_cached_rkeys;
    /* Reachability: set at once for a peer via_shm, else once a message
     * we sent it completed or it sent us one. Until then, waiting_since is
     * when we first posted one (0: none posted yet). */
    int              reached;
    uint64_t         waiting_since;
    int              dead;
    int              failing;   /* reported dead (pidfd, UCX); failed after a drain */
    char             reason[320];
    /* Our BEGINs to it carry our worker address (215 bytes on one host)
     * only until it has answered one: its answer came over its endpoint to
     * us, which it keeps while it deems us alive. A passive side that lost
     * that endpoint (it declared us failed) drops an address-less BEGIN
     * rather than guess; so while such BEGINs are unanswered,
     * addrless_since is when we first noticed (0: none waiting), and after
     * c->reach_timeout_ms they go again with the address
     * (nxc_peers_check_addrless). */
    int              superseded; /* a new worker took its identity (peer.c) */
    int              knows_us;
    /* Same-host direct copies (direct.h): its gate mapped here, or the
     * path refused for good (another user, no CMA). */
    struct nxc_gate_view *gate_view;
    int              direct_refused;
    int              addrless_waiting;
    uint64_t         addrless_since;
} nxc_peer_t;

/* Finds or creates the peer the metadata's agent blob names, with an
 * endpoint. Fails with NXC_ERR_PEER_FAILED if that incarnation is known
 * dead. Takes a reference. */
int nxc_peer_for_target(nxc_connector_t *c, const nxc_agent_blob_t *blob,
                        nxc_peer_t **out);

/* Finds or creates the peer that sent a control message (no endpoint).
 * `addr`, the worker address the message carried (NULL: none), tells a
 * connector created again under the same name from the one before it.
 * Takes a reference. Returns NULL on allocation failure. */
nxc_peer_t *nxc_peer_for_sender(nxc_connector_t *c, const char *name, size_t name_len,
                                const nxc_identity_t *id, const uint8_t *addr, size_t addr_len);

void nxc_peer_unref(nxc_connector_t *c, nxc_peer_t *p);

/* The known peer that sent a control message, or NULL. No reference. */
nxc_peer_t *nxc_peer_find_sender(nxc_connector_t *c, const char *name, size_t name_len,
                                 const nxc_identity_t *id);

/* An answer (ACK or NACK) to one of our ops came from p: it holds an
 * endpoint to us, so our next BEGINs may leave out our address. */
void nxc_peer_answered_us(nxc_connector_t *c, nxc_peer_t *p);

/* An address-less BEGIN left for p: watch for its answer. */
void nxc_peer_sent_addrless(nxc_connector_t *c, nxc_peer_t *p);

/* Sends the BEGIN of every open op to a peer again, with our address,
 * when no answer came from that peer within c->reach_timeout_ms of an
 * address-less one (it may have dropped them); then BEGINs carry the
 * address until it answers again. A BEGIN that had been taken is a no-op
 * for the passive side. Cheap when no peer is waiting (c->addrless_peers
 * == 0). */
void nxc_peers_check_addrless(nxc_connector_t *c);

/* Notes that the peer died or became unreachable (its pidfd fired, UCX
 * reported its endpoint failed), with the reason. Nothing is failed yet:
 * the connector first processes whatever that peer had sent and the
 * transport already holds, then calls nxc_peer_fail (see
 * nxc_progress_locked). Returns 1 if this is news. Safe inside UCX
 * callbacks. */
int nxc_peer_report_failure(nxc_peer_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Marks the peer dead, fails every open op that depends on it with
 * NXC_ERR_PEER_FAILED and the reason, and force-closes its endpoint so
 * requests in flight to it complete. Idempotent. */
void nxc_peer_fail(nxc_connector_t *c, nxc_peer_t *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* How long a peer may leave our first message unanswered before it is
 * declared unreachable (see nxc_peers_check_reached), unless the
 * environment variable NXC_REACH_TIMEOUT_MS says otherwise (slow links,
 * tests): read once per connector, from NXC_REACH_TIMEOUT_MIN_MS up. */
#define NXC_REACH_TIMEOUT_MS     5000
#define NXC_REACH_TIMEOUT_MIN_MS 100

/* The deadline for this connector: the default, or the environment's.
 * NXC_ERR_INVALID_ARG with a detail for a value that is not a number of
 * milliseconds of at least NXC_REACH_TIMEOUT_MIN_MS. */
int nxc_reach_timeout_from_env(unsigned *ms);

/* Reports peers whose first message has not completed within
 * c->reach_timeout_ms as failed: UCX cannot reach them over the transports
 * it chose (a wrong UCX_NET_DEVICES, another network namespace, a
 * firewall), or they do not drive their connector. Never a same-host peer
 * in our namespaces over shared memory (reached from the start: peer.c).
 * Cheap when no peer is waiting (c->unreached_peers == 0). */
void nxc_peers_check_reached(nxc_connector_t *c);

/* The peer's cached rkey for these packed bytes, unpacked on first use;
 * NULL when the cache is full (the caller then unpacks its own). */
ucp_rkey_h nxc_peer_cached_rkey(nxc_peer_t *p, const uint8_t *bytes, uint32_t len,
                                ucs_status_t *st);

/* Connector teardown, before the UCX worker goes: closes every endpoint that
 * can be closed and forgets the others (destroying the worker reclaims them). */
void nxc_peers_disconnect_all(nxc_connector_t *c);

/* Connector teardown, after the UCX worker is gone: frees all peers. */
void nxc_peers_free_all(nxc_connector_t *c);

#endif
