"""SQL of delivery: recipients, the one transaction that stores a message, the upload intent log.

``store_message`` writes the content row (shared by every recipient), its
attachment rows and one ``messages`` row per target mailbox, allocating each
UID under the mailbox's row lock, in one transaction.  Mailboxes are locked
in id order so that two deliveries to the same recipients cannot deadlock.

The cached IMAP forms (ENVELOPE, BODYSTRUCTURE, BODY) are bytes on the wire
but TEXT columns here: they are stored latin-1-decoded, which maps every
byte to one character and back, so 8-bit header bytes survive unchanged.
``load_content`` undoes that.

Values derived from the message's header are fitted to their columns here
(see "fitting values to their columns"): the stored bytes keep them whole.
A message whose non-attachment bytes do not fit in one statement keeps its
header block in ``message_contents.raw`` and the rest in
``message_content_chunks`` (migration 0004), which ``load_contents`` joins.
"""

import json
from dataclasses import dataclass, field

from geomail.errors import PermanentFailure
from geomail.mime.segments import RAW
from geomail.store import dialect, intents
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
            cur.executemany(_ATTACHMENT_INSERT, [_attachment_row(content_id, a)
                                                 for a in attachments])
        uids = {}
        for target in sorted(targets, key=lambda t: t.mailbox_id):
            uids[id(target)] = (target.mailbox_id,
                                _insert_message(cur, content_id, parsed, target))
        intents.forget_in(cur, pending_ids)
        return [uids[id(target)] for target in targets]

    return db.run_transaction(work)


def _insert_content(cur, parsed, refcount):
    """Insert the content row (and, for a long message, its raw chunks); returns its id."""
    limit = _statement_limit(cur)
    texts = (_clean(parsed.text_plain), _clean(parsed.text_html))
    raw, rest = parsed.raw, b""
    statement = None
    if 2 * len(raw) + sum(len(text or "") for text in texts) < limit:    # the usual case
        statement = _content_statement(cur, parsed, raw, texts, refcount)
    if statement is None or statement[2] > limit:
        # too long for one statement: the header block stays in the row (SEARCH
        # HEADER reads it there), the rest of raw goes to message_content_chunks,
        # and SEARCH BODY/TEXT see the start of each text, 1/SEARCH_TEXT_SHARE of
        # the limit (escaping may double it); see migrations/0004_deliverable.sql
        head = parsed.parts.header_length
        raw, rest = parsed.raw[:head], parsed.raw[head:]
        texts = tuple(_cut_bytes(text, limit // SEARCH_TEXT_SHARE) for text in texts)
        statement = _content_statement(cur, parsed, raw, texts, refcount)
        if statement[2] > limit:
            raise ContentTooLarge(f"the message's index and IMAP forms ({statement[2]}"
                                  f" characters) are over max_allowed_packet ({limit})")
    cur.execute(statement[0], statement[1])
    content_id = cur.lastrowid
    step = (limit - 1024) // 2          # pymysql sends bytes as hex: two characters a byte
    for seq, start in enumerate(range(0, len(rest), step)):
        cur.execute("INSERT INTO message_content_chunks (content_id, seq, data)"
                    " VALUES (%s, %s, %s)", (content_id, seq, rest[start:start + step]))
    return content_id


def _content_statement(cur, parsed, raw, texts, refcount):
    """(SQL, parameters, size) of the content row's INSERT: for MySQL the statement as
    sent (values inlined by pymysql, to be measured against max_allowed_packet),
    for SQLite the statement with its values bound (measured by their lengths)."""
    values = (
        raw,
        json.dumps(parsed.segments_json(), separators=(",", ":")),
        json.dumps(parsed.parts.to_json(), separators=(",", ":")),
        parsed.size,
        parsed.parts.header_length,
        _imap_form(parsed.envelope, "ENVELOPE"), _imap_form(parsed.bodystructure, "BODYSTRUCTURE"),
        _imap_form(parsed.body, "BODY"),
        texts[0] or None, texts[1] or None,
        refcount)
    if dialect.of(cur).name == dialect.SQLITE_NAME:
        return _CONTENT_INSERT, values, 2 * sum(len(v) for v in values if isinstance(v, (bytes, str)))
    statement = cur.mogrify(_CONTENT_INSERT, values)
    return statement, None, _statement_size(statement)


class ContentTooLarge(PermanentFailure):
    """The message's stored form is more than MySQL takes in one statement or column."""


_max_packet = []     # max_allowed_packet of the server, read once per process
# The embedded store keeps rows of the size a default MariaDB takes (16 MiB), so
# that content rows, chunks and SEARCH's share of the texts look alike on both.
SQLITE_STATEMENT_LIMIT = 16 * 1024 * 1024 - 1024
SEARCH_TEXT_SHARE = 8   # a long message's text_plain, text_html: 1/8 of the limit each


def _statement_limit(cur):
    """Longest statement the server takes (max_allowed_packet, less some slack).

    MariaDB drops the connection on a longer one (2006 "gone away", which
    looks temporary), so the sender would get 451 on every retry: the
    content row is kept under it instead (raw chunks), or refused for good.
    Result rows are bounded by it too, so no stored row may be longer.
    """
    if dialect.of(cur).name == dialect.SQLITE_NAME:
        return SQLITE_STATEMENT_LIMIT
    if not _max_packet:
        cur.execute("SELECT @@max_allowed_packet")
        _max_packet.append(int(cur.fetchone()[0]))
    return _max_packet[0] - 1024          # the command byte and some slack


def _statement_size(statement):
    if statement.isascii():
        return len(statement)
    return len(statement.encode("utf-8", "surrogateescape"))


def _attachment_row(content_id, a):
    if len(a.part_number) > PART_NUMBER_CHARS:      # cannot happen below the parser's MAX_DEPTH
        raise PermanentFailure(f"MIME part number of {len(a.part_number)} characters")
    return (content_id, a.index, a.part_number, _cut(a.filename, FILENAME_CHARS),
            _cut(a.safe_filename, SAFE_FILENAME_CHARS), _cut(a.content_type, CONTENT_TYPE_CHARS),
            _ascii(a.transfer_encoding, TRANSFER_ENCODING_CHARS), a.decoded_size, a.sha256,
            json.dumps(a.encoding), a.bucket, a.object_key)


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
    uid = _allocate_uid(cur, target.mailbox_id, unseen, size)
    cur.execute(_MESSAGE_INSERT_FROM_MAILBOX, (
        uid, content_id,
        *(1 if name in flags else 0 for name in FLAG_COLUMNS),
        " ".join(keywords), target.internal_date or _utcnow(), size, target.trace_headers,
        _cut(headers.get("message-id"), MESSAGE_ID_CHARS), _naive_utc(headers.get("date_parsed")),
        _local_date(headers.get("date_parsed")),
        _cut(headers.get("from"), ADDRESS_CHARS), _cut(headers.get("to"), ADDRESS_CHARS),
        _cut(headers.get("cc"), ADDRESS_CHARS), _cut(headers.get("subject"), SUBJECT_CHARS),
        _cut(headers.get("in-reply-to"), MESSAGE_ID_CHARS), _references(headers.get("references")),
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


# -- reading a content back ---------------------------------------------------

def _load_chunks(cur, contents):
    """Append its message_content_chunks to the raw of each content whose segments
    reach past the raw in its row (a long message, see _insert_content)."""
    short = [content_id for content_id, content in contents.items()
             if _raw_length(content["segments"]) > len(content["raw"])]
    for content_id in short:           # one at a time: each may be tens of MB
        cur.execute("SELECT data FROM message_content_chunks WHERE content_id = %s"
                    " ORDER BY seq", (content_id,))
        content = contents[content_id]
        content["raw"] = b"".join([content["raw"]] + [bytes(row[0]) for row in cur.fetchall()])


def _raw_length(segments):
    """Bytes of raw the segments (JSON form) refer to."""
    return max((seg[1] + seg[2] for seg in segments if seg[0] == RAW), default=0)


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
        _load_chunks(cur, out)
        cur.execute("SELECT content_id, idx, bucket, object_key, decoded_size FROM attachments"
                    f" WHERE content_id IN ({_marks(ids)}) ORDER BY content_id, idx", ids)
        for content_id, index, bucket, key, size in cur.fetchall():
            if content_id in out:
                out[content_id]["attachments"].append(
                    {"index": index, "bucket": bucket, "key": key, "size": size})
    return out


# -- helpers ------------------------------------------------------------------

def _marks(items):
    return ", ".join(["%s"] * len(items))


def _text(value):
    if value is None:
        return ""
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value


# -- fitting values to their columns -------------------------------------------
#
# Every value below comes from the message's header, which stays whole in the
# stored bytes (raw + segments: BODY[] is byte-exact whatever is cut here).
# The columns only index or list it, so each value is fitted to its column
# (lengths as in migrations/0001_initial.sql and 0004): MySQL must never
# refuse the row (1406 Data too long, 1366 Incorrect string value), as the
# same message would then fail on every retry.  utf8mb4 VARCHAR(n) counts
# characters, TEXT columns count bytes.

MESSAGE_ID_CHARS = 255         # message_id, in_reply_to: a 255-character prefix still
                               # identifies a message-id (THREAD, duplicate detection)
ADDRESS_CHARS = 1000           # from_addr, to_addr, cc_addr: for display and SEARCH; SEARCH
SUBJECT_CHARS = 1000           # falls back to the header block for longer values
REFERENCES_BYTES = 65535       # references_ids TEXT: see _references
FILENAME_CHARS = 1000          # attachments.filename: for listings; the full name is in
                               # BODYSTRUCTURE, read from the stored header
SAFE_FILENAME_CHARS = 255      # the parser keeps it to 150 bytes already
CONTENT_TYPE_CHARS = 255       # type "/" subtype: RFC 6838 4.2 allows 127 characters each,
                               # so anything longer is no registered type anyway
TRANSFER_ENCODING_CHARS = 32   # an ASCII token (RFC 2045 6.1); rebuilding uses segments,
                               # not this column, so a cut or '?' for 8-bit loses nothing
PART_NUMBER_CHARS = 1024       # never cut (it names the part): widened in 0004 to hold
                               # parser.MAX_DEPTH components of up to 5 characters
IMAP_FORM_BYTES = 16 * 1024 * 1024 - 1   # envelope, bodystructure, body: MEDIUMTEXT
# attachments.object_key VARCHAR(700) is not fitted: the object is stored under
# that key already, and "{account id}/{token}/{safe_filename}" is at most
# 20 + 1 + 21 + 1 + 150 characters (parser.SAFE_NAME_BYTES bounds the name in
# bytes, control characters and "/" removed), far below S3's 1,024 bytes too.


def _clean(text):
    """text without lone surrogates (utf-7 and unicode_escape decode to them; MySQL
    refuses them with 1366 and pymysql cannot even encode them): U+FFFD instead."""
    if not text:
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _cut(value, limit):
    """A value fit for a VARCHAR(limit) utf8mb4 column: at most limit characters, clean."""
    if value is None:
        return None
    return _clean(value[:limit])


def _ascii(value, limit):
    """A value fit for a VARCHAR(limit) ascii column: 8-bit characters become '?'."""
    return value.encode("ascii", "replace").decode("ascii")[:limit]


def _cut_bytes(text, limit):
    """text cut to at most limit bytes of UTF-8, at a character boundary."""
    if not text or len(text) * 4 <= limit:
        return text
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


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


def _imap_form(value, name):
    """A cached ENVELOPE/BODYSTRUCTURE/BODY as the latin-1 text its MEDIUMTEXT column holds.

    Each byte over 0x7f takes two bytes of UTF-8 there.  One too long for the
    column cannot be stored however often the sender retries: ContentTooLarge.
    """
    text = _text(value)
    if len(text) > IMAP_FORM_BYTES // 2 and len(text.encode("utf-8")) > IMAP_FORM_BYTES:
        raise ContentTooLarge(f"{name} of the message is over {IMAP_FORM_BYTES} bytes")
    return text


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
