"""Schema migrations against the real MariaDB."""

import threading

import pytest

from geomail.store.database import Database
from geomail.store.errors import SchemaTooNew, SchemaTooOld
from geomail.store.migrations import check_version, current_version, latest_version, migrate
from geomail.store.migrations.migrate import split_statements

TABLES = {"schema_version", "accounts", "mailboxes", "subscriptions", "message_contents",
          "messages", "attachments", "expunged"}


def tables(db):
    with db.cursor() as cur:
        cur.execute("SELECT table_name, engine FROM information_schema.tables "
                    "WHERE table_schema = DATABASE()")
        return dict(cur.fetchall())


@pytest.fixture
def empty_db(fresh_db_url):
    db = Database(fresh_db_url(), pool_size=4)
    yield db
    db.close()


def test_migrate_from_empty(empty_db):
    assert current_version(empty_db) == 0
    assert migrate(empty_db) == (0, latest_version())
    found = tables(empty_db)
    assert TABLES <= set(found)
    assert set(found.values()) == {"InnoDB"}
    assert check_version(empty_db) == latest_version()


def test_migrate_twice_is_a_no_op(empty_db):
    migrate(empty_db)
    before = tables(empty_db)
    assert migrate(empty_db) == (latest_version(), latest_version())
    assert tables(empty_db) == before
    with empty_db.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM schema_version")
        assert cur.fetchone()[0] == latest_version()


def test_newer_schema_is_refused(empty_db):
    migrate(empty_db)
    newer = latest_version() + 1
    with empty_db.transaction() as cur:
        cur.execute("INSERT INTO schema_version (version, name) VALUES (%s, 'from_the_future')", (newer,))
    with pytest.raises(SchemaTooNew) as info:
        migrate(empty_db)
    assert str(newer) in str(info.value) and str(latest_version()) in str(info.value)
    with pytest.raises(SchemaTooNew):
        check_version(empty_db)


def test_unmigrated_database_is_too_old(empty_db):
    with pytest.raises(SchemaTooOld) as info:
        check_version(empty_db)
    assert "migrate" in str(info.value)


def test_concurrent_migrations_both_succeed(fresh_db_url):
    url = fresh_db_url()
    databases = [Database(url, pool_size=2) for _ in range(4)]
    barrier = threading.Barrier(len(databases))
    results, errors = [], []

    def run(db):
        barrier.wait()
        try:
            results.append(migrate(db))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    latest = latest_version()
    assert sorted(results) == [(0, latest)] + [(latest, latest)] * (len(databases) - 1)
    assert current_version(databases[0]) == latest
    for db in databases:
        db.close()


def test_split_statements_keeps_comments_inside_and_needs_semicolons():
    sql = "-- header\n\nCREATE TABLE a (\n  x INT -- note\n);\nCREATE TABLE b (y INT);\n"
    assert split_statements(sql) == ["CREATE TABLE a (\n  x INT -- note\n)", "CREATE TABLE b (y INT)"]
    with pytest.raises(Exception):
        split_statements("CREATE TABLE c (z INT)\n")
