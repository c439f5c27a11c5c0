/* embedded_redis.h — the redis-server the daemon runs itself when the
 * configuration names none (development and single-host setups): started
 * on a unix socket in the runtime directory, restarted if it dies,
 * stopped last on shutdown. */
#ifndef OMR_EMBEDDED_REDIS_H
#define OMR_EMBEDDED_REDIS_H

#include "omniroute/conf.h"

struct event_base;
struct omr_embedded_redis;

/* Starts redis-server; NULL on failure (logged). */
struct omr_embedded_redis *omr_embedded_redis_start(struct event_base *base,
                                                    const struct omr_conf_redis *conf);
const char *omr_embedded_redis_socket(const struct omr_embedded_redis *e);
/* SIGTERM (SIGKILL after 5 s), then done(arg) from the loop; frees e. */
void omr_embedded_redis_stop(struct omr_embedded_redis *e, void (*done)(void *arg), void *arg);

#endif
