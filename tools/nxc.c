/* nxc: the command-line tool of nixl_connect. Dispatch and top-level help. */
#include <stdio.h>
#include <string.h>

#include "nxc.h"

#ifndef NXC_TOOL_VERSION
#define NXC_TOOL_VERSION "unknown"
#endif

static void main_help(void)
{
    fputs("Usage: nxc <command> [options]\n"
          "\n"
          "Moves buffers between worker processes with one-sided reads and writes\n"
          "(nixl_connect over UCX).\n"
          "\n"
          "Commands:\n"
          "  bench   measure read and write between two processes on this host:\n"
          "          bandwidth, latency percentiles, full-cycle operation rate\n"
          "  serve   expose a file as a readable operation, offer its metadata\n"
          "          (standard output, or NATS with --nats)\n"
          "  get     read a served file, given its metadata\n"
          "  recv    expose a new file as a writable operation, hand its metadata\n"
          "          over (standard output, or NATS with --nats)\n"
          "  put     write a file into a peer's writable operation\n"
          "  kvbench prefill and decode worker processes moving KV caches over\n"
          "          NATS-carried metadata: goodput, latency, requests/s\n"
          "  info    versions, what the connector chooses here, huge pages, pidfd,\n"
          "          CMA: what a bug report needs\n"
          "  help    show this help, or a command's: nxc help <command>\n"
          "\n"
          "Options:\n"
          "  -h, --help     show this help and exit\n"
          "  -V, --version  show the version and exit\n"
          "\n"
          "Run 'nxc <command> --help' for the options of a command.\n"
          "Exit status: 0 success, 1 runtime failure, 2 bad arguments, 130/143\n"
          "interrupted by SIGINT/SIGTERM. NXC_LOG_LEVEL=error|warn|info|debug\n"
          "shows the library's log on standard error; 'man nxc' says more.\n",
          stdout);
}

static void version(void)
{
    printf("nxc %s (libnixl_connect %s)\n", NXC_TOOL_VERSION, nxc_version());
}

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    void (*help)(void);
} command_t;

static const command_t commands[] = {
    { "bench", bench_main, bench_help },
    { "serve", serve_main, serve_help },
    { "get",   get_main,   get_help   },
    { "recv",  recv_main,  recv_help  },
    { "put",   put_main,   put_help   },
    { "info",  info_main,  info_help  },
    { "kvbench", kvbench_main, kvbench_help },
};

static const command_t *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int help_command(int argc, char **argv)
{
    if (argc < 2) {
        main_help();
        return NXC_EXIT_OK;
    }
    if (argc > 2)
        return usage_error("help: too many arguments");
    const command_t *cmd = find_command(argv[1]);
    if (!cmd)
        return usage_error("help: unknown command '%s' (try 'nxc --help')", argv[1]);
    cmd->help();
    return NXC_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("missing command (try 'nxc --help')");
    const char *word = argv[1];
    if (strcmp(word, "-h") == 0 || strcmp(word, "--help") == 0) {
        main_help();
        return NXC_EXIT_OK;
    }
    if (strcmp(word, "-V") == 0 || strcmp(word, "--version") == 0) {
        version();
        return NXC_EXIT_OK;
    }
    if (strcmp(word, "help") == 0)
        return help_command(argc - 1, argv + 1);
    if (strcmp(word, "__bench-worker") == 0)
        return bench_worker_main(argc - 1, argv + 1);
    const command_t *cmd = find_command(word);
    if (cmd)
        return cmd->run(argc - 1, argv + 1);
    if (word[0] == '-')
        return usage_error("unknown option '%s' (try 'nxc --help')", word);
    return usage_error("unknown command '%s' (try 'nxc --help')", word);
}
