"""The MySQL connection pool: the only place that opens connections.

One ``Database`` per worker process, built after fork and after gevent's
monkey-patching (DBUtils uses ``threading.Condition``, pymysql uses
``socket``), so waiting for a free connection or a query result yields to
other greenlets instead of blocking the process.
"""

import contextlib
import threading

import pymysql
import pymysql.err
from dbutils.pooled_db import PooledDB

from geomail.store.dburl import parse_db_url, with_database

# MySQL error numbers the store reacts to.
ER_DUP_ENTRY = 1062
ER_LOCK_WAIT_TIMEOUT = 1205
ER_LOCK_DEADLOCK = 1213
ER_BAD_DB_ERROR = 1049

# Run on every new connection. READ COMMITTED: every locking read the store
# relies on is explicit (SELECT ... FOR UPDATE on the mailbox row when
# allocating UIDs), and REPEATABLE READ's gap locks would only add deadlocks
# between concurrent deliveries. UTC so DATETIME columns mean one thing on
# every host. Strict mode so an oversized value is an error, not a silent cut.
SESSION_SETUP = [
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SET SESSION time_zone = '+00:00'",
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
]


def connect_kwargs(url, require_database=True):
    """pymysql connect arguments for ``url`` plus the options geomail always wants."""
    kwargs = parse_db_url(url, require_database=require_database)
    # Without ssl_disabled pymysql builds a TLS context at every connect (tens of
    # ms of CPU; docs/DESIGN.md "Two backends"); reconnect storms would feel it.
    kwargs.setdefault("connect_timeout", 10)
    # autocommit: a read is its own transaction (nothing to end afterwards: one
    # round trip less per read); every write that needs atomicity runs inside
    # an explicit BEGIN ... COMMIT (Database.transaction).
    kwargs.update(ssl_disabled=True, autocommit=True, binary_prefix=True)
    return kwargs


class Database:
    """A bounded pool of MySQL connections with transaction helpers."""

    def __init__(self, url, pool_size=10):
        self.url = url
        self.pool_size = pool_size
        self._kwargs = connect_kwargs(url)
        self._pool = None
        self._lock = threading.Lock()

    @property
    def database_name(self):
        return self._kwargs["database"]

    def _get_pool(self):
        """Create the pool on first use, so building a Database never touches the network."""
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = PooledDB(
                        creator=pymysql, maxconnections=self.pool_size, blocking=True,
                        ping=1, setsession=SESSION_SETUP, reset=False, **self._kwargs)
        return self._pool

    @contextlib.contextmanager
    def connection(self):
        """A dedicated pooled connection, for work that needs one session (locks).

        The caller ends what it starts: the pool (reset=False, to save a round
        trip per checkout) only rolls back a transaction opened with begin().
        """
        conn = self._get_pool().connection(shareable=False)
        try:
            yield conn
        finally:
            conn.close()  # back to the pool

    @contextlib.contextmanager
    def transaction(self):
        """``with db.transaction() as cur:`` commits on success, rolls back on any exception."""
        with self.connection() as conn:
            conn.begin()
            cur = conn.cursor()
            try:
                yield cur
                conn.commit()
            except BaseException:
                _rollback_quietly(conn)
                raise
            finally:
                cur.close()

    @contextlib.contextmanager
    def cursor(self):
        """``with db.cursor() as cur:`` for reads: each statement commits on its own."""
        with self.connection() as conn:
            cur = conn.cursor()
            try:
                yield cur
            finally:
                cur.close()

    def run_transaction(self, work, attempts=3):
        """Call ``work(cur)`` in a transaction, retrying it after a deadlock or lock timeout.

        ``work`` must be safe to run again from the start (it is, if it only
        talks to the database). Returns what ``work`` returns.
        """
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as cur:
                    return work(cur)
            except pymysql.err.OperationalError as exc:
                if attempt == attempts or not is_retryable(exc):
                    raise

    def ping(self):
        """One round trip to the server (warm-up, health checks)."""
        with self.cursor() as cur:
            cur.execute("SELECT 1")

    def close(self):
        """Close every pooled connection (worker shutdown, tests)."""
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


def _rollback_quietly(conn):
    try:
        conn.rollback()
    except Exception:  # the connection is broken; the pool replaces it on next checkout
        pass


def error_code(exc):
    """The MySQL error number of a pymysql exception, or None."""
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_duplicate_key(exc):
    return isinstance(exc, pymysql.err.IntegrityError) and error_code(exc) == ER_DUP_ENTRY


def is_retryable(exc):
    """Deadlocks and lock-wait timeouts: the transaction was rolled back and may simply be retried."""
    return error_code(exc) in (ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT)


def _quote_identifier(name):
    return "`" + name.replace("`", "``") + "`"


def _server_connection(url):
    kwargs = connect_kwargs(url, require_database=False)
    kwargs.pop("database", None)
    return pymysql.connect(**kwargs)


def ensure_database(url):
    """Create the database named in ``url`` if it is missing (tests, ``geomail-admin migrate``).

    Looks first, so a production user with privileges on its own database
    only (no CREATE on the server) passes when the database exists.
    """
    name = parse_db_url(url)["database"]
    conn = _server_connection(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {_quote_identifier(name)} "
                            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()


def drop_database(url):
    """Drop the database named in ``url`` if it exists (test clean-up only)."""
    name = parse_db_url(url)["database"]
    conn = _server_connection(url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {_quote_identifier(name)}")
    finally:
        conn.close()


__all__ = ["Database", "ensure_database", "drop_database", "connect_kwargs", "with_database",
           "is_duplicate_key", "is_retryable", "error_code"]
