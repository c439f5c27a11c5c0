/* imap.c — one poller per mailbox: finds new mail by UID, fetches, parses
 * and ingests it one message at a time, and only after Redis stored it
 * marks it \Seen (or moves it) and advances the cursor.
 *
 * The cursor, "<UIDVALIDITY>:<last UID>" in Redis (omr_cursor_*), is what
 * makes a restart neither skip nor repeat: mail is taken in UID order and
 * the cursor moves past a UID only once its message is stored. A crash
 * between the store and the cursor write fetches that message again, and
 * the dedup on its Message-ID answers "duplicate". \Seen is for people
 * reading the mailbox, not our bookkeeping: libcurl fetches with BODY[],
 * which sets \Seen on the server as it reads, so a message whose store
 * failed gets the flag taken off again (unless it was seen before).
 *
 * A round: SELECT (validity, UIDNEXT; nothing new ends it), UID SEARCH in
 * a window of UIDs after the cursor, UID FETCH of the batch's sizes and
 * flags, then per message: fetch, ingest, mark, cursor. All I/O is libcurl multi on the loop
 * (daemon/fetch.c); one request of a poller is in flight at a time, and
 * a failure ends the round with a backoff that only this mailbox feels.
 * Settings are read from the current configuration at each step, so a
 * reload applies at once. Loop thread only. */
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <glib.h>

#include "email.h"
#include "omniroute/fetch.h"
#include "omniroute/log.h"
#include "omniroute/timefmt.h"

#define POLLER_MAGIC   0x1ea9011u
#define BACKOFF_MAX_MS (5 * 60 * 1000)
#define SEARCH_WINDOW  1000ul

struct item {
        unsigned long uid;
        long long size;
        bool seen; /* before we fetched it */
};

enum step { ST_IDLE, ST_BUSY };

struct imap_poller {
        unsigned magic;
        struct imap_poller *next;
        struct email_conn *ec;
        char *name;
        char *cursor_name; /* "imap:<mailbox>" */
        struct event *timer;
        enum step step;
        bool stopped;
        bool have_cursor;
        unsigned long validity, last_uid;
        /* the round */
        unsigned long window_end; /* the last UID this round searched */
        struct item *items;
        size_t n_items, at;
        bool more; /* a full batch was taken: go on at once */
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
        p->step = ST_IDLE;
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

/* One IMAP request: the mailbox's server + path (NULL: the server's root)
 * and a command (NULL: fetch what the URL names). */
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
        p->step = ST_BUSY;
        int rc = omr_fetch(omr_core_fetcher(p->ec->c->core), &req, on_fetched, call);
        free(url);
        if (rc != 0) {
                free(call);
                p->step = ST_IDLE;
                end_round(p, "cannot start an IMAP request");
        }
}

/* "<folder>;UIDVALIDITY=<v>": libcurl refuses to work on the mailbox when
 * its validity changed under us (the UIDs would mean other messages). */
static char *mailbox_path(const struct imap_poller *p, const struct omr_conf_email_mailbox *mb)
{
        char *s = NULL;
        if (asprintf(&s, "%s;UIDVALIDITY=%lu", mb->imap.folder_path, p->validity) < 0)
                return NULL;
        return s;
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

/* Reads the number after `name ` in an IMAP response line. */
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

/* --- per message ---------------------------------------------------------- */

static void next_message(struct imap_poller *p);

static void on_cursor_set(bool ok, void *arg)
{
        struct imap_poller *p = arg;
        if (!resume(p))
                return;
        if (!ok) {
                /* The message is stored; the next round fetches it again and
                 * ingest answers "duplicate". */
                end_round(p, "cannot save the cursor: Redis unavailable");
                return;
        }
        p->at++;
        next_message(p);
}

static void save_cursor(struct imap_poller *p)
{
        char value[48];
        p->last_uid = p->items[p->at].uid;
        snprintf(value, sizeof(value), "%lu:%lu", p->validity, p->last_uid);
        p->step = ST_BUSY;
        if (omr_cursor_set(p->ec->c->core, p->cursor_name, value, on_cursor_set, p) != 0) {
                p->step = ST_IDLE;
                end_round(p, "cannot save the cursor: Redis unavailable");
        }
}

static void on_marked(struct imap_poller *p, const struct omr_fetch_response *r)
{
        if (r->curl_code != 0) {
                /* Stored all the same: the flag or the move is for people,
                 * the cursor is what counts. Say so, and go on. */
                omr_log(LOG_WARNING, "email", "mailbox=%s uid=%lu stored but not marked: %s",
                        p->name, p->items[p->at].uid, r->error ? r->error : "IMAP error");
        }
        save_cursor(p);
}

static void mark(struct imap_poller *p)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        char *path = mb ? mailbox_path(p, mb) : NULL;
        char cmd[300];
        if (path == NULL) {
                end_round(p, mb ? "out of memory" : NULL);
                return;
        }
        if (mb->imap.after == OMR_IMAP_AFTER_MOVE)
                snprintf(cmd, sizeof(cmd), "UID MOVE %lu \"%s\"", p->items[p->at].uid,
                         mb->imap.move_to);
        else
                snprintf(cmd, sizeof(cmd), "UID STORE %lu +FLAGS.SILENT (\\Seen)",
                         p->items[p->at].uid);
        imap_request(p, mb, path, cmd, 0, on_marked);
        free(path);
}

static void on_unmarked(struct imap_poller *p, const struct omr_fetch_response *r)
{
        (void)r;
        end_round(p, "Redis unavailable: mail left unseen, retried later");
}

/* The store failed after the fetch set \Seen: take it off again. */
static void unmark(struct imap_poller *p)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        char *path = mb && !p->items[p->at].seen ? mailbox_path(p, mb) : NULL;
        if (path == NULL) {
                end_round(p, "Redis unavailable: mail left unseen, retried later");
                return;
        }
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "UID STORE %lu -FLAGS.SILENT (\\Seen)", p->items[p->at].uid);
        imap_request(p, mb, path, cmd, 0, on_unmarked);
        free(path);
}

static void on_ingested(const struct omr_ingest_result *res, void *arg)
{
        struct imap_poller *p = arg;
        if (!resume(p))
                return;
        if (res->status == OMR_INGEST_UNAVAILABLE) {
                unmark(p);
                return;
        }
        omr_log(LOG_DEBUG, "email", "mailbox=%s uid=%lu %s conversation=%s", p->name,
                p->items[p->at].uid, res->status == OMR_INGEST_DUPLICATE ? "duplicate" : "stored",
                res->conversation_id ? res->conversation_id : "");
        mark(p);
}

static void on_message(struct imap_poller *p, const struct omr_fetch_response *r)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        if (mb == NULL) {
                end_round(p, NULL);
                return;
        }
        if (failed(p, r, "fetch"))
                return;
        const struct item *it = &p->items[p->at];
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
                end_round(p, "out of memory");
                return;
        }
        p->step = ST_BUSY;
        omr_ingest(p->ec->c->core, m, on_ingested, p);
}

static void next_message(struct imap_poller *p)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        if (mb == NULL || p->at == p->n_items) {
                end_round(p, NULL);
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
 * FLAGS (\\Seen))" per message. */
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

static void on_jumped(bool ok, void *arg)
{
        struct imap_poller *p = arg;
        if (!resume(p))
                return;
        if (!ok) {
                end_round(p, "cannot save the cursor: Redis unavailable");
                return;
        }
        p->more = true;
        end_round(p, NULL);
}

/* No mail in [cursor+1, upto]: none can appear there any more (UIDs only
 * grow, and upto is below UIDNEXT), so the cursor moves past it. */
static void jump(struct imap_poller *p, unsigned long upto)
{
        char value[48];
        p->last_uid = upto;
        snprintf(value, sizeof(value), "%lu:%lu", p->validity, p->last_uid);
        p->step = ST_BUSY;
        if (omr_cursor_set(p->ec->c->core, p->cursor_name, value, on_jumped, p) != 0) {
                p->step = ST_IDLE;
                end_round(p, "cannot save the cursor: Redis unavailable");
        }
}

/* "* SEARCH 7 8 12": the UIDs in the window, oldest first; the first
 * `batch` of them are this round's. */
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
         * of a command against its 300 KiB header limit, so long listings
         * are read as SEARCH (one line) and only the batch in detail. */
        GString *cmd = g_string_new("UID FETCH ");
        for (size_t i = 0; i < p->n_items; i++)
                g_string_append_printf(cmd, "%s%lu", i ? "," : "", p->items[i].uid);
        g_string_append(cmd, " (UID RFC822.SIZE FLAGS)");
        char *path = mailbox_path(p, mb);
        if (path == NULL) {
                g_string_free(cmd, TRUE);
                end_round(p, "out of memory");
                return;
        }
        imap_request(p, mb, path, cmd->str, 0, on_listed);
        g_string_free(cmd, TRUE);
        free(path);
}

static void on_status(struct imap_poller *p, const struct omr_fetch_response *r)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        if (mb == NULL) {
                end_round(p, NULL);
                return;
        }
        if (failed(p, r, "SELECT"))
                return;
        unsigned long long validity, uidnext;
        if (!number_after(r->body, "UIDVALIDITY", &validity) ||
            !number_after(r->body, "UIDNEXT", &uidnext)) {
                end_round(p, "the server's SELECT answer lacks UIDVALIDITY or UIDNEXT");
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
        char *path = mailbox_path(p, mb);
        char cmd[96];
        snprintf(cmd, sizeof(cmd), "UID SEARCH UID %lu:%lu", p->last_uid + 1, p->window_end);
        if (path == NULL) {
                end_round(p, "out of memory");
                return;
        }
        imap_request(p, mb, path, cmd, 0, on_searched);
        free(path);
}

static void start_round(struct imap_poller *p)
{
        const struct omr_conf_email_mailbox *mb = mailbox(p);
        if (mb == NULL)
                return;
        /* SELECT, not STATUS: a server may answer STATUS on the mailbox
         * the connection has selected from that session's stale view
         * (Dovecot does), and libcurl keeps the connection, and the
         * selection, between requests. */
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "SELECT \"%s\"", mb->imap.folder);
        imap_request(p, mb, NULL, cmd, 0, on_status);
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
        if (p->stopped || p->step != ST_IDLE)
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
        p->step = ST_BUSY;
        if (omr_cursor_get(p->ec->c->core, p->cursor_name, on_cursor, p) != 0) {
                p->step = ST_IDLE;
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
        p->timer = evtimer_new(omr_core_base(ec->c->core), on_timer, p);
        if (p->name == NULL || p->cursor_name == NULL || p->timer == NULL) {
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
        if (p->step == ST_IDLE)
                poller_free(p);
}
