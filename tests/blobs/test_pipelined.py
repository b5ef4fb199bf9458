"""PipelinedUpload and ByteBudget, on both blob stores (real SeaweedFS, local directory)."""

import hashlib
import os
import threading
import time

import pytest

from geomail.blobs.errors import BlobStoreError
from geomail.blobs.localdir import LocalBlobStore
from geomail.blobs.pipelined import ByteBudget, PipelinedUpload
from geomail.blobs.s3 import BlobStore

MiB = 1024 * 1024


@pytest.fixture
def store(make_blob_store):
    return make_blob_store(multipart_threshold=5 * MiB, part_size=5 * MiB)


def write_in_pieces(upload, data, piece=256 * 1024):
    for i in range(0, len(data), piece):
        upload.write(data[i:i + piece])


def test_small_object_is_one_put(store):
    budget = ByteBudget(64 * MiB)
    upload = PipelinedUpload(store, "pipelined/small", budget)
    write_in_pieces(upload, b"x" * 1000)
    assert upload.close() == 1000 and not upload.multipart
    assert store.get("pipelined/small") == b"x" * 1000
    assert budget.used == 0


def test_multipart_round_trip_and_budget_released(store):
    data = os.urandom(17 * MiB + 123)
    budget = ByteBudget(64 * MiB)
    upload = PipelinedUpload(store, "pipelined/big", budget)
    peak = 0
    for i in range(0, len(data), MiB):
        upload.write(data[i:i + MiB])
        peak = max(peak, budget.used)
    assert upload.close() == len(data) and upload.multipart
    assert hashlib.sha256(store.get("pipelined/big")).digest() == hashlib.sha256(data).digest()
    assert budget.used == 0
    assert peak <= 2 * store.part_size + MiB     # one part in flight, one filling


def test_abort_leaves_no_object_and_no_multipart_upload(store):
    budget = ByteBudget(64 * MiB)
    upload = PipelinedUpload(store, "pipelined/aborted", budget)
    write_in_pieces(upload, os.urandom(12 * MiB))
    assert upload.multipart
    upload.abort()
    assert budget.used == 0
    assert "pipelined/aborted" not in store.list_keys("pipelined/")
    assert not [u for u in store.list_multipart_uploads("pipelined/aborted")]


def test_abort_after_close_deletes_the_object(store):
    upload = PipelinedUpload(store, "pipelined/closed", ByteBudget(MiB))
    upload.write(b"data")
    upload.close()
    upload.abort()
    assert "pipelined/closed" not in store.list_keys("pipelined/")


def test_budget_makes_writers_wait():
    budget = ByteBudget(10)
    budget.acquire(8)
    acquired = threading.Event()

    def second():
        budget.acquire(5)
        acquired.set()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.2)
    assert not acquired.is_set()          # 8 + 5 > 10: waits
    budget.release(8)
    assert acquired.wait(2)
    thread.join()
    assert budget.used == 5


def test_budget_lets_an_oversized_request_through_when_empty():
    budget = ByteBudget(10)
    budget.acquire(50)                    # never deadlocks on a single large request
    assert budget.used == 50


def test_s3_unreachable_store_fails_cleanly():
    store = BlobStore("http://127.0.0.1:9", "nowhere-bucket", "k", "s",
                      multipart_threshold=5 * MiB, part_size=5 * MiB, connect_timeout=1,
                      max_attempts=1)
    budget = ByteBudget(64 * MiB)
    upload = PipelinedUpload(store, "k", budget)
    upload.write(b"x" * 100)
    with pytest.raises(BlobStoreError):
        upload.close()
    assert budget.used == 0


def test_local_failed_write_fails_cleanly_and_leaves_nothing(tmp_path):
    """The message directory cannot be made (a file is in its place): the put and the
    multipart complete fail with a definite BlobStoreError, and abort leaves nothing."""
    store = LocalBlobStore(tmp_path / "data", "b", multipart_threshold=5 * MiB, part_size=5 * MiB)
    store.ensure_bucket()
    os.makedirs(store.bucket_dir + "/1")
    with open(store.bucket_dir + "/1/token", "wb"):
        pass
    budget = ByteBudget(64 * MiB)
    for size in (100, 12 * MiB):                              # one put; a multipart upload
        upload = PipelinedUpload(store, "1/token/att.bin", budget)
        write_in_pieces(upload, b"x" * size)
        with pytest.raises(BlobStoreError) as info:
            upload.close()
        assert "1/token" in str(info.value) and "\n" not in str(info.value)
        assert not info.value.uncertain and upload.removed is True
        assert budget.used == 0
        assert list(store.list_keys()) == ["1/token"] and store.open_uploads() == []
        assert sorted(os.listdir(store.bucket_dir + "/1")) == ["token"]
