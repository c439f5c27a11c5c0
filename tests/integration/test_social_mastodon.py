"""Mastodon mentions polled (issue 8): a fake Mastodon on 127.0.0.1 (see
social_helpers.FakeMastodon) serves GET /api/v1/notifications with
Mastodon's paging (min_id, limit, Link) and rate-limit headers, and
records POST /api/v1/statuses. What is checked is the contract of
docs/connectors/social.md: mention -> message mapping, one conversation per
customer and visibility, the cursor (min_id) across a restart, the
advertised rate limit never exceeded, 401 disabling the account until a
reload, backoff on 5xx, replies (mention, in_reply_to_id, visibility,
Idempotency-Key), and a Redis outage."""

import re
import signal
import time

import pytest

from conftest import base_config, free_port, metric, quiet, wait_until
from sms_helpers import accepted_reply, post_reply, wait_reply_hash
from social_helpers import (  # noqa: F401 - social_fakes is a fixture
    assert_exactly_once, assert_no_overlap_mastodon, assert_no_violations, dedup_count, gaps, log_lines,
    mastodon_account, mention_html, parse_iso, revoke_until_disabled, social_config, social_fakes, social_messages,
    wait_count, wait_stored)

P = "mastodon:brand"
CURSOR = "omr:cursor:mastodon:brand"


def start(start_daemon, make_config, secrets_dir, fake, replies=False, **acct):
    cfg = social_config(make_config(), secrets_dir, mastodon=[mastodon_account(fake, secrets_dir, **acct)],
                        replies=replies)
    return start_daemon(cfg)


def norm(s):
    return re.sub(r"\s+", " ", s or "").strip()


def test_mentions_become_conversations(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    """A public and a direct mention from the same acct make two
    conversations (thread key = visibility); HTML becomes text without our
    @mention; customer id user@host (a local user gets the server's host);
    provider mastodon:brand, channel social; language; only mentions."""
    fake = social_fakes.mastodon()
    pub = fake.add_mention("ana@social.example", mention_html("brand", "hello\nworld"), visibility="public",
                           display_name="Ana Lima")
    fake.add_notification("favourite", "dan@other.example")  # not a mention: never stored
    dm = fake.add_mention("ana@social.example",
                          mention_html("brand", "Can you check order 1042 privately?"),
                          visibility="direct", display_name="Ana Lima")
    local = fake.add_mention("bob", mention_html("brand", "Local user asking about shipping times."),
                             display_name="Bob")
    vi = fake.add_mention("chi@vn.example", mention_html(
        "brand", "Xin chào, tôi đã đặt hàng tuần trước nhưng vẫn chưa nhận được. "
                 "Bạn có thể kiểm tra giúp tôi đơn hàng này không? Cảm ơn bạn rất nhiều."),
        language="vi", display_name="Chi")
    fake.add_notification("follow", "eve@other.example")
    d = start(start_daemon, make_config, secrets_dir, fake)

    wait_count(rdb, P, 4)
    quiet(lambda: dedup_count(rdb, P) == 4, 0.6)
    stored = assert_exactly_once(rdb, P, [pub, dm, local, vi])
    m_pub, m_dm, m_local, m_vi = (stored[i][0][2] for i in (pub, dm, local, vi))

    for m in (m_pub, m_dm, m_local, m_vi):
        assert m["channel"] == "social", m
        assert m["provider"] == P, m
        assert m["direction"] == "in", m
        assert "<" not in m["text"] and ">" not in m["text"], m["text"]
        assert "@brand" not in m["text"], m["text"]
    assert norm(m_pub["text"]) == "hello world", m_pub["text"]
    assert "hello" in m_pub["text"] and "world" in m_pub["text"]
    assert norm(m_dm["text"]) == "Can you check order 1042 privately?", m_dm["text"]

    assert m_pub["customer"]["id"] == "ana@social.example", m_pub["customer"]
    assert m_pub["customer"].get("handle") == "@ana@social.example", m_pub["customer"]
    assert m_pub["customer"].get("name") == "Ana Lima", m_pub["customer"]
    assert m_dm["customer"]["id"] == "ana@social.example", m_dm["customer"]
    assert m_local["customer"]["id"].startswith("bob@127.0.0.1"), m_local["customer"]

    assert m_pub.get("thread_key") == "public", m_pub
    assert m_dm.get("thread_key") == "direct", m_dm
    assert m_pub["conversation_id"] != m_dm["conversation_id"], "a DM shares a conversation with a public post"
    assert m_vi["language"]["tag"] == "vi", m_vi["language"]

    # The request: mentions only, our page size, the bearer token; then min_id.
    first = fake.polls()[0]
    assert first.query.get("types[]") == ["mention"], first.query
    assert first.q("limit") == "40", first.query
    assert first.q("min_id") is None, first.query
    assert first.token == fake.token, first.headers
    wait_until(lambda: rdb.get(CURSOR) == fake.nid_of(vi) or None, 3, what=f"cursor {fake.nid_of(vi)}")
    later = fake.wait_reqs(3, timeout=3, path="/api/v1/notifications")[1:]
    assert all(r.q("min_id") == fake.nid_of(vi) for r in later), later
    assert d.alive()


@pytest.mark.timeout(60)
def test_cursor_persists_across_restart(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    """25 mentions with page_size 10 stored once; after SIGTERM, 7 more;
    the new daemon's first request asks min_id = the last stored
    notification id: all 33 (seed + 25 + 7) stored exactly once, no
    notification answered twice except to the same min_id. The ids cross
    from 6 to 7 digits (numeric, not string, order)."""
    fake = social_fakes.mastodon(first_id=999_990)
    seed = fake.add_mention("seed@social.example", mention_html("brand", "first one"))
    d = start(start_daemon, make_config, secrets_dir, fake, page_size=10)
    wait_stored(rdb, P, seed)
    wait_until(lambda: rdb.get(CURSOR) == fake.nid_of(seed) or None, 3, what="cursor at the seed")

    batch1 = [fake.add_mention(f"c{i % 6}@m{i % 3}.example", mention_html("brand", f"question number {i}"),
                               visibility=("public", "unlisted", "direct")[i % 3]) for i in range(25)]
    wait_count(rdb, P, 26, timeout=10)
    last1 = fake.nid_of(batch1[-1])
    assert len(fake.nid_of(seed)) == 6 and len(last1) == 7, (fake.nid_of(seed), last1)
    wait_until(lambda: rdb.get(CURSOR) == last1 or None, 3, what=f"cursor {last1} (now {rdb.get(CURSOR)})")
    rc, took = d.terminate()
    assert rc == 0, rc
    n_before = len(fake.reqs())

    batch2 = [fake.add_mention(f"late{i}@m.example", mention_html("brand", f"after the restart {i}"))
              for i in range(7)]
    d.start()
    d.wait_ready()
    wait_count(rdb, P, 33, timeout=10)
    quiet(lambda: dedup_count(rdb, P) == 33, 1.0)
    assert_exactly_once(rdb, P, [seed] + batch1 + batch2)

    after = fake.reqs()[n_before:]
    assert after, "no request after the restart"
    assert after[0].q("min_id") == last1, f"first request after the restart: {after[0]!r}, cursor was {last1}"
    assert all(r.q("min_id") is not None for r in after), after
    assert all(r.q("limit") == "10" for r in fake.polls()), "page_size not sent as limit"
    assert_no_overlap_mastodon(fake)
    assert rdb.get(CURSOR) == fake.nid_of(batch2[-1])
    print(f"SIGTERM took {took:.2f}s; {len(fake.reqs())} requests")


def test_empty_first_poll_then_a_burst_loses_nothing(social_fakes, start_daemon, make_config, secrets_dir,
                                                      rdb):
    """The first poll finds no mention: the cursor becomes "0", so a burst
    of 25 with page_size 10 is read from the start (min_id=0), every page,
    instead of only its newest page."""
    fake = social_fakes.mastodon()
    start(start_daemon, make_config, secrets_dir, fake, page_size=10)
    wait_until(lambda: rdb.get(CURSOR) == "0" or None, 5, what="cursor 0 after an empty first poll")
    burst = [fake.add_mention(f"b{i}@m.example", mention_html("brand", f"burst {i}")) for i in range(25)]
    wait_count(rdb, P, 25, timeout=10)
    quiet(lambda: dedup_count(rdb, P) == 25, 0.5)
    assert_exactly_once(rdb, P, burst)
    assert any(r.q("min_id") == "0" for r in fake.polls()), fake.polls()[:3]
    assert_no_overlap_mastodon(fake)


@pytest.mark.timeout(60)
def test_rate_limit_wait_is_honoured(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    """3 requests per 2 s window, 50 mentions with page_size 5: all
    stored, no request ever sent while X-RateLimit-Remaining was 0, and
    the daemon paused until the advertised reset (measured)."""
    fake = social_fakes.mastodon(limit_per_window=3, window_s=2)
    seed = fake.add_mention("seed@social.example", mention_html("brand", "seed"))
    d = start(start_daemon, make_config, secrets_dir, fake, page_size=5)
    wait_stored(rdb, P, seed)
    t0 = time.monotonic()
    ids = [fake.add_mention(f"r{i % 9}@rate.example", mention_html("brand", f"rate limited {i}"))
           for i in range(50)]
    wait_count(rdb, P, 51, timeout=30)
    took = time.monotonic() - t0
    quiet(lambda: dedup_count(rdb, P) == 51, 0.5)
    assert_exactly_once(rdb, P, [seed] + ids)
    assert_no_violations(fake)

    reqs = fake.reqs()
    pauses = []
    for a, b in zip(reqs, reqs[1:]):
        if a.answer_headers.get("X-RateLimit-Remaining") == "0":
            reset = parse_iso(a.answer_headers["X-RateLimit-Reset"])
            pauses.append((b.t - a.t, reset - a.wall, b.wall - reset))
    assert pauses, "the limit was never reached: the test proves nothing"
    for gap, needed, late in pauses:
        assert late >= 0, f"request {-late:.3f}s before the reset"
        assert late < 1.5, f"waited {late:.2f}s past the reset"
    assert max(g for g, _, _ in pauses) >= 0.5, pauses
    print(f"50 mentions in {took:.2f}s, {len(reqs)} requests, pauses (gap, needed, after reset): "
          + ", ".join(f"({g:.2f},{n:.2f},{l:.2f})" for g, n, l in pauses))
    assert d.alive()


@pytest.mark.timeout(60)
def test_401_disables_the_account_until_reload(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    """A revoked token: the account is disabled (error log line, metric
    outcome disabled, lease released), no request after the 401, while a
    second account on a second server keeps polling; SIGHUP after the
    token works again resumes it from its cursor."""
    a = social_fakes.mastodon()
    b = social_fakes.mastodon(token="second-server-token-" + "77aa" * 6)
    cfg = social_config(make_config(), secrets_dir, mastodon=[
        mastodon_account(a, secrets_dir, "brand"), mastodon_account(b, secrets_dir, "other")])
    d = start_daemon(cfg)
    sa = a.add_mention("ana@social.example", mention_html("brand", "account one"))
    sb = b.add_mention("bea@social.example", mention_html("brand", "account two"))
    wait_stored(rdb, P, sa)
    wait_stored(rdb, "mastodon:other", sb)
    wait_until(lambda: rdb.get(CURSOR) == a.nid_of(sa) or None, 3, what="cursor of brand")

    r401, _ = revoke_until_disabled(d, a, rdb, P)

    during = a.add_mention("ana@social.example", mention_html("brand", "written while disabled"))
    nb = len(b.reqs())
    sb2 = b.add_mention("bea@social.example", mention_html("brand", "the other account still works"))
    wait_stored(rdb, "mastodon:other", sb2)
    time.sleep(2.0)  # ten intervals
    after = [r for r in a.reqs() if r.t > r401.t]
    assert not after, f"requests after the 401: {after!r}"
    assert len(b.reqs()) >= nb + 5, f"the other account stopped polling: {b.reqs()[nb:]!r}"
    assert not social_messages(rdb, P).get(during)

    a.revoke(False)
    off = d.log_offset()
    d.signal(signal.SIGHUP)
    wait_stored(rdb, P, during, timeout=5)
    resumed = [r for r in a.reqs() if r.t > r401.t]
    assert resumed[0].q("min_id") == a.nid_of(sa), resumed[0]
    assert_exactly_once(rdb, P, [sa, during])
    assert_exactly_once(rdb, "mastodon:other", [sb, sb2])
    assert d.alive()


@pytest.mark.timeout(40)
def test_503_backs_off_then_stores(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    """503 twice, then OK: the retries are spaced by a backoff (>= ~0.5 s,
    not the 200 ms interval), the error streak is logged once, and the
    mention is stored; then the normal interval again."""
    fake = social_fakes.mastodon()
    seed = fake.add_mention("seed@social.example", mention_html("brand", "seed"))
    d = start(start_daemon, make_config, secrets_dir, fake)
    wait_stored(rdb, P, seed)
    off = d.log_offset()
    n0 = len(fake.reqs())
    fake.fail_next(503, count=2, path="/api/v1/notifications")
    m = fake.add_mention("ana@social.example", mention_html("brand", "after the outage"))
    wait_stored(rdb, P, m, timeout=15)
    reqs = fake.reqs()[n0:]
    i = next(k for k, r in enumerate(reqs) if r.status == 503)
    reqs = fake.wait_reqs(n0 + i + 5, timeout=5)[n0:]
    r1, r2, r3 = reqs[i:i + 3]
    assert (r1.status, r2.status, r3.status) == (503, 503, 200), reqs[i:i + 3]
    g1, g2 = r2.t - r1.t, r3.t - r2.t
    print(f"backoff gaps: {g1:.3f}s, {g2:.3f}s; next: {[round(g, 3) for g in gaps(reqs[i + 2:i + 5])]}")
    assert g1 >= 0.45, f"retried {g1:.3f}s after a 503"
    assert g2 >= 0.45, f"retried {g2:.3f}s after the second 503"
    # The streak is over: back to the 200 ms interval.
    assert all(g < 0.7 for g in gaps(reqs[i + 2:i + 5])), reqs[i + 2:i + 5]
    assert_exactly_once(rdb, P, [seed, m])
    bad = log_lines(d, P, since=off, level="warning|error")
    assert len(bad) == 1, f"the error streak was logged {len(bad)} times: {bad}"
    assert metric(d.metrics(), "omr_polls_total", source=P, outcome="error") >= 2


@pytest.mark.timeout(40)
def test_reply_mentions_the_customer_and_keeps_the_idempotency_key(
        social_fakes, start_daemon, make_config, secrets_dir, rdb):
    """A reply to a direct conversation: POST /api/v1/statuses with
    in_reply_to_id = the customer's last status, visibility=direct, text
    starting with @user@host, the bearer token, and the same
    Idempotency-Key on the retry after a 503 (the fake created the status
    the first time: one status only). A public conversation's reply stays
    public."""
    fake = social_fakes.mastodon()
    d1 = fake.add_mention("ana@social.example", mention_html("brand", "my order is late"), visibility="direct")
    d2 = fake.add_mention("ana@social.example", mention_html("brand", "it is order 1042"), visibility="direct")
    pb = fake.add_mention("bob@pub.example", mention_html("brand", "public question"), visibility="public")
    d = start(start_daemon, make_config, secrets_dir, fake, replies=True)
    conv = wait_stored(rdb, P, d2)["conversation_id"]
    assert wait_stored(rdb, P, d1)["conversation_id"] == conv
    conv_pub = wait_stored(rdb, P, pb)["conversation_id"]

    fake.fail_next(503, method="POST", path="/api/v1/statuses", commit=True, retry_after=1)
    rid = accepted_reply(post_reply(d, conv, "We are looking into it."))
    posts = fake.wait_reqs(2, timeout=10, method="POST", path="/api/v1/statuses")
    h = wait_reply_hash(rdb, conv, rid, {"sent"}, timeout=5)
    time.sleep(0.3)
    posts = fake.reqs("POST", "/api/v1/statuses")
    assert [p.status for p in posts] == [503, 200], posts
    for p in posts:
        f = p.form
        assert f.get("status", "").startswith("@ana@social.example"), f
        assert "We are looking into it." in f["status"], f
        assert f.get("in_reply_to_id") == d2, f
        assert f.get("visibility") == "direct", f
        assert p.token == fake.token, p.headers
    keys = [p.headers.get("idempotency-key") for p in posts]
    assert keys[0] and keys[0] == keys[1], f"Idempotency-Key differs across the retry: {keys}"
    assert keys[0] == rid, f"Idempotency-Key {keys[0]!r} is not the reply id {rid!r}"
    assert len(fake.statuses) == 1, fake.statuses
    assert h.get("provider_message_id") == fake.statuses[0]["id"], h

    rid2 = accepted_reply(post_reply(d, conv_pub, "@bob@pub.example thanks, answered publicly"))
    wait_reply_hash(rdb, conv_pub, rid2, {"sent"}, timeout=5)
    p = fake.reqs("POST", "/api/v1/statuses")[-1]
    f = p.form
    assert f.get("visibility") == "public", f
    assert f.get("in_reply_to_id") == pb, f
    assert f["status"].startswith("@bob@pub.example") and f["status"].count("@bob@pub.example") == 1, f
    assert len(fake.statuses) == 2


@pytest.mark.timeout(60)
def test_redis_down_pauses_polling_and_loses_nothing(social_fakes, start_daemon, redis_factory, secrets_dir):
    """Redis killed: no polls while it is down (after the one in flight);
    mentions written meanwhile are all stored exactly once after it is
    back, the cursor never having moved past what was stored."""
    srv = redis_factory("redis-aof", extra_args=["--appendonly", "yes", "--appendfsync", "always"])
    rdb = srv.client()
    fake = social_fakes.mastodon()
    seed = fake.add_mention("seed@social.example", mention_html("brand", "before the outage"))
    cfg = social_config(base_config(srv.url, secrets_dir, free_port()), secrets_dir,
                        mastodon=[mastodon_account(fake, secrets_dir, page_size=5)])
    d = start_daemon(cfg)
    wait_stored(rdb, P, seed)
    wait_until(lambda: rdb.get(CURSOR) == fake.nid_of(seed) or None, 3, what="cursor at the seed")

    srv.kill()
    t_down = time.monotonic()
    during = [fake.add_mention(f"o{i % 4}@outage.example", mention_html("brand", f"during the outage {i}"))
              for i in range(12)]
    time.sleep(2.5)
    t_up = time.monotonic()
    in_outage = [r for r in fake.reqs() if t_down + 0.5 < r.t < t_up]
    srv.start()
    rdb = srv.client()
    wait_count(rdb, P, 13, timeout=20)
    quiet(lambda: dedup_count(rdb, P) == 13, 1.0)
    print(f"requests during the outage: {len(in_outage)}; first after: "
          f"{[r for r in fake.reqs() if r.t >= t_up][:1]}")
    assert not in_outage, f"polled while Redis was down: {in_outage!r}"
    assert_exactly_once(rdb, P, [seed] + during)
    assert rdb.get(CURSOR) == fake.nid_of(during[-1])
    assert d.alive()
    rdb.close()
