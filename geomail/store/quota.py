"""Quotas (RFC 9208): one quota root per account, with the STORAGE and MESSAGE resources.

The limits are columns of ``accounts`` (``quota_bytes``, ``quota_messages``;
NULL: no limit).  Usage is never stored apart: it is the sum of the
account's mailboxes' ``total_size`` and ``message_count``, which every
change keeps right in its own transaction, so a check costs one indexed
query and nothing can drift.  Checks run before the change, outside its
transaction: two deliveries racing may together pass a limit by one
message each, as with Dovecot's count-based quota, in exchange for no new
lock on the delivery path.  SMTP believes an account it found without
limits to have none for two more seconds (geomail/smtp/recipients.py,
LIMITS_TTL): a limit set is enforced at RCPT from then on.
"""

import dataclasses

from geomail.store.accounts import normalize_address
from geomail.store.errors import AccountNotFound
from geomail.store import batch
from geomail.store.messages import find_mailbox_query, mailbox_info, ranges_sql

STORAGE = "STORAGE"    # RFC 9208 §5.1: in units of 1024 octets
MESSAGE = "MESSAGE"    # RFC 9208 §5.2
KIB = 1024
UNCHANGED = object()   # set_quota: leave this limit as it is


@dataclasses.dataclass(frozen=True)
class Quota:
    """Limits (None: none) and usage of one account, in octets and messages."""
    storage_limit: int | None
    message_limit: int | None
    storage_used: int = 0
    messages_used: int = 0

    @property
    def limited(self):
        return self.storage_limit is not None or self.message_limit is not None

    def exceeded_by(self, messages, octets):
        """The resource that ``messages`` more messages of ``octets`` in all would pass, or None."""
        if self.message_limit is not None and self.messages_used + messages > self.message_limit:
            return MESSAGE
        if self.storage_limit is not None and self.storage_used + octets > self.storage_limit:
            return STORAGE
        return None

    def full(self):
        """No message at all fits any more (SMTP answers RCPT with 452 4.2.2)."""
        return self.exceeded_by(1, 1) is not None

    def resources(self):
        """[(resource, usage, limit)] in RFC 9208's units, limited resources only."""
        out = []
        if self.storage_limit is not None:
            out.append((STORAGE, kib(self.storage_used), self.storage_limit // KIB))
        if self.message_limit is not None:
            out.append((MESSAGE, self.messages_used, self.message_limit))
        return out


def kib(octets):
    """Octets in STORAGE units, rounded up: usage shows above the limit exactly when it is."""
    return -(-octets // KIB)


_LIMITS = "SELECT quota_bytes, quota_messages FROM accounts WHERE id = %s"


def get_quota(db, account_id, with_usage=False):
    """The account's Quota (None: no such account).  Usage is summed only when a limit
    is set or ``with_usage`` asks for it, so an account without limits costs one key lookup."""
    with db.cursor() as cur:
        cur.execute(_LIMITS, (account_id,))
        row = cur.fetchone()
    return _quota_of(db, account_id, row, with_usage)


def _quota_of(db, account_id, limits, with_usage=False):
    """The Quota from the account's limits row (None: no such account), with its usage
    read when a limit is set or ``with_usage`` asks for it."""
    if limits is None:
        return None
    quota = Quota(limits[0], limits[1])
    if not (quota.limited or with_usage):
        return quota
    with db.cursor() as cur:
        cur.execute("SELECT COALESCE(SUM(total_size), 0), COALESCE(SUM(message_count), 0) "
                    "FROM mailboxes WHERE account_id = %s", (account_id,))
        used = cur.fetchone()
    return dataclasses.replace(quota, storage_used=int(used[0]), messages_used=int(used[1]))


def append_target(db, account_id, name):
    """What APPEND looks up before its first message, in one request (store/batch.py):
    (the MailboxInfo or None, the keywords its FLAGS list holds, the account's Quota)."""
    mailbox, limits = batch.read_all(db, [find_mailbox_query(account_id, name),
                                          (_LIMITS, (account_id,))])
    quota = _quota_of(db, account_id, limits[0] if limits else None)
    if not mailbox:
        return None, [], quota
    info, keywords = mailbox_info(mailbox[0])
    return info, keywords, quota


def set_quota(db, address, storage_kib=UNCHANGED, messages=UNCHANGED):
    """Set or (with None) remove the account's limits; raises AccountNotFound."""
    address = normalize_address(address)
    columns, args = [], []
    if storage_kib is not UNCHANGED:
        columns.append("quota_bytes = %s")
        args.append(None if storage_kib is None else storage_kib * KIB)
    if messages is not UNCHANGED:
        columns.append("quota_messages = %s")
        args.append(messages)
    with db.transaction() as cur:
        cur.execute("SELECT id FROM accounts WHERE address = %s", (address,))
        if cur.fetchone() is None:
            raise AccountNotFound(f"no account {address}")
        if columns:
            cur.execute(f"UPDATE accounts SET {', '.join(columns)} WHERE address = %s",
                        (*args, address))


def selection_usage(db, mailbox_id, ranges):
    """(messages, octets) of the given UID ranges of a mailbox: what a COPY adds."""
    condition, args = ranges_sql(ranges)
    with db.cursor() as cur:
        cur.execute("SELECT COUNT(*), COALESCE(SUM(rfc822_size), 0) FROM messages "
                    f"WHERE mailbox_id = %s AND {condition}", (mailbox_id, *args))
        row = cur.fetchone()
    return int(row[0]), int(row[1])
