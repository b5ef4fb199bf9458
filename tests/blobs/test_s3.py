"""BlobStore against a real SeaweedFS (tests/fixtures/services.py starts it)."""

import hashlib
import os
import secrets
import time

import pytest

from geomail.blobs.s3 import MiB, BlobNotFound, BlobStore, BlobStoreError
from tests.fixtures.services import S3_ACCESS_KEY, S3_SECRET_KEY, free_port


def unique(prefix="t"):
    return f"{prefix}/{secrets.token_hex(6)}"


class TestObjects:
    def test_put_get_delete(self, blob_store):
        key = unique() + "/report.pdf"
        blob_store.put(key, b"hello attachment")
        assert blob_store.get(key) == b"hello attachment"
        blob_store.delete([key])
        with pytest.raises(BlobNotFound):
            blob_store.get(key)

    def test_get_missing_raises_not_found_with_key(self, blob_store):
        with pytest.raises(BlobNotFound) as info:
            blob_store.get_range("no/such/key", 0, 10)
        assert "no/such/key" in str(info.value)

    def test_range_reads(self, blob_store):
        key = unique()
        data = os.urandom(300 * 1024)
        blob_store.put(key, data)
        assert b"".join(blob_store.get_range(key, 0)) == data
        assert b"".join(blob_store.get_range(key, 1000, 2000)) == data[1000:2000]
        assert b"".join(blob_store.get_range(key, len(data) - 5)) == data[-5:]
        assert b"".join(blob_store.get_range(key, 7, 7)) == b""
        chunks = list(blob_store.get_range(key, 0, None))
        assert all(len(chunk) <= 64 * 1024 for chunk in chunks) and len(chunks) >= 5

    def test_delete_many_and_missing(self, blob_store):
        prefix = unique("many")
        keys = [f"{prefix}/{i}" for i in range(30)]
        for key in keys:
            blob_store.put(key, b"x")
        assert sorted(blob_store.list_keys(prefix + "/")) == sorted(keys)
        blob_store.delete(keys + [f"{prefix}/never-existed"])
        assert list(blob_store.list_keys(prefix + "/")) == []

    def test_delete_nothing(self, blob_store):
        blob_store.delete([])


class TestUpload:
    def test_small_upload_is_one_put(self, blob_store):
        key = unique()
        with blob_store.open_upload(key) as upload:
            upload.write(b"abc")
            upload.write(b"def")
        assert not upload.multipart
        assert upload.size == 6
        assert blob_store.get(key) == b"abcdef"

    def test_multipart_20_mib_round_trips(self, blob_store):
        key = unique() + "/big.bin"
        data = os.urandom(20 * MiB)
        upload = blob_store.open_upload(key)
        for i in range(0, len(data), 100_000):  # odd chunk size: parts straddle writes
            upload.write(data[i:i + 100_000])
        assert upload.multipart
        assert upload.close() == len(data)
        assert b"".join(blob_store.get_range(key, 0)) == data
        start = 8 * MiB - 10
        assert b"".join(blob_store.get_range(key, start, start + 20)) == data[start:start + 20]
        assert blob_store.list_multipart_uploads(key) == []
        assert upload.sha256 == hashlib.sha256(data).hexdigest()

    def test_exactly_threshold_bytes(self, blob_store):
        key = unique()
        data = os.urandom(8 * MiB)
        with blob_store.open_upload(key) as upload:
            upload.write(data)
        assert blob_store.get(key) == data

    def test_abort_leaves_no_multipart_upload(self, blob_store):
        key = unique() + "/aborted.bin"
        upload = blob_store.open_upload(key)
        upload.write(os.urandom(9 * MiB))
        assert upload.multipart
        assert [k for k, _ in blob_store.list_multipart_uploads(key)] == [key]
        upload.abort()
        assert blob_store.list_multipart_uploads(key) == []
        assert list(blob_store.list_keys(key)) == []

    def test_exception_in_with_block_aborts(self, blob_store):
        key = unique()
        with pytest.raises(RuntimeError):
            with blob_store.open_upload(key) as upload:
                upload.write(os.urandom(9 * MiB))
                raise RuntimeError("client went away")
        assert blob_store.list_multipart_uploads(key) == []
        assert list(blob_store.list_keys(key)) == []

    def test_abort_after_close_deletes_object(self, blob_store):
        key = unique()
        upload = blob_store.open_upload(key)
        upload.write(b"stored then regretted")
        upload.close()
        upload.abort()
        with pytest.raises(BlobNotFound):
            blob_store.get(key)

    def test_write_after_abort_fails(self, blob_store):
        upload = blob_store.open_upload(unique())
        upload.abort()
        with pytest.raises(BlobStoreError):
            upload.write(b"x")


class TestBucket:
    def test_ensure_bucket_creates_and_is_idempotent(self, s3_endpoint):
        bucket = f"geomail-create-{secrets.token_hex(4)}"
        store = BlobStore(s3_endpoint, bucket, S3_ACCESS_KEY, S3_SECRET_KEY)
        store.ensure_bucket(create=True)
        store.ensure_bucket(create=True)
        store.put("k", b"v")
        store.delete(["k"])
        store.client.delete_bucket(Bucket=bucket)

    def test_missing_bucket_without_create(self, s3_endpoint):
        bucket = f"geomail-missing-{secrets.token_hex(4)}"
        store = BlobStore(s3_endpoint, bucket, S3_ACCESS_KEY, S3_SECRET_KEY)
        with pytest.raises(BlobStoreError) as info:
            store.ensure_bucket(create=False)
        message = str(info.value)
        assert bucket in message and "does not exist" in message and "\n" not in message

    def test_unreachable_endpoint_fails_fast_and_clearly(self):
        endpoint = f"http://127.0.0.1:{free_port()}"  # nobody listens there
        store = BlobStore(endpoint, "geomail-nowhere", S3_ACCESS_KEY, S3_SECRET_KEY)
        started = time.monotonic()
        with pytest.raises(BlobStoreError) as info:
            store.ensure_bucket()
        assert time.monotonic() - started < 10
        message = str(info.value)
        assert "unreachable" in message and endpoint in message and "\n" not in message

    def test_part_size_below_s3_minimum_is_refused(self, s3_endpoint):
        with pytest.raises(ValueError):
            BlobStore(s3_endpoint, "b" * 3, part_size=1024)


class TestLeakTools:
    """What the janitor and fsck need: listings with ages, exists, abort by id, remove."""

    def test_list_objects_with_size_and_time(self, blob_store):
        prefix = unique("listed")
        blob_store.put(prefix + "/a", b"12345")
        listed = list(blob_store.list_objects(prefix))
        assert [(o.key, o.size) for o in listed] == [(prefix + "/a", 5)]
        assert listed[0].last_modified is not None
        assert blob_store.exists(prefix + "/a") and not blob_store.exists(prefix + "/b")
        blob_store.delete([prefix + "/a"])

    def test_open_uploads_with_initiation_time_and_abort_by_id(self, blob_store):
        import datetime
        key = unique("open") + "/left.bin"
        upload_id = blob_store.client.create_multipart_upload(
            Bucket=blob_store.bucket, Key=key)["UploadId"]
        (found,) = blob_store.open_uploads(key)
        assert (found.key, found.upload_id) == (key, upload_id)
        age = datetime.datetime.now(datetime.timezone.utc) - found.initiated
        assert -60 < age.total_seconds() < 600
        blob_store.abort_upload(key, upload_id)
        assert blob_store.open_uploads(key) == []
        blob_store.abort_upload(key, upload_id)          # already gone: not an error

    def test_remove_aborts_uploads_and_deletes_the_object(self, blob_store):
        key = unique("remove") + "/x.bin"
        blob_store.put(key, b"done")
        blob_store.client.create_multipart_upload(Bucket=blob_store.bucket, Key=key)
        blob_store.remove(key)
        assert not blob_store.exists(key) and blob_store.open_uploads(key) == []
        blob_store.remove(key)                            # nothing left: not an error

    def test_a_refusal_is_certain_a_dead_endpoint_is_not(self, blob_store):
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
