/* core.h — what connectors see of the daemon: the loop, the current
 * configuration, the HTTP server, metrics, and the single way in for
 * messages, omr_ingest(). Loop thread only. */
#ifndef OMNIROUTE_CORE_H
#define OMNIROUTE_CORE_H

#include <stdbool.h>

#include "omniroute/conf.h"
#include "omniroute/message.h"

struct event_base;
struct omr_core;
struct omr_http;
struct omr_metrics;
struct omr_fetcher;

enum omr_ingest_status {
        OMR_INGEST_STORED,      /* written to Redis; safe to acknowledge */
        OMR_INGEST_DUPLICATE,   /* seen before (provider retry); acknowledge, nothing new stored */
        OMR_INGEST_UNAVAILABLE, /* Redis down, slow or refusing: nothing stored, retry later */
};

struct omr_ingest_result {
        enum omr_ingest_status status;
        const char *conversation_id; /* valid for STORED / DUPLICATE */
        const char *message_id;
        const char *queue;
        bool new_conversation;
        const char *log_id; /* the message's entry id in the conversation log (NULL: unknown) */
        const char *detail; /* why, for UNAVAILABLE */
};

/* Borrowed result: valid only during the call. */
typedef void (*omr_ingest_done_fn)(const struct omr_ingest_result *res, void *arg);

/* The one entry point for inbound messages: dedup by (provider,
 * external_id), thread into a conversation, route, store atomically, then
 * call done exactly once — possibly before omr_ingest returns. Takes
 * ownership of msg. Acknowledge the source only from done, and only for
 * STORED or DUPLICATE. */
void omr_ingest(struct omr_core *core, struct omr_message *msg, omr_ingest_done_fn done, void *arg);

/* Delivery state reported by a provider (status callback) for a reply it
 * accepted: provider "twilio:main", its message id, the new status
 * (delivered, undelivered, failed, sent …) and an error code or NULL.
 * done(stored, arg): stored is false when Redis could not be written
 * (answer 503); a report about a message omniroute did not send is logged
 * and counts as stored (acknowledge it, nothing to retry). */
typedef void (*omr_status_done_fn)(bool stored, void *arg);
void omr_reply_status(struct omr_core *core, const char *provider, const char *provider_message_id,
                      const char *status, const char *error, omr_status_done_fn done, void *arg);

/* Collect the parts of a message a provider split (Vonage concat): store
 * part `part` of `total` under (provider, group); done gets the joined
 * text once all parts are in (in part order, NULL while incomplete), or
 * stored=false when Redis could not be written. */
typedef void (*omr_parts_done_fn)(bool stored, const char *joined, void *arg);
void omr_collect_part(struct omr_core *core, const char *provider, const char *group, int part,
                      int total, const char *text, omr_parts_done_fn done, void *arg);

/* A polled source's position, kept in Redis (daemon/cursor.c). got: ok is
 * false when Redis could not be read; value is NULL when no cursor is
 * stored yet (borrowed). Both return 0 when sent (done is called later,
 * exactly once) or -errno (done not called). */
typedef void (*omr_cursor_get_fn)(bool ok, const char *value, void *arg);
typedef void (*omr_cursor_set_fn)(bool ok, void *arg);
int omr_cursor_get(struct omr_core *core, const char *name, omr_cursor_get_fn done, void *arg);
int omr_cursor_set(struct omr_core *core, const char *name, const char *value,
                   omr_cursor_set_fn done, void *arg);

struct omr_fetcher *omr_core_fetcher(const struct omr_core *core);
struct event_base *omr_core_base(const struct omr_core *core);
const struct omr_conf *omr_core_conf(const struct omr_core *core);
struct omr_http *omr_core_http(const struct omr_core *core);
struct omr_metrics *omr_core_metrics(const struct omr_core *core);
bool omr_core_store_ready(const struct omr_core *core);

#endif
