"""SIGTERM stops intake but lets in-flight requests finish (and be stored)
within http.drain_timeout, then the daemon exits 0."""

import signal
import threading
import time

import pytest
import requests

from conftest import assert_stored_ok, conv_log, payload, queue_entries, wait_until


@pytest.mark.timeout(60)
def test_sigterm_drains_in_flight_post(start_daemon, make_config, rdb):
    cfg = make_config()
    cfg["redis"]["command_timeout"] = "5s"
    cfg["http"]["drain_timeout"] = "5s"
    d = start_daemon(cfg)
    assert_stored_ok(d.post("shop", payload()))  # warm: queue, group and script exist

    p = payload(text="in flight during shutdown")
    result = {}

    def post():
        try:
            result["resp"] = d.post("shop", p, timeout=15)
        except Exception as e:  # noqa: BLE001
            result["error"] = e
        result["t"] = time.monotonic()

    # Writes stall for 1.5 s: the post is in flight when SIGTERM arrives.
    assert rdb.execute_command("CLIENT", "PAUSE", 1500, "WRITE") in (True, "OK", b"OK")
    t_pause = time.monotonic()
    th = threading.Thread(target=post, daemon=True)
    th.start()
    time.sleep(0.3)
    assert th.is_alive() and "resp" not in result, f"post finished before SIGTERM: {result}"
    t_term = time.monotonic()
    d.signal(signal.SIGTERM)

    # A new connection after SIGTERM: refused, or answered 503.
    time.sleep(0.2)
    assert time.monotonic() - t_pause < 1.3, "test too slow to probe during the pause"
    try:
        r = requests.get(d.url("/healthz"), timeout=3)
        assert r.status_code == 503, f"new request after SIGTERM answered {r.status_code}: {r.text!r}"
    except requests.exceptions.ConnectionError as e:
        assert "refused" in str(e).lower(), f"new connection after SIGTERM neither refused nor answered 503: {e!r}"
    except requests.RequestException as e:
        pytest.fail(f"new connection after SIGTERM neither refused nor answered 503: {e!r}")

    th.join(15)
    assert not th.is_alive(), "in-flight post never answered"
    assert "error" not in result, f"in-flight post failed: {result.get('error')!r}"
    j = assert_stored_ok(result["resp"])
    assert result["t"] - t_pause >= 1.0, "post answered before redis writes resumed: was it really in flight?"

    try:
        d.proc.wait(5 + 1.5)
    except Exception:  # noqa: BLE001
        pytest.fail(f"daemon still running {time.monotonic() - t_term:.1f}s after SIGTERM (drain_timeout 5s)")
    assert d.proc.returncode == 0, f"exit code {d.proc.returncode}"
    assert time.monotonic() - t_term <= 5 + 1.0

    wait_until(lambda: any(m["external_id"] == p["external_id"] for _, _, m in queue_entries(rdb)), 3,
               what="the drained message in queue general")
    assert [m["id"] for _, _, m in queue_entries(rdb) if m["external_id"] == p["external_id"]] == [j["message_id"]]
    assert [m["id"] for _, _, m in conv_log(rdb, j["conversation_id"])] == [j["message_id"]]


def test_sigterm_when_idle_exits_promptly(daemon):
    rc, took = daemon.terminate(timeout=15)
    assert rc == 0
    # Nothing in flight: the drain bound (10 s here) is the most it may take.
    assert took <= daemon.drain_timeout_s + 0.5, f"idle daemon took {took:.2f}s to exit"
    with pytest.raises(requests.ConnectionError):
        requests.get(daemon.url("/healthz"), timeout=2)


def test_sigint_also_exits_zero(daemon):
    daemon.signal(signal.SIGINT)
    daemon.proc.wait(10)
    assert daemon.proc.returncode == 0
