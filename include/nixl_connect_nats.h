/**
 * @file nixl_connect_nats.h
 * @brief Optional module: carry an operation's metadata across hosts over
 *        NATS (https://nats.io), the secondary channel Dynamo uses.
 *
 * The core library moves the data; it does not pick how the metadata text
 * travels. This module is one ready-made way, built on nixl_connect.h's
 * public API and the NATS C client (libnats, nats.c). It is a separate
 * library, `libnixl_connect_nats`, built only where libnats is found.
 *
 * @section directions The two directions
 * - **Request/reply** (the passive side answers): the passive worker calls
 *   nxc_nats_serve() (or nxc_nats_serve_op()) on a subject; any number of
 *   active peers call nxc_nats_request() on it and get the metadata text.
 *   Typical for a readable op: "here is the file, come and read it".
 * - **Send/receive** (the passive side hands its metadata to a named
 *   worker, as Dynamo's decode worker hands a writable KV-cache op to the
 *   prefill worker): the receiving worker calls nxc_nats_subscribe() on its
 *   own subject and nxc_nats_next() to take the next metadata; the passive
 *   side calls nxc_nats_send(), which returns once a receiver has *taken*
 *   the message (the receiver acknowledges it), so a sender knows its
 *   metadata was not lost. nxc_nats_publish() is the fire-and-forget form
 *   (delivered to whoever is subscribed at that moment, not acknowledged).
 *
 * @section nats_conventions Conventions
 * The same as nixl_connect.h: functions return 0 or a negative code, leave a
 * thread-local detail sentence for nxc_nats_last_error() on failure, write
 * output parameters only on success, never abort on bad input; close and
 * stop functions return void and accept NULL. Codes of the core set keep
 * their meaning here (::NXC_ERR_INVALID_ARG, ::NXC_ERR_NO_MEMORY,
 * ::NXC_ERR_TIMED_OUT); the module adds the `NXC_NATS_ERR_*` codes below,
 * numbered from -100 down so they never collide with the core's.
 *
 * Metadata text is treated as opaque bytes: the module neither parses nor
 * changes it. Text received is returned NUL-terminated in memory the caller
 * owns and frees with nxc_nats_free().
 *
 * @section nats_threads Thread-safety
 * A connection (`nxc_nats_t`) may be used from any number of threads at
 * once, except nxc_nats_close(), which no other thread may overlap or follow
 * with calls on that connection or on its servers and inboxes. A server
 * (`nxc_nats_server_t`) answers from a thread of the NATS client; its
 * accessors are thread-safe. An inbox (`nxc_nats_inbox_t`) is for one
 * thread at a time.
 *
 * @section reconnect Connection loss
 * By default connections do not reconnect: if the server goes away, every
 * later call fails with ::NXC_NATS_ERR_CLOSED at once, instead of buffering
 * messages that may never leave. Servers and inboxes of a closed connection
 * stop working; stop/unsubscribe them and connect again. With
 * ::nxc_nats_config_t.reconnect_ms (`NXC_NATS_CONFIG_RECONNECT`) and a list
 * of servers of one cluster, the connection moves to another server and
 * keeps its servers and inboxes; see that field for what happens to
 * messages in flight.
 *
 * @code
 *   // passive host: expose, then answer requests for the metadata
 *   nxc_nats_t *n;  nxc_nats_server_t *srv;
 *   nxc_nats_connect("nats://10.0.0.1:4222", NULL, &n);
 *   nxc_create_readable(c, descs, k, &op);
 *   nxc_nats_serve_op(n, "files.model", op, &srv);
 *   nxc_op_wait(op, -1);
 *   nxc_nats_server_stop(srv);
 *
 *   // active host: ask for it, read
 *   char *json;  size_t len;
 *   nxc_nats_request(n, "files.model", 5000, &json, &len);
 *   nxc_metadata_parse(json, len, &md);  nxc_nats_free(json);
 *   nxc_begin_read(c, md, local, k, &op);
 * @endcode
 */
#ifndef NIXL_CONNECT_NATS_H
#define NIXL_CONNECT_NATS_H

#include <stddef.h>
#include <stdint.h>

#include "nixl_connect.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(NXC_NATS_BUILDING_LIBRARY) && defined(__GNUC__)
#define NXC_NATS_API __attribute__((visibility("default")))
#else
#define NXC_NATS_API
#endif

/** @defgroup nats_errors Error codes of the NATS module
 *  Pinned values, below the core's range.
 *  @{ */
enum {
    /** No NATS server could be reached at the URL (refused, unreachable,
     *  unresolvable, or no answer within the connect timeout). */
    NXC_NATS_ERR_NO_SERVER     = -101,
    /** A request found nobody subscribed on its subject (NATS 2.2+ servers
     *  say so at once instead of letting the request time out). */
    NXC_NATS_ERR_NO_RESPONDERS = -102,
    /** A message is larger than the server's max_payload or the limit set
     *  in ::nxc_nats_config_t.max_message (the detail gives both sizes); or
     *  the receiver of nxc_nats_send() refused it for that reason. */
    NXC_NATS_ERR_TOO_LARGE     = -103,
    /** The connection to the server was lost or closed. */
    NXC_NATS_ERR_CLOSED        = -104,
    /** Any other failure reported by the NATS client; the detail has its
     *  status text. */
    NXC_NATS_ERR_NATS          = -105
};

/**
 * @brief One sentence for a module code and for ::NXC_ERR_TIMED_OUT (whose
 *        core sentence speaks of an operation going on), or nxc_strerror()
 *        for any other code.
 * @return a static string, never NULL. Thread-safe.
 */
NXC_NATS_API const char *nxc_nats_strerror(int err);

/**
 * @brief The detail of the last failed nxc_nats_* call on this thread
 *        (which subject, which URL, which sizes, the NATS client's words).
 * @return a thread-local string, never NULL; valid until the next failing
 *         nxc_nats_* call on the same thread.
 */
NXC_NATS_API const char *nxc_nats_last_error(void);
/** @} */

/** @defgroup nats_conn Connection
 *  @{ */
typedef struct nxc_nats         nxc_nats_t;        /**< @brief a NATS connection (opaque) */
typedef struct nxc_nats_server  nxc_nats_server_t; /**< @brief a subject being answered (opaque) */
typedef struct nxc_nats_inbox   nxc_nats_inbox_t;  /**< @brief a subscription (opaque) */

/** @brief Which fields of ::nxc_nats_config_t are set. */
enum {
    NXC_NATS_CONFIG_TIMEOUT     = 1u << 0,
    NXC_NATS_CONFIG_MAX_MESSAGE = 1u << 1,
    NXC_NATS_CONFIG_RECONNECT   = 1u << 2,
    NXC_NATS_CONFIG_TLS         = 1u << 3,
    NXC_NATS_CONFIG_CREDS       = 1u << 4
};

/** @brief Connection parameters (same field_mask idiom as the core). */
typedef struct nxc_nats_config {
    uint64_t field_mask; /**< NXC_NATS_CONFIG_* bits of the fields set */
    /** Milliseconds allowed to connect, and for the server to confirm a
     *  publish or a new subscription (1-600000). Default: 2000. */
    int      timeout_ms;
    /** Largest metadata, in bytes, this connection sends or accepts; the
     *  server's own max_payload (1 MiB by default) still applies on top.
     *  Default: 0, meaning only the server's limit. */
    size_t   max_message;
    /** With `NXC_NATS_CONFIG_RECONNECT`: after losing its server, the
     *  connection tries the servers of the URL list (and those a cluster
     *  announces) every 100 ms for up to this many milliseconds (1-600000)
     *  before it closes. Meanwhile subscriptions and servers are kept and
     *  come back with the connection; publishes and sends are buffered and
     *  go out then; a request or send still waits at most its own timeout
     *  (::NXC_ERR_TIMED_OUT if the answer was lost with the server).
     *  Default: no reconnect (see @ref reconnect). */
    int      reconnect_ms;
    /** With `NXC_NATS_CONFIG_TLS`: the connection uses TLS and trusts the
     *  CA certificate in this PEM file (required). */
    const char *tls_ca_file;
    /** With `NXC_NATS_CONFIG_TLS`, optional, both or neither: the client's
     *  certificate chain (PEM file), for servers that verify clients. */
    const char *tls_cert_file;
    /** With `NXC_NATS_CONFIG_TLS`: the private key of tls_cert_file (PEM). */
    const char *tls_key_file;
    /** With `NXC_NATS_CONFIG_CREDS`: a NATS credentials file (`.creds`, as
     *  `nsc` writes it: the user's JWT and NKey seed), for servers with
     *  decentralized (operator/account JWT) authentication. Read at every
     *  connect and reconnect; the seed signs the server's challenge. */
    const char *creds_file;
} nxc_nats_config_t;

/**
 * @brief Connects to a NATS server.
 * @param [in]  url  "nats://HOST:PORT" (also "HOST:PORT", with optional
 *                   "user:password@"), or up to 16 such URLs separated by
 *                   commas, tried in order; read during the call.
 * @param [in]  cfg  NULL for defaults; read during the call.
 * @param [out] out  the connection; close it with nxc_nats_close().
 * @return ::NXC_OK, ::NXC_ERR_INVALID_ARG (NULL, empty or malformed URL
 *         list, bad config, an unreadable TLS or credentials file),
 *         ::NXC_NATS_ERR_NO_SERVER, ::NXC_ERR_NO_MEMORY, ::NXC_NATS_ERR_NATS
 *         (also when the server refuses the client's credentials: the
 *         detail says so; with a creds_file a refusal is believed after
 *         4 connects, since nats.c 3.4.1 sometimes leaves out the
 *         signature the server asks for).
 * @note Thread-safe. Returns within about the timeout per URL listed.
 */
NXC_NATS_API int nxc_nats_connect(const char *url, const nxc_nats_config_t *cfg,
                                  nxc_nats_t **out);

/**
 * @brief Closes a connection: stops its servers and unsubscribes its inboxes
 *        still open (their handles become invalid), then disconnects.
 *        NULL is a no-op.
 */
NXC_NATS_API void nxc_nats_close(nxc_nats_t *n);

/**
 * @brief The largest message this connection sends or accepts: the smaller
 *        of the server's max_payload and ::nxc_nats_config_t.max_message.
 * @return bytes, or 0 for a NULL connection.
 */
NXC_NATS_API size_t nxc_nats_max_message(nxc_nats_t *n);
/** @} */

/** @defgroup nats_reply Passive side answers (request/reply)
 *  @{ */
/**
 * @brief Answers every request on @p subject with @p json until stopped.
 *
 * Replies come from a thread of the NATS client, so the caller is free to
 * block in nxc_op_wait() meanwhile. Messages on the subject without a reply
 * subject (plain publishes) are ignored. Returns once the server has
 * registered the subscription, so a request sent right after is answered.
 * @param [in]  subject a subject without wildcards ("files.model"); copied.
 * @param [in]  json    the text to answer with; copied (len bytes, any
 *                      content), so the caller may free it at once.
 * @param [out] out     the server; stop it with nxc_nats_server_stop().
 * @return ::NXC_OK, ::NXC_ERR_INVALID_ARG (NULL, empty text, bad subject),
 *         ::NXC_NATS_ERR_TOO_LARGE, ::NXC_NATS_ERR_CLOSED,
 *         ::NXC_ERR_TIMED_OUT (the server did not confirm the subscription),
 *         ::NXC_ERR_NO_MEMORY, ::NXC_NATS_ERR_NATS.
 * @param [in] n the connection.
 * @param [in] len the length of @p json in bytes.
 */
NXC_NATS_API int nxc_nats_serve(nxc_nats_t *n, const char *subject,
                                const char *json, size_t len,
                                nxc_nats_server_t **out);

/**
 * @brief nxc_nats_serve() with a passive op's metadata (nxc_op_metadata()).
 * @return as nxc_nats_serve(), and ::NXC_ERR_STATE for an active op.
 */
NXC_NATS_API int nxc_nats_serve_op(nxc_nats_t *n, const char *subject,
                                   nxc_op_t *op, nxc_nats_server_t **out);

/** @brief How many requests the server has answered so far. Thread-safe. */
NXC_NATS_API uint64_t nxc_nats_server_answered(const nxc_nats_server_t *s);

/**
 * @brief Stops answering: unsubscribes (the server has forgotten the
 *        subscription when this returns, so later requests get
 *        ::NXC_NATS_ERR_NO_RESPONDERS), waits for a reply in progress to
 *        finish (at most about 5 s), frees the server. NULL is a no-op.
 */
NXC_NATS_API void nxc_nats_server_stop(nxc_nats_server_t *s);
/** @} */

/** @defgroup nats_request Active side asks (request/reply)
 *  @{ */
/**
 * @brief Asks for the text served on @p subject.
 * @param [in]  timeout_ms how long to wait for the answer (1 or more).
 * @param [out] json NUL-terminated copy of the answer; free it with
 *                   nxc_nats_free().
 * @param [out] len  its length in bytes (may be NULL).
 * @return ::NXC_OK, ::NXC_NATS_ERR_NO_RESPONDERS (nobody serves the
 *         subject: retry later if the peer may not be up yet),
 *         ::NXC_ERR_TIMED_OUT, ::NXC_NATS_ERR_TOO_LARGE (the answer exceeds
 *         ::nxc_nats_config_t.max_message; it is dropped),
 *         ::NXC_NATS_ERR_CLOSED, ::NXC_ERR_INVALID_ARG, ::NXC_ERR_NO_MEMORY,
 *         ::NXC_NATS_ERR_NATS.
 * @param [in] n the connection.
 * @param [in] subject the subject a server answers on.
 */
NXC_NATS_API int nxc_nats_request(nxc_nats_t *n, const char *subject,
                                  int timeout_ms, char **json, size_t *len);
/** @} */

/** @defgroup nats_send Passive side hands its metadata over (send/receive)
 *  @{ */
/**
 * @brief Sends @p json to the worker listening on @p subject and waits until
 *        it has taken it (the receiver's nxc_nats_next() acknowledges).
 * @param [in] json       the text, len bytes; read during the call.
 * @param [in] timeout_ms how long to wait for the acknowledgment (1 or more).
 * @return ::NXC_OK, ::NXC_NATS_ERR_NO_RESPONDERS (nobody subscribed),
 *         ::NXC_ERR_TIMED_OUT (a receiver is subscribed but did not take it
 *         in time: it may still take it later), ::NXC_NATS_ERR_TOO_LARGE
 *         (here, or refused by the receiver's limit), ::NXC_NATS_ERR_CLOSED,
 *         ::NXC_ERR_INVALID_ARG, ::NXC_ERR_NO_MEMORY, ::NXC_NATS_ERR_NATS.
 * @param [in] n the connection.
 * @param [in] subject the subject the receiver listens on.
 * @param [in] len the length of @p json in bytes.
 */
NXC_NATS_API int nxc_nats_send(nxc_nats_t *n, const char *subject,
                               const char *json, size_t len, int timeout_ms);

/** @brief nxc_nats_send() with a passive op's metadata.
 *  @return as nxc_nats_send(), and ::NXC_ERR_STATE for an active op. */
NXC_NATS_API int nxc_nats_send_op(nxc_nats_t *n, const char *subject,
                                  nxc_op_t *op, int timeout_ms);

/**
 * @brief Publishes @p json on @p subject without waiting for anyone: every
 *        inbox subscribed at that moment receives it; nobody acknowledges.
 *        Returns once the server has accepted the message.
 * @return ::NXC_OK, ::NXC_NATS_ERR_TOO_LARGE, ::NXC_NATS_ERR_CLOSED,
 *         ::NXC_ERR_TIMED_OUT (the server did not confirm),
 *         ::NXC_ERR_INVALID_ARG, ::NXC_ERR_NO_MEMORY, ::NXC_NATS_ERR_NATS.
 */
NXC_NATS_API int nxc_nats_publish(nxc_nats_t *n, const char *subject,
                                  const char *json, size_t len);

/**
 * @brief Starts receiving what is sent or published on @p subject.
 *        Messages are queued from the moment this returns (the server has
 *        registered the subscription).
 * @param [in]  subject a subject, wildcards "*" and ">" allowed; copied.
 * @param [out] out     the inbox; free it with nxc_nats_unsubscribe().
 * @return ::NXC_OK, ::NXC_ERR_INVALID_ARG, ::NXC_NATS_ERR_CLOSED,
 *         ::NXC_ERR_TIMED_OUT, ::NXC_ERR_NO_MEMORY, ::NXC_NATS_ERR_NATS.
 * @param [in] n the connection.
 */
NXC_NATS_API int nxc_nats_subscribe(nxc_nats_t *n, const char *subject,
                                    nxc_nats_inbox_t **out);

/**
 * @brief Takes the next message of the inbox, waiting up to @p timeout_ms,
 *        and acknowledges it to its sender if it came from nxc_nats_send().
 * @param [in]  timeout_ms 0 only checks; -1 waits without limit.
 * @param [out] json NUL-terminated copy; free it with nxc_nats_free().
 * @param [out] len  its length (may be NULL).
 * @return ::NXC_OK, ::NXC_ERR_TIMED_OUT, ::NXC_NATS_ERR_TOO_LARGE (the
 *         message exceeds ::nxc_nats_config_t.max_message: it is dropped and
 *         its sender told), ::NXC_NATS_ERR_CLOSED, ::NXC_ERR_INVALID_ARG,
 *         ::NXC_ERR_NO_MEMORY, ::NXC_NATS_ERR_NATS.
 * @param [in] in the subscription.
 */
NXC_NATS_API int nxc_nats_next(nxc_nats_inbox_t *in, int timeout_ms,
                               char **json, size_t *len);

/** @brief Stops receiving (the server has forgotten the subscription when
 *         this returns) and frees the inbox; messages still queued are
 *         dropped (their senders time out). NULL is a no-op. */
NXC_NATS_API void nxc_nats_unsubscribe(nxc_nats_inbox_t *in);

/** @brief Frees text returned by this module. NULL is a no-op. */
NXC_NATS_API void nxc_nats_free(char *text);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* NIXL_CONNECT_NATS_H */
