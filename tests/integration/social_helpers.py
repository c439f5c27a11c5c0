"""Social polling test support (issue 8): a fake Mastodon and a fake X API
on 127.0.0.1:<free port>, config makers for connectors.mastodon / .x, and
Redis / log lookups for the polled messages.

The fakes are driven by the test (add mentions, revoke the token, inject
faults, set the rate limit) and record every request they get. Both
advertise a rate limit on every answer and count a request that arrives
while the advertised remaining count is already 0 as a violation (and
answer it 429, as the real services do). Faults injected with fail_next()
are the server's choice and never violations.

Imported by the test modules (which also import the `social_fakes`
fixture from here)."""

import bisect
import calendar
import html
import itertools
import json
import math
import re
import secrets
import threading
import time
import urllib.parse
from collections import deque
from pathlib import Path

import pytest

from conftest import logged_messages, metric, wait_until
from fake_http import FakeHTTP, send_answer, wait_for
from sms_helpers import HELPDESK

HELPDESK_TOKEN = HELPDESK


# --------------------------------------------------------------------------
# time formats


def iso_ms(wall):
    """ISO 8601 UTC with milliseconds and Z (Mastodon's X-RateLimit-Reset)."""
    ms = int(round(wall * 1000))
    sec, ms = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{ms:03d}Z"


def parse_iso(s):
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", s)
    base = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return base + (float(m.group(2)) if m.group(2) else 0.0)


def log_time(line):
    """Wall-clock seconds of a daemon log line (its leading timestamp), or None."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)\s", line)
    return parse_iso(m.group(1)) if m else None


# --------------------------------------------------------------------------
# the fakes: common part


class Req:
    """One request as the fake got it."""

    def __init__(self, t, wall, method, path, query, headers, body):
        self.t = t  # time.monotonic() at arrival
        self.wall = wall  # time.time() at arrival
        self.method = method
        self.path = path
        self.query = query  # {name: [values]} (parse_qs; "types[]" keeps its brackets)
        self.headers = headers  # {lower-case name: value}
        self.body = body
        self.status = None  # answer status
        self.answer = None  # answer body (parsed JSON when JSON)
        self.answer_headers = {}
        self.ids = []  # notification ids (Mastodon) / tweet ids (X) in the answer, as sent
        self.fault = None  # the injected Fault that answered, if any
        self.violation = False
        self.t_done = None

    def q(self, name, default=None):
        v = self.query.get(name)
        return v[-1] if v else default

    @property
    def token(self):
        a = self.headers.get("authorization", "")
        return a[7:].strip() if a.lower().startswith("bearer ") else None

    @property
    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    @property
    def form(self):
        ctype = self.headers.get("content-type", "")
        if "json" in ctype:
            j = self.json
            return {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in (j or {}).items()} \
                if isinstance(j, dict) else {}
        return dict(urllib.parse.parse_qsl((self.body or b"").decode("utf-8", "replace"),
                                           keep_blank_values=True))

    def __repr__(self):
        qs = "&".join(f"{k}={v[-1]}" for k, v in self.query.items() if k not in (
            "tweet.fields", "user.fields", "expansions"))
        extra = f" ids={self.ids[0]}..{self.ids[-1]}({len(self.ids)})" if self.ids else ""
        return (f"<{self.t:.3f} {self.method} {self.path}?{qs} tok={self.token} -> {self.status}"
                f"{' FAULT' if self.fault else ''}{' VIOLATION' if self.violation else ''}{extra}>")


class Fault:
    def __init__(self, status, retry_after=None, method=None, path=None, commit=False, headers=None,
                 body=None):
        self.status = status
        self.retry_after = retry_after
        self.method = method
        self.path = path  # prefix; None: any request
        self.commit = commit  # do the request's work (e.g. create the status), then answer the fault
        self.headers = dict(headers or {})
        self.body = body

    def matches(self, method, path):
        return (self.method is None or self.method == method) and \
            (self.path is None or path.startswith(self.path))

    def __repr__(self):
        return f"Fault({self.status}, retry_after={self.retry_after}, {self.method} {self.path})"


class _Fake(FakeHTTP):
    """fake_http.FakeHTTP with the rate limit, token check and injected
    faults; subclasses implement _route()."""

    name = "fake"
    allow_reuse_address = True

    def __init__(self, tokens, limit_per_window, window_s):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.tokens = set(tokens)
        self.revoked = False
        self.requests = []
        self.violations = []
        self.faults = deque()
        self.limit_per_window = limit_per_window
        self.window_s = window_s
        self._remaining = None
        self._reset = 0.0  # wall clock
        self.start_http()

    # test controls ----------------------------------------------------------
    def revoke(self, revoked=True):
        """Every token is refused (401) until revoke(False)."""
        with self.lock:
            self.revoked = revoked

    def set_rate_limit(self, limit_per_window, window_s):
        with self.lock:
            self.limit_per_window = limit_per_window
            self.window_s = window_s
            self._remaining = None
            self._reset = 0.0

    def fail_next(self, status, count=1, retry_after=None, method=None, path=None, commit=False,
                  headers=None, body=None):
        """The next `count` requests (matching method / path prefix, if
        given) are answered `status` (with Retry-After when given). These
        are the server's choice: never violations."""
        with self.lock:
            for _ in range(count):
                self.faults.append(Fault(status, retry_after, method, path, commit, headers, body))

    # serving ----------------------------------------------------------------
    def _rate(self, wall):
        """(allowed, limit, remaining after this request, reset wall time)."""
        if self._remaining is None or wall >= self._reset:
            self._remaining = self.limit_per_window
            self._reset = self._window_end(wall)
        if self._remaining <= 0:
            return False, self.limit_per_window, 0, self._reset
        self._remaining -= 1
        return True, self.limit_per_window, self._remaining, self._reset

    def _window_end(self, wall):
        return math.ceil((wall + self.window_s) * 1000) / 1000.0

    def _serve(self, h, body):
        wall = time.time()
        t = time.monotonic()
        parsed = urllib.parse.urlsplit(h.path)
        path = parsed.path
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in h.headers.items()}
        req = Req(t, wall, h.command, path, query, headers, body)
        with self.lock:
            allowed, limit, remaining, reset = self._rate(wall)
            rl = self._rate_headers(limit, remaining, reset)
            if not allowed:
                req.violation = True
                self.violations.append(req)
                status, payload, extra = self._too_many()
            elif req.token is None or req.token not in self.tokens or self.revoked:
                status, payload, extra = self._unauthorized()
            else:
                fault = next((f for f in self.faults if f.matches(h.command, path)), None)
                if fault is not None:
                    self.faults.remove(fault)
                    req.fault = fault
                    if fault.commit:
                        self._route(req)
                        req.ids = []
                    status, payload = fault.status, fault.body if fault.body is not None else \
                        self._fault_body(fault.status)
                    extra = dict(fault.headers)
                    if fault.retry_after is not None:
                        extra["Retry-After"] = str(fault.retry_after)
                else:
                    status, payload, extra = self._route(req)
            hdrs = dict(rl)
            hdrs.update(extra)
            req.status = status
            req.answer = payload
            req.answer_headers = hdrs
            self.requests.append(req)
            self.cond.notify_all()
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if "Content-Type" not in hdrs:
            hdrs = {"Content-Type": "application/json; charset=utf-8", **hdrs}
        send_answer(h, status, hdrs, data)
        req.t_done = time.monotonic()

    # inspection -------------------------------------------------------------
    def reqs(self, method=None, path=None, pred=None):
        with self.lock:
            return [r for r in self.requests if (method is None or r.method == method)
                    and (path is None or r.path.startswith(path)) and (pred is None or pred(r))]

    def wait_reqs(self, n, timeout=5.0, method=None, path=None, pred=None, what=None):
        """Wait until at least n matching requests were answered; return them."""
        return wait_for(self.cond, lambda: self.reqs(method, path, pred), n, timeout, 0.05,
                        lambda got: f"{self.name}: {len(got)} matching request(s) within {timeout}s, "
                                    f"expected {n} ({what or ''}); last: {self.requests[-5:]!r}")

    def describe(self):
        with self.lock:
            lines = [repr(r) for r in self.requests]
            if self.violations:
                lines.append(f"VIOLATIONS: {self.violations!r}")
            return "\n".join(lines[-400:]) or "<no requests>"


# --------------------------------------------------------------------------
# Mastodon


def mention_html(handle, text, host="mastodon.example"):
    """Status content as Mastodon renders a mention of @handle followed by
    `text` (newlines become <br>)."""
    body = "<br>".join(html.escape(line) for line in text.split("\n"))
    return (f'<p><span class="h-card" translate="no"><a href="https://{host}/@{handle}" '
            f'class="u-url mention">@<span>{handle}</span></a></span> {body}</p>')


class FakeMastodon(_Fake):
    """GET /api/v1/notifications and POST /api/v1/statuses.

    Notification ids are decimal strings of growing numbers (from
    `first_id`), status ids are separate, snowflake-sized numbers."""

    name = "fake mastodon"

    def __init__(self, token="mastodon-token-" + "0a1b2c3d" * 3, *, tokens=None, limit_per_window=300,
                 window_s=300, first_id=1000001, host="mastodon.example"):
        super().__init__(tokens or [token], limit_per_window, window_s)
        self.token = token
        self.host = host
        self.notifications = []  # oldest first
        self._nids = []  # int ids, ascending
        self._next_nid = first_id
        self._next_sid = 110_000_000_000_000_000 + secrets.randbelow(10**6)
        self.statuses = []  # posted replies: dicts
        self.idem = {}  # Idempotency-Key -> status dict
        self.by_status = {}  # status id -> notification

    # state -------------------------------------------------------------------
    def _sid(self):
        self._next_sid += 1 + secrets.randbelow(1000)
        return str(self._next_sid)

    def account(self, acct, display_name=None):
        user, _, host = acct.partition("@")
        host = host or self.host
        return {"id": str(abs(hash(acct)) % 10**12), "username": user, "acct": acct,
                "display_name": display_name if display_name is not None else user.capitalize(),
                "url": f"https://{host}/@{user}", "locked": False, "bot": False}

    def add_notification(self, ntype, acct, status=None, created_at=None):
        with self.lock:
            nid = str(self._next_nid)
            self._next_nid += 1
            n = {"id": nid, "type": ntype, "created_at": created_at or iso_ms(time.time()),
                 "account": self.account(acct)}
            if status is not None:
                n["status"] = status
            self.notifications.append(n)
            self._nids.append(int(nid))
            return nid

    def add_mention(self, acct, text_html, visibility="public", in_reply_to_id=None, language="en",
                    display_name=None, created_at=None, media=None, spoiler_text=""):
        """A mention of us by `acct` ("user@host", or "user" for a local
        user); returns the status id (the message's external id)."""
        with self.lock:
            sid = self._sid()
            created = created_at or iso_ms(time.time())
            user, _, host = acct.partition("@")
            st = {"id": sid, "created_at": created, "in_reply_to_id": in_reply_to_id,
                  "in_reply_to_account_id": None, "sensitive": False, "spoiler_text": spoiler_text,
                  "visibility": visibility, "language": language,
                  "uri": f"https://{host or self.host}/users/{user}/statuses/{sid}",
                  "url": f"https://{host or self.host}/@{user}/{sid}",
                  "replies_count": 0, "reblogs_count": 0, "favourites_count": 0,
                  "content": text_html, "reblog": None,
                  "account": self.account(acct, display_name),
                  "media_attachments": list(media or []),
                  "mentions": [{"id": "1", "username": "brand", "acct": "brand",
                                "url": f"https://{self.host}/@brand"}],
                  "tags": [], "emojis": []}
            self.add_notification("mention", acct, st, created)
            self.notifications[-1]["account"] = st["account"]
            self.by_status[sid] = self.notifications[-1]
            return sid

    def nid_of(self, status_id):
        return self.by_status[status_id]["id"]

    def mention_ids(self):
        with self.lock:
            return [n["status"]["id"] for n in self.notifications if n["type"] == "mention"]

    # serving -----------------------------------------------------------------
    def _rate_headers(self, limit, remaining, reset):
        return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": iso_ms(reset)}

    def _too_many(self):
        return 429, {"error": "Too many requests"}, {}

    def _unauthorized(self):
        return 401, {"error": "The access token is invalid"}, {
            "WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token", '
                                'error_description="The access token is invalid"'}

    def _fault_body(self, status):
        return {429: {"error": "Too many requests"}, 503: {"error": "Service Unavailable"},
                500: {"error": "We're sorry, but something went wrong on our end."}}.get(
            status, {"error": f"HTTP {status}"})

    def _route(self, req):
        if req.method == "GET" and req.path == "/api/v1/notifications":
            return self._notifications(req)
        if req.method == "POST" and req.path == "/api/v1/statuses":
            return self._post_status(req)
        return 404, {"error": "Record not found"}, {}

    def _notifications(self, req):
        types = req.query.get("types[]") or req.query.get("types") or []
        excl = req.query.get("exclude_types[]") or []
        try:
            limit = int(req.q("limit", "40"))
        except ValueError:
            limit = 40
        limit = max(1, min(limit, 80))

        def num(name):
            v = req.q(name)
            if v is None or v == "":
                return None
            return int(v) if v.isdigit() else None

        min_id, since_id, max_id = num("min_id"), num("since_id"), num("max_id")
        items = [n for n in self.notifications
                 if (not types or n["type"] in types) and n["type"] not in excl]
        ids = [int(n["id"]) for n in items]
        if min_id is not None:
            # the `limit` oldest newer than min_id, answered newest first
            lo = bisect.bisect_right(ids, min_id)
            hi = len(ids) if max_id is None else bisect.bisect_left(ids, max_id)
            page = items[lo:min(hi, lo + limit)]
        else:
            lo = 0 if since_id is None else bisect.bisect_right(ids, since_id)
            hi = len(ids) if max_id is None else bisect.bisect_left(ids, max_id)
            page = items[max(lo, hi - limit):hi]
        page = list(reversed(page))
        req.ids = [n["id"] for n in page]
        extra = {}
        if page:
            base = f"https://{self.host}/api/v1/notifications?"
            tq = "".join(f"types%5B%5D={urllib.parse.quote(t)}&" for t in types)
            extra["Link"] = (f'<{base}{tq}limit={limit}&max_id={page[-1]["id"]}>; rel="next", '
                             f'<{base}{tq}limit={limit}&min_id={page[0]["id"]}>; rel="prev"')
        return 200, page, extra

    def _post_status(self, req):
        f = req.form
        key = req.headers.get("idempotency-key")
        if key and key in self.idem:
            return 200, self.idem[key], {}
        text = f.get("status", "")
        if not text.strip():
            return 422, {"error": "Validation failed: Text can't be blank"}, {}
        sid = self._sid()
        st = {"id": sid, "created_at": iso_ms(time.time()), "in_reply_to_id": f.get("in_reply_to_id"),
              "visibility": f.get("visibility", "public"), "content": f"<p>{html.escape(text)}</p>",
              "text": text, "url": f"https://{self.host}/@brand/{sid}",
              "account": self.account("brand"), "idempotency_key": key}
        self.statuses.append(st)
        if key:
            self.idem[key] = st
        return 200, st, {}

    def polls(self):
        """The notification requests that were answered 200."""
        return self.reqs("GET", "/api/v1/notifications", lambda r: r.status == 200)


# --------------------------------------------------------------------------
# X


X_TWEET_FIELDS = {"created_at", "conversation_id", "lang", "referenced_tweets", "author_id"}


class FakeX(_Fake):
    """GET /2/users/<user_id>/mentions and POST /2/tweets."""

    name = "fake x"

    def __init__(self, user_id="2244994945", token="x-bearer-" + "9z8y7x6w" * 4, *, tokens=None,
                 limit_per_window=450, window_s=900):
        super().__init__(tokens or [token], limit_per_window, window_s)
        self.user_id = user_id
        self.token = token
        self.tweets = []  # oldest first
        self._tids = []
        self._next_tid = 1_790_000_000_000_000_000 + secrets.randbelow(10**9)
        self.users = {}
        self.pages = {}  # pagination token -> (since_id, upper exclusive id)
        self.posted = []

    def _window_end(self, wall):
        # x-rate-limit-reset is in whole epoch seconds: the window ends on one.
        return float(math.ceil(wall + self.window_s))

    def _tid(self):
        self._next_tid += 1 + secrets.randbelow(5000)
        return str(self._next_tid)

    def add_mention(self, author_id, username, text, conversation_id=None, in_reply_to=None, name=None,
                    lang="en", created_at=None):
        """A tweet mentioning us; returns its id. conversation_id defaults
        to the tweet's own id (a new thread)."""
        with self.lock:
            tid = self._tid()
            tw = {"id": tid, "text": text, "author_id": str(author_id),
                  "conversation_id": conversation_id or tid,
                  "created_at": created_at or iso_ms(time.time()), "lang": lang,
                  "edit_history_tweet_ids": [tid]}
            if in_reply_to:
                tw["referenced_tweets"] = [{"type": "replied_to", "id": in_reply_to}]
            self.tweets.append(tw)
            self._tids.append(int(tid))
            self.users[str(author_id)] = {"id": str(author_id), "username": username,
                                          "name": name if name is not None else username.capitalize()}
            return tid

    def mention_ids(self):
        with self.lock:
            return [t["id"] for t in self.tweets]

    def _rate_headers(self, limit, remaining, reset):
        return {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(remaining),
                "x-rate-limit-reset": str(int(reset))}

    def _too_many(self):
        return 429, {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                     "status": 429}, {}

    def _unauthorized(self):
        return 401, {"title": "Unauthorized", "type": "about:blank", "status": 401,
                     "detail": "Unauthorized"}, {}

    def _fault_body(self, status):
        titles = {429: "Too Many Requests", 503: "Service Unavailable", 500: "Internal Server Error"}
        return {"title": titles.get(status, f"HTTP {status}"), "type": "about:blank", "status": status,
                "detail": titles.get(status, "")}

    def _invalid(self, msg, param, value):
        return 400, {"errors": [{"parameters": {param: [value]}, "message": msg}],
                     "title": "Invalid Request",
                     "detail": "One or more parameters to your request was invalid.",
                     "type": "https://api.twitter.com/2/problems/invalid-request"}, {}

    def _route(self, req):
        if req.method == "GET" and req.path.startswith("/2/users/") and req.path.endswith("/mentions"):
            uid = req.path[len("/2/users/"):-len("/mentions")]
            if uid != self.user_id:
                return 404, {"title": "Not Found Error", "status": 404}, {}
            return self._mentions(req)
        if req.method == "POST" and req.path == "/2/tweets":
            return self._post_tweet(req)
        return 404, {"title": "Not Found Error", "status": 404}, {}

    def _mentions(self, req):
        mr = req.q("max_results", "10")
        if not mr.isdigit() or not 5 <= int(mr) <= 100:
            return self._invalid(f"The `max_results` query parameter value [{mr}] is not between 5 and 100",
                                 "max_results", mr)
        mr = int(mr)
        since = req.q("since_id")
        if since is not None and not since.isdigit():
            return self._invalid("The `since_id` query parameter value is invalid", "since_id", since)
        since = int(since) if since else None
        tok = req.q("pagination_token")
        upper = None
        if tok is not None:
            if tok not in self.pages:
                return self._invalid("The `pagination_token` query parameter value is invalid",
                                     "pagination_token", tok)
            tsince, upper = self.pages[tok]
            if since is not None and since != tsince:
                return self._invalid("since_id differs from the one the pagination_token was made for",
                                     "since_id", str(since))
            since = tsince
        lo = 0 if since is None else bisect.bisect_right(self._tids, since)
        hi = len(self._tids) if upper is None else bisect.bisect_left(self._tids, upper)
        page = list(reversed(self.tweets[max(lo, hi - mr):hi]))
        more = hi - lo > mr
        req.ids = [t["id"] for t in page]
        if not page:
            return 200, {"meta": {"result_count": 0}}, {}
        fields = set(",".join(req.query.get("tweet.fields", [])).split(","))
        data = []
        for t in page:
            d = {"id": t["id"], "text": t["text"], "edit_history_tweet_ids": t["edit_history_tweet_ids"]}
            for k in X_TWEET_FIELDS & fields:
                if k in t:
                    d[k] = t[k]
            data.append(d)
        out = {"data": data}
        if "author_id" in ",".join(req.query.get("expansions", [])).split(","):
            seen = []
            for t in page:
                if t["author_id"] not in seen:
                    seen.append(t["author_id"])
            out["includes"] = {"users": [dict(self.users[a]) for a in seen]}
        meta = {"result_count": len(page), "newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}
        if more:
            nt = "7140dibdnow9c7btw" + secrets.token_hex(12)
            self.pages[nt] = (since, int(page[-1]["id"]))
            meta["next_token"] = nt
        out["meta"] = meta
        return 200, out, {}

    def _post_tweet(self, req):
        j = req.json
        if not isinstance(j, dict) or not isinstance(j.get("text"), str):
            return 400, {"title": "Invalid Request", "status": 400,
                         "detail": "One or more parameters to your request was invalid."}, {}
        tid = self._tid()
        self.posted.append({"id": tid, "request": j})
        return 201, {"data": {"id": tid, "text": j["text"], "edit_history_tweet_ids": [tid]}}, {}

    def polls(self):
        return self.reqs("GET", f"/2/users/{self.user_id}/mentions", lambda r: r.status == 200)


# --------------------------------------------------------------------------
# fixture


@pytest.fixture
def social_fakes(request):
    """Factory: social_fakes.mastodon(**kw) / social_fakes.x(**kw); all are
    closed at teardown and their request logs added to a failure report."""

    class Factory:
        def __init__(self):
            self.all = []

        def _add(self, fake, label):
            self.all.append(fake)
            request.node.__dict__.setdefault("_omr_sections", []).append(
                (f"{label} requests (port {fake.port})", fake.describe))
            return fake

        def mastodon(self, **kw):
            return self._add(FakeMastodon(**kw), f"fake mastodon #{len(self.all)}")

        def x(self, **kw):
            return self._add(FakeX(**kw), f"fake x #{len(self.all)}")

    f = Factory()
    yield f
    for fake in f.all:
        fake.close()


# --------------------------------------------------------------------------
# config


def write_secret(d, name, value, suffix="\n"):
    f = Path(d) / name
    f.write_text(value + suffix)
    f.chmod(0o600)
    return str(f)


_seq = itertools.count(1)


def mastodon_account(fake, secrets_dir, name="brand", *, token=None, **over):
    """One connectors.mastodon.accounts entry for `fake` (token: the fake's
    unless given); defaults fit the tests: 200ms interval, 2s lease."""
    tok = fake.token if token is None else token
    a = {"name": name, "base_url": fake.base_url,
         "token_file": write_secret(secrets_dir, f"mastodon-{name}-{next(_seq)}.token", tok),
         "handle": "brand", "poll_interval": "200ms", "lease": "2s", "page_size": 40, "timeout": "5s"}
    a.update(over)
    return a


def x_account(fake, secrets_dir, name="brand", *, token=None, **over):
    tok = fake.token if token is None else token
    a = {"name": name, "base_url": fake.base_url, "user_id": fake.user_id,
         "token_file": write_secret(secrets_dir, f"x-{name}-{next(_seq)}.token", tok),
         "handle": "brandsupport", "poll_interval": "200ms", "lease": "2s", "page_size": 100,
         "timeout": "5s"}
    a.update(over)
    return a


def social_config(cfg, secrets_dir, *, mastodon=(), x=(), replies=False, port=None):
    """cfg (make_config()) plus connectors.mastodon / .x accounts; replies:
    the API token `helpdesk` and an outbound section (for the replies API);
    port: another HTTP port (a second daemon on the same make_config)."""
    if mastodon:
        cfg["connectors"]["mastodon"] = {"accounts": list(mastodon)}
    if x:
        cfg["connectors"]["x"] = {"accounts": list(x)}
    if replies:
        cfg["api"] = {"tokens": [{"name": "helpdesk", "token_file": write_secret(
            secrets_dir, "social-helpdesk.token", HELPDESK_TOKEN)}]}
        cfg["outbound"] = {"give_up_after": "30s", "request_timeout": "5s"}
    if port is not None:
        cfg["http"] = dict(cfg["http"], listen=f"127.0.0.1:{port}")
    return cfg


# --------------------------------------------------------------------------
# what the daemon stored


def social_messages(rdb, provider):
    """{external_id: [(conversation id, entry id, message dict)]} of every
    inbound message of `provider` in the conversation logs."""
    out = {}
    for conv, eid, _f, m in logged_messages(rdb):
        if not m or m.get("provider") != provider:
            continue
        out.setdefault(m.get("external_id"), []).append((conv, eid, m))
    return out


def dedup_count(rdb, provider):
    return sum(1 for _ in rdb.scan_iter(match=f"omr:dedup:{provider}:*", count=10000))


def log_count(rdb, provider):
    """Inbound log entries of `provider` over every conversation."""
    return sum(len(v) for v in social_messages(rdb, provider).values())


def wait_count(rdb, provider, n, timeout=10.0):
    """Wait until `provider` has at least n dedup keys; return the count."""
    return wait_until(lambda: (lambda c: c if c >= n else None)(dedup_count(rdb, provider)), timeout,
                      interval=0.05, what=f"{n} {provider} messages stored (now {dedup_count(rdb, provider)})")


def wait_stored(rdb, provider, external_id, timeout=10.0):
    """The message dict stored for `external_id` (exactly once)."""
    got = wait_until(lambda: social_messages(rdb, provider).get(external_id), timeout, interval=0.05,
                     what=f"{provider} message {external_id} stored")
    assert len(got) == 1, f"{external_id} stored {len(got)} times: {got!r}"
    return got[0][2]


def assert_exactly_once(rdb, provider, want_ids):
    """Every id of want_ids stored exactly once, nothing else; dedup keys ==
    log entries == len(want_ids). Returns social_messages()."""
    stored = social_messages(rdb, provider)
    dups = {k: [(c, e) for c, e, _ in v] for k, v in stored.items() if len(v) != 1}
    assert not dups, f"{len(dups)} external ids stored more than once: {dict(list(dups.items())[:10])}"
    want = set(want_ids)
    assert len(want) == len(want_ids), "test bug: duplicate ids in want_ids"
    missing = sorted(want - set(stored), key=int)
    extra = sorted(set(stored) - want, key=lambda s: (len(s), s))
    assert not missing and not extra, f"missing {len(missing)}: {missing[:20]}, unexpected: {extra[:20]}"
    n_dedup = dedup_count(rdb, provider)
    n_log = sum(len(v) for v in stored.values())
    assert n_dedup == len(want) and n_log == len(want), (n_dedup, n_log, len(want))
    return stored


# --------------------------------------------------------------------------
# daemon logs


def source_rx(provider):
    # "source=mastodon:brand", quoted, or followed by ":" ("... source=x:brand: HTTP 503")
    return re.compile(r'\bsource="?' + re.escape(provider) + r'"?(?=[\s:,]|$)')


def log_lines(daemon, provider=None, contains=None, since=0, level=None):
    """Log lines of `daemon` (after byte offset since) mentioning
    source=<provider>, containing `contains`, at `level` (a regex)."""
    text = daemon.log_path.read_bytes()[since:].decode("utf-8", "replace")
    out = []
    rx = source_rx(provider) if provider else None
    lrx = re.compile(r"\blevel=(" + level + r")\b") if level else None
    for line in text.splitlines():
        if rx and not rx.search(line):
            continue
        if contains and contains not in line:
            continue
        if lrx and not lrx.search(line):
            continue
        out.append(line)
    return out


def lease_taken(daemon, provider, since=0):
    return log_lines(daemon, provider, "poll lease taken", since)


def wait_log_line(daemon, provider, contains, since=0, timeout=5.0, level=None):
    return wait_until(lambda: (log_lines(daemon, provider, contains, since, level) or [None])[0], timeout,
                      interval=0.02, what=f"log line {contains!r} source={provider} in {daemon.log_path.name}")


def revoke_until_disabled(daemon, fake, rdb, provider):
    """Revoke the fake's tokens and wait until the daemon has disabled the
    account: the 401 it got, its error line `disabled`, omr_polls_total
    outcome=disabled, and its poll lease released. Returns (the 401
    request, the log line)."""
    off = daemon.log_offset()
    fake.revoke()
    (r401,) = fake.wait_reqs(1, timeout=3, pred=lambda r: r.status == 401)
    line = wait_log_line(daemon, provider, "disabled", since=off, timeout=3, level="error")
    print("disable log line:", line)
    wait_until(lambda: metric(daemon.metrics(), "omr_polls_total", source=provider, outcome="disabled") >= 1
               or None, 3, what="omr_polls_total outcome=disabled")
    lease = f"omr:lease:poll:{provider}"
    wait_until(lambda: not rdb.exists(lease) or None, 3, what=f"{lease} released")
    return r401, line


# --------------------------------------------------------------------------
# request-log checks


def gaps(reqs):
    return [b.t - a.t for a, b in zip(reqs, reqs[1:])]


def assert_no_violations(*fakes):
    for f in fakes:
        assert not f.violations, (f"{f.name}: {len(f.violations)} request(s) sent while the advertised "
                                  f"remaining count was 0: {f.violations[:5]!r}")


def assert_no_overlap_mastodon(fake):
    """No notification id was answered to two polls with different min_id
    (a repeat is only allowed for the same min_id: an answer that was not
    stored before a restart). Returns {id: set of min_ids}."""
    seen = {}
    for r in fake.polls():
        for i in r.ids:
            seen.setdefault(i, set()).add(r.q("min_id"))
    bad = {i: s for i, s in seen.items() if len(s) > 1}
    assert not bad, f"notification ids answered to different min_ids: {dict(list(bad.items())[:10])}"
    return seen
