/* connector.h — the one shape every channel connector has (like an nginx
 * module). The core never knows a provider's format; a connector never
 * touches Redis: it calls omr_ingest() in and implements send() out.
 * The list of connectors is connectors/registry.c. Loop thread only. */
#ifndef OMNIROUTE_CONNECTOR_H
#define OMNIROUTE_CONNECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "omniroute/conf.h"
#include "omniroute/core.h"

struct omr_connector;

/* An agent's reply on its way to the customer. Borrowed by send(): copy
 * what must outlive the call. */
struct omr_reply {
        const char *reply_id;
        const char *conversation_id;
        const char *agent_id;
        const char *text;
        const char *account; /* the part of the conversation's provider after ':' */
        const char *to;      /* the customer's handle (phone number, address …) */
        /* What the conversation's inbound messages said, "" when nothing:
         * the first subject, the last message's provider id (email
         * Message-ID, status id) and the thread's first reference. */
        const char *subject;
        const char *in_reply_to;
        const char *thread_ref;
        int attempt; /* 1 for the first try */
};

enum omr_send_status {
        OMR_SEND_SENT,   /* the provider accepted it */
        OMR_SEND_RETRY,  /* refused for now (429, 5xx, not reached): try again later */
        OMR_SEND_FAILED, /* refused for good, or the outcome is unknown: never resent */
};

struct omr_send_result {
        enum omr_send_status status;
        const char *provider_message_id; /* SENT */
        const char *error;               /* RETRY / FAILED: what the provider said */
        int64_t retry_after_ms;          /* RETRY: the provider's wish, -1 when none */
};

/* Borrowed result: valid during the call. */
typedef void (*omr_send_done_fn)(const struct omr_send_result *res, void *arg);

struct omr_fetch_request;
struct omr_fetch_response;

/* Reads a provider's HTTP answer that is neither a transport failure nor a
 * 429/5xx into res (res->error may point into err). */
typedef void (*omr_send_parse_fn)(const struct omr_fetch_response *r, struct omr_send_result *res,
                                  char *err, size_t errlen);

/* Sends one provider API request for a reply and answers done with the
 * send result. Read here, the same for every provider: a request that
 * never reached the provider is retried, one that failed after leaving is
 * FAILED ("outcome unknown": it may have been sent), HTTP 429 and 5xx are
 * retried (honouring Retry-After); any other answer goes to parse.
 * 0, or -errno with done not called. */
int omr_send_http(struct omr_core *core, const char *provider, const struct omr_fetch_request *req,
                  omr_send_parse_fn parse, omr_send_done_fn done, void *arg);

struct omr_connector_ops {
        const char *name; /* also its key under `connectors:` in the config */
        enum omr_channel channel;
        /* init, stop and free may be NULL when a connector has nothing to do. */
        /* Allocate private state; nothing may start yet. 0 or -errno. */
        int (*init)(struct omr_connector *c, const struct omr_conf *conf);
        /* Register HTTP routes, timers, sockets. 0 or -errno. */
        int (*start)(struct omr_connector *c);
        /* Deliver an agent's reply; NULL for ingest-only connectors. 0 when
         * started (done is called exactly once, later), or -errno. */
        int (*send)(struct omr_connector *c, const struct omr_reply *r, omr_send_done_fn done,
                    void *arg);
        /* Longest reply text in characters the provider takes; 0: no limit. */
        size_t max_text;
        /* The configuration was reloaded (may be NULL): pick up changes
         * that need more than reading omr_core_conf() on the next request. */
        void (*reload)(struct omr_connector *c, const struct omr_conf *conf);
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
