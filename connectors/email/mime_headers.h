/* mime_headers.h — the header fields of struct omr_email (mime.h) read
 * from a message GMime parsed: ids, addresses, subject, date, loop
 * signals. mime.c's helper; any thread. */
#ifndef OMNIROUTE_EMAIL_MIME_HEADERS_H
#define OMNIROUTE_EMAIL_MIME_HEADERS_H

#include <gmime/gmime.h>
#include <stdbool.h>

#include "mime.h"

#define OMR_MIME_MAX_REFERENCES 64  /* the root and the 63 newest */
#define OMR_MIME_MAX_RECIPIENTS 256 /* more are not listed */

/* Fills message_id … date_ms of e (opts: the parse's options). false when
 * memory ran out (what was filled stays for omr_email_free). */
bool omr_mime_read_headers(GMimeMessage *msg, GMimeParserOptions *opts, struct omr_email *e);

/* Subject and From name read again from the raw header where GMime
 * reads them wrong: B-encoded words in a row (GMime 3.2 cuts at the first
 * one's padding) and raw 8-bit bytes that are not UTF-8 (read in the
 * charset of `body`, the body part, may be NULL). false when memory ran
 * out. */
bool omr_mime_redecode(GMimeMessage *msg, GMimeObject *body, struct omr_email *e);

/* Why the message is machine-sent (a static string), NULL when it is not. */
const char *omr_mime_auto_reason(GMimeMessage *msg, const char *from_addr);

/* s as one line of valid UTF-8 (control characters become spaces),
 * trimmed, malloc'd; NULL for NULL, for "" when empty_null, and when
 * memory ran out (then *oom is set). */
char *omr_mime_one_line(const char *s, bool empty_null, bool *oom);
/* The same, lower-cased (addresses). */
char *omr_mime_lower_line(const char *s, bool *oom);

#endif
