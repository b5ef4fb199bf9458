"""Object identifiers (RFC 8474 OBJECTID): MAILBOXID, EMAILID and THREADID.

An objectid is 1-255 characters of ``[A-Za-z0-9_-]`` (RFC 8474 §4).  Ours are
a letter and a row id, so they never change for the object and are never
reused (the ids are AUTO_INCREMENT / AUTOINCREMENT):

- MAILBOXID ``F<mailboxes.id>``: a RENAME keeps the row, so it keeps its id;
  renaming INBOX moves its messages to a new mailbox, which gets a new one
  (RFC 8474 §4.1.1).
- EMAILID ``M<message_contents.id>``: every copy of one stored content (the
  recipients of one delivery, COPY, MOVE) shares it (RFC 8474 §5.1).
- THREADID ``T<16 hex digits>``: a hash of the thread root's Message-ID, the
  first id of References, else In-Reply-To, else the message's own.  It is
  computed at delivery (``thread_id_of``) from the stored columns; rows
  stored before schema 8 get theirs, the same way, when a FETCH or SEARCH
  first asks (geomail.store.messages.fill_thread_ids).
"""

import hashlib

MAX_LENGTH = 255
_OBJECTID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
THREAD_HEX = 16


def is_objectid(text):
    """RFC 8474 §7 objectid = 1*255(ALPHA / DIGIT / "_" / "-")."""
    return 0 < len(text) <= MAX_LENGTH and all(c in _OBJECTID_CHARS for c in text)


def mailbox_id(row_id):
    return f"F{int(row_id)}"


def email_id(content_id):
    return f"M{int(content_id)}"


def row_of(objectid, letter):
    """The row id an objectid of ours names (``letter`` F or M), or None for any other."""
    digits = objectid[1:]
    if objectid[:1] != letter or not digits.isdigit() or not digits.isascii() or len(digits) > 19:
        return None
    return int(digits)


def _first_id(value):
    """The first <...> of a header value (or None), by plain scanning."""
    if not value:
        return None
    start = value.find("<")
    if start < 0:
        return None
    end = value.find(">", start)
    if end < 0:
        return None
    found = value[start:end + 1].strip()
    return found if len(found) > 2 else None


def thread_id_of(message_id, in_reply_to, references, content_id):
    """THREADID of a new message: the thread root's Message-ID hashed; a message
    without any id is a thread of its own (hashed from its content id)."""
    return (thread_root_id(message_id, in_reply_to, references)
            or _hashed(f"\0content {int(content_id)}"))


def thread_root_id(message_id, in_reply_to, references):
    """THREADID from the message's ids alone, or None when it has none (then only
    thread_id_of, given the content id, can name its thread)."""
    root = _first_id(references) or _first_id(in_reply_to) or _first_id(message_id)
    return None if root is None else _hashed(root)


def _hashed(key):
    return "T" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:THREAD_HEX]
