/* cld2_shim.h - plain C interface to CLD2 (Debian libcld2-dev).
 *
 * CLD2's only API is C++ (namespace CLD2, std::vector in signatures, and the
 * public header itself needs <cstdio>), so a C11 program cannot include it.
 * cld2_shim.cc is compiled with g++ and exports the functions below with C
 * linkage; the C side links it plus -lcld2 (and the C++ runtime, -lstdc++,
 * or links with g++).  This is the shape omnirouted would need too.
 */
#ifndef OMR_CLD2_SHIM_H
#define OMR_CLD2_SHIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OMR_CLD2_CODE_MAX 16

typedef struct {
        char code[OMR_CLD2_CODE_MAX];     /* CLD2 code of the answer: "en", "iw", "un" = unknown */
        char code3[3][OMR_CLD2_CODE_MAX]; /* top three languages, "un" where none */
        int percent3[3];                  /* % of the text's letters in each of the three */
        double nscore3[3];                /* score relative to normal text (~1.0 = typical) */
        int text_bytes;                   /* letters-only bytes CLD2 actually scored */
        int reliable;                     /* CLD2's is_reliable */
        int valid_prefix_bytes;           /* < length when the input is not valid UTF-8 */
} omr_cld2_result;

/* Flags for omr_cld2_detect (values are CLD2's own kCLDFlag* bits). */
#define OMR_CLD2_BEST_EFFORT 0x4000 /* answer a language even when unsure */

/* Classify len bytes of plain (not HTML) UTF-8 text.  Thread-safe (CLD2 keeps
 * no mutable global state; its tables are const).  Never throws.  Returns 0,
 * or -1 when the text is not valid UTF-8 or on an internal error (then
 * out->code is "un"). */
int omr_cld2_detect(const char *text, size_t len, int flags, omr_cld2_result *out);

/* "V2.0 - 20141016" for Debian's 0.0.0-git20150806 */
const char *omr_cld2_version(void);

#ifdef __cplusplus
}
#endif
#endif
