"""MIME decoding of real mail (issue 6), through Mailgun's `body-mime`
webhook (synchronous: the 200 comes after the store, so no polling): every
charset of the corpus in subject, display name and body with each transfer
encoding; HTML-only and multipart/alternative; quoted history and signature
trimmed from `text` but kept in `body_full`; broken MIME stored with
`warnings`; the auto-submitted rules. The same corpus goes through IMAP in
test_email_imap.py."""

import pytest

from email_helpers import (AUTO_KINDS, CHARSETS, CTES, LANGS, LEGACY, SENTENCES, alternative_mail,
                           auto_mail, broken_mail, email_config, email_messages, html_mail, mailbox,
                           mailgun_signed, nfc, norm_text, plain_mail, post_mailgun)

NAMES = {"vi": "Nguyễn Văn An", "tr": "Ayşe Yılmaz", "ja": "山田太郎", "zh": "王小明",
         "th": "สมชาย ใจดี", "en": "Ann O'Neil"}


@pytest.fixture
def mg(start_daemon, make_config, secrets_dir):
    return start_daemon(email_config(make_config(), secrets_dir,
                                     [mailbox(secrets_dir=secrets_dir, mailgun=True)]))


def post_mime(d, rdb, m):
    """POST the raw message as body-mime; the stored message dict."""
    f = {"recipient": "support@example.com", "sender": m.from_addr, "body-mime": m.raw}
    r = post_mailgun(d, mailgun_signed(f), multipart=True)
    assert r.status_code == 200, f"{m!r}: {r.status_code} {r.text!r}"
    got = email_messages(rdb).get(m.message_id) or []
    assert len(got) == 1, f"{m!r} stored {len(got)} times"
    return got[0][2]


def cases():
    out = []
    for i, lang in enumerate(LANGS):  # UTF-8 in every language
        out.append(plain_mail(charset="utf-8", cte=CTES[i % 2], lang=lang, name=NAMES[lang],
                              subject_mode="BQ"[i % 2]))
    for cs, (_codec, lang) in LEGACY.items():
        for k, cte in enumerate(CTES + ("8bit",)):
            out.append(plain_mail(charset=cs, cte=cte, lang=lang, name=NAMES[lang],
                                  subject=f"{SENTENCES[lang]} ({cte})", subject_mode="BQB"[k]))
    return out


def test_every_charset_and_transfer_encoding_decodes(mg, rdb):
    """UTF-8, TIS-620, windows-874, windows-1258, ISO-8859-9, ISO-2022-JP,
    GB18030 (with the windows code pages' own “ ” € and GB18030's €),
    quoted-printable / base64 / 8bit, B- and Q-encoded subjects and names:
    subject, customer name and text are the original Unicode (NFC-compared)."""
    problems = []
    mails = cases()
    assert {m.charset for m in mails} == set(CHARSETS)
    for m in mails:
        j = post_mime(mg, rdb, m)
        for what, got, want in (("subject", nfc(j.get("subject")), nfc(m.subject)),
                                ("name", nfc((j.get("customer") or {}).get("name")), nfc(m.from_name)),
                                ("text", norm_text(j.get("text")), m.text)):
            if got != want:
                problems.append(f"{m!r} {what}: got {got!r}, want {want!r}")
        if j.get("warnings"):
            problems.append(f"{m!r}: unexpected warnings {j['warnings']!r}")
    assert not problems, f"{len(problems)} of {len(mails) * 3} checks failed:\n" + "\n".join(problems)


def test_html_only_mail_is_converted_and_alternative_prefers_plain(mg, rdb):
    h = html_mail()
    j = post_mime(mg, rdb, h)
    text = j["text"]
    pos = [text.find(s) for s in h.expect_lines]
    assert all(p >= 0 for p in pos) and pos == sorted(pos), f"text from HTML: {text!r}"
    for junk in ("<", "ignored title", "var x", "color: red", "&amp;", "&agrave;"):
        assert junk not in text, f"{junk!r} in {text!r}"
    assert norm_text(j.get("html")) == norm_text(h.html)

    legacy = html_mail("<html><body><p>Merhaba, yard&#305;ma ihtiyac&#305;m var: ğüşıöç</p></body></html>",
                       expect_lines=["Merhaba, yardıma ihtiyacım var: ğüşıöç"], charset="iso-8859-9",
                       cte="base64")
    j = post_mime(mg, rdb, legacy)
    assert norm_text(j["text"]) == "Merhaba, yardıma ihtiyacım var: ğüşıöç", j["text"]

    alt = alternative_mail("Plain version: tôi cần giúp đỡ", "<p>HTML version: <i>tôi cần giúp đỡ</i></p>")
    j = post_mime(mg, rdb, alt)
    assert norm_text(j["text"]) == "Plain version: tôi cần giúp đỡ", j
    assert "HTML version" in (j.get("html") or ""), j


def test_quoted_history_and_signature_are_trimmed_from_text(mg, rdb):
    body = ("Thanks, but the parcel still has not arrived.\n"
            "Can you check again?\n"
            "\n"
            "-- \n"
            "Ana Lima\n"
            "ACME Corp\n"
            "\n"
            "On Mon, 23 Nov 2026 at 10:00, Example Support\n"
            "<support@example.com> wrote:\n"
            "> We shipped it yesterday.\n"
            "> Ana\n")
    m = plain_mail(body, subject="Re: Order 1042", expect_text=norm_text(body))
    j = post_mime(mg, rdb, m)
    assert norm_text(j["text"]) == "Thanks, but the parcel still has not arrived.\nCan you check again?", j
    full = norm_text(j.get("body_full"))
    assert full == norm_text(body), f"body_full {j.get('body_full')!r}"


def test_broken_mime_is_stored_with_warnings(mg, rdb):
    problems = []
    for kind in ("missing_boundary", "garbage_base64", "unknown_charset", "invalid_utf8"):
        m = broken_mail(kind)
        j = post_mime(mg, rdb, m)
        if not (isinstance(j.get("warnings"), str) and j["warnings"].strip()):
            problems.append(f"{kind}: no warnings: {j!r}")
        if m.text is not None and not norm_text(j.get("text")).startswith(m.text):
            problems.append(f"{kind}: text {j.get('text')!r}, want {m.text!r}")
        if kind == "invalid_utf8" and "\ufffd" not in j.get("text", ""):
            problems.append(f"{kind}: invalid bytes not replaced: {j.get('text')!r}")
    assert not problems, "\n".join(problems)
    assert mg.alive()


def test_auto_submitted_rules(mg, rdb):
    """auto_submitted for Auto-Submitted (other than no), Precedence
    bulk/list/junk, null Return-Path, List-Id / List-Unsubscribe, bounces and
    our own address; a person's mail and `Auto-Submitted: no` are not."""
    machines = [auto_mail(k) for k in AUTO_KINDS]
    for name, hdrs, sender in (("precedence-list", [("Precedence", "list")], None),
                               ("precedence-junk", [("Precedence", "JUNK")], None),
                               ("list-unsubscribe", [("List-Unsubscribe", "<mailto:u@lists.example.org>")], None),
                               ("auto-generated", [("Auto-Submitted", "auto-generated")], None),
                               ("mailer-daemon", [], "MAILER-DAEMON@mx.customer.example")):
        m = plain_mail(f"Machine mail: {name}", subject=name, extra_headers=hdrs, sender=sender)
        m.kind = name
        machines.append(m)
    people = [plain_mail("A person writes.", subject="person"),
              plain_mail("Auto-Submitted: no is a person.", subject="no",
                         extra_headers=[("Auto-Submitted", "no")])]
    wrong = []
    for m in machines:
        if post_mime(mg, rdb, m).get("auto_submitted") is not True:
            wrong.append(f"{m.kind}: not auto_submitted")
    for m in people:
        if post_mime(mg, rdb, m).get("auto_submitted"):
            wrong.append(f"{m.subject}: auto_submitted")
    assert not wrong, wrong
