/* signature_test.c — unit tests for daemon/signature.c: HMAC against the
 * RFC 4231 (SHA-256, SHA-512) and RFC 2202 (SHA-1) vectors, hex comparison,
 * and every outcome of the generic API webhook check. Expected digests were
 * computed once with `openssl dgst -mac HMAC` / python3 hmac and pasted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/signature.h"

/* A key or message given as text, as a repeated byte, or (fill 0) as the
 * bytes 0x01, 0x02, … len. */
struct bytes {
        const char *text; /* used when non-NULL */
        unsigned char fill;
        size_t len;
};

static size_t bytes_get(const struct bytes *b, unsigned char *out, size_t cap)
{
        size_t len = b->text ? strlen(b->text) : b->len;

        assert_true(len <= cap);
        if (b->text)
                memcpy(out, b->text, len);
        else if (b->fill)
                memset(out, b->fill, len);
        else
                for (size_t i = 0; i < len; i++)
                        out[i] = (unsigned char)(i + 1);
        return len;
}

static void hex_decode(const char *hex, unsigned char *out, size_t len)
{
        assert_int_equal(strlen(hex), 2 * len);
        for (size_t i = 0; i < len; i++) {
                unsigned v;
                assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
                out[i] = (unsigned char)v;
        }
}

/* clang-format off */
#define FILL(byte, n) {NULL, (byte), (n)}
#define TEXT(s)       {(s), 0, 0}
/* RFC 4231 test case 4 / RFC 2202 test case 4: key 0x01..0x19. */
#define KEY_1_TO_25   {NULL, 0, 25}
/* clang-format on */

static const struct {
        const char *name;
        enum omr_hmac_alg alg;
        struct bytes key, data;
        const char *want;
} hmac_cases[] = {
        {"rfc4231 1", OMR_HMAC_SHA256, FILL(0x0b, 20), TEXT("Hi There"),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"rfc4231 2", OMR_HMAC_SHA256, TEXT("Jefe"), TEXT("what do ya want for nothing?"),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {"rfc4231 3", OMR_HMAC_SHA256, FILL(0xaa, 20), FILL(0xdd, 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {"rfc4231 4", OMR_HMAC_SHA256, KEY_1_TO_25, FILL(0xcd, 50),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {"rfc4231 6", OMR_HMAC_SHA256, FILL(0xaa, 131),
         TEXT("Test Using Larger Than Block-Size Key - Hash Key First"),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {"rfc4231 7", OMR_HMAC_SHA256, FILL(0xaa, 131),
         TEXT("This is a test using a larger than block-size key and a larger than block-size "
              "data. The key needs to be hashed before being used by the HMAC algorithm."),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
        {"rfc4231 1 sha512", OMR_HMAC_SHA512, FILL(0x0b, 20), TEXT("Hi There"),
         "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
         "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
        {"rfc4231 2 sha512", OMR_HMAC_SHA512, TEXT("Jefe"), TEXT("what do ya want for nothing?"),
         "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
         "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
        {"rfc2202 1", OMR_HMAC_SHA1, FILL(0x0b, 20), TEXT("Hi There"),
         "b617318655057264e28bc0b6fb378c8ef146be00"},
        {"rfc2202 2", OMR_HMAC_SHA1, TEXT("Jefe"), TEXT("what do ya want for nothing?"),
         "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
        {"rfc2202 3", OMR_HMAC_SHA1, FILL(0xaa, 20), FILL(0xdd, 50),
         "125d7342b9ac11cd91a39af48aa17b4f63f175d3"},
        {"rfc2202 4", OMR_HMAC_SHA1, KEY_1_TO_25, FILL(0xcd, 50),
         "4c9007f4026250c6bc8414f9bf50c86c2d7235da"},
        {"rfc2202 5", OMR_HMAC_SHA1, FILL(0x0c, 20), TEXT("Test With Truncation"),
         "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"},
        {"rfc2202 6", OMR_HMAC_SHA1, FILL(0xaa, 80),
         TEXT("Test Using Larger Than Block-Size Key - Hash Key First"),
         "aa4ae5e15272d00e95705637ce8a3b55ed402112"},
        {"rfc2202 7", OMR_HMAC_SHA1, FILL(0xaa, 80),
         TEXT("Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"),
         "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"},
};

static void test_hmac_vectors(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(hmac_cases) / sizeof(hmac_cases[0]); i++) {
                unsigned char key[256], data[256], out[64];
                size_t keylen = bytes_get(&hmac_cases[i].key, key, sizeof(key));
                size_t datalen = bytes_get(&hmac_cases[i].data, data, sizeof(data));
                size_t wantlen = strlen(hmac_cases[i].want) / 2;
                const void *parts[1] = {data};
                size_t lens[1] = {datalen};
                char hex[129];

                memset(out, 0, sizeof(out));
                size_t n = omr_hmac(hmac_cases[i].alg, key, keylen, parts, lens, 1, out);
                if (n != wantlen)
                        fail_msg("%s: digest length %zu, want %zu", hmac_cases[i].name, n, wantlen);
                omr_hex_encode(out, n, hex);
                if (strcmp(hex, hmac_cases[i].want) != 0)
                        fail_msg("%s: got %s want %s", hmac_cases[i].name, hex, hmac_cases[i].want);
        }
}

/* The digest over several parts equals the digest over their concatenation
 * (that is how "<ts>." + body is signed without a copy). */
static void test_hmac_parts(void **state)
{
        static const char msg[] = "what do ya want for nothing?";
        const unsigned char key[] = "Jefe";
        unsigned char whole[64], split[64], none[64];
        const void *parts[3] = {msg, msg + 4, msg + 10};
        size_t lens[3] = {4, 6, sizeof(msg) - 1 - 10};
        const void *one[1] = {msg};
        size_t onelen[1] = {sizeof(msg) - 1};

        (void)state;
        assert_int_equal(omr_hmac(OMR_HMAC_SHA256, key, 4, one, onelen, 1, whole), 32);
        assert_int_equal(omr_hmac(OMR_HMAC_SHA256, key, 4, parts, lens, 3, split), 32);
        assert_memory_equal(whole, split, 32);

        /* Zero parts: HMAC of the empty message. */
        unsigned char want[32];
        hex_decode("5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0", want, 32);
        assert_int_equal(
                omr_hmac(OMR_HMAC_SHA256, (const unsigned char *)"key", 3, NULL, NULL, 0, none),
                32);
        assert_memory_equal(none, want, 32);
}

static void test_hex_encode(void **state)
{
        const unsigned char in[] = {0x00, 0x01, 0xab, 0xCD, 0xef, 0xff};
        char out[2 * sizeof(in) + 1];

        (void)state;
        memset(out, 'x', sizeof(out));
        omr_hex_encode(in, sizeof(in), out);
        assert_string_equal(out, "0001abcdefff");
        omr_hex_encode(in, 0, out);
        assert_string_equal(out, "");
}

static const unsigned char hex_digest[4] = {0xde, 0xad, 0xbe, 0xef};

static const struct {
        const char *hex;
        bool want;
} hex_cases[] = {
        {"deadbeef", true},   {"DEADBEEF", true},  {"DeAdBeEf", true},  {"deadbee", false},
        {"deadbeef0", false}, {"deadbeee", false}, {"deadbeeg", false}, {"deadbe f", false},
        {"", false},          {"0xdeadbe", false}, {"feebdaed", false}, {"deadbeef00", false},
};

static void test_hex_equal(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(hex_cases) / sizeof(hex_cases[0]); i++) {
                const char *h = hex_cases[i].hex;
                bool got = omr_hex_equal(h, strlen(h), hex_digest, sizeof(hex_digest));
                if (got != hex_cases[i].want)
                        fail_msg("omr_hex_equal(\"%s\") = %d, want %d", h, got, hex_cases[i].want);
        }
        /* hexlen bounds the read: the same text, cut short, is the wrong length. */
        assert_false(omr_hex_equal("deadbeef", 6, hex_digest, sizeof(hex_digest)));
        assert_true(omr_hex_equal("deadbeefXX", 8, hex_digest, sizeof(hex_digest)));
}

/* The webhook scheme. now = 2026-11-23T09:30:00Z, window 5 minutes. */
#define SECRET "s3cret-shop"
#define BODY                                                                                       \
        "{\"external_id\":\"m-1\",\"channel\":\"sms\",\"from\":{\"id\":\"cust-1\"},\"text\":"      \
        "\"hello\"}"
#define NOW    1795426200LL
#define WINDOW 300LL

/* HMAC-SHA256(SECRET, BODY) and HMAC-SHA256(SECRET, "<ts>." BODY). */
#define SIG_BODY       "053aa208eff27c8bbb90a4ea37d793af95117d5575868255017dbe10b9abf4e8"
#define SIG_TS_NOW     "2eae9fc132a15c32592390189865795c310ea7c737a61fef0c6c505051975a07"
#define SIG_TS_OLD     "99698d3eeea13df2ff0f0f8f76b4ad5c0547778a424c659fdac964e5445c08a5"
#define SIG_TS_NEW     "72a34b7a599dba699ee5265aaeda9265f767eb647524dee76a3cf68b5e973bbe"
#define SIG_TS_LOW     "4b3464c1b87be575ffa0f4bd4ae2424da92104de16e0e9579c2346c493257bb2"
#define SIG_TS_HIGH    "16715996fa2f802f319b05f257b23e9f80a9f915346fc078560371fdb9c2b421"
#define SIG_TS_12A     "030019d9d54376b8ae09b5d5c4a92234adc9e4b2ec60f2579cb1b2620b54d157"
#define SIG_OTHER      "13c484e4f30b219369df21fcc8878257daf45394447cfdfd6cd0ce6fdbd22f55"
#define SIG_SHA1       "66fdffe7602f1f484657649f0fd865cab28c4612"
#define SIG_BODY_UPPER "053AA208EFF27C8BBB90A4EA37D793AF95117D5575868255017DBE10B9ABF4E8"

static const struct {
        const char *name;
        const char *sig, *ts;
        bool require_ts;
        const char *body; /* NULL: BODY */
        enum omr_sig_result want;
} sig_cases[] = {
        {"ok, no timestamp", "sha256=" SIG_BODY, NULL, false, NULL, OMR_SIG_OK},
        {"ok, upper-case hex", "sha256=" SIG_BODY_UPPER, NULL, false, NULL, OMR_SIG_OK},
        {"ok, timestamp", "sha256=" SIG_TS_NOW, "1795426200", false, NULL, OMR_SIG_OK},
        {"ok, timestamp required", "sha256=" SIG_TS_NOW, "1795426200", true, NULL, OMR_SIG_OK},
        {"ok, now - window", "sha256=" SIG_TS_LOW, "1795425900", false, NULL, OMR_SIG_OK},
        {"ok, now + window", "sha256=" SIG_TS_HIGH, "1795426500", true, NULL, OMR_SIG_OK},
        {"missing", NULL, NULL, false, NULL, OMR_SIG_MISSING},
        {"malformed, sha1", "sha1=" SIG_SHA1, NULL, false, NULL, OMR_SIG_MALFORMED},
        {"malformed, no prefix", SIG_BODY, NULL, false, NULL, OMR_SIG_MALFORMED},
        {"malformed, short hex",
         "sha256=053aa208eff27c8bbb90a4ea37d793af95117d5575868255017dbe10b"
         "9abf4e",
         NULL, false, NULL, OMR_SIG_MALFORMED},
        {"malformed, long hex", "sha256=" SIG_BODY "00", NULL, false, NULL, OMR_SIG_MALFORMED},
        {"malformed, non-hex",
         "sha256=053aa208eff27c8bbb90a4ea37d793af95117d5575868255017dbe10b9a"
         "bf4eg",
         NULL, false, NULL, OMR_SIG_MALFORMED},
        {"malformed, empty digest", "sha256=", NULL, false, NULL, OMR_SIG_MALFORMED},
        {"mismatch, other secret", "sha256=" SIG_OTHER, NULL, false, NULL, OMR_SIG_MISMATCH},
        {"mismatch, body altered", "sha256=" SIG_BODY, NULL, false,
         "{\"external_id\":\"m-1\",\"channel\":\"sms\",\"from\":{\"id\":\"cust-1\"},\"text\":"
         "\"hellp\"}",
         OMR_SIG_MISMATCH},
        {"mismatch, body signed but ts sent", "sha256=" SIG_BODY, "1795426200", false, NULL,
         OMR_SIG_MISMATCH},
        {"mismatch, ts signed but not sent", "sha256=" SIG_TS_NOW, NULL, false, NULL,
         OMR_SIG_MISMATCH},
        {"mismatch, other ts signed", "sha256=" SIG_TS_LOW, "1795426200", false, NULL,
         OMR_SIG_MISMATCH},
        {"ts required, missing", "sha256=" SIG_BODY, NULL, true, NULL, OMR_SIG_TS_MISSING},
        {"ts malformed", "sha256=" SIG_TS_12A, "12a", false, NULL, OMR_SIG_TS_MALFORMED},
        {"ts stale, past", "sha256=" SIG_TS_OLD, "1795425899", false, NULL, OMR_SIG_TS_STALE},
        {"ts stale, future", "sha256=" SIG_TS_NEW, "1795426501", false, NULL, OMR_SIG_TS_STALE},
        {"ts stale, required", "sha256=" SIG_TS_OLD, "1795425899", true, NULL, OMR_SIG_TS_STALE},
};

static void test_sig_verify_api(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(sig_cases) / sizeof(sig_cases[0]); i++) {
                const char *body = sig_cases[i].body ? sig_cases[i].body : BODY;
                enum omr_sig_result got = omr_sig_verify_api(
                        (const unsigned char *)SECRET, strlen(SECRET), sig_cases[i].sig,
                        sig_cases[i].ts, sig_cases[i].require_ts, NOW, WINDOW, body, strlen(body));
                if (got != sig_cases[i].want)
                        fail_msg("%s: got %d (%s), want %d (%s)", sig_cases[i].name, (int)got,
                                 omr_sig_result_name(got), (int)sig_cases[i].want,
                                 omr_sig_result_name(sig_cases[i].want));
        }
}

/* Odd timestamps, each correctly signed: never OK, and refused as a
 * timestamp problem (which one is the implementation's choice where both
 * readings hold: "-1" is a malformed or a very stale time). */
#define BIT(r) (1u << (r))
static const struct {
        const char *ts, *sig;
        unsigned allowed;
} odd_ts_cases[] = {
        {"", "dcddfa6f60cc930eceb89eeb456c525e8a1e4a0db1c743d0978805078de63e1f",
         BIT(OMR_SIG_TS_MALFORMED) | BIT(OMR_SIG_TS_MISSING) | BIT(OMR_SIG_MISMATCH)},
        {"-1", "0a186cfc7770d55e84eb6289eb3bff6d9877ac246cb6e67ecdbdcce76b54029d",
         BIT(OMR_SIG_TS_MALFORMED) | BIT(OMR_SIG_TS_STALE)},
        {"99999999999999999999999",
         "32c79e36118e77d5d18b8a04c7d08bad8bc6e659a20727633a61dde0933a2abe",
         BIT(OMR_SIG_TS_MALFORMED) | BIT(OMR_SIG_TS_STALE)},
        {"1795426200.5", "2b61242ebbf86659c8857a35f70af9cee9c6f42ad8387993415d783a7d6c6480",
         BIT(OMR_SIG_TS_MALFORMED)},
        {"0x6b03a218", "6219f3fd8515bf6108706697eb6d16b12929e6aa3fdce3fbb1c4857e2d556084",
         BIT(OMR_SIG_TS_MALFORMED)},
};

static void test_sig_odd_timestamps(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(odd_ts_cases) / sizeof(odd_ts_cases[0]); i++) {
                char header[80];
                snprintf(header, sizeof(header), "sha256=%s", odd_ts_cases[i].sig);
                for (int req = 0; req <= 1; req++) {
                        enum omr_sig_result got = omr_sig_verify_api(
                                (const unsigned char *)SECRET, strlen(SECRET), header,
                                odd_ts_cases[i].ts, req, NOW, WINDOW, BODY, strlen(BODY));
                        if (!(odd_ts_cases[i].allowed & BIT(got)))
                                fail_msg("ts \"%s\" (require %d): got %s", odd_ts_cases[i].ts, req,
                                         omr_sig_result_name(got));
                }
        }
}

/* body_len, not strlen, decides what is signed: a body with a NUL inside. */
static void test_sig_body_len(void **state)
{
        char body[sizeof(BODY) + 8];

        (void)state;
        memcpy(body, BODY, sizeof(BODY));
        memcpy(body + sizeof(BODY), "trailer", 8);
        assert_int_equal(omr_sig_verify_api((const unsigned char *)SECRET, strlen(SECRET),
                                            "sha256=" SIG_BODY, NULL, false, NOW, WINDOW, body,
                                            strlen(BODY)),
                         OMR_SIG_OK);
        assert_int_equal(omr_sig_verify_api((const unsigned char *)SECRET, strlen(SECRET),
                                            "sha256=" SIG_BODY, NULL, false, NOW, WINDOW, body,
                                            sizeof(body)),
                         OMR_SIG_MISMATCH);
}

/* The names are the 401 error codes of the HTTP contract. */
static void test_sig_result_name(void **state)
{
        static const struct {
                enum omr_sig_result r;
                const char *name;
        } names[] = {
                {OMR_SIG_MISSING, "missing_signature"},  {OMR_SIG_MALFORMED, "bad_signature"},
                {OMR_SIG_MISMATCH, "bad_signature"},     {OMR_SIG_TS_MISSING, "missing_timestamp"},
                {OMR_SIG_TS_MALFORMED, "bad_timestamp"}, {OMR_SIG_TS_STALE, "stale_timestamp"},
        };

        (void)state;
        assert_non_null(omr_sig_result_name(OMR_SIG_OK));
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                assert_string_equal(omr_sig_result_name(names[i].r), names[i].name);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hmac_vectors),   cmocka_unit_test(test_hmac_parts),
                cmocka_unit_test(test_hex_encode),     cmocka_unit_test(test_hex_equal),
                cmocka_unit_test(test_sig_verify_api), cmocka_unit_test(test_sig_odd_timestamps),
                cmocka_unit_test(test_sig_body_len),   cmocka_unit_test(test_sig_result_name),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
