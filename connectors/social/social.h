/* social.h — what the polled social connectors (Mastodon, X) share: one
 * poller per configured account, all restarted on reload, and the text
 * clean-up of a post. Loop thread only. */
#ifndef OMR_SOCIAL_H
#define OMR_SOCIAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "omniroute/connector.h"
#include "omniroute/poller.h"

struct social_account {
        struct omr_connector *c;
        const struct omr_conf_social_account *conf; /* in the current conf; renewed on reload */
        char provider[96];                          /* "mastodon:brand" */
        char *auth;                                 /* "Authorization: Bearer …" */
        struct omr_poller *poller;
        /* A round in progress (X collects its pages before storing). */
        struct omr_message **pending;
        size_t n_pending, cap_pending;
        char *next_token, *newest_id;
};

struct social_ops {
        const char *provider; /* "mastodon", "x" */
        const struct omr_poll_source_ops *poll;
        /* The configured accounts of this provider in conf. */
        const struct omr_conf_social_account *(*accounts)(const struct omr_conf *conf, size_t *n);
};

/* The providers' request builders and page readers; their ctx is a
 * struct social_account (the fuzzer drives them directly). */
extern const struct omr_poll_source_ops omr_mastodon_poll_ops, omr_x_poll_ops;

/* start / reload / stop of a connector built on social_ops (c->priv). */
int omr_social_start(struct omr_connector *c, const struct social_ops *ops);
void omr_social_reload(struct omr_connector *c, const struct omr_conf *conf);
void omr_social_stop(struct omr_connector *c);
/* The account behind a reply's r->account, or NULL. */
struct social_account *omr_social_account(struct omr_connector *c, const char *name);
void omr_social_round_clear(struct social_account *a);

/* A reply posted as JSON to {base_url}{path} with the account's token
 * and one more header line (or NULL), through omr_send_http(). Takes
 * body. 0, or -errno with done not called. */
int omr_social_post(struct omr_connector *c, const struct social_account *a, const char *path,
                    json_t *body, const char *extra_header, omr_send_parse_fn parse,
                    omr_send_done_fn done, void *arg);
/* Answers done with FAILED and why at once; returns 0 (for send()). */
int omr_social_fail(omr_send_done_fn done, void *arg, const char *why);

/* A post's text: HTML converted when html, our own leading @mention
 * (handle, with or without @host) removed, trimmed. Never NULL but on
 * allocation failure. */
char *omr_social_text(const char *s, bool html, const char *handle);
/* Numeric ids as decimal strings: -1, 0, 1 like strcmp. */
int omr_social_id_cmp(const char *a, const char *b);
/* "Authorization: Bearer <token>" (malloc'd). */
char *omr_social_bearer(const struct omr_conf_social_account *a);

#endif
