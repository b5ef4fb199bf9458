"""The blob store contract, run on both backends from this one file.

Every test takes ``blobs`` (or ``make_blobs``), parametrized "s3" (a real
SeaweedFS, tests/fixtures/services.py) and "local" (LocalBlobStore under
tmp_path); see tests/fixtures/blobstores.py.  What only S3 does lives in
test_s3_only.py, what only the directory does in test_localdir.py.
"""

import datetime
import hashlib
import os
import secrets

import pytest

from geomail.blobs.errors import BlobNotFound, BlobStoreError
from geomail.blobs.upload import MiB
from geomail.errors import BUG, TEMPORARY, classify


def unique(prefix="t"):
    return f"{prefix}/{secrets.token_hex(6)}"


class TestObjects:
    def test_put_get_delete(self, blobs):
        key = unique() + "/report.pdf"
        blobs.put(key, b"hello attachment")
        assert blobs.get(key) == b"hello attachment"
        blobs.delete([key])
        with pytest.raises(BlobNotFound):
            blobs.get(key)

    def test_get_missing_raises_not_found_with_key(self, blobs):
        with pytest.raises(BlobNotFound) as info:
            blobs.get_range("no/such/key", 0, 10)
        assert "no/such/key" in str(info.value)

    def test_range_reads(self, blobs):
        key = unique()
        data = os.urandom(300 * 1024)
        blobs.put(key, data)
        assert b"".join(blobs.get_range(key, 0)) == data
        assert b"".join(blobs.get_range(key, 1000, 2000)) == data[1000:2000]
        assert b"".join(blobs.get_range(key, len(data) - 5)) == data[-5:]
        assert b"".join(blobs.get_range(key, 7, 7)) == b""
        chunks = list(blobs.get_range(key, 0, None))
        assert all(len(chunk) <= 64 * 1024 for chunk in chunks) and len(chunks) >= 5

    def test_delete_many_and_missing(self, blobs):
        prefix = unique("many")
        keys = [f"{prefix}/{i}" for i in range(30)]
        for key in keys:
            blobs.put(key, b"x")
        assert sorted(blobs.list_keys(prefix + "/")) == sorted(keys)
        blobs.delete(keys + [f"{prefix}/never-existed"])
        assert list(blobs.list_keys(prefix + "/")) == []

    def test_delete_nothing(self, blobs):
        blobs.delete([])


class TestUpload:
    def test_small_upload_is_one_put(self, blobs):
        key = unique()
        with blobs.open_upload(key) as upload:
            upload.write(b"abc")
            upload.write(b"def")
        assert not upload.multipart
        assert upload.size == 6
        assert blobs.get(key) == b"abcdef"

    def test_multipart_20_mib_round_trips(self, blobs):
        key = unique() + "/big.bin"
        data = os.urandom(20 * MiB)
        upload = blobs.open_upload(key)
        for i in range(0, len(data), 100_000):  # odd chunk size: parts straddle writes
            upload.write(data[i:i + 100_000])
        assert upload.multipart
        assert upload.close() == len(data)
        assert b"".join(blobs.get_range(key, 0)) == data
        start = 8 * MiB - 10
        assert b"".join(blobs.get_range(key, start, start + 20)) == data[start:start + 20]
        assert blobs.list_multipart_uploads(key) == []
        assert upload.sha256 == hashlib.sha256(data).hexdigest()

    def test_exactly_threshold_bytes(self, blobs):
        key = unique()
        data = os.urandom(8 * MiB)
        with blobs.open_upload(key) as upload:
            upload.write(data)
        assert blobs.get(key) == data

    def test_abort_leaves_no_multipart_upload(self, blobs):
        key = unique() + "/aborted.bin"
        upload = blobs.open_upload(key)
        upload.write(os.urandom(9 * MiB))
        assert upload.multipart
        assert [k for k, _ in blobs.list_multipart_uploads(key)] == [key]
        upload.abort()
        assert blobs.list_multipart_uploads(key) == []
        assert list(blobs.list_keys(key)) == []

    def test_exception_in_with_block_aborts(self, blobs):
        key = unique()
        with pytest.raises(RuntimeError):
            with blobs.open_upload(key) as upload:
                upload.write(os.urandom(9 * MiB))
                raise RuntimeError("client went away")
        assert blobs.list_multipart_uploads(key) == []
        assert list(blobs.list_keys(key)) == []

    def test_abort_after_close_deletes_object(self, blobs):
        key = unique()
        upload = blobs.open_upload(key)
        upload.write(b"stored then regretted")
        upload.close()
        upload.abort()
        with pytest.raises(BlobNotFound):
            blobs.get(key)

    def test_write_after_abort_fails(self, blobs):
        upload = blobs.open_upload(unique())
        upload.abort()
        with pytest.raises(BlobStoreError):
            upload.write(b"x")


class TestBucket:
    def test_ensure_bucket_creates_and_is_idempotent(self, make_blob_store, blob_backend):
        bucket = f"geomail-create-{secrets.token_hex(4)}"
        store = make_blob_store(bucket, create=False)
        store.ensure_bucket(create=True)
        store.ensure_bucket(create=True)
        store.put("k", b"v")
        assert store.get("k") == b"v"
        store.delete(["k"])
        if blob_backend == "s3":
            store.client.delete_bucket(Bucket=bucket)

    def test_missing_bucket_without_create(self, make_blob_store):
        bucket = f"geomail-missing-{secrets.token_hex(4)}"
        store = make_blob_store(bucket, create=False)
        with pytest.raises(BlobStoreError) as info:
            store.ensure_bucket(create=False)
        message = str(info.value)
        assert bucket in message and "does not exist" in message and "\n" not in message

    def test_part_size_below_s3_minimum_is_refused(self, make_blob_store):
        with pytest.raises(ValueError):
            make_blob_store(create=False, part_size=1024)

    def test_sizes_and_bucket_are_attributes(self, make_blob_store):
        store = make_blob_store(create=False, multipart_threshold=6 * MiB, part_size=7 * MiB)
        assert (store.multipart_threshold, store.part_size) == (6 * MiB, 7 * MiB)
        assert store.bucket in repr(store)


class TestMultipartApi:
    """create_upload / upload_part / complete_upload: what PipelinedUpload is built on."""

    def test_parts_make_one_object(self, blobs):
        key = unique("mp") + "/joined.bin"
        first, second = os.urandom(5 * MiB), os.urandom(1234)
        upload_id = blobs.create_upload(key)
        tokens = [(1, blobs.upload_part(key, upload_id, 1, first)),
                  (2, blobs.upload_part(key, upload_id, 2, bytearray(second)))]
        assert not blobs.exists(key)                     # not before complete
        blobs.complete_upload(key, upload_id, tokens)
        assert blobs.get(key) == first + second
        assert blobs.open_uploads(key) == []

    def test_a_part_sent_again_replaces_the_first(self, blobs):
        key = unique("mp") + "/again.bin"
        upload_id = blobs.create_upload(key)
        blobs.upload_part(key, upload_id, 1, b"first try")
        token = blobs.upload_part(key, upload_id, 1, b"second try")
        blobs.complete_upload(key, upload_id, [(1, token)])
        assert blobs.get(key) == b"second try"

    def test_a_small_part_before_the_last_is_refused(self, blobs):
        key = unique("mp") + "/small.bin"
        upload_id = blobs.create_upload(key)
        parts = [(n, blobs.upload_part(key, upload_id, n, b"tiny")) for n in (1, 2)]
        with pytest.raises(BlobStoreError):
            blobs.complete_upload(key, upload_id, parts)
        assert not blobs.exists(key)
        blobs.abort_upload(key, upload_id)

    def test_part_to_an_aborted_upload_fails(self, blobs):
        key = unique("mp") + "/gone.bin"
        upload_id = blobs.create_upload(key)
        blobs.abort_upload(key, upload_id)
        with pytest.raises(BlobStoreError):
            blobs.upload_part(key, upload_id, 1, b"late")
        assert blobs.open_uploads(key) == []


class TestErrorKinds:
    def test_missing_object_is_a_bug_not_temporary(self, blobs):
        with pytest.raises(BlobNotFound) as info:
            blobs.get(unique("missing"))
        assert classify(info.value) == BUG
        assert isinstance(info.value, BlobStoreError) and isinstance(info.value, KeyError)

    def test_a_store_error_is_temporary(self, make_blob_store):
        store = make_blob_store(f"geomail-never-made-{secrets.token_hex(4)}", create=False)
        with pytest.raises(BlobStoreError) as info:
            store.put("a/b/c", b"no bucket")
        assert classify(info.value) == TEMPORARY and not isinstance(info.value, BlobNotFound)


class TestLeakTools:
    """What the janitor and fsck need: listings with ages, exists, abort by id, remove."""

    def test_list_objects_with_size_and_time(self, blobs):
        prefix = unique("listed")
        blobs.put(prefix + "/a", b"12345")
        listed = list(blobs.list_objects(prefix))
        assert [(o.key, o.size) for o in listed] == [(prefix + "/a", 5)]
        age = datetime.datetime.now(datetime.timezone.utc) - listed[0].last_modified
        assert -60 < age.total_seconds() < 600
        assert blobs.exists(prefix + "/a") and not blobs.exists(prefix + "/b")
        blobs.delete([prefix + "/a"])

    def test_listing_by_prefix(self, blobs):
        """A prefix is a string prefix, not a directory; the order is unspecified
        (SeaweedFS lists directory by directory, S3 and the local store in key order)."""
        prefix = unique("order")
        keys = [f"{prefix}/b/1", f"{prefix}/a-c", f"{prefix}/a/2", f"{prefix}/a/10", f"{prefix}x/1"]
        for key in keys:
            blobs.put(key, b"x")
        assert sorted(blobs.list_keys(prefix + "/")) == sorted(keys[:4])
        assert sorted(blobs.list_keys(prefix + "/a")) == sorted(keys[1:4])
        assert list(blobs.list_keys(prefix + "/a/1")) == [keys[3]]
        assert sorted(blobs.list_keys(prefix)) == sorted(keys)
        assert list(blobs.list_keys(unique("nothing-here"))) == []
        blobs.delete(keys)

    def test_open_uploads_with_initiation_time_and_abort_by_id(self, blobs):
        key = unique("open") + "/left.bin"
        upload_id = blobs.create_upload(key)
        (found,) = blobs.open_uploads(key)
        assert (found.key, found.upload_id) == (key, upload_id)
        assert blobs.list_multipart_uploads(key) == [(key, upload_id)]
        age = datetime.datetime.now(datetime.timezone.utc) - found.initiated
        assert -60 < age.total_seconds() < 600
        blobs.abort_upload(key, upload_id)
        assert blobs.open_uploads(key) == []
        blobs.abort_upload(key, upload_id)          # already gone: not an error

    def test_remove_aborts_uploads_and_deletes_the_object(self, blobs):
        key = unique("remove") + "/x.bin"
        blobs.put(key, b"done")
        blobs.create_upload(key)
        blobs.remove(key)
        assert not blobs.exists(key) and blobs.open_uploads(key) == []
        blobs.remove(key)                            # nothing left: not an error
