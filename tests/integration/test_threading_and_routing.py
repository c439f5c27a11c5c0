"""Messages thread into conversations by adapter + from.id + thread, and
conversations are routed by the ordered rules (first match wins)."""

import json

import pytest

from conftest import (BANDS, assert_one_work_item, assert_stored_ok, band_key, conv_log, payload,
                      queue_entries, uid, waiting)


def _conv(rdb, conv_id):
    return rdb.hgetall(f"omr:conv:{{{conv_id}}}")


# ---------------------------------------------------------------- threading


def test_same_sender_and_thread_is_the_same_conversation(daemon, rdb):
    sender = {"id": uid("cust"), "name": "Bo", "handle": "+15550002222"}
    a = assert_stored_ok(daemon.post("shop", payload(from_=sender, thread="t-1", text="first")))
    b = assert_stored_ok(daemon.post("shop", payload(from_=sender, thread="t-1", text="second")))
    assert a["new_conversation"] is True
    assert b["new_conversation"] is False, b
    assert b["conversation_id"] == a["conversation_id"]
    assert b["message_id"] != a["message_id"]

    # The follow-up lands in the conversation log, not in the queue: the
    # queue holds exactly one work item for the conversation (the first
    # message's).
    entries = queue_entries(rdb)
    assert len(entries) == 1, entries
    _, f, m = assert_one_work_item(rdb, a["conversation_id"], "general", kind="new", band="normal")
    assert m["id"] == a["message_id"] and m["text"] == "first", m
    assert waiting(rdb) == [a["conversation_id"]]

    h = _conv(rdb, a["conversation_id"])
    assert int(h["message_count"]) == 2, h
    assert h["status"] == "open", h
    log = conv_log(rdb, a["conversation_id"])
    assert [f["message_id"] for _, f, _ in log] == [a["message_id"], b["message_id"]]
    assert [m["text"] for _, _, m in log] == ["first", "second"]
    assert all(m["conversation_id"] == a["conversation_id"] for _, _, m in log)

    types = [(f["type"], f.get("message_id")) for _, f in rdb.xrange("omr:events")
             if f["conversation_id"] == a["conversation_id"]]
    assert ("conversation.opened", a["message_id"]) in types, types
    assert ("conversation.opened", b["message_id"]) not in types, types
    assert ("message.received", b["message_id"]) in types, types
    # Queued once, when it opened; the follow-up does not queue it again.
    assert [t for t, _ in types].count("conversation.queued") == 1, types


def test_no_thread_on_both_is_the_same_conversation(daemon, rdb):
    sender = {"id": uid("cust")}
    a = assert_stored_ok(daemon.post("shop", payload(from_=sender)))
    b = assert_stored_ok(daemon.post("shop", payload(from_=sender)))
    assert b["conversation_id"] == a["conversation_id"] and b["new_conversation"] is False


def test_different_thread_is_a_new_conversation(daemon, rdb):
    sender = {"id": uid("cust")}
    a = assert_stored_ok(daemon.post("shop", payload(from_=sender, thread="t-1")))
    b = assert_stored_ok(daemon.post("shop", payload(from_=sender, thread="t-2")))
    c = assert_stored_ok(daemon.post("shop", payload(from_=sender)))  # no thread
    assert len({a["conversation_id"], b["conversation_id"], c["conversation_id"]}) == 3
    assert b["new_conversation"] is True and c["new_conversation"] is True
    entries = queue_entries(rdb)
    assert [f["kind"] for _, f, _ in entries] == ["new", "new", "new"], entries
    assert [f["conversation_id"] for _, f, _ in entries] == \
        [a["conversation_id"], b["conversation_id"], c["conversation_id"]]
    assert waiting(rdb) == [a["conversation_id"], b["conversation_id"], c["conversation_id"]]


def test_other_sender_or_adapter_is_a_new_conversation(daemon, rdb):
    a = assert_stored_ok(daemon.post("shop", payload(from_={"id": "cust-same"}, thread="t")))
    b = assert_stored_ok(daemon.post("shop", payload(from_={"id": "cust-other"}, thread="t")))
    c = assert_stored_ok(daemon.post("partner", payload(from_={"id": "cust-same"}, thread="t")),
                         queue="partner")
    assert len({a["conversation_id"], b["conversation_id"], c["conversation_id"]}) == 3
    assert c["new_conversation"] is True


# ------------------------------------------------------------------ routing


@pytest.mark.parametrize("subject,text", [
    (None, "I want a refund please"),
    (None, "REFUND NOW"),
    ("Refund request", "see subject"),
    (None, "Tôi muốn HOÀN TIỀN cho đơn hàng"),
    (None, "tôi muốn hoàn tiền"),
    (None, "toi muon hoa\u0300n tie\u0302\u0300n"),   # decomposed accents (NFKC)
    (None, "ＲＥＦＵＮＤ please"),                       # full-width (NFKC)
], ids=["lower", "upper", "subject-only", "vietnamese-upper", "vietnamese-lower",
        "vietnamese-decomposed", "fullwidth"])
def test_keyword_rule_routes_to_billing_high(daemon, rdb, subject, text):
    p = payload(text=text)
    if subject is not None:
        p["subject"] = subject
    j = assert_stored_ok(daemon.post("shop", p), queue="billing")
    # In the high band of billing, and nowhere else.
    [(eid, f, m)] = queue_entries(rdb, "billing")
    assert queue_entries(rdb, "billing", band="high") == [(eid, f, m)]
    assert f["priority"] == "high" and m["priority"] == "high", f
    assert m["id"] == j["message_id"] and f["conversation_id"] == j["conversation_id"], (f, m)
    h = _conv(rdb, j["conversation_id"])
    assert (h["queue"], h["priority"], h["rule"]) == ("billing", "high", "refunds"), h
    assert queue_entries(rdb, "general") == [] and waiting(rdb, "general") == []
    assert waiting(rdb, "billing") == [j["conversation_id"]]
    # The group exists on the rule's queue too.
    got = rdb.xreadgroup("agents", "a1", {band_key("billing", "high"): ">"}, count=5)
    assert got and len(got[0][1]) == 1, got


def test_keyword_is_a_substring_not_a_word_match_but_needs_the_letters(daemon, rdb):
    a = assert_stored_ok(daemon.post("shop", payload(text="refunded yesterday?")), queue="billing")
    b = assert_stored_ok(daemon.post("shop", payload(text="re-fund is not it")), queue="general")
    assert a["conversation_id"] != b["conversation_id"]


@pytest.mark.parametrize("sender,channel,queue,priority", [
    ({"id": uid("c"), "handle": "+447700900123"}, "sms", "vip", "urgent"),     # handle glob
    ({"id": "+447700900555"}, "sms", "vip", "urgent"),                          # id glob
    ({"id": uid("c"), "handle": "+447700900123"}, "chat", "general", "normal"),  # channel condition fails
    ({"id": uid("c"), "handle": "+4478009001"}, "sms", "general", "normal"),     # glob does not match
], ids=["handle", "id", "other-channel", "no-glob-match"])
def test_sender_glob_rule(daemon, rdb, sender, channel, queue, priority):
    j = assert_stored_ok(daemon.post("shop", payload(from_=sender, channel=channel)), queue=queue)
    [(eid, f, m)] = queue_entries(rdb, queue)
    assert queue_entries(rdb, queue, band=priority) == [(eid, f, m)]
    assert f["priority"] == priority and m["priority"] == priority, (f, m)
    assert m["id"] == j["message_id"] and f["conversation_id"] == j["conversation_id"], (f, m)
    h = _conv(rdb, j["conversation_id"])
    assert (h["queue"], h["priority"]) == (queue, priority), h
    assert h["rule"] == ("vip" if queue == "vip" else ""), h


def test_adapter_rule(daemon, rdb):
    j = assert_stored_ok(daemon.post("partner", payload()), queue="partner")
    [(eid, f, m)] = queue_entries(rdb, "partner")
    assert f["provider"] == "api:partner" and m["provider"] == "api:partner"
    # The rule gives no priority: the default applies.
    assert f["priority"] == "normal", f
    assert queue_entries(rdb, "partner", band="normal") == [(eid, f, m)]
    h = _conv(rdb, j["conversation_id"])
    assert (h["queue"], h["rule"]) == ("partner", "partner"), h


def test_default_queue_and_priority(daemon, rdb):
    j = assert_stored_ok(daemon.post("shop", payload(text="where is my parcel")), queue="general")
    [(eid, f, m)] = queue_entries(rdb, "general")
    assert queue_entries(rdb, "general", band="normal") == [(eid, f, m)]
    assert f["priority"] == "normal" and m["priority"] == "normal"
    assert m["id"] == j["message_id"]
    h = _conv(rdb, j["conversation_id"])
    assert (h["queue"], h["priority"], h["rule"]) == ("general", "normal", ""), h


def test_first_matching_rule_wins(daemon, rdb):
    # Matches refunds (1st) and vip (2nd): refunds wins.
    p = payload(text="refund please", channel="sms", from_={"id": uid("c"), "handle": "+447700900999"})
    assert_stored_ok(daemon.post("shop", p), queue="billing")
    # Matches refunds (1st) and partner (3rd): refunds wins.
    assert_stored_ok(daemon.post("partner", payload(text="refund please")), queue="billing")


def test_default_queue_from_config(start_daemon, make_config, rdb):
    cfg = make_config()
    cfg["routing"]["default_queue"] = "triage"
    cfg["routing"]["default_priority"] = "low"
    d = start_daemon(cfg)
    j = assert_stored_ok(d.post("shop", payload(text="hello")), queue="triage")
    [(eid, f, m)] = queue_entries(rdb, "triage")
    assert queue_entries(rdb, "triage", band="low") == [(eid, f, m)]
    assert f["priority"] == "low" and json.loads(f["message"])["priority"] == "low"
    assert m["id"] == j["message_id"] and f["conversation_id"] == j["conversation_id"]
    # An undeclared queue is a pull queue.
    assert f["kind"] == "new" and waiting(rdb, "triage") == [j["conversation_id"]]
    assert not any(rdb.exists(band_key("general", b)) and rdb.xlen(band_key("general", b))
                   for b in BANDS)
