"""Vonage inbound webhook GET/POST /v1/sms/vonage/{account}: signed
webhooks (md5hash and HMAC methods; signatures checked by the official
@vonage/sms verifySignature, see tests/js/sign.js), timestamp window,
messageId dedup, concatenated messages joined in part order."""

import time

import pytest

from conftest import assert_error, store_snapshot
from sms_helpers import (VONAGE, all_logged_messages, all_queue_messages, assert_vonage_ok, conv_key,
                         send_vonage, stored_by_external_id, stored_one, vonage_params, vonage_signed)


@pytest.mark.parametrize("how", ["json", "form", "get"])
def test_md5hash_signed_webhook_is_stored(sms_daemon, rdb, how):
    p = vonage_signed(vonage_params(msisdn="14155550123", text=f"Hello via {how}"))
    assert_vonage_ok(send_vonage(sms_daemon, p, how=how))
    queue, fields, m = stored_one(rdb, p["messageId"])
    assert queue == "general", queue
    assert fields["provider"] == "vonage:main" and fields["channel"] == "sms", fields
    assert m["channel"] == "sms" and m["provider"] == "vonage:main", m
    assert m["customer"]["id"] == "+14155550123", m["customer"]
    assert m["to"] == "+" + VONAGE["main"]["from"], m
    assert m["text"] == f"Hello via {how}"
    conv = rdb.hgetall(conv_key(m["conversation_id"]))
    assert conv["customer_id"] == "+14155550123", conv


def test_uk_number_gets_plus_and_routes_to_vip(sms_daemon, rdb):
    # base routing: channel sms + sender "+4477*" -> vip/urgent; only true
    # if the customer id is "+" + msisdn.
    p = vonage_signed(vonage_params(msisdn="447700900555"))
    assert_vonage_ok(send_vonage(sms_daemon, p))
    queue, fields, m = stored_one(rdb, p["messageId"])
    assert m["customer"]["id"] == "+447700900555"
    assert queue == "vip" and fields["priority"] == "urgent", (queue, fields)


@pytest.mark.parametrize("how", ["json", "get"])
def test_hmac_sha256_signed_webhook_is_stored(sms_daemon, rdb, how):
    p = vonage_signed(vonage_params(account="hmac", text="x=1&y=2 needs _ escaping"), account="hmac")
    assert_vonage_ok(send_vonage(sms_daemon, p, account="hmac", how=how))
    _, fields, m = stored_one(rdb, p["messageId"])
    assert m["provider"] == "vonage:hmac" and m["text"] == p["text"]


def test_signature_case_is_ignored(sms_daemon, rdb):
    p = vonage_signed(vonage_params())
    p["sig"] = p["sig"].upper()
    assert_vonage_ok(send_vonage(sms_daemon, p))
    stored_one(rdb, p["messageId"])


def test_signature_of_the_other_method_is_rejected(sms_daemon, rdb):
    snap = store_snapshot(rdb)
    # main is md5hash: an HMAC-SHA256 sig with the right secret is wrong.
    p = vonage_signed(vonage_params(), method="sha256")
    assert_error(send_vonage(sms_daemon, p), 401, "bad_signature")
    # hmac is sha256: an md5hash sig is wrong.
    p = vonage_signed(vonage_params(account="hmac"), account="hmac", method="md5hash")
    assert_error(send_vonage(sms_daemon, p, account="hmac"), 401, "bad_signature")
    assert store_snapshot(rdb) == snap


@pytest.mark.parametrize("how", ["json", "get"])
def test_tampered_text_is_rejected(sms_daemon, rdb, how):
    snap = store_snapshot(rdb)
    p = vonage_signed(vonage_params(text="pay 10"))
    p["text"] = "pay 90"
    assert_error(send_vonage(sms_daemon, p, how=how), 401, "bad_signature")
    p = vonage_signed(vonage_params(account="hmac"), account="hmac")
    p["msisdn"] = "447700900999"
    assert_error(send_vonage(sms_daemon, p, account="hmac", how=how), 401, "bad_signature")
    assert store_snapshot(rdb) == snap


def test_added_field_breaks_the_signature(sms_daemon, rdb):
    snap = store_snapshot(rdb)
    p = vonage_signed(vonage_params())
    p["keyword"] = "REFUND"
    assert_error(send_vonage(sms_daemon, p), 401, "bad_signature")
    assert store_snapshot(rdb) == snap


def test_missing_signature_is_rejected_when_required(sms_daemon, rdb):
    snap = store_snapshot(rdb)
    # main: require_signature true explicitly; hmac: by default (secret set).
    for account in ("main", "hmac"):
        p = vonage_params(account=account)
        r = send_vonage(sms_daemon, p, account=account)
        assert_error(r, 401, "missing_signature")
    assert store_snapshot(rdb) == snap


def test_unsigned_webhook_accepted_without_a_signature_secret(sms_daemon, rdb):
    p = vonage_params(account="open", timestamp=None)
    assert_vonage_ok(send_vonage(sms_daemon, p, account="open", how="get"))
    _, _, m = stored_one(rdb, p["messageId"])
    assert m["provider"] == "vonage:open"


def test_stale_timestamp_is_rejected(sms_daemon, rdb):
    snap = store_snapshot(rdb)
    old = vonage_signed(vonage_params(timestamp=str(int(time.time()) - 600)))
    assert_error(send_vonage(sms_daemon, old), 401, "stale_timestamp")
    future = vonage_signed(vonage_params(timestamp=str(int(time.time()) + 600)))
    assert_error(send_vonage(sms_daemon, future), 401, "stale_timestamp")
    assert store_snapshot(rdb) == snap
    # Inside the window (4 minutes old) is fine.
    ok = vonage_signed(vonage_params(timestamp=str(int(time.time()) - 240)))
    assert_vonage_ok(send_vonage(sms_daemon, ok))
    stored_one(rdb, ok["messageId"])


def test_unknown_account_is_404(sms_daemon, rdb):
    snap = store_snapshot(rdb)
    p = vonage_signed(vonage_params())
    assert_error(send_vonage(sms_daemon, p, account="nosuch"), 404, "unknown_account")
    assert store_snapshot(rdb) == snap


def test_duplicate_message_id_is_stored_once(sms_daemon, rdb):
    p = vonage_signed(vonage_params())
    assert_vonage_ok(send_vonage(sms_daemon, p, how="json"))
    snap = store_snapshot(rdb)
    # Vonage retries (also via another method, with a fresh nonce/timestamp).
    assert_vonage_ok(send_vonage(sms_daemon, p, how="get"))
    again = vonage_signed(dict(p, nonce="retry-nonce", timestamp=str(int(time.time()))))
    assert_vonage_ok(send_vonage(sms_daemon, again, how="form"))
    assert store_snapshot(rdb) == snap
    stored_one(rdb, p["messageId"])


def _parts(ref, texts, msisdn="14155550777", account="main"):
    out = []
    for i, t in enumerate(texts, 1):
        out.append(vonage_params(account=account, msisdn=msisdn, text=t, concat="true",
                                 **{"concat-ref": ref, "concat-total": str(len(texts)),
                                    "concat-part": str(i)}))
    return out


def test_concatenated_parts_out_of_order_make_one_message(sms_daemon, rdb):
    texts = ["This is the first part of a long SMS, ",
             "this is the middle part which continues, ",
             "and this is the end."]
    parts = _parts("183", texts)
    snap = store_snapshot(rdb)
    for i in (3, 1):
        assert_vonage_ok(send_vonage(sms_daemon, vonage_signed(parts[i - 1])))
    # Nothing is stored or queued until the last part arrives.
    assert store_snapshot(rdb)["queues"] == snap["queues"], "a partial message was queued"
    assert not [m for _, _, _, m in all_queue_messages(rdb)]
    assert not all_logged_messages(rdb), "a partial message was stored"
    assert_vonage_ok(send_vonage(sms_daemon, vonage_signed(parts[1]), how="get"))

    msgs = [m for _, _, m in all_logged_messages(rdb)]
    assert len(msgs) == 1, msgs
    assert [m for _, _, _, m in all_queue_messages(rdb)] == msgs
    m = msgs[0]
    assert m["text"] == "".join(texts), m["text"]
    assert m["external_id"] == "concat:14155550777:183", m
    assert m["customer"]["id"] == "+14155550777"
    assert m["provider"] == "vonage:main"
    assert int(rdb.hget(conv_key(m["conversation_id"]), "message_count")) == 1

    # A part retried after the join does not make a second message (a
    # second one would be a follow-up in the same conversation's log).
    assert_vonage_ok(send_vonage(sms_daemon, vonage_signed(parts[0])))
    assert len(all_logged_messages(rdb)) == 1, all_logged_messages(rdb)
    assert len(all_queue_messages(rdb)) == 1


def test_concat_refs_of_different_senders_do_not_mix(sms_daemon, rdb):
    a = _parts("7", ["A1 ", "A2"], msisdn="14155550001")
    b = _parts("7", ["B1 ", "B2"], msisdn="14155550002")
    for p in (a[1], b[0], a[0], b[1]):
        assert_vonage_ok(send_vonage(sms_daemon, vonage_signed(p)))
    (_, _, ma), = stored_by_external_id(rdb, "concat:14155550001:7")
    (_, _, mb), = stored_by_external_id(rdb, "concat:14155550002:7")
    assert ma["text"] == "A1 A2" and mb["text"] == "B1 B2", (ma["text"], mb["text"])


def test_concat_part_retried_before_completion_is_not_doubled(sms_daemon, rdb):
    parts = _parts("991", ["one ", "two ", "three"])
    for i in (2, 2, 1, 1, 3):
        assert_vonage_ok(send_vonage(sms_daemon, vonage_signed(parts[i - 1])))
    (_, _, m), = stored_by_external_id(rdb, "concat:14155550777:991")
    assert m["text"] == "one two three", m["text"]
    assert len(all_logged_messages(rdb)) == 1, all_logged_messages(rdb)
    assert len(all_queue_messages(rdb)) == 1


def test_concat_parts_are_signature_checked(sms_daemon, rdb):
    parts = _parts("55", ["good ", "forged"])
    assert_vonage_ok(send_vonage(sms_daemon, vonage_signed(parts[0])))
    bad = vonage_signed(parts[1])
    bad["text"] = "evil"
    assert_error(send_vonage(sms_daemon, bad), 401, "bad_signature")
    assert all_queue_messages(rdb) == []
    assert all_logged_messages(rdb) == []
    assert_vonage_ok(send_vonage(sms_daemon, vonage_signed(parts[1])))
    (_, _, m), = stored_by_external_id(rdb, "concat:14155550777:55")
    assert m["text"] == "good forged"


@pytest.mark.parametrize("how", ["get", "form", "json"])
def test_unicode_text_is_verified_and_stored_exactly(sms_daemon, rdb, how):
    text = "Xin chào, tôi muốn hoàn tiền 🙂 (a+b=c & d)"
    p = vonage_signed(vonage_params(msisdn="14155550888", text=text, type="unicode"))
    assert_vonage_ok(send_vonage(sms_daemon, p, how=how))
    queue, _, m = stored_one(rdb, p["messageId"])
    assert m["text"] == text
    assert queue == "billing", queue


def test_wrong_method_is_405(sms_daemon):
    import requests
    r = requests.put(sms_daemon.url("/v1/sms/vonage/main"), data=b"{}", timeout=5)
    assert_error(r, 405, "method_not_allowed")
