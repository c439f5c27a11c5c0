/* mime_charset.h — a body's bytes in its declared charset to valid UTF-8
 * (mime.c's decoder). Pure functions on GLib strings; any thread. */
#ifndef OMNIROUTE_EMAIL_MIME_CHARSET_H
#define OMNIROUTE_EMAIL_MIME_CHARSET_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>

#define OMR_CHARSET_MAX 40 /* longer charset names are not charsets */

enum omr_decode_flags {
        OMR_DECODE_TRUNCATED = 1, /* longer than cap: cut at a character boundary */
        OMR_DECODE_INVALID = 2,   /* bytes invalid in the charset: U+FFFD each */
        OMR_DECODE_NUL = 4,       /* NUL bytes: U+FFFD each */
        OMR_DECODE_UNKNOWN = 8,   /* charset unknown: read as UTF-8 */
};

struct omr_decoded {
        GString *text;  /* valid UTF-8 without NUL, at most cap bytes; the caller frees */
        unsigned flags; /* enum omr_decode_flags */
        bool converted; /* read through iconv: INVALID means undecodable in `charset` */
        char charset[OMR_CHARSET_MAX + 1]; /* the charset read (printable ASCII, for warnings) */
};

/* Decodes in[0..len) declared as `charset` (NULL or "": not declared: ASCII,
 * else UTF-8 when valid, else windows-1252) into d; \r\n and lone \r become
 * \n when `newlines`. */
void omr_mime_decode(const char *in, size_t len, const char *charset, size_t cap, bool newlines,
                     struct omr_decoded *d);

/* Appends s[0..n) (valid UTF-8) to out unless out would pass cap bytes;
 * then the part that fits, cut at a character boundary, and false. */
bool omr_mime_append_capped(GString *out, const char *s, size_t n, size_t cap);

/* The iconv name a declared charset is read with when it is a legacy one
 * iconv knows (in buf); NULL for none, UTF-8, ASCII and unknown names. */
const char *omr_mime_legacy_charset(const char *declared, char *buf, size_t size);

#endif
