/* fuzz_message_json.c — the stored message form (omr_message_from_json),
 * as an agent tool could write it into the outbox, on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "omniroute/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        json_error_t je;
        char err[256];
        json_t *j = json_loadb((const char *)data, size, 0, &je);
        if (j == NULL)
                return 0;
        struct omr_message *m = omr_message_from_json(j, err, sizeof(err));
        json_decref(j);
        if (m) {
                json_t *out = omr_message_to_json(m);
                if (out == NULL)
                        abort();
                json_decref(out);
        }
        omr_message_free(m);
        return 0;
}
