/* message.h — the one normalised message model every channel maps into.
 *
 * A message owns all its strings (heap copies); omr_message_free() releases
 * them. The JSON form (omr_message_to_json / omr_message_from_json) is the
 * one stored in Redis and documented in docs/redis.md. */
#ifndef OMNIROUTE_MESSAGE_H
#define OMNIROUTE_MESSAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omniroute/langid.h"

#define OMR_ID_LEN 26 /* ULID: 48-bit ms time + 80 random bits, Crockford base32 */

enum omr_channel {
        OMR_CHANNEL_EMAIL,
        OMR_CHANNEL_CHAT,
        OMR_CHANNEL_SMS,
        OMR_CHANNEL_SOCIAL,
        OMR_CHANNEL_API,
        OMR_CHANNEL__COUNT
};

enum omr_direction { OMR_DIR_IN, OMR_DIR_OUT };

/* Ordered: a higher value is served first. */
enum omr_priority {
        OMR_PRIORITY_LOW,
        OMR_PRIORITY_NORMAL,
        OMR_PRIORITY_HIGH,
        OMR_PRIORITY_URGENT,
        OMR_PRIORITY__COUNT
};

struct omr_attachment {
        char *name;
        char *type;
        char *url;
        int64_t size; /* bytes; -1 when unknown */
};

struct omr_customer {
        char *id;     /* stable id at the provider: required */
        char *name;   /* display name, may be NULL */
        char *handle; /* E.164 number, email address or @user, may be NULL */
};

struct omr_message {
        char id[OMR_ID_LEN + 1];
        char conversation_id[OMR_ID_LEN + 1]; /* "" until threaded */
        enum omr_direction direction;
        enum omr_channel channel;
        char *provider;    /* "twilio", "imap", "api:<adapter>" … */
        char *external_id; /* provider's message id: the dedup key */
        char *thread_key;  /* provider's thread reference, may be NULL */
        struct omr_customer customer;
        char *to;
        char *subject;
        char *text; /* UTF-8, trimmed */
        char *html;
        char *body_full; /* the whole text when `text` was trimmed (quoted history, signature) */
        char *warnings;  /* what could not be read (broken MIME, unknown charset), or NULL */
        struct omr_attachment *attachments;
        size_t n_attachments;
        char **tags;
        size_t n_tags;
        struct omr_language language; /* tag "" until detected */
        int64_t received_at;          /* ms since the epoch, set by the daemon */
        int64_t sent_at;              /* ms since the epoch as the sender said; 0 unknown */
        enum omr_priority priority;
        char *agent_id;      /* outbound only */
        bool auto_submitted; /* sent by a machine (auto-reply, bulk): never acknowledged */
        /* Not stored: a conversation the connector verified this message
         * belongs to (a signed email reply token). Ingest joins it when it
         * exists, whatever the thread key says. */
        char *conversation_hint;
};

struct omr_message *omr_message_new(void);
void omr_message_free(struct omr_message *m);

const char *omr_channel_name(enum omr_channel c);
int omr_channel_parse(const char *name); /* -1 when unknown */
const char *omr_priority_name(enum omr_priority p);
int omr_priority_parse(const char *name); /* -1 when unknown */

/* New reference; NULL only on allocation failure. */
json_t *omr_message_to_json(const struct omr_message *m);

/* Decodes the stored JSON form. Returns NULL and fills err (naming the
 * offending field) when the document does not describe a valid message. */
struct omr_message *omr_message_from_json(const json_t *j, char *err, size_t errlen);

#endif
