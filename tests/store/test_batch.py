"""Several statements in one request (geomail/store/batch.py) and a transaction whose
START TRANSACTION rides with its first statement (database.ScriptConnection), on
both backends: each statement's rows come back in order, a failing statement stops
the rest and rolls the transaction back, reads sent after a COMMIT see it."""

import pytest

from geomail.store import batch
from geomail.store.database import Database
from geomail.store.sqlite import SQLiteDatabase

TABLE = {
    "mysql": "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB",
    "sqlite": "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
}


@pytest.fixture(params=sorted(TABLE))
def db(request, tmp_path):
    if request.param == "mysql":
        db = Database(request.getfixturevalue("fresh_db_url")(), pool_size=1)
    else:
        db = SQLiteDatabase(tmp_path / "t.sqlite3", pool_size=1)
    with db.transaction() as cur:
        cur.execute(TABLE[request.param])
    yield db
    db.close()


def rows(db):
    with db.cursor() as cur:
        cur.execute("SELECT id, v FROM t ORDER BY id")
        return [tuple(r) for r in cur.fetchall()]


def test_each_statement_gets_its_own_rows_in_order(db):
    with db.transaction() as cur:
        cur.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    results = batch.read_all(db, [
        ("SELECT id FROM t WHERE id > %s ORDER BY id", (1,)),
        ("UPDATE t SET v = %s WHERE id = %s", ("it's", 1)),    # a quote, escaped
        ("SELECT v FROM t WHERE id = %s", (1,)),
        ("SELECT id FROM t WHERE id > %s", (9,)),
    ])
    assert [[tuple(r) for r in result] for result in results] == [
        [(2,), (3,)], [], [("it's",)], []]
    assert batch.read_all(db, []) == []


def test_a_failing_statement_rolls_the_whole_transaction_back(db):
    with db.transaction() as cur:
        cur.execute("INSERT INTO t VALUES (1, 'a')")
    with pytest.raises(Exception):
        batch.transaction_all(db, [("INSERT INTO t VALUES (%s, %s)", (2, "b")),
                                   ("INSERT INTO t VALUES (%s, %s)", (1, "dup"))])
    assert rows(db) == [(1, "a")]
    results = batch.transaction_all(db, [("INSERT INTO t VALUES (%s, %s)", (2, "b")),
                                         ("SELECT COUNT(*) FROM t", None)])
    assert results[1][0][0] == 2 and rows(db) == [(1, "a"), (2, "b")]


def test_commit_and_read_sees_what_it_committed(db):
    with db.transaction() as cur:
        done, read = batch.commit_and_read(cur, [("INSERT INTO t VALUES (%s, %s)", (5, "e"))],
                                           [("SELECT id, v FROM t", None)])
    assert done == [[]] and [tuple(r) for r in read[0]] == [(5, "e")]
    assert rows(db) == [(5, "e")]


def test_execute_all_commit_ends_the_transaction(db):
    with db.transaction() as cur:
        cur.execute("INSERT INTO t VALUES (1, 'a')")
        batch.execute_all(cur, [("UPDATE t SET v = %s WHERE id = %s", ("z", 1))], commit=True)
    assert rows(db) == [(1, "z")]


def test_a_transaction_whose_first_statement_fails_leaves_nothing_open(db):
    for new_id in (1, 2):     # one pooled connection: the second round reuses it
        with pytest.raises(Exception):
            with db.transaction() as cur:
                cur.execute("INSERT INTO nope VALUES (1)")
        with db.transaction() as cur:
            cur.execute("INSERT INTO t VALUES (%s, 'x')", (new_id,))
    with db.transaction():
        pass                  # nothing sent, nothing to end
    assert rows(db) == [(1, "x"), (2, "x")]


def test_a_transaction_is_invisible_until_its_commit(db):
    """START TRANSACTION rides with the first statement: another connection still
    sees nothing before the COMMIT (on SQLite a WAL reader beside the writer)."""
    other = (SQLiteDatabase(db.path, pool_size=1) if isinstance(db, SQLiteDatabase)
             else Database(db.url, pool_size=1))
    try:
        with db.transaction() as cur:
            cur.execute("INSERT INTO t VALUES (7, 'g')")      # carries START TRANSACTION
            assert rows(other) == []
        assert rows(other) == [(7, "g")]
    finally:
        other.close()
