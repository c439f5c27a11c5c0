/* router_test.c — unit tests for daemon/router.c. The routing table is
 * loaded from inline YAML (as an operator writes it); each case builds a
 * message by hand and checks queue, priority and the deciding rule. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router.h"
#include "omniroute/conf.h"
#include "omniroute/message.h"
#include "omniroute/text.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Rule order matters: sms-vip and vip-sender overlap (first wins), and
 * refunds comes before everything. default_priority is low so that "a rule
 * without priority takes the default" is told apart from "normal". */
static const char routing_yaml[] =
        "routing:\n"
        "  default_queue: general\n"
        "  default_priority: low\n"
        "  rules:\n"
        "    - name: refunds\n"
        "      keywords: [refund, \"Money Back\", \"Ho\xc3\xa0n Ti\xe1\xbb\x81n\", iade,\n"
        "                 \"\xc3\x96\x44\x45ME\", \"\xe0\xb8\x84\xe0\xb8\xb7\xe0\xb8\x99\xe0\xb9"
        "\x80\xe0\xb8\x87\xe0\xb8\xb4\xe0\xb8\x99\"]\n"
        "      queue: billing\n"
        "      priority: high\n"
        "    - name: sms-vip\n"
        "      channel: [sms]\n"
        "      sender: [\"+4477009*\"]\n"
        "      queue: vip\n"
        "      priority: urgent\n"
        "    - name: vip-sender\n"
        "      sender: [\"+4477009*\", \"vip-*\"]\n"
        "      queue: vip-other\n"
        "      priority: high\n"
        "    - name: shop-adapter\n"
        "      adapter: [\"api:shop\", \"api:market\"]\n"
        "      queue: shop\n"
        "    - name: email-outage\n"
        "      channel: [email]\n"
        "      keywords: [outage]\n"
        "      queue: incidents\n"
        "      priority: urgent\n"
        "    - name: chat-social\n"
        "      channel: [chat, social]\n"
        "      queue: social\n"
        "      priority: normal\n";

static struct omr_conf *conf;

static int setup(void **state)
{
        struct omr_conf_errors errs;

        (void)state;
        memset(&errs, 0, sizeof(errs));
        conf = omr_conf_load_buffer("router.yaml", routing_yaml, strlen(routing_yaml), &errs);
        if (!conf) {
                for (size_t i = 0; i < errs.n; i++)
                        fprintf(stderr, "%s\n", errs.msg[i]);
                return -1;
        }
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        omr_conf_free(conf);
        conf = NULL;
        return 0;
}

static char *xstrdup(const char *s)
{
        char *d;

        if (!s)
                return NULL;
        d = strdup(s);
        assert_non_null(d);
        return d;
}

struct msg_spec {
        enum omr_channel channel;
        const char *provider, *id, *handle, *subject, *text;
};

static struct omr_message *make_message(const struct msg_spec *s)
{
        struct omr_message *m = omr_message_new();

        assert_non_null(m);
        m->channel = s->channel;
        m->provider = xstrdup(s->provider);
        m->external_id = xstrdup("ext-1");
        m->customer.id = xstrdup(s->id);
        m->customer.name = xstrdup("Refund Money-Back"); /* names never match keywords */
        m->customer.handle = xstrdup(s->handle);
        m->subject = xstrdup(s->subject);
        m->text = xstrdup(s->text);
        return m;
}

/* What the caller computes once: omr_text_fold(subject + " " + text). */
static char *folded_text(const struct omr_message *m)
{
        const char *subject = m->subject ? m->subject : "";
        const char *text = m->text ? m->text : "";
        size_t n = strlen(subject) + 1 + strlen(text) + 1;
        char *joined, *folded;

        if (!m->subject && !m->text)
                return NULL;
        joined = malloc(n);
        assert_non_null(joined);
        snprintf(joined, n, "%s %s", subject, text);
        folded = omr_text_fold(joined);
        assert_non_null(folded);
        free(joined);
        return folded;
}

#define VIP_PHONE "+447700900123"

static const struct {
        const char *name;
        struct msg_spec msg;
        const char *queue;
        enum omr_priority priority;
        const char *rule; /* NULL: the default route */
} cases[] = {
        /* Overlapping rules: sms-vip, vip-sender and shop-adapter all hold. */
        {"first match wins",
         {OMR_CHANNEL_SMS, "api:shop", "cust-1", VIP_PHONE, NULL, "hello"},
         "vip",
         OMR_PRIORITY_URGENT,
         "sms-vip"},
        {"keyword rule first",
         {OMR_CHANNEL_SMS, "twilio", "cust-1", VIP_PHONE, NULL, "I want a REFUND"},
         "billing",
         OMR_PRIORITY_HIGH,
         "refunds"},
        /* AND: sms-vip needs sms; the same sender by email falls to vip-sender. */
        {"channel and sender both needed",
         {OMR_CHANNEL_EMAIL, "imap", "cust-1", VIP_PHONE, "Hi", "hello"},
         "vip-other",
         OMR_PRIORITY_HIGH,
         "vip-sender"},
        {"sender glob on customer id",
         {OMR_CHANNEL_EMAIL, "imap", "vip-42", "ana@example.com", "Hi", "hello"},
         "vip-other",
         OMR_PRIORITY_HIGH,
         "vip-sender"},
        {"sender glob on handle",
         {OMR_CHANNEL_API, "api:other", "cust-9", "+4477009555", NULL, "hello"},
         "vip-other",
         OMR_PRIORITY_HIGH,
         "vip-sender"},
        {"sender glob is anchored",
         {OMR_CHANNEL_API, "api:other", "cust-9", "x+447700900123", NULL, "hello"},
         "general",
         OMR_PRIORITY_LOW,
         NULL},
        {"sender glob, other number",
         {OMR_CHANNEL_SMS, "twilio", "cust-1", "+441234567890", NULL, "hello"},
         "general",
         OMR_PRIORITY_LOW,
         NULL},
        {"no handle",
         {OMR_CHANNEL_SMS, "twilio", "cust-1", NULL, NULL, "hello"},
         "general",
         OMR_PRIORITY_LOW,
         NULL},
        /* A rule without priority takes the default priority. */
        {"adapter list, first",
         {OMR_CHANNEL_CHAT, "api:shop", "cust-2", NULL, NULL, "hello"},
         "shop",
         OMR_PRIORITY_LOW,
         "shop-adapter"},
        {"adapter list, second",
         {OMR_CHANNEL_API, "api:market", "cust-2", NULL, NULL, "hello"},
         "shop",
         OMR_PRIORITY_LOW,
         "shop-adapter"},
        {"adapter is exact",
         {OMR_CHANNEL_API, "api:shop2", "cust-2", NULL, NULL, "hello"},
         "general",
         OMR_PRIORITY_LOW,
         NULL},
        {"channel list, first",
         {OMR_CHANNEL_CHAT, "webchat", "cust-3", NULL, NULL, "hello"},
         "social",
         OMR_PRIORITY_NORMAL,
         "chat-social"},
        {"channel list, second",
         {OMR_CHANNEL_SOCIAL, "mastodon", "@ana", NULL, NULL, "hello"},
         "social",
         OMR_PRIORITY_NORMAL,
         "chat-social"},
        {"channel and keyword",
         {OMR_CHANNEL_EMAIL, "imap", "cust-4", "bo@example.com", "Service OUTAGE", "help"},
         "incidents",
         OMR_PRIORITY_URGENT,
         "email-outage"},
        {"keyword without channel",
         {OMR_CHANNEL_API, "api:other", "cust-4", NULL, NULL, "outage!"},
         "general",
         OMR_PRIORITY_LOW,
         NULL},
        {"channel without keyword",
         {OMR_CHANNEL_EMAIL, "imap", "cust-4", "bo@example.com", "Hello", "all fine"},
         "general",
         OMR_PRIORITY_LOW,
         NULL},
        {"keyword in subject",
         {OMR_CHANNEL_EMAIL, "imap", "cust-5", "bo@example.com", "Refund request", "see attached"},
         "billing",
         OMR_PRIORITY_HIGH,
         "refunds"},
        {"keyword, mixed case in rule",
         {OMR_CHANNEL_EMAIL, "imap", "cust-5", NULL, NULL, "i want my MONEY BACK now"},
         "billing",
         OMR_PRIORITY_HIGH,
         "refunds"},
        {"keyword is a substring",
         {OMR_CHANNEL_EMAIL, "imap", "cust-5", NULL, NULL, "refunded?"},
         "billing",
         OMR_PRIORITY_HIGH,
         "refunds"},
        {"vietnamese keyword",
         {OMR_CHANNEL_CHAT, "webchat", "cust-6", NULL, NULL,
          "T\xc3\xb4i mu\xe1\xbb\x91n HO\xc3\x80N TI\xe1\xbb\x80N"},
         "billing",
         OMR_PRIORITY_HIGH,
         "refunds"},
        {"vietnamese decomposed",
         {OMR_CHANNEL_CHAT, "webchat", "cust-6", NULL, NULL,
          "muo\xcc\x82\xcc\x81n hoa\xcc\x80n tie\xcc\x82\xcc\x80n"},
         "billing",
         OMR_PRIORITY_HIGH,
         "refunds"},
        {"vietnamese without accents is another word",
         {OMR_CHANNEL_CHAT, "webchat", "cust-6", NULL, NULL, "hoan tien"},
         "social",
         OMR_PRIORITY_NORMAL,
         "chat-social"},
        {"thai keyword",
         {OMR_CHANNEL_CHAT, "webchat", "cust-7", NULL, NULL,
          "\xe0\xb8\x82\xe0\xb8\xad\xe0\xb8\x84\xe0\xb8\xb7\xe0\xb8\x99\xe0\xb9\x80"
          "\xe0\xb8\x87\xe0\xb8\xb4\xe0\xb8\x99\xe0\xb8\x84\xe0\xb9\x88\xe0\xb8\xb0"},
         "billing",
         OMR_PRIORITY_HIGH,
         "refunds"},
        {"turkish keyword",
         {OMR_CHANNEL_SMS, "twilio", "cust-8", NULL, NULL,
          "Sipari\xc5\x9fim i\xc3\xa7in iade istiyorum"},
         "billing",
         OMR_PRIORITY_HIGH,
         "refunds"},
        {"turkish keyword, folded",
         {OMR_CHANNEL_SMS, "twilio", "cust-8", NULL, NULL,
          "\xc3\xb6\x64\x65me yap\xc4\xb1lmad\xc4\xb1"},
         "billing",
         OMR_PRIORITY_HIGH,
         "refunds"},
        {"fullwidth keyword (NFKC)",
         {OMR_CHANNEL_SMS, "twilio", "cust-8", NULL, NULL,
          "\xef\xbc\xb2\xef\xbc\xa5\xef\xbc\xa6\xef\xbc\xb5\xef\xbc\xae"
          "\xef\xbc\xa4 please"},
         "billing",
         OMR_PRIORITY_HIGH,
         "refunds"},
        {"no text matches no keyword",
         {OMR_CHANNEL_SMS, "twilio", "cust-1", NULL, NULL, NULL},
         "general",
         OMR_PRIORITY_LOW,
         NULL},
        {"nothing matches",
         {OMR_CHANNEL_API, "api:other", "cust-0", NULL, "Hello", "hello"},
         "general",
         OMR_PRIORITY_LOW,
         NULL},
};

static void test_route_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(cases); i++) {
                struct omr_message *m = make_message(&cases[i].msg);
                char *folded = folded_text(m);
                struct omr_route_decision d;

                memset(&d, 0xa5, sizeof(d));
                omr_route(&conf->routing, m, &(struct omr_route_input){.folded_text = folded}, &d);
                const char *rule = d.rule ? d.rule->name : NULL;
                if (!d.queue || strcmp(d.queue, cases[i].queue) != 0 ||
                    d.priority != cases[i].priority || (rule == NULL) != (cases[i].rule == NULL) ||
                    (rule && strcmp(rule, cases[i].rule) != 0))
                        fail_msg("%s: got queue=%s priority=%d rule=%s, want queue=%s priority=%d "
                                 "rule=%s",
                                 cases[i].name, d.queue ? d.queue : "(null)", (int)d.priority,
                                 rule ? rule : "(default)", cases[i].queue, (int)cases[i].priority,
                                 cases[i].rule ? cases[i].rule : "(default)");
                free(folded);
                omr_message_free(m);
        }
}

/* The decision borrows the queue from the conf, and the rule is one of its rules. */
static void test_route_borrows(void **state)
{
        const struct msg_spec spec = {OMR_CHANNEL_CHAT, "api:shop", "c", NULL, NULL, "x"};
        struct omr_message *m = make_message(&spec);
        struct omr_route_decision d;

        (void)state;
        omr_route(&conf->routing, m, &(struct omr_route_input){.folded_text = NULL}, &d);
        assert_non_null(d.rule);
        assert_true(d.rule >= conf->routing.rules &&
                    d.rule < conf->routing.rules + conf->routing.n_rules);
        assert_ptr_equal(d.queue, d.rule->queue);
        assert_false(d.rule->has_priority);
        omr_message_free(m);

        const struct msg_spec none = {OMR_CHANNEL_API, "api:other", "c", NULL, NULL, "x"};
        m = make_message(&none);
        omr_route(&conf->routing, m, &(struct omr_route_input){.folded_text = NULL}, &d);
        assert_null(d.rule);
        assert_ptr_equal(d.queue, conf->routing.default_queue);
        omr_message_free(m);
}

/* No rules at all: everything goes to the defaults. */
static void test_route_no_rules(void **state)
{
        static const char yaml[] = "routing:\n"
                                   "  default_queue: inbox\n"
                                   "  default_priority: urgent\n";
        struct omr_conf_errors errs;
        struct omr_conf *c;
        const struct msg_spec spec = {OMR_CHANNEL_SMS, "twilio", "c", VIP_PHONE, NULL, "refund"};
        struct omr_message *m = make_message(&spec);
        char *folded = folded_text(m);
        struct omr_route_decision d;

        (void)state;
        memset(&errs, 0, sizeof(errs));
        c = omr_conf_load_buffer("norules.yaml", yaml, strlen(yaml), &errs);
        if (!c)
                fail_msg("load: %s", errs.n ? errs.msg[0] : "?");
        assert_int_equal(c->routing.n_rules, 0);
        omr_route(&c->routing, m, &(struct omr_route_input){.folded_text = folded}, &d);
        assert_string_equal(d.queue, "inbox");
        assert_int_equal(d.priority, OMR_PRIORITY_URGENT);
        assert_null(d.rule);
        free(folded);
        omr_message_free(m);
        omr_conf_free(c);
}

/* language: a tag matches itself and its subtags ("vi" → "vi-VN"), not a
 * longer code that merely starts alike ("vi" ↛ "vie"). */
static void test_route_language(void **state)
{
        static const char yaml[] = "routing:\n"
                                   "  default_queue: general\n"
                                   "  rules:\n"
                                   "    - language: [vi, TH]\n"
                                   "      queue: sea\n"
                                   "    - language: [zh]\n"
                                   "      channel: [chat]\n"
                                   "      queue: chinese\n";
        static const struct {
                const char *tag;
                enum omr_channel channel;
                const char *queue;
        } lang_cases[] = {
                {"vi", OMR_CHANNEL_SMS, "sea"},           {"vi-VN", OMR_CHANNEL_SMS, "sea"},
                {"th", OMR_CHANNEL_EMAIL, "sea"},         {"vie", OMR_CHANNEL_SMS, "general"},
                {"zh-Hans", OMR_CHANNEL_CHAT, "chinese"}, {"zh-Hans", OMR_CHANNEL_SMS, "general"},
                {"und", OMR_CHANNEL_SMS, "general"},      {"", OMR_CHANNEL_SMS, "general"},
        };
        struct omr_conf_errors errs;
        (void)state;
        struct omr_conf *c = omr_conf_load_buffer("lang.yaml", yaml, strlen(yaml), &errs);
        assert_non_null(c);
        for (size_t i = 0; i < N(lang_cases); i++) {
                struct omr_message *m = omr_message_new();
                struct omr_route_decision d;
                m->channel = lang_cases[i].channel;
                m->provider = strdup("api:shop");
                m->customer.id = strdup("c-1");
                snprintf(m->language.tag, sizeof(m->language.tag), "%s", lang_cases[i].tag);
                omr_route(&c->routing, m, &(struct omr_route_input){.folded_text = NULL}, &d);
                if (strcmp(d.queue, lang_cases[i].queue) != 0)
                        fail_msg("language %s: got %s, want %s", lang_cases[i].tag, d.queue,
                                 lang_cases[i].queue);
                omr_message_free(m);
        }
        omr_conf_free(c);
        /* Tags are validated at load. */
        static const char bad[] = "routing:\n  rules:\n    - language: [\"v i\"]\n      queue: q\n";
        assert_null(omr_conf_load_buffer("bad.yaml", bad, strlen(bad), &errs));
        assert_true(errs.n >= 1 && strstr(errs.msg[0], "bad.yaml:3:") != NULL);
}

/* ---- the conditions of issue 4: vip, returning, regex; required skills ---- */

/* Order matters again: the vip rules come first, so a VIP writing about an
 * order is still a VIP. The regexes see subject + " " + text unfolded
 * (PCRE2, caseless, UTF). */
static const char cond_yaml[] =
        "routing:\n"
        "  default_queue: general\n"
        "  default_priority: normal\n"
        "  rules:\n"
        "    - name: vip-new\n"
        "      vip: true\n"
        "      returning: false\n"
        "      queue: vip-welcome\n"
        "      priority: urgent\n"
        "      skills: [VIP, Onboarding]\n"
        "    - name: vip\n"
        "      vip: true\n"
        "      queue: vip\n"
        "      priority: high\n"
        "      skills: [vip]\n"
        "    - name: orders\n"
        "      regex: 'order\\s*#?\\d{5,}'\n"
        "      queue: orders\n"
        "      skills: [Orders]\n"
        /* คืนเงิน | เงินคืน (refund, Thai) */
        "    - name: thai-refund\n"
        "      regex: '\xe0\xb8\x84\xe0\xb8\xb7\xe0\xb8\x99\xe0\xb9\x80\xe0\xb8\x87\xe0\xb8\xb4"
        "\xe0\xb8\x99|\xe0\xb9\x80\xe0\xb8\x87\xe0\xb8\xb4\xe0\xb8\x99\xe0\xb8\x84\xe0\xb8\xb7"
        "\xe0\xb8\x99'\n"
        "      queue: thai\n"
        "      skills: [th, Billing]\n"
        /* đơn hàng <number> (order, Vietnamese) */
        "    - name: vi-order\n"
        "      regex: '\xc4\x91\xc6\xa1n\\s+h\xc3\xa0ng\\s+\\d+'\n"
        "      queue: vi\n"
        "      skills: [VI]\n"
        "    - name: backtrack\n"
        "      regex: '(a+)+$'\n"
        "      queue: backtrack\n"
        "    - name: tail-b\n"
        "      regex: 'ab$'\n"
        "      queue: tail\n"
        "    - name: returning-email\n"
        "      returning: true\n"
        "      channel: [email]\n"
        "      queue: regulars\n"
        "    - name: new-email\n"
        "      returning: false\n"
        "      channel: [email]\n"
        "      queue: first-timers\n"
        "    - name: not-vip-sms\n"
        "      vip: false\n"
        "      channel: [sms]\n"
        "      queue: sms\n";

static struct omr_conf *load_yaml(const char *name, const char *yaml)
{
        struct omr_conf_errors errs;
        struct omr_conf *c;

        memset(&errs, 0, sizeof(errs));
        c = omr_conf_load_buffer(name, yaml, strlen(yaml), &errs);
        if (!c) {
                for (size_t i = 0; i < errs.n && i < OMR_CONF_MAX_ERRORS; i++)
                        fprintf(stderr, "  %s\n", errs.msg[i]);
                fail_msg("%s rejected", name);
        }
        return c;
}

/* What ingest passes as the regexes' text: subject + " " + text, or NULL
 * here when the message has neither (NULL matches no regex). */
static char *joined_text(const struct omr_message *m)
{
        size_t n;
        char *joined;

        if (!m->subject && !m->text)
                return NULL;
        n = (m->subject ? strlen(m->subject) + 1 : 0) + (m->text ? strlen(m->text) : 0) + 1;
        joined = malloc(n);
        assert_non_null(joined);
        snprintf(joined, n, "%s%s%s", m->subject ? m->subject : "", m->subject ? " " : "",
                 m->text ? m->text : "");
        return joined;
}

/* The rule's skills joined by ",", "" for none or the default route. */
static void skills_of(const struct omr_rule *r, char *out, size_t cap)
{
        size_t k = 0;

        out[0] = '\0';
        for (size_t i = 0; r && i < r->n_skills && k < cap; i++) {
                int w = snprintf(out + k, cap - k, "%s%s", i ? "," : "", r->skills[i]);
                assert_true(w >= 0 && (size_t)w < cap - k);
                k += (size_t)w;
        }
}

#define THAI_REFUND                                                                                \
        "\xe0\xb8\x82\xe0\xb8\xad\xe0\xb9\x80\xe0\xb8\x87\xe0\xb8\xb4\xe0\xb8\x99\xe0\xb8\x84"     \
        "\xe0\xb8\xb7\xe0\xb8\x99\xe0\xb8\x94\xe0\xb9\x89\xe0\xb8\xa7\xe0\xb8\xa2\xe0\xb8\x84"     \
        "\xe0\xb9\x88\xe0\xb8\xb0"

static const struct {
        const char *name;
        bool vip, returning;
        struct msg_spec msg;
        const char *queue;
        enum omr_priority priority;
        const char *rule;   /* NULL: the default route */
        const char *skills; /* the decision's rule->skills, joined by "," */
} cond_cases[] = {
        {"vip, first time",
         true,
         false,
         {OMR_CHANNEL_CHAT, "webchat", "c-1", NULL, NULL, "hello"},
         "vip-welcome",
         OMR_PRIORITY_URGENT,
         "vip-new",
         "vip,onboarding"},
        {"vip, returning",
         true,
         true,
         {OMR_CHANNEL_CHAT, "webchat", "c-1", NULL, NULL, "hello"},
         "vip",
         OMR_PRIORITY_HIGH,
         "vip",
         "vip"},
        {"vip before the regex",
         true,
         false,
         {OMR_CHANNEL_CHAT, "webchat", "c-1", NULL, NULL, "order #12345"},
         "vip-welcome",
         OMR_PRIORITY_URGENT,
         "vip-new",
         "vip,onboarding"},
        {"regex, not vip",
         false,
         false,
         {OMR_CHANNEL_CHAT, "webchat", "c-2", NULL, NULL, "Where is order #12345?"},
         "orders",
         OMR_PRIORITY_NORMAL,
         "orders",
         "orders"},
        {"regex is caseless",
         false,
         true,
         {OMR_CHANNEL_CHAT, "webchat", "c-2", NULL, NULL, "ORDER 987654 is late"},
         "orders",
         OMR_PRIORITY_NORMAL,
         "orders",
         "orders"},
        {"regex, no space and no #",
         false,
         false,
         {OMR_CHANNEL_API, "api:shop", "c-2", NULL, NULL, "re: order00001"},
         "orders",
         OMR_PRIORITY_NORMAL,
         "orders",
         "orders"},
        {"regex over the subject",
         false,
         false,
         {OMR_CHANNEL_EMAIL, "imap", "c-2", NULL, "Order #55555", "see subject"},
         "orders",
         OMR_PRIORITY_NORMAL,
         "orders",
         "orders"},
        {"regex needs five digits",
         false,
         false,
         {OMR_CHANNEL_CHAT, "webchat", "c-2", NULL, NULL, "order #1234"},
         "general",
         OMR_PRIORITY_NORMAL,
         NULL,
         ""},
        {"regex needs the digits after order",
         false,
         false,
         {OMR_CHANNEL_CHAT, "webchat", "c-2", NULL, NULL, "order number 12345"},
         "general",
         OMR_PRIORITY_NORMAL,
         NULL,
         ""},
        {"thai regex",
         false,
         false,
         {OMR_CHANNEL_CHAT, "line", "c-3", NULL, NULL, THAI_REFUND},
         "thai",
         OMR_PRIORITY_NORMAL,
         "thai-refund",
         "th,billing"},
        /* Tôi chưa nhận được ĐƠN HÀNG 4521: caseless beyond ASCII (Đ/đ, Ơ/ơ, À/à). */
        {"vietnamese regex, upper case",
         false,
         false,
         {OMR_CHANNEL_CHAT, "zalo", "c-4", NULL, NULL,
          "T\xc3\xb4i ch\xc6\xb0\x61 nh\xe1\xba\xadn \xc4\x91\xc6\xb0\xe1\xbb\xa3\x63 "
          "\xc4\x90\xc6\xa0N H\xc3\x80NG 4521"},
         "vi",
         OMR_PRIORITY_NORMAL,
         "vi-order",
         "vi"},
        {"vietnamese regex, lower case",
         false,
         true,
         {OMR_CHANNEL_CHAT, "zalo", "c-4", NULL, NULL, "\xc4\x91\xc6\xa1n h\xc3\xa0ng  77"},
         "vi",
         OMR_PRIORITY_NORMAL,
         "vi-order",
         "vi"},
        {"vietnamese regex, letters without diacritics differ",
         false,
         false,
         {OMR_CHANNEL_CHAT, "zalo", "c-4", NULL, NULL, "don hang 4521"},
         "general",
         OMR_PRIORITY_NORMAL,
         NULL,
         ""},
        {"no text matches no regex",
         false,
         false,
         {OMR_CHANNEL_CHAT, "webchat", "c-5", NULL, NULL, NULL},
         "general",
         OMR_PRIORITY_NORMAL,
         NULL,
         ""},
        {"backtracking pattern, short text",
         false,
         false,
         {OMR_CHANNEL_CHAT, "webchat", "c-5", NULL, NULL, "aaaa"},
         "backtrack",
         OMR_PRIORITY_NORMAL,
         "backtrack",
         ""},
        {"returning, email",
         false,
         true,
         {OMR_CHANNEL_EMAIL, "imap", "c-6", "bo@example.com", "Hi", "hello again"},
         "regulars",
         OMR_PRIORITY_NORMAL,
         "returning-email",
         ""},
        {"first time, email",
         false,
         false,
         {OMR_CHANNEL_EMAIL, "imap", "c-6", "bo@example.com", "Hi", "hello"},
         "first-timers",
         OMR_PRIORITY_NORMAL,
         "new-email",
         ""},
        {"not vip, sms",
         false,
         false,
         {OMR_CHANNEL_SMS, "twilio", "c-7", "+15550001111", NULL, "hi"},
         "sms",
         OMR_PRIORITY_NORMAL,
         "not-vip-sms",
         ""},
        {"not vip, sms, returning (no returning condition)",
         false,
         true,
         {OMR_CHANNEL_SMS, "twilio", "c-7", "+15550001111", NULL, "hi"},
         "sms",
         OMR_PRIORITY_NORMAL,
         "not-vip-sms",
         ""},
        {"returning, social",
         false,
         true,
         {OMR_CHANNEL_SOCIAL, "mastodon", "@bo", NULL, NULL, "hi"},
         "general",
         OMR_PRIORITY_NORMAL,
         NULL,
         ""},
};

static void test_route_conditions(void **state)
{
        struct omr_conf *c = load_yaml("cond.yaml", cond_yaml);

        (void)state;
        assert_true(c->routing.uses_returning);
        for (size_t i = 0; i < N(cond_cases); i++) {
                struct omr_message *m = make_message(&cond_cases[i].msg);
                char *text = joined_text(m), *folded = folded_text(m);
                struct omr_route_input in = {.text = text,
                                             .folded_text = folded,
                                             .vip = cond_cases[i].vip,
                                             .returning = cond_cases[i].returning};
                struct omr_route_decision d;
                char skills[128];

                memset(&d, 0xa5, sizeof(d));
                omr_route(&c->routing, m, &in, &d);
                const char *rule = d.rule ? d.rule->name : NULL;
                skills_of(d.rule, skills, sizeof(skills));
                if (!d.queue || strcmp(d.queue, cond_cases[i].queue) != 0 ||
                    d.priority != cond_cases[i].priority ||
                    (rule == NULL) != (cond_cases[i].rule == NULL) ||
                    (rule && strcmp(rule, cond_cases[i].rule) != 0) ||
                    strcmp(skills, cond_cases[i].skills) != 0)
                        fail_msg("%s: got queue=%s priority=%d rule=%s skills=[%s], want "
                                 "queue=%s priority=%d rule=%s skills=[%s]",
                                 cond_cases[i].name, d.queue ? d.queue : "(null)", (int)d.priority,
                                 rule ? rule : "(default)", skills, cond_cases[i].queue,
                                 (int)cond_cases[i].priority,
                                 cond_cases[i].rule ? cond_cases[i].rule : "(default)",
                                 cond_cases[i].skills);
                free(text);
                free(folded);
                omr_message_free(m);
        }
        omr_conf_free(c);
}

/* Rules without vip / returning conditions ignore both: the first table
 * routes the same for a returning VIP. And no rule of it asks about
 * returning customers, so ingest need not route twice. */
static void test_route_conditions_absent(void **state)
{
        (void)state;
        assert_false(conf->routing.uses_returning);
        for (size_t i = 0; i < N(cases); i++) {
                struct omr_message *m = make_message(&cases[i].msg);
                char *folded = folded_text(m);
                struct omr_route_decision plain, vip;

                omr_route(&conf->routing, m, &(struct omr_route_input){.folded_text = folded},
                          &plain);
                omr_route(&conf->routing, m,
                          &(struct omr_route_input){
                                  .folded_text = folded, .vip = true, .returning = true},
                          &vip);
                if (plain.rule != vip.rule || plain.queue != vip.queue ||
                    plain.priority != vip.priority)
                        fail_msg("%s: a returning VIP routes elsewhere", cases[i].name);
                if (plain.rule)
                        assert_int_equal(plain.rule->n_skills, 0);
                free(folded);
                omr_message_free(m);
        }
}

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* (a+)+$ against "aaa…ab" backtracks exponentially: the bounded match
 * gives up, the rule does not match, and the next rule still gets its turn
 * — quickly, whatever the text's length. The router's bound takes a few ms
 * here; PCRE2's default limits alone take ~0.15 s a message, which the
 * budget below tells apart (best of three, to ride out a busy machine). */
#define BACKTRACK_BUDGET_S 0.05

static void test_route_regex_backtracking_is_bounded(void **state)
{
        static const size_t lengths[] = {30, 1000, 100000};
        struct omr_conf *c = load_yaml("cond.yaml", cond_yaml);

        (void)state;
        for (size_t i = 0; i < N(lengths); i++) {
                size_t n = lengths[i];
                char *text = malloc(n + 2);
                struct omr_message *m = omr_message_new();
                double best = 1e9;

                assert_non_null(text);
                assert_non_null(m);
                memset(text, 'a', n);
                text[n] = 'b';
                text[n + 1] = '\0';
                m->channel = OMR_CHANNEL_CHAT;
                m->provider = xstrdup("webchat");
                m->customer.id = xstrdup("c-9");
                m->text = xstrdup(text);
                char *folded = folded_text(m);
                for (int run = 0; run < 3; run++) {
                        struct omr_route_decision d;
                        double t0 = now_s();
                        omr_route(&c->routing, m,
                                  &(struct omr_route_input){.text = text, .folded_text = folded},
                                  &d);
                        double took = now_s() - t0;
                        if (took < best)
                                best = took;
                        if (!d.rule || strcmp(d.rule->name, "tail-b") != 0)
                                fail_msg("%zu a's + b: got rule %s, want tail-b", n,
                                         d.rule ? d.rule->name : "(default)");
                        assert_string_equal(d.queue, "tail");
                }
                if (best > BACKTRACK_BUDGET_S)
                        fail_msg("%zu a's + b: routing took %.3f s (budget %.3f s)", n, best,
                                 BACKTRACK_BUDGET_S);
                free(folded);
                free(text);
                omr_message_free(m);
        }
        omr_conf_free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_route_table),
                cmocka_unit_test(test_route_borrows),
                cmocka_unit_test(test_route_no_rules),
                cmocka_unit_test(test_route_language),
                cmocka_unit_test(test_route_conditions),
                cmocka_unit_test(test_route_conditions_absent),
                cmocka_unit_test(test_route_regex_backtracking_is_bounded),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
