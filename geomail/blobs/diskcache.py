"""A host's disk cache of attachment objects, shared by its workers, in front of S3.

A FETCH of a thousand messages reads about a hundred attachments; from S3
each costs a round trip and CPU on the S3 server (SeaweedFS: ~0.8 ms per
GET), while Dovecot reads a Maildir from the page cache.  So every object up
to ``max_object`` bytes is also kept here as a plain file, written when it
is uploaded (``geomail.blobs.writethrough``) and on a read that missed
(``read_through``), the way Dovecot's obox keeps an fscache in front of its
object store.  ``--attachment-cache-dir`` names the directory,
``--attachment-cache-size`` bounds it in bytes.

Layout under the directory::

    objects/ab/ab12...   one object: its bytes only, named sha256(bucket "/" key)
    objects/ab/ab12....b76e0-102400
                         a wire form of that object: a range of it as the message holds
                         it (base64 lines), behind a header with its own digest
    tmp/                 files being written (renamed into objects/ when whole)
    usage                8 bytes: the tally of bytes in objects/, under fcntl lock
    sweep.lock           held by the one process sweeping

Plain files under one directory: every worker of the host (and a restarted
one) reads what any other wrote.  A file is written to ``tmp/`` and renamed
into place (atomic: a reader sees the old state or the whole file), without
fsync: a cache may lose what a crash cut short, and the checksum catches it.

Trust: never over S3.  A file is checked before this process first serves
it: an object against the SHA-256 the attachments row recorded at delivery
(``attachments.sha256``, of the decoded bytes, which is what the object
holds), a wire form against the SHA-256 digest in its header (written at
delivery from the encoded bytes the parser proved, or from an object that
had passed its check).  A file that differs is deleted and
the object read from S3 again (and kept anew).  Once checked, or written by
this process, a file is trusted while its inode, size and mtime stay the
same (``_trusted``): files are never changed in place (a new one is renamed
over the old), a crash that cut a write short restarts the process with
nothing trusted, and a FETCH of a thousand messages does not hash 15 MB.

Wire forms: a base64 attachment goes out re-encoded in its original line
layout; encoding costs more CPU than reading a file, so delivery keeps the
segment as received (``geomail.ingest``), a FETCH that finds none renders
it and keeps the result (``read_wire``, ``write_wire``), and every FETCH
after, in any worker of the host, sends the file's bytes as they are.
They count in the same bound and sweep as objects, and go with their object
(``discard``).

Bound: writes add their size to the shared tally (a lock, a pread and a
pwrite); when the tally passes the bound, the writer sweeps (unless another
process is already sweeping): one scan of ``objects/``, the least recently
used files removed until LOW_WATER of the bound is left, and the tally set
to what the scan found (which also repairs any drift a crash left).  Reads
never scan: "used" is the file's mtime, which a read moves forward (one
``futimens``) when it is older than ``touch_after`` seconds.

Blocking: files up to INLINE bytes are read and written on the event loop
(from the page cache that is tens of microseconds); larger ones, and the
sweep, in gevent's native threadpool when threading is monkey-patched.
Objects larger than ``max_object`` are never cached: they stream from S3.
"""

import errno
import fcntl
import hashlib
import logging
import os
import secrets
import struct
import sys
import time
from collections import OrderedDict

from geomail import metrics

log = logging.getLogger("geomail.blobs.diskcache")

MiB = 1024 * 1024
MAX_OBJECT = 8 * MiB        # the default multipart threshold: every single-PUT object
INLINE = 256 * 1024         # read/written on the event loop up to this size
PIECE = 1 * MiB             # what a read yields at a time at most
LOW_WATER = 0.9             # a sweep leaves this share of the bound
TOUCH_AFTER = 60.0          # seconds: LRU granularity, so most reads write no metadata
STALE_TMP = 3600.0          # seconds after which a tmp/ file is a crash's leftover
FILE_MODE = 0o600
DIR_MODE = 0o700
_TALLY = struct.Struct("<q")
WIRE_MAGIC = b"GMW1"        # a wire-form file: magic, SHA-256 of the rest, the rest
WIRE_DIGEST = 32
WIRE_HEADER = len(WIRE_MAGIC) + WIRE_DIGEST
TRUSTED_FILES = 20_000      # files remembered as checked, per process (~300 bytes each)


def _off_loop(function, *args):
    """function(*args), in gevent's native threadpool when threading is monkey-patched."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        import gevent
        return gevent.get_hub().threadpool.apply(function, args)
    return function(*args)


def _in_background(function):
    """Run function in a greenlet of its own under gevent (the writer goes on), else now."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        import gevent
        gevent.spawn(function)
    else:
        function()


def _chunks(data, start, end):
    """data[start:end] in pieces of at most PIECE bytes: the whole object as it is (no
    copy: the reader's join, bytes() and base64 take it as it is), else bytes slices."""
    end = len(data) if end is None else min(end, len(data))
    if start == 0 and end == len(data) and end <= PIECE:
        return (data,) if data else ()
    return (data[i:min(i + PIECE, end)] for i in range(start, end, PIECE))


def _read_fd(fd, size):
    """The file's ``size`` bytes, or None when it holds fewer (one read from the page cache)."""
    data = os.read(fd, size)
    if len(data) == size:
        return data
    pieces = [data]
    got = len(data)
    while got < size:
        piece = os.read(fd, size - got)
        if not piece:
            return None
        pieces.append(piece)
        got += len(piece)
    return b"".join(pieces)


def _write_file(path, pieces):
    """Write the pieces to a new file; its os.stat_result once written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        views = [memoryview(piece).cast("B") for piece in pieces if len(piece)]
        while views:
            n = os.writev(fd, views)
            while views and n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            if views and n:
                views[0] = views[0][n:]
        return os.fstat(fd)
    finally:
        os.close(fd)


def _wire_digest(data):
    """SHA-256: with the CPU's SHA instructions faster here than BLAKE2b (2 vs 1.4 GB/s)."""
    return hashlib.sha256(data).digest()


def _identity(stat):
    """What must not change for a checked file to stay trusted."""
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class DiskCache:
    """Attachment objects as files under ``directory``, at most ``budget`` bytes in all."""

    def __init__(self, directory, budget, max_object=None, touch_after=TOUCH_AFTER):
        self.directory = os.path.abspath(directory)
        self.budget = int(budget)
        # by default an eighth of the bound at most, so one object never sweeps out the rest
        self.max_object = min(MAX_OBJECT, self.budget // 8) if max_object is None else max_object
        self.touch_after = touch_after
        self.objects_dir = os.path.join(self.directory, "objects")
        self.tmp_dir = os.path.join(self.directory, "tmp")
        for path in (self.directory, self.objects_dir, self.tmp_dir):
            os.makedirs(path, mode=DIR_MODE, exist_ok=True)
        self._tally_fd = os.open(os.path.join(self.directory, "usage"),
                                 os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        self._sweep_path = os.path.join(self.directory, "sweep.lock")
        self.counters = metrics.get().attachment_disk_cache
        self._count = {event: self.counters.labels(event).inc
                       for event in ("hit", "miss", "corrupt", "write", "wire_write")}
        self._checked = OrderedDict()     # path -> _identity of the file as checked/written
        self._sweeping = False

    def __repr__(self):
        return f"DiskCache({self.directory}, {self.budget} bytes)"

    def close(self):
        os.close(self._tally_fd)

    def wants(self, size):
        """Would an object of ``size`` bytes be kept?"""
        return 0 < size <= self.max_object

    def path(self, bucket, key):
        digest = hashlib.sha256(f"{bucket}/{key}".encode("utf-8", "surrogateescape")).hexdigest()
        return os.path.join(self.objects_dir, digest[:2], digest)

    def wire_path(self, bucket, key, form):
        """The file of a wire form of the object; ``form`` (letters, digits, '-') names
        which range in which layout (``geomail.reader.wire_form``)."""
        return self.path(bucket, key) + "." + form

    def holds(self, bucket, key, forms=()):
        """Is the object, or each of the given wire forms of it, here (unchecked)?"""
        if os.path.exists(self.path(bucket, key)):
            return True
        return bool(forms) and all(os.path.exists(self.wire_path(bucket, key, form))
                                   for form in forms)

    # -- trust ---------------------------------------------------------------------

    def _trusted(self, path, stat):
        return self._checked.get(path) == _identity(stat)

    def _trust(self, path, stat):
        """Remember the file as checked (or written here) as it is now."""
        checked = self._checked
        checked[path] = _identity(stat)
        if len(checked) > TRUSTED_FILES:
            checked.popitem(last=False)

    # -- reading ---------------------------------------------------------------

    def _open(self, path):
        """(fd, stat) of a cached file, or None when there is none (counted as a miss)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._count["miss"]()
            return None
        try:
            return fd, os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise

    def _contents(self, fd, stat):
        if stat.st_size > INLINE:
            return _off_loop(_read_fd, fd, stat.st_size)
        return _read_fd(fd, stat.st_size)

    def _used(self, fd, path, stat):
        """A hit: the file's mtime moved forward when older than touch_after."""
        if time.time() - stat.st_mtime > self.touch_after:
            trusted = self._trusted(path, stat)
            os.utime(fd)                              # used now: last out of the sweep
            if trusted:
                self._trust(path, os.fstat(fd))
        self._count["hit"]()

    def read(self, bucket, key, sha256, start=0, end=None):
        """Chunks of bytes [start, end) of the cached object, or None (not cached, or
        its file did not match ``sha256``, the hex digest recorded for it: then deleted)."""
        path = self.path(bucket, key)
        opened = self._open(path)
        if opened is None:
            return None
        fd, stat = opened
        try:
            data = self._contents(fd, stat)
            if not self._trusted(path, stat):
                if data is None or hashlib.sha256(data).hexdigest() != sha256:
                    self._discard_corrupt(path, stat, bucket, key)
                    return None
                self._trust(path, stat)
            elif data is None:                        # cannot be: trusted means same size
                return None
            self._used(fd, path, stat)
        finally:
            os.close(fd)
        return _chunks(data, start, end)

    def read_wire(self, bucket, key, form):
        """The bytes of a wire form of the object, or None (not here, or not intact:
        then deleted)."""
        path = self.wire_path(bucket, key, form)
        opened = self._open(path)
        if opened is None:
            return None
        fd, stat = opened
        try:
            header = os.read(fd, WIRE_HEADER)       # then the body, read as it is (no copy)
            if len(header) != WIRE_HEADER or header[:len(WIRE_MAGIC)] != WIRE_MAGIC:
                self._discard_corrupt(path, stat, bucket, key, "wire-form header")
                return None
            size = stat.st_size - WIRE_HEADER
            body = _off_loop(_read_fd, fd, size) if size > INLINE else _read_fd(fd, size)
            if body is None:
                self._discard_corrupt(path, stat, bucket, key, "wire-form size")
                return None
            if not self._trusted(path, stat):
                if _wire_digest(body) != header[len(WIRE_MAGIC):]:
                    self._discard_corrupt(path, stat, bucket, key, "wire-form digest")
                    return None
                self._trust(path, stat)
            self._used(fd, path, stat)
        finally:
            os.close(fd)
        return body

    def _discard_corrupt(self, path, stat, bucket, key, what="recorded sha256"):
        self._count["corrupt"]()
        self._checked.pop(path, None)
        log.warning("attachment cache: %s (bucket %s key %s) does not match its %s; "
                    "removed, reading the object from S3", path, bucket, key, what)
        try:
            if os.stat(path).st_ino == stat.st_ino:     # not a good copy renamed in meanwhile
                os.unlink(path)
                self._add(-stat.st_size)
        except OSError:
            pass

    def read_through(self, store, bucket, key, sha256, size, start, end):
        """Chunks of bytes [start, end) of an object: from here if cached and intact, else
        the whole object from ``store`` (kept here when it matches ``sha256``)."""
        if not sha256 or not self.wants(size):
            return store.get_range(key, start, end)
        cached = self.read(bucket, key, sha256, start, end)
        if cached is not None:
            return cached
        data = b"".join(store.get_range(key, 0, None))
        if hashlib.sha256(data).hexdigest() == sha256:
            self.write(bucket, key, data)
        else:   # the store is the truth; its bytes go out, but are not kept
            log.warning("attachment cache: bucket %s key %s from S3 does not match its "
                        "recorded sha256; not cached", bucket, key)
        return _chunks(data, start, end)

    # -- writing ---------------------------------------------------------------

    def write(self, bucket, key, data):
        """Keep ``data`` as the object (bucket, key); a failure is logged, never raised."""
        if self.wants(len(data)):
            self._keep(self.path(bucket, key), (data,), bucket, key)

    def write_wire(self, bucket, key, form, data):
        """Keep ``data``, rendered from the intact object, as its wire form ``form``."""
        if self.wants(len(data)):
            header = WIRE_MAGIC + _wire_digest(data)
            self._keep(self.wire_path(bucket, key, form), (header, data), bucket, key,
                       "wire_write")

    def _keep(self, path, pieces, bucket, key, event="write"):
        size = sum(len(piece) for piece in pieces)
        try:
            if size > INLINE:
                replaced = _off_loop(self._write, path, pieces)
            else:
                replaced = self._write(path, pieces)
        except OSError as exc:
            log.warning("attachment cache: cannot write %s key %s under %s: %s", bucket, key,
                        self.directory, exc)
            return
        self._count[event]()
        if self._add(size - replaced) > self.budget and not self._sweeping:
            self._sweeping = True
            _in_background(self.sweep)

    def _write(self, path, pieces):
        """tmp file, then rename over the final name; returns the bytes it replaced."""
        tmp = os.path.join(self.tmp_dir, f"{os.getpid()}-{secrets.token_hex(8)}")
        try:
            stat = _write_file(tmp, pieces)
            try:
                replaced = os.stat(path).st_size
            except FileNotFoundError:
                replaced = 0
            try:
                os.replace(tmp, path)
            except FileNotFoundError:               # its objects/xx/ directory is new
                os.makedirs(os.path.dirname(path), mode=DIR_MODE, exist_ok=True)
                os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self._trust(path, stat)                     # these bytes were whole and intact
        return replaced

    def discard(self, bucket, key):
        """Forget the object and its wire forms (deleted from the store)."""
        path = self.path(bucket, key)
        prefix = os.path.basename(path) + "."
        paths = [path]
        try:
            paths += [entry.path for entry in os.scandir(os.path.dirname(path))
                      if entry.name.startswith(prefix)]
        except OSError:
            pass
        freed = 0
        for each in paths:
            self._checked.pop(each, None)
            try:
                size = os.stat(each).st_size
                os.unlink(each)
            except OSError:
                continue
            freed += size
        if freed:
            self._add(-freed)

    # -- the bound ---------------------------------------------------------------

    def usage(self):
        """The shared tally of cached bytes."""
        return self._tally(0)

    def _add(self, delta):
        """Add delta to the shared tally; the new value."""
        try:
            return self._tally(delta)
        except OSError as exc:
            log.warning("attachment cache: tally in %s failed: %s", self.directory, exc)
            return 0

    def _tally(self, delta, set_to=None):
        fcntl.lockf(self._tally_fd, fcntl.LOCK_EX)
        try:
            raw = os.pread(self._tally_fd, _TALLY.size, 0)
            value = _TALLY.unpack(raw)[0] if len(raw) == _TALLY.size else 0
            new = max(0, value + delta) if set_to is None else max(0, set_to)
            if new != value or len(raw) != _TALLY.size:
                os.pwrite(self._tally_fd, _TALLY.pack(new), 0)
            return new
        finally:
            fcntl.lockf(self._tally_fd, fcntl.LOCK_UN)

    def sweep(self):
        """Remove least recently used files until LOW_WATER of the bound is left.

        One process at a time (sweep.lock); the file work runs off the event
        loop.  Returns the bytes removed, or None when another process is
        sweeping or the sweep failed.
        """
        try:
            removed = _off_loop(self._sweep_files)
        except OSError as exc:
            log.warning("attachment cache: sweep of %s failed: %s", self.directory, exc)
            return None
        finally:
            self._sweeping = False
        if removed:
            self.counters.labels("evicted").inc(removed)
        return removed

    def _sweep_files(self):
        fd = os.open(self._sweep_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    return None
                raise
            files, total = self._scan()
            removed, target = 0, int(self.budget * LOW_WATER)
            files.sort()
            for _, size, path in files:
                if total - removed <= target:
                    break
                try:
                    os.unlink(path)
                except OSError:
                    continue
                removed += size
            self._tally(0, set_to=total - removed)
            self._remove_stale_tmp()
            return removed
        finally:
            os.close(fd)

    def _scan(self):
        """([(mtime_ns, size, path)], total bytes) of every cached file."""
        files, total = [], 0
        for sub in os.scandir(self.objects_dir):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(sub.path):
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                files.append((stat.st_mtime_ns, stat.st_size, entry.path))
                total += stat.st_size
        return files, total

    def _remove_stale_tmp(self):
        cutoff = time.time() - STALE_TMP
        for entry in os.scandir(self.tmp_dir):
            try:
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:
                pass


def open_disk_cache(config):
    """The host's DiskCache per --attachment-cache-dir, or None (off, or the embedded
    backend, whose objects are local files already)."""
    from geomail.config import backend
    directory = getattr(config, "attachment_cache_dir", "")
    size = getattr(config, "attachment_cache_size", 0)
    if not directory or not size or backend(config) != "mysql":
        return None
    return DiskCache(directory, size)
