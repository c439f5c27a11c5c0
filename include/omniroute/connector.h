/* connector.h — the one shape every channel connector has (like an nginx
 * module). The core never knows a provider's format; a connector never
 * touches Redis: it calls omr_ingest() in and implements send() out.
 * The list of connectors is connectors/registry.c. Loop thread only. */
#ifndef OMNIROUTE_CONNECTOR_H
#define OMNIROUTE_CONNECTOR_H

#include "omniroute/conf.h"
#include "omniroute/core.h"

struct omr_connector;
struct omr_reply; /* outbound reply: defined with the outbound path */

typedef void (*omr_send_done_fn)(int status, const char *detail, void *arg);

struct omr_connector_ops {
        const char *name; /* also its key under `connectors:` in the config */
        enum omr_channel channel;
        /* Allocate private state; nothing may start yet. 0 or -errno. */
        int (*init)(struct omr_connector *c, const struct omr_conf *conf);
        /* Register HTTP routes, timers, sockets. 0 or -errno. */
        int (*start)(struct omr_connector *c);
        /* Deliver an agent's reply; NULL for ingest-only connectors. */
        int (*send)(struct omr_connector *c, const struct omr_reply *r, omr_send_done_fn done,
                    void *arg);
        /* Stop intake; in-flight work finishes through its callbacks. */
        void (*stop)(struct omr_connector *c);
        void (*free)(struct omr_connector *c);
};

struct omr_connector {
        const struct omr_connector_ops *ops;
        struct omr_core *core; /* borrowed */
        void *priv;            /* owned by the connector */
};

/* NULL-terminated, in start order. */
extern const struct omr_connector_ops *const omr_connectors[];

#endif
