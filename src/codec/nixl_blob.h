/* Private: NIXL's agent metadata (nixl_agent.get_agent_metadata()), the
 * blob a Dynamo worker puts inside RdmaMetadata.nixl_metadata.
 *
 * Format (NIXL's nixlSerDes, checked against ai-dynamo/nixl at 8770b655:
 * src/utils/serdes/serdes.cpp, src/core/nixl_agent.cpp getLocalMD,
 * src/infra/nixl_memory_section.cpp, src/infra/nixl_descriptors.cpp,
 * src/plugins/ucx/ucx_backend.cpp): the 11 bytes "nixlSerDes|", then
 * records `tag bytes | u64 little-endian length | value | '|'`, in order:
 *   "Agent"=name  "Conns"=u64 n  n x ("t"=backend, "c"=connection info)
 *   ""="MemSection"  "nixlSecElms"=u64 sections, per section:
 *     "bknd"=backend  "nixlDList"="nixlSDList"  "t"=u32 memory type
 *     "n"=u64 count, n x ""=(u64 addr, u64 len, u64 devId, backend data)
 * For the UCX backend the connection info is the UCP worker address and
 * the backend data of a region is its packed rkey.
 *
 * The decoder fills the same nxc_agent_blob_t as our own format (identity
 * zero: NIXL says nothing of pid or host). It is stricter than NIXL's own
 * reader: every record must end in '|', nothing may follow the last one,
 * counts are bounded by the bytes that remain. Regions come out sorted by
 * base address (NIXL lists them in registration order). */
#ifndef NXC_NIXL_BLOB_H
#define NXC_NIXL_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/metadata.h"

#define NXC_NIXL_MAGIC     "nixlSerDes|"
#define NXC_NIXL_MAGIC_LEN 11
#define NXC_NIXL_MEM_DRAM  0u /* nixl_mem_t DRAM_SEG */

/* True if the bytes start like a NIXL agent blob. */
bool nxc_nixl_blob_is(const uint8_t *buf, size_t len);

/* Decodes and validates a NIXL agent blob: the UCX connection's worker
 * address and every region of every UCX section. On success out->regions
 * is malloc'd (free it); other pointers borrow from buf. */
int nxc_nixl_blob_decode(const uint8_t *buf, size_t len, nxc_agent_blob_t *out);

/* Encodes b as a NIXL agent blob with one UCX connection and one DRAM
 * section holding b's regions (devId 0). *out is malloc'd, caller frees. */
int nxc_nixl_blob_encode(const nxc_agent_blob_t *b, uint8_t **out, size_t *out_len);

/* Copies a packed UCX rkey (ucp_rkey_pack: u64 md_map, u8 memory type,
 * per set bit of md_map a u8 size and that many key bytes, then an
 * optional tail) into out, dropping the entries of size 0 and their bits:
 * UCX 1.13 packs such placeholders for tcp and cma, UCX >= 1.20 refuses
 * them. out holds len bytes. */
int nxc_nixl_rkey_strip(const uint8_t *in, size_t len, uint8_t *out, size_t *out_len);

/* NIXL's notification (ucx_backend.cpp buildNotif/notifAmCb): active
 * message id 0, no header, eager, payload nixlSerDes "name"=sender agent,
 * "msg"=message. Dynamo's passive op completes on msg == its key. */
#define NXC_NIXL_NOTIF_AM_ID 0u

/* Builds a notification; *out is malloc'd, caller frees. */
int nxc_nixl_notif_encode(const char *name, size_t name_len, const char *msg, size_t msg_len,
                          uint8_t **out, size_t *out_len);

/* Decodes a notification strictly; the pointers borrow from buf. */
int nxc_nixl_notif_decode(const uint8_t *buf, size_t len, const char **name, size_t *name_len,
                          const char **msg, size_t *msg_len);

#endif
