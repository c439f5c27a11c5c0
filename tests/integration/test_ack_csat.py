"""Auto-acknowledgement (the expected reply time, in the customer's
language, once) and the CSAT survey after resolution (an answer 1-5 is
recorded and does not reopen; anything else reopens) — sent through the real
outbound path to the fake Vonage API; neither counts as an agent's reply."""

import datetime

import requests

import pytest

from conftest import SECRETS, body_bytes, payload, signed_headers
from assign_helpers import conv_hash, events, wait_event, wait_for
from sla_helpers import AGENT, api, new_msisdn, opened_at, reply, say, second_config, sla_config



def post_api(d, **over):
    """A message through the generic webhook (adapter "shop"); returns its
    conversation id."""
    raw = body_bytes(payload(**over))
    r = requests.post(d.url("/v1/inbound/shop"), data=raw,
                      headers=signed_headers(SECRETS["shop"], raw), timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["conversation_id"]

def start(start_daemon, sms_config, tmp_path, n=1, **sla_extra):
    cfg = sla_config(sms_config, tmp_path, [{"name": "sms", "first_response": "2h",
                                             "resolution": "1d"}])
    cfg["sla"].update(sla_extra)
    ds = [start_daemon(cfg)]
    for _ in range(n - 1):
        ds.append(start_daemon(second_config(cfg)))
    api(ds[0]).online(AGENT)
    return ds


def daemon_messages(rdb, conv, source):
    return [(eid, f) for eid, f in rdb.xrange("omr:outbox")
            if f.get("conversation_id") == conv and f.get("source") == source]


ACK = {"enabled": True, "window": "1h", "timezone": "UTC",
       "templates": {"en": "Got it! We will reply by {due_time} on {due_date} ({timezone}).",
                     "vi": "Đã nhận! Chúng tôi sẽ trả lời trước {due_time}."}}


@pytest.mark.timeout(30)
def test_new_conversation_is_acknowledged_once_with_the_due_time(
        start_daemon, sms_config, tmp_path, rdb):
    d1, d2 = start(start_daemon, sms_config, tmp_path, n=2, acknowledge=ACK)
    who = new_msisdn()
    conv = say(d1, rdb, who, "Hello, I would like to know where my order is, please.")
    t0 = opened_at(rdb, conv)
    ev = wait_event(rdb, "conversation.acknowledged", conv=conv, timeout=5)
    due = int(ev["due"])
    assert due == t0 + 2 * 3600 * 1000
    when = datetime.datetime.fromtimestamp(due / 1000, datetime.timezone.utc)
    (eid, msg), = daemon_messages(rdb, conv, "auto-ack")
    assert msg["agent_id"] == "omnirouted"
    assert msg["text"] == f"Got it! We will reply by {when:%H:%M} on {when:%Y-%m-%d} (UTC)."
    # Sent like a reply, but no agent's: clocks and state untouched.
    wait_for(lambda: rdb.hget(f"omr:conv:{{{conv}}}:reply:{eid}", "status") == "sent" or None, 5,
             "acknowledgement sent")
    h = conv_hash(rdb, conv)
    assert h["status"] == "assigned" and h["sla_fr_state"] == "running", h
    assert h["sla_ack"] == "sent"
    # A follow-up is not acknowledged again.
    assert say(d2, rdb, who, "Any news?") == conv
    assert len(events(rdb, "conversation.acknowledged", conv=conv)) == 1
    assert len(daemon_messages(rdb, conv, "auto-ack")) == 1


@pytest.mark.timeout(30)
def test_acknowledgement_speaks_the_customers_language(start_daemon, sms_config, tmp_path, rdb):
    (d,) = start(start_daemon, sms_config, tmp_path, acknowledge=ACK)
    conv = say(d, rdb, new_msisdn(),
               "Xin chào, tôi muốn hỏi về đơn hàng của tôi, khi nào thì được giao vậy?")
    wait_event(rdb, "conversation.acknowledged", conv=conv, timeout=5)
    (_, msg), = daemon_messages(rdb, conv, "auto-ack")
    assert msg["text"].startswith("Đã nhận! Chúng tôi sẽ trả lời trước "), msg


@pytest.mark.timeout(30)
def test_csat_survey_answer_is_recorded_and_does_not_reopen(
        start_daemon, sms_config, tmp_path, rdb):
    csat = {"enabled": True, "window": "1h",
            "templates": {"en": "How did we do? Reply 1 (bad) to 5 (great)."}}
    (d,) = start(start_daemon, sms_config, tmp_path, csat=csat)
    who = new_msisdn()
    conv = say(d, rdb, who, "Hello, my parcel has not arrived yet, can you check?")
    wait_for(lambda: conv_hash(rdb, conv).get("status") == "assigned" or None, 5, "assigned")
    reply(d, rdb, conv)
    r = api(d).resolve(conv, AGENT)
    assert r.status_code == 200, r.text
    (eid, msg), = daemon_messages(rdb, conv, "csat")
    assert msg["text"] == "How did we do? Reply 1 (bad) to 5 (great)."
    assert conv_hash(rdb, conv)["csat_state"] == "asked"

    assert say(d, rdb, who, " 4 ") == conv
    h = conv_hash(rdb, conv)
    assert h["status"] == "resolved" and h["csat_state"] == "answered" and h["csat_score"] == "4"
    (rated,) = events(rdb, "conversation.rated", conv=conv)
    assert rated["score"] == "4" and rated["agent_id"] == AGENT
    stats = api(d).call("GET", "/v1/stats").json()
    (row,) = stats["csat"]
    assert row["answers"] == 1 and row["average"] == 4 and row["scores"]["4"] == 1, row

    # Anything else after the answer is a new question: the conversation reopens.
    assert say(d, rdb, who, "Actually it is broken") == conv
    assert conv_hash(rdb, conv)["status"] in ("open", "assigned")
    assert events(rdb, "conversation.reopened", conv=conv)


@pytest.mark.timeout(30)
def test_auto_submitted_message_is_never_acknowledged(start_daemon, sms_config, tmp_path, rdb):
    """An adapter marks an auto-reply or bulk message (auto_submitted): no
    acknowledgement, so two auto-responders never talk to each other."""
    (d,) = start(start_daemon, sms_config, tmp_path, acknowledge=ACK)

    robot = post_api(d, auto_submitted=True, text="I am out of the office until Monday.")
    human = post_api(d, text="Hello, where is my order? It has been two weeks.")
    wait_event(rdb, "conversation.acknowledged", conv=human, timeout=5)
    wait_for(lambda: conv_hash(rdb, robot).get("sla_fr_due") or None, 5, "fr due computed")
    assert conv_hash(rdb, robot)["sla_ack"] == "skipped: auto-submitted"
    assert not events(rdb, "conversation.acknowledged", conv=robot)
    assert not daemon_messages(rdb, robot, "auto-ack")
    _, fields = rdb.xrange(f"omr:conv:{{{robot}}}:log")[0]
    assert '"auto_submitted":true' in fields["message"]


@pytest.mark.timeout(40)
def test_kpis_on_metrics(start_daemon, sms_config, tmp_path, rdb):
    """/metrics carries the shared KPIs (refreshed from Redis every 10 s):
    response-time histograms, SLA outcomes, CSAT, backlog, agents' load."""
    csat = {"enabled": True, "templates": {"en": "Rate us 1-5"}}
    (d,) = start(start_daemon, sms_config, tmp_path, csat=csat)
    who = new_msisdn()
    conv = say(d, rdb, who, "Hello, my parcel has not arrived yet, can you check?")
    wait_for(lambda: conv_hash(rdb, conv).get("status") == "assigned" or None, 5, "assigned")
    reply(d, rdb, conv)
    assert api(d).resolve(conv, AGENT).status_code == 200
    assert say(d, rdb, who, "5") == conv

    def scraped():
        text = requests.get(d.url("/metrics"), timeout=5).text
        return text if 'omr_csat_answers_total{channel="sms",queue="support",score="5"} 1' in text \
            else None
    text = wait_for(scraped, 15, "KPIs on /metrics")
    assert 'omr_response_time_seconds_count{kind="first_response",channel="sms",' \
           'queue="support"} 1' in text
    assert 'omr_response_time_seconds_bucket{kind="resolution",channel="sms",queue="support",' \
           'le="+Inf"} 1' in text
    assert 'omr_sla_clocks_total{clock="fr",channel="sms",queue="support",outcome="hit"} 1' in text
    assert 'omr_queue_waiting{queue="support"} 0' in text
    assert f'omr_agent_open_conversations{{agent="{AGENT}",presence="online"}} 0' in text


@pytest.mark.timeout(30)
def test_no_survey_to_machines_and_a_new_one_after_reopen(start_daemon, sms_config, tmp_path,
                                                         rdb):
    csat = {"enabled": True, "templates": {"en": "Rate us 1-5"}}
    (d,) = start(start_daemon, sms_config, tmp_path, csat=csat)

    robot = post_api(d, auto_submitted=True, text="Automatic reply: I am away this week.")
    wait_for(lambda: conv_hash(rdb, robot).get("status") == "assigned" or None, 5, "assigned")
    assert api(d).resolve(robot, AGENT).status_code == 200
    assert not daemon_messages(rdb, robot, "csat")

    who = new_msisdn()
    conv = say(d, rdb, who, "Hello, my parcel has not arrived yet, can you check?")
    wait_for(lambda: conv_hash(rdb, conv).get("status") == "assigned" or None, 5, "assigned")
    assert api(d).resolve(conv, AGENT).status_code == 200
    assert len(daemon_messages(rdb, conv, "csat")) == 1
    assert say(d, rdb, who, "Actually, one more question") == conv   # not an answer: reopens
    assert conv_hash(rdb, conv)["csat_state"] == "expired"
    wait_for(lambda: conv_hash(rdb, conv).get("status") == "assigned" or None, 5, "assigned")
    assert api(d).resolve(conv, AGENT).status_code == 200
    assert len(daemon_messages(rdb, conv, "csat")) == 2                # asked again


@pytest.mark.timeout(30)
def test_no_survey_on_social_unless_asked_for(start_daemon, sms_config, tmp_path, rdb):
    """A survey on a social conversation would be a public post: by default
    every channel but social is asked; `channel` lists the ones to ask."""
    def resolved(d, channel):
        conv = post_api(d, channel=channel, text="Where is my order?")
        wait_for(lambda: conv_hash(rdb, conv).get("status") or None, 5, "stored")
        assert api(d).resolve(conv, AGENT).status_code == 200
        return conv

    csat = {"enabled": True, "templates": {"en": "Rate us 1-5"}}
    (d,) = start(start_daemon, sms_config, tmp_path, csat=csat)
    assert not daemon_messages(rdb, resolved(d, "social"), "csat")
    assert len(daemon_messages(rdb, resolved(d, "sms"), "csat")) == 1
    d.terminate()

    rdb.flushall()
    (d,) = start(start_daemon, sms_config, tmp_path, csat=dict(csat, channel=["social"]))
    assert len(daemon_messages(rdb, resolved(d, "social"), "csat")) == 1
    assert not daemon_messages(rdb, resolved(d, "sms"), "csat")
