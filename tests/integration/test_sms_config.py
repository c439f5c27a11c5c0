"""--check-config for the SMS sections (api.tokens, outbound,
connectors.twilio / connectors.vonage): the configs the SMS tests generate
are valid; a missing secret file or a bad value is `FILE:LINE: message`."""

from conftest import offline_config, write_config
from sms_helpers import TWILIO, VONAGE, API_TOKENS
from test_check_config import _assert_error_at, check


def _write_secrets(d):
    for n, t in API_TOKENS.items():
        (d / f"{n}.token").write_text(t + "\n")
    for n, a in TWILIO.items():
        (d / f"twilio-{n}.token").write_text(a["auth_token"] + "\n")
    for n, a in VONAGE.items():
        (d / f"vonage-{n}.secret").write_text(a["api_secret"] + "\n")
        if "signature_secret" in a:
            (d / f"vonage-{n}.sig").write_text(a["signature_secret"] + "\n")


def _config(tmp_path):
    from conftest import sms_sections
    cfg, sec = offline_config(tmp_path)
    _write_secrets(sec)
    s = sms_sections(sec, "http://127.0.0.1:9")
    cfg["api"] = s["api"]
    cfg["outbound"] = s["outbound"]
    cfg["connectors"]["twilio"] = s["twilio"]
    cfg["connectors"]["vonage"] = s["vonage"]
    path = tmp_path / "sms.yaml"
    write_config(path, cfg)
    return path, sec


def _line(text, needle):
    for i, l in enumerate(text.splitlines(), 1):
        if needle in l:
            return i
    raise AssertionError(f"{needle!r} not in config")


def test_generated_sms_config_is_valid(tmp_path):
    path, _ = _config(tmp_path)
    r = check(path)
    assert r.returncode == 0, f"stderr:\n{r.stderr}\nconfig:\n{path.read_text()}"


def test_missing_twilio_auth_token_file(tmp_path):
    path, sec = _config(tmp_path)
    (sec / "twilio-alt.token").unlink()
    text = path.read_text()
    at = _line(text, "twilio-alt.token")
    _assert_error_at(check(path), path, (at, _line(text, '- name: "alt"')))


def test_missing_api_token_file(tmp_path):
    path, sec = _config(tmp_path)
    (sec / "crm.token").unlink()
    text = path.read_text()
    at = _line(text, "crm.token")
    _assert_error_at(check(path), path, (at, at - 1))


def test_bad_vonage_signature_method(tmp_path):
    path, _ = _config(tmp_path)
    text = path.read_text()
    path.write_text(text.replace('signature_method: "sha256"', "signature_method: md4", 1))
    _assert_error_at(check(path), path, _line(text, 'signature_method: "sha256"'))


def test_unknown_key_in_a_twilio_account(tmp_path):
    path, _ = _config(tmp_path)
    text = path.read_text()
    at = _line(text, "account_sid:")
    lines = text.splitlines()
    indent = lines[at - 1][:len(lines[at - 1]) - len(lines[at - 1].lstrip())]
    lines.insert(at, indent + "acount_sid: typo")
    path.write_text("\n".join(lines) + "\n")
    _assert_error_at(check(path), path, at + 1, words=("acount_sid",))
