/* nxc serve / nxc get: a file exposed as a readable operation, and read by a
 * peer given its metadata (on stdout/argument, or over NATS). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "nxc_xfer.h"

void serve_help(void)
{
    fputs(
"Usage: nxc serve [options] FILE\n"
"\n"
"Exposes FILE as a readable operation and offers its metadata: one line of\n"
"JSON on standard output or, with --nats, the answer to every request on a\n"
"NATS subject. Waits until a peer has read it with 'nxc get', prints the\n"
"rate on standard error and exits. The file is exposed as descriptors of\n"
"at most 1 GiB each; their sizes add up to its size.\n"
"\n"
"Options:\n"
"  --nats URL     offer the metadata over NATS (e.g. nats://host:4222)\n"
"                 instead of standard output; needs --subject (builds\n"
"                 with the NATS module only)\n"
"  --subject S    the NATS subject to answer on (e.g. files.model)\n"
"  --nixl         offer NIXL's metadata format, for a Dynamo (NIXL) worker\n"
"                 to read the file with its begin_read\n"
"  --timeout SEC  fail if the file has not been read after SEC seconds\n"
"                 [default: wait without limit]\n"
"  -h, --help     show this help and exit\n"
"\n"
"Examples:\n"
"  nxc serve model.bin | ssh host2 nxc get - model.bin\n"
"  nxc serve --nats nats://10.0.0.1:4222 --subject files.model model.bin\n"
"  (and on the other host, with the same --nats and --subject:\n"
"   nxc get --nats nats://10.0.0.1:4222 --subject files.model model.bin)\n",
        stdout);
}

void get_help(void)
{
    fputs(
"Usage: nxc get [options] [METADATA|-] OUT\n"
"       nxc get [options] --nats URL --subject S OUT\n"
"\n"
"Reads a file served by 'nxc serve' into OUT, whose size is the total of the\n"
"metadata's descriptor sizes. METADATA is the JSON line printed by serve,\n"
"or @PATH to read it from a file, or '-' (the default when only OUT is\n"
"given) to read the first line of standard input. With --nats the metadata\n"
"is requested on a NATS subject, again and again until 'nxc serve --nats'\n"
"answers. Shows progress on standard error when it is a terminal and ends\n"
"with the rate. OUT is removed if the transfer fails.\n"
"\n"
"Options:\n"
"  --nats URL     request the metadata over NATS (e.g. nats://host:4222);\n"
"                 needs --subject (builds with the NATS module only)\n"
"  --subject S    the NATS subject 'nxc serve --nats' answers on\n"
"  --timeout SEC  fail if the file has not arrived after SEC seconds,\n"
"                 counting the wait for the metadata\n"
"                 [default: wait without limit]\n"
"  -h, --help     show this help and exit\n",
        stdout);
}

/* ---- serve ----------------------------------------------------------------- */

/* Should the transport refuse to register read-only pages, the private
 * mapping is made writable and the registration tried again; no byte is
 * ever written. */
static int expose(nxc_connector_t *c, xfile_t *f, nxc_op_t **op)
{
    int rc = nxc_create_readable(c, f->descs, f->n, op);
    if (rc == NXC_ERR_TRANSPORT && f->size > 0 &&
        mprotect(f->map, f->size, PROT_READ | PROT_WRITE) == 0)
        rc = nxc_create_readable(c, f->descs, f->n, op);
    return rc;
}

/* The metadata goes out (stdout or NATS), then the reader is awaited. */
static int offer_and_wait(const xargs_t *a, xfile_t *f, nxc_op_t *op)
{
    nats_offer_t *offer = NULL;
    int ret = a->nats ? nats_offer("serve", a, op, &offer) : md_print("serve", op);
    if (ret != 0)
        return ret;
    uint64_t start = now_ns();
    int rc = xwait(op, "waiting for a reader", a->deadline);
    nats_offer_close(offer);
    if (rc == NXC_OK)
        print_rate("served", f->size, now_ns() - start, " since the metadata was offered");
    else if (rc == NXC_ERR_TIMED_OUT)
        ret = runtime_error("serve: timed out: '%s' was not read within %g s",
                            f->path, a->timeout);
    else
        ret = op_error(op, rc, "serve: the transfer of '%s' failed", f->path);
    return ret;
}

static int serve_op(const xargs_t *a, xfile_t *f)
{
    nxc_connector_t *c = NULL;
    nxc_op_t *op = NULL;
    int rc = xargs_connector(a, &c);
    if (rc != NXC_OK)
        return lib_error(rc, "serve: cannot create a connector");
    rc = expose(c, f, &op);
    int ret = rc != NXC_OK ? lib_error(rc, "serve: cannot expose '%s'", f->path)
                           : offer_and_wait(a, f, op);
    nxc_op_release(op);
    nxc_connector_destroy(c);
    return ret;
}

int serve_main(int argc, char **argv)
{
    xargs_t a;
    xfile_t f = { 0 };
    int rc = xargs_parse("serve", argc, argv, 1, &a);
    if (rc != 0)
        return rc;
    if (a.help) {
        serve_help();
        return NXC_EXIT_OK;
    }
    if (a.npos != 1)
        return usage_error("serve: missing FILE (try 'nxc serve --help')");
    signal(SIGPIPE, SIG_IGN);
    rc = xfile_open_read("serve", a.pos[0], &f);
    if (rc == 0)
        rc = xfile_pieces("serve", &f);
    if (rc == 0)
        rc = serve_op(&a, &f);
    xfile_close("serve", &f, rc == 0);
    return rc;
}

/* ---- get ------------------------------------------------------------------- */

static int receive(const xargs_t *a, xfile_t *t, const nxc_metadata_t *md)
{
    nxc_connector_t *c = NULL;
    nxc_op_t *op = NULL;
    char what[64], h[32];
    int rc = nxc_connector_create(NULL, &c);
    if (rc != NXC_OK)
        return lib_error(rc, "get: cannot create a connector");
    snprintf(what, sizeof what, "receiving %s", human_bytes(t->size, h, sizeof h));
    uint64_t start = now_ns();
    int ret = 0;
    rc = nxc_begin_read(c, md, t->descs, t->n, &op);
    if (rc != NXC_OK)
        ret = lib_error(rc, "get: cannot start reading");
    else if ((rc = xwait(op, what, a->deadline)) == NXC_ERR_TIMED_OUT)
        ret = runtime_error("get: timed out after %g s", a->timeout);
    else if (rc != NXC_OK)
        ret = op_error(op, rc, "get: the transfer failed");
    else
        print_rate("received", t->size, now_ns() - start, "");
    nxc_op_release(op);
    nxc_connector_destroy(c);
    return ret;
}

int get_main(int argc, char **argv)
{
    xargs_t a;
    nxc_metadata_t *md = NULL;
    xfile_t t = { 0 };
    uint64_t size = 0;
    int rc = xargs_parse("get", argc, argv, 2, &a);
    if (rc != 0)
        return rc;
    if (a.help) {
        get_help();
        return NXC_EXIT_OK;
    }
    if (a.npos == 0)
        return usage_error("get: missing OUT (try 'nxc get --help')");
    rc = a.nats ? nats_take("get", &a, NXC_OP_READ, &md)
                : md_load("get", a.npos == 2 ? a.pos[0] : "-", NXC_OP_READ, &md);
    if (rc == 0)
        rc = sizes_total("get", md, &size);
    if (rc == 0)
        rc = xfile_create("get", a.pos[a.npos - 1], size, &t);
    if (rc == 0)
        rc = xfile_mirror("get", &t, md);
    if (rc == 0)
        rc = receive(&a, &t, md);
    int crc = xfile_close("get", &t, rc == 0);
    nxc_metadata_free(md);
    return rc ? rc : crc ? crc : NXC_EXIT_OK;
}
