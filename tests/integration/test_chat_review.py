"""Regressions from the review of the chat connector: two hellos in one
write (the second must be refused before the first's lookup answers, or the
session is indexed twice and used after it is freed), an HTTP/1.0
handshake (refused at once, not left hanging), a signed last_id (ignored),
and a reply logged just before the visitor's own message (delivered)."""

import asyncio
import json
import socket
import time

import websockets

from chat_helpers import ORIGIN, SITE, chat_config, reply


def ws_url(d):
    return d.url(f"/v1/chat/ws?site={SITE}").replace("http://", "ws://")


async def first_visit(d):
    async with websockets.connect(ws_url(d), origin=ORIGIN) as ws:
        await ws.send(json.dumps({"type": "hello"}))
        w = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "message", "client_id": "a1", "text": "First"}))
        while True:
            a = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if a["type"] == "ack":
                return w["token"], a["conversation_id"], a["id"]


def test_two_hellos_in_one_write(start_daemon, make_config, secrets_dir):
    d = start_daemon(chat_config(make_config(), secrets_dir))
    token, conv, first_id = asyncio.run(first_visit(d))

    async def twice():
        async with websockets.connect(ws_url(d), origin=ORIGIN) as ws:
            hello = json.dumps({"type": "hello", "token": token})
            # One TCP write: the second hello is read before Redis answers.
            await ws.send(hello)
            await ws.send(hello)
            got = []
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    got.append(json.loads(await asyncio.wait_for(ws.recv(), 0.5)))
                except asyncio.TimeoutError:
                    break
            return got
    got = asyncio.run(twice())
    kinds = [g["type"] for g in got]
    assert kinds.count("welcome") == 1, kinds
    assert any(g["type"] == "error" and g["code"] == "repeated_hello" for g in got), got
    # The socket is gone; a reply to its conversation must not touch it.
    reply(d, conv, "Still there?")
    time.sleep(0.5)
    assert d.alive()


def test_http10_handshake_is_refused(start_daemon, make_config, secrets_dir):
    d = start_daemon(chat_config(make_config(), secrets_dir))
    s = socket.create_connection(("127.0.0.1", d.port), timeout=3)
    s.sendall(f"GET /v1/chat/ws?site={SITE} HTTP/1.0\r\nHost: x\r\nOrigin: {ORIGIN}\r\n"
              "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
    start = time.monotonic()
    head = s.recv(4096).decode(errors="replace")
    s.close()
    assert head.startswith("HTTP/1.") and " 400 " in head.split("\r\n")[0], head
    assert time.monotonic() - start < 1.0


def test_signed_last_id_is_ignored(start_daemon, make_config, secrets_dir):
    d = start_daemon(chat_config(make_config(), secrets_dir))
    token, conv, first_id = asyncio.run(first_visit(d))

    async def resume():
        async with websockets.connect(ws_url(d), origin=ORIGIN) as ws:
            await ws.send(json.dumps({"type": "hello", "token": token, "last_id": "-1-0"}))
            w = json.loads(await ws.recv())
            m = json.loads(await asyncio.wait_for(ws.recv(), 3))
            return w, m
    w, m = asyncio.run(resume())
    assert w["conversation_id"] == conv
    # An invalid last_id counts as none: the history from the start.
    assert m["type"] == "message" and m["id"] == first_id, m
