/* mailer.h — sends email with libesmtp, whose sessions block, on a worker
 * thread; results come back to the event loop through a pipe. The loop
 * never waits on SMTP. */
#ifndef OMR_MAILER_H
#define OMR_MAILER_H

#include <stdbool.h>

struct event_base;
struct omr_mailer;

struct omr_mail {
        const char *server; /* host:port */
        const char *from, *to, *subject;
        const char *body;            /* UTF-8 text; lines end in \n */
        const char *user, *password; /* both or neither */
        int starttls;                /* enum omr_starttls */
        long timeout_ms;
        const char *const *headers; /* extra "Name: value" lines, NULL-terminated */
        /* A complete RFC 5322 message (CRLF line ends) to send as is; then
         * from/to are only the envelope and subject/body/headers unused. */
        const char *message;
};

/* Runs on the loop thread. ok: the server accepted the message. permanent:
 * the server refused it for good (5xx), retrying will not help. */
typedef void (*omr_mail_done_fn)(bool ok, bool permanent, int code, const char *error, void *arg);

struct omr_mailer *omr_mailer_new(struct event_base *base);
/* Copies the mail; 0, or -errno (done not called). */
int omr_mailer_send(struct omr_mailer *m, const struct omr_mail *mail, omr_mail_done_fn done,
                    void *arg);
/* Sends still queued or in progress. */
unsigned omr_mailer_busy(const struct omr_mailer *m);
/* Waits for the message being sent (bounded by its timeout), drops the
 * rest (their done is called with an error). */
void omr_mailer_free(struct omr_mailer *m);

#endif
