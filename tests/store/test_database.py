"""Database: pooled connections, transactions that commit or roll back."""

import threading

import pytest

from geomail.store.database import Database


@pytest.fixture
def db(fresh_db_url):
    db = Database(fresh_db_url(), pool_size=2)
    with db.transaction() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB")
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


def test_strict_mode_refuses_oversized_values(db):
    import pymysql
    with pytest.raises(pymysql.err.DataError):
        with db.transaction() as cur:
            cur.execute("INSERT INTO t VALUES (3, %s)", ("x" * 11,))


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
