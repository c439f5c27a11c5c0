/* conf_social.c — connectors.mastodon and connectors.x: polled social
 * accounts (docs/connectors/social.md). Both have the same shape; X also
 * needs the account's user id. Same rules as conf.c: typed, validated
 * once, every error as file:line. */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_yaml.h"

#define ACC(obj) ((struct omr_conf_social_account *)(obj))

static int acc_name(struct cy *cy, yaml_node_t *v, void *obj)
{
        return cy_string(cy, v, "accounts[].name", &ACC(obj)->name);
}

/* http(s)://host[:port][/path], stored without a trailing '/'. */
static int acc_base_url(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_social_account *a = obj;
        if (cy_string(cy, v, "base_url", &a->base_url))
                return -1;
        const char *host = strncmp(a->base_url, "https://", 8) == 0  ? a->base_url + 8
                           : strncmp(a->base_url, "http://", 7) == 0 ? a->base_url + 7
                                                                     : NULL;
        if (host == NULL || *host == '\0' || *host == '/' || strpbrk(a->base_url, " \t?#")) {
                cy_error(cy, v, "'base_url' must be http(s)://host[:port][/path], got '%s'",
                         a->base_url);
                return -1;
        }
        size_t n = strlen(a->base_url);
        while (n > 0 && a->base_url[n - 1] == '/')
                a->base_url[--n] = '\0';
        return 0;
}

static int acc_token(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_social_account *a = obj;
        if (cy_secret(cy, v, "token_file", &a->token, &a->token_len))
                return -1;
        for (size_t i = 0; i < a->token_len; i++)
                if (!isgraph((unsigned char)a->token[i])) {
                        cy_error(cy, v,
                                 "the token in 'token_file' contains a space or control "
                                 "character");
                        return -1;
                }
        return 0;
}

static int acc_user_id(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_social_account *a = obj;
        if (cy_string(cy, v, "user_id", &a->user_id))
                return -1;
        size_t n = strlen(a->user_id);
        if (n == 0 || n > 24 || strspn(a->user_id, "0123456789") != n) {
                cy_error(cy, v, "'user_id' must be the account's numeric id, got '%s'", a->user_id);
                return -1;
        }
        return 0;
}

static int acc_handle(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_social_account *a = obj;
        if (cy_string(cy, v, "handle", &a->handle))
                return -1;
        char *h = a->handle + (a->handle[0] == '@');
        memmove(a->handle, h, strlen(h) + 1);
        for (const char *p = a->handle; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("_.-@", *p)) {
                        cy_error(cy, v, "'handle' must be a user name like brand or brand@host");
                        return -1;
                }
        return 0;
}

static int acc_poll(struct cy *cy, yaml_node_t *v, void *obj)
{
        return cy_duration_within(cy, v, "poll_interval", "100ms", "1d", &ACC(obj)->poll_ms);
}

static int acc_lease(struct cy *cy, yaml_node_t *v, void *obj)
{
        return cy_duration_within(cy, v, "lease", "300ms", "1h", &ACC(obj)->lease_ms);
}

static int acc_timeout(struct cy *cy, yaml_node_t *v, void *obj)
{
        return cy_duration_within(cy, v, "timeout", "1s", "5m", &ACC(obj)->timeout_ms);
}

static int acc_page_size(struct cy *cy, yaml_node_t *v, void *obj)
{
        long long n;
        if (cy_int(cy, v, "page_size", 1, 100, &n))
                return -1;
        ACC(obj)->page_size = (long)n;
        return 0;
}

static bool acc_complete(const void *p)
{
        const struct omr_conf_social_account *a = p;
        return a->name && a->base_url && a->token;
}

static const struct cy_key acc_keys[] = {
        {"name", acc_name},           {"base_url", acc_base_url},
        {"token_file", acc_token},    {"user_id", acc_user_id},
        {"handle", acc_handle},       {"poll_interval", acc_poll},
        {"lease", acc_lease},         {"timeout", acc_timeout},
        {"page_size", acc_page_size}, {NULL, NULL},
};

/* connectors.<provider>.accounts, with the provider's page-size range. */
static int accounts(struct cy *cy, yaml_node_t *v, const char *section,
                    struct omr_conf_social_account **out, size_t *n_out, long min_page,
                    long max_page, long default_page, bool needs_user_id)
{
        const struct seq_spec spec = {
                section,
                acc_keys,
                sizeof(struct omr_conf_social_account),
                offsetof(struct omr_conf_social_account, name),
                offsetof(struct omr_conf_social_account, line),
                "an account needs name, base_url and token_file",
                acc_complete,
        };
        if (cy_named_seq(cy, v, &spec, (void **)out, n_out))
                return -1;
        int rc = 0;
        for (size_t i = 0; i < *n_out; i++) {
                struct omr_conf_social_account *a = &(*out)[i];
                if (a->poll_ms == 0)
                        a->poll_ms = 60000;
                if (a->lease_ms == 0)
                        a->lease_ms = 30000;
                if (a->timeout_ms == 0)
                        a->timeout_ms = 20000;
                if (a->page_size == 0)
                        a->page_size = default_page;
                if (a->handle == NULL)
                        a->handle = strdup("");
                if (a->page_size < min_page || a->page_size > max_page) {
                        cy_error(cy, v, "%s %s: 'page_size' must be %ld..%ld", section, a->name,
                                 min_page, max_page);
                        rc = -1;
                }
                if (needs_user_id && a->user_id == NULL) {
                        cy_error(cy, v, "%s %s needs 'user_id' (the numeric id of the account)",
                                 section, a->name);
                        rc = -1;
                }
                if (!needs_user_id && a->user_id != NULL) {
                        cy_error(cy, v, "%s %s: 'user_id' is for X accounts only", section,
                                 a->name);
                        rc = -1;
                }
        }
        return rc;
}

static int mastodon_accounts(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        /* Mastodon's notifications take limit ≤ 80 (default 40). */
        return accounts(cy, v, "connectors.mastodon.accounts[]", &c->mastodon, &c->n_mastodon, 1,
                        80, 40, false);
}

static int x_accounts(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        /* X's mentions take max_results 5..100. */
        return accounts(cy, v, "connectors.x.accounts[]", &c->x, &c->n_x, 5, 100, 100, true);
}

int omr_conf_sec_mastodon(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {{"accounts", mastodon_accounts}, {NULL, NULL}};
        return cy_mapping(cy, v, "connectors.mastodon", keys, obj);
}

int omr_conf_sec_x(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {{"accounts", x_accounts}, {NULL, NULL}};
        return cy_mapping(cy, v, "connectors.x", keys, obj);
}

static void free_accounts(struct omr_conf_social_account *a, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(a[i].name);
                free(a[i].base_url);
                if (a[i].token) {
                        explicit_bzero(a[i].token, a[i].token_len);
                        free(a[i].token);
                }
                free(a[i].user_id);
                free(a[i].handle);
        }
        free(a);
}

void omr_conf_free_social(struct omr_conf *c)
{
        free_accounts(c->mastodon, c->n_mastodon);
        free_accounts(c->x, c->n_x);
}

static const struct omr_conf_social_account *find(const struct omr_conf_social_account *a, size_t n,
                                                  const char *name)
{
        for (size_t i = 0; name && i < n; i++)
                if (strcmp(a[i].name, name) == 0)
                        return &a[i];
        return NULL;
}

const struct omr_conf_social_account *omr_conf_mastodon(const struct omr_conf *c, const char *name)
{
        return find(c->mastodon, c->n_mastodon, name);
}

const struct omr_conf_social_account *omr_conf_x(const struct omr_conf *c, const char *name)
{
        return find(c->x, c->n_x, name);
}
