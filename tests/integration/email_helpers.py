"""Helpers for the email channel tests (issue 6): a real Dovecot IMAP server
configured in a temp dir, a corpus generator built on Python's `email`
package (legacy charsets, RFC 2047 subjects, HTML-only, attachments, broken
MIME, auto-replies), the daemon config (connectors.email), Mailgun signing,
and readers for what the daemon stored.

Spec: /work/spec/email_tests.md (the daemon's contract), /work/spec/mime.md.

Dovecot notes (Debian bookworm, 2.3.19): it runs as a child of the test with
its own config (`dovecot -F -c CONF`), listening on 127.0.0.1:<free port>,
plaintext IMAP only. It refuses to run mail processes as root or below
first_valid_uid, so as root the passwd-file users get the `dovecot` uid/gid
and the whole temp tree is chowned to it (mkdtemp under /tmp, 0755: pytest's
tmp_path may not be traversable by that uid); run unprivileged, everything
is the invoking user's. Mail goes in by IMAP APPEND
(imaplib, stdlib): 200 messages take ~0.3 s (doveadm save: ~15 ms each).
Anvil's per-IP auth penalty is switched off (every client here is
127.0.0.1); a failed login is still answered after auth_failure_delay (2 s).
"""

import base64
import binascii
import email
import email.policy
import email.utils
import grp
import hashlib
import hmac
import imaplib
import json
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from conftest import free_port, logged_messages, tail, wait_until

DOVECOT = shutil.which("dovecot", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/dovecot"

SUPPORT = "support@example.com"
SUPPORT_NAME = "Example Support"
SALES = "sales@example.com"
TOKEN_SECRET = "email-token-secret-0123456789abcdef"
MAILGUN_KEY = "key-mailgun-signing-0123456789abcdef"
API_TOKEN = "email-tests-helpdesk-token-" + "9a8b7c6d5e4f" * 2
USERS = {"alice": "alice-imap-pw-1", "bob": "bob-imap-pw-2"}


# --------------------------------------------------------------------------
# Dovecot


class Dovecot:
    """A private Dovecot (IMAP only) on 127.0.0.1:<port>, users from `users`
    ({name: password}) with Maildirs under its temp dir."""

    def __init__(self, users=None, port=None):
        self.users = dict(users or USERS)
        self.port = port or free_port()
        self.dir = None
        self.proc = None

    @property
    def conf(self):
        return os.path.join(self.dir, "dovecot.conf")

    @property
    def log_path(self):
        return os.path.join(self.dir, "dovecot.log")

    def url(self, folder="INBOX"):
        return f"imap://127.0.0.1:{self.port}/{folder}"

    def start(self, timeout=10):
        if os.geteuid() == 0:
            # Dovecot will not run mail or login processes as root.
            pw = pwd.getpwnam("dovecot")
            login_user, internal_user = "dovenull", "dovecot"
            internal_group = grp.getgrgid(pw.pw_gid).gr_name
        else:
            # Unprivileged: everything runs as the invoking user.
            pw = pwd.getpwuid(os.geteuid())
            login_user = internal_user = pw.pw_name
            internal_group = grp.getgrgid(os.getegid()).gr_name
        uid, gid = pw.pw_uid, pw.pw_gid
        self.dir = tempfile.mkdtemp(prefix="omr-dovecot-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        for sub in ("run", "state", "home"):
            os.mkdir(os.path.join(self.dir, sub))
        lines = []
        for user, password in self.users.items():
            home = os.path.join(self.dir, "home", user)
            os.mkdir(home)
            lines.append(f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{home}::\n")
        Path(self.dir, "passwd").write_text("".join(lines))
        d = self.dir
        Path(self.conf).write_text(f"""\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir
mail_fsync = never
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
protocol imap {{
  mail_max_userip_connections = 200
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
# Anvil's per-IP auth penalty would slow every login from 127.0.0.1
# (another mailbox's too) after one user's failures: a test artefact.
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
""")
        if os.geteuid() == 0:
            for root, dirs, files in os.walk(self.dir):
                for n in dirs + files:
                    os.chown(os.path.join(root, n), uid, gid)
            os.chown(self.dir, uid, gid)
        out = open(os.path.join(self.dir, "dovecot.stdout"), "ab")
        try:
            # its own process group: stop() ends exactly the processes it started
            self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        user, password = next(iter(self.users.items()))
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}:\n"
                                   f"{tail(os.path.join(self.dir, 'dovecot.stdout'))}\n{tail(self.log_path)}")
            try:
                m = imaplib.IMAP4("127.0.0.1", self.port, timeout=2)
                m.login(user, password)
                m.logout()
                return self
            except (OSError, imaplib.IMAP4.error):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot not answering on {self.port}:\n{tail(self.log_path)}")
            time.sleep(0.02)

    def stop(self):
        """SIGKILL to Dovecot's process group (master, login, auth, imap
        processes: all started by us). A SIGTERM'd master takes a second to
        exit, and nothing of this throw-away server needs a clean stop."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        self.proc = None

    def cleanup(self):
        self.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # IMAP client side ---------------------------------------------------
    def connect(self, user="alice"):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        m.login(user, self.users[user])
        return m

    def append(self, raws, user="alice", folder="INBOX"):
        """APPEND each raw message (bytes, or a Mail) to `folder`; returns
        their UIDs (from UIDPLUS's APPENDUID)."""
        single = not isinstance(raws, (list, tuple))
        if single:
            raws = [raws]
        uids = []
        m = self.connect(user)
        try:
            for raw in raws:
                if isinstance(raw, Mail):
                    raw = raw.raw
                typ, data = m.append(folder, None, None, raw)
                assert typ == "OK", (typ, data)
                mm = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
                assert mm, data
                uids.append(int(mm.group(2)))
        finally:
            m.logout()
        return uids[0] if single else uids

    def create(self, folder, user="alice"):
        m = self.connect(user)
        try:
            typ, data = m.create(folder)
            assert typ == "OK", (typ, data)
        finally:
            m.logout()

    def status(self, folder="INBOX", user="alice"):
        """{'UIDVALIDITY': n, 'UIDNEXT': n, 'MESSAGES': n, 'UNSEEN': n}"""
        m = self.connect(user)
        try:
            typ, data = m.status(folder, "(UIDVALIDITY UIDNEXT MESSAGES UNSEEN)")
            assert typ == "OK", (typ, data)
        finally:
            m.logout()
        return {k.decode(): int(v) for k, v in re.findall(rb"([A-Z]+) (\d+)", data[0])}

    def uidvalidity(self, folder="INBOX", user="alice"):
        return self.status(folder, user)["UIDVALIDITY"]

    def _fetch_all(self, folder, user, items):
        """UID FETCH 1:* items of `folder` opened read-only (imaplib's data),
        or None when the folder is empty."""
        m = self.connect(user)
        try:
            typ, data = m.select(folder, readonly=True)
            assert typ == "OK", (typ, data)
            if int(data[0]) == 0:
                return None
            typ, data = m.uid("FETCH", "1:*", items)
            assert typ == "OK", (typ, data)
        finally:
            m.logout()
        return data

    def flags(self, folder="INBOX", user="alice"):
        """{uid: set of flags} of every message in `folder` (read-only)."""
        data = self._fetch_all(folder, user, "(UID FLAGS)")
        if data is None:
            return {}
        out = {}
        for item in data:
            if not item:
                continue
            line = item if isinstance(item, bytes) else item[0]
            mu = re.search(rb"UID (\d+)", line)
            mf = re.search(rb"FLAGS \(([^)]*)\)", line)
            if mu and mf:
                out[int(mu.group(1))] = set(mf.group(1).decode().split())
        return out

    def modseqs(self, folder="INBOX", user="alice"):
        """{uid: MODSEQ} (CONDSTORE): a message's MODSEQ grows with every
        change of its flags, even one undone later (\\Seen set by a
        FETCH BODY[] and taken off again)."""
        data = self._fetch_all(folder, user, "(UID MODSEQ)")
        if data is None:
            return {}
        out = {}
        for item in data:
            line = item if isinstance(item, bytes) else (item[0] if item else b"")
            mu = re.search(rb"UID (\d+)", line or b"")
            mm = re.search(rb"MODSEQ \((\d+)\)", line or b"")
            if mu and mm:
                out[int(mu.group(1))] = int(mm.group(1))
        return out

    def message_ids(self, folder="INBOX", user="alice"):
        """{uid: Message-ID without <>} of `folder` (read-only)."""
        data = self._fetch_all(folder, user, "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        if data is None:
            return {}
        out = {}
        for item in data:
            if isinstance(item, tuple):
                mu = re.search(rb"UID (\d+)", item[0])
                mi = re.search(rb"<([^>]*)>", item[1])
                if mu:
                    out[int(mu.group(1))] = mi.group(1).decode() if mi else None
        return out

    def fetch_section(self, uid, section, folder="INBOX", user="alice"):
        """The raw (still transfer-encoded) bytes of BODY[section] of a message."""
        m = self.connect(user)
        try:
            typ, data = m.select(folder, readonly=True)
            assert typ == "OK", (typ, data)
            typ, data = m.uid("FETCH", str(uid), f"(BODY.PEEK[{section}])")
            assert typ == "OK", (typ, data)
        finally:
            m.logout()
        for item in data:
            if isinstance(item, tuple):
                return item[1]
        raise AssertionError(f"no BODY[{section}] for UID {uid}: {data!r}")

    def log_text(self):
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture
def dovecot(request):
    dv = Dovecot()
    try:
        dv.start()
    except Exception:
        dv.cleanup()
        raise
    # the log survives until teardown only; copy its tail into the report
    request.node.__dict__.setdefault("_omr_sections", []).append(
        ("dovecot log tail", lambda: "\n".join(dv.log_text().splitlines()[-40:])))
    yield dv
    dv.cleanup()


@pytest.fixture
def smtp_factory(request):
    """smtp_factory(**kw) -> a started notify_helpers.SmtpServer (aiosmtpd on
    127.0.0.1:<free port>; kw: reject_rcpt, rcpt_script, reject_data),
    stopped at teardown."""
    from notify_helpers import SmtpServer
    servers = []

    def make(**kw):
        srv = SmtpServer(**kw).start()
        servers.append(srv)
        request.node.__dict__.setdefault("_omr_sections", []).append(
            (f"smtp server {srv.address}", lambda: "\n".join(
                f"{m!r} from={m.mail_from}" for m in srv.mails()) + f"\nrejected: {srv.rejected!r}"))
        return srv

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture
def smtp(smtp_factory):
    """A real SMTP server that accepts everything."""
    return smtp_factory()


# --------------------------------------------------------------------------
# the corpus

SENTENCES = {
    "th": "สวัสดีครับ ต้องการความช่วยเหลือ",
    "vi": "Xin chào, tôi cần giúp đỡ",
    "tr": "Merhaba, yardıma ihtiyacım var: ğüşıöç",
    "ja": "こんにちは、助けてください",
    "zh": "你好，我需要帮助",
    "en": "Hello, I need help with my order",
}

# A second line per language: more of the charset's repertoire (and, for
# the windows-* code pages, characters the ISO sibling lacks: “ ” €).
EXTRA = {
    "th": "สั่งซื้อเมื่อวานนี้ ยังไม่ได้รับสินค้า",
    "vi": "Đơn hàng của tôi chưa được giao. Tiếng Việt có dấu: ạ ả ấ ầ ẩ ẫ ậ ể ễ ệ ỉ ị ọ ỏ ố ồ ổ ỗ ộ ớ ờ ở ỡ ợ ụ ủ ứ ừ ử ữ ự ỳ ỵ ỷ ỹ",
    "tr": "Siparişim gelmedi, İstanbul'dan gönderildi. ÇĞİÖŞÜ çğıöşü",
    "ja": "注文した商品がまだ届いていません。カタカナ、ひらがな、漢字。",
    "zh": "我的订单还没有到，请帮我查一下。谢谢！",
    "en": "The parcel was due last Monday and nothing has arrived yet.",
}

# declared label -> (python encoder name, language)
LEGACY = {
    "tis-620": ("tis-620", "th"),
    "windows-874": ("cp874", "th"),
    "windows-1258": ("cp1258", "vi"),
    "iso-8859-9": ("iso-8859-9", "tr"),
    "iso-2022-jp": ("iso2022_jp", "ja"),
    "gb18030": ("gb18030", "zh"),
}
CHARSETS = ["utf-8"] + list(LEGACY)
LANGS = list(SENTENCES)
CTES = ("quoted-printable", "base64")

_VI_TONES = "\u0300\u0301\u0303\u0309\u0323"


def _encode_cp1258(s):
    """windows-1258 has few precomposed Vietnamese letters: the others are a
    base letter followed by a combining tone mark (as real Vietnamese
    windows-1258 mail is written)."""
    out = bytearray()
    for ch in s:
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        d = unicodedata.normalize("NFD", ch)
        tones = "".join(c for c in d if c in _VI_TONES)
        rest = unicodedata.normalize("NFC", "".join(c for c in d if c not in _VI_TONES))
        out += rest.encode("cp1258") + tones.encode("cp1258")
    return bytes(out)


def encode_text(s, charset):
    """s in `charset` (a declared label). Line by line so that ISO-2022-JP
    returns to ASCII before every line break."""
    if charset == "utf-8":
        return s.encode("utf-8")
    codec = LEGACY[charset][0] if charset in LEGACY else charset
    if codec == "cp1258":
        return _encode_cp1258(s)
    return b"\n".join(line.encode(codec) for line in s.split("\n"))


def nfc(s):
    return unicodedata.normalize("NFC", s) if isinstance(s, str) else s


def norm_text(s):
    """For comparing bodies: NFC, \\r\\n -> \\n, surrounding white space removed."""
    return nfc(s).replace("\r\n", "\n").strip() if isinstance(s, str) else s


def encoded_words(s, charset, mode="B"):
    """RFC 2047 encoded-words for s in `charset` (mode B or Q), each at most
    75 characters, split on character boundaries, joined by folding white
    space (ignored between adjacent encoded-words)."""
    words, chunk = [], ""
    budget = 36 if mode == "B" else 20  # encoded bytes per word before wrapping

    def flush(c):
        raw = encode_text(c, charset)
        if mode == "B":
            payload = base64.b64encode(raw).decode()
        else:
            payload = "".join(chr(b) if (0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A)
                              else "_" if b == 0x20 else f"={b:02X}" for b in raw)
        words.append(f"=?{charset}?{mode}?{payload}?=")

    for ch in s:
        if chunk and len(encode_text(chunk + ch, charset)) > budget:
            flush(chunk)
            chunk = ""
        chunk += ch
    if chunk:
        flush(chunk)
    return "\r\n ".join(words)


def encode_body(text, charset, cte):
    """(Content-Transfer-Encoding value, encoded body as str) for text."""
    data = encode_text(text, charset).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if cte == "base64":
        b = base64.encodebytes(data).decode().replace("\n", "\r\n")
        return "base64", b
    if cte == "quoted-printable":
        lines = data.split(b"\r\n")
        enc = [binascii.b2a_qp(line, istext=False).decode().replace("\n", "\r\n") for line in lines]
        return "quoted-printable", "\r\n".join(enc) + "\r\n"
    if cte == "8bit":
        return "8bit", data.decode("latin-1")  # bytes preserved by latin-1 round trip
    raise ValueError(cte)


@dataclass
class Mail:
    raw: bytes
    message_id: str            # without <>
    from_addr: str             # lower-case
    from_name: str = None
    subject: str = None        # expected decoded subject
    text: str = None           # expected text (trimmed)
    body_full: str = None      # expected full text body
    html: str = None
    attachments: list = field(default_factory=list)  # [(name, type, bytes)]
    charset: str = "utf-8"
    cte: str = None
    auto: bool = False
    broken: str = None         # the kind of breakage, None when well formed
    to: str = SUPPORT
    kind: str = "plain"

    def __repr__(self):
        return f"Mail({self.kind} {self.charset}/{self.cte} <{self.message_id}> from {self.from_addr})"


def new_message_id(domain="customer.example"):
    return f"{uuid.uuid4().hex}@{domain}"


def _addr_header(name, addr, charset):
    if not name:
        return addr
    if all(ord(c) < 128 for c in name):
        return email.utils.formataddr((name, addr))
    return f"{encoded_words(name, charset)} <{addr}>"


def _subject_header(subject, charset, mode="B"):
    if subject is None:
        return None
    if all(ord(c) < 128 for c in subject):
        return subject
    return encoded_words(subject, charset, mode)


def _headers(*, sender, name, to, subject, message_id, charset, extra=(), subject_mode="B",
             in_reply_to=None, references=None, date=None):
    h = []
    if sender is not None:
        h.append(("From", _addr_header(name, sender, charset)))
    h.append(("To", to))
    subj = _subject_header(subject, charset, subject_mode)
    if subj is not None:
        h.append(("Subject", subj))
    h.append(("Date", date or email.utils.formatdate(usegmt=True)))
    if message_id is not None:
        h.append(("Message-ID", f"<{message_id}>"))
    if in_reply_to:
        h.append(("In-Reply-To", f"<{in_reply_to}>"))
    if references:
        h.append(("References", " ".join(f"<{r}>" for r in references)))
    h.append(("MIME-Version", "1.0"))
    h.extend(extra)
    return h


def _assemble(headers, body_headers, body, check=True):
    """The message bytes (CRLF). The raw form is written out by hand so the
    charset labels, encoded-words and transfer encodings are exactly the
    ones under test; check: Python's email package must parse it without a
    defect (a broken corpus would make the daemon look wrong)."""
    out = "".join(f"{k}: {v}\r\n" for k, v in list(headers) + list(body_headers))
    out += "\r\n" + body
    raw = out.encode("latin-1")
    if check:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        defects = [(p.get_content_type(), d) for p in msg.walk() for d in p.defects]
        assert not defects, f"corpus generator built a defective message: {defects}"
        assert all(len(line) <= 998 for line in raw.split(b"\r\n")), "line over 998 octets"
    return raw


def _customer(i=None):
    n = uuid.uuid4().hex[:10] if i is None else f"{i:04d}-{uuid.uuid4().hex[:6]}"
    return f"customer-{n}@customer.example"


def plain_mail(text=None, *, charset="utf-8", cte="quoted-printable", lang="en", subject=None,
               sender=None, name=None, to=SUPPORT, message_id=None, extra_headers=(),
               subject_mode="B", in_reply_to=None, references=None, declare_charset=None,
               expect_text=None):
    """A text/plain mail. text defaults to the language's two sentences;
    subject to the first sentence."""
    if text is None:
        text = f"{SENTENCES[lang]}\n{EXTRA[lang]}"
        if charset in ("windows-874", "windows-1258"):
            text += "\n“€” windows"
        if charset == "gb18030":
            text += "\n价格：€9.99"
    subject = SENTENCES[lang] if subject is None else subject
    sender = (sender or _customer()).lower()
    message_id = new_message_id() if message_id is None else message_id
    cte_v, body = encode_body(text, charset, cte)
    headers = _headers(sender=sender, name=name, to=to, subject=subject, message_id=message_id,
                       charset=charset, extra=extra_headers, subject_mode=subject_mode,
                       in_reply_to=in_reply_to, references=references)
    ct = f'text/plain; charset="{declare_charset or charset}"'
    raw = _assemble(headers, [("Content-Type", ct), ("Content-Transfer-Encoding", cte_v)], body)
    exp = norm_text(text) if expect_text is None else expect_text
    return Mail(raw=raw, message_id=message_id, from_addr=sender, from_name=name, subject=subject,
                text=exp, body_full=exp, charset=charset, cte=cte, to=to)


def html_mail(html=None, *, expect_lines=None, charset="utf-8", cte="quoted-printable",
              subject="HTML only", sender=None, name=None, message_id=None):
    """An HTML-only mail (text/html, no text/plain). expect_lines: pieces
    of text the converted text must contain, in order."""
    if html is None:
        html = ("<!DOCTYPE html><html><head><title>ignored title</title>"
                "<style>p { color: red; }</style><script>var x = 1;</script></head><body>"
                "<p>Xin ch&agrave;o, t&ocirc;i <b>cần</b> giúp đỡ</p>"
                "<ul><li>Order 1042</li><li>Order 1043</li></ul>"
                "<p>Thanks &amp; regards</p></body></html>")
        expect_lines = ["Xin chào, tôi cần giúp đỡ", "Order 1042", "Order 1043", "Thanks & regards"]
    sender = (sender or _customer()).lower()
    message_id = new_message_id() if message_id is None else message_id
    cte_v, body = encode_body(html, charset, cte)
    headers = _headers(sender=sender, name=name, to=SUPPORT, subject=subject, message_id=message_id,
                       charset=charset)
    raw = _assemble(headers, [("Content-Type", f'text/html; charset="{charset}"'),
                              ("Content-Transfer-Encoding", cte_v)], body)
    m = Mail(raw=raw, message_id=message_id, from_addr=sender, from_name=name, subject=subject,
             html=html, charset=charset, cte=cte, kind="html")
    m.expect_lines = expect_lines
    return m


def _boundary():
    return "=_omr_" + uuid.uuid4().hex


def alternative_mail(text, html, *, charset="utf-8", subject="Alternative", sender=None):
    """multipart/alternative: text/plain + text/html (plain is the body)."""
    sender = (sender or _customer()).lower()
    message_id = new_message_id()
    b = _boundary()
    t_cte, t_body = encode_body(text, charset, "quoted-printable")
    h_cte, h_body = encode_body(html, charset, "base64")
    body = (f"This is a multi-part message in MIME format.\r\n--{b}\r\n"
            f'Content-Type: text/plain; charset="{charset}"\r\nContent-Transfer-Encoding: {t_cte}\r\n\r\n'
            f"{t_body}\r\n--{b}\r\n"
            f'Content-Type: text/html; charset="{charset}"\r\nContent-Transfer-Encoding: {h_cte}\r\n\r\n'
            f"{h_body}\r\n--{b}--\r\n")
    headers = _headers(sender=sender, name=None, to=SUPPORT, subject=subject, message_id=message_id,
                       charset=charset)
    raw = _assemble(headers, [("Content-Type", f'multipart/alternative; boundary="{b}"')], body)
    return Mail(raw=raw, message_id=message_id, from_addr=sender, subject=subject,
                text=norm_text(text), body_full=norm_text(text), html=html, charset=charset,
                kind="alternative")


def _filename_params(name):
    """Content-Disposition filename parameter(s): RFC 2231 for non-ASCII."""
    if all(ord(c) < 128 for c in name):
        return f'filename="{name}"'
    from urllib.parse import quote
    return f"filename*=utf-8''{quote(name)}"


def attachment_mail(text="Please see the attached invoice and photo.", attachments=None, *,
                    html=None, subject="Invoice attached", sender=None):
    """multipart/mixed: a text/plain body (or multipart/alternative when html
    is given) then the attachments [(name, type, bytes)], base64."""
    if attachments is None:
        attachments = [("hóa đơn 1042.pdf", "application/pdf",
                        b"%PDF-1.4\n" + bytes(random.Random(1).randrange(256) for _ in range(3000))),
                       ("photo.png", "image/png",
                        b"\x89PNG\r\n\x1a\n" + bytes(random.Random(2).randrange(256) for _ in range(1234)))]
    sender = (sender or _customer()).lower()
    message_id = new_message_id()
    b = _boundary()
    t_cte, t_body = encode_body(text, "utf-8", "quoted-printable")
    parts = [f'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: {t_cte}\r\n\r\n{t_body}']
    for name, ctype, data in attachments:
        enc = base64.encodebytes(data).decode().replace("\n", "\r\n")
        parts.append(f"Content-Type: {ctype}\r\nContent-Disposition: attachment; {_filename_params(name)}\r\n"
                     f"Content-Transfer-Encoding: base64\r\n\r\n{enc}")
    body = "".join(f"--{b}\r\n{p}\r\n" for p in parts) + f"--{b}--\r\n"
    headers = _headers(sender=sender, name=None, to=SUPPORT, subject=subject, message_id=message_id,
                       charset="utf-8")
    raw = _assemble(headers, [("Content-Type", f'multipart/mixed; boundary="{b}"')], body)
    return Mail(raw=raw, message_id=message_id, from_addr=sender, subject=subject,
                text=norm_text(text), body_full=norm_text(text), attachments=list(attachments),
                kind="attachments")


BROKEN_KINDS = ("missing_boundary", "garbage_base64", "unknown_charset", "invalid_utf8")


def broken_mail(kind, *, sender=None):
    """A message with broken MIME; `text` is the part the daemon can still
    read (None when nothing certain can be said)."""
    sender = (sender or _customer()).lower()
    message_id = new_message_id()
    subject = f"Broken MIME: {kind}"
    headers = _headers(sender=sender, name=None, to=SUPPORT, subject=subject, message_id=message_id,
                       charset="utf-8")
    text = None
    if kind == "missing_boundary":
        b = _boundary()
        text = "Readable first part before the missing boundary"
        body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
                f"--{b}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
                f"Content-Disposition: attachment; filename=\"cut.bin\"\r\n\r\nAAECAwQFBgcICQ==\r\nAAEC")
        bh = [("Content-Type", f'multipart/mixed; boundary="{b}"')]
    elif kind == "garbage_base64":
        # '/' decodes to all-ones bits: 0xff bytes, never valid UTF-8
        body = "@@@@ this is not base64 !!! ////////////////\r\n%%%% ~~~ ////\r\n"
        bh = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "base64")]
    elif kind == "unknown_charset":
        text = "Hello, this text declares a charset nobody knows"
        body = text + "\r\n"
        bh = [("Content-Type", "text/plain; charset=x-no-such-charset-42"),
              ("Content-Transfer-Encoding", "7bit")]
    elif kind == "invalid_utf8":
        body = "Valid start, then bad bytes: \xff\xfe\xc3( end\r\n"   # latin-1 -> raw bytes
        bh = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")]
    else:
        raise ValueError(kind)
    raw = _assemble(headers, bh, body, check=False)
    m = Mail(raw=raw, message_id=message_id, from_addr=sender, subject=subject, text=text,
             body_full=text, broken=kind, kind="broken")
    return m


AUTO_KINDS = ("auto-submitted", "precedence-bulk", "null-return-path", "list-id", "own-address")


def auto_mail(kind, *, text=None):
    """A machine-sent mail the daemon must mark auto_submitted (and never
    acknowledge)."""
    text = text or f"Automatic message ({kind}): I am out of the office until Monday."
    sender = None
    extra = []
    if kind == "auto-submitted":
        extra = [("Auto-Submitted", "auto-replied")]
    elif kind == "precedence-bulk":
        extra = [("Precedence", "bulk")]
    elif kind == "null-return-path":
        extra = [("Return-Path", "<>")]
    elif kind == "list-id":
        extra = [("List-Id", "Announcements <announce.lists.example.org>")]
    elif kind == "own-address":
        sender = SUPPORT
    else:
        raise ValueError(kind)
    m = plain_mail(text, subject=f"Auto: {kind}", sender=sender, extra_headers=extra)
    if kind == "null-return-path":  # Return-Path goes first, as an MTA writes it
        m.raw = b"Return-Path: <>\r\n" + m.raw.replace(b"Return-Path: <>\r\n", b"")
    m.auto = True
    m.kind = f"auto:{kind}"
    return m


def corpus(n=200, seed=6):
    """n plain-text mails spread over UTF-8 and the six legacy charsets,
    quoted-printable and base64, B and Q encoded subjects; every mail from
    its own customer, with its number in the subject and text."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        charset = CHARSETS[i % len(CHARSETS)]
        lang = LANGS[(i // len(CHARSETS)) % len(LANGS)] if charset == "utf-8" else LEGACY[charset][1]
        cte = CTES[(i // len(CHARSETS)) % 2]
        mode = "B" if charset == "iso-2022-jp" or rnd.random() < 0.6 else "Q"
        text = f"{SENTENCES[lang]}\nTicket {i:03d}: {EXTRA[lang]}"
        if charset in ("windows-874", "windows-1258"):
            text += "\n“€” windows"
        subject = f"{SENTENCES[lang]} #{i:03d}"
        name = {"vi": "Nguyễn Văn An", "tr": "Ayşe Yılmaz", "ja": "山田太郎", "zh": "王小明",
                "th": "สมชาย ใจดี", "en": "Ann O'Neil"}[lang]
        m = plain_mail(text, charset=charset, cte=cte, lang=lang, subject=subject,
                       sender=_customer(i), name=name, subject_mode=mode)
        m.kind = f"corpus-{i:03d}"
        out.append(m)
    return out


# --------------------------------------------------------------------------
# config


def write_secret(d, name, value, suffix="\n"):
    f = Path(d) / name
    f.write_text(value + suffix)
    f.chmod(0o600)
    return str(f)


def mailbox(name="support", address=SUPPORT, *, secrets_dir, dovecot=None, user="alice", password=None,
            smtp=None, mailgun=False, imap=None, display_name=SUPPORT_NAME):
    """One connectors.email.mailboxes entry. imap: overrides of the imap block."""
    mb = {"name": name, "address": address}
    if display_name:
        mb["display_name"] = display_name
    mb["token_secret_file"] = write_secret(secrets_dir, f"email-token-{name}.key", TOKEN_SECRET)
    if dovecot is not None:
        pw = dovecot.users[user] if password is None else password
        i = {"url": dovecot.url("INBOX"), "tls": "none", "user": user,
             "password_file": write_secret(secrets_dir, f"imap-{name}.pass", pw),
             "poll_interval": "200ms", "batch": 50, "after_store": "seen"}
        i.update(imap or {})
        mb["imap"] = i
    if smtp is not None:
        mb["smtp"] = {"server": smtp.address, "starttls": "disabled", "timeout": "5s"}
    if mailgun:
        mb["mailgun"] = {"signing_key_file": write_secret(secrets_dir, f"mailgun-{name}.key", MAILGUN_KEY),
                         "timestamp_window": "15m"}
    return mb


def email_config(cfg, secrets_dir, mailboxes, *, ack=False):
    """cfg (make_config()/base_config) plus an API token (helpdesk), the
    outbound section and connectors.email with `mailboxes`. ack: add an SLA
    policy for email and sla.acknowledge."""
    cfg["api"] = {"tokens": [{"name": "helpdesk",
                              "token_file": write_secret(secrets_dir, "email-helpdesk.token", API_TOKEN)}]}
    cfg["outbound"] = {"give_up_after": "30s", "request_timeout": "5s"}
    cfg["connectors"]["email"] = {"mailboxes": list(mailboxes)}
    if ack:
        cfg["sla"] = {
            "policies": [{"name": "email", "channel": ["email"], "first_response": "2h"}],
            "acknowledge": {"enabled": True, "window": "1h", "timezone": "UTC",
                            "templates": {"en": ACK_TEMPLATE}},
        }
    return cfg


ACK_TEMPLATE = "Thanks! We received your message and will reply by {due_time} ({timezone})."
ACK_RE = re.compile(r"^Thanks! We received your message and will reply by \d\d:\d\d \(UTC\)\.$")


# --------------------------------------------------------------------------
# what the daemon stored


def email_messages(rdb, provider=None):
    """{external_id: [(conversation id, entry id, message dict)]} of every
    inbound email message in the conversation logs."""
    out = {}
    for conv, eid, _f, m in logged_messages(rdb):
        if not m or m.get("channel") != "email":
            continue
        if provider is not None and m.get("provider") != provider:
            continue
        out.setdefault(m.get("external_id"), []).append((conv, eid, m))
    return out


def stored_count(rdb, provider="email:support"):
    """How many dedup keys the provider has: a cheap progress counter."""
    return sum(1 for _ in rdb.scan_iter(match=f"omr:dedup:{provider}:*", count=10000))


def wait_stored(rdb, message_id, timeout=10.0, provider=None):
    """The message dict stored for Message-ID `message_id` (exactly one)."""
    def found():
        got = email_messages(rdb, provider).get(message_id)
        return got if got else None
    got = wait_until(found, timeout, interval=0.05, what=f"message <{message_id}> stored")
    assert len(got) == 1, f"<{message_id}> stored {len(got)} times: {got!r}"
    return got[0][2]


def conv_hash(rdb, conv):
    return rdb.hgetall(f"omr:conv:{{{conv}}}")


def log_of(rdb, conv):
    return [(eid, f, json.loads(f["message"]) if f.get("message") else None)
            for eid, f in rdb.xrange(f"omr:conv:{{{conv}}}:log")]


# --------------------------------------------------------------------------
# replies API


def post_reply(daemon, conv, text, agent_id="ana", token=API_TOKEN):
    return requests.post(daemon.url(f"/v1/conversations/{conv}/replies"),
                         data=json.dumps({"agent_id": agent_id, "text": text}, ensure_ascii=False).encode(),
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                         timeout=10)


def accepted(resp):
    assert resp.status_code == 202, f"expected 202, got {resp.status_code}: {resp.text!r}"
    return resp.json()["reply_id"]


def reply_hash(rdb, conv, rid):
    return rdb.hgetall(f"omr:conv:{{{conv}}}:reply:{rid}")


def wait_reply(rdb, conv, rid, statuses, timeout=8.0):
    statuses = {statuses} if isinstance(statuses, str) else set(statuses)
    return wait_until(lambda: (lambda h: h if h.get("status") in statuses else None)(reply_hash(rdb, conv, rid)),
                      timeout, interval=0.05,
                      what=f"reply {rid} in {sorted(statuses)} (now {reply_hash(rdb, conv, rid)!r})")


# --------------------------------------------------------------------------
# Mailgun


def mailgun_signature(timestamp, token, key=MAILGUN_KEY):
    return hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def mailgun_signed(fields=None, *, timestamp=None, token=None, key=MAILGUN_KEY):
    """fields plus timestamp, token, signature."""
    f = dict(fields or {})
    ts = str(int(time.time()) if timestamp is None else timestamp)
    tok = token or secrets.token_hex(25)
    f["timestamp"] = ts
    f["token"] = tok
    f["signature"] = mailgun_signature(ts, tok, key)
    return f


def mailgun_fields(*, sender=None, name="Ana Lima", subject="Order 1042", text=None, stripped=None,
                   html=None, message_id=None, headers=(), recipient=SUPPORT):
    """The parsed-message fields of Mailgun's inbound route (forward())."""
    sender = (sender or _customer()).lower()
    message_id = message_id or new_message_id()
    text = text if text is not None else "Hello, where is my order 1042?"
    frm = email.utils.formataddr((name, sender)) if name else sender
    hdrs = [["Received", "from mx.customer.example by mxa.mailgun.org"],
            ["From", frm], ["To", recipient], ["Subject", subject],
            ["Message-Id", f"<{message_id}>"], ["Date", email.utils.formatdate(usegmt=True)],
            ["Mime-Version", "1.0"]] + [list(h) for h in headers]
    f = {"recipient": recipient, "sender": sender, "from": frm, "subject": subject,
         "body-plain": text, "stripped-text": stripped if stripped is not None else text,
         "message-headers": json.dumps(hdrs, ensure_ascii=False)}
    if html is not None:
        f["body-html"] = html
    return f, message_id, sender


def post_mailgun(daemon, fields, *, mailbox_name="support", files=None, multipart=False, timeout=10):
    url = daemon.url(f"/v1/email/mailgun/{mailbox_name}")
    if files or multipart:
        parts = {k: (None, v.encode() if isinstance(v, str) else v) for k, v in fields.items()}
        parts.update(files or {})
        return requests.post(url, files=parts, timeout=timeout)
    return requests.post(url, data=fields, timeout=timeout)


def assert_json_error(resp, status):
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text!r}"
    assert "json" in resp.headers.get("Content-Type", ""), resp.headers
    j = resp.json()
    assert isinstance(j, dict) and isinstance(j.get("error"), str) and j["error"], j
    return j
