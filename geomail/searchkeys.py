"""The SEARCH key tree: what a search asks for, as plain data (RFC 3501 §6.4.4).

``geomail.imap.search`` parses a search program into these nodes, having
resolved everything only a session knows (sequence numbers and ``$`` to UID
ranges, \\Recent to the session's UIDs, the charset to text); a store backend
compiles the tree (``geomail.store.search``).  So the protocol never writes
SQL and a backend never sees the parser, as in mox (``imapserver/search.go``
evaluates what ``parse.go`` built) and Dovecot's ``mail-search`` trees.
"""

from dataclasses import dataclass

from geomail import flags

FLAG_NAMES = flags.COLUMNS   # the system flags' columns (geomail/flags.py)
ADDRESS_FIELDS = ("from", "to", "cc", "subject")                  # indexed header fields


@dataclass(frozen=True)
class All:
    """Every message."""


@dataclass(frozen=True)
class Nothing:
    """No message (an empty sequence set, a flag the store does not keep)."""


@dataclass(frozen=True)
class And:
    keys: tuple


@dataclass(frozen=True)
class Or:
    left: object
    right: object


@dataclass(frozen=True)
class Not:
    key: object


@dataclass(frozen=True)
class Uids:
    """UID ranges [(low, high)], already resolved by the session."""
    ranges: tuple


@dataclass(frozen=True)
class Flag:
    """A system flag (one of FLAG_NAMES) set or not."""
    name: str
    set: bool = True


@dataclass(frozen=True)
class Keyword:
    """A keyword (not a system flag) set on the message."""
    name: str


@dataclass(frozen=True)
class Size:
    """RFC822.SIZE larger (``larger=True``) or smaller than ``octets``."""
    octets: int
    larger: bool


@dataclass(frozen=True)
class Date:
    """``field``: "internal" (INTERNALDATE, by UTC day), "sent" (the Date: header's own
    calendar day) or "saved" (the save date, RFC 8514 §4.2, by UTC day); ``relation``:
    "before", "on" or "since"; ``day``: datetime.date."""
    field: str
    relation: str
    day: object


@dataclass(frozen=True)
class Address:
    """FROM/TO/CC/SUBJECT (one of ADDRESS_FIELDS): a substring of the decoded field."""
    field: str
    value: str


@dataclass(frozen=True)
class Header:
    """HEADER field value (and BCC): a header line of that field containing value
    (empty value: the field is present), in the header block or the trace headers."""
    field: str
    value: str


@dataclass(frozen=True)
class Body:
    """BODY: a substring of the decoded text parts."""
    value: str


@dataclass(frozen=True)
class Text:
    """TEXT: a substring of the header block, the trace headers or the text parts."""
    value: str


@dataclass(frozen=True)
class Arrived:
    """OLDER/YOUNGER (RFC 5032 WITHIN): INTERNALDATE before ``moment`` (``before=True``) or at
    or after it; ``moment`` is a naive UTC datetime the session computed from its clock."""
    moment: object
    before: bool


@dataclass(frozen=True)
class ModSeq:
    """MODSEQ n (RFC 7162 §3.1.5): the message's mod-sequence is n or higher."""
    value: int


@dataclass(frozen=True)
class EmailId:
    """EMAILID (RFC 8474 §6): the message's stored content is the row ``content_id``."""
    content_id: int


@dataclass(frozen=True)
class ThreadId:
    """THREADID (RFC 8474 §6): the message's thread id is ``value``."""
    value: str
