/* ingest.c — omr_ingest(): id, route, encode, one atomic Redis script,
 * then the connector's completion callback. Loop thread only. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_priv.h"
#include "id.h"
#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/signature.h"
#include "omniroute/text.h"
#include "omniroute/timefmt.h"
#include "router.h"

#define JOB_MAGIC 0x1a6e57u

struct ingest_job {
        unsigned magic;
        struct omr_core *core;
        struct omr_message *msg; /* owned */
        omr_ingest_done_fn done;
        void *arg;
};

static void job_finish(struct ingest_job *job, const struct omr_ingest_result *res)
{
        static const char *const outcome[] = {"stored", "duplicate", "unavailable"};
        struct omr_core *core = job->core;
        omr_metrics_inc(core->metrics, OMR_M_INGESTED, omr_channel_name(job->msg->channel),
                        outcome[res->status]);
        job->done(res, job->arg);
        core->ingest_inflight--;
        omr_message_free(job->msg);
        job->magic = 0;
        free(job);
}

static void fail(struct ingest_job *job, const char *detail)
{
        struct omr_ingest_result res = {.status = OMR_INGEST_UNAVAILABLE, .detail = detail};
        job_finish(job, &res);
}

static const char *element(const redisReply *r, size_t i)
{
        if (r->type != REDIS_REPLY_ARRAY || i >= r->elements)
                return NULL;
        const redisReply *e = r->element[i];
        return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS ? e->str : NULL;
}

static void on_stored(const redisReply *r, const char *error, void *arg)
{
        struct ingest_job *job = arg;
        OMR_MAGIC_CHECK(job, JOB_MAGIC);
        const struct omr_message *m = job->msg;

        if (error) {
                /* Logged by the store once per outage; count only. */
                fail(job, error);
                return;
        }
        if (r->type == REDIS_REPLY_ERROR) {
                omr_log(LOG_ERR, "ingest", "store script failed provider=%s error=\"%s\"",
                        m->provider, r->str);
                fail(job, "store refused the write");
                return;
        }
        const char *status = element(r, 0);
        struct omr_ingest_result res = {
                .conversation_id = element(r, 1),
                .message_id = element(r, 2),
                .queue = element(r, 3),
                .log_id = element(r, 6) && *element(r, 6) ? element(r, 6) : NULL,
        };
        if (status == NULL || res.conversation_id == NULL || res.message_id == NULL ||
            res.queue == NULL || r->elements < 5 || r->element[4]->type != REDIS_REPLY_INTEGER) {
                omr_log(LOG_ERR, "ingest", "unexpected reply from the store script");
                fail(job, "unexpected store reply");
                return;
        }
        res.new_conversation = r->element[4]->integer == 1;
        /* The conversation (re)entered a push queue: offer it now rather
         * than at the next periodic pass. */
        const char *mode = element(r, 5);
        if (mode && strcmp(mode, "push") == 0)
                omr_assign_kick(job->core, res.queue);
        /* A clock may have started or resumed. */
        if (job->core->conf->n_sla > 0)
                omr_sla_kick(job->core);
        res.status = strcmp(status, "duplicate") == 0 ? OMR_INGEST_DUPLICATE : OMR_INGEST_STORED;
        omr_log(LOG_DEBUG, "ingest",
                "%s provider=%s external_id=%s conversation=%s message=%s queue=%s new=%d", status,
                m->provider, m->external_id, res.conversation_id, res.message_id, res.queue,
                res.new_conversation);
        job_finish(job, &res);
}

/* The thread key hashes its parts, so customer ids and thread references
 * of any shape (colons, spaces, long) make a short, collision-safe key. */
int omr_thread_hash(const char *provider, const char *customer_id, const char *thread_ref,
                    char out[33])
{
        unsigned char d[SHA256_DIGEST_LENGTH];
        const char *parts[] = {provider, customer_id, thread_ref ? thread_ref : ""};
        size_t lens[3], total = 0;
        for (size_t i = 0; i < 3; i++)
                total += (lens[i] = strlen(parts[i]) + 1); /* with the NUL: a separator */
        unsigned char *buf = malloc(total), *p = buf;
        if (buf == NULL)
                return -1;
        for (size_t i = 0; i < 3; i++) {
                memcpy(p, parts[i], lens[i]);
                p += lens[i];
        }
        SHA256(buf, total, d);
        free(buf);
        omr_hex_encode(d, 16, out);
        return 0;
}

/* The skills a rule requires, as the JSON array the store keeps. */
static char *skills_json(const struct omr_rule *r)
{
        json_t *a = json_array();
        for (size_t i = 0; a && r && i < r->n_skills; i++)
                json_array_append_new(a, json_string(r->skills[i]));
        char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
        json_decref(a);
        return s;
}

/* Subject and text as one string: what language detection and keyword
 * rules look at. */
static char *subject_and_text(const struct omr_message *m)
{
        char *joined = NULL;
        if (asprintf(&joined, "%s%s%s", m->subject ? m->subject : "", m->subject ? " " : "",
                     m->text ? m->text : "") < 0)
                return NULL;
        return joined;
}

void omr_ingest(struct omr_core *core, struct omr_message *msg, omr_ingest_done_fn done, void *arg)
{
        const struct omr_conf *conf = core->conf;
        struct ingest_job *job = calloc(1, sizeof(*job));
        if (job == NULL) {
                struct omr_ingest_result res = {.status = OMR_INGEST_UNAVAILABLE,
                                                .detail = "out of memory"};
                done(&res, arg);
                omr_message_free(msg);
                return;
        }
        job->magic = JOB_MAGIC;
        job->core = core;
        job->msg = msg;
        job->done = done;
        job->arg = arg;
        core->ingest_inflight++;

        if (core->store == NULL || !omr_store_ready(core->store)) {
                fail(job, "redis is not connected");
                return;
        }
        omr_id_new(msg->id);
        msg->received_at = omr_now_ms();
        msg->direction = OMR_DIR_IN;

        /* Whether the customer is returning is only known inside the store
         * script: decide both ways here (a second pass only when some rule
         * asks) and let the script pick. */
        struct omr_route_decision d, dr;
        char *joined = subject_and_text(msg);
        if (joined && !msg->language.tag[0])
                omr_langid_detect(joined, strlen(joined), &msg->language);
        struct omr_route_input in = {
                .text = joined,
                .folded_text = joined ? omr_text_fold(joined) : NULL,
                .vip = omr_conf_is_vip(conf, msg->customer.id, msg->customer.handle),
                .now_ms = msg->received_at,
        };
        omr_route(&conf->routing, msg, &in, &d);
        dr = d;
        if (conf->routing.uses_returning) {
                in.returning = true;
                omr_route(&conf->routing, msg, &in, &dr);
        }
        free((char *)in.folded_text);
        free(joined);
        msg->priority = d.priority;
        char *skills = skills_json(d.rule), *skills_r = skills_json(dr.rule);
        const struct omr_conf_sla_policy *sla =
                omr_conf_sla_for(conf, msg->channel, d.queue, d.priority);
        const struct omr_conf_sla_policy *sla_r =
                omr_conf_sla_for(conf, msg->channel, dr.queue, dr.priority);
        /* A guess below CLD2's reliability bar asks no language of agents. */
        const char *language = msg->language.reliable ? msg->language.tag : "und";

        char *json = NULL;
        json_t *j = omr_message_to_json(msg);
        if (j)
                json = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (json == NULL || skills == NULL || skills_r == NULL) {
                free(json);
                free(skills);
                free(skills_r);
                fail(job, "out of memory");
                return;
        }

        const char *prefix = conf->redis.prefix;
        const char *channel = omr_channel_name(msg->channel);
        char conv_id[OMR_ID_LEN + 1], hash[33], now[24], ttl[24], qmax[24], emax[24];
        omr_id_new(conv_id);
        if (omr_thread_hash(msg->provider, msg->customer.id, msg->thread_key, hash) != 0) {
                free(json);
                free(skills);
                free(skills_r);
                fail(job, "out of memory");
                return;
        }
        snprintf(now, sizeof(now), "%lld", (long long)msg->received_at);
        snprintf(ttl, sizeof(ttl), "%lld", (long long)conf->redis.dedup_ttl_s);
        snprintf(qmax, sizeof(qmax), "%lld", conf->redis.queue_maxlen);
        snprintf(emax, sizeof(emax), "%lld", conf->redis.events_maxlen);
        char *dedup_key = NULL, *thread_key = NULL, *events_key = NULL;
        if (asprintf(&dedup_key, "%sdedup:%s:%s", prefix, msg->provider, msg->external_id) < 0)
                dedup_key = NULL;
        if (asprintf(&thread_key, "%sthread:%s:%s", prefix, channel, hash) < 0)
                thread_key = NULL;
        if (asprintf(&events_key, "%sevents", prefix) < 0)
                events_key = NULL;

        const char *argv[] = {
                dedup_key,
                thread_key,
                events_key,
                prefix,
                conv_id,
                msg->id,
                json,
                channel,
                msg->provider,
                msg->customer.id,
                msg->customer.name ? msg->customer.name : "",
                msg->customer.handle ? msg->customer.handle : "",
                d.queue,
                omr_priority_name(d.priority),
                d.rule ? d.rule->name : "",
                now,
                ttl,
                qmax,
                emax,
                language,
                skills,
                in.vip ? "1" : "0",
                dr.queue,
                omr_priority_name(dr.priority),
                dr.rule ? dr.rule->name : "",
                skills_r,
                sla ? sla->name : "",
                sla_r ? sla_r->name : "",
                msg->auto_submitted ? "1" : "0",
                msg->conversation_hint ? msg->conversation_hint : "",
                msg->external_id,
                msg->thread_key ? msg->thread_key : "",
                msg->subject ? msg->subject : "",
        };
        enum { NARGV = sizeof(argv) / sizeof(argv[0]) };
        int rc = -1;
        if (dedup_key && thread_key && events_key) {
                rc = omr_store_eval(core->store, &core->ingest_script, on_stored, job, 3, NARGV - 3,
                                    argv, NULL);
        }
        free(dedup_key);
        free(thread_key);
        free(events_key);
        free(json);
        free(skills);
        free(skills_r);
        if (rc != 0)
                fail(job, "redis is not connected");
}

/* --- split messages (Vonage concat) ---------------------------------------- */

struct parts_job {
        omr_parts_done_fn done;
        void *arg;
};

static void on_parts(const redisReply *r, const char *error, void *arg)
{
        struct parts_job *j = arg;
        if (error || r->type == REDIS_REPLY_ERROR)
                j->done(false, NULL, j->arg);
        else
                j->done(true, r->type == REDIS_REPLY_STRING ? r->str : NULL, j->arg);
        free(j);
}

void omr_collect_part(struct omr_core *core, const char *provider, const char *group, int part,
                      int total, const char *text, omr_parts_done_fn done, void *arg)
{
        struct parts_job *j = calloc(1, sizeof(*j));
        char *key = NULL, p[16], t[16];
        int rc = -1;
        snprintf(p, sizeof(p), "%d", part);
        snprintf(t, sizeof(t), "%d", total);
        if (j && core->store && omr_store_ready(core->store) &&
            asprintf(&key, "%sparts:%s:%s", core->conf->redis.prefix, provider, group) > 0) {
                j->done = done;
                j->arg = arg;
                /* Parts of one message arrive within minutes; a day covers
                 * provider retries of a lost part. */
                const char *argv[] = {key, p, t, text, "86400"};
                rc = omr_store_eval(core->store, &core->parts_script, on_parts, j, 1, 4, argv,
                                    NULL);
        }
        free(key);
        if (rc != 0) {
                free(j);
                done(false, NULL, arg);
        }
}
