"""Attachment bodies in a local directory: the embedded default's blob store.

``LocalBlobStore`` has the public API of ``geomail.blobs.s3.BlobStore`` and
the bucket's key layout: the object ``{account}/{message}/{filename}`` of
bucket ``b`` is the file ``{root}/b/{account}/{message}/{filename}``, so a
directory can be copied to a bucket (or back) key for key.

Crash safety: every object is written to a temporary file in its final
directory (``.geomail-tmp-*``, never listed), written, fsynced, renamed over
its final name with ``os.replace`` and the directory fsynced; a crash leaves
the old state or the whole object, never part of one under the final name.
Multipart uploads keep their parts in ``{root}/.uploads/{bucket}/{upload_id}/``
(the key in the file ``key``, whose mtime is the upload's initiation time);
complete concatenates the parts into a temporary file the same way.  Parts
themselves are not fsynced: an upload id lives only in the memory of the
process that began it, so after a crash its parts are only ever aborted.

Blocking: under gevent, a few MiB of write plus fsync take milliseconds to
seconds (a slow disk, a busy journal) and would freeze every session of the
worker.  Each operation's file-system calls therefore run in gevent's native
threadpool (``gevent.get_hub().threadpool.apply``) when threading is
monkey-patched, and directly otherwise.  Reads go in blocks of 1 MiB per
threadpool hop, handed out as 64 KiB chunks like S3's ``get_range``.

Errors: OSError becomes BlobStoreError naming the operation and the path
(ENOSPC, EIO, EACCES and friends say "temporary"); a missing object is
BlobNotFound; a key that could leave the bucket directory is InvalidKey.
A local directory answers definitely, so ``uncertain`` is always false.
"""

import datetime
import errno
import os
import secrets
import shutil
import stat
import sys

from geomail.blobs.errors import (BlobNotFound, BlobStoreError, InvalidKey, OpenUpload,
                                  StoredObject)
from geomail.blobs.upload import MIN_PART_SIZE, MiB, Upload, check_sizes

CHUNK_SIZE = 64 * 1024      # what get_range yields at a time (as S3's)
READ_BLOCK = 1 * MiB        # read per threadpool hop
COPY_BLOCK = 4 * MiB        # complete_upload's copy size per call
MAX_PARTS = 10000           # S3's limit on part numbers
TMP_PREFIX = ".geomail-tmp-"
TMP_ID = "tmp:"             # upload id of a crash's leftover temporary file or directory
UPLOADS = ".uploads"
KEY_FILE = "key"
FILE_MODE = 0o640
DIR_MODE = 0o750

# errno values that a person or time can fix: the same request may then succeed
# (EFBIG: a file-size limit, RLIMIT_FSIZE; attachments are far below any file system's own)
_TEMPORARY = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EACCES, errno.EPERM, errno.EROFS,
              errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN, errno.EBUSY, errno.ESTALE}


def _blocking(function, *args):
    """function(*args), in gevent's native threadpool when threading is monkey-patched."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        import gevent
        return gevent.get_hub().threadpool.apply(function, args)
    return function(*args)


def _utc(timestamp):
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _write_all(fd, data):
    """Write bytes-like data, or a binary file object read in blocks, to fd."""
    if hasattr(data, "read"):
        while True:
            block = data.read(READ_BLOCK)
            if not block:
                return
            _write_all(fd, block)
    view = memoryview(data).cast("B")
    while len(view):
        view = view[os.write(fd, view):]


def _tmp_name(name):
    """A temporary name in name's directory that still tells which key it was for.

    open_uploads lists leftovers of a crash (as S3 lists the multipart
    uploads a crash left open), so fsck and the janitor can remove them.
    """
    tmp = f"{TMP_PREFIX}{secrets.token_hex(8)}.{name}"
    return tmp if len(tmp.encode("utf-8", "surrogateescape")) <= 255 else tmp[:len(TMP_PREFIX) + 16]


def _write_file(directory, name, data, sync=True):
    """directory/name holds data, whole or not at all: temp file, fsync, rename, dir fsync."""
    tmp = os.path.join(directory, _tmp_name(name))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        try:
            _write_all(fd, data)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if sync:
        _fsync_dir(directory)


def _make_dirs(base, parts):
    """base/parts[0]/parts[1]/..., creating what is missing (each new entry fsynced)."""
    current = base
    for part in parts:
        child = os.path.join(current, part)
        try:
            os.mkdir(child, DIR_MODE)
        except FileExistsError:
            pass
        else:
            _fsync_dir(current)
        current = child
    return current


def _copy_into(fd, path):
    """Append the file at path to fd (in the kernel where it can)."""
    with open(path, "rb", buffering=0) as source:
        size = os.fstat(source.fileno()).st_size
        offset = 0
        while offset < size:
            copied = 0
            if _COPY_FILE_RANGE is not None:      # Linux: no copy through user space
                try:
                    copied = _COPY_FILE_RANGE(source.fileno(), fd, min(COPY_BLOCK, size - offset),
                                              offset)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP,
                                         errno.EINVAL):
                        raise
            if not copied:             # unsupported here: read and write
                block = os.pread(source.fileno(), COPY_BLOCK, offset)
                if not block:
                    raise OSError(errno.EIO, f"part shrank while copying ({offset} of {size} bytes)")
                _write_all(fd, block)
                copied = len(block)
            offset += copied


_COPY_FILE_RANGE = getattr(os, "copy_file_range", None)


def _part_name(number, token):
    return f"part-{number:05d}-{token}"


class LocalBlobStore:
    """One bucket as a directory under ``root``; see the module docstring."""

    def __init__(self, root, bucket, multipart_threshold=8 * MiB, part_size=8 * MiB):
        check_sizes(multipart_threshold, part_size)
        if (not bucket or "/" in bucket or "\0" in bucket or bucket.startswith(".")
                or bucket != bucket.strip()):
            raise ValueError(f"bad bucket name for a directory: {bucket!r}")
        self.root = os.path.abspath(os.fspath(root))
        self.bucket = bucket
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.bucket_dir = os.path.join(self.root, bucket)
        self.uploads_dir = os.path.join(self.root, UPLOADS, bucket)

    def __repr__(self):
        return f"LocalBlobStore({self.bucket_dir})"

    # -- paths and errors -----------------------------------------------------

    def _parts(self, key):
        """The path components of key under the bucket directory; InvalidKey if it has none."""
        if not isinstance(key, str) or not key or "\0" in key or key.startswith("/"):
            raise InvalidKey(f"local blob store: refused key {key!r} (empty, absolute or NUL)")
        parts = key.split("/")
        for part in parts:
            if part in ("", ".", "..") or part.startswith(TMP_PREFIX):
                raise InvalidKey(f"local blob store: refused key {key!r} "
                                 f"(component {part!r} could leave or clash in {self.bucket_dir})")
        return parts

    def _path(self, key):
        return os.path.join(self.bucket_dir, *self._parts(key))

    def _leftover_path(self, upload_id):
        """The temporary file or directory a ``tmp:`` upload id names, or None."""
        rel = upload_id[len(TMP_ID):]
        path = os.path.normpath(os.path.join(self.root, rel))
        inside = any(os.path.dirname(path) == top or os.path.dirname(path).startswith(top + os.sep)
                     for top in (self.bucket_dir, self.uploads_dir))
        if os.path.isabs(rel) or not inside or not os.path.basename(path).startswith(TMP_PREFIX):
            return None
        return path

    def _upload_path(self, upload_id):
        if not isinstance(upload_id, str) or not upload_id.isalnum():
            raise BlobStoreError(f"local blob store: no upload {upload_id!r} in {self.uploads_dir}")
        return os.path.join(self.uploads_dir, upload_id)

    def _fail(self, operation, exc, path):
        """The BlobStoreError for an OSError of operation at path."""
        name = errno.errorcode.get(exc.errno, "error")
        reason = exc.strerror or str(exc)
        if exc.errno in _TEMPORARY:
            reason += f" ({name}, temporary: retry once the disk or permissions are fixed)"
        elif exc.errno == errno.ENOENT and not os.path.isdir(self.bucket_dir):
            reason = f"bucket directory {self.bucket_dir} does not exist (ensure_bucket creates it)"
        else:
            reason += f" ({name})"
        return BlobStoreError(f"local blob store {operation} failed at {path}: {reason}")

    def _run(self, operation, path, function, *args):
        """function(*args) off the event loop; OSError as BlobStoreError."""
        try:
            return _blocking(function, *args)
        except BlobStoreError:
            raise
        except OSError as exc:
            raise self._fail(operation, exc, path) from None

    def _not_found(self, operation, key):
        return BlobNotFound(f"local blob store {operation} failed at {self.bucket_dir} key {key}: "
                            "NoSuchKey")

    # -- bucket ---------------------------------------------------------------

    def ensure_bucket(self, create=True):
        """Check at start that the bucket directory exists and is writable (creating it if allowed)."""
        self._run("ensure_bucket", self.bucket_dir, self._ensure_bucket, create)

    def _ensure_bucket(self, create):
        if not os.path.isdir(self.bucket_dir):
            if not create:
                raise BlobStoreError(f"blob directory {self.bucket_dir} does not exist and "
                                     "creating it is turned off")
            os.makedirs(self.root, DIR_MODE, exist_ok=True)
            _make_dirs(self.root, [self.bucket])
        for path in (self.bucket_dir, self.root):
            if not os.access(path, os.W_OK | os.X_OK):
                raise BlobStoreError(f"blob directory {path} is not writable by this user "
                                     f"(uid {os.geteuid()})")

    # -- objects --------------------------------------------------------------

    def put(self, key, data):
        """Store ``data`` (bytes or a binary file object), whole or not at all."""
        parts = self._parts(key)
        self._run("put", self._path(key), self._put, parts, data)

    def _put(self, parts, data):
        for attempt in range(3):
            directory = _make_dirs(self.bucket_dir, parts[:-1])
            try:
                return _write_file(directory, parts[-1], data)
            except FileNotFoundError:
                # a delete removed the emptied directory between mkdir and open: again
                if attempt == 2 or not os.path.isdir(self.bucket_dir) or hasattr(data, "read"):
                    raise

    def get(self, key):
        """The whole object as bytes (small objects; stream large ones with get_range)."""
        return b"".join(self.get_range(key, 0, None))

    def get_range(self, key, start, end=None):
        """An iterator of chunks (at most 64 KiB each) of bytes ``start`` to ``end`` (exclusive).

        ``end=None`` reads to the end.  The file is opened now, so a missing
        object raises BlobNotFound here, not at the first chunk.
        """
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad range {start}-{end}")
        path = self._path(key)
        if end is not None and end == start:
            return iter(())
        try:
            source = _blocking(_open_object, path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise self._not_found("get", key) from None
        except OSError as exc:
            raise self._fail("get", exc, path) from None
        return self._chunks(source, path, start, end)

    def _chunks(self, source, path, position, end):
        # ``source`` is a FileIO: closed here, or by the garbage collector if never read
        try:
            with source:
                while end is None or position < end:
                    want = READ_BLOCK if end is None else min(READ_BLOCK, end - position)
                    block = _blocking(os.pread, source.fileno(), want, position)
                    if not block:
                        return
                    position += len(block)
                    if len(block) <= CHUNK_SIZE:
                        yield block
                        continue
                    view = memoryview(block)
                    for i in range(0, len(block), CHUNK_SIZE):
                        yield bytes(view[i:i + CHUNK_SIZE])
        except OSError as exc:
            raise self._fail("get (reading)", exc, path) from None

    def delete(self, keys):
        """Delete objects (and the directories they leave empty); missing keys are not an error."""
        paths = [self._path(key) for key in keys]
        if paths:
            self._run("delete", self.bucket_dir, self._delete, paths)

    def _delete(self, paths):
        directories = set()
        for path in paths:
            try:
                os.unlink(path)
            except (FileNotFoundError, NotADirectoryError):    # no such object
                continue
            except OSError as exc:
                raise self._fail(f"delete of {len(paths)} key(s)", exc, path) from None
            directories.add(os.path.dirname(path))
        # deepest first, so that a message directory goes before its account's
        for directory in sorted(directories, key=len, reverse=True):
            self._prune(directory)

    def _prune(self, directory):
        """fsync directory, or remove it (and empty parents) when the delete emptied it."""
        while directory != self.bucket_dir and directory.startswith(self.bucket_dir + os.sep):
            try:
                os.rmdir(directory)
            except OSError:          # not empty (or already gone): its entries are final now
                if os.path.isdir(directory):
                    _fsync_dir(directory)
                return
            directory = os.path.dirname(directory)
        _fsync_dir(directory)

    def list_keys(self, prefix=""):
        """Iterate over every key starting with ``prefix``, in S3's order."""
        for item in self.list_objects(prefix):
            yield item.key

    def list_objects(self, prefix=""):
        """Iterate over StoredObject(key, size, last_modified) of every object under ``prefix``."""
        yield from self._run("list_objects", self.bucket_dir, self._scan, prefix)

    def _scan(self, prefix):
        if not os.path.isdir(self.bucket_dir):
            raise BlobStoreError(f"local blob store list_objects failed: bucket directory "
                                 f"{self.bucket_dir} does not exist")
        found = []
        self._walk(self.bucket_dir, "", prefix, found, None)
        found.sort()
        return found

    def _walk(self, directory, relative, prefix, found, leftovers):
        """StoredObjects under directory matching prefix into found; temporary files
        into leftovers (OpenUpload with a ``tmp:`` id) unless it is None."""
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return                           # removed while we looked
        for entry in entries:
            if entry.name.startswith(TMP_PREFIX):
                if leftovers is not None:
                    self._leftover(entry, relative, prefix, leftovers)
                continue
            name = relative + entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    below = name + "/"
                    if below.startswith(prefix) or prefix.startswith(below):
                        self._walk(entry.path, below, prefix, found, leftovers)
                elif found is not None and name.startswith(prefix) \
                        and entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    found.append(StoredObject(name, info.st_size, _utc(info.st_mtime)))
            except FileNotFoundError:
                continue

    def _leftover(self, entry, relative, prefix, leftovers):
        _, _, name = entry.name[len(TMP_PREFIX):].partition(".")
        key = relative + (name or entry.name)        # the key it was for, when the name tells
        if not key.startswith(prefix):
            return
        try:
            initiated = _utc(entry.stat(follow_symlinks=False).st_mtime)
        except FileNotFoundError:
            return                                    # renamed into place meanwhile
        rel = os.path.relpath(entry.path, self.root)
        leftovers.append(OpenUpload(key, TMP_ID + rel, initiated))

    def exists(self, key):
        """Whether the object exists now; BlobStoreError when the directory cannot tell."""
        path = self._path(key)
        try:
            info = _blocking(os.stat, path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise self._fail("exists", exc, path) from None
        return stat.S_ISREG(info.st_mode)

    def remove(self, key):
        """Abort every open multipart upload of ``key``, then delete the object."""
        for upload in self.open_uploads(prefix=key):
            if upload.key == key:
                self.abort_upload(key, upload.upload_id)
        self.delete([key])

    def open_upload(self, key):
        """An Upload to ``key``: write() pieces, then close() (or abort())."""
        return Upload(self, key)

    # -- multipart ------------------------------------------------------------

    def create_upload(self, key):
        """Begin a multipart upload of ``key``; its upload id."""
        self._parts(key)
        upload_id = secrets.token_hex(16)
        self._run("create_upload", self.uploads_dir, self._create_upload, key, upload_id)
        return upload_id

    def _create_upload(self, key, upload_id):
        if not os.path.isdir(self.bucket_dir):
            raise BlobStoreError(f"local blob store create_upload failed: bucket directory "
                                 f"{self.bucket_dir} does not exist")
        uploads = _make_dirs(self.root, [UPLOADS, self.bucket])
        tmp = os.path.join(uploads, TMP_PREFIX + upload_id)
        os.mkdir(tmp, DIR_MODE)
        try:
            _write_file(tmp, KEY_FILE, key.encode("utf-8"))
            os.rename(tmp, os.path.join(uploads, upload_id))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(uploads)

    def _upload_key(self, directory):
        """The key an upload directory was begun for, or None if there is no such upload."""
        try:
            with open(os.path.join(directory, KEY_FILE), "rb") as f:
                return f.read().decode("utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _check_upload(self, key, directory):
        if self._upload_key(directory) != key:
            raise BlobStoreError(f"local blob store: no upload {os.path.basename(directory)} "
                                 f"of key {key} in {self.uploads_dir} (NoSuchUpload)")

    def upload_part(self, key, upload_id, number, data):
        """Store part ``number`` (1 to 10000) of an upload; its token (stands for S3's ETag)."""
        self._parts(key)
        if not isinstance(number, int) or not 1 <= number <= MAX_PARTS:
            raise BlobStoreError(f"local blob store: part number {number!r} out of 1..{MAX_PARTS}")
        directory = self._upload_path(upload_id)
        token = secrets.token_hex(8)
        self._run(f"upload_part {number}", directory, self._upload_part, key, directory,
                  number, token, data)
        return token

    def _upload_part(self, key, directory, number, token, data):
        self._check_upload(key, directory)
        name = _part_name(number, token)
        _write_file(directory, name, data, sync=False)     # see the module docstring
        stale = _part_name(number, "")
        for other in os.listdir(directory):                 # a part sent again replaces it
            if other.startswith(stale) and other != name:
                _unlink_quietly(os.path.join(directory, other))

    def complete_upload(self, key, upload_id, parts):
        """Make the object from ``parts``, [(number, token)] in ascending order."""
        path = self._path(key)
        directory = self._upload_path(upload_id)
        parts = [(int(number), str(token)) for number, token in parts]
        if not parts:
            raise BlobStoreError(f"local blob store complete_upload of {key}: no parts "
                                 "(MalformedXML)")
        numbers = [number for number, _ in parts]
        if numbers != sorted(set(numbers)):
            raise BlobStoreError(f"local blob store complete_upload of {key}: parts not in "
                                 f"ascending order (InvalidPartOrder)")
        self._run("complete_upload", path, self._complete, key, directory, parts)

    def _complete(self, key, directory, parts):
        self._check_upload(key, directory)
        files = [os.path.join(directory, _part_name(n, t)) for n, t in parts]
        for (number, _), path in zip(parts, files):
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                raise BlobStoreError(f"local blob store complete_upload of {key}: part {number} "
                                     "was never uploaded with that token (InvalidPart)") from None
            if size < MIN_PART_SIZE and path != files[-1]:
                raise BlobStoreError(f"local blob store complete_upload of {key}: part {number} "
                                     f"has {size} bytes, under S3's minimum (EntityTooSmall)")
        key_parts = self._parts(key)
        target = _make_dirs(self.bucket_dir, key_parts[:-1])
        tmp = os.path.join(target, _tmp_name(key_parts[-1]))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        try:
            try:
                for path in files:
                    _copy_into(fd, path)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, os.path.join(target, key_parts[-1]))
        except BaseException:
            _unlink_quietly(tmp)
            raise
        _fsync_dir(target)
        self._remove_upload_dir(directory)

    def abort_upload(self, key, upload_id):
        """Abort one multipart upload; one that is already gone is not an error.

        A ``tmp:`` id (see open_uploads) removes a crash's temporary file.
        """
        if isinstance(upload_id, str) and upload_id.startswith(TMP_ID):
            path = self._leftover_path(upload_id)      # its key may be unknown ("")
            if path is None:
                raise BlobStoreError(f"local blob store: no upload {upload_id!r} in {self.root}")
            self._run("abort_upload", path, _remove_leftover, path)
            return
        self._parts(key)
        directory = self._upload_path(upload_id)
        self._run("abort_upload", directory, self._abort, key, directory)

    def _abort(self, key, directory):
        if self._upload_key(directory) != key:
            return                                   # gone, or another key's (NoSuchUpload)
        self._remove_upload_dir(directory)

    def _remove_upload_dir(self, directory):
        """Rename out of sight first, so a crash midway never leaves half an open upload."""
        hidden = os.path.join(self.uploads_dir, TMP_PREFIX + os.path.basename(directory))
        try:
            os.rename(directory, hidden)
        except FileNotFoundError:
            return
        _fsync_dir(self.uploads_dir)
        shutil.rmtree(hidden, ignore_errors=True)

    def list_multipart_uploads(self, prefix=""):
        """[(key, upload_id)] of multipart uploads begun and not completed or aborted."""
        return [(u.key, u.upload_id) for u in self.open_uploads(prefix)]

    def open_uploads(self, prefix=""):
        """[OpenUpload(key, upload_id, initiated)] of multipart uploads still open.

        ``initiated`` is the mtime of the upload's key file, an aware datetime.
        Temporary files and directories are listed too, with an upload id
        ``tmp:<path under root>`` and their mtime: a write in progress, or one
        a crash cut off.  fsck reports those older than its ``--older-than``
        and aborts them (removes them) as it does S3's forgotten uploads;
        remove(key) takes the key's own.
        """
        return self._run("open_uploads", self.uploads_dir, self._open_uploads, prefix)

    def _open_uploads(self, prefix):
        leftovers = []
        if os.path.isdir(self.bucket_dir):
            self._walk(self.bucket_dir, "", prefix, None, leftovers)
        try:
            names = sorted(os.listdir(self.uploads_dir))
        except FileNotFoundError:
            names = []
        uploads = []
        for name in names:
            if name.startswith(TMP_PREFIX):
                directory = os.path.join(self.uploads_dir, name)
                key = self._upload_key(directory) or ""
                if key.startswith(prefix):
                    try:
                        initiated = _utc(os.stat(directory).st_mtime)
                    except FileNotFoundError:
                        continue
                    leftovers.append(OpenUpload(key, TMP_ID + os.path.relpath(directory, self.root),
                                                initiated))
                continue
            directory = os.path.join(self.uploads_dir, name)
            key = self._upload_key(directory)
            if key is None or not key.startswith(prefix):
                continue
            try:
                initiated = _utc(os.stat(os.path.join(directory, KEY_FILE)).st_mtime)
            except FileNotFoundError:
                continue                             # aborted while we looked
            uploads.append(OpenUpload(key, name, initiated))
        uploads += leftovers
        uploads.sort(key=lambda u: (u.key, u.initiated))
        return uploads


def _remove_leftover(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        _unlink_quietly(path)
    _fsync_dir(os.path.dirname(path))


def _open_object(path):
    source = open(path, "rb", buffering=0)
    try:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", path)
    except BaseException:
        source.close()
        raise
    return source
