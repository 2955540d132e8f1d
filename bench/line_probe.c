/*
 * nxc_line_probe - what moving a cache line between two CPUs costs, over
 * time.
 *
 * Two threads, pinned to the first two CPUs this process may use, hand a
 * flag back and forth through one cache line (a spinning ping-pong, no
 * syscall). Each sample is ITERS round trips; the probe prints the mean
 * round trip of each sample, one per INTERVAL_MS, then the spread.
 *
 * Why: every shared-memory message between two workers moves a few cache
 * lines between their CPUs. On this 2-vCPU VM a round trip took ~55 ns in
 * some seconds and ~350 ns in others (the hypervisor places the two vCPUs
 * near each other or not, and changes its mind about once a second), which
 * moved the p50 of a whole batch of small ops by ~3 us. Benchmarks that
 * compare two kinds of op therefore time them interleaved (bench.py
 * --alternate); this probe shows whether a machine has such modes.
 *
 * usage: nxc_line_probe [--samples N] [--iters K] [--interval-ms MS]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct probe {
    /* 1: the pong thread's turn, 0: the ping's. Sequentially consistent
     * stores (xchg on x86) leave the store buffer at once; release stores
     * measured ~30 ns more per round trip here. */
    _Alignas(64) atomic_int turn;
    _Alignas(64) long iters;
    atomic_int ready;             /* the pong thread runs on its CPU */
} probe_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static cpu_set_t one_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return set;
}

/* The first two CPUs this process may use, as nxc bench pins its workers. */
static int two_cpus(int cpus[2])
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return -1;
    int k = 0;
    for (int c = 0; c < CPU_SETSIZE && k < 2; c++)
        if (CPU_ISSET(c, &set))
            cpus[k++] = c;
    return k == 2 ? 0 : -1;
}

static void *pong(void *arg)
{
    probe_t *p = arg;
    atomic_store(&p->ready, 1);
    for (long i = 0; i < p->iters; i++) {
        while (atomic_load(&p->turn) != 1)
            ;
        atomic_store(&p->turn, 0);
    }
    return NULL;
}

/* Mean round trip of one sample, in ns; 0 if the thread could not start.
 * The clock starts once the other thread runs on its own CPU: a thread
 * first placed on ours would wait for a tick to move, which is not what
 * is measured. */
static double sample_ns(long iters, int pong_cpu)
{
    probe_t p = { .iters = iters };
    atomic_init(&p.turn, 0);
    atomic_init(&p.ready, 0);
    pthread_attr_t attr;
    cpu_set_t set = one_cpu(pong_cpu);
    pthread_t t;
    if (pthread_attr_init(&attr) != 0)
        return 0;
    int rc = pthread_attr_setaffinity_np(&attr, sizeof set, &set);
    if (rc == 0)
        rc = pthread_create(&t, &attr, pong, &p);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return 0;
    while (!atomic_load(&p.ready))
        ;
    uint64_t t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        atomic_store(&p.turn, 1);
        while (atomic_load(&p.turn) != 0)
            ;
    }
    uint64_t t1 = now_ns();
    pthread_join(t, NULL);
    return (double)(t1 - t0) / (double)iters;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long arg_long(const char *name, const char *text, long lo, long hi)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "nxc_line_probe: %s must be a number from %ld to %ld, not '%s'\n",
                name, lo, hi, text);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    long samples = 20, iters = 100000, interval_ms = 100;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc)
            samples = arg_long("--samples", argv[++i], 1, 100000);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = arg_long("--iters", argv[++i], 1, 100000000);
        else if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc)
            interval_ms = arg_long("--interval-ms", argv[++i], 0, 60000);
        else {
            fprintf(stderr, "usage: nxc_line_probe [--samples N] [--iters K] "
                            "[--interval-ms MS]\n");
            return 2;
        }
    }
    int cpus[2];
    if (two_cpus(cpus) != 0) {
        fprintf(stderr, "nxc_line_probe: needs two CPUs it may run on\n");
        return 1;
    }
    cpu_set_t mine = one_cpu(cpus[1]);
    if (pthread_setaffinity_np(pthread_self(), sizeof mine, &mine) != 0) {
        fprintf(stderr, "nxc_line_probe: cannot pin to CPU %d\n", cpus[1]);
        return 1;
    }
    double *ns = calloc((size_t)samples, sizeof *ns);
    if (ns == NULL)
        return 1;
    printf("# cache-line round trip between CPU %d and CPU %d, mean of %ld per sample, ns\n",
           cpus[0], cpus[1], iters);
    for (long s = 0; s < samples; s++) {
        ns[s] = sample_ns(iters, cpus[0]);
        if (ns[s] == 0) {
            fprintf(stderr, "nxc_line_probe: could not start the second thread\n");
            return 1;
        }
        printf("%.0f\n", ns[s]);
        fflush(stdout);
        struct timespec gap = { interval_ms / 1000, (interval_ms % 1000) * 1000000L };
        nanosleep(&gap, NULL);
    }
    qsort(ns, (size_t)samples, sizeof *ns, by_value);
    long slow = 0;
    for (long s = 0; s < samples; s++)
        slow += ns[s] > 2 * ns[0];
    printf("# min %.0f, median %.0f, max %.0f ns; %ld of %ld samples over twice the min\n",
           ns[0], ns[samples / 2], ns[samples - 1], slow, samples);
    free(ns);
    return 0;
}
