/* NXC_LOG_LEVEL: see log.h. */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

_Atomic int nxc_log_threshold = NXC_LOG_OFF;

static const char *const level_names[] = { "off", "error", "warn", "info", "debug" };

static void read_level(void)
{
    const char *env = getenv("NXC_LOG_LEVEL");
    if (env == NULL || env[0] == '\0')
        return;
    for (int l = NXC_LOG_ERROR; l <= NXC_LOG_DEBUG; l++)
        if (strcasecmp(env, level_names[l]) == 0) {
            atomic_store(&nxc_log_threshold, l);
            return;
        }
    fprintf(stderr, "nxc[%d] WARN: NXC_LOG_LEVEL='%s' is not error, warn, info or "
            "debug; logging stays off\n", (int)getpid(), env);
}

void nxc_log_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, read_level);
}

void nxc_log_write(int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char tag[8];
    snprintf(tag, sizeof tag, "%s", level_names[level]);
    for (char *p = tag; *p; p++)
        *p = (char)(*p - 'a' + 'A');
    fprintf(stderr, "nxc[%d] %s: %s\n", (int)getpid(), tag, line);
}
