/* calendar.h — business-hours calendars: an IANA time zone, weekly opening
 * hours (several ranges a day; a range may run past midnight), holidays
 * (a date, or a month-day every year). Pure functions over instants; the
 * zone rules (DST) come from the system's tzdata through GLib's GTimeZone.
 * Unit-tested in tests/unit/calendar_test.c. */
#ifndef OMNIROUTE_CALENDAR_H
#define OMNIROUTE_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Minutes since local midnight; end <= start means the range ends the
 * next day ("22:00-06:00"); "00:00-24:00" is the whole day. */
struct omr_hours_range {
        int start, end;
};

/* Ranges per day a calendar may have (config refuses more). */
#define OMR_CALENDAR_MAX_RANGES 8

struct omr_holiday {
        int year; /* 0: every year */
        int month, day;
};

struct omr_calendar {
        char *name;
        char *timezone;                   /* as configured, e.g. "Asia/Bangkok" */
        void *tz;                         /* GTimeZone * */
        struct omr_hours_range *hours[7]; /* index 0 = Monday */
        size_t n_hours[7];
        struct omr_holiday *holidays;
        size_t n_holidays;
        int line;
};

/* "HH:MM-HH:MM" (24:00 allowed as an end). 0 or -1. */
int omr_hours_range_parse(const char *s, struct omr_hours_range *out);
/* "YYYY-MM-DD" or "MM-DD". 0 or -1. */
int omr_holiday_parse(const char *s, struct omr_holiday *out);
/* Loads the zone; -1 when tzdata does not know it. */
int omr_calendar_set_timezone(struct omr_calendar *c, const char *iana);

/* Is the calendar open at this instant (ms since the epoch)? */
bool omr_calendar_is_open(const struct omr_calendar *c, int64_t unix_ms);

/* Business-time arithmetic (a NULL calendar is open 24/7). Opening hours
 * are turned into instants the way GLib maps local times: a time the DST
 * change skips moves forward (so a range inside the gap is empty), an
 * ambiguous one is its first occurrence — the same answers as
 * omr_calendar_is_open. */
#define OMR_NEVER INT64_MAX
/* The instant when `business_ms` of open time have passed from `start_ms`;
 * OMR_NEVER when the calendar does not open within ten years. */
int64_t omr_calendar_add(const struct omr_calendar *c, int64_t start_ms, int64_t business_ms);
/* Open time in [a_ms, b_ms) (0 when b <= a). */
int64_t omr_calendar_between(const struct omr_calendar *c, int64_t a_ms, int64_t b_ms);
/* The close of the business day of t: the end of the last open span that
 * starts on the local date when the calendar is next open at or after t
 * ("by end of business day"); OMR_NEVER when it never opens. With no
 * calendar, local midnight UTC after t. */
int64_t omr_calendar_end_of_day(const struct omr_calendar *c, int64_t t_ms);
/* The next instant at or after t when the calendar is open, or OMR_NEVER. */
int64_t omr_calendar_next_open(const struct omr_calendar *c, int64_t t_ms);

void omr_calendar_clear(struct omr_calendar *c);

#endif
