"""Chat connector (issue 7): the websocket endpoint GET /v1/chat/ws against
docs/connectors/chat.md, with a real daemon, a real Redis, Debian's
python3-websockets as the well-behaved visitor, and a raw-socket client
(chat_helpers.RawWS) for what a library will not send: unmasked frames,
reserved bits, lengths of 2^62, invalid UTF-8, half frames, silence.

Test config (chat_helpers.chat_config): max_message 4KiB, ping_interval 1s,
http.idle_timeout 2s, session_ttl 1h, sites `main`
(https://www.example.com, http://localhost:8080) and `shop`
(https://shop.example.org), one config agent `ana` (Ana Lima) on `general`.
The whole file is meant to stay under ~60 s (it runs normally and under ASan).
"""

import json
import selectors
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from chat_helpers import (AGENT, API_TOKEN, BINARY, CLOSE, CONT, IDLE_TIMEOUT_S, MAX_MESSAGE, ORIGIN, ORIGIN2,
                          PING, PING_INTERVAL_S, PONG, SITE, SITE2, STREAM_ID_RE, TEXT, TOKEN_RE, ULID_RE, ChatClient,
                          RawWS, accept_for, assert_refused, chat_config, check_message, conv_hash, conv_log,
                          frame, handshake_answer, open_fds, presence, raw_upgraded, reply, rss_kib, sanitized,
                          send_expect_close, sid, sign_token, wait_log_out)
from conftest import free_port, wait_until


@pytest.fixture
def chat_cfg(make_config, secrets_dir):
    def make(**chat_over):
        return chat_config(make_config(), secrets_dir, **chat_over)
    return make


@pytest.fixture
def chat_daemon(start_daemon, chat_cfg):
    return start_daemon(chat_cfg())


@pytest.fixture
def clients():
    """ChatClients / RawWS to close at teardown."""
    held = []
    yield held
    for c in held:
        try:
            c.close()
        except Exception:  # noqa: BLE001
            pass


def connect(clients, daemon, **kw):
    c = ChatClient.connect(daemon.port, **kw)
    clients.append(c)
    return c


def raw(clients, daemon, **kw):
    ws = raw_upgraded(daemon.port, **kw)
    clients.append(ws)
    return ws


def hello_json(**f):
    return json.dumps({"type": "hello", **f}).encode()


def msg_json(text="hi", client_id="c1"):
    return json.dumps({"type": "message", "client_id": client_id, "text": text}, ensure_ascii=False).encode()


def serving(daemon):
    """The daemon still answers HTTP and a fresh visitor gets a welcome."""
    assert daemon.alive(), "omnirouted exited"
    assert daemon.get("/healthz").status_code == 200
    ws = raw_upgraded(daemon.port)
    ws.close()


# --------------------------------------------------------------------------
# handshake


def test_good_handshake_upgrades_and_welcomes(chat_daemon, clients):
    ws = RawWS(chat_daemon.port)
    clients.append(ws)
    ans, key = ws.handshake()
    assert ans.status == 101, ans
    assert ans.headers.get("upgrade", "").lower() == "websocket", ans.headers
    assert "upgrade" in ans.headers.get("connection", "").lower(), ans.headers
    assert ans.headers.get("sec-websocket-accept") == accept_for(key), ans.headers
    assert "sec-websocket-extensions" not in ans.headers, "no extension was offered"
    w = ws.hello()
    assert w["type"] == "welcome", w

    # What browsers send: Firefox "Connection: keep-alive, Upgrade", mixed case.
    for extra in ({"connection": "keep-alive, Upgrade"}, {"upgrade": "WebSocket"},
                  {"connection": "upgrade"}):
        r = RawWS(chat_daemon.port)
        clients.append(r)
        ans, key = r.handshake(**extra)
        assert ans.status == 101, (extra, ans)
        assert ans.headers.get("sec-websocket-accept") == accept_for(key), (extra, ans.headers)
        assert r.hello()["type"] == "welcome"

    # The library client; the second site with its own origin; our close → 1000 back.
    c = connect(clients, chat_daemon)
    assert c.hello()["type"] == "welcome"
    assert c.close(1000) == 1000, "the daemon answers a client close with 1000"
    c2 = connect(clients, chat_daemon, site=SITE2, origin=ORIGIN2)
    assert c2.hello()["type"] == "welcome"
    assert chat_daemon.get("/healthz").status_code == 200


def test_handshake_refusals(chat_daemon):
    port = chat_daemon.port
    failures = []

    def case(name, status, code, **kw):
        try:
            ans = handshake_answer(port, **kw)
            j = assert_refused(ans, status, code)
            if status == 426:
                assert ans.headers.get("sec-websocket-version") == "13", \
                    f"426 without Sec-WebSocket-Version: 13: {ans.headers}"
            return j
        except Exception as e:  # noqa: BLE001 - collected, all cases run
            failures.append(f"{name}: {e}")

    case("key of 3 chars", 400, "bad_key", key="abc")
    case("key of 15 bytes", 400, "bad_key", key="AAAAAAAAAAAAAAAAAAAA")  # base64 of 15 bytes
    case("key of 17 bytes", 400, "bad_key", key="AAAAAAAAAAAAAAAAAAAAAAA=")
    case("key not base64", 400, "bad_key", key="!!!!!!!!!!!!!!!!!!!!!!==")
    case("no key", 400, "bad_key", omit=("Sec-WebSocket-Key",))
    case("version 12", 426, "bad_version", version="12")
    case("version 8", 426, "bad_version", version="8")
    case("no version", 426, "bad_version", omit=("Sec-WebSocket-Version",))
    case("no Upgrade", 400, "not_websocket", omit=("Upgrade",))
    case("Upgrade: h2c", 400, "not_websocket", upgrade="h2c")
    case("Connection: keep-alive", 400, "not_websocket", connection="keep-alive")
    case("no Connection", 400, "not_websocket", omit=("Connection",))
    case("POST", 405, "method_not_allowed", method="POST", extra=(("Content-Length", "0"),))
    case("unknown site", 404, "unknown_site", path="/v1/chat/ws?site=nope")
    case("site of another case", 404, "unknown_site", path="/v1/chat/ws?site=MAIN")
    case("bad Origin", 403, "bad_origin", origin="https://evil.example")
    case("Origin with a path", 403, "bad_origin", origin=ORIGIN + "/")
    case("Origin as a prefix", 403, "bad_origin", origin=ORIGIN + ".evil.org")
    case("Origin http instead of https", 403, "bad_origin", origin="http://www.example.com")
    case("Origin null", 403, "bad_origin", origin="null")
    case("Origin of the other site", 403, "bad_origin", origin=ORIGIN2)
    case("no Origin", 403, "bad_origin", omit=("Origin",))
    # No site at all: unknown (404) is the documented answer for a site the
    # daemon does not serve.
    case("no site parameter", 404, "unknown_site", path="/v1/chat/ws")

    assert not failures, "refusals not as documented:\n  " + "\n  ".join(failures)
    serving(chat_daemon)


# --------------------------------------------------------------------------
# framing


def _close_case(port, name, data, codes, *, hello=False, failures, timeout=3.0):
    ws = RawWS(port)
    try:
        ws.upgrade()
        if hello:
            ws.hello()
        ws.send(data)
        try:
            code, took, seen = ws.wait_close(timeout)
        except AssertionError as e:
            failures.append(f"{name}: {e}")
            return
        if code is None:
            failures.append(f"{name}: connection {'reset' if ws.reset else 'closed'} without a close "
                            f"frame after {took:.2f}s (frames before: {seen!r})")
        elif code not in codes:
            failures.append(f"{name}: close code {code}, expected {sorted(codes)} (frames before: {seen!r})")
        elif took > 2.0:
            failures.append(f"{name}: closed {code} only after {took:.2f}s")
    except Exception as e:  # noqa: BLE001
        failures.append(f"{name}: {type(e).__name__}: {e}")
    finally:
        ws.close()


def _huge(n, opcode=TEXT):
    """A frame header announcing n bytes and the first 16 of them."""
    key = b"\x01\x02\x03\x04"
    return frame(opcode, b"", length=n, mask_key=key) + bytes(16)


def test_bad_frames_close_with_the_documented_code(chat_daemon):
    port = chat_daemon.port
    rss0 = rss_kib(chat_daemon.pid)
    failures = []
    hello = hello_json()
    big_hello = hello_json(name="x" * (MAX_MESSAGE + 1 - len(hello_json(name=""))))
    assert len(big_hello) == MAX_MESSAGE + 1
    cases = [
        # RFC 6455 protocol errors -> 1002
        ("unmasked text frame", frame(TEXT, hello, mask=False), {1002}, False),
        ("unmasked ping", frame(PING, b"x", mask=False), {1002}, False),
        ("unmasked frame after hello", frame(TEXT, msg_json(), mask=False), {1002}, True),
        ("RSV1 set (no extension negotiated)", frame(TEXT, hello, rsv=4), {1002}, False),
        ("RSV3 on a ping", frame(PING, b"", rsv=1), {1002}, False),
        ("reserved opcode 0x3", frame(0x3, b"x"), {1002}, False),
        ("reserved control opcode 0xB", frame(0xB, b""), {1002}, False),
        ("ping of 126 bytes", frame(PING, b"p" * 126), {1002}, False),
        ("fragmented ping", frame(PING, b"x", fin=False), {1002}, False),
        ("continuation without a start", frame(CONT, hello), {1002}, False),
        ("new text inside a fragmented message",
         frame(TEXT, hello[:5], fin=False) + frame(TEXT, hello[5:]), {1002}, False),
        # Sizes: a length over max_message is refused as soon as the frame
        # starts, long before the announced payload could have arrived.
        ("length 2^62 announced", _huge(2 ** 62), {1009, 1002}, False),
        ("binary, length 2^62 announced", _huge(2 ** 62, BINARY), {1009, 1002, 1003}, False),
        ("length with the MSB set (2^63+5)", _huge(2 ** 63 + 5), {1002, 1009}, False),
        ("length 64 MiB announced", _huge(64 << 20), {1009}, False),
        ("length 4KiB + 1 announced", _huge(MAX_MESSAGE + 1), {1009}, False),
        ("4KiB + 1 in one frame", frame(TEXT, big_hello), {1009}, False),
        ("4KiB + 1 in three fragments",
         frame(TEXT, big_hello[:1500], fin=False) + frame(CONT, big_hello[1500:3000], fin=False)
         + frame(CONT, big_hello[3000:]), {1009}, False),
        # Message types
        ("binary message", frame(BINARY, b"\x00\x01\x02"), {1003}, False),
        ("binary message after hello", frame(BINARY, msg_json()), {1003}, True),
        ("invalid UTF-8 (0xff)", frame(TEXT, b'{"type":"hello","name":"\xff"}'), {1007}, False),
        ("overlong UTF-8 (c0 af)", frame(TEXT, b'{"type":"hello","name":"\xc0\xaf"}'), {1007}, False),
        ("UTF-16 surrogate (ed a0 80)", frame(TEXT, b'{"type":"hello","name":"\xed\xa0\x80"}'), {1007}, False),
        ("invalid UTF-8 across fragments",
         frame(TEXT, b'{"type":"hello","name":"\xe2\x82', fin=False) + frame(CONT, b'("}'), {1007}, False),
        ("truncated UTF-8 at the end", frame(TEXT, b'{"type":"hello"}\xe2\x82'), {1007}, False),
        # Protocol (policy) -> 1008
        ("not JSON", frame(TEXT, b"hello there"), {1008}, False),
        ("JSON array", frame(TEXT, b"[1,2]"), {1008}, False),
        ("JSON without type", frame(TEXT, b'{"text":"x"}'), {1008}, False),
        ("message before hello", frame(TEXT, msg_json()), {1008}, False),
        ("unknown type after hello", frame(TEXT, b'{"type":"bogus"}'), {1008}, True),
        ("not JSON after hello", frame(TEXT, b'{"type":"message",'), {1008}, True),
    ]
    for name, data, codes, after_hello in cases:
        _close_case(port, name, data, codes, hello=after_hello, failures=failures)

    # Only the header of a 2^62-byte frame, then silence (wslay checks the
    # length once payload arrives): no allocation, and closed 1009/1002 by
    # the keepalive tick at the latest, although the client answers pings.
    ws = RawWS(port)
    try:
        ws.upgrade()
        ws.send(frame(TEXT, b"", length=2 ** 62))
        code, took, seen = ws.wait_close(2 * PING_INTERVAL_S + 1.5, pong=True)
        if code not in (1009, 1002):
            failures.append(f"header of 2^62 only: close code {code} after {took:.2f}s")
    except AssertionError as e:
        failures.append(f"header of 2^62 only: {e}")
    finally:
        ws.close()

    assert chat_daemon.alive(), "omnirouted died on a bad frame"
    grew = rss_kib(chat_daemon.pid) - rss0
    assert not failures, "bad frames not closed as documented:\n  " + "\n  ".join(failures)
    assert grew < 16 * 1024, f"daemon RSS grew {grew} KiB over the bad-frame cases"
    serving(chat_daemon)


def test_library_client_violations(chat_daemon):
    """The same rules seen from python3-websockets (what a browser would send)."""
    port = chat_daemon.port
    got = {
        "binary": send_expect_close(port, b"\x00binary"),
        "5000 characters": send_expect_close(port, json.dumps({"type": "message", "client_id": "a",
                                                              "text": "x" * 5000})),
        "3 fragments over 4KiB": send_expect_close(port, ["x" * 2000, "y" * 2000, "z" * 2000]),
        "not JSON": send_expect_close(port, "not json"),
        "message before hello": send_expect_close(port, msg_json().decode(), hello=False),
        "typing before hello": send_expect_close(port, '{"type":"typing"}', hello=False),
        "unknown type": send_expect_close(port, '{"type":"subscribe"}'),
    }
    want = {"binary": 1003, "5000 characters": 1009, "3 fragments over 4KiB": 1009, "not JSON": 1008,
            "message before hello": 1008, "typing before hello": 1008, "unknown type": 1008}
    assert got == want
    serving(chat_daemon)


def test_fragmented_message_is_reassembled(chat_daemon, rdb, clients):
    ws = raw(clients, chat_daemon)
    text = "Bonjour, ma commande n'est pas arrivée — où est-elle ? 🚚"
    body = msg_json(text, "frag-1")
    # Split inside the multi-byte "é" and the emoji: UTF-8 is checked over
    # the whole message, not per frame.
    i, j = body.index("é".encode()) + 1, body.index("🚚".encode()) + 2
    ws.send(frame(TEXT, body[:i], fin=False))
    ws.send(frame(CONT, body[i:j], fin=False))
    ws.send(frame(PING, b"between fragments"))     # control frames may come between fragments
    ws.send(frame(CONT, body[j:]))
    pong = None
    ack = None
    deadline = time.monotonic() + 3
    while (pong is None or ack is None) and time.monotonic() < deadline:
        f = ws.recv_frame(deadline - time.monotonic())
        if f is None:
            break
        if f.opcode == PONG:
            pong = f
        elif f.opcode == TEXT:
            m = f.json()
            if m.get("type") == "ack":
                ack = m
        elif f.opcode == CLOSE:
            pytest.fail(f"closed {f.close_code}: {f!r}")
    assert pong is not None and pong.payload == b"between fragments", ws.frames
    assert ack is not None and ack["client_id"] == "frag-1", ws.frames
    stored = [m for eid, f, m in conv_log(rdb, ack["conversation_id"]) if eid == ack["id"]]
    assert len(stored) == 1 and stored[0]["text"] == text, conv_log(rdb, ack["conversation_id"])

    # The library's fragmented send (3 frames) too.
    c = connect(clients, chat_daemon)
    c.hello()
    c.send(['{"type":"message","client_id":"frag-2",', '"text":"three ', 'frames"}'])
    a2 = c.expect("ack", match=lambda m: m.get("client_id") == "frag-2")
    stored = [m for eid, f, m in conv_log(rdb, a2["conversation_id"]) if eid == a2["id"]]
    assert stored and stored[0]["text"] == "three frames"


# --------------------------------------------------------------------------
# protocol


def test_hello_welcome_message_ack_and_redis(chat_daemon, rdb, clients):
    c = connect(clients, chat_daemon)
    t0 = time.time()
    w = c.hello(name="Ana Souza", email="ana@example.com")
    assert w["type"] == "welcome"
    m = TOKEN_RE.match(w.get("token") or "")
    assert m, f"token not v1.<visitor>.<expiry ms>.<hmac hex>: {w!r}"
    assert isinstance(w.get("visitor_id"), str) and w["visitor_id"], w
    assert m.group(1) == w["visitor_id"], w
    expiry = int(m.group(2)) / 1000
    assert abs(expiry - (t0 + 3600)) < 60, f"expiry {expiry} is not ~session_ttl (1h) from now"
    assert "conversation_id" in w and w["conversation_id"] is None, w
    assert w.get("agents_online") is False, f"no agent is online: {w!r}"
    assert "expected_reply" in w and w["expected_reply"] is None, f"no SLA policy for chat: {w!r}"

    t1 = time.monotonic()
    a1 = c.message("Hi, where is my order?", "cid-1")
    ack_s = time.monotonic() - t1
    assert a1["client_id"] == "cid-1", a1
    assert ULID_RE.match(a1.get("message_id") or ""), a1
    assert ULID_RE.match(a1.get("conversation_id") or ""), a1
    assert STREAM_ID_RE.match(a1.get("id") or ""), a1
    assert ack_s < 1.0, f"ack took {ack_s:.2f}s"
    conv = a1["conversation_id"]

    log = conv_log(rdb, conv)
    assert len(log) == 1, log
    eid, fields, msg = log[0]
    assert eid == a1["id"], (eid, a1)
    assert fields["message_id"] == a1["message_id"] and fields["direction"] == "in", fields
    assert msg["text"] == "Hi, where is my order?", msg
    assert msg["channel"] == "chat" and msg["provider"] == f"chat:{SITE}", msg
    assert msg["conversation_id"] == conv and msg["id"] == a1["message_id"], msg
    assert msg["customer"]["id"] == w["visitor_id"], msg
    assert msg["customer"].get("name") == "Ana Souza", msg
    assert "thread_key" not in msg, msg
    h = conv_hash(rdb, conv)
    assert h["channel"] == "chat" and h["provider"] == f"chat:{SITE}", h
    assert h["customer_id"] == w["visitor_id"] and h["customer_name"] == "Ana Souza", h
    assert h["queue"] == "general", h

    # A second message: the same conversation, a later id.
    a2 = c.message("It was order 1042.", "cid-2")
    assert a2["conversation_id"] == conv and sid(a2["id"]) > sid(a1["id"]), (a1, a2)
    assert a2["message_id"] != a1["message_id"]
    # Text limits: 4000 characters is fine, 4001 is refused but the socket stays.
    a3 = c.message("x" * 4000, "cid-3")
    assert a3["conversation_id"] == conv
    c.send_json({"type": "message", "client_id": "cid-4", "text": "y" * 4001})
    e = c.expect("error")
    assert e.get("code") == "message_too_long", e
    assert isinstance(e.get("detail"), str) and e["detail"], e
    c.send_json({"type": "typing"})          # accepted, nothing comes back
    a5 = c.message("still here", "cid-5")
    assert [x[0] for x in conv_log(rdb, conv)] == [a1["id"], a2["id"], a3["id"], a5["id"]]
    assert not [x for x in c.received if x["type"] == "ack" and x["client_id"] == "cid-4"]

    # The session resumes on another socket: same visitor and conversation.
    presence(chat_daemon, AGENT["id"], "online")
    c2 = connect(clients, chat_daemon)
    w2 = c2.hello(token=w["token"])
    assert w2["visitor_id"] == w["visitor_id"] and w2["conversation_id"] == conv, w2
    assert w2.get("agents_online") is True, f"ana is online and serves the chat queue: {w2!r}"
    assert TOKEN_RE.match(w2.get("token") or ""), w2
    a6 = c2.message("from my phone", "cid-6")
    assert a6["conversation_id"] == conv


def test_bad_tokens_start_a_fresh_session(chat_daemon, clients):
    c = connect(clients, chat_daemon)
    w = c.hello()
    a = c.message("first", "t1")
    tok = w["token"]
    head, mac = tok.rsplit(".", 1)
    tampered = [
        head + "." + ("0" if mac[0] != "0" else "1") + mac[1:],          # signature changed
        "v1.someone-else." + tok.split(".")[2] + "." + mac,            # visitor changed
        ".".join(tok.split(".")[:2] + [str(int(tok.split(".")[2]) + 86400000), mac]),  # expiry pushed out
        "garbage",
    ]
    for bad in tampered:
        c2 = connect(clients, chat_daemon)
        c2.send_json({"type": "hello", "token": bad, "last_id": a["id"]})
        w2 = c2.expect("welcome")
        e = c2.expect("error", timeout=1.0)
        assert e.get("code") == "bad_token", (bad, e)
        assert w2["visitor_id"] != w["visitor_id"], f"token {bad!r} resumed the session: {w2!r}"
        assert w2["conversation_id"] is None, w2
        assert w2["token"] != bad and TOKEN_RE.match(w2["token"]), w2
        assert not [m for m in c2.drain(0.2) if m["type"] == "message"], "history sent on a bad token"
        a2 = c2.message("new visitor", "t2")
        assert a2["conversation_id"] != a["conversation_id"], a2
        assert c2.open


def test_token_signature_and_expiry(chat_daemon, clients):
    """The token is v1.<visitor>.<expiry ms>.<HMAC-SHA256 hex> keyed with the
    session secret: one we sign ourselves resumes; an expired one, however
    well signed, gets bad_token and a fresh visitor."""
    c = connect(clients, chat_daemon)
    w = c.hello()
    a = c.message("first", "x1")
    visitor, exp = TOKEN_RE.match(w["token"]).group(1, 2)
    assert w["token"] == sign_token(visitor, exp), \
        "the token's MAC is not HMAC-SHA256(secret, 'v1.<visitor>.<expiry>')"
    now_ms = int(time.time() * 1000)
    c2 = connect(clients, chat_daemon)
    w2 = c2.hello(token=sign_token(visitor, now_ms + 60000))
    assert w2["visitor_id"] == visitor and w2["conversation_id"] == a["conversation_id"], w2
    for expired in (now_ms - 1000, now_ms - 86400000, 0):
        c3 = connect(clients, chat_daemon)
        c3.send_json({"type": "hello", "token": sign_token(visitor, expired), "last_id": "0-0"})
        w3 = c3.expect("welcome")
        e = c3.expect("error", timeout=1.0)
        assert e.get("code") == "bad_token", (expired, e)
        assert w3["visitor_id"] != visitor and w3["conversation_id"] is None, (expired, w3)
        assert not [m for m in c3.drain(0.2) if m["type"] == "message"], "history sent for an expired token"


# --------------------------------------------------------------------------
# agents' replies


def test_agent_reply_reaches_the_socket(chat_daemon, rdb, clients):
    c = connect(clients, chat_daemon)
    c.hello()
    a = c.message("Is anyone there?", "r1")
    conv = a["conversation_id"]
    c.drain(0.2)
    t0 = time.monotonic()
    rid = reply(chat_daemon, conv, "Yes — Ana here. How can I help?")
    m = c.expect("message", timeout=2.0, match=lambda x: x.get("direction") == "out")
    took = time.monotonic() - t0
    assert took < 2.0, f"reply reached the socket {took:.2f}s after the POST"
    check_message(m, direction="out", text="Yes — Ana here. How can I help?")
    assert m["agent"] == {"id": "ana", "name": "Ana Lima"}, m
    outs = wait_log_out(rdb, conv, 1)
    assert [e[0] for e in outs] == [m["id"]], (outs, m)
    assert sid(m["id"]) > sid(a["id"])
    assert outs[0][2]["reply_id"] == rid and outs[0][2]["direction"] == "out", outs[0]
    h = wait_until(lambda: (lambda x: x if x.get("status") == "sent" else None)(
        rdb.hgetall(f"omr:conv:{{{conv}}}:reply:{rid}")), 3, what="reply hash sent")
    assert h["provider"] == f"chat:{SITE}", h
    c.no_message(0.3)     # exactly once


def test_reply_from_another_daemon_reaches_the_socket(start_daemon, chat_cfg, rdb, clients):
    a = start_daemon(chat_cfg(), name="daemon-a")
    cfg_b = chat_cfg()
    cfg_b["http"]["listen"] = f"127.0.0.1:{free_port()}"
    b = start_daemon(cfg_b, name="daemon-b")

    ca = connect(clients, a)
    w = ca.hello()
    ack = ca.message("hello from daemon A's socket", "x1")
    conv = ack["conversation_id"]
    ca.drain(0.2)
    t0 = time.monotonic()
    reply(b, conv, "answered through daemon B")
    m = ca.expect("message", timeout=2.0, match=lambda x: x.get("direction") == "out")
    assert time.monotonic() - t0 < 2.0
    check_message(m, direction="out", text="answered through daemon B")
    ca.no_message(0.3)

    # The same session on daemon B (same secret): both sockets get A's reply, once each.
    cb = connect(clients, b)
    wb = cb.hello(token=w["token"], last_id=m["id"])
    assert wb["visitor_id"] == w["visitor_id"] and wb["conversation_id"] == conv, wb
    assert not [x for x in cb.drain(0.3) if x["type"] == "message"], "nothing was missed after last_id"
    reply(a, conv, "answered through daemon A")
    for cl in (ca, cb):
        m2 = cl.expect("message", timeout=2.0, match=lambda x: x.get("direction") == "out")
        check_message(m2, direction="out", text="answered through daemon A")
        cl.no_message(0.3)


def _api(daemon, method, path, body=None):
    return requests.request(method, daemon.url(path), json=body, headers={"Authorization": f"Bearer {API_TOKEN}"},
                            timeout=5)


def test_typing_assigned_resolved_pushes(chat_daemon, rdb, clients):
    c = connect(clients, chat_daemon)
    c.hello()
    conv = c.message("Can someone help me?", "l1")["conversation_id"]
    c.drain(0.2)

    r = _api(chat_daemon, "POST", f"/v1/conversations/{conv}/typing", {"agent_id": "ana"})
    assert r.status_code == 204, r.text
    t = c.expect("typing", timeout=2.0)
    assert t.get("agent") == {"id": "ana", "name": "Ana Lima"}, t

    r = _api(chat_daemon, "POST", "/v1/agents/ana/claim")
    assert r.status_code == 200 and r.json()["conversation"]["id"] == conv, r.text
    r = _api(chat_daemon, "POST", f"/v1/conversations/{conv}/accept", {"agent_id": "ana"})
    assert r.status_code == 200, r.text
    a = c.expect("assigned", timeout=2.0)
    assert a.get("agent") == {"id": "ana", "name": "Ana Lima"}, a

    r = _api(chat_daemon, "POST", f"/v1/conversations/{conv}/resolve", {"agent_id": "ana", "reason": "done"})
    assert r.status_code == 200, r.text
    c.expect("resolved", timeout=2.0)
    rest = c.drain(0.3)
    assert not [m for m in rest if m["type"] in ("assigned", "resolved", "typing")], \
        f"lifecycle pushes repeated: {c.received!r}"
    assert [m["type"] for m in c.received].count("assigned") == 1, c.received

    # A later message reopens the same conversation.
    again = c.message("One more question", "l2")
    assert again["conversation_id"] == conv, again
    assert conv_hash(rdb, conv)["status"] != "resolved"


def test_welcome_expected_reply_from_the_chat_sla_policy(start_daemon, chat_cfg, clients):
    cfg = chat_cfg()
    cfg["sla"] = {"policies": [{"name": "chat", "channel": ["chat"], "first_response": "2m"}]}
    d = start_daemon(cfg)
    c = connect(clients, d)
    w = c.hello()
    er = w.get("expected_reply")
    assert isinstance(er, dict) and er.get("seconds") == 120 and "due" in er, w
    c.message("hello", "s1")
    c2 = connect(clients, d)
    w2 = c2.hello(token=w["token"])
    er2 = w2.get("expected_reply")
    assert isinstance(er2, dict) and er2.get("seconds") == 120 and er2.get("due"), w2


# --------------------------------------------------------------------------
# resume


def test_resume_gets_exactly_the_missed_messages(chat_daemon, rdb, clients):
    c1 = connect(clients, chat_daemon)
    w = c1.hello()
    a1 = c1.message("one", "m1")
    a2 = c1.message("two", "m2")
    conv = a1["conversation_id"]
    c1.close()

    reply(chat_daemon, conv, "first reply while you were away")
    reply(chat_daemon, conv, "second reply while you were away")
    outs = wait_log_out(rdb, conv, 2)

    c2 = connect(clients, chat_daemon)
    w2 = c2.hello(token=w["token"], last_id=a2["id"])
    assert w2["visitor_id"] == w["visitor_id"] and w2["conversation_id"] == conv, w2
    got = [m for m in c2.drain(0.5) if m["type"] == "message"]
    assert [(m["id"], m["direction"], m["text"]) for m in got] == \
        [(outs[0][0], "out", "first reply while you were away"),
         (outs[1][0], "out", "second reply while you were away")], got
    for m in got:
        check_message(m, direction="out")

    # Then live.
    reply(chat_daemon, conv, "live one")
    live = c2.expect("message", timeout=2.0)
    check_message(live, direction="out", text="live one")
    c2.no_message(0.3)

    # From the first message: the rest, own messages included, no duplicates.
    c3 = connect(clients, chat_daemon)
    c3.hello(token=w["token"], last_id=a1["id"])
    got3 = [m for m in c3.drain(0.5) if m["type"] == "message"]
    log_after = [(eid, f["direction"]) for eid, f, _ in conv_log(rdb, conv) if sid(eid) > sid(a1["id"])]
    assert [(m["id"], m["direction"]) for m in got3] == log_after, (got3, log_after)
    assert [m["text"] for m in got3] == ["two", "first reply while you were away",
                                         "second reply while you were away", "live one"], got3
    check_message(got3[0], direction="in", text="two")
    assert got3[0].get("client_id") == "m2", got3[0]
    assert len({m["id"] for m in got3}) == len(got3)

    # Both of the visitor's sockets get the next one, once each.
    reply(chat_daemon, conv, "to both tabs")
    for cl in (c2, c3):
        check_message(cl.expect("message", timeout=2.0), direction="out", text="to both tabs")
        cl.no_message(0.3)


def test_resume_while_replies_stream_in(chat_daemon, rdb, clients):
    """A reply published while a resume reads the history is neither lost nor
    sent twice: every socket sees exactly the log after its last_id."""
    c0 = connect(clients, chat_daemon)
    w = c0.hello()
    a = c0.message("start", "s0")
    conv = a["conversation_id"]
    n = 30
    errors = []

    def agent():
        s = requests.Session()
        try:
            for i in range(n):
                r = s.post(chat_daemon.url(f"/v1/conversations/{conv}/replies"),
                           json={"agent_id": "ana", "text": f"burst {i}"},
                           headers={"Authorization": "Bearer " + API_TOKEN},
                           timeout=5)
                if r.status_code != 202:
                    errors.append(r.text)
                time.sleep(0.02)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    t = threading.Thread(target=agent)
    t.start()
    resumed = []
    try:
        for k in range(6):
            time.sleep(0.12)
            log = conv_log(rdb, conv)
            last = log[max(0, len(log) - 1 - (k % 3))][0]   # the newest, or one or two before it
            c = connect(clients, chat_daemon)
            c.hello(token=w["token"], last_id=last)
            resumed.append((last, c))
    finally:
        t.join(10)
    assert not errors, errors
    wait_log_out(rdb, conv, n)
    reply(chat_daemon, conv, "the end")
    wait_log_out(rdb, conv, n + 1)
    log = [(eid, f["direction"]) for eid, f, _ in conv_log(rdb, conv)]
    assert len(log) == n + 2
    for last, c in resumed + [(a["id"], c0)]:
        c.expect("message", timeout=3.0, match=lambda m: m.get("text") == "the end")
        got = [(m["id"], m["direction"]) for m in c.received if m["type"] == "message"]
        want = [e for e in log if sid(e[0]) > sid(last)]
        dups = len(got) - len(set(got))
        missing = [e for e in want if e not in got]
        assert got == want, (f"socket resumed after {last}: {dups} duplicates, missing {missing}, "
                             f"got {len(got)} want {len(want)}")


# --------------------------------------------------------------------------
# keepalive and hostile clients


def test_ping_pong_and_clients_that_never_pong(chat_daemon, clients):
    ws = raw(clients, chat_daemon)
    ws.send(frame(PING, b"are you there"))
    ws.send(frame(PING, b"p" * 125))
    pongs = []
    while len(pongs) < 2:
        f = ws.recv_frame(2.0)
        assert f is not None, f"no pong (frames: {ws.frames!r})"
        if f.opcode == PONG:
            pongs.append(f.payload)
    assert pongs == [b"are you there", b"p" * 125], pongs
    lib = connect(clients, chat_daemon)
    lib.hello()
    assert lib.ping(b"lib") < 1.0

    # A socket that never answers the daemon's pings is closed; one that
    # answers (the library does) stays, idle past http.idle_timeout too.
    silent = raw(clients, chat_daemon)
    t0 = time.monotonic()
    code, took, seen = silent.wait_close(3 * PING_INTERVAL_S + 2.0, answer=False, pong=False)
    pings = [f for f in seen if f.opcode == PING]
    assert pings, f"closed without being pinged first (frames: {seen!r})"
    assert took >= PING_INTERVAL_S * 0.9, f"closed after {took:.2f}s, before an unanswered ping could time out"
    remaining = max(0.0, IDLE_TIMEOUT_S + 1.0 - (time.monotonic() - t0))
    time.sleep(remaining)
    a = lib.message("still connected?", "alive")
    assert a["client_id"] == "alive"
    assert lib.open


def _flooder(port, seconds, mode):
    p = subprocess.Popen([sys.executable, str(Path(__file__).with_name("chat_helpers.py")), "flood",
                          str(port), str(seconds), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True, cwd=str(Path(__file__).parent))
    line = p.stdout.readline()
    if line.strip() != "ready":
        p.kill()
        raise AssertionError(f"{mode} flooder did not start: {line!r} {p.stderr.read()[-2000:]}")
    return p


def _flooder_stats(p):
    try:
        out, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    assert lines, f"flooder gave no figures (rc {p.returncode}): {err[-2000:]}"
    return json.loads(lines[-1])


class _Watcher(threading.Thread):
    """Records when the daemon closes each of the stalled sockets (EOF or
    reset), reading and dropping whatever it sends (pings) meanwhile."""

    def __init__(self, socks, deadline_s):
        super().__init__(daemon=True)
        self.sel = selectors.DefaultSelector()
        for kind, s, since in socks:
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, (kind, since))
        self.left = len(socks)
        self.closed = {"partial": [], "half": []}
        self.deadline = time.monotonic() + deadline_s

    def run(self):
        while self.left and time.monotonic() < self.deadline:
            for key, _ in self.sel.select(0.05):
                kind, since = key.data
                try:
                    gone = not key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    gone = True
                if gone:
                    self.closed[kind].append(time.monotonic() - since)
                    self.sel.unregister(key.fileobj)
                    self.left -= 1


def _visitor_timings(clients, daemon, label, n=5):
    """connect + hello, then n messages; {welcome_s, acks_s} or {error}."""
    out = {}
    t0 = time.monotonic()
    try:
        c = connect(clients, daemon)
        c.hello()
        out["welcome_s"] = round(time.monotonic() - t0, 4)
        acks = []
        for i in range(n):
            t1 = time.monotonic()
            c.message(f"{label} {i}", f"{label}-{i}")
            acks.append(round(time.monotonic() - t1, 4))
        out["acks_s"] = acks
        out["client"] = c
    except (AssertionError, TimeoutError) as e:
        out["error"] = f"{type(e).__name__}: {e} (after {time.monotonic() - t0:.2f}s)"
    return out


@pytest.mark.timeout(45)
def test_hostile_clients_do_not_affect_others(chat_daemon, clients):
    port = chat_daemon.port
    pid = chat_daemon.pid
    fds0 = open_fds(pid)
    rss0 = rss_kib(pid)
    problems = []

    # 25 partial handshakes and 25 half frames after the upgrade; all stall.
    stalled = []
    for i in range(25):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        clients.append(s)
        s.sendall(f"GET /v1/chat/ws?site={SITE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\n".encode())
        stalled.append(("partial", s, time.monotonic()))
    for i in range(25):
        ws = RawWS(port)
        clients.append(ws)
        ws.upgrade()
        if i % 2:
            ws.hello()
        ws.send(frame(TEXT, msg_json("never finished", f"h{i}"))[:(3 if i % 3 else 9)])
        assert not ws.buf, ws.buf
        stalled.append(("half", ws.sock, time.monotonic()))
    bound_p = IDLE_TIMEOUT_S + 1.5
    bound_h = 3 * PING_INTERVAL_S + 1.5
    watcher = _Watcher(stalled, max(bound_p, bound_h) + 6.0)
    watcher.start()

    # A: a ping flood from a child process that reads its pongs; meanwhile a
    # normal visitor connects and sends 5 messages.
    fl = _flooder(port, 2.0, "reading")
    time.sleep(0.2)
    va = _visitor_timings(clients, chat_daemon, "during-ping-flood")
    sa = _flooder_stats(fl)
    # B: a flood that never reads its pongs (64 MiB of pings at most).
    fl = _flooder(port, 2.0, "silent")
    time.sleep(0.2)
    vb = _visitor_timings(clients, chat_daemon, "during-silent-flood")
    rss_b = rss_kib(pid)
    sb = _flooder_stats(fl)
    rss_b = max(rss_b, rss_kib(pid))

    for label, v, st in (("ping flood", va, sa), ("silent flood", vb, sb)):
        if "error" in v:
            problems.append(f"{label}: a normal visitor was not served: {v['error']} (flooder: {st})")
            continue
        if v["welcome_s"] >= 1.0 or max(v["acks_s"]) >= 1.0:
            problems.append(f"{label}: welcome {v['welcome_s']} s, acks {v['acks_s']} s (flooder: {st})")
    if sa["pongs"] == 0:
        problems.append(f"ping flood: no pong came back while it lasted: the daemon kept reading that socket "
                        f"and wrote nothing ({sa})")
    if not (sb["closed"] or sb["stalled"]):
        problems.append(f"silent flood: the daemon neither stopped reading nor closed a client that never "
                        f"reads ({sb['bytes']} bytes of pings taken): {sb}")
    if rss_b - rss0 > 32 * 1024 and not sanitized(pid):
        problems.append(f"silent flood: daemon RSS grew {rss_b - rss0} KiB while a client that never reads "
                        f"sent {sb['bytes']} bytes of pings (pongs queued without bound?) ({sb})")

    # The stalled ones are closed within the configured timeouts.
    watcher.join()
    cp, ch = watcher.closed["partial"], watcher.closed["half"]
    if len(cp) < 25:
        problems.append(f"{25 - len(cp)} of 25 partial handshakes never closed")
    elif max(cp) > bound_p:
        problems.append(f"partial handshakes closed after up to {max(cp):.2f}s (idle_timeout {IDLE_TIMEOUT_S}s)")
    if len(ch) < 25:
        problems.append(f"{25 - len(ch)} of 25 half frames never closed")
    elif max(ch) > bound_h:
        problems.append(f"half frames closed after up to {max(ch):.2f}s (ping_interval {PING_INTERVAL_S}s)")

    # The normal visitors, idle since but answering pings, are still served.
    for v in (va, vb):
        c = v.get("client")
        if c is not None:
            try:
                c.message("after the attack", f"after-{id(c)}")
            except AssertionError as e:
                problems.append(f"a normal visitor was dropped: {e}")
    print(f"hostile: visitor during ping flood {({k: v for k, v in va.items() if k != 'client'})}, "
          f"during silent flood {({k: v for k, v in vb.items() if k != 'client'})}; floods {sa} {sb}; "
          f"RSS +{rss_b - rss0} KiB; partial closed after {min(cp, default=0):.2f}-{max(cp, default=0):.2f}s, "
          f"half frames after {min(ch, default=0):.2f}-{max(ch, default=0):.2f}s")
    assert chat_daemon.alive(), "omnirouted died"
    assert not problems, "hostile clients affected the daemon:\n  " + "\n  ".join(problems)

    for x in list(clients):
        x.close()
    clients.clear()
    wait_until(lambda: open_fds(pid) <= fds0 + 2 or None, 5,
               what=f"daemon fds back to ~{fds0} (now {open_fds(pid)})")
    serving(chat_daemon)


def test_shutdown_closes_sockets_with_going_away(chat_daemon, clients):
    c = connect(clients, chat_daemon)
    c.hello()
    c.message("before restart", "g1")
    rc, took = chat_daemon.terminate()
    assert rc == 0, f"exit code {rc}"
    code, _ = c.wait_closed(2.0)
    assert code == 1001, f"close code {code} on shutdown"
