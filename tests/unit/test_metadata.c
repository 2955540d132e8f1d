/* The metadata codec: the agent blob, the JSON text and its strict parser. */
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
#include "common/encoding.h"
#include "common/error.h"

/* ---- fixtures --------------------------------------------------------- */

#define BASE      0x7f0000100000ull /* where the fake remote buffers start */
#define DESC_SIZE 4096u

static const uint8_t test_key[NXC_KEY_BYTES] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
                                                 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
                                                 0xcc, 0xdd, 0xee, 0xff };
#define TEST_KEY_HEX "00112233445566778899aabbccddeeff"

static uint8_t fake_addr[300];
static uint8_t fake_rkey[2][40];
static nxc_region_t fake_regions[2];

/* A blob with fake worker address and rkeys: region 0 covers the n
 * descriptors laid out from BASE, region 1 is elsewhere. */
static nxc_agent_blob_t make_blob(size_t n_descs, uint32_t n_regions)
{
    for (size_t i = 0; i < sizeof fake_addr; i++)
        fake_addr[i] = (uint8_t)(i * 7 + 1);
    for (size_t r = 0; r < 2; r++)
        for (size_t i = 0; i < sizeof fake_rkey[r]; i++)
            fake_rkey[r][i] = (uint8_t)(0xa0 + r + i);
    fake_regions[0] = (nxc_region_t){ BASE, (uint64_t)n_descs * DESC_SIZE, 0, fake_rkey[0],
                                      sizeof fake_rkey[0] };
    fake_regions[1] = (nxc_region_t){ 0x10000, 0x2000, NXC_REGION_UCX_ALLOCATED, fake_rkey[1],
                                      sizeof fake_rkey[1] - 3 };
    nxc_agent_blob_t b = {
        .name = "worker-7",
        .name_len = 8,
        .identity = { .pid = 4242, .pidns = 0xeffffffcull, .host_id = { 1, 2, 3, 4, 5, 6, 7, 8,
                                                                          9, 10, 11, 12, 13, 14,
                                                                          15, 16 } },
        .worker_addr = fake_addr,
        .worker_addr_len = sizeof fake_addr,
        .n_regions = n_regions,
        .regions = n_regions > 0 ? fake_regions : NULL,
    };
    return b;
}

/* n CPU descriptors, back to back from BASE. Caller frees. */
static nxc_descriptor_t *make_descs(size_t n)
{
    nxc_descriptor_t *d = calloc(n, sizeof *d);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++)
        d[i] = (nxc_descriptor_t){ (void *)(uintptr_t)(BASE + i * DESC_SIZE), DESC_SIZE,
                                   { NXC_DEVICE_HOST, 0 } };
    return d;
}

/* A valid document with n descriptors. Caller frees. */
static char *make_doc(nxc_op_kind_t kind, size_t n, size_t *len)
{
    nxc_descriptor_t *d = make_descs(n);
    nxc_agent_blob_t b = make_blob(n, 2);
    char *json = NULL;
    int rc = nxc_metadata_encode(kind, test_key, d, n, &b, &json, len);
    if (rc != NXC_OK)
        fail_msg("encode: %s", nxc_last_error());
    free(d);
    return json;
}

/* "b64:" + base64(zlib(bytes)). Caller frees. */
static char *nixl_text_of(const uint8_t *bytes, size_t n)
{
    uLongf zlen = compressBound((uLong)n);
    uint8_t *z = malloc(zlen);
    assert_non_null(z);
    assert_int_equal(compress2(z, &zlen, bytes, (uLong)n, 6), Z_OK);
    char *text = malloc(4 + nxc_base64_encoded_len(zlen) + 1);
    assert_non_null(text);
    memcpy(text, "b64:", 4);
    nxc_base64_encode(z, zlen, text + 4);
    free(z);
    return text;
}

/* The encoded bytes of the standard one-descriptor blob. Caller frees. */
static uint8_t *blob_bytes(uint32_t n_regions, size_t *len)
{
    nxc_agent_blob_t b = make_blob(1, n_regions);
    uint8_t *raw;
    assert_int_equal(nxc_blob_encode(&b, &raw, len), NXC_OK);
    return raw;
}

/* The zlib bytes inside a document's "b64:" nixl_metadata. Caller frees. */
static uint8_t *zlib_in(const char *json, size_t *zlen)
{
    const char *b64 = strstr(json, "\"nixl_metadata\":\"b64:");
    assert_non_null(b64);
    b64 += strlen("\"nixl_metadata\":\"b64:");
    size_t b64_len = (size_t)(strchr(b64, '"') - b64);
    uint8_t *z = malloc(nxc_base64_decoded_max(b64_len));
    assert_non_null(z);
    nxc_decode_error_t err;
    assert_true(nxc_base64_decode(b64, b64_len, z, zlen, &err));
    return z;
}

static void check_inflates_to(const uint8_t *z, size_t zlen, const uint8_t *raw, size_t raw_len)
{
    uint8_t *back = malloc(raw_len);
    assert_non_null(back);
    uLongf back_len = raw_len;
    assert_int_equal(uncompress(back, &back_len, z, zlen), Z_OK);
    assert_int_equal(back_len, raw_len);
    assert_memory_equal(back, raw, raw_len);
    free(back);
}

/* A one-descriptor document around the given nixl_metadata text. */
static char *doc_with_nixl(const char *nixl)
{
    static const char fmt[] =
        "{\"descriptors\":[{\"device\":\"cpu\",\"ptr\":%llu,\"size\":4096}],"
        "\"nixl_metadata\":\"%s\",\"notification_key\":\"" TEST_KEY_HEX "\","
        "\"operation_kind\":1}";
    size_t cap = sizeof fmt + 32 + strlen(nixl);
    char *doc = malloc(cap);
    assert_non_null(doc);
    snprintf(doc, cap, fmt, (unsigned long long)BASE, nixl);
    return doc;
}

/* Parses exactly len bytes from a heap copy of that size, so ASan sees any
 * read past the end. */
static int parse_exact(const char *text, size_t len, nxc_metadata_t **out)
{
    char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    int rc = nxc_metadata_parse(copy, len, out);
    free(copy);
    return rc;
}

static void expect_failure(const char *label, int rc, int code, const char *substr)
{
    if (rc != code)
        fail_msg("%s: got %d, expected %d (detail: %s)", label, rc, code, nxc_last_error());
    if (substr != NULL && strstr(nxc_last_error(), substr) == NULL)
        fail_msg("%s: detail \"%s\" lacks \"%s\"", label, nxc_last_error(), substr);
}

static void expect_bad(const char *label, const char *doc, const char *substr)
{
    nxc_metadata_t *md = (nxc_metadata_t *)(uintptr_t)1; /* must stay untouched */
    int rc = parse_exact(doc, strlen(doc), &md);
    expect_failure(label, rc, NXC_ERR_BAD_METADATA, substr);
    assert_ptr_equal(md, (nxc_metadata_t *)(uintptr_t)1);
}

static nxc_metadata_t *expect_good(const char *label, const char *doc, size_t len)
{
    nxc_metadata_t *md = NULL;
    int rc = parse_exact(doc, len, &md);
    if (rc != NXC_OK)
        fail_msg("%s: parse failed: %s", label, nxc_last_error());
    assert_non_null(md);
    return md;
}

/* ---- round trips ------------------------------------------------------ */

static void check_round_trip(nxc_op_kind_t kind, size_t n)
{
    size_t len;
    char *json = make_doc(kind, n, &len);
    assert_int_equal(strlen(json), len);
    nxc_metadata_t *md = expect_good("round trip", json, len);
    assert_string_equal(nxc_last_error(), ""); /* success leaves no detail */

    assert_int_equal(nxc_metadata_kind(md), kind);
    assert_string_equal(nxc_metadata_notification_key(md), TEST_KEY_HEX);
    assert_memory_equal(md->key, test_key, NXC_KEY_BYTES);
    assert_string_equal(nxc_metadata_worker_name(md), "worker-7");
    assert_int_equal(nxc_metadata_descriptor_count(md), n);
    for (size_t i = 0; i < n; i++) {
        nxc_descriptor_t d;
        assert_int_equal(nxc_metadata_descriptor(md, i, &d), NXC_OK);
        assert_int_equal((uintptr_t)d.ptr, BASE + i * DESC_SIZE);
        assert_int_equal(d.size, DESC_SIZE);
        assert_int_equal(d.device.kind, NXC_DEVICE_HOST);
        assert_int_equal(d.device.id, 0);
    }
    nxc_descriptor_t d;
    assert_int_equal(nxc_metadata_descriptor(md, n, &d), NXC_ERR_INVALID_ARG);

    const nxc_agent_blob_t *b = &md->blob;
    assert_int_equal(b->identity.pid, 4242);
    assert_int_equal(b->identity.pidns, 0xeffffffcull);
    assert_int_equal(b->identity.host_id[0], 1);
    assert_int_equal(b->identity.host_id[15], 16);
    assert_int_equal(b->worker_addr_len, sizeof fake_addr);
    assert_memory_equal(b->worker_addr, fake_addr, sizeof fake_addr);
    assert_int_equal(b->n_regions, 2);
    assert_int_equal(b->regions[0].base, BASE);
    assert_int_equal(b->regions[0].len, n * DESC_SIZE);
    assert_int_equal(b->regions[0].flags, 0);
    assert_int_equal(b->regions[0].rkey_len, sizeof fake_rkey[0]);
    assert_memory_equal(b->regions[0].rkey, fake_rkey[0], sizeof fake_rkey[0]);
    assert_int_equal(b->regions[1].base, 0x10000);
    assert_int_equal(b->regions[1].flags, NXC_REGION_UCX_ALLOCATED);
    assert_int_equal(b->regions[1].rkey_len, sizeof fake_rkey[1] - 3);
    assert_memory_equal(b->regions[1].rkey, fake_rkey[1], sizeof fake_rkey[1] - 3);
    nxc_metadata_free(md);
    free(json);
}

static void test_round_trip_1(void **state)
{
    (void)state;
    check_round_trip(NXC_OP_READ, 1);
}

static void test_round_trip_3(void **state)
{
    (void)state;
    check_round_trip(NXC_OP_WRITE, 3);
}

static void test_round_trip_4096(void **state)
{
    (void)state;
    check_round_trip(NXC_OP_READ, 4096);
}

/* The text is byte for byte what pydantic's model_dump_json() writes. */
static void test_encoding_is_dynamos(void **state)
{
    (void)state;
    nxc_descriptor_t d[2] = {
        { (void *)(uintptr_t)BASE, 4096, { NXC_DEVICE_CUDA, 1 } },
        { (void *)(uintptr_t)(BASE + 4096), 0, { NXC_DEVICE_CUDA, 1 } },
    };
    nxc_agent_blob_t b = make_blob(1, 1);
    char *json;
    size_t len;
    assert_int_equal(nxc_metadata_encode(NXC_OP_WRITE, test_key, d, 2, &b, &json, &len),
                     NXC_OK);
    const char *head = "{\"descriptors\":[{\"device\":\"cuda:1\",\"ptr\":139637977776128,"
                       "\"size\":4096},{\"device\":\"cuda:1\",\"ptr\":139637977780224,"
                       "\"size\":0}],\"nixl_metadata\":\"b64:";
    const char *tail = "\",\"notification_key\":\"" TEST_KEY_HEX "\",\"operation_kind\":2}";
    assert_int_equal(strncmp(json, head, strlen(head)), 0);
    assert_string_equal(json + len - strlen(tail), tail);

    /* and the base64 carries zlib(blob) */
    size_t raw_len, zlen;
    uint8_t *raw = blob_bytes(1, &raw_len);
    uint8_t *z = zlib_in(json, &zlen);
    check_inflates_to(z, zlen, raw, raw_len);
    free(z);
    free(raw);
    free(json);
}

/* A blob of a few regions is stored (zlib level 0: compressing it cost more
 * than the rest of creating the op); a large one is compressed. Either way
 * any inflate reads it back. */
static void test_small_blobs_stored_large_compressed(void **state)
{
    (void)state;
    static uint8_t big_addr[8192];
    for (size_t i = 0; i < sizeof big_addr; i++)
        big_addr[i] = (uint8_t)(i % 61);
    for (int large = 0; large <= 1; large++) {
        nxc_descriptor_t *d = make_descs(1);
        nxc_agent_blob_t b = make_blob(1, 2);
        if (large) {
            b.worker_addr = big_addr;
            b.worker_addr_len = sizeof big_addr;
        }
        uint8_t *raw;
        size_t raw_len, zlen, json_len;
        char *json;
        assert_int_equal(nxc_blob_encode(&b, &raw, &raw_len), NXC_OK);
        assert_int_equal(nxc_metadata_encode(NXC_OP_READ, test_key, d, 1, &b, &json, &json_len),
                         NXC_OK);
        uint8_t *z = zlib_in(json, &zlen);
        check_inflates_to(z, zlen, raw, raw_len);
        int first_block_stored = (z[2] & 0x06) == 0; /* BTYPE 00 after the 2-byte header */
        if (large) {
            assert_false(first_block_stored);
            assert_true(zlen < raw_len / 4);
        } else {
            assert_true(first_block_stored);
            assert_true(zlen > raw_len);
        }
        free(z);
        free(raw);
        free(json);
        free(d);
    }
}

/* Older Dynamo writes nixl_metadata as bare hex of the zlib bytes. */
static void test_dynamo_hex_form(void **state)
{
    (void)state;
    size_t raw_len;
    uint8_t *raw = blob_bytes(1, &raw_len);
    char *b64 = nixl_text_of(raw, raw_len);
    size_t b64_len = strlen(b64 + 4);
    uint8_t *z = malloc(nxc_base64_decoded_max(b64_len));
    size_t zlen;
    nxc_decode_error_t err;
    assert_true(nxc_base64_decode(b64 + 4, b64_len, z, &zlen, &err));
    char *hex = malloc(2 * zlen + 1);
    nxc_hex_encode(z, zlen, hex);

    char *doc = doc_with_nixl(hex);
    nxc_metadata_t *md = expect_good("hex form", doc, strlen(doc));
    assert_string_equal(nxc_metadata_worker_name(md), "worker-7");
    assert_int_equal(nxc_metadata_kind(md), NXC_OP_READ);
    nxc_metadata_free(md);
    free(doc);

    /* upper-case hex too, as bytes.fromhex() accepts it */
    for (char *c = hex; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    doc = doc_with_nixl(hex);
    md = expect_good("upper hex form", doc, strlen(doc));
    nxc_metadata_free(md);
    free(doc);

    /* odd length and non-hex */
    hex[2 * zlen - 1] = '\0';
    doc = doc_with_nixl(hex);
    expect_bad("odd hex", doc, "odd number of hex digits");
    free(doc);
    hex[0] = 'g';
    hex[2 * zlen - 2] = '\0';
    doc = doc_with_nixl(hex);
    expect_bad("non-hex", doc, "not a hex digit at offset 0");
    free(doc);

    free(hex);
    free(z);
    free(b64);
    free(raw);
}

/* White space between tokens, keys in any order, escapes in strings. */
static void test_lenient_where_json_is(void **state)
{
    (void)state;
    size_t raw_len;
    uint8_t *raw = blob_bytes(1, &raw_len);
    char *nixl = nixl_text_of(raw, raw_len);
    char doc[2048];
    snprintf(doc, sizeof doc,
             " \r\n\t{ \"operation_kind\" : 1 ,\n \"notification_key\":\"" TEST_KEY_HEX "\","
             "\"nixl_metadata\" :\"%s\", \"descriptors\" : [ { \"size\" : 0 , "
             "\"p\\u0074r\": 99, \"device\": \"\\u0063\\u0050u\" } , {\"device\":\" HOST \","
             "\"ptr\":%llu,\"size\":4096}]}\n\n",
             nixl, (unsigned long long)BASE);
    nxc_metadata_t *md = expect_good("spaced", doc, strlen(doc));
    assert_int_equal(nxc_metadata_descriptor_count(md), 2);
    nxc_descriptor_t d;
    assert_int_equal(nxc_metadata_descriptor(md, 0, &d), NXC_OK);
    /* size 0 moves nothing, so need not lie in a region */
    assert_int_equal((uintptr_t)d.ptr, 99);
    assert_int_equal(d.size, 0);
    assert_int_equal(d.device.kind, NXC_DEVICE_HOST);
    nxc_metadata_free(md);
    free(nixl);
    free(raw);
}

static void test_accessors_accept_null(void **state)
{
    (void)state;
    nxc_metadata_free(NULL);
    assert_int_equal(nxc_metadata_kind(NULL), NXC_OP_KIND_UNSPECIFIED);
    assert_string_equal(nxc_metadata_notification_key(NULL), "");
    assert_string_equal(nxc_metadata_worker_name(NULL), "");
    assert_int_equal(nxc_metadata_descriptor_count(NULL), 0);
    nxc_descriptor_t d;
    assert_int_equal(nxc_metadata_descriptor(NULL, 0, &d), NXC_ERR_INVALID_ARG);
    nxc_metadata_t *md;
    assert_int_equal(nxc_metadata_parse(NULL, 3, &md), NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_metadata_parse("{}", 2, NULL), NXC_ERR_INVALID_ARG);
}

/* ---- malformed documents ---------------------------------------------- */

/* Every proper prefix of a valid document must fail cleanly. */
static void test_every_prefix_fails(void **state)
{
    (void)state;
    size_t len;
    char *json = make_doc(NXC_OP_WRITE, 3, &len);
    for (size_t k = 0; k < len; k++) {
        nxc_metadata_t *md = NULL;
        int rc = parse_exact(json, k, &md);
        if (rc != NXC_ERR_BAD_METADATA)
            fail_msg("prefix of %zu bytes: got %d (%s)", k, rc, nxc_last_error());
        assert_null(md);
        assert_true(strlen(nxc_last_error()) > 0);
    }
    nxc_metadata_t *md = expect_good("whole", json, len);
    nxc_metadata_free(md);
    free(json);
}

typedef struct bad_case {
    const char *label;
    const char *doc; /* "@N@" stands for a valid nixl_metadata text */
    const char *detail;
} bad_case_t;

#define P  "\"ptr\":139637977776128"
#define D  "{\"device\":\"cpu\"," P ",\"size\":4096}"
#define K  "\"notification_key\":\"" TEST_KEY_HEX "\""
#define N  "\"nixl_metadata\":\"@N@\""
#define DS "\"descriptors\":[" D "]"

static const bad_case_t bad_cases[] = {
    { "not an object", "[" DS "]", "metadata: expected an object, found an array at offset 0" },
    { "empty object", "{}", "missing field \"descriptors\"" },
    { "empty text", "", "empty" },
    { "only space", "   ", "expected an object, found the end of the text" },
    { "extra field", "{" DS "," N "," K ",\"operation_kind\":1,\"extra\":1}",
      "unknown field \"extra\"" },
    { "missing kind", "{" DS "," N "," K "}", "missing field \"operation_kind\"" },
    { "missing key", "{" DS "," N ",\"operation_kind\":1}", "missing field \"notification_key\"" },
    { "missing nixl", "{" DS "," K ",\"operation_kind\":1}", "missing field \"nixl_metadata\"" },
    { "duplicate kind", "{" DS "," N "," K ",\"operation_kind\":1,\"operation_kind\":1}",
      "duplicate field \"operation_kind\"" },
    { "duplicate descriptors", "{" DS "," DS "," N "," K ",\"operation_kind\":1}",
      "duplicate field \"descriptors\"" },
    { "trailing comma", "{" DS "," N "," K ",\"operation_kind\":1,}",
      "expected a string, found '}'" },
    { "missing colon", "{" DS "," N "," K ",\"operation_kind\" 1}", "expected ':'" },
    { "missing comma", "{" DS " " N "," K ",\"operation_kind\":1}", "expected ',' or '}'" },
    { "trailing garbage", "{" DS "," N "," K ",\"operation_kind\":1} x", "trailing garbage ('x')" },
    { "two objects", "{" DS "," N "," K ",\"operation_kind\":1}{}", "trailing garbage" },
    { "kind 0", "{" DS "," N "," K ",\"operation_kind\":0}", "operation_kind 0 is neither" },
    { "kind 3", "{" DS "," N "," K ",\"operation_kind\":3}", "operation_kind 3 is neither" },
    { "kind -1", "{" DS "," N "," K ",\"operation_kind\":-1}", "operation_kind -1 is neither" },
    { "kind string", "{" DS "," N "," K ",\"operation_kind\":\"1\"}",
      "operation_kind: expected an integer, found a string" },
    { "kind array", "{" DS "," N "," K ",\"operation_kind\":[1]}",
      "operation_kind: expected an integer, found an array" },
    { "kind true", "{" DS "," N "," K ",\"operation_kind\":true}", "found a boolean" },
    { "kind null", "{" DS "," N "," K ",\"operation_kind\":null}", "found null" },
    { "kind float", "{" DS "," N "," K ",\"operation_kind\":1.0}", "fraction or exponent" },
    { "kind exponent", "{" DS "," N "," K ",\"operation_kind\":1e0}", "fraction or exponent" },
    { "kind plus", "{" DS "," N "," K ",\"operation_kind\":+1}", "found '+'" },
    { "kind leading zero", "{" DS "," N "," K ",\"operation_kind\":01}", "leading zero" },
    { "kind bare minus", "{" DS "," N "," K ",\"operation_kind\":-}", "'-' without digits" },
    { "kind huge", "{" DS "," N "," K ",\"operation_kind\":18446744073709551617}",
      "does not fit in 64 bits" },
    { "descriptors object", "{\"descriptors\":" D "," N "," K ",\"operation_kind\":1}",
      "descriptors: expected an array, found an object" },
    { "descriptors string", "{\"descriptors\":\"x\"," N "," K ",\"operation_kind\":1}",
      "descriptors: expected an array, found a string" },
    { "descriptors empty", "{\"descriptors\":[]," N "," K ",\"operation_kind\":1}",
      "descriptors: the list is empty" },
    { "descriptor not object", "{\"descriptors\":[1]," N "," K ",\"operation_kind\":1}",
      "descriptor 0: expected an object, found a number" },
    { "descriptor trailing comma", "{\"descriptors\":[" D ",]," N "," K ",\"operation_kind\":1}",
      "descriptor 1: expected an object" },
    { "descriptors unclosed", "{\"descriptors\":[" D "," N "," K ",\"operation_kind\":1}",
      "descriptor 1: expected an object, found a string" },
    { "ptr string", "{\"descriptors\":[{\"device\":\"cpu\",\"ptr\":\"1\",\"size\":1}]," N "," K
      ",\"operation_kind\":1}",
      "descriptor 0: ptr: expected an integer, found a string" },
    { "ptr 0", "{\"descriptors\":[{\"device\":\"cpu\",\"ptr\":0,\"size\":1}]," N "," K
      ",\"operation_kind\":1}",
      "descriptor 0: ptr 0 is refused" },
    { "ptr negative", "{\"descriptors\":[{\"device\":\"cpu\",\"ptr\":-4096,\"size\":1}]," N "," K
      ",\"operation_kind\":1}",
      "descriptor 0: ptr -4096 is negative" },
    { "negative size", "{\"descriptors\":[" D "," D ",{\"device\":\"cpu\"," P ",\"size\":-5}]," N
      "," K ",\"operation_kind\":1}",
      "descriptor 2: size -5 is negative" },
    { "float size", "{\"descriptors\":[{\"device\":\"cpu\"," P ",\"size\":4096.0}]," N "," K
      ",\"operation_kind\":1}",
      "descriptor 0: size: expected an integer, found a number with a fraction or exponent" },
    { "size overflow", "{\"descriptors\":[{\"device\":\"cpu\"," P ",\"size\":99999999999999999999}]," N
      "," K ",\"operation_kind\":1}",
      "descriptor 0: size: integer does not fit in 64 bits" },
    { "ptr+size wraps", "{\"descriptors\":[{\"device\":\"cpu\",\"ptr\":18446744073709551615,"
      "\"size\":2}]," N "," K ",\"operation_kind\":1}",
      "wraps around the address space" },
    { "size object", "{\"descriptors\":[{\"device\":\"cpu\"," P ",\"size\":{}}]," N "," K
      ",\"operation_kind\":1}",
      "descriptor 0: size: expected an integer, found an object" },
    { "device number", "{\"descriptors\":[{\"device\":1," P ",\"size\":1}]," N "," K
      ",\"operation_kind\":1}",
      "descriptor 0: device: expected a string, found a number" },
    { "bad device", "{\"descriptors\":[{\"device\":\"tpu:0\"," P ",\"size\":1}]," N "," K
      ",\"operation_kind\":1}",
      "descriptor 0: device \"tpu:0\" is not" },
    { "device cuda:", "{\"descriptors\":[{\"device\":\"cuda:\"," P ",\"size\":1}]," N "," K
      ",\"operation_kind\":1}",
      "device \"cuda:\"" },
    { "mixed devices", "{\"descriptors\":[" D ",{\"device\":\"cuda:0\"," P ",\"size\":1}]," N "," K
      ",\"operation_kind\":1}",
      "descriptor 1: device \"cuda:0\" is not of the same kind as descriptor 0's \"cpu\"" },
    { "descriptor missing size", "{\"descriptors\":[{\"device\":\"cpu\"," P "}]," N "," K
      ",\"operation_kind\":1}",
      "descriptor 0: missing field \"size\"" },
    { "descriptor extra field", "{\"descriptors\":[{\"device\":\"cpu\"," P ",\"size\":1,\"x\":1}],"
      N "," K ",\"operation_kind\":1}",
      "descriptor 0: unknown field \"x\"" },
    { "descriptor duplicate field", "{\"descriptors\":[{\"device\":\"cpu\"," P "," P
      ",\"size\":1}]," N "," K ",\"operation_kind\":1}",
      "descriptor 0: duplicate field \"ptr\"" },
    { "not covered", "{\"descriptors\":[" D ",{\"device\":\"cpu\",\"ptr\":4096,\"size\":4096}]," N
      "," K ",\"operation_kind\":1}",
      "descriptor 1 [0x1000,+4096) is not covered by any registered region" },
    { "overhangs region", "{\"descriptors\":[{\"device\":\"cpu\"," P ",\"size\":4097}]," N "," K
      ",\"operation_kind\":1}",
      "descriptor 0 [0x7f0000100000,+4097) is not covered" },
    { "key short", "{" DS "," N ",\"notification_key\":\"abc\",\"operation_kind\":1}",
      "notification_key must be 32 lowercase hex digits, got \"abc\"" },
    { "key uppercase", "{" DS "," N ",\"notification_key\":\"00112233445566778899AABBCCDDEEFF\","
      "\"operation_kind\":1}",
      "notification_key must be 32 lowercase hex digits" },
    { "key non-hex", "{" DS "," N ",\"notification_key\":\"00112233445566778899aabbccddeefg\","
      "\"operation_kind\":1}",
      "notification_key must be 32 lowercase hex digits" },
    { "key uuid", "{" DS "," N ",\"notification_key\":\"12345678-1234-1234-1234-123456789abc\","
      "\"operation_kind\":1}",
      "notification_key must be" },
    { "key too long", "{" DS "," N ",\"notification_key\":\"" TEST_KEY_HEX TEST_KEY_HEX "\","
      "\"operation_kind\":1}",
      "notification_key must be 32 lowercase hex digits" },
    { "key number", "{" DS "," N ",\"notification_key\":1,\"operation_kind\":1}",
      "notification_key: expected a string, found a number" },
    { "nixl empty", "{" DS ",\"nixl_metadata\":\"\"," K ",\"operation_kind\":1}",
      "nixl_metadata is empty" },
    { "nixl only prefix", "{" DS ",\"nixl_metadata\":\"b64:\"," K ",\"operation_kind\":1}",
      "nixl_metadata is empty after \"b64:\"" },
    { "nixl bad base64", "{" DS ",\"nixl_metadata\":\"b64:eJz!\"," K ",\"operation_kind\":1}",
      "outside the base64 alphabet at offset 3" },
    { "nixl base64 length", "{" DS ",\"nixl_metadata\":\"b64:eJz\"," K ",\"operation_kind\":1}",
      "not a multiple of 4" },
    { "nixl base64 inner pad", "{" DS ",\"nixl_metadata\":\"b64:eJ==eJzz\"," K
      ",\"operation_kind\":1}",
      "padding '=' before the end" },
    { "nixl base64 loose bits", "{" DS ",\"nixl_metadata\":\"b64:eJ3=\"," K ",\"operation_kind\":1}",
      "non-zero bits" },
    { "nixl corrupt zlib", "{" DS ",\"nixl_metadata\":\"b64:AAAAAAAA\"," K ",\"operation_kind\":1}",
      "nixl_metadata: zlib stream is corrupt (" },
    { "nixl bad escape", "{" DS ",\"nixl_metadata\":\"b64:\\q\"," K ",\"operation_kind\":1}",
      "nixl_metadata: invalid escape" },
    { "nixl unterminated", "{" DS ",\"nixl_metadata\":\"b64:AAAA", "nixl_metadata: unterminated string" },
    { "nixl array", "{" DS ",\"nixl_metadata\":[]," K ",\"operation_kind\":1}",
      "nixl_metadata: expected a string, found an array" },
    /* strings */
    { "unterminated string", "{\"descriptors", "metadata: unterminated string at offset 1" },
    { "control char", "{\"descri\nptors\":1}", "unescaped control character 0x0a" },
    { "bad escape", "{\"a\\x\":1}", "invalid escape \"\\x5cx\"" },
    { "short unicode escape", "{\"\\u12\":1}", "\\u is not followed by 4 hex digits" },
    { "escaped NUL", "{\"\\u0000\":1}", "\\u0000 (NUL) is not allowed" },
    { "lone low surrogate", "{\"\\udc00\":1}", "unpaired surrogate \\udc00" },
    { "lone high surrogate", "{\"\\ud800x\":1}", "unpaired surrogate \\ud800" },
    { "high then non-low", "{\"\\ud800\\u0041\":1}", "unpaired surrogate \\ud800" },
    { "surrogate pair key", "{\"\\ud83d\\ude00\":1}", "unknown field \"\\xf0\\x9f\\x98\\x80\"" },
    { "invalid utf-8", "{\"\xff\":1}", "invalid UTF-8 byte 0xff" },
    { "overlong utf-8", "{\"\xc0\xaf\":1}", "invalid UTF-8 byte 0xc0" },
    { "utf-8 surrogate", "{\"\xed\xa0\x80\":1}", "invalid UTF-8 sequence" },
    { "truncated utf-8", "{\"\xe2\x82", "truncated UTF-8 sequence" },
    { "simple escapes", "{\"\\\"\\\\\\/\\b\":1}", "unknown field \"\\x22\\x5c/\\x08\"" },
    { "utf-8 raw", "{\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\":1}",
      "unknown field \"\\xc3\\xa9\\xe2\\x82\\xac\\xf0\\x9f\\x98\\x80\\xf4\\x8f\\xbf\\xbf\"" },
    { "utf-8 escaped", "{\"\\u00e9\\u20ac\\uD83D\\uDE00\\udbff\\udfff\":1}",
      "unknown field \"\\xc3\\xa9\\xe2\\x82\\xac\\xf0\\x9f\\x98\\x80\\xf4\\x8f\\xbf\\xbf\"" },
    { "utf-8 above U+10FFFF", "{\"\xf4\x90\x80\x80\":1}", "invalid UTF-8 sequence" },
    { "utf-8 overlong 3", "{\"\xe0\x80\xaf\":1}", "invalid UTF-8 sequence" },
    { "utf-8 overlong 4", "{\"\xf0\x80\x80\xaf\":1}", "invalid UTF-8 sequence" },
    { "utf-8 bad third byte", "{\"\xe2\x82\x41\":1}", "invalid UTF-8 sequence" },
    { "utf-8 lone continuation", "{\"\x80\":1}", "invalid UTF-8 byte 0x80" },
    { "unterminated escape", "{\"\\", "unterminated escape" },
    { "unicode escape at end", "{\"\\u12", "\\u is not followed by 4 hex digits" },
    { "unicode escape non-hex", "{\"\\u12g4\":1}", "\\u is not followed by 4 hex digits" },
    { "raw high byte", "\x80", "expected an object, found byte 0x80" },
    { "descriptors number", "{\"descriptors\":-1}", "descriptors: expected an array, found a number" },
    { "long unknown key", "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}",
      "string is longer than 63 bytes" },
};

/* Replaces each "@N@" in tmpl with nixl. Caller frees. */
static char *expand(const char *tmpl, const char *nixl)
{
    size_t cap = strlen(tmpl) + 4 * strlen(nixl) + 1, o = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, "@N@", 3) == 0) {
            memcpy(out + o, nixl, strlen(nixl));
            o += strlen(nixl);
            p += 3;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

static void test_bad_documents(void **state)
{
    (void)state;
    size_t raw_len;
    uint8_t *raw = blob_bytes(1, &raw_len);
    char *nixl = nixl_text_of(raw, raw_len);

    /* the template works when nothing is broken */
    char *good = expand("{" DS "," N "," K ",\"operation_kind\":1}", nixl);
    nxc_metadata_free(expect_good("template", good, strlen(good)));
    free(good);

    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        char *doc = expand(bad_cases[i].doc, nixl);
        expect_bad(bad_cases[i].label, doc, bad_cases[i].detail);
        free(doc);
    }
    free(nixl);
    free(raw);
}

/* The parser reads descriptors written exactly as our encoder writes them
 * without its general reader. Both must agree: each case is parsed as
 * written and with a space after each descriptor's '{', which only the
 * general reader takes. */
static const struct {
    const char *descs;
    int         ok;
} fast_path_cases[] = {
    { D, 1 },
    { "{\"device\":\"cpu\"," P ",\"size\":0}", 1 }, /* empty buffer */
    { "{\"device\":\"cpu\"," P ",\"size\":00}", 0 }, /* leading zero */
    { "{\"device\":\"cpu\",\"ptr\":0139637977776128,\"size\":1}", 0 },
    { "{\"device\":\"cpu\",\"ptr\":0,\"size\":1}", 0 }, /* null pointer */
    { "{\"device\":\"cpu\",\"ptr\":139637977776128.0,\"size\":1}", 0 },
    { "{\"device\":\"cpu\"," P ",\"size\":1e3}", 0 },
    { "{\"device\":\"cpu\"," P ",\"size\":-0}", 1 },                  /* JSON's -0 is 0 */
    { "{\"device\":\"cpu\"," P ",\"size\":9999999999999999999}", 0 }, /* 19 digits: not covered */
    { "{\"device\":\"cpu\"," P ",\"size\":18446744073709551615}", 0 },
    { "{\"device\":\"cpu\"," P ",\"size\":18446744073709551616}", 0 },
    { "{\"device\":\"cuda:0\"," P ",\"size\":1}", 1 },
    { "{\"device\":\"CPU\"," P ",\"size\":1}", 1 },
    { "{\"device\":\"c\\u0070u\"," P ",\"size\":1}", 1 },
    { "{\"device\":\"cpu\",\"size\":4096," P "}", 1 }, /* another order */
    { "{\"device\":\"cpu\"," P ",\"size\":4096,\"size\":4096}", 0 },
    { "{\"device\":\"cpu\"," P ",\"size\":4096 }", 1 },
    { "{\"device\":\"cpu\"," P ",\"size\":4096", 0 },
    { D "," D, 1 },
    { D ",{\"device\":\"cpu\",\"ptr\":139637977780224,\"size\":4096}", 0 }, /* not covered */
};

/* The detail up to " at offset N" (the spaces shift offsets); two
 * buffers in turn, so that two results can be compared. */
static const char *without_offset(const char *detail)
{
    static char buf[2][512];
    static int which;
    char *out = buf[which ^= 1];
    snprintf(out, sizeof buf[0], "%s", detail);
    char *at = strstr(out, " at offset ");
    if (at != NULL)
        *at = '\0';
    return out;
}

/* A space after the '{' of every {"device". Caller frees. */
static char *spaced(const char *doc)
{
    char *out = malloc(2 * strlen(doc) + 1), *o = out;
    assert_non_null(out);
    for (const char *p = doc; *p; p++) {
        *o++ = *p;
        if (strncmp(p, "{\"device\"", 9) == 0)
            *o++ = ' ';
    }
    *o = '\0';
    return out;
}

static void test_fast_path_agrees_with_general_reader(void **state)
{
    (void)state;
    size_t raw_len;
    uint8_t *raw = blob_bytes(1, &raw_len);
    char *nixl = nixl_text_of(raw, raw_len);
    for (size_t i = 0; i < sizeof fast_path_cases / sizeof fast_path_cases[0]; i++) {
        char tmpl[512];
        snprintf(tmpl, sizeof tmpl, "{\"descriptors\":[%s]," N "," K ",\"operation_kind\":1}",
                 fast_path_cases[i].descs);
        char *doc = expand(tmpl, nixl), *general = spaced(doc);
        nxc_metadata_t *a = NULL, *b = NULL;
        int rc = parse_exact(doc, strlen(doc), &a);
        char detail[512];
        snprintf(detail, sizeof detail, "%s", nxc_last_error());
        int grc = parse_exact(general, strlen(general), &b);
        if (rc != grc)
            fail_msg("case %zu (%s): fast path %d (%s), general reader %d (%s)", i,
                     fast_path_cases[i].descs, rc, detail, grc, nxc_last_error());
        if ((rc == NXC_OK) != fast_path_cases[i].ok)
            fail_msg("case %zu (%s): got %d (%s)", i, fast_path_cases[i].descs, rc, detail);
        if (rc == NXC_OK) {
            assert_int_equal(a->n_descs, b->n_descs);
            assert_memory_equal(a->descs, b->descs, a->n_descs * sizeof *a->descs);
        } else if (strcmp(without_offset(detail), without_offset(nxc_last_error())) != 0) {
            fail_msg("case %zu: the fast path says \"%s\", the general reader \"%s\"", i,
                     detail, nxc_last_error());
        }
        nxc_metadata_free(a);
        nxc_metadata_free(b);
        free(general);
        free(doc);
    }
    free(nixl);
    free(raw);
}

static void test_nul_in_input(void **state)
{
    (void)state;
    size_t len;
    char *json = make_doc(NXC_OP_READ, 1, &len);
    json[10] = '\0';
    nxc_metadata_t *md = NULL;
    expect_failure("NUL", parse_exact(json, len, &md), NXC_ERR_BAD_METADATA,
                   "NUL byte at offset 10");
    assert_null(md);
    free(json);

    /* a terminating NUL counted in len is a NUL in the input too */
    json = make_doc(NXC_OP_READ, 1, &len);
    expect_failure("counted NUL", parse_exact(json, len + 1, &md), NXC_ERR_BAD_METADATA,
                   "NUL byte");
    free(json);
}

static void test_oversized_input(void **state)
{
    (void)state;
    nxc_metadata_t *md = NULL;
    /* the length alone is refused: nothing is read */
    expect_failure("huge", nxc_metadata_parse("{", (size_t)NXC_MAX_METADATA_LEN + 1, &md),
                   NXC_ERR_BAD_METADATA, "limit");
}

static void test_too_many_descriptors(void **state)
{
    (void)state;
    const char *one = "{\"device\":\"cpu\",\"ptr\":1,\"size\":0},";
    size_t one_len = strlen(one), n = (size_t)NXC_MAX_DESCRIPTORS + 1;
    size_t cap = 64 + n * one_len;
    char *doc = malloc(cap);
    assert_non_null(doc);
    size_t o = (size_t)sprintf(doc, "{\"descriptors\":[");
    for (size_t i = 0; i < n; i++, o += one_len)
        memcpy(doc + o, one, one_len);
    memcpy(doc + o - 1, "]}", 3);
    nxc_metadata_t *md = NULL;
    expect_failure("too many", parse_exact(doc, strlen(doc), &md), NXC_ERR_BAD_METADATA,
                   "descriptors: more than 1048576 entries");
    free(doc);
}

/* nixl_metadata decoding down to the blob, by corrupting the blob bytes. */
static void expect_bad_blob_in_doc(const char *label, const uint8_t *raw, size_t raw_len,
                                   const char *detail)
{
    char *nixl = nixl_text_of(raw, raw_len);
    char *doc = doc_with_nixl(nixl);
    expect_bad(label, doc, detail);
    free(doc);
    free(nixl);
}

static void test_bad_blobs_in_documents(void **state)
{
    (void)state;
    size_t len;
    uint8_t *raw = blob_bytes(1, &len);

    raw[0] ^= 0xff;
    expect_bad_blob_in_doc("magic", raw, len,
                           "nixl_metadata: neither an nxc agent blob (magic 0x425843b1, "
                           "expected 0x4258434e) nor NIXL agent metadata");
    raw[0] ^= 0xff;
    raw[4] = 3;
    expect_bad_blob_in_doc("version", raw, len,
                           "agent blob version 3 is not supported (this library reads versions "
                           "1 and 2)");
    raw[4] = 2; /* a version 2 blob without its gate */
    expect_bad_blob_in_doc("version 2 without a gate", raw, len,
                           "agent blob is truncated: gate id needs 4 bytes");
    raw[4] = 1;
    char *intact = nixl_text_of(raw, len);
    char *intact_doc = doc_with_nixl(intact);
    nxc_metadata_free(expect_good("intact", intact_doc, strlen(intact_doc)));
    free(intact_doc);
    free(intact);

    /* every truncation, through the whole JSON path */
    for (size_t k = 0; k < len; k++) {
        if (k == 0)
            continue; /* zlib of nothing is a valid stream of an empty blob */
        char *nixl = nixl_text_of(raw, k);
        char *doc = doc_with_nixl(nixl);
        nxc_metadata_t *md = NULL;
        int rc = parse_exact(doc, strlen(doc), &md);
        if (rc != NXC_ERR_BAD_METADATA)
            fail_msg("blob cut at %zu: %d (%s)", k, rc, nxc_last_error());
        free(doc);
        free(nixl);
    }
    /* the zlib stream itself cut short */
    char *nixl = nixl_text_of(raw, len);
    size_t b64_len = strlen(nixl + 4);
    uint8_t *z = malloc(b64_len);
    size_t zlen;
    nxc_decode_error_t err;
    assert_true(nxc_base64_decode(nixl + 4, b64_len, z, &zlen, &err));
    char *cut = malloc(4 + nxc_base64_encoded_len(zlen) + 1);
    memcpy(cut, "b64:", 4);
    nxc_base64_encode(z, zlen - 5, cut + 4);
    char *doc = doc_with_nixl(cut);
    expect_bad("zlib cut", doc, "zlib stream is corrupt (");
    free(doc);
    /* ... and with garbage after it */
    uint8_t *longer = malloc(zlen + 3);
    memcpy(longer, z, zlen);
    memcpy(longer + zlen, "xyz", 3);
    free(cut);
    cut = malloc(4 + nxc_base64_encoded_len(zlen + 3) + 1);
    memcpy(cut, "b64:", 4);
    nxc_base64_encode(longer, zlen + 3, cut + 4);
    doc = doc_with_nixl(cut);
    expect_bad("zlib trailing", doc, "3 bytes of trailing garbage after the zlib stream");
    free(doc);
    free(longer);
    free(cut);
    free(z);
    free(nixl);
    free(raw);
}

/* A blob that inflates beyond NXC_MAX_BLOB_LEN is refused while inflating. */
static void test_zlib_bomb(void **state)
{
    (void)state;
    size_t n = (size_t)NXC_MAX_BLOB_LEN + 4096;
    uint8_t *zeros = calloc(1, n);
    assert_non_null(zeros);
    char *nixl = nixl_text_of(zeros, n);
    free(zeros);
    char *doc = doc_with_nixl(nixl);
    expect_bad("bomb", doc, "inflates to more than 268435456 bytes");
    free(doc);
    free(nixl);
}

/* A region that starts before another but reaches further still covers
 * what lies past the other's end; one region must hold all of a descriptor. */
static void test_coverage_with_overlapping_regions(void **state)
{
    (void)state;
    nxc_agent_blob_t b = make_blob(1, 2);
    fake_regions[0] = (nxc_region_t){ 0x1000, 0x8000, 0, fake_rkey[0], 8 }; /* to 0x9000 */
    fake_regions[1] = (nxc_region_t){ 0x2000, 0x1000, 0, fake_rkey[1], 8 }; /* to 0x3000 */
    nxc_descriptor_t d[3] = {
        { (void *)(uintptr_t)0x4000, 0x1000, { NXC_DEVICE_HOST, 0 } }, /* in region 0 only */
        { (void *)(uintptr_t)0x2000, 0x1000, { NXC_DEVICE_HOST, 0 } }, /* in both */
        { (void *)(uintptr_t)0x8000, 0x1000, { NXC_DEVICE_HOST, 0 } }, /* ends at 0x9000 */
    };
    char *json;
    size_t len;
    assert_int_equal(nxc_metadata_encode(NXC_OP_READ, test_key, d, 3, &b, &json, &len), NXC_OK);
    nxc_metadata_free(expect_good("overlap", json, len));
    free(json);

    d[2].size = 0x1001; /* one byte past region 0 */
    assert_int_equal(nxc_metadata_encode(NXC_OP_READ, test_key, d, 3, &b, &json, &len), NXC_OK);
    expect_bad("overhang", json, "descriptor 2 [0x8000,+4097) is not covered");
    free(json);

    /* spanning two adjacent regions is not covered by *one* region */
    fake_regions[1] = (nxc_region_t){ 0x9000, 0x1000, 0, fake_rkey[1], 8 };
    assert_int_equal(nxc_metadata_encode(NXC_OP_READ, test_key, d, 3, &b, &json, &len), NXC_OK);
    expect_bad("straddle", json, "descriptor 2 [0x8000,+4097) is not covered");
    free(json);

    /* no regions at all: only empty descriptors are acceptable */
    b.n_regions = 0;
    assert_int_equal(nxc_metadata_encode(NXC_OP_READ, test_key, d, 3, &b, &json, &len), NXC_OK);
    expect_bad("no regions", json, "descriptor 0 [0x4000,+4096) is not covered");
    free(json);
    for (size_t i = 0; i < 3; i++)
        d[i].size = 0;
    assert_int_equal(nxc_metadata_encode(NXC_OP_READ, test_key, d, 3, &b, &json, &len), NXC_OK);
    nxc_metadata_free(expect_good("no regions, empty descriptors", json, len));
    free(json);
}

/* ---- the agent blob directly ------------------------------------------ */

static void expect_blob_bad(const char *label, const uint8_t *buf, size_t len,
                            const char *detail)
{
    /* heap copy of exactly len bytes, so ASan catches any over-read */
    uint8_t *copy = malloc(len > 0 ? len : 1);
    memcpy(copy, buf, len);
    nxc_agent_blob_t b;
    memset(&b, 0x5a, sizeof b);
    int rc = nxc_blob_decode(copy, len, &b);
    expect_failure(label, rc, NXC_ERR_BAD_METADATA, detail);
    assert_int_equal(b.n_regions, 0x5a5a5a5a); /* out untouched */
    free(copy);
}

static void test_blob_round_trip(void **state)
{
    (void)state;
    for (uint32_t n = 0; n <= 2; n++) {
        size_t len;
        uint8_t *raw = blob_bytes(n, &len);
        nxc_agent_blob_t b;
        assert_int_equal(nxc_blob_decode(raw, len, &b), NXC_OK);
        assert_int_equal(b.name_len, 8);
        assert_memory_equal(b.name, "worker-7", 8);
        assert_int_equal(b.n_regions, n);
        if (n == 2) {
            assert_int_equal(b.regions[1].len, 0x2000);
            assert_memory_equal(b.regions[1].rkey, fake_rkey[1], b.regions[1].rkey_len);
        }
        free(b.regions);
        free(raw);
    }
}

static void test_blob_layout(void **state)
{
    (void)state;
    size_t len;
    uint8_t *raw = blob_bytes(0, &len);
    /* magic "NCXB", version 1, reserved 0, name_len 8 */
    static const uint8_t head[] = { 'N', 'C', 'X', 'B', 1, 0, 0, 0, 8, 0 };
    assert_memory_equal(raw, head, sizeof head);
    assert_memory_equal(raw + 10, "worker-7", 8);
    assert_int_equal(len, 10 + 8 + 4 + 8 + 16 + 4 + sizeof fake_addr + 4);
    free(raw);
}

/* A blob with a gate (direct.h) is version 2 and carries it after the
 * regions; one without stays version 1, byte for byte as before. */
static void test_blob_gate(void **state)
{
    (void)state;
    nxc_agent_blob_t b = make_blob(1, 1);
    size_t len1, len2;
    uint8_t *v1, *v2;
    assert_int_equal(nxc_blob_encode(&b, &v1, &len1), NXC_OK);
    b.gate = (nxc_gate_ref_t){ .present = 1, .fd = 7, .slot = 4095, .gen = 0xfffffffeu,
                               .id = 0x0123456789abcdefull };
    assert_int_equal(nxc_blob_encode(&b, &v2, &len2), NXC_OK);
    assert_int_equal(v1[4], 1);
    assert_int_equal(v2[4], 2);
    assert_int_equal(len2, len1 + 20);
    assert_memory_equal(v1 + 6, v2 + 6, len1 - 6);
    nxc_agent_blob_t d;
    assert_int_equal(nxc_blob_decode(v1, len1, &d), NXC_OK);
    assert_false(d.gate.present);
    free(d.regions);
    assert_int_equal(nxc_blob_decode(v2, len2, &d), NXC_OK);
    assert_true(d.gate.present);
    assert_int_equal(d.gate.fd, 7);
    assert_int_equal(d.gate.slot, 4095);
    assert_int_equal(d.gate.gen, 0xfffffffeu);
    assert_true(d.gate.id == 0x0123456789abcdefull);
    free(d.regions);
    for (size_t k = len1; k < len2; k++) {
        char label[48];
        snprintf(label, sizeof label, "gate cut at %zu", k);
        expect_blob_bad(label, v2, k, "gate");
    }
    v2[len2 - 9] = 0x80; /* fd 0x80000007: no fd number */
    expect_blob_bad("gate fd", v2, len2, "gate fd 2147483655 is not an fd number");
    free(v1);
    free(v2);
}

static void test_blob_truncated_everywhere(void **state)
{
    (void)state;
    size_t len;
    uint8_t *raw = blob_bytes(2, &len);
    for (size_t k = 0; k < len; k++) {
        char label[32];
        snprintf(label, sizeof label, "cut at %zu", k);
        expect_blob_bad(label, raw, k, NULL);
    }
    expect_blob_bad("cut in name", raw, 12, "agent blob is truncated: name needs 8 bytes");
    free(raw);
}

static void test_blob_field_checks(void **state)
{
    (void)state;
    size_t len;
    uint8_t *raw = blob_bytes(1, &len);
    uint8_t *buf = malloc(len + 1);
    size_t addr_len_at = 10 + 8 + 4 + 8 + 16;
    size_t count_at = addr_len_at + 4 + sizeof fake_addr;
    size_t region_at = count_at + 4;

#define FRESH() memcpy(buf, raw, len)
    FRESH();
    buf[6] = 1;
    expect_blob_bad("reserved", buf, len, "reserved field is 1");
    FRESH();
    buf[8] = 0;
    expect_blob_bad("name 0", buf, len, "name length 0 is outside 1..255");
    FRESH();
    buf[8] = 0;
    buf[9] = 1;
    expect_blob_bad("name 256", buf, len, "name length 256 is outside 1..255");
    FRESH();
    buf[12] = '\0';
    expect_blob_bad("name NUL", buf, len, "name contains a NUL byte");
    FRESH();
    memset(buf + addr_len_at, 0, 4);
    expect_blob_bad("addr 0", buf, len, "worker address length 0 is outside");
    FRESH();
    memset(buf + addr_len_at, 0xff, 4);
    expect_blob_bad("addr huge", buf, len, "worker address length 4294967295 is outside");
    FRESH();
    buf[addr_len_at + 1] = 0xf0; /* within the limit, beyond the buffer */
    expect_blob_bad("addr long", buf, len, "worker address needs");
    FRESH();
    memset(buf + count_at, 0xff, 4);
    expect_blob_bad("absurd count", buf, len,
                    "4294967295 regions cannot fit in the 64 bytes that remain");
    FRESH();
    buf[count_at] = 3;
    expect_blob_bad("count too big", buf, len, "3 regions cannot fit");
    FRESH();
    buf[count_at] = 0;
    expect_blob_bad("count too small", buf, len, "64 bytes of trailing garbage");
    FRESH();
    memset(buf + region_at + 20, 0, 4);
    expect_blob_bad("rkey 0", buf, len, "region 0: agent blob: rkey length 0 is outside");
    FRESH();
    memset(buf + region_at + 20, 0xff, 4);
    expect_blob_bad("rkey huge", buf, len, "rkey length 4294967295 is outside 1..65536");
    FRESH();
    memset(buf + region_at, 0xff, 8); /* base near the top, len > 0: wraps */
    expect_blob_bad("region wraps", buf, len, "region 0: base 0xffffffffffffffff");
    FRESH();
    buf[len] = 0;
    expect_blob_bad("trailing", buf, len + 1, "1 bytes of trailing garbage after offset");
#undef FRESH
    free(buf);
    free(raw);
}

static void test_blob_encode_refuses_what_decode_would(void **state)
{
    (void)state;
    uint8_t *out = NULL;
    size_t len;
    nxc_agent_blob_t b = make_blob(1, 2);
    b.name_len = 0;
    assert_int_equal(nxc_blob_encode(&b, &out, &len), NXC_ERR_INVALID_ARG);
    b = make_blob(1, 2);
    b.worker_addr_len = NXC_MAX_WORKER_ADDR + 1;
    assert_int_equal(nxc_blob_encode(&b, &out, &len), NXC_ERR_INVALID_ARG);
    b = make_blob(1, 2);
    b.regions = NULL;
    assert_int_equal(nxc_blob_encode(&b, &out, &len), NXC_ERR_INVALID_ARG);
    nxc_region_t r = { UINT64_MAX, 1, 0, fake_rkey[0], 4 };
    b = make_blob(1, 1);
    b.regions = &r;
    assert_int_equal(nxc_blob_encode(&b, &out, &len), NXC_ERR_INVALID_ARG);
    r = (nxc_region_t){ 1, 1, 0, fake_rkey[0], 0 };
    assert_int_equal(nxc_blob_encode(&b, &out, &len), NXC_ERR_INVALID_ARG);
    assert_null(out);
}

static void test_encode_refuses_bad_input(void **state)
{
    (void)state;
    nxc_descriptor_t *d = make_descs(2);
    nxc_agent_blob_t b = make_blob(2, 1);
    char *json = NULL;
    size_t len;
    assert_int_equal(nxc_metadata_encode(NXC_OP_KIND_UNSPECIFIED, test_key, d, 2, &b, &json, &len),
                     NXC_ERR_INVALID_ARG);
    assert_int_equal(nxc_metadata_encode(NXC_OP_READ, test_key, d, 0, &b, &json, &len),
                     NXC_ERR_INVALID_ARG);
    d[1].device = (nxc_device_t){ NXC_DEVICE_CUDA, 0 };
    assert_int_equal(nxc_metadata_encode(NXC_OP_READ, test_key, d, 2, &b, &json, &len),
                     NXC_ERR_DEVICE);
    d[1].device = (nxc_device_t){ NXC_DEVICE_HOST, 0 };
    d[1].ptr = NULL;
    assert_int_equal(nxc_metadata_encode(NXC_OP_READ, test_key, d, 2, &b, &json, &len),
                     NXC_ERR_INVALID_ARG);
    d[1].ptr = (void *)(uintptr_t)UINTPTR_MAX;
    expect_failure("wrap", nxc_metadata_encode(NXC_OP_READ, test_key, d, 2, &b, &json, &len),
                   NXC_ERR_INVALID_ARG, "descriptor 1: ");
    d[1].ptr = (void *)(uintptr_t)BASE;
    d[0].device = d[1].device = (nxc_device_t){ NXC_DEVICE_UNSPECIFIED, 0 };
    expect_failure("no device", nxc_metadata_encode(NXC_OP_READ, test_key, d, 2, &b, &json, &len),
                   NXC_ERR_INVALID_ARG, "descriptor 0: nxc_device_format: device kind 0");
    d[0].device = d[1].device = (nxc_device_t){ NXC_DEVICE_CUDA, 70000 };
    expect_failure("bad ordinal",
                   nxc_metadata_encode(NXC_OP_READ, test_key, d, 2, &b, &json, &len),
                   NXC_ERR_INVALID_ARG, "CUDA device id 70000");
    assert_int_equal(nxc_metadata_encode(NXC_OP_READ, NULL, d, 2, &b, &json, &len),
                     NXC_ERR_INVALID_ARG);
    b.name_len = 0; /* blob errors come through */
    d[0].device = d[1].device = (nxc_device_t){ NXC_DEVICE_HOST, 0 };
    expect_failure("blob", nxc_metadata_encode(NXC_OP_READ, test_key, d, 2, &b, &json, &len),
                   NXC_ERR_INVALID_ARG, "agent blob: name must be");
    assert_null(json);
    free(d);
}

/* ---- base64 and hex --------------------------------------------------- */

static void test_base64_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10 */
    static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                       "Zm9vYmFy" };
    for (size_t i = 0; i < 7; i++) {
        char out[16];
        uint8_t back[16];
        size_t n;
        nxc_decode_error_t err;
        nxc_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), out);
        assert_string_equal(out, enc[i]);
        assert_true(nxc_base64_decode(enc[i], strlen(enc[i]), back, &n, &err));
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(back, plain[i], n);
    }
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    char hex[513];
    nxc_hex_encode(all, 256, hex);
    assert_int_equal(strncmp(hex, "000102", 6), 0);
    assert_string_equal(hex + 506, "fdfeff");
    uint8_t back[256];
    nxc_decode_error_t err;
    assert_true(nxc_hex_decode(hex, 512, back, &err));
    assert_memory_equal(back, all, 256);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_1),
        cmocka_unit_test(test_round_trip_3),
        cmocka_unit_test(test_round_trip_4096),
        cmocka_unit_test(test_encoding_is_dynamos),
        cmocka_unit_test(test_small_blobs_stored_large_compressed),
        cmocka_unit_test(test_dynamo_hex_form),
        cmocka_unit_test(test_lenient_where_json_is),
        cmocka_unit_test(test_accessors_accept_null),
        cmocka_unit_test(test_every_prefix_fails),
        cmocka_unit_test(test_bad_documents),
        cmocka_unit_test(test_fast_path_agrees_with_general_reader),
        cmocka_unit_test(test_nul_in_input),
        cmocka_unit_test(test_oversized_input),
        cmocka_unit_test(test_too_many_descriptors),
        cmocka_unit_test(test_bad_blobs_in_documents),
        cmocka_unit_test(test_zlib_bomb),
        cmocka_unit_test(test_coverage_with_overlapping_regions),
        cmocka_unit_test(test_blob_round_trip),
        cmocka_unit_test(test_blob_layout),
        cmocka_unit_test(test_blob_gate),
        cmocka_unit_test(test_blob_truncated_everywhere),
        cmocka_unit_test(test_blob_field_checks),
        cmocka_unit_test(test_blob_encode_refuses_what_decode_would),
        cmocka_unit_test(test_encode_refuses_bad_input),
        cmocka_unit_test(test_base64_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
