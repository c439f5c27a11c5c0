/* ws.c — see ws.h. The handshake (RFC 6455 4.2) is checked here and
 * answered through http.c's upgrade; framing is wslay's event API over the
 * raw non-blocking socket, driven by one libevent read event and a write
 * event armed only while wslay has something to send.
 *
 * A connection is owned by this file from the handshake until on_close has
 * returned. It is never freed from inside a wslay callback: closing marks
 * it and a zero timer reaps it on the next loop turn. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "omniroute/log.h"
#include "omniroute/text.h"
#include "ws.h"

#define WS_MAGIC 0x77536f63u
/* Fairness: at most this much is read from one socket per loop turn (a
 * flooding client cannot starve the others; epoll reports it again). */
#define READ_BUDGET (64 * 1024)
/* A client that does not read what we send (pongs, replies): closed when
 * this much waits for it. */
#define MAX_QUEUED (1024 * 1024)

struct omr_ws {
        unsigned magic;
        struct event_base *base;
        struct omr_ws_limits lim;
        const struct omr_ws_handler *handler;
        omr_ws_opened_fn opened;
        omr_ws_gone_fn gone;
        void *arg;
        int fd;
        void *handle; /* http.c's, closes fd */
        char peer[64];
        wslay_event_context_ptr ctx;
        struct event *rd, *wr, *ping, *reap;
        char *extra; /* bytes read before the switch, fed to wslay first */
        size_t extra_len, extra_off;
        bool awaiting_pong;
        size_t budget; /* bytes this read turn may still take */
        bool closing;  /* reaped on the next turn */
};

const char *omr_ws_peer(const struct omr_ws *ws)
{
        return ws->peer;
}

static void ws_free(struct omr_ws *ws)
{
        if (ws->rd)
                event_free(ws->rd);
        if (ws->wr)
                event_free(ws->wr);
        if (ws->ping)
                event_free(ws->ping);
        if (ws->reap)
                event_free(ws->reap);
        if (ws->ctx)
                wslay_event_context_free(ws->ctx);
        if (ws->handle) {
                shutdown(ws->fd, SHUT_RDWR); /* the peer sees the end now */
                omr_http_upgraded_close(ws->handle);
        }
        free(ws->extra);
        ws->magic = 0;
        free(ws);
}

void omr_ws_set_handler(struct omr_ws *ws, const struct omr_ws_handler *handler, void *arg)
{
        OMR_MAGIC_CHECK(ws, WS_MAGIC);
        ws->handler = handler;
        ws->arg = arg;
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
        struct omr_ws *ws = arg;
        (void)fd;
        (void)what;
        OMR_MAGIC_CHECK(ws, WS_MAGIC);
        if (ws->handler && ws->handler->on_close)
                ws->handler->on_close(ws, ws->arg);
        ws_free(ws);
}

/* Ends the connection on the next loop turn (never inside a callback that
 * still uses it). */
static void drop(struct omr_ws *ws)
{
        if (ws->closing)
                return;
        ws->closing = true;
        if (ws->rd)
                event_del(ws->rd);
        if (ws->wr)
                event_del(ws->wr);
        if (ws->ping)
                evtimer_del(ws->ping);
        event_active(ws->reap, EV_TIMEOUT, 0);
}

/* --- wslay's I/O callbacks ------------------------------------------------- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
        struct omr_ws *ws = user;
        (void)flags;
        if (ws->extra_off < ws->extra_len) {
                size_t n = ws->extra_len - ws->extra_off;
                if (n > len)
                        n = len;
                memcpy(buf, ws->extra + ws->extra_off, n);
                ws->extra_off += n;
                return (ssize_t)n;
        }
        if (ws->budget == 0) {
                wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
                return -1;
        }
        if (len > ws->budget)
                len = ws->budget;
        ssize_t n = recv(ws->fd, buf, len, 0);
        if (n > 0) {
                ws->budget -= (size_t)n;
                return n;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        else
                wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE); /* EOF or error */
        return -1;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
        struct omr_ws *ws = user;
        ssize_t n =
                send(ws->fd, data, len, MSG_NOSIGNAL | ((flags & WSLAY_MSG_MORE) ? MSG_MORE : 0));
        if (n >= 0)
                return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        else
                wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
}

/* After every read or write: arm the write event while wslay has output,
 * and end the connection once neither side wants anything. */
static void settle(struct omr_ws *ws)
{
        if (ws->closing)
                return;
        if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx)) {
                drop(ws);
                return;
        }
        if (wslay_event_want_write(ws->ctx))
                event_add(ws->wr, NULL);
        else
                event_del(ws->wr);
}

static void close_with(struct omr_ws *ws, uint16_t code, const char *reason)
{
        if (wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason,
                                    reason ? strlen(reason) : 0) != 0) {
                drop(ws);
                return;
        }
        omr_log(LOG_DEBUG, "chat", "closing websocket peer=%s code=%u reason=\"%s\"", ws->peer,
                code, reason ? reason : "");
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                   void *user)
{
        struct omr_ws *ws = user;
        (void)ctx;
        if (ws->closing)
                return;
        switch (a->opcode) {
        case WSLAY_PONG:
                ws->awaiting_pong = false;
                return;
        case WSLAY_CONNECTION_CLOSE:
        case WSLAY_PING: /* wslay answers both */
                return;
        case WSLAY_BINARY_FRAME:
                close_with(ws, 1003, "binary messages are not accepted");
                return;
        case WSLAY_TEXT_FRAME:
                if (ws->handler == NULL)
                        return;
                if (!omr_text_valid_utf8((const char *)a->msg, a->msg_length)) {
                        close_with(ws, 1007, "text is not UTF-8");
                        return;
                }
                ws->awaiting_pong = false; /* any traffic shows it is alive */
                ws->handler->on_text(ws, (const char *)a->msg, a->msg_length, ws->arg);
                return;
        default:
                return;
        }
}

/* --- loop events ------------------------------------------------------------- */

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
        struct omr_ws *ws = arg;
        (void)fd;
        (void)what;
        OMR_MAGIC_CHECK(ws, WS_MAGIC);
        ws->budget = READ_BUDGET;
        /* wslay answers most protocol errors (unmasked frames, bad
         * opcodes, oversized messages) with a close frame itself: 1002,
         * 1009; when it gives up instead, say 1002 before hanging up. */
        if (wslay_event_recv(ws->ctx) != 0) {
                /* wslay stops both directions on a fatal frame error (a
                 * control frame over 125 bytes or fragmented, a length with
                 * the top bit set): the 4-byte close frame is written here. */
                static const unsigned char close_1002[] = {0x88, 0x02, 0x03, 0xea};
                if (!wslay_event_get_close_sent(ws->ctx) &&
                    send(ws->fd, close_1002, sizeof(close_1002), MSG_NOSIGNAL) < 0)
                        omr_log(LOG_DEBUG, "chat", "close frame not sent peer=%s", ws->peer);
                drop(ws);
                return;
        }
        if (wslay_event_get_queued_msg_length(ws->ctx) > MAX_QUEUED) {
                omr_log(LOG_INFO, "chat", "websocket closed: the client does not read peer=%s",
                        ws->peer);
                drop(ws);
                return;
        }
        if (!ws->closing && wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) != 0) {
                drop(ws);
                return;
        }
        settle(ws);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
        struct omr_ws *ws = arg;
        (void)fd;
        (void)what;
        OMR_MAGIC_CHECK(ws, WS_MAGIC);
        if (wslay_event_send(ws->ctx) != 0) {
                drop(ws);
                return;
        }
        settle(ws);
}

/* Keepalive: a ping every interval; a peer that did not answer the last
 * one is gone (a dead network path, or a client that stopped reading). */
static void on_ping(evutil_socket_t fd, short what, void *arg)
{
        struct omr_ws *ws = arg;
        (void)fd;
        (void)what;
        OMR_MAGIC_CHECK(ws, WS_MAGIC);
        if (ws->awaiting_pong) {
                omr_log(LOG_INFO, "chat", "websocket closed: no pong peer=%s", ws->peer);
                drop(ws);
                return;
        }
        struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"", 0};
        ws->awaiting_pong = true;
        if (wslay_event_queue_msg(ws->ctx, &ping) != 0) {
                drop(ws);
                return;
        }
        settle(ws);
        struct timeval tv = {(time_t)(ws->lim.ping_ms / 1000),
                             (suseconds_t)((ws->lim.ping_ms % 1000) * 1000)};
        if (!ws->closing)
                evtimer_add(ws->ping, &tv);
}

int omr_ws_send_text(struct omr_ws *ws, const char *text, size_t len)
{
        OMR_MAGIC_CHECK(ws, WS_MAGIC);
        if (ws->closing || ws->ctx == NULL)
                return -EPIPE;
        struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text, len};
        if (wslay_event_queue_msg(ws->ctx, &m) != 0)
                return -EPIPE;
        settle(ws);
        return 0;
}

void omr_ws_close(struct omr_ws *ws, uint16_t code, const char *reason)
{
        OMR_MAGIC_CHECK(ws, WS_MAGIC);
        if (ws->closing)
                return;
        if (ws->ctx == NULL) {
                drop(ws);
                return;
        }
        close_with(ws, code, reason);
        /* Best effort now (at shutdown there is no next turn to wait for). */
        wslay_event_send(ws->ctx);
        settle(ws);
}

void omr_ws_shutdown(struct omr_ws *ws, uint16_t code, const char *reason)
{
        OMR_MAGIC_CHECK(ws, WS_MAGIC);
        if (!ws->closing && ws->ctx) {
                wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason,
                                        reason ? strlen(reason) : 0);
                wslay_event_send(ws->ctx);
        }
        if (ws->handler && ws->handler->on_close)
                ws->handler->on_close(ws, ws->arg);
        ws_free(ws);
}

/* --- the switch ------------------------------------------------------------ */

static void on_upgraded(int sock, const char *extra, size_t extra_len, void *handle, void *arg)
{
        struct omr_ws *ws = arg;
        OMR_MAGIC_CHECK(ws, WS_MAGIC);
        if (sock < 0) { /* the client left before the 101 */
                ws->gone(ws->arg);
                ws_free(ws);
                return;
        }
        ws->fd = sock;
        ws->handle = handle;
        static const struct wslay_event_callbacks cb = {
                .recv_callback = ws_recv,
                .send_callback = ws_send,
                .on_msg_recv_callback = on_msg,
        };
        int fl = fcntl(sock, F_GETFL);
        if (fl < 0 || fcntl(sock, F_SETFL, fl | O_NONBLOCK) < 0 ||
            (extra_len && (ws->extra = malloc(extra_len)) == NULL) ||
            wslay_event_context_server_init(&ws->ctx, &cb, ws) != 0) {
                ws->gone(ws->arg);
                ws_free(ws);
                return;
        }
        if (extra_len) {
                memcpy(ws->extra, extra, extra_len);
                ws->extra_len = extra_len;
        }
        wslay_event_config_set_max_recv_msg_length(ws->ctx, ws->lim.max_message);
        ws->rd = event_new(ws->base, sock, EV_READ | EV_PERSIST, on_readable, ws);
        ws->wr = event_new(ws->base, sock, EV_WRITE | EV_PERSIST, on_writable, ws);
        ws->ping = evtimer_new(ws->base, on_ping, ws);
        if (!ws->rd || !ws->wr || !ws->ping || event_add(ws->rd, NULL) != 0) {
                ws->gone(ws->arg);
                ws_free(ws);
                return;
        }
        struct timeval tv = {(time_t)(ws->lim.ping_ms / 1000),
                             (suseconds_t)((ws->lim.ping_ms % 1000) * 1000)};
        evtimer_add(ws->ping, &tv);
        ws->opened(ws, ws->arg);
        if (ws->handler == NULL) { /* refused by the owner: gone now, not next turn
                                      (a shutdown may free the HTTP server first) */
                ws_free(ws);
                return;
        }
        if (ws->extra_len && !ws->closing)
                on_readable(sock, EV_READ, ws); /* frames that came with the request */
}

/* Does the comma-separated header value contain token (case-insensitive)? */
static bool has_token(const char *value, const char *token)
{
        size_t n = strlen(token);
        for (const char *p = value; p && *p;) {
                p += strspn(p, " \t,");
                size_t len = strcspn(p, ",");
                size_t end = len;
                while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t'))
                        end--;
                if (end == n && strncasecmp(p, token, n) == 0)
                        return true;
                p += len;
        }
        return false;
}

/* Sec-WebSocket-Key must be the base64 of 16 bytes (RFC 6455 4.2.1). */
static bool valid_key(const char *key)
{
        unsigned char out[32];
        size_t len = key ? strlen(key) : 0;
        if (len != 24 || key[22] != '=' || key[23] != '=')
                return false;
        return EVP_DecodeBlock(out, (const unsigned char *)key, 24) == 18; /* 16 + 2 pad */
}

bool omr_ws_handshake(struct omr_http_request *req, struct event_base *base,
                      const struct omr_ws_limits *lim, omr_ws_opened_fn opened, omr_ws_gone_fn gone,
                      void *arg)
{
        const char *upgrade = omr_http_header(req, "Upgrade");
        const char *connection = omr_http_header(req, "Connection");
        const char *version = omr_http_header(req, "Sec-WebSocket-Version");
        const char *key = omr_http_header(req, "Sec-WebSocket-Key");
        /* RFC 6455 4.1: HTTP/1.1 or later (libmicrohttpd upgrades only 1.1). */
        if (strcmp(omr_http_version(req), "HTTP/1.1") != 0) {
                omr_http_reply_error(req, 400, "not_websocket",
                                     "a websocket handshake needs HTTP/1.1");
                return false;
        }
        if (!upgrade || !has_token(upgrade, "websocket") || !connection ||
            !has_token(connection, "upgrade")) {
                omr_http_reply_error(req, 400, "not_websocket",
                                     "this endpoint takes a websocket (Upgrade: websocket, "
                                     "Connection: Upgrade)");
                return false;
        }
        if (version == NULL || strcmp(version, "13") != 0) {
                omr_http_set_header(req, "Sec-WebSocket-Version", "13");
                omr_http_reply_error(req, 426, "bad_version",
                                     "Sec-WebSocket-Version must be 13 (RFC 6455)");
                return false;
        }
        if (!valid_key(key)) {
                omr_http_reply_error(req, 400, "bad_key",
                                     "Sec-WebSocket-Key must be 16 bytes in base64");
                return false;
        }
        struct omr_ws *ws = calloc(1, sizeof(*ws));
        if (ws == NULL) {
                omr_http_reply_error(req, 503, "out_of_memory", "try again");
                return false;
        }
        ws->magic = WS_MAGIC;
        ws->base = base;
        ws->lim = *lim;
        ws->opened = opened;
        ws->gone = gone;
        ws->arg = arg;
        ws->fd = -1;
        snprintf(ws->peer, sizeof(ws->peer), "%s", omr_http_peer(req));
        ws->reap = event_new(base, -1, 0, on_reap, ws);
        if (ws->reap == NULL) {
                free(ws);
                omr_http_reply_error(req, 503, "out_of_memory", "try again");
                return false;
        }
        /* Sec-WebSocket-Accept = base64(SHA-1(key + the RFC's GUID)). */
        static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
        char joined[64], accept[32];
        unsigned char sha[SHA_DIGEST_LENGTH];
        snprintf(joined, sizeof(joined), "%s%s", key, guid);
        SHA1((const unsigned char *)joined, strlen(joined), sha);
        EVP_EncodeBlock((unsigned char *)accept, sha, SHA_DIGEST_LENGTH);
        const char *headers[] = {"Upgrade", "websocket", "Sec-WebSocket-Accept", accept, NULL};
        omr_http_upgrade(req, headers, on_upgraded, ws);
        return true;
}
