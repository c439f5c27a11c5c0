"""Shared fixtures for the omnirouted black-box tests.

Everything here drives real processes: Debian's redis-server and the daemon
binary (env OMNIROUTED, else $OMR_SOURCE_DIR/build/omnirouted, else the
build/ directory next to this source tree). Nothing is mocked.

Fixtures:
  redis_server   a fresh redis-server on 127.0.0.1:<free port> (tmp_path dir)
  rdb            a redis-py client (decode_responses=True) on it
  make_config    a fresh config dict for that redis (edit, then start_daemon)
  start_daemon   cfg -> running, ready Daemon; SIGTERM + exit 0 asserted at teardown
  daemon         start_daemon(make_config()) for the common case
  fake_provider  fake Twilio Messages API + Vonage /sms/json (sms_helpers.FakeProvider)
  sms_config     make_config() + api tokens, outbound, Twilio / Vonage accounts -> fake_provider
  sms_daemon     start_daemon(sms_config())
SMS webhook signatures come from the providers' official npm SDKs through
tests/js/sign.js (npm ci is run there once if node_modules is missing).

On a failing test the tail of every daemon's / redis' log is added to the
report (pytest prints it under the failure).
"""

import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis as redis_py
import requests

sys.dont_write_bytecode = True

HERE = Path(__file__).resolve().parent
SOURCE_DIR = Path(os.environ.get("OMR_SOURCE_DIR") or HERE.parent.parent).resolve()
BINARY = Path(os.environ.get("OMNIROUTED") or SOURCE_DIR / "build" / "omnirouted")
REDIS_SERVER = shutil.which("redis-server", path="/usr/bin:/usr/local/bin:" + os.environ.get("PATH", "")) \
    or "/usr/bin/redis-server"

ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
RFC3339_MS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# Secrets written for the adapters of make_config(); the files carry a
# trailing newline (shop), CRLF (partner) or nothing (strict) — the
# contract says the trailing \r\n is not part of the key.
SECRETS = {
    "shop": "shop-secret-0123456789",
    "partner": "partner-secret-abcdef",
    "strict": "strict-secret-xyz",
}
SECRET_FILE_SUFFIX = {"shop": "\n", "partner": "\r\n", "strict": ""}

DEFAULT_TEST_TIMEOUT = 60  # seconds, per test, including fixture teardown


# --------------------------------------------------------------------------
# helpers


def sign(secret, body, ts=None):
    """The X-Omniroute-Signature value for `body` (bytes or str).

    signed = raw body, or "<ts>." + raw body when a timestamp is sent."""
    if isinstance(secret, str):
        secret = secret.encode()
    if isinstance(body, str):
        body = body.encode()
    signed = body if ts is None else str(ts).encode() + b"." + body
    return "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()


def signed_headers(secret, body, ts=None):
    h = {"Content-Type": "application/json", "X-Omniroute-Signature": sign(secret, body, ts)}
    if ts is not None:
        h["X-Omniroute-Timestamp"] = str(ts)
    return h


def uid(prefix="m"):
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def payload(external_id=None, **over):
    """A valid inbound body (dict). Keyword arguments replace top-level
    fields; `from_` replaces "from"."""
    p = {
        "external_id": uid() if external_id is None else external_id,
        "channel": "sms",
        "from": {"id": uid("cust"), "name": "Ana", "handle": "+15550001111"},
        "to": "support",
        "text": "hello there",
    }
    if "from_" in over:
        p["from"] = over.pop("from_")
    p.update(over)
    return p


def body_bytes(p):
    if isinstance(p, (bytes, bytearray)):
        return bytes(p)
    if isinstance(p, str):
        return p.encode()
    return json.dumps(p, ensure_ascii=False).encode()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Poll pred() until it returns something other than None/False (or
    raising); return that value or raise AssertionError."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = pred()
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = e
        # Not truthiness: a requests.Response for a 4xx/5xx is falsy.
        if last is not None and last is not False and not isinstance(last, Exception):
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def quiet(check, seconds, interval=0.05):
    """check() must stay true for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), "condition broke during the quiet period"
        time.sleep(interval)
    assert check()


def tail(path, n=60):
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-n:])


def proc_state(pid):
    """'R', 'S', 'Z', ... or None when the process does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[0]


def children_of(pid):
    """Direct children of pid (from /proc/*/stat)."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(p.name))
    return out


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels.items())): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$', line)
        assert m, f"unparseable metrics line: {line!r}"
        labels = {}
        if m.group(3):
            for lm in re.finditer(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3)):
                labels[lm.group(1)] = lm.group(2)
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def metric(metrics, name, **labels):
    """Sum of the series of `name` whose labels include `labels` (0 if none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in metrics.items() if n == name and want <= set(ls))


# --------------------------------------------------------------------------
# YAML emitter (block style; enough for our configs, no PyYAML needed)

_PLAIN_RE = re.compile(r"^(\d+(ms|s|m|h|d|KiB|MiB|GiB|kB|MB)?|true|false)$")


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Raw):
        return v.text
    s = str(v)
    if _PLAIN_RE.match(s):
        return s
    return json.dumps(s, ensure_ascii=False)


class Raw:
    """A scalar emitted verbatim (e.g. Raw('[1]') for a wrong-type test)."""

    def __init__(self, text):
        self.text = text


def to_yaml(obj, indent=0):
    pad = "  " * indent
    lines = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(v, indent + 1))
            elif isinstance(v, list) and v:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(v, indent + 1))
            elif isinstance(v, list):
                lines.append(f"{pad}{k}: []")
            elif isinstance(v, dict):
                lines.append(f"{pad}{k}: {{}}")
            else:
                lines.append(f"{pad}{k}: {_scalar(v)}")
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict):
                sub = to_yaml(item, indent + 1).split("\n")
                first = sub[0].lstrip()
                lines.append(f"{pad}- {first}")
                lines.extend(sub[1:])
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# redis-server


class RedisServer:
    def __init__(self, workdir, port=None, extra_args=(), unixsocket=False):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.unixsocket = str(self.dir / "redis.sock") if unixsocket else None
        self.log_path = self.dir / "redis-server.log"
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout=10):
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--save", "", "--daemonize", "no",
                "--logfile", "", "--appendonly", "no"]
        if self.unixsocket:
            args += ["--unixsocket", self.unixsocket, "--unixsocketperm", "700"]
        args += self.extra_args  # later arguments win (e.g. --appendonly yes)
        logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n{tail(self.log_path)}")
            try:
                if self.client().ping():
                    return
            except redis_py.exceptions.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server not answering on {self.port}:\n{tail(self.log_path)}")
            time.sleep(0.01)

    def client(self, **kw):
        return redis_py.Redis(host="127.0.0.1", port=self.port, db=0, decode_responses=True,
                              socket_timeout=5, socket_connect_timeout=2, **kw)

    def kill(self):
        """SIGKILL, like a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


# --------------------------------------------------------------------------
# the daemon


class Daemon:
    def __init__(self, cfg_path, log_path, port, drain_timeout_s=10.0):
        self.cfg_path = Path(cfg_path)
        self.log_path = Path(log_path)
        self.port = port
        self.drain_timeout_s = drain_timeout_s
        self.proc = None

    # process ------------------------------------------------------------
    def start(self):
        if not BINARY.is_file() or not os.access(BINARY, os.X_OK):
            pytest.fail(f"daemon binary {BINARY} missing (build it, or set OMNIROUTED)", pytrace=False)
        logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([str(BINARY), "-c", str(self.cfg_path)],
                                         stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=daemon_env())
        finally:
            logf.close()

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"omnirouted exited with {self.proc.returncode} before ready")
            try:
                r = requests.get(self.url("/readyz"), timeout=1)
                last = (r.status_code, r.text)
                if r.status_code == 200:
                    return
            except requests.RequestException as e:
                last = e
            time.sleep(0.02)
        raise AssertionError(f"omnirouted not ready within {timeout}s (last /readyz: {last!r})")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def terminate(self, timeout=None):
        """SIGTERM and wait; returns (exit code, seconds taken)."""
        if self.proc.poll() is None:
            t0 = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout if timeout is not None else self.drain_timeout_s + 5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("omnirouted did not exit after SIGTERM (killed)")
            return self.proc.returncode, time.monotonic() - t0
        return self.proc.returncode, 0.0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # logs ----------------------------------------------------------------
    def log_text(self):
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_offset(self):
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def wait_log(self, pattern, since=0, timeout=5.0):
        """Wait for a log line matching regex `pattern` after byte offset `since`."""
        rx = re.compile(pattern)

        def found():
            text = self.log_path.read_bytes()[since:].decode("utf-8", "replace")
            for line in text.splitlines():
                if rx.search(line):
                    return line
            return None

        return wait_until(found, timeout, interval=0.02, what=f"log line /{pattern}/")

    # http ----------------------------------------------------------------
    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path, **kw):
        kw.setdefault("timeout", 5)
        return requests.get(self.url(path), **kw)

    def post(self, adapter, body, *, secret=None, ts=None, sign_it=True, headers=None,
             session=None, timeout=10, path=None):
        """POST /v1/inbound/<adapter>. body: dict (JSON-encoded) or bytes.
        Signs with the adapter's secret (SECRETS) unless sign_it is False."""
        raw = body_bytes(body)
        h = {"Content-Type": "application/json"}
        if sign_it:
            h.update(signed_headers(secret if secret is not None else SECRETS.get(adapter, "x"), raw, ts))
        elif ts is not None:
            h["X-Omniroute-Timestamp"] = str(ts)
        if headers:
            h.update(headers)
        s = session or requests
        return s.post(self.url(path or f"/v1/inbound/{adapter}"), data=raw, headers=h, timeout=timeout)

    def metrics(self):
        r = self.get("/metrics")
        assert r.status_code == 200, r.text
        return parse_metrics(r.text)


def daemon_env():
    env = dict(os.environ)
    # Never let the caller's service environment change where secrets or
    # the embedded redis live, or the log format.
    for k in ("CREDENTIALS_DIRECTORY", "RUNTIME_DIRECTORY", "JOURNAL_STREAM", "NOTIFY_SOCKET",
              "LISTEN_FDS", "LISTEN_PID"):
        env.pop(k, None)
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin:" + env.get("PATH", "")
    return env


# --------------------------------------------------------------------------
# pytest plumbing


def _register(item, name, path):
    item.__dict__.setdefault("_omr_logs", []).append((name, path))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for name, path in item.__dict__.get("_omr_logs", []):
            rep.sections.append((f"{name} log tail ({path})", tail(path)))
        for name, fn in item.__dict__.get("_omr_sections", []):
            try:
                rep.sections.append((name, fn()))
            except Exception as e:  # noqa: BLE001 - diagnostics only
                rep.sections.append((name, f"<unavailable: {e!r}>"))


class OmrTestTimeout(BaseException):
    pass


@pytest.fixture(autouse=True)
def _per_test_timeout(request):
    """A hard bound on every test (body + fixtures): SIGALRM in the main thread."""
    marker = request.node.get_closest_marker("timeout")
    seconds = int(marker.args[0]) if marker else DEFAULT_TEST_TIMEOUT

    def on_alarm(signum, frame):
        raise OmrTestTimeout(f"test exceeded {seconds}s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test time bound")


@pytest.fixture
def redis_factory(request, tmp_path):
    servers = []

    def make(name="redis", **kw):
        srv = RedisServer(tmp_path / name, **kw)
        _register(request.node, f"redis-server[{name}]", srv.log_path)
        servers.append(srv)
        srv.start()
        return srv

    yield make
    for srv in servers:
        srv.kill()


@pytest.fixture
def redis_server(redis_factory):
    return redis_factory()


@pytest.fixture
def rdb(redis_server):
    c = redis_server.client()
    yield c
    c.close()


def write_secrets(d):
    """The secret files of base_config()'s api adapters in directory d."""
    for name, secret in SECRETS.items():
        f = d / f"{name}.secret"
        f.write_text(secret + SECRET_FILE_SUFFIX[name])
        f.chmod(0o600)
    return d


@pytest.fixture
def secrets_dir(tmp_path):
    d = tmp_path / "secrets"
    d.mkdir()
    return write_secrets(d)


def base_config(redis_url, secrets_dir, port):
    """The config most tests run with. Routing:
        refunds  keywords refund / hoàn tiền      -> billing, high
        vip      channel sms, sender +4477*       -> vip, urgent
        partner  adapter api:partner              -> partner
        default                                   -> general, normal
    """
    cfg = {
        "log": {"level": "info"},
        "http": {
            "listen": f"127.0.0.1:{port}",
            "max_body": "1MiB",
            "idle_timeout": "30s",
            "drain_timeout": "10s",
        },
        "redis": {
            "url": redis_url,
            "prefix": "omr:",
            "command_timeout": "2s",
        },
        "connectors": {
            "api": {
                "timestamp_window": "5m",
                "adapters": [
                    {"name": "shop", "secret_file": str(secrets_dir / "shop.secret"),
                     "require_timestamp": False},
                    {"name": "partner", "secret_file": str(secrets_dir / "partner.secret")},
                    {"name": "strict", "secret_file": str(secrets_dir / "strict.secret"),
                     "require_timestamp": True},
                ],
            }
        },
        "routing": {
            "default_queue": "general",
            "default_priority": "normal",
            "rules": [
                {"name": "refunds", "keywords": ["refund", "hoàn tiền"], "queue": "billing",
                 "priority": "high"},
                {"name": "vip", "channel": ["sms"], "sender": ["+4477*"], "queue": "vip",
                 "priority": "urgent"},
                {"name": "partner", "adapter": ["api:partner"], "queue": "partner"},
            ],
        },
    }
    if redis_url is None:
        del cfg["redis"]["url"]
    return cfg


@pytest.fixture
def make_config(redis_server, secrets_dir):
    port = free_port()

    def make(**over):
        cfg = base_config(redis_server.url, secrets_dir, port)
        cfg.update(over)
        return cfg

    return make


@pytest.fixture
def start_daemon(request, tmp_path, redis_factory):
    # depends on redis_factory so that daemons stop before the redis servers do
    daemons = []

    def start(cfg, name=None, wait_ready=True, ready_timeout=10.0):
        n = len(daemons)
        name = name or f"omnirouted{n or ''}"
        cfg_path = tmp_path / f"{name}.yaml"
        cfg_path.write_text(to_yaml(cfg) + "\n", encoding="utf-8")
        port = int(cfg["http"]["listen"].rsplit(":", 1)[1])
        drain = _duration_s(cfg["http"].get("drain_timeout", "10s"))
        d = Daemon(cfg_path, tmp_path / f"{name}.stderr", port, drain)
        _register(request.node, name, d.log_path)
        daemons.append(d)
        d.start()
        if wait_ready:
            d.wait_ready(ready_timeout)
        return d

    yield start

    problems = []
    for d in daemons:
        if d.proc is None:
            continue
        was_alive = d.alive()
        try:
            rc, _ = d.terminate()
        except AssertionError as e:
            problems.append(f"{d.log_path.name}: {e}")
            continue
        if rc != 0:
            problems.append(f"{d.log_path.name}: exit code {rc} (was {'running' if was_alive else 'already exited'})")
    if problems:
        pytest.fail("daemon teardown: " + "; ".join(problems), pytrace=False)


def write_config(path, cfg):
    Path(path).write_text(to_yaml(cfg) + "\n", encoding="utf-8")


def offline_config(tmp_path):
    """(base_config(), its secrets dir) for --check-config tests: a
    placeholder secret file for each api adapter in tmp_path/secrets, and a
    Redis URL that nothing listens on."""
    sec = tmp_path / "secrets"
    sec.mkdir()
    for n in SECRETS:
        (sec / f"{n}.secret").write_text("s\n")
    return base_config("redis://127.0.0.1:1/0", sec, free_port()), sec


def _duration_s(v):
    m = re.match(r"^(\d+)(ms|s|m|h|d)?$", str(v))
    n, unit = int(m.group(1)), m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


@pytest.fixture
def daemon(start_daemon, make_config):
    return start_daemon(make_config())


# --------------------------------------------------------------------------
# Redis-side helpers


# Queue layout (daemon/routing.lua, R.enqueue). A pull queue (every
# queue not declared `mode: push`) is one stream per priority band
# omr:queue:<q>:<band> (consumer group `agents`), one entry per work item: a
# conversation entering the queue (kind new | reopened | transferred |
# declined | requeued), never a follow-up message. Beside them:
# omr:queue:<q>:waiting (zset), :conf (hash), :agents (set), :rr.
# Every message, first or follow-up, is in omr:conv:{C}:log.

BANDS = ("urgent", "high", "normal", "low")


def band_key(queue, band):
    assert band in BANDS, band
    return f"omr:queue:{queue}:{band}"


def _message_of(fields):
    raw = fields.get("message", "")
    return json.loads(raw) if raw else None


def queue_entries(rdb, queue="general", band=None):
    """[(entry id, fields, message dict or None)] of pull queue `queue`: the
    band stream omr:queue:<queue>:<band>, or all four in band order
    (urgent, high, normal, low) when band is None, via XRANGE. `message` is
    the JSON of the message that made the work item (None when the entry
    carries none, e.g. a transfer)."""
    out = []
    for b in (BANDS if band is None else (band,)):
        for eid, fields in rdb.xrange(band_key(queue, b)):
            out.append((eid, fields, _message_of(fields)))
    return out


def work_items(rdb, conv_id, queue="general"):
    """The entries of queue_entries(rdb, queue) for one conversation."""
    return [e for e in queue_entries(rdb, queue) if e[1].get("conversation_id") == conv_id]


def waiting(rdb, queue="general"):
    """Conversation ids in omr:queue:<queue>:waiting, next first."""
    return rdb.zrange(f"omr:queue:{queue}:waiting", 0, -1)


def conv_log(rdb, conv_id):
    """[(entry id, fields, message dict or None)] of omr:conv:{C}:log."""
    return [(eid, f, _message_of(f)) for eid, f in rdb.xrange(f"omr:conv:{{{conv_id}}}:log")]


def logged_messages(rdb, direction="in"):
    """[(conversation id, entry id, fields, message dict)] of every message
    in every conversation log omr:conv:{C}:log (direction "in" by default,
    None for all): where each stored message is, first or follow-up."""
    out = []
    for key in sorted(rdb.scan_iter(match="omr:conv:*:log", count=1000)):
        conv = key[len("omr:conv:{"):-len("}:log")]
        for eid, f in rdb.xrange(key):
            if direction is None or f.get("direction") == direction:
                out.append((conv, eid, f, _message_of(f)))
    return out


def assert_one_work_item(rdb, conv_id, queue="general", kind="new", band=None):
    """The queue holds exactly one work item for the conversation (of that
    kind, in that band if given) and the conversation waits in it. Returns
    (entry id, fields, message dict or None)."""
    items = work_items(rdb, conv_id, queue)
    assert len(items) == 1, f"expected one work item for {conv_id} in {queue}, found {items!r}"
    eid, f, m = items[0]
    assert f["kind"] == kind, f
    if band is not None:
        assert rdb.xrange(band_key(queue, band), eid, eid), f"{eid} is not in band {band}: {f!r}"
    assert conv_id in waiting(rdb, queue), (conv_id, waiting(rdb, queue))
    return items[0]


def _size(rdb, key):
    t = rdb.type(key)
    n = {"stream": rdb.xlen, "zset": rdb.zcard, "set": rdb.scard, "hash": rdb.hlen,
         "list": rdb.llen, "string": rdb.strlen}.get(t, lambda k: None)(key)
    return t, n


def store_snapshot(rdb):
    """Everything an accepted message would add: every queue key with its
    type and size (band streams, waiting sets, ...; not the :conf hashes
    and empty streams the daemon publishes on connect), the length of every
    conversation log (a follow-up adds to an existing one), event count,
    dedup, thread, customer and conversation keys."""
    queues = {}
    for k in rdb.scan_iter(match="omr:queue:*", count=1000):
        t, n = _size(rdb, k)
        if k.endswith(":conf") or (t == "stream" and n == 0):
            continue
        queues[k] = (t, n)
    return {
        "queues": queues,
        "logs": {k: rdb.xlen(k) for k in rdb.scan_iter(match="omr:conv:*:log", count=1000)},
        "events": rdb.xlen("omr:events") if rdb.exists("omr:events") else 0,
        "dedup": sorted(rdb.scan_iter(match="omr:dedup:*", count=1000)),
        "threads": sorted(rdb.scan_iter(match="omr:thread:*", count=1000)),
        "customers": sorted(rdb.scan_iter(match="omr:customer:*", count=1000)),
        "conv": sorted(rdb.scan_iter(match="omr:conv:*", count=1000)),
    }


def assert_error(resp, status, code):
    assert resp.status_code == status, f"expected {status} {code}, got {resp.status_code}: {resp.text!r}"
    ctype = resp.headers.get("Content-Type", "")
    assert "json" in ctype, f"error body Content-Type is {ctype!r}, not JSON: {resp.text!r}"
    try:
        j = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {resp.text!r}")
    assert isinstance(j, dict), j
    assert j.get("error") == code, f"expected error {code!r}, got {j!r}"
    assert isinstance(j.get("detail"), str) and j["detail"], f"error body lacks a detail sentence: {j!r}"
    return j


def assert_stored_ok(resp, queue="general"):
    assert resp.status_code == 200, f"expected 200, got {resp.status_code}: {resp.text!r}"
    j = resp.json()
    assert ULID_RE.match(j.get("conversation_id", "")), j
    assert ULID_RE.match(j.get("message_id", "")), j
    if queue is not None:
        assert j.get("queue") == queue, j
    assert j.get("duplicate") is False, j
    return j


# --------------------------------------------------------------------------
# SMS: Twilio / Vonage connectors, replies API, fake provider send APIs
# (helpers in sms_helpers.py; signatures by the official SDKs via tests/js)

import sms_helpers  # noqa: E402
from sms_helpers import API_TOKENS, TWILIO, VONAGE, FakeProvider  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
    sms_helpers.SIGNER.close()


@pytest.fixture
def fake_provider(request):
    """Fake Twilio Messages API + Vonage /sms/json (see sms_helpers.FakeProvider)."""
    fake = FakeProvider()
    request.node.__dict__.setdefault("_omr_sections", []).append(
        ("fake provider requests", lambda: "\n".join(
            f"{r.method} {r.path} -> {r.answer_status} auth={r.basic_auth} form={r.form}"
            for r in fake.requests()) or "<none>"))
    yield fake
    fake.close()


@pytest.fixture
def sms_secrets(secrets_dir):
    """Token / secret files of sms_config(), each with a trailing newline."""
    def w(name, value):
        f = secrets_dir / name
        f.write_text(value + "\n")
        f.chmod(0o600)
    for name, tok in API_TOKENS.items():
        w(f"{name}.token", tok)
    for name, a in TWILIO.items():
        w(f"twilio-{name}.token", a["auth_token"])
    for name, a in VONAGE.items():
        w(f"vonage-{name}.secret", a["api_secret"])
        if "signature_secret" in a:
            w(f"vonage-{name}.sig", a["signature_secret"])
    return secrets_dir


def sms_sections(secrets_dir, api_base):
    twilio = []
    for name, a in TWILIO.items():
        twilio.append({
            "name": name,
            "account_sid": a["account_sid"],
            "auth_token_file": str(secrets_dir / f"twilio-{name}.token"),
            "public_url": a["public_url"],
            "api_base": api_base,
            "from": a["from"],
        })
    vonage = []
    for name, a in VONAGE.items():
        acct = {"name": name, "api_key": a["api_key"],
                "api_secret_file": str(secrets_dir / f"vonage-{name}.secret")}
        if "signature_secret" in a:
            acct["signature_secret_file"] = str(secrets_dir / f"vonage-{name}.sig")
            acct["signature_method"] = a["signature_method"]
            if name == "main":  # the others rely on the default (true when a secret is set)
                acct["require_signature"] = True
        acct["api_base"] = api_base
        acct["from"] = Raw(json.dumps(a["from"]))  # a quoted string, as in the contract
        vonage.append(acct)
    return {
        "api": {"tokens": [{"name": n, "token_file": str(secrets_dir / f"{n}.token")} for n in API_TOKENS]},
        "outbound": {"give_up_after": "30s", "request_timeout": "5s"},
        "twilio": {"accounts": twilio},
        "vonage": {"accounts": vonage},
    }


@pytest.fixture
def sms_config(make_config, sms_secrets, fake_provider):
    """make_config() plus api tokens, outbound, and the Twilio accounts
    main / alt and Vonage accounts main (md5hash) / hmac (sha256) / open
    (unsigned) of sms_helpers, all sending to fake_provider."""
    def make(**over):
        cfg = make_config()
        sec = sms_sections(sms_secrets, fake_provider.base_url)
        cfg["api"] = sec["api"]
        cfg["outbound"] = sec["outbound"]
        cfg["connectors"]["twilio"] = sec["twilio"]
        cfg["connectors"]["vonage"] = sec["vonage"]
        cfg.update(over)
        return cfg
    return make


@pytest.fixture
def sms_daemon(start_daemon, sms_config):
    return start_daemon(sms_config())
