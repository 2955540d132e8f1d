/* nxc: line channel over a file descriptor (see nxc_chan.h). */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "nxc_chan.h"

void chan_init(chan_t *c, int fd)
{
    c->fd = fd;
    c->buf = NULL;
    c->start = c->len = c->cap = 0;
    c->spin_us = 0;
}

void chan_free(chan_t *c)
{
    free(c->buf);
    c->buf = NULL;
    c->start = c->len = c->cap = 0;
}

static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

int chan_send2(chan_t *c, const char *prefix, const char *text, size_t len)
{
    struct iovec iov[3] = {
        { (void *)prefix, strlen(prefix) },
        { (void *)text, len },
        { (void *)"\n", 1 },
    };
    return write_all(c->fd, iov, 3);
}

int chan_sendf(chan_t *c, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return chan_send2(c, "", small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = chan_send2(c, "", big, (size_t)n);
    free(big);
    return rc;
}

/* Makes room for at least 64 KiB more bytes after the held ones. */
static int chan_reserve(chan_t *c)
{
    if (c->start > 0) {
        memmove(c->buf, c->buf + c->start, c->len);
        c->start = 0;
    }
    if (c->cap - c->len >= 65536)
        return 0;
    size_t cap = c->cap ? c->cap * 2 : 131072;
    char *nb = realloc(c->buf, cap);
    if (!nb)
        return -1;
    c->buf = nb;
    c->cap = cap;
    return 0;
}

/* Polls without sleeping for up to spin_us: a reply microseconds away
 * then costs no wake-up of this process. */
static void spin_until_readable(const chan_t *c)
{
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    uint64_t end = now_ns() + (uint64_t)c->spin_us * 1000u;
    while (poll(&p, 1, 0) == 0 && now_ns() < end)
        ;
}

static long chan_fill(chan_t *c, int timeout_ms)
{
    if (c->len >= CHAN_MAX_LINE)
        return CHAN_TOO_LONG;
    if (chan_reserve(c) != 0)
        return CHAN_ERROR;
    if (c->spin_us > 0 && timeout_ms != 0)
        spin_until_readable(c);
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    int pr;
    do
        pr = poll(&p, 1, timeout_ms);
    while (pr < 0 && errno == EINTR);
    if (pr < 0)
        return CHAN_ERROR;
    if (pr == 0)
        return CHAN_TIMEOUT;
    ssize_t r;
    do
        r = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == ECONNRESET ? CHAN_EOF : CHAN_ERROR;
    if (r == 0)
        return CHAN_EOF;
    c->len += (size_t)r;
    return 0;
}

long chan_recv(chan_t *c, char **line, int timeout_ms)
{
    size_t scanned = 0;
    for (;;) {
        char *s = c->buf ? c->buf + c->start : NULL;
        char *nl = s ? memchr(s + scanned, '\n', c->len - scanned) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - s);
            *nl = '\0';
            c->start += n + 1;
            c->len -= n + 1;
            *line = s;
            return (long)n;
        }
        scanned = c->len;
        long rc = chan_fill(c, timeout_ms);
        if (rc < 0)
            return rc;
    }
}

const char *chan_strerror(long rc)
{
    switch (rc) {
    case CHAN_EOF:      return "the peer closed the channel";
    case CHAN_TIMEOUT:  return "timed out waiting on the channel";
    case CHAN_TOO_LONG: return "line too long on the channel";
    default:            return "channel error";
    }
}
