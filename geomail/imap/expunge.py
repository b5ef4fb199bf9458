"""EXPUNGE (RFC 3501 §6.4.3) and UID EXPUNGE (RFC 4315 §2.1).

The store removes the rows, logs the UIDs in ``expunged`` and hands back the
S3 objects no content refers to any more; they are deleted here, after the
commit.  The untagged EXPUNGE responses come from the view's catch-up at the
command boundary, the same path that reports other sessions' expunges.
"""

import logging

from geomail.imap import condstore
from geomail.imap import response as R
from geomail.imap.errors import CommandError
from geomail.janitor import discard
from geomail.store import messages

log = logging.getLogger("geomail.imap")


def expunge(session, p, tag):
    p.end()
    return _expunge(session, None, "EXPUNGE")


def uid_expunge(session, p, tag):
    seqset = p.sequence_set()
    p.end()
    ranges = session.view.uid_ranges(seqset, uid_mode=True, saved=session.saved_search)
    if ranges or condstore.qresync_on(session):
        return _expunge(session, ranges, "UID EXPUNGE")


def _expunge(session, ranges, name):
    view = session.view
    if view.readonly:
        raise CommandError("Mailbox is read-only", R.READ_ONLY)
    if ranges == []:
        modseq = view.modseq
    else:
        db = session.context.db
        read_since = view.modseq
        _, objects, modseq, reads = messages.expunge(db, view.mailbox_id, ranges,
                                                     reads=view.catch_up_reads(db))
        view.reads_done(read_since, reads)      # the catch-up sends the EXPUNGEs
        delete_objects(session, objects)
    if condstore.qresync_on(session):
        # VANISHED (RFC 7162 §3.2.10) carries no modseq, so the tagged OK tells the
        # client the mailbox's HIGHESTMODSEQ after the expunge, as Dovecot does
        return f"{R.HIGHESTMODSEQ} {modseq}", f"{name} completed"
    return None


def delete_objects(session, objects):
    """Delete S3 objects of contents that nothing refers to any more (after COMMIT)."""
    if not objects:
        return
    by_bucket = {}
    for bucket, key in objects:
        by_bucket.setdefault(bucket, []).append(key)
    for bucket, keys in by_bucket.items():
        try:   # intent rows first, so a failed or interrupted delete is the janitor's
            discard(session.context.db, session.context.blobs_for(bucket), keys)
        except Exception:
            # an object nothing refers to is garbage, never a dangling reference
            log.warning("deleting %d expunged attachment objects failed", len(keys),
                        exc_info=True)
