"""Clean-up of S3 objects whose delivery died with its worker.

A delivery notes each upload in ``pending_objects`` before it starts and
removes the note when it commits or aborts.  A note left behind by a
process that no longer exists (on this host), or older than an hour
(any host), names an object or multipart upload that nothing refers to:
remove it.  Every worker sweeps at start and then every ``INTERVAL``.
"""

import logging
import os
import socket
import time

from geomail.blobs.s3 import BlobStoreError
from geomail.store import delivery as sql

log = logging.getLogger("geomail.janitor")

INTERVAL = 15.0                     # seconds between sweeps
FOREIGN_AGE = 3600                  # seconds before another host's notes count as abandoned
GRACE = 5.0                         # seconds before this process's own abandoned keys are swept


def live_pids():
    return {int(entry) for entry in os.listdir("/proc") if entry.isdigit()}


def sweep(context):
    """One pass; returns how many abandoned objects were removed.

    Rows of dead processes are abandoned; so are the rows of keys this
    process's own deliveries gave up on (``delivery.ABANDONED``) once they
    have been left for ``GRACE`` seconds.
    """
    rows = sql.pending_for_cleanup(context.db, socket.gethostname(), live_pids(), FOREIGN_AGE)
    rows += _own_abandoned(context)
    removed = []
    for row_id, bucket, key in rows:
        try:
            remove_object(context, bucket, key)
        except BlobStoreError as exc:
            log.warning("janitor: could not remove %s/%s: %s", bucket, key, exc)
            continue
        removed.append(row_id)
    sql.forget_pending(context.db, removed)
    if removed:
        log.info("janitor: removed %d abandoned upload(s)", len(removed))
    return len(removed)


def _own_abandoned(context):
    """Intent rows of keys this process's deliveries left behind (their writer is alive)."""
    from geomail.delivery import ABANDONED
    now = time.monotonic()
    keys = [key for key, since in list(ABANDONED.items()) if now - since >= GRACE][:500]
    if not keys:
        return []
    rows = sql.pending_by_keys(context.db, keys)
    for key in keys:             # no row: nothing to do (it was removed, or never written)
        ABANDONED.pop(key, None)
    for _, _, key in rows:       # a row: keep the key until its object is gone
        ABANDONED.setdefault(key, now - GRACE)
    return rows


def remove_object(context, bucket, key):
    """Abort multipart uploads of key and delete the object, if either exists."""
    store = context.blobs_for(bucket)
    for upload_key, upload_id in store.list_multipart_uploads(prefix=key):
        if upload_key == key:
            store.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    store.delete([key])
