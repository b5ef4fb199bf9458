"""IMAP wire values (RFC 3501 §4, §9) in the canonical form of the reference files.

Canonical form: the bytes exactly as sent, except that every string -- a
quoted string or a {n} literal -- is rewritten as ``"`` + its bytes with
``\\`` and ``"`` escaped by a backslash + ``"``.  Nothing else changes
(spacing, NIL, numbers, parentheses, letter case).  The canonical form may
hold CR, LF, NUL and 8-bit bytes inside the quotes, so it is not always valid
on the wire; it is only a way to compare two answers that are semantically
equal on the wire (a quoted string vs. a literal of the same bytes).

In the JSON reference files, canonical bytes are stored as a JSON string:
UTF-8 decoded with surrogateescape, written with ensure_ascii (so the files
are ASCII; invalid UTF-8 bytes appear as \\udcXX escapes).
"""

import re

_ATOM = re.compile(rb"[^\x00-\x20\x7f(){%*\"\\\]]+")
_LITERAL = re.compile(rb"~?\{(\d+)\+?\}\r\n")


class WireError(ValueError):
    pass


def quote(value):
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def read_value(buf, i):
    """Parse one value at buf[i:]; return (canonical bytes, end index)."""
    if i >= len(buf):
        raise WireError("value expected at end of input")
    c = buf[i:i + 1]
    if c == b"(":
        out = bytearray(b"(")
        i += 1
        while True:
            if i >= len(buf):
                raise WireError("unterminated list")
            c = buf[i:i + 1]
            if c == b")":
                out += b")"
                return bytes(out), i + 1
            if c == b" ":
                out += b" "
                i += 1
                continue
            v, i = read_value(buf, i)
            out += v
    if c == b'"':
        val = bytearray()
        i += 1
        while True:
            if i >= len(buf):
                raise WireError("unterminated quoted string")
            ch = buf[i]
            if ch == 0x22:
                return quote(bytes(val)), i + 1
            if ch == 0x5c:
                i += 1
                if i >= len(buf) or buf[i] not in b'\\"':
                    raise WireError("bad escape in quoted string at %d" % i)
                ch = buf[i]
            elif ch in (0, 10, 13) or ch >= 0x80:
                raise WireError("byte %r not allowed in a quoted string at %d" % (ch, i))
            val.append(ch)
            i += 1
    m = _LITERAL.match(buf, i)
    if m:
        n = int(m.group(1))
        start = m.end()
        if start + n > len(buf):
            raise WireError("literal runs past the end")
        return quote(buf[start:start + n]), start + n
    m = _ATOM.match(buf, i)
    if m:
        return m.group(0), m.end()
    raise WireError("unexpected %r at %d" % (buf[i:i + 20], i))


def canonical(value):
    """Canonical form of one complete wire value (raises WireError if invalid)."""
    out, end = read_value(value, 0)
    if end != len(value):
        raise WireError("trailing bytes after value: %r" % value[end:end + 20])
    return out


def to_json(canon):
    return canon.decode("utf-8", "surrogateescape")


def from_json(text):
    return text.encode("utf-8", "surrogateescape")
