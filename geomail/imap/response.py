"""Responses: every quoting decision, the response codes, and the writer.

Like mox's pack.go, this is the one place that decides whether a string goes
out as an atom, a quoted string, a literal or NIL (RFC 3501 §4.3, §9).  The
writer buffers small responses and streams big literals chunk by chunk.
"""

from geomail.imap import mutf7

# Response codes (RFC 3501 §7.1, RFC 5530, and the extensions' own), one table.
ALERT = "ALERT"
PARSE = "PARSE"
READ_ONLY = "READ-ONLY"
READ_WRITE = "READ-WRITE"
TRYCREATE = "TRYCREATE"
UIDNEXT = "UIDNEXT"
UIDVALIDITY = "UIDVALIDITY"
UNSEEN = "UNSEEN"
PERMANENTFLAGS = "PERMANENTFLAGS"
HIGHESTMODSEQ = "HIGHESTMODSEQ"
CAPABILITY = "CAPABILITY"
CLOSED = "CLOSED"                         # RFC 7162 §3.2.11
MODIFIED = "MODIFIED"                     # RFC 7162 §3.1.3
APPENDUID = "APPENDUID"                   # RFC 4315
COPYUID = "COPYUID"
UIDNOTSTICKY = "UIDNOTSTICKY"
TOOBIG = "TOOBIG"                         # RFC 4469 / RFC 7889
AUTHENTICATIONFAILED = "AUTHENTICATIONFAILED"  # RFC 5530 from here
AUTHORIZATIONFAILED = "AUTHORIZATIONFAILED"
PRIVACYREQUIRED = "PRIVACYREQUIRED"
UNAVAILABLE = "UNAVAILABLE"
SERVERBUG = "SERVERBUG"
CANNOT = "CANNOT"
NONEXISTENT = "NONEXISTENT"
ALREADYEXISTS = "ALREADYEXISTS"
INUSE = "INUSE"
LIMIT = "LIMIT"
CLIENTBUG = "CLIENTBUG"
EXPUNGEISSUED = "EXPUNGEISSUED"
BADCHARSET = "BADCHARSET"
USEATTR = "USEATTR"                       # RFC 6154
OVERQUOTA = "OVERQUOTA"                   # RFC 5530, RFC 9208
NOPERM = "NOPERM"
UNKNOWN_CTE = "UNKNOWN-CTE"               # RFC 3516 §4.3
COMPRESSIONACTIVE = "COMPRESSIONACTIVE"   # RFC 4978 §3
BADURL = "BADURL"                         # RFC 4469 §3
MAILBOXID = "MAILBOXID"                   # RFC 8474 §4.1
NOUPDATE = "NOUPDATE"                     # RFC 5267 §4.2

NIL = b"NIL"
_ATOM_OK = frozenset(bytes(c for c in range(0x21, 0x7f) if c not in b'(){ %*"\\]'))
_QUOTABLE = frozenset(range(1, 128)) - {0x0a, 0x0d}
MAX_QUOTED = 1000


def quoted(value):
    """A quoted string (caller knows it is quotable)."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def string(value):
    """RFC 3501 string: quoted when it can be, else a literal."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if len(value) <= MAX_QUOTED and all(c in _QUOTABLE for c in value):
        return quoted(value)
    return b"{%d}\r\n" % len(value) + value


def nstring(value):
    return NIL if value is None else string(value)


def astring(value):
    """An atom when it is one (and not NIL), else a string."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if value and value.upper() != b"NIL" and all(c in _ATOM_OK for c in value):
        return value
    return string(value)


def mailbox(name, utf8=False):
    """A mailbox name on the wire: modified UTF-7 (RFC 3501 §5.1.3), as astring; with
    ``utf8`` (UTF8=ACCEPT, RFC 6855 §3, or IMAP4rev2, RFC 9051 §5.1) the UTF-8 name
    itself, quoted where it can be (utf8-quoted)."""
    if utf8:
        return _utf8_mailbox(name)
    encoded = mutf7.encode(name).encode("ascii")
    if encoded.upper() == b"INBOX":
        return b"INBOX"
    return quoted(encoded) if not all(c in _ATOM_OK for c in encoded) or not encoded \
        else encoded


def _utf8_mailbox(name):
    data = name.encode("utf-8")
    if data.upper() == b"INBOX":
        return b"INBOX"
    if data and all(c in _ATOM_OK for c in data):
        return data
    if len(data) <= MAX_QUOTED and all(c >= 0x80 or c in _QUOTABLE for c in data):
        return quoted(data)
    return b"{%d}\r\n" % len(data) + data


def flag_list(flags):
    return b"(" + " ".join(flags).encode("utf-8") + b")"


def code_text(code, args=None):
    if code is None:
        return ""
    return f"[{code}] " if args is None else f"[{code} {args}] "


class Literal:
    """A literal to stream: its size and an iterable of byte chunks."""

    __slots__ = ("size", "chunks", "binary")

    def __init__(self, size, chunks, binary=False):
        self.size = size
        self.chunks = chunks
        self.binary = binary


class Writer:
    """Buffers output for the connection; big literals go out chunk by chunk."""

    FLUSH_AT = 256 * 1024       # a FETCH of many messages: few sends (each a syscall)

    def __init__(self, conn):
        self.conn = conn
        self.buffer = bytearray()
        # For rollback(): where in the buffer the response being built began, whether
        # part of it has been sent already, and whether a literal is being written.
        self.boundary = 0
        self.torn = False
        self.in_literal = False

    def write(self, data):
        """Bytes of a response; a write ending in CRLF outside a literal ends a response."""
        self.buffer += data
        if not self.in_literal and data[-2:] == b"\r\n":
            self._ended()
        if len(self.buffer) >= self.FLUSH_AT:
            self.flush()

    def line(self, data):
        """One whole response line (bytes without CRLF)."""
        self.buffer += data
        self.buffer += b"\r\n"
        self._ended()
        if len(self.buffer) >= self.FLUSH_AT:
            self.flush()

    def _ended(self):
        self.boundary = len(self.buffer)
        self.torn = False

    def rollback(self):
        """Drop the unfinished response of a failed command; False if part of it was sent."""
        self.in_literal = False
        if self.torn:
            return False
        del self.buffer[self.boundary:]
        return True

    def literal(self, lit):
        """Write a Literal: header, then its chunks; checks the announced size."""
        self.buffer += (b"~{%d}\r\n" if lit.binary else b"{%d}\r\n") % lit.size
        sent = 0
        self.in_literal = True
        flush_at = self.FLUSH_AT
        for chunk in lit.chunks:
            size = len(chunk)
            sent += size
            if size > flush_at:
                self.flush()
                self.torn = True
                self.conn.write(chunk)
            else:                     # write() without its end-of-response test
                self.buffer += chunk
                if len(self.buffer) >= flush_at:
                    self.flush()
        self.in_literal = False
        if sent != lit.size:
            # the announced size was wrong: the stream is broken beyond repair
            raise RuntimeError(f"literal announced {lit.size} bytes, produced {sent}")

    def flush(self):
        if self.buffer:
            if self.boundary < len(self.buffer):
                self.torn = True          # an unfinished response goes out
            data, self.buffer = self.buffer, bytearray()    # sent as it is, not copied
            self.boundary = 0
            self.conn.write(data)

