/* chat_store.c — see chat_store.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_priv.h"
#include "omniroute/chat_store.h"
#include "omniroute/log.h"
#include "omniroute/message.h"
#include "omniroute/timefmt.h"

struct op {
        omr_chat_lookup_fn lookup;
        omr_chat_history_fn history;
        void *arg;
};

static int send_command(struct omr_core *core, struct op *op, omr_store_reply_fn cb, int argc,
                        const char **argv)
{
        if (op == NULL)
                return -ENOMEM;
        int rc = core->store ? omr_store_command(core->store, cb, op, argc, argv, NULL) : -ENOTCONN;
        if (rc != 0)
                free(op);
        return rc;
}

static void on_lookup(const redisReply *r, const char *error, void *arg)
{
        struct op *op = arg;
        bool ok = !error && r && r->type == REDIS_REPLY_ARRAY && r->elements == 2;
        const char *conv =
                ok && r->element[0]->type == REDIS_REPLY_STRING && r->element[0]->len == OMR_ID_LEN
                        ? r->element[0]->str
                        : NULL;
        long long online =
                ok && r->element[1]->type == REDIS_REPLY_INTEGER ? r->element[1]->integer : 0;
        op->lookup(ok, conv, online, op->arg);
        free(op);
}

int omr_chat_lookup(struct omr_core *core, const char *provider, const char *visitor,
                    omr_chat_lookup_fn done, void *arg)
{
        /* One round trip: the thread key ingest uses for this visitor (one
         * conversation per visitor: no thread reference), and presence. */
        static const char script[] = "return {redis.call('GET', KEYS[1]) or '', "
                                     "redis.call('ZCOUNT', KEYS[2], ARGV[1], '+inf')}";
        char hash[33], now[24], *thread = NULL, *presence = NULL;
        if (omr_thread_hash(provider, visitor, NULL, hash) != 0)
                return -ENOMEM;
        const char *prefix = core->conf->redis.prefix;
        if (asprintf(&thread, "%sthread:chat:%s", prefix, hash) < 0)
                thread = NULL;
        if (asprintf(&presence, "%spresence", prefix) < 0)
                presence = NULL;
        snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
        struct op *op = calloc(1, sizeof(*op));
        int rc = -ENOMEM;
        if (op && thread && presence) {
                op->lookup = done;
                op->arg = arg;
                const char *argv[] = {"EVAL", script, "2", thread, presence, now};
                rc = send_command(core, op, on_lookup, 6, argv);
        } else {
                free(op);
        }
        free(thread);
        free(presence);
        return rc;
}

static const char *field(const redisReply *fields, const char *name)
{
        for (size_t i = 0; fields && i + 1 < fields->elements; i += 2)
                if (fields->element[i]->type == REDIS_REPLY_STRING &&
                    strcmp(fields->element[i]->str, name) == 0 &&
                    fields->element[i + 1]->type == REDIS_REPLY_STRING)
                        return fields->element[i + 1]->str;
        return NULL;
}

static void on_history(const redisReply *r, const char *error, void *arg)
{
        struct op *op = arg;
        if (error || r == NULL || r->type != REDIS_REPLY_ARRAY) {
                op->history(false, NULL, 0, op->arg);
                free(op);
                return;
        }
        struct omr_chat_entry *e = calloc(r->elements ? r->elements : 1, sizeof(*e));
        size_t n = 0;
        for (size_t i = 0; e && i < r->elements; i++) {
                const redisReply *it = r->element[i];
                if (it->type != REDIS_REPLY_ARRAY || it->elements != 2 ||
                    it->element[0]->type != REDIS_REPLY_STRING)
                        continue;
                /* Every entry counts (the caller pages on the count and the
                 * last id); one without the fields has them NULL. */
                e[n++] = (struct omr_chat_entry){it->element[0]->str,
                                                 field(it->element[1], "direction"),
                                                 field(it->element[1], "message")};
        }
        op->history(e != NULL, e, n, op->arg);
        free(e);
        free(op);
}

int omr_chat_history(struct omr_core *core, const char *conversation_id, const char *after,
                     size_t count, omr_chat_history_fn done, void *arg)
{
        char *key = NULL, start[64], n[24];
        if (asprintf(&key, "%sconv:{%s}:log", core->conf->redis.prefix, conversation_id) < 0)
                return -ENOMEM;
        /* "(id": exclusive, the entries after it. */
        snprintf(start, sizeof(start), "%s%s", after && *after && strcmp(after, "0") ? "(" : "",
                 after && *after && strcmp(after, "0") ? after : "-");
        snprintf(n, sizeof(n), "%zu", count);
        struct op *op = calloc(1, sizeof(*op));
        int rc = -ENOMEM;
        if (op) {
                op->history = done;
                op->arg = arg;
                const char *argv[] = {"XRANGE", key, start, "+", "COUNT", n};
                rc = send_command(core, op, on_history, 6, argv);
        }
        free(key);
        return rc;
}

extern const char omr_chat_seen_lua[], omr_chat_offline_lua[];
static struct omr_script seen_script, offline_script;

static void ignore(const redisReply *r, const char *error, void *arg)
{
        (void)arg;
        if (error || (r && r->type == REDIS_REPLY_ERROR))
                omr_log(LOG_DEBUG, "chat", "chat store write failed: %s", error ? error : r->str);
}

void omr_chat_seen(struct omr_core *core, const char *conversation_id, const char *id)
{
        const struct omr_conf *conf = core->conf;
        if (conf->chat.offline_email_provider == NULL || core->store == NULL)
                return;
        if (seen_script.sha[0] == '\0')
                omr_script_init(&seen_script, omr_chat_seen_lua);
        char *key = NULL, ttl[24];
        if (asprintf(&key, "%schat:seen:%s", conf->redis.prefix, conversation_id) < 0)
                return;
        snprintf(ttl, sizeof(ttl), "%lld",
                 (long long)conf->chat.offline_email_after_ms * 2 + 60000);
        const char *argv[] = {key, id, ttl};
        omr_store_eval(core->store, &seen_script, ignore, NULL, 1, 2, argv, NULL);
        free(key);
}

static void on_swept(const redisReply *r, const char *error, void *arg)
{
        (void)arg;
        if (!error && r && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
                omr_log(LOG_INFO, "chat", "emailed %lld chat replies the visitors did not see",
                        r->integer);
        else
                ignore(r, error, NULL);
}

void omr_chat_offline_sweep(struct omr_core *core)
{
        const struct omr_conf *conf = core->conf;
        if (conf->chat.offline_email_provider == NULL || !omr_core_store_ready(core))
                return;
        if (offline_script.sha[0] == '\0')
                omr_script_init(&offline_script, omr_chat_offline_lua);
        const char *p = conf->redis.prefix;
        char *zkey = NULL, *outbox = NULL, *events = NULL, now[24], emax[24];
        snprintf(now, sizeof(now), "%lld", (long long)omr_now_ms());
        snprintf(emax, sizeof(emax), "%lld", conf->redis.events_maxlen);
        if (asprintf(&zkey, "%schat:offline", p) > 0 && asprintf(&outbox, "%soutbox", p) > 0 &&
            asprintf(&events, "%sevents", p) > 0) {
                const char *argv[] = {zkey,  outbox, events,
                                      p,     now,    conf->chat.offline_email_provider,
                                      "100", emax};
                omr_store_eval(core->store, &offline_script, on_swept, NULL, 3, 5, argv, NULL);
        }
        free(zkey);
        free(outbox);
        free(events);
}

struct omr_pubsub *omr_chat_subscribe(struct omr_core *core, omr_pubsub_message_fn on_message,
                                      omr_pubsub_ready_fn on_ready, void *arg)
{
        const struct omr_conf_redis *r = &core->conf->redis;
        char *channel = NULL;
        if (asprintf(&channel, "%schat", r->prefix) < 0)
                return NULL;
        const char *sock = r->kind == OMR_REDIS_EMBEDDED ? omr_core_embedded_socket(core)
                           : r->kind == OMR_REDIS_UNIX   ? r->unix_path
                                                         : NULL;
        struct omr_pubsub *ps =
                omr_pubsub_new(core->base, r, sock, channel, on_message, on_ready, arg);
        free(channel);
        return ps;
}
