"""What an administrator can do, once, for ``geomail-admin`` and the HTTP API alike.

Each function takes the open store (and the configuration where objects in
the blob store are touched) and returns plain data (dicts, lists, numbers)
that the admin tool prints as a table or JSON and the API sends as JSON, so
the two cannot drift.  Failures are the store's typed errors
(AccountNotFound, MailboxNotFound, AccountExists, MailboxExists,
InvalidAddress, InvalidMailboxName) or ``Invalid`` for a bad argument; the
callers map them to exit codes and HTTP statuses.
"""

import types

from geomail.store import accounts as account_store
from geomail.store import messages as message_store
from geomail.store import sessions as session_store
from geomail.store.errors import AccountNotFound
from geomail.store.mailboxes import list_mailboxes, normalize_name
from geomail.store.messages import MailboxNotFound

MAILBOX_COLUMNS = ["name", "special_use", "messages", "unseen", "size", "uidvalidity", "uidnext"]
ACCOUNT_COLUMNS = ["address", "login", "mailboxes", "messages", "size"]
SESSION_COLUMNS = ["address", "session", "remote", "tls", "host", "pid", "started_at"]
MESSAGE_COLUMNS = ["uid", "internal_date", "size", "from", "subject"]


class Invalid(ValueError):
    """An argument that cannot be right (bad search, a uid that is not a number)."""


# -- accounts -----------------------------------------------------------------

def account_of(db, address):
    account = account_store.get_account(db, address)
    if account is None:
        raise AccountNotFound(f"no account {address.strip().lower()}")
    return account


def list_accounts(db):
    return [{"address": a.address, "login": a.can_login, "mailboxes": a.mailbox_count,
             "messages": a.message_count, "size": a.total_size}
            for a in account_store.list_accounts(db)]


def show_account(db, address):
    account = account_of(db, address)
    boxes = list_mailboxes(db, account.id)
    return {"address": account.address, "id": account.id, "login": account.can_login,
            "created": str(account.created_at), "messages": sum(b.message_count for b in boxes),
            "mailboxes": [mailbox_row(box) for box in boxes]}


def add_account(db, address, password):
    account = account_store.create_account(db, address, password)
    return {"address": account.address, "id": account.id}


def set_password(db, address, password):
    account_store.set_password(db, address, password)
    return {"address": address.strip().lower()}


def delete_account(db, config, address):
    """The account, its mailboxes and messages; its objects through the janitor's path."""
    objects = account_store.delete_account(db, address)
    left = discard_objects(db, config, objects)
    return {"address": address.strip().lower(), "objects_removed": len(objects) - left,
            "objects_left_to_janitor": left}


def discard_objects(db, config, objects):
    """The janitor's discard path for (bucket, key) pairs: intents first, objects, rows.
    Returns how many could not be removed now (their intent rows stay for the janitor)."""
    from geomail.context import blob_store
    from geomail.janitor import discard
    by_bucket = {}
    for bucket, key in objects:
        by_bucket.setdefault(bucket, []).append(key)
    left = 0
    for bucket, keys in by_bucket.items():
        left += len(discard(db, blob_store(config, bucket), keys))
    return left


# -- mailboxes ----------------------------------------------------------------

def mailbox_row(box):
    return {"name": box.name, "special_use": box.special_use or "",
            "messages": box.message_count, "unseen": box.unseen_count,
            "size": box.total_size, "uidvalidity": box.uidvalidity, "uidnext": box.uidnext}


def mailbox_name(name):
    return normalize_name(name.rstrip("/"))


def list_account_mailboxes(db, address):
    account = account_of(db, address)
    return [mailbox_row(box) for box in list_mailboxes(db, account.id)]


def mailbox_status(db, address, name):
    account = account_of(db, address)
    name = mailbox_name(name)
    for box in list_mailboxes(db, account.id):
        if box.name == name:
            return mailbox_row(box)
    raise MailboxNotFound(f"{account.address} has no mailbox {name}")


def create_mailbox(db, address, name):
    account = account_of(db, address)
    name = mailbox_name(name)
    message_store.create_mailbox(db, account.id, name)
    return {"address": account.address, "name": name}


def rename_mailbox(db, address, name, new_name):
    account = account_of(db, address)
    old, new = mailbox_name(name), mailbox_name(new_name)
    message_store.rename_mailbox(db, account.id, old, new)
    return {"address": account.address, "name": new, "was": old}


def delete_mailbox(db, config, address, name):
    account = account_of(db, address)
    name = mailbox_name(name)
    objects = message_store.delete_mailbox(db, account.id, name)
    left = discard_objects(db, config, objects)
    return {"address": account.address, "name": name, "objects_removed": len(objects) - left,
            "objects_left_to_janitor": left}


# -- quotas (RFC 9208) ---------------------------------------------------------

QUOTA_COLUMNS = ["resource", "usage", "limit", "unit"]


def get_quota(db, address):
    """STORAGE (KiB, rounded up) and MESSAGE usage and limits (None: no limit), as
    IMAP GETQUOTA counts them."""
    from geomail.store.quota import get_quota as stored_quota, kib
    account = account_of(db, address)
    quota = stored_quota(db, account.id, with_usage=True)
    storage = None if quota.storage_limit is None else quota.storage_limit // 1024
    return [{"resource": "STORAGE", "usage": kib(quota.storage_used), "limit": storage,
             "unit": "KiB"},
            {"resource": "MESSAGE", "usage": quota.messages_used, "limit": quota.message_limit,
             "unit": "messages"}]


def set_quota(db, address, storage_kib=None, messages=None):
    """Set the limits given (0 removes one; None leaves it as it is); the quota after."""
    from geomail.store.quota import UNCHANGED, set_quota as store_quota
    for value in (storage_kib, messages):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 0):
            raise Invalid(f"a limit is a whole number >= 0 (0: none), not {value!r}")

    def limit(value):
        return UNCHANGED if value is None else (value or None)
    account = account_of(db, address)
    store_quota(db, account.address, storage_kib=limit(storage_kib), messages=limit(messages))
    return get_quota(db, address)


# -- sessions -----------------------------------------------------------------

def list_sessions(db, address=None):
    """The IMAP sessions logged in now on every host, optionally of one account."""
    if address:
        address = account_of(db, address).address
    return session_store.list_sessions(db, address)


def kick(db, address=None, session=None):
    """Ask the serving workers to end an account's sessions, or one session by id; they
    do within a few seconds (geomail/imap/who.py).  Returns how many were marked."""
    if not address and not session:
        raise Invalid("give an account or a session id")
    if address:
        address = account_of(db, address).address
    return {"kicked": session_store.kick(db, address=address, session=session)}


# -- messages -----------------------------------------------------------------

def _mailbox_view(context, address, name):
    """The account and a read-only view of the mailbox, as EXAMINE would give a session."""
    from geomail.imap.view import View
    account = account_of(context.db, address)
    mailbox = message_store.find_mailbox(context.db, account.id, mailbox_name(name))
    if mailbox is None:
        raise MailboxNotFound(f"{account.address} has no mailbox {mailbox_name(name)}")
    snapshot = message_store.open_mailbox(context.db, mailbox.id, claim_recent=False)
    return account, View(mailbox, snapshot, readonly=True)


def search(context, address, name, query="ALL"):
    """The messages of one mailbox that match IMAP search keys (RFC 3501 §6.4.4, the same
    parser and compiler as SEARCH; sequence numbers count as in a fresh EXAMINE)."""
    from geomail.imap import search as imap_search
    from geomail.imap.errors import CommandError
    from geomail.imap.parser import ParseError
    from geomail.store.search import matching_rows
    account, view = _mailbox_view(context, address, name)
    session = types.SimpleNamespace(view=view, saved_search=[], context=context,
                                    account=account, enabled=set(),
                                    untagged=lambda text: None)   # nobody to tell

    parser = _line_parser(query)
    try:
        keys = imap_search.KeyParser(session, parser, "UTF-8")
        key = keys.program()
        parser.end()
    except (ParseError, CommandError) as exc:
        raise Invalid(f"search keys: {exc}") from None
    if not len(view):
        return []
    rows = matching_rows(context.db, view.mailbox_id, key,
                         ("internal_date", "size", "from", "subject"), limit_uid=view.last_uid)
    return [{"uid": uid, "internal_date": str(date), "size": size, "from": sender or "",
             "subject": subject or ""} for uid, _, date, size, sender, subject in rows]


def fetch(context, address, name, uid):
    """The stored bytes of one message (by UID), exactly as IMAP serves BODY[]."""
    from geomail.reader import StoredMessage
    try:
        uid = int(uid)
    except (TypeError, ValueError):
        raise Invalid(f"not a UID: {uid!r}") from None
    _, view = _mailbox_view(context, address, name)
    rows = list(message_store.fetch_rows(context.db, view.mailbox_id, [(uid, uid)], ["content"]))
    if not rows:
        raise MailboxNotFound(f"{name} has no message with UID {uid}")
    row = rows[0]
    return b"".join(StoredMessage.load(context, row["content_id"], row["trace_headers"]).read())


class _Line:
    """A connection that holds one command line (for the IMAP parser, outside a session)."""

    def __init__(self, data):
        self.data = data

    def readline(self, limit):
        data, self.data = self.data, b""
        return data


def _line_parser(query):
    from geomail.imap.parser import MAX_LINE, Parser
    encoded = query.encode("utf-8")
    if len(encoded) > MAX_LINE or b"\n" in encoded or b"\r" in encoded:
        raise Invalid("search keys must be one line")
    parser = Parser(_Line(encoded + b"\r\n"), lambda: None, 0)
    parser.next_line()
    return parser
