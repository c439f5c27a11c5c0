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
