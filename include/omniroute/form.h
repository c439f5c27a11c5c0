/* form.h — application/x-www-form-urlencoded bodies (GLib's parser) and
 * phone numbers. Pure functions. */
#ifndef OMNIROUTE_FORM_H
#define OMNIROUTE_FORM_H

#include <stddef.h>

struct omr_form_pair {
        char *name;
        char *value;
};

/* Pairs sorted by name (byte order), as the providers' signature schemes
 * need them. */
struct omr_form {
        size_t n;
        struct omr_form_pair *pairs;
};

/* 0, or -EINVAL for a malformed %-escape or invalid UTF-8. As browsers
 * do, empty pieces are skipped and a name without '=' has an empty value;
 * a repeated name keeps its last value. */
int omr_form_parse(const char *s, size_t len, struct omr_form *out);
/* Adds (copies) a pair, keeping the order. 0 or -ENOMEM. */
int omr_form_set(struct omr_form *f, const char *name, const char *value);
const char *omr_form_get(const struct omr_form *f, const char *name);
void omr_form_free(struct omr_form *f);
/* "a=1&b=x%20y" from a NULL-terminated name, value, name, value … list;
 * heap string or NULL. */
char *omr_form_encode(const char *const *kv);

/* E.164 from what people and providers write: "+44 7700 900001",
 * "0044…", "447700900001" (digits only, as Vonage sends) → "+447700900001".
 * 0 or -EINVAL (then keep the original: short codes, alphanumeric senders). */
int omr_phone_e164(const char *in, char out[17]);

#endif
