"""The DATA stream (RFC 5321 section 4.5.2): find the end, undo dot-stuffing, fix line ends.

Only ``<CRLF>.<CRLF>`` ends DATA: ``<LF>.<LF>`` and ``<LF>.<CRLF>`` are data,
which closes the SMTP smuggling hole.  Bare LF and bare CR inside the
message become CRLF.  Work is done on whole runs of lines with bytes.find
and bytes.replace, never byte by byte; a line without end is passed on in
pieces so memory stays bounded.
"""

import re

MAX_HELD = 64 * 1024          # longest partial line kept while waiting for its CRLF
_LINE_END = re.compile(rb"\r\n|\r|\n")


def normalise_line_ends(data):
    """Every bare CR and bare LF becomes CRLF (data contains no split CRLF)."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") == crlf and data.count(b"\r") == crlf:
        return data
    return _LINE_END.sub(b"\r\n", data)


class DotUnstuffer:
    """feed(bytes) -> (message bytes, None) until the end, then (bytes, rest after the end)."""

    def __init__(self):
        self.held = b""
        self.line_start = True

    def feed(self, data):
        buf = self.held + data if self.held else data
        self.held = b""
        if self.line_start and buf.startswith(b".\r\n"):
            return b"", buf[3:]
        end = buf.find(b"\r\n.\r\n")
        if end >= 0:
            return self._clean(buf[:end + 2]), buf[end + 5:]
        out = b""
        cut = buf.rfind(b"\r\n")
        if cut >= 0:
            out = self._clean(buf[:cut + 2])
            self.line_start = True
            buf = buf[cut + 2:]
        if len(buf) > MAX_HELD:
            keep = 1 if buf.endswith(b"\r") else 0
            out += self._clean(buf[:len(buf) - keep])
            self.line_start = False
            buf = buf[len(buf) - keep:]
        self.held = buf
        return out, None

    def _clean(self, region):
        if self.line_start and region.startswith(b"."):
            region = region[1:]
        region = region.replace(b"\r\n.", b"\r\n")
        return normalise_line_ends(region)


class LineEndFixer:
    """Line-end normalisation for BDAT chunks, which may split a CRLF."""

    def __init__(self):
        self.held_cr = False

    def feed(self, data, last=False):
        if self.held_cr:
            data = b"\r" + data
            self.held_cr = False
        if data.endswith(b"\r") and not last:
            data = data[:-1]
            self.held_cr = True
        return normalise_line_ends(data)
