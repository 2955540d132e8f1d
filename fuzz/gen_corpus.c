/* Writes the seed corpus of fuzz_metadata into a directory:
 *   fuzz_gen_corpus fuzz/corpus/metadata
 * Valid documents and control messages come from the real encoders so
 * they track the formats (tests/unit/test_ctrl.c fails when the checked-in
 * control seeds no longer decode); blob and control seeds carry the
 * 'B' / 'Z' / 'C' selector byte (see fuzz_metadata.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/ctrl.h"
#include "codec/metadata.h"
#include "common/encoding.h"
#include "common/error.h"

static const char *out_dir;

static void write_seed(const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void write_seed_with_selector(const char *name, char selector, const uint8_t *data,
                                     size_t len)
{
    uint8_t *buf = malloc(len + 1);
    buf[0] = (uint8_t)selector;
    memcpy(buf + 1, data, len);
    write_seed(name, buf, len + 1);
    free(buf);
}

static uint8_t addr[64], rkeys[3][24];
static nxc_region_t regions[3];

/* A blob whose region 0 covers [base, base+span). */
static nxc_agent_blob_t make_blob(uint64_t base, uint64_t span, uint32_t n_regions)
{
    for (size_t i = 0; i < sizeof addr; i++)
        addr[i] = (uint8_t)(i * 13);
    for (size_t r = 0; r < 3; r++) {
        for (size_t i = 0; i < sizeof rkeys[r]; i++)
            rkeys[r][i] = (uint8_t)(r * 31 + i);
        regions[r] = (nxc_region_t){ base + r * (span + 4096), span, (uint32_t)r & 1,
                                     rkeys[r], (uint32_t)sizeof rkeys[r] - (uint32_t)r };
    }
    return (nxc_agent_blob_t){ .name = "seed-worker",
                               .name_len = 11,
                               .identity = { 77, 0xeffffffc, { 9, 8, 7, 6, 5, 4, 3, 2, 1 } },
                               .worker_addr = addr,
                               .worker_addr_len = sizeof addr,
                               .n_regions = n_regions,
                               .regions = regions };
}

static char *encode_doc(nxc_op_kind_t kind, const nxc_descriptor_t *d, size_t n,
                        const nxc_agent_blob_t *b, size_t *len)
{
    static const uint8_t key[NXC_KEY_BYTES] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4,
                                                5,    6,    7,    8,    9, 10, 11, 12 };
    char *json;
    if (nxc_metadata_encode(kind, key, d, n, b, &json, len) != NXC_OK) {
        fprintf(stderr, "encode: %s\n", nxc_last_error());
        exit(1);
    }
    return json;
}

static void valid_documents(void)
{
    size_t len;
    nxc_descriptor_t d[4];
    for (size_t i = 0; i < 4; i++)
        d[i] = (nxc_descriptor_t){ (void *)(uintptr_t)(0x10000 + i * 1024), 1024,
                                   { NXC_DEVICE_HOST, 0 } };
    nxc_agent_blob_t b = make_blob(0x10000, 4096, 1);
    char *json = encode_doc(NXC_OP_READ, d, 1, &b, &len);
    write_seed("valid_read_1.json", json, len);
    free(json);

    d[3].size = 0;
    b = make_blob(0x10000, 4096, 3);
    json = encode_doc(NXC_OP_WRITE, d, 4, &b, &len);
    write_seed("valid_write_4_regions_3.json", json, len);
    free(json);

    for (size_t i = 0; i < 2; i++)
        d[i].device = (nxc_device_t){ NXC_DEVICE_CUDA, 3 };
    b = make_blob(0x10000, 4096, 2);
    json = encode_doc(NXC_OP_READ, d, 2, &b, &len);
    write_seed("valid_cuda_2.json", json, len);
    free(json);
}

/* The same document with bare hex nixl_metadata (older Dynamo). */
static void hex_document(void)
{
    size_t len;
    nxc_descriptor_t d = { (void *)(uintptr_t)0x10000, 64, { NXC_DEVICE_HOST, 0 } };
    nxc_agent_blob_t b = make_blob(0x10000, 4096, 1);
    char *json = encode_doc(NXC_OP_READ, &d, 1, &b, &len);
    char *start = strstr(json, "b64:") + 4, *end = strchr(start, '"');
    size_t b64_len = (size_t)(end - start), zlen;
    uint8_t *z = malloc(nxc_base64_decoded_max(b64_len));
    nxc_decode_error_t err;
    nxc_base64_decode(start, b64_len, z, &zlen, &err);
    char *hex = malloc(2 * zlen + 1);
    nxc_hex_encode(z, zlen, hex);
    size_t cap = len + 2 * zlen + 1;
    char *doc = malloc(cap);
    int n = snprintf(doc, cap, "%.*s%s%s", (int)(start - 4 - json), json, hex, end);
    write_seed("valid_hex_form.json", doc, (size_t)n);
    free(doc);
    free(hex);
    free(z);
    free(json);
}

static void blob_seeds(void)
{
    for (uint32_t n = 0; n <= 2; n++) {
        /* region 0 covers the descriptor fuzz_metadata's 'Z' wrapper uses */
        nxc_agent_blob_t b = make_blob(0x10000, 8192, n);
        uint8_t *raw;
        size_t len;
        if (nxc_blob_encode(&b, &raw, &len) != NXC_OK)
            exit(1);
        char name[32];
        snprintf(name, sizeof name, "blob_regions_%u.bin", (unsigned)n);
        write_seed_with_selector(name, 'B', raw, len);
        snprintf(name, sizeof name, "doc_blob_regions_%u.bin", (unsigned)n);
        write_seed_with_selector(name, 'Z', raw, len);
        free(raw);
    }
}

/* One of each control message a peer sends, as nxc_ctrl_encode writes it. */
static void ctrl_seeds(void)
{
    static const uint8_t key[NXC_KEY_BYTES] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                                14, 15 };
    static const uint8_t waddr[24] = { 0xa5, 0x5a, 1, 2, 3 }, data[16] = { 0xd0, 0xd1 };
    static const struct {
        const char *name;
        uint8_t type, flags, reason;
    } kinds[] = {
        { "ctrl_begin.bin", NXC_CTRL_BEGIN, NXC_CTRL_FLAG_AM | NXC_CTRL_FLAG_ADDR, 0 },
        { "ctrl_begin_no_addr.bin", NXC_CTRL_BEGIN, NXC_CTRL_FLAG_AM, 0 },
        { "ctrl_pull_begin.bin", NXC_CTRL_BEGIN,
          NXC_CTRL_FLAG_AM | NXC_CTRL_FLAG_ADDR | NXC_CTRL_FLAG_PULL | NXC_CTRL_FLAG_RUNS, 0 },
        { "ctrl_write.bin", NXC_CTRL_WRITE, NXC_CTRL_FLAG_AM | NXC_CTRL_FLAG_ADDR, 0 },
        { "ctrl_done.bin", NXC_CTRL_DONE, NXC_CTRL_FLAG_AM, 0 },
        { "ctrl_abort.bin", NXC_CTRL_ABORT, NXC_CTRL_FLAG_AM, 0 },
        { "ctrl_ack.bin", NXC_CTRL_ACK, 0, 0 },
        { "ctrl_nack.bin", NXC_CTRL_NACK, 0, NXC_NACK_TAKEN },
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        nxc_ctrl_msg_t m = {
            .type = kinds[i].type,
            .flags = kinds[i].flags,
            .key = key,
            .name = "seed-worker",
            .name_len = 11,
            .sender = { 1234, 0xeffffffc, { 9, 8, 7, 6, 5, 4, 3, 2, 1 } },
            .tag = 0x0102030405060708ull,
            .reason = kinds[i].reason,
            .addr = waddr,
            .addr_len = sizeof waddr,
            .data = data,
            .data_len = sizeof data,
        };
        uint8_t buf[NXC_CTRL_MAX + 4 + sizeof waddr + sizeof data];
        write_seed_with_selector(kinds[i].name, 'C', buf, nxc_ctrl_encode(&m, buf));
    }
}

static void malformed_seeds(void)
{
    static const struct {
        const char *name, *text;
    } bad[] = {
        { "bad_empty_object.json", "{}" },
        { "bad_kind.json",
          "{\"descriptors\":[{\"device\":\"cpu\",\"ptr\":1,\"size\":0}],\"nixl_metadata\":\"b64:"
          "eJwDAAAAAAE=\",\"notification_key\":\"0123456789abcdef0123456789abcdef\","
          "\"operation_kind\":3}" },
        { "bad_escapes.json", "{\"\\ud83d\\ude00\":\"\\u0041\\n\\/\",\"ptr\":-0}" },
        { "bad_numbers.json", "{\"descriptors\":[{\"ptr\":1e5,\"size\":-5,\"device\":\"gpu:1\"}]}" },
        { "bad_truncated.json", "{\"descriptors\":[{\"device\":\"cu" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        write_seed(bad[i].name, bad[i].text, strlen(bad[i].text));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    valid_documents();
    hex_document();
    blob_seeds();
    ctrl_seeds();
    malformed_seeds();
    return 0;
}
