/* quote.c — cuts the quoted history and the signature from an email's
 * text (quote.h), so an agent reads what the customer just wrote.
 *
 * The text is split into lines once; each rule below looks at the lines
 * above the cut so far and may move the cut up (earlier), never down:
 *   1. the first line that starts unmarked history: an attribution ("On
 *      ... wrote:" and its translations, also wrapped over two lines),
 *      "-----Original Message-----", Outlook's underscore rule followed by
 *      "From:", or an Outlook header block ("From:" then "Sent:") below the
 *      first line. An attribution followed by '>' lines only counts when
 *      nothing but '>' lines and blank lines follow it (else the reply is
 *      interleaved with the quote, and rule 2 decides);
 *   2. the trailing run of '>' lines (and the attribution just above it);
 *      '>' lines with new text after them stay;
 *   3. the RFC 3676 signature delimiter "-- " (or "--");
 *   4. trailing "Sent from my iPhone"-style lines.
 * When nothing is left the whole (trimmed) text is returned: a cut must
 * never lose a message. Pure function; any thread. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "quote.h"

#define MAX_ATTRIBUTION 400 /* bytes: longer lines are prose, not a "wrote:" header */

struct line {
        const char *s;
        size_t n; /* without the line end */
};

static bool is_ws(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* The line without leading and trailing white space. */
static struct line trim(struct line l)
{
        while (l.n > 0 && is_ws(l.s[0])) {
                l.s++;
                l.n--;
        }
        while (l.n > 0 && is_ws(l.s[l.n - 1]))
                l.n--;
        return l;
}

static bool blank(struct line l)
{
        return trim(l).n == 0;
}

static bool quoted(struct line l)
{
        l = trim(l);
        return l.n > 0 && l.s[0] == '>';
}

static bool starts_ci(struct line l, const char *p)
{
        size_t n = strlen(p);
        return l.n >= n && strncasecmp(l.s, p, n) == 0;
}

static bool ends_ci(struct line l, const char *p)
{
        size_t n = strlen(p);
        return l.n >= n && strncasecmp(l.s + l.n - n, p, n) == 0;
}

static bool contains(struct line l, const char *p)
{
        size_t n = strlen(p);
        for (size_t i = 0; i + n <= l.n; i++)
                if (memcmp(l.s + i, p, n) == 0)
                        return true;
        return false;
}

static bool ends_any(struct line l, const char *const *suffixes)
{
        for (; *suffixes; suffixes++)
                if (ends_ci(l, *suffixes))
                        return true;
        return false;
}

/* Attribution lines mail clients write above a quote: Gmail, Apple Mail,
 * Thunderbird in English, French, German, Spanish, and Gmail's Turkish,
 * Vietnamese, Thai and Chinese forms (those carry the sender's address). */
static bool attribution(struct line l)
{
        static const char *const fr[] = {"\xc3\xa9"
                                         "crit :",
                                         "\xc3\xa9"
                                         "crit:",
                                         "\xc3\xa9"
                                         "crit\xc2\xa0:",
                                         "\xc3\xa9"
                                         "crit\xe2\x80\xaf:",
                                         NULL};
        static const char *const es[] = {"escribi\xc3\xb3:", "escribi\xc3\xb3 :", NULL};
        static const char *const addressed[] = {
                "wrote:",
                "yazd\xc4\xb1:",                     /* Turkish */
                "\xc4\x91\xc3\xa3 vi\xe1\xba\xbft:", /* Vietnamese đã viết: */
                "\xe0\xb9\x80\xe0\xb8\x82\xe0\xb8\xb5\xe0\xb8\xa2\xe0\xb8\x99\xe0\xb8\xa7"
                "\xe0\xb9\x88\xe0\xb8\xb2:",            /* Thai เขียนว่า: */
                "\xe5\x86\x99\xe9\x81\x93\xef\xbc\x9a", /* 写道： */
                "\xe5\xaf\xab\xe9\x81\x93\xef\xbc\x9a", /* 寫道： */
                "\xe5\x86\x99\xe9\x81\x93:",            /* 写道: */
                NULL};
        l = trim(l);
        if (l.n == 0 || l.n > MAX_ATTRIBUTION)
                return false;
        if (starts_ci(l, "On ") && ends_ci(l, "wrote:"))
                return true;
        if (starts_ci(l, "Le ") && ends_any(l, fr))
                return true;
        if (starts_ci(l, "Am ") && contains(l, "schrieb") && ends_ci(l, ":"))
                return true;
        if (starts_ci(l, "El ") && ends_any(l, es))
                return true;
        return contains(l, "@") && ends_any(l, addressed);
}

/* How attributions with a fixed first word begin. */
static bool attribution_start(struct line l)
{
        l = trim(l);
        return starts_ci(l, "On ") || starts_ci(l, "Le ") || starts_ci(l, "Am ") ||
               starts_ci(l, "El ");
}

/* Line i alone or joined with line i+1 (Gmail wraps long attributions).
 * When line i+1 is an attribution on its own, line i joins it only when
 * it starts like one ("On ... <" / "address> wrote:"): else a line of the
 * reply just above would be cut with it. */
static bool attribution_at(const struct line *lines, size_t n, size_t i)
{
        if (attribution(lines[i]))
                return true;
        if (i + 1 >= n || blank(lines[i]) || blank(lines[i + 1]) ||
            (attribution(lines[i + 1]) && !attribution_start(lines[i])))
                return false;
        struct line a = trim(lines[i]), b = trim(lines[i + 1]);
        if (a.n + 1 + b.n > MAX_ATTRIBUTION)
                return false;
        char joined[MAX_ATTRIBUTION + 1];
        memcpy(joined, a.s, a.n);
        joined[a.n] = ' ';
        memcpy(joined + a.n + 1, b.s, b.n);
        return attribution((struct line){joined, a.n + 1 + b.n});
}

static bool original_message(struct line l)
{
        static const char *const names[] = {"Original Message",
                                            "Urspr\xc3\xbc"
                                            "ngliche Nachricht",
                                            "Message d'origine",
                                            "Mensaje original",
                                            "Messaggio originale",
                                            "Oorspronkelijk bericht",
                                            NULL};
        l = trim(l);
        if (l.n < 4 || l.s[0] != '-' || l.s[1] != '-')
                return false;
        while (l.n > 0 && (l.s[0] == '-' || l.s[0] == ' ')) {
                l.s++;
                l.n--;
        }
        while (l.n > 0 && (l.s[l.n - 1] == '-' || l.s[l.n - 1] == ' '))
                l.n--;
        for (size_t i = 0; names[i]; i++)
                if (l.n == strlen(names[i]) && strncasecmp(l.s, names[i], l.n) == 0)
                        return true;
        return false;
}

static bool header_from(struct line l)
{
        static const char *const from[] = {"From:", "Von:", "De :", "De:", "Da:", "Van:", NULL};
        l = trim(l);
        for (size_t i = 0; from[i]; i++)
                if (starts_ci(l, from[i]))
                        return true;
        return false;
}

static bool header_sent(struct line l)
{
        static const char *const sent[] = {
                "Sent:",    "Date:",  "Gesendet:", "Datum:", "Envoy\xc3\xa9 :", "Envoy\xc3\xa9:",
                "Enviado:", "Fecha:", "Inviato:",  "Data:",  "Verzonden:",      NULL};
        l = trim(l);
        for (size_t i = 0; sent[i]; i++)
                if (starts_ci(l, sent[i]))
                        return true;
        return false;
}

static size_t next_nonblank(const struct line *lines, size_t n, size_t i)
{
        while (i < n && blank(lines[i]))
                i++;
        return i;
}

static bool underscores(struct line l)
{
        l = trim(l);
        if (l.n < 10)
                return false;
        for (size_t i = 0; i < l.n; i++)
                if (l.s[i] != '_')
                        return false;
        return true;
}

/* "From: ..." with "Sent: ..." on one of the next two lines, not inside a
 * forwarded message (that is what the customer wants us to read). */
static bool outlook_block(const struct line *lines, size_t n, size_t i)
{
        if (i == 0 || !header_from(lines[i]))
                return false;
        bool sent = (i + 1 < n && header_sent(lines[i + 1])) ||
                    (i + 2 < n && header_sent(lines[i + 2]));
        if (!sent)
                return false;
        size_t p = i;
        while (p > 0 && blank(lines[p - 1]))
                p--;
        if (p == 0)
                return true;
        struct line prev = trim(lines[p - 1]);
        return !(contains(prev, "orwarded message") || contains(prev, "orwarded Message"));
}

/* Only '>' lines and blank lines from i to n. */
static bool only_quote_after(const struct line *lines, size_t n, size_t i)
{
        for (; i < n; i++)
                if (!blank(lines[i]) && !quoted(lines[i]))
                        return false;
        return true;
}

/* Rule 1: where unmarked history starts, n when it does not. */
static size_t history_start(const struct line *lines, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (quoted(lines[i]))
                        continue;
                if (original_message(lines[i]) || outlook_block(lines, n, i))
                        return i;
                if (underscores(lines[i])) {
                        size_t j = next_nonblank(lines, n, i + 1);
                        if (j < n && header_from(lines[j]))
                                return i;
                }
                if (attribution_at(lines, n, i)) {
                        size_t after = attribution(lines[i]) ? i + 1 : i + 2;
                        size_t j = next_nonblank(lines, n, after);
                        if (j >= n || !quoted(lines[j]) || only_quote_after(lines, n, j))
                                return i;
                }
        }
        return n;
}

/* Rule 2: the start of the trailing '>' block before cut (with its
 * attribution), cut when there is none. */
static size_t trailing_quote(const struct line *lines, size_t cut)
{
        size_t end = cut;
        while (end > 0 && blank(lines[end - 1]))
                end--;
        if (end == 0 || !quoted(lines[end - 1]))
                return cut;
        size_t start = end;
        while (start > 0 && (quoted(lines[start - 1]) || blank(lines[start - 1])))
                start--;
        while (blank(lines[start]))
                start++;
        size_t p = start;
        while (p > 0 && blank(lines[p - 1]))
                p--;
        if (p > 0) {
                struct line prev = trim(lines[p - 1]);
                if (attribution(prev) || ends_ci(prev, "wrote:"))
                        return p - 1;
                if (p > 1 && attribution_at(lines, cut, p - 2))
                        return p - 2;
        }
        return start;
}

/* Rule 3. */
static size_t signature_start(const struct line *lines, size_t cut)
{
        for (size_t i = 0; i < cut; i++) {
                struct line l = lines[i];
                while (l.n > 0 && l.s[l.n - 1] == '\r')
                        l.n--;
                if ((l.n == 3 && memcmp(l.s, "-- ", 3) == 0) ||
                    (l.n == 2 && memcmp(l.s, "--", 2) == 0))
                        return i;
        }
        return cut;
}

/* Rule 4: "Sent from my iPhone" and the like, in the languages above. */
static bool device_line(struct line l)
{
        static const char *const prefixes[] = {
                "Sent from my ",
                "Sent from Mail for ",
                "Sent from Outlook",
                "Sent from Yahoo",
                "Get Outlook for ",
                "Sent via ",
                "Envoy\xc3\xa9 de mon ",
                "Von meinem ",
                "Enviado desde mi ",
                "Enviado do meu ",
                "Inviato da ",
                "G\xe1\xbb\xadi t\xe1\xbb\xab ", /* Gửi từ */
                "\xe0\xb8\xaa\xe0\xb9\x88\xe0\xb8\x87\xe0\xb8\x88\xe0\xb8\xb2\xe0\xb8\x81", /* ส่งจาก
                                                                                             */
                "\xe5\x8f\x91\xe8\x87\xaa\xe6\x88\x91\xe7\x9a\x84", /* 发自我的 */
                "\xe7\x99\xbc\xe8\x87\xaa\xe6\x88\x91\xe7\x9a\x84", /* 發自我的 */
                NULL};
        static const char *const suffixes[] = {
                "g\xc3\xb6nderildi",                                /* Turkish */
                "\xe3\x81\x8b\xe3\x82\x89\xe9\x80\x81\xe4\xbf\xa1", /* から送信 */
                NULL};
        l = trim(l);
        if (l.n == 0 || l.n > 80)
                return false;
        for (size_t i = 0; prefixes[i]; i++)
                if (starts_ci(l, prefixes[i]))
                        return true;
        return ends_any(l, suffixes);
}

static size_t device_lines(const struct line *lines, size_t cut)
{
        for (int k = 0; k < 2; k++) {
                size_t end = cut;
                while (end > 0 && blank(lines[end - 1]))
                        end--;
                if (end == 0 || !device_line(lines[end - 1]))
                        break;
                cut = end - 1;
        }
        return cut;
}

/* Lines [from, to) joined with \n, trailing white space and leading blank
 * lines dropped. */
static char *join(const struct line *lines, size_t from, size_t to)
{
        while (from < to && blank(lines[from]))
                from++;
        while (to > from && blank(lines[to - 1]))
                to--;
        size_t len = 0;
        for (size_t i = from; i < to; i++)
                len += lines[i].n + 1;
        char *out = malloc(len + 1);
        if (out == NULL)
                return NULL;
        char *p = out;
        for (size_t i = from; i < to; i++) {
                struct line l = lines[i];
                if (i == from) /* leading white space of the text */
                        l = (struct line){trim(l).s, l.n - (size_t)(trim(l).s - l.s)};
                while (l.n > 0 && l.s[l.n - 1] == '\r')
                        l.n--;
                memcpy(p, l.s, l.n);
                p += l.n;
                *p++ = '\n';
        }
        while (p > out && (p[-1] == '\n' || is_ws(p[-1])))
                p--;
        *p = '\0';
        return out;
}

/* Splits at \n, \r\n and lone \r. */
static struct line *split(const char *text, size_t *n_out)
{
        size_t n = 1;
        for (const char *p = text; *p; p++)
                if (*p == '\n' || (*p == '\r' && p[1] != '\n'))
                        n++;
        struct line *lines = malloc(n * sizeof(*lines));
        if (lines == NULL)
                return NULL;
        size_t i = 0;
        const char *start = text, *p = text;
        for (; *p; p++) {
                if (*p == '\n' || (*p == '\r' && p[1] != '\n')) {
                        size_t len = (size_t)(p - start);
                        if (*p == '\n' && len > 0 && start[len - 1] == '\r')
                                len--;
                        lines[i++] = (struct line){start, len};
                        start = p + 1;
                }
        }
        lines[i++] = (struct line){start, (size_t)(p - start)};
        *n_out = i;
        return lines;
}

char *omr_email_trim_quoted(const char *text)
{
        size_t n;
        struct line *lines = split(text ? text : "", &n);
        if (lines == NULL)
                return NULL;
        size_t cut = history_start(lines, n);
        cut = trailing_quote(lines, cut);
        cut = signature_start(lines, cut);
        cut = device_lines(lines, cut);
        char *out = join(lines, 0, cut);
        if (out != NULL && out[0] == '\0') {
                free(out);
                out = join(lines, 0, n);
        }
        free(lines);
        return out;
}
