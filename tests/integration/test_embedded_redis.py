"""Without redis.url the daemon runs its own redis-server on a unix socket
in redis.embedded_dir, and stops it when it exits."""

import subprocess
import time

import pytest
import redis as redis_py

from conftest import (assert_stored_ok, band_key, base_config, children_of, cmdline, free_port,
                      payload, proc_state, queue_entries, wait_until)


def _redis_descendants(pid):
    out, todo = [], [pid]
    while todo:
        for c in children_of(todo.pop()):
            todo.append(c)
            if "redis" in cmdline(c):
                out.append(c)
    return out


def _pgrep(pattern):
    r = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, timeout=5)
    return [int(x) for x in r.stdout.split()]


def _gone(pid):
    return proc_state(pid) in (None, "Z", "X")


@pytest.mark.timeout(60)
def test_embedded_redis_stores_and_stops(start_daemon, secrets_dir, tmp_path):
    emb = tmp_path / "emb"
    emb.mkdir()
    cfg = base_config(None, secrets_dir, free_port())
    cfg["redis"]["embedded_dir"] = str(emb)
    t0 = time.monotonic()
    d = start_daemon(cfg, ready_timeout=5)
    assert time.monotonic() - t0 <= 5.5

    kids = _redis_descendants(d.pid)
    by_dir = _pgrep(str(emb))
    assert kids or by_dir, "no redis-server process found for the embedded mode"

    j = assert_stored_ok(d.post("shop", payload(text="embedded hello")))
    socks = sorted(emb.glob("*.sock"))
    assert socks, f"no unix socket in {emb}: {sorted(p.name for p in emb.iterdir())}"
    c = redis_py.Redis(unix_socket_path=str(socks[0]), decode_responses=True, socket_timeout=5)
    entries = queue_entries(c, "general")
    assert [m["id"] for _, _, m in entries] == [j["message_id"]], entries
    assert c.hgetall(f"omr:conv:{{{j['conversation_id']}}}")["queue"] == "general"
    got = c.xreadgroup("agents", "a1", {band_key("general", "normal"): ">"}, count=5)
    assert got and len(got[0][1]) == 1
    c.close()

    rc, took = d.terminate(timeout=15)
    assert rc == 0, f"exit code {rc}"
    pids = set(kids) | set(by_dir)
    wait_until(lambda: all(_gone(p) for p in pids), 5,
               what=f"embedded redis-server {sorted(pids)} to be gone after the daemon exited")
    assert not _pgrep(str(emb)), f"processes still mention {emb}: {_pgrep(str(emb))}"
    with pytest.raises(redis_py.exceptions.ConnectionError):
        redis_py.Redis(unix_socket_path=str(socks[0]), socket_timeout=2).ping()

