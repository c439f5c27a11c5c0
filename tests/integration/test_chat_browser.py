"""The chat widget in a real browser (issue 7): headless Debian chromium,
driven by playwright-core (tests/browser/chat_page.js), against the real
daemon and a real redis-server.

The page is the daemon's own demo page GET /chat/?site=main, which embeds
GET /chat/widget.js; the widget talks to GET /v1/chat/ws. The visitor types
a message (Shift+Enter for a second line, Enter to send), sees it marked sent
on the daemon's ack; the test finds the conversation in Redis (provider
chat:main) and posts an agent reply through POST /v1/conversations/{id}/
replies; the reply appears in the page; a screenshot is taken (its path is
printed and, with $OMR_TEST_ARTIFACTS set, copied there); Escape closes the
panel and the launcher reopens it; a reload resumes the session from
localStorage (hello with the token and last_id) and shows both messages
again, once each.

Contract: docs/connectors/chat.md. Spec: /work/spec/chat_widget.md.
"""

import fcntl
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import SOURCE_DIR, wait_until

HERE = Path(__file__).resolve().parent
BROWSER_DIR = HERE.parent / "browser"
WWW_DIR = SOURCE_DIR / "connectors" / "chat" / "www"
CHROMIUM = "/usr/bin/chromium"
NODE = shutil.which("node") or "node"
NPM = shutil.which("npm") or "npm"

SITE = "main"
CHAT_SECRET = "browser-test-chat-secret-0123456789"
API_TOKEN = "browser-test-helpdesk-token-" + "7c6b5a4d3e2f" * 2
AGENT = {"id": "ana", "name": "Ana Lima"}
FIRST_LINE = "Hello from a real browser"
SECOND_LINE = "my order #4521 has not arrived"
TYPED = f"{FIRST_LINE}\n{SECOND_LINE}"
REPLY = "Hi! Ana here. Your parcel left the warehouse this morning."

TOKEN_RE = re.compile(r"^v1\.([^.]+)\.(\d+)\.([0-9a-f]{64})$")
STREAM_ID_RE = re.compile(r"^\d+-\d+$")
RFC3339_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
OFFLINE_TEXT = "Typed while the daemon was down"


def stream_key(i):
    ms, seq = i.split("-")
    return int(ms), int(seq)


def ensure_playwright():
    """npm ci in tests/browser when playwright-core is missing (scripts/test.sh
    normally does it)."""
    marker = BROWSER_DIR / "node_modules" / "playwright-core" / "package.json"
    if marker.exists():
        return
    lock_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"omr-tests-browser-npm-ci.{os.getuid()}.lock"
    with open(lock_path, "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if marker.exists():
            return
        r = subprocess.run([NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BROWSER_DIR,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"npm ci in {BROWSER_DIR} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")


def chat_browser_config(make_config, secrets_dir):
    cfg = make_config()
    port = int(cfg["http"]["listen"].rsplit(":", 1)[1])
    key = secrets_dir / "chat.key"
    key.write_text(CHAT_SECRET + "\n")
    key.chmod(0o600)
    tok = secrets_dir / "browser-helpdesk.token"
    tok.write_text(API_TOKEN + "\n")
    tok.chmod(0o600)
    cfg["api"] = {"tokens": [{"name": "helpdesk", "token_file": str(tok)}]}
    cfg["agents"] = {"list": [{"id": AGENT["id"], "name": AGENT["name"], "capacity": {"chat": 3},
                               "queues": ["general"]}]}
    # The widget's status line shows the first-response target for chat.
    cfg["sla"] = {"policies": [{"name": "chat", "channel": ["chat"], "first_response": "2m"}]}
    cfg["connectors"]["chat"] = {
        "session_secret_file": str(key),
        "session_ttl": "1h",
        "sites": [{"name": SITE, "origins": [f"http://127.0.0.1:{port}"]}],
    }
    return cfg


class PageDriver:
    """node tests/browser/chat_page.js as a subprocess; its JSON lines are
    read by a thread into a queue (and kept in .events)."""

    def __init__(self, url, args, stderr_path):
        self.events = []
        self.q = queue.Queue()
        self.stderr_f = open(stderr_path, "wb")
        self.proc = subprocess.Popen(
            [NODE, str(BROWSER_DIR / "chat_page.js"), url, "--chromium", CHROMIUM, *args],
            cwd=BROWSER_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_f)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def tell(self, line):
        """A line on the script's stdin (the reconnect scenario waits for them)."""
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"event": "stdout", "line": line}
            self.events.append(ev)
            self.q.put(ev)
        self.q.put(None)

    def wait_event(self, name, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"chat_page.js: no {name!r} within {timeout}s; events: {self.transcript()}")
            try:
                ev = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if ev is None:
                raise AssertionError(f"chat_page.js exited ({self.proc.wait()}) before {name!r}: {self.transcript()}")
            if ev.get("event") == "error":
                raise AssertionError(f"chat_page.js failed at {ev.get('step')!r}: {ev.get('message')}\n"
                                     f"events: {self.transcript()}")
            if ev.get("event") == name:
                return ev

    def frames(self, direction, type_=None):
        return [e["payload"] for e in self.events
                if e.get("event") == "ws" and e.get("dir") == direction and isinstance(e.get("payload"), dict)
                and (type_ is None or e["payload"].get("type") == type_)]

    def transcript(self, limit=6000):
        text = "\n".join(json.dumps(e, ensure_ascii=False) for e in self.events)
        return text[-limit:]

    def errors(self):
        """Page errors, HTTP errors, websocket errors, console errors and warnings."""
        return [e for e in self.events if e.get("event") in ("pageerror", "http_error", "ws_error")
                or (e.get("event") == "console" and e.get("type") in ("error", "warning"))]

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.reader.join(5)
        self.stderr_f.close()


def need_chromium():
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} is missing (Debian package chromium; scripts/install-deps.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason + ": CI must run the browser test", pytrace=False)
        pytest.skip(reason)
    ensure_playwright()


def start_page(request, tmp_path, url, args, name="chat_page"):
    page = PageDriver(url, args, tmp_path / f"{name}.stderr")
    sections = request.node.__dict__.setdefault("_omr_sections", [])
    sections.append((f"{name}.js events", page.transcript))
    sections.append((f"{name}.js stderr",
                     lambda: (tmp_path / f"{name}.stderr").read_text(errors="replace")[-4000:]))
    return page


def test_widget_sends_receives_and_resumes_in_chromium(start_daemon, make_config, secrets_dir, rdb, tmp_path,
                                                       request):
    need_chromium()
    t0 = time.monotonic()
    d = start_daemon(chat_browser_config(make_config, secrets_dir))

    # The daemon serves the widget and the demo page from its binary: the
    # very files of this source tree.
    r = d.get("/chat/widget.js")
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert "javascript" in r.headers.get("Content-Type", ""), r.headers
    assert r.content == (WWW_DIR / "widget.js").read_bytes(), "GET /chat/widget.js is not connectors/chat/www/widget.js"
    r = d.get("/chat/")
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert "text/html" in r.headers.get("Content-Type", ""), r.headers
    assert r.content == (WWW_DIR / "index.html").read_bytes(), "GET /chat/ is not connectors/chat/www/index.html"

    shot = tmp_path / "chat-widget.png"
    page = start_page(request, tmp_path, d.url(f"/chat/?site={SITE}"),
                      ["--text", TYPED, "--reply-text", REPLY, "--screenshot", str(shot)])
    try:
        # -- the welcome: a fresh visitor, the SLA target in the status line
        ev = page.wait_event("welcome", 20)
        assert ev["status"] == "We usually reply within 2 minutes", ev
        labels = ev["labels"]
        for control in ("log", "message", "send", "close", "launcher", "name", "email"):
            assert labels[control] == 1, f"no single control labelled for {control!r}: {labels}"
        assert labels["log_live"] == "polite" and labels["launcher_expanded"] == "true", labels
        hello1 = page.frames("sent", "hello")[0]
        assert "token" not in hello1 and "last_id" not in hello1, hello1
        welcome1 = page.frames("received", "welcome")[0]
        m = TOKEN_RE.match(welcome1.get("token", ""))
        assert m and m.group(1) == welcome1["visitor_id"], welcome1
        assert welcome1["expected_reply"]["seconds"] == 120, welcome1

        # -- typed, Shift+Enter, Enter: shown at once, then marked sent on the ack
        ev = page.wait_event("shown", 15)
        assert ev["text"] == TYPED, ev
        acked = page.wait_event("acked", 15)
        assert acked["text"] == TYPED and "Sent" in acked["meta"], acked
        assert acked["states"][0] == "sending" and acked["states"][-1] == "sent", acked
        (sent,) = page.frames("sent", "message")
        assert sent["text"] == TYPED and sent["client_id"] == acked["client_id"], sent
        (ack,) = page.frames("received", "ack")
        assert ack["client_id"] == sent["client_id"] and ack["id"] == acked["id"], ack
        assert STREAM_ID_RE.match(ack["id"]), ack

        # -- the conversation in Redis: provider chat:main, customer = visitor
        visitor = welcome1["visitor_id"]
        customers = sorted(rdb.scan_iter(match="omr:customer:chat:main:*", count=1000))
        assert customers == [f"omr:customer:chat:main:{visitor}"], customers
        conv = rdb.hget(customers[0], "last_conversation")
        assert conv and conv == ack["conversation_id"] == acked["conversation_id"], (conv, ack, acked)
        h = rdb.hgetall(f"omr:conv:{{{conv}}}")
        assert h.get("channel") == "chat" and h.get("provider") == "chat:main", h
        assert h.get("customer_id") == visitor, h
        log = rdb.xrange(f"omr:conv:{{{conv}}}:log")
        ins = [(eid, json.loads(f["message"])) for eid, f in log if f.get("direction") == "in"]
        assert [eid for eid, _ in ins] == [ack["id"]], log
        assert ins[0][1]["text"] == TYPED, ins

        # -- an agent's reply through the API reaches the page
        t_reply = time.monotonic()
        r = requests.post(d.url(f"/v1/conversations/{conv}/replies"),
                          data=json.dumps({"agent_id": AGENT["id"], "text": REPLY}).encode(),
                          headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}"},
                          timeout=10)
        assert r.status_code == 202, (r.status_code, r.text)
        ev = page.wait_event("reply", 15)
        reply_delay = time.monotonic() - t_reply
        assert ev["text"] == REPLY, ev
        out_frames = [f for f in page.frames("received", "message") if f.get("direction") == "out"]
        assert len(out_frames) == 1, out_frames
        out = out_frames[0]
        assert out["text"] == REPLY and out["id"] == ev["id"] and out["agent"]["id"] == AGENT["id"], out
        # docs/connectors/chat.md: an agent's message has agent {id, name} and at (RFC 3339).
        assert out["agent"].get("name") == AGENT["name"], f"the pushed reply lacks the agent's name: {out}"
        assert RFC3339_RE.match(out.get("at") or ""), f"the pushed reply's `at` is not RFC 3339: {out}"
        assert ev["meta"].startswith(AGENT["name"] + " \u00b7 "), f"the page shows who answered, and when: {ev}"
        assert stream_key(out["id"]) > stream_key(ack["id"]), (out, ack)
        outs = wait_until(lambda: [eid for eid, f in rdb.xrange(f"omr:conv:{{{conv}}}:log")
                                   if f.get("direction") == "out"] or None, 5, what="the reply in the log")
        assert outs == [out["id"]], outs

        # -- the screenshot
        ev = page.wait_event("screenshot", 15)
        assert Path(ev["path"]) == shot and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", ev
        print(f"\nchat widget screenshot: {shot}")
        artifacts = os.environ.get("OMR_TEST_ARTIFACTS")
        if artifacts:
            Path(artifacts).mkdir(parents=True, exist_ok=True)
            dest = Path(artifacts) / "chat-widget.png"
            shutil.copyfile(shot, dest)
            print(f"chat widget screenshot copied to {dest}")

        # -- keyboard: Escape closes (focus back on the launcher), Enter reopens
        ev = page.wait_event("keyboard", 15)
        assert ev["after_escape"] == {"focus_label": "Chat with us", "expanded": "false"}, ev
        assert ev["after_reopen"]["focus_is_message_box"] and ev["after_reopen"]["expanded"] == "true", ev

        # -- reload: resumed from localStorage, both messages once
        ev = page.wait_event("reloaded", 20)
        shown = [(m["direction"], m["id"], m["text"]) for m in ev["messages"]]
        assert shown == [("in", ack["id"], TYPED), ("out", out["id"], REPLY)], ev["messages"]
        hellos = page.frames("sent", "hello")
        assert len(hellos) == 2, hellos
        assert hellos[1].get("token") == welcome1["token"] and hellos[1].get("last_id") == out["id"], hellos[1]
        welcomes = page.frames("received", "welcome")
        assert len(welcomes) == 2, welcomes
        assert welcomes[1]["visitor_id"] == visitor and welcomes[1]["conversation_id"] == conv, welcomes[1]
        # Nothing the page already had (everything up to last_id) was sent
        # again after the resumed welcome.
        received = page.frames("received")
        second = [i for i, f in enumerate(received) if f.get("type") == "welcome"][1]
        again = [f for f in received[second + 1:] if f.get("type") == "message"]
        assert again == [], again

        done = page.wait_event("done", 15)
        assert page.proc.wait(10) == 0, page.transcript()
        assert not page.errors(), page.errors()
        # Still one visitor, one conversation, one message each way.
        assert sorted(rdb.scan_iter(match="omr:customer:chat:main:*", count=1000)) == customers
        log = rdb.xrange(f"omr:conv:{{{conv}}}:log")
        assert [(eid, f.get("direction")) for eid, f in log] == [(ack["id"], "in"), (out["id"], "out")], log
        print(f"browser run {done['ms']} ms, reply reached the page {reply_delay:.2f}s after the POST, "
              f"test {time.monotonic() - t0:.1f}s")
    finally:
        page.close()


def test_widget_reconnects_with_backoff_and_resends(start_daemon, make_config, secrets_dir, rdb, tmp_path,
                                                     request):
    """The daemon stops under a connected page; the visitor types a message
    (shown as sending); the widget retries with backoff (1 s and up); the
    daemon comes back on the same port; the widget resumes the same session
    and sends the message once; it is stored once."""
    need_chromium()
    cfg = chat_browser_config(make_config, secrets_dir)
    d1 = start_daemon(cfg, name="omnirouted")
    page = start_page(request, tmp_path, d1.url(f"/chat/?site={SITE}"),
                      ["--scenario", "reconnect", "--text", OFFLINE_TEXT], name="chat_page_reconnect")
    try:
        page.wait_event("welcome", 20)
        (welcome1,) = page.frames("received", "welcome")
        rc, _ = d1.terminate()
        assert rc == 0, f"omnirouted exited {rc} on SIGTERM with a chat socket open"
        page.tell("stopped")
        ev = page.wait_event("disconnected", 15)
        assert ev["connection"] in ("reconnecting", "connecting"), ev
        ev = page.wait_event("typed_offline", 15)
        assert ev["states"] == ["sending"], ev
        t_stopped = ev["t"]
        time.sleep(1.5)  # at least one refused attempt, so the backoff shows
        d2 = start_daemon(cfg, name="omnirouted-restarted")
        page.tell("restarted")
        acked = page.wait_event("acked", 20)
        page.wait_event("done", 15)
        assert page.proc.wait(10) == 0, page.transcript()

        # Sent once, after the reconnect, on the resumed session.
        sent = page.frames("sent", "message")
        assert [m["text"] for m in sent] == [OFFLINE_TEXT], sent
        hellos = page.frames("sent", "hello")
        assert len(hellos) >= 2 and hellos[-1].get("token") == welcome1["token"], hellos
        welcomes = page.frames("received", "welcome")
        assert welcomes[-1]["visitor_id"] == welcome1["visitor_id"], welcomes
        assert acked["states"][0] == "sending" and acked["states"][-1] == "sent", acked

        # Backoff: the attempts after the stop are 1 s .. 30 s apart.
        opens = [e["t"] for e in page.events if e.get("event") == "ws_open"][1:]
        assert len(opens) >= 2, page.transcript()
        gaps = [b - a for a, b in zip(opens, opens[1:])]
        assert all(900 <= g <= 31000 for g in gaps), f"reconnect attempts outside 1 s .. 30 s apart: {gaps} ms"
        states = [c for c, _ in acked["connections"]]
        assert "reconnecting" in states and states[-1] == "connected", acked["connections"]

        # Stored once, in the visitor's conversation.
        visitor = welcome1["visitor_id"]
        conv = rdb.hget(f"omr:customer:chat:main:{visitor}", "last_conversation")
        assert conv == acked["conversation_id"], (conv, acked)
        ins = [json.loads(f["message"])["text"] for _, f in rdb.xrange(f"omr:conv:{{{conv}}}:log")
               if f.get("direction") == "in"]
        assert ins == [OFFLINE_TEXT], ins
        assert d2.alive()
        # Refused attempts while the daemon was down are the only errors.
        errors = [e for e in page.errors()
                  if not (e.get("event") == "console" and "ERR_CONNECTION_REFUSED" in e.get("text", ""))
                  and not (e.get("event") == "ws_error" and "ERR_CONNECTION_REFUSED" in e.get("error", ""))]
        assert not errors, errors
        print(f"\nreconnect: attempts at {opens} ms (typed offline at {t_stopped} ms), gaps {gaps} ms")
    finally:
        page.close()
