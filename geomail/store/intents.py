"""SQL of the upload intent log, ``pending_objects`` (see migrations/0002_delivery.sql).

A row says "an S3 object or multipart upload may exist under this key and no
committed row owns it yet".  It is written (autocommit) before the first byte
goes to S3 and removed only when the object is owned (the delivery's own
transaction deletes it together with inserting the attachments rows) or
known to be gone.  Its states, without a schema change:

- written by a live delivery: ``owner_host``/``owner_pid`` name the writer;
- released: the writer gave up but could not confirm the object gone
  (S3 down, a request that timed out and may still be carried out):
  ``owner_pid`` is 0 (no process has pid 0) and ``created_at`` is the time
  it was released, so any host's janitor may sweep it after a grace period;
- abandoned: the writer died (own host: pid not alive), or the row is older
  than any delivery lasts (any host).
"""

from geomail.store import dialect

RELEASED_PID = 0


def record(db, bucket, key, host, pid):
    """Note an upload about to start (autocommit); returns the row id."""
    with db.transaction() as cur:
        cur.execute("INSERT INTO pending_objects (bucket, object_key, owner_host, owner_pid)"
                    " VALUES (%s, %s, %s, %s)", (bucket, key, host, pid))
        return cur.lastrowid


def record_many(db, bucket, keys, host, pid):
    """Note several objects about to be removed (one transaction); returns their row ids."""
    ids = []
    if keys:
        with db.transaction() as cur:
            for key in keys:
                cur.execute("INSERT INTO pending_objects (bucket, object_key, owner_host,"
                            " owner_pid) VALUES (%s, %s, %s, %s)", (bucket, key, host, pid))
                ids.append(cur.lastrowid)
    return ids


FORGET = "DELETE FROM pending_objects WHERE id IN ({marks})"


def forget_in(cur, ids):
    """forget() inside the caller's transaction: the delivery that commits the rows
    owning these objects removes their intents in the same COMMIT."""
    if ids:
        cur.execute(FORGET.format(marks=_marks(ids)), tuple(ids))


def forget(db, ids):
    """Remove intent rows whose objects are gone (or owned by a committed row)."""
    ids = list(ids)
    if ids:
        with db.transaction() as cur:
            forget_in(cur, ids)


def release(db, ids):
    """The writer gives up on these rows' objects without knowing them gone: any janitor's now."""
    ids = list(ids)
    if ids:
        with db.transaction() as cur:
            cur.execute(f"UPDATE pending_objects SET owner_pid = %s, created_at = {dialect.of(db).now}"
                        f" WHERE id IN ({_marks(ids)})", (RELEASED_PID, *ids))


def by_keys(db, keys):
    """[(id, bucket, key)] of the intent rows of these object keys."""
    keys = list(keys)
    if not keys:
        return []
    with db.cursor() as cur:
        cur.execute("SELECT id, bucket, object_key FROM pending_objects"
                    f" WHERE object_key IN ({_marks(keys)})", tuple(keys))
        return [(r[0], r[1], r[2]) for r in cur.fetchall()]


def stale(db, host, live_pids, foreign_age, grace, limit=1000):
    """[(id, bucket, key)] of rows no writer will finish: released at least ``grace``
    seconds ago, written on this host by a process no longer alive, or older than
    ``foreign_age`` seconds (any host: no delivery lasts that long).

    The test is all in SQL, so the rows of live deliveries never fill the batch.
    """
    pids = sorted(int(pid) for pid in live_pids) or [-1]
    ago = dialect.of(db).seconds_ago
    with db.cursor() as cur:
        cur.execute("SELECT id, bucket, object_key FROM pending_objects"
                    f" WHERE (owner_pid = %s AND created_at < {ago})"
                    "  OR (owner_host = %s AND owner_pid <> %s"
                    f"      AND owner_pid NOT IN ({_marks(pids)}))"
                    f"  OR created_at < {ago}"
                    " ORDER BY id LIMIT %s",
                    (RELEASED_PID, grace, host, RELEASED_PID, *pids, foreign_age, limit))
        return [(r[0], r[1], r[2]) for r in cur.fetchall()]


def claim(db, row_id, bucket, key):
    """Decide, under row locks, what may be done with an intent row's object.

    "gone": the row no longer exists (its delivery committed, or another
    janitor forgot it); "referenced": a committed attachments row names the
    object, which must stay; "remove": nothing owns it.  The locking reads
    wait for a delivery transaction still running on these rows (its DELETE
    of the intent row, its INSERT of the attachments row), so a commit whose
    reply was lost is seen as committed, never removed under it.
    """
    with db.transaction() as cur:
        cur.execute("SELECT id FROM pending_objects WHERE id = %s FOR UPDATE", (row_id,))
        if cur.fetchone() is None:
            return "gone"
        if _referenced(cur, bucket, key):
            return "referenced"
        return "remove"


def referenced(db, bucket, key):
    """Whether a committed attachments row names this object (waits for one being written)."""
    with db.transaction() as cur:
        return _referenced(cur, bucket, key)


def _referenced(cur, bucket, key):
    cur.execute("SELECT 1 FROM attachments WHERE bucket = %s AND object_key = %s"
                " LOCK IN SHARE MODE", (bucket, key))
    return cur.fetchone() is not None


def keys_with_intent(db, bucket):
    """{key: (owner_host, owner_pid, age in seconds)} of every intent row of the bucket."""
    age = dialect.of(db).age_seconds.format("created_at")
    with db.cursor() as cur:
        cur.execute(f"SELECT object_key, owner_host, owner_pid, {age} FROM pending_objects"
                    " WHERE bucket = %s", (bucket,))
        return {r[0]: (r[1], int(r[2]), int(r[3])) for r in cur.fetchall()}


def attachment_keys(db, bucket, batch=10000):
    """Iterate (key, decoded size) of every attachments row of the bucket, in id order."""
    last = 0
    while True:
        with db.cursor() as cur:
            cur.execute("SELECT id, object_key, decoded_size FROM attachments"
                        " WHERE bucket = %s AND id > %s ORDER BY id LIMIT %s",
                        (bucket, last, batch))
            rows = cur.fetchall()
        for _, key, size in rows:
            yield key, int(size)
        if len(rows) < batch:
            return
        last = rows[-1][0]


def sweep_lock(db, name):
    """``with sweep_lock(db, name) as held:`` a lock every worker and host of the store
    sees, without waiting: held is False while another is sweeping (skip this round).
    MySQL's GET_LOCK, or a lock file for the embedded store (one host)."""
    return db.named_lock(name, 0)


def _marks(items):
    return ", ".join(["%s"] * len(items))
