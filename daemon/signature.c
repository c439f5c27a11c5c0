/* signature.c — HMAC with OpenSSL and the generic webhook's signature
 * scheme. Pure functions, constant-time comparisons. */
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/signature.h"

static const char *alg_digest(enum omr_hmac_alg alg)
{
        switch (alg) {
        case OMR_HMAC_SHA1:
                return "SHA1";
        case OMR_HMAC_SHA256:
                return "SHA256";
        case OMR_HMAC_SHA512:
                return "SHA512";
        }
        return NULL;
}

size_t omr_hmac(enum omr_hmac_alg alg, const unsigned char *key, size_t keylen,
                const void *const *parts, const size_t *lens, size_t n, unsigned char *out)
{
        /* Fetched once: a provider lookup per message would dominate. */
        static EVP_MAC *mac;
        size_t outlen = 0;
        const char *digest = alg_digest(alg);

        if (mac == NULL)
                mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (mac == NULL || digest == NULL)
                return 0;
        EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
        if (ctx == NULL)
                return 0;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string("digest", (char *)digest, 0),
                OSSL_PARAM_construct_end(),
        };
        if (!EVP_MAC_init(ctx, key, keylen, params))
                goto fail;
        for (size_t i = 0; i < n; i++)
                if (!EVP_MAC_update(ctx, parts[i], lens[i]))
                        goto fail;
        if (!EVP_MAC_final(ctx, out, &outlen, 64))
                goto fail;
        EVP_MAC_CTX_free(ctx);
        return outlen;
fail:
        EVP_MAC_CTX_free(ctx);
        return 0;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char)tolower((unsigned char)c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

bool omr_hex_equal(const char *hex, size_t hexlen, const unsigned char *digest, size_t len)
{
        unsigned char decoded[64];
        if (hexlen != 2 * len || len > sizeof(decoded))
                return false;
        for (size_t i = 0; i < len; i++) {
                int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return false;
                decoded[i] = (unsigned char)(hi << 4 | lo);
        }
        return CRYPTO_memcmp(decoded, digest, len) == 0;
}

bool omr_hex_equal_bytes(const unsigned char *a, const unsigned char *b, size_t len)
{
        return CRYPTO_memcmp(a, b, len) == 0;
}

void omr_hex_encode(const unsigned char *in, size_t len, char *out)
{
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * len] = '\0';
}

enum omr_sig_result omr_sig_verify_api(const unsigned char *secret, size_t secret_len,
                                       const char *sig_header, const char *ts_header,
                                       bool require_ts, long long now_s, long long window_s,
                                       const char *body, size_t body_len)
{
        static const char prefix[] = "sha256=";
        unsigned char digest[64];
        size_t n;

        if (sig_header == NULL || *sig_header == '\0')
                return OMR_SIG_MISSING;
        if (strncmp(sig_header, prefix, sizeof(prefix) - 1) != 0 ||
            strlen(sig_header) != sizeof(prefix) - 1 + 64)
                return OMR_SIG_MALFORMED;
        const char *hex = sig_header + sizeof(prefix) - 1;
        for (int i = 0; i < 64; i++)
                if (hexval(hex[i]) < 0)
                        return OMR_SIG_MALFORMED;

        if (ts_header == NULL) {
                if (require_ts)
                        return OMR_SIG_TS_MISSING;
                const void *parts[] = {body};
                const size_t lens[] = {body_len};
                n = omr_hmac(OMR_HMAC_SHA256, secret, secret_len, parts, lens, 1, digest);
        } else {
                size_t tslen = strlen(ts_header);
                if (tslen == 0 || tslen > 12 || strspn(ts_header, "0123456789") != tslen)
                        return OMR_SIG_TS_MALFORMED;
                /* Verify before judging freshness, so an attacker learns
                 * nothing about the window from unsigned requests. */
                const void *parts[] = {ts_header, ".", body};
                const size_t lens[] = {tslen, 1, body_len};
                n = omr_hmac(OMR_HMAC_SHA256, secret, secret_len, parts, lens, 3, digest);
                if (n == 0 || !omr_hex_equal(hex, 64, digest, n))
                        return OMR_SIG_MISMATCH;
                long long ts = strtoll(ts_header, NULL, 10);
                if (ts < now_s - window_s || ts > now_s + window_s)
                        return OMR_SIG_TS_STALE;
                return OMR_SIG_OK;
        }
        if (n == 0 || !omr_hex_equal(hex, 64, digest, n))
                return OMR_SIG_MISMATCH;
        return OMR_SIG_OK;
}

const char *omr_sig_result_name(enum omr_sig_result r)
{
        switch (r) {
        case OMR_SIG_OK:
                return "ok";
        case OMR_SIG_MISSING:
                return "missing_signature";
        case OMR_SIG_MALFORMED:
        case OMR_SIG_MISMATCH:
                return "bad_signature";
        case OMR_SIG_TS_MISSING:
                return "missing_timestamp";
        case OMR_SIG_TS_MALFORMED:
                return "bad_timestamp";
        case OMR_SIG_TS_STALE:
                return "stale_timestamp";
        }
        return "bad_signature";
}
