/* social_test.c — the pure parts of the Mastodon and X connectors: post
 * text clean-up, numeric id order, and the page readers (ordering,
 * cursor, the round of X pages, what is skipped). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/message.h"
#include "social/social.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_text(void **state)
{
        (void)state;
        static const struct {
                const char *in;
                bool html;
                const char *handle, *want;
        } cases[] = {
                {"@brand hello", false, "brand", "hello"},
                {"@Brand hello", false, "brand", "hello"},
                {"@brand@m.example hello", false, "brand", "hello"},
                {"@brand, hello", false, "brand", "hello"},
                {"@brandnew hello", false, "brand", "@brandnew hello"},
                {"@alice @brand hi", false, "brand", "@alice  hi"},
                {"hi @brand", false, "brand", "hi @brand"},
                {"@brand", false, "brand", ""},
                {"@brand hi", false, "", "@brand hi"},
                {"<p><span class=\"h-card\"><a href=\"https://m.example/@brand\" class=\"u-url "
                 "mention\">@<span>brand</span></a></span> order <br>late</p>",
                 true, "brand", "order\nlate"},
        };
        for (size_t i = 0; i < N(cases); i++) {
                char *got = omr_social_text(cases[i].in, cases[i].html, cases[i].handle);
                assert_non_null(got);
                if (strcmp(got, cases[i].want) != 0)
                        fail_msg("case %zu: '%s' -> '%s', want '%s'", i, cases[i].in, got,
                                 cases[i].want);
                free(got);
        }
}

static void test_id_cmp(void **state)
{
        (void)state;
        assert_int_equal(omr_social_id_cmp("9", "10"), -1);
        assert_int_equal(omr_social_id_cmp("110", "109"), 1);
        assert_int_equal(omr_social_id_cmp("0042", "42"), 0);
        assert_int_equal(omr_social_id_cmp("1790000000000000002", "1790000000000000010"), -1);
}

static struct omr_conf_social_account conf = {
        .name = "brand",
        .base_url = "https://m.example",
        .handle = "brand",
        .user_id = "42",
        .page_size = 2,
};

static int parse(struct social_account *a, const struct omr_poll_source_ops *ops, const char *body,
                 const char *cursor, struct omr_poll_page *page)
{
        struct omr_fetch_response r = {.status = 200, .body = body, .body_len = strlen(body)};
        char err[256];
        memset(page, 0, sizeof(*page));
        return ops->parse(a, &r, cursor, page, err, sizeof(err));
}

static void page_free(struct omr_poll_page *page)
{
        for (size_t i = 0; i < page->n; i++)
                omr_message_free(page->msgs[i]);
        free(page->msgs);
        free(page->cursor);
}

#define MENTION(nid, sid, acct, vis, html)                                                         \
        "{\"id\":\"" nid "\",\"type\":\"mention\",\"account\":{\"acct\":\"" acct                   \
        "\",\"display_name\":\"N\"},\"status\":{\"id\":\"" sid "\",\"visibility\":\"" vis          \
        "\",\"content\":\"" html "\",\"created_at\":\"2026-11-23T10:00:00.000Z\"}}"

static void test_mastodon_page(void **state)
{
        (void)state;
        struct social_account a = {.conf = &conf};
        snprintf(a.provider, sizeof(a.provider), "mastodon:brand");
        struct omr_poll_page page;
        /* Newest first on the wire, stored oldest first; a notification
         * that is not a usable mention is skipped but passed by the cursor. */
        const char *body = "[" MENTION(
                "12", "502", "bob@o.example", "public",
                "<p>two</p>") ","
                              "{\"id\":\"11\",\"type\":\"mention\",\"account\":{\"acct\":\"x\"}}"
                              "," MENTION("10", "500", "alice", "direct", "<p>@brand one</p>") "]";
        assert_int_equal(parse(&a, &omr_mastodon_poll_ops, body, "9", &page), 0);
        assert_int_equal(page.n, 2);
        assert_string_equal(page.msgs[0]->external_id, "500");
        assert_string_equal(page.msgs[0]->customer.id, "alice@m.example");
        assert_string_equal(page.msgs[0]->customer.handle, "@alice@m.example");
        assert_string_equal(page.msgs[0]->thread_key, "direct");
        assert_string_equal(page.msgs[0]->text, "one");
        assert_string_equal(page.msgs[1]->customer.id, "bob@o.example");
        assert_string_equal(page.msgs[1]->thread_key, "public");
        assert_string_equal(page.cursor, "12");
        assert_true(page.more); /* 3 ≥ page_size: more may wait */
        page_free(&page);
        /* Nothing newer: no cursor change, no more. */
        assert_int_equal(parse(&a, &omr_mastodon_poll_ops, "[]", "12", &page), 0);
        assert_int_equal(page.n, 0);
        assert_null(page.cursor);
        assert_false(page.more);
        page_free(&page);
        /* An alt text over 200 bytes is cut on a character boundary (a
         * split character would make the message unstorable forever). */
        char body2[1024], desc[260];
        memset(desc, 'a', 199);
        snprintf(desc + 199, sizeof(desc) - 199, "\xe1\xbb\x87 more"); /* "ệ" straddles byte 200 */
        snprintf(body2, sizeof(body2),
                 "[{\"id\":\"20\",\"type\":\"mention\",\"account\":{\"acct\":\"a\"},"
                 "\"status\":{\"id\":\"600\",\"visibility\":\"public\",\"content\":\"x\","
                 "\"media_attachments\":[{\"url\":\"https://m.example/i.png\",\"type\":"
                 "\"image\",\"description\":\"%s\"}]}}]",
                 desc);
        assert_int_equal(parse(&a, &omr_mastodon_poll_ops, body2, "12", &page), 0);
        assert_int_equal(page.n, 1);
        assert_int_equal(page.msgs[0]->n_attachments, 1);
        assert_int_equal(strlen(page.msgs[0]->attachments[0].name), 199);
        page_free(&page);
        /* An empty first poll stores "0": the next asks from the start. */
        assert_int_equal(parse(&a, &omr_mastodon_poll_ops, "[]", "", &page), 0);
        assert_string_equal(page.cursor, "0");
        page_free(&page);
        char *url = omr_mastodon_poll_ops.url(&a, "0", true);
        assert_non_null(strstr(url, "&min_id=0"));
        free(url);
        assert_int_equal(parse(&a, &omr_mastodon_poll_ops, "{\"error\":1}", "12", &page), -1);
        page_free(&page);
}

#define TWEET(id, author, conv, text)                                                              \
        "{\"id\":\"" id "\",\"author_id\":\"" author "\",\"conversation_id\":\"" conv              \
        "\",\"text\":\"" text "\"}"

static void test_x_round(void **state)
{
        (void)state;
        struct social_account a = {.conf = &conf};
        snprintf(a.provider, sizeof(a.provider), "x:brand");
        struct omr_poll_page page;
        char *url = omr_x_poll_ops.url(&a, "100", true);
        assert_non_null(strstr(url, "/2/users/42/mentions?max_results=2&"));
        assert_non_null(strstr(url, "&since_id=100"));
        assert_null(strstr(url, "pagination_token"));
        free(url);
        /* Page 1 (newest) names the next page: nothing is stored yet. */
        const char *p1 = "{\"data\":[" TWEET("105", "7", "101", "@brand c &amp; d") "," TWEET(
                "104", "8", "104", "b") "],\"includes\":{\"users\":[{\"id\":\"7\",\"username\":"
                                        "\"carol\",\"name\":\"Carol\"}]},\"meta\":{\"result_"
                                        "count\":2,\"newest_id\":\"105\",\"next_token\":\"t2\"}}";
        assert_int_equal(parse(&a, &omr_x_poll_ops, p1, "100", &page), 0);
        assert_int_equal(page.n, 0);
        assert_true(page.more);
        assert_null(page.cursor);
        page_free(&page);
        url = omr_x_poll_ops.url(&a, "100", false);
        assert_non_null(strstr(url, "&pagination_token=t2"));
        free(url);
        /* Page 2 ends the round: all of it, oldest first, cursor = newest. */
        const char *p2 = "{\"data\":[" TWEET("103", "7", "101", "a") "," TWEET(
                "104", "8", "104", "b") "],\"meta\":{\"result_count\":2,\"newest_id\":\"104\"}}";
        assert_int_equal(parse(&a, &omr_x_poll_ops, p2, "100", &page), 0);
        assert_int_equal(page.n, 3); /* 104 came twice: kept once */
        assert_string_equal(page.msgs[0]->external_id, "103");
        assert_string_equal(page.msgs[2]->external_id, "105");
        assert_string_equal(page.msgs[2]->text, "c & d");
        assert_string_equal(page.msgs[2]->customer.handle, "@carol");
        assert_string_equal(page.msgs[2]->thread_key, "101");
        assert_null(page.msgs[1]->customer.handle); /* no user expansion for 8 */
        assert_string_equal(page.cursor, "105");
        assert_false(page.more);
        page_free(&page);
        /* A refused token drops the round. */
        assert_int_equal(parse(&a, &omr_x_poll_ops, p1, "100", &page), 0);
        page_free(&page);
        struct omr_fetch_response bad = {.status = 400, .body = "{}", .body_len = 2};
        char err[256];
        memset(&page, 0, sizeof(page));
        assert_int_equal(omr_x_poll_ops.parse(&a, &bad, "100", &page, err, sizeof(err)), -1);
        assert_null(a.next_token);
        assert_int_equal(a.n_pending, 0);
        omr_social_round_clear(&a);
        /* An empty first poll stores "0", which asks without since_id. */
        assert_int_equal(parse(&a, &omr_x_poll_ops, "{\"meta\":{\"result_count\":0}}", "", &page),
                         0);
        assert_string_equal(page.cursor, "0");
        page_free(&page);
        url = omr_x_poll_ops.url(&a, "0", true);
        assert_null(strstr(url, "since_id"));
        free(url);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_text),
                cmocka_unit_test(test_id_cmp),
                cmocka_unit_test(test_mastodon_page),
                cmocka_unit_test(test_x_round),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
