"""Segments: how a stored message is rebuilt byte for byte.

A message is stored as ``raw`` (every byte that is not an attachment body
proven re-encodable, in order) plus a list of segments. Concatenating the
segments' bytes gives the message exactly as received (docs/DESIGN.md,
"Byte-exact messages").

JSON form (what goes to MySQL), one list per segment:

    ["r", raw_offset, length]                       RAW: raw[raw_offset:+length]
    ["i", index, dstart, dend, length]              ATTACHMENT, identity
    ["b", index, dstart, dend, L, eol, length]      ATTACHMENT, base64

``index`` is the attachment index in the message, ``[dstart, dend)`` a range
of the decoded object. Base64: lines of ``L`` characters (L % 4 == 0) each
followed by CRLF, except that the last line has no CRLF when ``eol`` is 0;
``dstart`` is always at a line boundary (a multiple of L*3/4). ``length`` is
the segment's length in the rebuilt message.
"""

RAW = "r"
IDENTITY = "i"
BASE64 = "b"


def base64_encoded_length(nbytes, line, eol):
    """Length of nbytes of data encoded in base64 lines of `line` chars with CRLF."""
    per_line = line // 4 * 3
    full, rem = divmod(nbytes, per_line)
    lines = full + (1 if rem else 0)
    chars = full * line + ((rem + 2) // 3 * 4 if rem else 0)
    total = chars + 2 * lines
    if lines and not eol:
        total -= 2
    return total


class Segment:
    """One piece of the rebuilt message; `length` is its size there."""

    __slots__ = ("kind", "raw_offset", "index", "dstart", "dend", "line", "eol", "length")

    def __init__(self, kind, raw_offset=0, index=0, dstart=0, dend=0, line=0, eol=True, length=0):
        self.kind = kind
        self.raw_offset = raw_offset
        self.index = index
        self.dstart = dstart
        self.dend = dend
        self.line = line
        self.eol = eol
        self.length = length

    @classmethod
    def raw(cls, raw_offset, length):
        return cls(RAW, raw_offset=raw_offset, length=length)

    @classmethod
    def identity(cls, index, dstart, dend):
        return cls(IDENTITY, index=index, dstart=dstart, dend=dend, length=dend - dstart)

    @classmethod
    def base64(cls, index, dstart, dend, line, eol):
        length = base64_encoded_length(dend - dstart, line, eol)
        return cls(BASE64, index=index, dstart=dstart, dend=dend, line=line, eol=eol, length=length)

    def to_json(self):
        if self.kind == RAW:
            return [RAW, self.raw_offset, self.length]
        if self.kind == IDENTITY:
            return [IDENTITY, self.index, self.dstart, self.dend, self.length]
        return [BASE64, self.index, self.dstart, self.dend, self.line, 1 if self.eol else 0, self.length]

    @classmethod
    def from_json(cls, item):
        kind = item[0]
        if kind == RAW:
            return cls.raw(int(item[1]), int(item[2]))
        if kind == IDENTITY:
            seg = cls.identity(int(item[1]), int(item[2]), int(item[3]))
        elif kind == BASE64:
            seg = cls.base64(int(item[1]), int(item[2]), int(item[3]), int(item[4]), bool(item[5]))
        else:
            raise ValueError("unknown segment kind %r" % (kind,))
        if seg.length != int(item[-1]):
            raise ValueError("segment length mismatch: %r" % (item,))
        return seg

    def __eq__(self, other):
        return isinstance(other, Segment) and self.to_json() == other.to_json()

    def __repr__(self):
        return "Segment(%r)" % (self.to_json(),)


def segments_to_json(segments):
    """JSON-friendly list of lists for a list of Segment."""
    return [seg.to_json() for seg in segments]


def segments_from_json(items):
    """Inverse of segments_to_json."""
    return [Segment.from_json(item) for item in items]
