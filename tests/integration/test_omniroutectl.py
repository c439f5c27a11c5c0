"""omniroutectl, the agents' terminal tool, against the real daemon: agent
add / list / show / remove, presence (login, login --stay, away, logout),
next (claim from a pull queue), show, reply, resolve, transfer, and its
exit codes (1 daemon error, 2 usage, 3 nothing to claim). The token only
ever comes from a file: there is no option for it, and it never shows in
the process' argv or in anything the tool prints.

The binary is env OMNIROUTECTL (ctest sets it); without it these tests
are skipped."""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import free_port, payload, uid, wait_until
from sms_helpers import (API_TOKENS, HELPDESK, assert_vonage_ok, conv_key, events, reply_key,
                         send_vonage, stored_one, vonage_params)

CTL = os.environ.get("OMNIROUTECTL")

pytestmark = pytest.mark.skipif(
    not CTL or not os.access(CTL, os.X_OK),
    reason="OMNIROUTECTL is not set to the built omniroutectl binary (ctest sets it)")

REPLY_RE = re.compile(r"^reply (\d+-\d+) (queued|was already queued)$", re.M)


# --------------------------------------------------------------------------
# helpers


class Ctl:
    """Runs omniroutectl against one daemon with a token file."""

    def __init__(self, daemon, token_file):
        self.daemon = daemon
        self.token_file = Path(token_file)

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.lower().endswith("_proxy") and not k.startswith("OMNIROUTE_")}
        env["OMNIROUTE_URL"] = self.daemon.url("")
        env["OMNIROUTE_TOKEN_FILE"] = str(self.token_file)
        env.update(extra)
        return env

    def run(self, *args, agent=None, input=None, json_out=False, timeout=40, env=None):
        argv = [CTL]
        if agent is not None:
            argv += ["--agent", agent]
        if json_out:
            argv.append("--json")
        argv += list(args)
        return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                              env=env or self.env())

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"omniroutectl {' '.join(args)} -> {r.returncode}\n" \
                                  f"stdout: {r.stdout}\nstderr: {r.stderr}"
        assert HELPDESK not in r.stdout + r.stderr, "the token was printed"
        return r

    def json(self, *args, **kw):
        return json.loads(self.ok(*args, json_out=True, **kw).stdout)

    def agent(self, agent_id):
        return self.json("agent", "show", agent_id)["agent"]

    def conversation(self, conv):
        return self.json("show", conv)


def assert_fails(r, code, error=None):
    """Exit code `code`; for 1, the daemon's error on stderr as
    'omniroutectl: <error>: <detail>'."""
    assert r.returncode == code, f"expected exit {code}, got {r.returncode}\n" \
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}"
    assert HELPDESK not in r.stdout + r.stderr, "the token was printed"
    if error is not None:
        assert re.search(rf"^omniroutectl: {re.escape(error)}: \S", r.stderr, re.M), r.stderr


@pytest.fixture
def ctl_daemon(start_daemon, sms_config):
    """The daemon with api tokens and the fake SMS providers (sms_config)."""
    return start_daemon(sms_config())


@pytest.fixture
def ctl(ctl_daemon, sms_secrets):
    return Ctl(ctl_daemon, sms_secrets / "helpdesk.token")


def api_conversation(daemon, text="hello there, my parcel is late", queue="general"):
    """An inbound message through the api adapter "shop" -> its conversation
    (in `queue`: the default route)."""
    r = daemon.post("shop", payload(text=text, from_={"id": uid("cust"), "name": "Ana",
                                                      "handle": "+15550001111"}))
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["queue"] == queue, j
    return j["conversation_id"]


def sms_conversation(daemon, rdb, text="Where is my order?"):
    """An inbound SMS on the unsigned Vonage account "open": a conversation
    that can be answered. -> (conversation id, queue)."""
    p = vonage_params(account="open", msisdn="14155550123", text=text, timestamp=None)
    assert_vonage_ok(send_vonage(daemon, p, account="open", how="get"))
    conv = stored_one(rdb, p["messageId"])[2]["conversation_id"]
    return conv, rdb.hget(conv_key(conv), "queue")


def message_text(m):
    """A message of GET /v1/conversations/{id}: "text", else message.text."""
    return m.get("text") or (m.get("message") or {}).get("text") or ""


def online_agent(ctl, agent_id, queues=("general",)):
    args = ["agent", "add", agent_id, "--name", agent_id.title(), "--language", "en",
            "--capacity", "sms=5", "--capacity", "chat=3"]
    for q in queues:
        args += ["--queue", q]
    ctl.ok(*args)
    ctl.ok("login", agent=agent_id)


def claim(ctl, agent_id, conv):
    """`next` as agent_id; asserts it got conv and prints what an agent needs."""
    r = ctl.ok("next", agent=agent_id)
    assert conv in r.stdout, r.stdout
    return r


# --------------------------------------------------------------------------
# no daemon needed


def test_version_help_and_usage_errors(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIROUTE_")}

    def run(*args):
        return subprocess.run([CTL, *args], capture_output=True, text=True, timeout=10, env=env)

    r = run("version")
    assert r.returncode == 0 and re.fullmatch(r"omniroutectl \S+\n", r.stdout), r
    r = run("help")
    assert r.returncode == 0 and "usage: omniroutectl" in r.stdout, r
    for cmd in ("agent add", "login", "next", "reply", "transfer"):
        assert cmd in r.stdout, f"help does not list {cmd!r}"

    # unknown command / no command: usage on stderr, exit 2
    r = run("frobnicate")
    assert r.returncode == 2 and "usage: omniroutectl" in r.stderr and r.stdout == "", r
    assert run().returncode == 2
    assert run("agent", "frobnicate").returncode == 2
    # missing arguments, bad options
    assert run("agent", "add").returncode == 2
    assert run("agent", "add", "ana", "--capacity", "sms").returncode == 2
    assert run("agent", "show").returncode == 2
    assert run("show").returncode == 2
    # acting commands need --agent / OMNIROUTE_AGENT
    r = run("next")
    assert r.returncode == 2 and "--agent" in r.stderr, r
    assert run("--agent", "ana", "transfer", "C1").returncode == 2  # neither --queue nor --to
    assert run("--agent", "ana", "transfer", "C1", "--queue", "q", "--to", "bob").returncode == 2
    assert run("--agent", "ana", "login", "--stay", "--interval", "0").returncode == 2
    assert run("--agent", "ana", "reply", "C1", "").returncode == 2
    # no token file configured
    r = run("agent", "list")
    assert r.returncode == 2 and "token" in r.stderr, r


def test_there_is_no_option_for_the_token(tmp_path):
    """The token can only come from a file: an option for it does not exist
    (it would be visible to every user in ps)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIROUTE_")}
    for args in (["--token", HELPDESK, "agent", "list"], [f"--token={HELPDESK}", "agent", "list"],
                 ["-t", HELPDESK, "agent", "list"], ["agent", "list", "--token", HELPDESK]):
        r = subprocess.run([CTL, *args], capture_output=True, text=True, timeout=10, env=env)
        assert r.returncode == 2, (args, r)
        assert HELPDESK not in r.stdout + r.stderr, (args, r)
    r = subprocess.run([CTL, "help"], capture_output=True, text=True, timeout=10, env=env)
    assert "--token-file" in r.stdout and not re.search(r"--token\b(?!-)", r.stdout), r.stdout


# --------------------------------------------------------------------------
# agents


def test_agent_add_list_show_remove(ctl):
    r = ctl.ok("agent", "add", "ana", "--name", "Ana Lima", "--language", "en", "--language", "pt-BR",
               "--skill", "billing", "--skill", "returns", "--capacity", "sms=5",
               "--capacity", "chat=3", "--queue", "general", "--queue", "billing",
               "--team", "emea", "--email", "ana@example.com")
    assert "ana" in r.stdout, r.stdout

    a = ctl.agent("ana")
    assert a["id"] == "ana" and a["name"] == "Ana Lima", a
    assert a["languages"] == ["en", "pt-BR"], a
    assert sorted(a["skills"]) == ["billing", "returns"], a
    assert a["capacity"] == {"sms": 5, "chat": 3}, a
    assert a["queues"] == ["general", "billing"], a
    assert a["teams"] == ["emea"] and a["email"] == "ana@example.com", a
    assert a["presence"] == "offline" and a["source"] == "runtime", a

    ctl.ok("agent", "add", "bob", "--queue", "general", "--capacity", "chat=1")
    listed = ctl.json("agent", "list")["agents"]
    assert {x["id"] for x in listed} >= {"ana", "bob"}, listed
    # the human table: a header and one row per agent
    table = ctl.ok("agent", "list").stdout.splitlines()
    assert table[0].split()[0] == "ID", table
    rows = {line.split()[0] for line in table[1:]}
    assert {"ana", "bob"} <= rows, table
    human = ctl.ok("agent", "show", "ana").stdout
    assert "Ana Lima" in human and "pt-BR" in human, human

    # PUT again: the agent is replaced
    ctl.ok("agent", "add", "ana", "--name", "Ana L.", "--queue", "general", "--capacity", "sms=1")
    assert ctl.agent("ana")["name"] == "Ana L."

    r = ctl.ok("agent", "remove", "ana")
    assert "ana" in r.stdout, r.stdout
    j = ctl.json("agent", "remove", "bob")
    assert j == {"agent_id": "bob", "removed": True}, j
    assert_fails(ctl.run("agent", "show", "ana"), 1)
    assert_fails(ctl.run("agent", "remove", "ana"), 1)
    assert {x["id"] for x in ctl.json("agent", "list")["agents"]}.isdisjoint({"ana", "bob"})


def test_agents_from_the_config_file_are_read_only(start_daemon, sms_config, sms_secrets):
    cfg = sms_config()
    cfg["agents"] = {"list": [{"id": "carla", "name": "Carla", "languages": ["en"],
                               "capacity": {"sms": 2}, "queues": ["general"]}]}
    ctl = Ctl(start_daemon(cfg), sms_secrets / "helpdesk.token")
    a = ctl.agent("carla")
    assert a["source"] == "config" and a["capacity"] == {"sms": 2}, a
    r = ctl.run("agent", "add", "carla", "--queue", "general", "--capacity", "sms=9")
    assert_fails(r, 1, "config_agent")
    assert_fails(ctl.run("agent", "remove", "carla"), 1, "config_agent")
    assert ctl.agent("carla")["capacity"] == {"sms": 2}
    # but they log in like everybody else
    ctl.ok("login", agent="carla")
    assert ctl.agent("carla")["presence"] == "online"


def test_login_away_logout_are_shown_by_agent_show(ctl):
    ctl.ok("agent", "add", "ana", "--queue", "general", "--capacity", "sms=1")
    t0 = int(time.time() * 1000)
    r = ctl.ok("login", agent="ana")
    assert "online" in r.stdout, r.stdout
    a = ctl.agent("ana")
    assert a["presence"] == "online", a
    assert isinstance(a["presence_expires_at"], int) and a["presence_expires_at"] > t0, a

    j = ctl.json("away", agent="ana")
    assert j["agent_id"] == "ana" and j["status"] == "away", j
    assert ctl.agent("ana")["presence"] == "away"

    # OMNIROUTE_AGENT works as --agent does
    r = ctl.run("logout", env=ctl.env(OMNIROUTE_AGENT="ana"))
    assert r.returncode == 0, r
    assert ctl.agent("ana")["presence"] == "offline"

    # an unknown agent cannot log in
    assert_fails(ctl.run("login", agent="nobody"), 1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_login_stay_heartbeats_until_signalled_then_logs_out(ctl, sig):
    ctl.ok("agent", "add", "ana", "--queue", "general", "--capacity", "sms=1")
    proc = subprocess.Popen([CTL, "--agent", "ana", "login", "--stay", "--interval", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ctl.env())
    try:
        first = wait_until(lambda: (lambda a: a["presence"] == "online" and a)(ctl.agent("ana")),
                           5, interval=0.1, what="ana online")
        # The token is not in its argv (what ps shows to every user).
        argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert HELPDESK.encode() not in b" ".join(argv), argv
        # Heartbeats move the expiry forward.
        wait_until(lambda: ctl.agent("ana")["presence_expires_at"] > first["presence_expires_at"],
                   5, interval=0.2, what="a heartbeat renewing ana's presence")
        assert proc.poll() is None, "login --stay exited on its own"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, (proc.returncode, out, err)
    assert HELPDESK not in out + err
    assert ctl.agent("ana")["presence"] == "offline"


def test_login_stay_gives_up_when_the_agent_is_unknown(ctl):
    r = ctl.run("login", "--stay", agent="nobody", timeout=15)
    assert_fails(r, 1)


# --------------------------------------------------------------------------
# conversations


def test_next_claims_from_the_pull_queue_then_nothing_to_claim(ctl, ctl_daemon):
    online_agent(ctl, "ana")
    # nothing waiting yet
    r = ctl.run("next", agent="ana")
    assert_fails(r, 3)
    assert "nothing to claim" in r.stderr and r.stdout == "", r

    conv = api_conversation(ctl_daemon, text="hello there, my parcel is late")
    r = claim(ctl, "ana", conv)
    # what the agent needs to answer: channel, queue and the customer's words
    assert "my parcel is late" in r.stdout, r.stdout
    assert "general" in r.stdout, r.stdout

    j = ctl.conversation(conv)
    c = j["conversation"]
    assert c["id"] == conv and c["agent_id"] == "ana", c
    assert c["status"] == "assigned", c
    assert any(m["direction"] == "in" and "parcel is late" in message_text(m)
               for m in j["messages"]), j["messages"]
    human = ctl.ok("show", conv).stdout
    assert conv in human and "my parcel is late" in human, human

    assert_fails(ctl.run("next", agent="ana"), 3)


def test_next_json_prints_the_daemons_answer(ctl, ctl_daemon):
    online_agent(ctl, "ana")
    conv = api_conversation(ctl_daemon)
    j = ctl.json("next", agent="ana")
    assert j["conversation"]["id"] == conv and j["via"] == "pull", j
    r = ctl.run("next", agent="ana", json_out=True)
    assert_fails(r, 3)
    assert r.stdout == "", r


def test_an_agent_only_claims_from_its_queues(ctl, ctl_daemon):
    online_agent(ctl, "bea", queues=["billing"])
    api_conversation(ctl_daemon)  # queue general
    assert_fails(ctl.run("next", agent="bea"), 3)


def test_offers_of_a_push_queue_declined_accepted_and_taken_by_next(start_daemon, sms_config,
                                                                    sms_secrets, rdb):
    cfg = sms_config()
    cfg["routing"]["default_queue"] = "support"
    cfg["routing"]["queues"] = {"support": {"mode": "push", "offer_timeout": "30s"}}
    daemon = start_daemon(cfg)
    ctl = Ctl(daemon, sms_secrets / "helpdesk.token")

    def conv_of(conv):
        return ctl.conversation(conv)["conversation"]

    def offered_to(conv, agent):
        return wait_until(lambda: (lambda c: c["status"] == "offered" and
                                   c.get("offer_agent") in (None, agent) and c)(conv_of(conv)),
                          5, interval=0.1, what=f"{conv} offered to {agent}")

    online_agent(ctl, "ana", queues=["support"])
    conv = api_conversation(daemon, queue="support")
    offered_to(conv, "ana")
    online_agent(ctl, "bob", queues=["support"])
    r = ctl.ok("decline", conv, "--reason", "not my topic", agent="ana")
    assert conv in r.stdout, r.stdout
    declined = [e for e in events(rdb, "conversation.declined")
                if e.get("conversation_id") == conv]
    assert len(declined) == 1 and declined[0].get("agent_id") == "ana", declined

    # the next fit agent is offered it
    offered_to(conv, "bob")
    assert_fails(ctl.run("accept", conv, agent="ana"), 1)  # not offered to ana
    ctl.ok("accept", conv, agent="bob")
    c = conv_of(conv)
    assert c["status"] == "assigned" and c["agent_id"] == "bob", c

    # `next` takes a pending offer first
    conv2 = api_conversation(daemon, text="another question", queue="support")
    wait_until(lambda: conv_of(conv2)["status"] == "offered", 5, interval=0.1,
               what=f"{conv2} offered")
    holder = "ana" if conv_of(conv2).get("offer_agent", "ana") == "ana" else "bob"
    j = ctl.json("next", agent=holder)
    assert j["conversation"]["id"] == conv2 and j["via"] == "offer", j
    assert conv_of(conv2)["agent_id"] == holder


def test_reply_is_queued_and_sent(ctl, ctl_daemon, rdb, fake_provider):
    conv, queue = sms_conversation(ctl_daemon, rdb, text="Where is my order?")
    online_agent(ctl, "ana", queues=[queue])
    r = claim(ctl, "ana", conv)
    assert "Where is my order?" in r.stdout, r.stdout

    r = ctl.ok("reply", conv, "It ships today.", agent="ana")
    m = REPLY_RE.search(r.stdout)
    assert m and m.group(2) == "queued", r.stdout
    h = rdb.hgetall(reply_key(conv, m.group(1)))
    assert h["agent_id"] == "ana" and h["text"] == "It ships today.", h
    (req,) = fake_provider.wait_requests("vonage", 1, timeout=5)
    assert req.form["text"] == "It ships today.", req.form

    # From stdin ("-", or no TEXT at all); the trailing newline is not sent.
    r = ctl.ok("reply", conv, "-", agent="ana", input="Tracking: 1Z999\n")
    rid2 = REPLY_RE.search(r.stdout).group(1)
    r = ctl.ok("reply", conv, agent="ana", input="Anything else?\n")
    rid3 = REPLY_RE.search(r.stdout).group(1)
    assert len({m.group(1), rid2, rid3}) == 3
    assert rdb.hget(reply_key(conv, rid2), "text") == "Tracking: 1Z999"
    assert rdb.hget(reply_key(conv, rid3), "text") == "Anything else?"
    reqs = fake_provider.wait_requests("vonage", 3, timeout=5)
    assert sorted(q.form["text"] for q in reqs) == ["Anything else?", "It ships today.",
                                                    "Tracking: 1Z999"]

    # --json: the daemon's 202 body
    j = ctl.json("reply", conv, "Bye!", agent="ana")
    assert j["status"] == "queued" and j["duplicate"] is False and j["reply_id"], j


def test_reply_to_an_unknown_conversation_fails(ctl):
    r = ctl.run("reply", "01JAAAAAAAAAAAAAAAAAAAAAAA", "hi", agent="ana")
    assert_fails(r, 1, "unknown_conversation")


def test_resolve(ctl, ctl_daemon):
    online_agent(ctl, "ana")
    conv = api_conversation(ctl_daemon)
    claim(ctl, "ana", conv)
    r = ctl.ok("resolve", conv, "--reason", "answered", agent="ana")
    assert conv in r.stdout, r.stdout
    assert ctl.conversation(conv)["conversation"]["status"] == "resolved"


def test_transfer_to_another_queue(ctl, ctl_daemon):
    online_agent(ctl, "ana", queues=["general"])
    online_agent(ctl, "bea", queues=["billing"])
    conv = api_conversation(ctl_daemon)
    claim(ctl, "ana", conv)
    assert_fails(ctl.run("next", agent="bea"), 3)

    r = ctl.ok("transfer", conv, "--queue", "billing", "--reason", "a refund", agent="ana")
    assert conv in r.stdout, r.stdout
    assert ctl.conversation(conv)["conversation"]["queue"] == "billing"
    # now it waits in billing, where bea pulls it
    claim(ctl, "bea", conv)
    assert ctl.conversation(conv)["conversation"]["agent_id"] == "bea"


# --------------------------------------------------------------------------
# errors


def test_a_wrong_token_is_refused_and_never_printed(ctl, tmp_path):
    wrong = "wrong-token-" + "x" * 24
    f = tmp_path / "wrong.token"
    f.write_text(wrong + "\n")
    f.chmod(0o600)
    r = ctl.run("agent", "list", env=ctl.env(OMNIROUTE_TOKEN_FILE=str(f)))
    assert_fails(r, 1, "unauthorized")
    assert wrong not in r.stdout + r.stderr
    # --token-file wins over the environment
    r = ctl.run("--token-file", str(f), "agent", "list")
    assert_fails(r, 1, "unauthorized")
    # the second configured token works too
    crm = tmp_path / "crm.token"
    crm.write_text(API_TOKENS["crm"] + "\r\n")
    crm.chmod(0o600)
    r = ctl.run("--token-file", str(crm), "agent", "list")
    assert r.returncode == 0, r
    assert API_TOKENS["crm"] not in r.stdout + r.stderr
    # a token file that cannot be read
    assert_fails(ctl.run("--token-file", str(tmp_path / "missing"), "agent", "list"), 1)


def test_an_unreachable_daemon_is_an_error(ctl):
    r = ctl.run("--url", f"http://127.0.0.1:{free_port()}", "agent", "list")
    assert_fails(r, 1)
    assert r.stderr.startswith("omniroutectl: "), r.stderr
