/* replies_api.c — the agent tools' HTTP entry to the outbound path:
 *   POST /v1/conversations/{id}/replies           queue a reply (202)
 *   GET  /v1/conversations/{id}/replies/{reply}   its delivery state
 * Both need "Authorization: Bearer <token>" with a token from api.tokens.
 * Delivery itself is outbound.c's job; this only validates and queues.
 * Loop thread only. */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_priv.h"
#include "omniroute/http.h"
#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/timefmt.h"

extern const char omr_reply_enqueue_lua[];

#define IDEM_TTL_S (7 * 86400)

static struct omr_script enqueue_script;

struct enqueue {
        struct omr_http_request *req;
        struct omr_core *core;
        char *token_name, *conv, *agent, *text, *idem;
};

static void enqueue_free(struct enqueue *e)
{
        free(e->token_name);
        free(e->conv);
        free(e->agent);
        free(e->text);
        free(e->idem);
        free(e);
}

static void unavailable(struct omr_http_request *req, const char *error)
{
        omr_http_reply_unavailable(req, "store_unavailable", "the reply was not queued (%s)",
                                   error);
}

const struct omr_conf_token *omr_api_token(struct omr_core *core, struct omr_http_request *req)
{
        const char *h = omr_http_header(req, "Authorization");
        const struct omr_conf_token *t = NULL;
        if (h && strncmp(h, "Bearer ", 7) == 0)
                t = omr_conf_token_find(core->conf, h + 7);
        if (t == NULL) {
                omr_metrics_inc(core->metrics, OMR_M_REJECTED, "api", "unauthorized");
                omr_http_set_header(req, "WWW-Authenticate", "Bearer");
                omr_http_reply_error(req, 401, "unauthorized",
                                     h ? "the bearer token is not valid"
                                       : "Authorization: Bearer <token> is required");
        }
        return t;
}

const char *omr_api_authorize(struct omr_core *core, struct omr_http_request *req)
{
        const struct omr_conf_token *t = omr_api_token(core, req);
        return t ? t->name : NULL;
}

bool omr_api_may_act_as(struct omr_core *core, struct omr_http_request *req,
                        const struct omr_conf_token *t, const char *agent)
{
        if (t->agent == NULL || (agent && strcmp(t->agent, agent) == 0))
                return true;
        omr_metrics_inc(core->metrics, OMR_M_REJECTED, "api", "forbidden");
        omr_http_reply_error(req, 403, "forbidden",
                             agent ? "token '%s' acts only as agent %s"
                                   : "token '%s' is bound to "
                                     "agent %s: use an "
                                     "unbound token",
                             t->name, t->agent);
        return false;
}

bool omr_api_valid_id(const char *s)
{
        size_t n = strlen(s);
        return n >= 1 && n <= 64 && strspn(s, "0123456789ABCDEFGHJKMNPQRSTVWXYZ-") == n;
}

static void on_enqueued(const redisReply *r, const char *error, void *arg)
{
        struct enqueue *e = arg;
        if (error || r->type == REDIS_REPLY_ERROR) {
                unavailable(e->req, error ? error : r->str);
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                   strcmp(r->element[0]->str, "no_conversation") == 0) {
                omr_http_reply_error(e->req, 404, "unknown_conversation", "no conversation %s",
                                     e->conv);
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
                bool dup = strcmp(r->element[0]->str, "duplicate") == 0;
                omr_log(LOG_INFO, "replies", "reply %s reply=%s conversation=%s agent=%s tool=%s",
                        dup ? "repeated" : "queued", r->element[1]->str, e->conv, e->agent,
                        e->token_name);
                json_t *j = json_pack("{s:s, s:s, s:b}", "reply_id", r->element[1]->str, "status",
                                      "queued", "duplicate", dup);
                omr_http_reply_json_take(e->req, 202, j);
        } else {
                unavailable(e->req, "unexpected store reply");
        }
        enqueue_free(e);
}

static void enqueue_now(struct enqueue *e)
{
        const struct omr_conf *conf = e->core->conf;
        char *conv_key = NULL, *outbox = NULL, *idem_key = NULL, now[24], ttl[24];
        snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
        snprintf(ttl, sizeof(ttl), "%d", IDEM_TTL_S);
        int rc = -1;
        if (asprintf(&conv_key, "%sconv:{%s}", conf->redis.prefix, e->conv) > 0 &&
            asprintf(&outbox, "%soutbox", conf->redis.prefix) > 0 &&
            asprintf(&idem_key, "%sidem:%s:%s", conf->redis.prefix, e->token_name,
                     e->idem ? e->idem : "-") > 0) {
                const char *argv[] = {conv_key, outbox,   idem_key,     conf->redis.prefix,
                                      e->conv,  e->agent, e->text,      e->idem ? "1" : "0",
                                      ttl,      now,      e->token_name};
                rc = omr_store_eval(e->core->store, &enqueue_script, on_enqueued, e, 3, 8, argv,
                                    NULL);
        }
        free(conv_key);
        free(outbox);
        free(idem_key);
        if (rc != 0) {
                unavailable(e->req, "redis is not connected");
                enqueue_free(e);
        }
}

/* First look: which channel, so the text can be checked against what that
 * provider takes before anything is queued. */
static void on_provider(const redisReply *r, const char *error, void *arg)
{
        struct enqueue *e = arg;
        if (error || r->type == REDIS_REPLY_ERROR) {
                unavailable(e->req, error ? error : r->str);
                enqueue_free(e);
                return;
        }
        if (r->type != REDIS_REPLY_STRING) {
                omr_http_reply_error(e->req, 404, "unknown_conversation", "no conversation %s",
                                     e->conv);
                enqueue_free(e);
                return;
        }
        struct omr_connector *c = omr_core_connector_for(e->core, r->str);
        if (c == NULL || c->ops->send == NULL) {
                omr_http_reply_error(e->req, 422, "channel_cannot_reply",
                                     "conversations from %s cannot be answered through omniroute",
                                     r->str);
                enqueue_free(e);
                return;
        }
        long chars = g_utf8_strlen(e->text, -1);
        if (c->ops->max_text && (size_t)chars > c->ops->max_text) {
                omr_http_reply_error(e->req, 422, "text_too_long",
                                     "%ld characters; %s takes at most %zu", chars, c->ops->name,
                                     c->ops->max_text);
                enqueue_free(e);
                return;
        }
        enqueue_now(e);
}

static void h_post_reply(struct omr_http_request *req, void *arg)
{
        struct omr_core *core = arg;
        const struct omr_conf_token *tok = omr_api_token(core, req);
        if (tok == NULL)
                return;
        const char *token = tok->name;
        const char *conv = omr_http_param(req, "id");
        if (!omr_api_valid_id(conv)) {
                omr_http_reply_error(req, 404, "unknown_conversation", "not a conversation id");
                return;
        }
        size_t len;
        const char *body = omr_http_body(req, &len);
        json_error_t je;
        json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(j)) {
                omr_http_reply_error(req, 400, "bad_json", "the body must be a JSON object (%s)",
                                     j ? "not an object" : je.text);
                json_decref(j);
                return;
        }
        const char *agent = json_string_value(json_object_get(j, "agent_id"));
        const char *text = json_string_value(json_object_get(j, "text"));
        const char *idem = json_string_value(json_object_get(j, "idempotency_key"));
        if (idem == NULL)
                idem = omr_http_header(req, "Idempotency-Key");
        const char *missing = !agent || !*agent ? "agent_id" : !text || !*text ? "text" : NULL;
        if (missing || strlen(agent) > 128 || (idem && (strlen(idem) == 0 || strlen(idem) > 128))) {
                omr_http_reply_error(
                        req, 400, missing ? "missing_field" : "invalid_field",
                        missing ? "'%s' is required" : "'%s' must be 1-128 characters",
                        missing ? missing : (strlen(agent) > 128 ? "agent_id" : "idempotency_key"));
                json_decref(j);
                return;
        }
        if (strcmp(agent, "omnirouted") == 0) {
                /* The daemon's own messages (acknowledgements, surveys)
                 * use it; an agent's reply must not pass for one. */
                omr_http_reply_error(req, 400, "invalid_field",
                                     "'agent_id' omnirouted is reserved");
                json_decref(j);
                return;
        }
        if (!omr_api_may_act_as(core, req, tok, agent)) {
                json_decref(j);
                return;
        }
        struct enqueue *e = calloc(1, sizeof(*e));
        if (e) {
                e->req = req;
                e->core = core;
                e->token_name = strdup(token);
                e->conv = strdup(conv);
                e->agent = strdup(agent);
                e->text = strdup(text);
                e->idem = idem ? strdup(idem) : NULL;
        }
        json_decref(j);
        char *key = NULL;
        if (e == NULL || !e->text || !e->agent || !e->conv || !e->token_name ||
            asprintf(&key, "%sconv:{%s}", core->conf->redis.prefix, conv) < 0) {
                if (e)
                        enqueue_free(e);
                unavailable(req, "out of memory");
                return;
        }
        const char *argv[] = {"HGET", key, "provider"};
        int rc = core->store ? omr_store_command(core->store, on_provider, e, 3, argv, NULL) : -1;
        free(key);
        if (rc != 0) {
                unavailable(req, "redis is not connected");
                enqueue_free(e);
        }
}

static void on_reply_state(const redisReply *r, const char *error, void *arg)
{
        struct omr_http_request *req = arg;
        if (error || r->type == REDIS_REPLY_ERROR) {
                unavailable(req, error ? error : r->str);
                return;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
                omr_http_reply_error(req, 404, "unknown_reply", "no such reply");
                return;
        }
        json_t *j = json_object();
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
                const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
                if (!k || !v)
                        continue;
                if (strcmp(k, "attempts") == 0)
                        json_object_set_new(j, k, json_integer(strtoll(v, NULL, 10)));
                else if (strcmp(k, "created_at") && strcmp(k, "updated_at"))
                        json_object_set_new(j, k, json_string(v));
        }
        omr_http_reply_json_take(req, 200, j);
}

static void h_get_reply(struct omr_http_request *req, void *arg)
{
        struct omr_core *core = arg;
        if (omr_api_authorize(core, req) == NULL)
                return;
        const char *conv = omr_http_param(req, "id"), *reply = omr_http_param(req, "reply");
        char *key = NULL;
        if (!omr_api_valid_id(conv) || !omr_api_valid_id(reply)) {
                omr_http_reply_error(req, 404, "unknown_reply", "no such reply");
                return;
        }
        if (asprintf(&key, "%sconv:{%s}:reply:%s", core->conf->redis.prefix, conv, reply) < 0) {
                unavailable(req, "out of memory");
                return;
        }
        const char *argv[] = {"HGETALL", key};
        int rc = core->store ? omr_store_command(core->store, on_reply_state, req, 2, argv, NULL)
                             : -1;
        free(key);
        if (rc != 0)
                unavailable(req, "redis is not connected");
}

static void on_typing_published(const redisReply *r, const char *error, void *arg)
{
        struct omr_http_request *req = arg;
        if (error || r->type == REDIS_REPLY_ERROR)
                omr_http_reply_unavailable(req, "store_unavailable", "not published (%s)",
                                           error ? error : r->str);
        else
                omr_http_reply(req, 204, "application/json", "", 0);
}

/* POST /v1/conversations/{id}/typing {"agent_id"}: "an agent is typing",
 * shown in the visitor's chat (connectors/chat/chat.c). Nothing is stored. */
static void h_post_typing(struct omr_http_request *req, void *arg)
{
        struct omr_core *core = arg;
        const struct omr_conf_token *tok = omr_api_token(core, req);
        if (tok == NULL)
                return;
        const char *conv = omr_http_param(req, "id");
        size_t len;
        const char *body = omr_http_body(req, &len);
        json_t *j = json_loadb(body ? body : "", len, 0, NULL);
        const char *agent = json_string_value(json_object_get(j, "agent_id"));
        if (!omr_api_valid_id(conv) || agent == NULL || !omr_conf_valid_agent_id(agent)) {
                json_decref(j);
                omr_http_reply_error(req, 400, "bad_request",
                                     "a conversation id and {\"agent_id\": …} are required");
                return;
        }
        if (!omr_api_may_act_as(core, req, tok, agent)) {
                json_decref(j);
                return;
        }
        json_t *msg = json_pack("{s:s, s:s, s:s}", "type", "typing", "conversation_id", conv,
                                "agent_id", agent);
        json_decref(j);
        char *payload = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
        json_decref(msg);
        char *channel = NULL;
        if (asprintf(&channel, "%schat", core->conf->redis.prefix) < 0)
                channel = NULL;
        const char *argv[] = {"PUBLISH", channel, payload};
        int rc = payload && channel && core->store
                         ? omr_store_command(core->store, on_typing_published, req, 3, argv, NULL)
                         : -ENOTCONN;
        free(payload);
        free(channel);
        if (rc != 0)
                omr_http_reply_unavailable(req, "store_unavailable", "Redis is not connected");
}

int omr_replies_api_start(struct omr_core *core)
{
        int rc;
        omr_script_init(&enqueue_script, omr_reply_enqueue_lua);
        if ((rc = omr_http_route(core->http, "POST", "/v1/conversations/{id}/replies", h_post_reply,
                                 core)) != 0)
                return rc;
        if ((rc = omr_http_route(core->http, "POST", "/v1/conversations/{id}/typing", h_post_typing,
                                 core)) != 0)
                return rc;
        return omr_http_route(core->http, "GET", "/v1/conversations/{id}/replies/{reply}",
                              h_get_reply, core);
}
