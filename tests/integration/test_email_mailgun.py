"""Inbound email by Mailgun's signed webhook: POST /v1/email/mailgun/<mailbox>
(urlencoded or multipart form; the parsed fields or `body-mime`), signature
= hex HMAC-SHA256(signing key, timestamp + token). 200 only after the
store, 406 for a bad or stale signature (Mailgun does not retry a 406), 503
while Redis is down, a replay answered 200 without a second entry."""

import time

import pytest

from conftest import wait_until
from email_helpers import (MAILGUN_KEY, assert_json_error, email_config, email_messages, mailbox,
                           mailgun_fields, mailgun_signed, norm_text, plain_mail,
                           post_mailgun, stored_count)


@pytest.fixture
def mg(start_daemon, make_config, secrets_dir):
    return start_daemon(email_config(make_config(), secrets_dir,
                                     [mailbox(secrets_dir=secrets_dir, mailgun=True)]))


def stored_now(rdb, message_id):
    """The stored message for message_id, which must be there already (the
    webhook answers 200 only after the store), exactly once."""
    got = email_messages(rdb).get(message_id) or []
    assert len(got) == 1, f"<{message_id}> stored {len(got)} times right after the 200"
    return got[0][2]


def ok(resp):
    assert resp.status_code == 200, f"expected 200, got {resp.status_code}: {resp.text!r}"
    assert "json" in resp.headers.get("Content-Type", ""), resp.headers
    resp.json()
    return resp


def test_signed_urlencoded_post_is_stored_with_fields_mapped(mg, rdb):
    body = ("Hello, where is my order 1042? Đơn hàng của tôi ở đâu?\n\n"
            "On Mon, 23 Nov 2026 at 10:00, Example Support <support@example.com> wrote:\n"
            "> We shipped it.\n> Ana\n")
    f, mid, sender = mailgun_fields(name="Ana Lima", subject="Đơn hàng 1042", text=body,
                                    stripped="Hello, where is my order 1042? Đơn hàng của tôi ở đâu?",
                                    html="<p>Hello, where is my order 1042?</p>")
    ok(post_mailgun(mg, mailgun_signed(f)))
    j = stored_now(rdb, mid)
    assert j["channel"] == "email" and j["provider"] == "email:support", j
    assert j["external_id"] == mid, j
    assert j["customer"]["id"] == sender and j["customer"]["handle"] == sender, j
    assert j["customer"].get("name") == "Ana Lima", j
    assert j["subject"] == "Đơn hàng 1042", j
    assert norm_text(j["text"]) == "Hello, where is my order 1042? Đơn hàng của tôi ở đâu?", j
    assert "> We shipped it." in j.get("body_full", ""), j
    assert "<p>Hello, where is my order 1042?</p>" in (j.get("html") or ""), j
    assert j["attachments"] == [] and not j.get("auto_submitted") and not j.get("warnings"), j


def test_multipart_post_with_attachments(mg, rdb):
    f, mid, _ = mailgun_fields(subject="Photo of the damage", text="The box arrived broken, see attached.")
    f["attachment-count"] = "2"
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 8
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 500
    files = {"attachment-1": ("damage report.pdf", pdf, "application/pdf"),
             "attachment-2": ("box.png", png, "image/png")}
    ok(post_mailgun(mg, mailgun_signed(f), files=files))
    j = stored_now(rdb, mid)
    assert norm_text(j["text"]) == "The box arrived broken, see attached.", j
    got = [(a.get("name"), a.get("type"), a.get("size")) for a in j["attachments"]]
    assert got == [("damage report.pdf", "application/pdf", len(pdf)), ("box.png", "image/png", len(png))], j


def test_body_mime_is_parsed_like_imap_mail(mg, rdb):
    m = plain_mail(charset="iso-2022-jp", cte="base64", lang="ja", name="山田太郎",
                   extra_headers=[("Auto-Submitted", "auto-replied")])
    f = {"recipient": "support@example.com", "sender": m.from_addr, "body-mime": m.raw.decode("ascii")}
    ok(post_mailgun(mg, mailgun_signed(f), multipart=True))
    j = stored_now(rdb, m.message_id)
    assert j["subject"] == m.subject, j
    assert norm_text(j["text"]) == m.text, j
    assert j["customer"]["id"] == m.from_addr and j["customer"].get("name") == "山田太郎", j
    assert j.get("auto_submitted") is True, j


def test_bad_or_missing_signature_is_406_and_nothing_stored(mg, rdb):
    f, mid, _ = mailgun_fields()
    signed = mailgun_signed(f)
    forged = dict(signed, signature=("0" if signed["signature"][0] != "0" else "1") + signed["signature"][1:])
    assert_json_error(post_mailgun(mg, forged), 406)
    wrong_key = mailgun_signed(f, key=MAILGUN_KEY + "x")
    assert_json_error(post_mailgun(mg, wrong_key), 406)
    unsigned = dict(f)
    assert_json_error(post_mailgun(mg, unsigned), 406)
    # the signature covers timestamp + token: another token with the same signature fails
    assert_json_error(post_mailgun(mg, dict(signed, token=signed["token"] + "a")), 406)
    assert_json_error(post_mailgun(mg, forged, multipart=True), 406)
    assert email_messages(rdb) == {} and stored_count(rdb) == 0
    assert mg.alive()


def test_stale_timestamp_is_406(mg, rdb):
    f, mid, _ = mailgun_fields()
    assert_json_error(post_mailgun(mg, mailgun_signed(f, timestamp=int(time.time()) - 3600)), 406)
    assert_json_error(post_mailgun(mg, mailgun_signed(f, timestamp=int(time.time()) + 3600)), 406)
    assert email_messages(rdb) == {}
    ok(post_mailgun(mg, mailgun_signed(f, timestamp=int(time.time()) - 60)))  # inside 15m
    stored_now(rdb, mid)


def test_replay_is_200_without_a_second_entry(mg, rdb):
    f, mid, _ = mailgun_fields(text="Only once please.")
    signed = mailgun_signed(f)
    r1 = ok(post_mailgun(mg, signed))
    r2 = ok(post_mailgun(mg, signed))                       # the same request again
    r3 = ok(post_mailgun(mg, mailgun_signed(f)))            # re-signed, same Message-Id
    stored_now(rdb, mid)
    assert len(email_messages(rdb)) == 1
    c1 = r1.json().get("conversation_id")
    if c1:
        assert r2.json().get("conversation_id") == c1 and r3.json().get("conversation_id") == c1


@pytest.mark.timeout(40)
def test_redis_down_is_503_then_the_retry_is_stored(mg, rdb, redis_server):
    f, mid, _ = mailgun_fields(text="Sent while the store is down.")
    redis_server.kill()
    r = post_mailgun(mg, mailgun_signed(f))
    assert_json_error(r, 503)
    assert mg.alive()
    redis_server.start()
    # Mailgun retries; once the daemon has reconnected it is stored.
    wait_until(lambda: post_mailgun(mg, mailgun_signed(f)).status_code == 200 or None, 15,
               interval=0.2, what="the retry accepted after Redis came back")
    c = redis_server.client()
    try:
        stored_now(c, mid)
    finally:
        c.close()


def test_unknown_mailbox_is_refused(mg, rdb):
    f, _, _ = mailgun_fields()
    r = post_mailgun(mg, mailgun_signed(f), mailbox_name="nope")
    assert 400 <= r.status_code < 500, r.text
    assert email_messages(rdb) == {}
