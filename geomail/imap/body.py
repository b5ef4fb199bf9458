"""Body sections of a stored message (RFC 3501 §6.4.5): byte ranges, never a re-parse.

The part tree stored at delivery (``message_contents.parts``) gives every
entity's header and body offsets in the content; the trace headers the server
prepended come first in BODY[] and BODY[HEADER].  Ranges are streamed from
``geomail.reader.StoredMessage`` (MySQL raw bytes + S3 attachment ranges).
"""

from geomail.mime.parser import Part
from geomail.reader import StoredMessage
from geomail.imap.response import Literal


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
