#!/usr/bin/python3
"""Helpers for bench/run.sh and bench/assign.sh (standard library only).

  benchtool.py freeport                      a free TCP port on 127.0.0.1
  benchtool.py seconds DURATION              wrk-style duration (10s, 2m, 1h, 500ms, 7) -> seconds
  benchtool.py secret FILE                   write a random HMAC secret (with a trailing newline)
  benchtool.py gen --secret-file F --host H:P --adapter A --count N --threads T --out PREFIX
                   [--new 1] [--run-id ID]
                                             N pre-signed POST /v1/inbound/A requests, raw HTTP/1.1,
                                             split into PREFIX.0 .. PREFIX.<T-1> (disjoint slices,
                                             each request terminated by \\x1e); also PREFIX.warmup
                                             (one more request, for the smoke test). Default: 32
                                             conversations (8 customers x 4 threads); --new 1: every
                                             request is a new customer, hence a new conversation
  benchtool.py post-raw HOST PORT FILE       send one raw request from FILE, print "<status> <body>"
  benchtool.py metric NAME [LABEL=VALUE ...] sum of a Prometheus metric read from stdin
"""

import hashlib
import hmac
import os
import re
import secrets
import socket
import sys
import time

SEP = b"\x1e"  # never appears in a JSON body (json escapes control characters) nor in a header

# A few customers, each always writing on one channel; 4 threads each => 32
# conversations. Handles avoid the example config's sender rule (+4477009*).
CUSTOMERS = [
    ("cust-01", "Ana Souza", "+447911000001", "sms"),
    ("cust-02", "Bram de Vries", "+447911000002", "sms"),
    ("cust-03", "Chloé Martin", "+447911000003", "chat"),
    ("cust-04", "Deniz Yılmaz", "+447911000004", "sms"),
    ("cust-05", "Elif Kaya", "+447911000005", "chat"),
    ("cust-06", "Femi Adeyemi", "+447911000006", "sms"),
    ("cust-07", "Giulia Rossi", "+447911000007", "chat"),
    ("cust-08", "Nguyễn Văn Hải", "+447911000008", "sms"),
]
THREADS_PER_CUSTOMER = 4
# Ordinary support traffic: none of these hit the example routing keywords
# (refund, money back, ...), so every message lands in routing.default_queue.
TEXTS = [
    "Hi, parcel {n} still shows in transit since Monday. Any news?",
    "The courier left a note but I was home all day. Order {n}.",
    "Can I change the delivery address for order {n} please?",
    "Olá, ainda não recebi o código de rastreio do pedido {n}.",
    "The app logs me out every time I open the basket ({n}).",
    "Thanks, that worked. Do you ship to Norway? Ref {n}",
    "Xin chào, đơn hàng {n} bị giao thiếu một món. Kiểm tra giúp.",
    "Is the blue jacket from order {n} available in size M?",
]


def esc(s):
    """JSON string literal (the texts above contain no quotes or backslashes)."""
    assert '"' not in s and "\\" not in s
    return '"' + s + '"'


def body_for(run_id, i, new=False):
    cid, name, handle, channel = CUSTOMERS[i % len(CUSTOMERS)]
    thread = "t-%s-%d" % (cid[-2:], (i // len(CUSTOMERS)) % THREADS_PER_CUSTOMER)
    if new:
        # A customer of its own: a new conversation, and not a returning
        # customer (no sticky agent), same channel mix and texts.
        cid = "c-%s-%08d" % (run_id, i)
        handle = "+4479%08d" % (i % 100000000)
        thread = "t-1"
    text = TEXTS[(i // 3) % len(TEXTS)].format(n=100000 + i % 900000)
    return (
        '{"external_id":"m-%s-%08d","channel":"%s","from":{"id":"%s","name":%s,"handle":"%s"},'
        '"thread":"%s","text":%s,"sent_at":"2026-11-23T09:30:00Z"}'
        % (run_id, i, channel, cid, esc(name), handle, thread, esc(text))
    ).encode()


def read_secret(path):
    with open(path, "rb") as f:
        return f.read().rstrip(b"\r\n")


def raw_request(host, adapter, key, body, ts):
    sig = hmac.new(key, ts + b"." + body, hashlib.sha256).hexdigest().encode()
    return b"".join((
        b"POST /v1/inbound/", adapter, b" HTTP/1.1\r\nHost: ", host,
        b"\r\nContent-Type: application/json\r\nX-Omniroute-Timestamp: ", ts,
        b"\r\nX-Omniroute-Signature: sha256=", sig,
        b"\r\nContent-Length: ", str(len(body)).encode(), b"\r\n\r\n", body,
    ))


def cmd_gen(argv):
    opts = dict(zip(argv[::2], argv[1::2]))
    key = read_secret(opts["--secret-file"])
    host = opts["--host"].encode()
    adapter = opts["--adapter"].encode()
    count = int(opts["--count"])
    nthreads = int(opts["--threads"])
    prefix = opts["--out"]
    run_id = opts.get("--run-id") or secrets.token_hex(3)
    new = opts.get("--new", "0") == "1"
    ts = str(int(time.time())).encode()
    files = [open("%s.%d" % (prefix, t), "wb") for t in range(nthreads)]
    sizes = []
    for i in range(count):
        body = body_for(run_id, i, new)
        if i < 1000:
            sizes.append(len(body))
        f = files[i % nthreads]  # thread t owns requests t, t+T, t+2T, ...
        f.write(raw_request(host, adapter, key, body, ts))
        f.write(SEP)
    for f in files:
        f.close()
    with open(prefix + ".warmup", "wb") as f:
        f.write(raw_request(host, adapter, key, body_for(run_id + "-warmup", 0, new), ts))
    print("generated %d requests, body %d-%d bytes (mean %.0f)" % (
        count, min(sizes), max(sizes), sum(sizes) / len(sizes)))


def cmd_post_raw(host, port, path):
    with open(path, "rb") as f:
        req = f.read()
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(req.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n", 1))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1].decode() if head else "000"
    print(status, body.decode(errors="replace"))


def cmd_metric(name, labels):
    want = dict(l.split("=", 1) for l in labels)
    total, matched = 0.0, False
    for line in sys.stdin:
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)', line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in want.items()):
            total += float(m.group(3))
            matched = True
    if not matched:
        print("NA")
        return
    print("%d" % total if total == int(total) else total)


def seconds(d):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", d)
    if not m:
        raise SystemExit("bad duration %r (want e.g. 10s, 2m, 1h)" % d)
    v = float(m.group(1))
    return v * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]


def main():
    a = sys.argv[1:]
    if not a:
        raise SystemExit(__doc__)
    if a[0] == "freeport":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            print(s.getsockname()[1])
    elif a[0] == "seconds":
        s = seconds(a[1])
        print("%g" % s)
    elif a[0] == "secret":
        fd = os.open(a[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, secrets.token_hex(32).encode() + b"\n")
        os.close(fd)
    elif a[0] == "gen":
        cmd_gen(a[1:])
    elif a[0] == "post-raw":
        cmd_post_raw(*a[1:4])
    elif a[0] == "metric":
        cmd_metric(a[1], a[2:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
