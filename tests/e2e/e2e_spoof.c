/*
 * e2e_spoof — a hostile peer speaking our wire format cannot complete,
 * abort or write into an op it does not own (run over shared memory and
 * over TCP by ctest).
 *
 * The hostile peer is a bare UCX worker in this process, not a connector:
 * it builds control messages (BEGIN/DONE/ABORT) and data messages by hand
 * from the documented layouts, with any key, name and pid it likes, and
 * sends them to the victim connector's worker address taken from metadata.
 * (It links the private codec only to read that address and the victim's
 * counter of refused messages.) Each scenario waits until the victim has
 * counted the message as refused, so "nothing happened" is never just
 * "nothing arrived yet"; positive controls show the same forged messages
 * do act when they carry the owner's key and identity.
 *
 * A refused BEGIN is also answered (NACK to the address it carries): the
 * hostile worker counts the answers it receives and the test waits for
 * each one.
 *
 *  1. a wrong key: DONE, BEGIN, ABORT, eager and rendezvous data;
 *  2. the right key from a second sender after the owner's BEGIN: DONE,
 *     ABORT and data are refused (a refused rendezvous fails the sender's
 *     request); then the owner's ABORT does end the op;
 *  3. the key of an op already COMPLETE (readable and writable);
 *  4. the key of an op already released, its memory still allocated here;
 *  5. malformed control and data messages;
 *  6. the owner of an op it took by RMA sends AM data and a WRITE: both
 *     refused (an op keeps the protocol chosen first), then its DONE
 *     completes the op.
 */
#include "e2e_common.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ucp/api/ucp.h>

#include "codec/metadata.h"
#include "common/bytes.h"
#include "engine/connector.h"
#include "engine/op.h"
#include "transport/protocol.h"
#include "transport/transport.h"

#define CTRL_VERSION   3u  /* ctrl.h: the control message layout */
#define CTRL_FIXED_LEN 57u
#define BUF_SIZE       (64 * KiB)

typedef struct hostile {
    ucp_context_h ctx;
    ucp_worker_h  w;
    ucp_ep_h      ep;
    nxc_connector_t *victim;
    nxc_identity_t id;  /* claimed identity */
    char name[32];
    uint64_t tag;       /* of the active op it pretends to run */
    ucp_address_t *addr;
    size_t addr_len;
    unsigned long nacks; /* NACKs the victim sent back */
} hostile_t;

static ucs_status_t hostile_heard(void *arg, const void *header, size_t header_len,
                                  void *data, size_t len, const ucp_am_recv_param_t *param)
{
    hostile_t *h = arg;
    const uint8_t *m = data;
    (void)header;
    (void)header_len;
    (void)param;
    if (len > CTRL_FIXED_LEN && (m[0] & NXC_CTRL_TYPE_MASK) == NXC_CTRL_NACK &&
        nxc_get_u64(m + 48) == h->tag)
        h->nacks++;
    return UCS_OK;
}

static unsigned long refused(nxc_connector_t *c) { return c->spoofed_notifications; }

static void hostile_open(hostile_t *h, nxc_connector_t *victim, const char *json,
                         const char *name, uint32_t pid)
{
    memset(h, 0, sizeof *h);
    h->victim = victim;
    h->id = victim->identity;
    h->id.pid = pid;
    snprintf(h->name, sizeof h->name, "%s", name);
    nxc_metadata_t *md = e2e_parse(json);
    ucp_config_t *cfg;
    CHECK(ucp_config_read(NULL, NULL, &cfg) == UCS_OK, "ucp_config_read");
    ucp_params_t p = { .field_mask = UCP_PARAM_FIELD_FEATURES,
                       .features = UCP_FEATURE_AM | UCP_FEATURE_RMA };
    CHECK(ucp_init(&p, cfg, &h->ctx) == UCS_OK, "ucp_init");
    ucp_config_release(cfg);
    ucp_worker_params_t wp = { .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                               .thread_mode = UCS_THREAD_MODE_SINGLE };
    CHECK(ucp_worker_create(h->ctx, &wp, &h->w) == UCS_OK, "ucp_worker_create");
    CHECK(ucp_worker_get_address(h->w, &h->addr, &h->addr_len) == UCS_OK, "address");
    ucp_am_handler_param_t am = {
        .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                      UCP_AM_HANDLER_PARAM_FIELD_ARG,
        .id = NXC_AM_CTRL_ID, .cb = hostile_heard, .arg = h,
    };
    CHECK(ucp_worker_set_am_recv_handler(h->w, &am) == UCS_OK, "am handler");
    h->tag = ((uint64_t)pid << 32) | (uint64_t)e2e_rand() | 1u;
    /* The victim answers BEGIN over its own endpoint to us, in peer-error
     * mode over TCP: UCX wants both directions in the same mode. */
    ucp_ep_params_t ep = { .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                                         UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE,
                           .address = (const ucp_address_t *)md->blob.worker_addr,
                           .err_mode = strcmp(e2e_transport(), "tcp") == 0
                                           ? UCP_ERR_HANDLING_MODE_PEER
                                           : UCP_ERR_HANDLING_MODE_NONE };
    CHECK(ucp_ep_create(h->w, &ep, &h->ep) == UCS_OK, "ucp_ep_create");
    nxc_metadata_free(md);
}

static void hostile_close(hostile_t *h)
{
    ucp_request_param_t rp = { .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = UCP_EP_CLOSE_FLAG_FORCE };
    void *req = ucp_ep_close_nbx(h->ep, &rp);
    if (UCS_PTR_IS_PTR(req)) {
        while (ucp_request_check_status(req) == UCS_INPROGRESS) {
            ucp_worker_progress(h->w);
            nxc_connector_progress(h->victim);
        }
        ucp_request_free(req);
    }
    ucp_worker_release_address(h->w, h->addr);
    ucp_worker_destroy(h->w);
    ucp_cleanup(h->ctx);
}

/* Sends one AM and drives both ends until UCX finishes the request;
 * returns its status (a rendezvous the victim refused fails here). */
static ucs_status_t hostile_send(hostile_t *h, unsigned id, const void *hdr, size_t hdr_len,
                                 const void *data, size_t len, int rndv)
{
    ucp_request_param_t rp = { .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = rndv ? UCP_AM_SEND_FLAG_RNDV : UCP_AM_SEND_FLAG_EAGER };
    void *req = ucp_am_send_nbx(h->ep, id, hdr, hdr_len, data, len, &rp);
    if (req == NULL) return UCS_OK;
    if (UCS_PTR_IS_ERR(req)) return UCS_PTR_STATUS(req);
    double deadline = e2e_now_ms() + 10000;
    ucs_status_t st;
    while ((st = ucp_request_check_status(req)) == UCS_INPROGRESS) {
        ucp_worker_progress(h->w);
        nxc_connector_progress(h->victim);
        CHECK(e2e_now_ms() < deadline, "a forged message is still in flight after 10 s");
    }
    ucp_request_free(req);
    return st;
}

static uint8_t g_junk[BUF_SIZE];

/* Drives both ends until the victim has refused more than `before`
 * messages: the proof that the forged message arrived and was dropped. */
static void await_refusal(hostile_t *h, unsigned long before, const char *what)
{
    double deadline = e2e_now_ms() + 10000;
    while (refused(h->victim) <= before) {
        ucp_worker_progress(h->w);
        nxc_connector_progress(h->victim);
        CHECK(e2e_now_ms() < deadline, "%s: the victim never refused it (10 s)", what);
    }
}

/* Drives both ends for a moment: for the positive controls, which act. */
static void settle(hostile_t *h, nxc_op_t *op, nxc_op_status_t want)
{
    double deadline = e2e_now_ms() + 10000;
    while (nxc_op_status(op) != want && e2e_now_ms() < deadline) {
        ucp_worker_progress(h->w);
        nxc_connector_progress(h->victim);
    }
}

/* Set: forged BEGINs and WRITEs leave out the sender's address, as an
 * honest peer does once we have answered it. */
static int g_no_addr;

/* Writes a control message into m; a BEGIN or WRITE carries the sender's
 * address (FLAG_ADDR), unless g_no_addr. Returns its length. */
static size_t forge_ctrl(hostile_t *h, uint8_t type_flags, const uint8_t key[NXC_KEY_BYTES],
                         uint8_t *m)
{
    size_t name_len = strlen(h->name);
    uint8_t type = type_flags & NXC_CTRL_TYPE_MASK;
    if (!g_no_addr && (type == NXC_CTRL_BEGIN || type == NXC_CTRL_WRITE))
        type_flags |= NXC_CTRL_FLAG_ADDR;
    m[0] = type_flags;
    m[1] = CTRL_VERSION;
    nxc_put_u16(m + 2, (uint16_t)name_len);
    nxc_put_u32(m + 4, h->id.pid);
    nxc_put_u64(m + 8, h->id.pidns);
    memcpy(m + 16, h->id.host_id, NXC_HOST_ID_BYTES);
    memcpy(m + 32, key, NXC_KEY_BYTES);
    nxc_put_u64(m + 48, h->tag);
    m[56] = 0; /* reason */
    memcpy(m + CTRL_FIXED_LEN, h->name, name_len);
    size_t len = CTRL_FIXED_LEN + name_len;
    if (type_flags & NXC_CTRL_FLAG_ADDR) {
        nxc_put_u32(m + len, (uint32_t)h->addr_len);
        memcpy(m + len + 4, h->addr, h->addr_len);
        len += 4 + h->addr_len;
    }
    return len;
}

#define CTRL_ROOM (CTRL_FIXED_LEN + 32 + 4 + NXC_MAX_WORKER_ADDR)

static void send_ctrl(hostile_t *h, uint8_t type_flags, const uint8_t key[NXC_KEY_BYTES])
{
    uint8_t m[CTRL_ROOM];
    size_t len = forge_ctrl(h, type_flags, key, m);
    CHECK(hostile_send(h, NXC_AM_CTRL_ID, NULL, 0, m, len, 0) == UCS_OK,
          "forged control message not sent");
}

/* A WRITE: BEGIN, `len` bytes of data and DONE in one control message. */
static void send_write(hostile_t *h, uint8_t flags, const uint8_t key[NXC_KEY_BYTES],
                       const void *data, size_t len)
{
    uint8_t *m = malloc(CTRL_ROOM + len);
    CHECK(m, "oom");
    size_t n = forge_ctrl(h, NXC_CTRL_WRITE | flags, key, m);
    memcpy(m + n, data, len);
    CHECK(hostile_send(h, NXC_AM_CTRL_ID, NULL, 0, m, n + len, 0) == UCS_OK,
          "forged WRITE not sent");
    free(m);
}

/* A data message for descriptors [first, first+count); returns UCX's
 * status for the send. */
static ucs_status_t send_data(hostile_t *h, const uint8_t key[NXC_KEY_BYTES], uint32_t first,
                              uint32_t count, const void *data, size_t len, int rndv)
{
    uint8_t hdr[NXC_DATA_HDR];
    memcpy(hdr, key, NXC_KEY_BYTES);
    nxc_put_u32(hdr + 16, first);
    nxc_put_u32(hdr + 20, count);
    nxc_put_u32(hdr + 24, h->id.pid);
    nxc_put_u64(hdr + 28, h->tag);
    return hostile_send(h, NXC_AM_DATA_ID, hdr, sizeof hdr, data, len, rndv);
}

/* Every BEGIN (and WRITE, which begins too) is answered. */
static void await_nack(hostile_t *h, unsigned long nacks, const char *what)
{
    double deadline = e2e_now_ms() + 10000;
    while (h->nacks == nacks) {
        ucp_worker_progress(h->w);
        nxc_connector_progress(h->victim);
        CHECK(e2e_now_ms() < deadline, "%s: the victim never answered it NACK (10 s)", what);
    }
}

static void refused_ctrl(hostile_t *h, uint8_t type_flags, const uint8_t *key, const char *what)
{
    unsigned long before = refused(h->victim), nacks = h->nacks;
    send_ctrl(h, type_flags, key);
    await_refusal(h, before, what);
    if ((type_flags & NXC_CTRL_TYPE_MASK) == NXC_CTRL_BEGIN)
        await_nack(h, nacks, what);
}

/* A forged WRITE of a whole buffer's worth of junk: refused and answered. */
static void refused_write(hostile_t *h, const uint8_t *key, const char *what)
{
    unsigned long before = refused(h->victim), nacks = h->nacks;
    send_write(h, NXC_CTRL_FLAG_AM, key, g_junk, BUF_SIZE);
    await_refusal(h, before, what);
    await_nack(h, nacks, what);
}

static void refused_data(hostile_t *h, const uint8_t *key, const void *data, size_t len,
                         const char *what)
{
    unsigned long before = refused(h->victim);
    CHECK(send_data(h, key, 0, 1, data, len, 0) == UCS_OK, "%s: eager send failed", what);
    await_refusal(h, before, what);
    before = refused(h->victim);
    ucs_status_t st = send_data(h, key, 0, 1, data, len, 1);
    CHECK(st != UCS_OK, "%s: a forged rendezvous write was accepted by the victim", what);
    await_refusal(h, before, what);
    fprintf(stderr, "    %s: eager dropped, rendezvous failed at the sender (%s)\n", what,
            ucs_status_string(st));
}

typedef struct victim_op {
    nxc_op_t *op;
    uint8_t key[NXC_KEY_BYTES];
    char *json;
    uint8_t *buf;
} victim_op_t;

static void victim_open(victim_op_t *v, nxc_connector_t *P, nxc_op_kind_t kind, uint8_t fill)
{
    v->buf = malloc(BUF_SIZE);
    CHECK(v->buf, "oom");
    memset(v->buf, fill, BUF_SIZE);
    nxc_descriptor_t d = { v->buf, BUF_SIZE, { NXC_DEVICE_HOST, 0 } };
    int rc = kind == NXC_OP_READ ? nxc_create_readable(P, &d, 1, &v->op)
                                 : nxc_create_writable(P, &d, 1, &v->op);
    CHECK_RC(rc, NXC_OK);
    v->json = strdup(e2e_op_metadata(v->op));
    nxc_metadata_t *md = e2e_parse(v->json);
    memcpy(v->key, md->key, NXC_KEY_BYTES);
    nxc_metadata_free(md);
}

static void victim_close(victim_op_t *v)
{
    nxc_op_release(v->op);
    free(v->json);
    free(v->buf);
}

static int all_bytes(const uint8_t *p, size_t n, uint8_t b)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != b) return 0;
    return 1;
}

static void expect_status(nxc_op_t *op, nxc_op_status_t want, const char *what)
{
    CHECK(nxc_op_status(op) == want, "%s: the op is %s, want %s", what,
          nxc_op_status_name(nxc_op_status(op)), nxc_op_status_name(want));
}

static void wrong_key(nxc_connector_t *P)
{
    victim_op_t v;
    victim_open(&v, P, NXC_OP_WRITE, 0x11);
    hostile_t h;
    hostile_open(&h, P, v.json, "mallory", (uint32_t)getpid());
    uint8_t key[NXC_KEY_BYTES];
    memcpy(key, v.key, sizeof key);
    key[7] ^= 0x01; /* one bit off */
    refused_ctrl(&h, NXC_CTRL_DONE, key, "DONE with a wrong key");
    refused_ctrl(&h, NXC_CTRL_BEGIN | NXC_CTRL_FLAG_AM, key, "BEGIN with a wrong key");
    refused_ctrl(&h, NXC_CTRL_ABORT, key, "ABORT with a wrong key");
    refused_write(&h, key, "WRITE with a wrong key");
    refused_data(&h, key, g_junk, BUF_SIZE, "data with a wrong key");
    expect_status(v.op, NXC_OP_INITIALIZED, "after messages with a wrong key");
    CHECK(all_bytes(v.buf, BUF_SIZE, 0x11), "a wrong key wrote into the buffer");
    hostile_close(&h);
    victim_close(&v);
}

static void second_sender(nxc_connector_t *P)
{
    victim_op_t v;
    victim_open(&v, P, NXC_OP_WRITE, 0x22);
    hostile_t owner, other;
    hostile_open(&owner, P, v.json, "holder", (uint32_t)getpid());
    hostile_open(&other, P, v.json, "eavesdropper", (uint32_t)getppid());
    /* positive control: the first sender with the key owns the op */
    send_ctrl(&owner, NXC_CTRL_BEGIN | NXC_CTRL_FLAG_AM, v.key);
    settle(&owner, v.op, NXC_OP_IN_PROGRESS);
    expect_status(v.op, NXC_OP_IN_PROGRESS, "after the owner's BEGIN");
    refused_ctrl(&other, NXC_CTRL_DONE, v.key, "DONE from a second sender");
    refused_ctrl(&other, NXC_CTRL_ABORT, v.key, "ABORT from a second sender");
    refused_ctrl(&other, NXC_CTRL_BEGIN | NXC_CTRL_FLAG_AM, v.key, "BEGIN from a second sender");
    refused_write(&other, v.key, "WRITE from a second sender");
    refused_data(&other, v.key, g_junk, BUF_SIZE, "data from a second sender");
    expect_status(v.op, NXC_OP_IN_PROGRESS, "after a second sender");
    CHECK(all_bytes(v.buf, BUF_SIZE, 0x22), "a second sender wrote into the buffer");
    /* positive control: the owner's ABORT is heard */
    send_ctrl(&owner, NXC_CTRL_ABORT | NXC_CTRL_FLAG_AM, v.key);
    settle(&owner, v.op, NXC_OP_ERRORED);
    expect_status(v.op, NXC_OP_ERRORED, "after the owner's ABORT");
    const char *detail;
    CHECK_RC(nxc_op_error(v.op, &detail), NXC_ERR_PEER_ABORTED);
    hostile_close(&other);
    hostile_close(&owner);
    victim_close(&v);
}

static void completed(nxc_connector_t *P, nxc_connector_t *A, nxc_op_kind_t kind)
{
    victim_op_t v;
    victim_open(&v, P, kind, 0x33);
    uint8_t *mine = malloc(BUF_SIZE);
    CHECK(mine, "oom");
    memset(mine, kind == NXC_OP_WRITE ? 0x44 : 0, BUF_SIZE);
    nxc_descriptor_t d = { mine, BUF_SIZE, { NXC_DEVICE_HOST, 0 } };
    nxc_metadata_t *md = e2e_parse(v.json);
    nxc_op_t *a = NULL;
    CHECK_RC(kind == NXC_OP_READ ? nxc_begin_read(A, md, &d, 1, &a)
                                 : nxc_begin_write(A, &d, 1, md, &a), NXC_OK);
    nxc_metadata_free(md);
    nxc_op_t *ops[2] = { a, v.op };
    CHECK(e2e_drive_until_final(ops, 2, A, P, 10000) == 0, "legitimate transfer hangs");
    expect_status(v.op, NXC_OP_COMPLETE, "the legitimate transfer");
    uint8_t want = kind == NXC_OP_WRITE ? 0x44 : 0x33;
    CHECK(all_bytes(v.buf, BUF_SIZE, want), "legitimate transfer data wrong");
    hostile_t h;
    /* one name per incarnation: the victim caches peers by name and pid */
    hostile_open(&h, P, v.json, kind == NXC_OP_WRITE ? "replayer-w" : "replayer-r",
                 (uint32_t)getpid());
    refused_ctrl(&h, NXC_CTRL_ABORT | NXC_CTRL_FLAG_AM, v.key, "ABORT for a COMPLETE op");
    refused_ctrl(&h, NXC_CTRL_BEGIN | NXC_CTRL_FLAG_AM, v.key, "BEGIN for a COMPLETE op");
    refused_ctrl(&h, NXC_CTRL_DONE, v.key, "DONE for a COMPLETE op");
    if (kind == NXC_OP_WRITE) refused_data(&h, v.key, g_junk, BUF_SIZE, "data for a COMPLETE op");
    if (kind == NXC_OP_WRITE) refused_write(&h, v.key, "WRITE for a COMPLETE op");
    expect_status(v.op, NXC_OP_COMPLETE, "replays to a COMPLETE op");
    CHECK(all_bytes(v.buf, BUF_SIZE, want), "a replay changed a COMPLETE op's buffer");
    hostile_close(&h);
    nxc_op_release(a);
    free(mine);
    victim_close(&v);
}

static void released(nxc_connector_t *P)
{
    victim_op_t v;
    victim_open(&v, P, NXC_OP_WRITE, 0x55);
    nxc_op_release(v.op);
    v.op = NULL;
    hostile_t h;
    hostile_open(&h, P, v.json, "late", (uint32_t)getpid());
    refused_ctrl(&h, NXC_CTRL_BEGIN | NXC_CTRL_FLAG_AM, v.key, "BEGIN for a released op");
    refused_ctrl(&h, NXC_CTRL_DONE, v.key, "DONE for a released op");
    refused_data(&h, v.key, g_junk, BUF_SIZE, "data for a released op");
    refused_write(&h, v.key, "WRITE for a released op");
    CHECK(all_bytes(v.buf, BUF_SIZE, 0x55), "a released op's memory was written");
    hostile_close(&h);
    free(v.json);
    free(v.buf);
}

/* Each must be dropped and counted; ASan watches the decoding. */
static void malformed(nxc_connector_t *P)
{
    victim_op_t v;
    victim_open(&v, P, NXC_OP_WRITE, 0x66);
    hostile_t h;
    hostile_open(&h, P, v.json, "fuzzer", (uint32_t)getpid());
    uint8_t m[CTRL_FIXED_LEN + 64];
    memset(m, 0, sizeof m);
    m[0] = NXC_CTRL_DONE;
    m[1] = CTRL_VERSION;
    nxc_put_u16(m + 2, 3);
    memcpy(m + 32, v.key, NXC_KEY_BYTES);
    memcpy(m + CTRL_FIXED_LEN, "abc", 3);
    struct { const char *what; size_t len; void (*mutate)(uint8_t *); } cases[] = {
        { "an empty control message", 0, NULL },
        { "a control message cut short", 20, NULL },
        { "a control message without its name", CTRL_FIXED_LEN, NULL },
        { "a control message with trailing bytes", CTRL_FIXED_LEN + 9, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned long before = refused(P);
        CHECK(hostile_send(&h, NXC_AM_CTRL_ID, NULL, 0, m, cases[i].len, 0) == UCS_OK, "send");
        await_refusal(&h, before, cases[i].what);
    }
    uint8_t bad[sizeof m];
    struct { const char *what; size_t off; uint8_t val; } flips[] = {
        { "a control message of an unknown version", 1, 99 },
        { "a control message whose name is longer than the message", 2, 200 },
        { "a control message with a zero-length name", 2, 0 },
        { "a PULL BEGIN without a tag", 0, NXC_CTRL_BEGIN | NXC_CTRL_FLAG_PULL },
        { "a BEGIN without a tag", 0, NXC_CTRL_BEGIN },
        { "a control message of an unknown type", 0, 0x0f },
        { "a WRITE without a tag", 0, NXC_CTRL_WRITE | NXC_CTRL_FLAG_AM },
    };
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        memcpy(bad, m, sizeof m);
        bad[flips[i].off] = flips[i].val;
        if (flips[i].off == 2) bad[3] = 0;
        unsigned long before = refused(P);
        CHECK(hostile_send(&h, NXC_AM_CTRL_ID, NULL, 0, bad, CTRL_FIXED_LEN + 3, 0) == UCS_OK,
              "send");
        await_refusal(&h, before, flips[i].what);
    }
    uint8_t hdr[NXC_DATA_HDR + 4] = { 0 };
    memcpy(hdr, v.key, NXC_KEY_BYTES);
    size_t hdr_lens[3] = { 0, NXC_DATA_HDR - 1, NXC_DATA_HDR + 4 };
    for (int i = 0; i < 3; i++) {
        unsigned long before = refused(P);
        CHECK(hostile_send(&h, NXC_AM_DATA_ID, hdr, hdr_lens[i], g_junk, 64, 0) == UCS_OK, "send");
        await_refusal(&h, before, "a data message with a wrong header length");
    }
    /* right key and length, but the index, count or size is wrong */
    struct { uint32_t first, count; size_t len; const char *what; } idx[] = {
        { 1, 1, BUF_SIZE, "data for a descriptor that does not exist" },
        { 0, 2, BUF_SIZE, "data claiming two descriptors of one" },
        { 0, 0, BUF_SIZE, "data claiming zero descriptors" },
        { 0, 1, BUF_SIZE - 1, "data one byte short" },
        { UINT32_MAX, 2, BUF_SIZE, "data whose index overflows" },
    };
    for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++) {
        unsigned long before = refused(P);
        CHECK(send_data(&h, v.key, idx[i].first, idx[i].count, g_junk, idx[i].len, 0) == UCS_OK,
              "send");
        await_refusal(&h, before, idx[i].what);
    }
    /* WRITEs that no honest peer sends: dropped before they take the op */
    struct { uint8_t flags; size_t len; const char *what; } writes[] = {
        { 0, BUF_SIZE, "a WRITE without the AM flag" },
        { NXC_CTRL_FLAG_AM | NXC_CTRL_FLAG_PULL, BUF_SIZE, "a WRITE that asks to pull" },
        { NXC_CTRL_FLAG_AM, 0, "a WRITE without data" },
    };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        unsigned long before = refused(P);
        send_write(&h, writes[i].flags, v.key, g_junk, writes[i].len);
        await_refusal(&h, before, writes[i].what);
    }
    /* Address-less BEGINs and WRITEs from a worker we hold no endpoint to:
     * we could not answer them, so they are dropped before they take the
     * op (an honest sender sends them again with its address). */
    hostile_t stranger;
    hostile_open(&stranger, P, v.json, "stranger", (uint32_t)getpid());
    g_no_addr = 1;
    struct { uint8_t type_flags; const char *what; } addrless[] = {
        { NXC_CTRL_BEGIN | NXC_CTRL_FLAG_AM, "an address-less BEGIN from a stranger" },
        { NXC_CTRL_WRITE | NXC_CTRL_FLAG_AM, "an address-less WRITE from a stranger" },
    };
    for (size_t i = 0; i < sizeof addrless / sizeof addrless[0]; i++) {
        uint64_t before = P->unanswerable_begins;
        if ((addrless[i].type_flags & NXC_CTRL_TYPE_MASK) == NXC_CTRL_WRITE)
            send_write(&stranger, NXC_CTRL_FLAG_AM, v.key, g_junk, BUF_SIZE);
        else
            send_ctrl(&stranger, addrless[i].type_flags, v.key);
        double deadline = e2e_now_ms() + 10000;
        while (P->unanswerable_begins <= before) {
            ucp_worker_progress(stranger.w);
            nxc_connector_progress(P);
            CHECK(e2e_now_ms() < deadline, "%s: never dropped (10 s)", addrless[i].what);
        }
    }
    g_no_addr = 0;
    hostile_close(&stranger);
    victim_op_t readable;
    victim_open(&readable, P, NXC_OP_READ, 0x67);
    unsigned long before = refused(P);
    send_write(&h, NXC_CTRL_FLAG_AM, readable.key, g_junk, BUF_SIZE);
    await_refusal(&h, before, "a WRITE into a readable op");
    expect_status(readable.op, NXC_OP_INITIALIZED, "a readable op after a WRITE");
    CHECK(all_bytes(readable.buf, BUF_SIZE, 0x67), "a WRITE wrote into a readable op");
    victim_close(&readable);
    expect_status(v.op, NXC_OP_INITIALIZED, "after malformed messages");
    CHECK(all_bytes(v.buf, BUF_SIZE, 0x66), "a malformed message wrote into the buffer");
    /* none of them made its sender the owner: a well-formed BEGIN from
     * another worker is still accepted */
    hostile_t owner;
    hostile_open(&owner, P, v.json, "holder", (uint32_t)getppid());
    send_ctrl(&owner, NXC_CTRL_BEGIN | NXC_CTRL_FLAG_AM, v.key);
    settle(&owner, v.op, NXC_OP_IN_PROGRESS);
    expect_status(v.op, NXC_OP_IN_PROGRESS, "a BEGIN after malformed messages from another sender");
    hostile_close(&owner);
    hostile_close(&h);
    victim_close(&v);
}

/* An op's protocol is chosen once: the owner of an op it took by RMA (a
 * BEGIN without the AM flag) cannot then write into it by AM, data or
 * WRITE, whose state that op does not have; its DONE still completes it. */
static void one_protocol(nxc_connector_t *P)
{
    victim_op_t v;
    victim_open(&v, P, NXC_OP_WRITE, 0x77);
    hostile_t owner;
    hostile_open(&owner, P, v.json, "one-sided", (uint32_t)getpid());
    send_ctrl(&owner, NXC_CTRL_BEGIN, v.key);
    settle(&owner, v.op, NXC_OP_IN_PROGRESS);
    expect_status(v.op, NXC_OP_IN_PROGRESS, "after the owner's RMA BEGIN");
    refused_data(&owner, v.key, g_junk, BUF_SIZE, "AM data into an op taken by RMA");
    unsigned long before = refused(P);
    send_write(&owner, NXC_CTRL_FLAG_AM, v.key, g_junk, BUF_SIZE);
    await_refusal(&owner, before, "a WRITE into an op taken by RMA");
    expect_status(v.op, NXC_OP_IN_PROGRESS, "after AM messages into an op taken by RMA");
    CHECK(all_bytes(v.buf, BUF_SIZE, 0x77), "AM data wrote into an op taken by RMA");
    /* positive control: the owner's DONE completes it */
    send_ctrl(&owner, NXC_CTRL_DONE, v.key);
    settle(&owner, v.op, NXC_OP_COMPLETE);
    expect_status(v.op, NXC_OP_COMPLETE, "after the owner's DONE");
    hostile_close(&owner);
    victim_close(&v);
}

int main(void)
{
    e2e_init("e2e_spoof", 110);
    memset(g_junk, 0xEE, sizeof g_junk);
    nxc_connector_t *P = e2e_connector("victim");
    nxc_connector_t *A = e2e_connector("honest");
    e2e_step("1. wrong key");
    wrong_key(P);
    e2e_step("2. right key, second sender");
    second_sender(P);
    e2e_step("3. replays to a COMPLETE writable op");
    completed(P, A, NXC_OP_WRITE);
    e2e_step("3. replays to a COMPLETE readable op");
    completed(P, A, NXC_OP_READ);
    e2e_step("4. messages for a released op");
    released(P);
    e2e_step("5. malformed messages");
    malformed(P);
    e2e_step("6. one protocol per op");
    one_protocol(P);
    unsigned long n = refused(P);
    nxc_connector_destroy(A);
    nxc_connector_destroy(P);
    return e2e_pass("%lu forged or malformed messages refused; nothing completed or written", n);
}
