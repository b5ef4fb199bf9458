"""APPEND (RFC 3501 §6.3.11) with UIDPLUS's APPENDUID (RFC 4315) and APPENDLIMIT (RFC 7889).

The message literal is streamed into ``geomail.ingest.store_message``, the
same path SMTP uses, so an appended message is stored exactly like a
delivered one.  A client that disconnects mid-literal leaves nothing: the
delivery is aborted (uploads removed, no rows written).
"""

import datetime
import logging

from geomail.ingest import DeliveryFailed, Target, store_message
from geomail.errors import PERMANENT, TEMPORARY
from geomail.imap import response as R
from geomail.imap.errors import Bad, CommandError
from geomail.imap.names import mailbox_arg
from geomail.imap.quota import check_quota
from geomail.imap.store_command import check_flags
from geomail.store import messages

log = logging.getLogger("geomail.imap")


def append(session, p, tag):
    name = mailbox_arg(p)
    p.sp()
    flags = []
    internal_date = None
    if p.peek("("):
        flags = check_flags(p.flag_list())
        p.sp()
    if p.peek('"'):
        internal_date = _stored_date(p.date_time())
        p.sp()
    if not p.is_literal():
        p.literal()             # raises the right syntax error
    db = session.context.db
    mailbox = messages.find_mailbox(db, session.account.id, name)
    if mailbox is None:         # before '+': the client need not send the message (§6.3.11)
        raise CommandError(f"Mailbox {name} does not exist", R.TRYCREATE)
    check_quota(session, 1, p.literal_size() or 0)      # before '+' as well
    size, chunks = p.literal_stream(session.max_literal, literal8=True)   # RFC 3516 §4.4
    target = Target(mailbox_id=mailbox.id, flags=tuple(flags), internal_date=internal_date)
    if size == 0:
        for _ in chunks:
            pass
        p.end()
        raise CommandError("Cannot append an empty message", R.CANNOT)
    try:
        stored = store_message(session.context, chunks, session.account.id, [target])
    except DeliveryFailed as failed:
        for _ in chunks:        # whatever the failure, the literal is read to its end
            pass
        p.end()
        raise storage_failure(failed) from None
    p.end()
    uid = stored[0][1]
    return f"{R.APPENDUID} {mailbox.uidvalidity} {uid}", "APPEND completed"


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
