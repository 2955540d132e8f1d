/* Private: the text encodings of binary data in metadata (base64 and hex).
 * Decoders are strict and report where the text went wrong instead of
 * setting the error detail themselves, so the caller can name the field. */
#ifndef NXC_ENCODING_H
#define NXC_ENCODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a decode failed and at which byte offset of the input. */
typedef struct nxc_decode_error {
    const char *reason; /* static sentence fragment */
    size_t      offset;
} nxc_decode_error_t;

/* Length of the padded base64 text of n bytes (without a NUL). */
size_t nxc_base64_encoded_len(size_t n);

/* Standard alphabet with '=' padding; writes encoded_len(n) chars + NUL. */
void nxc_base64_encode(const uint8_t *in, size_t n, char *out);

/* Upper bound of the bytes decoded from n chars of base64. */
size_t nxc_base64_decoded_max(size_t n);

/* Decodes canonical padded base64 (no white space, no line breaks, unused
 * bits zero) into out, which holds decoded_max(n) bytes. */
bool nxc_base64_decode(const char *in, size_t n, uint8_t *out, size_t *out_len,
                       nxc_decode_error_t *err);

/* Lowercase hex of `n` bytes into out (2n chars + NUL). */
void nxc_hex_encode(const uint8_t *in, size_t n, char *out);

/* Decodes an even-length hex string (either case) into n/2 bytes. */
bool nxc_hex_decode(const char *in, size_t n, uint8_t *out, nxc_decode_error_t *err);

#endif
