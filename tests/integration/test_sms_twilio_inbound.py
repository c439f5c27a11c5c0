"""Twilio inbound webhook POST /v1/sms/twilio/{account}: X-Twilio-Signature
(computed by the official `twilio` npm package) over public_url + path +
sorted form params; TwiML answer only once stored; MessageSid dedup;
conversation per (customer number, business number)."""

import urllib.parse

from conftest import RFC3339_MS_RE, ULID_RE, assert_error, assert_one_work_item, conv_log, store_snapshot
from sms_helpers import (TWILIO, all_queue_messages, assert_twiml_ok, conv_key, post_twilio,
                         stored_one, twilio_params, twilio_sid)


def test_signed_webhook_is_stored_with_the_contract_fields(sms_daemon, rdb):
    p = twilio_params(
        From="+14155550123", Body="My parcel never arrived", NumMedia="2",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME2",
        MediaContentType1="application/pdf")
    r = post_twilio(sms_daemon, p)
    assert_twiml_ok(r)

    queue, fields, m = stored_one(rdb, p["MessageSid"])
    assert queue == "general"
    assert fields["channel"] == "sms" and fields["provider"] == "twilio:main", fields
    assert fields["kind"] == "new", fields
    assert m["channel"] == "sms"
    assert m["provider"] == "twilio:main"
    assert m["direction"] == "in"
    assert m["external_id"] == p["MessageSid"]
    assert m["customer"]["id"] == "+14155550123", m["customer"]
    assert m["customer"]["handle"] == "+14155550123", m["customer"]
    assert m["to"] == TWILIO["main"]["from"]
    assert m["text"] == "My parcel never arrived"
    assert [{"url": a.get("url"), "type": a.get("type")} for a in m["attachments"]] == [
        {"url": p["MediaUrl0"], "type": "image/jpeg"},
        {"url": p["MediaUrl1"], "type": "application/pdf"},
    ], m["attachments"]
    assert ULID_RE.match(m["id"]) and ULID_RE.match(m["conversation_id"]), m
    assert RFC3339_MS_RE.match(m["received_at"]), m

    conv = rdb.hgetall(conv_key(m["conversation_id"]))
    assert conv["channel"] == "sms" and conv["provider"] == "twilio:main", conv
    assert conv["customer_id"] == "+14155550123", conv
    assert int(conv["message_count"]) == 1, conv
    assert rdb.xlen(conv_key(m["conversation_id"]) + ":log") == 1
    # Opened, then queued; whether a first message also emits
    # message.received is not specified.
    types = [f["type"] for _, f in rdb.xrange("omr:events")]
    assert [t for t in types if t != "message.received"] == \
        ["conversation.opened", "conversation.queued"], types
    assert types.count("message.received") <= 1, types


def test_form_encoding_and_unicode_body_route_by_keyword(sms_daemon, rdb):
    # Spaces arrive as '+', UTF-8 percent-encoded; the signature covers the
    # decoded values; "hoàn tiền" routes to billing.
    p = twilio_params(Body="Tôi muốn hoàn tiền & đổi hàng = 100% 🙂")
    raw = urllib.parse.urlencode(p).encode()
    assert b"+" in raw and b"%C3%B4" in raw
    assert_twiml_ok(post_twilio(sms_daemon, p))
    queue, fields, m = stored_one(rdb, p["MessageSid"])
    assert m["text"] == p["Body"]
    assert queue == "billing" and fields["priority"] == "high", (queue, fields)


def test_one_changed_byte_in_the_body_is_rejected(sms_daemon, rdb):
    snap = store_snapshot(rdb)
    p = twilio_params(Body="pay 10 dollars")
    raw = urllib.parse.urlencode(p).encode()
    tampered = raw.replace(b"pay+10+dollars", b"pay+90+dollars")
    assert tampered != raw and len(tampered) == len(raw)
    r = post_twilio(sms_daemon, p, body=tampered)
    assert_error(r, 401, "bad_signature")
    assert store_snapshot(rdb) == snap


def test_signature_for_another_url_is_rejected(sms_daemon, rdb):
    snap = store_snapshot(rdb)
    p = twilio_params()
    # What a daemon that signs its own listen address would accept.
    r = post_twilio(sms_daemon, p, sign_url=sms_daemon.url("/v1/sms/twilio/main"))
    assert_error(r, 401, "bad_signature")
    # Another account's path.
    r = post_twilio(sms_daemon, p, sign_url=TWILIO["main"]["public_url"] + "/v1/sms/twilio/alt")
    assert_error(r, 401, "bad_signature")
    # http instead of https.
    r = post_twilio(sms_daemon, p, sign_url="http://support.example.com/v1/sms/twilio/main")
    assert_error(r, 401, "bad_signature")
    # Right URL, wrong token (the alt account's).
    r = post_twilio(sms_daemon, p, token=TWILIO["alt"]["auth_token"])
    assert_error(r, 401, "bad_signature")
    assert store_snapshot(rdb) == snap


def test_missing_signature_header_is_rejected(sms_daemon, rdb):
    snap = store_snapshot(rdb)
    r = post_twilio(sms_daemon, twilio_params(), sign=False)
    assert_error(r, 401, "missing_signature")
    assert store_snapshot(rdb) == snap


def test_garbage_signature_header_is_rejected(sms_daemon, rdb):
    snap = store_snapshot(rdb)
    r = post_twilio(sms_daemon, twilio_params(), sign=False,
                    headers={"X-Twilio-Signature": "not base64 at all!"})
    assert_error(r, 401, "bad_signature")
    assert store_snapshot(rdb) == snap


def test_query_string_is_part_of_the_signed_url(sms_daemon, rdb):
    p = twilio_params()
    r = post_twilio(sms_daemon, p, query="src=webhook&x=1")
    assert_twiml_ok(r)
    stored_one(rdb, p["MessageSid"])
    # The same params signed without the query string do not match.
    p2 = twilio_params()
    r = post_twilio(sms_daemon, p2, query="src=webhook&x=1",
                    sign_url=TWILIO["main"]["public_url"] + "/v1/sms/twilio/main")
    assert_error(r, 401, "bad_signature")


def test_public_url_with_port_and_prefix(sms_daemon, rdb):
    # alt: public_url https://sms.example.net:8443/omr -> signed URL
    # https://sms.example.net:8443/omr/v1/sms/twilio/alt
    p = twilio_params(account="alt")
    assert_twiml_ok(post_twilio(sms_daemon, p, account="alt"))
    _, fields, m = stored_one(rdb, p["MessageSid"])
    assert m["provider"] == "twilio:alt" and fields["provider"] == "twilio:alt"
    # Signed without the prefix: refused.
    p2 = twilio_params(account="alt")
    r = post_twilio(sms_daemon, p2, account="alt",
                    sign_url="https://sms.example.net:8443/v1/sms/twilio/alt")
    assert_error(r, 401, "bad_signature")


def test_replayed_message_sid_is_acknowledged_and_stored_once(sms_daemon, rdb):
    p = twilio_params()
    assert_twiml_ok(post_twilio(sms_daemon, p))
    snap = store_snapshot(rdb)
    for _ in range(2):
        assert_twiml_ok(post_twilio(sms_daemon, p))
    # A retry with another body is still the same Twilio message.
    assert_twiml_ok(post_twilio(sms_daemon, dict(p, Body="edited")))
    assert store_snapshot(rdb) == snap
    _, _, m = stored_one(rdb, p["MessageSid"])
    assert m["text"] == p["Body"]


def test_threading_by_customer_and_business_number(sms_daemon, rdb):
    a1 = twilio_params(From="+14155550111", To="+15005550006", Body="first")
    a2 = twilio_params(From="+14155550111", To="+15005550006", Body="second")
    b = twilio_params(From="+14155550111", To="+15005550099", Body="to another number")
    c = twilio_params(From="+14155550222", To="+15005550006", Body="another customer")
    for p in (a1, a2, b, c):
        assert_twiml_ok(post_twilio(sms_daemon, p))
    conv = {k: stored_one(rdb, p["MessageSid"])[2]["conversation_id"]
            for k, p in (("a1", a1), ("a2", a2), ("b", b), ("c", c))}
    assert conv["a1"] == conv["a2"], conv
    assert conv["b"] != conv["a1"], conv
    assert conv["c"] != conv["a1"] and conv["c"] != conv["b"], conv
    # a2 is a follow-up: in a1's conversation log, not in the queue, which
    # holds one work item per conversation.
    assert stored_one(rdb, a1["MessageSid"])[1]["kind"] == "new"
    assert stored_one(rdb, a2["MessageSid"])[1] is None
    assert [m["external_id"] for _, _, m in conv_log(rdb, conv["a1"])] == \
        [a1["MessageSid"], a2["MessageSid"]]
    for k in ("a1", "b", "c"):
        assert_one_work_item(rdb, conv[k], "general")
    assert len(all_queue_messages(rdb)) == 3, all_queue_messages(rdb)
    assert int(rdb.hget(conv_key(conv["a1"]), "message_count")) == 2


def test_unknown_account_is_404(sms_daemon, rdb):
    snap = store_snapshot(rdb)
    p = twilio_params()
    r = post_twilio(sms_daemon, p, account="nosuch",
                    sign_url=TWILIO["main"]["public_url"] + "/v1/sms/twilio/nosuch")
    assert_error(r, 404, "unknown_account")
    assert store_snapshot(rdb) == snap


def test_account_sid_in_body_is_covered_by_the_signature_only(sms_daemon, rdb):
    # The contract stores a validly signed message even if AccountSid differs.
    p = twilio_params(AccountSid="AC" + "9" * 32, MessageSid=twilio_sid())
    assert_twiml_ok(post_twilio(sms_daemon, p))
    stored_one(rdb, p["MessageSid"])


def test_mms_without_text_is_stored_with_its_attachment(sms_daemon, rdb):
    p = twilio_params(Body="", NumMedia="1", MediaContentType0="image/png",
                      MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM9/Media/ME9")
    assert_twiml_ok(post_twilio(sms_daemon, p))
    _, _, m = stored_one(rdb, p["MessageSid"])
    assert m.get("text", "") == ""
    assert [(a.get("url"), a.get("type")) for a in m["attachments"]] == [(p["MediaUrl0"], "image/png")]


def test_ingest_metrics_count_sms(sms_daemon, rdb):
    from conftest import metric
    before = metric(sms_daemon.metrics(), "omr_messages_ingested_total", channel="sms", outcome="stored")
    p = twilio_params()
    assert_twiml_ok(post_twilio(sms_daemon, p))
    assert_twiml_ok(post_twilio(sms_daemon, p))
    m = sms_daemon.metrics()
    assert metric(m, "omr_messages_ingested_total", channel="sms", outcome="stored") == before + 1
    assert metric(m, "omr_messages_ingested_total", channel="sms", outcome="duplicate") >= 1


def test_get_is_405(sms_daemon):
    import requests
    r = requests.get(sms_daemon.url("/v1/sms/twilio/main"), timeout=5)
    assert_error(r, 405, "method_not_allowed")
    r = requests.get(sms_daemon.url("/v1/sms/twilio/main/status"), timeout=5)
    assert_error(r, 405, "method_not_allowed")
