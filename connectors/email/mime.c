/* mime.c — one RFC 5322 message read with GMime 3 into struct omr_email
 * (mime.h): headers, the body in UTF-8, attachments, loop signals.
 *
 * GMime builds the tree (it never gives up on malformed MIME; what it
 * noticed comes back through the parser options' warning callback, which
 * we turn into the `warnings` text). One walk over the tree picks the body
 * parts and lists the attachments with their IMAP section numbers. Bodies
 * are decoded by mime_charset.c rather than g_mime_text_part_get_text():
 * GMime's charset filter silently drops undecodable bytes and passes
 * unknown charsets through raw, and we want U+FFFD, a warning and a size
 * bound. Header fields and loop signals are read by mime_headers.c.
 *
 * Every GMime object made here is unreferenced before omr_email_parse
 * returns; the struct returned holds only malloc'd copies. Any thread:
 * each parse has its own parser, options and stream (GMime's shared
 * tables are filled by g_mime_init and only read afterwards). */
#include <gmime/gmime.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"
#include "mime_charset.h"
#include "mime_headers.h"
#include "omniroute/html.h"
#include "quote.h"

#define DEFAULT_MAX_TEXT        ((size_t)1 << 20)
#define DEFAULT_MAX_ATTACHMENTS 100
#define MAX_DEPTH               32 /* MIME nesting walked; deeper parts are not read */
#define HTML_FACTOR             4  /* HTML decoded for conversion: up to 4 x max_text */

/* --- process-wide init --------------------------------------------------- */

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned init_refs;

void omr_email_mime_init(void)
{
        pthread_mutex_lock(&init_lock);
        if (init_refs++ == 0) {
                g_mime_init();
                xmlInitParser(); /* for omr_html_to_text; thread-safe init first */
        }
        pthread_mutex_unlock(&init_lock);
}

void omr_email_mime_shutdown(void)
{
        pthread_mutex_lock(&init_lock);
        if (init_refs > 0 && --init_refs == 0)
                g_mime_shutdown();
        pthread_mutex_unlock(&init_lock);
}

/* A parse without init would crash inside GMime: initialise for good. */
static void ensure_init(void)
{
        pthread_mutex_lock(&init_lock);
        if (init_refs == 0) {
                g_mime_init();
                xmlInitParser();
                init_refs = 1;
        }
        pthread_mutex_unlock(&init_lock);
}

/* --- one parse ----------------------------------------------------------- */

struct ctx {
        struct omr_email *e;
        size_t max_text, max_attachments;
        GMimeParserOptions *opts;
        uint32_t parser_warnings;  /* bit per GMimeParserWarning seen */
        GMimeObject *plain, *html; /* body candidates, borrowed from the message */
        size_t attachments_cap, attachments_over;
        bool too_deep;
        bool oom;
};

static void warn(struct omr_email *e, const char *msg)
{
        if (strstr(e->warnings, msg) != NULL)
                return;
        size_t have = strlen(e->warnings);
        if (have + 2 + strlen(msg) >= sizeof(e->warnings))
                return; /* full: the first warnings are the telling ones */
        snprintf(e->warnings + have, sizeof(e->warnings) - have, "%s%s", have ? "; " : "", msg);
}

static void on_parser_warning(gint64 offset, GMimeParserWarning code, const gchar *item,
                              gpointer arg)
{
        (void)offset;
        (void)item;
        struct ctx *c = arg;
        if ((unsigned)code < 32)
                c->parser_warnings |= (uint32_t)1 << (unsigned)code;
}

static char *copy(struct ctx *c, const char *s)
{
        char *d = strdup(s);
        if (d == NULL)
                c->oom = true;
        return d;
}

static size_t sat_mul(size_t a, size_t b)
{
        return b != 0 && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

/* --- bodies -------------------------------------------------------------- */

/* Decodes a body's bytes (charset NULL: not declared) into at most cap
 * bytes of UTF-8, \n line ends when `text`; what went wrong becomes
 * warnings naming `what` ("text", "html"). */
static GString *decode(struct ctx *c, const char *in, size_t len, const char *charset, size_t cap,
                       bool text, const char *what)
{
        struct omr_decoded d;
        omr_mime_decode(in, len, charset, cap, text, &d);
        char msg[128];
        if (d.flags & OMR_DECODE_UNKNOWN) {
                snprintf(msg, sizeof(msg), "unknown charset %s", d.charset);
                warn(c->e, msg);
        }
        if (d.flags & OMR_DECODE_INVALID) {
                if (d.converted)
                        snprintf(msg, sizeof(msg), "undecodable %s bytes replaced", d.charset);
                else
                        snprintf(msg, sizeof(msg), "invalid UTF-8 replaced");
                warn(c->e, msg);
        }
        if (d.flags & OMR_DECODE_NUL)
                warn(c->e, "NUL bytes replaced");
        if (d.flags & OMR_DECODE_TRUNCATED) {
                snprintf(msg, sizeof(msg), "%s truncated", what);
                warn(c->e, msg);
        }
        return d.text;
}

/* A charset named in the first bytes of an HTML part sent without one in
 * its Content-Type (<meta charset=...> or http-equiv). */
static bool html_meta_charset(const char *html, size_t len, char *out, size_t size)
{
        if (len > 4096)
                len = 4096;
        for (size_t i = 0; i + 8 <= len; i++) {
                if (g_ascii_strncasecmp(html + i, "charset=", 8) != 0)
                        continue;
                size_t j = i + 8, n = 0;
                while (j < len && (html[j] == '"' || html[j] == '\'' || html[j] == ' '))
                        j++;
                while (j < len && n + 1 < size &&
                       (g_ascii_isalnum(html[j]) || strchr("._:+-", html[j]) != NULL))
                        out[n++] = html[j++];
                out[n] = '\0';
                return n > 0;
        }
        return false;
}

/* A leaf's content, transfer encoding (base64, quoted-printable) undone. */
static GByteArray *part_bytes(GMimeObject *obj)
{
        GByteArray *a = g_byte_array_new();
        GMimeDataWrapper *w = GMIME_IS_PART(obj) ? g_mime_part_get_content((GMimePart *)obj) : NULL;
        if (w != NULL) {
                GMimeStream *s = g_mime_stream_mem_new_with_byte_array(a);
                g_mime_stream_mem_set_owner((GMimeStreamMem *)s, FALSE);
                g_mime_data_wrapper_write_to_stream(w, s);
                g_object_unref(s);
        }
        return a;
}

static GString *decode_part(struct ctx *c, GMimeObject *obj, size_t cap, bool text,
                            const char *what)
{
        GByteArray *a = part_bytes(obj);
        const char *charset = g_mime_object_get_content_type_parameter(obj, "charset");
        char meta[OMR_CHARSET_MAX + 1];
        if ((charset == NULL || *charset == '\0') && !text &&
            html_meta_charset((const char *)a->data, a->len, meta, sizeof(meta)))
                charset = meta;
        GString *s = decode(c, (const char *)a->data, a->len, charset, cap, text, what);
        g_byte_array_unref(a);
        return s;
}

/* --- strings -------------------------------------------------------------- */

static char *one_line(struct ctx *c, const char *s, bool empty_null)
{
        return omr_mime_one_line(s, empty_null, &c->oom);
}

static char *lower_line(struct ctx *c, const char *s)
{
        return omr_mime_lower_line(s, &c->oom);
}

/* --- the part tree ------------------------------------------------------- */

static int64_t part_size(GMimeObject *obj)
{
        GMimeStream *null = g_mime_stream_null_new();
        if (GMIME_IS_PART(obj)) {
                GMimeDataWrapper *w = g_mime_part_get_content((GMimePart *)obj);
                if (w != NULL)
                        g_mime_data_wrapper_write_to_stream(w, null);
        } else if (GMIME_IS_MESSAGE_PART(obj)) {
                GMimeMessage *m = g_mime_message_part_get_message((GMimeMessagePart *)obj);
                if (m != NULL)
                        g_mime_object_write_to_stream((GMimeObject *)m, NULL, null);
        }
        int64_t n = (int64_t)((GMimeStreamNull *)null)->written;
        g_object_unref(null);
        return n;
}

static const char *filename_of(GMimeObject *obj)
{
        const char *f = GMIME_IS_PART(obj)
                                ? g_mime_part_get_filename((GMimePart *)obj)
                                : g_mime_object_get_content_disposition_parameter(obj, "filename");
        if (f == NULL)
                f = g_mime_object_get_content_type_parameter(obj, "name");
        return f && *f ? f : NULL;
}

/* The name without directories ("C:\\x\\a.pdf", "../a.pdf" -> "a.pdf"):
 * a name is for showing and saving, never a path. */
static char *attachment_name(struct ctx *c, const char *f, size_t index)
{
        char *name = one_line(c, f, true);
        if (name != NULL) {
                const char *base = name;
                for (const char *p = name; *p; p++)
                        if (*p == '/' || *p == '\\')
                                base = p + 1;
                memmove(name, base, strlen(base) + 1);
                if (*name != '\0' && strcmp(name, ".") != 0 && strcmp(name, "..") != 0)
                        return name;
                free(name);
        }
        char fallback[32];
        snprintf(fallback, sizeof(fallback), "attachment-%zu", index);
        return copy(c, fallback);
}

static void add_attachment(struct ctx *c, GMimeObject *obj, const char *section, const char *f)
{
        struct omr_email *e = c->e;
        if (e->n_attachments == c->max_attachments) {
                c->attachments_over++;
                return;
        }
        if (e->n_attachments == c->attachments_cap) {
                size_t cap = c->attachments_cap ? c->attachments_cap * 2 : 4;
                if (cap > c->max_attachments)
                        cap = c->max_attachments;
                struct omr_email_attachment *a = realloc(e->attachments, cap * sizeof(*a));
                if (a == NULL) {
                        c->oom = true;
                        return;
                }
                e->attachments = a;
                c->attachments_cap = cap;
        }
        struct omr_email_attachment *a = &e->attachments[e->n_attachments++];
        memset(a, 0, sizeof(*a));
        a->name = attachment_name(c, f, e->n_attachments);
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        gchar *mt = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
        a->type = lower_line(c, mt ? mt : "application/octet-stream");
        g_free(mt);
        if (a->type == NULL && !c->oom)
                a->type = copy(c, "application/octet-stream");
        a->size = part_size(obj);
        a->section = copy(c, section);
}

/* RFC 2045 5.2: a Content-Type that does not parse means text/plain
 * (GMime reads it as application/octet-stream and the body would be lost
 * as an attachment). */
static bool unparsable_type(GMimeObject *obj)
{
        const char *v = g_mime_object_get_header(obj, "Content-Type");
        return v != NULL && memchr(v, '/', strcspn(v, ";")) == NULL;
}

/* Depth first in document order; path is the IMAP section of obj ("" for
 * the message's own part). */
static void walk(struct ctx *c, GMimeObject *obj, const char *path, int depth)
{
        if (obj == NULL || c->oom)
                return;
        if (depth > MAX_DEPTH) {
                c->too_deep = true;
                return;
        }
        if (GMIME_IS_MULTIPART(obj)) {
                GMimeMultipart *mp = (GMimeMultipart *)obj;
                int n = g_mime_multipart_get_count(mp);
                for (int i = 0; i < n; i++) {
                        char sub[12 * (MAX_DEPTH + 2)];
                        snprintf(sub, sizeof(sub), "%s%s%d", path, *path ? "." : "", i + 1);
                        walk(c, g_mime_multipart_get_part(mp, i), sub, depth + 1);
                }
                return;
        }
        const char *section = *path ? path : "1";
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        const char *type = ct ? g_mime_content_type_get_media_type(ct) : NULL;
        const char *sub = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;
        if (GMIME_IS_PART(obj) && unparsable_type(obj)) {
                type = "text";
                sub = "plain";
        }
        bool text = GMIME_IS_PART(obj) && type && g_ascii_strcasecmp(type, "text") == 0;
        GMimeContentDisposition *d = g_mime_object_get_content_disposition(obj);
        bool attached = d != NULL && g_mime_content_disposition_is_attachment(d);
        const char *f = filename_of(obj);
        if (text && !attached && f == NULL) {
                if (sub && g_ascii_strcasecmp(sub, "plain") == 0 && c->plain == NULL)
                        c->plain = obj;
                else if (sub && g_ascii_strcasecmp(sub, "html") == 0 && c->html == NULL)
                        c->html = obj;
                return; /* other inline text (text/calendar …): neither */
        }
        add_attachment(c, obj, section, f);
}

/* --- the body ------------------------------------------------------------ */

static bool blank(const char *s)
{
        return s[strspn(s, " \t\r\n\f\v")] == '\0';
}

static char *take(struct ctx *c, GString *s)
{
        char *out = copy(c, s->str);
        g_string_free(s, TRUE);
        return out;
}

/* Copy of s cut to cap bytes at a character boundary. */
static char *capped_copy(struct ctx *c, const char *s, size_t cap, const char *what)
{
        GString *out = g_string_sized_new(64);
        if (!omr_mime_append_capped(out, s, strlen(s), cap)) {
                char msg[64];
                snprintf(msg, sizeof(msg), "%s truncated", what);
                warn(c->e, msg);
        }
        return take(c, out);
}

static void read_body(struct ctx *c)
{
        struct omr_email *e = c->e;
        char *plain = NULL;
        if (c->plain != NULL)
                plain = take(c, decode_part(c, c->plain, c->max_text, true, "text"));
        /* A blank text/plain beside HTML is a placeholder: read the HTML. */
        bool from_html = c->html != NULL && (plain == NULL || blank(plain));
        if (c->html != NULL) {
                /* Markup takes room: more HTML than text is decoded when
                 * the text comes from it. */
                size_t cap = from_html ? sat_mul(c->max_text, HTML_FACTOR) : c->max_text;
                GString *h = decode_part(c, c->html, cap, false, "html");
                e->html = capped_copy(c, h->str, c->max_text, "html");
                if (from_html) {
                        char *t = omr_html_to_text(h->str, h->len);
                        if (t == NULL) {
                                c->oom = true;
                        } else {
                                free(plain);
                                plain = capped_copy(c, t, c->max_text, "text");
                                free(t);
                        }
                }
                g_string_free(h, TRUE);
        }
        e->body_full = plain ? plain : copy(c, "");
}

/* What GMime reported that means content may be missing; true when
 * there was such a thing. */
static bool mime_warnings(struct ctx *c, GMimeObject *top)
{
        static const struct {
                GMimeParserWarning code;
                const char *text;
        } broken[] = {
                {GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY, "multipart without boundary"},
                {GMIME_WARN_MALFORMED_MULTIPART, "multipart without parts"},
                {GMIME_WARN_TRUNCATED_MESSAGE, "truncated"},
                {GMIME_WARN_MALFORMED_MESSAGE, "malformed message"},
                {GMIME_CRIT_NESTING_OVERFLOW, "nesting too deep"},
                {GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT, "empty part"},
                {GMIME_WARN_INVALID_CONTENT_TYPE, "invalid Content-Type"},
                {GMIME_CRIT_INVALID_HEADER_NAME, "invalid header line"},
        };
        uint32_t seen = c->parser_warnings;
        /* GMime calls any single part that ends before its blank line
         * truncated; a message without a body is fine. */
        if (!GMIME_IS_MULTIPART(top) && !GMIME_IS_MESSAGE_PART(top))
                seen &= ~((uint32_t)1 << GMIME_WARN_TRUNCATED_MESSAGE);
        if (c->too_deep)
                seen |= (uint32_t)1 << GMIME_CRIT_NESTING_OVERFLOW;
        char msg[200] = "broken MIME: ";
        bool any = false;
        for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
                if (!(seen & ((uint32_t)1 << broken[i].code)))
                        continue;
                if (any)
                        g_strlcat(msg, ", ", sizeof(msg));
                g_strlcat(msg, broken[i].text, sizeof(msg));
                any = true;
        }
        if (any)
                warn(c->e, msg);
        return any;
}

/* The bytes after the header block, for a message whose MIME structure
 * gave nothing to read (a multipart without boundary). */
static void raw_body(struct ctx *c, const char *raw, size_t len)
{
        const char *body = NULL;
        for (size_t i = 0; i + 1 < len && body == NULL; i++) {
                if (raw[i] != '\n')
                        continue;
                if (raw[i + 1] == '\n')
                        body = raw + i + 2;
                else if (raw[i + 1] == '\r' && i + 2 < len && raw[i + 2] == '\n')
                        body = raw + i + 3;
        }
        if (body == NULL)
                return;
        free(c->e->body_full);
        c->e->body_full = take(
                c, decode(c, body, len - (size_t)(body - raw), NULL, c->max_text, true, "text"));
}

/* White space off both ends, in place: what omr_email_trim_quoted does
 * too, so text == body_full when nothing was cut. */
static void trim_ends(char *s)
{
        if (s == NULL)
                return;
        static const char ws[] = " \t\r\n\f\v";
        size_t lead = strspn(s, ws), len = strlen(s);
        while (len > lead && strchr(ws, s[len - 1]) != NULL)
                len--;
        memmove(s, s + lead, len - lead);
        s[len - lead] = '\0';
}

static void read_message(struct ctx *c, GMimeMessage *msg, const char *raw, size_t len)
{
        struct omr_email *e = c->e;
        if (!omr_mime_read_headers(msg, c->opts, e))
                c->oom = true;
        GMimeObject *top = g_mime_message_get_mime_part(msg);
        walk(c, top, "", 0);
        if (!omr_mime_redecode(msg, c->plain ? c->plain : c->html, e))
                c->oom = true;
        bool broken = mime_warnings(c, top ? top : (GMimeObject *)msg);
        read_body(c);
        /* Broken structure with nothing found in it: the raw text is
         * better than nothing. */
        if (broken && c->plain == NULL && c->html == NULL && e->n_attachments == 0 &&
            c->attachments_over == 0 && e->body_full && e->body_full[0] == '\0')
                raw_body(c, raw, len);
        if (c->attachments_over > 0) {
                char msg_[64];
                snprintf(msg_, sizeof(msg_), "%zu attachments not listed", c->attachments_over);
                warn(e, msg_);
        }
        e->auto_reason = omr_mime_auto_reason(msg, e->from_addr);
        e->auto_submitted = e->auto_reason != NULL;
}

struct omr_email *omr_email_parse(const char *raw, size_t len, const struct omr_email_limits *lim)
{
        ensure_init();
        struct omr_email *e = calloc(1, sizeof(*e));
        if (e == NULL)
                return NULL;
        if (raw == NULL)
                len = 0;
        struct ctx c = {
                .e = e,
                .max_text = lim && lim->max_text ? lim->max_text : DEFAULT_MAX_TEXT,
                .max_attachments = lim && lim->max_attachments ? lim->max_attachments
                                                               : DEFAULT_MAX_ATTACHMENTS,
        };
        /* Our own options (default settings) so the warning callback has
         * this parse's context: the message's header lists keep a copy,
         * so it is unreferenced before c goes away. */
        c.opts = g_mime_parser_options_new();
        g_mime_parser_options_set_warning_callback(c.opts, on_parser_warning, &c);
        GMimeStream *stream = g_mime_stream_mem_new_with_buffer(raw ? raw : "", len);
        GMimeParser *parser = g_mime_parser_new_with_stream(stream);
        GMimeMessage *msg = g_mime_parser_construct_message(parser, c.opts);
        if (msg != NULL) {
                read_message(&c, msg, raw, len);
                g_object_unref(msg);
        } else {
                warn(e, "not a MIME message");
                e->body_full =
                        take(&c, decode(&c, raw ? raw : "", len, NULL, c.max_text, true, "text"));
        }
        g_object_unref(parser);
        g_object_unref(stream);
        g_mime_parser_options_free(c.opts);
        trim_ends(e->body_full);
        if (!c.oom && e->body_full != NULL &&
            (e->text = omr_email_trim_quoted(e->body_full)) == NULL)
                c.oom = true;
        if (c.oom || e->body_full == NULL) {
                omr_email_free(e);
                return NULL;
        }
        return e;
}

void omr_email_free(struct omr_email *e)
{
        if (e == NULL)
                return;
        free(e->message_id);
        free(e->in_reply_to);
        for (size_t i = 0; i < e->n_references; i++)
                free(e->references[i]);
        free(e->references);
        free(e->from_addr);
        free(e->from_name);
        free(e->reply_to_addr);
        for (size_t i = 0; i < e->n_recipients; i++)
                free(e->recipients[i]);
        free(e->recipients);
        free(e->subject);
        free(e->text);
        free(e->body_full);
        free(e->html);
        for (size_t i = 0; i < e->n_attachments; i++) {
                free(e->attachments[i].name);
                free(e->attachments[i].type);
                free(e->attachments[i].section);
        }
        free(e->attachments);
        free(e);
}
