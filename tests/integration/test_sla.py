"""SLA clocks (issue 5, part 1): first response, next response and
resolution clocks, warnings and breaches fired once across daemons and
restarts, pausing while waiting on the customer, escalation, business-hours
calendars, resolve, config validation. Real redis-server and daemons;
/work/spec/sla.md and docs/sla.md; daemon/sla.c and daemon/sla_*.lua are the
truth.

Timing: a warning or breach must come at its due time, at most TOL_MS late
(the daemon arms its timer for the next due time; one second is the poll
bound); lag_ms, the daemon's own measure, must be small."""

import datetime
import subprocess
import time
from zoneinfo import ZoneInfo

import pytest

from assign_helpers import assigned_agent, conv_hash, events, wait_event, wait_for
from conftest import BINARY, base_config, daemon_env, free_port, metric, to_yaml
from sla_helpers import (AGENT, api, due_members, new_msisdn, now_ms, opened_at, outbox_reply,
                         quiet, reply, say, second_config, sla_config, sla_events, wait_sla,
                         wait_status)

TOL_MS = 1000       # how late a warning / breach may come
LAG_MS = 300        # what lag_ms (how late the daemon says it fired) may be


def sleep_until(ms):
    left = ms - now_ms()
    if left > 0:
        time.sleep(left / 1000)


def on_time(ev, due):
    at = int(ev["at"])
    assert due <= at <= due + TOL_MS, f"{ev['type']} at {at}, due {due} ({at - due:+d} ms): {ev}"
    lag = int(ev["lag_ms"])
    assert 0 <= lag <= LAG_MS, f"lag_ms {lag}: {ev}"
    return at


@pytest.fixture
def sla_daemon(start_daemon, sms_config, tmp_path):
    """start(policies, calendars=None, n=1) -> [daemons] (same Redis), ana online."""
    def start(policies, calendars=None, n=1):
        cfg = sla_config(sms_config, tmp_path, policies, calendars)
        ds = [start_daemon(cfg)]
        for _ in range(n - 1):
            ds.append(start_daemon(second_config(cfg)))
        api(ds[0]).online(AGENT)
        return ds
    return start


def computed(rdb, conv, clock, timeout=3.0):
    """The conversation hash once the daemon stored the clock's due time."""
    return wait_for(lambda: (lambda h: h if h.get(f"sla_{clock}_due") else None)(conv_hash(rdb, conv)),
                    timeout, f"sla_{clock}_due of {conv}")


# --------------------------------------------------------------------------
# 1. acceptance: first response warning at 80 %, breach at 100 %, once


def _check_first_response_fires_once(rdb, daemons, conv, t0):
    h = computed(rdb, conv, "fr")
    assert h["sla_policy"] == "fast", h
    assert h["sla_fr_state"] == "running" and int(h["sla_fr_started_at"]) == t0, h
    assert int(h["sla_fr_due"]) == t0 + 5000, h
    assert int(h["sla_fr_warn_at"]) == t0 + 4000, h  # warn_at defaults to 0.8
    # The policy has no resolution target: that clock has nothing to run.
    wait_for(lambda: conv_hash(rdb, conv).get("sla_res_state") == "none" or None, 3,
             "sla_res_state none")
    assert due_members(rdb, conv) == {f"{conv}|fr|warn": t0 + 4000, f"{conv}|fr|breach": t0 + 5000}

    warn = wait_sla(rdb, conv, "sla.warning", "first_response", timeout=7)
    on_time(warn, t0 + 4000)
    breach = wait_sla(rdb, conv, "sla.breached", "first_response", timeout=3)
    on_time(breach, t0 + 5000)
    for ev in (warn, breach):
        assert ev["policy"] == "fast" and ev["due"] == str(t0 + 5000), ev
        assert ev["agent_id"] == AGENT and ev["status"] == "assigned", ev
        assert ev["by"] == "omnirouted" and ev["queue"] == "support", ev
        assert ev["channel"] == "sms" and ev["conversation_id"] == conv, ev
    assert warn["priority"] == "normal", warn

    quiet(rdb, [conv], 1.2)
    got = [(t, f["clock"]) for t, f in sla_events(rdb, conv)]
    assert got == [("sla.warning", "first_response"), ("sla.breached", "first_response")], got
    h = conv_hash(rdb, conv)
    assert h["sla_fr_warned"] == "1" and h["sla_fr_breached"] == "1", h
    assert h["sla_fr_state"] == "running", h  # a breach records; the agent's reply stops it
    assert due_members(rdb, conv) == {}
    fired = {k: sum(metric(d.metrics(), "omr_sla_fired_total", kind=k) for d in daemons)
             for k in ("warning", "breach")}
    assert fired == {"warning": 1, "breach": 1}, fired


@pytest.mark.timeout(40)
def test_first_response_fires_once_with_two_daemons(sla_daemon, rdb):
    d1, d2 = sla_daemon([{"name": "fast", "first_response": "5s"}], n=2)
    conv = say(d2, rdb, new_msisdn())
    assert assigned_agent(rdb, conv) == AGENT
    _check_first_response_fires_once(rdb, [d1, d2], conv, opened_at(rdb, conv))


@pytest.mark.timeout(40)
def test_first_response_fires_once_across_a_restart(sla_daemon, rdb):
    (d,) = sla_daemon([{"name": "fast", "first_response": "5s"}])
    conv = say(d, rdb, new_msisdn())
    t0 = opened_at(rdb, conv)
    computed(rdb, conv, "fr")
    sleep_until(t0 + 1000)
    rc, _ = d.terminate()
    assert rc == 0, rc
    d.start()
    d.wait_ready()
    assert now_ms() < t0 + 3500, "restart took too long for this test"
    _check_first_response_fires_once(rdb, [d], conv, t0)


# --------------------------------------------------------------------------
# 2. an agent reply stops first response: hit before the due time, missed after


@pytest.mark.timeout(40)
def test_reply_stops_first_response_hit_or_missed(sla_daemon, rdb):
    (d,) = sla_daemon([{"name": "fr3", "first_response": "3s"}])
    early, direct, late = (say(d, rdb, new_msisdn()) for _ in range(3))
    for c in (early, direct, late):
        assert assigned_agent(rdb, c) == AGENT

    reply(d, rdb, early)                      # through the replies API
    outbox_reply(rdb, direct)                 # straight into omr:outbox
    wait_status(rdb, direct, "waiting")
    for c in (early, direct):
        h = conv_hash(rdb, c)
        assert h["sla_fr_state"] == "hit", h
        assert int(h["sla_fr_stopped_at"]) == int(h["last_agent_reply_at"]), h
        assert int(h["sla_fr_stopped_at"]) < opened_at(rdb, c) + 3000, h
        assert due_members(rdb, c) == {}, due_members(rdb, c)

    t_late = opened_at(rdb, late)
    wait_sla(rdb, late, "sla.breached", "first_response", timeout=5)
    reply(d, rdb, late)
    h = conv_hash(rdb, late)
    assert h["sla_fr_state"] == "missed", h
    assert int(h["sla_fr_stopped_at"]) > t_late + 3000, h

    sleep_until(max(opened_at(rdb, c) for c in (early, direct)) + 3000 + TOL_MS)
    quiet(rdb, [early, direct, late], 0.3)
    assert sla_events(rdb, early) == [] and sla_events(rdb, direct) == []
    assert [t for t, _ in sla_events(rdb, late)] == ["sla.warning", "sla.breached"]
    for c in (early, direct):
        assert conv_hash(rdb, c)["sla_fr_state"] == "hit"


# --------------------------------------------------------------------------
# 3. next response: a customer message after an agent reply starts it


@pytest.mark.timeout(40)
def test_next_response_starts_breaches_and_stops(sla_daemon, rdb):
    (d,) = sla_daemon([{"name": "nr", "first_response": "30s", "next_response": "2s"}])
    who = new_msisdn()
    conv = say(d, rdb, who)
    assert assigned_agent(rdb, conv) == AGENT
    reply(d, rdb, conv)
    h = conv_hash(rdb, conv)
    assert h["status"] == "waiting" and h["sla_fr_state"] == "hit", h
    assert h.get("sla_nr_state", "") in ("", "none"), h  # only a customer message starts it

    assert say(d, rdb, who, "Still not working") == conv
    ev = wait_event(rdb, "conversation.customer_replied", conv=conv)
    t1 = int(ev["at"])
    h = computed(rdb, conv, "nr")
    assert h["sla_nr_state"] == "running" and int(h["sla_nr_started_at"]) == t1, h
    assert int(h["sla_nr_due"]) == t1 + 2000 and int(h["sla_nr_warn_at"]) == t1 + 1600, h
    on_time(wait_sla(rdb, conv, "sla.warning", "next_response", timeout=4), t1 + 1600)
    br = wait_sla(rdb, conv, "sla.breached", "next_response", timeout=3)
    on_time(br, t1 + 2000)
    assert br["status"] == "assigned" and br["agent_id"] == AGENT and br["due"] == str(t1 + 2000), br

    reply(d, rdb, conv)
    h = conv_hash(rdb, conv)
    assert h["sla_nr_state"] == "missed" and h["status"] == "waiting", h

    # Another round, answered in time: a new run, hit, no second breach.
    assert say(d, rdb, who, "One more question") == conv
    wait_event(rdb, "conversation.customer_replied", conv=conv, n=2)
    wait_for(lambda: conv_hash(rdb, conv).get("sla_nr_state") == "running" or None, 3, "nr running")
    assert conv_hash(rdb, conv)["sla_nr_breached"] == "0"
    reply(d, rdb, conv)
    h = conv_hash(rdb, conv)
    assert h["sla_nr_state"] == "hit", h
    assert due_members(rdb, conv) == {}
    quiet(rdb, [conv], 2.5)
    got = [(t, f["clock"]) for t, f in sla_events(rdb, conv)]
    assert got == [("sla.warning", "next_response"), ("sla.breached", "next_response")], got


# --------------------------------------------------------------------------
# 4. resolution pauses while waiting on the customer


@pytest.mark.timeout(40)
def test_resolution_pauses_while_waiting_on_the_customer(sla_daemon, rdb):
    (d,) = sla_daemon([{"name": "res", "resolution": "6s"}])
    who = new_msisdn()
    conv = say(d, rdb, who)
    t0 = opened_at(rdb, conv)
    assert assigned_agent(rdb, conv) == AGENT
    h = computed(rdb, conv, "res")
    assert int(h["sla_res_due"]) == t0 + 6000 and int(h["sla_res_warn_at"]) == t0 + 4800, h

    sleep_until(t0 + 1000)
    reply(d, rdb, conv)
    h = conv_hash(rdb, conv)
    paused = int(h["last_agent_reply_at"])
    assert h["sla_res_state"] == "paused" and int(h["sla_res_paused_at"]) == paused, h
    assert due_members(rdb, conv) == {}, due_members(rdb, conv)
    # The stretch before the pause is kept; the daemon turns it into business
    # time (24/7: plain time) when the clock resumes.

    sleep_until(paused + 5000)
    assert sla_events(rdb, conv) == []       # nothing at t0 + 4.8 s / 6 s: paused
    assert say(d, rdb, who, "Here is the information you asked for") == conv
    t1 = int(wait_event(rdb, "conversation.customer_replied", conv=conv)["at"])
    left = 6000 - (paused - t0)
    h = wait_for(lambda: (lambda h: h if h.get("sla_res_due") else None)(conv_hash(rdb, conv)), 3,
                 "res due after resume")
    assert h["sla_res_state"] == "running" and int(h["sla_res_started_at"]) == t1, h
    assert int(h["sla_res_due"]) == t1 + left, (h, t1, left)
    assert h["sla_res_elapsed"] == str(paused - t0) and h["sla_res_segments"] == "[]", h
    assert int(h["sla_res_warn_at"]) == t1 + 4800 - (paused - t0), h

    warn = wait_sla(rdb, conv, "sla.warning", "resolution", timeout=6)
    on_time(warn, t1 + 4800 - (paused - t0))
    br = wait_sla(rdb, conv, "sla.breached", "resolution", timeout=3)
    on_time(br, t1 + left)
    assert int(br["at"]) > t0 + 6000 + 3000, "breached as if the clock had not paused"
    assert [t for t, _ in sla_events(rdb, conv)] == ["sla.warning", "sla.breached"]


@pytest.mark.timeout(30)
def test_resolution_keeps_elapsed_time_when_the_customer_answers_at_once(sla_daemon, rdb):
    """The customer answers right after the agent's reply, before a daemon has
    banked the paused clock's business time (the reply does not wake the SLA
    timer, which runs at most a second apart: here it last ran ~t0 + 1 s and
    runs next ~t0 + 2 s): the resolution clock must still resume with the
    time used before the reply."""
    (d,) = sla_daemon([{"name": "res", "resolution": "6s"}])
    who = new_msisdn()
    conv = say(d, rdb, who)
    t0 = opened_at(rdb, conv)
    assert assigned_agent(rdb, conv) == AGENT
    computed(rdb, conv, "res")
    sleep_until(t0 + 1500)
    outbox_reply(rdb, conv)
    wait_status(rdb, conv, "waiting")
    assert say(d, rdb, who, "Thanks, and one more thing") == conv
    h = conv_hash(rdb, conv)
    paused, t1 = int(h["sla_res_paused_at"]), int(h["sla_res_started_at"])
    assert t1 >= paused and h["sla_res_state"] == "running", h
    h = wait_for(lambda: (lambda h: h if h.get("sla_res_due") else None)(conv_hash(rdb, conv)), 3,
                 "res due after resume")
    used = paused - t0
    assert int(h["sla_res_due"]) == t1 + 6000 - used, (
        f"resolution resumed with {6000 - (int(h['sla_res_due']) - t1)} ms used, "
        f"{used} ms were used before the reply: {h}")


@pytest.mark.timeout(30)
def test_resolution_breaches_once_across_a_pause(sla_daemon, rdb):
    """A breach fires once per clock run. Pausing (agent reply) and resuming
    (customer answer) continues the same resolution run; it is not a new one
    (only reopening starts resolution again), so no second breach."""
    (d,) = sla_daemon([{"name": "res", "resolution": "2s"}])
    who = new_msisdn()
    conv = say(d, rdb, who)
    assert assigned_agent(rdb, conv) == AGENT
    wait_sla(rdb, conv, "sla.breached", "resolution", timeout=4)
    reply(d, rdb, conv)
    assert conv_hash(rdb, conv)["sla_res_state"] == "paused"
    assert say(d, rdb, who, "It still does not work") == conv
    wait_for(lambda: conv_hash(rdb, conv).get("sla_res_state") == "running" or None, 3, "resumed")
    time.sleep(1.5)
    h = conv_hash(rdb, conv)
    clock = {k: v for k, v in h.items() if k.startswith("sla_res")}
    got = [(t, f["clock"], f["at"]) for t, f in sla_events(rdb, conv)]
    assert [g[:2] for g in got] == [("sla.warning", "resolution"), ("sla.breached", "resolution")], \
        f"events {got}; resolution clock after resuming: {clock}"
    h = conv_hash(rdb, conv)
    assert h["sla_res_breached"] == "1", h
    r = api(d).resolve(conv, AGENT)
    assert r.status_code == 200, r.text
    assert conv_hash(rdb, conv)["sla_res_state"] == "missed"


# --------------------------------------------------------------------------
# 5. escalation on breach


@pytest.mark.timeout(40)
def test_breach_escalates(sla_daemon, rdb):
    (d,) = sla_daemon([
        {"name": "lobby", "queue": ["lobby"], "first_response": "2s", "escalation_queue": "tier2"},
        {"name": "support", "queue": ["support"], "first_response": "2s",
         "escalate_priority": "urgent"},
    ])
    waiting_conv = say(d, rdb, new_msisdn(), "lobby: is anyone there?")
    held = say(d, rdb, new_msisdn(), "My parcel is late")
    rush = say(d, rdb, new_msisdn(), "rush please, parcel is late")
    assert assigned_agent(rdb, held) == AGENT and assigned_agent(rdb, rush) == AGENT
    h0 = conv_hash(rdb, waiting_conv)
    assert h0["status"] == "open" and h0["queue"] == "lobby" and h0["priority"] == "normal", h0
    assert conv_hash(rdb, rush)["priority"] == "urgent"

    for c in (waiting_conv, held, rush):
        wait_sla(rdb, c, "sla.breached", "first_response", timeout=5)

    # Waiting for an agent: moved to the escalation queue, priority high
    # (the default), keeping its place in time.
    h = conv_hash(rdb, waiting_conv)
    assert h["status"] == "open" and h["queue"] == "tier2" and h["priority"] == "high", h
    assert h["enqueued_at"] == h0["enqueued_at"], (h0, h)
    assert waiting_conv in rdb.zrange("omr:queue:tier2:waiting", 0, -1)
    assert waiting_conv not in rdb.zrange("omr:queue:lobby:waiting", 0, -1)
    items = [f for _, f in rdb.xrange("omr:queue:tier2:high") if f["conversation_id"] == waiting_conv]
    assert len(items) == 1 and items[0]["kind"] == "escalated", items
    (esc,) = events(rdb, "conversation.escalated", conv=waiting_conv)
    assert (esc["from_queue"], esc["from_priority"], esc["queue"], esc["priority"]) == \
        ("lobby", "normal", "tier2", "high"), esc
    assert esc["by"] == "omnirouted", esc
    q = [f for f in events(rdb, "conversation.queued", conv=waiting_conv) if f["kind"] == "escalated"]
    assert len(q) == 1 and q[0]["queue"] == "tier2", q

    # Assigned: keeps its agent, priority raised to the policy's.
    h = conv_hash(rdb, held)
    assert h["status"] == "assigned" and h["agent_id"] == AGENT, h
    assert h["queue"] == "support" and h["priority"] == "urgent", h
    (esc,) = events(rdb, "conversation.escalated", conv=held)
    assert (esc["from_queue"], esc["from_priority"], esc["queue"], esc["priority"]) == \
        ("support", "normal", "support", "urgent"), esc
    assert esc["agent_id"] == AGENT, esc
    assert not [f for f in events(rdb, "conversation.queued", conv=held) if f["kind"] == "escalated"]

    # Already at that priority: nothing changes, no escalation event.
    h = conv_hash(rdb, rush)
    assert h["status"] == "assigned" and h["priority"] == "urgent" and h["agent_id"] == AGENT, h
    assert events(rdb, "conversation.escalated", conv=rush) == []


# --------------------------------------------------------------------------
# 6. calendar: closed now -> due is the next opening + target


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@pytest.mark.timeout(40)
def test_calendar_closed_now_counts_from_the_next_opening(sla_daemon, rdb):
    tzname = "America/New_York"
    tz = ZoneInfo(tzname)
    today = datetime.datetime.now(tz).date()
    day2 = today + datetime.timedelta(days=2)   # a holiday this time
    day3 = today + datetime.timedelta(days=3)   # the next opening
    cal = {"office": {"timezone": tzname,
                      "hours": {DAYS[day2.weekday()]: "09:00-17:00",
                                DAYS[day3.weekday()]: ["09:00-12:00", "13:00-17:00"]},
                      "holidays": [day2.isoformat()]}}
    (d,) = sla_daemon([{"name": "office", "first_response": "2s", "resolution": "3s",
                        "warn_at": "0.5", "calendar": "office"}], calendars=cal)
    conv = say(d, rdb, new_msisdn())
    t0 = opened_at(rdb, conv)
    assert datetime.datetime.fromtimestamp(t0 / 1000, tz).date() == today, "ran across midnight"
    opening = int(datetime.datetime(day3.year, day3.month, day3.day, 9, 0, tzinfo=tz).timestamp()) * 1000
    h = computed(rdb, conv, "fr")
    h = computed(rdb, conv, "res")
    assert int(h["sla_fr_started_at"]) == t0, h
    assert int(h["sla_fr_due"]) == opening + 2000, (h["sla_fr_due"], opening + 2000)
    assert int(h["sla_fr_warn_at"]) == opening + 1000, h
    assert int(h["sla_res_due"]) == opening + 3000, h
    assert int(h["sla_res_warn_at"]) == opening + 1500, h
    assert due_members(rdb, conv) == {
        f"{conv}|fr|warn": opening + 1000, f"{conv}|fr|breach": opening + 2000,
        f"{conv}|res|warn": opening + 1500, f"{conv}|res|breach": opening + 3000}

    sleep_until(t0 + 3000 + TOL_MS)
    assert sla_events(rdb, conv) == []
    h = conv_hash(rdb, conv)
    assert h["sla_fr_state"] == "running" and h["sla_res_state"] == "running", h
    assert h.get("sla_fr_warned", "") != "1" and h["sla_fr_breached"] == "0", h


# --------------------------------------------------------------------------
# 7. resolve stops every clock


@pytest.mark.timeout(40)
def test_resolve_stops_every_clock(sla_daemon, rdb):
    (d,) = sla_daemon([{"name": "all", "first_response": "1s", "next_response": "1s",
                        "resolution": "2s"}])
    a = api(d)
    early, mid, late = (say(d, rdb, new_msisdn()) for _ in range(3))
    for c in (early, mid, late):
        assert assigned_agent(rdb, c) == AGENT

    r = a.resolve(early, AGENT)
    assert r.status_code == 200, r.text
    assert int(conv_hash(rdb, early)["resolved_at"]) < opened_at(rdb, early) + 800

    wait_sla(rdb, mid, "sla.breached", "first_response", timeout=4)
    r = a.resolve(mid, AGENT)
    assert r.status_code == 200, r.text
    assert int(conv_hash(rdb, mid)["resolved_at"]) < opened_at(rdb, mid) + 1600, \
        "resolved after the resolution warning; the test needs it before"

    wait_sla(rdb, late, "sla.breached", "resolution", timeout=4)
    r = a.resolve(late, AGENT)
    assert r.status_code == 200, r.text

    want = {early: ("stopped", "hit"), mid: ("missed", "hit"), late: ("missed", "missed")}
    for c, (fr, res) in want.items():
        h = conv_hash(rdb, c)
        assert h["status"] == "resolved", h
        assert (h["sla_fr_state"], h["sla_res_state"]) == (fr, res), (c, h)
        assert h["sla_fr_stopped_at"] == h["resolved_at"] == h["sla_res_stopped_at"], h
        assert h.get("sla_nr_state", "") in ("", "none"), h
        assert due_members(rdb, c) == {}, due_members(rdb, c)
        assert not [m for m in rdb.zrange("omr:sla:schedule", 0, -1) if m.startswith(c + "|")]

    sleep_until(opened_at(rdb, late) + 2000 + TOL_MS)
    quiet(rdb, [early, mid, late], 0.5)
    assert sla_events(rdb, early) == []
    assert [(t, f["clock"]) for t, f in sla_events(rdb, mid)] == [
        ("sla.warning", "first_response"), ("sla.breached", "first_response")]
    assert sorted((t, f["clock"]) for t, f in sla_events(rdb, late)) == sorted([
        ("sla.warning", "first_response"), ("sla.breached", "first_response"),
        ("sla.warning", "resolution"), ("sla.breached", "resolution")])


@pytest.mark.timeout(30)
def test_reopen_starts_next_response_and_resolution_again(sla_daemon, rdb):
    (d,) = sla_daemon([{"name": "p", "first_response": "10s", "next_response": "1s",
                        "resolution": "2s"}])
    who = new_msisdn()
    conv = say(d, rdb, who)
    assert assigned_agent(rdb, conv) == AGENT
    reply(d, rdb, conv)
    r = api(d).resolve(conv, AGENT)
    assert r.status_code == 200, r.text
    h = conv_hash(rdb, conv)
    assert (h["sla_fr_state"], h["sla_res_state"]) == ("hit", "hit"), h

    assert say(d, rdb, who, "It broke again") == conv
    t1 = int(wait_event(rdb, "conversation.reopened", conv=conv)["at"])
    h = computed(rdb, conv, "nr")
    h = computed(rdb, conv, "res")
    assert h["sla_fr_state"] == "hit", h   # first response happened once
    assert h["sla_nr_state"] == "running" and int(h["sla_nr_started_at"]) == t1, h
    assert h["sla_res_state"] == "running" and int(h["sla_res_started_at"]) == t1, h
    assert h["sla_res_elapsed"] == "0" and h["sla_res_breached"] == "0", h
    assert int(h["sla_nr_due"]) == t1 + 1000 and int(h["sla_res_due"]) == t1 + 2000, h
    on_time(wait_sla(rdb, conv, "sla.breached", "next_response", timeout=3), t1 + 1000)
    on_time(wait_sla(rdb, conv, "sla.breached", "resolution", timeout=3), t1 + 2000)


# --------------------------------------------------------------------------
# 8. config errors


def _check(tmp_path, cfg):
    path = tmp_path / "sla.yaml"
    text = to_yaml(cfg) + "\n"
    path.write_text(text)
    r = subprocess.run([str(BINARY), "--check-config", "-c", str(path)], capture_output=True,
                       text=True, timeout=10, env=daemon_env())
    return path, text.splitlines(), r


def _line(lines, needle, after=0):
    for i, ln in enumerate(lines, 1):
        if i > after and ln.strip().lstrip("- ").startswith(needle):
            return i
    raise AssertionError(f"{needle!r} not in config")


def _base(tmp_path):
    sec = tmp_path / "secrets"
    sec.mkdir(exist_ok=True)
    for n in ("shop", "partner", "strict"):
        (sec / f"{n}.secret").write_text("s\n")
        (sec / f"{n}.secret").chmod(0o600)
    return base_config("redis://127.0.0.1:1/0", sec, free_port())


def _assert_error(path, r, line, words):
    assert r.returncode == 1, f"exit {r.returncode}\nstderr:\n{r.stderr}"
    prefix = f"{path}:{line}: "
    hits = [ln for ln in r.stderr.splitlines() if ln.startswith(prefix)]
    assert hits, f"no error at {prefix!r}:\n{r.stderr}"
    for w in words:
        assert any(w in h for h in hits), f"{w!r} not in {hits}"


def test_valid_sla_config_passes(tmp_path):
    cfg = _base(tmp_path)
    cfg["calendars"] = {"office": {"timezone": "Europe/Paris", "hours": {"mon": "09:00-17:00"}}}
    cfg["sla"] = {"policies": [{"name": "chat", "channel": ["chat"], "first_response": "2m",
                                "next_response": "5m", "resolution": "8h", "calendar": "office",
                                "warn_at": "0.75", "escalation_queue": "tier2",
                                "escalate_priority": "urgent"}]}
    path, _, r = _check(tmp_path, cfg)
    assert r.returncode == 0, r.stderr


def test_unknown_calendar_in_policy(tmp_path):
    cfg = _base(tmp_path)
    cfg["calendars"] = {"office": {"timezone": "Europe/Paris", "hours": {"mon": "09:00-17:00"}}}
    cfg["sla"] = {"policies": [{"name": "ok", "first_response": "1m", "calendar": "office"},
                               {"name": "bad", "first_response": "1m", "calendar": "ofice"}]}
    path, lines, r = _check(tmp_path, cfg)
    _assert_error(path, r, _line(lines, 'name: "bad"'), ["ofice"])


def test_policy_without_targets(tmp_path):
    cfg = _base(tmp_path)
    cfg["sla"] = {"policies": [{"name": "empty", "channel": ["chat"]}]}
    path, lines, r = _check(tmp_path, cfg)
    _assert_error(path, r, _line(lines, 'name: "empty"'), ["target"])


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2", "0.8x"])
def test_warn_at_out_of_range(tmp_path, value):
    cfg = _base(tmp_path)
    cfg["sla"] = {"policies": [{"name": "p", "first_response": "1m", "warn_at": value}]}
    path, lines, r = _check(tmp_path, cfg)
    _assert_error(path, r, _line(lines, "warn_at:"), ["warn_at"])


@pytest.mark.timeout(30)
def test_customer_answer_after_a_transfer_resumes_the_clocks(start_daemon, sms_config, tmp_path,
                                                             rdb):
    """The agent replied, then the conversation was transferred (no longer
    `waiting`): the customer's answer still starts next response and resumes
    resolution (review finding: they stayed paused for good)."""
    cfg = sla_config(sms_config, tmp_path, [{"name": "p", "next_response": "30s",
                                             "resolution": "1h"}], agents=("ana", "bob"))
    d = start_daemon(cfg)
    api(d).online("ana", "bob")
    who = new_msisdn()
    conv = say(d, rdb, who)
    holder = assigned_agent(rdb, conv)
    computed(rdb, conv, "res")
    reply(d, rdb, conv, agent=holder)
    assert conv_hash(rdb, conv)["sla_res_state"] == "paused"
    other = "bob" if holder == "ana" else "ana"
    r = api(d).transfer(conv, holder, to_agent=other)
    assert r.status_code == 200, r.text
    assert conv_hash(rdb, conv)["status"] == "assigned"
    assert say(d, rdb, who, "Thanks, here is my order number 12345") == conv
    h = conv_hash(rdb, conv)
    assert h["sla_res_state"] == "running" and h["sla_nr_state"] == "running", h
    h = computed(rdb, conv, "nr")
    assert int(h["sla_nr_due"]) == int(h["sla_nr_started_at"]) + 30000, h
