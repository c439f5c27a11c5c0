/* log.h — the daemon's one logger: key=value lines on stderr for journald.
 *
 * Levels follow syslog (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG). Under
 * systemd (JOURNAL_STREAM set) each line carries the "<N>" priority prefix
 * journald understands; otherwise a UTC timestamp. Never log secrets, and
 * message bodies only at LOG_DEBUG. Loop thread only (not thread-safe by
 * design: worker threads hand results back to the loop before logging). */
#ifndef OMNIROUTE_LOG_H
#define OMNIROUTE_LOG_H

#include <stdarg.h>
#include <syslog.h>

void omr_log_set_level(int level);
int omr_log_level(void);
/* "error", "warning", "info", "debug" → LOG_*; -1 when unknown. */
int omr_log_level_parse(const char *name);

void omr_log(int level, const char *component, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* A broken invariant: log and abort with a core. Never for bad input. */
void omr_panic(const char *component, const char *fmt, ...)
        __attribute__((noreturn, format(printf, 2, 3)));

#define OMR_MAGIC_CHECK(p, m)                                                                      \
        do {                                                                                       \
                if ((p) == NULL || (p)->magic != (m))                                              \
                        omr_panic("magic", "%s:%d bad magic for %s", __FILE__, __LINE__, #p);      \
        } while (0)

#endif
