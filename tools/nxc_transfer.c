/* nxc serve / nxc get: a file exposed as a readable operation, and read by a
 * peer given its metadata. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nxc.h"

#define PIECE_MAX GIB                  /* bytes per descriptor */
#define METADATA_MAX (256ull * MIB)    /* as nxc_metadata_parse() accepts */
#define SLICE_MS 200                   /* progress refresh while waiting */

void serve_help(void)
{
    fputs(
"Usage: nxc serve [options] FILE\n"
"\n"
"Exposes FILE as a readable operation, prints its metadata (one line of\n"
"JSON) on standard output, waits until a peer has read it with 'nxc get',\n"
"prints the rate on standard error and exits. The file is exposed as\n"
"descriptors of at most 1 GiB each; their sizes add up to its size.\n"
"\n"
"Options:\n"
"  --timeout SEC  fail if the file has not been read after SEC seconds\n"
"                 [default: wait without limit]\n"
"  -h, --help     show this help and exit\n"
"\n"
"Example:\n"
"  nxc serve model.bin | ssh host2 nxc get - model.bin\n",
        stdout);
}

void get_help(void)
{
    fputs(
"Usage: nxc get [options] [METADATA|-] OUT\n"
"\n"
"Reads a file served by 'nxc serve' into OUT, whose size is the total of the\n"
"metadata's descriptor sizes. METADATA is the JSON line printed by serve,\n"
"or @PATH to read it from a file, or '-' (the default when only OUT is\n"
"given) to read the first line of standard input. Shows progress on\n"
"standard error when it is a terminal and ends with the rate.\n"
"\n"
"Options:\n"
"  --timeout SEC  fail if the file has not arrived after SEC seconds\n"
"                 [default: wait without limit]\n"
"  -h, --help     show this help and exit\n",
        stdout);
}

enum { T_TIMEOUT = 1, T_HELP };

static const opt_spec_t transfer_opts[] = {
    { "timeout", 0,   true,  T_TIMEOUT },
    { "help",    'h', false, T_HELP },
    { NULL, 0, false, 0 }
};

typedef struct targs {
    const char *pos[2];
    int         npos;
    double      timeout; /* 0: none */
    bool        help;
} targs_t;

static int parse_transfer(const char *cmd, int argc, char **argv, int max_pos,
                          targs_t *t)
{
    opt_iter_t it;
    const char *arg = NULL;
    int id;
    memset(t, 0, sizeof *t);
    opt_init(&it, argc, argv);
    while ((id = opt_next(&it, transfer_opts, &arg)) != OPT_END) {
        if (id == OPT_ERROR)
            return NXC_EXIT_USAGE;
        if (id == T_HELP) {
            t->help = true;
        } else if (id == T_TIMEOUT) {
            if (parse_seconds("--timeout", arg, &t->timeout) != 0)
                return NXC_EXIT_USAGE;
        } else if (t->npos == max_pos) {
            return usage_error("%s: unexpected argument '%s'", cmd, arg);
        } else {
            t->pos[t->npos++] = arg;
        }
    }
    return 0;
}

/* ---- waiting with a progress line ------------------------------------------ */

typedef struct waiter {
    const char *what;      /* "waiting for a reader", "receiving 100 MiB" */
    double      timeout;   /* seconds, 0: none */
    uint64_t    start;
    bool        tty, shown;
} waiter_t;

static void waiter_show(waiter_t *w)
{
    if (!w->tty)
        return;
    fprintf(stderr, "\r\033[K%s... %.1f s", w->what,
            (double)(now_ns() - w->start) / 1e9);
    w->shown = true;
}

static void waiter_clear(waiter_t *w)
{
    if (w->shown)
        fputs("\r\033[K", stderr);
    w->shown = false;
}

/* Waits for @p op in slices, refreshing the line; NXC_ERR_TIMED_OUT when
 * the --timeout has passed. */
static int wait_progress(waiter_t *w, nxc_op_t *op)
{
    for (;;) {
        int rc = nxc_op_wait(op, SLICE_MS);
        if (rc != NXC_ERR_TIMED_OUT) {
            waiter_clear(w);
            return rc;
        }
        if (w->timeout > 0 && (double)(now_ns() - w->start) / 1e9 >= w->timeout) {
            waiter_clear(w);
            return NXC_ERR_TIMED_OUT;
        }
        waiter_show(w);
    }
}

static void print_rate(const char *verb, uint64_t bytes, uint64_t ns,
                       const char *note)
{
    double s = (double)ns / 1e9;
    fprintf(stderr, "%s %llu bytes in %.3f s%s (%.2f GB/s)\n", verb,
            (unsigned long long)bytes, s, note, s > 0 ? (double)bytes / s / 1e9 : 0.0);
}

/* ---- serve ----------------------------------------------------------------- */

static char empty_byte; /* a valid address for a 0-byte descriptor */

typedef struct served {
    void             *map;
    uint64_t          size;
    nxc_descriptor_t *descs;
    size_t            n;
} served_t;

/* Maps FILE read-only (private, prefaulted) and splits it into descriptors.
 * Should the transport refuse to register read-only pages, expose() makes
 * the private mapping writable and tries again; no byte is ever written. */
static int map_file(const char *path, served_t *f)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return runtime_error("serve: cannot open '%s': %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return runtime_error("serve: '%s' is not a regular file", path);
    }
    f->size = (uint64_t)st.st_size;
    f->map = &empty_byte;
    if (f->size > 0)
        f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    int err = errno;
    close(fd);
    if (f->map == MAP_FAILED)
        return runtime_error("serve: cannot map '%s': %s", path, strerror(err));
    f->n = f->size ? (size_t)((f->size + PIECE_MAX - 1) / PIECE_MAX) : 1;
    f->descs = calloc(f->n, sizeof *f->descs);
    if (!f->descs)
        return runtime_error("serve: out of memory");
    for (size_t i = 0; i < f->n; i++) {
        uint64_t off = (uint64_t)i * PIECE_MAX, left = f->size - off;
        split_descs((char *)f->map + off, left < PIECE_MAX ? left : PIECE_MAX, 1,
                    &f->descs[i]);
    }
    return 0;
}

static void unmap_file(served_t *f)
{
    if (f->size > 0 && f->map && f->map != MAP_FAILED)
        munmap(f->map, f->size);
    free(f->descs);
}

/* Prints the metadata as one line on stdout (JSON allows a space wherever
 * the text could hold a raw newline). */
static int publish(nxc_op_t *op)
{
    const char *json;
    size_t len;
    int rc = nxc_op_metadata(op, &json, &len);
    if (rc != NXC_OK)
        return lib_error(rc, "serve: no metadata");
    for (size_t i = 0; i < len; i++)
        putchar(json[i] == '\n' || json[i] == '\r' ? ' ' : json[i]);
    putchar('\n');
    if (fflush(stdout) != 0 || ferror(stdout))
        return runtime_error("serve: cannot write the metadata to stdout: %s",
                             strerror(errno));
    return 0;
}

static int expose(nxc_connector_t *c, served_t *f, nxc_op_t **op)
{
    int rc = nxc_create_readable(c, f->descs, f->n, op);
    if (rc == NXC_ERR_TRANSPORT && f->size > 0 &&
        mprotect(f->map, f->size, PROT_READ | PROT_WRITE) == 0)
        rc = nxc_create_readable(c, f->descs, f->n, op);
    return rc;
}

static int serve_op(const char *path, served_t *f, double timeout)
{
    nxc_connector_t *c = NULL;
    nxc_op_t *op = NULL;
    int rc = nxc_connector_create(NULL, &c);
    if (rc != NXC_OK)
        return lib_error(rc, "serve: cannot create a connector");
    rc = expose(c, f, &op);
    int ret = rc != NXC_OK ? lib_error(rc, "serve: cannot expose '%s'", path)
                           : publish(op);
    if (ret == 0) {
        waiter_t w = { "waiting for a reader", timeout, now_ns(), isatty(2) != 0, false };
        rc = wait_progress(&w, op);
        if (rc == NXC_OK)
            print_rate("served", f->size, now_ns() - w.start,
                       " since the metadata was printed");
        else if (rc == NXC_ERR_TIMED_OUT)
            ret = runtime_error("serve: timed out: '%s' was not read within %g s",
                                path, timeout);
        else
            ret = op_error(op, rc, "serve: the transfer of '%s' failed", path);
    }
    nxc_op_release(op);
    nxc_connector_destroy(c);
    return ret;
}

int serve_main(int argc, char **argv)
{
    targs_t t;
    served_t f = { 0 };
    int rc = parse_transfer("serve", argc, argv, 1, &t);
    if (rc != 0)
        return rc;
    if (t.help) {
        serve_help();
        return NXC_EXIT_OK;
    }
    if (t.npos != 1)
        return usage_error("serve: missing FILE (try 'nxc serve --help')");
    signal(SIGPIPE, SIG_IGN);
    rc = map_file(t.pos[0], &f);
    if (rc == 0)
        rc = serve_op(t.pos[0], &f, t.timeout);
    unmap_file(&f);
    return rc;
}

/* ---- get ------------------------------------------------------------------- */

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
static char *load_metadata(const char *src, size_t *len)
{
    if (strcmp(src, "-") == 0)
        return read_line(stdin, len);
    if (src[0] == '@') {
        FILE *in = fopen(src + 1, "r");
        if (!in) {
            runtime_error("get: cannot open metadata file '%s': %s", src + 1,
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

static int parse_metadata(const char *src, nxc_metadata_t **md)
{
    size_t len = 0;
    char *text = load_metadata(src, &len);
    if (!text)
        return src[0] == '@' ? NXC_EXIT_RUNTIME
                             : runtime_error("get: cannot read the metadata");
    if (len == 0) {
        free(text);
        return runtime_error("get: no metadata (empty %s)",
                             strcmp(src, "-") == 0 ? "standard input" : "text");
    }
    int rc = nxc_metadata_parse(text, len, md);
    free(text);
    if (rc != NXC_OK)
        return lib_error(rc, "get: bad metadata");
    if (nxc_metadata_kind(*md) != NXC_OP_READ)
        return runtime_error("get: the metadata is for a %s operation; get needs "
                             "readable metadata, as printed by 'nxc serve'",
                             nxc_op_kind_name(nxc_metadata_kind(*md)));
    return 0;
}

typedef struct target {
    const char       *path;
    void             *map;
    uint64_t          size;
    nxc_descriptor_t *descs;
    size_t            n;
    bool              created;
} target_t;

/* Local descriptors mirroring the remote ones, back to back in OUT. */
static int layout(target_t *t, const nxc_metadata_t *md)
{
    t->n = nxc_metadata_descriptor_count(md);
    t->descs = calloc(t->n ? t->n : 1, sizeof *t->descs);
    if (!t->descs)
        return runtime_error("get: out of memory for %zu descriptors", t->n);
    t->size = 0;
    for (size_t i = 0; i < t->n; i++) {
        nxc_descriptor_t r;
        int rc = nxc_metadata_descriptor(md, i, &r);
        if (rc != NXC_OK)
            return lib_error(rc, "get: bad metadata descriptor %zu", i);
        if (r.size > UINT64_MAX / 2 - t->size)
            return runtime_error("get: bad metadata: sizes overflow");
        t->descs[i].size = r.size;
        t->size += r.size;
    }
    return 0;
}

static int open_target(target_t *t)
{
    int fd = open(t->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return runtime_error("get: cannot create '%s': %s", t->path, strerror(errno));
    t->created = true;
    t->map = &empty_byte;
    if (t->size > 0 && ftruncate(fd, (off_t)t->size) != 0) {
        int err = errno;
        close(fd);
        return runtime_error("get: cannot size '%s' to %llu bytes: %s", t->path,
                             (unsigned long long)t->size, strerror(err));
    }
    if (t->size > 0)
        t->map = mmap(NULL, t->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    int err = errno;
    close(fd);
    if (t->map == MAP_FAILED)
        return runtime_error("get: cannot map '%s': %s", t->path, strerror(err));
    uint64_t off = 0;
    for (size_t i = 0; i < t->n; i++) {
        t->descs[i].ptr = t->size ? (char *)t->map + off : (void *)&empty_byte;
        t->descs[i].device.kind = NXC_DEVICE_HOST;
        off += t->descs[i].size;
    }
    return 0;
}

/* Unmaps OUT; removes it if the transfer failed. */
static int close_target(target_t *t, bool ok)
{
    int rc = 0;
    if (t->size > 0 && t->map && t->map != MAP_FAILED) {
        if (ok && msync(t->map, t->size, MS_SYNC) != 0)
            rc = runtime_error("get: cannot write '%s': %s", t->path, strerror(errno));
        munmap(t->map, t->size);
    }
    if ((!ok || rc) && t->created)
        unlink(t->path);
    free(t->descs);
    return rc;
}

static int receive(target_t *t, const nxc_metadata_t *md, double timeout)
{
    nxc_connector_t *c = NULL;
    nxc_op_t *op = NULL;
    char what[64], h[32];
    int rc = nxc_connector_create(NULL, &c);
    if (rc != NXC_OK)
        return lib_error(rc, "get: cannot create a connector");
    snprintf(what, sizeof what, "receiving %s", human_bytes(t->size, h, sizeof h));
    waiter_t w = { what, timeout, now_ns(), isatty(2) != 0, false };
    int ret = 0;
    rc = nxc_begin_read(c, md, t->descs, t->n, &op);
    if (rc != NXC_OK)
        ret = lib_error(rc, "get: cannot start reading");
    else if ((rc = wait_progress(&w, op)) == NXC_ERR_TIMED_OUT)
        ret = runtime_error("get: timed out after %g s", timeout);
    else if (rc != NXC_OK)
        ret = op_error(op, rc, "get: the transfer failed");
    else
        print_rate("received", t->size, now_ns() - w.start, "");
    nxc_op_release(op);
    nxc_connector_destroy(c);
    return ret;
}

int get_main(int argc, char **argv)
{
    targs_t a;
    nxc_metadata_t *md = NULL;
    int rc = parse_transfer("get", argc, argv, 2, &a);
    if (rc != 0)
        return rc;
    if (a.help) {
        get_help();
        return NXC_EXIT_OK;
    }
    if (a.npos == 0)
        return usage_error("get: missing OUT (try 'nxc get --help')");
    target_t t = { .path = a.pos[a.npos - 1] };
    rc = parse_metadata(a.npos == 2 ? a.pos[0] : "-", &md);
    if (rc == 0)
        rc = layout(&t, md);
    if (rc == 0)
        rc = open_target(&t);
    if (rc == 0)
        rc = receive(&t, md, a.timeout);
    int crc = close_target(&t, rc == 0);
    nxc_metadata_free(md);
    return rc ? rc : crc ? crc : NXC_EXIT_OK;
}
