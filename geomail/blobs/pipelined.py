"""Uploads that overlap with receiving, under a worker-wide memory budget.

An attachment arrives over SMTP while it is being stored: each full part of
a multipart upload is sent by a helper (a greenlet once gevent has patched
threading) while the next part is received.  At most one part is in flight
per upload, so an upload holds at most two parts.  Every buffered byte is
first reserved from a ``ByteBudget`` shared by the worker: when the budget is
spent, ``write`` waits, the session stops reading its socket, and TCP tells
the sender to slow down (back-pressure instead of memory growth).

This module uses only ``threading`` and the store's public methods (put,
create_upload, upload_part, complete_upload, abort_upload, delete), so it
works on S3 and on the local directory alike; under gevent's monkey-patching
its threads and conditions are greenlets and gevent primitives.
"""

import threading

from geomail.blobs.errors import BlobStoreError


class ByteBudget:
    """A bound on bytes held at once; acquire() waits for room."""

    def __init__(self, limit):
        self.limit = limit
        self.used = 0
        self._cond = threading.Condition()

    def acquire(self, amount):
        """Reserve amount bytes; a request larger than the limit waits for an empty budget."""
        with self._cond:
            while self.used and self.used + amount > self.limit:
                self._cond.wait()
            self.used += amount

    def release(self, amount):
        with self._cond:
            self.used -= amount
            self._cond.notify_all()


class PipelinedUpload:
    """write() decoded bytes, then close() -> size, or abort(); see the module docstring."""

    def __init__(self, store, key, budget):
        self.store = store
        self.key = key
        self.budget = budget
        self.size = 0
        self._buffer = bytearray()
        self._filled = 0               # bytes of _buffer holding data
        self._held = 0                 # bytes reserved from the budget for _buffer
        self._upload_id = None
        self._parts = []
        self._inflight = None          # (thread, part bytes count, result box)
        self._state = "open"
        self._object_requested = False  # a PUT or complete was sent: the object may exist
        self.removed = None            # the last abort()'s answer (None: never aborted)
        self._uncertain = False        # a request failed without a definite answer

    @property
    def multipart(self):
        return self._upload_id is not None

    @property
    def closed(self):
        """True once close() has finished the object."""
        return self._state == "closed"

    def write(self, data):
        if self._state != "open":
            raise BlobStoreError(f"write to a {self._state} upload of {self.key}")
        if not data:
            return
        self.budget.acquire(len(data))
        self._held += len(data)
        self.size += len(data)
        # Below the threshold the buffer grows with the data.  Once the upload
        # is multipart, each part is filled in place in a buffer allocated at
        # the part size and handed over as it is (no slice, no copy, no
        # realloc), so an upload holds the part in flight and the one being
        # filled, nothing more.
        part_size = self.store.part_size
        view = memoryview(data)
        while len(view):
            if self._upload_id is None:
                room = self.store.multipart_threshold - self._filled
                self._buffer += view[:room]
                view = view[room:]
                self._filled = len(self._buffer)
                if self._filled < self.store.multipart_threshold:
                    continue
                self._create()
                while self._filled >= part_size:
                    if self._filled == part_size:
                        part, self._buffer = self._buffer, bytearray()
                    else:          # threshold above the part size: cut (once per upload)
                        part = self._buffer[:part_size]
                        del self._buffer[:part_size]
                    self._filled = len(self._buffer)
                    self._send_in_background(part)
                continue
            if len(self._buffer) != part_size:
                fresh = bytearray(part_size)
                fresh[:self._filled] = self._buffer[:self._filled]
                self._buffer = fresh
            take = min(part_size - self._filled, len(view))
            self._buffer[self._filled:self._filled + take] = view[:take]
            self._filled += take
            view = view[take:]
            if self._filled == part_size:
                part, self._buffer, self._filled = self._buffer, bytearray(), 0
                self._send_in_background(part)

    def close(self):
        """Finish the object; on failure nothing is left behind and BlobStoreError is raised."""
        if self._state != "open":
            raise BlobStoreError(f"close of a {self._state} upload of {self.key}")
        try:
            if self._upload_id is None:
                self._object_requested = True
                self.store.put(self.key, self._buffer)
                self._release(self._filled)
                self._buffer, self._filled = bytearray(), 0
            else:
                if self._filled or (not self._parts and self._inflight is None):
                    self._wait_inflight()          # never two parts and a copy at once
                    part, self._buffer = self._buffer, bytearray()
                    del part[self._filled:]        # shrinks in place
                    self._filled = 0
                    self._send_in_background(part)
                self._wait_inflight()
                self._complete()
        except BlobStoreError as exc:
            self._uncertain = self._uncertain or exc.uncertain
            self.abort()
            raise
        except BaseException:
            self.abort()
            raise
        self._state = "closed"
        return self.size

    def abort(self):
        """Remove whatever was written; True once it is known to be gone.

        Aborts the multipart upload and deletes the object if a PUT or a
        complete was ever sent (a PUT reported as failed may have stored it).
        False when S3 refused or could not be reached, or when a request of
        this upload failed without a definite answer (timeout, lost
        connection: S3 may still carry it out after our delete).  The caller
        then keeps the intent row, and the janitor removes the object later.
        After such a failure S3 is not asked again here (the client's reply
        must not wait on a stalled S3 twice).  May be called again; each call
        tries what is still left, unless the outcome is uncertain.
        """
        if self._state == "gone":
            return True
        self._state = "aborted"
        try:
            self._wait_inflight()
        except BlobStoreError as exc:
            self._uncertain = self._uncertain or exc.uncertain
        self._release(self._filled)
        self._buffer, self._filled = bytearray(), 0
        self.removed = self._remove()
        return self.removed

    def _remove(self):
        if self._uncertain:
            # S3 may still carry a request out after any delete of ours, so only the
            # janitor's removal after a grace period counts; and an S3 that timed out
            # once would most likely keep the client waiting again for nothing.
            return False
        try:
            if self._upload_id is not None:
                self.store.abort_upload(self.key, self._upload_id)
                self._upload_id = None
            if self._object_requested:
                self.store.delete([self.key])
        except BlobStoreError:
            return False
        self._state = "gone"
        return True

    # -- internals -------------------------------------------------------

    def _release(self, amount):
        amount = min(amount, self._held)
        if amount:
            self._held -= amount
            self.budget.release(amount)

    def _create(self):
        try:
            self._upload_id = self.store.create_upload(self.key)
        except BlobStoreError as error:
            self._uncertain = self._uncertain or error.uncertain   # an upload we have no id of
            raise

    def _send_in_background(self, part):
        """Wait for the part in flight, then start sending this one."""
        self._wait_inflight()
        number = len(self._parts) + 1
        box = {}

        def send():
            try:
                box["token"] = self.store.upload_part(self.key, self._upload_id, number, part)
            except BlobStoreError as exc:
                box["error"] = exc

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        self._inflight = (thread, len(part), number, box)

    def _wait_inflight(self):
        if self._inflight is None:
            return
        thread, length, number, box = self._inflight
        thread.join()
        self._inflight = None
        self._release(length)
        if "error" in box:
            error = box["error"]
            self._uncertain = self._uncertain or error.uncertain
            raise error
        self._parts.append((number, box["token"]))

    def _complete(self):
        self._object_requested = True
        try:
            self.store.complete_upload(self.key, self._upload_id, self._parts)
        except BlobStoreError as error:
            self._uncertain = self._uncertain or error.uncertain
            raise
