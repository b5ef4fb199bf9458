"""Raw DEFLATE both ways for one connection (RFC 4978 COMPRESS=DEFLATE, RFC 1951).

Memory is bounded per connection whatever the peer sends:

* inflating: ``inflate`` returns at most ``max_length`` bytes per call and
  keeps the compressed rest (``pending``), so a "zip bomb" (a few KiB that
  inflate to gigabytes) only ever costs what the reader asks for; the
  inflater's own state is its 32 KiB window (the peer may use the largest,
  RFC 4978 §4, so wbits is -15).
* deflating: a smaller window and memLevel than zlib's defaults (about
  32 KiB of state instead of 256 KiB); the peer's inflater accepts any
  window up to 32 KiB.  Every ``deflate`` ends with Z_SYNC_FLUSH, so each
  response the session flushes reaches the peer whole (§4: "flush ... at
  the end of each response").
"""

import zlib

WBITS_IN = -15          # raw deflate, the peer may use the full 32 KiB window
WBITS_OUT = -12         # raw deflate, 4 KiB window: (1 << 14) bytes of state
MEM_LEVEL = 5           # (1 << 14) bytes of hash state
LEVEL = 6


class CompressedStreamError(Exception):
    """The peer's data is not a valid raw deflate stream, or it ended the stream."""


class Deflate:
    """The two zlib streams of one compressed connection."""

    def __init__(self):
        self._in = zlib.decompressobj(WBITS_IN)
        self._out = zlib.compressobj(LEVEL, zlib.DEFLATED, WBITS_OUT, MEM_LEVEL)

    @property
    def pending(self):
        """Compressed input not inflated yet (at most one recv's worth)."""
        return bool(self._in.unconsumed_tail)

    def inflate(self, data, max_length):
        """Up to max_length bytes inflated from what is pending plus ``data``.

        Callers pass new data only once ``pending`` is False, so what is kept
        never exceeds one network read.
        """
        try:
            out = self._in.decompress(self._in.unconsumed_tail + data, max_length)
        except zlib.error as exc:
            raise CompressedStreamError(str(exc)) from None
        if self._in.eof:           # a final block: the peer may not end compression (§3)
            raise CompressedStreamError("compressed stream ended")
        return out

    def deflate(self, data):
        """``data`` compressed and flushed, ready to send."""
        return self._out.compress(data) + self._out.flush(zlib.Z_SYNC_FLUSH)
