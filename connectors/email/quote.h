/* quote.h — the new part of an email reply: quoted history and signature
 * cut. Pure function; any thread. */
#ifndef OMNIROUTE_EMAIL_QUOTE_H
#define OMNIROUTE_EMAIL_QUOTE_H

/* The part of an email's text an agent needs: cuts quoted reply history
 * and the signature. Returns a malloc'd copy; never returns "" when the
 * input had non-whitespace text (then it returns the trimmed input).
 * Line ends \n or \r\n in, \n out. NULL only when memory ran out (a NULL
 * text reads as ""). */
char *omr_email_trim_quoted(const char *text);

#endif
