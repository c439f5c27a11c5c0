/* mastodon.c — Mastodon mentions and direct messages:
 *   in:  GET  {base}/api/v1/notifications?types[]=mention&limit=N&min_id=C
 *   out: POST {base}/api/v1/statuses (in_reply_to_id, visibility, Idempotency-Key)
 * min_id asks for the notifications immediately newer than the cursor,
 * oldest page first, so each page is stored and the cursor moved to its
 * newest id before the next is asked for: a restart resumes exactly there.
 * A conversation is one customer's posts of one visibility, so a direct
 * message never shares a conversation — or a public reply — with a public
 * post. Loop thread only. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "omniroute/connector.h"
#include "omniroute/log.h"
#include "omniroute/timefmt.h"
#include "social/social.h"

/* Mastodon's default status length. */
#define MAX_STATUS_CHARS 500
#define MAX_ATTACHMENTS  16

static const char *const visibilities[] = {"public", "unlisted", "private", "direct", NULL};

static bool known_visibility(const char *v)
{
        for (size_t i = 0; v && visibilities[i]; i++)
                if (strcmp(v, visibilities[i]) == 0)
                        return true;
        return false;
}

/* --- polling ------------------------------------------------------------ */

static char *notifications_url(void *ctx, const char *cursor, bool round_start)
{
        struct social_account *a = ctx;
        (void)round_start; /* every page is asked for from the cursor */
        char *url = NULL;
        int n = *cursor ? asprintf(&url,
                                   "%s/api/v1/notifications?types[]=mention&limit=%ld&min_id=%s",
                                   a->conf->base_url, a->conf->page_size, cursor)
                        : asprintf(&url, "%s/api/v1/notifications?types[]=mention&limit=%ld",
                                   a->conf->base_url, a->conf->page_size);
        return n < 0 ? NULL : url;
}

/* "user" for local accounts, "user@host" for remote ones: always the
 * second form, so one person has one id whatever the instance. */
static char *full_acct(const struct social_account *a, const char *acct)
{
        if (strchr(acct, '@'))
                return strdup(acct);
        const char *host = strstr(a->conf->base_url, "://");
        host = host ? host + 3 : a->conf->base_url;
        size_t hn = strcspn(host, "/");
        char *s = NULL;
        if (asprintf(&s, "%s@%.*s", acct, (int)hn, host) < 0)
                return NULL;
        return s;
}

/* At most max bytes of valid UTF-8 s, never cutting a character. */
static char *utf8_prefix(const char *s, size_t max)
{
        size_t n = strlen(s);
        if (n > max) {
                n = max;
                while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
                        n--;
        }
        return strndup(s, n);
}

static void add_attachments(struct omr_message *m, const json_t *media)
{
        size_t n = json_array_size(media);
        if (n == 0)
                return;
        if (n > MAX_ATTACHMENTS)
                n = MAX_ATTACHMENTS;
        m->attachments = calloc(n, sizeof(*m->attachments));
        for (size_t i = 0; m->attachments && i < n; i++) {
                const json_t *at = json_array_get(media, i);
                const char *url = json_string_value(json_object_get(at, "url"));
                if (url == NULL)
                        continue;
                struct omr_attachment *x = &m->attachments[m->n_attachments++];
                x->url = strdup(url);
                const char *type = json_string_value(json_object_get(at, "type"));
                x->type = type ? strdup(type) : NULL; /* image, video, gifv, audio */
                const char *desc = json_string_value(json_object_get(at, "description"));
                x->name = desc ? utf8_prefix(desc, 200) : NULL;
                x->size = -1;
        }
}

/* One mention notification → a message, or NULL when it is not one we
 * can use (another type, no status, a visibility we do not know). */
static struct omr_message *to_message(const struct social_account *a, const json_t *n, char *err,
                                      size_t errlen)
{
        const json_t *status = json_object_get(n, "status");
        const json_t *account = json_object_get(n, "account");
        const char *type = json_string_value(json_object_get(n, "type"));
        const char *sid = json_string_value(json_object_get(status, "id"));
        const char *acct = json_string_value(json_object_get(account, "acct"));
        const char *vis = json_string_value(json_object_get(status, "visibility"));
        const char *content = json_string_value(json_object_get(status, "content"));
        if (type == NULL || strcmp(type, "mention") != 0)
                return NULL;
        /* A fork's own visibility ("local", "mutuals_only" …) is kept,
         * answered as direct: the most private reply. */
        if (!known_visibility(vis))
                vis = "direct";
        if (sid == NULL || acct == NULL || *acct == '\0') {
                snprintf(err, errlen, "notification %s: status id or account acct missing",
                         json_string_value(json_object_get(n, "id"))
                                 ? json_string_value(json_object_get(n, "id"))
                                 : "?");
                return NULL;
        }
        struct omr_message *m = omr_message_new();
        if (m == NULL) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        m->channel = OMR_CHANNEL_SOCIAL;
        m->provider = strdup(a->provider);
        m->external_id = strdup(sid);
        m->customer.id = full_acct(a, acct);
        if (m->customer.id && asprintf(&m->customer.handle, "@%s", m->customer.id) < 0)
                m->customer.handle = NULL;
        const char *name = json_string_value(json_object_get(account, "display_name"));
        if (name && *name)
                m->customer.name = strdup(name);
        m->thread_key = strdup(vis);
        char *text = omr_social_text(content ? content : "", true, a->conf->handle);
        const char *cw = json_string_value(json_object_get(status, "spoiler_text"));
        if (text && cw && *cw) { /* a content warning is part of what was said */
                char *both = NULL;
                if (asprintf(&both, "[%s]\n%s", cw, text) > 0) {
                        free(text);
                        text = both;
                }
        }
        m->text = text;
        const char *at = json_string_value(json_object_get(status, "created_at"));
        if (at)
                omr_time_parse(at, &m->sent_at);
        add_attachments(m, json_object_get(status, "media_attachments"));
        if (m->provider == NULL || m->external_id == NULL || m->customer.id == NULL ||
            m->customer.handle == NULL || m->thread_key == NULL || m->text == NULL) {
                omr_message_free(m);
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        return m;
}

static int by_id(const void *x, const void *y)
{
        const json_t *a = *(const json_t *const *)x, *b = *(const json_t *const *)y;
        return omr_social_id_cmp(json_string_value(json_object_get(a, "id")),
                                 json_string_value(json_object_get(b, "id")));
}

static int parse_notifications(void *ctx, const struct omr_fetch_response *r, const char *cursor,
                               struct omr_poll_page *page, char *err, size_t errlen)
{
        struct social_account *a = ctx;
        if (r->status != 200) {
                snprintf(err, errlen, "unexpected HTTP %ld: %.200s", r->status, r->body);
                return -1;
        }
        json_error_t jerr;
        json_t *arr = json_loadb(r->body, r->body_len, 0, &jerr);
        if (!json_is_array(arr)) {
                snprintf(err, errlen, "the answer is not a JSON array of notifications (%s)",
                         arr ? "another JSON type" : jerr.text);
                json_decref(arr);
                return -1;
        }
        size_t n = json_array_size(arr);
        const json_t **sorted = calloc(n ? n : 1, sizeof(*sorted));
        page->msgs = calloc(n ? n : 1, sizeof(*page->msgs));
        if (sorted == NULL || page->msgs == NULL) {
                free(sorted);
                json_decref(arr);
                snprintf(err, errlen, "out of memory");
                return -1;
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                const json_t *item = json_array_get(arr, i);
                const char *id = json_string_value(json_object_get(item, "id"));
                if (id && *id && strspn(id, "0123456789") == strlen(id))
                        sorted[k++] = item;
                else
                        omr_log(LOG_WARNING, "mastodon",
                                "a notification without a numeric id was skipped source=%s",
                                a->provider);
        }
        /* Newest first on the wire; stored oldest first. */
        qsort(sorted, k, sizeof(*sorted), by_id);
        const char *newest = NULL;
        for (size_t i = 0; i < k; i++) {
                const char *id = json_string_value(json_object_get(sorted[i], "id"));
                if (*cursor && omr_social_id_cmp(id, cursor) <= 0)
                        continue; /* not newer than what is stored */
                newest = id;
                char why[200] = "";
                struct omr_message *m = to_message(a, sorted[i], why, sizeof(why));
                if (m) {
                        page->msgs[page->n++] = m;
                } else if (strcmp(why, "out of memory") == 0) {
                        /* Not the item's fault: the page is asked for again. */
                        free(sorted);
                        json_decref(arr);
                        snprintf(err, errlen, "out of memory");
                        return -1;
                } else if (why[0]) {
                        omr_log(LOG_WARNING, "mastodon", "skipped (%s) source=%s", why,
                                a->provider);
                }
        }
        /* Nothing at the first poll: "0" makes the next one take
         * everything from the beginning (min_id=0), so a first burst bigger
         * than a page is not cut to its newest page. */
        if (newest || !*cursor)
                page->cursor = strdup(newest ? newest : "0");
        /* A full page from min_id means more may wait right behind it. The
         * first poll (no cursor) takes only the newest page. */
        page->more = newest && *cursor && k >= (size_t)a->conf->page_size;
        free(sorted);
        json_decref(arr);
        if ((newest || !*cursor) && page->cursor == NULL) {
                snprintf(err, errlen, "out of memory");
                return -1;
        }
        return 0;
}

const struct omr_poll_source_ops omr_mastodon_poll_ops = {
        .url = notifications_url,
        .parse = parse_notifications,
};

/* --- replies ------------------------------------------------------------ */

static void parse_posted(const struct omr_fetch_response *r, struct omr_send_result *res, char *err,
                         size_t errlen)
{
        json_t *body = json_loadb(r->body, r->body_len, 0, NULL);
        const char *id = json_string_value(json_object_get(body, "id"));
        if (r->status == 200 && id) {
                snprintf(err, errlen, "%s", id);
                res->status = OMR_SEND_SENT;
                res->provider_message_id = err;
        } else {
                const char *msg = json_string_value(json_object_get(body, "error"));
                snprintf(err, errlen, "mastodon HTTP %ld: %s", r->status, msg ? msg : "no error");
                res->status = OMR_SEND_FAILED;
                res->error = err;
        }
        json_decref(body);
}

/* Mastodon does not notify anyone a status does not mention: the reply
 * starts with the customer's @acct unless the agent wrote it already. */
static int mastodon_send(struct omr_connector *c, const struct omr_reply *r, omr_send_done_fn done,
                         void *arg)
{
        struct social_account *a = omr_social_account(c, r->account);
        if (a == NULL)
                return omr_social_fail(done, arg, "the Mastodon account is no longer configured");
        const char *vis = known_visibility(r->thread_ref) ? r->thread_ref : "direct";
        const char *handle = r->to && r->to[0] == '@' ? r->to : NULL;
        char *status = NULL, *idem = NULL;
        if (handle && strncasecmp(r->text, handle, strlen(handle)) != 0) {
                if (asprintf(&status, "%s %s", handle, r->text) < 0)
                        status = NULL;
        } else {
                status = strdup(r->text);
        }
        json_t *body = status ? json_pack("{s:s, s:s}", "status", status, "visibility", vis) : NULL;
        if (body && r->in_reply_to && *r->in_reply_to)
                json_object_set_new(body, "in_reply_to_id", json_string(r->in_reply_to));
        int rc = -ENOMEM;
        /* The same key on every retry: Mastodon posts a status once per key
         * (for an hour), so a retry after a lost answer does not post twice. */
        if (body && asprintf(&idem, "Idempotency-Key: %s", r->reply_id) > 0)
                rc = omr_social_post(c, a, "/api/v1/statuses", body, idem, parse_posted, done, arg);
        else
                json_decref(body);
        free(status);
        free(idem);
        return rc;
}

static const struct omr_conf_social_account *mastodon_accounts(const struct omr_conf *conf,
                                                               size_t *n)
{
        *n = conf->n_mastodon;
        return conf->mastodon;
}

static const struct social_ops ops = {
        .provider = "mastodon",
        .poll = &omr_mastodon_poll_ops,
        .accounts = mastodon_accounts,
};

static int mastodon_start(struct omr_connector *c)
{
        return omr_social_start(c, &ops);
}

const struct omr_connector_ops omr_mastodon_connector = {
        .name = "mastodon",
        .channel = OMR_CHANNEL_SOCIAL,
        .start = mastodon_start,
        .send = mastodon_send,
        .max_text = MAX_STATUS_CHARS,
        .reload = omr_social_reload,
        .stop = omr_social_stop,
        .free = omr_social_stop,
};
