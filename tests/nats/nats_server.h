/* A real nats-server for tests: started on 127.0.0.1 on a port the server
 * picks itself (so parallel tests never collide), stopped and cleaned up
 * by the test. */
#ifndef NXC_TEST_NATS_SERVER_H
#define NXC_TEST_NATS_SERVER_H

#include <sys/types.h>

typedef struct nats_server {
    pid_t pid;
    int   port;
    char  url[64];
    char  dir[64];     /* temporary folder: log and config */
} nats_server_t;

/* Exit code that CTest reads as "skipped" (SKIP_RETURN_CODE). */
#define NATS_TEST_SKIP 77

/* The nats-server binary: $NXC_NATS_SERVER, else PATH, /usr/sbin, /usr/bin;
 * NULL if there is none. */
const char *nats_server_binary(void);

/* Starts a server; @p max_payload > 0 sets the server's max_payload.
 * Returns 0, or -1 with a message on stderr. */
int nats_server_start(nats_server_t *s, long max_payload);

/* Starts a server with @p conf_text as its configuration file (may be
 * empty); the client port is still the server's pick on 127.0.0.1. */
int nats_server_start_conf(nats_server_t *s, const char *conf_text);

/* SIGKILL (abrupt) or SIGTERM, waits for the process, removes the folder. */
void nats_server_stop(nats_server_t *s, int sig);

/* A TCP port on 127.0.0.1 where nothing listens right now. */
int nats_free_port(void);

/* A socket listening on 127.0.0.1 that never answers (connects complete,
 * nothing is ever sent): returns its fd and sets *port, or -1. */
int nats_silent_listener(int *port);

#endif
