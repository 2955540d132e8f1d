/* nxc: a line-oriented channel over a socket or pipe, the application's
 * "secondary channel" that carries metadata JSON and control messages. */
#ifndef NXC_CHAN_H
#define NXC_CHAN_H

#include <stddef.h>

#include "nxc.h"

typedef struct chan {
    int    fd;
    char  *buf;
    size_t start; /* first unread byte */
    size_t len;   /* bytes held */
    size_t cap;
    unsigned spin_us; /* chan_recv() polls this long before it sleeps (0: never) */
} chan_t;

/* Results of chan_recv() other than a line length. */
enum { CHAN_EOF = -1, CHAN_TIMEOUT = -2, CHAN_ERROR = -3, CHAN_TOO_LONG = -4 };

/* Longest line accepted: metadata text may be up to 256 MiB. */
#define CHAN_MAX_LINE (256ull * MIB + 64)

void chan_init(chan_t *c, int fd);
void chan_free(chan_t *c);
/* Sends one formatted line (a '\n' is appended). 0, or -1 with errno set. */
int chan_sendf(chan_t *c, const char *fmt, ...) NXC_PRINTF(2, 3);
/* Sends "<prefix><text>\n" without copying @p text. 0, or -1 with errno. */
int chan_send2(chan_t *c, const char *prefix, const char *text, size_t len);
/* Receives one line, without its '\n', NUL-terminated in *line (valid until
 * the next call). Returns its length or a CHAN_* code; timeout_ms < 0 waits
 * without limit. With spin_us set it polls that long before sleeping. */
long chan_recv(chan_t *c, char **line, int timeout_ms);
/* A sentence for a negative chan_recv() result. */
const char *chan_strerror(long rc);

#endif /* NXC_CHAN_H */
