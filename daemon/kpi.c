/* kpi.c — the KPIs (docs/sla.md) as Prometheus series on /metrics. They
 * live in Redis, shared by every daemon (stats.lua reads them for GET
 * /v1/stats); every KPI_MS this daemon reads them once and keeps the
 * exposition text for its /metrics, so a scrape never waits on Redis and
 * any daemon can be scraped. Loop thread only. */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_priv.h"
#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/timefmt.h"

#define KPI_MS 10000

static const char *const BUCKETS[] = {"30",   "60",    "120",   "300",   "600",    "1800", "3600",
                                      "7200", "14400", "28800", "86400", "259200", "+Inf"};

/* A label value with \, " and newlines escaped (Prometheus text format). */
static void label(FILE *f, const char *v)
{
        for (; v && *v; v++) {
                if (*v == '\\' || *v == '"')
                        fputc('\\', f);
                if (*v == '\n')
                        fputs("\\n", f);
                else
                        fputc(*v, f);
        }
}

static void histograms(FILE *f, json_t *rt)
{
        const char *h = "omr_response_time_seconds";
        fprintf(f,
                "# HELP %s Customer waits: first_response, next_response, resolution "
                "(wall clock), all daemons.\n# TYPE %s histogram\n",
                h, h);
        const char *kind;
        json_t *list;
        json_object_foreach(rt, kind, list)
        {
                size_t i;
                json_t *row;
                json_array_foreach(list, i, row)
                {
                        json_t *b = json_object_get(row, "buckets");
                        long long cum = 0;
                        for (size_t k = 0; k < sizeof(BUCKETS) / sizeof(BUCKETS[0]); k++) {
                                cum += json_integer_value(json_object_get(b, BUCKETS[k]));
                                fprintf(f, "%s_bucket{kind=\"%s\",channel=\"", h, kind);
                                label(f, json_string_value(json_object_get(row, "channel")));
                                fputs("\",queue=\"", f);
                                label(f, json_string_value(json_object_get(row, "queue")));
                                fprintf(f, "\",le=\"%s\"} %lld\n", BUCKETS[k], cum);
                        }
                        for (int k = 0; k < 2; k++) {
                                fprintf(f, "%s_%s{kind=\"%s\",channel=\"", h, k ? "count" : "sum",
                                        kind);
                                label(f, json_string_value(json_object_get(row, "channel")));
                                fputs("\",queue=\"", f);
                                label(f, json_string_value(json_object_get(row, "queue")));
                                if (k)
                                        fprintf(f, "\"} %lld\n",
                                                (long long)json_integer_value(
                                                        json_object_get(row, "count")));
                                else
                                        /* Large sums arrive as reals
                                         * (Redis cjson: 14 digits). */
                                        fprintf(f, "\"} %.3f\n",
                                                json_number_value(json_object_get(row, "sum_ms")) /
                                                        1000.0);
                        }
                }
        }
}

static char *render(json_t *j)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (f == NULL)
                return NULL;
        const char *q;
        json_t *v;
        fputs("# HELP omr_queue_waiting Conversations waiting for an agent.\n"
              "# TYPE omr_queue_waiting gauge\n",
              f);
        json_object_foreach(json_object_get(j, "queues"), q, v)
        {
                fputs("omr_queue_waiting{queue=\"", f);
                label(f, q);
                fprintf(f, "\"} %lld\n",
                        (long long)json_integer_value(json_object_get(v, "waiting")));
        }
        fputs("# HELP omr_queue_oldest_waiting_seconds Age of the longest-waiting conversation.\n"
              "# TYPE omr_queue_oldest_waiting_seconds gauge\n",
              f);
        json_object_foreach(json_object_get(j, "queues"), q, v)
        {
                fputs("omr_queue_oldest_waiting_seconds{queue=\"", f);
                label(f, q);
                fprintf(f, "\"} %.3f\n",
                        (double)json_integer_value(json_object_get(v, "oldest_waiting_ms")) /
                                1000.0);
        }
        fputs("# HELP omr_agent_open_conversations Conversations an agent holds.\n"
              "# TYPE omr_agent_open_conversations gauge\n",
              f);
        size_t i;
        json_array_foreach(json_object_get(j, "agents"), i, v)
        {
                fputs("omr_agent_open_conversations{agent=\"", f);
                label(f, json_string_value(json_object_get(v, "id")));
                fputs("\",presence=\"", f);
                label(f, json_string_value(json_object_get(v, "presence")));
                fprintf(f, "\"} %lld\n",
                        (long long)json_integer_value(json_object_get(v, "load_total")));
        }
        histograms(f, json_object_get(j, "response_times"));
        fputs("# HELP omr_sla_clocks_total SLA clocks stopped, by outcome.\n"
              "# TYPE omr_sla_clocks_total counter\n",
              f);
        json_array_foreach(json_object_get(j, "sla"), i, v)
        {
                for (int k = 0; k < 2; k++) {
                        fputs("omr_sla_clocks_total{clock=\"", f);
                        label(f, json_string_value(json_object_get(v, "clock")));
                        fputs("\",channel=\"", f);
                        label(f, json_string_value(json_object_get(v, "channel")));
                        fputs("\",queue=\"", f);
                        label(f, json_string_value(json_object_get(v, "queue")));
                        fprintf(f, "\",outcome=\"%s\"} %lld\n", k ? "missed" : "hit",
                                (long long)json_integer_value(
                                        json_object_get(v, k ? "missed" : "hit")));
                }
        }
        fputs("# HELP omr_csat_answers_total Satisfaction survey answers by score.\n"
              "# TYPE omr_csat_answers_total counter\n",
              f);
        json_array_foreach(json_object_get(j, "csat"), i, v)
        {
                const char *score;
                json_t *n;
                json_object_foreach(json_object_get(v, "scores"), score, n)
                {
                        fputs("omr_csat_answers_total{channel=\"", f);
                        label(f, json_string_value(json_object_get(v, "channel")));
                        fputs("\",queue=\"", f);
                        label(f, json_string_value(json_object_get(v, "queue")));
                        fprintf(f, "\",score=\"%s\"} %lld\n", score,
                                (long long)json_integer_value(n));
                }
        }
        fclose(f);
        return buf;
}

struct omr_kpi {
        struct omr_core *core;
        struct event *timer;
        bool busy, stopped;
};

static void arm(struct omr_kpi *k)
{
        struct timeval tv = {KPI_MS / 1000, 0};
        if (!k->stopped)
                evtimer_add(k->timer, &tv);
}

static void on_stats(const redisReply *r, const char *error, void *arg)
{
        struct omr_kpi *k = arg;
        k->busy = false;
        if (error == NULL && r->type == REDIS_REPLY_STRING) {
                json_t *j = json_loadb(r->str, r->len, 0, NULL);
                if (j)
                        omr_metrics_set_kpi(k->core->metrics, render(j));
                json_decref(j);
        } else if (error == NULL && r->type == REDIS_REPLY_ERROR) {
                omr_log(LOG_ERR, "kpi", "reading KPIs failed error=\"%s\"", r->str);
        }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
        struct omr_kpi *k = arg;
        (void)fd;
        (void)what;
        if (!k->busy && k->core->store && omr_store_ready(k->core->store)) {
                char now[24];
                snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
                const char *argv[] = {k->core->conf->redis.prefix, now};
                if (omr_store_eval(k->core->store, &k->core->routing.stats, on_stats, k, 0, 2, argv,
                                   NULL) == 0)
                        k->busy = true;
        }
        arm(k);
}

struct omr_kpi *omr_kpi_new(struct omr_core *core)
{
        struct omr_kpi *k = calloc(1, sizeof(*k));
        if (k == NULL)
                return NULL;
        k->core = core;
        k->timer = evtimer_new(core->base, on_timer, k);
        if (k->timer == NULL) {
                free(k);
                return NULL;
        }
        return k;
}

void omr_kpi_start(struct omr_kpi *k)
{
        struct timeval tv = {1, 0}; /* the first read soon after start */
        evtimer_add(k->timer, &tv);
}

void omr_kpi_stop(struct omr_kpi *k)
{
        if (k == NULL)
                return;
        k->stopped = true;
        event_del(k->timer);
}

void omr_kpi_free(struct omr_kpi *k)
{
        if (k == NULL)
                return;
        event_free(k->timer);
        free(k);
}
