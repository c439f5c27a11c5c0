/* html_text.c — HTML to readable plain text (include/omniroute/html.h).
 *
 * libxml2's HTML parser builds a tree (recovering from any error, no
 * network); one iterative walk writes the text, so a deeply nested
 * document costs no stack. Separators are not written when they are seen
 * but kept pending (a space, one or two line breaks) and written before
 * the next visible text: that is what collapses whitespace, drops leading
 * and trailing blank lines and keeps at most one blank line in a row.
 * Pure function; any thread (xmlInitParser runs once, first). */
#include <glib.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "omniroute/html.h"

#define MAX_LINKS       16   /* nested <a> tracked for "text (url)"; deeper ones print no url */
#define MAX_HREF        2048 /* longer urls (tracking links) are not printed */
#define MAX_LIST_INDENT 8    /* list levels indented; deeper ones share the last indent */

enum kind { K_OTHER, K_SKIP, K_PARA, K_LINE, K_BR, K_LI, K_LIST, K_CELL, K_A, K_PRE };

static const struct {
        const char *name;
        enum kind kind;
} kinds[] = {
        {"script", K_SKIP},     {"style", K_SKIP},      {"head", K_SKIP},
        {"title", K_SKIP},      {"template", K_SKIP},   {"svg", K_SKIP},
        {"p", K_PARA},          {"h1", K_PARA},         {"h2", K_PARA},
        {"h3", K_PARA},         {"h4", K_PARA},         {"h5", K_PARA},
        {"h6", K_PARA},         {"blockquote", K_PARA}, {"div", K_LINE},
        {"tr", K_LINE},         {"table", K_LINE},      {"hr", K_LINE},
        {"dl", K_LINE},         {"dt", K_LINE},         {"dd", K_LINE},
        {"address", K_LINE},    {"section", K_LINE},    {"article", K_LINE},
        {"header", K_LINE},     {"footer", K_LINE},     {"nav", K_LINE},
        {"aside", K_LINE},      {"main", K_LINE},       {"figure", K_LINE},
        {"figcaption", K_LINE}, {"form", K_LINE},       {"fieldset", K_LINE},
        {"center", K_LINE},     {"caption", K_LINE},    {"br", K_BR},
        {"li", K_LI},           {"ul", K_LIST},         {"ol", K_LIST},
        {"td", K_CELL},         {"th", K_CELL},         {"a", K_A},
        {"pre", K_PRE},
};

struct out {
        char *buf;
        size_t len, cap;
        bool oom;
        int pending_nl;     /* line breaks owed before the next text (0..2) */
        bool pending_space; /* a space owed before the next text */
        bool li_pending;    /* "- " owed before the next text */
        int list_depth;
        int pre; /* inside <pre>: whitespace kept */
        struct {
                const xmlNode *node;
                size_t start; /* buf offset when the link began */
        } links[MAX_LINKS];
        int n_links, link_depth;
};

static enum kind kind_of(const xmlNode *n)
{
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
                if (strcmp((const char *)n->name, kinds[i].name) == 0)
                        return kinds[i].kind;
        return K_OTHER;
}

static void put(struct out *o, const char *s, size_t n)
{
        if (o->oom)
                return;
        if (o->len + n + 1 > o->cap) {
                size_t cap = o->cap ? o->cap : 256;
                while (cap < o->len + n + 1)
                        cap *= 2;
                char *b = realloc(o->buf, cap);
                if (b == NULL) {
                        o->oom = true;
                        return;
                }
                o->buf = b;
                o->cap = cap;
        }
        memcpy(o->buf + o->len, s, n);
        o->len += n;
        o->buf[o->len] = '\0';
}

/* Writes the separators owed before visible text. */
static void flush(struct out *o)
{
        if (o->len > 0 && o->pending_nl > 0) {
                while (o->len > 0 && (o->buf[o->len - 1] == ' ' || o->buf[o->len - 1] == '\t'))
                        o->len--;
                int have = 0;
                while (have < 2 && (size_t)have < o->len && o->buf[o->len - 1 - have] == '\n')
                        have++;
                for (int i = have; i < o->pending_nl; i++)
                        put(o, "\n", 1);
        } else if (o->len > 0 && o->pending_space && o->buf[o->len - 1] != ' ' &&
                   o->buf[o->len - 1] != '\n') {
                put(o, " ", 1);
        }
        o->pending_nl = 0;
        o->pending_space = false;
        if (o->li_pending) {
                int indent = o->list_depth > 1 ? o->list_depth - 1 : 0;
                if (indent > MAX_LIST_INDENT)
                        indent = MAX_LIST_INDENT;
                for (int i = 0; i < indent; i++)
                        put(o, "  ", 2);
                put(o, "- ", 2);
                o->li_pending = false;
        }
}

static void block(struct out *o, int lines)
{
        if (o->pending_nl < lines)
                o->pending_nl = lines;
}

/* Length of the whitespace character at s (ASCII space, tab, CR, LF, FF,
 * VT, or U+00A0 NO-BREAK SPACE), 0 when s is something else. */
static size_t space_len(const char *s)
{
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
                return 1;
        if ((unsigned char)s[0] == 0xc2 && (unsigned char)s[1] == 0xa0)
                return 2;
        return 0;
}

static void text(struct out *o, const char *s)
{
        while (*s) {
                size_t sp = space_len(s);
                if (sp == 0) {
                        const char *run = s;
                        while (*s && space_len(s) == 0)
                                s++;
                        flush(o);
                        put(o, run, (size_t)(s - run));
                } else if (o->pre == 0) {
                        o->pending_space = true;
                        s += sp;
                } else if (*s == '\n' || *s == '\r') {
                        /* \r\n counts once */
                        s += (s[0] == '\r' && s[1] == '\n') ? 2 : 1;
                        if (o->len > 0 && o->pending_nl < 2)
                                o->pending_nl++;
                } else {
                        flush(o);
                        put(o, *s == '\t' ? "\t" : " ", 1);
                        s += sp;
                }
        }
}

/* "example.com/x" for "https://example.com/x/", "a@b.c" for "mailto:a@b.c":
 * the form a link's text usually repeats. */
static void url_core(const char *s, size_t len, const char **core, size_t *core_len)
{
        static const char *const schemes[] = {"https://", "http://", "mailto:", "tel:"};
        for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
                size_t n = strlen(schemes[i]);
                if (len >= n && strncasecmp(s, schemes[i], n) == 0) {
                        s += n;
                        len -= n;
                        break;
                }
        }
        while (len > 0 && s[len - 1] == '/')
                len--;
        *core = s;
        *core_len = len;
}

static bool same_link(const char *text_s, size_t text_len, const char *href)
{
        const char *a, *b;
        size_t an, bn;
        url_core(text_s, text_len, &a, &an);
        url_core(href, strlen(href), &b, &bn);
        return an == bn && strncasecmp(a, b, an) == 0;
}

/* The href worth printing after the link text, or NULL. */
static bool printable_href(const char *href)
{
        size_t n = strlen(href);
        if (n == 0 || n > MAX_HREF || href[0] == '#')
                return false;
        static const char *const hidden[] = {"javascript:", "data:", "cid:", "about:"};
        for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
                if (strncasecmp(href, hidden[i], strlen(hidden[i])) == 0)
                        return false;
        for (const char *p = href; *p; p++)
                if ((unsigned char)*p <= ' ' || *p == 0x7f)
                        return false; /* whitespace inside: not a real url */
        return true;
}

static void link_end(struct out *o, const xmlNode *n)
{
        o->link_depth--;
        if (o->n_links == 0 || o->links[o->n_links - 1].node != n)
                return; /* beyond MAX_LINKS: not tracked */
        size_t start = o->links[--o->n_links].start;
        if (o->oom || o->buf == NULL || start > o->len)
                return; /* nothing written: no link text */
        const char *t = o->buf + start;
        size_t tn = o->len - start;
        while (tn > 0 && (*t == ' ' || *t == '\n')) {
                t++;
                tn--;
        }
        if (tn == 0)
                return; /* image-only link: nothing to attach the url to */
        /* Mentions and hashtags (Mastodon's microformats: class "u-url
         * mention", "mention hashtag") say what they link to already. Only
         * a link whose text is an @name or #tag: any other link keeps its
         * target shown, or a class could hide where a link really goes. */
        if (*t == '@' || *t == '#') {
                xmlChar *cls = xmlGetProp(n, (const xmlChar *)"class");
                bool tag_link = false;
                char **tok = cls ? g_strsplit_set((const char *)cls, " \t\r\n", -1) : NULL;
                for (size_t i = 0; tok && tok[i]; i++)
                        tag_link |=
                                strcmp(tok[i], "mention") == 0 || strcmp(tok[i], "hashtag") == 0;
                g_strfreev(tok);
                xmlFree(cls);
                if (tag_link)
                        return;
        }
        xmlChar *prop = xmlGetProp(n, (const xmlChar *)"href");
        if (prop == NULL)
                return;
        char *href = g_strstrip(g_strdup((const char *)prop));
        xmlFree(prop);
        if (printable_href(href) && !same_link(t, tn, href)) {
                put(o, " (", 2);
                put(o, href, strlen(href));
                put(o, ")", 1);
        }
        g_free(href);
}

/* Returns whether to walk into n's children. */
static bool enter(struct out *o, const xmlNode *n)
{
        if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
                if (n->content)
                        text(o, (const char *)n->content);
                return false;
        }
        if (n->type != XML_ELEMENT_NODE || n->name == NULL)
                return false;
        switch (kind_of(n)) {
        case K_SKIP:
                return false;
        case K_PARA:
                block(o, 2);
                break;
        case K_LINE:
                block(o, 1);
                break;
        case K_BR:
                if (o->pending_nl < 2)
                        o->pending_nl++;
                break;
        case K_LI:
                block(o, 1);
                o->li_pending = true;
                break;
        case K_LIST:
                block(o, 1);
                o->list_depth++;
                break;
        case K_CELL:
                o->pending_space = true;
                break;
        case K_A:
                if (o->n_links < MAX_LINKS && o->n_links == o->link_depth) {
                        o->links[o->n_links].node = n;
                        o->links[o->n_links].start = o->len;
                        o->n_links++;
                }
                o->link_depth++;
                break;
        case K_PRE:
                block(o, 2);
                o->pre++;
                break;
        case K_OTHER:
                break;
        }
        return true;
}

static void leave(struct out *o, const xmlNode *n)
{
        if (n->type != XML_ELEMENT_NODE || n->name == NULL)
                return;
        switch (kind_of(n)) {
        case K_PARA:
                block(o, 2);
                break;
        case K_LINE:
                block(o, 1);
                break;
        case K_LI:
                block(o, 1);
                o->li_pending = false;
                break;
        case K_LIST:
                o->list_depth--;
                block(o, 1);
                break;
        case K_CELL:
                o->pending_space = true;
                break;
        case K_A:
                link_end(o, n);
                break;
        case K_PRE:
                o->pre--;
                block(o, 2);
                break;
        case K_SKIP:
        case K_BR:
        case K_OTHER:
                break;
        }
}

/* Depth-first over the tree without recursion: down to the first child,
 * else to the next sibling, else up (leaving each parent) until a parent
 * has a next sibling. */
static void walk(struct out *o, xmlNode *first, const xmlNode *top)
{
        xmlNode *n = first;
        while (n != NULL) {
                if (enter(o, n) && n->children != NULL) {
                        n = n->children;
                        continue;
                }
                while (n != NULL) {
                        leave(o, n);
                        if (n->next != NULL) {
                                n = n->next;
                                break;
                        }
                        n = n->parent;
                        if (n == top)
                                n = NULL;
                }
        }
}

static void quiet(void *ctx, const char *msg, ...)
{
        (void)ctx;
        (void)msg;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libxml(void)
{
        xmlInitParser();
}

char *omr_html_to_text(const char *html, size_t len)
{
        /* libxml2's error handlers are per thread: silence this one's. The
         * parse options below already keep parser errors quiet; this is for
         * the few reported without a parser context. */
        static _Thread_local bool quieted;
        pthread_once(&init_once, init_libxml);
        if (!quieted) {
                xmlSetGenericErrorFunc(NULL, quiet);
                quieted = true;
        }
        struct out o = {0};
        /* libxml2 would switch to Latin-1 at the first invalid byte and
         * stop at a NUL: hand it valid UTF-8 only. */
        gchar *valid = g_utf8_make_valid(html ? html : "", html ? (gssize)len : 0);
        size_t vlen = strlen(valid);
        if (vlen > INT_MAX)
                vlen = INT_MAX; /* libxml2 takes an int; 2 GiB of HTML is cut */
        htmlDocPtr doc = NULL;
        if (vlen > 0)
                doc = htmlReadMemory(valid, (int)vlen, NULL, "UTF-8",
                                     HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
                                             HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
                                             HTML_PARSE_NODEFDTD | HTML_PARSE_COMPACT);
        g_free(valid);
        if (doc != NULL) {
                walk(&o, doc->children, (const xmlNode *)doc);
                xmlFreeDoc(doc);
        }
        put(&o, "", 0);
        if (o.oom) {
                free(o.buf);
                return NULL;
        }
        while (o.len > 0 && strchr(" \t\n", o.buf[o.len - 1]) != NULL)
                o.buf[--o.len] = '\0';
        return o.buf;
}
