/* nxc serve/get/recv/put: one transfer routine for the four commands, each
 * a role (role_t, nxc_xfer.h). The passive side (serve, recv) exposes a file
 * and offers the metadata; the active side (get, put) takes the metadata and
 * starts the transfer. serve and put read their FILE; get and recv create
 * their OUT, removed if the transfer fails. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "nxc_xfer.h"

static const role_t roles[] = {
    { "serve", NXC_OP_READ,  true,  "FILE", "waiting for a reader", NULL,
      "served", " since the metadata was offered", serve_help },
    { "get",   NXC_OP_READ,  false, "OUT",  NULL, "receiving",
      "received", "", get_help },
    { "recv",  NXC_OP_WRITE, true,  "OUT",  "waiting for a writer", NULL,
      "received", " since the metadata was taken", recv_help },
    { "put",   NXC_OP_WRITE, false, "FILE", NULL, "sending",
      "sent", "", put_help },
};

/* serve and put send an existing file; get and recv create theirs. */
static bool reads_file(const role_t *r)
{
    return r->passive == (r->kind == NXC_OP_READ);
}

/* The file argument, and where the metadata comes from on the active side
 * ("-": the default when only the file is given). */
static const char *file_arg(const role_t *r, const xargs_t *a)
{
    return reads_file(r) ? a->pos[0] : a->pos[a->npos - 1];
}

static const char *metadata_arg(const role_t *r, const xargs_t *a)
{
    return a->npos == 2 ? a->pos[reads_file(r) ? 1 : 0] : "-";
}

/* ---- the op ----------------------------------------------------------------- */

/* Should the transport refuse to register read-only pages, the private
 * mapping is made writable and the registration tried again; no byte is
 * ever written. */
static int expose_readable(nxc_connector_t *c, xfile_t *f, nxc_op_t **op)
{
    int rc = nxc_create_readable(c, f->descs, f->n, op);
    if (rc == NXC_ERR_TRANSPORT && f->size > 0 &&
        mprotect(f->map, f->size, PROT_READ | PROT_WRITE) == 0)
        rc = nxc_create_readable(c, f->descs, f->n, op);
    return rc;
}

static int start_op(const role_t *r, nxc_connector_t *c, xfile_t *f,
                    const nxc_metadata_t *md, nxc_op_t **op)
{
    int rc;
    if (r->passive)
        rc = r->kind == NXC_OP_READ ? expose_readable(c, f, op)
                                    : nxc_create_writable(c, f->descs, f->n, op);
    else
        rc = r->kind == NXC_OP_READ ? nxc_begin_read(c, md, f->descs, f->n, op)
                                    : nxc_begin_write(c, f->descs, f->n, md, op);
    if (rc == NXC_OK)
        return 0;
    if (r->passive)
        return lib_error(rc, "%s: cannot expose '%s'", r->cmd, f->path);
    return lib_error(rc, "%s: cannot start %s", r->cmd,
                     r->kind == NXC_OP_READ ? "reading" : "writing");
}

/* What --json reports of a transfer that completed. */
typedef struct outcome {
    uint64_t bytes;
    uint64_t ns;
} outcome_t;

/* The passive side hands the metadata over (stdout or NATS); serve keeps
 * answering NATS requests until the transfer ends, so the offer is closed
 * only after the wait. The active side's time counts from `begun`, before
 * its begin: a same-host direct copy runs inside it. */
static int await_op(const role_t *r, const xargs_t *a, xfile_t *f, nxc_op_t *op,
                    uint64_t begun, outcome_t *out)
{
    nats_offer_t *offer = NULL;
    char what[64], h[32];
    if (r->passive) {
        int ret = a->nats ? nats_offer(r->cmd, a, op, &offer) : md_print(r->cmd, op);
        if (ret != 0)
            return ret;
        snprintf(what, sizeof what, "%s", r->waiting);
    } else {
        snprintf(what, sizeof what, "%s %s", r->moving,
                 human_bytes(f->size, h, sizeof h));
    }
    uint64_t start = r->passive ? now_ns() : begun;
    int rc = xwait(op, what, f->size, a->deadline);
    nats_offer_close(offer);
    if (rc == NXC_OK) {
        out->bytes = f->size;
        out->ns = now_ns() - start;
        print_rate(r->verb, out->bytes, out->ns, r->note);
        return 0;
    }
    if (xinterrupted())
        return NXC_EXIT_RUNTIME;   /* run() says so and dies of the signal */
    bool rd = r->kind == NXC_OP_READ;
    if (rc == NXC_ERR_TIMED_OUT && r->passive)
        return runtime_error("%s: timed out: '%s' was not %s within %g s", r->cmd,
                             f->path, rd ? "read" : "written", a->timeout);
    if (rc == NXC_ERR_TIMED_OUT)
        return runtime_error("%s: timed out after %g s", r->cmd, a->timeout);
    if (r->passive)
        return op_error(op, rc, "%s: the transfer %s '%s' failed", r->cmd,
                        rd ? "of" : "into", f->path);
    return op_error(op, rc, "%s: the transfer failed", r->cmd);
}

static int transfer(const role_t *r, const xargs_t *a, xfile_t *f,
                    const nxc_metadata_t *md, outcome_t *out)
{
    nxc_connector_t *c = NULL;
    nxc_op_t *op = NULL;
    int rc = xargs_connector(a, &c);
    if (rc != NXC_OK)
        return lib_error(rc, "%s: cannot create a connector", r->cmd);
    uint64_t begun = now_ns();
    int ret = start_op(r, c, f, md, &op);
    if (ret == 0)
        ret = await_op(r, a, f, op, begun, out);
    nxc_op_release(op);
    nxc_connector_destroy(c);
    return ret;
}

/* ---- the file and the metadata ------------------------------------------------ */

/* The passive side's file, cut into descriptors (xfile_pieces()). */
static int prepare_passive(const role_t *r, const xargs_t *a, xfile_t *f)
{
    int rc = reads_file(r) ? xfile_open_read(r->cmd, a->pos[0], f)
                           : xfile_create(r->cmd, a->pos[0], a->size, f);
    return rc ? rc : xfile_pieces(r->cmd, f);
}

/* The active side's metadata and file, cut as the peer's descriptors. put
 * opens FILE before taking the metadata, so a missing FILE fails first; get
 * learns OUT's size from the metadata. */
static int prepare_active(const role_t *r, const xargs_t *a, xfile_t *f,
                          nxc_metadata_t **md)
{
    bool in = reads_file(r);
    const char *path = file_arg(r, a), *src = metadata_arg(r, a);
    uint64_t size = 0;
    int rc = in ? xfile_open_read(r->cmd, path, f) : 0;
    if (rc == 0)
        rc = a->nats ? nats_take(r->cmd, a, r->kind, md)
                     : md_load(r->cmd, src, r->kind, md);
    if (rc == 0 && !in)
        rc = sizes_total(r->cmd, *md, &size);
    if (rc == 0 && !in)
        rc = xfile_create(r->cmd, path, size, f);
    return rc ? rc : xfile_mirror(r->cmd, f, *md);
}

static int check_args(const role_t *r, const xargs_t *a)
{
    if (a->npos == 0 || (r->passive && a->npos != 1))
        return usage_error("%s: missing %s (try 'nxc %s --help')", r->cmd,
                           r->file_word, r->cmd);
    if (!reads_file(r) && r->passive && !a->has_size)
        return usage_error("%s: missing --size BYTES (the size of OUT)", r->cmd);
    bool std_data = strcmp(file_arg(r, a), "-") == 0;
    if (std_data && reads_file(r) && !r->passive && !a->nats &&
        strcmp(metadata_arg(r, a), "-") == 0)
        return usage_error("%s: FILE and METADATA cannot both come from standard "
                           "input (give the metadata as text or @PATH)", r->cmd);
    if (std_data && !reads_file(r) && r->passive && !a->nats)
        return usage_error("%s: OUT '-' needs --nats: standard output carries the "
                           "metadata", r->cmd);
    if (std_data && !reads_file(r) && a->json)
        return usage_error("%s: --json and OUT '-' cannot both use standard output",
                           r->cmd);
    return 0;
}

/* --json: one object on stdout with the command's result. */
static void print_result(const role_t *r, const char *path, int exit_code,
                         const outcome_t *out)
{
    printf("{\"command\":\"%s\",\"ok\":%s,\"exit\":%d,\"file\":", r->cmd,
           exit_code == 0 ? "true" : "false", exit_code);
    json_string(path);
    if (exit_code == 0) {
        double s = (double)out->ns / 1e9;
        printf(",\"bytes\":%llu,\"seconds\":%.6f,\"gbps\":%.6g}\n",
               (unsigned long long)out->bytes, s, s > 0 ? (double)out->bytes / s / 1e9 : 0.0);
        return;
    }
    printf(",\"error\":\"%s\",\"message\":",
           xinterrupted() ? "interrupted"
           : last_code_name() ? last_code_name() : "failed");
    json_string(last_message());
    puts("}");
}

static int run(const role_t *r, int argc, char **argv)
{
    xargs_t a;
    xfile_t f = { 0 };
    nxc_metadata_t *md = NULL;
    outcome_t out = { 0, 0 };
    int rc = xargs_parse(r, argc, argv, &a);
    if (rc != 0)
        return rc;
    if (a.help) {
        r->help();
        return NXC_EXIT_OK;
    }
    if ((rc = check_args(r, &a)) != 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    xsignals_install();
    rc = r->passive ? prepare_passive(r, &a, &f) : prepare_active(r, &a, &f, &md);
    if (rc == 0)
        rc = transfer(r, &a, &f, md, &out);
    /* A signal that came after the transfer completed cut nothing short: the
     * data is whole, so the file stays and the exit says success. */
    bool cut = xinterrupted() && rc != 0;
    int crc = xfile_close(r->cmd, &f, rc == 0);
    nxc_metadata_free(md);
    rc = rc ? rc : crc;
    if (cut)
        rc = 128 + xinterrupted();
    if (a.json)
        print_result(r, file_arg(r, &a), rc, &out);
    if (cut)
        xdie_interrupted(r->cmd);
    return rc;
}

int serve_main(int argc, char **argv) { return run(&roles[0], argc, argv); }
int get_main(int argc, char **argv)   { return run(&roles[1], argc, argv); }
int recv_main(int argc, char **argv)  { return run(&roles[2], argc, argv); }
int put_main(int argc, char **argv)   { return run(&roles[3], argc, argv); }
