"""The embedded store: one SQLite file in WAL mode, shared by every worker of one host.

``SQLiteDatabase`` has the methods of the MySQL ``Database``
(geomail/store/database.py), so every store module runs on either.  What it
does differently, and why:

- **No call waits in the event loop.**  Under gevent every statement (with
  the fetch of its rows, which is when SQLite does the work) runs in a
  thread of this database's own thread pool; the worker's loop goes on
  serving other sessions while SQLite reads pages or waits for the file
  lock.  One thread per pooled connection, so a waiting writer can never
  starve the connection that holds the lock.  Without gevent (tools,
  tests) calls run inline.
- **Writers take turns.**  ``transaction()`` starts with ``BEGIN
  IMMEDIATE``, so the write lock is taken up front and a transaction is
  never turned away half-way; within one process a lock lets only one
  greenlet wait for it, other processes wait in SQLite's busy handler
  (``busy_timeout``).  Readers never wait: WAL gives each statement a
  snapshot.  Hence the row-lock clauses of the MySQL statements are
  dropped (see geomail/store/dialect.py).
- **Durable before 250.**  ``synchronous=FULL``: COMMIT returns after the
  WAL is on disk.  ``foreign_keys=ON`` for the schema's cascades.
- **Typed errors.**  A locked or unreadable database, a full disk or an I/O
  error raise ``StoreUnavailable`` (temporary); a value SQLite cannot hold
  raises ``StoreRejected`` (permanent); a UNIQUE violation stays
  ``sqlite3.IntegrityError`` for the store's ``is_duplicate_key``.
"""

import contextlib
import datetime
import fcntl
import functools
import os
import re
import sqlite3
import sys
import threading
import time

from geomail import metrics
from geomail.store import dialect
from geomail.store.errors import StoreRejected, StoreUnavailable

BUSY_TIMEOUT = 10.0          # seconds a writer waits for another process's transaction
STATEMENT_CACHE = 256
_PARAMETER = re.compile(r"%s|%%")
_ROW_LOCK = re.compile(r"\s+(?:FOR UPDATE|LOCK IN SHARE MODE)\b")
# SQLite's messages for "try again later": another writer, the disk, the file
_TEMPORARY = ("locked", "busy", "disk i/o", "disk is full", "unable to open", "readonly",
              "no more rows available", "interrupted", "out of memory")


def _adapt_datetime(value):
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value.isoformat(" ")


def _convert_datetime(raw):
    text = raw.decode("ascii")
    if "." in text:
        head, fraction = text.split(".", 1)
        return datetime.datetime.strptime(head, "%Y-%m-%d %H:%M:%S").replace(
            microsecond=int(fraction[:6].ljust(6, "0")))
    if " " not in text:
        return datetime.datetime.strptime(text, "%Y-%m-%d")
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


sqlite3.register_adapter(datetime.datetime, _adapt_datetime)
sqlite3.register_adapter(datetime.date, lambda value: value.isoformat())
sqlite3.register_converter("DATETIME", _convert_datetime)
sqlite3.register_converter("DATE", lambda raw: datetime.date.fromisoformat(raw.decode("ascii")))


@functools.lru_cache(maxsize=4096)
def translate(sql, with_parameters=True):
    """A store statement in SQLite's spelling (the three rewrites of geomail/store/dialect.py)."""
    if with_parameters:
        sql = _PARAMETER.sub(lambda m: "?" if m.group() == "%s" else "%", sql)
    sql = sql.replace("INSERT IGNORE", "INSERT OR IGNORE").replace("UPDATE IGNORE", "UPDATE OR IGNORE")
    return _ROW_LOCK.sub("", sql)


# -- functions the store's SQL uses that SQLite does not have ------------------------

def _greatest(*values):
    return max(values)


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


@functools.lru_cache(maxsize=256)
def _compiled(pattern):
    return re.compile(pattern)


def _regexp(pattern, value):
    """``value REGEXP pattern``: MariaDB's PCRE semantics for the store's patterns."""
    if value is None or pattern is None:
        return None
    return _compiled(pattern).search(_text(value)) is not None


def _casefold(value):
    if value is None:
        return None
    return _text(value).casefold()


def _typed(exc):
    """The store's error for a sqlite3 exception (or the exception itself: a bug, a duplicate)."""
    message = str(exc)
    lowered = message.lower()
    if isinstance(exc, sqlite3.IntegrityError):
        if "unique" in lowered or "primary key" in lowered:
            return exc
        typed = StoreRejected(f"SQLite refused the value: {message}")
    elif isinstance(exc, sqlite3.DataError) or "too big" in lowered:
        typed = StoreRejected(f"SQLite cannot store the value: {message}")
    elif isinstance(exc, sqlite3.OperationalError) and any(t in lowered for t in _TEMPORARY):
        typed = StoreUnavailable(f"SQLite: {message}", retryable="locked" in lowered
                                 or "busy" in lowered)
    else:
        return exc
    metrics.get().store_errors.labels(type(typed).__name__).inc()
    return typed


def _run(raw, sql, parameters, many):
    """Execute and fetch in one go (in the pool's thread): (rows, rowcount, lastrowid)."""
    cursor = raw.executemany(sql, parameters) if many else raw.execute(sql, parameters)
    try:
        if cursor.description is None:
            return [], cursor.rowcount, cursor.lastrowid
        rows = cursor.fetchall()
        return rows, len(rows), cursor.lastrowid
    finally:
        cursor.close()


class Cursor:
    """The part of a pymysql cursor the store uses, over buffered rows."""

    dialect = dialect.SQLITE

    def __init__(self, connection):
        self.connection = connection
        self._rows = []
        self._position = 0
        self.rowcount = -1
        self.lastrowid = None
        self.description = None

    def execute(self, sql, parameters=None):
        sql = translate(sql, parameters is not None)
        rows, self.rowcount, self.lastrowid = self.connection.call(
            _run, sql, tuple(parameters) if parameters is not None else (), False)
        self._rows, self._position = rows, 0
        return self.rowcount

    def executemany(self, sql, seq_of_parameters):
        sql = translate(sql, True)
        rows, self.rowcount, self.lastrowid = self.connection.call(
            _run, sql, [tuple(p) for p in seq_of_parameters], True)
        self._rows, self._position = rows, 0
        return self.rowcount

    def fetchone(self):
        if self._position >= len(self._rows):
            return None
        row = self._rows[self._position]
        self._position += 1
        return row

    def fetchmany(self, size=1):
        rows = self._rows[self._position:self._position + size]
        self._position += len(rows)
        return rows

    def fetchall(self):
        rows = self._rows[self._position:]
        self._position = len(self._rows)
        return rows

    def __iter__(self):
        return iter(self.fetchall())

    def close(self):
        self._rows = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class Connection:
    """One sqlite3 connection checked out of the pool (the pymysql methods the store calls)."""

    dialect = dialect.SQLITE

    def __init__(self, database, raw):
        self.database = database
        self.raw = raw
        self.broken = False

    def call(self, function, *args):
        try:
            return self.database._offload(function, self.raw, *args)
        except sqlite3.Error as exc:
            typed = _typed(exc)
            if typed is exc:
                raise
            raise typed from exc
        except BaseException:
            # interrupted (a timeout, a kill) while the thread may still run the
            # statement: this connection is not handed out again
            self.broken = True
            raise

    def cursor(self):
        return Cursor(self)

    def begin(self):
        """Start a write transaction, taking the database's write lock now."""
        self.call(_execute_plain, "BEGIN IMMEDIATE")

    def commit(self):
        self.call(_end, "COMMIT")

    def rollback(self):
        self.call(_end, "ROLLBACK")


def _execute_plain(raw, sql):
    raw.execute(sql).close()


def _end(raw, sql):
    if raw.in_transaction:
        raw.execute(sql).close()


def _connect(path, busy_timeout):
    raw = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                          check_same_thread=False, detect_types=sqlite3.PARSE_DECLTYPES,
                          cached_statements=STATEMENT_CACHE)
    try:
        raw.execute("PRAGMA journal_mode = WAL").close()
        raw.execute("PRAGMA synchronous = FULL").close()
        raw.execute("PRAGMA foreign_keys = ON").close()
        raw.create_function("GREATEST", -1, _greatest, deterministic=True)
        raw.create_function("REGEXP", 2, _regexp, deterministic=True)
        raw.create_function("CASEFOLD", 1, _casefold, deterministic=True)
    except BaseException:
        raw.close()
        raise
    return raw


def _under_gevent():
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


class SQLiteDatabase:
    """A bounded pool of connections to one SQLite file, with the MySQL Database's methods."""

    dialect = dialect.SQLITE

    def __init__(self, path, pool_size=10, busy_timeout=BUSY_TIMEOUT):
        self.path = os.fspath(path)
        self.pool_size = max(1, int(pool_size))
        self.busy_timeout = busy_timeout
        self._idle = []
        self._slots = threading.BoundedSemaphore(self.pool_size)
        self._writer = threading.Lock()
        self._threads = None
        self._lock = threading.Lock()

    def describe(self):
        return f"SQLite {self.path}"

    @property
    def database_name(self):
        return self.path

    # -- calls and connections ------------------------------------------------------------

    def _offload(self, function, *args):
        if self._threads is None:
            if not _under_gevent():
                return function(*args)
            with self._lock:
                if self._threads is None:
                    from gevent.threadpool import ThreadPool
                    self._threads = ThreadPool(self.pool_size + 1)
        return self._threads.apply(function, args)

    def _checkout(self):
        self._slots.acquire()
        try:
            while self._idle:
                connection = self._idle.pop()
                if not connection.broken:
                    return connection
            return Connection(self, self._offload_connect())
        except BaseException:
            self._slots.release()
            raise

    def _offload_connect(self):
        try:
            return self._offload(_connect, self.path, self.busy_timeout)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite database {self.path}: {exc}") from exc

    def _checkin(self, connection):
        try:
            if not connection.broken and connection.raw.in_transaction:
                connection.rollback()
        except Exception:
            connection.broken = True
        finally:
            if connection.broken:
                _close_quietly(connection.raw)
            else:
                self._idle.append(connection)
            self._slots.release()

    @contextlib.contextmanager
    def connection(self, use="dedicated"):
        """A dedicated pooled connection (migrations); what the caller starts, it ends.
        ``use`` labels the time it is held in /metrics."""
        counters = metrics.get()
        with metrics.timer(counters.store_pool_wait):
            connection = self._checkout()
        try:
            with metrics.timer(counters.store_seconds.labels(use)):
                yield connection
        finally:
            self._checkin(connection)

    @contextlib.contextmanager
    def transaction(self):
        """``with db.transaction() as cur:`` BEGIN IMMEDIATE ... COMMIT, rollback on any exception."""
        with self._writer_turn(), self.connection("transaction") as connection:
            connection.begin()
            cursor = connection.cursor()
            try:
                yield cursor
                connection.commit()
            except BaseException:
                _rollback_quietly(connection)
                raise

    @contextlib.contextmanager
    def _writer_turn(self):
        """One write transaction of this process at a time (others wait here, in the loop)."""
        if not self._writer.acquire(timeout=self.busy_timeout):
            raise StoreUnavailable(f"SQLite {self.path}: another transaction of this "
                                       f"process held the write lock for {self.busy_timeout:g} s",
                                       retryable=True)
        try:
            yield
        finally:
            self._writer.release()

    @contextlib.contextmanager
    def cursor(self):
        """``with db.cursor() as cur:`` for reads; each statement commits on its own."""
        with self.connection("read") as connection:
            yield connection.cursor()

    def run_transaction(self, work, attempts=3):
        """Call ``work(cur)`` in a transaction, again after a busy database (as MySQL's deadlocks)."""
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as cur:
                    return work(cur)
            except StoreUnavailable as exc:
                if attempt == attempts or not exc.retryable:
                    raise

    def ping(self):
        with self.cursor() as cur:
            cur.execute("SELECT 1")

    @contextlib.contextmanager
    def named_lock(self, name, wait=0.0):
        """Yields True while this process holds the host-wide lock ``name`` (a lock file
        beside the database: the embedded store serves one host), False if not within ``wait``."""
        path = f"{self.path}.{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + wait
            held = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(0.05)
            try:
                yield held
            finally:
                if held:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def close(self):
        """Close every idle connection (worker shutdown, tests)."""
        while self._idle:
            _close_quietly(self._idle.pop().raw)


def _rollback_quietly(connection):
    try:
        connection.rollback()
    except BaseException:  # the pool closes it instead of reusing it
        connection.broken = True


def _close_quietly(raw):
    try:
        raw.close()
    except Exception:  # closing: nothing left to do about it
        pass


__all__ = ["SQLiteDatabase", "translate"]
