/* conf_notify.c — the `notify` section: where agents' tools hear about
 * offers and assignments (signed webhooks, Slack-compatible webhooks,
 * email to the agent). Same rules as conf.c: typed, validated once, every
 * error with file:line. */
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conf_yaml.h"

/* Event types worth telling an agent about, and the default. */
static const char *const EVENT_TYPES[] = {
        "conversation.offered",
        "conversation.assigned",
        "conversation.transferred",
        "conversation.customer_replied",
        "conversation.reopened",
        "conversation.resolved",
        "conversation.offer_expired",
        "conversation.claim_expired",
        "sla.warning",
        "sla.breached",
        "conversation.escalated",
        "conversation.acknowledged",
        NULL,
};

static int event_list(struct cy *cy, yaml_node_t *v, const char *what, char ***out, size_t *n)
{
        if (cy_string_list(cy, v, what, out, n))
                return -1;
        if (*n == 0) {
                cy_error(cy, v, "'%s' must not be empty", what);
                return -1;
        }
        for (size_t i = 0; i < *n; i++) {
                size_t k = 0;
                while (EVENT_TYPES[k] && strcmp(EVENT_TYPES[k], (*out)[i]) != 0)
                        k++;
                if (EVENT_TYPES[k] == NULL) {
                        cy_error(cy, v,
                                 "'%s' is not an event agents are told about (e.g. "
                                 "conversation.offered, conversation.assigned)",
                                 (*out)[i]);
                        return -1;
                }
        }
        return 0;
}

static int default_events(char ***out, size_t *n)
{
        if (*n)
                return 0;
        *out = calloc(2, sizeof(char *));
        if (*out == NULL || !((*out)[0] = strdup("conversation.offered")) ||
            !((*out)[1] = strdup("conversation.assigned")))
                return -1;
        *n = 2;
        return 0;
}

/* --- webhooks --------------------------------------------------------------- */

static int wh_name(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_webhook *w = obj;
        if (cy_string(cy, v, "notify.webhooks[].name", &w->name))
                return -1;
        if (!omr_conf_valid_queue_name(w->name)) {
                cy_error(cy, v, "webhook name '%s' must be 1-64 of [A-Za-z0-9_.-]", w->name);
                return -1;
        }
        return 0;
}

static int check_url(struct cy *cy, yaml_node_t *v, const char *u)
{
        if ((strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0) ||
            strpbrk(u, " \t\r\n") != NULL) {
                cy_error(cy, v, "a webhook url must be http(s)://… without spaces");
                return -1;
        }
        return 0;
}

static int wh_url(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_webhook *w = obj;
        if (w->url) {
                cy_error(cy, v, "give either 'url' or 'url_file'");
                return -1;
        }
        return cy_string(cy, v, "notify.webhooks[].url", &w->url) || check_url(cy, v, w->url);
}

static int wh_url_file(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_webhook *w = obj;
        if (w->url) {
                cy_error(cy, v, "give either 'url' or 'url_file'");
                return -1;
        }
        return cy_secret(cy, v, "notify.webhooks[].url_file", &w->url, NULL) ||
               check_url(cy, v, w->url);
}

static int wh_format(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_webhook *w = obj;
        const char *s = cy_scalar(cy, v, "notify.webhooks[].format");
        if (s && (strcmp(s, "json") == 0 || strcmp(s, "slack") == 0)) {
                w->format = strcmp(s, "slack") == 0 ? OMR_NOTIFY_SLACK : OMR_NOTIFY_JSON;
                return 0;
        }
        if (s)
                cy_error(cy, v, "a webhook's 'format' is json or slack, got '%s'", s);
        return -1;
}

static int wh_secret(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_webhook *w = obj;
        return cy_secret(cy, v, "notify.webhooks[].secret_file", (char **)&w->secret,
                         &w->secret_len);
}

static int wh_teams(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_webhook *w = obj;
        if (cy_string_list(cy, v, "notify.webhooks[].teams", &w->teams, &w->n_teams))
                return -1;
        /* Agents' teams are stored lower-case (free tags, like skills). */
        for (size_t i = 0; i < w->n_teams; i++)
                for (char *p = w->teams[i]; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
        return 0;
}

static int wh_agents(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_webhook *w = obj;
        return cy_string_list(cy, v, "notify.webhooks[].agents", &w->agents, &w->n_agents);
}

static int wh_events(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_webhook *w = obj;
        return event_list(cy, v, "notify.webhooks[].events", &w->events, &w->n_events);
}

static bool webhook_complete(const void *p)
{
        const struct omr_conf_webhook *w = p;
        return w->name && w->url;
}

static int notify_webhooks(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"name", wh_name},
                {"url", wh_url},
                {"url_file", wh_url_file},
                {"format", wh_format},
                {"secret_file", wh_secret},
                {"teams", wh_teams},
                {"agents", wh_agents},
                {"events", wh_events},
                {NULL, NULL},
        };
        static const struct seq_spec spec = {
                "notify.webhooks[]",
                keys,
                sizeof(struct omr_conf_webhook),
                offsetof(struct omr_conf_webhook, name),
                offsetof(struct omr_conf_webhook, line),
                "a webhook needs 'name' and 'url' (or 'url_file')",
                webhook_complete,
        };
        struct omr_conf *c = obj;
        int rc = cy_named_seq(cy, v, &spec, (void **)&c->notify.webhooks, &c->notify.n_webhooks);
        for (size_t i = 0; i < c->notify.n_webhooks; i++) {
                struct omr_conf_webhook *w = &c->notify.webhooks[i];
                if (default_events(&w->events, &w->n_events))
                        rc = -1;
        }
        return rc;
}

/* --- email ------------------------------------------------------------------ */

static int mail_server(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_string(cy, v, "notify.email.server", &c->notify.mail.server))
                return -1;
        const char *colon = strrchr(c->notify.mail.server, ':');
        if (colon == NULL || colon == c->notify.mail.server || colon[1] == '\0' ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
                cy_error(cy, v, "'notify.email.server' must be host:port, got '%s'",
                         c->notify.mail.server);
                return -1;
        }
        return 0;
}

static int mail_from(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_string(cy, v, "notify.email.from", &c->notify.mail.from))
                return -1;
        if (strchr(c->notify.mail.from, '@') == NULL ||
            strpbrk(c->notify.mail.from, " \t\r\n<>,") != NULL) {
                cy_error(cy, v,
                         "'notify.email.from' must be an address like omniroute@example.com");
                return -1;
        }
        return 0;
}

static int mail_user(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return cy_string(cy, v, "notify.email.user", &c->notify.mail.user);
}

static int mail_password(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return cy_secret(cy, v, "notify.email.password_file", &c->notify.mail.password, NULL);
}

static int mail_starttls(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        const char *s = cy_scalar(cy, v, "notify.email.starttls");
        static const char *const names[] = {"disabled", "enabled", "required"};
        for (int i = 0; s && i < 3; i++) {
                if (strcmp(s, names[i]) == 0) {
                        c->notify.mail.starttls = (enum omr_starttls)i;
                        return 0;
                }
        }
        if (s)
                cy_error(cy, v, "'notify.email.starttls' is disabled, enabled or required");
        return -1;
}

static int mail_timeout(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_duration_ms(cy, v, "notify.email.timeout", &c->notify.mail.timeout_ms))
                return -1;
        if (c->notify.mail.timeout_ms < 1000 || c->notify.mail.timeout_ms > 600000) {
                cy_error(cy, v, "'notify.email.timeout' must be between 1s and 10m");
                return -1;
        }
        return 0;
}

static int mail_events(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return event_list(cy, v, "notify.email.events", &c->notify.mail.events,
                          &c->notify.mail.n_events);
}

static int notify_email(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"server", mail_server},     {"from", mail_from},
                {"user", mail_user},         {"password_file", mail_password},
                {"starttls", mail_starttls}, {"timeout", mail_timeout},
                {"events", mail_events},     {NULL, NULL},
        };
        struct omr_conf *c = obj;
        int rc = cy_mapping(cy, v, "notify.email", keys, obj);
        if (rc == 0 && (c->notify.mail.server == NULL || c->notify.mail.from == NULL)) {
                cy_error(cy, v, "'notify.email' needs 'server' and 'from'");
                rc = -1;
        }
        if (rc == 0 && (c->notify.mail.user == NULL) != (c->notify.mail.password == NULL)) {
                cy_error(cy, v, "'notify.email' needs both 'user' and 'password_file', or neither");
                rc = -1;
        }
        if (rc == 0 && default_events(&c->notify.mail.events, &c->notify.mail.n_events))
                rc = -1;
        return rc;
}

static int notify_give_up(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_duration_ms(cy, v, "notify.give_up_after", &c->notify.give_up_after_ms))
                return -1;
        if (c->notify.give_up_after_ms < 1000 || c->notify.give_up_after_ms > 7 * 86400000LL) {
                cy_error(cy, v, "'notify.give_up_after' must be between 1s and 7d");
                return -1;
        }
        return 0;
}

static int notify_timeout(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_duration_ms(cy, v, "notify.request_timeout", &c->notify.request_timeout_ms))
                return -1;
        if (c->notify.request_timeout_ms < 100 || c->notify.request_timeout_ms > 120000) {
                cy_error(cy, v, "'notify.request_timeout' must be between 100ms and 2m");
                return -1;
        }
        return 0;
}

static int sup_emails(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_string_list(cy, v, "notify.supervisors.emails", &c->notify.supervisors,
                           &c->notify.n_supervisors))
                return -1;
        for (size_t i = 0; i < c->notify.n_supervisors; i++) {
                const char *a = c->notify.supervisors[i];
                if (strchr(a, '@') == NULL || strpbrk(a, " \t\r\n<>,") != NULL) {
                        cy_error(cy, v, "'%s' is not an email address", a);
                        return -1;
                }
        }
        return 0;
}

static int sup_events(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return event_list(cy, v, "notify.supervisors.events", &c->notify.supervisor_events,
                          &c->notify.n_supervisor_events);
}

static int notify_supervisors(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"emails", sup_emails}, {"events", sup_events}, {NULL, NULL}};
        struct omr_conf *c = obj;
        int rc = cy_mapping(cy, v, "notify.supervisors", keys, obj);
        if (rc == 0 && c->notify.n_supervisor_events == 0) {
                /* Default: breaches. */
                c->notify.supervisor_events = calloc(1, sizeof(char *));
                if (c->notify.supervisor_events == NULL ||
                    !(c->notify.supervisor_events[0] = strdup("sla.breached")))
                        return -1;
                c->notify.n_supervisor_events = 1;
        }
        return rc;
}

int omr_conf_sec_notify(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"supervisors", notify_supervisors},
                {"webhooks", notify_webhooks},
                {"email", notify_email},
                {"give_up_after", notify_give_up},
                {"request_timeout", notify_timeout},
                {NULL, NULL},
        };
        return cy_mapping(cy, v, "notify", keys, obj);
}

static void free_list(char **l, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(l[i]);
        free(l);
}

void omr_conf_free_notify(struct omr_conf *c)
{
        for (size_t i = 0; i < c->notify.n_webhooks; i++) {
                struct omr_conf_webhook *w = &c->notify.webhooks[i];
                free(w->name);
                if (w->url) {
                        explicit_bzero(w->url, strlen(w->url));
                        free(w->url);
                }
                if (w->secret) {
                        explicit_bzero(w->secret, w->secret_len);
                        free(w->secret);
                }
                free_list(w->teams, w->n_teams);
                free_list(w->agents, w->n_agents);
                free_list(w->events, w->n_events);
        }
        free(c->notify.webhooks);
        free_list(c->notify.supervisors, c->notify.n_supervisors);
        free_list(c->notify.supervisor_events, c->notify.n_supervisor_events);
        free(c->notify.mail.server);
        free(c->notify.mail.from);
        free(c->notify.mail.user);
        if (c->notify.mail.password) {
                explicit_bzero(c->notify.mail.password, strlen(c->notify.mail.password));
                free(c->notify.mail.password);
        }
        free_list(c->notify.mail.events, c->notify.mail.n_events);
}
