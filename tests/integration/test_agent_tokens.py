"""Bearer tokens bound to an agent (api.tokens[].agent): such a token acts
only as its agent — presence, claims, conversation actions and replies for
anyone else are 403 — and cannot manage agents. Unbound tokens (a team tool,
an operator) may do everything."""

import subprocess

from conftest import BINARY, daemon_env
from assign_helpers import Api, agent_conf, ok, post_message, routing_config

ALICE_TOKEN = "alice-only-token-" + "a1b2c3d4" * 3


def start(make_config, start_daemon, tmp_path):
    cfg = routing_config(make_config(), tmp_path, queues={"support": {"mode": "pull"}},
                         agents=[agent_conf("alice", ["support"], {"chat": 2}),
                                 agent_conf("bob", ["support"], {"chat": 2})])
    f = tmp_path / "alice.token"
    f.write_text(ALICE_TOKEN + "\n")
    f.chmod(0o600)
    cfg["api"]["tokens"].append({"name": "alice-tool", "token_file": str(f), "agent": "alice"})
    d = start_daemon(cfg)
    return d, Api(d), Api(d, token=ALICE_TOKEN)


def forbidden(r):
    assert r.status_code == 403, (r.status_code, r.text)
    assert r.json()["error"] == "forbidden"


def test_bound_token_acts_only_as_its_agent(make_config, start_daemon, tmp_path):
    d, admin, alice = start(make_config, start_daemon, tmp_path)
    ok(alice.presence("alice"))
    forbidden(alice.presence("bob"))
    forbidden(alice.claim("bob"))

    conv = post_message(d, "Hello, I have a question about my order please.")["conversation_id"]
    r = alice.claim("alice")
    assert r.status_code == 200, r.text
    assert r.json()["conversation"]["id"] == conv
    forbidden(alice.resolve(conv, "bob"))
    forbidden(alice.call("POST", f"/v1/conversations/{conv}/replies",
                         {"agent_id": "bob", "text": "hi"}))
    ok(alice.accept(conv, "alice"))
    ok(alice.show(conv))
    ok(alice.resolve(conv, "alice"))

    # Managing agents needs an unbound token.
    forbidden(alice.put_agent("carol", {"queues": ["support"], "capacity": {"chat": 1}}))
    forbidden(alice.delete_agent("bob"))
    ok(admin.put_agent("carol", {"queues": ["support"], "capacity": {"chat": 1}}))
    ok(admin.presence("bob"))
    ok(alice.list_agents())


def test_bound_token_must_name_a_valid_agent(tmp_path):
    cfg = tmp_path / "c.yaml"
    tok = tmp_path / "t.token"
    tok.write_text("x" * 20 + "\n")
    tok.chmod(0o600)
    cfg.write_text(f"api:\n  tokens:\n    - name: t\n      token_file: {tok}\n"
                   f"      agent: 'not an id'\n")
    res = subprocess.run([str(BINARY), "--check-config", "-c", str(cfg)], capture_output=True,
                         text=True, timeout=10, env=daemon_env())
    assert res.returncode == 1
    assert f"{cfg}:5:" in res.stderr and "not an id" in res.stderr, res.stderr


def test_operator_acts_for_a_removed_holder(make_config, start_daemon, tmp_path):
    """A conversation held by an agent since removed is not stranded: an
    unbound token may transfer or resolve it in the holder's name; a name
    that is neither registered nor the holder is refused."""
    d, admin, _ = start(make_config, start_daemon, tmp_path)
    ok(admin.put_agent("temp", {"queues": ["support"], "capacity": {"chat": 2}}))
    conv = post_message(d, "Hello, I have a question about my order please.")["conversation_id"]
    r = admin.claim("temp")
    assert r.status_code == 200 and r.json()["conversation"]["id"] == conv, r.text
    ok(admin.accept(conv, "temp"))
    ok(admin.delete_agent("temp"))
    r = admin.resolve(conv, "ghost")
    assert r.status_code == 404 and r.json()["error"] == "unknown_agent", r.text
    r = admin.transfer(conv, "temp", queue="support")
    assert r.status_code == 200, r.text
    assert r.json()["conversation"]["status"] == "open"
    r = admin.claim("alice")
    assert r.status_code == 200 and r.json()["conversation"]["id"] == conv, r.text
