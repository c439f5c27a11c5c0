/* meta.h — the Meta (Messenger, Instagram) webhook body parser, exposed
 * for the fuzzer and tests; the connector itself is registered in
 * registry.c. */
#ifndef OMR_CONNECTOR_META_H
#define OMR_CONNECTOR_META_H

#include <stddef.h>

#include "omniroute/message.h"

/* More messaging items than this in one delivery: 413. */
#define OMR_META_MAX_ITEMS 1000

/* Why a body was refused: the HTTP status (400, 413, or 503 when memory
 * ran out), a stable code and a sentence naming the field. */
struct omr_meta_error {
        unsigned status;
        const char *code; /* bad_json | invalid_utf8 | invalid_field | too_many_messages |
                             store_unavailable */
        char detail[256];
};

/* The customer messages of one webhook delivery, in delivery order. */
struct omr_meta_batch {
        struct omr_message **msgs; /* owned */
        size_t n;
        size_t skipped;          /* delivery / read receipts, reactions, echoes, postbacks … */
        size_t items;            /* messaging items seen */
        size_t invalid;          /* items of a wrong shape, left out (the rest is stored) */
        char first_invalid[256]; /* why the first of them was */
};

/* Webhook JSON → messages with provider "meta:<app>", thread key
 * "<object>:<recipient id>". An item of a wrong shape is left out and
 * counted (one bad item must not cost the others of a signed delivery);
 * a delivery with nothing usable but such items is refused. 0, or -1 with
 * err filled and out empty. Pure. */
int omr_meta_parse(const char *body, size_t len, const char *app, struct omr_meta_batch *out,
                   struct omr_meta_error *err);
void omr_meta_batch_free(struct omr_meta_batch *b);

#endif
