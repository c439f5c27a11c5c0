/* conf_meta.c — the connectors.meta section: Meta apps (Messenger,
 * Instagram) whose webhooks come to /v1/meta/{app}, each with its app
 * secret (X-Hub-Signature-256), the verify token of the subscription
 * handshake, the Graph API base and the pages / Instagram accounts it
 * answers for, each with its own access token. Same rules as conf.c:
 * typed, validated once, every error as file:line; secrets are wiped when
 * the configuration is freed. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conf_yaml.h"

#define DEFAULT_GRAPH_BASE "https://graph.facebook.com/v21.0"
#define MAX_PAGE_ID_LEN    32
#define MAX_PAGES          100

static void free_secret(void *s, size_t len)
{
        if (s) {
                explicit_bzero(s, len);
                free(s);
        }
}

static int app_name(struct cy *cy, yaml_node_t *v, void *obj)
{
        return cy_string(cy, v, "meta.apps[].name", &((struct omr_conf_meta_app *)obj)->name);
}

static int app_secret(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_meta_app *a = obj;
        char *s = NULL;
        size_t len = 0;
        if (cy_secret(cy, v, "app_secret_file", &s, &len))
                return -1;
        free_secret(a->app_secret, a->app_secret_len);
        a->app_secret = (unsigned char *)s;
        a->app_secret_len = len;
        return 0;
}

static int app_verify_token(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_meta_app *a = obj;
        char *s = NULL;
        if (cy_secret(cy, v, "verify_token_file", &s, NULL))
                return -1;
        free_secret(a->verify_token, a->verify_token ? strlen(a->verify_token) : 0);
        a->verify_token = s;
        return 0;
}

/* http(s)://host[:port][/path], stored without a trailing slash so that
 * "/{page}/messages" can be appended. */
static int app_graph_base(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_meta_app *a = obj;
        if (cy_string(cy, v, "graph_base", &a->graph_base))
                return -1;
        char *u = a->graph_base;
        const char *host = strncmp(u, "https://", 8) == 0  ? u + 8
                           : strncmp(u, "http://", 7) == 0 ? u + 7
                                                           : NULL;
        if (host == NULL || *host == '\0' || *host == '/' || *host == ':' ||
            strpbrk(u, " \t\r\n?#") != NULL) {
                cy_error(cy, v,
                         "'graph_base' must be http(s)://host[:port][/path] without a query, "
                         "got '%s'",
                         u);
                return -1;
        }
        size_t n = strlen(u);
        while (n > 0 && u[n - 1] == '/')
                u[--n] = '\0';
        return 0;
}

/* --- pages ------------------------------------------------------------------ */

static int page_id(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_meta_page *p = obj;
        if (cy_string(cy, v, "meta.apps[].pages[].id", &p->id))
                return -1;
        size_t n = strlen(p->id);
        if (n == 0 || n > MAX_PAGE_ID_LEN || strspn(p->id, "0123456789") != n) {
                cy_error(cy, v,
                         "page id '%s' must be the page's or Instagram account's numeric id "
                         "(1-%d digits)",
                         p->id, MAX_PAGE_ID_LEN);
                return -1;
        }
        return 0;
}

static int page_token(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_meta_page *p = obj;
        char *s = NULL;
        size_t len = 0;
        if (cy_secret(cy, v, "meta.apps[].pages[].token_file", &s, &len))
                return -1;
        if (strpbrk(s, "\r\n") != NULL) {
                cy_error(cy, v, "the token in 'token_file' must be one line");
                free_secret(s, len);
                return -1;
        }
        free_secret(p->token, p->token_len);
        p->token = s;
        p->token_len = len;
        return 0;
}

static int app_pages(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"id", page_id}, {"token_file", page_token}, {NULL, NULL}};
        struct omr_conf_meta_app *a = obj;
        if (v->type != YAML_SEQUENCE_NODE) {
                cy_error(cy, v, "'meta.apps[].pages' must be a list");
                return -1;
        }
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (n == 0 || n > MAX_PAGES) {
                cy_error(cy, v, "'meta.apps[].pages' must list 1-%d pages", MAX_PAGES);
                return -1;
        }
        a->pages = calloc(n, sizeof(*a->pages));
        if (a->pages == NULL)
                return -1;
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item =
                        yaml_document_get_node(&cy->doc, v->data.sequence.items.start[i]);
                struct omr_conf_meta_page *p = &a->pages[i];
                a->n_pages++; /* freed with the app even when only half read */
                if (cy_mapping(cy, item, "connectors.meta.apps[].pages[]", keys, p) != 0) {
                        rc = -1;
                        continue;
                }
                if (p->id == NULL || p->token == NULL) {
                        cy_error(cy, item, "a page needs id and token_file");
                        rc = -1;
                        continue;
                }
                for (size_t k = 0; k < i; k++)
                        if (a->pages[k].id && strcmp(a->pages[k].id, p->id) == 0) {
                                cy_error(cy, item, "page '%s' is listed twice", p->id);
                                rc = -1;
                        }
        }
        return rc;
}

/* --- apps ------------------------------------------------------------------- */

static bool app_complete(const void *p)
{
        const struct omr_conf_meta_app *a = p;
        return a->name && a->app_secret && a->verify_token && a->n_pages > 0;
}

static int meta_apps(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"name", app_name},
                {"app_secret_file", app_secret},
                {"verify_token_file", app_verify_token},
                {"graph_base", app_graph_base},
                {"pages", app_pages},
                {NULL, NULL},
        };
        static const struct seq_spec spec = {
                "connectors.meta.apps[]",
                keys,
                sizeof(struct omr_conf_meta_app),
                offsetof(struct omr_conf_meta_app, name),
                offsetof(struct omr_conf_meta_app, line),
                "a Meta app needs name, app_secret_file, verify_token_file and pages",
                app_complete,
        };
        struct omr_conf *c = obj;
        if (c->meta != NULL) {
                cy_error(cy, v, "'connectors.meta.apps' is given twice");
                return -1;
        }
        int rc = cy_named_seq(cy, v, &spec, (void **)&c->meta, &c->n_meta);
        for (size_t i = 0; i < c->n_meta; i++) {
                struct omr_conf_meta_app *a = &c->meta[i];
                if (a->graph_base == NULL && (a->graph_base = strdup(DEFAULT_GRAPH_BASE)) == NULL)
                        rc = -1;
        }
        return rc;
}

int omr_conf_sec_meta(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {{"apps", meta_apps}, {NULL, NULL}};
        return cy_mapping(cy, v, "connectors.meta", keys, obj);
}

void omr_conf_free_meta(struct omr_conf *c)
{
        for (size_t i = 0; i < c->n_meta; i++) {
                struct omr_conf_meta_app *a = &c->meta[i];
                free(a->name);
                free_secret(a->app_secret, a->app_secret_len);
                free_secret(a->verify_token, a->verify_token ? strlen(a->verify_token) : 0);
                free(a->graph_base);
                for (size_t k = 0; k < a->n_pages; k++) {
                        free(a->pages[k].id);
                        free_secret(a->pages[k].token, a->pages[k].token_len);
                }
                free(a->pages);
        }
        free(c->meta);
        c->meta = NULL;
        c->n_meta = 0;
}

const struct omr_conf_meta_app *omr_conf_meta(const struct omr_conf *c, const char *name)
{
        for (size_t i = 0; name && i < c->n_meta; i++)
                if (c->meta[i].name && strcmp(c->meta[i].name, name) == 0)
                        return &c->meta[i];
        return NULL;
}
