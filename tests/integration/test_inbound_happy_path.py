"""A signed inbound post is stored, queued for agents and answered with ids."""

import json
import time
from datetime import datetime

from conftest import (RFC3339_MS_RE, SECRETS, ULID_RE, assert_stored_ok, band_key, payload,
                      queue_entries, uid, waiting)


def _full_payload():
    return payload(
        external_id=uid("happy"),
        channel="sms",
        from_={"id": uid("cust"), "name": "Ana Nguyễn", "handle": "+15550009001"},
        to="support",
        text="hello, my parcel is late",
        subject="Order 1234",
        thread="order-1234",
        attachments=[{"name": "a.png", "type": "image/png", "size": 123,
                      "url": "https://files.example/a.png"}],
        sent_at="2026-11-23T09:30:00Z",
        tags=["x", "y"],
        unknown_field={"is": "ignored"},
    )


def _ms(rfc3339):
    return int(datetime.strptime(rfc3339.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000) \
        if "." in rfc3339 else \
        int(datetime.strptime(rfc3339.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z").timestamp() * 1000)


def test_signed_post_is_stored_and_readable_by_agents(daemon, rdb):
    p = _full_payload()
    before_ms = int(time.time() * 1000)
    r = daemon.post("shop", p)
    after_ms = int(time.time() * 1000)
    j = assert_stored_ok(r, queue="general")
    assert j["new_conversation"] is True, j
    assert "json" in r.headers.get("Content-Type", ""), r.headers
    conv, mid = j["conversation_id"], j["message_id"]
    assert conv != mid

    # An agent reads it with the consumer group the daemon created, from the
    # queue's band for its priority.
    stream_key = band_key("general", "normal")
    got = rdb.xreadgroup("agents", "agent-1", {stream_key: ">"}, count=10, block=1000)
    assert got, f"XREADGROUP GROUP agents returned nothing on {stream_key}"
    [(stream, entries)] = got
    assert stream == stream_key
    assert len(entries) == 1, entries
    eid, f = entries[0]
    assert f["conversation_id"] == conv
    assert f["kind"] == "new"
    assert f["channel"] == "sms"
    assert f["provider"] == "api:shop"
    assert f["priority"] == "normal"
    assert before_ms - 1000 <= int(f["enqueued_at"]) <= after_ms + 1000, f
    # The other bands are empty, and the conversation waits for an agent.
    assert [e for e in queue_entries(rdb) if e[0] != eid] == []
    assert waiting(rdb) == [conv]

    m = json.loads(f["message"])
    assert m["conversation_id"] == conv
    assert m["id"] == mid
    assert m["direction"] == "in"
    assert m["channel"] == "sms"
    assert m["provider"] == "api:shop"
    assert m["external_id"] == p["external_id"]
    assert m["thread_key"] == "order-1234"
    assert m["customer"] == {"id": p["from"]["id"], "name": "Ana Nguyễn", "handle": "+15550009001"}
    assert m["to"] == "support"
    assert m["subject"] == "Order 1234"
    assert m["text"] == "hello, my parcel is late"
    assert len(m["attachments"]) == 1
    att = m["attachments"][0]
    assert (att["name"], att["type"], att["size"], att["url"]) == \
        ("a.png", "image/png", 123, "https://files.example/a.png")
    assert RFC3339_MS_RE.match(m["received_at"]), m["received_at"]
    assert before_ms - 1000 <= _ms(m["received_at"]) <= after_ms + 1000, (m["received_at"], before_ms, after_ms)
    assert _ms(m["sent_at"]) == _ms("2026-11-23T09:30:00Z"), m["sent_at"]
    assert m["priority"] == "normal"
    assert m["tags"] == ["x", "y"]
    assert "unknown_field" not in m

    # Conversation hash.
    h = rdb.hgetall(f"omr:conv:{{{conv}}}")
    assert h, f"HGETALL omr:conv:{{{conv}}} is empty; keys: {sorted(rdb.keys('omr:*'))}"
    assert h["id"] == conv
    assert h["channel"] == "sms"
    assert h["provider"] == "api:shop"
    assert h["customer_id"] == p["from"]["id"]
    assert h["customer_name"] == "Ana Nguyễn"
    assert h["customer_handle"] == "+15550009001"
    assert h["status"] == "open"
    assert h["queue"] == "general"
    assert (h["work_key"], h["work_id"]) == (stream_key, eid), h
    assert h["priority"] == "normal"
    assert h.get("rule", None) == "", f"default route must have rule '' : {h!r}"
    assert int(h["message_count"]) == 1
    for k in ("created_at", "updated_at", "last_inbound_at"):
        assert h.get(k), f"conv hash lacks {k}: {h!r}"
    assert before_ms - 1000 <= int(h["last_inbound_at"]) <= after_ms + 1000, h

    # Conversation log.
    log = rdb.xrange(f"omr:conv:{{{conv}}}:log")
    assert len(log) == 1, log
    lf = log[0][1]
    assert lf["message_id"] == mid
    assert lf["direction"] == "in"
    lm = json.loads(lf["message"])
    assert lm["id"] == mid and lm["external_id"] == p["external_id"] and lm["text"] == p["text"]

    # Events: the conversation opened, then entered its queue. Whether a
    # conversation's first message also gets "message.received" is not
    # specified, so require those two in order and nothing foreign.
    ev = [f for _, f in rdb.xrange("omr:events") if f.get("conversation_id") == conv]
    types = [f["type"] for f in ev]
    assert [t for t in types if t != "message.received"] == \
        ["conversation.opened", "conversation.queued"], ev
    assert set(types) <= {"conversation.opened", "conversation.queued", "message.received"}, ev
    for f in ev:
        assert f.get("message_id", mid) == mid, f
        assert f["queue"] == "general"
        assert f["channel"] == "sms"
        assert f["priority"] == "normal"
        assert before_ms - 1000 <= int(f["at"]) <= after_ms + 1000, f
    [opened] = [f for f in ev if f["type"] == "conversation.opened"]
    assert opened["message_id"] == mid, opened
    [queued] = [f for f in ev if f["type"] == "conversation.queued"]
    assert (queued["kind"], queued["mode"]) == ("new", "pull"), queued

    # Dedup key with a TTL.
    key = f"omr:dedup:api:shop:{p['external_id']}"
    assert rdb.exists(key), f"{key} missing; keys: {sorted(rdb.keys('omr:dedup:*'))}"
    ttl = rdb.ttl(key)
    assert 0 < ttl <= 7 * 86400, f"dedup TTL {ttl}"

    # Acknowledge works for the agent (the group is a real consumer group).
    assert rdb.xack(stream_key, "agents", eid) == 1


def test_ids_are_ulids_and_sort_in_time_order(daemon, rdb):
    ids = []
    for i in range(5):
        r = daemon.post("shop", payload(text=f"message number {i}"))
        j = assert_stored_ok(r)
        ids.append((j["conversation_id"], j["message_id"]))
        time.sleep(0.002)  # distinct milliseconds, not an assertion of timing
    for conv, mid in ids:
        assert ULID_RE.match(conv) and ULID_RE.match(mid)
    mids = [m for _, m in ids]
    convs = [c for c, _ in ids]
    assert mids == sorted(mids) and len(set(mids)) == 5, mids
    assert convs == sorted(convs) and len(set(convs)) == 5, convs
    # ...and the stream order agrees with the id order (each opened a
    # conversation: one work item each).
    entries = queue_entries(rdb)
    assert [m["id"] for _, _, m in entries] == mids
    assert [f["conversation_id"] for _, f, _ in entries] == convs
    assert waiting(rdb) == convs


def test_text_may_be_omitted_when_attachments_are_given(daemon, rdb):
    p = payload(attachments=[{"name": "scan.pdf", "type": "application/pdf", "size": 10,
                              "url": "https://files.example/scan.pdf"}])
    del p["text"]
    j = assert_stored_ok(daemon.post("shop", p))
    [(_, f, m)] = queue_entries(rdb)
    assert m["id"] == j["message_id"] and f["conversation_id"] == j["conversation_id"]
    assert m["attachments"][0]["name"] == "scan.pdf"


def test_timestamped_signature_is_accepted(daemon, rdb):
    ts = int(time.time())
    j = assert_stored_ok(daemon.post("shop", payload(), ts=ts))
    assert [m["id"] for _, _, m in queue_entries(rdb)] == [j["message_id"]]


def test_secret_file_trailing_crlf_is_not_part_of_the_key(daemon, rdb):
    # partner.secret ends in \r\n; the partner rule routes to queue partner.
    j = assert_stored_ok(daemon.post("partner", payload(), secret=SECRETS["partner"]), queue="partner")
    assert [m["id"] for _, _, m in queue_entries(rdb, "partner")] == [j["message_id"]]


def test_redis_over_unix_socket_url(redis_factory, secrets_dir, start_daemon):
    from conftest import base_config, free_port
    srv = redis_factory("redis-unix", unixsocket=True)
    cfg = base_config(f"unix://{srv.unixsocket}?db=0", secrets_dir, free_port())
    d = start_daemon(cfg)
    j = assert_stored_ok(d.post("shop", payload()))
    c = srv.client()
    [(_, f, m)] = queue_entries(c, "general")
    assert m["id"] == j["message_id"] and f["conversation_id"] == j["conversation_id"]
