"""What only the S3 BlobStore does: endpoints that do not answer, and 4xx versus no answer.

The backend-neutral contract is test_contract.py; the S3 read path's own
HTTP client is test_ranged_get.py.
"""

import secrets
import time

import pytest

from geomail.blobs.errors import BlobStoreError
from geomail.blobs.s3 import BlobStore
from geomail.errors import TEMPORARY, classify
from tests.fixtures.services import S3_ACCESS_KEY, S3_SECRET_KEY, free_port


def test_s3_unreachable_endpoint_fails_fast_and_clearly():
    endpoint = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    store = BlobStore(endpoint, "geomail-nowhere", S3_ACCESS_KEY, S3_SECRET_KEY)
    started = time.monotonic()
    with pytest.raises(BlobStoreError) as info:
        store.ensure_bucket()
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert "unreachable" in message and endpoint in message and "\n" not in message
    assert classify(info.value) == TEMPORARY


def test_s3_a_refusal_is_certain_a_dead_endpoint_is_not(blob_store):
    dead = BlobStore(f"http://127.0.0.1:{free_port()}", blob_store.bucket, S3_ACCESS_KEY,
                     S3_SECRET_KEY, connect_timeout=1, read_timeout=1, max_attempts=1)
    with pytest.raises(BlobStoreError) as info:
        dead.put("k", b"v")
    assert info.value.uncertain        # retries may have hidden an attempt that got in
    wrong = BlobStore(blob_store.endpoint, "no-such-bucket-" + secrets.token_hex(4),
                      S3_ACCESS_KEY, S3_SECRET_KEY, max_attempts=1)
    with pytest.raises(BlobStoreError) as info:
        wrong.put("k", b"v")
    assert not info.value.uncertain    # a 4xx: S3 refused, nothing was stored


def test_s3_multipart_calls_fail_typed_at_a_dead_endpoint():
    dead = BlobStore(f"http://127.0.0.1:{free_port()}", "geomail-nowhere", S3_ACCESS_KEY,
                     S3_SECRET_KEY, connect_timeout=1, read_timeout=1, max_attempts=1)
    for call in (lambda: dead.create_upload("a/b/c"),
                 lambda: dead.upload_part("a/b/c", "id", 1, b"x"),
                 lambda: dead.complete_upload("a/b/c", "id", [(1, '"etag"')])):
        with pytest.raises(BlobStoreError) as info:
            call()
        assert "unreachable" in str(info.value) and info.value.uncertain
