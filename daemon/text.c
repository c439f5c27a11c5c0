/* text.c — UTF-8 validation, folding and trimming on top of GLib's
 * Unicode tables (GLib is already here for GMime). Pure functions. */
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/text.h"

bool omr_text_valid_utf8(const char *s, size_t len)
{
        return g_utf8_validate_len(s, len, NULL);
}

/* GLib allocations are handed out as malloc() memory so callers have one
 * rule: free(). */
static char *from_glib(gchar *g)
{
        if (g == NULL)
                return NULL;
        char *s = strdup(g);
        g_free(g);
        return s;
}

char *omr_text_fold(const char *s)
{
        if (s == NULL || !g_utf8_validate(s, -1, NULL))
                return NULL;
        gchar *norm = g_utf8_normalize(s, -1, G_NORMALIZE_NFKC);
        if (norm == NULL)
                return NULL;
        gchar *folded = g_utf8_casefold(norm, -1);
        g_free(norm);
        /* Folding can produce decomposed forms (e.g. U+0130): normalise again
         * so haystack and needle agree. */
        gchar *out = g_utf8_normalize(folded, -1, G_NORMALIZE_NFKC);
        g_free(folded);
        return from_glib(out);
}

/* Unicode White_Space: GLib's isspace covers the separators (Zs, Zl, Zp)
 * and \t \n \r \f, but not the two controls VT and NEL. */
static bool is_white(gunichar c)
{
        return c == 0x0B || c == 0x85 || g_unichar_isspace(c);
}

char *omr_text_trim(const char *s)
{
        if (s == NULL || !g_utf8_validate(s, -1, NULL))
                return NULL;
        const char *start = s;
        while (*start && is_white(g_utf8_get_char(start)))
                start = g_utf8_next_char(start);
        const char *end = start + strlen(start);
        while (end > start) {
                const char *prev = g_utf8_find_prev_char(start, end);
                if (prev == NULL || !is_white(g_utf8_get_char(prev)))
                        break;
                end = prev;
        }
        return strndup(start, (size_t)(end - start));
}

char *omr_text_trim_or_empty(const char *s)
{
        return omr_text_trim(s ? s : "");
}

bool omr_text_contains_folded(const char *folded_haystack, const char *folded_needle)
{
        if (folded_haystack == NULL || folded_needle == NULL || *folded_needle == '\0')
                return false;
        return strstr(folded_haystack, folded_needle) != NULL;
}
