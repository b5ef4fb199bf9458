"""Several statements in one request: the results of each, in order.

On MySQL every request is a round trip that costs more than most of the
statements the IMAP side sends (a catch-up is three small reads, a STORE a
lock, a read and a few updates), so statements that do not depend on each
other's results go out together, joined by ';' (the pool's connections have
CLIENT_MULTI_STATEMENTS), and their result sets are read back one by one.
Values are inlined by pymysql's own escaping (``cursor.mogrify``), as
everywhere.  SQLite runs in-process: the statements simply run one after
the other on the same cursor.

Inside ``db.transaction()`` the statements belong to the transaction (the
first request also carries its START TRANSACTION, database.py).  In
autocommit each statement is its own transaction, exactly as if sent apart.
If one fails the server runs none after it and the error is raised.
"""

from geomail.store import dialect
from geomail.store.errors import StoreUnavailable


def execute_all(cur, queries, commit=False):
    """Run ``queries`` ([(sql, args)], args a sequence or None) in one request;
    returns one list of rows per query (empty for statements that return none).

    ``commit``: the statements end a transaction of ``db.transaction()`` and its
    COMMIT goes in the same request (the transaction's own commit then has
    nothing left to send); SQLite commits when the transaction block ends."""
    if not dialect.of(cur).scripts:
        return [_run_one(cur, sql, args) for sql, args in queries]
    statements = [*queries, ("COMMIT", None)] if commit else list(queries)
    if not statements:
        return []
    results = list(_results(cur, statements))
    if len(results) != len(statements):
        raise RuntimeError(f"{len(statements)} statements gave {len(results)} results")
    if commit:
        cur.connection.committed()
        del results[-1]
    return results


def commit_and_read(cur, queries, reads):
    """``queries`` ending a transaction, its COMMIT, then ``reads`` in autocommit,
    all in one request: (one list of rows per query, one per read).  The reads'
    results are None if they failed after the COMMIT (what committed stays
    committed; the caller reads again).  SQLite runs the reads before its commit,
    in the transaction, which no other writer can enter."""
    if not dialect.of(cur).scripts:
        return ([_run_one(cur, sql, args) for sql, args in queries],
                [_run_one(cur, sql, args) for sql, args in reads])
    statements = [*queries, ("COMMIT", None), *reads]
    results = []
    received = _results(cur, statements)
    for rows in received:
        results.append(rows)
        if len(results) == len(queries) + 1:
            break
    if len(results) != len(queries) + 1:
        raise RuntimeError(f"{len(queries) + 1} statements gave {len(results)} results")
    cur.connection.committed()
    try:
        read_results = list(received)
    except Exception:  # noqa: BLE001 - after the COMMIT: the caller reads again
        return results[:-1], None
    return results[:-1], read_results if len(read_results) == len(reads) else None


def _run_one(cur, sql, args):
    cur.execute(sql, args)
    return list(cur.fetchall())


def _results(cur, statements):
    """Send ``statements`` joined by ';' and yield each one's rows, in order."""
    cur.execute(";".join(cur.mogrify(sql, args) for sql, args in statements))
    while True:
        yield list(cur.fetchall()) if cur.description else []
        if not cur.nextset():
            return


def read_all(db, queries):
    """``execute_all`` on a pooled connection in autocommit: reads in one round trip."""
    with db.cursor() as cur:
        return execute_all(cur, queries)


def transaction_all(db, queries, attempts=3):
    """``queries`` as one transaction in one request (MySQL: START TRANSACTION, the
    statements and COMMIT together; SQLite: BEGIN IMMEDIATE ... COMMIT).  Returns
    one list of rows per query.  The server stops at a failing statement, before
    the COMMIT, and the transaction is rolled back; deadlocks and lock-wait
    timeouts are tried again from the start, as in ``db.run_transaction``."""
    if not dialect.of(db).scripts:
        return db.run_transaction(lambda cur: execute_all(cur, queries), attempts)
    for attempt in range(1, attempts + 1):
        try:
            return _mysql_transaction_all(db, queries)
        except StoreUnavailable as exc:
            if attempt == attempts or not exc.retryable:
                raise


def _mysql_transaction_all(db, queries):
    with db.connection("transaction") as conn:
        conn.begin(script=True)        # the request carries its own BEGIN and COMMIT
        cur = conn.cursor()
        try:
            results = execute_all(cur, [("START TRANSACTION", None), *queries, ("COMMIT", None)])
            conn.commit()
            return results[1:-1]
        except BaseException:
            try:
                conn.rollback()
            except Exception:  # the connection is broken; the pool replaces it
                pass
            raise
        finally:
            cur.close()
