"""Connections per source address, counted across all the workers of a host.

Why shared: the kernel spreads connections over the workers' listeners, so
a count kept in each worker would let one address hold ``limit x workers``
connections, and the limit an operator sets would change with --workers.

How, simply and safely: the master creates one small table in shared
memory before it forks (``create_shared``; the mapping is inherited).  The
table has a *row* per worker and, in each row, a counter per hash bucket
of source addresses (per protocol).  A worker claims a free row with an
``fcntl`` lock on that row's byte range of a lock file, zeroes it, and
from then on is the only writer of its row, so no cross-process atomic
operation is needed; a count is the sum of one bucket over all rows.  The
kernel drops the lock when a worker dies, even by SIGKILL, so its row is
free and is zeroed by the next worker to start: a crash never leaves
connections counted for ever.

Sources are hashed with a secret key into ``BUCKETS`` buckets: two
addresses may share a bucket (and so a limit) by chance, but nobody outside
can choose addresses that land in a victim's bucket.  An IPv6 source counts
per /64, the block one host or subscriber is normally given; an
IPv4-mapped IPv6 address counts as its IPv4 address.
"""

import fcntl
import hashlib
import ipaddress
import mmap
import os
import secrets
import socket
import tempfile

BUCKETS = 4096
PROTOCOLS = ("smtp", "imap")
CELL = 4                      # bytes per counter (native unsigned int)
ROW = BUCKETS * len(PROTOCOLS) * CELL
MIN_ROWS = 16

_shared = None                # the master's table, inherited by the workers it forks


def create_shared(workers):
    """In the master, before forking: the table every worker will count in.

    Rows for at least 16 workers, and twice the workers plus some spare:
    during a reload (HUP) old and new workers overlap, and TTIN adds some.
    A row is 32 KiB.  A worker finding no free row counts on its own (see
    ``Counter``) and says so in the log.
    """
    global _shared
    if _shared is None:
        _shared = SharedTable(rows=max(MIN_ROWS, 2 * workers + 8))
    return _shared


def shared_table():
    return _shared


def source_key(address):
    """The part of a source address that is counted: IPv4 address or IPv6 /64."""
    host = address[0] if isinstance(address, tuple) else str(address)
    try:
        return socket.inet_pton(socket.AF_INET, host)    # the common case, without ipaddress
    except OSError:
        pass
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host.encode("utf-8", "replace")
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped.packed
        return ip.packed[:8]
    return ip.packed


class SharedTable:
    """The counters in anonymous shared memory, and an empty file to lock rows on.

    The mapping is MAP_SHARED and anonymous: inherited by the workers, never
    written to disk.  fcntl locks may cover bytes past the end of a file, so
    the lock file (unlinked at once, like the heartbeat's) stays empty.
    """

    def __init__(self, rows):
        self.rows = rows
        self.key = secrets.token_bytes(16)
        fd, name = tempfile.mkstemp(prefix="geomail-conns-")
        os.unlink(name)
        self.fd = fd
        self.map = mmap.mmap(-1, rows * ROW, flags=mmap.MAP_SHARED)
        self.cells = memoryview(self.map).cast("I")

    def claim_row(self):
        """Lock a row no living worker holds, for good; its number, or None.

        Every row nobody holds is zeroed on the way, the claimed one and the
        others: a row without a living owner can only hold counts of a dead
        worker.  (Between a worker's death and its successor's start, those
        counts still stand: the limit errs on the side of refusing.)
        """
        claimed = None
        for row in range(self.rows):
            try:
                fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, ROW, row * ROW, os.SEEK_SET)
            except OSError:
                continue               # a living worker's row
            self.map[row * ROW:(row + 1) * ROW] = bytes(ROW)
            if claimed is None:
                claimed = row
            else:
                fcntl.lockf(self.fd, fcntl.LOCK_UN, ROW, row * ROW, os.SEEK_SET)
        return claimed

    def bucket(self, protocol, key):
        digest = hashlib.blake2b(key, key=self.key, digest_size=4).digest()
        return PROTOCOLS.index(protocol) * BUCKETS + int.from_bytes(digest, "little") % BUCKETS

    def total(self, index):
        """The count of one bucket over all rows (every worker's share)."""
        stride = ROW // CELL
        return sum(self.cells[index::stride])


class Counter:
    """One worker's view: ``acquire`` a source before serving it, ``release`` after.

    With a shared table the worker writes its own row and reads the sums;
    without one (no master, or no free row) it counts alone, and the limit
    then holds per worker: limit x workers per host.
    """

    def __init__(self, limit, table=None):
        self.limit = limit
        self.table = table
        self.row = table.claim_row() if table is not None else None
        if self.row is None:
            self.table = None
        self.local = {}

    @property
    def shared(self):
        return self.table is not None

    def acquire(self, protocol, address):
        """A token for release(), or None when the source is at its limit."""
        key = source_key(address)
        if self.table is None:
            token = (protocol, key)
            if self.local.get(token, 0) >= self.limit:
                return None
            self.local[token] = self.local.get(token, 0) + 1
            return token
        index = self.table.bucket(protocol, key)
        if self.table.total(index) >= self.limit:
            return None
        self.table.cells[self.row * (ROW // CELL) + index] += 1
        return index

    def release(self, token):
        if self.table is None:
            left = self.local[token] - 1
            if left:
                self.local[token] = left
            else:
                del self.local[token]
            return
        self.table.cells[self.row * (ROW // CELL) + token] -= 1
