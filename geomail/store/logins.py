"""Failed-login counters shared by every worker and host (table login_failures).

The IMAP login throttle (imap/auth.py) keys its counters by (kind, subject):
("account", normalized user name) and ("address", client address or /64).
Each counter counts attempts in a fixed window that starts at the first
attempt and ends ``window`` seconds later; the next attempt after that starts
a new window at 1.  The clock is the database's (NOW(6), UTC by the session
set-up), so every worker and host agrees on it.

An attempt is *reserved* before the password is checked (``reserve``: one
upsert per attempt, so concurrent attempts on any worker each get their own
number and the budget cannot be overshot by racing), and given back after a
successful login (``refund``).
"""

from geomail.store import batch, dialect

ACCOUNT = "account"
ADDRESS = "address"
MAX_SUBJECT_LENGTH = 320  # the column; longer names are never accounts (see accounts.py)
_PURGE_BATCH = 1000

# The upsert in each backend's spelling.  MySQL's ON DUPLICATE KEY UPDATE runs
# its assignments left to right and later ones see earlier results, so
# failures is computed first, from the old window_start; SQLite's ON CONFLICT
# reads the old row in every assignment.
_RESERVE = {
    dialect.MYSQL_NAME: (
        "(%s, %s, 1, NOW(6))",
        " ON DUPLICATE KEY UPDATE"
        " failures = IF(window_start < NOW(6) - INTERVAL %s SECOND, 1, failures + 1),"
        " window_start = IF(window_start < NOW(6) - INTERVAL %s SECOND, NOW(6), window_start)"),
    dialect.SQLITE_NAME: (
        f"(%s, %s, 1, {dialect.SQLITE.now})",
        f" ON CONFLICT (kind, subject) DO UPDATE SET"
        f" failures = CASE WHEN window_start < {dialect.SQLITE.seconds_ago} THEN 1"
        f" ELSE failures + 1 END,"
        f" window_start = CASE WHEN window_start < {dialect.SQLITE.seconds_ago}"
        f" THEN {dialect.SQLITE.now} ELSE window_start END"),
}


def _subject_filter(keys):
    return " OR ".join(["(kind = %s AND subject = %s)"] * len(keys)), [v for key in keys for v in key]


def reserve(db, keys, window):
    """Count one attempt against every (kind, subject) of ``keys``; returns {key: attempts in window}.

    The upsert and the read run in one short transaction: the upsert's row
    locks make a concurrent attempt wait the few milliseconds until this one
    has read its own count, so each attempt sees exactly its own number.
    Keys are sorted so that every caller locks rows in the same order.
    """
    keys = sorted(set(keys))
    if not keys:
        return {}
    row, update = _RESERVE[dialect.of(db).name]
    rows = ", ".join([row] * len(keys))
    params = [v for key in keys for v in key] + [window, window]
    where, where_params = _subject_filter(keys)

    _, counted = batch.transaction_all(db, [   # one request on MySQL (store/batch.py)
        (f"INSERT INTO login_failures (kind, subject, failures, window_start) "
         f"VALUES {rows}{update}", params),
        (f"SELECT kind, subject, failures FROM login_failures WHERE {where}", where_params),
    ])
    return counts_of(keys, counted)


def peek_query(db, keys, window):
    """The statement (sql, args) reading the attempts counted in the current window
    of each key, counting nothing (``counts_of`` reads its rows)."""
    keys = sorted(set(keys))
    if not keys:
        return "SELECT kind, subject, failures FROM login_failures WHERE FALSE", ()
    where, params = _subject_filter(keys)
    return (f"SELECT kind, subject, failures FROM login_failures WHERE ({where}) "
            f"AND window_start >= {dialect.of(db).seconds_ago}", [*params, window])


def counts_of(keys, rows):
    """{key: attempts} from peek_query's rows (0 for a key without a row)."""
    counts = {(kind, subject): int(failures) for kind, subject, failures in rows}
    return {key: counts.get(key, 0) for key in sorted(set(keys))}


def refund(db, keys):
    """Give back the attempt ``reserve`` counted (it was a successful login, not a failure)."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return
    where, params = _subject_filter(keys)
    with db.cursor() as cur:
        cur.execute(f"UPDATE login_failures SET failures = failures - 1 "
                    f"WHERE failures > 0 AND ({where})", params)


def purge_expired(db, window):
    """Delete up to a batch of counters whose window has passed; returns how many."""
    ago = dialect.of(db).seconds_ago
    with db.cursor() as cur:    # SQLite has no DELETE ... LIMIT: the batch by rowid
        if dialect.of(db).name == dialect.SQLITE_NAME:
            cur.execute("DELETE FROM login_failures WHERE rowid IN (SELECT rowid FROM login_failures"
                        f" WHERE window_start < {ago} LIMIT %s)", (window, _PURGE_BATCH))
        else:
            cur.execute(f"DELETE FROM login_failures WHERE window_start < {ago} LIMIT %s",
                        (window, _PURGE_BATCH))
        return cur.rowcount

