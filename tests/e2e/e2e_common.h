/*
 * Shared helpers of the end-to-end tests (tests/e2e). Public API only:
 * nothing here includes a private header of the library.
 *
 * - CHECK(cond, fmt, ...): on failure prints file:line, the message and
 *   nxc_last_error(), kills and reaps every peer process, exits 1.
 * - Buffers filled with a pattern that depends on the seed, the descriptor
 *   index and the offset; destinations pre-filled with pattern ^ 0x5A (so
 *   every byte differs from what must land there).
 * - Peers: the helper binary nxc_test_peer, started with fork+exec, talks a
 *   line protocol over a socketpair (see nxc_test_peer.c for the commands).
 */
#ifndef NXC_E2E_COMMON_H
#define NXC_E2E_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "nixl_connect.h"

#define E2E_INIT_XOR   0x5Au /* destination pre-fill: pattern ^ this */
#define E2E_MARKER_XOR 0xA5u /* "overwritten after release": pattern ^ this */

#define MiB ((size_t)1 << 20)
#define KiB ((size_t)1 << 10)

void e2e_fail(const char *file, int line, const char *what, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));
/* copies nxc_last_error() aside before the failure message is built */
void e2e_snap(void);

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            e2e_snap();                                                        \
            e2e_fail(__FILE__, __LINE__, "CHECK(" #cond ")", " " __VA_ARGS__);  \
        }                                                                      \
    } while (0)

/* A failure that is reported at once but lets the test go on; e2e_pass()
 * then reports FAIL and returns 1. */
void e2e_soft_fail(const char *file, int line, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define SOFT_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            e2e_snap();                                                        \
            e2e_soft_fail(__FILE__, __LINE__, "CHECK(" #cond ")", " " __VA_ARGS__); \
        }                                                                      \
    } while (0)

/* rc must equal expected; prints both with names on failure */
#define CHECK_RC(rc_expr, expected, ...)                                       \
    do {                                                                       \
        int rc_ = (rc_expr);                                                   \
        int ex_ = (expected);                                                  \
        if (rc_ != ex_) {                                                      \
            char what_[512];                                                   \
            e2e_snap();                                                        \
            snprintf(what_, sizeof what_, "%s returned %d (%s), expected %d (%s)", \
                     #rc_expr, rc_, nxc_strerror(rc_), ex_, nxc_strerror(ex_)); \
            e2e_fail(__FILE__, __LINE__, what_, " " __VA_ARGS__);              \
        }                                                                      \
    } while (0)

/* Installs an alarm(seconds) that kills the peers and exits 2; prints the
 * test name and random seed. Returns the seed (env NXC_E2E_SEED or time). */
unsigned e2e_init(const char *test_name, unsigned alarm_seconds);
/* Names the step in progress; the alarm handler prints it on a timeout. */
void e2e_step(const char *what);
/* Prints "<name>: PASS (<summary>)" and returns 0. */
int e2e_pass(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "shm" or "tcp" from UCX_TLS, for messages */
const char *e2e_transport(void);

double e2e_now_ms(void);
void e2e_sleep_ms(int ms);

/* Leak checks: this process's open file descriptors (/proc/self/fd, not
 * counting the one that reads it) and resident set (VmRSS, KiB). */
int e2e_open_fds(void);
long e2e_rss_kib(void);
uint32_t e2e_rand(void); /* seeded by e2e_init */

/* true if @p s contains @p v as a whole decimal number */
int e2e_has_number(const char *s, unsigned long long v);

/* ---------- patterns and buffer sets ---------- */
static inline uint8_t e2e_pat(uint32_t seed, size_t idx, size_t off)
{
    uint32_t x = (uint32_t)off;
    return (uint8_t)(x ^ (x >> 8) ^ (x >> 16) ^ (x >> 24) ^ (uint32_t)(idx * 37u) ^
                     (seed * 101u) ^ (uint32_t)(off >> 32));
}
void e2e_fill(void *p, size_t n, uint32_t seed, size_t idx, uint8_t xr);
/* returns (size_t)-1 if p[off] == pat ^ xr for all off, else the first bad offset */
size_t e2e_verify(const void *p, size_t n, uint32_t seed, size_t idx, uint8_t xr);

typedef struct e2e_bufs {
    size_t n;
    uint32_t seed;
    void **mem;               /* each malloc(max(size,1)), or blocks of mem[0] */
    nxc_descriptor_t *d;
    int one_span;             /* the buffers are back to back in mem[0] */
} e2e_bufs_t;

/* With NXC_E2E_ONE_SPAN=1 in the environment the buffers are blocks of
 * one allocation, back to back (as a KV cache's blocks are). */
void e2e_bufs_alloc(e2e_bufs_t *b, uint32_t seed, size_t n, const size_t *sizes);
void e2e_bufs_fill(e2e_bufs_t *b, uint8_t xr);
/* 0 if all equal pattern ^ xr; else fills *bad_idx and *bad_off and returns -1 */
int e2e_bufs_verify(const e2e_bufs_t *b, uint8_t xr, size_t *bad_idx, size_t *bad_off);
void e2e_bufs_free(e2e_bufs_t *b);
/* checks nxc_op_results(op) == OK and returns exactly b's descriptors */
void e2e_check_results(nxc_op_t *op, const e2e_bufs_t *b, const char *what);

/* ---------- peers ---------- */
typedef struct e2e_peer {
    pid_t pid;
    int fd;          /* our end of the socketpair */
    char *rbuf;      /* read buffer */
    size_t rlen, rcap;
    char *line;      /* last line returned by e2e_peer_readline */
    size_t line_cap;
} e2e_peer_t;

/* fork + exec nxc_test_peer serve <fd>; the child gets PR_SET_PDEATHSIG. */
void e2e_peer_start(e2e_peer_t *p);
/* The same with options: E2E_PEER_NO_CMA makes process_vm_readv/writev fail
 * with EPERM in the peer (a seccomp filter), as a kernel that refuses
 * cross-process memory access would. */
#define E2E_PEER_NO_CMA 1u
void e2e_peer_start_opts(e2e_peer_t *p, unsigned opts);
/* Writes a line (a '\n' is appended). */
void e2e_peer_send(e2e_peer_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void e2e_peer_send_raw(e2e_peer_t *p, const char *text, size_t len);
/* Reads one line (without '\n') while driving @p drive (may be NULL);
 * fails the test after timeout_ms or if the peer hangs up. Valid until the
 * next call. */
char *e2e_peer_readline(e2e_peer_t *p, nxc_connector_t *drive, int timeout_ms);
/* Same, but returns NULL on EOF (*eof = 1) or timeout (*eof = 0). */
char *e2e_peer_readline_opt(e2e_peer_t *p, nxc_connector_t *drive, int timeout_ms, int *eof);
/* Sends QUIT, reaps the child, checks it exited 0. */
void e2e_peer_stop(e2e_peer_t *p);
/* SIGKILL + reap (no check of the status). */
void e2e_peer_kill(e2e_peer_t *p);
/* Frees buffers, closes fd (after the child has been reaped). */
void e2e_peer_close(e2e_peer_t *p);

/* High-level wrappers over the protocol. */
/* PASSIVE: the peer exposes n buffers; returns its op id and the JSON text
 * (malloc'd copy, caller frees). */
int e2e_peer_passive(e2e_peer_t *p, nxc_connector_t *drive, nxc_op_kind_t kind,
                     uint32_t seed, size_t n, const size_t *sizes, char **json);
/* ACTIVE: the peer begins a read/write against @p json; returns its op id,
 * or a negative nxc error code if the peer's begin failed. */
int e2e_peer_active(e2e_peer_t *p, nxc_connector_t *drive, nxc_op_kind_t kind,
                    uint32_t seed, size_t n, const size_t *sizes, const char *json);
typedef struct e2e_peer_res {
    int rc;       /* nxc_op_wait() result in the peer */
    int status;   /* nxc_op_status() after */
    int verify;   /* 0: data as expected and results() ok; else nonzero */
    int errcode;  /* nxc_op_error() */
    char detail[512];
} e2e_peer_res_t;
/* WAIT <id> <timeout>: the peer waits on its op and verifies its buffers. */
void e2e_peer_wait(e2e_peer_t *p, nxc_connector_t *drive, int id, int timeout_ms,
                   e2e_peer_res_t *res);
/* STATUS <id> */
int e2e_peer_status(e2e_peer_t *p, nxc_connector_t *drive, int id);
/* CHECK <id>: classify the peer's buffers of op id: 0 all final pattern,
 * 1 mixture of initial and final bytes, 2 all initial, 3 a foreign byte. */
int e2e_peer_check(e2e_peer_t *p, nxc_connector_t *drive, int id);
/* CANCEL <id>: returns rc of nxc_op_cancel in the peer, *status after */
int e2e_peer_cancel(e2e_peer_t *p, nxc_connector_t *drive, int id, int *status);
void e2e_peer_release(e2e_peer_t *p, nxc_connector_t *drive, int id);

/* ---------- small library helpers ---------- */
nxc_connector_t *e2e_connector(const char *name); /* CHECKs success */
nxc_metadata_t *e2e_parse(const char *json);      /* CHECKs success */
const char *e2e_op_metadata(nxc_op_t *op);        /* CHECKs success */
/* drives the listed ops (status) and connectors (progress: the status of a
 * final op need not drive its connector) until all ops are final or timeout;
 * returns 0 if all final */
int e2e_drive_until_final(nxc_op_t **ops, size_t n, nxc_connector_t *c1, nxc_connector_t *c2,
                          int timeout_ms);
int e2e_is_final(nxc_op_status_t s);
/* One transfer between two connectors of this process: P exposes pd, A
 * reads or writes it from ad; both ops must end COMPLETE (CHECKed). */
void e2e_local_transfer(nxc_connector_t *P, nxc_connector_t *A, nxc_op_kind_t kind,
                        const nxc_descriptor_t *pd, const nxc_descriptor_t *ad, size_t n);

#endif
