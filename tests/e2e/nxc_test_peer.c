/*
 * nxc_test_peer: the other process of the end-to-end tests.
 *
 *   nxc_test_peer serve <fd>
 *
 * Creates one connector (UCX settings from the environment, e.g. UCX_TLS;
 * NXC_E2E_PROGRESS_THREAD=1 turns on the connector's progress thread,
 * NXC_E2E_DIRECT_LOCAL=1 its same-host direct path for passive ops)
 * and serves a line protocol on <fd> (a socketpair end inherited from the
 * test). Between commands it drives its connector from an event loop
 * (poll on the channel and on nxc_connector_fd()), so a passive op it holds
 * makes progress while the test moves data.
 *
 * Commands (one line each) and replies:
 *   PASSIVE R|W <seed> <n> <size>...   -> OK <id> <metadata json> | ERR <rc> <detail>
 *       exposes n fresh buffers: R (readable) filled with the pattern,
 *       W (writable) filled with pattern ^ 0x5A.
 *   ACTIVE R|W <seed> <n> <size>...    followed by one line of metadata JSON
 *                                      -> OK <id> | ERR <rc> <detail>
 *       begins a read (local buffers pre-filled with pattern ^ 0x5A) or a
 *       write (local buffers filled with the pattern).
 *   WAIT <id> <timeout_ms>             -> RES <rc> <status> <verify> <errcode> <detail>
 *       verify: 0 data is the pattern everywhere and results() returned the
 *       local descriptors; 1 data differs; 2 results() wrong; 3 not complete
 *       (and results() correctly refused); 4 not complete but results() did
 *       not return NXC_ERR_STATE.
 *   STATUS <id>                        -> ST <status>
 *   CHECK <id>                         -> CHK <code> <desc> <off>
 *       0 all bytes final (pattern), 1 mixture of pattern and pattern^0x5A,
 *       2 all pattern^0x5A, 3 some byte is neither (desc/off name it).
 *   CANCEL <id>                        -> RC <rc> <status after>
 *   RELEASE <id>                       -> OK        (releases, then frees the buffers)
 *   NAME                               -> NAME <connector name>
 *   QUIT                               -> BYE       (destroys everything, exits 0)
 * On EOF of the channel it cleans up and exits 3.
 */
#include "e2e_common.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct slot {
    nxc_op_t *op;
    nxc_op_kind_t kind;
    int active;
    e2e_bufs_t b;
} slot_t;

static slot_t *g_slots;
static size_t g_nslots;
static nxc_connector_t *g_conn;
static e2e_peer_t g_chan;

static int new_slot(void)
{
    for (size_t i = 0; i < g_nslots; i++)
        if (!g_slots[i].op) return (int)i;
    size_t n = g_nslots ? g_nslots * 2 : 64;
    g_slots = realloc(g_slots, n * sizeof *g_slots);
    CHECK(g_slots != NULL, "oom");
    memset(g_slots + g_nslots, 0, (n - g_nslots) * sizeof *g_slots);
    int id = (int)g_nslots;
    g_nslots = n;
    return id;
}

static slot_t *get_slot(int id)
{
    if (id < 0 || (size_t)id >= g_nslots || !g_slots[id].op) return NULL;
    return &g_slots[id];
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *buf = malloc((size_t)len + 2);
    CHECK(buf != NULL, "oom");
    va_start(ap, fmt);
    vsnprintf(buf, (size_t)len + 1, fmt, ap);
    va_end(ap);
    /* details may contain newlines: flatten */
    for (int i = 0; i < len; i++)
        if (buf[i] == '\n') buf[i] = ' ';
    buf[len] = '\n';
    e2e_peer_send_raw(&g_chan, buf, (size_t)len + 1);
    free(buf);
}

/* parses "R|W seed n s0 s1 ..." into a buffer set; returns 0 or -1 */
static int parse_sizes(const char *args, nxc_op_kind_t *kind, e2e_bufs_t *b)
{
    char k = 0;
    unsigned seed = 0;
    size_t n = 0;
    int off = 0;
    if (sscanf(args, " %c %u %zu%n", &k, &seed, &n, &off) != 3) return -1;
    if ((k != 'R' && k != 'W') || n > 100000) return -1;
    *kind = k == 'R' ? NXC_OP_READ : NXC_OP_WRITE;
    size_t *sizes = calloc(n ? n : 1, sizeof *sizes);
    CHECK(sizes != NULL, "oom");
    const char *p = args + off;
    for (size_t i = 0; i < n; i++) {
        int o = 0;
        if (sscanf(p, " %zu%n", &sizes[i], &o) != 1) {
            free(sizes);
            return -1;
        }
        p += o;
    }
    e2e_bufs_alloc(b, seed, n, sizes);
    free(sizes);
    return 0;
}

static void cmd_passive(const char *args)
{
    nxc_op_kind_t kind;
    e2e_bufs_t b;
    if (parse_sizes(args, &kind, &b) != 0) {
        reply("ERR -1 bad PASSIVE arguments");
        return;
    }
    e2e_bufs_fill(&b, kind == NXC_OP_READ ? 0 : E2E_INIT_XOR);
    nxc_op_t *op = NULL;
    int rc = kind == NXC_OP_READ ? nxc_create_readable(g_conn, b.d, b.n, &op)
                                 : nxc_create_writable(g_conn, b.d, b.n, &op);
    if (rc != NXC_OK) {
        reply("ERR %d %s", rc, nxc_last_error());
        e2e_bufs_free(&b);
        return;
    }
    const char *json = NULL;
    size_t len = 0;
    rc = nxc_op_metadata(op, &json, &len);
    if (rc != NXC_OK) {
        reply("ERR %d %s", rc, nxc_last_error());
        nxc_op_release(op);
        e2e_bufs_free(&b);
        return;
    }
    int id = new_slot();
    g_slots[id] = (slot_t){ op, kind, 0, b };
    reply("OK %d %s", id, json);
}

static void cmd_active(const char *args)
{
    nxc_op_kind_t kind;
    e2e_bufs_t b;
    int ok = parse_sizes(args, &kind, &b) == 0;
    char *json = e2e_peer_readline(&g_chan, g_conn, 60000); /* always consume it */
    if (!ok) {
        reply("ERR -1 bad ACTIVE arguments");
        return;
    }
    e2e_bufs_fill(&b, kind == NXC_OP_READ ? E2E_INIT_XOR : 0);
    nxc_metadata_t *md = NULL;
    int rc = nxc_metadata_parse(json, strlen(json), &md);
    if (rc != NXC_OK) {
        reply("ERR %d %s", rc, nxc_last_error());
        e2e_bufs_free(&b);
        return;
    }
    nxc_op_t *op = NULL;
    rc = kind == NXC_OP_READ ? nxc_begin_read(g_conn, md, b.d, b.n, &op)
                             : nxc_begin_write(g_conn, b.d, b.n, md, &op);
    nxc_metadata_free(md);
    if (rc != NXC_OK) {
        reply("ERR %d %s", rc, nxc_last_error());
        e2e_bufs_free(&b);
        return;
    }
    int id = new_slot();
    g_slots[id] = (slot_t){ op, kind, 1, b };
    reply("OK %d", id);
}

static int verify_slot(slot_t *s)
{
    const nxc_descriptor_t *d = NULL;
    size_t n = 0;
    if (nxc_op_status(s->op) != NXC_OP_COMPLETE)
        return nxc_op_results(s->op, &d, &n) == NXC_ERR_STATE ? 3 : 4;
    if (e2e_bufs_verify(&s->b, 0, NULL, NULL) != 0) return 1;
    if (nxc_op_results(s->op, &d, &n) != NXC_OK || n != s->b.n || !d) return 2;
    for (size_t i = 0; i < n; i++)
        if (d[i].ptr != s->b.d[i].ptr || d[i].size != s->b.d[i].size ||
            d[i].device.kind != s->b.d[i].device.kind)
            return 2;
    return 0;
}

static void cmd_wait(const char *args)
{
    int id = -1, tmo = 0;
    slot_t *s;
    if (sscanf(args, "%d %d", &id, &tmo) != 2 || !(s = get_slot(id))) {
        reply("ERR -1 bad WAIT");
        return;
    }
    int rc = nxc_op_wait(s->op, tmo);
    char detail[512];
    snprintf(detail, sizeof detail, "%s", rc == NXC_OK ? "" : nxc_last_error());
    int st = (int)nxc_op_status(s->op);
    int verify = verify_slot(s);
    const char *edetail = NULL;
    int ec = nxc_op_error(s->op, &edetail);
    reply("RES %d %d %d %d %s | %s", rc, st, verify, ec, detail, edetail ? edetail : "");
}

static void cmd_check(const char *args)
{
    int id = -1;
    slot_t *s;
    if (sscanf(args, "%d", &id) != 1 || !(s = get_slot(id))) {
        reply("ERR -1 bad CHECK");
        return;
    }
    size_t nfinal = 0, ninit = 0;
    for (size_t i = 0; i < s->b.n; i++) {
        const uint8_t *p = s->b.mem[i];
        for (size_t off = 0; off < s->b.d[i].size; off++) {
            uint8_t pat = e2e_pat(s->b.seed, i, off);
            if (p[off] == pat)
                nfinal++;
            else if (p[off] == (uint8_t)(pat ^ E2E_INIT_XOR))
                ninit++;
            else {
                reply("CHK 3 %zu %zu", i, off);
                return;
            }
        }
    }
    reply("CHK %d 0 0", ninit == 0 ? 0 : nfinal == 0 ? 2 : 1);
}

static void release_slot(slot_t *s)
{
    nxc_op_release(s->op);
    e2e_bufs_free(&s->b);
    memset(s, 0, sizeof *s);
}

static void cleanup(void)
{
    for (size_t i = 0; i < g_nslots; i++)
        if (g_slots[i].op) release_slot(&g_slots[i]);
    free(g_slots);
    g_slots = NULL;
    g_nslots = 0;
    nxc_connector_destroy(g_conn);
    g_conn = NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "serve") != 0) {
        fprintf(stderr, "usage: %s serve <fd>\n", argv[0]);
        return 64;
    }
    e2e_init("nxc_test_peer", 600);
    memset(&g_chan, 0, sizeof g_chan);
    g_chan.fd = atoi(argv[2]);
    g_chan.pid = getppid();
    g_conn = e2e_connector(NULL); /* NXC_E2E_PROGRESS_THREAD=1: with a progress thread */

    for (;;) {
        int eof = 0;
        char *l = e2e_peer_readline_opt(&g_chan, g_conn, -1, &eof);
        if (!l) {
            cleanup();
            free(g_chan.rbuf);
            free(g_chan.line);
            return 3;
        }
        char cmd[16] = "";
        int off = 0;
        sscanf(l, "%15s%n", cmd, &off);
        const char *args = l + off;
        int id = -1;
        slot_t *s;
        if (!strcmp(cmd, "PASSIVE")) {
            cmd_passive(args);
        } else if (!strcmp(cmd, "ACTIVE")) {
            cmd_active(args);
        } else if (!strcmp(cmd, "WAIT")) {
            cmd_wait(args);
        } else if (!strcmp(cmd, "CHECK")) {
            cmd_check(args);
        } else if (!strcmp(cmd, "STATUS")) {
            if (sscanf(args, "%d", &id) == 1 && (s = get_slot(id)))
                reply("ST %d", (int)nxc_op_status(s->op));
            else
                reply("ERR -1 bad STATUS");
        } else if (!strcmp(cmd, "CANCEL")) {
            if (sscanf(args, "%d", &id) == 1 && (s = get_slot(id))) {
                int rc = nxc_op_cancel(s->op);
                reply("RC %d %d", rc, (int)nxc_op_status(s->op));
            } else {
                reply("ERR -1 bad CANCEL");
            }
        } else if (!strcmp(cmd, "RELEASE")) {
            if (sscanf(args, "%d", &id) == 1 && (s = get_slot(id))) {
                release_slot(s);
                reply("OK");
            } else {
                reply("ERR -1 bad RELEASE");
            }
        } else if (!strcmp(cmd, "NAME")) {
            reply("NAME %s", nxc_connector_name(g_conn));
        } else if (!strcmp(cmd, "QUIT")) {
            cleanup();
            reply("BYE");
            free(g_chan.rbuf);
            free(g_chan.line);
            return 0;
        } else {
            reply("ERR -1 unknown command '%s'", cmd);
        }
    }
}
