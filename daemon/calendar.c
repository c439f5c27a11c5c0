/* calendar.c — see calendar.h. An instant is turned into the calendar's
 * local date and wall-clock minute with GLib (g_date_time_to_timezone
 * applies the zone's offset and DST for that instant); the rest is
 * arithmetic on local dates, so a DST change only moves which instants map
 * to a given wall-clock time, never the opening hours themselves. */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/calendar.h"

static int hhmm(const char *s, int *minutes)
{
        int h, m, n = 0;
        if (sscanf(s, "%2d:%2d%n", &h, &m, &n) != 2 || n != 5 || h < 0 || m < 0 || m > 59 ||
            h > 24 || (h == 24 && m != 0))
                return -1;
        *minutes = h * 60 + m;
        return 0;
}

int omr_hours_range_parse(const char *s, struct omr_hours_range *out)
{
        if (strlen(s) != 11 || s[5] != '-')
                return -1;
        char a[6], b[6];
        memcpy(a, s, 5);
        a[5] = '\0';
        memcpy(b, s + 6, 5);
        b[5] = '\0';
        if (hhmm(a, &out->start) || hhmm(b, &out->end) || out->start == 24 * 60 ||
            out->start == out->end)
                return -1;
        return 0;
}

int omr_holiday_parse(const char *s, struct omr_holiday *out)
{
        int y = 0, m, d, n = 0;
        size_t len = strlen(s);
        if (len == 10 && sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) == 3 && n == 10 && y > 0) {
                if (!g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)y))
                        return -1;
        } else if (len == 5 && sscanf(s, "%2d-%2d%n", &m, &d, &n) == 2 && n == 5) {
                /* Every year: 02-29 is allowed and applies in leap years. */
                if (!g_date_valid_dmy((GDateDay)d, (GDateMonth)m, 2000))
                        return -1;
                y = 0;
        } else {
                return -1;
        }
        out->year = y;
        out->month = m;
        out->day = d;
        return 0;
}

int omr_calendar_set_timezone(struct omr_calendar *c, const char *iana)
{
        /* g_time_zone_new_identifier() answers NULL for an unknown zone
         * (g_time_zone_new would silently give UTC). */
        GTimeZone *tz = g_time_zone_new_identifier(iana);
        if (tz == NULL)
                return -1;
        if (c->tz)
                g_time_zone_unref(c->tz);
        c->tz = tz;
        return 0;
}

static bool is_holiday(const struct omr_calendar *c, int y, int m, int d)
{
        for (size_t i = 0; i < c->n_holidays; i++) {
                const struct omr_holiday *h = &c->holidays[i];
                if (h->month == m && h->day == d && (h->year == 0 || h->year == y))
                        return true;
        }
        return false;
}

bool omr_calendar_is_open(const struct omr_calendar *c, int64_t unix_ms)
{
        if (c->tz == NULL)
                return false;
        GDateTime *utc = g_date_time_new_from_unix_utc(unix_ms / 1000);
        GDateTime *t = utc ? g_date_time_to_timezone(utc, c->tz) : NULL;
        if (utc)
                g_date_time_unref(utc);
        if (t == NULL)
                return false;
        int y = g_date_time_get_year(t), mo = g_date_time_get_month(t),
            d = g_date_time_get_day_of_month(t);
        int dow = g_date_time_get_day_of_week(t) - 1; /* GLib: 1 = Monday */
        int minute = g_date_time_get_hour(t) * 60 + g_date_time_get_minute(t);
        GDateTime *prev = g_date_time_add_days(t, -1);
        int py = g_date_time_get_year(prev), pm = g_date_time_get_month(prev),
            pd = g_date_time_get_day_of_month(prev);
        g_date_time_unref(prev);
        g_date_time_unref(t);

        if (is_holiday(c, y, mo, d))
                return false;
        for (size_t i = 0; i < c->n_hours[dow]; i++) {
                const struct omr_hours_range *r = &c->hours[dow][i];
                if (minute >= r->start && (r->end <= r->start || minute < r->end))
                        return true;
        }
        /* Yesterday's overnight ranges reach into today, unless yesterday
         * was a holiday (then they never opened). */
        int ydow = (dow + 6) % 7;
        if (!is_holiday(c, py, pm, pd))
                for (size_t i = 0; i < c->n_hours[ydow]; i++) {
                        const struct omr_hours_range *r = &c->hours[ydow][i];
                        if (r->end <= r->start && minute < r->end)
                                return true;
                }
        return false;
}

/* --- business-time arithmetic ------------------------------------------------ */

struct span {
        int64_t s, e; /* [s, e) in ms since the epoch */
};

#define WINDOW_DAYS 14
#define MAX_DAYS    3660 /* ten years: a calendar that never opens ends the search */
#define MAX_SPANS   ((WINDOW_DAYS + 2) * 32)

/* UTC offset (seconds) in effect at instant t (seconds). */
static int64_t offset_at(GTimeZone *tz, int64_t t)
{
        int iv = g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, t);
        return iv < 0 ? 0 : g_time_zone_get_offset(tz, iv);
}

/* Local midnight of date d read as if it were UTC (seconds). */
static int64_t naive_midnight(const GDate *d)
{
        static GDate epoch;
        if (!g_date_valid(&epoch))
                g_date_set_dmy(&epoch, 1, G_DATE_JANUARY, 1970);
        return ((int64_t)g_date_get_julian(d) - (int64_t)g_date_get_julian(&epoch)) * 86400;
}

/* The instants whose local wall time lies in [start, end) minutes of date
 * d (end may pass midnight), appended to out: exactly the instants
 * omr_calendar_is_open calls open for this range. For each UTC offset in
 * effect around that day, the candidate span is [midnight + start -
 * offset, midnight + end - offset), kept where that offset really
 * applies; the DST transition inside it is found by bisection. So a range
 * in the hour a spring change skips is empty, and one in the hour an
 * autumn change repeats is open both times. */
static size_t range_spans(GTimeZone *tz, const GDate *d, int start, int end, struct span *out)
{
        int64_t u = naive_midnight(d);
        int64_t offsets[4];
        size_t n_off = 0, n = 0;
        for (int64_t t = u - 15 * 3600; t <= u + (end / 60 + 15) * 3600; t += 3600) {
                int64_t o = offset_at(tz, t);
                size_t k = 0;
                while (k < n_off && offsets[k] != o)
                        k++;
                if (k == n_off && n_off < 4)
                        offsets[n_off++] = o;
        }
        for (size_t k = 0; k < n_off; k++) {
                int64_t o = offsets[k];
                int64_t lo = u + start * 60 - o, hi = u + end * 60 - o; /* [lo, hi) seconds */
                bool first = offset_at(tz, lo) == o, last = offset_at(tz, hi - 1) == o;
                if (!first && !last)
                        continue;
                if (!first || !last) {
                        /* One transition inside: find the first second on
                         * the other side of it. */
                        int64_t a = lo, b = hi - 1;
                        while (b - a > 1) {
                                int64_t mid = a + (b - a) / 2;
                                if ((offset_at(tz, mid) == o) == first)
                                        a = mid;
                                else
                                        b = mid;
                        }
                        if (first)
                                hi = b;
                        else
                                lo = b;
                }
                if (hi > lo)
                        out[n++] = (struct span){lo * 1000, hi * 1000};
        }
        return n;
}

static bool date_is_holiday(const struct omr_calendar *c, const GDate *d)
{
        return is_holiday(c, g_date_get_year(d), g_date_get_month(d), g_date_get_day(d));
}

static int cmp_span(const void *a, const void *b)
{
        const struct span *x = a, *y = b;
        return x->s < y->s ? -1 : x->s > y->s;
}

/* Open spans of the local dates first .. first + WINDOW_DAYS - 1 (each
 * day's overnight ranges reach into the next), sorted and merged. */
/* The open spans of one local date's ranges (not merged; the date's
 * overnight ranges reach into the next day, cut at midnight when that day
 * is a holiday). At most MAX_PER_DAY * 4 spans. */
static size_t day_spans(const struct omr_calendar *c, const GDate *d, struct span *out)
{
        size_t n = 0;
        if (date_is_holiday(c, d))
                return 0;
        int dow = g_date_get_weekday(d) - 1; /* G_DATE_MONDAY = 1 */
        GDate next = *d;
        g_date_add_days(&next, 1);
        for (size_t k = 0; k < c->n_hours[dow] && k < OMR_CALENDAR_MAX_RANGES; k++) {
                const struct omr_hours_range *r = &c->hours[dow][k];
                int end = r->end > r->start ? r->end : r->end + 24 * 60;
                if (end > 24 * 60 && date_is_holiday(c, &next))
                        end = 24 * 60;
                n += range_spans(c->tz, d, r->start, end, out + n);
        }
        return n;
}

/* Open spans of the local dates first .. first + WINDOW_DAYS - 1, sorted
 * and merged. */
static size_t window_spans(const struct omr_calendar *c, const GDate *first, struct span *out)
{
        size_t n = 0;
        GDate d = *first;
        for (int i = 0; i < WINDOW_DAYS; i++, g_date_add_days(&d, 1))
                n += day_spans(c, &d, out + n);
        qsort(out, n, sizeof(*out), cmp_span);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
                if (m > 0 && out[i].s <= out[m - 1].e) {
                        if (out[i].e > out[m - 1].e)
                                out[m - 1].e = out[i].e;
                } else {
                        out[m++] = out[i];
                }
        }
        return m;
}

/* The local date of instant t, minus one day (yesterday's overnight
 * ranges may cover t). */
static void start_date(const struct omr_calendar *c, int64_t t_ms, GDate *out)
{
        GDateTime *utc = g_date_time_new_from_unix_utc(t_ms / 1000 - (t_ms % 1000 < 0));
        GDateTime *t = g_date_time_to_timezone(utc, c->tz);
        g_date_clear(out, 1);
        g_date_set_dmy(out, (GDateDay)g_date_time_get_day_of_month(t),
                       (GDateMonth)g_date_time_get_month(t), (GDateYear)g_date_time_get_year(t));
        g_date_subtract_days(out, 1);
        g_date_time_unref(t);
        g_date_time_unref(utc);
}

/* Calls fn for each open span that ends after t, in order, until fn
 * returns false; false when the search ran out of years. */
static bool walk(const struct omr_calendar *c, int64_t t_ms,
                 bool (*fn)(const struct span *sp, void *arg), void *arg)
{
        struct span spans[MAX_SPANS];
        GDate d;
        start_date(c, t_ms, &d);
        /* Windows overlap by one day so a range crossing a window's end
         * is seen whole; spans already passed are skipped by `done`. */
        int64_t done = t_ms;
        for (int days = 0; days < MAX_DAYS; days += WINDOW_DAYS - 1) {
                size_t n = window_spans(c, &d, spans);
                for (size_t i = 0; i < n; i++) {
                        if (spans[i].e <= done)
                                continue;
                        struct span sp = {spans[i].s > done ? spans[i].s : done, spans[i].e};
                        done = sp.e;
                        if (!fn(&sp, arg))
                                return true;
                }
                g_date_add_days(&d, WINDOW_DAYS - 1);
        }
        return false;
}

struct add_state {
        int64_t left, at;
};

static bool add_step(const struct span *sp, void *arg)
{
        struct add_state *st = arg;
        if (st->left <= sp->e - sp->s) {
                st->at = sp->s + st->left;
                return false;
        }
        st->left -= sp->e - sp->s;
        return true;
}

int64_t omr_calendar_add(const struct omr_calendar *c, int64_t start_ms, int64_t business_ms)
{
        if (business_ms < 0)
                business_ms = 0;
        if (c == NULL)
                return start_ms + business_ms;
        if (c->tz == NULL)
                return OMR_NEVER;
        struct add_state st = {business_ms, OMR_NEVER};
        walk(c, start_ms, add_step, &st);
        return st.at;
}

int64_t omr_calendar_next_open(const struct omr_calendar *c, int64_t t_ms)
{
        return omr_calendar_add(c, t_ms, 0);
}

struct between_state {
        int64_t end, sum;
};

static bool between_step(const struct span *sp, void *arg)
{
        struct between_state *st = arg;
        if (sp->s >= st->end)
                return false;
        st->sum += (sp->e < st->end ? sp->e : st->end) - sp->s;
        return sp->e < st->end;
}

int64_t omr_calendar_between(const struct omr_calendar *c, int64_t a_ms, int64_t b_ms)
{
        if (b_ms <= a_ms)
                return 0;
        if (c == NULL)
                return b_ms - a_ms;
        if (c->tz == NULL)
                return 0;
        struct between_state st = {b_ms, 0};
        walk(c, a_ms, between_step, &st);
        return st.sum;
}

static void local_date(GTimeZone *tz, int64_t ms, GDate *out)
{
        GDateTime *utc = g_date_time_new_from_unix_utc(ms / 1000);
        GDateTime *t = g_date_time_to_timezone(utc, tz);
        g_date_clear(out, 1);
        g_date_set_dmy(out, (GDateDay)g_date_time_get_day_of_month(t),
                       (GDateMonth)g_date_time_get_month(t), (GDateYear)g_date_time_get_year(t));
        g_date_time_unref(t);
        g_date_time_unref(utc);
}

/* The business day is the local date whose range is open at `open` (the
 * day before, inside an overnight range); it ends with that date's last
 * range — from the configured ranges, not merged spans, so ranges that
 * touch at midnight (00:00-24:00 every day) still end each day. */
int64_t omr_calendar_end_of_day(const struct omr_calendar *c, int64_t t_ms)
{
        if (c == NULL)
                return (t_ms / 86400000 + 1) * 86400000;
        int64_t open = omr_calendar_next_open(c, t_ms);
        if (open == OMR_NEVER)
                return OMR_NEVER;
        struct span spans[OMR_CALENDAR_MAX_RANGES * 4];
        GDate d;
        local_date(c->tz, open, &d);
        g_date_subtract_days(&d, 1);
        for (int i = 0; i < 2; i++, g_date_add_days(&d, 1)) {
                size_t n = day_spans(c, &d, spans);
                bool mine = false;
                int64_t end = open;
                for (size_t k = 0; k < n; k++) {
                        mine = mine || (spans[k].s <= open && open < spans[k].e);
                        if (spans[k].e > end)
                                end = spans[k].e;
                }
                if (mine)
                        return end;
        }
        return open; /* unreachable: next_open is inside some range */
}

void omr_calendar_clear(struct omr_calendar *c)
{
        free(c->name);
        free(c->timezone);
        if (c->tz)
                g_time_zone_unref(c->tz);
        for (int i = 0; i < 7; i++)
                free(c->hours[i]);
        free(c->holidays);
        memset(c, 0, sizeof(*c));
}
