"""The threaded HTTP/1.1 server the fake provider APIs share (sms_helpers'
FakeProvider, meta_helpers' FakeGraph, social_helpers' FakeMastodon and
FakeX): a ThreadingHTTPServer on 127.0.0.1:<free port> in a daemon thread.

A subclass implements _serve(handler, body), which records the request and
answers it (send_answer()); handler is the BaseHTTPRequestHandler
(command, path, headers, ...), body the request body as bytes
(Content-Length or chunked). Call start_http() at the end of __init__, once
what _serve() uses exists."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def read_body(h):
    """The request body of handler h: chunked or Content-Length (none: b"")."""
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = b""
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return out
            out += h.rfile.read(size)
            h.rfile.readline()
    n = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(n) if n else b""


def send_answer(h, status, headers, data):
    """Answer status on handler h: the headers (name -> value, in order),
    Content-Length, and the body bytes data."""
    h.send_response(status)
    for k, v in headers.items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)
    h.wfile.flush()


def wait_for(cond, get, n, timeout, poll, fail):
    """Wait (on cond, a threading.Condition the fake notifies for every
    request it records) until get() returns at least n items; return them.
    On timeout: AssertionError(fail(what get() returned last))."""
    deadline = time.monotonic() + timeout
    with cond:
        while True:
            got = get()
            if len(got) >= n:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(fail(got))
            cond.wait(min(left, poll))


class FakeHTTP:
    """Base of a fake: start_http() serves on .port / .base_url; close()."""

    methods = ("GET", "POST", "PUT", "DELETE")  # passed to _serve(); others: 501 (BaseHTTPRequestHandler)
    allow_reuse_address = False

    def start_http(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Head and body are written separately: without this each
            # answer waits ~40 ms for the client's delayed ACK (Nagle).
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def _handle(self):
                fake._serve(self, read_body(self))

        for m in self.methods:
            setattr(Handler, f"do_{m}", Handler._handle)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = self.allow_reuse_address

            def handle_error(self, request, client_address):
                pass  # a client that went away (e.g. a killed daemon) is not news

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def _serve(self, h, body):
        raise NotImplementedError

    def close(self):
        self.server.shutdown()
        self.server.server_close()
