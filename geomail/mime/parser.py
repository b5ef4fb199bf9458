"""Incremental MIME parser: feed() chunks of a message, close() for a ParsedMessage.

The message is never held whole: attachment bodies are decoded on the fly
and written to ``attachment_sink.open(info)`` writers; every other byte is
kept in ``raw``. ``segments`` say how raw and the decoded attachments give
back the message byte for byte (docs/DESIGN.md "Byte-exact messages").

Boundaries, header blocks and the default content types follow Dovecot 2.3
(lib-mail/message-parser.c), which tests/mime/dovecot records: a header block
runs to the empty line (RFC 5322 §2.1), a delimiter need only begin its line
and the innermost boundary wins (RFC 2046 §5.1.1), a delimiter right after
another delimits an empty part; the CRLF before a boundary belongs to the
boundary (RFC 2046 §5.1.1).  Attachments decode as
``email.message_from_bytes(...)`` decodes the same bytes.
"""

import binascii
import bisect
import hashlib
from email.utils import parsedate_to_datetime
from datetime import timezone

from . import headers as H
from . import imap
from .decoders import B64_ALPHABET, Base64Decoder, decode_all, decoder_for
from .segments import RAW, Segment

HEADERS, BODY, PREAMBLE, EPILOGUE = range(4)
MAX_HEADER_BYTES = 256 * 1024
MAX_PENDING_LINE = 64 * 1024       # longest base64 line we try to prove canonical
SAFE_NAME_BYTES = 150
CONTAINER_TYPES = ("message/rfc822",)   # as Dovecot 2.3: message/global is a leaf
# Bounds on the part tree, after Dovecot 2.3's (MESSAGE_PARSER_DEFAULT_MAX_NESTED_MIME_PARTS
# 100 and _MAX_TOTAL_MIME_PARTS 10,000, lib-mail/message-parser.h; half as many parts
# here, as the tree's BODYSTRUCTURE and JSON cost ~50 us of CPU a part in Python and
# are built without yielding: 5,000 parts take ~0.15 s).  An entity MAX_DEPTH levels
# down is an opaque leaf even if it says multipart or message/rfc822: its body,
# nested parts and all, is one leaf body kept in raw.  That bounds every
# recursive walk of the tree (BODYSTRUCTURE, JSON, FETCH) well under Python's
# recursion limit, and the IMAP part number ("1.1.1...") to MAX_DEPTH
# components.  After MAX_PARTS entities no more delimiter lines are looked
# for: the rest of the message belongs to the body of the part it is in.
MAX_DEPTH = 100
MAX_PARTS = 5000
# A boundary is at most 70 characters (RFC 2046 §5.1.1); Dovecot 2.3 matches the first
# 80 of a longer one (BOUNDARY_STRING_MAX_LEN, lib-mail/message-parser-private.h), so
# a delimiter line only needs to begin with those.
MAX_BOUNDARY = 80


class AttachmentInfo:
    """What the sink learns when an attachment starts, plus results at the end.

    index, part ("2", "1.3"), filename (decoded, may be None), safe_filename
    (for object keys), content_type ("image/png"), encoding ("base64");
    after close(): size (decoded bytes), sha256 (hex) and storage:
    "identity" (decoded == encoded), "base64" (re-encoded exactly),
    "partial" (a canonical base64 prefix, the rest kept raw) or "raw".
    """

    __slots__ = ("index", "part", "filename", "safe_filename", "content_type",
                 "encoding", "size", "sha256", "storage")

    def __init__(self, index, part, filename, safe_filename, content_type, encoding):
        self.index = index
        self.part = part
        self.filename = filename
        self.safe_filename = safe_filename
        self.content_type = content_type
        self.encoding = encoding
        self.size = 0
        self.sha256 = None
        self.storage = None

    @property
    def rebuilt(self):
        """True when (part of) the encoded form is rebuilt from the decoded object."""
        return self.storage in ("identity", "base64", "partial")

    def to_json(self):
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_json(cls, d):
        info = cls(d["index"], d["part"], d["filename"], d["safe_filename"],
                   d["content_type"], d["encoding"])
        info.size, info.sha256, info.storage = d["size"], d["sha256"], d["storage"]
        return info

    def __repr__(self):
        return "AttachmentInfo(%r)" % (self.to_json(),)


class Part:
    """A MIME entity: its header block and body as byte ranges of the message.

    ``number`` is the IMAP part number ("" for the message itself; a
    message/rfc822 part and the message inside it share one number).
    ``message`` is the nested message entity of a message/rfc822 part,
    ``children`` the parts of a multipart. Type strings are lower-case;
    the ``*_raw`` bytes are as written, for BODYSTRUCTURE.
    """

    __slots__ = ("number", "type", "subtype", "type_raw", "subtype_raw", "params",
                 "content_id", "description", "encoding", "encoding_raw",
                 "disposition", "disposition_params", "language", "location", "md5",
                 "header_offset", "header_length", "body_offset", "body_length", "lines",
                 "children", "message", "boundary", "attachment", "fields", "parent", "depth", "opaque",
                 "nul",
                 "_lf0", "_consumer", "_delim", "_closed", "_raw_start", "_raw_end", "_charset")

    def __init__(self, number, header_offset, parent=None):
        self.number = number
        self.header_offset = header_offset
        self.header_length = 0
        self.body_offset = header_offset
        self.body_length = 0
        self.lines = 0
        self.parent = parent
        self.depth = 0 if parent is None else parent.depth + 1
        self.opaque = False        # a container treated as a leaf (MAX_DEPTH)
        self.nul = None            # an attachment: does its decoded object hold NUL (BINARY)
        self.children = []
        self.message = None
        self.boundary = None
        self.attachment = None
        self.fields = None
        self.type, self.subtype = "text", "plain"
        self.type_raw = self.subtype_raw = None
        self.params = []
        self.content_id = self.description = self.md5 = self.location = None
        self.encoding, self.encoding_raw = "7bit", None
        self.disposition, self.disposition_params = None, []
        self.language = []
        self._lf0 = 0
        self._consumer = None
        self._delim = None
        self._closed = False
        self._raw_start = self._raw_end = None
        self._charset = None

    @property
    def content_type(self):
        return self.type + "/" + self.subtype

    def walk(self):
        """This entity and every entity below it, depth first."""
        yield self
        if self.message is not None:
            yield from self.message.walk()
        for child in self.children:
            yield from child.walk()

    def find(self, number):
        """The entity whose body is IMAP BODY[number] (RFC 3501 §6.4.5), or None."""
        node, entity = self, True
        for step in number.split("."):
            if not step.isdigit() or int(step) < 1:
                return None
            if node.message is not None and not entity:
                node, entity = node.message, True
            if node.boundary is not None:
                if int(step) > len(node.children):
                    return None
                node, entity = node.children[int(step) - 1], False
            elif entity and step == "1":
                entity = False    # the body of a non-multipart message is its part 1
            else:
                return None
        return node

    @property
    def imap_number(self):
        """IMAP part number of this entity's body ("1" for a one-part message)."""
        if self.parent is None:
            return "1"
        if self.parent.message is self:
            return self.number + ".1"
        return self.number

    def to_json(self):
        def s(b):
            return None if b is None else b.decode("latin-1")
        d = {
            "number": self.number, "type": self.type, "subtype": self.subtype,
            "type_raw": s(self.type_raw), "subtype_raw": s(self.subtype_raw),
            "params": [[s(k), s(v)] for k, v in self.params],
            "id": s(self.content_id), "description": s(self.description),
            "encoding": self.encoding, "encoding_raw": s(self.encoding_raw),
            "disposition": s(self.disposition),
            "disposition_params": [[s(k), s(v)] for k, v in self.disposition_params],
            "language": [s(x) for x in self.language], "location": s(self.location),
            "md5": s(self.md5), "boundary": s(self.boundary),
            "header": [self.header_offset, self.header_length],
            "body": [self.body_offset, self.body_length], "lines": self.lines,
            "attachment": self.attachment,
        }
        if self.opaque:
            d["opaque"] = True
        if self.nul is not None:
            d["nul"] = self.nul
        if self.fields is not None:
            d["fields"] = [[n, s(v)] for n, v in self.fields if n in _ENVELOPE_FIELDS]
        if self.message is not None:
            d["message"] = self.message.to_json()
        if self.children:
            d["children"] = [c.to_json() for c in self.children]
        return d

    @classmethod
    def from_json(cls, d, parent=None):
        def b(x):
            return None if x is None else x.encode("latin-1")
        p = cls(d["number"], d["header"][0], parent)
        p.header_length = d["header"][1]
        p.body_offset, p.body_length = d["body"]
        p.lines = d["lines"]
        p.type, p.subtype = d["type"], d["subtype"]
        p.type_raw, p.subtype_raw = b(d["type_raw"]), b(d["subtype_raw"])
        p.params = [(b(k), b(v)) for k, v in d["params"]]
        p.content_id, p.description = b(d["id"]), b(d["description"])
        p.encoding, p.encoding_raw = d["encoding"], b(d["encoding_raw"])
        p.disposition = b(d["disposition"])
        p.disposition_params = [(b(k), b(v)) for k, v in d["disposition_params"]]
        p.language = [b(x) for x in d["language"]]
        p.location, p.md5, p.boundary = b(d["location"]), b(d["md5"]), b(d["boundary"])
        p.attachment = d["attachment"]
        p.opaque = d.get("opaque", False)
        p.nul = d.get("nul")          # None: stored before it was recorded
        if "fields" in d:
            p.fields = [(n, b(v)) for n, v in d["fields"]]
        if "message" in d:
            p.message = cls.from_json(d["message"], p)
        p.children = [cls.from_json(c, p) for c in d.get("children", ())]
        return p

    def __repr__(self):
        return "Part(%r, %s)" % (self.number, self.content_type)


_ENVELOPE_FIELDS = frozenset(("date", "subject", "from", "sender", "reply-to", "to", "cc",
                              "bcc", "in-reply-to", "message-id"))


class ParsedMessage:
    """The result of MessageParser.close(); see the module docstring."""

    def __init__(self, raw, segments, size, parts, attachments, text_plain, text_html, headers):
        self.raw = raw
        self.segments = segments
        self.size = size
        self.parts = parts
        self.attachments = attachments
        self.text_plain = text_plain
        self.text_html = text_html
        self.headers = headers
        self.envelope = imap.envelope(parts.fields or [])
        self.bodystructure, self.body = imap.bodies(parts)
        self.wire_forms = {}      # attachment index -> (base64 Segment, its bytes as received)

    def segments_json(self):
        return [seg.to_json() for seg in self.segments]


# --- body consumers: what happens to the bytes of one leaf part -------------------

class _Inline:
    """A part kept in raw (text, containers treated as text)."""

    __slots__ = ("p",)

    def __init__(self, parser):
        self.p = parser

    def feed(self, data):
        self.p._emit_raw(data)

    def finish(self):
        pass


class _Writer:
    """Wraps the sink's writer: counts and hashes the decoded bytes, and notes whether
    they hold NUL (the part's ``nul``: RFC 3516 §4.3, BINARY's literal8)."""

    __slots__ = ("w", "info", "h", "n", "part", "nul")

    def __init__(self, writer, info, part):
        self.w, self.info, self.part = writer, info, part
        self.h = hashlib.sha256()
        self.n = 0
        self.nul = False

    def write(self, data):
        if data:
            self.h.update(data)
            self.n += len(data)
            if not self.nul:
                self.nul = b"\0" in bytes(data)
            self.w.write(data)

    def close(self, storage):
        self.info.size = self.n
        self.info.sha256 = self.h.hexdigest()
        self.info.storage = storage
        self.part.nul = self.nul
        self.w.close()


class _Identity:
    """7bit/8bit/binary (and unknown) encodings: decoded == encoded, nothing raw."""

    __slots__ = ("p", "w", "seg")

    def __init__(self, parser, writer):
        self.p, self.w, self.seg = parser, writer, None

    def feed(self, data):
        if not data:
            return
        self.w.write(data)
        seg = self.seg
        if seg is None:
            seg = self.seg = Segment.identity(self.w.info.index, 0, 0)
            self.p._segments.append(seg)
        seg.dend += len(data)
        seg.length += len(data)
        self.p._emitted += len(data)

    def finish(self):
        self.w.close("identity")


class _Decoded:
    """Quoted-printable, uuencode: decoded bytes to the sink, encoded kept raw."""

    __slots__ = ("p", "w", "dec")

    def __init__(self, parser, writer, encoding):
        self.p, self.w, self.dec = parser, writer, decoder_for(encoding)

    def feed(self, data):
        self.p._emit_raw(data)
        self.w.write(self.dec.feed(data))

    def finish(self):
        self.w.write(self.dec.finish())
        self.w.close("raw")


_NOT_B64 = bytes(c for c in range(256) if c not in B64_ALPHABET)


def _valid_last(x, L):
    """Is x a canonical final base64 line of at most L chars?"""
    if not x or len(x) > L or len(x) % 4:
        return False
    try:
        return binascii.b2a_base64(binascii.a2b_base64(x), newline=False) == x
    except binascii.Error:
        return False


class _Base64:
    """Base64 attachment: prove line by line that re-encoding gives the same bytes.

    L comes from the first line; every line but the last is L chars + CRLF,
    the last at most L, canonical. From the first deviating line on, the
    encoded bytes go to raw (the sink still gets every decoded byte).
    """

    __slots__ = ("p", "w", "L", "carry", "raw_mode", "seg", "dec", "enc_len", "wire")

    def __init__(self, parser, writer):
        self.p, self.w = parser, writer
        self.L = None
        self.carry = b""
        self.raw_mode = False
        self.seg = None
        self.dec = None
        self.enc_len = 0
        # the accepted encoded blocks, kept (within the parser's wire_limit for the whole
        # message) so that the segment's wire form need never be encoded again
        # (ParsedMessage.wire_forms)
        self.wire = [] if parser._wire_limit else None

    def feed(self, data):
        if self.raw_mode:
            self._raw(data)
        elif data:
            self._process(self.carry + data if self.carry else bytes(data), False)

    def finish(self):
        if not self.raw_mode:
            self._process(self.carry, True)
        if self.raw_mode:
            self.w.write(self.dec.finish())
            storage = "partial" if self.seg is not None else "raw"
        else:
            storage = "base64" if self.seg is not None else "raw"
        self.w.close(storage)

    def _raw(self, data):
        self.p._emit_raw(data)
        self.w.write(self.dec.feed(data))

    def _accept(self, block, nlines):
        decoded = binascii.a2b_base64(block)
        self.w.write(decoded)
        seg = self.seg
        if seg is None:
            seg = self.seg = Segment.base64(self.w.info.index, 0, 0, self.L, True)
            seg.length = 0
            self.p._segments.append(seg)
        seg.dend += len(decoded)
        seg.length += len(block)
        self.p._emitted += len(block)
        if self.wire is not None:
            p = self.p
            if len(block) > p._wire_left:        # past the message's limit: keep none of it
                p._wire_left += seg.length - len(block)
                self.wire = None
            else:
                p._wire_left -= len(block)
                self.wire.append(block)

    def _done(self, eol):
        seg = self.seg
        if seg is not None:
            seg.eol = eol
            check = Segment.base64(seg.index, seg.dstart, seg.dend, seg.line, eol)
            assert check.length == seg.length, (check, seg)
            if self.wire is not None:
                wire = b"".join(self.wire)     # exactly the segment's bytes in the message
                if len(wire) == seg.length:
                    self.p._wire_forms[seg.index] = (seg, wire)
            self.wire = None

    def _deviate(self, rest):
        self._done(True)
        self.raw_mode = True
        self.carry = b""
        self.dec = Base64Decoder()
        self._raw(rest)

    def _process(self, buf, final):
        L = self.L
        if L is None:
            i = buf.find(b"\n")
            if i < 0:
                if final:
                    if _valid_last(buf, MAX_PENDING_LINE):
                        self.L = len(buf)
                        self._accept(buf, 1)
                        self._done(False)
                    else:
                        self._deviate(buf)
                elif len(buf) > MAX_PENDING_LINE:
                    self._deviate(buf)
                else:
                    self.carry = buf
                return
            L = i - 1
            if L <= 0 or L % 4 or L > MAX_PENDING_LINE or buf[i - 1] != 13:
                self._deviate(buf)
                return
            self.L = L
        S = L + 2
        n = len(buf) // S
        pos = 0
        if n:
            block = buf[:n * S] if n * S != len(buf) else buf
            if (block[L::S] == b"\r" * n and block[L + 1::S] == b"\n" * n
                    and len(block.translate(None, B64_ALPHABET)) == 2 * n):
                self._accept(block, n)
                pos = n * S
            else:
                j = 0
                while j < n:
                    line = buf[j * S:(j + 1) * S]
                    if line[L:] != b"\r\n" or line[:L].translate(None, B64_ALPHABET):
                        break
                    j += 1
                if j:
                    self._accept(buf[:j * S], j)
                pos = j * S
        rest = buf[pos:] if pos else buf
        lf = rest.find(b"\n")
        if final:
            if not rest:
                self._done(True)
            elif lf < 0 and b"\r" not in rest and _valid_last(rest, L):
                self._accept(rest, 1)
                self._done(False)
            elif lf == len(rest) - 1 and rest.endswith(b"\r\n") and _valid_last(rest[:-2], L):
                self._accept(rest, 1)
                self._done(True)
            else:
                self._deviate(rest)
            return
        if lf < 0:
            if len(rest) < S:
                self.carry = rest
            else:
                self._deviate(rest)
        elif lf == len(rest) - 1 and rest.endswith(b"\r\n") and _valid_last(rest[:-2], L):
            self.carry = rest
        else:
            self._deviate(rest)


# --- the parser ---------------------------------------------------------------------

class MessageParser:
    """feed(bytes) any number of times, then close() -> ParsedMessage.

    attachment_sink.open(AttachmentInfo) -> writer with write(bytes), close()
    and abort(); abort() is called on every open writer if the parser fails
    (for instance because the sink raised) or abort() is called.
    """

    def __init__(self, attachment_sink, max_header_bytes=MAX_HEADER_BYTES, wire_limit=0):
        self._sink = attachment_sink
        self._max_header = max_header_bytes
        self._wire_limit = wire_limit    # keep base64 segments, this many bytes in all, as received
        self._wire_left = wire_limit
        self._wire_forms = {}            # attachment index -> (Segment, its bytes)
        self._buf = b""
        self._pos = 0
        self._base = 0           # absolute offset of _buf[0]
        self._lf = 0             # LF count of everything consumed
        self._bol = True         # is _pos at the beginning of a line?
        self._raw = bytearray()
        self._segments = []
        self._emitted = 0
        self._size = 0
        self._root = Part("", 0)
        self._part_count = 1     # entities created so far (MAX_PARTS)
        self._cur = self._root
        self._state = HEADERS
        self._hdr = []
        self._hdr_len = 0
        self._open = []          # entities whose body has started, outermost first
        self._attachments = []
        self._writers = []
        self._safe_names = set()
        self._inline_text = []
        self._closed = False
        self._skip_line = False  # inside a delimiter line longer than the buffer held

    # -- public API

    def feed(self, data):
        """Consume the next chunk of the message (any size, split anywhere)."""
        if self._closed:
            raise ValueError("feed() after close()")
        if not data:
            return
        self._size += len(data)
        if self._pos:
            self._base += self._pos
            self._buf = self._buf[self._pos:] + bytes(data)
            self._pos = 0
        elif self._buf:
            self._buf += bytes(data)
        else:
            self._buf = bytes(data)
        self._guard(self._run, False)

    def close(self):
        """End of message: finish every part and return the ParsedMessage."""
        if self._closed:
            raise ValueError("close() called twice")
        self._guard(self._finish)
        self._closed = True
        return self._result()

    def abort(self):
        """Give up: abort every attachment writer opened so far."""
        self._closed = True
        for w in self._writers:
            try:
                w.w.abort()
            except Exception:
                pass

    def _guard(self, fn, *args):
        try:
            fn(*args)
        except BaseException:
            self.abort()
            raise

    # -- output

    def _emit_raw(self, data):
        if not data:
            return
        segs = self._segments
        n = len(data)
        if segs and segs[-1].kind == RAW:
            segs[-1].length += n
        else:
            segs.append(Segment.raw(len(self._raw), n))
        self._raw += data
        self._emitted += n

    def _take(self, end):
        """Consume _buf[_pos:end] and return it."""
        pos = self._pos
        if end <= pos:
            return b""
        buf = self._buf
        data = buf[pos:end]
        self._lf += data.count(b"\n")
        self._pos = end
        self._bol = buf[end - 1] == 10
        return data

    def _abs(self):
        return self._base + self._pos

    # -- the state machine

    def _run(self, eof):
        while True:
            if self._skip_line and not self._skip_rest():
                return
            if self._state == HEADERS:
                moved = self._run_headers(eof)
            else:
                moved = self._run_body(eof)
            if not moved:
                return

    def _skip_rest(self):
        """Consume the rest of a long delimiter line (kept raw); False: need more bytes."""
        j = self._buf.find(b"\n", self._pos)
        self._emit_raw(self._take(len(self._buf) if j < 0 else j + 1))
        if self._state == HEADERS:
            self._cur.header_offset = self._abs()
        if j < 0:
            return False
        self._skip_line = False
        return True

    def _delims(self):
        """Active boundaries as (table, lengths), or None ({} after MAX_PARTS).

        table maps a boundary to the innermost open multipart using it (RFC
        2046 §5.1.2 and Dovecot 2.3's boundary_find: the innermost wins a
        boundary used twice); lengths are the table's distinct boundary
        lengths, ascending.
        """
        if self._part_count >= MAX_PARTS:
            return None
        table = {}
        for p in self._open:                 # outermost first: inner ones overwrite
            if p._delim is not None and not p._closed:
                table[p._delim] = p
        if not table:
            return None
        return table, sorted({len(b) for b in table})

    @staticmethod
    def _match(line, delims, whole=True):
        """(part, is_close) if line is a delimiter line of one of delims, else None.

        RFC 2046 §5.1.1 (NOTE TO IMPLEMENTORS): the boundary need only begin
        the line after "--", so a line matches every boundary that prefixes
        it; as Dovecot 2.3 (lib-mail/message-parser.c boundary_find), the
        longest prefix wins, but an exact match ("--b" or "--b--" and nothing
        more) stops the search from the innermost part outwards.  A close
        delimiter has "--" right after the boundary.  ``whole`` is False when
        only the first bytes of a long line are known (no exact match is then
        possible).  The lookups are one per distinct boundary length that fits
        in the line, so the work per line is bounded by the line's length.
        """
        if line[:2] != b"--":
            return None
        table, lengths = delims
        content = line[2:]
        if content.endswith(b"\n"):
            content = content[:-2] if content.endswith(b"\r\n") else content[:-1]
        size = len(content)
        trailing = whole and size > 2 and content.endswith(b"--")
        found = []
        for n in lengths[:bisect.bisect_right(lengths, size)]:
            part = table.get(content[:n])
            if part is not None:
                found.append((part, n))
        if not found:
            return None
        exact = [f for f in found if whole and (f[1] == size or (trailing and f[1] == size - 2))]
        if exact:
            depth = max(f[0].depth for f in exact)
            found = [f for f in found if f[0].depth >= depth]
        part, n = max(found, key=lambda f: f[1])
        return part, content[n:n + 2] == b"--"

    def _run_headers(self, eof):
        """A header block ends at the empty line (RFC 5322 §2.1), as Dovecot 2.3 reads
        it: a line without a colon or with blanks before it (obsolete syntax, RFC 5322
        §4.5.3) is still a header line; a delimiter line of an enclosing multipart ends
        it early, and so does max_header_bytes (bounded memory)."""
        buf = self._buf
        delims = self._delims()
        while True:
            pos = self._pos
            j = buf.find(b"\n", pos)
            if j < 0:
                rest = len(buf) - pos
                if eof:
                    if rest:
                        line = buf[pos:]
                        m = self._match(line, delims) if delims else None
                        if m:
                            self._end_headers()
                            self._delimiter(pos, len(buf), m)
                            return True
                        if self._hdr_len + rest <= self._max_header:
                            self._header_line(len(buf))
                    self._end_headers()
                    return True
                if self._hdr_len + rest > self._max_header:
                    self._end_headers()
                    return True
                return False
            line = buf[pos:j + 1]
            if delims and line[:2] == b"--":
                m = self._match(line, delims)
                if m:
                    self._end_headers()
                    self._delimiter(pos, j + 1, m)
                    return True
            if line == b"\r\n" or line == b"\n":
                self._header_line(j + 1)
                self._end_headers()
                return True
            if self._hdr_len + len(line) > self._max_header:
                self._end_headers()
                return True
            self._header_line(j + 1)

    def _header_line(self, end):
        data = self._take(end)
        self._hdr.append(data)
        self._hdr_len += len(data)
        self._emit_raw(data)

    def _run_body(self, eof):
        buf = self._buf
        pos = self._pos
        end = len(buf)
        delims = self._delims()
        if not delims:
            if pos < end:
                self._deliver(end)
            return False
        if not eof and self._bol and end - pos < 2 and b"--".startswith(buf[pos:]):
            return False
        if self._bol and buf[pos:pos + 2] == b"--":
            cand = pos
        else:
            f = buf.find(b"\n--", pos)
            cand = f + 1 if f >= 0 else -1
        longest = delims[1][-1] + 2 + 256
        while cand >= 0:
            e = buf.find(b"\n", cand)
            if e < 0:
                if not eof and end - cand <= longest:
                    self._deliver(self._eol_start(cand))
                    return False
                line, line_end = buf[cand:], end
            else:
                line, line_end = buf[cand:e + 1], e + 1
            whole = len(line) <= longest
            if not whole:           # longer than any boundary: its first bytes decide
                line = line[:longest]
            m = self._match(line, delims, whole)
            if m:
                self._deliver(self._eol_start(cand))
                self._delimiter(cand, line_end, m)
                if e < 0 and not eof:
                    self._skip_line = True      # the rest of the delimiter line is its own
                return True
            f = buf.find(b"\n--", cand)
            cand = f + 1 if f >= 0 else -1
        safe = end
        if not eof:
            # hold back what may still become the line end before a delimiter
            if buf.endswith(b"\r"):
                safe = end - 1
            else:
                j = buf.rfind(b"\n", max(pos, end - 2))
                if j >= 0 and buf[j + 1:] in (b"", b"-"):
                    safe = j - 1 if j - 1 >= pos and buf[j - 1] == 13 else j
        if safe > pos:
            self._deliver(safe)
        return False

    def _eol_start(self, cand):
        """Start of the line end that precedes a delimiter line at cand."""
        buf, pos = self._buf, self._pos
        if cand > pos and buf[cand - 1] == 10:
            if cand - 1 > pos and buf[cand - 2] == 13:
                return cand - 2
            return cand - 1
        return cand

    def _deliver(self, end):
        data = self._take(end)
        if not data:
            return
        if self._state == BODY:
            self._cur._consumer.feed(data)
        else:
            self._emit_raw(data)

    def _delimiter(self, start, line_end, match):
        """A delimiter line at [start, line_end), owned by match[0]."""
        owner, close = match
        self._close_down_to(owner, self._abs())
        self._emit_raw(self._take(line_end))   # CRLF before it, the line, its CRLF
        if close:
            owner._closed = True
            self._cur = owner
            self._state = EPILOGUE
            return
        prefix = owner.number + "." if owner.number else ""
        child = Part(prefix + str(len(owner.children) + 1), self._abs(), owner)
        self._part_count += 1
        owner.children.append(child)
        self._cur = child
        self._state = HEADERS

    def _close_down_to(self, owner, end):
        """Close every entity nested inside owner (None: all) at offset end."""
        while self._state == HEADERS:
            self._end_headers()
        while self._open and self._open[-1] is not owner:
            part = self._open.pop()
            part.body_length = end - part.body_offset
            part.lines = self._lf - part._lf0
            if part._consumer is not None:
                part._consumer.finish()
                part._consumer = None
                if part._raw_start is not None:
                    part._raw_end = len(self._raw)

    def _finish(self):
        self._run(True)
        if self._pos < len(self._buf):      # cannot happen; keep exactness anyway
            self._deliver(len(self._buf))
        self._close_down_to(None, self._abs())

    # -- a header block is complete: set the entity up

    def _end_headers(self):
        part = self._cur
        here = self._abs()
        part.header_length = here - part.header_offset
        fields = H.split_fields(b"".join(self._hdr)) if self._hdr else []
        self._hdr = []
        self._hdr_len = 0
        self._content_headers(part, fields)
        if part.parent is None or part.parent.message is part:
            part.fields = fields
        part.body_offset = here
        part._lf0 = self._lf
        self._open.append(part)
        if part.depth >= MAX_DEPTH and (part.boundary is not None
                                        or part.content_type in CONTAINER_TYPES):
            part.opaque, part.boundary = True, None      # see MAX_DEPTH
        if part.boundary is not None:
            part._delim = part.boundary[:MAX_BOUNDARY]
            self._state = PREAMBLE
        elif part.content_type in CONTAINER_TYPES and not part.opaque:
            # RFC 3501 §6.4.5: the parts of the message in a message/rfc822 part N are
            # N.1, N.2...; when that part is itself a message's body (the top level,
            # or a message/rfc822 right inside another) its number is the body's, N.1
            outer = part.parent is None or part.parent.message is part
            nested = Part(part.imap_number if outer else part.number, here, part)
            self._part_count += 1
            part.message = nested
            self._cur = nested
            self._state = HEADERS
        else:
            self._state = BODY
            part._consumer = self._leaf(part)

    def _content_headers(self, part, fields):
        """Content-* fields of an entity (RFC 2045), read as Dovecot 2.3 does
        (headers.dovecot_*): first occurrence wins, except that a later
        Content-Disposition replaces one without parameters."""
        ct = H.first(fields, "content-type")
        params = []
        if ct is not None:
            t, s, params = H.dovecot_content_type(ct)
            part.type_raw, part.subtype_raw = t, s
            part.type = t.decode("latin-1").lower()
            part.subtype = s.decode("latin-1").lower() if s is not None else ""
            part.params = params
        elif part.parent is not None and part.parent.subtype == "digest" \
                and part.parent.type == "multipart":
            part.type, part.subtype = "message", "rfc822"     # RFC 2046 §5.1.5
        if part.type == "multipart" and part.subtype_raw is not None:
            # Dovecot takes the boundary from a plain (or continued, not
            # charset-encoded) parameter only: boundary*= is not a boundary
            for k, v in params:
                if k.lower() == b"boundary":
                    if v:
                        part.boundary = v.rstrip()
                    break
        cte = H.first(fields, "content-transfer-encoding")
        if cte is not None:
            main = H.dovecot_encoding(cte)
            if main is not None:
                part.encoding_raw = main
                part.encoding = main.decode("latin-1").lower()
        for name, value in fields:
            if name == "content-disposition" and not part.disposition_params:
                main, dparams = H.dovecot_disposition(value)
                if main is not None:
                    part.disposition = main
                    part.disposition_params = dparams
        for name, attr in (("content-id", "content_id"), ("content-description", "description"),
                           ("content-md5", "md5"), ("content-location", "location")):
            v = H.first(fields, name)
            if v is not None:
                setattr(part, attr, H.imap_value(v))
        lang = H.first(fields, "content-language")
        if lang is not None:
            part.language = H.dovecot_language(H.imap_value(lang))
        if part.type == "text":
            part._charset = H.param_value(params, "charset")

    def _leaf(self, part):
        """Classify a leaf and return its body consumer."""
        disp = part.disposition.lower() if part.disposition else b""
        filename = None
        if part.disposition is not None:
            filename = H.param_value(part.disposition_params, "filename")
        if filename is None and part.type_raw is not None:
            filename = H.param_value(part.params, "name")
        attachment = (filename is not None or disp == b"attachment"
                      or (part.type != "text" and part.type != "multipart"))
        if not attachment:
            if part.subtype in ("plain", "html") and part.type == "text":
                part._raw_start = len(self._raw)
                self._inline_text.append(part)
            return _Inline(self)
        index = len(self._attachments)
        info = AttachmentInfo(index, part.imap_number, filename,
                              self._safe_name(filename, index), part.content_type, part.encoding)
        part.attachment = index
        self._attachments.append(info)
        writer = _Writer(self._sink.open(info), info, part)
        self._writers.append(writer)
        enc = part.encoding
        if enc == "base64":
            return _Base64(self, writer)
        if enc in ("quoted-printable", "x-uuencode", "uuencode", "uue", "x-uue"):
            return _Decoded(self, writer, enc)
        return _Identity(self, writer)

    def _safe_name(self, filename, index):
        name = safe_filename(filename, index)
        stem, dot, ext = name.rpartition(".")
        if not stem:
            stem, dot, ext = name, "", ""
        candidate, n = name, 0
        while candidate.lower() in self._safe_names:
            n += 1
            suffix = "-%d" % n
            candidate = _cut(stem, SAFE_NAME_BYTES - len(suffix) - len((dot + ext).encode())) \
                + suffix + dot + ext
        self._safe_names.add(candidate.lower())
        return candidate

    # -- the result

    def _result(self):
        assert self._emitted == self._size, (self._emitted, self._size)
        plain, html = [], []
        for part in self._inline_text:
            data = bytes(self._raw[part._raw_start:part._raw_end])
            text = _decode_text(decode_all(part.encoding, data), part._charset)
            (plain if part.subtype == "plain" else html).append(text)
        parsed = ParsedMessage(
            raw=bytes(self._raw), segments=self._segments, size=self._size,
            parts=self._root, attachments=self._attachments,
            text_plain="\n".join(plain), text_html="\n".join(html),
            headers=_top_headers(self._root.fields or []))
        parsed.wire_forms = self._wire_forms
        return parsed


def _decode_text(data, charset):
    name = "us-ascii" if not charset else charset.strip().lower()
    codec = H.codec_for(name)
    if codec == "ascii":
        codec = "utf-8"     # 8-bit text labelled us-ascii is most often UTF-8
    try:
        return data.decode(codec, "replace")
    except Exception:
        return data.decode("utf-8", "replace")


def _top_headers(fields):
    out = {}
    for name in ("message-id", "date", "subject", "in-reply-to"):
        v = H.first(fields, name)
        out[name] = None if v is None else H.decode_words(H.unfold(v)).strip()
    for name in ("from", "to", "cc"):      # what SEARCH FROM/TO/CC and SORT read
        v = H.first(fields, name)
        out[name] = None if v is None else H.address_text(v)
    # message-ids hold no encoded words (RFC 2047 §5), and References may be long:
    # whole, for the store to keep its last ids
    v = H.first(fields, "references")
    out["references"] = None if v is None else H.to_text(H.unfold(v)).strip()
    out["date_parsed"] = None
    if out["date"]:
        try:
            dt = parsedate_to_datetime(out["date"])
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            out["date_parsed"] = dt
        except Exception:
            pass
    return out


# --- safe file names for object keys ------------------------------------------------

_UNSAFE = {c: "_" for c in list(range(32)) + [127] + list(range(0x80, 0xa0))}
_UNSAFE.update({ord("/"): "_", ord("\\"): "_"})


def _cut(text, limit):
    """text cut to at most `limit` bytes of UTF-8, on a character boundary."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text
    return raw[:max(limit, 0)].decode("utf-8", "ignore")


def safe_filename(filename, index):
    """A file name usable in an object key: no / or \\, no control characters,
    no leading dots, at most SAFE_NAME_BYTES of UTF-8; "attachment-N" if empty."""
    name = (filename or "").translate(_UNSAFE)
    name = name.encode("utf-8", "replace").decode("utf-8")
    name = name.strip().lstrip(".").strip()
    if not name.strip("._ "):
        name = ""
    if not name:
        return "attachment-%d" % (index + 1)
    if len(name.encode("utf-8")) > SAFE_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        if stem and len(ext.encode("utf-8")) <= 16:
            name = _cut(stem, SAFE_NAME_BYTES - 1 - len(ext.encode("utf-8"))).rstrip() + "." + ext
        else:
            name = _cut(name, SAFE_NAME_BYTES)
    return name
