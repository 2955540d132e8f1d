/* Starting and stopping a real nats-server for the tests. */
#include "nats_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_WAIT_MS 10000

static int executable(const char *path)
{
    return access(path, X_OK) == 0;
}

const char *nats_server_binary(void)
{
    static char found[4096];
    const char *env = getenv("NXC_NATS_SERVER");
    if (env && *env)
        return executable(env) ? env : NULL;
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/usr/bin", path ? path : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d;
         d = strtok_r(NULL, ":", &save)) {
        snprintf(found, sizeof found, "%s/nats-server", d);
        if (executable(found))
            return found;
    }
    return NULL;
}

/* The port from the server's log line "Listening for client connections on
 * 127.0.0.1:PORT", or 0 while it has not been written yet. */
static int read_port(const char *log)
{
    char line[512];
    int port = 0;
    FILE *f = fopen(log, "r");
    if (!f)
        return 0;
    while (!port && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "Listening for client connections on ");
        const char *colon = p ? strrchr(p, ':') : NULL;
        if (colon)
            port = atoi(colon + 1);
    }
    fclose(f);
    return port;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int write_config(const nats_server_t *s, const char *text, char *conf,
                        size_t size)
{
    snprintf(conf, size, "%s/server.conf", s->dir);
    FILE *f = fopen(conf, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static pid_t spawn(const char *bin, const char *log, const char *conf)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    if (conf[0])
        execl(bin, bin, "-a", "127.0.0.1", "-p", "-1", "-l", log, "-c", conf, (char *)NULL);
    else
        execl(bin, bin, "-a", "127.0.0.1", "-p", "-1", "-l", log, (char *)NULL);
    _exit(127);
}

int nats_server_start(nats_server_t *s, long max_payload)
{
    char text[64] = "";
    if (max_payload > 0)
        snprintf(text, sizeof text, "max_payload: %ld\n", max_payload);
    return nats_server_start_conf(s, text);
}

int nats_server_start_conf(nats_server_t *s, const char *conf_text)
{
    char log[128], conf[128] = "";
    const char *bin = nats_server_binary();
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", "/tmp/nxc-nats.XXXXXX");
    if (!bin || !mkdtemp(s->dir)) {
        fprintf(stderr, "nats_server_start: no nats-server or no temp dir\n");
        return -1;
    }
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    if (conf_text[0] && write_config(s, conf_text, conf, sizeof conf) != 0)
        return -1;
    s->pid = spawn(bin, log, conf);
    for (int waited = 0; s->pid > 0 && waited < START_WAIT_MS; waited += 10) {
        if ((s->port = read_port(log)) > 0) {
            snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", s->port);
            return 0;
        }
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            break;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "nats_server_start: %s did not start (log in %s)\n", bin, log);
    nats_server_stop(s, SIGKILL);
    return -1;
}

void nats_server_stop(nats_server_t *s, int sig)
{
    char cmd[128];
    if (s->pid > 0) {
        kill(s->pid, sig);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    if (s->dir[0] && strncmp(s->dir, "/tmp/nxc-nats.", 14) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "nats_server_stop: could not remove %s\n", s->dir);
        s->dir[0] = '\0';
    }
}

int nats_free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);   /* nobody listens: connects are refused */
    return port;
}

int nats_silent_listener(int *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}
