"""Each inbound message carries the language CLD2 detected (BCP 47 tag,
share, reliability), and rules can route on it."""

from conftest import assert_stored_ok, payload, queue_entries


def _with_language_rule(make_config):
    cfg = make_config()
    cfg["routing"]["rules"].insert(0, {"name": "thai", "language": ["th"], "queue": "thai",
                                       "priority": "high"})
    return cfg


def test_language_is_detected_and_routes(start_daemon, make_config, rdb):
    d = start_daemon(_with_language_rule(make_config))
    thai = "สวัสดีครับ ผมยังไม่ได้รับสินค้าที่สั่งไปเมื่อวันจันทร์"
    r = assert_stored_ok(d.post("shop", payload(text=thai)), queue="thai")
    ((_, fields, msg),) = queue_entries(rdb, "thai")
    assert queue_entries(rdb, "thai", band="high") == [(_, fields, msg)]
    assert fields["priority"] == "high"
    assert msg["id"] == r["message_id"]
    # The work item and the conversation carry the (reliable) language.
    assert fields["language"] == "th", fields
    assert rdb.hget(f"omr:conv:{{{r['conversation_id']}}}", "language") == "th"
    assert msg["language"]["tag"] == "th" and msg["language"]["reliable"] is True, msg
    assert msg["language"]["percent"] > 50, msg
    assert rdb.hget(f"omr:conv:{{{r['conversation_id']}}}", "rule") == "thai"

    turkish = "Merhaba, siparişim hâlâ gelmedi, kargo takip numarası çalışmıyor"
    assert_stored_ok(d.post("shop", payload(text=turkish)))
    tr = [m for _, _, m in queue_entries(rdb) if m["text"] == turkish]
    assert len(tr) == 1 and tr[0]["language"]["tag"] == "tr", tr


def test_text_without_language_is_und(daemon, rdb):
    assert_stored_ok(daemon.post("shop", payload(text="12345 !!!")))
    ((_, fields, msg),) = queue_entries(rdb)
    assert msg["language"]["tag"] == "und" or msg["language"]["reliable"] is False, msg
    # No reliable language: agents are asked for none.
    assert fields["language"] == "und", fields
