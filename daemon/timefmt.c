/* timefmt.c — RFC 3339 formatting and strict parsing, the clocks, and
 * retry backoff.
 * Pure except for the clock readers and the backoff jitter. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <sys/random.h>
#include <string.h>
#include <time.h>

#include "omniroute/timefmt.h"

int64_t omr_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t omr_mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * civil-from-days inverse); avoids timegm's dependence on TZ state. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
        y -= m <= 2;
        const int64_t era = (y >= 0 ? y : y - 399) / 400;
        const unsigned yoe = (unsigned)(y - era * 400);
        const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

void omr_time_format(int64_t ms, char *out)
{
        time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        int millis = (int)(ms - (int64_t)secs * 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        /* Values bounded by gmtime; unsigned + modulo tells the compiler so. */
        snprintf(out, OMR_TIME_LEN + 1, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
                 (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
                 (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u,
                 (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u, (unsigned)millis % 1000u);
}

static int digits(const char *s, int n, int *out)
{
        int v = 0;
        for (int i = 0; i < n; i++) {
                if (!isdigit((unsigned char)s[i]))
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return 0;
}

static int days_in_month(int y, int m)
{
        static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
                return 29;
        return dim[m - 1];
}

int omr_time_parse(const char *s, int64_t *ms)
{
        int y, mo, d, h, mi, sec, frac_ms = 0;
        size_t len = strlen(s);

        if (len < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
            digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
            digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
            digits(s + 17, 2, &sec))
                return -EINVAL;
        if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
                return -EINVAL;
        const char *p = s + 19;
        if (*p == '.') {
                int n = 0;
                p++;
                while (isdigit((unsigned char)*p)) {
                        if (n < 3)
                                frac_ms = frac_ms * 10 + (*p - '0');
                        n++;
                        p++;
                }
                if (n == 0)
                        return -EINVAL;
                for (; n < 3; n++)
                        frac_ms *= 10;
        }
        int offset_min = 0;
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                int oh, om;
                if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 ||
                    om > 59)
                        return -EINVAL;
                offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
                p += 6;
        } else {
                return -EINVAL;
        }
        if (*p != '\0')
                return -EINVAL;
        if (sec == 60) /* leap second: clamp, as POSIX time has none */
                sec = 59;
        int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
        int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - (int64_t)offset_min * 60;
        *ms = secs * 1000 + frac_ms;
        return 0;
}

int64_t omr_backoff_ms(int attempt_no, int64_t min_ms, int64_t max_ms)
{
        int64_t ms = min_ms;
        for (int i = 1; i < attempt_no && ms < max_ms; i++)
                ms *= 2;
        if (ms > max_ms)
                ms = max_ms;
        unsigned short j = 0;
        if (getrandom(&j, sizeof(j), 0) != sizeof(j))
                j = 0;
        return ms / 2 + (int64_t)(j % (unsigned)(ms / 2 + 1));
}
