/* roundtrip.h — the check every message-producing fuzzer ends with: what
 * a parser accepted must survive the stored JSON form and come back.
 * Header-only, for the fuzz targets. */
#ifndef OMR_FUZZ_ROUNDTRIP_H
#define OMR_FUZZ_ROUNDTRIP_H

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/message.h"

static inline void omr_fuzz_roundtrip(struct omr_message *m)
{
        memcpy(m->id, "01ARZ3NDEKTSV4RRFFQ69G5FAV", OMR_ID_LEN + 1);
        json_t *out = omr_message_to_json(m);
        char e[256];
        struct omr_message *back = out ? omr_message_from_json(out, e, sizeof(e)) : NULL;
        if (out && back == NULL)
                abort();
        omr_message_free(back);
        json_decref(out);
}

#endif
