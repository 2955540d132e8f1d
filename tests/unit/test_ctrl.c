/* The control-message codec (src/codec/ctrl.h): every message a peer sends
 * goes through nxc_ctrl_decode. Round trips of each type, the malformed
 * messages it must refuse, and the fuzzer's checked-in seeds: they must
 * decode (control messages) or parse (documents) under the formats of this
 * build, else the fuzzer starts from inputs every check turns away at the
 * first byte that differs. argv[1] is the seed folder
 * (fuzz/corpus/metadata); fuzz_gen_corpus rewrites it. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/ctrl.h"
#include "common/bytes.h"
#include "common/error.h"

static const char *seed_dir;

static const uint8_t g_key[NXC_KEY_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
static const uint8_t g_addr[40] = { 0xa5, 0x5a, 7 };
static const uint8_t g_data[100] = { 0xd0, 0xd1, 0xd2 };

static nxc_ctrl_msg_t message(uint8_t type, uint8_t flags)
{
    nxc_ctrl_msg_t m = {
        .type = type,
        .flags = flags,
        .key = g_key,
        .name = "worker-7",
        .name_len = 8,
        .sender = { 4242, 0xeffffffc, { 1, 2, 3 } },
        .tag = 0xfeedface12345678ull,
        .reason = type == NXC_CTRL_NACK ? NXC_NACK_RELEASED : 0,
        .addr = g_addr,
        .addr_len = sizeof g_addr,
        .data = g_data,
        .data_len = sizeof g_data,
    };
    return m;
}

/* Encodes into a heap buffer of exactly its length (ASan sees overruns). */
static uint8_t *encode(const nxc_ctrl_msg_t *m, size_t *len)
{
    *len = nxc_ctrl_len(m);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    assert_int_equal(nxc_ctrl_encode(m, buf), *len);
    return buf;
}

static void check_round_trip(uint8_t type, uint8_t flags)
{
    nxc_ctrl_msg_t m = message(type, flags), out;
    size_t len;
    uint8_t *buf = encode(&m, &len);
    assert_int_equal(nxc_ctrl_decode(buf, len, &out), 0);
    assert_int_equal(out.type, type);
    assert_int_equal(out.flags, flags);
    assert_memory_equal(out.key, g_key, NXC_KEY_BYTES);
    assert_int_equal(out.name_len, 8);
    assert_memory_equal(out.name, "worker-7", 8);
    assert_int_equal(out.sender.pid, 4242);
    assert_true(out.sender.pidns == 0xeffffffc);
    assert_memory_equal(out.sender.host_id, m.sender.host_id, NXC_HOST_ID_BYTES);
    assert_true(out.tag == m.tag);
    assert_int_equal(out.reason, m.reason);
    if (flags & NXC_CTRL_FLAG_ADDR) {
        assert_int_equal(out.addr_len, sizeof g_addr);
        assert_memory_equal(out.addr, g_addr, sizeof g_addr);
    } else {
        assert_null(out.addr);
    }
    if (type == NXC_CTRL_WRITE) {
        assert_int_equal(out.data_len, sizeof g_data);
        assert_memory_equal(out.data, g_data, sizeof g_data);
    } else {
        assert_int_equal(out.data_len, 0);
    }
    free(buf);
}

static void round_trips(void **state)
{
    (void)state;
    check_round_trip(NXC_CTRL_BEGIN, NXC_CTRL_FLAG_AM | NXC_CTRL_FLAG_ADDR);
    check_round_trip(NXC_CTRL_BEGIN, NXC_CTRL_FLAG_AM);
    check_round_trip(NXC_CTRL_BEGIN, NXC_CTRL_FLAG_AM | NXC_CTRL_FLAG_ADDR | NXC_CTRL_FLAG_PULL |
                                         NXC_CTRL_FLAG_RUNS);
    check_round_trip(NXC_CTRL_WRITE, NXC_CTRL_FLAG_AM | NXC_CTRL_FLAG_ADDR);
    check_round_trip(NXC_CTRL_WRITE, NXC_CTRL_FLAG_AM); /* to a peer that answered us */
    check_round_trip(NXC_CTRL_DONE, NXC_CTRL_FLAG_AM);
    check_round_trip(NXC_CTRL_ABORT, 0);
    check_round_trip(NXC_CTRL_ACK, 0);
    check_round_trip(NXC_CTRL_NACK, 0);
}

/* A message of `m` changed by `mutate`, cut to `len` bytes (0: whole). */
static int decode_mutated(nxc_ctrl_msg_t m, void (*mutate)(uint8_t *), size_t cut)
{
    size_t len;
    uint8_t *buf = encode(&m, &len);
    if (mutate != NULL)
        mutate(buf);
    nxc_ctrl_msg_t out;
    int rc = nxc_ctrl_decode(buf, cut ? cut : len, &out);
    free(buf);
    return rc;
}

static void other_version(uint8_t *b) { b[1] = NXC_CTRL_VERSION - 1; }
static void no_name(uint8_t *b) { nxc_put_u16(b + 2, 0); }
static void long_name(uint8_t *b) { nxc_put_u16(b + 2, 200); }
static void long_addr(uint8_t *b) { nxc_put_u32(b + NXC_CTRL_FIXED_LEN + 8, 41); }
static void drop_addr_flag(uint8_t *b) { b[0] &= (uint8_t)~NXC_CTRL_FLAG_ADDR; }

static void refuses_malformed(void **state)
{
    (void)state;
    nxc_ctrl_msg_t begin = message(NXC_CTRL_BEGIN, NXC_CTRL_FLAG_AM | NXC_CTRL_FLAG_ADDR);
    assert_int_equal(decode_mutated(begin, NULL, 0), 0); /* the control */
    assert_int_equal(decode_mutated(begin, other_version, 0), -1);
    assert_int_equal(decode_mutated(begin, no_name, 0), -1);
    assert_int_equal(decode_mutated(begin, long_name, 0), -1);
    assert_int_equal(decode_mutated(begin, long_addr, 0), -1);
    assert_int_equal(decode_mutated(begin, NULL, NXC_CTRL_FIXED_LEN - 1), -1);
    assert_int_equal(decode_mutated(begin, NULL, NXC_CTRL_FIXED_LEN + 8 + 2), -1);
    /* trailing bytes (the address flag cleared: the address is left over) */
    assert_int_equal(decode_mutated(begin, drop_addr_flag, 0), -1);
    nxc_ctrl_msg_t write = message(NXC_CTRL_WRITE, NXC_CTRL_FLAG_AM);
    write.data_len = 0;
    assert_int_equal(decode_mutated(write, NULL, 0), -1); /* WRITE without data */
}

static uint8_t *read_seed(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", seed_dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open seed %s", path);
    uint8_t *buf = malloc(1 << 16);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

/* Every 'C' seed decodes and encodes back to itself; every valid_*.json
 * parses. Counts both, so that an empty or misnamed folder fails too. */
static void seeds_match_this_format(void **state)
{
    (void)state;
    DIR *d = opendir(seed_dir);
    if (d == NULL)
        fail_msg("cannot open the seed folder %s", seed_dir);
    unsigned ctrl = 0, docs = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len;
        if (strncmp(e->d_name, "ctrl_", 5) == 0) {
            uint8_t *buf = read_seed(e->d_name, &len);
            nxc_ctrl_msg_t m;
            if (len < 1 || buf[0] != 'C' || nxc_ctrl_decode(buf + 1, len - 1, &m) != 0)
                fail_msg("seed %s is not a control message of wire version %u: rewrite the "
                         "seeds with fuzz_gen_corpus (fuzz/CMakeLists.txt)",
                         e->d_name, NXC_CTRL_VERSION);
            uint8_t *again = malloc(len - 1);
            assert_non_null(again);
            assert_int_equal(nxc_ctrl_encode(&m, again), len - 1);
            assert_memory_equal(again, buf + 1, len - 1);
            free(again);
            free(buf);
            ctrl++;
        } else if (strncmp(e->d_name, "valid_", 6) == 0) {
            uint8_t *buf = read_seed(e->d_name, &len);
            nxc_metadata_t *md = NULL;
            if (nxc_metadata_parse((const char *)buf, len, &md) != NXC_OK)
                fail_msg("seed %s no longer parses (%s): rewrite the seeds with "
                         "fuzz_gen_corpus (fuzz/CMakeLists.txt)", e->d_name, nxc_last_error());
            nxc_metadata_free(md);
            free(buf);
            docs++;
        }
    }
    closedir(d);
    assert_true(ctrl >= 8);
    assert_true(docs >= 4);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SEED_DIR\n", argv[0]);
        return 2;
    }
    seed_dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trips),
        cmocka_unit_test(refuses_malformed),
        cmocka_unit_test(seeds_match_this_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
