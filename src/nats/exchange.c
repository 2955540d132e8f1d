/* NATS exchange of operation metadata (optional module, public API only).
 *
 * A thin layer over the NATS C client: it validates arguments, enforces the
 * size limits before anything is sent, adds the acknowledgment that makes
 * nxc_nats_send() know its metadata was taken, and turns the client's
 * statuses into the library's error model (a code and a sentence). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "nixl_connect_nats.h"

#define DEFAULT_TIMEOUT_MS 2000
#define MAX_TIMEOUT_MS     600000
#define SUBJECT_MAX        1024
#define STOP_WAIT_MS       5000
/* A receiver's answer to nxc_nats_send(): empty means "taken"; this text
 * means it refused the message for its size. */
#define REFUSED_TOO_LARGE  "nxc-refused: too large"

struct nxc_nats {
    natsConnection    *nc;
    int                timeout_ms;
    bool               reconnects; /* NXC_NATS_CONFIG_RECONNECT was given */
    size_t             limit;     /* min(server max_payload, user limit) */
    pthread_mutex_t    lock;      /* guards the two lists */
    nxc_nats_server_t *servers;
    nxc_nats_inbox_t  *inboxes;
};

struct nxc_nats_server {
    nxc_nats_t        *n;
    natsSubscription  *sub;
    char              *subject;
    char              *json;
    size_t             len;
    atomic_uint_least64_t answered;
    /* The NATS client tells us (on_server_done) once its thread can no
     * longer run the reply handler; only then may the text be freed. */
    pthread_mutex_t    lock;
    pthread_cond_t     cond;
    bool               done, orphaned;
    nxc_nats_server_t *next;
};

struct nxc_nats_inbox {
    nxc_nats_t       *n;
    natsSubscription *sub;
    char             *subject;
    nxc_nats_inbox_t *next;
};

/* ---- errors ------------------------------------------------------------------ */

static _Thread_local char g_detail[512];

NXC_NATS_API const char *nxc_nats_last_error(void)
{
    return g_detail;
}

NXC_NATS_API const char *nxc_nats_strerror(int err)
{
    switch (err) {
    case NXC_NATS_ERR_NO_SERVER:     return "no NATS server could be reached";
    case NXC_NATS_ERR_NO_RESPONDERS: return "nobody is listening on the NATS subject";
    case NXC_NATS_ERR_TOO_LARGE:     return "the message is larger than the NATS limit";
    case NXC_NATS_ERR_CLOSED:        return "the NATS connection is closed";
    case NXC_NATS_ERR_NATS:          return "the NATS client reported an error";
    /* the core's sentence speaks of an operation that goes on */
    case NXC_ERR_TIMED_OUT:          return "no answer over NATS in time";
    default:                         return nxc_strerror(err);
    }
}

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_detail, sizeof g_detail, fmt, ap);
    va_end(ap);
    return code;
}

/* The module's code for a NATS client status outside connect. */
static int map_status(natsStatus s)
{
    switch (s) {
    case NATS_OK:                    return NXC_OK;
    case NATS_TIMEOUT:               return NXC_ERR_TIMED_OUT;
    case NATS_NO_RESPONDERS:         return NXC_NATS_ERR_NO_RESPONDERS;
    case NATS_NO_SERVER:             return NXC_NATS_ERR_NO_SERVER;
    case NATS_MAX_PAYLOAD:           return NXC_NATS_ERR_TOO_LARGE;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:      return NXC_NATS_ERR_CLOSED;
    case NATS_NO_MEMORY:             return NXC_ERR_NO_MEMORY;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:       return NXC_ERR_INVALID_ARG;
    default:                         return NXC_NATS_ERR_NATS;
    }
}

/* The client's own words for status @p s, when its thread-local last error
 * is about that status (it may be stale otherwise), without the client's
 * "(file.c:123): " prefix; NULL when it says nothing more. */
static const char *client_words(natsStatus s)
{
    natsStatus ls = NATS_OK;
    const char *more = nats_GetLastError(&ls);
    if (!more || ls != s)
        return NULL;
    if (more[0] == '(') {
        const char *end = strstr(more, "): ");
        if (end)
            more = end + 3;
    }
    return *more && strcmp(more, natsStatus_GetText(s)) != 0 ? more : NULL;
}

/* Fails with the mapped code; the detail is "<what>: <status text>", plus
 * the client's own words when they say more. A connection that is closed
 * wins over whatever secondary status the client returned. */
static int nats_fail(nxc_nats_t *n, natsStatus s, const char *what)
{
    const char *more = client_words(s);
    int code = map_status(s);
    if (n && natsConnection_IsClosed(n->nc))
        code = NXC_NATS_ERR_CLOSED;
    if (code == NXC_NATS_ERR_CLOSED)
        return fail(code, "%s: the connection to the NATS server is closed (%s)", what,
                    n && n->reconnects ? "no server of the list came back in time"
                                       : "the server went away; this connection does "
                                         "not reconnect");
    if (more)
        return fail(code, "%s: %s (%s)", what, natsStatus_GetText(s), more);
    return fail(code, "%s: %s", what, natsStatus_GetText(s));
}

/* ---- argument checks --------------------------------------------------------- */

/* NATS subjects: dot-separated non-empty tokens of printable characters
 * without spaces. A subject to send on names one destination, so the
 * wildcard tokens "*" and ">" are only for subscriptions. Checking here
 * turns a silent "nobody ever answers" into an immediate, clear error. */
static int check_subject(const char *s, bool wildcards)
{
    if (!s || !*s)
        return fail(NXC_ERR_INVALID_ARG, "the subject is NULL or empty");
    size_t len = strlen(s);
    if (len > SUBJECT_MAX)
        return fail(NXC_ERR_INVALID_ARG, "the subject is %zu bytes long (at most %d)",
                    len, SUBJECT_MAX);
    const char *tok = s;
    for (size_t i = 0; i <= len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch != '.' && ch != '\0') {
            if (ch <= ' ' || ch >= 0x7f)
                return fail(NXC_ERR_INVALID_ARG, "subject '%s': character %zu is a "
                            "space or not printable ASCII", s, i);
            continue;
        }
        size_t tlen = (size_t)(s + i - tok);
        if (tlen == 0)
            return fail(NXC_ERR_INVALID_ARG, "subject '%s' has an empty token "
                        "(leading, trailing or double '.')", s);
        bool star = tlen == 1 && *tok == '*', gt = tlen == 1 && *tok == '>';
        if (!star && !gt && (memchr(tok, '*', tlen) || memchr(tok, '>', tlen)))
            return fail(NXC_ERR_INVALID_ARG, "subject '%s': '*' and '>' must be "
                        "whole tokens", s);
        if ((star || gt) && !wildcards)
            return fail(NXC_ERR_INVALID_ARG, "subject '%s' has a wildcard; only "
                        "subscriptions may", s);
        if (gt && ch != '\0')
            return fail(NXC_ERR_INVALID_ARG, "subject '%s': '>' must be the last "
                        "token", s);
        tok = s + i + 1;
    }
    return NXC_OK;
}

/* Messages above the limit are refused before they reach the client, with
 * both sizes in the detail (the client would say only "maximum payload"). */
static int check_size(const nxc_nats_t *n, size_t len, const char *subject)
{
    if (len <= n->limit)
        return NXC_OK;
    return fail(NXC_NATS_ERR_TOO_LARGE, "subject '%s': the message is %zu bytes, "
                "the limit is %zu (the smaller of the server's max_payload and "
                "the configured max_message)", subject, len, n->limit);
}

static int check_send(const nxc_nats_t *n, const char *subject, const char *json,
                      size_t len)
{
    if (!n)
        return fail(NXC_ERR_INVALID_ARG, "the connection is NULL");
    int rc = check_subject(subject, false);
    if (rc != NXC_OK)
        return rc;
    if (!json || len == 0)
        return fail(NXC_ERR_INVALID_ARG, "subject '%s': the text is NULL or empty",
                    subject);
    return check_size(n, len, subject);
}

static int check_timeout(int timeout_ms, const char *subject)
{
    if (timeout_ms >= 1)
        return NXC_OK;
    return fail(NXC_ERR_INVALID_ARG, "subject '%s': timeout %d ms (1 or more)",
                subject, timeout_ms);
}

/* A NUL-terminated copy of a message's data, refused above the limit. */
static int copy_msg(const nxc_nats_t *n, natsMsg *msg, const char *subject,
                    char **json, size_t *len)
{
    int mlen = natsMsg_GetDataLength(msg);
    size_t size = mlen > 0 ? (size_t)mlen : 0;
    int rc = check_size(n, size, subject);
    if (rc != NXC_OK)
        return rc;
    char *text = malloc(size + 1);
    if (!text)
        return fail(NXC_ERR_NO_MEMORY, "subject '%s': no memory for %zu bytes",
                    subject, size);
    if (size)
        memcpy(text, natsMsg_GetData(msg), size);
    text[size] = '\0';
    *json = text;
    if (len)
        *len = size;
    return NXC_OK;
}

/* ---- connection -------------------------------------------------------------- */

/* What the connection is to be, after the config's checks. */
typedef struct conn_params {
    int                      timeout_ms;
    size_t                   max;
    int                      reconnect_ms; /* 0: never */
    const nxc_nats_config_t *cfg;          /* TLS files, or NULL */
    const char              *creds_file;   /* or NULL */
} conn_params_t;

#define CONFIG_BITS (NXC_NATS_CONFIG_TIMEOUT | NXC_NATS_CONFIG_MAX_MESSAGE | \
                     NXC_NATS_CONFIG_RECONNECT | NXC_NATS_CONFIG_TLS | \
                     NXC_NATS_CONFIG_CREDS)

static int check_readable(const char *what, const char *path)
{
    if (access(path, R_OK) != 0)
        return fail(NXC_ERR_INVALID_ARG, "config: cannot read %s file '%s': %s", what, path,
                    strerror(errno));
    return NXC_OK;
}

static int check_tls(const nxc_nats_config_t *cfg)
{
    if (!cfg->tls_ca_file || !*cfg->tls_ca_file)
        return fail(NXC_ERR_INVALID_ARG, "config: TLS needs tls_ca_file (the CA that "
                    "signed the server's certificate)");
    if (!cfg->tls_cert_file != !cfg->tls_key_file)
        return fail(NXC_ERR_INVALID_ARG, "config: tls_cert_file and tls_key_file go "
                    "together (a client certificate and its key)");
    const char *files[] = { cfg->tls_ca_file, cfg->tls_cert_file, cfg->tls_key_file };
    for (size_t i = 0; i < 3; i++)
        if (files[i] && check_readable("TLS", files[i]) != NXC_OK)
            return NXC_ERR_INVALID_ARG;
    return NXC_OK;
}

static int check_config(const nxc_nats_config_t *cfg, conn_params_t *p)
{
    *p = (conn_params_t){ .timeout_ms = DEFAULT_TIMEOUT_MS };
    if (!cfg)
        return NXC_OK;
    if (cfg->field_mask & ~(uint64_t)CONFIG_BITS)
        return fail(NXC_ERR_INVALID_ARG, "config: unknown bits in field_mask 0x%llx",
                    (unsigned long long)cfg->field_mask);
    if (cfg->field_mask & NXC_NATS_CONFIG_TIMEOUT) {
        if (cfg->timeout_ms < 1 || cfg->timeout_ms > MAX_TIMEOUT_MS)
            return fail(NXC_ERR_INVALID_ARG, "config: timeout_ms %d is out of range "
                        "(1 to %d)", cfg->timeout_ms, MAX_TIMEOUT_MS);
        p->timeout_ms = cfg->timeout_ms;
    }
    if (cfg->field_mask & NXC_NATS_CONFIG_MAX_MESSAGE)
        p->max = cfg->max_message;
    if (cfg->field_mask & NXC_NATS_CONFIG_RECONNECT) {
        if (cfg->reconnect_ms < 1 || cfg->reconnect_ms > MAX_TIMEOUT_MS)
            return fail(NXC_ERR_INVALID_ARG, "config: reconnect_ms %d is out of range "
                        "(1 to %d)", cfg->reconnect_ms, MAX_TIMEOUT_MS);
        p->reconnect_ms = cfg->reconnect_ms;
    }
    if (cfg->field_mask & NXC_NATS_CONFIG_TLS) {
        int rc = check_tls(cfg);
        if (rc != NXC_OK)
            return rc;
        p->cfg = cfg;
    }
    if (cfg->field_mask & NXC_NATS_CONFIG_CREDS) {
        if (!cfg->creds_file || !*cfg->creds_file)
            return fail(NXC_ERR_INVALID_ARG, "config: NXC_NATS_CONFIG_CREDS needs creds_file");
        if (check_readable("credentials", cfg->creds_file) != NXC_OK)
            return NXC_ERR_INVALID_ARG;
        p->creds_file = cfg->creds_file;
    }
    return NXC_OK;
}

#define URLS_MAX 16

/* "u1,u2, u3" -> the client's server list, tried in order (the client's
 * own URL setter takes a single URL); a local copy is cut in place. */
static natsStatus set_servers(natsOptions *o, const char *url)
{
    char buf[4096];
    const char *list[URLS_MAX];
    int n = 0;
    if (strlen(url) >= sizeof buf)
        return NATS_INVALID_ARG;
    strcpy(buf, url);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        t += strspn(t, " \t");
        for (char *e = t + strlen(t); e > t && (e[-1] == ' ' || e[-1] == '\t');)
            *--e = '\0';
        if (*t == '\0' || n == URLS_MAX)
            return NATS_INVALID_ARG;
        list[n++] = t;
    }
    return n == 0 ? NATS_INVALID_ARG : natsOptions_SetServers(o, list, n);
}

#define RECONNECT_WAIT_MS 100

/* Reconnecting: every RECONNECT_WAIT_MS, through the list (and the servers
 * the cluster announces), for reconnect_ms. Subscriptions come back with
 * the connection; what is published meanwhile is buffered and sent then. */
static natsStatus set_reconnect(natsOptions *o, int reconnect_ms)
{
    natsStatus s = natsOptions_SetAllowReconnect(o, reconnect_ms > 0);
    if (s == NATS_OK && reconnect_ms > 0)
        s = natsOptions_SetMaxReconnect(o, reconnect_ms / RECONNECT_WAIT_MS + 1);
    if (s == NATS_OK && reconnect_ms > 0)
        s = natsOptions_SetReconnectWait(o, RECONNECT_WAIT_MS);
    return s;
}

static natsStatus set_tls(natsOptions *o, const nxc_nats_config_t *cfg)
{
    natsStatus s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK)
        s = natsOptions_LoadCATrustedCertificates(o, cfg->tls_ca_file);
    if (s == NATS_OK && cfg->tls_cert_file)
        s = natsOptions_LoadCertificatesChain(o, cfg->tls_cert_file, cfg->tls_key_file);
    return s;
}

/* Options: one connect attempt per URL within the timeout; no reconnect
 * unless asked (a lost server then fails calls at once instead of
 * buffering them); each publish written at once rather than batched
 * (metadata is latency bound). */
static natsStatus make_options(const char *url, const conn_params_t *p, natsOptions **out)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = set_servers(o, url);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, p->timeout_ms);
    if (s == NATS_OK)
        s = set_reconnect(o, p->reconnect_ms);
    if (s == NATS_OK && p->cfg)
        s = set_tls(o, p->cfg);
    if (s == NATS_OK && p->creds_file) /* a chained file: JWT and seed in one */
        s = natsOptions_SetUserCredentialsFromFiles(o, p->creds_file, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetNoRandomize(o, true);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return s;
    }
    *out = o;
    return NATS_OK;
}

/* Connect failures: a bad URL is the caller's; a refusal of our
 * credentials is the server's verdict on them; a protocol error or timeout
 * means whatever listens there is not a working NATS server. */
static int connect_fail(natsStatus s, const char *url, int timeout_ms)
{
    char what[300];
    snprintf(what, sizeof what, "cannot connect to '%s'", url);
    int rc = nats_fail(NULL, s, what);
    if (rc == NXC_ERR_INVALID_ARG || rc == NXC_ERR_NO_MEMORY)
        return rc;
    if (s == NATS_CONNECTION_AUTH_FAILED) {
        size_t used = strlen(g_detail);
        snprintf(g_detail + used, sizeof g_detail - used, ": the server refused this "
                 "client (no credentials given, or a creds_file whose user or account "
                 "the server does not trust)");
        return NXC_NATS_ERR_NATS;
    }
    size_t used = strlen(g_detail);
    snprintf(g_detail + used, sizeof g_detail - used, " (nothing listening there, "
             "host unreachable or unknown, or no NATS greeting within %d ms)",
             timeout_ms);
    return NXC_NATS_ERR_NO_SERVER;
}

/* The NATS client (nats.c 3.4.1, Debian 12) now and then sends a CONNECT
 * that carries the user JWT but no signature of the server's nonce; the
 * server logs "Signature missing" and refuses with "Authorization
 * Violation" (2 of 300 connects with one valid creds file, one thread, on
 * this machine). A refusal costs one round trip, so with credentials we
 * ask again before we believe it: a client the server does not trust is
 * still refused, a few milliseconds later. */
enum { CREDS_CONNECT_ATTEMPTS = 4 };

static natsStatus connect_with_retry(natsConnection **nc, natsOptions *o, bool with_creds)
{
    int attempts = with_creds ? CREDS_CONNECT_ATTEMPTS : 1;
    natsStatus s;
    do
        s = natsConnection_Connect(nc, o);
    while (s == NATS_CONNECTION_AUTH_FAILED && --attempts > 0);
    return s;
}

NXC_NATS_API int nxc_nats_connect(const char *url, const nxc_nats_config_t *cfg,
                                  nxc_nats_t **out)
{
    conn_params_t p;
    if (!url || !*url || !out)
        return fail(NXC_ERR_INVALID_ARG, "connect: NULL or empty URL, or NULL out");
    int rc = check_config(cfg, &p);
    if (rc != NXC_OK)
        return rc;
    nxc_nats_t *n = calloc(1, sizeof *n);
    if (!n)
        return fail(NXC_ERR_NO_MEMORY, "connect: no memory");
    natsOptions *o = NULL;
    natsStatus s = make_options(url, &p, &o);
    if (s == NATS_OK)
        s = connect_with_retry(&n->nc, o, p.creds_file != NULL);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        free(n);
        return connect_fail(s, url, p.timeout_ms);
    }
    int64_t payload = natsConnection_GetMaxPayload(n->nc);
    n->limit = payload > 0 ? (size_t)payload : 0;
    if (n->limit > INT_MAX)        /* the client takes lengths as int */
        n->limit = INT_MAX;
    if (p.max > 0 && p.max < n->limit)
        n->limit = p.max;
    n->timeout_ms = p.timeout_ms;
    n->reconnects = p.reconnect_ms > 0;
    pthread_mutex_init(&n->lock, NULL);
    *out = n;
    return NXC_OK;
}

NXC_NATS_API size_t nxc_nats_max_message(nxc_nats_t *n)
{
    return n ? n->limit : 0;
}

/* Subscribing is asynchronous in NATS: a round trip to the server makes
 * sure it knows the subscription before the caller tells anyone to send. */
static int confirm(nxc_nats_t *n, const char *subject, const char *what)
{
    natsStatus s = natsConnection_FlushTimeout(n->nc, n->timeout_ms);
    if (s == NATS_OK)
        return NXC_OK;
    char buf[SUBJECT_MAX + 64];
    snprintf(buf, sizeof buf, "%s on '%s' not confirmed by the server", what, subject);
    return nats_fail(n, s, buf);
}

/* ---- serve (request/reply, passive side) -------------------------------------- */

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                       void *closure)
{
    (void)sub;
    nxc_nats_server_t *s = closure;
    const char *reply = natsMsg_GetReply(msg);
    /* Counted before the reply leaves: a requester holding the answer must
     * see it counted (seen under valgrind: the count lagged the reply). */
    if (reply) {
        atomic_fetch_add(&s->answered, 1);
        if (natsConnection_Publish(nc, reply, s->json, (int)s->len) != NATS_OK)
            atomic_fetch_sub(&s->answered, 1);
    }
    natsMsg_Destroy(msg);
}

static void server_free(nxc_nats_server_t *s)
{
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s->subject);
    free(s->json);
    free(s);
}

/* Called by the NATS client once the handler can no longer run. If stop
 * gave up waiting for this, the server is ours to free. */
static void on_server_done(void *closure)
{
    nxc_nats_server_t *s = closure;
    pthread_mutex_lock(&s->lock);
    s->done = true;
    bool orphaned = s->orphaned;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (orphaned)
        server_free(s);
}

static nxc_nats_server_t *server_new(nxc_nats_t *n, const char *subject,
                                     const char *json, size_t len)
{
    nxc_nats_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->subject = strdup(subject);
    s->json = malloc(len);
    if (!s->subject || !s->json) {
        free(s->subject);
        free(s->json);
        free(s);
        return NULL;
    }
    memcpy(s->json, json, len);
    s->len = len;
    s->n = n;
    atomic_init(&s->answered, 0);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    return s;
}

/* Unsubscribes and frees, waiting (bounded) for the client's thread to be
 * done with the handler; past the bound the client frees it later. */
static void server_close(nxc_nats_server_t *s)
{
    struct timespec until;
    /* The round trip makes the server forget the subscription before stop
     * returns: a request sent afterwards gets "no responders", not a
     * timeout. Errors are moot (a closed connection has no subscribers). */
    if (natsSubscription_Unsubscribe(s->sub) == NATS_OK)
        natsConnection_FlushTimeout(s->n->nc, s->n->timeout_ms);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += STOP_WAIT_MS / 1000;
    pthread_mutex_lock(&s->lock);
    while (!s->done && pthread_cond_timedwait(&s->cond, &s->lock, &until) == 0)
        ;
    bool done = s->done;
    s->orphaned = !done;
    pthread_mutex_unlock(&s->lock);
    natsSubscription_Destroy(s->sub);
    if (done)
        server_free(s);
}

static int server_start(nxc_nats_t *n, nxc_nats_server_t *s)
{
    natsStatus st = natsConnection_Subscribe(&s->sub, n->nc, s->subject, on_request, s);
    if (st == NATS_OK)
        st = natsSubscription_SetOnCompleteCB(s->sub, on_server_done, s);
    /* The callback setter fails only on a subscription already closed,
     * which runs no handler: freeing at once is safe. */
    if (st != NATS_OK) {
        char what[SUBJECT_MAX + 32];
        snprintf(what, sizeof what, "cannot serve on '%s'", s->subject);
        int rc = nats_fail(n, st, what);
        natsSubscription_Destroy(s->sub);    /* NULL-safe; never subscribed */
        server_free(s);
        return rc;
    }
    int rc = confirm(n, s->subject, "serving");
    if (rc != NXC_OK) {
        server_close(s);
        return rc;
    }
    return NXC_OK;
}

NXC_NATS_API int nxc_nats_serve(nxc_nats_t *n, const char *subject,
                                const char *json, size_t len,
                                nxc_nats_server_t **out)
{
    int rc = check_send(n, subject, json, len);
    if (rc != NXC_OK)
        return rc;
    if (!out)
        return fail(NXC_ERR_INVALID_ARG, "serve: NULL out");
    nxc_nats_server_t *s = server_new(n, subject, json, len);
    if (!s)
        return fail(NXC_ERR_NO_MEMORY, "serve: no memory for %zu bytes", len);
    rc = server_start(n, s);
    if (rc != NXC_OK)
        return rc;
    pthread_mutex_lock(&n->lock);
    s->next = n->servers;
    n->servers = s;
    pthread_mutex_unlock(&n->lock);
    *out = s;
    return NXC_OK;
}

/* A passive op's metadata, with the core's own error detail carried over. */
static int op_text(nxc_op_t *op, const char **json, size_t *len)
{
    if (!op)
        return fail(NXC_ERR_INVALID_ARG, "the operation is NULL");
    int rc = nxc_op_metadata(op, json, len);
    if (rc != NXC_OK)
        return fail(rc, "the operation has no metadata: %s", nxc_last_error());
    return NXC_OK;
}

NXC_NATS_API int nxc_nats_serve_op(nxc_nats_t *n, const char *subject,
                                   nxc_op_t *op, nxc_nats_server_t **out)
{
    const char *json;
    size_t len;
    int rc = op_text(op, &json, &len);
    return rc != NXC_OK ? rc : nxc_nats_serve(n, subject, json, len, out);
}

NXC_NATS_API uint64_t nxc_nats_server_answered(const nxc_nats_server_t *s)
{
    return s ? atomic_load(&((nxc_nats_server_t *)s)->answered) : 0;
}

NXC_NATS_API void nxc_nats_server_stop(nxc_nats_server_t *s)
{
    if (!s)
        return;
    nxc_nats_t *n = s->n;
    pthread_mutex_lock(&n->lock);
    for (nxc_nats_server_t **p = &n->servers; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    pthread_mutex_unlock(&n->lock);
    server_close(s);
}

/* ---- request (request/reply, active side) ------------------------------------- */

NXC_NATS_API int nxc_nats_request(nxc_nats_t *n, const char *subject,
                                  int timeout_ms, char **json, size_t *len)
{
    if (!n || !json)
        return fail(NXC_ERR_INVALID_ARG, "request: NULL connection or output");
    int rc = check_subject(subject, false);
    if (rc == NXC_OK)
        rc = check_timeout(timeout_ms, subject);
    if (rc != NXC_OK)
        return rc;
    natsMsg *reply = NULL;
    natsStatus s = natsConnection_Request(&reply, n->nc, subject, NULL, 0, timeout_ms);
    if (s != NATS_OK) {
        char what[SUBJECT_MAX + 64];
        snprintf(what, sizeof what, "request on '%s' (%d ms)", subject, timeout_ms);
        return nats_fail(n, s, what);
    }
    rc = copy_msg(n, reply, subject, json, len);
    natsMsg_Destroy(reply);
    return rc;
}

/* ---- send / publish / receive ------------------------------------------------- */

/* The receiver's answer: empty is "taken"; anything else is a refusal. */
static int check_ack(natsMsg *ack, const char *subject)
{
    int alen = natsMsg_GetDataLength(ack);
    if (alen <= 0)
        return NXC_OK;
    const char *data = natsMsg_GetData(ack);
    size_t rlen = strlen(REFUSED_TOO_LARGE);
    if ((size_t)alen >= rlen && memcmp(data, REFUSED_TOO_LARGE, rlen) == 0)
        return fail(NXC_NATS_ERR_TOO_LARGE, "subject '%s': the receiver refused the "
                    "message: %.*s", subject, alen > 200 ? 200 : alen, data);
    return fail(NXC_NATS_ERR_NATS, "subject '%s': unexpected answer of %d bytes "
                "(is an nxc_nats_serve() responder on this subject?)", subject, alen);
}

NXC_NATS_API int nxc_nats_send(nxc_nats_t *n, const char *subject,
                               const char *json, size_t len, int timeout_ms)
{
    int rc = check_send(n, subject, json, len);
    if (rc == NXC_OK)
        rc = check_timeout(timeout_ms, subject);
    if (rc != NXC_OK)
        return rc;
    natsMsg *ack = NULL;
    natsStatus s = natsConnection_Request(&ack, n->nc, subject, json, (int)len,
                                          timeout_ms);
    if (s != NATS_OK) {
        char what[SUBJECT_MAX + 64];
        snprintf(what, sizeof what, "send on '%s' (%d ms)", subject, timeout_ms);
        return nats_fail(n, s, what);
    }
    rc = check_ack(ack, subject);
    natsMsg_Destroy(ack);
    return rc;
}

NXC_NATS_API int nxc_nats_send_op(nxc_nats_t *n, const char *subject,
                                  nxc_op_t *op, int timeout_ms)
{
    const char *json;
    size_t len;
    int rc = op_text(op, &json, &len);
    return rc != NXC_OK ? rc : nxc_nats_send(n, subject, json, len, timeout_ms);
}

NXC_NATS_API int nxc_nats_publish(nxc_nats_t *n, const char *subject,
                                  const char *json, size_t len)
{
    int rc = check_send(n, subject, json, len);
    if (rc != NXC_OK)
        return rc;
    natsStatus s = natsConnection_Publish(n->nc, subject, json, (int)len);
    if (s != NATS_OK) {
        char what[SUBJECT_MAX + 32];
        snprintf(what, sizeof what, "publish on '%s'", subject);
        return nats_fail(n, s, what);
    }
    return confirm(n, subject, "publish");
}

NXC_NATS_API int nxc_nats_subscribe(nxc_nats_t *n, const char *subject,
                                    nxc_nats_inbox_t **out)
{
    if (!n || !out)
        return fail(NXC_ERR_INVALID_ARG, "subscribe: NULL connection or output");
    int rc = check_subject(subject, true);
    if (rc != NXC_OK)
        return rc;
    nxc_nats_inbox_t *in = calloc(1, sizeof *in);
    if (!in || !(in->subject = strdup(subject))) {
        free(in);
        return fail(NXC_ERR_NO_MEMORY, "subscribe: no memory");
    }
    in->n = n;
    natsStatus s = natsConnection_SubscribeSync(&in->sub, n->nc, subject);
    rc = s == NATS_OK ? confirm(n, subject, "subscription")
                      : nats_fail(n, s, "cannot subscribe");
    if (rc != NXC_OK) {
        natsSubscription_Destroy(in->sub);
        free(in->subject);
        free(in);
        return rc;
    }
    pthread_mutex_lock(&n->lock);
    in->next = n->inboxes;
    n->inboxes = in;
    pthread_mutex_unlock(&n->lock);
    *out = in;
    return NXC_OK;
}

/* Tells the sender of @p msg (if it waits, i.e. used nxc_nats_send()) that
 * the message was taken, or why not. */
static void acknowledge(nxc_nats_inbox_t *in, natsMsg *msg, int rc)
{
    const char *reply = natsMsg_GetReply(msg);
    if (!reply)
        return;
    if (rc == NXC_OK) {
        natsConnection_Publish(in->n->nc, reply, NULL, 0);
        return;
    }
    char why[160];
    int wlen = snprintf(why, sizeof why, "%s (%d bytes, limit %zu)", REFUSED_TOO_LARGE,
                        natsMsg_GetDataLength(msg), in->n->limit);
    natsConnection_Publish(in->n->nc, reply, why, wlen);
}

/* The next message; -1 waits without limit, in slices because the client
 * reads a timeout of 0 as "do not wait". */
static natsStatus next_msg(nxc_nats_inbox_t *in, int timeout_ms, natsMsg **msg)
{
    if (timeout_ms >= 0)
        return natsSubscription_NextMsg(msg, in->sub, timeout_ms);
    natsStatus s;
    while ((s = natsSubscription_NextMsg(msg, in->sub, 3600 * 1000)) == NATS_TIMEOUT)
        ;
    return s;
}

NXC_NATS_API int nxc_nats_next(nxc_nats_inbox_t *in, int timeout_ms, char **json,
                               size_t *len)
{
    if (!in || !json)
        return fail(NXC_ERR_INVALID_ARG, "next: NULL inbox or output");
    if (timeout_ms < -1)
        return fail(NXC_ERR_INVALID_ARG, "next on '%s': timeout %d ms (-1, 0 or more)",
                    in->subject, timeout_ms);
    natsMsg *msg = NULL;
    natsStatus s = next_msg(in, timeout_ms, &msg);
    if (s != NATS_OK) {
        char what[SUBJECT_MAX + 64];
        snprintf(what, sizeof what, "next message on '%s' (%d ms)", in->subject,
                 timeout_ms);
        return nats_fail(in->n, s, what);
    }
    int rc = copy_msg(in->n, msg, in->subject, json, len);
    acknowledge(in, msg, rc);
    natsMsg_Destroy(msg);
    return rc;
}

static void inbox_free(nxc_nats_inbox_t *in)
{
    /* as server_close(): gone from the server when this returns */
    if (natsSubscription_Unsubscribe(in->sub) == NATS_OK)
        natsConnection_FlushTimeout(in->n->nc, in->n->timeout_ms);
    natsSubscription_Destroy(in->sub);
    free(in->subject);
    free(in);
}

NXC_NATS_API void nxc_nats_unsubscribe(nxc_nats_inbox_t *in)
{
    if (!in)
        return;
    nxc_nats_t *n = in->n;
    pthread_mutex_lock(&n->lock);
    for (nxc_nats_inbox_t **p = &n->inboxes; *p; p = &(*p)->next)
        if (*p == in) {
            *p = in->next;
            break;
        }
    pthread_mutex_unlock(&n->lock);
    inbox_free(in);
}

NXC_NATS_API void nxc_nats_free(char *text)
{
    free(text);
}

NXC_NATS_API void nxc_nats_close(nxc_nats_t *n)
{
    if (!n)
        return;
    /* No other thread may use n now (documented), so the lists are ours. */
    while (n->servers) {
        nxc_nats_server_t *s = n->servers;
        n->servers = s->next;
        server_close(s);
    }
    while (n->inboxes) {
        nxc_nats_inbox_t *in = n->inboxes;
        n->inboxes = in->next;
        inbox_free(in);
    }
    natsConnection_Close(n->nc);
    natsConnection_Destroy(n->nc);
    pthread_mutex_destroy(&n->lock);
    free(n);
}
