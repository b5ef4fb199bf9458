"""FETCH and UID FETCH (RFC 3501 §6.4.5, §7.4.2).

Metadata comes from the messages row, ENVELOPE/BODY/BODYSTRUCTURE from the
forms cached at delivery, body sections stream from MySQL and S3 (body.py).
A non-PEEK body fetch sets \\Seen first and reports the new FLAGS.
BINARY, BINARY.PEEK and BINARY.SIZE (RFC 3516) are sections decoded (body.Binary).
MODSEQ and the CHANGEDSINCE and VANISHED modifiers are CONDSTORE's and QRESYNC's
(RFC 7162 §3.1.4, §3.2.6).
"""

import datetime
import functools

import gevent
import gevent.lock
import gevent.queue

from geomail.imap import condstore, fetch_objects, qresync
from geomail.imap import response as R
from geomail.imap.body import Message, Section
from geomail.imap.errors import Bad, CommandError
from geomail.imap.parser import ParseError
from geomail.store import messages
from geomail.store.contents import contents_of_rows

MACROS = {
    "ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"],
    "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
    "FULL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"],
}
SIMPLE = ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE", "UID",
          "RFC822", "RFC822.HEADER", "RFC822.TEXT", "MODSEQ")
CONTENT_BATCH = 128      # content rows loaded per query for body sections
AHEAD = 2                # batches loaded ahead of the one being written
YIELD_EVERY = 200        # responses written between two yields to the other greenlets
_WORD_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Item:
    """One fetch attribute: ``name`` as answered, what it needs, whether it sets \\Seen."""

    __slots__ = ("kind", "section", "partial", "peek")

    def __init__(self, kind, section=None, partial=None, peek=True):
        self.kind = kind
        self.section = section
        self.partial = partial
        self.peek = peek

    def response_name(self):
        if self.kind == "BINARY.SIZE":
            return b"BINARY.SIZE[" + self.section.spec + b"]"
        if self.kind not in _SECTIONS:
            return self.kind.encode()
        name = (b"BODY[" if self.kind == "BODY[]" else b"BINARY[") + self.section.spec + b"]"
        if self.partial is not None:
            name += b"<%d>" % self.partial[0]
        return name


def parse_items(p):
    if p.peek("("):
        items = p.paren_list(lambda: _item(p))
        return [i for group in items for i in group]
    return _item(p, macros=True)


def _item(p, macros=False):
    word = _word(p)
    if macros and word in MACROS:
        return [Item(k) for k in MACROS[word]]
    if word in ("BODY", "BODY.PEEK") and p.peek("["):
        section = _section(p)
        partial = _partial(p)
        return [Item("BODY[]", section, partial, peek=word == "BODY.PEEK")]
    if word == "BODY.PEEK":
        raise ParseError("BODY.PEEK needs a section")
    if word in SIMPLE:
        return [Item(word, peek=word not in ("RFC822", "RFC822.TEXT"))]
    if word in fetch_objects.ITEMS:
        if word == "PREVIEW":
            fetch_objects.parse_preview_modifiers(p)
        return [Item(word)]
    if word in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        if not p.peek("["):
            raise ParseError(f"{word} needs a section")
        section = _section_binary(p)
        if word == "BINARY.SIZE":
            return [Item("BINARY.SIZE", section)]
        return [Item("BINARY[]", section, _partial(p), peek=word == "BINARY.PEEK")]
    raise ParseError(f"unknown FETCH item {word}")


def _word(p):
    start = p.pos
    line = p.line
    end = start
    while end < len(line) and line[end] in _WORD_CHARS:    # ASCII only: any other byte is BAD
        end += 1
    if end == start:
        raise ParseError(f"expected FETCH item at {line[start:start + 20]!r}")
    p.pos = end
    return line[start:end].decode("ascii").upper()


def _section(p):
    """'[' section-spec ']' (RFC 3501 §9 section)."""
    p.expect("[")
    start = p.pos
    numbers = []
    while p.peek().isdigit():
        numbers.append(str(p.number(nonzero=True)))
        if not p.take("."):
            break
    part = ".".join(numbers)
    text, fields = "", None
    if not p.peek("]"):
        if numbers and p.line[p.pos - 1:p.pos] != b".":
            raise ParseError("expected '.' after the part number")
        for candidate in ("HEADER.FIELDS.NOT", "HEADER.FIELDS", "HEADER", "TEXT", "MIME"):
            if p.take(candidate):
                text = candidate
                break
        else:
            raise ParseError(f"invalid section at {p.rest()[:20]!r}")
        if text == "MIME" and not part:
            raise ParseError("MIME needs a part number")
        if text.startswith("HEADER.FIELDS"):
            p.sp()
            fields = [f.decode("ascii", "replace") for f in p.paren_list(p.astring)]
    elif numbers and p.line[p.pos - 1:p.pos] == b".":
        raise ParseError("section ends with '.'")
    spec = p.line[start:p.pos]
    p.expect("]")
    return Section(part, text, fields, spec)


section_spec = _section     # CATENATE's URLs name sections by the same grammar (catenate.py)


def _section_binary(p):
    """RFC 3516 §6 section-binary: '[' [section-part] ']', part numbers only."""
    p.expect("[")
    start = p.pos
    numbers = []
    while not p.peek("]"):
        if numbers:
            p.expect(".", "'.' or ']'")
        numbers.append(str(p.number(nonzero=True)))
    spec = p.line[start:p.pos]
    p.expect("]")
    return Section(".".join(numbers), "", None, spec)


def _partial(p):
    if not p.take("<"):
        return None
    offset = p.number()
    p.expect(".")
    length = p.number(nonzero=True)
    p.expect(">")
    return offset, length


def internal_date(value):
    """RFC 3501 date-time of a stored (UTC) internal date."""
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc)
    return '"%02d-%s-%04d %02d:%02d:%02d +0000"' % (value.day, _MONTHS[value.month - 1], value.year,
                                                     value.hour, value.minute, value.second)


def fetch(session, p, tag):
    return _fetch(session, p, uid_mode=False)


def uid_fetch(session, p, tag):
    return _fetch(session, p, uid_mode=True)


def _fetch(session, p, uid_mode):
    seqset = p.sequence_set()
    p.sp()
    items = parse_items(p)
    modifiers = condstore.fetch_modifiers(p) if p.take(" ") else {}
    p.end()
    changedsince = modifiers.get("CHANGEDSINCE")
    if "VANISHED" in modifiers:
        _check_vanished(session, uid_mode, changedsince)
    if changedsince is not None and not any(i.kind == "MODSEQ" for i in items):
        items.append(Item("MODSEQ"))          # CHANGEDSINCE implies MODSEQ (RFC 7162 §3.1.4.1)
    if any(i.kind == "MODSEQ" for i in items):
        condstore.enable(session)             # a CONDSTORE enabling command (§3.1)
    view = session.view
    if "VANISHED" in modifiers:
        qresync.vanished_earlier(session, view, changedsince, _uid_set(session, seqset))
    ranges = view.uid_ranges(seqset, uid_mode, saved=session.saved_search)
    if not ranges:
        return
    if uid_mode and not any(i.kind == "UID" for i in items):
        items.insert(0, Item("UID"))
    fields = _fields(items)
    db = session.context.db
    seen_now = {}
    if not view.readonly and any(not i.peek for i in items):
        if changedsince is not None:      # only the messages the client gets are read
            ranges = messages.compress([row["uid"] for row in messages.fetch_rows(
                db, view.mailbox_id, ranges, [], changedsince)])
            if not ranges:
                return
        stored = messages.store_flags(db, view.mailbox_id, ranges, "+", ["\\Seen"])
        seen_now = stored.changed
        if seen_now:
            view.own_change(stored.modseq)
    if seen_now:
        # RFC 3501 §6.4.5 and, once CONDSTORE is on, RFC 7162 §3.1.4.1: the new FLAGS of a
        # message this FETCH marked \Seen go with UID and MODSEQ
        for field in ("flags", "modseq") if condstore.is_on(session) else ("flags",):
            if field not in fields:
                fields.append(field)
    out = session.out
    if "thread_id" in fields:
        messages.fill_thread_ids(db, view.mailbox_id)      # rows stored before schema 8
    parts = any(i.kind in _PARTS and i.section.part for i in items)
    if "content" in fields:       # each message's own bytes come with its row
        fields += ["content_body", "content_parts"] if parts else ["content_body"]
    read_since = view.modseq
    rows = messages.fetch_rows(db, view.mailbox_id, ranges, fields, changedsince,
                               reads=view.catch_up_reads(db),
                               reads_done=lambda results: view.reads_done(read_since, results))
    if "preview" in fields:
        rows = fetch_objects.prepare_rows(db, rows)
    if "content" in fields:
        prefetcher = Prefetcher() if any(_whole(i) for i in items) else None
        stream = _with_contents(session.context, rows, prefetcher, parts)
    else:
        prefetcher = None
        stream = _read_ahead(rows)
    try:
        answered = _write_rows(session, out, items, view, stream, seen_now)
    finally:
        if prefetcher is not None:
            prefetcher.close()
    if changedsince is None and answered < len(view.uids_in(ranges)):
        if uid_mode:
            # RFC 2180 §4.1.2: a UID FETCH leaves the expunged out, and their EXPUNGE
            # follows; OK with the code, as Dovecot answers
            return R.EXPUNGEISSUED, "Some messages were already expunged"
        raise expunge_issued()


def _check_vanished(session, uid_mode, changedsince):
    """RFC 7162 §3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE, after ENABLE QRESYNC."""
    if not uid_mode:
        raise Bad("VANISHED is allowed in UID FETCH only")
    if changedsince is None:
        raise Bad("VANISHED needs CHANGEDSINCE")
    if not condstore.qresync_on(session):
        raise Bad("VANISHED needs ENABLE QRESYNC first")


def _uid_set(session, seqset):
    """UID ranges of a UID FETCH set as the client wrote them, not clipped to the
    messages still there ("*" is the highest UID ever given out here)."""
    if seqset.saved:
        return messages.compress(sorted(session.saved_search))
    return seqset.resolve(max(session.view.uidnext - 1, 1))


def expunge_issued():
    """RFC 2180 §4.1.3 with RFC 5530's code: some of the messages the client named are gone
    (another session expunged them); the others were answered, the session goes on."""
    return CommandError("Some of the requested messages no longer exist", R.EXPUNGEISSUED)


def _write_rows(session, out, items, view, stream, seen_now):
    """Write the FETCH responses; returns how many messages were answered.

    A message whose row or content another session removed meanwhile is
    left out (the caller answers NO [EXPUNGEISSUED]); every YIELD_EVERY
    messages the other greenlets of the worker get the loop.
    """
    # metadata only (the usual summary fetch): each response is built in one piece
    simple = all(i.kind in _METADATA for i in items)
    kinds = [i.kind for i in items]
    implied = _implied(kinds, condstore.is_on(session))
    makers = [_MAKERS.get(kind, functools.partial(_metadata, kind)) for kind in kinds]
    seq_of = _SeqFinder(view).seq_of
    answered = 0
    batch = []          # simple responses, written YIELD_EVERY at a time
    for row, msg in stream:
        uid = row["uid"]
        seq = seq_of(uid)
        if seq is None or msg is GONE:
            continue
        answered += 1
        if answered % YIELD_EVERY == 0:
            if batch:
                out.write(b"".join(batch))
                batch = []
            gevent.sleep(0)
        flags = row.get("flags")
        if flags and view.unannounced(flags):
            if batch:                       # the responses before it go first
                out.write(b"".join(batch))
                batch = []
            view.announce_keywords(session, flags)
        if simple:
            parts = [make(row, view) for make in makers]
            if uid in seen_now:
                parts.extend(_metadata(kind, row, view) for kind in implied)
            batch.append(b"* %d FETCH (%b)\r\n" % (seq, b" ".join(parts)))
            continue
        try:
            _write_message(session, out, items, row, msg, view, seq,
                           implied if uid in seen_now else ())
        except Exception:
            # RFC 2180 §4.1: its attachments went with an expunge by another session
            # between loading its content and streaming it; drop its response if
            # none of it was sent, and go on with the others
            if not _expunged_meanwhile(session, view, uid) or not out.rollback():
                raise
            answered -= 1
    if batch:
        out.write(b"".join(batch))
    return answered


class _SeqFinder:
    """Sequence numbers of ascending UIDs: the one after the last found is tried first
    (a FETCH's rows come in UID order), else the view's binary search."""

    __slots__ = ("view", "uids", "next")

    def __init__(self, view):
        self.view, self.uids, self.next = view, view.uids, 0

    def seq_of(self, uid):
        i = self.next
        uids = self.uids
        if i < len(uids) and uids[i] == uid:
            self.next = i + 1
            return i + 1
        seq = self.view.seq_of(uid)
        if seq is not None:
            self.next = seq
        return seq


def _write_message(session, out, items, row, msg, view, seq, implied):
    # BINARY sections are looked up before any byte of the response is written, so an
    # encoding it cannot undo is a clean NO [UNKNOWN-CTE] (RFC 3516 §4.3) for the command
    binaries = {id(i): msg.binary(i.section.part) for i in items if i.kind in _BINARY}
    out.write(b"* %d FETCH (" % seq)
    first = True
    for item in items:
        if not first:
            out.write(b" ")
        first = False
        _write_item(session, out, item, row, msg, view, binaries)
    for kind in implied:
        out.write(b" " + _metadata(kind, row, view))
    out.write(b")\r\n")


def _implied(kinds, with_modseq):
    """Items a message this FETCH marked \\Seen gets though not asked for: its FLAGS
    (RFC 3501 §6.4.5) and, once CONDSTORE is on, UID and MODSEQ (RFC 7162 §3.1.4.1)."""
    wanted = ("FLAGS", "UID", "MODSEQ") if with_modseq else ("FLAGS",)
    return [kind for kind in wanted if kind not in kinds]


def _expunged_meanwhile(session, view, uid):
    try:
        return not messages.message_exists(session.context.db, view.mailbox_id, uid)
    except Exception:       # noqa: BLE001 - the first failure is the one to report
        return False


def _whole(item):
    """Does the item send a whole message (all its attachments)?"""
    if item.kind == "RFC822":
        return True
    return (item.kind in _SECTIONS and item.partial is None and not item.section.part
            and item.section.text == "")


GONE = object()     # stands for the Message of a row whose content was removed meanwhile


def _with_contents(context, rows, prefetcher, parts):
    """(row, Message) with contents (read with the rows, attachments rows added)
    CONTENT_BATCH at a time by a loader greenlet.

    The loader keeps up to AHEAD batches ready (and their attachment
    prefetches started) while this greenlet writes the current one, so the
    MySQL and S3 round trips overlap with the socket draining.
    """
    db = context.db

    def load(batch):
        contents = contents_of_rows(db, batch, parts)
        loaded = []
        for row in batch:
            content = contents.get(row["content_id"])
            if content is None:          # expunged by another session since its row was read
                loaded.append((row, GONE))
                continue
            msg = Message(context, row, content)
            if prefetcher is not None:
                prefetcher.start(msg.stored, row["content_id"])
            loaded.append((row, msg))
        return loaded

    return _batches_ahead(rows, CONTENT_BATCH, load)


READ_AHEAD_ROWS = 500     # rows handed over at a time by _read_ahead's greenlet


def _read_ahead(rows):
    """(row, None) for the rows, read by a greenlet of their own up to AHEAD batches of
    READ_AHEAD_ROWS ahead: the next page's query runs in the database while this
    greenlet writes the responses of the last (a summary FETCH of 10,000 messages is
    ten queries)."""
    return _batches_ahead(rows, READ_AHEAD_ROWS, lambda batch: [(row, None) for row in batch])


def _batches_ahead(rows, size, load):
    """Yield the items of load(batch) for each batch of ``size`` rows, loaded by a
    greenlet of its own up to AHEAD batches ahead of the consumer; an exception in
    it is raised again here, and the greenlet ends with the consumer."""
    ready = gevent.queue.Queue(maxsize=AHEAD)

    def loader():
        try:
            batch = []
            for row in rows:
                batch.append(row)
                if len(batch) >= size:
                    ready.put((True, load(batch)))
                    batch = []
            if batch:
                ready.put((True, load(batch)))
            ready.put((True, None))
        except Exception as exc:             # raised again in the writing greenlet
            ready.put((False, exc))

    worker = gevent.spawn(loader)
    try:
        while True:
            ok, loaded = ready.get()
            if not ok:
                raise loaded
            if loaded is None:
                return
            yield from loaded
    finally:
        worker.kill(block=False)


class Prefetcher:
    """Whole attachment objects of the next messages, fetched from S3 in parallel.

    Only objects up to MAX_OBJECT are prefetched, and at most BUDGET bytes are
    held (fetched or in flight) at any time; anything else streams chunk by
    chunk as before.  A message's reader takes its object from here.
    """

    CONCURRENCY = 8
    MAX_OBJECT = 1024 * 1024
    BUDGET = 16 * 1024 * 1024

    def __init__(self):
        self.slots = gevent.lock.BoundedSemaphore(self.CONCURRENCY)
        self.jobs = {}          # (content_id, index) -> (greenlet, size)
        self.used = 0

    def start(self, stored, content_id):
        if not stored.content["attachments"]:
            return                # nothing to fetch: the message is its raw bytes
        original = stored.read_attachment
        for entry in stored.content["attachments"]:
            size = int(entry["size"])
            key = (content_id, entry["index"])
            if size > self.MAX_OBJECT or self.used + size > self.BUDGET or key in self.jobs:
                continue
            if stored.cached(entry["index"]):
                continue          # read from the worker's cache without a round trip
            self.used += size
            self.jobs[key] = (gevent.spawn(self._get, original, entry["index"], size), size)
        stored.read_attachment = functools.partial(self._read, original, content_id)

    def _get(self, read, index, size):
        with self.slots:
            try:
                return True, b"".join(read(index, 0, size))
            except Exception as exc:        # raised to the reader, in its greenlet
                return False, exc

    def _read(self, original, content_id, index, start, end):
        job = self.jobs.pop((content_id, index), None)
        if job is None:
            return original(index, start, end)
        greenlet, size = job
        ok, value = greenlet.get()
        self.used -= size
        if not ok:
            raise value
        return _chunks(value, start, end)

    def close(self):
        jobs, self.jobs = self.jobs, {}
        gevent.killall([greenlet for greenlet, _ in jobs.values()], block=False)
        self.used = 0


def _chunks(data, start, end, size=64 * 1024):
    view = memoryview(data)
    for i in range(start, min(end, len(data)), size):
        yield view[i:min(i + size, end)]


def _fields(items):
    fields = []
    for item in items:
        need = {"FLAGS": "flags", "INTERNALDATE": "internal_date", "RFC822.SIZE": "size",
                "ENVELOPE": "envelope", "BODY": "body", "BODYSTRUCTURE": "bodystructure",
                "MODSEQ": "modseq"}.get(item.kind)
        if item.kind in _PARTS or item.kind in ("RFC822", "RFC822.HEADER", "RFC822.TEXT"):
            need = "content"
        need = fetch_objects.ITEMS.get(item.kind, need)
        if need and need not in fields:
            fields.append(need)
    return fields


def _flags(row, view):
    flags = list(row["flags"])
    if row["uid"] in view.recent:
        flags.append("\\Recent")
    return flags


def _cached(value):
    """ENVELOPE/BODYSTRUCTURE are stored latin-1-decoded (one char per byte)."""
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


_METADATA = frozenset(("UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE",
                       "BODY", "MODSEQ", *fetch_objects.ITEMS))


def _metadata(kind, row, view):
    """The response bytes of an item answered from the row alone."""
    if kind == "UID":
        return b"UID %d" % row["uid"]
    if kind == "FLAGS":
        return b"FLAGS " + R.flag_list(_flags(row, view))
    if kind == "MODSEQ":
        return b"MODSEQ (%d)" % row["modseq"]          # RFC 7162 §3.1.4.2
    if kind == "INTERNALDATE":
        return b"INTERNALDATE " + internal_date(row["internal_date"]).encode()
    if kind == "RFC822.SIZE":
        return b"RFC822.SIZE %d" % row["size"]
    if kind == "ENVELOPE":
        return b"ENVELOPE " + _cached(row["envelope"])
    if kind == "BODYSTRUCTURE":
        return b"BODYSTRUCTURE " + _cached(row["bodystructure"])
    if kind in fetch_objects.ITEMS:
        return fetch_objects.response(kind, row, internal_date)
    return b"BODY " + _cached(row["body"])


# the items a summary FETCH asks for most, without _metadata's chain of tests
_MAKERS = {
    "UID": lambda row, view: b"UID %d" % row["uid"],
    "FLAGS": lambda row, view: b"FLAGS " + R.flag_list(_flags(row, view)),
    "RFC822.SIZE": lambda row, view: b"RFC822.SIZE %d" % row["size"],
    "ENVELOPE": lambda row, view: b"ENVELOPE " + _cached(row["envelope"]),
    "BODYSTRUCTURE": lambda row, view: b"BODYSTRUCTURE " + _cached(row["bodystructure"]),
}

_SECTIONS = ("BODY[]", "BINARY[]")
_BINARY = ("BINARY[]", "BINARY.SIZE")
_PARTS = ("BODY[]", "BINARY[]", "BINARY.SIZE")


def _write_item(session, out, item, row, msg, view, binaries):
    kind = item.kind
    if kind in _METADATA:
        out.write(_metadata(kind, row, view))
    elif kind in _BINARY:
        binary = binaries[id(item)]
        out.write(item.response_name() + b" ")
        if kind == "BINARY.SIZE":
            out.write(b"%d" % (binary.size() if binary is not None else 0))
        elif binary is None:       # no such part: empty, as Dovecot (BODY[n] says NIL)
            out.literal(R.Literal(0, ()))
        else:
            out.literal(binary.literal(item.partial))
    else:
        if kind == "BODY[]":
            section, partial = item.section, item.partial
        else:
            section = Section("", {"RFC822": "", "RFC822.HEADER": "HEADER",
                                   "RFC822.TEXT": "TEXT"}[kind], None, b"")
            partial = None
        out.write(item.response_name() + b" ")
        literal = msg.section(section, partial)
        if literal is None:
            out.write(R.NIL)
        else:
            out.literal(literal)
