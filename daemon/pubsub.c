/* pubsub.c — a Redis subscription on a connection of its own (a
 * subscribed connection can run nothing else): hiredis async on the loop,
 * AUTH, SUBSCRIBE, reconnect with backoff. Messages published while it was
 * down are lost to it: its owner is told each time the subscription is
 * (re)established and catches up from stored state. Loop thread only. */
#include <errno.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/log.h"
#include "omniroute/pubsub.h"

#define PUBSUB_MAGIC   0x9b5b5u
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct omr_pubsub {
        unsigned magic;
        struct event_base *base;
        char *host, *unix_path, *password, *channel;
        int port;
        redisAsyncContext *ac;
        struct event *reconnect;
        int64_t backoff_ms;
        bool down_logged, freeing;
        omr_pubsub_message_fn on_message;
        omr_pubsub_ready_fn on_ready;
        void *arg;
};

static void schedule(struct omr_pubsub *ps)
{
        struct timeval tv = {(time_t)(ps->backoff_ms / 1000),
                             (suseconds_t)((ps->backoff_ms % 1000) * 1000)};
        evtimer_add(ps->reconnect, &tv);
        ps->backoff_ms = ps->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ps->backoff_ms * 2;
}

static void lost(struct omr_pubsub *ps, const char *why)
{
        ps->ac = NULL;
        if (ps->freeing)
                return;
        if (!ps->down_logged)
                omr_log(LOG_WARNING, "pubsub", "subscription down channel=%s: %s", ps->channel,
                        why);
        ps->down_logged = true;
        schedule(ps);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
        struct omr_pubsub *ps = privdata;
        const redisReply *r = reply;
        (void)ac;
        if (r == NULL || ps->freeing)
                return; /* disconnecting */
        OMR_MAGIC_CHECK(ps, PUBSUB_MAGIC);
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
            r->element[0]->type != REDIS_REPLY_STRING)
                return;
        const char *kind = r->element[0]->str;
        if (strcmp(kind, "subscribe") == 0) {
                if (ps->down_logged)
                        omr_log(LOG_INFO, "pubsub", "subscribed again channel=%s", ps->channel);
                ps->down_logged = false;
                ps->backoff_ms = BACKOFF_MIN_MS;
                if (ps->on_ready)
                        ps->on_ready(ps->arg);
        } else if (strcmp(kind, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING) {
                ps->on_message(r->element[2]->str, r->element[2]->len, ps->arg);
        }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
        struct omr_pubsub *ps = ac->data;
        if (status != REDIS_OK)
                lost(ps, ac->errstr); /* hiredis frees the context */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
        struct omr_pubsub *ps = ac->data;
        lost(ps, status == REDIS_OK ? "closed" : ac->errstr);
}

static void connect_now(struct omr_pubsub *ps)
{
        redisAsyncContext *ac = ps->unix_path ? redisAsyncConnectUnix(ps->unix_path)
                                              : redisAsyncConnect(ps->host, ps->port);
        if (ac == NULL || ac->err) {
                const char *why = ac ? ac->errstr : "out of memory";
                if (!ps->down_logged)
                        omr_log(LOG_WARNING, "pubsub", "cannot connect: %s", why);
                ps->down_logged = true;
                if (ac)
                        redisAsyncFree(ac);
                schedule(ps);
                return;
        }
        ac->data = ps;
        redisLibeventAttach(ac, ps->base);
        redisAsyncSetConnectCallback(ac, on_connect);
        redisAsyncSetDisconnectCallback(ac, on_disconnect);
        ps->ac = ac;
        if (ps->password)
                redisAsyncCommand(ac, NULL, NULL, "AUTH %s", ps->password);
        redisAsyncCommand(ac, on_reply, ps, "SUBSCRIBE %s", ps->channel);
}

static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        connect_now(arg);
}

struct omr_pubsub *omr_pubsub_new(struct event_base *base, const struct omr_conf_redis *conf,
                                  const char *unix_path, const char *channel,
                                  omr_pubsub_message_fn on_message, omr_pubsub_ready_fn on_ready,
                                  void *arg)
{
        struct omr_pubsub *ps = calloc(1, sizeof(*ps));
        if (ps == NULL)
                return NULL;
        ps->magic = PUBSUB_MAGIC;
        ps->base = base;
        ps->port = conf->port;
        ps->host = conf->host ? strdup(conf->host) : NULL;
        ps->unix_path = unix_path ? strdup(unix_path) : NULL;
        ps->password = conf->password ? strdup(conf->password) : NULL;
        ps->channel = strdup(channel);
        ps->on_message = on_message;
        ps->on_ready = on_ready;
        ps->arg = arg;
        ps->backoff_ms = BACKOFF_MIN_MS;
        ps->reconnect = evtimer_new(base, on_reconnect, ps);
        if (ps->reconnect == NULL || ps->channel == NULL || (!ps->host && !ps->unix_path)) {
                omr_pubsub_free(ps);
                return NULL;
        }
        connect_now(ps);
        return ps;
}

void omr_pubsub_free(struct omr_pubsub *ps)
{
        if (ps == NULL)
                return;
        ps->freeing = true;
        if (ps->ac)
                redisAsyncFree(ps->ac); /* calls on_disconnect: freeing, so no reconnect */
        if (ps->reconnect)
                event_free(ps->reconnect);
        free(ps->host);
        free(ps->unix_path);
        if (ps->password) {
                explicit_bzero(ps->password, strlen(ps->password));
                free(ps->password);
        }
        free(ps->channel);
        ps->magic = 0;
        free(ps);
}
