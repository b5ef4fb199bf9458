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

ACCOUNT = "account"
ADDRESS = "address"
MAX_SUBJECT_LENGTH = 320  # the column; longer names are never accounts (see accounts.py)
_PURGE_BATCH = 1000

_RESERVE_ROW = "(%s, %s, 1, NOW(6))"
# Assignments of ON DUPLICATE KEY UPDATE run left to right and later ones
# see earlier results, so failures is computed first, from the old window_start.
_RESERVE_UPDATE = (
    " ON DUPLICATE KEY UPDATE"
    " failures = IF(window_start < NOW(6) - INTERVAL %s SECOND, 1, failures + 1),"
    " window_start = IF(window_start < NOW(6) - INTERVAL %s SECOND, NOW(6), window_start)")


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
    rows = ", ".join([_RESERVE_ROW] * len(keys))
    params = [v for key in keys for v in key] + [window, window]
    where, where_params = _subject_filter(keys)

    def work(cur):
        cur.execute(f"INSERT INTO login_failures (kind, subject, failures, window_start) "
                    f"VALUES {rows}{_RESERVE_UPDATE}", params)
        cur.execute(f"SELECT kind, subject, failures FROM login_failures WHERE {where}", where_params)
        return {(kind, subject): int(failures) for kind, subject, failures in cur.fetchall()}

    counts = db.run_transaction(work)
    return {key: counts.get(key, 0) for key in keys}


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
    with db.cursor() as cur:
        cur.execute("DELETE FROM login_failures WHERE window_start < NOW(6) - INTERVAL %s SECOND "
                    "LIMIT %s", (window, _PURGE_BATCH))
        return cur.rowcount

