"""SMS test support: provider signatures from the official SDKs (through
tests/js/sign.js), a fake Twilio / Vonage send API, and request helpers.

Imported by conftest.py (which defines the fixtures) and by the tests.
"""

import base64
import fcntl
import itertools
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections import deque
from pathlib import Path

import requests

from fake_http import FakeHTTP, send_answer, wait_for

HERE = Path(__file__).resolve().parent
JS_DIR = HERE.parent / "js"
NODE = shutil.which("node") or "node"
NPM = shutil.which("npm") or "npm"

TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

# --------------------------------------------------------------------------
# accounts of the generated config (see conftest.sms_config)

PUBLIC_URL = "https://support.example.com"
TWILIO = {
    "main": {
        "account_sid": "AC" + "0123456789abcdef" * 2,
        "auth_token": "twilio-main-auth-token-5f3a9c",
        "public_url": PUBLIC_URL,
        "from": "+15005550006",
    },
    # A public URL with a port and a path prefix (a reverse proxy that
    # strips /omr): the signed URL is public_url + request path.
    "alt": {
        "account_sid": "AC" + "fedcba9876543210" * 2,
        "auth_token": "twilio-alt-auth-token-77e1",
        "public_url": "https://sms.example.net:8443/omr",
        "from": "+15005550007",
    },
}
VONAGE = {
    "main": {
        "api_key": "abcd1234",
        "api_secret": "vonage-main-api-secret",
        "signature_secret": "vonage-main-signature-secret",
        "signature_method": "md5hash",
        "from": "447700900000",
    },
    "hmac": {
        "api_key": "efgh5678",
        "api_secret": "vonage-hmac-api-secret",
        "signature_secret": "vonage-hmac-signature-secret",
        "signature_method": "sha256",
        "from": "447700900001",
    },
    # No signature secret: unsigned webhooks are accepted.
    "open": {
        "api_key": "ijkl9012",
        "api_secret": "vonage-open-api-secret",
        "from": "447700900002",
    },
}
API_TOKENS = {
    "helpdesk": "helpdesk-token-" + "a1b2c3d4e5f6" * 3,
    "crm": "crm-token-" + "9f8e7d6c5b4a" * 3,
}
HELPDESK = API_TOKENS["helpdesk"]


# --------------------------------------------------------------------------
# signatures (official SDKs via node)


def ensure_node_modules():
    """npm ci in tests/js once, when its node_modules is missing (the build
    scripts normally do this)."""
    marker = JS_DIR / "node_modules" / ".package-lock.json"
    if marker.exists() and (JS_DIR / "node_modules" / "twilio").is_dir():
        return
    lock_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"omr-tests-js-npm-ci.{os.getuid()}.lock"
    with open(lock_path, "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if marker.exists() and (JS_DIR / "node_modules" / "twilio").is_dir():
            return
        r = subprocess.run([NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"npm ci in {JS_DIR} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")


class Signer:
    """One `node tests/js/sign.js --lines` co-process for the session."""

    def __init__(self):
        self.proc = None
        self.lock = threading.Lock()
        self.cache = {}

    def _start(self):
        ensure_node_modules()
        self.proc = subprocess.Popen([NODE, str(JS_DIR / "sign.js"), "--lines"], cwd=JS_DIR,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)

    def sign(self, req):
        key = json.dumps(req, sort_keys=True)
        with self.lock:
            if key in self.cache:
                return self.cache[key]
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read() if self.proc.poll() is not None else ""
                raise RuntimeError(f"sign.js died: {err}")
            ans = json.loads(line)
            if "error" in ans:
                raise RuntimeError(ans["error"])
            self.cache[key] = ans["sig"]
            return ans["sig"]

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


SIGNER = Signer()


def twilio_signature(url, params, token=None, account="main"):
    """X-Twilio-Signature by twilio.getExpectedTwilioSignature."""
    token = TWILIO[account]["auth_token"] if token is None else token
    return SIGNER.sign({"provider": "twilio", "token": token, "url": url, "params": params})


def vonage_signature(params, secret=None, method=None, account="main"):
    """The `sig` value for params (sig itself excluded); see tests/js/sign.js."""
    acct = VONAGE[account]
    return SIGNER.sign({"provider": "vonage",
                        "secret": acct["signature_secret"] if secret is None else secret,
                        "method": method or acct["signature_method"],
                        "params": {k: v for k, v in params.items() if k != "sig"}})


# --------------------------------------------------------------------------
# webhook requests

_seq = itertools.count(1)


def twilio_sid(prefix="SM"):
    return prefix + secrets.token_hex(16)


def twilio_params(account="main", **over):
    """An inbound SMS as Twilio posts it. Keyword arguments replace fields
    (None removes one)."""
    acct = TWILIO[account]
    sid = twilio_sid()
    p = {
        "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0",
        "ToCity": "", "FromZip": "94105", "SmsSid": sid, "FromState": "CA", "SmsStatus": "received",
        "FromCity": "SAN FRANCISCO", "Body": "Hello from a phone", "FromCountry": "US",
        "To": acct["from"], "ToZip": "", "NumSegments": "1", "MessageSid": sid,
        "AccountSid": acct["account_sid"], "From": "+14155550100", "ApiVersion": "2010-04-01",
    }
    for k, v in over.items():
        if v is None:
            p.pop(k, None)
        else:
            p[k] = v
    if "MessageSid" in over and over["MessageSid"]:
        p["SmsMessageSid"] = p["SmsSid"] = over["MessageSid"]
    return p


def twilio_url(account="main", path=None, query=""):
    path = path or f"/v1/sms/twilio/{account}"
    return TWILIO.get(account, TWILIO["main"])["public_url"] + path + (("?" + query) if query else "")


def post_twilio(daemon, params, *, account="main", path=None, query="", sign=True, sign_url=None,
                token=None, body=None, headers=None, timeout=10):
    """POST a form to /v1/sms/twilio/<account>[/...] signed for
    public_url + path (+ ?query), as Twilio does. `body` replaces the
    encoded form (after signing) for tamper tests."""
    path = path or f"/v1/sms/twilio/{account}"
    raw = urllib.parse.urlencode(params).encode() if body is None else body
    h = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
         "User-Agent": "TwilioProxy/1.1", "I-Twilio-Idempotency-Token": secrets.token_hex(8)}
    if sign:
        url = sign_url if sign_url is not None else (
            TWILIO.get(account, TWILIO["main"])["public_url"] + path + (("?" + query) if query else ""))
        h["X-Twilio-Signature"] = twilio_signature(url, params, token=token,
                                                   account=account if account in TWILIO else "main")
    if headers:
        h.update(headers)
    full = path + (("?" + query) if query else "")
    return requests.post(daemon.url(full), data=raw, headers=h, timeout=timeout)


def vonage_params(account="main", **over):
    """An inbound SMS as Vonage sends it (all values strings), with a
    current `timestamp` and a nonce. None removes a field."""
    acct = VONAGE[account]
    n = next(_seq)
    p = {
        "msisdn": "447700900123",
        "to": acct["from"],
        "messageId": "1" + secrets.token_hex(7).upper() + f"{n:02X}",
        "text": "Hello from Vonage",
        "type": "text",
        "keyword": "HELLO",
        "api-key": acct["api_key"],
        "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "timestamp": str(int(time.time())),
        "nonce": f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}",
    }
    for k, v in over.items():
        if v is None:
            p.pop(k, None)
        else:
            p[k] = v
    return p


def vonage_signed(params, account="main", secret=None, method=None):
    p = dict(params)
    p["sig"] = vonage_signature(p, secret=secret, method=method, account=account)
    return p


def send_vonage(daemon, params, *, account="main", how="json", timeout=10):
    """Deliver params to /v1/sms/vonage/<account> as Vonage would: how is
    "json" (POST application/json), "form" (POST urlencoded) or "get"."""
    path = f"/v1/sms/vonage/{account}"
    if how == "json":
        return requests.post(daemon.url(path), data=json.dumps(params).encode(),
                             headers={"Content-Type": "application/json"}, timeout=timeout)
    if how == "form":
        return requests.post(daemon.url(path), data=urllib.parse.urlencode(params).encode(),
                             headers={"Content-Type": "application/x-www-form-urlencoded"},
                             timeout=timeout)
    if how == "get":
        return requests.get(daemon.url(path + "?" + urllib.parse.urlencode(params)), timeout=timeout)
    raise ValueError(how)


def assert_twiml_ok(resp):
    assert resp.status_code == 200, f"expected 200 TwiML, got {resp.status_code}: {resp.text!r}"
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "text/xml", f"Content-Type {ctype!r}, body {resp.text!r}"
    assert resp.text.strip() == TWIML_EMPTY, resp.text


def assert_vonage_ok(resp):
    assert resp.status_code == 200, f"expected 200, got {resp.status_code}: {resp.text!r}"
    assert resp.json() == {"status": "ok"}, resp.text


# --------------------------------------------------------------------------
# Redis-side lookups


_BAND_KEY = re.compile(r"^omr:queue:(.+):(urgent|high|normal|low)$")


def _message_of(fields):
    raw = fields.get("message", "")
    return json.loads(raw) if raw else None


def all_queue_messages(rdb):
    """[(queue, entry id, fields, message dict or None)] over every pull-queue
    band stream omr:queue:<queue>:<band>: one entry per work item (a
    conversation entering a queue), not per message."""
    out = []
    for key in sorted(rdb.scan_iter(match="omr:queue:*", count=1000)):
        m = _BAND_KEY.match(key)
        if not m:
            continue
        for eid, fields in rdb.xrange(key):
            out.append((m.group(1), eid, fields, _message_of(fields)))
    return out


def all_logged_messages(rdb):
    """[(conversation id, entry id, message dict)] of every inbound message
    in every conversation log omr:conv:{C}:log (first or follow-up)."""
    out = []
    for key in sorted(rdb.scan_iter(match="omr:conv:*:log", count=1000)):
        conv = key[len("omr:conv:{"):-len("}:log")]
        for eid, f in rdb.xrange(key):
            if f.get("direction") == "in":
                out.append((conv, eid, _message_of(f)))
    return out


def stored_by_external_id(rdb, external_id):
    """[(queue, fields, message dict)] for every stored inbound message with
    this external id, found in the conversation logs (where every message
    lands). queue: the conversation's queue; fields: the queue entry (work
    item) the message opened, None for a follow-up (which adds none)."""
    work = {}
    for q, _, f, m in all_queue_messages(rdb):
        if m is not None:
            work.setdefault(m["id"], []).append((q, f))
    out = []
    for conv, _, m in all_logged_messages(rdb):
        if m.get("external_id") != external_id:
            continue
        assert m["conversation_id"] == conv, (conv, m)
        queue = rdb.hget(conv_key(conv), "queue")
        items = work.get(m["id"], [])
        assert len(items) <= 1, f"message {m['id']} made {len(items)} queue entries: {items!r}"
        if items:
            assert items[0][0] == queue, f"work item in {items[0][0]}, conversation in {queue}"
        out.append((queue, items[0][1] if items else None, m))
    return out


def stored_one(rdb, external_id):
    found = stored_by_external_id(rdb, external_id)
    assert len(found) == 1, f"expected one stored message {external_id!r}, found {len(found)}: " \
                            f"{[m for _, _, m in found]}"
    return found[0]


def conv_key(conv_id):
    return f"omr:conv:{{{conv_id}}}"


def reply_key(conv_id, reply_id):
    return f"omr:conv:{{{conv_id}}}:reply:{reply_id}"


def log_entries(rdb, conv_id):
    return [(eid, f, json.loads(f["message"]) if "message" in f else None)
            for eid, f in rdb.xrange(conv_key(conv_id) + ":log")]


def events(rdb, type_=None):
    out = [f for _, f in rdb.xrange("omr:events")] if rdb.exists("omr:events") else []
    return [f for f in out if type_ is None or f.get("type") == type_]


# --------------------------------------------------------------------------
# replies API


def bearer(token=HELPDESK):
    return {"Authorization": f"Bearer {token}"}


def post_reply(daemon, conv_id, text="Thanks, we are on it.", *, agent_id="ana", token=HELPDESK,
               idempotency_key=None, body=None, headers=None, timeout=10):
    h = {"Content-Type": "application/json"}
    if token is not None:
        h.update(bearer(token))
    if headers:
        h.update(headers)
    if body is None:
        b = {"agent_id": agent_id, "text": text}
        if idempotency_key is not None:
            b["idempotency_key"] = idempotency_key
        body = json.dumps(b, ensure_ascii=False).encode()
    elif isinstance(body, dict):
        body = json.dumps(body, ensure_ascii=False).encode()
    return requests.post(daemon.url(f"/v1/conversations/{conv_id}/replies"), data=body, headers=h,
                         timeout=timeout)


def get_reply(daemon, conv_id, reply_id, token=HELPDESK):
    return requests.get(daemon.url(f"/v1/conversations/{conv_id}/replies/{reply_id}"),
                        headers=bearer(token) if token else {}, timeout=5)


def accepted_reply(resp):
    assert resp.status_code == 202, f"expected 202, got {resp.status_code}: {resp.text!r}"
    j = resp.json()
    assert isinstance(j.get("reply_id"), str) and j["reply_id"], j
    assert j.get("status") == "queued", j
    assert j.get("duplicate") is False, j
    return j["reply_id"]


def wait_reply_hash(rdb, conv_id, reply_id, statuses, timeout=5.0):
    """Poll the reply hash until its status is one of `statuses`; return it."""
    if isinstance(statuses, str):
        statuses = {statuses}
    deadline = time.monotonic() + timeout
    h = None
    while True:
        h = rdb.hgetall(reply_key(conv_id, reply_id))
        if h.get("status") in statuses:
            return h
        if time.monotonic() >= deadline:
            raise AssertionError(f"reply {reply_id} not {sorted(statuses)} within {timeout}s: {h!r}")
        time.sleep(0.02)


# --------------------------------------------------------------------------
# the fake provider


class Answer:
    """One scripted answer. body: dict (JSON), str/bytes, or None for the
    provider's success body. delay: seconds before answering."""

    def __init__(self, status=None, body=None, headers=None, delay=0.0):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.delay = delay

    def __repr__(self):
        return f"Answer({self.status}, {self.body!r}, {self.headers!r})"


OK = Answer()  # the provider's success answer


def http_error(status, body=None, retry_after=None):
    h = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if body is None:
        body = {"code": 20500, "message": "Internal Server Error", "status": status}
    return Answer(status, body, h)


def twilio_error(status, code, message):
    return Answer(status, {"code": code, "message": message, "more_info":
                           f"https://www.twilio.com/docs/errors/{code}", "status": status})


def vonage_status(status, error_text):
    """HTTP 200 whose messages[0].status is not "0"."""
    return Answer(200, {"message-count": "1", "messages": [{"status": str(status),
                                                            "error-text": error_text}]})


class Recorded:
    def __init__(self, provider, method, path, query, headers, body, answer_status, t):
        self.provider = provider
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers  # {lower-case name: value}
        self.body = body
        self.answer_status = answer_status
        self.t = t
        self.answer_body = None
        ctype = headers.get("content-type", "")
        self.form = {}
        if "x-www-form-urlencoded" in ctype or (body and ctype == ""):
            for k, v in urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
                self.form.setdefault(k, v)
            self.form_multi = urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                                    keep_blank_values=True)
        else:
            self.form_multi = {}

    @property
    def basic_auth(self):
        a = self.headers.get("authorization", "")
        if not a.lower().startswith("basic "):
            return None
        user, _, pw = base64.b64decode(a[6:].strip()).decode().partition(":")
        return user, pw

    @property
    def success(self):
        return self.answer_status is not None and 200 <= self.answer_status < 300 and \
            not getattr(self, "vonage_refused", False)

    def __repr__(self):
        return f"<{self.method} {self.path} -> {self.answer_status} form={self.form!r}>"


_TWILIO_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")


class FakeProvider(FakeHTTP):
    """Twilio's Messages API and Vonage's /sms/json on 127.0.0.1:<free port>
    (fake_http).

    script(provider, *answers): answers to give, in order, to the next
    requests for that provider ("twilio" | "vonage"); when the script is
    used up, `default[provider]` answers (None = success)."""

    def __init__(self):
        self.lock = threading.Condition()
        self.recorded = []  # answered requests, in answer order
        self.arrived = []  # requests as they arrive (before any scripted delay)
        self.scripts = {"twilio": deque(), "vonage": deque()}
        self.default = {"twilio": None, "vonage": None}
        self.start_http()

    # scripting --------------------------------------------------------------
    def script(self, provider, *answers):
        with self.lock:
            self.scripts[provider].extend(answers)

    # serving ----------------------------------------------------------------
    def _serve(self, h, body):
        parsed = urllib.parse.urlsplit(h.path)
        path, query = parsed.path, parsed.query
        headers = {k.lower(): v for k, v in h.headers.items()}
        m = _TWILIO_PATH.match(path)
        provider = "twilio" if m and h.command == "POST" else \
            "vonage" if path == "/sms/json" and h.command == "POST" else None
        with self.lock:
            if provider is None:
                answer = Answer(404, {"code": 20404, "message": "not found"})
            elif self.scripts[provider]:
                answer = self.scripts[provider].popleft()
            else:
                answer = self.default[provider] or OK
            rec = Recorded(provider, h.command, path, query, headers, body, None, time.monotonic())
            self.arrived.append(rec)
            self.lock.notify_all()
        if answer.delay:
            time.sleep(answer.delay)
        status, payload = self._render(provider, answer, rec)
        rec.answer_status = status
        rec.answer_body = payload
        if provider == "vonage" and isinstance(payload, dict):
            msgs = payload.get("messages") or [{}]
            rec.vonage_refused = msgs[0].get("status") != "0"
        data = payload if isinstance(payload, bytes) else \
            payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        with self.lock:
            self.recorded.append(rec)
            self.lock.notify_all()
        ctype = "application/json" if not isinstance(payload, (bytes, str)) else "text/plain"
        extra = dict(answer.headers)
        send_answer(h, status, {"Content-Type": extra.pop("Content-Type", ctype), **extra}, data)

    def _render(self, provider, answer, rec):
        if answer.status is not None and answer.body is not None:
            return answer.status, answer.body
        if provider == "twilio":
            sid = twilio_sid()
            return answer.status or 201, {
                "sid": sid, "status": "queued", "to": rec.form.get("To"), "from": rec.form.get("From"),
                "body": rec.form.get("Body"), "account_sid": _TWILIO_PATH.match(rec.path).group(1),
                "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
                "uri": f"{rec.path[:-5]}/{sid}.json", "error_code": None, "error_message": None,
            }
        if provider == "vonage":
            return answer.status or 200, {
                "message-count": "1",
                "messages": [{"to": rec.form.get("to"), "message-id": secrets.token_hex(8) + "-"
                              + secrets.token_hex(4), "status": "0", "remaining-balance": "3.14159",
                              "message-price": "0.03330000", "network": "23410"}],
            }
        return answer.status or 404, answer.body or {"error": "not found"}

    # inspection -------------------------------------------------------------
    def requests(self, provider=None):
        with self.lock:
            return [r for r in self.recorded if provider is None or r.provider == provider]

    def wait_requests(self, provider, n, timeout=5.0):
        """Wait until at least n requests for provider were answered; return them all."""
        return wait_for(self.lock, lambda: [r for r in self.recorded if r.provider == provider], n, timeout, 0.1,
                        lambda got: f"fake {provider}: {len(got)} request(s) within {timeout}s, expected {n}: "
                                    f"{got!r}")

    def wait_arrivals(self, provider, n, timeout=5.0):
        """Wait until at least n requests for provider have arrived (answered or not)."""
        return wait_for(self.lock, lambda: [r for r in self.arrived if r.provider == provider], n, timeout, 0.1,
                        lambda got: f"fake {provider}: {len(got)} arrival(s) within {timeout}s, expected {n}")


# --------------------------------------------------------------------------
# conversations to reply to


def twilio_conversation(daemon, rdb, customer="+14155550100", account="main"):
    p = twilio_params(account=account, From=customer)
    r = post_twilio(daemon, p, account=account)
    assert r.status_code == 200, r.text
    return stored_one(rdb, p["MessageSid"])[2]["conversation_id"]


def vonage_conversation(daemon, rdb, msisdn="14155550123"):
    p = vonage_signed(vonage_params(msisdn=msisdn))
    r = send_vonage(daemon, p)
    assert r.status_code == 200, r.text
    return stored_one(rdb, p["messageId"])[2]["conversation_id"]


