"""Meta (Messenger, Instagram) test support: a fake Graph API Send endpoint
on 127.0.0.1:<free port>, the connectors.meta config of the tests, signed
webhook deliveries and the verification handshake.

Imported by test_social_meta.py (which defines the fixtures)."""

import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections import deque

import requests

from fake_http import FakeHTTP, send_answer, wait_for
from sms_helpers import API_TOKENS

# --------------------------------------------------------------------------
# the app of the generated config

APP = "shop"
APP_SECRET = "meta-app-secret-" + "5e1f" * 6
VERIFY_TOKEN = "meta-verify-" + "c0ffee" * 3
PAGE_ID = "1234567890"
PAGE_TOKEN = "EAAGpage" + "Zx9" * 20
IG_ID = "17841400000000001"
IG_TOKEN = "EAAGinsta" + "Qw7" * 20
GRAPH_VERSION = "v21.0"
SECRETS_OF_META = (APP_SECRET, VERIFY_TOKEN, PAGE_TOKEN, IG_TOKEN)


def write_meta_secrets(d):
    """The secret files of meta_section() (with a trailing newline), and the
    API tokens of the replies API."""
    def w(name, value):
        f = d / name
        f.write_text(value + "\n")
        f.chmod(0o600)
    w("meta-shop.secret", APP_SECRET)
    w("meta-shop.verify", VERIFY_TOKEN)
    w("meta-page.token", PAGE_TOKEN)
    w("meta-ig.token", IG_TOKEN)
    for name, tok in API_TOKENS.items():
        w(f"{name}.token", tok)
    return d


def meta_section(secrets_dir, graph_url):
    """connectors.meta with the app `shop`: one Facebook page and one
    Instagram account, sending to graph_url (the fake's base)."""
    return {
        "apps": [{
            "name": APP,
            "app_secret_file": str(secrets_dir / "meta-shop.secret"),
            "verify_token_file": str(secrets_dir / "meta-shop.verify"),
            "graph_base": f"{graph_url}/{GRAPH_VERSION}/",
            "pages": [
                {"id": PAGE_ID, "token_file": str(secrets_dir / "meta-page.token")},
                {"id": IG_ID, "token_file": str(secrets_dir / "meta-ig.token")},
            ],
        }],
    }


# --------------------------------------------------------------------------
# webhook deliveries

_seq = itertools.count(1)


def mid(prefix="m_"):
    return prefix + secrets.token_urlsafe(24)


def now_ms():
    return int(time.time() * 1000)


def message_item(sender, recipient=PAGE_ID, text="hello", *, m_id=None, ts=None, attachments=None,
                 echo=False, reply_to=None):
    """One entry[].messaging[] item carrying a message."""
    msg = {"mid": mid() if m_id is None else m_id}
    if text is not None:
        msg["text"] = text
    if attachments is not None:
        msg["attachments"] = attachments
    if echo:
        msg["is_echo"] = True
        msg["app_id"] = 1517776481860111
    if reply_to:
        msg["reply_to"] = {"mid": reply_to}
    return {"sender": {"id": sender}, "recipient": {"id": recipient},
            "timestamp": ts if ts is not None else now_ms(), "message": msg}


def delivery_item(psid, page=PAGE_ID, mids=()):
    return {"sender": {"id": psid}, "recipient": {"id": page},
            "delivery": {"mids": list(mids), "watermark": now_ms()}}


def read_item(psid, page=PAGE_ID):
    return {"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": now_ms(),
            "read": {"watermark": now_ms()}}


def entry(items, page=PAGE_ID):
    return {"id": page, "time": now_ms(), "messaging": items}


def delivery(entries, obj="page"):
    return {"object": obj, "entry": entries}


def hub_signature(body, secret=APP_SECRET):
    if isinstance(body, str):
        body = body.encode()
    if isinstance(secret, str):
        secret = secret.encode()
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def post_meta(daemon, body, *, app=APP, secret=APP_SECRET, signature=None, sign=True, timeout=10):
    """POST a delivery (dict → JSON, or bytes) to /v1/meta/<app>, signed
    with X-Hub-Signature-256 as Meta does (also the SHA-1 header Meta still
    sends beside it)."""
    raw = body if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode()
    h = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
    if sign:
        h["X-Hub-Signature-256"] = signature if signature is not None else hub_signature(raw, secret)
        h["X-Hub-Signature"] = "sha1=" + hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest()
    return requests.post(daemon.url(f"/v1/meta/{app}"), data=raw, headers=h, timeout=timeout)


def verify(daemon, *, app=APP, mode="subscribe", token=VERIFY_TOKEN, challenge="1158201444",
           drop=()):
    """The subscription handshake's GET, as Meta's dashboard sends it."""
    q = {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge}
    for k in drop:
        q.pop(k)
    return requests.get(daemon.url(f"/v1/meta/{app}?" + urllib.parse.urlencode(q)), timeout=5)


def assert_stored_reply(resp, stored, duplicates=0, skipped=0, invalid=0):
    assert resp.status_code == 200, f"expected 200, got {resp.status_code}: {resp.text!r}"
    assert resp.json() == {"status": "stored", "stored": stored, "duplicates": duplicates,
                           "skipped": skipped, "invalid": invalid}, resp.text


# --------------------------------------------------------------------------
# the fake Graph API


class GraphAnswer:
    """One scripted answer: status and JSON body (None: the success body)."""

    def __init__(self, status=200, body=None):
        self.status = status
        self.body = body


def graph_error(code, message, status=400, subcode=None, type_="OAuthException"):
    e = {"message": message, "type": type_, "code": code, "fbtrace_id": "A" + secrets.token_hex(8)}
    if subcode is not None:
        e["error_subcode"] = subcode
    return GraphAnswer(status, {"error": e})


class GraphRequest:
    def __init__(self, method, path, headers, body, t):
        self.method = method
        self.path = path
        self.headers = headers  # lower-case names
        self.raw = body
        self.t = t
        self.answer_status = None
        self.answer_body = None
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<{self.method} {self.path} {self.json!r} -> {self.answer_status}>"


_SEND_PATH = re.compile(r"^/" + re.escape(GRAPH_VERSION) + r"/me/messages$")


class FakeGraph(FakeHTTP):
    """POST /<version>/me/messages on 127.0.0.1:<free port> (fake_http).
    Answers scripted ones first (script()), then 200 {"recipient_id",
    "message_id"}."""

    methods = ("GET", "POST")

    def __init__(self):
        self.lock = threading.Condition()
        self.recorded = []
        self.scripted = deque()
        self.start_http()

    def script(self, *answers):
        with self.lock:
            self.scripted.extend(answers)

    def _serve(self, h, body):
        headers = {k.lower(): v for k, v in h.headers.items()}
        path = urllib.parse.urlsplit(h.path).path
        rec = GraphRequest(h.command, path, headers, body, time.monotonic())
        with self.lock:
            answer = self.scripted.popleft() if self.scripted else None
        if h.command != "POST" or not _SEND_PATH.match(path):
            status, payload = 404, {"error": {"message": "Unknown path", "code": 803}}
        elif answer is not None and answer.body is not None:
            status, payload = answer.status, answer.body
        else:
            rid = (rec.json or {}).get("recipient", {}).get("id")
            status, payload = 200, {"recipient_id": rid, "message_id": mid("m_sent_")}
        rec.answer_status, rec.answer_body = status, payload
        data = json.dumps(payload).encode()
        with self.lock:
            self.recorded.append(rec)
            self.lock.notify_all()
        send_answer(h, status, {"Content-Type": "application/json"}, data)

    def requests(self):
        with self.lock:
            return list(self.recorded)

    def wait_requests(self, n, timeout=5.0):
        return wait_for(self.lock, lambda: list(self.recorded), n, timeout, 0.1,
                        lambda got: f"fake Graph API: {len(got)} request(s) within {timeout}s, expected {n}: "
                                    f"{got!r}")
