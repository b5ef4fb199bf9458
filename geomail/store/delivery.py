"""SQL of delivery: recipients, the one transaction that stores a message, the upload intent log.

``store_message`` writes the content row (shared by every recipient), its
attachment rows and one ``messages`` row per target mailbox, allocating each
UID under the mailbox's row lock, in one transaction.  Mailboxes are locked
in id order so that two deliveries to the same recipients cannot deadlock.

The cached IMAP forms (ENVELOPE, BODYSTRUCTURE, BODY) are bytes on the wire
but TEXT columns here: they are stored latin-1-decoded, which maps every
byte to one character and back, so 8-bit header bytes survive unchanged.
``load_content`` undoes that.
"""

import json
from dataclasses import dataclass, field

from geomail.store import intents
from geomail.store.mailboxes import INBOX

FLAG_COLUMNS = ("seen", "answered", "flagged", "deleted", "draft")
SYSTEM_FLAGS = {"\\seen": "seen", "\\answered": "answered", "\\flagged": "flagged",
                "\\deleted": "deleted", "\\draft": "draft"}

_CONTENT_INSERT = (
    "INSERT INTO message_contents (raw, segments, parts, size, header_size, envelope,"
    " bodystructure, body, text_plain, text_html, refcount)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")

_ATTACHMENT_INSERT = (
    "INSERT INTO attachments (content_id, idx, part_number, filename, safe_filename,"
    " content_type, transfer_encoding, decoded_size, sha256, encoding, bucket, object_key)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")

@dataclass
class Target:
    """One copy of the message: which mailbox, with which trace headers and flags."""

    mailbox_id: int
    trace_headers: bytes = b""
    flags: tuple = ()                 # IMAP system flags and keywords, e.g. ("\\Seen", "$Label1")
    internal_date: object = None      # datetime (UTC, naive); None: now


@dataclass
class StoredAttachment:
    """An attachment already in S3, as the attachments table records it."""

    index: int
    part_number: str
    filename: str
    safe_filename: str
    content_type: str
    transfer_encoding: str
    decoded_size: int
    sha256: str
    encoding: dict = field(default_factory=dict)
    bucket: str = ""
    object_key: str = ""


# -- recipients ---------------------------------------------------------------

def inbox_of(db, address):
    """(account_id, inbox mailbox id) of an existing account, or None."""
    with db.cursor() as cur:
        cur.execute("SELECT a.id, m.id FROM accounts a JOIN mailboxes m"
                    " ON m.account_id = a.id AND m.name = %s WHERE a.address = %s",
                    (INBOX, address))
        row = cur.fetchone()
    return (int(row[0]), int(row[1])) if row else None


# -- the delivery transaction -------------------------------------------------

def store_message(db, parsed, attachments, targets, pending_ids=()):
    """Store one parsed message for every target in one transaction.

    Returns [(mailbox_id, uid)] in the order of ``targets``.  ``pending_ids``
    are the intent-log rows of the attachments' uploads: deleting them in
    the same transaction makes the objects owned by committed rows.
    """
    def work(cur):
        content_id = _insert_content(cur, parsed, len(targets))
        if attachments:
            cur.executemany(_ATTACHMENT_INSERT, [
                (content_id, a.index, a.part_number, a.filename, a.safe_filename,
                 a.content_type, a.transfer_encoding, a.decoded_size, a.sha256,
                 json.dumps(a.encoding), a.bucket, a.object_key) for a in attachments])
        uids = {}
        for target in sorted(targets, key=lambda t: t.mailbox_id):
            uids[id(target)] = (target.mailbox_id,
                                _insert_message(cur, content_id, parsed, target))
        if pending_ids:
            cur.execute(f"DELETE FROM pending_objects WHERE id IN ({_marks(pending_ids)})",
                        tuple(pending_ids))
        return [uids[id(target)] for target in targets]

    return db.run_transaction(work)


def _insert_content(cur, parsed, refcount):
    cur.execute(_CONTENT_INSERT, (
        parsed.raw,
        json.dumps(parsed.segments_json(), separators=(",", ":")),
        json.dumps(parsed.parts.to_json(), separators=(",", ":")),
        parsed.size,
        parsed.parts.header_length,
        _text(parsed.envelope), _text(parsed.bodystructure), _text(parsed.body),
        parsed.text_plain or None, parsed.text_html or None,
        refcount))
    return cur.lastrowid


_MESSAGE_INSERT_FROM_MAILBOX = (
    "INSERT INTO messages (mailbox_id, uid, modseq, content_id, seen, answered, flagged,"
    " deleted, draft, keywords, internal_date, rfc822_size, trace_headers, message_id,"
    " date_sent, sent_date, from_addr, to_addr, cc_addr, subject, in_reply_to, references_ids)"
    " SELECT id, %s, highestmodseq, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " %s, %s, %s, %s, %s FROM mailboxes WHERE id = %s")


def _insert_message(cur, content_id, parsed, target):
    """Allocate the next UID under the mailbox row lock and insert the row.

    Two round trips: the UPDATE takes the row lock, moves uidnext and
    highestmodseq and the counters, and hands the old uidnext back through
    LAST_INSERT_ID(expr) (the OK packet's insert id, ``cur.lastrowid``); the
    INSERT ... SELECT copies the new highestmodseq.  The lock is held from
    the UPDATE to COMMIT, so UIDs are strictly increasing and never reused.
    """
    flags, keywords = split_flags(target.flags)
    headers = parsed.headers
    size = parsed.size + len(target.trace_headers)
    unseen = 0 if "seen" in flags else 1
    cur.execute("UPDATE mailboxes SET uidnext = LAST_INSERT_ID(uidnext) + 1,"
                " highestmodseq = highestmodseq + 1, message_count = message_count + 1,"
                " unseen_count = unseen_count + %s, total_size = total_size + %s WHERE id = %s",
                (unseen, size, target.mailbox_id))
    if cur.rowcount != 1:
        raise LookupError(f"mailbox {target.mailbox_id} does not exist")
    uid = int(cur.lastrowid)
    cur.execute(_MESSAGE_INSERT_FROM_MAILBOX, (
        uid, content_id,
        *(1 if name in flags else 0 for name in FLAG_COLUMNS),
        " ".join(keywords), target.internal_date or _utcnow(), size, target.trace_headers,
        _cut(headers.get("message-id"), 255), _naive_utc(headers.get("date_parsed")),
        _local_date(headers.get("date_parsed")),
        _cut(headers.get("from"), 1000), _cut(headers.get("to"), 1000),
        _cut(headers.get("cc"), 1000), _cut(headers.get("subject"), 1000),
        _cut(headers.get("in-reply-to"), 255), _cut(headers.get("references"), 60000),
        target.mailbox_id))
    if keywords:
        _remember_keywords(cur, target.mailbox_id, keywords)
    return uid


def _remember_keywords(cur, mailbox_id, keywords):
    """Add keywords to the mailbox's FLAGS list (under the row lock already held)."""
    cur.execute("SELECT keywords FROM mailboxes WHERE id = %s", (mailbox_id,))
    known = (cur.fetchone()[0] or "").split()
    missing = [k for k in keywords if k not in known]
    if missing:
        cur.execute("UPDATE mailboxes SET keywords = %s WHERE id = %s",
                    (" ".join(known + missing), mailbox_id))


def split_flags(flags):
    """IMAP flags -> (set of flag column names, list of keywords); \\Recent is ignored."""
    columns, keywords = set(), []
    for flag in flags:
        column = SYSTEM_FLAGS.get(flag.lower())
        if column:
            columns.add(column)
        elif not flag.startswith("\\") and flag not in keywords:
            keywords.append(flag)
    return columns, keywords


# -- reading a content back ---------------------------------------------------

def load_content(db, content_id):
    """One content row as a dict, with its cached IMAP forms; None if it does not exist."""
    return load_contents(db, [content_id], imap_forms=True).get(content_id)


def load_contents(db, content_ids, parts=True, imap_forms=False):
    """{content_id: content} for several contents in two queries (FETCH of body sections).

    A content is a dict: raw (bytes), segments and parts (parsed JSON; parts is
    None with ``parts=False``, for fetches that do not need the part tree),
    size, header_size, attachments (index, bucket, key, size), and with
    ``imap_forms`` the cached envelope, bodystructure and body as bytes.
    """
    ids = sorted(set(content_ids))
    if not ids:
        return {}
    columns = "id, raw, segments, " + ("parts" if parts else "NULL") + ", size, header_size"
    if imap_forms:
        columns += ", envelope, bodystructure, body"
    out = {}
    with db.cursor() as cur:
        cur.execute(f"SELECT {columns} FROM message_contents WHERE id IN ({_marks(ids)})", ids)
        for row in cur.fetchall():
            content = {"raw": bytes(row[1]), "segments": json.loads(row[2]),
                       "parts": json.loads(row[3]) if row[3] else None, "size": int(row[4]),
                       "header_size": int(row[5]), "attachments": []}
            if imap_forms:
                content.update(envelope=row[6].encode("latin-1"),
                               bodystructure=row[7].encode("latin-1"),
                               body=row[8].encode("latin-1"))
            out[row[0]] = content
        cur.execute("SELECT content_id, idx, bucket, object_key, decoded_size FROM attachments"
                    f" WHERE content_id IN ({_marks(ids)}) ORDER BY content_id, idx", ids)
        for content_id, index, bucket, key, size in cur.fetchall():
            if content_id in out:
                out[content_id]["attachments"].append(
                    {"index": index, "bucket": bucket, "key": key, "size": size})
    return out


# -- the upload intent log: geomail/store/intents.py (these names stay for callers) --

def record_pending(db, bucket, key, host, pid):
    """Note an upload about to start (autocommit); returns the row id."""
    return intents.record(db, bucket, key, host, pid)


def forget_pending(db, ids):
    intents.forget(db, ids)


def pending_by_keys(db, keys):
    """[(id, bucket, key)] of the intent rows of these object keys."""
    return intents.by_keys(db, keys)


def pending_for_cleanup(db, host, live_pids, older_than_seconds, grace=0):
    """Rows no writer will finish (see intents.stale)."""
    return intents.stale(db, host, live_pids, older_than_seconds, grace)


# -- helpers ------------------------------------------------------------------

def _marks(items):
    return ", ".join(["%s"] * len(items))


def _text(value):
    if value is None:
        return ""
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value


def _cut(value, limit):
    """A header value fit for a VARCHAR(limit) utf8mb4 column (no lone surrogates)."""
    if value is None:
        return None
    return value[:limit].encode("utf-8", "replace").decode("utf-8")


def _utcnow():
    import datetime
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _local_date(value):
    """The calendar date of a Date: header in its own timezone (SEARCH SENTON)."""
    if value is None or not 1000 <= value.year <= 9999:
        return None
    return value.date()


def _naive_utc(value):
    if value is None:
        return None
    import datetime
    try:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    except (OverflowError, ValueError, OSError):
        return None
    return value if 1000 <= value.year <= 9999 else None   # MySQL DATETIME's range
