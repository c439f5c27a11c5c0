"""The SMS tests' own tools, without the daemon: the official-SDK signer
(tests/js/sign.js) against published vectors, and the fake provider."""

import hashlib
import hmac
import json
import subprocess

import requests

from sms_helpers import (JS_DIR, NODE, OK, ensure_node_modules, http_error, twilio_signature,
                         vonage_signature)


def test_twilio_signature_matches_twilios_documented_example():
    # https://www.twilio.com/docs/usage/security#validating-requests
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
              "From": "+12349013030", "To": "+18005551212"}
    sig = twilio_signature("https://mycompany.com/myapp.php?foo=1&bar=2", params, token="12345")
    assert sig == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_vonage_signature_methods_agree_with_the_documented_scheme():
    p = {"msisdn": "447700900001", "text": "a&b=c", "timestamp": "1700000000", "api-key": "k"}
    s = "&api-key=k&msisdn=447700900001&text=a_b_c&timestamp=1700000000"
    assert vonage_signature(p, secret="sec", method="md5hash") == \
        hashlib.md5((s + "sec").encode()).hexdigest()
    for m in ("md5", "sha1", "sha256", "sha512"):
        assert vonage_signature(p, secret="sec", method=m) == \
            hmac.new(b"sec", s.encode(), getattr(hashlib, m)).hexdigest(), m


def test_sign_cli_one_shot_and_batch():
    ensure_node_modules()
    req = {"provider": "vonage", "secret": "s", "method": "sha1", "params": {"a": "b"}}
    one = subprocess.run([NODE, str(JS_DIR / "sign.js")], input=json.dumps(req), text=True,
                         capture_output=True, timeout=20)
    assert one.returncode == 0, one.stderr
    batch = subprocess.run([NODE, str(JS_DIR / "sign.js")], input=json.dumps([req, req]), text=True,
                           capture_output=True, timeout=20)
    assert batch.returncode == 0, batch.stderr
    assert json.loads(batch.stdout) == [one.stdout.strip()] * 2
    bad = subprocess.run([NODE, str(JS_DIR / "sign.js")], input='{"provider":"x"}', text=True,
                         capture_output=True, timeout=20)
    assert bad.returncode == 1 and "unknown provider" in bad.stderr


def test_fake_provider_scripts_and_records(fake_provider):
    fake_provider.script("twilio", http_error(500, retry_after=1), OK)
    url = fake_provider.base_url + "/2010-04-01/Accounts/ACx/Messages.json"
    s = requests.Session()
    r1 = s.post(url, data={"To": "+1", "Body": "hi"}, auth=("ACx", "tok"), timeout=5)
    r2 = s.post(url, data={"To": "+1", "Body": "hi"}, auth=("ACx", "tok"), timeout=5)
    r3 = s.post(fake_provider.base_url + "/sms/json", data={"to": "1", "text": "x"}, timeout=5)
    assert r1.status_code == 500 and r1.headers["Retry-After"] == "1"
    assert r2.status_code == 201 and r2.json()["sid"].startswith("SM")
    assert r3.status_code == 200 and r3.json()["messages"][0]["status"] == "0"
    tw = fake_provider.requests("twilio")
    assert [r.answer_status for r in tw] == [500, 201]
    assert tw[0].basic_auth == ("ACx", "tok") and tw[0].form == {"To": "+1", "Body": "hi"}
    assert [r.success for r in tw] == [False, True]
    assert fake_provider.requests("vonage")[0].form == {"to": "1", "text": "x"}
