/* nxc serve/get/recv/put --nats: NATS as the metadata channel, through the
 * optional module's public header (nixl_connect_nats.h). In a build without
 * the module, xargs_parse() refuses --nats before anything here runs. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nxc_xfer.h"

#ifdef NXC_HAVE_NATS
#include <nixl_connect_nats.h>

#define CONNECT_MS 5000   /* to reach the NATS server, within the deadline */
#define RETRY_MS   100    /* between attempts while nobody listens yet */

struct nats_offer {
    nxc_nats_t        *n;
    nxc_nats_server_t *srv;
};

bool nats_available(void)
{
    return true;
}

/* The module's codes by name (it has no function for that), the core's
 * through nxc_err_name(). */
static const char *nats_err_name(int rc)
{
    switch (rc) {
    case NXC_NATS_ERR_NO_SERVER:     return "NXC_NATS_ERR_NO_SERVER";
    case NXC_NATS_ERR_NO_RESPONDERS: return "NXC_NATS_ERR_NO_RESPONDERS";
    case NXC_NATS_ERR_TOO_LARGE:     return "NXC_NATS_ERR_TOO_LARGE";
    case NXC_NATS_ERR_CLOSED:        return "NXC_NATS_ERR_CLOSED";
    case NXC_NATS_ERR_NATS:          return "NXC_NATS_ERR_NATS";
    default:                         return nxc_err_name(rc);
    }
}

int nats_error(int rc, const char *fmt, ...)
{
    const char *detail = nxc_nats_last_error();
    va_list ap;
    va_start(ap, fmt);
    vcoded_error(nats_err_name(rc), nxc_nats_strerror(rc), detail, fmt, ap);
    va_end(ap);
    return NXC_EXIT_RUNTIME;
}

/* Milliseconds left before the deadline (at least 1), INT_MAX without
 * one, 0 once it has passed. */
static int remaining_ms(uint64_t deadline)
{
    if (!deadline)
        return INT_MAX;
    uint64_t now = now_ns();
    if (now >= deadline)
        return 0;
    uint64_t ms = (deadline - now + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int nats_open(const char *cmd, const xargs_t *a, nxc_nats_t **n)
{
    int left = remaining_ms(a->deadline);
    if (left == 0) /* else a 1 ms connect would fail and blame the server */
        return runtime_error("%s: the --timeout of %g s ran out before the NATS server at %s "
                             "was asked (setting up the transfer took that long)",
                             cmd, a->timeout, a->nats);
    nxc_nats_config_t cfg = { .field_mask = NXC_NATS_CONFIG_TIMEOUT,
                              .timeout_ms = left < CONNECT_MS ? left : CONNECT_MS,
                              .creds_file = a->nats_creds };
    if (a->nats_creds)
        cfg.field_mask |= NXC_NATS_CONFIG_CREDS;
    int rc = nxc_nats_connect(a->nats, &cfg, n);
    return rc == NXC_OK ? 0 : nats_error(rc, "%s: --nats %s", cmd, a->nats);
}

/* After an attempt that found nobody listening on the subject: waits
 * RETRY_MS and says to try again, if the deadline leaves time for it. */
static bool retry_later(int rc, uint64_t deadline)
{
    if (rc != NXC_NATS_ERR_NO_RESPONDERS || remaining_ms(deadline) <= RETRY_MS)
        return false;
    sleep_ms(RETRY_MS);
    return true;
}

/* Sends (recv) until a worker takes it, retrying while none listens. */
static int send_until_taken(const char *cmd, const xargs_t *a, nxc_nats_t *n,
                            nxc_op_t *op)
{
    int rc, left;
    do {
        left = remaining_ms(a->deadline);
        rc = left ? nxc_nats_send_op(n, a->subject, op, left) : NXC_ERR_TIMED_OUT;
    } while (retry_later(rc, a->deadline));
    return rc == NXC_OK ? 0 : nats_error(rc, "%s: no worker took the metadata on "
                                         "subject '%s'", cmd, a->subject);
}

int nats_offer(const char *cmd, const xargs_t *a, nxc_op_t *op, nats_offer_t **out)
{
    nats_offer_t *o = calloc(1, sizeof *o);
    if (!o)
        return runtime_error("%s: out of memory", cmd);
    int rc = nats_open(cmd, a, &o->n);
    if (rc == 0 && nxc_op_kind(op) == NXC_OP_READ) {
        int nrc = nxc_nats_serve_op(o->n, a->subject, op, &o->srv);
        if (nrc != NXC_OK)
            rc = nats_error(nrc, "%s: cannot serve on subject '%s'", cmd, a->subject);
    } else if (rc == 0) {
        rc = send_until_taken(cmd, a, o->n, op);
    }
    if (rc != 0) {
        nats_offer_close(o);
        return rc;
    }
    *out = o;
    return 0;
}

void nats_offer_close(nats_offer_t *o)
{
    if (!o)
        return;
    nxc_nats_server_stop(o->srv);
    nxc_nats_close(o->n);
    free(o);
}

/* get: asks until someone serves the subject or the deadline passes. */
static int request_text(const char *cmd, const xargs_t *a, nxc_nats_t *n,
                        char **json, size_t *len)
{
    int rc, left;
    do {
        left = remaining_ms(a->deadline);
        rc = left ? nxc_nats_request(n, a->subject, left, json, len) : NXC_ERR_TIMED_OUT;
    } while (retry_later(rc, a->deadline));
    return rc == NXC_OK ? 0 : nats_error(rc, "%s: no metadata served on subject '%s'",
                                         cmd, a->subject);
}

/* put: waits for a passive worker to send its metadata to the subject. */
static int receive_text(const char *cmd, const xargs_t *a, nxc_nats_t *n,
                        char **json, size_t *len)
{
    nxc_nats_inbox_t *in = NULL;
    int rc = nxc_nats_subscribe(n, a->subject, &in);
    if (rc == NXC_OK)
        rc = nxc_nats_next(in, a->deadline ? remaining_ms(a->deadline) : -1, json, len);
    nxc_nats_unsubscribe(in);
    return rc == NXC_OK ? 0 : nats_error(rc, "%s: no metadata sent to subject '%s'",
                                         cmd, a->subject);
}

int nats_take(const char *cmd, const xargs_t *a, nxc_op_kind_t kind,
              nxc_metadata_t **md)
{
    nxc_nats_t *n = NULL;
    char *json = NULL;
    size_t len = 0;
    int rc = nats_open(cmd, a, &n);
    if (rc == 0)
        rc = kind == NXC_OP_READ ? request_text(cmd, a, n, &json, &len)
                                 : receive_text(cmd, a, n, &json, &len);
    nxc_nats_close(n);
    if (rc != 0)
        return rc;
    int prc = nxc_metadata_parse(json, len, md);
    nxc_nats_free(json);
    if (prc != NXC_OK)
        return lib_error(prc, "%s: bad metadata on subject '%s'", cmd, a->subject);
    return md_check_kind(cmd, *md, kind);
}

#else /* !NXC_HAVE_NATS */

bool nats_available(void)
{
    return false;
}

/* Unreachable: xargs_parse() refuses --nats in this build. They exist so
 * the commands need no #ifdef, and fail loudly should that ever change. */
int nats_offer(const char *cmd, const xargs_t *a, nxc_op_t *op, nats_offer_t **out)
{
    (void)a, (void)op, (void)out;
    return runtime_error("%s: built without the NATS module", cmd);
}

void nats_offer_close(nats_offer_t *o)
{
    (void)o;
}

int nats_take(const char *cmd, const xargs_t *a, nxc_op_kind_t kind,
              nxc_metadata_t **md)
{
    (void)a, (void)kind, (void)md;
    return runtime_error("%s: built without the NATS module", cmd);
}

#endif
