"""Copy every row of one store into another (``geomail-admin migrate-store``).

The two backends have the same tables with the same columns at the same
schema version (migrations are numbered alike), so moving from the embedded
store to MySQL is a copy of each table in the order of its foreign keys,
ids included: every reference (mailbox ids, content ids, UIDs, UIDVALIDITY,
MODSEQ) stays valid and IMAP clients see the same mailboxes, not new ones.
The target must be migrated and hold no account; the source must not be in
use (stop geomail first), since the copy is not one snapshot.
"""

from geomail.store import dialect
from geomail.store.errors import StoreError
from geomail.store.migrations.migrate import current_version

# Parents before children; (table, key columns the copy pages by, in order).
TABLES = (
    ("accounts", ("id",)),
    ("mailboxes", ("id",)),
    ("subscriptions", ("account_id", "name")),
    ("message_contents", ("id",)),
    ("message_content_chunks", ("content_id", "seq")),
    ("messages", ("id",)),
    ("attachments", ("id",)),
    ("expunged", ("mailbox_id", "uid")),
    ("pending_objects", ("id",)),
    ("login_failures", ("kind", "subject")),
)
BATCH = 200


class TransferError(StoreError):
    """The stores cannot be copied (versions differ, the target is not empty)."""


def columns_of(db, table):
    """The table's column names in their order (the same on both backends)."""
    with db.cursor() as cur:
        if dialect.of(db).name == dialect.SQLITE_NAME:
            cur.execute(f"SELECT name FROM pragma_table_info('{table}') ORDER BY cid")
        else:
            cur.execute("SELECT column_name FROM information_schema.columns"
                        " WHERE table_schema = DATABASE() AND table_name = %s"
                        " ORDER BY ordinal_position", (table,))
        return [row[0] for row in cur.fetchall()]


def check_copyable(source, target):
    """Raise TransferError unless both are at one schema version and the target is empty."""
    have, want = current_version(source), current_version(target)
    if have != want:
        raise TransferError(f"schema versions differ: {source.describe()} is at {have}, "
                            f"{target.describe()} at {want}; migrate both first")
    with target.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM accounts")
        if cur.fetchone()[0]:
            raise TransferError(f"{target.describe()} already holds accounts; "
                                "migrate-store copies into an empty store only")


def rows_in(db, table):
    with db.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        return int(cur.fetchone()[0])


def copy_table(source, target, table, key, progress=None):
    """Copy one table in key order, BATCH rows per target transaction; returns the count."""
    columns = columns_of(target, table)
    missing = set(columns) - set(columns_of(source, table))
    if missing:
        raise TransferError(f"{table}: {source.describe()} lacks columns {sorted(missing)}")
    names = ", ".join(columns)
    insert = (f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})")
    order = ", ".join(key)
    positions = [columns.index(k) for k in key]
    copied, after = 0, None
    while True:
        with source.cursor() as cur:
            if after is None:
                cur.execute(f"SELECT {names} FROM {table} ORDER BY {order} LIMIT %s", (BATCH,))
            else:   # keyset: the rows after the last one copied, by the whole key
                cur.execute(f"SELECT {names} FROM {table} WHERE ({order}) > ({_marks(key)})"
                            f" ORDER BY {order} LIMIT %s", (*after, BATCH))
            rows = cur.fetchall()
        if not rows:
            return copied
        with target.transaction() as cur:
            cur.executemany(insert, [tuple(row) for row in rows])
        copied += len(rows)
        after = tuple(rows[-1][i] for i in positions)
        if progress is not None:
            progress(table, copied)


def copy_counters(source, target):
    """The next UIDVALIDITY: the target hands out values above any the source gave."""
    with source.cursor() as cur:
        cur.execute("SELECT next_value FROM uidvalidity_counter WHERE id = 1")
        value = cur.fetchone()[0]
    with target.transaction() as cur:
        cur.execute("UPDATE uidvalidity_counter SET next_value = GREATEST(next_value, %s)"
                    " WHERE id = 1", (value,))


def buckets_and_keys(db):
    """{bucket: [object key, ...]} of every attachments row, in id order."""
    found = {}
    with db.cursor() as cur:
        cur.execute("SELECT bucket, object_key FROM attachments ORDER BY id")
        for bucket, key in cur.fetchall():
            found.setdefault(bucket, []).append(key)
    return found


def _marks(items):
    return ", ".join(["%s"] * len(items))
