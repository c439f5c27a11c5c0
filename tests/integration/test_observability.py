"""/healthz, /readyz and /metrics tell the truth about the daemon."""

import re

import pytest

from conftest import assert_error, assert_stored_ok, metric, payload, wait_until


def test_healthz_and_readyz(daemon):
    r = daemon.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}, r.text
    r = daemon.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}, r.text


def test_listening_log_line(daemon):
    assert re.search(rf"level=info .*comp=http .*listening addr=127\.0\.0\.1:{daemon.port}\b",
                     daemon.log_text()), daemon.log_text()[-2000:]


def test_metrics_count_ingest_and_rejections(daemon, rdb):
    r = daemon.get("/metrics")
    assert r.status_code == 200
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
    m0 = daemon.metrics()
    stored0 = metric(m0, "omr_messages_ingested_total", channel="sms", outcome="stored")
    dup0 = metric(m0, "omr_messages_ingested_total", channel="sms", outcome="duplicate")
    rej0 = metric(m0, "omr_rejected_total")

    p = payload()
    assert_stored_ok(daemon.post("shop", p))
    m1 = daemon.metrics()
    assert metric(m1, "omr_messages_ingested_total", channel="sms", outcome="stored") == stored0 + 1
    assert ("omr_messages_ingested_total", frozenset({"channel": "sms", "outcome": "stored"}.items())) in m1, \
        "series omr_messages_ingested_total{channel=\"sms\",outcome=\"stored\"} not exported"

    assert daemon.post("shop", p).json()["duplicate"] is True
    m2 = daemon.metrics()
    assert metric(m2, "omr_messages_ingested_total", channel="sms", outcome="duplicate") == dup0 + 1
    assert metric(m2, "omr_messages_ingested_total", channel="sms", outcome="stored") == stored0 + 1

    assert_error(daemon.post("shop", payload(), secret="wrong"), 401, "bad_signature")
    m3 = daemon.metrics()
    assert metric(m3, "omr_rejected_total") == rej0 + 1
    grown = [dict(ls) for (n, ls), v in m3.items()
             if n == "omr_rejected_total" and v > m2.get((n, ls), 0)]
    assert len(grown) == 1 and "component" in grown[0] and "reason" in grown[0], grown
    assert "signature" in grown[0]["reason"], grown
    assert metric(m3, "omr_messages_ingested_total", channel="sms", outcome="stored") == stored0 + 1

    # HTTP and redis series.
    assert metric(m3, "omr_http_requests_total", code="200") >= 2
    assert metric(m3, "omr_http_requests_total", code="401") >= 1
    assert metric(m3, "omr_redis_up") == 1
    assert metric(m3, "omr_redis_command_duration_seconds_count") >= 1
    assert any(n == "omr_redis_command_duration_seconds_bucket" and dict(ls).get("le") == "+Inf"
               for n, ls in m3), "histogram lacks the +Inf bucket"
    assert any(n == "omr_http_requests_active" for n, _ in m3)
    assert any(n == "omr_redis_reconnects_total" for n, _ in m3)


@pytest.mark.timeout(60)
def test_readyz_follows_redis(daemon, redis_server, rdb):
    assert daemon.get("/readyz").status_code == 200
    redis_server.stop()

    def down():
        r = daemon.get("/readyz", timeout=2)
        return r if r.status_code == 503 else None
    r = wait_until(down, 5, what="/readyz 503 after redis stopped")
    assert_error(r, 503, "not_ready")
    assert daemon.get("/healthz").status_code == 200  # alive, just not ready
    assert metric(daemon.metrics(), "omr_redis_up") == 0
    r = daemon.post("shop", payload())
    assert_error(r, 503, "store_unavailable")
    assert r.headers.get("Retry-After") == "1", r.headers

    redis_server.start()
    wait_until(lambda: daemon.get("/readyz", timeout=2).status_code == 200, 5,
               what="/readyz 200 after redis restarted")
    m = daemon.metrics()
    assert metric(m, "omr_redis_up") == 1
    assert metric(m, "omr_redis_reconnects_total") >= 1
    assert_stored_ok(daemon.post("shop", payload()))
