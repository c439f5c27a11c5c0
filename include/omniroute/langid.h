/* langid.h — language of a message's text, by CLD2 (Debian libcld2; the
 * choice and its measured accuracy: bench/langid/README.md). Pure and
 * thread-safe; CLD2's tables are read-only data in the shared library. */
#ifndef OMNIROUTE_LANGID_H
#define OMNIROUTE_LANGID_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct omr_language {
        char tag[16];  /* BCP 47: "vi", "th", "tr", "zh-Hans" …; "und" when unknown */
        int percent;   /* share of the text's letters in that language, 0-100 */
        bool reliable; /* CLD2's own verdict; false for a best-effort guess */
};

/* Detects the language of len bytes of UTF-8 text. When CLD2 declines to
 * answer, a best-effort guess is returned with reliable = false. */
void omr_langid_detect(const char *text, size_t len, struct omr_language *out);

#ifdef __cplusplus
}
#endif
#endif
