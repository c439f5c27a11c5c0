/* fetch.c — libcurl multi-socket driven by libevent (see fetch.h).
 *
 * Ownership: a struct xfer is owned by the fetcher from omr_fetch() until
 * its done callback has returned; a struct sock (one per socket curl
 * watches) is owned by curl's socket callback (created on first use, freed
 * on CURL_POLL_REMOVE). */
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "omniroute/fetch.h"
#include "omniroute/log.h"

#define FETCHER_MAGIC 0xfe7c4u
#define XFER_MAGIC    0x7e2f3u
#define BODY_MAX      (1u << 20)

struct omr_fetcher {
        unsigned magic;
        struct event_base *base;
        CURLM *multi;
        struct event *timer;
        struct xfer *xfers; /* in flight, for cancellation */
};

struct xfer {
        unsigned magic;
        struct omr_fetcher *f;
        CURL *easy;
        struct curl_slist *headers;
        char *body_in; /* request body copy */
        char *buf;     /* response body */
        size_t len, cap;
        bool truncated;
        size_t max_body;
        int64_t retry_after_ms;
        omr_fetch_done_fn done;
        void *arg;
        char error[CURL_ERROR_SIZE];
        struct xfer *prev, *next;
};

struct sock {
        struct event *ev;
        struct omr_fetcher *f;
};

static void check_done(struct omr_fetcher *f);

static void xfer_free(struct xfer *x)
{
        struct omr_fetcher *f = x->f;
        if (x->prev)
                x->prev->next = x->next;
        else
                f->xfers = x->next;
        if (x->next)
                x->next->prev = x->prev;
        curl_multi_remove_handle(f->multi, x->easy);
        curl_easy_cleanup(x->easy);
        curl_slist_free_all(x->headers);
        free(x->body_in);
        free(x->buf);
        x->magic = 0;
        free(x);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
        struct xfer *x = arg;
        size_t len = size * n;
        if (x->len + len > x->max_body) {
                x->truncated = true;
                return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
        }
        if (x->len + len + 1 > x->cap) {
                size_t cap = x->cap ? x->cap : 4096;
                while (cap < x->len + len + 1)
                        cap *= 2;
                char *nb = realloc(x->buf, cap);
                if (nb == NULL)
                        return 0;
                x->buf = nb;
                x->cap = cap;
        }
        memcpy(x->buf + x->len, data, len);
        x->len += len;
        x->buf[x->len] = '\0';
        return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
        struct xfer *x = arg;
        size_t len = size * n;
        static const char name[] = "retry-after:";
        if (len > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
                /* Only the delta-seconds form; an HTTP date is rare from APIs
                 * and then the caller's own backoff applies. */
                char *end;
                long secs = strtol(data + sizeof(name) - 1, &end, 10);
                if (end != data + sizeof(name) - 1 && secs >= 0 && secs < 86400)
                        x->retry_after_ms = secs * 1000;
        }
        return len;
}

const char *omr_fetch_header(const struct omr_fetch_response *r, const char *name)
{
        struct curl_header *h = NULL;
        if (r->handle == NULL || r->curl_code != 0)
                return NULL;
        /* Only the final answer's headers (request -1), not those of a 100
         * Continue or of redirects. */
        if (curl_easy_header(r->handle, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h == NULL)
                return NULL;
        return h->value;
}

static void finish(struct xfer *x, CURLcode rc)
{
        struct omr_fetch_response r = {.curl_code = (int)rc, .retry_after_ms = x->retry_after_ms};
        if (rc == CURLE_OK) {
                curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r.status);
                r.reached = true;
        } else {
                r.error = x->truncated ? "response larger than the limit"
                                       : (x->error[0] ? x->error : curl_easy_strerror(rc));
                r.too_large = x->truncated;
                /* Only failures before any byte was sent are certain not to
                 * have reached the provider. */
                r.reached = !(rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                              rc == CURLE_COULDNT_RESOLVE_PROXY);
        }
        r.handle = x->easy;
        r.body = x->buf ? x->buf : "";
        r.body_len = x->len;
        x->done(&r, x->arg);
        xfer_free(x);
}

static void check_done(struct omr_fetcher *f)
{
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                struct xfer *x = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
                OMR_MAGIC_CHECK(x, XFER_MAGIC);
                finish(x, msg->data.result);
        }
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
        struct omr_fetcher *f = arg;
        int running;
        int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
                     ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
        curl_multi_socket_action(f->multi, fd, action, &running);
        check_done(f);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
        struct omr_fetcher *f = arg;
        int running;
        (void)fd;
        (void)what;
        curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_done(f);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
        struct omr_fetcher *f = userp;
        struct sock *sk = socketp;
        (void)easy;
        if (what == CURL_POLL_REMOVE) {
                if (sk) {
                        event_free(sk->ev);
                        free(sk);
                }
                return 0;
        }
        short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
                             ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
        if (sk == NULL) {
                sk = calloc(1, sizeof(*sk));
                if (sk == NULL)
                        return -1;
                sk->f = f;
                curl_multi_assign(f->multi, s, sk);
        } else {
                event_free(sk->ev);
        }
        sk->ev = event_new(f->base, s, kind, on_socket_event, f);
        if (sk->ev == NULL)
                return -1;
        event_add(sk->ev, NULL);
        return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
        struct omr_fetcher *f = userp;
        (void)multi;
        if (timeout_ms < 0) {
                evtimer_del(f->timer);
                return 0;
        }
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(f->timer, &tv);
        return 0;
}

struct omr_fetcher *omr_fetcher_new(struct event_base *base)
{
        static bool global_done;
        if (!global_done) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        return NULL;
                global_done = true;
        }
        struct omr_fetcher *f = calloc(1, sizeof(*f));
        if (f == NULL)
                return NULL;
        f->magic = FETCHER_MAGIC;
        f->base = base;
        f->multi = curl_multi_init();
        f->timer = evtimer_new(base, on_timer, f);
        if (f->multi == NULL || f->timer == NULL) {
                omr_fetcher_free(f);
                return NULL;
        }
        curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
        curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
        curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
        return f;
}

int omr_fetch(struct omr_fetcher *f, const struct omr_fetch_request *req, omr_fetch_done_fn done,
              void *arg)
{
        struct xfer *x = calloc(1, sizeof(*x));
        if (x == NULL)
                return -ENOMEM;
        x->magic = XFER_MAGIC;
        x->f = f;
        x->done = done;
        x->arg = arg;
        x->retry_after_ms = -1;
        x->easy = curl_easy_init();
        if (x->easy == NULL) {
                free(x);
                return -ENOMEM;
        }
        CURL *e = x->easy;
        x->max_body = req->max_body ? req->max_body : BODY_MAX;
        bool imap = strncmp(req->url, "imap", 4) == 0;
        curl_easy_setopt(e, CURLOPT_URL, req->url);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, imap ? "imap,imaps" : "http,https");
        if (imap) {
                curl_easy_setopt(e, CURLOPT_USERNAME, req->username);
                curl_easy_setopt(e, CURLOPT_PASSWORD, req->password);
                curl_easy_setopt(e, CURLOPT_USE_SSL, (long)req->use_ssl);
                /* NULL: what the URL names (a message by UID). */
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->imap_command);
        }
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 15000L);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->error);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(e, CURLOPT_PRIVATE, x);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "omnirouted/" OMR_VERSION);
        if (req->userpwd) {
                curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
                curl_easy_setopt(e, CURLOPT_USERPWD, req->userpwd);
        }
        if (req->body) {
                x->body_in = malloc(req->body_len + 1);
                if (x->body_in == NULL)
                        goto fail;
                memcpy(x->body_in, req->body, req->body_len);
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body_in);
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        }
        if (!imap)
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
        char ct[256];
        if (req->content_type) {
                snprintf(ct, sizeof(ct), "Content-Type: %s", req->content_type);
                x->headers = curl_slist_append(x->headers, ct);
        }
        /* Providers answer at once; curl's default 1 s Expect wait is waste. */
        x->headers = curl_slist_append(x->headers, "Expect:");
        for (size_t i = 0; req->headers && req->headers[i]; i++)
                x->headers = curl_slist_append(x->headers, req->headers[i]);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
        x->next = f->xfers;
        if (f->xfers)
                f->xfers->prev = x;
        f->xfers = x;
        if (curl_multi_add_handle(f->multi, e) != CURLM_OK) {
                xfer_free(x);
                return -EIO;
        }
        return 0;
fail:
        curl_easy_cleanup(x->easy);
        free(x);
        return -ENOMEM;
}

void omr_fetcher_free(struct omr_fetcher *f)
{
        if (f == NULL)
                return;
        while (f->xfers) {
                struct xfer *x = f->xfers;
                snprintf(x->error, sizeof(x->error), "cancelled");
                finish(x, CURLE_ABORTED_BY_CALLBACK);
        }
        if (f->multi)
                curl_multi_cleanup(f->multi);
        if (f->timer)
                event_free(f->timer);
        f->magic = 0;
        free(f);
}
