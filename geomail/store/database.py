"""The MySQL connection pool: the only place that opens connections.

One ``Database`` per worker process, built after fork and after gevent's
monkey-patching (DBUtils uses ``threading.Condition``, pymysql uses
``socket``), so waiting for a free connection or a query result yields to
other greenlets instead of blocking the process.
"""

import contextlib
import datetime
import re
import select
import sys
import threading

import pymysql
import pymysql.err
from pymysql.constants import CLIENT, SERVER_STATUS
from dbutils.pooled_db import PooledDB

from geomail import metrics
from geomail.store import dialect
from geomail.store.dburl import parse_db_url, with_database
from geomail.store.errors import StoreRejected, StoreUnavailable

# MySQL error numbers the store reacts to.
ER_DUP_ENTRY = 1062
ER_LOCK_WAIT_TIMEOUT = 1205
ER_LOCK_DEADLOCK = 1213
ER_BAD_DB_ERROR = 1049
# The connection went away during a request: a COMMIT may or may not have happened.
LOST_CONNECTION = frozenset((1053, 1317, 1927, 2006, 2013, 2055))
# "This value cannot be stored", whatever the retry: 1048 column cannot be null,
# 1153 packet bigger than max_allowed_packet, 1264 out of range, 1292 incorrect
# datetime, 1366 incorrect string value, 1406 data too long, 1118 row size too
# large, 3140 invalid JSON, 4025 CHECK constraint failed.
PERMANENT_ERRORS = frozenset((1048, 1118, 1153, 1264, 1292, 1366, 1406, 3140, 4025))

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


class ScriptConnection(pymysql.connections.Connection):
    """pymysql's connection, whose BEGIN rides with the transaction's first
    statement, whose BEGIN and COMMIT a script may carry itself (and whose
    escaping of text runs in C).

    Database.run_script calls begin(script=True) and commit() as any
    transaction does, so that DBUtils knows a transaction is open: outside
    one, it runs a statement that failed again on a new connection, and a
    script that may have committed must never run twice.  Between them the
    script's own START TRANSACTION and COMMIT do the work, without a round
    trip of their own.
    """

    _script = False
    _begin_pending = False

    def begin(self, script=False):
        """Open a transaction.  No round trip of its own: START TRANSACTION goes out
        in the same request as the transaction's first statement (``query``)."""
        self._script = script
        self._begin_pending = not script

    def query(self, sql, unbuffered=False):
        """Send ``sql``; the first statement of a transaction carries its START
        TRANSACTION (one request, two results: the first is START TRANSACTION's OK,
        the caller reads the second, its own).  If the statement fails, the
        transaction is open and the caller's rollback ends it."""
        if not self._begin_pending:
            return super().query(sql, unbuffered)
        self._begin_pending = False
        prefix = "START TRANSACTION;" if isinstance(sql, str) else b"START TRANSACTION;"
        super().query(prefix + sql, unbuffered)
        return self.next_result(unbuffered)

    def committed(self):
        """The transaction's COMMIT went out with its last statements (store/batch.py):
        the commit() that ends the block has nothing to send."""
        self._script = True

    def commit(self):
        if self._script or self._begin_pending:
            # the script's COMMIT has run, or nothing was sent: nothing to end
            self._script = self._begin_pending = False
            return
        super().commit()

    def rollback(self):
        if self._begin_pending:           # no statement went out: no transaction is open
            self._script = self._begin_pending = False
            return
        self._script = False
        super().rollback()

    def escape(self, obj, mapping=None):
        """A value quoted as pymysql quotes it, the common kinds without its
        per-value dispatch: a script's rows have some thirty values a message.

        Text gets a backslash before NUL, LF, CR, ^Z, quotes and itself, by
        str.replace, which runs in C (pymysql's str.translate with
        multi-character replacements takes about 0.5 ms for a 4 KiB text),
        and only when it holds one of them (most header values do not).
        """
        kind = type(obj)
        if kind is int:
            return str(obj)                  # pymysql's escape_int
        if obj is None:
            return "NULL"
        if kind is datetime.datetime and obj.tzinfo is None and 1000 <= obj.year:
            return "'" + obj.isoformat(" ") + "'"    # pymysql's escape_datetime
        if kind is not str or (
                self.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES):
            return super().escape(obj, mapping)
        if _NEEDS_ESCAPE.search(obj) is None:
            return "'" + obj + "'"
        return "'" + (obj.replace("\\", "\\\\").replace("\0", "\\0").replace("\n", "\\n")
                      .replace("\r", "\\r").replace("\032", "\\Z").replace('"', '\\"')
                      .replace("'", "\\'")) + "'"


_NEEDS_ESCAPE = re.compile("[\\\\\0\n\r\032\"']")


def _connect(*args, **kwargs):
    return ScriptConnection(*args, **kwargs)


_connect.dbapi = pymysql              # DBUtils finds the driver's exceptions there


class Database:
    """A bounded pool of MySQL connections with transaction helpers."""

    dialect = dialect.MYSQL

    def __init__(self, url, pool_size=10):
        self.url = url
        self.pool_size = pool_size
        # Several statements in one request (run_script): one round trip per
        # delivery.  Every statement's values are escaped by pymysql, as anywhere.
        self._kwargs = dict(connect_kwargs(url), client_flag=CLIENT.MULTI_STATEMENTS)
        self._pool = None
        self._lock = threading.Lock()

    @property
    def database_name(self):
        return self._kwargs["database"]

    def describe(self):
        """Where the data is, for the start-up line (no password)."""
        kwargs = self._kwargs
        where = kwargs.get("unix_socket") or f"{kwargs.get('host')}:{kwargs.get('port', 3306)}"
        return f"MySQL {where}/{kwargs['database']}"

    def _get_pool(self):
        """Create the pool on first use, so building a Database never touches the network."""
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = PooledDB(
                        creator=_connect, maxconnections=self.pool_size, blocking=True,
                        ping=(1, socket_alive), setsession=SESSION_SETUP, reset=False,
                        **self._kwargs)
        return self._pool

    @contextlib.contextmanager
    def connection(self, use="dedicated"):
        """A dedicated pooled connection, for work that needs one session (locks).

        The caller ends what it starts: the pool (reset=False, to save a round
        trip per checkout) only rolls back a transaction opened with begin().
        ``use`` labels the time it is held in /metrics.
        """
        counters = metrics.get()
        try:
            with metrics.timer(counters.store_pool_wait):
                conn = self._get_pool().connection(shareable=False)
        except pymysql.err.MySQLError as exc:
            _raise_typed(exc)
        try:
            with metrics.timer(counters.store_seconds.labels(use)):
                yield conn
        except pymysql.err.MySQLError as exc:
            _raise_typed(exc)
        finally:
            conn.close()  # back to the pool

    @contextlib.contextmanager
    def transaction(self):
        """``with db.transaction() as cur:`` commits on success, rolls back on any exception."""
        with self.connection("transaction") as conn:
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
        with self.connection("read") as conn:
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
            except StoreUnavailable as exc:
                if attempt == attempts or not exc.retryable:
                    raise

    def run_script(self, build, attempts=3):
        """One transaction in one round trip: ``build(cur)`` returns its statements,
        values inlined with ``cur.mogrify``, or None when the work does not fit a
        script (the caller then uses run_transaction).

        Sent as ``START TRANSACTION; ...; COMMIT`` in one request while it fits
        max_allowed_packet, else in as few as it takes.  The server stops at a
        failing statement, before the COMMIT; the transaction is then rolled
        back.  Returns the rows of the last result set (the script's final
        SELECT of the session variables it set), or None if build returned
        None.  Deadlocks and lock-wait timeouts are retried as in
        run_transaction.
        """
        for attempt in range(1, attempts + 1):
            try:
                return self._run_script(build)
            except StoreUnavailable as exc:
                if attempt == attempts or not exc.retryable:
                    raise

    def _run_script(self, build):
        with self.connection("transaction") as conn:
            cur = conn.cursor()
            try:
                statements = build(cur)
                if statements is None:
                    return None
                conn.begin(script=True)
                rows = None
                for request in _requests(["START TRANSACTION", *statements, "COMMIT"],
                                         statement_limit(cur)):
                    cur.execute(request)
                    while True:                 # every statement's result, in order
                        if cur.description:
                            rows = cur.fetchall()
                        if not cur.nextset():
                            break
                conn.commit()
                return rows
            except BaseException:
                _rollback_quietly(conn)
                raise
            finally:
                cur.close()

    def ping(self):
        """One round trip to the server (warm-up, health checks)."""
        with self.cursor() as cur:
            cur.execute("SELECT 1")

    @contextlib.contextmanager
    def named_lock(self, name, wait=0):
        """Yields True while this connection holds MySQL's GET_LOCK(name) (every host of
        the database sees it), False if another holds it past ``wait`` seconds.

        The lock is the connection's: it goes when the block ends or when the
        connection dies, so a killed worker never keeps it.
        """
        with self.connection() as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT GET_LOCK(%s, %s)", (name, wait))
                held = (cur.fetchone() or (0,))[0] == 1
            try:
                yield held
            finally:
                if held:
                    try:
                        with conn.cursor() as cur:
                            cur.execute("SELECT RELEASE_LOCK(%s)", (name,))
                    except Exception:   # the connection died: the server let the lock go
                        pass

    def close(self):
        """Close every pooled connection (worker shutdown, tests)."""
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


_max_packet = []     # max_allowed_packet of the server, read once per process


def statement_limit(cur):
    """Longest request the server takes (max_allowed_packet, less some slack).

    MariaDB drops the connection on a longer one (2006 "gone away", which
    looks temporary, so a sender would get 451 on every retry).
    """
    if not _max_packet:
        cur.execute("SELECT @@max_allowed_packet")
        _max_packet.append(int(cur.fetchone()[0]))
    return _max_packet[0] - 1024          # the command byte and some slack


def statement_size(statement):
    """Bytes of a statement on the wire (pymysql sends it as UTF-8)."""
    if statement.isascii():
        return len(statement)
    return len(statement.encode("utf-8", "surrogateescape"))


def _requests(statements, limit):
    """Statements joined by ';' into requests of at most ``limit`` bytes each
    (a single longer statement goes alone; the server will refuse it)."""
    request, size = [], 0
    for statement in statements:
        length = statement_size(statement) + 1
        if request and size + length > limit:
            yield ";".join(request)
            request, size = [], 0
        request.append(statement)
        size += length
    if request:
        yield ";".join(request)


def socket_alive(conn):
    """DBUtils' check at checkout, without the round trip of a ping.

    An idle connection has nothing to read: if its socket is readable, the
    server closed it (KILL, wait_timeout, a restart) or sent an error, and
    DBUtils replaces it before any statement is sent.  A connection that
    dies after this check fails its query, which raises (a transaction is
    never replayed: DBUtils retries only outside begin()), and pymysql marks
    it closed, so the next checkout replaces it.
    """
    sock = getattr(conn, "_sock", None)       # pymysql sets it to None once it failed
    if sock is None:
        return False
    poller = _poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    try:
        return not poller.poll(0)
    except OSError:
        return False


def _poll():
    """The system's poll object, not gevent's (a zero timeout needs no trip to the hub)."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("select"):
        return monkey.get_original("select", "poll")()
    return select.poll()


def _rollback_quietly(conn):
    try:
        conn.rollback()
    except Exception:  # the connection is broken; the pool replaces it on next checkout
        pass


def error_code(exc):
    """The MySQL error number of a pymysql exception, or None."""
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_retryable(exc):
    """Deadlocks and lock-wait timeouts: the transaction was rolled back and may simply be retried."""
    return error_code(exc) in (ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT)


def _raise_typed(exc):
    typed = typed_error(exc)
    if typed is exc:
        raise exc
    metrics.get().store_errors.labels(type(typed).__name__).inc()
    raise typed from exc


def typed_error(exc):
    """The store's error for a pymysql exception (the exception itself when it is a bug
    or a duplicate key, which the store's own code looks for)."""
    code = error_code(exc)
    message = f"MySQL: {exc.args[1] if len(exc.args) > 1 else exc}"
    if code in PERMANENT_ERRORS:
        return StoreRejected(message, code=code)
    if isinstance(exc, pymysql.err.InterfaceError):
        return StoreUnavailable(message, outcome_unknown=True, code=code)
    if isinstance(exc, pymysql.err.OperationalError):
        return StoreUnavailable(message, retryable=is_retryable(exc),
                                outcome_unknown=code in LOST_CONNECTION, code=code)
    return exc


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
           "is_retryable", "error_code", "typed_error"]
