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

/* --- business-time arithmetic ------------------------------------------- */

#define MINUTE_MS 60000LL
#define HOUR_MS   (60 * MINUTE_MS)

/* New York: weekdays 09-17, Saturday 10-14; 3 Jul 2026 (observed), 25 Dec
 * 2026 and every 1 Jan closed. DST 2026: 8 Mar 02:00 EST -> 03:00 EDT,
 * 1 Nov 02:00 EDT -> 01:00 EST. */
static void new_york(struct omr_calendar *c)
{
        static const char *const hours[7] = {"09:00-17:00", "09:00-17:00", "09:00-17:00",
                                             "09:00-17:00", "09:00-17:00", "10:00-14:00",
                                             NULL};
        static const char *const holidays[] = {"2026-07-03", "2026-12-25", "01-01"};
        build(c, "America/New_York", hours, holidays, N(holidays));
}

/* Bangkok (UTC+7, no DST): weekdays 08-17, Saturday night 22-02; a Sunday
 * holiday, Christmas, New Year, and a whole week off (12-16 Apr 2027). */
static void bangkok(struct omr_calendar *c)
{
        static const char *const hours[7] = {"08:00-17:00", "08:00-17:00", "08:00-17:00",
                                             "08:00-17:00", "08:00-17:00", "22:00-02:00",
                                             NULL};
        static const char *const holidays[] = {"2026-11-29", "2026-12-25", "01-01",
                                               "2027-04-12", "2027-04-13", "2027-04-14",
                                               "2027-04-15", "2027-04-16"};
        build(c, "Asia/Bangkok", hours, holidays, N(holidays));
}

/* London: two ranges on weekdays; Sunday 01:00-02:00, the hour the DST
 * changes skip (spring) and repeat (autumn). */
static void london(struct omr_calendar *c)
{
        static const char *const hours[7] = {"09:00-12:30,13:30-17:30",
                                             "09:00-12:30,13:30-17:30",
                                             "09:00-12:30,13:30-17:30",
                                             "09:00-12:30,13:30-17:30",
                                             "09:00-12:30,13:30-17:30",
                                             NULL,
                                             "01:00-02:00"};
        build(c, "Europe/London", hours, NULL, 0);
}

enum cal { NY, BKK, LON, ALWAYS, NEVER_OPEN };

static void make(enum cal which, struct omr_calendar *c)
{
        static const char *const none[7] = {NULL};
        if (which == NY)
                new_york(c);
        else if (which == BKK)
                bangkok(c);
        else if (which == LON)
                london(c);
        else
                build(c, "UTC", none, NULL, 0);
}

struct add_case {
        const char *name;
        enum cal cal;
        int y, mo, d, h, mi; /* start, UTC */
        long long dur_ms;
        int ey, emo, ed, eh, emi; /* expected, UTC; ey = 0: never */
};

static const struct add_case add_cases[] = {
        {"NY open +1h", NY, 2026, 11, 23, 15, 0, HOUR_MS, 2026, 11, 23, 16, 0},
        {"NY +0 while open is now", NY, 2026, 11, 23, 15, 0, 0, 2026, 11, 23, 15, 0},
        {"NY +0 before opening is the opening", NY, 2026, 11, 23, 12, 0, 0, 2026, 11, 23, 14, 0},
        {"NY end of day rolls to tomorrow", NY, 2026, 11, 23, 21, 30, HOUR_MS, 2026, 11, 24, 14,
         30},
        {"NY exactly at closing is next opening", NY, 2026, 11, 23, 22, 0, 0, 2026, 11, 24, 14, 0},
        {"NY uses up the day exactly", NY, 2026, 11, 23, 14, 0, 8 * HOUR_MS, 2026, 11, 23, 22, 0},
        {"NY Friday into Saturday", NY, 2026, 11, 27, 21, 0, 2 * HOUR_MS, 2026, 11, 28, 16, 0},
        {"NY Saturday over Sunday", NY, 2026, 11, 28, 18, 0, 2 * HOUR_MS, 2026, 11, 30, 15, 0},
        {"NY from Sunday", NY, 2026, 11, 29, 17, 0, 30 * MINUTE_MS, 2026, 11, 30, 14, 30},
        {"NY a week and an hour", NY, 2026, 11, 23, 14, 0, 45 * HOUR_MS, 2026, 11, 30, 15, 0},
        {"NY spring: Saturday EST to Monday EDT", NY, 2026, 3, 7, 18, 0, 2 * HOUR_MS, 2026, 3, 9,
         14, 0},
        {"NY spring: Monday opens at 13:00Z", NY, 2026, 3, 8, 12, 0, 0, 2026, 3, 9, 13, 0},
        {"NY spring: Friday before, EST", NY, 2026, 3, 6, 21, 0, HOUR_MS, 2026, 3, 6, 22, 0},
        {"NY autumn: Saturday EDT to Monday EST", NY, 2026, 10, 31, 17, 0, 2 * HOUR_MS, 2026, 11, 2,
         15, 0},
        {"NY autumn: Monday opens at 14:00Z", NY, 2026, 11, 1, 12, 0, 0, 2026, 11, 2, 14, 0},
        {"NY holiday Friday 3 Jul", NY, 2026, 7, 2, 20, 0, 2 * HOUR_MS, 2026, 7, 4, 15, 0},
        {"NY Christmas", NY, 2026, 12, 24, 21, 30, HOUR_MS, 2026, 12, 26, 15, 30},
        {"NY New Year (every year)", NY, 2026, 12, 31, 21, 0, 2 * HOUR_MS, 2027, 1, 2, 16, 0},
        {"NY ms precision", NY, 2026, 11, 23, 15, 0, 1, 2026, 11, 23, 15, 0},
        {"BKK overnight Saturday", BKK, 2026, 11, 21, 16, 0, 2 * HOUR_MS, 2026, 11, 21, 18, 0},
        {"BKK overnight then Monday", BKK, 2026, 11, 21, 16, 0, 4 * HOUR_MS, 2026, 11, 23, 2, 0},
        {"BKK Sunday holiday clips Saturday night", BKK, 2026, 11, 28, 16, 0, 2 * HOUR_MS, 2026, 11,
         30, 2, 0},
        {"BKK a whole day ends at closing", BKK, 2026, 11, 23, 1, 0, 9 * HOUR_MS, 2026, 11, 23, 10,
         0},
        {"BKK a day and a minute", BKK, 2026, 11, 23, 1, 0, 9 * HOUR_MS + MINUTE_MS, 2026, 11, 24,
         1, 1},
        {"BKK Friday to Saturday night", BKK, 2027, 4, 9, 9, 0, 5 * HOUR_MS, 2027, 4, 10, 19, 0},
        {"BKK a holiday week", BKK, 2027, 4, 9, 9, 0, 6 * HOUR_MS, 2027, 4, 17, 16, 0},
        {"BKK Christmas Friday", BKK, 2026, 12, 24, 9, 0, 2 * HOUR_MS, 2026, 12, 26, 16, 0},
        {"LON lunch break", LON, 2026, 11, 23, 12, 0, HOUR_MS, 2026, 11, 23, 14, 0},
        {"LON Friday evening to Sunday 01:00", LON, 2026, 11, 27, 17, 0, HOUR_MS, 2026, 11, 29, 1,
         30},
        {"LON spring gap Sunday never opens", LON, 2026, 3, 27, 17, 0, HOUR_MS, 2026, 3, 30, 8, 30},
        {"LON autumn Sunday opens twice", LON, 2026, 10, 24, 12, 0, 90 * MINUTE_MS, 2026, 10, 25, 1,
         30},
        {"24/7 is plain addition", ALWAYS, 2026, 11, 23, 15, 0, 5000, 2026, 11, 23, 15, 0},
        {"never open", NEVER_OPEN, 2026, 11, 23, 15, 0, HOUR_MS, 0, 0, 0, 0, 0},
};

static void test_add(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(add_cases); i++) {
                const struct add_case *k = &add_cases[i];
                struct omr_calendar c;
                make(k->cal, &c);
                int64_t start = utc(k->y, k->mo, k->d, k->h, k->mi);
                int64_t want = k->ey ? utc(k->ey, k->emo, k->ed, k->eh, k->emi) : OMR_NEVER;
                if (k->dur_ms == 1 || k->dur_ms == 5000)
                        want += k->dur_ms;
                int64_t got = omr_calendar_add(k->cal == ALWAYS ? NULL : &c, start, k->dur_ms);
                if (got != want)
                        fail_msg("%s: got %lld, want %lld (off by %lld s)", k->name, (long long)got,
                                 (long long)want, (long long)(got - want) / 1000);
                omr_calendar_clear(&c);
        }
}

struct between_case {
        const char *name;
        enum cal cal;
        int y, mo, d, h, mi;
        int by, bmo, bd, bh, bmi;
        long long want_ms;
};

static const struct between_case between_cases[] = {
        {"NY a weekday", NY, 2026, 11, 23, 5, 0, 2026, 11, 24, 5, 0, 8 * HOUR_MS},
        {"NY a whole week", NY, 2026, 11, 23, 5, 0, 2026, 11, 30, 5, 0, 44 * HOUR_MS},
        {"NY inside a day", NY, 2026, 11, 23, 15, 0, 2026, 11, 23, 16, 30, 90 * MINUTE_MS},
        {"NY reversed is zero", NY, 2026, 11, 24, 5, 0, 2026, 11, 23, 5, 0, 0},
        {"NY spring weekend", NY, 2026, 3, 6, 22, 0, 2026, 3, 9, 13, 0, 4 * HOUR_MS},
        {"NY autumn weekend", NY, 2026, 10, 31, 4, 0, 2026, 11, 2, 5, 0, 4 * HOUR_MS},
        {"NY holiday week", NY, 2026, 6, 29, 4, 0, 2026, 7, 6, 4, 0, 36 * HOUR_MS},
        {"BKK Songkran", BKK, 2027, 4, 9, 10, 0, 2027, 4, 19, 1, 0, 8 * HOUR_MS},
        {"BKK Saturday night only", BKK, 2026, 11, 21, 14, 0, 2026, 11, 22, 1, 0, 4 * HOUR_MS},
        {"LON day with lunch", LON, 2026, 11, 23, 0, 0, 2026, 11, 24, 0, 0, 450 * MINUTE_MS},
        {"LON spring Sunday", LON, 2026, 3, 29, 0, 0, 2026, 3, 29, 12, 0, 0},
        {"LON autumn Sunday", LON, 2026, 10, 25, 0, 0, 2026, 10, 25, 12, 0, 2 * HOUR_MS},
        {"24/7", ALWAYS, 2026, 11, 23, 0, 0, 2026, 11, 24, 0, 0, 24 * HOUR_MS},
        {"never open", NEVER_OPEN, 2026, 11, 23, 0, 0, 2027, 11, 24, 0, 0, 0},
};

static void test_between(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(between_cases); i++) {
                const struct between_case *k = &between_cases[i];
                struct omr_calendar c;
                make(k->cal, &c);
                int64_t got = omr_calendar_between(k->cal == ALWAYS ? NULL : &c,
                                                   utc(k->y, k->mo, k->d, k->h, k->mi),
                                                   utc(k->by, k->bmo, k->bd, k->bh, k->bmi));
                if (got != k->want_ms)
                        fail_msg("%s: got %lld ms, want %lld", k->name, (long long)got, k->want_ms);
                omr_calendar_clear(&c);
        }
}

/* The arithmetic and omr_calendar_is_open agree, and add and between are
 * inverse, at many instants around both DST changes and holidays. */
static void test_properties(void **state)
{
        (void)state;
        enum cal cals[] = {NY, BKK, LON};
        uint32_t x = 2463534242u; /* xorshift: the same instants every run */
        for (size_t k = 0; k < N(cals); k++) {
                struct omr_calendar c;
                make(cals[k], &c);
                int64_t base = utc(2026, 2, 20, 0, 0);
                for (int i = 0; i < 400; i++) {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        int64_t t = base + (int64_t)(x % (320u * 86400u)) * 1000;
                        bool open = omr_calendar_is_open(&c, t);
                        if (open != (omr_calendar_next_open(&c, t) == t))
                                fail_msg("cal %zu at %lld: is_open %d disagrees with next_open", k,
                                         (long long)t, open);
                        int64_t dur = (int64_t)(x % 200u) * 30 * MINUTE_MS;
                        int64_t end = omr_calendar_add(&c, t, dur);
                        if (omr_calendar_between(&c, t, end) != dur)
                                fail_msg("cal %zu at %lld: between(add(%lld)) = %lld", k,
                                         (long long)t, (long long)dur,
                                         (long long)omr_calendar_between(&c, t, end));
                }
                omr_calendar_clear(&c);
        }
}

/* "By end of business day": the close of the last range of the day the
 * calendar is next open. */
static void test_end_of_day(void **state)
{
        (void)state;
        static const struct {
                const char *name;
                enum cal cal;
                int y, mo, d, h, mi;      /* UTC */
                int ey, emo, ed, eh, emi; /* UTC */
        } cases[] = {
                {"NY weekday morning", NY, 2026, 11, 23, 15, 0, 2026, 11, 23, 22, 0},
                {"NY after hours: tomorrow", NY, 2026, 11, 23, 23, 0, 2026, 11, 24, 22, 0},
                {"NY Saturday", NY, 2026, 11, 28, 16, 0, 2026, 11, 28, 19, 0},
                {"NY Sunday: Monday", NY, 2026, 11, 29, 16, 0, 2026, 11, 30, 22, 0},
                {"NY summer time", NY, 2026, 6, 1, 14, 0, 2026, 6, 1, 21, 0},
                {"LON in the lunch break: the afternoon's close", LON, 2026, 11, 23, 12, 45, 2026,
                 11, 23, 17, 30},
                {"BKK Saturday night runs past midnight", BKK, 2026, 11, 21, 16, 0, 2026, 11, 21,
                 19, 0},
                {"BKK Sunday 01:00 inside Saturday's range", BKK, 2026, 11, 21, 18, 0, 2026, 11, 21,
                 19, 0},
                {"BKK Friday after hours: Saturday night", BKK, 2027, 4, 9, 11, 0, 2027, 4, 10, 19,
                 0},
        };
        for (size_t i = 0; i < N(cases); i++) {
                struct omr_calendar c;
                make(cases[i].cal, &c);
                int64_t t = utc(cases[i].y, cases[i].mo, cases[i].d, cases[i].h, cases[i].mi);
                int64_t want =
                        utc(cases[i].ey, cases[i].emo, cases[i].ed, cases[i].eh, cases[i].emi);
                int64_t got = omr_calendar_end_of_day(&c, t);
                if (got != want)
                        fail_msg("%s: got %lld, want %lld (off by %lld s)", cases[i].name,
                                 (long long)got, (long long)want, (long long)(got - want) / 1000);
                omr_calendar_clear(&c);
        }
        assert_int_equal(omr_calendar_end_of_day(NULL, utc(2026, 11, 23, 15, 0)),
                         utc(2026, 11, 24, 0, 0));
        /* Whole days that touch at midnight still end each day. */
        static const char *const whole[7] = {"00:00-24:00", "00:00-24:00", "00:00-24:00",
                                             "00:00-24:00", "00:00-24:00", NULL,
                                             NULL};
        struct omr_calendar wd;
        build(&wd, "America/New_York", whole, NULL, 0);
        assert_int_equal(omr_calendar_end_of_day(&wd, utc(2026, 11, 16, 15, 0)),
                         utc(2026, 11, 17, 5, 0)); /* Mon 10:00 EST -> Tue 00:00 EST */
        assert_int_equal(omr_calendar_end_of_day(&wd, utc(2026, 11, 21, 15, 0)),
                         utc(2026, 11, 24, 5, 0)); /* Sat -> Mon's end, Tue 00:00 EST */
        omr_calendar_clear(&wd);
        struct omr_calendar never;
        make(NEVER_OPEN, &never);
        assert_true(omr_calendar_end_of_day(&never, utc(2026, 11, 23, 15, 0)) == OMR_NEVER);
        omr_calendar_clear(&never);
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
                cmocka_unit_test(test_add),
                cmocka_unit_test(test_between),
                cmocka_unit_test(test_properties),
                cmocka_unit_test(test_end_of_day),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
