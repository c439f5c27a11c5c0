/* imap.c — one poller per mailbox: finds new mail by UID, reads it without
 * changing it, ingests it, and only after Redis stored it marks it \Seen
 * (or moves it) and advances the cursor.
 *
 * The cursor, "<UIDVALIDITY>:<last UID>" in Redis (omr_cursor_*), is what
 * makes a restart neither skip nor repeat: mail is taken in UID order and
 * the cursor moves past a UID only once its message is stored (and
 * marked). A crash in between fetches that mail again and ingest answers
 * "duplicate" (dedup on the Message-ID).
 *
 * Reading without changing: libcurl fetches a message by URL with BODY[],
 * which sets \Seen on a mailbox opened read-write, and it SELECTs a
 * mailbox itself only when it does not believe it selected already. So a
 * round first lets libcurl select the folder (a NOOP on the folder's URL),
 * then EXAMINEs it (read-only, behind libcurl's back: it still believes
 * the folder selected and does not select again), and fetches there: the
 * server cannot set \Seen. After the batch is stored, a SELECT makes it
 * read-write for one UID STORE (or UID MOVE) of the stored UIDs. Should a
 * connection drop mid-round, libcurl selects read-write again and a fetch
 * may set \Seen early; a store failure then takes the flag off again.
 * Each poller has its own libcurl multi handle, so its own connection:
 * the selection state it relies on is never shared with another mailbox.
 *
 * A round: NOOP (select), EXAMINE (validity, UIDNEXT; nothing new ends
 * it), UID SEARCH in a window after the cursor, UID FETCH of the batch's
 * sizes and flags, per message fetch + ingest, then SELECT + mark, cursor.
 * One request of a poller is in flight at a time; a failure ends the
 * round with a backoff only this mailbox feels. Settings are read from the
 * current configuration at each step, so a reload applies at once. All
 * I/O is libcurl multi on the loop (daemon/fetch.c). Loop thread only. */
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "email.h"
#include "omniroute/fetch.h"
#include "omniroute/log.h"
#include "omniroute/timefmt.h"

#define POLLER_MAGIC   0x1ea9011u
#define BACKOFF_MAX_MS (5 * 60 * 1000)
#define SEARCH_WINDOW  1000ul

struct item {
        unsigned long uid;
        long long size; /* RFC822.SIZE; -1 unknown */
        bool seen;      /* before we fetched it */
        bool stored;
};

struct imap_poller {
        unsigned magic;
        struct imap_poller *next;
        struct email_conn *ec;
        char *name;
        char *cursor_name;           /* "imap:<mailbox>" */
        struct omr_fetcher *fetcher; /* owned: this mailbox's own connection */
        struct event *timer;
        bool busy;     /* a request (IMAP or Redis) is in flight */
        bool fetching; /* ... and it is an IMAP one */
        bool stopped;
        bool have_cursor;
        unsigned long validity, last_uid;
        /* the round */
        unsigned long window_end; /* the last UID this round searched */
        struct item *items;
        size_t n_items, at;
        bool more;             /* mail is left after this round: go on at once */
        char round_error[256]; /* why the batch stopped early ("" when it did not) */
        int failures;
        char last_error[256];
};

const char *imap_poller_name(const struct imap_poller *p)
{
        return p->name;
}

struct imap_poller *imap_poller_next(const struct imap_poller *p)
{
        return p->next;
}

static void poller_free(struct imap_poller *p)
{
        omr_fetcher_free(p->fetcher); /* idle here: nothing calls back */
        if (p->timer)
                event_free(p->timer);
        free(p->items);
        free(p->name);
        free(p->cursor_name);
        p->magic = 0;
        free(p);
}

/* Every completion starts here: a stopped poller frees itself once its
 * last request is back. true: go on. */
static bool resume(struct imap_poller *p)
{
        OMR_MAGIC_CHECK(p, POLLER_MAGIC);
        p->busy = p->fetching = false;
        if (p->stopped) {
                poller_free(p);
                return false;
        }
        return true;
}

static const struct omr_conf_email_mailbox *mailbox(const struct imap_poller *p)
{
        const struct omr_conf_email_mailbox *mb =
                omr_conf_email(omr_core_conf(p->ec->c->core), p->name);
        return mb && mb->imap.server ? mb : NULL;
}

static void schedule(struct imap_poller *p, int64_t ms)
{
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
        evtimer_add(p->timer, &tv);
}

/* Ends the round. why == NULL: it went well. A failure is logged when it
 * differs from the last one, so a mailbox that is down for an hour says so
 * once, and again when it recovers. */
static void end_round(struct imap_poller *p, const char *why)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        free(p->items);
        p->items = NULL;
        p->n_items = p->at = 0;
        if (mb == NULL)
                return; /* removed by a reload: the connector stops us */
        if (why == NULL && p->round_error[0])
                why = p->round_error;
        if (why == NULL) {
                if (p->failures)
                        omr_log(LOG_INFO, "email", "mailbox=%s polling again after %d failures",
                                p->name, p->failures);
                p->failures = 0;
                p->last_error[0] = '\0';
                schedule(p, p->more ? 0 : mb->imap.poll_ms);
                return;
        }
        p->failures++;
        int64_t delay = omr_backoff_ms(p->failures, mb->imap.poll_ms, BACKOFF_MAX_MS);
        if (strcmp(p->last_error, why) != 0) {
                omr_log(LOG_ERR, "email", "mailbox=%s server=%s error=\"%s\" retry_in=%lldms",
                        p->name, mb->imap.server, why, (long long)delay);
                snprintf(p->last_error, sizeof(p->last_error), "%s", why);
        }
        p->round_error[0] = '\0';
        schedule(p, delay);
}

typedef void (*imap_done_fn)(struct imap_poller *p, const struct omr_fetch_response *r);

struct call {
        struct imap_poller *p;
        imap_done_fn done;
};

static void on_fetched(const struct omr_fetch_response *r, void *arg)
{
        struct call *call = arg;
        struct imap_poller *p = call->p;
        imap_done_fn done = call->done;
        free(call);
        if (resume(p))
                done(p, r);
}

/* One IMAP request: the server + path (NULL: the server's root, where
 * libcurl selects nothing) and a command (NULL: fetch what the URL
 * names). */
static void imap_request(struct imap_poller *p, const struct omr_conf_email_mailbox *mb,
                         const char *path, const char *command, size_t max_body, imap_done_fn done)
{
        char *url = NULL;
        struct call *call = calloc(1, sizeof(*call));
        if (call == NULL || asprintf(&url, "%s/%s", mb->imap.server, path ? path : "") < 0) {
                free(call);
                end_round(p, "out of memory");
                return;
        }
        call->p = p;
        call->done = done;
        static const int ssl[] = {CURLUSESSL_NONE, CURLUSESSL_TRY, CURLUSESSL_ALL};
        struct omr_fetch_request req = {
                .url = url,
                .username = mb->imap.user,
                .password = mb->imap.password,
                .imap_command = command,
                .use_ssl = ssl[mb->imap.tls],
                .timeout_ms = (long)mb->imap.timeout_ms,
                .max_body = max_body,
        };
        p->busy = p->fetching = true;
        int rc = omr_fetch(p->fetcher, &req, on_fetched, call);
        free(url);
        if (rc != 0) {
                free(call);
                p->busy = p->fetching = false;
                end_round(p, "cannot start an IMAP request");
        }
}

/* "<folder>;UIDVALIDITY=<v>": libcurl refuses to work on the folder when
 * its validity changed under us (the UIDs would mean other messages). */
static char *folder_path(const struct imap_poller *p, const struct omr_conf_email_mailbox *mb)
{
        char *s = NULL;
        if (asprintf(&s, "%s;UIDVALIDITY=%lu", mb->imap.folder_path, p->validity) < 0)
                return NULL;
        return s;
}

/* A request on the folder's URL (libcurl selects it when needed). */
static void folder_request(struct imap_poller *p, const struct omr_conf_email_mailbox *mb,
                           const char *command, imap_done_fn done)
{
        char *path = folder_path(p, mb);
        if (path == NULL) {
                end_round(p, "out of memory");
                return;
        }
        imap_request(p, mb, path, command, 0, done);
        free(path);
}

static bool failed(struct imap_poller *p, const struct omr_fetch_response *r, const char *what)
{
        if (r->curl_code == 0)
                return false;
        char why[256];
        snprintf(why, sizeof(why), "%s: %s", what, r->error ? r->error : "IMAP request failed");
        end_round(p, why);
        return true;
}

/* Reads the number after `name ` in an IMAP response. */
static bool number_after(const char *s, const char *name, unsigned long long *out)
{
        size_t n = strlen(name);
        for (const char *q = strcasestr(s, name); q; q = strcasestr(q + 1, name)) {
                bool word = q == s || q[-1] == ' ' || q[-1] == '(' || q[-1] == '[';
                if (!word || q[n] != ' ')
                        continue;
                char *end;
                *out = strtoull(q + n + 1, &end, 10);
                return end != q + n + 1;
        }
        return false;
}

/* "1,5,7": the UIDs of the items that satisfy `stored`. */
static GString *uid_set(const struct imap_poller *p)
{
        GString *s = g_string_new(NULL);
        for (size_t i = 0; i < p->n_items; i++)
                if (p->items[i].stored)
                        g_string_append_printf(s, "%s%lu", s->len ? "," : "", p->items[i].uid);
        return s;
}

/* --- after the batch: mark, then the cursor -------------------------------- */

static void on_cursor_written(bool ok, void *arg)
{
        struct imap_poller *p = arg;
        if (!resume(p))
                return;
        /* Not saved: the next round fetches that mail again and ingest
         * answers "duplicate". */
        end_round(p, ok ? NULL : "cannot save the cursor: Redis unavailable");
}

static void write_cursor(struct imap_poller *p)
{
        char value[48];
        snprintf(value, sizeof(value), "%lu:%lu", p->validity, p->last_uid);
        p->busy = true;
        if (omr_cursor_set(p->ec->c->core, p->cursor_name, value, on_cursor_written, p) != 0) {
                p->busy = false;
                end_round(p, "cannot save the cursor: Redis unavailable");
        }
}

/* The stored items are a prefix of the batch (it stops at the first
 * failure): the cursor moves past the last of them. */
static void save_cursor(struct imap_poller *p)
{
        for (size_t i = 0; i < p->n_items && p->items[i].stored; i++)
                p->last_uid = p->items[i].uid;
        write_cursor(p);
}

static void on_marked(struct imap_poller *p, const struct omr_fetch_response *r)
{
        if (r->curl_code != 0) {
                /* Stored all the same: the flag or the move is for people,
                 * the cursor is what counts. Say so, and go on. */
                omr_log(LOG_WARNING, "email", "mailbox=%s stored but not marked: %s", p->name,
                        r->error ? r->error : "IMAP error");
        }
        save_cursor(p);
}

static void on_selected(struct imap_poller *p, const struct omr_fetch_response *r)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        if (mb == NULL) {
                end_round(p, NULL);
                return;
        }
        if (r->curl_code != 0) {
                on_marked(p, r);
                return;
        }
        GString *set = uid_set(p);
        char *cmd = NULL;
        if (mb->imap.after == OMR_IMAP_AFTER_MOVE) {
                if (asprintf(&cmd, "UID MOVE %s \"%s\"", set->str, mb->imap.move_to) < 0)
                        cmd = NULL;
        } else if (asprintf(&cmd, "UID STORE %s +FLAGS.SILENT (\\Seen)", set->str) < 0) {
                cmd = NULL;
        }
        g_string_free(set, TRUE);
        if (cmd == NULL) {
                end_round(p, "out of memory");
                return;
        }
        folder_request(p, mb, cmd, on_marked);
        free(cmd);
}

/* The batch is done (or stopped at a message Redis refused): mark what was
 * stored, read-write for this one command. */
static void finish_batch(struct imap_poller *p)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        if (mb == NULL) {
                end_round(p, NULL);
                return;
        }
        if (p->n_items == 0 || !p->items[0].stored) {
                end_round(p, NULL);
                return;
        }
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "SELECT \"%s\"", mb->imap.folder);
        imap_request(p, mb, NULL, cmd, 0, on_selected);
}

/* --- per message ---------------------------------------------------------- */

static void next_message(struct imap_poller *p);

static void on_unmarked(struct imap_poller *p, const struct omr_fetch_response *r)
{
        (void)r; /* refused on the read-only folder: then nothing was set */
        finish_batch(p);
}

static void on_ingested(const struct omr_ingest_result *res, void *arg)
{
        struct imap_poller *p = arg;
        if (!resume(p))
                return;
        struct item *it = &p->items[p->at];
        if (res->status == OMR_INGEST_UNAVAILABLE) {
                p->more = false;
                snprintf(p->round_error, sizeof(p->round_error), "%s",
                         "Redis unavailable: mail left unseen, retried later");
                const struct omr_conf_email_mailbox *mb = mailbox(p);
                if (mb == NULL || it->seen) {
                        finish_batch(p);
                        return;
                }
                /* Only if libcurl had to select read-write again (a new
                 * connection) did the fetch set \Seen; on the examined
                 * folder this is refused and changes nothing. */
                char cmd[64];
                snprintf(cmd, sizeof(cmd), "UID STORE %lu -FLAGS.SILENT (\\Seen)", it->uid);
                folder_request(p, mb, cmd, on_unmarked);
                return;
        }
        omr_log(LOG_DEBUG, "email", "mailbox=%s uid=%lu %s conversation=%s", p->name, it->uid,
                res->status == OMR_INGEST_DUPLICATE ? "duplicate" : "stored",
                res->conversation_id ? res->conversation_id : "");
        it->stored = true;
        p->at++;
        next_message(p);
}

static void on_message(struct imap_poller *p, const struct omr_fetch_response *r)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        if (mb == NULL) {
                end_round(p, NULL);
                return;
        }
        struct item *it = &p->items[p->at];
        if (r->too_large && it->size <= (long long)mb->max_message_size) {
                /* Bigger than the server said: read its header instead. */
                it->size = (long long)mb->max_message_size + 1;
                next_message(p);
                return;
        }
        if (r->curl_code != 0) {
                /* What was stored before it is marked; the rest waits. */
                snprintf(p->round_error, sizeof(p->round_error), "fetch uid %lu: %s", it->uid,
                         r->error ? r->error : "IMAP request failed");
                p->more = false;
                p->n_items = p->at;
                finish_batch(p);
                return;
        }
        struct omr_email *e = omr_email_parse(r->body, r->body_len, &omr_email_read_limits);
        if (e && it->size > (long long)mb->max_message_size) {
                size_t n = strlen(e->warnings);
                snprintf(e->warnings + n, sizeof(e->warnings) - n,
                         "%smessage of %lld bytes is over max_message_size: only its header "
                         "was read",
                         n ? "; " : "", it->size);
        }
        char fallback[64], *url_base = NULL;
        snprintf(fallback, sizeof(fallback), "uid:%lu:%lu", p->validity, it->uid);
        /* Attachments stay on the server; the URL names the part. A moved
         * message gets a new UID, so only mail that stays is referenced. */
        if (mb->imap.after == OMR_IMAP_AFTER_SEEN &&
            asprintf(&url_base, "%s/%s;UIDVALIDITY=%lu/;UID=%lu", mb->imap.server,
                     mb->imap.folder_path, p->validity, it->uid) < 0)
                url_base = NULL;
        struct omr_message *m = e ? email_message(mb, e, fallback, url_base) : NULL;
        free(url_base);
        if (e && e->warnings[0])
                omr_log(LOG_WARNING, "email",
                        "mailbox=%s uid=%lu message-id=%s read with warnings: %s", p->name, it->uid,
                        e->message_id ? e->message_id : "-", e->warnings);
        omr_email_free(e);
        if (m == NULL) {
                p->n_items = p->at;
                snprintf(p->round_error, sizeof(p->round_error), "out of memory");
                finish_batch(p);
                return;
        }
        p->busy = true;
        omr_ingest(p->ec->c->core, m, on_ingested, p);
}

static void next_message(struct imap_poller *p)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        if (mb == NULL) {
                end_round(p, NULL);
                return;
        }
        if (p->at == p->n_items) {
                finish_batch(p);
                return;
        }
        const struct item *it = &p->items[p->at];
        char *path = NULL;
        /* Too big to read whole: its header still makes a message, with a
         * warning, so nothing is dropped in silence. */
        bool whole = it->size <= (long long)mb->max_message_size;
        if (asprintf(&path, "%s;UIDVALIDITY=%lu/;UID=%lu%s", mb->imap.folder_path, p->validity,
                     it->uid, whole ? "" : ";SECTION=HEADER") < 0) {
                end_round(p, "out of memory");
                return;
        }
        imap_request(p, mb, path, NULL, whole ? mb->max_message_size + 65536 : 1u << 20,
                     on_message);
        free(path);
}

/* --- the round -------------------------------------------------------------- */

static int by_uid(const void *a, const void *b)
{
        const struct item *x = a, *y = b;
        return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* The sizes and flags of the batch: "* 3 FETCH (UID 7 RFC822.SIZE 1234
 * FLAGS (\Seen))" per message. */
static void on_listed(struct imap_poller *p, const struct omr_fetch_response *r)
{
        if (failed(p, r, "list new mail"))
                return;
        for (const char *line = r->body; line && *line;) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t)(eol - line) : strlen(line);
                char buf[512];
                snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) ? len : sizeof(buf) - 1),
                         line);
                unsigned long long uid, size;
                if (strncmp(buf, "* ", 2) == 0 && number_after(buf, "UID", &uid)) {
                        for (size_t i = 0; i < p->n_items; i++) {
                                if (p->items[i].uid != uid)
                                        continue;
                                if (number_after(buf, "RFC822.SIZE", &size))
                                        p->items[i].size = (long long)size;
                                p->items[i].seen = strcasestr(buf, "\\Seen") != NULL;
                        }
                }
                line = eol ? eol + 1 : NULL;
        }
        p->at = 0;
        next_message(p);
}

/* No mail in [cursor+1, upto]: none can appear there any more (UIDs only
 * grow, and upto is below UIDNEXT), so the cursor moves past it. */
static void jump(struct imap_poller *p, unsigned long upto)
{
        p->last_uid = upto;
        write_cursor(p);
}

/* "* SEARCH 7 8 12": the UIDs in the window; the oldest `batch` of them
 * are this round's. */
static void on_searched(struct imap_poller *p, const struct omr_fetch_response *r)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        if (mb == NULL) {
                end_round(p, NULL);
                return;
        }
        if (failed(p, r, "search new mail"))
                return;
        /* The window bounds the answer; SEARCH need not be sorted. */
        size_t cap = SEARCH_WINDOW;
        p->items = calloc(cap, sizeof(*p->items));
        if (p->items == NULL) {
                end_round(p, "out of memory");
                return;
        }
        p->n_items = 0;
        for (const char *line = r->body; line && *line;) {
                const char *eol = strchr(line, '\n');
                if (strncasecmp(line, "* SEARCH", 8) == 0) {
                        const char *q = line + 8;
                        for (;;) {
                                char *end;
                                unsigned long long uid = strtoull(q, &end, 10);
                                if (end == q)
                                        break;
                                q = end;
                                if (uid <= p->last_uid || uid > p->window_end)
                                        continue;
                                if (p->n_items == cap)
                                        break;
                                p->items[p->n_items++] =
                                        (struct item){.uid = (unsigned long)uid, .size = -1};
                        }
                }
                line = eol ? eol + 1 : NULL;
        }
        if (p->n_items == 0) {
                if (p->window_end > p->last_uid)
                        jump(p, p->window_end);
                else
                        end_round(p, NULL);
                return;
        }
        qsort(p->items, p->n_items, sizeof(*p->items), by_uid);
        if (p->n_items > (size_t)mb->imap.batch) {
                p->n_items = (size_t)mb->imap.batch;
                p->more = true;
        }
        /* One short FETCH for the batch: libcurl counts every response line
         * of a command against its 300 KiB header limit, quadratically in
         * their number, so long listings are read as SEARCH (one line) and
         * only the batch (at most 100) in detail. */
        GString *cmd = g_string_new("UID FETCH ");
        for (size_t i = 0; i < p->n_items; i++)
                g_string_append_printf(cmd, "%s%lu", i ? "," : "", p->items[i].uid);
        g_string_append(cmd, " (UID RFC822.SIZE FLAGS)");
        folder_request(p, mb, cmd->str, on_listed);
        g_string_free(cmd, TRUE);
}

static void on_examined(struct imap_poller *p, const struct omr_fetch_response *r)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        if (mb == NULL) {
                end_round(p, NULL);
                return;
        }
        if (failed(p, r, "EXAMINE"))
                return;
        unsigned long long validity, uidnext;
        if (!number_after(r->body, "UIDVALIDITY", &validity) ||
            !number_after(r->body, "UIDNEXT", &uidnext)) {
                end_round(p, "the server's EXAMINE answer lacks UIDVALIDITY or UIDNEXT");
                return;
        }
        if (validity != p->validity) {
                /* A new validity means every UID now names other mail:
                 * read the folder from the start; dedup on Message-ID
                 * keeps what was stored before from being stored twice. */
                if (p->validity)
                        omr_log(LOG_WARNING, "email",
                                "mailbox=%s UIDVALIDITY changed %lu -> %llu: reading the folder "
                                "again (duplicates are dropped by Message-ID)",
                                p->name, p->validity, validity);
                p->validity = (unsigned long)validity;
                p->last_uid = 0;
        }
        p->more = false;
        if (uidnext <= p->last_uid + 1) {
                end_round(p, NULL); /* nothing new */
                return;
        }
        /* A window of UIDs keeps the SEARCH answer (one line) short
         * however much mail waits. */
        p->window_end = p->last_uid + SEARCH_WINDOW < uidnext - 1 ? p->last_uid + SEARCH_WINDOW
                                                                  : (unsigned long)(uidnext - 1);
        p->more = p->window_end < uidnext - 1;
        char cmd[96];
        snprintf(cmd, sizeof(cmd), "UID SEARCH UID %lu:%lu", p->last_uid + 1, p->window_end);
        folder_request(p, mb, cmd, on_searched);
}

/* libcurl now believes the folder selected on this connection: make it
 * read-only behind its back. EXAMINE, not STATUS, also for the numbers: a
 * server may answer STATUS on the selected mailbox from a stale view
 * (Dovecot does). */
static void on_noop(struct imap_poller *p, const struct omr_fetch_response *r)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        if (mb == NULL) {
                end_round(p, NULL);
                return;
        }
        if (failed(p, r, "select"))
                return;
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "EXAMINE \"%s\"", mb->imap.folder);
        imap_request(p, mb, NULL, cmd, 0, on_examined);
}

static void start_round(struct imap_poller *p)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        if (mb == NULL)
                return;
        /* No UIDVALIDITY in this URL: it is what the round finds out. */
        imap_request(p, mb, mb->imap.folder_path, "NOOP", 0, on_noop);
}

static void on_cursor(bool ok, const char *value, void *arg)
{
        struct imap_poller *p = arg;
        if (!resume(p))
                return;
        if (!ok) {
                end_round(p, "cannot read the cursor: Redis unavailable");
                return;
        }
        unsigned long v = 0, uid = 0;
        if (value && sscanf(value, "%lu:%lu", &v, &uid) != 2)
                omr_log(LOG_WARNING, "email", "mailbox=%s ignoring a malformed cursor \"%s\"",
                        p->name, value);
        else if (value) {
                p->validity = v;
                p->last_uid = uid;
        }
        p->have_cursor = true;
        start_round(p);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
        struct imap_poller *p = arg;
        (void)fd;
        (void)what;
        OMR_MAGIC_CHECK(p, POLLER_MAGIC);
        if (p->stopped || p->busy)
                return;
        if (p->have_cursor) {
                start_round(p);
                return;
        }
        /* Once per start: where the last run got to — as soon as Redis is
         * there (at start it connects alongside us). */
        if (!omr_core_store_ready(p->ec->c->core) && p->failures == 0) {
                schedule(p, 200);
                return;
        }
        p->busy = true;
        if (omr_cursor_get(p->ec->c->core, p->cursor_name, on_cursor, p) != 0) {
                p->busy = false;
                end_round(p, "cannot read the cursor: Redis unavailable");
        }
}

struct imap_poller *imap_poller_new(struct email_conn *ec, const char *name)
{
        struct imap_poller *p = calloc(1, sizeof(*p));
        if (p == NULL)
                return NULL;
        p->magic = POLLER_MAGIC;
        p->ec = ec;
        p->name = strdup(name);
        if (asprintf(&p->cursor_name, "imap:%s", name) < 0)
                p->cursor_name = NULL;
        struct event_base *base = omr_core_base(ec->c->core);
        p->fetcher = omr_fetcher_new(base);
        p->timer = evtimer_new(base, on_timer, p);
        if (p->name == NULL || p->cursor_name == NULL || p->fetcher == NULL || p->timer == NULL) {
                poller_free(p);
                return NULL;
        }
        p->next = ec->pollers;
        ec->pollers = p;
        schedule(p, 0);
        omr_log(LOG_INFO, "email", "mailbox=%s polling", name);
        return p;
}

void imap_poller_stop(struct imap_poller *p)
{
        OMR_MAGIC_CHECK(p, POLLER_MAGIC);
        for (struct imap_poller **pp = &p->ec->pollers; *pp; pp = &(*pp)->next) {
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        }
        p->next = NULL;
        p->stopped = true;
        evtimer_del(p->timer);
        if (!p->busy) {
                poller_free(p);
        } else if (p->fetching) {
                /* Cancel the IMAP request: its callback (with an error)
                 * frees the poller. */
                struct omr_fetcher *f = p->fetcher;
                p->fetcher = NULL;
                omr_fetcher_free(f);
        }
        /* A Redis request in flight: its callback frees the poller. */
}
