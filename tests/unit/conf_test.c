/* conf_test.c — unit tests for daemon/conf.c: the example config loads,
 * every kind of error is reported as "PATH:LINE: message" on the right line,
 * defaults, duration / size / listen / redis url parsing, secrets, reload
 * blockers and adapter lookup; and daemon/conf_routing.c: routing.queues,
 * routing.customers.vip, the rule conditions vip / returning / regex and
 * skills, agents (heartbeat_timeout, list) and their lookups. The exact
 * error wording is not fixed: tests assert the prefix and a key word (the
 * key or the offending value).
 *
 * Secret files live in a mkdtemp(3) directory made by the group setup; the
 * config "path" given to omr_conf_load_buffer() points into it so relative
 * secret_file names resolve there. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "omniroute/conf.h"
#include "omniroute/message.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* OMR_TEST_DATA is SOURCE/tests/unit/data (which need not exist). */
static void source_path(const char *rel, char *out, size_t cap)
{
        static const char suffix[] = "/tests/unit/data";
        size_t n = strlen(OMR_TEST_DATA);

        assert_true(n >= sizeof(suffix) - 1);
        assert_string_equal(&OMR_TEST_DATA[n - (sizeof(suffix) - 1)], suffix);
        snprintf(out, cap, "%.*s/%s", (int)(n - (sizeof(suffix) - 1)), OMR_TEST_DATA, rel);
}

static char tmpdir[64];
static char conf_path[128]; /* tmpdir/c.yaml: names the buffers in messages */

static void write_file(const char *dir, const char *name, const char *content)
{
        char path[PATH_MAX];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fputs(content, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

static void remove_dir(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        char path[PATH_MAX];

        if (!d)
                return;
        while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                unlink(path);
        }
        closedir(d);
        rmdir(dir);
}

static int group_setup(void **state)
{
        (void)state;
        /* Relative secret files must resolve against the config's directory. */
        unsetenv("CREDENTIALS_DIRECTORY");
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/omr-conf-XXXXXX");
        if (!mkdtemp(tmpdir))
                return -1;
        snprintf(conf_path, sizeof(conf_path), "%s/c.yaml", tmpdir);
        write_file(tmpdir, "shop.secret", "s3cret\n");
        write_file(tmpdir, "market.secret", "m-secret\r\n");
        write_file(tmpdir, "raw.secret", "no newline");
        write_file(tmpdir, "empty.secret", "");
        write_file(tmpdir, "newline.secret", "\n");
        write_file(tmpdir, "twilio.token", "twilio-auth-token\n");
        write_file(tmpdir, "vonage.secret", "vonage-api-secret\n");
        write_file(tmpdir, "vonage.sig", "vonage-signature-secret\n");
        write_file(tmpdir, "agent16.token", "0123456789abcdef\n"); /* exactly 16 bytes */
        write_file(tmpdir, "email.key", "email-token-key-0123456789\n");
        write_file(tmpdir, "agent15.token", "0123456789abcde\r\n"); /* 15 once \r\n is dropped */
        return 0;
}

static int group_teardown(void **state)
{
        (void)state;
        remove_dir(tmpdir);
        return 0;
}

static struct omr_conf *load(const char *yaml, struct omr_conf_errors *errs)
{
        memset(errs, 0, sizeof(*errs));
        return omr_conf_load_buffer(conf_path, yaml, strlen(yaml), errs);
}

/* Loads yaml, which must be valid. */
static struct omr_conf *load_ok(const char *yaml)
{
        struct omr_conf_errors errs;
        struct omr_conf *c = load(yaml, &errs);

        if (!c) {
                for (size_t i = 0; i < errs.n && i < OMR_CONF_MAX_ERRORS; i++)
                        fprintf(stderr, "  %s\n", errs.msg[i]);
                fail_msg("config rejected (%zu errors):\n%s", errs.n, yaml);
        }
        assert_int_equal(errs.n, 0);
        return c;
}

/* ---- the example config ---- */

/* The rule of that name; fails the test when there is none. */
static const struct omr_rule *rule_named(const struct omr_conf *c, const char *name)
{
        for (size_t i = 0; i < c->routing.n_rules; i++)
                if (strcmp(c->routing.rules[i].name, name) == 0)
                        return &c->routing.rules[i];
        fail_msg("no rule named %s", name);
        return NULL;
}

static void test_example_loads(void **state)
{
        char dir[] = "/tmp/omr-example-XXXXXX";
        char path[PATH_MAX];
        struct omr_conf_errors errs;
        char example[PATH_MAX];
        char *text;
        long len;
        FILE *in;

        (void)state;
        source_path("config/omnirouted.example.yaml", example, sizeof(example));
        in = fopen(example, "r");
        if (!in)
                fail_msg("cannot open %s", example);
        assert_int_equal(fseek(in, 0, SEEK_END), 0);
        len = ftell(in);
        assert_true(len > 0);
        rewind(in);
        text = calloc(1, (size_t)len + 1);
        assert_non_null(text);
        assert_int_equal(fread(text, 1, (size_t)len, in), (size_t)len);
        fclose(in);
        assert_non_null(mkdtemp(dir));
        write_file(dir, "omnirouted.yaml", text);
        write_file(dir, "api-shop.secret", "shop-secret\n");
        write_file(dir, "twilio-main.token", "twilio-token\n");
        write_file(dir, "vonage-main.secret", "vonage-secret\n");
        write_file(dir, "vonage-main.sig", "vonage-signature-secret\n");
        write_file(dir, "helpdesk.token", "0123456789abcdef0123456789abcdef\n");
        write_file(dir, "tier1-slack.url", "https://hooks.slack.com/services/T0/B0/x\n");
        write_file(dir, "crm-webhook.secret", "crm-webhook-secret\n");
        write_file(dir, "smtp.password", "smtp-password\n");
        write_file(dir, "email-support.key", "0123456789abcdef0123456789abcdef\n");
        write_file(dir, "imap-support.password", "imap-password\n");
        write_file(dir, "smtp-support.password", "smtp-password\n");
        write_file(dir, "chat.key", "0123456789abcdef0123456789abcdef\n");
        free(text);
        snprintf(path, sizeof(path), "%s/omnirouted.yaml", dir);

        memset(&errs, 0, sizeof(errs));
        struct omr_conf *c = omr_conf_load(path, &errs);
        if (!c)
                fail_msg("example config rejected: %s", errs.n ? errs.msg[0] : "?");
        assert_int_equal(errs.n, 0);
        assert_string_equal(c->path, path);
        assert_int_equal(c->log_level, LOG_INFO);

        /* The SMS accounts, agent tokens and outbound settings. */
        assert_int_equal(c->n_twilio, 1);
        assert_string_equal(c->twilio[0].name, "main");
        assert_string_equal(c->twilio[0].auth_token, "twilio-token");
        assert_string_equal(c->twilio[0].public_url, "https://support.example.com");
        assert_string_equal(c->twilio[0].api_base, "https://api.twilio.com");
        assert_int_equal(c->n_vonage, 1);
        assert_int_equal(c->vonage[0].signature_method, OMR_VSIG_MD5HASH);
        assert_true(c->vonage[0].require_signature);
        assert_string_equal(c->vonage[0].api_base, "https://rest.nexmo.com");
        assert_int_equal(c->n_tokens, 1);
        assert_string_equal(omr_conf_token_match(c, "0123456789abcdef0123456789abcdef"),
                            "helpdesk");
        assert_null(omr_conf_token_match(c, "0123456789abcdef0123456789abcdeF"));
        assert_null(omr_conf_token_match(c, ""));
        assert_int_equal(c->outbound.give_up_after_ms, 600000);
        assert_int_equal(c->outbound.request_timeout_ms, 15000);

        /* The email mailbox: the URL split into server and folder. */
        assert_int_equal(c->n_email, 1);
        const struct omr_conf_email_mailbox *mb = omr_conf_email(c, "support");
        assert_non_null(mb);
        assert_string_equal(mb->address, "support@example.com");
        assert_int_equal(mb->token_secret_len, 32);
        assert_string_equal(mb->imap.server, "imaps://imap.example.com");
        assert_string_equal(mb->imap.folder, "INBOX");
        assert_string_equal(mb->imap.password, "imap-password");
        assert_int_equal(mb->imap.poll_ms, 30000);
        assert_int_equal(mb->imap.batch, 50);
        assert_int_equal(mb->imap.after, OMR_IMAP_AFTER_SEEN);
        assert_string_equal(mb->smtp.server, "smtp.example.com:587");
        assert_int_equal(mb->smtp.starttls, OMR_STARTTLS_REQUIRED);
        assert_null(mb->mailgun_key);
        assert_int_equal(mb->max_message_size, 25u << 20);

        /* Chat: one site, its origins. */
        assert_non_null(omr_conf_chat_site(c, "main"));
        assert_int_equal(c->chat.n_sites, 1);
        assert_string_equal(c->chat.sites[0].origins[0], "https://www.example.com");
        assert_int_equal(c->chat.max_message, 16 * 1024);
        assert_int_equal(c->chat.ping_ms, 25000);
        assert_int_equal(c->chat.session_ttl_ms, 86400000);

        assert_string_equal(c->http.host, "127.0.0.1");
        assert_int_equal(c->http.port, 8080);
        assert_int_equal(c->http.max_body, 1024 * 1024);
        assert_int_equal(c->http.max_header, 32 * 1024);
        assert_int_equal(c->http.idle_timeout_s, 30);
        assert_int_equal(c->http.max_connections, 4096);
        assert_int_equal(c->http.drain_timeout_ms, 10000);

        assert_int_equal(c->redis.kind, OMR_REDIS_EMBEDDED);
        assert_null(c->redis.url);
        assert_null(c->redis.password);
        assert_string_equal(c->redis.prefix, "omr:");
        assert_int_equal(c->redis.command_timeout_ms, 2000);
        assert_int_equal(c->redis.dedup_ttl_s, 7 * 86400);
        assert_int_equal(c->redis.queue_maxlen, 1000000);
        assert_int_equal(c->redis.events_maxlen, 100000);

        assert_int_equal(c->api.timestamp_window_s, 300);
        assert_int_equal(c->api.n_adapters, 1);
        const struct omr_conf_adapter *a = &c->api.adapters[0];
        assert_string_equal(a->name, "shop");
        assert_int_equal(a->secret_len, strlen("shop-secret"));
        assert_memory_equal(a->secret, "shop-secret", a->secret_len);
        assert_false(a->require_timestamp);
        assert_ptr_equal(omr_conf_adapter(c, "shop"), a);

        const struct omr_conf_routing *r = &c->routing;
        assert_string_equal(r->default_queue, "general");
        assert_int_equal(r->default_priority, OMR_PRIORITY_NORMAL);
        assert_int_equal(r->n_rules, 7);
        const struct omr_rule *rule = rule_named(c, "vip");
        assert_int_equal(rule->vip, 1);
        assert_string_equal(rule->queue, "vip");
        assert_int_equal(rule->priority, OMR_PRIORITY_URGENT);
        assert_int_equal(rule->n_skills, 1);
        assert_string_equal(rule->skills[0], "vip");
        rule = rule_named(c, "refunds");
        assert_string_equal(rule->queue, "billing");
        assert_true(rule->has_priority);
        assert_int_equal(rule->priority, OMR_PRIORITY_HIGH);
        assert_int_equal(rule->n_keywords, 5);
        assert_string_equal(rule->keywords[2], "ho\xc3\xa0n ti\xe1\xbb\x81n");
        assert_int_equal(rule->channels, 0);
        assert_int_equal(rule->vip, -1);
        assert_string_equal(rule->skills[0], "billing");
        rule = rule_named(c, "order-number");
        assert_non_null(rule->regex);
        assert_string_equal(rule->regex_src, "order\\s*#?\\d{5,}");
        assert_string_equal(rule->queue, "orders");
        assert_int_equal(rule_named(c, "after-hours")->returning, 1);
        assert_true(r->uses_returning);
        rule = rule_named(c, "vietnamese");
        assert_int_equal(rule->n_languages, 1);
        assert_string_equal(rule->languages[0], "vi");
        assert_string_equal(rule->queue, "vi");
        rule = rule_named(c, "sms-vip");
        assert_int_equal(rule->channels, 1u << OMR_CHANNEL_SMS);
        assert_int_equal(rule->n_senders, 1);
        assert_string_equal(rule->senders[0], "+4477009*");
        assert_int_equal(rule->priority, OMR_PRIORITY_URGENT);
        rule = rule_named(c, "shop-adapter");
        assert_int_equal(rule->n_adapters, 1);
        assert_string_equal(rule->adapters[0], "api:shop");
        assert_string_equal(rule->queue, "shop");
        assert_false(rule->has_priority);

        /* VIP customers, queues and agents. */
        assert_int_equal(r->n_vip, 2);
        assert_true(omr_conf_is_vip(c, "+447700900123", NULL));
        assert_true(omr_conf_is_vip(c, "cust-1", "ceo@bigcustomer.example"));
        assert_false(omr_conf_is_vip(c, "cust-1", "ceo@example.com"));
        assert_int_equal(r->n_queues, 2);
        const struct omr_conf_queue *q = omr_conf_queue(c, "general");
        assert_string_equal(q->name, "general");
        assert_int_equal(q->mode, OMR_QUEUE_PUSH);
        assert_int_equal(q->strategy, OMR_STRATEGY_LEAST_BUSY);
        assert_true(q->sticky);
        assert_true(q->match_language);
        assert_int_equal(q->offer_timeout_ms, 30000);
        q = omr_conf_queue(c, "billing");
        assert_string_equal(q->name, "billing");
        assert_int_equal(q->mode, OMR_QUEUE_PULL);
        assert_int_equal(q->claim_timeout_ms, 300000);
        assert_int_equal(omr_conf_queue(c, "vip")->mode, OMR_QUEUE_PULL); /* not listed */
        assert_int_equal(c->agents.heartbeat_timeout_ms, 60000);
        assert_int_equal(c->agents.n, 1);
        const struct omr_conf_agent *ag = omr_conf_agent(c, "alice");
        assert_non_null(ag);
        assert_string_equal(ag->email, "alice@example.com");
        assert_int_equal(ag->n_languages, 2);
        assert_int_equal(ag->n_skills, 2);
        assert_int_equal(ag->n_capacity, 3);
        assert_int_equal(ag->n_queues, 3);
        assert_string_equal(ag->queues[2], "vip");
        assert_int_equal(ag->n_teams, 1);

        omr_conf_free(c);
        remove_dir(dir);
}

static void test_load_missing_file(void **state)
{
        struct omr_conf_errors errs;
        char path[PATH_MAX];

        (void)state;
        snprintf(path, sizeof(path), "%s/does-not-exist.yaml", tmpdir);
        memset(&errs, 0, sizeof(errs));
        assert_null(omr_conf_load(path, &errs));
        assert_true(errs.n >= 1);
        assert_non_null(strstr(errs.msg[0], path));
}

/* ---- errors ---- */

/* SMS accounts, one key per line; an account's mapping starts on line 4. */
#define TWILIO_ACCOUNTS "connectors:\n  twilio:\n    accounts:\n"
#define TWILIO_MAIN(url)                                                                           \
        "      - name: main\n"                                                                     \
        "        account_sid: AC0123\n"                                                            \
        "        auth_token_file: twilio.token\n"                                                  \
        "        public_url: " url "\n"                                                            \
        "        from: \"+15005550006\"\n"
#define VONAGE_ACCOUNTS "connectors:\n  vonage:\n    accounts:\n"
/* The vonage section inside the same connectors mapping. */
#define VONAGE_ACCOUNTS_AFTER_TWILIO "  vonage:\n    accounts:\n"
#define VONAGE_MAIN                                                                                \
        "      - name: main\n"                                                                     \
        "        api_key: abcd1234\n"                                                              \
        "        api_secret_file: vonage.secret\n"                                                 \
        "        from: \"447700900000\"\n"

/* routing.queues with queue general's mapping starting on line 4. */
#define QUEUE_GENERAL "routing:\n  queues:\n    general:\n"
/* A rule whose conditions start on line 4. */
#define RULE_R "routing:\n  rules:\n    - name: r\n"
/* agents.list; an agent's mapping starts on line 3, AGENT_REST is 2 lines. */
#define AGENTS     "agents:\n  list:\n"
#define AGENT_REST "      capacity: {chat: 1}\n      queues: [general]\n"
#define ID65       "a123456789b123456789c123456789d123456789e123456789f123456789g1234"

static const struct {
        const char *name;
        const char *yaml;
        int line;              /* 0: any line */
        const char *any_of[2]; /* the message names one of these (NULL: no check) */
} error_cases[] = {
        {"email address with plus",
         "connectors:\n  email:\n    mailboxes:\n      - name: s\n        address: a+b@x.com\n"
         "        token_secret_file: email.key\n",
         5,
         {"a+b@x.com"}},
        {"email short token key",
         "connectors:\n  email:\n    mailboxes:\n      - name: s\n        address: a@x.com\n"
         "        token_secret_file: agent15.token\n",
         6,
         {"16 bytes"}},
        {"email without token key",
         "connectors:\n  email:\n    mailboxes:\n      - name: s\n        address: a@x.com\n",
         4,
         {"token_secret_file"}},
        {"email imap http url",
         "connectors:\n  email:\n    mailboxes:\n      - name: s\n        address: a@x.com\n"
         "        token_secret_file: email.key\n        imap:\n          url: http://x/INBOX\n"
         "          user: u\n          password_file: shop.secret\n",
         8,
         {"imap://"}},
        {"email imap without password",
         "connectors:\n  email:\n    mailboxes:\n      - name: s\n        address: a@x.com\n"
         "        token_secret_file: email.key\n        imap:\n          url: imap://x/INBOX\n"
         "          user: u\n",
         8,
         {"password_file"}},
        {"email move without folder",
         "connectors:\n  email:\n    mailboxes:\n      - name: s\n        address: a@x.com\n"
         "        token_secret_file: email.key\n        imap:\n          url: imap://x/INBOX\n"
         "          user: u\n          password_file: shop.secret\n          after_store: move\n",
         8,
         {"move_to"}},
        {"email smtp without port",
         "connectors:\n  email:\n    mailboxes:\n      - name: s\n        address: a@x.com\n"
         "        token_secret_file: email.key\n        smtp:\n          server: smtp.x.com\n",
         8,
         {"host:port"}},
        {"email mailboxes sharing an address",
         "connectors:\n  email:\n    mailboxes:\n      - name: s\n        address: a@x.com\n"
         "        token_secret_file: email.key\n      - name: t\n        address: A@x.com\n"
         "        token_secret_file: email.key\n",
         4,
         {"share address"}},
        {"calendar unknown zone",
         "calendars:\n  office:\n    timezone: Mars/Olympus\n",
         3,
         {"Mars/Olympus"}},
        {"calendar without zone",
         "calendars:\n  office:\n    hours: {mon: \"09:00-17:00\"}\n",
         2,
         {"timezone"}},
        {"calendar bad day",
         "calendars:\n  office:\n    timezone: UTC\n    hours: {monday: \"09:00-17:00\"}\n",
         4,
         {"monday"}},
        {"calendar bad range",
         "calendars:\n  office:\n    timezone: UTC\n    hours: {mon: \"9-17\"}\n",
         4,
         {"9-17"}},
        {"calendar bad holiday",
         "calendars:\n  office:\n    timezone: UTC\n    holidays: [\"2026-02-30\"]\n",
         4,
         {"2026-02-30"}},
        {"rule names unknown calendar",
         "routing:\n  rules:\n    - name: night\n      outside_business_hours: nope\n      "
         "queue: q\n",
         3,
         {"nope"}},
        {"rule names two calendars",
         "routing:\n  rules:\n    - name: r\n      business_hours: a\n      "
         "outside_business_hours: b\n      queue: q\n",
         5,
         {"either"}},
        {"webhook without url", "notify:\n  webhooks:\n    - name: w\n", 3, {"url"}},
        {"webhook bad url",
         "notify:\n  webhooks:\n    - name: w\n      url: ftp://x\n",
         4,
         {"http"}},
        {"webhook bad format",
         "notify:\n  webhooks:\n    - name: w\n      url: http://x\n      format: xml\n",
         5,
         {"xml"}},
        {"webhook unknown event",
         "notify:\n  webhooks:\n    - name: w\n      url: http://x\n      events: [reply.sent]\n",
         5,
         {"reply.sent"}},
        {"webhook named twice",
         "notify:\n  webhooks:\n    - name: w\n      url: http://x\n    - name: w\n      url: "
         "http://y\n",
         5,
         {"twice"}},
        {"email without from", "notify:\n  email:\n    server: 127.0.0.1:25\n", 3, {"from"}},
        {"email bad server",
         "notify:\n  email:\n    server: localhost\n    from: a@b.example\n",
         3,
         {"host:port"}},
        {"email user without password",
         "notify:\n  email:\n    server: h:25\n    from: a@b.example\n    user: u\n",
         3,
         {"password_file"}},
        {"email bad starttls",
         "notify:\n  email:\n    server: h:25\n    from: a@b.example\n    starttls: maybe\n",
         5,
         {"starttls"}},
        {"unknown top-level key", "log:\n  level: info\nbogus: 1\n", 3, {"bogus"}},
        {"unknown http key",
         "http:\n  listen: \"127.0.0.1:0\"\n  max_bodyy: 1MiB\n",
         3,
         {"max_bodyy"}},
        {"unknown rule key",
         "routing:\n  rules:\n    - name: r\n      queue: q\n      keywordz: [x]\n",
         5,
         {"keywordz"}},
        {"unknown adapter key",
         "connectors:\n  api:\n    adapters:\n      - name: shop\n        secret_file: "
         "shop.secret\n        require_ts: true\n",
         6,
         {"require_ts"}},
        {"unknown connector", "connectors:\n  nosuchconnector: {}\n", 2, {"nosuchconnector"}},
        {"mapping for a scalar", "http:\n  listen: {host: x}\n", 2, {"listen"}},
        {"sequence for max_body", "http:\n  max_body: [1, 2]\n", 2, {"max_body"}},
        {"scalar for a mapping", "log:\n  level: info\nhttp: 8080\n", 3, {"http"}},
        {"scalar for rules", "routing:\n  rules: refunds\n", 2, {"rules"}},
        {"mapping in the adapter list of a rule",
         "routing:\n  rules:\n    - name: r\n      adapter: [{a: 1}]\n      queue: q\n",
         4,
         {"adapter"}},
        {"bad duration", "http:\n  idle_timeout: 5x\n", 2, {"idle_timeout", "5x"}},
        {"bad duration, word", "redis:\n  command_timeout: fast\n", 2, {"command_timeout", "fast"}},
        {"bad duration, nested",
         "connectors:\n  api:\n    timestamp_window: 5x\n",
         3,
         {"timestamp_window", "5x"}},
        {"bad size unit", "http:\n  max_body: 12QB\n", 2, {"max_body", "12QB"}},
        {"negative size", "http:\n  max_body: -1\n", 2, {"max_body", "-1"}},
        {"size out of range", "http:\n  max_body: 100GiB\n", 2, {"max_body", "100GiB"}},
        {"duplicate key",
         "http:\n  listen: \"127.0.0.1:1\"\n  listen: \"127.0.0.1:2\"\n",
         3,
         {"listen"}},
        {"duplicate section", "log:\n  level: info\nlog:\n  level: debug\n", 3, {"log"}},
        {"bad count", "http:\n  max_connections: lots\n", 2, {"max_connections", "lots"}},
        {"listen without port", "http:\n  listen: nohost\n", 2, {"listen", "nohost"}},
        {"listen port too big", "http:\n  listen: \"127.0.0.1:99999\"\n", 2, {"listen", "99999"}},
        {"listen host:99999", "http:\n  listen: \"host:99999\"\n", 2, {"listen", "99999"}},
        {"listen empty port", "http:\n  listen: \"127.0.0.1:\"\n", 2, {"listen"}},
        {"redis url scheme", "redis:\n  url: \"http://127.0.0.1:6379/0\"\n", 2, {"url", "http"}},
        {"redis url port", "redis:\n  url: \"redis://h:99999/0\"\n", 2, {"url", "99999"}},
        {"redis url db", "redis:\n  url: \"redis://h:6379/x\"\n", 2, {"url", "redis://h"}},
        {"missing secret file",
         "connectors:\n  api:\n    adapters:\n      - name: shop\n        secret_file: "
         "nope.secret\n",
         5,
         {"nope.secret"}},
        {"empty secret file",
         "connectors:\n  api:\n    adapters:\n      - name: shop\n        secret_file: "
         "empty.secret\n",
         5,
         {"empty.secret"}},
        {"secret file of one newline",
         "connectors:\n  api:\n    adapters:\n      - name: shop\n        secret_file: "
         "newline.secret\n",
         5,
         {"newline.secret"}},
        {"adapter without secret",
         "connectors:\n  api:\n    adapters:\n      - name: shop\n",
         4,
         {"secret_file"}},
        {"duplicate adapter",
         "connectors:\n  api:\n    adapters:\n      - name: shop\n        secret_file: "
         "shop.secret\n      - name: shop\n        secret_file: market.secret\n",
         6,
         {"shop"}},
        {"bad adapter name",
         "connectors:\n  api:\n    adapters:\n      - name: \"sh op\"\n        secret_file: "
         "shop.secret\n",
         4,
         {"sh op"}},
        {"bad bool",
         "connectors:\n  api:\n    adapters:\n      - name: shop\n        secret_file: "
         "shop.secret\n        require_timestamp: maybe\n",
         6,
         {"require_timestamp", "maybe"}},
        {"invalid queue name",
         "routing:\n  rules:\n    - name: r\n      queue: \"a b\"\n",
         4,
         {"a b"}},
        {"invalid default queue", "routing:\n  default_queue: \"a b\"\n", 2, {"a b"}},
        {"unknown channel",
         "routing:\n  rules:\n    - name: r\n      channel: [sms, fax]\n      queue: q\n",
         4,
         {"fax"}},
        {"unknown priority",
         "routing:\n  rules:\n    - name: r\n      queue: q\n      priority: extreme\n",
         5,
         {"extreme"}},
        {"unknown default priority", "routing:\n  default_priority: extreme\n", 2, {"extreme"}},
        {"empty keyword list",
         "routing:\n  rules:\n    - name: r\n      keywords: []\n      queue: q\n",
         4,
         {"empty"}},
        {"empty channel list",
         "routing:\n  rules:\n    - name: r\n      channel: []\n      queue: q\n",
         4,
         {"empty"}},
        {"duplicate key", "http:\n  max_body: 2MiB\n  max_body: 4MiB\n", 3, {"twice"}},
        {"rule without queue",
         "routing:\n  rules:\n    - name: r\n      keywords: [x]\n",
         3,
         {"queue"}},
        {"unknown log level", "log:\n  level: verbose\n", 2, {"verbose", "level"}},
        {"document not a mapping", "- a\n- b\n", 1, {NULL}},
        {"yaml syntax error", "http:\n  listen: \"127.0.0.1:0\n", 0, {NULL}},
        /* connectors.mastodon / connectors.x */
        {"x account without user_id",
         "connectors:\n  x:\n    accounts:\n      - name: b\n        base_url: https://api.x.com\n"
         "        token_file: twilio.token\n",
         0,
         {"user_id"}},
        {"mastodon with user_id",
         "connectors:\n  mastodon:\n    accounts:\n      - name: b\n"
         "        base_url: https://m.example\n        token_file: twilio.token\n"
         "        user_id: \"12\"\n",
         0,
         {"user_id"}},
        {"mastodon page_size over 80",
         "connectors:\n  mastodon:\n    accounts:\n      - name: b\n"
         "        base_url: https://m.example\n        token_file: twilio.token\n"
         "        page_size: 81\n",
         0,
         {"page_size"}},
        {"x page_size under 5",
         "connectors:\n  x:\n    accounts:\n      - name: b\n        base_url: https://api.x.com\n"
         "        token_file: twilio.token\n        user_id: \"1\"\n        page_size: 4\n",
         0,
         {"page_size"}},
        {"mastodon base_url without scheme",
         "connectors:\n  mastodon:\n    accounts:\n      - name: b\n        base_url: m.example\n"
         "        token_file: twilio.token\n",
         5,
         {"base_url"}},
        {"mastodon poll_interval too short",
         "connectors:\n  mastodon:\n    accounts:\n      - name: b\n"
         "        base_url: https://m.example\n        token_file: twilio.token\n"
         "        poll_interval: 10ms\n",
         7,
         {"poll_interval"}},
        {"mastodon account without token_file",
         "connectors:\n  mastodon:\n    accounts:\n      - name: b\n"
         "        base_url: https://m.example\n",
         0,
         {"token_file"}},
        /* connectors.twilio */
        {"twilio account without public_url",
         TWILIO_ACCOUNTS "      - name: main\n        account_sid: AC0123\n"
                         "        auth_token_file: twilio.token\n        from: \"+15005550006\"\n",
         4,
         {"public_url"}},
        {"twilio account without from",
         TWILIO_ACCOUNTS "      - name: main\n        account_sid: AC0123\n"
                         "        auth_token_file: twilio.token\n"
                         "        public_url: \"https://support.example.com\"\n",
         4,
         {"from"}},
        {"twilio public_url ftp",
         TWILIO_ACCOUNTS TWILIO_MAIN("\"ftp://support.example.com\""),
         7,
         {"public_url", "ftp://"}},
        {"twilio public_url without scheme",
         TWILIO_ACCOUNTS TWILIO_MAIN("support.example.com"),
         7,
         {"public_url", "support.example.com"}},
        {"twilio public_url without a host",
         TWILIO_ACCOUNTS TWILIO_MAIN("\"https://\""),
         7,
         {"public_url", "https://"}},
        {"twilio public_url with a query",
         TWILIO_ACCOUNTS TWILIO_MAIN("\"https://x.example/?a=1\""),
         7,
         {"public_url", "query"}},
        {"twilio public_url wss",
         TWILIO_ACCOUNTS TWILIO_MAIN("\"wss://support.example.com\""),
         7,
         {"public_url", "wss://"}},
        {"twilio api_base not http(s)",
         TWILIO_ACCOUNTS TWILIO_MAIN(
                 "\"https://support.example.com\"") "        api_base: \"api.twilio.com\"\n",
         9,
         {"api_base"}},
        {"twilio auth token inline (not a file)",
         TWILIO_ACCOUNTS TWILIO_MAIN("\"https://support.example.com\"") "        auth_token: abc\n",
         9,
         {"auth_token"}},
        {"twilio auth_token_file missing",
         TWILIO_ACCOUNTS "      - name: main\n        account_sid: AC0123\n"
                         "        auth_token_file: nope.token\n"
                         "        public_url: \"https://support.example.com\"\n"
                         "        from: \"+15005550006\"\n",
         6,
         {"nope.token"}},
        {"duplicate twilio account",
         TWILIO_ACCOUNTS TWILIO_MAIN("\"https://a.example.com\"")
                 TWILIO_MAIN("\"https://b.example.com\""),
         9,
         {"main"}},
        {"twilio accounts not a list",
         "connectors:\n  twilio:\n    accounts:\n      name: main\n",
         4,
         {"accounts"}},
        /* connectors.vonage */
        {"vonage signature_method unknown",
         VONAGE_ACCOUNTS VONAGE_MAIN "        signature_secret_file: vonage.sig\n"
                                     "        signature_method: sha384\n",
         9,
         {"sha384", "signature_method"}},
        {"vonage signature_method sha-256",
         VONAGE_ACCOUNTS VONAGE_MAIN "        signature_secret_file: vonage.sig\n"
                                     "        signature_method: sha-256\n",
         9,
         {"sha-256", "signature_method"}},
        {"vonage require_signature not a bool",
         VONAGE_ACCOUNTS VONAGE_MAIN "        require_signature: sometimes\n",
         8,
         {"require_signature", "sometimes"}},
        {"vonage account without api_key",
         VONAGE_ACCOUNTS "      - name: main\n        api_secret_file: vonage.secret\n"
                         "        from: \"447700900000\"\n",
         4,
         {"api_key"}},
        {"vonage api_base not http(s)",
         VONAGE_ACCOUNTS VONAGE_MAIN "        api_base: \"ftp://rest.nexmo.com\"\n",
         8,
         {"api_base", "ftp://"}},
        {"duplicate vonage account", VONAGE_ACCOUNTS VONAGE_MAIN VONAGE_MAIN, 8, {"main"}},
        /* api.tokens */
        {"token shorter than 16 bytes",
         "api:\n  tokens:\n    - name: helpdesk\n      token_file: agent15.token\n",
         4,
         {"token_file", "16"}},
        {"token of 6 bytes",
         "api:\n  tokens:\n    - name: helpdesk\n      token_file: shop.secret\n",
         4,
         {"token_file", "16"}},
        {"token without token_file", "api:\n  tokens:\n    - name: helpdesk\n", 3, {"token_file"}},
        {"token file missing",
         "api:\n  tokens:\n    - name: helpdesk\n      token_file: nope.token\n",
         4,
         {"nope.token"}},
        {"duplicate token name",
         "api:\n  tokens:\n    - name: helpdesk\n      token_file: agent16.token\n"
         "    - name: helpdesk\n      token_file: agent16.token\n",
         5,
         {"helpdesk"}},
        {"bad token name",
         "api:\n  tokens:\n    - name: \"help desk\"\n      token_file: agent16.token\n",
         3,
         {"help desk"}},
        {"unknown api key", "api:\n  token: x\n", 2, {"token"}},
        /* outbound */
        {"request_timeout 50ms", "outbound:\n  request_timeout: 50ms\n", 2, {"request_timeout"}},
        {"request_timeout 99ms", "outbound:\n  request_timeout: 99ms\n", 2, {"request_timeout"}},
        {"request_timeout 3m", "outbound:\n  request_timeout: 3m\n", 2, {"request_timeout"}},
        {"request_timeout not a duration",
         "outbound:\n  request_timeout: soon\n",
         2,
         {"request_timeout", "soon"}},
        {"give_up_after negative",
         "outbound:\n  give_up_after: -5s\n",
         2,
         {"give_up_after", "-5s"}},
        {"unknown outbound key", "outbound:\n  retries: 3\n", 2, {"retries"}},
        /* routing.queues */
        {"queue mode unknown", QUEUE_GENERAL "      mode: pushy\n", 4, {"mode", "pushy"}},
        {"queue strategy unknown",
         QUEUE_GENERAL "      strategy: fastest\n",
         4,
         {"strategy", "fastest"}},
        {"queue sticky not a bool",
         QUEUE_GENERAL "      mode: push\n      sticky: maybe\n",
         5,
         {"sticky", "maybe"}},
        {"queue match_language not a bool",
         QUEUE_GENERAL "      match_language: sometimes\n",
         4,
         {"match_language", "sometimes"}},
        {"offer_timeout not a duration",
         QUEUE_GENERAL "      offer_timeout: soon\n",
         4,
         {"offer_timeout", "soon"}},
        {"offer_timeout over 7d", QUEUE_GENERAL "      offer_timeout: 8d\n", 4, {"offer_timeout"}},
        {"claim_timeout under 1s",
         QUEUE_GENERAL "      claim_timeout: 999ms\n",
         4,
         {"claim_timeout"}},
        {"claim_timeout 0", QUEUE_GENERAL "      claim_timeout: 0\n", 4, {"claim_timeout"}},
        {"claim_timeout over 7d",
         QUEUE_GENERAL "      claim_timeout: 169h\n",
         4,
         {"claim_timeout"}},
        {"unknown queue key", QUEUE_GENERAL "      modus: push\n", 4, {"modus"}},
        {"duplicate queue",
         QUEUE_GENERAL "      mode: push\n    sales:\n      mode: push\n    general:\n"
                       "      mode: pull\n",
         7,
         {"'general'"}},
        {"invalid queue name in queues",
         "routing:\n  queues:\n    \"a b\":\n      mode: push\n",
         3,
         {"a b"}},
        {"queues not a mapping", "routing:\n  queues: [general, sales]\n", 2, {"queues"}},
        {"queue settings not a mapping",
         "routing:\n  queues:\n    general: push\n",
         3,
         {"mapping"}},
        /* routing.customers */
        {"unknown customers key", "routing:\n  customers:\n    gold: [\"+44*\"]\n", 3, {"gold"}},
        {"vip list of mappings",
         "routing:\n  customers:\n    vip: [{id: x}]\n",
         3,
         {"routing.customers.vip"}},
        /* rule conditions of issue 4 */
        {"regex does not compile, quantifier",
         RULE_R "      regex: 'a{2,1}'\n      queue: q\n",
         4,
         {"offset 5"}},
        {"regex does not compile, repeat", RULE_R "      regex: 'x**'\n", 4, {"offset 2"}},
        {"regex a list", RULE_R "      regex: [a, b]\n      queue: q\n", 4, {"regex"}},
        {"vip not a bool", RULE_R "      vip: sometimes\n      queue: q\n", 4, {"sometimes"}},
        {"returning not a bool",
         RULE_R "      queue: q\n      returning: twice\n",
         5,
         {"returning", "twice"}},
        {"skill with a space",
         RULE_R "      skills: [billing, \"bad skill\"]\n      queue: q\n",
         4,
         {"bad skill"}},
        {"skill with a colon", RULE_R "      skills: \"vip:eu\"\n      queue: q\n", 4, {"vip:eu"}},
        {"empty skills", RULE_R "      skills: []\n      queue: q\n", 4, {"empty"}},
        /* agents */
        {"heartbeat_timeout under 1s",
         "agents:\n  heartbeat_timeout: 500ms\n",
         2,
         {"heartbeat_timeout"}},
        {"heartbeat_timeout over 1d",
         "agents:\n  heartbeat_timeout: 2d\n",
         2,
         {"heartbeat_timeout"}},
        {"heartbeat_timeout not a duration",
         "agents:\n  heartbeat_timeout: soon\n",
         2,
         {"heartbeat_timeout", "soon"}},
        {"unknown agents key", "agents:\n  heartbeat: 5s\n", 2, {"heartbeat"}},
        {"agents.list not a list", "agents:\n  list:\n    ana: {}\n", 0, {"agents.list"}},
        {"agent id with a space", AGENTS "    - id: \"ana b\"\n" AGENT_REST, 3, {"ana b"}},
        {"agent id with a colon", AGENTS "    - id: \"ana:1\"\n" AGENT_REST, 3, {"ana:1"}},
        {"agent id with a slash", AGENTS "    - id: ana/1\n" AGENT_REST, 3, {"ana/1"}},
        {"agent id of 65 bytes", AGENTS "    - id: " ID65 "\n" AGENT_REST, 3, {ID65}},
        {"empty agent id", AGENTS "    - id: \"\"\n" AGENT_REST, 3, {"agent id"}},
        {"duplicate agent",
         AGENTS "    - id: ana\n" AGENT_REST "    - id: bo\n" AGENT_REST
                "    - id: ana\n" AGENT_REST,
         9,
         {"'ana'"}},
        {"agent without id", AGENTS "    - name: Ana\n" AGENT_REST, 3, {"'id'"}},
        {"agent without capacity",
         AGENTS "    - id: ana\n      queues: [general]\n",
         3,
         {"capacity"}},
        {"agent without queues",
         AGENTS "    - id: ana\n      capacity: {chat: 1}\n",
         3,
         {"queues"}},
        {"agent with empty queues",
         AGENTS "    - id: ana\n      capacity: {chat: 1}\n      queues: []\n",
         5,
         {"empty"}},
        {"agent queue name invalid",
         AGENTS "    - id: ana\n      capacity: {chat: 1}\n      queues: [general, \"a b\"]\n",
         5,
         {"a b"}},
        {"capacity for an unknown channel",
         AGENTS "    - id: ana\n      queues: [general]\n      capacity: {chat: 1, fax: 2}\n",
         5,
         {"fax"}},
        {"capacity for a channel twice",
         AGENTS "    - id: ana\n      queues: [general]\n      capacity:\n        sms: 1\n"
                "        \"*\": 2\n        sms: 3\n",
         8,
         {"sms"}},
        {"capacity over 1000",
         AGENTS "    - id: ana\n      queues: [general]\n      capacity: {chat: 1001}\n",
         5,
         {"1001"}},
        {"capacity negative",
         AGENTS "    - id: ana\n      queues: [general]\n      capacity: {\"*\": -1}\n",
         5,
         {"-1"}},
        {"capacity not a number",
         AGENTS "    - id: ana\n      queues: [general]\n      capacity: {sms: lots}\n",
         5,
         {"lots"}},
        {"capacity not a mapping",
         AGENTS "    - id: ana\n      queues: [general]\n      capacity: 5\n",
         5,
         {"capacity"}},
        {"agent language invalid",
         AGENTS "    - id: ana\n" AGENT_REST "      languages: [vi, \"v i\"]\n",
         6,
         {"v i"}},
        {"agent email invalid",
         AGENTS "    - id: ana\n" AGENT_REST "      email: ana.example.com\n",
         6,
         {"ana.example.com"}},
        {"agent skill invalid",
         AGENTS "    - id: ana\n" AGENT_REST "      skills: [\"bad skill\"]\n",
         6,
         {"bad skill"}},
        {"unknown agent key",
         AGENTS "    - id: ana\n" AGENT_REST "      skillz: [billing]\n",
         6,
         {"skillz"}},
};

/* Does msg start with "conf_path:LINE: " (any line when line is 0)? */
static bool has_prefix(const char *msg, int line)
{
        size_t n = strlen(conf_path);
        const char *p;
        char *end;

        if (strncmp(msg, conf_path, n) != 0 || msg[n] != ':')
                return false;
        p = msg + n + 1;
        long got = strtol(p, &end, 10);
        if (end == p || strncmp(end, ": ", 2) != 0)
                return false;
        return line == 0 ? got > 0 : got == line;
}

static bool names_one_of(const char *msg, const char *const any_of[2])
{
        if (!any_of[0])
                return true;
        for (size_t i = 0; i < 2; i++)
                if (any_of[i] && strstr(msg, any_of[i]))
                        return true;
        return false;
}

static void test_errors(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(error_cases); i++) {
                struct omr_conf_errors errs;
                struct omr_conf *c = load(error_cases[i].yaml, &errs);
                bool found = false;

                if (c) {
                        omr_conf_free(c);
                        fail_msg("%s: accepted\n%s", error_cases[i].name, error_cases[i].yaml);
                }
                for (size_t k = 0; k < errs.n && k < OMR_CONF_MAX_ERRORS; k++)
                        if (has_prefix(errs.msg[k], error_cases[i].line) &&
                            names_one_of(errs.msg[k], error_cases[i].any_of))
                                found = true;
                if (!found) {
                        for (size_t k = 0; k < errs.n && k < OMR_CONF_MAX_ERRORS; k++)
                                fprintf(stderr, "  got: %s\n", errs.msg[k]);
                        fail_msg("%s: no error \"%s:%d: ...%s...\" among %zu", error_cases[i].name,
                                 conf_path, error_cases[i].line,
                                 error_cases[i].any_of[0] ? error_cases[i].any_of[0] : "", errs.n);
                }
        }
}

/* Every problem is reported, not just the first. */
static void test_errors_collected(void **state)
{
        static const char yaml[] = "log:\n"
                                   "  levle: info\n"
                                   "http:\n"
                                   "  max_body: huge\n"
                                   "routing:\n"
                                   "  default_priority: extreme\n";
        struct omr_conf_errors errs;
        bool line2 = false, line4 = false, line6 = false;

        (void)state;
        assert_null(load(yaml, &errs));
        for (size_t k = 0; k < errs.n && k < OMR_CONF_MAX_ERRORS; k++) {
                line2 |= has_prefix(errs.msg[k], 2);
                line4 |= has_prefix(errs.msg[k], 4);
                line6 |= has_prefix(errs.msg[k], 6);
        }
        assert_true(line2);
        assert_true(line4);
        assert_true(line6);
}

/* ---- defaults and value syntax ---- */

static void test_defaults(void **state)
{
        struct omr_conf *c = load_ok("log:\n  level: debug\n");

        (void)state;
        assert_int_equal(c->log_level, LOG_DEBUG);
        assert_string_equal(c->http.host, "127.0.0.1");
        assert_int_equal(c->http.port, 8080);
        assert_int_equal(c->http.max_body, 1024 * 1024);
        assert_int_equal(c->http.max_header, 32 * 1024);
        assert_int_equal(c->http.idle_timeout_s, 30);
        assert_int_equal(c->http.max_connections, 4096);
        assert_int_equal(c->http.drain_timeout_ms, 10000);
        assert_int_equal(c->redis.kind, OMR_REDIS_EMBEDDED);
        assert_null(c->redis.url);
        assert_string_equal(c->redis.prefix, "omr:");
        assert_int_equal(c->redis.command_timeout_ms, 2000);
        assert_int_equal(c->redis.dedup_ttl_s, 7 * 86400);
        assert_int_equal(c->redis.queue_maxlen, 1000000);
        assert_int_equal(c->redis.events_maxlen, 100000);
        assert_int_equal(c->api.timestamp_window_s, 300);
        assert_int_equal(c->api.n_adapters, 0);
        assert_string_equal(c->routing.default_queue, "general");
        assert_int_equal(c->routing.default_priority, OMR_PRIORITY_NORMAL);
        assert_int_equal(c->routing.n_rules, 0);
        assert_null(omr_conf_adapter(c, "shop"));
        omr_conf_free(c);
}

static const struct {
        const char *text;
        int64_t ms;
} durations[] = {
        {"250ms", 250},   {"90s", 90000}, {"5m", 300000}, {"2h", 7200000},
        {"1d", 86400000}, {"7", 7000},    {"0", 0},       {"1500ms", 1500},
};

static void test_durations(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(durations); i++) {
                char yaml[128];
                snprintf(yaml, sizeof(yaml), "http:\n  drain_timeout: %s\n", durations[i].text);
                struct omr_conf *c = load_ok(yaml);
                if (c->http.drain_timeout_ms != durations[i].ms)
                        fail_msg("drain_timeout %s = %lld ms, want %lld", durations[i].text,
                                 (long long)c->http.drain_timeout_ms, (long long)durations[i].ms);
                omr_conf_free(c);
        }
        /* Seconds-valued settings take the same syntax. */
        struct omr_conf *c = load_ok("http:\n  idle_timeout: 2m\nredis:\n  dedup_ttl: 1d\n"
                                     "  command_timeout: 250ms\nconnectors:\n  api:\n"
                                     "    timestamp_window: 90s\n");
        assert_int_equal(c->http.idle_timeout_s, 120);
        assert_int_equal(c->redis.dedup_ttl_s, 86400);
        assert_int_equal(c->redis.command_timeout_ms, 250);
        assert_int_equal(c->api.timestamp_window_s, 90);
        omr_conf_free(c);
}

static const struct {
        const char *text;
        size_t bytes;
} sizes[] = {
        /* max_body is bounded (1KiB..64MiB in daemon/conf.c). */
        {"2048", 2048},      {"4KiB", 4096}, {"1MiB", 1048576},
        {"64MiB", 67108864}, {"2kB", 2000},  {"3MB", 3000000},
};

static void test_sizes(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(sizes); i++) {
                char yaml[128];
                snprintf(yaml, sizeof(yaml), "http:\n  max_body: %s\n", sizes[i].text);
                struct omr_conf *c = load_ok(yaml);
                if (c->http.max_body != sizes[i].bytes)
                        fail_msg("max_body %s = %zu, want %zu", sizes[i].text, c->http.max_body,
                                 sizes[i].bytes);
                omr_conf_free(c);
        }
}

static const struct {
        const char *text, *host;
        int port;
} listens[] = {
        {"127.0.0.1:0", "127.0.0.1", 0},
        {"0.0.0.0:65535", "0.0.0.0", 65535},
        {"[::1]:8080", "::1", 8080},
        {"localhost:9000", "localhost", 9000},
};

static void test_listen(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(listens); i++) {
                char yaml[128];
                snprintf(yaml, sizeof(yaml), "http:\n  listen: \"%s\"\n", listens[i].text);
                struct omr_conf *c = load_ok(yaml);
                if (strcmp(c->http.host, listens[i].host) != 0 || c->http.port != listens[i].port)
                        fail_msg("listen %s = host %s port %d", listens[i].text, c->http.host,
                                 c->http.port);
                omr_conf_free(c);
        }
}

static const struct {
        const char *url;
        enum omr_redis_kind kind;
        const char *host; /* or unix path */
        int port, db;
} redis_urls[] = {
        {"redis://h:6380/3", OMR_REDIS_TCP, "h", 6380, 3},
        {"redis://127.0.0.1:6379/0", OMR_REDIS_TCP, "127.0.0.1", 6379, 0},
        {"redis://redis.internal", OMR_REDIS_TCP, "redis.internal", 6379, 0},
        {"unix:///tmp/r.sock?db=2", OMR_REDIS_UNIX, "/tmp/r.sock", 0, 2},
        {"unix:///run/redis/redis.sock", OMR_REDIS_UNIX, "/run/redis/redis.sock", 0, 0},
};

static void test_redis_url(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(redis_urls); i++) {
                char yaml[160];
                snprintf(yaml, sizeof(yaml), "redis:\n  url: \"%s\"\n", redis_urls[i].url);
                struct omr_conf *c = load_ok(yaml);
                const struct omr_conf_redis *r = &c->redis;

                assert_string_equal(r->url, redis_urls[i].url);
                if (r->kind != redis_urls[i].kind || r->db != redis_urls[i].db)
                        fail_msg("%s: kind %d db %d", redis_urls[i].url, (int)r->kind, r->db);
                if (r->kind == OMR_REDIS_TCP) {
                        assert_non_null(r->host);
                        if (strcmp(r->host, redis_urls[i].host) != 0 ||
                            r->port != redis_urls[i].port)
                                fail_msg("%s: host %s port %d", redis_urls[i].url, r->host,
                                         r->port);
                } else {
                        assert_non_null(r->unix_path);
                        assert_string_equal(r->unix_path, redis_urls[i].host);
                }
                omr_conf_free(c);
        }
}

/* ---- secrets ---- */

static void test_secrets(void **state)
{
        static const char yaml[] = "connectors:\n"
                                   "  api:\n"
                                   "    adapters:\n"
                                   "      - name: shop\n"
                                   "        secret_file: shop.secret\n"
                                   "        require_timestamp: true\n"
                                   "      - name: market\n"
                                   "        secret_file: market.secret\n"
                                   "      - name: raw_1.x-y\n"
                                   "        secret_file: raw.secret\n";
        struct omr_conf *c;
        const struct omr_conf_adapter *a;

        (void)state;
        c = load_ok(yaml);
        assert_int_equal(c->api.n_adapters, 3);

        a = omr_conf_adapter(c, "shop");
        assert_non_null(a);
        assert_string_equal(a->name, "shop");
        assert_int_equal(a->secret_len, 6);
        assert_memory_equal(a->secret, "s3cret", 6);
        assert_true(a->require_timestamp);
        assert_int_equal(a->line, 4);

        a = omr_conf_adapter(c, "market");
        assert_non_null(a);
        assert_int_equal(a->secret_len, 8); /* trailing \r\n dropped */
        assert_memory_equal(a->secret, "m-secret", 8);
        assert_false(a->require_timestamp);
        assert_int_equal(a->line, 7);

        a = omr_conf_adapter(c, "raw_1.x-y");
        assert_non_null(a);
        assert_int_equal(a->secret_len, 10);
        assert_memory_equal(a->secret, "no newline", 10);

        assert_null(omr_conf_adapter(c, "nope"));
        assert_null(omr_conf_adapter(c, "SHOP"));
        assert_null(omr_conf_adapter(c, ""));
        omr_conf_free(c);
}

/* An absolute secret_file path is used as is. */
static void test_secret_absolute(void **state)
{
        char yaml[512];

        (void)state;
        snprintf(yaml, sizeof(yaml),
                 "connectors:\n  api:\n    adapters:\n      - name: shop\n"
                 "        secret_file: %s/market.secret\n",
                 tmpdir);
        struct omr_conf *c = load_ok(yaml);
        assert_int_equal(c->api.adapters[0].secret_len, 8);
        omr_conf_free(c);
}

/* Under systemd LoadCredential=, relative names come from $CREDENTIALS_DIRECTORY. */
static void test_secret_credentials_directory(void **state)
{
        char creds[] = "/tmp/omr-creds-XXXXXX";
        static const char yaml[] = "connectors:\n  api:\n    adapters:\n      - name: shop\n"
                                   "        secret_file: shop.secret\n";

        (void)state;
        assert_non_null(mkdtemp(creds));
        write_file(creds, "shop.secret", "from-credentials\n");
        setenv("CREDENTIALS_DIRECTORY", creds, 1);
        struct omr_conf_errors errs;
        struct omr_conf *c = load(yaml, &errs);
        unsetenv("CREDENTIALS_DIRECTORY");
        remove_dir(creds);
        if (!c)
                fail_msg("rejected: %s", errs.n ? errs.msg[0] : "?");
        assert_int_equal(c->api.adapters[0].secret_len, strlen("from-credentials"));
        assert_memory_equal(c->api.adapters[0].secret, "from-credentials",
                            c->api.adapters[0].secret_len);
        omr_conf_free(c);
}

/* ---- rules ---- */

static void test_rules_parsed(void **state)
{
        static const char yaml[] = "routing:\n"
                                   "  default_queue: inbox\n"
                                   "  default_priority: low\n"
                                   "  rules:\n"
                                   "    - name: one\n"
                                   "      keywords: [\"REFUND\", \"Ho\xc3\x80n Ti\xe1\xbb\x80n\"]\n"
                                   "      channel: [email, chat, sms, social, api]\n"
                                   "      sender: [\"+44*\", \"vip-?\"]\n"
                                   "      adapter: [\"api:shop\", twilio]\n"
                                   "      queue: q.one\n"
                                   "      priority: urgent\n"
                                   "    - name: two\n"
                                   "      queue: q_two\n";
        struct omr_conf *c = load_ok(yaml);
        const struct omr_rule *r = c->routing.rules;

        (void)state;
        assert_string_equal(c->routing.default_queue, "inbox");
        assert_int_equal(c->routing.default_priority, OMR_PRIORITY_LOW);
        assert_int_equal(c->routing.n_rules, 2);
        assert_string_equal(r[0].name, "one");
        assert_int_equal(r[0].line, 5);
        assert_int_equal(r[0].n_keywords, 2);
        assert_string_equal(r[0].keywords[0], "refund"); /* stored folded */
        assert_string_equal(r[0].keywords[1], "ho\xc3\xa0n ti\xe1\xbb\x81n");
        assert_int_equal(r[0].channels, (1u << OMR_CHANNEL__COUNT) - 1);
        assert_int_equal(r[0].n_senders, 2);
        assert_string_equal(r[0].senders[1], "vip-?");
        assert_int_equal(r[0].n_adapters, 2);
        assert_string_equal(r[0].adapters[1], "twilio");
        assert_string_equal(r[0].queue, "q.one");
        assert_true(r[0].has_priority);
        assert_int_equal(r[0].priority, OMR_PRIORITY_URGENT);
        assert_string_equal(r[1].name, "two");
        assert_int_equal(r[1].line, 12);
        assert_int_equal(r[1].channels, 0);
        assert_int_equal(r[1].n_keywords, 0);
        assert_int_equal(r[1].n_senders, 0);
        assert_int_equal(r[1].n_adapters, 0);
        assert_false(r[1].has_priority);
        omr_conf_free(c);
}

/* ---- SMS accounts, agent tokens, outbound ---- */

static void test_sms_defaults(void **state)
{
        struct omr_conf *c = load_ok("log:\n  level: info\n");

        (void)state;
        assert_int_equal(c->outbound.give_up_after_ms, 600000); /* 10m */
        assert_int_equal(c->outbound.request_timeout_ms, 15000);
        assert_null(c->outbound.consumer);
        assert_int_equal(c->n_twilio, 0);
        assert_int_equal(c->n_vonage, 0);
        assert_int_equal(c->n_tokens, 0);
        assert_null(omr_conf_twilio(c, "main"));
        assert_null(omr_conf_vonage(c, "main"));
        assert_null(omr_conf_token_match(c, "0123456789abcdef"));
        omr_conf_free(c);

        /* An account without api_base gets the provider's. */
        c = load_ok(TWILIO_ACCOUNTS TWILIO_MAIN("\"https://support.example.com\"")
                            VONAGE_ACCOUNTS_AFTER_TWILIO VONAGE_MAIN);
        assert_int_equal(c->n_twilio, 1);
        assert_string_equal(c->twilio[0].api_base, "https://api.twilio.com");
        assert_int_equal(c->n_vonage, 1);
        assert_string_equal(c->vonage[0].api_base, "https://rest.nexmo.com");
        assert_null(c->vonage[0].signature_secret);
        assert_false(c->vonage[0].require_signature); /* no secret: unsigned */
        assert_int_equal(c->vonage[0].signature_method, OMR_VSIG_MD5HASH);
        omr_conf_free(c);
}

static void test_twilio_accounts(void **state)
{
        static const char yaml[] =
                TWILIO_ACCOUNTS "      - name: main\n"
                                "        account_sid: AC0123\n"
                                "        auth_token_file: twilio.token\n"
                                "        public_url: \"https://support.example.com/\"\n"
                                "        from: \"+15005550006\"\n"
                                "      - name: eu.backup-2\n"
                                "        account_sid: AC4567\n"
                                "        auth_token_file: twilio.token\n"
                                "        public_url: \"http://sms.example.net:8080/prefix//\"\n"
                                "        api_base: \"http://127.0.0.1:9000/\"\n"
                                "        from: \"+447700900000\"\n";
        struct omr_conf *c = load_ok(yaml);
        const struct omr_conf_twilio_account *a;

        (void)state;
        assert_int_equal(c->n_twilio, 2);
        a = omr_conf_twilio(c, "main");
        assert_ptr_equal(a, &c->twilio[0]);
        assert_int_equal(a->line, 4);
        assert_string_equal(a->account_sid, "AC0123");
        assert_string_equal(a->auth_token, "twilio-auth-token");           /* newline dropped */
        assert_string_equal(a->public_url, "https://support.example.com"); /* slash stripped */
        assert_string_equal(a->api_base, "https://api.twilio.com");
        assert_string_equal(a->from, "+15005550006");

        a = omr_conf_twilio(c, "eu.backup-2");
        assert_ptr_equal(a, &c->twilio[1]);
        assert_int_equal(a->line, 9);
        assert_string_equal(a->public_url, "http://sms.example.net:8080/prefix");
        assert_string_equal(a->api_base, "http://127.0.0.1:9000");

        assert_null(omr_conf_twilio(c, "Main"));
        assert_null(omr_conf_twilio(c, NULL));
        omr_conf_free(c);

        /* Without a trailing slash the URL is kept as written. */
        c = load_ok(TWILIO_ACCOUNTS TWILIO_MAIN("\"https://support.example.com:8443/sms\""));
        assert_string_equal(c->twilio[0].public_url, "https://support.example.com:8443/sms");
        omr_conf_free(c);
}

static void test_social_accounts(void **state)
{
        static const char yaml[] = "connectors:\n"
                                   "  mastodon:\n"
                                   "    accounts:\n"
                                   "      - name: brand\n"
                                   "        base_url: \"https://m.example/\"\n"
                                   "        token_file: twilio.token\n"
                                   "        handle: \"@brand\"\n"
                                   "  x:\n"
                                   "    accounts:\n"
                                   "      - name: brand\n"
                                   "        base_url: https://api.x.com\n"
                                   "        token_file: twilio.token\n"
                                   "        user_id: \"2244994945\"\n"
                                   "        poll_interval: 2m\n"
                                   "        lease: 10s\n"
                                   "        page_size: 20\n";
        struct omr_conf *c = load_ok(yaml);
        (void)state;
        const struct omr_conf_social_account *m = omr_conf_mastodon(c, "brand");
        assert_non_null(m);
        assert_string_equal(m->base_url, "https://m.example");
        assert_string_equal(m->token, "twilio-auth-token");
        assert_string_equal(m->handle, "brand");
        assert_null(m->user_id);
        assert_int_equal(m->poll_ms, 60000);
        assert_int_equal(m->lease_ms, 30000);
        assert_int_equal(m->page_size, 40);
        const struct omr_conf_social_account *x = omr_conf_x(c, "brand");
        assert_non_null(x);
        assert_string_equal(x->user_id, "2244994945");
        assert_string_equal(x->handle, "");
        assert_int_equal(x->poll_ms, 120000);
        assert_int_equal(x->lease_ms, 10000);
        assert_int_equal(x->page_size, 20);
        assert_null(omr_conf_x(c, "other"));
        omr_conf_free(c);
}

static void test_vonage_accounts(void **state)
{
        static const struct {
                const char *method;
                enum omr_vonage_sig want;
        } methods[] = {
                {"md5hash", OMR_VSIG_MD5HASH}, {"md5", OMR_VSIG_MD5},       {"sha1", OMR_VSIG_SHA1},
                {"sha256", OMR_VSIG_SHA256},   {"sha512", OMR_VSIG_SHA512},
        };
        struct omr_conf *c;

        (void)state;
        for (size_t i = 0; i < N(methods); i++) {
                char yaml[512];
                snprintf(yaml, sizeof(yaml),
                         VONAGE_ACCOUNTS VONAGE_MAIN "        signature_secret_file: vonage.sig\n"
                                                     "        signature_method: %s\n",
                         methods[i].method);
                c = load_ok(yaml);
                const struct omr_conf_vonage_account *a = omr_conf_vonage(c, "main");
                assert_non_null(a);
                assert_int_equal(a->line, 4);
                assert_string_equal(a->api_key, "abcd1234");
                assert_string_equal(a->api_secret, "vonage-api-secret");
                assert_string_equal(a->signature_secret, "vonage-signature-secret");
                assert_string_equal(a->from, "447700900000");
                if (a->signature_method != methods[i].want)
                        fail_msg("signature_method %s = %d", methods[i].method,
                                 (int)a->signature_method);
                assert_true(a->require_signature); /* default with a secret */
                omr_conf_free(c);
        }

        /* A secret may be configured without enforcing it (migration). */
        c = load_ok(VONAGE_ACCOUNTS VONAGE_MAIN "        signature_secret_file: vonage.sig\n"
                                                "        require_signature: false\n"
                                                "        api_base: \"https://rest.example/\"\n");
        assert_false(c->vonage[0].require_signature);
        assert_string_equal(c->vonage[0].api_base, "https://rest.example");
        omr_conf_free(c);

        /* Explicitly unsigned is fine. */
        c = load_ok(VONAGE_ACCOUNTS VONAGE_MAIN "        require_signature: false\n");
        assert_false(c->vonage[0].require_signature);
        omr_conf_free(c);
}

/* require_signature: true with nothing to check signatures against. */
static void test_vonage_require_without_secret(void **state)
{
        static const char yaml[] = TWILIO_ACCOUNTS TWILIO_MAIN("\"https://support.example.com\"")
                VONAGE_ACCOUNTS_AFTER_TWILIO "      - name: other\n"
                                             "        api_key: abcd1234\n"
                                             "        api_secret_file: vonage.secret\n"
                                             "        signature_secret_file: vonage.sig\n"
                                             "        from: \"447700900000\"\n"
                                             "      - name: main\n"
                                             "        api_key: abcd1234\n"
                                             "        api_secret_file: vonage.secret\n"
                                             "        require_signature: true\n"
                                             "        from: \"447700900000\"\n";
        struct omr_conf_errors errs;
        struct omr_conf *c = load(yaml, &errs);
        bool found = false;

        (void)state;
        if (c) {
                omr_conf_free(c);
                fail_msg("accepted require_signature without signature_secret_file");
        }
        /* The account is on line 16. The message names the account and the
         * missing key, and that line (today in its text: the prefix says 0). */
        for (size_t k = 0; k < errs.n && k < OMR_CONF_MAX_ERRORS; k++) {
                const char *m = errs.msg[k];
                if (strncmp(m, conf_path, strlen(conf_path)) == 0 && strstr(m, "'main'") &&
                    strstr(m, "signature_secret_file") &&
                    (has_prefix(m, 16) || strstr(m, "line 16")))
                        found = true;
        }
        if (!found) {
                for (size_t k = 0; k < errs.n && k < OMR_CONF_MAX_ERRORS; k++)
                        fprintf(stderr, "  got: %s\n", errs.msg[k]);
                fail_msg("no error naming account 'main', signature_secret_file and line 16");
        }
        assert_int_equal(errs.n, 1); /* the other accounts are fine */
}

static void test_tokens(void **state)
{
        static const char yaml[] = "api:\n"
                                   "  tokens:\n"
                                   "    - name: helpdesk\n"
                                   "      token_file: agent16.token\n"
                                   "    - name: bot\n"
                                   "      token_file: twilio.token\n";
        struct omr_conf *c = load_ok(yaml);

        (void)state;
        assert_int_equal(c->n_tokens, 2);
        assert_string_equal(c->tokens[0].name, "helpdesk");
        assert_int_equal(c->tokens[0].token_len, 16); /* 16 bytes is enough */
        assert_int_equal(c->tokens[0].line, 3);
        assert_int_equal(c->tokens[1].line, 5);
        assert_string_equal(omr_conf_token_match(c, "0123456789abcdef"), "helpdesk");
        assert_string_equal(omr_conf_token_match(c, "twilio-auth-token"), "bot");
        assert_null(omr_conf_token_match(c, "0123456789abcde"));
        assert_null(omr_conf_token_match(c, "0123456789abcdef\n"));
        assert_null(omr_conf_token_match(c, "0123456789ABCDEF"));
        assert_null(omr_conf_token_match(c, NULL));
        omr_conf_free(c);
}

static void test_outbound(void **state)
{
        static const struct {
                const char *give_up, *timeout;
                int64_t give_up_ms, timeout_ms;
        } cases[] = {
                {"10m", "15s", 600000, 15000},
                {"1h", "100ms", 3600000, 100}, /* lower bound */
                {"90s", "2m", 90000, 120000},  /* upper bound */
                {"1d", "30s", 86400000, 30000},
        };

        (void)state;
        for (size_t i = 0; i < N(cases); i++) {
                char yaml[160];
                snprintf(yaml, sizeof(yaml),
                         "outbound:\n  give_up_after: %s\n  request_timeout: %s\n"
                         "  consumer: \"host-a:8080\"\n",
                         cases[i].give_up, cases[i].timeout);
                struct omr_conf *c = load_ok(yaml);
                if (c->outbound.give_up_after_ms != cases[i].give_up_ms ||
                    c->outbound.request_timeout_ms != cases[i].timeout_ms)
                        fail_msg("give_up_after %s, request_timeout %s = %lld, %lld ms",
                                 cases[i].give_up, cases[i].timeout,
                                 (long long)c->outbound.give_up_after_ms,
                                 (long long)c->outbound.request_timeout_ms);
                assert_string_equal(c->outbound.consumer, "host-a:8080");
                omr_conf_free(c);
        }
}

/* ---- reload ---- */

static const char reload_base[] = "log:\n  level: info\n"
                                  "http:\n  listen: \"127.0.0.1:8080\"\n"
                                  "redis:\n  url: \"redis://127.0.0.1:6379/0\"\n"
                                  "routing:\n  rules:\n    - name: a\n      queue: qa\n";

static const struct {
        const char *name, *yaml;
        const char *blocker; /* NULL: may replace in place; else a word of the answer */
} reloads[] = {
        {"same", reload_base, NULL},
        {"rules differ",
         "log:\n  level: info\nhttp:\n  listen: \"127.0.0.1:8080\"\n"
         "redis:\n  url: \"redis://127.0.0.1:6379/0\"\n"
         "routing:\n  default_queue: other\n  rules:\n    - name: b\n      keywords: [x]\n"
         "      queue: qb\n",
         NULL},
        {"log level differs",
         "log:\n  level: debug\nhttp:\n  listen: \"127.0.0.1:8080\"\n"
         "redis:\n  url: \"redis://127.0.0.1:6379/0\"\n"
         "routing:\n  rules:\n    - name: a\n      queue: qa\n",
         NULL},
        {"adapters differ",
         "log:\n  level: info\nhttp:\n  listen: \"127.0.0.1:8080\"\n"
         "redis:\n  url: \"redis://127.0.0.1:6379/0\"\n"
         "connectors:\n  api:\n    adapters:\n      - name: shop\n        secret_file: "
         "shop.secret\n"
         "routing:\n  rules:\n    - name: a\n      queue: qa\n",
         NULL},
        {"listen port differs",
         "log:\n  level: info\nhttp:\n  listen: \"127.0.0.1:8081\"\n"
         "redis:\n  url: \"redis://127.0.0.1:6379/0\"\n"
         "routing:\n  rules:\n    - name: a\n      queue: qa\n",
         "listen"},
        {"listen host differs",
         "log:\n  level: info\nhttp:\n  listen: \"0.0.0.0:8080\"\n"
         "redis:\n  url: \"redis://127.0.0.1:6379/0\"\n"
         "routing:\n  rules:\n    - name: a\n      queue: qa\n",
         "listen"},
        {"redis url differs",
         "log:\n  level: info\nhttp:\n  listen: \"127.0.0.1:8080\"\n"
         "redis:\n  url: \"redis://127.0.0.1:6379/1\"\n"
         "routing:\n  rules:\n    - name: a\n      queue: qa\n",
         "url"},
        {"redis url removed (embedded)",
         "log:\n  level: info\nhttp:\n  listen: \"127.0.0.1:8080\"\n"
         "routing:\n  rules:\n    - name: a\n      queue: qa\n",
         "url"},
};

static void test_reload_blocker(void **state)
{
        struct omr_conf *cur = load_ok(reload_base);

        (void)state;
        for (size_t i = 0; i < N(reloads); i++) {
                struct omr_conf *next = load_ok(reloads[i].yaml);
                const char *b = omr_conf_reload_blocker(cur, next);

                if (!reloads[i].blocker && b)
                        fail_msg("%s: refused because of \"%s\"", reloads[i].name, b);
                if (reloads[i].blocker && (!b || !strstr(b, reloads[i].blocker)))
                        fail_msg("%s: blocker \"%s\", want one naming \"%s\"", reloads[i].name,
                                 b ? b : "(null)", reloads[i].blocker);
                omr_conf_free(next);
        }
        omr_conf_free(cur);
}

/* ---- queue names ---- */

static void test_valid_queue_name(void **state)
{
        char max[66];
        static const struct {
                const char *name;
                bool want;
        } names[] = {
                {"general", true},   {"a.b-c_D9", true}, {"q", true},    {"", false},
                {"a b", false},      {"a/b", false},     {"a:b", false}, {"a{b}", false},
                {"\xc3\xa9", false}, {"tab\t", false},
        };

        (void)state;
        for (size_t i = 0; i < N(names); i++)
                if (omr_conf_valid_queue_name(names[i].name) != names[i].want)
                        fail_msg("valid_queue_name(\"%s\") != %d", names[i].name, names[i].want);
        memset(max, 'q', 64);
        max[64] = '\0';
        assert_true(omr_conf_valid_queue_name(max));
        max[64] = 'q';
        max[65] = '\0';
        assert_false(omr_conf_valid_queue_name(max));
}

/* ---- issue 4: queues, VIP customers, rule conditions, agents ---- */

/* One error at `line` whose message names both `a` and `b`. */
static void expect_error(const char *yaml, int line, const char *a, const char *b)
{
        struct omr_conf_errors errs;
        struct omr_conf *c = load(yaml, &errs);

        if (c) {
                omr_conf_free(c);
                fail_msg("accepted:\n%s", yaml);
        }
        for (size_t k = 0; k < errs.n && k < OMR_CONF_MAX_ERRORS; k++)
                if (has_prefix(errs.msg[k], line) && strstr(errs.msg[k], a) &&
                    strstr(errs.msg[k], b))
                        return;
        for (size_t k = 0; k < errs.n && k < OMR_CONF_MAX_ERRORS; k++)
                fprintf(stderr, "  got: %s\n", errs.msg[k]);
        fail_msg("no error \"%s:%d: ...%s...%s...\"", conf_path, line, a, b);
}

static void assert_queue_defaults(const struct omr_conf_queue *q)
{
        assert_non_null(q);
        assert_int_equal(q->mode, OMR_QUEUE_PULL);
        assert_int_equal(q->strategy, OMR_STRATEGY_LEAST_BUSY);
        assert_true(q->sticky);
        assert_true(q->match_language);
        assert_int_equal(q->offer_timeout_ms, 30000);
        assert_int_equal(q->claim_timeout_ms, 300000);
}

static void test_queues_parsed(void **state)
{
        static const char yaml[] = "routing:\n"
                                   "  default_queue: general\n"
                                   "  queues:\n"
                                   "    sales:\n"
                                   "      mode: push\n"
                                   "      strategy: round_robin\n"
                                   "      sticky: false\n"
                                   "      match_language: no\n"
                                   "      offer_timeout: 0\n"
                                   "      claim_timeout: 1s\n"
                                   "    support:\n"
                                   "      mode: push\n"
                                   "      strategy: longest_idle\n"
                                   "      offer_timeout: 45s\n"
                                   "    general:\n"
                                   "    backoffice:\n"
                                   "      mode: pull\n"
                                   "      strategy: least_busy\n"
                                   "      claim_timeout: 7d\n"
                                   "      offer_timeout: 7d\n";
        struct omr_conf *c = load_ok(yaml);
        const struct omr_conf_queue *q = c->routing.queues;

        (void)state;
        assert_int_equal(c->routing.n_queues, 4);
        assert_string_equal(q[0].name, "sales");
        assert_int_equal(q[0].line, 4);
        assert_int_equal(q[0].mode, OMR_QUEUE_PUSH);
        assert_int_equal(q[0].strategy, OMR_STRATEGY_ROUND_ROBIN);
        assert_false(q[0].sticky);
        assert_false(q[0].match_language);
        assert_int_equal(q[0].offer_timeout_ms, 0); /* 0: assign without an offer */
        assert_int_equal(q[0].claim_timeout_ms, 1000);

        assert_string_equal(q[1].name, "support");
        assert_int_equal(q[1].line, 11);
        assert_int_equal(q[1].mode, OMR_QUEUE_PUSH);
        assert_int_equal(q[1].strategy, OMR_STRATEGY_LONGEST_IDLE);
        assert_true(q[1].sticky);
        assert_true(q[1].match_language);
        assert_int_equal(q[1].offer_timeout_ms, 45000);
        assert_int_equal(q[1].claim_timeout_ms, 300000);

        /* `general:` alone: declared, all defaults. */
        assert_string_equal(q[2].name, "general");
        assert_int_equal(q[2].line, 15);
        assert_queue_defaults(&q[2]);

        assert_string_equal(q[3].name, "backoffice");
        assert_int_equal(q[3].mode, OMR_QUEUE_PULL);
        assert_int_equal(q[3].strategy, OMR_STRATEGY_LEAST_BUSY);
        assert_int_equal(q[3].claim_timeout_ms, 7 * 86400000LL);
        assert_int_equal(q[3].offer_timeout_ms, 7 * 86400000LL);

        /* Lookups: the declared entry itself; the defaults for any other name. */
        assert_ptr_equal(omr_conf_queue(c, "sales"), &q[0]);
        assert_ptr_equal(omr_conf_queue(c, "backoffice"), &q[3]);
        assert_queue_defaults(omr_conf_queue(c, "nosuch"));
        assert_queue_defaults(omr_conf_queue(c, "Sales")); /* names are case-sensitive */
        omr_conf_free(c);
}

/* No routing.queues at all: every queue, the default one included, is a
 * pull queue with the defaults. */
static void test_queue_defaults_undeclared(void **state)
{
        struct omr_conf *c = load_ok("routing:\n  default_queue: inbox\n");

        (void)state;
        assert_int_equal(c->routing.n_queues, 0);
        assert_queue_defaults(omr_conf_queue(c, "inbox"));
        assert_queue_defaults(omr_conf_queue(c, "billing"));
        /* The defaults are not disturbed by a config that declares otherwise. */
        struct omr_conf *d = load_ok("routing:\n  queues:\n    billing:\n      mode: push\n"
                                     "      strategy: round_robin\n      claim_timeout: 2s\n");
        assert_int_equal(omr_conf_queue(d, "billing")->mode, OMR_QUEUE_PUSH);
        assert_queue_defaults(omr_conf_queue(c, "billing"));
        assert_queue_defaults(omr_conf_queue(d, "inbox"));
        omr_conf_free(d);
        omr_conf_free(c);
}

static void test_strategy_names(void **state)
{
        static const char *const names[] = {"least_busy", "round_robin", "longest_idle"};
        static const enum omr_strategy want[] = {OMR_STRATEGY_LEAST_BUSY, OMR_STRATEGY_ROUND_ROBIN,
                                                 OMR_STRATEGY_LONGEST_IDLE};

        (void)state;
        for (size_t i = 0; i < N(names); i++) {
                char yaml[128];
                snprintf(yaml, sizeof(yaml), "routing:\n  queues:\n    q:\n      strategy: %s\n",
                         names[i]);
                struct omr_conf *c = load_ok(yaml);
                assert_int_equal(omr_conf_queue(c, "q")->strategy, want[i]);
                assert_string_equal(omr_strategy_name(want[i]), names[i]);
                omr_conf_free(c);
        }
        /* Strategy names are exact. */
        expect_error("routing:\n  queues:\n    q:\n      strategy: Round_Robin\n", 4, "strategy",
                     "Round_Robin");
}

static void test_duplicate_queue_and_agent(void **state)
{
        (void)state;
        expect_error("routing:\n  queues:\n    general:\n      mode: push\n    general:\n", 5,
                     "'general'", "twice");
        /* The second definition is reported, naming the first one's line. */
        expect_error("agents:\n  list:\n    - id: ana\n" AGENT_REST "    - id: ana\n" AGENT_REST, 6,
                     "'ana'", "line 3");
}

static void test_vip_customers(void **state)
{
        static const char yaml[] = "routing:\n"
                                   "  customers:\n"
                                   "    vip: [\"+4477*\", \"vip-*\", ceo@example.com]\n";
        struct omr_conf *c = load_ok(yaml);
        static const struct {
                const char *id, *handle;
                bool want;
        } cases[] = {
                {"+447700900123", NULL, true},       /* id glob */
                {"cust-1", "+447700900123", true},   /* handle glob */
                {"vip-42", "+15550001111", true},    /* id glob, other handle */
                {"cust-1", "ceo@example.com", true}, /* exact entry */
                {"cust-1", "+15550001111", false},   /* neither */
                {"x+447700900123", NULL, false},     /* globs are anchored */
                {"cust-1", "ceo@example.com.evil", false},
                {NULL, NULL, false},
                {NULL, "vip-7", true},
        };

        (void)state;
        assert_int_equal(c->routing.n_vip, 3);
        for (size_t i = 0; i < N(cases); i++)
                if (omr_conf_is_vip(c, cases[i].id, cases[i].handle) != cases[i].want)
                        fail_msg("is_vip(%s, %s) != %d", cases[i].id ? cases[i].id : "NULL",
                                 cases[i].handle ? cases[i].handle : "NULL", cases[i].want);
        omr_conf_free(c);

        /* A lone value is a list of one; no list: nobody is a VIP. */
        c = load_ok("routing:\n  customers:\n    vip: \"+4477*\"\n");
        assert_int_equal(c->routing.n_vip, 1);
        assert_true(omr_conf_is_vip(c, "+447700900123", NULL));
        omr_conf_free(c);
        c = load_ok("log:\n  level: info\n");
        assert_int_equal(c->routing.n_vip, 0);
        assert_false(omr_conf_is_vip(c, "+447700900123", "vip-1"));
        omr_conf_free(c);
}

static void test_rule_conditions_parsed(void **state)
{
        static const char yaml[] = "routing:\n"
                                   "  rules:\n"
                                   "    - name: vip\n"
                                   "      vip: true\n"
                                   "      skills: [VIP, Billing.EU, tier_2]\n"
                                   "      queue: vip\n"
                                   "    - name: regulars\n"
                                   "      vip: false\n"
                                   "      returning: yes\n"
                                   "      regex: 'order\\s*#?\\d{5,}'\n"
                                   "      skills: Orders\n"
                                   "      queue: orders\n"
                                   "    - name: plain\n"
                                   "      queue: general\n";
        struct omr_conf *c = load_ok(yaml);
        const struct omr_rule *r = c->routing.rules;

        (void)state;
        assert_int_equal(c->routing.n_rules, 3);
        assert_int_equal(r[0].vip, 1);
        assert_int_equal(r[0].returning, -1);
        assert_null(r[0].regex);
        /* Skills are compared case-insensitively: stored lower-case. */
        assert_int_equal(r[0].n_skills, 3);
        assert_string_equal(r[0].skills[0], "vip");
        assert_string_equal(r[0].skills[1], "billing.eu");
        assert_string_equal(r[0].skills[2], "tier_2");

        assert_int_equal(r[1].vip, 0);
        assert_int_equal(r[1].returning, 1);
        assert_non_null(r[1].regex);
        assert_string_equal(r[1].regex_src, "order\\s*#?\\d{5,}");
        assert_int_equal(r[1].n_skills, 1);
        assert_string_equal(r[1].skills[0], "orders");

        /* Absent conditions match anything. */
        assert_int_equal(r[2].vip, -1);
        assert_int_equal(r[2].returning, -1);
        assert_null(r[2].regex);
        assert_int_equal(r[2].n_skills, 0);

        assert_true(c->routing.uses_returning);
        omr_conf_free(c);

        /* returning: false also needs to know; no returning condition does not. */
        c = load_ok("routing:\n  rules:\n    - returning: false\n      queue: new\n");
        assert_true(c->routing.uses_returning);
        assert_int_equal(c->routing.rules[0].returning, 0);
        omr_conf_free(c);
        c = load_ok("routing:\n  rules:\n    - vip: true\n      queue: vip\n");
        assert_false(c->routing.uses_returning);
        omr_conf_free(c);
}

/* The compile error names the pattern and where in it PCRE2 stopped. */
static void test_rule_regex_error(void **state)
{
        (void)state;
        expect_error("routing:\n  rules:\n    - name: r\n      queue: q\n"
                     "      regex: 'order #(\\d{5}'\n",
                     5, "order #(\\d{5}", "offset 13");
        expect_error("routing:\n  rules:\n    - name: r\n      queue: q\n      regex: 'a{2,1}'\n",
                     5, "a{2,1}", "offset 5");
}

static void test_agents_parsed(void **state)
{
        static const char yaml[] = "agents:\n"
                                   "  heartbeat_timeout: 90s\n"
                                   "  list:\n"
                                   "    - id: ana\n"
                                   "      name: Ana Nguy\xe1\xbb\x85n\n"
                                   "      email: ana@example.com\n"
                                   "      languages: [vi, en-GB, zh-Hant]\n"
                                   "      skills: [Billing, VIP]\n"
                                   "      teams: [Tier1]\n"
                                   "      queues: [general, billing]\n"
                                   "      capacity:\n"
                                   "        sms: 5\n"
                                   "        chat: 3\n"
                                   "        \"*\": 1\n"
                                   "    - id: bo.b@team-2\n"
                                   "      capacity: {email: 0, api: 1000}\n"
                                   "      queues: general\n";
        struct omr_conf *c = load_ok(yaml);
        const struct omr_conf_agent *a = c->agents.list;

        (void)state;
        assert_int_equal(c->agents.heartbeat_timeout_ms, 90000);
        assert_int_equal(c->agents.n, 2);

        assert_string_equal(a[0].id, "ana");
        assert_int_equal(a[0].line, 4);
        assert_string_equal(a[0].name, "Ana Nguy\xe1\xbb\x85n");
        assert_string_equal(a[0].email, "ana@example.com");
        assert_int_equal(a[0].n_languages, 3);
        assert_string_equal(a[0].languages[1], "en-GB");
        assert_string_equal(a[0].languages[2], "zh-Hant");
        assert_int_equal(a[0].n_skills, 2);
        assert_string_equal(a[0].skills[0], "billing");
        assert_string_equal(a[0].skills[1], "vip");
        assert_int_equal(a[0].n_teams, 1);
        assert_string_equal(a[0].teams[0], "tier1");
        assert_int_equal(a[0].n_queues, 2);
        assert_string_equal(a[0].queues[0], "general");
        assert_string_equal(a[0].queues[1], "billing");
        assert_int_equal(a[0].n_capacity, 3);
        assert_string_equal(a[0].capacity[0].channel, "sms");
        assert_int_equal(a[0].capacity[0].max, 5);
        assert_string_equal(a[0].capacity[1].channel, "chat");
        assert_int_equal(a[0].capacity[1].max, 3);
        assert_string_equal(a[0].capacity[2].channel, "*"); /* every other channel */
        assert_int_equal(a[0].capacity[2].max, 1);

        /* The bounds 0 and 1000; a lone queue is a list of one. */
        assert_string_equal(a[1].id, "bo.b@team-2");
        assert_int_equal(a[1].line, 15);
        assert_int_equal(a[1].n_capacity, 2);
        assert_string_equal(a[1].capacity[0].channel, "email");
        assert_int_equal(a[1].capacity[0].max, 0);
        assert_string_equal(a[1].capacity[1].channel, "api");
        assert_int_equal(a[1].capacity[1].max, 1000);
        assert_int_equal(a[1].n_queues, 1);
        assert_string_equal(a[1].queues[0], "general");
        assert_int_equal(a[1].n_languages, 0); /* serves any language */
        assert_int_equal(a[1].n_skills, 0);

        assert_ptr_equal(omr_conf_agent(c, "ana"), &a[0]);
        assert_ptr_equal(omr_conf_agent(c, "bo.b@team-2"), &a[1]);
        assert_null(omr_conf_agent(c, "Ana"));
        assert_null(omr_conf_agent(c, "nobody"));
        omr_conf_free(c);

        /* Every channel name is a capacity key. */
        c = load_ok("agents:\n  list:\n    - id: x\n      queues: [q]\n"
                    "      capacity: {email: 1, chat: 2, sms: 3, social: 4, api: 5, \"*\": 6}\n");
        assert_int_equal(c->agents.list[0].n_capacity, 6);
        assert_int_equal(c->agents.list[0].capacity[5].max, 6);
        omr_conf_free(c);
}

static void test_agents_defaults(void **state)
{
        struct omr_conf *c = load_ok("log:\n  level: info\n");

        (void)state;
        assert_int_equal(c->agents.heartbeat_timeout_ms, 60000);
        assert_int_equal(c->agents.n, 0);
        assert_null(omr_conf_agent(c, "ana"));
        omr_conf_free(c);
        /* The bounds of heartbeat_timeout. */
        c = load_ok("agents:\n  heartbeat_timeout: 1s\n");
        assert_int_equal(c->agents.heartbeat_timeout_ms, 1000);
        omr_conf_free(c);
        c = load_ok("agents:\n  heartbeat_timeout: 1d\n");
        assert_int_equal(c->agents.heartbeat_timeout_ms, 86400000);
        omr_conf_free(c);
}

static void test_valid_agent_id(void **state)
{
        char max[66];
        static const struct {
                const char *id;
                bool want;
        } ids[] = {
                {"ana", true},       {"a.b-c_D9@x", true}, {"ana@example.com", true},
                {"7", true},         {"", false},          {"a b", false},
                {"a:b", false},      {"a/b", false},       {"a{b}", false},
                {"\xc3\xa9", false}, {"tab\t", false},     {"a*", false},
        };

        (void)state;
        for (size_t i = 0; i < N(ids); i++)
                if (omr_conf_valid_agent_id(ids[i].id) != ids[i].want)
                        fail_msg("valid_agent_id(\"%s\") != %d", ids[i].id, ids[i].want);
        memset(max, 'a', 64);
        max[64] = '\0';
        assert_true(omr_conf_valid_agent_id(max));
        max[64] = 'a';
        max[65] = '\0';
        assert_false(omr_conf_valid_agent_id(max));
}

/* Calendars and the rules that name them; notify targets with defaults. */
static void test_calendars_and_notify_parsed(void **state)
{
        (void)state;
        struct omr_conf *c = load_ok(
                "routing:\n  rules:\n    - name: night\n      outside_business_hours: office\n"
                "      queue: night\n"
                "calendars:\n  office:\n    timezone: Asia/Bangkok\n"
                "    hours: {mon: [\"08:00-12:00\", \"13:00-17:00\"], sat: \"22:00-02:00\"}\n"
                "    holidays: [\"2026-12-25\", \"01-01\"]\n"
                "notify:\n  webhooks:\n    - name: tier1\n      url: https://h.example/x\n"
                "      teams: [Tier1]\n      format: slack\n"
                "  email:\n    server: 127.0.0.1:2525\n    from: omr@example.com\n"
                "    starttls: disabled\n");
        assert_int_equal(c->n_calendars, 1);
        const struct omr_calendar *cal = omr_conf_calendar(c, "office");
        assert_non_null(cal);
        assert_int_equal(cal->n_hours[0], 2);
        assert_int_equal(cal->hours[0][1].start, 13 * 60);
        assert_int_equal(cal->n_hours[5], 1);
        assert_int_equal(cal->hours[5][0].end, 2 * 60);
        assert_int_equal(cal->n_holidays, 2);
        assert_int_equal(cal->holidays[1].year, 0);
        const struct omr_rule *r = rule_named(c, "night");
        assert_ptr_equal(r->calendar, cal);
        assert_false(r->want_open);
        assert_int_equal(c->notify.n_webhooks, 1);
        assert_int_equal(c->notify.webhooks[0].format, OMR_NOTIFY_SLACK);
        assert_string_equal(c->notify.webhooks[0].teams[0], "tier1"); /* case-insensitive */
        assert_int_equal(c->notify.webhooks[0].n_events, 2);          /* offered, assigned */
        assert_string_equal(c->notify.mail.server, "127.0.0.1:2525");
        assert_int_equal(c->notify.mail.starttls, OMR_STARTTLS_DISABLED);
        assert_int_equal(c->notify.mail.n_events, 2);
        omr_conf_free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_example_loads),
                cmocka_unit_test(test_load_missing_file),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_calendars_and_notify_parsed),
                cmocka_unit_test(test_errors_collected),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_durations),
                cmocka_unit_test(test_sizes),
                cmocka_unit_test(test_listen),
                cmocka_unit_test(test_redis_url),
                cmocka_unit_test(test_secrets),
                cmocka_unit_test(test_secret_absolute),
                cmocka_unit_test(test_secret_credentials_directory),
                cmocka_unit_test(test_rules_parsed),
                cmocka_unit_test(test_sms_defaults),
                cmocka_unit_test(test_twilio_accounts),
                cmocka_unit_test(test_vonage_accounts),
                cmocka_unit_test(test_social_accounts),
                cmocka_unit_test(test_vonage_require_without_secret),
                cmocka_unit_test(test_tokens),
                cmocka_unit_test(test_outbound),
                cmocka_unit_test(test_reload_blocker),
                cmocka_unit_test(test_valid_queue_name),
                cmocka_unit_test(test_queues_parsed),
                cmocka_unit_test(test_queue_defaults_undeclared),
                cmocka_unit_test(test_strategy_names),
                cmocka_unit_test(test_duplicate_queue_and_agent),
                cmocka_unit_test(test_vip_customers),
                cmocka_unit_test(test_rule_conditions_parsed),
                cmocka_unit_test(test_rule_regex_error),
                cmocka_unit_test(test_agents_parsed),
                cmocka_unit_test(test_agents_defaults),
                cmocka_unit_test(test_valid_agent_id),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
