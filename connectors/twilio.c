/* twilio.c — Twilio Programmable Messaging (SMS/MMS):
 *   POST /v1/sms/twilio/{account}          inbound messages (form)
 *   POST /v1/sms/twilio/{account}/status   delivery status callbacks
 *   send(): POST {api_base}/2010-04-01/Accounts/{sid}/Messages.json
 * Every webhook is checked against X-Twilio-Signature over the public URL
 * (account.public_url + the request target as sent) and the sorted form
 * parameters, before anything else is looked at. Loop thread only. */
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

#define MAX_MEDIA 10
/* Twilio's documented maximum message body. */
#define MAX_BODY_CHARS 1600

static const char twiml[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

static void reply_twiml(struct omr_http_request *req)
{
        omr_http_reply(req, 200, "text/xml", twiml, sizeof(twiml) - 1);
}

static void reject(struct omr_connector *c, struct omr_http_request *req, unsigned status,
                   const char *code, const char *detail)
{
        omr_metrics_inc(omr_core_metrics(c->core), OMR_M_REJECTED, "twilio", code);
        omr_http_reply_error(req, status, code, "%s", detail);
}

/* Account, form and signature: the common first half of both webhooks.
 * Returns the account, or NULL after answering. */
static const struct omr_conf_twilio_account *
verified(struct omr_connector *c, struct omr_http_request *req, struct omr_form *form)
{
        const struct omr_conf *conf = omr_core_conf(c->core);
        const struct omr_conf_twilio_account *a =
                omr_conf_twilio(conf, omr_http_param(req, "account"));
        if (a == NULL) {
                reject(c, req, 404, "unknown_account",
                       "no Twilio account of that name is configured");
                return NULL;
        }
        size_t len;
        const char *body = omr_http_body(req, &len);
        if (omr_form_parse(body, len, form) != 0) {
                reject(c, req, 400, "bad_form",
                       "the body is not valid application/x-www-form-urlencoded UTF-8");
                return NULL;
        }
        const char *sig = omr_http_header(req, "X-Twilio-Signature");
        if (sig == NULL || *sig == '\0') {
                omr_form_free(form);
                reject(c, req, 401, "missing_signature", "X-Twilio-Signature is missing");
                return NULL;
        }
        char *url = NULL;
        if (asprintf(&url, "%s%s", a->public_url, omr_http_raw_uri(req)) < 0)
                url = NULL;
        bool ok = url && omr_sig_twilio_verify(a->auth_token, url, form, sig);
        if (!ok) {
                char detail[512];
                snprintf(detail, sizeof(detail),
                         "X-Twilio-Signature does not match (URL %.300s): check public_url and "
                         "the auth token of account %s",
                         url ? url : "?", a->name);
                free(url);
                omr_form_free(form);
                reject(c, req, 401, "bad_signature", detail);
                return NULL;
        }
        free(url);
        return a;
}

static void on_stored(const struct omr_ingest_result *res, void *arg)
{
        struct omr_http_request *req = arg;
        if (res->status == OMR_INGEST_UNAVAILABLE) {
                omr_http_reply_unavailable(req, "store_unavailable",
                                           "the message was not stored (%s)", res->detail);
                return;
        }
        reply_twiml(req);
}

static char *e164_or_copy(const char *s)
{
        char n[17];
        return strdup(omr_phone_e164(s, n) == 0 ? n : s);
}

static void on_inbound(struct omr_http_request *req, void *arg)
{
        struct omr_connector *c = arg;
        struct omr_form form;
        const struct omr_conf_twilio_account *a = verified(c, req, &form);
        if (a == NULL)
                return;
        const char *sid = omr_form_get(&form, "MessageSid");
        const char *from = omr_form_get(&form, "From");
        const char *to = omr_form_get(&form, "To");
        if (!sid || !*sid || !from || !*from) {
                omr_form_free(&form);
                reject(c, req, 400, "missing_field", "'MessageSid' and 'From' are required");
                return;
        }
        struct omr_message *m = omr_message_new();
        if (m == NULL || asprintf(&m->provider, "twilio:%s", a->name) < 0) {
                omr_message_free(m);
                omr_form_free(&form);
                omr_http_reply_error(req, 503, "store_unavailable", "out of memory");
                return;
        }
        m->channel = OMR_CHANNEL_SMS;
        m->external_id = strdup(sid);
        m->customer.id = e164_or_copy(from);
        m->customer.handle = strdup(m->customer.id);
        if (to) {
                m->to = e164_or_copy(to);
                /* One conversation per (customer number, business number). */
                m->thread_key = strdup(m->to);
        }
        m->text = omr_text_trim_or_empty(omr_form_get(&form, "Body"));
        int n_media = atoi(omr_form_get(&form, "NumMedia") ? omr_form_get(&form, "NumMedia") : "0");
        if (n_media > MAX_MEDIA)
                n_media = MAX_MEDIA;
        if (n_media > 0)
                m->attachments = calloc((size_t)n_media, sizeof(*m->attachments));
        for (int i = 0; m->attachments && i < n_media; i++) {
                char k[32];
                snprintf(k, sizeof(k), "MediaUrl%d", i);
                const char *url = omr_form_get(&form, k);
                if (url == NULL)
                        continue;
                snprintf(k, sizeof(k), "MediaContentType%d", i);
                const char *type = omr_form_get(&form, k);
                struct omr_attachment *at = &m->attachments[m->n_attachments++];
                at->url = strdup(url);
                at->type = type ? strdup(type) : NULL;
                at->size = -1;
        }
        omr_form_free(&form);
        if (m->external_id == NULL || m->customer.id == NULL || m->text == NULL) {
                omr_message_free(m);
                omr_http_reply_error(req, 503, "store_unavailable", "out of memory");
                return;
        }
        omr_ingest(c->core, m, on_stored, req);
}

static void on_status_stored(bool stored, void *arg)
{
        struct omr_http_request *req = arg;
        if (stored)
                reply_twiml(req);
        else
                omr_http_reply_unavailable(req, "store_unavailable", "status not recorded");
}

static void on_status(struct omr_http_request *req, void *arg)
{
        struct omr_connector *c = arg;
        struct omr_form form;
        const struct omr_conf_twilio_account *a = verified(c, req, &form);
        if (a == NULL)
                return;
        const char *sid = omr_form_get(&form, "MessageSid");
        const char *status = omr_form_get(&form, "MessageStatus");
        if (!sid || !*sid || !status || !*status || strlen(status) > 32) {
                omr_form_free(&form);
                reject(c, req, 400, "missing_field",
                       "'MessageSid' and 'MessageStatus' are required");
                return;
        }
        char provider[80];
        snprintf(provider, sizeof(provider), "twilio:%s", a->name);
        omr_reply_status(c->core, provider, sid, status, omr_form_get(&form, "ErrorCode"),
                         on_status_stored, req);
        omr_form_free(&form);
}

/* --- send ------------------------------------------------------------------ */

/* Twilio's answer other than 429/5xx: 201 with the message sid, or a 4xx
 * with its error code and message (e.g. 21211, invalid To). */
static void parse_answer(const struct omr_fetch_response *r, struct omr_send_result *res, char *err,
                         size_t errlen)
{
        json_t *body = json_loadb(r->body, r->body_len, 0, NULL);
        const char *sid = json_string_value(json_object_get(body, "sid"));
        if ((r->status == 200 || r->status == 201) && sid) {
                snprintf(err, errlen, "%s", sid); /* the buffer outlives body */
                res->status = OMR_SEND_SENT;
                res->provider_message_id = err;
        } else {
                const char *msg = json_string_value(json_object_get(body, "message"));
                snprintf(err, errlen, "twilio HTTP %ld code %lld: %s", r->status,
                         json_integer_value(json_object_get(body, "code")),
                         msg ? msg : "no message");
                res->status = OMR_SEND_FAILED;
                res->error = err;
        }
        json_decref(body);
}

static int twilio_send(struct omr_connector *c, const struct omr_reply *r, omr_send_done_fn done,
                       void *arg)
{
        const struct omr_conf *conf = omr_core_conf(c->core);
        const struct omr_conf_twilio_account *a = omr_conf_twilio(conf, r->account);
        if (a == NULL) {
                struct omr_send_result res = {.status = OMR_SEND_FAILED,
                                              .error = "the Twilio account is no longer configured",
                                              .retry_after_ms = -1};
                done(&res, arg);
                return 0;
        }
        char *url = NULL, *callback = NULL, *userpwd = NULL, *body = NULL;
        int rc = -1;
        if (asprintf(&url, "%s/2010-04-01/Accounts/%s/Messages.json", a->api_base, a->account_sid) >
                    0 &&
            asprintf(&callback, "%s/v1/sms/twilio/%s/status", a->public_url, a->name) > 0 &&
            asprintf(&userpwd, "%s:%s", a->account_sid, a->auth_token) > 0) {
                const char *kv[] = {"To",   r->to,   "From",           a->from,
                                    "Body", r->text, "StatusCallback", callback,
                                    NULL};
                body = omr_form_encode(kv);
                struct omr_fetch_request fr = {
                        .method = "POST",
                        .url = url,
                        .content_type = "application/x-www-form-urlencoded",
                        .body = body,
                        .body_len = body ? strlen(body) : 0,
                        .userpwd = userpwd,
                        .timeout_ms = (long)conf->outbound.request_timeout_ms,
                };
                if (body)
                        rc = omr_send_http(c->core, "twilio", &fr, parse_answer, done, arg);
        }
        if (userpwd)
                explicit_bzero(userpwd, strlen(userpwd));
        free(url);
        free(callback);
        free(userpwd);
        free(body);
        return rc;
}

static int twilio_start(struct omr_connector *c)
{
        int rc = omr_http_route(omr_core_http(c->core), "POST", "/v1/sms/twilio/{account}",
                                on_inbound, c);
        return rc ? rc
                  : omr_http_route(omr_core_http(c->core), "POST",
                                   "/v1/sms/twilio/{account}/status", on_status, c);
}

const struct omr_connector_ops omr_twilio_connector = {
        .name = "twilio",
        .channel = OMR_CHANNEL_SMS,
        .start = twilio_start,
        .send = twilio_send,
        .max_text = MAX_BODY_CHARS,
};
