/* signature.h — webhook signature checks (OpenSSL HMAC, constant-time
 * comparison). Pure functions: no I/O, no logging. */
#ifndef OMNIROUTE_SIGNATURE_H
#define OMNIROUTE_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>

#include "omniroute/conf.h"
#include "omniroute/form.h"

enum omr_hmac_alg { OMR_HMAC_MD5, OMR_HMAC_SHA1, OMR_HMAC_SHA256, OMR_HMAC_SHA512 };

/* HMAC over the concatenation of up to `n` parts. Returns the digest
 * length written to out (which needs 64 bytes), or 0 on failure. */
size_t omr_hmac(enum omr_hmac_alg alg, const unsigned char *key, size_t keylen,
                const void *const *parts, const size_t *lens, size_t n, unsigned char *out);

/* Does `hex` (case-insensitive, exactly 2*len digits) spell `digest`?
 * Constant time in the digest's content. */
bool omr_hex_equal(const char *hex, size_t hexlen, const unsigned char *digest, size_t len);

/* Constant-time comparison of two equal-length byte strings. */
bool omr_ct_equal(const unsigned char *a, const unsigned char *b, size_t len);

/* Lower-case hex of `len` bytes into out (2*len+1 bytes). */
void omr_hex_encode(const unsigned char *in, size_t len, char *out);

enum omr_sig_result {
        OMR_SIG_OK,
        OMR_SIG_MISSING,    /* no signature header */
        OMR_SIG_MALFORMED,  /* not "sha256=<64 hex digits>" */
        OMR_SIG_MISMATCH,   /* wrong secret or altered body */
        OMR_SIG_TS_MISSING, /* adapter requires a timestamp and none came */
        OMR_SIG_TS_MALFORMED,
        OMR_SIG_TS_STALE, /* outside the replay window */
};

/* The generic webhook scheme (docs/connectors/api.md): the signature is
 * "sha256=" + hex(HMAC-SHA256(secret, signed)) where signed is the raw body,
 * or "<timestamp>." + raw body when a timestamp header is sent. */
enum omr_sig_result omr_sig_verify_api(const unsigned char *secret, size_t secret_len,
                                       const char *sig_header, const char *ts_header,
                                       bool require_ts, long long now_s, long long window_s,
                                       const char *body, size_t body_len);
const char *omr_sig_result_name(enum omr_sig_result r);

/* Twilio: base64(HMAC-SHA1(auth token, url + name1 + value1 + name2 …))
 * over the parameters sorted by name. out needs 29 bytes. */
int omr_sig_twilio(const char *token, const char *url, const struct omr_form *params, char out[29]);
/* Checks `header` against the URL as given and with the default port added
 * or removed (Twilio's own libraries accept both). */
bool omr_sig_twilio_verify(const char *token, const char *url, const struct omr_form *params,
                           const char *header);

/* Vonage signed webhooks: "&k=v" for every parameter but sig, sorted,
 * with '&' and '=' in values replaced by '_'; md5hash: md5(string +
 * secret), else HMAC(secret, string); lower-case hex into out (129). */
int omr_sig_vonage(const char *secret, enum omr_vonage_sig method, const struct omr_form *params,
                   char out[129]);
bool omr_sig_vonage_verify(const char *secret, enum omr_vonage_sig method,
                           const struct omr_form *params, const char *sig);

#endif
