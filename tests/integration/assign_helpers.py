"""Helpers for the routing / assignment tests (issue 4): config with agents
and queues, an HTTP client for the agents API, posting customer messages,
reading omr:events, simulated agents, and replaying the event stream to
check the assignment invariants.

Spec: /work/spec/routing-behaviour.md, /work/spec/routing-api.md; the Lua in
daemon/*.lua is the truth."""

import copy
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import free_port, payload, uid, wait_until

TOKEN = "assign-tests-token-" + "0f1e2d3c4b5a" * 2

# --------------------------------------------------------------------------
# config


def star(caps):
    """Capacity dict as YAML: the key `*` must be quoted (an alias otherwise)."""
    return {('"*"' if k == "*" else k): v for k, v in caps.items()}


def agent_conf(id, queues, capacity, languages=None, skills=None, **kw):
    a = {"id": id, "name": kw.pop("name", id.capitalize())}
    if languages:
        a["languages"] = list(languages)
    if skills:
        a["skills"] = list(skills)
    a["capacity"] = star(capacity)
    a["queues"] = list(queues)
    a.update(kw)
    return a


def routing_config(cfg, tmp_path, *, queues, agents=(), rules=(), default_queue="support",
                   heartbeat="30s", vip=None, events_maxlen=None, token=TOKEN):
    """cfg (from make_config / sms_config) with routing, agents and an API
    token (unless cfg already has api.tokens)."""
    cfg = copy.deepcopy(cfg)
    if "api" not in cfg:
        f = tmp_path / "assign-api.token"
        f.write_text(token + "\n")
        f.chmod(0o600)
        cfg["api"] = {"tokens": [{"name": "tests", "token_file": str(f)}]}
    cfg["routing"] = {"default_queue": default_queue, "default_priority": "normal",
                      "queues": queues}
    if rules:
        cfg["routing"]["rules"] = list(rules)
    if vip:
        cfg["routing"]["customers"] = {"vip": list(vip)}
    cfg["agents"] = {"heartbeat_timeout": heartbeat}
    if agents:
        cfg["agents"]["list"] = list(agents)
    if events_maxlen:
        cfg["redis"]["events_maxlen"] = events_maxlen
    return cfg


def second_daemon_config(cfg):
    """The same config on another HTTP port (a second daemon on the same Redis)."""
    cfg2 = copy.deepcopy(cfg)
    cfg2["http"]["listen"] = f"127.0.0.1:{free_port()}"
    return cfg2


# --------------------------------------------------------------------------
# the agents / conversations HTTP API


class Api:
    """The routing API of one daemon. Not shared between threads."""

    def __init__(self, daemon, token=TOKEN):
        self.d = daemon
        self.s = requests.Session()
        self.token = token

    def _h(self, token):
        tok = self.token if token == "default" else token
        return {"Authorization": f"Bearer {tok}"} if tok else {}

    def call(self, method, path, body=None, *, raw=None, token="default", timeout=10):
        h = self._h(token)
        if raw is not None:
            h["Content-Type"] = "application/json"
            return self.s.request(method, self.d.url(path), data=raw, headers=h, timeout=timeout)
        if body is not None:
            return self.s.request(method, self.d.url(path), json=body, headers=h, timeout=timeout)
        return self.s.request(method, self.d.url(path), headers=h, timeout=timeout)

    # agents
    def put_agent(self, id, body, **kw):
        return self.call("PUT", f"/v1/agents/{id}", body, **kw)

    def delete_agent(self, id, **kw):
        return self.call("DELETE", f"/v1/agents/{id}", **kw)

    def get_agent(self, id, **kw):
        return self.call("GET", f"/v1/agents/{id}", **kw)

    def agent(self, id):
        r = self.get_agent(id)
        assert r.status_code == 200, r.text
        return r.json()["agent"]

    def list_agents(self, **kw):
        return self.call("GET", "/v1/agents", **kw)

    def presence(self, id, status="online", **kw):
        return self.call("POST", f"/v1/agents/{id}/presence", {"status": status}, **kw)

    def online(self, *ids):
        for id in ids:
            r = self.presence(id, "online")
            assert r.status_code == 200, r.text

    def claim(self, id, **kw):
        return self.call("POST", f"/v1/agents/{id}/claim", {}, **kw)

    # conversations
    def show(self, conv, **kw):
        return self.call("GET", f"/v1/conversations/{conv}", **kw)

    def conv(self, conv):
        r = self.show(conv)
        assert r.status_code == 200, r.text
        return r.json()["conversation"]

    def act(self, action, conv, agent_id, **body):
        b = {"agent_id": agent_id}
        b.update({k: v for k, v in body.items() if v is not None})
        return self.call("POST", f"/v1/conversations/{conv}/{action}", b)

    def accept(self, conv, agent_id):
        return self.act("accept", conv, agent_id)

    def decline(self, conv, agent_id, reason=None):
        return self.act("decline", conv, agent_id, reason=reason)

    def resolve(self, conv, agent_id, reason=None):
        return self.act("resolve", conv, agent_id, reason=reason)

    def transfer(self, conv, agent_id, queue=None, to_agent=None, reason=None):
        return self.act("transfer", conv, agent_id, queue=queue, to_agent=to_agent, reason=reason)


def ok(resp, status=200):
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text!r}"
    return resp.json() if resp.content else None


# --------------------------------------------------------------------------
# customers


def post_message(daemon, text, *, channel="chat", customer=None, thread=None, subject=None,
                 session=None, adapter="shop"):
    """A customer message through the generic webhook; returns its JSON answer
    (conversation_id, message_id, queue, new_conversation, ...)."""
    cust = customer if isinstance(customer, dict) else {"id": customer or uid("cust"),
                                                         "name": "Customer"}
    p = payload(from_=cust, channel=channel, text=text)
    if thread is not None:
        p["thread"] = thread
    if subject is not None:
        p["subject"] = subject
    r = daemon.post(adapter, p, session=session)
    assert r.status_code == 200, f"inbound refused: {r.status_code} {r.text!r}"
    j = r.json()
    assert j.get("duplicate") is False, j
    return j


def conv_hash(rdb, conv):
    return rdb.hgetall(f"omr:conv:{{{conv}}}")


def agent_hash(rdb, agent):
    return rdb.hgetall(f"omr:agent:{agent}")


# --------------------------------------------------------------------------
# events


def all_events(rdb):
    """[(stream id, fields)] of the whole omr:events stream, in order."""
    out, last = [], "-"
    while True:
        batch = rdb.xrange("omr:events", min=last, max="+", count=10000)
        if last != "-" and batch and batch[0][0] == last:
            batch = batch[1:]
        if not batch:
            return out
        out.extend(batch)
        last = batch[-1][0]


def events(rdb, type_=None, conv=None, agent=None):
    out = []
    for _, f in all_events(rdb):
        if type_ is not None and f.get("type") != type_ and not (
                isinstance(type_, (tuple, set, list)) and f.get("type") in type_):
            continue
        if conv is not None and f.get("conversation_id") != conv:
            continue
        if agent is not None and f.get("agent_id") != agent:
            continue
        out.append(f)
    return out


def conv_types(rdb, conv):
    return [f["type"] for f in events(rdb, conv=conv)]


def wait_for(cond, timeout, what="condition", interval=0.02):
    return wait_until(cond, timeout, interval=interval, what=what)


def wait_event(rdb, type_, timeout=5.0, conv=None, agent=None, n=1, what=None):
    """Wait until at least n events match; returns the n-th (1-based) one."""
    def found():
        ev = events(rdb, type_, conv=conv, agent=agent)
        return ev[n - 1] if len(ev) >= n else None
    return wait_for(found, timeout, what or f"event {type_} conv={conv} agent={agent} #{n}")


def assigned_agent(rdb, conv, timeout=5.0):
    return wait_event(rdb, "conversation.assigned", timeout, conv=conv)["agent_id"]


def inbox(rdb, agent):
    return [f for _, f in rdb.xrange(f"omr:agent:{agent}:inbox")]


# --------------------------------------------------------------------------
# agents that keep their presence


class Heartbeat:
    """Keeps agents online (presence every `every` s) until stop()."""

    def __init__(self, daemon, ids, every=0.3, token=TOKEN):
        self.api = Api(daemon, token)
        self.ids = list(ids)
        self.every = every
        self.stop_ev = threading.Event()
        self.errors = []
        self.lock = threading.Lock()  # held for a round of heartbeats
        for id in self.ids:
            ok(self.api.presence(id, "online"))
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def add(self, id):
        """Online now, and kept online."""
        with self.lock:
            ok(self.api.presence(id, "online"))
            self.ids.append(id)

    def remove(self, id):
        """No more heartbeats for id (none is in flight when this returns)."""
        with self.lock:
            self.ids.remove(id)

    def _run(self):
        while not self.stop_ev.wait(self.every):
            with self.lock:
                for id in self.ids:
                    try:
                        r = self.api.presence(id, "online")
                        if r.status_code != 200:
                            self.errors.append(r.text)
                    except requests.RequestException as e:
                        self.errors.append(repr(e))

    def stop(self):
        self.stop_ev.set()
        self.t.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


class SimAgent:
    """A simulated agent: heartbeats, reads its inbox stream and resolves
    every conversation assigned to it after a short random delay, through
    the HTTP API of a random daemon."""

    def __init__(self, agent_id, daemons, rdb_factory, *, delay=(0.005, 0.06), heartbeat=1.0,
                 workers=8, token=TOKEN, seed=None, decline_rate=0.0):
        self.id = agent_id
        self.daemons = list(daemons)
        self.rdb = rdb_factory()
        self.delay = delay
        self.heartbeat = heartbeat
        self.token = token
        self.rng = random.Random(seed if seed is not None else agent_id)
        self.decline_rate = decline_rate
        self.declined = []
        self.stop_ev = threading.Event()
        self.errors = []
        self.resolved = []
        self.lock = threading.Lock()
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(max_workers=workers)
        self.threads = [threading.Thread(target=self._presence, daemon=True),
                        threading.Thread(target=self._inbox, daemon=True)]

    def _api(self):
        if not hasattr(self.local, "apis"):
            self.local.apis = [Api(d, self.token) for d in self.daemons]
        return self.rng.choice(self.local.apis)

    def start(self):
        ok(Api(self.daemons[0], self.token).presence(self.id, "online"))
        for t in self.threads:
            t.start()
        return self

    def _presence(self):
        while not self.stop_ev.wait(self.heartbeat):
            try:
                r = self._api().presence(self.id, "online")
                if r.status_code != 200:
                    self.errors.append(f"presence {r.status_code} {r.text}")
            except requests.RequestException as e:
                self.errors.append(f"presence {e!r}")

    def _inbox(self):
        key = f"omr:agent:{self.id}:inbox"
        last = "0-0"
        while not self.stop_ev.is_set():
            try:
                got = self.rdb.xread({key: last}, count=100, block=200)
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append(f"xread {e!r}")
                time.sleep(0.05)
                continue
            for _, entries in got or []:
                for eid, f in entries:
                    last = eid
                    if f.get("kind") == "assigned":
                        self.pool.submit(self._resolve, f["conversation_id"])
                    elif f.get("kind") == "offer":
                        self.pool.submit(self._answer_offer, f["conversation_id"])

    def _answer_offer(self, conv):
        """Accept (assigned arrives in the inbox) or, now and then, decline."""
        time.sleep(self.rng.uniform(0, self.delay[0]))
        try:
            if self.rng.random() < self.decline_rate:
                r = self._api().decline(conv, self.id, reason="simulated")
                if r.status_code == 200:
                    with self.lock:
                        self.declined.append(conv)
            else:
                r = self._api().accept(conv, self.id)
            if r.status_code not in (200, 409):
                self.errors.append(f"answer offer {conv}: {r.status_code} {r.text}")
        except requests.RequestException as e:
            self.errors.append(f"answer offer {conv}: {e!r}")

    def _resolve(self, conv):
        time.sleep(self.rng.uniform(*self.delay))  # the agent "works" on it
        for attempt in range(5):
            try:
                r = self._api().resolve(conv, self.id)
                if r.status_code == 200:
                    with self.lock:
                        self.resolved.append(conv)
                    return
                self.errors.append(f"resolve {conv}: {r.status_code} {r.text}")
                return
            except requests.RequestException as e:
                if attempt == 4:
                    self.errors.append(f"resolve {conv}: {e!r}")
                time.sleep(0.05)

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(5)
        self.pool.shutdown(wait=True)
        self.rdb.close()


# --------------------------------------------------------------------------
# replaying omr:events


def language_ok(agent_langs, tag):
    if not tag or tag == "und" or not agent_langs:
        return True
    t = tag.lower()
    for l in agent_langs:
        l = l.lower()
        if t == l or t.startswith(l + "-"):
            return True
    return False


def capacity_of(agent, channel):
    cap = agent["capacity"]
    return cap.get(channel, cap.get("*", 0))


def replay(evts, agents, *, match_language=True, expect_convs=None, offers=False):
    """Checks the assignment invariants over events in stream order.

    agents: {id: {"capacity": {...}, "languages": [...], "skills": [...]}}
    Returns stats: {"assigned": {conv: agent}, "max_open": {(agent, ch): n}}.
    Raises AssertionError listing every violation (first 20)."""
    problems = []
    open_by = {}        # conv -> (agent, channel) while assigned/waiting
    count = {}          # (agent, channel) -> open conversations
    max_open = {}
    assigned = {}       # conv -> [agents]
    channels = {}
    offered_to = {}     # conv -> (agent, channel) while an offer holds capacity

    def fit_check(eid, f, ag, conv):
        a = agents.get(ag)
        if a is None:
            problems.append(f"{eid}: {conv} given to unknown agent {ag}")
            return None
        skills = json.loads(f.get("skills") or "[]")
        have = {s.lower() for s in a.get("skills", [])}
        missing = [s for s in skills if s.lower() not in have]
        if missing:
            problems.append(f"{eid}: {conv} needs skills {skills}, {ag} lacks {missing}")
        if match_language and not language_ok(a.get("languages", []), f.get("language", "")):
            problems.append(f"{eid}: {conv} language {f.get('language')!r}: {ag} speaks "
                            f"{a.get('languages')}")
        return a

    def take(eid, f, key, conv):
        count[key] = count.get(key, 0) + 1
        max_open[key] = max(max_open.get(key, 0), count[key])
        cap = capacity_of(agents[key[0]], key[1])
        if count[key] > cap:
            problems.append(f"{eid}: {key[0]} holds {count[key]} {key[1]} conversations "
                            f"(offers included), capacity {cap} ({conv})")
        try:
            load, ecap = int(f["load"]), int(f["capacity"])
        except (KeyError, ValueError):
            problems.append(f"{eid}: event without numeric load/capacity: {f}")
        else:
            if load > ecap or ecap != cap or load != count[key]:
                problems.append(f"{eid}: event load/capacity {load}/{ecap}, replayed "
                                f"{count[key]}/{cap}: {f}")

    for eid, f in evts:
        t = f.get("type", "")
        conv = f.get("conversation_id")
        if t == "conversation.opened":
            channels[conv] = f.get("channel")
        if offers and t == "conversation.offered":
            ag, ch = f["agent_id"], f["channel"]
            if conv in offered_to or conv in open_by:
                problems.append(f"{eid}: {conv} offered to {ag} while held by "
                                f"{offered_to.get(conv) or open_by.get(conv)}")
            if fit_check(eid, f, ag, conv) is None:
                continue
            offered_to[conv] = (ag, ch)
            take(eid, f, (ag, ch), conv)
            continue
        if offers and t in ("conversation.offer_expired", "conversation.offer_withdrawn") or (
                offers and t == "conversation.declined" and conv in offered_to):
            key = offered_to.pop(conv, None)
            if key is None:
                problems.append(f"{eid}: {t} for {conv} without an offer")
            else:
                if f.get("agent_id") != key[0]:
                    problems.append(f"{eid}: {t} names {f.get('agent_id')}, offer was to {key[0]}")
                count[key] -= 1
            continue
        if offers and t == "conversation.assigned" and conv in offered_to:
            key = offered_to.pop(conv)
            assigned.setdefault(conv, []).append(f["agent_id"])
            if f["agent_id"] != key[0] or f["channel"] != key[1]:
                problems.append(f"{eid}: {conv} offered to {key} but assigned to {f['agent_id']}")
            open_by[conv] = key
            if int(f.get("load", -1)) != count[key]:
                problems.append(f"{eid}: accepted offer event load {f.get('load')} != replayed "
                                f"{count[key]}: {f}")
            continue
        if t == "conversation.assigned":
            ag, ch = f["agent_id"], f["channel"]
            assigned.setdefault(conv, []).append(ag)
            if conv in open_by:
                problems.append(f"{eid}: {conv} assigned to {ag} while still with {open_by[conv]}")
            a = agents.get(ag)
            if a is None:
                problems.append(f"{eid}: {conv} assigned to unknown agent {ag}")
                continue
            skills = json.loads(f.get("skills") or "[]")
            have = {s.lower() for s in a.get("skills", [])}
            missing = [s for s in skills if s.lower() not in have]
            if missing:
                problems.append(f"{eid}: {conv} needs skills {skills}, {ag} lacks {missing}")
            if match_language and not language_ok(a.get("languages", []), f.get("language", "")):
                problems.append(f"{eid}: {conv} language {f.get('language')!r}: {ag} speaks "
                                f"{a.get('languages')}")
            cap = capacity_of(a, ch)
            key = (ag, ch)
            count[key] = count.get(key, 0) + 1
            max_open[key] = max(max_open.get(key, 0), count[key])
            open_by[conv] = key
            if count[key] > cap:
                problems.append(f"{eid}: {ag} has {count[key]} open {ch} conversations, "
                                f"capacity {cap} ({conv})")
            try:
                load, ecap = int(f["load"]), int(f["capacity"])
            except (KeyError, ValueError):
                problems.append(f"{eid}: assigned event without numeric load/capacity: {f}")
            else:
                if load > ecap:
                    problems.append(f"{eid}: event load {load} > capacity {ecap}: {f}")
                if ecap != cap:
                    problems.append(f"{eid}: event capacity {ecap} != configured {cap}: {f}")
                if load != count[key]:
                    problems.append(f"{eid}: event load {load} != replayed load {count[key]} "
                                    f"for {key}")
        elif t in ("conversation.resolved", "conversation.claim_expired",
                   "conversation.transferred") or (
                t == "conversation.declined" and conv in open_by):
            key = open_by.pop(conv, None)
            if key is not None:
                count[key] -= 1
                if t == "conversation.resolved" and f.get("agent_id") != key[0]:
                    problems.append(f"{eid}: {conv} resolved as {f.get('agent_id')} but held by "
                                    f"{key[0]}")
    twice = {c: a for c, a in assigned.items() if len(a) > 1}
    if twice:
        problems.append(f"{len(twice)} conversations assigned more than once, e.g. "
                        f"{list(twice.items())[:5]}")
    if expect_convs is not None:
        missing = [c for c in expect_convs if c not in assigned]
        if missing:
            problems.append(f"{len(missing)} conversations never assigned, e.g. {missing[:5]}")
        extra = [c for c in assigned if c not in set(expect_convs)]
        if extra:
            problems.append(f"{len(extra)} unexpected conversations assigned: {extra[:5]}")
    assert not problems, f"{len(problems)} violations:\n" + "\n".join(problems[:20])
    return {"assigned": {c: a[0] for c, a in assigned.items()}, "max_open": max_open}
