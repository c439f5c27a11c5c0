/* meta.c — Meta webhooks for Messenger and Instagram messaging:
 *   GET  /v1/meta/{app}   the subscription handshake (hub.mode, hub.verify_token,
 *                         hub.challenge echoed back)
 *   POST /v1/meta/{app}   event notifications, batched: entry[].messaging[]
 *   send(): POST {graph_base}/me/messages with the page's access token
 * Every POST is checked against X-Hub-Signature-256 (HMAC-SHA256 of the raw
 * body with the app secret) before the body is read. The customer messages
 * of one delivery are stored one after the other, in order, and the 200 is
 * sent only when all of them are stored: Meta resends an unanswered
 * delivery and dedup on the message id absorbs what was already stored.
 * Loop thread only. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "omniroute/connector.h"
#include "omniroute/fetch.h"
#include "omniroute/http.h"
#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/signature.h"
#include "omniroute/text.h"

/* Meta's documented limit on a Messenger text. */
#define MAX_TEXT_CHARS  2000
#define MAX_ID_LEN      128
#define MAX_MID_LEN     512
#define MAX_ATTACHMENTS 20
#define MAX_URL_LEN     8192
#define MAX_CHALLENGE   128
/* Year 9999 in ms: a later "timestamp" is not a time. */
#define MAX_TIME_MS 253402300799999LL

#define JOB_MAGIC 0x3e7au

/* --- the webhook body (pure) ---------------------------------------------- */

static int fail(struct omr_meta_error *e, unsigned status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int fail(struct omr_meta_error *e, unsigned status, const char *code, const char *fmt, ...)
{
        va_list ap;
        e->status = status;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
        va_end(ap);
        return -1;
}

/* o[key].id as a string of 1..MAX_ID_LEN bytes, or NULL. */
static const char *object_id(const json_t *o, const char *key)
{
        const json_t *id = json_object_get(json_object_get(o, key), "id");
        size_t n = json_string_length(id);
        return json_is_string(id) && n > 0 && n <= MAX_ID_LEN && strlen(json_string_value(id)) == n
                       ? json_string_value(id)
                       : NULL;
}

static const char *opt_str(const json_t *o, const char *key, size_t max)
{
        const json_t *v = json_object_get(o, key);
        return json_is_string(v) && json_string_length(v) <= max ? json_string_value(v) : NULL;
}

/* attachments: [{type, payload: {url}}]; ones without a URL (a fallback
 * without payload, a template) carry nothing to show and are left out. */
static int read_attachments(const json_t *msg, struct omr_message *m, const char *where,
                            struct omr_meta_error *e)
{
        const json_t *atts = json_object_get(msg, "attachments");
        if (atts == NULL || json_is_null(atts))
                return 0;
        if (!json_is_array(atts))
                return fail(e, 400, "invalid_field", "%s.message.attachments must be an array",
                            where);
        size_t n = json_array_size(atts);
        if (n == 0)
                return 0;
        m->attachments = calloc(n < MAX_ATTACHMENTS ? n : MAX_ATTACHMENTS, sizeof(*m->attachments));
        if (m->attachments == NULL)
                return fail(e, 503, "store_unavailable", "out of memory");
        for (size_t i = 0; i < n; i++) {
                const json_t *a = json_array_get(atts, i);
                if (!json_is_object(a))
                        return fail(e, 400, "invalid_field",
                                    "%s.message.attachments[%zu] must be an object", where, i);
                const char *url = opt_str(json_object_get(a, "payload"), "url", MAX_URL_LEN);
                if (url == NULL || *url == '\0' || m->n_attachments == MAX_ATTACHMENTS)
                        continue;
                const char *type = opt_str(a, "type", 64);
                struct omr_attachment *at = &m->attachments[m->n_attachments++];
                at->size = -1;
                at->url = strdup(url);
                at->type = type && *type ? strdup(type) : NULL;
                if (at->url == NULL || (type && *type && at->type == NULL))
                        return fail(e, 503, "store_unavailable", "out of memory");
        }
        return 0;
}

/* One messaging item: 1 and *m set for a customer's message, 0 for an
 * item that is not one (receipts, reactions, postbacks, echoes, an
 * unsupported or deleted message), -1 on a wrong shape. */
static int read_item(const json_t *it, const char *object, const char *app, const char *where,
                     struct omr_message **out, struct omr_meta_error *e)
{
        *out = NULL;
        if (!json_is_object(it))
                return fail(e, 400, "invalid_field", "%s must be an object", where);
        const json_t *msg = json_object_get(it, "message");
        if (msg == NULL || json_is_null(msg))
                return 0;
        if (!json_is_object(msg))
                return fail(e, 400, "invalid_field", "%s.message must be an object", where);
        if (json_is_true(json_object_get(msg, "is_echo")))
                return 0; /* our own page's message (a reply, or sent from Meta's inbox) */
        const json_t *mid = json_object_get(msg, "mid");
        if (!json_is_string(mid) || json_string_length(mid) == 0 ||
            json_string_length(mid) > MAX_MID_LEN ||
            strlen(json_string_value(mid)) != json_string_length(mid))
                return fail(e, 400, "invalid_field",
                            "%s.message.mid must be a string of 1-%d bytes", where, MAX_MID_LEN);
        const char *sender = object_id(it, "sender"), *recipient = object_id(it, "recipient");
        if (sender == NULL || recipient == NULL)
                return fail(e, 400, "invalid_field",
                            "%s needs sender.id and recipient.id (strings of 1-%d bytes)", where,
                            MAX_ID_LEN);
        const json_t *ts = json_object_get(it, "timestamp");
        if (ts && !json_is_null(ts) &&
            (!json_is_integer(ts) || json_integer_value(ts) < 0 ||
             json_integer_value(ts) > MAX_TIME_MS))
                return fail(e, 400, "invalid_field", "%s.timestamp must be milliseconds", where);
        const json_t *text = json_object_get(msg, "text");
        if (text && !json_is_null(text) && !json_is_string(text))
                return fail(e, 400, "invalid_field", "%s.message.text must be a string", where);

        struct omr_message *m = omr_message_new();
        if (m == NULL)
                return fail(e, 503, "store_unavailable", "out of memory");
        m->channel = OMR_CHANNEL_SOCIAL;
        if (asprintf(&m->provider, "meta:%s", app) < 0)
                m->provider = NULL;
        if (asprintf(&m->thread_key, "%s:%s", object, recipient) < 0)
                m->thread_key = NULL;
        m->external_id = strdup(json_string_value(mid));
        m->customer.id = strdup(sender);
        m->customer.handle = strdup(sender);
        m->to = strdup(recipient);
        m->sent_at = json_integer_value(ts);
        m->text = omr_text_trim_or_empty(json_string_value(text));
        if (!m->provider || !m->thread_key || !m->external_id || !m->customer.id ||
            !m->customer.handle || !m->to || !m->text) {
                omr_message_free(m);
                return fail(e, 503, "store_unavailable", "out of memory");
        }
        if (read_attachments(msg, m, where, e) != 0) {
                omr_message_free(m);
                return -1;
        }
        if (*m->text == '\0' && m->n_attachments == 0) {
                omr_message_free(m); /* deleted, unsupported, or a share without a URL */
                return 0;
        }
        *out = m;
        return 1;
}

void omr_meta_batch_free(struct omr_meta_batch *b)
{
        for (size_t i = 0; i < b->n; i++)
                omr_message_free(b->msgs[i]);
        free(b->msgs);
        memset(b, 0, sizeof(*b));
}

static int parse_doc(const json_t *j, const char *app, struct omr_meta_batch *out,
                     struct omr_meta_error *e)
{
        if (!json_is_object(j))
                return fail(e, 400, "bad_json", "the body must be a JSON object");
        const char *object = json_string_value(json_object_get(j, "object"));
        if (object == NULL || (strcmp(object, "page") != 0 && strcmp(object, "instagram") != 0))
                return fail(e, 400, "invalid_field",
                            "'object' must be \"page\" or \"instagram\" (subscribe the app to "
                            "messaging fields only)");
        const json_t *entries = json_object_get(j, "entry");
        if (!json_is_array(entries))
                return fail(e, 400, "invalid_field", "'entry' must be an array");
        size_t total = 0;
        for (size_t i = 0; i < json_array_size(entries); i++) {
                const json_t *en = json_array_get(entries, i);
                if (!json_is_object(en))
                        return fail(e, 400, "invalid_field", "entry[%zu] must be an object", i);
                const json_t *items = json_object_get(en, "messaging");
                if (items != NULL && !json_is_null(items) && !json_is_array(items))
                        return fail(e, 400, "invalid_field",
                                    "entry[%zu].messaging must be an array", i);
                total += json_array_size(items);
        }
        if (total > OMR_META_MAX_ITEMS)
                return fail(e, 413, "too_many_messages",
                            "%zu messaging items in one delivery, at most %d", total,
                            OMR_META_MAX_ITEMS);
        if (total == 0)
                return 0;
        out->msgs = calloc(total, sizeof(*out->msgs));
        if (out->msgs == NULL)
                return fail(e, 503, "store_unavailable", "out of memory");
        for (size_t i = 0; i < json_array_size(entries); i++) {
                const json_t *items = json_object_get(json_array_get(entries, i), "messaging");
                for (size_t k = 0; k < json_array_size(items); k++) {
                        char where[64];
                        snprintf(where, sizeof(where), "entry[%zu].messaging[%zu]", i, k);
                        struct omr_message *m;
                        int rc = read_item(json_array_get(items, k), object, app, where, &m, e);
                        out->items++;
                        if (rc < 0 && e->status != 400)
                                return -1; /* out of memory: the whole delivery again */
                        if (rc < 0) {
                                if (out->invalid++ == 0)
                                        snprintf(out->first_invalid, sizeof(out->first_invalid),
                                                 "%s", e->detail);
                                continue;
                        }
                        if (rc == 0)
                                out->skipped++;
                        else
                                out->msgs[out->n++] = m;
                }
        }
        if (out->invalid > 0 && out->n == 0 && out->skipped == 0)
                return fail(e, 400, "invalid_field", "%s", out->first_invalid);
        return 0;
}

int omr_meta_parse(const char *body, size_t len, const char *app, struct omr_meta_batch *out,
                   struct omr_meta_error *err)
{
        memset(out, 0, sizeof(*out));
        json_error_t je;
        json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
        if (j == NULL) {
                bool utf8 = json_error_code(&je) == json_error_invalid_utf8;
                return fail(err, 400, utf8 ? "invalid_utf8" : "bad_json", "line %d column %d: %s",
                            je.line, je.column, je.text);
        }
        int rc = parse_doc(j, app, out, err);
        json_decref(j);
        if (rc != 0)
                omr_meta_batch_free(out);
        return rc;
}

/* --- the webhook endpoints ------------------------------------------------- */

static void reject(struct omr_connector *c, struct omr_http_request *req, unsigned status,
                   const char *code, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void reject(struct omr_connector *c, struct omr_http_request *req, unsigned status,
                   const char *code, const char *fmt, ...)
{
        char detail[320];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        omr_metrics_inc(omr_core_metrics(c->core), OMR_M_REJECTED, "meta", code);
        omr_http_reply_error(req, status, code, "%s", detail);
}

static const struct omr_conf_meta_app *app_of(struct omr_connector *c, struct omr_http_request *req)
{
        const char *name = omr_http_param(req, "app");
        const struct omr_conf_meta_app *a = omr_conf_meta(omr_core_conf(c->core), name);
        if (a == NULL)
                reject(c, req, 404, "unknown_app", "no Meta app named '%.64s' is configured",
                       name ? name : "");
        return a;
}

/* Constant time whatever the presented token: both sides are hashed
 * (keyed with the app secret) and the digests compared. */
static bool verify_token_matches(const struct omr_conf_meta_app *a, const char *presented)
{
        unsigned char want[64], got[64];
        const void *pw[] = {a->verify_token}, *pg[] = {presented};
        size_t lw[] = {strlen(a->verify_token)}, lg[] = {strlen(presented)};
        size_t nw = omr_hmac(OMR_HMAC_SHA256, a->app_secret, a->app_secret_len, pw, lw, 1, want);
        size_t ng = omr_hmac(OMR_HMAC_SHA256, a->app_secret, a->app_secret_len, pg, lg, 1, got);
        return nw == 32 && ng == 32 && omr_ct_equal(want, got, 32);
}

static bool printable_ascii(const char *s, size_t max)
{
        size_t n = 0;
        for (; s[n]; n++)
                if (n == max || s[n] < 0x21 || s[n] > 0x7e)
                        return false;
        return n > 0;
}

static void on_verify(struct omr_http_request *req, void *arg)
{
        struct omr_connector *c = arg;
        const struct omr_conf_meta_app *a = app_of(c, req);
        if (a == NULL)
                return;
        const char *mode = omr_http_query(req, "hub.mode");
        const char *token = omr_http_query(req, "hub.verify_token");
        const char *challenge = omr_http_query(req, "hub.challenge");
        if (mode == NULL || token == NULL || challenge == NULL) {
                reject(c, req, 400, "missing_parameter",
                       "hub.mode, hub.verify_token and hub.challenge are required");
                return;
        }
        if (strcmp(mode, "subscribe") != 0) {
                reject(c, req, 400, "bad_mode", "hub.mode must be 'subscribe'");
                return;
        }
        if (!verify_token_matches(a, token)) {
                omr_log(LOG_WARNING, "meta", "verification refused app=%s peer=%s why=token",
                        a->name, omr_http_peer(req));
                reject(c, req, 403, "bad_verify_token",
                       "hub.verify_token is not the verify token of Meta app %s", a->name);
                return;
        }
        if (!printable_ascii(challenge, MAX_CHALLENGE)) {
                reject(c, req, 400, "bad_challenge",
                       "hub.challenge must be 1-%d printable ASCII characters", MAX_CHALLENGE);
                return;
        }
        omr_log(LOG_INFO, "meta", "webhook verified app=%s", a->name);
        omr_http_reply(req, 200, "text/plain", challenge, strlen(challenge));
}

/* X-Hub-Signature-256: "sha256=" + lower-case hex HMAC-SHA256 of the raw
 * body with the app secret. */
static bool signature_matches(const struct omr_conf_meta_app *a, const char *header,
                              const char *body, size_t len)
{
        if (strncmp(header, "sha256=", 7) != 0)
                return false;
        unsigned char mac[64];
        const void *parts[] = {body};
        size_t lens[] = {len};
        size_t n = omr_hmac(OMR_HMAC_SHA256, a->app_secret, a->app_secret_len, parts, lens, 1, mac);
        return n == 32 && omr_hex_equal(header + 7, strlen(header + 7), mac, n);
}

/* One delivery being stored, message after message. */
struct job {
        unsigned magic;
        struct omr_connector *c;
        struct omr_http_request *req;
        struct omr_meta_batch batch;
        char app[65];
        size_t next; /* the next message to hand to omr_ingest */
        size_t stored, duplicates;
        bool in_call;  /* inside omr_ingest() */
        bool answered; /* its callback came while in_call */
        bool failed;   /* a message was not stored */
        char detail[200];
};

static void job_free(struct job *j)
{
        omr_meta_batch_free(&j->batch);
        j->magic = 0;
        free(j);
}

static void reply_stored(struct omr_http_request *req, size_t stored, size_t duplicates,
                         size_t skipped, size_t invalid)
{
        json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I}", "status", "stored", "stored",
                              (json_int_t)stored, "duplicates", (json_int_t)duplicates, "skipped",
                              (json_int_t)skipped, "invalid", (json_int_t)invalid);
        omr_http_reply_json_take(req, 200, o);
}

static void job_done(struct job *j)
{
        omr_log(LOG_INFO, "meta", "delivery stored app=%s stored=%zu duplicates=%zu skipped=%zu",
                j->app, j->stored, j->duplicates, j->batch.skipped);
        reply_stored(j->req, j->stored, j->duplicates, j->batch.skipped, j->batch.invalid);
        job_free(j);
}

/* Meta resends the whole delivery; what was stored comes back as
 * duplicates. Nothing more is tried once one message failed. */
static void job_unavailable(struct job *j)
{
        size_t done = j->stored + j->duplicates;
        omr_log(LOG_WARNING, "meta", "delivery not stored app=%s stored=%zu of=%zu detail=\"%s\"",
                j->app, done, j->batch.n, j->detail);
        omr_http_reply_unavailable(j->req, "store_unavailable",
                                   "%zu of %zu messages were not stored (%s); retry later",
                                   j->batch.n - done, j->batch.n, j->detail);
        job_free(j);
}

static void on_stored(const struct omr_ingest_result *res, void *arg);

static void pump(struct job *j)
{
        while (j->next < j->batch.n) {
                struct omr_message *m = j->batch.msgs[j->next];
                j->batch.msgs[j->next++] = NULL;
                j->in_call = true;
                j->answered = false;
                omr_ingest(j->c->core, m, on_stored, j); /* takes m */
                j->in_call = false;
                if (!j->answered)
                        return; /* on_stored goes on */
                if (j->failed) {
                        job_unavailable(j);
                        return;
                }
        }
        job_done(j);
}

static void on_stored(const struct omr_ingest_result *res, void *arg)
{
        struct job *j = arg;
        OMR_MAGIC_CHECK(j, JOB_MAGIC);
        if (res->status == OMR_INGEST_UNAVAILABLE) {
                j->failed = true;
                snprintf(j->detail, sizeof(j->detail), "%s",
                         res->detail ? res->detail : "store unavailable");
        } else if (res->status == OMR_INGEST_DUPLICATE) {
                j->duplicates++;
        } else {
                j->stored++;
        }
        if (j->in_call) {
                j->answered = true; /* pump() goes on: no recursion per message */
                return;
        }
        if (j->failed)
                job_unavailable(j);
        else
                pump(j);
}

static void on_event(struct omr_http_request *req, void *arg)
{
        struct omr_connector *c = arg;
        const struct omr_conf_meta_app *a = app_of(c, req);
        if (a == NULL)
                return;
        size_t len;
        const char *body = omr_http_body(req, &len);
        const char *sig = omr_http_header(req, "X-Hub-Signature-256");
        if (sig == NULL || *sig == '\0') {
                reject(c, req, 401, "missing_signature",
                       "X-Hub-Signature-256 is missing (Meta app %s)", a->name);
                return;
        }
        if (!signature_matches(a, sig, body, len)) {
                omr_log(LOG_WARNING, "meta", "bad signature app=%s peer=%s", a->name,
                        omr_http_peer(req));
                reject(c, req, 401, "bad_signature",
                       "X-Hub-Signature-256 does not match the body: check the app secret of "
                       "Meta app %s",
                       a->name);
                return;
        }
        struct omr_meta_error err = {0};
        struct job *j = calloc(1, sizeof(*j));
        if (j == NULL) {
                omr_http_reply_unavailable(req, "store_unavailable", "out of memory");
                return;
        }
        if (omr_meta_parse(body, len, a->name, &j->batch, &err) != 0) {
                free(j);
                if (err.status == 503)
                        omr_http_reply_unavailable(req, err.code, "%s", err.detail);
                else
                        reject(c, req, err.status, err.code, "%s", err.detail);
                return;
        }
        if (j->batch.invalid) {
                omr_metrics_inc(omr_core_metrics(c->core), OMR_M_REJECTED, "meta", "invalid_item");
                omr_log(LOG_WARNING, "meta",
                        "items of a wrong shape left out, the rest stored app=%s invalid=%zu "
                        "first=\"%s\" peer=%s",
                        a->name, j->batch.invalid, j->batch.first_invalid, omr_http_peer(req));
        }
        if (j->batch.skipped)
                omr_log(LOG_DEBUG, "meta",
                        "skipped items app=%s skipped=%zu (receipts, reactions, echoes, postbacks)",
                        a->name, j->batch.skipped);
        j->magic = JOB_MAGIC;
        j->c = c;
        j->req = req;
        snprintf(j->app, sizeof(j->app), "%s", a->name);
        pump(j);
}

/* --- send ------------------------------------------------------------------- */

/* Graph error codes worth another try: 4 (app), 17 (user), 32 (page) and
 * 613 (custom) rate limits, 2 (temporary service problem). */
static bool graph_code_transient(long long code)
{
        return code == 2 || code == 4 || code == 17 || code == 32 || code == 613;
}

/* The Send API's answer other than 429/5xx: 200 {"recipient_id",
 * "message_id"}, or a Graph error {"error": {"message", "code",
 * "error_subcode", "is_transient"}} (a message outside the 24-hour window
 * is code 10 / subcode 2018278: refused for good). */
static void parse_answer(const struct omr_fetch_response *r, struct omr_send_result *res, char *err,
                         size_t errlen)
{
        json_t *body = json_loadb(r->body, r->body_len, 0, NULL);
        const char *mid = json_string_value(json_object_get(body, "message_id"));
        const json_t *ge = json_object_get(body, "error");
        if (r->status == 200 && mid && *mid) {
                snprintf(err, errlen, "%s", mid); /* the buffer outlives body */
                res->status = OMR_SEND_SENT;
                res->provider_message_id = err;
        } else {
                const char *msg = json_string_value(json_object_get(ge, "message"));
                long long code = json_integer_value(json_object_get(ge, "code"));
                long long sub = json_integer_value(json_object_get(ge, "error_subcode"));
                char subcode[40] = "";
                if (sub)
                        snprintf(subcode, sizeof(subcode), " (subcode %lld)", sub);
                snprintf(err, errlen, "meta HTTP %ld code %lld: %.300s%s", r->status, code,
                         msg                ? msg
                         : r->status == 200 ? "no message_id in the answer"
                                            : "no message",
                         subcode);
                bool again = graph_code_transient(code) ||
                             json_is_true(json_object_get(ge, "is_transient"));
                res->status = again ? OMR_SEND_RETRY : OMR_SEND_FAILED;
                res->error = err;
        }
        json_decref(body);
}

static void send_failed(omr_send_done_fn done, void *arg, const char *why)
{
        struct omr_send_result res = {
                .status = OMR_SEND_FAILED, .error = why, .retry_after_ms = -1};
        done(&res, arg);
}

/* thread_ref "page:<id>" / "instagram:<id>" → the configured page. */
static const struct omr_conf_meta_page *page_of(const struct omr_conf_meta_app *a,
                                                const char *thread_ref)
{
        const char *colon = thread_ref ? strchr(thread_ref, ':') : NULL;
        if (colon == NULL)
                return NULL;
        size_t kind = (size_t)(colon - thread_ref);
        if (!(kind == 4 && strncmp(thread_ref, "page", 4) == 0) &&
            !(kind == 9 && strncmp(thread_ref, "instagram", 9) == 0))
                return NULL;
        for (size_t i = 0; i < a->n_pages; i++)
                if (strcmp(a->pages[i].id, colon + 1) == 0)
                        return &a->pages[i];
        return NULL;
}

static int meta_send(struct omr_connector *c, const struct omr_reply *r, omr_send_done_fn done,
                     void *arg)
{
        const struct omr_conf *conf = omr_core_conf(c->core);
        const struct omr_conf_meta_app *a = omr_conf_meta(conf, r->account);
        if (a == NULL) {
                send_failed(done, arg, "the Meta app is no longer configured");
                return 0;
        }
        const struct omr_conf_meta_page *p = page_of(a, r->thread_ref);
        if (p == NULL) {
                char why[256];
                snprintf(why, sizeof(why), "no page token for '%.120s' in Meta app %s",
                         r->thread_ref ? r->thread_ref : "", a->name);
                send_failed(done, arg, why);
                return 0;
        }
        if (r->to == NULL || *r->to == '\0') {
                send_failed(done, arg, "the conversation has no Meta recipient id");
                return 0;
        }
        char *url = NULL, *auth = NULL, *body = NULL;
        int rc = -ENOMEM;
        json_t *j = json_pack("{s:{s:s}, s:s, s:{s:s}}", "recipient", "id", r->to, "messaging_type",
                              "RESPONSE", "message", "text", r->text);
        body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        /* "me" is whoever the token belongs to: the Page for a Page token
         * (Messenger, and Instagram through Facebook Login), the Instagram
         * account for an Instagram Login token. The page id only picks the
         * token. */
        if (asprintf(&url, "%s/me/messages", a->graph_base) < 0)
                url = NULL;
        if (asprintf(&auth, "Authorization: Bearer %s", p->token) < 0)
                auth = NULL;
        if (body && url && auth) {
                const char *headers[] = {auth, NULL};
                struct omr_fetch_request fr = {
                        .method = "POST",
                        .url = url,
                        .content_type = "application/json",
                        .body = body,
                        .body_len = strlen(body),
                        .headers = headers,
                        .timeout_ms = (long)conf->outbound.request_timeout_ms,
                };
                rc = omr_send_http(c->core, "meta", &fr, parse_answer, done, arg);
        }
        if (auth) {
                explicit_bzero(auth, strlen(auth));
                free(auth);
        }
        free(url);
        free(body);
        return rc;
}

static int meta_start(struct omr_connector *c)
{
        struct omr_http *h = omr_core_http(c->core);
        int rc = omr_http_route(h, "GET", "/v1/meta/{app}", on_verify, c);
        return rc ? rc : omr_http_route(h, "POST", "/v1/meta/{app}", on_event, c);
}

const struct omr_connector_ops omr_meta_connector = {
        .name = "meta",
        .channel = OMR_CHANNEL_SOCIAL,
        .start = meta_start,
        .send = meta_send,
        .max_text = MAX_TEXT_CHARS,
};
