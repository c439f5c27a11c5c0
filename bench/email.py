#!/usr/bin/python3
"""bench/email.py — how fast omnirouted takes mail in (IMAP, Mailgun) and
sends replies out (SMTP), against what this machine does without it.

    /usr/bin/python3 bench/email.py [--daemon PATH] [--mails N] [--replies M] [--runs R]

Per run, with a fresh Redis state for every daemon phase:
  1. IMAP ceiling: Python imaplib reads the N mails of the mailbox with one
     `UID FETCH 1:* BODY.PEEK[]` (SELECT + FETCH timed).
  2. IMAP ingest: the N mails (mixed charsets, email_helpers.corpus()) are
     in Dovecot before the daemon starts (imap batch 100, poll 100ms); time
     from /readyz 200 to the last message stored (its conversation-log entry
     id is Redis' clock at the store).
  3. Mailgun ingest: the same N mails as `body-mime`, signed, multipart, by
     16 keep-alive sessions (threads); first request to last answer.
  4. SMTP out: M replies through POST /v1/conversations/{id}/replies (same
     16 sessions) to M of the conversations of step 3; time until aiosmtpd
     (a child process, email_helpers' SmtpServer) has received all M.
  5. SMTP ceiling: smtplib sends M copies of one of the daemon's replies
     (fresh Message-ID and recipient each) to the same aiosmtpd over one
     connection.
Everything (Redis, Dovecot, aiosmtpd, the daemon) runs on 127.0.0.1 and
free ports, and is stopped at the end, on failure and on Ctrl-C. Results:
bench/out/email-<UTC time>.json (+ logs in bench/out/email-<UTC time>/).
Method and last figures: bench/README.md, section "Email".

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
    proc_cpu, ratio, say, setup_run_teardown, stat_fields, stop_on_signals, store_span, summarize, warning_lines)


import argparse  # noqa: E402
import base64  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import smtplib  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import requests  # noqa: E402
from urllib3.filepost import encode_multipart_formdata  # noqa: E402

import conftest as cf  # noqa: E402
import email_helpers as eh  # noqa: E402

NCPU = os.cpu_count() or 1


# --------------------------------------------------------------------------
# CPU accounting (/proc), as bench/run.sh does it: 100% = one core


def group_cpu(pgid):
    """CPU seconds of every process in process group pgid (Dovecot: master,
    login, auth, imap processes); the leader counts its reaped children."""
    total = 0.0
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        f = stat_fields(p.name)
        if f is None or int(f[2]) != pgid:
            continue
        total += proc_cpu(p.name, children=int(p.name) == pgid)
    return total


# --------------------------------------------------------------------------
# the SMTP receiver: email_helpers' aiosmtpd server in a child process, so
# that it does not share the GIL with the bench's posting threads or with
# smtplib. Line protocol on stdin/stdout (JSON); arrival times are
# CLOCK_MONOTONIC, which is system-wide, so they compare with ours.


def smtp_child(port):
    from notify_helpers import SmtpServer
    srv = SmtpServer(port=port).start()
    out = sys.stdout
    out.write(json.dumps({"port": srv.port}) + "\n")
    out.flush()
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "reset":
            with srv.lock:
                srv._mails.clear()
                srv.data_commands = 0
                srv.rejected.clear()
            ans = {"ok": True}
        elif cmd["cmd"] == "wait":
            deadline = time.monotonic() + cmd["timeout"]
            while len(srv.mails()) < cmd["n"] and time.monotonic() < deadline:
                time.sleep(0.01)
            ms = srv.mails()
            ans = {"count": len(ms), "data_commands": srv.data_commands, "rejected": srv.rejected,
                   "mails": [[m.t, m.rcpt_tos, (m.msg["Message-ID"] or "").strip(), m.mail_from]
                             for m in ms]}
            if cmd.get("sample") and ms:
                ans["sample"] = base64.b64encode(ms[0].content).decode()
        elif cmd["cmd"] == "quit":
            break
        else:
            ans = {"error": f"unknown command {cmd!r}"}
        out.write(json.dumps(ans) + "\n")
        out.flush()
    srv.stop()


class SmtpReceiver:
    def __init__(self, workdir):
        self.port = cf.free_port()
        self.log_path = os.path.join(workdir, "smtp-server.log")
        self.proc = None

    @property
    def address(self):  # what email_helpers.mailbox(smtp=...) reads
        return f"127.0.0.1:{self.port}"

    def start(self):
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--smtp-server",
                                          str(self.port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log, text=True, bufsize=1, start_new_session=True)
        finally:
            log.close()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"aiosmtpd child did not start:\n{cf.tail(self.log_path)}")
        assert json.loads(line)["port"] == self.port
        return self

    def call(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"aiosmtpd child died:\n{cf.tail(self.log_path)}")
        return json.loads(line)

    def stop(self):
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


# --------------------------------------------------------------------------
# the daemon's log (the daemon: benchlib.Daemon)


def log_problems(text):
    """Lines of the daemon log at level warning or worse, and how many of
    each shape (numbers and hex ids folded)."""
    lines = warning_lines(text)
    shapes = {}
    for ln in lines:
        k = re.sub(r"[0-9A-Fa-f]{8,}|\d+", "#", ln.split(" ", 1)[-1])[:160]
        shapes[k] = shapes.get(k, 0) + 1
    return lines, shapes


# --------------------------------------------------------------------------
# Redis readers


def dedup_count(rdb):
    return eh.stored_count(rdb)  # SCAN omr:dedup:email:support:*


def check_stored(rdb, mails, problems, provider="email:support", compare=True, details=None):
    """Every mail stored exactly once under its Message-ID; with compare,
    subject, sender name and text as the corpus wrote them and no warnings
    (each difference also goes to the list `details`). Returns the
    {message id: conversation id} map."""
    got = eh.email_messages(rdb, provider)
    convs = {}
    bad_content = []
    for m in mails:
        entries = got.get(m.message_id) or []
        if len(entries) != 1:
            problems.append(f"<{m.message_id}> ({m!r}) stored {len(entries)} times")
            continue
        conv, _eid, j = entries[0]
        convs[m.message_id] = conv
        if compare:
            why = []
            if eh.nfc(j.get("subject")) != eh.nfc(m.subject):
                why.append(f"subject {j.get('subject')!r} != {m.subject!r}")
            if m.from_name and eh.nfc((j.get("customer") or {}).get("name")) != eh.nfc(m.from_name):
                why.append(f"customer.name {(j.get('customer') or {}).get('name')!r} != {m.from_name!r}")
            if eh.norm_text(j.get("text")) != m.text:
                why.append(f"text {j.get('text')!r} != {m.text!r}")
            if j.get("warnings"):
                why.append(f"warnings {j.get('warnings')!r}")
            if why:
                bad_content.append(f"{m!r}: " + "; ".join(why))
    extra = set(got) - {m.message_id for m in mails}
    if extra:
        problems.append(f"{len(extra)} stored messages that were not sent, e.g. {sorted(extra)[:3]}")
    if bad_content:
        problems.append(f"{len(bad_content)} of {len(mails)} mails stored with a wrong subject/name/text "
                        f"or warnings, e.g. {bad_content[0]}")
        if details is not None:
            details.extend(bad_content)
    return convs


# --------------------------------------------------------------------------
# the bench


class Bench(DaemonBench):
    ready_poll = 0.005  # the IMAP phase times from ready

    def __init__(self, args):
        super().__init__(args, "email.py", "omr-emailbench-")
        self.dovecot = self.smtp = None
        self.notes = []

    # setup / teardown -------------------------------------------------------
    def setup(self):
        a = self.args
        self.copy_binary()
        v = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=10)
        self.version = (v.stdout or v.stderr).strip().splitlines()[0] if (v.stdout or v.stderr) else "?"
        self.write_secrets()

        say(f"== setup: redis, dovecot, aiosmtpd (temp dir {self.tmp})")
        self.start_redis()
        self.dovecot = eh.Dovecot()
        self.dovecot.start()
        self.smtp = SmtpReceiver(self.tmp).start()

        say(f"== corpus: {a.mails} mails in {len(eh.CHARSETS)} charsets (email_helpers.corpus), APPEND to Dovecot")
        t = time.monotonic()
        self.mails = eh.corpus(a.mails, seed=a.seed)
        self.uids = self.dovecot.append(self.mails)
        self.validity = self.dovecot.uidvalidity()
        self.corpus_bytes = sum(len(m.raw) for m in self.mails)
        say(f"   {len(self.mails)} mails, {self.corpus_bytes / 1e6:.2f} MB, UIDs {self.uids[0]}..{self.uids[-1]}, "
            f"{time.monotonic() - t:.1f} s")
        # extra conversations for the reply phase when M > N
        self.extra = [eh.plain_mail(f"Extra conversation {i} for the reply phase.", subject=f"Extra {i}")
                      for i in range(max(0, a.replies - a.mails))]

    def teardown(self):
        self.stop_daemons()
        if self.smtp:
            self.smtp.stop()
        if self.dovecot:
            if self.out_logs:
                try:
                    shutil.copy2(self.dovecot.log_path, os.path.join(self.out_logs, "dovecot.log"))
                except OSError:
                    pass
            self.dovecot.cleanup()
        self.remove_tmp()

    def fail(self, run, what):
        msg = f"run {run}: {what}"
        self.failures.append(msg)
        say(f"   FAIL: {what}")

    # helpers ---------------------------------------------------------------------
    def config(self, *, imap, mailgun, smtp):
        port = cf.free_port()
        cfg = cf.base_config(f"unix://{self.redis.unixsocket}", self.secrets, port)
        cfg["log"]["level"] = self.args.log_level
        mb = eh.mailbox(secrets_dir=str(self.secrets), dovecot=self.dovecot if imap else None,
                        smtp=self.smtp if smtp else None, mailgun=mailgun,
                        imap={"poll_interval": self.args.poll, "batch": self.args.batch})
        return eh.email_config(cfg, str(self.secrets), [mb])

    def stop_daemon(self, run, d, res):
        """SIGTERM, exit 0 expected; warnings after ready go to res."""
        self.stop_checked(run, d, res)
        lines, shapes = log_problems(d.log_text(d.ready_log_offset))
        res["log_warnings"] = len(lines)
        res["log_warning_shapes"] = dict(sorted(shapes.items(), key=lambda kv: -kv[1])[:10])
        if lines:
            say(f"   daemon log after ready: {len(lines)} warning/error lines, e.g. {lines[0][:200]}")
        if self.out_logs:
            shutil.copy2(d.log_path, os.path.join(self.out_logs, f"{d.name}.log"))

    def metrics_check(self, run, phase, d, res, stored=None, sent=None):
        """The daemon's own counters agree with what was checked in Redis."""
        try:
            m = d.metrics()
        except Exception as e:  # noqa: BLE001
            self.fail(run, f"{phase}: GET /metrics failed: {e!r}")
            return
        res["metrics"] = email_metrics(m)
        got = cf.metric(m, "omr_messages_ingested_total", channel="email", outcome="stored")
        if stored is not None and got != stored:
            self.fail(run, f"{phase}: omr_messages_ingested_total{{channel=email,outcome=stored}} = {got:g}, "
                      f"want {stored}")
        if sent is not None:
            got = cf.metric(m, "omr_replies_total", connector="email", outcome="sent")
            if got != sent:
                self.fail(run, f"{phase}: omr_replies_total{{connector=email,outcome=sent}} = {got:g}, want {sent}")

    def meter(self, **extra):
        src = {"redis": lambda: proc_cpu(self.redis.proc.pid),
               "dovecot": lambda: group_cpu(self.dovecot.proc.pid),
               "aiosmtpd": lambda: proc_cpu(self.smtp.proc.pid),
               "bench": lambda: proc_cpu(os.getpid())}
        src.update(extra)
        return Meter(src)

    def reset_seen(self):
        m = self.dovecot.connect()
        try:
            m.select("INBOX")
            typ, data = m.uid("STORE", "1:*", "-FLAGS.SILENT", r"(\Seen)")
            assert typ == "OK", (typ, data)
        finally:
            m.logout()

    # 1. IMAP ceiling ------------------------------------------------------------
    def imap_ceiling(self, run):
        """`reps` times SELECT + UID FETCH 1:* BODY.PEEK[] on one connection;
        the median rep is the figure (one rep lasts only tens of ms)."""
        n = len(self.mails)
        reps = []
        m = self.dovecot.connect()
        try:
            mt = self.meter()
            mt.begin()  # one CPU window over all reps: one rep is shorter than a few clock ticks
            for _ in range(self.args.ceiling_reps):
                t0 = time.monotonic()
                typ, data = m.select("INBOX", readonly=True)
                assert typ == "OK", (typ, data)
                typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
                t1 = time.monotonic()
                got = [it for it in data if isinstance(it, tuple)]
                reps.append({"mails": len(got), "bytes": sum(len(it[1]) for it in got),
                             "seconds": round(t1 - t0, 4), "mails_per_s": round(len(got) / (t1 - t0), 1)})
                del data, got
            cpu = mt.end()  # before LOGOUT: the imap process still exists
        finally:
            m.logout()
        med = sorted(reps, key=lambda r: r["mails_per_s"])[len(reps) // 2]
        res = dict(med, reps=[r["mails_per_s"] for r in reps], cpu_all_reps=cpu)
        if any(r["mails"] != n for r in reps):
            self.fail(run, f"imaplib read {[r['mails'] for r in reps]} mails, want {n}")
        say(f"   imap ceiling (imaplib UID FETCH 1:* BODY.PEEK[], median of {len(reps)}): "
            f"{res['mails_per_s']:.0f} mails/s ({res['mails']} mails, {res['bytes'] / 1e6:.2f} MB in "
            f"{res['seconds']:.3f} s; reps {res['reps']}; all reps: {fmt_cpu(cpu, ['dovecot', 'bench'])})")
        return res

    # 2. IMAP ingest ---------------------------------------------------------------
    def imap_ingest(self, run):
        n = len(self.mails)
        self.rdb.flushall()
        self.reset_seen()
        d = self.start_daemon(f"imap-{run}", self.config(imap=True, mailgun=False, smtp=False))
        res = {}
        mt = self.meter(daemon=d.cpu)
        mt.begin()
        progress = []
        timeout = max(60.0, n / 20.0)
        stall = 30.0
        last_change, last = time.monotonic(), -1
        while True:
            c = dedup_count(self.rdb)
            now = time.monotonic()
            progress.append((round(now - d.t_ready, 2), c))
            if c != last:
                last, last_change = c, now
            if c >= n:
                break
            if not d.alive():
                self.fail(run, f"imap: daemon exited ({d.proc.returncode}) after {c} of {n} mails:\n"
                          f"{cf.tail(d.log_path, 20)}")
                break
            if now - d.t_ready > timeout or now - last_change > stall:
                self.fail(run, f"imap: only {c} of {n} mails stored after {now - d.t_ready:.0f} s "
                          f"(no progress for {now - last_change:.0f} s)")
                break
            time.sleep(self.args.poll_redis)
        cpu = mt.end()
        logged, first, lastt = store_span(self.rdb)
        res.update(stored=c, logged=logged, cpu=cpu, cpu_ms_per_mail=per_item(mt.seconds, c))
        if lastt is not None:
            res["seconds"] = round(lastt - d.wall_ready, 3)
            res["first_store_after_ready_s"] = round(first - d.wall_ready, 3)
            res["ready_after_spawn_s"] = round(d.t_ready - d.t_spawn, 3)
            res["mails_per_s"] = round(c / res["seconds"], 1) if res["seconds"] > 0 else None
            res["mails_per_s_first_to_last"] = round((c - 1) / (lastt - first), 1) if lastt > first else None
        # (seconds after ready, mails stored), thinned to ~40 samples
        res["progress"] = progress[:: max(1, len(progress) // 40)]
        problems = []
        if c >= n:
            content = []
            check_stored(self.rdb, self.mails, problems, details=content)
            res["content_problems"] = {"count": len(content), "all": content}
            cur = self.rdb.get("omr:cursor:imap:support")
            res["cursor"] = cur
            if cur != f"{self.validity}:{self.uids[-1]}":
                problems.append(f"cursor is {cur!r}, want {self.validity}:{self.uids[-1]}")
            fl = self.dovecot.flags()
            unseen = [u for u, f in fl.items() if "\\Seen" not in f]
            if unseen:
                problems.append(f"{len(unseen)} mails not \\Seen after the store, e.g. UIDs {unseen[:5]}")
        for p in problems:
            self.fail(run, f"imap: {p}")
        res["checks"] = problems or "ok"
        self.metrics_check(run, "imap", d, res, stored=n)
        self.stop_daemon(run, d, res)
        if "mails_per_s" in res:
            say(f"   imap ingest (daemon, batch {self.args.batch}, poll {self.args.poll}): "
                f"{res['mails_per_s']:.0f} mails/s ({c} mails in {res['seconds']:.2f} s after ready; "
                f"first stored {res['first_store_after_ready_s']*1000:.0f} ms after ready; "
                f"CPU ms/mail: daemon {res['cpu_ms_per_mail']['daemon']}, redis {res['cpu_ms_per_mail']['redis']}, "
                f"dovecot {res['cpu_ms_per_mail']['dovecot']}; "
                f"{fmt_cpu(cpu, ['daemon', 'redis', 'dovecot', 'bench'])})")
        return res

    # 3. Mailgun ingest + 4. SMTP out (one daemon) ------------------------------
    def mailgun_requests(self, mails):
        out = []
        for m in mails:
            f = eh.mailgun_signed({"recipient": eh.SUPPORT, "sender": m.from_addr, "body-mime": m.raw})
            body, ctype = encode_multipart_formdata(f)
            out.append((body, {"Content-Type": ctype}))
        return out

    def mailgun_and_smtp(self, run):
        a = self.args
        n = len(self.mails)
        self.rdb.flushall()
        d = self.start_daemon(f"mailgun-smtp-{run}", self.config(imap=False, mailgun=True, smtp=True))
        url = d.url("/v1/email/mailgun/support")
        # the client's own limit: the same pool, N x GET /healthz (no work)
        mt = self.meter(daemon=d.cpu)
        mt.begin()
        t0, results = post_pool(lambda i: d.url("/healthz"), [(None, {})] * n, a.clients, method="GET")
        t_end = max(r[3] for r in results)
        hz = {"requests": n, "ok": sum(1 for r in results if r[0] == 200), "seconds": round(t_end - t0, 3),
              "req_per_s": round(n / (t_end - t0), 1), "cpu": mt.end()}
        if hz["ok"] != n:
            self.fail(run, f"healthz: {n - hz['ok']} of {n} GET /healthz not answered 200")
        say(f"   client ceiling (same {a.clients} sessions, GET /healthz): {hz['req_per_s']:.0f} req/s "
            f"({fmt_cpu(hz['cpu'], ['daemon', 'bench'])})")
        reqs = self.mailgun_requests(self.mails)
        mt = self.meter(daemon=d.cpu)
        mt.begin()
        t0, results = post_pool(lambda i: url, reqs, a.clients)
        t_end = max(r[3] for r in results)
        cpu = mt.end()
        ok = [r for r in results if r[0] == 200]
        lat = [r[3] - r[2] for r in ok]
        mg = {"mails": n, "ok": len(ok), "seconds": round(t_end - t0, 3), "cpu_ms_per_mail": per_item(mt.seconds, n),
              "mails_per_s": round(len(ok) / (t_end - t0), 1), "clients": a.clients,
              "latency_ms": {"p50": ms(pct(lat, 50)), "p99": ms(pct(lat, 99)), "max": ms(max(lat) if lat else None)},
              "cpu": cpu}
        bad = [(i, r[0], r[1][:200]) for i, r in enumerate(results) if r[0] != 200]
        statuses = {}
        conv_of = {}
        for i, r in enumerate(results):
            if r[0] == 200:
                try:
                    j = json.loads(r[1])
                    statuses[j.get("status")] = statuses.get(j.get("status"), 0) + 1
                    conv_of[self.mails[i].message_id] = j.get("conversation_id")
                except ValueError:
                    statuses["<not json>"] = statuses.get("<not json>", 0) + 1
        mg["statuses"] = statuses
        problems = []
        if bad:
            problems.append(f"{len(bad)} posts not answered 200, e.g. {bad[:3]}")
        if statuses.get("stored", 0) != n:
            problems.append(f"answers {statuses}, want {n} x stored")
        content = []
        convs = check_stored(self.rdb, self.mails, problems, details=content)
        mg["content_problems"] = {"count": len(content), "all": content}
        mismatch = [k for k, c in conv_of.items() if convs.get(k) and c != convs[k]]
        if mismatch:
            problems.append(f"{len(mismatch)} answers name another conversation than the one storing the mail")
        for p in problems:
            self.fail(run, f"mailgun: {p}")
        mg["checks"] = problems or "ok"
        say(f"   mailgun ingest (body-mime, {a.clients} sessions): {mg['mails_per_s']:.0f} mails/s "
            f"({len(ok)}/{n} answered 200 in {mg['seconds']:.2f} s; p50 {mg['latency_ms']['p50']} ms, "
            f"p99 {mg['latency_ms']['p99']} ms; daemon {mg['cpu_ms_per_mail']['daemon']} CPU ms/mail; "
            f"{fmt_cpu(cpu, ['daemon', 'redis', 'bench'])})")

        self.metrics_check(run, "mailgun", d, mg, stored=n)
        mg["client_ceiling_healthz"] = hz
        smtp = self.smtp_out(run, d, convs)
        self.metrics_check(run, "smtp", d, smtp, stored=n + len(self.extra), sent=smtp["accepted"])
        self.stop_daemon(run, d, mg)
        smtp["daemon"] = "same as the mailgun phase (see there)"
        return mg, smtp

    def smtp_out(self, run, d, convs):
        a = self.args
        m_n = a.replies
        targets = [(m.message_id, m.from_addr) for m in self.mails[:m_n]]
        if self.extra:  # M > N: open the missing conversations first (not timed)
            _, res = post_pool(lambda i: d.url("/v1/email/mailgun/support"), self.mailgun_requests(self.extra),
                               a.clients)
            if any(r[0] != 200 for r in res):
                self.fail(run, "smtp: could not open the extra conversations")
            for m, r in zip(self.extra, res):
                if r[0] == 200:
                    convs[m.message_id] = json.loads(r[1]).get("conversation_id")
            targets += [(m.message_id, m.from_addr) for m in self.extra]
        targets = [(convs.get(mid), who) for mid, who in targets]
        if any(c is None for c, _ in targets):
            self.fail(run, "smtp: some target conversations are unknown (mailgun phase failed)")
            targets = [t for t in targets if t[0]]
        self.smtp.call(cmd="reset")
        hdr = {"Authorization": f"Bearer {eh.API_TOKEN}", "Content-Type": "application/json"}
        reqs = []
        for i, (conv, _who) in enumerate(targets):
            text = (f"Xin chào! Đơn hàng của bạn đã được gửi hôm nay — merci beaucoup ✓ (#{i})\n"
                    f"Tracking: OMR-{i:06d}. Ana")
            reqs.append((json.dumps({"agent_id": "ana", "text": text}, ensure_ascii=False).encode(), hdr))
        mt = self.meter(daemon=d.cpu)
        mt.begin()
        t0, results = post_pool(lambda i: d.url(f"/v1/conversations/{targets[i][0]}/replies"), reqs, a.clients)
        t_posted = max(r[3] for r in results)
        ans = self.smtp.call(cmd="wait", n=len(targets), timeout=max(60.0, m_n / 5.0), sample=True)
        cpu = mt.end()
        arrivals = [x[0] for x in ans["mails"]]
        t_last = max(arrivals) if arrivals else None
        ok = [r for r in results if r[0] == 202]
        rid_of = {}
        post_t = {}
        for (conv, who), r in zip(targets, results):
            if r[0] == 202:
                try:
                    rid = json.loads(r[1])["reply_id"]
                    rid_of[rid] = (conv, who)
                    post_t[rid] = r[2]
                except (ValueError, KeyError):
                    pass
        # delivery latency: our Message-ID is <omr.<reply id>.<token>@...>
        dl = []
        seen_rids = {}
        for t, _rcpts, mid, _frm in ans["mails"]:
            mm = re.match(r"^<omr\.([^.]+)\.", mid or "")
            if mm and mm.group(1) in post_t:
                dl.append(t - post_t[mm.group(1)])
                seen_rids[mm.group(1)] = seen_rids.get(mm.group(1), 0) + 1
        res = {"replies": len(targets), "accepted": len(ok), "received": ans["count"],
               "data_commands": ans["data_commands"],
               "seconds": round(t_last - t0, 3) if t_last else None,
               "replies_per_s": round(ans["count"] / (t_last - t0), 1) if t_last else None,
               "api_accepted_all_after_s": round(t_posted - t0, 3), "clients": a.clients,
               "api_latency_ms": {"p50": ms(pct([r[3] - r[2] for r in ok], 50)),
                                  "p99": ms(pct([r[3] - r[2] for r in ok], 99))},
               "post_to_delivered_ms": {"p50": ms(pct(dl, 50)), "p99": ms(pct(dl, 99)),
                                        "max": ms(max(dl) if dl else None)},
               "cpu": cpu, "cpu_ms_per_reply": per_item(mt.seconds, ans["count"])}
        problems = []
        bad = [(r[0], r[1][:200]) for r in results if r[0] != 202]
        if bad:
            problems.append(f"{len(bad)} replies not answered 202, e.g. {bad[:3]}")
        if ans["count"] != len(targets):
            problems.append(f"aiosmtpd received {ans['count']} mails, want {len(targets)}")
        rcpts = {}
        for _t, rc, _mid, _f in ans["mails"]:
            for x in rc:
                rcpts[x] = rcpts.get(x, 0) + 1
        want = {who for _, who in targets}
        dup = {k: v for k, v in rcpts.items() if v != 1}
        if dup:
            problems.append(f"{len(dup)} customers got more than one mail, e.g. {list(dup.items())[:3]}")
        missing = want - set(rcpts)
        if missing:
            problems.append(f"{len(missing)} customers got no mail, e.g. {sorted(missing)[:3]}")
        strange = set(rcpts) - want
        if strange:
            problems.append(f"mail to addresses nobody was answered at: {sorted(strange)[:3]}")
        if len(seen_rids) != len(rid_of):
            problems.append(f"{len(rid_of) - len(seen_rids)} accepted replies not found by Message-ID in the "
                            f"received mail")
        if ans["rejected"]:
            problems.append(f"aiosmtpd rejected {ans['rejected'][:3]}")
        # the outbox records every reply as sent (soon after the SMTP 250)
        statuses = {}
        deadline = time.monotonic() + 15
        while True:
            p = self.rdb.pipeline(transaction=False)
            for rid, (conv, _w) in rid_of.items():
                p.hget(f"omr:conv:{{{conv}}}:reply:{rid}", "status")
            statuses = {}
            for s in p.execute():
                statuses[s] = statuses.get(s, 0) + 1
            if statuses.get("sent", 0) == len(rid_of) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        res["reply_statuses"] = statuses
        if statuses.get("sent", 0) != len(rid_of):
            problems.append(f"reply statuses in Redis {statuses}, want {len(rid_of)} x sent")
        for p in problems:
            self.fail(run, f"smtp: {p}")
        res["checks"] = problems or "ok"
        self.sample = base64.b64decode(ans["sample"]) if ans.get("sample") else None
        if res["replies_per_s"]:
            say(f"   smtp out (replies API -> aiosmtpd): {res['replies_per_s']:.0f} replies/s ({ans['count']}/"
                f"{len(targets)} received in {res['seconds']:.2f} s; API accepted all after "
                f"{res['api_accepted_all_after_s']:.2f} s; post->delivered p50 {res['post_to_delivered_ms']['p50']} ms, "
                f"p99 {res['post_to_delivered_ms']['p99']} ms; daemon {res['cpu_ms_per_reply']['daemon']} CPU ms/reply; "
                f"{fmt_cpu(cpu, ['daemon', 'redis', 'aiosmtpd', 'bench'])})")
        return res

    # 5. SMTP ceiling ---------------------------------------------------------------
    def smtp_ceiling(self, run):
        m_n = self.args.replies
        tmpl = self.sample
        if tmpl is None:
            # no daemon reply to copy: a similar one of our own
            tmpl = ("From: Example Support <support@example.com>\r\nTo: x@customer.example\r\n"
                    "Subject: Re: Hello\r\nMessage-ID: <x@example.com>\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                    "Xin ch=C3=A0o!\r\n").encode()
        head, sep, body = tmpl.partition(b"\r\n\r\n")
        msgs = []
        for i in range(m_n):
            to = f"ceiling-{i:05d}@customer.example"
            h = re.sub(rb"(?mi)^Message-ID:.*(\r\n[ \t].*)*$",
                       f"Message-ID: <ceiling.{uuid.uuid4().hex}@example.com>".encode(), head)
            h = re.sub(rb"(?mi)^To:.*(\r\n[ \t].*)*$", f"To: {to}".encode(), h)
            msgs.append((to, h + sep + body))
        self.smtp.call(cmd="reset")
        mt = self.meter()
        mt.begin()
        t0 = time.monotonic()
        s = smtplib.SMTP("127.0.0.1", self.smtp.port, timeout=30)
        s.ehlo("bench.example")
        for to, data in msgs:
            s.sendmail(eh.SUPPORT, [to], data)
        t1 = time.monotonic()
        cpu = mt.end()
        s.quit()
        ans = self.smtp.call(cmd="wait", n=m_n, timeout=30)
        res = {"messages": m_n, "received": ans["count"], "bytes_each": len(msgs[0][1]) if msgs else 0,
               "seconds": round(t1 - t0, 4), "msgs_per_s": round(m_n / (t1 - t0), 1), "cpu": cpu,
               "template": "a reply the daemon sent" if self.sample else "built-in"}
        if ans["count"] != m_n:
            self.fail(run, f"smtp ceiling: aiosmtpd received {ans['count']}, want {m_n}")
        say(f"   smtp ceiling (smtplib, one connection): {res['msgs_per_s']:.0f} msgs/s ({m_n} x "
            f"{res['bytes_each']} bytes in {t1 - t0:.3f} s; {fmt_cpu(cpu, ['aiosmtpd', 'bench'])})")

        # as the daemon sends (libesmtp: one session per reply): connect,
        # EHLO, MAIL, RCPT, DATA, QUIT for every message, one at a time
        self.smtp.call(cmd="reset")
        mt.begin()
        t0 = time.monotonic()
        for to, data in msgs:
            c = smtplib.SMTP("127.0.0.1", self.smtp.port, timeout=30)
            c.ehlo("bench.example")
            c.sendmail(eh.SUPPORT, [to], data)
            c.quit()
        t1 = time.monotonic()
        cpu = mt.end()
        ans = self.smtp.call(cmd="wait", n=m_n, timeout=30)
        res["per_session"] = {"received": ans["count"], "seconds": round(t1 - t0, 4),
                              "msgs_per_s": round(m_n / (t1 - t0), 1), "cpu": cpu}
        if ans["count"] != m_n:
            self.fail(run, f"smtp ceiling (session per message): aiosmtpd received {ans['count']}, want {m_n}")
        say(f"   smtp, one session per message (smtplib, as libesmtp does): {m_n / (t1 - t0):.0f} msgs/s "
            f"({fmt_cpu(cpu, ['aiosmtpd', 'bench'])})")
        return res

    # the run ---------------------------------------------------------------------
    def run(self):
        a = self.args
        self.sample = None
        for run in range(1, a.runs + 1):
            say(f"== run {run}/{a.runs}")
            r = {"run": run, "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 "background_busy_pct": bg_load(1.0)}
            r["imap_ceiling"] = self.imap_ceiling(run)
            r["imap"] = self.imap_ingest(run)
            r["mailgun"], r["smtp"] = self.mailgun_and_smtp(run)
            r["smtp_ceiling"] = self.smtp_ceiling(run)
            r["ratios"] = {
                "imap_daemon_over_ceiling": ratio(r["imap"].get("mails_per_s"), r["imap_ceiling"]["mails_per_s"]),
                "mailgun_over_imap_ceiling": ratio(r["mailgun"].get("mails_per_s"),
                                                   r["imap_ceiling"]["mails_per_s"]),
                "mailgun_over_imap_daemon": ratio(r["mailgun"].get("mails_per_s"), r["imap"].get("mails_per_s")),
                "smtp_daemon_over_ceiling": ratio(r["smtp"].get("replies_per_s"),
                                                  r["smtp_ceiling"]["msgs_per_s"]),
                "smtp_daemon_over_session_per_message": ratio(r["smtp"].get("replies_per_s"),
                                                              r["smtp_ceiling"]["per_session"]["msgs_per_s"]),
                "mailgun_over_client_ceiling": ratio(r["mailgun"].get("mails_per_s"),
                                                     r["mailgun"]["client_ceiling_healthz"]["req_per_s"]),
            }
            say("   ratios: " + ", ".join(f"{k} {v}" for k, v in r["ratios"].items()))
            # CPU of other processes (not ours) during the timed phases
            # (the IMAP ceiling's window is too short to tell)
            others = {"imap": r["imap"].get("cpu", {}).get("other"),
                      "client_ceiling": r["mailgun"].get("client_ceiling_healthz", {}).get("cpu", {}).get("other"),
                      "mailgun": r["mailgun"].get("cpu", {}).get("other"),
                      "smtp": r["smtp"].get("cpu", {}).get("other"),
                      "smtp_ceiling": r["smtp_ceiling"].get("cpu", {}).get("other"),
                      "smtp_per_session": r["smtp_ceiling"].get("per_session", {}).get("cpu", {}).get("other")}
            r["other_cpu_pct"] = others
            r["max_other_cpu_pct"] = max((v for v in others.values() if v is not None), default=0)
            r["idle"] = r["max_other_cpu_pct"] <= self.args.max_other
            if not r["idle"]:
                say(f"   warning: other processes used up to {r['max_other_cpu_pct']}% CPU during this run's phases "
                    f"{others}: not comparable with idle runs")
            self.runs.append(r)


def email_metrics(m):
    """The daemon's own email counters (ingested, replies, rejected)."""
    out = {}
    for (name, labels), v in m.items():
        ls = dict(labels)
        if any("email" in str(x) or x == "mailgun" for x in ls.values()) and name.endswith("_total"):
            key = name + "{" + ",".join(f"{k}={ls[k]}" for k in sorted(ls)) + "}"
            out[key] = v
    return out


FIGURES = [
    ("IMAP ingest (daemon)", ("imap", "mails_per_s"), "mails/s"),
    ("  daemon CPU ms per mail", ("imap", "cpu_ms_per_mail", "daemon"), "ms"),
    ("IMAP ceiling (imaplib, one FETCH)", ("imap_ceiling", "mails_per_s"), "mails/s"),
    ("  IMAP daemon / ceiling", ("ratios", "imap_daemon_over_ceiling"), ""),
    ("Mailgun ingest (body-mime, 16 sessions)", ("mailgun", "mails_per_s"), "mails/s"),
    ("  daemon CPU ms per mail", ("mailgun", "cpu_ms_per_mail", "daemon"), "ms"),
    ("  client ceiling (GET /healthz)", ("mailgun", "client_ceiling_healthz", "req_per_s"), "req/s"),
    ("  Mailgun / client ceiling", ("ratios", "mailgun_over_client_ceiling"), ""),
    ("  Mailgun / IMAP ceiling", ("ratios", "mailgun_over_imap_ceiling"), ""),
    ("  Mailgun / IMAP daemon", ("ratios", "mailgun_over_imap_daemon"), ""),
    ("SMTP out (replies API -> aiosmtpd)", ("smtp", "replies_per_s"), "replies/s"),
    ("  daemon CPU ms per reply", ("smtp", "cpu_ms_per_reply", "daemon"), "ms"),
    ("SMTP ceiling (smtplib, one connection)", ("smtp_ceiling", "msgs_per_s"), "msgs/s"),
    ("  SMTP daemon / ceiling", ("ratios", "smtp_daemon_over_ceiling"), ""),
    ("  smtplib, one session per message", ("smtp_ceiling", "per_session", "msgs_per_s"), "msgs/s"),
    ("  SMTP daemon / session per message", ("ratios", "smtp_daemon_over_session_per_message"), ""),
]


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--smtp-server":
        return smtp_child(int(sys.argv[2]))
    p = argparse.ArgumentParser(description="omnirouted email benchmark (IMAP in, Mailgun in, SMTP out)")
    p.add_argument("--daemon", default=os.path.join(REPO, "build", "omnirouted"), help="daemon binary "
                   "(default build/omnirouted; a copy in the temp dir is run)")
    p.add_argument("--mails", type=int, default=2000, help="N mails for IMAP and Mailgun ingest (default 2000)")
    p.add_argument("--replies", type=int, default=500, help="M replies for SMTP out (default 500)")
    p.add_argument("--runs", type=int, default=3, help="repeat every measurement (default 3)")
    p.add_argument("--clients", type=int, default=16, help="HTTP keep-alive sessions (threads) (default 16)")
    p.add_argument("--batch", type=int, default=100, help="imap.batch (default 100)")
    p.add_argument("--poll", default="100ms", help="imap.poll_interval (default 100ms)")
    p.add_argument("--ceiling-reps", type=int, default=5, help="IMAP ceiling: FETCHes per run, median "
                   "taken (default 5)")
    p.add_argument("--max-other", type=int, default=15, help="a run counts as idle when other processes "
                   "used at most this %% CPU in each timed phase (default 15)")
    p.add_argument("--poll-redis", type=float, default=0.2, help="progress poll of Redis, seconds (default 0.2)")
    p.add_argument("--log-level", default="info", help="daemon log level (default info, as deployed)")
    p.add_argument("--seed", type=int, default=6, help="corpus seed (default 6)")
    p.add_argument("--out", default=os.path.join(HERE, "out"), help="results directory (default bench/out)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, logs, Maildir)")
    args = p.parse_args()
    if min(args.mails, args.replies, args.runs, args.clients, args.ceiling_reps) < 1:
        p.error("--mails, --replies, --runs, --clients and --ceiling-reps must be >= 1")
    args.daemon = os.path.abspath(args.daemon)

    stop_on_signals()  # SIGTERM / SIGHUP end the run like Ctrl-C
    stamp, out_json, logs = out_paths(args.out, "email")

    b = Bench(args)
    b.out_logs = logs
    t_begin = time.monotonic()
    bg_before = bg_load(1.0)
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    aborted = setup_run_teardown(b, "email.py")
    bg_after = bg_load(1.0)
    load_after = Path("/proc/loadavg").read_text().split()[:3]

    cpu_model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "?")
    redis_v = subprocess.run([cf.REDIS_SERVER, "--version"], capture_output=True, text=True).stdout.strip()
    dovecot_v = subprocess.run([eh.DOVECOT, "--version"], capture_output=True, text=True).stdout.strip()
    import aiosmtpd
    summary = {".".join(path): dict(summarize(b.runs, path, keep_values=True) or {}, label=label.strip(),
                                    unit=unit)
               for label, path, unit in FIGURES}
    doc = {
        "bench": "bench/email.py",
        "started_utc": stamp,
        "duration_s": round(time.monotonic() - t_begin, 1),
        "machine": {"nproc": NCPU, "cpu": cpu_model, "kernel": os.uname().release,
                    "mem_gb": round(int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
                                        .group(1)) / 1048576),
                    "loadavg_before": load_before, "loadavg_after": load_after,
                    "background_busy_pct_before": bg_before, "background_busy_pct_after": bg_after,
                    "note": "everything (load generators, redis, dovecot, aiosmtpd, daemon) shares these cores"},
        "software": {"daemon": getattr(b, "version", None), "daemon_path": args.daemon,
                     "daemon_sha1": getattr(b, "binary_sha1", None), "daemon_built": getattr(b, "binary_mtime", None),
                     "redis": redis_v, "dovecot": dovecot_v, "python": sys.version.split()[0],
                     "requests": requests.__version__, "aiosmtpd": getattr(aiosmtpd, "__version__", "?")},
        "settings": {"mails": args.mails, "replies": args.replies, "runs": args.runs, "clients": args.clients,
                     "imap_batch": args.batch, "imap_poll_interval": args.poll, "log_level": args.log_level,
                     "corpus_bytes": getattr(b, "corpus_bytes", None), "charsets": eh.CHARSETS,
                     "redis": "unix socket, no persistence", "dovecot": "maildir, mail_fsync=never"},
        "summary": summary,
        "summary_idle_runs": {".".join(path): summarize([r for r in b.runs if r.get("idle")], path,
                                                        keep_values=True)
                              for _label, path, _unit in FIGURES},
        "runs": b.runs,
        "failures": b.failures,
        "aborted": aborted,
        "logs": logs,
    }
    with open(out_json, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)

    say("")
    say(f"== omnirouted email benchmark — {stamp}")
    say(f"machine : nproc={NCPU}, {cpu_model}, Linux {os.uname().release}; everything shares these cores")
    say(f"software: {doc['software']['daemon']} (sha1 {str(doc['software']['daemon_sha1'])[:12]}, "
        f"built {doc['software']['daemon_built']}), {redis_v.split(' sha=')[0]}, dovecot {dovecot_v.split()[0]}")
    say(f"load    : loadavg before {' '.join(load_before)}, after {' '.join(load_after)}; background busy "
        f"1 s before/after: {bg_before}% / {bg_after}% (100% = one core)")
    say(f"settings: N={args.mails} mails, M={args.replies} replies, {args.runs} runs, {args.clients} HTTP sessions, "
        f"imap batch {args.batch} poll {args.poll}")
    say(f"{'figure':42s} {'median':>10s} {'min':>10s} {'max':>10s}  per run")
    for label, path, unit in FIGURES:
        s = summary[".".join(path)]
        if "median" not in s:
            say(f"{label:42s} {'n/a':>10s}")
            continue
        say(f"{label:42s} {s['median']:>10g} {s['min']:>10g} {s['max']:>10g}  {s['values']} {unit}")
    if b.failures or aborted:
        say("result  : FAIL")
        for f in b.failures:
            say(f"          - {f}")
        if aborted:
            say(f"          - aborted: {aborted}")
    else:
        say("result  : OK (every mail stored once with the corpus text, every reply delivered once, "
            "daemons exit 0)")
    busy = [r["run"] for r in b.runs if not r.get("idle", True)]
    say(f"other   : CPU of other processes during the timed phases, max per run: "
        f"{[r.get('max_other_cpu_pct') for r in b.runs]} (100% = one core)")
    if busy:
        say(f"warning : the machine was not idle in runs {busy} (other processes > {args.max_other}% CPU in a phase): "
            f"their rates are not comparable with runs on an idle machine")
    say(f"details : {out_json}")
    return 0 if not b.failures and not aborted else 1


if __name__ == "__main__":
    sys.exit(main())
