/* nxc info: what a bug report needs - versions, what the connector chose on
 * this host (the library's own info log), huge pages, pidfd and CMA. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "nxc_xfer.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

void info_help(void)
{
    fputs("Usage: nxc info [--json]\n"
          "\n"
          "Prints what a bug report needs: the versions of nxc and the library,\n"
          "what a connector chooses on this host (protocol, shared memory, UCX\n"
          "version, transports and devices, as NXC_LOG_LEVEL=info logs it), the\n"
          "UCX and nxc environment, huge pages, and whether pidfd_open and CMA\n"
          "(cross-memory attach) are usable.\n"
          "\n"
          "Options:\n"
          "  --json      one JSON object instead of aligned lines\n"
          "  -h, --help  show this help and exit\n",
          stdout);
}

typedef struct fact {
    const char *key;
    char        value[768];
} fact_t;

enum { MAX_FACTS = 16 };

typedef struct facts {
    fact_t f[MAX_FACTS];
    int    n;
} facts_t;

static void add(facts_t *fs, const char *key, const char *fmt, ...) NXC_PRINTF(3, 4);
static void add(facts_t *fs, const char *key, const char *fmt, ...)
{
    if (fs->n == MAX_FACTS)
        return;
    fact_t *f = &fs->f[fs->n++];
    f->key = key;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->value, sizeof f->value, fmt, ap);
    va_end(ap);
}

static void add_env(facts_t *fs, const char *name)
{
    const char *v = getenv(name);
    add(fs, name, "%s", v ? v : "(unset)");
}

/* The library's info lines while a connector is created, taken from stderr. */
static void add_connector(facts_t *fs)
{
    FILE *log = tmpfile();
    int saved = dup(2);
    if (!log || saved < 0) {
        add(fs, "connector", "(cannot capture the library's log)");
        return;
    }
    setenv("NXC_LOG_LEVEL", "info", 1);
    fflush(stderr);
    dup2(fileno(log), 2);
    nxc_connector_t *c = NULL;
    int rc = nxc_connector_create(NULL, &c);
    const char *detail = nxc_last_error();
    nxc_connector_destroy(c);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char line[1024];
    rewind(log);
    while (fgets(line, sizeof line, log)) {
        char *msg = strstr(line, "protocol ");
        if (msg) {
            msg[strcspn(msg, "\n")] = '\0';
            add(fs, "connector", "%s", msg);
        }
    }
    fclose(log);
    if (rc != NXC_OK)
        add(fs, "connector", "cannot be created: %s (%s)", nxc_err_name(rc), detail);
}

static void add_huge_pages(facts_t *fs)
{
    char buf[256] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f && fgets(buf, sizeof buf, f)) {
        char *open = strchr(buf, '['), *close = open ? strchr(open, ']') : NULL;
        add(fs, "transparent_huge_pages", "%.*s",
            close ? (int)(close - open - 1) : 7, close ? open + 1 : "unknown");
    }
    if (f)
        fclose(f);
    long total = -1, free_ = -1, size_kb = -1;
    f = fopen("/proc/meminfo", "r");
    while (f && fgets(buf, sizeof buf, f)) {
        sscanf(buf, "HugePages_Total: %ld", &total);
        sscanf(buf, "HugePages_Free: %ld", &free_);
        sscanf(buf, "Hugepagesize: %ld kB", &size_kb);
    }
    if (f)
        fclose(f);
    add(fs, "huge_pages", "%ld free of %ld (%ld kB each)", free_, total, size_kb);
}

static void add_pidfd_cma(facts_t *fs)
{
    long fd = syscall(SYS_pidfd_open, getpid(), 0);
    add(fs, "pidfd_open", fd >= 0 ? "usable" : "not usable");
    if (fd >= 0)
        close((int)fd);
    char src[8] = "cma", dst[8] = "";
    struct iovec l = { dst, sizeof dst }, r = { src, sizeof src };
    bool cma = process_vm_readv(getpid(), &l, 1, &r, 1, 0) == (ssize_t)sizeof src &&
               strcmp(dst, "cma") == 0;
    char scope[16] = "";
    FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
    if (f && !fgets(scope, sizeof scope, f))
        scope[0] = '\0';
    if (f)
        fclose(f);
    scope[strcspn(scope, "\n")] = '\0';
    add(fs, "cma", "%s (yama ptrace_scope %s)", cma ? "usable" : "not usable",
        scope[0] ? scope : "absent: any process of the same user");
}

static void print_facts(const facts_t *fs, bool json)
{
    for (int i = 0; i < fs->n; i++) {
        if (!json) {
            printf("%-23s %s\n", fs->f[i].key, fs->f[i].value);
            continue;
        }
        printf("%s\"%s\":", i ? "," : "{", fs->f[i].key);
        json_string(fs->f[i].value);
    }
    if (json)
        puts("}");
}

int info_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, OPT_LONG },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *arg = NULL;
    bool json = false;
    int id;
    opt_init();
    while ((id = opt_next(argc, argv, opts, &arg)) != OPT_END) {
        if (id == OPT_ERROR)
            return NXC_EXIT_USAGE;
        if (id == OPT_POSITIONAL)
            return usage_error("info: unexpected argument '%s'", arg);
        if (id == 'h') {
            info_help();
            return NXC_EXIT_OK;
        }
        json = true;
    }
    facts_t fs = { .n = 0 };
    add(&fs, "nxc", "%s", NXC_TOOL_VERSION);
    int compat = NXC_CHECK_COMPATIBILITY();
    add(&fs, "libnixl_connect", "%s (header %d.%d.%d: %s)", nxc_version(), NXC_VERSION_MAJOR,
        NXC_VERSION_MINOR, NXC_VERSION_PATCH, compat == NXC_OK ? "compatible" : "INCOMPATIBLE");
    add(&fs, "nats_module", "%s", nats_available() ? "built" : "not built");
    add_env(&fs, "UCX_TLS");
    add_env(&fs, "UCX_NET_DEVICES");
    add_env(&fs, "NXC_PROTOCOL");
    add_connector(&fs);
    add_huge_pages(&fs);
    add_pidfd_cma(&fs);
    print_facts(&fs, json);
    return NXC_EXIT_OK;
}
