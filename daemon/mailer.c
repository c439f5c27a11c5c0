/* mailer.c — see mailer.h. One worker thread, a FIFO of jobs under a
 * mutex; each finished job is written (as a pointer) to a pipe that the
 * loop reads. A job is owned by the queue, then by the worker, then by the
 * pipe, then by the loop callback, which frees it. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
/* auth-client.h first: libesmtp.h declares its auth API only after it. */
#include <auth-client.h>
#include <libesmtp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailer.h"
#include "omniroute/log.h"

struct job {
        char *server, *from, *to, *user, *password, *message;
        int starttls;
        long timeout_ms;
        omr_mail_done_fn done;
        void *arg;
        /* result */
        bool ok, permanent;
        int code;
        char error[256];
        struct job *next;
};

struct omr_mailer {
        struct event *ev;
        int pipe_rd, pipe_wr;
        pthread_t thread;
        bool thread_started;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        struct job *head, *tail;
        bool quit;
        unsigned busy;
};

static void job_free(struct job *j)
{
        free(j->server);
        free(j->from);
        free(j->to);
        free(j->user);
        if (j->password) {
                explicit_bzero(j->password, strlen(j->password));
                free(j->password);
        }
        free(j->message);
        free(j);
}

/* libesmtp asks for credentials through this callback. */
static int interact(auth_client_request_t req, char **result, int fields, void *arg)
{
        struct job *j = arg;
        for (int i = 0; i < fields; i++) {
                if (req[i].flags & AUTH_USER)
                        result[i] = j->user;
                else if (req[i].flags & AUTH_PASS)
                        result[i] = j->password;
                else
                        return 0;
        }
        return 1;
}

/* Blocking: worker thread only. */
static void deliver(struct job *j)
{
        smtp_session_t s = smtp_create_session();
        smtp_message_t m = s ? smtp_add_message(s) : NULL;
        auth_context_t auth = NULL;
        if (m == NULL) {
                snprintf(j->error, sizeof(j->error), "cannot create an SMTP session");
                goto out;
        }
        long secs = (j->timeout_ms + 999) / 1000;
        for (int w = Timeout_GREETING; w <= Timeout_DATA2; w++)
                smtp_set_timeout(s, w | Timeout_OVERRIDE_RFC2822_MINIMUM, secs);
        smtp_set_server(s, j->server);
        smtp_starttls_enable(s, (enum starttls_option)j->starttls);
        if (j->user) {
                auth = auth_create_context();
                auth_set_mechanism_flags(auth, AUTH_PLUGIN_PLAIN, 0);
                auth_set_interact_cb(auth, interact, j);
                smtp_auth_set_context(s, auth);
        }
        smtp_set_reverse_path(m, j->from);
        smtp_recipient_t rcpt = smtp_add_recipient(m, j->to);
        smtp_set_message_str(m, j->message);
        /* A refused recipient ends the transaction before DATA: its answer
         * (451 greylisting, 550 no such user) is the one that counts. */
        smtp_option_require_all_recipients(s, 1);
        if (!smtp_start_session(s)) {
                char buf[128];
                snprintf(j->error, sizeof(j->error), "SMTP session failed: %s",
                         smtp_strerror(smtp_errno(), buf, sizeof(buf)));
                goto out;
        }
        const smtp_status_t *st = rcpt ? smtp_recipient_status(rcpt) : NULL;
        if (st == NULL || st->code < 200 || st->code >= 300)
                st = st && st->code ? st : smtp_message_transfer_status(m);
        else
                st = smtp_message_transfer_status(m);
        j->code = st ? st->code : 0;
        if (st && st->code >= 200 && st->code < 300) {
                j->ok = true;
        } else {
                j->permanent = st && st->code >= 500;
                snprintf(j->error, sizeof(j->error), "server answered %d %s", j->code,
                         st && st->text ? st->text : "");
                /* The server's text ends in CRLF: keep the log line whole. */
                j->error[strcspn(j->error, "\r\n")] = '\0';
        }
out:
        if (s)
                smtp_destroy_session(s);
        if (auth)
                auth_destroy_context(auth);
}

static void *worker(void *arg)
{
        struct omr_mailer *mq = arg;
        for (;;) {
                pthread_mutex_lock(&mq->mu);
                while (mq->head == NULL && !mq->quit)
                        pthread_cond_wait(&mq->cv, &mq->mu);
                struct job *j = mq->head;
                if (j == NULL) { /* quit with nothing left */
                        pthread_mutex_unlock(&mq->mu);
                        return NULL;
                }
                mq->head = j->next;
                if (mq->head == NULL)
                        mq->tail = NULL;
                bool quit = mq->quit;
                pthread_mutex_unlock(&mq->mu);
                if (quit)
                        snprintf(j->error, sizeof(j->error), "shutting down");
                else
                        deliver(j);
                /* Pointer-sized writes to a pipe are atomic. */
                if (write(mq->pipe_wr, &j, sizeof(j)) != (ssize_t)sizeof(j))
                        job_free(j); /* cannot happen while the loop reads; never leak */
        }
}

static void on_results(evutil_socket_t fd, short what, void *arg)
{
        struct omr_mailer *mq = arg;
        struct job *j;
        (void)what;
        while (read(fd, &j, sizeof(j)) == (ssize_t)sizeof(j)) {
                mq->busy--;
                j->done(j->ok, j->permanent, j->code, j->error, j->arg);
                job_free(j);
        }
}

static pthread_once_t auth_once = PTHREAD_ONCE_INIT;

struct omr_mailer *omr_mailer_new(struct event_base *base)
{
        pthread_once(&auth_once, auth_client_init); /* SASL plugins, process-wide */
        struct omr_mailer *mq = calloc(1, sizeof(*mq));
        int fds[2];
        if (mq == NULL || pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
                free(mq);
                return NULL;
        }
        mq->pipe_rd = fds[0];
        mq->pipe_wr = fds[1];
        /* The worker's writes block (never drop a result); reads do not. */
        fcntl(mq->pipe_wr, F_SETFL, fcntl(mq->pipe_wr, F_GETFL) & ~O_NONBLOCK);
        pthread_mutex_init(&mq->mu, NULL);
        pthread_cond_init(&mq->cv, NULL);
        mq->ev = event_new(base, mq->pipe_rd, EV_READ | EV_PERSIST, on_results, mq);
        if (mq->ev == NULL || event_add(mq->ev, NULL) != 0 ||
            pthread_create(&mq->thread, NULL, worker, mq) != 0) {
                omr_mailer_free(mq);
                return NULL;
        }
        mq->thread_started = true;
        return mq;
}

/* RFC 5322 message text: our headers, a blank line, the body with CRLF
 * line ends (libesmtp adds Date and Message-Id when missing). */
static char *compose(const struct omr_mail *mail)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (f == NULL)
                return NULL;
        fprintf(f,
                "From: %s\r\nTo: %s\r\nSubject: %s\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=UTF-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n",
                mail->from, mail->to, mail->subject);
        for (const char *const *h = mail->headers; h && *h; h++)
                fprintf(f, "%s\r\n", *h);
        fputs("\r\n", f);
        for (const char *p = mail->body; *p; p++) {
                if (*p == '\n')
                        fputc('\r', f);
                if (*p != '\r')
                        fputc(*p, f);
        }
        if (len == 0 || mail->body[0] == '\0' || mail->body[strlen(mail->body) - 1] != '\n')
                fputs("\r\n", f);
        fclose(f);
        return buf;
}

int omr_mailer_send(struct omr_mailer *mq, const struct omr_mail *mail, omr_mail_done_fn done,
                    void *arg)
{
        /* Header injection: none of these may break a line. */
        const char *fields[] = {mail->from, mail->to, mail->message ? "" : mail->subject};
        for (size_t i = 0; i < 3; i++)
                if (fields[i] == NULL || strpbrk(fields[i], "\r\n"))
                        return -EINVAL;
        struct job *j = calloc(1, sizeof(*j));
        if (j == NULL)
                return -ENOMEM;
        j->server = strdup(mail->server);
        j->from = strdup(mail->from);
        j->to = strdup(mail->to);
        j->user = mail->user ? strdup(mail->user) : NULL;
        j->password = mail->password ? strdup(mail->password) : NULL;
        j->message = mail->message ? strdup(mail->message) : compose(mail);
        j->starttls = mail->starttls;
        j->timeout_ms = mail->timeout_ms;
        j->done = done;
        j->arg = arg;
        if (!j->server || !j->from || !j->to || !j->message || (mail->user && !j->user) ||
            (mail->password && !j->password)) {
                job_free(j);
                return -ENOMEM;
        }
        pthread_mutex_lock(&mq->mu);
        if (mq->tail)
                mq->tail->next = j;
        else
                mq->head = j;
        mq->tail = j;
        mq->busy++;
        pthread_cond_signal(&mq->cv);
        pthread_mutex_unlock(&mq->mu);
        return 0;
}

unsigned omr_mailer_busy(const struct omr_mailer *mq)
{
        return mq ? mq->busy : 0;
}

void omr_mailer_free(struct omr_mailer *mq)
{
        if (mq == NULL)
                return;
        if (mq->thread_started) {
                pthread_mutex_lock(&mq->mu);
                mq->quit = true;
                pthread_cond_signal(&mq->cv);
                pthread_mutex_unlock(&mq->mu);
                /* The worker answers queued jobs with "shutting down" (no
                 * SMTP) and exits; the pipe holds their results. Closing
                 * the write end below lets the drain loop end. */
                pthread_join(mq->thread, NULL);
        }
        close(mq->pipe_wr);
        if (mq->ev) {
                fcntl(mq->pipe_rd, F_SETFL, fcntl(mq->pipe_rd, F_GETFL) | O_NONBLOCK);
                on_results(mq->pipe_rd, EV_READ, mq);
                event_free(mq->ev);
        }
        close(mq->pipe_rd);
        pthread_mutex_destroy(&mq->mu);
        pthread_cond_destroy(&mq->cv);
        free(mq);
}
