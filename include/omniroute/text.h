/* text.h — UTF-8 text helpers shared by connectors and the router.
 * Pure functions; returned strings are heap-allocated (free()). */
#ifndef OMNIROUTE_TEXT_H
#define OMNIROUTE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

bool omr_text_valid_utf8(const char *s, size_t len);
/* Unicode case folding after NFKC normalisation, so "RÉSUMÉ", "résumé" and
 * "re\u0301sume\u0301" compare equal. NULL if s is not valid UTF-8. */
char *omr_text_fold(const char *s);
/* Copy without leading/trailing Unicode White_Space; NULL if s is not
 * valid UTF-8. */
char *omr_text_trim(const char *s);
/* omr_text_trim(s), with NULL s read as ""; NULL only when s is invalid
 * UTF-8 or memory ran out. */
char *omr_text_trim_or_empty(const char *s);
/* Does the folded haystack contain the folded needle? */
bool omr_text_contains_folded(const char *folded_haystack, const char *folded_needle);

#endif
