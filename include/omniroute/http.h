/* http.h — the daemon's HTTP server: a route table over libmicrohttpd,
 * driven by the libevent loop (MHD external-epoll mode: MHD's epoll fd is
 * one libevent event, MHD's timeout one libevent timer).
 *
 * Handlers may answer at once or later (after Redis confirmed): a request
 * not answered when its handler returns is suspended until one of the
 * omr_http_reply* functions is called. Every request gets exactly one
 * reply. Body and header limits answer 413 with a JSON reason before the
 * body is read. Loop thread only. */
#ifndef OMNIROUTE_HTTP_H
#define OMNIROUTE_HTTP_H

#include <jansson.h>
#include <stddef.h>

#include "omniroute/conf.h"

struct event_base;
struct omr_http;
struct omr_http_request;
struct omr_metrics;

typedef void (*omr_http_handler_fn)(struct omr_http_request *req, void *arg);

struct omr_http *omr_http_new(struct event_base *base, const struct omr_conf_http *conf,
                              struct omr_metrics *metrics);
/* Binds and starts serving. 0 or -errno (logged). */
int omr_http_start(struct omr_http *h);
int omr_http_port(const struct omr_http *h);
/* Pattern segments in braces are parameters: "/v1/inbound/{adapter}". */
int omr_http_route(struct omr_http *h, const char *method, const char *pattern,
                   omr_http_handler_fn fn, void *arg);
/* Stop accepting connections; requests in progress go on. */
void omr_http_quiesce(struct omr_http *h);
/* Requests received and not yet fully answered. */
size_t omr_http_active(const struct omr_http *h);
/* Answer every request still waiting with 503 (last step of a drain). */
void omr_http_abort_waiting(struct omr_http *h, const char *why);
void omr_http_free(struct omr_http *h);

/* Request accessors: borrowed strings, valid until the reply is sent. */
const char *omr_http_method(const struct omr_http_request *req);
const char *omr_http_path(const struct omr_http_request *req);
/* The request target exactly as the client sent it (path and query,
 * %-encoded): what providers sign. */
const char *omr_http_raw_uri(const struct omr_http_request *req);
const char *omr_http_route_pattern(const struct omr_http_request *req);
const char *omr_http_param(const struct omr_http_request *req, const char *name);
const char *omr_http_header(const struct omr_http_request *req, const char *name);
const char *omr_http_query(const struct omr_http_request *req, const char *name);
const char *omr_http_peer(const struct omr_http_request *req);
const char *omr_http_version(const struct omr_http_request *req); /* "HTTP/1.1" */
const char *omr_http_body(const struct omr_http_request *req, size_t *len);

/* Switching protocols (websocket): answers 101 with headers (a
 * NULL-terminated name, value, name, value … list; "Upgrade" among them),
 * then hands the connection's socket over: fn gets the socket, the bytes
 * already read past the request, and a handle the socket is closed with
 * (never close(2) it). fn runs on the loop, after this returns; with
 * sock -1 (and no handle) when the client left before the switch. */
typedef void (*omr_http_upgraded_fn)(int sock, const char *extra, size_t extra_len, void *handle,
                                     void *arg);
void omr_http_upgrade(struct omr_http_request *req, const char *const *headers,
                      omr_http_upgraded_fn fn, void *arg);
void omr_http_upgraded_close(void *handle);

/* Extra response header for the reply that follows. */
void omr_http_set_header(struct omr_http_request *req, const char *name, const char *value);
void omr_http_reply(struct omr_http_request *req, unsigned status, const char *content_type,
                    const char *body, size_t len);
/* Takes ownership of j. */
void omr_http_reply_json_take(struct omr_http_request *req, unsigned status, json_t *j);
/* {"error": error, "detail": detail} — error is a stable machine-readable
 * code, detail a sentence for humans. */
void omr_http_reply_error(struct omr_http_request *req, unsigned status, const char *error,
                          const char *detail_fmt, ...) __attribute__((format(printf, 4, 5)));
/* 503 with "Retry-After: 1": nothing was stored, the sender should retry.
 * error is the code ("store_unavailable", "shutting_down"). */
void omr_http_reply_unavailable(struct omr_http_request *req, const char *error,
                                const char *detail_fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
