"""IMAP test helpers: accounts, a raw wire client for exact responses, delivery by SMTP.

Every test drives the real ``bin/geomail`` of the session (``geomail_server``)
over a socket, against the real MariaDB and SeaweedFS of the suite.
"""

import itertools
import os
import re
import smtplib
import socket
import time

import pytest

from geomail.store.accounts import create_account

PASSWORD = "pass word"
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def server(geomail_server):
    return geomail_server


@pytest.fixture(scope="session")
def db(server, test_storage):
    database = test_storage.open_db()
    yield database
    database.close()


@pytest.fixture
def account(db):
    """A fresh account (with INBOX, Sent, Drafts, Trash, Junk) and its password."""
    address = f"imap{os.getpid()}x{next(_counter)}x{int(time.time() * 1000) % 100000}@example.com"
    return create_account(db, address, PASSWORD)


class Wire:
    """A raw IMAP connection: send a command, get every line up to its tagged response."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        self.tags = itertools.count(1)
        self.greeting = self.readline()

    def readline(self):
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection; had " + repr(self.buffer))
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line + b"\r\n"

    def read_exact(self, n):
        while len(self.buffer) < n:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.buffer += data
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_response(self, tag):
        """Lines (str, CRLF removed; literals inlined) up to and including the tagged one."""
        lines = []
        while True:
            line = self.read_item()
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return [x.decode("utf-8", "replace") for x in lines]

    def read_item(self):
        """One response line with any literals it carries inlined (as {n}\\r\\n<data>)."""
        line = self.readline()
        out = line
        while True:
            match = re.search(rb"\{(\d+)\}\r\n$", line)
            if not match:
                return out[:-2]
            data = self.read_exact(int(match.group(1)))
            line = self.readline()
            out += data + line

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def command(self, text):
        """Send a tagged command; returns the response lines, the tagged one last."""
        tag = f"t{next(self.tags)}"
        self.send(f"{tag} {text}\r\n")
        return [line.replace(tag + " ", "TAG ", 1) if line.startswith(tag + " ") else line
                for line in self.read_response(tag)]

    def ok(self, text):
        lines = self.command(text)
        assert lines[-1].startswith("TAG OK"), lines
        return lines[:-1]

    def login(self, account):
        return self.ok(f'LOGIN {account.address} "{PASSWORD}"')

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


@pytest.fixture
def wire(server):
    """Factory: wire() -> a fresh connection; all closed at the end."""
    made = []

    def connect():
        w = Wire(server.imap_port)
        made.append(w)
        return w

    yield connect
    for w in made:
        w.close()


@pytest.fixture
def session(wire, account):
    """A raw connection logged in to a fresh account."""
    w = wire()
    w.login(account)
    w.account = account
    return w


def message(subject="Hello", body="Hi there.\r\n", sender="alice@example.org",
            to="bob@example.com", extra=""):
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <{subject.replace(' ', '.')}@example.org>\r\n"
            f"{extra}\r\n{body}").encode("utf-8")


@pytest.fixture
def deliver(server):
    """deliver(address, data) via SMTP to the running server."""
    def send(address, data, sender="alice@example.org"):
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=20) as smtp:
            smtp.sendmail(sender, [address], data)
    return send


def multipart(subject="With attachment", size=100_000):
    """A multipart/mixed message with a text part and a base64 attachment (stored in S3)."""
    import base64
    payload = bytes((i * 7 + 3) % 256 for i in range(size))
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (b"From: Carol <carol@example.org>\r\nTo: bob@example.com\r\n"
            b"Subject: " + subject.encode() + b"\r\nDate: Tue, 8 Feb 1994 10:00:00 +0000\r\n"
            b"Message-ID: <multi@example.org>\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
            b"preamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"See the attached file, zebra.\r\n"
            b"--XX\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n"
            b"Content-Disposition: attachment; filename=\"data.bin\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded +
            b"--XX--\r\n"), payload


def fetch_literal(lines, index=0):
    """The data of the first literal in a list of response lines."""
    import re
    text = lines[index]
    match = re.search(r"\{(\d+)\}\r\n", text)
    start = match.end()
    return text[start:start + int(match.group(1))]


def attachment_keys(db, address):
    with db.cursor() as cur:
        cur.execute("SELECT DISTINCT t.object_key FROM attachments t JOIN messages m ON m.content_id = t.content_id "
                    "JOIN mailboxes b ON b.id = m.mailbox_id JOIN accounts a ON a.id = b.account_id "
                    "WHERE a.address = %s", (address,))
        return [r[0] for r in cur.fetchall()]


@pytest.fixture(scope="session")
def blob_store(test_storage):
    """The blob store the session's server writes to (S3 bucket or local directory)."""
    store = test_storage.open_blobs()
    store.ensure_bucket(create=True)
    return store


def no_mailboxid(session, command):
    """The answer without SELECT's MAILBOXID line (RFC 8474, tested in test_objectid.py),
    for the tests of other SELECT responses."""
    return [line for line in session.command(command) if not line.startswith("* OK [MAILBOXID ")]
