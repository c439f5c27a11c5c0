/* mailgun.c — inbound email posted by Mailgun Routes, for teams that do
 * not run IMAP:  POST /v1/email/mailgun/{mailbox}
 *
 * The body is a form, url-encoded or multipart/form-data (GMime reads the
 * multipart: it is MIME). Every request is checked first: signature = hex
 * HMAC-SHA256(signing key, timestamp + token), timestamp within the
 * window. Then the mail itself: the raw message when the route forwards
 * it ("body-mime"), else one rebuilt from the parsed fields
 * (message-headers and body-plain / body-html), so both go through the
 * same MIME reader as IMAP mail (mime.c) and the same mapping (email.c).
 * A replayed post carries the same Message-ID: ingest answers duplicate.
 *
 * Answers, as Mailgun reads them: 200 stored; 406 refused for good (bad
 * signature, unusable form: "do not retry"); 503 Redis unavailable
 * (Mailgun retries for 8 hours). Loop thread only. */
#include <errno.h>
#include <gmime/gmime.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "email.h"
#include "omniroute/form.h"
#include "omniroute/http.h"
#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/signature.h"
#include "omniroute/timefmt.h"

#define MAX_FILES 100

struct upload {
        char *name, *type;
        int64_t size;
};

/* The posted fields and, for multipart, the attached files. */
struct post {
        struct omr_form fields;
        struct upload files[MAX_FILES];
        size_t n_files;
};

static void post_free(struct post *p)
{
        omr_form_free(&p->fields);
        for (size_t i = 0; i < p->n_files; i++) {
                free(p->files[i].name);
                free(p->files[i].type);
        }
}

static void reject(struct email_conn *ec, struct omr_http_request *req, unsigned status,
                   const char *code, const char *detail)
{
        omr_metrics_inc(omr_core_metrics(ec->c->core), OMR_M_REJECTED, "mailgun", code);
        omr_log(LOG_WARNING, "mailgun", "rejected mailbox=%s peer=%s reason=%s",
                omr_http_param(req, "mailbox"), omr_http_peer(req), code);
        omr_http_reply_error(req, status, code, "%s", detail);
}

/* One part of a multipart/form-data body: a field or a file. */
static int read_part(GMimeObject *part, struct post *p)
{
        if (!GMIME_IS_PART(part))
                return 0; /* nested multiparts are not form fields */
        const char *name = g_mime_object_get_content_disposition_parameter(part, "name");
        const char *filename = g_mime_part_get_filename((GMimePart *)part);
        GMimeDataWrapper *w = g_mime_part_get_content((GMimePart *)part);
        GMimeStream *mem = g_mime_stream_mem_new();
        if (w)
                g_mime_data_wrapper_write_to_stream(w, mem);
        GByteArray *ba = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)mem);
        int rc = 0;
        if (filename) {
                if (p->n_files < MAX_FILES) {
                        struct upload *u = &p->files[p->n_files++];
                        char *type = g_mime_content_type_get_mime_type(
                                g_mime_object_get_content_type(part));
                        u->name = strdup(filename ? filename : name);
                        u->type = strdup(type ? type : "application/octet-stream");
                        u->size = (int64_t)ba->len;
                        g_free(type);
                        if (!u->name || !u->type)
                                rc = -ENOMEM;
                }
        } else if (name) {
                char *value = g_strndup((const char *)ba->data, ba->len);
                rc = omr_form_set(&p->fields, name, value);
                g_free(value);
        }
        g_object_unref(mem);
        return rc;
}

/* multipart/form-data is MIME: give GMime the Content-Type it needs. */
static int read_multipart(const char *content_type, const char *body, size_t len, struct post *p)
{
        if (strpbrk(content_type, "\r\n"))
                return -EINVAL;
        GByteArray *ba = g_byte_array_new();
        g_byte_array_append(ba, (const guint8 *)"Content-Type: ", 14);
        g_byte_array_append(ba, (const guint8 *)content_type, (guint)strlen(content_type));
        g_byte_array_append(ba, (const guint8 *)"\r\n\r\n", 4);
        g_byte_array_append(ba, (const guint8 *)body, (guint)len);
        GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(ba); /* owns ba */
        GMimeParser *parser = g_mime_parser_new_with_stream(stream);
        GMimeObject *obj = g_mime_parser_construct_part(parser, NULL);
        int rc = -EINVAL;
        if (obj && GMIME_IS_MULTIPART(obj)) {
                GMimeMultipart *mp = (GMimeMultipart *)obj;
                rc = 0;
                for (int i = 0; rc == 0 && i < g_mime_multipart_get_count(mp); i++)
                        rc = read_part(g_mime_multipart_get_part(mp, i), p);
        }
        if (obj)
                g_object_unref(obj);
        g_object_unref(parser);
        g_object_unref(stream);
        return rc;
}

static bool signature_ok(const struct omr_conf_email_mailbox *mb, const struct omr_form *f,
                         const char **why)
{
        const char *ts = omr_form_get(f, "timestamp"), *token = omr_form_get(f, "token"),
                   *sig = omr_form_get(f, "signature");
        if (!ts || !token || !sig) {
                *why = "timestamp, token and signature are required";
                return false;
        }
        const void *parts[] = {ts, token};
        const size_t lens[] = {strlen(ts), strlen(token)};
        unsigned char mac[64];
        size_t n = omr_hmac(OMR_HMAC_SHA256, mb->mailgun_key, mb->mailgun_key_len, parts, lens, 2,
                            mac);
        if (n == 0 || !omr_hex_equal(sig, strlen(sig), mac, n)) {
                *why = "the signature does not match: check the mailbox's signing key";
                return false;
        }
        char *end;
        long long t = strtoll(ts, &end, 10);
        long long skew = omr_now_ms() / 1000 - t;
        if (*end || skew > mb->mailgun_window_ms / 1000 || -skew > mb->mailgun_window_ms / 1000) {
                *why = "the timestamp is outside the window (a replay, or a clock off)";
                return false;
        }
        return true;
}

/* A header value on one line: Mailgun hands them over unfolded, but a
 * line break in a value would end it. */
static void put_header(GString *s, const char *name, const char *value)
{
        g_string_append_printf(s, "%s: ", name);
        for (const char *c = value; *c; c++)
                g_string_append_c(s, (*c == '\r' || *c == '\n') ? ' ' : *c);
        g_string_append(s, "\r\n");
}

/* The mail rebuilt from Mailgun's parsed fields: its original headers
 * (minus those describing the original body) and the text body. */
static GString *rebuild(const struct omr_form *f)
{
        GString *s = g_string_new(NULL);
        json_t *hs = json_loads(
                omr_form_get(f, "message-headers") ? omr_form_get(f, "message-headers") : "[]", 0,
                NULL);
        bool have_from = false, have_subject = false;
        size_t i;
        json_t *h;
        json_array_foreach(hs, i, h)
        {
                const char *name = json_string_value(json_array_get(h, 0));
                const char *value = json_string_value(json_array_get(h, 1));
                if (!name || !value || strpbrk(name, ": \t\r\n") || !*name)
                        continue;
                if (strncasecmp(name, "content-", 8) == 0 || strcasecmp(name, "mime-version") == 0)
                        continue;
                have_from |= strcasecmp(name, "from") == 0;
                have_subject |= strcasecmp(name, "subject") == 0;
                put_header(s, name, value);
        }
        json_decref(hs);
        const char *from =
                omr_form_get(f, "from") ? omr_form_get(f, "from") : omr_form_get(f, "sender");
        if (!have_from && from)
                put_header(s, "From", from);
        if (!have_subject && omr_form_get(f, "subject"))
                put_header(s, "Subject", omr_form_get(f, "subject"));
        const char *plain = omr_form_get(f, "body-plain"), *html = omr_form_get(f, "body-html");
        if (plain && *plain && html && *html) {
                /* Both: multipart/alternative, as the sender wrote it. A
                 * boundary that occurs in neither body. */
                char boundary[64];
                unsigned n = 0;
                do
                        snprintf(boundary, sizeof(boundary), "=_omr_alt_%u", n++);
                while (strstr(plain, boundary) || strstr(html, boundary));
                g_string_append_printf(s,
                                       "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; "
                                       "boundary=\"%s\"\r\n\r\n",
                                       boundary);
                const char *bodies[] = {plain, html}, *types[] = {"plain", "html"};
                for (int k = 0; k < 2; k++)
                        g_string_append_printf(s,
                                               "--%s\r\nContent-Type: text/%s; charset=utf-8\r\n"
                                               "Content-Transfer-Encoding: 8bit\r\n\r\n%s\r\n",
                                               boundary, types[k], bodies[k]);
                g_string_append_printf(s, "--%s--\r\n", boundary);
                return s;
        }
        bool as_html = (plain == NULL || *plain == '\0') && html;
        g_string_append_printf(s,
                               "MIME-Version: 1.0\r\nContent-Type: text/%s; charset=utf-8\r\n"
                               "Content-Transfer-Encoding: 8bit\r\n\r\n",
                               as_html ? "html" : "plain");
        g_string_append(s, as_html ? html : plain ? plain : "");
        return s;
}

static void on_stored(const struct omr_ingest_result *res, void *arg)
{
        struct omr_http_request *req = arg;
        if (res->status == OMR_INGEST_UNAVAILABLE) {
                omr_http_reply_unavailable(req, "store_unavailable",
                                           "the message was not stored (%s)", res->detail);
                return;
        }
        json_t *j = json_pack("{s:s, s:s, s:s}", "status",
                              res->status == OMR_INGEST_DUPLICATE ? "duplicate" : "stored",
                              "conversation_id", res->conversation_id ? res->conversation_id : "",
                              "message_id", res->message_id ? res->message_id : "");
        omr_http_reply_json_take(req, 200, j);
}

static int add_uploads(struct omr_message *m, const struct post *p)
{
        if (p->n_files == 0)
                return 0;
        struct omr_attachment *a =
                realloc(m->attachments, (m->n_attachments + p->n_files) * sizeof(*a));
        if (a == NULL)
                return -ENOMEM;
        m->attachments = a;
        for (size_t i = 0; i < p->n_files; i++) {
                struct omr_attachment *x = &a[m->n_attachments++];
                *x = (struct omr_attachment){.name = strdup(p->files[i].name),
                                             .type = strdup(p->files[i].type),
                                             .size = p->files[i].size};
                if (!x->name || !x->type)
                        return -ENOMEM;
        }
        return 0;
}

static void on_inbound(struct omr_http_request *req, void *arg)
{
        struct email_conn *ec = arg;
        OMR_MAGIC_CHECK(ec, EMAIL_CONN_MAGIC);
        const struct omr_conf_email_mailbox *mb =
                omr_conf_email(omr_core_conf(ec->c->core), omr_http_param(req, "mailbox"));
        if (mb == NULL || mb->mailgun_key == NULL) {
                reject(ec, req, 404, "unknown_mailbox",
                       "no mailbox of that name takes Mailgun posts (connectors.email.mailboxes[]"
                       ".mailgun)");
                return;
        }
        size_t len;
        const char *body = omr_http_body(req, &len);
        const char *ct = omr_http_header(req, "Content-Type");
        struct post p = {0};
        int rc = ct && strncasecmp(ct, "multipart/form-data", 19) == 0
                         ? read_multipart(ct, body, len, &p)
                         : omr_form_parse(body, len, &p.fields);
        if (rc != 0) {
                post_free(&p);
                reject(ec, req, 406, "bad_form",
                       "the body is neither a url-encoded nor a multipart/form-data form");
                return;
        }
        const char *why = NULL;
        if (!signature_ok(mb, &p.fields, &why)) {
                post_free(&p);
                reject(ec, req, 406, "bad_signature", why);
                return;
        }
        /* The raw message when the route forwards it, else one rebuilt. */
        const char *mime = omr_form_get(&p.fields, "body-mime");
        GString *raw = mime ? g_string_new(mime) : rebuild(&p.fields);
        struct omr_email *e = omr_email_parse(raw->str, raw->len, &omr_email_read_limits);
        g_string_free(raw, TRUE);
        char fallback[300];
        snprintf(fallback, sizeof(fallback), "mailgun:%.200s", omr_form_get(&p.fields, "token"));
        struct omr_message *m = e ? email_message(mb, e, fallback, NULL) : NULL;
        omr_email_free(e);
        if (m == NULL || add_uploads(m, &p) != 0) {
                omr_message_free(m);
                post_free(&p);
                omr_http_reply_unavailable(req, "out_of_memory", "try again");
                return;
        }
        post_free(&p);
        omr_ingest(ec->c->core, m, on_stored, req);
}

int mailgun_start(struct email_conn *ec)
{
        return omr_http_route(omr_core_http(ec->c->core), "POST", "/v1/email/mailgun/{mailbox}",
                              on_inbound, ec);
}
