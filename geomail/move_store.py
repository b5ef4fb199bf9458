"""Move a whole store to another backend: ``geomail-admin migrate-store``.

For an embedded installation outgrowing its host: every object of the local
blob directory goes to the S3 bucket first, then every row of the SQLite
file to MySQL (geomail/store/transfer.py), so the target never holds a row
whose object is missing.  The keys and ids are the same on both sides, and
so are UIDVALIDITY and UIDs: clients keep their caches.  geomail must be
stopped meanwhile; a copy that fails leaves the source as it was.
"""

import time

from geomail.store import transfer


def move(source_db, source_blobs, target_db, target_blobs, say=print):
    """Copy objects, then rows; ``*_blobs(bucket)`` give each side's blob store.

    Returns {"objects": n, "bytes": n, table: rows, ...}.
    """
    transfer.check_copyable(source_db, target_db)
    started = time.monotonic()
    counts = {"objects": 0, "bytes": 0}
    for bucket, keys in transfer.buckets_and_keys(source_db).items():
        source, target = source_blobs(bucket), target_blobs(bucket)
        target.ensure_bucket(create=True)
        for key in keys:
            counts["bytes"] += copy_object(source, target, key)
            counts["objects"] += 1
        say(f"objects: {len(keys)} copied to {target!r}")
    for table, key in transfer.TABLES:
        counts[table] = transfer.copy_table(source_db, target_db, table, key)
        say(f"{table}: {counts[table]} rows")
    transfer.copy_counters(source_db, target_db)
    for table, _ in transfer.TABLES:
        have, want = transfer.rows_in(target_db, table), transfer.rows_in(source_db, table)
        if have != want:
            raise transfer.TransferError(f"{table}: {have} rows in the target, {want} in the "
                                         "source: was geomail still running?")
    say(f"done in {time.monotonic() - started:.1f} s: {counts['objects']} objects "
        f"({counts['bytes']} bytes), {counts['messages']} messages")
    return counts


def copy_object(source, target, key):
    """Stream one object across (multipart when large); returns its size."""
    size = 0
    with target.open_upload(key) as upload:
        for chunk in source.get_range(key, 0):
            upload.write(chunk)
            size += len(chunk)
    return size
