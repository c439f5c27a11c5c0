"""Routing and assignment (issue 4): push offers and their timeouts, decline,
sticky agents, presence expiry, pull claims and their timeout, priority
order, strategies, the conversation lifecycle, rules that feed assignment,
and the agents API. Real redis-server, real daemons; see
/work/spec/routing-behaviour.md and routing-api.md."""

import json
import time

import pytest

from assign_helpers import (TOKEN, Api, Heartbeat, agent_conf, agent_hash, all_events,
                            assigned_agent, conv_hash, conv_types, events, inbox, ok,
                            post_message, routing_config, wait_event, wait_for)
from conftest import assert_error, uid

SWEEP_SLACK_MS = 1500  # the sweep runs once a second; allow for a busy machine


@pytest.fixture
def routed(start_daemon, make_config, tmp_path):
    """start(**routing_config kwargs) -> (daemon, Api)."""
    def start(**kw):
        cfg = routing_config(make_config(), tmp_path, **kw)
        d = start_daemon(cfg)
        return d, Api(d)
    return start


def at(ev):
    return int(ev["at"])


def push(offer_timeout="30s", **kw):
    q = {"mode": "push", "offer_timeout": offer_timeout}
    q.update(kw)
    return q


def new_conv(d, text="Hello, I have a question about my order please.", **kw):
    return post_message(d, text, **kw)["conversation_id"]


def no_event_for(rdb, seconds, type_, conv=None, agent=None):
    """A negative check: nothing of the kind within `seconds` (covers sweeps)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = events(rdb, type_, conv=conv, agent=agent)
        assert not got, got
        time.sleep(0.05)


# --------------------------------------------------------------------------
# 3. offers that are not accepted


def test_offer_expires_and_goes_to_the_other_agent(routed, rdb):
    d, api = routed(queues={"support": push("2s")},
                    agents=[agent_conf("xena", ["support"], {"chat": 2}),
                            agent_conf("yuri", ["support"], {"chat": 2})])
    with Heartbeat(d, ["xena", "yuri"]) as hb:
        conv = new_conv(d)
        first = wait_event(rdb, "conversation.offered", conv=conv, timeout=3)
        a1 = first["agent_id"]
        a2 = {"xena": "yuri", "yuri": "xena"}[a1]
        assert int(first["deadline"]) == at(first) + 2000, first
        assert first["via"] == "push" and first["by"] == "omnirouted", first
        h = conv_hash(rdb, conv)
        assert h["status"] == "offered" and h["offer_agent"] == a1, h
        assert agent_hash(rdb, a1)["load:chat"] == "1"  # an offer reserves capacity
        offers = [f for f in inbox(rdb, a1) if f["kind"] == "offer"]
        assert [(f["conversation_id"], f["deadline"]) for f in offers] == \
            [(conv, first["deadline"])], offers

        exp = wait_event(rdb, "conversation.offer_expired", conv=conv, timeout=5)
        assert exp["agent_id"] == a1 and exp["by"] == "omnirouted", exp
        assert 2000 <= at(exp) - at(first) <= 2000 + SWEEP_SLACK_MS, (first, exp)
        second = wait_event(rdb, "conversation.offered", conv=conv, n=2, timeout=3)
        assert second["agent_id"] == a2, second
        assert at(second) - at(exp) < 1000, (exp, second)
        assert agent_hash(rdb, a1)["load:chat"] == "0"
        assert json.loads(conv_hash(rdb, conv)["declined"]) == [a1]

        assert_error(api.accept(conv, a1), 409, "not_offered")
        c = ok(api.accept(conv, a2))["conversation"]
        assert c["status"] == "assigned" and c["agent_id"] == a2, c
        asg = wait_event(rdb, "conversation.assigned", conv=conv, timeout=1)
        assert asg["agent_id"] == a2 and asg["via"] == "push" and asg["by"] == a2, asg
        assert (asg["load"], asg["capacity"]) == ("1", "2"), asg
        assert conv_types(rdb, conv).count("conversation.offered") == 2
        assert not hb.errors, hb.errors


def test_after_everyone_let_it_lapse_a_new_round_starts_elsewhere(routed, rdb):
    """An offer is not made again to an agent who let it lapse while another
    fit agent has not had it; once every fit agent declined, a new round
    starts, with someone other than the last one (daemon/assign.lua)."""
    d, api = routed(queues={"support": push("1s")},
                    agents=[agent_conf("xena", ["support"], {"chat": 2}),
                            agent_conf("yuri", ["support"], {"chat": 2}),
                            agent_conf("zack", ["support"], {"chat": 2})])
    with Heartbeat(d, ["xena"]) as hb:
        conv = new_conv(d)
        assert wait_event(rdb, "conversation.offered", conv=conv)["agent_id"] == "xena"
        wait_event(rdb, "conversation.offer_expired", conv=conv, timeout=4)
        # The only fit agent let it lapse: round two, the same agent again.
        again = wait_event(rdb, "conversation.offered", conv=conv, n=2, timeout=3)
        assert again["agent_id"] == "xena", again
        assert json.loads(conv_hash(rdb, conv)["declined"]) == []
        ok(api.decline(conv, "xena"))
        third = wait_event(rdb, "conversation.offered", conv=conv, n=3, timeout=3)
        assert third["agent_id"] == "xena", third

        # yuri comes online while it is offered to xena; xena lets it lapse.
        hb.add("yuri")
        fourth = wait_event(rdb, "conversation.offered", conv=conv, n=4, timeout=4)
        assert fourth["agent_id"] == "yuri", fourth
        assert json.loads(conv_hash(rdb, conv)["declined"]) == ["xena"]
        # yuri lets it lapse too: everyone declined, new round, not yuri.
        fifth = wait_event(rdb, "conversation.offered", conv=conv, n=5, timeout=4)
        assert fifth["agent_id"] == "xena", fifth
        exp = events(rdb, "conversation.offer_expired", conv=conv)
        assert [f["agent_id"] for f in exp] == ["xena", "xena", "yuri"], exp
        assert [f["agent_id"] for f in events(rdb, "conversation.declined", conv=conv)] == \
            ["xena"]
        ok(api.accept(conv, "xena"))
        assert conv_hash(rdb, conv)["status"] == "assigned"
        # zack never came online: never offered.
        assert not events(rdb, ("conversation.offered", "conversation.assigned"), agent="zack")


# --------------------------------------------------------------------------
# 4. decline


def test_decline_offers_it_to_the_next_agent(routed, rdb):
    d, api = routed(queues={"support": push("30s")},
                    agents=[agent_conf("xena", ["support"], {"chat": 2}),
                            agent_conf("yuri", ["support"], {"chat": 2})])
    with Heartbeat(d, ["xena", "yuri"]):
        conv = new_conv(d)
        first = wait_event(rdb, "conversation.offered", conv=conv)
        a1 = first["agent_id"]
        a2 = {"xena": "yuri", "yuri": "xena"}[a1]
        enq = conv_hash(rdb, conv)["enqueued_at"]
        assert_error(api.decline(conv, a2), 409, "not_offered")  # not offered to a2
        c = ok(api.decline(conv, a1, reason="busy with a call"))["conversation"]
        assert c["status"] in ("open", "offered"), c
        dec = wait_event(rdb, "conversation.declined", conv=conv, timeout=1)
        assert (dec["agent_id"], dec["by"], dec["reason"]) == (a1, a1, "busy with a call"), dec
        second = wait_event(rdb, "conversation.offered", conv=conv, n=2, timeout=2)
        assert second["agent_id"] == a2, second
        assert at(second) - at(dec) < 1000, (dec, second)
        assert agent_hash(rdb, a1)["load:chat"] == "0"
        assert_error(api.accept(conv, a1), 409, "not_offered")

        # a2 declines too: every fit agent declined, so a new round starts
        # with someone other than the last one, keeping its place in line.
        ok(api.decline(conv, a2))
        third = wait_event(rdb, "conversation.offered", conv=conv, n=3, timeout=2)
        assert third["agent_id"] == a1, third
        h = conv_hash(rdb, conv)
        assert h["enqueued_at"] == enq and json.loads(h["declined"]) == [], (enq, h)
        c = ok(api.accept(conv, a1))["conversation"]
        assert (c["status"], c["agent_id"]) == ("assigned", a1), c


# --------------------------------------------------------------------------
# 5. sticky


def test_sticky_agent_gets_the_customer_back_when_it_fits(routed, rdb):
    d, api = routed(queues={"support": push(0, strategy="least_busy")},
                    agents=[agent_conf("xena", ["support"], {"chat": 2}),
                            agent_conf("yuri", ["support"], {"chat": 10})])
    cust = {"id": uid("cust"), "name": "Carla"}
    with Heartbeat(d, ["xena"]) as hb:
        c1 = new_conv(d, customer=cust, thread="t1")
        other = new_conv(d)
        assert assigned_agent(rdb, c1) == "xena" and assigned_agent(rdb, other) == "xena"
        ok(api.resolve(c1, "xena"))
        hb.add("yuri")
        # The strategy now prefers yuri (0/10 busy vs xena's 1/2):
        ctrl = new_conv(d)
        assert assigned_agent(rdb, ctrl) == "yuri"

        # A new conversation of the same customer: sticky to xena.
        c2 = new_conv(d, customer=cust, thread="t2")
        h = conv_hash(rdb, c2)
        assert h["sticky_agent"] == "xena" and h["returning"] == "1", h
        assert assigned_agent(rdb, c2) == "xena"
        ok(api.resolve(c2, "xena"))

        # The customer writes again on the resolved thread: reopened, xena.
        j = post_message(d, "Hello again, the problem is back unfortunately.", customer=cust,
                         thread="t1")
        assert j["conversation_id"] == c1 and j["new_conversation"] is False, j
        reo = wait_event(rdb, "conversation.reopened", conv=c1)
        assert reo["agent_id"] == "xena" and reo["by"] == "customer", reo
        asg = wait_event(rdb, "conversation.assigned", conv=c1, n=2)
        assert asg["agent_id"] == "xena", asg
        assert agent_hash(rdb, "xena")["load:chat"] == "2"  # full now

        # xena has no room: the customer's next conversation goes elsewhere.
        c3 = new_conv(d, customer=cust, thread="t3")
        assert conv_hash(rdb, c3)["sticky_agent"] == "xena"
        assert assigned_agent(rdb, c3) == "yuri"
        assert not [f for f in events(rdb, "conversation.offered")], "offer_timeout 0 offers"


def test_sticky_can_be_switched_off(routed, rdb):
    d, api = routed(queues={"support": push(0, strategy="least_busy", sticky=False)},
                    agents=[agent_conf("xena", ["support"], {"chat": 2}),
                            agent_conf("yuri", ["support"], {"chat": 10})])
    cust = {"id": uid("cust")}
    with Heartbeat(d, ["xena"]) as hb:
        c1 = new_conv(d, customer=cust, thread="t1")
        assert assigned_agent(rdb, c1) == "xena"
        hb.add("yuri")
        c2 = new_conv(d, customer=cust, thread="t2")
        assert conv_hash(rdb, c2)["sticky_agent"] == "xena"
        assert assigned_agent(rdb, c2) == "yuri"  # least_busy: 0/10 < 1/2


# --------------------------------------------------------------------------
# 6. presence expiry


def test_presence_expires_without_heartbeat_and_offers_move(routed, rdb):
    d, api = routed(queues={"support": push("30s")}, heartbeat="2s",
                    agents=[agent_conf("pia", ["support"], {"chat": 2}),
                            agent_conf("quinn", ["support"], {"chat": 1})])
    r = ok(api.presence("pia", "online"))
    assert r["status"] == "online" and r["agent_id"] == "pia", r
    expires = r["expires_at"]
    assert abs(expires - (time.time() * 1000 + 2000)) < 1000, r
    c1 = new_conv(d)
    assert wait_event(rdb, "conversation.offered", conv=c1)["agent_id"] == "pia"
    with Heartbeat(d, ["quinn"]):
        ev = wait_event(rdb, "agent.presence", agent="pia", n=2, timeout=5,
                        what="pia offline by heartbeat timeout")
        assert (ev["from"], ev["to"], ev["by"], ev["reason"]) == \
            ("online", "offline", "omnirouted", "heartbeat timeout"), ev
        assert expires <= at(ev) <= expires + SWEEP_SLACK_MS, (expires, ev)
        a = api.agent("pia")
        assert a["presence"] == "offline" and a["presence_expires_at"] is None, a
        # Its pending offer was withdrawn and offered to quinn.
        wd = wait_event(rdb, "conversation.offer_withdrawn", conv=c1)
        assert wd["agent_id"] == "pia" and wd["by"] == "omnirouted", wd
        assert "heartbeat" in wd["reason"], wd
        second = wait_event(rdb, "conversation.offered", conv=c1, n=2)
        assert second["agent_id"] == "quinn" and at(second) - at(wd) < 1000, second
        assert a["load"].get("chat", 0) == 0, a

        # quinn is full; pia is offline: a new conversation waits, no offer to pia.
        c2 = new_conv(d)
        no_event_for(rdb, 2.2, "conversation.offered", conv=c2)
        assert conv_hash(rdb, c2)["status"] == "open"
        # pia back online: offered at once.
        t0 = time.time() * 1000
        api.online("pia")
        off = wait_event(rdb, "conversation.offered", conv=c2, timeout=2)
        assert off["agent_id"] == "pia" and at(off) - t0 < 1000, off


# --------------------------------------------------------------------------
# 7. pull claims and their timeout


def desk_config(**q):
    queue = {"mode": "pull", "claim_timeout": "2s"}
    queue.update(q)
    return dict(queues={"desk": queue}, default_queue="desk",
                agents=[agent_conf("amy", ["desk"], {"chat": 3}),
                        agent_conf("ben", ["desk"], {"chat": 3})])


def test_claim_not_accepted_is_reoffered_after_claim_timeout(routed, rdb):
    d, api = routed(**desk_config())
    conv = new_conv(d)
    assert conv_hash(rdb, conv)["status"] == "open"
    j = ok(api.claim("amy"))
    assert j["via"] == "pull" and j["conversation"]["id"] == conv, j
    c = j["conversation"]
    assert (c["status"], c["agent_id"], c["accepted"]) == ("assigned", "amy", "0"), c
    asg = wait_event(rdb, "conversation.assigned", conv=conv)
    assert asg["via"] == "pull" and asg["by"] == "amy" and asg["load"] == "1", asg
    assert api.agent("amy")["load"]["chat"] == 1
    assert api.claim("ben").status_code == 204  # nothing else to claim

    exp = wait_event(rdb, "conversation.claim_expired", conv=conv, timeout=5)
    assert exp["agent_id"] == "amy" and exp["by"] == "omnirouted", exp
    assert 2000 <= at(exp) - at(asg) <= 2000 + SWEEP_SLACK_MS, (asg, exp)
    assert api.agent("amy")["load"]["chat"] == 0
    h = conv_hash(rdb, conv)
    assert h["status"] == "open" and h["agent_id"] == "", h

    j = ok(api.claim("ben"))
    assert j["conversation"]["id"] == conv and j["conversation"]["agent_id"] == "ben", j
    ok(api.accept(conv, "ben"))
    assert conv_hash(rdb, conv)["accepted"] == "1"
    assert rdb.xpending("omr:queue:desk:normal", "agents")["pending"] == 0

    # Accepted: not re-offered, however long ben takes.
    time.sleep(3.2)
    assert len(events(rdb, "conversation.claim_expired", conv=conv)) == 1
    h = conv_hash(rdb, conv)
    assert (h["status"], h["agent_id"]) == ("assigned", "ben"), h
    assert api.claim("amy").status_code == 204
    assert api.agent("ben")["load"]["chat"] == 1 and api.agent("amy")["load"]["chat"] == 0


def test_tool_reads_the_queue_stream_and_accepts(routed, rdb):
    d, api = routed(**desk_config())
    conv = new_conv(d)
    got = rdb.xreadgroup("agents", "ben", {"omr:queue:desk:normal": ">"}, count=1)
    ((key, [(eid, fields)]),) = got
    assert fields["conversation_id"] == conv and fields["kind"] == "new", fields
    assert fields["channel"] == "chat" and fields["priority"] == "normal", fields
    c = ok(api.accept(conv, "ben"))["conversation"]
    assert (c["status"], c["agent_id"]) == ("assigned", "ben"), c
    asg = wait_event(rdb, "conversation.assigned", conv=conv)
    assert asg["agent_id"] == "ben" and asg["via"] == "pull", asg
    assert rdb.xpending("omr:queue:desk:normal", "agents")["pending"] == 0
    assert api.agent("ben")["load"]["chat"] == 1
    # Nobody else gets it.
    assert api.claim("amy").status_code == 204
    assert_error(api.accept(conv, "amy"), 409, "not_offered")


def test_claim_needs_no_presence_and_declined_claim_goes_back(routed, rdb):
    d, api = routed(**desk_config(claim_timeout="1m"))
    c1 = new_conv(d)
    c2 = new_conv(d)
    assert api.agent("amy")["presence"] == "offline"
    j = ok(api.claim("amy"))
    assert j["conversation"]["id"] == c1
    ok(api.decline(c1, "amy", reason="not mine"))
    h = conv_hash(rdb, c1)
    assert h["status"] == "open" and api.agent("amy")["load"]["chat"] == 0, h
    # Back in line at its old place: ben gets c1 first, then c2.
    assert ok(api.claim("ben"))["conversation"]["id"] == c1
    assert ok(api.claim("ben"))["conversation"]["id"] == c2
    assert api.claim("amy").status_code == 204


# --------------------------------------------------------------------------
# 8. priority and order

PRIORITY_RULES = [
    {"name": "asap", "keywords": ["asap"], "queue": "desk", "priority": "urgent"},
    {"name": "soon", "keywords": ["soon"], "queue": "desk", "priority": "high"},
    {"name": "later", "keywords": ["whenever"], "queue": "desk", "priority": "low"},
    {"name": "second", "keywords": ["second desk"], "queue": "desk2", "priority": "normal"},
]


def post_in_order(d, texts, rdb):
    ids = {}
    last = 0
    for name, text in texts:
        ids[name] = new_conv(d, f"{name}: {text}")
        enq = int(conv_hash(rdb, ids[name])["enqueued_at"])
        if enq <= last:  # keep ages distinct (ms clock)
            time.sleep(0.002)
        last = enq
        time.sleep(0.003)
    return ids


def test_pull_claims_follow_priority_then_age(routed, rdb):
    d, api = routed(queues={"desk": {"mode": "pull"}, "desk2": {"mode": "pull"}},
                    default_queue="desk", rules=PRIORITY_RULES,
                    agents=[agent_conf("amy", ["desk", "desk2"], {"chat": 20})])
    ids = post_in_order(d, [("N1", "hello there"), ("M1", "second desk please"),
                            ("L1", "whenever you can"), ("H1", "soon please"),
                            ("N2", "hello again"), ("U1", "asap!"), ("M2", "second desk again"),
                            ("H2", "soon again"), ("U2", "asap again")], rdb)
    assert conv_hash(rdb, ids["U1"])["priority"] == "urgent"
    assert conv_hash(rdb, ids["M1"])["queue"] == "desk2"
    got = []
    while True:
        r = api.claim("amy")
        if r.status_code == 204:
            break
        got.append(r.json()["conversation"]["id"])
        assert len(got) <= len(ids)
    names = {v: k for k, v in ids.items()}
    assert [names[c] for c in got] == ["U1", "U2", "H1", "H2", "N1", "M1", "N2", "M2", "L1"]


def test_push_assignment_order_follows_priority_then_age(routed, rdb):
    rules = [dict(r, queue="line") for r in PRIORITY_RULES[:3]]
    d, api = routed(queues={"line": push(0)}, default_queue="line", rules=rules,
                    agents=[agent_conf("solo", ["line"], {"chat": 1})])
    ids = post_in_order(d, [("N1", "hello there"), ("L1", "whenever you can"),
                            ("H1", "soon please"), ("N2", "hello again"), ("U1", "asap!"),
                            ("H2", "soon again"), ("L2", "whenever again"), ("U2", "asap too")],
                        rdb)
    names = {v: k for k, v in ids.items()}
    order = []
    with Heartbeat(d, ["solo"]):
        for i in range(len(ids)):
            ev = wait_event(rdb, "conversation.assigned", n=i + 1, timeout=3)
            assert agent_hash(rdb, "solo")["load:chat"] == "1"
            order.append(names[ev["conversation_id"]])
            ok(api.resolve(ev["conversation_id"], "solo"))
    assert order == ["U1", "U2", "H1", "H2", "N1", "N2", "L1", "L2"]


# --------------------------------------------------------------------------
# 9. strategies


def three(strategy, caps=(10, 10, 10)):
    return dict(queues={"support": push(0, strategy=strategy, match_language=False)},
                agents=[agent_conf(f"a{i + 1}", ["support"], {"chat": c})
                        for i, c in enumerate(caps)])


def assign_one(d, rdb):
    conv = new_conv(d)
    return assigned_agent(rdb, conv, timeout=3)


def test_round_robin_cycles_regardless_of_load(routed, rdb):
    d, api = routed(**three("round_robin"))
    with Heartbeat(d, ["a2"]) as hb:
        assert [assign_one(d, rdb) for _ in range(2)] == ["a2", "a2"]
        assert rdb.get("omr:queue:support:rr") == "a2"
        hb.add("a1")
        hb.add("a3")
        got = [assign_one(d, rdb) for _ in range(6)]
    assert got == ["a3", "a1", "a2", "a3", "a1", "a2"], got


def test_longest_idle_picks_the_agent_idle_longest(routed, rdb):
    d, api = routed(**three("longest_idle"))
    with Heartbeat(d, ["a1", "a2", "a3"]):
        convs = []
        for _ in range(3):
            convs.append(new_conv(d))
            wait_event(rdb, "conversation.assigned", conv=convs[-1])
            time.sleep(0.005)  # distinct last_assigned_at
        assert [assigned_agent(rdb, c) for c in convs] == ["a1", "a2", "a3"]
        ok(api.resolve(convs[1], "a2"))
        ok(api.resolve(convs[2], "a3"))
        # a1 is the busiest but idle longest.
        got = []
        for _ in range(3):
            got.append(assign_one(d, rdb))
            time.sleep(0.005)
    assert got == ["a1", "a2", "a3"], got


def test_least_busy_picks_the_least_loaded(routed, rdb):
    d, api = routed(**three("least_busy", caps=(10, 2, 4)))
    with Heartbeat(d, ["a1"]) as hb:
        assert [assign_one(d, rdb) for _ in range(2)] == ["a1", "a1"]      # a1 2/10
        hb.add("a3")
        assert assign_one(d, rdb) == "a3"                                   # a3 1/4
        hb.add("a2")
        assert assign_one(d, rdb) == "a2"                                   # a2 1/2
        # ratios .2 .5 .25 -> a1 (.3) -> a3 (.5) -> a1 (.4) -> a1 (.5) ->
        # all .5: fewest overall a2 (2/2) -> a1 .5 vs a3 .5, a3 has fewer
        got = [assign_one(d, rdb) for _ in range(6)]
    assert got == ["a1", "a3", "a1", "a1", "a2", "a3"], got
    loads = {a: api.agent(a)["load"]["chat"] for a in ("a1", "a2", "a3")}
    assert loads == {"a1": 5, "a2": 2, "a3": 3}, loads


# --------------------------------------------------------------------------
# 10. lifecycle through the replies API


def test_conversation_lifecycle(start_daemon, sms_config, rdb, tmp_path, fake_provider):
    from sms_helpers import HELPDESK, post_twilio, twilio_params

    cfg = routing_config(sms_config(), tmp_path,
                         queues={"support": push(0),
                                 "escalations": {"mode": "pull", "claim_timeout": "1s"}},
                         agents=[agent_conf("ana", ["support"], {"sms": 3}),
                                 agent_conf("bob", ["escalations"], {"sms": 1})])
    d = start_daemon(cfg)
    api = Api(d, token=HELPDESK)
    phone = "+14155550142"

    def customer_writes(text):
        r = post_twilio(d, twilio_params(From=phone, Body=text))
        assert r.status_code == 200, r.text
        return rdb.hget(f"omr:customer:twilio:main:{phone}", "last_conversation")

    with Heartbeat(d, ["ana"], token=HELPDESK):
        conv = customer_writes("Hi, my parcel has not arrived yet, can you check?")
        assert conv, rdb.keys("omr:customer:*")
        assert assigned_agent(rdb, conv) == "ana"

        # The agent answers: waiting on the customer.
        r = api.call("POST", f"/v1/conversations/{conv}/replies",
                     {"agent_id": "ana", "text": "Let me check that for you."})
        assert r.status_code == 202, r.text
        w = wait_event(rdb, "conversation.waiting", conv=conv, timeout=5)
        assert (w["agent_id"], w["by"]) == ("ana", "ana"), w
        h = conv_hash(rdb, conv)
        assert h["status"] == "waiting" and h["waiting_since"] and h["first_response_at"], h
        fake_provider.wait_requests("twilio", 1, timeout=3)

        # The customer answers: assigned again, in the agent's inbox.
        customer_writes("Thanks, the tracking number is 1Z999.")
        cr = wait_event(rdb, "conversation.customer_replied", conv=conv)
        assert (cr["agent_id"], cr["by"]) == ("ana", "customer"), cr
        assert conv_hash(rdb, conv)["status"] == "assigned"
        msgs = [f for f in inbox(rdb, "ana") if f["kind"] == "message"]
        assert len(msgs) == 1 and msgs[0]["conversation_id"] == conv and msgs[0]["message_id"]
        assert "1Z999" in json.loads(msgs[0]["message"])["text"], msgs

        # Resolved, then reopened by the customer (and back with ana).
        c = ok(api.resolve(conv, "ana", reason="delivered"))["conversation"]
        assert c["status"] == "resolved" and c["resolved_by"] == "ana", c
        res = wait_event(rdb, "conversation.resolved", conv=conv)
        assert (res["agent_id"], res["by"], res["reason"]) == ("ana", "ana", "delivered"), res
        assert api.agent("ana")["load"]["sms"] == 0
        assert customer_writes("Sorry, one more question about the invoice.") == conv
        reo = wait_event(rdb, "conversation.reopened", conv=conv)
        assert reo["by"] == "customer", reo
        assert wait_event(rdb, "conversation.assigned", conv=conv, n=2)["agent_id"] == "ana"

        # Transfer to a (pull) queue: out of ana's hands, queued there.
        c = ok(api.transfer(conv, "ana", queue="escalations", reason="needs a supervisor"))
        assert c["conversation"]["status"] == "open" and c["conversation"]["queue"] == "escalations"
        tr = wait_event(rdb, "conversation.transferred", conv=conv)
        assert (tr["agent_id"], tr["to_queue"], tr["by"], tr["queue"]) == \
            ("ana", "escalations", "ana", "support"), tr
        q = [f for f in events(rdb, "conversation.queued", conv=conv)][-1]
        assert (q["queue"], q["kind"], q["mode"]) == ("escalations", "transferred", "pull"), q
        assert rdb.zscore("omr:queue:escalations:waiting", conv) is not None
        assert any(f["conversation_id"] == conv
                   for _, f in rdb.xrange("omr:queue:escalations:normal"))
        assert api.agent("ana")["load"]["sms"] == 0
        assert ok(api.claim("bob"))["conversation"]["id"] == conv  # bob is now full
        assert conv_hash(rdb, conv)["accepted"] == "0"
        # bob's first reply confirms the claim: acked, never expires.
        r = api.call("POST", f"/v1/conversations/{conv}/replies",
                     {"agent_id": "bob", "text": "A supervisor here, looking into it."})
        assert r.status_code == 202, r.text
        w2 = wait_event(rdb, "conversation.waiting", conv=conv, n=2, timeout=5)
        assert (w2["agent_id"], w2["queue"]) == ("bob", "escalations"), w2
        h = conv_hash(rdb, conv)
        assert h["accepted"] == "1" and h["status"] == "waiting", h
        assert rdb.xpending("omr:queue:escalations:normal", "agents")["pending"] == 0
        no_event_for(rdb, 2.2, "conversation.claim_expired", conv=conv)  # claim_timeout 1s

        # Transfer to an agent without room: refused, nothing changes.
        other_phone = "+14155550177"
        r = post_twilio(d, twilio_params(From=other_phone, Body="Hello, I need help please."))
        assert r.status_code == 200
        conv2 = rdb.hget(f"omr:customer:twilio:main:{other_phone}", "last_conversation")
        assert assigned_agent(rdb, conv2) == "ana"
        n_events = len(all_events(rdb))
        assert_error(api.transfer(conv2, "ana", to_agent="bob"), 409, "at_capacity")
        assert len(all_events(rdb)) == n_events
        assert conv_hash(rdb, conv2)["agent_id"] == "ana"
        # A tool replying through the outbox stream: waiting as well.
        rdb.xadd("omr:outbox", {"conversation_id": conv2, "agent_id": "ana",
                                "text": "Answered through the outbox."})
        w3 = wait_event(rdb, "conversation.waiting", conv=conv2, timeout=5)
        assert (w3["agent_id"], w3["by"]) == ("ana", "ana"), w3
        assert conv_hash(rdb, conv2)["status"] == "waiting"
        # ...and to an agent with room: assigned directly.
        ok(api.transfer(conv, "bob", to_agent="ana"))
        tr2 = wait_event(rdb, "conversation.transferred", conv=conv, n=2)
        assert (tr2["agent_id"], tr2["to_agent"], tr2["by"]) == ("bob", "ana", "bob"), tr2
        last = events(rdb, "conversation.assigned", conv=conv)[-1]
        assert (last["agent_id"], last["via"]) == ("ana", "transfer"), last
        assert api.agent("bob")["load"]["sms"] == 0 and api.agent("ana")["load"]["sms"] == 2

    types = conv_types(rdb, conv)
    for t in ["conversation.opened", "conversation.queued", "conversation.assigned",
              "conversation.waiting", "conversation.customer_replied", "conversation.resolved",
              "conversation.reopened", "conversation.transferred", "message.received"]:
        assert t in types, (t, types)
    for f in events(rdb):
        if f["type"].startswith(("conversation.", "agent.", "message.")):
            assert f.get("by") and f.get("at", "").isdigit(), f
            if f["type"].startswith("conversation."):
                for k in ("conversation_id", "queue", "channel", "priority"):
                    assert f.get(k), (k, f)


# --------------------------------------------------------------------------
# 11. rules feeding assignment


def test_rules_vip_returning_regex(routed, rdb):
    d, api = routed(
        queues={"general": {"mode": "pull"}}, default_queue="general", vip=["vip-*", "+4477*"],
        rules=[{"name": "vip", "vip": True, "queue": "vipq", "priority": "urgent"},
               {"name": "ret", "returning": True, "queue": "returning"},
               {"name": "orders", "regex": r"order\s*#?\d{5}\b", "queue": "orders",
                "priority": "high"}],
        agents=[agent_conf("amy", ["general"], {"chat": 3})])
    j = post_message(d, "Hello, I am a very important customer.", customer="vip-42")
    h = conv_hash(rdb, j["conversation_id"])
    assert (j["queue"], h["priority"], h["vip"], h["rule"]) == ("vipq", "urgent", "1", "vip"), h
    j = post_message(d, "Hi there", customer={"id": "c-" + uid(), "handle": "+447700900123"})
    assert j["queue"] == "vipq"

    cust = uid("cust")
    first = post_message(d, "Hello, first time here.", customer=cust, thread="a")
    assert first["queue"] == "general"
    assert conv_hash(rdb, first["conversation_id"])["returning"] == "0"
    again = post_message(d, "Hello, the first thread again.", customer=cust, thread="a")
    assert again["conversation_id"] == first["conversation_id"] and again["queue"] == "general"
    second = post_message(d, "Hello, it is me again.", customer=cust, thread="b")
    h = conv_hash(rdb, second["conversation_id"])
    assert (second["queue"], h["returning"], h["rule"]) == ("returning", "1", "ret"), h

    j = post_message(d, "Where is my ORDER #12345 please?")
    h = conv_hash(rdb, j["conversation_id"])
    assert (j["queue"], h["priority"], h["rule"]) == ("orders", "high", "orders"), h
    assert post_message(d, "where is order 1234 5")["queue"] == "general"
    assert post_message(d, "Subject has it", subject="order 55555")["queue"] == "orders"


def test_required_skills_wait_for_a_skilled_agent(routed, rdb):
    d, api = routed(
        queues={"billing": push("30s")}, default_queue="general",
        rules=[{"name": "refund", "keywords": ["refund"], "queue": "billing",
                "skills": ["billing"]},
               {"name": "invoice", "keywords": ["invoice"], "queue": "billing"}],
        agents=[agent_conf("nosk", ["billing"], {"chat": 5}),
                agent_conf("sk", ["billing"], {"chat": 5}, skills=["Billing"])])
    with Heartbeat(d, ["nosk"]) as hb:
        conv = new_conv(d, "I would like a refund for my last order please.")
        h = conv_hash(rdb, conv)
        assert json.loads(h["skills"]) == ["billing"] and h["queue"] == "billing", h
        # Control: nosk does get work that needs no skill.
        ctrl = new_conv(d, "A question about my invoice please.")
        assert wait_event(rdb, "conversation.offered", conv=ctrl)["agent_id"] == "nosk"
        no_event_for(rdb, 2.2, "conversation.offered", conv=conv)  # two sweeps
        assert conv_hash(rdb, conv)["status"] == "open"
        t0 = time.time() * 1000
        hb.add("sk")
        off = wait_event(rdb, "conversation.offered", conv=conv, timeout=2)
        assert off["agent_id"] == "sk" and json.loads(off["skills"]) == ["billing"], off
        assert at(off) - t0 < 1000, "not offered at once when the skilled agent came online"
        ok(api.accept(conv, "sk"))
    assert [f["agent_id"] for f in events(rdb, ("conversation.offered", "conversation.assigned"),
                                          conv=conv)] == ["sk", "sk"]


def test_language_must_match_unless_disabled(routed, rdb):
    d, api = routed(
        queues={"support": push(0), "open": push(0, match_language=False)},
        rules=[{"name": "open", "keywords": ["kargo"], "queue": "open"}],
        agents=[agent_conf("en1", ["support", "open"], {"chat": 5}, languages=["en"]),
                agent_conf("zh1", ["support"], {"chat": 5}, languages=["zh"]),
                agent_conf("hant", ["support"], {"chat": 5}, languages=["zh-Hant"])])
    with Heartbeat(d, ["en1", "zh1", "hant"]):
        tr = new_conv(d, "Merhaba, geçen hafta verdiğim sipariş hâlâ gelmedi, lütfen yardım edin.")
        assert conv_hash(rdb, tr)["language"] == "tr"
        en = new_conv(d, "Hello, I ordered a pair of shoes last week and they still have not "
                         "arrived at my home address.")
        assert assigned_agent(rdb, en) == "en1"
        # 'zh' serves zh-Hans; 'zh-Hant' does not.
        hans = new_conv(d, "您好，我上周订购的商品到现在还没有收到，请问可以帮我查询一下物流状态吗？"
                           "谢谢您的帮忙。")
        assert conv_hash(rdb, hans)["language"] == "zh-Hans"
        assert assigned_agent(rdb, hans) == "zh1"
        # Unreliable detection ('und') asks for no language.
        und = new_conv(d, "12345 !!!")
        assert conv_hash(rdb, und)["language"] == "und"
        assigned_agent(rdb, und)
        opened = new_conv(d, "Merhaba, kargo takip numarası çalışmıyor, siparişim hâlâ gelmedi.")
        assert conv_hash(rdb, opened)["language"] == "tr"
        assert assigned_agent(rdb, opened) == "en1"  # match_language false
        no_event_for(rdb, 1.2, "conversation.assigned", conv=tr)
        assert conv_hash(rdb, tr)["status"] == "open"


# --------------------------------------------------------------------------
# 12. the agents API


def test_agents_api_runtime_agents(routed, rdb):
    d, api = routed(queues={"support": push(0)},
                    agents=[agent_conf("cfg1", ["support"], {"chat": 1})])
    body = {"name": "Rita", "languages": ["en", "pt-BR"], "skills": ["Billing", "vip"],
            "capacity": {"chat": 1, "email": 4}, "queues": ["support"], "teams": ["emea"],
            "email": "rita@example.com"}
    a = ok(api.put_agent("rita", body))["agent"]
    assert a["id"] == "rita" and a["source"] == "runtime" and a["name"] == "Rita", a
    assert a["capacity"] == {"chat": 1, "email": 4} and a["queues"] == ["support"], a
    assert a["skills"] == ["billing", "vip"] and a["languages"] == ["en", "pt-BR"], a
    assert a["presence"] == "offline" and a.get("presence_expires_at") is None, a
    assert wait_event(rdb, "agent.added", agent="rita")["by"] == "runtime"
    assert rdb.sismember("omr:queue:support:agents", "rita")
    ids = [x["id"] for x in ok(api.list_agents())["agents"]]
    assert ids == ["cfg1", "rita"], ids
    assert ok(api.get_agent("cfg1"))["agent"]["source"] == "config"

    with Heartbeat(d, ["rita"]):
        c1, c2 = new_conv(d), new_conv(d)
        assert assigned_agent(rdb, c1) == "rita"
        time.sleep(1.2)
        assert conv_hash(rdb, c2)["status"] == "open"  # capacity 1
        t0 = time.time() * 1000
        a = ok(api.put_agent("rita", dict(body, capacity={"chat": 2})))["agent"]
        assert a["capacity"] == {"chat": 2} and a["load"]["chat"] == 1, a
        asg = wait_event(rdb, "conversation.assigned", conv=c2, timeout=2)
        assert asg["agent_id"] == "rita" and at(asg) - t0 < 1000, asg
        assert wait_event(rdb, "agent.updated", agent="rita")["by"] == "runtime"
        # Queues replaced whole.
        ok(api.put_agent("rita", dict(body, queues=["other"])))
        assert not rdb.sismember("omr:queue:support:agents", "rita")
        assert rdb.sismember("omr:queue:other:agents", "rita")

    assert ok(api.delete_agent("rita")) == {"agent_id": "rita", "removed": True}
    assert wait_event(rdb, "agent.removed", agent="rita")
    assert_error(api.get_agent("rita"), 404, "unknown_agent")
    assert_error(api.delete_agent("rita"), 404, "unknown_agent")
    assert not rdb.exists("omr:agent:rita") and not rdb.sismember("omr:agents", "rita")
    assert not rdb.sismember("omr:queue:other:agents", "rita")


def test_agent_object_has_every_documented_field(routed, rdb):
    """routing-api.md: AGENT = {id, name, languages, skills, capacity, load,
    queues, teams, email, presence, presence_expires_at: ms|null, source}."""
    d, api = routed(queues={"support": push(0)},
                    agents=[agent_conf("cfg1", ["support"], {"chat": 1})])
    ok(api.put_agent("rita", {"capacity": {"chat": 1}, "queues": ["support"]}))
    want = {"id", "name", "languages", "skills", "capacity", "load", "queues", "teams", "email",
            "presence", "presence_expires_at", "source"}
    for id in ("cfg1", "rita"):
        a = api.agent(id)
        assert want <= set(a), (id, sorted(want - set(a)), a)
        assert a["presence_expires_at"] is None, a
    ok(api.presence("rita", "online"))
    a = api.agent("rita")
    assert isinstance(a["presence_expires_at"], int) and a["presence"] == "online", a
    ok(api.presence("rita", "offline"))
    assert api.agent("rita")["presence_expires_at"] is None


def test_agents_api_refusals(routed, rdb):
    d, api = routed(queues={"support": push(0)},
                    agents=[agent_conf("cfg1", ["support"], {"chat": 1})])
    good = {"capacity": {"chat": 1}, "queues": ["support"]}
    assert_error(api.put_agent("cfg1", good), 409, "config_agent")
    assert_error(api.delete_agent("cfg1"), 409, "config_agent")
    assert ok(api.get_agent("cfg1"))["agent"]["capacity"] == {"chat": 1}

    bad = [
        (None, b"{not json", "bad_json"),
        (None, b"[1, 2]", "bad_json"),
        (None, b"", "bad_json"),
        ({"queues": ["support"]}, None, "invalid_field"),                    # no capacity
        ({"capacity": {"chat": 1}}, None, "invalid_field"),                  # no queues
        ({"capacity": {"chat": 1}, "queues": []}, None, "invalid_field"),
        ({"capacity": {}, "queues": ["support"]}, None, "invalid_field"),
        ({"capacity": {"fax": 1}, "queues": ["support"]}, None, "invalid_field"),
        ({"capacity": {"chat": -1}, "queues": ["support"]}, None, "invalid_field"),
        ({"capacity": {"chat": "3"}, "queues": ["support"]}, None, "invalid_field"),
        ({"capacity": {"chat": 1001}, "queues": ["support"]}, None, "invalid_field"),
        ({"capacity": [1], "queues": ["support"]}, None, "invalid_field"),
        (dict(good, languages="en"), None, "invalid_field"),
        (dict(good, languages=["e"]), None, "invalid_field"),
        (dict(good, languages=[1]), None, "invalid_field"),
        (dict(good, skills=["has space"]), None, "invalid_field"),
        (dict(good, queues=["bad queue!"]), None, "invalid_field"),
        (dict(good, name=5), None, "invalid_field"),
    ]
    for body, raw, code in bad:
        r = api.put_agent("newbie", body, raw=raw)
        j = assert_error(r, 400, code)
        assert j["detail"], j
    assert_error(api.get_agent("newbie"), 404, "unknown_agent")
    assert not rdb.exists("omr:agent:newbie")

    assert_error(api.get_agent("ghost"), 404, "unknown_agent")
    assert_error(api.delete_agent("ghost"), 404, "unknown_agent")
    assert_error(api.presence("ghost"), 404, "unknown_agent")
    assert_error(api.claim("ghost"), 404, "unknown_agent")
    assert_error(api.presence("cfg1", "dancing"), 400, "invalid_field")
    assert_error(api.show("01JAAAAAAAAAAAAAAAAAAAAAAA"), 404, "unknown_conversation")
    assert_error(api.accept("01JAAAAAAAAAAAAAAAAAAAAAAA", "cfg1"), 404, "unknown_conversation")
    conv = new_conv(d)
    assert_error(api.call("POST", f"/v1/conversations/{conv}/accept", {}), 400, "invalid_field")
    assert_error(api.call("POST", f"/v1/conversations/{conv}/transfer", {"agent_id": "cfg1"}),
                 400, "invalid_field")
    assert_error(api.call("POST", f"/v1/conversations/{conv}/transfer",
                          {"agent_id": "cfg1", "queue": "a", "to_agent": "b"}),
                 400, "invalid_field")

    for method, path, body in [("GET", "/v1/agents", None), ("GET", "/v1/agents/cfg1", None),
                               ("PUT", "/v1/agents/x1", good), ("DELETE", "/v1/agents/x1", None),
                               ("POST", "/v1/agents/cfg1/presence", {"status": "online"}),
                               ("POST", "/v1/agents/cfg1/claim", {}),
                               ("GET", f"/v1/conversations/{conv}", None),
                               ("POST", f"/v1/conversations/{conv}/resolve",
                                {"agent_id": "cfg1"})]:
        assert_error(api.call(method, path, body, token=None), 401, "unauthorized")
        assert_error(api.call(method, path, body, token=TOKEN + "x"), 401, "unauthorized")
    assert not rdb.exists("omr:agent:x1")
    assert conv_hash(rdb, conv)["status"] != "resolved"
    assert api.agent("cfg1")["presence"] == "offline"


# --------------------------------------------------------------------------
# more: claims of offers, away, transfer to a push queue, several daemons


def test_claim_accepts_the_agents_pending_offer_first(routed, rdb):
    d, api = routed(queues={"support": push("30s"), "desk": {"mode": "pull"}},
                    rules=[{"name": "desk", "keywords": ["desk"], "queue": "desk"}],
                    agents=[agent_conf("amy", ["support", "desk"], {"chat": 3})])
    pulled = post_message(d, "Hello, a question for the desk please.")
    with Heartbeat(d, ["amy"]):
        conv = new_conv(d)
        assert wait_event(rdb, "conversation.offered", conv=conv)["agent_id"] == "amy"
        j = ok(api.claim("amy"))
        assert j["via"] == "offer" and j["conversation"]["id"] == conv, j
        assert j["conversation"]["status"] == "assigned", j
        asg = wait_event(rdb, "conversation.assigned", conv=conv)
        assert asg["agent_id"] == "amy" and asg["by"] == "amy", asg
        # No offer left: the next claim pulls from the desk.
        j = ok(api.claim("amy"))
        assert j["via"] == "pull" and j["conversation"]["id"] == pulled["conversation_id"], j
    assert pulled["queue"] == "desk"


def test_going_away_withdraws_offers(routed, rdb):
    d, api = routed(queues={"support": push("30s")},
                    agents=[agent_conf("pia", ["support"], {"chat": 2}),
                            agent_conf("quinn", ["support"], {"chat": 2})])
    with Heartbeat(d, ["pia"]) as hb:
        conv = new_conv(d)
        assert wait_event(rdb, "conversation.offered", conv=conv)["agent_id"] == "pia"
        hb.add("quinn")
        hb.remove("pia")
        r = ok(api.presence("pia", "away"))
        assert r["status"] == "away", r
        pres = wait_event(rdb, "agent.presence", agent="pia", n=2)
        assert (pres["from"], pres["to"], pres["by"]) == ("online", "away", "pia"), pres
        wd = wait_event(rdb, "conversation.offer_withdrawn", conv=conv)
        assert wd["agent_id"] == "pia", wd
        assert agent_hash(rdb, "pia")["load:chat"] == "0"
        second = wait_event(rdb, "conversation.offered", conv=conv, n=2, timeout=2.5)
        assert second["agent_id"] == "quinn", second
        # Away agents get no push offers, even with room.
        c2 = new_conv(d)
        assert wait_event(rdb, "conversation.offered", conv=c2)["agent_id"] == "quinn"


def test_transfer_to_a_push_queue_is_dispatched_there(routed, rdb):
    d, api = routed(queues={"support": push(0), "tier2": push(0)},
                    agents=[agent_conf("ana", ["support"], {"chat": 2}),
                            agent_conf("tom", ["tier2"], {"chat": 2})])
    with Heartbeat(d, ["ana", "tom"]):
        conv = new_conv(d)
        assert assigned_agent(rdb, conv) == "ana"
        before = conv_hash(rdb, conv)
        assert_error(api.resolve(conv, "tom"), 409, "not_yours")
        assert_error(api.transfer(conv, "ana", to_agent="ana"), 409, "same_agent")
        assert_error(api.transfer(conv, "ana", to_agent="ghost"), 404, "unknown_agent")
        time.sleep(0.005)
        c = ok(api.transfer(conv, "ana", queue="tier2", reason="second level"))["conversation"]
        assert c["queue"] == "tier2" and c["status"] in ("open", "assigned"), c
        asg = wait_event(rdb, "conversation.assigned", conv=conv, n=2, timeout=2)
        assert (asg["agent_id"], asg["queue"], asg["via"]) == ("tom", "tier2", "push"), asg
        h = conv_hash(rdb, conv)
        assert h["queue"] == "tier2" and int(h["enqueued_at"]) > int(before["enqueued_at"]), h
        assert h["sticky_agent"] == "" and h["declined"] == "[]", h
        assert agent_hash(rdb, "ana")["load:chat"] == "0"
        ok(api.resolve(conv, "tom"))
        assert_error(api.transfer(conv, "tom", queue="support"), 409, "resolved")


@pytest.mark.timeout(60)
def test_two_daemons_fire_each_timeout_once(start_daemon, make_config, tmp_path, rdb):
    from assign_helpers import second_daemon_config
    cfg = routing_config(make_config(), tmp_path, heartbeat="1s",
                         rules=[{"name": "desk", "keywords": ["desk"], "queue": "desk"}],
                         queues={"support": push("1s"),
                                 "desk": {"mode": "pull", "claim_timeout": "1s"}},
                         agents=[agent_conf("xena", ["support"], {"chat": 2}),
                                 agent_conf("yuri", ["support"], {"chat": 2}),
                                 agent_conf("amy", ["desk"], {"chat": 2}),
                                 agent_conf("gone", ["elsewhere"], {"chat": 2})])
    d1 = start_daemon(cfg, name="omnirouted-a")
    d2 = start_daemon(second_daemon_config(cfg), name="omnirouted-b")
    api2 = Api(d2)
    ok(api2.presence("gone", "online"))  # and never again
    with Heartbeat(d1, ["xena", "yuri"]):
        conv = new_conv(d1)
        first = wait_event(rdb, "conversation.offered", conv=conv)
        second = wait_event(rdb, "conversation.offered", conv=conv, n=2, timeout=4)
        assert second["agent_id"] != first["agent_id"], (first, second)
        ok(api2.accept(conv, second["agent_id"]))
        pull = post_message(d2, "A question for the desk.")
        assert pull["queue"] == "desk", pull
        assert ok(api2.claim("amy"))["conversation"]["id"] == pull["conversation_id"]
        wait_event(rdb, "conversation.claim_expired", conv=pull["conversation_id"], timeout=4)
        wait_event(rdb, "agent.presence", agent="gone", n=2, timeout=4)
        time.sleep(2.5)  # more sweeps of both daemons
    assert len(events(rdb, "conversation.offer_expired", conv=conv)) == 1
    assert len(events(rdb, "conversation.offered", conv=conv)) == 2
    assert len(events(rdb, "conversation.claim_expired", conv=pull["conversation_id"])) == 1
    gone = events(rdb, "agent.presence", agent="gone")
    assert [(f["from"], f["to"]) for f in gone] == [("offline", "online"), ("online", "offline")]
    assert agent_hash(rdb, "amy")["load:chat"] == "0"


# --------------------------------------------------------------------------
# limits of the scans: work an agent fits behind a long line it does not


@pytest.mark.timeout(90)
def test_push_dispatch_skips_more_than_a_scan_of_unassignable_work(routed, rdb):
    """"skip ones no agent fits (others still go)": 501 conversations nobody
    online can take (skill) in front of one that an online agent can.
    (assign.lua looks at the first 500 waiting only; the draft
    docs/routing.md calls this a limit, routing-behaviour.md does not.)"""
    d, api = routed(
        queues={"support": push(0)},
        rules=[{"name": "refund", "keywords": ["refund"], "queue": "support",
                "skills": ["billing"]}],
        agents=[agent_conf("gen", ["support"], {"chat": 5})])
    import requests
    s = requests.Session()
    for i in range(501):
        post_message(d, f"refund number {i}", session=s)
    with Heartbeat(d, ["gen"]):
        conv = new_conv(d, "Hello, where is my parcel?")
        try:
            asg = wait_for(lambda: events(rdb, "conversation.assigned", conv=conv) or None, 3.5,
                           "the fitting conversation behind 501 unfitting ones to be assigned")
        except AssertionError:
            h = conv_hash(rdb, conv)
            raise AssertionError(
                f"not assigned: status={h['status']} waiting rank="
                f"{rdb.zrank('omr:queue:support:waiting', conv)} of "
                f"{rdb.zcard('omr:queue:support:waiting')}; gen: {agent_hash(rdb, 'gen')}")
        assert asg[0]["agent_id"] == "gen"


def test_pull_claim_skips_more_than_fifty_unfitting_entries(routed, rdb):
    """"takes the oldest (enqueued_at) that the agent fits": 60 conversations
    needing a skill the agent lacks, then one it can take. (claim.lua looks
    at 50 undelivered entries; the draft docs/routing.md calls this a limit.)"""
    d, api = routed(
        queues={"desk": {"mode": "pull"}}, default_queue="desk",
        rules=[{"name": "refund", "keywords": ["refund"], "queue": "desk",
                "skills": ["billing"]}],
        agents=[agent_conf("gen", ["desk"], {"chat": 5}),
                agent_conf("bill", ["desk"], {"chat": 100}, skills=["billing"])])
    import requests
    s = requests.Session()
    refunds = [post_message(d, f"refund number {i}", session=s)["conversation_id"]
               for i in range(60)]
    conv = new_conv(d, "Hello, where is my parcel?")
    r = api.claim("gen")
    assert r.status_code == 200, (
        f"claim answered {r.status_code} {r.text!r} although {conv} (61st in the band, fits gen) "
        f"is open: {conv_hash(rdb, conv)['status']}; gen load {agent_hash(rdb, 'gen')['load']}")
    assert r.json()["conversation"]["id"] == conv
    # And the skilled agent still gets the refunds in order.
    assert ok(api.claim("bill"))["conversation"]["id"] == refunds[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("rounds", [1, 2, 3], ids=["45-returned", "90-returned", "135-returned"])
def test_vanished_claim_expires_behind_many_returned_entries(routed, rdb, rounds):
    """"A claimed conversation whose agent vanishes is re-offered after the
    timeout" also when the band's pending list holds more than a scan's
    worth of returned entries (work nobody present can take: here skilled
    work that non-skilled agents' claims skipped and handed back).
    Returned entries stay pending (consumer _returned); sweep.lua's XPENDING
    looks at the first 100 idle ones only, claim.lua's at the first 50."""
    d, api = routed(
        queues={"desk": {"mode": "pull", "claim_timeout": "2s"}}, default_queue="desk",
        rules=[{"name": "refund", "keywords": ["refund"], "queue": "desk",
                "skills": ["billing"]}],
        agents=[agent_conf("gen", ["desk"], {"chat": 10}),
                agent_conf("amy", ["desk"], {"chat": 3}),
                agent_conf("ben", ["desk"], {"chat": 3})])
    import requests
    s = requests.Session()
    normals = []
    for round_ in range(rounds):
        for i in range(45):
            post_message(d, f"refund {round_}-{i}", session=s)
        normals.append(new_conv(d, f"Hello, question {round_} about my parcel."))
    for n in normals:  # each claim skips (and hands back) 45 refunds
        j = ok(api.claim("gen"))
        assert j["conversation"]["id"] == n, j
        ok(api.resolve(n, "gen"))
    pel = rdb.xpending("omr:queue:desk:normal", "agents")
    assert pel["pending"] == 45 * rounds, pel

    conv = new_conv(d, "Hello, one more question about my parcel.")
    assert ok(api.claim("amy"))["conversation"]["id"] == conv
    asg = wait_event(rdb, "conversation.assigned", conv=conv)
    # amy vanishes: after claim_timeout the claim expires and ben gets it.
    try:
        exp = wait_event(rdb, "conversation.claim_expired", conv=conv, timeout=2 + 2.5)
    except AssertionError:
        h = conv_hash(rdb, conv)
        raise AssertionError(
            f"claim never expired: {conv} status={h['status']} agent={h['agent_id']} "
            f"accepted={h['accepted']} {int(time.time() * 1000) - at(asg)} ms after the claim; "
            f"pending list {rdb.xpending('omr:queue:desk:normal', 'agents')}; ben's claim: "
            f"{api.claim('ben').status_code}")
    assert exp["agent_id"] == "amy"
    r = api.claim("ben")
    assert r.status_code == 200 and r.json()["conversation"]["id"] == conv, (
        f"ben's claim after the expiry answered {r.status_code} {r.text!r}; {conv} is "
        f"{conv_hash(rdb, conv)['status']}, its entry returned behind {45 * rounds} others")


def test_pull_conversation_declined_by_everyone_is_not_stranded(routed, rdb):
    """Push queues start a new round once every fit agent declined
    (assign.lua); a pull conversation that every agent of its queue
    declined must not be stranded either: the next claim gets it again."""
    d, api = routed(**desk_config(claim_timeout="1m"))
    conv = new_conv(d)
    for agent in ("amy", "ben"):
        assert ok(api.claim(agent))["conversation"]["id"] == conv
        ok(api.decline(conv, agent))
    h = conv_hash(rdb, conv)
    assert h["status"] == "open" and sorted(json.loads(h["declined"])) == ["amy", "ben"], h
    r = api.claim("amy")
    assert r.status_code == 200 and r.json()["conversation"]["id"] == conv, (
        f"claim answered {r.status_code} {r.text!r}: {conv} is open in desk and every agent "
        f"of desk declined it once; ben's claim: {api.claim('ben').status_code}")


def test_reload_republishes_config_agents(start_daemon, make_config, tmp_path, rdb):
    """SIGHUP: config agents are published again (capacity replaced, presence
    and load kept); an agent no longer in the file is removed; runtime ones
    stay."""
    import copy
    import signal

    from conftest import write_config
    cfg = routing_config(make_config(), tmp_path, queues={"support": push(0)},
                         agents=[agent_conf("ana", ["support"], {"chat": 1}),
                                 agent_conf("old", ["support"], {"chat": 1})])
    d = start_daemon(cfg)
    api = Api(d)
    ok(api.put_agent("rita", {"capacity": {"sms": 1}, "queues": ["support"]}))
    with Heartbeat(d, ["ana"]):
        c1, c2 = new_conv(d), new_conv(d)
        # old is offline; ana takes one and has no room for the second.
        assert assigned_agent(rdb, c1) == "ana"
        time.sleep(1.2)
        assert conv_hash(rdb, c2)["status"] == "open"
        new = copy.deepcopy(cfg)
        new["agents"]["list"] = [agent_conf("ana", ["support"], {"chat": 2},
                                            languages=["en"], skills=["vip"])]
        write_config(d.cfg_path, new)
        since = d.log_offset()
        d.signal(signal.SIGHUP)
        d.wait_log(r"reloaded", since=since, timeout=5)
        # ana's new capacity takes effect: the waiting conversation goes to her.
        asg = wait_event(rdb, "conversation.assigned", conv=c2, timeout=3)
        assert asg["agent_id"] == "ana" and asg["capacity"] == "2" and asg["load"] == "2", asg
        a = api.agent("ana")
        assert a["presence"] == "online" and a["skills"] == ["vip"], a
        assert a["source"] == "config" and a["languages"] == ["en"], a
    assert_error(api.get_agent("old"), 404, "unknown_agent")
    assert wait_event(rdb, "agent.removed", agent="old")
    assert api.agent("rita")["source"] == "runtime"
