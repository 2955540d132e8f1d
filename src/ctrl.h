/* Private: the control-message codec (the wire format of BEGIN, DONE and
 * ABORT; see transport.h for what they mean).
 *
 * Layout: u8 type|flags, u8 version, u16 name_len, u32 pid, u64 pidns,
 * 16 B host id, 16 B key, the sender's name, and for a pulling BEGIN: u32
 * address length, the sender's UCX worker address. Integers little-endian.
 *
 * Pure functions over bytes: no UCX, so the fuzzer can reach the decoder
 * that every message from a peer goes through. */
#ifndef NXC_CTRL_H
#define NXC_CTRL_H

#include <stddef.h>
#include <stdint.h>

#include "metadata.h"

enum nxc_ctrl_type { NXC_CTRL_BEGIN = 1, NXC_CTRL_DONE = 2, NXC_CTRL_ABORT = 3 };
#define NXC_CTRL_TYPE_MASK 0x0fu
#define NXC_CTRL_FLAG_AM   0x40u /* the op moves its data with active messages */
#define NXC_CTRL_FLAG_PULL 0x80u /* BEGIN of an AM read: send me the data */
#define NXC_CTRL_FLAG_RUNS 0x20u /* ... and send adjacent buffers as one message */

#define NXC_CTRL_VERSION   1u
#define NXC_CTRL_FIXED_LEN 48u   /* bytes before the sender's name */
#define NXC_CTRL_MAX (NXC_CTRL_FIXED_LEN + NXC_NAME_MAX) /* without an address */

/* A control message; decoded, every pointer borrows from the message. */
typedef struct nxc_ctrl_msg {
    uint8_t        type;      /* NXC_CTRL_BEGIN / DONE / ABORT */
    uint8_t        flags;     /* NXC_CTRL_FLAG_* */
    const uint8_t *key;       /* NXC_KEY_BYTES */
    const char    *name;
    size_t         name_len;
    nxc_identity_t sender;
    const uint8_t *addr;      /* pulling BEGIN only: the sender's worker address */
    size_t         addr_len;
} nxc_ctrl_msg_t;

/* Bytes nxc_ctrl_encode writes for m. */
size_t nxc_ctrl_len(const nxc_ctrl_msg_t *m);

/* Writes m into buf (nxc_ctrl_len(m) bytes); returns the length. The
 * address is written only when flags has NXC_CTRL_FLAG_PULL. */
size_t nxc_ctrl_encode(const nxc_ctrl_msg_t *m, uint8_t *buf);

/* Checks every length against what arrived: 0 and *out filled, or -1 for
 * a malformed message (which the caller drops and counts, never trusts).
 * The type is not checked against the known ones: the receiver does. */
int nxc_ctrl_decode(const uint8_t *buf, size_t len, nxc_ctrl_msg_t *out);

#endif
