/* provider_sig_test.c — unit tests for the SMS providers' webhook
 * signatures in daemon/signature.c: Twilio's X-Twilio-Signature and
 * Vonage's signed webhooks (`sig` parameter).
 *
 * Every expected signature below was produced by the provider's official
 * SDK, never by our code, with node 20 in tests/js (package.json pins the
 * versions), through tests/js/sign.js (JSON on stdin, one array of
 * requests):
 *
 *   Twilio: twilio 6.2.0, require('twilio').getExpectedTwilioSignature(
 *           token, url, params), each value also accepted by
 *           twilio.validateRequest(token, sig, url, params).
 *   Vonage: @vonage/sms 1.21.0 + @vonage/auth 1.15.0. The SDK has no
 *           function returning a webhook signature, only
 *           SMS.verifySignature(sig, params, secret, AlgorithmTypes.X); sign.js
 *           builds the candidate from Vonage's documented scheme and prints
 *           it only once verifySignature accepts it (and rejects a
 *           one-character change of it). So every Vonage value here is one the
 *           official verifySignature accepts.
 *
 * The inputs given to the SDKs are the NULL-terminated name/value lists and
 * the URLs next to each value (params as a JSON object of strings). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/form.h"
#include "omniroute/signature.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Text used below (UTF-8). */
#define VI_REFUND "Ho\xc3\xa0n ti\xe1\xbb\x81n"       /* Hoàn tiền */
#define VI_SWAP   "\xc4\x91\xe1\xbb\x95i h\xc3\xa0ng" /* đổi hàng */
#define TH_REFUND                                                                                  \
        "\xe0\xb8\x82\xe0\xb8\xad\xe0\xb8\x84\xe0\xb8\xb7\xe0\xb8\x99\xe0\xb9\x80\xe0\xb8\x87"     \
        "\xe0\xb8\xb4\xe0\xb8\x99" /* ขอคืนเงิน */

/* A form from a NULL-terminated name, value, … list. */
static void form_from(struct omr_form *f, const char *const *kv)
{
        memset(f, 0, sizeof(*f));
        for (size_t i = 0; kv[i]; i += 2)
                assert_int_equal(omr_form_set(f, kv[i], kv[i + 1]), 0);
}

/* ======================================================================
 * Twilio
 * ====================================================================== */

#define TW_TOKEN    "9f1c2b7e4d3a5c6b8e0f1a2b3c4d5e6f"
#define TW_URL      "https://support.example.com/v1/sms/twilio/main"
#define TW_URL_443  "https://support.example.com:443/v1/sms/twilio/main"
#define TW_URL_8443 "https://support.example.com:8443/v1/sms/twilio/main"
#define TW_HTTP     "http://sms.example.net/hook"
#define TW_HTTP_80  "http://sms.example.net:80/hook"
#define TW_MSG_SID  "MM5e3c8b9a7f6d4e2c1b0a9f8e7d6c5b4a"
#define TW_ACCOUNT  "AC0123456789abcdef0123456789abcdef"

/* An inbound MMS as Twilio posts it ("A message comes in"), with one media
 * item and the empty location fields Twilio sends for UK numbers. */
/* clang-format off */
static const char *const tw_typical[] = {
        "ToCountry",         "GB",
        "ToState",           "",
        "SmsMessageSid",     TW_MSG_SID,
        "NumMedia",          "1",
        "ToCity",            "",
        "FromZip",           "",
        "SmsSid",            TW_MSG_SID,
        "FromState",         "",
        "SmsStatus",         "received",
        "FromCity",          "",
        "Body",              "Hello, is my order shipped?",
        "FromCountry",       "GB",
        "To",                "+447700900123",
        "ToZip",             "",
        "NumSegments",       "1",
        "MessageSid",        TW_MSG_SID,
        "AccountSid",        TW_ACCOUNT,
        "From",              "+447700900001",
        "ApiVersion",        "2010-04-01",
        "MediaUrl0",         "https://api.twilio.com/2010-04-01/Accounts/" TW_ACCOUNT
                             "/Messages/" TW_MSG_SID "/Media/ME0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "MediaContentType0", "image/jpeg",
        NULL,
};
/* clang-format on */

static const char *const tw_small[] = {
        "MessageSid", "SM0123456789abcdef0123456789abcdef",
        "From",       "+447700900001",
        "To",         "+447700900123",
        "Body",       "hi",
        NULL,
};

/* UTF-8 (Vietnamese, Thai) and the characters form encoding is about. */
#define TW_UTF8_BODY VI_REFUND " + " VI_SWAP " & " TH_REFUND " = 100%"
static const char *const tw_utf8[] = {
        "MessageSid", "SM00000000000000000000000000000001",
        "From",       "+84912345678",
        "To",         "+447700900123",
        "Body",       TW_UTF8_BODY,
        NULL,
};

static const char *const tw_none[] = {NULL};

static const struct {
        const char *name;
        const char *const *params;
        const char *signed_url; /* the URL given to getExpectedTwilioSignature */
        const char *sig;        /* what it returned */
        const char *accept[3];  /* URLs our verify must accept the header for */
} twilio_vectors[] = {
        {"typical inbound MMS",
         tw_typical,
         TW_URL,
         "2Hv2jAbgjeIqMQYlrjBP1oc1ujg=",
         {TW_URL, TW_URL_443}},
        {"URL with a query string",
         tw_small,
         TW_URL "?account=main&tag=a%20b",
         "/dcq60v3YSrd3F2Xp+jdU2qI8iE=",
         {TW_URL "?account=main&tag=a%20b", TW_URL_443 "?account=main&tag=a%20b"}},
        /* Twilio signed with :443, we know the URL without it … */
        {"signed with :443",
         tw_small,
         TW_URL_443,
         "L5QtJcUzIM5aoho141230rf0dOY=",
         {TW_URL_443, TW_URL}},
        /* … and the other way round. */
        {"signed without :443",
         tw_small,
         TW_URL,
         "HqZC0xJSGtxo21zlBageY5bcSts=",
         {TW_URL, TW_URL_443}},
        {"signed with :443 and a query",
         tw_small,
         TW_URL_443 "?account=main",
         "3hpkwLI6X/6gLdpyBA/AENswXUc=",
         {TW_URL_443 "?account=main", TW_URL "?account=main"}},
        {"plain http signed with :80",
         tw_small,
         TW_HTTP_80,
         "h4fEpYUyawGlRdjG3sfLxLfM1Jc=",
         {TW_HTTP_80, TW_HTTP}},
        {"non-default port", tw_small, TW_URL_8443, "zX0++WUi7FB7w1r+3BQeU9J59A8=", {TW_URL_8443}},
        {"UTF-8, '+', '&', '=' and '%' in a value",
         tw_utf8,
         TW_URL,
         "YSTWn/YfRnZncKP49L5gvo4eaYs=",
         {TW_URL, TW_URL_443}},
        {"no parameters", tw_none, TW_URL, "EIpuQQSNyUdYOOTWTy0kjrWEmkE=", {TW_URL, TW_URL_443}},
};

/* omr_sig_twilio computes the SDK's value byte for byte, and verify
 * accepts it for the URL as signed and with the default port toggled. */
static void test_twilio_vectors(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(twilio_vectors); i++) {
                struct omr_form f;
                char out[29];

                form_from(&f, twilio_vectors[i].params);
                memset(out, 0, sizeof(out));
                assert_int_equal(omr_sig_twilio(TW_TOKEN, twilio_vectors[i].signed_url, &f, out),
                                 0);
                if (strcmp(out, twilio_vectors[i].sig) != 0)
                        fail_msg("%s: omr_sig_twilio gave %s, the SDK %s", twilio_vectors[i].name,
                                 out, twilio_vectors[i].sig);
                for (size_t k = 0; k < N(twilio_vectors[i].accept); k++) {
                        const char *url = twilio_vectors[i].accept[k];
                        if (url == NULL)
                                continue;
                        if (!omr_sig_twilio_verify(TW_TOKEN, url, &f, twilio_vectors[i].sig))
                                fail_msg("%s: verify refused the SDK's signature for %s",
                                         twilio_vectors[i].name, url);
                }
                omr_form_free(&f);
        }
}

/* The same requests as the daemon sees them: the urlencoded body Twilio
 * posts, parsed by omr_form_parse, then verified. */
static void test_twilio_parsed_body(void **state)
{
        static const struct {
                const char *body, *sig;
        } bodies[] = {
                {"ToCountry=GB&ToState=&SmsMessageSid=" TW_MSG_SID "&NumMedia=1&ToCity=&FromZip="
                 "&SmsSid=" TW_MSG_SID "&FromState=&SmsStatus=received&FromCity="
                 "&Body=Hello%2C+is+my+order+shipped%3F&FromCountry=GB&To=%2B447700900123&ToZip="
                 "&NumSegments=1&MessageSid=" TW_MSG_SID "&AccountSid=" TW_ACCOUNT
                 "&From=%2B447700900001&ApiVersion=2010-04-01"
                 "&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2F" TW_ACCOUNT
                 "%2FMessages%2F" TW_MSG_SID "%2FMedia%2FME0f1e2d3c4b5a69788796a5b4c3d2e1f0"
                 "&MediaContentType0=image%2Fjpeg",
                 "2Hv2jAbgjeIqMQYlrjBP1oc1ujg="},
                {"MessageSid=SM00000000000000000000000000000001&From=%2B84912345678"
                 "&To=%2B447700900123&Body=Ho%C3%A0n+ti%E1%BB%81n+%2B+%C4%91%E1%BB%95i+h%C3%A0ng"
                 "+%26+%E0%B8%82%E0%B8%AD%E0%B8%84%E0%B8%B7%E0%B8%99%E0%B9%80%E0%B8%87%E0%B8%B4"
                 "%E0%B8%99+%3D+100%25",
                 "YSTWn/YfRnZncKP49L5gvo4eaYs="},
        };

        (void)state;
        for (size_t i = 0; i < N(bodies); i++) {
                struct omr_form f;
                assert_int_equal(omr_form_parse(bodies[i].body, strlen(bodies[i].body), &f), 0);
                if (!omr_sig_twilio_verify(TW_TOKEN, TW_URL, &f, bodies[i].sig))
                        fail_msg("body %zu: verify refused the SDK's signature", i);
                assert_true(omr_sig_twilio_verify(TW_TOKEN, TW_URL_443, &f, bodies[i].sig));
                omr_form_free(&f);
        }
}

/* Changing any input refuses the SDK's signature. */
static void test_twilio_refused(void **state)
{
        static const char sig_small[] = "HqZC0xJSGtxo21zlBageY5bcSts="; /* tw_small at TW_URL */
        static const char *const tampered[][9] = {
                {"MessageSid", "SM0123456789abcdef0123456789abcdef", "From", "+447700900001", "To",
                 "+447700900123", "Body", "hi!", NULL},
                {"MessageSid", "SM0123456789abcdef0123456789abcdef", "From", "+447700900002", "To",
                 "+447700900123", "Body", "hi", NULL},
                {"MessageSid", "SM0123456789abcdef0123456789abcdef", "From", "+447700900001", "To",
                 "+447700900123", "Body", "", NULL},
                /* A parameter dropped, a name's case changed. */
                {"MessageSid", "SM0123456789abcdef0123456789abcdef", "From", "+447700900001", "To",
                 "+447700900123", NULL},
                {"MessageSid", "SM0123456789abcdef0123456789abcdef", "from", "+447700900001", "To",
                 "+447700900123", "Body", "hi", NULL},
        };
        static const char *const wrong_urls[] = {
                "https://support.example.com/v1/sms/twilio/other",
                "https://support.example.com/v1/sms/twilio/main/",
                "http://support.example.com/v1/sms/twilio/main",
                "https://support.example.com:80/v1/sms/twilio/main",
                TW_URL "?account=main",
                "https://Support.example.com/v1/sms/twilio/main",
        };
        struct omr_form f;

        (void)state;
        form_from(&f, tw_small);
        assert_true(omr_sig_twilio_verify(TW_TOKEN, TW_URL, &f, sig_small));

        /* Wrong auth token (last character changed, and another account's). */
        assert_false(
                omr_sig_twilio_verify("9f1c2b7e4d3a5c6b8e0f1a2b3c4d5e6e", TW_URL, &f, sig_small));
        assert_false(
                omr_sig_twilio_verify("0123456789abcdef0123456789abcdef", TW_URL, &f, sig_small));
        assert_false(omr_sig_twilio_verify("", TW_URL, &f, sig_small));

        for (size_t i = 0; i < N(wrong_urls); i++)
                if (omr_sig_twilio_verify(TW_TOKEN, wrong_urls[i], &f, sig_small))
                        fail_msg("accepted for URL %s", wrong_urls[i]);

        /* Headers of the wrong length, and base64 case changed. */
        char h[64];
        assert_false(omr_sig_twilio_verify(TW_TOKEN, TW_URL, &f, NULL));
        assert_false(omr_sig_twilio_verify(TW_TOKEN, TW_URL, &f, ""));
        snprintf(h, sizeof(h), "%.27s", sig_small); /* padding dropped */
        assert_false(omr_sig_twilio_verify(TW_TOKEN, TW_URL, &f, h));
        snprintf(h, sizeof(h), "%s=", sig_small);
        assert_false(omr_sig_twilio_verify(TW_TOKEN, TW_URL, &f, h));
        snprintf(h, sizeof(h), "%s ", sig_small);
        assert_false(omr_sig_twilio_verify(TW_TOKEN, TW_URL, &f, h));
        snprintf(h, sizeof(h), " %s", sig_small);
        assert_false(omr_sig_twilio_verify(TW_TOKEN, TW_URL, &f, h));
        snprintf(h, sizeof(h), "%s%s", sig_small, sig_small);
        assert_false(omr_sig_twilio_verify(TW_TOKEN, TW_URL, &f, h));
        snprintf(h, sizeof(h), "%s", sig_small);
        h[0] = (char)tolower((unsigned char)h[0]); /* 'H' -> 'h' */
        assert_false(omr_sig_twilio_verify(TW_TOKEN, TW_URL, &f, h));
        omr_form_free(&f);

        for (size_t i = 0; i < N(tampered); i++) {
                form_from(&f, tampered[i]);
                if (omr_sig_twilio_verify(TW_TOKEN, TW_URL, &f, sig_small))
                        fail_msg("tampered set %zu accepted", i);
                omr_form_free(&f);
        }

        /* A parameter added, even an empty one. */
        form_from(&f, tw_small);
        assert_int_equal(omr_form_set(&f, "Extra", ""), 0);
        assert_false(omr_sig_twilio_verify(TW_TOKEN, TW_URL, &f, sig_small));
        omr_form_free(&f);

        /* Another vector's signature for this request. */
        form_from(&f, tw_small);
        assert_false(omr_sig_twilio_verify(TW_TOKEN, TW_URL, &f, "2Hv2jAbgjeIqMQYlrjBP1oc1ujg="));
        /* A signature over :8443 is not accepted without the port, nor with :443
         * (validateRequest refuses both too). The reverse, a signature over the
         * URL without port for a request to :8443, is left untested: the SDK's
         * removePort() strips any port and accepts it, we only toggle :443/:80. */
        assert_false(omr_sig_twilio_verify(TW_TOKEN, TW_URL, &f, "zX0++WUi7FB7w1r+3BQeU9J59A8="));
        assert_false(
                omr_sig_twilio_verify(TW_TOKEN, TW_URL_443, &f, "zX0++WUi7FB7w1r+3BQeU9J59A8="));
        /* http with :443 is not the default port toggle. */
        assert_false(omr_sig_twilio_verify(TW_TOKEN, "http://sms.example.net:443/hook", &f,
                                           "h4fEpYUyawGlRdjG3sfLxLfM1Jc="));
        omr_form_free(&f);
}

/* ======================================================================
 * Vonage
 * ====================================================================== */

#define VO_SECRET "Vonage-Sig-Secret-2f8a41c9"

/* An inbound SMS as Vonage sends it to a signed webhook (without `sig`);
 * the text holds '&' and '=', which the scheme replaces by '_'. */
/* clang-format off */
static const char *const vo_params[] = {
        "msisdn",            "447700900001",
        "to",                "447700900123",
        "messageId",         "0A0000001234ABCD",
        "text",              "Hi & welcome = yes",
        "type",              "text",
        "keyword",           "HI",
        "api-key",           "abcd1234",
        "message-timestamp", "2024-05-01 12:34:56",
        "timestamp",         "1714566896",
        "nonce",             "6f1c1f5c-2a4b-4d7e-9c1e-2b3a4c5d6e7f",
        NULL,
};
/* clang-format on */

/* The same with a Vietnamese/Thai unicode message. */
/* clang-format off */
static const char *const vo_utf8[] = {
        "msisdn",            "447700900001",
        "to",                "447700900123",
        "messageId",         "0A0000001234ABCD",
        "text",              VI_REFUND " a=b&c " TH_REFUND,
        "type",              "unicode",
        "keyword",           "HO\xc3\x80N", /* HOÀN */
        "api-key",           "abcd1234",
        "message-timestamp", "2024-05-01 12:34:56",
        "timestamp",         "1714566896",
        "nonce",             "6f1c1f5c-2a4b-4d7e-9c1e-2b3a4c5d6e7f",
        NULL,
};
/* clang-format on */

static const struct {
        const char *name;
        enum omr_vonage_sig method;
        const char *const *params;
        const char *sig; /* accepted by SMS.verifySignature(sig, params, VO_SECRET, algo) */
} vonage_vectors[] = {
        {"md5hash", OMR_VSIG_MD5HASH, vo_params, "06dfd22ddd3af796cf29dad82356d5d0"},
        {"md5 (HMAC)", OMR_VSIG_MD5, vo_params, "c1a77581ead2f26981c9a9ae15f8e86b"},
        {"sha1", OMR_VSIG_SHA1, vo_params, "1c9385348e0f104177a43918949b60fe1449e39e"},
        {"sha256", OMR_VSIG_SHA256, vo_params,
         "da260cc18fd9ba4a98b9211e5f4004aea0fd589a12f79d002cd57de9c6a57f17"},
        {"sha512", OMR_VSIG_SHA512, vo_params,
         "73033c0601228ac8657f7eebfdfa4b4709cbc912009fab39028863af8ebd33f8"
         "0ae1ac46e17269c8454d0c27a6c167d1bb980bc8d9c57ec2def06e904264b094"},
        {"sha256, UTF-8", OMR_VSIG_SHA256, vo_utf8,
         "c35d18422a0fcdd2c064c68c3d18b0cc072fdd6dbcbea75bbcdb7519f77e0cc1"},
        {"md5hash, UTF-8", OMR_VSIG_MD5HASH, vo_utf8, "1d6d3a84783d891f60a6fc9c2529d57a"},
};

static void upper(char *s)
{
        for (; *s; s++)
                *s = (char)toupper((unsigned char)*s);
}

static void test_vonage_vectors(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(vonage_vectors); i++) {
                const char *want = vonage_vectors[i].sig;
                enum omr_vonage_sig m = vonage_vectors[i].method;
                struct omr_form f;
                char out[129], h[140];

                form_from(&f, vonage_vectors[i].params);
                memset(out, 0, sizeof(out));
                assert_int_equal(omr_sig_vonage(VO_SECRET, m, &f, out), 0);
                if (strcmp(out, want) != 0)
                        fail_msg("%s: omr_sig_vonage gave %s, the SDK accepts %s",
                                 vonage_vectors[i].name, out, want);
                if (!omr_sig_vonage_verify(VO_SECRET, m, &f, want))
                        fail_msg("%s: verify refused the SDK's signature", vonage_vectors[i].name);

                /* Hex is compared case-insensitively (as the SDK does). */
                snprintf(h, sizeof(h), "%s", want);
                upper(h);
                if (!omr_sig_vonage_verify(VO_SECRET, m, &f, h))
                        fail_msg("%s: upper-case %s refused", vonage_vectors[i].name, h);
                for (size_t k = 0; h[k]; k += 2)
                        h[k] = (char)tolower((unsigned char)h[k]);
                if (!omr_sig_vonage_verify(VO_SECRET, m, &f, h))
                        fail_msg("%s: mixed-case %s refused", vonage_vectors[i].name, h);

                /* `sig` itself is not signed: adding it changes nothing. */
                assert_int_equal(omr_form_set(&f, "sig", want), 0);
                assert_int_equal(omr_sig_vonage(VO_SECRET, m, &f, out), 0);
                assert_string_equal(out, want);
                assert_true(omr_sig_vonage_verify(VO_SECRET, m, &f, want));
                assert_int_equal(omr_form_set(&f, "sig", "anything&else=here"), 0);
                assert_true(omr_sig_vonage_verify(VO_SECRET, m, &f, want));

                /* Wrong signature secret. */
                if (omr_sig_vonage_verify(VO_SECRET "x", m, &f, want) ||
                    omr_sig_vonage_verify("vonage-sig-secret-2f8a41c9", m, &f, want))
                        fail_msg("%s: accepted with a wrong secret", vonage_vectors[i].name);

                /* Any other method refuses it. */
                for (int other = OMR_VSIG_MD5HASH; other <= OMR_VSIG_SHA512; other++)
                        if (other != (int)m &&
                            omr_sig_vonage_verify(VO_SECRET, (enum omr_vonage_sig)other, &f, want))
                                fail_msg("%s: accepted as method %d", vonage_vectors[i].name,
                                         other);
                omr_form_free(&f);
        }
}

/* '&' and '=' in values are replaced by '_' before signing, so a text with
 * '_' in their place carries the same signature (the SDK's
 * verifySignature accepts "06dfd2…" for text "Hi _ welcome _ yes" too). */
static void test_vonage_replacement(void **state)
{
        struct omr_form f;

        (void)state;
        form_from(&f, vo_params);
        assert_int_equal(omr_form_set(&f, "text", "Hi _ welcome _ yes"), 0);
        assert_true(omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_MD5HASH, &f,
                                          "06dfd22ddd3af796cf29dad82356d5d0"));
        assert_true(omr_sig_vonage_verify(
                VO_SECRET, OMR_VSIG_SHA256, &f,
                "da260cc18fd9ba4a98b9211e5f4004aea0fd589a12f79d002cd57de9c6a57f17"));
        /* '+' and '%' are not replaced. */
        assert_int_equal(omr_form_set(&f, "text", "Hi + welcome % yes"), 0);
        assert_false(omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_MD5HASH, &f,
                                           "06dfd22ddd3af796cf29dad82356d5d0"));
        omr_form_free(&f);
}

/* As the daemon sees a GET webhook: the query string, `sig` included,
 * parsed by omr_form_parse. */
static void test_vonage_parsed_query(void **state)
{
        static const char query[] =
                "msisdn=447700900001&to=447700900123&messageId=0A0000001234ABCD"
                "&text=Hi+%26+welcome+%3D+yes&type=text&keyword=HI&api-key=abcd1234"
                "&message-timestamp=2024-05-01+12%3A34%3A56&timestamp=1714566896"
                "&nonce=6f1c1f5c-2a4b-4d7e-9c1e-2b3a4c5d6e7f&sig=06dfd22ddd3af796cf29dad82356d5d0";
        struct omr_form f;

        (void)state;
        assert_int_equal(omr_form_parse(query, strlen(query), &f), 0);
        const char *sig = omr_form_get(&f, "sig");
        assert_non_null(sig);
        assert_true(omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_MD5HASH, &f, sig));
        omr_form_free(&f);
}

static void test_vonage_refused(void **state)
{
        static const char md5hash[] = "06dfd22ddd3af796cf29dad82356d5d0";
        static const char sha256[] =
                "da260cc18fd9ba4a98b9211e5f4004aea0fd589a12f79d002cd57de9c6a57f17";
        static const struct {
                const char *name, *value; /* set on top of vo_params */
        } tampered[] = {
                {"text", "Hi & welcome = yes!"},
                {"text", "Hi & welcome = ye"},
                {"msisdn", "447700900002"},
                {"timestamp", "1714566897"},
                {"nonce", ""},
                {"extra", "1"},
                {"message-timestamp", "2024-05-01 12:34:57"},
        };
        struct omr_form f;
        char h[140];

        (void)state;
        for (size_t i = 0; i < N(tampered); i++) {
                form_from(&f, vo_params);
                assert_int_equal(omr_form_set(&f, tampered[i].name, tampered[i].value), 0);
                if (omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_MD5HASH, &f, md5hash) ||
                    omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_SHA256, &f, sha256))
                        fail_msg("accepted with %s=%s", tampered[i].name, tampered[i].value);
                omr_form_free(&f);
        }

        form_from(&f, vo_params);
        assert_true(omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_SHA256, &f, sha256));
        /* Wrong length, wrong characters, missing. */
        assert_false(omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_SHA256, &f, NULL));
        assert_false(omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_SHA256, &f, ""));
        snprintf(h, sizeof(h), "%.63s", sha256);
        assert_false(omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_SHA256, &f, h));
        snprintf(h, sizeof(h), "%s0", sha256);
        assert_false(omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_SHA256, &f, h));
        snprintf(h, sizeof(h), " %s", sha256);
        assert_false(omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_SHA256, &f, h));
        snprintf(h, sizeof(h), "%.32s", sha256); /* an md5-sized prefix */
        assert_false(omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_SHA256, &f, h));
        assert_false(omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_MD5HASH, &f, sha256));
        snprintf(h, sizeof(h), "%s", sha256);
        h[63] = h[63] == '7' ? '8' : '7'; /* one digit changed */
        assert_false(omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_SHA256, &f, h));
        snprintf(h, sizeof(h), "%s", sha256);
        h[0] = 'g'; /* not hex, right length */
        assert_false(omr_sig_vonage_verify(VO_SECRET, OMR_VSIG_SHA256, &f, h));
        omr_form_free(&f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_twilio_vectors),
                cmocka_unit_test(test_twilio_parsed_body),
                cmocka_unit_test(test_twilio_refused),
                cmocka_unit_test(test_vonage_vectors),
                cmocka_unit_test(test_vonage_replacement),
                cmocka_unit_test(test_vonage_parsed_query),
                cmocka_unit_test(test_vonage_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
