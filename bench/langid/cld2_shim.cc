// cld2_shim.cc - extern "C" wrapper around CLD2, see cld2_shim.h.
// Build: g++ -std=c++11 -O2 -fPIC -c cld2_shim.cc   (link: -lcld2)
#include <cstdio> // compact_lang_det.h uses FILE without including it
#include <climits>
#include <cstring>
#include <new>

#include <cld2/public/compact_lang_det.h>
#include <cld2/public/encodings.h>

#include "cld2_shim.h"

namespace
{

void copy_code(char dst[OMR_CLD2_CODE_MAX], CLD2::Language lang)
{
        const char *c = CLD2::LanguageCode(lang);
        if (c == nullptr || *c == '\0')
                c = "un";
        std::snprintf(dst, OMR_CLD2_CODE_MAX, "%s", c);
}

void set_unknown(omr_cld2_result *out)
{
        std::memset(out, 0, sizeof *out);
        std::snprintf(out->code, OMR_CLD2_CODE_MAX, "un");
        for (int i = 0; i < 3; i++)
                std::snprintf(out->code3[i], OMR_CLD2_CODE_MAX, "un");
}

} // namespace

extern "C" int omr_cld2_detect(const char *text, size_t len, int flags, omr_cld2_result *out)
{
        set_unknown(out);
        if (text == nullptr)
                return -1;
        // CLD2 takes an int length; a support message is far below that, and the
        // first few KB decide the language anyway.
        int n = len > (size_t)(INT_MAX / 2) ? INT_MAX / 2 : (int)len;
        try {
                CLD2::CLDHints hints = {nullptr, nullptr, CLD2::UNKNOWN_ENCODING,
                                        CLD2::UNKNOWN_LANGUAGE};
                CLD2::Language lang3[3];
                int percent3[3];
                double nscore3[3];
                int text_bytes = 0;
                bool reliable = false;
                int valid_prefix = 0;
                CLD2::Language top = CLD2::ExtDetectLanguageSummaryCheckUTF8(
                        text, n, /*is_plain_text=*/true, &hints, flags, lang3, percent3, nscore3,
                        /*resultchunkvector=*/nullptr, &text_bytes, &reliable, &valid_prefix);
                copy_code(out->code, top);
                for (int i = 0; i < 3; i++) {
                        copy_code(out->code3[i], lang3[i]);
                        out->percent3[i] = percent3[i];
                        out->nscore3[i] = nscore3[i];
                }
                out->text_bytes = text_bytes;
                out->reliable = reliable ? 1 : 0;
                out->valid_prefix_bytes = valid_prefix;
                return valid_prefix < n ? -1 : 0;
        } catch (...) { // nothing may unwind into C
                set_unknown(out);
                return -1;
        }
}

extern "C" const char *omr_cld2_version(void)
{
        return CLD2::DetectLanguageVersion();
}
