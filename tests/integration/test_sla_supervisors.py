"""Supervisors hear about SLA breaches and escalations by email (a real
SMTP server on loopback), once per event and address even with two daemons;
agents' webhooks without filters get SLA events too."""

import pytest

from assign_helpers import wait_event
from notify_helpers import SmtpServer
from sla_helpers import api, new_msisdn, say, second_config, sla_config, AGENT


@pytest.fixture
def smtp():
    s = SmtpServer()
    s.start()
    yield s
    s.stop()


@pytest.mark.timeout(40)
def test_breach_emails_every_supervisor_once(start_daemon, sms_config, tmp_path, rdb, smtp):
    cfg = sla_config(sms_config, tmp_path, [{"name": "fast", "queue": ["lobby"],
                                             "first_response": "2s",
                                             "escalation_queue": "tier2"}])
    cfg["notify"] = {"supervisors": {"emails": ["boss@example.com", "lead@example.com"],
                                     "events": ["sla.breached", "conversation.escalated"]},
                     "email": {"server": smtp.address, "from": "omniroute@example.com",
                               "starttls": "disabled", "events": ["conversation.assigned"]}}
    d1 = start_daemon(cfg)
    start_daemon(second_config(cfg))
    api(d1).online(AGENT)
    conv = say(d1, rdb, new_msisdn(), "Waiting in the lobby please")
    wait_event(rdb, "sla.breached", conv=conv, timeout=5)
    wait_event(rdb, "conversation.escalated", conv=conv, timeout=5)
    ids = {eid: f["type"] for eid, f in rdb.xrange("omr:events")
           if f.get("conversation_id") == conv
           and f["type"] in ("sla.breached", "conversation.escalated")}
    assert sorted(ids.values()) == ["conversation.escalated", "sla.breached"], ids
    mails = smtp.wait_mails(4, timeout=10)
    want = sorted(f"{eid}:@sup:{a}" for eid in ids
                  for a in ("boss@example.com", "lead@example.com"))
    assert sorted(m.delivery for m in mails) == want, mails
    for m in mails:
        assert m.delivery.endswith(":@sup:" + m.rcpt_tos[0]), m
        assert m.msg["Auto-Submitted"] == "auto-generated"
    subjects = sorted(m.msg["Subject"] for m in mails)
    assert any("sla.breached (first_response)" in s and conv in s for s in subjects), subjects
    assert any("conversation.escalated" in s and "tier2" in s for s in subjects), subjects
    # The agent's own email target is not used for events that concern no agent.
    assert not [m for m in smtp.mails() if m.rcpt_tos[0] not in
                ("boss@example.com", "lead@example.com")]
