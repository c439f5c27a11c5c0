"""Regression tests for the issue 8 code review (daemon/poller.c,
poll_lease.lua): a provider's reset time far in the future does not stop
an account for more than an hour; a used-up limit on a failed answer still
holds the retry back; a holder whose own network fails hands the account
to a daemon whose network works."""

import time

from conftest import free_port, wait_until
from social_helpers import (  # noqa: F401 - social_fakes is a fixture
    iso_ms, mastodon_account, mention_html, social_config, social_fakes, wait_log_line, wait_stored)

P = "mastodon:brand"
STATE = "omr:poll:mastodon:brand"


def redis_ms(rdb):
    sec, usec = rdb.time()
    return sec * 1000 + usec // 1000


def test_far_future_reset_waits_at_most_an_hour(social_fakes, start_daemon, make_config, secrets_dir, rdb):
    fake = social_fakes.mastodon()
    seed = fake.add_mention("seed@social.example", mention_html("brand", "seed"))
    start_daemon(social_config(make_config(), secrets_dir, mastodon=[mastodon_account(fake, secrets_dir)]))
    wait_stored(rdb, P, seed)
    fake.fail_next(200, body=[], headers={"X-RateLimit-Remaining": "0",
                                          "X-RateLimit-Reset": "5000-01-01T00:00:00.000Z"})
    wait_until(lambda: any(r.fault for r in fake.reqs()) or None, 5, what="the answer with the reset")
    nb = wait_until(lambda: int(rdb.hget(STATE, "not_before") or 0) or None, 3, what="not_before stored")
    wait = nb - redis_ms(rdb)
    assert 3_590_000 <= wait <= 3_601_000, f"not_before is {wait} ms away, want about an hour"
    n = len(fake.reqs())
    time.sleep(1.0)
    assert len(fake.reqs()) == n, "a request went out before the (capped) reset"


def test_a_failed_answer_that_used_up_the_limit_holds_the_retry(social_fakes, start_daemon, make_config,
                                                                 secrets_dir, rdb):
    fake = social_fakes.mastodon()
    seed = fake.add_mention("seed@social.example", mention_html("brand", "seed"))
    start_daemon(social_config(make_config(), secrets_dir, mastodon=[mastodon_account(fake, secrets_dir)]))
    wait_stored(rdb, P, seed)
    reset = time.time() + 3.0
    fake.fail_next(503, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": iso_ms(reset)})
    failed = wait_until(lambda: next((r for r in fake.reqs() if r.fault), None), 5, what="the 503")
    nxt = wait_until(lambda: next((r for r in fake.reqs() if r.t > failed.t), None), 8,
                     what="the retry after the 503")
    assert nxt.wall >= reset, f"retried {reset - nxt.wall:.2f}s before the advertised reset"


def test_a_holder_that_cannot_reach_the_provider_hands_over(social_fakes, start_daemon, make_config,
                                                            secrets_dir, rdb):
    """Daemon A's way to the provider is broken (its base_url is a closed
    port); B's works. After 3 failures in a row A gives the lease up and B
    polls: the mention is stored."""
    fake = social_fakes.mastodon()
    dead = f"http://127.0.0.1:{free_port()}"
    a = start_daemon(social_config(make_config(), secrets_dir, port=free_port(), mastodon=[
        mastodon_account(fake, secrets_dir, base_url=dead, lease="2s")]), name="daemon-a")
    wait_log_line(a, P, "poll lease taken", timeout=5)
    b = start_daemon(social_config(make_config(), secrets_dir, port=free_port(), mastodon=[
        mastodon_account(fake, secrets_dir, lease="2s")]), name="daemon-b")
    m = fake.add_mention("ana@social.example", mention_html("brand", "is anyone there?"))
    wait_log_line(a, P, "poll lease given up", timeout=15)
    wait_log_line(b, P, "poll lease taken", timeout=5)
    wait_stored(rdb, P, m, timeout=10)
