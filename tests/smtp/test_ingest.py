"""Messages in over SMTP, back out of MySQL and S3 byte for byte.

Every message of the CPython email corpus and a set of hard cases is sent
to a real bin/geomail; the test rebuilds each stored message from the
database and the bucket and compares it with what was sent, checks each
attachment object against what Python's email package decodes, and the
cached ENVELOPE/BODYSTRUCTURE against the parser's (itself checked against
Dovecot in tests/mime).
"""

import email
import email.policy
import glob
import hashlib
import os
import random
import socket
import uuid

import pytest

from geomail.mime import MessageParser
from geomail.reader import StoredMessage
from tests.fixtures.smtpwire import SMTPWire
from tests.mime.dovecot.cases import cases as hard_cases
from tests.mime.mime_helpers import CORPUS, MemorySink, crlf, expected_attachment


def corpus():
    paths = sorted(glob.glob(os.path.join(CORPUS, "msg_*.txt")))
    assert paths, f"CPython email corpus not found at {CORPUS}"
    return [(os.path.basename(p), crlf(open(p, "rb").read())) for p in paths]


def own_cases():
    """Cases named by the SMTP issue that the MIME reference set lacks."""
    rng = random.Random(7)
    boundary = b"==outer=="
    attachments = b"".join(
        b"--" + boundary + b"\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + _b64(bytes(rng.getrandbits(8) for _ in range(2000 + i))) for i in range(3))
    evil = (b"--" + boundary + b"\r\nContent-Type: text/plain\r\n"
            b"Content-Disposition: attachment; filename=\"../../etc/passwd\"\r\n\r\n"
            b"root:x:0:0\r\n")
    return [
        ("duplicate_and_evil_filenames",
         b"From: a@example.net\r\nSubject: names\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=\"" + boundary + b"\"\r\n\r\n"
         + attachments + evil + b"--" + boundary + b"--\r\n"),
        ("eight_bit_headers", b"Subject: caf\xc3\xa9 \xe9t\xe9\r\nFrom: J\xc3\xb6rg <j@example.net>\r\n"
         b"\r\nbody \xff\r\n"),
    ]


def _b64(data, line=76):
    import base64
    text = base64.b64encode(data)
    return b"".join(text[i:i + line] + b"\r\n" for i in range(0, len(text), line))


def dot_stuff(data):
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def send_all(port, recipient, messages):
    """Send every message on one session; returns their queue ids (all must be 250)."""
    ids = []
    with SMTPWire(port, timeout=120) as client:
        assert client.cmd("EHLO ingest.example").startswith("250")
        for name, data in messages:
            assert client.cmd("MAIL FROM:<a@example.net>") .startswith("250"), name
            assert client.cmd(f"RCPT TO:<{recipient}>").startswith("250"), name
            if data.endswith(b"\r\n"):
                assert client.cmd("DATA").startswith("354"), name
                client.send(dot_stuff(data) + b".\r\n")
            else:
                # Only BDAT can carry a message that does not end in CRLF.
                client.send(b"BDAT %d LAST\r\n" % len(data) + data)
            reply = client.reply()
            assert reply.startswith("250 2.0.0"), (name, reply)
            ids.append(reply.split()[-1])
    return ids


def parse_locally(data):
    parser = MessageParser(MemorySink())
    parser.feed(data)
    return parser.close()


def check_stored(maildb, row, name, data):
    assert maildb.message_bytes(row) == data, name
    stored = maildb.stored(row)
    assert stored.size == row["rfc822_size"] == len(row["trace"]) + len(data)
    # byte ranges straddling trace headers, segments and attachments; the same
    # through a worker's attachment cache, read twice (filled, then served)
    rng = random.Random(name)
    full = row["trace"] + data
    cached = StoredMessage(maildb.with_cache(), row["trace"], stored.content)
    for _ in range(5):
        start = rng.randrange(0, len(full) + 1)
        end = rng.randrange(start, len(full) + 1)
        assert stored.bytes(start, end) == full[start:end], (name, start, end)
        for _ in range(2):
            assert cached.bytes(start, end) == full[start:end], (name, start, end, "cached")
    assert cached.bytes() == full, name
    parsed = parse_locally(data)
    content = stored.content
    assert content["envelope"] == parsed.envelope
    assert content["bodystructure"] == parsed.bodystructure
    assert content["body"] == parsed.body
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    for idx, filename, safe_name, key, size, sha in maildb.attachments(row["content_id"]):
        got = maildb.blobs.get(key)
        assert len(got) == size and hashlib.sha256(got).hexdigest() == sha, (name, key)
        assert "/" not in safe_name and not safe_name.startswith(".")
        assert key.count("/") == 2
        info = parsed.attachments[idx]
        want = expected_attachment(msg, data, parsed, info, got)
        if want is None:
            part = parsed.parts.find(info.part)
            want = data[part.body_offset:part.body_offset + part.body_length]
        assert got == want, (name, info.part)


@pytest.mark.parametrize("group", ["corpus", "hard", "own"])
def test_messages_round_trip(geomail_server, maildb, group):
    messages = {"corpus": corpus, "hard": hard_cases, "own": own_cases}[group]()
    recipient = f"ingest-{group}-{uuid.uuid4().hex[:8]}@example.com"
    send_all(geomail_server.smtp_port, recipient, messages)
    rows = maildb.messages(recipient)
    assert len(rows) == len(messages)
    for row, (name, data) in zip(rows, messages):
        check_stored(maildb, row, name, data)


def test_evil_filename_is_made_safe(geomail_server, maildb):
    recipient = f"names-{uuid.uuid4().hex[:8]}@example.com"
    send_all(geomail_server.smtp_port, recipient, own_cases()[:1])
    (row,) = maildb.messages(recipient)
    rows = maildb.attachments(row["content_id"])
    names = [r[2] for r in rows]
    assert names[:3] == ["report.pdf", "report-1.pdf", "report-2.pdf"]
    assert names[3] == "_.._etc_passwd"
    assert [r[1] for r in rows][3] == "../../etc/passwd"     # the original name is kept
    keys = [r[3] for r in rows]
    assert len(set(keys)) == 4 and all(k.split("/")[1] == keys[0].split("/")[1] for k in keys)


def test_forty_megabyte_attachment(start_geomail, maildb):
    """Streamed through a multipart upload; rebuilt byte for byte; sha256 recorded."""
    server = start_geomail(workers=1, extra_args=["--max-message-size", "64M"])
    payload = os.urandom(1 << 20) * 40
    data = (b"From: a@example.net\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
            b"Content-Type: text/plain\r\n\r\nsee attachment\r\n--XX\r\n"
            b"Content-Type: application/octet-stream; name=big.bin\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(payload) + b"--XX--\r\n")
    recipient = f"big-{uuid.uuid4().hex[:8]}@example.com"
    with socket.create_connection(("127.0.0.1", server.smtp_port), timeout=120) as sock:
        file = sock.makefile("rb")
        file.readline()
        sock.sendall(f"EHLO big\r\nMAIL FROM:<a@example.net> SIZE={len(data)}\r\n"
                     f"RCPT TO:<{recipient}>\r\nDATA\r\n".encode())
        replies = [file.readline() for _ in range(11)]
        assert replies[-1].startswith(b"354"), replies
        view = memoryview(data)
        for i in range(0, len(data), 1 << 20):
            sock.sendall(view[i:i + (1 << 20)])
        sock.sendall(b".\r\n")
        assert file.readline().startswith(b"250 2.0.0")
        file.close()
    (row,) = maildb.messages(recipient)
    (attachment,) = maildb.attachments(row["content_id"])
    assert attachment[4] == len(payload)
    assert attachment[5] == hashlib.sha256(payload).hexdigest()
    (raw_length,) = maildb.query("SELECT LENGTH(raw) FROM message_contents WHERE id = %s",
                                 row["content_id"])[0]
    assert raw_length < 1000          # the attachment lives in S3, not in MySQL
    stored = maildb.stored(row)
    digest = hashlib.sha256()
    for chunk in stored.read(len(row["trace"])):
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
