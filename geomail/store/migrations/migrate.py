"""Apply the versioned SQL files in this directory, once, in order.

``NNNN_name.sql`` files are schema versions; the ``schema_version`` table
records which ones a database has. Several hosts may start together: the
migration runs under the server-wide named lock ``geomail.migrate``, and the
one that gets it second finds nothing left to do.

MySQL commits DDL implicitly, so a migration that fails half-way cannot be
rolled back; each file should therefore be small, and the error names the
file and statement so an operator can finish it by hand.

The embedded store (SQLite) has its own files in ``sqlite/``, numbered and
named as these are: version N means the same tables on both backends.
SQLite's DDL is transactional, so there each file is applied all or
nothing, under a host-wide lock file instead of GET_LOCK.
"""

import pathlib
import re

from geomail.store import dialect
from geomail.store.errors import MigrationLockTimeout, SchemaTooNew, SchemaTooOld, StoreError

MIGRATIONS_DIR = pathlib.Path(__file__).resolve().parent
SQLITE_MIGRATIONS_DIR = MIGRATIONS_DIR / "sqlite"
LOCK_NAME = "geomail.migrate"
LOCK_TIMEOUT = 60  # seconds; a first migration of an empty database takes well under that

_FILE_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INT UNSIGNED NOT NULL,
    name        VARCHAR(255) NOT NULL,
    applied_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
"""

_CREATE_SQLITE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER NOT NULL PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
)
"""


class MigrationError(StoreError):
    """A statement of a migration file failed; names the file and the statement."""


def available_migrations(directory=MIGRATIONS_DIR):
    """[(version, path)] of the migration files, checked to be numbered 1, 2, 3, ... without gaps."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if not match:
            raise MigrationError(f"migration file name {path.name!r} is not NNNN_lowercase_name.sql")
        found.append((int(match.group(1)), path))
    for expected, (version, path) in enumerate(found, start=1):
        if version != expected:
            raise MigrationError(f"migration {path.name} out of sequence: expected version {expected}")
    return found


def migrations_dir(db):
    """The migration files of ``db``'s backend."""
    return SQLITE_MIGRATIONS_DIR if _is_sqlite(db) else MIGRATIONS_DIR


def _is_sqlite(db):
    return dialect.of(db).name == dialect.SQLITE_NAME


def latest_version(db=None):
    """The schema version this code expects (the same number on both backends)."""
    migrations = available_migrations(migrations_dir(db) if db is not None else MIGRATIONS_DIR)
    return migrations[-1][0] if migrations else 0


def split_statements(sql):
    """Split a migration file into statements: each ends with ';' at the end of a line.

    Lines starting with '--' are comments. Keep ';' out of string literals
    at line ends and this simple rule holds.
    """
    statements, current = [], []
    for line in sql.splitlines():
        comment = line.strip().startswith("--")
        if (comment or not line.strip()) and not current:
            continue
        current.append(line)
        if not comment and line.rstrip().endswith(";"):
            statements.append("\n".join(current).rstrip().rstrip(";").strip())
            current = []
    if any(line.strip() and not line.strip().startswith("--") for line in current):
        raise MigrationError("migration ends with a statement that has no ';'")
    return statements


def _version_of(cur):
    cur.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    return int(cur.fetchone()[0])


def current_version(db):
    """The database's schema version; 0 for an empty database."""
    with db.cursor() as cur:
        if _is_sqlite(db):
            cur.execute("SELECT COUNT(*) FROM sqlite_master "
                        "WHERE type = 'table' AND name = 'schema_version'")
        else:
            cur.execute("SELECT COUNT(*) FROM information_schema.tables "
                        "WHERE table_schema = DATABASE() AND table_name = 'schema_version'")
        if not cur.fetchone()[0]:
            return 0
        return _version_of(cur)


def check_version(db):
    """Raise SchemaTooNew/SchemaTooOld unless the database is exactly at this code's version.

    Workers call this at start instead of migrating: migration is an explicit
    operator step (``geomail-admin migrate``) or the master's, not a race of N workers.
    """
    have, want = current_version(db), latest_version(db)
    if have > want:
        raise SchemaTooNew(have, want)
    if have < want:
        raise SchemaTooOld(have, want)
    return have


def migrate(db):
    """Bring the database to the latest schema; returns (from_version, to_version).

    Safe to run concurrently from several processes or hosts and a no-op
    when there is nothing to do. Raises SchemaTooNew when the database is
    ahead of this code.
    """
    migrations = available_migrations(migrations_dir(db))
    latest = migrations[-1][0] if migrations else 0
    if _is_sqlite(db):
        return _migrate_sqlite(db, migrations, latest)
    with db.connection() as conn:
        cur = conn.cursor()
        try:
            _acquire_lock(cur)
            try:
                cur.execute(_CREATE_VERSION_TABLE)
                start = _version_of(cur)
                conn.commit()
                if start > latest:
                    raise SchemaTooNew(start, latest)
                for version, path in migrations:
                    if version > start:
                        _apply(conn, cur, version, path)
                return start, max(start, latest)
            finally:
                conn.rollback()
                cur.execute("SELECT RELEASE_LOCK(%s)", (LOCK_NAME,))
                cur.fetchall()
        finally:
            cur.close()


def _acquire_lock(cur):
    """Wait for the server-wide migration lock; GET_LOCK returns 1 when held, 0 on timeout."""
    cur.execute("SELECT GET_LOCK(%s, %s)", (LOCK_NAME, LOCK_TIMEOUT))
    if cur.fetchone()[0] != 1:
        raise MigrationLockTimeout(
            f"could not take the migration lock {LOCK_NAME!r} within {LOCK_TIMEOUT} s; "
            "another geomail is migrating this server (or died holding it)")


def _migrate_sqlite(db, migrations, latest):
    """migrate() for the embedded store: each file in one transaction, under a lock file."""
    with db.named_lock(LOCK_NAME, LOCK_TIMEOUT) as held:
        if not held:
            raise MigrationLockTimeout(
                f"could not take the migration lock of {db.describe()} within {LOCK_TIMEOUT} s; "
                "another geomail of this host is migrating it")
        with db.connection() as conn:
            cur = conn.cursor()
            cur.execute(_CREATE_SQLITE_VERSION_TABLE)
            start = _version_of(cur)
            if start > latest:
                raise SchemaTooNew(start, latest)
            for version, path in migrations:
                if version > start:
                    conn.begin()
                    try:
                        _apply(conn, cur, version, path)
                    except BaseException:
                        conn.rollback()
                        raise
            return start, max(start, latest)


def _apply(conn, cur, version, path):
    """Run one migration file and record it."""
    for statement in split_statements(path.read_text(encoding="utf-8")):
        try:
            cur.execute(statement)
        except Exception as exc:
            first_line = statement.splitlines()[0]
            raise MigrationError(f"migration {path.name} failed at {first_line!r}: {exc}") from exc
    cur.execute("INSERT INTO schema_version (version, name) VALUES (%s, %s)", (version, path.stem))
    conn.commit()
