/* email_token_test.c — unit tests for connectors/email/token.c: the token
 * against a vector computed with Python's hmac module, and what may and
 * may not verify: case-folded local parts, tampered ids and MACs, other
 * keys, addresses and Message-IDs that are not ours. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "email/token.h"

#define KEY  "0123456789abcdef-token-key"
#define CONV "01JD8Z3K4M5N6P7Q8R9S0T1V2W"
/* hmac.new(KEY, b"omniroute-email-conversation:" + CONV, sha256).hexdigest()[:20] */
#define TOKEN CONV "-6a361d108c166178facb"

static struct omr_conf_email_mailbox mailbox(const char *key)
{
        struct omr_conf_email_mailbox mb = {
                .name = "support",
                .address = "support@example.com",
                .token_secret = (unsigned char *)key,
                .token_secret_len = strlen(key),
        };
        return mb;
}

static void token_matches_the_vector(void **state)
{
        (void)state;
        struct omr_conf_email_mailbox mb = mailbox(KEY);
        char tok[OMR_EMAIL_TOKEN_LEN + 1];
        omr_email_token(&mb, CONV, tok);
        assert_string_equal(tok, TOKEN);
}

static void check_cases(void **state)
{
        (void)state;
        struct omr_conf_email_mailbox mb = mailbox(KEY), other = mailbox("another-key-0123456789");
        static const struct {
                const char *token;
                bool ok;
        } cases[] = {
                {TOKEN, true},
                {"01jd8z3k4m5n6p7q8r9s0t1v2w-6a361d108c166178facb", true},  /* lower-cased */
                {"01JD8Z3K4M5N6P7Q8R9S0T1V2W-6A361D108C166178FACB", true},  /* upper-cased */
                {"01JD8Z3K4M5N6P7Q8R9S0T1V2X-6a361d108c166178facb", false}, /* other id */
                {"01JD8Z3K4M5N6P7Q8R9S0T1V2W-6a361d108c166178facc", false}, /* other MAC */
                {"01JD8Z3K4M5N6P7Q8R9S0T1V2W-6a361d108c166178fac", false},  /* short */
                {"01JD8Z3K4M5N6P7Q8R9S0T1V2W_6a361d108c166178facb", false}, /* separator */
                {"", false},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char conv[OMR_ID_LEN + 1] = "";
                bool ok = omr_email_token_check(&mb, cases[i].token, strlen(cases[i].token), conv);
                if (ok != cases[i].ok)
                        fail_msg("case %zu (%s): got %d", i, cases[i].token, ok);
                if (ok)
                        assert_string_equal(conv, CONV);
        }
        char conv[OMR_ID_LEN + 1];
        assert_false(omr_email_token_check(&other, TOKEN, strlen(TOKEN), conv));
}

static void addresses_and_message_ids(void **state)
{
        (void)state;
        struct omr_conf_email_mailbox mb = mailbox(KEY);
        char conv[OMR_ID_LEN + 1];
        assert_true(omr_email_token_in_address(&mb, "support+" TOKEN "@example.com", conv));
        assert_string_equal(conv, CONV);
        assert_true(omr_email_token_in_address(&mb, "SUPPORT+" TOKEN "@Example.COM", conv));
        assert_false(omr_email_token_in_address(&mb, "sales+" TOKEN "@example.com", conv));
        assert_false(omr_email_token_in_address(&mb, "support+" TOKEN "@example.org", conv));
        assert_false(omr_email_token_in_address(&mb, "support@example.com", conv));
        assert_false(omr_email_token_in_address(&mb, "supportx+" TOKEN "@example.com", conv));

        assert_true(omr_email_token_in_msgid(
                &mb, "omr.01JD90000000000000000000R1." TOKEN "@example.com", conv));
        assert_string_equal(conv, CONV);
        assert_true(
                omr_email_token_in_msgid(&mb, "omr.1700000000000-0." TOKEN "@example.com", conv));
        assert_false(omr_email_token_in_msgid(&mb, "abc." TOKEN "@example.com", conv));
        assert_false(omr_email_token_in_msgid(&mb, "omr." TOKEN "@example.com", conv));
        assert_false(omr_email_token_in_msgid(&mb, "omr.x.y@example.com", conv));
        assert_false(omr_email_token_in_msgid(&mb, NULL, conv));

        assert_true(omr_email_is_own_address(&mb, "support@example.com"));
        assert_true(omr_email_is_own_address(&mb, "Support+anything@EXAMPLE.com"));
        assert_false(omr_email_is_own_address(&mb, "support2@example.com"));
        assert_false(omr_email_is_own_address(&mb, "customer@example.com"));
        assert_false(omr_email_is_own_address(&mb, NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(token_matches_the_vector),
                cmocka_unit_test(check_cases),
                cmocka_unit_test(addresses_and_message_ids),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
