/*
 * e2e_eventfd — embedding the connector in an event loop, no nxc_op_wait().
 *
 * nxc_connector_fd() returns an fd >= 0 (the same one every time) and
 * NXC_ERR_INVALID_ARG for NULL. With a peer process:
 *  - passive side: we expose a writable op, tell the peer to write into it
 *    and only then enter the loop "progress; status; poll(fd)" (the loop of
 *    the header) watching nothing but the connector fd; it must reach
 *    COMPLETE, with every poll woken by the fd (a 5 s poll timeout fails).
 *  - active side: the same loop drives our reads and writes to COMPLETE.
 *  - idle: with nothing to do, the armed fd stays quiet (a loop over it does
 *    not spin: at most 10 wake-ups in 300 ms).
 *  - many small writes: 200 writes of 8 bytes into the peer, one after the
 *    other, each driven by the same loop with nothing but the fd to wake
 *    it (no nxc_connector_timeout_ms): every poll must be woken by the fd.
 *    A wake-up eventfd that nxc_op_status drained after progress had found
 *    the worker busy once left this loop asleep on an unarmed worker (4 of
 *    10 runs of the reproducer).
 */
#include "e2e_common.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

static int g_loops, g_timeouts;

static void event_loop(nxc_connector_t *c, nxc_op_t *op, const char *what)
{
    struct pollfd pfd = { .fd = nxc_connector_fd(c), .events = POLLIN };
    double deadline = e2e_now_ms() + 60000;
    for (;;) {
        int pr = nxc_connector_progress(c);
        CHECK(pr >= 0, "%s: progress returned %d", what, pr);
        nxc_op_status_t st = nxc_op_status(op);
        if (e2e_is_final(st)) {
            CHECK(st == NXC_OP_COMPLETE, "%s: ended %s (%s)", what, nxc_op_status_name(st),
                  nxc_strerror(nxc_op_error(op, NULL)));
            return;
        }
        /* the documented loop: sleep on the fd for at most the timeout the
         * connector asks for (-1: no limit; then 5 s means lost) */
        int limit = nxc_connector_timeout_ms(c);
        CHECK(limit >= -1, "%s: nxc_connector_timeout_ms returned %d", what, limit);
        int r = poll(&pfd, 1, limit < 0 ? 5000 : limit);
        CHECK(r != 0 || limit >= 0, "%s: connector fd not readable for 5 s while the op is %s",
              what, nxc_op_status_name(st));
        if (r == 0) g_timeouts++;
        CHECK(r >= 0 || errno == EINTR, "%s: poll failed", what);
        CHECK(e2e_now_ms() < deadline, "%s: no completion in 60 s", what);
        g_loops++;
    }
}

#define SMALL_WRITES 200

static void many_small_writes(nxc_connector_t *A, e2e_peer_t *peer)
{
    size_t size = 8;
    int ids[SMALL_WRITES];
    nxc_metadata_t *mds[SMALL_WRITES];
    for (int i = 0; i < SMALL_WRITES; i++) {
        char *json;
        ids[i] = e2e_peer_passive(peer, A, NXC_OP_WRITE, 500u + (uint32_t)i, 1, &size, &json);
        mds[i] = e2e_parse(json);
        free(json);
    }
    struct pollfd pfd = { .fd = nxc_connector_fd(A), .events = POLLIN };
    int polls = 0;
    for (int i = 0; i < SMALL_WRITES; i++) {
        e2e_bufs_t b;
        e2e_bufs_alloc(&b, 500u + (uint32_t)i, 1, &size);
        e2e_bufs_fill(&b, 0);
        nxc_op_t *a = NULL;
        CHECK_RC(nxc_begin_write(A, b.d, 1, mds[i], &a), NXC_OK);
        for (;;) {
            nxc_connector_progress(A);
            nxc_op_status_t st = nxc_op_status(a);
            if (e2e_is_final(st)) {
                CHECK(st == NXC_OP_COMPLETE, "small write %d ended %s", i, nxc_op_status_name(st));
                break;
            }
            int r = poll(&pfd, 1, 3000);
            CHECK(r != 0, "small write %d: the connector fd stayed quiet for 3 s while the op "
                  "was %s (a lost wake-up)", i, nxc_op_status_name(st));
            polls++;
        }
        nxc_op_release(a);
        nxc_metadata_free(mds[i]);
        e2e_bufs_free(&b);
    }
    for (int i = 0; i < SMALL_WRITES; i++) {
        e2e_peer_res_t r;
        e2e_peer_wait(peer, A, ids[i], 30000, &r);
        CHECK(r.rc == 0 && r.verify == 0, "peer op %d: rc %d verify %d", i, r.rc, r.verify);
        e2e_peer_release(peer, A, ids[i]);
    }
    fprintf(stderr, "  %d small writes, %d polls, all woken by the fd\n", SMALL_WRITES, polls);
}

static void idle_check(nxc_connector_t *c)
{
    struct pollfd pfd = { .fd = nxc_connector_fd(c), .events = POLLIN };
    /* drain whatever is pending first */
    for (int i = 0; i < 100 && nxc_connector_progress(c) > 0; i++) {
    }
    CHECK(nxc_connector_timeout_ms(c) == -1,
          "an idle connector asks to be woken after %d ms (busy loop)", nxc_connector_timeout_ms(c));
    double end = e2e_now_ms() + 300;
    int wakeups = 0;
    for (;;) {
        nxc_connector_progress(c);
        double left = end - e2e_now_ms();
        if (left <= 0) break;
        if (poll(&pfd, 1, (int)left + 1) > 0) wakeups++;
    }
    CHECK(wakeups <= 10, "idle connector fd woke %d times in 300 ms (busy loop)", wakeups);
}

int main(void)
{
    e2e_init("e2e_eventfd", 110);
    nxc_connector_t *A = e2e_connector("e2e-eventfd");
    int fd = nxc_connector_fd(A);
    CHECK(fd >= 0, "nxc_connector_fd = %d", fd);
    CHECK(nxc_connector_fd(A) == fd, "fd changed between calls");
    CHECK_RC(nxc_connector_fd(NULL), NXC_ERR_INVALID_ARG);
    e2e_peer_t peer;
    e2e_peer_start(&peer);
    idle_check(A);

    size_t sizes[3] = { 1 * MiB + 3, 4 * KiB, 1 };
    for (int round = 0; round < 3; round++) {
        uint32_t seed = 70u + (uint32_t)round;
        /* passive: the peer writes into us while we sit in poll() */
        e2e_bufs_t b;
        e2e_bufs_alloc(&b, seed, 3, sizes);
        e2e_bufs_fill(&b, E2E_INIT_XOR);
        nxc_op_t *p = NULL;
        CHECK_RC(nxc_create_writable(A, b.d, 3, &p), NXC_OK);
        const char *json = e2e_op_metadata(p);
        /* send the command without waiting for the reply: the data must be
         * pulled in by our event loop alone */
        char head[128];
        snprintf(head, sizeof head, "ACTIVE W %u 3 %zu %zu %zu\n", seed, sizes[0], sizes[1],
                 sizes[2]);
        e2e_peer_send_raw(&peer, head, strlen(head));
        e2e_peer_send(&peer, "%s", json);
        event_loop(A, p, "passive writable");
        CHECK(e2e_bufs_verify(&b, 0, NULL, NULL) == 0, "passive: data wrong");
        char *l = e2e_peer_readline(&peer, A, 30000);
        int id = -1;
        CHECK(sscanf(l, "OK %d", &id) == 1, "peer: %s", l);
        e2e_peer_res_t r;
        e2e_peer_wait(&peer, A, id, 30000, &r);
        CHECK(r.rc == 0 && r.verify == 0, "peer rc %d verify %d", r.rc, r.verify);
        e2e_peer_release(&peer, A, id);
        nxc_op_release(p);

        /* active: read then write, driven by the loop */
        for (int k = 0; k < 2; k++) {
            nxc_op_kind_t kind = k ? NXC_OP_WRITE : NXC_OP_READ;
            char *js;
            id = e2e_peer_passive(&peer, A, kind, seed, 3, sizes, &js);
            nxc_metadata_t *md = e2e_parse(js);
            free(js);
            e2e_bufs_fill(&b, kind == NXC_OP_READ ? E2E_INIT_XOR : 0);
            nxc_op_t *a = NULL;
            if (kind == NXC_OP_READ)
                CHECK_RC(nxc_begin_read(A, md, b.d, 3, &a), NXC_OK);
            else
                CHECK_RC(nxc_begin_write(A, b.d, 3, md, &a), NXC_OK);
            nxc_metadata_free(md);
            event_loop(A, a, kind == NXC_OP_READ ? "active read" : "active write");
            CHECK(e2e_bufs_verify(&b, 0, NULL, NULL) == 0, "active: data wrong");
            e2e_peer_wait(&peer, A, id, 30000, &r);
            CHECK(r.rc == 0 && r.verify == 0, "peer rc %d verify %d", r.rc, r.verify);
            e2e_peer_release(&peer, A, id);
            nxc_op_release(a);
        }
        e2e_bufs_free(&b);
    }
    idle_check(A);
    many_small_writes(A, &peer);

    e2e_peer_stop(&peer);
    e2e_peer_close(&peer);
    nxc_connector_destroy(A);
    return e2e_pass("9 transfers completed by poll(fd) + progress + status, %d wake-ups "
                    "(%d of them the connector's timeout)", g_loops, g_timeouts);
}
