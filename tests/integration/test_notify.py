"""Agents' tools notifications (spec/notify.md): every offer / assignment in
omr:events becomes a delivery (omr:notify:<event id>:<target>) to signed JSON
webhooks, Slack-compatible webhooks and the agent's email; retried from Redis
with backoff (Retry-After honoured), failed at once on other 4xx / SMTP 5xx,
surviving a restart, fanned out once with several daemons.

Everything is real: redis-server, omnirouted, a local HTTP receiver and an
aiosmtpd SMTP server on 127.0.0.1."""

import copy
import json
import signal
import time

import pytest

from conftest import free_port, wait_until, write_config
from notify_helpers import (AGENTS, WEBHOOK_SECRET, Api, Receiver, SmtpServer, delivery,
                            deliveries, events, notify_config, post_message, quiet_for,
                            second_daemon_config, secret_file, verify_signature, wait_delivery,
                            wait_event)

CONV_FIELDS = ("id", "channel", "status", "queue", "priority", "language", "customer_name",
               "customer_handle")


@pytest.fixture
def receiver():
    rec = Receiver().start()
    yield rec
    rec.stop()


@pytest.fixture
def smtp_servers():
    made = []

    def make(**kw):
        s = SmtpServer(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def start_with_notify(start_daemon, make_config, tmp_path, notify, *, online=("ana", "bob", "cy"), **kw):
    cfg = notify_config(make_config(), tmp_path, notify, **kw)
    d = start_daemon(cfg)
    api = Api(d)
    api.online(*online)
    return cfg, d, api


def assigned(rdb, conv, timeout=5.0):
    """Stream id and fields of the conversation's conversation.assigned event."""
    return wait_event(rdb, "conversation.assigned", conv, timeout=timeout)


def now_ms():
    return int(time.time() * 1000)


# --------------------------------------------------------------------------
# 1. JSON webhook


def test_json_webhook_body_headers_and_signature(start_daemon, make_config, rdb, tmp_path,
                                                 receiver):
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, {
        "webhooks": [{"name": "tools", "url": receiver.url("tools"), "format": "json",
                      "secret_file": secret_file(tmp_path)}]})
    conv = post_message(d, "q_ana")
    eid, ev = assigned(rdb, conv)
    assert ev["agent_id"] == "ana", ev
    t_send = time.time()
    (hit,) = receiver.wait_hits("tools", 1, timeout=5)
    did = f"{eid}:tools"

    # headers
    h = hit.headers
    assert h["content-type"].startswith("application/json"), h
    assert h["x-omniroute-delivery"] == did, h
    assert h["x-omniroute-event"] == "conversation.assigned", h
    ts = h["x-omniroute-timestamp"]
    assert ts.isdigit() and abs(int(ts) - t_send) <= 5, f"timestamp {ts} vs now {t_send}"
    assert h["x-omniroute-signature"].startswith("sha256="), h
    assert verify_signature(hit), "X-Omniroute-Signature is not HMAC-SHA256(secret, ts + '.' + body)"
    assert not verify_signature(hit, WEBHOOK_SECRET + "x")
    # the signature covers the raw body: a changed byte no longer verifies
    forged = copy.copy(hit)
    forged.body = hit.body.replace(b"ana", b"bob", 1)
    assert forged.body != hit.body and not verify_signature(forged)

    # body
    b = hit.json
    assert set(b) == {"delivery_id", "event_id", "event", "agent", "conversation"}, b
    assert b["delivery_id"] == did and b["event_id"] == eid, b
    assert b["event"] == ev, "event must carry all event fields as strings"
    assert all(isinstance(v, str) for v in b["event"].values()), b["event"]
    assert b["agent"] == {"id": "ana", "name": "Ana Lima"}, b["agent"]
    ch = rdb.hgetall(f"omr:conv:{{{conv}}}")
    assert set(b["conversation"]) == set(CONV_FIELDS), b["conversation"]
    for k in CONV_FIELDS:
        assert b["conversation"][k] == ch[k], (k, b["conversation"], ch)
    assert b["conversation"]["id"] == conv and b["conversation"]["queue"] == "q_ana"
    assert b["conversation"]["customer_name"] == "Zoë Q", b["conversation"]
    assert b["conversation"]["customer_handle"] == "+15550001111", b["conversation"]

    # the delivery record
    rec = wait_delivery(rdb, did, "delivered", timeout=3)
    assert rec["delivery_id"] == did and rec["target"] == "tools" and rec["kind"] == "webhook", rec
    assert rec["to"] == "", rec
    assert rec["attempts"] == "1" and rec["last_status"] == "200" and rec["last_error"] == "", rec
    assert json.loads(rec["payload"]) == b, "the stored payload is what was sent"
    assert int(rec["created_at"]) <= int(rec["updated_at"]), rec
    assert rdb.zscore("omr:notify:due", did) is None, "a delivered one leaves the due set"
    ttl = rdb.ttl(f"omr:notify:{did}")
    assert 6 * 86400 < ttl <= 7 * 86400, f"finished deliveries are kept 7 days, TTL {ttl}"

    # once: nothing more arrives
    quiet_for(lambda: len(receiver.hits()) == 1, 0.8)


# --------------------------------------------------------------------------
# 2. Slack


def test_slack_webhook_text_and_no_signature(start_daemon, make_config, rdb, tmp_path, receiver):
    url_file = tmp_path / "slack.url"  # Slack URLs are secrets: url_file
    url_file.write_text(receiver.url("slack") + "\n")
    url_file.chmod(0o600)
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, {
        "webhooks": [{"name": "slack", "url_file": str(url_file), "format": "slack"}]})
    conv = post_message(d, "q_bob", customer_name="Zoë Q", handle="+15550001111")
    eid, ev = assigned(rdb, conv)
    (hit,) = receiver.wait_hits("slack", 1, timeout=5)
    h = hit.headers
    assert "x-omniroute-signature" not in h, f"no secret_file: no signature header ({h})"
    assert h["x-omniroute-delivery"] == f"{eid}:slack", h
    assert h["x-omniroute-event"] == "conversation.assigned", h
    assert h["x-omniroute-timestamp"].isdigit(), h
    assert h["content-type"].startswith("application/json"), h
    b = hit.json
    assert set(b) == {"text"}, b
    lang = rdb.hget(f"omr:conv:{{{conv}}}", "language")
    want = (f"*normal chat conversation {conv} assigned to Bob Stone*\n"
            f"customer: Zoë Q (+15550001111) · language: {lang} · queue: q_bob\n"
            f"`omniroutectl show {conv}`")
    assert b["text"] == want, b["text"]
    wait_delivery(rdb, f"{eid}:slack", "delivered", timeout=3)


# --------------------------------------------------------------------------
# 3. retries


def test_5xx_retried_with_backoff_and_retry_after(start_daemon, make_config, rdb, tmp_path,
                                                  receiver):
    receiver.script("flaky", 500, (503, {"Retry-After": "2"}), 200)
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, {
        "webhooks": [{"name": "flaky", "url": receiver.url("flaky"),
                      "secret_file": secret_file(tmp_path)}]})
    conv = post_message(d, "q_ana")
    eid, _ = assigned(rdb, conv)
    did = f"{eid}:flaky"

    # after the 503 with Retry-After: 2 the next attempt is stored 2 s later
    receiver.wait_hits("flaky", 2, timeout=5)
    rec = wait_until(lambda: (lambda h: h if h.get("last_status") == "503" else None)(
        delivery(rdb, did)), 3, what="the 503 outcome recorded")
    assert rec["status"] == "retrying", rec
    assert rec["last_error"] == "HTTP 503", rec
    assert rec["attempts"] == "2", rec
    assert int(rec["next_attempt_at"]) - int(rec["updated_at"]) == 2000, \
        f"Retry-After: 2 must put the next attempt 2000 ms later: {rec}"
    assert rdb.zscore("omr:notify:due", did) == float(rec["next_attempt_at"]), rec

    hits = receiver.wait_hits("flaky", 3, timeout=8)
    rec = wait_delivery(rdb, did, "delivered", timeout=3)
    quiet_for(lambda: len(receiver.hits("flaky")) == 3, 1.0)
    hits = receiver.hits("flaky")
    assert [x.status for x in hits] == [500, 503, 200], hits
    assert {x.delivery for x in hits} == {did}, "the delivery id never changes across retries"
    assert all(x.body == hits[0].body for x in hits), "every attempt sends the same body"
    assert all(verify_signature(x) for x in hits), "each attempt is signed (fresh timestamp)"
    assert sum(1 for x in hits if x.status == 200) == 1
    first_gap = hits[1].t - hits[0].t
    assert 0.4 <= first_gap <= 1.6, f"first retry after {first_gap:.2f}s (backoff 1 s, jitter [0.5, 1])"
    second_gap = hits[2].t - hits[1].t
    assert second_gap >= 1.9, f"retried {second_gap:.2f}s after a 503 with Retry-After: 2"
    assert rec["attempts"] == "3" and rec["last_status"] == "200" and rec["last_error"] == "", rec
    assert rdb.zscore("omr:notify:due", did) is None
    assert not events(rdb, "notify.failed")


def test_408_and_429_are_retried(start_daemon, make_config, rdb, tmp_path, receiver):
    receiver.script("a", 429, 200)
    receiver.script("b", 408, 200)
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, {
        "webhooks": [{"name": "a", "url": receiver.url("a")},
                     {"name": "b", "url": receiver.url("b")}]})
    conv = post_message(d, "q_ana")
    eid, _ = assigned(rdb, conv)
    for name, first in (("a", 429), ("b", 408)):
        hs = receiver.wait_hits(name, 2, timeout=5)
        assert [x.status for x in hs] == [first, 200], hs
        assert {x.delivery for x in hs} == {f"{eid}:{name}"}, hs
        rec = wait_delivery(rdb, f"{eid}:{name}", "delivered", timeout=3)
        assert rec["attempts"] == "2", rec


# --------------------------------------------------------------------------
# 4. permanent failure


@pytest.mark.parametrize("status", [410, 400])
def test_4xx_fails_at_once_with_event(start_daemon, make_config, rdb, tmp_path, receiver, status):
    receiver.script("gone", status, status, status)
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, {
        "webhooks": [{"name": "gone", "url": receiver.url("gone")}]})
    conv = post_message(d, "q_ana")
    eid, _ = assigned(rdb, conv)
    did = f"{eid}:gone"
    rec = wait_delivery(rdb, did, "failed", timeout=5)
    assert rec["attempts"] == "1", rec
    assert rec["last_status"] == str(status) and rec["last_error"] == f"HTTP {status}", rec
    assert rdb.zscore("omr:notify:due", did) is None, "a failed delivery leaves the due set"
    assert rdb.ttl(f"omr:notify:{did}") > 6 * 86400
    _, fe = wait_event(rdb, "notify.failed", timeout=3)
    assert fe["delivery_id"] == did and fe["target"] == "gone", fe
    assert fe["attempts"] == "1" and fe["error"] == f"HTTP {status}", fe
    assert fe.get("at", "").isdigit(), fe
    quiet_for(lambda: len(receiver.hits("gone")) == 1, 1.5)
    assert len(events(rdb, "notify.failed")) == 1


def test_give_up_after_ends_retries_as_failed(start_daemon, make_config, rdb, tmp_path, receiver):
    receiver.script("down", *([503] * 20))
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, {
        "give_up_after": "3s",
        "webhooks": [{"name": "down", "url": receiver.url("down")}]})
    t0 = time.monotonic()
    conv = post_message(d, "q_ana")
    eid, _ = assigned(rdb, conv)
    did = f"{eid}:down"
    rec = wait_delivery(rdb, did, "failed", timeout=8)
    took = time.monotonic() - t0
    assert took <= 4.5, f"gave up only after {took:.1f}s with give_up_after 3s"
    n = len(receiver.hits("down"))
    assert n >= 2 and rec["attempts"] == str(n), (n, rec)
    assert rec["last_status"] == "503", rec
    (_, fe), = events(rdb, "notify.failed")
    assert fe["delivery_id"] == did and fe["attempts"] == str(n), fe
    quiet_for(lambda: len(receiver.hits("down")) == n, 1.0)


# --------------------------------------------------------------------------
# 5. restart


def test_retry_survives_restart(start_daemon, make_config, rdb, tmp_path):
    port = free_port()
    rec_later = Receiver(port)  # not listening yet: connection refused
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, {
        "give_up_after": "60s", "request_timeout": "1s",
        "webhooks": [{"name": "tools", "url": rec_later.url("tools"),
                      "secret_file": secret_file(tmp_path)}]})
    try:
        conv = post_message(d, "q_ana")
        eid, _ = assigned(rdb, conv)
        did = f"{eid}:tools"

        # Retrying (at least two refused attempts), the next one not imminent.
        def retrying_later():
            h = delivery(rdb, did)
            if (h.get("status") == "retrying" and int(h.get("attempts", 0)) >= 2
                    and int(h.get("next_attempt_at", 0)) - now_ms() >= 600):
                return h
            return None
        h = wait_until(retrying_later, 10, what="a retrying delivery")
        assert h["last_status"] == "0" and h["last_error"], h
        rc, _ = d.terminate()
        assert rc == 0
        h = delivery(rdb, did)
        assert h["status"] == "retrying", f"after SIGTERM: {h}"
        assert rdb.zscore("omr:notify:due", did) is not None, "the retry stays queued in Redis"
        attempts_before, created = int(h["attempts"]), h["created_at"]

        rec_later.start()
        start_daemon(cfg, name="omnirouted-again")
        (hit,) = rec_later.wait_hits("tools", 1, timeout=10)
        assert hit.delivery == did, hit
        assert verify_signature(hit)
        assert hit.json["delivery_id"] == did and hit.json["conversation"]["id"] == conv
        h = wait_delivery(rdb, did, "delivered", timeout=3)
        assert int(h["attempts"]) == attempts_before + 1, h
        assert h["created_at"] == created, "the same delivery, not a new one"
        assert list(deliveries(rdb)) == [did], deliveries(rdb)
        quiet_for(lambda: len(rec_later.hits()) == 1, 0.8)
    finally:
        rec_later.stop()


def test_sigterm_waits_for_an_inflight_delivery(start_daemon, make_config, rdb, tmp_path,
                                                receiver):
    """A request in flight when SIGTERM arrives: the drain waits for it and
    records the outcome, so the restarted daemon does not send it again."""
    receiver.script("slow", (200, {}, 1.5))
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, {
        "request_timeout": "5s",
        "webhooks": [{"name": "slow", "url": receiver.url("slow")}]})
    conv = post_message(d, "q_ana")
    eid, _ = assigned(rdb, conv)
    did = f"{eid}:slow"
    wait_until(lambda: receiver.arrivals or None, 5, what="the request to arrive")
    rc, took = d.terminate()
    assert rc == 0
    assert took >= 0.5, f"exited {took:.2f}s after SIGTERM with a request in flight"
    h = delivery(rdb, did)
    assert h.get("status") == "delivered", f"outcome of the in-flight request not recorded: {h}"
    start_daemon(cfg, name="omnirouted-again")
    quiet_for(lambda: len(receiver.arrivals) == 1, 1.5)


# --------------------------------------------------------------------------
# 6. filters


def test_team_agent_and_event_filters(start_daemon, make_config, rdb, tmp_path, receiver):
    hooks = [
        {"name": "all"},
        {"name": "t1", "teams": ["tier1"]},
        {"name": "t2", "teams": ["tier2"]},
        {"name": "only_ana", "agents": ["ana"]},
        {"name": "t2_or_cy", "teams": ["tier2"], "agents": ["cy"]},
        {"name": "offers", "events": ["conversation.offered"]},
        {"name": "offers_slack", "events": ["conversation.offered"], "format": "slack"},
        {"name": "resolved", "events": ["conversation.resolved"], "teams": ["tier2"]},
    ]
    for w in hooks:
        w["url"] = receiver.url(w["name"])
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, {"webhooks": hooks})

    c_ana = post_message(d, "q_ana")
    c_bob = post_message(d, "q_bob")
    c_cy = post_message(d, "q_cy")
    c_off = post_message(d, "offers")
    e_ana, _ = assigned(rdb, c_ana)
    e_bob, _ = assigned(rdb, c_bob)
    e_cy, _ = assigned(rdb, c_cy)
    e_offd, f_offd = wait_event(rdb, "conversation.offered", c_off)
    assert f_offd["agent_id"] == "ana", f_offd
    r = api.act("accept", c_off, "ana")
    assert r.status_code == 200, r.text
    e_offa, f_offa = assigned(rdb, c_off)
    r = api.act("resolve", c_bob, "bob")
    assert r.status_code == 200, r.text
    e_res, _ = wait_event(rdb, "conversation.resolved", c_bob)

    A, O = "conversation.assigned", "conversation.offered"
    want = {
        "all": {(e_ana, A), (e_bob, A), (e_cy, A), (e_offd, O), (e_offa, A)},
        "t1": {(e_ana, A), (e_cy, A), (e_offd, O), (e_offa, A)},
        "t2": {(e_bob, A)},
        "only_ana": {(e_ana, A), (e_offd, O), (e_offa, A)},
        "t2_or_cy": {(e_bob, A), (e_cy, A)},
        "offers": {(e_offd, O)},
        "offers_slack": {(e_offd, O)},
        "resolved": {(e_res, "conversation.resolved")},
    }
    want_ids = {f"{e}:{name}" for name, s in want.items() for e, _ in s}

    def all_delivered():
        ds = deliveries(rdb)
        if set(ds) >= want_ids and all(ds[i]["status"] == "delivered" for i in want_ids):
            return ds
        return None
    ds = wait_until(all_delivered, 8, what="every expected delivery delivered")
    assert set(ds) == want_ids, f"unexpected deliveries: {sorted(set(ds) - want_ids)}"
    quiet_for(lambda: len(receiver.hits()) == len(want_ids), 0.8)
    for name, expected in want.items():
        got = {(x.delivery.rsplit(":", 1)[0], x.event) for x in receiver.hits(name)}
        assert got == expected, f"webhook {name}: got {sorted(got)}, want {sorted(expected)}"
        assert all(x.delivery.endswith(":" + name) for x in receiver.hits(name))
    (slack,) = receiver.hits("offers_slack")
    assert slack.json["text"].startswith(
        f"*normal chat conversation {c_off} offered to Ana Lima*\n"), slack.json
    (offer,) = receiver.hits("offers")
    assert offer.json["event"]["type"] == O and offer.json["agent"]["id"] == "ana", offer.json
    assert offer.json["event"]["deadline"] == f_offd["deadline"], offer.json


def test_transfer_notifies_the_receiving_agent(start_daemon, make_config, rdb, tmp_path,
                                               receiver):
    hooks = [{"name": "xfer_t2", "teams": ["tier2"], "events": ["conversation.transferred"]},
             {"name": "xfer_t1", "teams": ["tier1"], "events": ["conversation.transferred"]}]
    for w in hooks:
        w["url"] = receiver.url(w["name"])
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, {"webhooks": hooks})
    conv = post_message(d, "q_ana")
    assigned(rdb, conv)
    r = api.act("transfer", conv, "ana", to_agent="bob")
    assert r.status_code == 200, r.text
    eid, ev = wait_event(rdb, "conversation.transferred", conv)
    assert ev.get("to_agent") == "bob", ev
    (hit,) = receiver.wait_hits("xfer_t2", 1, timeout=5)
    assert hit.delivery == f"{eid}:xfer_t2" and hit.event == "conversation.transferred", hit
    assert hit.json["agent"] == {"id": "bob", "name": "Bob Stone"}, hit.json
    wait_delivery(rdb, f"{eid}:xfer_t2", "delivered", timeout=3)
    quiet_for(lambda: receiver.hits("xfer_t1") == [], 0.8)


def test_only_events_after_notify_is_configured(start_daemon, make_config, rdb, tmp_path,
                                                receiver):
    """The group starts at '$' when notify is first configured (here by a
    reload): earlier assignments are never delivered."""
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, None)
    old = post_message(d, "q_ana")
    e_old, _ = assigned(rdb, old)
    cfg["notify"] = {"webhooks": [{"name": "late", "url": receiver.url("late")}]}
    write_config(d.cfg_path, cfg)
    off = d.log_offset()
    d.signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded", since=off, timeout=5)
    new = post_message(d, "q_ana")
    e_new, _ = assigned(rdb, new)
    (hit,) = receiver.wait_hits("late", 1, timeout=5)
    assert hit.delivery == f"{e_new}:late", hit
    quiet_for(lambda: len(receiver.hits()) == 1, 0.8)
    assert f"{e_old}:late" not in deliveries(rdb)


def test_webhook_named_email_does_not_collide_with_email(start_daemon, make_config, rdb,
                                                         tmp_path, receiver, smtp_servers):
    """The email target's name is "email"; a webhook may not silently share
    its delivery ids: either the config is refused or both are delivered."""
    smtp = smtp_servers().start()
    cfg = notify_config(make_config(), tmp_path, {
        "webhooks": [{"name": "email", "url": receiver.url("email")}],
        "email": {"server": smtp.address, "from": "omniroute@example.com", "timeout": "5s"}})
    d = start_daemon(cfg, wait_ready=False)
    try:
        d.wait_ready(5)
    except AssertionError:
        assert not d.alive(), "neither ready nor exited"
        assert "email" in d.log_text(), d.log_text()
        return  # refused: fine
    Api(d).online("ana")
    conv = post_message(d, "q_ana")
    eid, _ = assigned(rdb, conv)
    try:
        wait_until(lambda: (receiver.hits("email") and smtp.mails("ana@example.com")) or None, 4,
                   what="both the webhook and the email")
    except AssertionError:
        ds = deliveries(rdb)
        raise AssertionError(
            f"webhook 'email' got {receiver.hits('email')}, mailbox got {smtp.mails()}; "
            f"omr:notify records: {[(k, v['kind'], v['to'], v['status']) for k, v in ds.items()]}")


# --------------------------------------------------------------------------
# 7. email


def email_notify(server, **over):
    e = {"server": server, "from": "omniroute@example.com", "timeout": "5s"}
    e.update(over)
    return {"give_up_after": "60s", "email": e}


def test_email_to_the_agent(start_daemon, make_config, rdb, tmp_path, smtp_servers):
    smtp = smtp_servers().start()
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, email_notify(smtp.address))
    conv = post_message(d, "q_ana")
    c_cy = post_message(d, "q_cy")  # cy has no email: no delivery
    eid, _ = assigned(rdb, conv)
    e_cy, _ = assigned(rdb, c_cy)
    did = f"{eid}:@email"
    (m,) = smtp.wait_mails(1, timeout=8)
    assert m.mail_from == "omniroute@example.com" and m.rcpt_tos == ["ana@example.com"], m
    msg = m.msg
    assert msg["From"] == "omniroute@example.com", msg["From"]
    assert msg["To"] == "ana@example.com", msg["To"]
    assert msg["Subject"] == f"[omniroute] normal chat conversation {conv} assigned to Ana Lima", \
        msg["Subject"]
    assert msg["Auto-Submitted"] == "auto-generated", msg.items()
    assert msg["X-Omniroute-Delivery"] == did, msg.items()
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8", \
        msg["Content-Type"]
    assert msg["Content-Transfer-Encoding"] == "8bit", msg.items()
    body = msg.get_content()
    lang = rdb.hget(f"omr:conv:{{{conv}}}", "language")
    for part in ("Customer: Zoë Q +15550001111", f"Language: {lang}", "Queue: q_ana",
                 "Event: conversation.assigned", f"omniroutectl show {conv}"):
        assert part in body, f"{part!r} not in the body:\n{body}"
    assert "Zoë".encode() in m.content, "UTF-8 8bit body"
    rec = wait_delivery(rdb, did, "delivered", timeout=3)
    assert rec["kind"] == "email" and rec["to"] == "ana@example.com" and rec["target"] == "email"
    assert rec["attempts"] == "1", rec
    quiet_for(lambda: len(smtp.mails()) == 1, 0.8)
    assert f"{e_cy}:@email" not in deliveries(rdb), "an agent without email gets no delivery"


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_email_550_fails_without_retry(start_daemon, make_config, rdb, tmp_path, smtp_servers,
                                       stage):
    if stage == "rcpt":
        smtp = smtp_servers(reject_rcpt={"ana@example.com"}).start()
    else:
        smtp = smtp_servers(reject_data="550 5.7.1 Message rejected").start()
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, email_notify(smtp.address))
    conv = post_message(d, "q_ana")
    eid, _ = assigned(rdb, conv)
    did = f"{eid}:@email"
    rec = wait_delivery(rdb, did, ("failed", "delivered"), timeout=8)
    assert rec["status"] == "failed", f"SMTP 550 at {stage}: {rec}"
    assert rec["attempts"] == "1", rec
    assert rec["last_status"].startswith("5"), rec
    _, fe = wait_event(rdb, "notify.failed", timeout=3)
    assert fe["delivery_id"] == did and fe["target"] == "email", fe
    quiet_for(lambda: len(smtp.rejected) == 1, 1.5)
    assert smtp.mails() == []


def test_email_rcpt_550_reason_is_recorded(start_daemon, make_config, rdb, tmp_path,
                                           smtp_servers):
    """The recipient refused with 550: that answer is the outcome
    (last_status / last_error), not a follow-up protocol error."""
    smtp = smtp_servers(reject_rcpt={"ana@example.com"}).start()
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, email_notify(smtp.address))
    conv = post_message(d, "q_ana")
    eid, _ = assigned(rdb, conv)
    rec = wait_delivery(rdb, f"{eid}:@email", ("failed", "delivered"), timeout=8)
    _, fe = wait_event(rdb, "notify.failed", timeout=3)
    assert rec["last_status"] == "550" and "No such user" in rec["last_error"], \
        f"recorded {rec['last_status']} {rec['last_error']!r} for a 550 at RCPT TO; event {fe}"


def test_email_rcpt_4xx_is_retried(start_daemon, make_config, rdb, tmp_path, smtp_servers):
    """A temporary refusal of the recipient (451 greylisting) is not an SMTP
    5xx answer: the email is retried and then delivered."""
    smtp = smtp_servers(rcpt_script={"ana@example.com": [
        "451 4.7.1 Greylisted, please try again later"]}).start()
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path, email_notify(smtp.address))
    conv = post_message(d, "q_ana")
    eid, _ = assigned(rdb, conv)
    did = f"{eid}:@email"
    wait_until(lambda: smtp.rejected or None, 5, what="the 451 answer")
    rec = wait_delivery(rdb, did, ("failed", "retrying", "delivered"), timeout=5)
    assert rec["status"] != "failed", \
        f"451 at RCPT TO made the delivery fail permanently: {rec}; notify.failed events: " \
        f"{events(rdb, 'notify.failed')}"
    (m,) = smtp.wait_mails(1, to="ana@example.com", timeout=6)
    assert m.delivery == did
    rec = wait_delivery(rdb, did, "delivered", timeout=3)
    assert rec["attempts"] == "2", rec


def test_email_retried_when_server_comes_up(start_daemon, make_config, rdb, tmp_path,
                                            smtp_servers):
    port = free_port()
    cfg, d, api = start_with_notify(start_daemon, make_config, tmp_path,
                        email_notify(f"127.0.0.1:{port}", starttls="disabled"))
    conv = post_message(d, "q_bob")
    eid, _ = assigned(rdb, conv)
    did = f"{eid}:@email"
    wait_until(lambda: (lambda h: h if h.get("status") == "retrying"
                        and int(h.get("attempts", 0)) >= 2 else None)(delivery(rdb, did)),
               8, what="a retrying email delivery")
    smtp = smtp_servers(port=port).start()
    (m,) = smtp.wait_mails(1, timeout=10)
    assert m.rcpt_tos == ["bob@example.com"] and m.delivery == did, m
    assert m.msg["Subject"].endswith(f"conversation {conv} assigned to Bob Stone"), m.msg["Subject"]
    rec = wait_delivery(rdb, did, "delivered", timeout=3)
    assert int(rec["attempts"]) >= 3, rec
    quiet_for(lambda: len(smtp.mails()) == 1, 0.8)


# --------------------------------------------------------------------------
# 8. two daemons


def test_two_daemons_deliver_each_event_once_per_target(start_daemon, make_config, rdb, tmp_path,
                                                        receiver, smtp_servers):
    smtp = smtp_servers().start()
    receiver.script("flaky", 500, 500, 500)  # three retries needed somewhere
    notify = {"give_up_after": "60s",
              "webhooks": [{"name": "all", "url": receiver.url("all"),
                            "secret_file": secret_file(tmp_path)},
                           {"name": "flaky", "url": receiver.url("flaky")}],
              "email": {"server": smtp.address, "from": "omniroute@example.com",
                        "timeout": "5s"}}
    cfg = notify_config(make_config(), tmp_path, notify)
    d1 = start_daemon(cfg)
    d2 = start_daemon(second_daemon_config(cfg))
    Api(d1).online("ana", "bob", "cy")

    queues = ["q_ana", "q_bob", "q_cy"] * 6
    convs = [post_message([d1, d2][i % 2], q) for i, q in enumerate(queues)]
    expected = {}  # delivery id -> conv
    for conv, q in zip(convs, queues):
        eid, ev = assigned(rdb, conv)
        expected[f"{eid}:all"] = conv
        expected[f"{eid}:flaky"] = conv
        if AGENTS[ev["agent_id"]][1]:
            expected[f"{eid}:@email"] = conv

    def all_delivered():
        ds = deliveries(rdb)
        if set(ds) >= set(expected) and all(ds[i]["status"] == "delivered" for i in expected):
            return ds
        return None
    ds = wait_until(all_delivered, 15, what="every delivery delivered")
    assert set(ds) == set(expected), sorted(set(ds) ^ set(expected))
    n_mail = sum(1 for k in expected if k.endswith(":@email"))
    quiet_for(lambda: len(receiver.hits("all")) == len(convs)
              and len(receiver.hits("flaky")) == len(convs) + 3
              and len(smtp.mails()) == n_mail, 1.0)

    all_ids = [x.delivery for x in receiver.hits("all")]
    assert sorted(all_ids) == sorted(k for k in expected if k.endswith(":all")), all_ids
    assert all(verify_signature(x) for x in receiver.hits("all"))
    ok_flaky = [x.delivery for x in receiver.hits("flaky") if x.status == 200]
    assert sorted(ok_flaky) == sorted(k for k in expected if k.endswith(":flaky")), ok_flaky
    mail_ids = [m.delivery for m in smtp.mails()]
    assert sorted(mail_ids) == sorted(k for k in expected if k.endswith(":@email")), mail_ids
    for m in smtp.mails():
        conv = expected[m.delivery]
        assert conv in m.msg["Subject"], (m.msg["Subject"], conv)
    # each conversation's delivery went to its agent's address
    for did, conv in expected.items():
        if did.endswith(":@email"):
            agent = rdb.hget(f"omr:conv:{{{conv}}}", "agent_id")
            assert ds[did]["to"] == AGENTS[agent][1], (did, ds[did])
    retried = [i for i, h in ds.items() if int(h["attempts"]) > 1]
    assert all(i.endswith(":flaky") for i in retried), retried
    assert sum(int(ds[i]["attempts"]) - 1 for i in retried) == 3, {i: ds[i]["attempts"] for i in retried}
    info = rdb.xinfo_groups("omr:events")
    g = [x for x in info if x["name"] == "notify"]
    assert g and g[0]["pending"] == 0, info
