"""Email out through SMTP (issue 6): agent replies and acknowledgements
arrive at a real SMTP server (aiosmtpd on 127.0.0.1) as RFC 5322 mail
threaded to the customer's message; the customer's answers (IMAP, Dovecot)
join the same conversation by In-Reply-To or by the signed reply address;
a forged token does not; machines get no acknowledgement; a 4xx is retried
and a 5xx fails the reply."""

import re

import pytest

from conftest import quiet, wait_until
from email_helpers import (  # noqa: F401 - dovecot, smtp, smtp_factory are fixtures
    ACK_RE, AUTO_KINDS, SUPPORT, accepted, auto_mail, conv_hash, dovecot, email_config,
    log_of, mailbox, norm_text, plain_mail, post_reply, smtp, smtp_factory,
    wait_reply, wait_stored)

TOKEN_ADDR = re.compile(r"^support\+([^@]+)@example\.com$")
MSGID = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")


def start(start_daemon, make_config, secrets_dir, dovecot, smtp, ack=False):
    mb = mailbox(secrets_dir=secrets_dir, dovecot=dovecot, smtp=smtp, imap={"poll_interval": "150ms"})
    return start_daemon(email_config(make_config(), secrets_dir, [mb], ack=ack))


def customer_says(dovecot, rdb, mail, timeout=10):
    """Deliver `mail` into the mailbox; the stored message dict."""
    dovecot.append(mail)
    return wait_stored(rdb, mail.message_id, timeout=timeout)


def msgid_of(mail):
    return mail.msg["Message-ID"].strip()


def refs(msg):
    return (msg["References"] or "").split()


def check_reply_mail(mail, *, to, text, subject, in_reply_to):
    """The headers and body every agent reply must have."""
    msg = mail.msg
    assert mail.rcpt_tos == [to], mail.rcpt_tos
    assert all(b < 128 for b in mail.content), "8-bit bytes in the mail (no SMTPUTF8 was asked for)"
    (frm,) = msg["From"].addresses
    assert (frm.display_name, frm.addr_spec) == ("Example Support", SUPPORT), str(msg["From"])
    (rt,) = msg["Reply-To"].addresses
    assert TOKEN_ADDR.match(rt.addr_spec), f"Reply-To {rt.addr_spec!r} has no token"
    assert msg["Subject"] == subject, msg["Subject"]
    assert msg["In-Reply-To"].strip() == f"<{in_reply_to}>", msg["In-Reply-To"]
    assert refs(msg) and refs(msg)[-1] == f"<{in_reply_to}>", msg["References"]
    assert MSGID.match(msgid_of(mail)), msg["Message-ID"]
    assert msg["Date"], "no Date header"
    assert msg["MIME-Version"] == "1.0", msg["MIME-Version"]
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8", \
        msg["Content-Type"]
    # UTF-8 needs quoted-printable or base64 (no SMTPUTF8/8BITMIME assumed);
    # plain ASCII may also go as 7bit.
    allowed = ("quoted-printable", "base64") if not text.isascii() else \
        ("quoted-printable", "base64", "7bit", None)
    cte = msg["Content-Transfer-Encoding"]
    assert (cte.strip().lower() if cte else None) in allowed, f"Content-Transfer-Encoding {cte!r}"
    assert norm_text(msg.get_content()) == norm_text(text), msg.get_content()
    assert msg["Auto-Submitted"] is None, "an agent's reply must not say Auto-Submitted"
    return TOKEN_ADDR.match(rt.addr_spec).group(1)


@pytest.mark.timeout(60)
def test_reply_is_threaded_and_the_customers_answers_join_the_conversation(
        dovecot, smtp, start_daemon, make_config, secrets_dir, rdb):
    """ACCEPTANCE: the agent reply arrives with In-Reply-To = the customer's
    Message-ID, References ending with it, Reply-To with a token, Subject
    "Re: …", a UTF-8 body; the answer to it (In-Reply-To = our Message-ID)
    and a mail sent only to the reply-token address (no In-Reply-To or
    References) both join the same conversation."""
    d = start(start_daemon, make_config, secrets_dir, dovecot, smtp)
    zoe = "zoe.martin@customer.example"
    first = plain_mail("Bonjour, ma commande 1042 n'est pas arrivée.\nMerci d'avance", sender=zoe,
                       name="Zoë Martin", subject="Problème de livraison")
    j = customer_says(dovecot, rdb, first)
    conv = j["conversation_id"]

    text = "Xin chào Zoë! Đơn hàng đã được gửi hôm nay — merci beaucoup ✓\nAna"
    rid = accepted(post_reply(d, conv, text))
    (mail,) = smtp.wait_mails(1, to=zoe, timeout=8)
    token = check_reply_mail(mail, to=zoe, text=text, subject="Re: Problème de livraison",
                             in_reply_to=first.message_id)
    ours = msgid_of(mail)[1:-1]
    assert ours != first.message_id
    wait_reply(rdb, conv, rid, "sent")
    outs = [m for _, f, m in log_of(rdb, conv) if f.get("direction") == "out"]
    assert len(outs) == 1 and norm_text(outs[0]["text"]) == norm_text(text), outs

    # The customer answers our mail: In-Reply-To is our Message-ID only.
    ans1 = plain_mail("Merci, mais quand exactement ?\n\n"
                      "Le lun. 23 nov. 2026 à 10:00, Example Support <support@example.com> a écrit :\n"
                      "> Xin chào Zoë! Đơn hàng đã được gửi hôm nay\n> Ana\n",
                      sender=zoe, name="Zoë Martin", subject="Re: Problème de livraison",
                      in_reply_to=ours, references=[first.message_id, ours])
    j1 = customer_says(dovecot, rdb, ans1)
    assert j1["conversation_id"] == conv, "the answer to our reply opened another conversation"
    assert norm_text(j1["text"]) == "Merci, mais quand exactement ?", j1["text"]
    assert "> Xin chào" in j1.get("body_full", ""), j1

    # The second reply answers the customer's latest mail, no "Re: Re:".
    text2 = "Demain avant midi."
    accepted(post_reply(d, conv, text2))
    mail2 = smtp.wait_mails(2, to=zoe, timeout=8)[1]
    token2 = check_reply_mail(mail2, to=zoe, text=text2, subject="Re: Problème de livraison",
                              in_reply_to=ans1.message_id)
    assert f"<{first.message_id}>" in refs(mail2.msg), mail2.msg["References"]
    assert token2 == token, "the reply token of one conversation changed"

    # A new mail only to the reply-token address, no In-Reply-To/References.
    ans2 = plain_mail("Une autre question : puis-je changer l'adresse de livraison ?", sender=zoe,
                      subject="Autre question", to=f"support+{token}@example.com")
    j2 = customer_says(dovecot, rdb, ans2)
    assert j2["conversation_id"] == conv, "a mail to the reply-token address opened another conversation"
    assert conv_hash(rdb, conv)["message_count"] == "3"
    assert d.alive()


def test_forged_reply_token_does_not_thread(dovecot, smtp, start_daemon, make_config, secrets_dir, rdb):
    """A reply address or Message-ID whose token signature was changed does
    not put a mail into the conversation it names."""
    d = start(start_daemon, make_config, secrets_dir, dovecot, smtp)
    max_ = "max@customer.example"
    first = plain_mail("Hello, my invoice is wrong.", sender=max_, subject="Invoice")
    conv = customer_says(dovecot, rdb, first)["conversation_id"]
    accepted(post_reply(d, conv, "Which invoice number?"))
    (mail,) = smtp.wait_mails(1, to=max_, timeout=8)
    token = TOKEN_ADDR.match(mail.msg["Reply-To"].addresses[0].addr_spec).group(1)
    ours = msgid_of(mail)[1:-1]

    def forge(s):
        last = s[-1]
        return s[:-1] + ("0" if last != "0" else "1")

    forged = forge(token)
    assert forged != token
    m1 = plain_mail("Forged reply address.", sender=max_, subject="Forged",
                    to=f"support+{forged}@example.com")
    j1 = customer_says(dovecot, rdb, m1)
    assert j1["conversation_id"] != conv, "a forged reply token threaded into the conversation"
    assert token in ours, f"expected our Message-ID {ours!r} to carry the token"
    forged_id = ours.replace(token, forged)
    m2 = plain_mail("Forged In-Reply-To.", sender=max_, subject="Forged 2", in_reply_to=forged_id,
                    references=[forged_id])
    j2 = customer_says(dovecot, rdb, m2)
    assert j2["conversation_id"] != conv, "a forged Message-ID token threaded into the conversation"
    assert d.alive()


@pytest.mark.timeout(45)
def test_machines_get_no_acknowledgement_and_people_get_one(
        dovecot, smtp, start_daemon, make_config, secrets_dir, rdb):
    """ACCEPTANCE: with sla.acknowledge on, mail with Auto-Submitted:
    auto-replied, Precedence: bulk, Return-Path: <>, List-Id, or from our own
    address is marked auto_submitted and gets no acknowledgement; a normal
    mail gets exactly one, itself marked Auto-Submitted: auto-replied and
    threaded to the customer's mail."""
    d = start(start_daemon, make_config, secrets_dir, dovecot, smtp, ack=True)
    autos = [auto_mail(k) for k in AUTO_KINDS]
    person = plain_mail("Hello, my order 1042 has not arrived yet. Can you help me?",
                        sender="person@customer.example", subject="Where is my order?")
    dovecot.append(autos + [person])

    jp = wait_stored(rdb, person.message_id)
    assert not jp.get("auto_submitted"), jp
    (ack,) = smtp.wait_mails(1, to=person.from_addr, timeout=10)
    assert ack.msg["Auto-Submitted"] == "auto-replied", ack.msg["Auto-Submitted"]
    assert ack.msg["In-Reply-To"].strip() == f"<{person.message_id}>", ack.msg["In-Reply-To"]
    assert ack.msg["Subject"] == "Re: Where is my order?", ack.msg["Subject"]
    assert ACK_RE.match(norm_text(ack.msg.get_content())), ack.msg.get_content()
    wait_until(lambda: conv_hash(rdb, jp["conversation_id"]).get("sla_ack") == "sent" or None, 5,
               what="sla_ack sent")

    for m in autos:
        j = wait_stored(rdb, m.message_id)
        assert j.get("auto_submitted") is True, f"{m.kind}: not auto_submitted: {j!r}"
        c = j["conversation_id"]
        h = wait_until(lambda: (lambda h: h if h.get("sla_ack") else None)(conv_hash(rdb, c)), 5,
                       what=f"sla_ack of {m.kind}")
        assert h["sla_ack"].startswith("skipped"), f"{m.kind}: sla_ack {h['sla_ack']!r}"
    quiet(lambda: len(smtp.mails()) == 1, 1.0)
    assert not smtp.rejected
    assert d.alive()


def test_temporary_smtp_failure_is_retried_and_delivered_once(
        dovecot, smtp_factory, start_daemon, make_config, secrets_dir, rdb):
    """451 at RCPT: the reply is retried with backoff and delivered once."""
    who = "busy@customer.example"
    srv = smtp_factory(rcpt_script={who: ["451 4.3.0 Mailbox busy, try again later"]})
    d = start(start_daemon, make_config, secrets_dir, dovecot, srv)
    conv = customer_says(dovecot, rdb, plain_mail("Help me please.", sender=who))["conversation_id"]
    rid = accepted(post_reply(d, conv, "Here is the help you asked for."))
    (mail,) = srv.wait_mails(1, to=who, timeout=10)
    h = wait_reply(rdb, conv, rid, "sent")
    assert int(h["attempts"]) == 2, h
    assert [r[0] for r in srv.rejected] == ["rcpt"] and "451" in srv.rejected[0][2], srv.rejected
    quiet(lambda: len(srv.mails()) == 1, 1.0)
    outs = [1 for _, f, _ in log_of(rdb, conv) if f.get("direction") == "out"]
    assert len(outs) == 1
    assert d.alive()


def test_permanent_smtp_failure_fails_the_reply(
        dovecot, smtp_factory, start_daemon, make_config, secrets_dir, rdb):
    """550 at RCPT: the reply is failed (with the server's answer), not
    retried, and nothing is logged as sent."""
    who = "gone@customer.example"
    srv = smtp_factory(reject_rcpt={who})
    d = start(start_daemon, make_config, secrets_dir, dovecot, srv)
    conv = customer_says(dovecot, rdb, plain_mail("Help me please.", sender=who))["conversation_id"]
    rid = accepted(post_reply(d, conv, "This will bounce."))
    h = wait_reply(rdb, conv, rid, "failed")
    assert "550" in h.get("error", ""), h
    quiet(lambda: len(srv.rejected) == 1 and not srv.mails(), 1.5)
    assert not [1 for _, f, _ in log_of(rdb, conv) if f.get("direction") == "out"]
    failed = [f for _, f in rdb.xrange("omr:events") if f.get("type") == "reply.failed"]
    assert [f.get("reply_id") for f in failed] == [rid], failed
    assert d.alive()
