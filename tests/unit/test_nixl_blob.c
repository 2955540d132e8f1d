/* NIXL agent metadata: golden blobs captured from real NIXL and Dynamo
 * (tests/fixtures/nixl/, see its README) must parse to the regions NIXL
 * registered; hostile variants of them must fail cleanly.
 * argv[1] is the fixture folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "codec/metadata.h"
#include "codec/nixl_blob.h"
#include "common/encoding.h"
#include "common/error.h"

static const char *fixture_dir;

typedef struct bytes {
    uint8_t *p;
    size_t   n;
} bytes_t;

static bytes_t read_fixture(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fixture_dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open fixture %s", path);
    bytes_t b = { malloc(1 << 16), 0 };
    assert_non_null(b.p);
    b.n = fread(b.p, 1, 1 << 16, f);
    fclose(f);
    return b;
}

/* The {"addr": A, "len": L} files written next to the raw blobs. */
static void read_region(const char *name, uint64_t *addr, uint64_t *len)
{
    bytes_t b = read_fixture(name);
    char text[256] = "";
    memcpy(text, b.p, b.n < sizeof text - 1 ? b.n : sizeof text - 1);
    unsigned long long a = 0, l = 0;
    assert_int_equal(sscanf(text, "{\"addr\": %llu, \"len\": %llu}", &a, &l), 2);
    *addr = a;
    *len = l;
    free(b.p);
}

/* A Dynamo RdmaMetadata document around a blob: "b64:"+zlib or bare hex
 * of the zlib bytes, one descriptor [ptr, +size). Caller frees. */
static char *wrap_blob(const uint8_t *blob, size_t n, int hex, uint64_t ptr, uint64_t size,
                       const char *key)
{
    uLongf zlen = compressBound(n);
    uint8_t *z = malloc(zlen);
    assert_non_null(z);
    assert_int_equal(compress(z, &zlen, blob, n), Z_OK);
    size_t text_cap = 2 * zlen + 8;
    char *text = malloc(text_cap);
    assert_non_null(text);
    if (hex) {
        nxc_hex_encode(z, zlen, text);
    } else {
        memcpy(text, "b64:", 4);
        nxc_base64_encode(z, zlen, text + 4);
    }
    free(z);
    size_t cap = strlen(text) + 512;
    char *json = malloc(cap);
    assert_non_null(json);
    snprintf(json, cap,
             "{\"descriptors\":[{\"device\":\"cpu\",\"ptr\":%llu,\"size\":%llu}],"
             "\"nixl_metadata\":\"%s\",\"notification_key\":\"%s\",\"operation_kind\":1}",
             (unsigned long long)ptr, (unsigned long long)size, text, key);
    free(text);
    return json;
}

static const char *raw_fixtures[][2] = {
    { "nixl-agent-md-default-tls.bin", "nixl-agent-md-default-tls.region.json" },
    { "nixl-agent-md-tcp-eth0.bin", "nixl-agent-md-tcp-eth0.region.json" },
};

/* Each raw blob from nixl_agent.get_agent_metadata() decodes to the agent
 * name, a UCX worker address and the one region it registered. */
static void test_raw_fixtures_decode(void **state)
{
    (void)state;
    for (size_t f = 0; f < 2; f++) {
        bytes_t b = read_fixture(raw_fixtures[f][0]);
        uint64_t addr, len;
        read_region(raw_fixtures[f][1], &addr, &len);
        nxc_agent_blob_t out;
        if (nxc_nixl_blob_decode(b.p, b.n, &out) != NXC_OK)
            fail_msg("%s: %s", raw_fixtures[f][0], nxc_last_error());
        assert_int_equal(out.name_len, 9);
        assert_memory_equal(out.name, "nixl_peer", 9);
        assert_true(out.worker_addr_len > 16);
        assert_int_equal(out.n_regions, 1);
        assert_int_equal(out.regions[0].base, addr);
        assert_int_equal(out.regions[0].len, len);
        assert_true(out.regions[0].rkey_len > 0);
        free(out.regions);
        free(b.p);
    }
}

/* The raw blobs wrapped the way Dynamo does (and the older hex way) parse
 * through the public parser, and say they are NIXL's. */
static void test_raw_fixtures_parse_as_metadata(void **state)
{
    (void)state;
    for (size_t f = 0; f < 2; f++) {
        bytes_t b = read_fixture(raw_fixtures[f][0]);
        uint64_t addr, len;
        read_region(raw_fixtures[f][1], &addr, &len);
        for (int hex = 0; hex <= 1; hex++) {
            char *json = wrap_blob(b.p, b.n, hex, addr + 64, len - 64, "some key");
            nxc_metadata_t *md = NULL;
            if (nxc_metadata_parse(json, strlen(json), &md) != NXC_OK)
                fail_msg("%s (hex %d): %s", raw_fixtures[f][0], hex, nxc_last_error());
            assert_int_equal(nxc_metadata_wire(md), NXC_WIRE_NIXL);
            assert_string_equal(nxc_metadata_worker_name(md), "nixl_peer");
            assert_string_equal(nxc_metadata_notification_key(md), "some key");
            assert_int_equal(nxc_metadata_kind(md), NXC_OP_READ);
            nxc_metadata_free(md);
            /* One byte past the registered region is refused. */
            free(json);
            json = wrap_blob(b.p, b.n, hex, addr + 1, len, "k");
            assert_int_equal(nxc_metadata_parse(json, strlen(json), &md), NXC_ERR_BAD_METADATA);
            assert_non_null(strstr(nxc_last_error(), "not covered"));
            free(json);
        }
        free(b.p);
    }
}

/* WritableOperation.metadata() of a real Dynamo worker, as it came. */
static void test_dynamo_metadata_parses(void **state)
{
    (void)state;
    bytes_t doc = read_fixture("dynamo-writable-rdma-metadata.json");
    bytes_t blob = read_fixture("dynamo-writable-agent-md.bin");
    nxc_metadata_t *md = NULL;
    if (nxc_metadata_parse((const char *)doc.p, doc.n, &md) != NXC_OK)
        fail_msg("%s", nxc_last_error());
    assert_int_equal(nxc_metadata_wire(md), NXC_WIRE_NIXL);
    assert_int_equal(nxc_metadata_kind(md), NXC_OP_WRITE);
    assert_string_equal(nxc_metadata_notification_key(md),
                        "e62b03db-9091-48a5-850b-890ea72e19b4");
    assert_int_equal(nxc_metadata_descriptor_count(md), 1);
    nxc_descriptor_t d;
    assert_int_equal(nxc_metadata_descriptor(md, 0, &d), NXC_OK);
    assert_int_equal((uintptr_t)d.ptr, 139758236712304ull);
    assert_int_equal(d.size, 64);
    assert_int_equal(d.device.kind, NXC_DEVICE_HOST);
    /* The blob inside is byte for byte the captured one. */
    assert_int_equal(md->blob_buf_len, blob.n);
    assert_memory_equal(md->blob_buf, blob.p, blob.n);
    assert_true(md->blob.n_regions >= 1);
    assert_string_equal(nxc_metadata_worker_name(md),
                        "3d75f24a7815499b959dafc3e172aba5-1");
    nxc_metadata_free(md);
    free(doc.p);
    free(blob.p);
}

/* Our own metadata still says it is ours, and still wants a hex key. */
static void test_keys_by_wire(void **state)
{
    (void)state;
    bytes_t b = read_fixture(raw_fixtures[1][0]);
    uint64_t addr, len;
    read_region(raw_fixtures[1][1], &addr, &len);
    const char *bad[] = { "", "tab\there", "del\x7f" };
    for (size_t i = 0; i < 3; i++) {
        char *json = wrap_blob(b.p, b.n, 0, addr, 8, bad[i]);
        nxc_metadata_t *md = NULL;
        assert_int_equal(nxc_metadata_parse(json, strlen(json), &md), NXC_ERR_BAD_METADATA);
        assert_non_null(strstr(nxc_last_error(), "notification_key"));
        free(json);
    }
    free(b.p);
}

/* Every strict prefix of a real blob fails with a detail, never a crash. */
static void test_every_truncation_fails(void **state)
{
    (void)state;
    for (size_t f = 0; f < 2; f++) {
        bytes_t b = read_fixture(raw_fixtures[f][0]);
        for (size_t n = 0; n < b.n; n++) {
            uint8_t *copy = malloc(n > 0 ? n : 1); /* exact size: ASan sees over-reads */
            memcpy(copy, b.p, n);
            nxc_agent_blob_t out;
            assert_int_equal(nxc_nixl_blob_decode(copy, n, &out), NXC_ERR_BAD_METADATA);
            assert_true(nxc_last_error()[0] != '\0');
            free(copy);
        }
        free(b.p);
    }
}

/* Offset of the first occurrence of tag+length field in the blob. */
static size_t find(const bytes_t *b, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= b->n; i++)
        if (memcmp(b->p + i, s, n) == 0)
            return i;
    fail_msg("fixture has no \"%s\"", s);
    return 0;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void expect_refused(const bytes_t *b, const char *why, const char *detail)
{
    nxc_agent_blob_t out;
    int rc = nxc_nixl_blob_decode(b->p, b->n, &out);
    if (rc != NXC_ERR_BAD_METADATA)
        fail_msg("%s: got %d, expected BAD_METADATA", why, rc);
    if (strstr(nxc_last_error(), detail) == NULL)
        fail_msg("%s: detail \"%s\" lacks \"%s\"", why, nxc_last_error(), detail);
}

/* Hostile edits of a real blob: absurd counts, lengths and tags. */
static void test_hostile_edits(void **state)
{
    (void)state;
    bytes_t orig = read_fixture(raw_fixtures[1][0]);
    bytes_t b = { malloc(orig.n + 1), orig.n };
    /* Each edit overwrites 8 bytes at `delta` past the first `anchor`. */
    struct {
        const char *anchor;
        size_t      delta;
        uint64_t    v;
        const char *detail;
    } edits[] = {
        { "Conns", 5 + 8, 1ull << 40, "backend connections" },
        { "Conns", 5 + 8, 0, "backend connections" },
        { "Conns", 5, 4, "\"Conns\"" },
        { "Agent", 5, UINT64_MAX, "claims" },
        { "Agent", 5, 0, "\"Agent\"" },
        { "nixlSecElms", 11 + 8, 1ull << 62, "sections cannot fit" },
        { "|n\x08", 2, 1ull << 60, "claims" },
        { "|n\x08", 10, 1ull << 60, "regions" },
        { "|n\x08", 10, 0, "no regions" },
        { "|t\x04", 2, 1ull << 32, "claims" },
        { "c(", 1, 1ull << 20, "claims" },
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(b.p, orig.p, orig.n);
        put_le64(b.p + find(&b, edits[i].anchor) + edits[i].delta, edits[i].v);
        expect_refused(&b, edits[i].anchor, edits[i].detail);
    }
    /* A wrong tag, a missing '|', trailing garbage, no UCX backend. */
    memcpy(b.p, orig.p, orig.n);
    b.p[find(&b, "nixlSecElms")] = 'N';
    expect_refused(&b, "wrong tag", "expected record \"nixlSecElms\"");
    memcpy(b.p, orig.p, orig.n);
    b.p[find(&b, "|Conns")] = '#';
    expect_refused(&b, "no '|'", "does not end in '|'");
    memcpy(b.p, orig.p, orig.n);
    b.p[orig.n] = 'x';
    b.n = orig.n + 1;
    expect_refused(&b, "garbage", "trailing garbage");
    b.n = orig.n;
    memcpy(b.p, orig.p, orig.n);
    memcpy(b.p + find(&b, "UCX|c"), "UCY", 3);
    expect_refused(&b, "no UCX", "no UCX backend");
    free(b.p);
    free(orig.p);
}

/* What we publish for NIXL peers decodes back to what we put in, and a
 * real blob re-encoded from its decoding is the same bytes (one UCX
 * connection, one DRAM section: what a one-backend NIXL agent writes). */
static void test_encode_round_trip(void **state)
{
    (void)state;
    for (size_t f = 0; f < 2; f++) {
        bytes_t b = read_fixture(raw_fixtures[f][0]);
        nxc_agent_blob_t dec;
        assert_int_equal(nxc_nixl_blob_decode(b.p, b.n, &dec), NXC_OK);
        uint8_t *enc = NULL;
        size_t enc_len = 0;
        assert_int_equal(nxc_nixl_blob_encode(&dec, &enc, &enc_len), NXC_OK);
        assert_int_equal(enc_len, b.n);
        assert_memory_equal(enc, b.p, b.n);
        free(enc);
        free(dec.regions);
        free(b.p);
    }
}


/* UCX 1.13's 0-byte placeholder entries leave the packed rkey; the other
 * entries, the memory type and the tail stay as they were. */
static void test_rkey_strip(void **state)
{
    (void)state;
    /* md_map bits 0, 2, 5: sizes 3, 0, 2; memory type 7; 2 tail bytes. */
    const uint8_t in[] = { 0x25, 0, 0, 0, 0, 0, 0, 0, 7, 3, 0xa1, 0xa2, 0xa3, 0,
                           2, 0xb1, 0xb2, 0xee, 0xff };
    const uint8_t want[] = { 0x21, 0, 0, 0, 0, 0, 0, 0, 7, 3, 0xa1, 0xa2, 0xa3,
                             2, 0xb1, 0xb2, 0xee, 0xff };
    uint8_t out[sizeof in];
    size_t out_len = 0;
    assert_int_equal(nxc_nixl_rkey_strip(in, sizeof in, out, &out_len), NXC_OK);
    assert_int_equal(out_len, sizeof want);
    assert_memory_equal(out, want, sizeof want);
    /* An entry that claims more bytes than there are is refused. */
    assert_int_equal(nxc_nixl_rkey_strip(in, 15, out, &out_len), NXC_ERR_TRANSPORT);
    assert_int_equal(nxc_nixl_rkey_strip(in, 8, out, &out_len), NXC_ERR_TRANSPORT);
}

/* The notification is byte for byte what NIXL's buildNotif() makes, and
 * its decoder refuses every truncation. */
static void test_notification(void **state)
{
    (void)state;
    static const uint8_t want[] = "nixlSerDes|name\x05\0\0\0\0\0\0\0agent|"
                                  "msg\x03\0\0\0\0\0\0\0key|";
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(nxc_nixl_notif_encode("agent", 5, "key", 3, &buf, &len), NXC_OK);
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(buf, want, len);
    const char *name = NULL, *msg = NULL;
    size_t name_len = 0, msg_len = 0;
    assert_int_equal(nxc_nixl_notif_decode(buf, len, &name, &name_len, &msg, &msg_len), NXC_OK);
    assert_int_equal(name_len, 5);
    assert_memory_equal(name, "agent", 5);
    assert_int_equal(msg_len, 3);
    assert_memory_equal(msg, "key", 3);
    for (size_t n = 0; n < len; n++)
        assert_int_equal(nxc_nixl_notif_decode(buf, n, &name, &name_len, &msg, &msg_len),
                         NXC_ERR_BAD_METADATA);
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    fixture_dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_fixtures_decode),
        cmocka_unit_test(test_raw_fixtures_parse_as_metadata),
        cmocka_unit_test(test_dynamo_metadata_parses),
        cmocka_unit_test(test_keys_by_wire),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_hostile_edits),
        cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_rkey_strip),
        cmocka_unit_test(test_notification),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
