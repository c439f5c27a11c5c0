"""Helpers for the SLA clock tests (issue 5, part 1): a config with queues,
one agent, SLA policies and calendars; customers writing over Vonage SMS
(the unsigned "open" account, so no signature co-process is needed) and
agents replying through the replies API to the fake provider, so the
outbound engine takes each reply (reply_begin.lua) as in production.

Spec: /work/spec/sla.md, docs/sla.md; daemon/sla.c and daemon/sla_*.lua
are the truth."""

import copy
import random
import time

from assign_helpers import Api, agent_conf, conv_hash, events, routing_config, wait_for
from conftest import free_port
from sms_helpers import HELPDESK, accepted_reply, post_reply, send_vonage, stored_one, \
    vonage_params, wait_reply_hash

AGENT = "ana"


def push(offer_timeout="0"):
    """A push queue; offer_timeout 0 assigns without an offer."""
    return {"mode": "push", "offer_timeout": offer_timeout}


def sla_config(sms_config, tmp_path, policies, calendars=None, agents=(AGENT,)):
    """sms_config() with routing:
        text contains "lobby"  -> queue lobby (push, nobody serves it)
        text contains "rush"   -> queue support, priority urgent
        anything else          -> queue support (push, offer_timeout 0: ana)
    tier2 is a pull queue nobody serves (an escalation target). SLA
    policies and calendars as given."""
    cfg = routing_config(
        sms_config(), tmp_path,
        queues={"support": push(), "lobby": push(), "tier2": {"mode": "pull"}},
        agents=[agent_conf(a, ["support"], {"sms": 20}) for a in agents],
        rules=[{"name": "lobby", "keywords": ["lobby"], "queue": "lobby"},
               {"name": "rush", "keywords": ["rush"], "queue": "support", "priority": "urgent"}],
        default_queue="support")
    cfg["sla"] = {"policies": copy.deepcopy(list(policies))}
    if calendars:
        cfg["calendars"] = copy.deepcopy(calendars)
    return cfg


def second_config(cfg):
    c = copy.deepcopy(cfg)
    c["http"]["listen"] = f"127.0.0.1:{free_port()}"
    return c


def api(daemon):
    return Api(daemon, token=HELPDESK)


def new_msisdn():
    return "1415" + "".join(random.choice("0123456789") for _ in range(7))


def say(daemon, rdb, msisdn, text="Hello, I need help with my order"):
    """A customer SMS (Vonage, unsigned account "open"); returns the
    conversation id it was stored in."""
    p = vonage_params(account="open", msisdn=msisdn, text=text)
    r = send_vonage(daemon, p, account="open")
    assert r.status_code == 200, f"inbound refused: {r.status_code} {r.text!r}"
    return stored_one(rdb, p["messageId"])[2]["conversation_id"]


def reply(daemon, rdb, conv, text="Thanks, we are looking into it.", agent=AGENT):
    """An agent reply through POST /v1/conversations/{id}/replies; returns
    once the outbound engine has taken it and the fake provider sent it."""
    rid = accepted_reply(post_reply(daemon, conv, text, agent_id=agent))
    wait_reply_hash(rdb, conv, rid, {"sent", "delivered"}, timeout=5)
    return rid


def outbox_reply(rdb, conv, text="Thanks, we are looking into it.", agent=AGENT):
    """An agent tool writing straight into omr:outbox (docs/redis.md)."""
    return rdb.xadd("omr:outbox", {"conversation_id": conv, "agent_id": agent, "text": text})


def wait_status(rdb, conv, status, timeout=5.0):
    return wait_for(lambda: conv_hash(rdb, conv) if conv_hash(rdb, conv).get("status") == status
                    else None, timeout, f"{conv} {status}", interval=0.005)


def opened_at(rdb, conv):
    (ev,) = events(rdb, "conversation.opened", conv=conv)
    return int(ev["at"])


def sla_events(rdb, conv, clock=None):
    """(type, fields) of the conversation's sla.warning / sla.breached events."""
    out = []
    for f in events(rdb, ("sla.warning", "sla.breached"), conv=conv):
        if clock is None or f.get("clock") == clock:
            out.append((f["type"], f))
    return out


def wait_sla(rdb, conv, type_, clock, timeout, n=1):
    def found():
        got = [f for t, f in sla_events(rdb, conv, clock) if t == type_]
        return got[n - 1] if len(got) >= n else None
    return wait_for(found, timeout, f"{type_} {clock} #{n} for {conv}", interval=0.01)


def due_members(rdb, conv):
    return {m: int(float(s)) for m, s in rdb.zrange("omr:sla:due", 0, -1, withscores=True)
            if m.startswith(conv + "|")}


def quiet(rdb, convs, seconds, types=("sla.warning", "sla.breached")):
    """Nothing of `types` for any of convs during `seconds` beyond what is
    there now. Returns nothing; raises on a new event."""
    before = {c: len(events(rdb, types, conv=c)) for c in convs}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for c in convs:
            now = events(rdb, types, conv=c)
            assert len(now) == before[c], f"unexpected event(s) for {c}: {now[before[c]:]}"
        time.sleep(0.05)


def now_ms():
    return int(time.time() * 1000)
