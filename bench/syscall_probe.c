/*
 * nxc_syscall_probe - what one system call, and one small same-host copy
 * through the kernel, cost on this machine.
 *
 * Times, in a loop: getppid() (the cheapest system call there is: its
 * price is the entry and exit alone), then process_vm_readv() of 8 B and
 * 4 KiB from this process and from a child that sleeps (the same-host
 * direct copy of src/transport/direct.c is one such call). Prints the mean
 * of each, in ns.
 *
 * Why: a small direct read is one process_vm_readv(), so its latency has
 * this floor, whatever the library does around it; UCX's shared-memory
 * messages make no system call at all. On a VM whose system calls are
 * expensive (docs/PERFORMANCE.md, session 18: ~1 us each) a message round
 * trip beats a copy through the kernel for small sizes.
 *
 * usage: nxc_syscall_probe [--iters N]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static double time_getppid(long iters)
{
    double t0 = now_ns();
    for (long i = 0; i < iters; i++)
        (void)syscall(SYS_getppid);
    return (now_ns() - t0) / (double)iters;
}

/* Mean ns of process_vm_readv(pid) of `len` bytes; -1 if it fails. */
static double time_read(pid_t pid, void *to, void *from, size_t len, long iters)
{
    struct iovec l = { to, len }, r = { from, len };
    double t0 = now_ns();
    for (long i = 0; i < iters; i++)
        if (process_vm_readv(pid, &l, 1, &r, 1, 0) != (ssize_t)len)
            return -1;
    return (now_ns() - t0) / (double)iters;
}

int main(int argc, char **argv)
{
    long iters = 200000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
            iters = strtol(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: %s [--iters N]\n", argv[0]);
            return 2;
        }
    }
    if (iters <= 0) {
        fprintf(stderr, "nxc_syscall_probe: --iters must be positive\n");
        return 2;
    }
    static char src[4096], dst[4096];
    memset(src, 0x5a, sizeof src);
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        for (;;)
            pause();
    }
    printf("getppid                          %8.0f ns\n", time_getppid(iters));
    /* The child's copy of src is at the same address (fork). */
    const struct { const char *what; pid_t pid; size_t len; } reads[] = {
        { "process_vm_readv 8 B, self    ", getpid(), 8 },
        { "process_vm_readv 4 KiB, self  ", getpid(), sizeof src },
        { "process_vm_readv 8 B, child   ", child, 8 },
        { "process_vm_readv 4 KiB, child ", child, sizeof src },
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        double ns = time_read(reads[i].pid, dst, src, reads[i].len, iters);
        if (ns < 0)
            printf("%s   refused (ptrace permissions, seccomp?)\n", reads[i].what);
        else
            printf("%s   %8.0f ns\n", reads[i].what, ns);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}
