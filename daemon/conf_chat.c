/* conf_chat.c — the connectors.chat section: the session-token key,
 * limits, and the sites whose pages may open a chat (by Origin). */
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "conf_yaml.h"

static int chat_secret(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        char *s = NULL;
        if (cy_secret(cy, v, "chat.session_secret_file", &s, &c->chat.secret_len))
                return -1;
        c->chat.secret = (unsigned char *)s;
        if (c->chat.secret_len < 16) {
                cy_error(cy, v, "the key in 'chat.session_secret_file' is shorter than 16 bytes");
                return -1;
        }
        return 0;
}

static int chat_ttl(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return cy_duration_within(cy, v, "chat.session_ttl", "1m", "90d", &c->chat.session_ttl_ms);
}

static int chat_max_message(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_size(cy, v, "chat.max_message", &c->chat.max_message))
                return -1;
        if (c->chat.max_message < 1024 || c->chat.max_message > (1u << 20)) {
                cy_error(cy, v, "'chat.max_message' must be between 1KiB and 1MiB");
                return -1;
        }
        return 0;
}

static int chat_ping(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return cy_duration_within(cy, v, "chat.ping_interval", "200ms", "10m", &c->chat.ping_ms);
}

static int site_name(struct cy *cy, yaml_node_t *v, void *obj)
{
        return cy_string(cy, v, "chat.sites[].name", &((struct omr_conf_chat_site *)obj)->name);
}

static int site_origins(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_chat_site *s = obj;
        if (cy_string_list(cy, v, "chat.sites[].origins", &s->origins, &s->n_origins))
                return -1;
        for (size_t i = 0; i < s->n_origins; i++) {
                const char *o = s->origins[i];
                const char *host = strncmp(o, "https://", 8) == 0  ? o + 8
                                   : strncmp(o, "http://", 7) == 0 ? o + 7
                                                                   : NULL;
                bool ok = host && *host && strpbrk(host, "/ \t?#") == NULL;
                if (!ok) {
                        cy_error(cy, v, "origin '%s' must be scheme://host[:port], no path", o);
                        return -1;
                }
        }
        return 0;
}

static bool site_complete(const void *p)
{
        const struct omr_conf_chat_site *s = p;
        return s->name && s->n_origins > 0;
}

static int chat_sites(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"name", site_name}, {"origins", site_origins}, {NULL, NULL}};
        static const struct seq_spec spec = {
                "connectors.chat.sites[]",
                keys,
                sizeof(struct omr_conf_chat_site),
                offsetof(struct omr_conf_chat_site, name),
                offsetof(struct omr_conf_chat_site, line),
                "a chat site needs name and origins",
                site_complete,
        };
        struct omr_conf *c = obj;
        return cy_named_seq(cy, v, &spec, (void **)&c->chat.sites, &c->chat.n_sites);
}

static int offline_mailbox(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        const char *s = cy_scalar(cy, v, "chat.offline_email.mailbox");
        if (s == NULL)
                return -1;
        if (!omr_conf_valid_queue_name(s)) {
                cy_error(cy, v, "'chat.offline_email.mailbox' must name an email mailbox");
                return -1;
        }
        free(c->chat.offline_email_provider);
        if (asprintf(&c->chat.offline_email_provider, "email:%s", s) < 0)
                c->chat.offline_email_provider = NULL;
        return c->chat.offline_email_provider ? 0 : -1;
}

static int offline_after(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return cy_duration_within(cy, v, "chat.offline_email.after", "1s", "7d",
                                  &c->chat.offline_email_after_ms);
}

/* A reply the visitor has not seen after `after` is emailed to the address
 * they left, through that mailbox's SMTP (docs/connectors/chat.md). */
static int chat_offline(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"mailbox", offline_mailbox}, {"after", offline_after}, {NULL, NULL}};
        struct omr_conf *c = obj;
        c->chat.offline_email_after_ms = 10 * 60000;
        if (cy_mapping(cy, v, "connectors.chat.offline_email", keys, obj))
                return -1;
        if (c->chat.offline_email_provider == NULL) {
                cy_error(cy, v, "'offline_email' needs 'mailbox'");
                return -1;
        }
        return 0;
}

int omr_conf_sec_chat(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"session_secret_file", chat_secret},
                {"session_ttl", chat_ttl},
                {"max_message", chat_max_message},
                {"ping_interval", chat_ping},
                {"sites", chat_sites},
                {"offline_email", chat_offline},
                {NULL, NULL},
        };
        struct omr_conf *c = obj;
        c->chat.session_ttl_ms = 86400000;
        c->chat.max_message = 16 * 1024;
        c->chat.ping_ms = 25000;
        if (cy_mapping(cy, v, "connectors.chat", keys, obj))
                return -1;
        if (c->chat.n_sites && c->chat.secret == NULL) {
                cy_error(cy, v, "'connectors.chat' needs 'session_secret_file'");
                return -1;
        }
        return 0;
}

void omr_conf_free_chat(struct omr_conf *c)
{
        for (size_t i = 0; i < c->chat.n_sites; i++) {
                free(c->chat.sites[i].name);
                for (size_t k = 0; k < c->chat.sites[i].n_origins; k++)
                        free(c->chat.sites[i].origins[k]);
                free(c->chat.sites[i].origins);
        }
        free(c->chat.sites);
        free(c->chat.offline_email_provider);
        if (c->chat.secret) {
                explicit_bzero(c->chat.secret, c->chat.secret_len);
                free(c->chat.secret);
        }
        memset(&c->chat, 0, sizeof(c->chat));
}

const struct omr_conf_chat_site *omr_conf_chat_site(const struct omr_conf *c, const char *name)
{
        for (size_t i = 0; name && i < c->chat.n_sites; i++)
                if (strcmp(c->chat.sites[i].name, name) == 0)
                        return &c->chat.sites[i];
        return NULL;
}
