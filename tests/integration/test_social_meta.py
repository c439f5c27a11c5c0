"""Meta webhooks (Messenger, Instagram): the GET verification handshake,
X-Hub-Signature-256 on every POST, batched deliveries (entry[].messaging[])
stored message by message with dedup on the message id, 503 while Redis is
down, and agent replies through a fake Graph API Send endpoint (bearer page
token, RESPONSE messaging type, rate-limit errors retried, others failed).
Real daemon, real redis-server; secrets never reach the daemon's log."""

import json
import time

import pytest

from conftest import (assert_error, metric, offline_config, parse_metrics, store_snapshot, wait_until,
                      write_config)
from meta_helpers import (APP, APP_SECRET, GRAPH_VERSION, IG_ID, IG_TOKEN, PAGE_ID, PAGE_TOKEN,
                          SECRETS_OF_META, VERIFY_TOKEN, FakeGraph, assert_stored_reply,
                          delivery, delivery_item, entry, graph_error, hub_signature, message_item,
                          meta_section, post_meta, read_item, verify, write_meta_secrets)
from sms_helpers import (accepted_reply, conv_key, get_reply, post_reply, stored_by_external_id,
                         stored_one, wait_reply_hash)
from test_check_config import _assert_error_at, check


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture
def fake_graph(request):
    g = FakeGraph()
    request.node.__dict__.setdefault("_omr_sections", []).append(
        ("fake Graph API requests", lambda: "\n".join(repr(r) for r in g.requests()) or "<none>"))
    yield g
    g.close()


@pytest.fixture
def meta_config(make_config, secrets_dir, fake_graph):
    write_meta_secrets(secrets_dir)

    def make(**over):
        cfg = make_config()
        cfg["log"]["level"] = "debug"  # the secrets must stay out even of debug logs
        cfg["api"] = {"tokens": [{"name": "helpdesk",
                                  "token_file": str(secrets_dir / "helpdesk.token")}]}
        cfg["outbound"] = {"give_up_after": "30s", "request_timeout": "5s"}
        cfg["connectors"]["meta"] = meta_section(secrets_dir, fake_graph.base_url)
        cfg.update(over)
        return cfg
    return make


@pytest.fixture
def meta_daemon(start_daemon, meta_config):
    d = start_daemon(meta_config())
    yield d
    log = d.log_text()
    for s in SECRETS_OF_META:
        assert s not in log, "a Meta secret appears in the daemon's log"


def conv_of(rdb, external_id):
    return stored_one(rdb, external_id)[2]["conversation_id"]


def page_conversation(daemon, rdb, psid="6001001", page=PAGE_ID, obj="page", text="Where is it?"):
    item = message_item(psid, page, text)
    assert_stored_reply(post_meta(daemon, delivery([entry([item], page)], obj)), 1)
    return conv_of(rdb, item["message"]["mid"])


# --------------------------------------------------------------------------
# verification handshake


def test_handshake(meta_daemon):
    r = verify(meta_daemon, challenge="1158201444")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].split(";")[0] == "text/plain", r.headers
    assert r.text == "1158201444"
    longest = "x" * 128
    r = verify(meta_daemon, challenge=longest)
    assert r.status_code == 200 and r.text == longest, r.text

    assert_error(verify(meta_daemon, token="not-the-token"), 403, "bad_verify_token")
    assert_error(verify(meta_daemon, token=VERIFY_TOKEN + "x"), 403, "bad_verify_token")
    assert_error(verify(meta_daemon, token=VERIFY_TOKEN[:-1]), 403, "bad_verify_token")
    assert_error(verify(meta_daemon, token=""), 403, "bad_verify_token")
    for p in ("hub.mode", "hub.verify_token", "hub.challenge"):
        assert_error(verify(meta_daemon, drop=(p,)), 400, "missing_parameter")
    assert_error(verify(meta_daemon, mode="unsubscribe"), 400, "bad_mode")
    assert_error(verify(meta_daemon, challenge="x" * 129), 400, "bad_challenge")
    assert_error(verify(meta_daemon, challenge="<script>alert(1)</script> x"), 400, "bad_challenge")
    assert_error(verify(meta_daemon, app="nosuchapp"), 404, "unknown_app")
    # The wrong token never learns whether its challenge would have passed.
    assert_error(verify(meta_daemon, token="wrong", challenge="x" * 500), 403, "bad_verify_token")


# --------------------------------------------------------------------------
# signatures


def test_signature_is_required(meta_daemon, rdb):
    body = json.dumps(delivery([entry([message_item("6001002")])])).encode()
    before = store_snapshot(rdb)
    assert_error(post_meta(meta_daemon, body, sign=False), 401, "missing_signature")
    assert_error(post_meta(meta_daemon, body, signature=""), 401, "missing_signature")
    assert_error(post_meta(meta_daemon, body, signature="sha256=" + "0" * 64), 401, "bad_signature")
    assert_error(post_meta(meta_daemon, body, signature="sha256=nothex"), 401, "bad_signature")
    assert_error(post_meta(meta_daemon, body, signature="sha1=" + "0" * 40), 401, "bad_signature")
    assert_error(post_meta(meta_daemon, body, secret="another-app-secret"), 401, "bad_signature")
    assert_error(post_meta(meta_daemon, body, secret=APP_SECRET + "x"), 401, "bad_signature")
    # Signed, then altered in transit.
    tampered = body.replace(b"hello", b"HELLO")
    assert tampered != body
    assert_error(post_meta(meta_daemon, tampered, signature=hub_signature(body)), 401,
                 "bad_signature")
    assert_error(post_meta(meta_daemon, body, app="nosuchapp"), 404, "unknown_app")
    assert store_snapshot(rdb) == before
    m = parse_metrics(meta_daemon.get("/metrics").text)
    assert metric(m, "omr_rejected_total", component="meta", reason="missing_signature") == 2
    assert metric(m, "omr_rejected_total", component="meta", reason="bad_signature") == 6
    # Upper-case hex is the same digest.
    sig = hub_signature(body)
    assert_stored_reply(post_meta(meta_daemon, body, signature="sha256=" + sig[7:].upper()), 1)


# --------------------------------------------------------------------------
# deliveries


def test_batched_delivery_stores_each_message_once(meta_daemon, rdb):
    ana, ben = "6001003", "6001004"
    m1 = message_item(ana, text="  My order #123 has not arrived  ", ts=1700000000123)
    echo = message_item(PAGE_ID, ana, text="We are looking into it", echo=True)
    m2 = message_item(ben, text="", attachments=[
        {"type": "image", "payload": {"url": "https://scontent.example/p/1.jpg"}},
        {"type": "fallback"},  # a shared link without payload: nothing to keep
    ])
    m3 = message_item(ana, text="Any news?", reply_to=m1["message"]["mid"])
    body = delivery([
        entry([m1, echo]),
        entry([m2, delivery_item(ana, mids=[echo["message"]["mid"]]), m3, read_item(ben)]),
    ])
    assert_stored_reply(post_meta(meta_daemon, body), 3, skipped=3)

    q1, _, s1 = stored_one(rdb, m1["message"]["mid"])
    assert s1["channel"] == "social" and s1["provider"] == f"meta:{APP}", s1
    assert s1["customer"]["id"] == ana and s1["customer"]["handle"] == ana, s1
    assert s1["text"] == "My order #123 has not arrived", s1
    assert s1["sent_at"] == "2023-11-14T22:13:20.123Z", s1
    assert s1["direction"] == "in", s1
    assert not s1.get("tags"), s1
    h = rdb.hgetall(conv_key(s1["conversation_id"]))
    assert h["thread_ref"] == f"page:{PAGE_ID}", h
    assert h["provider"] == f"meta:{APP}" and h["channel"] == "social", h
    assert h["customer_handle"] == ana, h

    _, _, s2 = stored_one(rdb, m2["message"]["mid"])
    assert s2.get("text", "") == "" and s2["customer"]["id"] == ben, s2
    assert [(a.get("type"), a.get("url")) for a in s2["attachments"]] == \
        [("image", "https://scontent.example/p/1.jpg")], s2
    assert s2["conversation_id"] != s1["conversation_id"]

    # The follow-up joins the customer's conversation with that page.
    _, _, s3 = stored_one(rdb, m3["message"]["mid"])
    assert s3["conversation_id"] == s1["conversation_id"], (s1, s3)
    assert stored_by_external_id(rdb, echo["message"]["mid"]) == []

    # Meta resends the same delivery: every message is a duplicate.
    before = store_snapshot(rdb)
    assert_stored_reply(post_meta(meta_daemon, body), 0, duplicates=3, skipped=3)
    assert store_snapshot(rdb) == before


def test_instagram_delivery(meta_daemon, rdb):
    ig_user = "9001001"
    m1 = message_item(ig_user, IG_ID, text="hi from instagram")
    deleted = message_item(ig_user, IG_ID, text=None)
    deleted["message"]["is_deleted"] = True
    reaction = {"sender": {"id": ig_user}, "recipient": {"id": IG_ID}, "timestamp": 1,
                "reaction": {"mid": m1["message"]["mid"], "action": "react", "reaction": "love"}}
    r = post_meta(meta_daemon, delivery([entry([m1, deleted, reaction], IG_ID)], "instagram"))
    assert_stored_reply(r, 1, skipped=2)
    _, _, s = stored_one(rdb, m1["message"]["mid"])
    assert s["provider"] == f"meta:{APP}" and s["text"] == "hi from instagram", s
    h = rdb.hgetall(conv_key(s["conversation_id"]))
    assert h["thread_ref"] == f"instagram:{IG_ID}", h
    # The same person writing to the Facebook page is another conversation.
    conv_fb = page_conversation(meta_daemon, rdb, psid=ig_user)
    assert conv_fb != s["conversation_id"]


def test_deliveries_without_messages(meta_daemon, rdb):
    before = store_snapshot(rdb)
    assert_stored_reply(post_meta(meta_daemon, delivery([])), 0)
    assert_stored_reply(post_meta(meta_daemon, delivery([{"id": PAGE_ID, "time": 1}])), 0)
    assert_stored_reply(post_meta(meta_daemon, delivery([entry([read_item("6001005")])])), 0,
                        skipped=1)
    assert store_snapshot(rdb) == before


def test_bad_bodies(meta_daemon, rdb):
    before = store_snapshot(rdb)
    assert_error(post_meta(meta_daemon, b"{not json"), 400, "bad_json")
    assert_error(post_meta(meta_daemon, b"[]"), 400, "bad_json")
    assert_error(post_meta(meta_daemon, b'{"object":"page","entry":[]} and more'), 400, "bad_json")
    assert_error(post_meta(meta_daemon, b'{"object":"page\xff","entry":[]}'), 400, "invalid_utf8")
    bad = [
        {"object": "user", "entry": []},
        {"entry": []},
        {"object": "page"},
        {"object": "page", "entry": {}},
        {"object": "page", "entry": ["x"]},
        {"object": "page", "entry": [{"id": PAGE_ID, "messaging": {}}]},
        delivery([entry(["not an object"])]),
        delivery([entry([{**message_item("6001006"), "message": "hi"}])]),
        delivery([entry([{**message_item("6001006"), "sender": {}}])]),
        delivery([entry([{**message_item("6001006"), "sender": {"id": 6001006}}])]),
        delivery([entry([{**message_item("6001006"), "recipient": None}])]),
        delivery([entry([{**message_item("6001006"), "timestamp": "yesterday"}])]),
        delivery([entry([message_item("6001006", m_id="")])]),
        delivery([entry([message_item("6001006", text=["a"])])]),
        delivery([entry([message_item("6001006", attachments={"url": "x"})])]),
    ]
    for b in bad:
        assert_error(post_meta(meta_daemon, b), 400, "invalid_field")
    assert store_snapshot(rdb) == before
    # One bad item does not cost the good ones of a signed delivery: they
    # are stored, the bad one is counted and logged with where it was.
    good = message_item("6001007")
    r = post_meta(meta_daemon, delivery([entry([good, {"sender": {"id": "1"}, "message": 5}])]))
    assert_stored_reply(r, 1, invalid=1)
    assert len(stored_by_external_id(rdb, good["message"]["mid"])) == 1
    meta_daemon.wait_log(r"invalid=1 first=\"entry\[0\]\.messaging\[1\]")
    before = store_snapshot(rdb)

    items = [read_item("6001008") for _ in range(1001)]
    assert_error(post_meta(meta_daemon, delivery([entry(items[:500]), entry(items[500:])])), 413,
                 "too_many_messages")
    assert store_snapshot(rdb) == before
    assert_stored_reply(post_meta(meta_daemon, delivery([entry(items[:1000])])), 0, skipped=1000)


def test_redis_down_answers_503_and_stores_nothing(meta_daemon, rdb, redis_server):
    page_conversation(meta_daemon, rdb)  # connected and working
    items = [message_item("6001009", text=f"message {i}") for i in range(3)]
    body = delivery([entry(items)])
    redis_server.kill()
    r = post_meta(meta_daemon, body)
    assert_error(r, 503, "store_unavailable")
    assert r.headers.get("Retry-After"), r.headers

    redis_server.start()  # an empty server on the same port: nothing was kept anywhere
    c = redis_server.client()
    try:
        for it in items:
            assert stored_by_external_id(c, it["message"]["mid"]) == []
        # Meta's redelivery once the daemon has reconnected.
        def redelivered():
            x = post_meta(meta_daemon, body)
            return x if x.status_code == 200 else None
        r = wait_until(redelivered, 10, interval=0.2, what="redelivery stored")
        assert_stored_reply(r, 3)
        convs = {stored_one(c, it["message"]["mid"])[2]["conversation_id"] for it in items}
        assert len(convs) == 1
    finally:
        c.close()


# --------------------------------------------------------------------------
# replies through the Graph API


def test_reply_goes_to_the_graph_api(meta_daemon, rdb, fake_graph):
    psid = "6001010"
    conv = page_conversation(meta_daemon, rdb, psid=psid)
    rid = accepted_reply(post_reply(meta_daemon, conv, "Your parcel ships today. \u2708"))
    (req,) = fake_graph.wait_requests(1)
    assert req.method == "POST"
    assert req.path == f"/{GRAPH_VERSION}/me/messages", req.path
    assert req.headers.get("authorization") == f"Bearer {PAGE_TOKEN}", req.headers
    assert req.headers.get("content-type", "").startswith("application/json"), req.headers
    assert req.json == {"recipient": {"id": psid}, "messaging_type": "RESPONSE",
                        "message": {"text": "Your parcel ships today. \u2708"}}, req.json
    h = wait_reply_hash(rdb, conv, rid, "sent")
    assert h["provider_message_id"] == req.answer_body["message_id"], h
    j = get_reply(meta_daemon, conv, rid).json()
    assert j["status"] == "sent" and j["provider"] == f"meta:{APP}", j


def test_instagram_reply_uses_the_instagram_token(meta_daemon, rdb, fake_graph):
    conv = page_conversation(meta_daemon, rdb, psid="9001002", page=IG_ID, obj="instagram")
    rid = accepted_reply(post_reply(meta_daemon, conv, "Thanks for writing!"))
    (req,) = fake_graph.wait_requests(1)
    assert req.path == f"/{GRAPH_VERSION}/me/messages", req.path
    assert req.headers.get("authorization") == f"Bearer {IG_TOKEN}", req.headers
    assert req.json["recipient"] == {"id": "9001002"}, req.json
    wait_reply_hash(rdb, conv, rid, "sent")


def test_rate_limit_error_is_retried(meta_daemon, rdb, fake_graph):
    fake_graph.script(graph_error(613, "(#613) Calls to this api have exceeded the rate limit."))
    conv = page_conversation(meta_daemon, rdb, psid="6001011")
    rid = accepted_reply(post_reply(meta_daemon, conv, "try again"))
    h = wait_reply_hash(rdb, conv, rid, "sent", timeout=10)
    reqs = fake_graph.requests()
    assert len(reqs) == 2, reqs
    assert reqs[0].answer_status == 400 and reqs[1].answer_status == 200, reqs
    assert reqs[0].json == reqs[1].json
    assert h["provider_message_id"] == reqs[1].answer_body["message_id"], h
    assert int(h["attempts"]) == 2, h


def test_other_graph_errors_fail(meta_daemon, rdb, fake_graph):
    fake_graph.script(graph_error(100, "(#100) No matching user found", subcode=2018001))
    conv = page_conversation(meta_daemon, rdb, psid="6001012")
    rid = accepted_reply(post_reply(meta_daemon, conv, "hello?"))
    h = wait_reply_hash(rdb, conv, rid, "failed", timeout=5)
    assert h["error"].startswith("meta HTTP 400 code 100: (#100) No matching user found"), h
    time.sleep(1.5)
    assert len(fake_graph.requests()) == 1, fake_graph.requests()

    # Outside the 24-hour window Meta refuses the RESPONSE type for good.
    fake_graph.script(graph_error(10, "(#10) This message is sent outside of allowed window.",
                                  subcode=2018278, type_="OAuthException"))
    rid = accepted_reply(post_reply(meta_daemon, conv, "a day later"))
    h = wait_reply_hash(rdb, conv, rid, "failed", timeout=5)
    assert "code 10:" in h["error"] and "outside of allowed window" in h["error"], h


def test_reply_to_an_unknown_page_fails(meta_daemon, rdb, fake_graph):
    # Meta delivers for a page the app serves but the config lacks: the
    # message is kept, the reply has no token to go out with.
    conv = page_conversation(meta_daemon, rdb, psid="6001013", page="5550000001")
    rid = accepted_reply(post_reply(meta_daemon, conv, "hello"))
    h = wait_reply_hash(rdb, conv, rid, "failed", timeout=5)
    assert "no page token for 'page:5550000001'" in h["error"], h
    time.sleep(0.5)
    assert fake_graph.requests() == []


def test_reply_length_limit(meta_daemon, rdb, fake_graph):
    conv = page_conversation(meta_daemon, rdb, psid="6001014")
    assert_error(post_reply(meta_daemon, conv, "x" * 2001), 422, "text_too_long")
    rid = accepted_reply(post_reply(meta_daemon, conv, "\u00e9" * 2000))
    (req,) = fake_graph.wait_requests(1)
    assert req.json["message"]["text"] == "\u00e9" * 2000
    wait_reply_hash(rdb, conv, rid, "sent")


# --------------------------------------------------------------------------
# configuration


def _meta_config_file(tmp_path, mutate=None):
    cfg, sec = offline_config(tmp_path)
    write_meta_secrets(sec)
    cfg["connectors"]["meta"] = meta_section(sec, "http://127.0.0.1:9")
    if mutate:
        mutate(cfg["connectors"]["meta"]["apps"][0], sec)
    path = tmp_path / "meta.yaml"
    write_config(path, cfg)
    return path


def _line(path, needle, nth=1):
    hits = [i for i, l in enumerate(path.read_text().splitlines(), 1) if needle in l]
    assert len(hits) >= nth, f"{needle!r} not in {path.read_text()}"
    return hits[nth - 1]


def test_config_is_valid(tmp_path):
    path = _meta_config_file(tmp_path)
    r = check(path)
    assert r.returncode == 0, f"stderr:\n{r.stderr}\nconfig:\n{path.read_text()}"
    for s in SECRETS_OF_META:
        assert s not in r.stderr and s not in r.stdout
    # graph_base is optional (Meta's current version).
    d = tmp_path / "default"
    d.mkdir()
    path = _meta_config_file(d, lambda a, s: a.pop("graph_base"))
    r = check(path)
    assert r.returncode == 0, f"stderr:\n{r.stderr}\nconfig:\n{path.read_text()}"


def test_config_errors(tmp_path):
    def case(name, mutate, needle, words=(), nth=1):
        d = tmp_path / name
        d.mkdir()
        path = _meta_config_file(d, mutate)
        _assert_error_at(check(path), path, _line(path, needle, nth), words)

    case("id", lambda a, s: a["pages"][1].update(id="17841-abc"), "17841-abc", ("digits",))
    case("dup", lambda a, s: a["pages"][1].update(id=PAGE_ID), PAGE_ID, ("twice",), nth=2)
    case("nopages", lambda a, s: a.update(pages=[]), "pages: []", ("1-",))
    case("base", lambda a, s: a.update(graph_base="ftp://graph.example"), "graph_base",
         ("http",))
    case("verify", lambda a, s: (s / "meta-shop.verify").unlink(), "meta-shop.verify",
         ("verify_token_file",))
    case("pagetok", lambda a, s: a["pages"][0].pop("token_file"), f"id: {PAGE_ID}",
         ("token_file",))
    case("unknown", lambda a, s: a.update(webhook_secret="x"), "webhook_secret", ("unknown",))
