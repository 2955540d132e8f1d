/* The protocol table: which protocol an op moves its bytes with (see
 * protocol.h and, for why, transport.h). */
#include "transport/protocol.h"

#include <stdlib.h>
#include <string.h>

#include "codec/nixl_blob.h"
#include "common/error.h"
#include "common/log.h"
#include "transport/direct.h"
#include "transport/nixl_peer.h"
#include "transport/transport.h"

/* The transports and devices of the context ("posix/memory tcp/lo ..."),
 * each once, for the log. */
static void context_resources(ucp_context_h ctx, char *out, size_t size)
{
    char *text = NULL;
    size_t len = 0, n = 0;
    FILE *f = open_memstream(&text, &len);
    out[0] = '\0';
    if (f == NULL)
        return;
    ucp_context_print_info(ctx, f);
    fclose(f);
    for (const char *p = text; p != NULL && (p = strstr(p, "-- ")) != NULL; p += 3) {
        char name[64];
        if (sscanf(p + 3, "%63s", name) == 1 && strstr(out, name) == NULL && n + strlen(name) + 2 < size)
            n += (size_t)snprintf(out + n, size - n, "%s%s", n ? " " : "", name);
    }
    free(text);
}

int nxc_protocol_choose_default(nxc_connector_t *c)
{
    const char *forced = getenv("NXC_PROTOCOL");
    if (forced != NULL && strcmp(forced, "rma") == 0)
        c->proto = &nxc_protocol_rma;
    else if (forced != NULL && strcmp(forced, "am") == 0)
        c->proto = &nxc_protocol_am;
    else if (forced != NULL && forced[0] != '\0')
        return nxc_fail(NXC_ERR_INVALID_ARG, "NXC_PROTOCOL is '%s'; use 'rma' or 'am'", forced);
    else
        c->proto = c->has_rdma ? &nxc_protocol_rma : &nxc_protocol_am;
    c->proto_forced = forced != NULL && forced[0] != '\0';
    if (NXC_LOG_INFO <= atomic_load_explicit(&nxc_log_threshold, memory_order_relaxed)) {
        char res[512];
        context_resources(c->context, res, sizeof res);
        NXC_LOG(NXC_LOG_INFO, "connector '%s': protocol %s%s; shared memory %s; UCX %s, "
                "transports/devices: %s", c->name,
                c->proto == &nxc_protocol_rma ? "RMA (puts/gets)" : "AM (rendezvous messages)",
                c->proto_forced ? " (forced by NXC_PROTOCOL)" : "",
                c->has_shm ? "available" : "not available",
                ucp_get_version_string(), res);
    }
    return NXC_OK;
}

/* Put/get into a same-host peer's UCX shared segment (nxc_mem_alloc
 * memory) go straight into the mapped segment: faster than messages for
 * large transfers (see nxc_mem_alloc in the header for the figures). */
static int rma_is_real(const nxc_op_t *op, const nxc_metadata_t *md)
{
    if (!op->peer->via_shm || md->blob.n_regions == 0)
        return 0;
    for (uint32_t r = 0; r < md->blob.n_regions; r++)
        if (!(md->blob.regions[r].flags & NXC_REGION_UCX_ALLOCATED))
            return 0;
    return 1;
}

const nxc_protocol_t *nxc_protocol_for_target(nxc_op_t *op, const nxc_metadata_t *md)
{
    if (md->wire == NXC_WIRE_NIXL)
        return &nxc_protocol_nixl;
    if (op->c->proto_forced)
        return op->c->proto;
    if (nxc_direct_usable(op, md))
        return &nxc_protocol_direct;
    return rma_is_real(op, md) ? &nxc_protocol_rma : op->c->proto;
}

/* Not honest: a BEGIN without a tag, a pull of a writable op, a WRITE not
 * of AM or for a readable op. */
const nxc_protocol_t *nxc_protocol_for_begin(const nxc_op_t *op, const nxc_ctrl_msg_t *m)
{
    int am = (m->flags & NXC_CTRL_FLAG_AM) != 0, pull = (m->flags & NXC_CTRL_FLAG_PULL) != 0;
    const nxc_protocol_t *proto = am ? &nxc_protocol_am : &nxc_protocol_rma;
    if (m->tag == 0 ||
        (op != NULL && pull && op->kind != NXC_OP_READ))
        return NULL;
    if (m->type == NXC_CTRL_WRITE && (!am || pull || (op != NULL && op->kind != NXC_OP_WRITE)))
        return NULL;
    return proto;
}

int nxc_protocols_listen(nxc_connector_t *c)
{
    int rc = nxc_transport_listen(c, NXC_AM_DATA_ID, nxc_am_data_received);
    if (rc == NXC_OK)
        rc = nxc_transport_listen(c, NXC_NIXL_NOTIF_AM_ID, nxc_nixl_notif_received);
    return rc;
}

/* ---- the engine's calls (transport.h) ---- */

int nxc_transport_publish(nxc_op_t *op)
{
    nxc_connector_t *c = op->c;
    nxc_region_t *regions = NULL;
    uint32_t n_regions = 0;
    int rc = nxc_transport_expose(op, &regions, &n_regions);
    if (rc != NXC_OK)
        return rc;
    if (c->wire == NXC_WIRE_NIXL) {
        rc = nxc_nixl_build_metadata(op, regions, n_regions);
        nxc_transport_free_regions(regions, n_regions);
        return rc;
    }
    nxc_agent_blob_t blob = {
        .name = c->name,
        .name_len = (uint16_t)strlen(c->name),
        .identity = c->identity,
        .worker_addr = (const uint8_t *)c->worker_addr,
        .worker_addr_len = (uint32_t)c->worker_addr_len,
        .n_regions = n_regions,
        .regions = regions,
    };
    rc = nxc_gate_assign(op, &blob.gate);
    if (rc == NXC_OK)
        rc = nxc_metadata_encode(op->kind, op->key, op->descs, op->n, &blob, &op->json,
                             &op->json_len);
    nxc_transport_free_regions(regions, n_regions);
    return rc;
}

void nxc_transport_begun(nxc_op_t *op, const nxc_ctrl_msg_t *m)
{
    if (op->proto->begun != NULL)
        op->proto->begun(op, m);
}

int nxc_transport_take_inline(nxc_op_t *op, const nxc_ctrl_msg_t *m)
{
    if (op->proto->take_inline == NULL) {
        op->c->spoofed_notifications++;
        return 0;
    }
    op->proto->take_inline(op, m);
    return 1;
}

int nxc_transport_all_landed(const nxc_op_t *op)
{
    return op->proto->all_landed == NULL || op->proto->all_landed(op);
}

int nxc_transport_busy(const nxc_op_t *op)
{
    return op->proto->busy(op);
}

/* A passive op has no protocol until its BEGIN or data comes: nothing of
 * it runs yet. */
unsigned nxc_transport_receiving(const nxc_op_t *op)
{
    return op->proto != NULL && op->proto->receiving != NULL ? op->proto->receiving(op) : 0;
}

int nxc_transport_sending(const nxc_op_t *op)
{
    return op->proto != NULL && op->proto->sending != NULL && op->proto->sending(op);
}

uint64_t nxc_transport_bytes_moved(const nxc_op_t *op)
{
    return op->proto != NULL && op->proto->bytes_moved != NULL ? op->proto->bytes_moved(op) : 0;
}

void nxc_transport_drop_remote(nxc_op_t *op)
{
    if (op->proto != NULL && op->proto->drop_remote != NULL)
        op->proto->drop_remote(op);
}
