/* message_test.c — unit tests for daemon/message.c (the message model and
 * its stored JSON form) and daemon/timefmt.c (RFC 3339 <-> ms). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "omniroute/message.h"
#include "omniroute/timefmt.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char *xstrdup(const char *s)
{
        char *d = strdup(s);
        assert_non_null(d);
        return d;
}

static void set_id(char *dst, const char *ulid)
{
        assert_int_equal(strlen(ulid), OMR_ID_LEN);
        memcpy(dst, ulid, OMR_ID_LEN + 1);
}

/* A message with every field of the stored form set. */
static struct omr_message *full_message(void)
{
        struct omr_message *m = omr_message_new();

        assert_non_null(m);
        set_id(m->id, "01M83VVAHVVTPVXVR024H36H2N");
        set_id(m->conversation_id, "01M83VVAHV0000000000000000");
        m->direction = OMR_DIR_IN;
        m->channel = OMR_CHANNEL_SMS;
        m->provider = xstrdup("api:shop");
        m->external_id = xstrdup("m-1");
        m->thread_key = xstrdup("order-77");
        m->customer.id = xstrdup("cust-1");
        m->customer.name = xstrdup("Ana Nguy\xe1\xbb\x85n"); /* Nguyễn */
        m->customer.handle = xstrdup("+4477009001");
        m->to = xstrdup("support");
        m->subject = xstrdup("Ho\xc3\xa0n ti\xe1\xbb\x81n");
        m->text = xstrdup(
                "T\xc3\xb4i mu\xe1\xbb\x91n ho\xc3\xa0n ti\xe1\xbb\x81n \"ngay\"\n\xe0\xb8\x84");
        m->n_attachments = 2;
        m->attachments = calloc(2, sizeof(*m->attachments));
        assert_non_null(m->attachments);
        m->attachments[0].name = xstrdup("a.png");
        m->attachments[0].type = xstrdup("image/png");
        m->attachments[0].url = xstrdup("https://files.example/a.png");
        m->attachments[0].size = 123;
        m->attachments[1].name = xstrdup("invoice.pdf");
        m->attachments[1].type = xstrdup("application/pdf");
        m->attachments[1].url = xstrdup("https://files.example/invoice.pdf?x=1&y=2");
        m->attachments[1].size = 5000000000LL; /* above 32 bits */
        m->n_tags = 2;
        m->tags = calloc(2, sizeof(*m->tags));
        assert_non_null(m->tags);
        m->tags[0] = xstrdup("x");
        m->tags[1] = xstrdup("vip");
        m->received_at = 1795426200123LL; /* 2026-11-23T09:30:00.123Z */
        m->sent_at = 1795426199000LL;
        m->priority = OMR_PRIORITY_HIGH;
        return m;
}

static void assert_str_same(const char *field, const char *a, const char *b)
{
        if (!a && !b)
                return;
        if (!a || !b || strcmp(a, b) != 0)
                fail_msg("%s: \"%s\" != \"%s\"", field, a ? a : "(null)", b ? b : "(null)");
}

static void assert_messages_equal(const struct omr_message *a, const struct omr_message *b)
{
        assert_string_equal(a->id, b->id);
        assert_string_equal(a->conversation_id, b->conversation_id);
        assert_int_equal(a->direction, b->direction);
        assert_int_equal(a->channel, b->channel);
        assert_str_same("provider", a->provider, b->provider);
        assert_str_same("external_id", a->external_id, b->external_id);
        assert_str_same("thread_key", a->thread_key, b->thread_key);
        assert_str_same("customer.id", a->customer.id, b->customer.id);
        assert_str_same("customer.name", a->customer.name, b->customer.name);
        assert_str_same("customer.handle", a->customer.handle, b->customer.handle);
        assert_str_same("to", a->to, b->to);
        assert_str_same("subject", a->subject, b->subject);
        assert_str_same("text", a->text, b->text);
        assert_int_equal(a->n_attachments, b->n_attachments);
        for (size_t i = 0; i < a->n_attachments; i++) {
                assert_str_same("attachment.name", a->attachments[i].name, b->attachments[i].name);
                assert_str_same("attachment.type", a->attachments[i].type, b->attachments[i].type);
                assert_str_same("attachment.url", a->attachments[i].url, b->attachments[i].url);
                assert_int_equal(a->attachments[i].size, b->attachments[i].size);
        }
        assert_int_equal(a->n_tags, b->n_tags);
        for (size_t i = 0; i < a->n_tags; i++)
                assert_string_equal(a->tags[i], b->tags[i]);
        assert_int_equal(a->received_at, b->received_at);
        assert_int_equal(a->sent_at, b->sent_at);
        assert_int_equal(a->priority, b->priority);
}

static const char *jstr(const json_t *o, const char *key)
{
        const json_t *v = json_object_get(o, key);
        if (!json_is_string(v))
                fail_msg("\"%s\" is not a string in the message JSON", key);
        return json_string_value(v);
}

static void test_to_json_shape(void **state)
{
        struct omr_message *m = full_message();
        json_t *j = omr_message_to_json(m);

        (void)state;
        assert_non_null(j);
        assert_true(json_is_object(j));
        assert_string_equal(jstr(j, "id"), "01M83VVAHVVTPVXVR024H36H2N");
        assert_string_equal(jstr(j, "conversation_id"), "01M83VVAHV0000000000000000");
        assert_string_equal(jstr(j, "direction"), "in");
        assert_string_equal(jstr(j, "channel"), "sms");
        assert_string_equal(jstr(j, "provider"), "api:shop");
        assert_string_equal(jstr(j, "external_id"), "m-1");
        assert_string_equal(jstr(j, "thread_key"), "order-77");
        assert_string_equal(jstr(j, "to"), "support");
        assert_string_equal(jstr(j, "priority"), "high");
        assert_string_equal(jstr(j, "received_at"), "2026-11-23T09:30:00.123Z");
        assert_string_equal(jstr(j, "text"), m->text);

        const json_t *c = json_object_get(j, "customer");
        assert_true(json_is_object(c));
        assert_string_equal(jstr(c, "id"), "cust-1");
        assert_string_equal(jstr(c, "name"), "Ana Nguy\xe1\xbb\x85n");
        assert_string_equal(jstr(c, "handle"), "+4477009001");

        const json_t *att = json_object_get(j, "attachments");
        assert_true(json_is_array(att));
        assert_int_equal(json_array_size(att), 2);
        assert_string_equal(jstr(json_array_get(att, 0), "name"), "a.png");
        assert_string_equal(jstr(json_array_get(att, 0), "type"), "image/png");
        assert_int_equal(json_integer_value(json_object_get(json_array_get(att, 1), "size")),
                         5000000000LL);

        const json_t *tags = json_object_get(j, "tags");
        assert_true(json_is_array(tags));
        assert_int_equal(json_array_size(tags), 2);
        assert_string_equal(json_string_value(json_array_get(tags, 1)), "vip");

        json_decref(j);
        omr_message_free(m);
}

static void round_trip(const struct omr_message *m)
{
        char err[256] = "";
        json_t *j = omr_message_to_json(m);

        assert_non_null(j);
        /* Through text too, as it is stored in Redis. */
        char *text = json_dumps(j, JSON_COMPACT);
        assert_non_null(text);
        json_error_t jerr;
        json_t *parsed = json_loads(text, 0, &jerr);
        assert_non_null(parsed);

        struct omr_message *back = omr_message_from_json(parsed, err, sizeof(err));
        if (!back)
                fail_msg("from_json(%s) failed: %s", text, err);
        assert_messages_equal(m, back);

        omr_message_free(back);
        json_decref(parsed);
        free(text);
        json_decref(j);
}

static void test_round_trip_full(void **state)
{
        struct omr_message *m = full_message();

        (void)state;
        round_trip(m);
        omr_message_free(m);
}

/* Optional fields absent: NULL strings, no attachments or tags, sent_at 0,
 * an attachment of unknown size. */
static void test_round_trip_minimal(void **state)
{
        struct omr_message *m = omr_message_new();

        (void)state;
        assert_non_null(m);
        set_id(m->id, "01ARYZ6S41041061050R3GG28A");
        set_id(m->conversation_id, "01ARYZ6S41000000000000000Z");
        m->channel = OMR_CHANNEL_API;
        m->provider = xstrdup("api:shop");
        m->external_id = xstrdup("m-2");
        m->customer.id = xstrdup("cust-2");
        m->text = xstrdup("hi");
        m->received_at = 1469918176385LL;
        m->priority = OMR_PRIORITY_NORMAL;
        round_trip(m);

        m->n_attachments = 1;
        m->attachments = calloc(1, sizeof(*m->attachments));
        assert_non_null(m->attachments);
        m->attachments[0].url = xstrdup("https://files.example/x");
        m->attachments[0].size = -1;
        round_trip(m);
        omr_message_free(m);
}

static void test_round_trip_each_channel_priority(void **state)
{
        (void)state;
        for (int c = 0; c < OMR_CHANNEL__COUNT; c++) {
                for (int p = 0; p < OMR_PRIORITY__COUNT; p++) {
                        struct omr_message *m = full_message();
                        m->channel = (enum omr_channel)c;
                        m->priority = (enum omr_priority)p;
                        round_trip(m);
                        omr_message_free(m);
                }
        }
}

/* Each case edits the valid JSON of full_message(); from_json must fail and
 * its error must name the field. */
enum edit { DEL, SET_INT, SET_STR, SET_ARRAY_OF_STR };
static const struct {
        const char *obj; /* NULL: top level, else the member object to edit */
        const char *key;
        enum edit op;
        const char *str;
        const char *want; /* in err */
} bad_cases[] = {
        {"customer", "id", DEL, NULL, "customer.id"},
        {"customer", "id", SET_INT, NULL, "customer.id"},
        {NULL, "customer", SET_STR, "cust-1", "customer"},
        {NULL, "customer", DEL, NULL, "customer"},
        {NULL, "channel", SET_INT, NULL, "channel"},
        {NULL, "channel", SET_STR, "fax", "channel"},
        {NULL, "channel", DEL, NULL, "channel"},
        {NULL, "priority", SET_STR, "extreme", "priority"},
        {NULL, "direction", SET_STR, "sideways", "direction"},
        {NULL, "received_at", SET_STR, "yesterday", "received_at"},
        {NULL, "tags", SET_STR, "x", "tags"},
        {NULL, "attachments", SET_STR, "a.png", "attachments"},
        {NULL, "text", SET_INT, NULL, "text"},
        {NULL, "provider", SET_INT, NULL, "provider"},
        {NULL, "subject", SET_INT, NULL, "subject"},
        {NULL, "thread_key", SET_INT, NULL, "thread_key"},
        {NULL, "external_id", SET_INT, NULL, "external_id"},
        {NULL, "sent_at", SET_STR, "last tuesday", "sent_at"},
        {NULL, "id", SET_STR, "not-a-ulid", "id"},
        {NULL, "attachments", SET_ARRAY_OF_STR, "a.png", "attachments"},
        {NULL, "tags", SET_ARRAY_OF_STR, NULL, "tags"},
        {"customer", "name", SET_INT, NULL, "customer.name"},
        {"customer", "handle", SET_INT, NULL, "customer.handle"},
};

static void test_from_json_errors(void **state)
{
        struct omr_message *m = full_message();
        json_t *good = omr_message_to_json(m);

        (void)state;
        assert_non_null(good);
        for (size_t i = 0; i < N(bad_cases); i++) {
                json_t *j = json_deep_copy(good);
                json_t *o = bad_cases[i].obj ? json_object_get(j, bad_cases[i].obj) : j;
                char err[256] = "";

                assert_non_null(o);
                switch (bad_cases[i].op) {
                case DEL:
                        json_object_del(o, bad_cases[i].key);
                        break;
                case SET_INT:
                        json_object_set_new(o, bad_cases[i].key, json_integer(3));
                        break;
                case SET_STR:
                        json_object_set_new(o, bad_cases[i].key, json_string(bad_cases[i].str));
                        break;
                case SET_ARRAY_OF_STR: { /* [str] or, when str is NULL, [3] */
                        json_t *a = json_array();
                        json_array_append_new(a, bad_cases[i].str ? json_string(bad_cases[i].str)
                                                                  : json_integer(3));
                        json_object_set_new(o, bad_cases[i].key, a);
                        break;
                }
                }
                struct omr_message *got = omr_message_from_json(j, err, sizeof(err));
                char *text = json_dumps(j, JSON_COMPACT);
                if (got)
                        fail_msg("case %zu: accepted %s", i, text);
                if (!strstr(err, bad_cases[i].want))
                        fail_msg("case %zu: error \"%s\" does not name \"%s\"", i, err,
                                 bad_cases[i].want);
                free(text);
                json_decref(j);
        }

        /* Not an object at all. */
        json_t *arr = json_array();
        char err[256] = "";
        assert_null(omr_message_from_json(arr, err, sizeof(err)));
        assert_true(err[0] != '\0');
        json_decref(arr);

        /* A tiny error buffer is respected (ASan would see an overflow). */
        json_t *j = json_deep_copy(good);
        json_object_del(json_object_get(j, "customer"), "id");
        char small[4] = {'x', 'x', 'x', 'x'};
        assert_null(omr_message_from_json(j, small, sizeof(small)));
        assert_true(memchr(small, '\0', sizeof(small)) != NULL);
        json_decref(j);

        json_decref(good);
        omr_message_free(m);
}

static const struct {
        int value;
        const char *name;
} channels[] =
        {
                {OMR_CHANNEL_EMAIL, "email"}, {OMR_CHANNEL_CHAT, "chat"},
                {OMR_CHANNEL_SMS, "sms"},     {OMR_CHANNEL_SOCIAL, "social"},
                {OMR_CHANNEL_API, "api"},
},
  priorities[] = {
          {OMR_PRIORITY_LOW, "low"},
          {OMR_PRIORITY_NORMAL, "normal"},
          {OMR_PRIORITY_HIGH, "high"},
          {OMR_PRIORITY_URGENT, "urgent"},
};

static void test_channel_names(void **state)
{
        (void)state;
        assert_int_equal(N(channels), OMR_CHANNEL__COUNT);
        for (size_t i = 0; i < N(channels); i++) {
                assert_string_equal(omr_channel_name((enum omr_channel)channels[i].value),
                                    channels[i].name);
                assert_int_equal(omr_channel_parse(channels[i].name), channels[i].value);
        }
        static const char *const unknown[] = {"", "fax", "sms ", "smss", "e-mail", "phone"};
        for (size_t i = 0; i < N(unknown); i++)
                if (omr_channel_parse(unknown[i]) != -1)
                        fail_msg("omr_channel_parse(\"%s\") != -1", unknown[i]);
}

static void test_priority_names(void **state)
{
        (void)state;
        assert_int_equal(N(priorities), OMR_PRIORITY__COUNT);
        for (size_t i = 0; i < N(priorities); i++) {
                assert_string_equal(omr_priority_name((enum omr_priority)priorities[i].value),
                                    priorities[i].name);
                assert_int_equal(omr_priority_parse(priorities[i].name), priorities[i].value);
        }
        static const char *const unknown[] = {"", "extreme", "medium", "hi", "normal "};
        for (size_t i = 0; i < N(unknown); i++)
                if (omr_priority_parse(unknown[i]) != -1)
                        fail_msg("omr_priority_parse(\"%s\") != -1", unknown[i]);
        /* Ordered: a higher value is served first. */
        assert_true(OMR_PRIORITY_URGENT > OMR_PRIORITY_HIGH);
        assert_true(OMR_PRIORITY_HIGH > OMR_PRIORITY_NORMAL);
        assert_true(OMR_PRIORITY_NORMAL > OMR_PRIORITY_LOW);
}

/* ---- timefmt ---- */

static const struct {
        int64_t ms;
        const char *text;
} format_cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1, "1970-01-01T00:00:00.001Z"},
        {999, "1970-01-01T00:00:00.999Z"},
        {951782400000LL, "2000-02-29T00:00:00.000Z"},
        {1709208000000LL, "2024-02-29T12:00:00.000Z"},
        {1795426200000LL, "2026-11-23T09:30:00.000Z"},
        {1795426200123LL, "2026-11-23T09:30:00.123Z"},
        {253402300799999LL, "9999-12-31T23:59:59.999Z"},
};

static void test_time_format(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(format_cases); i++) {
                char out[OMR_TIME_LEN + 1];
                int64_t back = -1;

                memset(out, 'x', sizeof(out));
                omr_time_format(format_cases[i].ms, out);
                assert_string_equal(out, format_cases[i].text);
                assert_int_equal(strlen(out), OMR_TIME_LEN);
                assert_int_equal(omr_time_parse(out, &back), 0);
                assert_int_equal(back, format_cases[i].ms);
        }
}

static const struct {
        const char *text;
        int64_t ms;
} parse_cases[] = {
        {"2026-11-23T09:30:00Z", 1795426200000LL},
        {"2026-11-23T09:30:00.000Z", 1795426200000LL},
        {"2026-11-23T11:30:00+02:00", 1795426200000LL},
        {"2026-11-23T04:00:00-05:30", 1795426200000LL},
        {"2026-11-23T09:30:00+00:00", 1795426200000LL},
        {"2026-11-23T09:30:00-00:00", 1795426200000LL},
        {"2026-11-24T01:30:00+16:00", 1795426200000LL}, /* crosses midnight */
        {"2026-11-23T09:30:00.5Z", 1795426200500LL},
        {"2026-11-23T09:30:00.12Z", 1795426200120LL},
        {"2026-11-23T09:30:00.123Z", 1795426200123LL},
        {"2026-11-23T09:30:00.123456789Z", 1795426200123LL},
        {"2026-11-23T11:30:00.250+02:00", 1795426200250LL},
        {"1970-01-01T00:00:00Z", 0},
        {"2000-02-29T00:00:00Z", 951782400000LL},
        {"2024-02-29T12:00:00Z", 1709208000000LL},
};

static const char *const parse_bad[] = {
        "",
        "garbage",
        "2026-11-23",
        "2026-11-23T09:30:00",       /* no zone */
        "2026-11-23T09:30Z",         /* no seconds */
        "2026-13-01T00:00:00Z",      /* month 13 */
        "2026-00-10T00:00:00Z",      /* month 0 */
        "2026-02-30T00:00:00Z",      /* Feb 30 */
        "2026-02-29T00:00:00Z",      /* 2026 is not a leap year */
        "2100-02-29T00:00:00Z",      /* nor is 2100 */
        "2026-04-31T00:00:00Z",      /* April has 30 days */
        "2026-11-00T00:00:00Z",      /* day 0 */
        "2026-11-32T00:00:00Z",      /* day 32 */
        "2026-11-23T24:00:00Z",      /* hour 24 */
        "2026-11-23T09:60:00Z",      /* minute 60 */
        "2026-11-23T09:30:61Z",      /* second 61 */
        "2026-11-23T09:30:00+2:00",  /* short offset */
        "2026-11-23T09:30:00+02",    /* offset without minutes */
        "2026-11-23T09:30:00+24:00", /* offset hour 24 */
        "2026-11-23T09:30:00.Z",     /* empty fraction */
        "2026-11-23T09:30:00Zjunk",  /* trailing text */
        "2026-11-23T09:30:00Z ",     /* trailing space */
        " 2026-11-23T09:30:00Z",     /* leading space */
        "2026-1-23T09:30:00Z",       /* short month */
        "2026/11/23T09:30:00Z",      /* wrong separator */
        "2026-11-23X09:30:00Z",      /* wrong separator */
        "+2026-11-23T09:30:00Z",     /* sign */
        "2026-11-23T09:30:00.12aZ",  /* junk in fraction */
        "2026-11-23T-9:30:00Z",      /* negative hour */
};

static void test_time_parse(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(parse_cases); i++) {
                int64_t ms = -1;
                int rc = omr_time_parse(parse_cases[i].text, &ms);
                if (rc != 0)
                        fail_msg("parse(\"%s\") = %d", parse_cases[i].text, rc);
                if (ms != parse_cases[i].ms)
                        fail_msg("parse(\"%s\") = %lld ms, want %lld", parse_cases[i].text,
                                 (long long)ms, (long long)parse_cases[i].ms);
        }
        for (size_t i = 0; i < N(parse_bad); i++) {
                int64_t ms = 42;
                int rc = omr_time_parse(parse_bad[i], &ms);
                if (rc != -EINVAL)
                        fail_msg("parse(\"%s\") = %d (ms %lld), want -EINVAL", parse_bad[i], rc,
                                 (long long)ms);
        }
}

static void test_time_round_trip(void **state)
{
        (void)state;
        /* A spread of times (every ~13 days, at shifting hours) up to 2100. */
        for (int64_t ms = 0; ms < 4102444800000LL; ms += 86400000LL * 13 + 3600000LL * 7 + 61001) {
                char out[OMR_TIME_LEN + 1];
                int64_t back = -1;
                omr_time_format(ms, out);
                if (omr_time_parse(out, &back) != 0 || back != ms)
                        fail_msg("round trip of %lld via %s gave %lld", (long long)ms, out,
                                 (long long)back);
        }
}

static void test_clocks(void **state)
{
        (void)state;
        int64_t now = omr_now_ms();
        assert_true(now > 1700000000000LL); /* after 2023-11 */
        assert_true(now < 4102444800000LL); /* before 2100 */
        int64_t a = omr_mono_ms(), b = omr_mono_ms();
        assert_true(b >= a);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_to_json_shape),
                cmocka_unit_test(test_round_trip_full),
                cmocka_unit_test(test_round_trip_minimal),
                cmocka_unit_test(test_round_trip_each_channel_priority),
                cmocka_unit_test(test_from_json_errors),
                cmocka_unit_test(test_channel_names),
                cmocka_unit_test(test_priority_names),
                cmocka_unit_test(test_time_format),
                cmocka_unit_test(test_time_parse),
                cmocka_unit_test(test_time_round_trip),
                cmocka_unit_test(test_clocks),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
