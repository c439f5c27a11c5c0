/* signature.c — HMAC with OpenSSL and the generic webhook's signature
 * scheme. Pure functions, constant-time comparisons. */
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/signature.h"

static const char *alg_digest(enum omr_hmac_alg alg)
{
        switch (alg) {
        case OMR_HMAC_MD5:
                return "MD5";
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

bool omr_ct_equal(const unsigned char *a, const unsigned char *b, size_t len)
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

/* --- providers ------------------------------------------------------------ */

int omr_sig_twilio(const char *token, const char *url, const struct omr_form *params, char out[29])
{
        GString *data = g_string_new(url);
        for (size_t i = 0; i < params->n; i++) {
                g_string_append(data, params->pairs[i].name);
                g_string_append(data, params->pairs[i].value);
        }
        unsigned char d[64];
        const void *parts[] = {data->str};
        const size_t lens[] = {data->len};
        size_t n = omr_hmac(OMR_HMAC_SHA1, (const unsigned char *)token, strlen(token), parts, lens,
                            1, d);
        g_string_free(data, TRUE);
        if (n != 20)
                return -1;
        gchar *b64 = g_base64_encode(d, n);
        snprintf(out, 29, "%s", b64);
        g_free(b64);
        return 0;
}

/* The URL with its default port toggled: "https://h/p" <-> "https://h:443/p". */
static char *toggle_port(const char *url)
{
        const char *dflt = strncmp(url, "https://", 8) == 0 ? "443" : "80";
        const char *host = strstr(url, "://");
        if (host == NULL)
                return NULL;
        host += 3;
        size_t hlen = strcspn(host, "/?");
        const char *colon = memchr(host, ':', hlen);
        GString *s = g_string_new_len(url, host - url);
        if (colon) {
                if (strncmp(colon + 1, dflt, strlen(dflt)) != 0 ||
                    (size_t)(colon + 1 + strlen(dflt) - host) != hlen) {
                        g_string_free(s, TRUE);
                        return NULL; /* a non-default port is part of the URL */
                }
                g_string_append_len(s, host, colon - host);
        } else {
                g_string_append_len(s, host, (gssize)hlen);
                g_string_append_printf(s, ":%s", dflt);
        }
        g_string_append(s, host + hlen);
        gchar *g = g_string_free(s, FALSE);
        char *r = strdup(g);
        g_free(g);
        return r;
}

bool omr_sig_twilio_verify(const char *token, const char *url, const struct omr_form *params,
                           const char *header)
{
        char want[29];
        if (header == NULL || strlen(header) != 28)
                return false;
        bool ok = omr_sig_twilio(token, url, params, want) == 0 &&
                  omr_ct_equal((const unsigned char *)want, (const unsigned char *)header, 28);
        char *other = ok ? NULL : toggle_port(url);
        if (other) {
                ok = omr_sig_twilio(token, other, params, want) == 0 &&
                     omr_ct_equal((const unsigned char *)want, (const unsigned char *)header, 28);
                free(other);
        }
        return ok;
}

int omr_sig_vonage(const char *secret, enum omr_vonage_sig method, const struct omr_form *params,
                   char out[129])
{
        GString *s = g_string_new(NULL);
        for (size_t i = 0; i < params->n; i++) {
                if (strcmp(params->pairs[i].name, "sig") == 0)
                        continue;
                g_string_append_c(s, '&');
                g_string_append(s, params->pairs[i].name);
                g_string_append_c(s, '=');
                for (const char *v = params->pairs[i].value; *v; v++)
                        g_string_append_c(s, (*v == '&' || *v == '=') ? '_' : *v);
        }
        unsigned char d[64];
        size_t n = 0;
        if (method == OMR_VSIG_MD5HASH) {
                g_string_append(s, secret);
                unsigned int len = 0;
                if (EVP_Digest(s->str, s->len, d, &len, EVP_md5(), NULL))
                        n = len;
        } else {
                static const enum omr_hmac_alg algs[] = {
                        [OMR_VSIG_MD5] = OMR_HMAC_MD5,
                        [OMR_VSIG_SHA1] = OMR_HMAC_SHA1,
                        [OMR_VSIG_SHA256] = OMR_HMAC_SHA256,
                        [OMR_VSIG_SHA512] = OMR_HMAC_SHA512,
                };
                const void *parts[] = {s->str};
                const size_t lens[] = {s->len};
                n = omr_hmac(algs[method], (const unsigned char *)secret, strlen(secret), parts,
                             lens, 1, d);
        }
        g_string_free(s, TRUE);
        if (n == 0)
                return -1;
        omr_hex_encode(d, n, out);
        return 0;
}

bool omr_sig_vonage_verify(const char *secret, enum omr_vonage_sig method,
                           const struct omr_form *params, const char *sig)
{
        char want[129], got[129];
        if (sig == NULL || omr_sig_vonage(secret, method, params, want) != 0)
                return false;
        size_t n = strlen(want);
        if (strlen(sig) != n)
                return false;
        for (size_t i = 0; i <= n; i++) /* hex is compared case-insensitively */
                got[i] = (char)tolower((unsigned char)sig[i]);
        return omr_ct_equal((const unsigned char *)want, (const unsigned char *)got, n);
}
