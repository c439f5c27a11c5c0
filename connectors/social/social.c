/* social.c — the part of the Mastodon and X connectors that is the same:
 * accounts from the config, one poller each (daemon/poller.c), restarted
 * as a whole on reload (a changed token or interval takes effect, and a
 * disabled account gets another chance), and post text clean-up. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "omniroute/fetch.h"
#include "omniroute/html.h"
#include "omniroute/log.h"
#include "omniroute/text.h"
#include "social/social.h"

#define SOCIAL_MAGIC 0x534f4331u

struct social_conn {
        unsigned magic;
        const struct social_ops *ops;
        struct social_account *accts;
        size_t n;
};

static struct social_conn *conn_of(struct omr_connector *c)
{
        struct social_conn *sc = c->priv;
        if (sc && sc->magic != SOCIAL_MAGIC)
                abort();
        return sc;
}

void omr_social_round_clear(struct social_account *a)
{
        for (size_t i = 0; i < a->n_pending; i++)
                omr_message_free(a->pending[i]);
        free(a->pending);
        a->pending = NULL;
        a->n_pending = a->cap_pending = 0;
        free(a->next_token);
        free(a->newest_id);
        a->next_token = a->newest_id = NULL;
}

static void stop_accounts(struct social_conn *sc)
{
        for (size_t i = 0; i < sc->n; i++) {
                struct social_account *a = &sc->accts[i];
                omr_poller_free(a->poller); /* no calls into a after this */
                omr_social_round_clear(a);
                if (a->auth) {
                        explicit_bzero(a->auth, strlen(a->auth));
                        free(a->auth);
                }
        }
        free(sc->accts);
        sc->accts = NULL;
        sc->n = 0;
}

char *omr_social_bearer(const struct omr_conf_social_account *a)
{
        char *h = NULL;
        if (asprintf(&h, "Authorization: Bearer %s", a->token) < 0)
                return NULL;
        return h;
}

static int start_accounts(struct omr_connector *c, struct social_conn *sc,
                          const struct omr_conf *conf)
{
        size_t n = 0;
        const struct omr_conf_social_account *list = sc->ops->accounts(conf, &n);
        if (n == 0)
                return 0;
        sc->accts = calloc(n, sizeof(*sc->accts));
        if (sc->accts == NULL)
                return -1;
        for (size_t i = 0; i < n; i++) {
                struct social_account *a = &sc->accts[sc->n++];
                a->c = c;
                a->conf = &list[i];
                snprintf(a->provider, sizeof(a->provider), "%s:%s", sc->ops->provider,
                         list[i].name);
                a->auth = omr_social_bearer(&list[i]);
                const char *headers[] = {a->auth, "Accept: application/json", NULL};
                struct omr_poll_source src = {
                        .name = a->provider,
                        .ops = sc->ops->poll,
                        .ctx = a,
                        .headers = headers,
                        .interval_ms = list[i].poll_ms,
                        .lease_ms = list[i].lease_ms,
                        .timeout_ms = list[i].timeout_ms,
                };
                if (a->auth == NULL || (a->poller = omr_poller_start(c->core, &src)) == NULL)
                        return -1;
                omr_log(LOG_INFO, sc->ops->provider,
                        "polling source=%s every %lldms (lease %lldms) from %s", a->provider,
                        (long long)list[i].poll_ms, (long long)list[i].lease_ms, list[i].base_url);
        }
        return 0;
}

int omr_social_start(struct omr_connector *c, const struct social_ops *ops)
{
        struct social_conn *sc = calloc(1, sizeof(*sc));
        if (sc == NULL)
                return -1;
        sc->magic = SOCIAL_MAGIC;
        sc->ops = ops;
        c->priv = sc;
        return start_accounts(c, sc, omr_core_conf(c->core));
}

void omr_social_reload(struct omr_connector *c, const struct omr_conf *conf)
{
        struct social_conn *sc = conn_of(c);
        if (sc == NULL)
                return;
        stop_accounts(sc);
        if (start_accounts(c, sc, conf) != 0)
                omr_log(LOG_ERR, sc->ops->provider, "out of memory: some accounts are not polled");
}

void omr_social_stop(struct omr_connector *c)
{
        struct social_conn *sc = conn_of(c);
        if (sc == NULL)
                return;
        stop_accounts(sc);
        sc->magic = 0;
        free(sc);
        c->priv = NULL;
}

struct social_account *omr_social_account(struct omr_connector *c, const char *name)
{
        struct social_conn *sc = conn_of(c);
        for (size_t i = 0; sc && name && i < sc->n; i++)
                if (strcmp(sc->accts[i].conf->name, name) == 0)
                        return &sc->accts[i];
        return NULL;
}

int omr_social_post(struct omr_connector *c, const struct social_account *a, const char *path,
                    json_t *body, const char *extra_header, omr_send_parse_fn parse,
                    omr_send_done_fn done, void *arg)
{
        char *json = body ? json_dumps(body, JSON_COMPACT) : NULL;
        char *url = NULL;
        int rc = -ENOMEM;
        if (json && asprintf(&url, "%s%s", a->conf->base_url, path) > 0) {
                const char *headers[] = {a->auth, extra_header, NULL};
                struct omr_fetch_request fr = {
                        .method = "POST",
                        .url = url,
                        .content_type = "application/json",
                        .body = json,
                        .body_len = strlen(json),
                        .headers = headers,
                        .timeout_ms = (long)omr_core_conf(c->core)->outbound.request_timeout_ms,
                };
                rc = omr_send_http(c->core, c->ops->name, &fr, parse, done, arg);
                free(url);
        }
        json_decref(body);
        free(json);
        return rc;
}

int omr_social_fail(omr_send_done_fn done, void *arg, const char *why)
{
        struct omr_send_result res = {
                .status = OMR_SEND_FAILED, .error = why, .retry_after_ms = -1};
        done(&res, arg);
        return 0;
}

int omr_social_id_cmp(const char *a, const char *b)
{
        while (*a == '0' && a[1])
                a++;
        while (*b == '0' && b[1])
                b++;
        size_t la = strlen(a), lb = strlen(b);
        if (la != lb)
                return la < lb ? -1 : 1;
        int c = strcmp(a, b);
        return (c > 0) - (c < 0);
}

/* Whether s starts with @handle (or @handle@host) as a whole word;
 * *len is its length. */
static bool own_mention(const char *s, const char *handle, size_t *len)
{
        size_t hn = strlen(handle);
        if (s[0] != '@' || hn == 0 || strncasecmp(s + 1, handle, hn) != 0)
                return false;
        const char *e = s + 1 + hn;
        if (*e == '@' && strchr(handle, '@') == NULL) /* @brand@host */
                while (*e && !isspace((unsigned char)*e))
                        e++;
        if (*e && !isspace((unsigned char)*e) && !strchr(",:", *e))
                return false; /* @brandnew is someone else */
        if (*e == ',' || *e == ':')
                e++;
        *len = (size_t)(e - s);
        return true;
}

char *omr_social_text(const char *s, bool html, const char *handle)
{
        char *t = html ? omr_html_to_text(s, strlen(s)) : strdup(s);
        if (t == NULL)
                return NULL;
        /* Among the leading mentions ("@brand @alice hi"), drop ours: the
         * post was addressed to us, that is why it is here. */
        char *p = t;
        size_t n;
        while (*p) {
                while (isspace((unsigned char)*p))
                        p++;
                if (*p != '@')
                        break;
                if (own_mention(p, handle ? handle : "", &n)) {
                        memmove(p, p + n, strlen(p + n) + 1);
                        continue;
                }
                while (*p && !isspace((unsigned char)*p))
                        p++; /* someone else's mention stays */
        }
        char *trimmed = omr_text_trim_or_empty(t);
        free(t);
        return trimmed;
}
