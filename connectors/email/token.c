/* token.c — see token.h. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "omniroute/signature.h"
#include "token.h"

#define SIG_BYTES 10

static bool sign(const struct omr_conf_email_mailbox *mb, const char *conv, unsigned char mac[64])
{
        /* A context label keeps these MACs apart from anything else the
         * same key might ever sign. */
        static const char label[] = "omniroute-email-conversation:";
        const void *parts[] = {label, conv};
        const size_t lens[] = {sizeof(label) - 1, OMR_ID_LEN};
        return omr_hmac(OMR_HMAC_SHA256, mb->token_secret, mb->token_secret_len, parts, lens, 2,
                        mac) != 0;
}

void omr_email_token(const struct omr_conf_email_mailbox *mb, const char *conv,
                     char out[OMR_EMAIL_TOKEN_LEN + 1])
{
        unsigned char mac[64];
        memcpy(out, conv, OMR_ID_LEN);
        out[OMR_ID_LEN] = '-';
        if (!sign(mb, conv, mac))
                memset(mac, 0, sizeof(mac)); /* never verifies: check() recomputes */
        omr_hex_encode(mac, SIG_BYTES, out + OMR_ID_LEN + 1);
        out[OMR_EMAIL_TOKEN_LEN] = '\0';
}

bool omr_email_token_check(const struct omr_conf_email_mailbox *mb, const char *token, size_t len,
                           char conv[OMR_ID_LEN + 1])
{
        if (len != OMR_EMAIL_TOKEN_LEN || token[OMR_ID_LEN] != '-')
                return false;
        char id[OMR_ID_LEN + 1];
        for (size_t i = 0; i < OMR_ID_LEN; i++) {
                if (!isalnum((unsigned char)token[i]))
                        return false;
                id[i] = (char)toupper((unsigned char)token[i]);
        }
        id[OMR_ID_LEN] = '\0';
        unsigned char mac[64];
        if (!sign(mb, id, mac) ||
            !omr_hex_equal(token + OMR_ID_LEN + 1, 2 * SIG_BYTES, mac, SIG_BYTES))
                return false;
        memcpy(conv, id, OMR_ID_LEN + 1);
        return true;
}

/* Splits our address once: local part and domain. */
static void own_parts(const struct omr_conf_email_mailbox *mb, size_t *local_len,
                      const char **domain)
{
        const char *at = strchr(mb->address, '@');
        *local_len = (size_t)(at - mb->address);
        *domain = at + 1;
}

bool omr_email_is_own_address(const struct omr_conf_email_mailbox *mb, const char *addr)
{
        size_t ll;
        const char *domain;
        own_parts(mb, &ll, &domain);
        const char *at = addr ? strrchr(addr, '@') : NULL;
        if (at == NULL || strcasecmp(at + 1, domain) != 0 || strncasecmp(addr, mb->address, ll))
                return false;
        return addr + ll == at || addr[ll] == '+';
}

bool omr_email_token_in_address(const struct omr_conf_email_mailbox *mb, const char *addr,
                                char conv[OMR_ID_LEN + 1])
{
        size_t ll;
        const char *domain;
        own_parts(mb, &ll, &domain);
        if (!omr_email_is_own_address(mb, addr) || addr[ll] != '+')
                return false;
        const char *tok = addr + ll + 1;
        return omr_email_token_check(mb, tok, (size_t)(strrchr(addr, '@') - tok), conv);
}

bool omr_email_token_in_msgid(const struct omr_conf_email_mailbox *mb, const char *msgid,
                              char conv[OMR_ID_LEN + 1])
{
        /* omr.<reply id>.<token>@<domain> */
        if (msgid == NULL || strncmp(msgid, "omr.", 4) != 0)
                return false;
        const char *at = strrchr(msgid, '@');
        const char *dot = at ? memrchr(msgid, '.', (size_t)(at - msgid)) : NULL;
        if (dot == NULL || dot < msgid + 4)
                return false;
        return omr_email_token_check(mb, dot + 1, (size_t)(at - dot - 1), conv);
}
