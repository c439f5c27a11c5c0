/* api.c — the generic signed JSON webhook: POST /v1/inbound/{adapter}.
 *
 * Any channel adapter can post here (docs/connectors/api.md). Checks run
 * cheapest-and-safest first: adapter known (404), signature over the raw
 * bytes (401) before any parsing, JSON and UTF-8 (400), fields (400), then
 * omr_ingest(); the 200 is sent from the ingest callback, after Redis
 * stored the message. Loop thread only. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "omniroute/connector.h"
#include "omniroute/http.h"
#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/signature.h"
#include "omniroute/text.h"
#include "omniroute/timefmt.h"

#define MAX_ID_LEN      256
#define MAX_ATTACHMENTS 50
#define MAX_TAGS        32

static int field_fail(struct omr_api_error *fe, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int field_fail(struct omr_api_error *fe, const char *code, const char *fmt, ...)
{
        va_list ap;
        fe->code = code;
        va_start(ap, fmt);
        vsnprintf(fe->detail, sizeof(fe->detail), fmt, ap);
        va_end(ap);
        return -1;
}

/* Optional string member of at most `max` bytes; absent or null → NULL. */
static int opt_string(const json_t *o, const char *key, const char *path, size_t max, char **out,
                      struct omr_api_error *fe)
{
        const json_t *v = json_object_get(o, key);
        if (v == NULL || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return field_fail(fe, "invalid_field", "'%s' must be a string", path);
        if (json_string_length(v) > max)
                return field_fail(fe, "invalid_field", "'%s' is longer than %zu bytes", path, max);
        *out = strdup(json_string_value(v));
        return *out ? 0 : field_fail(fe, "invalid_field", "out of memory");
}

static int req_string(const json_t *o, const char *key, const char *path, size_t max, char **out,
                      struct omr_api_error *fe)
{
        if (opt_string(o, key, path, max, out, fe))
                return -1;
        if (*out == NULL || **out == '\0')
                return field_fail(fe, "missing_field", "'%s' is required", path);
        return 0;
}

static int parse_attachments(const json_t *j, struct omr_message *m, struct omr_api_error *fe)
{
        const json_t *atts = json_object_get(j, "attachments");
        if (atts == NULL || json_is_null(atts))
                return 0;
        if (!json_is_array(atts) || json_array_size(atts) > MAX_ATTACHMENTS)
                return field_fail(fe, "invalid_field",
                                  "'attachments' must be an array of at most %d objects",
                                  MAX_ATTACHMENTS);
        if (json_array_size(atts) == 0)
                return 0;
        m->attachments = calloc(json_array_size(atts), sizeof(*m->attachments));
        if (m->attachments == NULL)
                return field_fail(fe, "invalid_field", "out of memory");
        for (size_t i = 0; i < json_array_size(atts); i++) {
                const json_t *a = json_array_get(atts, i);
                struct omr_attachment *at = &m->attachments[m->n_attachments++];
                at->size = -1;
                if (!json_is_object(a))
                        return field_fail(fe, "invalid_field",
                                          "'attachments[%zu]' must be an object", i);
                if (opt_string(a, "name", "attachments[].name", 1024, &at->name, fe) ||
                    opt_string(a, "type", "attachments[].type", 255, &at->type, fe) ||
                    req_string(a, "url", "attachments[].url", 8192, &at->url, fe))
                        return -1;
                const json_t *sz = json_object_get(a, "size");
                if (sz && !json_is_null(sz)) {
                        if (!json_is_integer(sz) || json_integer_value(sz) < 0)
                                return field_fail(fe, "invalid_field",
                                                  "'attachments[%zu].size' must be a byte count",
                                                  i);
                        at->size = json_integer_value(sz);
                }
        }
        return 0;
}

static int parse_tags(const json_t *j, struct omr_message *m, struct omr_api_error *fe)
{
        const json_t *tags = json_object_get(j, "tags");
        if (tags == NULL || json_is_null(tags))
                return 0;
        if (!json_is_array(tags) || json_array_size(tags) > MAX_TAGS)
                return field_fail(fe, "invalid_field",
                                  "'tags' must be an array of at most %d strings", MAX_TAGS);
        if (json_array_size(tags) == 0)
                return 0;
        m->tags = calloc(json_array_size(tags), sizeof(*m->tags));
        if (m->tags == NULL)
                return field_fail(fe, "invalid_field", "out of memory");
        for (size_t i = 0; i < json_array_size(tags); i++) {
                const json_t *t = json_array_get(tags, i);
                if (!json_is_string(t) || json_string_length(t) == 0 || json_string_length(t) > 64)
                        return field_fail(fe, "invalid_field",
                                          "'tags[%zu]' must be a string of 1-64 bytes", i);
                if ((m->tags[m->n_tags] = strdup(json_string_value(t))) == NULL)
                        return field_fail(fe, "invalid_field", "out of memory");
                m->n_tags++;
        }
        return 0;
}

struct omr_message *omr_api_message_from_json(const json_t *j, const char *adapter,
                                              struct omr_api_error *fe)
{
        struct omr_message *m = omr_message_new();
        char *channel = NULL, *sent_at = NULL, *text = NULL;
        const json_t *from;

        if (m == NULL) {
                field_fail(fe, "invalid_field", "out of memory");
                return NULL;
        }
        if (!json_is_object(j)) {
                field_fail(fe, "bad_json", "the body must be a JSON object");
                goto fail;
        }
        if (asprintf(&m->provider, "api:%s", adapter) < 0) {
                m->provider = NULL;
                field_fail(fe, "invalid_field", "out of memory");
                goto fail;
        }
        if (req_string(j, "external_id", "external_id", MAX_ID_LEN, &m->external_id, fe) ||
            req_string(j, "channel", "channel", 16, &channel, fe))
                goto fail;
        int ch = omr_channel_parse(channel);
        if (ch < 0) {
                field_fail(fe, "invalid_field",
                           "'channel' must be email, chat, sms, social or api, got '%s'", channel);
                goto fail;
        }
        m->channel = (enum omr_channel)ch;
        from = json_object_get(j, "from");
        if (from == NULL || json_is_null(from)) {
                field_fail(fe, "missing_field", "'from' is required");
                goto fail;
        }
        if (!json_is_object(from)) {
                field_fail(fe, "invalid_field", "'from' must be an object");
                goto fail;
        }
        if (req_string(from, "id", "from.id", MAX_ID_LEN, &m->customer.id, fe) ||
            opt_string(from, "name", "from.name", 256, &m->customer.name, fe) ||
            opt_string(from, "handle", "from.handle", 256, &m->customer.handle, fe) ||
            opt_string(j, "to", "to", 256, &m->to, fe) ||
            opt_string(j, "subject", "subject", 1024, &m->subject, fe) ||
            opt_string(j, "thread", "thread", MAX_ID_LEN, &m->thread_key, fe) ||
            opt_string(j, "text", "text", SIZE_MAX, &text, fe) ||
            opt_string(j, "sent_at", "sent_at", 64, &sent_at, fe) || parse_attachments(j, m, fe) ||
            parse_tags(j, m, fe))
                goto fail;
        json_t *autosub = json_object_get(j, "auto_submitted");
        if (autosub && !json_is_boolean(autosub) && !json_is_null(autosub)) {
                field_fail(fe, "invalid_field", "'auto_submitted' must be true or false");
                goto fail;
        }
        /* An adapter relaying an auto-reply or bulk mail says so: the
         * customer is then never sent an acknowledgement. */
        m->auto_submitted = json_is_true(autosub);
        if (sent_at && omr_time_parse(sent_at, &m->sent_at) != 0) {
                field_fail(fe, "invalid_field", "'sent_at' must be an RFC 3339 time");
                goto fail;
        }
        m->text = omr_text_trim(text ? text : "");
        if (m->text == NULL) {
                field_fail(fe, "invalid_field", "'text' is not valid UTF-8");
                goto fail;
        }
        if (*m->text == '\0' && m->n_attachments == 0) {
                field_fail(fe, "missing_field", "'text' is required (or attachments)");
                goto fail;
        }
        free(channel);
        free(sent_at);
        free(text);
        return m;
fail:
        free(channel);
        free(sent_at);
        free(text);
        omr_message_free(m);
        return NULL;
}

static void on_stored(const struct omr_ingest_result *res, void *arg)
{
        struct omr_http_request *req = arg;
        if (res->status == OMR_INGEST_UNAVAILABLE) {
                omr_http_reply_unavailable(req, "store_unavailable",
                                           "the message was not stored (%s); retry later",
                                           res->detail);
                return;
        }
        json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:b}", "conversation_id", res->conversation_id,
                              "message_id", res->message_id, "queue", res->queue, "duplicate",
                              res->status == OMR_INGEST_DUPLICATE, "new_conversation",
                              res->new_conversation);
        omr_http_reply_json_take(req, 200, j);
}

static void reject(struct omr_connector *c, struct omr_http_request *req, unsigned status,
                   const char *code, const char *detail)
{
        omr_metrics_inc(omr_core_metrics(c->core), OMR_M_REJECTED, "api", code);
        omr_http_reply_error(req, status, code, "%s", detail);
}

static void on_inbound(struct omr_http_request *req, void *arg)
{
        struct omr_connector *c = arg;
        const struct omr_conf *conf = omr_core_conf(c->core);
        const char *name = omr_http_param(req, "adapter");
        const struct omr_conf_adapter *a = omr_conf_adapter(conf, name);
        char detail[320];

        if (a == NULL) {
                snprintf(detail, sizeof(detail), "no adapter named '%.64s' is configured", name);
                reject(c, req, 404, "unknown_adapter", detail);
                return;
        }
        size_t len;
        const char *body = omr_http_body(req, &len);
        enum omr_sig_result sr = omr_sig_verify_api(
                a->secret, a->secret_len, omr_http_header(req, "X-Omniroute-Signature"),
                omr_http_header(req, "X-Omniroute-Timestamp"), a->require_timestamp,
                omr_now_ms() / 1000, conf->api.timestamp_window_s, body, len);
        if (sr != OMR_SIG_OK) {
                static const char *const why[] = {
                        [OMR_SIG_MISSING] = "X-Omniroute-Signature is missing",
                        [OMR_SIG_MALFORMED] =
                                "X-Omniroute-Signature must be sha256=<64 hex digits>",
                        [OMR_SIG_MISMATCH] = "the signature does not match the body",
                        [OMR_SIG_TS_MISSING] = "this adapter requires X-Omniroute-Timestamp",
                        [OMR_SIG_TS_MALFORMED] = "X-Omniroute-Timestamp must be Unix seconds",
                        [OMR_SIG_TS_STALE] = "X-Omniroute-Timestamp is outside the replay window",
                };
                snprintf(detail, sizeof(detail), "%s (adapter %s)", why[sr], a->name);
                reject(c, req, 401, omr_sig_result_name(sr), detail);
                return;
        }
        json_error_t je;
        json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
        if (j == NULL) {
                bool utf8 = json_error_code(&je) == json_error_invalid_utf8;
                snprintf(detail, sizeof(detail), "line %d column %d: %s", je.line, je.column,
                         je.text);
                reject(c, req, 400, utf8 ? "invalid_utf8" : "bad_json", detail);
                return;
        }
        struct omr_api_error fe = {0};
        struct omr_message *m = omr_api_message_from_json(j, a->name, &fe);
        json_decref(j);
        if (m == NULL) {
                reject(c, req, 400, fe.code ? fe.code : "invalid_field", fe.detail);
                return;
        }
        omr_ingest(c->core, m, on_stored, req);
}

static int api_start(struct omr_connector *c)
{
        return omr_http_route(omr_core_http(c->core), "POST", "/v1/inbound/{adapter}", on_inbound,
                              c);
}

const struct omr_connector_ops omr_api_connector = {
        .name = "api",
        .channel = OMR_CHANNEL_API,
        .start = api_start,
};
