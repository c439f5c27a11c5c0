"""X mentions polled (issue 8): a fake X API v2 on 127.0.0.1 (see
social_helpers.FakeX) serves GET /2/users/<id>/mentions with since_id,
max_results and pagination tokens, x-rate-limit-* headers, and records
POST /2/tweets. Checked: every mention stored exactly once across pages and
a restart, oldest first within a conversation, thread key =
conversation_id, the reply's in_reply_to_tweet_id, 429 / reset honoured,
401 disabling the account."""

import json
import math
import re
import time

import pytest

from conftest import metric, quiet, wait_until
from sms_helpers import accepted_reply, post_reply, wait_reply_hash
from social_helpers import (  # noqa: F401 - social_fakes is a fixture
    assert_exactly_once, assert_no_violations, dedup_count, revoke_until_disabled, social_config, social_fakes,
    wait_count, wait_stored, x_account)

P = "x:brand"
CURSOR = "omr:cursor:x:brand"


def start(start_daemon, make_config, secrets_dir, fake, replies=False, **acct):
    cfg = social_config(make_config(), secrets_dir, x=[x_account(fake, secrets_dir, **acct)], replies=replies)
    return start_daemon(cfg)


def seeded(start_daemon, make_config, secrets_dir, fake, rdb, **kw):
    """A daemon that has stored one seed mention (so that it has a cursor)."""
    seed = fake.add_mention("999", "seeder", "@brandsupport seed")
    d = start(start_daemon, make_config, secrets_dir, fake, **kw)
    wait_stored(rdb, P, seed)
    wait_until(lambda: rdb.get(CURSOR) == seed or None, 3, what=f"cursor {seed} (now {rdb.get(CURSOR)})")
    return d, seed


@pytest.mark.timeout(40)
def test_pages_ingested_once_oldest_first_threaded_by_conversation(
        social_fakes, start_daemon, make_config, secrets_dir, rdb):
    """23 mentions, page_size 5 (five pages, newest first): each stored
    once; within a conversation in tweet order; thread key =
    conversation_id (two mentions with the same conversation_id join one
    conversation, another conversation_id of the same author does not);
    @handle trimmed; the cursor = the newest id."""
    fake = social_fakes.x()
    d, seed = seeded(start_daemon, make_config, secrets_dir, fake, rdb, page_size=5)
    ours = "1790000000000000042"  # a tweet of ours the customers answer
    plan = ([("1001", "alice", None)] + [("1001", "alice", "A")] * 4 +  # one thread of 5
            [("1002", "bob", "B1")] * 3 + [("1002", "bob", "B2")] * 3 +  # two threads of 3
            [("1003", "cara", None)] * 5 +  # five single tweets
            [("1004", "dan", ours)] * 7)  # seven answers to our tweet
    order = [0, 5, 11, 16, 1, 6, 12, 17, 2, 8, 13, 18, 3, 9, 14, 19, 4, 10, 15, 20, 7, 21, 22]
    assert sorted(order) == list(range(23))
    roots = {}
    expect_conv = {}
    ids = []
    fake.lock.acquire()  # all 23 appear at once: one round
    for k in order:
        author, user, conv = plan[k]
        if conv in ("A", "B1", "B2"):
            cid = roots.get(conv)
        else:
            cid = conv
        tid = fake.add_mention(author, user, f"@brandsupport message {k} from {user}", conversation_id=cid,
                               name=user.upper())
        if conv in ("A", "B1", "B2") and conv not in roots:
            roots[conv] = tid
        if k == 0:
            roots["A"] = tid
        expect_conv[tid] = fake.tweets[-1]["conversation_id"]
        ids.append(tid)
    fake.lock.release()
    wait_count(rdb, P, 24, timeout=10)
    quiet(lambda: dedup_count(rdb, P) == 24, 0.8)
    stored = assert_exactly_once(rdb, P, [seed] + ids)

    # The round: five pages, all with the same since_id.
    rnd = [r for r in fake.reqs() if r.ids and seed not in r.ids]
    assert len(rnd) == 5, rnd
    assert [len(r.ids) for r in rnd] == [5, 5, 5, 5, 3], rnd
    assert all(r.q("since_id") == seed for r in rnd), [r.q("since_id") for r in rnd]
    assert rnd[0].q("pagination_token") is None and all(r.q("pagination_token") for r in rnd[1:])
    for r in rnd:
        assert r.q("max_results") == "5", r.query
        assert "author_id" in r.q("expansions", "").split(","), r.query
        fields = set(r.q("tweet.fields", "").split(","))
        assert {"created_at", "conversation_id", "author_id"} <= fields, r.query
        assert r.token == fake.token

    users = {"1001": "alice", "1002": "bob", "1003": "cara", "1004": "dan"}
    by_conv = {}
    for tid in ids:
        m = stored[tid][0][2]
        assert m["channel"] == "social" and m["provider"] == P, m
        assert m.get("thread_key") == expect_conv[tid], (tid, m.get("thread_key"), expect_conv[tid])
        author = next(t["author_id"] for t in fake.tweets if t["id"] == tid)
        assert m["customer"]["id"] == author, m["customer"]
        assert m["customer"].get("handle") == "@" + users[author], m["customer"]
        assert m["customer"].get("name") == users[author].upper(), m["customer"]
        assert "@brandsupport" not in m["text"] and m["text"].startswith("message "), m["text"]
        by_conv.setdefault(m["conversation_id"], []).append((stored[tid][0][1], tid, (author, expect_conv[tid])))
    # One conversation per (author, conversation_id); in each, log order = tweet order.
    keys = {}
    for conv, items in by_conv.items():
        threads = {k for _, _, k in items}
        assert len(threads) == 1, f"conversation {conv} mixes threads {threads}"
        keys.setdefault(threads.pop(), []).append(conv)
        log_order = [tid for _, tid in sorted((tuple(map(int, e.split("-"))), tid) for e, tid, _ in items)]
        assert log_order == sorted(log_order, key=int), f"not oldest first in {conv}: {log_order}"
    assert all(len(v) == 1 for v in keys.values()), keys
    assert len(keys) == 1 + 2 + 5 + 1, keys
    wait_until(lambda: rdb.get(CURSOR) == ids[-1] or None, 3, what=f"cursor {ids[-1]}")
    assert d.alive()


@pytest.mark.timeout(40)
def test_backlog_larger_than_a_thousand_is_not_lost(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    """1,100 mentions wait when the next round starts (page_size 100: 11
    pages): every one is stored exactly once, and the cursor never passes
    a mention that was not stored."""
    fake = social_fakes.x()
    d, seed = seeded(start_daemon, make_config, secrets_dir, fake, rdb)
    with fake.lock:  # all at once: one round
        ids = [fake.add_mention(str(5000 + i % 40), f"bk{i % 40}", f"@brandsupport backlog {i}")
               for i in range(1100)]
    wait_until(lambda: rdb.get(CURSOR) != seed or None, 10, what="the round committed")
    time.sleep(0.5)
    stored = dedup_count(rdb, P)
    cursor = rdb.get(CURSOR)
    print(f"after the round: {stored} stored, cursor {cursor} (newest {ids[-1]})")
    wait_count(rdb, P, 1101, timeout=10)
    quiet(lambda: dedup_count(rdb, P) == 1101, 0.5)
    assert_exactly_once(rdb, P, [seed] + ids)
    assert d.alive()


@pytest.mark.timeout(40)
def test_since_id_persists_across_restart(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    fake = social_fakes.x()
    d, seed = seeded(start_daemon, make_config, secrets_dir, fake, rdb, page_size=5)
    first = [fake.add_mention(str(2000 + i % 3), f"u{i % 3}", f"@brandsupport before {i}") for i in range(6)]
    wait_count(rdb, P, 7)
    wait_until(lambda: rdb.get(CURSOR) == first[-1] or None, 3, what="cursor at the newest")
    rc, _ = d.terminate()
    assert rc == 0
    n = len(fake.reqs())
    later = [fake.add_mention(str(2000 + i % 3), f"u{i % 3}", f"@brandsupport after {i}") for i in range(4)]
    d.start()
    d.wait_ready()
    wait_count(rdb, P, 11)
    quiet(lambda: dedup_count(rdb, P) == 11, 0.8)
    assert_exactly_once(rdb, P, [seed] + first + later)
    after = fake.reqs()[n:]
    assert after[0].q("since_id") == first[-1], f"first request after the restart: {after[0]!r}"
    assert all(r.q("since_id") for r in after), after
    wait_until(lambda: rdb.get(CURSOR) == later[-1] or None, 3, what="cursor at the newest")


@pytest.mark.timeout(40)
def test_reply_posts_in_reply_to_the_last_tweet(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    fake = social_fakes.x()
    t1 = fake.add_mention("3001", "ana", "@brandsupport where is my parcel?")
    t2 = fake.add_mention("3001", "ana", "@brandsupport order 1042", conversation_id=t1, in_reply_to=t1)
    d = start(start_daemon, make_config, secrets_dir, fake, replies=True)
    conv = wait_stored(rdb, P, t2)["conversation_id"]
    assert wait_stored(rdb, P, t1)["conversation_id"] == conv
    rid = accepted_reply(post_reply(d, conv, "It ships today."))
    h = wait_reply_hash(rdb, conv, rid, {"sent"}, timeout=5)
    (p,) = fake.reqs("POST", "/2/tweets")
    j = p.json
    assert "json" in p.headers.get("content-type", ""), p.headers
    assert p.token == fake.token, p.headers
    assert isinstance(j, dict) and "It ships today." in j["text"], j
    assert j.get("reply", {}).get("in_reply_to_tweet_id") == t2, j
    assert h.get("provider_message_id") == fake.posted[0]["id"], h
    print("posted:", json.dumps(j))


@pytest.mark.timeout(60)
def test_429_and_rate_limit_reset_are_honoured(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    """An injected 429 with x-rate-limit-remaining 0 and a reset 2 s ahead:
    nothing before the reset. Then a real limit of 2 requests per 2 s
    window with 12 mentions on pages of 5: all stored, zero violations."""
    fake = social_fakes.x()
    d, seed = seeded(start_daemon, make_config, secrets_dir, fake, rdb, page_size=5)
    reset = math.ceil(time.time()) + 2
    n = len(fake.reqs())
    fake.fail_next(429, headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)})
    r429 = fake.wait_reqs(n + 1, timeout=3)[n]
    assert r429.status == 429
    nxt = fake.wait_reqs(n + 2, timeout=6)[n + 1]
    print(f"429 at {r429.wall:.3f}, reset {reset}, next request {nxt.wall - reset:+.3f}s after the reset")
    assert nxt.wall >= reset, f"request {reset - nxt.wall:.3f}s before x-rate-limit-reset"
    assert nxt.wall - reset < 1.5, f"waited {nxt.wall - reset:.2f}s past the reset"
    assert metric(d.metrics(), "omr_polls_total", source=P, outcome="rate_limited") >= 1

    fake.set_rate_limit(2, 2)
    ids = [fake.add_mention(str(4000 + i % 4), f"rl{i % 4}", f"@brandsupport limited {i}") for i in range(12)]
    wait_count(rdb, P, 13, timeout=20)
    quiet(lambda: dedup_count(rdb, P) == 13, 0.5)
    assert_exactly_once(rdb, P, [seed] + ids)
    assert_no_violations(fake)
    zero = [r for r in fake.reqs() if r.answer_headers.get("x-rate-limit-remaining") == "0"]
    assert zero, "the limit was never reached"


@pytest.mark.timeout(40)
def test_401_disables_the_account(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    fake = social_fakes.x()
    d, seed = seeded(start_daemon, make_config, secrets_dir, fake, rdb)
    r401, line = revoke_until_disabled(d, fake, rdb, P)
    time.sleep(1.5)
    after = [r for r in fake.reqs() if r.t > r401.t]
    assert not after, f"requests after the 401: {after!r}"
    assert re.search(r"\blevel=error\b", line)
    assert d.alive()


def test_empty_first_poll_then_a_burst_loses_nothing(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    """The first poll finds no mention: the cursor becomes "0", so the
    next round takes every page of a 23-mention burst (page_size 5), not
    only its newest page."""
    fake = social_fakes.x()
    start(start_daemon, make_config, secrets_dir, fake, page_size=5)
    wait_until(lambda: rdb.get(CURSOR) == "0" or None, 5, what="cursor 0 after an empty first poll")
    burst = [fake.add_mention(f"9{i}", f"user{i}", f"@brandsupport burst {i}") for i in range(23)]
    wait_count(rdb, P, 23, timeout=10)
    quiet(lambda: dedup_count(rdb, P) == 23, 0.5)
    assert_exactly_once(rdb, P, burst)
    assert rdb.get(CURSOR) == max(burst, key=int)
