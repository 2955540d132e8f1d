/* An event loop drives two connectors with poll(): no thread of the library,
 * no blocking call. Two connectors in one process stand in for two workers,
 * as in write_pair.c; a real program watches its one connector's fd next to
 * its sockets. The passive side exposes a buffer, the active side reads it,
 * and the loop sleeps on both fds until both ops are final. */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "nixl_connect.h"

#define CHECK(call)                                                            \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != NXC_OK) {                                                   \
            fprintf(stderr, "%s: %s (%s)\n", #call, nxc_err_name(rc_),         \
                    nxc_last_error());                                         \
            return 1;                                                          \
        }                                                                      \
    } while (0)

static int is_final(nxc_op_t *op)
{
    return nxc_op_status(op) >= NXC_OP_COMPLETE;
}

/* Drive both connectors, then sleep on both fds at most as long as they
 * allow (nxc_connector_timeout_ms): progress re-armed them, so no wake-up
 * is lost between the check and poll(). */
static int run_loop(nxc_connector_t *c[2], nxc_op_t *op[2])
{
    int wakeups = 0;
    for (;;) {
        for (int i = 0; i < 2; i++)
            nxc_connector_progress(c[i]);
        if (is_final(op[0]) && is_final(op[1]))
            return wakeups;
        struct pollfd p[2] = { { .fd = nxc_connector_fd(c[0]), .events = POLLIN },
                               { .fd = nxc_connector_fd(c[1]), .events = POLLIN } };
        int t0 = nxc_connector_timeout_ms(c[0]), t1 = nxc_connector_timeout_ms(c[1]);
        int timeout = t0 < 0 ? t1 : t1 < 0 ? t0 : t0 < t1 ? t0 : t1;
        poll(p, 2, timeout);
        wakeups++;
    }
}

int main(void)
{
    static char served[1 << 16], copy[1 << 16];
    for (size_t i = 0; i < sizeof served; i++)
        served[i] = (char)('a' + i % 26);
    CHECK(NXC_CHECK_COMPATIBILITY());
    nxc_connector_t *c[2];
    CHECK(nxc_connector_create(NULL, &c[0]));  /* passive */
    CHECK(nxc_connector_create(NULL, &c[1]));  /* active */

    nxc_descriptor_t src = { served, sizeof served, { NXC_DEVICE_HOST, 0 } };
    nxc_descriptor_t dst = { copy, sizeof copy, { NXC_DEVICE_HOST, 0 } };
    nxc_op_t *op[2];
    nxc_metadata_t *md;
    const char *json;
    size_t len;
    CHECK(nxc_create_readable(c[0], &src, 1, &op[0]));
    CHECK(nxc_op_metadata(op[0], &json, &len));
    CHECK(nxc_metadata_parse(json, len, &md));
    CHECK(nxc_begin_read(c[1], md, &dst, 1, &op[1]));

    int wakeups = run_loop(c, op);
    CHECK(nxc_op_wait(op[1], 0));   /* both final: the read's result */
    CHECK(nxc_op_wait(op[0], 0));
    int same = memcmp(served, copy, sizeof copy) == 0;
    printf("event loop: read %zu bytes after %d poll wake-ups: %s\n", sizeof copy,
           wakeups, same ? "intact" : "DIFFERENT");

    nxc_op_release(op[1]);
    nxc_op_release(op[0]);
    nxc_metadata_free(md);
    nxc_connector_destroy(c[1]);
    nxc_connector_destroy(c[0]);
    return same ? 0 : 1;
}
