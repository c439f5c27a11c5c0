/* fuzz_mime.c — the email MIME reader (connectors/email/mime.c, and
 * through it the charset decoder, the HTML converter and the quote
 * trimmer) over any bytes, with small limits so the cut paths run. What
 * it returns must hold the promises of mime.h whatever came in. */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "email/mime.h"

#define MAX_TEXT 4096

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        omr_email_mime_init();
        return 0;
}

static void check_str(const char *s, bool may_be_null)
{
        if (s == NULL) {
                if (!may_be_null)
                        abort();
                return;
        }
        if (!g_utf8_validate(s, -1, NULL))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const struct omr_email_limits lim = {.max_text = MAX_TEXT, .max_attachments = 8};
        struct omr_email *e = omr_email_parse((const char *)data, size, &lim);
        if (e == NULL)
                abort(); /* only on allocation failure */
        check_str(e->text, false);
        check_str(e->body_full, false);
        check_str(e->html, true);
        check_str(e->subject, true);
        check_str(e->from_name, true);
        check_str(e->from_addr, true);
        check_str(e->message_id, true);
        check_str(e->in_reply_to, true);
        if (strlen(e->body_full) > MAX_TEXT || (e->html && strlen(e->html) > MAX_TEXT) ||
            strlen(e->text) > strlen(e->body_full) || e->n_attachments > 8 ||
            memchr(e->warnings, '\0', sizeof(e->warnings)) == NULL)
                abort();
        /* Text is never lost to trimming. */
        if (e->body_full[strspn(e->body_full, " \t\r\n\f\v")] != '\0' && e->text[0] == '\0')
                abort();
        for (size_t i = 0; i < e->n_references; i++)
                check_str(e->references[i], false);
        for (size_t i = 0; i < e->n_recipients; i++)
                check_str(e->recipients[i], false);
        for (size_t i = 0; i < e->n_attachments; i++) {
                check_str(e->attachments[i].name, false);
                check_str(e->attachments[i].type, false);
                check_str(e->attachments[i].section, false);
                if (e->attachments[i].size < 0)
                        abort();
        }
        omr_email_free(e);
        return 0;
}
