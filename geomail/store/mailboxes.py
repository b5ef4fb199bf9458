"""Mailboxes of an account: names, special use, counters, UIDVALIDITY."""

import dataclasses
import time

from geomail.store.errors import is_duplicate_key
from geomail.store.errors import InvalidMailboxName, MailboxExists

DELIMITER = "/"
INBOX = "INBOX"
MAX_NAME_LENGTH = 512  # the column size
SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")

# Created with every account (RFC 6154 special use), all subscribed.
STANDARD_MAILBOXES = (
    (INBOX, None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
)


@dataclasses.dataclass(frozen=True)
class Mailbox:
    id: int
    name: str
    special_use: str | None
    subscribed: bool
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    message_count: int
    unseen_count: int
    total_size: int


def normalize_name(name):
    """The stored form of a mailbox name; raises InvalidMailboxName.

    INBOX is case-insensitive (RFC 3501 5.1), so any spelling of it, also as
    the first level of a hierarchy, becomes 'INBOX'; every other name is
    case-sensitive and kept as given.
    """
    if not isinstance(name, str) or not name:
        raise InvalidMailboxName("mailbox name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidMailboxName(f"mailbox name is longer than {MAX_NAME_LENGTH} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in name):
        raise InvalidMailboxName("mailbox name contains a control character")
    if "*" in name or "%" in name:
        raise InvalidMailboxName("mailbox name contains a LIST wildcard (* or %)")
    levels = name.split(DELIMITER)
    if any(level == "" for level in levels):
        raise InvalidMailboxName(f"mailbox name {name!r} has an empty hierarchy level")
    if levels[0].upper() == INBOX:
        levels[0] = INBOX
    return DELIMITER.join(levels)


def allocate_uidvalidity(cur, count=1):
    """``count`` consecutive UIDVALIDITY values never handed out before (inside a transaction).

    Database-wide, strictly increasing and at least the current Unix time:
    a name deleted and created again, even with its whole account, gets a
    new value (RFC 3501 2.3.1.1). Fits 32 bits until 2106. Returns the first.
    """
    cur.execute("SELECT next_value FROM uidvalidity_counter WHERE id = 1 FOR UPDATE")
    row = cur.fetchone()
    if row is None:
        raise LookupError("uidvalidity_counter is empty: the schema was not migrated")
    first = max(int(row[0]), int(time.time()))
    if first + count >= 2 ** 32:
        raise OverflowError("UIDVALIDITY space exhausted")
    cur.execute("UPDATE uidvalidity_counter SET next_value = %s WHERE id = 1", (first + count,))
    return first


def create_mailbox_in(cur, account_id, name, special_use=None, subscribe=True, uidvalidity=None):
    """Create a mailbox within the caller's transaction; returns its id.

    ``uidvalidity`` comes from allocate_uidvalidity (one is taken when omitted).
    """
    name = normalize_name(name)
    if special_use is not None and special_use not in SPECIAL_USES:
        raise ValueError(f"unknown special use {special_use!r}")
    if uidvalidity is None:
        uidvalidity = allocate_uidvalidity(cur)
    try:
        cur.execute("INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) "
                    "VALUES (%s, %s, %s, %s)", (account_id, name, special_use, uidvalidity))
    except Exception as exc:
        if is_duplicate_key(exc):
            raise MailboxExists(f"mailbox {name!r} already exists") from None
        raise
    mailbox_id = cur.lastrowid
    if subscribe:
        cur.execute("INSERT IGNORE INTO subscriptions (account_id, name) VALUES (%s, %s)",
                    (account_id, name))
    return mailbox_id


def create_mailbox(db, account_id, name, special_use=None, subscribe=True):
    """Create one mailbox in its own transaction; returns its id."""
    with db.transaction() as cur:
        return create_mailbox_in(cur, account_id, name, special_use, subscribe)


_SELECT = """
SELECT m.id, m.name, m.special_use, s.name IS NOT NULL, m.uidvalidity, m.uidnext,
       m.highestmodseq, m.message_count, m.unseen_count, m.total_size
FROM mailboxes m
LEFT JOIN subscriptions s ON s.account_id = m.account_id AND s.name = m.name
"""


def _mailbox(row):
    return Mailbox(id=row[0], name=row[1], special_use=row[2], subscribed=bool(row[3]),
                   uidvalidity=row[4], uidnext=row[5], highestmodseq=row[6],
                   message_count=row[7], unseen_count=row[8], total_size=row[9])


def list_mailboxes(db, account_id):
    """Every mailbox of the account, INBOX first, then by name."""
    with db.cursor() as cur:
        cur.execute(_SELECT + " WHERE m.account_id = %s ORDER BY m.name <> 'INBOX', m.name",
                    (account_id,))
        return [_mailbox(row) for row in cur.fetchall()]


def get_mailbox(db, account_id, name):
    """One mailbox by name, or None."""
    name = normalize_name(name)
    with db.cursor() as cur:
        cur.execute(_SELECT + " WHERE m.account_id = %s AND m.name = %s", (account_id, name))
        row = cur.fetchone()
        return _mailbox(row) if row else None
