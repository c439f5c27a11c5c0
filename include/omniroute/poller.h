/* poller.h — the polling engine every polled API shares (Mastodon, X):
 * one omr_poller per account asks the provider for what is new, stores
 * it through omr_ingest() and only then advances the account's cursor in
 * Redis. It keeps to the poll interval and to the provider's advertised
 * rate limit, backs off on errors, stops for good on 401/403, and lets
 * exactly one daemon poll an account at a time (a lease in Redis). The
 * connector only says which URL to ask and how to read the answer.
 * docs/connectors/social.md describes the behaviour. Loop thread only. */
#ifndef OMNIROUTE_POLLER_H
#define OMNIROUTE_POLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omniroute/core.h"
#include "omniroute/fetch.h"

struct omr_poller;

/* What one answer yielded. */
struct omr_poll_page {
        struct omr_message **msgs; /* malloc'd array, in the order to store; the poller owns it */
        size_t n;
        char *cursor; /* malloc'd; stored once every message is stored; NULL keeps the cursor */
        bool more;    /* the round goes on: ask again now (rate limits permitting) */
};

struct omr_poll_source_ops {
        /* The next request's URL (malloc'd, NULL on allocation failure),
         * from the stored cursor ("" when none yet). round_start is true
         * for the first request of a round, and after a failure that
         * lost the round's progress (the connector drops what it kept). */
        char *(*url)(void *ctx, const char *cursor, bool round_start);
        /* Reads an answer other than 401, 403, 429 and 5xx into page. 0,
         * or -1 with err (the request is retried with backoff). */
        int (*parse)(void *ctx, const struct omr_fetch_response *r, const char *cursor,
                     struct omr_poll_page *page, char *err, size_t errlen);
};

struct omr_poll_source {
        const char *name; /* "mastodon:brand": names the Redis keys, logs and metrics */
        const struct omr_poll_source_ops *ops;
        void *ctx;                  /* the connector's, used until omr_poller_free() */
        const char *const *headers; /* NULL-terminated "Name: value", copied */
        int64_t interval_ms;        /* between the starts of two rounds */
        int64_t lease_ms;           /* a dead holder is replaced within this */
        int64_t timeout_ms;         /* per request */
};

/* Starts polling (the first round begins at once when the lease is
 * free). NULL on allocation failure. */
struct omr_poller *omr_poller_start(struct omr_core *core, const struct omr_poll_source *src);
/* Stops: no more calls into the source's ops; the lease is released.
 * A store already in flight finishes; the rest of the page is dropped
 * (the cursor did not move past it, so it is read again). */
void omr_poller_free(struct omr_poller *p);

#endif
