/* token.h — signed references to a conversation that travel in email: the
 * reply address "local+<token>@domain" and the Message-IDs of the mail we
 * send, "omr.<reply>.<token>@domain". A token is the conversation id and
 * an HMAC of it under the mailbox's token secret, so a customer's mail
 * client can carry it back but nobody can forge one for a conversation
 * they were not sent. Pure functions; any thread. */
#ifndef OMR_EMAIL_TOKEN_H
#define OMR_EMAIL_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#include "omniroute/conf.h"
#include "omniroute/message.h"

/* "<26-char conversation id>-<20 hex>": fits a 64-byte local part with a
 * local name of up to 16 bytes. */
#define OMR_EMAIL_TOKEN_LEN (OMR_ID_LEN + 1 + 20)

/* Fills out with the token of conversation `conv`. */
void omr_email_token(const struct omr_conf_email_mailbox *mb, const char *conv,
                     char out[OMR_EMAIL_TOKEN_LEN + 1]);

/* The conversation named by a valid token (compared case-insensitively:
 * some mail systems lower-case local parts). */
bool omr_email_token_check(const struct omr_conf_email_mailbox *mb, const char *token, size_t len,
                           char conv[OMR_ID_LEN + 1]);

/* Whether addr is this mailbox's address with a valid +token. */
bool omr_email_token_in_address(const struct omr_conf_email_mailbox *mb, const char *addr,
                                char conv[OMR_ID_LEN + 1]);

/* Whether msgid (without <>) is one of our Message-IDs with a valid token. */
bool omr_email_token_in_msgid(const struct omr_conf_email_mailbox *mb, const char *msgid,
                              char conv[OMR_ID_LEN + 1]);

/* Whether addr is the mailbox's own address, with or without a +tag. */
bool omr_email_is_own_address(const struct omr_conf_email_mailbox *mb, const char *addr);

#endif
