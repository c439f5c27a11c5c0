/* store.c — one hiredis async connection driven by the libevent loop.
 *
 * Ownership: each command's `struct pending` belongs to hiredis from the
 * moment it is queued until hiredis calls on_reply (with a reply, or NULL
 * on disconnect/free) — hiredis 0.14 always calls every pending callback.
 * Our own timeout only answers the caller early and marks the pending as
 * timed out; the later reply then just frees it. */
#include <errno.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/signature.h"
#include "omniroute/timefmt.h"
#include "store.h"

#define STORE_MAGIC    0x5e70e5u
#define PENDING_MAGIC  0x9e4d1a6u
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
#define PING_EVERY_MS  1000

struct omr_store {
        unsigned magic;
        struct event_base *base;
        struct omr_metrics *metrics;
        enum omr_redis_kind kind;
        char *host;
        int port;
        char *unix_path;
        int db;
        char *password;
        int64_t timeout_ms;

        redisAsyncContext *ac; /* NULL while disconnected */
        bool ready;            /* connected, authenticated, db selected */
        bool freeing;
        bool outage_logged;
        bool ever_ready;
        bool secondary;
        int64_t started_ms;
        int backoff_ms;
        struct event *reconnect_ev;
        struct event *ping_ev;
        bool ping_in_flight;
        omr_store_ready_fn on_ready;
        void *on_ready_arg;
};

struct pending {
        unsigned magic;
        struct omr_store *s;
        omr_store_reply_fn cb; /* NULL once answered (timeout) */
        void *arg;
        struct event *timer;
        int64_t sent_ms;
        /* Kept for the NOSCRIPT fallback only. */
        const struct omr_script *script;
        int argc;
        char **argv;
        size_t *lens;
};

void omr_script_init(struct omr_script *s, const char *src)
{
        unsigned char d[SHA_DIGEST_LENGTH];
        s->src = src;
        SHA1((const unsigned char *)src, strlen(src), d);
        omr_hex_encode(d, sizeof(d), s->sha);
}

static void schedule_reconnect(struct omr_store *s);
static void ping_arm(struct omr_store *s);

/* Logged once per outage. A Redis that is still starting (the embedded
 * one, or one started beside us by systemd) is not an outage yet. */
#define STARTUP_GRACE_MS 3000
static void log_outage(struct omr_store *s, const char *what, const char *err)
{
        if (s->outage_logged)
                return;
        if (!s->ever_ready && omr_mono_ms() - s->started_ms < STARTUP_GRACE_MS) {
                omr_log(LOG_DEBUG, "redis", "waiting for redis error=\"%s\"", err);
                return;
        }
        omr_log(LOG_ERR, "redis", "%s error=\"%s\"", what, err);
        s->outage_logged = true;
}

static void pending_free(struct pending *p)
{
        if (p->timer)
                event_free(p->timer);
        for (int i = 0; p->argv && i < p->argc; i++)
                free(p->argv[i]);
        free(p->argv);
        free(p->lens);
        p->magic = 0;
        free(p);
}

static void answer(struct pending *p, const redisReply *r, const char *error)
{
        omr_store_reply_fn cb = p->cb;
        p->cb = NULL;
        if (p->timer)
                event_del(p->timer);
        if (cb)
                cb(r, error, p->arg);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
        struct pending *p = privdata;
        redisReply *r = reply;
        OMR_MAGIC_CHECK(p, PENDING_MAGIC);
        struct omr_store *s = p->s;

        if (r != NULL && !s->secondary)
                omr_metrics_redis_latency(s->metrics, (double)(omr_mono_ms() - p->sent_ms) / 1e3);
        if (r && r->type == REDIS_REPLY_ERROR && p->script && p->cb &&
            strncmp(r->str, "NOSCRIPT", 8) == 0 && !s->freeing) {
                /* The script cache was flushed (restart, failover, SCRIPT
                 * FLUSH): send the source once; Redis caches it again. */
                const char *argv0 = p->argv[0], *argv1 = p->argv[1];
                size_t len0 = p->lens[0], len1 = p->lens[1];
                p->argv[0] = (char *)"EVAL";
                p->lens[0] = 4;
                p->argv[1] = (char *)p->script->src;
                p->lens[1] = strlen(p->script->src);
                int rc = redisAsyncCommandArgv(ac, on_reply, p, p->argc, (const char **)p->argv,
                                               p->lens);
                p->argv[0] = (char *)argv0;
                p->argv[1] = (char *)argv1;
                p->lens[0] = len0;
                p->lens[1] = len1;
                p->script = NULL;
                if (rc == REDIS_OK)
                        return;
                answer(p, NULL, "could not resend script");
                pending_free(p);
                return;
        }
        if (r == NULL)
                answer(p, NULL, s->freeing ? "connection closed" : "connection lost");
        else
                answer(p, r, NULL);
        pending_free(p);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
        struct pending *p = arg;
        (void)fd;
        (void)what;
        OMR_MAGIC_CHECK(p, PENDING_MAGIC);
        omr_metrics_inc(p->s->metrics, OMR_M_REDIS_TIMEOUTS, NULL, NULL);
        answer(p, NULL, "timeout");
}

static int send_argv(struct omr_store *s, struct pending *p, int argc, const char **argv,
                     const size_t *lens)
{
        if (!s->ready || s->ac == NULL) {
                pending_free(p);
                return -ENOTCONN;
        }
        p->timer = evtimer_new(s->base, on_timeout, p);
        if (p->timer == NULL) {
                pending_free(p);
                return -ENOMEM;
        }
        p->sent_ms = omr_mono_ms();
        if (redisAsyncCommandArgv(s->ac, on_reply, p, argc, argv, lens) != REDIS_OK) {
                pending_free(p);
                return -EIO;
        }
        struct timeval tv = {s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000};
        evtimer_add(p->timer, &tv);
        return 0;
}

static struct pending *pending_new(struct omr_store *s, omr_store_reply_fn cb, void *arg)
{
        struct pending *p = calloc(1, sizeof(*p));
        if (p) {
                p->magic = PENDING_MAGIC;
                p->s = s;
                p->cb = cb;
                p->arg = arg;
        }
        return p;
}

int omr_store_command(struct omr_store *s, omr_store_reply_fn cb, void *arg, int argc,
                      const char **argv, const size_t *lens)
{
        if (!s->ready)
                return -ENOTCONN;
        struct pending *p = pending_new(s, cb, arg);
        return p ? send_argv(s, p, argc, argv, lens) : -ENOMEM;
}

int omr_store_eval(struct omr_store *s, const struct omr_script *script, omr_store_reply_fn cb,
                   void *arg, int nkeys, int nargs, const char **argv, const size_t *lens)
{
        if (!s->ready)
                return -ENOTCONN;
        struct pending *p = pending_new(s, cb, arg);
        if (p == NULL)
                return -ENOMEM;
        char nk[16];
        int argc = 3 + nkeys + nargs;
        snprintf(nk, sizeof(nk), "%d", nkeys);
        p->script = script;
        p->argc = argc;
        p->argv = calloc((size_t)argc, sizeof(*p->argv));
        p->lens = calloc((size_t)argc, sizeof(*p->lens));
        if (p->argv == NULL || p->lens == NULL) {
                pending_free(p);
                return -ENOMEM;
        }
        const char *head[3] = {"EVALSHA", script->sha, nk};
        for (int i = 0; i < argc; i++) {
                const char *src = i < 3 ? head[i] : argv[i - 3];
                size_t len = i < 3 || lens == NULL ? strlen(src) : lens[i - 3];
                p->argv[i] = malloc(len + 1);
                if (p->argv[i] == NULL) {
                        pending_free(p);
                        return -ENOMEM;
                }
                memcpy(p->argv[i], src, len);
                p->argv[i][len] = '\0';
                p->lens[i] = len;
        }
        return send_argv(s, p, argc, (const char **)p->argv, p->lens);
}

/* --- connection lifecycle ------------------------------------------------ */

static void set_ready(struct omr_store *s, bool ready)
{
        s->ready = ready;
        if (!s->secondary)
                omr_metrics_set(s->metrics, OMR_G_REDIS_UP, ready ? 1 : 0);
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
        struct omr_store *s = privdata;
        redisReply *r = reply;
        OMR_MAGIC_CHECK(s, STORE_MAGIC);
        if (r == NULL)
                return; /* disconnected meanwhile: on_disconnect handles it */
        if (r->type == REDIS_REPLY_ERROR) {
                omr_log(LOG_ERR, "redis", "connection setup refused error=\"%s\"", r->str);
                redisAsyncDisconnect(ac);
                return;
        }
        if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0) {
                /* The PING queued after AUTH/SELECT: the connection is usable. */
                s->backoff_ms = BACKOFF_MIN_MS;
                set_ready(s, true);
                omr_log(LOG_INFO, "redis", "connected%s", s->outage_logged ? " (recovered)" : "");
                s->ever_ready = true;
                s->outage_logged = false;
                ping_arm(s);
                if (s->on_ready)
                        s->on_ready(s, s->on_ready_arg);
        }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
        struct omr_store *s = ac->data;
        OMR_MAGIC_CHECK(s, STORE_MAGIC);
        if (status == REDIS_OK)
                return; /* readiness comes with the PONG of the setup sequence */
        log_outage(s, "cannot connect", ac->errstr);
        s->ac = NULL; /* hiredis frees the context after this callback */
        omr_metrics_inc(s->metrics, OMR_M_REDIS_RECONNECTS, NULL, NULL);
        schedule_reconnect(s);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
        struct omr_store *s = ac->data;
        OMR_MAGIC_CHECK(s, STORE_MAGIC);
        s->ac = NULL;
        set_ready(s, false);
        if (s->freeing)
                return;
        log_outage(s, "connection lost", status == REDIS_OK ? "closed" : ac->errstr);
        omr_metrics_inc(s->metrics, OMR_M_REDIS_RECONNECTS, NULL, NULL);
        schedule_reconnect(s);
}

static void connect_now(struct omr_store *s)
{
        redisAsyncContext *ac = s->kind == OMR_REDIS_TCP ? redisAsyncConnect(s->host, s->port)
                                                         : redisAsyncConnectUnix(s->unix_path);
        if (ac == NULL || ac->err) {
                log_outage(s, "cannot connect", ac ? ac->errstr : "out of memory");
                if (ac)
                        redisAsyncFree(ac);
                schedule_reconnect(s);
                return;
        }
        ac->data = s;
        redisLibeventAttach(ac, s->base);
        redisAsyncSetConnectCallback(ac, on_connect);
        redisAsyncSetDisconnectCallback(ac, on_disconnect);
        s->ac = ac;
        if (s->password)
                redisAsyncCommand(ac, on_setup_reply, s, "AUTH %s", s->password);
        if (s->db)
                redisAsyncCommand(ac, on_setup_reply, s, "SELECT %d", s->db);
        redisAsyncCommand(ac, on_setup_reply, s, "PING");
}

static void on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
        struct omr_store *s = arg;
        (void)fd;
        (void)what;
        OMR_MAGIC_CHECK(s, STORE_MAGIC);
        connect_now(s);
}

static void schedule_reconnect(struct omr_store *s)
{
        struct timeval tv = {s->backoff_ms / 1000, (s->backoff_ms % 1000) * 1000};
        evtimer_add(s->reconnect_ev, &tv);
        s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
}

/* The health ping finds a Redis that stopped answering without closing the
 * socket (paused, overloaded, network black hole): after command_timeout
 * the connection is dropped and rebuilt. */
static void on_ping_reply(const redisReply *r, const char *error, void *arg)
{
        struct omr_store *s = arg;
        s->ping_in_flight = false;
        if (error && strcmp(error, "timeout") == 0 && s->ac && !s->freeing) {
                omr_log(LOG_ERR, "redis", "not answering within %lldms; reconnecting",
                        (long long)s->timeout_ms);
                /* Not from inside a hiredis callback: a timer fired. */
                redisAsyncContext *ac = s->ac;
                redisAsyncFree(ac);
                return;
        }
        (void)r;
        if (s->ready)
                ping_arm(s);
}

static void on_ping_timer(evutil_socket_t fd, short what, void *arg)
{
        struct omr_store *s = arg;
        (void)fd;
        (void)what;
        if (!s->ready || s->ping_in_flight)
                return;
        const char *argv[] = {"PING"};
        if (omr_store_command(s, on_ping_reply, s, 1, argv, NULL) == 0)
                s->ping_in_flight = true;
}

static void ping_arm(struct omr_store *s)
{
        struct timeval tv = {PING_EVERY_MS / 1000, (PING_EVERY_MS % 1000) * 1000};
        if (!s->ping_in_flight)
                evtimer_add(s->ping_ev, &tv);
}

struct omr_store *omr_store_new(struct event_base *base, const struct omr_conf_redis *conf,
                                struct omr_metrics *metrics)
{
        struct omr_store *s = calloc(1, sizeof(*s));
        if (s == NULL)
                return NULL;
        s->magic = STORE_MAGIC;
        s->base = base;
        s->metrics = metrics;
        s->kind = conf->kind == OMR_REDIS_TCP ? OMR_REDIS_TCP : OMR_REDIS_UNIX;
        s->host = conf->host ? strdup(conf->host) : NULL;
        s->port = conf->port;
        s->unix_path = conf->unix_path ? strdup(conf->unix_path) : NULL;
        s->db = conf->db;
        s->password = conf->password ? strdup(conf->password) : NULL;
        s->timeout_ms = conf->command_timeout_ms;
        s->backoff_ms = BACKOFF_MIN_MS;
        s->reconnect_ev = evtimer_new(base, on_reconnect_timer, s);
        s->ping_ev = evtimer_new(base, on_ping_timer, s);
        if (s->reconnect_ev == NULL || s->ping_ev == NULL) {
                omr_store_free(s);
                return NULL;
        }
        set_ready(s, false);
        return s;
}

int omr_store_set_unix_path(struct omr_store *s, const char *path)
{
        char *p = strdup(path);
        if (p == NULL)
                return -ENOMEM;
        free(s->unix_path);
        s->unix_path = p;
        s->kind = OMR_REDIS_UNIX;
        return 0;
}

void omr_store_secondary(struct omr_store *s)
{
        s->secondary = true;
}

void omr_store_on_ready(struct omr_store *s, omr_store_ready_fn fn, void *arg)
{
        s->on_ready = fn;
        s->on_ready_arg = arg;
}

void omr_store_start(struct omr_store *s)
{
        s->started_ms = omr_mono_ms();
        connect_now(s);
}

bool omr_store_ready(const struct omr_store *s)
{
        return s->ready;
}

void omr_store_free(struct omr_store *s)
{
        if (s == NULL)
                return;
        s->freeing = true;
        if (s->ac) {
                redisAsyncContext *ac = s->ac;
                redisAsyncFree(ac); /* answers every pending command with NULL */
        }
        if (s->reconnect_ev)
                event_free(s->reconnect_ev);
        if (s->ping_ev)
                event_free(s->ping_ev);
        free(s->host);
        free(s->unix_path);
        if (s->password) {
                explicit_bzero(s->password, strlen(s->password));
                free(s->password);
        }
        s->magic = 0;
        free(s);
}
