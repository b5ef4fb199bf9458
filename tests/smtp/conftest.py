"""Shared helpers for the SMTP tests: look at the database and the bucket, talk raw SMTP.

Helper names here are imported by other test modules; keep them stable:

  db_query(db_url, sql, args)        rows (tuples)
  count_rows(db_url, table)          int
  stored_messages(db_url)            list of dicts, one per ``messages`` row (mailbox order, uid)
  s3_client(endpoint)                a boto3 client for the test SeaweedFS
  bucket_keys(endpoint, bucket)      object keys in the bucket
  multipart_uploads(endpoint, bucket)  [(key, upload_id)] still open
  leftovers(db_url, endpoint, bucket)  what a failed delivery must not leave (dict; empty = clean)
  assert_consistent(db_url, endpoint, bucket)  every attachments row has its object, and back
  attachment_message(size, ...)      bytes of a message with one base64 attachment
  RawSMTP(port)                      a socket client for the tests that must misbehave
  wait_until(predicate, timeout)     poll until true, with a useful failure message

Fixtures:
  smtp_storage     (function) a fresh database URL and a unique bucket name on the session S3
  storage_server   (function) factory: storage_server(extra_args=[...], s3_endpoint=None)
                   -> GeomailProcess on its own fresh database and bucket
"""

import base64
import hashlib
import secrets
import socket
import time

import pytest

from tests.fixtures.faults import db_connection as db_connect  # noqa: F401
from tests.fixtures.faults import db_query as mysql_query
from tests.fixtures.faults import private_s3  # noqa: F401  (fixture for the fault tests)
from tests.fixtures.server import GeomailProcess
from tests.fixtures.services import _boto_client, _empty_and_delete_bucket
from tests.fixtures.storage import TestStorage, chosen_backend

MiB = 1024 * 1024


# -- the database ---------------------------------------------------------------



def db_query(db_url, sql, args=()):
    """All rows of one statement on a MySQL URL's database or a TestStorage's store."""
    if isinstance(db_url, TestStorage):
        db = db_url.open_db(1)
        try:
            with db.cursor() as cur:
                cur.execute(sql, tuple(args))
                return cur.fetchall()
        finally:
            db.close()
    return mysql_query(db_url, sql, args)


def count_rows(db_url, table):
    """Rows in table (0 when the schema has not been created yet)."""
    import pymysql
    import sqlite3
    try:
        return int(db_query(db_url, f"SELECT COUNT(*) FROM {table}")[0][0])
    except pymysql.err.ProgrammingError as exc:   # 1146: table does not exist (yet)
        if exc.args and exc.args[0] == 1146:
            return 0
        raise
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0
        raise


_MESSAGE_COLUMNS = ("id", "mailbox_id", "uid", "modseq", "content_id", "rfc822_size",
                    "message_id", "subject", "from_addr", "to_addr", "trace_headers")


def stored_messages(db_url):
    """Every ``messages`` row as a dict (columns above plus ``address`` and ``mailbox``)."""
    rows = db_query(db_url, "SELECT " + ", ".join(f"m.{c}" for c in _MESSAGE_COLUMNS)
                    + ", a.address, b.name FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
                    " JOIN accounts a ON a.id = b.account_id ORDER BY m.mailbox_id, m.uid")
    result = []
    for row in rows:
        item = dict(zip(_MESSAGE_COLUMNS, row))
        item["address"], item["mailbox"] = row[-2], row[-1]
        if item["trace_headers"] is not None:
            item["trace_headers"] = bytes(item["trace_headers"])
        result.append(item)
    return result


def attachment_rows(db_url):
    """[(content_id, bucket, object_key, decoded_size, sha256)] of every attachments row."""
    return [tuple(r) for r in db_query(
        db_url, "SELECT content_id, bucket, object_key, decoded_size, sha256 FROM attachments"
        " ORDER BY content_id, idx")]


# -- the bucket -----------------------------------------------------------------

def s3_client(endpoint):
    return _boto_client(endpoint)


def bucket_keys(endpoint, bucket):
    if isinstance(endpoint, TestStorage):
        return sorted(endpoint.open_blobs(bucket).list_keys())
    client = s3_client(endpoint)
    keys = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys += [item["Key"] for item in page.get("Contents", [])]
    except client.exceptions.NoSuchBucket:
        return []
    return sorted(keys)


def multipart_uploads(endpoint, bucket):
    if isinstance(endpoint, TestStorage):
        return sorted((u.key, u.upload_id) for u in endpoint.open_blobs(bucket).open_uploads())
    client = s3_client(endpoint)
    try:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    except client.exceptions.NoSuchBucket:
        return []
    return sorted((u["Key"], u["UploadId"]) for u in uploads)


def leftovers(db_url, endpoint, bucket):
    """What must be gone after a failed delivery (empty dict when nothing is left)."""
    found = {}
    for table in ("messages", "message_contents", "attachments", "pending_objects"):
        count = count_rows(db_url, table)
        if count:
            found[table] = count
    keys = bucket_keys(endpoint, bucket)
    if keys:
        found["objects"] = keys
    uploads = multipart_uploads(endpoint, bucket)
    if uploads:
        found["multipart_uploads"] = uploads
    return found


def assert_consistent(db_url, endpoint, bucket, pending_allowed=False):
    """Every attachments row's object exists with its size, and no object lacks a row.

    Also: no open multipart upload, every message row points at an existing
    content, and (unless pending_allowed) no upload intent rows are left.
    """
    rows = attachment_rows(db_url)
    keys = set(bucket_keys(endpoint, bucket))
    referenced = {key for _, row_bucket, key, _, _ in rows if row_bucket == bucket}
    missing = sorted(referenced - keys)
    orphans = sorted(keys - referenced)
    assert not missing, f"attachments rows whose object is missing: {missing}"
    assert not orphans, f"objects no attachments row refers to: {orphans}"
    sizes = {item.key: item.size for item in _blobs(endpoint, bucket).list_objects()}
    for _, _, key, size, _ in rows:
        assert sizes[key] == size, key
    assert multipart_uploads(endpoint, bucket) == []
    dangling = db_query(db_url, "SELECT m.id FROM messages m LEFT JOIN message_contents c"
                                " ON c.id = m.content_id WHERE c.id IS NULL")
    assert not dangling, f"messages without content: {dangling}"
    if not pending_allowed:
        assert count_rows(db_url, "pending_objects") == 0


def _blobs(endpoint, bucket):
    if isinstance(endpoint, TestStorage):
        return endpoint.open_blobs(bucket)
    from geomail.blobs.s3 import BlobStore
    return BlobStore(endpoint, bucket, access_key="geomail-test", secret_key="geomail-test")


def wait_until(predicate, timeout=20.0, interval=0.1, message=None):
    """Poll predicate until it returns a true value (returned); AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}"
                         f" (last value {value!r})")


# -- messages -------------------------------------------------------------------

def attachment_payload(size, seed=b"geomail"):
    """size deterministic, incompressible-looking bytes."""
    out = bytearray()
    block = hashlib.sha256(seed).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 32            # 1 KiB per hash: fast enough for tens of MiB
    return bytes(out[:size])


def attachment_message(size, filename="data.bin", sender="sender@x.org",
                       recipient="rcpt@example.com", subject="attachment", payload=None):
    """A multipart/mixed message with a text part and one base64 attachment (76-char lines)."""
    payload = attachment_payload(size) if payload is None else payload
    boundary = "=_geomail_" + secrets.token_hex(8)
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    head = (f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{secrets.token_hex(8)}@x.org>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"Hello, see the attachment.\r\n\r\n"
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Disposition: attachment; filename=\"{filename}\"\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + encoded + tail


def plain_message(subject="hello", sender="sender@x.org", recipient="rcpt@example.com",
                  body="Hello.\r\n"):
    return (f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{secrets.token_hex(8)}@x.org>\r\n\r\n{body}").encode()


def dot_stuff(message):
    """The DATA form of message bytes (dot-stuffed, ending with CRLF)."""
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\r\n.", b"\r\n..")


class RawSMTP:
    """A plain socket SMTP client: commands one by one, DATA in pieces, abrupt close."""

    def __init__(self, port, host="127.0.0.1", timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""
        self.greeting = self.reply()

    def client_port(self):
        return self.sock.getsockname()[1]

    def reply(self):
        """(code, text of all lines) of the next reply."""
        lines = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"server closed the connection after {lines!r}")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)

    def command(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def envelope(self, sender="sender@x.org", recipients=("rcpt@example.com",), helo="client.test"):
        """EHLO, MAIL, RCPT..., DATA; asserts each step and leaves the session in DATA."""
        code, text = self.command(f"EHLO {helo}")
        assert code == 250, text
        self.mail_rcpt(sender, recipients)
        code, text = self.command("DATA")
        assert code == 354, text

    def mail_rcpt(self, sender="sender@x.org", recipients=("rcpt@example.com",)):
        code, text = self.command(f"MAIL FROM:<{sender}>")
        assert code == 250, text
        for recipient in recipients:
            code, text = self.command(f"RCPT TO:<{recipient}>")
            assert code == 250, text

    def send(self, data, chunk=256 * 1024, delay=0.0):
        for start in range(0, len(data), chunk):
            self.sock.sendall(data[start:start + chunk])
            if delay:
                time.sleep(delay)

    def finish_data(self):
        """Send the end-of-data marker and return the reply."""
        self.sock.sendall(b".\r\n")
        return self.reply()

    def data(self, message, **send_args):
        """Send a whole message (dot-stuffed here) and the end marker; returns the reply."""
        self.send(dot_stuff(message), **send_args)
        return self.finish_data()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def quit(self):
        try:
            self.command("QUIT")
        except OSError:
            pass
        self.close()


def send_message(port, message, sender="sender@x.org", recipients=("rcpt@example.com",)):
    """One complete transaction on a new connection; returns the final (code, text)."""
    client = RawSMTP(port)
    try:
        client.envelope(sender, recipients)
        return client.data(message)
    finally:
        client.quit()


# -- storage and servers of one's own ---------------------------------------------

@pytest.fixture
def smtp_storage(fresh_db_url, s3_endpoint):
    """(db_url, s3_endpoint, bucket): an empty database and an unused bucket name."""
    bucket = f"geomail-smtp-{secrets.token_hex(6)}"
    yield fresh_db_url(), s3_endpoint, bucket
    _empty_and_delete_bucket(_boto_client(s3_endpoint), bucket)


@pytest.fixture
def storage_server(request, tmp_path):
    """Factory for a geomail on a store and bucket of its own, so rows and objects can be counted.

    ``server = storage_server(extra_args=[...], s3_endpoint=None, workers=2)``; the server has
    ``db_url``, ``s3_endpoint`` and ``bucket`` attributes (on the embedded backend the first two
    are its TestStorage, which the helpers above take too).  Stopped and cleaned up at the end.
    """
    started = []

    def start(extra_args=(), s3_endpoint=None, workers=2, **kwargs):
        bucket = f"geomail-smtp-{secrets.token_hex(6)}"
        workdir = tmp_path / f"geomail{len(started)}"
        if chosen_backend() == "embedded" and s3_endpoint is None:
            storage = TestStorage("embedded", data_dir=str(workdir / "data"), bucket=bucket)
            db_url = s3_endpoint = storage
        else:
            db_url = request.getfixturevalue("fresh_db_url")()
            s3_endpoint = s3_endpoint or request.getfixturevalue("s3_endpoint")
            storage = db_url, s3_endpoint, bucket
        server = GeomailProcess(workdir, *(storage if isinstance(storage, tuple) else (storage,)),
                                workers=workers, extra_args=list(extra_args), **kwargs)
        server.db_url, server.s3_endpoint, server.bucket = db_url, s3_endpoint, bucket
        started.append(server)
        server.start()
        server.wait_workers(workers)
        return server

    yield start
    for server in started:
        server.stop()
        if isinstance(server.s3_endpoint, TestStorage):
            continue    # its data dir goes with tmp_path
        try:
            _empty_and_delete_bucket(_boto_client(server.s3_endpoint), server.bucket)
        except Exception:   # a private S3 may already be gone
            pass


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


__all__ = ["MiB", "db_connect", "db_query", "count_rows", "stored_messages", "attachment_rows",
           "s3_client", "bucket_keys", "multipart_uploads", "leftovers", "assert_consistent",
           "wait_until", "attachment_payload", "attachment_message", "plain_message",
           "dot_stuff", "RawSMTP", "send_message", "sha256_hex"]
