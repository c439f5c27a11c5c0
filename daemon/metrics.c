/* metrics.c — a handful of labelled counters, two gauges and one latency
 * histogram, rendered in the Prometheus text format. Series are found by
 * linear search: label sets are small and fixed by the callers. Loop
 * thread only. */
#include <stdlib.h>
#include <string.h>

#include "omniroute/log.h"
#include "omniroute/metrics.h"

#define MAX_LABEL 64

struct series {
        char label[2][MAX_LABEL];
        double value;
};

struct family {
        size_t n, cap;
        struct series *s;
};

static const struct {
        const char *name, *help, *label[2];
} counter_defs[OMR_M__COUNTERS] = {
        [OMR_M_HTTP_REQUESTS] = {"omr_http_requests_total",
                                 "HTTP requests answered.",
                                 {"route", "code"}},
        [OMR_M_INGESTED] = {"omr_messages_ingested_total",
                            "Inbound messages by outcome.",
                            {"channel", "outcome"}},
        [OMR_M_REJECTED] = {"omr_rejected_total",
                            "Requests or messages refused, by reason.",
                            {"component", "reason"}},
        [OMR_M_REDIS_RECONNECTS] = {"omr_redis_reconnects_total",
                                    "Redis connections lost or refused.",
                                    {NULL, NULL}},
        [OMR_M_REDIS_TIMEOUTS] = {"omr_redis_timeouts_total",
                                  "Redis commands answered later than command_timeout.",
                                  {NULL, NULL}},
        [OMR_M_CONFIG_RELOADS] = {"omr_config_reloads_total",
                                  "Configuration reloads by result.",
                                  {"result", NULL}},
        [OMR_M_REPLIES] = {"omr_replies_total",
                           "Agent replies by connector and outcome.",
                           {"connector", "outcome"}},
        [OMR_M_DISPATCHED] = {"omr_dispatched_total",
                              "Conversations this daemon offered or assigned in push queues.",
                              {"queue", NULL}},
        [OMR_M_NOTIFY] = {"omr_notify_attempts_total",
                          "Notification attempts to agents' tools by outcome.",
                          {"kind", "outcome"}},
        [OMR_M_SLA_FIRED] = {"omr_sla_fired_total",
                             "SLA warnings and breaches this daemon fired.",
                             {"kind", NULL}},
        [OMR_M_POLLS] =
                {"omr_polls_total",
                 "Polls of social accounts by outcome (disabled: 401/403, polling stopped).",
                 {"source", "outcome"}},
};

static const struct {
        const char *name, *help;
} gauge_defs[OMR_G__GAUGES] = {
        [OMR_G_REDIS_UP] = {"omr_redis_up", "1 when the Redis connection is ready."},
        [OMR_G_HTTP_ACTIVE] = {"omr_http_requests_active", "HTTP requests in progress."},
        [OMR_G_SLA_FIRE_LAG] = {"omr_sla_fire_lag_seconds",
                                "How late the last SLA warning or breach fired."},
};

static const double latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,   0.25,   0.5,   1,    2.5};
#define N_BOUNDS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

struct omr_metrics {
        struct family counters[OMR_M__COUNTERS];
        double gauges[OMR_G__GAUGES];
        unsigned long long latency_buckets[N_BOUNDS + 1]; /* last: +Inf */
        double latency_sum;
        unsigned long long latency_count;
        char *kpi; /* exposition text of the shared KPIs (daemon/kpi.c) */
};

struct omr_metrics *omr_metrics_new(void)
{
        /* A counter added to the enum without its definition is a bug to
         * catch at start, not a "(null)" line in the exposition. */
        for (int c = 0; c < OMR_M__COUNTERS; c++)
                if (counter_defs[c].name == NULL)
                        omr_panic("metrics", "counter %d has no definition", c);
        return calloc(1, sizeof(struct omr_metrics));
}

void omr_metrics_free(struct omr_metrics *m)
{
        if (m == NULL)
                return;
        for (int i = 0; i < OMR_M__COUNTERS; i++)
                free(m->counters[i].s);
        free(m->kpi);
        free(m);
}

static struct series *find(const struct family *f, const char *l1, const char *l2)
{
        for (size_t i = 0; i < f->n; i++)
                if (strncmp(f->s[i].label[0], l1 ? l1 : "", MAX_LABEL - 1) == 0 &&
                    strncmp(f->s[i].label[1], l2 ? l2 : "", MAX_LABEL - 1) == 0)
                        return &f->s[i];
        return NULL;
}

void omr_metrics_inc(struct omr_metrics *m, enum omr_counter c, const char *l1, const char *l2)
{
        struct family *f = &m->counters[c];
        struct series *s = find(f, l1, l2);
        if (s == NULL) {
                if (f->n == f->cap) {
                        size_t cap = f->cap ? 2 * f->cap : 8;
                        struct series *ns = realloc(f->s, cap * sizeof(*ns));
                        if (ns == NULL)
                                return; /* a lost count is better than a lost request */
                        f->s = ns;
                        f->cap = cap;
                }
                s = &f->s[f->n++];
                memset(s, 0, sizeof(*s));
                snprintf(s->label[0], MAX_LABEL, "%s", l1 ? l1 : "");
                snprintf(s->label[1], MAX_LABEL, "%s", l2 ? l2 : "");
        }
        s->value += 1;
}

double omr_metrics_counter_value(const struct omr_metrics *m, enum omr_counter c, const char *l1,
                                 const char *l2)
{
        const struct series *s = find(&m->counters[c], l1, l2);
        return s ? s->value : 0;
}

void omr_metrics_set(struct omr_metrics *m, enum omr_gauge g, double value)
{
        m->gauges[g] = value;
}

void omr_metrics_redis_latency(struct omr_metrics *m, double seconds)
{
        size_t i = 0;
        while (i < N_BOUNDS && seconds > latency_bounds[i])
                i++;
        m->latency_buckets[i]++;
        m->latency_sum += seconds;
        m->latency_count++;
}

/* Label values come from fixed sets, but escape anyway: the format breaks
 * on a stray quote or backslash. */
static void put_label(FILE *out, const char *name, const char *value)
{
        fprintf(out, "%s=\"", name);
        for (const char *p = value; *p; p++) {
                if (*p == '"' || *p == '\\')
                        fputc('\\', out);
                if (*p == '\n')
                        fputs("\\n", out);
                else
                        fputc(*p, out);
        }
        fputc('"', out);
}

void omr_metrics_render(const struct omr_metrics *m, FILE *out)
{
        for (int c = 0; c < OMR_M__COUNTERS; c++) {
                const struct family *f = &m->counters[c];
                fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", counter_defs[c].name,
                        counter_defs[c].help, counter_defs[c].name);
                if (counter_defs[c].label[0] == NULL) {
                        fprintf(out, "%s %.0f\n", counter_defs[c].name, f->n ? f->s[0].value : 0.0);
                        continue;
                }
                for (size_t i = 0; i < f->n; i++) {
                        fprintf(out, "%s{", counter_defs[c].name);
                        put_label(out, counter_defs[c].label[0], f->s[i].label[0]);
                        if (counter_defs[c].label[1]) {
                                fputc(',', out);
                                put_label(out, counter_defs[c].label[1], f->s[i].label[1]);
                        }
                        fprintf(out, "} %.0f\n", f->s[i].value);
                }
        }
        for (int g = 0; g < OMR_G__GAUGES; g++)
                fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", gauge_defs[g].name,
                        gauge_defs[g].help, gauge_defs[g].name, gauge_defs[g].name, m->gauges[g]);
        const char *h = "omr_redis_command_duration_seconds";
        fprintf(out, "# HELP %s Time from sending a Redis command to its reply.\n", h);
        fprintf(out, "# TYPE %s histogram\n", h);
        unsigned long long cum = 0;
        for (size_t i = 0; i < N_BOUNDS; i++) {
                cum += m->latency_buckets[i];
                fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", h, latency_bounds[i], cum);
        }
        cum += m->latency_buckets[N_BOUNDS];
        fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", h, cum, h,
                m->latency_sum, h, m->latency_count);
        if (m->kpi)
                fputs(m->kpi, out);
}

void omr_metrics_set_kpi(struct omr_metrics *m, char *text)
{
        free(m->kpi);
        m->kpi = text;
}
