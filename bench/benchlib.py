"""benchlib.py — what the Python benches (bench/email.py, bench/chat.py,
bench/social.py) share: CPU accounting from /proc, the background-load
probe, percentiles, output, a pytest stand-in for importing the tests'
helpers, the daemon under test, a pool of keep-alive HTTP sessions, the
conversation-log clock and the summaries.

The benches load it by path before they put tests/integration's helpers in
use: what needs conftest or requests imports them when called (conftest
needs pytest_stub() first; bench/social.py's ceiling child should not pay
for importing requests)."""

import datetime
import hashlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
TESTS = os.path.join(REPO, "tests", "integration")


def use_test_helpers():
    """sys.path for a bench script: bench/ off it (Python puts the script's
    directory first, and bench/email.py would then shadow the standard
    library's email package, which requests, http.client, smtplib and
    importlib.metadata import), tests/integration first (conftest and the
    helpers); then pytest, or a stub when it is not installed. Called right
    after loading this module, before anything imports `email`."""
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != BENCH]
    sys.path.insert(0, TESTS)
    pytest_stub()


def pytest_stub():
    """conftest.py (and the tests' helpers) import pytest for their
    fixtures; the benches use only their plain helpers, so a stub does when
    pytest is not installed."""
    try:
        import pytest  # noqa: F401
        return
    except ImportError:
        pass
    import types

    m = types.ModuleType("pytest")

    def fixture(*a, **k):
        if a and callable(a[0]) and not k:
            return a[0]
        return lambda f: f

    def fail(msg="", pytrace=True):
        raise RuntimeError(msg)

    class _Mark:
        def __getattr__(self, name):
            return lambda *a, **k: (lambda f: f)

    m.fixture = fixture
    m.hookimpl = lambda *a, **k: (lambda f: f)
    m.fail = fail
    m.mark = _Mark()
    sys.modules["pytest"] = m


def stat_fields(pid):
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()


def machine_jiffies():
    """(busy, total) jiffies over all CPUs; busy = not idle and not iowait."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    total = sum(v)
    return total - v[3] - v[4], total


def proc_cpu(pid, children=False):
    """CPU seconds of a process (all its threads); with children, also of
    its children that have exited and been waited for."""
    f = stat_fields(pid)
    if f is None:
        return 0.0
    t = int(f[11]) + int(f[12])
    if children:
        t += int(f[13]) + int(f[14])
    return t / HZ


def bg_load(seconds=1.0):
    a = machine_jiffies()
    time.sleep(seconds)
    b = machine_jiffies()
    return round(100.0 * NCPU * (b[0] - a[0]) / max(b[1] - a[1], 1))


def say(*a):
    print(*a, flush=True)


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q / 100.0 * len(v) + 0.5)) - 1))]


def ms(x, ndigits=2):
    """Seconds as milliseconds (None stays None)."""
    return None if x is None else round(1000.0 * x, ndigits)


def ratio(a, b):
    return round(a / b, 3) if a and b else None


def per_item(seconds, n):
    """CPU milliseconds per item of each source over a window."""
    return {k: round(1000.0 * v / n, 3) for k, v in seconds.items()} if n else None


def summarize(runs, path, keep_values=False):
    """Median and range over runs of the figure at path (tuple of keys);
    with keep_values, also the values run by run."""
    vals = []
    for r in runs:
        x = r
        for k in path:
            x = x.get(k) if isinstance(x, dict) else None
        if isinstance(x, (int, float)):
            vals.append(x)
    if not vals:
        return None
    out = {"median": round(statistics.median(vals), 3), "min": min(vals), "max": max(vals), "n": len(vals)}
    if keep_values:
        out["values"] = vals
    return out


def out_paths(out_dir, name):
    """(stamp, results JSON path, logs directory) of a run started now:
    out_dir/<name>-<UTC time>.json and out_dir/<name>-<UTC time>/ (made)."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(out_dir, exist_ok=True)
    logs = os.path.join(out_dir, f"{name}-{stamp}")
    os.makedirs(logs, exist_ok=True)
    return stamp, os.path.join(out_dir, f"{name}-{stamp}.json"), logs


def stop_on_signals(*signums):
    """These signals (default SIGTERM, SIGHUP) end the run like Ctrl-C: the
    bench's finally stops everything it started."""
    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for n in signums or (signal.SIGTERM, signal.SIGHUP):
        signal.signal(n, on_signal)


def setup_run_teardown(bench, name):
    """bench.setup(), bench.run(), and bench.teardown() whatever happened.
    Returns why the run was cut short (Ctrl-C, a signal, an exception with
    its traceback printed), or None."""
    aborted = None
    try:
        bench.setup()
        bench.run()
    except KeyboardInterrupt as e:
        aborted = f"interrupted ({e or 'Ctrl-C'})"
        say(f"{name}: {aborted}; stopping what was started")
    except Exception as e:  # noqa: BLE001
        aborted = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    finally:
        bench.teardown()
    return aborted


def binary_info(path):
    """{path, sha1, built (mtime, UTC)} of a daemon binary."""
    return {"path": path, "sha1": hashlib.sha1(Path(path).read_bytes()).hexdigest(),
            "built": datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc
                                                     ).strftime("%Y-%m-%d %H:%M UTC")}


# --------------------------------------------------------------------------
# CPU accounting (/proc): 100% = one core


class Meter:
    """CPU of named sources (name -> callable returning CPU seconds) and of
    the machine over a window: begin() ... end() -> {name: %, machine,
    other} (rounded to ndigits; whole numbers with None), and the window's
    length under window_key when one is given. After end(), .seconds holds
    each source's CPU seconds in the window."""

    def __init__(self, sources, ndigits=None, window_key=None):
        self.sources = sources
        self.ndigits = ndigits
        self.window_key = window_key

    def _snap(self):
        return time.monotonic(), machine_jiffies(), {n: f() for n, f in self.sources.items()}

    def begin(self):
        self.a = self._snap()
        return self

    def end(self):
        b = self._snap()
        nd = self.ndigits
        dt = max(b[0] - self.a[0], 1e-9)
        self.seconds = {n: b[2][n] - self.a[2][n] for n in self.sources}
        out = {n: round(100.0 * self.seconds[n] / dt, nd) for n in self.sources}
        dbusy, dtot = b[1][0] - self.a[1][0], b[1][1] - self.a[1][1]
        out["machine"] = round(100.0 * NCPU * dbusy / dtot, nd) if dtot > 0 else round(0.0, nd)
        out["other"] = round(max(0.0, out["machine"] - sum(out[n] for n in self.sources)), nd)
        if self.window_key:
            out[self.window_key] = round(dt, 3)
        return out


def fmt_cpu(c, order):
    return ", ".join(f"{n} {c[n]}%" for n in order if n in c) + f", machine {c['machine']}% (other {c['other']}%)"


# --------------------------------------------------------------------------
# the daemon under test


def _conftest():
    import conftest  # tests/integration, on sys.path; after pytest_stub()
    return conftest


class Daemon:
    """omnirouted with its config in workdir/<name>.yaml and its log in
    workdir/<name>.log, in its own session (a Ctrl-C in the terminal reaches
    only the bench, which stops it with SIGTERM as a service manager would)."""

    def __init__(self, binary, workdir, name, cfg):
        self.binary = binary
        self.name = name
        self.cfg_path = os.path.join(workdir, f"{name}.yaml")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.port = int(cfg["http"]["listen"].rsplit(":", 1)[1])
        _conftest().write_config(self.cfg_path, cfg)
        self.proc = None
        self.t_spawn = self.t_ready = self.wall_ready = None
        self.ready_log_offset = 0
        self.exits = []  # (how, exit code) of earlier processes of this daemon

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def check_config(self):
        r = subprocess.run([self.binary, "--check-config", "-c", self.cfg_path], capture_output=True,
                           text=True, env=_conftest().daemon_env(), timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"--check-config failed ({r.returncode}):\n{r.stdout}{r.stderr}")

    def start(self, timeout=15.0, poll=0.01):
        """Spawn and wait for GET /readyz 200 (polled every `poll` s on one
        keep-alive session); t_ready / wall_ready are when it answered."""
        import requests
        cf = _conftest()
        log = open(self.log_path, "ab")
        try:
            self.t_spawn = time.monotonic()
            self.proc = subprocess.Popen([self.binary, "-c", self.cfg_path], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=cf.daemon_env(), start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        s = requests.Session()
        last = None
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before ready:\n"
                                       f"{cf.tail(self.log_path)}")
                try:
                    r = s.get(self.url("/readyz"), timeout=1)
                    last = r.status_code
                    if r.status_code == 200:
                        self.t_ready, self.wall_ready = time.monotonic(), time.time()
                        self.ready_log_offset = os.path.getsize(self.log_path)
                        return self
                except requests.RequestException as e:
                    last = e
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not ready within {timeout}s (last /readyz: {last!r}):\n"
                                       f"{cf.tail(self.log_path)}")
                time.sleep(poll)
        finally:
            s.close()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cpu(self):
        return proc_cpu(self.proc.pid) if self.proc else 0.0

    def metrics(self):
        import requests
        r = requests.get(self.url("/metrics"), timeout=5)
        r.raise_for_status()
        return _conftest().parse_metrics(r.text)

    def kill(self):
        """SIGKILL (a crash) and reap."""
        self.proc.kill()
        self.proc.wait(10)
        self.exits.append(("SIGKILL", self.proc.returncode))

    def stop(self, timeout=25.0):
        """SIGTERM; (exit code, seconds). SIGKILL after timeout (code None)."""
        if self.proc is None:
            return None, 0.0
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                return None, time.monotonic() - t0
        return self.proc.returncode, time.monotonic() - t0

    def log_text(self, since=0):
        """The log from byte `since` (ready_log_offset: what came after ready)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class DaemonBench:
    """What bench/email.py's and bench/social.py's Bench classes share: a
    temp dir (kept with --keep-tmp), a copy of the daemon binary, the api
    adapters' secrets, Redis on a unix socket, the daemons started (each
    checked to exit 0 on SIGTERM) and the failures. A subclass defines
    fail(key, what), setup(), run() and teardown()."""

    ready_poll = 0.01  # s between GET /readyz in start_daemon()

    def __init__(self, args, script, tmp_prefix):
        self.args = args
        self.script = script  # "email.py": for messages
        self.tmp = tempfile.mkdtemp(prefix=tmp_prefix, dir="/tmp")
        self.redis = None
        self.daemons = []
        self.failures = []
        self.runs = []
        self.out_logs = None

    def copy_binary(self):
        """Run a copy of --daemon: a rebuild during the bench cannot swap it."""
        src = self.args.daemon
        if not os.path.isfile(src) or not os.access(src, os.X_OK):
            raise SystemExit(f"{self.script}: no daemon binary at {src} (build it, or pass --daemon PATH)")
        self.binary = os.path.join(self.tmp, "omnirouted")
        shutil.copy2(src, self.binary)
        bi = binary_info(self.binary)  # copy2 keeps the mtime
        self.binary_sha1, self.binary_mtime = bi["sha1"], bi["built"]

    def write_secrets(self):
        """tmp/secrets with base_config()'s api adapters' secret files."""
        self.secrets = Path(self.tmp, "secrets")
        self.secrets.mkdir()
        _conftest().write_secrets(self.secrets)

    def start_redis(self):
        import redis as redis_py
        self.redis = _conftest().RedisServer(Path(self.tmp, "redis"), unixsocket=True)
        self.redis.start()
        self.rdb = redis_py.Redis(unix_socket_path=self.redis.unixsocket, decode_responses=True,
                                  socket_timeout=30)

    def start_daemon(self, name, cfg):
        d = Daemon(self.binary, self.tmp, name, cfg)
        d.check_config()
        self.daemons.append(d)
        return d.start(poll=self.ready_poll)

    def stop_checked(self, key, d, res):
        """SIGTERM d; its exit code and stop time go to res; a failure (of
        key) when it had exited before or did not exit 0."""
        alive = d.alive()
        rc, secs = d.stop()
        res["daemon_exit"] = rc
        res["daemon_stop_s"] = round(secs, 3)
        if not alive:
            self.fail(key, f"{d.name} had exited on its own before the stop (code {rc})")
        elif rc != 0:
            self.fail(key, f"{d.name} exit code {rc} after SIGTERM ({secs:.1f} s)")

    def stop_daemons(self):
        """Teardown: SIGTERM every daemon still running (errors printed)."""
        for d in self.daemons:
            try:
                if d.alive():
                    d.stop()
            except Exception:  # noqa: BLE001
                traceback.print_exc()

    def remove_tmp(self):
        """Teardown, last: Redis (it lives in the temp dir) stopped; the
        temp dir removed unless --keep-tmp."""
        if self.redis:
            self.redis.stop()
        if self.args.keep_tmp:
            say(f"kept temp dir {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


LEVEL_RE = re.compile(r"\blevel=(warn\w*|error|err|crit\w*|fatal)\b")


def warning_lines(text):
    """The lines of a daemon log at level warning or worse."""
    return [ln for ln in text.splitlines() if LEVEL_RE.search(ln)]


# --------------------------------------------------------------------------
# Redis readers


def store_span(rdb):
    """(messages logged, first, last store) over every conversation log:
    the entry ids are Redis' clock (ms) at the store; wall seconds."""
    keys = list(rdb.scan_iter(match="omr:conv:*:log", count=10000))
    if not keys:
        return 0, None, None
    p = rdb.pipeline(transaction=False)
    for k in keys:
        p.xrange(k, count=1)
        p.xrevrange(k, count=1)
        p.xlen(k)
    res = p.execute()
    firsts = [int(r[0][0].split("-")[0]) for r in res[0::3] if r]
    lasts = [int(r[0][0].split("-")[0]) for r in res[1::3] if r]
    return sum(res[2::3]), min(firsts) / 1000.0, max(lasts) / 1000.0


# --------------------------------------------------------------------------
# HTTP posting with a pool of keep-alive sessions


def post_pool(url_of, reqs, clients, warm_url=None, method="POST"):
    """Send each (body, headers) of reqs to url_of(i) with `clients` threads,
    one requests.Session (keep-alive) each. With warm_url, every session
    first GETs it, so that it has its connection before the clock starts.
    Returns (t0, results) with results[i] = (status, text, t_sent,
    t_answered), monotonic; t0 is when all threads were released."""
    import requests
    results = [None] * len(reqs)
    counter = iter(range(len(reqs)))
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    errors = []

    def worker():
        s = requests.Session()
        try:
            if warm_url is not None:
                s.get(warm_url, timeout=10)
            barrier.wait()
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                body, headers = reqs[i]
                t1 = time.monotonic()
                try:
                    r = s.request(method, url_of(i), data=body, headers=headers, timeout=60)
                    results[i] = (r.status_code, r.text, t1, time.monotonic())
                except requests.RequestException as e:
                    results[i] = (None, repr(e), t1, time.monotonic())
        except Exception as e:  # noqa: BLE001 - reported by the caller
            errors.append(repr(e))
            try:
                barrier.abort()
            except Exception:  # noqa: BLE001
                pass
        finally:
            s.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"posting threads failed: {errors[:3]}")
    return t0, results
