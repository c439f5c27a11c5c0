/* fuzz_conf.c — the YAML configuration loader on arbitrary bytes. Secret
 * files resolve under a directory that does not exist, so every secret
 * reference is an error path, never a read. */
#include <stdint.h>

#include "omniroute/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct omr_conf_errors errs;
        struct omr_conf *c =
                omr_conf_load_buffer("/nonexistent/fuzz.yaml", (const char *)data, size, &errs);
        omr_conf_free(c);
        return 0;
}
