/* store.h — the Redis connection: hiredis async on the libevent loop,
 * reconnect with backoff, a per-command timeout (hiredis 0.14 has none),
 * EVALSHA with transparent fallback to EVAL on NOSCRIPT, and a health
 * ping. Only daemon/ uses it: connectors go through omr_ingest(). */
#ifndef OMR_STORE_H
#define OMR_STORE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "omniroute/conf.h"

struct event_base;
struct omr_metrics;
struct omr_store;

struct omr_script {
        const char *src;
        char sha[41];
};

/* Computes the script's SHA1 for EVALSHA. */
void omr_script_init(struct omr_script *s, const char *src);

/* reply is borrowed (valid during the call); NULL with `error` set when the
 * command timed out, the connection was lost, or it could not be sent.
 * After a timeout Redis may still execute the command: callers must make
 * commands idempotent (ingest is, through its dedup key). */
typedef void (*omr_store_reply_fn)(const redisReply *reply, const char *error, void *arg);
typedef void (*omr_store_ready_fn)(struct omr_store *s, void *arg);

/* Copies what it needs from conf. */
struct omr_store *omr_store_new(struct event_base *base, const struct omr_conf_redis *conf,
                                struct omr_metrics *metrics);
/* A secondary connection (the outbox reader, whose blocking reads last up
 * to a second by design) stays out of the shared latency histogram and
 * the omr_redis_up gauge. */
void omr_store_secondary(struct omr_store *s);
/* Called each time a connection becomes ready (first connect, reconnect). */
void omr_store_on_ready(struct omr_store *s, omr_store_ready_fn fn, void *arg);
void omr_store_start(struct omr_store *s);
bool omr_store_ready(const struct omr_store *s);
/* Replaces the unix socket path before start (embedded redis). */
int omr_store_set_unix_path(struct omr_store *s, const char *path);

/* 0 when sent (cb will be called exactly once), -ENOTCONN when Redis is not
 * ready, -EIO when it could not be queued (cb not called). lens may be NULL
 * when every argument is a NUL-terminated string. */
int omr_store_command(struct omr_store *s, omr_store_reply_fn cb, void *arg, int argc,
                      const char **argv, const size_t *lens);
int omr_store_eval(struct omr_store *s, const struct omr_script *script, omr_store_reply_fn cb,
                   void *arg, int nkeys, int nargs, const char **argv, const size_t *lens);

/* Closes the connection; pending callbacks get error "connection closed". */
void omr_store_free(struct omr_store *s);

#endif
