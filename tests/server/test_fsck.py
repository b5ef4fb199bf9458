"""``geomail-admin fsck`` against real SeaweedFS and MariaDB, with leaks made by hand.

A real bin/geomail stores two messages with attachments (their objects must
never be touched); then, through the real blob store, an object is put with
no row, a multipart upload is begun and left open, an intent row of a dead
writer is left behind, and one attachments row loses its object.  fsck must
find each, exit non-zero, repair the leaks and report (not delete) the row
without an object.
"""

import hashlib
import os
import re

import pytest

from tests.fixtures.faults import db_query
from tests.fixtures.server import run_admin
from tests.fixtures.services import S3_ACCESS_KEY, S3_SECRET_KEY
from tests.smtp.conftest import (MiB, attachment_message, attachment_rows, bucket_keys,
                                 multipart_uploads, s3_client, send_message, storage_server)  # noqa: F401


def fsck(server, *args):
    result = run_admin(["fsck", *args], server.db_url, server.s3_endpoint, server.bucket)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def rows_of(output):
    """{(kind, key)} of fsck's table, and the state column of each."""
    found = {}
    for line in output.splitlines()[1:-1]:
        match = re.match(r"(\w+)\s+(\d*)\s+(\S*)\s+(found|repaired)\s+(\S+)\s+\(", line)
        assert match, line
        found[(match.group(1), match.group(5))] = match.group(4)
    return found


@pytest.fixture
def blob_store_of():
    from geomail.blobs.s3 import BlobStore

    def make(server):
        return BlobStore(server.s3_endpoint, server.bucket, S3_ACCESS_KEY, S3_SECRET_KEY,
                         multipart_threshold=1 * MiB, part_size=5 * MiB)
    return make


def test_fsck_finds_and_repairs_leaks_never_a_referenced_object(storage_server, blob_store_of):
    server = storage_server(workers=1)
    for size in (100 * 1024, 300 * 1024, 200 * 1024):
        assert send_message(server.smtp_port, attachment_message(size))[0] == 250
    rows = attachment_rows(server.db_url)
    referenced = sorted(key for _, _, key, _, _ in rows)
    assert len(referenced) == 3 and bucket_keys(server.s3_endpoint, server.bucket) == referenced

    clean = fsck(server)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 problem(s)" in clean.stdout

    store = blob_store_of(server)
    store.put("leak/orphan.bin", b"nobody owns me" * 100)                # no row, no intent
    upload = store.open_upload("leak/open.bin")                         # begun, left open
    upload.write(os.urandom(6 * MiB))
    assert upload.multipart
    store.put("leak/intent.bin", b"a dead writer's object")             # with a stale intent
    db_query(server.db_url, "INSERT INTO pending_objects (bucket, object_key, owner_host,"
             " owner_pid, created_at) VALUES (%s, 'leak/intent.bin', 'gone.host.invalid', 1,"
             " NOW(6) - INTERVAL 2 HOUR)", (server.bucket,))
    lost_key = referenced[1]
    store.delete([lost_key])                                             # a row, no object

    # default bound (1 h): the young upload is not a problem yet; the rest is
    report = fsck(server)
    assert report.returncode == 1, report.stdout + report.stderr
    found = rows_of(report.stdout)
    assert found == {("orphan", "leak/orphan.bin"): "found", ("missing", lost_key): "found",
                     ("intent", "leak/intent.bin"): "found"}, report.stdout
    # nothing changed without --repair
    assert "leak/orphan.bin" in bucket_keys(server.s3_endpoint, server.bucket)
    assert len(multipart_uploads(server.s3_endpoint, server.bucket)) == 1

    # a tight bound: the open upload is reported too
    report = fsck(server, "--older-than", "0")
    assert rows_of(report.stdout)[("upload", "leak/open.bin")] == "found"

    repaired = fsck(server, "--older-than", "0s", "--repair")
    assert repaired.returncode == 1, repaired.stdout      # problems were found
    found = rows_of(repaired.stdout)
    assert found[("orphan", "leak/orphan.bin")] == "repaired"
    assert found[("upload", "leak/open.bin")] == "repaired"
    assert found[("intent", "leak/intent.bin")] == "repaired"
    assert found[("missing", lost_key)] == "found"        # reported, never deleted

    keys = bucket_keys(server.s3_endpoint, server.bucket)
    assert keys == [k for k in referenced if k != lost_key]
    assert multipart_uploads(server.s3_endpoint, server.bucket) == []
    assert db_query(server.db_url, "SELECT COUNT(*) FROM pending_objects")[0][0] == 0
    assert len(attachment_rows(server.db_url)) == 3       # the row without object stays
    # the referenced objects are intact
    client = s3_client(server.s3_endpoint)
    for _, _, key, size, sha in rows:
        if key != lost_key:
            body = client.get_object(Bucket=server.bucket, Key=key)["Body"].read()
            assert len(body) == size and hashlib.sha256(body).hexdigest() == sha

    again = fsck(server, "--older-than", "0", "--repair")
    assert again.returncode == 1
    assert rows_of(again.stdout) == {("missing", lost_key): "found"}


def test_fsck_bad_duration_is_a_usage_error(storage_server):
    server = storage_server(workers=1)
    result = fsck(server, "--older-than", "soon")
    assert result.returncode == 2
    assert "not a duration" in result.stderr
