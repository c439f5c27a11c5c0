/* pubsub.h — a Redis channel subscription for connectors that fan out to
 * their own clients (chat sockets). Loop thread only. */
#ifndef OMNIROUTE_PUBSUB_H
#define OMNIROUTE_PUBSUB_H

#include <stddef.h>

#include "omniroute/conf.h"

struct event_base;
struct omr_pubsub;

/* A published payload (borrowed, valid during the call). */
typedef void (*omr_pubsub_message_fn)(const char *payload, size_t len, void *arg);
/* The subscription is (again) in place: what was published while it was
 * not is not delivered; catch up from stored state. */
typedef void (*omr_pubsub_ready_fn)(void *arg);

/* Subscribes to `channel` on the configured Redis (unix_path overrides the
 * address: the embedded server). NULL on allocation failure. */
struct omr_pubsub *omr_pubsub_new(struct event_base *base, const struct omr_conf_redis *conf,
                                  const char *unix_path, const char *channel,
                                  omr_pubsub_message_fn on_message, omr_pubsub_ready_fn on_ready,
                                  void *arg);
void omr_pubsub_free(struct omr_pubsub *ps);

#endif
