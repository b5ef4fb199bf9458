"""APPEND (RFC 3501 §6.3.11) with MULTIAPPEND (RFC 3502), CATENATE (RFC 4469),
UTF8 (RFC 6855 §4), UIDPLUS's APPENDUID (RFC 4315) and APPENDLIMIT (RFC 7889).

Each message is streamed into ``geomail.ingest.store_message``, the same
path SMTP uses, so an appended message is stored exactly like a delivered
one.  Its data is a literal (or literal8, RFC 3516 §4.4), ``UTF8 (literal8)``
once UTF8=ACCEPT is enabled, or ``CATENATE (...)`` (catenate.py).  A literal8
holding NUL has its binary parts stored in base64 (binary_append.py).

MULTIAPPEND is all or nothing (RFC 3502 §6.3.11): each message is committed
as it arrives, so the server never holds more than one message however many
the command carries, and if a later one fails, or the client goes away, the
ones already stored are removed again (``messages.remove``) before the NO.
A client that disconnects mid-literal leaves nothing: the delivery is
aborted (uploads removed, no rows written).
"""

import datetime
import itertools
import logging

from geomail.ingest import DeliveryFailed, Target, store_message
from geomail.errors import PERMANENT, TEMPORARY
from geomail.imap import binary_append, catenate
from geomail.imap import response as R
from geomail.imap.errors import Bad, CommandError
from geomail.imap.expunge import delete_objects
from geomail.imap.names import mailbox_arg
from geomail.imap.quota import check_quota
from geomail.imap.store_command import check_flags
from geomail.store import messages
from geomail.store.quota import append_target

log = logging.getLogger("geomail.imap")

UTF8_ACCEPT = "UTF8=ACCEPT"


def append(session, p, tag):
    name = mailbox_arg(p)
    mailbox = quota = None
    uids = []
    try:
        while True:
            p.sp()
            target = _options(p)
            if mailbox is None:
                mailbox, keywords, quota = _target_mailbox(session, name)
            target.mailbox_id = mailbox.id
            target.known_keywords = keywords
            uids.append(_one_message(session, p, target, quota))
            quota = None                # the next message's check reads the usage again
            if not p.peek(" "):
                break
        p.end()
    except BaseException:
        _undo(session, mailbox, uids)
        raise
    uid_set = ",".join(f"{a}" if a == b else f"{a}:{b}" for a, b in messages.compress(uids))
    return f"{R.APPENDUID} {mailbox.uidvalidity} {uid_set}", "APPEND completed"


def _options(p):
    """append-opts: [flag-list SP] [date-time SP], as a Target without its mailbox."""
    flags = []
    internal_date = None
    if p.peek("("):
        flags = check_flags(p.flag_list())
        p.sp()
    if p.peek('"'):
        internal_date = _stored_date(p.date_time())
        p.sp()
    return Target(mailbox_id=None, flags=tuple(flags), internal_date=internal_date)


def _target_mailbox(session, name):
    """(the mailbox, the keywords its FLAGS list holds, the account's Quota), looked up
    in one request before the first '+' (the client need not send a message for a
    mailbox that does not exist, §6.3.11)."""
    mailbox, keywords, quota = append_target(session.context.db, session.account.id, name)
    if mailbox is None:
        raise CommandError(f"Mailbox {name} does not exist", R.TRYCREATE)
    return mailbox, frozenset(keywords), quota


def _one_message(session, p, target, quota=None):
    """Read one append-data and store it; its UID."""
    check_quota(session, 1, p.literal_size() or 0, quota)      # before '+' (RFC 9208 §3)
    chunks = _data(session, p)
    first = next((c for c in chunks if c), None)
    if first is None:
        raise CommandError("Cannot append an empty message", R.CANNOT)
    chunks = itertools.chain([first], chunks)
    try:
        stored = store_message(session.context, chunks, session.account.id, [target])
    except DeliveryFailed as failed:
        for _ in chunks:        # whatever the failure, the data is read to its end
            pass
        raise storage_failure(failed) from None
    return stored[0][1]


def _data(session, p):
    """The chunks of append-data: literal / literal8 / UTF8 (literal8) / CATENATE (...)."""
    if p.take("CATENATE "):
        return catenate.parts(session, p, session.max_literal)
    utf8 = p.take("UTF8 ")
    if utf8:
        if UTF8_ACCEPT not in session.enabled:
            raise Bad("APPEND UTF8 needs ENABLE UTF8=ACCEPT")   # RFC 6855 §4
        p.expect("(")
        if not p.peek("~"):
            raise Bad("APPEND UTF8 takes a literal8 (~{n})")
    literal8 = p.peek("~")
    size, chunks = p.literal_stream(session.max_literal, literal8=True)    # RFC 3516 §4.4
    if literal8:
        chunks = binary_append.stored_chunks(chunks, size)
    return _then_close(p, chunks) if utf8 else chunks


def _then_close(p, chunks):
    """The literal's chunks, then the ')' of UTF8 (literal8)."""
    yield from chunks
    p.expect(")")


def _undo(session, mailbox, uids):
    """Remove what this command stored already (MULTIAPPEND is all or nothing)."""
    if not uids:
        return
    try:
        objects = messages.remove(session.context.db, mailbox.id, uids)
    except messages.MailboxGone:
        return                  # deleted meanwhile, and the messages with it
    except Exception:
        log.error("APPEND could not remove the %d message(s) it stored in mailbox %s "
                  "before failing: UIDs %s", len(uids), mailbox.id, uids, exc_info=True)
        return
    session.context.mailbox_changed([mailbox.id])
    delete_objects(session, objects)


def _stored_date(value):
    """The INTERNALDATE as the store keeps it: naive UTC within MySQL DATETIME's years
    1000-9999.  "01-Jan-0001 00:00:00 +0100" is valid syntax (RFC 3501 date-year is
    4DIGIT) but is no moment the store holds: BAD, before the literal is read."""
    try:
        utc = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not 1000 <= utc.year <= 9999:
        raise Bad("Date-time out of range")
    return utc


def storage_failure(failed):
    """The NO for a DeliveryFailed, by geomail.errors kind (RFC 5530 response codes):
    [UNAVAILABLE] try again later; [CANNOT] or [TOOBIG] (RFC 7889) this message can
    never be stored, do not retry; [SERVERBUG] (logged with its traceback)."""
    if failed.kind == TEMPORARY:
        return CommandError("Could not store the message, try again", R.UNAVAILABLE)
    if isinstance(failed.cause, messages.KeywordLimit):
        return CommandError(f"The mailbox holds {messages.MAX_MAILBOX_KEYWORDS} keywords "
                            "already", R.LIMIT)
    if failed.kind == PERMANENT:
        if failed.too_big:
            return CommandError("Message too big for the store", R.TOOBIG)
        return CommandError("This message cannot be stored", R.CANNOT)
    log.error("APPEND failed", exc_info=failed.cause)
    return CommandError("Could not store the message", R.SERVERBUG)
