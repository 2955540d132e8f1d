/*
 * nxc_wake_probe - what one wake-up of a sleeping process costs here.
 *
 * Two processes, pinned to two different CPUs when there are two, pass a
 * byte back and forth over a pair of pipes; each blocks in read() between
 * turns, so every hand-off wakes a sleeping process (on a VM: an idle vCPU
 * that the host must schedule again). One wake-up = round trip / 2.
 * --idle-ms MS sleeps that long before each round trip, so both sides are
 * as cold as a passive worker that has waited MS ms for its next op.
 * It also times the waker's write() alone: on some VMs waking a process
 * whose vCPU is halted costs the *waker* tens of microseconds inside that
 * call (the IPI to the halted vCPU), which is what a same-host peer pays
 * when its direct copy wakes a sleeping passive worker.
 *
 * usage: nxc_wake_probe [--iters N] [--idle-ms MS] [--json]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pin_to_nth_cpu(int nth)
{
    cpu_set_t set, one;
    if (sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) < 2)
        return;
    for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set) || seen++ != nth)
            continue;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        (void)sched_setaffinity(0, sizeof one, &one);
        return;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void idle(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (ms > 0 && nanosleep(&ts, &ts) != 0)
        ;
}

int main(int argc, char **argv)
{
    long iters = 2000, idle_ms = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = atol(argv[++i]);
        else if (strcmp(argv[i], "--idle-ms") == 0 && i + 1 < argc)
            idle_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else {
            fprintf(stderr, "usage: nxc_wake_probe [--iters N] [--idle-ms MS] [--json]\n");
            return 2;
        }
    }
    if (iters < 1 || idle_ms < 0) {
        fprintf(stderr, "nxc_wake_probe: --iters must be >= 1, --idle-ms >= 0\n");
        return 2;
    }
    int ping[2], pong[2];
    if (pipe(ping) != 0 || pipe(pong) != 0) {
        perror("nxc_wake_probe: pipe");
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("nxc_wake_probe: fork");
        return 1;
    }
    char b = 0;
    if (child == 0) {
        close(ping[1]); /* so that the parent's close ends the loop */
        close(pong[0]);
        pin_to_nth_cpu(1);
        while (read(ping[0], &b, 1) == 1)
            if (write(pong[1], &b, 1) != 1)
                _exit(1);
        _exit(0);
    }
    close(ping[0]);
    close(pong[1]);
    pin_to_nth_cpu(0);
    uint64_t *rtt = calloc((size_t)iters, sizeof *rtt);
    uint64_t *waker = calloc((size_t)iters, sizeof *waker);
    if (rtt == NULL || waker == NULL)
        return 1;
    for (long i = 0; i < iters; i++) {
        idle(idle_ms);
        uint64_t t0 = now_ns();
        ssize_t sent = write(ping[1], &b, 1);
        uint64_t t1 = now_ns();
        if (sent != 1 || read(pong[0], &b, 1) != 1) {
            perror("nxc_wake_probe: pipe i/o");
            return 1;
        }
        rtt[i] = now_ns() - t0;
        waker[i] = t1 - t0;
    }
    close(ping[1]);
    waitpid(child, NULL, 0);
    qsort(rtt, (size_t)iters, sizeof *rtt, cmp_u64);
    qsort(waker, (size_t)iters, sizeof *waker, cmp_u64);
    double p50 = (double)rtt[iters / 2] / 2e3, p90 = (double)rtt[iters * 9 / 10] / 2e3;
    double w50 = (double)waker[iters / 2] / 1e3, w90 = (double)waker[iters * 9 / 10] / 1e3;
    if (json)
        printf("{\"tool\":\"wake\",\"idle_ms\":%ld,\"iters\":%ld,\"wake_p50_us\":%.1f,"
               "\"wake_p90_us\":%.1f,\"waker_p50_us\":%.1f,\"waker_p90_us\":%.1f}\n",
               idle_ms, iters, p50, p90, w50, w90);
    else
        printf("one wake-up of a sleeping process (pipe round trip / 2), idle %ld ms: "
               "p50 %.1f us, p90 %.1f us; the waker's write() alone: p50 %.1f us, "
               "p90 %.1f us (%ld round trips)\n", idle_ms, p50, p90, w50, w90, iters);
    free(waker);
    free(rtt);
    return 0;
}
