/* notify.c — tells agents' tools about offers and assignments: signed JSON
 * webhooks, Slack-compatible webhooks and email to the agent
 * (docs/routing.md, "Agents' tools").
 *
 * Deliveries live in Redis, not in this process: every 250 ms this daemon
 *   1. fans new events out into deliveries (notify_fanout.lua: read as
 *      group `notify`, create, acknowledge — one script),
 *   2. leases the due ones (notify_take.lua), sends them (libcurl on the
 *      loop; email through the mailer's worker thread), and
 *   3. records each outcome (notify_done.lua): delivered, retry at a time
 *      with backoff (timeouts, 429, 5xx, unreachable; Retry-After
 *      honoured), or failed (other 4xx, SMTP 5xx, notify.give_up_after).
 * A restart or a crash loses nothing: a leased delivery whose outcome was
 * never written is retried when its lease ends. The delivery id stays the
 * same across attempts so receivers can drop repeats. Loop thread only. */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_priv.h"
#include "mailer.h"
#include "omniroute/fetch.h"
#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/signature.h"
#include "omniroute/timefmt.h"

extern const char omr_notify_fanout_lua[], omr_notify_take_lua[], omr_notify_done_lua[];

#define TICK_MS        250
#define MAX_IN_FLIGHT  32
#define MAX_EMAILS     4 /* queued on the one SMTP worker at a time */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 300000
#define KEEP_S         "604800" /* finished deliveries stay visible for a week */

struct omr_notify {
        struct omr_core *core;
        struct event *tick;
        struct omr_mailer *mailer;
        struct omr_script fanout, take, done;
        bool fanning, taking, stopped;
        unsigned in_flight; /* leased, outcome not yet written */
        unsigned emails;    /* of which emails */
};

struct attempt {
        struct omr_notify *n;
        const char *kind; /* "webhook" | "email": static */
        char *id, *target, *payload;
        int attempts;
        int64_t created_at;
};

static void attempt_free(struct attempt *a)
{
        free(a->id);
        free(a->target);
        free(a->payload);
        free(a);
}

static bool ready(const struct omr_notify *n)
{
        return !n->stopped && n->core->store && omr_store_ready(n->core->store);
}

static bool configured(const struct omr_conf *c)
{
        return c->notify.n_webhooks > 0 || c->notify.mail.server != NULL;
}

/* --- outcomes ------------------------------------------------------------------ */

static void on_recorded(const redisReply *r, const char *error, void *arg)
{
        struct omr_notify *n = arg;
        n->in_flight--;
        if (error == NULL && r->type == REDIS_REPLY_ERROR)
                omr_log(LOG_ERR, "notify", "recording an outcome failed error=\"%s\"", r->str);
        /* Not recorded (Redis away): the lease runs out and it is retried. */
}

/* retryable: the receiver may take it later. retry_after_ms < 0: ours. */
static void finish(struct attempt *a, bool ok, bool retryable, long status, const char *error,
                   int64_t retry_after_ms)
{
        struct omr_notify *n = a->n;
        int64_t now = omr_now_ms();
        const char *outcome = ok ? "delivered" : "failed";
        int64_t next = 0;
        if (!ok && retryable) {
                int64_t wait = retry_after_ms >= 0 ? retry_after_ms
                                                   : omr_backoff_ms(a->attempts, BACKOFF_MIN_MS,
                                                                    BACKOFF_MAX_MS);
                if (now + wait - a->created_at <= n->core->conf->notify.give_up_after_ms) {
                        outcome = "retry";
                        next = now + wait;
                }
        }
        omr_metrics_inc(n->core->metrics, OMR_M_NOTIFY, a->kind, outcome);
        if (ok)
                omr_log(LOG_DEBUG, "notify", "delivered id=%s target=%s", a->id, a->target);
        else
                omr_log(strcmp(outcome, "retry") == 0 ? LOG_WARNING : LOG_ERR, "notify",
                        "delivery %s id=%s target=%s attempt=%d status=%ld error=\"%s\"",
                        strcmp(outcome, "retry") == 0 ? "will be retried" : "failed", a->id,
                        a->target, a->attempts, status, error ? error : "");
        char *due = NULL, *hash = NULL, *events = NULL;
        const char *prefix = n->core->conf->redis.prefix;
        char next_s[24], now_s[24], status_s[24], emax[24];
        snprintf(next_s, sizeof(next_s), "%lld", (long long)next);
        snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
        snprintf(status_s, sizeof(status_s), "%ld", status);
        snprintf(emax, sizeof(emax), "%lld", n->core->conf->redis.events_maxlen);
        int rc = -1;
        if (asprintf(&due, "%snotify:due", prefix) > 0 &&
            asprintf(&hash, "%snotify:%s", prefix, a->id) > 0 &&
            asprintf(&events, "%sevents", prefix) > 0 && ready(n)) {
                const char *argv[] = {
                        due,   hash,     events, a->id, outcome, next_s, error ? error : "",
                        now_s, status_s, emax,   KEEP_S};
                rc = omr_store_eval(n->core->store, &n->done, on_recorded, n, 3, 8, argv, NULL);
        }
        if (rc != 0)
                n->in_flight--;
        free(due);
        free(hash);
        free(events);
        attempt_free(a);
}

/* --- webhooks --------------------------------------------------------------------- */

static const struct omr_conf_webhook *webhook(const struct omr_conf *c, const char *name)
{
        for (size_t i = 0; i < c->notify.n_webhooks; i++)
                if (strcmp(c->notify.webhooks[i].name, name) == 0)
                        return &c->notify.webhooks[i];
        return NULL;
}

static const char *field(json_t *obj, const char *path1, const char *path2)
{
        json_t *o = json_object_get(obj, path1);
        const char *s = json_string_value(path2 ? json_object_get(o, path2) : o);
        return s ? s : "";
}

/* One line a person reads in a chat channel, or an email subject. */
static char *summary(json_t *p)
{
        const char *type = field(p, "event", "type");
        const char *what = !strcmp(type, "conversation.offered")    ? "offered to"
                           : !strcmp(type, "conversation.assigned") ? "assigned to"
                                                                    : type;
        char *s = NULL;
        if (strncmp(type, "sla.", 4) == 0 || strcmp(type, "conversation.escalated") == 0) {
                /* For supervisors: which clock, which conversation, where. */
                const char *clock = field(p, "event", "clock");
                if (asprintf(&s, "%s (%s): %s %s conversation %s in %s%s%s", type,
                             *clock ? clock : field(p, "event", "reason"),
                             field(p, "conversation", "priority"),
                             field(p, "conversation", "channel"), field(p, "conversation", "id"),
                             field(p, "conversation", "queue"),
                             *field(p, "agent", "id") ? ", with " : "",
                             field(p, "agent", "name")) < 0)
                        return NULL;
                return s;
        }
        if (asprintf(&s, "%s %s conversation %s %s %s", field(p, "conversation", "priority"),
                     field(p, "conversation", "channel"), field(p, "conversation", "id"), what,
                     field(p, "agent", "name")) < 0)
                return NULL;
        return s;
}

/* Slack's incoming-webhook payload: {"text": …}, mrkdwn. */
static char *slack_body(json_t *p)
{
        char *line = summary(p), *text = NULL;
        const char *cust = field(p, "conversation", "customer_name");
        if (line == NULL ||
            asprintf(&text,
                     "*%s*\ncustomer: %s (%s) · language: %s · queue: %s\n`omniroutectl show %s`",
                     line, *cust ? cust : "unknown", field(p, "conversation", "customer_handle"),
                     field(p, "conversation", "language"), field(p, "conversation", "queue"),
                     field(p, "conversation", "id")) < 0)
                text = NULL;
        free(line);
        json_t *j = json_pack("{s:s}", "text", text ? text : "");
        free(text);
        char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        return body;
}

static void on_posted(const struct omr_fetch_response *r, void *arg)
{
        struct attempt *a = arg;
        if (r->curl_code != 0) {
                finish(a, false, true, 0, r->error, -1);
        } else if (r->status >= 200 && r->status < 300) {
                finish(a, true, false, r->status, NULL, -1);
        } else {
                char err[64];
                snprintf(err, sizeof(err), "HTTP %ld", r->status);
                bool retry = r->status == 429 || r->status == 408 || r->status >= 500;
                finish(a, false, retry, r->status, err, r->retry_after_ms);
        }
}

static void post_webhook(struct attempt *a, const struct omr_conf_webhook *w, json_t *p)
{
        struct omr_notify *n = a->n;
        char *body = w->format == OMR_NOTIFY_SLACK ? slack_body(p) : strdup(a->payload);
        char ts[24], sig[80] = "", h_sig[128], h_ts[64], h_id[200], h_type[120];
        snprintf(ts, sizeof(ts), "%lld", (long long)(omr_now_ms() / 1000));
        if (body && w->secret) {
                /* The inbound scheme (docs/connectors/api.md), both ways. */
                unsigned char mac[64];
                const void *parts[] = {ts, ".", body};
                size_t lens[] = {strlen(ts), 1, strlen(body)};
                size_t len =
                        omr_hmac(OMR_HMAC_SHA256, w->secret, w->secret_len, parts, lens, 3, mac);
                memcpy(sig, "sha256=", 7);
                omr_hex_encode(mac, len, sig + 7);
        }
        snprintf(h_sig, sizeof(h_sig), "X-Omniroute-Signature: %s", sig);
        snprintf(h_ts, sizeof(h_ts), "X-Omniroute-Timestamp: %s", ts);
        snprintf(h_id, sizeof(h_id), "X-Omniroute-Delivery: %s", a->id);
        snprintf(h_type, sizeof(h_type), "X-Omniroute-Event: %s", field(p, "event", "type"));
        const char *headers[] = {h_id, h_type, h_ts, w->secret ? h_sig : NULL, NULL};
        struct omr_fetch_request req = {
                .method = "POST",
                .url = w->url,
                .content_type = "application/json",
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .headers = headers,
                .timeout_ms = (long)n->core->conf->notify.request_timeout_ms,
        };
        if (body == NULL)
                finish(a, false, true, 0, "out of memory", -1);
        else if (omr_fetch(n->core->fetcher, &req, on_posted, a) != 0)
                finish(a, false, true, 0, "could not start the request", -1);
        free(body);
}

/* --- email ---------------------------------------------------------------------------- */

static void on_mailed(bool ok, bool permanent, int code, const char *error, void *arg)
{
        struct attempt *a = arg;
        a->n->emails--;
        finish(a, ok, !permanent, code, ok ? NULL : error, -1);
}

static void send_mail(struct attempt *a, const char *to, json_t *p)
{
        const struct omr_conf_mail *m = &a->n->core->conf->notify.mail;
        char *subject = NULL, *body = NULL, *line = summary(p), h_id[200];
        const char *cust = field(p, "conversation", "customer_name");
        if (line == NULL || asprintf(&subject, "[omniroute] %s", line) < 0)
                subject = NULL;
        if (asprintf(&body,
                     "%s\n\nCustomer: %s %s\nLanguage: %s\nQueue: %s\nEvent: %s\n\n"
                     "Open it with: omniroutectl show %s\n",
                     line ? line : "", cust, field(p, "conversation", "customer_handle"),
                     field(p, "conversation", "language"), field(p, "conversation", "queue"),
                     field(p, "event", "type"), field(p, "conversation", "id")) < 0)
                body = NULL;
        snprintf(h_id, sizeof(h_id), "X-Omniroute-Delivery: %s", a->id);
        const char *headers[] = {h_id, NULL};
        struct omr_mail mail = {
                .server = m->server,
                .from = m->from,
                .to = to,
                .subject = subject,
                .body = body,
                .user = m->user,
                .password = m->password,
                .starttls = (int)m->starttls,
                .timeout_ms = (long)m->timeout_ms,
                .headers = headers,
        };
        int rc = subject && body ? omr_mailer_send(a->n->mailer, &mail, on_mailed, a) : -1;
        if (rc == 0)
                a->n->emails++;
        free(line);
        free(subject);
        free(body);
        if (rc != 0)
                finish(a, false, rc != -22 /* EINVAL: bad address, never works */, 0,
                       "could not queue the email", -1);
}

/* --- the tick --------------------------------------------------------------------------- */

static void send_one(struct omr_notify *n, const redisReply *d)
{
        struct attempt *a = calloc(1, sizeof(*a));
        if (a == NULL)
                return; /* the lease runs out; retried later */
        a->n = n;
        a->id = strdup(d->element[0]->str);
        a->target = strdup(d->element[1]->str);
        a->payload = strdup(d->element[4]->str);
        a->attempts = (int)d->element[5]->integer;
        a->created_at = strtoll(d->element[6]->str, NULL, 10);
        n->in_flight++;
        a->kind = "webhook";
        if (!a->id || !a->target || !a->payload) {
                finish(a, false, true, 0, "out of memory", -1);
                return;
        }
        json_t *p = json_loads(a->payload, 0, NULL);
        const char *kind = d->element[2]->str;
        a->kind = strcmp(kind, "email") == 0 ? "email" : "webhook";
        const struct omr_conf_webhook *w = webhook(n->core->conf, a->target);
        if (p == NULL)
                finish(a, false, false, 0, "stored payload is not JSON", -1);
        else if (strcmp(kind, "email") == 0 && n->core->conf->notify.mail.server)
                send_mail(a, d->element[3]->str, p);
        else if (strcmp(kind, "webhook") == 0 && w)
                post_webhook(a, w, p);
        else
                finish(a, false, false, 0, "target no longer configured", -1);
        json_decref(p);
}

static void on_taken(const redisReply *r, const char *error, void *arg)
{
        struct omr_notify *n = arg;
        n->taking = false;
        if (error || r->type != REDIS_REPLY_ARRAY) {
                if (r && r->type == REDIS_REPLY_ERROR)
                        omr_log(LOG_ERR, "notify", "take failed error=\"%s\"", r->str);
                return;
        }
        for (size_t i = 0; i < r->elements; i++) {
                const redisReply *d = r->element[i];
                if (d->type == REDIS_REPLY_ARRAY && d->elements == 7 &&
                    d->element[5]->type == REDIS_REPLY_INTEGER)
                        send_one(n, d);
        }
}

static void on_fanned(const redisReply *r, const char *error, void *arg)
{
        struct omr_notify *n = arg;
        n->fanning = false;
        if (error == NULL && r->type == REDIS_REPLY_ERROR)
                omr_log(LOG_ERR, "notify", "fan-out failed error=\"%s\"", r->str);
}

/* The targets as the fan-out script reads them. */
static char *targets_json(const struct omr_conf *c)
{
        json_t *all = json_array();
        for (size_t i = 0; all && i < c->notify.n_webhooks; i++) {
                const struct omr_conf_webhook *w = &c->notify.webhooks[i];
                json_t *t = json_pack("{s:s,s:s}", "name", w->name, "kind", "webhook");
                json_t *teams = json_array(), *agents = json_array(), *events = json_array();
                for (size_t k = 0; k < w->n_teams; k++)
                        json_array_append_new(teams, json_string(w->teams[k]));
                for (size_t k = 0; k < w->n_agents; k++)
                        json_array_append_new(agents, json_string(w->agents[k]));
                for (size_t k = 0; k < w->n_events; k++)
                        json_array_append_new(events, json_string(w->events[k]));
                json_object_set_new(t, "teams", teams);
                json_object_set_new(t, "agents", agents);
                json_object_set_new(t, "events", events);
                json_array_append_new(all, t);
        }
        if (all && c->notify.mail.server && c->notify.n_supervisors > 0) {
                json_t *emails = json_array(), *events = json_array();
                for (size_t k = 0; k < c->notify.n_supervisors; k++)
                        json_array_append_new(emails, json_string(c->notify.supervisors[k]));
                for (size_t k = 0; k < c->notify.n_supervisor_events; k++)
                        json_array_append_new(events, json_string(c->notify.supervisor_events[k]));
                json_array_append_new(all,
                                      json_pack("{s:s,s:s,s:o,s:o}", "name", "supervisors", "kind",
                                                "supervisors", "emails", emails, "events", events));
        }
        if (all && c->notify.mail.server) {
                json_t *events = json_array();
                for (size_t k = 0; k < c->notify.mail.n_events; k++)
                        json_array_append_new(events, json_string(c->notify.mail.events[k]));
                json_array_append_new(all,
                                      json_pack("{s:s,s:s,s:[],s:[],s:o}", "name", "email", "kind",
                                                "email", "teams", "agents", "events", events));
        }
        char *s = all ? json_dumps(all, JSON_COMPACT) : NULL;
        json_decref(all);
        return s;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
        struct omr_notify *n = arg;
        (void)fd;
        (void)what;
        const struct omr_conf *c = n->core->conf;
        if (ready(n) && configured(c)) {
                const char *prefix = c->redis.prefix;
                char now[24], consumer[80];
                snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
                snprintf(consumer, sizeof(consumer), "omnirouted-%d", (int)getpid());
                char *targets = n->fanning ? NULL : targets_json(c);
                if (targets) {
                        const char *argv[] = {prefix, now, consumer, "200", targets};
                        if (omr_store_eval(n->core->store, &n->fanout, on_fanned, n, 0, 5, argv,
                                           NULL) == 0)
                                n->fanning = true;
                }
                free(targets);
                if (!n->taking && n->in_flight < MAX_IN_FLIGHT) {
                        /* A lease outlives the attempt: after it any daemon
                         * retries, so it must not end while we still send. */
                        int64_t hook_lease = c->notify.request_timeout_ms + 30000;
                        int64_t mail_lease = MAX_EMAILS * 5 * c->notify.mail.timeout_ms + 30000;
                        char due[256], lease[24], most[24], elease[24], eslots[24];
                        snprintf(due, sizeof(due), "%snotify:due", prefix);
                        snprintf(lease, sizeof(lease), "%lld", (long long)hook_lease);
                        snprintf(elease, sizeof(elease), "%lld", (long long)mail_lease);
                        snprintf(most, sizeof(most), "%u", MAX_IN_FLIGHT - n->in_flight);
                        snprintf(eslots, sizeof(eslots), "%u", MAX_EMAILS - n->emails);
                        const char *argv[] = {due, prefix, now, lease, most, elease, eslots};
                        if (omr_store_eval(n->core->store, &n->take, on_taken, n, 1, 6, argv,
                                           NULL) == 0)
                                n->taking = true;
                }
        }
        struct timeval tv = {0, TICK_MS * 1000};
        if (!n->stopped)
                evtimer_add(n->tick, &tv);
}

/* --- lifecycle ------------------------------------------------------------------------------ */

static void on_group(const redisReply *r, const char *error, void *arg)
{
        (void)arg;
        if (error == NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
                omr_log(LOG_ERR, "notify", "cannot create the events group error=\"%s\"", r->str);
}

void omr_notify_sync(struct omr_notify *n)
{
        if (!ready(n) || !configured(n->core->conf))
                return;
        /* Deliveries start with the events after the first configuration
         * that asks for them, not with the stream's whole history. */
        char key[256];
        snprintf(key, sizeof(key), "%sevents", n->core->conf->redis.prefix);
        const char *argv[] = {"XGROUP", "CREATE", key, "notify", "$", "MKSTREAM"};
        omr_store_command(n->core->store, on_group, NULL, 6, argv, NULL);
}

struct omr_notify *omr_notify_new(struct omr_core *core)
{
        struct omr_notify *n = calloc(1, sizeof(*n));
        if (n == NULL)
                return NULL;
        n->core = core;
        omr_script_init(&n->fanout, omr_notify_fanout_lua);
        omr_script_init(&n->take, omr_notify_take_lua);
        omr_script_init(&n->done, omr_notify_done_lua);
        n->tick = evtimer_new(core->base, on_tick, n);
        n->mailer = omr_mailer_new(core->base);
        if (n->tick == NULL || n->mailer == NULL) {
                omr_notify_free(n);
                return NULL;
        }
        return n;
}

void omr_notify_start(struct omr_notify *n)
{
        struct timeval tv = {0, TICK_MS * 1000};
        evtimer_add(n->tick, &tv);
}

size_t omr_notify_busy(const struct omr_notify *n)
{
        /* A lease request in flight counts: its deliveries would otherwise
         * wait a whole lease after a shutdown. */
        return n ? n->in_flight + (n->taking ? 1 : 0) : 0;
}

void omr_notify_stop(struct omr_notify *n)
{
        if (n == NULL)
                return;
        n->stopped = true;
        event_del(n->tick);
}

void omr_notify_free(struct omr_notify *n)
{
        if (n == NULL)
                return;
        /* Mails still queued answer now (their outcomes are dropped if the
         * store is gone: the lease brings them back later). */
        omr_mailer_free(n->mailer);
        if (n->tick)
                event_free(n->tick);
        free(n);
}
