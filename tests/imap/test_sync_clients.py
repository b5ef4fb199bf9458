"""Real synchronising clients against geomail: mbsync (isync) and offlineimap3.

Each test delivers a few hundred messages over one pipelined SMTP session
(plain text, multiparts with a base64 attachment stored in S3, raw UTF-8
headers, message/rfc822 parts), lets the client copy the account into a local
Maildir and checks every file byte for byte against what geomail serves
(``BODY.PEEK[]`` read with imaplib) and against what was delivered.  Then it
changes the Maildir (a new folder with a message, flags, deletions), syncs
back and checks the server with imaplib.

The clients come from Debian (``apt-get install isync offlineimap3``); if one
is missing the test fails, it is not skipped.
"""

import base64
import imaplib
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from geomail.imap import mutf7
from tests.imap.conftest import PASSWORD

COUNT = 300
SENDER = "sync@example.org"
ARRIVED = 1_000_000_000             # 2001-09-09 01:46:40 UTC: the time of the local files


# --------------------------------------------------------------------------- messages

def _mid(i):
    return f"<sync.{i}.{os.getpid()}@example.org>"


def make_messages(count=COUNT, seed=1994):
    """count messages (bytes, CRLF) with distinct Message-IDs: a deterministic mix of shapes."""
    rng = random.Random(seed)
    messages = []
    for i in range(count):
        kind = i % 10
        head = (f"From: Sync Tester <{SENDER}>\r\nTo: someone@example.com\r\n"
                f"Date: Tue, 8 Feb 1994 10:{i % 60:02d}:00 +0000\r\nMessage-ID: {_mid(i)}\r\n")
        if kind in (0, 5):
            size = rng.randint(20_000, 100_000)
            payload = rng.randbytes(size)
            encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
            data = (head + f"Subject: attachment {i}\r\nMIME-Version: 1.0\r\n"
                    f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n'
                    f"This is a MIME message.\r\n--b{i}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
                    f"Please find the file {i} attached.\r\n--b{i}\r\n"
                    f'Content-Type: application/octet-stream; name="file{i}.bin"\r\n'
                    f'Content-Disposition: attachment; filename="file{i}.bin"\r\n'
                    f"Content-Transfer-Encoding: base64\r\n\r\n").encode() + encoded + f"--b{i}--\r\n".encode()
        elif kind == 3:
            data = (head.replace("Sync Tester", "Jürgen Größe") +
                    f"Subject: Grüße aus Köln, Nachricht {i} — ✓\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                    f"Schöne Grüße, {i}.\r\nΚαλημέρα κόσμε\r\n").encode("utf-8")
        elif kind == 7:
            data = (head + f"Subject: forwarded {i}\r\nMIME-Version: 1.0\r\n"
                    f'Content-Type: multipart/mixed; boundary="f{i}"\r\n\r\n'
                    f"--f{i}\r\nContent-Type: text/plain\r\n\r\nForwarded message below.\r\n"
                    f"--f{i}\r\nContent-Type: message/rfc822\r\n\r\n"
                    f"From: inner@example.net\r\nTo: x@example.com\r\nSubject: inner {i}\r\n"
                    f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\nThe inner body {i}.\r\n"
                    f"--f{i}--\r\n").encode()
        else:
            lines = "".join(f"Line {n} of message {i}: {'lorem ipsum ' * rng.randint(0, 6)}\r\n"
                            for n in range(rng.randint(1, 40)))
            if i % 20 == 1:
                lines += ".leading dot\r\n..two dots\r\n"
            data = (head + f"Subject: plain {i}\r\n\r\n" + lines).encode()
        messages.append(data)
    return messages


def deliver_pipelined(port, address, messages, timeout=60):
    """Deliver every message in one SMTP session, one round trip per message (PIPELINING)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    reader = sock.makefile("rb")

    def reply():
        lines = []
        while True:
            line = reader.readline()
            if not line:
                raise ConnectionError(f"SMTP server closed the connection after {lines}")
            lines.append(line)
            if line[3:4] != b"-":
                return b"".join(lines).decode("utf-8", "replace")

    def expect(code):
        text = reply()
        assert text.startswith(code), f"expected {code}, got {text!r}"

    def envelope():
        return (f"MAIL FROM:<{SENDER}> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<{address}>\r\nDATA\r\n").encode()

    try:
        expect("220")
        sock.sendall(b"EHLO sync.test\r\n")
        assert "PIPELINING" in reply()
        sock.sendall(envelope())
        for index, data in enumerate(messages):
            for code in ("250", "250", "354"):
                expect(code)
            stuffed = re.sub(rb"(?m)^\.", b"..", data)
            tail = envelope() if index + 1 < len(messages) else b"QUIT\r\n"
            sock.sendall(stuffed + b".\r\n" + tail)
            expect("250")
        expect("221")
    finally:
        reader.close()
        sock.close()


def message_id(data):
    match = re.search(rb"(?im)^Message-ID:\s*(<[^>\r\n]*>)", data)
    return match.group(1).decode() if match else None


def strip_trace(data):
    """(trace header block, the rest): geomail prepends Return-Path and Received."""
    match = re.match(rb"Return-Path: <[^>]*>\r\nReceived: from [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", data)
    assert match, f"no trace headers at the start of {data[:200]!r}"
    return data[:match.end()], data[match.end():]


# --------------------------------------------------------------------------- server side

class Server:
    """imaplib on the account: the ground truth."""

    def __init__(self, port, address):
        self.client = imaplib.IMAP4("127.0.0.1", port, timeout=30)
        self.client.login(address, PASSWORD)

    def folders(self):
        typ, data = self.client.list('""', "*")
        assert typ == "OK", data
        names = []
        for line in data:
            match = re.match(rb'\(([^)]*)\) (?:"."|NIL) (.*)$', line)
            name = match.group(2)
            names.append(name[1:-1].decode() if name.startswith(b'"') else name.decode())
        return sorted(names)

    def messages(self, folder):
        """{uid: (flags set, BODY[] bytes)} of a folder (read-only)."""
        typ, data = self.client.select(f'"{folder}"', readonly=True)
        assert typ == "OK", data
        if data == [b"0"]:
            return {}
        typ, data = self.client.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        assert typ == "OK", data
        result = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, body = item
            uid = int(re.search(rb"UID (\d+)", head).group(1))
            flags = set(re.search(rb"FLAGS \(([^)]*)\)", head).group(1).decode().split())
            result[uid] = (flags - {"\\Recent"}, body)
        return result

    def internal_dates(self, folder):
        """{uid: INTERNALDATE as epoch seconds}."""
        self.client.select(f'"{folder}"', readonly=True)
        typ, data = self.client.uid("FETCH", "1:*", "(UID INTERNALDATE)")
        assert typ == "OK", data
        return {int(re.search(rb"UID (\d+)", line).group(1)): time.mktime(imaplib.Internaldate2tuple(line))
                for line in data if line}

    def by_message_id(self, folder):
        return {message_id(body): (uid, flags, body)
                for uid, (flags, body) in self.messages(folder).items()}

    def logout(self):
        try:
            self.client.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def check_served(served, delivered):
    """Every delivered message is served once, as delivered, after the trace headers."""
    assert len(served) == len(delivered), (len(served), len(delivered))
    for data in delivered:
        uid, flags, body = served[message_id(data)]
        _, rest = strip_trace(body)
        assert rest == data, f"UID {uid}: BODY[] differs from the delivered bytes"


# --------------------------------------------------------------------------- Maildir side

def maildir_files(folder):
    """{path: bytes} of the messages in a Maildir folder (cur and new)."""
    result = {}
    for sub in ("cur", "new"):
        directory = Path(folder) / sub
        if directory.is_dir():
            for entry in sorted(directory.iterdir()):
                result[entry] = entry.read_bytes()
    return result


def maildir_flags(path):
    name = path.name
    return set(name.split(":2,", 1)[1]) if ":2," in name else set()


def set_maildir_flags(path, flags):
    base = path.name.split(":2,", 1)[0]
    target = path.parent.parent / "cur" / (base + ":2," + "".join(sorted(flags)))
    path.rename(target)
    return target


def make_maildir(folder):
    for sub in ("cur", "new", "tmp"):
        (Path(folder) / sub).mkdir(parents=True, exist_ok=True)


IMAP_FLAGS = {"S": "\\Seen", "F": "\\Flagged", "R": "\\Answered", "D": "\\Draft", "T": "\\Deleted"}


def to_lf(data):
    return data.replace(b"\r\n", b"\n")


def without_tuid(data):
    """mbsync adds one ``X-TUID:`` line to the header of every message it copies (isync's
    own crash-recovery marker, in both directions); remove exactly that line."""
    head, sep, body = data.partition(b"\n\n") if b"\r\n" not in data else data.partition(b"\r\n\r\n")
    newline = b"\r\n" if b"\r\n" in sep else b"\n"
    lines = head.split(newline)
    tuids = [n for n, line in enumerate(lines) if line.startswith(b"X-TUID: ")]
    assert len(tuids) == 1, f"expected one X-TUID line in {head[-300:]!r}"
    del lines[tuids[0]]
    return newline.join(lines) + sep + body


def require(binary, package):
    path = shutil.which(binary)
    if not path:
        pytest.fail(f"{binary} is not installed: the sync-client tests need the Debian package "
                    f"{package} (apt-get install -y {package})", pytrace=False)
    return path


def run_client(command, log, timeout=90):
    """Run a sync client; its output goes to log.  GEOMAIL_SYNC_DEBUG=1 adds the clients'
    protocol traces (mbsync -Dn, offlineimap -d imap) to that log."""
    if os.environ.get("GEOMAIL_SYNC_DEBUG"):
        command = command[:1] + (["-Dn"] if "mbsync" in command[0] else ["-d", "imap"]) + command[1:]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, timeout=timeout)
    log.write_bytes(result.stdout + b"\n--- stderr ---\n" + result.stderr)
    assert result.returncode == 0, (
        f"{command[0]} exited with {result.returncode} after {time.monotonic() - started:.1f}s:\n"
        + (result.stdout + result.stderr).decode("utf-8", "replace")[-6000:])
    return result


def new_local_messages(tag):
    """Messages written into the Maildir by the test: {relative folder: [bytes (CRLF)]}."""
    text = (f"From: Local Author <local@example.org>\r\nTo: someone@example.com\r\n"
            f"Subject: written locally for {tag} — ünïcødé\r\nDate: Wed, 9 Feb 1994 08:00:00 +0000\r\n"
            f"Message-ID: <local.{tag}.{os.getpid()}@example.org>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            f"A message created in the Maildir by {tag}.\r\n.single dot line\r\n").encode("utf-8")
    payload = random.Random(tag).randbytes(60_000)
    attached = (f"From: Local Author <local@example.org>\r\nTo: someone@example.com\r\n"
                f"Subject: local attachment {tag}\r\nDate: Wed, 9 Feb 1994 08:01:00 +0000\r\n"
                f"Message-ID: <local.att.{tag}.{os.getpid()}@example.org>\r\nMIME-Version: 1.0\r\n"
                f'Content-Type: multipart/mixed; boundary="L"\r\n\r\n--L\r\n'
                f"Content-Type: text/plain\r\n\r\nSee attachment.\r\n--L\r\n"
                f'Content-Type: image/png; name="pic.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
                ).encode() + base64.encodebytes(payload).replace(b"\n", b"\r\n") + b"--L--\r\n"
    nested = (f"From: local@example.org\r\nSubject: nested {tag}\r\n"
              f"Message-ID: <local.nested.{tag}.{os.getpid()}@example.org>\r\n\r\nIn a subfolder.\r\n").encode()
    return {"Projects": [text, attached], "Projects/2024": [nested]}


@pytest.fixture
def mailbox(server, account):
    """The account with COUNT delivered messages; returns (account, delivered list)."""
    delivered = make_messages()
    started = time.monotonic()
    deliver_pipelined(server.smtp_port, account.address, delivered)
    assert time.monotonic() - started < 45, "delivery took too long"
    return account, delivered


# --------------------------------------------------------------------------- the round trip

def round_trip(server, account, delivered, maildir, sync, tag, local_form, keeps_dates, local_name,
               keyword_letter=None):
    """Sync down, check, change both sides, sync again, check both sides, sync a third time.

    sync(log name) runs the client.  local_form is (to_local, client_clean): to_local(IMAP
    bytes) -> the bytes the client writes in its Maildir (LF line endings);
    client_clean(bytes) removes what the client itself adds to messages it copies (in
    both directions).  keeps_dates: the client copies INTERNALDATE to the file's time
    and back (mbsync's CopyArrivalDate).
    local_name(IMAP mailbox name, modified UTF-7) -> the client's Maildir folder name.
    keyword_letter: the Maildir letter the client maps the keyword $Important to, if any.
    """
    to_local, client_clean = local_form
    imap = Server(server.imap_port, account.address)
    try:
        served = imap.by_message_id("INBOX")
        check_served(served, delivered)
        original = {message_id(data): data for data in delivered}
        # folders whose names need quoting and modified UTF-7, each with an APPENDed message
        server_side = {"My Folder": delivered[7], "Entw&APw-rfe": delivered[3]}
        for name, data in server_side.items():
            assert imap.client.create(f'"{name}"')[0] == "OK"
            assert imap.client.append(f'"{name}"', "(\\Flagged)", None, data)[0] == "OK"

        # -- 1: geomail -> Maildir, every message byte for byte
        sync("sync1.log")
        assert sorted(p.name for p in maildir.iterdir() if p.is_dir()) == sorted(
            local_name(name) for name in imap.folders())
        for name, data in server_side.items():
            files = maildir_files(maildir / local_name(name))
            assert [client_clean(x) for x in files.values()] == [to_local(data)], name
            assert [maildir_flags(path) for path in files] == [{"F"}], name
        local = {}
        for path, data in maildir_files(maildir / "INBOX").items():
            data = client_clean(data)
            mid = message_id(data)
            assert mid in served, f"{path.name}: unknown message"
            assert mid not in local, f"{mid} twice in the Maildir"
            local[mid] = path
            uid, flags, body = served[mid]
            assert data == to_local(body), f"{path.name} differs from BODY[] of UID {uid}"
            assert data.endswith(to_local(original[mid])), f"{path.name} differs from the delivered bytes"
            assert maildir_flags(path) == set()
        assert len(local) == len(delivered)
        dates = imap.internal_dates("INBOX")
        for mid, path in local.items() if keeps_dates else ():   # INTERNALDATE became the file's time
            assert abs(path.stat().st_mtime - dates[served[mid][0]]) < 1, path.name

        # -- 2: changes on both sides
        mids = [message_id(data) for data in delivered]
        seen, flagged, deleted = set(mids[0:40:2]), set(mids[1:40:3]), set(mids[100:120])
        answered = set(mids[200:210])          # changed on the server
        expunged = set(mids[250:256])          # expunged on the server
        important = set(mids[210:215])         # keyword set on the server
        for mid in seen | flagged:
            flags = ({"S"} if mid in seen else set()) | ({"F"} if mid in flagged else set())
            local[mid] = set_maildir_flags(local[mid], flags)
        for mid in deleted:
            local[mid].unlink()
        created = new_local_messages(tag)
        for folder, messages in created.items():
            make_maildir(maildir / folder)
            for n, data in enumerate(messages):
                name = f"{int(time.time())}.{n}_{n}.sync.test:2,S"
                (maildir / folder / "cur" / name).write_bytes(to_lf(data))
                os.utime(maildir / folder / "cur" / name, (ARRIVED, ARRIVED))
        imap.client.select("INBOX")
        uids = ",".join(str(served[mid][0]) for mid in answered)
        assert imap.client.uid("STORE", uids, "+FLAGS.SILENT", "(\\Answered)")[0] == "OK"
        uids = ",".join(str(served[mid][0]) for mid in important)
        assert imap.client.uid("STORE", uids, "+FLAGS.SILENT", "($Important)")[0] == "OK"
        uids = ",".join(str(served[mid][0]) for mid in expunged)
        assert imap.client.uid("STORE", uids, "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
        assert imap.client.expunge()[0] == "OK"
        later = make_messages(5, seed=7)
        later = [data.replace(b"Message-ID: <sync.", b"Message-ID: <later.") for data in later]
        deliver_pipelined(server.smtp_port, account.address, later)

        # -- 3: sync both ways, while more mail arrives
        during = [data.replace(b"Message-ID: <sync.", b"Message-ID: <during.")
                  for data in make_messages(6, seed=11)]
        arriving = threading.Thread(target=deliver_pipelined,
                                    args=(server.smtp_port, account.address, during))
        arriving.start()
        try:
            sync("sync2.log")
        finally:
            arriving.join()
        during_mids = {message_id(data) for data in during}
        assert set(created) <= set(imap.folders())
        after = imap.by_message_id("INBOX")
        assert set(after) == (set(mids) - deleted - expunged) | {message_id(data) for data in later} | during_mids
        for mid in set(mids) - deleted - expunged:
            uid, flags, body = after[mid]
            want = ({"\\Seen"} if mid in seen else set()) | ({"\\Flagged"} if mid in flagged else set()) \
                | ({"\\Answered"} if mid in answered else set()) | ({"$Important"} if mid in important else set())
            assert flags == want, f"{mid}: flags {flags} on the server, want {want}"
            assert body == served[mid][2]
        for folder, messages in created.items():
            stored = imap.messages(folder)
            assert sorted(client_clean(body) for _, body in stored.values()) == sorted(messages), (
                f"{folder}: the uploaded messages are not stored byte for byte")
            assert all(flags == {"\\Seen"} for flags, _ in stored.values())
            # the Maildir file's time is the arrival date: APPEND carries it to INTERNALDATE
            if keeps_dates:
                assert set(imap.internal_dates(folder).values()) == {ARRIVED}
        # the Maildir got the new mail and the server's flag change
        files = {message_id(client_clean(data)): (path, client_clean(data))
                 for path, data in maildir_files(maildir / "INBOX").items()}
        assert set(files) - during_mids == set(after) - during_mids
        for mid, (path, data) in files.items():
            assert data == to_local(after[mid][2]), f"{path.name} differs from the server's copy"
            want = ({"S"} if mid in seen else set()) | ({"F"} if mid in flagged else set()) \
                | ({"R"} if mid in answered else set()) \
                | ({keyword_letter} if keyword_letter and mid in important else set())
            assert maildir_flags(path) == want, f"{path.name}: flags, want {want}"

        # -- 4: a third run brings what arrived during the second; then both sides agree
        sync("sync3.log")
        final = imap.by_message_id("INBOX")
        assert final.keys() == after.keys()
        files = {message_id(client_clean(data)): client_clean(data)
                 for data in maildir_files(maildir / "INBOX").values()}
        assert files.keys() == final.keys()
        for mid, (uid, flags, body) in final.items():
            assert files[mid] == to_local(body), f"UID {uid} differs in the Maildir"
        for folder, messages in created.items():
            assert len(maildir_files(maildir / folder)) == len(messages)
            assert len(imap.messages(folder)) == len(messages)
    finally:
        imap.logout()


# --------------------------------------------------------------------------- mbsync

def write_mbsyncrc(path, port, address, maildir):
    path.write_text(f"""\
IMAPAccount geomail
Host 127.0.0.1
Port {port}
User {address}
Pass "{PASSWORD}"
SSLType None
AuthMechs LOGIN

IMAPStore geomail-far
Account geomail

MaildirStore local-near
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel geomail
Far :geomail-far:
Near :local-near:
Patterns *
Create Both
Expunge Both
SyncState *
CopyArrivalDate yes
""")


def test_mbsync_round_trip(server, mailbox, tmp_path):
    mbsync = require("mbsync", "isync")
    account, delivered = mailbox
    maildir = tmp_path / "mbsync-mail"
    maildir.mkdir()
    rc = tmp_path / "mbsyncrc"
    write_mbsyncrc(rc, server.imap_port, account.address, maildir)

    def sync(log):
        run_client([mbsync, "-c", str(rc), "-a"], tmp_path / log)

    # mbsync writes LF line endings and adds its X-TUID line, nothing else
    round_trip(server, account, delivered, maildir, sync, "mbsync", (to_lf, without_tuid), keeps_dates=True,
               local_name=lambda name: name)     # isync 1.4 keeps modified UTF-7 names


# --------------------------------------------------------------------------- offlineimap

def write_offlineimaprc(path, port, address, maildir, metadata):
    path.write_text(f"""\
[general]
accounts = geomail
metadata = {metadata}
maxsyncaccounts = 1
ui = basic

[Account geomail]
utf8foldernames = yes
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {maildir}
sep = /
customflag_a = $Important

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {port}
remoteuser = {address}
remotepass = {PASSWORD}
ssl = no
starttls = no
maxconnections = 2
""")


def test_offlineimap_round_trip(server, mailbox, tmp_path):
    offlineimap = require("offlineimap", "offlineimap3")
    account, delivered = mailbox
    maildir = tmp_path / "oimap-mail"
    maildir.mkdir()
    rc = tmp_path / "offlineimaprc"
    write_offlineimaprc(rc, server.imap_port, account.address, maildir, tmp_path / "oimap-meta")

    def sync(log):
        run_client([offlineimap, "-c", str(rc), "-o", "-u", "basic"], tmp_path / log)

    # offlineimap writes LF line endings and adds nothing (geomail has UIDPLUS)
    round_trip(server, account, delivered, maildir, sync, "offlineimap", (to_lf, lambda data: data),
               keeps_dates=False, local_name=mutf7.decode,   # utf8foldernames = yes
               keyword_letter="a")                           # customflag_a = $Important


# --------------------------------------------------------------------------- mbsync over implicit TLS

def test_mbsync_over_imaps(start_geomail, account, tls_pair, tmp_path):
    """mbsync with SSLType IMAPS against --imaps-port: attachments streamed through TLS arrive intact."""
    mbsync = require("mbsync", "isync")
    from tests.fixtures.services import free_port

    cert, key = tls_pair
    imaps_port = free_port()
    server = start_geomail(workers=1, extra_args=["--imaps-port", str(imaps_port), "--tls-cert", cert,
                                                  "--tls-key", key, "--imap-require-tls", "true"])
    delivered = make_messages(40, seed=5)
    deliver_pipelined(server.smtp_port, account.address, delivered)
    maildir = tmp_path / "tls-mail"
    maildir.mkdir()
    rc = tmp_path / "mbsyncrc"
    write_mbsyncrc(rc, imaps_port, account.address, maildir)
    text = rc.read_text().replace("Host 127.0.0.1", "Host localhost")
    rc.write_text(text.replace("SSLType None\nAuthMechs LOGIN\n",
                               f"SSLType IMAPS\nCertificateFile {cert}\nAuthMechs LOGIN\n"))
    run_client([mbsync, "-c", str(rc), "-a"], tmp_path / "sync-tls.log")
    files = [without_tuid(data) for data in maildir_files(maildir / "INBOX").values()]
    assert sorted(to_lf(data) for data in delivered) == sorted(strip_trace(data.replace(b"\n", b"\r\n"))[1]
                                                               .replace(b"\r\n", b"\n") for data in files)
    assert b"Password is being sent in the clear" not in (tmp_path / "sync-tls.log").read_bytes()
