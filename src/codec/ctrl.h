/* Private: the control-message codec (the wire format of BEGIN, DONE,
 * ABORT, ACK and NACK; see transport.h for what they mean).
 *
 * Layout (version 3): u8 type|flags, u8 version, u16 name_len, u32 pid,
 * u64 pidns, 16 B host id, 16 B key, u64 tag, u8 reason, the sender's name,
 * and with NXC_CTRL_FLAG_ADDR: u32 address length, the sender's UCX worker
 * address; in a WRITE, the write's data is the rest of the message. A
 * BEGIN or WRITE carries the address until its receiver has answered the
 * sender once (engine/peer.h, knows_us); a receiver without an endpoint to
 * the sender drops one without it, and the sender sends it again with it.
 * Integers little-endian.
 *
 * The tag names one active op: the active side picks it (random base +
 * counter, never 0) and sends it in BEGIN, DONE, ABORT and every data
 * header; the passive side echoes it in ACK and NACK. Key + tag route an
 * answer to the right active op even when one connector has begun several
 * ops on the same metadata. The reason (NACK only, else 0) says why the
 * passive side refused: enum nxc_nack_reason.
 *
 * Pure functions over bytes: no UCX, so the fuzzer can reach the decoder
 * that every message from a peer goes through. */
#ifndef NXC_CTRL_H
#define NXC_CTRL_H

#include <stddef.h>
#include <stdint.h>

#include "codec/metadata.h"

/* BEGIN, DONE and ABORT go from the active to the passive side, ACK and
 * NACK back. Every BEGIN is answered: NACK at once if the op is not the
 * sender's to take, else ACK or NACK when the passive op ends. */
enum nxc_ctrl_type {
    NXC_CTRL_BEGIN = 1, /* I take this op (my address too, until you answered me once) */
    NXC_CTRL_DONE  = 2, /* my data is in place (write) / has arrived (read) */
    NXC_CTRL_ABORT = 3, /* I cancelled; my requests have drained */
    NXC_CTRL_ACK   = 4, /* your DONE completed my op: COMPLETE on both sides */
    NXC_CTRL_NACK  = 5, /* my op will not take your data; reason says why */
    /* BEGIN + the data + DONE of a small AM write into one buffer, as one
     * message: the passive side handles it as those three in that order. */
    NXC_CTRL_WRITE = 6
};
/* Why a passive side sent NACK (the byte is 0 in every other message). */
enum nxc_nack_reason {
    NXC_NACK_CLOSED    = 1, /* no open op has the key: closed and forgotten, or never existed */
    NXC_NACK_CANCELLED = 2, /* the op was cancelled */
    NXC_NACK_RELEASED  = 3, /* the op was released */
    NXC_NACK_COMPLETED = 4, /* the op had already completed */
    NXC_NACK_TAKEN     = 5, /* another active op (any peer's) took it first */
    NXC_NACK_FAILED    = 6, /* the op failed on the passive side */
    NXC_NACK_MAX       = NXC_NACK_FAILED
};
#define NXC_CTRL_TYPE_MASK 0x0fu
#define NXC_CTRL_FLAG_ADDR 0x10u /* carries the sender's worker address (BEGIN, WRITE) */
#define NXC_CTRL_FLAG_AM   0x40u /* the op moves its data with active messages */
#define NXC_CTRL_FLAG_PULL 0x80u /* BEGIN of an AM read: send me the data */
#define NXC_CTRL_FLAG_RUNS 0x20u /* ... and send adjacent buffers as one message */

#define NXC_CTRL_VERSION   3u
#define NXC_CTRL_FIXED_LEN 57u   /* bytes before the sender's name */
#define NXC_CTRL_MAX (NXC_CTRL_FIXED_LEN + NXC_NAME_MAX) /* without an address */

/* A control message; decoded, every pointer borrows from the message. */
typedef struct nxc_ctrl_msg {
    uint8_t        type;      /* NXC_CTRL_BEGIN / DONE / ABORT */
    uint8_t        flags;     /* NXC_CTRL_FLAG_* */
    const uint8_t *key;       /* NXC_KEY_BYTES */
    const char    *name;
    size_t         name_len;
    nxc_identity_t sender;
    uint64_t       tag;       /* the active op's tag */
    uint8_t        reason;    /* NACK: enum nxc_nack_reason; else 0 */
    const uint8_t *addr;      /* with FLAG_ADDR: the sender's worker address */
    size_t         addr_len;
    const uint8_t *data;      /* WRITE: the data (after the address) */
    size_t         data_len;
} nxc_ctrl_msg_t;

/* Bytes nxc_ctrl_encode writes for m. */
size_t nxc_ctrl_len(const nxc_ctrl_msg_t *m);

/* Writes m into buf (nxc_ctrl_len(m) bytes); returns the length. The
 * address is written only when flags has NXC_CTRL_FLAG_ADDR, the data only
 * in a WRITE. */
size_t nxc_ctrl_encode(const nxc_ctrl_msg_t *m, uint8_t *buf);

/* Checks every length against what arrived: 0 and *out filled, or -1 for
 * a malformed message (which the caller drops and counts, never trusts),
 * a WRITE without data among them. A BEGIN or WRITE may come without the
 * sender's address (see the layout above). The type and reason are not
 * checked against the known ones: the receiver does. */
int nxc_ctrl_decode(const uint8_t *buf, size_t len, nxc_ctrl_msg_t *out);

#endif
