/* http.c — the HTTP server: libmicrohttpd in external-epoll mode, driven
 * by the libevent loop, plus the route table and JSON error replies.
 *
 * Why libmicrohttpd and not evhttp (ARCHITECTURE.md names evhttp): in
 * libevent 2.1, evhttp answers its own limits (body too large, bad header)
 * with a fixed HTML page and offers no hook before the body is read, so
 * "every oversized body gets a JSON reason" cannot hold. MHD lets the
 * handler answer after the headers (413 before reading the body), suspend a
 * request until Redis has answered, and hands over upgraded sockets for
 * websockets. Its single epoll fd is one libevent event; its timeout one
 * libevent timer: the loop still owns all I/O.
 *
 * Ownership: MHD owns connections; a struct omr_http_request is created on
 * a request's first callback and freed in on_completed (MHD's
 * NOTIFY_COMPLETED), which MHD calls exactly once per request. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "omniroute/http.h"
#include "omniroute/log.h"
#include "omniroute/metrics.h"
#include "omniroute/timefmt.h"

#define HTTP_MAGIC  0x4777ee1u
#define REQ_MAGIC   0x4e9ee57u
#define MAX_ROUTES  64
#define MAX_PARAMS  4
#define MAX_HEADERS 4
#define DISCARD_MAX (16u << 20)

struct route {
        char *method;
        char *pattern;
        omr_http_handler_fn fn;
        void *arg;
};

struct omr_http {
        unsigned magic;
        struct event_base *base;
        struct omr_metrics *metrics;
        struct omr_conf_http conf; /* copied scalars; host not kept */
        char *host;
        struct MHD_Daemon *d;
        struct event *io_ev;
        struct event *timer_ev;
        int port;
        struct route routes[MAX_ROUTES];
        size_t n_routes;
        struct omr_http_request *active; /* doubly linked, for drain/abort */
        size_t n_active;
};

struct omr_http_request {
        unsigned magic;
        struct omr_http *h;
        struct MHD_Connection *conn;
        const char *method;  /* MHD's, valid for the request */
        const char *version; /* "HTTP/1.1" … (MHD's) */
        const char *path;
        char *raw_uri; /* as sent: path and query, still %-encoded */
        char peer[INET6_ADDRSTRLEN];
        char *body;
        size_t len, cap;
        size_t discarded;
        bool dispatched;
        bool in_handler;
        bool suspended;
        const struct route *route;
        struct {
                const char *name; /* points into the route pattern */
                size_t name_len;
                char *value;
        } params[MAX_PARAMS];
        size_t n_params;
        struct {
                char *name, *value;
        } headers[MAX_HEADERS];
        size_t n_headers;
        struct MHD_Response *response; /* ready, not yet queued */
        bool upgraded;                 /* handed over as a raw socket (websocket) */
        struct MHD_UpgradeResponseHandle *urh;
        omr_http_upgraded_fn upgraded_fn;
        void *upgraded_arg;
        unsigned status;
        int64_t started_ms;
        struct omr_http_request *prev, *next;
};

static void mhd_run(struct omr_http *h);
static void unlink_active(struct omr_http_request *req);

/* --- replies ----------------------------------------------------------- */

static void queue_response(struct omr_http_request *req)
{
        MHD_queue_response(req->conn, req->status, req->response);
        MHD_destroy_response(req->response);
        req->response = NULL;
}

void omr_http_set_header(struct omr_http_request *req, const char *name, const char *value)
{
        OMR_MAGIC_CHECK(req, REQ_MAGIC);
        if (req->n_headers == MAX_HEADERS)
                omr_panic("http", "more than %d extra headers", MAX_HEADERS);
        req->headers[req->n_headers].name = strdup(name);
        req->headers[req->n_headers].value = strdup(value);
        req->n_headers++;
}

void omr_http_reply(struct omr_http_request *req, unsigned status, const char *content_type,
                    const char *body, size_t len)
{
        OMR_MAGIC_CHECK(req, REQ_MAGIC);
        if (req->response != NULL || req->status != 0)
                omr_panic("http", "second reply to one request path=%s", req->path);
        struct MHD_Response *r =
                MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
        if (r == NULL)
                omr_panic("http", "out of memory building a response");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        for (size_t i = 0; i < req->n_headers; i++)
                if (req->headers[i].name && req->headers[i].value)
                        MHD_add_response_header(r, req->headers[i].name, req->headers[i].value);
        req->response = r;
        req->status = status;
        char code[8];
        snprintf(code, sizeof(code), "%u", status);
        omr_metrics_inc(req->h->metrics, OMR_M_HTTP_REQUESTS,
                        req->route ? req->route->pattern : "(unmatched)", code);
        omr_log(LOG_DEBUG, "http", "%s %s status=%u ms=%lld peer=%s", req->method, req->path,
                status, (long long)(omr_mono_ms() - req->started_ms), req->peer);
        if (req->in_handler || !req->suspended)
                return; /* the access handler queues it on return */
        /* Answered later (after Redis): wake the connection; MHD calls the
         * access handler again, which queues the response. */
        req->suspended = false;
        MHD_resume_connection(req->conn);
        event_active(req->h->io_ev, EV_READ, 0);
}

void omr_http_reply_json_take(struct omr_http_request *req, unsigned status, json_t *j)
{
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (text == NULL) {
                static const char oom[] = "{\"error\":\"internal\",\"detail\":\"out of memory\"}";
                omr_http_reply(req, 500, "application/json", oom, sizeof(oom) - 1);
                return;
        }
        omr_http_reply(req, status, "application/json", text, strlen(text));
        free(text);
}

static void reply_errorv(struct omr_http_request *req, unsigned status, const char *error,
                         const char *detail_fmt, va_list ap) __attribute__((format(printf, 4, 0)));
static void reply_errorv(struct omr_http_request *req, unsigned status, const char *error,
                         const char *detail_fmt, va_list ap)
{
        char detail[512];
        vsnprintf(detail, sizeof(detail), detail_fmt, ap);
        /* The one log line for a refused request: cause, route and source. */
        omr_log(status >= 500 ? LOG_ERR : LOG_WARNING, "http",
                "refused status=%u error=%s method=%s path=%s peer=%s detail=\"%s\"", status, error,
                req->method, req->path, req->peer, detail);
        json_t *j = json_pack("{s:s, s:s}", "error", error, "detail", detail);
        omr_http_reply_json_take(req, status, j);
}

void omr_http_reply_error(struct omr_http_request *req, unsigned status, const char *error,
                          const char *detail_fmt, ...)
{
        va_list ap;
        va_start(ap, detail_fmt);
        reply_errorv(req, status, error, detail_fmt, ap);
        va_end(ap);
}

void omr_http_reply_unavailable(struct omr_http_request *req, const char *error,
                                const char *detail_fmt, ...)
{
        va_list ap;
        omr_http_set_header(req, "Retry-After", "1");
        va_start(ap, detail_fmt);
        reply_errorv(req, 503, error, detail_fmt, ap);
        va_end(ap);
}

/* --- upgrade (websocket) ------------------------------------------------ */

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
        struct omr_http_request *req = cls;
        (void)conn;
        (void)con_cls;
        OMR_MAGIC_CHECK(req, REQ_MAGIC);
        /* The socket is the caller's now; the request stays allocated (MHD
         * completes it at omr_http_upgraded_close) but no drain waits on it. */
        req->upgraded = true;
        req->urh = urh;
        unlink_active(req);
        req->upgraded_fn(sock, extra_in, extra_in_size, req, req->upgraded_arg);
}

void omr_http_upgrade(struct omr_http_request *req, const char *const *headers,
                      omr_http_upgraded_fn fn, void *arg)
{
        OMR_MAGIC_CHECK(req, REQ_MAGIC);
        if (req->response != NULL || req->status != 0)
                omr_panic("http", "upgrade after a reply path=%s", req->path);
        struct MHD_Response *r = MHD_create_response_for_upgrade(on_upgrade, req);
        if (r == NULL) {
                omr_http_reply_error(req, 500, "internal", "cannot upgrade this connection");
                return;
        }
        for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
                MHD_add_response_header(r, headers[i], headers[i + 1]);
        req->upgraded_fn = fn;
        req->upgraded_arg = arg;
        req->response = r;
        req->status = 101;
        omr_metrics_inc(req->h->metrics, OMR_M_HTTP_REQUESTS, req->route->pattern, "101");
}

void omr_http_upgraded_close(void *handle)
{
        struct omr_http_request *req = handle;
        OMR_MAGIC_CHECK(req, REQ_MAGIC);
        struct omr_http *h = req->h;
        /* MHD completes (and frees) the request from its own loop: wake it. */
        MHD_upgrade_action(req->urh, MHD_UPGRADE_ACTION_CLOSE);
        event_active(h->io_ev, EV_READ, 0);
}

/* --- request accessors ------------------------------------------------- */

const char *omr_http_method(const struct omr_http_request *req)
{
        return req->method;
}

const char *omr_http_path(const struct omr_http_request *req)
{
        return req->path;
}

const char *omr_http_raw_uri(const struct omr_http_request *req)
{
        return req->raw_uri;
}

const char *omr_http_route_pattern(const struct omr_http_request *req)
{
        return req->route ? req->route->pattern : NULL;
}

const char *omr_http_param(const struct omr_http_request *req, const char *name)
{
        size_t n = strlen(name);
        for (size_t i = 0; i < req->n_params; i++)
                if (req->params[i].name_len == n && memcmp(req->params[i].name, name, n) == 0)
                        return req->params[i].value;
        return NULL;
}

const char *omr_http_header(const struct omr_http_request *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *omr_http_query(const struct omr_http_request *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *omr_http_version(const struct omr_http_request *req)
{
        return req->version ? req->version : "";
}

const char *omr_http_peer(const struct omr_http_request *req)
{
        return req->peer;
}

const char *omr_http_body(const struct omr_http_request *req, size_t *len)
{
        *len = req->len;
        return req->body ? req->body : "";
}

/* --- routing ----------------------------------------------------------- */

int omr_http_route(struct omr_http *h, const char *method, const char *pattern,
                   omr_http_handler_fn fn, void *arg)
{
        if (h->n_routes == MAX_ROUTES)
                return -ENOSPC;
        struct route *r = &h->routes[h->n_routes];
        r->method = strdup(method);
        r->pattern = strdup(pattern);
        r->fn = fn;
        r->arg = arg;
        if (r->method == NULL || r->pattern == NULL) {
                free(r->method);
                free(r->pattern);
                return -ENOMEM;
        }
        h->n_routes++;
        return 0;
}

/* Matches path against pattern segment by segment; "{name}" captures one
 * non-empty segment. Captures go into req only on a full match. */
static bool path_matches(const char *pattern, const char *path, struct omr_http_request *req)
{
        const char *p = pattern, *s = path;
        size_t n = 0;
        struct {
                const char *name, *val;
                size_t name_len, val_len;
        } cap[MAX_PARAMS];

        while (*p && *s) {
                if (*p == '{') {
                        const char *close = strchr(p, '}');
                        size_t vl = strcspn(s, "/");
                        if (close == NULL || vl == 0 || n == MAX_PARAMS)
                                return false;
                        cap[n].name = p + 1;
                        cap[n].name_len = (size_t)(close - p - 1);
                        cap[n].val = s;
                        cap[n].val_len = vl;
                        n++;
                        p = close + 1;
                        s += vl;
                        continue;
                }
                if (*p != *s)
                        return false;
                p++;
                s++;
        }
        if (*p || *s)
                return false;
        if (req) {
                for (size_t i = 0; i < n; i++) {
                        req->params[i].name = cap[i].name;
                        req->params[i].name_len = cap[i].name_len;
                        req->params[i].value = strndup(cap[i].val, cap[i].val_len);
                }
                req->n_params = n;
        }
        return true;
}

static void dispatch(struct omr_http_request *req)
{
        struct omr_http *h = req->h;
        bool path_known = false;
        for (size_t i = 0; i < h->n_routes; i++) {
                const struct route *r = &h->routes[i];
                if (!path_matches(r->pattern, req->path, NULL))
                        continue;
                path_known = true;
                if (strcmp(r->method, req->method) != 0)
                        continue;
                path_matches(r->pattern, req->path, req);
                req->route = r;
                r->fn(req, r->arg);
                return;
        }
        if (path_known) {
                omr_http_reply_error(req, 405, "method_not_allowed",
                                     "%s is not allowed on this path", req->method);
                return;
        }
        omr_http_reply_error(req, 404, "not_found", "no such endpoint");
}

/* --- MHD callbacks ----------------------------------------------------- */

/* MHD's URI log callback runs first for every request, with the request
 * target exactly as sent: the request object starts life here so that
 * signature checks can use the raw URI (Twilio signs it). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
        struct omr_http *h = cls;
        struct omr_http_request *req = calloc(1, sizeof(*req));
        if (req == NULL)
                return NULL;
        req->magic = REQ_MAGIC;
        req->h = h;
        req->conn = conn;
        req->raw_uri = strdup(uri ? uri : "");
        req->started_ms = omr_mono_ms();
        req->next = h->active;
        if (h->active)
                h->active->prev = req;
        h->active = req;
        h->n_active++;
        omr_metrics_set(h->metrics, OMR_G_HTTP_ACTIVE, (double)h->n_active);
        return req;
}

static void request_init(struct omr_http_request *req, const char *url, const char *method,
                         const char *version)
{
        req->method = method;
        req->version = version;
        req->path = url;
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
                const struct sockaddr *sa = ci->client_addr;
                if (sa->sa_family == AF_INET)
                        inet_ntop(AF_INET,
                                  &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                                  req->peer, sizeof(req->peer));
                else if (sa->sa_family == AF_INET6)
                        inet_ntop(AF_INET6,
                                  &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                                  req->peer, sizeof(req->peer));
        }
}

/* Out of the active list: answered and upgraded requests are no longer
 * waited for by a drain. */
static void unlink_active(struct omr_http_request *req)
{
        struct omr_http *h = req->h;
        if (req->prev)
                req->prev->next = req->next;
        else
                h->active = req->next;
        if (req->next)
                req->next->prev = req->prev;
        req->prev = req->next = NULL;
        h->n_active--;
        omr_metrics_set(h->metrics, OMR_G_HTTP_ACTIVE, (double)h->n_active);
}

static void request_free(struct omr_http_request *req)
{
        if (!req->upgraded)
                unlink_active(req);
        /* A 101 that never took (the client left first): tell its owner. */
        if (req->upgraded_fn && !req->upgraded)
                req->upgraded_fn(-1, NULL, 0, NULL, req->upgraded_arg);
        if (req->response)
                MHD_destroy_response(req->response);
        for (size_t i = 0; i < req->n_params; i++)
                free(req->params[i].value);
        for (size_t i = 0; i < req->n_headers; i++) {
                free(req->headers[i].name);
                free(req->headers[i].value);
        }
        free(req->body);
        free(req->raw_uri);
        req->magic = 0;
        free(req);
}

static bool body_too_large(struct omr_http *h, struct MHD_Connection *conn)
{
        const char *cl =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl == NULL)
                return false;
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        return errno != 0 || *end != '\0' || n > h->conf.max_body;
}

static void reply_too_large(struct omr_http_request *req)
{
        omr_http_reply_error(req, 413, "body_too_large", "request body is larger than %zu bytes",
                             req->h->conf.max_body);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
        struct omr_http *h = cls;
        struct omr_http_request *req = *con_cls;
        (void)version;

        if (req == NULL)
                return MHD_NO; /* on_uri ran out of memory: MHD closes the connection */
        OMR_MAGIC_CHECK(req, REQ_MAGIC);
        if (req->method == NULL) {
                request_init(req, url, method, version);
                /* Refuse before reading the body: the client is told at once
                 * (and never sent "100 Continue"). */
                if (body_too_large(h, conn)) {
                        req->dispatched = true;
                        reply_too_large(req);
                        queue_response(req);
                }
                return MHD_YES;
        }

        if (*upload_data_size != 0) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (req->dispatched) {
                        /* Answered already (body too large): MHD only sends a
                         * response once the upload ends, so read and drop the
                         * rest — up to a bound, then just close. */
                        req->discarded += n;
                        return req->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
                }
                if (req->len + n > h->conf.max_body) {
                        /* A chunked upload (no Content-Length) grew too big. */
                        req->dispatched = true;
                        reply_too_large(req);
                        return MHD_YES;
                }
                if (req->len + n + 1 > req->cap) {
                        size_t cap = req->cap ? req->cap : 4096;
                        while (cap < req->len + n + 1)
                                cap *= 2;
                        char *nb = realloc(req->body, cap);
                        if (nb == NULL)
                                return MHD_NO;
                        req->body = nb;
                        req->cap = cap;
                }
                memcpy(req->body + req->len, upload_data, n);
                req->len += n;
                req->body[req->len] = '\0';
                return MHD_YES;
        }

        if (req->response != NULL) {
                queue_response(req);
                return MHD_YES;
        }
        if (req->dispatched)
                return MHD_YES; /* resumed spuriously, or already queued */
        req->dispatched = true;
        req->in_handler = true;
        dispatch(req);
        req->in_handler = false;
        if (req->response != NULL) {
                queue_response(req);
        } else {
                req->suspended = true;
                MHD_suspend_connection(conn);
        }
        return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct omr_http_request *req = *con_cls;
        (void)cls;
        (void)conn;
        if (req == NULL)
                return;
        OMR_MAGIC_CHECK(req, REQ_MAGIC);
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && req->status == 0)
                omr_log(LOG_DEBUG, "http", "request ended early reason=%d path=%s peer=%s",
                        (int)toe, req->path, req->peer);
        request_free(req);
        *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        char buf[512];
        (void)cls;
        vsnprintf(buf, sizeof(buf), fmt, ap);
        buf[strcspn(buf, "\n")] = '\0';
        omr_log(LOG_WARNING, "http", "libmicrohttpd: %s", buf);
}

/* --- loop integration --------------------------------------------------- */

static void mhd_run(struct omr_http *h)
{
        MHD_UNSIGNED_LONG_LONG to;
        MHD_run(h->d);
        if (MHD_get_timeout(h->d, &to) == MHD_YES) {
                struct timeval tv = {(time_t)(to / 1000), (suseconds_t)((to % 1000) * 1000)};
                evtimer_add(h->timer_ev, &tv);
        } else {
                evtimer_del(h->timer_ev);
        }
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
        (void)fd;
        (void)what;
        mhd_run(arg);
}

int omr_http_start(struct omr_http *h)
{
        struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                                 .ai_socktype = SOCK_STREAM};
        struct addrinfo *ai = NULL;
        char port[8];
        snprintf(port, sizeof(port), "%d", h->conf.port);
        int rc = getaddrinfo(h->host, port, &hints, &ai);
        if (rc != 0) {
                omr_log(LOG_ERR, "http", "cannot resolve listen address host=%s: %s", h->host,
                        gai_strerror(rc));
                return -EINVAL;
        }
        unsigned flags =
                MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;
        if (ai->ai_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        h->d = MHD_start_daemon(flags, (uint16_t)h->conf.port, NULL, NULL, on_request, h,
                                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_SOCK_ADDR,
                                ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned)h->conf.idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
                                h->conf.max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                h->conf.max_header, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                                MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_END);
        freeaddrinfo(ai);
        if (h->d == NULL) {
                omr_log(LOG_ERR, "http", "cannot listen on %s:%d (address in use or not local?)",
                        h->host, h->conf.port);
                return -EADDRINUSE;
        }
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
        const union MHD_DaemonInfo *pi = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
        if (di == NULL)
                return -EINVAL;
        h->port = pi ? pi->port : h->conf.port;
        h->io_ev = event_new(h->base, di->epoll_fd, EV_READ | EV_PERSIST, on_io, h);
        h->timer_ev = evtimer_new(h->base, on_io, h);
        if (h->io_ev == NULL || h->timer_ev == NULL || event_add(h->io_ev, NULL) != 0)
                return -ENOMEM;
        omr_log(LOG_INFO, "http", "listening addr=%s:%d", h->host, h->port);
        mhd_run(h);
        return 0;
}

struct omr_http *omr_http_new(struct event_base *base, const struct omr_conf_http *conf,
                              struct omr_metrics *metrics)
{
        struct omr_http *h = calloc(1, sizeof(*h));
        if (h == NULL)
                return NULL;
        h->magic = HTTP_MAGIC;
        h->base = base;
        h->metrics = metrics;
        h->conf = *conf;
        h->conf.host = NULL;
        h->host = strdup(conf->host);
        if (h->host == NULL) {
                free(h);
                return NULL;
        }
        return h;
}

int omr_http_port(const struct omr_http *h)
{
        return h->port;
}

void omr_http_quiesce(struct omr_http *h)
{
        if (h->d == NULL)
                return;
        MHD_socket fd = MHD_quiesce_daemon(h->d);
        if (fd != MHD_INVALID_SOCKET)
                close(fd);
}

size_t omr_http_active(const struct omr_http *h)
{
        return h->n_active;
}

void omr_http_abort_waiting(struct omr_http *h, const char *why)
{
        for (struct omr_http_request *r = h->active; r; r = r->next)
                if (r->suspended && r->response == NULL && r->status == 0) {
                        omr_http_reply_unavailable(r, "shutting_down", "%s", why);
                }
        if (h->d)
                mhd_run(h);
}

void omr_http_free(struct omr_http *h)
{
        if (h == NULL)
                return;
        if (h->d)
                MHD_stop_daemon(h->d);
        if (h->io_ev)
                event_free(h->io_ev);
        if (h->timer_ev)
                event_free(h->timer_ev);
        for (size_t i = 0; i < h->n_routes; i++) {
                free(h->routes[i].method);
                free(h->routes[i].pattern);
        }
        free(h->host);
        h->magic = 0;
        free(h);
}
