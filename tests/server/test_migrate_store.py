"""``geomail-admin migrate-store``: an embedded installation moved to MySQL + S3.

Mail goes into an embedded geomail (a plain message, one with an attachment in
the blob directory, flags and a folder); after the copy a geomail on the new
MariaDB database and SeaweedFS bucket serves the same mailboxes: same
UIDVALIDITY and UIDs, same flags, every message byte for byte.
"""

import base64
import imaplib
import os
import secrets
import smtplib

from tests.fixtures.server import GeomailProcess, run_admin
from tests.fixtures.services import _boto_client, _empty_and_delete_bucket
from tests.fixtures.storage import TestStorage, mysql_storage

PASSWORD = "moving day"


def _messages():
    attachment = base64.encodebytes(os.urandom(200_000)).replace(b"\n", b"\r\n")
    plain = b"From: a@example.org\r\nTo: mover@example.com\r\nSubject: plain\r\n\r\nhello\r\n"
    mixed = (b"From: a@example.org\r\nTo: mover@example.com\r\nSubject: with file\r\n"
             b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
             b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
             b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
             b"Content-Disposition: attachment; filename=data.bin\r\n\r\n" + attachment
             + b"--b--\r\n")
    return plain, mixed


def _snapshot(port):
    """What a client sees: per mailbox UIDVALIDITY and (UID, FLAGS, BODY[]) of every message."""
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login("mover@example.com", PASSWORD)
        seen = {}
        for name in ("INBOX", "Projects"):
            imap.select(name, readonly=True)
            validity = imap.response("UIDVALIDITY")[1][0]
            typ, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
            assert typ == "OK", data
            items = [(item[0], item[1]) for item in data if isinstance(item, tuple)]
            seen[name] = (validity, items)
        return seen
    finally:
        imap.logout()


def test_an_embedded_store_moves_to_mysql_and_s3(tmp_path, fresh_db_url, s3_endpoint):
    bucket = f"geomail-move-{secrets.token_hex(4)}"
    embedded = TestStorage("embedded", data_dir=str(tmp_path / "data"), bucket=bucket)
    server = GeomailProcess(tmp_path / "embedded", embedded, workers=1).start()
    try:
        done = run_admin(["account", "add", "mover@example.com", "--password-stdin"], embedded,
                         stdin=PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
        plain, mixed = _messages()
        with smtplib.SMTP("127.0.0.1", server.smtp_port) as smtp:
            for message in (plain, mixed):
                smtp.sendmail("a@example.org", ["mover@example.com"], message)
        imap = imaplib.IMAP4("127.0.0.1", server.imap_port)
        imap.login("mover@example.com", PASSWORD)
        imap.create("Projects")
        imap.select("INBOX")
        imap.uid("STORE", "2", "+FLAGS", r"(\Flagged $Moved)")
        imap.uid("COPY", "2", "Projects")
        imap.logout()
        before = _snapshot(server.imap_port)
    finally:
        server.stop()
    assert os.path.exists(os.path.join(embedded.data_dir, "blobs", bucket))

    target = mysql_storage(fresh_db_url(), s3_endpoint, bucket)
    try:
        moved = run_admin(["migrate-store", "--to-db-url", target.db_url,
                           "--to-oss-endpoint", target.s3_endpoint,
                           "--to-oss-access-key", "geomail-test",
                           "--to-oss-secret-key", "geomail-test"], embedded)
        assert moved.returncode == 0, moved.stderr
        assert "objects: 1 copied" in moved.stdout, moved.stdout
        assert "messages: 3 rows" in moved.stdout, moved.stdout

        again = run_admin(["migrate-store", "--to-db-url", target.db_url,
                           "--to-oss-endpoint", target.s3_endpoint,
                           "--to-oss-access-key", "geomail-test",
                           "--to-oss-secret-key", "geomail-test"], embedded)
        assert again.returncode == 1 and "already holds accounts" in again.stderr, again.stderr

        served = GeomailProcess(tmp_path / "mysql", target, workers=1).start()
        try:
            after = _snapshot(served.imap_port)
        finally:
            served.stop()
        assert after == before
        assert b"data.bin" in before["INBOX"][1][1][1] and rb"\Flagged" in before["INBOX"][1][1][0]
        fsck = run_admin(["fsck"], target)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    finally:
        _empty_and_delete_bucket(_boto_client(s3_endpoint), bucket)
