/* fuzz_html.c — HTML to text (daemon/html_text.c) over any bytes, and the
 * quote trimmer (connectors/email/quote.c) over its output: both must
 * give valid UTF-8 whatever came in. */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "email/quote.h"
#include "omniroute/html.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text = omr_html_to_text((const char *)data, size);
        if (text == NULL || !g_utf8_validate(text, -1, NULL))
                abort();
        char *trimmed = omr_email_trim_quoted(text);
        if (trimmed == NULL || !g_utf8_validate(trimmed, -1, NULL) ||
            strlen(trimmed) > strlen(text))
                abort();
        if (text[strspn(text, " \t\r\n\f\v")] != '\0' && trimmed[0] == '\0')
                abort();
        free(trimmed);
        free(text);
        return 0;
}
