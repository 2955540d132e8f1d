/* Two processes hand a writable op's metadata over NATS, as Dynamo's decode
 * worker hands a KV-cache buffer to the prefill worker:
 *   - the receiving (passive) process exposes a buffer and sends its
 *     metadata to the writer's subject (nxc_nats_send_op: returns once taken);
 *   - the writing (active) process takes it (nxc_nats_next) and writes.
 * usage: nats_pair nats://127.0.0.1:4222 (examples/run_nats_pair.sh starts
 * a nats-server and runs it). */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nixl_connect.h"
#include "nixl_connect_nats.h"

#define SUBJECT "example.prefill"
#define MESSAGE "the KV cache, written by the prefill worker"

#define CHECK(call)                                                            \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != NXC_OK) {                                                   \
            fprintf(stderr, "%s: %s (%s / %s)\n", #call, nxc_nats_strerror(rc_), \
                    nxc_last_error(), nxc_nats_last_error());                  \
            return 1;                                                          \
        }                                                                      \
    } while (0)

/* The decode worker: exposes `inbox`, sends its metadata, waits for it. */
static int receiver(const char *url, int go)
{
    static char inbox[64];
    char byte;
    if (read(go, &byte, 1) != 1)   /* the writer listens now */
        return 1;
    nxc_connector_t *c;
    nxc_nats_t *n;
    nxc_op_t *writable;
    nxc_descriptor_t d = { inbox, sizeof inbox, { NXC_DEVICE_HOST, 0 } };
    CHECK(nxc_connector_create(NULL, &c));
    CHECK(nxc_create_writable(c, &d, 1, &writable));
    CHECK(nxc_nats_connect(url, NULL, &n));
    CHECK(nxc_nats_send_op(n, SUBJECT, writable, 10000));
    CHECK(nxc_op_wait(writable, 10000));
    printf("receiver: \"%s\"\n", inbox);
    nxc_op_release(writable);
    nxc_nats_close(n);
    nxc_connector_destroy(c);
    return strcmp(inbox, MESSAGE) == 0 ? 0 : 1;
}

/* The prefill worker: listens on its subject, writes into what it is sent. */
static int writer(const char *url, int go)
{
    static char message[64] = MESSAGE;
    nxc_connector_t *c;
    nxc_nats_t *n;
    nxc_nats_inbox_t *in;
    nxc_metadata_t *md;
    nxc_op_t *op;
    char *json;
    size_t len;
    nxc_descriptor_t d = { message, sizeof message, { NXC_DEVICE_HOST, 0 } };
    CHECK(nxc_connector_create(NULL, &c));
    CHECK(nxc_nats_connect(url, NULL, &n));
    CHECK(nxc_nats_subscribe(n, SUBJECT, &in));
    if (write(go, "g", 1) != 1)
        return 1;
    CHECK(nxc_nats_next(in, 10000, &json, &len));
    CHECK(nxc_metadata_parse(json, len, &md));
    nxc_nats_free(json);
    CHECK(nxc_begin_write(c, &d, 1, md, &op));
    CHECK(nxc_op_wait(op, 10000));
    printf("writer: wrote %zu bytes\n", sizeof message);
    nxc_op_release(op);
    nxc_metadata_free(md);
    nxc_nats_unsubscribe(in);
    nxc_nats_close(n);
    nxc_connector_destroy(c);
    return 0;
}

int main(int argc, char **argv)
{
    int go[2], status = 1;
    if (argc != 2) {
        fprintf(stderr, "usage: nats_pair NATS_URL\n");
        return 2;
    }
    if (NXC_CHECK_COMPATIBILITY() != NXC_OK || pipe(go) != 0)
        return 1;
    pid_t pid = fork();   /* before any library call: each process its own */
    if (pid == 0)
        return receiver(argv[1], go[0]);
    int rc = pid > 0 ? writer(argv[1], go[1]) : 1;
    if (pid > 0 && waitpid(pid, &status, 0) != pid)
        status = 1;
    return rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
