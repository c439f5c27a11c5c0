"""The store script checks every key it may write before the first write:
a key of the wrong type (an operator's typo, another tool's data) makes the
webhook fail with 503 and leaves nothing half-written, so the provider's
retry — once the key is fixed — stores the message exactly once. Also: a
returning customer's message carries the priority its rule gave it."""

import json

import requests

from conftest import SECRETS, body_bytes, payload, signed_headers


def post(d, p, adapter="shop"):
    raw = body_bytes(p)
    return requests.post(d.url(f"/v1/inbound/{adapter}"), data=raw,
                         headers=signed_headers(SECRETS[adapter], raw), timeout=5)


def keys(rdb):
    return sorted(k for k in rdb.keys("omr:*") if not k.startswith("omr:queue:")
                  and k not in ("omr:agents", "omr:queues"))


def test_wrong_type_band_stream_writes_nothing(rdb, make_config, start_daemon):
    d = start_daemon(make_config())
    before = keys(rdb)
    events_before = rdb.xlen("omr:events") if rdb.exists("omr:events") else 0
    rdb.delete("omr:queue:general:normal")
    rdb.set("omr:queue:general:normal", "not a stream")
    p = payload(text="a plain question about delivery times")

    r = post(d, p)
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "store_unavailable"
    assert keys(rdb) == before, "a refused write left keys behind"
    assert (rdb.xlen("omr:events") if rdb.exists("omr:events") else 0) == events_before
    assert rdb.zcard("omr:queue:general:waiting") == 0

    # Fixed: the provider's retry is stored once, as a new conversation
    # with its work item.
    rdb.delete("omr:queue:general:normal")
    r = post(d, p)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["new_conversation"] is True
    conv = rdb.hgetall(f"omr:conv:{{{body['conversation_id']}}}")
    assert conv["message_count"] == "1"
    assert conv["work_key"] == "omr:queue:general:normal"
    assert rdb.xlen(f"omr:conv:{{{body['conversation_id']}}}:log") == 1
    assert rdb.xlen("omr:queue:general:normal") == 1


def test_wrong_type_agent_inbox_refuses_follow_up(rdb, make_config, start_daemon):
    d = start_daemon(make_config())
    cust = {"id": "cust-inbox", "name": "Ana", "handle": "+15550002222"}
    first = post(d, payload(from_=cust, text="first message about an order"))
    assert first.status_code == 200
    conv_id = first.json()["conversation_id"]
    ck = f"omr:conv:{{{conv_id}}}"
    rdb.hset(ck, mapping={"status": "assigned", "agent_id": "ghost"})
    rdb.set("omr:agent:ghost:inbox", "oops")
    log_len = rdb.xlen(ck + ":log")

    r = post(d, payload(from_=cust, text="second message"))
    assert r.status_code == 503, r.text
    assert rdb.xlen(ck + ":log") == log_len
    assert rdb.hget(ck, "message_count") == "1"


def test_returning_customer_message_has_the_returning_rule_priority(
        rdb, make_config, start_daemon):
    cfg = make_config()
    cfg["routing"]["rules"].insert(0, {"name": "regulars", "returning": True,
                                       "queue": "regulars", "priority": "high"})
    d = start_daemon(cfg)
    cust = {"id": "cust-returning", "name": "Ana", "handle": "+15550003333"}
    first = post(d, payload(from_=cust, thread="t1", text="my first question"))
    assert first.status_code == 200
    second = post(d, payload(from_=cust, thread="t2", text="another topic entirely"))
    assert second.status_code == 200
    b = second.json()
    assert b["new_conversation"] is True and b["queue"] == "regulars"
    conv = rdb.hgetall(f"omr:conv:{{{b['conversation_id']}}}")
    assert conv["priority"] == "high" and conv["returning"] == "1"
    _, fields = rdb.xrange(f"omr:conv:{{{b['conversation_id']}}}:log")[0]
    assert json.loads(fields["message"])["priority"] == "high"
    _, entry = rdb.xrange("omr:queue:regulars:high")[0]
    assert json.loads(entry["message"])["priority"] == "high"
