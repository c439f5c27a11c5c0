/* conf.h — configuration as typed data, loaded once from YAML.
 *
 * omr_conf_load() builds a whole new struct omr_conf or nothing; every
 * problem is reported as "file:line: message". A loaded conf is immutable:
 * reload (SIGHUP) loads a new one and swaps it in, so request handling can
 * hold a pointer for the duration of one synchronous step, never across an
 * asynchronous one (copy what you keep). */
#ifndef OMNIROUTE_CONF_H
#define OMNIROUTE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omniroute/calendar.h"
#include "omniroute/message.h"

#define OMR_CONF_MAX_ERRORS 32

struct omr_conf_errors {
        size_t n;
        char msg[OMR_CONF_MAX_ERRORS][256];
};

struct omr_conf_http {
        char *host; /* numeric address or name to bind */
        int port;   /* 0: the kernel picks (logged at start) */
        size_t max_body;
        size_t max_header;      /* per-connection memory for the request head */
        int64_t idle_timeout_s; /* idle keep-alive / slow client */
        unsigned max_connections;
        int64_t drain_timeout_ms;
};

enum omr_redis_kind { OMR_REDIS_EMBEDDED, OMR_REDIS_TCP, OMR_REDIS_UNIX };

struct omr_conf_redis {
        enum omr_redis_kind kind;
        char *url; /* as written; NULL when embedded */
        char *host;
        int port;
        char *unix_path;
        int db;
        char *password; /* from password_file; never logged */
        char *prefix;
        int64_t command_timeout_ms;
        int64_t dedup_ttl_s;
        long long queue_maxlen;
        long long events_maxlen;
        char *embedded_server; /* redis-server binary for the embedded mode */
        char *embedded_dir;    /* NULL: $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR or /tmp */
};

struct omr_conf_adapter {
        char *name;
        unsigned char *secret;
        size_t secret_len;
        bool require_timestamp;
        int line;
};

struct omr_conf_api {
        struct omr_conf_adapter *adapters;
        size_t n_adapters;
        int64_t timestamp_window_s;
};

/* A routing rule: every condition given must hold; inside a list, any
 * element may match. Keywords are stored case-folded (omr_text_fold). */
struct omr_rule {
        char *name;
        int line;
        unsigned channels; /* bit (1u << enum omr_channel); 0 = any */
        char **adapters;   /* provider names: "api:shop", "twilio" … */
        size_t n_adapters;
        char **senders; /* fnmatch(3) globs over customer id and handle */
        size_t n_senders;
        char **keywords;
        size_t n_keywords;
        char **languages; /* BCP 47 tags; "vi" also matches "vi-VN" */
        size_t n_languages;
        int vip;       /* -1: any; 0/1: the customer must (not) be on the VIP list */
        int returning; /* -1: any; 0/1: the customer has (not) written before */
        void *regex;   /* pcre2_code *: caseless, UTF, over subject + text */
        char *regex_src;
        char *queue;
        enum omr_priority priority;
        bool has_priority;
        char **skills; /* required of the agent; lower-case */
        size_t n_skills;
        char *calendar_name;                 /* business_hours / outside_business_hours */
        bool want_open;                      /* true: business_hours (open); false: outside them */
        const struct omr_calendar *calendar; /* resolved after load; borrowed */
};

enum omr_queue_mode { OMR_QUEUE_PULL, OMR_QUEUE_PUSH };
enum omr_strategy { OMR_STRATEGY_LEAST_BUSY, OMR_STRATEGY_ROUND_ROBIN, OMR_STRATEGY_LONGEST_IDLE };

/* How a queue hands out work (docs/routing.md). Queues no rule declares
 * here are pull queues with the defaults. */
struct omr_conf_queue {
        char *name;
        enum omr_queue_mode mode;
        enum omr_strategy strategy;
        bool sticky;              /* push: prefer the customer's last agent */
        bool match_language;      /* the agent must speak the detected language */
        int64_t offer_timeout_ms; /* push: 0 assigns without an offer */
        int64_t claim_timeout_ms; /* pull: an unaccepted claim is re-offered after it */
        int line;
};

struct omr_conf_routing {
        char *default_queue;
        enum omr_priority default_priority;
        struct omr_rule *rules;
        size_t n_rules;
        bool uses_returning; /* some rule looks at returning customers */
        struct omr_conf_queue *queues;
        size_t n_queues;
        char **vip; /* fnmatch(3) globs over customer id and handle */
        size_t n_vip;
};

struct omr_conf_capacity {
        char *channel; /* a channel name, or "*" for every other channel */
        int max;
};

/* An agent defined in the config file (more register at run time). */
struct omr_conf_agent {
        char *id;
        char *name;
        char *email;
        char **languages, **skills, **queues, **teams;
        size_t n_languages, n_skills, n_queues, n_teams;
        struct omr_conf_capacity *capacity;
        size_t n_capacity;
        int line;
};

struct omr_conf_agents {
        int64_t heartbeat_timeout_ms; /* presence without a heartbeat expires */
        struct omr_conf_agent *list;
        size_t n;
};

/* A bearer token an agent tool presents to the HTTP API. A token bound to
 * an agent acts only as that agent and cannot manage agents. */
struct omr_conf_token {
        char *name;
        char *token;
        size_t token_len;
        char *agent; /* NULL: not bound (a team tool or an operator) */
        int line;
};

struct omr_conf_outbound {
        int64_t give_up_after_ms;   /* retries stop here; the reply is failed */
        int64_t request_timeout_ms; /* one provider API request */
        char *consumer;             /* outbox consumer name; NULL: hostname:port */
};

struct omr_conf_twilio_account {
        char *name;
        char *account_sid;
        char *auth_token;
        char *public_url; /* as Twilio sees us, without trailing slash */
        char *api_base;
        char *from;
        int line;
};

enum omr_vonage_sig {
        OMR_VSIG_MD5HASH,
        OMR_VSIG_MD5,
        OMR_VSIG_SHA1,
        OMR_VSIG_SHA256,
        OMR_VSIG_SHA512
};

struct omr_conf_vonage_account {
        char *name;
        char *api_key;
        char *api_secret;
        char *signature_secret; /* NULL: webhooks unsigned */
        enum omr_vonage_sig signature_method;
        bool require_signature;
        bool require_signature_set;
        char *api_base;
        char *from;
        int line;
};

enum omr_notify_format { OMR_NOTIFY_JSON, OMR_NOTIFY_SLACK };

/* An agent tool's webhook: receives the events of the agents it covers. */
struct omr_conf_webhook {
        char *name;
        char *url; /* from url or url_file (Slack's URLs are secrets) */
        enum omr_notify_format format;
        unsigned char *secret; /* signs deliveries like inbound webhooks; NULL: unsigned */
        size_t secret_len;
        char **teams, **agents, **events;
        size_t n_teams, n_agents, n_events;
        int line;
};

enum omr_starttls { OMR_STARTTLS_DISABLED, OMR_STARTTLS_ENABLED, OMR_STARTTLS_REQUIRED };

/* Email to agents (libesmtp, off the loop). */
struct omr_conf_mail {
        char *server; /* host:port; NULL: no email */
        char *from;
        char *user;
        char *password; /* from password_file */
        enum omr_starttls starttls;
        int64_t timeout_ms;
        char **events;
        size_t n_events;
};

struct omr_conf_notify {
        char **supervisors; /* email addresses told about SLA events */
        size_t n_supervisors;
        char **supervisor_events;
        size_t n_supervisor_events;
        struct omr_conf_webhook *webhooks;
        size_t n_webhooks;
        struct omr_conf_mail mail;
        int64_t give_up_after_ms;
        int64_t request_timeout_ms;
};

/* A target "end_of_business_day": due when the calendar's business day
 * closes (docs/sla.md). */
#define OMR_SLA_END_OF_DAY (-1)

/* A response-time policy (docs/sla.md). The first policy whose conditions
 * hold for a new conversation (channel, queue, priority) applies to it. */
struct omr_conf_sla_policy {
        char *name;
        unsigned channels; /* bit (1u << enum omr_channel); 0 = any */
        char **queues;
        size_t n_queues;
        unsigned priorities; /* bit (1u << enum omr_priority); 0 = any */
        int64_t first_response_ms, next_response_ms, resolution_ms; /* 0: no target */
        char *calendar_name;                                        /* NULL: 24/7 */
        const struct omr_calendar *calendar; /* resolved after load; borrowed */
        double warn_at;                      /* fraction of the target */
        char *escalation_queue;              /* on breach, waiting work moves here */
        enum omr_priority escalate_priority; /* on breach, at least this */
        int line;
};

/* Auto-acknowledgement of new conversations with the expected reply time. */
struct omr_conf_ack_template {
        char *language; /* BCP 47 prefix, e.g. "vi" */
        char *text;     /* placeholders {due}, {due_date}, {due_time}, {timezone} */
};

struct omr_conf_ack {
        bool enabled;
        unsigned channels; /* 0 = every channel */
        int64_t window_ms; /* at most one per customer per window */
        char *timezone;    /* when the policy has no calendar (default UTC) */
        struct omr_conf_ack_template *templates;
        size_t n_templates;
        char *fallback; /* language of the template used when none matches */
};

/* A one-question satisfaction survey after resolution. */
struct omr_conf_csat {
        bool enabled;
        /* bit (1u << enum omr_channel) of the channels asked; 0: every
         * channel but social (a survey there would be a public post) */
        unsigned channels;
        int64_t window_ms; /* how long after asking a 1-5 answer counts */
        struct omr_conf_ack_template *templates;
        size_t n_templates;
        char *fallback;
};

/* An email mailbox (docs/connectors/email.md): IMAP in, SMTP out, and/or
 * a Mailgun inbound webhook. Provider name "email:<name>". */
enum omr_imap_tls { OMR_IMAP_TLS_NONE, OMR_IMAP_TLS_TRY, OMR_IMAP_TLS_REQUIRED };
enum omr_imap_after { OMR_IMAP_AFTER_SEEN, OMR_IMAP_AFTER_MOVE };

struct omr_conf_email_imap {
        char *server;      /* "imap://host:port" or "imaps://host:port"; NULL: no IMAP */
        char *folder_path; /* the URL's path as written (percent-encoded): used in URLs */
        char *folder;      /* the same, decoded: used in IMAP commands */
        char *user;
        char *password;        /* from password_file */
        enum omr_imap_tls tls; /* STARTTLS for imap:// */
        int64_t poll_ms, timeout_ms;
        long batch;
        enum omr_imap_after after;
        char *move_to; /* folder name (decoded) for after_store: move */
};

struct omr_conf_email_smtp {
        char *server; /* host:port; NULL: replies cannot be sent */
        char *user;
        char *password;
        enum omr_starttls starttls;
        int64_t timeout_ms;
};

struct omr_conf_email_mailbox {
        char *name;
        char *address; /* lower-case local@domain: From of replies */
        char *display_name;
        unsigned char *token_secret; /* signs reply addresses and Message-IDs */
        size_t token_secret_len;
        size_t max_message_size;
        struct omr_conf_email_imap imap;
        struct omr_conf_email_smtp smtp;
        unsigned char *mailgun_key; /* NULL: no Mailgun webhook */
        size_t mailgun_key_len;
        int64_t mailgun_window_ms;
        int line;
};

/* Website chat (docs/connectors/chat.md). */
struct omr_conf_chat_site {
        char *name;
        char **origins; /* exact Origin header values */
        size_t n_origins;
        int line;
};

struct omr_conf_chat {
        unsigned char *secret; /* signs session tokens; NULL: no chat */
        size_t secret_len;
        int64_t session_ttl_ms;
        size_t max_message;
        int64_t ping_ms;
        struct omr_conf_chat_site *sites;
        size_t n_sites;
        char *offline_email_provider; /* "email:<mailbox>"; NULL: replies are not emailed */
        int64_t offline_email_after_ms;
};

/* A polled social account (docs/connectors/social.md): Mastodon or X.
 * Provider name "mastodon:<name>" / "x:<name>". */
struct omr_conf_social_account {
        char *name;
        char *base_url; /* no trailing '/': "https://mastodon.example", "https://api.x.com" */
        char *token;    /* bearer token, from token_file; never logged */
        size_t token_len;
        char *user_id; /* X: the account's numeric user id; Mastodon: NULL */
        char *handle;  /* our own acct / username ("" unknown): its mention is trimmed from texts */
        int64_t poll_ms;  /* between the starts of two polling rounds */
        int64_t lease_ms; /* a dead holder's account is taken over within this */
        long page_size;
        int64_t timeout_ms;
        int line;
};

/* A Meta app (Messenger, Instagram) posting webhooks; provider "meta:<name>".
 * Each page / Instagram account it answers for has its own access token. */
struct omr_conf_meta_page {
        char *id;    /* page id or Instagram account id (digits) */
        char *token; /* page access token, from token_file; never logged */
        size_t token_len;
};

struct omr_conf_meta_app {
        char *name;
        unsigned char *app_secret; /* HMAC key of X-Hub-Signature-256 */
        size_t app_secret_len;
        char *verify_token; /* the GET handshake's hub.verify_token */
        char *graph_base;   /* "https://graph.facebook.com/v21.0", no trailing '/' */
        struct omr_conf_meta_page *pages;
        size_t n_pages;
        int line;
};

struct omr_conf {
        char *path;
        int log_level;
        struct omr_conf_http http;
        struct omr_conf_redis redis;
        struct omr_conf_api api;
        struct omr_conf_routing routing;
        struct omr_conf_agents agents;
        struct omr_conf_notify notify;
        struct omr_calendar *calendars;
        size_t n_calendars;
        struct omr_conf_sla_policy *sla;
        size_t n_sla;
        struct omr_conf_ack ack;
        struct omr_conf_csat csat;
        struct omr_conf_token *tokens;
        size_t n_tokens;
        struct omr_conf_outbound outbound;
        struct omr_conf_twilio_account *twilio;
        size_t n_twilio;
        struct omr_conf_vonage_account *vonage;
        size_t n_vonage;
        struct omr_conf_email_mailbox *email;
        size_t n_email;
        struct omr_conf_chat chat;
        struct omr_conf_social_account *mastodon;
        size_t n_mastodon;
        struct omr_conf_social_account *x;
        size_t n_x;
        struct omr_conf_meta_app *meta;
        size_t n_meta;
};

/* Returns a new conf, or NULL with errs filled. */
struct omr_conf *omr_conf_load(const char *path, struct omr_conf_errors *errs);
/* Same, from a buffer; `path` only names it in messages and resolves
 * relative secret files. Used by tests and the fuzzer. */
struct omr_conf *omr_conf_load_buffer(const char *path, const char *buf, size_t len,
                                      struct omr_conf_errors *errs);
void omr_conf_free(struct omr_conf *c);

const struct omr_conf_adapter *omr_conf_adapter(const struct omr_conf *c, const char *name);
const struct omr_conf_twilio_account *omr_conf_twilio(const struct omr_conf *c, const char *name);
const struct omr_conf_vonage_account *omr_conf_vonage(const struct omr_conf *c, const char *name);
const struct omr_conf_email_mailbox *omr_conf_email(const struct omr_conf *c, const char *name);
const struct omr_conf_chat_site *omr_conf_chat_site(const struct omr_conf *c, const char *name);
const struct omr_conf_social_account *omr_conf_mastodon(const struct omr_conf *c, const char *name);
const struct omr_conf_social_account *omr_conf_x(const struct omr_conf *c, const char *name);
const struct omr_conf_meta_app *omr_conf_meta(const struct omr_conf *c, const char *name);
/* The token's name when `presented` matches a configured token (constant
 * time per token), else NULL. */
const char *omr_conf_token_match(const struct omr_conf *c, const char *presented);
const struct omr_conf_token *omr_conf_token_find(const struct omr_conf *c, const char *presented);

/* Names the first setting a reload cannot change (it needs a restart), or
 * NULL when `next` may replace `cur` in place. */
const char *omr_conf_reload_blocker(const struct omr_conf *cur, const struct omr_conf *next);

/* Queue names appear in Redis keys: [A-Za-z0-9_.-]{1,64}. */
bool omr_conf_valid_queue_name(const char *name);
/* Agent ids too: [A-Za-z0-9_.@-]{1,64}. */
bool omr_conf_valid_agent_id(const char *id);
/* The queue's settings; the defaults for a queue the config does not list. */
const struct omr_conf_queue *omr_conf_queue(const struct omr_conf *c, const char *name);
const struct omr_conf_agent *omr_conf_agent(const struct omr_conf *c, const char *id);
const struct omr_calendar *omr_conf_calendar(const struct omr_conf *c, const char *name);
/* The SLA policy for a new conversation, or NULL. */
const struct omr_conf_sla_policy *omr_conf_sla_for(const struct omr_conf *c, enum omr_channel ch,
                                                   const char *queue, enum omr_priority p);
const struct omr_conf_sla_policy *omr_conf_sla_named(const struct omr_conf *c, const char *name);
/* The acknowledgement template for a language tag (prefix match), else the
 * fallback's, else NULL. */
const char *omr_conf_ack_template(const struct omr_conf *c, const char *language);
/* Whether a customer id or handle is on routing.customers.vip. */
bool omr_conf_is_vip(const struct omr_conf *c, const char *id, const char *handle);
const char *omr_strategy_name(enum omr_strategy s);

#endif
