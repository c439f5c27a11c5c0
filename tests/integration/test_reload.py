"""SIGHUP reloads routing in place (keep-alive connections survive); an
invalid config or one changing http/redis settings is refused and the old
one keeps working."""

import copy
import signal

import pytest
import requests

from conftest import assert_stored_ok, free_port, payload, queue_entries, write_config


def _pool(session, d):
    return session.get_adapter(d.url("/")).poolmanager.connection_from_url(d.url("/"))


def _with_invoice_rule(cfg):
    new = copy.deepcopy(cfg)
    new["routing"]["rules"].insert(0, {"name": "invoices", "keywords": ["invoice"], "queue": "invoices",
                                       "priority": "high"})
    return new


def test_sighup_applies_new_rule_without_dropping_keepalive(start_daemon, make_config, rdb):
    cfg = make_config()
    d = start_daemon(cfg)
    s = requests.Session()
    assert_stored_ok(d.post("shop", payload(text="my invoice is wrong"), session=s), queue="general")
    pool = _pool(s, d)
    assert pool.num_connections == 1

    write_config(d.cfg_path, _with_invoice_rule(cfg))
    at = d.log_offset()
    d.signal(signal.SIGHUP)
    d.wait_log(r"reloaded", since=at, timeout=5)
    assert "reload refused" not in d.log_text()[at:]

    j = assert_stored_ok(d.post("shop", payload(text="Another INVOICE question"), session=s), queue="invoices")
    [(_, f, m)] = queue_entries(rdb, "invoices")
    assert m["id"] == j["message_id"] and f["priority"] == "high"
    assert queue_entries(rdb, "invoices", band="high") == [(_, f, m)]
    # Old rules still there, and the same TCP connection served everything.
    assert_stored_ok(d.post("shop", payload(text="refund"), session=s), queue="billing")
    assert pool.num_connections == 1, "the keep-alive connection was dropped by the reload"
    assert pool.num_requests == 3
    assert d.alive()


def test_sighup_with_invalid_config_is_refused(start_daemon, make_config, rdb):
    cfg = make_config()
    d = start_daemon(cfg)
    bad = _with_invoice_rule(cfg)
    bad["routing"]["no_such_key"] = "x"
    write_config(d.cfg_path, bad)
    at = d.log_offset()
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload refused", since=at, timeout=5)

    assert d.alive()
    # Old rules keep working, the new one was not applied.
    assert_stored_ok(d.post("shop", payload(text="invoice please")), queue="general")
    assert_stored_ok(d.post("shop", payload(text="refund please")), queue="billing")
    assert d.get("/readyz").status_code == 200

    # A later valid reload still works.
    write_config(d.cfg_path, _with_invoice_rule(cfg))
    at = d.log_offset()
    d.signal(signal.SIGHUP)
    d.wait_log(r"reloaded", since=at, timeout=5)
    assert_stored_ok(d.post("shop", payload(text="invoice please")), queue="invoices")


@pytest.mark.parametrize("change", ["http.listen", "redis.prefix"])
def test_sighup_changing_restart_only_settings_is_refused(start_daemon, make_config, rdb, change):
    cfg = make_config()
    d = start_daemon(cfg)
    new = _with_invoice_rule(cfg)
    if change == "http.listen":
        new["http"]["listen"] = f"127.0.0.1:{free_port()}"
    else:
        new["redis"]["prefix"] = "other:"
    write_config(d.cfg_path, new)
    at = d.log_offset()
    d.signal(signal.SIGHUP)
    line = d.wait_log(r"reload refused", since=at, timeout=5)
    assert d.alive()
    # Old config stays whole: old port, old prefix, old rules.
    j = assert_stored_ok(d.post("shop", payload(text="invoice please")), queue="general")
    assert rdb.exists(f"omr:conv:{{{j['conversation_id']}}}")
    assert not list(rdb.scan_iter(match="other:*"))
    if change == "http.listen":
        port = int(new["http"]["listen"].rsplit(":", 1)[1])
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    assert line  # the refusal was logged
