/* timefmt.h — RFC 3339 timestamps <-> milliseconds since the epoch (UTC).
 * Pure functions. */
#ifndef OMNIROUTE_TIMEFMT_H
#define OMNIROUTE_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#define OMR_TIME_LEN 24 /* "2026-11-23T09:30:00.123Z" */

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (OMR_TIME_LEN + 1 bytes). */
void omr_time_format(int64_t ms, char *out);
/* Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)". 0 or -EINVAL. */
int omr_time_parse(const char *s, int64_t *ms);
/* Wall clock in ms (CLOCK_REALTIME) and a monotonic clock in ms. */
int64_t omr_now_ms(void);
/* Retry delay for attempt n (1-based): min doubling up to max, with
 * jitter in [half, full] so retrying clients spread out. */
int64_t omr_backoff_ms(int attempt_no, int64_t min_ms, int64_t max_ms);
int64_t omr_mono_ms(void);

#endif
