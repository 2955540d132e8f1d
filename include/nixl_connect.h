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
 * @section fork fork()
 * A connector is not usable in a child forked from the process that created
 * it: the child holds copies of its UCX state, locks and fds, which belong
 * to the parent. The child creates a connector of its own (the parent's
 * metadata may be handed to it and used as usual). The library notices the
 * fork (a pthread_atfork counter, one load per call): in the child, every
 * call on an inherited connector or op that would drive or change it
 * returns ::NXC_ERR_STATE with a sentence saying so, nxc_op_status()
 * returns ::NXC_OP_UNINITIALIZED, and nxc_op_release(),
 * nxc_connector_destroy() and nxc_mem_free() do nothing (the child's exit
 * reclaims the copies). The parent's connector is unaffected.
 *
 * @section death Peer death, clean exits and unreachable peers
 * - A peer's death is declared only after everything it had sent and the
 *   transport holds (a shared-memory FIFO, a socket buffer) has been
 *   processed: a peer that completes a transfer and exits at once leaves
 *   both sides ::NXC_OP_COMPLETE, whichever way this side is driven
 *   (nxc_op_wait(), the progress thread, an fd loop). Ops still depending
 *   on a dead peer end ::NXC_ERR_PEER_FAILED ("worker ... exited").
 * - A peer that leaves the first message of an op unanswered for 5 s (UCX
 *   cannot reach it over the transports it chose, e.g. another network
 *   namespace or a wrong UCX_NET_DEVICES, or it does not drive its
 *   connector; the environment variable NXC_REACH_TIMEOUT_MS, read when a
 *   connector is created, changes the 5 s: at least 100 ms, else
 *   nxc_connector_create() returns ::NXC_ERR_INVALID_ARG) is declared
 *   failed the same way. The first answer is small (a BEGIN's
 *   completion; toward a NIXL agent, a one-byte read before the data), so
 *   a big transfer that takes longer than the deadline is never mistaken
 *   for an unreachable peer. It is declared failed the active op ends
 *   ::NXC_ERR_PEER_FAILED with a sentence naming UCX_TLS and
 *   UCX_NET_DEVICES. An address UCX finds unreachable at once makes
 *   nxc_begin_read()/nxc_begin_write() return ::NXC_ERR_PEER_FAILED with
 *   that sentence. A connector whose UCX context has a TCP transport asks
 *   UCX for non-blocking TCP connects (UCX's CONN_NB, unless the
 *   environment sets UCX_TCP_CONN_NB), so a begin toward a peer behind a
 *   firewall that drops the SYN-ACKs returns at once and the deadline
 *   reports it; with UCX_TCP_CONN_NB=n it blocks in connect() for the
 *   kernel's SYN retries (~130 s). The passive side has heard nothing from such a peer: its
 *   op stays ::NXC_OP_INITIALIZED until its own timeout or cancel, exactly
 *   as when no peer ever began.
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
 * ::NXC_ERR_PEER_FAILED. A write of at most 4 KiB into one buffer (over
 * the default active-message protocol) sends BEGIN, its data and DONE as
 * one message within nxc_begin_write(), so cancelling it is always the
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
 * after the data arrived. nxc_op_wait() on a passive op returns only once
 * that answer has left this process (or the deadline passed), and
 * nxc_op_release() of a passive op drives its connector until it has (at
 * most about 1 s), so a passive worker may wait for its op, then stop
 * driving, without stranding its peer. To embed the connector in
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

/** @cond INTERNAL */
#if defined(NXC_BUILDING_LIBRARY) && defined(__GNUC__)
#define NXC_API __attribute__((visibility("default")))
#else
#define NXC_API
#endif
/** @endcond */

/** @defgroup version Version
 *  @{ */
#define NXC_VERSION_MAJOR 0 /**< @brief changes with an incompatible API */
#define NXC_VERSION_MINOR 1 /**< @brief changes when the API grows */
#define NXC_VERSION_PATCH 0 /**< @brief changes with fixes only */
/** @brief The library's version as "MAJOR.MINOR.PATCH"; static string. */
NXC_API const char *nxc_version(void);

/**
 * @brief Whether the loaded library serves a program built against header
 *        version @p major.@p minor.@p patch; call it as
 *        NXC_CHECK_COMPATIBILITY() at start-up.
 *
 * Compatible when the majors are equal and the library's minor is at least
 * the header's: minor versions only add, and any ABI break changes the
 * shared library's soname (libnixl_connect.so.0 now).
 * @return ::NXC_OK, or ::NXC_ERR_UNSUPPORTED with a detail naming both
 *         versions.
 * @note Thread-safe.
 */
NXC_API int nxc_check_compatibility(int major, int minor, int patch);
/** @brief nxc_check_compatibility() with this header's version. */
#define NXC_CHECK_COMPATIBILITY() \
    nxc_check_compatibility(NXC_VERSION_MAJOR, NXC_VERSION_MINOR, NXC_VERSION_PATCH)
/** @} */

/** @defgroup errors Error codes
 *  Values are pinned: they never change between versions.
 *  @{ */
/** @brief Return codes: ::NXC_OK or a negative error. */
enum nxc_status_code {
    NXC_OK                 = 0,   /**< success */
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
 * @brief The name of an error code as written in this header, e.g.
 *        "NXC_ERR_TIMED_OUT" for ::NXC_ERR_TIMED_OUT ("NXC_OK" for 0).
 * @return a static string, never NULL ("NXC_ERR_UNKNOWN" for unknown codes).
 * @note Thread-safe.
 */
NXC_API const char *nxc_err_name(int err);

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
    nxc_device_kind_t kind; /**< host or CUDA */
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
 * @param [in]  dev  the device.
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
    void        *ptr;    /**< the first byte */
    size_t       size;   /**< 0 is allowed and moves nothing */
    nxc_device_t device; /**< where the memory is; all descriptors of an op agree */
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
    NXC_OP_UNINITIALIZED = 0, /**< not an op (a NULL handle) */
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
typedef struct nxc_connector nxc_connector_t; /**< @brief a connector (opaque) */
typedef struct nxc_op        nxc_op_t;        /**< @brief an operation (opaque) */
typedef struct nxc_metadata  nxc_metadata_t;  /**< @brief parsed metadata (opaque, immutable) */

/** @brief The protocol a worker speaks (see nxc_metadata_wire() and
 *         ::nxc_connector_config_t.wire). */
typedef enum nxc_wire {
    NXC_WIRE_UNSPECIFIED = 0, /**< no metadata to tell (NULL) */
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
    NXC_CONFIG_REG_CACHE = 1u << 3,
    NXC_CONFIG_WIRE      = 1u << 4,
    NXC_CONFIG_DIRECT_LOCAL = 1u << 5
};

/** @brief Default ::nxc_connector_config_t.reg_cache. */
#define NXC_REG_CACHE_DEFAULT 64u
/** @brief Largest ::nxc_connector_config_t.reg_cache. */
#define NXC_REG_CACHE_MAX     4096u

/**
 * @brief Connector parameters. Set `field_mask` to the fields you fill;
 *        the others take their documented defaults. New fields are only ever
 *        appended, with a new mask bit, so old binaries keep working.
 */
typedef struct nxc_connector_config {
    uint64_t    field_mask; /**< NXC_CONFIG_* bits of the fields set */
    /** Worker name (Dynamo's `worker_id`), 1-255 bytes, copied at create.
     *  Default: 32 random hexadecimal digits. Peers know a worker by its
     *  name and process, so the live connectors of one process must have
     *  distinct names: nxc_connector_create() refuses a name that a live
     *  connector of this process already has. Destroying a connector and
     *  creating another under the same name is fine: its peers take it
     *  for a new worker (so is a forked child using its parent's name). */
    const char *name;
    /** How long nxc_op_wait() spins on the transport after the last event
     *  before it sleeps on the event fd, in microseconds (0-1000000); 20
     *  times as long while a transfer of this connector is in progress
     *  and one of its peers is reached over shared memory (not when all
     *  are reached over the network, where spinning would take the CPU
     *  the kernel needs), because waking a sleeping thread costs tens of
     *  microseconds and a completion chains several wake-ups. Spinning
     *  keeps transfers at transport latency; sleeping keeps idle waits at
     *  zero CPU. Default: 50 (so 1 ms while busy). 0 never spins. */
    unsigned    spin_us;
    /** Nonzero: the connector starts one thread of its own that drives the
     *  transport whenever its fd fires, so transfers to and from this
     *  worker move even while the application calls nothing (a passive
     *  worker that only waits now and then, or two connectors in one
     *  thread). Waiters then sleep until that thread reports their op.
     *  Default: 0 (no thread; progress happens inside the caller's calls). */
    int         progress_thread;
    /** How many registrations of host memory the connector keeps after the
     *  op that made them is released, so that later ops over the same
     *  memory skip ucp_mem_map (see @ref exposure for what that means for
     *  peers). Least recently used ones go first; a cached registration is
     *  dropped as soon as its memory is unmapped (UCX's memory hooks report
     *  munmap, madvise(DONTNEED), brk, mremap, shmdt). Without working hooks
     *  the cache stays off. An op over more separately allocated buffers
     *  than this re-registers them on every op: raise it, or use
     *  nxc_mem_register(). Default: ::NXC_REG_CACHE_DEFAULT; 0 turns it off;
     *  at most ::NXC_REG_CACHE_MAX. */
    unsigned    reg_cache;
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
    /** Nonzero: this connector's *passive* ops (of wire ::NXC_WIRE_NXC) let
     *  a peer on the same host copy straight into or out of their buffers
     *  with process_vm_writev/readv, without this process running: a
     *  waiting or busy passive worker costs the transfer nothing, and the
     *  active side's op is final when nxc_begin_read() or nxc_begin_write()
     *  returns (the copy runs inside that call). The peer claims the op
     *  through a slot of a shared table (a memfd) with one atomic
     *  compare-and-swap, so an op still has one taker, and metadata of an
     *  op that ended reaches nothing. nxc_op_cancel() and nxc_op_release()
     *  close the slot first: a copy that claimed it before them finishes
     *  before they return (they wait for it as long as the copying process
     *  lives: one stopped with SIGSTOP or a debugger holds them until it
     *  resumes or dies), and none starts after. The op completes when the
     *  copy is over; its peer then writes this connector's wake eventfd
     *  if someone asleep on it needs to know at once: a thread in
     *  nxc_op_wait() for this op, or a caller polling nxc_connector_fd()
     *  after nxc_connector_progress(). A thread asleep in nxc_op_wait()
     *  for another op is left asleep (that write costs the copying
     *  process the wake-up of an idle CPU inside its nxc_begin_*(), up to
     *  ~46 us on a VM): the op is COMPLETE when anyone next looks at it,
     *  and a wait for it then returns at once. An op of 8 KiB
     *  or less whose owner is waiting for it in nxc_op_wait() and not
     *  asleep goes by messages instead, which are faster then (over
     *  shared memory). A read of 2 MiB or more, or a write of 4 MiB or
     *  more, whose buffers lie back to back on each side (one buffer, or
     *  blocks of one) is shared with the passive side when it can help: a
     *  thread of this connector that progresses it (nxc_op_wait(),
     *  nxc_connector_progress(), the progress thread) while the peer
     *  copies copies chunks between the op's buffer and a 4 MiB ring in
     *  the shared table, and the peer copies the rest; both CPUs copy, as
     *  UCX's own same-host protocols do (the table's memfd then holds that
     *  ring in shared memory until the connector is destroyed). The peer
     *  never waits for that help longer than a fraction of a millisecond,
     *  so a passive worker that is asleep, busy or stopped only helps less;
     *  the bytes in the ring are readable only by processes that may read
     *  this one anyway. NXC_DIRECT_HELP=0 in the environment of either
     *  side turns the help off. Used only when the peer runs on this host, in this
     *  pid namespace, as a user the kernel lets read and write this process
     *  (the ptrace rules; yama ptrace_scope 1 or more refuses it) and every
     *  buffer on both sides is host memory, and where UCX itself would
     *  reach the peer over shared memory (so not when UCX_TLS leaves UCX
     *  no shared-memory transport, e.g. UCX_TLS=tcp, nor across network,
     *  IPC or mount namespaces); otherwise, or when the peer's library
     *  does not know the path, or NXC_PROTOCOL is set, the op moves by
     *  messages. Know what that grants: a process allowed to do this may
     *  already read and write all of this process's memory (ptrace); the
     *  table guards against races and stale metadata, not against such a
     *  process. Up to 4,095 open ops at once offer it (more go by
     *  messages). Default (field not set): 1, or the environment variable
     *  NXC_DIRECT_LOCAL (0 or 1; anything else makes
     *  nxc_connector_create() fail with ::NXC_ERR_INVALID_ARG). */
    int         direct_local;
} nxc_connector_config_t;

/**
 * @brief Creates a connector.
 * @param [in]  cfg NULL for defaults; read during the call only.
 * @param [out] out the connector; destroy it with nxc_connector_destroy().
 * @return ::NXC_OK, ::NXC_ERR_INVALID_ARG (empty or over-long name, a
 *         name a live connector of this process has, spin out of range,
 *         unknown wire, a malformed NXC_DIRECT_LOCAL or
 *         NXC_REACH_TIMEOUT_MS), ::NXC_ERR_TRANSPORT (UCX could not start),
 *         ::NXC_ERR_SYSTEM (an OS call failed, or a process limit is
 *         exhausted: fewer than 32 free file descriptors are refused
 *         up front, because UCX 1.13 aborts the process when its fd table
 *         fills while it starts; the detail names RLIMIT_NOFILE and
 *         `ulimit -n`), ::NXC_ERR_NO_MEMORY (the detail names RLIMIT_AS
 *         or RLIMIT_MEMLOCK, `ulimit -v` / `ulimit -l`, when one is set).
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

/** @brief How the sleeps of a connector's waits ended (counted since create). */
typedef struct nxc_wakeup_stats {
    uint64_t sleeps;          /**< a waiting thread slept on the connector's fd */
    uint64_t fd_wakeups;      /**< ... and the fd woke it (UCX, another thread, a peer's death) */
    uint64_t backstop_fired;  /**< ... and the pending-op bound (nxc_connector_timeout_ms) woke it */
    uint64_t backstop_served; /**< ... and progress then found work the fd had not reported:
                                   a wake-up that UCX missed, or a same-host direct copy
                                   into an op no thread waited for (such a copy does not
                                   wake a thread that waits for another op) */
} nxc_wakeup_stats_t;

/**
 * @brief Copies the connector's wake-up counters into @p out: how often
 *        nxc_op_wait() and the progress thread were woken by an event and
 *        how often by the safety bound instead. For diagnosis and benchmarks;
 *        sleeps of applications polling nxc_connector_fd() themselves are not
 *        seen here. Thread-safe.
 * @return ::NXC_OK, or ::NXC_ERR_INVALID_ARG for a NULL argument.
 */
NXC_API int nxc_connector_wakeups(nxc_connector_t *c, nxc_wakeup_stats_t *out);
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
 * (its rkey cached) across ops, which moves bytes between processes on one
 * host faster than malloc'd memory does (figures: docs/PERFORMANCE.md, "The
 * allocator for exposed buffers"). The allocation is advised to huge pages
 * (madvise(MADV_HUGEPAGE), after UCX's own hugetlbfs attempt): it gets them
 * where the system allows transparent huge pages for shared memory
 * (/sys/kernel/mm/transparent_hugepage/shmem_enabled not "never") and
 * silently keeps 4 KiB pages elsewhere. Experimental: new in this version,
 * tested on one host.
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
 * @param [in] c the connector that registers the memory.
 */
NXC_API int nxc_mem_alloc(nxc_connector_t *c, size_t size, void **ptr);

/** @brief Frees memory from nxc_mem_alloc(). NULL, or a pointer this
 *         connector did not allocate, is ignored. Memory an open op still
 *         uses is unmapped when that op is released. Thread-safe. */
NXC_API void nxc_mem_free(nxc_connector_t *c, void *ptr);

/** @brief A registration of memory the caller owns (nxc_mem_register()). */
typedef struct nxc_registration nxc_registration_t;

/**
 * @brief Registers host memory once, for any number of later ops (as NIXL's
 *        `register_mem`; Dynamo's `Descriptor.register_with_connector`).
 *
 * Passive ops whose buffers lie inside @p mem then reuse this registration
 * instead of registering per op (or per cache entry): a server that keeps a
 * pool of buffers registers the pool once. Ops need no other change. See
 * @ref exposure for what it exposes, to whom, until when.
 * @param [in]  c    the connector whose ops will use the registration.
 * @param [in]  mem  the memory: host, non-NULL pointer, size > 0; read during
 *                   the call. The memory is borrowed until nxc_mem_deregister()
 *                   and must stay mapped until then.
 * @param [out] out  the registration; end it with nxc_mem_deregister().
 *                   nxc_connector_destroy() ends those that are left, after
 *                   which the handle is invalid.
 * @return ::NXC_OK, ::NXC_ERR_INVALID_ARG (NULL argument, NULL pointer, size
 *         0, a range that wraps), ::NXC_ERR_UNSUPPORTED (CUDA memory),
 *         ::NXC_ERR_DEVICE (other kinds), ::NXC_ERR_TRANSPORT (UCX refused
 *         it), ::NXC_ERR_NO_MEMORY.
 * @note Thread-safe.
 */
NXC_API int nxc_mem_register(nxc_connector_t *c, const nxc_descriptor_t *mem,
                             nxc_registration_t **out);

/**
 * @brief Ends a registration: no new op uses it; the memory is deregistered
 *        at once, or when the last open op that uses it is released. NULL is
 *        a no-op. Thread-safe; not after nxc_connector_destroy().
 */
NXC_API void nxc_mem_deregister(nxc_registration_t *reg);

/**
 * @page exposure What exposed memory a peer can reach, and until when
 *
 * The metadata of a passive op names its buffers and carries a UCX rkey per
 * contiguous span. Two things can reach that memory:
 *
 * - **Our protocols.** Without RDMA hardware (shared memory, CMA, TCP) ops
 *   move data as active messages (the default there): the passive side
 *   checks every message's op key, descriptor index, sender and size and
 *   itself receives the bytes into the buffer, or refuses them. Memory is
 *   written or read for an *open* op only, whatever is registered, cached
 *   or pre-registered: holding old metadata gains nothing once the op is
 *   released (or cancelled).
 * - **One-sided RMA with the rkey** (our RMA protocol on InfiniBand/RoCE,
 *   forced with NXC_PROTOCOL=rma, or a peer that uses the rkey through UCX
 *   itself). The rkey reaches the whole *registration* behind it, for as long
 *   as that registration lives:
 *   - memory of an op registered for that op alone (cache off or full):
 *     the op's spans, until the op is released;
 *   - memory in the registration cache (the default): the span registered
 *     when the entry was made (a later op over part of it gets the same
 *     rkey), until the entry is evicted, its memory is unmapped, or the
 *     connector is destroyed - beyond the op's release;
 *   - memory in nxc_mem_register(): the whole registered range, until
 *     nxc_mem_deregister() and the release of the last op using it;
 *   - nxc_mem_alloc() memory: the whole allocation, until nxc_mem_free().
 *   Only peers that were given metadata of an op over that memory hold the
 *   rkey. Note that UCX >= 1.13 keeps registrations in its own cache too:
 *   on InfiniBand the memory region stays registered after ucp_mem_unmap
 *   (until UCX evicts it or the memory is unmapped), so even the per-op
 *   case does not revoke RMA access at release on such hardware. Over
 *   shared memory and TCP, UCX emulates put/get and checks no rkey at all.
 *   So: where peers are not trusted, do not force RMA; the default
 *   protocol without RDMA hardware is the one that enforces "open op only".
 *   Set ::nxc_connector_config_t.reg_cache to 0 to keep registrations
 *   per op.
 */
/** @} */

/** @defgroup passive Passive operations
 *  @{ */
/**
 * @brief Exposes @p local to be read by one peer (Dynamo's
 *        `create_readable`).
 *
 * Registers the memory with the transport (or reuses a registration from
 * nxc_mem_register(), nxc_mem_alloc() or the registration cache); the
 * protocols reach only this operation's buffers, and only until the operation
 * ends or is released (one-sided RMA with the rkey may reach more: see
 * @ref exposure).
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
 * @param [in] c the connector.
 * @param [in] n the number of descriptors in @p local.
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
 * @param [in] op a passive op.
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
 *         ::NXC_ERR_UNSUPPORTED, ::NXC_ERR_PEER_FAILED (peer known dead, or
 *         unreachable: see @ref death), ::NXC_ERR_TRANSPORT,
 *         ::NXC_ERR_SYSTEM (fewer than 32 free fds for a new endpoint, see
 *         nxc_connector_create()), ::NXC_ERR_STATE (in a forked child, see
 *         @ref fork), ::NXC_ERR_NO_MEMORY. A read the passive side
 *         refuses (another reader took the op, it completed, was cancelled
 *         or released) is begun and then ends ERRORED with
 *         ::NXC_ERR_PEER_ABORTED; see @ref truth.
 * @param [in] c the connector.
 * @param [in] n the number of descriptors in @p local.
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
 *         code if it is ERRORED (e.g. ::NXC_ERR_PEER_FAILED: the peer died
 *         before its part was done, or did not answer for 5 s, see
 *         @ref death; ::NXC_ERR_PEER_ABORTED when the peer cancelled or
 *         refused it), ::NXC_ERR_STATE (in a forked child).
 * @param [in] op the op.
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
 * @param [in] op the op.
 */
NXC_API int nxc_op_results(nxc_op_t *op, const nxc_descriptor_t **descs, size_t *n);

/**
 * @brief Why an ERRORED op failed.
 * @param [out] detail a sentence owned by the op, valid until release (may be NULL).
 * @return the op's error code, or ::NXC_OK if it is not ERRORED.
 * @param [in] op the op.
 */
NXC_API int nxc_op_error(nxc_op_t *op, const char **detail);

/** @brief The op's kind. */
NXC_API nxc_op_kind_t nxc_op_kind(const nxc_op_t *op);

/**
 * @brief How many of the op's bytes this side has moved so far, for a
 *        progress display. It never drives the transport (nxc_op_wait()
 *        and nxc_connector_progress() do) and never over-counts.
 *
 * What it counts depends on the side and the protocol:
 * - The side that *receives* the data (a writable op, an active read)
 *   counts bytes in place in its buffers; the side that *sends* it (an
 *   active write, a readable op) counts bytes whose sends the transport has
 *   finished (for large messages: fetched by the peer).
 * - It advances in whole messages: over the active-message protocol (the
 *   default without RDMA hardware) one per run of adjacent descriptors,
 *   runs being cut at 64 MiB, so a single descriptor moves as one message
 *   and counts all at once. Cut a buffer into several descriptors to see
 *   finer steps.
 * - With the one-sided RMA protocol (RDMA hardware, NXC_PROTOCOL=rma) and
 *   with NIXL peers (::NXC_WIRE_NIXL) the transport reports nothing
 *   before the end: the count stays 0 until the op is COMPLETE.
 *
 * So it is a lower bound of what has really moved, exactly the sum of the
 * descriptor sizes once the op is ::NXC_OP_COMPLETE; a CANCELLED or
 * ERRORED op keeps what it had counted.
 * @param [in]  op    the op.
 * @param [out] bytes the count.
 * @return ::NXC_OK, ::NXC_ERR_INVALID_ARG (NULL argument), ::NXC_ERR_STATE
 *         (in a forked child).
 * @note Thread-safe; takes the connector's lock briefly, so polling it
 *       every few milliseconds from another thread costs little.
 */
NXC_API int nxc_op_bytes_done(const nxc_op_t *op, uint64_t *bytes);

/**
 * @brief Releases an op. An op still in flight is cancelled first, and the
 *        call returns once the transport no longer touches its local
 *        buffers, so the caller may free them right after. A passive op's
 *        memory stops being exposed. NULL is a no-op.
 *
 * How long it may block: data this side *receives* is waited for up to
 * 10 s, then the peer is declared failed (its endpoint closed, its other
 * ops ::NXC_ERR_PEER_FAILED). Data this side *sends* (an active write, or
 * the data of a readable op) may be pulled by the peer (UCX's rendezvous
 * reads it, with CMA on one host): release waits up to 10 s for that pull
 * too. Known limit: a peer that pulls nothing for longer (stopped, or
 * starved of CPU for 10 s) is not failed (force-closing a live peer's TCP
 * endpoint crashed UCX 1.13), so it may still read the buffer after
 * release returned; its op then ends ERRORED (::NXC_ERR_PEER_ABORTED),
 * never COMPLETE, but bytes written into the buffer after release may
 * reach its buffer.
 */
NXC_API void nxc_op_release(nxc_op_t *op);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* NIXL_CONNECT_H */
