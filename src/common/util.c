#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"

uint64_t nxc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int nxc_random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return nxc_fail(NXC_ERR_SYSTEM, "getrandom failed: %s", strerror(errno));
        }
        p += got;
        n -= (size_t)got;
    }
    return NXC_OK;
}

static atomic_uint process_generation;
static pthread_once_t fork_watch_once = PTHREAD_ONCE_INIT;

static void count_fork(void)
{
    atomic_fetch_add_explicit(&process_generation, 1, memory_order_relaxed);
}

static void watch_forks(void)
{
    (void)pthread_atfork(NULL, NULL, count_fork);
}

unsigned nxc_process_generation(void)
{
    (void)pthread_once(&fork_watch_once, watch_forks);
    return atomic_load_explicit(&process_generation, memory_order_relaxed);
}

/* Fewer free fds than a connector needs (measured: 17 for the first
 * connector of a process here, 12 for the next; a TCP listening socket per
 * network device adds more) means the fd table is the likely cause of a
 * failure, although UCX only says "Input/output error". */
#define FDS_A_CONNECTOR_NEEDS 32

static long open_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return errno == EMFILE || errno == ENFILE ? -2 : -1;
    long n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the DIR's own fd */
}

static _Thread_local char limit_hint[256];

static int fds_hint(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    long open = open_fd_count();
    if (open == -2 || (open >= 0 && (long)rl.rlim_cur - open < FDS_A_CONNECTOR_NEEDS)) {
        char count[32] = "all";
        if (open >= 0)
            snprintf(count, sizeof(count), "%ld", open);
        snprintf(limit_hint, sizeof(limit_hint),
                 " (the process is out of file descriptors: %s of its RLIMIT_NOFILE limit of "
                 "%llu are open; close some or raise the limit, e.g. ulimit -n)",
                 count, (unsigned long long)rl.rlim_cur);
        return 1;
    }
    return 0;
}

static void memory_hint(void)
{
    struct rlimit as, lock;
    int as_set = getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY;
    int lock_set = getrlimit(RLIMIT_MEMLOCK, &lock) == 0 && lock.rlim_cur != RLIM_INFINITY;
    if (as_set)
        snprintf(limit_hint, sizeof(limit_hint),
                 " (out of memory: the address space is limited to %llu MiB by RLIMIT_AS, "
                 "ulimit -v%s)", (unsigned long long)(as.rlim_cur >> 20),
                 lock_set ? "; locked memory is limited too, ulimit -l" : "");
    else if (lock_set)
        snprintf(limit_hint, sizeof(limit_hint),
                 " (out of memory: registering memory may need to lock it, and RLIMIT_MEMLOCK "
                 "allows %llu KiB, ulimit -l; or the machine is out of memory)",
                 (unsigned long long)(lock.rlim_cur >> 10));
    else
        snprintf(limit_hint, sizeof(limit_hint), " (the machine is out of memory)");
}

int nxc_require_free_fds(void)
{
    if (!fds_hint())
        return NXC_OK;
    return nxc_fail(NXC_ERR_SYSTEM, "a connector needs about %d free file descriptors%s",
                    FDS_A_CONNECTOR_NEEDS, limit_hint);
}

const char *nxc_limit_hint(int out_of_memory)
{
    limit_hint[0] = '\0';
    if (!fds_hint() && out_of_memory)
        memory_hint();
    return limit_hint;
}
