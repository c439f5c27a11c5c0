"""`omnirouted --check-config -c FILE`: exit 0 for a valid file, else exit 1
with every error as `FILE:LINE: message` naming the offending line."""

import re
import shutil
import subprocess

import pytest

from conftest import BINARY, SOURCE_DIR, base_config, daemon_env, free_port, to_yaml

EXAMPLE = SOURCE_DIR / "config" / "omnirouted.example.yaml"


def _binary():
    if not BINARY.is_file():
        pytest.fail(f"daemon binary {BINARY} missing (build it, or set OMNIROUTED)", pytrace=False)
    return str(BINARY)


def check(path, cwd=None):
    return subprocess.run([_binary(), "--check-config", "-c", str(path)], capture_output=True,
                          text=True, timeout=10, env=daemon_env(), cwd=cwd)


def _example(tmp_path, secret=True):
    cfg = tmp_path / "omnirouted.yaml"
    shutil.copyfile(EXAMPLE, cfg)
    # The example's other secret files: present in every variant, so each
    # test changes exactly one thing.
    for name, content in (("twilio-main.token", "twilio-token"),
                          ("vonage-main.secret", "vonage-secret"),
                          ("vonage-main.sig", "vonage-signature"),
                          ("helpdesk.token", "0123456789abcdef0123456789abcdef"),
                          ("tier1-slack.url", "https://hooks.slack.com/services/T0/B0/x"),
                          ("crm-webhook.secret", "crm-webhook-secret"),
                          ("smtp.password", "smtp-password"),
                          ("email-support.key", "0123456789abcdef0123456789abcdef"),
                          ("imap-support.password", "imap-password"),
                          ("smtp-support.password", "smtp-password"),
                          ("chat.key", "0123456789abcdef0123456789abcdef")):
        (tmp_path / name).write_text(content + "\n")
        (tmp_path / name).chmod(0o600)
    if secret:
        (tmp_path / "api-shop.secret").write_text("example-secret\n")
        (tmp_path / "api-shop.secret").chmod(0o600)
    return cfg


def _line_of(text, needle, start=1):
    for i, line in enumerate(text.splitlines(), 1):
        if i >= start and needle in line:
            return i
    raise AssertionError(f"{needle!r} not in the example config")


def _assert_error_at(res, path, lines, words=()):
    assert res.returncode == 1, f"exit {res.returncode}, stderr:\n{res.stderr}"
    if isinstance(lines, int):
        lines = (lines,)
    names = {str(path), path.name}
    rx = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<msg>.+)$")
    found = []
    for ln in res.stderr.splitlines():
        m = rx.match(ln)
        if m and (m.group("file") in names or m.group("file").endswith("/" + path.name)):
            found.append((int(m.group("line")), m.group("msg")))
    assert found, f"no 'FILE:LINE: message' line naming {path} in stderr:\n{res.stderr}"
    hits = [(n, msg) for n, msg in found if n in lines]
    assert hits, f"expected an error at line {lines}, got {found}\nstderr:\n{res.stderr}"
    for w in words:
        assert any(w in msg for _, msg in hits), f"error at line {lines} does not mention {w!r}: {hits}"


def test_version():
    r = subprocess.run([_binary(), "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "omnirouted 0.1.0", r.stdout


def test_example_config_is_valid(tmp_path):
    cfg = _example(tmp_path)
    r = check(cfg)
    assert r.returncode == 0, f"stderr:\n{r.stderr}"


def test_example_config_valid_from_another_cwd(tmp_path):
    # Relative secret_file is relative to the config's directory, not the cwd.
    cfg = _example(tmp_path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    r = check(cfg, cwd=other)
    assert r.returncode == 0, f"stderr:\n{r.stderr}"


def test_generated_test_config_is_valid(tmp_path):
    """The configs the other tests generate pass the checker too."""
    sec = tmp_path / "secrets"
    sec.mkdir()
    for n in ("shop", "partner", "strict"):
        (sec / f"{n}.secret").write_text("s\n")
    cfg = tmp_path / "gen.yaml"
    cfg.write_text(to_yaml(base_config("redis://127.0.0.1:1/0", sec, free_port())) + "\n")
    r = check(cfg)
    assert r.returncode == 0, f"stderr:\n{r.stderr}\nconfig:\n{cfg.read_text()}"


def test_unknown_key(tmp_path):
    cfg = _example(tmp_path)
    text = cfg.read_text()
    at = _line_of(text, "max_body:")
    lines = text.splitlines()
    lines.insert(at, "  max_bodyy: 2MiB")  # becomes line at+1
    cfg.write_text("\n".join(lines) + "\n")
    _assert_error_at(check(cfg), cfg, at + 1, words=("max_bodyy",))


def test_unknown_key_in_a_rule(tmp_path):
    cfg = _example(tmp_path)
    text = cfg.read_text()
    at = _line_of(text, "queue: billing")
    cfg.write_text(text.replace("      queue: billing\n", "      queue: billing\n      prio: high\n", 1))
    _assert_error_at(check(cfg), cfg, at + 1, words=("prio",))


def test_wrong_type(tmp_path):
    cfg = _example(tmp_path)
    text = cfg.read_text()
    at = _line_of(text, "max_body:")
    new = "\n".join("  max_body: [1]" if i == at else l
                    for i, l in enumerate(text.splitlines(), 1)) + "\n"
    cfg.write_text(new)
    _assert_error_at(check(cfg), cfg, at)


def test_bad_priority_value(tmp_path):
    cfg = _example(tmp_path)
    text = cfg.read_text()
    at = _line_of(text, "priority: urgent")
    cfg.write_text(text.replace("priority: urgent", "priority: asap", 1))
    _assert_error_at(check(cfg), cfg, at)


def test_missing_secret_file(tmp_path):
    cfg = _example(tmp_path, secret=False)
    text = cfg.read_text()
    at = _line_of(text, "secret_file:")
    # The secret_file line, or the line of the adapter entry it belongs to.
    _assert_error_at(check(cfg), cfg, (at, at - 1))


def test_several_errors_are_all_reported(tmp_path):
    cfg = _example(tmp_path, secret=False)
    text = cfg.read_text()
    a = _line_of(text, "max_body:")
    b = _line_of(text, "secret_file:")
    new = "\n".join("  max_body: [1]" if i == a else l for i, l in enumerate(text.splitlines(), 1)) + "\n"
    cfg.write_text(new)
    r = check(cfg)
    _assert_error_at(r, cfg, a)
    _assert_error_at(r, cfg, (b, b - 1))


def test_daemon_refuses_to_start_with_invalid_config(tmp_path):
    cfg = _example(tmp_path)
    cfg.write_text(cfg.read_text().replace("  max_body: 1MiB", "  max_body: lots", 1))
    r = subprocess.run([_binary(), "-c", str(cfg)], capture_output=True, text=True, timeout=10,
                       env=daemon_env())
    assert r.returncode != 0, r
    assert re.search(r":\d+: ", r.stderr), r.stderr
