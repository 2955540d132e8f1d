/*
 * The NATS module against a real 3-server cluster (routes, three
 * nats-server processes on their own ports) and a TLS server, through the
 * public header only.
 *
 *   cluster: clients connect with the list of all three servers and
 *            reconnect_ms; request/reply and send/receive run in a loop
 *            while another thread kills the server the responder and the
 *            receiver use (calls in flight at that moment). Every call returns within its timeout plus a margin
 *            (none hangs) with OK or a clear code (TIMED_OUT,
 *            NO_RESPONDERS while the subscriptions move); after the kill,
 *            new requests and sends succeed through the other servers;
 *            every message received is one that was sent. As root, CTest
 *            runs it in a network namespace of its own (in_netns.sh).
 *   tls:     a server with TLS that verifies clients (throwaway CA and
 *            certificates made here with openssl): request/reply works with
 *            the CA and a client certificate; without TLS, or without the
 *            client certificate, connecting fails; missing or unreadable
 *            files are refused as INVALID_ARG before any connection.
 *   creds:   a server with decentralized auth (an operator JWT, a memory
 *            resolver preloaded with an account JWT; throwaway keys and
 *            JWTs made offline by make_creds.py): request/reply works with
 *            the user's .creds file; without one, or with a user of an
 *            account the server does not know, connecting fails with a
 *            sentence saying the server refused the client; a missing
 *            file is INVALID_ARG before any connection.
 * Exit 77 (skipped) without nats-server, without openssl for tls, without
 * python3-cryptography for creds.
 */
#include <nixl_connect_nats.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nats_server.h"

#define CALL_MS    1000   /* timeout of each request and send */
#define MARGIN_MS  3000   /* "returned" means within timeout + this */
#define ROUNDS     60
#define KILL_AFTER_MS 300

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fprintf(stderr, " [last: %s]\n", nxc_nats_last_error());         \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ---- cluster ------------------------------------------------------------- */

static nats_server_t g_srv[3];

static void stop_all(void)
{
    for (int i = 0; i < 3; i++)
        nats_server_stop(&g_srv[i], SIGKILL);
}

static void start_cluster(void)
{
    int route[3];
    for (int i = 0; i < 3; i++)
        route[i] = nats_free_port();
    for (int i = 0; i < 3; i++) {
        char conf[512];
        snprintf(conf, sizeof conf,
                 "cluster {\n  name: nxc\n  listen: 127.0.0.1:%d\n"
                 "  routes: [nats-route://127.0.0.1:%d, nats-route://127.0.0.1:%d]\n}\n",
                 route[i], route[(i + 1) % 3], route[(i + 2) % 3]);
        CHECK(nats_server_start_conf(&g_srv[i], conf) == 0, "server %d did not start", i);
    }
    atexit(stop_all);
}

/* The URL list starting at server @p first. */
static void url_list(int first, char *buf, size_t size)
{
    snprintf(buf, size, "%s,%s,%s", g_srv[first].url, g_srv[(first + 1) % 3].url,
             g_srv[(first + 2) % 3].url);
}

static nxc_nats_t *connect_list(int first)
{
    char urls[256];
    url_list(first, urls, sizeof urls);
    nxc_nats_config_t cfg = { .field_mask = NXC_NATS_CONFIG_RECONNECT | NXC_NATS_CONFIG_TIMEOUT,
                              .timeout_ms = 2000, .reconnect_ms = 10000 };
    nxc_nats_t *n = NULL;
    CHECK(nxc_nats_connect(urls, &cfg, &n) == NXC_OK, "connect to %s", urls);
    return n;
}

typedef struct receiver {
    nxc_nats_inbox_t *in;
    atomic_bool       stop;
    atomic_int        taken;
    atomic_int        foreign;
} receiver_t;

static void *receive_loop(void *arg)
{
    receiver_t *r = arg;
    while (!atomic_load(&r->stop)) {
        char *json = NULL;
        size_t len = 0;
        int rc = nxc_nats_next(r->in, 200, &json, &len);
        if (rc == NXC_OK) {
            if (strncmp(json, "{\"send\":", 8) == 0)
                atomic_fetch_add(&r->taken, 1);
            else
                atomic_fetch_add(&r->foreign, 1);
            nxc_nats_free(json);
        }
    }
    return NULL;
}

static atomic_bool g_killed;
static _Atomic double g_killed_at;

/* Kills server 0 (under the responder and the receiver) while calls are in
 * flight: the main loop never pauses. */
static void *kill_later(void *arg)
{
    (void)arg;
    sleep_ms(KILL_AFTER_MS);
    printf("  killing server 0 (%s) under the responder and the receiver\n", g_srv[0].url);
    kill(g_srv[0].pid, SIGKILL);
    atomic_store(&g_killed_at, now_ms());
    atomic_store(&g_killed, true);
    return NULL;
}

/* rc is OK or a clear failure of a call that met a moving cluster. */
static bool clear_code(int rc)
{
    return rc == NXC_OK || rc == NXC_ERR_TIMED_OUT || rc == NXC_NATS_ERR_NO_RESPONDERS;
}

/* Routes take a moment to form: asks until the responder is reachable. */
static void wait_routed(nxc_nats_t *asker, const char *subject)
{
    for (int i = 0; i < 100; i++) {
        char *json = NULL;
        if (nxc_nats_request(asker, subject, 200, &json, NULL) == NXC_OK) {
            nxc_nats_free(json);
            return;
        }
        sleep_ms(50);
    }
    CHECK(0, "the cluster did not route '%s' within 5 s", subject);
}

static int test_cluster(void)
{
    start_cluster();
    /* the responder and the receiver on server 0, the others on server 1 */
    nxc_nats_t *passive = connect_list(0), *active = connect_list(1);
    const char *answer = "{\"metadata\":\"of a readable op\"}";
    nxc_nats_server_t *srv = NULL;
    CHECK(nxc_nats_serve(passive, "kv.serve", answer, strlen(answer), &srv) == NXC_OK, "serve");
    receiver_t r = { 0 };
    CHECK(nxc_nats_subscribe(passive, "kv.recv", &r.in) == NXC_OK, "subscribe");
    wait_routed(active, "kv.serve");
    pthread_t th;
    CHECK(pthread_create(&th, NULL, receive_loop, &r) == 0, "thread");

    int ok_req_after = 0, ok_send_after = 0, sent_ok = 0, codes[2][4] = { { 0 } };
    double worst = 0;
    pthread_t killer;
    CHECK(pthread_create(&killer, NULL, kill_later, NULL) == 0, "thread");
    /* Go on for a second after the kill, and until a request and a send
     * have both succeeded after it (a round that began before the kill and
     * timed out across it does not count), for at most 20 s. */
    for (int i = 0; i < ROUNDS || !atomic_load(&g_killed) ||
                    now_ms() < atomic_load(&g_killed_at) + 1000 ||
                    ((ok_req_after == 0 || ok_send_after == 0) &&
                     now_ms() < atomic_load(&g_killed_at) + 20000); i++) {
        bool after = atomic_load(&g_killed);
        char *json = NULL;
        double t0 = now_ms();
        int rq = nxc_nats_request(active, "kv.serve", CALL_MS, &json, NULL);
        double t1 = now_ms();
        CHECK(clear_code(rq), "request %d: %d (%s)", i, rq, nxc_nats_strerror(rq));
        if (rq == NXC_OK) {
            CHECK(strcmp(json, answer) == 0, "request %d: answer '%s'", i, json);
            nxc_nats_free(json);
        }
        char msg[64];
        int len = snprintf(msg, sizeof msg, "{\"send\":%d}", i);
        int sd = nxc_nats_send(active, "kv.recv", msg, (size_t)len, CALL_MS);
        double t2 = now_ms();
        CHECK(clear_code(sd), "send %d: %d (%s)", i, sd, nxc_nats_strerror(sd));
        CHECK(t1 - t0 < CALL_MS + MARGIN_MS && t2 - t1 < CALL_MS + MARGIN_MS,
              "round %d: a call hung (%.0f and %.0f ms)", i, t1 - t0, t2 - t1);
        worst = t1 - t0 > worst ? t1 - t0 : worst;
        worst = t2 - t1 > worst ? t2 - t1 : worst;
        codes[0][rq == NXC_OK ? 0 : rq == NXC_ERR_TIMED_OUT ? 1 : 2]++;
        codes[1][sd == NXC_OK ? 0 : sd == NXC_ERR_TIMED_OUT ? 1 : 2]++;
        sent_ok += sd == NXC_OK;
        if (after) {
            ok_req_after += rq == NXC_OK;
            ok_send_after += sd == NXC_OK;
        }
    }
    pthread_join(killer, NULL);
    atomic_store(&r.stop, true);
    pthread_join(th, NULL);
    printf("  requests: %d ok, %d timed out, %d no responders; sends: %d ok, %d timed out, "
           "%d no responders; slowest call %.0f ms; receiver took %d\n", codes[0][0],
           codes[0][1], codes[0][2], codes[1][0], codes[1][1], codes[1][2], worst,
           atomic_load(&r.taken));
    CHECK(ok_req_after > 0 && ok_send_after > 0, "nothing succeeded after the kill "
          "(%d requests, %d sends)", ok_req_after, ok_send_after);
    CHECK(atomic_load(&r.foreign) == 0, "the receiver got %d foreign messages",
          atomic_load(&r.foreign));
    /* an acknowledged send was taken; a timed-out one may have been too */
    CHECK(atomic_load(&r.taken) >= sent_ok, "%d sends acknowledged, %d taken", sent_ok,
          atomic_load(&r.taken));
    nxc_nats_unsubscribe(r.in);
    nxc_nats_server_stop(srv);
    nxc_nats_close(active);
    nxc_nats_close(passive);
    stop_all();
    printf("cluster: PASS\n");
    return 0;
}

/* ---- TLS ------------------------------------------------------------------ */

static char g_dir[64];

static void openssl(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && openssl %s >/dev/null 2>&1", g_dir, args);
    CHECK(system(cmd) == 0, "openssl %s", args);
}

static void make_certs(void)
{
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    char a[512];
    snprintf(a, sizeof a, "req -x509 %s -keyout ca.key -out ca.pem -days 1 -subj /CN=nxc-test-ca", ec);
    openssl(a);
    snprintf(a, sizeof a, "req %s -keyout server.key -out server.csr -subj /CN=127.0.0.1", ec);
    openssl(a);
    FILE *f;
    char path[128];
    snprintf(path, sizeof path, "%s/san.ext", g_dir);
    CHECK((f = fopen(path, "w")) != NULL, "san.ext");
    fputs("subjectAltName=IP:127.0.0.1,DNS:localhost\n", f);
    fclose(f);
    openssl("x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
            "-out server.pem -days 1 -extfile san.ext");
    snprintf(a, sizeof a, "req %s -keyout client.key -out client.csr -subj /CN=nxc-client", ec);
    openssl(a);
    openssl("x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
            "-out client.pem -days 1");
}

static int tls_connect(const char *url, bool client_cert, const char *ca, nxc_nats_t **n)
{
    char caf[128], cert[128], key[128];
    snprintf(caf, sizeof caf, "%s/%s", g_dir, ca);
    snprintf(cert, sizeof cert, "%s/client.pem", g_dir);
    snprintf(key, sizeof key, "%s/client.key", g_dir);
    nxc_nats_config_t cfg = { .field_mask = NXC_NATS_CONFIG_TLS | NXC_NATS_CONFIG_TIMEOUT,
                              .timeout_ms = 2000, .tls_ca_file = caf,
                              .tls_cert_file = client_cert ? cert : NULL,
                              .tls_key_file = client_cert ? key : NULL };
    return nxc_nats_connect(url, &cfg, n);
}

static int test_tls(void)
{
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        printf("SKIP: no openssl (apt-get install openssl)\n");
        return NATS_TEST_SKIP;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/nxc-nats-tls.XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
    make_certs();
    char conf[1024];
    snprintf(conf, sizeof conf,
             "tls {\n  cert_file: \"%s/server.pem\"\n  key_file: \"%s/server.key\"\n"
             "  ca_file: \"%s/ca.pem\"\n  verify: true\n  timeout: 2\n}\n", g_dir, g_dir, g_dir);
    nats_server_t s;
    CHECK(nats_server_start_conf(&s, conf) == 0, "TLS server did not start");

    nxc_nats_t *a = NULL, *b = NULL, *x = NULL;
    CHECK(tls_connect(s.url, true, "ca.pem", &a) == NXC_OK, "TLS connect with client cert");
    CHECK(tls_connect(s.url, true, "ca.pem", &b) == NXC_OK, "second TLS connect");
    nxc_nats_server_t *srv = NULL;
    CHECK(nxc_nats_serve(a, "tls.md", "{\"x\":1}", 7, &srv) == NXC_OK, "serve over TLS");
    char *json = NULL;
    CHECK(nxc_nats_request(b, "tls.md", 2000, &json, NULL) == NXC_OK, "request over TLS");
    CHECK(strcmp(json, "{\"x\":1}") == 0, "answer '%s'", json);
    nxc_nats_free(json);

    int rc = nxc_nats_connect(s.url, NULL, &x);
    CHECK(rc != NXC_OK, "a plain connection to a TLS server succeeded");
    printf("  without TLS: %s (%s)\n", nxc_nats_strerror(rc), nxc_nats_last_error());
    rc = tls_connect(s.url, false, "ca.pem", &x);
    CHECK(rc != NXC_OK, "TLS without the client certificate succeeded against verify: true");
    printf("  without client certificate: %s (%s)\n", nxc_nats_strerror(rc),
           nxc_nats_last_error());
    rc = tls_connect(s.url, true, "no-such-ca.pem", &x);
    CHECK(rc == NXC_ERR_INVALID_ARG && strstr(nxc_nats_last_error(), "no-such-ca.pem"),
          "missing CA file: %d", rc);
    nxc_nats_config_t half = { .field_mask = NXC_NATS_CONFIG_TLS, .tls_ca_file = "/dev/null",
                               .tls_cert_file = "/dev/null" };
    CHECK(nxc_nats_connect(s.url, &half, &x) == NXC_ERR_INVALID_ARG, "cert without key");
    nxc_nats_config_t none = { .field_mask = NXC_NATS_CONFIG_TLS };
    CHECK(nxc_nats_connect(s.url, &none, &x) == NXC_ERR_INVALID_ARG, "TLS without a CA");
    nxc_nats_config_t bad = { .field_mask = NXC_NATS_CONFIG_RECONNECT, .reconnect_ms = 0 };
    CHECK(nxc_nats_connect(s.url, &bad, &x) == NXC_ERR_INVALID_ARG, "reconnect_ms 0");

    nxc_nats_server_stop(srv);
    nxc_nats_close(a);
    nxc_nats_close(b);
    nats_server_stop(&s, SIGTERM);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    CHECK(system(cmd) == 0, "rm");
    printf("tls: PASS\n");
    return 0;
}

/* ---- credentials (decentralized JWT auth) ----------------------------------- */

static int creds_connect(const char *url, const char *file, nxc_nats_t **n)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", g_dir, file);
    nxc_nats_config_t cfg = { .field_mask = NXC_NATS_CONFIG_CREDS | NXC_NATS_CONFIG_TIMEOUT,
                              .timeout_ms = 2000, .creds_file = path };
    return nxc_nats_connect(url, &cfg, n);
}

static int test_creds(void)
{
    if (system("python3 -c 'import cryptography' >/dev/null 2>&1") != 0) {
        printf("SKIP: no python3-cryptography (apt-get install python3-cryptography)\n");
        return NATS_TEST_SKIP;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/nxc-nats-creds.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 '%s' '%s'", NXC_MAKE_CREDS, g_dir);
    CHECK(system(cmd) == 0, "%s", cmd);
    char conf[8192], path[160];
    snprintf(path, sizeof path, "%s/server.conf", g_dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "%s", path);
    size_t len = fread(conf, 1, sizeof conf - 1, f);
    fclose(f);
    CHECK(len > 0 && len < sizeof conf - 1, "%s: %zu bytes", path, len);
    conf[len] = '\0';
    nats_server_t s;
    CHECK(nats_server_start_conf(&s, conf) == 0, "JWT server did not start");

    nxc_nats_t *a = NULL, *b = NULL, *x = NULL;
    CHECK(creds_connect(s.url, "user.creds", &a) == NXC_OK, "connect with user.creds: %s",
          nxc_nats_last_error());
    CHECK(creds_connect(s.url, "user.creds", &b) == NXC_OK, "second connect");
    nxc_nats_server_t *srv = NULL;
    CHECK(nxc_nats_serve(a, "creds.md", "{\"x\":1}", 7, &srv) == NXC_OK, "serve");
    char *json = NULL;
    CHECK(nxc_nats_request(b, "creds.md", 2000, &json, NULL) == NXC_OK, "request");
    CHECK(strcmp(json, "{\"x\":1}") == 0, "answer '%s'", json);
    nxc_nats_free(json);

    int rc = nxc_nats_connect(s.url, NULL, &x);
    CHECK(rc == NXC_NATS_ERR_NATS && strstr(nxc_nats_last_error(), "refused this client"),
          "without credentials: %d (%s)", rc, nxc_nats_last_error());
    printf("  without credentials: %s (%s)\n", nxc_nats_strerror(rc), nxc_nats_last_error());
    rc = creds_connect(s.url, "stranger.creds", &x);
    CHECK(rc == NXC_NATS_ERR_NATS && strstr(nxc_nats_last_error(), "refused this client"),
          "a user of an account the server does not know: %d (%s)", rc,
          nxc_nats_last_error());
    rc = creds_connect(s.url, "no-such.creds", &x);
    CHECK(rc == NXC_ERR_INVALID_ARG && strstr(nxc_nats_last_error(), "no-such.creds"),
          "missing creds file: %d", rc);
    nxc_nats_config_t none = { .field_mask = NXC_NATS_CONFIG_CREDS };
    CHECK(nxc_nats_connect(s.url, &none, &x) == NXC_ERR_INVALID_ARG, "CREDS without a file");

    nxc_nats_server_stop(srv);
    nxc_nats_close(a);
    nxc_nats_close(b);
    nats_server_stop(&s, SIGTERM);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    CHECK(system(cmd) == 0, "rm");
    printf("creds: PASS\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (!nats_server_binary()) {
        printf("SKIP: nats-server not found\n");
        return NATS_TEST_SKIP;
    }
    signal(SIGPIPE, SIG_IGN);
    if (argc == 2 && strcmp(argv[1], "cluster") == 0)
        return test_cluster();
    if (argc == 2 && strcmp(argv[1], "tls") == 0)
        return test_tls();
    if (argc == 2 && strcmp(argv[1], "creds") == 0)
        return test_creds();
    fprintf(stderr, "usage: %s cluster|tls|creds\n", argv[0]);
    return 2;
}
