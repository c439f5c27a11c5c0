/* form_test.c — unit tests for daemon/form.c: parsing
 * application/x-www-form-urlencoded bodies ('+' as space, %-escapes, UTF-8
 * checks, repeated names, byte-order sorting), building forms by hand,
 * encoding (round trip through the parser) and E.164 normalisation of the
 * phone numbers people and providers write. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/form.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Text used below (UTF-8). */
#define VI_REFUND "Ho\xc3\xa0n ti\xe1\xbb\x81n"       /* Hoàn tiền */
#define VI_SWAP   "\xc4\x91\xe1\xbb\x95i h\xc3\xa0ng" /* đổi hàng */
#define TH_REFUND                                                                                  \
        "\xe0\xb8\x82\xe0\xb8\xad\xe0\xb8\x84\xe0\xb8\xb7\xe0\xb8\x99\xe0\xb9\x80\xe0\xb8\x87"     \
        "\xe0\xb8\xb4\xe0\xb8\x99" /* ขอคืนเงิน */

/* ---- omr_form_parse ---- */

#define MAX_PAIRS 4

static const struct {
        const char *name;
        const char *in;
        size_t len; /* 0: strlen(in) */
        int rc;
        size_t n;                        /* pairs expected when rc is 0 */
        const char *pairs[MAX_PAIRS][2]; /* in byte order of the name */
} parse_cases[] = {
        {"empty input", "", 0, 0, 0, {{NULL}}},
        {"one pair", "a=1", 0, 0, 1, {{"a", "1"}}},
        {"sorted by name", "b=2&c=3&a=1", 0, 0, 3, {{"a", "1"}, {"b", "2"}, {"c", "3"}}},
        /* Byte order, as strcmp: digits < upper case < '_' < lower case. */
        {"byte order",
         "a=4&_=3&B=2&A0=1",
         0,
         0,
         4,
         {{"A0", "1"}, {"B", "2"}, {"_", "3"}, {"a", "4"}}},
        {"MediaUrl10 before MediaUrl2",
         "MediaUrl2=c&MediaUrl10=b&MediaUrl0=a",
         0,
         0,
         3,
         {{"MediaUrl0", "a"}, {"MediaUrl10", "b"}, {"MediaUrl2", "c"}}},
        {"plus is a space", "Body=hello+world", 0, 0, 1, {{"Body", "hello world"}}},
        {"plus in a name", "first+name=x", 0, 0, 1, {{"first name", "x"}}},
        {"%20 is a space too", "Body=a%20b+c", 0, 0, 1, {{"Body", "a b c"}}},
        {"escaped plus, ampersand, equals, percent",
         "x=a%2Bb%26c%3Dd%25",
         0,
         0,
         1,
         {{"x", "a+b&c=d%"}}},
        {"escaped phone number", "From=%2B447700900001", 0, 0, 1, {{"From", "+447700900001"}}},
        {"lower-case hex", "x=%c3%a0%2b", 0, 0, 1, {{"x", "\xc3\xa0+"}}},
        {"escaped Thai",
         "x=%E0%B8%82%E0%B8%AD%E0%B8%84%E0%B8%B7%E0%B8%99%E0%B9%80%E0%B8%87"
         "%E0%B8%B4%E0%B8%99",
         0,
         0,
         1,
         {{"x", TH_REFUND}}},
        {"escaped Vietnamese", "Body=Ho%C3%A0n+ti%E1%BB%81n", 0, 0, 1, {{"Body", VI_REFUND}}},
        {"raw UTF-8", "Body=" VI_REFUND, 0, 0, 1, {{"Body", VI_REFUND}}},
        {"'=' inside a value", "a=b=c", 0, 0, 1, {{"a", "b=c"}}},
        {"empty value", "ToState=&From=%2B44", 0, 0, 2, {{"From", "+44"}, {"ToState", ""}}},
        {"repeated name keeps the last value", "a=1&a=2", 0, 0, 1, {{"a", "2"}}},
        {"repeated name among others", "a=1&b=x&a=3", 0, 0, 2, {{"a", "3"}, {"b", "x"}}},
        {"len stops before the rest", "a=1&b=2", 3, 0, 1, {{"a", "1"}}},
        {"empty pieces are skipped", "a=1&&b=2&", 0, 0, 2, {{"a", "1"}, {"b", "2"}}},
        {"leading ampersand", "&a=1", 0, 0, 1, {{"a", "1"}}},
        {"name without '=' has an empty value", "a&b=2", 0, 0, 2, {{"a", ""}, {"b", "2"}}},
        {"bad escape: not hex", "x=%ZZ", 0, -EINVAL, 0, {{NULL}}},
        {"bad escape: one digit at the end", "x=%4", 0, -EINVAL, 0, {{NULL}}},
        {"bad escape: lone percent", "x=100%", 0, -EINVAL, 0, {{NULL}}},
        {"bad escape: in the name", "%G1=x", 0, -EINVAL, 0, {{NULL}}},
        {"bad escape after good pairs", "a=1&b=%2", 0, -EINVAL, 0, {{NULL}}},
        {"escaped NUL", "a=x%00y", 0, -EINVAL, 0, {{NULL}}},
        {"invalid UTF-8: escaped FF", "x=%FF", 0, -EINVAL, 0, {{NULL}}},
        {"invalid UTF-8: truncated", "x=%C3", 0, -EINVAL, 0, {{NULL}}},
        {"invalid UTF-8: overlong", "x=%C0%AF", 0, -EINVAL, 0, {{NULL}}},
        {"invalid UTF-8: surrogate", "x=%ED%A0%80", 0, -EINVAL, 0, {{NULL}}},
        {"invalid UTF-8: raw byte", "x=a\xff", 0, -EINVAL, 0, {{NULL}}},
        {"invalid UTF-8: in the name", "%FF=x", 0, -EINVAL, 0, {{NULL}}},
};

static void test_parse(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(parse_cases); i++) {
                struct omr_form f;
                const char *in = parse_cases[i].in;
                size_t len = parse_cases[i].len ? parse_cases[i].len : strlen(in);

                memset(&f, 0xa5, sizeof(f)); /* the parser must initialise it */
                int rc = omr_form_parse(in, len, &f);
                if (rc != parse_cases[i].rc)
                        fail_msg("%s: rc %d, want %d", parse_cases[i].name, rc, parse_cases[i].rc);
                if (rc != 0) {
                        /* Nothing is handed back on failure. */
                        if (f.n != 0 || f.pairs != NULL)
                                fail_msg("%s: failed but returned %zu pairs", parse_cases[i].name,
                                         f.n);
                        continue;
                }
                if (f.n != parse_cases[i].n)
                        fail_msg("%s: %zu pairs, want %zu", parse_cases[i].name, f.n,
                                 parse_cases[i].n);
                for (size_t k = 0; k < f.n; k++) {
                        const char *name = parse_cases[i].pairs[k][0];
                        const char *value = parse_cases[i].pairs[k][1];
                        if (strcmp(f.pairs[k].name, name) != 0 ||
                            strcmp(f.pairs[k].value, value) != 0)
                                fail_msg("%s: pair %zu is [%s]=[%s], want [%s]=[%s]",
                                         parse_cases[i].name, k, f.pairs[k].name, f.pairs[k].value,
                                         name, value);
                        assert_ptr_equal(omr_form_get(&f, name), f.pairs[k].value);
                }
                omr_form_free(&f);
        }
}

/* The buffer need not be NUL-terminated: only len bytes are read. */
static void test_parse_unterminated(void **state)
{
        char buf[8];
        struct omr_form f;

        (void)state;
        memcpy(buf, "a=1&b=2X", 8); /* no NUL anywhere */
        assert_int_equal(omr_form_parse(buf, 7, &f), 0);
        assert_int_equal(f.n, 2);
        assert_string_equal(omr_form_get(&f, "a"), "1");
        assert_string_equal(omr_form_get(&f, "b"), "2");
        omr_form_free(&f);
}

/* A typical Twilio inbound SMS body, as Twilio posts it. */
static void test_parse_twilio_body(void **state)
{
        static const char body[] =
                "ToCountry=GB&ToState=&SmsMessageSid=SM0123&NumMedia=0&ToCity=&FromZip="
                "&SmsSid=SM0123&FromState=&SmsStatus=received&FromCity=&Body=Ho%C3%A0n+ti%E1%BB%81n"
                "+%2B+%C4%91%E1%BB%95i+h%C3%A0ng+%26+refund%3D1&FromCountry=GB&To=%2B447700900123"
                "&ToZip=&NumSegments=1&MessageSid=SM0123&AccountSid=AC0123"
                "&From=%2B447700900001&ApiVersion=2010-04-01";
        struct omr_form f;

        (void)state;
        assert_int_equal(omr_form_parse(body, strlen(body), &f), 0);
        assert_int_equal(f.n, 19);
        for (size_t k = 1; k < f.n; k++)
                assert_true(strcmp(f.pairs[k - 1].name, f.pairs[k].name) < 0);
        assert_string_equal(omr_form_get(&f, "Body"), VI_REFUND " + " VI_SWAP " & refund=1");
        assert_string_equal(omr_form_get(&f, "From"), "+447700900001");
        assert_string_equal(omr_form_get(&f, "ToState"), "");
        assert_string_equal(f.pairs[0].name, "AccountSid");
        assert_string_equal(f.pairs[f.n - 1].name, "ToZip");
        assert_null(omr_form_get(&f, "body")); /* names are case-sensitive */
        assert_null(omr_form_get(&f, "MediaUrl0"));
        omr_form_free(&f);
}

/* ---- omr_form_set / omr_form_get / omr_form_free ---- */

static void test_set_get(void **state)
{
        struct omr_form f = {0};
        char value[16];

        (void)state;
        assert_null(omr_form_get(&f, "a"));
        assert_int_equal(omr_form_set(&f, "b", "2"), 0);
        assert_int_equal(omr_form_set(&f, "c", "3"), 0);
        assert_int_equal(omr_form_set(&f, "a", "1"), 0);
        assert_int_equal(f.n, 3);
        assert_string_equal(f.pairs[0].name, "a");
        assert_string_equal(f.pairs[1].name, "b");
        assert_string_equal(f.pairs[2].name, "c");

        /* Setting an existing name replaces the value in place. */
        assert_int_equal(omr_form_set(&f, "b", "two"), 0);
        assert_int_equal(f.n, 3);
        assert_string_equal(f.pairs[1].name, "b");
        assert_string_equal(omr_form_get(&f, "b"), "two");

        /* Copies are kept, not the caller's buffers. */
        snprintf(value, sizeof(value), "%s", "mine");
        assert_int_equal(omr_form_set(&f, "sig", value), 0);
        value[0] = 'X';
        assert_string_equal(omr_form_get(&f, "sig"), "mine");

        /* Empty name and value are values like any other. */
        assert_int_equal(omr_form_set(&f, "", ""), 0);
        assert_string_equal(f.pairs[0].name, "");
        assert_string_equal(omr_form_get(&f, ""), "");

        assert_null(omr_form_get(&f, "A"));
        assert_null(omr_form_get(&f, "si"));
        assert_int_equal(f.n, 5);
        omr_form_free(&f);
        assert_int_equal(f.n, 0);
        assert_null(f.pairs);
        omr_form_free(&f); /* freeing twice is harmless */
}

/* A parsed form can be extended and keeps its order. */
static void test_set_after_parse(void **state)
{
        struct omr_form f;

        (void)state;
        assert_int_equal(omr_form_parse("m=1&z=2", 7, &f), 0);
        assert_int_equal(omr_form_set(&f, "a", "0"), 0);
        assert_int_equal(omr_form_set(&f, "n", "x"), 0);
        assert_int_equal(f.n, 4);
        assert_string_equal(f.pairs[0].name, "a");
        assert_string_equal(f.pairs[1].name, "m");
        assert_string_equal(f.pairs[2].name, "n");
        assert_string_equal(f.pairs[3].name, "z");
        omr_form_free(&f);
}

/* ---- omr_form_encode ---- */

static void test_encode_exact(void **state)
{
        static const char *const kv[] = {"a", "1", "b", "x y", NULL};
        static const char *const kv2[] = {"From", "+447700900001", "Body", "a&b=c%", NULL};
        static const char *const none[] = {NULL};
        char *s;

        (void)state;
        s = omr_form_encode(kv);
        assert_non_null(s);
        assert_string_equal(s, "a=1&b=x%20y"); /* the example in form.h */
        free(s);

        /* Order as given; reserved characters escaped. */
        s = omr_form_encode(kv2);
        assert_non_null(s);
        assert_string_equal(s, "From=%2B447700900001&Body=a%26b%3Dc%25");
        free(s);

        s = omr_form_encode(none);
        assert_non_null(s);
        assert_string_equal(s, "");
        free(s);
}

static const char *const round_trip_values[] = {
        "",
        "plain",
        "with spaces  two",
        "a&b",
        "a=b",
        "1+1=2",
        "100%",
        "%41 is not A",
        "+447700900001",
        "a&b=c+d%e f",
        "?#/:;,@[]!$'()*~._-",
        "tab\tnew\nline\r",
        VI_REFUND,
        VI_SWAP,
        TH_REFUND,
        VI_REFUND " + " VI_SWAP " & " TH_REFUND " = 100%",
        "\xf0\x9f\x98\x80 emoji",
};

static void test_encode_round_trip(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(round_trip_values); i++) {
                const char *v = round_trip_values[i];
                const char *const kv[] = {"Body", v, "name with & and =", v, "To", "+44", NULL};
                struct omr_form f;
                char *s = omr_form_encode(kv);

                assert_non_null(s);
                /* Exactly two separators and three '=': nothing leaks through. */
                size_t amps = 0, eqs = 0;
                for (const char *p = s; *p; p++) {
                        amps += *p == '&';
                        eqs += *p == '=';
                        if (*p == '+' || *p == ' ' || (unsigned char)*p >= 0x80)
                                fail_msg("value %zu: unescaped '%c' in %s", i, *p, s);
                }
                assert_int_equal(amps, 2);
                assert_int_equal(eqs, 3);

                int rc = omr_form_parse(s, strlen(s), &f);
                if (rc != 0)
                        fail_msg("value %zu: encoded %s does not parse (%d)", i, s, rc);
                assert_int_equal(f.n, 3);
                const char *got = omr_form_get(&f, "Body");
                if (got == NULL || strcmp(got, v) != 0)
                        fail_msg("value %zu: [%s] came back as [%s] via %s", i, v,
                                 got ? got : "(null)", s);
                assert_string_equal(omr_form_get(&f, "name with & and ="), v);
                assert_string_equal(omr_form_get(&f, "To"), "+44");
                omr_form_free(&f);
                free(s);
        }
}

/* ---- omr_phone_e164 ---- */

static const struct {
        const char *in;
        int rc;
        const char *want; /* when rc is 0 */
} phones[] = {
        {"+44 7700 900001", 0, "+447700900001"},
        {"0044 7700 900001", 0, "+447700900001"},
        {"447700900001", 0, "+447700900001"}, /* as Vonage sends it */
        {"+447700900001", 0, "+447700900001"},
        {"00447700900001", 0, "+447700900001"},
        {"(+1) 415-555-0100", 0, "+14155550100"},
        {"+1 (415) 555-0100", 0, "+14155550100"},
        {"+1.415.555.0100", 0, "+14155550100"},
        {" +44 7700 900001 ", 0, "+447700900001"},
        {"+84 912 345 678", 0, "+84912345678"},
        {"+1234567", 0, "+1234567"},                 /* 7 digits: the shortest taken */
        {"+123456789012345", 0, "+123456789012345"}, /* 15 digits: the E.164 maximum */
        {"07700900001", -EINVAL, NULL},              /* national: country unknown */
        {" 07700900001", -EINVAL, NULL},
        {"+0447700900001", -EINVAL, NULL}, /* no country code starts with 0 */
        {"12345", -EINVAL, NULL},          /* a short code */
        {"+123456", -EINVAL, NULL},
        {"1234567890123456", -EINVAL, NULL}, /* 16 digits */
        {"+4477009000012345", -EINVAL, NULL},
        {"+44 7700 900001 2345 6789 0123 4567 8901", -EINVAL, NULL},
        {"VONAGE", -EINVAL, NULL}, /* alphanumeric sender */
        {"+44 7700 9OO001", -EINVAL, NULL},
        {"+44\t7700900001", -EINVAL, NULL},
        {"+", -EINVAL, NULL},
        {"00", -EINVAL, NULL},
        {"", -EINVAL, NULL},
};

static void test_phone_e164(void **state)
{
        size_t failed = 0;

        (void)state;
        /* Every case runs; all mismatches are listed before failing. */
        for (size_t i = 0; i < N(phones); i++) {
                char out[17];
                memset(out, 'Z', sizeof(out));
                int rc = omr_phone_e164(phones[i].in, out);
                if (rc != phones[i].rc) {
                        print_error("omr_phone_e164(\"%s\") = %d, want %d%s%s\n", phones[i].in, rc,
                                    phones[i].rc, phones[i].want ? " and " : "",
                                    phones[i].want ? phones[i].want : "");
                        failed++;
                } else if (rc == 0 && (memchr(out, '\0', sizeof(out)) == NULL ||
                                       strcmp(out, phones[i].want) != 0)) {
                        print_error("omr_phone_e164(\"%s\") gave \"%.17s\", want \"%s\"\n",
                                    phones[i].in, out, phones[i].want);
                        failed++;
                }
        }
        assert_int_equal(failed, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_parse_unterminated),
                cmocka_unit_test(test_parse_twilio_body),
                cmocka_unit_test(test_set_get),
                cmocka_unit_test(test_set_after_parse),
                cmocka_unit_test(test_encode_exact),
                cmocka_unit_test(test_encode_round_trip),
                cmocka_unit_test(test_phone_e164),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
