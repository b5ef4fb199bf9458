"""The worker's attachment cache: bounded, least recently used out first, never stale."""

import os
import secrets

from geomail.blobs.cache import ObjectCache
from geomail.blobs.s3 import BlobStore
from tests.fixtures.services import S3_ACCESS_KEY, S3_SECRET_KEY


class TestObjectCache:
    def test_budget_bounds_memory_and_evicts_least_recently_used(self):
        cache = ObjectCache(800)              # objects of up to 100 bytes
        for name in "abcdefgh":
            cache.put("b", name, name.encode() * 100)
        assert cache.used == 800 and len(cache) == 8
        assert cache.get("b", "a") == b"a" * 100          # a is now the most recent
        cache.put("b", "i", b"i" * 100)
        assert cache.used == 800
        assert cache.get("b", "b") is None                 # the least recent went
        assert cache.get("b", "a") is not None and cache.get("b", "i") is not None

    def test_large_objects_are_not_kept(self):
        cache = ObjectCache(800)
        cache.put("b", "big", b"x" * 101)
        assert len(cache) == 0 and cache.used == 0

    def test_discard_and_replace_keep_the_count_right(self):
        cache = ObjectCache(800)
        cache.put("b", "k", b"1" * 50)
        cache.put("b", "k", b"2" * 70)
        assert cache.used == 70 and cache.get("b", "k") == b"2" * 70
        cache.discard("b", ["k", "never-there"])
        assert cache.used == 0 and cache.get("b", "k") is None

    def test_zero_budget_keeps_nothing(self):
        cache = ObjectCache(0)
        cache.put("b", "k", b"x")
        assert len(cache) == 0


def stores(endpoint, bucket, budget=4 * 1024 * 1024):
    """A store with a cache, and another one (no cache) to act behind its back."""
    cached = BlobStore(endpoint, bucket, S3_ACCESS_KEY, S3_SECRET_KEY, cache=ObjectCache(budget))
    plain = BlobStore(endpoint, bucket, S3_ACCESS_KEY, S3_SECRET_KEY)
    return cached, plain


class TestCachedReads:
    def test_a_whole_read_fills_the_cache_and_ranges_come_from_it(self, blob_store, s3_endpoint):
        cached, plain = stores(s3_endpoint, blob_store.bucket)
        key = f"c/{secrets.token_hex(6)}"
        data = os.urandom(150 * 1024)
        plain.put(key, data)
        assert b"".join(cached.get_range(key, 0, len(data))) == data
        plain.delete([key])                   # gone from S3; the cached copy still answers
        assert b"".join(cached.get_range(key, 0)) == data
        assert b"".join(cached.get_range(key, 70_000, 140_001)) == data[70_000:140_001]
        assert b"".join(cached.get_range(key, len(data) - 3, len(data) + 10)) == data[-3:]
        chunks = list(cached.get_range(key, 0))
        assert all(len(c) <= 64 * 1024 for c in chunks)

    def test_partial_reads_do_not_fill_it(self, blob_store, s3_endpoint):
        cached, plain = stores(s3_endpoint, blob_store.bucket)
        key = f"c/{secrets.token_hex(6)}"
        plain.put(key, b"0123456789")
        assert b"".join(cached.get_range(key, 2, 5)) == b"234"
        assert b"".join(cached.get_range(key, 0, 9)) == b"012345678"
        assert len(cached.cache) == 0

    def test_deleting_through_the_store_drops_the_cached_copy(self, blob_store, s3_endpoint):
        cached, _ = stores(s3_endpoint, blob_store.bucket)
        key = f"c/{secrets.token_hex(6)}"
        cached.put(key, b"attachment")
        assert cached.get(key) == b"attachment"
        assert (cached.bucket, key) in cached.cache
        cached.delete([key])
        assert (cached.bucket, key) not in cached.cache

    def test_objects_larger_than_the_limit_stream(self, blob_store, s3_endpoint):
        cached, plain = stores(s3_endpoint, blob_store.bucket, budget=8 * 1024 * 1024)
        key = f"c/{secrets.token_hex(6)}"
        data = os.urandom(1024 * 1024 + 1)
        plain.put(key, data)
        assert b"".join(cached.get_range(key, 0)) == data
        assert len(cached.cache) == 0
