"""Streaming content-transfer-encoding decoders.

Each decoder has ``feed(data) -> bytes`` and ``finish() -> bytes``; feeding a
body in any number of pieces gives what Python's
``email.message.Message.get_payload(decode=True)`` gives for the whole body
(see the notes on the one case that cannot be streamed).
"""

import binascii
import re

B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_KEEP = B64_ALPHABET + b"="
_DELETE_NON_B64 = bytes(c for c in range(256) if c not in _KEEP)


class Base64Decoder:
    """Forgiving base64 like binascii.a2b_base64 (non-strict) on the whole body.

    Non-alphabet characters are skipped; a complete pad sequence ends the
    data (a2b_base64 ignores everything after it); a trailing partial quantum
    of 2 or 3 characters is decoded as if padded (email's decode_b does the
    same). A single dangling character is dropped: email then returns the
    undecoded text, which a stream cannot do.
    """

    __slots__ = ("_carry", "_done", "_pads")

    def __init__(self):
        self._carry = b""
        self._done = False
        self._pads = 0

    def feed(self, data):
        if self._done or not data:
            return b""
        data = bytes(data).translate(None, _DELETE_NON_B64)
        if not data:
            return b""
        if b"=" not in data:
            self._pads = 0
            if self._carry:
                data = self._carry + data
            n = len(data) & ~3
            self._carry = data[n:]
            return binascii.a2b_base64(data[:n]) if n else b""
        return self._feed_padded(data)

    def _feed_padded(self, data):
        out = []
        i = 0
        while True:
            j = data.find(b"=", i)
            if j < 0:
                chars = data[i:]
                if chars:
                    self._pads = 0
                break
            chars = data[i:j]
            if chars:
                self._pads = 0
            # decode complete quanta before the '='
            acc = self._carry + chars
            n = len(acc) & ~3
            if n:
                out.append(binascii.a2b_base64(acc[:n]))
            self._carry = acc[n:]
            q = len(self._carry)
            if q >= 2:
                self._pads += 1
                if q + self._pads >= 4:
                    out.append(binascii.a2b_base64(self._carry + b"=" * (4 - q)))
                    self._carry = b""
                    self._done = True
                    return b"".join(out)
            i = j + 1
        acc = self._carry + chars
        n = len(acc) & ~3
        if n:
            out.append(binascii.a2b_base64(acc[:n]))
        self._carry = acc[n:]
        return b"".join(out)

    def finish(self):
        carry, self._carry = self._carry, b""
        if self._done or len(carry) < 2:
            return b""
        return binascii.a2b_base64(carry + b"=" * (4 - len(carry)))


def _line_cut(data, blanks):
    """Where to cut an endless quoted-printable line: no "=XX" escape split, the last
    3 bytes (a soft break "=" may start there) kept, and with ``blanks`` no run of
    blanks cut off from what follows (RFC 2045 §6.7 deletes it at a line end)."""
    cut = len(data) - 3
    while cut > 0 and (b"=" in data[max(cut - 2, 0):cut] or (blanks and data[cut - 1] in b" \t")):
        cut -= 1
    return cut if cut > 0 else len(data) - 3


class QuotedPrintableDecoder:
    """quopri.decodestring (binascii.a2b_qp) fed line by line."""

    __slots__ = ("_carry", "_max")

    def __init__(self, max_pending=1 << 16):
        self._carry = b""
        self._max = max_pending

    def feed(self, data):
        data = self._carry + bytes(data)
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) > self._max:
            # an endless line: cut where no escape or soft break is split
            cut = _line_cut(data, False)
        if cut <= 0:
            self._carry = data
            return b""
        self._carry = data[cut:]
        return binascii.a2b_qp(data[:cut])

    def finish(self):
        carry, self._carry = self._carry, b""
        return binascii.a2b_qp(carry) if carry else b""


class Rfc2045QPDecoder:
    """Quoted-printable as RFC 2045 §6.7 decodes it (for BINARY, as Dovecot 2.3 does):
    blanks at the end of an encoded line are deleted (rule 3: a transport may have
    added them), so "=" followed by blanks is a soft line break too.  Line by line;
    an endless line is cut where no escape is split, as QuotedPrintableDecoder."""

    __slots__ = ("_carry", "_max")

    def __init__(self, max_pending=1 << 16):
        self._carry = b""
        self._max = max_pending

    def feed(self, data):
        data = self._carry + bytes(data)
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) <= self._max:
                self._carry = data
                return b""
            cut = _line_cut(data, True)
            self._carry = data[cut:]
            return binascii.a2b_qp(data[:cut])
        self._carry = data[cut:]
        return b"".join(self._line(line) for line in data[:cut].splitlines(keepends=True))

    @staticmethod
    def _line(line):
        body = line.rstrip(b"\r\n")
        end = line[len(body):]
        body = body.rstrip(b" \t")
        if body.endswith(b"="):
            return binascii.a2b_qp(body[:-1])        # soft line break
        return binascii.a2b_qp(body) + end

    def finish(self):
        carry, self._carry = self._carry, b""
        return self._line(carry) if carry else b""


class UUDecoder:
    """email's _uudecode, line by line: data between 'begin <mode>' and 'end'."""

    __slots__ = ("_carry", "_state")
    _BEGIN = re.compile(rb"begin ([0-7]+)( |$)")

    def __init__(self):
        self._carry = b""
        self._state = 0   # 0 before begin, 1 in data, 2 after end

    def feed(self, data):
        data = self._carry + bytes(data)
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) > 1 << 16:
            cut = len(data)
        self._carry = data[cut:]
        return self._lines(data[:cut].splitlines())

    def _lines(self, lines):
        out = []
        for line in lines:
            if self._state == 0:
                if line.startswith(b"begin ") and self._BEGIN.match(line):
                    self._state = 1
            elif self._state == 1:
                if not line or line.strip(b" \t\r\n\f") == b"end":
                    self._state = 2
                    continue
                try:
                    out.append(binascii.a2b_uu(line))
                except binascii.Error:
                    nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3
                    try:
                        out.append(binascii.a2b_uu(line[:nbytes]))
                    except binascii.Error:
                        pass
        return b"".join(out)

    def finish(self):
        carry, self._carry = self._carry, b""
        return self._lines(carry.splitlines()) if carry else b""


class IdentityDecoder:
    """7bit, 8bit, binary and unknown encodings: the bytes as they are."""

    __slots__ = ()

    def feed(self, data):
        return bytes(data)

    def finish(self):
        return b""


def decoder_for(encoding):
    """A fresh decoder for a Content-Transfer-Encoding (lower-case token)."""
    if encoding == "base64":
        return Base64Decoder()
    if encoding == "quoted-printable":
        return QuotedPrintableDecoder()
    if encoding in ("x-uuencode", "uuencode", "uue", "x-uue"):
        return UUDecoder()
    return IdentityDecoder()


def decode_all(encoding, data):
    """Decode a whole body held in memory (used for inline text parts)."""
    dec = decoder_for(encoding)
    return dec.feed(data) + dec.finish()
