/* nxc bench: options, help, and the launcher that starts the two workers
 * (fork + exec of this binary before any connector exists). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nxc_bench.h"

void bench_help(void)
{
    fputs(
"Usage: nxc bench [options]\n"
"\n"
"Starts two workers on this host, a passive one that exposes memory and an\n"
"active one that reads or writes it (pinned to different cores when there\n"
"are two), joined by a socketpair that carries the metadata as JSON lines.\n"
"For each operation kind, size and descriptor count it measures:\n"
"  GB/s, lat       from begin_read/begin_write to completion on the active\n"
"                  side, metadata parsed beforehand, endpoint warm (the\n"
"                  passive worker pre-creates a batch of operations and sends\n"
"                  all their metadata first); GB/s = bytes / total of these\n"
"                  times, 1 GB = 1e9 bytes\n"
"  passive lat     from begin_* on the active side to completion seen by the\n"
"                  passive worker (CLOCK_MONOTONIC, shared by both processes)\n"
"  cycle ops/s     the application's whole loop, one operation at a time:\n"
"                  create passive op, serialize metadata, send it over the\n"
"                  socket, parse, begin, complete on both sides, release\n"
"Each size is checked once for data correctness (a pattern written on one\n"
"side is compared on the other); a mismatch fails the run.\n"
"\n"
"Options:\n"
"  --sizes LIST    bytes per operation, in total over its descriptors;\n"
"                  comma-separated, suffixes K, M, G (powers of 1024), at\n"
"                  most 1G [default: 8,4K,64K,1M,16M,64M]\n"
"  --descs LIST    descriptors per operation; each size is split evenly\n"
"                  among them (combinations with fewer bytes than\n"
"                  descriptors are skipped) [default: 1]\n"
"  --ops LIST      read, write or read,write [default: read,write]\n"
"  --iters N       timed operations per size [default: 2 GiB / size,\n"
"                  between 20 and 1000]\n"
"  --duration SEC  run each timed phase for SEC seconds instead of --iters\n"
"  --warmup N      untimed operations before timing [default: 10]\n"
"  --tls STRING    set UCX_TLS for both workers (e.g. tcp, shm, sm,tcp)\n"
"  --netns P,A     run the passive worker in network namespace P and the\n"
"                  active one in A (names as 'ip netns' shows them; needs\n"
"                  root): two hosts' worth of network on one machine\n"
"  --net-devices P,A  UCX_NET_DEVICES of the passive and the active worker\n"
"                  (e.g. their veth ends, with --netns and --tls tcp)\n"
"  --mem KIND      memory of the buffers: malloc (4 KiB pages), thp (2 MiB-\n"
"                  aligned, madvise(MADV_HUGEPAGE): transparent huge pages\n"
"                  where the system allows), or ucx (nxc_mem_alloc: UCX\n"
"                  shared segments) [default: malloc]\n"
"  --passive-idle MS  wait MS milliseconds before each timed begin, so that\n"
"                  the passive worker is asleep in nxc_op_wait when the op\n"
"                  arrives (a server's case); adds lat_p90 and skips the\n"
"                  cycle measurement\n"
"  --passive-spin-us US  the passive worker's spin_us (connector config)\n"
"  --passive-thread  the passive worker's connector runs a progress thread\n"
"  --direct-local  the passive worker offers same-host direct copies (config\n"
"                  direct_local): the active worker copies with\n"
"                  process_vm_readv/writev, without the passive one running;\n"
"                  the library's default, which NXC_DIRECT_LOCAL=0 turns off\n"
"                  and this flag on again\n"
"  --chan-spin-us US  both workers poll their socket this long before they\n"
"                  sleep on it (as the library's waits spin): the cycle then\n"
"                  pays no wake-up for a metadata line microseconds away\n"
"                  [default: 0, sleep at once, as a plain blocking channel]\n"
"  --active-busy   with --passive-idle: the active worker busy-waits through\n"
"                  each gap instead of sleeping, so that only the passive\n"
"                  worker is idle (its own CPU and caches stay awake)\n"
"  --timeout SEC   fail when one step waits longer than this [default: 60]\n"
"  --json          one JSON object per result line instead of a table\n"
"  --quick         a smoke run of a few seconds: sizes 8,64K,1M,16M, fewer\n"
"                  iterations (256 MiB / size, between 5 and 200), warmup 2\n"
"  -h, --help      show this help and exit\n",
        stdout);
}

enum {
    O_SIZES = OPT_LONG, O_DESCS, O_OPS, O_ITERS, O_DURATION, O_WARMUP, O_TLS, O_MEM,
    O_TIMEOUT, O_JSON, O_QUICK, O_NETNS, O_NETDEV, O_IDLE, O_PSPIN, O_PTHREAD, O_ABUSY,
    O_DLOCAL, O_CSPIN, O_HELP = 'h'
};

static const struct option bench_opts[] = {
    { "sizes",           required_argument, NULL, O_SIZES },
    { "descs",           required_argument, NULL, O_DESCS },
    { "ops",             required_argument, NULL, O_OPS },
    { "iters",           required_argument, NULL, O_ITERS },
    { "duration",        required_argument, NULL, O_DURATION },
    { "warmup",          required_argument, NULL, O_WARMUP },
    { "tls",             required_argument, NULL, O_TLS },
    { "mem",             required_argument, NULL, O_MEM },
    { "timeout",         required_argument, NULL, O_TIMEOUT },
    { "json",            no_argument,       NULL, O_JSON },
    { "quick",           no_argument,       NULL, O_QUICK },
    { "netns",           required_argument, NULL, O_NETNS },
    { "net-devices",     required_argument, NULL, O_NETDEV },
    { "passive-idle",    required_argument, NULL, O_IDLE },
    { "passive-spin-us", required_argument, NULL, O_PSPIN },
    { "passive-thread",  no_argument,       NULL, O_PTHREAD },
    { "active-busy",     no_argument,       NULL, O_ABUSY },
    { "direct-local",    no_argument,       NULL, O_DLOCAL },
    { "chan-spin-us",    required_argument, NULL, O_CSPIN },
    { "help",            no_argument,       NULL, O_HELP },
    { NULL, 0, NULL, 0 }
};

static int parse_ops(const char *text, bench_cfg_t *cfg)
{
    cfg->op_read = cfg->op_write = false;
    const char *p = text;
    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 4 && strncmp(p, "read", 4) == 0)
            cfg->op_read = true;
        else if (len == 5 && strncmp(p, "write", 5) == 0)
            cfg->op_write = true;
        else
            return usage_error("--ops: '%.*s' is not read or write", (int)len, p);
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

static int check_mem(const char *mem)
{
    if (strcmp(mem, "malloc") == 0 || strcmp(mem, "thp") == 0 || strcmp(mem, "ucx") == 0)
        return 0;
    if (strcmp(mem, "cuda") == 0 || strncmp(mem, "cuda:", 5) == 0)
        return usage_error("--mem %s: not supported (no GPU support in this build)", mem);
    return usage_error("--mem: unknown memory kind '%s' (malloc, thp or ucx)", mem);
}

/* "P,A": two non-empty names without '/' (they name files in /run/netns
 * and network devices), each shorter than BENCH_NAME_MAX. */
static int parse_pair(const char *opt, const char *text, char out[2][BENCH_NAME_MAX])
{
    const char *comma = strchr(text, ',');
    size_t len0 = comma ? (size_t)(comma - text) : 0;
    size_t len1 = comma ? strlen(comma + 1) : 0;
    if (!comma || strchr(comma + 1, ',') || len0 == 0 || len1 == 0 ||
        len0 >= BENCH_NAME_MAX || len1 >= BENCH_NAME_MAX || strchr(text, '/'))
        return usage_error("%s: '%s' is not two names PASSIVE,ACTIVE", opt, text);
    memcpy(out[0], text, len0);
    out[0][len0] = '\0';
    memcpy(out[1], comma + 1, len1 + 1);
    return 0;
}

static void bench_defaults(bench_cfg_t *cfg)
{
    static const uint64_t sizes[] = { 8, 4 * KIB, 64 * KIB, MIB, 16 * MIB, 64 * MIB };
    memset(cfg, 0, sizeof *cfg);
    memcpy(cfg->sizes, sizes, sizeof sizes);
    cfg->nsizes = sizeof sizes / sizeof sizes[0];
    cfg->descs[0] = 1;
    cfg->ndescs = 1;
    cfg->op_read = cfg->op_write = true;
    cfg->timeout = 60;
    cfg->mem = "malloc";
    cfg->passive_idle_ms = -1;
    cfg->passive_spin_us = -1;
}

static void apply_quick(bench_cfg_t *cfg, bool sizes_set, bool warmup_set)
{
    static const uint64_t sizes[] = { 8, 64 * KIB, MIB, 16 * MIB };
    if (!sizes_set) {
        memcpy(cfg->sizes, sizes, sizeof sizes);
        cfg->nsizes = sizeof sizes / sizeof sizes[0];
    }
    if (!warmup_set)
        cfg->warmup = 2;
}

/* One option; returns 0, or an exit code (help: -1). */
static int bench_option(int id, const char *arg, bench_cfg_t *cfg)
{
    switch (id) {
    case O_SIZES:
        return parse_list("--sizes", arg, true, 1, BENCH_MAX_SIZE, cfg->sizes,
                          BENCH_MAX_LIST, &cfg->nsizes) ? NXC_EXIT_USAGE : 0;
    case O_DESCS:
        return parse_list("--descs", arg, false, 1, BENCH_MAX_DESCS, cfg->descs,
                          BENCH_MAX_LIST, &cfg->ndescs) ? NXC_EXIT_USAGE : 0;
    case O_OPS:      return parse_ops(arg, cfg);
    case O_ITERS:
        return parse_count("--iters", arg, 1, 100000000, &cfg->iters) ? NXC_EXIT_USAGE : 0;
    case O_WARMUP:
        return parse_count("--warmup", arg, 0, 100000000, &cfg->warmup) ? NXC_EXIT_USAGE : 0;
    case O_DURATION:
        return parse_seconds("--duration", arg, &cfg->duration) ? NXC_EXIT_USAGE : 0;
    case O_TIMEOUT:
        return parse_seconds("--timeout", arg, &cfg->timeout) ? NXC_EXIT_USAGE : 0;
    case O_TLS:
        if (arg[0] == '\0')
            return usage_error("--tls: empty transport list");
        cfg->tls = arg;
        return 0;
    case O_MEM:
        cfg->mem = arg;
        return check_mem(arg);
    case O_NETNS:  return parse_pair("--netns", arg, cfg->netns) ? NXC_EXIT_USAGE : 0;
    case O_NETDEV: return parse_pair("--net-devices", arg, cfg->netdev) ? NXC_EXIT_USAGE : 0;
    case O_IDLE: {
        uint64_t ms;
        if (parse_count("--passive-idle", arg, 0, 60000, &ms) != 0)
            return NXC_EXIT_USAGE;
        cfg->passive_idle_ms = (long)ms;
        return 0;
    }
    case O_PSPIN: {
        uint64_t us;
        if (parse_count("--passive-spin-us", arg, 0, 1000000, &us) != 0)
            return NXC_EXIT_USAGE;
        cfg->passive_spin_us = (long)us;
        return 0;
    }
    case O_PTHREAD: cfg->passive_thread = true; return 0;
    case O_ABUSY:   cfg->active_busy = true; return 0;
    case O_DLOCAL:  cfg->direct_local = true; return 0;
    case O_CSPIN: {
        uint64_t us;
        if (parse_count("--chan-spin-us", arg, 0, 1000000, &us) != 0)
            return NXC_EXIT_USAGE;
        cfg->chan_spin_us = (unsigned)us;
        return 0;
    }
    case O_JSON:  cfg->json = true;  return 0;
    case O_QUICK: cfg->quick = true; return 0;
    case O_HELP:  return -1;
    default:      return NXC_EXIT_USAGE;
    }
}

int bench_parse(int argc, char **argv, bench_cfg_t *cfg)
{
    const char *arg = NULL;
    bool sizes_set = false, warmup_set = false, iters_set = false;
    int id;
    bench_defaults(cfg);
    cfg->warmup = 10;
    opt_init();
    while ((id = opt_next(argc, argv, bench_opts, &arg)) != OPT_END) {
        if (id == OPT_ERROR)
            return NXC_EXIT_USAGE;
        if (id == OPT_POSITIONAL)
            return usage_error("bench: unexpected argument '%s'", arg);
        int rc = bench_option(id, arg, cfg);
        if (rc == -1) {
            bench_help();
            return -1;
        }
        if (rc != 0)
            return rc;
        sizes_set |= id == O_SIZES;
        warmup_set |= id == O_WARMUP;
        iters_set |= id == O_ITERS;
    }
    if (iters_set && cfg->duration > 0)
        return usage_error("--iters and --duration cannot be used together");
    if (cfg->quick)
        apply_quick(cfg, sizes_set, warmup_set);
    return 0;
}

uint64_t bench_iters(const bench_cfg_t *cfg, uint64_t size)
{
    if (cfg->iters)
        return cfg->iters;
    uint64_t budget = cfg->quick ? 256 * MIB : 2 * GIB;
    uint64_t lo = cfg->quick ? 5 : 20, hi = cfg->quick ? 200 : 1000;
    uint64_t n = budget / size;
    return n < lo ? lo : n > hi ? hi : n;
}

/* ---- launcher ------------------------------------------------------------ */

/* The first two CPUs this process may run on; how many were found (0-2). */
static int pick_cpus(int cpu[2])
{
    cpu_set_t set;
    int found = 0;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    for (int i = 0; i < CPU_SETSIZE && found < 2; i++)
        if (CPU_ISSET(i, &set))
            cpu[found++] = i;
    return found;
}

static void pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        perror("nxc: bench: sched_setaffinity");
}

/* argv of a worker: nxc __bench-worker ROLE FD <the bench options>, run
 * through "ip netns exec NS [env UCX_NET_DEVICES=DEV]" with --netns (ip
 * also remounts /sys for the namespace, which UCX reads to describe its
 * network devices). @p dev_env is storage for "UCX_NET_DEVICES=DEV". */
static char **worker_argv(const bench_cfg_t *cfg, int r, const char *role,
                          char *fdstr, char *dev_env, int argc, char **argv)
{
    char **v = calloc((size_t)argc + 12, sizeof *v), **w = v;
    if (!v)
        return NULL;
    if (cfg->netns[r][0]) {
        *w++ = "ip";
        *w++ = "netns";
        *w++ = "exec";
        *w++ = (char *)cfg->netns[r];
        if (cfg->netdev[r][0]) {
            snprintf(dev_env, BENCH_NAME_MAX + 24, "UCX_NET_DEVICES=%s", cfg->netdev[r]);
            *w++ = "env";
            *w++ = dev_env;
        }
    }
    *w++ = "nxc";
    *w++ = "__bench-worker";
    *w++ = (char *)role;
    *w++ = fdstr;
    for (int i = 1; i < argc; i++)
        *w++ = argv[i];
    return v;
}

/* Tells the workers where they run, for the table's header. */
static void note_pinning(const bench_cfg_t *cfg, const int cpu[2])
{
    char text[256] = "not pinned";
    if (cpu[0] >= 0)
        snprintf(text, sizeof text, "passive on cpu %d, active on cpu %d",
                 cpu[0], cpu[1]);
    if (cfg->netns[0][0]) {
        size_t used = strlen(text);
        snprintf(text + used, sizeof text - used, "; netns %s and %s",
                 cfg->netns[0], cfg->netns[1]);
    }
    setenv("NXC_BENCH_PINNING", text, 1);
}

/* Both namespaces must exist before anything starts: a clear message then,
 * rather than a worker that dies inside "ip". */
static int check_netns(const bench_cfg_t *cfg)
{
    char path[BENCH_NAME_MAX + 16];
    for (int r = 0; r < 2 && cfg->netns[0][0]; r++) {
        snprintf(path, sizeof path, "/run/netns/%s", cfg->netns[r]);
        if (access(path, F_OK) != 0)
            return runtime_error("bench: --netns: no network namespace '%s' "
                                 "('ip netns list' shows them)", cfg->netns[r]);
    }
    return 0;
}

/* Without --netns the worker is this binary re-executed; with it, "ip"
 * starts it in the namespace, so the binary's path is spelled out. */
static void exec_worker(const bench_cfg_t *cfg, int r, char **v)
{
    static char self[4096];
    if (!cfg->netns[r][0]) {
        execv("/proc/self/exe", v);
        return;
    }
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return;
    self[n] = '\0';
    for (char **w = v; *w; w++)
        if (strcmp(*w, "nxc") == 0) {   /* the first "nxc" is argv[0] */
            *w = self;
            break;
        }
    execvp("ip", v);
}

static pid_t spawn_worker(const bench_cfg_t *cfg, int r, int fd, int cpu,
                          int argc, char **argv)
{
    static const char *const roles[2] = { "passive", "active" };
    char fdstr[16], dev_env[BENCH_NAME_MAX + 24];
    snprintf(fdstr, sizeof fdstr, "%d", fd);
    char **v = worker_argv(cfg, r, roles[r], fdstr, dev_env, argc, argv);
    if (!v)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (cpu >= 0)
            pin_to(cpu);
        if (!cfg->netns[r][0] && cfg->netdev[r][0])
            setenv("UCX_NET_DEVICES", cfg->netdev[r], 1);
        fcntl(fd, F_SETFD, 0); /* keep our end across exec */
        exec_worker(cfg, r, v);
        fprintf(stderr, "nxc: bench: cannot start the %s worker: %s\n", roles[r],
                strerror(errno));
        _exit(NXC_EXIT_RUNTIME);
    }
    free(v);
    return pid;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Records how one worker ended; true if it failed. */
static bool worker_failed(const char *role, int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status) != 0;
    if (WIFSIGNALED(status))
        fprintf(stderr, "nxc: bench: the %s worker was killed by signal %d (%s)\n",
                role, WTERMSIG(status), strsignal(WTERMSIG(status)));
    return true;
}

/* Waits for both workers; once one fails, the other gets 3 s to notice. */
static int reap_workers(pid_t pid[2])
{
    static const char *const role[2] = { "passive", "active" };
    bool alive[2] = { true, true }, failed = false;
    uint64_t deadline = 0;
    while (alive[0] || alive[1]) {
        int status;
        pid_t p = waitpid(-1, &status, failed ? WNOHANG : 0);
        if (p < 0 && errno == EINTR)
            continue;
        if (p < 0)
            break;
        if (p == 0) {
            if (now_ns() > deadline)
                for (int i = 0; i < 2; i++)
                    if (alive[i])
                        kill(pid[i], SIGKILL);
            sleep_ms(20);
            continue;
        }
        for (int i = 0; i < 2; i++) {
            if (p != pid[i])
                continue;
            alive[i] = false;
            if (worker_failed(role[i], status) && !failed) {
                failed = true;
                deadline = now_ns() + 3000000000ull;
            }
        }
    }
    return failed ? NXC_EXIT_RUNTIME : NXC_EXIT_OK;
}

static int launch(const bench_cfg_t *cfg, int argc, char **argv)
{
    int sv[2], cpu[2] = { -1, -1 };
    int rc = check_netns(cfg);
    if (rc != 0)
        return rc;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return runtime_error("bench: socketpair: %s", strerror(errno));
    if (cfg->tls && setenv("UCX_TLS", cfg->tls, 1) != 0)
        return runtime_error("bench: setenv: %s", strerror(errno));
    if (pick_cpus(cpu) < 2)
        cpu[0] = cpu[1] = -1;
    note_pinning(cfg, cpu);
    pid_t pid[2];
    pid[0] = spawn_worker(cfg, 0, sv[0], cpu[0], argc, argv);
    pid[1] = pid[0] > 0 ? spawn_worker(cfg, 1, sv[1], cpu[1], argc, argv) : -1;
    close(sv[0]);
    close(sv[1]);
    if (pid[0] < 0 || pid[1] < 0) {
        if (pid[0] > 0)
            kill(pid[0], SIGKILL), waitpid(pid[0], NULL, 0);
        return runtime_error("bench: fork: %s", strerror(errno));
    }
    return reap_workers(pid);
}

int bench_main(int argc, char **argv)
{
    bench_cfg_t cfg;
    int rc = bench_parse(argc, argv, &cfg);
    if (rc == -1)
        return NXC_EXIT_OK; /* --help */
    if (rc != 0)
        return rc;
    return launch(&cfg, argc, argv);
}

/* Hidden entry of a worker: argv = __bench-worker ROLE FD [options]. */
int bench_worker_main(int argc, char **argv)
{
    bench_cfg_t cfg;
    uint64_t fd;
    if (argc < 3)
        return usage_error("__bench-worker: internal use only");
    if (parse_count("__bench-worker", argv[2], 0, 1 << 20, &fd) != 0)
        return NXC_EXIT_USAGE;
    int rc = bench_parse(argc - 2, argv + 2, &cfg);
    if (rc != 0)
        return rc < 0 ? NXC_EXIT_USAGE : rc;
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(argv[1], "passive") == 0)
        return bench_passive(&cfg, (int)fd);
    if (strcmp(argv[1], "active") == 0)
        return bench_active(&cfg, (int)fd);
    return usage_error("__bench-worker: unknown role '%s'", argv[1]);
}
