#!/usr/bin/python3
"""bench/social.py — how fast omnirouted drains a Mastodon / X backlog and
takes in Meta webhooks, against what the same fakes and clients do
without it on this machine, and how long a poll lease handover takes.

    /usr/bin/python3 bench/social.py [--daemon PATH] [--mentions N] [--meta-messages M] [--kills K] [--runs R]

Per run (a fresh Redis state and a new daemon for every phase):
  1. Mastodon backlog: a daemon polls an empty FakeMastodon
     (tests/integration/social_helpers.py) once, which stores cursor "0";
     then N (4,000) mentions appear at once (added under the fake's lock)
     and are read from min_id=0 in pages of 80, poll_interval 100ms, no
     effective rate limit. Clock: the first poll that got the backlog (its
     arrival at the fake) to the last message stored (the conversation-log
     entry id: Redis' clock). Ceiling: a Python client (a child process,
     one keep-alive connection) paging the same fake with min_id as fast as
     it answers; ratio = daemon / ceiling.
  2. X backlog: the same with FakeX, pages of 100 (next_token).
  3. Meta webhooks: M (3,000) messages in signed deliveries of 10
     (X-Hub-Signature-256) posted by 16 keep-alive sessions (threads);
     messages/s, request p50/p99. Ceiling: the same sessions on
     GET /healthz; ratio = webhook requests/s / healthz requests/s.
Once: 4. Lease handover: two daemons poll one Mastodon account (lease 2s,
  poll_interval 500ms); K (5) times the lease holder is SIGKILLed at a
  random point of its cycle: kill → the other owns the lease in Redis, and
  kill → its first request at the fake (must be ≤ the lease); then the
  killed one is started again (standby). Last, one SIGTERM handover.
Every phase checks exactly-once storage (dedup keys = log entries = sent),
no rate-limit violation at the fakes, and that every daemon exits 0 on
SIGTERM. Everything runs on 127.0.0.1 and free ports and is stopped at the
end, on failure and on Ctrl-C. Results: bench/out/social-<UTC time>.json
(+ daemon logs in bench/out/social-<UTC time>/). Method and last figures:
bench/README.md, section "Social".

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
    BENCH as HERE, REPO, DaemonBench, Meter, bg_load, fmt_cpu, ms, out_paths, pct, per_item, post_pool,
    proc_cpu, ratio, say, setup_run_teardown, stop_on_signals, store_span, summarize, warning_lines)


import argparse  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

NCPU = os.cpu_count() or 1
MASTODON = "mastodon:brand"
XP = "x:brand"
META = "meta:shop"
HOSTS = ["social.example", "mastodon.social", "fosstodon.org", "mstdn.jp", "chaos.social"]
X_FIELDS = ("tweet.fields=created_at,conversation_id,author_id,lang,referenced_tweets"
            "&expansions=author_id&user.fields=username,name")


# --------------------------------------------------------------------------
# the ceiling clients: a child process (its own GIL; the fakes run as
# threads of the bench process), one keep-alive connection, paging as the
# daemon pages. One line of JSON on stdout.


def ceiling_child(argv):
    kind, port, token, page, reps = argv[0], int(argv[1]), argv[2], int(argv[3]), int(argv[4])
    user_id = argv[5] if len(argv) > 5 else ""
    hdr = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    out = []
    for _ in range(reps):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        items = requests_ = 0

        def get(path):
            """One page: GET path on the keep-alive connection, its JSON."""
            nonlocal requests_
            c.request("GET", path, headers=hdr)
            r = c.getresponse()
            body = r.read()
            requests_ += 1
            if r.status != 200:
                raise SystemExit(f"ceiling: HTTP {r.status}: {body[:200]!r}")
            return json.loads(body)

        t0 = time.monotonic()
        if kind == "mastodon":
            cursor = "0"
            while True:
                arr = get(f"/api/v1/notifications?types[]=mention&limit={page}&min_id={cursor}")
                items += len(arr)
                if len(arr) < page:
                    break
                cursor = arr[0]["id"]  # newest first
        else:
            token_q = ""
            while True:
                doc = get(f"/2/users/{user_id}/mentions?max_results={page}&{X_FIELDS}{token_q}")
                items += len(doc.get("data") or [])
                nt = (doc.get("meta") or {}).get("next_token")
                if not nt:
                    break
                token_q = f"&pagination_token={nt}"
        t1 = time.monotonic()
        c.close()
        out.append({"requests": requests_, "items": items, "seconds": round(t1 - t0, 4),
                    "items_per_s": round(items / (t1 - t0), 1), "requests_per_s": round(requests_ / (t1 - t0), 1),
                    "cpu_s": round(time.process_time(), 3)})
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--ceiling-child":
    sys.exit(ceiling_child(sys.argv[2:]))


import redis as redis_py  # noqa: E402
import requests  # noqa: E402

import conftest as cf  # noqa: E402
import meta_helpers as mh  # noqa: E402
import social_helpers as sh  # noqa: E402


# --------------------------------------------------------------------------
# Redis readers


def exactly_once(rdb, provider, ids):
    """sh.assert_exactly_once as a list of problems (empty: ok)."""
    try:
        sh.assert_exactly_once(rdb, provider, ids)
        return []
    except AssertionError as e:
        return [f"not exactly once: {str(e)[:400]}"]


# --------------------------------------------------------------------------
# the bench


class Bench(DaemonBench):
    def __init__(self, args):
        super().__init__(args, "social.py", "omr-socialbench-")
        self.graph = None
        self.fakes = []
        self.lease = None
        self.rng = random.Random(args.seed)

    # setup / teardown -----------------------------------------------------
    def setup(self):
        self.copy_binary()
        self.write_secrets()
        mh.write_meta_secrets(self.secrets)
        say(f"== setup: redis (temp dir {self.tmp}); omnirouted {self.binary_sha1[:12]} (built {self.binary_mtime})")
        self.start_redis()
        self.graph = mh.FakeGraph()  # the Meta app's graph_base (no reply is sent)

    def teardown(self):
        # every warning any daemon logged, start-up included (the phases
        # check only what came after ready): listed, not a failure
        self.daemon_warnings = {}
        for d in self.daemons:
            lines = warning_lines(d.log_text())
            if lines:
                self.daemon_warnings[d.name] = lines[:20]
        self.stop_daemons()
        for d in self.daemons:
            if self.out_logs and os.path.exists(d.log_path):
                shutil.copy2(d.log_path, os.path.join(self.out_logs, f"{d.name}.log"))
        for f in self.fakes:
            try:
                f.close()
            except Exception:  # noqa: BLE001
                pass
        if self.graph:
            self.graph.close()
        self.remove_tmp()

    def fail(self, phase, what):
        self.failures.append(f"{phase}: {what}")
        say(f"   FAIL ({phase}): {what}")

    def checked(self, phase, res, problems):
        """Each problem fails the phase; res["checks"] lists them ("ok": none)."""
        for p in problems:
            self.fail(phase, p)
        res["checks"] = problems or "ok"

    # helpers ------------------------------------------------------------------
    def config(self, port=None, **connectors):
        cfg = cf.base_config(f"unix://{self.redis.unixsocket}", self.secrets, port or cf.free_port())
        cfg["log"]["level"] = self.args.log_level
        cfg["connectors"].update(connectors)
        return cfg

    def stop_daemon(self, phase, d, res):
        """SIGTERM, exit 0 expected; warnings after ready go to res."""
        self.stop_checked(phase, d, res)
        lines = warning_lines(d.log_text(d.ready_log_offset))
        res["log_warnings"] = lines[:20]
        if lines:
            say(f"   daemon log after ready: {len(lines)} warning/error lines, e.g. {lines[0][:200]}")

    def metric_problems(self, d, res, n, polls_of=None):
        """The daemon's own counters: n messages stored (into res
        metric_stored); with polls_of (a provider), every poll of it ended
        ok (res polls). The problems, as a list."""
        problems = []
        try:
            m = d.metrics()
            if polls_of:
                res["polls"] = {o: cf.metric(m, "omr_polls_total", source=polls_of, outcome=o)
                                for o in ("ok", "error", "rate_limited", "disabled", "unavailable")}
            stored = cf.metric(m, "omr_messages_ingested_total", outcome="stored")
            res["metric_stored"] = stored
            if stored != n:
                problems.append(f"omr_messages_ingested_total{{outcome=stored}} = {stored:g}, want {n}")
            if polls_of and any(res["polls"][o] for o in ("error", "rate_limited", "disabled", "unavailable")):
                problems.append(f"omr_polls_total outcomes {res['polls']}")
        except Exception as e:  # noqa: BLE001
            problems.append(f"GET /metrics: {e!r}")
        return problems

    def meter(self, **extra):
        src = {"redis": lambda: proc_cpu(self.redis.proc.pid),
               "bench+fake": lambda: proc_cpu(os.getpid())}
        src.update(extra)
        return Meter(src, window_key="window_s")

    def fake(self, cls, **kw):
        f = cls(**kw)
        self.fakes.append(f)
        return f

    def close_fake(self, f):
        f.close()
        self.fakes.remove(f)

    def wait_value(self, key, want, timeout, what):
        """Poll GET key every --poll-redis s until == want; False on timeout
        or when it stops moving for --stall s."""
        deadline = time.monotonic() + timeout
        last, last_change = None, time.monotonic()
        while True:
            v = self.rdb.get(key)
            now = time.monotonic()
            if v == want:
                return True
            if v != last:
                last, last_change = v, now
            if now > deadline or now - last_change > self.args.stall:
                self.fail(what, f"{key} is {v!r} after {timeout:.0f} s, want {want!r}")
                return False
            time.sleep(self.args.poll_redis)

    def ceiling(self, kind, fake, page, user_id=""):
        a = self.args
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--ceiling-child", kind, str(fake.port),
                            fake.token, str(page), str(a.ceiling_reps), user_id],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"ceiling client failed ({r.returncode}): {r.stderr[-2000:]}")
        reps = json.loads(r.stdout.strip().splitlines()[-1])
        med = sorted(reps, key=lambda x: x["items_per_s"])[len(reps) // 2]
        return dict(med, reps=[x["items_per_s"] for x in reps])

    # 1 / 2. backlog drains -------------------------------------------------------
    def backlog(self, run, kind):
        a = self.args
        n = a.mentions
        phase = f"run {run} {kind}"
        self.rdb.flushall()
        fake_class, account, page, provider = (
            (sh.FakeMastodon, sh.mastodon_account, a.mastodon_page, MASTODON) if kind == "mastodon" else
            (sh.FakeX, sh.x_account, a.x_page, XP))
        fake = self.fake(fake_class, limit_per_window=10**9, window_s=3600)
        acct = account(fake, self.secrets, page_size=page, poll_interval=a.poll, lease="30s", timeout="10s")
        cfg = self.config(**{kind: {"accounts": [acct]}})
        cursor_key = f"omr:cursor:{provider}"
        res = {"kind": kind, "mentions": n, "page_size": page, "poll_interval": a.poll}
        try:
            d = self.start_daemon(f"{kind}-{run}", cfg)
            # the first poll finds nothing and stores cursor "0" (the documented
            # start): everything added later is read from the beginning
            if not self.wait_value(cursor_key, "0", 10, phase):
                self.stop_daemon(phase, d, res)
                return res
            n_before = len(fake.reqs())
            # the backlog, prepared outside and added under the fake's lock: it
            # appears at once
            rng = random.Random(a.seed + run)
            cust = max(1, a.customers)
            if kind == "mastodon":
                items = []
                for i in range(n):
                    u = rng.randrange(cust)
                    vis = rng.choices(["public", "unlisted", "direct"], [6, 2, 2])[0]
                    items.append((f"user{u}@{HOSTS[u % len(HOSTS)]}", sh.mention_html(
                        "brand", f"Question {i}: where is my order {rng.randrange(10**6)}?\nThanks!"), vis))
                with fake.lock:
                    ids = [fake.add_mention(acc, html_, visibility=vis) for acc, html_, vis in items]
                    want_cursor = fake.notifications[-1]["id"]
            else:
                items = []
                for i in range(n):
                    u = rng.randrange(cust)
                    items.append((str(10_000 + u), f"user{u}", f"@brandsupport question {i}: order "
                                  f"{rng.randrange(10**6)} is late"))
                with fake.lock:
                    ids = [fake.add_mention(aid, un, text) for aid, un, text in items]
                    want_cursor = ids[-1]
            t_avail_wall = time.time()
            mt = self.meter(daemon=d.cpu).begin()
            ok = self.wait_value(cursor_key, want_cursor, max(60.0, n / 20.0), phase)
            cpu = mt.end()
            reqs = fake.reqs()[n_before:]
            polls = [r for r in reqs if r.status == 200 and r.method == "GET"]
            hit = [r for r in polls if r.ids]
            logged, first_store, last_store = store_span(self.rdb)
            res.update(stored_logged=logged, cpu=cpu)
            if hit and last_store:
                t0 = max(hit[0].wall, t_avail_wall)
                secs = last_store - t0
                res.update(seconds=round(secs, 3), mentions_per_s=round(n / secs, 1) if secs > 0 else None,
                           first_store_after_first_request_s=round(first_store - t0, 3),
                           requests=len([r for r in polls if r.t >= hit[0].t]),
                           cpu_ms_per_mention=per_item(mt.seconds, n))
                # where the time went: the fake answering vs. the daemon between
                # an answer and its next request (storing, the lease script)
                seq = [r for r in polls if r.t >= hit[0].t]
                fake_s = sum((r.t_done or r.t) - r.t for r in seq)
                gaps = [b.t - (a_.t_done or a_.t) for a_, b in zip(seq, seq[1:])]
                res["time_split"] = {"fake_answering_s": round(fake_s, 3),
                                     "daemon_between_requests_s": round(sum(gaps), 3),
                                     "fake_ms_per_request": ms(fake_s / len(seq)) if seq else None,
                                     "max_gap_ms": ms(max(gaps)) if gaps else None}
                if kind == "x":
                    # the round: pages are fetched back-to-back, then stored
                    big = sorted(gaps, reverse=True)[:max(1, n // 1000)]
                    res["time_split"]["store_gaps_ms"] = [ms(g) for g in big]
            problems = []
            if ok:
                problems += exactly_once(self.rdb, provider, ids)
                if logged != n:
                    problems.append(f"{logged} messages in the conversation logs, want {n}")
            else:
                problems.append(f"drain did not finish: {sh.dedup_count(self.rdb, provider)} of {n} stored")
            if fake.violations:
                problems.append(f"{len(fake.violations)} requests while the advertised limit was 0")
            if kind == "mastodon":
                try:
                    sh.assert_no_overlap_mastodon(fake)
                except AssertionError as e:
                    problems.append(str(e)[:300])
            bad = [r for r in reqs if r.status != 200]
            if bad:
                problems.append(f"{len(bad)} requests answered non-200, e.g. {bad[:3]!r}")
            problems += self.metric_problems(d, res, n, polls_of=provider)
            self.checked(phase, res, problems)
            self.stop_daemon(phase, d, res)
            # the ceiling, with the daemon gone: the same fake, the same pages
            mt = self.meter().begin()
            c = self.ceiling(kind, fake, page, getattr(fake, "user_id", ""))
            c["cpu_all_reps"] = mt.end()
            res["ceiling"] = c
            if c["items"] != n:
                self.fail(phase, f"ceiling client read {c['items']} mentions, want {n}")
            res["ratio"] = ratio(res.get("mentions_per_s"), c["items_per_s"])
            if res.get("mentions_per_s"):
                ts = res["time_split"]
                say(f"   {kind} backlog ({n} mentions, page {page}, poll {a.poll}): {res['mentions_per_s']:.0f} "
                    f"mentions/s ({res['seconds']:.2f} s, {res['requests']} requests; daemon "
                    f"{res['cpu_ms_per_mention']['daemon']} / redis {res['cpu_ms_per_mention']['redis']} CPU ms per "
                    f"mention; fake answering {ts['fake_answering_s']:.2f} s, daemon between requests "
                    f"{ts['daemon_between_requests_s']:.2f} s; {fmt_cpu(cpu, ['daemon', 'redis', 'bench+fake'])})")
            say(f"   {kind} ceiling (Python client paging the fake, median of {a.ceiling_reps}): "
                f"{c['items_per_s']:.0f} mentions/s = {c['requests_per_s']:.0f} req/s x {page} "
                f"(reps {c['reps']}); ratio daemon / ceiling {res['ratio']}")
        finally:
            self.close_fake(fake)
        return res

    # 3. Meta webhooks -----------------------------------------------------------
    def meta(self, run):
        a = self.args
        phase = f"run {run} meta"
        m_n, batch = a.meta_messages, a.meta_batch
        self.rdb.flushall()
        d = self.start_daemon(f"meta-{run}", self.config(meta=mh.meta_section(self.secrets, self.graph.base_url)))
        url = d.url(f"/v1/meta/{mh.APP}")
        res = {"messages": m_n, "batch": batch, "clients": a.clients}
        # deliveries, signed before the clock starts
        rng = random.Random(a.seed + 100 + run)
        reqs, mids = [], []
        for b in range(0, m_n, batch):
            its = []
            for i in range(b, min(m_n, b + batch)):
                mid = f"m_bench{run}_{i:07d}_" + "".join(rng.choice("abcdefghijkLMNOPQ0123456789") for _ in range(24))
                mids.append(mid)
                psid = str(7_000_000_000_000_000 + rng.randrange(max(1, a.customers)))
                its.append(mh.message_item(psid, mh.PAGE_ID, f"Hi, order #{rng.randrange(10**6)} hasn't arrived yet "
                                           f"({i})", m_id=mid))
            raw = json.dumps(mh.delivery([mh.entry(its)])).encode()
            h = {"Content-Type": "application/json", "User-Agent": "facebookexternalua",
                 "X-Hub-Signature-256": mh.hub_signature(raw),
                 "X-Hub-Signature": "sha1=" + hmac.new(mh.APP_SECRET.encode(), raw, hashlib.sha1).hexdigest()}
            reqs.append((raw, h))
        res["deliveries"] = len(reqs)
        res["body_bytes_mean"] = round(statistics.fmean(len(r[0]) for r in reqs))
        # the client ceiling: the same pool, GET /healthz
        n_hz = max(len(reqs), a.healthz_requests)
        mt = self.meter(daemon=d.cpu).begin()
        t0, results = post_pool(lambda i: d.url("/healthz"), [(None, {})] * n_hz, a.clients, d.url("/healthz"),
                                method="GET")
        t_end = max(r[3] for r in results)
        lat = [r[3] - r[2] for r in results if r[0] == 200]
        hz = {"requests": n_hz, "ok": len(lat), "seconds": round(t_end - t0, 3),
              "req_per_s": round(n_hz / (t_end - t0), 1),
              "latency_ms": {"p50": ms(pct(lat, 50)), "p99": ms(pct(lat, 99))}, "cpu": mt.end()}
        res["client_ceiling_healthz"] = hz
        if hz["ok"] != n_hz:
            self.fail(phase, f"healthz: {n_hz - hz['ok']} of {n_hz} not answered 200")
        say(f"   client ceiling ({a.clients} sessions, GET /healthz x {n_hz}): {hz['req_per_s']:.0f} req/s, p50 "
            f"{hz['latency_ms']['p50']} ms, p99 {hz['latency_ms']['p99']} ms "
            f"({fmt_cpu(hz['cpu'], ['daemon', 'bench+fake'])})")
        # the webhooks
        mt = self.meter(daemon=d.cpu).begin()
        t0, results = post_pool(lambda i: url, reqs, a.clients, d.url("/healthz"))
        t_end = max(r[3] for r in results)
        cpu = mt.end()
        ok = [r for r in results if r[0] == 200]
        lat = [r[3] - r[2] for r in ok]
        secs = t_end - t0
        res.update(seconds=round(secs, 3), requests_per_s=round(len(reqs) / secs, 1),
                   messages_per_s=round(m_n / secs, 1), cpu=cpu, cpu_ms_per_message=per_item(mt.seconds, m_n),
                   latency_ms={"p50": ms(pct(lat, 50)), "p90": ms(pct(lat, 90)), "p99": ms(pct(lat, 99)),
                               "max": ms(max(lat) if lat else None)})
        res["ratio_requests_over_healthz"] = ratio(res["requests_per_s"], hz["req_per_s"])
        res["ratio_p50_over_healthz"] = ratio(res["latency_ms"]["p50"], hz["latency_ms"]["p50"])
        problems = []
        bad = [(i, r[0], r[1][:200]) for i, r in enumerate(results) if r[0] != 200]
        if bad:
            problems.append(f"{len(bad)} deliveries not answered 200, e.g. {bad[:3]}")
        answers = {}
        for (raw, _h), r in zip(reqs, results):
            if r[0] == 200:
                want = {"status": "stored", "stored": len(json.loads(raw)["entry"][0]["messaging"]),
                        "duplicates": 0, "skipped": 0, "invalid": 0}
                try:
                    got = json.loads(r[1])
                except ValueError:
                    got = r[1][:100]
                k = "as expected" if got == want else json.dumps(got)
                answers[k] = answers.get(k, 0) + 1
        res["answers"] = answers
        if answers.get("as expected", 0) != len(reqs):
            problems.append(f"answers {answers}, want {len(reqs)} x stored all, no duplicates")
        problems += exactly_once(self.rdb, META, mids)
        problems += self.metric_problems(d, res, m_n)
        self.checked(phase, res, problems)
        self.stop_daemon(phase, d, res)
        say(f"   meta webhooks ({m_n} messages in {len(reqs)} signed deliveries of {batch}, {a.clients} sessions): "
            f"{res['messages_per_s']:.0f} messages/s = {res['requests_per_s']:.0f} req/s ({secs:.2f} s; p50 "
            f"{res['latency_ms']['p50']} ms, p99 {res['latency_ms']['p99']} ms; daemon "
            f"{res['cpu_ms_per_message']['daemon']} / redis {res['cpu_ms_per_message']['redis']} CPU ms per message; "
            f"{fmt_cpu(cpu, ['daemon', 'redis', 'bench+fake'])}); req/s / healthz {res['ratio_requests_over_healthz']}")
        return res

    # 4. lease handover ---------------------------------------------------------------
    def lease_phase(self):
        a = self.args
        phase = "lease"
        self.rdb.flushall()
        lease_s = cf._duration_s(a.lease)
        interval_s = cf._duration_s(a.lease_interval)
        key = f"omr:lease:poll:{MASTODON}"
        toks = {"A": "lease-bench-a-" + "a1" * 12, "B": "lease-bench-b-" + "b2" * 12}
        fake = self.fake(sh.FakeMastodon, token=toks["A"], tokens=list(toks.values()), limit_per_window=10**9,
                         window_s=3600)
        res = {"lease": a.lease, "poll_interval": a.lease_interval, "kills": [], "ttl_ms": int(lease_s * 750)}
        ids = []
        rng = random.Random(a.seed + 7)

        def cfg(who):
            return self.config(mastodon={"accounts": [sh.mastodon_account(
                fake, self.secrets, token=toks[who], poll_interval=a.lease_interval, lease=a.lease,
                page_size=40, timeout="5s")]})

        def owner_pid():
            m = re.match(r"^.*:(\d+):[^:]*$", self.rdb.get(key) or "")
            return int(m.group(1)) if m else None

        def wait_owner(pid, timeout):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if owner_pid() == pid:
                    return time.monotonic()
                time.sleep(0.002)
            return None

        def mention(text):
            ids.append(fake.add_mention(f"lease{len(ids)}@social.example", sh.mention_html("brand", text)))

        try:
            dm = {"A": self.start_daemon("lease-a", cfg("A")), "B": self.start_daemon("lease-b", cfg("B"))}
            mention("seed")
            sh.wait_count(self.rdb, MASTODON, 1, timeout=10)

            def handover(how, k):
                pid = owner_pid()
                holder = next((w for w, d in dm.items() if d.pid == pid), None)
                if holder is None:
                    raise RuntimeError(f"lease held by {self.rdb.get(key)!r}, not by one of our daemons")
                other = "B" if holder == "A" else "A"
                # land at a random point of the holder's cycle
                last = fake.wait_reqs(len(fake.reqs()) + 1, timeout=interval_s + 2)[-1]
                delay = rng.uniform(0, interval_s)
                time.sleep(max(0.0, last.t + delay - time.monotonic()))
                ttl = self.rdb.pttl(key)
                t_sig = time.monotonic()
                if how == "SIGKILL":
                    dm[holder].kill()
                    t_dead = time.monotonic()
                else:
                    # the exit is timed by a thread: the waits below take longer
                    exited = {}
                    proc = dm[holder].proc

                    def waiter():
                        try:
                            exited["rc"] = proc.wait(20)
                        except subprocess.TimeoutExpired:
                            exited["rc"] = None
                        exited["t"] = time.monotonic()
                    wt = threading.Thread(target=waiter, daemon=True)
                    proc.send_signal(signal.SIGTERM)
                    wt.start()
                t_own = wait_owner(dm[other].pid, lease_s + 3)
                first = None
                try:
                    first = fake.wait_reqs(1, timeout=lease_s + 3,
                                           pred=lambda r: r.token == toks[other] and r.t > t_sig)[0]
                except AssertionError:
                    pass
                r = {"how": how, "n": k, "holder": holder, "into_cycle_ms": ms(t_sig - last.t),
                     "ttl_left_at_signal_ms": ttl,
                     "to_lease_ms": ms(t_own - t_sig) if t_own else None,
                     "lease_after_ttl_ran_out_ms": round(1000 * (t_own - t_sig) - ttl, 2)
                     if t_own and how == "SIGKILL" and ttl > 0 else None,
                     "to_first_request_ms": ms(first.t - t_sig) if first else None,
                     "first_request_after_last_round_ms": ms(first.t - last.t) if first else None}
                if how == "SIGKILL":
                    r["kill_reaped_ms"] = ms(t_dead - t_sig)
                else:
                    wt.join(25)
                    rc = exited.get("rc")
                    if rc is None and proc.poll() is None:
                        proc.kill()
                        proc.wait(5)
                    r["exit_code"] = rc
                    r["exit_ms"] = ms(exited["t"] - t_sig) if "t" in exited else None
                    dm[holder].exits.append(("SIGTERM", rc))
                    if rc != 0:
                        self.fail(phase, f"{dm[holder].name} exit code {rc} after SIGTERM")
                if first is None:
                    self.fail(phase, f"{how} {k}: no request from the other daemon within {lease_s + 3:.0f} s")
                say(f"   {how} #{k} {r['into_cycle_ms']:.0f} ms into the holder's cycle (lease TTL left {ttl} ms): "
                    f"lease taken after {r['to_lease_ms']} ms, first request after {r['to_first_request_ms']} ms")
                mention(f"after {how} {k}")
                return r, holder

            for k in range(1, a.kills + 1):
                r, killed = handover("SIGKILL", k)
                res["kills"].append(r)
                dm[killed].start()  # back as a standby
                time.sleep(a.settle)
            r, _ = handover("SIGTERM", 1)
            res["sigterm"] = r
            sh.wait_count(self.rdb, MASTODON, len(ids), timeout=10)
            time.sleep(0.5)
            # checks
            problems = exactly_once(self.rdb, MASTODON, ids)
            firsts = [x["to_first_request_ms"] for x in res["kills"] if x["to_first_request_ms"] is not None]
            if firsts:
                res["kill_to_first_request_ms"] = {"min": min(firsts), "median": statistics.median(firsts),
                                                   "max": max(firsts)}
                leases = [x["to_lease_ms"] for x in res["kills"] if x["to_lease_ms"] is not None]
                res["kill_to_lease_ms"] = {"min": min(leases), "median": statistics.median(leases),
                                           "max": max(leases)} if leases else None
                res["max_over_lease"] = round(max(firsts) / 1000.0 / lease_s, 3)
                if max(firsts) > lease_s * 1000:
                    problems.append(f"a SIGKILLed holder was replaced after {max(firsts)} ms > lease {a.lease}")
            if len(firsts) != a.kills:
                problems.append(f"{a.kills - len(firsts)} of {a.kills} kills without a handover")
            polls = fake.polls()
            # one poller at a time: the token changes exactly at the handovers
            switches = sum(1 for x, y in zip(polls, polls[1:]) if x.token != y.token)
            res["token_switches"] = switches
            res["requests"] = len(polls)
            if switches != a.kills + 1:
                problems.append(f"the polling daemon changed {switches} times, want {a.kills + 1} (both polled?)")
            g = [y.t - x.t for x, y in zip(polls, polls[1:])]
            res["min_gap_between_rounds_ms"] = ms(min(g)) if g else None
            if g and min(g) < interval_s - 0.05:
                problems.append(f"two rounds {min(g) * 1000:.0f} ms apart (interval {a.lease_interval})")
            if fake.violations:
                problems.append(f"{len(fake.violations)} rate-limit violations")
            self.checked(phase, res, problems)
            for w, d in dm.items():
                if d.alive():
                    sub = {}
                    self.stop_daemon(phase, d, sub)
                    res[f"daemon_{w}_stop"] = sub
                res[f"daemon_{w}_exits"] = d.exits
            if firsts:
                kt = res["kill_to_first_request_ms"]
                kl = res["kill_to_lease_ms"]
                say(f"   SIGKILL -> first request of the new holder: min {kt['min']:.0f}, median {kt['median']:.0f}, "
                    f"max {kt['max']:.0f} ms (lease {a.lease}, key TTL {res['ttl_ms']} ms; max / lease "
                    f"{res['max_over_lease']}); -> lease in Redis: median {kl['median']:.0f} ms")
            st = res["sigterm"]
            say(f"   SIGTERM -> lease taken {st['to_lease_ms']} ms, first request {st['to_first_request_ms']} ms "
                f"({st['first_request_after_last_round_ms']} ms after the previous round; exit {st.get('exit_code')} "
                f"after {st.get('exit_ms')} ms)")
        finally:
            self.close_fake(fake)
        return res

    # the run ---------------------------------------------------------------------
    def run(self):
        a = self.args
        for run in range(1, a.runs + 1):
            say(f"== run {run}/{a.runs}")
            r = {"run": run, "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 "background_busy_pct": bg_load(0.5)}
            if "mastodon" in a.phases:
                r["mastodon"] = self.backlog(run, "mastodon")
            if "x" in a.phases:
                r["x"] = self.backlog(run, "x")
            if "meta" in a.phases:
                r["meta"] = self.meta(run)
            others = {k: r[k].get("cpu", {}).get("other") for k in ("mastodon", "x", "meta") if k in r}
            r["other_cpu_pct"] = others
            r["max_other_cpu_pct"] = max((v for v in others.values() if v is not None), default=0)
            r["idle"] = r["max_other_cpu_pct"] <= a.max_other
            if not r["idle"]:
                say(f"   warning: other processes used up to {r['max_other_cpu_pct']}% CPU in this run {others}")
            self.runs.append(r)
        if "lease" in a.phases:
            say("== lease handover (two daemons, one Mastodon account)")
            self.lease = self.lease_phase()


FIGURES = [
    ("Mastodon backlog drain", ("mastodon", "mentions_per_s"), "mentions/s"),
    ("  daemon CPU ms per mention", ("mastodon", "cpu_ms_per_mention", "daemon"), "ms"),
    ("  redis CPU ms per mention", ("mastodon", "cpu_ms_per_mention", "redis"), "ms"),
    ("  ceiling (Python client paging the fake)", ("mastodon", "ceiling", "items_per_s"), "mentions/s"),
    ("  daemon / ceiling", ("mastodon", "ratio"), ""),
    ("X backlog drain", ("x", "mentions_per_s"), "mentions/s"),
    ("  daemon CPU ms per mention", ("x", "cpu_ms_per_mention", "daemon"), "ms"),
    ("  redis CPU ms per mention", ("x", "cpu_ms_per_mention", "redis"), "ms"),
    ("  ceiling (Python client paging the fake)", ("x", "ceiling", "items_per_s"), "mentions/s"),
    ("  daemon / ceiling", ("x", "ratio"), ""),
    ("Meta webhooks", ("meta", "messages_per_s"), "messages/s"),
    ("  requests/s", ("meta", "requests_per_s"), "req/s"),
    ("  p50", ("meta", "latency_ms", "p50"), "ms"),
    ("  p99", ("meta", "latency_ms", "p99"), "ms"),
    ("  daemon CPU ms per message", ("meta", "cpu_ms_per_message", "daemon"), "ms"),
    ("  client ceiling (GET /healthz)", ("meta", "client_ceiling_healthz", "req_per_s"), "req/s"),
    ("  requests / healthz", ("meta", "ratio_requests_over_healthz"), ""),
]


def machine_info():
    model = "?"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        mem = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    ver = subprocess.run([cf.REDIS_SERVER, "--version"], capture_output=True, text=True).stdout.strip()
    return {"nproc": NCPU, "cpu_model": model, "mem_gib": mem, "kernel": platform.release(),
            "python": platform.python_version(), "redis": ver.split()[2] if ver else "?",
            "requests": requests.__version__, "redis_py": redis_py.__version__}


def main():
    p = argparse.ArgumentParser(description="omnirouted social benchmark (Mastodon / X backlog, Meta webhooks, "
                                "poll lease handover)")
    p.add_argument("--daemon", default=os.environ.get("OMNIROUTED") or os.path.join(REPO, "build", "omnirouted"),
                   help="daemon binary (default build/omnirouted; a copy in the temp dir is run)")
    p.add_argument("--mentions", type=int, default=4000, help="N mentions in each backlog (default 4000)")
    p.add_argument("--mastodon-page", type=int, default=80, help="Mastodon page_size (default 80, the maximum)")
    p.add_argument("--x-page", type=int, default=100, help="X page_size (default 100, the maximum)")
    p.add_argument("--poll", default="100ms", help="poll_interval of the backlog phases (default 100ms)")
    p.add_argument("--customers", type=int, default=500, help="distinct senders in each phase (default 500)")
    p.add_argument("--meta-messages", type=int, default=3000, help="M Meta messages (default 3000)")
    p.add_argument("--meta-batch", type=int, default=10, help="messages per Meta delivery (default 10)")
    p.add_argument("--clients", type=int, default=16, help="HTTP keep-alive sessions (threads) (default 16)")
    p.add_argument("--healthz-requests", type=int, default=2000,
                   help="GET /healthz for the client ceiling (at least as many as deliveries; default 2000)")
    p.add_argument("--kills", type=int, default=5, help="K SIGKILL handovers (default 5)")
    p.add_argument("--lease", default="2s", help="lease of the handover phase (default 2s)")
    p.add_argument("--lease-interval", default="500ms", help="poll_interval of the handover phase (default 500ms)")
    p.add_argument("--settle", type=float, default=1.0, help="seconds after restarting a killed daemon (default 1)")
    p.add_argument("--runs", type=int, default=1, help="repeat phases 1-3 (default 1; the lease phase runs once)")
    p.add_argument("--phases", default="mastodon,x,meta,lease", help="comma list (default all)")
    p.add_argument("--ceiling-reps", type=int, default=3, help="ceiling pagings per phase, median taken (default 3)")
    p.add_argument("--max-other", type=int, default=15, help="a run is idle when other processes used at most this "
                   "%% CPU in each timed phase (default 15)")
    p.add_argument("--poll-redis", type=float, default=0.05, help="progress poll of Redis, s (default 0.05)")
    p.add_argument("--stall", type=float, default=30.0, help="fail a drain without progress for this long (s)")
    p.add_argument("--log-level", default="info", help="daemon log level (default info, as deployed)")
    p.add_argument("--seed", type=int, default=8)
    p.add_argument("--out", default=os.path.join(HERE, "out"), help="results directory (default bench/out)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, logs)")
    args = p.parse_args()
    args.phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    unknown = set(args.phases) - {"mastodon", "x", "meta", "lease"}
    if unknown:
        p.error(f"unknown phases {sorted(unknown)}")
    if min(args.mentions, args.meta_messages, args.meta_batch, args.clients, args.runs, args.ceiling_reps) < 1 \
            or args.kills < 1:
        p.error("counts must be >= 1")
    if not 1 <= args.mastodon_page <= 80 or not 5 <= args.x_page <= 100:
        p.error("--mastodon-page 1..80, --x-page 5..100")
    args.daemon = os.path.abspath(args.daemon)

    stop_on_signals()
    stamp, out_json, logs = out_paths(args.out, "social")

    b = Bench(args)
    b.out_logs = logs
    t_begin = time.monotonic()
    bg_before = bg_load(1.0)
    aborted = setup_run_teardown(b, "social.py")
    bg_after = bg_load(1.0)

    idle = [r for r in b.runs if r.get("idle")]
    use = idle or b.runs
    summary = {}
    lines = []
    for label, path, unit in FIGURES:
        s = summarize(use, path)
        summary[label.strip()] = s
        if s:
            rng_ = f" ({s['min']}–{s['max']})" if s["n"] > 1 else ""
            lines.append(f"{label}: {s['median']} {unit}{rng_}".rstrip())
    if b.lease and b.lease.get("kill_to_first_request_ms"):
        kt, st = b.lease["kill_to_first_request_ms"], b.lease["sigterm"]
        lines.append(f"Lease handover, SIGKILL -> first request: min {kt['min']}, median {kt['median']}, max "
                     f"{kt['max']} ms (lease {args.lease}; max / lease {b.lease['max_over_lease']})")
        lines.append(f"Lease handover, SIGTERM -> first request: {st['to_first_request_ms']} ms (lease taken after "
                     f"{st['to_lease_ms']} ms)")
    out = {"started": stamp, "settings": {k: v for k, v in vars(args).items()},
           "machine": machine_info(),
           "binary": {"path": args.daemon, "sha1": getattr(b, "binary_sha1", None),
                      "built": getattr(b, "binary_mtime", None)},
           "background_busy_pct": {"before": bg_before, "after": bg_after},
           "runs": b.runs, "lease": b.lease, "summary": summary, "summary_lines": lines,
           "idle_runs": len(idle), "failures": b.failures, "aborted": aborted,
           "daemon_warnings": getattr(b, "daemon_warnings", {}),
           "seconds": round(time.monotonic() - t_begin, 1)}
    out["ok"] = not b.failures and aborted is None
    Path(out_json).write_text(json.dumps(out, indent=1, default=str) + "\n")
    say("")
    say(f"== summary ({len(b.runs)} run(s), {len(idle)} idle; medians (range) of "
        f"{'the idle runs' if idle else 'all runs'}; {out['seconds']} s in all)")
    for ln in lines:
        say(ln)
    if bg_before > args.max_other or bg_after > args.max_other:
        say(f"the machine was not idle (background {bg_before}% / {bg_after}%)")
    for name, lines in out["daemon_warnings"].items():
        say(f"note: {name} logged {len(lines)} warning/error line(s), e.g. {lines[0][:160]}")
    for f in b.failures:
        say(f"FAIL: {f}")
    if aborted:
        say(f"ABORTED: {aborted}")
    say(f"results: {out_json}")
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
