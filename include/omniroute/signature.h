/* signature.h — webhook signature checks (OpenSSL HMAC, constant-time
 * comparison). Pure functions: no I/O, no logging. */
#ifndef OMNIROUTE_SIGNATURE_H
#define OMNIROUTE_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>

enum omr_hmac_alg { OMR_HMAC_SHA1, OMR_HMAC_SHA256, OMR_HMAC_SHA512 };

/* HMAC over the concatenation of up to `n` parts. Returns the digest
 * length written to out (which needs 64 bytes), or 0 on failure. */
size_t omr_hmac(enum omr_hmac_alg alg, const unsigned char *key, size_t keylen,
                const void *const *parts, const size_t *lens, size_t n, unsigned char *out);

/* Does `hex` (case-insensitive, exactly 2*len digits) spell `digest`?
 * Constant time in the digest's content. */
bool omr_hex_equal(const char *hex, size_t hexlen, const unsigned char *digest, size_t len);

/* Constant-time comparison of two equal-length byte strings. */
bool omr_hex_equal_bytes(const unsigned char *a, const unsigned char *b, size_t len);

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

#endif
