/* conf_sla.c — the `sla` section: response-time policies (docs/sla.md).
 * Same rules as conf.c: typed, validated once, every error with
 * file:line. Calendar names are resolved once the whole file is read. */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_yaml.h"

static void free_list(char **l, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(l[i]);
        free(l);
}

static int pol_name(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_sla_policy *p = obj;
        if (cy_string(cy, v, "sla.policies[].name", &p->name))
                return -1;
        if (!omr_conf_valid_queue_name(p->name)) {
                cy_error(cy, v, "policy name '%s' must be 1-64 of [A-Za-z0-9_.-]", p->name);
                return -1;
        }
        return 0;
}

static int pol_channels(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_sla_policy *p = obj;
        char **l = NULL;
        size_t n = 0;
        int rc = cy_string_list(cy, v, "sla.policies[].channel", &l, &n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
                int ch = omr_channel_parse(l[i]);
                if (ch < 0) {
                        cy_error(cy, v, "unknown channel '%s' (email, chat, sms, social, api)",
                                 l[i]);
                        rc = -1;
                } else {
                        p->channels |= 1u << ch;
                }
        }
        free_list(l, n);
        return rc;
}

static int pol_queues(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_sla_policy *p = obj;
        return cy_string_list(cy, v, "sla.policies[].queue", &p->queues, &p->n_queues);
}

static int pol_priorities(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_sla_policy *p = obj;
        char **l = NULL;
        size_t n = 0;
        int rc = cy_string_list(cy, v, "sla.policies[].priority", &l, &n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
                int pr = omr_priority_parse(l[i]);
                if (pr < 0) {
                        cy_error(cy, v, "unknown priority '%s' (low, normal, high, urgent)", l[i]);
                        rc = -1;
                } else {
                        p->priorities |= 1u << pr;
                }
        }
        free_list(l, n);
        return rc;
}

static int target(struct cy *cy, yaml_node_t *v, const char *what, int64_t *out)
{
        if (v->type == YAML_SCALAR_NODE &&
            strcmp((const char *)v->data.scalar.value, "end_of_business_day") == 0) {
                *out = OMR_SLA_END_OF_DAY;
                return 0;
        }
        if (cy_duration_ms(cy, v, what, out))
                return -1;
        if (*out < 1000 || *out > 366 * 86400000LL) {
                cy_error(cy, v, "'%s' must be between 1s and 366d", what);
                return -1;
        }
        return 0;
}

static int pol_first(struct cy *cy, yaml_node_t *v, void *obj)
{
        return target(cy, v, "first_response",
                      &((struct omr_conf_sla_policy *)obj)->first_response_ms);
}

static int pol_next(struct cy *cy, yaml_node_t *v, void *obj)
{
        return target(cy, v, "next_response",
                      &((struct omr_conf_sla_policy *)obj)->next_response_ms);
}

static int pol_resolution(struct cy *cy, yaml_node_t *v, void *obj)
{
        return target(cy, v, "resolution", &((struct omr_conf_sla_policy *)obj)->resolution_ms);
}

static int pol_calendar(struct cy *cy, yaml_node_t *v, void *obj)
{
        return cy_string(cy, v, "sla.policies[].calendar",
                         &((struct omr_conf_sla_policy *)obj)->calendar_name);
}

static int pol_warn_at(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_sla_policy *p = obj;
        const char *s = cy_scalar(cy, v, "warn_at");
        char *end = NULL;
        double d = s ? strtod(s, &end) : -1;
        if (s == NULL || end == s || *end != '\0' || !(d > 0 && d < 1)) {
                if (s)
                        cy_error(cy, v, "'warn_at' is a fraction between 0 and 1, got '%s'", s);
                return -1;
        }
        p->warn_at = d;
        return 0;
}

static int pol_escalation_queue(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_sla_policy *p = obj;
        if (cy_string(cy, v, "escalation_queue", &p->escalation_queue))
                return -1;
        if (!omr_conf_valid_queue_name(p->escalation_queue)) {
                cy_error(cy, v, "queue name '%s' must be 1-64 of [A-Za-z0-9_.-]",
                         p->escalation_queue);
                return -1;
        }
        return 0;
}

static int pol_escalate_priority(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_sla_policy *p = obj;
        const char *s = cy_scalar(cy, v, "escalate_priority");
        int pr = s ? omr_priority_parse(s) : -1;
        if (pr < 0) {
                if (s)
                        cy_error(cy, v, "'escalate_priority' is low, normal, high or urgent");
                return -1;
        }
        p->escalate_priority = (enum omr_priority)pr;
        return 0;
}

static int sla_policies(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"name", pol_name},
                {"channel", pol_channels},
                {"queue", pol_queues},
                {"priority", pol_priorities},
                {"first_response", pol_first},
                {"next_response", pol_next},
                {"resolution", pol_resolution},
                {"calendar", pol_calendar},
                {"warn_at", pol_warn_at},
                {"escalation_queue", pol_escalation_queue},
                {"escalate_priority", pol_escalate_priority},
                {NULL, NULL},
        };
        struct omr_conf *c = obj;
        if (v->type != YAML_SEQUENCE_NODE) {
                cy_error(cy, v, "'sla.policies' must be a list");
                return -1;
        }
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        c->sla = calloc(n ? n : 1, sizeof(*c->sla));
        if (c->sla == NULL)
                return -1;
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item =
                        yaml_document_get_node(&cy->doc, v->data.sequence.items.start[i]);
                struct omr_conf_sla_policy *p = &c->sla[c->n_sla++];
                p->line = cy_line(item);
                p->warn_at = 0.8;
                p->escalate_priority = OMR_PRIORITY_HIGH;
                if (cy_mapping(cy, item, "sla.policies[]", keys, p) != 0) {
                        rc = -1;
                        continue;
                }
                if (p->name == NULL) {
                        cy_error(cy, item, "a policy needs a 'name'");
                        rc = -1;
                } else if (!p->first_response_ms && !p->next_response_ms && !p->resolution_ms) {
                        cy_error(cy, item,
                                 "policy '%s' sets no target (first_response, next_response, "
                                 "resolution)",
                                 p->name);
                        rc = -1;
                }
                for (size_t j = 0; p->name && j + 1 < c->n_sla; j++)
                        if (c->sla[j].name && strcmp(c->sla[j].name, p->name) == 0) {
                                cy_error(cy, item, "policy '%s' is defined twice", p->name);
                                rc = -1;
                        }
        }
        return rc;
}

/* --- acknowledge --------------------------------------------------------------- */

static int ack_enabled(struct cy *cy, yaml_node_t *v, void *obj)
{
        return cy_bool(cy, v, "sla.acknowledge.enabled", &((struct omr_conf *)obj)->ack.enabled);
}

static int ack_channels(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        char **l = NULL;
        size_t n = 0;
        int rc = cy_string_list(cy, v, "sla.acknowledge.channel", &l, &n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
                int ch = omr_channel_parse(l[i]);
                if (ch < 0) {
                        cy_error(cy, v, "unknown channel '%s'", l[i]);
                        rc = -1;
                } else {
                        c->ack.channels |= 1u << ch;
                }
        }
        free_list(l, n);
        return rc;
}

static int ack_window(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_duration_ms(cy, v, "sla.acknowledge.window", &c->ack.window_ms))
                return -1;
        if (c->ack.window_ms < 0 || c->ack.window_ms > 30 * 86400000LL) {
                cy_error(cy, v, "'sla.acknowledge.window' must be between 0 and 30d");
                return -1;
        }
        return 0;
}

static int ack_timezone(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        free(c->ack.timezone);
        c->ack.timezone = NULL;
        if (cy_string(cy, v, "sla.acknowledge.timezone", &c->ack.timezone))
                return -1;
        GTimeZone *tz = g_time_zone_new_identifier(c->ack.timezone);
        if (tz == NULL) {
                cy_error(cy, v, "unknown time zone '%s'", c->ack.timezone);
                return -1;
        }
        g_time_zone_unref(tz);
        return 0;
}

static int ack_fallback(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return cy_string(cy, v, "sla.acknowledge.fallback", &c->ack.fallback);
}

static int ack_templates(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (v->type != YAML_MAPPING_NODE) {
                cy_error(cy, v, "'templates' maps languages to texts, e.g. {en: \"… {due}\"}");
                return -1;
        }
        size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        c->ack.templates = calloc(n ? n : 1, sizeof(*c->ack.templates));
        if (c->ack.templates == NULL)
                return -1;
        int rc = 0;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
                struct omr_conf_ack_template *t = &c->ack.templates[c->ack.n_templates];
                if (cy_string(cy, yaml_document_get_node(&cy->doc, p->key), "template language",
                              &t->language) ||
                    cy_string(cy, yaml_document_get_node(&cy->doc, p->value), "template",
                              &t->text)) {
                        free(t->language);
                        free(t->text);
                        t->language = t->text = NULL;
                        rc = -1;
                        continue;
                }
                c->ack.n_templates++;
        }
        return rc;
}

static int sla_acknowledge(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"enabled", ack_enabled},
                {"channel", ack_channels},
                {"window", ack_window},
                {"timezone", ack_timezone},
                {"templates", ack_templates},
                {"fallback", ack_fallback},
                {NULL, NULL},
        };
        struct omr_conf *c = obj;
        int rc = cy_mapping(cy, v, "sla.acknowledge", keys, obj);
        if (rc == 0 && c->ack.enabled && c->ack.n_templates == 0) {
                cy_error(cy, v, "'sla.acknowledge' is enabled but has no 'templates'");
                rc = -1;
        }
        if (rc == 0 && c->ack.fallback && !omr_conf_ack_template(c, c->ack.fallback)) {
                cy_error(cy, v, "'sla.acknowledge.fallback' names no template ('%s')",
                         c->ack.fallback);
                rc = -1;
        }
        return rc;
}

/* --- csat ------------------------------------------------------------------------ */

static int csat_enabled(struct cy *cy, yaml_node_t *v, void *obj)
{
        return cy_bool(cy, v, "sla.csat.enabled", &((struct omr_conf *)obj)->csat.enabled);
}

static int csat_window(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_duration_ms(cy, v, "sla.csat.window", &c->csat.window_ms))
                return -1;
        if (c->csat.window_ms < 60000 || c->csat.window_ms > 30 * 86400000LL) {
                cy_error(cy, v, "'sla.csat.window' must be between 1m and 30d");
                return -1;
        }
        return 0;
}

static int csat_channels(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        char **l = NULL;
        size_t n = 0;
        int rc = cy_string_list(cy, v, "sla.csat.channel", &l, &n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
                int ch = omr_channel_parse(l[i]);
                if (ch < 0) {
                        cy_error(cy, v, "unknown channel '%s'", l[i]);
                        rc = -1;
                } else {
                        c->csat.channels |= 1u << ch;
                }
        }
        free_list(l, n);
        return rc;
}

static int csat_fallback(struct cy *cy, yaml_node_t *v, void *obj)
{
        return cy_string(cy, v, "sla.csat.fallback", &((struct omr_conf *)obj)->csat.fallback);
}

static int csat_templates(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        /* Same shape as the acknowledgement templates. */
        struct omr_conf_ack saved = c->ack;
        c->ack.templates = NULL;
        c->ack.n_templates = 0;
        int rc = ack_templates(cy, v, obj);
        c->csat.templates = c->ack.templates;
        c->csat.n_templates = c->ack.n_templates;
        c->ack = saved;
        return rc;
}

static int sla_csat(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"enabled", csat_enabled},     {"window", csat_window},
                {"templates", csat_templates}, {"fallback", csat_fallback},
                {"channel", csat_channels},    {NULL, NULL},
        };
        struct omr_conf *c = obj;
        int rc = cy_mapping(cy, v, "sla.csat", keys, obj);
        if (rc == 0 && c->csat.enabled && c->csat.n_templates == 0) {
                cy_error(cy, v, "'sla.csat' is enabled but has no 'templates'");
                rc = -1;
        }
        for (size_t i = 0; rc == 0 && c->csat.fallback && i <= c->csat.n_templates; i++) {
                if (i == c->csat.n_templates) {
                        cy_error(cy, v, "'sla.csat.fallback' names no template ('%s')",
                                 c->csat.fallback);
                        rc = -1;
                } else if (strcasecmp(c->csat.templates[i].language, c->csat.fallback) == 0) {
                        break;
                }
        }
        return rc;
}

int omr_conf_sec_sla(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"policies", sla_policies},
                {"acknowledge", sla_acknowledge},
                {"csat", sla_csat},
                {NULL, NULL},
        };
        return cy_mapping(cy, v, "sla", keys, obj);
}

/* The longest template tag that is the language or a prefix of it
 * ("pt-BR" before "pt"). */
static const char *template_for(const struct omr_conf *c, const char *language)
{
        const char *best = NULL;
        size_t best_len = 0;
        for (size_t i = 0; language && *language && i < c->ack.n_templates; i++) {
                const struct omr_conf_ack_template *t = &c->ack.templates[i];
                size_t k = strlen(t->language);
                if (k > best_len && strncasecmp(t->language, language, k) == 0 &&
                    (language[k] == '\0' || language[k] == '-')) {
                        best = t->text;
                        best_len = k;
                }
        }
        return best;
}

const char *omr_conf_ack_template(const struct omr_conf *c, const char *language)
{
        const char *t = template_for(c, language);
        if (t == NULL && c->ack.fallback)
                t = template_for(c, c->ack.fallback);
        if (t == NULL && c->ack.n_templates > 0 && !c->ack.fallback)
                t = template_for(c, "en");
        return t;
}

int omr_conf_resolve_sla(struct omr_conf *c, struct omr_conf_errors *errs)
{
        int rc = 0;
        for (size_t i = 0; i < c->n_sla; i++) {
                struct omr_conf_sla_policy *p = &c->sla[i];
                if (p->calendar_name == NULL)
                        continue;
                p->calendar = omr_conf_calendar(c, p->calendar_name);
                if (p->calendar == NULL && errs->n < OMR_CONF_MAX_ERRORS) {
                        snprintf(errs->msg[errs->n++], sizeof(errs->msg[0]),
                                 "%s:%d: policy '%s' names calendar '%s', which 'calendars' does "
                                 "not define",
                                 c->path, p->line, p->name ? p->name : "", p->calendar_name);
                        rc = -1;
                }
        }
        return rc;
}

const struct omr_conf_sla_policy *omr_conf_sla_for(const struct omr_conf *c, enum omr_channel ch,
                                                   const char *queue, enum omr_priority pr)
{
        for (size_t i = 0; i < c->n_sla; i++) {
                const struct omr_conf_sla_policy *p = &c->sla[i];
                if (p->channels && !(p->channels & (1u << ch)))
                        continue;
                if (p->priorities && !(p->priorities & (1u << pr)))
                        continue;
                bool q = p->n_queues == 0;
                for (size_t k = 0; !q && k < p->n_queues; k++)
                        q = strcmp(p->queues[k], queue) == 0;
                if (q)
                        return p;
        }
        return NULL;
}

const struct omr_conf_sla_policy *omr_conf_sla_named(const struct omr_conf *c, const char *name)
{
        for (size_t i = 0; name && i < c->n_sla; i++)
                if (strcmp(c->sla[i].name, name) == 0)
                        return &c->sla[i];
        return NULL;
}

void omr_conf_free_sla(struct omr_conf *c)
{
        for (size_t i = 0; i < c->n_sla; i++) {
                struct omr_conf_sla_policy *p = &c->sla[i];
                free(p->name);
                free_list(p->queues, p->n_queues);
                free(p->calendar_name);
                free(p->escalation_queue);
        }
        free(c->sla);
        for (size_t i = 0; i < c->ack.n_templates; i++) {
                free(c->ack.templates[i].language);
                free(c->ack.templates[i].text);
        }
        free(c->ack.templates);
        for (size_t i = 0; i < c->csat.n_templates; i++) {
                free(c->csat.templates[i].language);
                free(c->csat.templates[i].text);
        }
        free(c->csat.templates);
        free(c->csat.fallback);
        free(c->ack.timezone);
        free(c->ack.fallback);
}
