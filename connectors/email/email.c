/* email.c — the email connector (docs/connectors/email.md): mailboxes
 * read over IMAP (imap.c) or posted by Mailgun (mailgun.c), replies sent
 * over SMTP (outgoing.c). Here: the ops table, and the one mapping from a
 * parsed mail to the normalised message, shared by both ways in. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "email.h"
#include "omniroute/log.h"
#include "token.h"

const struct omr_email_limits omr_email_read_limits = {
        .max_text = 256 * 1024,
        .max_attachments = 100,
};

static char *dup_or_null(const char *s)
{
        return s ? strdup(s) : NULL;
}

/* A conversation this mail names with a signed token: in the address it
 * was sent to (our reply-to address), else in the newest of our own
 * Message-IDs it answers. */
static bool find_hint(const struct omr_conf_email_mailbox *mb, const struct omr_email *e,
                      char conv[OMR_ID_LEN + 1])
{
        for (size_t i = 0; i < e->n_recipients; i++)
                if (omr_email_token_in_address(mb, e->recipients[i], conv))
                        return true;
        if (e->in_reply_to && omr_email_token_in_msgid(mb, e->in_reply_to, conv))
                return true;
        for (size_t i = e->n_references; i-- > 0;)
                if (omr_email_token_in_msgid(mb, e->references[i], conv))
                        return true;
        return false;
}

static int copy_attachments(struct omr_message *m, const struct omr_email *e, const char *url_base)
{
        if (e->n_attachments == 0)
                return 0;
        m->attachments = calloc(e->n_attachments, sizeof(*m->attachments));
        if (m->attachments == NULL)
                return -1;
        m->n_attachments = e->n_attachments;
        for (size_t i = 0; i < e->n_attachments; i++) {
                const struct omr_email_attachment *a = &e->attachments[i];
                m->attachments[i].name = dup_or_null(a->name);
                m->attachments[i].type = dup_or_null(a->type);
                m->attachments[i].size = a->size;
                if (url_base && a->section &&
                    asprintf(&m->attachments[i].url, "%s;SECTION=%s", url_base, a->section) < 0)
                        return -1;
                if ((a->name && !m->attachments[i].name) || (a->type && !m->attachments[i].type))
                        return -1;
        }
        return 0;
}

struct omr_message *email_message(const struct omr_conf_email_mailbox *mb,
                                  const struct omr_email *e, const char *fallback_id,
                                  const char *url_base)
{
        struct omr_message *m = omr_message_new();
        if (m == NULL)
                return NULL;
        m->direction = OMR_DIR_IN;
        m->channel = OMR_CHANNEL_EMAIL;
        if (asprintf(&m->provider, "email:%s", mb->name) < 0)
                m->provider = NULL;
        const char *id = e->message_id ? e->message_id : fallback_id;
        m->external_id = strdup(id);
        /* The thread's first message names it: every later mail of the
         * thread lists it first in References (RFC 5322 3.6.4). */
        const char *root = e->n_references  ? e->references[0]
                           : e->in_reply_to ? e->in_reply_to
                                            : id;
        m->thread_key = strdup(root);
        const char *from = e->from_addr ? e->from_addr : "unknown-sender@invalid";
        m->customer.id = strdup(from);
        m->customer.name = dup_or_null(e->from_name);
        /* Answers go where the customer asked them to go. */
        m->customer.handle = strdup(e->reply_to_addr ? e->reply_to_addr : from);
        m->to = strdup(mb->address);
        m->subject = dup_or_null(e->subject);
        m->text = strdup(e->text ? e->text : "");
        if (e->body_full && e->text && strcmp(e->body_full, e->text) != 0)
                m->body_full = strdup(e->body_full);
        m->html = dup_or_null(e->html);
        if (e->warnings[0])
                m->warnings = strdup(e->warnings);
        m->sent_at = e->date_ms;
        /* Our own address writing to us is a loop in the making. */
        m->auto_submitted = e->auto_submitted || omr_email_is_own_address(mb, e->from_addr);
        char conv[OMR_ID_LEN + 1];
        if (find_hint(mb, e, conv))
                m->conversation_hint = strdup(conv);
        if (!m->provider || !m->external_id || !m->thread_key || !m->customer.id ||
            !m->customer.handle || !m->to || !m->text || (e->subject && !m->subject) ||
            (e->html && !m->html) || copy_attachments(m, e, url_base) != 0) {
                omr_message_free(m);
                return NULL;
        }
        return m;
}

/* --- the connector ---------------------------------------------------------- */

static struct email_conn *conn_of(struct omr_connector *c)
{
        struct email_conn *ec = c->priv;
        OMR_MAGIC_CHECK(ec, EMAIL_CONN_MAGIC);
        return ec;
}

static int email_init(struct omr_connector *c, const struct omr_conf *conf)
{
        (void)conf;
        struct email_conn *ec = calloc(1, sizeof(*ec));
        if (ec == NULL)
                return -ENOMEM;
        ec->magic = EMAIL_CONN_MAGIC;
        ec->c = c;
        c->priv = ec;
        omr_email_mime_init();
        return 0;
}

static bool polled(const struct email_conn *ec, const char *name)
{
        for (const struct imap_poller *p = ec->pollers; p; p = imap_poller_next(p))
                if (strcmp(imap_poller_name(p), name) == 0)
                        return true;
        return false;
}

/* One poller per mailbox with imap: start the missing ones. */
static int start_pollers(struct email_conn *ec, const struct omr_conf *conf)
{
        for (size_t i = 0; i < conf->n_email; i++) {
                const struct omr_conf_email_mailbox *mb = &conf->email[i];
                if (mb->imap.server == NULL || polled(ec, mb->name))
                        continue;
                if (imap_poller_new(ec, mb->name) == NULL)
                        return -ENOMEM;
        }
        return 0;
}

static int email_start(struct omr_connector *c)
{
        struct email_conn *ec = conn_of(c);
        int rc = mailgun_start(ec);
        return rc ? rc : start_pollers(ec, omr_core_conf(c->core));
}

/* Pollers read their mailbox's settings from the current configuration
 * on every round, so a reload only has to start and stop them. */
static void email_reload(struct omr_connector *c, const struct omr_conf *conf)
{
        struct email_conn *ec = conn_of(c);
        if (ec->stopping)
                return;
        for (struct imap_poller *p = ec->pollers, *next; p; p = next) {
                next = imap_poller_next(p);
                const struct omr_conf_email_mailbox *mb = omr_conf_email(conf, imap_poller_name(p));
                if (mb == NULL || mb->imap.server == NULL) {
                        omr_log(LOG_INFO, "email", "mailbox=%s no longer polled",
                                imap_poller_name(p));
                        imap_poller_stop(p); /* unlinks it */
                }
        }
        if (start_pollers(ec, conf) != 0)
                omr_log(LOG_ERR, "email", "cannot start the new mailboxes' pollers: out of memory");
}

static int email_send_op(struct omr_connector *c, const struct omr_reply *r, omr_send_done_fn done,
                         void *arg)
{
        return email_send(conn_of(c), r, done, arg);
}

static void email_stop(struct omr_connector *c)
{
        struct email_conn *ec = conn_of(c);
        ec->stopping = true;
        while (ec->pollers)
                imap_poller_stop(ec->pollers);
        /* Sends in progress report back now, while the outbound core that
         * waits for them still exists (it is freed after the connectors
         * stop); the one on the wire finishes first, bounded by its
         * timeout. */
        omr_mailer_free(ec->mailer);
        ec->mailer = NULL;
        email_send_flush(ec);
}

static void email_free(struct omr_connector *c)
{
        struct email_conn *ec = conn_of(c);
        if (!ec->stopping)
                email_stop(c);
        omr_email_mime_shutdown();
        ec->magic = 0;
        free(ec);
        c->priv = NULL;
}

const struct omr_connector_ops omr_email_connector = {
        .name = "email",
        .channel = OMR_CHANNEL_EMAIL,
        .init = email_init,
        .start = email_start,
        .send = email_send_op,
        .max_text = 0,
        .reload = email_reload,
        .stop = email_stop,
        .free = email_free,
};
