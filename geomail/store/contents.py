"""Contents: one received message's stored form, its whole life in one module.

A content row (``message_contents``) is shared by every message row that
refers to it (several recipients, COPY): every byte that is not an
attachment body (``raw``, and ``message_content_chunks`` past MariaDB's
packet size), the segment map that rebuilds the message byte for byte, the
MIME part tree, the decoded texts for SEARCH, the cached IMAP forms and the
attachments rows naming their objects.  Its life: ``insert`` (delivery),
``add_references`` (COPY), ``release`` (EXPUNGE, account deletion: the
refcount drops, and at 0 the row goes and its objects are returned for the
caller to discard after COMMIT), and ``load_contents`` to read it back.

The cached IMAP forms (ENVELOPE, BODYSTRUCTURE, BODY) are bytes on the wire
but TEXT columns here: they are stored latin-1-decoded, which maps every
byte to one character and back, so 8-bit header bytes survive unchanged;
``load_contents`` undoes that.
"""

import json
from dataclasses import dataclass, field

from geomail.errors import PermanentFailure
from geomail.mime.preview import SCAN_CHARS, preview_of
from geomail.mime.segments import RAW
from geomail.store import batch, dialect

_CHUNK = 500     # ids per IN (...) list

_CONTENT_INSERT = (
    "INSERT INTO message_contents (raw, segments, parts, size, header_size, envelope,"
    " bodystructure, body, text_plain, text_html, refcount, preview)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")

_ATTACHMENT_INSERT = (
    "INSERT INTO attachments (content_id, idx, part_number, filename, safe_filename,"
    " content_type, transfer_encoding, decoded_size, sha256, encoding, bucket, object_key)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")


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


# -- inserting a content ---------------------------------------------------------

def insert(cur, parsed, attachments, refcount):
    """Insert the content row (and, for a long message, its raw chunks) and its
    attachments rows, for ``refcount`` messages about to refer to it; returns its id."""
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
    if attachments:
        cur.executemany(_ATTACHMENT_INSERT, [_attachment_row(content_id, a) for a in attachments])
    return content_id


def script_insert(cur, parsed, attachments, refcount, variable, also_set=""):
    """insert() as statements of a script (Database.run_script): the content row,
    its id kept in the session variable ``variable`` (by a SET that also makes the
    assignments ``also_set``, if any), and one multi-row INSERT of its attachments;
    None for a message whose raw needs chunks (use insert())."""
    limit = _statement_limit(cur)
    texts = (_clean(parsed.text_plain), _clean(parsed.text_html))
    if 2 * len(parsed.raw) + sum(len(text or "") for text in texts) >= limit:
        return None
    statement, _, size = _content_statement(cur, parsed, parsed.raw, texts, refcount)
    if size > limit:
        return None
    statements = [statement, f"SET {variable} = LAST_INSERT_ID()"
                  + (", " + also_set if also_set else "")]
    if attachments:
        row = f"({variable}, " + ", ".join(["%s"] * 11) + ")"
        statements.append(_ATTACHMENT_INSERT.split(" VALUES ")[0] + " VALUES " + ", ".join(
            cur.mogrify(row, _attachment_row(None, a)[1:]) for a in attachments))
    return statements


def _content_statement(cur, parsed, raw, texts, refcount):
    """(SQL, parameters, size) of the content row's INSERT: for MySQL the statement as
    sent (values inlined by pymysql, to be measured against max_allowed_packet),
    for SQLite the statement with its values bound (measured by their lengths)."""
    values = (
        raw,
        _compact_json(parsed.segments_json()),
        _compact_json(parsed.parts.to_json()),
        parsed.size,
        parsed.parts.header_length,
        _imap_form(parsed.envelope, "ENVELOPE"), _imap_form(parsed.bodystructure, "BODYSTRUCTURE"),
        _imap_form(parsed.body, "BODY"),
        texts[0] or None, texts[1] or None,
        refcount,
        # PREVIEW (RFC 8970), from the whole texts even when the stored ones are cut
        preview_of(_clean(parsed.text_plain), _clean(parsed.text_html)) or "")
    if dialect.of(cur).name == dialect.SQLITE_NAME:
        return _CONTENT_INSERT, values, 2 * sum(len(v) for v in values if isinstance(v, (bytes, str)))
    statement = cur.mogrify(_CONTENT_INSERT, values)
    return statement, None, _statement_size(statement)


# json.dumps with separators builds an encoder per call; this one is made once.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


class ContentTooLarge(PermanentFailure):
    """The message's stored form is more than MySQL takes in one statement or column."""


# The embedded store keeps rows of the size a default MariaDB takes (16 MiB), so
# that content rows, chunks and SEARCH's share of the texts look alike on both.
SQLITE_STATEMENT_LIMIT = 16 * 1024 * 1024 - 1024
SEARCH_TEXT_SHARE = 8   # a long message's text_plain, text_html: 1/8 of the limit each


def _statement_limit(cur):
    """Longest statement the server takes (database.statement_limit).

    The content row is kept under it (raw chunks), or refused for good.
    Result rows are bounded by it too, so no stored row may be longer.
    """
    if dialect.of(cur).name == dialect.SQLITE_NAME:
        return SQLITE_STATEMENT_LIMIT
    from geomail.store.database import statement_limit
    return statement_limit(cur)


def _statement_size(statement):
    from geomail.store.database import statement_size
    return statement_size(statement)


def _attachment_row(content_id, a):
    if len(a.part_number) > PART_NUMBER_CHARS:      # cannot happen below the parser's MAX_DEPTH
        raise PermanentFailure(f"MIME part number of {len(a.part_number)} characters")
    return (content_id, a.index, a.part_number, _cut(a.filename, FILENAME_CHARS),
            _cut(a.safe_filename, SAFE_FILENAME_CHARS), _cut(a.content_type, CONTENT_TYPE_CHARS),
            _ascii(a.transfer_encoding, TRANSFER_ENCODING_CHARS), a.decoded_size, a.sha256,
            json.dumps(a.encoding), a.bucket, a.object_key)


# -- reading a content back ---------------------------------------------------

def _load_chunks(cur, contents):
    """Append its message_content_chunks to the raw of each content whose segments
    reach past the raw in its row (a long message, see _insert_content)."""
    short = [content_id for content_id, content in contents.items()
             if len(content["raw"]) < content["size"]
             and _raw_length(content["segments"]) > len(content["raw"])]
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
    """{content_id: content} for several contents in one request (FETCH of body sections).

    A content is a dict: raw (bytes), segments and parts (parsed JSON; parts is
    None with ``parts=False``, for fetches that do not need the part tree),
    size, header_size, attachments (index, bucket, key, size, sha256), and with
    ``imap_forms`` the cached envelope, bodystructure and body as bytes.
    """
    ids = sorted(set(content_ids))
    if not ids:
        return {}
    with db.cursor() as cur:
        results = batch.execute_all(cur, contents_queries(f"({_marks(ids)})", ids, parts,
                                                          imap_forms))
    return contents_from(db, results, imap_forms)


def contents_queries(id_set, args, parts=True, imap_forms=False):
    """load_contents' two statements (the contents, their attachments rows) for the
    ids in ``id_set`` (SQL: a parenthesised list or subquery with its ``args``), for a
    request that may carry others; contents_from reads their results."""
    columns = "id, raw, segments, " + ("parts" if parts else "NULL") + ", size, header_size"
    if imap_forms:
        columns += ", envelope, bodystructure, body"
    return [(f"SELECT {columns} FROM message_contents WHERE id IN {id_set}", args),
            ("SELECT content_id, idx, bucket, object_key, decoded_size, sha256"
             f" FROM attachments WHERE content_id IN {id_set} ORDER BY content_id, idx", args)]


def contents_from(db, results, imap_forms=False):
    """{content_id: content} from the results of contents_queries (chunks of long
    messages are read here, one content at a time)."""
    content_rows, attachment_rows = results
    out = {}
    for row in content_rows:
        content = {"raw": bytes(row[1]), "segments": json.loads(row[2]),
                   "parts": json.loads(row[3]) if row[3] else None, "size": int(row[4]),
                   "header_size": int(row[5]), "attachments": []}
        if imap_forms:
            content.update(envelope=row[6].encode("latin-1"),
                           bodystructure=row[7].encode("latin-1"),
                           body=row[8].encode("latin-1"))
        out[row[0]] = content
    if any(_raw_length(c["segments"]) > len(c["raw"]) for c in out.values()):
        with db.cursor() as cur:
            _load_chunks(cur, out)
    for content_id, index, bucket, key, size, sha256 in attachment_rows:
        if content_id in out:
            out[content_id]["attachments"].append(
                {"index": index, "bucket": bucket, "key": key, "size": size,
                 "sha256": sha256})
    return out


def contents_of_rows(db, rows, parts=True):
    """{content_id: content} as load_contents gives, built from fetch rows that carry
    their content's columns (messages.fetch_rows with "content", "content_body" and,
    with ``parts``, "content_parts"): FETCH of whole bodies reads each message in the
    query that finds it, and asks for attachments rows only where the message has
    some (bytes beyond its raw) or part sections need them.

    A message held whole in ``raw`` (the usual small one) gets its one RAW segment
    without parsing the stored segment map.
    """
    out = {}
    for row in rows:
        content_id = row["content_id"]
        if content_id in out:
            continue
        raw, size = bytes(row["raw"]), int(row["content_size"])
        segments = [[RAW, 0, size]] if len(raw) == size else json.loads(row["segments"])
        part_tree = row.get("content_parts") if parts else None
        out[content_id] = {"raw": raw, "segments": segments,
                           "parts": json.loads(part_tree) if part_tree else None,
                           "size": size, "header_size": int(row["header_size"]),
                           "attachments": []}
    if not out:
        return out
    with db.cursor() as cur:
        _load_chunks(cur, out)
        wanted = sorted(content_id for content_id, content in out.items()
                        if parts or len(content["raw"]) < content["size"])
        if wanted:
            _load_attachments(cur, out, wanted)
    return out


def _load_attachments(cur, contents, ids):
    """Fill in the attachments (index, bucket, key, size, sha256) of the contents ids."""
    cur.execute("SELECT content_id, idx, bucket, object_key, decoded_size, sha256"
                f" FROM attachments WHERE content_id IN ({_int_list(ids)})"
                " ORDER BY content_id, idx")
    for content_id, index, bucket, key, size, sha256 in cur.fetchall():
        if content_id in contents:
            contents[content_id]["attachments"].append(
                {"index": index, "bucket": bucket, "key": key, "size": size, "sha256": sha256})


# -- helpers ------------------------------------------------------------------

def _int_list(ids):
    """Ids written into the statement: ints (from the database) need no quoting, and
    pymysql's per-value escaping was a visible share of a large FETCH."""
    return ", ".join(str(int(i)) for i in ids)


def _marks(items):
    return ", ".join(["%s"] * len(items))


def _text(value):
    if value is None:
        return ""
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value

# -- references: COPY adds them, EXPUNGE and account deletion release them ------------

def add_references(cur, mailbox_id, cond, args):
    """Each content of the mailbox's messages matching ``cond`` gets one more reference
    per such message (COPY, before the copies are inserted)."""
    counts = (f"(SELECT content_id, COUNT(*) AS n FROM messages WHERE mailbox_id = %s AND {cond}"
              " GROUP BY content_id) s")
    if dialect.of(cur).name == dialect.SQLITE_NAME:
        cur.execute(f"UPDATE message_contents SET refcount = refcount + s.n FROM {counts}"
                    " WHERE s.content_id = message_contents.id", [mailbox_id, *args])
    else:
        cur.execute(f"UPDATE message_contents c JOIN {counts} ON s.content_id = c.id"
                    " SET c.refcount = c.refcount + s.n", [mailbox_id, *args])


def release(cur, references):
    """Drop ``{content_id: messages deleted}`` references; contents left with none are
    deleted (their attachments rows and chunks cascade).  Returns [(bucket, key)] of
    their objects, to discard once the caller's transaction has committed."""
    orphans = drop_references(cur, references)
    objects = orphan_objects(cur, orphans)
    for chunk in _chunks(orphans):
        cur.execute(f"DELETE FROM message_contents WHERE id IN ({_marks(chunk)})", chunk)
    return objects


def release_queries(references):
    """release() as statements for one request (store/batch.py), for at most _CHUNK
    contents: the refcount updates, the attachments of the contents left with no
    reference (the second last query: its rows are the [(bucket, key)] to discard
    after COMMIT), and their deletion."""
    ids = sorted(references)
    if len(ids) > _CHUNK:
        raise ValueError(f"release_queries takes at most {_CHUNK} contents")
    by_count = {}
    for content_id, count in references.items():
        by_count.setdefault(int(count), []).append(content_id)
    queries = [(f"UPDATE message_contents SET refcount = GREATEST(CAST(refcount AS SIGNED) - %s, 0) "
                f"WHERE id IN ({_marks(chunk)})", [count, *chunk])
               for count, chunk in by_count.items()]
    orphans = f"SELECT id FROM message_contents WHERE refcount = 0 AND id IN ({_marks(ids)})"
    queries.append((f"SELECT bucket, object_key FROM attachments WHERE content_id IN ({orphans}) "
                    "ORDER BY content_id, idx", ids))
    queries.append((f"DELETE FROM message_contents WHERE refcount = 0 AND id IN ({_marks(ids)})",
                    ids))
    return queries


def drop_references(cur, references):
    """Decrement refcounts by the deleted messages; returns the content ids left unreferenced."""
    by_count = {}
    for content_id, count in references.items():
        by_count.setdefault(int(count), []).append(content_id)
    for count, ids in by_count.items():
        for chunk in _chunks(ids):
            cur.execute(f"UPDATE message_contents SET refcount = GREATEST(CAST(refcount AS SIGNED) - %s, 0) "
                        f"WHERE id IN ({_marks(chunk)})", [count, *chunk])
    orphans = []
    for chunk in _chunks(sorted(references)):
        cur.execute(f"SELECT id FROM message_contents WHERE refcount = 0 AND id IN ({_marks(chunk)})",
                    chunk)
        orphans.extend(row[0] for row in cur.fetchall())
    return orphans


def orphan_objects(cur, content_ids):
    """[(bucket, key)] of the attachments of these contents."""
    objects = []
    for chunk in _chunks(content_ids):
        cur.execute("SELECT bucket, object_key FROM attachments "
                    f"WHERE content_id IN ({_marks(chunk)}) ORDER BY content_id, idx", chunk)
        objects.extend((bucket, key) for bucket, key in cur.fetchall())
    return objects


def _chunks(items):
    items = list(items)
    return [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]


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


def _imap_form(value, name):
    """A cached ENVELOPE/BODYSTRUCTURE/BODY as the latin-1 text its MEDIUMTEXT column holds.

    Each byte over 0x7f takes two bytes of UTF-8 there.  One too long for the
    column cannot be stored however often the sender retries: ContentTooLarge.
    """
    text = _text(value)
    if len(text) > IMAP_FORM_BYTES // 2 and len(text.encode("utf-8")) > IMAP_FORM_BYTES:
        raise ContentTooLarge(f"{name} of the message is over {IMAP_FORM_BYTES} bytes")
    return text


# -- the preview of contents stored before it was kept (schema 8) ------------------

def stored_preview(db, content_id):
    """The PREVIEW (RFC 8970) of a content row whose preview column is NULL: computed
    from the start of its stored texts (at most SCAN_CHARS of each), and kept, so
    this happens once per content.  None: no text (or the content is gone)."""
    with db.cursor() as cur:
        cur.execute("SELECT preview, SUBSTR(text_plain, 1, %s), SUBSTR(text_html, 1, %s) "
                    "FROM message_contents WHERE id = %s", (SCAN_CHARS, SCAN_CHARS, content_id))
        row = cur.fetchone()
    if row is None:
        return None
    if row[0] is not None:
        return row[0] or None
    preview = preview_of(row[1], row[2])
    with db.transaction() as cur:
        cur.execute("UPDATE message_contents SET preview = %s WHERE id = %s AND preview IS NULL",
                    (preview or "", content_id))
    return preview
