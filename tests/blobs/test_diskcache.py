"""The host's attachment disk cache: bounded, LRU, atomic, shared, and never trusted over S3."""

import hashlib
import os
import subprocess
import sys
import time

from geomail.blobs import diskcache as diskcache_module
from geomail.blobs.diskcache import WIRE_HEADER, DiskCache
from geomail.blobs.writethrough import WriteThroughStore

BUCKET = "bucket"


def digest(data):
    return hashlib.sha256(data).hexdigest()


def read(cache, key, data, start=0, end=None):
    chunks = cache.read(BUCKET, key, digest(data), start, end)
    return None if chunks is None else b"".join(chunks)


def files_in(cache):
    return sorted(name for _, _, names in os.walk(cache.objects_dir) for name in names)


def age(cache, key, seconds):
    """Make the cached file of key look last used ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(cache.path(BUCKET, key), (then, then))


class TestBound:
    def test_sweep_keeps_the_total_under_the_bound(self, tmp_path):
        cache = DiskCache(tmp_path, budget=8000)          # objects of up to 1000 bytes
        for n in range(20):
            cache.write(BUCKET, f"k{n}", bytes([n]) * 1000)
            assert cache.usage() <= 8000
        on_disk = sum(os.path.getsize(os.path.join(root, name))
                      for root, _, names in os.walk(cache.objects_dir) for name in names)
        assert on_disk == cache.usage() and on_disk <= 8000
        assert read(cache, "k19", bytes([19]) * 1000) == bytes([19]) * 1000

    def test_least_recently_used_goes_first(self, tmp_path):
        cache = DiskCache(tmp_path, budget=4000, max_object=1000, touch_after=0)
        objects = {key: key.encode() * 500 for key in ("aa", "bb", "cc", "dd")}   # 1000 each
        for i, (key, data) in enumerate(objects.items()):
            cache.write(BUCKET, key, data)
            age(cache, key, 100 - i)                       # aa oldest ... dd newest
        assert read(cache, "aa", objects["aa"]) == objects["aa"]    # aa used now: newest
        cache.write(BUCKET, "ee", b"e" * 1000)            # 5000 > 4000: sweep down to 3600
        assert read(cache, "bb", objects["bb"]) is None and read(cache, "cc", objects["cc"]) is None
        for key in ("aa", "dd"):
            assert read(cache, key, objects[key]) == objects[key]
        assert read(cache, "ee", b"e" * 1000) == b"e" * 1000
        assert cache.usage() == 3000

    def test_large_objects_are_not_kept(self, tmp_path):
        cache = DiskCache(tmp_path, budget=8000)
        cache.write(BUCKET, "big", b"x" * 1001)
        assert files_in(cache) == [] and cache.usage() == 0

    def test_replacing_and_discarding_keep_the_tally_right(self, tmp_path):
        cache = DiskCache(tmp_path, budget=80000)
        cache.write(BUCKET, "k", b"1" * 500)
        cache.write(BUCKET, "k", b"2" * 700)
        assert cache.usage() == 700 and read(cache, "k", b"2" * 700) == b"2" * 700
        cache.discard(BUCKET, "k")
        assert cache.usage() == 0 and files_in(cache) == []


def corrupt(path, offset, keep_mtime=False):
    """Flip one byte of a file in place (the same inode and size)."""
    stat = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


class TestIntegrity:
    def test_a_corrupt_file_is_a_miss_and_is_removed(self, tmp_path):
        cache = DiskCache(tmp_path, budget=80000)
        data = os.urandom(5000)
        cache.write(BUCKET, "k", data)
        path = cache.path(BUCKET, "k")
        corrupt(path, 1234, keep_mtime=True)
        other = DiskCache(tmp_path, budget=80000)         # another worker, or after a restart
        assert read(other, "k", data) is None
        assert not os.path.exists(path) and other.usage() == 0

    def test_a_file_is_checked_again_once_its_mtime_or_size_changed(self, tmp_path):
        """What this process wrote or checked is trusted only while inode, size and mtime
        stay as they were."""
        cache = DiskCache(tmp_path, budget=80000)
        data = os.urandom(5000)
        cache.write(BUCKET, "k", data)
        path = cache.path(BUCKET, "k")
        assert read(cache, "k", data) == data
        corrupt(path, 10)
        os.utime(path, (1, 1))                            # surely not the mtime it was written with
        assert read(cache, "k", data) is None and not os.path.exists(path)
        cache.write(BUCKET, "k", data)
        assert read(cache, "k", data) == data
        with open(path, "ab") as f:
            f.write(b"x")
        assert read(cache, "k", data) is None

    def test_a_checked_file_is_read_without_hashing_again(self, tmp_path, monkeypatch):
        cache = DiskCache(tmp_path, budget=80000)
        data = os.urandom(5000)
        DiskCache(tmp_path, budget=80000).write(BUCKET, "k", data)     # another worker's file
        recorded, hashed = digest(data), []
        real = diskcache_module.hashlib.sha256
        monkeypatch.setattr(diskcache_module.hashlib, "sha256",     # counts hashes of the file
                            lambda *a: hashed.append(a[0] == data) or real(*a))
        for _ in range(3):
            assert b"".join(cache.read(BUCKET, "k", recorded)) == data
        assert sum(hashed) == 1

    def test_a_truncated_file_is_a_miss(self, tmp_path):
        cache = DiskCache(tmp_path, budget=80000)
        data = os.urandom(5000)
        cache.write(BUCKET, "k", data)
        os.truncate(cache.path(BUCKET, "k"), 4000)
        assert read(cache, "k", data) is None

    def test_writes_are_atomic(self, tmp_path):
        """Written in tmp/ and renamed: objects/ never holds a partial file, tmp/ ends empty,
        and a crash's leftover in tmp/ is never read (and a sweep removes it once old)."""
        cache = DiskCache(tmp_path, budget=10 ** 9)
        data = os.urandom(300 * 1024)                     # past INLINE as well
        cache.write(BUCKET, "k", data)
        assert os.listdir(cache.tmp_dir) == []
        assert os.path.getsize(cache.path(BUCKET, "k")) == len(data)
        leftover = os.path.join(cache.tmp_dir, "123-crash")
        with open(leftover, "wb") as f:
            f.write(data[:1000])
        os.utime(leftover, (0, 0))
        assert read(cache, "k", data) == data
        cache.sweep()
        assert os.listdir(cache.tmp_dir) == []

    def test_ranges_are_cut_from_the_verified_object(self, tmp_path):
        cache = DiskCache(tmp_path, budget=10 ** 9)
        data = os.urandom(200 * 1024)
        cache.write(BUCKET, "k", data)
        assert read(cache, "k", data, 1000, 150_000) == data[1000:150_000]
        assert read(cache, "k", data, 70_000) == data[70_000:]


class TestWireForms:
    """Base64 segments as rendered, kept beside their object with a digest of their own."""

    def test_a_wire_form_is_kept_and_read_back(self, tmp_path):
        cache = DiskCache(tmp_path, budget=10 ** 6)
        wire = b"QUJD\r\n" * 1000
        assert cache.read_wire(BUCKET, "k", "b76e0-3000") is None
        cache.write_wire(BUCKET, "k", "b76e0-3000", wire)
        assert cache.read_wire(BUCKET, "k", "b76e0-3000") == wire
        assert DiskCache(tmp_path, budget=10 ** 6).read_wire(BUCKET, "k", "b76e0-3000") == wire
        assert cache.read_wire(BUCKET, "k", "b76n0-3000") is None      # another layout
        assert cache.usage() == len(wire) + WIRE_HEADER

    def test_a_corrupt_or_foreign_wire_file_is_a_miss_and_is_removed(self, tmp_path):
        cache = DiskCache(tmp_path, budget=10 ** 6)
        wire = os.urandom(30_000)
        cache.write_wire(BUCKET, "k", "b76e0-1", wire)
        path = cache.wire_path(BUCKET, "k", "b76e0-1")
        corrupt(path, WIRE_HEADER + 20_000, keep_mtime=True)
        other = DiskCache(tmp_path, budget=10 ** 6)
        assert other.read_wire(BUCKET, "k", "b76e0-1") is None and not os.path.exists(path)
        cache.write_wire(BUCKET, "k", "b76e0-1", wire)
        with open(path, "r+b") as f:
            f.write(b"XXXX")                                 # not a wire-form file at all
        assert DiskCache(tmp_path, budget=10 ** 6).read_wire(BUCKET, "k", "b76e0-1") is None
        assert other.usage() == 0

    def test_discard_removes_the_object_and_its_wire_forms(self, tmp_path):
        cache = DiskCache(tmp_path, budget=10 ** 6)
        cache.write(BUCKET, "k", b"o" * 900)
        cache.write(BUCKET, "other", b"p" * 100)
        for form in ("b76e0-900", "b64n0-900"):
            cache.write_wire(BUCKET, "k", form, b"w" * 1200)
        assert cache.holds(BUCKET, "k")
        cache.discard(BUCKET, "k")
        assert files_in(cache) == [os.path.basename(cache.path(BUCKET, "other"))]
        assert cache.usage() == 100 and not cache.holds(BUCKET, "k")

    def test_wire_forms_count_in_the_bound(self, tmp_path):
        cache = DiskCache(tmp_path, budget=20_000)
        for n in range(20):
            cache.write_wire(BUCKET, f"k{n}", "b76e0-1", bytes([n]) * 2000)
            assert cache.usage() <= 20_000
        assert cache.read_wire(BUCKET, "k19", "b76e0-1") == bytes([19]) * 2000

    def test_holds_wire_forms_without_the_object(self, tmp_path):
        cache = DiskCache(tmp_path, budget=10 ** 6)
        cache.write_wire(BUCKET, "k", "b76e0-9", b"w" * 100)
        assert cache.holds(BUCKET, "k", ["b76e0-9"])
        assert not cache.holds(BUCKET, "k", ["b76e0-9", "b76n9-12"])
        assert not cache.holds(BUCKET, "k")


class TestSharing:
    def test_a_restart_keeps_entries_and_tally(self, tmp_path):
        cache = DiskCache(tmp_path, budget=80000)
        cache.write(BUCKET, "k", b"kept" * 100)
        cache.close()
        again = DiskCache(tmp_path, budget=80000)
        assert read(again, "k", b"kept" * 100) == b"kept" * 100
        assert again.usage() == 400

    def test_two_processes_share_one_directory(self, tmp_path):
        cache = DiskCache(tmp_path, budget=80000)
        cache.write(BUCKET, "mine", b"m" * 300)
        script = (
            "import sys, hashlib\n"
            "from geomail.blobs.diskcache import DiskCache\n"
            "c = DiskCache(sys.argv[1], 80000)\n"
            "c.write('bucket', 'theirs', b't' * 200)\n"
            "got = c.read('bucket', 'mine', hashlib.sha256(b'm' * 300).hexdigest())\n"
            "sys.exit(0 if got is not None and b''.join(got) == b'm' * 300 else 3)\n")
        subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True,
                       env={**os.environ, "PYTHONPATH": os.getcwd()})
        assert read(cache, "theirs", b"t" * 200) == b"t" * 200
        assert cache.usage() == 500


class TestReadThrough:
    def test_a_miss_reads_the_store_and_fills_the_cache(self, tmp_path, blobs):
        cache = DiskCache(tmp_path / "cache", budget=10 ** 8)
        data = os.urandom(100_000)
        blobs.put("acct/tok/f.bin", data)
        chunks = cache.read_through(blobs, blobs.bucket, "acct/tok/f.bin", digest(data),
                                    len(data), 10, 90_000)
        assert b"".join(chunks) == data[10:90_000]
        blobs.delete(["acct/tok/f.bin"])                   # from now on only the cache has it
        chunks = cache.read_through(blobs, blobs.bucket, "acct/tok/f.bin", digest(data),
                                    len(data), 0, len(data))
        assert b"".join(chunks) == data

    def test_a_corrupt_copy_is_replaced_from_the_store(self, tmp_path, blobs):
        cache = DiskCache(tmp_path / "cache", budget=10 ** 8)
        data = os.urandom(50_000)
        store = WriteThroughStore(blobs, cache)
        store.put("acct/tok/g.bin", data)                  # written through
        path = cache.path(blobs.bucket, "acct/tok/g.bin")
        with open(path, "wb") as f:
            f.write(b"not the object")
        chunks = cache.read_through(store, blobs.bucket, "acct/tok/g.bin", digest(data),
                                    len(data), 0, len(data))
        assert b"".join(chunks) == data
        with open(path, "rb") as f:
            assert f.read() == data                        # replaced with S3's bytes
        store.delete(["acct/tok/g.bin"])
        assert not os.path.exists(path)
