/* x.c — X (API v2) mentions:
 *   in:  GET  {base}/2/users/{id}/mentions?since_id=C&max_results=N[&pagination_token=T]
 *   out: POST {base}/2/tweets {"text", "reply": {"in_reply_to_tweet_id"}}
 * X pages from the newest mention back towards since_id, so a round's
 * pages are collected first and stored oldest first; only then does the
 * cursor move to the first page's newest_id. A round cut short (restart,
 * lease handed over, a refused pagination token) starts again from the
 * cursor, and dedup drops what was stored already. The thread key is the
 * tweet's conversation_id: X's own thread. Loop thread only. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/connector.h"
#include "omniroute/log.h"
#include "omniroute/timefmt.h"
#include "social/social.h"

#define MAX_TWEET_CHARS 280
/* X keeps only the newest 800 mentions reachable, so a round rarely holds
 * more. If one does, what it holds is stored before it goes on: still
 * nothing lost (the cursor waits for the round's end), only the order
 * across the flush is newest part first. */
#define ROUND_FLUSH 1000

static const char fields[] = "tweet.fields=created_at,conversation_id,author_id,lang,"
                             "referenced_tweets&expansions=author_id&user.fields=username,name";

static char *mentions_url(void *ctx, const char *cursor, bool round_start)
{
        struct social_account *a = ctx;
        if (round_start)
                omr_social_round_clear(a);
        /* "0": the first poll found nothing, so everything is new. */
        bool since = *cursor && strcmp(cursor, "0") != 0;
        char *url = NULL;
        int n = asprintf(&url, "%s/2/users/%s/mentions?max_results=%ld&%s%s%s%s%s",
                         a->conf->base_url, a->conf->user_id, a->conf->page_size, fields,
                         since ? "&since_id=" : "", since ? cursor : "",
                         a->next_token ? "&pagination_token=" : "",
                         a->next_token ? a->next_token : "");
        return n < 0 ? NULL : url;
}

/* X escapes &, < and > in tweet text as HTML entities. */
static void unescape(char *s)
{
        static const struct {
                const char *ent;
                char c;
        } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}};
        char *w = s;
        for (const char *r = s; *r;) {
                size_t i = 0;
                while (i < 3 && strncmp(r, ents[i].ent, strlen(ents[i].ent)) != 0)
                        i++;
                if (i < 3) {
                        *w++ = ents[i].c;
                        r += strlen(ents[i].ent);
                } else {
                        *w++ = *r++;
                }
        }
        *w = '\0';
}

static const json_t *user_of(const json_t *users, const char *id)
{
        size_t i;
        const json_t *u;
        json_array_foreach(users, i, u)
        {
                const char *uid = json_string_value(json_object_get(u, "id"));
                if (uid && strcmp(uid, id) == 0)
                        return u;
        }
        return NULL;
}

static bool digits(const char *s)
{
        return s && *s && strlen(s) <= 24 && strspn(s, "0123456789") == strlen(s);
}

/* A tweet → a message; NULL when it is unusable (logged) or, with *oom
 * set, when memory ran out. */
static struct omr_message *to_message(const struct social_account *a, const json_t *t,
                                      const json_t *users, bool *oom)
{
        const char *id = json_string_value(json_object_get(t, "id"));
        const char *author = json_string_value(json_object_get(t, "author_id"));
        const char *text = json_string_value(json_object_get(t, "text"));
        if (!digits(id) || author == NULL || *author == '\0' || text == NULL) {
                omr_log(LOG_WARNING, "x",
                        "a mention without id, author_id or text was skipped source=%s",
                        a->provider);
                return NULL;
        }
        const json_t *u = user_of(users, author);
        const char *username = json_string_value(json_object_get(u, "username"));
        const char *name = json_string_value(json_object_get(u, "name"));
        const char *conv = json_string_value(json_object_get(t, "conversation_id"));
        struct omr_message *m = omr_message_new();
        if (m == NULL) {
                *oom = true;
                return NULL;
        }
        m->channel = OMR_CHANNEL_SOCIAL;
        m->provider = strdup(a->provider);
        m->external_id = strdup(id);
        m->customer.id = strdup(author);
        if (username && asprintf(&m->customer.handle, "@%s", username) < 0)
                m->customer.handle = NULL;
        if (name && *name)
                m->customer.name = strdup(name);
        m->thread_key = strdup(conv && *conv ? conv : id);
        char *raw = strdup(text);
        if (raw) {
                unescape(raw);
                m->text = omr_social_text(raw, false, a->conf->handle);
                free(raw);
        }
        const char *at = json_string_value(json_object_get(t, "created_at"));
        if (at)
                omr_time_parse(at, &m->sent_at);
        if (m->provider == NULL || m->external_id == NULL || m->customer.id == NULL ||
            m->thread_key == NULL || m->text == NULL || (username && !m->customer.handle)) {
                omr_message_free(m);
                *oom = true;
                return NULL;
        }
        return m;
}

static int by_id(const void *x, const void *y)
{
        const struct omr_message *a = *(struct omr_message *const *)x;
        const struct omr_message *b = *(struct omr_message *const *)y;
        return omr_social_id_cmp(a->external_id, b->external_id);
}

static int keep(struct social_account *a, struct omr_message *m)
{
        if (a->n_pending == a->cap_pending) {
                size_t cap = a->cap_pending ? a->cap_pending * 2 : 64;
                struct omr_message **p = realloc(a->pending, cap * sizeof(*p));
                if (p == NULL)
                        return -1;
                a->pending = p;
                a->cap_pending = cap;
        }
        a->pending[a->n_pending++] = m;
        return 0;
}

static int parse_mentions(void *ctx, const struct omr_fetch_response *r, const char *cursor,
                          struct omr_poll_page *page, char *err, size_t errlen)
{
        struct social_account *a = ctx;
        if (r->status != 200) {
                /* A stale pagination token is refused with 400: the round
                 * starts again from the cursor. */
                bool had_token = a->next_token != NULL;
                omr_social_round_clear(a);
                snprintf(err, errlen, "unexpected HTTP %ld%s: %.200s", r->status,
                         had_token ? " (the round starts again)" : "", r->body);
                return -1;
        }
        json_error_t jerr;
        json_t *doc = json_loadb(r->body, r->body_len, 0, &jerr);
        const json_t *meta = json_object_get(doc, "meta");
        const json_t *data = json_object_get(doc, "data");
        if (!json_is_object(meta) || (data && !json_is_array(data))) {
                snprintf(err, errlen, "the answer has no meta object or a bad data array (%s)",
                         doc ? "unexpected JSON" : jerr.text);
                json_decref(doc);
                omr_social_round_clear(a);
                return -1;
        }
        const json_t *users = json_object_get(json_object_get(doc, "includes"), "users");
        size_t i;
        const json_t *t;
        json_array_foreach(data, i, t)
        {
                bool oom = false;
                struct omr_message *m = to_message(a, t, users, &oom);
                if (oom || (m && keep(a, m) != 0)) {
                        omr_message_free(m);
                        json_decref(doc);
                        omr_social_round_clear(a);
                        snprintf(err, errlen, "out of memory");
                        return -1;
                }
        }
        /* Both go into the next URL and the cursor: only what X sends. */
        const char *newest = json_string_value(json_object_get(meta, "newest_id"));
        const char *next = json_string_value(json_object_get(meta, "next_token"));
        if ((newest && !digits(newest)) ||
            (next &&
             (strlen(next) > 256 ||
              strspn(next, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                      strlen(next)))) {
                json_decref(doc);
                omr_social_round_clear(a);
                snprintf(err, errlen, "meta.newest_id or meta.next_token is malformed");
                return -1;
        }
        if (newest && (a->newest_id == NULL || omr_social_id_cmp(newest, a->newest_id) > 0)) {
                free(a->newest_id);
                a->newest_id = strdup(newest);
        }
        free(a->next_token);
        /* Without a cursor (the first poll) only the newest page is taken. */
        a->next_token = next && *next && *cursor ? strdup(next) : NULL;
        bool oom = (newest && a->newest_id == NULL) || (next && *next && *cursor && !a->next_token);
        json_decref(doc); /* newest and next pointed into it */
        if (oom) {
                omr_social_round_clear(a); /* the round starts again */
                snprintf(err, errlen, "out of memory");
                return -1;
        }
        if (a->next_token && a->n_pending < ROUND_FLUSH) {
                page->more = true; /* nothing to store yet */
                return 0;
        }
        /* The round is complete (or large): oldest first, each tweet once. */
        if (a->n_pending > 1)
                qsort(a->pending, a->n_pending, sizeof(*a->pending), by_id);
        size_t k = 0;
        for (size_t j = 0; j < a->n_pending; j++) {
                if (k > 0 &&
                    strcmp(a->pending[k - 1]->external_id, a->pending[j]->external_id) == 0)
                        omr_message_free(a->pending[j]);
                else
                        a->pending[k++] = a->pending[j];
        }
        page->msgs = a->pending;
        page->n = k;
        a->pending = NULL;
        a->n_pending = a->cap_pending = 0;
        if (a->next_token) {
                page->more = true; /* the cursor moves at the round's end */
                return 0;
        }
        /* Nothing at the first poll: "0" (no since_id, every page) next. */
        page->cursor = a->newest_id ? a->newest_id : *cursor ? NULL : strdup("0");
        a->newest_id = NULL;
        return 0;
}

const struct omr_poll_source_ops omr_x_poll_ops = {
        .url = mentions_url,
        .parse = parse_mentions,
};

/* --- replies ------------------------------------------------------------ */

static void parse_posted(const struct omr_fetch_response *r, struct omr_send_result *res, char *err,
                         size_t errlen)
{
        json_t *body = json_loadb(r->body, r->body_len, 0, NULL);
        const char *id = json_string_value(json_object_get(json_object_get(body, "data"), "id"));
        if ((r->status == 200 || r->status == 201) && id) {
                snprintf(err, errlen, "%s", id);
                res->status = OMR_SEND_SENT;
                res->provider_message_id = err;
        } else {
                const char *detail = json_string_value(json_object_get(body, "detail"));
                snprintf(err, errlen, "x HTTP %ld: %s", r->status, detail ? detail : "no detail");
                res->status = OMR_SEND_FAILED;
                res->error = err;
        }
        json_decref(body);
}

static int x_send(struct omr_connector *c, const struct omr_reply *r, omr_send_done_fn done,
                  void *arg)
{
        struct social_account *a = omr_social_account(c, r->account);
        if (a == NULL)
                return omr_social_fail(done, arg, "the X account is no longer configured");
        json_t *body = json_pack("{s:s}", "text", r->text);
        /* X adds the mentions of the thread to a reply by itself. */
        if (body && r->in_reply_to && *r->in_reply_to)
                json_object_set_new(body, "reply",
                                    json_pack("{s:s}", "in_reply_to_tweet_id", r->in_reply_to));
        return omr_social_post(c, a, "/2/tweets", body, NULL, parse_posted, done, arg);
}

static const struct omr_conf_social_account *x_accounts(const struct omr_conf *conf, size_t *n)
{
        *n = conf->n_x;
        return conf->x;
}

static const struct social_ops ops = {
        .provider = "x",
        .poll = &omr_x_poll_ops,
        .accounts = x_accounts,
};

static int x_start(struct omr_connector *c)
{
        return omr_social_start(c, &ops);
}

const struct omr_connector_ops omr_x_connector = {
        .name = "x",
        .channel = OMR_CHANNEL_SOCIAL,
        .start = x_start,
        .send = x_send,
        .max_text = MAX_TWEET_CHARS,
        .reload = omr_social_reload,
        .stop = omr_social_stop,
        .free = omr_social_stop,
};
