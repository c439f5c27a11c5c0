/* chat_store.h — what the chat connector reads from Redis (it never talks
 * to Redis itself): the visitor's conversation, a conversation's log after
 * a point (resume), and the subscription to chat pushes that the store
 * scripts publish (ingest, reply_finish, conversation events). Loop thread
 * only; each call returns 0 when sent (done called later, exactly once) or
 * -errno (done not called). */
#ifndef OMNIROUTE_CHAT_STORE_H
#define OMNIROUTE_CHAT_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "omniroute/core.h"
#include "omniroute/pubsub.h"

/* conversation_id: NULL when the visitor has none yet; agents_online:
 * agents whose presence has not expired. */
typedef void (*omr_chat_lookup_fn)(bool ok, const char *conversation_id, long long agents_online,
                                   void *arg);
int omr_chat_lookup(struct omr_core *core, const char *provider, const char *visitor,
                    omr_chat_lookup_fn done, void *arg);

/* One entry of omr:conv:{C}:log (borrowed, valid during the call). */
struct omr_chat_entry {
        const char *id;
        const char *direction; /* "in" | "out"; NULL when the entry lacks it */
        const char *message;   /* the message JSON; NULL when the entry lacks it */
};
/* Entries after `after` ("" or "0": from the start), at most `count`. */
typedef void (*omr_chat_history_fn)(bool ok, const struct omr_chat_entry *entries, size_t n,
                                    void *arg);
int omr_chat_history(struct omr_core *core, const char *conversation_id, const char *after,
                     size_t count, omr_chat_history_fn done, void *arg);

/* A visitor's socket was sent log entry `id` of the conversation (only
 * with chat.offline_email: a reply seen is not emailed). Fire and forget. */
void omr_chat_seen(struct omr_core *core, const char *conversation_id, const char *id);
/* Emails the due replies nobody saw (chat.offline_email). */
void omr_chat_offline_sweep(struct omr_core *core);

/* Subscribes to <prefix>chat on the daemon's Redis. */
struct omr_pubsub *omr_chat_subscribe(struct omr_core *core, omr_pubsub_message_fn on_message,
                                      omr_pubsub_ready_fn on_ready, void *arg);

#endif
