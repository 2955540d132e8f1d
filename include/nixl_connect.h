/**
 * @file nixl_connect.h
 * @brief nixl_connect in C: one-sided reads and writes of registered memory
 *        between worker processes, following Dynamo's `dynamo.nixl_connect`.
 *
 * This is the library's only public header. Everything it does not declare
 * is private and may change.
 *
 * @section model The model in one paragraph
 * A *passive* worker exposes memory with nxc_create_readable() or
 * nxc_create_writable(), serializes the operation's metadata with
 * nxc_op_metadata() and hands the JSON text to a peer over any channel it
 * likes. The *active* peer parses it with nxc_metadata_parse() and starts the
 * transfer with nxc_begin_read() or nxc_begin_write(). The data moves
 * one-sidedly over UCX; when it is in place the active side notifies the
 * passive side and both operations become ::NXC_OP_COMPLETE. Either side can
 * poll nxc_op_status(), block in nxc_op_wait(), cancel with nxc_op_cancel()
 * and must finally call nxc_op_release().
 *
 * @section conventions Conventions
 * - Handles (`nxc_connector_t *`, `nxc_op_t *`, `nxc_metadata_t *`) are
 *   opaque pointers: the structs are never shown, so they can grow without
 *   breaking the ABI. We chose plain pointers over `_h` typedefs because they
 *   read naturally in C and in every FFI (ctypes, cgo, Rust bindgen).
 * - Functions returning `int` return ::NXC_OK (0) or a negative `NXC_ERR_*`
 *   code. On failure they also set a thread-local detail sentence, read with
 *   nxc_last_error(), naming the argument, descriptor index, peer or value at
 *   fault. Output parameters are written only on success.
 * - Nothing aborts the process on bad input.
 * - Release and destroy functions return void and accept NULL.
 *
 * @section threads Thread-safety
 * A connector and everything created from it may be used from any number of
 * threads at once: operations may be created on one thread, waited on another
 * and released on a third. All calls on one connector are serialized by the
 * connector's internal lock, except that nxc_op_wait() sleeps without holding
 * it, so many threads may wait on different operations at the same time; one
 * of them drives the transport while the others sleep until their own
 * operation changes state. Two threads must not use the *same* operation
 * after one of them has called nxc_op_release() on it. Parsed metadata
 * (`nxc_metadata_t`) is immutable and may be shared between threads.
 *
 * @section truth What each side sees (completion, refusal, cancel)
 * An op has one taker: the first active op whose BEGIN (or data) reaches a
 * passive op takes it. The passive side answers *every* BEGIN, so no
 * active op is left waiting on an op it cannot have:
 * - The active op is ::NXC_OP_COMPLETE only once the passive side has
 *   accepted its data into the open op it was meant for and says so (an
 *   acknowledgement, one message back); the passive op is COMPLETE then
 *   too. COMPLETE on either side means the bytes are in place.
 * - The passive side refuses an active op whose op is not open for it, and
 *   the active op ends ::NXC_OP_ERRORED with ::NXC_ERR_PEER_ABORTED and a
 *   detail (nxc_op_error()) saying which: the op was *cancelled*,
 *   *released*, had *already completed* (a second write or read, from the
 *   same worker or another, after the first finished), is *taken* by
 *   another active op (one in flight), *failed*, or no open op has the key
 *   (closed long ago, or never existed). This holds for reads and writes,
 *   small (eager) and large transfers alike, and the answer comes within
 *   one round trip of the BEGIN, provided both connectors are driven.
 *   The passive side remembers how its last 256 ops ended; older keys get
 *   the generic sentence, so memory stays bounded.
 *
 * Cancel, in each order of events (release of an op in flight cancels it
 * first, and the peer is told "released" instead of "cancelled"):
 * | event | this side | the other side |
 * |---|---|---|
 * | passive cancel, no peer has begun | CANCELLED | a later BEGIN: ERRORED, PEER_ABORTED "cancelled" |
 * | passive cancel after the peer's BEGIN arrived, before its DONE | CANCELLED | ERRORED, PEER_ABORTED "cancelled" |
 * | passive cancel after COMPLETE | COMPLETE (cancel has no effect) | COMPLETE |
 * | active cancel before BEGIN or data arrived | CANCELLED | ERRORED, PEER_ABORTED (the active side says ABORT once its requests drained) |
 * | active cancel after BEGIN, before DONE left | CANCELLED | ERRORED, PEER_ABORTED |
 * | active cancel after DONE left, before the acknowledgement | CANCELLED | COMPLETE: the data had all arrived |
 * | active cancel after COMPLETE | COMPLETE | COMPLETE |
 * A peer that dies instead ends the other side ERRORED with
 * ::NXC_ERR_PEER_FAILED. An eager write (a few KiB) sends BEGIN, data and
 * DONE within nxc_begin_write(), so cancelling it is always the
 * "after DONE left" row.
 *
 * @section progress Progress and event loops
 * By default the library runs no thread of its own. Transfers advance
 * whenever the connector is driven: by nxc_op_wait(), nxc_op_status() or
 * nxc_connector_progress(). The *passive* side must be driven as well while
 * a peer moves data: on transports where one-sided access is emulated (UCX
 * over shared memory or TCP with ordinary malloc'd memory), the bytes are
 * moved by the passive side's progress. A worker that cannot promise that
 * sets ::nxc_connector_config_t.progress_thread and the connector drives
 * itself. The passive side also answers the active side (BEGIN, DONE): an
 * active op completes only when the passive connector has been driven
 * after the data arrived. nxc_op_release() of a passive op drives its
 * connector until that answer has left (at most about 1 s), so a passive
 * worker may release its op and then stop. To embed the connector in
 * an event loop, watch nxc_connector_fd() for readability and call
 * nxc_connector_progress() when it fires:
 *
 * @code
 *   struct pollfd p = { .fd = nxc_connector_fd(c), .events = POLLIN };
 *   for (;;) {
 *       nxc_connector_progress(c);       // drains, then re-arms the fd
 *       if (nxc_op_status(op) >= NXC_OP_COMPLETE) break;
 *       poll(&p, 1, -1);                 // safe: progress re-armed the fd
 *   }
 * @endcode
 */
#ifndef NIXL_CONNECT_H
#define NIXL_CONNECT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(NXC_BUILDING_LIBRARY) && defined(__GNUC__)
#define NXC_API __attribute__((visibility("default")))
#else
#define NXC_API
#endif

/** @defgroup version Version
 *  @{ */
#define NXC_VERSION_MAJOR 0
#define NXC_VERSION_MINOR 1
#define NXC_VERSION_PATCH 0
/** @brief The library's version as "MAJOR.MINOR.PATCH"; static string. */
NXC_API const char *nxc_version(void);
/** @} */

/** @defgroup errors Error codes
 *  Values are pinned: they never change between versions.
 *  @{ */
enum {
    NXC_OK                 = 0,
    NXC_ERR_INVALID_ARG    = -1,  /**< a NULL handle, empty list, zero pointer, bad config */
    NXC_ERR_NO_MEMORY      = -2,  /**< an allocation failed */
    NXC_ERR_BAD_METADATA   = -3,  /**< metadata text or agent blob is malformed */
    NXC_ERR_WRONG_KIND     = -4,  /**< read against WRITE metadata or vice versa */
    NXC_ERR_SIZE_MISMATCH  = -5,  /**< local and remote lists differ in count or sizes */
    NXC_ERR_STATE          = -6,  /**< the operation's state does not allow the call */
    NXC_ERR_TIMED_OUT      = -7,  /**< nxc_op_wait() ran out of time; the op goes on */
    NXC_ERR_CANCELLED      = -8,  /**< the operation was cancelled locally */
    NXC_ERR_PEER_FAILED    = -9,  /**< the remote worker died or became unreachable */
    NXC_ERR_PEER_ABORTED   = -10, /**< the remote worker cancelled its side, or refused
                                       this op (taken, completed, closed: see the detail) */
    NXC_ERR_TRANSPORT      = -11, /**< UCX reported an error; the detail names it */
    NXC_ERR_UNSUPPORTED    = -12, /**< e.g. GPU memory without a CUDA-enabled UCX */
    NXC_ERR_DEVICE         = -13, /**< bad device string, or mixed device kinds */
    NXC_ERR_SYSTEM         = -14, /**< an OS call failed (errno in the detail) */
    NXC_ERR_RECURSIVE      = -15  /**< reserved: for calls from completion callbacks,
                                       which this version does not have */
};

/** @brief True for a negative (error) return value. */
#define NXC_IS_ERR(rc) ((rc) < 0)

/**
 * @brief One sentence describing an error code.
 * @return a static string, never NULL (unknown codes get a generic sentence).
 * @note Thread-safe.
 */
NXC_API const char *nxc_strerror(int err);

/**
 * @brief The detail of the last failure on the calling thread.
 *
 * Names what was wrong (which argument, which descriptor, which peer, what
 * was expected). Valid until the next nxc_* call on the same thread.
 * @return a thread-local string, never NULL (empty when nothing failed yet).
 */
NXC_API const char *nxc_last_error(void);
/** @} */

/** @defgroup devices Devices and descriptors
 *  @{ */
/** @brief Kind of memory, numbered as Dynamo's `DeviceKind`. */
typedef enum nxc_device_kind {
    NXC_DEVICE_UNSPECIFIED = 0,
    NXC_DEVICE_HOST        = 1, /**< CPU memory; text form "cpu" */
    NXC_DEVICE_CUDA        = 2  /**< CUDA device memory; text form "cuda:N" */
} nxc_device_kind_t;

/** @brief A device: a kind and, for CUDA, the device ordinal. Plain value. */
typedef struct nxc_device {
    nxc_device_kind_t kind;
    int               id; /**< 0 for host memory */
} nxc_device_t;

/**
 * @brief Parses a device string.
 *
 * Accepts, case-insensitively and ignoring surrounding white space, "cpu" and
 * "host" (host memory, id 0), "cuda" and "gpu" (CUDA device 0), "cuda:N" and
 * "gpu:N" with N a decimal ordinal from 0 to 65535.
 * @param [in]  text NUL-terminated string.
 * @param [out] out  the device; written only on success.
 * @return ::NXC_OK, ::NXC_ERR_INVALID_ARG (NULL argument), ::NXC_ERR_DEVICE
 *         (anything else, with the text quoted in the detail).
 * @note Thread-safe.
 */
NXC_API int nxc_device_parse(const char *text, nxc_device_t *out);

/**
 * @brief Formats a device the way Dynamo does: "cpu" or "cuda:N".
 * @param [out] buf  receives a NUL-terminated string.
 * @param [in]  size size of @p buf; 16 bytes always suffice.
 * @return the length written (excluding the NUL), or ::NXC_ERR_INVALID_ARG
 *         for an unspecified kind, or ::NXC_ERR_NO_MEMORY if @p buf is too small.
 * @note Thread-safe.
 */
NXC_API int nxc_device_format(nxc_device_t dev, char *buf, size_t size);

/**
 * @brief One contiguous buffer: a plain value, like `struct iovec`.
 *
 * The library never owns the memory a descriptor points to; the caller keeps
 * it alive and unmoved until the operation using it has been released.
 */
typedef struct nxc_descriptor {
    void        *ptr;
    size_t       size;   /**< 0 is allowed and moves nothing */
    nxc_device_t device;
} nxc_descriptor_t;
/** @} */

/** @defgroup ops Operation kinds and states
 *  @{ */
/** @brief Kind of an operation, numbered as Dynamo's `OperationKind`. */
typedef enum nxc_op_kind {
    NXC_OP_KIND_UNSPECIFIED = 0,
    NXC_OP_READ             = 1, /**< data flows from the passive to the active side */
    NXC_OP_WRITE            = 2  /**< data flows from the active to the passive side */
} nxc_op_kind_t;

/** @brief State of an operation, numbered as Dynamo's `OperationStatus`. */
typedef enum nxc_op_status {
    NXC_OP_UNINITIALIZED = 0,
    NXC_OP_INITIALIZED   = 1, /**< passive op created, no peer has begun yet */
    NXC_OP_IN_PROGRESS   = 2, /**< data is moving */
    NXC_OP_COMPLETE      = 3, /**< data in place, the passive side accepted it (final) */
    NXC_OP_CANCELLED     = 4, /**< cancelled locally (final) */
    NXC_OP_ERRORED       = 5  /**< failed; see nxc_op_error() (final) */
} nxc_op_status_t;

/**
 * @brief Dynamo's short name of a state: "INIT", "PROC", "DONE", "STOP",
 *        "ERR", or "<invalid>" (for UNINITIALIZED and out-of-range values).
 * @return a static string.
 */
NXC_API const char *nxc_op_status_name(nxc_op_status_t status);

/** @brief "READ", "WRITE" or "<invalid>"; a static string. */
NXC_API const char *nxc_op_kind_name(nxc_op_kind_t kind);
/** @} */

/** @defgroup connector Connector
 *  One per process (or per group of threads): owns the UCX context and
 *  worker, the endpoint cache and the table of open operations.
 *  @{ */
typedef struct nxc_connector nxc_connector_t;
typedef struct nxc_op        nxc_op_t;
typedef struct nxc_metadata  nxc_metadata_t;

/** @brief The protocol a worker speaks (see nxc_metadata_wire() and
 *         ::nxc_connector_config_t.wire). */
typedef enum nxc_wire {
    NXC_WIRE_UNSPECIFIED = 0,
    NXC_WIRE_NXC         = 1, /**< this library's own agent blob and protocol */
    NXC_WIRE_NIXL        = 2  /**< a NIXL agent (Dynamo's Python workers): its
                                   blob is NIXL's agent metadata, the notification
                                   key any text */
} nxc_wire_t;

/** @brief Which fields of ::nxc_connector_config_t are set. */
enum {
    NXC_CONFIG_NAME    = 1u << 0,
    NXC_CONFIG_SPIN_US = 1u << 1,
    NXC_CONFIG_PROGRESS_THREAD = 1u << 2,
    NXC_CONFIG_WIRE    = 1u << 3
};

/**
 * @brief Connector parameters. Set `field_mask` to the fields you fill;
 *        the others take their documented defaults. New fields are only ever
 *        appended, with a new mask bit, so old binaries keep working.
 */
typedef struct nxc_connector_config {
    uint64_t    field_mask;
    /** Worker name (Dynamo's `worker_id`), 1-255 bytes, copied at create.
     *  Default: 32 random hexadecimal digits. */
    const char *name;
    /** How long nxc_op_wait() spins on the transport after the last event
     *  before it sleeps on the event fd, in microseconds (0-1000000); 20
     *  times as long while a transfer of this connector is in progress,
     *  because waking a sleeping thread costs tens of microseconds and a
     *  completion chains several wake-ups. Spinning keeps transfers at
     *  transport latency; sleeping keeps idle waits at zero CPU.
     *  Default: 50 (so 1 ms while busy). 0 never spins. */
    unsigned    spin_us;
    /** Nonzero: the connector starts one thread of its own that drives the
     *  transport whenever its fd fires, so transfers to and from this
     *  worker move even while the application calls nothing (a passive
     *  worker that only waits now and then, or two connectors in one
     *  thread). Waiters then sleep until that thread reports their op.
     *  Default: 0 (no thread; progress happens inside the caller's calls). */
    int         progress_thread;
    /** The wire this connector's *passive* ops publish (active ops always
     *  speak the wire of the metadata they are given).
     *  ::NXC_WIRE_NIXL: nxc_op_metadata() carries NIXL agent metadata, so a
     *  Dynamo Python worker (NIXL) can begin_read/begin_write our readables
     *  and writables; the op completes when NIXL's notification carrying
     *  its notification_key arrives. Each op is published as a NIXL agent
     *  of its own, named "<connector name>-<8 hex digits>" (Dynamo removes
     *  a remote agent when done with one op's metadata), so the connector
     *  name must leave 9 bytes of the 255 (else create_* returns
     *  ::NXC_ERR_INVALID_ARG). Know what that gives the peer:
     *  - NIXL moves data with raw one-sided RMA. There is no per-message
     *    check: whoever holds the metadata can read (readable) *and write*
     *    every byte of the op's registered memory, any number of times, in
     *    any order, until nxc_op_cancel() or nxc_op_release() deregisters
     *    it. Completing does not end the exposure; release does.
     *  - Completion means "a notification with the key arrived". NIXL sends
     *    it after its flush, so a NIXL agent that follows its protocol has
     *    put all bytes in place (write) or taken them (read) by then. Nothing
     *    proves it: the key is unguessable (128 random bits) but a peer that
     *    lies, or sends it early, completes the op anyway, and NIXL does not
     *    check which agent sent it (neither do we, as Dynamo does not).
     *  - A NIXL peer sends no BEGIN and no ABORT and we hold no endpoint to
     *    it: if it dies mid-transfer our op stays INITIALIZED. Wait with a
     *    timeout.
     *  Default: ::NXC_WIRE_NXC (our protocol: per-op checks, BEGIN/DONE/ABORT,
     *  peer death detected). */
    nxc_wire_t  wire;
} nxc_connector_config_t;

/**
 * @brief Creates a connector.
 * @param [in]  cfg NULL for defaults; read during the call only.
 * @param [out] out the connector; destroy it with nxc_connector_destroy().
 * @return ::NXC_OK, ::NXC_ERR_INVALID_ARG (empty or over-long name, spin
 *         out of range, unknown wire), ::NXC_ERR_TRANSPORT (UCX could not start),
 *         ::NXC_ERR_SYSTEM, ::NXC_ERR_NO_MEMORY.
 * @note Thread-safe (connectors are independent of each other).
 */
NXC_API int nxc_connector_create(const nxc_connector_config_t *cfg,
                                 nxc_connector_t **out);

/**
 * @brief Destroys a connector: cancels and releases every operation still
 *        open on it, closes its endpoints and frees everything. NULL is a no-op.
 * @warning No other thread may be using the connector or its operations
 *          during or after this call; operation handles become invalid.
 */
NXC_API void nxc_connector_destroy(nxc_connector_t *c);

/** @brief The worker name; owned by the connector, valid until destroy. */
NXC_API const char *nxc_connector_name(const nxc_connector_t *c);

/**
 * @brief A file descriptor that becomes readable when the connector has
 *        work to do (incoming data, a completion, a peer's death).
 *
 * Owned by the connector: do not read from it or close it. After
 * nxc_connector_progress() returns, the fd is armed, so sleeping on it with
 * poll/epoll/select is safe, for at most nxc_connector_timeout_ms(). With
 * the progress thread on, that thread drives the connector and sleeps on
 * this fd itself: other threads then wait with nxc_op_wait() instead.
 * @return the fd, or ::NXC_ERR_INVALID_ARG for a NULL connector.
 */
NXC_API int nxc_connector_fd(nxc_connector_t *c);

/**
 * @brief Drives the transport without blocking: moves data, delivers
 *        notifications, detects dead peers, then re-arms nxc_connector_fd().
 * @return a positive number if anything happened, 0 if nothing did, or a
 *         negative error (::NXC_ERR_INVALID_ARG).
 */
NXC_API int nxc_connector_progress(nxc_connector_t *c);

/**
 * @brief The longest a caller sleeping on nxc_connector_fd() may wait
 *        before calling nxc_connector_progress() again, in milliseconds:
 *        -1 (as long as it likes) when no op is pending, else a few ms.
 *
 * Use it as the timeout of poll/epoll_wait, or arm a timer with it in an
 * event loop (like curl_multi_timeout). It exists because UCX's wake-up can
 * miss progress that shared-memory transfers need; nxc_op_wait() and the
 * progress thread apply the same bound themselves. Thread-safe.
 * @return -1, a timeout >= 0, or ::NXC_ERR_INVALID_ARG for a NULL connector.
 */
NXC_API int nxc_connector_timeout_ms(nxc_connector_t *c);
/** @} */

/** @defgroup memory Memory for exposed buffers
 *  @{ */
/**
 * @brief (Experimental) Allocates host memory meant to be exposed: a UCX
 *        shared segment, registered once.
 *
 * Ops over this memory reuse its registration (no per-op ucp_mem_map), and a
 * peer on the same host writes or reads it with one-sided put/get into the
 * mapped segment instead of messages; the peer keeps the segment mapped
 * (its rkey cached) across ops. Measured here (nxc bench --mem ucx): 1 MiB
 * at 43-45 GB/s and 64 MiB at 11-12 GB/s, against ~12 and ~6.3 GB/s for
 * malloc'd memory. Experimental: new in this version, tested on one host.
 * @warning The registration spans the whole allocation and lasts until
 *          nxc_mem_free(): metadata of *any* op over this memory lets its
 *          holder reach the whole allocation until then, and the passive
 *          side cannot refuse a late write. Ordinary (malloc'd) memory is
 *          exposed per op, checked per message, and only while the op is
 *          open. Use this allocator for buffers you trust your peers with.
 * @param [in]  size bytes, at least 1.
 * @param [out] ptr  the memory; free it with nxc_mem_free() after every op
 *                   using it has been released (nxc_connector_destroy()
 *                   frees what is left).
 * @return ::NXC_OK, ::NXC_ERR_INVALID_ARG, ::NXC_ERR_TRANSPORT (UCX could
 *         not allocate it), ::NXC_ERR_NO_MEMORY.
 * @note Thread-safe.
 */
NXC_API int nxc_mem_alloc(nxc_connector_t *c, size_t size, void **ptr);

/** @brief Frees memory from nxc_mem_alloc(). NULL, or a pointer this
 *         connector did not allocate, is ignored. Thread-safe. */
NXC_API void nxc_mem_free(nxc_connector_t *c, void *ptr);
/** @} */

/** @defgroup passive Passive operations
 *  @{ */
/**
 * @brief Exposes @p local to be read by one peer (Dynamo's
 *        `create_readable`).
 *
 * Registers the memory with the transport so that only this operation's
 * buffers are reachable, and only until the operation ends or is released.
 * The op starts ::NXC_OP_INITIALIZED and becomes ::NXC_OP_COMPLETE when the
 * peer that read it says so.
 * @param [in]  local  1 or more descriptors, all of one device kind, no NULL
 *                     pointer; the array is copied, the memory is borrowed
 *                     until nxc_op_release().
 * @param [out] out    the op; release it with nxc_op_release().
 * @return ::NXC_OK, ::NXC_ERR_INVALID_ARG (n == 0, NULL pointer, with the
 *         index), ::NXC_ERR_DEVICE (mixed kinds), ::NXC_ERR_UNSUPPORTED (GPU
 *         memory this UCX cannot register), ::NXC_ERR_TRANSPORT (UCX refused
 *         the registration), ::NXC_ERR_NO_MEMORY.
 */
NXC_API int nxc_create_readable(nxc_connector_t *c, const nxc_descriptor_t *local,
                                size_t n, nxc_op_t **out);

/** @brief Exposes @p local to be written by one peer (Dynamo's
 *         `create_writable`). Same contract as nxc_create_readable(). */
NXC_API int nxc_create_writable(nxc_connector_t *c, const nxc_descriptor_t *local,
                                size_t n, nxc_op_t **out);

/**
 * @brief The passive op's metadata: Dynamo's `RdmaMetadata` as JSON text.
 *
 * Carry it to the peer over any channel. It grants access to this op's
 * memory, so treat it as a secret for as long as the op is open.
 * @param [out] json NUL-terminated text owned by the op, valid until
 *                   nxc_op_release(); do not free it.
 * @param [out] len  its length in bytes (may be NULL).
 * @return ::NXC_OK, ::NXC_ERR_INVALID_ARG, ::NXC_ERR_STATE (an active op has
 *         no metadata).
 */
NXC_API int nxc_op_metadata(nxc_op_t *op, const char **json, size_t *len);
/** @} */

/** @defgroup metadata Parsed metadata
 *  @{ */
/**
 * @brief Parses and validates metadata text (strict: unknown fields, wrong
 *        types, out-of-range values, corrupt or truncated agent blobs and
 *        absurd counts are all refused).
 *
 * Accepts both this library's metadata and that of Dynamo's Python workers,
 * whose agent blob is NIXL agent metadata ("b64:" + base64 of zlib, or the
 * older bare hex); nxc_metadata_wire() tells which it was.
 * @param [in]  json the text; need not be NUL-terminated; read during the call.
 * @param [in]  len  its length in bytes (at most 256 MiB).
 * @param [out] out  the parsed metadata; free it with nxc_metadata_free().
 *                   It does not depend on any connector.
 * @return ::NXC_OK, ::NXC_ERR_BAD_METADATA (anything wrong with the text,
 *         including a bad device string or descriptors of mixed device
 *         kinds; the detail says what and where), ::NXC_ERR_INVALID_ARG
 *         (NULL argument), ::NXC_ERR_NO_MEMORY.
 * @note Thread-safe.
 */
NXC_API int nxc_metadata_parse(const char *json, size_t len, nxc_metadata_t **out);

/** @brief Frees parsed metadata. NULL is a no-op. */
NXC_API void nxc_metadata_free(nxc_metadata_t *md);

/**
 * @brief The wire of the worker that exposed the memory, as told by its
 *        agent blob. nxc_begin_read() and nxc_begin_write() speak it by
 *        themselves; this is for callers that log or route by peer type.
 * @return ::NXC_WIRE_NXC, ::NXC_WIRE_NIXL, or ::NXC_WIRE_UNSPECIFIED for NULL.
 * @note Thread-safe.
 */
NXC_API nxc_wire_t nxc_metadata_wire(const nxc_metadata_t *md);

/** @brief The kind of the op that made the metadata (READ: it is readable). */
NXC_API nxc_op_kind_t nxc_metadata_kind(const nxc_metadata_t *md);

/** @brief The notification key; owned by @p md. */
NXC_API const char *nxc_metadata_notification_key(const nxc_metadata_t *md);

/** @brief The name of the worker that exposed the memory; owned by @p md. */
NXC_API const char *nxc_metadata_worker_name(const nxc_metadata_t *md);

/** @brief Number of remote descriptors (at least 1 in valid metadata). */
NXC_API size_t nxc_metadata_descriptor_count(const nxc_metadata_t *md);

/**
 * @brief Remote descriptor @p i. Its pointer is an address in the *remote*
 *        process: never dereference it.
 * @return ::NXC_OK or ::NXC_ERR_INVALID_ARG (i out of range, NULL argument).
 */
NXC_API int nxc_metadata_descriptor(const nxc_metadata_t *md, size_t i,
                                    nxc_descriptor_t *out);
/** @} */

/** @defgroup active Active operations
 *  @{ */
/**
 * @brief Starts reading the remote memory described by @p remote into
 *        @p local (Dynamo's `begin_read`). The transfer is posted before the
 *        call returns; no further call is needed to start it.
 *
 * Remote and local lists must have the same count and pairwise equal sizes.
 *
 * Against a NIXL agent's metadata (nxc_metadata_wire() is ::NXC_WIRE_NIXL,
 * e.g. from a Dynamo Python worker) the op speaks NIXL: get/put and a flush,
 * then NIXL's notification carrying the metadata's notification key, which
 * completes the Dynamo side. COMPLETE then means "flushed into the agent's
 * memory and the notification sent": NIXL sends no answer. An agent that is
 * gone fails the op (or this call) with ::NXC_ERR_PEER_FAILED.
 * @param [in]  remote metadata of a *readable* op; read during the call only.
 * @param [in]  local  destination buffers, copied as a list; the memory is
 *                     borrowed until nxc_op_release().
 * @param [out] out    the op; release it with nxc_op_release().
 * @return ::NXC_OK, ::NXC_ERR_WRONG_KIND (WRITE metadata),
 *         ::NXC_ERR_SIZE_MISMATCH (the detail names the index and both
 *         sizes), ::NXC_ERR_INVALID_ARG, ::NXC_ERR_DEVICE,
 *         ::NXC_ERR_UNSUPPORTED, ::NXC_ERR_PEER_FAILED (peer known dead),
 *         ::NXC_ERR_TRANSPORT, ::NXC_ERR_NO_MEMORY. A read the passive side
 *         refuses (another reader took the op, it completed, was cancelled
 *         or released) is begun and then ends ERRORED with
 *         ::NXC_ERR_PEER_ABORTED; see @ref truth.
 */
NXC_API int nxc_begin_read(nxc_connector_t *c, const nxc_metadata_t *remote,
                           const nxc_descriptor_t *local, size_t n, nxc_op_t **out);

/** @brief Starts writing @p local into the remote memory described by
 *         @p remote, which must come from a *writable* op (Dynamo's
 *         `begin_write`). Same contract as nxc_begin_read(). */
NXC_API int nxc_begin_write(nxc_connector_t *c, const nxc_descriptor_t *local,
                            size_t n, const nxc_metadata_t *remote, nxc_op_t **out);
/** @} */

/** @defgroup lifecycle Waiting, cancelling, releasing
 *  @{ */
/**
 * @brief The op's state (non-blocking). An op not yet final drives the
 *        transport once first; a final op's state never changes, so asking
 *        it drives nothing (use nxc_connector_progress() for that).
 * @return the state; ::NXC_OP_UNINITIALIZED for a NULL op.
 */
NXC_API nxc_op_status_t nxc_op_status(nxc_op_t *op);

/**
 * @brief Blocks until the op reaches a final state or @p timeout_ms passes.
 *
 * Event driven: spins briefly (see ::nxc_connector_config_t.spin_us), then
 * sleeps on the transport's event fd, so a completion wakes the waiter
 * within microseconds and an idle wait burns no CPU.
 * @param [in] timeout_ms milliseconds; -1 waits without limit, 0 only checks.
 * @return ::NXC_OK (COMPLETE), ::NXC_ERR_TIMED_OUT (the op is unchanged and
 *         may be waited on again), ::NXC_ERR_CANCELLED, or the op's error
 *         code if it is ERRORED (e.g. ::NXC_ERR_PEER_FAILED, or
 *         ::NXC_ERR_PEER_ABORTED when the peer cancelled or refused it).
 */
NXC_API int nxc_op_wait(nxc_op_t *op, int timeout_ms);

/**
 * @brief Requests cancellation.
 *
 * No effect on a COMPLETE or CANCELLED op. An op in flight becomes CANCELLED
 * at once and is never reported COMPLETE; data already posted to the
 * transport may still land. The peer is told: an active op sends ABORT once
 * the transport is done with its buffers, a passive op answers its taker
 * (or a later BEGIN) with a refusal; the peer's op then ends ERRORED with
 * ::NXC_ERR_PEER_ABORTED, unless it had completed (the table in
 * @ref truth gives every order of events). A cancelled passive op stops
 * exposing its memory to new transfers. So the buffers stay lent until
 * nxc_op_release(): a transfer the transport had already accepted may still
 * be writing them, and only release waits for it.
 * @return ::NXC_OK, ::NXC_ERR_STATE (the op is ERRORED), ::NXC_ERR_INVALID_ARG.
 */
NXC_API int nxc_op_cancel(nxc_op_t *op);

/**
 * @brief The local descriptors of a COMPLETE op (Dynamo's `results()`).
 * @param [out] descs array owned by the op, valid until nxc_op_release().
 * @param [out] n     its length.
 * @return ::NXC_OK or ::NXC_ERR_STATE (not COMPLETE), ::NXC_ERR_INVALID_ARG.
 */
NXC_API int nxc_op_results(nxc_op_t *op, const nxc_descriptor_t **descs, size_t *n);

/**
 * @brief Why an ERRORED op failed.
 * @param [out] detail a sentence owned by the op, valid until release (may be NULL).
 * @return the op's error code, or ::NXC_OK if it is not ERRORED.
 */
NXC_API int nxc_op_error(nxc_op_t *op, const char **detail);

/** @brief The op's kind. */
NXC_API nxc_op_kind_t nxc_op_kind(const nxc_op_t *op);

/**
 * @brief Releases an op. An op still in flight is cancelled first, and the
 *        call returns only once the transport no longer touches its local
 *        buffers, so the caller may free them right after. A passive op's
 *        memory stops being exposed. NULL is a no-op.
 */
NXC_API void nxc_op_release(nxc_op_t *op);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* NIXL_CONNECT_H */
