/* nxc_op_bytes_done(): on both sides of reads and writes, sampled after
 * every step of driving, the count never falls, never exceeds the total,
 * moves in whole messages (runs of adjacent buffers cut at 64 MiB; with
 * NXC_PROTOCOL=rma it stays 0 until COMPLETE), starts at 0 and is exactly
 * the total once COMPLETE. Two connectors in one process. */
#include <stdlib.h>
#include <string.h>

#include "e2e_common.h"

typedef struct layout {
    const char *name;
    size_t      n;      /* adjacent descriptors of one allocation */
    size_t      size;   /* each */
    size_t      step;   /* what one message carries */
} layout_t;

static const layout_t layouts[] = {
    { "2 x 64 MiB", 2, 64 * MiB, 64 * MiB },   /* one message per buffer */
    { "96 x 1 MiB", 96, MiB, 64 * MiB },       /* joined, cut at 64 MiB */
};

typedef struct sample {
    nxc_op_t   *op;
    const char *side;
    uint64_t    last;
} sample_t;

static void check_sample(sample_t *s, const layout_t *l, int rma)
{
    uint64_t total = l->n * l->size, now = 0;
    CHECK_RC(nxc_op_bytes_done(s->op, &now), NXC_OK);
    int complete = nxc_op_status(s->op) == NXC_OP_COMPLETE;
    CHECK(now >= s->last && now <= total, "%s, %s: count went from %llu to %llu of %llu",
          l->name, s->side, (unsigned long long)s->last, (unsigned long long)now,
          (unsigned long long)total);
    CHECK(now % l->step == 0 || now == total, "%s, %s: %llu is not whole messages of %zu",
          l->name, s->side, (unsigned long long)now, l->step);
    CHECK(!rma || complete || now == 0, "%s, %s: RMA counted %llu before COMPLETE",
          l->name, s->side, (unsigned long long)now);
    s->last = now;
}

static nxc_descriptor_t *carve(const layout_t *l, uint8_t **base)
{
    nxc_descriptor_t *d = calloc(l->n, sizeof *d);
    *base = malloc(l->n * l->size);
    CHECK(d != NULL && *base != NULL, "malloc");
    memset(*base, 0x33, l->n * l->size);
    for (size_t i = 0; i < l->n; i++)
        d[i] = (nxc_descriptor_t){ *base + i * l->size, l->size, { NXC_DEVICE_HOST, 0 } };
    return d;
}

static void run_case(nxc_connector_t *P, nxc_connector_t *A, nxc_op_kind_t kind,
                     const layout_t *l, int rma)
{
    uint8_t *pbase, *abase;
    nxc_descriptor_t *pd = carve(l, &pbase), *ad = carve(l, &abase);
    nxc_op_t *passive, *active;
    e2e_step(l->name);
    CHECK_RC(kind == NXC_OP_READ ? nxc_create_readable(P, pd, l->n, &passive)
                                 : nxc_create_writable(P, pd, l->n, &passive), NXC_OK);
    sample_t s[2] = { { passive, "passive", 0 }, { NULL, "active", 0 } };
    CHECK_RC(nxc_op_bytes_done(passive, NULL), NXC_ERR_INVALID_ARG);
    check_sample(&s[0], l, rma);
    CHECK(s[0].last == 0, "a new passive op counted %llu", (unsigned long long)s[0].last);
    nxc_metadata_t *md = e2e_parse(e2e_op_metadata(passive));
    CHECK_RC(kind == NXC_OP_READ ? nxc_begin_read(A, md, ad, l->n, &active)
                                 : nxc_begin_write(A, ad, l->n, md, &active), NXC_OK);
    s[1].op = active;
    double deadline = e2e_now_ms() + 20000;
    while (!(e2e_is_final(nxc_op_status(passive)) && e2e_is_final(nxc_op_status(active)))) {
        CHECK(e2e_now_ms() < deadline, "%s %s did not finish", nxc_op_kind_name(kind), l->name);
        nxc_connector_progress(P);
        check_sample(&s[0], l, rma);
        nxc_connector_progress(A);
        check_sample(&s[1], l, rma);
    }
    CHECK_RC(nxc_op_wait(active, 0), NXC_OK);
    CHECK_RC(nxc_op_wait(passive, 0), NXC_OK);
    for (int i = 0; i < 2; i++) {
        check_sample(&s[i], l, rma);
        CHECK(s[i].last == l->n * l->size, "%s %s, %s: COMPLETE but counted %llu",
              nxc_op_kind_name(kind), l->name, s[i].side, (unsigned long long)s[i].last);
    }
    nxc_op_release(active);
    nxc_op_release(passive);
    nxc_metadata_free(md);
    free(pd);
    free(ad);
    free(pbase);
    free(abase);
}

int main(void)
{
    e2e_init("e2e_bytes_done", 120);
    const char *proto = getenv("NXC_PROTOCOL");
    int rma = proto != NULL && strcmp(proto, "rma") == 0;
    uint64_t bytes = 0;
    CHECK_RC(nxc_op_bytes_done(NULL, &bytes), NXC_ERR_INVALID_ARG);
    nxc_connector_t *P = e2e_connector(NULL), *A = e2e_connector(NULL);
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        run_case(P, A, NXC_OP_WRITE, &layouts[i], rma);
        run_case(P, A, NXC_OP_READ, &layouts[i], rma);
    }
    nxc_connector_destroy(A);
    nxc_connector_destroy(P);
    return e2e_pass("%s, %s: monotone, whole messages, exact at COMPLETE",
                    e2e_transport(), rma ? "rma" : "am");
}
