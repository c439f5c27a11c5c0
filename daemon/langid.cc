// langid.cc — the C interface (langid.h) to CLD2, whose API is C++ only.
// The one C++ file of the daemon: nothing here may throw into C.
#include <cstdio> // compact_lang_det.h uses FILE without including <cstdio>
#include <climits>
#include <cstring>

#include <cld2/public/compact_lang_det.h>
#include <cld2/public/encodings.h>

#include "omniroute/langid.h"

namespace
{

// CLD2 speaks ISO 639 codes with a few legacy spellings; BCP 47 wants the
// current ones, and "und" for unknown.
void to_bcp47(CLD2::Language lang, char out[16])
{
        static const struct {
                const char *cld2, *bcp47;
        } renames[] = {{"iw", "he"}, {"jw", "jv"}, {"no", "nb"}, {"zh", "zh-Hans"}};
        const char *c = CLD2::LanguageCode(lang);
        if (c == nullptr || *c == '\0' || std::strcmp(c, "un") == 0 || std::strcmp(c, "xxx") == 0 ||
            std::strncmp(c, "xx-", 3) == 0 || std::strncmp(c, "zz", 2) == 0)
                c = "und";
        for (const auto &r : renames)
                if (std::strcmp(c, r.cld2) == 0)
                        c = r.bcp47;
        std::snprintf(out, 16, "%s", c);
}

CLD2::Language detect(const char *text, int n, int flags, int *percent, bool *reliable)
{
        CLD2::CLDHints hints = {nullptr, nullptr, CLD2::UNKNOWN_ENCODING, CLD2::UNKNOWN_LANGUAGE};
        // CLD2 leaves these untouched when it stops early (invalid UTF-8).
        CLD2::Language lang3[3] = {CLD2::UNKNOWN_LANGUAGE, CLD2::UNKNOWN_LANGUAGE,
                                   CLD2::UNKNOWN_LANGUAGE};
        int percent3[3] = {0, 0, 0};
        double nscore3[3] = {0, 0, 0};
        int text_bytes = 0, valid_prefix = 0;
        CLD2::Language top = CLD2::ExtDetectLanguageSummaryCheckUTF8(
                text, n, true, &hints, flags, lang3, percent3, nscore3, nullptr, &text_bytes,
                reliable, &valid_prefix);
        if (valid_prefix < n) { // not UTF-8 after all: no answer to trust
                *reliable = false;
                *percent = 0;
                return CLD2::UNKNOWN_LANGUAGE;
        }
        *percent = lang3[0] == top ? percent3[0] : 0;
        return top;
}

} // namespace

extern "C" void omr_langid_detect(const char *text, size_t len, struct omr_language *out)
{
        std::snprintf(out->tag, sizeof(out->tag), "und");
        out->percent = 0;
        out->reliable = false;
        if (text == nullptr || len == 0)
                return;
        // The first few KB decide; CLD2 takes an int length.
        int n = len > 65536 ? 65536 : static_cast<int>(len);
        try {
                bool reliable = false;
                int percent = 0;
                CLD2::Language lang = detect(text, n, 0, &percent, &reliable);
                if (lang == CLD2::UNKNOWN_LANGUAGE) {
                        // Short texts often get no answer; the best-effort guess is
                        // right most of the time (bench/langid) but is marked so.
                        lang = detect(text, n, CLD2::kCLDFlagBestEffort, &percent, &reliable);
                        reliable = false;
                }
                to_bcp47(lang, out->tag);
                out->percent = percent;
                out->reliable = reliable && lang != CLD2::UNKNOWN_LANGUAGE;
        } catch (...) {
                std::snprintf(out->tag, sizeof(out->tag), "und");
        }
}
