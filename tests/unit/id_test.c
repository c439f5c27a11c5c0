/* id_test.c — unit tests for daemon/id.c: ULID formatting against values
 * computed from the ULID spec (48-bit big-endian ms, 80 random bits,
 * Crockford base32), parsing the time back, and the strictly increasing
 * ids of one process. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "omniroute/timefmt.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
        uint64_t ms;
        uint8_t rnd[10];
        const char *want;
} format_cases[] = {
        {0, {0}, "00000000000000000000000000"},
        {(1ULL << 48) - 1,
         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
         "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"},
        /* The spec's example time, 2016-07-30T22:36:16.385Z. */
        {1469918176385ULL, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, "01ARYZ6S41041061050R3GG28A"},
        {1795426200123ULL,
         {0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55},
         "01M83VVAHVVTPVXVR024H36H2N"},
        {1795426200123ULL, {0}, "01M83VVAHV0000000000000000"},
        {1, {0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, "00000000010000000000000001"},
};

static void test_format(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(format_cases); i++) {
                char out[OMR_ID_LEN + 1];

                memset(out, 'x', sizeof(out));
                omr_id_format(format_cases[i].ms, format_cases[i].rnd, out);
                if (strcmp(out, format_cases[i].want) != 0)
                        fail_msg("case %zu: got %.*s, want %s", i, OMR_ID_LEN + 1, out,
                                 format_cases[i].want);
                int64_t t = omr_id_time(out);
                if (t != (int64_t)format_cases[i].ms)
                        fail_msg("omr_id_time(%s) = %lld, want %llu", out, (long long)t,
                                 (unsigned long long)format_cases[i].ms);
        }
}

static const char *const bad_ids[] = {
        "",
        "01ARYZ6S41041061050R3GG28",   /* 25 characters */
        "01ARYZ6S41041061050R3GG28AB", /* 27 characters */
        "01ARYZ6S4U041061050R3GG28A",  /* U is not Crockford base32 */
        "01ARYZ6S4I041061050R3GG28A",  /* nor I */
        "01ARYZ6S4L041061050R3GG28A",  /* nor L */
        "01ARYZ6S4O041061050R3GG28A",  /* nor O */
        "01ARYZ6S41041061050R3GG28U",  /* bad letter in the random part */
        "01ARYZ6S41-41061050R3GG28A",
        "01ARYZ6S41 41061050R3GG28A",
        "8ZZZZZZZZZZZZZZZZZZZZZZZZZ", /* above 2^128 - 1 */
};

static void test_time_bad(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(bad_ids); i++) {
                int64_t t = omr_id_time(bad_ids[i]);
                if (t != -1)
                        fail_msg("omr_id_time(\"%s\") = %lld, want -1", bad_ids[i], (long long)t);
        }
}

static void test_time_round_trip(void **state)
{
        static const uint64_t times[] = {
                0,
                1,
                999,
                1469918176385ULL,
                1795426200123ULL,
                4102444800000ULL,
                (1ULL << 48) - 2,
                (1ULL << 48) - 1,
        };
        const uint8_t rnd[10] = {0x80, 1, 2, 3, 4, 5, 6, 7, 8, 0xff};

        (void)state;
        for (size_t i = 0; i < N(times); i++) {
                char out[OMR_ID_LEN + 1];
                omr_id_format(times[i], rnd, out);
                assert_int_equal(strlen(out), OMR_ID_LEN);
                assert_int_equal(omr_id_time(out), (int64_t)times[i]);
        }
}

/* Ids sort by time: a later ms gives a greater string whatever the random part. */
static void test_format_sorts_by_time(void **state)
{
        const uint8_t hi[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        const uint8_t lo[10] = {0};
        char a[OMR_ID_LEN + 1], b[OMR_ID_LEN + 1];

        (void)state;
        omr_id_format(1795426200123ULL, hi, a);
        omr_id_format(1795426200124ULL, lo, b);
        assert_true(strcmp(a, b) < 0);
}

static int is_crockford(char c)
{
        return c && strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", c) != NULL;
}

#define N_IDS 10000

static void test_new_increasing(void **state)
{
        char(*ids)[OMR_ID_LEN + 1] = calloc(N_IDS, sizeof(*ids));
        int64_t before = omr_now_ms();

        (void)state;
        assert_non_null(ids);
        for (size_t i = 0; i < N_IDS; i++)
                omr_id_new(ids[i]);
        int64_t after = omr_now_ms();

        for (size_t i = 0; i < N_IDS; i++) {
                assert_int_equal(strlen(ids[i]), OMR_ID_LEN);
                for (size_t k = 0; k < OMR_ID_LEN; k++)
                        if (!is_crockford(ids[i][k]))
                                fail_msg("id %zu \"%s\": bad character at %zu", i, ids[i], k);
                int64_t t = omr_id_time(ids[i]);
                if (t < before || t > after)
                        fail_msg("id %s: time %lld outside [%lld, %lld]", ids[i], (long long)t,
                                 (long long)before, (long long)after);
                if (i > 0 && strcmp(ids[i - 1], ids[i]) >= 0)
                        fail_msg("ids %zu and %zu not increasing: %s then %s", i - 1, i, ids[i - 1],
                                 ids[i]);
        }
        free(ids);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_format),          cmocka_unit_test(test_time_bad),
                cmocka_unit_test(test_time_round_trip), cmocka_unit_test(test_format_sorts_by_time),
                cmocka_unit_test(test_new_increasing),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
