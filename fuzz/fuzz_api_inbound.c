/* fuzz_api_inbound.c — the generic webhook body parser and the message
 * JSON round trip, on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../connectors/api.h"
#include "roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        json_error_t je;
        json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
        if (j == NULL)
                return 0;
        struct omr_api_error err = {0};
        struct omr_message *m = omr_api_message_from_json(j, "fuzz", &err);
        json_decref(j);
        if (m == NULL)
                return 0;
        omr_fuzz_roundtrip(m);
        omr_message_free(m);
        return 0;
}
