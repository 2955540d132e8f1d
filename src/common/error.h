/* Private: the one error model. Every failing function returns a negative
 * NXC_ERR_* code and leaves a thread-local sentence saying what was wrong. */
#ifndef NXC_ERROR_H
#define NXC_ERROR_H

#include <stddef.h>

#include "nixl_connect.h"

/* Records a printf-style detail for the calling thread and returns `code`,
 * so failures read `return nxc_fail(NXC_ERR_X, "descriptor %zu ...", i);`. */
int nxc_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears the calling thread's detail (called at the start of public calls
 * that succeed, so a stale sentence is never mistaken for a new one). */
void nxc_clear_error(void);

/* Writes `n` bytes of untrusted text into buf as a printable, double-quoted
 * string for a detail sentence: bytes outside printable ASCII (and quotes,
 * backslashes) become \xNN and over-long text is cut with "...". Returns buf.
 * `size` of 80 is a good choice; details are 512 bytes in all. */
const char *nxc_quote(const char *s, size_t n, char *buf, size_t size);

#endif
