"""The worker heartbeat: an unlinked temporary file whose ctime the worker bumps.

The idea is gunicorn's (workers/workertmp.py): the master and the worker
share the open file; the worker calls ``notify()`` from its event loop, the
master reads ``last_update()``.  A worker whose loop is stuck stops
notifying and is killed.  Using fchmod (ctime) keeps it a metadata-only write.
"""

import os
import tempfile
import time


class Heartbeat:
    def __init__(self):
        fd, name = tempfile.mkstemp(prefix="geomail-worker-")
        os.unlink(name)
        self._fd = fd
        self._spinner = 0
        self.created = os.fstat(fd).st_ctime_ns

    def notified(self):
        """True once the worker has notified at all (it does so first when it is ready)."""
        return os.fstat(self._fd).st_ctime_ns != self.created

    def notify(self):
        """Tell the master this worker is alive."""
        self._spinner ^= 1
        os.fchmod(self._fd, 0o600 | self._spinner)

    def last_update(self):
        """When the worker last notified (seconds since the epoch)."""
        return os.fstat(self._fd).st_ctime

    def age(self):
        return time.time() - self.last_update()

    def fileno(self):
        return self._fd

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def chown(self, user, group):
        """Hand the file to the worker's user, so it can still notify after dropping root."""
        from geomail.sockets import owner_ids
        uid, gid = owner_ids(user, group)
        uid, gid = (-1 if uid is None else uid), (-1 if gid is None else gid)
        os.fchown(self._fd, uid, gid)
