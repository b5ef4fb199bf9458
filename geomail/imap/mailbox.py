"""Mailbox commands of the authenticated state: CREATE, DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE, STATUS (RFC 3501 §6.3), NAMESPACE (RFC 2342), ENABLE (RFC 5161)."""

from geomail import objectids
from geomail.imap import condstore
from geomail.imap import response as R, rev2
from geomail.imap.errors import Bad, CommandError
from geomail.imap.expunge import delete_objects
from geomail.imap.names import mailbox_arg
from geomail.imap.parser import ParseError
from geomail.imap.states import AUTHENTICATED, SELECTED
from geomail.store import messages
from geomail.store.quota import kib
from geomail.store.errors import InvalidMailboxName, MailboxExists
from geomail.store.mailboxes import DELIMITER, INBOX, SPECIAL_USES

# RFC 3501 §6.3.10; SIZE: RFC 8438 (the sum of RFC822.SIZE); DELETED: RFC 9051 §6.3.11;
# DELETED-STORAGE: RFC 9208 §4.4 (KiB that EXPUNGE would free); MAILBOXID: RFC 8474 §4.2;
# HIGHESTMODSEQ: RFC 7162 §3.1.2.3
STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE", "DELETED",
                "DELETED-STORAGE", "MAILBOXID", "HIGHESTMODSEQ")
ENABLEABLE = ("UTF8=ACCEPT", rev2.CAPABILITY) + condstore.ENABLEABLE   # RFC 6855, 9051, 7162


def _special_use(flag):
    for use in SPECIAL_USES:
        if use.lower() == flag.lower():
            return use
    raise CommandError(f"Unsupported special use {flag}", R.USEATTR)


def create(session, p, tag):
    """CREATE name [(USE (\\Flag))] (RFC 3501 §6.3.3, RFC 6154 §3)."""
    raw = p.astring()
    special_use = None
    if p.take(" "):
        p.expect("(")
        p.expect("USE", "USE")
        p.sp()
        uses = p.flag_list()
        p.expect(")")
        if len(uses) > 1:
            raise CommandError("Only one special use per mailbox", R.USEATTR)
        if uses:
            special_use = _special_use(uses[0])
    p.end()
    from geomail.imap.names import decode_name
    from geomail.store.mailboxes import normalize_name
    name = decode_name(raw, p.utf8)
    if name.endswith(DELIMITER):      # "foo/" means create foo (RFC 3501 §6.3.3)
        name = name.rstrip(DELIMITER)
    try:
        name = normalize_name(name)
    except InvalidMailboxName as exc:
        raise CommandError(str(exc), R.CANNOT) from None
    if name == INBOX:
        raise CommandError("INBOX already exists", R.ALREADYEXISTS)
    try:
        new_id = messages.create_mailbox(session.context.db, session.account.id, name, special_use)
    except MailboxExists:
        raise CommandError("Mailbox already exists", R.ALREADYEXISTS) from None
    except InvalidMailboxName as exc:
        raise CommandError(str(exc), R.CANNOT) from None
    # RFC 8474 §4.1: the new mailbox's id in the tagged OK
    return f"{R.MAILBOXID} ({objectids.mailbox_id(new_id)})", "CREATE completed"


def delete(session, p, tag):
    name = mailbox_arg(p)
    p.end()
    if name == INBOX:
        raise CommandError("INBOX cannot be deleted", R.CANNOT)
    view = session.view
    try:
        objects = messages.delete_mailbox(session.context.db, session.account.id, name)
    except messages.MailboxNotFound:
        raise CommandError(f"Mailbox {name} does not exist", R.NONEXISTENT) from None
    except InvalidMailboxName as exc:
        raise CommandError(str(exc), R.CANNOT) from None
    if view is not None and view.name == name:
        session.close_view()      # as Dovecot: deleting the selected mailbox closes it
        session.state = AUTHENTICATED
    delete_objects(session, objects)


def rename(session, p, tag):
    old = mailbox_arg(p)
    p.sp()
    new = mailbox_arg(p)
    p.end()
    try:
        messages.rename_mailbox(session.context.db, session.account.id, old, new)
    except messages.MailboxNotFound:
        raise CommandError(f"Mailbox {old} does not exist", R.NONEXISTENT) from None
    except MailboxExists:
        raise CommandError(f"Mailbox {new} already exists", R.ALREADYEXISTS) from None
    except InvalidMailboxName as exc:
        raise CommandError(str(exc), R.CANNOT) from None
    if session.view is not None and session.view.name == old:
        session.view.name = new


def subscribe(session, p, tag):
    name = mailbox_arg(p)
    p.end()
    messages.subscribe(session.context.db, session.account.id, name)


def unsubscribe(session, p, tag):
    name = mailbox_arg(p)
    p.end()
    messages.unsubscribe(session.context.db, session.account.id, name)


def status_items(p):
    items = p.paren_list(lambda: p.atom("status item").upper())
    for item in items:
        if item not in STATUS_ITEMS:
            raise ParseError(f"unknown STATUS item {item}")
    return items


def wants_deleted(items):
    return "DELETED" in items or "DELETED-STORAGE" in items


def status_line(session, mailbox, items, recent=None, deleted=None):
    """``* STATUS``; ``recent`` and ``deleted`` (messages.mailbox_status) are read here
    when the caller has not."""
    values = []
    if deleted is None and wants_deleted(items):
        deleted = messages.deleted_usage(session.context.db, mailbox.id)
    for item in items:
        if item == "MESSAGES":
            value = mailbox.message_count
        elif item == "RECENT":
            if recent is None:
                recent = messages.recent_count(session.context.db, mailbox.id,
                                               mailbox.first_recent_uid)
            value = recent
        elif item == "UIDNEXT":
            value = mailbox.uidnext
        elif item == "UIDVALIDITY":
            value = mailbox.uidvalidity
        elif item == "UNSEEN":
            value = mailbox.unseen_count
        elif item == "DELETED":
            value = deleted[0]
        elif item == "DELETED-STORAGE":
            value = kib(deleted[1])
        elif item == "MAILBOXID":
            value = f"({objectids.mailbox_id(mailbox.id)})"
        elif item == "HIGHESTMODSEQ":
            value = mailbox.highestmodseq
        else:
            value = mailbox.total_size
        values.append(f"{item} {value}")
    return b"STATUS " + R.mailbox(mailbox.name, session.utf8) + b" (" + " ".join(values).encode() + b")"


def status(session, p, tag):
    name = mailbox_arg(p)
    p.sp()
    items = status_items(p)
    p.end()
    if "HIGHESTMODSEQ" in items:
        condstore.enable(session)     # a CONDSTORE enabling command (RFC 7162 §3.1)
    found = messages.mailbox_status(session.context.db, session.account.id, name,
                                    recent="RECENT" in items, deleted=wants_deleted(items))
    if found is None:
        raise CommandError(f"Mailbox {name} does not exist", R.NONEXISTENT)
    mailbox, recent, deleted = found
    session.untagged(status_line(session, mailbox, items, recent, deleted))


def namespace(session, p, tag):
    p.end()
    session.untagged(b'NAMESPACE (("" "/")) NIL NIL')


def enable(session, p, tag):
    names = [p.atom("capability").upper()]
    while p.take(" "):
        names.append(p.atom("capability").upper())
    p.end()
    if "UTF8=ACCEPT" in names and session.state == SELECTED:
        # RFC 6855 §3: only in the authenticated state (the open mailbox's names
        # and strings would change meaning under the client's feet)
        raise Bad("ENABLE UTF8=ACCEPT is allowed only before SELECT")
    known = {n.upper(): n for n in ENABLEABLE}      # capability names are case-insensitive
    enabled = list(dict.fromkeys(known[n] for n in names if n in known))
    enabled = [n for n in enabled if n not in session.enabled]
    for name in enabled:
        if name in condstore.ENABLEABLE:
            condstore.enable(session, name)     # QRESYNC turns CONDSTORE on too (RFC 7162 §3.2.3)
        else:
            session.enabled.add(name)
    if "UTF8=ACCEPT" in session.enabled:
        p.utf8 = True
    if rev2.CAPABILITY in enabled:
        rev2.switch_on(session)
    session.untagged("ENABLED" + "".join(" " + n for n in enabled))
