/* Logging to stderr for users debugging a deployment: NXC_LOG_LEVEL=error,
 * warn, info or debug (read once, at the first connector). Off by default,
 * and then a call site costs one relaxed load and a compare: the arguments
 * are not even evaluated. */
#ifndef NXC_LOG_H
#define NXC_LOG_H

#include <stdatomic.h>

enum { NXC_LOG_OFF = 0, NXC_LOG_ERROR, NXC_LOG_WARN, NXC_LOG_INFO, NXC_LOG_DEBUG };

extern _Atomic int nxc_log_threshold;

/* Reads NXC_LOG_LEVEL; idempotent and thread-safe. */
void nxc_log_init(void);
/* One line "nxc[PID] LEVEL: message" on stderr. */
void nxc_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define NXC_LOG(level, ...)                                                        \
    do {                                                                           \
        if ((level) <= atomic_load_explicit(&nxc_log_threshold, memory_order_relaxed)) \
            nxc_log_write((level), __VA_ARGS__);                                   \
    } while (0)

#endif /* NXC_LOG_H */
