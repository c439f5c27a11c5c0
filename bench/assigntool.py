#!/usr/bin/python3
"""Helpers for bench/assign.sh (standard library + Debian python3-redis).

  assigntool.py presence --ports P[,P..] --token-file F --status S AGENT...
        POST /v1/agents/AGENT/presence {"status": S} for every agent at once
        (round robin over the daemons); prints "PRESENCE ok=N first_ms=.. last_ms=.."
  assigntool.py put-agents --port P --token-file F --queue Q --capacity C AGENT...
        PUT /v1/agents/AGENT (runtime agents serving Q, capacity C on every
        channel); prints "AGENTS ok=N"
  assigntool.py claims --ports P[,P..] --token-file F --clients K --seconds S
                       --accept 0|1 --ids-out FILE AGENT...
        K client processes (keep-alive HTTP/1.1, one connection each, spread
        over the daemons) call POST /v1/agents/{id}/claim in a loop, client k
        rotating over AGENTS[k::K], each claim followed by POST
        /v1/conversations/{c}/accept when --accept 1, until S seconds passed
        or a claim answers 204 (the backlog is empty). Prints
        "CLAIMS ok=.. empty=.. errors=.. elapsed_us=.. p50_us=.. ..." and writes
        "<conversation> <agent>" per claim to FILE.
  assigntool.py wait --sock S --prefix P --queue Q --n N [--timeout T] [--settle T]
        waits until the push queue's waiting set is empty and every agent's
        load adds up to N, or nothing changed for --settle seconds (capacity
        full); prints "WAIT waiting=.. load=.. seconds=.."
  assigntool.py analyze --sock S --prefix P --queue Q --n N --capacity C [--claims FILE]
                        [--via push|pull] [--json FILE] AGENT...
        reads omr:events, the conversations and the agents, checks that every
        conversation opened in Q was assigned exactly once (or, with less
        capacity than work, exactly as many as fit), that no assignment
        exceeded capacity and that the agents' loads match the assignments;
        prints "ASSIGN ..." (counts, latency opened -> assigned, rates) and
        "ASSIGN_FAIL reason" lines
"""

import http.client
import json
import multiprocessing as mp
import os
import resource
import sys
import time

try:
    import redis
except ImportError:  # only analyze and wait need it
    redis = None


def opts_of(argv, flags=()):
    """--key value pairs (and bare flags) followed by positional words."""
    o, pos, i = {}, [], 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--") and a[2:] in flags:
            o[a[2:]] = True
            i += 1
        elif a.startswith("--"):
            o[a[2:]] = argv[i + 1]
            i += 2
        else:
            pos.append(a)
            i += 1
    return o, pos


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def token(path):
    with open(path) as f:
        return f.read().strip()


class Api:
    def __init__(self, port, tok):
        self.c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
        self.h = {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        data = json.dumps(body if body is not None else {})
        self.c.request(method, path, body=data, headers=self.h)
        r = self.c.getresponse()
        return r.status, r.read()


def now_ms():
    return int(time.time() * 1000)


# --------------------------------------------------------------- presence
def cmd_presence(argv):
    o, agents = opts_of(argv)
    ports = o["ports"].split(",")
    tok = token(o["token-file"])
    # All at once (one thread and connection per agent), so that no agent
    # gets a head start on a waiting backlog.
    import threading
    apis = [Api(ports[i % len(ports)], tok) for i in range(len(agents))]
    go = threading.Barrier(len(agents) + 1)
    res = [None] * len(agents)

    def one(i):
        go.wait()
        try:
            res[i] = apis[i].call("POST", "/v1/agents/%s/presence" % agents[i],
                                  {"status": o["status"]})
        except (OSError, http.client.HTTPException) as e:
            res[i] = (0, str(e).encode())

    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(agents))]
    for t in ts:
        t.start()
    first = now_ms()
    go.wait()
    for t in ts:
        t.join()
    last = now_ms()
    ok = 0
    for a, (st, body) in zip(agents, res):
        if st == 200:
            ok += 1
        else:
            print("presence %s: %d %s" % (a, st, body[:200]), file=sys.stderr)
    print("PRESENCE ok=%d first_ms=%d last_ms=%d" % (ok, first, last))
    return 0 if ok == len(agents) else 1


def cmd_put_agents(argv):
    o, agents = opts_of(argv)
    api = Api(o["port"], token(o["token-file"]))
    cap = int(o["capacity"])
    ok = 0
    for a in agents:
        st, body = api.call("PUT", "/v1/agents/%s" % a, {
            "name": a, "queues": [o["queue"]],
            "capacity": {"sms": cap, "chat": cap, "*": cap}})
        if st == 200:
            ok += 1
        else:
            print("put %s: %d %s" % (a, st, body[:200]), file=sys.stderr)
    print("AGENTS ok=%d" % ok)
    return 0 if ok == len(agents) else 1


# --------------------------------------------------------------- claims
def claim_client(k, port, tok, agents, seconds, accept, barrier, t0_shared, q):
    api = Api(port, tok)
    lat, alat, got, codes = [], [], [], {}
    errors, empty = 0, 0
    barrier.wait()
    t0 = t0_shared.value
    while time.time() < t0:
        time.sleep(0.0005)
    end = t0 + seconds
    i, last = 0, t0
    while True:
        if time.time() >= end:
            break
        agent = agents[i % len(agents)]
        i += 1
        t = time.perf_counter()
        try:
            st, body = api.call("POST", "/v1/agents/%s/claim" % agent)
        except (OSError, http.client.HTTPException) as e:
            errors += 1
            codes["exc:" + type(e).__name__] = codes.get("exc:" + type(e).__name__, 0) + 1
            api = Api(port, tok)
            continue
        d = time.perf_counter() - t
        last = time.time()
        if st == 204:
            empty += 1
            break
        if st != 200:
            errors += 1
            codes[str(st)] = codes.get(str(st), 0) + 1
            continue
        lat.append(d)
        cid = json.loads(body)["conversation"]["id"]
        got.append((cid, agent, last))
        if accept:
            t = time.perf_counter()
            st, body = api.call("POST", "/v1/conversations/%s/accept" % cid, {"agent_id": agent})
            alat.append(time.perf_counter() - t)
            last = time.time()
            if st != 200:
                errors += 1
                codes["accept:%d" % st] = codes.get("accept:%d" % st, 0) + 1
    q.put((k, lat, alat, got, codes, errors, empty, last))


def cmd_claims(argv):
    o, agents = opts_of(argv)
    ports = o["ports"].split(",")
    tok = token(o["token-file"])
    k = int(o["clients"])
    seconds = float(o["seconds"])
    accept = o.get("accept", "0") == "1"
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(k + 1)
    t0 = ctx.Value("d", 0.0)
    q = ctx.Queue()
    procs = []
    for i in range(k):
        mine = agents[i::k] or agents
        p = ctx.Process(target=claim_client,
                        args=(i, ports[i % len(ports)], tok, mine, seconds, accept, barrier, t0, q))
        p.start()
        procs.append(p)
    t0.value = time.time() + 0.2  # every client starts at the same moment
    barrier.wait()
    res = [q.get() for _ in procs]
    for p in procs:
        p.join()
    start = t0.value
    lat = sorted(x for r in res for x in r[1])
    alat = sorted(x for r in res for x in r[2])
    got = [g for r in res for g in r[3]]
    codes = {}
    for r in res:
        for c, n in r[4].items():
            codes[c] = codes.get(c, 0) + n
    errors = sum(r[5] for r in res)
    empty = sum(r[6] for r in res)
    last = max(r[7] for r in res)
    elapsed = max(last - start, 1e-6)
    # Claims per second in each quarter of the run: does it slow down as
    # the claimed entries pile up (pending, not accepted)?
    quarters = [0, 0, 0, 0]
    for _, _, t in got:
        quarters[min(3, max(0, int((t - start) / elapsed * 4)))] += 1
    qrates = ",".join("%.0f" % (n / (elapsed / 4)) for n in quarters)
    ids = [g[0] for g in got]
    with open(o["ids-out"], "w") as f:
        for cid, agent, _ in got:
            f.write("%s %s\n" % (cid, agent))
    us = lambda v: int(v * 1e6)
    ru = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu_ticks = int(sum(x.ru_utime + x.ru_stime for x in ru) * os.sysconf("SC_CLK_TCK"))
    print("CLAIMS cpu_ticks=%d ok=%d empty=%d errors=%d dup_ids=%d elapsed_us=%d rate=%.0f "
          "p50_us=%d p90_us=%d p99_us=%d max_us=%d quarter_rates=%s "
          "accept_p50_us=%d accept_p99_us=%d accepts=%d clients=%d" % (
              cpu_ticks, len(got), empty, errors, len(ids) - len(set(ids)), us(elapsed),
              len(got) / elapsed, us(pct(lat, 50)), us(pct(lat, 90)), us(pct(lat, 99)),
              us(lat[-1] if lat else 0), qrates, us(pct(alat, 50)), us(pct(alat, 99)),
              len(alat), k))
    if codes:
        print("CLAIMS_CODES " + " ".join("%s=%d" % kv for kv in sorted(codes.items())))
    return 0


# --------------------------------------------------------------- Redis side
def rconn(o):
    return redis.Redis(unix_socket_path=o["sock"], decode_responses=True)


def agent_loads(r, prefix, agents):
    p = r.pipeline(transaction=False)
    for a in agents:
        p.hgetall(prefix + "agent:" + a)
    return dict(zip(agents, p.execute()))


def cmd_wait(argv):
    o, agents = opts_of(argv)
    r = rconn(o)
    prefix, n = o["prefix"], int(o["n"])
    timeout = float(o.get("timeout", "120"))
    settle = float(o.get("settle", "3"))
    wkey = "%squeue:%s:waiting" % (prefix, o["queue"])
    t0 = time.time()
    last_state, last_change = None, t0
    while True:
        waiting = r.zcard(wkey)
        # Every agent's load (the agents are given on the command line; with
        # none, all of omr:agents).
        ids = agents or sorted(r.smembers(prefix + "agents"))
        load = sum(int(h.get("load", 0) or 0) for h in agent_loads(r, prefix, ids).values())
        state = (waiting, load)
        now = time.time()
        if state != last_state:
            last_state, last_change = state, now
        if (waiting == 0 and load >= n) or now - last_change >= settle or now - t0 > timeout:
            break
        time.sleep(0.02)
    print("WAIT waiting=%d load=%d seconds=%.2f timeout=%d" % (
        waiting, load, time.time() - t0, 1 if time.time() - t0 > timeout else 0))
    return 0


def read_events(r, key):
    out, start = [], "-"
    while True:
        page = r.xrange(key, start, "+", count=10000)
        if not page:
            break
        out.extend(page)
        if len(page) < 10000:
            break
        start = "(" + page[-1][0]
    return out


def cmd_analyze(argv):
    o, agents = opts_of(argv)
    r = rconn(o)
    prefix, queue, n = o["prefix"], o["queue"], int(o["n"])
    cap = int(o["capacity"])
    want_via = o.get("via")
    fails = []
    events = read_events(r, prefix + "events")
    opened, chan = {}, {}
    assigned = {}  # conversation -> [(at, agent, load, capacity, channel, via)]
    over_cap = 0
    dispatch_first = None
    for _id, f in events:
        t = f.get("type")
        if t == "conversation.opened" and f.get("queue") == queue:
            opened[f["conversation_id"]] = int(f["at"])
            chan[f["conversation_id"]] = f.get("channel", "")
        elif t == "conversation.assigned" and f.get("queue") == queue:
            at = int(f["at"])
            a = (at, f.get("agent_id", ""), int(f.get("load") or 0),
                 int(f.get("capacity") or 0), f.get("channel", ""), f.get("via", ""))
            assigned.setdefault(f["conversation_id"], []).append(a)
            if a[3] and a[2] > a[3]:
                over_cap += 1
            if dispatch_first is None or at < dispatch_first:
                dispatch_first = at
    n_open = len(opened)
    twice = sum(1 for v in assigned.values() if len(v) > 1)
    stray = sum(1 for c in assigned if c not in opened)
    n_assigned = sum(1 for c in assigned if c in opened)
    if n_open != n:
        fails.append("%d conversations opened in %s, expected %d" % (n_open, queue, n))
    if twice:
        fails.append("%d conversations assigned more than once" % twice)
    if stray:
        fails.append("%d assignments of conversations not opened in this run" % stray)
    if over_cap:
        fails.append("%d assignments above the agent's capacity (event load > capacity)" % over_cap)
    wrong_via = sum(1 for v in assigned.values() for a in v if want_via and a[5] != want_via)
    if wrong_via:
        fails.append("%d assignments not via %s" % (wrong_via, want_via))

    # Expected number of assignments: everything, unless the agents' room on
    # a channel is smaller than the work on it (then exactly the room).
    per_ch = {}
    for c, ch in chan.items():
        per_ch[ch] = per_ch.get(ch, 0) + 1
    room = cap * len(agents)
    expect = sum(min(v, room) for v in per_ch.values())
    claims = None
    if o.get("claims"):
        with open(o["claims"]) as f:
            claims = [l.split() for l in f if l.strip()]
        expect = len(claims)
        claimed = {}
        for cid, agent in claims:
            claimed[cid] = agent
        if len(claimed) != len(claims):
            fails.append("%d conversations claimed twice" % (len(claims) - len(claimed)))
        mism = sum(1 for cid, agent in claimed.items()
                   if [x[1] for x in assigned.get(cid, [])] != [agent])
        if mism:
            fails.append("%d claims not matched by exactly one conversation.assigned to the claimant"
                         % mism)
    if n_assigned != expect:
        fails.append("%d conversations assigned, expected %d" % (n_assigned, expect))

    # Conversation hashes agree with the events.
    p = r.pipeline(transaction=False)
    convs = list(opened)
    for c in convs:
        p.hmget("%sconv:{%s}" % (prefix, c), "status", "agent_id")
    st_count, bad_hash = {}, 0
    for c, (st, ag) in zip(convs, p.execute()):
        st_count[st] = st_count.get(st, 0) + 1
        ev = assigned.get(c)
        if ev and (st != "assigned" or ag != ev[-1][1]):
            bad_hash += 1
        if not ev and st != "open":
            bad_hash += 1
    if bad_hash:
        fails.append("%d conversation hashes disagree with the events (status/agent_id)" % bad_hash)
    waiting = r.zcard("%squeue:%s:waiting" % (prefix, queue))
    if waiting != n_open - n_assigned and claims is None:
        fails.append("waiting set holds %d, expected %d" % (waiting, n_open - n_assigned))

    # Agents: load per channel = assignments counted from the events, never
    # above capacity.
    count = {}
    for v in assigned.values():
        for a in v:
            count[(a[1], a[4])] = count.get((a[1], a[4]), 0) + 1
    hashes = agent_loads(r, prefix, agents)
    per_agent = []
    for a in agents:
        h = hashes[a]
        tot = 0
        for ch in set(list(per_ch) + [k[1] for k in count if k[0] == a]):
            load = int(h.get("load:" + ch, 0) or 0)
            c = count.get((a, ch), 0)
            tot += c
            capch = int(h.get("cap:" + ch, h.get("cap:*", 0)) or 0)
            if load != c:
                fails.append("agent %s: load:%s = %d but %d assignments" % (a, ch, load, c))
            if load > capch:
                fails.append("agent %s: load:%s = %d above capacity %d" % (a, ch, load, capch))
        per_agent.append(tot)

    # Latency opened -> assigned (ms, the daemons' clocks) and rates.
    lat = sorted(v[0][0] - opened[c] for c, v in assigned.items() if c in opened)
    ats = sorted(v[0][0] for c, v in assigned.items() if c in opened)
    ops = sorted(opened.values())
    span_assign = (ats[-1] - ats[0]) if len(ats) > 1 else 0
    span_total = (ats[-1] - ops[0]) if ats and ops else 0
    rate = lambda k, ms: (k / (ms / 1000.0)) if ms > 0 else 0
    res = {
        "opened": n_open, "assigned": n_assigned, "expected": expect, "twice": twice,
        "over_capacity": over_cap, "waiting": waiting,
        "status": st_count,
        "lat_p50_ms": pct(lat, 50), "lat_p90_ms": pct(lat, 90), "lat_p99_ms": pct(lat, 99),
        "lat_max_ms": lat[-1] if lat else 0, "lat_mean_ms": (sum(lat) / len(lat)) if lat else 0,
        "assign_span_ms": span_assign, "assign_rate": rate(len(ats), span_assign),
        "open_to_last_ms": span_total, "open_to_last_rate": rate(len(ats), span_total),
        "first_assigned_ms": ats[0] if ats else 0, "last_assigned_ms": ats[-1] if ats else 0,
        "first_opened_ms": ops[0] if ops else 0, "last_opened_ms": ops[-1] if ops else 0,
        "per_agent_min": min(per_agent) if per_agent else 0,
        "per_agent_max": max(per_agent) if per_agent else 0,
        "channels": per_ch, "events": len(events),
    }
    if o.get("json"):
        with open(o["json"], "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
    flat = {k: v for k, v in res.items() if not isinstance(v, dict)}
    print("ASSIGN " + " ".join(
        "%s=%s" % (k, ("%.1f" % v) if isinstance(v, float) else v) for k, v in flat.items()))
    for f in fails:
        print("ASSIGN_FAIL " + f)
    return 0


def main():
    a = sys.argv[1:]
    if not a:
        raise SystemExit(__doc__)
    cmds = {"presence": cmd_presence, "put-agents": cmd_put_agents, "claims": cmd_claims,
            "wait": cmd_wait, "analyze": cmd_analyze}
    if a[0] not in cmds:
        raise SystemExit(__doc__)
    sys.exit(cmds[a[0]](a[1:]))


if __name__ == "__main__":
    main()
