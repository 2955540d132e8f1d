/*
 * e2e_api — the API contract at its edges, in one process with real UCX:
 *  - nxc_connector_create: empty / over-long name, spin out of range, NULL
 *    out -> NXC_ERR_INVALID_ARG; the default name is 32 hex digits; two
 *    connectors get different names; a given name is kept.
 *  - create_readable / create_writable: n == 0, NULL list, NULL pointer
 *    (detail names the index), NULL connector / out -> INVALID_ARG; mixed
 *    device kinds -> NXC_ERR_DEVICE; CUDA memory -> NXC_ERR_UNSUPPORTED.
 *  - begin_read / begin_write: WRITE metadata for a read and vice versa ->
 *    NXC_ERR_WRONG_KIND; count and size mismatch -> NXC_ERR_SIZE_MISMATCH
 *    (the detail names the index and both sizes); n == 0, NULL pointer,
 *    NULL connector / metadata / out -> INVALID_ARG; mixed kinds -> DEVICE;
 *    CUDA -> UNSUPPORTED. Every failure leaves a detail in nxc_last_error()
 *    and leaves the out parameter untouched. After all of them, the passive
 *    ops are still INITIALIZED and complete a real transfer.
 *  - nxc_op_metadata on an active op -> NXC_ERR_STATE.
 *
 * GPU ASSUMPTION: this machine has no GPU and Debian's UCX 1.13.1 is built
 * without CUDA, so a "cuda:0" descriptor must give NXC_ERR_UNSUPPORTED. On a
 * CUDA-enabled build this expectation would not hold (and a host pointer
 * labelled cuda:0 would be wrong input anyway); set NXC_E2E_HAVE_CUDA=1 to
 * skip those checks there.
 */
#include "e2e_common.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_sentinel; /* its address marks "out parameter not written" */
#define SENTINEL ((nxc_op_t *)(void *)&g_sentinel)

/* Calls that must fail with @code, leave a detail, and leave out untouched. */
#define EXPECT_FAIL(call, code, ...)                                                        \
    do {                                                                                    \
        CHECK_RC(call, code, __VA_ARGS__);                                                  \
        CHECK(nxc_last_error()[0] != '\0', "no nxc_last_error() detail after %s", #call);   \
    } while (0)

static size_t g_checks;

static void detail_names(const char *what, unsigned long long a, unsigned long long b,
                         unsigned long long c)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", nxc_last_error());
    CHECK(e2e_has_number(copy, a) && e2e_has_number(copy, b) && e2e_has_number(copy, c),
          "%s: detail \"%s\" does not name %llu, %llu and %llu", what, copy, a, b, c);
    g_checks++;
}

static void detail_names_index(const char *what, unsigned long long idx)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", nxc_last_error());
    CHECK(e2e_has_number(copy, idx), "%s: detail \"%s\" does not name index %llu", what, copy,
          idx);
    g_checks++;
}

static int have_cuda(void)
{
    const char *s = getenv("NXC_E2E_HAVE_CUDA");
    return s && *s == '1';
}

static void test_connector_create(void)
{
    nxc_connector_t *c = (nxc_connector_t *)(void *)&g_checks, *sentinel = c;
    nxc_connector_config_t cfg;

    EXPECT_FAIL(nxc_connector_create(NULL, NULL), NXC_ERR_INVALID_ARG);

    memset(&cfg, 0, sizeof cfg);
    cfg.field_mask = NXC_CONFIG_NAME;
    cfg.name = "";
    EXPECT_FAIL(nxc_connector_create(&cfg, &c), NXC_ERR_INVALID_ARG, "(empty name)");
    CHECK(c == sentinel, "out written on failure");

    char longname[300];
    memset(longname, 'x', sizeof longname);
    longname[256] = 0;
    cfg.name = longname;
    EXPECT_FAIL(nxc_connector_create(&cfg, &c), NXC_ERR_INVALID_ARG, "(256-byte name)");
    CHECK(c == sentinel, "out written on failure");

    memset(&cfg, 0, sizeof cfg);
    cfg.field_mask = NXC_CONFIG_SPIN_US;
    cfg.spin_us = 1000001;
    EXPECT_FAIL(nxc_connector_create(&cfg, &c), NXC_ERR_INVALID_ARG, "(spin_us 1000001)");
    CHECK(c == sentinel, "out written on failure");

    /* NXC_REACH_TIMEOUT_MS, when set, is a number of ms of at least 100 */
    static const char *bad_reach[] = { "abc", "50", "-5", "1000x", "99999999999999999999" };
    for (size_t i = 0; i < sizeof bad_reach / sizeof bad_reach[0]; i++) {
        setenv("NXC_REACH_TIMEOUT_MS", bad_reach[i], 1);
        EXPECT_FAIL(nxc_connector_create(NULL, &c), NXC_ERR_INVALID_ARG, "(reach %s)",
                    bad_reach[i]);
        CHECK(strstr(nxc_last_error(), "NXC_REACH_TIMEOUT_MS") != NULL, "detail: %s",
              nxc_last_error());
        CHECK(c == sentinel, "out written on failure");
    }
    unsetenv("NXC_REACH_TIMEOUT_MS");

    /* NXC_DIRECT_LOCAL, when set, is 0 or 1; the config field wins over it */
    const char *saved_direct = getenv("NXC_DIRECT_LOCAL");
    char *saved_copy = saved_direct ? strdup(saved_direct) : NULL;
    static const char *bad_direct[] = { "yes", "2", "01", "-1", " 1" };
    for (size_t i = 0; i < sizeof bad_direct / sizeof bad_direct[0]; i++) {
        setenv("NXC_DIRECT_LOCAL", bad_direct[i], 1);
        EXPECT_FAIL(nxc_connector_create(NULL, &c), NXC_ERR_INVALID_ARG, "(direct '%s')",
                    bad_direct[i]);
        CHECK(strstr(nxc_last_error(), "NXC_DIRECT_LOCAL") != NULL, "detail: %s",
              nxc_last_error());
        CHECK(c == sentinel, "out written on failure");
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.field_mask = NXC_CONFIG_DIRECT_LOCAL;
    CHECK_RC(nxc_connector_create(&cfg, &c), NXC_OK, "(direct_local set, NXC_DIRECT_LOCAL bad)");
    nxc_connector_destroy(c);
    c = sentinel;
    if (saved_copy != NULL)
        setenv("NXC_DIRECT_LOCAL", saved_copy, 1);
    else
        unsetenv("NXC_DIRECT_LOCAL");
    free(saved_copy);

    /* a 255-byte name is fine and kept verbatim */
    memset(&cfg, 0, sizeof cfg);
    longname[255] = 0;
    cfg.field_mask = NXC_CONFIG_NAME | NXC_CONFIG_SPIN_US;
    cfg.name = longname;
    cfg.spin_us = 0;
    CHECK_RC(nxc_connector_create(&cfg, &c), NXC_OK, "(255-byte name)");
    CHECK(strcmp(nxc_connector_name(c), longname) == 0, "name not kept");
    nxc_connector_destroy(c);

    /* one live connector per name in a process; the name is free again
     * after destroy, and a forked child may use a name its parent's live
     * connector has (the child cannot use the parent's) */
    nxc_connector_t *first = NULL;
    c = sentinel;
    memset(&cfg, 0, sizeof cfg);
    cfg.field_mask = NXC_CONFIG_NAME;
    cfg.name = "e2e-api-twice";
    CHECK_RC(nxc_connector_create(&cfg, &first), NXC_OK, "(first under the name)");
    EXPECT_FAIL(nxc_connector_create(&cfg, &c), NXC_ERR_INVALID_ARG, "(same name, both live)");
    CHECK(strstr(nxc_last_error(), "e2e-api-twice") != NULL &&
          strstr(nxc_last_error(), "already live") != NULL, "detail: %s", nxc_last_error());
    CHECK(c == sentinel, "out written on failure");
    fflush(NULL);
    pid_t kid = fork();
    if (kid == 0) {
        nxc_connector_t *mine = NULL;
        _exit(nxc_connector_create(&cfg, &mine) == NXC_OK ? 0 : 1);
    }
    int kid_status = 0;
    CHECK(kid > 0 && waitpid(kid, &kid_status, 0) == kid && WIFEXITED(kid_status) &&
          WEXITSTATUS(kid_status) == 0, "a forked child could not create a connector under "
          "its parent's live name (status 0x%x)", kid_status);
    nxc_connector_destroy(first);
    CHECK_RC(nxc_connector_create(&cfg, &c), NXC_OK, "(the name again, after destroy)");
    nxc_connector_destroy(c);
    c = sentinel;

    /* defaults: 32 hex digits, fresh per connector */
    nxc_connector_t *c1 = NULL, *c2 = NULL;
    CHECK_RC(nxc_connector_create(NULL, &c1), NXC_OK);
    memset(&cfg, 0, sizeof cfg); /* field_mask 0: all defaults too */
    CHECK_RC(nxc_connector_create(&cfg, &c2), NXC_OK);
    const char *n1 = nxc_connector_name(c1), *n2 = nxc_connector_name(c2);
    CHECK(n1 && n2, "NULL names");
    for (const char *const *pn = (const char *const[]){ n1, n2, NULL }; *pn; pn++) {
        CHECK(strlen(*pn) == 32, "default name '%s' is not 32 characters", *pn);
        for (const char *q = *pn; *q; q++)
            CHECK(isxdigit((unsigned char)*q), "default name '%s' is not hexadecimal", *pn);
    }
    CHECK(strcmp(n1, n2) != 0, "two connectors got the same default name '%s'", n1);
    CHECK(nxc_connector_fd(c1) >= 0, "nxc_connector_fd = %d", nxc_connector_fd(c1));
    CHECK(nxc_connector_progress(c1) >= 0, "progress failed");
    EXPECT_FAIL(nxc_connector_fd(NULL), NXC_ERR_INVALID_ARG);
    EXPECT_FAIL(nxc_connector_timeout_ms(NULL), NXC_ERR_INVALID_ARG);
    CHECK(nxc_connector_timeout_ms(c1) == -1, "an idle connector asks for a %d ms timeout",
          nxc_connector_timeout_ms(c1));
    EXPECT_FAIL(nxc_connector_progress(NULL), NXC_ERR_INVALID_ARG);
    nxc_wakeup_stats_t w;
    memset(&w, 0xff, sizeof w);
    CHECK_RC(nxc_connector_wakeups(c1, &w), NXC_OK);
    CHECK(w.sleeps == 0 && w.fd_wakeups == 0 && w.backstop_fired == 0 &&
          w.backstop_served == 0, "a connector that never waited reports wake-ups");
    EXPECT_FAIL(nxc_connector_wakeups(NULL, &w), NXC_ERR_INVALID_ARG);
    EXPECT_FAIL(nxc_connector_wakeups(c1, NULL), NXC_ERR_INVALID_ARG);
    nxc_connector_destroy(c1);
    nxc_connector_destroy(c2);
    nxc_connector_destroy(NULL); /* no-op */
    g_checks += 16;
}

static void set_descs(nxc_descriptor_t *d, e2e_bufs_t *b)
{
    memcpy(d, b->d, b->n * sizeof *d);
}

static void test_passive_errors(nxc_connector_t *B)
{
    static const size_t sizes[5] = { 10, 20, 30, 40, 50 };
    e2e_bufs_t b;
    e2e_bufs_alloc(&b, 7, 5, sizes);
    nxc_descriptor_t d[5];
    nxc_op_t *op = SENTINEL;

    for (int w = 0; w < 2; w++) {
        int (*create)(nxc_connector_t *, const nxc_descriptor_t *, size_t, nxc_op_t **) =
            w ? nxc_create_writable : nxc_create_readable;
        const char *nm = w ? "create_writable" : "create_readable";
        set_descs(d, &b);
        EXPECT_FAIL(create(B, d, 0, &op), NXC_ERR_INVALID_ARG, "(%s n == 0)", nm);
        EXPECT_FAIL(create(B, NULL, 0, &op), NXC_ERR_INVALID_ARG, "(%s NULL, 0)", nm);
        EXPECT_FAIL(create(B, NULL, 3, &op), NXC_ERR_INVALID_ARG, "(%s NULL list)", nm);
        EXPECT_FAIL(create(NULL, d, 5, &op), NXC_ERR_INVALID_ARG, "(%s NULL connector)", nm);
        EXPECT_FAIL(create(B, d, 5, NULL), NXC_ERR_INVALID_ARG, "(%s NULL out)", nm);

        d[3].ptr = NULL;
        EXPECT_FAIL(create(B, d, 5, &op), NXC_ERR_INVALID_ARG, "(%s ptr NULL at [3])", nm);
        detail_names_index("NULL pointer at index 3", 3);
        set_descs(d, &b);
        d[0].ptr = NULL;
        d[0].size = 0; /* size 0 does not excuse a NULL pointer */
        EXPECT_FAIL(create(B, d, 5, &op), NXC_ERR_INVALID_ARG, "(%s ptr NULL size 0)", nm);

        set_descs(d, &b);
        d[4].device.kind = NXC_DEVICE_CUDA;
        EXPECT_FAIL(create(B, d, 5, &op), NXC_ERR_DEVICE, "(%s mixed cpu/cuda)", nm);

        if (!have_cuda()) {
            /* GPU ASSUMPTION: no CUDA support in this UCX */
            set_descs(d, &b);
            for (int i = 0; i < 5; i++) d[i].device = (nxc_device_t){ NXC_DEVICE_CUDA, 0 };
            EXPECT_FAIL(create(B, d, 5, &op), NXC_ERR_UNSUPPORTED, "(%s cuda:0)", nm);
        }
        CHECK(op == SENTINEL, "%s wrote its out parameter on failure", nm);
        g_checks += 9;
    }
    e2e_bufs_free(&b);
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every passive op gets its own key: many ops in a row (keys come from a
 * pool refilled every 64), on two connectors. */
static void test_keys_distinct(nxc_connector_t *A, nxc_connector_t *B)
{
    enum { PER_CONN = 300 };
    static char *keys[2 * PER_CONN];
    size_t size = 64;
    e2e_bufs_t b;
    e2e_bufs_alloc(&b, 5, 1, &size);
    nxc_connector_t *conns[2] = { A, B };
    for (int k = 0; k < 2 * PER_CONN; k++) {
        nxc_op_t *op = NULL;
        CHECK_RC(nxc_create_readable(conns[k / PER_CONN], b.d, 1, &op), NXC_OK);
        nxc_metadata_t *md = e2e_parse(e2e_op_metadata(op));
        keys[k] = strdup(nxc_metadata_notification_key(md));
        CHECK(keys[k] != NULL && strlen(keys[k]) >= 32, "key '%s'", keys[k] ? keys[k] : "");
        nxc_metadata_free(md);
        nxc_op_release(op);
    }
    qsort(keys, 2 * PER_CONN, sizeof keys[0], by_string);
    for (int k = 1; k < 2 * PER_CONN; k++)
        CHECK(strcmp(keys[k - 1], keys[k]) != 0, "two passive ops got the key %s", keys[k]);
    for (int k = 0; k < 2 * PER_CONN; k++)
        free(keys[k]);
    e2e_bufs_free(&b);
}

static void test_begin_errors(nxc_connector_t *A, nxc_connector_t *B)
{
    /* 7 descriptors; index 5 is the one we make disagree */
    static const size_t rsizes[7] = { 100, 200, 300, 400, 500, 4099, 700 };
    e2e_bufs_t rb, wb, lb;
    e2e_bufs_alloc(&rb, 11, 7, rsizes);
    e2e_bufs_alloc(&wb, 12, 7, rsizes);
    e2e_bufs_alloc(&lb, 11, 7, rsizes);
    e2e_bufs_fill(&rb, 0);
    e2e_bufs_fill(&wb, E2E_INIT_XOR);

    nxc_op_t *R = NULL, *W = NULL;
    CHECK_RC(nxc_create_readable(B, rb.d, 7, &R), NXC_OK);
    CHECK_RC(nxc_create_writable(B, wb.d, 7, &W), NXC_OK);
    CHECK(nxc_op_kind(R) == NXC_OP_READ && nxc_op_kind(W) == NXC_OP_WRITE, "op kinds");

    const char *rjson = NULL, *wjson = NULL;
    CHECK_RC(nxc_op_metadata(R, &rjson, NULL), NXC_OK, "(len may be NULL)");
    wjson = e2e_op_metadata(W);
    EXPECT_FAIL(nxc_op_metadata(NULL, &rjson, NULL), NXC_ERR_INVALID_ARG);
    EXPECT_FAIL(nxc_op_metadata(R, NULL, NULL), NXC_ERR_INVALID_ARG);
    for (const char *const *k = (const char *const[]){ "\"descriptors\"", "\"nixl_metadata\"",
                                                        "\"notification_key\"",
                                                        "\"operation_kind\"", NULL };
         *k; k++)
        CHECK(strstr(rjson, *k) != NULL, "metadata JSON lacks %s: %.200s", *k, rjson);

    nxc_metadata_t *rmd = e2e_parse(rjson), *wmd = e2e_parse(wjson);
    CHECK(nxc_metadata_kind(rmd) == NXC_OP_READ, "readable metadata kind %d",
          (int)nxc_metadata_kind(rmd));
    CHECK(nxc_metadata_kind(wmd) == NXC_OP_WRITE, "writable metadata kind %d",
          (int)nxc_metadata_kind(wmd));
    CHECK(strcmp(nxc_metadata_worker_name(rmd), nxc_connector_name(B)) == 0,
          "metadata worker '%s' != connector '%s'", nxc_metadata_worker_name(rmd),
          nxc_connector_name(B));
    CHECK(strcmp(nxc_metadata_notification_key(rmd), nxc_metadata_notification_key(wmd)) != 0,
          "two ops share a notification key");
    CHECK(nxc_metadata_descriptor_count(rmd) == 7, "count");
    nxc_descriptor_t md_d;
    EXPECT_FAIL(nxc_metadata_descriptor(rmd, 7, &md_d), NXC_ERR_INVALID_ARG, "(index 7 of 7)");
    nxc_metadata_t *bad = NULL;
    EXPECT_FAIL(nxc_metadata_parse("{\"descriptors\":[]}", 18, &bad), NXC_ERR_BAD_METADATA);
    EXPECT_FAIL(nxc_metadata_parse(NULL, 3, &bad), NXC_ERR_INVALID_ARG);
    CHECK(bad == NULL, "parse wrote out on failure");
    nxc_metadata_free(NULL);

    nxc_descriptor_t d[7];
    nxc_op_t *op = SENTINEL;

    /* wrong kind */
    set_descs(d, &lb);
    EXPECT_FAIL(nxc_begin_read(A, wmd, d, 7, &op), NXC_ERR_WRONG_KIND, "(read vs WRITE md)");
    EXPECT_FAIL(nxc_begin_write(A, d, 7, rmd, &op), NXC_ERR_WRONG_KIND, "(write vs READ md)");

    for (int w = 0; w < 2; w++) {
        const nxc_metadata_t *md = w ? wmd : rmd;
        const char *nm = w ? "begin_write" : "begin_read";
#define BEGIN(c_, md_, d_, n_, out_) \
    (w ? nxc_begin_write((c_), (d_), (n_), (md_), (out_)) : nxc_begin_read((c_), (md_), (d_), (n_), (out_)))
        set_descs(d, &lb);
        /* count mismatch */
        EXPECT_FAIL(BEGIN(A, md, d, 6, &op), NXC_ERR_SIZE_MISMATCH, "(%s 6 vs 7 descriptors)", nm);
        /* size mismatch at index 5: 4097 here, 4099 there */
        d[5].size = 4097;
        EXPECT_FAIL(BEGIN(A, md, d, 7, &op), NXC_ERR_SIZE_MISMATCH, "(%s size at [5])", nm);
        detail_names("size mismatch (local 4097, remote 4099 at index 5)", 5, 4097, 4099);
        d[5].size = 4100;
        EXPECT_FAIL(BEGIN(A, md, d, 7, &op), NXC_ERR_SIZE_MISMATCH, "(%s bigger at [5])", nm);
        detail_names("size mismatch (local 4100, remote 4099 at index 5)", 5, 4100, 4099);
        set_descs(d, &lb);
        /* empty, NULL */
        EXPECT_FAIL(BEGIN(A, md, d, 0, &op), NXC_ERR_INVALID_ARG, "(%s n == 0)", nm);
        EXPECT_FAIL(BEGIN(A, md, NULL, 7, &op), NXC_ERR_INVALID_ARG, "(%s NULL list)", nm);
        EXPECT_FAIL(BEGIN(NULL, md, d, 7, &op), NXC_ERR_INVALID_ARG, "(%s NULL connector)", nm);
        EXPECT_FAIL(BEGIN(A, NULL, d, 7, &op), NXC_ERR_INVALID_ARG, "(%s NULL metadata)", nm);
        EXPECT_FAIL(BEGIN(A, md, d, 7, NULL), NXC_ERR_INVALID_ARG, "(%s NULL out)", nm);
        d[2].ptr = NULL;
        EXPECT_FAIL(BEGIN(A, md, d, 7, &op), NXC_ERR_INVALID_ARG, "(%s ptr NULL at [2])", nm);
        detail_names_index("NULL local pointer at index 2", 2);
        set_descs(d, &lb);
        d[6].device = (nxc_device_t){ NXC_DEVICE_CUDA, 1 };
        EXPECT_FAIL(BEGIN(A, md, d, 7, &op), NXC_ERR_DEVICE, "(%s mixed cpu/cuda)", nm);
        if (!have_cuda()) {
            /* GPU ASSUMPTION: no CUDA support in this UCX */
            for (int i = 0; i < 7; i++) d[i].device = (nxc_device_t){ NXC_DEVICE_CUDA, 0 };
            EXPECT_FAIL(BEGIN(A, md, d, 7, &op), NXC_ERR_UNSUPPORTED, "(%s cuda:0)", nm);
        }
        CHECK(op == SENTINEL, "%s wrote its out parameter on failure", nm);
#undef BEGIN
        g_checks += 12;
    }

    /* none of that disturbed the passive ops: still INITIALIZED, and a real
     * read and a real write complete */
    CHECK(nxc_op_status(R) == NXC_OP_INITIALIZED && nxc_op_status(W) == NXC_OP_INITIALIZED,
          "passive ops changed state after failed begins: %s / %s",
          nxc_op_status_name(nxc_op_status(R)), nxc_op_status_name(nxc_op_status(W)));
    e2e_bufs_t sb; /* source of the write: pattern with W's seed */
    e2e_bufs_alloc(&sb, 12, 7, rsizes);
    e2e_bufs_fill(&sb, 0);
    e2e_bufs_fill(&lb, E2E_INIT_XOR);
    nxc_op_t *ar = NULL, *aw = NULL;
    CHECK_RC(nxc_begin_read(A, rmd, lb.d, 7, &ar), NXC_OK);
    CHECK_RC(nxc_begin_write(A, sb.d, 7, wmd, &aw), NXC_OK);
    /* an active op has no metadata */
    const char *js = (const char *)"x";
    EXPECT_FAIL(nxc_op_metadata(ar, &js, NULL), NXC_ERR_STATE, "(metadata of active read)");
    EXPECT_FAIL(nxc_op_metadata(aw, &js, NULL), NXC_ERR_STATE, "(metadata of active write)");
    CHECK(js[0] == 'x', "metadata out written on failure");
    nxc_op_t *all[4] = { ar, aw, R, W };
    CHECK(e2e_drive_until_final(all, 4, A, B, 60000) == 0, "transfers did not finish in 60 s");
    for (int i = 0; i < 4; i++)
        CHECK(nxc_op_status(all[i]) == NXC_OP_COMPLETE, "op %d ended %s", i,
              nxc_op_status_name(nxc_op_status(all[i])));
    CHECK(e2e_bufs_verify(&lb, 0, NULL, NULL) == 0, "read data wrong");
    CHECK(e2e_bufs_verify(&wb, 0, NULL, NULL) == 0, "written data wrong");
    /* metadata of a completed passive op is still readable until release */
    CHECK_RC(nxc_op_metadata(R, &rjson, NULL), NXC_OK);

    /* lifecycle calls with NULL */
    CHECK(nxc_op_status(NULL) == NXC_OP_UNINITIALIZED, "status(NULL)");
    EXPECT_FAIL(nxc_op_wait(NULL, 0), NXC_ERR_INVALID_ARG);
    EXPECT_FAIL(nxc_op_cancel(NULL), NXC_ERR_INVALID_ARG);
    const nxc_descriptor_t *rd = NULL;
    size_t rn = 0;
    EXPECT_FAIL(nxc_op_results(NULL, &rd, &rn), NXC_ERR_INVALID_ARG);
    EXPECT_FAIL(nxc_op_results(ar, NULL, &rn), NXC_ERR_INVALID_ARG);
    nxc_op_release(NULL);

    for (int i = 0; i < 4; i++) nxc_op_release(all[i]);
    nxc_metadata_free(rmd);
    nxc_metadata_free(wmd);
    e2e_bufs_free(&rb);
    e2e_bufs_free(&wb);
    e2e_bufs_free(&lb);
    e2e_bufs_free(&sb);
    g_checks += 20;
}

int main(void)
{
    e2e_init("e2e_api", 110);
    test_connector_create();
    nxc_connector_t *A = e2e_connector("e2e-api-A"), *B = e2e_connector("e2e-api-B");
    CHECK(strcmp(nxc_connector_name(A), "e2e-api-A") == 0, "name not kept");
    test_passive_errors(B);
    test_begin_errors(A, B);
    test_keys_distinct(A, B);
    nxc_connector_destroy(A);
    nxc_connector_destroy(B);
    return e2e_pass("%zu checks%s", g_checks,
                    have_cuda() ? ", CUDA checks skipped" : ", incl. cuda:0 -> UNSUPPORTED");
}
