"""SQL of delivery: recipients and the one transaction that stores a message.

``store_message`` writes the content (shared by every recipient, with its
attachments: geomail/store/contents.py) and one ``messages`` row per target
mailbox, allocating each UID under the mailbox's row lock, in one
transaction, which also removes the uploads' intent rows.  Mailboxes are
locked in id order so that two deliveries to the same recipients cannot
deadlock.  Header values for the message row are fitted to their columns
(contents.py, "fitting values to their columns"): the stored bytes keep
them whole.
"""

from dataclasses import dataclass

from geomail import flags
from geomail.objectids import thread_id_of, thread_root_id
from geomail.store import contents, dialect, intents
from geomail.store.contents import (ADDRESS_CHARS, MESSAGE_ID_CHARS, SUBJECT_CHARS,
                                    StoredAttachment, _clean, _cut)
from geomail.store.mailboxes import INBOX

FLAG_COLUMNS = flags.COLUMNS               # geomail/flags.py
SYSTEM_FLAGS = flags.COLUMN_OF_LOWER
REFERENCES_BYTES = 65535       # references_ids TEXT: see _references
__all__ = ["Target", "StoredAttachment", "inbox_of", "store_message", "store_messages",
           "split_flags"]


@dataclass
class Target:
    """One copy of the message: which mailbox, with which trace headers and flags."""

    mailbox_id: int
    trace_headers: bytes = b""
    flags: tuple = ()                 # IMAP system flags and keywords, e.g. ("\\Seen", "$Label1")
    internal_date: object = None      # datetime (UTC, naive); None: now
    # keywords the mailbox's FLAGS list held when it was looked up; they are never
    # removed from it, so a message with only these needs no merge (and stays a script)
    known_keywords: frozenset = frozenset()


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
    return store_messages(db, [(parsed, attachments, targets, pending_ids)])[0]


def store_messages(db, batch):
    """Group commit: several messages ``(parsed, attachments, targets, pending_ids)``,
    each stored as ``store_message`` stores one, all in one transaction (one log
    flush for all).  Every message is whole or absent; returns their uid lists.

    On MySQL the common case is one script (``_script``): one round trip for
    the whole batch.  Keywords new to their mailbox (APPEND's flags) and
    messages whose raw needs chunks take the statement by statement path.
    """
    threads = _thread_roots(batch) if dialect.of(db).scripts else None
    if threads is not None and all(
            message[2] and not _new_keywords(message[2]) for message in batch):
        allocation = _Allocation(batch)
        rows = db.run_script(lambda cur: _script(cur, batch, allocation, threads))
        if rows is not None:
            return allocation.uids(rows[0])

    def work(cur):
        return [_store_in(cur, *message) for message in batch]

    return db.run_transaction(work)


def _new_keywords(targets):
    """Does a target carry a keyword its mailbox's FLAGS list may not hold yet?"""
    return any(set(split_flags(target.flags)[1]) - target.known_keywords for target in targets)


class _Allocation:
    """Which message rows go to which mailbox: mailboxes in id order (the lock
    order), rows of one mailbox in batch order, so UIDs follow the batch."""

    def __init__(self, batch):
        self.rows = {}                # mailbox_id -> [(message index, target)]
        self.places = {}              # mailbox_id -> [(message index, position in targets)]
        for index, (_, _, targets, _) in enumerate(batch):
            for position, target in enumerate(targets):
                self.rows.setdefault(target.mailbox_id, []).append((index, target))
                self.places.setdefault(target.mailbox_id, []).append((index, position))
        self.mailboxes = sorted(self.rows)
        self.batch = batch

    def uids(self, first_uids):
        """Per message, [(mailbox_id, uid)] in its targets' order, from each mailbox's
        first new UID (the script's final SELECT)."""
        uid_of = {}
        for mailbox_id, first in zip(self.mailboxes, first_uids):
            for offset, place in enumerate(self.places[mailbox_id]):
                uid_of[place] = int(first) + offset
        return [[(target.mailbox_id, uid_of[index, position])
                 for position, target in enumerate(targets)]
                for index, (_, _, targets, _) in enumerate(self.batch)]


def _script(cur, batch, allocation, threads):
    """The batch as one script: each content (id in @c<i>) with its attachments,
    the intent rows forgotten, then per mailbox (in id order) one UPDATE taking
    its row lock and moving uidnext, highestmodseq and the counters for all its
    new rows, which reads the first UID and the old modseq into @u<n>, @m<n>,
    and one multi-row INSERT of its messages; ends with SELECT of the first UIDs.

    The mailbox row is locked last, so it is held only while the server runs
    the rest and flushes the log, with no round trip in between.  A mailbox
    deleted meanwhile leaves @u<n> at 0 and its INSERT fails on the foreign
    key: the server stops there, before COMMIT, and nothing is stored.
    """
    # Zeroed in the first content's SET (one statement less to answer): the
    # session's variables may hold a previous script's values.
    zeroed = ", ".join(f"@u{n} = 0, @m{n} = 0" for n in range(len(allocation.mailboxes)))
    statements = []
    for index, (parsed, attachments, targets, pending_ids) in enumerate(batch):
        content = contents.script_insert(cur, parsed, attachments, len(targets), f"@c{index}",
                                         also_set=zeroed if index == 0 else "")
        if content is None:
            return None
        statements += content
        if pending_ids:
            statements.append(cur.mogrify(intents.FORGET.format(marks=_marks(pending_ids)),
                                          tuple(pending_ids)))
    for n, mailbox_id in enumerate(allocation.mailboxes):
        statements += _mailbox_statements(cur, n, mailbox_id, allocation.rows[mailbox_id], batch,
                                          threads)
    statements.append("SELECT " + ", ".join(f"@u{n}" for n in range(len(allocation.mailboxes))))
    return statements


_MESSAGE_COLUMNS = (
    "INSERT INTO messages (mailbox_id, uid, modseq, content_id, seen, answered, flagged,"
    " deleted, draft, keywords, internal_date, rfc822_size, trace_headers, message_id,"
    " date_sent, sent_date, from_addr, to_addr, cc_addr, subject, in_reply_to, references_ids,"
    " save_date, thread_id) VALUES ")


def _mailbox_statements(cur, n, mailbox_id, rows, batch, threads):
    count = len(rows)
    values, unseen, size = [], 0, 0
    for offset, (index, target) in enumerate(rows):
        parsed = batch[index][0]
        flags, _ = split_flags(target.flags)
        unseen += 0 if "seen" in flags else 1
        size += parsed.size + len(target.trace_headers)
        values.append(cur.mogrify(
            f"(%s, @u{n} + {offset}, @m{n} + {offset + 1}, @c{index}, " + ", ".join(["%s"] * 20)
            + ")", (mailbox_id, *_message_values(parsed, target, flags, (),
                                                 thread=threads[index]))))
    # integers only: formatted with int(), as pymysql would, without its per-value escaping
    count, unseen, size, mailbox_id = int(count), int(unseen), int(size), int(mailbox_id)
    # The UPDATE also reads the old uidnext and highestmodseq into @u<n>, @m<n>
    # (MariaDB's := in an expression: the row as locked), one statement, not a
    # SELECT ... INTO after it.
    return [
        f"UPDATE mailboxes SET uidnext = (@u{n} := uidnext) + {count}, highestmodseq ="
        f" (@m{n} := highestmodseq) + {count}, message_count = message_count + {count},"
        f" unseen_count = unseen_count + {unseen}, total_size = total_size + {size}"
        f" WHERE id = {mailbox_id}",
        _MESSAGE_COLUMNS + ", ".join(values),
    ]


def _message_values(parsed, target, flags, keywords, content_id=None, thread=None):
    """The values of a messages row after (mailbox_id, uid, modseq, content_id), the
    save date (RFC 8514: placed in this mailbox now) and THREADID last; without
    ``content_id`` (a script, where it is @c<i>) the message must have an id of
    its own for its THREADID, ``thread`` (``_thread_roots``) if already known."""
    headers = parsed.headers
    now = _utcnow()
    message_id = _cut(headers.get("message-id"), MESSAGE_ID_CHARS)
    in_reply_to = _cut(headers.get("in-reply-to"), MESSAGE_ID_CHARS)
    references = _references(headers.get("references"))
    # from the stored columns, as messages.fill_thread_ids computes it for older rows
    if thread is None:
        thread = (thread_root_id(message_id, in_reply_to, references) if content_id is None
                  else thread_id_of(message_id, in_reply_to, references, content_id))
    return (
        *(1 if name in flags else 0 for name in FLAG_COLUMNS),
        " ".join(keywords), target.internal_date or now,
        parsed.size + len(target.trace_headers), target.trace_headers,
        message_id, _naive_utc(headers.get("date_parsed")),
        _local_date(headers.get("date_parsed")),
        _cut(headers.get("from"), ADDRESS_CHARS), _cut(headers.get("to"), ADDRESS_CHARS),
        _cut(headers.get("cc"), ADDRESS_CHARS), _cut(headers.get("subject"), SUBJECT_CHARS),
        in_reply_to, references, now, thread)


def _thread_roots(batch):
    """Each message's THREADID from its own ids (see _message_values), in batch order,
    or None when one has none of its own: found once, for the check and the rows."""
    roots = []
    for parsed, _, _, _ in batch:
        headers = parsed.headers
        root = thread_root_id(_cut(headers.get("message-id"), MESSAGE_ID_CHARS),
                              _cut(headers.get("in-reply-to"), MESSAGE_ID_CHARS),
                              _references(headers.get("references")))
        if root is None:
            return None
        roots.append(root)
    return roots


def _marks(items):
    return ", ".join(["%s"] * len(items))


def _store_in(cur, parsed, attachments, targets, pending_ids):
    content_id = contents.insert(cur, parsed, attachments, len(targets))
    uids = {}
    for target in sorted(targets, key=lambda t: t.mailbox_id):
        uids[id(target)] = (target.mailbox_id, _insert_message(cur, content_id, parsed, target))
    intents.forget_in(cur, pending_ids)
    return [uids[id(target)] for target in targets]


_MESSAGE_INSERT_FROM_MAILBOX = (
    "INSERT INTO messages (mailbox_id, uid, modseq, content_id, seen, answered, flagged,"
    " deleted, draft, keywords, internal_date, rfc822_size, trace_headers, message_id,"
    " date_sent, sent_date, from_addr, to_addr, cc_addr, subject, in_reply_to, references_ids,"
    " save_date, thread_id)"
    " SELECT id, %s, highestmodseq, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " %s, %s, %s, %s, %s, %s, %s FROM mailboxes WHERE id = %s")


def _insert_message(cur, content_id, parsed, target):
    """Allocate the next UID under the mailbox row lock and insert the row.

    Two round trips: the UPDATE takes the row lock, moves uidnext and
    highestmodseq and the counters, and hands the old uidnext back through
    LAST_INSERT_ID(expr) (the OK packet's insert id, ``cur.lastrowid``); the
    INSERT ... SELECT copies the new highestmodseq.  The lock is held from
    the UPDATE to COMMIT, so UIDs are strictly increasing and never reused.
    """
    flags, keywords = split_flags(target.flags)
    size = parsed.size + len(target.trace_headers)
    unseen = 0 if "seen" in flags else 1
    uid = _allocate_uid(cur, target.mailbox_id, unseen, size)
    cur.execute(_MESSAGE_INSERT_FROM_MAILBOX, (
        uid, content_id, *_message_values(parsed, target, flags, keywords, content_id),
        target.mailbox_id))
    if keywords:
        _remember_keywords(cur, target.mailbox_id, keywords)
    return uid


_ALLOCATE_UID = ("UPDATE mailboxes SET uidnext = {uidnext} + 1,"
                 " highestmodseq = highestmodseq + 1, message_count = message_count + 1,"
                 " unseen_count = unseen_count + %s, total_size = total_size + %s WHERE id = %s")


def _allocate_uid(cur, mailbox_id, unseen, size):
    """The mailbox's next UID, taken under its row lock with the counters moved.

    MySQL hands the old uidnext back through LAST_INSERT_ID(expr); SQLite
    through RETURNING (its write transaction already holds the database).
    """
    if dialect.of(cur).returning:
        cur.execute(_ALLOCATE_UID.format(uidnext="uidnext") + " RETURNING uidnext - 1",
                    (unseen, size, mailbox_id))
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"mailbox {mailbox_id} does not exist")
        return int(row[0])
    cur.execute(_ALLOCATE_UID.format(uidnext="LAST_INSERT_ID(uidnext)"), (unseen, size, mailbox_id))
    if cur.rowcount != 1:
        raise LookupError(f"mailbox {mailbox_id} does not exist")
    return int(cur.lastrowid)


def _remember_keywords(cur, mailbox_id, keywords):
    """Add keywords to the mailbox's FLAGS list (under the row lock already held);
    KeywordLimit past MAX_MAILBOX_KEYWORDS (the transaction is rolled back)."""
    from geomail.store.messages import MAX_MAILBOX_KEYWORDS, KeywordLimit
    cur.execute("SELECT keywords FROM mailboxes WHERE id = %s", (mailbox_id,))
    known = (cur.fetchone()[0] or "").split()
    missing = [k for k in keywords if k not in known]
    if len(known) + len(missing) > MAX_MAILBOX_KEYWORDS:
        raise KeywordLimit(f"a mailbox can hold at most {MAX_MAILBOX_KEYWORDS} keywords")
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


def _references(value):
    """References for a TEXT column: the last message-ids that fit in 64 KiB.

    The end of the list is what threading needs (the parent is the last id,
    RFC 5256 REFERENCES), so a longer list loses its oldest ids, cut before
    a whole id.  Not a wider column: that would rebuild the messages table.
    """
    if value is None:
        return None
    value = _clean(value)
    data = value.encode("utf-8")
    if len(data) <= REFERENCES_BYTES:
        return value
    tail = data[len(data) - REFERENCES_BYTES:]
    start = tail.find(b"<")
    return tail[max(start, 0):].decode("utf-8", "ignore")


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
