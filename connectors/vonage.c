/* vonage.c — Vonage (Nexmo) SMS API:
 *   GET or POST /v1/sms/vonage/{account}   inbound messages (query, form or JSON)
 *   send(): POST {api_base}/sms/json
 * Signed webhooks (the account's signature secret and method) are checked
 * before anything else; concatenated messages are collected part by part
 * in Redis (omr_collect_part) and stored once, joined. Loop thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/connector.h"
#include "omniroute/fetch.h"
#include "omniroute/form.h"
#include "omniroute/http.h"
#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/signature.h"
#include "omniroute/text.h"
#include "omniroute/timefmt.h"

#define MAX_PARTS      16
#define MAX_TEXT_CHARS 3200
#define SIG_WINDOW_S   300

static const char ok_body[] = "{\"status\":\"ok\"}";

static void reply_ok(struct omr_http_request *req)
{
        omr_http_reply(req, 200, "application/json", ok_body, sizeof(ok_body) - 1);
}

static void reject(struct omr_connector *c, struct omr_http_request *req, unsigned status,
                   const char *code, const char *detail)
{
        omr_metrics_inc(omr_core_metrics(c->core), OMR_M_REJECTED, "vonage", code);
        omr_http_reply_error(req, status, code, "%s", detail);
}

/* The webhook's parameters, wherever Vonage put them: the query (GET),
 * a form body, or a JSON object body. */
static int read_params(struct omr_http_request *req, struct omr_form *f)
{
        size_t len;
        const char *body = omr_http_body(req, &len);
        const char *ct = omr_http_header(req, "Content-Type");
        if (strcmp(omr_http_method(req), "GET") == 0) {
                const char *q = strchr(omr_http_raw_uri(req), '?');
                return q ? omr_form_parse(q + 1, strlen(q + 1), f) : omr_form_parse("", 0, f);
        }
        if (ct && strncmp(ct, "application/json", 16) == 0) {
                json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
                if (!json_is_object(j)) {
                        json_decref(j);
                        return -1;
                }
                memset(f, 0, sizeof(*f));
                const char *k;
                json_t *v;
                int rc = 0;
                json_object_foreach(j, k, v)
                {
                        char num[64];
                        const char *s = json_string_value(v);
                        if (json_is_integer(v)) {
                                snprintf(num, sizeof(num), "%lld", json_integer_value(v));
                                s = num;
                        } else if (json_is_boolean(v)) {
                                s = json_is_true(v) ? "true" : "false";
                        }
                        if (s && rc == 0)
                                rc = omr_form_set(f, k, s);
                }
                json_decref(j);
                if (rc != 0)
                        omr_form_free(f);
                return rc;
        }
        return omr_form_parse(body, len, f);
}

static const char *check_signature(const struct omr_conf_vonage_account *a,
                                   const struct omr_form *f)
{
        const char *sig = omr_form_get(f, "sig");
        if (sig == NULL)
                return a->require_signature ? "missing_signature" : NULL;
        if (a->signature_secret == NULL)
                return NULL; /* nothing to check against; require_signature is off */
        if (!omr_sig_vonage_verify(a->signature_secret, a->signature_method, f, sig))
                return "bad_signature";
        const char *ts = omr_form_get(f, "timestamp");
        long long now = omr_now_ms() / 1000, t = ts ? strtoll(ts, NULL, 10) : 0;
        if (t < now - SIG_WINDOW_S || t > now + SIG_WINDOW_S)
                return "stale_timestamp";
        return NULL;
}

struct inbound {
        struct omr_connector *c;
        struct omr_http_request *req;
        struct omr_message *m; /* for a split message: waiting for its text */
};

static void on_stored(const struct omr_ingest_result *res, void *arg)
{
        struct omr_http_request *req = arg;
        if (res->status == OMR_INGEST_UNAVAILABLE) {
                omr_http_reply_unavailable(req, "store_unavailable",
                                           "the message was not stored (%s)", res->detail);
                return;
        }
        reply_ok(req);
}

static void on_part(bool stored, const char *joined, void *arg)
{
        struct inbound *in = arg;
        if (!stored) {
                omr_http_reply_unavailable(in->req, "store_unavailable", "the part was not stored");
                omr_message_free(in->m);
        } else if (joined == NULL) {
                reply_ok(in->req); /* recorded; the message is stored with its last part */
                omr_message_free(in->m);
        } else {
                free(in->m->text);
                in->m->text = omr_text_trim_or_empty(joined);
                omr_ingest(in->c->core, in->m, on_stored, in->req);
        }
        free(in);
}

static char *plus_number(const char *digits)
{
        char n[17], *tmp = NULL;
        if (asprintf(&tmp, "+%s", digits) < 0)
                return NULL;
        if (omr_phone_e164(tmp, n) == 0) {
                free(tmp);
                return strdup(n);
        }
        free(tmp);
        return strdup(digits); /* alphanumeric sender or short code: as is */
}

/* Account, parameters and signature: the first half of both webhooks.
 * Returns the account with f filled, or NULL after answering. */
static const struct omr_conf_vonage_account *
verified(struct omr_connector *c, struct omr_http_request *req, struct omr_form *f)
{
        const struct omr_conf *conf = omr_core_conf(c->core);
        const struct omr_conf_vonage_account *a =
                omr_conf_vonage(conf, omr_http_param(req, "account"));
        if (a == NULL) {
                reject(c, req, 404, "unknown_account",
                       "no Vonage account of that name is configured");
                return NULL;
        }
        if (read_params(req, f) != 0) {
                reject(c, req, 400, "bad_request", "parameters are not valid form, query or JSON");
                return NULL;
        }
        const char *bad = check_signature(a, f);
        if (bad) {
                omr_form_free(f);
                reject(c, req, 401, bad, "the webhook signature (sig) was refused");
                return NULL;
        }
        return a;
}

static void on_inbound(struct omr_http_request *req, void *arg)
{
        struct omr_connector *c = arg;
        struct omr_form f;
        const struct omr_conf_vonage_account *a = verified(c, req, &f);
        if (a == NULL)
                return;
        const char *msisdn = omr_form_get(&f, "msisdn"), *id = omr_form_get(&f, "messageId");
        const char *to = omr_form_get(&f, "to"), *text = omr_form_get(&f, "text");
        if (!msisdn || !*msisdn || !id || !*id) {
                omr_form_free(&f);
                reject(c, req, 400, "missing_field", "'msisdn' and 'messageId' are required");
                return;
        }
        struct omr_message *m = omr_message_new();
        bool concat = omr_form_get(&f, "concat") && strcmp(omr_form_get(&f, "concat"), "true") == 0;
        int part = 0, total = 0;
        const char *ref = omr_form_get(&f, "concat-ref");
        if (concat) {
                part = atoi(omr_form_get(&f, "concat-part") ? omr_form_get(&f, "concat-part")
                                                            : "0");
                total = atoi(omr_form_get(&f, "concat-total") ? omr_form_get(&f, "concat-total")
                                                              : "0");
                if (!ref || !*ref || strlen(ref) > 64 || total < 1 || total > MAX_PARTS ||
                    part < 1 || part > total) {
                        omr_form_free(&f);
                        omr_message_free(m);
                        reject(c, req, 400, "invalid_field",
                               "concat-ref, concat-part and concat-total are inconsistent");
                        return;
                }
        }
        if (m == NULL || asprintf(&m->provider, "vonage:%s", a->name) < 0) {
                if (m)
                        m->provider = NULL;
                omr_form_free(&f);
                omr_message_free(m);
                omr_http_reply_error(req, 503, "store_unavailable", "out of memory");
                return;
        }
        m->channel = OMR_CHANNEL_SMS;
        m->customer.id = plus_number(msisdn);
        m->customer.handle = m->customer.id ? strdup(m->customer.id) : NULL;
        if (to) {
                m->to = plus_number(to);
                m->thread_key = m->to ? strdup(m->to) : NULL;
        }
        m->text = omr_text_trim_or_empty(text);
        if (concat && asprintf(&m->external_id, "concat:%s:%s", msisdn, ref) < 0)
                m->external_id = NULL;
        else if (!concat)
                m->external_id = strdup(id);
        if (!m->customer.id || !m->external_id || !m->text) {
                omr_form_free(&f);
                omr_message_free(m);
                reject(c, req, 400, "invalid_field", "'text' is not valid UTF-8");
                return;
        }
        if (!concat) {
                omr_form_free(&f);
                omr_ingest(c->core, m, on_stored, req);
                return;
        }
        struct inbound *in = calloc(1, sizeof(*in));
        char group[160];
        snprintf(group, sizeof(group), "%s:%s", msisdn, ref);
        if (in == NULL) {
                omr_form_free(&f);
                omr_message_free(m);
                omr_http_reply_error(req, 503, "store_unavailable", "out of memory");
                return;
        }
        in->c = c;
        in->req = req;
        in->m = m;
        /* Parts keep their own spacing: join the raw texts, trim the whole. */
        omr_collect_part(c->core, m->provider, group, part, total, text ? text : "", on_part, in);
        omr_form_free(&f);
}

/* --- delivery receipts ----------------------------------------------------- */

static void on_receipt_stored(bool stored, void *arg)
{
        struct omr_http_request *req = arg;
        if (stored)
                reply_ok(req);
        else
                omr_http_reply_unavailable(req, "store_unavailable", "receipt not recorded");
}

/* Delivery receipts: messageId, status (delivered, expired, failed,
 * rejected, accepted, buffered, unknown), err-code. */
static void on_receipt(struct omr_http_request *req, void *arg)
{
        struct omr_connector *c = arg;
        struct omr_form f;
        const struct omr_conf_vonage_account *a = verified(c, req, &f);
        if (a == NULL)
                return;
        const char *id = omr_form_get(&f, "messageId"), *status = omr_form_get(&f, "status");
        const char *err = omr_form_get(&f, "err-code");
        if (!id || !*id || !status || !*status || strlen(status) > 32) {
                omr_form_free(&f);
                reject(c, req, 400, "missing_field", "'messageId' and 'status' are required");
                return;
        }
        char provider[80];
        snprintf(provider, sizeof(provider), "vonage:%s", a->name);
        /* Vonage's "unknown" (the carrier did not report) is not our
         * "unknown" (outcome lost in a crash): the reply stays "sent". */
        if (strcmp(status, "unknown") == 0)
                status = "sent";
        /* err-code "0" means no error. */
        omr_reply_status(c->core, provider, id, status, err && strcmp(err, "0") != 0 ? err : NULL,
                         on_receipt_stored, req);
        omr_form_free(&f);
}

/* --- send ------------------------------------------------------------------ */

/* Vonage answers 200 with a per-message status: "0" sent, "1" throttled
 * (the documented retry case), anything else refused with error-text. */
static void parse_answer(const struct omr_fetch_response *r, struct omr_send_result *res, char *err,
                         size_t errlen)
{
        json_t *body = json_loadb(r->body, r->body_len, 0, NULL);
        json_t *msg = json_array_get(json_object_get(body, "messages"), 0);
        const char *status = json_string_value(json_object_get(msg, "status"));
        const char *id = json_string_value(json_object_get(msg, "message-id"));
        const char *text = json_string_value(json_object_get(msg, "error-text"));
        if (r->status == 200 && status && strcmp(status, "0") == 0 && id) {
                snprintf(err, errlen, "%s", id); /* the buffer outlives body */
                res->status = OMR_SEND_SENT;
                res->provider_message_id = err;
        } else {
                snprintf(err, errlen, "vonage HTTP %ld status %s: %s", r->status,
                         status ? status : "?", text ? text : "no error text");
                res->error = err;
                res->status = status && strcmp(status, "1") == 0 ? OMR_SEND_RETRY : OMR_SEND_FAILED;
        }
        json_decref(body);
}

static int vonage_send(struct omr_connector *c, const struct omr_reply *r, omr_send_done_fn done,
                       void *arg)
{
        const struct omr_conf *conf = omr_core_conf(c->core);
        const struct omr_conf_vonage_account *a = omr_conf_vonage(conf, r->account);
        if (a == NULL) {
                struct omr_send_result res = {.status = OMR_SEND_FAILED,
                                              .error = "the Vonage account is no longer configured",
                                              .retry_after_ms = -1};
                done(&res, arg);
                return 0;
        }
        bool ascii = true;
        for (const char *p = r->text; *p; p++)
                ascii = ascii && (unsigned char)*p < 0x80;
        const char *to = r->to[0] == '+' ? r->to + 1 : r->to;
        const char *kv[] = {"api_key", a->api_key, "api_secret", a->api_secret,
                            "from",    a->from,    "to",         to,
                            "text",    r->text,    "type",       ascii ? "text" : "unicode",
                            NULL};
        char *body = omr_form_encode(kv), *url = NULL;
        int rc = -1;
        if (body && asprintf(&url, "%s/sms/json", a->api_base) > 0) {
                struct omr_fetch_request fr = {
                        .method = "POST",
                        .url = url,
                        .content_type = "application/x-www-form-urlencoded",
                        .body = body,
                        .body_len = strlen(body),
                        .timeout_ms = (long)conf->outbound.request_timeout_ms,
                };
                rc = omr_send_http(c->core, "vonage", &fr, parse_answer, done, arg);
        }
        if (body)
                explicit_bzero(body, strlen(body)); /* it carries the API secret */
        free(body);
        free(url);
        return rc;
}

static int vonage_start(struct omr_connector *c)
{
        struct omr_http *h = omr_core_http(c->core);
        int rc;
        if ((rc = omr_http_route(h, "POST", "/v1/sms/vonage/{account}", on_inbound, c)) ||
            (rc = omr_http_route(h, "GET", "/v1/sms/vonage/{account}", on_inbound, c)) ||
            (rc = omr_http_route(h, "POST", "/v1/sms/vonage/{account}/status", on_receipt, c)))
                return rc;
        return omr_http_route(h, "GET", "/v1/sms/vonage/{account}/status", on_receipt, c);
}

const struct omr_connector_ops omr_vonage_connector = {
        .name = "vonage",
        .channel = OMR_CHANNEL_SMS,
        .start = vonage_start,
        .send = vonage_send,
        .max_text = MAX_TEXT_CHARS,
};
