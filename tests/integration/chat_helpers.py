"""Helpers for the chat connector tests (issue 7): the daemon config
(connectors.chat), a raw RFC 6455 client on a plain socket (for what a
websocket library refuses to do: unmasked frames, reserved bits, a length
of 2^62, invalid UTF-8, half frames, never answering pings), a small
synchronous wrapper around Debian's python3-websockets (10.4, asyncio
"legacy" client) running on one background event loop, and readers for
what the daemon stored.

Contract: docs/connectors/chat.md. Spec: /work/spec/chat_ws_tests.md.
"""

import asyncio
import base64
import collections
import concurrent.futures
import hashlib
import hmac
import json
import os
import re
import socket
import struct
import threading
import time
import uuid
from pathlib import Path

import requests

from conftest import wait_until

try:  # the raw client works without it; ChatClient needs it
    import websockets
    import websockets.exceptions
except ImportError:  # pragma: no cover - reported by ChatClient.connect
    websockets = None

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SITE = "main"
ORIGIN = "https://www.example.com"
SITE2 = "shop"
ORIGIN2 = "https://shop.example.org"
CHAT_SECRET = "chat-session-secret-0123456789abcdef"
API_TOKEN = "chat-tests-helpdesk-token-" + "5e4f3a2b1c0d" * 2
AGENT = {"id": "ana", "name": "Ana Lima"}
MAX_MESSAGE = 4096          # the tests' connectors.chat.max_message (4KiB)
PING_INTERVAL_S = 1.0       # the tests' connectors.chat.ping_interval
IDLE_TIMEOUT_S = 2.0        # the tests' http.idle_timeout
WS_PATH = "/v1/chat/ws"

TOKEN_RE = re.compile(r"^v1\.([^.]+)\.(\d+)\.([0-9a-f]{64})$")
STREAM_ID_RE = re.compile(r"^\d+-\d+$")
ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
RFC3339_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")

# opcodes (RFC 6455 5.2)
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


# --------------------------------------------------------------------------
# config


def write_secret(d, name, value, suffix="\n"):
    f = Path(d) / name
    f.write_text(value + suffix)
    f.chmod(0o600)
    return f


def chat_section(secrets_dir, **over):
    """connectors.chat for the tests: 4KiB messages, 1 s pings, two sites
    (main: https://www.example.com, shop: https://shop.example.org)."""
    key = write_secret(secrets_dir, "chat.key", CHAT_SECRET)
    sec = {
        "session_secret_file": str(key),
        "session_ttl": "1h",
        "max_message": "4KiB",
        "ping_interval": "1s",
        "sites": [
            {"name": SITE, "origins": [ORIGIN, "http://localhost:8080"]},
            {"name": SITE2, "origins": [ORIGIN2]},
        ],
    }
    sec.update(over)
    return sec


def chat_config(cfg, secrets_dir, *, idle_timeout="2s", **chat_over):
    """cfg (conftest.base_config) plus connectors.chat, api.tokens (API_TOKEN),
    outbound, and one config agent `ana` (Ana Lima) serving `general`, the
    queue chat messages land in (default route)."""
    tok = write_secret(secrets_dir, "chat-helpdesk.token", API_TOKEN)
    cfg["http"]["idle_timeout"] = idle_timeout
    cfg["api"] = {"tokens": [{"name": "helpdesk", "token_file": str(tok)}]}
    cfg["outbound"] = {"give_up_after": "30s", "request_timeout": "5s"}
    cfg["agents"] = {"list": [{"id": AGENT["id"], "name": AGENT["name"],
                               "capacity": {"chat": 3}, "queues": ["general"]}]}
    cfg["connectors"]["chat"] = chat_section(secrets_dir, **chat_over)
    return cfg


# --------------------------------------------------------------------------
# HTTP side: replies, presence, what Redis holds


def bearer(token=API_TOKEN):
    return {"Authorization": f"Bearer {token}"}


def post_reply(daemon, conv, text="Thanks, we are on it.", *, agent_id=AGENT["id"], token=API_TOKEN,
               session=None, timeout=10):
    s = session or requests
    return s.post(daemon.url(f"/v1/conversations/{conv}/replies"),
                  data=json.dumps({"agent_id": agent_id, "text": text}, ensure_ascii=False).encode(),
                  headers={"Content-Type": "application/json", **bearer(token)}, timeout=timeout)


def accepted(resp):
    assert resp.status_code == 202, f"reply: expected 202, got {resp.status_code}: {resp.text!r}"
    j = resp.json()
    assert isinstance(j.get("reply_id"), str) and j["reply_id"], j
    return j["reply_id"]


def reply(daemon, conv, text, **kw):
    """POST a reply, assert 202; returns the reply id."""
    return accepted(post_reply(daemon, conv, text, **kw))


def presence(daemon, agent_id=AGENT["id"], status="online"):
    r = requests.post(daemon.url(f"/v1/agents/{agent_id}/presence"), json={"status": status},
                      headers=bearer(), timeout=5)
    assert r.status_code == 200, f"presence {status}: {r.status_code} {r.text!r}"
    return r.json()


def conv_log(rdb, conv):
    """[(stream id, fields, message dict)] of omr:conv:{C}:log."""
    out = []
    for eid, f in rdb.xrange(f"omr:conv:{{{conv}}}:log"):
        out.append((eid, f, json.loads(f["message"]) if f.get("message") else None))
    return out


def conv_hash(rdb, conv):
    return rdb.hgetall(f"omr:conv:{{{conv}}}")


def wait_log_out(rdb, conv, n, timeout=5.0):
    """Wait until the conversation log holds >= n `out` entries; return them."""
    def outs():
        o = [e for e in conv_log(rdb, conv) if e[1].get("direction") == "out"]
        return o if len(o) >= n else None
    return wait_until(outs, timeout, what=f"{n} out entries in the log of {conv}")


def sid(s):
    """A stream id as a sortable tuple."""
    a, b = s.split("-")
    return int(a), int(b)


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def sanitized(pid):
    """True when the daemon runs with AddressSanitizer (its RSS then holds
    the allocator's quarantine and redzones: RSS bounds do not apply)."""
    try:
        if "asan" in Path(f"/proc/{pid}/maps").read_text():
            return True
        return b"__asan_init" in Path(f"/proc/{pid}/exe").read_bytes()
    except OSError:
        return False


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


# --------------------------------------------------------------------------
# raw websocket client


def sign_token(visitor, expiry_ms, secret=CHAT_SECRET):
    """A session token as the contract writes it: v1.<visitor>.<expiry ms>.
    <hex HMAC-SHA256 over everything before the last dot, keyed with the
    session_secret_file content without its trailing newline>."""
    body = f"v1.{visitor}.{int(expiry_ms)}"
    return body + "." + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()


def ws_key():
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def mask_bytes(data, key):
    if not data:
        return b""
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", *, fin=True, rsv=0, mask=True, mask_key=None, length=None):
    """One frame as bytes. length: the announced payload length (default
    len(payload)); rsv: the three reserved bits as an int 0..7."""
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload) if length is None else length
    mb = 0x80 if mask else 0
    if n < 126:
        hdr = bytes([b0, mb | n])
    elif n < 65536:
        hdr = bytes([b0, mb | 126]) + struct.pack("!H", n)
    else:
        hdr = bytes([b0, mb | 127]) + struct.pack("!Q", n)
    if mask:
        key = mask_key if mask_key is not None else os.urandom(4)
        return hdr + key + mask_bytes(payload, key)
    return hdr + payload


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class HttpAnswer:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (last wins)
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"<HTTP {self.status} {self.reason} {self.headers} {self.body[:300]!r}>"


class Frame:
    def __init__(self, fin, rsv, opcode, masked, payload):
        self.fin, self.rsv, self.opcode, self.masked, self.payload = fin, rsv, opcode, masked, payload

    @property
    def close_code(self):
        if self.opcode != CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    def json(self):
        return json.loads(self.payload.decode("utf-8"))

    def __repr__(self):
        return f"<Frame op={self.opcode:#x} fin={self.fin} rsv={self.rsv} masked={self.masked} {self.payload[:120]!r}>"


class Eof(Exception):
    pass


class RawWS:
    """A websocket client on a plain socket that does exactly what it is
    told. Frames the server sends must be unmasked (checked)."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.reset = False
        self.frames = []  # every frame received, in order

    # http ----------------------------------------------------------------
    @staticmethod
    def request(port, *, path=f"{WS_PATH}?site={SITE}", method="GET", origin=ORIGIN, key=None,
                version="13", upgrade="websocket", connection="Upgrade", extra=(), omit=()):
        """The handshake request as bytes. None for a header leaves it out."""
        key = ws_key() if key is None else key
        h = [("Host", f"127.0.0.1:{port}"), ("Upgrade", upgrade), ("Connection", connection),
             ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version), ("Origin", origin)]
        h = [(k, v) for k, v in h if v is not None and k not in omit] + list(extra)
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h) + "\r\n"
        return head.encode("latin-1"), key

    def handshake(self, **kw):
        """Send a handshake (RawWS.request arguments), read the answer head
        (and body when it has Content-Length). Returns (HttpAnswer, key)."""
        req, key = self.request(self.port, **kw)
        self.sock.sendall(req)
        return self.read_http(), key

    def upgrade(self, **kw):
        """A handshake that must succeed (101 + the right accept)."""
        ans, key = self.handshake(**kw)
        assert ans.status == 101, f"handshake refused: {ans!r}"
        assert ans.headers.get("sec-websocket-accept") == accept_for(key), ans.headers
        return ans

    def _fill(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
            self.eof = True
            raise Eof("connection reset")
        if not d:
            self.eof = True
            raise Eof("eof")
        self.buf += d
        return True

    def read_http(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if time.monotonic() > deadline:
                raise AssertionError(f"no HTTP answer within {timeout}s (got {self.buf[:200]!r})")
            self._fill(deadline - time.monotonic())
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"^HTTP/1\.[01] (\d{3}) ?(.*)$", lines[0])
        assert m, f"bad status line {lines[0]!r}"
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        status = int(m.group(1))
        body = b""
        if status != 101 and "content-length" in headers:
            n = int(headers["content-length"])
            while len(self.buf) < n:
                if time.monotonic() > deadline:
                    raise AssertionError(f"HTTP body short: {len(self.buf)} of {n}")
                self._fill(deadline - time.monotonic())
            body, self.buf = self.buf[:n], self.buf[n:]
        return HttpAnswer(status, m.group(2), headers, body)

    # frames --------------------------------------------------------------
    def send(self, data):
        """sendall; False when the daemon already closed (EPIPE / reset)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.reset = True
            return False

    def send_frame(self, opcode, payload=b"", **kw):
        return self.send(frame(opcode, payload, **kw))

    def send_json(self, obj):
        return self.send_frame(TEXT, json.dumps(obj, ensure_ascii=False).encode())

    def recv_frame(self, timeout=3.0):
        """The next frame, or None on timeout; raises Eof at end of stream."""
        deadline = time.monotonic() + timeout
        while True:
            f = self._parse()
            if f is not None:
                self.frames.append(f)
                return f
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._fill(left)

    def _parse(self):
        b = self.buf
        if len(b) < 2:
            return None
        fin, rsv, op = b[0] >> 7, (b[0] >> 4) & 7, b[0] & 0xF
        masked, n = b[1] >> 7, b[1] & 0x7F
        i = 2
        if n == 126:
            if len(b) < 4:
                return None
            n, i = struct.unpack("!H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, i = struct.unpack("!Q", b[2:10])[0], 10
        key = None
        if masked:
            if len(b) < i + 4:
                return None
            key, i = b[i:i + 4], i + 4
        if len(b) < i + n:
            return None
        payload = b[i:i + n]
        if masked:
            payload = mask_bytes(payload, key)
        self.buf = b[i + n:]
        f = Frame(bool(fin), rsv, op, bool(masked), payload)
        assert not masked, f"the server sent a masked frame (RFC 6455 5.1 forbids it): {f!r}"
        return f

    def recv_json(self, timeout=3.0, *, pong=True):
        """The next text message as a dict (pings answered and skipped unless
        pong=False). Raises AssertionError on timeout, close or EOF."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                f = self.recv_frame(max(deadline - time.monotonic(), 0))
            except Eof as e:
                raise AssertionError(f"connection ended ({e}) while waiting for a message")
            if f is None:
                raise AssertionError(f"no message within {timeout}s")
            if f.opcode == PING:
                if pong:
                    self.send_frame(PONG, f.payload)
                continue
            if f.opcode == PONG:
                continue
            if f.opcode == CLOSE:
                raise AssertionError(f"closed by the daemon (code {f.close_code}) while waiting for a message: {f!r}")
            assert f.opcode == TEXT and f.fin, f"expected a whole text frame, got {f!r}"
            return f.json()

    def expect_json(self, type_, timeout=3.0):
        """Messages until one of `type_`; returns (that one, the others)."""
        deadline = time.monotonic() + timeout
        others = []
        while True:
            m = self.recv_json(max(deadline - time.monotonic(), 0.001))
            if m.get("type") == type_:
                return m, others
            others.append(m)

    def hello(self, **fields):
        self.send_json({"type": "hello", **fields})
        return self.expect_json("welcome")[0]

    def wait_close(self, timeout=3.0, *, answer=True, pong=False):
        """Read until the daemon closes. Returns (close code or None when no
        close frame came, seconds until the close frame or EOF, frames
        seen before it). After a close frame it answers with a close (like
        a client does) and expects EOF within 2 s."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        seen = []
        while True:
            try:
                f = self.recv_frame(max(deadline - time.monotonic(), 0))
            except Eof:
                return None, time.monotonic() - t0, seen
            if f is None:
                raise AssertionError(f"not closed within {timeout}s (frames: {seen!r})")
            if f.opcode == PING and pong:
                self.send_frame(PONG, f.payload)
            if f.opcode != CLOSE:
                seen.append(f)
                continue
            took = time.monotonic() - t0
            if answer:
                self.send_frame(CLOSE, f.payload[:2])
            end = time.monotonic() + 2.0
            try:
                while self.recv_frame(max(end - time.monotonic(), 0)) is not None:
                    pass
                raise AssertionError(f"close {f.close_code} sent but the TCP connection stayed open 2 s")
            except Eof:
                pass
            return f.close_code, took, seen

    def closed_by_peer(self, timeout=0.0):
        """True when the daemon has closed the connection (EOF / reset)."""
        if self.eof:
            return True
        try:
            while self.recv_frame(timeout) is not None:
                pass
        except Eof:
            return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def raw_upgraded(port, hello=True, **kw):
    """RawWS after a good handshake (and hello → welcome unless hello=False)."""
    ws = RawWS(port)
    ws.upgrade(**kw)
    if hello:
        w = ws.hello()
        assert w.get("type") == "welcome", w
        ws.welcome = w
    return ws


def handshake_answer(port, **kw):
    """One handshake on a fresh connection; returns the HttpAnswer."""
    ws = RawWS(port)
    try:
        ans, _ = ws.handshake(**kw)
        return ans
    finally:
        ws.close()


def assert_refused(ans, status, code):
    assert ans.status == status, f"expected {status} {code}, got {ans!r}"
    ctype = ans.headers.get("content-type", "")
    assert "json" in ctype, f"refusal Content-Type is {ctype!r}: {ans!r}"
    j = ans.json()
    assert j.get("error") == code, f"expected error {code!r}: {j!r}"
    assert isinstance(j.get("detail"), str) and j["detail"], f"no detail sentence: {j!r}"
    assert "sec-websocket-accept" not in ans.headers, ans.headers
    return j


# --------------------------------------------------------------------------
# python3-websockets client, synchronous wrapper


class _Loop:
    """One asyncio loop in a daemon thread for every ChatClient of the process."""

    _lock = threading.Lock()
    _inst = None

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="chat-ws-loop", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls):
        with cls._lock:
            if cls._inst is None:
                cls._inst = cls()
            return cls._inst

    def run(self, coro, timeout):
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError(f"websocket operation took more than {timeout}s")


class Closed(AssertionError):
    def __init__(self, code, reason):
        super().__init__(f"websocket closed: code {code} {reason!r}")
        self.code, self.reason = code, reason


def ws_url(port, site=SITE):
    return f"ws://127.0.0.1:{port}{WS_PATH}" + (f"?site={site}" if site is not None else "")


class ChatClient:
    """A visitor's socket through python3-websockets (it masks, pongs,
    reassembles, and follows the close handshake by itself). Received JSON
    messages are kept in order in `received`; `pending` holds those a
    recv/expect has not consumed."""

    def __init__(self, ws):
        self.ws = ws
        self.pending = collections.deque()
        self.received = []

    @classmethod
    def connect(cls, port, site=SITE, origin=ORIGIN, timeout=5.0, **kw):
        assert websockets is not None, "python3-websockets is not installed (apt-get install python3-websockets)"
        kw.setdefault("compression", None)
        kw.setdefault("ping_interval", None)   # the client never pings by itself; it answers pings
        kw.setdefault("close_timeout", 2)
        kw.setdefault("max_size", 2 ** 22)

        async def go():
            return await websockets.connect(ws_url(port, site), origin=origin, open_timeout=timeout, **kw)
        return cls(_Loop.get().run(go(), timeout + 1))

    def _run(self, coro, timeout):
        return _Loop.get().run(coro, timeout)

    def _recv_one(self, timeout):
        async def go():
            try:
                return await asyncio.wait_for(self.ws.recv(), timeout)
            except asyncio.TimeoutError:
                return None
            except websockets.exceptions.ConnectionClosed as e:
                return e
        r = self._run(go(), timeout + 2)
        if isinstance(r, websockets.exceptions.ConnectionClosed):
            raise Closed(self.ws.close_code, self.ws.close_reason)
        if r is None:
            return None
        assert isinstance(r, str), f"the daemon sent a binary message: {r[:100]!r}"
        m = json.loads(r)
        assert isinstance(m, dict) and isinstance(m.get("type"), str), f"not a typed JSON object: {r!r}"
        self.received.append(m)
        return m

    def recv(self, timeout=3.0):
        """The next message (dict); AssertionError after timeout."""
        if self.pending:
            return self.pending.popleft()
        m = self._recv_one(timeout)
        if m is None:
            raise AssertionError(f"no message within {timeout}s")
        return m

    def expect(self, type_, timeout=3.0, match=None):
        """The first message of `type_` (and match(m) true), searching what
        is pending first; the others stay pending, in order."""
        for i, m in enumerate(self.pending):
            if m.get("type") == type_ and (match is None or match(m)):
                del self.pending[i]
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            m = self._recv_one(max(left, 0.001)) if left > 0 else None
            if m is None:
                raise AssertionError(f"no {type_!r} message within {timeout}s "
                                     f"(pending: {list(self.pending)!r})")
            if m.get("type") == type_ and (match is None or match(m)):
                return m
            self.pending.append(m)

    def drain(self, quiet=0.4, limit=5.0):
        """Every message until none came for `quiet` seconds (pending first)."""
        out = list(self.pending)
        self.pending.clear()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            m = self._recv_one(quiet)
            if m is None:
                break
            out.append(m)
        return out

    def no_message(self, wait=0.3):
        """Assert nothing arrives within `wait` seconds."""
        assert not self.pending, list(self.pending)
        m = self._recv_one(wait)
        assert m is None, f"unexpected message: {m!r}"

    def send_json(self, obj):
        self.send(json.dumps(obj, ensure_ascii=False))

    def send(self, data):
        """str → text, bytes → binary, list of str → one fragmented text message."""
        async def go():
            await self.ws.send(data)
        self._run(go(), 5)

    def hello(self, **fields):
        self.send_json({"type": "hello", **fields})
        return self.expect("welcome")

    def message(self, text, client_id=None, timeout=3.0):
        """Send a message and return its ack."""
        client_id = client_id or f"c-{uuid.uuid4().hex[:12]}"
        self.send_json({"type": "message", "client_id": client_id, "text": text})
        return self.expect("ack", timeout, match=lambda m: m.get("client_id") == client_id)

    def ping(self, data=b"", timeout=3.0):
        """Ping and wait for the pong; returns the round trip in seconds."""
        async def go():
            t0 = time.monotonic()
            w = await self.ws.ping(data)
            await asyncio.wait_for(w, timeout)
            return time.monotonic() - t0
        return self._run(go(), timeout + 1)

    def wait_closed(self, timeout=5.0):
        """Wait until the daemon closed the socket; returns (code, reason)."""
        async def go():
            try:
                await asyncio.wait_for(self.ws.wait_closed(), timeout)
                return True
            except asyncio.TimeoutError:
                return False
        ok = self._run(go(), timeout + 2)
        assert ok, f"socket still open after {timeout}s"
        return self.ws.close_code, self.ws.close_reason

    @property
    def open(self):
        return self.ws.open

    def close(self, code=1000):
        """Close handshake from our side; returns the daemon's close code."""
        async def go():
            await self.ws.close(code)
        try:
            self._run(go(), 5)
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
        return self.ws.close_code


def send_expect_close(port, data, timeout=3.0, **kw):
    """A fresh ChatClient sends `data` (after hello unless kw hello=False);
    returns the close code the daemon used."""
    hello = kw.pop("hello", True)
    c = ChatClient.connect(port, **kw)
    try:
        if hello:
            c.hello()
        c.send(data)
        code, _ = c.wait_closed(timeout)
        return code
    finally:
        c.close()


def check_message(m, *, direction, text=None):
    """Shape of a server `message`."""
    assert m.get("type") == "message", m
    assert m.get("direction") == direction, m
    assert isinstance(m.get("id"), str) and STREAM_ID_RE.match(m["id"]), f"id is not a stream id: {m!r}"
    assert isinstance(m.get("at"), str) and RFC3339_RE.match(m["at"]), f"at is not RFC 3339: {m!r}"
    if text is not None:
        assert m.get("text") == text, m
    if direction == "out":
        assert isinstance(m.get("agent"), dict) and m["agent"].get("id"), m
    return m



# --------------------------------------------------------------------------
# ping flooders, run as child processes (no GIL shared with the test):
#   /usr/bin/python3 chat_helpers.py flood PORT SECONDS reading|silent
# Each connects (handshake + hello), prints "ready", floods masked pings for
# SECONDS (or until the daemon stops reading / closes), then prints one JSON
# line of figures. "reading" reads its pongs on a thread; "silent" never
# reads anything and stops after FLOOD_SILENT_CAP bytes.

FLOOD_SILENT_CAP = 64 << 20


def flood_main(port, seconds, mode):
    import sys
    ws = raw_upgraded(port)
    stats = {"mode": mode, "pings": 0, "bytes": 0, "pongs": 0, "closed": False, "stalled": False}
    stop = threading.Event()
    if mode == "reading":
        batch = b"".join(frame(PING, b"%06d" % i) for i in range(500))
        n_in_batch = 500

        def reader():
            try:
                while not stop.is_set():
                    f = ws.recv_frame(0.2)
                    if f is not None and f.opcode == PONG:
                        stats["pongs"] += 1
            except (Eof, OSError, AssertionError):
                stats["closed"] = True
        t = threading.Thread(target=reader, daemon=True)
        t.start()
    else:
        batch = b"".join(frame(PING, b"z" * 125) for _ in range(500))
        n_in_batch = 500
    print("ready", flush=True)
    ws.sock.settimeout(1.0)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            if mode == "silent" and stats["bytes"] >= FLOOD_SILENT_CAP:
                break
            ws.sock.sendall(batch)
            stats["pings"] += n_in_batch
            stats["bytes"] += len(batch)
    except socket.timeout:
        stats["stalled"] = True      # the daemon stopped reading us: backpressure
    except OSError:
        stats["closed"] = True
    stop.set()
    if mode == "reading":
        t.join(2)
    print(json.dumps(stats), flush=True)
    ws.close()
    sys.exit(0)


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 5 and sys.argv[1] == "flood":
        flood_main(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
    else:
        sys.exit("usage: chat_helpers.py flood PORT SECONDS reading|silent")
