/* ws.h — RFC 6455 websocket connections on the event loop: the handshake
 * check and answer, then wslay's framing over the socket libmicrohttpd
 * hands over. Limits (message size, masked client frames, UTF-8 text),
 * ping keepalive and close codes are enforced here; the chat protocol on
 * top only sees whole text messages. Loop thread only. */
#ifndef OMR_CHAT_WS_H
#define OMR_CHAT_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omniroute/http.h"

struct event_base;
struct omr_ws;

struct omr_ws_handler {
        /* A whole text message (valid UTF-8, at most max_message bytes). */
        void (*on_text)(struct omr_ws *ws, const char *msg, size_t len, void *arg);
        /* The connection is gone; ws is freed when this returns. */
        void (*on_close)(struct omr_ws *ws, void *arg);
};

struct omr_ws_limits {
        size_t max_message;
        int64_t ping_ms;
};

/* Checks the websocket handshake of req. On success answers 101 and
 * returns true: the connection then arrives at opened(ws, arg) once the
 * socket is ours, which must set its handler (or close it). If the client
 * leaves before that, opened is never called and arg is the caller's to
 * free (see gone). Otherwise answers the HTTP error and returns false. */
typedef void (*omr_ws_opened_fn)(struct omr_ws *ws, void *arg);
typedef void (*omr_ws_gone_fn)(void *arg);
bool omr_ws_handshake(struct omr_http_request *req, struct event_base *base,
                      const struct omr_ws_limits *lim, omr_ws_opened_fn opened, omr_ws_gone_fn gone,
                      void *arg);
void omr_ws_set_handler(struct omr_ws *ws, const struct omr_ws_handler *handler, void *arg);

/* Queues a text message. 0, or -errno (the connection is closing). */
int omr_ws_send_text(struct omr_ws *ws, const char *text, size_t len);
/* Starts the closing handshake with code (1000 …); the connection is
 * freed (on_close) once the close is sent, or at once if it cannot be. */
void omr_ws_close(struct omr_ws *ws, uint16_t code, const char *reason);
/* Sends a close frame if it can, and ends the connection now (on_close
 * runs before this returns): for shutdown. */
void omr_ws_shutdown(struct omr_ws *ws, uint16_t code, const char *reason);
/* The peer's address, for logs. */
const char *omr_ws_peer(const struct omr_ws *ws);

#endif
