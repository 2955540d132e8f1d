/* The NATS exchange module against a real nats-server on loopback:
 * request/reply, publish/subscribe, the send/receive direction, the
 * wrappers over real operations, and every error path (bad arguments, no
 * server, no responder, timeout, oversize on each side, lost server).
 * Public headers only. Exits 77 (skipped) when nats-server is absent. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nixl_connect_nats.h"
#include "nats_server.h"

static nats_server_t g_server;   /* shared by the tests that need no special one */

#define HOST (nxc_device_t){ NXC_DEVICE_HOST, 0 }

static nxc_nats_t *connect_max(const char *url, size_t max)
{
    nxc_nats_config_t cfg = { .field_mask = NXC_NATS_CONFIG_MAX_MESSAGE,
                              .max_message = max };
    nxc_nats_t *n = NULL;
    int rc = nxc_nats_connect(url, max ? &cfg : NULL, &n);
    if (rc != NXC_OK)
        fail_msg("connect %s: %d %s", url, rc, nxc_nats_last_error());
    return n;
}

static nxc_nats_t *connect_default(void)
{
    return connect_max(g_server.url, 0);
}

/* The detail names what failed (a word that must appear in it). */
static void assert_detail(const char *word)
{
    if (!strstr(nxc_nats_last_error(), word))
        fail_msg("detail '%s' does not mention '%s'", nxc_nats_last_error(), word);
}

/* ---- connection --------------------------------------------------------------- */

static void test_connect_bad_args(void **state)
{
    (void)state;
    nxc_nats_t *n = (nxc_nats_t *)&n;   /* must stay untouched on failure */
    nxc_nats_config_t cfg = { .field_mask = NXC_NATS_CONFIG_TIMEOUT, .timeout_ms = 0 };
    assert_int_equal(nxc_nats_connect(NULL, NULL, &n), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_connect("", NULL, &n), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_connect(g_server.url, NULL, NULL), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_connect(g_server.url, &cfg, &n), NXC_ERR_INVALID_ARG);
    assert_detail("timeout_ms");
    cfg.field_mask = 1u << 7;
    assert_int_equal(nxc_nats_connect(g_server.url, &cfg, &n), NXC_ERR_INVALID_ARG);
    assert_detail("field_mask");
    assert_ptr_equal(n, (nxc_nats_t *)&n);
    nxc_nats_close(NULL);
    assert_int_equal(nxc_nats_max_message(NULL), 0);
}

static void test_no_server(void **state)
{
    (void)state;
    char url[64];
    nxc_nats_t *n = NULL;
    nxc_nats_config_t cfg = { .field_mask = NXC_NATS_CONFIG_TIMEOUT, .timeout_ms = 500 };
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", nats_free_port());
    assert_int_equal(nxc_nats_connect(url, &cfg, &n), NXC_NATS_ERR_NO_SERVER);
    assert_null(n);
    assert_detail(url);
    /* Something listens but never speaks NATS: the connect times out. */
    int port = 0, fd = nats_silent_listener(&port);
    assert_true(fd >= 0);
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    assert_int_equal(nxc_nats_connect(url, &cfg, &n), NXC_NATS_ERR_NO_SERVER);
    assert_null(n);
    close(fd);
    assert_string_not_equal(nxc_nats_strerror(NXC_NATS_ERR_NO_SERVER),
                            nxc_strerror(NXC_NATS_ERR_NO_SERVER));
}

static void test_url_forms_and_limit(void **state)
{
    (void)state;
    char url[64];
    nxc_nats_t *n = NULL;
    snprintf(url, sizeof url, "127.0.0.1:%d", g_server.port);  /* no scheme */
    assert_int_equal(nxc_nats_connect(url, NULL, &n), NXC_OK);
    assert_int_equal(nxc_nats_max_message(n), 1024 * 1024);   /* server default */
    nxc_nats_close(n);
    n = connect_max(g_server.url, 100);
    assert_int_equal(nxc_nats_max_message(n), 100);
    nxc_nats_close(n);
    /* a list: the first URL refuses, the second is tried next */
    char list[160];
    snprintf(list, sizeof list, "nats://127.0.0.1:%d, %s", nats_free_port(), g_server.url);
    n = NULL;
    assert_int_equal(nxc_nats_connect(list, NULL, &n), NXC_OK);
    nxc_nats_close(n);
    assert_int_equal(nxc_nats_connect(" , ", NULL, &n), NXC_ERR_INVALID_ARG);
}

/* ---- request/reply ------------------------------------------------------------ */

static void test_request_reply(void **state)
{
    (void)state;
    nxc_nats_t *p = connect_default(), *a = connect_default();
    nxc_nats_server_t *srv = NULL;
    char text[] = "{\"metadata\":\"one\"}";
    char *got = NULL;
    size_t len = 0;
    assert_int_equal(nxc_nats_serve(p, "t.rr", text, strlen(text), &srv), NXC_OK);
    memset(text, 'x', strlen(text));        /* the server keeps its own copy */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(nxc_nats_request(a, "t.rr", 5000, &got, &len), NXC_OK);
        assert_int_equal(len, strlen("{\"metadata\":\"one\"}"));
        assert_string_equal(got, "{\"metadata\":\"one\"}");
        nxc_nats_free(got);
    }
    assert_int_equal(nxc_nats_server_answered(srv), 3);
    /* a plain publish on the subject is not a request: not answered */
    assert_int_equal(nxc_nats_publish(a, "t.rr", "x", 1), NXC_OK);
    assert_int_equal(nxc_nats_request(a, "t.rr", 5000, &got, NULL), NXC_OK);
    nxc_nats_free(got);
    assert_int_equal(nxc_nats_server_answered(srv), 4);
    nxc_nats_server_stop(srv);
    assert_int_equal(nxc_nats_request(a, "t.rr", 5000, &got, &len), NXC_NATS_ERR_NO_RESPONDERS);
    assert_detail("t.rr");
    nxc_nats_server_stop(NULL);
    assert_int_equal(nxc_nats_server_answered(NULL), 0);
    nxc_nats_close(a);
    nxc_nats_close(p);
}

static void test_no_responders(void **state)
{
    (void)state;
    nxc_nats_t *a = connect_default();
    char *got = (char *)&got;
    assert_int_equal(nxc_nats_request(a, "t.nobody", 5000, &got, NULL),
                     NXC_NATS_ERR_NO_RESPONDERS);
    assert_ptr_equal(got, (char *)&got);
    assert_int_equal(nxc_nats_send(a, "t.nobody", "x", 1, 5000), NXC_NATS_ERR_NO_RESPONDERS);
    assert_detail("t.nobody");
    nxc_nats_close(a);
}

/* Someone is subscribed but never answers: the request and the send time
 * out (and the caller may try again). */
static void test_timeout(void **state)
{
    (void)state;
    nxc_nats_t *a = connect_default(), *b = connect_default();
    nxc_nats_inbox_t *mute = NULL;
    char *got = NULL;
    assert_int_equal(nxc_nats_subscribe(b, "t.mute", &mute), NXC_OK);
    assert_int_equal(nxc_nats_request(a, "t.mute", 200, &got, NULL), NXC_ERR_TIMED_OUT);
    assert_detail("t.mute");
    assert_int_equal(nxc_nats_send(a, "t.mute", "x", 1, 200), NXC_ERR_TIMED_OUT);
    assert_int_equal(nxc_nats_request(a, "t.mute", 0, &got, NULL), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_send(a, "t.mute", "x", 1, -1), NXC_ERR_INVALID_ARG);
    /* an empty inbox times out too */
    nxc_nats_inbox_t *empty = NULL;
    assert_int_equal(nxc_nats_subscribe(b, "t.empty", &empty), NXC_OK);
    assert_int_equal(nxc_nats_next(empty, 0, &got, NULL), NXC_ERR_TIMED_OUT);
    assert_int_equal(nxc_nats_next(empty, 100, &got, NULL), NXC_ERR_TIMED_OUT);
    assert_int_equal(nxc_nats_next(empty, -2, &got, NULL), NXC_ERR_INVALID_ARG);
    nxc_nats_unsubscribe(empty);
    nxc_nats_unsubscribe(mute);
    nxc_nats_close(a);
    nxc_nats_close(b);
}

/* ---- publish / subscribe / send ----------------------------------------------- */

static void test_publish_subscribe(void **state)
{
    (void)state;
    nxc_nats_t *p = connect_default(), *r = connect_default();
    nxc_nats_inbox_t *in1 = NULL, *in2 = NULL;
    char *got = NULL;
    size_t len = 0;
    assert_int_equal(nxc_nats_subscribe(r, "t.pub", &in1), NXC_OK);
    assert_int_equal(nxc_nats_subscribe(r, "t.*", &in2), NXC_OK);  /* wildcard */
    assert_int_equal(nxc_nats_publish(p, "t.pub", "first", 5), NXC_OK);
    assert_int_equal(nxc_nats_publish(p, "t.pub", "second", 6), NXC_OK);
    assert_int_equal(nxc_nats_next(in1, 5000, &got, &len), NXC_OK);
    assert_string_equal(got, "first");
    assert_int_equal(len, 5);
    nxc_nats_free(got);
    assert_int_equal(nxc_nats_next(in1, -1, &got, &len), NXC_OK);
    assert_string_equal(got, "second");
    nxc_nats_free(got);
    for (int i = 0; i < 2; i++) {      /* the wildcard inbox got both too */
        assert_int_equal(nxc_nats_next(in2, 5000, &got, NULL), NXC_OK);
        nxc_nats_free(got);
    }
    assert_int_equal(nxc_nats_next(in1, 0, &got, NULL), NXC_ERR_TIMED_OUT);
    nxc_nats_unsubscribe(in1);
    nxc_nats_unsubscribe(in2);
    nxc_nats_unsubscribe(NULL);
    nxc_nats_free(NULL);
    nxc_nats_close(p);
    nxc_nats_close(r);
}

typedef struct receiver {
    nxc_nats_inbox_t *in;
    int               timeout_ms;
    int               rc;
    char             *got;
} receiver_t;

static void *receive_one(void *arg)
{
    receiver_t *r = arg;
    r->rc = nxc_nats_next(r->in, r->timeout_ms, &r->got, NULL);
    return NULL;
}

/* Dynamo's direction: the passive side sends its metadata to the worker's
 * subject; send returns only once the receiver took it. */
static void test_send_receive(void **state)
{
    (void)state;
    nxc_nats_t *p = connect_default(), *w = connect_default();
    receiver_t r = { .timeout_ms = 10000 };
    pthread_t t;
    assert_int_equal(nxc_nats_subscribe(w, "worker.w1", &r.in), NXC_OK);
    assert_int_equal(pthread_create(&t, NULL, receive_one, &r), 0);
    assert_int_equal(nxc_nats_send(p, "worker.w1", "{\"k\":1}", 7, 10000), NXC_OK);
    pthread_join(t, NULL);
    assert_int_equal(r.rc, NXC_OK);
    assert_string_equal(r.got, "{\"k\":1}");
    nxc_nats_free(r.got);
    /* A message sent before the receiver asks is queued, not lost: the
     * sender waits until next() takes it. */
    r.got = NULL;
    assert_int_equal(pthread_create(&t, NULL, receive_one, &r), 0);
    assert_int_equal(nxc_nats_send(p, "worker.w1", "second", 6, 10000), NXC_OK);
    pthread_join(t, NULL);
    assert_string_equal(r.got, "second");
    nxc_nats_free(r.got);
    nxc_nats_unsubscribe(r.in);
    /* A server on the subject answers with text, not an acknowledgment. */
    nxc_nats_server_t *srv = NULL;
    assert_int_equal(nxc_nats_serve(w, "worker.w2", "md", 2, &srv), NXC_OK);
    assert_int_equal(nxc_nats_send(p, "worker.w2", "x", 1, 5000), NXC_NATS_ERR_NATS);
    assert_detail("unexpected answer");
    nxc_nats_server_stop(srv);
    nxc_nats_close(p);
    nxc_nats_close(w);
}

/* ---- size limits -------------------------------------------------------------- */

static void test_oversize_local_limit(void **state)
{
    (void)state;
    char big[101];
    char *got = NULL;
    nxc_nats_server_t *srv = NULL;
    memset(big, 'm', sizeof big);
    nxc_nats_t *n = connect_max(g_server.url, 100);
    assert_int_equal(nxc_nats_publish(n, "t.big", big, 101), NXC_NATS_ERR_TOO_LARGE);
    assert_detail("101 bytes");
    assert_int_equal(nxc_nats_serve(n, "t.big", big, 101, &srv), NXC_NATS_ERR_TOO_LARGE);
    assert_null(srv);
    assert_int_equal(nxc_nats_send(n, "t.big", big, 101, 1000), NXC_NATS_ERR_TOO_LARGE);
    assert_int_equal(nxc_nats_publish(n, "t.big", big, 100), NXC_OK);  /* at the limit */
    /* answers above this connection's limit are refused on arrival */
    nxc_nats_t *big_side = connect_default();
    assert_int_equal(nxc_nats_serve(big_side, "t.big.served", big, 101, &srv), NXC_OK);
    assert_int_equal(nxc_nats_request(n, "t.big.served", 5000, &got, NULL),
                     NXC_NATS_ERR_TOO_LARGE);
    assert_null(got);
    nxc_nats_server_stop(srv);
    nxc_nats_close(big_side);
    nxc_nats_close(n);
}

/* The receiver's limit: the message is dropped, next() says so, and the
 * sender learns it was refused (not a timeout). */
static void test_oversize_refused_by_receiver(void **state)
{
    (void)state;
    char big[200];
    memset(big, 'r', sizeof big);
    nxc_nats_t *p = connect_default(), *w = connect_max(g_server.url, 100);
    receiver_t r = { .timeout_ms = 10000 };
    pthread_t t;
    assert_int_equal(nxc_nats_subscribe(w, "worker.small", &r.in), NXC_OK);
    assert_int_equal(pthread_create(&t, NULL, receive_one, &r), 0);
    assert_int_equal(nxc_nats_send(p, "worker.small", big, sizeof big, 10000),
                     NXC_NATS_ERR_TOO_LARGE);
    assert_detail("refused");
    pthread_join(t, NULL);
    assert_int_equal(r.rc, NXC_NATS_ERR_TOO_LARGE);
    assert_null(r.got);
    nxc_nats_unsubscribe(r.in);
    nxc_nats_close(p);
    nxc_nats_close(w);
}

/* The server's max_payload is the limit when the caller sets none. */
static void test_oversize_server_limit(void **state)
{
    (void)state;
    nats_server_t small;
    static char big[4097];
    memset(big, 's', sizeof big);
    assert_int_equal(nats_server_start(&small, 4096), 0);
    nxc_nats_t *n = connect_max(small.url, 0);
    assert_int_equal(nxc_nats_max_message(n), 4096);
    assert_int_equal(nxc_nats_publish(n, "t.srv", big, 4097), NXC_NATS_ERR_TOO_LARGE);
    assert_detail("max_payload");
    assert_int_equal(nxc_nats_publish(n, "t.srv", big, 4096), NXC_OK);
    /* a caller limit above the server's does not raise it */
    nxc_nats_close(n);
    n = connect_max(small.url, 1 << 20);
    assert_int_equal(nxc_nats_max_message(n), 4096);
    nxc_nats_close(n);
    nats_server_stop(&small, SIGTERM);
}

/* ---- arguments ---------------------------------------------------------------- */

static void test_bad_subjects_and_args(void **state)
{
    (void)state;
    static const char *bad[] = { "", "a..b", ".a", "a.", "a b", "a\tb", "a*",
                                 "a.>.b", "x>" };
    nxc_nats_t *n = connect_default();
    nxc_nats_inbox_t *in = NULL;
    nxc_nats_server_t *srv = NULL;
    char *got = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(nxc_nats_publish(n, bad[i], "x", 1), NXC_ERR_INVALID_ARG);
        assert_int_equal(nxc_nats_subscribe(n, bad[i], &in), NXC_ERR_INVALID_ARG);
    }
    /* wildcards: fine to listen on, not to send to */
    assert_int_equal(nxc_nats_publish(n, "a.*", "x", 1), NXC_ERR_INVALID_ARG);
    assert_detail("wildcard");
    assert_int_equal(nxc_nats_request(n, "a.>", 100, &got, NULL), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_serve(n, "a.*", "x", 1, &srv), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_subscribe(n, "a.>", &in), NXC_OK);
    nxc_nats_unsubscribe(in);
    assert_int_equal(nxc_nats_publish(n, NULL, "x", 1), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_publish(n, "t.ok", NULL, 1), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_publish(n, "t.ok", "x", 0), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_publish(NULL, "t.ok", "x", 1), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_serve(n, "t.ok", "x", 1, NULL), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_request(n, "t.ok", 100, NULL, NULL), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_subscribe(n, "t.ok", NULL), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_next(NULL, 0, &got, NULL), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_serve_op(n, "t.ok", NULL, &srv), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_nats_send_op(n, "t.ok", NULL, 100), NXC_ERR_INVALID_ARG);
    assert_null(srv);
    nxc_nats_close(n);
}

static void test_strerror(void **state)
{
    (void)state;
    const int codes[] = { NXC_NATS_ERR_NO_SERVER, NXC_NATS_ERR_NO_RESPONDERS,
                          NXC_NATS_ERR_TOO_LARGE, NXC_NATS_ERR_CLOSED, NXC_NATS_ERR_NATS };
    for (size_t i = 0; i < 5; i++) {
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(nxc_nats_strerror(codes[i]), nxc_nats_strerror(codes[j]));
        assert_true(strstr(nxc_nats_strerror(codes[i]), "NATS") ||
                    strstr(nxc_nats_strerror(codes[i]), "subject"));
    }
    assert_string_equal(nxc_nats_strerror(NXC_ERR_INVALID_ARG), nxc_strerror(NXC_ERR_INVALID_ARG));
    assert_non_null(strstr(nxc_nats_strerror(NXC_ERR_TIMED_OUT), "NATS"));
    assert_string_equal(nxc_nats_strerror(12345), nxc_strerror(12345));
}

/* ---- a lost server ------------------------------------------------------------ */

/* After the server dies every call fails with CLOSED, at once, and the
 * handles still close cleanly. */
static void test_server_lost(void **state)
{
    (void)state;
    nats_server_t own;
    nxc_nats_server_t *srv = NULL;
    nxc_nats_inbox_t *in = NULL;
    char *got = NULL;
    assert_int_equal(nats_server_start(&own, 0), 0);
    nxc_nats_t *n = connect_max(own.url, 0);
    assert_int_equal(nxc_nats_serve(n, "t.lost", "md", 2, &srv), NXC_OK);
    assert_int_equal(nxc_nats_subscribe(n, "t.lost.in", &in), NXC_OK);
    nats_server_stop(&own, SIGKILL);
    /* the client notices the closed socket on its own thread: allow it a
     * moment, bounded (the test fails rather than hangs) */
    int rc = NXC_OK;
    for (int i = 0; i < 500 && rc != NXC_NATS_ERR_CLOSED; i++) {
        rc = nxc_nats_publish(n, "t.lost", "x", 1);
        if (rc != NXC_NATS_ERR_CLOSED)
            usleep(10000);
    }
    assert_int_equal(rc, NXC_NATS_ERR_CLOSED);
    assert_int_equal(nxc_nats_request(n, "t.lost", 1000, &got, NULL), NXC_NATS_ERR_CLOSED);
    assert_int_equal(nxc_nats_send(n, "t.lost", "x", 1, 1000), NXC_NATS_ERR_CLOSED);
    assert_int_equal(nxc_nats_next(in, 1000, &got, NULL), NXC_NATS_ERR_CLOSED);
    assert_int_equal(nxc_nats_subscribe(n, "t.again", &in), NXC_NATS_ERR_CLOSED);
    nxc_nats_server_t *srv2 = NULL;
    assert_int_equal(nxc_nats_serve(n, "t.again", "md", 2, &srv2), NXC_NATS_ERR_CLOSED);
    assert_null(srv2);
    nxc_nats_server_stop(srv);
    nxc_nats_close(n);                   /* frees the inbox left open */
}

/* close() stops servers and inboxes left open (no leak under ASan). */
static void test_close_with_open_handles(void **state)
{
    (void)state;
    nxc_nats_t *n = connect_default();
    nxc_nats_server_t *srv = NULL;
    nxc_nats_inbox_t *in = NULL;
    assert_int_equal(nxc_nats_serve(n, "t.open.a", "md", 2, &srv), NXC_OK);
    assert_int_equal(nxc_nats_serve(n, "t.open.b", "md", 2, &srv), NXC_OK);
    assert_int_equal(nxc_nats_subscribe(n, "t.open.c", &in), NXC_OK);
    nxc_nats_close(n);
}

/* ---- the wrappers over real operations ---------------------------------------- */

/* A readable op served, its metadata requested and read; a writable op
 * sent, received and written: whole transfers with NATS as the channel. */
static void test_ops_over_nats(void **state)
{
    (void)state;
    nxc_connector_config_t pcfg = { .field_mask = NXC_CONFIG_PROGRESS_THREAD,
                                    .progress_thread = 1 };
    nxc_connector_t *pc = NULL, *ac = NULL;
    nxc_nats_t *p = connect_default(), *a = connect_default();
    char src[4096], dst[4096];
    memset(src, 0x5a, sizeof src);
    memset(dst, 0, sizeof dst);
    assert_int_equal(nxc_connector_create(&pcfg, &pc), NXC_OK);
    assert_int_equal(nxc_connector_create(NULL, &ac), NXC_OK);
    nxc_descriptor_t s = { src, sizeof src, HOST }, d = { dst, sizeof dst, HOST };

    /* read: serve_op / request */
    nxc_op_t *readable = NULL, *read = NULL;
    nxc_nats_server_t *srv = NULL;
    nxc_metadata_t *md = NULL;
    char *json = NULL;
    size_t len = 0;
    assert_int_equal(nxc_create_readable(pc, &s, 1, &readable), NXC_OK);
    assert_int_equal(nxc_nats_serve_op(p, "t.op.read", readable, &srv), NXC_OK);
    assert_int_equal(nxc_nats_request(a, "t.op.read", 5000, &json, &len), NXC_OK);
    assert_int_equal(nxc_metadata_parse(json, len, &md), NXC_OK);
    nxc_nats_free(json);
    assert_int_equal(nxc_begin_read(ac, md, &d, 1, &read), NXC_OK);
    assert_int_equal(nxc_op_wait(read, 10000), NXC_OK);
    assert_int_equal(nxc_op_wait(readable, 10000), NXC_OK);
    assert_memory_equal(src, dst, sizeof src);
    /* an active op has no metadata to serve or send */
    nxc_nats_server_t *none = NULL;
    assert_int_equal(nxc_nats_serve_op(p, "t.op.x", read, &none), NXC_ERR_STATE);
    assert_int_equal(nxc_nats_send_op(p, "t.op.x", read, 100), NXC_ERR_STATE);
    nxc_nats_server_stop(srv);
    nxc_op_release(read);
    nxc_op_release(readable);
    nxc_metadata_free(md);

    /* write: send_op / subscribe + next */
    nxc_op_t *writable = NULL, *write = NULL;
    receiver_t r = { .timeout_ms = 10000 };
    pthread_t t;
    memset(src, 0x3c, sizeof src);
    assert_int_equal(nxc_nats_subscribe(a, "worker.active", &r.in), NXC_OK);
    assert_int_equal(pthread_create(&t, NULL, receive_one, &r), 0);
    assert_int_equal(nxc_create_writable(pc, &d, 1, &writable), NXC_OK);
    assert_int_equal(nxc_nats_send_op(p, "worker.active", writable, 10000), NXC_OK);
    pthread_join(t, NULL);
    assert_int_equal(r.rc, NXC_OK);
    assert_int_equal(nxc_metadata_parse(r.got, strlen(r.got), &md), NXC_OK);
    nxc_nats_free(r.got);
    assert_int_equal(nxc_begin_write(ac, &s, 1, md, &write), NXC_OK);
    assert_int_equal(nxc_op_wait(write, 10000), NXC_OK);
    assert_int_equal(nxc_op_wait(writable, 10000), NXC_OK);
    assert_memory_equal(src, dst, sizeof src);
    nxc_op_release(write);
    nxc_op_release(writable);
    nxc_metadata_free(md);
    nxc_nats_unsubscribe(r.in);

    nxc_nats_close(a);
    nxc_nats_close(p);
    nxc_connector_destroy(ac);
    nxc_connector_destroy(pc);
}

static int group_setup(void **state)
{
    (void)state;
    return nats_server_start(&g_server, 0);
}

static int group_teardown(void **state)
{
    (void)state;
    nats_server_stop(&g_server, SIGTERM);
    return 0;
}

int main(void)
{
    if (!nats_server_binary()) {
        printf("SKIP: nats-server not found (PATH, /usr/sbin, /usr/bin or "
               "$NXC_NATS_SERVER); install it with: apt-get install nats-server\n");
        return NATS_TEST_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_bad_args),
        cmocka_unit_test(test_no_server),
        cmocka_unit_test(test_url_forms_and_limit),
        cmocka_unit_test(test_request_reply),
        cmocka_unit_test(test_no_responders),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_publish_subscribe),
        cmocka_unit_test(test_send_receive),
        cmocka_unit_test(test_oversize_local_limit),
        cmocka_unit_test(test_oversize_refused_by_receiver),
        cmocka_unit_test(test_oversize_server_limit),
        cmocka_unit_test(test_bad_subjects_and_args),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_server_lost),
        cmocka_unit_test(test_close_with_open_handles),
        cmocka_unit_test(test_ops_over_nats),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
