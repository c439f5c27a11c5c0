/* metrics.h — counters and histograms rendered as Prometheus text at
 * GET /metrics. Label values are copied; cardinality stays small because
 * callers pass only fixed sets (route patterns, channels, reason codes).
 * Loop thread only. */
#ifndef OMNIROUTE_METRICS_H
#define OMNIROUTE_METRICS_H

#include <stdio.h>

struct omr_metrics;

enum omr_counter {
        OMR_M_HTTP_REQUESTS,    /* labels: route, code */
        OMR_M_INGESTED,         /* labels: channel, outcome (stored|duplicate|unavailable) */
        OMR_M_REJECTED,         /* labels: component, reason */
        OMR_M_REDIS_RECONNECTS, /* no labels */
        OMR_M_REDIS_TIMEOUTS,   /* no labels */
        OMR_M_CONFIG_RELOADS,   /* labels: result (ok|refused) */
        OMR_M_REPLIES,          /* labels: connector, outcome (sent|failed|retried) */
        OMR_M_DISPATCHED,       /* labels: queue (push conversations offered/assigned) */
        OMR_M_NOTIFY,           /* labels: kind (webhook|email), outcome (delivered|retry|failed) */
        OMR_M_SLA_FIRED,        /* labels: kind (warning|breach) */
        OMR_M_POLLS, /* labels: source, outcome (ok|error|rate_limited|disabled|unavailable) */
        OMR_M__COUNTERS
};

enum omr_gauge { OMR_G_REDIS_UP, OMR_G_HTTP_ACTIVE, OMR_G_SLA_FIRE_LAG, OMR_G__GAUGES };

struct omr_metrics *omr_metrics_new(void);
void omr_metrics_free(struct omr_metrics *m);

/* Missing labels are passed as NULL. */
void omr_metrics_inc(struct omr_metrics *m, enum omr_counter c, const char *label1,
                     const char *label2);
void omr_metrics_set(struct omr_metrics *m, enum omr_gauge g, double value);
void omr_metrics_redis_latency(struct omr_metrics *m, double seconds);
double omr_metrics_counter_value(const struct omr_metrics *m, enum omr_counter c,
                                 const char *label1, const char *label2);

/* Exposition text appended to every render (the KPIs read from Redis,
 * daemon/kpi.c); takes ownership of text (NULL clears). */
void omr_metrics_set_kpi(struct omr_metrics *m, char *text);

/* Prometheus text exposition format 0.0.4. */
void omr_metrics_render(const struct omr_metrics *m, FILE *out);

#endif
