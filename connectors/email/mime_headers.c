/* mime_headers.c — the header fields of struct omr_email read from a
 * message GMime parsed (mime_headers.h).
 *
 * GMime has decoded RFC 2047 words and parsed the address lists; what is
 * added here: every string made one line of valid UTF-8 (a subject that
 * decodes to CR LF must not reach an outgoing "Re:" header), addresses
 * lower-cased, lists bounded, raw 8-bit headers read in the body's
 * charset, and the loop signals of RFC 3834 and common practice. Any
 * thread; GMime objects are borrowed from the message. */
#include <stdlib.h>
#include <string.h>

#include "mime_charset.h"
#include "mime_headers.h"

struct hctx {
        struct omr_email *e;
        GMimeParserOptions *opts;
        size_t recipients_cap;
        bool oom;
};

char *omr_mime_one_line(const char *s, bool empty_null, bool *oom)
{
        if (s == NULL)
                return NULL;
        gchar *v = g_utf8_make_valid(s, -1);
        for (char *p = v; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = ' ';
        g_strstrip(v);
        bool none = empty_null && *v == '\0';
        char *out = none ? NULL : strdup(v);
        if (out == NULL && !none)
                *oom = true;
        g_free(v);
        return out;
}

char *omr_mime_lower_line(const char *s, bool *oom)
{
        char *l = omr_mime_one_line(s, true, oom);
        if (l == NULL)
                return NULL;
        gchar *down = g_utf8_strdown(l, -1);
        free(l);
        char *out = strdup(down);
        if (out == NULL)
                *oom = true;
        g_free(down);
        return out;
}

static char *one_line(struct hctx *c, const char *s, bool empty_null)
{
        return omr_mime_one_line(s, empty_null, &c->oom);
}

static char *lower_line(struct hctx *c, const char *s)
{
        return omr_mime_lower_line(s, &c->oom);
}

/* First mailbox of a list, looking one level into groups. */
static InternetAddressMailbox *first_mailbox(InternetAddressList *l)
{
        int n = l ? internet_address_list_length(l) : 0;
        for (int i = 0; i < n; i++) {
                InternetAddress *a = internet_address_list_get_address(l, i);
                if (INTERNET_ADDRESS_IS_MAILBOX(a))
                        return (InternetAddressMailbox *)a;
                if (INTERNET_ADDRESS_IS_GROUP(a)) {
                        InternetAddressList *m =
                                internet_address_group_get_members((InternetAddressGroup *)a);
                        int k = m ? internet_address_list_length(m) : 0;
                        for (int j = 0; j < k; j++) {
                                InternetAddress *b = internet_address_list_get_address(m, j);
                                if (INTERNET_ADDRESS_IS_MAILBOX(b))
                                        return (InternetAddressMailbox *)b;
                        }
                }
        }
        return NULL;
}

static void add_recipient(struct hctx *c, const char *addr)
{
        struct omr_email *e = c->e;
        if (e->n_recipients == OMR_MIME_MAX_RECIPIENTS)
                return;
        char *a = lower_line(c, addr);
        if (a == NULL)
                return;
        for (size_t i = 0; i < e->n_recipients; i++)
                if (strcmp(e->recipients[i], a) == 0) {
                        free(a);
                        return;
                }
        if (e->n_recipients == c->recipients_cap) {
                size_t cap = c->recipients_cap ? c->recipients_cap * 2 : 8;
                char **r = realloc(e->recipients, cap * sizeof(*r));
                if (r == NULL) {
                        c->oom = true;
                        free(a);
                        return;
                }
                e->recipients = r;
                c->recipients_cap = cap;
        }
        e->recipients[e->n_recipients++] = a;
}

static void add_recipients(struct hctx *c, InternetAddressList *l, int depth)
{
        int n = l ? internet_address_list_length(l) : 0;
        for (int i = 0; i < n; i++) {
                InternetAddress *a = internet_address_list_get_address(l, i);
                if (INTERNET_ADDRESS_IS_MAILBOX(a))
                        add_recipient(
                                c, internet_address_mailbox_get_addr((InternetAddressMailbox *)a));
                else if (INTERNET_ADDRESS_IS_GROUP(a) && depth == 0)
                        add_recipients(
                                c, internet_address_group_get_members((InternetAddressGroup *)a),
                                1);
        }
}

/* Every header `name` of the message, parsed as an address list. */
static void add_header_recipients(struct hctx *c, GMimeObject *msg, const char *name)
{
        GMimeHeaderList *hl = g_mime_object_get_header_list(msg);
        int n = hl ? g_mime_header_list_get_count(hl) : 0;
        for (int i = 0; i < n; i++) {
                GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
                const char *hn = g_mime_header_get_name(h), *v = g_mime_header_get_value(h);
                if (hn == NULL || v == NULL || g_ascii_strcasecmp(hn, name) != 0)
                        continue;
                InternetAddressList *l = internet_address_list_parse(c->opts, v);
                if (l != NULL) {
                        add_recipients(c, l, 0);
                        g_object_unref(l);
                }
        }
}

static void read_ids(struct hctx *c, GMimeMessage *msg)
{
        struct omr_email *e = c->e;
        e->message_id = one_line(c, g_mime_message_get_message_id(msg), true);
        const char *irt = g_mime_object_get_header((GMimeObject *)msg, "In-Reply-To");
        GMimeReferences *r = irt ? g_mime_references_parse(c->opts, irt) : NULL;
        if (r != NULL && g_mime_references_length(r) > 0)
                e->in_reply_to = one_line(c, g_mime_references_get_message_id(r, 0), true);
        if (r != NULL)
                g_mime_references_free(r);

        const char *refs = g_mime_object_get_header((GMimeObject *)msg, "References");
        r = refs ? g_mime_references_parse(c->opts, refs) : NULL;
        int n = r ? g_mime_references_length(r) : 0;
        size_t keep = n < OMR_MIME_MAX_REFERENCES ? (size_t)n : OMR_MIME_MAX_REFERENCES;
        if (keep > 0 && (e->references = calloc(keep, sizeof(char *))) == NULL)
                c->oom = true;
        for (int i = 0; e->references && i < n; i++) {
                /* Keep the root (threading keys on it) and the newest. */
                if (i > 0 && i < n - (OMR_MIME_MAX_REFERENCES - 1))
                        continue;
                char *id = one_line(c, g_mime_references_get_message_id(r, i), true);
                if (id != NULL)
                        e->references[e->n_references++] = id;
        }
        if (r != NULL)
                g_mime_references_free(r);
}

bool omr_mime_read_headers(GMimeMessage *msg, GMimeParserOptions *opts, struct omr_email *e)
{
        struct hctx hc = {.e = e, .opts = opts}, *c = &hc;
        read_ids(c, msg);
        InternetAddressMailbox *from = first_mailbox(g_mime_message_get_from(msg));
        if (from != NULL) {
                e->from_addr = lower_line(c, internet_address_mailbox_get_addr(from));
                e->from_name =
                        one_line(c, internet_address_get_name((InternetAddress *)from), true);
        }
        InternetAddressMailbox *rt = first_mailbox(g_mime_message_get_reply_to(msg));
        if (rt != NULL)
                e->reply_to_addr = lower_line(c, internet_address_mailbox_get_addr(rt));
        add_recipients(c, g_mime_message_get_to(msg), 0);
        add_recipients(c, g_mime_message_get_cc(msg), 0);
        add_header_recipients(c, (GMimeObject *)msg, "Delivered-To");
        add_header_recipients(c, (GMimeObject *)msg, "X-Original-To");
        e->subject = one_line(c, g_mime_message_get_subject(msg), false);
        GDateTime *d = g_mime_message_get_date(msg);
        if (d != NULL)
                e->date_ms = g_date_time_to_unix(d) * 1000 + g_date_time_get_microsecond(d) / 1000;
        return !c->oom;
}

/* The next "=?" from p, NULL when none. Plain loops rather than strstr()
 * and strcspn() here: sanitizers check a whole string per call, which made
 * a header of many words quadratic in the test builds. */
static const char *next_word(const char *p)
{
        for (; *p; p++)
                if (p[0] == '=' && p[1] == '?')
                        return p;
        return NULL;
}

/* The end of a token of an encoded word: the next '?', white space or NUL. */
static const char *token_end(const char *p)
{
        while (*p && *p != '?' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
                p++;
        return p;
}

/* When start is "=?charset?B?text?=", text's bounds and the charset's end. */
static bool b_word(const char *start, const char **q, const char **text, const char **end)
{
        const char *cs = start + 2;
        *q = token_end(cs);
        if (*q == cs || (*q)[0] != '?' || ((*q)[1] != 'B' && (*q)[1] != 'b') || (*q)[2] != '?')
                return false;
        *text = *q + 3;
        *end = token_end(*text);
        return (*end)[0] == '?' && (*end)[1] == '=';
}

/* GMime 3.2 joins adjacent B-encoded words of one charset before it
 * decodes the base64, and stops at the first word's '=' padding: Python's
 * email package writes exactly that, and a subject came out cut after its
 * first word. The same bytes as Q-encoded words are joined right (also a
 * character split across two words), so B words are rewritten to Q. */
static gchar *b_words_as_q(const char *v)
{
        GString *out = g_string_sized_new(strlen(v) + 16);
        const char *p = v, *start, *q, *text, *end;
        while ((start = next_word(p)) != NULL) {
                g_string_append_len(out, p, start - p);
                /* Each scan stops at a '?' or white space, so none runs
                 * over another "=?": linear in the header's length. */
                if (!b_word(start, &q, &text, &end)) {
                        g_string_append_len(out, start, 2);
                        p = start + 2;
                        continue;
                }
                gsize n = 0;
                gchar *b64 = g_strndup(text, (gsize)(end - text));
                const guchar *bytes = (const guchar *)b64;
                if (end - text > 1) /* GLib refuses shorter input; it decodes to nothing */
                        bytes = g_base64_decode_inplace(b64, &n);
                g_string_append(out, "=?");
                g_string_append_len(out, start + 2, q - (start + 2));
                g_string_append(out, "?Q?");
                for (gsize i = 0; i < n; i++)
                        g_string_append_printf(out, "=%02X", bytes[i]);
                g_string_append(out, "?=");
                g_free(b64);
                p = end + 2;
        }
        g_string_append(out, p);
        return g_string_free(out, FALSE);
}

static bool has_b_word(const char *v)
{
        const char *q, *text, *end;
        for (const char *p = next_word(v); p != NULL; p = next_word(p + 2))
                if (b_word(p, &q, &text, &end))
                        return true;
        return false;
}

/* Does GMime's reading of this raw value need redoing? */
static bool needs_redecode(const char *raw)
{
        return raw != NULL && (has_b_word(raw) || !g_utf8_validate(raw, -1, NULL));
}

bool omr_mime_redecode(GMimeMessage *msg, GMimeObject *body, struct omr_email *e)
{
        struct hctx hc = {.e = e}, *c = &hc;
        GMimeHeaderList *hl = g_mime_object_get_header_list((GMimeObject *)msg);
        GMimeHeader *subject = hl ? g_mime_header_list_get_header(hl, "Subject") : NULL;
        GMimeHeader *from = hl ? g_mime_header_list_get_header(hl, "From") : NULL;
        const char *sraw = subject ? g_mime_header_get_raw_value(subject) : NULL;
        const char *fraw = from ? g_mime_header_get_raw_value(from) : NULL;
        bool redo_subject = needs_redecode(sraw), redo_from = needs_redecode(fraw);
        if (!redo_subject && !redo_from)
                return true;
        GMimeParserOptions *o = g_mime_parser_options_new();
        /* Raw 8-bit bytes that are not UTF-8 (older mailers in Thailand,
         * Vietnam, Turkey …): the body's charset is a better guess than
         * GMime's Latin-1. */
        char buf[OMR_CHARSET_MAX + 16];
        const char *cs = body ? omr_mime_legacy_charset(
                                        g_mime_object_get_content_type_parameter(body, "charset"),
                                        buf, sizeof(buf))
                              : NULL;
        if (cs != NULL) {
                const char *fallback[] = {"utf-8", cs, NULL};
                g_mime_parser_options_set_fallback_charsets(o, fallback);
        }
        if (redo_subject) {
                gchar *unfolded = g_mime_utils_header_unfold(sraw);
                gchar *q = b_words_as_q(unfolded);
                gchar *decoded = g_mime_utils_header_decode_text(o, q);
                char *line = one_line(c, decoded, false);
                if (line != NULL) {
                        free(e->subject);
                        e->subject = line;
                }
                g_free(decoded);
                g_free(q);
                g_free(unfolded);
        }
        if (redo_from) {
                gchar *q = b_words_as_q(fraw);
                InternetAddressList *l = internet_address_list_parse(o, q);
                InternetAddressMailbox *mb = first_mailbox(l);
                if (mb != NULL) {
                        free(e->from_name);
                        e->from_name =
                                one_line(c, internet_address_get_name((InternetAddress *)mb), true);
                }
                if (l != NULL)
                        g_object_unref(l);
                g_free(q);
        }
        g_mime_parser_options_free(o);
        return !c->oom;
}

/* --- loop protection ----------------------------------------------------- */

/* The header's value up to ';' or a comment, trimmed, equals word
 * (case-insensitive)? */
static bool value_is(const char *v, const char *word)
{
        if (v == NULL)
                return false;
        while (*v == ' ' || *v == '\t')
                v++;
        size_t n = strcspn(v, ";(");
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
        return n == strlen(word) && g_ascii_strncasecmp(v, word, n) == 0;
}

/* RFC 3834 and common practice; the first reason found is named. */
const char *omr_mime_auto_reason(GMimeMessage *msg, const char *from_addr)
{
        GMimeObject *o = (GMimeObject *)msg;
        const char *v = g_mime_object_get_header(o, "Auto-Submitted");
        if (v != NULL && !value_is(v, "no")) {
                if (value_is(v, "auto-replied"))
                        return "Auto-Submitted: auto-replied";
                if (value_is(v, "auto-generated"))
                        return "Auto-Submitted: auto-generated";
                if (value_is(v, "auto-notified"))
                        return "Auto-Submitted: auto-notified";
                return "Auto-Submitted";
        }
        v = g_mime_object_get_header(o, "Precedence");
        if (value_is(v, "bulk"))
                return "Precedence: bulk";
        if (value_is(v, "list"))
                return "Precedence: list";
        if (value_is(v, "junk"))
                return "Precedence: junk";
        v = g_mime_object_get_header(o, "Return-Path");
        if (v != NULL) {
                size_t n = 0;
                char compact[4];
                for (; *v && n < sizeof(compact) - 1; v++)
                        if (!g_ascii_isspace(*v))
                                compact[n++] = *v;
                compact[n] = '\0';
                if (*v == '\0' && (n == 0 || strcmp(compact, "<>") == 0))
                        return "Return-Path: <>";
        }
        if (value_is(g_mime_object_get_header(o, "X-Autoreply"), "yes"))
                return "X-Autoreply: yes";
        if (g_mime_object_get_header(o, "X-Autorespond") != NULL)
                return "X-Autorespond";
        if (g_mime_object_get_header(o, "List-Id") != NULL)
                return "List-Id";
        if (g_mime_object_get_header(o, "List-Unsubscribe") != NULL)
                return "List-Unsubscribe";
        if (from_addr != NULL) {
                size_t local = strcspn(from_addr, "@");
                if (local == 13 && strncmp(from_addr, "mailer-daemon", 13) == 0)
                        return "From: mailer-daemon";
                if (local == 10 && strncmp(from_addr, "postmaster", 10) == 0)
                        return "From: postmaster";
        }
        return NULL;
}
