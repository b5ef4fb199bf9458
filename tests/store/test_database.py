"""The database contract, on both backends: pooled connections, transactions that
commit or roll back, values refused with a typed error."""

import threading
import time

import pytest

from geomail.errors import PERMANENT, TEMPORARY, classify
from geomail.store.database import Database
from geomail.store.errors import StoreRejected, StoreUnavailable
from geomail.store.sqlite import SQLiteDatabase

TABLE = {
    "mysql": "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB",
    "sqlite": "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT CHECK (length(v) <= 10))",
}


@pytest.fixture(params=sorted(TABLE))
def db(request, tmp_path):
    if request.param == "mysql":
        db = Database(request.getfixturevalue("fresh_db_url")(), pool_size=2)
    else:
        db = SQLiteDatabase(tmp_path / "t.sqlite3", pool_size=2)
    with db.transaction() as cur:
        cur.execute(TABLE[request.param])
    yield db
    db.close()


def rows(db):
    with db.cursor() as cur:
        cur.execute("SELECT id FROM t ORDER BY id")
        return [r[0] for r in cur.fetchall()]


def test_commit_and_rollback(db):
    with db.transaction() as cur:
        cur.execute("INSERT INTO t VALUES (1, 'a')")
    with pytest.raises(RuntimeError):
        with db.transaction() as cur:
            cur.execute("INSERT INTO t VALUES (2, 'b')")
            raise RuntimeError("abandon")
    assert rows(db) == [1]


def test_session_settings(db):
    if isinstance(db, SQLiteDatabase):
        with db.cursor() as cur:
            cur.execute("PRAGMA journal_mode")
            assert cur.fetchone() == ("wal",)
            cur.execute("PRAGMA synchronous")
            assert cur.fetchone() == (2,)        # FULL: COMMIT waits for the disk
            cur.execute("PRAGMA foreign_keys")
            assert cur.fetchone() == (1,)
        return
    with db.cursor() as cur:
        cur.execute("SELECT @@session.time_zone, @@session.tx_isolation, @@session.autocommit")
        assert cur.fetchone() == ("+00:00", "READ-COMMITTED", 1)


def test_a_transaction_is_invisible_until_commit(db):
    """Sessions are autocommit; transaction() still makes its statements one atomic unit."""
    with db.transaction() as cur:
        cur.execute("INSERT INTO t VALUES (7, 'x')")
        with db.cursor() as other:
            other.execute("SELECT COUNT(*) FROM t WHERE id = 7")
            assert other.fetchone()[0] == 0
    with db.cursor() as other:
        other.execute("SELECT COUNT(*) FROM t WHERE id = 7")
        assert other.fetchone()[0] == 1


def test_oversized_values_are_refused_as_permanent(db):
    with pytest.raises(StoreRejected) as raised:
        with db.transaction() as cur:
            cur.execute("INSERT INTO t VALUES (3, %s)", ("x" * 11,))
    assert classify(raised.value) == PERMANENT
    assert rows(db) == []


def test_a_duplicate_key_is_the_stores_to_handle(db):
    """UNIQUE violations reach the store's code as themselves (is_duplicate_key), not typed."""
    from geomail.store.errors import is_duplicate_key
    with db.transaction() as cur:
        cur.execute("INSERT INTO t VALUES (4, 'a')")
    with pytest.raises(Exception) as raised:
        with db.transaction() as cur:
            cur.execute("INSERT INTO t VALUES (4, 'b')")
    assert is_duplicate_key(raised.value)


def test_a_server_that_cannot_be_reached_is_temporary(tmp_path):
    for db in (Database("mysql://nobody@127.0.0.1:1/none?connect_timeout=2"),
               SQLiteDatabase(tmp_path / "missing-dir" / "x.sqlite3")):
        with pytest.raises(StoreUnavailable) as raised:
            db.ping()
        assert classify(raised.value) == TEMPORARY
        db.close()


def test_pool_is_bounded_and_blocking(db):
    """A third user waits for one of the two connections instead of opening a third."""
    entered, release = threading.Event(), threading.Event()
    holders = []

    def hold():
        with db.cursor():
            holders.append(1)
            if len(holders) == 2:
                entered.set()
            release.wait(10)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    assert entered.wait(10)
    waiter_done = threading.Event()
    waiter = threading.Thread(target=lambda: (rows(db), waiter_done.set()))
    waiter.start()
    assert not waiter_done.wait(0.3)
    release.set()
    assert waiter_done.wait(10)
    for thread in threads + [waiter]:
        thread.join(10)


def test_creating_a_database_object_does_not_connect():
    Database("mysql://nobody@127.0.0.1:1/none").close()


# -- checkout without a ping (issue 13: no round trip before each use) -----------------

@pytest.fixture
def one_connection(fresh_db_url):
    db = Database(fresh_db_url(), pool_size=1)
    with db.transaction() as cur:
        cur.execute(TABLE["mysql"])
    yield db
    db.close()


def admin_commands(db):
    """COM_PING (and other admin commands) this session has sent, by the server's count."""
    with db.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Com_admin_commands'")
        return int(cur.fetchone()[1])


def test_a_checkout_sends_no_ping(one_connection):
    before = admin_commands(one_connection)
    for _ in range(5):
        rows(one_connection)
        with one_connection.transaction() as cur:
            cur.execute("SELECT 1")
    assert admin_commands(one_connection) == before


def test_a_connection_killed_while_idle_is_replaced_before_use(one_connection):
    """The server closed it (KILL, wait_timeout): the checkout sees the socket readable
    and DBUtils opens another, so the transaction does not fail."""
    from tests.fixtures.faults import kill_db_connections
    with one_connection.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        (first,) = cur.fetchone()
    assert kill_db_connections(one_connection.url, [first]) == [first]
    time.sleep(0.2)                      # the server's FIN reaches the idle socket
    with one_connection.transaction() as cur:
        cur.execute("INSERT INTO t VALUES (7, 'x')")
        cur.execute("SELECT CONNECTION_ID()")
        (second,) = cur.fetchone()
    assert second != first
    assert rows(one_connection) == [7]


def test_escaping_is_pymysqls_and_round_trips(one_connection):
    """The pool's faster escape_string gives pymysql's output, and MySQL reads it back."""
    import random
    from pymysql.converters import escape_string
    rng = random.Random(13)
    alphabet = "\\\0\n\r\032\"'ab%€\udcff"
    with one_connection.cursor() as cur:
        for _ in range(5000):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
            assert cur.mogrify("%s", (text,)) == "'" + escape_string(text) + "'", repr(text)
    tricky = "a\\b\0c\nd\re\032f\"g'h%s€"
    with one_connection.transaction() as cur:
        cur.execute("INSERT INTO t VALUES (%s, %s)", (8, tricky[:10]))
        cur.execute("SELECT %s", (tricky,))
        assert cur.fetchone() == (tricky,)
    with one_connection.cursor() as cur:
        cur.execute("SELECT v FROM t WHERE id = 8")
        assert cur.fetchone() == (tricky[:10],)


def test_escaping_of_other_values_is_pymysqls(one_connection):
    """Integers and NULL, quoted without pymysql's dispatch, and everything else,
    left to pymysql, come out as pymysql's own escape gives them."""
    import datetime
    import pymysql
    values = [0, 7, -3, 2 ** 70, None, True, False, 1.5, b"\0'x", bytearray(b"ab"),
              datetime.datetime(2026, 12, 7, 15, 0, 1, 250), datetime.datetime(2026, 12, 7),
              datetime.datetime(999, 1, 2, 3, 4, 5), datetime.datetime(9999, 12, 31, 23, 59, 59),
              datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc),
              datetime.date(2026, 1, 2),
              "plain text", "", "a'b"]
    with one_connection.cursor() as cur:
        conn = cur.connection
        for value in values:
            assert cur.mogrify("%s", (value,)) == pymysql.connections.Connection.escape(
                conn, value, conn.encoders), repr(value)
