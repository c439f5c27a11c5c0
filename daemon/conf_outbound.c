/* conf_outbound.c — configuration sections of the outbound path and the
 * SMS providers: api.tokens, outbound, connectors.twilio,
 * connectors.vonage. Same rules as conf.c: typed, validated once, every
 * error with file:line. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conf_yaml.h"
#include "omniroute/signature.h"

/* Setters: one per field, generated, so the key tables stay readable. */
#define STRING_FIELD(fn, type, member, what)                                                       \
        static int fn(struct cy *cy, yaml_node_t *v, void *obj)                                    \
        {                                                                                          \
                return cy_string(cy, v, what, &((type *)obj)->member);                             \
        }
#define SECRET_FIELD(fn, type, member, what)                                                       \
        static int fn(struct cy *cy, yaml_node_t *v, void *obj)                                    \
        {                                                                                          \
                return cy_secret(cy, v, what, &((type *)obj)->member, NULL);                       \
        }

static bool valid_name(const char *s)
{
        return omr_conf_valid_queue_name(s);
}

/* A base URL: http(s)://…, stored without a trailing slash so paths can be
 * appended. */
static int base_url(struct cy *cy, yaml_node_t *v, const char *what, char **out)
{
        if (cy_string(cy, v, what, out))
                return -1;
        char *u = *out;
        const char *host = strncmp(u, "https://", 8) == 0  ? u + 8
                           : strncmp(u, "http://", 7) == 0 ? u + 7
                                                           : NULL;
        /* Paths are appended to it: a host is needed, and no query,
         * fragment or white space. */
        if (host == NULL || *host == '\0' || *host == '/' || *host == ':' ||
            strpbrk(u, " \t?#") != NULL) {
                cy_error(cy, v,
                         "'%s' must be http(s)://host[:port][/path] without a query, got '%s'",
                         what, u);
                return -1;
        }
        size_t n = strlen(u);
        while (n > 0 && u[n - 1] == '/')
                u[--n] = '\0';
        return 0;
}

/* --- api.tokens ---------------------------------------------------------- */

STRING_FIELD(token_name, struct omr_conf_token, name, "api.tokens[].name")

static int token_file(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_token *t = obj;
        if (cy_secret(cy, v, "token_file", &t->token, &t->token_len))
                return -1;
        if (t->token_len < 16) {
                cy_error(cy, v, "the token in 'token_file' is shorter than 16 bytes");
                return -1;
        }
        return 0;
}

/* Sequences of named mappings share this walk: allocate, parse each item
 * with its key table, require the listed members, refuse duplicate names. */
int cy_named_seq(struct cy *cy, yaml_node_t *v, const struct seq_spec *sp, void **items,
                 size_t *n_items)
{
        if (v->type != YAML_SEQUENCE_NODE) {
                cy_error(cy, v, "'%s' must be a list", sp->section);
                return -1;
        }
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        char *arr = calloc(n ? n : 1, sp->item_size);
        if (arr == NULL)
                return -1;
        *items = arr;
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item =
                        yaml_document_get_node(&cy->doc, v->data.sequence.items.start[i]);
                char *it = arr + i * sp->item_size;
                (*n_items)++;
                *(int *)(it + sp->line_offset) = cy_line(item);
                if (cy_mapping(cy, item, sp->section, sp->keys, it) != 0) {
                        rc = -1;
                        continue;
                }
                const char *name = *(char **)(it + sp->name_offset);
                if (!sp->complete(it)) {
                        cy_error(cy, item, "%s", sp->required);
                        rc = -1;
                        continue;
                }
                if (!valid_name(name)) {
                        cy_error(cy, item, "name '%s' must be 1-64 of [A-Za-z0-9_.-]", name);
                        rc = -1;
                        continue;
                }
                for (size_t k = 0; k < i; k++) {
                        const char *other = *(char **)(arr + k * sp->item_size + sp->name_offset);
                        if (other && strcmp(other, name) == 0) {
                                cy_error(cy, item, "'%s' is defined twice in '%s'", name,
                                         sp->section);
                                rc = -1;
                        }
                }
        }
        return rc;
}

static int token_agent(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_token *t = obj;
        if (cy_string(cy, v, "api.tokens[].agent", &t->agent))
                return -1;
        if (!omr_conf_valid_agent_id(t->agent)) {
                cy_error(cy, v, "agent id '%s' must be 1-64 of [A-Za-z0-9_.@-]", t->agent);
                return -1;
        }
        return 0;
}

static bool token_complete(const void *p)
{
        const struct omr_conf_token *t = p;
        return t->name && t->token;
}

static int sec_tokens(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {{"name", token_name},
                                             {"token_file", token_file},
                                             {"agent", token_agent},
                                             {NULL, NULL}};
        static const struct seq_spec spec = {
                "api.tokens[]",
                keys,
                sizeof(struct omr_conf_token),
                offsetof(struct omr_conf_token, name),
                offsetof(struct omr_conf_token, line),
                "a token needs 'name' and 'token_file'",
                token_complete,
        };
        struct omr_conf *c = obj;
        return cy_named_seq(cy, v, &spec, (void **)&c->tokens, &c->n_tokens);
}

/* The top-level `api:` section holds only tokens today. */
static int api_tokens(struct cy *cy, yaml_node_t *v, void *obj)
{
        return sec_tokens(cy, v, obj);
}

/* --- outbound -------------------------------------------------------------- */

static int out_give_up(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return cy_duration_ms(cy, v, "outbound.give_up_after", &c->outbound.give_up_after_ms);
}

static int out_timeout(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_duration_ms(cy, v, "outbound.request_timeout", &c->outbound.request_timeout_ms))
                return -1;
        if (c->outbound.request_timeout_ms < 100 || c->outbound.request_timeout_ms > 120000) {
                cy_error(cy, v, "'outbound.request_timeout' must be between 100ms and 2m");
                return -1;
        }
        return 0;
}

STRING_FIELD(out_consumer, struct omr_conf, outbound.consumer, "outbound.consumer")

int omr_conf_sec_outbound(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {{"give_up_after", out_give_up},
                                             {"request_timeout", out_timeout},
                                             {"consumer", out_consumer},
                                             {NULL, NULL}};
        return cy_mapping(cy, v, "outbound", keys, obj);
}

/* --- connectors.twilio --------------------------------------------------- */

STRING_FIELD(tw_name, struct omr_conf_twilio_account, name, "twilio.accounts[].name")
STRING_FIELD(tw_sid, struct omr_conf_twilio_account, account_sid, "account_sid")
SECRET_FIELD(tw_token, struct omr_conf_twilio_account, auth_token, "auth_token_file")
STRING_FIELD(tw_from, struct omr_conf_twilio_account, from, "from")

static int tw_public_url(struct cy *cy, yaml_node_t *v, void *obj)
{
        return base_url(cy, v, "public_url", &((struct omr_conf_twilio_account *)obj)->public_url);
}

static int tw_api_base(struct cy *cy, yaml_node_t *v, void *obj)
{
        return base_url(cy, v, "api_base", &((struct omr_conf_twilio_account *)obj)->api_base);
}

static bool twilio_complete(const void *p)
{
        const struct omr_conf_twilio_account *a = p;
        return a->name && a->account_sid && a->auth_token && a->public_url && a->from;
}

static int twilio_accounts(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"name", tw_name},
                {"account_sid", tw_sid},
                {"auth_token_file", tw_token},
                {"public_url", tw_public_url},
                {"api_base", tw_api_base},
                {"from", tw_from},
                {NULL, NULL},
        };
        static const struct seq_spec spec = {
                "connectors.twilio.accounts[]",
                keys,
                sizeof(struct omr_conf_twilio_account),
                offsetof(struct omr_conf_twilio_account, name),
                offsetof(struct omr_conf_twilio_account, line),
                "a Twilio account needs name, account_sid, auth_token_file, public_url and from",
                twilio_complete,
        };
        struct omr_conf *c = obj;
        int rc = cy_named_seq(cy, v, &spec, (void **)&c->twilio, &c->n_twilio);
        for (size_t i = 0; i < c->n_twilio; i++)
                if (c->twilio[i].api_base == NULL)
                        c->twilio[i].api_base = strdup("https://api.twilio.com");
        return rc;
}

int omr_conf_sec_twilio(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {{"accounts", twilio_accounts}, {NULL, NULL}};
        return cy_mapping(cy, v, "connectors.twilio", keys, obj);
}

/* --- connectors.vonage --------------------------------------------------- */

STRING_FIELD(vo_name, struct omr_conf_vonage_account, name, "vonage.accounts[].name")
STRING_FIELD(vo_key, struct omr_conf_vonage_account, api_key, "api_key")
SECRET_FIELD(vo_secret, struct omr_conf_vonage_account, api_secret, "api_secret_file")
SECRET_FIELD(vo_sig_secret, struct omr_conf_vonage_account, signature_secret,
             "signature_secret_file")
STRING_FIELD(vo_from, struct omr_conf_vonage_account, from, "from")

static int vo_api_base(struct cy *cy, yaml_node_t *v, void *obj)
{
        return base_url(cy, v, "api_base", &((struct omr_conf_vonage_account *)obj)->api_base);
}

static int vo_method(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const char *const names[] = {
                [OMR_VSIG_MD5HASH] = "md5hash", [OMR_VSIG_MD5] = "md5",
                [OMR_VSIG_SHA1] = "sha1",       [OMR_VSIG_SHA256] = "sha256",
                [OMR_VSIG_SHA512] = "sha512",
        };
        struct omr_conf_vonage_account *a = obj;
        const char *s = cy_scalar(cy, v, "signature_method");
        if (s == NULL)
                return -1;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                if (strcmp(s, names[i]) == 0) {
                        a->signature_method = (enum omr_vonage_sig)i;
                        return 0;
                }
        }
        cy_error(cy, v, "'signature_method' must be md5hash, md5, sha1, sha256 or sha512, got '%s'",
                 s);
        return -1;
}

static int vo_require(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_vonage_account *a = obj;
        a->require_signature_set = true;
        return cy_bool(cy, v, "require_signature", &a->require_signature);
}

static bool vonage_complete(const void *p)
{
        const struct omr_conf_vonage_account *a = p;
        return a->name && a->api_key && a->api_secret && a->from;
}

static int vonage_accounts(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"name", vo_name},
                {"api_key", vo_key},
                {"api_secret_file", vo_secret},
                {"signature_secret_file", vo_sig_secret},
                {"signature_method", vo_method},
                {"require_signature", vo_require},
                {"api_base", vo_api_base},
                {"from", vo_from},
                {NULL, NULL},
        };
        static const struct seq_spec spec = {
                "connectors.vonage.accounts[]",
                keys,
                sizeof(struct omr_conf_vonage_account),
                offsetof(struct omr_conf_vonage_account, name),
                offsetof(struct omr_conf_vonage_account, line),
                "a Vonage account needs name, api_key, api_secret_file and from",
                vonage_complete,
        };
        struct omr_conf *c = obj;
        int rc = cy_named_seq(cy, v, &spec, (void **)&c->vonage, &c->n_vonage);
        for (size_t i = 0; i < c->n_vonage; i++) {
                yaml_node_t *item =
                        yaml_document_get_node(&cy->doc, v->data.sequence.items.start[i]);
                struct omr_conf_vonage_account *a = &c->vonage[i];
                if (a->api_base == NULL)
                        a->api_base = strdup("https://rest.nexmo.com");
                if (!a->require_signature_set)
                        a->require_signature = a->signature_secret != NULL;
                if (a->require_signature && a->signature_secret == NULL && a->name) {
                        cy_error(cy, item,
                                 "vonage account '%s' requires signatures but has no "
                                 "signature_secret_file",
                                 a->name);
                        rc = -1;
                }
        }
        return rc;
}

int omr_conf_sec_vonage(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {{"accounts", vonage_accounts}, {NULL, NULL}};
        return cy_mapping(cy, v, "connectors.vonage", keys, obj);
}

/* --- api section, lookups, free ------------------------------------------ */

int omr_conf_sec_api(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {{"tokens", api_tokens}, {NULL, NULL}};
        return cy_mapping(cy, v, "api", keys, obj);
}

const struct omr_conf_twilio_account *omr_conf_twilio(const struct omr_conf *c, const char *name)
{
        for (size_t i = 0; name && i < c->n_twilio; i++)
                if (strcmp(c->twilio[i].name, name) == 0)
                        return &c->twilio[i];
        return NULL;
}

const struct omr_conf_vonage_account *omr_conf_vonage(const struct omr_conf *c, const char *name)
{
        for (size_t i = 0; name && i < c->n_vonage; i++)
                if (strcmp(c->vonage[i].name, name) == 0)
                        return &c->vonage[i];
        return NULL;
}

const struct omr_conf_token *omr_conf_token_find(const struct omr_conf *c, const char *presented)
{
        const struct omr_conf_token *found = NULL;
        size_t plen = presented ? strlen(presented) : 0;
        /* Every token is compared, so timing does not tell which one is
         * close; HMAC both sides to compare equal-length digests. */
        for (size_t i = 0; presented && i < c->n_tokens; i++) {
                static const unsigned char k[] = "omr-token-compare";
                unsigned char a[64], b[64];
                const void *pa[] = {presented}, *pb[] = {c->tokens[i].token};
                size_t la[] = {plen}, lb[] = {c->tokens[i].token_len};
                size_t na = omr_hmac(OMR_HMAC_SHA256, k, sizeof(k), pa, la, 1, a);
                size_t nb = omr_hmac(OMR_HMAC_SHA256, k, sizeof(k), pb, lb, 1, b);
                if (na && na == nb && omr_ct_equal(a, b, na))
                        found = &c->tokens[i];
        }
        return found;
}

const char *omr_conf_token_match(const struct omr_conf *c, const char *presented)
{
        const struct omr_conf_token *t = omr_conf_token_find(c, presented);
        return t ? t->name : NULL;
}

static void free_secret(char *s)
{
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

void omr_conf_free_outbound(struct omr_conf *c)
{
        for (size_t i = 0; i < c->n_tokens; i++) {
                free(c->tokens[i].name);
                free(c->tokens[i].agent);
                free_secret(c->tokens[i].token);
        }
        free(c->tokens);
        free(c->outbound.consumer);
        for (size_t i = 0; i < c->n_twilio; i++) {
                struct omr_conf_twilio_account *a = &c->twilio[i];
                free(a->name);
                free(a->account_sid);
                free_secret(a->auth_token);
                free(a->public_url);
                free(a->api_base);
                free(a->from);
        }
        free(c->twilio);
        for (size_t i = 0; i < c->n_vonage; i++) {
                struct omr_conf_vonage_account *a = &c->vonage[i];
                free(a->name);
                free(a->api_key);
                free_secret(a->api_secret);
                free_secret(a->signature_secret);
                free(a->api_base);
                free(a->from);
        }
        free(c->vonage);
}
