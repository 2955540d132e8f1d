/* Private: the metadata codec.
 *
 * Text form: the JSON of Dynamo's RdmaMetadata, field for field:
 *   {"descriptors":[{"device":"cpu","ptr":140230224,"size":4096}],
 *    "nixl_metadata":"b64:<base64 of zlib(agent blob)>",
 *    "notification_key":"<32 lowercase hex digits>","operation_kind":2}
 * A bare hex string instead of "b64:..." is accepted too (older Dynamo).
 * The agent blob inside is either ours (below) or NIXL's own agent
 * metadata (nixl_blob.h), told apart by its first bytes.
 *
 * Agent blob: our own versioned binary record (little-endian), see
 * metadata.c for the exact layout. It names the passive worker, says how to
 * reach it (UCX worker address), where it runs (pid, host identity, so a
 * same-host peer can watch it with a pidfd) and carries one packed UCX rkey
 * per registered region of *this op's* memory only. */
#ifndef NXC_METADATA_H
#define NXC_METADATA_H

#include <stddef.h>
#include <stdint.h>

#include "common/identity.h"
#include "nixl_connect.h"

#define NXC_BLOB_MAGIC       0x4258434eu /* "NCXB" read little-endian */
#define NXC_BLOB_VERSION     1u          /* without a gate */
#define NXC_BLOB_VERSION_GATE 2u         /* with a gate (direct.h) after the regions */
#define NXC_KEY_BYTES        16          /* 128 random bits */
#define NXC_KEY_HEX_LEN      (2 * NXC_KEY_BYTES)
#define NXC_NAME_MAX         255
#define NXC_MAX_DESCRIPTORS  (1u << 20)  /* per op; far above any KV cache */
#define NXC_MAX_METADATA_LEN (256u << 20)
#define NXC_MAX_BLOB_LEN     (256u << 20) /* decompressed */
#define NXC_MAX_WORKER_ADDR  (64u << 10)
#define NXC_MAX_RKEY_LEN     (64u << 10)
/* A NIXL peer's notification key is any text (Dynamo: str(uuid4())). */
#define NXC_NIXL_KEY_MAX     255

/* Region flags. */
#define NXC_REGION_UCX_ALLOCATED 0x1u /* memory came from UCX (shared segment) */

/* One registered, contiguous span of the op's memory. */
typedef struct nxc_region {
    uint64_t       base;
    uint64_t       len;
    uint32_t       flags;
    const uint8_t *rkey;     /* packed UCX rkey, borrowed (see below) */
    uint32_t       rkey_len;
} nxc_region_t;

/* Where a same-host peer may claim the op for a direct copy (direct.h):
 * the passive process's gate fd, the op's slot in it, and the slot's
 * generation when the op took it. */
typedef struct nxc_gate_ref {
    int      present;
    uint32_t fd;
    uint32_t slot;
    uint32_t gen;
    uint64_t id;      /* names the gate's memfd ("nxc-gate-<16 hex digits>") */
} nxc_gate_ref_t;

/* Decoded agent blob. All pointers borrow from the buffer it was decoded
 * from (or, when encoding, from the caller). */
typedef struct nxc_agent_blob {
    const char    *name;      /* not NUL-terminated; name_len bytes */
    uint16_t       name_len;  /* 1..NXC_NAME_MAX */
    nxc_identity_t identity;
    const uint8_t *worker_addr;
    uint32_t       worker_addr_len;
    uint32_t       n_regions;
    nxc_region_t  *regions;   /* decode: allocated, freed with the metadata */
    nxc_gate_ref_t gate;      /* version 2 only */
} nxc_agent_blob_t;

/* Parsed metadata (the public opaque nxc_metadata_t). */
struct nxc_metadata {
    nxc_op_kind_t     kind;
    nxc_wire_t        wire;      /* whose agent blob: ours or NIXL's */
    /* The notification key as text: 32 hex digits for our peers (decoded
     * into key), any 1..NXC_NIXL_KEY_MAX printable bytes for NIXL's. */
    char              key_text[NXC_NIXL_KEY_MAX + 1];
    size_t            key_len;
    uint8_t           key[NXC_KEY_BYTES];
    size_t            n_descs;
    nxc_descriptor_t *descs;
    char              name[NXC_NAME_MAX + 1]; /* NUL-terminated copy */
    nxc_agent_blob_t  blob;
    uint8_t          *blob_buf;  /* owns the decompressed blob bytes */
    size_t            blob_buf_len;
};

/* Serializes a blob to its binary form. *out is malloc'd, caller frees. */
int nxc_blob_encode(const nxc_agent_blob_t *b, uint8_t **out, size_t *out_len);

/* Decodes and validates a binary blob. On success out->regions is malloc'd
 * (free it), every other pointer borrows from buf. Checks magic, version,
 * every length against what remains, counts against NXC_MAX_*. */
int nxc_blob_decode(const uint8_t *buf, size_t len, nxc_agent_blob_t *out);

/* Builds the JSON text. *json is malloc'd and NUL-terminated, caller frees. */
int nxc_metadata_encode(nxc_op_kind_t kind, const uint8_t key[NXC_KEY_BYTES],
                        const nxc_descriptor_t *descs, size_t n,
                        const nxc_agent_blob_t *blob, char **json, size_t *json_len);

/* The same, with the agent blob in the given wire's format (NXC_WIRE_NIXL:
 * NIXL agent metadata a Dynamo worker can load; identity is not carried). */
int nxc_metadata_encode_wire(nxc_op_kind_t kind, const uint8_t key[NXC_KEY_BYTES],
                             const nxc_descriptor_t *descs, size_t n,
                             const nxc_agent_blob_t *blob, nxc_wire_t wire, char **json,
                             size_t *json_len);

#endif
