/* nxc serve/get/recv/put: what the four file-transfer commands share —
 * options, mapped files and their descriptors, waiting with a deadline, and
 * the channels that carry the metadata (stdout/argument, or NATS). */
#ifndef NXC_XFER_H
#define NXC_XFER_H

#include <stdbool.h>
#include <stdint.h>

#include "nxc.h"

/* ---- the four commands (nxc_transfer.c) --------------------------------------- */
/* A command is a role: the op kind it moves (READ: serve/get, WRITE:
 * recv/put) and its side (passive: serve/recv expose a file and offer the
 * metadata; active: get/put take the metadata and start the transfer). */
typedef struct role {
    const char   *cmd;
    nxc_op_kind_t kind;
    bool          passive;
    const char   *file_word; /* "FILE" or "OUT", for the usage messages */
    const char   *waiting;   /* passive: what the progress line says */
    const char   *moving;    /* active: "receiving" or "sending" */
    const char   *verb;      /* the rate line: "served", "received", "sent" */
    const char   *note;      /* after the time on the rate line */
    void        (*help)(void);
} role_t;

/* ---- options (nxc_xfer.c) ---------------------------------------------------- */
typedef struct xargs {
    const char *pos[2];
    int         npos;
    double      timeout;    /* seconds, 0: none */
    const char *nats;       /* --nats URL, or NULL */
    const char *subject;    /* --subject S, or NULL */
    const char *nats_creds; /* --nats-creds FILE, or NULL */
    uint64_t    size;       /* --size (recv only) */
    bool        has_size;
    bool        nixl;       /* --nixl (serve, recv): publish NIXL's format */
    bool        direct_local; /* --direct-local (serve, recv): config direct_local */
    bool        help;
    bool        json;       /* --json: a result object on stdout at the end */
    uint64_t    deadline;   /* now_ns() at parse + timeout, 0: none */
} xargs_t;

/* Parses the options of @p r's command: --timeout, --nats, --subject,
 * --nats-creds, --json, --help, --nixl and --direct-local for the passive
 * side and --size for
 * recv; at most one positional argument on the passive side, two on the
 * active one. Checks that --nats and --subject come together and that this
 * build has NATS. Returns 0 or an exit code (message printed). */
int xargs_parse(const role_t *r, int argc, char **argv, xargs_t *a);

/* A connector for the command: wire NIXL with --nixl, direct_local with
 * --direct-local. */
int xargs_connector(const xargs_t *a, nxc_connector_t **c);

/* ---- files and descriptors (nxc_xfer.c) ---------------------------------------- */
/* An exposed file is cut into descriptors of 64 MiB, more for files over
 * 64 GiB (at most 1024 of them, of at most 1 GiB): the transfer then moves
 * in steps that the progress line can count (nxc_op_bytes_done()), with
 * metadata of a few KiB. */
#define PIECE_MIN   (64 * MIB)
#define PIECE_MAX   GIB
#define PIECES_MAX  1024

typedef struct xfile {
    const char       *path;    /* "-": standard input or output */
    void             *map;     /* a valid address even for 0 bytes */
    uint64_t          size;
    uint64_t          maplen;  /* bytes mapped at map (0: map is no mapping) */
    bool              created; /* made by us: removed if the transfer fails */
    bool              stdio;   /* "-": in memory, read from stdin / written to stdout */
    nxc_descriptor_t *descs;
    size_t            n;
} xfile_t;

/* Maps an existing file read-only (private, prefaulted); "-" reads all of
 * standard input into memory. */
int xfile_open_read(const char *cmd, const char *path, xfile_t *f);
/* Creates (truncates) a file of @p size bytes, mapped shared read-write;
 * "-" is memory that xfile_close() writes to standard output. While the file
 * exists, SIGINT/SIGTERM outside a transfer remove it before the process
 * dies. */
int xfile_create(const char *cmd, const char *path, uint64_t size, xfile_t *f);
/* Descriptors covering the file, cut as said at PIECE_MIN. */
int xfile_pieces(const char *cmd, xfile_t *f);
/* Descriptors with the sizes of @p md's, back to back in the file; the
 * file's size must equal their total (sizes_total() gives it). */
int xfile_mirror(const char *cmd, xfile_t *f, const nxc_metadata_t *md);
/* The total of @p md's descriptor sizes; -1 (message printed) on overflow. */
int sizes_total(const char *cmd, const nxc_metadata_t *md, uint64_t *total);
/* Unmaps; flushes a created file (or writes it to stdout) when @p ok,
 * removes it when not. Returns 0 or an exit code. */
int xfile_close(const char *cmd, xfile_t *f, bool ok);

/* ---- signals (nxc_xfer.c) ------------------------------------------------------ */
/* SIGINT and SIGTERM: inside xwait() they cancel the op (the peer is told)
 * and the command unwinds; elsewhere they remove a created file and the
 * process dies of the signal. */
void xsignals_install(void);
/* The signal caught (SIGINT/SIGTERM), or 0. */
int xinterrupted(void);
/* After the command has cleaned up: says so and dies of the signal caught
 * (the shell sees 130 or 143). */
void xdie_interrupted(const char *cmd);

/* ---- waiting (nxc_xfer.c) ------------------------------------------------------ */
/* Waits for @p op until the deadline or a signal (the op is then cancelled
 * and NXC_ERR_CANCELLED returned); NXC_ERR_TIMED_OUT once the deadline has
 * passed. On a terminal it refreshes a progress line: "<what>... 1.2 s"
 * until the first bytes of the @p total have moved, then (like curl) the
 * bytes moved, the percent, the rate and the time left. */
int xwait(nxc_op_t *op, const char *what, uint64_t total, uint64_t deadline);
void print_rate(const char *verb, uint64_t bytes, uint64_t ns, const char *note);

/* ---- metadata channels (nxc_xfer.c; NATS in nxc_xfer_nats.c) --------------------- */
/* Prints a passive op's metadata as one line on stdout. */
int md_print(const char *cmd, nxc_op_t *op);
/* Parses METADATA text, @PATH or '-' (first line of stdin) and checks its
 * kind: READ for get, WRITE for put. */
int md_load(const char *cmd, const char *src, nxc_op_kind_t kind, nxc_metadata_t **md);
/* Checks the kind of parsed metadata (the message names the right peer). */
int md_check_kind(const char *cmd, const nxc_metadata_t *md, nxc_op_kind_t kind);

typedef struct nats_offer nats_offer_t;

/* True if this nxc was built with the NATS module. */
bool nats_available(void);
/* Passive side: offers @p op's metadata on the subject. A readable op
 * (serve) answers requests (request/reply) until nats_offer_close(); a
 * writable one (recv) is sent to the worker listening there, and the call
 * returns once it is taken. Retries while nobody listens, until the
 * deadline. Returns 0 or an exit code. */
int nats_offer(const char *cmd, const xargs_t *a, nxc_op_t *op, nats_offer_t **out);
void nats_offer_close(nats_offer_t *o);
/* Active side: get requests the metadata (retrying while nobody serves),
 * put waits for it to be sent; until the deadline. */
int nats_take(const char *cmd, const xargs_t *a, nxc_op_kind_t kind,
              nxc_metadata_t **md);

#endif /* NXC_XFER_H */
