/* form.c — form-urlencoded parsing and encoding on GLib's URI helpers,
 * and E.164 normalisation. Pure. */
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/form.h"

static int by_name(const void *a, const void *b)
{
        return strcmp(((const struct omr_form_pair *)a)->name,
                      ((const struct omr_form_pair *)b)->name);
}

int omr_form_set(struct omr_form *f, const char *name, const char *value)
{
        for (size_t i = 0; i < f->n; i++) {
                if (strcmp(f->pairs[i].name, name) == 0) {
                        char *v = strdup(value);
                        if (v == NULL)
                                return -ENOMEM;
                        free(f->pairs[i].value);
                        f->pairs[i].value = v;
                        return 0;
                }
        }
        struct omr_form_pair *np = realloc(f->pairs, (f->n + 1) * sizeof(*np));
        if (np == NULL)
                return -ENOMEM;
        f->pairs = np;
        np[f->n].name = strdup(name);
        np[f->n].value = strdup(value);
        if (np[f->n].name == NULL || np[f->n].value == NULL) {
                free(np[f->n].name);
                free(np[f->n].value);
                return -ENOMEM;
        }
        f->n++;
        qsort(f->pairs, f->n, sizeof(*f->pairs), by_name);
        return 0;
}

int omr_form_parse(const char *s, size_t len, struct omr_form *out)
{
        GError *err = NULL;
        memset(out, 0, sizeof(*out));
        if (len == 0)
                return 0;
        /* The form rules (WHATWG urlencoded) skip empty pieces ("a=1&&b=2")
         * and read "a" as "a=": GLib refuses both, so tidy the pieces first
         * and leave the decoding to GLib. */
        GString *tidy = g_string_sized_new(len + 8);
        const char *p = s, *end = s + len;
        while (p < end) {
                const char *amp = memchr(p, '&', (size_t)(end - p));
                size_t n = (size_t)((amp ? amp : end) - p);
                if (n > 0) {
                        if (tidy->len)
                                g_string_append_c(tidy, '&');
                        g_string_append_len(tidy, p, (gssize)n);
                        if (memchr(p, '=', n) == NULL)
                                g_string_append_c(tidy, '=');
                }
                p += n + 1;
        }
        GHashTable *t = tidy->len ? g_uri_parse_params(tidy->str, (gssize)tidy->len, "&",
                                                       G_URI_PARAMS_WWW_FORM, &err)
                                  : g_hash_table_new(g_str_hash, g_str_equal);
        g_string_free(tidy, TRUE);
        if (t == NULL) {
                g_clear_error(&err);
                return -EINVAL;
        }
        GHashTableIter it;
        gpointer k, v;
        int rc = 0;
        g_hash_table_iter_init(&it, t);
        while (rc == 0 && g_hash_table_iter_next(&it, &k, &v)) {
                if (!g_utf8_validate(k, -1, NULL) || !g_utf8_validate(v, -1, NULL))
                        rc = -EINVAL;
                else
                        rc = omr_form_set(out, k, v);
        }
        g_hash_table_unref(t);
        if (rc != 0)
                omr_form_free(out);
        return rc;
}

const char *omr_form_get(const struct omr_form *f, const char *name)
{
        for (size_t i = 0; i < f->n; i++)
                if (strcmp(f->pairs[i].name, name) == 0)
                        return f->pairs[i].value;
        return NULL;
}

void omr_form_free(struct omr_form *f)
{
        for (size_t i = 0; i < f->n; i++) {
                free(f->pairs[i].name);
                free(f->pairs[i].value);
        }
        free(f->pairs);
        f->pairs = NULL;
        f->n = 0;
}

char *omr_form_encode(const char *const *kv)
{
        GString *out = g_string_new(NULL);
        for (size_t i = 0; kv[i] && kv[i + 1]; i += 2) {
                if (out->len)
                        g_string_append_c(out, '&');
                g_string_append_uri_escaped(out, kv[i], NULL, FALSE);
                g_string_append_c(out, '=');
                g_string_append_uri_escaped(out, kv[i + 1], NULL, FALSE);
        }
        gchar *g = g_string_free(out, FALSE);
        char *s = strdup(g);
        g_free(g);
        return s;
}

int omr_phone_e164(const char *in, char out[17])
{
        char digits[32] = {0};
        size_t n = 0;
        const char *p = in;
        bool plus = false;

        while (*p == ' ' || *p == '(') /* "(+1) 415…" */
                p++;
        if (*p == '+') {
                plus = true;
                p++;
        } else if (p[0] == '0' && p[1] == '0') {
                plus = true; /* international call prefix */
                p += 2;
        }
        for (; *p; p++) {
                if (isdigit((unsigned char)*p)) {
                        if (n == sizeof(digits) - 1)
                                return -EINVAL;
                        digits[n++] = *p;
                } else if (!strchr(" -.()", *p)) {
                        return -EINVAL;
                }
        }
        /* E.164: up to 15 digits, no leading zero in the country code. A
         * bare national number ("07700…") cannot be placed without knowing
         * the country: refused. Very short numbers are short codes. */
        if (n < 7 || n > 15 || digits[0] == '0' || (!plus && in[0] == '0'))
                return -EINVAL;
        out[0] = '+';
        memcpy(out + 1, digits, n);
        out[n + 1] = '\0';
        return 0;
}
