/* chat.c — the website chat connector (docs/connectors/chat.md):
 *   GET /v1/chat/ws?site=<site>   the visitors' websocket (ws.c)
 *   GET /chat/widget.js, /chat/   the widget and its demo page
 *
 * A session is one socket: hello → welcome (a signed token names the
 * visitor), message → ingest → ack. Everything the visitor is shown comes
 * from Redis: the store scripts publish each chat message (in and out,
 * with its log id) and lifecycle change on <prefix>chat; every daemon
 * subscribes and pushes to the sockets it holds for that conversation.
 * Resume reads the conversation log after the client's last id while live
 * pushes are held, then sends the held ones it did not already send: log
 * ids only grow, so "larger than the last sent" is the whole dedup.
 *
 * A session is owned by its socket; callbacks still in flight when the
 * socket closes hold a reference and the last one frees it. Loop thread
 * only. */
#include <errno.h>
#include <event2/event.h>
#include <glib.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/chat_store.h"
#include "omniroute/connector.h"
#include "omniroute/http.h"
#include "id.h"
#include "omniroute/log.h"
#include "omniroute/signature.h"
#include "omniroute/text.h"
#include "omniroute/timefmt.h"
#include "ws.h"

#define CHAT_MAGIC   0xc4a7u
#define SESS_MAGIC   0x5e55u
#define MAX_TEXT     4000 /* characters */
#define PAGE         200  /* log entries per history read */
#define MAX_HELD     1000 /* live pushes held during a replay */
#define TOKEN_PREFIX "v1."

extern const char omr_chat_widget_js[], omr_chat_index_html[];

struct chat {
        unsigned magic;
        struct omr_connector *c;
        GHashTable *by_conv; /* conversation id -> GPtrArray of struct sess * (borrowed) */
        struct sess *sessions;
        struct omr_pubsub *sub;
        struct pending_send *sends;
        struct event *sweep; /* chat.offline_email: once a second */
        bool stopping;
};

struct sess {
        unsigned magic;
        struct chat *ch;
        struct omr_ws *ws; /* NULL once closed */
        int refs;          /* the socket + callbacks in flight */
        char site[65], provider[80];
        char visitor[OMR_ID_LEN + 1];
        char conv[OMR_ID_LEN + 1]; /* "" until known */
        char *name, *email;
        bool hello_seen; /* a hello arrived (its lookup may still run) */
        bool hello_done; /* ... and was answered */
        bool replaying;
        bool replay_again; /* the subscription came back during a replay */
        char acked[4][48]; /* log ids of the visitor's own messages acked here */
        unsigned n_acked;
        char last_sent[48]; /* the largest log id pushed */
        json_t *held;       /* live pushes during a replay */
        struct sess *prev, *next;
};

/* --- log ids -------------------------------------------------------------- */

/* Stream ids "<ms>-<seq>" compare as number pairs. */
static int id_cmp(const char *a, const char *b)
{
        unsigned long long am = 0, as = 0, bm = 0, bs = 0;
        sscanf(a, "%llu-%llu", &am, &as);
        sscanf(b, "%llu-%llu", &bm, &bs);
        return am != bm ? (am < bm ? -1 : 1) : as != bs ? (as < bs ? -1 : 1) : 0;
}

static bool valid_id(const char *s)
{
        if (s == NULL || strlen(s) >= 40)
                return false;
        size_t a = strspn(s, "0123456789");
        return a > 0 && s[a] == '-' && s[a + 1] &&
               strspn(s + a + 1, "0123456789") == strlen(s + a + 1);
}

/* --- sessions ------------------------------------------------------------- */

static void sess_unref(struct sess *s)
{
        OMR_MAGIC_CHECK(s, SESS_MAGIC);
        if (--s->refs > 0)
                return;
        free(s->name);
        free(s->email);
        json_decref(s->held);
        s->magic = 0;
        free(s);
}

static void index_conv(struct sess *s, const char *conv)
{
        if (s->conv[0])
                return; /* one conversation per session */
        snprintf(s->conv, sizeof(s->conv), "%s", conv);
        GPtrArray *list = g_hash_table_lookup(s->ch->by_conv, s->conv);
        if (list == NULL) {
                list = g_ptr_array_new();
                g_hash_table_insert(s->ch->by_conv, g_strdup(s->conv), list);
        }
        g_ptr_array_add(list, s);
}

static void unindex_conv(struct sess *s)
{
        GPtrArray *list = s->conv[0] ? g_hash_table_lookup(s->ch->by_conv, s->conv) : NULL;
        if (list == NULL)
                return;
        g_ptr_array_remove_fast(list, s);
        if (list->len == 0)
                g_hash_table_remove(s->ch->by_conv, s->conv); /* frees key and list */
}

static void send_json(struct sess *s, json_t *j)
{
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (text && s->ws)
                omr_ws_send_text(s->ws, text, strlen(text));
        free(text);
}

static void send_error(struct sess *s, const char *code, const char *detail, const char *client_id)
{
        json_t *j = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "detail", detail);
        if (j && client_id)
                json_object_set_new(j, "client_id", json_string(client_id));
        send_json(s, j);
}

/* --- tokens: v1.<visitor>.<expiry ms>.<HMAC-SHA256 hex> ------------------------ */

static bool token_mac(const struct omr_conf *conf, const char *body, size_t len,
                      unsigned char mac[64], size_t *n)
{
        const void *parts[] = {body};
        const size_t lens[] = {len};
        *n = omr_hmac(OMR_HMAC_SHA256, conf->chat.secret, conf->chat.secret_len, parts, lens, 1,
                      mac);
        return *n != 0;
}

static char *token_new(const struct omr_conf *conf, const char *visitor)
{
        char body[96], hex[129];
        unsigned char mac[64];
        size_t n;
        snprintf(body, sizeof(body), TOKEN_PREFIX "%s.%lld", visitor,
                 (long long)(omr_now_ms() + conf->chat.session_ttl_ms));
        if (!token_mac(conf, body, strlen(body), mac, &n))
                return NULL;
        omr_hex_encode(mac, n, hex);
        char *t = NULL;
        if (asprintf(&t, "%s.%s", body, hex) < 0)
                return NULL;
        return t;
}

/* The visitor a valid, unexpired token names. */
static bool token_check(const struct omr_conf *conf, const char *t, char visitor[OMR_ID_LEN + 1])
{
        const char *mac_dot = t ? strrchr(t, '.') : NULL;
        if (mac_dot == NULL || strncmp(t, TOKEN_PREFIX, 3) != 0 || strlen(t) > 200)
                return false;
        unsigned char mac[64];
        size_t n;
        if (!token_mac(conf, t, (size_t)(mac_dot - t), mac, &n) ||
            !omr_hex_equal(mac_dot + 1, strlen(mac_dot + 1), mac, n))
                return false;
        long long exp = 0;
        char id[OMR_ID_LEN + 2];
        if (sscanf(t + 3, "%27[0-9A-Z].%lld", id, &exp) != 2 || strlen(id) != OMR_ID_LEN ||
            exp < omr_now_ms())
                return false;
        memcpy(visitor, id, OMR_ID_LEN + 1);
        return true;
}

/* --- pushes ------------------------------------------------------------------ */

/* {id, name}: the name when the configuration has the agent. */
static json_t *agent_json(const struct omr_conf *conf, const char *id)
{
        const struct omr_conf_agent *a = id ? omr_conf_agent(conf, id) : NULL;
        json_t *j = json_pack("{s:s?}", "id", id);
        if (j && a && a->name)
                json_object_set_new(j, "name", json_string(a->name));
        return j;
}

/* The client's shape of a published chat message. */
static json_t *client_message(const struct omr_conf *conf, const json_t *pub)
{
        const json_t *m = json_object_get(pub, "message");
        const char *dir = json_string_value(json_object_get(pub, "direction"));
        json_t *j = json_pack("{s:s, s:O?, s:s, s:O?}", "type", "message", "id",
                              json_object_get(pub, "id"), "direction", dir ? dir : "in", "text",
                              json_object_get(m, "text"));
        if (j == NULL)
                return NULL;
        const json_t *at = json_object_get(m, "received_at");
        if (at == NULL)
                at = json_object_get(m, "sent_at");
        json_object_set(j, "at", at ? (json_t *)at : json_null());
        if (dir && strcmp(dir, "out") == 0) {
                json_object_set_new(
                        j, "agent",
                        agent_json(conf, json_string_value(json_object_get(m, "agent_id"))));
        } else {
                /* external_id is "<visitor>:<client id>" */
                const char *ext = json_string_value(json_object_get(m, "external_id"));
                const char *colon = ext ? strchr(ext, ':') : NULL;
                if (colon)
                        json_object_set_new(j, "client_id", json_string(colon + 1));
        }
        return j;
}

/* Sends one published push to a session, once: messages carry their log id
 * and anything not newer than the last one sent was sent already. */
static void push(struct sess *s, const json_t *pub)
{
        const char *type = json_string_value(json_object_get(pub, "type"));
        if (type == NULL || s->ws == NULL)
                return;
        if (strcmp(type, "message") == 0) {
                const char *id = json_string_value(json_object_get(pub, "id"));
                if (!valid_id(id) || (s->last_sent[0] && id_cmp(id, s->last_sent) <= 0))
                        return;
                for (unsigned k = 0; k < 4 && k < s->n_acked; k++)
                        if (strcmp(s->acked[k], id) == 0) {
                                snprintf(s->last_sent, sizeof(s->last_sent), "%s", id);
                                return;
                        }
                snprintf(s->last_sent, sizeof(s->last_sent), "%s", id);
                send_json(s, client_message(omr_core_conf(s->ch->c->core), pub));
                const char *dir = json_string_value(json_object_get(pub, "direction"));
                if (dir && strcmp(dir, "out") == 0)
                        omr_chat_seen(s->ch->c->core, s->conv, id);
                return;
        }
        const char *agent = json_string_value(json_object_get(pub, "agent_id"));
        json_t *j = json_pack("{s:s}", "type", type);
        if (j && agent && *agent)
                json_object_set_new(j, "agent", agent_json(omr_core_conf(s->ch->c->core), agent));
        send_json(s, j);
}

static void replay(struct sess *s, const char *after);

static void end_replay(struct sess *s)
{
        s->replaying = false;
        if (s->replay_again) { /* what was published while unsubscribed */
                s->replay_again = false;
                replay(s, s->last_sent);
                return;
        }
        for (size_t i = 0; i < json_array_size(s->held); i++)
                push(s, json_array_get(s->held, i));
        json_array_clear(s->held);
}

static void on_history(bool ok, const struct omr_chat_entry *e, size_t n, void *arg)
{
        struct sess *s = arg;
        if (s->ws == NULL) {
                sess_unref(s);
                return;
        }
        if (!ok) {
                send_error(s, "history_unavailable",
                           "earlier messages could not be read; reconnect to retry", NULL);
                end_replay(s);
                sess_unref(s);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                if (e[i].direction == NULL || e[i].message == NULL)
                        continue;
                json_t *m = json_loads(e[i].message, 0, NULL);
                json_t *pub =
                        json_pack("{s:s, s:s, s:s, s:o}", "type", "message", "id", e[i].id,
                                  "direction", e[i].direction, "message", m ? m : json_object());
                if (pub)
                        push(s, pub);
                json_decref(pub);
        }
        if (n == PAGE) {
                char after[48];
                snprintf(after, sizeof(after), "%s", e[n - 1].id);
                sess_unref(s);
                replay(s, after);
                return;
        }
        end_replay(s);
        sess_unref(s);
}

/* Sends the conversation's messages after `after`, holding live pushes
 * meanwhile. */
static void replay(struct sess *s, const char *after)
{
        s->replaying = true;
        s->refs++;
        if (omr_chat_history(s->ch->c->core, s->conv, after, PAGE, on_history, s) != 0) {
                s->refs--;
                send_error(s, "history_unavailable",
                           "earlier messages could not be read; reconnect to retry", NULL);
                end_replay(s);
        }
}

static void on_published(const char *payload, size_t len, void *arg)
{
        struct chat *ch = arg;
        OMR_MAGIC_CHECK(ch, CHAT_MAGIC);
        json_t *pub = json_loadb(payload, len, 0, NULL);
        const char *conv = json_string_value(json_object_get(pub, "conversation_id"));
        GPtrArray *list = conv ? g_hash_table_lookup(ch->by_conv, conv) : NULL;
        for (guint i = 0; list && i < list->len; i++) {
                struct sess *s = g_ptr_array_index(list, i);
                if (!s->replaying)
                        push(s, pub);
                else if (json_array_size(s->held) < MAX_HELD)
                        json_array_append(s->held, pub);
        }
        json_decref(pub);
}

/* The subscription was down: whatever was published meanwhile is in the
 * logs. */
static void on_subscribed(void *arg)
{
        struct chat *ch = arg;
        for (struct sess *s = ch->sessions; s; s = s->next) {
                if (!s->conv[0] || !s->hello_done)
                        continue;
                if (s->replaying)
                        s->replay_again = true;
                else
                        replay(s, s->last_sent);
        }
}

/* --- hello --------------------------------------------------------------------- */

static json_t *expected_reply(const struct omr_conf *conf)
{
        const struct omr_conf_sla_policy *p =
                omr_conf_sla_for(conf, OMR_CHANNEL_CHAT, conf->routing.default_queue,
                                 conf->routing.default_priority);
        if (p == NULL || p->first_response_ms <= 0)
                return json_null();
        int64_t now = omr_now_ms();
        int64_t due = p->calendar ? omr_calendar_add(p->calendar, now, p->first_response_ms)
                                  : now + p->first_response_ms;
        char at[OMR_TIME_LEN + 1];
        omr_time_format(due, at);
        return json_pack("{s:I, s:s}", "seconds", (json_int_t)((due - now + 999) / 1000), "due",
                         at);
}

static void on_lookup(bool ok, const char *conv, long long online, void *arg)
{
        struct sess *s = arg;
        if (s->ws == NULL) {
                sess_unref(s);
                return;
        }
        const struct omr_conf *conf = omr_core_conf(s->ch->c->core);
        char *token = token_new(conf, s->visitor);
        if (!ok || token == NULL) {
                free(token);
                send_error(s, "store_unavailable", "the service is unavailable; reconnect later",
                           NULL);
                omr_ws_close(s->ws, 1011, "store unavailable");
                sess_unref(s);
                return;
        }
        if (conv)
                index_conv(s, conv);
        s->hello_done = true;
        json_t *w = json_pack("{s:s, s:s, s:s, s:o?, s:b, s:o}", "type", "welcome", "token", token,
                              "visitor_id", s->visitor, "conversation_id",
                              conv ? json_string(conv) : json_null(), "agents_online", online > 0,
                              "expected_reply", expected_reply(conf));
        free(token);
        send_json(s, w);
        if (conv)
                replay(s, s->last_sent);
        sess_unref(s);
}

static char *bounded_string(const json_t *j, size_t max)
{
        const char *v = json_string_value(j);
        if (v == NULL || strlen(v) > max)
                return NULL;
        return omr_text_trim(v);
}

static void on_hello(struct sess *s, const json_t *msg)
{
        const struct omr_conf *conf = omr_core_conf(s->ch->c->core);
        if (s->hello_seen) {
                send_error(s, "repeated_hello", "hello is sent once per connection", NULL);
                return;
        }
        s->hello_seen = true;
        const char *token = json_string_value(json_object_get(msg, "token"));
        if (token && !token_check(conf, token, s->visitor)) {
                send_error(s, "bad_token",
                           "the session token is invalid or expired: a new "
                           "session starts",
                           NULL);
                token = NULL;
        }
        if (token == NULL)
                omr_id_new(s->visitor);
        const char *last = json_string_value(json_object_get(msg, "last_id"));
        if (token && valid_id(last))
                snprintf(s->last_sent, sizeof(s->last_sent), "%s", last);
        s->name = bounded_string(json_object_get(msg, "name"), 200);
        s->email = bounded_string(json_object_get(msg, "email"), 254);
        if (s->email && (strchr(s->email, '@') == NULL || strpbrk(s->email, " <>\r\n"))) {
                free(s->email);
                s->email = NULL;
        }
        s->refs++;
        if (omr_chat_lookup(s->ch->c->core, s->provider, s->visitor, on_lookup, s) != 0) {
                s->refs--;
                send_error(s, "store_unavailable", "the service is unavailable; reconnect later",
                           NULL);
                omr_ws_close(s->ws, 1011, "store unavailable");
        }
}

/* --- message ------------------------------------------------------------------- */

struct sent {
        struct sess *s;
        char *client_id;
};

static void on_stored(const struct omr_ingest_result *res, void *arg)
{
        struct sent *x = arg;
        struct sess *s = x->s;
        if (s->ws && res->status == OMR_INGEST_UNAVAILABLE) {
                send_error(s, "store_unavailable",
                           "the message was not stored; it will be sent again", x->client_id);
        } else if (s->ws) {
                if (s->conv[0] == '\0' && res->conversation_id)
                        index_conv(s, res->conversation_id);
                json_t *ack = json_pack("{s:s, s:s, s:s, s:s}", "type", "ack", "client_id",
                                        x->client_id, "message_id",
                                        res->message_id ? res->message_id : "", "conversation_id",
                                        res->conversation_id ? res->conversation_id : "");
                if (ack && res->log_id) {
                        json_object_set_new(ack, "id", json_string(res->log_id));
                        /* The visitor has it: its published copy is not sent
                         * back. last_sent stays: a reply logged just before
                         * may still be on its way from the subscription. */
                        snprintf(s->acked[s->n_acked++ % 4], sizeof(s->acked[0]), "%s",
                                 res->log_id);
                }
                send_json(s, ack);
        }
        free(x->client_id);
        free(x);
        sess_unref(s);
}

static void on_message(struct sess *s, const json_t *msg)
{
        const char *cid = json_string_value(json_object_get(msg, "client_id"));
        const char *text = json_string_value(json_object_get(msg, "text"));
        if (cid == NULL || *cid == '\0' || strlen(cid) > 64 || strpbrk(cid, ": \t\r\n")) {
                send_error(s, "bad_client_id",
                           "client_id must be 1-64 characters, no ':' or "
                           "white space",
                           NULL);
                return;
        }
        char *trimmed = text ? omr_text_trim(text) : NULL;
        if (trimmed == NULL || *trimmed == '\0' || g_utf8_strlen(trimmed, -1) > MAX_TEXT) {
                bool empty = trimmed == NULL || *trimmed == '\0';
                free(trimmed);
                send_error(s, empty ? "bad_text" : "message_too_long",
                           empty ? "text is required" : "text must be at most 4000 characters",
                           cid);
                return;
        }
        struct omr_message *m = omr_message_new();
        struct sent *x = calloc(1, sizeof(*x));
        if (m == NULL || x == NULL) {
                free(trimmed);
                omr_message_free(m);
                free(x);
                send_error(s, "store_unavailable", "out of memory", cid);
                return;
        }
        m->channel = OMR_CHANNEL_CHAT;
        m->provider = strdup(s->provider);
        /* Dedup: a client re-sending an unacknowledged message after a
         * reconnect stores it once. */
        if (asprintf(&m->external_id, "%s:%s", s->visitor, cid) < 0)
                m->external_id = NULL;
        m->customer.id = strdup(s->visitor);
        m->customer.name = s->name ? strdup(s->name) : NULL;
        m->customer.handle = s->email ? strdup(s->email) : NULL;
        m->to = strdup(s->site);
        m->text = trimmed;
        x->s = s;
        x->client_id = strdup(cid);
        if (!m->provider || !m->external_id || !m->customer.id || !m->to || !x->client_id) {
                omr_message_free(m);
                free(x->client_id);
                free(x);
                send_error(s, "store_unavailable", "out of memory", cid);
                return;
        }
        s->refs++;
        omr_ingest(s->ch->c->core, m, on_stored, x);
}

/* --- the socket ---------------------------------------------------------------- */

static void on_text(struct omr_ws *ws, const char *text, size_t len, void *arg)
{
        struct sess *s = arg;
        OMR_MAGIC_CHECK(s, SESS_MAGIC);
        json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
        const char *type = json_string_value(json_object_get(msg, "type"));
        if (type == NULL) {
                json_decref(msg);
                omr_ws_close(ws, 1008, "not a JSON object with a type");
                return;
        }
        if (strcmp(type, "hello") == 0)
                on_hello(s, msg);
        else if (!s->hello_done)
                omr_ws_close(ws, 1008, "hello first");
        else if (strcmp(type, "message") == 0)
                on_message(s, msg);
        else if (strcmp(type, "typing") != 0)
                omr_ws_close(ws, 1008, "unknown message type");
        json_decref(msg);
}

static void on_closed(struct omr_ws *ws, void *arg)
{
        struct sess *s = arg;
        (void)ws;
        OMR_MAGIC_CHECK(s, SESS_MAGIC);
        struct chat *ch = s->ch;
        unindex_conv(s);
        if (s->prev)
                s->prev->next = s->next;
        else
                ch->sessions = s->next;
        if (s->next)
                s->next->prev = s->prev;
        s->ws = NULL;
        sess_unref(s);
}

static const struct omr_ws_handler handler = {.on_text = on_text, .on_close = on_closed};

struct opening {
        struct chat *ch;
        char site[65];
};

static void on_opened(struct omr_ws *ws, void *arg)
{
        struct opening *o = arg;
        struct chat *ch = o->ch;
        struct sess *s = calloc(1, sizeof(*s));
        if (s == NULL || (s->held = json_array()) == NULL || ch->stopping) {
                if (s)
                        json_decref(s->held);
                free(s);
                free(o);
                omr_ws_close(ws, ch->stopping ? 1001 : 1011, "unavailable");
                return;
        }
        s->magic = SESS_MAGIC;
        s->ch = ch;
        s->ws = ws;
        s->refs = 1;
        snprintf(s->site, sizeof(s->site), "%s", o->site);
        snprintf(s->provider, sizeof(s->provider), "chat:%s", o->site);
        free(o);
        s->next = ch->sessions;
        if (ch->sessions)
                ch->sessions->prev = s;
        ch->sessions = s;
        omr_ws_set_handler(ws, &handler, s);
}

static void on_ws(struct omr_http_request *req, void *arg)
{
        struct chat *ch = arg;
        const struct omr_conf *conf = omr_core_conf(ch->c->core);
        const char *site = omr_http_query(req, "site");
        const struct omr_conf_chat_site *cs = omr_conf_chat_site(conf, site);
        if (cs == NULL || conf->chat.secret == NULL) {
                omr_http_reply_error(req, 404, "unknown_site", "no chat site of that name");
                return;
        }
        const char *origin = omr_http_header(req, "Origin");
        bool allowed = false;
        for (size_t i = 0; origin && i < cs->n_origins; i++)
                allowed |= strcmp(origin, cs->origins[i]) == 0;
        if (!allowed) {
                omr_http_reply_error(req, 403, "bad_origin", "Origin %.200s may not open site %s",
                                     origin ? origin : "(none)", cs->name);
                return;
        }
        struct opening *o = calloc(1, sizeof(*o));
        if (o == NULL) {
                omr_http_reply_error(req, 503, "out_of_memory", "try again");
                return;
        }
        o->ch = ch;
        snprintf(o->site, sizeof(o->site), "%s", cs->name);
        struct omr_ws_limits lim = {.max_message = conf->chat.max_message,
                                    .ping_ms = conf->chat.ping_ms};
        if (!omr_ws_handshake(req, omr_core_base(ch->c->core), &lim, on_opened, free, o))
                free(o);
}

static void on_widget(struct omr_http_request *req, void *arg)
{
        (void)arg;
        omr_http_set_header(req, "Cache-Control", "public, max-age=300");
        omr_http_reply(req, 200, "application/javascript; charset=utf-8", omr_chat_widget_js,
                       strlen(omr_chat_widget_js));
}

static void on_page(struct omr_http_request *req, void *arg)
{
        (void)arg;
        omr_http_reply(req, 200, "text/html; charset=utf-8", omr_chat_index_html,
                       strlen(omr_chat_index_html));
}

/* --- send: replies are published by the store (reply_finish.lua) ---------------- */

struct pending_send {
        struct chat *ch;
        struct event *ev;
        omr_send_done_fn done;
        void *arg;
        struct pending_send *next;
};

static void send_report(struct pending_send *p)
{
        for (struct pending_send **pp = &p->ch->sends; *pp; pp = &(*pp)->next) {
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        }
        struct omr_send_result res = {.status = OMR_SEND_SENT, .retry_after_ms = -1};
        omr_send_done_fn done = p->done;
        void *arg = p->arg;
        event_free(p->ev);
        free(p);
        done(&res, arg);
}

static void on_send_later(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        send_report(arg);
}

/* Nothing to call: the reply is "sent" once it is in the conversation log,
 * which publishes it to every daemon's sockets (and a visitor who is away
 * gets it on resume). */
static int chat_send(struct omr_connector *c, const struct omr_reply *r, omr_send_done_fn done,
                     void *arg)
{
        struct chat *ch = c->priv;
        (void)r;
        struct pending_send *p = calloc(1, sizeof(*p));
        if (p == NULL)
                return -ENOMEM;
        p->ch = ch;
        p->done = done;
        p->arg = arg;
        p->ev = evtimer_new(omr_core_base(c->core), on_send_later, p);
        const struct timeval now = {0, 0};
        if (p->ev == NULL || evtimer_add(p->ev, &now) != 0) {
                if (p->ev)
                        event_free(p->ev);
                free(p);
                return -ENOMEM;
        }
        p->next = ch->sends;
        ch->sends = p;
        return 0;
}

/* --- the connector ----------------------------------------------------------------- */

static int chat_init(struct omr_connector *c, const struct omr_conf *conf)
{
        (void)conf;
        struct chat *ch = calloc(1, sizeof(*ch));
        if (ch == NULL)
                return -ENOMEM;
        ch->magic = CHAT_MAGIC;
        ch->c = c;
        ch->by_conv = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                            (GDestroyNotify)g_ptr_array_unref);
        c->priv = ch;
        return 0;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
        struct chat *ch = arg;
        (void)fd;
        (void)what;
        omr_chat_offline_sweep(ch->c->core);
}

static int chat_start(struct omr_connector *c)
{
        struct chat *ch = c->priv;
        struct omr_http *h = omr_core_http(c->core);
        int rc;
        if ((rc = omr_http_route(h, "GET", "/v1/chat/ws", on_ws, ch)) ||
            (rc = omr_http_route(h, "GET", "/chat/widget.js", on_widget, ch)) ||
            (rc = omr_http_route(h, "GET", "/chat/", on_page, ch)))
                return rc;
        if (omr_core_conf(c->core)->chat.n_sites == 0)
                return 0; /* no sites: the socket answers 404, nothing to subscribe to */
        ch->sub = omr_chat_subscribe(c->core, on_published, on_subscribed, ch);
        /* Every daemon sweeps; the script hands each reply out once. The
         * setting is read at each tick, so a reload may turn it on. */
        ch->sweep = event_new(omr_core_base(c->core), -1, EV_PERSIST, on_sweep, ch);
        const struct timeval second = {1, 0};
        if (ch->sweep == NULL || event_add(ch->sweep, &second) != 0)
                return -ENOMEM;
        return ch->sub ? 0 : -ENOMEM;
}

static void chat_stop(struct omr_connector *c)
{
        struct chat *ch = c->priv;
        ch->stopping = true;
        /* Visitors reconnect (and resume) to another daemon, or to this one
         * once it is back. */
        while (ch->sessions)
                omr_ws_shutdown(ch->sessions->ws, 1001, "server restarting");
        while (ch->sends)
                send_report(ch->sends);
        omr_pubsub_free(ch->sub);
        ch->sub = NULL;
        if (ch->sweep)
                event_free(ch->sweep);
        ch->sweep = NULL;
}

static void chat_free(struct omr_connector *c)
{
        struct chat *ch = c->priv;
        if (!ch->stopping)
                chat_stop(c);
        g_hash_table_destroy(ch->by_conv);
        ch->magic = 0;
        free(ch);
        c->priv = NULL;
}

const struct omr_connector_ops omr_chat_connector = {
        .name = "chat",
        .channel = OMR_CHANNEL_CHAT,
        .init = chat_init,
        .start = chat_start,
        .send = chat_send,
        .max_text = MAX_TEXT,
        .stop = chat_stop,
        .free = chat_free,
};
