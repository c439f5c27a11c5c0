"""Helpers for the agents' tools notification tests (test_notify.py): a fake
webhook receiver with scripted answers, a real SMTP server (aiosmtpd), the
config (agents, push queues, notify section), a small agents API client and
readers for omr:events / omr:notify:<id>.

Spec: /work/spec/notify.md, /work/spec/routing-behaviour.md."""

import copy
import email
import email.policy
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from conftest import free_port, payload, uid, wait_until

TOKEN = "notify-tests-token-" + "a1b2c3d4e5f6" * 2
WEBHOOK_SECRET = "notify-webhook-secret-0123456789"

# --------------------------------------------------------------------------
# a webhook receiver


class Hit:
    """One request the receiver got."""

    def __init__(self, path, headers, body, status, t):
        self.path = path
        self.name = path.rsplit("/", 1)[-1]
        self.headers = headers  # lower-cased names
        self.body = body        # raw bytes
        self.status = status    # what we answered
        self.t = t              # time.monotonic()

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def delivery(self):
        return self.headers.get("x-omniroute-delivery")

    @property
    def event(self):
        return self.headers.get("x-omniroute-event")

    def __repr__(self):
        return (f"Hit({self.path} -> {self.status} delivery={self.delivery} "
                f"event={self.event} body={self.body[:200]!r})")


class Receiver:
    """HTTP server on 127.0.0.1:<port>; POST /hook/<name> is recorded and
    answered from that name's script (list of (status, headers)), then 200."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.lock = threading.Lock()
        self._hits = []
        self._scripts = {}
        self.arrivals = []  # (name, delivery id, t) as requests come in, before any delay
        self.server = None
        self.thread = None

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/hook/{name}"

    def script(self, name, *answers):
        """answers: status, (status, {header: value}) or (status, headers, delay s)."""
        norm = []
        for a in answers:
            a = a if isinstance(a, tuple) else (a,)
            norm.append((a[0], a[1] if len(a) > 1 else {}, a[2] if len(a) > 2 else 0))
        with self.lock:
            self._scripts[name] = norm

    def _answer(self, name):
        with self.lock:
            s = self._scripts.get(name)
            if s:
                return s.pop(0)
        return 200, {}, 0

    def _record(self, hit):
        with self.lock:
            self._hits.append(hit)

    def start(self):
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                t0 = time.monotonic()
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                name = self.path.rsplit("/", 1)[-1]
                status, hdrs, delay = outer._answer(name)
                with outer.lock:
                    outer.arrivals.append((name, self.headers.get("X-Omniroute-Delivery"), t0))
                if delay:
                    time.sleep(delay)
                outer._record(Hit(self.path, {k.lower(): v for k, v in self.headers.items()},
                                  body, status, t0))
                out = b'{"ok":true}' if status < 300 else b'{"error":"scripted"}'
                self.send_response(status)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(out)

        class S(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = S(("127.0.0.1", self.port), H)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
            self.server = None

    def hits(self, name=None):
        with self.lock:
            return [h for h in self._hits if name is None or h.name == name]

    def wait_hits(self, name, n, timeout=5.0, pred=None):
        def enough():
            hs = [h for h in self.hits(name) if pred is None or pred(h)]
            return hs if len(hs) >= n else None
        return wait_until(enough, timeout, interval=0.02, what=f"{n} request(s) to /hook/{name}")


def verify_signature(hit, secret=WEBHOOK_SECRET):
    ts = hit.headers["x-omniroute-timestamp"]
    want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + hit.body,
                                hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, hit.headers.get("x-omniroute-signature", ""))


# --------------------------------------------------------------------------
# a real SMTP server


class Mail:
    def __init__(self, mail_from, rcpt_tos, content, t):
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.content = content  # raw bytes as received
        self.msg = email.message_from_bytes(content, policy=email.policy.default)
        self.t = t

    @property
    def delivery(self):
        return self.msg["X-Omniroute-Delivery"]

    def __repr__(self):
        return f"Mail(to={self.rcpt_tos} subject={self.msg['Subject']!r} delivery={self.delivery})"


class SmtpServer:
    """aiosmtpd on 127.0.0.1:<port>. reject_rcpt: addresses answered with
    550 at RCPT; rcpt_script: {address: [reply, ...]} answers to that
    address's RCPT TO, one per attempt, then 250; reject_data: the reply
    to every DATA (e.g. "550 ...")."""

    def __init__(self, port=None, reject_rcpt=(), reject_data=None, rcpt_script=None):
        self.port = port or free_port()
        self.reject_rcpt = set(reject_rcpt)
        self.rcpt_script = {k: list(v) for k, v in (rcpt_script or {}).items()}
        self.data_commands = 0  # DATA commands seen (accepted or not)
        self.reject_data = reject_data
        self.lock = threading.Lock()
        self._mails = []
        self.rejected = []  # (stage, address or rcpts)
        self.controller = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        from aiosmtpd.controller import Controller
        outer = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address in outer.reject_rcpt:
                    with outer.lock:
                        outer.rejected.append(("rcpt", address))
                    return "550 5.1.1 No such user here"
                with outer.lock:
                    script = outer.rcpt_script.get(address)
                    reply = script.pop(0) if script else None
                    if reply:
                        outer.rejected.append(("rcpt", address, reply))
                if reply:
                    return reply
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                with outer.lock:
                    outer.data_commands += 1
                if outer.reject_data:
                    with outer.lock:
                        outer.rejected.append(("data", list(envelope.rcpt_tos)))
                    return outer.reject_data
                with outer.lock:
                    outer._mails.append(Mail(envelope.mail_from, envelope.rcpt_tos,
                                             envelope.original_content or envelope.content,
                                             time.monotonic()))
                return "250 Message accepted for delivery"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def mails(self, to=None):
        with self.lock:
            return [m for m in self._mails if to is None or to in m.rcpt_tos]

    def wait_mails(self, n, to=None, timeout=5.0):
        def enough():
            ms = self.mails(to)
            return ms if len(ms) >= n else None
        return wait_until(enough, timeout, interval=0.02, what=f"{n} mail(s) to {to or 'anyone'}")


# --------------------------------------------------------------------------
# config

AGENTS = {
    # id: (name, email, teams, queues)
    "ana": ("Ana Lima", "ana@example.com", ["tier1"], ["q_ana", "offers"]),
    "bob": ("Bob Stone", "bob@example.com", ["tier2", "billing"], ["q_bob"]),
    "cy": ("Cy Noemail", None, ["tier1"], ["q_cy"]),
}

# A message whose text contains the keyword goes to that queue.
KEYWORD = {"q_ana": "ticketana", "q_bob": "ticketbob", "q_cy": "ticketcy", "offers": "offerana"}


def agent_entries(ids=None):
    out = []
    for id, (name, mail, teams, queues) in AGENTS.items():
        if ids is not None and id not in ids:
            continue
        a = {"id": id, "name": name}
        if mail:
            a["email"] = mail
        a["capacity"] = {'"*"': 20}
        a["queues"] = list(queues)
        a["teams"] = list(teams)
        out.append(a)
    return out


def notify_config(cfg, tmp_path, notify=None, *, offer_timeout="30s"):
    """cfg (from make_config) with an API token, the agents above, push
    queues q_ana / q_bob / q_cy (offer_timeout 0: assigned directly) and
    offers (offer_timeout > 0), keyword rules, and `notify`."""
    cfg = copy.deepcopy(cfg)
    f = tmp_path / "notify-api.token"
    f.write_text(TOKEN + "\n")
    f.chmod(0o600)
    cfg["api"] = {"tokens": [{"name": "tests", "token_file": str(f)}]}
    queues = {q: {"mode": "push", "offer_timeout": "0"} for q in ("q_ana", "q_bob", "q_cy")}
    queues["offers"] = {"mode": "push", "offer_timeout": offer_timeout}
    cfg["routing"] = {
        "default_queue": "q_ana",
        "default_priority": "normal",
        "queues": queues,
        "rules": [{"name": f"to-{q}", "keywords": [kw], "queue": q} for q, kw in KEYWORD.items()],
    }
    cfg["agents"] = {"heartbeat_timeout": "60s", "list": agent_entries()}
    if notify is not None:
        cfg["notify"] = notify
    return cfg


def secret_file(tmp_path, secret=WEBHOOK_SECRET, name="webhook.secret"):
    f = tmp_path / name
    f.write_text(secret + "\n")
    f.chmod(0o600)
    return str(f)


def second_daemon_config(cfg):
    cfg2 = copy.deepcopy(cfg)
    cfg2["http"]["listen"] = f"127.0.0.1:{free_port()}"
    return cfg2


# --------------------------------------------------------------------------
# the agents API and customers


class Api:
    def __init__(self, daemon, token=TOKEN):
        self.d = daemon
        self.s = requests.Session()
        self.h = {"Authorization": f"Bearer {token}"}

    def call(self, method, path, body=None):
        return self.s.request(method, self.d.url(path), json=body, headers=self.h, timeout=10)

    def online(self, *ids):
        for id in ids:
            r = self.call("POST", f"/v1/agents/{id}/presence", {"status": "online"})
            assert r.status_code == 200, f"presence {id}: {r.status_code} {r.text}"

    def act(self, action, conv, agent_id, **body):
        b = {"agent_id": agent_id}
        b.update(body)
        return self.call("POST", f"/v1/conversations/{conv}/{action}", b)


def post_message(daemon, queue, *, customer_name="Zoë Q", handle="+15550001111", channel="chat",
                 text=None):
    """A customer message routed to `queue`; returns the conversation id."""
    p = payload(from_={"id": uid("cust"), "name": customer_name, "handle": handle},
                channel=channel, text=text or f"hello, {KEYWORD[queue]} please help")
    r = daemon.post("shop", p)
    assert r.status_code == 200, f"inbound refused: {r.status_code} {r.text!r}"
    j = r.json()
    assert j["queue"] == queue, j
    return j["conversation_id"]


# --------------------------------------------------------------------------
# Redis side


def all_events(rdb):
    return rdb.xrange("omr:events", "-", "+")


def events(rdb, type_=None, conv=None):
    return [(eid, f) for eid, f in all_events(rdb)
            if (type_ is None or f.get("type") == type_)
            and (conv is None or f.get("conversation_id") == conv)]


def wait_event(rdb, type_, conv=None, timeout=5.0, n=1):
    """(stream id, fields) of the n-th matching event."""
    def found():
        ev = events(rdb, type_, conv)
        return ev[n - 1] if len(ev) >= n else None
    return wait_until(found, timeout, what=f"event {type_} conv={conv}")


def delivery(rdb, did):
    return rdb.hgetall(f"omr:notify:{did}")


def wait_delivery(rdb, did, status, timeout=5.0):
    statuses = {status} if isinstance(status, str) else set(status)

    def ok():
        h = delivery(rdb, did)
        return h if h.get("status") in statuses else None
    return wait_until(ok, timeout, what=f"omr:notify:{did} status in {sorted(statuses)} "
                      f"(now {delivery(rdb, did)!r})")


def deliveries(rdb):
    """{delivery id: hash} of every omr:notify:<id> (not the due zset)."""
    out = {}
    for k in rdb.scan_iter(match="omr:notify:*", count=1000):
        if k == "omr:notify:due":
            continue
        out[k[len("omr:notify:"):]] = rdb.hgetall(k)
    return out


def quiet_for(check, seconds):
    """Assert check() stays true for `seconds` (for 'nothing more happens')."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), "condition broke during the quiet period"
        time.sleep(0.05)
    assert check()
