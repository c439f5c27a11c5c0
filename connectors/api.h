/* api.h — the generic webhook's body parser, exposed for the fuzzer and
 * tests; the connector itself is registered in registry.c. */
#ifndef OMR_CONNECTOR_API_H
#define OMR_CONNECTOR_API_H

#include <jansson.h>

#include "omniroute/message.h"

/* Why a body was refused: a stable code and a sentence naming the field. */
struct omr_api_error {
        const char *code; /* bad_json | missing_field | invalid_field */
        char detail[256];
};

/* The adapter's JSON → a normalised message (provider "api:<adapter>"),
 * or NULL with err filled. Pure. */
struct omr_message *omr_api_message_from_json(const json_t *j, const char *adapter,
                                              struct omr_api_error *err);

#endif
