/* nxc: what serve, get, recv and put share (see nxc_xfer.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nxc_xfer.h"

#define METADATA_MAX (256ull * MIB)    /* as nxc_metadata_parse() accepts */
/* How often a wait looks at signals and refreshes progress: a signal does not
 * cut nxc_op_wait() short, and a cancel must beat a fast transfer's DONE. */
#define SLICE_MS 20

/* ---- options ------------------------------------------------------------------- */

enum { X_TIMEOUT = OPT_LONG, X_NATS, X_SUBJECT, X_CREDS, X_SIZE, X_JSON, X_NIXL, X_DIRECT,
       X_HELP = 'h' };

#define XFER_OPTS \
    { "timeout", required_argument, NULL, X_TIMEOUT }, \
    { "nats",    required_argument, NULL, X_NATS }, \
    { "subject", required_argument, NULL, X_SUBJECT }, \
    { "nats-creds", required_argument, NULL, X_CREDS }, \
    { "json",    no_argument,       NULL, X_JSON }, \
    { "nixl",    no_argument,       NULL, X_NIXL }, \
    { "direct-local", no_argument,  NULL, X_DIRECT }, \
    { "help",    no_argument,       NULL, X_HELP }

static const struct option xfer_opts[] = { XFER_OPTS, { NULL, 0, NULL, 0 } };
static const struct option recv_opts[] = {
    XFER_OPTS,
    { "size", required_argument, NULL, X_SIZE },
    { NULL, 0, NULL, 0 }
};

static int take_option(const role_t *r, int id, const char *arg, xargs_t *a)
{
    switch (id) {
    case X_HELP:    a->help = true; return 0;
    case X_JSON:    a->json = true; return 0;
    case X_NIXL:
        if (!r->passive) /* get and put speak whatever the metadata speaks */
            return usage_error("%s: --nixl is for serve and recv", r->cmd);
        a->nixl = true;
        return 0;
    case X_DIRECT:
        if (!r->passive) /* the active side takes the path wherever it is offered */
            return usage_error("%s: --direct-local is for serve and recv", r->cmd);
        a->direct_local = true;
        return 0;
    case X_NATS:    a->nats = arg; return 0;
    case X_SUBJECT: a->subject = arg; return 0;
    case X_CREDS:   a->nats_creds = arg; return 0;
    case X_TIMEOUT:
        return parse_seconds("--timeout", arg, &a->timeout) ? NXC_EXIT_USAGE : 0;
    case X_SIZE:
        a->has_size = true;
        return parse_size("--size", arg, 1024 * GIB, &a->size) ? NXC_EXIT_USAGE : 0;
    default:
        if (a->npos == (r->passive ? 1 : 2))
            return usage_error("%s: unexpected argument '%s'", r->cmd, arg);
        a->pos[a->npos++] = arg;
        return 0;
    }
}

/* The shape of the command line first, then whether this build can do it,
 * so a wrong command line gets the same answer in every build. */
static int check_nats_args(const role_t *r, const xargs_t *a)
{
    const char *cmd = r->cmd;
    if (a->nats_creds && !a->nats)
        return usage_error("%s: --nats-creds needs --nats URL", cmd);
    if (!a->nats && !a->subject)
        return 0;
    if (!a->nats)
        return usage_error("%s: --subject needs --nats URL", cmd);
    if (!a->subject)
        return usage_error("%s: --nats needs --subject SUBJECT", cmd);
    if (!a->nats[0] || !a->subject[0])
        return usage_error("%s: --nats and --subject need non-empty values", cmd);
    if (!r->passive && a->npos == 2)   /* no METADATA with --nats */
        return usage_error("%s: --nats brings the metadata; give only %s", cmd,
                           r->file_word);
    if (!nats_available())
        return usage_error("%s: --nats: this nxc was built without the NATS module "
                           "(libnats-dev was not found when it was built)", cmd);
    return 0;
}

int xargs_connector(const xargs_t *a, nxc_connector_t **c)
{
    nxc_connector_config_t cfg = { .field_mask = NXC_CONFIG_WIRE | NXC_CONFIG_DIRECT_LOCAL,
                                   .wire = a->nixl ? NXC_WIRE_NIXL : NXC_WIRE_NXC,
                                   .direct_local = a->direct_local };
    return nxc_connector_create(&cfg, c);
}

int xargs_parse(const role_t *r, int argc, char **argv, xargs_t *a)
{
    const char *arg = NULL;
    int id, rc;
    memset(a, 0, sizeof *a);
    opt_init();
    /* recv alone creates a file whose size no metadata gives */
    const struct option *opts = r->passive && r->kind == NXC_OP_WRITE ? recv_opts
                                                                      : xfer_opts;
    /* --help shows the help at once, as in the other commands: the rest of
     * the command line is not read */
    while (!a->help && (id = opt_next(argc, argv, opts, &arg)) != OPT_END) {
        if (id == OPT_ERROR)
            return NXC_EXIT_USAGE;
        if ((rc = take_option(r, id, arg, a)) != 0)
            return rc;
    }
    if (a->help)
        return 0;
    if (a->nixl && a->direct_local) /* a NIXL agent cannot take the path */
        return usage_error("%s: --direct-local does not go with --nixl", r->cmd);
    if (a->timeout > 0)
        a->deadline = now_ns() + (uint64_t)(a->timeout * 1e9);
    return check_nats_args(r, a);
}

/* ---- files and descriptors --------------------------------------------------- */

static char empty_byte; /* a valid address for a 0-byte file */
static const char *volatile doomed_path; /* created, not yet kept */

/* All of standard input, in anonymous memory grown by doubling. */
static int read_stdin(const char *cmd, xfile_t *f)
{
    for (;;) {
        if (f->size == f->maplen) {
            size_t len = f->maplen ? f->maplen * 2 : 1 << 20;
            void *m = f->maplen ? mremap(f->map, f->maplen, len, MREMAP_MAYMOVE)
                                : mmap(NULL, len, PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED)
                return runtime_error("%s: standard input does not fit in memory "
                                     "(%llu bytes read)", cmd,
                                     (unsigned long long)f->size);
            f->map = m;
            f->maplen = len;
        }
        ssize_t n = read(0, (char *)f->map + f->size, f->maplen - f->size);
        if (n == 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return runtime_error("%s: cannot read standard input: %s", cmd,
                                 strerror(errno));
        if (n > 0)
            f->size += (uint64_t)n;
    }
}

/* Maps f->size bytes of @p fd (closed here; -1 for anonymous memory), or
 * nothing for 0 bytes: f->map stays a valid address. */
static int map_file(const char *cmd, xfile_t *f, int fd, int prot, int flags)
{
    void *m = f->size ? mmap(NULL, f->size, prot, flags | MAP_POPULATE, fd, 0) : NULL;
    int err = errno;
    if (fd >= 0)
        close(fd);
    if (m == MAP_FAILED)
        return runtime_error("%s: cannot map '%s': %s", cmd, f->path, strerror(err));
    if (m) {
        f->map = m;
        f->maplen = f->size;
    }
    return 0;
}

int xfile_open_read(const char *cmd, const char *path, xfile_t *f)
{
    struct stat st;
    memset(f, 0, sizeof *f);
    f->path = path;
    f->map = &empty_byte;
    f->stdio = strcmp(path, "-") == 0;
    if (f->stdio)
        return read_stdin(cmd, f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return runtime_error("%s: cannot open '%s': %s", cmd, path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return runtime_error("%s: '%s' is not a regular file", cmd, path);
    }
    f->size = (uint64_t)st.st_size;
    return map_file(cmd, f, fd, PROT_READ, MAP_PRIVATE);
}

int xfile_create(const char *cmd, const char *path, uint64_t size, xfile_t *f)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    f->map = &empty_byte;
    f->size = size;
    f->created = true;
    f->stdio = strcmp(path, "-") == 0;
    if (f->stdio)   /* written to stdout only once complete */
        return map_file(cmd, f, -1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        f->created = false;
        return runtime_error("%s: cannot create '%s': %s", cmd, path, strerror(errno));
    }
    doomed_path = path;
    if (size > 0 && ftruncate(fd, (off_t)size) != 0) {
        int err = errno;
        close(fd);
        return runtime_error("%s: cannot size '%s' to %llu bytes: %s", cmd, path,
                             (unsigned long long)size, strerror(err));
    }
    return map_file(cmd, f, fd, PROT_READ | PROT_WRITE, MAP_SHARED);
}

/* PIECE_MIN, or a PIECES_MAX-th of the file in whole pages, up to PIECE_MAX. */
static uint64_t piece_size(uint64_t size)
{
    uint64_t p = ((size + PIECES_MAX - 1) / PIECES_MAX + 4095) & ~4095ull;
    return p < PIECE_MIN ? PIECE_MIN : p > PIECE_MAX ? PIECE_MAX : p;
}

int xfile_pieces(const char *cmd, xfile_t *f)
{
    uint64_t piece = piece_size(f->size);
    f->n = f->size ? (size_t)((f->size + piece - 1) / piece) : 1;
    f->descs = calloc(f->n, sizeof *f->descs);
    if (!f->descs)
        return runtime_error("%s: out of memory", cmd);
    for (size_t i = 0; i < f->n; i++) {
        uint64_t off = (uint64_t)i * piece, left = f->size - off;
        split_descs((char *)f->map + off, left < piece ? left : piece, 1, &f->descs[i]);
    }
    return 0;
}

int sizes_total(const char *cmd, const nxc_metadata_t *md, uint64_t *total)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < nxc_metadata_descriptor_count(md); i++) {
        nxc_descriptor_t r;
        int rc = nxc_metadata_descriptor(md, i, &r);
        if (rc != NXC_OK)
            return lib_error(rc, "%s: bad metadata descriptor %zu", cmd, i);
        if (r.size > UINT64_MAX / 2 - sum)
            return runtime_error("%s: bad metadata: sizes overflow", cmd);
        sum += r.size;
    }
    *total = sum;
    return 0;
}

int xfile_mirror(const char *cmd, xfile_t *f, const nxc_metadata_t *md)
{
    uint64_t total = 0, off = 0;
    int rc = sizes_total(cmd, md, &total);
    if (rc != 0)
        return rc;
    if (total != f->size)
        return runtime_error("%s: '%s' is %llu bytes but the remote buffers hold %llu",
                             cmd, f->path, (unsigned long long)f->size,
                             (unsigned long long)total);
    f->n = nxc_metadata_descriptor_count(md);
    f->descs = calloc(f->n ? f->n : 1, sizeof *f->descs);
    if (!f->descs)
        return runtime_error("%s: out of memory for %zu descriptors", cmd, f->n);
    for (size_t i = 0; i < f->n; i++) {
        nxc_descriptor_t r;
        nxc_metadata_descriptor(md, i, &r);   /* checked by sizes_total() */
        f->descs[i].ptr = r.size ? (char *)f->map + off : (void *)&empty_byte;
        f->descs[i].size = r.size;
        f->descs[i].device.kind = NXC_DEVICE_HOST;
        off += r.size;
    }
    return 0;
}

static int write_stdout(const char *cmd, const xfile_t *f)
{
    for (uint64_t off = 0; off < f->size;) {
        ssize_t n = write(1, (const char *)f->map + off, f->size - off);
        if (n < 0 && errno != EINTR)
            return runtime_error("%s: cannot write to standard output: %s", cmd,
                                 strerror(errno));
        if (n > 0)
            off += (uint64_t)n;
    }
    return 0;
}

/* A created file is kept only once its bytes are safely in place. */
static int keep(const char *cmd, const xfile_t *f)
{
    if (f->stdio)
        return write_stdout(cmd, f);
    if (f->maplen && msync(f->map, f->maplen, MS_SYNC) != 0)
        return runtime_error("%s: cannot write '%s': %s", cmd, f->path, strerror(errno));
    return 0;
}

int xfile_close(const char *cmd, xfile_t *f, bool ok)
{
    int rc = ok && f->created ? keep(cmd, f) : 0;
    if (f->maplen)
        munmap(f->map, f->maplen);
    if ((!ok || rc) && f->created && !f->stdio)
        unlink(f->path);
    doomed_path = NULL;
    free(f->descs);
    f->descs = NULL;
    return rc;
}

/* ---- signals ------------------------------------------------------------------- */

static volatile sig_atomic_t caught;      /* SIGINT or SIGTERM, 0 if none */
static volatile sig_atomic_t in_transfer; /* xwait() cancels and unwinds */

static void on_signal(int sig)
{
    caught = sig;
    if (in_transfer)
        return;
    if (doomed_path)
        unlink(doomed_path);   /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

void xsignals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int xinterrupted(void)
{
    return caught;
}

void xdie_interrupted(const char *cmd)
{
    int sig = caught;
    runtime_error("%s: interrupted by %s", cmd, sig == SIGINT ? "SIGINT" : "SIGTERM");
    fflush(stdout);
    signal(sig, SIG_DFL);
    raise(sig);
    _exit(128 + sig);   /* not reached: the signal's default action ends us */
}

/* ---- waiting ------------------------------------------------------------------- */

/* The progress line of one wait, refreshed at most every REFRESH_NS. */
#define REFRESH_NS 100000000ull

typedef struct progress {
    const char *what;
    uint64_t    total;
    uint64_t    start;       /* ns */
    uint64_t    shown_at;    /* ns of the last refresh, 0: never */
    uint64_t    first_ns;    /* the first refresh that saw bytes moved, 0: none yet */
    uint64_t    first_bytes; /* what it saw: the rate counts from there */
} progress_t;

static void show_time_left(double seconds)
{
    unsigned long s = (unsigned long)(seconds + 0.5);
    if (s >= 3600)
        fprintf(stderr, "  ETA %lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
    else
        fprintf(stderr, "  ETA %lu:%02lu", s / 60, s % 60);
}

/* Bytes moved, percent, rate and time left, as nxc_op_bytes_done() counts
 * them; before it counts any (the peer has not begun, or the protocol
 * tells nothing before the end) only the time waited: no invented progress. */
static void show(nxc_op_t *op, progress_t *p)
{
    uint64_t now = now_ns(), done = 0;
    char h[32], t[32];
    if (p->shown_at && now - p->shown_at < REFRESH_NS)
        return;
    p->shown_at = now;
    if (nxc_op_bytes_done(op, &done) != NXC_OK || done == 0 || p->total == 0) {
        fprintf(stderr, "\r\033[K%s... %.1f s", p->what, (double)(now - p->start) / 1e9);
        return;
    }
    if (!p->first_ns) {
        p->first_ns = now;
        p->first_bytes = done;
    }
    fprintf(stderr, "\r\033[K%3u%%  %s of %s", (unsigned)(done * 100 / p->total),
            human_bytes(done, h, sizeof h), human_bytes(p->total, t, sizeof t));
    if (done > p->first_bytes) {   /* so now > first_ns too */
        double rate = (double)(done - p->first_bytes) / ((double)(now - p->first_ns) / 1e9);
        fprintf(stderr, "  %s/s", human_bytes((uint64_t)rate, h, sizeof h));
        show_time_left((double)(p->total - done) / rate);
    }
}

int xwait(nxc_op_t *op, const char *what, uint64_t total, uint64_t deadline)
{
    progress_t p = { .what = what, .total = total, .start = now_ns() };
    bool tty = isatty(2) != 0;
    int rc;
    in_transfer = 1;
    while ((rc = nxc_op_wait(op, SLICE_MS)) == NXC_ERR_TIMED_OUT &&
           (!deadline || now_ns() < deadline) && !caught)
        if (tty)
            show(op, &p);
    if (p.shown_at)
        fputs("\r\033[K", stderr);
    /* A signal after COMPLETE changes nothing: the data is where it belongs. */
    if (caught && rc != NXC_OK && nxc_op_cancel(op) == NXC_OK &&
        nxc_op_status(op) == NXC_OP_CANCELLED)
        rc = NXC_ERR_CANCELLED;   /* the peer is told; release waits for it */
    return rc;
}

void print_rate(const char *verb, uint64_t bytes, uint64_t ns, const char *note)
{
    double s = (double)ns / 1e9;
    fprintf(stderr, "%s %llu bytes in %.3f s%s (%.2f GB/s)\n", verb,
            (unsigned long long)bytes, s, note, s > 0 ? (double)bytes / s / 1e9 : 0.0);
}

/* ---- metadata on stdout / as an argument --------------------------------------- */

/* JSON allows a space wherever the text could hold a raw newline. */
int md_print(const char *cmd, nxc_op_t *op)
{
    const char *json;
    size_t len;
    int rc = nxc_op_metadata(op, &json, &len);
    if (rc != NXC_OK)
        return lib_error(rc, "%s: no metadata", cmd);
    for (size_t i = 0; i < len; i++)
        putchar(json[i] == '\n' || json[i] == '\r' ? ' ' : json[i]);
    putchar('\n');
    if (fflush(stdout) != 0 || ferror(stdout))
        return runtime_error("%s: cannot write the metadata to stdout: %s", cmd,
                             strerror(errno));
    return 0;
}

/* Reads up to the first newline (or EOF) of @p in, at most METADATA_MAX. */
static char *read_line(FILE *in, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    int ch;
    while (buf && (ch = getc(in)) != EOF && ch != '\n') {
        if (n + 1 == cap) {
            char *nb = cap < METADATA_MAX + 2 ? realloc(buf, cap * 2) : NULL;
            if (!nb)
                free(buf);
            buf = nb;
            cap *= 2;
        }
        if (buf)
            buf[n++] = (char)ch;
    }
    if (buf) {
        while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == ' '))
            n--;
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

/* The metadata text: the argument itself, @PATH, or '-' for stdin. */
static char *load_text(const char *cmd, const char *src, size_t *len)
{
    if (strcmp(src, "-") == 0)
        return read_line(stdin, len);
    if (src[0] == '@') {
        FILE *in = fopen(src + 1, "r");
        if (!in) {
            runtime_error("%s: cannot open metadata file '%s': %s", cmd, src + 1,
                          strerror(errno));
            return NULL;
        }
        char *text = read_line(in, len);
        fclose(in);
        return text;
    }
    *len = strlen(src);
    return strdup(src);
}

int md_check_kind(const char *cmd, const nxc_metadata_t *md, nxc_op_kind_t kind)
{
    if (nxc_metadata_kind(md) == kind)
        return 0;
    return runtime_error("%s: the metadata is for a %s operation; %s needs %s "
                         "metadata, as printed by 'nxc %s'", cmd,
                         nxc_op_kind_name(nxc_metadata_kind(md)), cmd,
                         kind == NXC_OP_READ ? "readable" : "writable",
                         kind == NXC_OP_READ ? "serve" : "recv");
}

int md_load(const char *cmd, const char *src, nxc_op_kind_t kind, nxc_metadata_t **md)
{
    size_t len = 0;
    char *text = load_text(cmd, src, &len);
    if (!text)
        return src[0] == '@' ? NXC_EXIT_RUNTIME
                             : runtime_error("%s: cannot read the metadata", cmd);
    if (len == 0) {
        free(text);
        return runtime_error("%s: no metadata (empty %s)", cmd,
                             strcmp(src, "-") == 0 ? "standard input" : "text");
    }
    int rc = nxc_metadata_parse(text, len, md);
    free(text);
    if (rc != NXC_OK)
        return lib_error(rc, "%s: bad metadata", cmd);
    return md_check_kind(cmd, *md, kind);
}
