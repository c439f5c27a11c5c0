"""Twilio status callbacks POST /v1/sms/twilio/{account}/status: signed
like inbound webhooks (URL public_url + "/v1/sms/twilio/<account>/status"),
update the reply hash found by MessageSid and emit reply.status."""

from conftest import assert_error
from sms_helpers import (TWILIO, accepted_reply, assert_twiml_ok, events, get_reply, post_reply,
                         post_twilio, reply_key, twilio_conversation, wait_reply_hash)


def test_status_callback_updates_the_reply(sms_daemon, rdb, fake_provider):
    conv = twilio_conversation(sms_daemon, rdb)
    rid = accepted_reply(post_reply(sms_daemon, conv, "status please"))
    (req,) = fake_provider.wait_requests("twilio", 1, timeout=3)
    sid = req.answer_body["sid"]
    wait_reply_hash(rdb, conv, rid, "sent", timeout=3)

    cb = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": "delivered", "SmsStatus": "delivered",
          "AccountSid": TWILIO["main"]["account_sid"], "From": TWILIO["main"]["from"],
          "To": "+14155550100", "ApiVersion": "2010-04-01"}
    # Unsigned / signed for the inbound URL: refused, nothing changes.
    r = post_twilio(sms_daemon, cb, path="/v1/sms/twilio/main/status", sign=False)
    assert_error(r, 401, "missing_signature")
    r = post_twilio(sms_daemon, cb, path="/v1/sms/twilio/main/status",
                    sign_url=TWILIO["main"]["public_url"] + "/v1/sms/twilio/main")
    assert_error(r, 401, "bad_signature")
    assert rdb.hget(reply_key(conv, rid), "status") == "sent"

    assert_twiml_ok(post_twilio(sms_daemon, cb, path="/v1/sms/twilio/main/status"))
    h = wait_reply_hash(rdb, conv, rid, "delivered", timeout=2)
    assert h["provider_message_id"] == sid
    st = [e for e in events(rdb, "reply.status") if e.get("status") == "delivered"]
    assert len(st) == 1, events(rdb)
    assert get_reply(sms_daemon, conv, rid).json()["status"] == "delivered"


def test_status_callback_undelivered_and_unknown_sid(sms_daemon, rdb, fake_provider):
    conv = twilio_conversation(sms_daemon, rdb)
    rid = accepted_reply(post_reply(sms_daemon, conv, "x"))
    (req,) = fake_provider.wait_requests("twilio", 1, timeout=3)
    sid = req.answer_body["sid"]
    wait_reply_hash(rdb, conv, rid, "sent", timeout=3)
    cb = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003",
          "AccountSid": TWILIO["main"]["account_sid"]}
    assert_twiml_ok(post_twilio(sms_daemon, cb, path="/v1/sms/twilio/main/status"))
    wait_reply_hash(rdb, conv, rid, "undelivered", timeout=2)
    assert [e["status"] for e in events(rdb, "reply.status")] == ["undelivered"], events(rdb)

    n_events = len(events(rdb))
    cb = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered",
          "AccountSid": TWILIO["main"]["account_sid"]}
    assert_twiml_ok(post_twilio(sms_daemon, cb, path="/v1/sms/twilio/main/status"))
    assert len(events(rdb)) == n_events
    assert rdb.hget(reply_key(conv, rid), "status") == "undelivered"
