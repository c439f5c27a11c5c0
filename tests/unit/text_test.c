/* text_test.c — unit tests for daemon/text.c: UTF-8 validation, case
 * folding (NFKC + Unicode case folding), trimming of ASCII and Unicode white
 * space, and folded substring search. Only what the Unicode standard
 * guarantees is asserted (no locale tailoring such as Turkish dotted I). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/text.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
        const char *name;
        const char *s;
        size_t len; /* 0: strlen(s) */
        bool want;
} utf8_cases[] = {
        {"empty", "", 0, true},
        {"ascii", "hello, world", 0, true},
        {"thai",
         "\xe0\xb8\x84\xe0\xb8\xb7\xe0\xb8\x99\xe0\xb9\x80\xe0\xb8\x87\xe0\xb8\xb4\xe0\xb8\x99", 0,
         true},                                                 /* คืนเงิน */
        {"vietnamese", "ho\xc3\xa0n ti\xe1\xbb\x81n", 0, true}, /* hoàn tiền */
        {"turkish", "\xc4\xb0\x61\x64\x65 \xc4\xb1\xc4\x9f\xc5\x9f\xc3\xa7\xc3\xb6\xc3\xbc", 0,
         true},                                              /* İade ığşçöü */
        {"4-byte emoji", "\xf0\x9f\x98\x80", 0, true},       /* U+1F600 */
        {"max code point", "\xf4\x8f\xbf\xbf", 0, true},     /* U+10FFFF */
        {"last before surrogates", "\xed\x9f\xbf", 0, true}, /* U+D7FF */
        {"first after surrogates", "\xee\x80\x80", 0, true}, /* U+E000 */
        {"overlong /, 2 bytes", "\xc0\xaf", 0, false},
        {"overlong, C1", "\xc1\xbf", 0, false},
        {"overlong /, 3 bytes", "\xe0\x80\xaf", 0, false},
        {"overlong U+07FF, 3 bytes", "\xe0\x9f\xbf", 0, false},
        {"overlong /, 4 bytes", "\xf0\x80\x80\xaf", 0, false},
        {"overlong U+FFFF, 4 bytes", "\xf0\x8f\xbf\xbf", 0, false},
        {"high surrogate", "\xed\xa0\x80", 0, false},
        {"low surrogate", "\xed\xbf\xbf", 0, false},
        {"surrogate pair as CESU-8", "\xed\xa0\xbd\xed\xb8\x80", 0, false},
        {"above U+10FFFF", "\xf4\x90\x80\x80", 0, false},
        {"lead F5", "\xf5\x80\x80\x80", 0, false},
        {"byte FE", "a\xfe", 0, false},
        {"byte FF", "\xff", 0, false},
        {"lone continuation", "a\x80z", 0, false},
        {"truncated 2-byte at end", "abc\xc3", 0, false},
        {"truncated 3-byte thai", "\xe0\xb8", 0, false},
        {"truncated 4-byte", "\xf0\x9f\x98", 0, false},
        {"truncated then ascii",
         "\xe1\xbb"
         "a",
         0, false},
        {"len cuts a character", "\xc3\xa9", 1, false},
        {"len stops before bad byte", "abc\xff", 3, true},
};

static void test_valid_utf8(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(utf8_cases); i++) {
                size_t len = utf8_cases[i].len ? utf8_cases[i].len : strlen(utf8_cases[i].s);
                bool got = omr_text_valid_utf8(utf8_cases[i].s, len);
                if (got != utf8_cases[i].want)
                        fail_msg("%s: got %d, want %d", utf8_cases[i].name, got,
                                 utf8_cases[i].want);
        }
}

/* Expected outputs are NFC (what NFKC produces), written as UTF-8 bytes. */
static const struct {
        const char *name, *in, *want;
} fold_cases[] = {
        {"empty", "", ""},
        {"ascii", "Hello WORLD 123!", "hello world 123!"},
        {"precomposed", "R\xc3\x89SUM\xc3\x89", "r\xc3\xa9sum\xc3\xa9"},  /* RÉSUMÉ */
        {"decomposed", "re\xcc\x81sume\xcc\x81", "r\xc3\xa9sum\xc3\xa9"}, /* NFKC composes */
        {"decomposed upper", "RE\xcc\x81SUME\xcc\x81", "r\xc3\xa9sum\xc3\xa9"},
        {"vietnamese", "HO\xc3\x80N TI\xe1\xbb\x80N",
         "ho\xc3\xa0n ti\xe1\xbb\x81n"}, /* HOÀN TIỀN */
        {"vietnamese lower unchanged", "ho\xc3\xa0n ti\xe1\xbb\x81n",
         "ho\xc3\xa0n ti\xe1\xbb\x81n"},
        {"thai has no case",
         "\xe0\xb8\x84\xe0\xb8\xb7\xe0\xb8\x99\xe0\xb9\x80\xe0\xb8\x87\xe0\xb8\xb4"
         "\xe0\xb8\x99",
         "\xe0\xb8\x84\xe0\xb8\xb7\xe0\xb8\x99\xe0\xb9\x80\xe0\xb8\x87\xe0\xb8\xb4\xe0\xb8\x99"},
        {"turkish", "\xc3\x96\x44\x45ME \xc5\x9e\xc3\x87\xc4\x9e\xc3\x9c",
         "\xc3\xb6\x64\x65me \xc5\x9f\xc3\xa7\xc4\x9f\xc3\xbc"}, /* ÖDEME ŞÇĞÜ -> ödeme şçğü */
        {"sharp s full folding", "Stra\xc3\x9f\x65", "strasse"},
        {"NFKC ligature", "\xef\xac\x81nd", "find"}, /* U+FB01 ﬁ */
        {"NFKC fullwidth",
         "\xef\xbc\xb2\xef\xbc\xa5\xef\xbc\xa6\xef\xbc\xb5\xef\xbc\xae\xef\xbc\xa4",
         "refund"}, /* ＲＥＦＵＮＤ */
        {"cyrillic", "\xd0\x92\xd0\x9e\xd0\x97\xd0\x92\xd0\xa0\xd0\x90\xd0\xa2",
         "\xd0\xb2\xd0\xbe\xd0\xb7\xd0\xb2\xd1\x80\xd0\xb0\xd1\x82"}, /* ВОЗВРАТ */
};

static void test_fold(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(fold_cases); i++) {
                char *got = omr_text_fold(fold_cases[i].in);
                if (!got)
                        fail_msg("%s: NULL", fold_cases[i].name);
                if (strcmp(got, fold_cases[i].want) != 0)
                        fail_msg("%s: got \"%s\", want \"%s\"", fold_cases[i].name, got,
                                 fold_cases[i].want);
                free(got);
        }
}

/* Pairs that Unicode case folding makes equal, whatever the exact output. */
static const struct {
        const char *name, *a, *b;
} fold_equal_cases[] = {
        {"résumé three ways", "R\xc3\x89SUM\xc3\x89", "re\xcc\x81sume\xcc\x81"},
        /* Σ, σ and final ς all fold to the same letter. */
        {"greek sigma", "\xce\x9f\xce\x94\xce\xa5\xce\xa3\xce\xa3\xce\x95\xce\xa5\xce\xa3",
         "\xce\xbf\xce\xb4\xcf\x85\xcf\x83\xcf\x83\xce\xb5\xcf\x85\xcf\x82"}, /* ΟΔΥΣΣΕΥΣ/οδυσσευς
                                                                               */
        {"kelvin sign", "\xe2\x84\xaa", "k"},                                 /* U+212A */
        {"vietnamese decomposed", "HOA\xcc\x80N", "ho\xc3\xa0n"},
};

static void test_fold_equal(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(fold_equal_cases); i++) {
                char *a = omr_text_fold(fold_equal_cases[i].a);
                char *b = omr_text_fold(fold_equal_cases[i].b);
                if (!a || !b)
                        fail_msg("%s: NULL", fold_equal_cases[i].name);
                if (strcmp(a, b) != 0)
                        fail_msg("%s: \"%s\" != \"%s\"", fold_equal_cases[i].name, a, b);
                free(a);
                free(b);
        }
}

static void test_fold_invalid(void **state)
{
        static const char *const bad[] = {"\xff", "abc\xc3", "\xed\xa0\x80", "\xc0\xaf", "ok\x80"};

        (void)state;
        for (size_t i = 0; i < N(bad); i++) {
                char *got = omr_text_fold(bad[i]);
                if (got) {
                        free(got);
                        fail_msg("bad[%zu]: want NULL for invalid UTF-8", i);
                }
        }
}

static const struct {
        const char *name, *in, *want;
} trim_cases[] = {
        {"empty", "", ""},
        {"nothing to trim", "hello", "hello"},
        {"ascii spaces", "  hello  ", "hello"},
        {"tabs and newlines", "\t\n hi there \r\n", "hi there"},
        {"vertical tab, form feed", "\v\fx\f\v", "x"},
        {"next line (NEL), line separator", "\xc2\x85x\xe2\x80\xa8", "x"},
        {"interior kept", "  a  b  ", "a  b"},
        {"no-break space", "\xc2\xa0x\xc2\xa0", "x"},
        {"ideographic space", "\xe3\x80\x80\xe6\x97\xa5\xe6\x9c\xac\xe3\x80\x80",
         "\xe6\x97\xa5\xe6\x9c\xac"}, /* 　日本　 */
        {"em space", "\xe2\x80\x83y\xe2\x80\x83", "y"},
        {"mixed",
         " \xc2\xa0\t\xe3\x80\x80 a\xc2\xa0"
         "b \xe3\x80\x80\n",
         "a\xc2\xa0"
         "b"},
        {"all ascii space", " \t\r\n ", ""},
        {"all unicode space", "\xc2\xa0\xe3\x80\x80\xc2\xa0", ""},
        /* à is C3 A0: its second byte must not be taken for a no-break space. */
        {"vietnamese ending in a-grave", " ho\xc3\xa0", "ho\xc3\xa0"},
        {"thai", " \xe0\xb8\x84\xe0\xb8\xb7\xe0\xb8\x99 ", "\xe0\xb8\x84\xe0\xb8\xb7\xe0\xb8\x99"},
};

static void test_trim(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(trim_cases); i++) {
                char *got = omr_text_trim(trim_cases[i].in);
                if (!got)
                        fail_msg("%s: NULL", trim_cases[i].name);
                if (strcmp(got, trim_cases[i].want) != 0)
                        fail_msg("%s: got \"%s\", want \"%s\"", trim_cases[i].name, got,
                                 trim_cases[i].want);
                free(got);
        }
}

static const struct {
        const char *hay, *needle;
        bool want;
} contains_cases[] = {
        {"hello world", "world", true},
        {"hello world", "hello", true},
        {"hello world", "o w", true},
        {"hello world", "worlds", false},
        {"abc", "abcd", false},
        {"", "a", false},
        {"t\xc3\xb4i mu\xe1\xbb\x91n ho\xc3\xa0n ti\xe1\xbb\x81n", "ho\xc3\xa0n ti\xe1\xbb\x81n",
         true},                                              /* tôi muốn hoàn tiền */
        {"ho\xc3\xa0n ti\xe1\xbb\x81n", "hoan tien", false}, /* accents matter */
        {"\xe0\xb8\x82\xe0\xb8\xad\xe0\xb8\x84\xe0\xb8\xb7\xe0\xb8\x99\xe0\xb9\x80\xe0\xb8\x87"
         "\xe0\xb8\xb4\xe0\xb8\x99",
         "\xe0\xb8\x84\xe0\xb8\xb7\xe0\xb8\x99\xe0\xb9\x80\xe0\xb8\x87\xe0\xb8\xb4\xe0\xb8\x99",
         true}, /* ขอคืนเงิน ⊃ คืนเงิน */
};

static void test_contains_folded(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(contains_cases); i++) {
                bool got =
                        omr_text_contains_folded(contains_cases[i].hay, contains_cases[i].needle);
                if (got != contains_cases[i].want)
                        fail_msg("contains(\"%s\", \"%s\") = %d, want %d", contains_cases[i].hay,
                                 contains_cases[i].needle, got, contains_cases[i].want);
        }
}

/* The way the router uses them: fold both sides, then search. */
static void test_fold_then_contains(void **state)
{
        char *hay = omr_text_fold("T\xc3\xb4i mu\xe1\xbb\x91n HO\xc3\x80N TI\xe1\xbb\x80N ngay"),
             *needle = omr_text_fold("Ho\xc3\xa0n Ti\xe1\xbb\x81n");

        (void)state;
        assert_non_null(hay);
        assert_non_null(needle);
        assert_true(omr_text_contains_folded(hay, needle));
        free(hay);
        free(needle);

        hay = omr_text_fold("Please \xef\xbc\xb2\xef\xbc\xa5\xef\xbc\xa6\xef\xbc\xb5\xef\xbc\xae"
                            "\xef\xbc\xa4 me");
        needle = omr_text_fold("REFUND");
        assert_non_null(hay);
        assert_non_null(needle);
        assert_true(omr_text_contains_folded(hay, needle));
        free(hay);
        free(needle);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_utf8),
                cmocka_unit_test(test_fold),
                cmocka_unit_test(test_fold_equal),
                cmocka_unit_test(test_fold_invalid),
                cmocka_unit_test(test_trim),
                cmocka_unit_test(test_contains_folded),
                cmocka_unit_test(test_fold_then_contains),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
