#include "common/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/encoding.h"
#include "common/error.h"

/* The boot id is a UUID that changes at every boot: with the pid namespace
 * it tells whether a pid we are given is a process we could watch. */
static int read_boot_id(uint8_t out[NXC_HOST_ID_BYTES])
{
    char text[64] = {0}, digits[2 * NXC_HOST_ID_BYTES];
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f == NULL)
        return nxc_fail(NXC_ERR_SYSTEM, "cannot read the boot id: %s", strerror(errno));
    size_t got = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    size_t n = 0;
    for (size_t i = 0; i < got && n < sizeof(digits); i++)
        if (text[i] != '-' && text[i] != '\n')
            digits[n++] = text[i];
    nxc_decode_error_t err;
    if (n != sizeof(digits) || !nxc_hex_decode(digits, n, out, &err))
        return nxc_fail(NXC_ERR_SYSTEM, "the boot id '%s' is not a UUID", text);
    return NXC_OK;
}

int nxc_identity_self(nxc_identity_t *out)
{
    nxc_identity_t id;
    memset(&id, 0, sizeof(id));
    id.pid = (uint32_t)getpid();
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) == 0)
        id.pidns = (uint64_t)st.st_ino;
    int rc = read_boot_id(id.host_id);
    if (rc != NXC_OK)
        return rc;
    *out = id;
    return NXC_OK;
}

int nxc_identity_same_host(const nxc_identity_t *a, const nxc_identity_t *b)
{
    return a->pidns == b->pidns && a->pidns != 0 &&
           memcmp(a->host_id, b->host_id, NXC_HOST_ID_BYTES) == 0;
}

int nxc_pidfd_exits_within(int pidfd, int ms)
{
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    return poll(&p, 1, ms) == 1;
}

int nxc_pidfd_open(uint32_t pid)
{
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (fd >= 0)
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}
