/* The NIXL wire between two of our connectors in one process: a passive
 * connector made with wire NXC_WIRE_NIXL publishes NIXL agent metadata; an
 * ordinary connector reads that metadata (nxc_metadata_wire() says NIXL),
 * moves the bytes with get/put + flush and completes the passive op with
 * NIXL's notification alone. This is the same code path a real NIXL agent
 * is met with (see docs/INTEROP.md for the runs against real NIXL); here
 * it runs in CI, on UCX 1.13 only.
 *
 * argv[1]: a Dynamo RdmaMetadata whose NIXL agent is gone (the fixture):
 * beginning a write on it fails with NXC_ERR_PEER_FAILED, promptly. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "e2e_common.h"
#include "e2e_private.h" /* whether a peer counts as reached */

static nxc_connector_t *make_connector(nxc_wire_t wire, int thread)
{
    nxc_connector_config_t cfg = {
        .field_mask = NXC_CONFIG_WIRE | NXC_CONFIG_PROGRESS_THREAD,
        .wire = wire,
        .progress_thread = thread,
    };
    nxc_connector_t *c = NULL;
    CHECK_RC(nxc_connector_create(&cfg, &c), NXC_OK);
    return c;
}

/* One transfer of `size` bytes in `n` descriptors, `kind` from the active
 * side's view, between a NIXL-wire passive op and an active op. */
static void transfer(nxc_connector_t *passive_c, nxc_connector_t *active_c, nxc_op_kind_t kind,
                     size_t n, size_t size, uint32_t seed)
{
    size_t sizes[4];
    for (size_t i = 0; i < n; i++)
        sizes[i] = size;
    e2e_bufs_t src, dst;
    e2e_bufs_alloc(&src, seed, n, sizes);
    e2e_bufs_alloc(&dst, seed, n, sizes);
    e2e_bufs_fill(&src, 0);
    e2e_bufs_fill(&dst, E2E_INIT_XOR);

    nxc_op_t *passive = NULL, *active = NULL;
    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_create_readable(passive_c, src.d, n, &passive), NXC_OK);
    else
        CHECK_RC(nxc_create_writable(passive_c, dst.d, n, &passive), NXC_OK);
    const char *json = NULL;
    size_t len = 0;
    CHECK_RC(nxc_op_metadata(passive, &json, &len), NXC_OK);
    nxc_metadata_t *md = NULL;
    CHECK_RC(nxc_metadata_parse(json, len, &md), NXC_OK);
    CHECK(nxc_metadata_wire(md) == NXC_WIRE_NIXL, "published metadata is not NIXL's");
    CHECK(strlen(nxc_metadata_notification_key(md)) == 32, "key");
    /* Each op is a NIXL agent of its own: "<connector>-<8 hex>". */
    const char *cname = nxc_connector_name(passive_c), *aname = nxc_metadata_worker_name(md);
    CHECK(strncmp(aname, cname, strlen(cname)) == 0 && aname[strlen(cname)] == '-' &&
              strlen(aname) == strlen(cname) + 9,
          "agent name %s of connector %s", aname, cname);
    static char last_name[300];
    CHECK(strcmp(aname, last_name) != 0, "two ops share the agent name %s", aname);
    snprintf(last_name, sizeof last_name, "%s", aname);

    if (kind == NXC_OP_READ)
        CHECK_RC(nxc_begin_read(active_c, md, dst.d, n, &active), NXC_OK);
    else
        CHECK_RC(nxc_begin_write(active_c, src.d, n, md, &active), NXC_OK);
    CHECK_RC(nxc_op_wait(active, 30000), NXC_OK, "active %s of %zu x %zu B",
             nxc_op_kind_name(kind), n, size);
    CHECK_RC(nxc_op_wait(passive, 30000), NXC_OK, "passive side of %s %zu x %zu B",
             nxc_op_kind_name(kind), n, size);
    size_t bad_idx = 0, bad_off = 0;
    CHECK(e2e_bufs_verify(&dst, 0, &bad_idx, &bad_off) == 0,
          "%s %zu x %zu B: descriptor %zu differs at offset %zu", nxc_op_kind_name(kind), n,
          size, bad_idx, bad_off);
    nxc_op_release(active);
    nxc_op_release(passive);
    nxc_metadata_free(md);
    e2e_bufs_free(&src);
    e2e_bufs_free(&dst);
}

/* A notification carrying another key (ours in form, or a Dynamo-style
 * uuid) completes the writer's op but not the passive one: the passive op
 * completes only on its own key. The metadata text is edited to send it. */
static void wrong_key(nxc_connector_t *passive_c, nxc_connector_t *active_c, const char *key)
{
    char buf[64] = { 0 }, src[64];
    memset(src, 7, sizeof src);
    nxc_descriptor_t dd = { buf, sizeof buf, { NXC_DEVICE_HOST, 0 } };
    nxc_descriptor_t sd = { src, sizeof src, { NXC_DEVICE_HOST, 0 } };
    nxc_op_t *passive = NULL, *active = NULL;
    CHECK_RC(nxc_create_writable(passive_c, &dd, 1, &passive), NXC_OK);
    const char *json = NULL;
    size_t len = 0;
    CHECK_RC(nxc_op_metadata(passive, &json, &len), NXC_OK);
    char *edited = malloc(len + 64);
    CHECK(edited != NULL, "oom");
    const char *k = strstr(json, "\"notification_key\":\"") + strlen("\"notification_key\":\"");
    size_t head = (size_t)(k - json);
    memcpy(edited, json, head);
    strcpy(edited + head, key);
    strcat(edited, json + head + 32);
    nxc_metadata_t *md = NULL;
    CHECK_RC(nxc_metadata_parse(edited, strlen(edited), &md), NXC_OK);
    CHECK_RC(nxc_begin_write(active_c, &sd, 1, md, &active), NXC_OK);
    CHECK_RC(nxc_op_wait(active, 30000), NXC_OK, "the writer completes");
    CHECK_RC(nxc_op_wait(passive, 300), NXC_ERR_TIMED_OUT, "key %s completed another op", key);
    CHECK(nxc_op_status(passive) == NXC_OP_INITIALIZED, "passive op moved");
    nxc_op_release(active);
    nxc_op_release(passive);
    nxc_metadata_free(md);
    free(edited);
}

/* A connector name with no room for the per-op suffix is refused when an
 * op is made, with a detail. */
static void long_name(void)
{
    char name[256];
    memset(name, 'n', 250);
    name[250] = '\0';
    nxc_connector_config_t cfg = { .field_mask = NXC_CONFIG_WIRE | NXC_CONFIG_NAME,
                                   .wire = NXC_WIRE_NIXL, .name = name };
    nxc_connector_t *c = NULL;
    CHECK_RC(nxc_connector_create(&cfg, &c), NXC_OK);
    char buf[8];
    nxc_descriptor_t d = { buf, sizeof buf, { NXC_DEVICE_HOST, 0 } };
    nxc_op_t *op = NULL;
    CHECK_RC(nxc_create_writable(c, &d, 1, &op), NXC_ERR_INVALID_ARG);
    CHECK(strstr(nxc_last_error(), "connector name") != NULL, "detail: %s", nxc_last_error());
    nxc_connector_destroy(c);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* A big first transfer to a NIXL agent that stops answering for a while is
 * slow, not unreachable: the agent counts as reached once it answered
 * anything (a 1-byte probe before the data), not once the whole transfer
 * flushed. Both connectors are driven by hand here, so the agent answers
 * only while this test progresses it; the deadline is shortened to 2 s
 * (NXC_REACH_TIMEOUT_MS; the probe must still fit in it under valgrind) and
 * the agent kept silent for 2.5 s mid-transfer. */
static const char *op_detail(nxc_op_t *op)
{
    const char *detail = NULL;
    nxc_op_error(op, &detail);
    return detail != NULL ? detail : "(no detail)";
}

static void slow_first_transfer(uint32_t seed)
{
    setenv("NXC_REACH_TIMEOUT_MS", "2000", 1);
    nxc_connector_t *passive_c = make_connector(NXC_WIRE_NIXL, 0);
    nxc_connector_t *active_c = make_connector(NXC_WIRE_NXC, 0);
    unsetenv("NXC_REACH_TIMEOUT_MS");
    size_t size = 64 * MiB;
    e2e_bufs_t src, dst;
    e2e_bufs_alloc(&src, seed, 1, &size);
    e2e_bufs_alloc(&dst, seed, 1, &size);
    e2e_bufs_fill(&src, 0);
    e2e_bufs_fill(&dst, E2E_INIT_XOR);
    nxc_op_t *passive = NULL, *active = NULL;
    CHECK_RC(nxc_create_readable(passive_c, src.d, 1, &passive), NXC_OK);
    const char *json = NULL;
    size_t len = 0;
    CHECK_RC(nxc_op_metadata(passive, &json, &len), NXC_OK);
    nxc_metadata_t *md = NULL;
    CHECK_RC(nxc_metadata_parse(json, len, &md), NXC_OK);
    const char *agent = nxc_metadata_worker_name(md);
    CHECK_RC(nxc_begin_read(active_c, md, dst.d, 1, &active), NXC_OK);
    while (e2e_peer_reached(active_c, agent) != 1) {
        CHECK(nxc_op_status(active) == NXC_OP_IN_PROGRESS,
              "the read ended (%s) before its agent counted as reached: %s",
              nxc_op_status_name(nxc_op_status(active)), op_detail(active));
        nxc_connector_progress(passive_c);
    }
    for (double start = e2e_now_ms(); e2e_now_ms() - start < 2500; sleep_ms(1))
        CHECK(nxc_op_status(active) != NXC_OP_ERRORED, "a silent agent was declared "
              "unreachable although it had answered: %s", op_detail(active));
    while (nxc_op_status(active) == NXC_OP_IN_PROGRESS)
        nxc_connector_progress(passive_c);
    CHECK(nxc_op_status(active) == NXC_OP_COMPLETE, "read: %s", op_detail(active));
    CHECK_RC(nxc_op_wait(passive, 30000), NXC_OK, "the agent's op");
    size_t bad_idx = 0, bad_off = 0;
    CHECK(e2e_bufs_verify(&dst, 0, &bad_idx, &bad_off) == 0, "data differs at %zu", bad_off);
    nxc_op_release(active);
    nxc_op_release(passive);
    nxc_metadata_free(md);
    e2e_bufs_free(&src);
    e2e_bufs_free(&dst);
    nxc_connector_destroy(active_c);
    nxc_connector_destroy(passive_c);
}

/* The fixture's agent listened on 192.0.2.2:51293 (strace of the probe's
 * connect), this machine image's own address. A UCX worker that happens
 * to listen on that port, here or in another process, would take the
 * probe, a get of the fixture's buffer address, and UCX's emulated get
 * would read that address in its process (a crash, seen once in CI).
 * Bound and never listened on, from before any connector exists, the port
 * is no worker's, and a connection to it is refused at once. -1: another
 * process holds it. */
#define FIXTURE_AGENT_PORT 51293

static int hold_fixture_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(FIXTURE_AGENT_PORT),
                             .sin_addr.s_addr = htonl(INADDR_ANY) };
    if (fd >= 0 && bind(fd, (const struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Dynamo's metadata of an agent that no longer exists. */
static void dead_agent(nxc_connector_t *c, const char *path)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "cannot open %s", path);
    char text[4096];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    nxc_metadata_t *md = NULL;
    CHECK_RC(nxc_metadata_parse(text, len, &md), NXC_OK);
    CHECK(nxc_metadata_wire(md) == NXC_WIRE_NIXL, "fixture is NIXL's");
    char data[64] = { 0 };
    nxc_descriptor_t d = { data, sizeof data, { NXC_DEVICE_HOST, 0 } };
    nxc_op_t *op = NULL;
    int rc = nxc_begin_write(c, &d, 1, md, &op);
    if (rc == NXC_OK) { /* UCX may only find out once it sends */
        rc = nxc_op_wait(op, 60000);
        nxc_op_release(op);
    }
    CHECK_RC(rc, NXC_ERR_PEER_FAILED, "a gone NIXL agent");
    nxc_metadata_free(md);
}

int main(int argc, char **argv)
{
    unsigned seed = e2e_init("e2e_nixl_wire", 240);
    CHECK(argc == 2, "usage: e2e_nixl_wire DYNAMO_METADATA_JSON");
    int held = hold_fixture_port();
    nxc_connector_t *passive_c = make_connector(NXC_WIRE_NIXL, 1);
    nxc_connector_t *active_c = make_connector(NXC_WIRE_NXC, 0);
    static const size_t sizes[] = { 8, 4 * KiB, 1 * MiB, 16 * MiB };
    unsigned moved = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (int kind = NXC_OP_READ; kind <= NXC_OP_WRITE; kind++) {
            e2e_step("transfer");
            transfer(passive_c, active_c, (nxc_op_kind_t)kind, 1, sizes[s], seed + moved++);
            transfer(passive_c, active_c, (nxc_op_kind_t)kind, 3, sizes[s] / 2 + 1,
                     seed + moved++);
        }
    }
    e2e_step("slow first transfer");
    slow_first_transfer(seed + moved++);
    e2e_step("wrong key");
    wrong_key(passive_c, active_c, "0123456789abcdef0123456789abcdef");
    wrong_key(passive_c, active_c, "e62b03db-9091-48a5-850b-890ea72e19b4");
    e2e_step("long name");
    long_name();
    e2e_step("dead agent");
    if (held >= 0)
        dead_agent(active_c, argv[1]);
    else
        fprintf(stderr, "e2e_nixl_wire: dead agent step SKIPPED: port %d, where the fixture's "
                "agent listened, is held by another process, which the probe could reach\n",
                FIXTURE_AGENT_PORT);
    nxc_connector_destroy(active_c);
    nxc_connector_destroy(passive_c);
    if (held >= 0)
        close(held);
    return e2e_pass("%u transfers over the NIXL wire (%s), wrong keys ignored, a gone agent "
                    "refused", moved,
                    e2e_transport());
}
