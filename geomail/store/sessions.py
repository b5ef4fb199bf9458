"""SQL of the IMAP sessions table: who is logged in now, on every host (``who``, ``kick``).

A worker adds a row when a session logs in and deletes it when the session
ends; a worker that dies leaves its rows, which the next worker started on
the same host deletes (``forget_dead``).  ``kick`` marks rows; the serving
worker finds them with ``kicked`` and ends those sessions.
"""

import os

from geomail.store import batch

SESSION_COLUMNS = ("host", "pid", "session", "address", "remote", "tls", "started_at")


def write(db, host, pid, added, removed):
    """Rows of sessions that logged in, (session, account_id, address, remote, tls,
    started_at) each, and the ids of sessions that ended, of this worker: one request
    (store/batch.py)."""
    queries = []
    if added:
        queries.append(("INSERT INTO imap_sessions (host, pid, session, account_id, address, "
                        "remote, tls, started_at, kick) VALUES "
                        + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, 0)"] * len(added)),
                        [value for session, account_id, address, remote, tls, started in added
                         for value in (host, pid, session, account_id, address, remote[:64],
                                       int(bool(tls)), started)]))
    if removed:
        queries.append(("DELETE FROM imap_sessions WHERE host = %s AND pid = %s AND session IN ("
                        + ", ".join(["%s"] * len(removed)) + ")", [host, pid, *removed]))
    batch.read_all(db, queries)


def forget_dead(db, host, own_pid):
    """Delete the rows of this host's processes that are gone, and any of ``own_pid``
    (a process of that number that ran before this one)."""
    with db.cursor() as cur:
        cur.execute("SELECT DISTINCT pid FROM imap_sessions WHERE host = %s", (host,))
        pids = [int(row[0]) for row in cur.fetchall()]
    gone = [pid for pid in pids if pid == own_pid or not _alive(pid)]
    for pid in gone:
        with db.cursor() as cur:
            cur.execute("DELETE FROM imap_sessions WHERE host = %s AND pid = %s", (host, pid))
    return len(gone)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:        # another user's process: alive
        return True
    return True


def list_sessions(db, address=None):
    """Dicts of the sessions logged in now (all accounts, or one), oldest first."""
    where, args = ("WHERE address = %s", (address,)) if address else ("", ())
    with db.cursor() as cur:
        cur.execute(f"SELECT {', '.join(SESSION_COLUMNS)} FROM imap_sessions {where}"
                    " ORDER BY started_at, session", args)
        rows = cur.fetchall()
    return [dict(zip(SESSION_COLUMNS, (*row[:5], bool(row[5]), row[6])))
            for row in rows]


def kick(db, address=None, session=None):
    """Mark the sessions of an account (or one session by id) to be ended; returns how many."""
    if session:
        where, args = "session = %s", (session,)
    else:
        where, args = "address = %s", (address,)
    with db.cursor() as cur:
        cur.execute(f"UPDATE imap_sessions SET kick = 1 WHERE {where}", args)
        return cur.rowcount


def kicked(db, host, pid):
    """Session ids of this worker that an administrator asked to end."""
    with db.cursor() as cur:
        cur.execute("SELECT session FROM imap_sessions WHERE host = %s AND pid = %s AND kick = 1",
                    (host, pid))
        return [row[0] for row in cur.fetchall()]
