/* sla.c — the daemon's side of response-time targets (docs/sla.md).
 *
 * The clocks live in the conversation hash and two sorted sets in Redis:
 * the scripts that change a conversation start, stop and pause clocks and
 * put a request in <prefix>sla:schedule; this file turns each request into
 * due times with the policy's business-hours calendar (the arithmetic
 * needs the time zone rules, which Redis does not have) and stores them in
 * <prefix>sla:due, then fires what is due (sla_fire.lua: warning, breach,
 * escalation, each claimed atomically so it fires once across daemons and
 * restarts). One libevent timer, armed for the next due time (at most a
 * second away, since other daemons add deadlines too). Loop thread only. */
#include <event2/event.h>
#include <glib.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_priv.h"
#include "omniroute/calendar.h"
#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/timefmt.h"

extern const char omr_sla_pending_lua[], omr_sla_schedule_lua[], omr_sla_fire_lua[];

#define POLL_MS 1000
#define BATCH   "100"

struct omr_sla {
        struct omr_core *core;
        struct event *timer;
        struct omr_script pending, schedule, fire;
        bool busy, stopped;
        int64_t next_due; /* earliest due time known, or -1 */
};

static bool ready(const struct omr_sla *s)
{
        return !s->stopped && s->core->store && omr_store_ready(s->core->store);
}

static void arm(struct omr_sla *s, int64_t delay_ms)
{
        if (s->stopped)
                return;
        if (delay_ms < 5)
                delay_ms = 5;
        if (delay_ms > POLL_MS)
                delay_ms = POLL_MS;
        struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
        evtimer_add(s->timer, &tv);
}

static void rearm_for_next(struct omr_sla *s)
{
        int64_t now = omr_now_ms();
        arm(s, s->next_due >= 0 ? s->next_due - now : POLL_MS);
}

/* --- firing ------------------------------------------------------------------ */

static void on_fired(const redisReply *r, const char *error, void *arg)
{
        struct omr_sla *s = arg;
        s->busy = false;
        if (error == NULL && r->type == REDIS_REPLY_ERROR)
                omr_log(LOG_ERR, "sla", "firing failed error=\"%s\"", r->str);
        if (error || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
                arm(s, POLL_MS);
                return;
        }
        for (size_t i = 0; i + 2 < r->elements; i++) {
                const redisReply *f = r->element[i];
                if (f->type != REDIS_REPLY_ARRAY || f->elements != 3)
                        continue;
                const char *member = f->element[0]->str;
                long long lag = f->element[2]->integer;
                bool breach = member && strstr(member, "|breach") != NULL;
                omr_metrics_inc(s->core->metrics, OMR_M_SLA_FIRED, breach ? "breach" : "warning",
                                NULL);
                omr_metrics_set(s->core->metrics, OMR_G_SLA_FIRE_LAG, (double)lag / 1000.0);
                omr_log(breach ? LOG_WARNING : LOG_INFO, "sla", "%s %s lag=%lldms",
                        breach ? "breach" : "warning", member ? member : "", lag);
        }
        const redisReply *next = r->element[r->elements - 2];
        s->next_due = next->type == REDIS_REPLY_INTEGER ? next->integer : -1;
        const redisReply *kick = r->element[r->elements - 1];
        for (size_t i = 1; kick->type == REDIS_REPLY_ARRAY && i < kick->elements; i++)
                omr_assign_kick(s->core, kick->element[i]->str);
        rearm_for_next(s);
}

static void fire(struct omr_sla *s)
{
        char now[24], emax[24], qmax[24];
        snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
        snprintf(emax, sizeof(emax), "%lld", s->core->conf->redis.events_maxlen);
        snprintf(qmax, sizeof(qmax), "%lld", s->core->conf->redis.queue_maxlen);
        const char *argv[] = {s->core->conf->redis.prefix, now, BATCH, emax, qmax};
        if (omr_store_eval(s->core->store, &s->fire, on_fired, s, 0, 5, argv, NULL) != 0) {
                s->busy = false;
                arm(s, POLL_MS);
        }
}

/* --- computing due times --------------------------------------------------------- */

static int64_t target_of(const struct omr_conf_sla_policy *p, const char *clock)
{
        if (strcmp(clock, "fr") == 0)
                return p->first_response_ms;
        if (strcmp(clock, "nr") == 0)
                return p->next_response_ms;
        return p->resolution_ms;
}

static void on_scheduled(const redisReply *r, const char *error, void *arg)
{
        struct omr_sla *s = arg;
        if (error == NULL && r->type == REDIS_REPLY_ERROR)
                omr_log(LOG_ERR, "sla", "scheduling failed error=\"%s\"", r->str);
        if (ready(s))
                fire(s);
        else
                s->busy = false;
}

/* The acknowledgement for a new conversation whose first response is due
 * at `due`: the template for its language with the time in the policy's
 * calendar zone (else sla.acknowledge.timezone, else UTC); NULL for none. */
static char *ack_text(const struct omr_conf *c, const struct omr_conf_sla_policy *p,
                      const char *language, const char *channel, int64_t due)
{
        int ch = omr_channel_parse(channel);
        if (!c->ack.enabled || due == OMR_NEVER ||
            (c->ack.channels && (ch < 0 || !(c->ack.channels & (1u << ch)))))
                return NULL;
        const char *tmpl = omr_conf_ack_template(c, language);
        if (tmpl == NULL)
                return NULL;
        GTimeZone *tz = p->calendar       ? g_time_zone_ref(p->calendar->tz)
                        : c->ack.timezone ? g_time_zone_new_identifier(c->ack.timezone)
                                          : g_time_zone_new_utc();
        GDateTime *utc = g_date_time_new_from_unix_utc(due / 1000 + (due % 1000 > 0));
        GDateTime *t = utc && tz ? g_date_time_to_timezone(utc, tz) : NULL;
        char *text = NULL;
        if (t) {
                char *when = g_date_time_format(t, "%a %H:%M");
                char *date = g_date_time_format(t, "%Y-%m-%d");
                char *time = g_date_time_format(t, "%H:%M");
                GString *g = g_string_new(tmpl);
                g_string_replace(g, "{due}", when ? when : "", 0);
                g_string_replace(g, "{due_date}", date ? date : "", 0);
                g_string_replace(g, "{due_time}", time ? time : "", 0);
                g_string_replace(g, "{timezone}", g_time_zone_get_identifier(tz), 0);
                text = strdup(g->str);
                g_string_free(g, TRUE);
                g_free(when);
                g_free(date);
                g_free(time);
                g_date_time_unref(t);
        }
        if (utc)
                g_date_time_unref(utc);
        if (tz)
                g_time_zone_unref(tz);
        return text;
}

/* Business time of the stretches a clock ran before its pauses. */
static int64_t segments_ms(const struct omr_conf_sla_policy *p, const char *json)
{
        json_t *a = json_loads(json, 0, NULL), *seg;
        size_t i;
        int64_t sum = 0;
        json_array_foreach(a, i, seg)
        {
                int64_t from = (int64_t)json_number_value(json_array_get(seg, 0));
                int64_t to = (int64_t)json_number_value(json_array_get(seg, 1));
                sum += omr_calendar_between(p->calendar, from, to);
        }
        json_decref(a);
        return sum;
}

/* What to store for one pending clock: 11 strings per entry into argv;
 * an acknowledgement text, when one is due, into *ack (caller frees). */
static void plan(struct omr_sla *s, const redisReply *e, char (*buf)[24], const char **argv,
                 char **ack)
{
        const char *member = e->element[0]->str, *policy_name = e->element[2]->str;
        const char *state = e->element[3]->str, *started_s = e->element[4]->str;
        const char *segments = e->element[6]->str, *fixed = e->element[10]->str;
        const char *clock = strrchr(member, '|');
        const struct omr_conf_sla_policy *p = omr_conf_sla_named(s->core->conf, policy_name);
        argv[0] = member;
        argv[1] = e->element[1]->str;
        argv[2] = state;
        argv[3] = started_s;
        argv[4] = "drop";
        argv[5] = "";
        argv[6] = "";
        argv[7] = "";
        argv[8] = segments;
        argv[9] = "0";
        argv[10] = "";
        if (clock == NULL || *started_s == '\0' || strcmp(state, "running") != 0)
                return;
        clock++;
        int64_t started = strtoll(started_s, NULL, 10);
        /* A run keeps the target it started with: a resumed clock (or a
         * reload) does not move the goal posts, and "end of business day"
         * stays the day the run began in. */
        int64_t target = *fixed ? strtoll(fixed, NULL, 10) : p ? target_of(p, clock) : 0;
        if (!*fixed && p && target == OMR_SLA_END_OF_DAY) {
                int64_t eod = omr_calendar_end_of_day(p->calendar, started);
                target = eod == OMR_NEVER ? 0 : omr_calendar_between(p->calendar, started, eod);
                if (target <= 0)
                        target = 1; /* closing now: due at once */
        }
        if (p == NULL || target <= 0) {
                /* No target, or the policy left the config. */
                argv[4] = "none";
                return;
        }
        int64_t elapsed = strtoll(e->element[5]->str, NULL, 10) + segments_ms(p, segments);
        int64_t left = target - elapsed;
        int64_t due = omr_calendar_add(p->calendar, started, left > 0 ? left : 0);
        int64_t warn_left = (int64_t)((double)target * p->warn_at) - elapsed;
        snprintf(buf[0], 24, "%lld", (long long)due);
        snprintf(buf[2], 24, "%lld", (long long)elapsed);
        snprintf(buf[3], 24, "%lld", (long long)target);
        argv[4] = "due";
        argv[5] = buf[0];
        argv[9] = buf[2];
        argv[10] = buf[3];
        if (warn_left > 0 && due != OMR_NEVER) {
                snprintf(buf[1], 24, "%lld",
                         (long long)omr_calendar_add(p->calendar, started, warn_left));
                argv[6] = buf[1];
        }
        if (due == OMR_NEVER) {
                argv[4] = "none"; /* a calendar that never opens */
                return;
        }
        if (strcmp(clock, "fr") == 0 && *e->element[9]->str == '\0')
                *ack = ack_text(s->core->conf, p, e->element[7]->str, e->element[8]->str, due);
        if (*ack)
                argv[7] = *ack;
}

static void on_pending(const redisReply *r, const char *error, void *arg)
{
        struct omr_sla *s = arg;
        if (error || r->type != REDIS_REPLY_ARRAY) {
                if (r && r->type == REDIS_REPLY_ERROR)
                        omr_log(LOG_ERR, "sla", "reading schedule failed error=\"%s\"", r->str);
                s->busy = false;
                arm(s, POLL_MS);
                return;
        }
        if (r->elements == 0) {
                fire(s);
                return;
        }
        size_t n = r->elements;
        const char **argv = calloc(6 + 11 * n, sizeof(*argv));
        char(*buf)[24] = calloc(4 * n, sizeof(*buf));
        char **acks = calloc(n, sizeof(*acks));
        char key_sched[256], key_due[256], now[24], emax[24], window[24];
        if (argv == NULL || buf == NULL || acks == NULL) {
                free(argv);
                free(buf);
                free(acks);
                s->busy = false;
                arm(s, POLL_MS);
                return;
        }
        const struct omr_conf *c = s->core->conf;
        snprintf(key_sched, sizeof(key_sched), "%ssla:schedule", c->redis.prefix);
        snprintf(key_due, sizeof(key_due), "%ssla:due", c->redis.prefix);
        snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
        snprintf(emax, sizeof(emax), "%lld", c->redis.events_maxlen);
        snprintf(window, sizeof(window), "%lld", (long long)c->ack.window_ms);
        argv[0] = key_sched;
        argv[1] = key_due;
        argv[2] = c->redis.prefix;
        argv[3] = now;
        argv[4] = emax;
        argv[5] = window;
        size_t argc = 6;
        for (size_t i = 0; i < n; i++) {
                const redisReply *e = r->element[i];
                if (e->type != REDIS_REPLY_ARRAY || e->elements != 11)
                        continue;
                plan(s, e, &buf[4 * i], &argv[argc], &acks[i]);
                argc += 11;
        }
        if (omr_store_eval(s->core->store, &s->schedule, on_scheduled, s, 2, (int)argc - 2, argv,
                           NULL) != 0) {
                s->busy = false;
                arm(s, POLL_MS);
        }
        for (size_t i = 0; i < n; i++)
                free(acks[i]);
        free(acks);
        free(argv);
        free(buf);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
        struct omr_sla *s = arg;
        (void)fd;
        (void)what;
        if (!ready(s) || s->busy) {
                arm(s, POLL_MS);
                return;
        }
        char key[256], now[24];
        snprintf(key, sizeof(key), "%ssla:schedule", s->core->conf->redis.prefix);
        snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
        const char *argv[] = {key, s->core->conf->redis.prefix, now, BATCH};
        s->busy = true;
        if (omr_store_eval(s->core->store, &s->pending, on_pending, s, 1, 3, argv, NULL) != 0) {
                s->busy = false;
                arm(s, POLL_MS);
        }
}

/* --- publishing policies, lifecycle --------------------------------------------- */

static void on_published(const redisReply *r, const char *error, void *arg)
{
        (void)arg;
        if (error == NULL && r->type == REDIS_REPLY_ERROR)
                omr_log(LOG_ERR, "sla", "publishing policies failed error=\"%s\"", r->str);
}

/* The survey's settings for the resolve and ingest scripts (which pick
 * the template by the conversation's language). */
static void publish_csat(struct omr_sla *s)
{
        const struct omr_conf *c = s->core->conf;
        char key[256], window[24];
        snprintf(key, sizeof(key), "%scsat:conf", c->redis.prefix);
        snprintf(window, sizeof(window), "%lld", (long long)c->csat.window_ms);
        const char *del[] = {"DEL", key};
        omr_store_command(s->core->store, on_published, NULL, 2, del, NULL);
        if (!c->csat.enabled)
                return;
        /* ",email,chat," — the channels asked, for a substring test in Lua. */
        unsigned mask = c->csat.channels
                                ? c->csat.channels
                                : ((1u << OMR_CHANNEL__COUNT) - 1) & ~(1u << OMR_CHANNEL_SOCIAL);
        char channels[128] = ",";
        size_t used = 1;
        for (int ch = 0; ch < OMR_CHANNEL__COUNT && used < sizeof(channels); ch++)
                if (mask & (1u << ch))
                        used += (size_t)snprintf(channels + used, sizeof(channels) - used, "%s,",
                                                 omr_channel_name((enum omr_channel)ch));
        const char *hset[] = {
                "HSET",      key,     "enabled",  "1",
                "window_ms", window,  "fallback", c->csat.fallback ? c->csat.fallback : "en",
                "channels",  channels};
        omr_store_command(s->core->store, on_published, NULL, 10, hset, NULL);
        for (size_t i = 0; i < c->csat.n_templates; i++) {
                char field[80];
                snprintf(field, sizeof(field), "text:%s", c->csat.templates[i].language);
                const char *t[] = {"HSET", key, field, c->csat.templates[i].text};
                omr_store_command(s->core->store, on_published, NULL, 4, t, NULL);
        }
}

void omr_sla_sync(struct omr_sla *s)
{
        if (!ready(s))
                return;
        publish_csat(s);
        const struct omr_conf *c = s->core->conf;
        for (size_t i = 0; i < c->n_sla; i++) {
                const struct omr_conf_sla_policy *p = &c->sla[i];
                char key[256];
                snprintf(key, sizeof(key), "%ssla:policy:%s", c->redis.prefix, p->name);
                const char *argv[] = {"HSET",
                                      key,
                                      "escalation_queue",
                                      p->escalation_queue ? p->escalation_queue : "",
                                      "escalate_priority",
                                      omr_priority_name(p->escalate_priority)};
                omr_store_command(s->core->store, on_published, NULL, 6, argv, NULL);
        }
}

void omr_sla_kick(struct omr_core *core)
{
        struct omr_sla *s = core->sla;
        /* Brought forward, never pushed back: a steady stream of kicks must
         * not keep postponing the firing. */
        struct timeval left;
        if (s && !s->stopped && !s->busy &&
            (!evtimer_pending(s->timer, &left) || left.tv_sec > 0 || left.tv_usec > 5000))
                arm(s, 0);
}

struct omr_sla *omr_sla_new(struct omr_core *core)
{
        struct omr_sla *s = calloc(1, sizeof(*s));
        if (s == NULL)
                return NULL;
        s->core = core;
        s->next_due = -1;
        omr_script_init(&s->pending, omr_sla_pending_lua);
        omr_script_init(&s->schedule, omr_sla_schedule_lua);
        omr_script_init(&s->fire, omr_sla_fire_lua);
        s->timer = evtimer_new(core->base, on_timer, s);
        if (s->timer == NULL) {
                free(s);
                return NULL;
        }
        return s;
}

void omr_sla_start(struct omr_sla *s)
{
        arm(s, POLL_MS);
}

void omr_sla_stop(struct omr_sla *s)
{
        if (s == NULL)
                return;
        s->stopped = true;
        event_del(s->timer);
}

void omr_sla_free(struct omr_sla *s)
{
        if (s == NULL)
                return;
        event_free(s->timer);
        free(s);
}
