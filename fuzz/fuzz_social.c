/* fuzz_social.c — the Mastodon and X page readers (connectors/social/)
 * over any answer body: they must never crash, and every message they
 * return must carry what ingest requires, in valid UTF-8. The first byte
 * picks the provider and whether a cursor is stored. */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/message.h"
#include "roundtrip.h"
#include "social/social.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        bool x = data[0] & 1;
        const char *cursor = data[0] & 2 ? "1000" : "";
        char *body = malloc(size);
        if (body == NULL)
                return 0;
        memcpy(body, data + 1, size - 1);
        body[size - 1] = '\0';
        struct omr_conf_social_account conf = {
                .name = "brand",
                .base_url = "https://m.example",
                .handle = "brand",
                .user_id = "42",
                .page_size = 5,
        };
        struct social_account a = {.conf = &conf};
        snprintf(a.provider, sizeof(a.provider), "%s", x ? "x:brand" : "mastodon:brand");
        const struct omr_poll_source_ops *ops = x ? &omr_x_poll_ops : &omr_mastodon_poll_ops;
        struct omr_fetch_response r = {.status = 200, .body = body, .body_len = size - 1};
        for (int round = 0; round < 2; round++) { /* X: a second page joins the first */
                struct omr_poll_page page = {0};
                char err[256];
                char *url = ops->url(&a, cursor, round == 0);
                free(url);
                if (ops->parse(&a, &r, cursor, &page, err, sizeof(err)) == 0) {
                        for (size_t i = 0; i < page.n; i++) {
                                const struct omr_message *m = page.msgs[i];
                                if (!m->external_id || !m->customer.id || !m->text ||
                                    !g_utf8_validate(m->text, -1, NULL))
                                        abort();
                                omr_fuzz_roundtrip(page.msgs[i]);
                                omr_message_free(page.msgs[i]);
                        }
                }
                free(page.msgs);
                free(page.cursor);
        }
        omr_social_round_clear(&a);
        free(body);
        return 0;
}
