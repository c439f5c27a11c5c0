"""A chat reply the visitor does not see is emailed to the address they
left, after connectors.chat.offline_email.after, through the mailbox's
SMTP (a real aiosmtpd on 127.0.0.1); a reply shown on a socket in time is
not; a visitor without an email gets none."""

import asyncio
import json
import time

import websockets

from chat_helpers import ORIGIN, SITE, chat_config, reply
from email_helpers import mailbox, smtp, smtp_factory  # noqa: F401 - fixtures


def start(start_daemon, make_config, secrets_dir, smtp):
    cfg = chat_config(make_config(), secrets_dir)
    cfg["connectors"]["email"] = {"mailboxes": [mailbox(secrets_dir=secrets_dir, smtp=smtp)]}
    cfg["connectors"]["chat"]["offline_email"] = {"mailbox": "support", "after": "1s"}
    return start_daemon(cfg)


def ws_url(d):
    return d.url(f"/v1/chat/ws?site={SITE}").replace("http://", "ws://")


async def visitor_says(d, text, email=None):
    """Connects, says text, disconnects; (conversation id, token)."""
    async with websockets.connect(ws_url(d), origin=ORIGIN) as ws:
        hello = {"type": "hello", "name": "Zoë"}
        if email:
            hello["email"] = email
        await ws.send(json.dumps(hello))
        w = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "message", "client_id": "m1", "text": text}))
        while True:
            a = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if a["type"] == "ack":
                return a["conversation_id"], w["token"]


def test_unseen_reply_is_emailed_once(start_daemon, make_config, secrets_dir, smtp):
    d = start(start_daemon, make_config, secrets_dir, smtp)
    conv, _ = asyncio.run(visitor_says(d, "Where is my parcel?", email="zoe@customer.example"))
    reply(d, conv, "It left the depot this morning.")
    (mail,) = smtp.wait_mails(1, to="zoe@customer.example", timeout=8)
    body = mail.msg.get_content()
    assert "It left the depot this morning." in body, body
    assert mail.msg["Auto-Submitted"] == "auto-replied", mail.msg["Auto-Submitted"]
    time.sleep(1.5)
    assert len(smtp.mails("zoe@customer.example")) == 1, "the reply was emailed twice"


def test_reply_seen_on_the_socket_is_not_emailed(start_daemon, make_config, secrets_dir, smtp):
    d = start(start_daemon, make_config, secrets_dir, smtp)

    async def run():
        async with websockets.connect(ws_url(d), origin=ORIGIN) as ws:
            await ws.send(json.dumps({"type": "hello", "email": "max@customer.example"}))
            json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "message", "client_id": "m1", "text": "Hello?"}))
            conv = None
            while conv is None:
                a = json.loads(await asyncio.wait_for(ws.recv(), 5))
                conv = a.get("conversation_id") if a["type"] == "ack" else None
            await asyncio.get_running_loop().run_in_executor(None, reply, d, conv, "Hi Max!")
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if m["type"] == "message" and m["direction"] == "out":
                    return m
    m = asyncio.run(run())
    assert m["text"] == "Hi Max!"
    time.sleep(2.5)
    assert smtp.mails("max@customer.example") == [], "a reply the visitor saw was emailed"


def test_visitor_without_email_gets_no_mail(start_daemon, make_config, secrets_dir, smtp):
    d = start(start_daemon, make_config, secrets_dir, smtp)
    conv, _ = asyncio.run(visitor_says(d, "Anyone there?"))
    reply(d, conv, "Yes, sorry for the wait.")
    time.sleep(2.5)
    assert smtp.mails() == []
