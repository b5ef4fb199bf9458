"""SELECT, EXAMINE (RFC 3501 §6.3.1-2), CHECK, CLOSE (§6.4.1-2), UNSELECT (RFC 3691)."""

from geomail import objectids
from geomail.imap import condstore, qresync
from geomail.imap import response as R, rev2
from geomail.imap.errors import CommandError
from geomail.imap.expunge import delete_objects
from geomail.imap.names import mailbox_arg
from geomail.imap.states import AUTHENTICATED, SELECTED
from geomail.imap.view import View
from geomail.imap.watcher import watcher_for
from geomail.store import messages


def select(session, p, tag):
    return _open(session, p, readonly=False)


def examine(session, p, tag):
    return _open(session, p, readonly=True)


def _open(session, p, readonly):
    name = mailbox_arg(p)
    params = qresync.select_parameters(session, p)
    p.end()
    if session.view is not None:
        session.close_view()
        session.state = AUTHENTICATED
        # RFC 7162 §3.2.11 (and RFC 9051 §6.3.2): the boundary between the old mailbox's
        # responses and the new one's
        session.untagged(f"OK [{R.CLOSED}] Previous mailbox closed")
    if params.condstore or params.modseq is not None:
        condstore.enable(session)
    opened = messages.select_mailbox(session.context.db, session.account.id, name,
                                     claim_recent=not readonly and not rev2.enabled(session))
    if opened is None:
        raise CommandError(f"Mailbox {name} does not exist", R.NONEXISTENT)
    mailbox, snapshot = opened
    view = View(mailbox, snapshot, readonly)
    if rev2.enabled(session):
        view.stop_recent()
    view.send_flags(session)
    session.untagged(b"%d EXISTS" % len(view))
    if view.tracks_recent:
        session.untagged(b"%d RECENT" % len(view.recent))
    if snapshot.first_unseen_uid is not None and not rev2.enabled(session):
        seq = view.seq_of(snapshot.first_unseen_uid)
        if seq:
            session.untagged(b"OK [UNSEEN %d] First unseen" % seq)
    session.untagged(b"OK [UIDVALIDITY %d] UIDs valid" % view.uidvalidity)
    session.untagged(b"OK [UIDNEXT %d] Predicted next UID" % view.uidnext)
    session.untagged(f"OK [{R.MAILBOXID} ({objectids.mailbox_id(mailbox.id)})] Ok")  # RFC 8474 §4.1
    # RFC 7162 §3.1.2.1: every mailbox keeps modseqs, so every SELECT/EXAMINE says so
    session.untagged(b"OK [%s %d] Highest" % (R.HIGHESTMODSEQ.encode(), view.modseq))
    if rev2.enabled(session):
        rev2.list_line(session, mailbox)
    qresync.resync(session, view, params)
    view.just_opened = params.modseq is None      # QRESYNC's answer catches up as usual
    session.view = view
    session.state = SELECTED
    watcher_for(session.context).watch(session, mailbox.id)
    return (R.READ_ONLY if readonly else R.READ_WRITE), ("Examine completed" if readonly
                                                        else "Select completed")


def check(session, p, tag):
    p.end()


def close(session, p, tag):
    """Expunge silently (unless read-only) and leave the selected state."""
    p.end()
    view = session.view
    if not view.readonly:
        _, objects, _, _ = messages.expunge(session.context.db, view.mailbox_id)
        delete_objects(session, objects)
    _leave(session)


def unselect(session, p, tag):
    p.end()
    _leave(session)


def _leave(session):
    session.close_view()
    session.state = AUTHENTICATED
