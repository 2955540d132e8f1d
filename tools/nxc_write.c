/* nxc recv / nxc put: the write direction. recv exposes a new file as a
 * writable operation and hands its metadata over (stdout, or sent over NATS
 * to the worker that will write, as Dynamo hands a KV-cache buffer to the
 * prefill worker); put writes a file into it. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "nxc_xfer.h"

void recv_help(void)
{
    fputs(
"Usage: nxc recv [options] --size BYTES OUT\n"
"\n"
"Creates OUT with BYTES bytes, exposes it as a writable operation and hands\n"
"its metadata over: one line of JSON on standard output or, with --nats,\n"
"sent to the worker listening on a NATS subject ('nxc put --nats'), again\n"
"and again until one takes it. Waits until a peer has written OUT with\n"
"'nxc put', prints the rate on standard error and exits. OUT is exposed as\n"
"descriptors of at most 1 GiB each, and removed if the write fails.\n"
"\n"
"Options:\n"
"  --size BYTES   the size of OUT, with an optional suffix K, M or G\n"
"                 (powers of 1024); the file put must have this size\n"
"  --nats URL     send the metadata over NATS (e.g. nats://host:4222)\n"
"                 instead of standard output; needs --subject (builds\n"
"                 with the NATS module only)\n"
"  --subject S    the NATS subject the writer listens on\n"
"  --nixl         offer NIXL's metadata format, for a Dynamo (NIXL) worker\n"
"                 to write OUT with its begin_write\n"
"  --timeout SEC  fail if OUT has not been written after SEC seconds,\n"
"                 counting the wait for a writer to take the metadata\n"
"                 [default: wait without limit]\n"
"  -h, --help     show this help and exit\n"
"\n"
"Examples:\n"
"  nxc recv --size 1G copy.bin | ssh host2 nxc put model.bin -\n"
"  nxc recv --size 1G --nats nats://10.0.0.1:4222 --subject w.prefill copy.bin\n"
"  (and on the other host, with the same --nats and --subject:\n"
"   nxc put --nats nats://10.0.0.1:4222 --subject w.prefill model.bin)\n",
        stdout);
}

void put_help(void)
{
    fputs(
"Usage: nxc put [options] FILE [METADATA|-]\n"
"       nxc put [options] --nats URL --subject S FILE\n"
"\n"
"Writes FILE into the memory a peer exposed with 'nxc recv'. METADATA is\n"
"the JSON line printed by recv, or @PATH to read it from a file, or '-'\n"
"(the default when only FILE is given) to read the first line of standard\n"
"input. With --nats put listens on a NATS subject and takes the first\n"
"metadata sent there. FILE's size must equal the total of the metadata's\n"
"descriptor sizes. Shows progress on standard error when it is a terminal\n"
"and ends with the rate.\n"
"\n"
"Options:\n"
"  --nats URL     receive the metadata over NATS (e.g. nats://host:4222);\n"
"                 needs --subject (builds with the NATS module only)\n"
"  --subject S    the NATS subject to listen on\n"
"  --timeout SEC  fail if FILE has not been written after SEC seconds,\n"
"                 counting the wait for the metadata\n"
"                 [default: wait without limit]\n"
"  -h, --help     show this help and exit\n",
        stdout);
}

/* ---- recv ------------------------------------------------------------------ */

static int offer_and_wait(const xargs_t *a, xfile_t *f, nxc_op_t *op)
{
    nats_offer_t *offer = NULL;
    int ret = a->nats ? nats_offer("recv", a, op, &offer) : md_print("recv", op);
    nats_offer_close(offer);      /* sent and taken: NATS is done */
    if (ret != 0)
        return ret;
    uint64_t start = now_ns();
    int rc = xwait(op, "waiting for a writer", a->deadline);
    if (rc == NXC_OK)
        print_rate("received", f->size, now_ns() - start, " since the metadata was taken");
    else if (rc == NXC_ERR_TIMED_OUT)
        ret = runtime_error("recv: timed out: '%s' was not written within %g s",
                            f->path, a->timeout);
    else
        ret = op_error(op, rc, "recv: the transfer into '%s' failed", f->path);
    return ret;
}

static int recv_op(const xargs_t *a, xfile_t *f)
{
    nxc_connector_t *c = NULL;
    nxc_op_t *op = NULL;
    int rc = xargs_connector(a, &c);
    if (rc != NXC_OK)
        return lib_error(rc, "recv: cannot create a connector");
    rc = nxc_create_writable(c, f->descs, f->n, &op);
    int ret = rc != NXC_OK ? lib_error(rc, "recv: cannot expose '%s'", f->path)
                           : offer_and_wait(a, f, op);
    nxc_op_release(op);
    nxc_connector_destroy(c);
    return ret;
}

int recv_main(int argc, char **argv)
{
    xargs_t a;
    xfile_t f = { 0 };
    int rc = xargs_parse("recv", argc, argv, 1, &a);
    if (rc != 0)
        return rc;
    if (a.help) {
        recv_help();
        return NXC_EXIT_OK;
    }
    if (a.npos != 1)
        return usage_error("recv: missing OUT (try 'nxc recv --help')");
    if (!a.has_size)
        return usage_error("recv: missing --size BYTES (the size of OUT)");
    signal(SIGPIPE, SIG_IGN);
    rc = xfile_create("recv", a.pos[0], a.size, &f);
    if (rc == 0)
        rc = xfile_pieces("recv", &f);
    if (rc == 0)
        rc = recv_op(&a, &f);
    int crc = xfile_close("recv", &f, rc == 0);
    return rc ? rc : crc;
}

/* ---- put ------------------------------------------------------------------- */

static int send_file(const xargs_t *a, xfile_t *f, const nxc_metadata_t *md)
{
    nxc_connector_t *c = NULL;
    nxc_op_t *op = NULL;
    char what[64], h[32];
    int rc = nxc_connector_create(NULL, &c);
    if (rc != NXC_OK)
        return lib_error(rc, "put: cannot create a connector");
    snprintf(what, sizeof what, "sending %s", human_bytes(f->size, h, sizeof h));
    uint64_t start = now_ns();
    int ret = 0;
    rc = nxc_begin_write(c, f->descs, f->n, md, &op);
    if (rc != NXC_OK)
        ret = lib_error(rc, "put: cannot start writing");
    else if ((rc = xwait(op, what, a->deadline)) == NXC_ERR_TIMED_OUT)
        ret = runtime_error("put: timed out after %g s", a->timeout);
    else if (rc != NXC_OK)
        ret = op_error(op, rc, "put: the transfer failed");
    else
        print_rate("sent", f->size, now_ns() - start, "");
    nxc_op_release(op);
    nxc_connector_destroy(c);
    return ret;
}

int put_main(int argc, char **argv)
{
    xargs_t a;
    nxc_metadata_t *md = NULL;
    xfile_t f = { 0 };
    int rc = xargs_parse("put", argc, argv, 2, &a);
    if (rc != 0)
        return rc;
    if (a.help) {
        put_help();
        return NXC_EXIT_OK;
    }
    if (a.npos == 0)
        return usage_error("put: missing FILE (try 'nxc put --help')");
    /* the file first: a missing FILE fails before any metadata is taken */
    rc = xfile_open_read("put", a.pos[0], &f);
    if (rc == 0)
        rc = a.nats ? nats_take("put", &a, NXC_OP_WRITE, &md)
                    : md_load("put", a.npos == 2 ? a.pos[1] : "-", NXC_OP_WRITE, &md);
    if (rc == 0)
        rc = xfile_mirror("put", &f, md);
    if (rc == 0)
        rc = send_file(&a, &f, md);
    xfile_close("put", &f, rc == 0);
    nxc_metadata_free(md);
    return rc;
}
