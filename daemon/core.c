/* core.c — the daemon's core object: owns the configuration, the store,
 * the HTTP server and the connectors; start, reload (SIGHUP) and the
 * draining shutdown (SIGTERM). Loop thread only. */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "core.h"
#include "core_priv.h"
#include "embedded_redis.h"
#include "omniroute/fetch.h"
#include "omniroute/http.h"
#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/timefmt.h"

extern const char omr_ingest_lua[], omr_parts_lua[];

#define DRAIN_POLL_MS   20
#define FORCED_GRACE_MS 500

struct event_base *omr_core_base(const struct omr_core *core)
{
        return core->base;
}

const struct omr_conf *omr_core_conf(const struct omr_core *core)
{
        return core->conf;
}

struct omr_http *omr_core_http(const struct omr_core *core)
{
        return core->http;
}

struct omr_metrics *omr_core_metrics(const struct omr_core *core)
{
        return core->metrics;
}

struct omr_fetcher *omr_core_fetcher(const struct omr_core *core)
{
        return core->fetcher;
}

const char *omr_core_embedded_socket(const struct omr_core *core)
{
        return core->embedded ? omr_embedded_redis_socket(core->embedded) : NULL;
}

struct omr_connector *omr_core_connector_for(struct omr_core *core, const char *provider)
{
        size_t n = strcspn(provider, ":");
        for (size_t i = 0; i < core->n_connectors; i++) {
                const char *name = core->connectors[i].ops->name;
                if (strlen(name) == n && strncmp(name, provider, n) == 0)
                        return &core->connectors[i];
        }
        return NULL;
}

bool omr_core_store_ready(const struct omr_core *core)
{
        return core->store && omr_store_ready(core->store);
}

/* --- built-in endpoints -------------------------------------------------- */

static void h_healthz(struct omr_http_request *req, void *arg)
{
        (void)arg;
        static const char ok[] = "{\"status\":\"ok\"}";
        omr_http_reply(req, 200, "application/json", ok, sizeof(ok) - 1);
}

static void h_readyz(struct omr_http_request *req, void *arg)
{
        struct omr_core *core = arg;
        static const char ok[] = "{\"status\":\"ready\"}";
        /* A probe's answer, not a refused request: no log line (the store
         * logs the outage once). */
        static const char stopping[] = "{\"error\":\"not_ready\",\"detail\":\"shutting down\"}";
        static const char no_redis[] =
                "{\"error\":\"not_ready\",\"detail\":\"redis is not connected\"}";
        if (core->stopping)
                omr_http_reply(req, 503, "application/json", stopping, sizeof(stopping) - 1);
        else if (!omr_core_store_ready(core))
                omr_http_reply(req, 503, "application/json", no_redis, sizeof(no_redis) - 1);
        else
                omr_http_reply(req, 200, "application/json", ok, sizeof(ok) - 1);
}

static void h_metrics(struct omr_http_request *req, void *arg)
{
        struct omr_core *core = arg;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (f == NULL) {
                omr_http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        omr_metrics_render(core->metrics, f);
        fclose(f);
        omr_http_reply(req, 200, "text/plain; version=0.0.4", buf, len);
        free(buf);
}

/* --- Redis readiness: queues and agents ---------------------------------- */

static void on_store_ready(struct omr_store *s, void *arg)
{
        struct omr_core *core = arg;
        (void)s;
        omr_assign_sync(core->assign);
        omr_notify_sync(core->notify);
        omr_sla_sync(core->sla);
}

/* --- lifecycle --------------------------------------------------------------- */

struct omr_core *omr_core_new(struct event_base *base, struct omr_conf *conf)
{
        struct omr_core *core = calloc(1, sizeof(*core));
        if (core == NULL) {
                omr_conf_free(conf);
                return NULL;
        }
        core->magic = CORE_MAGIC;
        core->base = base;
        core->conf = conf;
        omr_log_set_level(conf->log_level);
        omr_script_init(&core->ingest_script, omr_ingest_lua);
        omr_script_init(&core->parts_script, omr_parts_lua);
        core->fetcher = omr_fetcher_new(base);
        core->metrics = omr_metrics_new();
        core->http = core->metrics ? omr_http_new(base, &conf->http, core->metrics) : NULL;
        core->store = core->metrics ? omr_store_new(base, &conf->redis, core->metrics) : NULL;
        core->outbound = omr_outbound_new(core);
        core->assign = omr_assign_new(core);
        core->notify = omr_notify_new(core);
        core->sla = omr_sla_new(core);
        core->kpi = omr_kpi_new(core);
        if (core->http == NULL || core->store == NULL || core->fetcher == NULL ||
            core->outbound == NULL || core->assign == NULL || core->notify == NULL ||
            core->sla == NULL || core->kpi == NULL) {
                omr_core_free(core);
                return NULL;
        }
        omr_store_on_ready(core->store, on_store_ready, core);
        return core;
}

int omr_core_start(struct omr_core *core)
{
        int rc;
        if (core->conf->redis.kind == OMR_REDIS_EMBEDDED) {
                core->embedded = omr_embedded_redis_start(core->base, &core->conf->redis);
                if (core->embedded == NULL)
                        return -EIO;
                rc = omr_store_set_unix_path(core->store,
                                             omr_embedded_redis_socket(core->embedded));
                if (rc != 0)
                        return rc;
        }
        omr_store_start(core->store);

        if ((rc = omr_http_route(core->http, "GET", "/healthz", h_healthz, core)) ||
            (rc = omr_http_route(core->http, "GET", "/readyz", h_readyz, core)) ||
            (rc = omr_http_route(core->http, "GET", "/metrics", h_metrics, core)) ||
            (rc = omr_replies_api_start(core)) || (rc = omr_agents_api_start(core)))
                return rc;

        size_t n = 0;
        while (omr_connectors[n])
                n++;
        core->connectors = calloc(n ? n : 1, sizeof(*core->connectors));
        if (core->connectors == NULL)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct omr_connector *c = &core->connectors[i];
                c->ops = omr_connectors[i];
                c->core = core;
                if (c->ops->init && (rc = c->ops->init(c, core->conf)) != 0) {
                        omr_log(LOG_ERR, "core", "connector init failed name=%s: %s", c->ops->name,
                                strerror(-rc));
                        return rc;
                }
                core->n_connectors++;
                if ((rc = c->ops->start(c)) != 0) {
                        omr_log(LOG_ERR, "core", "connector start failed name=%s: %s", c->ops->name,
                                strerror(-rc));
                        return rc;
                }
        }
        omr_outbound_start(core->outbound);
        omr_assign_start(core->assign);
        omr_notify_start(core->notify);
        omr_sla_start(core->sla);
        omr_kpi_start(core->kpi);
        if ((rc = omr_http_start(core->http)) != 0)
                return rc;
        omr_log(LOG_INFO, "core", "omnirouted " OMR_VERSION " started redis=%s",
                core->conf->redis.url ? core->conf->redis.url : "embedded");
        sd_notify(0, "READY=1\nSTATUS=serving");
        return 0;
}

void omr_core_reload(struct omr_core *core)
{
        struct omr_conf_errors errs;
        if (core->stopping)
                return;
        sd_notify(0, "RELOADING=1");
        struct omr_conf *next = omr_conf_load(core->conf->path, &errs);
        const char *blocker = next ? omr_conf_reload_blocker(core->conf, next) : NULL;
        if (next == NULL || blocker) {
                for (size_t i = 0; i < errs.n && next == NULL; i++)
                        omr_log(LOG_ERR, "conf", "%s", errs.msg[i]);
                if (blocker)
                        omr_log(LOG_ERR, "conf",
                                "reload refused: %s cannot change without a restart; keeping "
                                "the running configuration",
                                blocker);
                else
                        omr_log(LOG_ERR, "conf",
                                "reload refused: the new configuration is invalid; keeping the "
                                "running configuration");
                omr_conf_free(next);
                omr_metrics_inc(core->metrics, OMR_M_CONFIG_RELOADS, "refused", NULL);
                sd_notify(0, "READY=1\nSTATUS=serving (last reload refused)");
                return;
        }
        /* Nothing asynchronous holds the old conf: requests copy what they
         * keep (ingest copies the queue name into its Redis command). */
        omr_conf_free(core->conf);
        core->conf = next;
        omr_log_set_level(next->log_level);
        omr_assign_sync(core->assign);
        omr_notify_sync(core->notify);
        omr_sla_sync(core->sla);
        for (size_t i = 0; i < core->n_connectors; i++)
                if (core->connectors[i].ops->reload)
                        core->connectors[i].ops->reload(&core->connectors[i], next);
        omr_metrics_inc(core->metrics, OMR_M_CONFIG_RELOADS, "ok", NULL);
        omr_log(LOG_INFO, "conf", "configuration reloaded path=%s rules=%zu adapters=%zu",
                next->path, next->routing.n_rules, next->api.n_adapters);
        sd_notify(0, "READY=1\nSTATUS=serving");
}

static void on_embedded_stopped(void *arg)
{
        struct omr_core *core = arg;
        core->embedded = NULL;
        event_base_loopexit(core->base, NULL);
}

static void finish_shutdown(struct omr_core *core)
{
        if (core->drain_ev)
                event_del(core->drain_ev);
        for (size_t i = 0; i < core->n_connectors; i++)
                if (core->connectors[i].ops->stop)
                        core->connectors[i].ops->stop(&core->connectors[i]);
        omr_http_free(core->http);
        core->http = NULL;
        /* Provider requests first (their outcomes are written while the
         * store is still open), then the store, then what waits on it. */
        omr_fetcher_free(core->fetcher);
        core->fetcher = NULL;
        omr_assign_stop(core->assign);
        omr_notify_stop(core->notify);
        omr_sla_stop(core->sla);
        omr_kpi_stop(core->kpi);
        omr_store_free(core->store);
        core->store = NULL;
        omr_outbound_free(core->outbound);
        core->outbound = NULL;
        omr_log(LOG_INFO, "core", "stopped");
        if (core->embedded)
                omr_embedded_redis_stop(core->embedded, on_embedded_stopped, core);
        else
                event_base_loopexit(core->base, NULL);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
        struct omr_core *core = arg;
        (void)fd;
        (void)what;
        int64_t now = omr_mono_ms();
        if (omr_http_active(core->http) == 0 && core->ingest_inflight == 0 &&
            omr_outbound_busy(core->outbound) == 0 && omr_notify_busy(core->notify) == 0 &&
            omr_pollers_busy(core) == 0) {
                finish_shutdown(core);
                return;
        }
        if (!core->forced && now >= core->drain_deadline_ms) {
                omr_log(LOG_WARNING, "core",
                        "drain timeout: answering %zu waiting requests with 503",
                        omr_http_active(core->http));
                core->forced = true;
                core->drain_deadline_ms = now + FORCED_GRACE_MS;
                /* Closing the store answers every pending ingest (503 through
                 * the connectors' normal path); then anything still waiting. */
                omr_store_free(core->store);
                core->store = NULL;
                omr_http_abort_waiting(core->http, "shutting down");
        } else if (core->forced && now >= core->drain_deadline_ms) {
                finish_shutdown(core);
                return;
        }
        struct timeval tv = {0, DRAIN_POLL_MS * 1000};
        evtimer_add(core->drain_ev, &tv);
}

void omr_core_shutdown(struct omr_core *core)
{
        if (core->stopping)
                return;
        core->stopping = true;
        sd_notify(0, "STOPPING=1\nSTATUS=draining");
        omr_log(LOG_INFO, "core", "shutting down: draining %zu requests (up to %lldms)",
                omr_http_active(core->http), (long long)core->conf->http.drain_timeout_ms);
        omr_http_quiesce(core->http);
        omr_pollers_quiesce(core);
        core->drain_deadline_ms = omr_mono_ms() + core->conf->http.drain_timeout_ms;
        core->drain_ev = evtimer_new(core->base, on_drain_tick, core);
        if (core->drain_ev == NULL) {
                finish_shutdown(core);
                return;
        }
        on_drain_tick(-1, 0, core);
}

void omr_core_free(struct omr_core *core)
{
        if (core == NULL)
                return;
        for (size_t i = 0; i < core->n_connectors; i++)
                if (core->connectors[i].ops->free)
                        core->connectors[i].ops->free(&core->connectors[i]);
        free(core->connectors);
        omr_http_free(core->http);
        omr_fetcher_free(core->fetcher);
        omr_assign_stop(core->assign);
        omr_notify_stop(core->notify);
        omr_sla_stop(core->sla);
        omr_kpi_stop(core->kpi);
        omr_store_free(core->store);
        omr_outbound_free(core->outbound);
        omr_assign_free(core->assign);
        omr_notify_free(core->notify);
        omr_sla_free(core->sla);
        omr_kpi_free(core->kpi);
        if (core->drain_ev)
                event_free(core->drain_ev);
        omr_metrics_free(core->metrics);
        omr_conf_free(core->conf);
        core->magic = 0;
        free(core);
}
