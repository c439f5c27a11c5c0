/* log.c — key=value log lines on stderr; journald priority prefixes when
 * stderr is the journal. Loop thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "omniroute/log.h"
#include "omniroute/timefmt.h"

static int log_level = LOG_INFO;
static int log_journal = -1; /* unknown until first use */

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",     [LOG_CRIT] = "crit",
        [LOG_ERR] = "error",   [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

void omr_log_set_level(int level)
{
        log_level = level;
}

int omr_log_level(void)
{
        return log_level;
}

int omr_log_level_parse(const char *name)
{
        static const int levels[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
                if (strcmp(name, level_names[levels[i]]) == 0)
                        return levels[i];
        return -1;
}

static void vlog(int level, const char *component, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));
static void vlog(int level, const char *component, const char *fmt, va_list ap)
{
        char line[2048];
        int n;

        if (log_journal < 0)
                log_journal = getenv("JOURNAL_STREAM") != NULL;
        if (log_journal) {
                n = snprintf(line, sizeof(line), "<%d>level=%s comp=%s ", level, level_names[level],
                             component);
        } else {
                char ts[OMR_TIME_LEN + 1];
                omr_time_format(omr_now_ms(), ts);
                n = snprintf(line, sizeof(line), "%s level=%s comp=%s ", ts, level_names[level],
                             component);
        }
        if (n < 0 || (size_t)n >= sizeof(line))
                n = 0;
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        /* One fputs per line keeps lines whole when several processes share
         * the journal stream. */
        size_t len = strnlen(line, sizeof(line) - 2);
        line[len] = '\n';
        line[len + 1] = '\0';
        fputs(line, stderr);
}

void omr_log(int level, const char *component, const char *fmt, ...)
{
        if (level > log_level)
                return;
        va_list ap;
        va_start(ap, fmt);
        vlog(level, component, fmt, ap);
        va_end(ap);
}

void omr_panic(const char *component, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vlog(LOG_CRIT, component, fmt, ap);
        va_end(ap);
        abort();
}
