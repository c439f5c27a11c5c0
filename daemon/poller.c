/* poller.c — the polling engine (poller.h). One request at a time per
 * account, as a chain of callbacks:
 *
 *   tick ─▶ "go" (poll_lease.lua: hold the lease? interval and rate limit
 *   passed?) ─▶ GET ─▶ parse ─▶ omr_ingest each message in order ─▶
 *   "commit" (cursor + not-before, only while still the holder) ─▶ tick
 *
 * Every decision that two daemons could make at once is made inside the
 * script, so a daemon that lost its lease can neither poll early nor move
 * the cursor. The lease key lives 3/4 of the configured lease and is
 * renewed every quarter, so a holder that dies is replaced within the
 * lease. Loop thread only. */
#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core_priv.h"
#include "id.h"
#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/poller.h"
#include "omniroute/timefmt.h"
#include "store.h"

extern const char omr_poll_lease_lua[];

#define POLLER_MAGIC         0x504f4c4cu
#define BACKOFF_MIN_MS       1000
#define BACKOFF_MAX_MS       300000
#define REDIS_BACKOFF_MAX_MS 5000
/* The longest wait a provider's reset or Retry-After may impose: beyond
 * it the value is more likely wrong than meant. */
#define MAX_WAIT_MS 3600000
/* Provider errors in a row after which the holder lets another daemon
 * try (its network may be the problem), sitting out one lease. */
#define GIVE_UP_AFTER 3
/* Asking again exactly at the provider's reset instant races its clock. */
#define RESET_MARGIN_MS 250
#define MAX_HEADERS     8

struct omr_poller {
        unsigned magic;
        struct omr_core *core;
        struct omr_poller *next; /* core->pollers */
        char *name;
        const struct omr_poll_source_ops *ops;
        void *ctx;
        char *headers[MAX_HEADERS + 1];
        int64_t interval_ms, lease_ms, timeout_ms;
        char *lease_key, *cursor_key, *state_key;
        struct event *tick, *renew;
        int busy;              /* callbacks still to come: fetch, store commands, ingests */
        bool freed;            /* omr_poller_free called: drop everything, free when idle */
        bool quiescing;        /* shutdown: finish the page in flight, release, stop */
        bool holder;           /* we hold the lease (as far as we know) */
        bool disabled;         /* 401/403: stopped until reload */
        bool round_start;      /* the next request starts a round: it waits for the interval */
        bool start_failed;     /* the round's first request failed: its retry restarts the clock */
        bool fresh;            /* the connector drops what it kept of the round */
        bool failing;          /* an error streak was logged */
        bool limit_only;       /* the commit in flight only records a 429's wait */
        int failures;          /* consecutive, for the backoff */
        char *cursor;          /* as the last "go" returned it */
        int64_t not_before_ms; /* wall clock: the provider's rate limit says not before */
        int64_t sit_out_until; /* monotonic: gave the lease up after failures */
        struct omr_poll_page page;
        size_t next_msg;
};

static char owner_id[128];

static const char *owner(void)
{
        if (owner_id[0] == '\0') {
                char host[64] = "host", rnd[OMR_ID_LEN + 1];
                gethostname(host, sizeof(host) - 1);
                omr_id_new(rnd);
                snprintf(owner_id, sizeof(owner_id), "%s:%ld:%s", host, (long)getpid(), rnd);
        }
        return owner_id;
}

/* 0 .. n-1, different in every daemon (rand() is seeded with the second
 * the process started: daemons started together would agree). */
static unsigned jitter(unsigned n)
{
        unsigned r = 0;
        if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
                r = (unsigned)getpid() * 2654435761u + (unsigned)omr_mono_ms();
        return n ? r % n : 0;
}

static struct omr_poller *checked(void *arg)
{
        struct omr_poller *p = arg;
        if (p == NULL || p->magic != POLLER_MAGIC)
                abort();
        return p;
}

static void page_clear(struct omr_poll_page *pg, size_t from)
{
        for (size_t i = from; i < pg->n; i++)
                omr_message_free(pg->msgs[i]);
        free(pg->msgs);
        free(pg->cursor);
        memset(pg, 0, sizeof(*pg));
}

static void destroy(struct omr_poller *p)
{
        struct omr_poller **pp = &p->core->pollers;
        while (*pp && *pp != p)
                pp = &(*pp)->next;
        if (*pp)
                *pp = p->next;
        if (p->tick)
                event_free(p->tick);
        if (p->renew)
                event_free(p->renew);
        page_clear(&p->page, p->next_msg);
        for (size_t i = 0; p->headers[i]; i++) {
                explicit_bzero(p->headers[i], strlen(p->headers[i]));
                free(p->headers[i]);
        }
        free(p->name);
        free(p->lease_key);
        free(p->cursor_key);
        free(p->state_key);
        free(p->cursor);
        p->magic = 0;
        free(p);
}

/* Called at the top of every callback: false when the poller was freed
 * (and is now freed for good if this was the last callback). */
static void schedule(struct omr_poller *p, int64_t delay_ms);

static bool alive(struct omr_poller *p)
{
        p->busy--;
        if (!p->freed) {
                /* Shutdown: once the chain in flight has ended, tick
                 * releases the lease. */
                if (p->quiescing)
                        schedule(p, 0);
                return true;
        }
        if (p->busy == 0)
                destroy(p);
        return false;
}

static void schedule(struct omr_poller *p, int64_t delay_ms)
{
        if (delay_ms < 0)
                delay_ms = 0;
        struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
        evtimer_add(p->tick, &tv);
}

static int lease_ttl_ms(const struct omr_poller *p)
{
        return (int)(p->lease_ms * 3 / 4);
}

/* --- the script --------------------------------------------------------- */

static struct omr_script lease_script;

static int run_script(struct omr_poller *p, omr_store_reply_fn cb, int nargs, const char **args)
{
        if (p->core->store == NULL)
                return -ENOTCONN;
        if (lease_script.sha[0] == '\0')
                omr_script_init(&lease_script, omr_poll_lease_lua);
        const char *argv[3 + 8];
        argv[0] = p->lease_key;
        argv[1] = p->cursor_key;
        argv[2] = p->state_key;
        for (int i = 0; i < nargs && i < 8; i++)
                argv[3 + i] = args[i];
        int rc = omr_store_eval(p->core->store, &lease_script, cb, p, 3, nargs, argv, NULL);
        if (rc == 0)
                p->busy++;
        return rc;
}

static void set_holder(struct omr_poller *p, bool holder)
{
        if (holder == p->holder)
                return;
        p->holder = holder;
        if (holder) {
                omr_log(LOG_INFO, "poll", "poll lease taken source=%s owner=%s", p->name, owner());
                struct timeval tv = {(time_t)(p->lease_ms / 4 / 1000),
                                     (suseconds_t)(p->lease_ms / 4 % 1000) * 1000};
                event_add(p->renew, &tv);
        } else {
                omr_log(LOG_INFO, "poll", "poll lease lost source=%s (another daemon polls it)",
                        p->name);
                event_del(p->renew);
        }
}

/* --- errors and outcomes ------------------------------------------------ */

static void count(struct omr_poller *p, const char *outcome)
{
        omr_metrics_inc(omr_core_metrics(p->core), OMR_M_POLLS, p->name, outcome);
}

static void release(struct omr_poller *p);

/* A failure that may pass: logged once per streak, retried with backoff. */
static void failed(struct omr_poller *p, const char *outcome, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void failed(struct omr_poller *p, const char *outcome, const char *fmt, ...)
{
        char why[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        count(p, outcome);
        p->failures++;
        /* Redis comes back by itself (store.c reconnects): polling resumes
         * within seconds of it, however long it was away. */
        int64_t delay = omr_backoff_ms(p->failures, BACKOFF_MIN_MS,
                                       strcmp(outcome, "unavailable") == 0 ? REDIS_BACKOFF_MAX_MS
                                                                           : BACKOFF_MAX_MS);
        /* A failed answer may still have said the limit is used up. */
        int64_t hold = p->not_before_ms - omr_now_ms();
        if (hold > delay)
                delay = hold;
        if (!p->failing)
                omr_log(LOG_WARNING, "poll", "poll failed (%s), retrying with backoff source=%s",
                        why, p->name);
        else
                omr_log(LOG_DEBUG, "poll", "poll failed again (%s) source=%s next_in_ms=%lld", why,
                        p->name, (long long)delay);
        p->failing = true;
        if (p->quiescing)
                return;
        if (strcmp(outcome, "error") == 0 && p->holder && p->failures >= GIVE_UP_AFTER) {
                omr_log(LOG_INFO, "poll",
                        "poll lease given up after %d failures in a row, another daemon may try "
                        "source=%s",
                        p->failures, p->name);
                release(p); /* another daemon takes it over at its next check */
                p->round_start = true;
                p->start_failed = false;
                p->sit_out_until = omr_mono_ms() + p->lease_ms;
        }
        schedule(p, delay);
}

static void on_released(const redisReply *r, const char *error, void *arg)
{
        (void)r;
        (void)error;
        alive(checked(arg));
}

static void release(struct omr_poller *p)
{
        event_del(p->tick);
        event_del(p->renew);
        if (!p->holder)
                return;
        char ttl[24];
        snprintf(ttl, sizeof(ttl), "%d", lease_ttl_ms(p));
        const char *args[] = {"release", owner(), ttl};
        run_script(p, on_released, 3, args);
        p->holder = false;
}

static void disable(struct omr_poller *p, const struct omr_fetch_response *r)
{
        count(p, "disabled");
        omr_log(LOG_ERR, "poll",
                "poll disabled: the provider answered HTTP %ld (%.200s); the token is revoked "
                "or lacks a scope. Fix the token file and reload (SIGHUP); other accounts go "
                "on. source=%s",
                r->status, r->body_len ? r->body : "no body", p->name);
        p->disabled = true;
        release(p);
}

/* --- the chain ---------------------------------------------------------- */

static void tick(evutil_socket_t fd, short what, void *arg);
static void store_next(struct omr_poller *p);

static void on_committed(const redisReply *r, const char *error, void *arg)
{
        struct omr_poller *p = checked(arg);
        if (!alive(p))
                return;
        bool more = p->page.more, limit_only = p->limit_only;
        p->limit_only = false;
        page_clear(&p->page, p->next_msg);
        if (error || r == NULL || r->type == REDIS_REPLY_ERROR) {
                /* The messages are stored; only the cursor did not move: the
                 * retry asks for them again and dedup drops them. */
                p->fresh = true;
                failed(p, "unavailable", "cursor not saved: %s",
                       error ? error : (r ? r->str : "no reply"));
                return;
        }
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
                set_holder(p, false);
                p->round_start = true;
                p->start_failed = false;
                if (!p->quiescing)
                        schedule(p, 0);
                return;
        }
        if (p->quiescing) {
                release(p);
                return;
        }
        if (limit_only) { /* a 429: the round goes on after the wait */
                schedule(p, 0);
                return;
        }
        count(p, "ok");
        p->start_failed = false;
        if (p->failing)
                omr_log(LOG_INFO, "poll", "poll recovered source=%s", p->name);
        p->failing = false;
        p->failures = 0;
        p->round_start = !more;
        /* The script holds the next request back until the interval (or a
         * rate limit) has passed; asking it now is what keeps the cadence
         * shared between daemons. */
        schedule(p, 0);
}

static void commit(struct omr_poller *p)
{
        char ttl[24], nb[24];
        snprintf(ttl, sizeof(ttl), "%d", lease_ttl_ms(p));
        /* Relative: the script adds it to Redis' clock, the one that
         * every daemon's "go" is measured by. */
        int64_t wait = p->not_before_ms - omr_now_ms();
        snprintf(nb, sizeof(nb), "%lld", (long long)(wait > 0 ? wait : 0));
        const char *args[] = {"commit", owner(), ttl, p->page.cursor ? p->page.cursor : "", nb};
        if (run_script(p, on_committed, 5, args) != 0) {
                page_clear(&p->page, p->next_msg);
                p->limit_only = false;
                p->fresh = true;
                failed(p, "unavailable", "Redis is not connected");
        }
}

static void on_ingested(const struct omr_ingest_result *res, void *arg)
{
        struct omr_poller *p = checked(arg);
        if (!alive(p))
                return;
        if (res->status == OMR_INGEST_UNAVAILABLE) {
                page_clear(&p->page, p->next_msg);
                /* The round's progress is gone with the page (X collects a
                 * round's pages first): start it again after the backoff. */
                p->fresh = true;
                failed(p, "unavailable", "not stored: %s", res->detail ? res->detail : "Redis");
                if (p->quiescing)
                        release(p);
                return;
        }
        store_next(p);
}

static void store_next(struct omr_poller *p)
{
        if (p->next_msg >= p->page.n) {
                commit(p);
                return;
        }
        struct omr_message *m = p->page.msgs[p->next_msg];
        p->page.msgs[p->next_msg++] = NULL;
        p->busy++;
        omr_ingest(p->core, m, on_ingested, p);
}

/* "X-RateLimit-Reset": Mastodon sends an ISO 8601 time, X epoch seconds. */
static int64_t parse_reset(const char *v)
{
        if (v == NULL)
                return 0;
        while (*v == ' ')
                v++;
        char *end;
        long long n = strtoll(v, &end, 10);
        int64_t ms = 0;
        if (end != v && (*end == '\0' || *end == ' ' || *end == '\r')) {
                if (n <= 0 || n > 100000000000000LL)
                        return 0;
                ms = n > 100000000000LL ? n : n * 1000; /* ms or s since the epoch */
        } else if (omr_time_parse(v, &ms) != 0) {
                return 0;
        }
        /* A reset hours away is a provider's mistake, not a plan: never
         * stop an account for longer than MAX_WAIT_MS on its word. */
        int64_t limit = omr_now_ms() + MAX_WAIT_MS;
        return ms > limit ? limit : ms;
}

static const char *header2(const struct omr_fetch_response *r, const char *a, const char *b)
{
        const char *v = omr_fetch_header(r, a);
        return v ? v : omr_fetch_header(r, b);
}

/* Reads the advertised limit: when nothing is left, nothing is asked
 * before the reset. */
static void read_rate_limit(struct omr_poller *p, const struct omr_fetch_response *r)
{
        /* Read into a number before the next lookup: a header value is
         * only valid until then. */
        const char *rem = header2(r, "X-RateLimit-Remaining", "x-rate-limit-remaining");
        bool used_up = rem && atoll(rem) <= 0;
        int64_t reset = parse_reset(header2(r, "X-RateLimit-Reset", "x-rate-limit-reset"));
        p->not_before_ms = 0;
        if (used_up && reset > 0) {
                p->not_before_ms = reset + RESET_MARGIN_MS;
                char at[OMR_TIME_LEN + 1];
                omr_time_format(reset, at);
                omr_log(LOG_INFO, "poll", "rate limit used up source=%s next_request_after=%s",
                        p->name, at);
        }
}

static void on_fetched(const struct omr_fetch_response *r, void *arg)
{
        struct omr_poller *p = checked(arg);
        if (!alive(p))
                return;
        if (r->curl_code != 0) {
                failed(p, "error", "%s", r->error ? r->error : "transport error");
                if (p->quiescing)
                        release(p);
                return;
        }
        read_rate_limit(p, r);
        if (r->status == 401 || r->status == 403) {
                disable(p, r);
                return;
        }
        if (r->status == 429) {
                int64_t now = omr_now_ms();
                /* Retry-After when the provider says it; else its reset time. */
                int64_t reset = parse_reset(header2(r, "X-RateLimit-Reset", "x-rate-limit-reset"));
                int64_t after = r->retry_after_ms < MAX_WAIT_MS ? r->retry_after_ms : MAX_WAIT_MS;
                int64_t until = after >= 0 ? now + after : reset > 0 ? reset + RESET_MARGIN_MS : 0;
                if (until <= now) {
                        failed(p, "rate_limited", "HTTP 429 without a reset time");
                        return;
                }
                count(p, "rate_limited");
                omr_log(LOG_INFO, "poll", "rate limited (HTTP 429) source=%s wait_ms=%lld", p->name,
                        (long long)(until - now));
                p->not_before_ms = until;
                p->limit_only = true;
                commit(p); /* no cursor: records not_before for whoever polls next */
                return;
        }
        if (r->status >= 500) {
                failed(p, "error", "HTTP %ld", r->status);
                if (p->quiescing)
                        release(p);
                return;
        }
        char err[256] = "";
        if (p->ops->parse(p->ctx, r, p->cursor ? p->cursor : "", &p->page, err, sizeof(err)) != 0) {
                page_clear(&p->page, 0);
                failed(p, "error", "HTTP %ld: %s", r->status, err);
                if (p->quiescing)
                        release(p);
                return;
        }
        p->next_msg = 0;
        store_next(p);
}

static void on_go(const redisReply *r, const char *error, void *arg)
{
        struct omr_poller *p = checked(arg);
        if (!alive(p))
                return;
        bool well_formed = !error && r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                           r->element[0]->type == REDIS_REPLY_STRING &&
                           r->element[1]->type == REDIS_REPLY_STRING;
        if (p->quiescing || p->disabled) {
                /* This answer may have handed us the lease: the shutdown
                 * must give it back, not leave it to expire. */
                if (p->quiescing && well_formed && strcmp(r->element[0]->str, "standby") != 0)
                        p->holder = true;
                return;
        }
        if (error || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_STRING) {
                failed(p, "unavailable", "Redis: %s",
                       error ? error : (r && r->type == REDIS_REPLY_ERROR ? r->str : "bad reply"));
                return;
        }
        const char *verdict = r->element[0]->str, *value = r->element[1]->str;
        if (strcmp(verdict, "standby") == 0) {
                set_holder(p, false);
                /* Whatever round this daemon had going is another's now. */
                p->round_start = true;
                p->start_failed = false;
                long long ttl = atoll(value);
                /* Ask again when the holder's key would run out, or sooner:
                 * a holder that stops cleanly deletes it. */
                if (ttl == -1) /* a key without expiry (set by hand): not a spin */
                        ttl = p->lease_ms / 4;
                if (ttl < 0)
                        ttl = 0;
                if (ttl > p->lease_ms / 4)
                        ttl = p->lease_ms / 4;
                schedule(p, ttl + 5 + (int64_t)jitter(20));
                return;
        }
        set_holder(p, true);
        if (strcmp(verdict, "wait") == 0) {
                schedule(p, atoll(value) + 1);
                return;
        }
        free(p->cursor);
        p->cursor = strdup(value);
        char *url = p->cursor ? p->ops->url(p->ctx, p->cursor, p->round_start || p->fresh) : NULL;
        /* The round is on record now: a retry of this request is part of
         * it, held back by the backoff and rate limits, not the interval
         * (and restarts the round's clock when it goes). */
        if (p->round_start)
                p->start_failed = true;
        p->round_start = false;
        p->fresh = false;
        if (url == NULL) {
                failed(p, "error", "out of memory");
                return;
        }
        struct omr_fetch_request req = {
                .method = "GET",
                .url = url,
                .headers = (const char *const *)p->headers,
                .timeout_ms = (long)p->timeout_ms,
                .max_body = 8u << 20,
        };
        int rc = omr_fetch(omr_core_fetcher(p->core), &req, on_fetched, p);
        free(url);
        if (rc != 0) {
                failed(p, "error", "request not started (%s)", strerror(-rc));
                return;
        }
        p->busy++;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
        struct omr_poller *p = checked(arg);
        (void)fd;
        (void)what;
        if (p->quiescing) {
                if (p->busy == 0)
                        release(p);
                return;
        }
        if (p->disabled || p->freed)
                return;
        int64_t sit = p->sit_out_until - omr_mono_ms();
        if (sit > 0) {
                schedule(p, sit);
                return;
        }
        if (!omr_core_store_ready(p->core)) {
                /* Starting up, or Redis is away (store.c logs that and
                 * reconnects): nothing can be stored, so nothing is asked. */
                schedule(p, 250);
                return;
        }
        char ttl[24], interval[24];
        snprintf(ttl, sizeof(ttl), "%d", lease_ttl_ms(p));
        snprintf(interval, sizeof(interval), "%lld", (long long)p->interval_ms);
        const char *mode = p->round_start ? "1" : p->start_failed ? "2" : "0";
        const char *args[] = {"go", owner(), ttl, interval, mode};
        if (run_script(p, on_go, 5, args) != 0)
                failed(p, "unavailable", "Redis is not connected");
}

static void on_renewed(const redisReply *r, const char *error, void *arg)
{
        struct omr_poller *p = checked(arg);
        if (!alive(p))
                return;
        if (!error && r && r->type == REDIS_REPLY_INTEGER && r->integer == 0 && p->holder) {
                set_holder(p, false);
                p->round_start = true;
                p->start_failed = false;
        }
}

static void renew(evutil_socket_t fd, short what, void *arg)
{
        struct omr_poller *p = checked(arg);
        (void)fd;
        (void)what;
        if (!p->holder || p->quiescing || p->disabled)
                return;
        char ttl[24];
        snprintf(ttl, sizeof(ttl), "%d", lease_ttl_ms(p));
        const char *args[] = {"renew", owner(), ttl};
        run_script(p, on_renewed, 3, args); /* a failure is retried on the next beat */
        struct timeval tv = {(time_t)(p->lease_ms / 4 / 1000),
                             (suseconds_t)(p->lease_ms / 4 % 1000) * 1000};
        event_add(p->renew, &tv);
}

/* --- lifecycle ---------------------------------------------------------- */

struct omr_poller *omr_poller_start(struct omr_core *core, const struct omr_poll_source *src)
{
        struct omr_poller *p = calloc(1, sizeof(*p));
        if (p == NULL)
                return NULL;
        p->magic = POLLER_MAGIC;
        p->core = core;
        p->ops = src->ops;
        p->ctx = src->ctx;
        p->interval_ms = src->interval_ms;
        p->lease_ms = src->lease_ms < 8 ? 8 : src->lease_ms;
        p->timeout_ms = src->timeout_ms;
        p->round_start = true;
        p->name = strdup(src->name);
        const char *prefix = core->conf->redis.prefix;
        bool ok = p->name != NULL;
        for (size_t i = 0; ok && src->headers && src->headers[i] && i < MAX_HEADERS; i++)
                ok = (p->headers[i] = strdup(src->headers[i])) != NULL;
        ok = ok && asprintf(&p->lease_key, "%slease:poll:%s", prefix, src->name) > 0;
        ok = ok && asprintf(&p->cursor_key, "%scursor:%s", prefix, src->name) > 0;
        ok = ok && asprintf(&p->state_key, "%spoll:%s", prefix, src->name) > 0;
        p->tick = evtimer_new(core->base, tick, p);
        p->renew = evtimer_new(core->base, renew, p);
        if (!ok || p->tick == NULL || p->renew == NULL) {
                destroy(p);
                return NULL;
        }
        p->next = core->pollers;
        core->pollers = p;
        /* A moment's spread so that daemons started together do not all
         * ask Redis for the same lease in the same millisecond. */
        schedule(p, (int64_t)jitter(50));
        return p;
}

void omr_poller_free(struct omr_poller *p)
{
        if (p == NULL)
                return;
        checked(p);
        if (!p->disabled)
                release(p);
        event_del(p->tick);
        event_del(p->renew);
        p->freed = true;
        if (p->busy == 0)
                destroy(p);
}

void omr_pollers_quiesce(struct omr_core *core)
{
        for (struct omr_poller *p = core->pollers; p; p = p->next) {
                p->quiescing = true;
                event_del(p->tick);
                event_del(p->renew);
                /* With nothing in flight the lease goes now; otherwise the
                 * page in flight is stored and committed first. */
                if (p->busy == 0)
                        release(p);
        }
}

size_t omr_pollers_busy(const struct omr_core *core)
{
        size_t n = 0;
        for (const struct omr_poller *p = core->pollers; p; p = p->next)
                /* A lease still held is a release still to send. */
                n += (size_t)p->busy + (p->quiescing && p->holder && !p->freed);
        return n;
}
