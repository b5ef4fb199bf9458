"""The attachment disk cache end to end: bin/geomail on MariaDB and a private SeaweedFS.

Messages delivered over SMTP are read back with FETCH BODY.PEEK[] without
one S3 GET (the objects were written to the cache at delivery), byte for
byte, from both workers, and still when SeaweedFS is stopped.  A cache file
corrupted behind geomail's back is caught by its checksum: FETCH still
returns the right bytes (from S3) and the file is replaced.
"""

import base64
import hashlib
import imaplib
import os
import smtplib

import pytest

from geomail.blobs.diskcache import WIRE_HEADER, DiskCache
from geomail.store.accounts import create_account
from tests.fixtures.faults import PrivateS3
from tests.fixtures.server import GeomailProcess
from tests.fixtures.services import free_port
from tests.fixtures.storage import TestStorage
from tests.server.test_metrics import get, value

pytestmark = pytest.mark.mysql_s3

BUCKET = "disk-cache"
ADDRESS = "cached@example.com"
PASSWORD = "pw"
GETS = "geomail_blob_request_seconds_count"


def message(n, attachment):
    encoded = base64.encodebytes(attachment).replace(b"\n", b"\r\n")
    return (b"From: a@example.net\r\nTo: " + ADDRESS.encode() + b"\r\n"
            b"Subject: cached %d\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
            b"Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"f%d.bin\"\r\n\r\n" % (n, n)
            + encoded + b"--b--\r\n")


@pytest.fixture
def stack(tmp_path, fresh_db_url):
    """(GeomailProcess, PrivateS3, cache directory, storage) with the disk cache on and
    the memory cache off, so that every read of an attachment goes to the disk cache."""
    s3 = PrivateS3().start()
    storage = TestStorage("mysql", db_url=fresh_db_url(), s3_endpoint=s3.endpoint, bucket=BUCKET)
    cache_dir = tmp_path / "attachment-cache"
    proc = GeomailProcess(tmp_path / "geomail", storage, workers=2, extra_args=[
        "--http-port", str(free_port()), "--attachment-cache-dir", str(cache_dir),
        "--attachment-cache-size", "64M", "--attachment-memory-cache-size", "0"])
    proc.http_port = int(proc.args[proc.args.index("--http-port") + 1])
    try:
        proc.start()
        proc.wait_workers(2)
        db = storage.open_db()
        try:
            create_account(db, ADDRESS, PASSWORD)
        finally:
            db.close()
        yield proc, s3, cache_dir, storage
    finally:
        proc.stop()
        s3.stop()


def deliver(proc, count=4):
    """count messages with a 60-120 KB attachment each; {subject number: (message, attachment)}."""
    sent = {}
    for n in range(count):
        attachment = os.urandom(60_000 + 20_000 * n)
        data = message(n, attachment)
        with smtplib.SMTP("127.0.0.1", proc.smtp_port) as client:
            client.sendmail("a@example.net", [ADDRESS], data)
        sent[n] = (data, attachment)
    return sent


def fetch_bodies(proc, connections=4):
    """BODY[] of every message, over several connections (both workers serve some)."""
    bodies = []
    for _ in range(connections):
        imap = imaplib.IMAP4("127.0.0.1", proc.imap_port)
        imap.login(ADDRESS, PASSWORD)
        imap.select("INBOX", readonly=True)
        typ, data = imap.fetch("1:*", "BODY.PEEK[]")
        assert typ == "OK", data
        bodies.append([item[1] for item in data if isinstance(item, tuple)])
        imap.logout()
    return bodies


def s3_gets(proc):
    return value(get(proc.http_port, "/metrics")[1], GETS, operation="get_range")


def assert_identical(bodies, sent):
    for per_connection in bodies:
        assert len(per_connection) == len(sent)
        for body, (data, _) in zip(per_connection, sent.values()):
            assert body.endswith(data)          # after the trace headers, the message as sent


def test_fetch_after_delivery_makes_no_s3_get_and_works_without_s3(stack):
    proc, s3, cache_dir, _ = stack
    sent = deliver(proc)
    gets = s3_gets(proc)
    wire_writes = value(get(proc.http_port, "/metrics")[1], "geomail_attachment_disk_cache_total",
                        event="wire_write")
    assert wire_writes == len(sent)              # each attachment as received, at delivery
    assert_identical(fetch_bodies(proc), sent)
    text = get(proc.http_port, "/metrics")[1]
    assert value(text, GETS, operation="get_range") == gets     # zero GETs: all from the cache
    assert value(text, "geomail_attachment_disk_cache_total", event="hit") >= 4 * len(sent)
    assert value(text, "geomail_attachment_disk_cache_total", event="write") == len(sent)
    # no FETCH encoded an attachment: every read, whichever worker served it, sent the
    # wire-form file written at delivery
    assert value(text, "geomail_attachment_disk_cache_total", event="wire_write") == len(sent)
    s3.stop()                                                     # S3 gone: still readable
    assert_identical(fetch_bodies(proc), sent)


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_a_corrupt_cache_file_is_replaced_from_s3(stack):
    """Both files of an attachment corrupted: its wire form (what BODY[] sends) fails its
    digest, the object it is rendered from again fails its sha256, so S3 is read, and
    both files are written anew."""
    proc, _, cache_dir, storage = stack
    sent = deliver(proc, count=2)
    db = storage.open_db()
    try:
        with db.cursor() as cur:
            cur.execute("SELECT object_key FROM attachments ORDER BY id")
            keys = [row[0] for row in cur.fetchall()]
    finally:
        db.close()
    assert len(keys) == 2
    cache = DiskCache(cache_dir, 64 * 1024 * 1024)
    path = cache.path(BUCKET, keys[0])
    attachment, data = sent[0][1], sent[0][0]
    with open(path, "rb") as f:
        assert f.read() == attachment                               # written at delivery
    wire_paths = [os.path.join(os.path.dirname(path), name)
                  for name in os.listdir(os.path.dirname(path))
                  if name.startswith(os.path.basename(path) + ".")]
    assert len(wire_paths) == 1
    with open(wire_paths[0], "rb") as f:
        assert f.read()[WIRE_HEADER:] in data                                # the segment as sent
    flip(path, 1000)
    flip(wire_paths[0], 5000)
    gets = s3_gets(proc)
    assert_identical(fetch_bodies(proc, connections=1), sent)
    assert s3_gets(proc) == gets + 1                                # the one corrupt object
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(attachment).digest()
    with open(wire_paths[0], "rb") as f:
        assert f.read()[WIRE_HEADER:] in data                                # rendered again, kept
    text = get(proc.http_port, "/metrics")[1]
    assert value(text, "geomail_attachment_disk_cache_total", event="corrupt") == 2
    assert "does not match its recorded sha256" in proc.output()
    assert "does not match its wire-form digest" in proc.output()
