/* agents_api.c — the agents' HTTP API (docs/routing.md):
 *   PUT/DELETE/GET /v1/agents/{id}, GET /v1/agents     the registry
 *   POST /v1/agents/{id}/presence                      presence + heartbeat
 *   POST /v1/agents/{id}/claim                         next conversation
 *   GET  /v1/conversations/{id}                        state + last messages
 *   POST /v1/conversations/{id}/{accept,decline,resolve,transfer}
 * Every decision runs in a Redis script (agent.lua, claim.lua,
 * conv_action.lua); this file validates input, shapes JSON and kicks the
 * dispatcher when capacity or work appeared. Loop thread only. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_priv.h"
#include "omniroute/http.h"
#include "omniroute/log.h"
#include "omniroute/timefmt.h"

enum op { OP_PUT, OP_PUT_DONE, OP_DELETE, OP_GET, OP_LIST, OP_PRESENCE, OP_CLAIM, OP_SHOW, OP_ACT };

struct call {
        struct omr_http_request *req;
        struct omr_core *core;
        enum op op;
        char *id; /* agent or conversation */
};

static void unavailable(struct omr_http_request *req, const char *why)
{
        omr_http_reply_unavailable(req, "store_unavailable", "nothing was changed (%s)", why);
}

static void call_free(struct call *c)
{
        free(c->id);
        free(c);
}

/* --- JSON shapes ------------------------------------------------------------- */

static json_t *parsed_list(const char *s)
{
        json_t *j = json_loads(s, 0, NULL);
        if (!json_is_array(j)) {
                json_decref(j);
                return json_array();
        }
        return j;
}

static bool is_time_field(const char *k)
{
        size_t n = strlen(k);
        return n > 3 && strcmp(k + n - 3, "_at") == 0;
}

/* A flat HGETALL reply as an agent object (docs/routing.md). */
static json_t *agent_json(const redisReply *flat)
{
        json_t *a = json_object(), *cap = json_object(), *load = json_object();
        json_object_set_new(a, "load_total", json_integer(0));
        json_object_set_new(a, "presence_expires_at", json_null());
        for (size_t i = 0; i + 1 < flat->elements; i += 2) {
                const char *k = flat->element[i]->str, *v = flat->element[i + 1]->str;
                if (k == NULL || v == NULL)
                        continue;
                if (!strcmp(k, "languages") || !strcmp(k, "skills") || !strcmp(k, "queues") ||
                    !strcmp(k, "teams"))
                        json_object_set_new(a, k, parsed_list(v));
                else if (strncmp(k, "cap:", 4) == 0)
                        json_object_set_new(cap, k + 4, json_integer(strtoll(v, NULL, 10)));
                else if (strncmp(k, "load:", 5) == 0)
                        json_object_set_new(load, k + 5, json_integer(strtoll(v, NULL, 10)));
                else if (strcmp(k, "load") == 0)
                        json_object_set_new(a, "load_total", json_integer(strtoll(v, NULL, 10)));
                else if (strcmp(k, "presence_expires_at") == 0)
                        json_object_set_new(a, k,
                                            strtoll(v, NULL, 10) > 0
                                                    ? json_integer(strtoll(v, NULL, 10))
                                                    : json_null());
                else if (is_time_field(k))
                        json_object_set_new(a, k, json_integer(strtoll(v, NULL, 10)));
                else
                        json_object_set_new(a, k, json_string(v));
        }
        json_object_set_new(a, "capacity", cap);
        json_object_set_new(a, "load", load);
        return a;
}

static json_t *conv_json(const redisReply *flat)
{
        json_t *c = json_object();
        for (size_t i = 0; i + 1 < flat->elements; i += 2) {
                const char *k = flat->element[i]->str, *v = flat->element[i + 1]->str;
                if (k == NULL || v == NULL)
                        continue;
                if (!strcmp(k, "skills") || !strcmp(k, "declined"))
                        json_object_set_new(c, k, parsed_list(v));
                else
                        json_object_set_new(c, k, json_string(v));
        }
        return c;
}

/* Conversation log entries, oldest first, messages as objects. */
static json_t *log_json(const redisReply *entries)
{
        json_t *out = json_array();
        for (size_t n = entries->elements; n-- > 0;) {
                const redisReply *e = entries->element[n];
                if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
                        continue;
                json_t *m = json_object();
                json_object_set_new(m, "id", json_string(e->element[0]->str));
                const redisReply *f = e->element[1];
                for (size_t i = 0; i + 1 < f->elements; i += 2) {
                        const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
                        if (k == NULL || v == NULL)
                                continue;
                        json_t *parsed = strcmp(k, "message") == 0 ? json_loads(v, 0, NULL) : NULL;
                        json_object_set_new(m, k, parsed ? parsed : json_string(v));
                }
                json_array_append_new(out, m);
        }
        return out;
}

/* --- replies from the scripts ---------------------------------------------------- */

static unsigned error_status(const char *code)
{
        if (!strcmp(code, "unknown_agent") || !strcmp(code, "unknown_conversation"))
                return 404;
        return 409;
}

static void kick_after(struct omr_core *core, const char *kick)
{
        if (kick == NULL || *kick == '\0')
                return;
        /* "@agent": capacity came free; any push queue the agent serves may
         * have work for it. */
        omr_assign_kick(core, kick[0] == '@' ? NULL : kick);
}

static void start_call(struct call *c, const struct omr_script *s, int nargs, const char **argv);

static void on_reply(const redisReply *r, const char *error, void *arg)
{
        struct call *c = arg;
        struct omr_http_request *req = c->req;
        if (error || r->type == REDIS_REPLY_ERROR) {
                if (r && r->type == REDIS_REPLY_ERROR)
                        omr_log(LOG_ERR, "agents", "script failed id=%s error=\"%s\"", c->id,
                                r->str);
                unavailable(req, error ? error : "the store refused the change");
                call_free(c);
                return;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || !r->element[0]->str) {
                unavailable(req, "unexpected reply from the store");
                call_free(c);
                return;
        }
        const char *status = r->element[0]->str;
        if (strcmp(status, "error") == 0 && r->elements >= 3) {
                omr_http_reply_error(req, error_status(r->element[1]->str), r->element[1]->str,
                                     "%s", r->element[2]->str);
        } else if (c->op == OP_CLAIM && strcmp(status, "no_agent") == 0) {
                omr_http_reply_error(req, 404, "unknown_agent", "no agent %s", c->id);
        } else if (c->op == OP_CLAIM && strcmp(status, "none") == 0) {
                omr_http_reply(req, 204, "application/json", "", 0);
        } else if (c->op == OP_CLAIM && r->elements >= 4) {
                json_t *j = json_object();
                json_object_set_new(j, "conversation", conv_json(r->element[3]));
                json_object_set_new(j, "via", json_string(r->element[2]->str));
                omr_log(LOG_INFO, "agents", "claimed agent=%s conversation=%s via=%s", c->id,
                        r->element[1]->str, r->element[2]->str);
                omr_http_reply_json_take(req, 200, j);
        } else if (c->op == OP_PUT && r->elements >= 2) {
                /* Answer with the agent as stored. */
                char now[24];
                snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
                const char *argv[] = {c->core->conf->redis.prefix, "get", c->id, now, "0"};
                c->op = OP_PUT_DONE;
                omr_log(LOG_INFO, "agents", "agent %s id=%s", r->element[1]->str, c->id);
                omr_assign_kick(c->core, NULL);
                start_call(c, &c->core->routing.agent, 5, argv);
                return;
        } else if ((c->op == OP_GET || c->op == OP_PUT_DONE) && r->elements >= 2) {
                json_t *j = json_object();
                json_object_set_new(j, "agent", agent_json(r->element[1]));
                omr_http_reply_json_take(req, 200, j);
        } else if (c->op == OP_LIST && r->elements >= 2) {
                json_t *list = json_array();
                for (size_t i = 0; i < r->element[1]->elements; i++)
                        if (r->element[1]->element[i]->elements > 0)
                                json_array_append_new(list, agent_json(r->element[1]->element[i]));
                json_t *j = json_object();
                json_object_set_new(j, "agents", list);
                omr_http_reply_json_take(req, 200, j);
        } else if (c->op == OP_DELETE) {
                json_t *j = json_object();
                json_object_set_new(j, "agent_id", json_string(c->id));
                json_object_set_new(j, "removed", json_true());
                omr_log(LOG_INFO, "agents", "agent removed id=%s", c->id);
                omr_http_reply_json_take(req, 200, j);
        } else if (c->op == OP_PRESENCE && r->elements >= 4) {
                long long expires = strtoll(r->element[2]->str, NULL, 10);
                json_t *j = json_object();
                json_object_set_new(j, "agent_id", json_string(c->id));
                json_object_set_new(j, "status", json_string(r->element[1]->str));
                json_object_set_new(j, "expires_at", expires ? json_integer(expires) : json_null());
                if (strcmp(r->element[1]->str, r->element[3]->str) != 0) {
                        omr_log(LOG_INFO, "agents", "presence agent=%s %s -> %s", c->id,
                                r->element[3]->str, r->element[1]->str);
                        if (strcmp(r->element[1]->str, "online") == 0)
                                omr_assign_kick(c->core, NULL);
                }
                omr_http_reply_json_take(req, 200, j);
        } else if (c->op == OP_SHOW && r->elements >= 5) {
                json_t *j = json_object();
                json_object_set_new(j, "conversation", conv_json(r->element[3]));
                json_object_set_new(j, "messages", log_json(r->element[4]));
                omr_http_reply_json_take(req, 200, j);
        } else if (c->op == OP_ACT && r->elements >= 4) {
                kick_after(c->core, r->element[2]->str);
                json_t *j = json_object();
                json_object_set_new(j, "conversation", conv_json(r->element[3]));
                omr_http_reply_json_take(req, 200, j);
        } else {
                unavailable(req, "unexpected reply from the store");
        }
        call_free(c);
}

static void start_call(struct call *c, const struct omr_script *s, int nargs, const char **argv)
{
        if (c->core->store == NULL ||
            omr_store_eval(c->core->store, s, on_reply, c, 0, nargs, argv, NULL) != 0) {
                unavailable(c->req, "redis is not connected");
                call_free(c);
        }
}

static struct call *new_call(struct omr_core *core, struct omr_http_request *req, enum op op,
                             const char *id)
{
        struct call *c = calloc(1, sizeof(*c));
        if (c == NULL || (c->id = strdup(id ? id : "")) == NULL) {
                free(c);
                unavailable(req, "out of memory");
                return NULL;
        }
        c->req = req;
        c->core = core;
        c->op = op;
        return c;
}

/* --- request parsing ---------------------------------------------------------------- */

/* The body as a JSON object ({} when empty and `empty_ok`), or NULL after
 * answering 400. */
static json_t *body_object(struct omr_http_request *req, bool empty_ok)
{
        size_t len;
        const char *body = omr_http_body(req, &len);
        if (len == 0 && empty_ok)
                return json_object();
        json_error_t je;
        json_t *j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(j)) {
                omr_http_reply_error(req, 400, "bad_json", "the body must be a JSON object (%s)",
                                     j ? "not an object" : je.text);
                json_decref(j);
                return NULL;
        }
        return j;
}

static bool bad_field(struct omr_http_request *req, const char *field, const char *why)
{
        omr_http_reply_error(req, 400, "invalid_field", "'%s' %s", field, why);
        return false;
}

/* An optional string member; false after answering 400. */
static bool opt_string(struct omr_http_request *req, json_t *j, const char *field, size_t max,
                       const char **out)
{
        json_t *v = json_object_get(j, field);
        *out = NULL;
        if (v == NULL || json_is_null(v))
                return true;
        if (!json_is_string(v) || json_string_length(v) > max ||
            strlen(json_string_value(v)) != json_string_length(v))
                return bad_field(req, field, "must be a string without NUL");
        *out = json_string_value(v);
        return true;
}

static bool valid_language(const char *t)
{
        size_t n = strlen(t);
        return n >= 2 && n <= 15 &&
               strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") == n;
}

static bool valid_tag(const char *t)
{
        return omr_conf_valid_queue_name(t); /* same alphabet: [A-Za-z0-9_.-]{1,64} */
}

/* A list of strings each passing `ok`; absent means []. Returns its JSON
 * text (lower-cased when `fold`), or NULL after answering 400. */
static char *string_list(struct omr_http_request *req, json_t *j, const char *field,
                         bool (*ok)(const char *), bool fold, bool required)
{
        json_t *v = json_object_get(j, field), *out = json_array();
        size_t i;
        json_t *item;
        if (v == NULL && !required) {
                json_decref(out);
                return strdup("[]");
        }
        if (!json_is_array(v) || json_array_size(v) > 64 || (required && json_array_size(v) == 0)) {
                json_decref(out);
                bad_field(req, field,
                          required ? "must be a non-empty list (at most 64)"
                                   : "must be a list (at most 64)");
                return NULL;
        }
        json_array_foreach(v, i, item)
        {
                const char *s = json_string_value(item);
                if (s == NULL || !ok(s)) {
                        json_decref(out);
                        bad_field(req, field, "has an invalid element");
                        return NULL;
                }
                char *copy = strdup(s);
                for (char *p = copy; fold && p && *p; p++)
                        if (*p >= 'A' && *p <= 'Z')
                                *p = (char)(*p - 'A' + 'a');
                json_array_append_new(out, json_string(copy ? copy : ""));
                free(copy);
        }
        char *text = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        return text;
}

static char *capacity(struct omr_http_request *req, json_t *j)
{
        json_t *v = json_object_get(j, "capacity"), *value;
        const char *ch;
        if (!json_is_object(v) || json_object_size(v) == 0) {
                bad_field(req, "capacity", "must map channels to numbers, e.g. {\"chat\": 3}");
                return NULL;
        }
        json_object_foreach(v, ch, value)
        {
                if ((strcmp(ch, "*") != 0 && omr_channel_parse(ch) < 0) ||
                    !json_is_integer(value) || json_integer_value(value) < 0 ||
                    json_integer_value(value) > 1000) {
                        bad_field(req, "capacity",
                                  "maps email, chat, sms, social, api or * to 0-1000");
                        return NULL;
                }
        }
        return json_dumps(v, JSON_COMPACT);
}

/* --- handlers ----------------------------------------------------------------------- */

static const char *agent_param(struct omr_http_request *req)
{
        const char *id = omr_http_param(req, "id");
        if (!omr_conf_valid_agent_id(id)) {
                omr_http_reply_error(req, 404, "unknown_agent",
                                     "agent ids are 1-64 of [A-Za-z0-9_.@-]");
                return NULL;
        }
        return id;
}

static void h_put_agent(struct omr_http_request *req, void *arg)
{
        struct omr_core *core = arg;
        const char *id;
        json_t *j;
        const struct omr_conf_token *tok = omr_api_token(core, req);
        if (!tok || !omr_api_may_act_as(core, req, tok, NULL) || !(id = agent_param(req)) ||
            !(j = body_object(req, false)))
                return;
        const char *name, *email;
        char *langs = NULL, *skills = NULL, *queues = NULL, *teams = NULL, *caps = NULL;
        if (opt_string(req, j, "name", 128, &name) && opt_string(req, j, "email", 254, &email) &&
            (langs = string_list(req, j, "languages", valid_language, false, false)) &&
            (skills = string_list(req, j, "skills", valid_tag, true, false)) &&
            (queues = string_list(req, j, "queues", omr_conf_valid_queue_name, false, true)) &&
            (teams = string_list(req, j, "teams", valid_tag, true, false)) &&
            (caps = capacity(req, j))) {
                if (omr_conf_agent(core->conf, id)) {
                        omr_http_reply_error(req, 409, "config_agent",
                                             "%s is defined in the config file; change it there",
                                             id);
                } else {
                        struct call *c = new_call(core, req, OP_PUT, id);
                        char now[24], emax[24];
                        snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
                        snprintf(emax, sizeof(emax), "%lld", core->conf->redis.events_maxlen);
                        const char *argv[] = {core->conf->redis.prefix,
                                              "put",
                                              id,
                                              now,
                                              emax,
                                              "runtime",
                                              name ? name : id,
                                              email ? email : "",
                                              langs,
                                              skills,
                                              queues,
                                              teams,
                                              caps};
                        if (c)
                                start_call(c, &core->routing.agent, 13, argv);
                }
        }
        free(langs);
        free(skills);
        free(queues);
        free(teams);
        free(caps);
        json_decref(j);
}

static void agent_op(struct omr_http_request *req, struct omr_core *core, enum op op,
                     const char *id, const char *name, const char *extra1, const char *extra2,
                     const char *extra3)
{
        struct call *c = new_call(core, req, op, id);
        if (c == NULL)
                return;
        char now[24], emax[24];
        snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
        snprintf(emax, sizeof(emax), "%lld", core->conf->redis.events_maxlen);
        const char *argv[] = {
                core->conf->redis.prefix, name, id, now, emax, extra1, extra2, extra3};
        int nargs = extra3 ? 8 : extra1 ? 6 : 5;
        start_call(c, &core->routing.agent, nargs, argv);
}

static void h_delete_agent(struct omr_http_request *req, void *arg)
{
        struct omr_core *core = arg;
        const char *id;
        const struct omr_conf_token *tok = omr_api_token(core, req);
        if (!tok || !omr_api_may_act_as(core, req, tok, NULL) || !(id = agent_param(req)))
                return;
        if (omr_conf_agent(core->conf, id)) {
                omr_http_reply_error(req, 409, "config_agent",
                                     "%s is defined in the config file; remove it there", id);
                return;
        }
        agent_op(req, core, OP_DELETE, id, "remove", "runtime", NULL, NULL);
}

static void h_get_agent(struct omr_http_request *req, void *arg)
{
        struct omr_core *core = arg;
        const char *id;
        if (omr_api_authorize(core, req) && (id = agent_param(req)))
                agent_op(req, core, OP_GET, id, "get", NULL, NULL, NULL);
}

static void h_list_agents(struct omr_http_request *req, void *arg)
{
        struct omr_core *core = arg;
        if (omr_api_authorize(core, req))
                agent_op(req, core, OP_LIST, "", "list", NULL, NULL, NULL);
}

static void h_presence(struct omr_http_request *req, void *arg)
{
        struct omr_core *core = arg;
        const char *id, *status;
        json_t *j;
        const struct omr_conf_token *tok = omr_api_token(core, req);
        if (!tok || !(id = agent_param(req)) || !omr_api_may_act_as(core, req, tok, id) ||
            !(j = body_object(req, false)))
                return;
        status = json_string_value(json_object_get(j, "status"));
        if (status == NULL ||
            (strcmp(status, "online") && strcmp(status, "away") && strcmp(status, "offline"))) {
                bad_field(req, "status", "must be online, away or offline");
        } else {
                char ttl[24];
                snprintf(ttl, sizeof(ttl), "%lld",
                         (long long)core->conf->agents.heartbeat_timeout_ms);
                agent_op(req, core, OP_PRESENCE, id, "presence", status, ttl, "set by the agent");
        }
        json_decref(j);
}

static void h_claim(struct omr_http_request *req, void *arg)
{
        struct omr_core *core = arg;
        const char *id;
        const struct omr_conf_token *tok = omr_api_token(core, req);
        if (!tok || !(id = agent_param(req)) || !omr_api_may_act_as(core, req, tok, id))
                return;
        struct call *c = new_call(core, req, OP_CLAIM, id);
        if (c == NULL)
                return;
        char now[24], emax[24];
        snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
        snprintf(emax, sizeof(emax), "%lld", core->conf->redis.events_maxlen);
        const char *argv[] = {core->conf->redis.prefix, id, now, emax};
        start_call(c, &core->routing.claim, 4, argv);
}

/* accept, decline, resolve, transfer and show share one script. */
static void conv_action(struct omr_http_request *req, struct omr_core *core,
                        const struct omr_conf_token *tok, const char *action)
{
        const char *conv = omr_http_param(req, "id");
        if (!omr_api_valid_id(conv)) {
                omr_http_reply_error(req, 404, "unknown_conversation", "not a conversation id");
                return;
        }
        bool show = strcmp(action, "show") == 0;
        json_t *j = show ? json_object() : body_object(req, false);
        if (j == NULL)
                return;
        const char *agent = NULL, *reason = NULL, *queue = NULL, *to = NULL;
        if (show) {
                agent = "";
        } else if (opt_string(req, j, "agent_id", 64, &agent) &&
                   opt_string(req, j, "reason", 500, &reason) &&
                   opt_string(req, j, "queue", 64, &queue) &&
                   opt_string(req, j, "to_agent", 64, &to)) {
                if (agent == NULL || !omr_conf_valid_agent_id(agent)) {
                        bad_field(req, "agent_id", "is required: the acting agent's id");
                        agent = NULL;
                } else if (!omr_api_may_act_as(core, req, tok, agent)) {
                        agent = NULL;
                } else if (strcmp(action, "transfer") == 0 &&
                           (!queue == !to || (queue && !omr_conf_valid_queue_name(queue)) ||
                            (to && !omr_conf_valid_agent_id(to)))) {
                        bad_field(req, queue && to ? "queue" : "to_agent",
                                  "transfer needs either a valid 'queue' or 'to_agent'");
                        agent = NULL;
                }
        }
        if (agent) {
                struct call *c = new_call(core, req, show ? OP_SHOW : OP_ACT, conv);
                char now[24], emax[24], qmax[24];
                snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
                snprintf(emax, sizeof(emax), "%lld", core->conf->redis.events_maxlen);
                snprintf(qmax, sizeof(qmax), "%lld", core->conf->redis.queue_maxlen);
                const char *argv[] = {core->conf->redis.prefix, action,      conv, agent,
                                      reason ? reason : "",     now,         emax, qmax,
                                      queue ? queue : "",       to ? to : ""};
                if (c) {
                        if (!show)
                                omr_log(LOG_INFO, "agents", "%s conversation=%s agent=%s%s%s",
                                        action, conv, agent, queue ? " queue=" : "",
                                        queue ? queue : "");
                        start_call(c, &core->routing.action, 10, argv);
                }
        }
        json_decref(j);
}

static void on_stats(const redisReply *r, const char *error, void *arg)
{
        struct omr_http_request *req = arg;
        if (error || r->type != REDIS_REPLY_STRING)
                unavailable(req, error                          ? error
                                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                                : "bad reply");
        else
                omr_http_reply(req, 200, "application/json", r->str, r->len);
}

/* GET /v1/stats: KPIs across every daemon (they live in Redis). */
static void h_stats(struct omr_http_request *req, void *arg)
{
        struct omr_core *core = arg;
        if (!omr_api_authorize(core, req))
                return;
        char now[24];
        snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
        const char *argv[] = {core->conf->redis.prefix, now};
        if (core->store == NULL ||
            omr_store_eval(core->store, &core->routing.stats, on_stats, req, 0, 2, argv, NULL) != 0)
                unavailable(req, "redis is not connected");
}

#define ACTION_HANDLER(name)                                                                       \
        static void h_##name(struct omr_http_request *req, void *arg)                              \
        {                                                                                          \
                const struct omr_conf_token *tok = omr_api_token(arg, req);                        \
                if (tok)                                                                           \
                        conv_action(req, arg, tok, #name);                                         \
        }
ACTION_HANDLER(show)
ACTION_HANDLER(accept)
ACTION_HANDLER(decline)
ACTION_HANDLER(resolve)
ACTION_HANDLER(transfer)

int omr_agents_api_start(struct omr_core *core)
{
        static const struct {
                const char *method, *pattern;
                omr_http_handler_fn fn;
        } routes[] = {
                {"GET", "/v1/agents", h_list_agents},
                {"GET", "/v1/stats", h_stats},
                {"GET", "/v1/agents/{id}", h_get_agent},
                {"PUT", "/v1/agents/{id}", h_put_agent},
                {"DELETE", "/v1/agents/{id}", h_delete_agent},
                {"POST", "/v1/agents/{id}/presence", h_presence},
                {"POST", "/v1/agents/{id}/claim", h_claim},
                {"GET", "/v1/conversations/{id}", h_show},
                {"POST", "/v1/conversations/{id}/accept", h_accept},
                {"POST", "/v1/conversations/{id}/decline", h_decline},
                {"POST", "/v1/conversations/{id}/resolve", h_resolve},
                {"POST", "/v1/conversations/{id}/transfer", h_transfer},
        };
        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
                int rc = omr_http_route(core->http, routes[i].method, routes[i].pattern,
                                        routes[i].fn, core);
                if (rc != 0)
                        return rc;
        }
        return 0;
}
