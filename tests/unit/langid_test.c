/* langid_test.c — omr_langid_detect on short support messages in the
 * languages the customer base writes (bench/langid measures more). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "omniroute/langid.h"

static const struct {
        const char *text, *want;
} cases[] = {
        {"สวัสดีครับ ผมยังไม่ได้รับสินค้าที่สั่งไปเมื่อวันจันทร์", "th"},
        {"Xin chào, tôi muốn hoàn tiền cho đơn hàng này vì sản phẩm bị lỗi", "vi"},
        {"Merhaba, siparişim hâlâ gelmedi, kargo takip numarası çalışmıyor", "tr"},
        {"Hello, I was charged twice for my order, can you refund one of them?", "en"},
        {"Hola, quiero devolver el pedido porque llegó roto y nadie me responde", "es"},
};

static void test_languages(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct omr_language l;
                omr_langid_detect(cases[i].text, strlen(cases[i].text), &l);
                if (strcmp(l.tag, cases[i].want) != 0)
                        fail_msg("%s: got %s, want %s", cases[i].text, l.tag, cases[i].want);
                assert_true(l.reliable);
                assert_true(l.percent > 50);
        }
}

static void test_nothing_to_detect(void **state)
{
        (void)state;
        struct omr_language l;
        omr_langid_detect("", 0, &l);
        assert_string_equal(l.tag, "und");
        assert_false(l.reliable);
        omr_langid_detect("12345 !!! ???", 13, &l);
        assert_false(l.reliable);
        omr_langid_detect(NULL, 5, &l);
        assert_string_equal(l.tag, "und");
}

static void test_invalid_utf8_is_not_trusted(void **state)
{
        (void)state;
        struct omr_language l;
        const char bad[] = "Hello \xff\xfe there, my parcel is late";
        omr_langid_detect(bad, sizeof(bad) - 1, &l);
        assert_string_equal(l.tag, "und"); /* not UTF-8: no answer to trust */
        assert_false(l.reliable);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_languages),
                cmocka_unit_test(test_nothing_to_detect),
                cmocka_unit_test(test_invalid_utf8_is_not_trusted),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
