/* assign.c — the daemon's side of assignment. The decisions themselves run
 * in Redis (daemon/assign.lua, claim.lua, sweep.lua: atomic across
 * daemons); this file decides *when* they run:
 *   - on every Redis connect and config reload, it publishes the queues'
 *     settings and the config file's agents (agent.lua put/prune);
 *   - once a second, sweep.lua fires expired presence, offers and claims;
 *   - a push queue is dispatched when work arrives (ingest), an agent
 *     comes online or frees capacity, and by the sweep as a safety net.
 * Kicks are coalesced: one dispatch per queue in flight at a time.
 * Loop thread only. */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_priv.h"
#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/timefmt.h"

extern const char omr_assign_lua[], omr_claim_lua[], omr_conv_action_lua[], omr_agent_lua[],
        omr_sweep_lua[], omr_stats_lua[];

#define SWEEP_MS            1000
#define MAX_OFFERS_PER_CALL "100"
#define SCAN_PER_CALL       "500"

static const char *const BANDS[] = {"urgent", "high", "normal", "low"};

/* One queue the dispatcher knows about: pending = a kick arrived while a
 * dispatch was running, so run once more when it returns. */
struct dispatch {
        struct omr_assign *owner;
        char *queue;
        bool running, pending;
        bool restart;     /* a kick came while running: next walk from the front */
        long long offset; /* where the next call starts in the waiting line */
        struct dispatch *next;
};

struct omr_assign {
        struct omr_core *core;
        struct event *sweep_ev, *kick_ev;
        struct dispatch *queues;
        bool sweeping, stopped;
        size_t inflight; /* Redis calls whose callbacks still use this object */
};

static const char *prefix(const struct omr_assign *a)
{
        return a->core->conf->redis.prefix;
}

static bool ready(const struct omr_assign *a)
{
        return !a->stopped && a->core->store && omr_store_ready(a->core->store);
}

static void now_str(char buf[24])
{
        snprintf(buf, 24, "%lld", (long long)omr_now_ms());
}

static void emax_str(const struct omr_assign *a, char buf[24])
{
        snprintf(buf, 24, "%lld", a->core->conf->redis.events_maxlen);
}

/* --- publishing queues and config agents ------------------------------------ */

static void on_sync_reply(const redisReply *r, const char *error, void *arg)
{
        struct omr_assign *a = arg;
        a->inflight--;
        if (error == NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
                omr_log(LOG_ERR, "assign", "publishing queues/agents failed error=\"%s\"", r->str);
        else if (error == NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
                 strcmp(r->element[0]->str, "error") == 0)
                omr_log(LOG_ERR, "assign", "config agent refused: %s", r->element[2]->str);
}

static void command(struct omr_assign *a, int argc, const char **argv)
{
        if (omr_store_command(a->core->store, on_sync_reply, a, argc, argv, NULL) == 0)
                a->inflight++;
}

static void eval(struct omr_assign *a, const struct omr_script *s, int nargs, const char **argv,
                 omr_store_reply_fn cb)
{
        if (omr_store_eval(a->core->store, s, cb, a, 0, nargs, argv, NULL) == 0)
                a->inflight++;
}

/* Every queue the config names: its settings for the scripts, and for a
 * pull queue the priority-band streams with their group, so that agents'
 * tools can start reading before the first message. */
static void publish_queue(struct omr_assign *a, const char *name)
{
        const struct omr_conf_queue *q = omr_conf_queue(a->core->conf, name);
        char key[256], offer[24], claim[24];
        snprintf(key, sizeof(key), "%squeue:%s:conf", prefix(a), name);
        snprintf(offer, sizeof(offer), "%lld", (long long)q->offer_timeout_ms);
        snprintf(claim, sizeof(claim), "%lld", (long long)q->claim_timeout_ms);
        const char *hset[] = {"HSET",
                              key,
                              "mode",
                              q->mode == OMR_QUEUE_PUSH ? "push" : "pull",
                              "strategy",
                              omr_strategy_name(q->strategy),
                              "sticky",
                              q->sticky ? "1" : "0",
                              "match_language",
                              q->match_language ? "1" : "0",
                              "offer_timeout_ms",
                              offer,
                              "claim_timeout_ms",
                              claim};
        command(a, 14, hset);
        snprintf(key, sizeof(key), "%squeues", prefix(a));
        const char *sadd[] = {"SADD", key, name};
        command(a, 3, sadd);
        for (size_t b = 0; q->mode == OMR_QUEUE_PULL && b < 4; b++) {
                snprintf(key, sizeof(key), "%squeue:%s:%s", prefix(a), name, BANDS[b]);
                const char *xg[] = {"XGROUP", "CREATE", key, "agents", "0", "MKSTREAM"};
                command(a, 6, xg);
        }
}

static char *json_list(char **items, size_t n)
{
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++)
                json_array_append_new(arr, json_string(items[i]));
        char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
        json_decref(arr);
        return s;
}

static void publish_agent(struct omr_assign *a, const struct omr_conf_agent *ag)
{
        char now[24], emax[24];
        now_str(now);
        emax_str(a, emax);
        json_t *cap = json_object();
        for (size_t i = 0; cap && i < ag->n_capacity; i++)
                json_object_set_new(cap, ag->capacity[i].channel,
                                    json_integer(ag->capacity[i].max));
        char *caps = cap ? json_dumps(cap, JSON_COMPACT) : NULL;
        json_decref(cap);
        char *langs = json_list(ag->languages, ag->n_languages);
        char *skills = json_list(ag->skills, ag->n_skills);
        char *queues = json_list(ag->queues, ag->n_queues);
        char *teams = json_list(ag->teams, ag->n_teams);
        if (caps && langs && skills && queues && teams) {
                const char *argv[] = {prefix(a),
                                      "put",
                                      ag->id,
                                      now,
                                      emax,
                                      "config",
                                      ag->name ? ag->name : ag->id,
                                      ag->email ? ag->email : "",
                                      langs,
                                      skills,
                                      queues,
                                      teams,
                                      caps};
                eval(a, &a->core->routing.agent, 13, argv, on_sync_reply);
        }
        free(caps);
        free(langs);
        free(skills);
        free(queues);
        free(teams);
}

void omr_assign_sync(struct omr_assign *a)
{
        if (!ready(a))
                return;
        const struct omr_conf *c = a->core->conf;
        publish_queue(a, c->routing.default_queue);
        for (size_t i = 0; i < c->routing.n_rules; i++)
                publish_queue(a, c->routing.rules[i].queue);
        for (size_t i = 0; i < c->routing.n_queues; i++)
                publish_queue(a, c->routing.queues[i].name);
        for (size_t i = 0; i < c->agents.n; i++) {
                for (size_t j = 0; j < c->agents.list[i].n_queues; j++)
                        publish_queue(a, c->agents.list[i].queues[j]);
                publish_agent(a, &c->agents.list[i]);
        }
        /* Agents the config file no longer lists go; runtime ones stay. */
        json_t *ids = json_array();
        for (size_t i = 0; ids && i < c->agents.n; i++)
                json_array_append_new(ids, json_string(c->agents.list[i].id));
        char *keep = ids ? json_dumps(ids, JSON_COMPACT) : NULL;
        json_decref(ids);
        char now[24], emax[24];
        now_str(now);
        emax_str(a, emax);
        if (keep) {
                const char *argv[] = {prefix(a), "prune", "", now, emax, keep};
                eval(a, &a->core->routing.agent, 6, argv, on_sync_reply);
        }
        free(keep);
        omr_assign_kick(a->core, NULL);
}

/* --- dispatching push queues ---------------------------------------------- */

static struct dispatch *dispatch_for(struct omr_assign *a, const char *queue)
{
        for (struct dispatch *d = a->queues; d; d = d->next)
                if (strcmp(d->queue, queue) == 0)
                        return d;
        struct dispatch *d = calloc(1, sizeof(*d));
        if (d == NULL || (d->queue = strdup(queue)) == NULL) {
                free(d);
                return NULL;
        }
        d->owner = a;
        d->next = a->queues;
        a->queues = d;
        return d;
}

static void run_dispatch(struct dispatch *d);

static void on_dispatched(const redisReply *r, const char *error, void *arg)
{
        struct dispatch *d = arg;
        struct omr_assign *a = d->owner;
        a->inflight--;
        d->running = false;
        if (error == NULL && r->type == REDIS_REPLY_ERROR) {
                omr_log(LOG_ERR, "assign", "dispatch failed queue=%s error=\"%s\"", d->queue,
                        r->str);
        } else if (error == NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
                for (long long i = 0; i < r->element[0]->integer; i++)
                        omr_metrics_inc(a->core->metrics, OMR_M_DISPATCHED, d->queue, NULL);
                if (r->element[0]->integer > 0)
                        omr_log(LOG_DEBUG, "assign", "dispatched queue=%s offers=%lld", d->queue,
                                r->element[0]->integer);
                if (d->restart) {
                        d->offset = 0;
                } else if (r->element[1]->integer == 1 && r->elements >= 3) {
                        /* More to look at: the next page, or after the
                         * offer limit, the rest of this one. */
                        d->offset = r->element[2]->integer;
                        d->pending = true;
                } else {
                        d->offset = 0;
                }
        }
        if (d->pending && ready(a))
                run_dispatch(d);
}

static void run_dispatch(struct dispatch *d)
{
        struct omr_assign *a = d->owner;
        char now[24], emax[24], offset[24];
        now_str(now);
        emax_str(a, emax);
        snprintf(offset, sizeof(offset), "%lld", d->offset);
        const char *argv[] = {prefix(a), d->queue,      now,   MAX_OFFERS_PER_CALL,
                              emax,      SCAN_PER_CALL, offset};
        d->pending = false;
        d->restart = false;
        if (omr_store_eval(a->core->store, &a->core->routing.assign, on_dispatched, d, 0, 7, argv,
                           NULL) == 0) {
                d->running = true;
                a->inflight++;
        }
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
        struct omr_assign *a = arg;
        (void)fd;
        (void)what;
        if (!ready(a))
                return;
        for (struct dispatch *d = a->queues; d; d = d->next)
                if (d->pending && !d->running)
                        run_dispatch(d);
}

void omr_assign_kick(struct omr_core *core, const char *queue)
{
        struct omr_assign *a = core->assign;
        if (a == NULL || a->stopped)
                return;
        if (queue) {
                struct dispatch *d = dispatch_for(a, queue);
                if (d) {
                        d->pending = true;
                        d->offset = 0; /* new work or room: from the front */
                        d->restart = d->running;
                }
        } else {
                const struct omr_conf *c = core->conf;
                for (size_t i = 0; i < c->routing.n_queues; i++) {
                        if (c->routing.queues[i].mode != OMR_QUEUE_PUSH)
                                continue;
                        struct dispatch *d = dispatch_for(a, c->routing.queues[i].name);
                        if (d) {
                                d->pending = true;
                                d->offset = 0;
                                d->restart = d->running;
                        }
                }
        }
        /* On the next loop turn: a burst of kicks becomes one dispatch. */
        event_active(a->kick_ev, EV_TIMEOUT, 0);
}

/* --- the sweep ---------------------------------------------------------------- */

static void arm_sweep(struct omr_assign *a)
{
        struct timeval tv = {0, SWEEP_MS * 1000};
        if (!a->stopped)
                evtimer_add(a->sweep_ev, &tv);
}

static void on_swept(const redisReply *r, const char *error, void *arg)
{
        struct omr_assign *a = arg;
        a->inflight--;
        a->sweeping = false;
        if (error == NULL && r->type == REDIS_REPLY_ERROR)
                omr_log(LOG_ERR, "assign", "sweep failed error=\"%s\"", r->str);
        else if (error == NULL && r->type == REDIS_REPLY_ARRAY)
                for (size_t i = 0; i < r->elements; i++)
                        if (r->element[i]->type == REDIS_REPLY_STRING)
                                omr_assign_kick(a->core, r->element[i]->str);
}

static void on_sweep_timer(evutil_socket_t fd, short what, void *arg)
{
        struct omr_assign *a = arg;
        (void)fd;
        (void)what;
        if (ready(a) && !a->sweeping) {
                char now[24], emax[24], qmax[24];
                now_str(now);
                emax_str(a, emax);
                snprintf(qmax, sizeof(qmax), "%lld", a->core->conf->redis.queue_maxlen);
                const char *argv[] = {prefix(a), now, emax, qmax};
                if (omr_store_eval(a->core->store, &a->core->routing.sweep, on_swept, a, 0, 4, argv,
                                   NULL) == 0) {
                        a->sweeping = true;
                        a->inflight++;
                }
        }
        arm_sweep(a);
}

/* --- lifecycle ------------------------------------------------------------------ */

struct omr_assign *omr_assign_new(struct omr_core *core)
{
        struct omr_assign *a = calloc(1, sizeof(*a));
        if (a == NULL)
                return NULL;
        a->core = core;
        omr_script_init(&core->routing.assign, omr_assign_lua);
        omr_script_init(&core->routing.claim, omr_claim_lua);
        omr_script_init(&core->routing.action, omr_conv_action_lua);
        omr_script_init(&core->routing.agent, omr_agent_lua);
        omr_script_init(&core->routing.sweep, omr_sweep_lua);
        omr_script_init(&core->routing.stats, omr_stats_lua);
        a->sweep_ev = evtimer_new(core->base, on_sweep_timer, a);
        a->kick_ev = event_new(core->base, -1, 0, on_kick, a);
        if (a->sweep_ev == NULL || a->kick_ev == NULL) {
                omr_assign_free(a);
                return NULL;
        }
        return a;
}

void omr_assign_start(struct omr_assign *a)
{
        arm_sweep(a);
}

/* Stops new work; callbacks still pending are answered by the store's
 * close ("connection closed"), before omr_assign_free. */
void omr_assign_stop(struct omr_assign *a)
{
        if (a == NULL)
                return;
        a->stopped = true;
        event_del(a->sweep_ev);
        event_del(a->kick_ev);
}

void omr_assign_free(struct omr_assign *a)
{
        if (a == NULL)
                return;
        if (a->sweep_ev)
                event_free(a->sweep_ev);
        if (a->kick_ev)
                event_free(a->kick_ev);
        for (struct dispatch *d = a->queues, *next; d; d = next) {
                next = d->next;
                free(d->queue);
                free(d);
        }
        free(a);
}
