"""Email in through IMAP (issue 6): a real Dovecot on 127.0.0.1 holds the
mailbox, the corpus of email_helpers is delivered into it by IMAP APPEND,
and the daemon polls it. What is checked is what the contract promises:
every Message-ID stored exactly once (across SIGTERM and SIGKILL restarts
in the middle of the mailbox), decoded text, \\Seen or moved only after the
store, the cursor in Redis, attachments referenced by IMAP URLs, broken
MIME stored with warnings, a failing mailbox not stopping the others."""

import base64
import re
import signal
import time

import pytest

from conftest import base_config, free_port, quiet, wait_until
from email_helpers import (  # noqa: F401 - dovecot is a fixture
    BROKEN_KINDS, SALES, SUPPORT, attachment_mail, broken_mail, corpus, dovecot, email_config,
    email_messages, html_mail, mailbox, nfc, norm_text, plain_mail, stored_count, wait_stored)


def start_email(start_daemon, cfg, secrets_dir, dovecot, **imap):
    cfg = email_config(cfg, secrets_dir, [mailbox(secrets_dir=secrets_dir, dovecot=dovecot, imap=imap)])
    return start_daemon(cfg)


def all_seen(dovecot, folder="INBOX", user="alice"):
    fl = dovecot.flags(folder, user)
    return bool(fl) and all("\\Seen" in f for f in fl.values())


def check_message(m, j, problems):
    """Compare the stored message dict j with the corpus mail m."""
    def bad(what, got, want):
        problems.append(f"{m!r}: {what}: got {got!r}, want {want!r}")
    if j.get("channel") != "email":
        bad("channel", j.get("channel"), "email")
    if j.get("provider") != "email:support":
        bad("provider", j.get("provider"), "email:support")
    if j.get("external_id") != m.message_id:
        bad("external_id", j.get("external_id"), m.message_id)
    cust = j.get("customer") or {}
    if cust.get("id") != m.from_addr:
        bad("customer.id", cust.get("id"), m.from_addr)
    if cust.get("handle") != m.from_addr:
        bad("customer.handle", cust.get("handle"), m.from_addr)
    if m.from_name and nfc(cust.get("name")) != nfc(m.from_name):
        bad("customer.name", cust.get("name"), m.from_name)
    if nfc(j.get("subject")) != nfc(m.subject):
        bad("subject", j.get("subject"), m.subject)
    if norm_text(j.get("text")) != m.text:
        bad("text", j.get("text"), m.text)
    if "body_full" in j and norm_text(j["body_full"]) != m.body_full:
        bad("body_full", j.get("body_full"), m.body_full)
    if j.get("warnings"):
        bad("warnings", j.get("warnings"), None)
    if j.get("auto_submitted"):
        bad("auto_submitted", j.get("auto_submitted"), False)


@pytest.mark.timeout(75)
def test_200_mails_in_seven_charsets_ingested_exactly_once_across_restarts(
        dovecot, start_daemon, make_config, secrets_dir, rdb):
    """ACCEPTANCE: 200 mails (UTF-8 + TIS-620, windows-874, windows-1258,
    ISO-8859-9, ISO-2022-JP, GB18030; quoted-printable and base64; B and Q
    encoded subjects and names) are each stored exactly once with the right
    UTF-8 text, although the daemon is stopped (SIGTERM) and killed
    (SIGKILL) in the middle of the mailbox; all end \\Seen and the cursor
    is the last UID."""
    mails = corpus(200)
    uids = dovecot.append(mails)
    validity = dovecot.uidvalidity()
    d = start_email(start_daemon, make_config(), secrets_dir, dovecot, batch=10, poll_interval="200ms")

    def at_least(n):
        return lambda: (lambda c: c if c >= n else None)(stored_count(rdb))

    # A graceful stop a third of the way in ...
    wait_until(at_least(60), 30, interval=0.01, what="60 mails stored")
    rc, _ = d.terminate()
    assert rc == 0, f"SIGTERM exit code {rc}"
    n_term = stored_count(rdb)
    assert n_term < 200, "the SIGTERM restart did not land in the middle of the mailbox"
    d.start()
    d.wait_ready()
    # ... and a crash two thirds of the way in.
    wait_until(at_least(max(n_term + 20, 130)), 30, interval=0.01, what="130 mails stored")
    d.signal(signal.SIGKILL)
    d.proc.wait(5)
    n_kill = stored_count(rdb)
    assert n_kill < 200, "the SIGKILL restart did not land in the middle of the mailbox"
    print(f"restarts after {n_term} (SIGTERM) and {n_kill} (SIGKILL) stored mails")
    d.start()
    d.wait_ready()

    wait_until(lambda: stored_count(rdb) >= 200 and all_seen(dovecot) or None, 30, interval=0.1,
               what="200 mails stored and \\Seen")
    quiet(lambda: stored_count(rdb) == 200, 0.8)  # four more polls: nothing is fetched again

    stored = email_messages(rdb)
    dups = {k: [(c, e) for c, e, _ in v] for k, v in stored.items() if len(v) != 1}
    assert not dups, f"Message-IDs stored more than once: {dups}"
    want = {m.message_id for m in mails}
    assert set(stored) == want, (f"missing: {sorted(want - set(stored))[:10]}, "
                                 f"unexpected: {sorted(set(stored) - want)[:10]}")
    assert len(stored) == 200
    problems = []
    for m in mails:
        check_message(m, stored[m.message_id][0][2], problems)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])
    # One conversation per customer (each mail has its own sender).
    assert len({v[0][0] for v in stored.values()}) == 200

    flags = dovecot.flags()
    assert sorted(flags) == uids
    unseen = [u for u, f in flags.items() if "\\Seen" not in f]
    assert not unseen, f"UIDs not \\Seen: {unseen}"
    assert rdb.get("omr:cursor:imap:support") == f"{validity}:{uids[-1]}"
    assert d.alive()


def test_after_store_move_puts_mail_in_processed(dovecot, start_daemon, make_config, secrets_dir, rdb):
    """after_store: move — ingested mail ends in the move_to folder, INBOX
    empties, each message stored once."""
    dovecot.create("Processed")
    d = start_email(start_daemon, make_config(), secrets_dir, dovecot, after_store="move",
                    move_to="Processed")
    mails = [plain_mail(f"Moved message number {i}, please help.", subject=f"Move {i}") for i in range(5)]
    dovecot.append(mails)  # arrives while the daemon polls
    for m in mails:
        wait_stored(rdb, m.message_id)
    wait_until(lambda: dovecot.status("INBOX")["MESSAGES"] == 0 or None, 10, interval=0.1,
               what="INBOX empty")
    moved = dovecot.message_ids("Processed")
    assert sorted(moved.values()) == sorted(m.message_id for m in mails), moved
    quiet(lambda: all(len(v) == 1 for v in email_messages(rdb).values()), 0.6)
    assert len(email_messages(rdb)) == 5
    assert d.alive()


@pytest.mark.timeout(60)
def test_mail_stays_unseen_while_redis_is_down_and_is_ingested_once_after(
        dovecot, start_daemon, redis_factory, secrets_dir):
    """Redis down: the daemon keeps the mail unseen (nothing was stored);
    once Redis is back each message is stored exactly once and marked."""
    srv = redis_factory("redis-aof", extra_args=["--appendonly", "yes", "--appendfsync", "always"])
    rdb = srv.client()
    cfg = base_config(srv.url, secrets_dir, free_port())
    d = start_email(start_daemon, cfg, secrets_dir, dovecot)
    first = plain_mail("Before the outage: my order is late.")
    u0 = dovecot.append(first)
    wait_stored(rdb, first.message_id)
    wait_until(lambda: "\\Seen" in dovecot.flags()[u0] or None, 5, interval=0.05, what="first \\Seen")

    srv.kill()
    during = [plain_mail(f"Written during the outage, number {i}.") for i in range(3)]
    uids = dovecot.append(during)
    modseq = dovecot.modseqs()
    time.sleep(1.5)  # several poll intervals with Redis down
    flags = dovecot.flags()
    assert all("\\Seen" not in flags[u] for u in uids), f"marked \\Seen without a store: {flags}"
    touched = {u: (modseq[u], m) for u, m in dovecot.modseqs().items() if u in uids and m != modseq[u]}
    assert d.alive()

    srv.start()
    rdb = srv.client()
    for m in during:
        wait_stored(rdb, m.message_id, timeout=20)
    wait_until(lambda: all_seen(dovecot) or None, 10, interval=0.05, what="all \\Seen")
    quiet(lambda: all(len(v) == 1 for v in email_messages(rdb).values()), 0.6)
    stored = email_messages(rdb)
    assert sorted(stored) == sorted([first.message_id] + [m.message_id for m in during])
    # "Marked only after the store": not even a \Seen set while fetching and
    # taken off again when the store failed (CONDSTORE MODSEQ counts both).
    assert not touched, (f"flags of unstored mail changed while Redis was down "
                         f"(uid: (modseq before, after)): {touched}")
    rdb.close()


def test_broken_mime_is_stored_with_warnings_and_later_mail_still_flows(
        dovecot, start_daemon, make_config, secrets_dir, rdb):
    """Missing closing boundary, garbage base64, an unknown charset and
    invalid UTF-8 declared as UTF-8: each is stored (what could be read,
    plus `warnings`), marked \\Seen, and the mail after them is ingested."""
    d = start_email(start_daemon, make_config(), secrets_dir, dovecot)
    broken = [broken_mail(k) for k in BROKEN_KINDS]
    after = plain_mail("A normal message after the broken ones.")
    dovecot.append(broken + [after])
    got = {m.broken: wait_stored(rdb, m.message_id) for m in broken}
    ok = wait_stored(rdb, after.message_id)
    assert norm_text(ok["text"]) == after.text and not ok.get("warnings"), ok
    problems = []
    for m in broken:
        j = got[m.broken]
        if not (isinstance(j.get("warnings"), str) and j["warnings"].strip()):
            problems.append(f"{m.broken}: no warnings in {j!r}")
        if nfc(j.get("subject")) != m.subject:
            problems.append(f"{m.broken}: subject {j.get('subject')!r}")
        if j.get("customer", {}).get("id") != m.from_addr:
            problems.append(f"{m.broken}: customer {j.get('customer')!r}")
    t = {k: norm_text(j.get("text")) for k, j in got.items()}
    if t["missing_boundary"] != "Readable first part before the missing boundary":
        problems.append(f"missing_boundary: text {t['missing_boundary']!r}")
    if not t["unknown_charset"].startswith("Hello, this text declares a charset"):
        problems.append(f"unknown_charset: text {t['unknown_charset']!r}")
    if not (t["invalid_utf8"].startswith("Valid start, then bad bytes:") and "\ufffd" in t["invalid_utf8"]):
        problems.append(f"invalid_utf8: text {t['invalid_utf8']!r}")
    assert not problems, "\n".join(problems)
    wait_until(lambda: all_seen(dovecot) or None, 5, interval=0.05, what="all \\Seen")
    assert d.alive()


def test_attachments_are_imap_references_and_html_only_mail_gives_text(
        dovecot, start_daemon, make_config, secrets_dir, rdb):
    """Attachments are listed with name (RFC 2231 decoded), type, size and
    an IMAP URL whose section, fetched from Dovecot, is the attachment; an
    HTML-only mail's text is made from the HTML, which is kept in `html`."""
    att = attachment_mail()
    html = html_mail()
    d = start_email(start_daemon, make_config(), secrets_dir, dovecot)
    ua, _ = dovecot.append([att, html])
    validity = dovecot.uidvalidity()

    j = wait_stored(rdb, att.message_id)
    assert norm_text(j["text"]) == att.text, j
    got = j["attachments"]
    assert [(a.get("name"), a.get("type"), a.get("size")) for a in got] == \
        [(n, t, len(b)) for n, t, b in att.attachments], got
    rx = re.compile(rf"^imap://127\.0\.0\.1:{dovecot.port}/INBOX;UIDVALIDITY={validity}/;UID={ua};"
                    r"SECTION=([0-9.]+)$")
    for a, (name, _t, data) in zip(got, att.attachments):
        mm = rx.match(a.get("url", ""))
        assert mm, f"attachment url {a.get('url')!r} does not match {rx.pattern}"
        assert base64.b64decode(dovecot.fetch_section(ua, mm.group(1))) == data, \
            f"{a['url']} does not fetch {name}"

    h = wait_stored(rdb, html.message_id)
    text = h["text"]
    pos = [text.find(s) for s in html.expect_lines]
    assert all(p >= 0 for p in pos) and pos == sorted(pos), f"text from HTML: {text!r}"
    for junk in ("<", "ignored title", "var x", "color: red"):
        assert junk not in text, f"{junk!r} in text from HTML: {text!r}"
    assert norm_text(h.get("html")) == norm_text(html.html), h.get("html")
    assert h.get("attachments") == [], h
    assert d.alive()


@pytest.mark.timeout(45)
def test_bad_password_is_logged_and_other_mailbox_keeps_working(
        dovecot, start_daemon, make_config, secrets_dir, rdb):
    """Mailbox support logs in with a wrong password: the daemon logs that
    mailbox's error and keeps running; mailbox sales (another Dovecot user)
    is ingested meanwhile, before and after repeated failures."""
    mbs = [mailbox("support", SUPPORT, secrets_dir=secrets_dir, dovecot=dovecot, user="alice",
                   password="wrong-password"),
           mailbox("sales", SALES, secrets_dir=secrets_dir, dovecot=dovecot, user="bob")]
    for mb in mbs:
        mb["imap"]["poll_interval"] = "200ms"
    lost = plain_mail("For support, whose password is wrong.")
    dovecot.append(lost, user="alice")
    sale = plain_mail("For sales: a quote please.", to=SALES)
    dovecot.append(sale, user="bob")
    d = start_daemon(email_config(make_config(), secrets_dir, mbs))

    j = wait_stored(rdb, sale.message_id, provider="email:sales")
    assert j["provider"] == "email:sales"
    line = d.wait_log(r"(?i)(?=.*\bsupport\b)(?=.*(auth|login|password|credential|denied|fail))", timeout=10)
    assert line
    # Dovecot saw the failed logins.
    assert re.search(r"auth.*(fail|mismatch)|Disconnected.*auth failed", dovecot.log_text(), re.I), \
        dovecot.log_text()[-2000:]
    time.sleep(2.5)  # Dovecot delays a failed login 2 s: let a few attempts fail
    later = plain_mail("Another one for sales.", to=SALES)
    dovecot.append(later, user="bob")
    wait_stored(rdb, later.message_id, provider="email:sales")
    assert d.alive()
    assert d.get("/readyz").status_code == 200
    assert lost.message_id not in email_messages(rdb)
    assert all("\\Seen" not in f for f in dovecot.flags(user="alice").values())
