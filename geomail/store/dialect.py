"""What differs between the two SQL backends, named once (MySQL/MariaDB and SQLite).

The store's statements are written once, in the SQL both backends speak.
Where they cannot be (the database clock, a uid handed back by an UPDATE,
upserts, a text view of a BLOB), the statement takes its fragment from the
``Dialect`` of the cursor it runs on: ``of(cur).now`` and so on.  Anything
more different than a fragment is a branch on ``of(cur).name`` next to the
statement, so that both forms are read together.

The SQLite connection itself (geomail/store/sqlite.py) also rewrites three
MySQL spellings that have an exact SQLite meaning: the ``%s`` parameter
style, ``INSERT/UPDATE IGNORE`` (``OR IGNORE``), and the row-lock suffixes
``FOR UPDATE``/``LOCK IN SHARE MODE``, which SQLite does not need because
a write transaction (``BEGIN IMMEDIATE``) already holds the whole database.
"""

import dataclasses

MYSQL_NAME = "mysql"
SQLITE_NAME = "sqlite"


@dataclasses.dataclass(frozen=True)
class Dialect:
    name: str
    # the database's clock, UTC, with sub-second precision (a DATETIME(6) value)
    now: str
    # "that many seconds before now", for one parameter (%s) of seconds
    seconds_ago: str
    # whole seconds from a DATETIME column to now: format with the column
    age_seconds: str
    # the number of characters of a text value
    char_length: str
    # UPDATE ... RETURNING is available (else MySQL's LAST_INSERT_ID(expr))
    returning: bool
    # several statements in one request (Database.run_script): MySQL, where each
    # statement is a round trip; SQLite runs in-process and has no need
    scripts: bool = False
    # "FROM messages" read through its (mailbox_id, modseq) index: what changed since
    # a modseq, ordered by uid, is otherwise read along the uid index, every row of
    # the mailbox for a few changed ones
    messages_by_modseq: str = "messages"

    def concat(self, *parts):
        """SQL joining the text of ``parts`` (MySQL's ``||`` is OR)."""
        if self.name == MYSQL_NAME:
            return "CONCAT(" + ", ".join(parts) + ")"
        return "(" + " || ".join(parts) + ")"


MYSQL = Dialect(
    name=MYSQL_NAME,
    now="NOW(6)",
    seconds_ago="NOW(6) - INTERVAL %s SECOND",
    age_seconds="TIMESTAMPDIFF(SECOND, {0}, NOW(6))",
    char_length="CHAR_LENGTH({0})",
    returning=False,
    scripts=True,
    messages_by_modseq="messages FORCE INDEX (messages_mailbox_modseq)",
)

# SQLite keeps DATETIME as text 'YYYY-MM-DD HH:MM:SS.SSS' (sorts as it compares);
# '%%' because statements go through the %s parameter style first.
_SQLITE_NOW = "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')"

SQLITE = Dialect(
    name=SQLITE_NAME,
    now=_SQLITE_NOW,
    seconds_ago="strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', '-' || %s || ' seconds')",
    age_seconds="CAST((julianday('now') - julianday({0})) * 86400 AS INTEGER)",
    char_length="LENGTH({0})",
    returning=True,
    messages_by_modseq="messages INDEXED BY messages_mailbox_modseq",
)


def of(cursor_or_db):
    """The dialect of a cursor or a database: SQLite's own classes say so, pymysql's do not."""
    return getattr(cursor_or_db, "dialect", MYSQL)
