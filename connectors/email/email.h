/* email.h — the email connector's parts, shared inside connectors/email:
 * email.c (the connector: ops table, mail -> message), imap.c (a poller
 * per mailbox), mailgun.c (inbound webhook), outgoing.c (replies through
 * SMTP). Loop thread only, except what mailer.c runs on its worker. */
#ifndef OMR_EMAIL_H
#define OMR_EMAIL_H

#include "mailer.h"
#include "mime.h"
#include "omniroute/connector.h"

#define EMAIL_CONN_MAGIC 0xe3a11c0u

struct imap_poller;
struct send;

struct email_conn {
        unsigned magic;
        struct omr_connector *c;
        struct omr_mailer *mailer;   /* owned, from the first send: libesmtp's thread */
        struct imap_poller *pollers; /* one per mailbox with imap, owned */
        struct send *later;          /* outgoing.c: answers not yet delivered */
        bool stopping;
};

/* The limits every parsed mail is read with. */
extern const struct omr_email_limits omr_email_read_limits;

/* The normalised message of a parsed mail that arrived at mailbox mb.
 * fallback_id names it when it has no Message-ID (stable across
 * redeliveries: "uid:<validity>:<uid>"). Attachments get the URL
 * url_base;SECTION=<part> when url_base is given (IMAP), else none. NULL
 * when out of memory. */
struct omr_message *email_message(const struct omr_conf_email_mailbox *mb,
                                  const struct omr_email *e, const char *fallback_id,
                                  const char *url_base);

/* imap.c: starts polling mailbox `name` (which must have imap) and links
 * the poller into ec->pollers. */
struct imap_poller *imap_poller_new(struct email_conn *ec, const char *name);
const char *imap_poller_name(const struct imap_poller *p);
struct imap_poller *imap_poller_next(const struct imap_poller *p);
/* Unlinks and stops the poller; it frees itself once nothing of it is in
 * flight. */
void imap_poller_stop(struct imap_poller *p);

/* mailgun.c: POST /v1/email/mailgun/{mailbox}. */
int mailgun_start(struct email_conn *ec);

/* outgoing.c: the connector's send(). */
int email_send(struct email_conn *ec, const struct omr_reply *r, omr_send_done_fn done, void *arg);
/* Delivers the answers send() has not delivered yet (at stop: the
 * outbound core is still there to hear them). */
void email_send_flush(struct email_conn *ec);

#endif
