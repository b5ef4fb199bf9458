"""The IMAP system flags (RFC 3501 2.3.2), defined once for every layer.

Their names, their order (which is also the bit order of the store's packed
flags and the order of the message columns), the columns that hold them, and
the order the FLAGS response lists them in.  \\Recent is per session and
never stored.
"""

SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
COLUMNS = ("seen", "answered", "flagged", "deleted", "draft")      # messages.<column>
COLUMN_OF = dict(zip(SYSTEM_FLAGS, COLUMNS))                      # "\\Seen" -> "seen"
COLUMN_OF_LOWER = {flag.lower(): column for flag, column in COLUMN_OF.items()}
BY_LOWER = {flag.lower(): flag for flag in SYSTEM_FLAGS}
RECENT = "\\Recent"
# FLAGS and PERMANENTFLAGS list them in the order of RFC 3501's examples
RESPONSE_ORDER = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
assert sorted(RESPONSE_ORDER) == sorted(SYSTEM_FLAGS)


def canonical(flag):
    """A system flag in its canonical case (``\\SEEN`` -> ``\\Seen``); other flags unchanged."""
    return BY_LOWER.get(flag.lower(), flag)
