/* conf_routing.c — the routing and agents sections of the configuration:
 * rules, queues and their assignment settings, the VIP list, agents. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <fnmatch.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_yaml.h"
#include "omniroute/text.h"

static void free_list(char **l, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(l[i]);
        free(l);
}

static bool valid_tag(const char *s)
{
        size_t n = strlen(s);
        return n >= 1 && n <= 64 &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

bool omr_conf_valid_agent_id(const char *id)
{
        size_t n = strlen(id);
        /* "omnirouted" signs the daemon's own messages (acknowledgements). */
        return n >= 1 && n <= 64 && strcmp(id, "omnirouted") != 0 &&
               strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-") ==
                       n;
}

const char *omr_strategy_name(enum omr_strategy s)
{
        switch (s) {
        case OMR_STRATEGY_ROUND_ROBIN:
                return "round_robin";
        case OMR_STRATEGY_LONGEST_IDLE:
                return "longest_idle";
        case OMR_STRATEGY_LEAST_BUSY:
                break;
        }
        return "least_busy";
}

/* An empty condition list would read as "any of nothing"; the loader would
 * otherwise treat it as absent and match everything. Refuse it. */
static int rule_list(struct cy *cy, yaml_node_t *v, const char *what, char ***out, size_t *n)
{
        if (cy_string_list(cy, v, what, out, n))
                return -1;
        if (*n == 0) {
                cy_error(cy, v, "'%s' must not be empty (leave it out to match anything)", what);
                return -1;
        }
        return 0;
}

static int rule_name(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_rule *r = obj;
        return cy_string(cy, v, "rules[].name", &r->name);
}

static int rule_channel(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_rule *r = obj;
        char **list = NULL;
        size_t n = 0;
        int rc = rule_list(cy, v, "rules[].channel", &list, &n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
                int ch = omr_channel_parse(list[i]);
                if (ch < 0) {
                        cy_error(cy, v, "unknown channel '%s' (email, chat, sms, social, api)",
                                 list[i]);
                        rc = -1;
                } else {
                        r->channels |= 1u << ch;
                }
        }
        for (size_t i = 0; i < n; i++)
                free(list[i]);
        free(list);
        return rc;
}

static int rule_adapter(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_rule *r = obj;
        return rule_list(cy, v, "rules[].adapter", &r->adapters, &r->n_adapters);
}

static int rule_sender(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_rule *r = obj;
        return rule_list(cy, v, "rules[].sender", &r->senders, &r->n_senders);
}

static int rule_keywords(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_rule *r = obj;
        if (rule_list(cy, v, "rules[].keywords", &r->keywords, &r->n_keywords))
                return -1;
        for (size_t i = 0; i < r->n_keywords; i++) {
                char *folded = omr_text_fold(r->keywords[i]);
                if (folded == NULL || *folded == '\0') {
                        free(folded);
                        cy_error(cy, v, "keyword '%s' is empty or not valid UTF-8", r->keywords[i]);
                        return -1;
                }
                free(r->keywords[i]);
                r->keywords[i] = folded;
        }
        return 0;
}

static int check_languages(struct cy *cy, yaml_node_t *v, char **tags, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const char *t = tags[i];
                if (strlen(t) < 2 || strlen(t) > 15 ||
                    strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") !=
                            strlen(t)) {
                        cy_error(cy, v, "'%s' is not a BCP 47 language tag (e.g. vi, th, zh-Hans)",
                                 t);
                        return -1;
                }
        }
        return 0;
}

static int rule_language(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_rule *r = obj;
        if (rule_list(cy, v, "rules[].language", &r->languages, &r->n_languages))
                return -1;
        return check_languages(cy, v, r->languages, r->n_languages);
}

static int rule_queue(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_rule *r = obj;
        if (cy_string(cy, v, "rules[].queue", &r->queue))
                return -1;
        if (!omr_conf_valid_queue_name(r->queue)) {
                cy_error(cy, v, "queue name '%s' must be 1-64 of [A-Za-z0-9_.-]", r->queue);
                return -1;
        }
        return 0;
}

static int parse_priority(struct cy *cy, yaml_node_t *v, const char *what, enum omr_priority *out)
{
        const char *s = cy_scalar(cy, v, what);
        if (s == NULL)
                return -1;
        int p = omr_priority_parse(s);
        if (p < 0) {
                cy_error(cy, v, "'%s' must be low, normal, high or urgent, got '%s'", what, s);
                return -1;
        }
        *out = (enum omr_priority)p;
        return 0;
}

static int rule_priority(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_rule *r = obj;
        if (parse_priority(cy, v, "rules[].priority", &r->priority))
                return -1;
        r->has_priority = true;
        return 0;
}

static int tristate(struct cy *cy, yaml_node_t *v, const char *what, int *out)
{
        bool b;
        if (cy_bool(cy, v, what, &b))
                return -1;
        *out = b;
        return 0;
}

static int rule_vip(struct cy *cy, yaml_node_t *v, void *obj)
{
        return tristate(cy, v, "rules[].vip", &((struct omr_rule *)obj)->vip);
}

static int rule_returning(struct cy *cy, yaml_node_t *v, void *obj)
{
        return tristate(cy, v, "rules[].returning", &((struct omr_rule *)obj)->returning);
}

static int rule_regex(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_rule *r = obj;
        if (cy_string(cy, v, "rules[].regex", &r->regex_src))
                return -1;
        int code;
        PCRE2_SIZE at;
        r->regex = pcre2_compile((PCRE2_SPTR)r->regex_src, PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &code, &at, NULL);
        if (r->regex == NULL) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(code, msg, sizeof(msg));
                cy_error(cy, v, "regex '%s' does not compile at offset %zu: %s", r->regex_src,
                         (size_t)at, (const char *)msg);
                return -1;
        }
        return 0;
}

/* Skills are free tags compared case-insensitively: stored lower-case. */
static int skill_list(struct cy *cy, yaml_node_t *v, const char *what, char ***out, size_t *n)
{
        if (rule_list(cy, v, what, out, n))
                return -1;
        for (size_t i = 0; i < *n; i++) {
                char *s = (*out)[i];
                if (!valid_tag(s)) {
                        cy_error(cy, v, "skill '%s' must be 1-64 of [A-Za-z0-9_.-]", s);
                        return -1;
                }
                for (; *s; s++)
                        *s = (char)tolower((unsigned char)*s);
        }
        return 0;
}

static int rule_skills(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_rule *r = obj;
        return skill_list(cy, v, "rules[].skills", &r->skills, &r->n_skills);
}

static int rule_calendar(struct cy *cy, yaml_node_t *v, struct omr_rule *r, bool open)
{
        if (r->calendar_name) {
                cy_error(cy, v, "give either 'business_hours' or 'outside_business_hours'");
                return -1;
        }
        r->want_open = open;
        return cy_string(cy, v, "rules[].business_hours", &r->calendar_name);
}

static int rule_business_hours(struct cy *cy, yaml_node_t *v, void *obj)
{
        return rule_calendar(cy, v, obj, true);
}

static int rule_outside_hours(struct cy *cy, yaml_node_t *v, void *obj)
{
        return rule_calendar(cy, v, obj, false);
}

static int routing_rules(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"name", rule_name},
                {"channel", rule_channel},
                {"adapter", rule_adapter},
                {"sender", rule_sender},
                {"keywords", rule_keywords},
                {"language", rule_language},
                {"vip", rule_vip},
                {"returning", rule_returning},
                {"regex", rule_regex},
                {"queue", rule_queue},
                {"priority", rule_priority},
                {"skills", rule_skills},
                {"business_hours", rule_business_hours},
                {"outside_business_hours", rule_outside_hours},
                {NULL, NULL},
        };
        struct omr_conf *c = obj;
        if (v->type != YAML_SEQUENCE_NODE) {
                cy_error(cy, v, "'routing.rules' must be a list");
                return -1;
        }
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        c->routing.rules = calloc(n ? n : 1, sizeof(*c->routing.rules));
        if (c->routing.rules == NULL)
                return -1;
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item =
                        yaml_document_get_node(&cy->doc, v->data.sequence.items.start[i]);
                struct omr_rule *r = &c->routing.rules[c->routing.n_rules++];
                r->line = cy_line(item);
                r->vip = r->returning = -1;
                if (cy_mapping(cy, item, "routing.rules[]", keys, r) != 0) {
                        rc = -1;
                        continue;
                }
                if (r->queue == NULL) {
                        cy_error(cy, item, "a rule needs a 'queue'");
                        rc = -1;
                }
                if (r->returning >= 0)
                        c->routing.uses_returning = true;
                if (r->name == NULL) {
                        char name[32];
                        snprintf(name, sizeof(name), "rule-%zu", i + 1);
                        r->name = strdup(name);
                }
        }
        return rc;
}

static int routing_default_queue(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_string(cy, v, "routing.default_queue", &c->routing.default_queue))
                return -1;
        if (!omr_conf_valid_queue_name(c->routing.default_queue)) {
                cy_error(cy, v, "queue name '%s' must be 1-64 of [A-Za-z0-9_.-]",
                         c->routing.default_queue);
                return -1;
        }
        return 0;
}

static int routing_default_priority(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return parse_priority(cy, v, "routing.default_priority", &c->routing.default_priority);
}

static int routing_customers_vip(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return cy_string_list(cy, v, "routing.customers.vip", &c->routing.vip, &c->routing.n_vip);
}

static int routing_customers(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {{"vip", routing_customers_vip}, {NULL, NULL}};
        return cy_mapping(cy, v, "routing.customers", keys, obj);
}

/* --- queues --------------------------------------------------------------- */

static void queue_defaults(struct omr_conf_queue *q)
{
        q->mode = OMR_QUEUE_PULL;
        q->strategy = OMR_STRATEGY_LEAST_BUSY;
        q->sticky = true;
        q->match_language = true;
        q->offer_timeout_ms = 30000;
        q->claim_timeout_ms = 300000;
}

static int queue_mode(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_queue *q = obj;
        const char *s = cy_scalar(cy, v, "queues.<name>.mode");
        if (s && (strcmp(s, "pull") == 0 || strcmp(s, "push") == 0)) {
                q->mode = strcmp(s, "push") == 0 ? OMR_QUEUE_PUSH : OMR_QUEUE_PULL;
                return 0;
        }
        if (s)
                cy_error(cy, v, "a queue's 'mode' is pull or push, got '%s'", s);
        return -1;
}

static int queue_strategy(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_queue *q = obj;
        const char *s = cy_scalar(cy, v, "queues.<name>.strategy");
        for (int i = 0; s && i <= OMR_STRATEGY_LONGEST_IDLE; i++) {
                if (strcmp(s, omr_strategy_name((enum omr_strategy)i)) == 0) {
                        q->strategy = (enum omr_strategy)i;
                        return 0;
                }
        }
        if (s)
                cy_error(cy, v,
                         "a queue's 'strategy' is least_busy, round_robin or longest_idle, got "
                         "'%s'",
                         s);
        return -1;
}

static int queue_sticky(struct cy *cy, yaml_node_t *v, void *obj)
{
        return cy_bool(cy, v, "queues.<name>.sticky", &((struct omr_conf_queue *)obj)->sticky);
}

static int queue_match_language(struct cy *cy, yaml_node_t *v, void *obj)
{
        return cy_bool(cy, v, "queues.<name>.match_language",
                       &((struct omr_conf_queue *)obj)->match_language);
}

static int queue_timeout(struct cy *cy, yaml_node_t *v, const char *what, int64_t min, int64_t *out)
{
        if (cy_duration_ms(cy, v, what, out))
                return -1;
        if (*out < min || *out > 7 * 86400000LL) {
                cy_error(cy, v, "'%s' must be between %llds and 7d", what, (long long)(min / 1000));
                return -1;
        }
        return 0;
}

static int queue_offer_timeout(struct cy *cy, yaml_node_t *v, void *obj)
{
        return queue_timeout(cy, v, "offer_timeout", 0,
                             &((struct omr_conf_queue *)obj)->offer_timeout_ms);
}

static int queue_claim_timeout(struct cy *cy, yaml_node_t *v, void *obj)
{
        return queue_timeout(cy, v, "claim_timeout", 1000,
                             &((struct omr_conf_queue *)obj)->claim_timeout_ms);
}

static int routing_queues(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"mode", queue_mode},
                {"strategy", queue_strategy},
                {"sticky", queue_sticky},
                {"match_language", queue_match_language},
                {"offer_timeout", queue_offer_timeout},
                {"claim_timeout", queue_claim_timeout},
                {NULL, NULL},
        };
        struct omr_conf *c = obj;
        if (v->type != YAML_MAPPING_NODE) {
                cy_error(cy, v, "'routing.queues' must map queue names to their settings");
                return -1;
        }
        size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        c->routing.queues = calloc(n ? n : 1, sizeof(*c->routing.queues));
        if (c->routing.queues == NULL)
                return -1;
        int rc = 0;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
                yaml_node_t *k = yaml_document_get_node(&cy->doc, p->key);
                yaml_node_t *val = yaml_document_get_node(&cy->doc, p->value);
                struct omr_conf_queue *q = &c->routing.queues[c->routing.n_queues];
                queue_defaults(q);
                q->line = cy_line(k);
                if (cy_string(cy, k, "routing.queues key", &q->name)) {
                        rc = -1;
                        continue;
                }
                c->routing.n_queues++;
                if (!omr_conf_valid_queue_name(q->name)) {
                        cy_error(cy, k, "queue name '%s' must be 1-64 of [A-Za-z0-9_.-]", q->name);
                        rc = -1;
                }
                for (size_t i = 0; i + 1 < c->routing.n_queues; i++) {
                        if (strcmp(c->routing.queues[i].name, q->name) == 0) {
                                cy_error(cy, k, "queue '%s' is defined twice", q->name);
                                rc = -1;
                        }
                }
                if (val->type == YAML_SCALAR_NODE && val->data.scalar.length == 0)
                        continue; /* `general:` alone: all defaults */
                if (cy_mapping(cy, val, "routing.queues.<name>", keys, q))
                        rc = -1;
        }
        return rc;
}

int omr_conf_sec_routing(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"default_queue", routing_default_queue},
                {"default_priority", routing_default_priority},
                {"customers", routing_customers},
                {"queues", routing_queues},
                {"rules", routing_rules},
                {NULL, NULL},
        };
        return cy_mapping(cy, v, "routing", keys, obj);
}

/* --- agents --------------------------------------------------------------- */

static int agent_id(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_agent *a = obj;
        if (cy_string(cy, v, "agents.list[].id", &a->id))
                return -1;
        if (!omr_conf_valid_agent_id(a->id)) {
                cy_error(cy, v, "agent id '%s' must be 1-64 of [A-Za-z0-9_.@-]", a->id);
                return -1;
        }
        return 0;
}

static int agent_name(struct cy *cy, yaml_node_t *v, void *obj)
{
        return cy_string(cy, v, "agents.list[].name", &((struct omr_conf_agent *)obj)->name);
}

static int agent_email(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_agent *a = obj;
        if (cy_string(cy, v, "agents.list[].email", &a->email))
                return -1;
        if (strchr(a->email, '@') == NULL || strpbrk(a->email, " \t\r\n<>,") != NULL) {
                cy_error(cy, v, "'%s' is not an email address", a->email);
                return -1;
        }
        return 0;
}

static int agent_languages(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_agent *a = obj;
        if (rule_list(cy, v, "agents.list[].languages", &a->languages, &a->n_languages))
                return -1;
        return check_languages(cy, v, a->languages, a->n_languages);
}

static int agent_skills(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_agent *a = obj;
        return skill_list(cy, v, "agents.list[].skills", &a->skills, &a->n_skills);
}

static int agent_queues(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_agent *a = obj;
        if (rule_list(cy, v, "agents.list[].queues", &a->queues, &a->n_queues))
                return -1;
        for (size_t i = 0; i < a->n_queues; i++) {
                if (!omr_conf_valid_queue_name(a->queues[i])) {
                        cy_error(cy, v, "queue name '%s' must be 1-64 of [A-Za-z0-9_.-]",
                                 a->queues[i]);
                        return -1;
                }
        }
        return 0;
}

static int agent_teams(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_agent *a = obj;
        return skill_list(cy, v, "agents.list[].teams", &a->teams, &a->n_teams);
}

static int agent_capacity(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_agent *a = obj;
        if (v->type != YAML_MAPPING_NODE) {
                cy_error(cy, v, "'capacity' maps channels to a number, e.g. {chat: 3, email: 10}");
                return -1;
        }
        size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        a->capacity = calloc(n ? n : 1, sizeof(*a->capacity));
        if (a->capacity == NULL)
                return -1;
        int rc = 0;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
                yaml_node_t *k = yaml_document_get_node(&cy->doc, p->key);
                yaml_node_t *val = yaml_document_get_node(&cy->doc, p->value);
                struct omr_conf_capacity *cap = &a->capacity[a->n_capacity];
                long long max;
                if (cy_string(cy, k, "capacity key", &cap->channel)) {
                        rc = -1;
                        continue;
                }
                a->n_capacity++;
                if (strcmp(cap->channel, "*") != 0 && omr_channel_parse(cap->channel) < 0) {
                        cy_error(cy, k, "unknown channel '%s' (email, chat, sms, social, api, *)",
                                 cap->channel);
                        rc = -1;
                }
                for (size_t i = 0; i + 1 < a->n_capacity; i++) {
                        if (strcmp(a->capacity[i].channel, cap->channel) == 0) {
                                cy_error(cy, k, "capacity for '%s' is given twice", cap->channel);
                                rc = -1;
                        }
                }
                if (cy_int(cy, val, "capacity", 0, 1000, &max))
                        rc = -1;
                else
                        cap->max = (int)max;
        }
        return rc;
}

static int agents_list(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"id", agent_id},
                {"name", agent_name},
                {"email", agent_email},
                {"languages", agent_languages},
                {"skills", agent_skills},
                {"queues", agent_queues},
                {"teams", agent_teams},
                {"capacity", agent_capacity},
                {NULL, NULL},
        };
        struct omr_conf *c = obj;
        if (v->type != YAML_SEQUENCE_NODE) {
                cy_error(cy, v, "'agents.list' must be a list");
                return -1;
        }
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        c->agents.list = calloc(n ? n : 1, sizeof(*c->agents.list));
        if (c->agents.list == NULL)
                return -1;
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item =
                        yaml_document_get_node(&cy->doc, v->data.sequence.items.start[i]);
                struct omr_conf_agent *a = &c->agents.list[c->agents.n++];
                a->line = cy_line(item);
                if (cy_mapping(cy, item, "agents.list[]", keys, a) != 0) {
                        rc = -1;
                        continue;
                }
                const char *missing = !a->id           ? "id"
                                      : !a->n_capacity ? "capacity"
                                      : !a->n_queues   ? "queues"
                                                       : NULL;
                if (missing) {
                        cy_error(cy, item, "an agent needs '%s'", missing);
                        rc = -1;
                        continue;
                }
                for (size_t j = 0; j + 1 < c->agents.n; j++) {
                        if (c->agents.list[j].id && strcmp(c->agents.list[j].id, a->id) == 0) {
                                cy_error(cy, item, "agent '%s' is defined twice (line %d)", a->id,
                                         c->agents.list[j].line);
                                rc = -1;
                        }
                }
        }
        return rc;
}

static int agents_heartbeat(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_duration_ms(cy, v, "agents.heartbeat_timeout", &c->agents.heartbeat_timeout_ms))
                return -1;
        if (c->agents.heartbeat_timeout_ms < 1000 || c->agents.heartbeat_timeout_ms > 86400000) {
                cy_error(cy, v, "'agents.heartbeat_timeout' must be between 1s and 1d");
                return -1;
        }
        return 0;
}

int omr_conf_sec_agents(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"heartbeat_timeout", agents_heartbeat},
                {"list", agents_list},
                {NULL, NULL},
        };
        return cy_mapping(cy, v, "agents", keys, obj);
}

/* --- calendars --------------------------------------------------------------- */

static const char *const DAYS[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static int cal_timezone(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_calendar *cal = obj;
        if (cy_string(cy, v, "calendars.<name>.timezone", &cal->timezone))
                return -1;
        if (omr_calendar_set_timezone(cal, cal->timezone) != 0) {
                cy_error(cy, v, "unknown time zone '%s' (an IANA name like Europe/Paris)",
                         cal->timezone);
                return -1;
        }
        return 0;
}

static int cal_hours(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_calendar *cal = obj;
        if (v->type != YAML_MAPPING_NODE) {
                cy_error(cy, v, "'hours' maps days (mon … sun) to ranges like \"09:00-17:30\"");
                return -1;
        }
        int rc = 0;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
                yaml_node_t *k = yaml_document_get_node(&cy->doc, p->key);
                yaml_node_t *val = yaml_document_get_node(&cy->doc, p->value);
                const char *day = cy_scalar(cy, k, "hours key");
                int d = 0;
                while (day && d < 7 && strcmp(DAYS[d], day) != 0)
                        d++;
                if (day == NULL || d == 7) {
                        if (day)
                                cy_error(cy, k, "'%s' is not a day (mon, tue, … sun)", day);
                        rc = -1;
                        continue;
                }
                if (cal->hours[d]) {
                        cy_error(cy, k, "'%s' is given twice", day);
                        rc = -1;
                        continue;
                }
                char **ranges = NULL;
                size_t n = 0;
                if (cy_string_list(cy, val, "hours.<day>", &ranges, &n)) {
                        rc = -1;
                        continue;
                }
                if (n > OMR_CALENDAR_MAX_RANGES) {
                        cy_error(cy, val, "at most %d ranges a day", OMR_CALENDAR_MAX_RANGES);
                        free_list(ranges, n);
                        rc = -1;
                        continue;
                }
                cal->hours[d] = calloc(n ? n : 1, sizeof(*cal->hours[d]));
                for (size_t i = 0; cal->hours[d] && i < n; i++) {
                        if (omr_hours_range_parse(ranges[i], &cal->hours[d][cal->n_hours[d]]) !=
                            0) {
                                cy_error(cy, val,
                                         "'%s' is not a range like 09:00-17:30 (22:00-06:00 runs "
                                         "past midnight)",
                                         ranges[i]);
                                rc = -1;
                        } else {
                                cal->n_hours[d]++;
                        }
                }
                free_list(ranges, n);
        }
        return rc;
}

static int cal_holidays(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_calendar *cal = obj;
        char **dates = NULL;
        size_t n = 0;
        if (cy_string_list(cy, v, "calendars.<name>.holidays", &dates, &n))
                return -1;
        cal->holidays = calloc(n ? n : 1, sizeof(*cal->holidays));
        int rc = cal->holidays ? 0 : -1;
        for (size_t i = 0; rc == 0 && i < n; i++) {
                if (omr_holiday_parse(dates[i], &cal->holidays[cal->n_holidays]) != 0) {
                        cy_error(cy, v, "'%s' is not a date (YYYY-MM-DD, or MM-DD for every year)",
                                 dates[i]);
                        rc = -1;
                } else {
                        cal->n_holidays++;
                }
        }
        free_list(dates, n);
        return rc;
}

int omr_conf_sec_calendars(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"timezone", cal_timezone},
                {"hours", cal_hours},
                {"holidays", cal_holidays},
                {NULL, NULL},
        };
        struct omr_conf *c = obj;
        if (v->type != YAML_MAPPING_NODE) {
                cy_error(cy, v, "'calendars' maps calendar names to their settings");
                return -1;
        }
        size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        c->calendars = calloc(n ? n : 1, sizeof(*c->calendars));
        if (c->calendars == NULL)
                return -1;
        int rc = 0;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
                yaml_node_t *k = yaml_document_get_node(&cy->doc, p->key);
                yaml_node_t *val = yaml_document_get_node(&cy->doc, p->value);
                struct omr_calendar *cal = &c->calendars[c->n_calendars];
                cal->line = cy_line(k);
                if (cy_string(cy, k, "calendars key", &cal->name)) {
                        rc = -1;
                        continue;
                }
                c->n_calendars++;
                for (size_t i = 0; i + 1 < c->n_calendars; i++)
                        if (strcmp(c->calendars[i].name, cal->name) == 0) {
                                cy_error(cy, k, "calendar '%s' is defined twice", cal->name);
                                rc = -1;
                        }
                if (cy_mapping(cy, val, "calendars.<name>", keys, cal)) {
                        rc = -1;
                } else if (cal->tz == NULL) {
                        cy_error(cy, k, "calendar '%s' needs a 'timezone'", cal->name);
                        rc = -1;
                }
        }
        return rc;
}

const struct omr_calendar *omr_conf_calendar(const struct omr_conf *c, const char *name)
{
        for (size_t i = 0; i < c->n_calendars; i++)
                if (strcmp(c->calendars[i].name, name) == 0)
                        return &c->calendars[i];
        return NULL;
}

/* Rules name calendars that may be defined later in the file. */
int omr_conf_resolve_routing(struct omr_conf *c, struct omr_conf_errors *errs)
{
        int rc = 0;
        for (size_t i = 0; i < c->routing.n_rules; i++) {
                struct omr_rule *r = &c->routing.rules[i];
                if (r->calendar_name == NULL)
                        continue;
                r->calendar = omr_conf_calendar(c, r->calendar_name);
                if (r->calendar == NULL && errs->n < OMR_CONF_MAX_ERRORS) {
                        snprintf(errs->msg[errs->n++], sizeof(errs->msg[0]),
                                 "%s:%d: rule '%s' names calendar '%s', which 'calendars' does "
                                 "not define",
                                 c->path, r->line, r->name ? r->name : "", r->calendar_name);
                        rc = -1;
                }
        }
        return rc;
}

/* --- lookups and free ------------------------------------------------------ */

const struct omr_conf_queue *omr_conf_queue(const struct omr_conf *c, const char *name)
{
        static struct omr_conf_queue defaults;
        for (size_t i = 0; i < c->routing.n_queues; i++)
                if (strcmp(c->routing.queues[i].name, name) == 0)
                        return &c->routing.queues[i];
        if (defaults.claim_timeout_ms == 0)
                queue_defaults(&defaults);
        return &defaults;
}

const struct omr_conf_agent *omr_conf_agent(const struct omr_conf *c, const char *id)
{
        for (size_t i = 0; i < c->agents.n; i++)
                if (c->agents.list[i].id && strcmp(c->agents.list[i].id, id) == 0)
                        return &c->agents.list[i];
        return NULL;
}

bool omr_conf_is_vip(const struct omr_conf *c, const char *id, const char *handle)
{
        for (size_t i = 0; i < c->routing.n_vip; i++) {
                const char *g = c->routing.vip[i];
                if ((id && fnmatch(g, id, 0) == 0) || (handle && fnmatch(g, handle, 0) == 0))
                        return true;
        }
        return false;
}

void omr_conf_free_routing(struct omr_conf *c)
{
        free(c->routing.default_queue);
        for (size_t i = 0; i < c->routing.n_rules; i++) {
                struct omr_rule *r = &c->routing.rules[i];
                free(r->name);
                free_list(r->adapters, r->n_adapters);
                free_list(r->senders, r->n_senders);
                free_list(r->keywords, r->n_keywords);
                free_list(r->languages, r->n_languages);
                free_list(r->skills, r->n_skills);
                pcre2_code_free(r->regex);
                free(r->calendar_name);
                free(r->regex_src);
                free(r->queue);
        }
        free(c->routing.rules);
        for (size_t i = 0; i < c->routing.n_queues; i++)
                free(c->routing.queues[i].name);
        free(c->routing.queues);
        free_list(c->routing.vip, c->routing.n_vip);
        for (size_t i = 0; i < c->agents.n; i++) {
                struct omr_conf_agent *a = &c->agents.list[i];
                free(a->id);
                free(a->name);
                free(a->email);
                free_list(a->languages, a->n_languages);
                free_list(a->skills, a->n_skills);
                free_list(a->queues, a->n_queues);
                free_list(a->teams, a->n_teams);
                for (size_t j = 0; j < a->n_capacity; j++)
                        free(a->capacity[j].channel);
                free(a->capacity);
        }
        free(c->agents.list);
        for (size_t i = 0; i < c->n_calendars; i++)
                omr_calendar_clear(&c->calendars[i]);
        free(c->calendars);
}
