"""COPY, MOVE and their UID forms (RFC 3501 §6.4.7, RFC 6851, UIDPLUS RFC 4315 COPYUID).

Copies share the content row (refcount + 1); no S3 object is ever copied.
MOVE copies and expunges in one transaction; the source's EXPUNGE responses
come from the view's catch-up, before the tagged OK (RFC 6851 §4.3).
"""

from geomail.imap import response as R
from geomail.imap.errors import CommandError
from geomail.imap.expunge import delete_objects
from geomail.imap.names import mailbox_arg
from geomail.imap.quota import check_quota
from geomail.store import messages, quota


def copy(session, p, tag):
    return _copy(session, p, uid_mode=False, move=False)


def uid_copy(session, p, tag):
    return _copy(session, p, uid_mode=True, move=False)


def move(session, p, tag):
    return _copy(session, p, uid_mode=False, move=True)


def uid_move(session, p, tag):
    return _copy(session, p, uid_mode=True, move=True)


def uid_set_text(uids):
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in messages.compress(uids))


def _copy(session, p, uid_mode, move):
    seqset = p.sequence_set()
    p.sp()
    name = mailbox_arg(p)
    p.end()
    view = session.view
    if move and view.readonly:
        raise CommandError("Mailbox is read-only", R.READ_ONLY)
    db = session.context.db
    dest = messages.find_mailbox(db, session.account.id, name)
    if dest is None:
        raise CommandError(f"Mailbox {name} does not exist", R.TRYCREATE)
    ranges = view.uid_ranges(seqset, uid_mode, saved=session.saved_search)
    if not ranges:
        return None if not move else "No messages moved"
    expected = len(view.uids_in(ranges))
    if not move:
        # MOVE stays within the account's one quota root: usage does not change (RFC 9208 §3)
        check_quota(session, *quota.selection_usage(db, view.mailbox_id, ranges))
    try:
        if move:
            uidvalidity, mapping, objects = messages.move(db, view.mailbox_id, ranges, dest.id,
                                                          expected)
            delete_objects(session, objects)
        else:
            uidvalidity, mapping = messages.copy(db, view.mailbox_id, ranges, dest.id, expected)
    except messages.MailboxGone:
        raise CommandError(f"Mailbox {name} does not exist", R.TRYCREATE) from None
    except messages.MessagesExpunged:
        # RFC 2180 §4.4.1: nothing copied, some of the messages are gone (RFC 5530 code)
        raise CommandError("Some messages were expunged, nothing was copied",
                           R.EXPUNGEISSUED) from None
    except messages.KeywordLimit:
        raise CommandError(f"The destination mailbox would hold more than "
                           f"{messages.MAX_MAILBOX_KEYWORDS} keywords", R.LIMIT) from None
    if not mapping:
        return None
    args = f"{uidvalidity} {uid_set_text([m[0] for m in mapping])} {uid_set_text([m[1] for m in mapping])}"
    if move:
        # RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGEs
        session.untagged(f"OK [{R.COPYUID} {args}] Moved UIDs")
        return None
    return f"{R.COPYUID} {args}", "COPY completed"
