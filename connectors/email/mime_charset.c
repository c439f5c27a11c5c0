/* mime_charset.c — a body's bytes in its declared charset to valid UTF-8
 * (mime_charset.h).
 *
 * iconv does the legacy charsets; we add what mail needs around it:
 * charset labels read as the superset senders mean (TIS-620 as
 * windows-874, GB2312 as GB18030 …), undeclared 8-bit text sniffed
 * (UTF-8 when valid, else windows-1252), one U+FFFD per byte iconv cannot
 * decode instead of an error, NUL bytes replaced, and a size cap that
 * stops the work early. Charset names from the message are checked
 * before iconv sees them ("utf-8//TRANSLIT" and other suffixes would
 * change what iconv does). Pure functions; any thread. */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>

#include "mime_charset.h"

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

enum mode { M_UTF8, M_SNIFF, M_ICONV, M_UNKNOWN };

/* Labels mail software writes for a charset it means a superset of (as in
 * the WHATWG Encoding Standard): decoding with the superset reads the
 * extra characters (Windows smart quotes, euro sign) instead of replacing
 * them. Anything else goes to iconv as written. */
static const struct {
        const char *label, *iconv_name;
} supersets[] = {
        {"iso-8859-1", "WINDOWS-1252"},
        {"iso8859-1", "WINDOWS-1252"},
        {"iso_8859-1", "WINDOWS-1252"},
        {"latin1", "WINDOWS-1252"},
        {"l1", "WINDOWS-1252"},
        {"cp819", "WINDOWS-1252"},
        {"tis-620", "WINDOWS-874"},
        {"tis620", "WINDOWS-874"},
        {"iso-8859-11", "WINDOWS-874"},
        {"x-windows-874", "WINDOWS-874"},
        {"iso-8859-9", "WINDOWS-1254"},
        {"latin5", "WINDOWS-1254"},
        {"gb2312", "GB18030"},
        {"gbk", "GB18030"},
        {"x-gbk", "GB18030"},
        {"euc-cn", "GB18030"},
        {"cp936", "GB18030"},
        {"csgb2312", "GB18030"},
        {"ks_c_5601-1987", "CP949"},
        {"euc-kr", "CP949"},
        {"shift_jis", "CP932"},
        {"shift-jis", "CP932"},
        {"sjis", "CP932"},
        {"x-sjis", "CP932"},
        {"windows-31j", "CP932"},
};

static size_t sat_mul(size_t a, size_t b)
{
        return b != 0 && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

/* How to read a declared charset; for M_ICONV the name to give iconv is
 * in name (size > OMR_CHARSET_MAX). */
static enum mode resolve(const char *declared, char *name, size_t size)
{
        size_t n = 0;
        const char *s = declared ? declared : "";
        while (*s == ' ' || *s == '\t' || *s == '"')
                s++;
        for (; *s && *s != '"' && *s != ' ' && *s != '\t'; s++) {
                if (n == OMR_CHARSET_MAX || n + 1 >= size ||
                    !(g_ascii_isalnum(*s) || strchr("._:+-()", *s) != NULL))
                        return M_UNKNOWN;
                name[n++] = g_ascii_tolower(*s);
        }
        name[n] = '\0';
        if (n == 0 || strcmp(name, "us-ascii") == 0 || strcmp(name, "ascii") == 0 ||
            strcmp(name, "ansi_x3.4-1968") == 0 || strcmp(name, "unknown-8bit") == 0)
                return M_SNIFF;
        if (strcmp(name, "utf-8") == 0 || strcmp(name, "utf8") == 0)
                return M_UTF8;
        for (size_t i = 0; i < sizeof(supersets) / sizeof(supersets[0]); i++)
                if (strcmp(name, supersets[i].label) == 0) {
                        g_strlcpy(name, supersets[i].iconv_name, size);
                        break;
                }
        return M_ICONV;
}

const char *omr_mime_legacy_charset(const char *declared, char *buf, size_t size)
{
        if (size <= OMR_CHARSET_MAX || resolve(declared, buf, size) != M_ICONV)
                return NULL;
        iconv_t cd = iconv_open("UTF-8", buf);
        if (cd == (iconv_t)-1)
                return NULL;
        iconv_close(cd);
        return buf;
}

bool omr_mime_append_capped(GString *out, const char *s, size_t n, size_t cap)
{
        if (out->len + n <= cap) {
                g_string_append_len(out, s, (gssize)n);
                return true;
        }
        size_t k = cap > out->len ? cap - out->len : 0;
        while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
                k--;
        g_string_append_len(out, s, (gssize)k);
        return false;
}

/* Appends in[0..len) as valid UTF-8 without NUL (both replaced with
 * U+FFFD, one per byte), at most cap bytes of out. Returns flags. */
static unsigned append_valid(GString *out, const char *in, size_t len, size_t cap)
{
        unsigned flags = 0;
        const char *p = in, *end = in + len;
        while (p < end) {
                const gchar *bad = NULL;
                bool ok = g_utf8_validate_len(p, (gsize)(end - p), &bad);
                const char *stop = ok ? end : bad;
                if (!omr_mime_append_capped(out, p, (size_t)(stop - p), cap))
                        return flags | OMR_DECODE_TRUNCATED;
                if (ok)
                        break;
                flags |= *bad == '\0' ? OMR_DECODE_NUL : OMR_DECODE_INVALID;
                if (!omr_mime_append_capped(out, REPLACEMENT, 3, cap))
                        return flags | OMR_DECODE_TRUNCATED;
                p = bad + 1;
        }
        return flags;
}

/* Valid UTF-8 apart from NUL bytes (and a sequence cut by `cut_end`)? */
static bool looks_utf8(const char *in, size_t len, bool cut_end)
{
        const char *p = in, *end = in + len;
        while (p < end) {
                const gchar *bad = NULL;
                if (g_utf8_validate_len(p, (gsize)(end - p), &bad))
                        return true;
                if (*bad != '\0')
                        return cut_end && end - bad < 4 && ((unsigned char)*bad & 0xc0) == 0xc0;
                p = bad + 1;
        }
        return true;
}

/* \r\n and lone \r to \n, in place. */
static void unix_newlines(GString *s)
{
        size_t w = 0;
        for (size_t r = 0; r < s->len; r++) {
                if (s->str[r] == '\r') {
                        s->str[w++] = '\n';
                        if (r + 1 < s->len && s->str[r + 1] == '\n')
                                r++;
                } else {
                        s->str[w++] = s->str[r];
                }
        }
        g_string_truncate(s, w);
}

/* Converts in[0..len) with cd into out; stops once out is past `enough`
 * bytes. Undecodable bytes become U+FFFD. Returns OMR_DECODE_INVALID or 0. */
static unsigned iconv_all(iconv_t cd, const char *in, size_t len, GString *out, size_t enough)
{
        unsigned flags = 0;
        char *ip = (char *)in; /* iconv's prototype; it does not write */
        size_t ileft = len;
        bool flushed = false;
        while (!flushed && out->len <= enough) {
                char chunk[4096];
                char *op = chunk;
                size_t oleft = sizeof(chunk);
                size_t r = ileft ? iconv(cd, &ip, &ileft, &op, &oleft)
                                 : iconv(cd, NULL, NULL, &op, &oleft);
                int err = errno;
                g_string_append_len(out, chunk, (gssize)(op - chunk));
                if (r != (size_t)-1) {
                        if (ileft == 0) {
                                /* input done: one more call flushes the shift state */
                                op = chunk;
                                oleft = sizeof(chunk);
                                iconv(cd, NULL, NULL, &op, &oleft);
                                g_string_append_len(out, chunk, (gssize)(op - chunk));
                                flushed = true;
                        }
                        continue;
                }
                if (err == E2BIG)
                        continue;
                flags |= OMR_DECODE_INVALID;
                g_string_append(out, REPLACEMENT);
                if (err == EILSEQ && ileft > 0) {
                        ip++;
                        ileft--;
                } else {
                        break; /* EINVAL: a sequence cut at the end */
                }
        }
        return flags;
}

/* Printable ASCII only, for a charset name quoted in a warning. */
static void safe_label(const char *s, char *out, size_t size)
{
        size_t n = 0;
        while (s && (*s == ' ' || *s == '"'))
                s++;
        for (; s && *s && *s != '"' && n + 1 < size; s++)
                out[n++] = g_ascii_isalnum(*s) || strchr("._:+-", *s) ? *s : '?';
        out[n] = '\0';
}

void omr_mime_decode(const char *in, size_t len, const char *charset, size_t cap, bool newlines,
                     struct omr_decoded *d)
{
        if (in == NULL) /* an empty GByteArray's data */
                in = "";
        char name[OMR_CHARSET_MAX + 16];
        enum mode mode = resolve(charset, name, sizeof(name));
        /* Two bytes in give at least one out (CR LF), so this much input
         * fills cap in the byte-preserving modes. */
        size_t enough = sat_mul(cap, 2) + 16;
        bool cut = len > enough;
        memset(d, 0, sizeof(*d));
        safe_label(charset, d->charset, sizeof(d->charset));
        if (mode == M_SNIFF) {
                if (looks_utf8(in, cut ? enough : len, cut)) {
                        mode = M_UTF8;
                } else {
                        g_strlcpy(name, "WINDOWS-1252", sizeof(name));
                        g_strlcpy(d->charset, "windows-1252", sizeof(d->charset));
                        mode = M_ICONV;
                }
        }
        iconv_t cd = mode == M_ICONV ? iconv_open("UTF-8", name) : (iconv_t)-1;
        if (mode == M_ICONV && cd == (iconv_t)-1)
                mode = M_UNKNOWN;
        if (mode == M_UNKNOWN)
                d->flags |= OMR_DECODE_UNKNOWN;
        GString *raw = g_string_sized_new(64);
        if (mode == M_ICONV) {
                d->converted = true;
                d->flags |= iconv_all(cd, in, len, raw, enough);
                iconv_close(cd);
        } else {
                g_string_append_len(raw, in, (gssize)(cut ? enough : len));
        }
        if (newlines)
                unix_newlines(raw);
        d->text = g_string_sized_new(raw->len < cap ? raw->len + 1 : cap + 1);
        d->flags |= append_valid(d->text, raw->str, raw->len, cap);
        g_string_free(raw, TRUE);
}
