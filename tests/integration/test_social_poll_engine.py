"""The polling engine (issue 8, daemon/poller.c) under load and across
daemons, against the fakes of social_helpers:

ACCEPTANCE 1: a simulated day (~1,500 mentions in bursts, created_at
spread over 24 h) polled from Mastodon and from X under an advertised
rate limit, with a 429 (Retry-After 1) and a 503 injected in the middle:
every mention stored exactly once, the limit never exceeded.

ACCEPTANCE 2: two daemons on one Redis poll one account: one lease
holder, rounds never closer than the interval, a SIGKILLed holder
replaced within the lease, a SIGTERMed one at once (it releases the
lease)."""

import calendar
import random
import re
import signal
import threading
import time

import pytest

from conftest import free_port, quiet, wait_until
from social_helpers import (  # noqa: F401 - social_fakes is a fixture
    assert_exactly_once, assert_no_overlap_mastodon, assert_no_violations, dedup_count, gaps, iso_ms,
    lease_taken, mastodon_account, mention_html, social_config, social_fakes, wait_count,
    wait_log_line, wait_stored, x_account)

N = 1500
DAY0 = calendar.timegm((2026, 3, 14, 0, 0, 0))
HOSTS = ["social.example", "mastodon.social", "fosstodon.org", "mstdn.jp", "chaos.social"]


class Generator(threading.Thread):
    """Adds n mentions in bursts (1..40 at once, 20..120 ms apart) with
    created_at spread over one simulated day; calls each inject[(k, fn)]
    once k mentions were added."""

    def __init__(self, fake, n, add, inject=(), seed=8):
        super().__init__(daemon=True)
        self.fake, self.n, self.add = fake, n, add
        self.inject = sorted(inject, key=lambda p: p[0])
        self.rng = random.Random(seed)
        self.ids = []
        self.error = None
        self.bursts = 0
        self.took = None

    def run(self):
        t0 = time.monotonic()
        try:
            i = 0
            inject = list(self.inject)
            while i < self.n:
                burst = min(self.n - i, self.rng.choice([1, 1, 2, 3, 5, 8, 13, 21, 34, 40]))
                with self.fake.lock:
                    for _ in range(burst):
                        created = iso_ms(DAY0 + (i + self.rng.random()) * 86400.0 / self.n)
                        self.ids.append(self.add(i, created, self.rng))
                        i += 1
                self.bursts += 1
                while inject and inject[0][0] <= i:
                    inject.pop(0)[1]()
                time.sleep(self.rng.uniform(0.02, 0.12))
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e
        self.took = time.monotonic() - t0


def fault_gaps(fake, status):
    """[(fault request, seconds to the next request)] for injected faults."""
    reqs = fake.reqs()
    return [(a, b.t - a.t) for a, b in zip(reqs, reqs[1:]) if a.fault is not None and a.status == status]


def run_day(fake, rdb, provider, add, path):
    inject = [(N * 2 // 5, lambda: fake.fail_next(429, retry_after=1, path=path)),
              (N * 7 // 10, lambda: fake.fail_next(503, path=path))]
    gen = Generator(fake, N, add, inject)
    t0 = time.monotonic()
    gen.start()
    gen.join(60)
    assert not gen.is_alive() and gen.error is None, gen.error
    wait_count(rdb, provider, N + 1, timeout=60)
    drained = time.monotonic() - t0
    quiet(lambda: dedup_count(rdb, provider) == N + 1, 1.0)
    return gen, drained


def check_day(fake, gen, drained, label):
    assert_no_violations(fake)
    f429, f503 = fault_gaps(fake, 429), fault_gaps(fake, 503)
    assert len(f429) == 1 and len(f503) == 1, (f429, f503)
    assert f429[0][1] >= 0.95, f"asked again {f429[0][1]:.3f}s after a 429 with Retry-After: 1"
    assert f503[0][1] >= 0.45, f"asked again {f503[0][1]:.3f}s after a 503"
    reqs = fake.reqs()
    at_zero = sum(1 for r in reqs if (r.answer_headers.get("X-RateLimit-Remaining")
                                      or r.answer_headers.get("x-rate-limit-remaining")) == "0")
    print(f"{label}: {N} mentions in {gen.bursts} bursts over {gen.took:.2f}s, all stored after "
          f"{drained:.2f}s; {len(reqs)} requests, {at_zero} answered remaining=0; after the 429 "
          f"{f429[0][1]:.2f}s, after the 503 {f503[0][1]:.2f}s; violations {len(fake.violations)}")


@pytest.mark.timeout(120)
def test_acceptance_simulated_day_mastodon(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    fake = social_fakes.mastodon(limit_per_window=20, window_s=2)
    seed = fake.add_mention("seed@social.example", mention_html("brand", "good morning"))
    cfg = social_config(make_config(), secrets_dir,
                        mastodon=[mastodon_account(fake, secrets_dir, page_size=20, poll_interval="200ms")])
    d = start_daemon(cfg)
    wait_stored(rdb, "mastodon:brand", seed)

    def add(i, created, rng):
        acct = f"user{rng.randrange(250)}@{rng.choice(HOSTS)}"
        vis = rng.choices(["public", "unlisted", "direct"], [6, 2, 2])[0]
        text = f"Question {i}: where is my order {rng.randrange(10**5)}?\nThanks!"
        return fake.add_mention(acct, mention_html("brand", text), visibility=vis, created_at=created)

    gen, drained = run_day(fake, rdb, "mastodon:brand", add, "/api/v1/notifications")
    stored = assert_exactly_once(rdb, "mastodon:brand", [seed] + gen.ids)
    assert_no_overlap_mastodon(fake)
    check_day(fake, gen, drained, "mastodon")
    assert rdb.get("omr:cursor:mastodon:brand") == fake.nid_of(gen.ids[-1])
    assert all(r.q("limit") == "20" for r in fake.polls())
    # One conversation per customer and visibility.
    convs = {}
    for sid, ((conv, _, m),) in stored.items():
        convs.setdefault((m["customer"]["id"], m.get("thread_key")), set()).add(conv)
    assert all(len(v) == 1 for v in convs.values()), [k for k, v in convs.items() if len(v) > 1][:5]
    assert d.alive()


@pytest.mark.timeout(120)
def test_acceptance_simulated_day_x(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    fake = social_fakes.x(limit_per_window=20, window_s=2)
    seed = fake.add_mention("999", "seeder", "@brandsupport good morning")
    cfg = social_config(make_config(), secrets_dir,
                        x=[x_account(fake, secrets_dir, page_size=20, poll_interval="200ms")])
    d = start_daemon(cfg)
    wait_stored(rdb, "x:brand", seed)
    wait_until(lambda: rdb.get("omr:cursor:x:brand") == seed or None, 3, what="cursor at the seed")
    convs = []

    def add(i, created, rng):
        u = rng.randrange(250)
        conv = rng.choice(convs) if convs and rng.random() < 0.3 else None
        tid = fake.add_mention(str(10_000 + u), f"user{u}", f"@brandsupport question {i}: order "
                               f"{rng.randrange(10**5)} is late", conversation_id=conv, created_at=created)
        if conv is None:
            convs.append(tid)
        return tid

    gen, drained = run_day(fake, rdb, "x:brand", add, f"/2/users/{fake.user_id}/mentions")
    assert_exactly_once(rdb, "x:brand", [seed] + gen.ids)
    check_day(fake, gen, drained, "x")
    assert rdb.get("omr:cursor:x:brand") == gen.ids[-1]
    # No tweet was answered to two rounds (same since_id only).
    seen = {}
    for r in fake.polls():
        for i in r.ids:
            seen.setdefault(i, set()).add(r.q("since_id"))
    assert all(len(v) == 1 for v in seen.values()), [(k, v) for k, v in seen.items() if len(v) > 1][:5]
    assert d.alive()


# --------------------------------------------------------------------------
# ACCEPTANCE 2: the lease

P = "mastodon:brand"
LEASE = "omr:lease:poll:mastodon:brand"
INTERVAL = 1.0
LEASE_S = 2.0


def lease_owner_pid(rdb):
    v = rdb.get(LEASE)
    m = re.match(r"^.*:(\d+):[^:]*$", v or "")
    return int(m.group(1)) if m else None


def wait_owner(rdb, pid, timeout):
    t0 = time.monotonic()
    wait_until(lambda: lease_owner_pid(rdb) == pid or None, timeout, interval=0.005,
               what=f"lease held by pid {pid} (now {rdb.get(LEASE)!r})")
    return time.monotonic() - t0


@pytest.mark.timeout(90)
def test_acceptance_lease_one_poller_and_handover(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    toks = {"A": "lease-daemon-a-" + "a1" * 10, "B": "lease-daemon-b-" + "b2" * 10}
    fake = social_fakes.mastodon(token=toks["A"], tokens=list(toks.values()))
    seed = fake.add_mention("seed@social.example", mention_html("brand", "seed"))

    def cfg(who):
        return social_config(make_config(), secrets_dir, port=free_port(), mastodon=[
            mastodon_account(fake, secrets_dir, token=toks[who], poll_interval="1s", lease="2s")])

    dm = {"A": start_daemon(cfg("A"), name="daemon-a"), "B": start_daemon(cfg("B"), name="daemon-b")}
    wait_stored(rdb, P, seed)
    t_obs = time.monotonic()
    m1 = fake.add_mention("ana@social.example", mention_html("brand", "during observation 1"))
    time.sleep(3.0)
    m2 = fake.add_mention("bob@social.example", mention_html("brand", "during observation 2"))
    time.sleep(3.0)
    reqs = fake.reqs()
    assert reqs, "nobody polled"
    g = gaps(reqs)
    print(f"observation: {len(reqs)} requests, gaps {min(g):.3f}..{max(g):.3f}s")
    assert min(g) >= INTERVAL - 0.05, f"two rounds {min(g):.3f}s apart: {reqs!r}"
    who = {r.token for r in reqs}
    assert len(who) == 1, f"both daemons polled: {reqs!r}"
    holder = next(k for k, t in toks.items() if t in who)
    other = "B" if holder == "A" else "A"
    taken = {k: lease_taken(d, P) for k, d in dm.items()}
    assert len(taken[holder]) >= 1 and not taken[other], f"`poll lease taken` lines: {taken}"
    assert len(taken[holder]) == 1, f"the holder took the lease {len(taken[holder])} times: {taken[holder]}"
    assert lease_owner_pid(rdb) == dm[holder].pid, (rdb.get(LEASE), dm[holder].pid)
    for m in (m1, m2):
        wait_stored(rdb, P, m, timeout=3)

    # SIGKILL the holder: the other takes over within the lease.
    off = dm[other].log_offset()
    t_kill = time.monotonic()
    dm[holder].signal(signal.SIGKILL)
    dm[holder].proc.wait(5)
    took_lease = wait_owner(rdb, dm[other].pid, LEASE_S + 1)
    line = wait_log_line(dm[other], P, "poll lease taken", since=off, timeout=3)
    first = fake.wait_reqs(1, timeout=LEASE_S + 2, pred=lambda r: r.token == toks[other])[0]
    print(f"SIGKILL: lease taken after {took_lease:.3f}s, first request after {first.t - t_kill:.3f}s ({line})")
    assert first.t - t_kill <= LEASE_S, f"first request of the new holder {first.t - t_kill:.3f}s after the kill"
    m3 = fake.add_mention("cid@social.example", mention_html("brand", "after the kill"))
    wait_stored(rdb, P, m3, timeout=5)

    # The killed daemon comes back as a standby ...
    dm[holder].start()
    dm[holder].wait_ready()
    off_back = dm[holder].log_offset()
    time.sleep(2.0)
    assert not [r for r in fake.reqs() if r.t > first.t and r.token == toks[holder]], \
        "the restarted daemon polled although the other holds the lease"
    assert lease_owner_pid(rdb) == dm[other].pid

    # ... and takes over at once when the holder stops cleanly. The SIGTERM
    # lands 0.4 s into an interval: a standby that waited for the lease key
    # to expire (TTL 1.5 s after the last renewal) would need > 1 s.
    n = len(fake.reqs())
    last = fake.wait_reqs(n + 1, timeout=3)[n]
    time.sleep(max(0.0, last.t + 0.4 - time.monotonic()))
    t_term = time.monotonic()
    dm[other].signal(signal.SIGTERM)
    took_term = wait_owner(rdb, dm[holder].pid, 3)
    rc = dm[other].proc.wait(15)
    assert rc == 0, rc
    line = wait_log_line(dm[holder], P, "poll lease taken", since=off_back, timeout=3)
    nxt = fake.wait_reqs(1, timeout=3, pred=lambda r: r.t > t_term and r.token == toks[holder])[0]
    print(f"SIGTERM {t_term - last.t:.2f}s into an interval: lease taken after {took_term:.3f}s, first "
          f"request after {nxt.t - t_term:.3f}s, {nxt.t - last.t:.3f}s after the previous round ({line})")
    assert took_term < 1.0, f"standby took the lease {took_term:.3f}s after the holder's SIGTERM"
    m4 = fake.add_mention("dee@social.example", mention_html("brand", "after the clean stop"))
    wait_stored(rdb, P, m4, timeout=5)
    time.sleep(1.2)

    reqs = [r for r in fake.reqs() if r.t >= t_obs - 0.01]
    g = gaps(reqs)
    bad = [(round(x, 3), a, b) for x, a, b in zip(g, reqs, reqs[1:]) if x < INTERVAL - 0.05]
    assert not bad, f"rounds closer than the interval across the handovers: {bad}"
    assert_exactly_once(rdb, P, [seed, m1, m2, m3, m4])
    assert_no_overlap_mastodon(fake)
