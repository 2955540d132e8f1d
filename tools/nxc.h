/* nxc command-line tool: declarations shared by its source files.
 * The tool uses only the library's public header, as any user would. */
#ifndef NXC_TOOL_H
#define NXC_TOOL_H

#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nixl_connect.h>

/* Exit codes of every subcommand. */
enum { NXC_EXIT_OK = 0, NXC_EXIT_RUNTIME = 1, NXC_EXIT_USAGE = 2 };

#define KIB (1024ull)
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)

#define NXC_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- messages (nxc_util.c) ---------------------------------------------- */
/* "nxc: <msg>" on stderr; returns NXC_EXIT_USAGE. */
int usage_error(const char *fmt, ...) NXC_PRINTF(1, 2);
/* "nxc: <msg>" on stderr; returns NXC_EXIT_RUNTIME. */
int runtime_error(const char *fmt, ...) NXC_PRINTF(1, 2);
/* "nxc: <msg>: <nxc_strerror(rc)> (<nxc_last_error()>)"; returns NXC_EXIT_RUNTIME. */
int lib_error(int rc, const char *fmt, ...) NXC_PRINTF(2, 3);
/* Same, for an op that failed: the detail comes from nxc_op_error(). */
int op_error(nxc_op_t *op, int rc, const char *fmt, ...) NXC_PRINTF(3, 4);
/* What the two above print, for a code of any of the project's libraries
 * (the NATS module has its own sentences and names): "nxc: <msg>: <sentence>
 * (<detail>)", the detail left out when NULL or empty; @p name must be
 * static. Returns NXC_EXIT_RUNTIME. */
int vcoded_error(const char *name, const char *sentence, const char *detail,
                 const char *fmt, va_list ap) NXC_PRINTF(4, 0);
/* lib_error() for a code of the NATS module (nxc_xfer_nats.c; builds with
 * the module only). */
int nats_error(int rc, const char *fmt, ...) NXC_PRINTF(2, 3);

/* The last message printed by the functions above (without "nxc: "), and
 * the name of the library code behind it ("NXC_ERR_TIMED_OUT"; NULL when
 * none: usage_error(), runtime_error()). */
const char *last_message(void);
const char *last_code_name(void);

/* ---- time and formatting (nxc_util.c) ----------------------------------- */
/* A JSON string literal on stdout (escapes quotes, backslashes, controls). */
void json_string(const char *s);
uint64_t now_ns(void);                 /* CLOCK_MONOTONIC */
/* "8 B", "4 KiB", "1.5 MiB": a short human form of a byte count. */
const char *human_bytes(uint64_t n, char *buf, size_t size);
/* Splits @p total bytes at @p base into @p n descriptors (sizes differ by at
 * most one byte, in address order). */
void split_descs(void *base, uint64_t total, size_t n, nxc_descriptor_t *out);
/* Waits for @p op at most @p timeout_s seconds (<= 0: no limit). */
int wait_op(nxc_op_t *op, double timeout_s);

/* ---- option parsing (nxc_opts.c) ----------------------------------------- */
/* Options are getopt_long() tables (<getopt.h>): a short option's val is
 * its letter, a long-only option's val is OPT_LONG or above. */
enum { OPT_POSITIONAL = 1, OPT_END = -1, OPT_ERROR = -2, OPT_LONG = 256 };

/* Starts parsing a new argv (argv[0] is the subcommand's name). */
void opt_init(void);
/* The next option's val (its value in *arg when it takes one), OPT_POSITIONAL
 * (the word in *arg; every word after "--" is one), OPT_END, or OPT_ERROR
 * (one "nxc: " line already printed). */
int opt_next(int argc, char **argv, const struct option *opts, const char **arg);

/* Number parsers: 0 on success, else print "nxc: <opt>: ..." and return -1. */
int parse_size(const char *opt, const char *text, uint64_t max, uint64_t *out);
int parse_count(const char *opt, const char *text, uint64_t min, uint64_t max,
                uint64_t *out);
int parse_seconds(const char *opt, const char *text, double *out);
/* Comma-separated list of sizes (suffixes K/M/G) or plain counts. */
int parse_list(const char *opt, const char *text, bool sizes, uint64_t min,
               uint64_t max, uint64_t *out, size_t cap, size_t *n);

/* ---- subcommands --------------------------------------------------------- */
int bench_main(int argc, char **argv);
int bench_worker_main(int argc, char **argv); /* hidden: one of bench's roles */
int serve_main(int argc, char **argv);
int get_main(int argc, char **argv);
int recv_main(int argc, char **argv);
int put_main(int argc, char **argv);
int info_main(int argc, char **argv);

void bench_help(void);
void serve_help(void);
void get_help(void);
void recv_help(void);
void put_help(void);
void info_help(void);
int kvbench_main(int argc, char **argv); void kvbench_help(void); /* nxc_kvbench.c */

#endif /* NXC_TOOL_H */
