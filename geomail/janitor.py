"""Removal of S3 objects and multipart uploads that nothing owns (the intent log's other end).

Every object geomail writes is named first by an intent row in
``pending_objects`` (geomail/store/intents.py).  The row goes away either in
the transaction that makes a committed attachments row own the object, or
once the object is known to be gone, never before.  The janitor takes the
rows no writer will finish (released by a delivery that gave up, left by a
dead process of this host, or older than any delivery of any host), and for
each: checks under row locks that no committed attachments row names the
object (then the row only is forgotten), else aborts the key's open
multipart uploads and deletes the object.  A request S3 accepted before we
gave up may still be carried out after that (a paused S3 resumes with a
queue of requests), so a row is forgotten only when a removal succeeded at
least ``grace`` seconds after this janitor's first successful removal of it.

Every worker sweeps at start and then every ``--janitor-interval`` seconds;
a sweep runs under MySQL's GET_LOCK, so workers and hosts sharing the
database take turns instead of doing the same work at once.

``discard`` is the one path for removing an object that is no longer wanted
(EXPUNGE, account deletion): intent row first, object next, row last.
"""

import logging
import os
import socket
import time

from geomail import metrics
from geomail.blobs.errors import BlobStoreError
from geomail.store import intents

log = logging.getLogger("geomail.janitor")

INTERVAL = 15.0                     # default seconds between sweeps (--janitor-interval)
FOREIGN_AGE = 3600                  # seconds after which any host's intent is abandoned
BATCH = 1000                        # intent rows looked at per sweep

# row id -> time.monotonic() of this process's first successful removal of its object
_FIRST_REMOVED = {}


def interval(config):
    return float(getattr(config, "janitor_interval", None) or INTERVAL)


def grace(config):
    """How long a request S3 accepted may still be carried out: two sweep intervals."""
    return 2 * interval(config)


def live_pids():
    return {int(entry) for entry in os.listdir("/proc") if entry.isdigit()}


def lock_name(db):
    return f"geomail-janitor:{db.database_name}"


def sweep(context):
    """One pass; returns how many intent rows were settled (object gone or owned).

    Returns 0 without doing anything while another worker or host sweeps.
    """
    name = lock_name(context.db)
    with intents.sweep_lock(context.db, name) as held:
        if not held:
            log.debug("janitor: lock %s held by another worker or host; sweep skipped", name)
            return 0
        return _sweep(context, grace(context.config))


def _sweep(context, grace_seconds):
    rows = intents.stale(context.db, socket.gethostname(), live_pids(), FOREIGN_AGE,
                         grace_seconds, BATCH)
    seen = {row[0] for row in rows}
    rows += [row for row in _own_abandoned(context, grace_seconds) if row[0] not in seen]
    settled = 0
    for row_id, bucket, key in rows:
        try:
            if settle(context, row_id, bucket, key, grace_seconds):
                settled += 1
        except BlobStoreError as exc:
            log.warning("janitor: could not remove %s/%s: %s", bucket, key, exc)
    if settled:
        log.info("janitor: settled %d abandoned upload intent(s)", settled)
    return settled


def settle(context, row_id, bucket, key, grace_seconds):
    """Remove one stale intent's object; True once the row is gone (forgotten or owned)."""
    actions = metrics.get().janitor_actions
    state = intents.claim(context.db, row_id, bucket, key)
    if state == "gone":
        _FIRST_REMOVED.pop(row_id, None)
        actions.labels("intent_settled").inc()
        return True
    if state == "referenced":        # a committed row owns the object: keep it
        intents.forget(context.db, [row_id])
        _FIRST_REMOVED.pop(row_id, None)
        actions.labels("intent_owned").inc()
        return True
    context.blobs_for(bucket).remove(key)
    actions.labels("object_removed").inc()
    log.debug("janitor: removed %s/%s of intent %d", bucket, key, row_id)
    now = time.monotonic()
    first = _FIRST_REMOVED.setdefault(row_id, now)
    if now - first < grace_seconds:
        return False                 # removed; forgotten at a sweep after the grace
    intents.forget(context.db, [row_id])
    _FIRST_REMOVED.pop(row_id, None)
    actions.labels("intent_settled").inc()
    return True


def _own_abandoned(context, grace_seconds):
    """Intent rows of keys this process's deliveries left behind (their writer is alive).

    A delivery leaves its keys in ``ingest.ABANDONED`` when it could not
    release its rows (MySQL lost) or when its COMMIT's outcome is unknown.
    """
    from geomail.ingest import ABANDONED
    now = time.monotonic()
    keys = [key for key, since in list(ABANDONED.items()) if now - since >= grace_seconds][:500]
    if not keys:
        return []
    rows = intents.by_keys(context.db, keys)
    for key in keys:             # no row: nothing to do (it was removed, or never written)
        ABANDONED.pop(key, None)
    for _, _, key in rows:       # a row: keep the key until the row is settled
        ABANDONED.setdefault(key, now - grace_seconds)
    return rows


def discard(db, store, keys, host=None, pid=None):
    """Remove objects no longer wanted: intent rows first, then the objects, then the rows.

    Returns the keys whose removal could not be confirmed; their rows stay,
    released, for the janitor.  The caller has already committed whatever made
    the objects unwanted (nothing refers to them).
    """
    keys = list(keys)
    if not keys:
        return []
    try:
        ids = intents.record_many(db, store.bucket, keys, host or socket.gethostname(),
                                  os.getpid() if pid is None else pid)
    except Exception:
        # MySQL is down: no intent can name them, so remove them now at least (if this
        # fails too, they are leaks that only fsck finds)
        log.warning("could not record intents for %d object(s) to remove", len(keys),
                    exc_info=True)
        store.delete(keys)
        return []
    try:
        store.delete(keys)           # completed objects: no multipart upload to abort
    except BlobStoreError as exc:
        log.warning("could not remove %d object(s) of %s (left to the janitor): %s",
                    len(keys), store.bucket, exc)
        intents.release(db, ids)
        return keys
    intents.forget(db, ids)
    return []
