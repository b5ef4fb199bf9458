"""Messages as IMAP sees them: views, flags, search, expunge, copy, mailbox changes.

Every IMAP-side query over messages lives here, behind small functions, so the
protocol code never writes SQL.  The rules kept throughout:

- Every change to a mailbox's messages takes the mailbox row lock
  (``SELECT ... FOR UPDATE``), allocates one new modseq (highestmodseq + 1)
  and stamps it on the rows it touches; sessions catch up by asking for what
  changed since the modseq they last saw (RFC 7162 design, used for plain
  IMAP4rev1 too).
- Expunged UIDs go to the ``expunged`` change log with their modseq.
- Contents are shared: COPY/MOVE increment ``message_contents.refcount``;
  expunge decrements it, deletes contents nobody refers to any more, and
  returns their S3 objects for the caller to delete after COMMIT.
- Counters on the mailbox row (message_count, unseen_count, total_size,
  uidnext, keywords) are kept right in the same transaction.

Sets of messages are passed as UID ranges ``[(low, high), ...]`` (inclusive).
"""

import dataclasses
import datetime

import gevent

from geomail import flags
from geomail.errors import PermanentFailure
from geomail.objectids import thread_id_of
from geomail.store import batch, contents, dialect
from geomail.store.errors import InvalidMailboxName, MailboxExists, StoreError, is_duplicate_key
from geomail.store.mailboxes import (DELIMITER, INBOX, allocate_uidvalidity, create_mailbox_in,
                                     normalize_name)

# IMAP system flag -> column, in bit order (geomail/flags.py)
FLAG_COLUMNS = flags.COLUMN_OF
SYSTEM_FLAGS = flags.SYSTEM_FLAGS
_COLUMNS = flags.COLUMNS
_RANGE_CHUNK = 500
YIELD_EVERY = 500      # rows handled in Python between two yields to the worker's loop
# Keywords live space-separated in TEXT columns (64 KiB: messages.keywords and the
# mailbox's FLAGS list, mailboxes.keywords), so their length and number are bounded
# well inside that (IMAP keywords are atoms: ASCII, one byte a character):
# 100 x 101 bytes per message, 500 x 101 bytes per mailbox.
MAX_KEYWORD_LENGTH = 100
MAX_MESSAGE_KEYWORDS = 100
MAX_MAILBOX_KEYWORDS = 500


class MailboxGone(StoreError, LookupError):
    """The mailbox was deleted (by this or another session)."""


class MailboxNotFound(StoreError, LookupError):
    """No mailbox of that name."""


class HasChildren(StoreError):
    """An operation refused because the mailbox has inferiors."""


class MessagesExpunged(StoreError, LookupError):
    """Some of the messages named were expunged by another session (RFC 2180 §4)."""


class KeywordLimit(StoreError, PermanentFailure):
    """A message or a mailbox would get more keywords than MAX_*_KEYWORDS (IMAP: NO [LIMIT]).

    Permanent (geomail.errors): the same request would fail again."""


def _check_keyword_count(merged, new_keywords):
    """The mailbox's FLAGS list may not grow past MAX_MAILBOX_KEYWORDS."""
    if new_keywords and len(merged.split(" ")) > MAX_MAILBOX_KEYWORDS:
        raise KeywordLimit(f"a mailbox can hold at most {MAX_MAILBOX_KEYWORDS} keywords")


canonical_flag = flags.canonical


def flags_of(bits, keywords):
    """IMAP flags from the five flag columns and the keyword string."""
    flags = [flag for flag, bit in zip(SYSTEM_FLAGS, bits) if bit]
    if keywords:
        flags.extend(keywords.split(" "))
    return flags


def _split_flags(flags):
    """(set of system flag columns, list of keywords) from IMAP flags."""
    columns, keywords = set(), []
    for flag in flags:
        column = FLAG_COLUMNS.get(canonical_flag(flag))
        if column:
            columns.add(column)
        elif not flag.startswith("\\") and flag not in keywords:
            keywords.append(flag)
    return columns, keywords


def ranges_sql(ranges, column="uid"):
    """SQL condition and arguments for UID ranges."""
    singles = [low for low, high in ranges if low == high]
    spans = [(low, high) for low, high in ranges if low != high]
    parts, args = [], []
    for i in range(0, len(singles), _RANGE_CHUNK):
        chunk = singles[i:i + _RANGE_CHUNK]
        parts.append(f"{column} IN ({', '.join(['%s'] * len(chunk))})")
        args.extend(chunk)
    for low, high in spans:
        parts.append(f"{column} BETWEEN %s AND %s")
        args.extend((low, high))
    if not parts:
        return "FALSE", []
    return "(" + " OR ".join(parts) + ")", args


def compress(uids):
    """Sorted UIDs -> ranges [(low, high)]."""
    ranges = []
    for uid in uids:
        if ranges and ranges[-1][1] + 1 == uid:
            ranges[-1] = (ranges[-1][0], uid)
        else:
            ranges.append((uid, uid))
    return ranges


def _lock_mailbox(cur, mailbox_id):
    cur.execute("SELECT uidvalidity, uidnext, highestmodseq, keywords, first_recent_uid "
                "FROM mailboxes WHERE id = %s FOR UPDATE", (mailbox_id,))
    row = cur.fetchone()
    if row is None:
        raise MailboxGone(f"mailbox {mailbox_id} no longer exists")
    return row


PAGE = 1000     # rows per query where a set may be large (see _rows_by_uid)


def _rows_by_uid(cur, columns, where, args, lock=""):
    """All rows of ``SELECT columns FROM messages WHERE where`` (uid first), by ascending uid.

    Read in keyset pages of PAGE with a yield between them: pymysql parses a
    result in Python without giving the loop back, and 10,000 rows of flags
    took some 150 ms of one worker's CPU in one piece.
    """
    out, after = [], 0
    while True:
        cur.execute(f"SELECT {columns} FROM messages WHERE {where} AND uid > %s "
                    f"ORDER BY uid LIMIT %s{lock}", [*args, after, PAGE])
        page = cur.fetchall()
        out.extend(page)
        if len(page) < PAGE:
            return out
        after = page[-1][0]
        gevent.sleep(0)


def _utcnow():
    """Now as the store keeps moments: naive UTC."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _merge_keywords(existing, new):
    have = existing.split(" ") if existing else []
    added = [k for k in new if k not in have]
    return " ".join(have + added), bool(added)


# -- the selected mailbox -------------------------------------------------------

@dataclasses.dataclass
class Snapshot:
    """What SELECT/EXAMINE needs, consistent as of ``highestmodseq``."""
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    keywords: list
    uids: list
    recent: list           # UIDs this session gets as \Recent
    first_unseen_uid: int | None
    unseen_count: int


def open_mailbox(db, mailbox_id, claim_recent):
    """Snapshot of a mailbox for SELECT (claim_recent) or EXAMINE.

    The session that SELECTs first after new mail arrives gets it as \\Recent
    and moves first_recent_uid to uidnext (RFC 3501 §2.3.2).  EXAMINE sees
    the same \\Recent messages but leaves them to the next SELECT (read-only:
    RFC 3501 §6.3.2 permits no change, and Dovecot keeps them recent too).
    """
    def work(cur):
        if claim_recent:
            cur.execute("SELECT uidvalidity, uidnext, highestmodseq, keywords, first_recent_uid, "
                        "unseen_count FROM mailboxes WHERE id = %s FOR UPDATE", (mailbox_id,))
        else:
            cur.execute("SELECT uidvalidity, uidnext, highestmodseq, keywords, first_recent_uid, "
                        "unseen_count FROM mailboxes WHERE id = %s", (mailbox_id,))
        row = cur.fetchone()
        if row is None:
            raise MailboxGone(f"mailbox {mailbox_id} no longer exists")
        uidvalidity, uidnext, highestmodseq, keywords, first_recent, unseen_count = row
        uids = [r[0] for r in _rows_by_uid(cur, "uid", "mailbox_id = %s", [mailbox_id])]
        cur.execute("SELECT MIN(uid) FROM messages WHERE mailbox_id = %s AND seen = 0", (mailbox_id,))
        first_unseen = cur.fetchone()[0]
        recent = [uid for uid in uids if uid >= first_recent]
        if claim_recent:
            if first_recent < uidnext:
                cur.execute("UPDATE mailboxes SET first_recent_uid = %s WHERE id = %s",
                            (uidnext, mailbox_id))
        return Snapshot(uidvalidity, uidnext, highestmodseq,
                        keywords.split(" ") if keywords else [], uids, recent, first_unseen,
                        unseen_count)
    return db.run_transaction(work)


def select_mailbox(db, account_id, name, claim_recent):
    """(MailboxInfo, Snapshot) of the mailbox ``name`` for SELECT (claim_recent) or
    EXAMINE, or None when there is none; open_mailbox's rules in one request.

    The statements find the mailbox by its unique (account, name) each.  On
    MySQL nothing is locked: SELECT's UIDs are those below the uidnext its
    mailbox row read (kept in a session variable; a delivery commits its UID
    and uidnext together, so all of them are there), and \\Recent is claimed
    up to it as a catch-up claims it (changes_queries).  SQLite runs them in
    one write transaction that moves first_recent_uid to uidnext.  A mailbox
    of more than PAGE messages has the rest of its UIDs read afterwards, those
    below the snapshot's uidnext (a message expunged meanwhile is then not
    shown: the client is told the count it is shown).
    """
    name = normalize_name(name)
    by_name = "SELECT id FROM mailboxes WHERE account_id = %s AND name = %s"
    lock_free = claim_recent and dialect.of(db).scripts
    below = " AND uid < @claim_below" if lock_free else ""
    queries = [
        (f"SELECT {_INFO}, keywords{', @claim_below := uidnext' if lock_free else ''} "
         f"FROM mailboxes WHERE account_id = %s AND name = %s"
         f"{' FOR UPDATE' if claim_recent and not lock_free else ''}", (account_id, name)),
        (f"SELECT uid FROM messages WHERE mailbox_id = ({by_name}){below} ORDER BY uid LIMIT %s",
         (account_id, name, PAGE)),
        (f"SELECT MIN(uid) FROM messages WHERE mailbox_id = ({by_name}) AND seen = 0{below}",
         (account_id, name)),
    ]
    if lock_free:
        queries += [("UPDATE mailboxes SET first_recent_uid = GREATEST(LAST_INSERT_ID("
                     "first_recent_uid), @claim_below) WHERE account_id = %s AND name = %s "
                     "AND first_recent_uid < @claim_below", (account_id, name)),
                    ("SELECT ROW_COUNT(), LAST_INSERT_ID()", None)]
        results = batch.read_all(db, queries)
    elif claim_recent:
        queries.append(("UPDATE mailboxes SET first_recent_uid = uidnext WHERE account_id = %s "
                        "AND name = %s AND first_recent_uid < uidnext", (account_id, name)))
        results = batch.transaction_all(db, queries)
    else:
        results = batch.read_all(db, queries)
    row, uid_rows, unseen = results[:3]
    if not row:
        return None
    info = MailboxInfo(*row[0][:len(_INFO.split(","))])
    keywords = row[0][len(_INFO.split(","))]
    uids = [r[0] for r in uid_rows]
    if len(uid_rows) == PAGE:
        with db.cursor() as cur:
            uids += [r[0] for r in _rows_by_uid(cur, "uid", "mailbox_id = %s AND uid > %s "
                                                "AND uid < %s", [info.id, uids[-1], info.uidnext])]
    first_recent = info.first_recent_uid
    if lock_free:
        claimed, old = results[4][0]
        first_recent = int(old) if claimed == 1 else info.uidnext     # 0 rows: none left
    recent = [uid for uid in uids if uid >= first_recent]
    snapshot = Snapshot(info.uidvalidity, info.uidnext, info.highestmodseq,
                        keywords.split(" ") if keywords else [], uids, recent, unseen[0][0],
                        info.unseen_count)
    return info, snapshot


def mailbox_state(db, mailbox_id):
    """(highestmodseq, uidnext) or None when the mailbox is gone: the cheap check."""
    with db.cursor() as cur:
        cur.execute("SELECT highestmodseq, uidnext FROM mailboxes WHERE id = %s", (mailbox_id,))
        return cur.fetchone()


def mailbox_states(db, mailbox_ids):
    """{mailbox_id: (highestmodseq, uidnext)} for the watcher."""
    ids = list(mailbox_ids)
    if not ids:
        return {}
    with db.cursor() as cur:
        cur.execute(f"SELECT id, highestmodseq, uidnext FROM mailboxes WHERE id IN "
                    f"({', '.join(['%s'] * len(ids))})", ids)
        return {row[0]: (row[1], row[2]) for row in cur.fetchall()}


@dataclasses.dataclass
class Changes:
    highestmodseq: int
    new: list          # [(uid, flags)] with uid > last_uid, ascending
    changed: list      # [(uid, flags, modseq)] with uid <= last_uid and modseq > since
    expunged: list     # UIDs expunged since
    keywords: list
    claimed_recent: list
    first_recent_uid: int         # as read: what a read-only view counts as \Recent


_CHANGED_COLUMNS = "uid, seen, answered, flagged, deleted, draft, keywords, modseq"


def changes_queries(db, mailbox_id, since, claim_recent=False):
    """The reads of a catch-up from modseq ``since``, to send in one request (alone:
    changes_since, or after a command's own statements: changes_from).  In this
    order: the mailbox row, the first PAGE rows whose modseq is above ``since``
    and the expunge log after it, so the modseq the session moves to is the one
    read first and nothing committed meanwhile is skipped (a later catch-up
    sees it again).

    ``claim_recent`` on MySQL: the request also claims \\Recent for what it saw,
    as _claim_recent does, up to the uidnext its mailbox row read (kept in a
    session variable), so every message below it is in the rows read."""
    if not (claim_recent and dialect.of(db).scripts):
        mailbox = ("SELECT highestmodseq, keywords, first_recent_uid, uidnext FROM mailboxes "
                   "WHERE id = %s", (mailbox_id,))
        claim = []
    else:
        mailbox = ("SELECT highestmodseq, keywords, first_recent_uid, @claim_below := uidnext "
                   "FROM mailboxes WHERE id = %s", (mailbox_id,))
        claim = [("UPDATE mailboxes SET first_recent_uid = GREATEST(LAST_INSERT_ID("
                  "first_recent_uid), @claim_below) WHERE id = %s "
                  "AND first_recent_uid < @claim_below", (mailbox_id,)),
                 ("SELECT ROW_COUNT(), LAST_INSERT_ID()", None)]
    return [
        mailbox,
        (_changed_rows(db), (mailbox_id, since, 0, PAGE)),
        ("SELECT uid, modseq FROM expunged WHERE mailbox_id = %s AND modseq > %s ORDER BY uid",
         (mailbox_id, since)),
        *claim,
    ]


def _changed_rows(db):
    return (f"SELECT {_CHANGED_COLUMNS} FROM {dialect.of(db).messages_by_modseq} "
            "WHERE mailbox_id = %s AND modseq > %s AND uid > %s ORDER BY uid LIMIT %s")


def changes_since(db, mailbox_id, since, last_uid, claim_recent=False):
    """What happened in the mailbox after modseq ``since``; None if it is gone.
    One request for the usual case (changes_queries); more changed rows than PAGE
    are read in further pages."""
    results = batch.read_all(db, changes_queries(db, mailbox_id, since, claim_recent))
    return changes_from(db, mailbox_id, since, last_uid, claim_recent, results)


def changes_from(db, mailbox_id, since, last_uid, claim_recent, results):
    """changes_since from the results of changes_queries(db, mailbox_id, read_since)
    sent earlier, for any ``since`` >= read_since (what the session learnt
    meanwhile, its own STORE for one, is left out)."""
    mailbox, page, gone, *claim = results
    if not mailbox:
        return None
    highestmodseq, keywords, first_recent, uidnext = mailbox[0]
    keywords = keywords.split(" ") if keywords else []
    claimed = []
    if claim and claim[1] and claim[1][0][0] == 1:     # ROW_COUNT(), LAST_INSERT_ID()
        claimed = [int(claim[1][0][1]), uidnext - 1]
        first_recent = claimed[0]
    if highestmodseq <= since:
        return Changes(highestmodseq, [], [], [], keywords, claimed, first_recent)
    rows = [row for row in page if row[-1] > since]
    while len(page) == PAGE:          # keyset pages, a yield between two
        gevent.sleep(0)
        with db.cursor() as cur:
            cur.execute(_changed_rows(db), (mailbox_id, since, page[-1][0], PAGE))
            page = cur.fetchall()
        rows.extend(page)
    new, changed = [], []
    for count, (uid, *bits, kw, modseq) in enumerate(rows, 1):
        if count % YIELD_EVERY == 0:
            gevent.sleep(0)
        if uid > last_uid:
            new.append((uid, flags_of(bits, kw)))
        else:
            changed.append((uid, flags_of(bits, kw), modseq))
    expunged = [uid for uid, modseq in gone if modseq > since]
    if claim_recent and not claim and new and new[-1][0] >= first_recent:
        claimed = _claim_recent(db, mailbox_id, new[-1][0])
    return Changes(highestmodseq, new, changed, expunged, keywords, claimed, first_recent)


def _claim_recent(db, mailbox_id, upto):
    """Take \\Recent for the UIDs up to ``upto`` no other session has claimed:
    [first, last], or [] when others claimed them all.

    On MySQL one UPDATE, which moves first_recent_uid past ``upto`` if it is not
    there yet and hands the value it had back through LAST_INSERT_ID(expr)
    (``cur.lastrowid``), as delivery's UID allocation does; SQLite reads and
    moves it in one write transaction.
    """
    if not dialect.of(db).returning:
        with db.cursor() as cur:
            cur.execute("UPDATE mailboxes SET first_recent_uid = "
                        "GREATEST(LAST_INSERT_ID(first_recent_uid), %s) "
                        "WHERE id = %s AND first_recent_uid <= %s", (upto + 1, mailbox_id, upto))
            return [int(cur.lastrowid), upto] if cur.rowcount == 1 else []

    def work(cur):
        cur.execute("SELECT first_recent_uid FROM mailboxes WHERE id = %s", (mailbox_id,))
        row = cur.fetchone()
        if row is None or row[0] > upto:
            return []
        cur.execute("UPDATE mailboxes SET first_recent_uid = %s WHERE id = %s", (upto + 1, mailbox_id))
        return [row[0], upto]
    return db.run_transaction(work)


# -- reading messages ------------------------------------------------------------

FETCH_COLUMNS = {
    # the five flag columns as one number (bit i: SYSTEM_FLAGS[i]): fewer columns to parse
    # parenthesised: SQLite gives | and << the same precedence, MySQL does not
    "flags": "m.seen | (m.answered << 1) | (m.flagged << 2) | (m.deleted << 3) | (m.draft << 4), "
             "m.keywords",
    "internal_date": "m.internal_date",
    "size": "m.rfc822_size",
    "modseq": "m.modseq",
    "envelope": "c.envelope",
    "bodystructure": "c.bodystructure",
    "body": "c.body",
    "content": "m.content_id, m.trace_headers, c.size, c.header_size",
    # the content's own bytes, read with the row (contents.contents_of_rows)
    "content_body": "c.raw, c.segments",
    "content_parts": "c.parts",
    # SAVEDATE (RFC 8514), EMAILID / THREADID (RFC 8474), PREVIEW (RFC 8970)
    "save_date": "m.save_date",
    "email_id": "m.content_id",
    "thread_id": "m.thread_id",
    "preview": "c.preview, m.content_id",
}
_FLAG_BITS, _KEYWORDS = "flag bits", "keywords"     # made into "flags" by fetch_rows
# the keys of a fetch row's dict, per field of more than one column (else the field's name)
_FETCH_NAMES = {"flags": (_FLAG_BITS, _KEYWORDS),
                "content": ("content_id", "trace_headers", "content_size", "header_size"),
                "content_body": ("raw", "segments"), "preview": ("preview", "preview_of")}
_FLAGS_BY_BITS = [tuple(flag for i, flag in enumerate(SYSTEM_FLAGS) if bits >> i & 1)
                  for bits in range(32)]
FETCH_PAGE = 1000
CONTENT_PAGE = 128      # rows per page when they carry the message bodies (memory)


def fetch_rows(db, mailbox_id, ranges, fields, changedsince=None, reads=(), reads_done=None):
    """Yield dicts for the messages in ``ranges`` (ascending UID), with the given fields.

    ``changedsince``: only messages whose modseq is above it (RFC 7162 §3.1.4.1).
    ``reads`` go in the request of the first page, and ``reads_done`` gets their
    results (the session's catch-up, view.py).
    """
    columns = ["m.uid"] + [FETCH_COLUMNS[f] for f in fields]
    join = " JOIN message_contents c ON c.id = m.content_id" if any(
        f in ("envelope", "bodystructure", "body", "content", "preview", "content_body",
              "content_parts") for f in fields) else ""
    cond, args = ranges_sql(ranges, "m.uid")
    if changedsince is not None:
        cond, args = f"{cond} AND m.modseq > %s", [*args, changedsince]
    names = ["uid"] + [name for f in fields for name in _FETCH_NAMES.get(f, (f,))]
    with_flags = "flags" in fields
    after = 0
    page = CONTENT_PAGE if "content_body" in fields else FETCH_PAGE
    while True:   # keyset pages, so a 1:* fetch of a large mailbox streams
        with db.cursor() as cur:
            rows, *read_results = batch.execute_all(cur, [
                (f"SELECT {', '.join(columns)} FROM messages m{join} WHERE m.mailbox_id = %s "
                 f"AND m.uid > %s AND {cond} ORDER BY m.uid LIMIT %s",
                 [mailbox_id, after, *args, page]), *reads])
        if reads:
            reads_done(read_results)
            reads = ()
        for row in rows:
            out = dict(zip(names, row))
            if with_flags:
                flags = list(_FLAGS_BY_BITS[int(out.pop(_FLAG_BITS))])
                keywords = out.pop(_KEYWORDS)
                if keywords:
                    flags.extend(keywords.split(" "))
                out["flags"] = flags
            yield out
        if len(rows) < page:
            return
        after = rows[-1][0]


THREAD_ROOT_CHARS = 1000     # of references_ids: its first id is all THREADID needs


def fill_thread_ids(db, mailbox_id):
    """Give the mailbox's rows stored before schema 8 their THREADID, PAGE at a time.

    The same function of the same stored columns as at delivery
    (objectids.thread_id_of), so FETCH and SEARCH THREADID agree for old and
    new rows.  Rows that have one cost one indexed query (mailbox_id, thread_id).
    """
    while True:
        with db.cursor() as cur:
            cur.execute("SELECT id, message_id, in_reply_to, SUBSTR(references_ids, 1, %s), "
                        "content_id FROM messages WHERE mailbox_id = %s AND thread_id IS NULL "
                        "LIMIT %s", (THREAD_ROOT_CHARS, mailbox_id, PAGE))
            rows = cur.fetchall()
        if not rows:
            return
        with db.transaction() as cur:
            cur.executemany("UPDATE messages SET thread_id = %s WHERE id = %s AND thread_id IS NULL",
                            [(thread_id_of(message_id, in_reply_to, references, content_id), row_id)
                             for row_id, message_id, in_reply_to, references, content_id in rows])
        if len(rows) < PAGE:
            return
        gevent.sleep(0)


def expunged_since(db, mailbox_id, since, ranges):
    """Yield, ascending, the UIDs within ``ranges`` expunged after modseq ``since``.

    The change log is never pruned, so this is exact (QRESYNC's VANISHED (EARLIER),
    RFC 7162 §3.2.10); read in keyset pages, so a long history streams.
    """
    cond, args = ranges_sql(ranges)
    after = 0
    while True:
        with db.cursor() as cur:
            cur.execute(f"SELECT uid FROM expunged WHERE mailbox_id = %s AND modseq > %s "
                        f"AND uid > %s AND {cond} ORDER BY uid LIMIT %s",
                        [mailbox_id, since, after, *args, FETCH_PAGE])
            uids = [row[0] for row in cur.fetchall()]
        yield from uids
        if len(uids) < FETCH_PAGE:
            return
        after = uids[-1]


def message_exists(db, mailbox_id, uid):
    """Is the message still there (a FETCH that failed mid-way asks: RFC 2180 §4.1)?"""
    with db.cursor() as cur:
        cur.execute("SELECT 1 FROM messages WHERE mailbox_id = %s AND uid = %s", (mailbox_id, uid))
        return cur.fetchone() is not None


def expunged_up_to(db, mailbox_id, since, last_uid, limit):
    """UIDs up to last_uid expunged after modseq ``since`` (at most ``limit`` of them):
    what a session that caught up to ``since`` may still be showing."""
    with db.cursor() as cur:
        cur.execute("SELECT uid FROM expunged WHERE mailbox_id = %s AND modseq > %s AND uid <= %s "
                    "LIMIT %s", (mailbox_id, since, last_uid, limit))
        return [r[0] for r in cur.fetchall()]


def mark_seen(db, mailbox_id, uids):
    """Set \\Seen on messages a BODY[] fetch read (RFC 3501 §6.4.5); returns changed UIDs."""
    return store_flags(db, mailbox_id, compress(sorted(uids)), "+", ["\\Seen"]).changed


# -- flags ------------------------------------------------------------------------

@dataclasses.dataclass
class Stored:
    """What store_flags did."""
    modseq: int        # the mailbox's modseq after it
    changed: dict      # {uid: flags} of the messages it changed
    failed: list       # UIDs whose modseq was above UNCHANGEDSINCE (left alone)
    current: dict      # {uid: (flags, modseq)} of every message found but the failed, after
    reads: list | None  # results of the ``reads`` sent after the COMMIT (None: not read)


def store_flags(db, mailbox_id, ranges, mode, flags, unchangedsince=None, reads=()):
    """STORE (RFC 3501 §6.4.6): mode '+', '-' or '='; returns a Stored.

    Raises KeywordLimit (nothing changed) when a message or the mailbox would
    hold too many keywords.  Two requests on MySQL: the mailbox row's lock with
    the first PAGE rows (a larger set reads its further pages), then every
    UPDATE with the COMMIT and ``reads`` (the session's catch-up, view.py).
    """
    columns, keywords = _split_flags(flags)

    def work(cur):
        cond, args = ranges_sql(ranges)
        lock, rows = batch.execute_all(cur, [
            ("SELECT highestmodseq, keywords FROM mailboxes WHERE id = %s FOR UPDATE",
             (mailbox_id,)),
            (f"SELECT {_CHANGED_COLUMNS} FROM messages WHERE mailbox_id = %s AND {cond} "
             "ORDER BY uid LIMIT %s FOR UPDATE", [mailbox_id, *args, PAGE]),
        ])
        if not lock:
            raise MailboxGone(f"mailbox {mailbox_id} no longer exists")
        highestmodseq, mailbox_keywords = lock[0]
        if len(rows) == PAGE:
            rows += _rows_by_uid(cur, _CHANGED_COLUMNS, f"mailbox_id = %s AND {cond} AND uid > %s",
                                 [mailbox_id, *args, rows[-1][0]], " FOR UPDATE")
        modseq = highestmodseq + 1
        groups = {}
        failed = []
        current = {}
        unseen_delta = 0
        for count, (uid, *rest) in enumerate(rows, 1):
            if count % YIELD_EVERY == 0:
                gevent.sleep(0)       # a worker's other sessions run meanwhile (10k rows: ~50 ms)
            bits, kw, row_modseq = rest[:5], rest[5], rest[6]
            if unchangedsince is not None and row_modseq > unchangedsince:
                failed.append(uid)
                continue
            old = dict(zip(_COLUMNS, bits))
            old_kw = kw.split(" ") if kw else []
            new = dict(old)
            if mode == "+":
                for c in columns:
                    new[c] = 1
                new_kw = old_kw + [k for k in keywords if k not in old_kw]
            elif mode == "-":
                for c in columns:
                    new[c] = 0
                new_kw = [k for k in old_kw if k not in keywords]
            else:
                new = {c: int(c in columns) for c in _COLUMNS}
                new_kw = list(keywords)
            if new == old and new_kw == old_kw:
                current[uid] = (flags_of(bits, kw), row_modseq)
                continue
            if len(new_kw) > MAX_MESSAGE_KEYWORDS and len(new_kw) > len(old_kw):
                raise KeywordLimit(f"a message can hold at most {MAX_MESSAGE_KEYWORDS} keywords")
            unseen_delta += (1 - new["seen"]) - (1 - old["seen"])
            key = (tuple(new[c] for c in _COLUMNS), " ".join(new_kw))
            groups.setdefault(key, []).append(uid)
        changed = {}
        updates = []
        for (bits, kw), uids in groups.items():
            cond, args = ranges_sql(compress(uids))
            updates.append((f"UPDATE messages SET seen = %s, answered = %s, flagged = %s, "
                            f"deleted = %s, draft = %s, keywords = %s, modseq = %s "
                            f"WHERE mailbox_id = %s AND {cond}",
                            [*bits, kw, modseq, mailbox_id, *args]))
            for uid in uids:
                changed[uid] = flags_of(bits, kw)
                current[uid] = (changed[uid], modseq)
        merged, added = _merge_keywords(mailbox_keywords, keywords if mode != "-" else [])
        _check_keyword_count(merged, added)
        if changed or added:
            updates.append(("UPDATE mailboxes SET highestmodseq = %s, keywords = %s, "
                            "unseen_count = CAST(unseen_count AS SIGNED) + %s WHERE id = %s",
                            (modseq, merged, unseen_delta, mailbox_id)))
        else:
            modseq = highestmodseq
        _, read_results = batch.commit_and_read(cur, updates, reads)
        return Stored(modseq, changed, failed, dict(sorted(current.items())),
                      read_results if reads else None)
    return db.run_transaction(work)


# -- expunge, copy, move ------------------------------------------------------------

def _remove_in(cur, mailbox_id, uids, modseq):
    """Delete message rows, log them, fix counters and references; returns S3 objects."""
    cond, args = ranges_sql(compress(uids))
    cur.execute("SELECT content_id, COUNT(*), SUM(seen = 0), SUM(rfc822_size) FROM messages "
                f"WHERE mailbox_id = %s AND {cond} GROUP BY content_id ORDER BY content_id",
                [mailbox_id, *args])
    rows = cur.fetchall()
    references = {r[0]: int(r[1]) for r in rows}
    count = sum(references.values())
    unseen = sum(int(r[2] or 0) for r in rows)
    size = sum(int(r[3] or 0) for r in rows)
    cur.execute(f"DELETE FROM messages WHERE mailbox_id = %s AND {cond}", [mailbox_id, *args])
    for i in range(0, len(uids), _RANGE_CHUNK):
        chunk = uids[i:i + _RANGE_CHUNK]
        cur.executemany("REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (%s, %s, %s)",
                        [(mailbox_id, uid, modseq) for uid in chunk])
    cur.execute("UPDATE mailboxes SET highestmodseq = %s, "
                "message_count = GREATEST(CAST(message_count AS SIGNED) - %s, 0), "
                "unseen_count = GREATEST(CAST(unseen_count AS SIGNED) - %s, 0), "
                "total_size = GREATEST(CAST(total_size AS SIGNED) - %s, 0) WHERE id = %s",
                (modseq, count, unseen, size, mailbox_id))
    return contents.release(cur, references)


def _remove_rows(cur, mailbox_id, rows, modseq, reads):
    """_remove_in for rows [(uid, content_id, seen, rfc822_size)] read under their lock,
    as one request that also COMMITs the caller's transaction and then sends ``reads``
    (store/batch.py); returns the S3 objects to delete after it and the reads'
    results.  At most _RANGE_CHUNK rows."""
    uids = [row[0] for row in rows]
    references = {}
    for _, content_id, _, _ in rows:
        references[content_id] = references.get(content_id, 0) + 1
    unseen = sum(1 for row in rows if not row[2])
    size = sum(int(row[3]) for row in rows)
    cond, args = ranges_sql(compress(uids))
    release = contents.release_queries(references)
    results, read_results = batch.commit_and_read(cur, [
        (f"DELETE FROM messages WHERE mailbox_id = %s AND {cond}", [mailbox_id, *args]),
        ("REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES "
         + ", ".join(["(%s, %s, %s)"] * len(uids)),
         [value for uid in uids for value in (mailbox_id, uid, modseq)]),
        ("UPDATE mailboxes SET highestmodseq = %s, "
         "message_count = GREATEST(CAST(message_count AS SIGNED) - %s, 0), "
         "unseen_count = GREATEST(CAST(unseen_count AS SIGNED) - %s, 0), "
         "total_size = GREATEST(CAST(total_size AS SIGNED) - %s, 0) WHERE id = %s",
         (modseq, len(uids), unseen, size, mailbox_id)),
        *release,
    ], reads)
    return [(bucket, key) for bucket, key in results[-2]], read_results


def expunge(db, mailbox_id, ranges=None, reads=()):
    """Remove the \\Deleted messages (within ``ranges`` for UID EXPUNGE).

    Returns (expunged UIDs ascending, [(bucket, key)] to delete from S3 after
    this commit — never before, the mailbox's highestmodseq after it, the
    results of ``reads`` sent after the COMMIT or None).  Two requests on
    MySQL: the mailbox lock with the \\Deleted rows, then their removal with
    the COMMIT and the reads (more than _RANGE_CHUNK rows: statement by
    statement, no reads).
    """
    def work(cur):
        cond, args = ranges_sql(ranges) if ranges is not None else ("TRUE", [])
        lock, rows = batch.execute_all(cur, [
            ("SELECT highestmodseq FROM mailboxes WHERE id = %s FOR UPDATE", (mailbox_id,)),
            (f"SELECT uid, content_id, seen, rfc822_size FROM messages WHERE mailbox_id = %s "
             f"AND deleted = 1 AND {cond} ORDER BY uid FOR UPDATE", [mailbox_id, *args]),
        ])
        if not lock:
            raise MailboxGone(f"mailbox {mailbox_id} no longer exists")
        highestmodseq = lock[0][0]
        uids = [row[0] for row in rows]
        if not uids:
            _, read_results = batch.commit_and_read(cur, [], reads)
            return [], [], highestmodseq, read_results if reads else None
        modseq = highestmodseq + 1
        if len(rows) > _RANGE_CHUNK:
            return uids, _remove_in(cur, mailbox_id, uids, modseq), modseq, None
        objects, read_results = _remove_rows(cur, mailbox_id, rows, modseq, reads)
        return uids, objects, modseq, read_results if reads else None
    return db.run_transaction(work)


def remove(db, mailbox_id, uids):
    """Remove the messages ``uids`` whatever their flags; returns [(bucket, key)] to
    delete from S3 after this commit.  The undo of a MULTIAPPEND that failed part-way
    (RFC 3502 §6.3.11: all or none): the UIDs stay used, and the removal is logged
    in ``expunged`` like any other, so other sessions see EXPUNGE (or VANISHED)."""
    def work(cur):
        _, _, highestmodseq, _, _ = _lock_mailbox(cur, mailbox_id)
        cond, args = ranges_sql(compress(sorted(uids)))
        cur.execute(f"SELECT uid FROM messages WHERE mailbox_id = %s AND {cond} "
                    "ORDER BY uid FOR UPDATE", [mailbox_id, *args])
        present = [r[0] for r in cur.fetchall()]
        if not present:
            return []
        return _remove_in(cur, mailbox_id, present, highestmodseq + 1)
    return db.run_transaction(work)


_COPIED = ("content_id, seen, answered, flagged, deleted, draft, keywords, internal_date, "
           "rfc822_size, trace_headers, message_id, date_sent, sent_date, from_addr, to_addr, "
           "cc_addr, subject, in_reply_to, references_ids, sort_subject, sort_from, sort_to, "
           "sort_cc, thread_id")


def _copy_in(cur, source_id, ranges, dest_id, dest_lock, expected=None):
    uidvalidity, uidnext, highestmodseq, dest_keywords, _ = dest_lock
    cond, args = ranges_sql(ranges)
    rows = _rows_by_uid(cur, "uid, seen, rfc822_size, keywords", f"mailbox_id = %s AND {cond}",
                        [source_id, *args], " LOCK IN SHARE MODE")
    if expected is not None and len(rows) < expected:
        # RFC 2180 §4.4.1: copy nothing when some of the messages were expunged meanwhile
        raise MessagesExpunged(f"{expected - len(rows)} of the messages were expunged")
    if not rows:
        return uidvalidity, [], 0
    modseq = highestmodseq + 1
    # one statement: the n-th source message (by UID) gets uidnext + n - 1; the copy's
    # save date is now (RFC 8514 §1: when it was placed in the target mailbox)
    cur.execute(f"INSERT INTO messages (mailbox_id, uid, modseq, save_date, {_COPIED}) "
                f"SELECT %s, %s + ROW_NUMBER() OVER (ORDER BY uid) - 1, %s, %s, {_COPIED} "
                f"FROM messages WHERE mailbox_id = %s AND {cond}",
                [dest_id, uidnext, modseq, _utcnow(), source_id, *args])
    contents.add_references(cur, source_id, cond, args)
    keywords = []
    for row in rows:
        if row[3]:
            keywords.extend(row[3].split(" "))
    merged, added = _merge_keywords(dest_keywords, list(dict.fromkeys(keywords)))
    _check_keyword_count(merged, added)
    unseen = sum(1 for r in rows if not r[1])
    size = sum(int(r[2]) for r in rows)
    cur.execute("UPDATE mailboxes SET uidnext = %s, highestmodseq = %s, message_count = message_count + %s, "
                "unseen_count = unseen_count + %s, total_size = total_size + %s, keywords = %s "
                "WHERE id = %s", (uidnext + len(rows), modseq, len(rows), unseen, size, merged, dest_id))
    mapping = [(row[0], uidnext + i) for i, row in enumerate(rows)]
    return uidvalidity, mapping, modseq


def copy(db, source_id, ranges, dest_id, expected=None):
    """COPY (RFC 3501 §6.4.7): returns (dest uidvalidity, [(source uid, dest uid)]).

    The copies share content rows (refcount + 1 each); no S3 object is copied.
    ``expected``: how many messages the ranges hold for the caller; fewer raise
    MessagesExpunged and nothing is copied.
    """
    def work(cur):
        dest_lock = _lock_mailbox(cur, dest_id)
        uidvalidity, mapping, _ = _copy_in(cur, source_id, ranges, dest_id, dest_lock, expected)
        return uidvalidity, mapping
    return db.run_transaction(work)


def move(db, source_id, ranges, dest_id, expected=None):
    """MOVE (RFC 6851): copy and expunge in one transaction.

    Returns (dest uidvalidity, [(source uid, dest uid)], [(bucket, key)] to delete).
    ``expected`` as for copy().
    """
    def work(cur):
        locks = {}
        for mailbox_id in sorted({source_id, dest_id}):   # one lock order for everybody
            locks[mailbox_id] = _lock_mailbox(cur, mailbox_id)
        uidvalidity, mapping, _ = _copy_in(cur, source_id, ranges, dest_id, locks[dest_id],
                                           expected)
        if not mapping:
            return uidvalidity, [], []
        source_modseq = locks[source_id][2] + 1 if source_id != dest_id else None
        if source_modseq is None:
            cur.execute("SELECT highestmodseq FROM mailboxes WHERE id = %s", (source_id,))
            source_modseq = cur.fetchone()[0] + 1
        objects = _remove_in(cur, source_id, [m[0] for m in mapping], source_modseq)
        return uidvalidity, mapping, objects
    return db.run_transaction(work)


# -- search -------------------------------------------------------------------------

# -- mailboxes ----------------------------------------------------------------------

@dataclasses.dataclass
class MailboxInfo:
    id: int
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    message_count: int
    unseen_count: int
    total_size: int
    first_recent_uid: int


_INFO = ("id, name, special_use, uidvalidity, uidnext, highestmodseq, message_count, "
         "unseen_count, total_size, first_recent_uid")


def all_mailboxes(db, account_id):
    """[MailboxInfo] of the account, by name; and the set of subscribed names."""
    boxes, subscriptions = batch.read_all(db, [       # one request
        (f"SELECT {_INFO} FROM mailboxes WHERE account_id = %s ORDER BY name", (account_id,)),
        ("SELECT name FROM subscriptions WHERE account_id = %s", (account_id,)),
    ])
    return [MailboxInfo(*row) for row in boxes], {row[0] for row in subscriptions}


def find_mailbox(db, account_id, name):
    """MailboxInfo by (UTF-8) name or None."""
    name = normalize_name(name)
    with db.cursor() as cur:
        cur.execute(f"SELECT {_INFO} FROM mailboxes WHERE account_id = %s AND name = %s",
                    (account_id, name))
        row = cur.fetchone()
    return MailboxInfo(*row) if row else None


def find_mailbox_query(account_id, name):
    """find_mailbox as a statement for a request of several (store/batch.py); its row
    goes to mailbox_info."""
    return (f"SELECT {_INFO}, keywords FROM mailboxes WHERE account_id = %s AND name = %s",
            (account_id, normalize_name(name)))


def mailbox_info(row):
    """(MailboxInfo, keywords of its FLAGS list) from a row of find_mailbox_query."""
    return MailboxInfo(*row[:-1]), row[-1].split(" ") if row[-1] else []


def mailbox_status(db, account_id, name, recent=False, deleted=False):
    """STATUS in one query: (MailboxInfo, RECENT count or None, (messages, octets)
    flagged \\Deleted or None), or None when there is no such mailbox.  The counts
    are asked only when ``recent``/``deleted`` (recent_count, deleted_usage)."""
    name = normalize_name(name)
    extra = []
    if recent:
        extra.append("(SELECT COUNT(*) FROM messages m WHERE m.mailbox_id = b.id "
                     "AND m.uid >= b.first_recent_uid)")
    if deleted:
        extra += ["(SELECT COUNT(*) FROM messages m WHERE m.mailbox_id = b.id AND m.deleted = 1)",
                  "(SELECT COALESCE(SUM(m.rfc822_size), 0) FROM messages m "
                  "WHERE m.mailbox_id = b.id AND m.deleted = 1)"]
    columns = ", ".join(f"b.{column.strip()}" for column in _INFO.split(","))
    with db.cursor() as cur:
        cur.execute(f"SELECT {', '.join([columns, *extra])} FROM mailboxes b "
                    "WHERE b.account_id = %s AND b.name = %s", (account_id, name))
        row = cur.fetchone()
    if row is None:
        return None
    width = len(_INFO.split(","))
    values = list(row[width:])
    recent_count = int(values.pop(0)) if recent else None
    deleted_usage = (int(values[0]), int(values[1])) if deleted else None
    return MailboxInfo(*row[:width]), recent_count, deleted_usage


def has_inferiors(db, account_id, name):
    """Does any mailbox of the account sit below ``name`` (\\HasChildren)?"""
    with db.cursor() as cur:
        cur.execute("SELECT 1 FROM mailboxes WHERE account_id = %s AND name >= %s AND name < %s "
                    "LIMIT 1", (account_id, *_inferiors_range(normalize_name(name))))
        return cur.fetchone() is not None


def recent_count(db, mailbox_id, first_recent_uid):
    with db.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM messages WHERE mailbox_id = %s AND uid >= %s",
                    (mailbox_id, first_recent_uid))
        return cur.fetchone()[0]


def deleted_usage(db, mailbox_id):
    """(messages, octets) flagged \\Deleted: STATUS DELETED (RFC 9051 §6.3.11) and
    DELETED-STORAGE (RFC 9208 §4.4); one range of the messages_mailbox_deleted index."""
    with db.cursor() as cur:
        cur.execute("SELECT COUNT(*), COALESCE(SUM(rfc822_size), 0) FROM messages "
                    "WHERE mailbox_id = %s AND deleted = 1", (mailbox_id,))
        row = cur.fetchone()
    return int(row[0]), int(row[1])


def create_mailbox(db, account_id, name, special_use=None):
    """CREATE (RFC 3501 §6.3.3), making missing superiors too; returns the new id."""
    name = normalize_name(name)
    levels = name.split(DELIMITER)

    def work(cur):
        new_id = None
        for depth in range(1, len(levels) + 1):
            path = DELIMITER.join(levels[:depth])
            last = depth == len(levels)
            cur.execute("SELECT id FROM mailboxes WHERE account_id = %s AND name = %s",
                        (account_id, path))
            if cur.fetchone() is not None:
                if last:
                    raise MailboxExists(f"mailbox {name!r} already exists")
                continue
            new_id = create_mailbox_in(cur, account_id, path, special_use if last else None,
                                       subscribe=False)
        return new_id
    return db.run_transaction(work)


def delete_mailbox(db, account_id, name):
    """DELETE (RFC 3501 §6.3.4): the mailbox and its messages; returns S3 objects to delete.

    Inferior mailboxes stay (the deleted name then shows as \\Noselect while
    they exist).  INBOX cannot be deleted.
    """
    name = normalize_name(name)
    if name == INBOX:
        raise InvalidMailboxName("INBOX cannot be deleted")

    def work(cur):
        cur.execute("SELECT id FROM mailboxes WHERE account_id = %s AND name = %s FOR UPDATE",
                    (account_id, name))
        row = cur.fetchone()
        if row is None:
            raise MailboxNotFound(f"mailbox {name!r} does not exist")
        mailbox_id = row[0]
        cur.execute("SELECT uid FROM messages WHERE mailbox_id = %s ORDER BY uid FOR UPDATE",
                    (mailbox_id,))
        uids = [r[0] for r in cur.fetchall()]
        objects = _remove_in(cur, mailbox_id, uids, 0) if uids else []
        cur.execute("DELETE FROM mailboxes WHERE id = %s", (mailbox_id,))
        return objects
    return db.run_transaction(work)


def rename_mailbox(db, account_id, old, new):
    """RENAME (RFC 3501 §6.3.5) with its inferiors; INBOX moves its messages instead."""
    old, new = normalize_name(old), normalize_name(new)
    if new == INBOX or new.startswith(INBOX + DELIMITER) and old == INBOX:
        raise InvalidMailboxName("cannot rename to INBOX")
    if new == old or new.startswith(old + DELIMITER):
        raise InvalidMailboxName("cannot rename a mailbox into itself")

    def work(cur):
        cur.execute("SELECT id, name FROM mailboxes WHERE account_id = %s AND "
                    "(name = %s OR (name >= %s AND name < %s)) ORDER BY name FOR UPDATE",
                    (account_id, old, *_inferiors_range(old)))
        rows = cur.fetchall()
        if not rows or rows[0][1] != old:
            raise MailboxNotFound(f"mailbox {old!r} does not exist")
        cur.execute("SELECT 1 FROM mailboxes WHERE account_id = %s AND name = %s", (account_id, new))
        if cur.fetchone() is not None:
            raise MailboxExists(f"mailbox {new!r} already exists")
        _create_superiors(cur, account_id, new)
        if old == INBOX:
            _rename_inbox(cur, account_id, rows[0][0], new)
            return
        for mailbox_id, name in rows:
            renamed = new + name[len(old):]
            try:
                cur.execute("UPDATE mailboxes SET name = %s WHERE id = %s", (renamed, mailbox_id))
            except Exception as exc:
                if is_duplicate_key(exc):
                    raise MailboxExists(f"mailbox {renamed!r} already exists") from None
                raise
            cur.execute("UPDATE IGNORE subscriptions SET name = %s WHERE account_id = %s AND name = %s",
                        (renamed, account_id, name))
    db.run_transaction(work)


def _inferiors_range(name):
    """(low, high): the names below ``name`` are those from low up to, not including,
    high ('/' + 1 is '0'); both backends compare these columns by code point."""
    return name + DELIMITER, name + chr(ord(DELIMITER) + 1)


def _create_superiors(cur, account_id, name):
    levels = name.split(DELIMITER)
    for depth in range(1, len(levels)):
        path = DELIMITER.join(levels[:depth])
        cur.execute("SELECT 1 FROM mailboxes WHERE account_id = %s AND name = %s", (account_id, path))
        if cur.fetchone() is None:
            create_mailbox_in(cur, account_id, path, subscribe=False)


def _rename_inbox(cur, account_id, inbox_id, new):
    """RFC 3501 §6.3.5: renaming INBOX moves all its messages to the new name; INBOX stays, empty."""
    _, uidnext, highestmodseq, keywords, first_recent = _lock_mailbox(cur, inbox_id)
    uidvalidity = allocate_uidvalidity(cur)
    new_id = create_mailbox_in(cur, account_id, new, subscribe=False, uidvalidity=uidvalidity)
    cur.execute("SELECT uid FROM messages WHERE mailbox_id = %s ORDER BY uid FOR UPDATE", (inbox_id,))
    uids = [r[0] for r in cur.fetchall()]
    cur.execute("SELECT COUNT(*), COALESCE(SUM(seen = 0), 0), COALESCE(SUM(rfc822_size), 0) "
                "FROM messages WHERE mailbox_id = %s", (inbox_id,))
    count, unseen, size = cur.fetchone()
    cur.execute("UPDATE messages SET mailbox_id = %s, modseq = 1 WHERE mailbox_id = %s",
                (new_id, inbox_id))
    cur.execute("UPDATE mailboxes SET uidnext = %s, message_count = %s, unseen_count = %s, "
                "total_size = %s, keywords = %s, first_recent_uid = %s WHERE id = %s",
                (uidnext, count, unseen, size, keywords, first_recent, new_id))
    modseq = highestmodseq + 1
    for i in range(0, len(uids), _RANGE_CHUNK):
        cur.executemany("REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (%s, %s, %s)",
                        [(inbox_id, uid, modseq) for uid in uids[i:i + _RANGE_CHUNK]])
    cur.execute("UPDATE mailboxes SET highestmodseq = %s, message_count = 0, unseen_count = 0, "
                "total_size = 0 WHERE id = %s", (modseq, inbox_id))


def subscribe(db, account_id, name):
    name = normalize_name(name)
    with db.transaction() as cur:
        cur.execute("INSERT IGNORE INTO subscriptions (account_id, name) VALUES (%s, %s)",
                    (account_id, name))


def unsubscribe(db, account_id, name):
    """Returns whether the name was subscribed."""
    name = normalize_name(name)
    with db.transaction() as cur:
        cur.execute("DELETE FROM subscriptions WHERE account_id = %s AND name = %s",
                    (account_id, name))
        return cur.rowcount > 0


def same_message_candidates(db, mailbox_id, message_id, size):
    """(content_id, trace_headers) of the mailbox's messages with this Message-ID (or
    none) and size: what an import that is run again compares by content hash."""
    message_id = contents._cut(message_id, contents.MESSAGE_ID_CHARS)   # as delivery stored it
    condition = "m.message_id = %s" if message_id is not None else "m.message_id IS NULL"
    with db.cursor() as cur:
        cur.execute(f"SELECT m.content_id, m.trace_headers FROM messages m WHERE m.mailbox_id = %s "
                    f"AND {condition} AND m.rfc822_size = %s",
                    (mailbox_id, *(() if message_id is None else (message_id,)), size))
        return cur.fetchall()
