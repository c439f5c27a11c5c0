/* fetch.h — outbound HTTP(S) and IMAP requests with libcurl's multi
 * interface on the libevent loop (curl's socket and timer callbacks drive it, as in
 * curl's hiperfifo example). Nothing blocks. Loop thread only. */
#ifndef OMNIROUTE_FETCH_H
#define OMNIROUTE_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct omr_fetcher;

struct omr_fetch_request {
        const char *method; /* "GET", "POST" */
        const char *url;
        const char *content_type; /* for a body; NULL: none */
        const char *body;
        size_t body_len;
        const char *userpwd;        /* "user:password" for HTTP Basic auth, or NULL */
        const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
        long timeout_ms;
        /* IMAP (an imap:// or imaps:// url) */
        const char *username, *password;
        const char *imap_command; /* e.g. "UID STORE 7 +FLAGS (\\Seen)"; NULL: fetch what the URL
                                     names */
        int use_ssl;              /* curl_usessl: STARTTLS for imap:// */
        size_t max_body;          /* 0: 1 MiB */
};

struct omr_fetch_response {
        int curl_code;     /* 0: an HTTP answer arrived */
        const char *error; /* transport error text when curl_code != 0 */
        bool reached;      /* false: the request never reached a server (safe to retry) */
        long status;       /* HTTP status when curl_code == 0 */
        const char *body;  /* NUL-terminated, at most max_body */
        bool too_large;    /* the answer was longer than max_body (curl_code != 0) */
        size_t body_len;
        int64_t retry_after_ms; /* from a Retry-After header in seconds; -1 when absent */
        void *handle;           /* private: for omr_fetch_header() */
};

/* Borrowed response: valid during the call. */
typedef void (*omr_fetch_done_fn)(const struct omr_fetch_response *r, void *arg);

/* The value of the answer's first header `name` (case-insensitive), or
 * NULL. Valid until the next call, during the done callback only. */
const char *omr_fetch_header(const struct omr_fetch_response *r, const char *name);

struct omr_fetcher *omr_fetcher_new(struct event_base *base);
/* 0 when started (done will be called exactly once, never before this
 * returns), or -errno. The request's strings are copied. */
int omr_fetch(struct omr_fetcher *f, const struct omr_fetch_request *req, omr_fetch_done_fn done,
              void *arg);
/* Cancels transfers in flight (done called with an error) and frees. */
void omr_fetcher_free(struct omr_fetcher *f);

#endif
