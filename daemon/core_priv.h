/* core_priv.h — the daemon's core object, shared by core.c (lifecycle,
 * reload, drain) and ingest.c (the message path). Not for connectors. */
#ifndef OMR_CORE_PRIV_H
#define OMR_CORE_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "omniroute/connector.h"
#include "omniroute/core.h"
#include "store.h"

#define CORE_MAGIC 0xc04eu

struct event;
struct omr_embedded_redis;
struct omr_outbound;

/* daemon/outbound.c: the delivery engine for agent replies. */
struct omr_outbound *omr_outbound_new(struct omr_core *core);
void omr_outbound_start(struct omr_outbound *ob);
/* Deliveries whose provider request is in flight or whose outcome is not
 * yet written: shutdown waits for these. */
size_t omr_outbound_busy(const struct omr_outbound *ob);
void omr_outbound_free(struct omr_outbound *ob);
/* daemon/replies_api.c */
int omr_replies_api_start(struct omr_core *core);
struct omr_http_request;
/* The bearer token's name (from api.tokens), or NULL after answering 401. */
const char *omr_api_authorize(struct omr_core *core, struct omr_http_request *req);
/* The bearer token, or NULL after answering 401. */
const struct omr_conf_token *omr_api_token(struct omr_core *core, struct omr_http_request *req);
/* Whether token t may act as `agent` (NULL: an operation for unbound
 * tokens only, like managing agents); false after answering 403. */
bool omr_api_may_act_as(struct omr_core *core, struct omr_http_request *req,
                        const struct omr_conf_token *t, const char *agent);
/* Conversation and reply ids: ULIDs and stream ids. */
bool omr_api_valid_id(const char *s);
/* daemon/agents_api.c: agents, presence, claims, conversation actions. */
int omr_agents_api_start(struct omr_core *core);

/* daemon/assign.c: keeps the queues' settings and the configured agents
 * in Redis, runs the assignment timeouts once a second, and dispatches
 * push queues when work or an agent appears. */
struct omr_assign;
struct omr_assign *omr_assign_new(struct omr_core *core);
void omr_assign_start(struct omr_assign *a);
/* Publishes queue settings and config agents (on connect and reload). */
void omr_assign_sync(struct omr_assign *a);
/* Schedules a dispatch of one push queue; NULL: every push queue. */
void omr_assign_kick(struct omr_core *core, const char *queue);
void omr_assign_stop(struct omr_assign *a);
void omr_assign_free(struct omr_assign *a);

/* daemon/notify.c: offers and assignments to agents' webhooks and email,
 * with retries from Redis. */
struct omr_notify;
struct omr_notify *omr_notify_new(struct omr_core *core);
void omr_notify_start(struct omr_notify *n);
void omr_notify_sync(struct omr_notify *n);
/* Deliveries whose outcome is not yet written: shutdown waits for these. */
size_t omr_notify_busy(const struct omr_notify *n);
void omr_notify_stop(struct omr_notify *n);
void omr_notify_free(struct omr_notify *n);

/* daemon/sla.c: computes SLA due times with the policies' calendars and
 * fires warnings and breaches (docs/sla.md). */
struct omr_sla;
struct omr_sla *omr_sla_new(struct omr_core *core);
void omr_sla_start(struct omr_sla *s);
void omr_sla_sync(struct omr_sla *s);
/* A clock may have started: compute and fire without waiting a second. */
void omr_sla_kick(struct omr_core *core);
void omr_sla_stop(struct omr_sla *s);
void omr_sla_free(struct omr_sla *s);

/* daemon/kpi.c: the KPIs from Redis as /metrics series, refreshed. */
struct omr_kpi;
struct omr_kpi *omr_kpi_new(struct omr_core *core);
void omr_kpi_start(struct omr_kpi *k);
void omr_kpi_stop(struct omr_kpi *k);
void omr_kpi_free(struct omr_kpi *k);

/* The assignment scripts (daemon/<name>.lua, routing.lua in front). */
struct omr_routing_scripts {
        struct omr_script assign, claim, action, agent, sweep, stats;
};
/* The connector that sends for a provider name ("twilio:main" → twilio). */
struct omr_connector *omr_core_connector_for(struct omr_core *core, const char *provider);
/* The unix socket of the embedded redis, or NULL. */
const char *omr_core_embedded_socket(const struct omr_core *core);
/* The hash in omr:thread:<channel>:<hash> (ingest.c). 0 or -1. */
int omr_thread_hash(const char *provider, const char *customer_id, const char *thread_ref,
                    char out[33]);

struct omr_core {
        unsigned magic;
        struct event_base *base;
        struct omr_conf *conf; /* owned; replaced whole on reload */
        struct omr_metrics *metrics;
        struct omr_http *http;
        struct omr_store *store; /* NULL once closed during shutdown */
        struct omr_embedded_redis *embedded;
        struct omr_connector *connectors;
        size_t n_connectors;
        struct omr_script ingest_script;
        struct omr_script parts_script;
        size_t ingest_inflight;
        struct omr_fetcher *fetcher;
        struct omr_outbound *outbound;
        struct omr_assign *assign;
        struct omr_notify *notify;
        struct omr_sla *sla;
        struct omr_kpi *kpi;
        struct omr_routing_scripts routing;
        struct omr_poller *pollers; /* every running poller (daemon/poller.c) */
        bool stopping;
        bool forced;
        int64_t drain_deadline_ms;
        struct event *drain_ev;
};

/* Shutdown: pollers stop starting requests, finish what is in flight
 * (storing it) and release their leases; busy counts what is left. */
void omr_pollers_quiesce(struct omr_core *core);
size_t omr_pollers_busy(const struct omr_core *core);

#endif
