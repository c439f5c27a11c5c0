/* fuzz_meta.c — the Meta webhook body → messages mapping on arbitrary
 * bytes, and the stored JSON round trip of every message it accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../connectors/meta.h"
#include "roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct omr_meta_batch b;
        struct omr_meta_error err = {0};
        if (omr_meta_parse((const char *)data, size, "fuzz", &b, &err) != 0) {
                /* A refusal always says why, with a 4xx the handler can send. */
                if (err.code == NULL || err.detail[0] == '\0' ||
                    (err.status != 400 && err.status != 413) || b.n != 0 || b.msgs != NULL)
                        abort();
                return 0;
        }
        if (b.n + b.skipped + b.invalid != b.items || b.items > OMR_META_MAX_ITEMS)
                abort();
        for (size_t i = 0; i < b.n; i++) {
                struct omr_message *m = b.msgs[i];
                if (m->external_id == NULL || m->customer.id == NULL || m->thread_key == NULL ||
                    m->text == NULL || (*m->text == '\0' && m->n_attachments == 0))
                        abort();
                omr_fuzz_roundtrip(m);
        }
        omr_meta_batch_free(&b);
        return 0;
}
