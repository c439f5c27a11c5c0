"""Agent replies: POST /v1/conversations/{id}/replies (bearer token) and
XADD omr:outbox, delivered to the provider send APIs (a fake Twilio
Messages API / Vonage /sms/json on 127.0.0.1): request shape, retries with
Retry-After, permanent failures, idempotency, at-most-once."""

import json
import threading
import time

import pytest

from conftest import assert_error, free_port
from sms_helpers import (API_TOKENS, HELPDESK, TWILIO, VONAGE, Answer, accepted_reply, events,
                         get_reply, http_error, log_entries, post_reply, reply_key, send_vonage,
                         stored_one, twilio_conversation, twilio_error, vonage_conversation,
                         vonage_params, vonage_signed, vonage_status, wait_reply_hash)


def test_reply_reaches_twilio_and_is_marked_sent(sms_daemon, rdb, fake_provider):
    conv = twilio_conversation(sms_daemon, rdb, customer="+14155550123")
    t0 = time.monotonic()
    rid = accepted_reply(post_reply(sms_daemon, conv, "Hi! Your parcel ships today.", agent_id="ana"))
    (req,) = fake_provider.wait_requests("twilio", 1, timeout=3)
    assert req.t - t0 < 1.0, f"reply reached the provider {req.t - t0:.2f}s after the 202"

    acct = TWILIO["main"]
    assert req.method == "POST"
    assert req.path == f"/2010-04-01/Accounts/{acct['account_sid']}/Messages.json"
    assert req.basic_auth == (acct["account_sid"], acct["auth_token"]), req.headers.get("authorization")
    assert "x-www-form-urlencoded" in req.headers.get("content-type", ""), req.headers
    assert req.form["To"] == "+14155550123", req.form
    assert req.form["From"] == acct["from"], req.form
    assert req.form["Body"] == "Hi! Your parcel ships today.", req.form
    assert req.form["StatusCallback"] == acct["public_url"] + "/v1/sms/twilio/main/status", req.form
    sid = req.answer_body["sid"]

    h = wait_reply_hash(rdb, conv, rid, {"sent", "delivered"}, timeout=3)
    assert h["provider_message_id"] == sid, h

    g = get_reply(sms_daemon, conv, rid)
    assert g.status_code == 200, g.text
    j = g.json()
    assert j["reply_id"] == rid and j["conversation_id"] == conv, j
    assert j["agent_id"] == "ana" and j["text"] == "Hi! Your parcel ships today.", j
    assert j["status"] == "sent" and j["provider_message_id"] == sid, j
    assert j["provider"] == "twilio:main", j
    assert int(j["attempts"]) == 1, j

    outs = [m for _, f, m in log_entries(rdb, conv) if f.get("direction") == "out"]
    assert len(outs) == 1, log_entries(rdb, conv)
    out = outs[0]
    assert out["agent_id"] == "ana" and out["text"] == "Hi! Your parcel ships today.", out
    assert out["provider"] == "twilio:main" and out["external_id"] == sid, out
    assert out["direction"] == "out" and out["reply_id"] == rid, out
    assert out["delivery"] == {"status": "sent"}, out
    sent = [e for e in events(rdb, "reply.sent")]
    assert len(sent) == 1 and sent[0].get("conversation_id") == conv, sent
    assert len(fake_provider.requests("twilio")) == 1


def test_bearer_token_is_required(sms_daemon, rdb, fake_provider):
    conv = twilio_conversation(sms_daemon, rdb)
    assert_error(post_reply(sms_daemon, conv, token=None), 401, "unauthorized")
    assert_error(post_reply(sms_daemon, conv, token="wrong-token"), 401, "unauthorized")
    assert_error(post_reply(sms_daemon, conv, token=HELPDESK + "x"), 401, "unauthorized")
    assert_error(post_reply(sms_daemon, conv, token=None,
                            headers={"Authorization": "Basic " + HELPDESK}), 401, "unauthorized")
    # The second configured token works too.
    accepted_reply(post_reply(sms_daemon, conv, token=API_TOKENS["crm"]))
    r = get_reply(sms_daemon, conv, "0-0", token="wrong-token")
    assert_error(r, 401, "unauthorized")
    fake_provider.wait_requests("twilio", 1, timeout=3)
    time.sleep(0.3)
    assert len(fake_provider.requests("twilio")) == 1


def test_unknown_conversation_and_bad_bodies(sms_daemon, rdb, fake_provider):
    assert_error(post_reply(sms_daemon, "01JAAAAAAAAAAAAAAAAAAAAAAA"), 404, "unknown_conversation")
    conv = twilio_conversation(sms_daemon, rdb)
    assert_error(post_reply(sms_daemon, conv, body=b"{not json"), 400, "bad_json")
    assert_error(post_reply(sms_daemon, conv, body={"agent_id": "ana"}), 400, "missing_field")
    r = get_reply(sms_daemon, conv, "1-1")
    assert r.status_code == 404 and "error" in r.json(), r.text
    time.sleep(0.3)
    assert fake_provider.requests("twilio") == []


def test_text_too_long_for_twilio(sms_daemon, rdb, fake_provider):
    conv = twilio_conversation(sms_daemon, rdb)
    assert_error(post_reply(sms_daemon, conv, "x" * 1601), 422, "text_too_long")
    accepted_reply(post_reply(sms_daemon, conv, "y" * 1600))
    (req,) = fake_provider.wait_requests("twilio", 1, timeout=3)
    assert req.form["Body"] == "y" * 1600
    time.sleep(0.2)
    assert len(fake_provider.requests("twilio")) == 1


def test_idempotency_key_sends_once(sms_daemon, rdb, fake_provider):
    conv = twilio_conversation(sms_daemon, rdb)
    r1 = post_reply(sms_daemon, conv, "once only", idempotency_key="k-123")
    rid = accepted_reply(r1)
    r2 = post_reply(sms_daemon, conv, "once only", idempotency_key="k-123")
    assert r2.status_code == 202, r2.text
    assert r2.json()["reply_id"] == rid and r2.json()["duplicate"] is True, r2.json()
    # The header form of the key.
    r3 = post_reply(sms_daemon, conv, "once only", headers={"Idempotency-Key": "k-123"})
    assert r3.status_code == 202 and r3.json()["reply_id"] == rid, r3.text
    wait_reply_hash(rdb, conv, rid, "sent", timeout=3)
    time.sleep(0.5)
    assert len(fake_provider.requests("twilio")) == 1, fake_provider.requests("twilio")
    # After it was sent, the key still answers with the same reply.
    r4 = post_reply(sms_daemon, conv, "once only", idempotency_key="k-123")
    assert r4.status_code == 202 and r4.json()["reply_id"] == rid and r4.json()["duplicate"] is True
    # Another key is another reply.
    rid2 = accepted_reply(post_reply(sms_daemon, conv, "second", idempotency_key="k-456"))
    assert rid2 != rid
    fake_provider.wait_requests("twilio", 2, timeout=3)


def test_server_errors_are_retried_until_success(sms_daemon, rdb, fake_provider):
    fake_provider.script("twilio", http_error(500, retry_after=1), http_error(500, retry_after=1))
    conv = twilio_conversation(sms_daemon, rdb)
    rid = accepted_reply(post_reply(sms_daemon, conv, "retry me"))
    reqs = fake_provider.wait_requests("twilio", 3, timeout=8)
    h = wait_reply_hash(rdb, conv, rid, "sent", timeout=3)
    time.sleep(0.5)
    reqs = fake_provider.requests("twilio")
    assert [r.answer_status for r in reqs] == [500, 500, 201], reqs
    assert sum(r.success for r in reqs) == 1
    assert all(r.form == reqs[0].form for r in reqs), "retries must send the same message"
    assert h["provider_message_id"] == reqs[2].answer_body["sid"], h
    assert int(get_reply(sms_daemon, conv, rid).json()["attempts"]) == 3
    assert len([1 for _, f, _ in log_entries(rdb, conv) if f.get("direction") == "out"]) == 1
    assert len(events(rdb, "reply.sent")) == 1


def test_retry_after_is_honoured(sms_daemon, rdb, fake_provider):
    fake_provider.script("twilio", http_error(429, {"code": 20429, "message": "Too Many Requests"},
                                              retry_after=2))
    conv = twilio_conversation(sms_daemon, rdb)
    rid = accepted_reply(post_reply(sms_daemon, conv, "slow down"))
    a, b = fake_provider.wait_requests("twilio", 2, timeout=8)
    assert b.t - a.t >= 1.9, f"retried {b.t - a.t:.2f}s after a 429 with Retry-After: 2"
    wait_reply_hash(rdb, conv, rid, "sent", timeout=3)


def test_permanent_error_fails_without_retry(sms_daemon, rdb, fake_provider):
    fake_provider.script("twilio", twilio_error(400, 21211, "The 'To' number +1415555 is not a valid "
                                                "phone number."))
    conv = twilio_conversation(sms_daemon, rdb)
    rid = accepted_reply(post_reply(sms_daemon, conv, "to nowhere"))
    h = wait_reply_hash(rdb, conv, rid, "failed", timeout=3)
    assert "not a valid phone number" in h.get("error", ""), h
    j = get_reply(sms_daemon, conv, rid).json()
    assert j["status"] == "failed" and "not a valid phone number" in j["error"], j
    assert "21211" in json.dumps(j["error"]), j
    time.sleep(1.5)
    assert len(fake_provider.requests("twilio")) == 1
    assert len(events(rdb, "reply.failed")) == 1
    assert not [1 for _, f, _ in log_entries(rdb, conv) if f.get("direction") == "out"]


def test_give_up_after(start_daemon, sms_config, rdb, fake_provider):
    cfg = sms_config()
    cfg["outbound"]["give_up_after"] = "2s"
    d = start_daemon(cfg)
    fake_provider.default["twilio"] = http_error(503, retry_after=1)
    conv = twilio_conversation(d, rdb)
    rid = accepted_reply(post_reply(d, conv, "never"))
    h = wait_reply_hash(rdb, conv, rid, "failed", timeout=6)
    n = len(fake_provider.requests("twilio"))
    assert 2 <= n <= 4, fake_provider.requests("twilio")
    assert h.get("error"), h
    time.sleep(1.5)
    assert len(fake_provider.requests("twilio")) == n, "retried after giving up"


def test_reply_via_outbox_stream(sms_daemon, rdb, fake_provider):
    conv = twilio_conversation(sms_daemon, rdb, customer="+14155550199")
    eid = rdb.xadd("omr:outbox", {"conversation_id": conv, "agent_id": "bot", "text": "from the outbox"})
    (req,) = fake_provider.wait_requests("twilio", 1, timeout=3)
    assert req.form["To"] == "+14155550199" and req.form["Body"] == "from the outbox", req.form
    h = wait_reply_hash(rdb, conv, eid, "sent", timeout=3)
    assert h["provider_message_id"] == req.answer_body["sid"], h
    j = get_reply(sms_daemon, conv, eid).json()
    assert j["agent_id"] == "bot" and j["status"] == "sent", j
    # Same idempotency key through the outbox: one send.
    rdb.xadd("omr:outbox", {"conversation_id": conv, "agent_id": "bot", "text": "dedup",
                            "idempotency_key": "ob-1"})
    rdb.xadd("omr:outbox", {"conversation_id": conv, "agent_id": "bot", "text": "dedup",
                            "idempotency_key": "ob-1"})
    fake_provider.wait_requests("twilio", 2, timeout=3)
    time.sleep(0.5)
    assert [r.form["Body"] for r in fake_provider.requests("twilio")] == ["from the outbox", "dedup"]
    groups = {g["name"] for g in rdb.xinfo_groups("omr:outbox")}
    assert "omnirouted" in groups, groups


def test_sent_reply_is_not_resent_after_restart(start_daemon, sms_config, rdb, fake_provider):
    cfg = sms_config()
    d = start_daemon(cfg)
    conv = twilio_conversation(d, rdb)
    rid = accepted_reply(post_reply(d, conv, "only once"))
    wait_reply_hash(rdb, conv, rid, "sent", timeout=3)
    eid = rdb.xadd("omr:outbox", {"conversation_id": conv, "agent_id": "bot", "text": "outbox once"})
    wait_reply_hash(rdb, conv, eid, "sent", timeout=3)
    rc, _ = d.terminate()
    assert rc == 0
    d2 = start_daemon(cfg, name="omnirouted-restarted")
    time.sleep(1.5)
    assert d2.alive()
    assert [r.form["Body"] for r in fake_provider.requests("twilio")] == ["only once", "outbox once"]


def test_vonage_reply(sms_daemon, rdb, fake_provider):
    conv = vonage_conversation(sms_daemon, rdb, msisdn="14155550123")
    t0 = time.monotonic()
    rid = accepted_reply(post_reply(sms_daemon, conv, "Hello from support"))
    (req,) = fake_provider.wait_requests("vonage", 1, timeout=3)
    assert req.t - t0 < 1.0
    assert req.method == "POST" and req.path == "/sms/json", req
    acct = VONAGE["main"]
    assert req.form["api_key"] == acct["api_key"], req.form
    assert req.form["api_secret"] == acct["api_secret"], req.form
    assert req.form["from"] == acct["from"], req.form
    assert req.form["to"] == "14155550123", req.form
    assert req.form["text"] == "Hello from support", req.form
    assert req.form.get("type", "text") == "text", req.form
    mid = req.answer_body["messages"][0]["message-id"]
    h = wait_reply_hash(rdb, conv, rid, "sent", timeout=3)
    assert h["provider_message_id"] == mid, h
    j = get_reply(sms_daemon, conv, rid).json()
    assert j["provider"] == "vonage:main" and j["provider_message_id"] == mid, j
    outs = [m for _, f, m in log_entries(rdb, conv) if f.get("direction") == "out"]
    assert len(outs) == 1 and outs[0]["external_id"] == mid and outs[0]["provider"] == "vonage:main", outs


def test_vonage_unicode_reply_and_length_limit(sms_daemon, rdb, fake_provider):
    conv = vonage_conversation(sms_daemon, rdb)
    assert_error(post_reply(sms_daemon, conv, "z" * 3201), 422, "text_too_long")
    rid = accepted_reply(post_reply(sms_daemon, conv, "Cảm ơn bạn 🙂"))
    (req,) = fake_provider.wait_requests("vonage", 1, timeout=3)
    assert req.form["text"] == "Cảm ơn bạn 🙂" and req.form.get("type") == "unicode", req.form
    assert req.form["to"] == "447700900123" or req.form["to"].isdigit(), req.form
    wait_reply_hash(rdb, conv, rid, "sent", timeout=3)


def test_vonage_throttled_is_retried_and_refusal_fails(sms_daemon, rdb, fake_provider):
    fake_provider.script("vonage", vonage_status(1, "Throughput Rate Exceeded"))
    conv = vonage_conversation(sms_daemon, rdb)
    rid = accepted_reply(post_reply(sms_daemon, conv, "throttled first"))
    fake_provider.wait_requests("vonage", 2, timeout=8)
    wait_reply_hash(rdb, conv, rid, "sent", timeout=3)

    fake_provider.script("vonage", vonage_status(6, "Unroutable message - rejected"))
    rid2 = accepted_reply(post_reply(sms_daemon, conv, "refused"))
    h = wait_reply_hash(rdb, conv, rid2, "failed", timeout=3)
    assert "Unroutable" in h.get("error", ""), h
    time.sleep(1.2)
    assert len(fake_provider.requests("vonage")) == 3


@pytest.mark.parametrize("status", [500, 429])
def test_vonage_http_errors_are_retried(sms_daemon, rdb, fake_provider, status):
    fake_provider.script("vonage", http_error(status, {"error": "busy"}, retry_after=1))
    conv = vonage_conversation(sms_daemon, rdb)
    rid = accepted_reply(post_reply(sms_daemon, conv, "after a hiccup"))
    reqs = fake_provider.wait_requests("vonage", 2, timeout=8)
    wait_reply_hash(rdb, conv, rid, "sent", timeout=3)
    assert [r.answer_status for r in reqs[:2]] == [status, 200]


def test_reply_goes_through_the_conversations_account(sms_daemon, rdb, fake_provider):
    conv = twilio_conversation(sms_daemon, rdb, customer="+14155550142", account="alt")
    rid = accepted_reply(post_reply(sms_daemon, conv, "via alt"))
    (req,) = fake_provider.wait_requests("twilio", 1, timeout=3)
    acct = TWILIO["alt"]
    assert req.path == f"/2010-04-01/Accounts/{acct['account_sid']}/Messages.json", req.path
    assert req.basic_auth == (acct["account_sid"], acct["auth_token"])
    assert req.form["From"] == acct["from"] and req.form["To"] == "+14155550142", req.form
    assert req.form["StatusCallback"] == "https://sms.example.net:8443/omr/v1/sms/twilio/alt/status"
    assert wait_reply_hash(rdb, conv, rid, "sent", timeout=3)["provider"] == "twilio:alt"

    p = vonage_signed(vonage_params(account="hmac", msisdn="14155550143"), account="hmac")
    assert send_vonage(sms_daemon, p, account="hmac").status_code == 200
    vconv = stored_one(rdb, p["messageId"])[2]["conversation_id"]
    accepted_reply(post_reply(sms_daemon, vconv, "via hmac"))
    (vreq,) = fake_provider.wait_requests("vonage", 1, timeout=3)
    va = VONAGE["hmac"]
    assert (vreq.form["api_key"], vreq.form["api_secret"], vreq.form["from"], vreq.form["to"]) == \
        (va["api_key"], va["api_secret"], va["from"], "14155550143"), vreq.form


def test_reply_text_is_form_encoded_exactly(sms_daemon, rdb, fake_provider):
    text = "Cảm ơn! 50% off & free + shipping = yes 🙂\nLine 2?a=b&c"
    conv = twilio_conversation(sms_daemon, rdb)
    accepted_reply(post_reply(sms_daemon, conv, text))
    (req,) = fake_provider.wait_requests("twilio", 1, timeout=3)
    assert req.form["Body"] == text, req.body
    assert set(req.form_multi) >= {"To", "From", "Body", "StatusCallback"}
    assert all(len(v) == 1 for v in req.form_multi.values()), req.form_multi

    vconv = vonage_conversation(sms_daemon, rdb)
    accepted_reply(post_reply(sms_daemon, vconv, text))
    (vreq,) = fake_provider.wait_requests("vonage", 1, timeout=3)
    assert vreq.form["text"] == text and vreq.form.get("type") == "unicode", vreq.body


def test_idempotency_key_is_per_token(sms_daemon, rdb, fake_provider):
    # "same idempotency_key again (same token)": another agent tool's key
    # space is its own.
    conv = twilio_conversation(sms_daemon, rdb)
    a = accepted_reply(post_reply(sms_daemon, conv, "from helpdesk", idempotency_key="shared-1"))
    b = accepted_reply(post_reply(sms_daemon, conv, "from crm", idempotency_key="shared-1",
                                  token=API_TOKENS["crm"]))
    assert a != b
    fake_provider.wait_requests("twilio", 2, timeout=3)


def test_concurrent_duplicates_send_once(sms_daemon, rdb, fake_provider):
    conv = twilio_conversation(sms_daemon, rdb)
    n = 8
    barrier = threading.Barrier(n)
    out = [None] * n

    def go(i):
        barrier.wait(5)
        try:
            out[i] = post_reply(sms_daemon, conv, "race", idempotency_key="race-1")
        except Exception as e:  # noqa: BLE001 - asserted below
            out[i] = e

    ts = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(15)
    bodies = []
    for r in out:
        assert hasattr(r, "status_code") and r.status_code == 202, r
        bodies.append(r.json())
    assert len({b["reply_id"] for b in bodies}) == 1, bodies
    assert sum(b["duplicate"] is False for b in bodies) == 1, bodies
    wait_reply_hash(rdb, conv, bodies[0]["reply_id"], "sent", timeout=3)
    time.sleep(0.5)
    assert len(fake_provider.requests("twilio")) == 1


def test_reply_of_another_conversation_is_404(sms_daemon, rdb, fake_provider):
    a = twilio_conversation(sms_daemon, rdb, customer="+14155550001")
    b = twilio_conversation(sms_daemon, rdb, customer="+14155550002")
    rid = accepted_reply(post_reply(sms_daemon, a, "for a"))
    assert get_reply(sms_daemon, a, rid).status_code == 200
    r = get_reply(sms_daemon, b, rid)
    assert r.status_code == 404, r.text


def test_unreachable_provider_is_retried_then_failed(start_daemon, sms_config, rdb, fake_provider):
    cfg = sms_config()
    cfg["outbound"]["give_up_after"] = "2s"
    dead = free_port()  # nothing listens there
    for a in cfg["connectors"]["twilio"]["accounts"]:
        a["api_base"] = f"http://127.0.0.1:{dead}"
    d = start_daemon(cfg)
    conv = twilio_conversation(d, rdb)
    rid = accepted_reply(post_reply(d, conv, "nobody home"))
    h = wait_reply_hash(rdb, conv, rid, "failed", timeout=8)
    assert int(h.get("attempts", 0)) >= 2, h
    assert h.get("error"), h
    assert len(events(rdb, "reply.failed")) == 1


def test_in_flight_send_is_not_repeated_after_a_crash(start_daemon, sms_config, rdb, fake_provider):
    """A reply whose request reached the provider but whose answer was lost
    (daemon SIGKILLed meanwhile) is not sent again by the next daemon:
    at most once per reply_id, also across restarts."""
    cfg = sms_config()
    d = start_daemon(cfg)
    conv = twilio_conversation(d, rdb)
    fake_provider.script("twilio", Answer(delay=2.0))
    rid = accepted_reply(post_reply(d, conv, "in flight"))
    fake_provider.wait_arrivals("twilio", 1, timeout=3)  # reached the provider, not yet answered
    assert rdb.hget(reply_key(conv, rid), "status") == "sending"
    d.proc.kill()
    d.proc.wait(5)
    d.proc = None  # killed on purpose: no SIGTERM / exit-0 check at teardown
    d2 = start_daemon(cfg, name="omnirouted-after-crash")
    time.sleep(1.5)  # a resend would come within 1 s of the restart
    assert d2.alive()
    assert len(fake_provider.arrived) == 1, fake_provider.arrived
    assert rdb.hget(reply_key(conv, rid), "status") != "queued"


def test_pending_replies_resume_once_after_restart(start_daemon, sms_config, rdb, fake_provider):
    """Replies waiting out a provider outage when the daemon stops are taken up
    again by the restarted daemon (same consumer name) and each is sent once —
    re-reading its own pending entries must not start a delivery twice."""
    cfg = sms_config()
    d = start_daemon(cfg)
    fake_provider.default["twilio"] = http_error(503, retry_after=1)
    conv = twilio_conversation(d, rdb)
    rids = [accepted_reply(post_reply(d, conv, f"pending {i}")) for i in range(3)]
    for rid in rids:
        wait_reply_hash(rdb, conv, rid, "retrying", timeout=5)
    rc, _ = d.terminate()
    assert rc == 0
    assert rdb.xpending("omr:outbox", "omnirouted")["pending"] == 3

    fake_provider.default["twilio"] = None  # the provider is back
    d2 = start_daemon(cfg, name="omnirouted-restarted")
    for rid in rids:
        wait_reply_hash(rdb, conv, rid, "sent", timeout=8)
    time.sleep(1.5)  # a duplicate delivery would show up here
    ok = [r.form["Body"] for r in fake_provider.requests("twilio") if r.answer_status == 201]
    assert sorted(ok) == ["pending 0", "pending 1", "pending 2"], ok
    assert rdb.xpending("omr:outbox", "omnirouted")["pending"] == 0
    assert d2.alive()
