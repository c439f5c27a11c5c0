"""Twilio status callbacks POST /v1/sms/twilio/{account}/status: signed
like inbound webhooks (URL public_url + "/v1/sms/twilio/<account>/status"),
update the reply hash found by MessageSid and emit reply.status. Vonage
delivery receipts, GET/POST /v1/sms/vonage/{account}/status, do the same."""

import json
import time
import urllib.parse
import uuid

import requests

from conftest import assert_error
from sms_helpers import (TWILIO, accepted_reply, assert_twiml_ok, assert_vonage_ok, events,
                         get_reply, post_reply, post_twilio, reply_key, twilio_conversation,
                         vonage_conversation, vonage_signed, wait_reply_hash)


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


# ---------------------------------------------------------------- Vonage receipts


def _vonage_receipt(message_id, status, err_code="0", msisdn="14155550123"):
    return {
        "msisdn": msisdn, "to": "447700900000", "network-code": "23410",
        "messageId": message_id, "price": "0.03330000", "status": status,
        "scts": "2611231200", "err-code": err_code, "api-key": "abcd1234",
        "message-timestamp": "2026-11-23 12:00:00", "timestamp": str(int(time.time())),
        "nonce": uuid.uuid4().hex,
    }


def _post_receipt(daemon, params, how="json"):
    path = "/v1/sms/vonage/main/status"
    if how == "get":
        return requests.get(daemon.url(path + "?" + urllib.parse.urlencode(params)), timeout=10)
    return requests.post(daemon.url(path), data=json.dumps(params).encode(),
                         headers={"Content-Type": "application/json"}, timeout=10)


def test_vonage_delivery_receipt_updates_the_reply(sms_daemon, rdb, fake_provider):
    conv = vonage_conversation(sms_daemon, rdb)
    rid = accepted_reply(post_reply(sms_daemon, conv, "Your parcel left the depot"))
    (req,) = fake_provider.wait_requests("vonage", 1, timeout=3)
    mid = req.answer_body["messages"][0]["message-id"]
    wait_reply_hash(rdb, conv, rid, "sent", timeout=3)

    # Unsigned or forged receipts change nothing.
    r = _post_receipt(sms_daemon, _vonage_receipt(mid, "failed"))
    assert r.status_code == 401, r.text
    forged = vonage_signed(_vonage_receipt(mid, "failed"))
    forged["status"] = "rejected"
    assert _post_receipt(sms_daemon, forged).status_code == 401
    assert rdb.hget(reply_key(conv, rid), "status") == "sent"

    # The carrier's "unknown" is not a final state: the reply stays sent.
    assert_vonage_ok(_post_receipt(sms_daemon, vonage_signed(_vonage_receipt(mid, "unknown")),
                                   how="get"))
    assert rdb.hget(reply_key(conv, rid), "status") == "sent"

    assert_vonage_ok(_post_receipt(sms_daemon, vonage_signed(_vonage_receipt(mid, "delivered"))))
    h = wait_reply_hash(rdb, conv, rid, "delivered", timeout=3)
    assert h.get("error", "") == "", h
    # A late "accepted" does not step back from delivered.
    assert_vonage_ok(_post_receipt(sms_daemon, vonage_signed(_vonage_receipt(mid, "accepted"))))
    assert rdb.hget(reply_key(conv, rid), "status") == "delivered"
    statuses = [e.get("status") for e in events(rdb, "reply.status") if e.get("reply_id") == rid]
    assert statuses == ["sent", "delivered", "accepted"], statuses


def test_vonage_receipt_with_error_code_and_unknown_message(sms_daemon, rdb, fake_provider):
    conv = vonage_conversation(sms_daemon, rdb)
    rid = accepted_reply(post_reply(sms_daemon, conv, "Hello"))
    (req,) = fake_provider.wait_requests("vonage", 1, timeout=3)
    mid = req.answer_body["messages"][0]["message-id"]
    wait_reply_hash(rdb, conv, rid, "sent", timeout=3)
    assert_vonage_ok(_post_receipt(sms_daemon,
                                   vonage_signed(_vonage_receipt(mid, "failed", err_code="6"))))
    h = wait_reply_hash(rdb, conv, rid, "failed", timeout=3)
    assert h["error"] == "6", h
    # A receipt for a message omniroute never sent is acknowledged and ignored.
    assert_vonage_ok(_post_receipt(sms_daemon,
                                   vonage_signed(_vonage_receipt("0B00000DEADBEEF", "delivered"))))
