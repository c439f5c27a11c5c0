"""A provider retry (same adapter + external_id) is acknowledged with the
first ids and stores nothing new — also when the retries race."""

import threading

import requests

from conftest import assert_stored_ok, payload, queue_entries, store_snapshot, uid, waiting


def test_second_post_is_a_duplicate_with_the_same_ids(daemon, rdb):
    p = payload(external_id=uid("dup"))
    first = assert_stored_ok(daemon.post("shop", p))
    snap = store_snapshot(rdb)

    r = daemon.post("shop", p)
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["duplicate"] is True, second
    assert second["conversation_id"] == first["conversation_id"]
    assert second["message_id"] == first["message_id"]
    assert second["queue"] == first["queue"]

    # A retry with a changed body is still the same provider message.
    p2 = dict(p, text="edited text")
    r = daemon.post("shop", p2)
    assert r.status_code == 200 and r.json()["duplicate"] is True, r.text
    assert r.json()["message_id"] == first["message_id"]

    assert store_snapshot(rdb) == snap
    entries = queue_entries(rdb)
    assert [m["external_id"] for _, _, m in entries] == [p["external_id"]]
    assert waiting(rdb) == [first["conversation_id"]]
    conv = rdb.hgetall(f"omr:conv:{{{first['conversation_id']}}}")
    assert int(conv["message_count"]) == 1, conv
    assert rdb.xlen(f"omr:conv:{{{first['conversation_id']}}}:log") == 1


def test_same_external_id_on_another_adapter_is_not_a_duplicate(daemon, rdb):
    ext = uid("dup")
    a = assert_stored_ok(daemon.post("shop", payload(external_id=ext)))
    b = assert_stored_ok(daemon.post("partner", payload(external_id=ext)), queue="partner")
    assert a["message_id"] != b["message_id"]
    assert rdb.exists(f"omr:dedup:api:shop:{ext}") and rdb.exists(f"omr:dedup:api:partner:{ext}")


def test_concurrent_duplicates_store_exactly_one(daemon, rdb):
    p = payload(external_id=uid("race"))
    n = 10
    barrier = threading.Barrier(n)
    results = [None] * n

    def post(i):
        barrier.wait(5)
        try:
            results[i] = daemon.post("shop", p, session=requests.Session(), timeout=10)
        except Exception as e:  # noqa: BLE001 - asserted below
            results[i] = e

    threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads), "a concurrent post hung"

    bodies = []
    for r in results:
        assert isinstance(r, requests.Response), f"post failed: {r!r}"
        assert r.status_code == 200, r.text
        bodies.append(r.json())
    assert sum(1 for b in bodies if b["duplicate"] is False) == 1, bodies
    assert len({(b["conversation_id"], b["message_id"]) for b in bodies}) == 1, bodies

    conv = bodies[0]["conversation_id"]
    entries = queue_entries(rdb)
    assert len(entries) == 1, entries
    assert entries[0][2]["external_id"] == p["external_id"]
    assert entries[0][1]["conversation_id"] == conv
    assert waiting(rdb) == [conv]
    assert rdb.xlen(f"omr:conv:{{{conv}}}:log") == 1
    events = [f for _, f in rdb.xrange("omr:events")]
    # All about this one message: its conversation opened and was queued
    # once (conversation.queued names no message).
    assert events and all(f["conversation_id"] == conv for f in events), events
    assert all(f.get("message_id", bodies[0]["message_id"]) == bodies[0]["message_id"]
               for f in events), events
    types = [f["type"] for f in events]
    assert types.count("conversation.opened") == 1, events
    assert types.count("conversation.queued") == 1, events
    assert types.count("message.received") <= 1, events
    assert set(types) <= {"conversation.opened", "conversation.queued", "message.received"}, events
