/* calendar_test.c — business-hours calendars (daemon/calendar.c): parsing
 * of ranges and holidays, and omr_calendar_is_open across DST changes in
 * both directions, overnight ranges, holidays (also one that cuts an
 * overnight range short), and a zone without DST. Instants are written in
 * UTC; the comment beside each gives the local wall time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <glib.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/calendar.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int64_t utc(int y, int mo, int d, int h, int mi)
{
        GDateTime *t = g_date_time_new_utc(y, mo, d, h, mi, 0);
        int64_t ms = g_date_time_to_unix(t) * 1000;
        g_date_time_unref(t);
        return ms;
}

/* A calendar from day strings ("mon" … "sun" → one range each). */
static void build(struct omr_calendar *c, const char *tz, const char *const hours[7],
                  const char *const *holidays, size_t n_holidays)
{
        memset(c, 0, sizeof(*c));
        assert_int_equal(omr_calendar_set_timezone(c, tz), 0);
        for (int d = 0; d < 7; d++) {
                if (hours[d] == NULL)
                        continue;
                gchar **parts = g_strsplit(hours[d], ",", 0);
                size_t n = g_strv_length(parts);
                c->hours[d] = calloc(n, sizeof(*c->hours[d]));
                for (size_t i = 0; i < n; i++)
                        assert_int_equal(omr_hours_range_parse(parts[i], &c->hours[d][i]), 0);
                c->n_hours[d] = n;
                g_strfreev(parts);
        }
        c->holidays = calloc(n_holidays ? n_holidays : 1, sizeof(*c->holidays));
        for (size_t i = 0; i < n_holidays; i++)
                assert_int_equal(omr_holiday_parse(holidays[i], &c->holidays[i]), 0);
        c->n_holidays = n_holidays;
}

static void test_range_parse(void **state)
{
        (void)state;
        static const struct {
                const char *s;
                int ok, start, end;
        } cases[] = {
                {"09:00-17:30", 1, 540, 1050}, {"00:00-24:00", 1, 0, 1440},
                {"22:00-06:00", 1, 1320, 360}, {"23:59-00:00", 1, 1439, 0},
                {"09:00-09:00", 0, 0, 0},      {"24:00-01:00", 0, 0, 0},
                {"9:00-17:00", 0, 0, 0},       {"09:60-17:00", 0, 0, 0},
                {"09:00-24:01", 0, 0, 0},      {"09:00 17:00", 0, 0, 0},
                {"09:00-17:00x", 0, 0, 0},     {"", 0, 0, 0},
        };
        for (size_t i = 0; i < N(cases); i++) {
                struct omr_hours_range r;
                int rc = omr_hours_range_parse(cases[i].s, &r);
                if ((rc == 0) != cases[i].ok)
                        fail_msg("'%s': rc %d", cases[i].s, rc);
                if (cases[i].ok && (r.start != cases[i].start || r.end != cases[i].end))
                        fail_msg("'%s': %d-%d", cases[i].s, r.start, r.end);
        }
}

static void test_holiday_parse(void **state)
{
        (void)state;
        static const struct {
                const char *s;
                int ok, y, m, d;
        } cases[] = {
                {"2026-12-25", 1, 2026, 12, 25}, {"01-01", 1, 0, 1, 1},
                {"02-29", 1, 0, 2, 29},          {"2028-02-29", 1, 2028, 2, 29},
                {"2026-02-29", 0, 0, 0, 0},      {"2026-13-01", 0, 0, 0, 0},
                {"13-01", 0, 0, 0, 0},           {"2026-1-1", 0, 0, 0, 0},
                {"christmas", 0, 0, 0, 0},       {"2026-12-25 ", 0, 0, 0, 0},
        };
        for (size_t i = 0; i < N(cases); i++) {
                struct omr_holiday h;
                int rc = omr_holiday_parse(cases[i].s, &h);
                if ((rc == 0) != cases[i].ok)
                        fail_msg("'%s': rc %d", cases[i].s, rc);
                if (cases[i].ok &&
                    (h.year != cases[i].y || h.month != cases[i].m || h.day != cases[i].d))
                        fail_msg("'%s': %d-%d-%d", cases[i].s, h.year, h.month, h.day);
        }
}

static void test_unknown_zone(void **state)
{
        (void)state;
        struct omr_calendar c = {0};
        assert_int_equal(omr_calendar_set_timezone(&c, "Mars/Olympus_Mons"), -1);
        assert_null(c.tz);
        assert_false(omr_calendar_is_open(&c, utc(2026, 11, 23, 10, 0)));
        omr_calendar_clear(&c);
}

struct probe {
        int y, mo, d, h, mi; /* UTC */
        bool open;
        const char *local;
};

static void check(const struct omr_calendar *c, const struct probe *p, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                bool got = omr_calendar_is_open(c, utc(p[i].y, p[i].mo, p[i].d, p[i].h, p[i].mi));
                if (got != p[i].open)
                        fail_msg("%04d-%02d-%02d %02d:%02dZ (%s): open=%d, want %d", p[i].y,
                                 p[i].mo, p[i].d, p[i].h, p[i].mi, p[i].local, got, p[i].open);
        }
}

/* Europe/London: two ranges on weekdays, closed at weekends. */
static void test_london_weekdays_and_dst(void **state)
{
        (void)state;
        static const char *const hours[7] = {"09:00-12:30,13:30-17:30",
                                             "09:00-12:30,13:30-17:30",
                                             "09:00-12:30,13:30-17:30",
                                             "09:00-12:30,13:30-17:30",
                                             "09:00-12:30,13:30-17:30",
                                             NULL,
                                             NULL};
        struct omr_calendar c;
        build(&c, "Europe/London", hours, NULL, 0);
        static const struct probe p[] = {
                {2026, 11, 23, 10, 0, true, "Mon 10:00 GMT"},
                {2026, 11, 23, 8, 59, false, "Mon 08:59 GMT"},
                {2026, 11, 23, 9, 0, true, "Mon 09:00 opens"},
                {2026, 11, 23, 12, 30, false, "Mon 12:30 lunch (end is exclusive)"},
                {2026, 11, 23, 13, 30, true, "Mon 13:30 afternoon"},
                {2026, 11, 23, 17, 30, false, "Mon 17:30 closed"},
                {2026, 11, 28, 10, 0, false, "Sat"},
                /* Summer time: 08:30Z is 09:30 BST. */
                {2026, 6, 1, 8, 30, true, "Mon 09:30 BST"},
                {2026, 6, 1, 7, 30, false, "Mon 08:30 BST"},
                {2026, 6, 1, 16, 29, true, "Mon 17:29 BST"},
                {2026, 6, 1, 16, 30, false, "Mon 17:30 BST"},
                /* Monday after the spring change (Sun 29 Mar 2026). */
                {2026, 3, 30, 8, 0, true, "Mon 09:00 BST, first weekday of summer time"},
                {2026, 3, 27, 8, 30, false, "Fri 08:30 GMT, last weekday of winter time"},
                /* Monday after the autumn change (Sun 25 Oct 2026). */
                {2026, 10, 26, 9, 0, true, "Mon 09:00 GMT"},
                {2026, 10, 23, 8, 0, true, "Fri 09:00 BST"},
        };
        check(&c, p, N(p));
        omr_calendar_clear(&c);
}

/* Sunday hours inside the hour that DST skips or repeats. */
static void test_dst_gap_and_overlap(void **state)
{
        (void)state;
        static const char *const hours[7] = {NULL, NULL, NULL, NULL, NULL, NULL, "01:00-02:00"};
        struct omr_calendar c;
        build(&c, "Europe/London", hours, NULL, 0);
        static const struct probe p[] = {
                /* 29 Mar 2026: 01:00 GMT jumps to 02:00 BST — the range never
                 * happens, so the calendar never opens that day. */
                {2026, 3, 29, 0, 59, false, "Sun 00:59 GMT"},
                {2026, 3, 29, 1, 0, false, "Sun 02:00 BST"},
                {2026, 3, 29, 1, 30, false, "Sun 02:30 BST"},
                /* 25 Oct 2026: 01:00-02:00 happens twice, open both times. */
                {2026, 10, 25, 0, 0, true, "Sun 01:00 BST"},
                {2026, 10, 25, 0, 59, true, "Sun 01:59 BST"},
                {2026, 10, 25, 1, 0, true, "Sun 01:00 GMT (again)"},
                {2026, 10, 25, 1, 59, true, "Sun 01:59 GMT"},
                {2026, 10, 25, 2, 0, false, "Sun 02:00 GMT"},
                {2026, 10, 24, 23, 59, false, "Sun 00:59 BST"},
        };
        check(&c, p, N(p));
        omr_calendar_clear(&c);
}

/* Overnight ranges and holidays, in a zone without DST (UTC+7). */
static void test_overnight_and_holidays(void **state)
{
        (void)state;
        static const char *const hours[7] = {"08:00-17:00", "08:00-17:00", "08:00-17:00",
                                             "08:00-17:00", "08:00-17:00", "22:00-02:00",
                                             NULL};
        static const char *const holidays[] = {"2026-12-25", "01-01", "2026-11-29"};
        struct omr_calendar c;
        build(&c, "Asia/Bangkok", hours, holidays, N(holidays));
        static const struct probe p[] = {
                {2026, 11, 23, 1, 0, true, "Mon 08:00 ICT"},
                {2026, 11, 23, 0, 59, false, "Mon 07:59 ICT"},
                {2026, 11, 23, 10, 0, false, "Mon 17:00 ICT"},
                /* Saturday 22:00 until Sunday 02:00. */
                {2026, 11, 21, 15, 0, true, "Sat 22:00 ICT"},
                {2026, 11, 21, 17, 0, true, "Sun 00:00 ICT (Saturday's range)"},
                {2026, 11, 21, 18, 59, true, "Sun 01:59 ICT"},
                {2026, 11, 21, 19, 0, false, "Sun 02:00 ICT"},
                {2026, 11, 20, 16, 0, false, "Fri 23:00 ICT"},
                /* Sunday 29 Nov is a holiday: Saturday's range stops at
                 * midnight. */
                {2026, 11, 28, 16, 0, true, "Sat 23:00 ICT before a Sunday holiday"},
                {2026, 11, 28, 17, 30, false, "Sun 00:30 ICT, holiday"},
                /* Christmas (a Friday) and New Year (yearly, 2027 Friday). */
                {2026, 12, 25, 3, 0, false, "Fri 10:00 ICT, 25 Dec"},
                {2026, 12, 24, 3, 0, true, "Thu 10:00 ICT, 24 Dec"},
                {2027, 1, 1, 3, 0, false, "Fri 10:00 ICT, 1 Jan (every year)"},
                {2028, 1, 3, 3, 0, true, "Mon 10:00 ICT, 3 Jan 2028"},
        };
        check(&c, p, N(p));
        omr_calendar_clear(&c);
}

/* A range that covers the whole day every day is 24/7. */
static void test_always_open(void **state)
{
        (void)state;
        static const char *const hours[7] = {"00:00-24:00", "00:00-24:00", "00:00-24:00",
                                             "00:00-24:00", "00:00-24:00", "00:00-24:00",
                                             "00:00-24:00"};
        struct omr_calendar c;
        build(&c, "America/New_York", hours, NULL, 0);
        for (int h = 0; h < 24 * 14; h += 5)
                assert_true(omr_calendar_is_open(&c, utc(2026, 3, 1, 0, 0) + h * 3600000LL));
        omr_calendar_clear(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_range_parse),
                cmocka_unit_test(test_holiday_parse),
                cmocka_unit_test(test_unknown_zone),
                cmocka_unit_test(test_london_weekdays_and_dst),
                cmocka_unit_test(test_dst_gap_and_overlap),
                cmocka_unit_test(test_overnight_and_holidays),
                cmocka_unit_test(test_always_open),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
