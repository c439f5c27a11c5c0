/* fuzz_form.c — the form-urlencoded parser (Twilio and Vonage webhooks) and
 * the provider signature builders over whatever it accepts; what it parses
 * must survive its own encoding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/form.h"
#include "omniroute/signature.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct omr_form f;
        if (omr_form_parse((const char *)data, size, &f) != 0)
                return 0;
        char tw[29], vo[129], e164[17];
        omr_sig_twilio("token", "https://example.com/v1/sms/twilio/main", &f, tw);
        omr_sig_twilio_verify("token", "https://example.com:443/x?y=1", &f,
                              "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        omr_sig_vonage("secret", OMR_VSIG_MD5HASH, &f, vo);
        omr_sig_vonage_verify("secret", OMR_VSIG_SHA512, &f, omr_form_get(&f, "sig"));
        /* Round trip: encode every pair and parse it back. */
        const char **kv = calloc(2 * f.n + 1, sizeof(*kv));
        if (kv == NULL) {
                omr_form_free(&f);
                return 0;
        }
        for (size_t i = 0; i < f.n; i++) {
                kv[2 * i] = f.pairs[i].name;
                kv[2 * i + 1] = f.pairs[i].value;
                omr_phone_e164(f.pairs[i].value, e164);
        }
        char *enc = omr_form_encode(kv);
        struct omr_form back;
        if (enc == NULL || omr_form_parse(enc, strlen(enc), &back) != 0)
                abort();
        if (back.n != f.n)
                abort();
        for (size_t i = 0; i < f.n; i++)
                if (strcmp(back.pairs[i].name, f.pairs[i].name) ||
                    strcmp(back.pairs[i].value, f.pairs[i].value))
                        abort();
        omr_form_free(&back);
        free(enc);
        free(kv);
        omr_form_free(&f);
        return 0;
}
