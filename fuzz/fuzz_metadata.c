/* libFuzzer target for the metadata codec.
 *
 * The first byte selects what the rest is fed to:
 *   'B'  the rest is an agent blob    -> nxc_blob_decode()
 *   'Z'  the rest is an agent blob, wrapped as zlib+base64 in an otherwise
 *        valid document               -> nxc_metadata_parse()
 *   'C'  the rest is a control message as a peer sends it -> nxc_ctrl_decode()
 *   'N'  the rest is NIXL agent metadata -> nxc_nixl_blob_decode()
 *   'M'  the rest is a NIXL notification  -> nxc_nixl_notif_decode()
 *   else the whole input is metadata text -> nxc_metadata_parse()
 * so plain JSON documents are seeds as they are.
 *
 * Besides "no crash, no leak, no over-read", it checks two properties:
 * every failure leaves a detail sentence, and anything that parses
 * re-encodes and parses back to the same descriptors, kind, key and name
 * (NIXL blobs: decode, re-encode as we publish them, decode to the same
 * name, worker address and regions). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "codec/ctrl.h"
#include "codec/metadata.h"
#include "codec/nixl_blob.h"
#include "common/encoding.h"
#include "common/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_metadata: property violated: %s (detail: %s)\n", what,
                nxc_last_error());
        abort();
    }
}

static void check_failure(int rc)
{
    check(rc < 0, "a failure returns a negative code");
    check(nxc_last_error()[0] != '\0', "a failure leaves a detail");
}

static void same_metadata(const nxc_metadata_t *a, const nxc_metadata_t *b)
{
    check(a->kind == b->kind, "kind survives a round trip");
    check(memcmp(a->key, b->key, NXC_KEY_BYTES) == 0, "key survives a round trip");
    check(strcmp(a->name, b->name) == 0, "name survives a round trip");
    check(a->n_descs == b->n_descs, "descriptor count survives a round trip");
    for (size_t i = 0; i < a->n_descs; i++)
        check(a->descs[i].ptr == b->descs[i].ptr && a->descs[i].size == b->descs[i].size &&
                  a->descs[i].device.kind == b->descs[i].device.kind &&
                  a->descs[i].device.id == b->descs[i].device.id,
              "descriptors survive a round trip");
    check(a->blob_buf_len == b->blob_buf_len &&
              memcmp(a->blob_buf, b->blob_buf, a->blob_buf_len) == 0,
          "the agent blob survives a round trip");
}

/* Whatever parses must encode again (the encoder accepts all the parser
 * does) and parse back to the same thing. */
static void check_round_trip(const nxc_metadata_t *md)
{
    char *json = NULL;
    size_t len = 0;
    int rc = nxc_metadata_encode(md->kind, md->key, md->descs, md->n_descs, &md->blob, &json,
                                 &len);
    check(rc == NXC_OK, "parsed metadata encodes again");
    nxc_metadata_t *back = NULL;
    rc = nxc_metadata_parse(json, len, &back);
    check(rc == NXC_OK, "re-encoded metadata parses");
    same_metadata(md, back);
    nxc_metadata_free(back);
    free(json);
}

/* The text with a space after the '{' of every {"device" (in a valid
 * document only a descriptor's start), which the parser's fast path for
 * its own encoding does not take. Caller frees. */
static char *spaced_descriptors(const char *text, size_t size, size_t *out_len)
{
    static const char tag[] = "{\"device\"";
    const size_t n = sizeof tag - 1;
    char *out = malloc(2 * size + 1);
    size_t o = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < size; i++) {
        out[o++] = text[i];
        if (text[i] == '{' && size - i >= n && memcmp(text + i, tag, n) == 0)
            out[o++] = ' ';
    }
    *out_len = o;
    return out;
}

/* The fast path and the general reader agree: same outcome, same
 * descriptors. */
static void check_same_as_general_reader(const char *text, size_t size, int rc,
                                         const nxc_metadata_t *md)
{
    size_t len = 0;
    char *spaced = spaced_descriptors(text, size, &len);
    if (spaced == NULL || len == size || len > NXC_MAX_METADATA_LEN) {
        free(spaced);
        return;
    }
    nxc_metadata_t *general = NULL;
    int grc = nxc_metadata_parse(spaced, len, &general);
    check(grc == rc, "the fast path and the general reader agree on the outcome");
    if (md != NULL) {
        check(general->n_descs == md->n_descs, "both readers read as many descriptors");
        for (size_t i = 0; i < md->n_descs; i++)
            check(general->descs[i].ptr == md->descs[i].ptr &&
                      general->descs[i].size == md->descs[i].size &&
                      general->descs[i].device.kind == md->descs[i].device.kind &&
                      general->descs[i].device.id == md->descs[i].device.id,
                  "both readers read the same descriptors");
    }
    nxc_metadata_free(general);
    free(spaced);
}

static void fuzz_text(const char *text, size_t size)
{
    nxc_metadata_t *md = NULL;
    int rc = nxc_metadata_parse(text, size, &md);
    if (rc != NXC_OK) {
        check_failure(rc);
        check(md == NULL, "the out parameter stays unset on failure");
        check_same_as_general_reader(text, size, rc, NULL);
        return;
    }
    check_same_as_general_reader(text, size, rc, md);
    check(md->n_descs >= 1 && md->n_descs <= NXC_MAX_DESCRIPTORS, "descriptor count in range");
    if (md->wire == NXC_WIRE_NXC)
        check_round_trip(md);
    else
        check(md->wire == NXC_WIRE_NIXL && md->key_len >= 1, "a NIXL wire and key");
    nxc_metadata_free(md);
}

static void fuzz_blob(const uint8_t *data, size_t size)
{
    nxc_agent_blob_t b;
    int rc = nxc_blob_decode(data, size, &b);
    if (rc != NXC_OK) {
        check_failure(rc);
        return;
    }
    /* what decodes must encode to the same bytes */
    uint8_t *again = NULL;
    size_t again_len = 0;
    check(nxc_blob_encode(&b, &again, &again_len) == NXC_OK, "a decoded blob encodes");
    check(again_len == size && memcmp(again, data, size) == 0, "blob encoding is canonical");
    free(again);
    free(b.regions);
}

static void same_nixl_blob(const nxc_agent_blob_t *a, const nxc_agent_blob_t *b)
{
    check(a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0,
          "NIXL name survives a round trip");
    check(a->worker_addr_len == b->worker_addr_len &&
              memcmp(a->worker_addr, b->worker_addr, a->worker_addr_len) == 0,
          "NIXL worker address survives a round trip");
    check(a->n_regions == b->n_regions, "NIXL region count survives a round trip");
    for (uint32_t i = 0; i < a->n_regions; i++)
        check(a->regions[i].base == b->regions[i].base && a->regions[i].len == b->regions[i].len &&
                  a->regions[i].rkey_len == b->regions[i].rkey_len &&
                  memcmp(a->regions[i].rkey, b->regions[i].rkey, a->regions[i].rkey_len) == 0,
              "NIXL regions survive a round trip");
}

static void fuzz_nixl_blob(const uint8_t *data, size_t size)
{
    nxc_agent_blob_t b;
    int rc = nxc_nixl_blob_decode(data, size, &b);
    if (rc != NXC_OK) {
        check_failure(rc);
        return;
    }
    check(b.name >= (const char *)data && b.name + b.name_len <= (const char *)data + size,
          "NIXL name inside the blob");
    check(b.worker_addr >= data && b.worker_addr + b.worker_addr_len <= data + size,
          "NIXL worker address inside the blob");
    for (uint32_t i = 0; i < b.n_regions; i++)
        check(b.regions[i].rkey >= data && b.regions[i].rkey + b.regions[i].rkey_len <= data + size,
              "NIXL rkey inside the blob");
    uint8_t *again = NULL;
    size_t again_len = 0;
    check(nxc_nixl_blob_encode(&b, &again, &again_len) == NXC_OK, "a decoded NIXL blob encodes");
    nxc_agent_blob_t back;
    check(nxc_nixl_blob_decode(again, again_len, &back) == NXC_OK,
          "a re-encoded NIXL blob decodes");
    same_nixl_blob(&b, &back);
    free(back.regions);
    free(again);
    free(b.regions);
}

/* A notification any peer can send us: what decodes lies inside it and
 * encodes back to the same bytes. */
static void fuzz_nixl_notif(const uint8_t *data, size_t size)
{
    const char *name = NULL, *msg = NULL;
    size_t name_len = 0, msg_len = 0;
    if (nxc_nixl_notif_decode(data, size, &name, &name_len, &msg, &msg_len) != NXC_OK)
        return;
    check(name >= (const char *)data && name + name_len <= (const char *)data + size &&
              msg >= (const char *)data && msg + msg_len <= (const char *)data + size,
          "NIXL notification fields inside the message");
    uint8_t *again = NULL;
    size_t again_len = 0;
    check(nxc_nixl_notif_encode(name, name_len, msg, msg_len, &again, &again_len) == NXC_OK,
          "a decoded notification encodes");
    check(again_len == size && memcmp(again, data, size) == 0,
          "notification encoding is canonical");
    free(again);
}

/* Wraps fuzzed blob bytes in a valid document so the fuzzer reaches blob
 * decoding and region coverage through the JSON path without having to
 * discover zlib and base64 by mutation. */
static void fuzz_blob_in_document(const uint8_t *data, size_t size)
{
    uLongf zlen = compressBound((uLong)size);
    uint8_t *z = malloc(zlen);
    if (z == NULL || compress2(z, &zlen, data, (uLong)size, 1) != Z_OK) {
        free(z);
        return;
    }
    static const char head[] =
        "{\"descriptors\":[{\"device\":\"cpu\",\"ptr\":65536,\"size\":4096},"
        "{\"device\":\"cpu\",\"ptr\":4096,\"size\":0}],\"nixl_metadata\":\"b64:";
    static const char tail[] =
        "\",\"notification_key\":\"0123456789abcdef0123456789abcdef\",\"operation_kind\":1}";
    size_t b64_len = nxc_base64_encoded_len(zlen);
    char *doc = malloc(sizeof head + b64_len + sizeof tail);
    if (doc != NULL) {
        memcpy(doc, head, sizeof head - 1);
        nxc_base64_encode(z, zlen, doc + sizeof head - 1);
        memcpy(doc + sizeof head - 1 + b64_len, tail, sizeof tail);
        fuzz_text(doc, strlen(doc));
    }
    free(doc);
    free(z);
}

/* Every message a peer sends goes through this decoder: whatever it
 * accepts must lie inside the message and encode back to the same bytes. */
static void fuzz_ctrl(const uint8_t *data, size_t size)
{
    nxc_ctrl_msg_t m;
    if (nxc_ctrl_decode(data, size, &m) != 0)
        return;
    check(m.name_len >= 1 && m.name_len <= NXC_NAME_MAX, "control name length in range");
    check(m.name >= (const char *)data && m.name + m.name_len <= (const char *)data + size,
          "control name inside the message");
    check(m.addr == NULL || (m.addr >= data && m.addr + m.addr_len <= data + size),
          "control address inside the message");
    check(nxc_ctrl_len(&m) == size, "a decoded control message has its own length");
    uint8_t *again = malloc(size);
    check(again != NULL, "oom");
    check(nxc_ctrl_encode(&m, again) == size && memcmp(again, data, size) == 0,
          "control encoding is canonical");
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        fuzz_text("", 0);
        return 0;
    }
    switch (data[0]) {
    case 'B':
        fuzz_blob(data + 1, size - 1);
        break;
    case 'Z':
        fuzz_blob_in_document(data + 1, size - 1);
        break;
    case 'C':
        fuzz_ctrl(data + 1, size - 1);
        break;
    case 'N':
        fuzz_nixl_blob(data + 1, size - 1);
        break;
    case 'M':
        fuzz_nixl_notif(data + 1, size - 1);
        break;
    default:
        fuzz_text((const char *)data, size);
        break;
    }
    return 0;
}
