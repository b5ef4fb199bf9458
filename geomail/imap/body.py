"""Body sections of a stored message (RFC 3501 §6.4.5): byte ranges, never a re-parse.

The part tree stored at delivery (``message_contents.parts``) gives every
entity's header and body offsets in the content; the trace headers the server
prepended come first in BODY[] and BODY[HEADER].  Ranges are streamed from
``geomail.reader.StoredMessage`` (MySQL raw bytes + S3 attachment ranges).
"""

from geomail.mime.decoders import Base64Decoder, Rfc2045QPDecoder
from geomail.mime.parser import CONTAINER_TYPES, Part
from geomail.reader import StoredMessage
from geomail.imap import response as R
from geomail.imap.errors import CommandError
from geomail.imap.response import Literal

# RFC 3516 §4.3: the transfer encodings BINARY can undo; any other is NO [UNKNOWN-CTE].
# 7bit, 8bit and binary are identities (RFC 2045 §6.2).
DECODERS = {"7bit": None, "8bit": None, "binary": None,
            "base64": Base64Decoder, "quoted-printable": Rfc2045QPDecoder}


class Section:
    """A parsed section spec: part numbers, then '', HEADER, HEADER.FIELDS[.NOT], TEXT or MIME."""

    __slots__ = ("part", "text", "fields", "spec")

    def __init__(self, part, text, fields, spec):
        self.part = part          # "" or "1.2"
        self.text = text          # "", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"
        self.fields = fields      # [str] for HEADER.FIELDS
        self.spec = spec          # as echoed in the response, e.g. b"1.HEADER.FIELDS (From)"


class Message:
    """One message's bytes; loads its content row on first use."""

    def __init__(self, context, row, content=None):
        self.context = context
        self.row = row
        self._stored = None
        self._tree = None
        if content is not None:      # loaded with its neighbours (store.contents.load_contents)
            self._stored = StoredMessage(context, row["trace_headers"], content)

    @property
    def stored(self):
        if self._stored is None:
            self._stored = StoredMessage.load(self.context, self.row["content_id"],
                                              self.row["trace_headers"])
        return self._stored

    @property
    def trace_len(self):
        return len(self.row["trace_headers"] or b"")

    def tree(self):
        if self._tree is None:
            parts = self.stored.content.get("parts")
            self._tree = Part.from_json(parts) if parts else None
        return self._tree

    def whole(self):
        """(start, end) of the whole message in stored offsets (trace included)."""
        return 0, self.trace_len + self.row["content_size"]

    def _range(self, section):
        """(start, end) in message offsets, or None when the part does not exist."""
        t = self.trace_len
        header_end = t + self.row["header_size"]
        if not section.part:
            if section.text == "":
                return self.whole()
            if section.text.startswith("HEADER"):
                return 0, header_end
            if section.text == "TEXT":
                return header_end, self.whole()[1]
            return None
        tree = self.tree()
        if tree is None:
            return None
        node = tree.find(section.part)
        if node is None:
            return None
        if section.text == "":
            return t + node.body_offset, t + node.body_offset + node.body_length
        if section.text == "MIME":
            return t + node.header_offset, t + node.header_offset + node.header_length
        nested = node.message
        if nested is None:
            return None                    # HEADER/TEXT of a part that is not message/rfc822
        if section.text.startswith("HEADER"):
            return t + nested.header_offset, t + nested.header_offset + nested.header_length
        return t + nested.body_offset, t + nested.body_offset + nested.body_length

    def section(self, section, partial=None):
        """A Literal with the section (sliced by partial (offset, length)), or None (NIL)."""
        span = self._range(section)
        if span is None:
            return None
        start, end = span
        if section.text.startswith("HEADER.FIELDS"):
            block = b"".join(self.stored.read(start, end))
            data = filter_fields(block, section.fields, section.text.endswith(".NOT"))
            if partial is not None:
                data = data[partial[0]:partial[0] + partial[1]]
            return Literal(len(data), [data])
        if partial is not None:
            offset, length = partial
            start = min(start + offset, end)
            end = min(start + length, end)
        return Literal(end - start, self.stored.read(start, end))

    def binary(self, part):
        """The Binary of BINARY[part] (RFC 3516), or None when the part does not exist.

        Raises CommandError [UNKNOWN-CTE] for a transfer encoding it cannot undo.
        """
        if not part:
            return Binary(self, None, *self.whole())
        tree = self.tree()
        node = tree.find(part) if tree is not None else None
        if node is None:
            return None
        t = self.trace_len
        return Binary(self, node, t + node.body_offset, t + node.body_offset + node.body_length)


class Binary:
    """One section after Content-Transfer-Encoding decoding (RFC 3516 §4.2), streamed.

    Three sources: bytes served as stored (the whole message, a multipart or
    message/rfc822 body, whose encoding RFC 2046 §5.1.1/§5.2.1 restricts to
    identities, and 7bit/8bit/binary leaves); an attachment's decoded object
    in the blob store (stored decoded at delivery: no decoding, ranged reads);
    and the stored encoded body decoded chunk by chunk (inline parts), never
    held whole.
    """

    CHUNK = 64 * 1024

    def __init__(self, msg, node, start, end):
        self.msg = msg
        self.start, self.end = start, end
        self.decoder = None
        self.attachment = None
        self.nul = None             # known at delivery for an attachment's object
        if node is None or node.type == "multipart" or node.message is not None \
                or node.content_type in CONTAINER_TYPES:
            return
        encoding = node.encoding
        if encoding not in DECODERS:
            raise CommandError(f"Unknown Content-Transfer-Encoding {encoding[:40]}", R.UNKNOWN_CTE)
        self.decoder = DECODERS[encoding]
        entries = msg.stored.content["attachments"]
        # a quoted-printable attachment's object was decoded leniently (blanks at line
        # ends kept) and its encoded form is stored anyway: decode that, as RFC 2045 says
        if encoding == "base64" and node.attachment is not None and node.attachment < len(entries):
            self.attachment = entries[node.attachment]
            self.nul = node.nul

    def size(self):
        """The decoded size (BINARY.SIZE): known for stored bytes and objects, else counted."""
        if self.attachment is not None:
            return int(self.attachment["size"])
        if self.decoder is None:
            return self.end - self.start
        return sum(len(chunk) for chunk in self._decoded(0, None))

    def read(self, offset=0, length=None):
        """Yield the decoded bytes [offset, offset + length) (length None: to the end)."""
        if self.attachment is not None:
            size = int(self.attachment["size"])
            stop = size if length is None else min(size, offset + length)
            return self.msg.stored.read_attachment(self.attachment["index"], min(offset, stop), stop)
        if self.decoder is None:
            start = min(self.start + offset, self.end)
            stop = self.end if length is None else min(start + length, self.end)
            return self.msg.stored.read(start, stop)
        return self._decoded(offset, None if length is None else offset + length)

    def _decoded(self, start, stop):
        """Decode the stored body from its beginning, yielding only [start, stop)."""
        decoder = self.decoder()
        pos = 0
        pieces = self.msg.stored.read(self.start, self.end)
        for chunk in _then(pieces, decoder):
            n = len(chunk)
            if pos + n > start and chunk:
                yield bytes(chunk[max(start - pos, 0):n if stop is None else max(stop - pos, 0)])
            pos += n
            if stop is not None and pos >= stop:
                return

    def literal(self, partial=None):
        """The Literal of the answer: literal8 when the data holds NUL, else a plain literal
        (RFC 3516 §4.3: data without NUL SHOULD be a string, as imaptest's
        fetch-binary-mime-base64 expects).  An attachment's NUL was noted at delivery
        (for a partial fetch of it, NUL anywhere in the object counts); otherwise, and for
        objects stored before that, the answer is read once to know."""
        offset, length = partial if partial is not None else (0, None)
        if self.attachment is not None and self.nul is not None:
            total = int(self.attachment["size"])
            stop = total if length is None else min(total, offset + length)
            size, binary = max(0, stop - offset), self.nul
        else:
            size, binary = 0, False
            for chunk in self.read(offset, length):      # one pass: size and NUL
                size += len(chunk)
                binary = binary or b"\0" in bytes(chunk)  # chunks may be memoryviews
        return Literal(size, self.read(offset, length), binary=binary)


def _then(pieces, decoder):
    """Decoded chunks of a stream of encoded pieces, the decoder's tail last."""
    for piece in pieces:
        out = decoder.feed(piece)
        if out:
            yield out
    tail = decoder.finish()
    if tail:
        yield tail


def split_header(block):
    """[(lower-case name, raw field bytes with CRLF)] of a header block (blank line excluded)."""
    fields = []
    for line in block.splitlines(keepends=True):
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1].append(line)
        else:
            name = line.split(b":", 1)[0].strip().lower() if b":" in line else b""
            fields.append((name, [line]))
    return [(name.decode("latin-1"), b"".join(lines)) for name, lines in fields]


def filter_fields(block, names, exclude):
    """HEADER.FIELDS / HEADER.FIELDS.NOT: the chosen fields then a blank line (RFC 3501 §6.4.5)."""
    wanted = {n.lower() for n in names}
    out = [raw for name, raw in split_header(block) if (name in wanted) != exclude]
    return b"".join(out) + b"\r\n"
