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
        size_t ingest_inflight;

        bool stopping;
        bool forced;
        int64_t drain_deadline_ms;
        struct event *drain_ev;
};

#endif
