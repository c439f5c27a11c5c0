/* router.c — first matching rule wins; see router.h. Pure. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <fnmatch.h>
#include <pcre2.h>
#include <string.h>
#include <strings.h>

#include "omniroute/text.h"
#include "router.h"

static bool any_equal(char *const *list, size_t n, const char *s)
{
        for (size_t i = 0; s && i < n; i++)
                if (strcmp(list[i], s) == 0)
                        return true;
        return false;
}

static bool any_glob(char *const *list, size_t n, const char *s)
{
        for (size_t i = 0; s && i < n; i++)
                if (fnmatch(list[i], s, 0) == 0)
                        return true;
        return false;
}

/* "vi" matches "vi" and "vi-VN"; case-insensitive, as BCP 47 tags are. */
static bool any_language(char *const *list, size_t n, const char *tag)
{
        for (size_t i = 0; i < n; i++) {
                size_t k = strlen(list[i]);
                if (strncasecmp(list[i], tag, k) == 0 && (tag[k] == '\0' || tag[k] == '-'))
                        return true;
        }
        return false;
}

/* Backtracking is bounded so that a pathological pattern costs a rule
 * miss (logged by the caller's tests), never a stalled loop. */
static bool regex_matches(const struct omr_rule *r, const char *text)
{
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->regex, NULL);
        pcre2_match_context *mc = pcre2_match_context_create(NULL);
        int rc = -1;
        if (md && mc) {
                pcre2_set_match_limit(mc, 100000);
                pcre2_set_depth_limit(mc, 1000);
                rc = pcre2_match(r->regex, (PCRE2_SPTR)text, strlen(text), 0, 0, md, mc);
        }
        pcre2_match_context_free(mc);
        pcre2_match_data_free(md);
        return rc >= 0;
}

static bool rule_matches(const struct omr_rule *r, const struct omr_message *m,
                         const struct omr_route_input *in)
{
        const char *folded_text = in->folded_text;
        if (r->vip >= 0 && r->vip != in->vip)
                return false;
        if (r->returning >= 0 && r->returning != in->returning)
                return false;
        if (r->channels && !(r->channels & (1u << m->channel)))
                return false;
        if (r->n_adapters && !any_equal(r->adapters, r->n_adapters, m->provider))
                return false;
        if (r->n_senders && !any_glob(r->senders, r->n_senders, m->customer.id) &&
            !any_glob(r->senders, r->n_senders, m->customer.handle))
                return false;
        if (r->n_languages && !any_language(r->languages, r->n_languages, m->language.tag))
                return false;
        if (r->n_keywords) {
                bool hit = false;
                for (size_t i = 0; !hit && i < r->n_keywords; i++)
                        hit = omr_text_contains_folded(folded_text, r->keywords[i]);
                if (!hit)
                        return false;
        }
        if (r->regex && !(in->text && regex_matches(r, in->text)))
                return false;
        if (r->calendar && omr_calendar_is_open(r->calendar, in->now_ms) != r->want_open)
                return false;
        return true;
}

void omr_route(const struct omr_conf_routing *routing, const struct omr_message *m,
               const struct omr_route_input *in, struct omr_route_decision *out)
{
        for (size_t i = 0; i < routing->n_rules; i++) {
                const struct omr_rule *r = &routing->rules[i];
                if (rule_matches(r, m, in)) {
                        out->queue = r->queue;
                        out->priority = r->has_priority ? r->priority : routing->default_priority;
                        out->rule = r;
                        return;
                }
        }
        out->queue = routing->default_queue;
        out->priority = routing->default_priority;
        out->rule = NULL;
}
