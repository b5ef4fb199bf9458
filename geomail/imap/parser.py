"""The IMAP command parser (RFC 3501 §9), reading from the connection as it goes.

Like mox's parse.go, the parser is pulled by the command handlers: the
session reads the first line and the command name, the handler asks for
its arguments one by one, and a literal (``{n}`` synchronising, answered
with ``+``; ``{n+}`` non-synchronising, RFC 7888 LITERAL+; ``~{n}``, RFC 3516
literal8, which may hold NUL, in APPEND only) is read from the connection
only when the handler reaches it.  APPEND can therefore stream
its message literal instead of holding it in memory; every other literal is
small and bounded by MAX_SMALL_LITERAL.

Syntax errors raise ``ParseError`` (answered with BAD and a reason); the
session then calls ``discard()`` to skip whatever is left of the command.
"""

import datetime
import re

from geomail.netio import LineTooLong

MAX_LINE = 64 * 1024             # one line of a command (a literal continues it)
MAX_SMALL_LITERAL = 1024 * 1024  # literals other than APPEND's message
READ_CHUNK = 64 * 1024

# RFC 3501 §9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials
_ATOM_SPECIALS = set(b'(){ %*"\\]') | set(range(0x20)) | {0x7f}
_ATOM_CHARS = bytes(c for c in range(0x21, 0x7f) if c not in _ATOM_SPECIALS)
_ASTRING_CHARS = _ATOM_CHARS + b"]"
_LIST_CHARS = _ASTRING_CHARS + b"%*"
_TAG_CHARS = bytes(c for c in _ASTRING_CHARS if c != ord("+"))
_LITERAL_RE = re.compile(rb"(~?)\{(\d{1,20})(\+?)\}$")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


class ParseError(Exception):
    """A syntax error: the command gets BAD with this text."""


class LiteralTooBig(Exception):
    """A literal above the limit. ``synchronizing``: the client sends nothing until '+'."""

    def __init__(self, size, limit, synchronizing):
        super().__init__(f"literal of {size} bytes exceeds the limit of {limit}")
        self.size = size
        self.limit = limit
        self.synchronizing = synchronizing


def _span(data, pos, allowed):
    """Index of the first byte at or after pos not in allowed."""
    end = pos
    n = len(data)
    while end < n and data[end] in allowed:
        end += 1
    return end


_ATOM_SET = frozenset(_ATOM_CHARS)
_ASTRING_SET = frozenset(_ASTRING_CHARS)
_LIST_SET = frozenset(_LIST_CHARS)
_TAG_SET = frozenset(_TAG_CHARS)


class SequenceSet:
    """RFC 3501 §9 sequence-set: ranges of numbers, where None stands for ``*``.

    ``saved`` is the ``$`` of RFC 5182 (the last saved SEARCH result).
    """

    __slots__ = ("ranges", "saved")

    def __init__(self, ranges, saved=False):
        self.ranges = ranges
        self.saved = saved

    def resolve(self, largest):
        """[(low, high)] with ``*`` replaced by largest and each range ordered."""
        out = []
        for low, high in self.ranges:
            low = largest if low is None else low
            high = largest if high is None else high
            if low > high:
                low, high = high, low
            out.append((low, high))
        return out

    def contains(self, number, largest):
        return any(low <= number <= high for low, high in self.resolve(largest))

    def __repr__(self):
        if self.saved:
            return "SequenceSet($)"
        def one(x):
            return "*" if x is None else str(x)
        return "SequenceSet(%s)" % ",".join(one(a) if a == b else f"{one(a)}:{one(b)}"
                                            for a, b in self.ranges)


class Parser:
    """One command at a time from ``conn`` (a geomail.netio.Connection)."""

    def __init__(self, conn, continuation, max_literal, max_line=MAX_LINE):
        self.conn = conn
        self.continuation = continuation   # called to send "+ Ready" before a sync literal
        self.max_literal = max_literal
        self.max_line = max_line
        self.line = b""
        self.pos = 0
        self.utf8 = False        # UTF8=ACCEPT enabled: names are UTF-8 (RFC 6855 §3)

    # -- lines ------------------------------------------------------------------

    def _readline(self):
        line = self.conn.readline(self.max_line)
        if line.endswith(b"\r\n"):
            line = line[:-2]
        elif line.endswith(b"\n"):
            line = line[:-1]
        self.line = line
        self.pos = 0

    def next_line(self):
        """Read the first line of the next command (LineTooLong propagates)."""
        self._readline()
        return self.line

    def rest(self):
        """What is left of the current line (for IDLE's DONE and AUTHENTICATE responses)."""
        return self.line[self.pos:]

    def discard(self):
        """Skip the rest of a failed command, draining non-synchronising literals."""
        while True:
            match = _LITERAL_RE.search(self.line, self.pos)
            self.pos = len(self.line)
            if match is None or match.group(3) != b"+":
                return
            self._drain(int(match.group(2)))
            try:
                self._readline()
            except LineTooLong:
                return

    def _drain(self, size):
        while size > 0:
            size -= len(self.conn.read_some(min(size, READ_CHUNK)))

    # -- primitives -------------------------------------------------------------

    def at_end(self):
        return self.pos >= len(self.line)

    def peek(self, char=None):
        """The next byte as a one-character str ('' at end), or whether it is ``char``."""
        c = chr(self.line[self.pos]) if self.pos < len(self.line) else ""
        return c if char is None else c == char

    def take(self, text):
        """Consume ``text`` (case-insensitive) if it comes next; returns whether it did."""
        end = self.pos + len(text)
        if self.line[self.pos:end].upper() == text.upper().encode("ascii"):
            self.pos = end
            return True
        return False

    def expect(self, text, what=None):
        if not self.take(text):
            raise ParseError(f"expected {what or repr(text)} {self._where()}")

    def sp(self):
        if not self.take(" "):
            raise ParseError(f"expected space {self._where()}")

    def end(self):
        if not self.at_end():
            raise ParseError(f"unexpected {self._snippet()!r} at end of command")

    def _snippet(self):
        return self.line[self.pos:self.pos + 20].decode("utf-8", "replace")

    def _where(self):
        return f"at {self._snippet()!r}" if not self.at_end() else "at end of line"

    # -- tokens -----------------------------------------------------------------

    def tag(self):
        end = _span(self.line, self.pos, _TAG_SET)
        if end == self.pos:
            raise ParseError("missing or invalid tag")
        tag = self.line[self.pos:end].decode("ascii")
        self.pos = end
        return tag

    def atom(self, what="atom"):
        end = _span(self.line, self.pos, _ATOM_SET)
        if end == self.pos:
            raise ParseError(f"expected {what} {self._where()}")
        value = self.line[self.pos:end].decode("ascii")
        self.pos = end
        return value

    def number(self, nonzero=False):
        end = self.pos
        while end < len(self.line) and 0x30 <= self.line[end] <= 0x39:
            end += 1
        if end == self.pos or end - self.pos > 20:
            raise ParseError(f"expected number {self._where()}")
        value = int(self.line[self.pos:end])
        if nonzero and value == 0:
            raise ParseError("number must not be zero")
        if value >= 2 ** 63:
            raise ParseError("number too large")
        self.pos = end
        return value

    def number32(self, nonzero=False):
        value = self.number(nonzero)
        if value >= 2 ** 32:
            raise ParseError("number too large")
        return value

    def quoted(self):
        """RFC 3501 quoted string; returns bytes."""
        if not self.take('"'):
            raise ParseError(f"expected quoted string {self._where()}")
        out = bytearray()
        line = self.line
        i = self.pos
        while True:
            if i >= len(line):
                raise ParseError("unterminated quoted string")
            c = line[i]
            if c == 0x22:
                self.pos = i + 1
                return bytes(out)
            if c == 0x5c:
                i += 1
                if i >= len(line) or line[i] not in (0x22, 0x5c):
                    raise ParseError("invalid escape in quoted string")
                c = line[i]
            elif c in (0x0d, 0x0a, 0):
                raise ParseError("invalid character in quoted string")
            out.append(c)
            i += 1

    def _literal_header(self):
        """If a literal marker ends the line here, its (size, synchronizing, literal8)
        and consume it."""
        match = _LITERAL_RE.match(self.line, self.pos)
        if match is None:
            return None
        self.pos = len(self.line)
        return int(match.group(2)), match.group(3) != b"+", match.group(1) == b"~"

    def literal(self, limit=MAX_SMALL_LITERAL):
        """A literal read whole (small ones only); returns bytes."""
        size = self._start_literal(limit)
        data = self.conn.read_exact(size)
        self._readline()
        return data

    def literal_stream(self, limit, literal8=False):
        """(size, chunks) of a literal that is streamed (APPEND); chunks must be consumed.
        ``literal8``: a ``~{n}`` literal is accepted too (RFC 3516 §4.4)."""
        size = self._start_literal(limit, literal8)
        return size, self._chunks(size)

    def _start_literal(self, limit, literal8=False):
        """Consume a literal marker, check its size, send "+" if it synchronises; its size."""
        marker = self.pos
        header = self._literal_header()
        if header is None:
            raise ParseError(f"expected literal {self._where()}")
        size, sync, eight = header
        if eight and not literal8:
            # RFC 3516 §6: literal8 is a form of APPEND's message only; the marker is
            # left unread so that discard() drains a non-synchronising one
            self.pos = marker
            raise ParseError("literal8 is allowed only for the message of APPEND")
        # literal_budget: bytes the literals of this command may still take in all
        # (set by the session before login; None: only the per-literal limit).
        budget = getattr(self, "literal_budget", None)
        if budget is not None and budget < limit:
            limit = budget
        if size > limit:
            raise LiteralTooBig(size, limit, sync)
        if budget is not None:
            self.literal_budget = budget - size
        if sync:
            self.continuation()
        return size

    def _chunks(self, size):
        remaining = size
        while remaining > 0:
            data = self.conn.read_some(min(remaining, READ_CHUNK))
            remaining -= len(data)
            yield data
        self._readline()

    def is_literal(self):
        return self.peek("{") or (self.peek("~") and self.line[self.pos + 1:self.pos + 2] == b"{")

    def string(self):
        """quoted / literal, as bytes."""
        if self.peek('"'):
            return self.quoted()
        if self.is_literal():
            return self.literal()
        raise ParseError(f"expected string {self._where()}")

    def astring(self):
        """atom / string (bytes)."""
        if self.peek('"') or self.is_literal():
            return self.string()
        end = _span(self.line, self.pos, _ASTRING_SET)
        if end == self.pos:
            raise ParseError(f"expected string {self._where()}")
        value = self.line[self.pos:end]
        self.pos = end
        return value

    def astring_str(self):
        return _utf8(self.astring())

    def nstring(self):
        if self.take("NIL"):
            return None
        return self.string()

    def list_mailbox(self):
        """RFC 3501 list-mailbox: 1*list-char / string."""
        if self.peek('"') or self.is_literal():
            return _utf8(self.string())
        end = _span(self.line, self.pos, _LIST_SET)
        if end == self.pos:
            raise ParseError(f"expected mailbox pattern {self._where()}")
        value = self.line[self.pos:end]
        self.pos = end
        return _utf8(value)

    def flag(self):
        """\\Flag or keyword; returns str (system flags keep their backslash)."""
        if self.take("\\"):
            if self.take("*"):
                return "\\*"
            return "\\" + self.atom("flag")
        return self.atom("flag keyword")

    def flag_list(self):
        """'(' [flag *(SP flag)] ')'."""
        self.expect("(")
        flags = []
        while not self.take(")"):
            if flags:
                self.sp()
            flags.append(self.flag())
        return flags

    def paren_list(self, item):
        """'(' item *(SP item) ')' with item a callable; returns the list."""
        self.expect("(")
        items = [item()]
        while not self.take(")"):
            self.sp()
            items.append(item())
        return items

    def seq_number(self):
        if self.take("*"):
            return None
        return self.number32(nonzero=True)

    def sequence_set(self):
        """RFC 3501 sequence-set, or ``$`` (RFC 5182)."""
        if self.take("$"):
            return SequenceSet([], saved=True)
        ranges = []
        while True:
            low = self.seq_number()
            high = low
            if self.take(":"):
                high = self.seq_number()
            ranges.append((low, high))
            if not self.take(","):
                return SequenceSet(ranges)

    def date(self):
        """RFC 3501 date: date-text or DQUOTE date-text DQUOTE; returns datetime.date."""
        quoted = self.take('"')
        text = self.line[self.pos:]
        match = re.match(rb"(\d{1,2})-([A-Za-z]{3})-(\d{4})", text)
        if not match:
            raise ParseError(f"expected date (dd-Mon-yyyy) {self._where()}")
        self.pos += match.end()
        if quoted:
            self.expect('"')
        try:
            month = _MONTHS.index(match.group(2).decode().lower()) + 1
            return datetime.date(int(match.group(3)), month, int(match.group(1)))
        except ValueError:
            raise ParseError("invalid date") from None

    def date_time(self):
        """RFC 3501 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz"; returns aware datetime."""
        match = re.match(rb'"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"',
                         self.line[self.pos:])
        if not match:
            raise ParseError(f"expected date-time {self._where()}")
        self.pos += match.end()
        try:
            month = _MONTHS.index(match.group(2).decode().lower()) + 1
            offset = datetime.timedelta(hours=int(match.group(8)), minutes=int(match.group(9)))
            if match.group(7) == b"-":
                offset = -offset
            value = datetime.datetime(int(match.group(3)), month, int(match.group(1).strip()),
                                      int(match.group(4)), int(match.group(5)), int(match.group(6)),
                                      tzinfo=datetime.timezone(offset))
            value.astimezone(datetime.timezone.utc)   # 31-Dec-9999 ... -0100 is past year 9999
            return value
        except (ValueError, OverflowError):
            raise ParseError("invalid date-time") from None


def _utf8(value):
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("string is not valid UTF-8") from None
