/* outgoing.c — an agent's reply (or the daemon's acknowledgement) as an
 * RFC 5322 mail in the customer's thread, built with GMime and sent over
 * SMTP by mailer.c's worker thread (libesmtp blocks; the loop never
 * waits). Threading: In-Reply-To names the customer's last message,
 * References the thread's first and that one; Reply-To carries the signed
 * token (token.h) and so does our Message-ID, so the answer finds its
 * conversation whatever the customer's client keeps. Retries, backoff and
 * the outbox in Redis are the outbound core's (daemon/outbound.c). */
#include <errno.h>
#include <event2/event.h>
#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "email.h"
#include "omniroute/log.h"
#include "token.h"

#define SEND_MAGIC 0x5e4d3a1u

struct send {
        unsigned magic;
        struct email_conn *ec;
        struct event *later; /* answer_later() */
        struct send *next;   /* in ec->later while `later` is armed */
        omr_send_done_fn done;
        void *arg;
        char *message_id; /* ours, with <> */
        enum omr_send_status status;
        char error[256];
};

static void send_free(struct send *s)
{
        if (s->later) {
                for (struct send **pp = &s->ec->later; *pp; pp = &(*pp)->next) {
                        if (*pp == s) {
                                *pp = s->next;
                                break;
                        }
                }
                event_free(s->later);
        }
        free(s->message_id);
        s->magic = 0;
        free(s);
}

static void report(struct send *s)
{
        struct omr_send_result res = {
                .status = s->status,
                .provider_message_id = s->status == OMR_SEND_SENT ? s->message_id : NULL,
                .error = s->error[0] ? s->error : NULL,
                .retry_after_ms = -1,
        };
        s->done(&res, s->arg);
        send_free(s);
}

static void on_mailed(bool ok, bool permanent, int code, const char *error, void *arg)
{
        struct send *s = arg;
        OMR_MAGIC_CHECK(s, SEND_MAGIC);
        (void)code;
        /* A 4xx or a broken session is worth another try (the outbound core
         * backs off); a 5xx will not change. A session that broke after
         * DATA may have delivered: the same Message-ID lets the customer's
         * client fold a second copy. */
        s->status = ok ? OMR_SEND_SENT : permanent ? OMR_SEND_FAILED : OMR_SEND_RETRY;
        if (!ok)
                snprintf(s->error, sizeof(s->error), "%s", error ? error : "SMTP failed");
        report(s);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        report(arg);
}

/* send() must answer later, never from inside the call. */
static int answer_later(struct email_conn *ec, struct send *s, enum omr_send_status st,
                        const char *why)
{
        s->status = st;
        snprintf(s->error, sizeof(s->error), "%s", why);
        const struct timeval now = {0, 0};
        s->later = evtimer_new(omr_core_base(ec->c->core), on_later, s);
        if (s->later == NULL || evtimer_add(s->later, &now) != 0) {
                send_free(s);
                return -EIO;
        }
        s->next = ec->later;
        ec->later = s;
        return 0;
}

void email_send_flush(struct email_conn *ec)
{
        while (ec->later)
                report(ec->later);
}

/* A Message-ID we can use in headers: id-left "@" id-right, no brackets
 * or white space (an SMS-style provider id is none). */
static bool usable_msgid(const char *id)
{
        return id && *id && strchr(id, '@') && !strpbrk(id, "<> \t\r\n\"");
}

static char *reply_subject(const char *subject)
{
        char *s = NULL;
        if (subject == NULL || *subject == '\0')
                subject = "Your message";
        bool re = strncasecmp(subject, "re:", 3) == 0 || strncasecmp(subject, "aw:", 3) == 0;
        if (asprintf(&s, "%s%s", re ? "" : "Re: ", subject) < 0)
                return NULL;
        return s;
}

/* The body: UTF-8 text in quoted-printable or base64, whichever GMime
 * finds shorter for it. */
static GMimePart *text_part(const char *text)
{
        GMimeTextPart *part = g_mime_text_part_new_with_subtype("plain");
        GMimeStream *mem = g_mime_stream_mem_new();
        g_mime_stream_write_string(mem, text);
        g_mime_stream_reset(mem);
        GMimeDataWrapper *w =
                g_mime_data_wrapper_new_with_stream(mem, GMIME_CONTENT_ENCODING_DEFAULT);
        g_mime_part_set_content((GMimePart *)part, w);
        g_object_unref(w);
        g_object_unref(mem);
        g_mime_object_set_content_type_parameter((GMimeObject *)part, "charset", "utf-8");
        GMimeContentEncoding enc = g_mime_part_get_best_content_encoding(
                (GMimePart *)part, GMIME_ENCODING_CONSTRAINT_7BIT);
        g_mime_part_set_content_encoding((GMimePart *)part, enc);
        return (GMimePart *)part;
}

/* The whole mail as CRLF text, or NULL. */
static char *compose(const struct omr_conf_email_mailbox *mb, const struct omr_reply *r,
                     const char *message_id, const char *reply_to)
{
        GMimeMessage *msg = g_mime_message_new(TRUE);
        GMimeObject *obj = (GMimeObject *)msg;
        g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, mb->display_name, mb->address);
        g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, NULL, r->to);
        g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_REPLY_TO, mb->display_name, reply_to);
        char *subject = reply_subject(r->subject);
        if (subject)
                g_mime_message_set_subject(msg, subject, "utf-8");
        free(subject);
        GDateTime *now = g_date_time_new_now_utc();
        g_mime_message_set_date(msg, now);
        g_date_time_unref(now);
        g_mime_message_set_message_id(msg, message_id);
        char refs[2048] = "";
        if (usable_msgid(r->in_reply_to)) {
                char irt[1024];
                snprintf(irt, sizeof(irt), "<%s>", r->in_reply_to);
                g_mime_object_set_header(obj, "In-Reply-To", irt, NULL);
                if (usable_msgid(r->thread_ref) && strcmp(r->thread_ref, r->in_reply_to) != 0)
                        snprintf(refs, sizeof(refs), "<%s> %s", r->thread_ref, irt);
                else
                        snprintf(refs, sizeof(refs), "%s", irt);
                g_mime_object_set_header(obj, "References", refs, NULL);
        }
        /* RFC 3834: mail the daemon writes by itself says so, and other
         * robots (vacation replies) must not answer it. */
        if (r->agent_id && strcmp(r->agent_id, "omnirouted") == 0)
                g_mime_object_set_header(obj, "Auto-Submitted", "auto-replied", NULL);
        GMimePart *part = text_part(r->text);
        g_mime_message_set_mime_part(msg, (GMimeObject *)part);
        g_object_unref(part);
        GMimeFormatOptions *fo = g_mime_format_options_clone(NULL);
        g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
        char *text = g_mime_object_to_string(obj, fo);
        g_mime_format_options_free(fo);
        g_object_unref(msg);
        char *out = text ? strdup(text) : NULL;
        g_free(text);
        return out;
}

int email_send(struct email_conn *ec, const struct omr_reply *r, omr_send_done_fn done, void *arg)
{
        struct send *s = calloc(1, sizeof(*s));
        if (s == NULL)
                return -ENOMEM;
        s->magic = SEND_MAGIC;
        s->ec = ec;
        s->done = done;
        s->arg = arg;
        const struct omr_conf_email_mailbox *mb =
                omr_conf_email(omr_core_conf(ec->c->core), r->account);
        if (mb == NULL)
                return answer_later(ec, s, OMR_SEND_FAILED,
                                    "the conversation's mailbox is no longer configured");
        if (mb->smtp.server == NULL)
                return answer_later(ec, s, OMR_SEND_FAILED,
                                    "the mailbox has no smtp server configured");
        if (r->to == NULL || strchr(r->to, '@') == NULL || strpbrk(r->to, "\r\n<> \t,;"))
                return answer_later(ec, s, OMR_SEND_FAILED,
                                    "the customer's address cannot be written to");
        char token[OMR_EMAIL_TOKEN_LEN + 1];
        omr_email_token(mb, r->conversation_id, token);
        const char *at = strchr(mb->address, '@');
        char *reply_to = NULL, *bare_id = NULL;
        if (asprintf(&reply_to, "%.*s+%s%s", (int)(at - mb->address), mb->address, token, at) < 0)
                reply_to = NULL;
        if (asprintf(&bare_id, "omr.%s.%s%s", r->reply_id, token, at) < 0)
                bare_id = NULL;
        if (asprintf(&s->message_id, "<%s>", bare_id ? bare_id : "") < 0)
                s->message_id = NULL;
        char *message =
                reply_to && bare_id && s->message_id ? compose(mb, r, bare_id, reply_to) : NULL;
        free(reply_to);
        free(bare_id);
        if (message == NULL) {
                send_free(s);
                return -ENOMEM;
        }
        struct omr_mail mail = {
                .server = mb->smtp.server,
                .from = mb->address,
                .to = r->to,
                .user = mb->smtp.user,
                .password = mb->smtp.password,
                .starttls = (int)mb->smtp.starttls,
                .timeout_ms = (long)mb->smtp.timeout_ms,
                .message = message,
        };
        /* The worker thread starts with the first mail. */
        if (ec->mailer == NULL && !ec->stopping)
                ec->mailer = omr_mailer_new(omr_core_base(ec->c->core));
        int rc = ec->mailer ? omr_mailer_send(ec->mailer, &mail, on_mailed, s) : -ESHUTDOWN;
        free(message);
        if (rc != 0)
                send_free(s);
        return rc;
}
