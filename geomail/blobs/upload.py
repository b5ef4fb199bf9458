"""One object streamed to a blob store without holding it all in memory (either backend).

Bytes are buffered until the store's ``multipart_threshold``: a smaller
object is one ``put`` at close().  Past it a multipart upload starts and
every full ``part_size`` is sent as it fills, so memory stays near one part.
Any failure after the multipart upload was created aborts it.  Only the
store's public methods are used (create_upload, upload_part,
complete_upload, abort_upload, put, delete), so the same class serves S3 and
the local directory.  The SMTP path uses ``geomail.blobs.pipelined`` instead,
which sends parts in the background under a byte budget.
"""

import hashlib

from geomail.blobs.errors import BlobStoreError

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last (both backends keep it)


def check_sizes(multipart_threshold, part_size):
    """The constructor checks both stores make, so a setting that works locally works on S3."""
    if part_size < MIN_PART_SIZE:
        raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum part)")
    if multipart_threshold < 1:
        raise ValueError("multipart_threshold must be positive")


class Upload:
    """write() pieces, then close() -> size, or abort(); usable as a context manager."""

    def __init__(self, store, key):
        self.store = store
        self.key = key
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._buffer = bytearray()
        self._upload_id = None
        self._parts = []  # [(number, token)]
        self._state = "open"  # open -> closed | aborted

    @property
    def sha256(self):
        """Hex SHA-256 of the bytes written so far."""
        return self._sha256.hexdigest()

    @property
    def multipart(self):
        return self._upload_id is not None

    def write(self, data):
        """Append bytes; may send a part."""
        if self._state != "open":
            raise BlobStoreError(f"write to a {self._state} upload of {self.key}")
        self._buffer += data
        self.size += len(data)
        self._sha256.update(data)
        try:
            if self._upload_id is None and len(self._buffer) >= self.store.multipart_threshold:
                self._upload_id = self.store.create_upload(self.key)
            while self._upload_id is not None and len(self._buffer) >= self.store.part_size:
                part = bytes(self._buffer[:self.store.part_size])
                del self._buffer[:self.store.part_size]
                self._send_part(part)
        except BaseException:
            self._abort_quietly()
            raise

    def close(self):
        """Finish the object; returns its size. On failure nothing is left behind."""
        if self._state == "closed":
            return self.size
        if self._state != "open":
            raise BlobStoreError(f"close of an aborted upload of {self.key}")
        try:
            if self._upload_id is None:
                self.store.put(self.key, bytes(self._buffer))
            else:
                if self._buffer or not self._parts:
                    self._send_part(bytes(self._buffer))
                self.store.complete_upload(self.key, self._upload_id, self._parts)
                self._upload_id = None
        except BaseException:
            self._abort_quietly()
            raise
        self._buffer = bytearray()
        self._state = "closed"
        return self.size

    def abort(self):
        """Undo: abort the multipart upload, or delete the object if close() already stored it."""
        state, self._state = self._state, "aborted"
        self._buffer = bytearray()
        if state == "closed":
            self.store.delete([self.key])
        elif self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            self.store.abort_upload(self.key, upload_id)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        elif self._state != "aborted":
            self._abort_quietly()
        return False

    def _abort_quietly(self):
        """abort() on a failure path: the original exception matters more than the abort's."""
        try:
            self.abort()
        except BlobStoreError:
            pass

    def _send_part(self, data):
        number = len(self._parts) + 1
        self._parts.append((number, self.store.upload_part(self.key, self._upload_id, number, data)))
