/* message.c — the normalised message: lifetime, names, and its JSON form
 * (jansson). Pure; no I/O. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/message.h"
#include "omniroute/timefmt.h"

static const char *const channel_names[OMR_CHANNEL__COUNT] = {
        [OMR_CHANNEL_EMAIL] = "email",   [OMR_CHANNEL_CHAT] = "chat", [OMR_CHANNEL_SMS] = "sms",
        [OMR_CHANNEL_SOCIAL] = "social", [OMR_CHANNEL_API] = "api",
};

static const char *const priority_names[OMR_PRIORITY__COUNT] = {
        [OMR_PRIORITY_LOW] = "low",
        [OMR_PRIORITY_NORMAL] = "normal",
        [OMR_PRIORITY_HIGH] = "high",
        [OMR_PRIORITY_URGENT] = "urgent",
};

const char *omr_channel_name(enum omr_channel c)
{
        return (unsigned)c < OMR_CHANNEL__COUNT ? channel_names[c] : "unknown";
}

int omr_channel_parse(const char *name)
{
        for (int i = 0; name && i < OMR_CHANNEL__COUNT; i++)
                if (strcmp(name, channel_names[i]) == 0)
                        return i;
        return -1;
}

const char *omr_priority_name(enum omr_priority p)
{
        return (unsigned)p < OMR_PRIORITY__COUNT ? priority_names[p] : "unknown";
}

int omr_priority_parse(const char *name)
{
        for (int i = 0; name && i < OMR_PRIORITY__COUNT; i++)
                if (strcmp(name, priority_names[i]) == 0)
                        return i;
        return -1;
}

struct omr_message *omr_message_new(void)
{
        struct omr_message *m = calloc(1, sizeof(*m));
        if (m)
                m->priority = OMR_PRIORITY_NORMAL;
        return m;
}

void omr_message_free(struct omr_message *m)
{
        if (m == NULL)
                return;
        free(m->provider);
        free(m->external_id);
        free(m->thread_key);
        free(m->customer.id);
        free(m->customer.name);
        free(m->customer.handle);
        free(m->to);
        free(m->subject);
        free(m->text);
        free(m->html);
        free(m->body_full);
        free(m->warnings);
        free(m->conversation_hint);
        for (size_t i = 0; i < m->n_attachments; i++) {
                free(m->attachments[i].name);
                free(m->attachments[i].type);
                free(m->attachments[i].url);
        }
        free(m->attachments);
        for (size_t i = 0; i < m->n_tags; i++)
                free(m->tags[i]);
        free(m->tags);
        free(m->agent_id);
        free(m);
}

/* Sets key to a string, or leaves it out when s is NULL. */
static int set_str(json_t *o, const char *key, const char *s)
{
        return s ? json_object_set_new(o, key, json_string(s)) : 0;
}

static int set_time(json_t *o, const char *key, int64_t ms)
{
        char buf[OMR_TIME_LEN + 1];
        if (ms == 0)
                return 0;
        omr_time_format(ms, buf);
        return json_object_set_new(o, key, json_string(buf));
}

json_t *omr_message_to_json(const struct omr_message *m)
{
        json_t *o = json_object();
        json_t *cust = json_object();
        json_t *atts = json_array();
        json_t *tags = json_array();
        int rc = 0;

        if (!o || !cust || !atts || !tags)
                goto fail;
        if (m->conversation_id[0])
                rc |= set_str(o, "conversation_id", m->conversation_id);
        rc |= set_str(o, "id", m->id);
        rc |= set_str(o, "direction", m->direction == OMR_DIR_OUT ? "out" : "in");
        rc |= set_str(o, "channel", omr_channel_name(m->channel));
        rc |= set_str(o, "provider", m->provider);
        rc |= set_str(o, "external_id", m->external_id);
        rc |= set_str(o, "thread_key", m->thread_key);
        rc |= set_str(cust, "id", m->customer.id);
        rc |= set_str(cust, "name", m->customer.name);
        rc |= set_str(cust, "handle", m->customer.handle);
        rc |= json_object_set(o, "customer", cust);
        rc |= set_str(o, "to", m->to);
        rc |= set_str(o, "subject", m->subject);
        rc |= set_str(o, "text", m->text ? m->text : "");
        rc |= set_str(o, "html", m->html);
        rc |= set_str(o, "body_full", m->body_full);
        rc |= set_str(o, "warnings", m->warnings);
        if (m->auto_submitted)
                rc |= json_object_set_new(o, "auto_submitted", json_true());
        for (size_t i = 0; i < m->n_attachments; i++) {
                const struct omr_attachment *a = &m->attachments[i];
                json_t *ja = json_object();
                if (ja == NULL)
                        goto fail;
                rc |= set_str(ja, "name", a->name);
                rc |= set_str(ja, "type", a->type);
                if (a->size >= 0)
                        rc |= json_object_set_new(ja, "size", json_integer(a->size));
                rc |= set_str(ja, "url", a->url);
                rc |= json_array_append_new(atts, ja);
        }
        rc |= json_object_set(o, "attachments", atts);
        if (m->language.tag[0])
                rc |= json_object_set_new(o, "language",
                                          json_pack("{s:s, s:i, s:b}", "tag", m->language.tag,
                                                    "percent", m->language.percent, "reliable",
                                                    m->language.reliable));
        rc |= set_time(o, "received_at", m->received_at);
        rc |= set_time(o, "sent_at", m->sent_at);
        rc |= set_str(o, "priority", omr_priority_name(m->priority));
        for (size_t i = 0; i < m->n_tags; i++)
                rc |= json_array_append_new(tags, json_string(m->tags[i]));
        rc |= json_object_set(o, "tags", tags);
        rc |= set_str(o, "agent_id", m->agent_id);
        json_decref(cust);
        json_decref(atts);
        json_decref(tags);
        if (rc != 0) {
                json_decref(o);
                return NULL;
        }
        return o;
fail:
        json_decref(o);
        json_decref(cust);
        json_decref(atts);
        json_decref(tags);
        return NULL;
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
}

/* Optional string field: absent/null → NULL; other types → error. */
static int get_str(const json_t *o, const char *key, const char *path, char **out, char *err,
                   size_t errlen)
{
        const json_t *v = json_object_get(o, key);
        if (v == NULL || json_is_null(v))
                return 0;
        if (!json_is_string(v)) {
                errf(err, errlen, "field '%s' must be a string", path);
                return -1;
        }
        *out = strdup(json_string_value(v));
        return *out ? 0 : -1;
}

static int get_time(const json_t *o, const char *key, int64_t *out, char *err, size_t errlen)
{
        const json_t *v = json_object_get(o, key);
        if (v == NULL || json_is_null(v))
                return 0;
        if (!json_is_string(v) || omr_time_parse(json_string_value(v), out) != 0) {
                errf(err, errlen, "field '%s' must be an RFC 3339 time", key);
                return -1;
        }
        return 0;
}

static int get_enum(const json_t *o, const char *key, int (*parse)(const char *), int *out,
                    char *err, size_t errlen)
{
        const json_t *v = json_object_get(o, key);
        if (v == NULL)
                return 0;
        int x = json_is_string(v) ? parse(json_string_value(v)) : -1;
        if (x < 0) {
                errf(err, errlen, "field '%s' has an unknown value", key);
                return -1;
        }
        *out = x;
        return 0;
}

static int copy_id(const json_t *o, const char *key, char *dst, char *err, size_t errlen)
{
        const json_t *v = json_object_get(o, key);
        if (v == NULL)
                return 0;
        if (!json_is_string(v) || json_string_length(v) != OMR_ID_LEN) {
                errf(err, errlen, "field '%s' must be a %d-character id", key, OMR_ID_LEN);
                return -1;
        }
        memcpy(dst, json_string_value(v), OMR_ID_LEN + 1);
        return 0;
}

struct omr_message *omr_message_from_json(const json_t *j, char *err, size_t errlen)
{
        struct omr_message *m = omr_message_new();
        const json_t *cust, *atts, *tags;
        int channel = -1, prio = OMR_PRIORITY_NORMAL, dir = 0;
        const char *s;

        if (m == NULL) {
                errf(err, errlen, "out of memory");
                return NULL;
        }
        if (!json_is_object(j)) {
                errf(err, errlen, "message must be a JSON object");
                goto fail;
        }
        if (copy_id(j, "id", m->id, err, errlen) || !m->id[0]) {
                if (!m->id[0])
                        errf(err, errlen, "field 'id' is required");
                goto fail;
        }
        if (copy_id(j, "conversation_id", m->conversation_id, err, errlen))
                goto fail;
        s = json_string_value(json_object_get(j, "direction"));
        if (s && strcmp(s, "out") == 0)
                dir = 1;
        else if (s && strcmp(s, "in") != 0) {
                errf(err, errlen, "field 'direction' must be \"in\" or \"out\"");
                goto fail;
        }
        m->direction = dir ? OMR_DIR_OUT : OMR_DIR_IN;
        if (json_object_get(j, "channel") == NULL) {
                errf(err, errlen, "field 'channel' is required");
                goto fail;
        }
        if (get_enum(j, "channel", omr_channel_parse, &channel, err, errlen))
                goto fail;
        m->channel = (enum omr_channel)channel;
        if (get_enum(j, "priority", omr_priority_parse, &prio, err, errlen))
                goto fail;
        m->priority = (enum omr_priority)prio;
        if (get_str(j, "provider", "provider", &m->provider, err, errlen) ||
            get_str(j, "external_id", "external_id", &m->external_id, err, errlen) ||
            get_str(j, "thread_key", "thread_key", &m->thread_key, err, errlen) ||
            get_str(j, "to", "to", &m->to, err, errlen) ||
            get_str(j, "subject", "subject", &m->subject, err, errlen) ||
            get_str(j, "text", "text", &m->text, err, errlen) ||
            get_str(j, "html", "html", &m->html, err, errlen) ||
            get_str(j, "body_full", "body_full", &m->body_full, err, errlen) ||
            get_str(j, "warnings", "warnings", &m->warnings, err, errlen) ||
            get_str(j, "agent_id", "agent_id", &m->agent_id, err, errlen) ||
            get_time(j, "received_at", &m->received_at, err, errlen) ||
            get_time(j, "sent_at", &m->sent_at, err, errlen))
                goto fail;
        const json_t *lang = json_object_get(j, "language");
        if (lang) {
                const char *tag = json_string_value(json_object_get(lang, "tag"));
                if (!json_is_object(lang) || tag == NULL || strlen(tag) == 0 ||
                    strlen(tag) >= sizeof(m->language.tag)) {
                        errf(err, errlen, "field 'language' must be {\"tag\": \"…\", …}");
                        goto fail;
                }
                snprintf(m->language.tag, sizeof(m->language.tag), "%s", tag);
                m->language.percent = (int)json_integer_value(json_object_get(lang, "percent"));
                m->language.reliable = json_is_true(json_object_get(lang, "reliable"));
        }
        cust = json_object_get(j, "customer");
        if (!json_is_object(cust)) {
                errf(err, errlen, "field 'customer' must be an object");
                goto fail;
        }
        if (get_str(cust, "id", "customer.id", &m->customer.id, err, errlen) ||
            get_str(cust, "name", "customer.name", &m->customer.name, err, errlen) ||
            get_str(cust, "handle", "customer.handle", &m->customer.handle, err, errlen))
                goto fail;
        if (m->customer.id == NULL) {
                errf(err, errlen, "field 'customer.id' is required");
                goto fail;
        }
        atts = json_object_get(j, "attachments");
        if (atts && !json_is_array(atts)) {
                errf(err, errlen, "field 'attachments' must be an array");
                goto fail;
        }
        if (json_array_size(atts) > 0) {
                m->attachments = calloc(json_array_size(atts), sizeof(*m->attachments));
                if (m->attachments == NULL)
                        goto fail;
        }
        for (size_t i = 0; i < json_array_size(atts); i++) {
                const json_t *a = json_array_get(atts, i);
                struct omr_attachment *at = &m->attachments[i];
                m->n_attachments++;
                at->size = -1;
                if (!json_is_object(a)) {
                        errf(err, errlen, "field 'attachments[%zu]' must be an object", i);
                        goto fail;
                }
                if (get_str(a, "name", "attachments[].name", &at->name, err, errlen) ||
                    get_str(a, "type", "attachments[].type", &at->type, err, errlen) ||
                    get_str(a, "url", "attachments[].url", &at->url, err, errlen))
                        goto fail;
                const json_t *sz = json_object_get(a, "size");
                if (sz && (!json_is_integer(sz) || json_integer_value(sz) < 0)) {
                        errf(err, errlen, "field 'attachments[%zu].size' must be a size", i);
                        goto fail;
                }
                if (sz)
                        at->size = json_integer_value(sz);
        }
        tags = json_object_get(j, "tags");
        if (tags && !json_is_array(tags)) {
                errf(err, errlen, "field 'tags' must be an array of strings");
                goto fail;
        }
        if (json_array_size(tags) > 0) {
                m->tags = calloc(json_array_size(tags), sizeof(*m->tags));
                if (m->tags == NULL)
                        goto fail;
        }
        for (size_t i = 0; i < json_array_size(tags); i++) {
                const char *t = json_string_value(json_array_get(tags, i));
                if (t == NULL) {
                        errf(err, errlen, "field 'tags[%zu]' must be a string", i);
                        goto fail;
                }
                if ((m->tags[m->n_tags] = strdup(t)) == NULL)
                        goto fail;
                m->n_tags++;
        }
        return m;
fail:
        omr_message_free(m);
        return NULL;
}
