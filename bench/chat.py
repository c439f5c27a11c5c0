#!/usr/bin/python3
"""bench/chat.py — what many idle chat websockets cost omnirouted, and how
fast an agent's reply reaches a connected visitor, against what Redis
pub/sub alone takes on this machine.

    /usr/bin/python3 bench/chat.py [--daemon PATH] [--connections N] [--active A] [--replies M] [--runs R]

1. Memory: N (5,000) visitors connect to one daemon (GET /v1/chat/ws, hello
   → welcome) and stay idle. The daemon's VmRSS (/proc/<pid>/status) before
   and after gives the memory per connection; also its open fds, the
   connection rate, and its CPU over an idle window with all N connected
   (one ping interval + 1 s: every socket is pinged once in it).
2. Reply delay: A (500) of them send one message each (so they have a
   conversation). Then M (500) replies to random ones of those, through
   POST /v1/conversations/{id}/replies: one at a time (latency), then all M
   by 16 concurrent posters (burst). Per reply: POST sent → 202, POST sent →
   `message` on the visitor's socket, and (a redis-py subscriber on the
   daemons' channel) POST sent → PUBLISH seen.
   Before any visitor connects, the same replies to a conversation whose
   visitor left give POST → 202 and the daemon's CPU per reply with no
   socket open; and 300 signed webhooks (POST /v1/inbound, each followed
   by a GET /healthz) before and after the N connect: what the open
   sockets add to an HTTP request that waits for Redis, and to one that
   does not.
3. Floor: redis-py (asyncio) PUBLISH → subscriber delay for M messages of
   the daemon's payload size, in the same event loop as the websockets: the
   least any reply can take. The ratios reply / floor are the figures.
Everything runs on 127.0.0.1 (Redis on a unix socket), is checked (each
reply on its visitor's socket exactly once and nowhere else, every socket
still open, the daemon exits 0 on SIGTERM and closes them with 1001), and
is stopped at the end, on failure and on Ctrl-C. Results:
bench/out/chat-<UTC time>.json (+ the daemon log in bench/out/chat-<UTC time>/).
Method and last figures: bench/README.md, section "Chat".

Exit status 0 when every check passed, 1 otherwise.
"""

import importlib.util
import os
import sys

# The helpers the Python benches share (bench/benchlib.py), loaded by path;
# use_test_helpers() takes bench/ off sys.path (bench/email.py would shadow
# the standard library's email package) and puts tests/integration on it.
sys.dont_write_bytecode = True
_spec = importlib.util.spec_from_file_location(
    "benchlib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchlib.py"))
benchlib = sys.modules["benchlib"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(benchlib)
benchlib.use_test_helpers()
from benchlib import (  # noqa: E402
    BENCH as HERE, REPO, Daemon, Meter, bg_load, binary_info, out_paths, pct, proc_cpu, say, warning_lines)


import argparse  # noqa: E402
import asyncio  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import redis as redis_py  # noqa: E402
import redis.asyncio as aredis  # noqa: E402
import websockets  # noqa: E402
import websockets.exceptions  # noqa: E402

import conftest as cf  # noqa: E402

NCPU = os.cpu_count() or 1
SITE = "main"
ORIGIN = "https://www.example.com"
TOKEN = "chat-bench-token-" + uuid.uuid4().hex
AGENT = ("ana", "Ana Lima")
HOOK_SECRET = "chat-bench-hook-" + uuid.uuid4().hex


# --------------------------------------------------------------------------
# /proc


def status_kib(pid, field="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def meter(sources):
    """CPU % (100 = one core, one decimal) of named processes and of the
    machine over a window, and the window's seconds."""
    return Meter(sources, ndigits=1, window_key="seconds")


def ms(x):
    return None if x is None else round(x * 1000.0, 3)


def dist(xs):
    """{n, p50, p90, p99, max, mean} in ms of a list of seconds."""
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "p50": ms(pct(xs, 50)), "p90": ms(pct(xs, 90)), "p99": ms(pct(xs, 99)),
            "max": ms(max(xs)), "mean": ms(statistics.fmean(xs))}


# --------------------------------------------------------------------------
# a minimal HTTP/1.1 keep-alive client on asyncio streams (no aiohttp in
# Debian's default set; http.client would block the loop)


class Http:
    def __init__(self, port):
        self.port = port
        self.r = self.w = None

    async def open(self):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def request(self, method, path, body=b"", headers=None):
        h = {"Host": f"127.0.0.1:{self.port}", "Content-Length": str(len(body))}
        h.update(headers or {})
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        self.w.write(head.encode("latin-1") + body)
        await self.w.drain()
        raw = await self.r.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hd = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                hd[k.strip().lower()] = v.strip()
        if "content-length" in hd:
            data = await self.r.readexactly(int(hd["content-length"]))
        elif hd.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                n = int((await self.r.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                chunk = await self.r.readexactly(n + 2)
                if n == 0:
                    break
                data += chunk[:-2]
        else:
            data = b""
        return status, hd, data

    def close(self):
        if self.w is not None:
            self.w.close()


# --------------------------------------------------------------------------
# the daemon's config (the daemon: benchlib.Daemon)


def make_config(args, tmp, redis_sock, port):
    sec = Path(tmp) / "secrets"
    sec.mkdir(exist_ok=True)
    for name, value in (("chat.key", uuid.uuid4().hex + uuid.uuid4().hex), ("helpdesk.token", TOKEN),
                        ("hook.secret", HOOK_SECRET)):
        f = sec / name
        f.write_text(value + "\n")
        f.chmod(0o600)
    return {
        "log": {"level": args.log_level},
        "http": {"listen": f"127.0.0.1:{port}", "max_connections": args.max_connections,
                 "idle_timeout": "30s", "drain_timeout": "10s",
                 **({"max_header": args.max_header} if args.max_header else {})},
        "redis": {"url": f"unix://{redis_sock}", "prefix": "omr:", "command_timeout": "2s"},
        "api": {"tokens": [{"name": "helpdesk", "token_file": str(sec / "helpdesk.token")}]},
        "outbound": {"give_up_after": "30s", "request_timeout": "5s"},
        "agents": {"list": [{"id": AGENT[0], "name": AGENT[1], "capacity": {"chat": 1000},
                             "queues": ["general"]}]},
        "routing": {"default_queue": "general", "default_priority": "normal"},
        "connectors": {"api": {"adapters": [{"name": "hook", "secret_file": str(sec / "hook.secret"),
                                             "require_timestamp": False}]},
                       "chat": {"session_secret_file": str(sec / "chat.key"),
                                "ping_interval": args.ping_interval,
                                "sites": [{"name": SITE, "origins": [ORIGIN]}]}},
    }


# --------------------------------------------------------------------------
# visitors


class Visitor:
    __slots__ = ("i", "ws", "visitor_id", "token", "conv", "arrivals", "others", "closed", "task")

    def __init__(self, i):
        self.i = i
        self.ws = None
        self.visitor_id = self.token = self.conv = None
        self.arrivals = {}   # reply text -> [monotonic arrival times]
        self.others = []     # anything else the daemon sent after the welcome/ack
        self.closed = None   # (code, reason) once closed
        self.task = None


class Bench:
    def __init__(self, args, daemon):
        self.args = args
        self.d = daemon
        self.url = f"ws://127.0.0.1:{daemon.port}/v1/chat/ws?site={SITE}"
        self.visitors = []
        self.by_text = {}     # reply text -> visitor index it was sent to
        self.waiters = {}     # reply text -> asyncio.Event
        self.published = {}   # reply text -> monotonic time the redis-py observer saw it
        self.pub_sample = None
        self.problems = []

    # one visitor --------------------------------------------------------
    async def connect_one(self, v, sem):
        async with sem:
            v.ws = await websockets.connect(self.url, origin=ORIGIN, compression=None, ping_interval=None,
                                            close_timeout=2, open_timeout=20, max_queue=64)
            await v.ws.send(json.dumps({"type": "hello", "name": f"Visitor {v.i}"}))
            w = json.loads(await asyncio.wait_for(v.ws.recv(), 20))
            if w.get("type") != "welcome":
                raise RuntimeError(f"visitor {v.i}: expected welcome, got {w!r}")
            v.visitor_id, v.token = w.get("visitor_id"), w.get("token")
            v.task = asyncio.ensure_future(self.reader(v))

    async def reader(self, v):
        try:
            async for raw in v.ws:
                t = time.monotonic()
                m = json.loads(raw)
                if m.get("type") == "message" and m.get("direction") == "out":
                    v.arrivals.setdefault(m.get("text"), []).append(t)
                    ev = self.waiters.get(m.get("text"))
                    if ev is not None:
                        ev.set()
                elif m.get("type") == "ack":
                    ev = self.waiters.get(("ack", v.i))
                    if ev is not None:
                        self.waiters[("ack", v.i)] = m
                        ev.set()
                else:
                    v.others.append(m)
        except websockets.exceptions.ConnectionClosed:
            pass
        v.closed = (v.ws.close_code, v.ws.close_reason)

    async def message_one(self, v, sem):
        async with sem:
            ev = asyncio.Event()
            self.waiters[("ack", v.i)] = ev
            await v.ws.send(json.dumps({"type": "message", "client_id": f"b{v.i}",
                                        "text": f"Hello, this is visitor {v.i}: where is my order?"}))
            await asyncio.wait_for(ev.wait(), 20)
            ack = self.waiters.pop(("ack", v.i))
            v.conv = ack["conversation_id"]

    # redis-py observer of the daemons' channel ---------------------------
    async def observer(self, ready):
        r = aredis.Redis(unix_socket_path=self.args._redis_sock)
        ps = r.pubsub()
        await ps.psubscribe("omr:chat*")
        ready.set()
        try:
            while True:
                m = await ps.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if m is None:
                    continue
                t = time.monotonic()
                data = m["data"].decode("utf-8", "replace") if isinstance(m["data"], bytes) else str(m["data"])
                if self.pub_sample is None and "bench reply" in data:
                    self.pub_sample = data
                k = data.find("bench reply ")
                if k >= 0:
                    end = data.find('"', k)
                    self.published.setdefault(data[k:end], t)
        except asyncio.CancelledError:
            pass
        finally:
            await ps.close()
            await r.close()

    # replies --------------------------------------------------------------
    async def one_reply(self, http, v, text):
        ev = asyncio.Event()
        self.waiters[text] = ev
        self.by_text[text] = v.i
        body = json.dumps({"agent_id": AGENT[0], "text": text}).encode()
        t0 = time.monotonic()
        status, _, data = await http.request("POST", f"/v1/conversations/{v.conv}/replies", body,
                                             {"Content-Type": "application/json",
                                              "Authorization": f"Bearer {TOKEN}"})
        t1 = time.monotonic()
        if status != 202:
            self.problems.append(f"reply to visitor {v.i}: HTTP {status} {data[:200]!r}")
            return None
        try:
            await asyncio.wait_for(ev.wait(), self.args.reply_timeout)
        except asyncio.TimeoutError:
            self.problems.append(f"reply {text!r} did not reach visitor {v.i} within {self.args.reply_timeout}s")
            return None
        t2 = v.arrivals[text][0]
        return {"text": text, "t0": t0, "posted": t1 - t0, "arrived": t2 - t0, "after_202": t2 - t1}

    async def reply_phase(self, run, mode, active):
        n = self.args.replies
        tag = f"{run}{mode[0]}"
        texts = [f"bench reply {tag}-{k}-{uuid.uuid4().hex[:8]}" for k in range(n)]
        targets = [random.choice(active) for _ in range(n)]
        conc = 1 if mode == "sequential" else self.args.burst_concurrency
        https = [await Http(self.d.port).open() for _ in range(conc)]
        results = []
        c0 = proc_cpu(self.d.pid)
        t_start = time.monotonic()
        if mode == "sequential":
            for text, v in zip(texts, targets):
                results.append(await self.one_reply(https[0], v, text))
        else:
            queue = list(zip(texts, targets))

            async def worker(h):
                while queue:
                    text, v = queue.pop(0)
                    results.append(await self.one_reply(h, v, text))
            await asyncio.gather(*(worker(h) for h in https))
        t_end = time.monotonic()
        cpu = proc_cpu(self.d.pid) - c0
        for h in https:
            h.close()
        ok = [r for r in results if r]
        last_arrival = max((r["t0"] + r["arrived"] for r in ok), default=t_end)
        pub = [self.published[r["text"]] - r["t0"] for r in ok if r["text"] in self.published]
        pub_to_socket = [r["t0"] + r["arrived"] - self.published[r["text"]] for r in ok
                         if r["text"] in self.published]
        return {
            "mode": mode, "replies": n, "concurrency": conc, "arrived": len(ok),
            "post_to_202": dist([r["posted"] for r in ok]),
            "post_to_socket": dist([r["arrived"] for r in ok]),
            "after_202_to_socket": dist([r["after_202"] for r in ok]),
            "post_to_publish": dist(pub),
            "publish_to_socket": dist(pub_to_socket),
            "seconds": round(last_arrival - t_start, 3),
            "replies_per_s": round(len(ok) / max(last_arrival - t_start, 1e-9), 1),
            "daemon_cpu_ms_per_reply": round(1000.0 * cpu / max(n, 1), 3),
            "_texts": texts,
        }

    async def webhook_probe(self, n, tag):
        """n signed webhooks (POST /v1/inbound/hook, SMS, one customer), one at
        a time, and one GET /healthz after each: latency of each and the
        daemon's CPU per webhook. Measures what open sockets add to an HTTP
        request that waits for Redis (the webhook) and to one that does not."""
        import hmac as _hmac
        h = await Http(self.d.port).open()
        hooks, hz = [], []
        c0 = proc_cpu(self.d.pid)
        for k in range(n):
            body = json.dumps({"external_id": f"{tag}-{k}-{uuid.uuid4().hex[:8]}", "channel": "sms",
                               "from": {"id": "bench-customer"}, "text": "hello"}).encode()
            sig = "sha256=" + _hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
            t0 = time.monotonic()
            status, _, data = await h.request("POST", "/v1/inbound/hook", body,
                                              {"Content-Type": "application/json",
                                               "X-Omniroute-Signature": sig})
            t1 = time.monotonic()
            if status != 200:
                raise RuntimeError(f"webhook: HTTP {status} {data[:200]!r}")
            status, _, _ = await h.request("GET", "/healthz")
            hooks.append(t1 - t0)
            hz.append(time.monotonic() - t1)
        cpu = proc_cpu(self.d.pid) - c0
        h.close()
        return {"webhook": dist(hooks), "healthz": dist(hz),
                "daemon_cpu_ms_per_webhook_and_healthz": round(1000.0 * cpu / n, 3)}

    async def http_baseline(self, conv, n):
        """n sequential replies to a conversation whose visitor is gone:
        POST→202 and the daemon's CPU per reply with no socket to push to."""
        h = await Http(self.d.port).open()
        xs = []
        c0 = proc_cpu(self.d.pid)
        for k in range(n):
            body = json.dumps({"agent_id": AGENT[0], "text": f"baseline {k}"}).encode()
            t0 = time.monotonic()
            status, _, data = await h.request("POST", f"/v1/conversations/{conv}/replies", body,
                                              {"Content-Type": "application/json",
                                               "Authorization": f"Bearer {TOKEN}"})
            xs.append(time.monotonic() - t0)
            if status != 202:
                raise RuntimeError(f"baseline reply: HTTP {status} {data[:200]!r}")
        cpu = proc_cpu(self.d.pid) - c0
        h.close()
        await asyncio.sleep(0.5)   # let the outbound engine finish them
        return {"post_to_202": dist(xs), "daemon_cpu_ms_per_reply": round(1000.0 * cpu / n, 3)}

    # floor: redis-py PUBLISH -> subscriber -------------------------------
    async def floor(self, n, payload_len):
        sub = aredis.Redis(unix_socket_path=self.args._redis_sock)
        pub = aredis.Redis(unix_socket_path=self.args._redis_sock)
        ps = sub.pubsub()
        await ps.subscribe("bench:floor")
        await ps.get_message(timeout=1.0)  # the subscribe confirmation
        pad = "x" * max(0, payload_len - 40)
        delays = []
        for k in range(n):
            t0 = time.monotonic()
            await pub.publish("bench:floor", json.dumps({"k": k, "pad": pad}))
            while True:
                m = await ps.get_message(ignore_subscribe_messages=True, timeout=5.0)
                if m is None:
                    raise RuntimeError("floor: a PUBLISH never reached the subscriber")
                if json.loads(m["data"])["k"] == k:
                    break
            delays.append(time.monotonic() - t0)
        await ps.close()
        await sub.close()
        await pub.close()
        return dist(delays)


# --------------------------------------------------------------------------


def machine_info():
    info = {"nproc": NCPU, "kernel": platform.release(), "python": platform.python_version(),
            "websockets": websockets.__version__, "redis_py": redis_py.__version__}
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                info["cpu"] = ln.split(":", 1)[1].strip()
                break
        for ln in Path("/proc/meminfo").read_text().splitlines():
            if ln.startswith("MemTotal"):
                info["mem_gib"] = round(int(ln.split()[1]) / 1048576, 1)
    except OSError:
        pass
    try:
        info["redis_server"] = subprocess.run([cf.REDIS_SERVER, "--version"], capture_output=True,
                                              text=True).stdout.strip()
    except OSError:
        pass
    return info


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        raise SystemExit(f"chat.py: RLIMIT_NOFILE is {soft} (hard {hard}); {need} needed for "
                         f"the connections (raise the hard limit: ulimit -Hn)")
    return soft


async def run_bench(args, d, redis_srv, out):
    b = Bench(args, d)
    pid = d.pid
    me = os.getpid()
    meter_src = {"daemon": lambda: proc_cpu(pid), "redis": lambda: proc_cpu(redis_srv.proc.pid),
                 "bench": lambda: proc_cpu(me)}
    ready = asyncio.Event()
    obs = asyncio.ensure_future(b.observer(ready))
    await ready.wait()

    # warm-up: one visitor through the whole path (and the payload's size)
    w = Visitor(-1)
    await b.connect_one(w, asyncio.Semaphore(1))
    await b.message_one(w, asyncio.Semaphore(1))
    h = await Http(d.port).open()
    r = await b.one_reply(h, w, f"bench reply warmup-{uuid.uuid4().hex[:8]}")
    h.close()
    if r is None:
        raise RuntimeError("warm-up reply did not arrive: " + "; ".join(b.problems))
    await w.ws.close()
    await asyncio.sleep(1.0)
    baseline = await b.http_baseline(w.conv, args.baseline)
    baseline["probe"] = await b.webhook_probe(args.baseline, "none")
    say(f"no socket connected: reply POST→202 p50 {baseline['post_to_202']['p50']} ms, "
        f"p99 {baseline['post_to_202']['p99']} ms; daemon CPU {baseline['daemon_cpu_ms_per_reply']} ms per reply; "
        f"webhook p50 {baseline['probe']['webhook']['p50']} ms, healthz p50 {baseline['probe']['healthz']['p50']} ms, "
        f"daemon CPU {baseline['probe']['daemon_cpu_ms_per_webhook_and_healthz']} ms per pair")

    # 1. memory per idle connection
    n = args.connections
    rss0, fds0 = status_kib(pid), open_fds(pid)
    me_rss0 = status_kib(me)
    say(f"daemon idle: RSS {rss0} KiB, {fds0} fds; connecting {n} visitors "
        f"({args.open_concurrency} at a time)…")
    b.visitors = [Visitor(i) for i in range(n)]
    sem = asyncio.Semaphore(args.open_concurrency)
    m = meter(meter_src).begin()
    t0 = time.monotonic()
    res = await asyncio.gather(*(b.connect_one(v, sem) for v in b.visitors), return_exceptions=True)
    t_conn = time.monotonic() - t0
    cpu_conn = m.end()
    errs = [x for x in res if isinstance(x, BaseException)]
    if errs:
        b.problems.append(f"{len(errs)} of {n} visitors could not connect; first: {errs[0]!r}")
        if len(errs) == n:
            raise RuntimeError(f"no visitor connected: {errs[0]!r}")
    connected = [v for v in b.visitors if v.visitor_id]
    await asyncio.sleep(args.settle)
    rss1, fds1 = status_kib(pid), open_fds(pid)
    hwm1 = status_kib(pid, "VmHWM")
    me_rss1 = status_kib(me)
    per_conn = (rss1 - rss0) / max(len(connected), 1)
    memory = {"connections": len(connected), "rss_before_kib": rss0, "rss_after_kib": rss1,
              "hwm_after_kib": hwm1, "kib_per_connection": round(per_conn, 2),
              "fds_before": fds0, "fds_after": fds1, "connect_seconds": round(t_conn, 3),
              "connections_per_s": round(len(connected) / t_conn, 1), "cpu_connect": cpu_conn,
              "bench_rss_kib_per_connection": round((me_rss1 - me_rss0) / max(len(connected), 1), 2)}
    say(f"  {len(connected)} connected in {t_conn:.2f}s ({memory['connections_per_s']}/s); daemon RSS "
        f"{rss0} → {rss1} KiB = {per_conn:.2f} KiB per connection; fds {fds0} → {fds1}")

    m = meter(meter_src).begin()
    await asyncio.sleep(args.idle_seconds)
    memory["cpu_idle"] = m.end()
    memory["rss_after_idle_kib"] = status_kib(pid)
    say(f"  idle {args.idle_seconds}s with all connected (ping_interval {args.ping_interval}): daemon CPU "
        f"{memory['cpu_idle']['daemon']}%, bench {memory['cpu_idle']['bench']}%; daemon RSS "
        f"{memory['rss_after_idle_kib']} KiB")

    memory["probe"] = await b.webhook_probe(args.baseline, "open")
    pr = memory["probe"]
    say(f"  with {len(connected)} open: webhook p50 {pr['webhook']['p50']} ms, healthz p50 "
        f"{pr['healthz']['p50']} ms, daemon CPU {pr['daemon_cpu_ms_per_webhook_and_healthz']} ms per pair")

    # 2. a subset sends one message each
    active = random.sample(connected, min(args.active, len(connected)))
    t0 = time.monotonic()
    res = await asyncio.gather(*(b.message_one(v, asyncio.Semaphore(args.open_concurrency)) for v in active),
                               return_exceptions=True)
    errs = [x for x in res if isinstance(x, BaseException)]
    if errs:
        b.problems.append(f"{len(errs)} of {len(active)} messages got no ack; first: {errs[0]!r}")
    active = [v for v in active if v.conv]
    memory["messages_seconds"] = round(time.monotonic() - t0, 3)
    memory["rss_after_messages_kib"] = status_kib(pid)
    say(f"  {len(active)} visitors sent a message ({memory['messages_seconds']}s); daemon RSS "
        f"{memory['rss_after_messages_kib']} KiB")

    # 3. replies and the floor, R runs
    runs = []
    for run in range(args.runs):
        rr = {"run": run + 1, "background_before": bg_load(0.5)}
        for mode in ("sequential", "burst"):
            m = meter(meter_src).begin()
            ph = await b.reply_phase(run + 1, mode, active)
            ph["cpu"] = m.end()
            rr[mode] = ph
        payload_len = len(b.pub_sample.encode()) if b.pub_sample else 300
        m = meter(meter_src).begin()
        rr["floor"] = await b.floor(args.replies, payload_len)
        rr["floor"]["payload_bytes"] = payload_len
        rr["floor"]["cpu"] = m.end()
        s, f = rr["sequential"], rr["floor"]
        rr["ratio_p50"] = round(s["post_to_socket"]["p50"] / f["p50"], 1) if f.get("p50") else None
        rr["ratio_p99"] = round(s["post_to_socket"]["p99"] / f["p99"], 1) if f.get("p99") else None
        rr["ratio_publish_to_socket_p50"] = (round(s["publish_to_socket"]["p50"] / f["p50"], 1)
                                             if f.get("p50") and s["publish_to_socket"].get("p50") else None)
        rr["idle"] = all(rr[k]["cpu"]["other"] <= args.max_other for k in ("sequential", "burst", "floor"))
        runs.append(rr)
        bu = rr["burst"]
        say(f"run {run + 1}: reply POST→socket p50 {s['post_to_socket']['p50']} ms, p99 "
            f"{s['post_to_socket']['p99']} ms (POST→202 p50 {s['post_to_202']['p50']}, POST→PUBLISH p50 "
            f"{s['post_to_publish'].get('p50')}, PUBLISH→socket p50 {s['publish_to_socket'].get('p50')}); "
            f"burst x{bu['concurrency']}: {bu['replies_per_s']} replies/s, p50 {bu['post_to_socket']['p50']} "
            f"p99 {bu['post_to_socket']['p99']} ms; floor PUBLISH→subscriber p50 {f['p50']} p99 {f['p99']} ms; "
            f"ratio p50 {rr['ratio_p50']}, p99 {rr['ratio_p99']}"
            + ("" if rr["idle"] else f"  [not idle: other processes > {args.max_other}% CPU]"))

    # checks: each reply on its visitor's socket exactly once, nowhere else
    await asyncio.sleep(0.5)
    want = {}
    for rr in runs:
        for mode in ("sequential", "burst"):
            for t in rr[mode].pop("_texts"):
                want[t] = b.by_text.get(t)
    got = {}
    for v in b.visitors:
        for t, times in v.arrivals.items():
            if not t or not t.startswith("bench reply ") or t.startswith("bench reply warmup"):
                continue
            got.setdefault(t, []).append((v.i, len(times)))
    wrong = [(t, got.get(t), i) for t, i in want.items() if got.get(t) != [(i, 1)]]
    if wrong:
        b.problems.append(f"{len(wrong)} replies not exactly once on their visitor's socket; e.g. {wrong[:3]}")
    stray = [m for v in b.visitors for m in v.others if m.get("type") not in ("typing", "assigned")]
    still_open = sum(1 for v in connected if v.closed is None)
    if still_open != len(connected):
        b.problems.append(f"{len(connected) - still_open} of {len(connected)} sockets were closed during "
                          f"the run, e.g. {[v.closed for v in connected if v.closed][:3]}")

    obs.cancel()
    await asyncio.gather(obs, return_exceptions=True)
    out.update({"baseline_no_sockets": baseline, "memory": memory, "runs": runs,
                "stray_messages": stray[:20], "n_stray": len(stray),
                "publish_sample": b.pub_sample})
    return b


def summarize(out):
    mem = out["memory"]
    idle = [r for r in out["runs"] if r.get("idle")]
    runs = idle or out["runs"]

    def med(path):
        xs = []
        for r in runs:
            x = r
            for k in path:
                x = x.get(k) if isinstance(x, dict) else None
            if x is not None:
                xs.append(x)
        return (statistics.median(xs), min(xs), max(xs)) if xs else (None, None, None)

    lines = [
        f"runs: {len(out['runs'])}, idle (other processes <= {out['settings']['max_other']}% CPU in every "
        f"phase): {len(idle)}; figures: median (min–max) of the "
        + ("idle runs" if idle else "runs (none was idle: compare with care)"),
        f"memory: {mem['connections']} idle websockets: daemon RSS {mem['rss_before_kib']} → "
        f"{mem['rss_after_kib']} KiB = {mem['kib_per_connection']} KiB per connection "
        f"(fds {mem['fds_before']} → {mem['fds_after']}); connect + hello: {mem['connections_per_s']}/s; "
        f"daemon CPU idle with all connected: {mem['cpu_idle']['daemon']}%",
    ]
    base = out.get("baseline_no_sockets") or {}
    if base:
        lines.append(f"no socket connected: reply POST→202 p50 {base['post_to_202']['p50']} ms, daemon CPU "
                     f"{base['daemon_cpu_ms_per_reply']} ms per reply")
        p0, p1 = base["probe"], mem["probe"]
        lines.append(f"webhook POST p50 {p0['webhook']['p50']} → {p1['webhook']['p50']} ms, healthz p50 "
                     f"{p0['healthz']['p50']} → {p1['healthz']['p50']} ms, daemon CPU per webhook + healthz "
                     f"{p0['daemon_cpu_ms_per_webhook_and_healthz']} → {p1['daemon_cpu_ms_per_webhook_and_healthz']} "
                     f"ms (no socket → {mem['connections']} open)")
    for label, path in (("reply POST→socket p50 ms (sequential)", ("sequential", "post_to_socket", "p50")),
                        ("reply POST→socket p99 ms (sequential)", ("sequential", "post_to_socket", "p99")),
                        ("  POST→202 p50 ms", ("sequential", "post_to_202", "p50")),
                        ("  daemon CPU ms per reply (sequential)", ("sequential", "daemon_cpu_ms_per_reply")),
                        ("  POST→PUBLISH p50 ms", ("sequential", "post_to_publish", "p50")),
                        ("  PUBLISH→socket p50 ms", ("sequential", "publish_to_socket", "p50")),
                        ("  PUBLISH→socket p99 ms", ("sequential", "publish_to_socket", "p99")),
                        ("burst replies/s", ("burst", "replies_per_s")),
                        ("burst POST→socket p50 ms", ("burst", "post_to_socket", "p50")),
                        ("burst POST→socket p99 ms", ("burst", "post_to_socket", "p99")),
                        ("floor PUBLISH→subscriber p50 ms", ("floor", "p50")),
                        ("floor PUBLISH→subscriber p99 ms", ("floor", "p99")),
                        ("ratio reply/floor p50", ("ratio_p50",)),
                        ("ratio reply/floor p99", ("ratio_p99",)),
                        ("ratio PUBLISH→socket/floor p50", ("ratio_publish_to_socket_p50",))):
        m, lo, hi = med(path)
        lines.append(f"{label}: {m} ({lo}–{hi})" if m is not None else f"{label}: n/a")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--daemon", default=os.environ.get("OMNIROUTED") or os.path.join(REPO, "build", "omnirouted"))
    ap.add_argument("--connections", type=int, default=5000)
    ap.add_argument("--active", type=int, default=500, help="visitors that send a message (have a conversation)")
    ap.add_argument("--replies", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3, help="reply + floor measurements on the same connections")
    ap.add_argument("--baseline", type=int, default=300,
                    help="replies posted before any visitor is connected (POST→202 and daemon CPU baseline)")
    ap.add_argument("--burst-concurrency", type=int, default=16)
    ap.add_argument("--open-concurrency", type=int, default=200)
    ap.add_argument("--max-connections", type=int, default=20000, help="http.max_connections")
    ap.add_argument("--max-header", default=None,
                    help="http.max_header (default: the daemon's, 32KiB; MHD's per-connection memory pool)")
    ap.add_argument("--ping-interval", default="25s",
                    help="connectors.chat.ping_interval (the daemon's default, 25s)")
    ap.add_argument("--idle-seconds", type=float, default=None,
                    help="idle window with everything connected (default: ping interval + 1 s, so that "
                         "every socket is pinged in it)")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds between connecting and reading RSS")
    ap.add_argument("--reply-timeout", type=float, default=10.0)
    ap.add_argument("--max-other", type=float, default=15.0,
                    help="a run is idle when other processes used <= this %% CPU in each of its phases")
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--keep-tmp", action="store_true")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    random.seed(args.seed)
    if args.idle_seconds is None:
        args.idle_seconds = cf._duration_s(args.ping_interval) + 1.0

    if not os.access(args.daemon, os.X_OK):
        raise SystemExit(f"chat.py: no omnirouted binary at {args.daemon} (build it, or --daemon PATH)")
    nofile = raise_nofile(args.connections + 200)
    stamp, out_json, out_dir = out_paths(args.out, "chat")
    tmp = tempfile.mkdtemp(prefix="omr-chatbench.")
    binary = os.path.join(tmp, "omnirouted")
    shutil.copy2(args.daemon, binary)   # a rebuild during the run cannot swap it

    out = {"started": stamp, "settings": {k: v for k, v in vars(args).items() if not k.startswith("_")},
           "machine": machine_info(), "binary": binary_info(args.daemon), "rlimit_nofile": nofile}
    problems = []
    redis_srv = d = None
    rc_daemon = None
    status = 1

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        out["background_before"] = bg_load(1.0)
        redis_srv = cf.RedisServer(os.path.join(tmp, "redis"), unixsocket=True)
        redis_srv.start()
        args._redis_sock = redis_srv.unixsocket
        d = Daemon(binary, tmp, "omnirouted", make_config(args, tmp, redis_srv.unixsocket, cf.free_port()))
        d.check_config()
        d.start(poll=0.05)
        say(f"omnirouted {out['binary']['sha1'][:12]} (built {out['binary']['built']}) pid {d.pid} "
            f"on 127.0.0.1:{d.port}; redis {redis_srv.unixsocket}; RLIMIT_NOFILE {nofile}; "
            f"daemon's {_nofile_of(d.pid)}")
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        bench = loop.run_until_complete(run_bench(args, d, redis_srv, out))
        problems += bench.problems
        if not d.alive():
            problems.append(f"omnirouted exited with {d.proc.returncode} during the run")
        # shutdown: every socket gets 1001 (going away), the daemon exits 0;
        # the loop runs meanwhile so that the clients answer the close.
        async def shutdown():
            t0 = time.monotonic()
            d.proc.send_signal(signal.SIGTERM)
            while d.proc.poll() is None and time.monotonic() - t0 < 20:
                await asyncio.sleep(0.02)
            took = time.monotonic() - t0
            vs = [v for v in bench.visitors if v.task is not None]
            await asyncio.wait([v.task for v in vs], timeout=5)
            return took, [v.closed[0] if v.closed else None for v in vs]
        took, codes = loop.run_until_complete(shutdown())
        out["shutdown_seconds"] = round(took, 3)
        rc_daemon, _ = d.stop(20.0)
        hist = {}
        for c in codes:
            hist[str(c)] = hist.get(str(c), 0) + 1
        out["close_codes_on_shutdown"] = hist
        if hist.get("1001", 0) != len(codes):
            problems.append(f"on SIGTERM the sockets were closed with {hist} (expected 1001 for all {len(codes)})")
        if rc_daemon != 0:
            problems.append(f"omnirouted exit code on SIGTERM: {rc_daemon}")
        out["daemon_warnings"] = warning_lines(d.log_text(d.ready_log_offset))[:50]
        out["background_after"] = bg_load(1.0)
        loop.close()
        status = 0 if not problems else 1
    except KeyboardInterrupt:
        problems.append("interrupted")
    except Exception as e:  # noqa: BLE001 - reported, exit 1
        problems.append(f"{type(e).__name__}: {e}")
        traceback.print_exc()
    finally:
        if d is not None and d.alive():
            d.stop(20.0)
        if redis_srv is not None:
            redis_srv.stop()
        if d is not None and os.path.exists(d.log_path):
            shutil.copy2(d.log_path, os.path.join(out_dir, "omnirouted.log"))
        if not args.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            say(f"kept {tmp}")
    out["problems"] = problems
    out["ok"] = status == 0
    if "memory" in out and out.get("runs"):
        out["summary"] = summarize(out)
    Path(out_json).write_text(json.dumps(out, indent=1, default=str) + "\n")
    say("")
    for ln in out.get("summary", []):
        say(ln)
    if out.get("background_before", 0) > 15 or out.get("background_after", 0) > 15:
        say(f"the machine was not idle (background {out.get('background_before')}% / "
            f"{out.get('background_after')}%)")
    for p in problems:
        say(f"PROBLEM: {p}")
    say(f"results: {out_json}")
    return status


def _nofile_of(pid):
    try:
        for ln in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if ln.startswith("Max open files"):
                return ln.split()[3]
    except OSError:
        pass
    return "?"


if __name__ == "__main__":
    sys.exit(main())
