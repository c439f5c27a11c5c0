/* outbound.c — delivers agents' replies: reads the omr:outbox stream as
 * consumer group "omnirouted", and for each entry asks the conversation's
 * connector to send it, retrying 429/5xx with backoff until
 * outbound.give_up_after, then records the outcome and acknowledges the
 * entry in one script.
 *
 * At most once per reply: before each provider request the reply is marked
 * "sending" in Redis (and the request waits for that write). A daemon that
 * dies mid-request leaves "sending"; whoever takes the entry next marks it
 * "unknown" instead of sending again (reply_begin.lua).
 *
 * Blocking reads (XREADGROUP BLOCK) use a connection of their own so they
 * never hold up the shared one. Loop thread only. */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_priv.h"
#include "id.h"
#include "omniroute/fetch.h"
#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/timefmt.h"

extern const char omr_reply_begin_lua[], omr_reply_finish_lua[], omr_reply_status_lua[];

#define OB_MAGIC       0x0b7b0u
#define DLV_MAGIC      0xd1e7u
#define MAX_INFLIGHT   64
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define MAP_TTL_S      (30 * 86400) /* status callbacks arrive within days */
#define CLAIM_EVERY_MS 30000

enum dlv_state { DLV_BEGIN, DLV_MARKING, DLV_SENDING, DLV_WAITING, DLV_FINISHING };

struct delivery {
        unsigned magic;
        struct omr_outbound *ob;
        enum dlv_state state;
        char *reply_id, *conversation_id, *agent_id, *text;
        char *provider, *to, *customer_id, *channel;
        char *subject, *in_reply_to, *thread_ref; /* threading on the customer's side */
        bool copy; /* sent through another channel ("via"): not a message of the log */
        struct omr_connector *conn;
        int attempt;
        int64_t deadline_ms; /* monotonic */
        struct event *timer;
        /* the outcome, once known */
        bool sent;
        char *provider_message_id;
        char *error;
        struct delivery *prev, *next;
};

struct omr_outbound {
        unsigned magic;
        struct omr_core *core;
        struct omr_store *reader;
        bool group_ready;
        bool reading;
        bool own_pending_done;
        /* Reading our own pending entries pages through them: XREADGROUP
         * with an id returns those after it, so each is taken once. */
        char pending_after[64];
        struct event *read_ev;
        struct event *claim_ev;
        struct omr_script begin, finish, status;
        char consumer[128];
        char outbox[128];
        struct delivery *list;
        size_t n;
};

static void read_more(struct omr_outbound *ob);
static void attempt(struct delivery *d);
static void finish(struct delivery *d);

static const struct omr_conf *conf_of(const struct omr_outbound *ob)
{
        return ob->core->conf;
}

static char *dup_or_empty(const char *s)
{
        return strdup(s ? s : "");
}

static void delivery_release(struct delivery *d)
{
        if (d->timer)
                event_free(d->timer);
        free(d->reply_id);
        free(d->conversation_id);
        free(d->agent_id);
        free(d->text);
        free(d->provider);
        free(d->to);
        free(d->subject);
        free(d->in_reply_to);
        free(d->thread_ref);
        free(d->customer_id);
        free(d->channel);
        free(d->provider_message_id);
        free(d->error);
        d->magic = 0;
        free(d);
}

static void delivery_free(struct delivery *d)
{
        struct omr_outbound *ob = d->ob;
        if (d->prev)
                d->prev->next = d->next;
        else
                ob->list = d->next;
        if (d->next)
                d->next->prev = d->prev;
        ob->n--;
        delivery_release(d);
        /* A slot freed up: take more work. */
        read_more(ob);
}

static int store_ready(struct omr_outbound *ob)
{
        return ob->core->store && omr_store_ready(ob->core->store);
}

/* Re-arm a delivery's timer (retry a Redis write, or back off). */
static void later(struct delivery *d, int64_t ms)
{
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(d->timer, &tv);
}

/* --- finish: write the outcome and acknowledge -------------------------- */

static char *out_message_json(const struct delivery *d)
{
        struct omr_message *m = omr_message_new();
        char *json = NULL;
        if (m == NULL)
                return NULL;
        omr_id_new(m->id);
        memcpy(m->conversation_id, d->conversation_id, strnlen(d->conversation_id, OMR_ID_LEN));
        m->direction = OMR_DIR_OUT;
        int ch = omr_channel_parse(d->channel);
        m->channel = ch < 0 ? OMR_CHANNEL_API : (enum omr_channel)ch;
        m->provider = strdup(d->provider);
        /* Members without a value are left out of the stored form. */
        m->external_id = d->provider_message_id ? strdup(d->provider_message_id) : NULL;
        m->customer.id = strdup(d->customer_id);
        m->customer.handle = *d->to ? strdup(d->to) : NULL;
        m->text = strdup(d->text);
        m->agent_id = strdup(d->agent_id);
        m->sent_at = omr_now_ms();
        json_t *j = omr_message_to_json(m);
        if (j) {
                json_object_set_new(j, "reply_id", json_string(d->reply_id));
                /* The state when it was sent; later reports update the
                 * reply hash (the log is append-only). */
                json_object_set_new(j, "delivery", json_pack("{s:s}", "status", "sent"));
        }
        json = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        omr_message_free(m);
        return json;
}

static void on_finished(const redisReply *r, const char *error, void *arg)
{
        struct delivery *d = arg;
        OMR_MAGIC_CHECK(d, DLV_MAGIC);
        if (error || r->type == REDIS_REPLY_ERROR) {
                /* The provider's answer is known and must not be lost or
                 * acted on twice: keep it and write again. */
                omr_log(LOG_WARNING, "outbound", "cannot record outcome reply=%s error=\"%s\"",
                        d->reply_id, error ? error : r->str);
                later(d, 1000);
                return;
        }
        omr_metrics_inc(d->ob->core->metrics, OMR_M_REPLIES, d->conn ? d->conn->ops->name : "none",
                        d->sent ? "sent" : "failed");
        omr_log(d->sent ? LOG_INFO : LOG_WARNING, "outbound",
                "reply %s reply=%s conversation=%s provider=%s attempts=%d%s%s",
                d->sent ? "sent" : "failed", d->reply_id, d->conversation_id, d->provider,
                d->attempt, d->error ? " error=" : "", d->error ? d->error : "");
        delivery_free(d);
}

static void finish(struct delivery *d)
{
        struct omr_outbound *ob = d->ob;
        const struct omr_conf *conf = conf_of(ob);
        const char *prefix = conf->redis.prefix;
        d->state = DLV_FINISHING;
        if (!store_ready(ob)) {
                later(d, 1000);
                return;
        }
        char *reply_key = NULL, *log_key = NULL, *events = NULL, *map_key = NULL;
        char *json = d->sent ? out_message_json(d) : NULL;
        char now[24], emax[24], ttl[24], offline[24];
        snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
        /* A chat reply the visitor may not see: emailed after this (chat.c). */
        snprintf(offline, sizeof(offline), "%lld",
                 conf->chat.offline_email_provider ? (long long)conf->chat.offline_email_after_ms
                                                   : 0LL);
        snprintf(emax, sizeof(emax), "%lld", conf->redis.events_maxlen);
        snprintf(ttl, sizeof(ttl), "%d", MAP_TTL_S);
        int ok = asprintf(&reply_key, "%sconv:{%s}:reply:%s", prefix, d->conversation_id,
                          d->reply_id) > 0 &&
                 asprintf(&log_key, "%sconv:{%s}:log", prefix, d->conversation_id) > 0 &&
                 asprintf(&events, "%sevents", prefix) > 0 &&
                 asprintf(&map_key, "%sprovidermsg:%s:%s", prefix, d->provider,
                          d->provider_message_id ? d->provider_message_id : "-") > 0;
        int rc = -ENOMEM;
        if (ok && (json || !d->sent)) {
                const char *argv[] = {reply_key,
                                      log_key,
                                      events,
                                      ob->outbox,
                                      map_key,
                                      d->reply_id,
                                      d->sent ? "sent" : "failed",
                                      d->provider_message_id ? d->provider_message_id : "",
                                      d->error ? d->error : "",
                                      now,
                                      json ? json : "",
                                      d->conversation_id,
                                      emax,
                                      ttl,
                                      d->channel ? d->channel : "",
                                      offline,
                                      d->copy ? "1" : "0"};
                rc = omr_store_eval(ob->core->store, &ob->finish, on_finished, d, 5, 12, argv,
                                    NULL);
        }
        free(reply_key);
        free(log_key);
        free(events);
        free(map_key);
        free(json);
        if (rc != 0)
                later(d, 1000);
}

/* --- attempts ------------------------------------------------------------ */

static void set_outcome(struct delivery *d, bool sent, const char *provider_id, const char *error)
{
        d->sent = sent;
        free(d->provider_message_id);
        free(d->error);
        d->provider_message_id = provider_id ? strdup(provider_id) : NULL;
        d->error = error ? strdup(error) : NULL;
}

static void on_marked_retrying(const redisReply *r, const char *error, void *arg)
{
        (void)r;
        (void)error; /* best effort: begin treats "sending" as unknown, never resends */
        (void)arg;
}

/* HSET the reply's status, attempt count and (when given) error. 0 when
 * sent (cb will be called), else -errno. */
static int reply_hset(struct delivery *d, const char *status, const char *error,
                      omr_store_reply_fn cb, void *arg)
{
        struct omr_outbound *ob = d->ob;
        char *key = NULL, att[16];
        if (!store_ready(ob) || asprintf(&key, "%sconv:{%s}:reply:%s", conf_of(ob)->redis.prefix,
                                         d->conversation_id, d->reply_id) < 0)
                return -ENOTCONN;
        snprintf(att, sizeof(att), "%d", d->attempt);
        const char *argv[] = {"HSET", key, "status", status, "attempts", att, "error", error};
        int argc = error ? 8 : 6;
        int rc = omr_store_command(ob->core->store, cb, arg, argc, argv, NULL);
        free(key);
        return rc;
}

static void on_sent(const struct omr_send_result *res, void *arg)
{
        struct delivery *d = arg;
        OMR_MAGIC_CHECK(d, DLV_MAGIC);
        if (res->status == OMR_SEND_SENT) {
                set_outcome(d, true, res->provider_message_id, NULL);
                finish(d);
                return;
        }
        if (res->status == OMR_SEND_FAILED) {
                set_outcome(d, false, NULL, res->error ? res->error : "refused by the provider");
                finish(d);
                return;
        }
        int64_t delay = omr_backoff_ms(d->attempt, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
        if (res->retry_after_ms > delay)
                delay = res->retry_after_ms;
        if (omr_mono_ms() + delay > d->deadline_ms) {
                char why[512];
                snprintf(why, sizeof(why), "gave up after %d attempts: %s", d->attempt,
                         res->error ? res->error : "provider unavailable");
                set_outcome(d, false, NULL, why);
                finish(d);
                return;
        }
        omr_log(LOG_INFO, "outbound", "retrying reply=%s attempt=%d in=%lldms error=\"%s\"",
                d->reply_id, d->attempt, (long long)delay, res->error ? res->error : "");
        omr_metrics_inc(d->ob->core->metrics, OMR_M_REPLIES, d->conn->ops->name, "retried");
        reply_hset(d, "retrying", res->error ? res->error : "", on_marked_retrying, NULL);
        d->state = DLV_WAITING;
        later(d, delay);
}

static void send_now(struct delivery *d)
{
        const char *colon = strchr(d->provider, ':');
        struct omr_reply r = {
                .reply_id = d->reply_id,
                .conversation_id = d->conversation_id,
                .agent_id = d->agent_id,
                .text = d->text,
                .account = colon ? colon + 1 : "",
                .to = d->to,
                .subject = d->subject,
                .in_reply_to = d->in_reply_to,
                .thread_ref = d->thread_ref,
                .attempt = d->attempt,
        };
        d->state = DLV_SENDING;
        int rc = d->conn->ops->send(d->conn, &r, on_sent, d);
        if (rc != 0) {
                struct omr_send_result res = {.status = OMR_SEND_RETRY,
                                              .error = "could not start the request",
                                              .retry_after_ms = -1};
                on_sent(&res, d);
        }
}

static void on_marked_sending(const redisReply *r, const char *error, void *arg)
{
        struct delivery *d = arg;
        OMR_MAGIC_CHECK(d, DLV_MAGIC);
        if (error || r->type == REDIS_REPLY_ERROR) {
                /* Not marked: do not send (a crash now could resend). */
                d->state = DLV_WAITING;
                later(d, 1000);
                return;
        }
        send_now(d);
}

/* Every provider request is preceded by a confirmed "sending" mark. */
static void attempt(struct delivery *d)
{
        d->attempt++;
        d->state = DLV_MARKING;
        if (reply_hset(d, "sending", NULL, on_marked_sending, d) != 0) {
                d->attempt--;
                d->state = DLV_WAITING;
                later(d, 1000);
        }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
        struct delivery *d = arg;
        (void)fd;
        (void)what;
        OMR_MAGIC_CHECK(d, DLV_MAGIC);
        if (d->state == DLV_FINISHING)
                finish(d);
        else
                attempt(d);
}

/* --- begin ----------------------------------------------------------------- */

static const char *elem(const redisReply *r, size_t i)
{
        if (r->type != REDIS_REPLY_ARRAY || i >= r->elements)
                return NULL;
        return r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : NULL;
}

static void on_begun(const redisReply *r, const char *error, void *arg)
{
        struct delivery *d = arg;
        OMR_MAGIC_CHECK(d, DLV_MAGIC);
        if (error || r->type == REDIS_REPLY_ERROR) {
                /* Left pending in the group; read again after a restart or
                 * reconnect. Drop it here. */
                omr_log(LOG_WARNING, "outbound", "cannot take reply=%s error=\"%s\"", d->reply_id,
                        error ? error : r->str);
                delivery_free(d);
                return;
        }
        const char *what = elem(r, 0);
        if (what == NULL || strcmp(what, "send") != 0) {
                if (what && strcmp(what, "failed") == 0)
                        omr_log(LOG_WARNING, "outbound", "reply not sent reply=%s why=\"%s\"",
                                d->reply_id, elem(r, 1) ? elem(r, 1) : "");
                delivery_free(d);
                return;
        }
        d->provider = dup_or_empty(elem(r, 1));
        d->to = dup_or_empty(elem(r, 2));
        d->customer_id = dup_or_empty(elem(r, 3));
        d->channel = dup_or_empty(elem(r, 4));
        d->subject = dup_or_empty(elem(r, 5));
        d->in_reply_to = dup_or_empty(elem(r, 6));
        d->thread_ref = dup_or_empty(elem(r, 7));
        d->copy = elem(r, 8) && strcmp(elem(r, 8), "1") == 0;
        d->conn = omr_core_connector_for(d->ob->core, d->provider);
        if (d->conn == NULL || d->conn->ops->send == NULL) {
                set_outcome(d, false, NULL, "this channel cannot send replies");
                finish(d);
                return;
        }
        attempt(d);
}

static void begin(struct omr_outbound *ob, const char *reply_id, const redisReply *fields)
{
        /* Already being delivered here (pending entries are read again after
         * a reconnect, and claims can return them): one delivery per reply. */
        for (const struct delivery *o = ob->list; o; o = o->next)
                if (strcmp(o->reply_id, reply_id) == 0)
                        return;
        const char *conv = NULL, *agent = NULL, *text = NULL, *idem = NULL, *via = NULL;
        for (size_t i = 0; fields && i + 1 < fields->elements; i += 2) {
                const char *k = fields->element[i]->str, *v = fields->element[i + 1]->str;
                if (k == NULL || v == NULL)
                        continue;
                if (strcmp(k, "conversation_id") == 0)
                        conv = v;
                else if (strcmp(k, "agent_id") == 0)
                        agent = v;
                else if (strcmp(k, "text") == 0)
                        text = v;
                else if (strcmp(k, "idempotency_key") == 0 && *v)
                        idem = v;
                else if (strcmp(k, "via") == 0 && *v)
                        via = v;
        }
        struct delivery *d = calloc(1, sizeof(*d));
        if (d == NULL)
                return;
        d->magic = DLV_MAGIC;
        d->ob = ob;
        d->state = DLV_BEGIN;
        d->reply_id = strdup(reply_id);
        d->conversation_id = dup_or_empty(conv);
        d->agent_id = dup_or_empty(agent);
        d->text = dup_or_empty(text);
        d->deadline_ms = omr_mono_ms() + conf_of(ob)->outbound.give_up_after_ms;
        d->timer = evtimer_new(ob->core->base, on_timer, d);
        d->next = ob->list;
        if (ob->list)
                ob->list->prev = d;
        ob->list = d;
        ob->n++;
        const char *prefix = conf_of(ob)->redis.prefix;
        char *reply_key = NULL, *conv_key = NULL, *events = NULL, *idem_key = NULL, now[24],
             emax[24];
        snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
        snprintf(emax, sizeof(emax), "%lld", conf_of(ob)->redis.events_maxlen);
        int rc = -ENOMEM;
        if (d->reply_id && d->timer && *d->conversation_id &&
            strchr(d->conversation_id, '}') == NULL &&
            asprintf(&reply_key, "%sconv:{%s}:reply:%s", prefix, d->conversation_id, reply_id) >
                    0 &&
            asprintf(&conv_key, "%sconv:{%s}", prefix, d->conversation_id) > 0 &&
            asprintf(&events, "%sevents", prefix) > 0 &&
            asprintf(&idem_key, "%sidem:outbox:%s", prefix, idem ? idem : "-") > 0) {
                const char *argv[] = {
                        reply_key, conv_key,           events,      ob->outbox,    idem_key,
                        reply_id,  d->conversation_id, d->agent_id, d->text,       now,
                        emax,      idem ? "1" : "0",   "604800",    via ? via : ""};
                rc = omr_store_eval(ob->core->store, &ob->begin, on_begun, d, 5, 9, argv, NULL);
        }
        free(idem_key);
        free(reply_key);
        free(conv_key);
        free(events);
        if (rc != 0) {
                omr_log(LOG_WARNING, "outbound", "cannot take reply=%s (malformed or redis down)",
                        reply_id);
                delivery_free(d);
        }
}

/* --- reading the outbox -------------------------------------------------- */

static void take_entries(struct omr_outbound *ob, const redisReply *r)
{
        /* [[stream, [[id, [field, value, …]], …]]] */
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
                return;
        const redisReply *s = r->element[0];
        if (s->type != REDIS_REPLY_ARRAY || s->elements < 2 ||
            s->element[1]->type != REDIS_REPLY_ARRAY)
                return;
        const redisReply *entries = s->element[1];
        for (size_t i = 0; i < entries->elements; i++) {
                const redisReply *e = entries->element[i];
                if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
                    e->element[0]->type != REDIS_REPLY_STRING)
                        continue;
                /* A pending entry already deleted shows with nil fields. */
                const redisReply *fields =
                        e->element[1]->type == REDIS_REPLY_ARRAY ? e->element[1] : NULL;
                begin(ob, e->element[0]->str, fields);
                if (!ob->own_pending_done)
                        snprintf(ob->pending_after, sizeof(ob->pending_after), "%s",
                                 e->element[0]->str);
        }
        if (!ob->own_pending_done && entries->elements == 0)
                ob->own_pending_done = true;
}

static void on_read(const redisReply *r, const char *error, void *arg)
{
        struct omr_outbound *ob = arg;
        OMR_MAGIC_CHECK(ob, OB_MAGIC);
        ob->reading = false;
        if (error || r->type == REDIS_REPLY_ERROR) {
                if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOGROUP", 7) == 0)
                        ob->group_ready = false;
                struct timeval tv = {0, 200000};
                evtimer_add(ob->read_ev, &tv);
                return;
        }
        if (r->type == REDIS_REPLY_ARRAY)
                take_entries(ob, r);
        else if (!ob->own_pending_done)
                ob->own_pending_done = true;
        read_more(ob);
}

static void on_group(const redisReply *r, const char *error, void *arg)
{
        struct omr_outbound *ob = arg;
        if (!error && (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0))
                ob->group_ready = true;
        else
                omr_log(LOG_ERR, "outbound", "cannot create the outbox group error=\"%s\"",
                        error ? error : r->str);
        ob->reading = false;
        read_more(ob);
}

static void read_more(struct omr_outbound *ob)
{
        if (ob->reading || ob->reader == NULL || !omr_store_ready(ob->reader) ||
            ob->n >= MAX_INFLIGHT)
                return;
        ob->reading = true;
        if (!ob->group_ready) {
                const char *argv[] = {"XGROUP",     "CREATE", ob->outbox,
                                      "omnirouted", "0",      "MKSTREAM"};
                if (omr_store_command(ob->reader, on_group, ob, 6, argv, NULL) != 0)
                        ob->reading = false;
                return;
        }
        /* First our own pending entries (left by a previous run under the same
         * consumer name), then new ones. BLOCK stays under the command
         * timeout so a quiet outbox is not taken for a dead Redis. */
        char count[16], block[24];
        snprintf(count, sizeof(count), "%zu", MAX_INFLIGHT - ob->n);
        int64_t b = conf_of(ob)->redis.command_timeout_ms / 2;
        snprintf(block, sizeof(block), "%lld", (long long)(b > 1000 ? 1000 : b));
        const char *argv[] = {"XREADGROUP",
                              "GROUP",
                              "omnirouted",
                              ob->consumer,
                              "COUNT",
                              count,
                              "BLOCK",
                              block,
                              "STREAMS",
                              ob->outbox,
                              ob->own_pending_done ? ">" : ob->pending_after};
        if (omr_store_command(ob->reader, on_read, ob, 11, argv, NULL) != 0)
                ob->reading = false;
}

static void on_read_timer(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        read_more(arg);
}

static void on_reader_ready(struct omr_store *s, void *arg)
{
        struct omr_outbound *ob = arg;
        (void)s;
        ob->reading = false;
        ob->own_pending_done = false; /* re-read ours after every reconnect */
        snprintf(ob->pending_after, sizeof(ob->pending_after), "0");
        read_more(ob);
}

/* Entries another daemon took and never finished (it died): claim them
 * once they have been idle longer than any delivery may take. */
static void on_claimed(const redisReply *r, const char *error, void *arg)
{
        struct omr_outbound *ob = arg;
        if (error || r->type != REDIS_REPLY_ARRAY || r->elements < 2)
                return;
        /* XAUTOCLAIM: [next-id, [[id, fields], …], …]: same entry shape. */
        const redisReply *entries = r->element[1];
        for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
                const redisReply *e = entries->element[i];
                if (e->type == REDIS_REPLY_ARRAY && e->elements >= 2 &&
                    e->element[0]->type == REDIS_REPLY_STRING)
                        begin(ob, e->element[0]->str,
                              e->element[1]->type == REDIS_REPLY_ARRAY ? e->element[1] : NULL);
        }
}

static void on_claim_timer(evutil_socket_t fd, short what, void *arg)
{
        struct omr_outbound *ob = arg;
        (void)fd;
        (void)what;
        struct timeval tv = {CLAIM_EVERY_MS / 1000, 0};
        evtimer_add(ob->claim_ev, &tv);
        if (!store_ready(ob) || !ob->group_ready || ob->n >= MAX_INFLIGHT)
                return;
        char idle[24];
        snprintf(idle, sizeof(idle), "%lld",
                 (long long)(conf_of(ob)->outbound.give_up_after_ms + 60000));
        const char *argv[] = {"XAUTOCLAIM", ob->outbox, "omnirouted", ob->consumer,
                              idle,         "0-0",      "COUNT",      "16"};
        omr_store_command(ob->core->store, on_claimed, ob, 8, argv, NULL);
}

/* --- provider requests (for connectors) ---------------------------------- */

struct send_http {
        char provider[32];
        omr_send_parse_fn parse;
        omr_send_done_fn done;
        void *arg;
};

static void on_send_http(const struct omr_fetch_response *r, void *arg)
{
        struct send_http *j = arg;
        struct omr_send_result res = {.status = OMR_SEND_FAILED,
                                      .retry_after_ms = r->retry_after_ms};
        char err[512];
        if (r->curl_code != 0) {
                snprintf(err, sizeof(err), "%s%s", r->reached ? "outcome unknown: " : "", r->error);
                res.status = r->reached ? OMR_SEND_FAILED : OMR_SEND_RETRY;
                res.error = err;
        } else if (r->status == 429 || r->status >= 500) {
                snprintf(err, sizeof(err), "%s HTTP %ld", j->provider, r->status);
                res.status = OMR_SEND_RETRY;
                res.error = err;
        } else {
                j->parse(r, &res, err, sizeof(err));
        }
        j->done(&res, j->arg);
        free(j);
}

int omr_send_http(struct omr_core *core, const char *provider, const struct omr_fetch_request *req,
                  omr_send_parse_fn parse, omr_send_done_fn done, void *arg)
{
        struct send_http *j = calloc(1, sizeof(*j));
        if (j == NULL)
                return -ENOMEM;
        snprintf(j->provider, sizeof(j->provider), "%s", provider);
        j->parse = parse;
        j->done = done;
        j->arg = arg;
        int rc = omr_fetch(core->fetcher, req, on_send_http, j);
        if (rc != 0)
                free(j);
        return rc;
}

/* --- status reports ------------------------------------------------------- */

struct status_job {
        omr_status_done_fn done;
        void *arg;
        char what[160]; /* provider and message id, for the log */
};

static void on_status(const redisReply *r, const char *error, void *arg)
{
        struct status_job *j = arg;
        bool stored = !error && r->type != REDIS_REPLY_ERROR;
        if (stored && r->str && strcmp(r->str, "unknown") == 0)
                omr_log(LOG_INFO, "outbound",
                        "delivery report for a message omniroute did not send %s", j->what);
        j->done(stored, j->arg);
        free(j);
}

void omr_reply_status(struct omr_core *core, const char *provider, const char *provider_message_id,
                      const char *status, const char *error, omr_status_done_fn done, void *arg)
{
        struct omr_outbound *ob = core->outbound;
        const struct omr_conf *conf = core->conf;
        struct status_job *j = calloc(1, sizeof(*j));
        char *map_key = NULL, *events = NULL, now[24], emax[24];
        int rc = -ENOMEM;
        snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
        snprintf(emax, sizeof(emax), "%lld", conf->redis.events_maxlen);
        if (j && store_ready(ob) &&
            asprintf(&map_key, "%sprovidermsg:%s:%s", conf->redis.prefix, provider,
                     provider_message_id) > 0 &&
            asprintf(&events, "%sevents", conf->redis.prefix) > 0) {
                j->done = done;
                j->arg = arg;
                snprintf(j->what, sizeof(j->what), "provider=%s id=%.100s", provider,
                         provider_message_id);
                const char *argv[] = {
                        map_key, events, conf->redis.prefix, status, error ? error : "", now, emax};
                rc = omr_store_eval(core->store, &ob->status, on_status, j, 2, 5, argv, NULL);
        }
        free(map_key);
        free(events);
        if (rc != 0) {
                free(j);
                done(false, arg);
        }
}

/* --- lifecycle ------------------------------------------------------------- */

struct omr_outbound *omr_outbound_new(struct omr_core *core)
{
        struct omr_outbound *ob = calloc(1, sizeof(*ob));
        if (ob == NULL)
                return NULL;
        ob->magic = OB_MAGIC;
        ob->core = core;
        snprintf(ob->pending_after, sizeof(ob->pending_after), "0");
        omr_script_init(&ob->begin, omr_reply_begin_lua);
        omr_script_init(&ob->finish, omr_reply_finish_lua);
        omr_script_init(&ob->status, omr_reply_status_lua);
        ob->read_ev = evtimer_new(core->base, on_read_timer, ob);
        ob->claim_ev = evtimer_new(core->base, on_claim_timer, ob);
        if (ob->read_ev == NULL || ob->claim_ev == NULL) {
                omr_outbound_free(ob);
                return NULL;
        }
        return ob;
}

void omr_outbound_start(struct omr_outbound *ob)
{
        const struct omr_conf *conf = conf_of(ob);
        snprintf(ob->outbox, sizeof(ob->outbox), "%soutbox", conf->redis.prefix);
        if (conf->outbound.consumer) {
                snprintf(ob->consumer, sizeof(ob->consumer), "%s", conf->outbound.consumer);
        } else {
                /* Stable across restarts (so a restart re-reads its own
                 * pending entries), distinct per instance on one host. */
                char host[64] = "localhost";
                gethostname(host, sizeof(host) - 1);
                snprintf(ob->consumer, sizeof(ob->consumer), "%s:%d", host, conf->http.port);
        }
        ob->reader = omr_store_new(ob->core->base, &conf->redis, ob->core->metrics);
        if (ob->reader == NULL)
                return;
        const char *sock = omr_core_embedded_socket(ob->core);
        if (sock)
                omr_store_set_unix_path(ob->reader, sock);
        omr_store_secondary(ob->reader);
        omr_store_on_ready(ob->reader, on_reader_ready, ob);
        omr_store_start(ob->reader);
        struct timeval tv = {1, 0};
        evtimer_add(ob->claim_ev, &tv);
}

size_t omr_outbound_busy(const struct omr_outbound *ob)
{
        size_t n = 0;
        for (const struct delivery *d = ob ? ob->list : NULL; d; d = d->next)
                if (d->state != DLV_WAITING)
                        n++;
        return n;
}

void omr_outbound_free(struct omr_outbound *ob)
{
        if (ob == NULL)
                return;
        omr_store_free(ob->reader);
        ob->reader = NULL;
        /* Deliveries still here are waiting (backoff) or were cut short:
         * their entries stay pending and the next start takes them again. */
        while (ob->list) {
                struct delivery *d = ob->list;
                ob->list = d->next;
                delivery_release(d);
        }
        if (ob->read_ev)
                event_free(ob->read_ev);
        if (ob->claim_ev)
                event_free(ob->claim_ev);
        ob->magic = 0;
        free(ob);
}
