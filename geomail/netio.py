"""Buffered, bounded reading from a client socket (shared by SMTP and IMAP).

Lines are limited in length: a line without end never grows memory beyond
``max_line`` bytes; the rest of it is discarded and the caller is told.

Reads are limited in time twice over.  The idle timeout bounds each wait
for the next bytes (a silent client); a *deadline* bounds the whole of a
read that has begun, so a client trickling one byte a second (slowloris)
cannot make one command line, or one IMAP command with its literals, last
for ever.  A deadline either starts at a known instant (``set_deadline``)
or when the first byte of the next command arrives (``deadline_from_next_byte``,
``readline(deadline=...)``): the wait *between* commands stays the idle
timeout's business.

After ``start_compression`` (IMAP COMPRESS=DEFLATE, RFC 4978) both directions
pass through ``geomail.deflate``: input is inflated at most CHUNK bytes at a
time, only as readers ask for it, so a compressed "bomb" cannot grow memory.
"""

import socket
import time

from geomail.deflate import CompressedStreamError, Deflate

CHUNK = 64 * 1024


class ConnectionClosed(Exception):
    """The peer went away (EOF or reset)."""


class LineTooLong(Exception):
    """A line exceeded the limit; its remainder has been discarded."""


class Timeout(Exception):
    """The peer sent nothing within the idle timeout."""


class DeadlineExceeded(Timeout):
    """A read that had begun (a command line, a command) did not end in time."""


class Connection:
    # One per client connection, SMTP and IMAP, thousands of them idle at once: no __dict__.
    __slots__ = ("sock", "buffer", "timeout", "deadline", "_pending", "bytes_in", "bytes_out",
                 "deflate")

    def __init__(self, sock, timeout=None):
        self.sock = sock
        self.buffer = bytearray()
        self.timeout = timeout
        self.deadline = None          # monotonic instant every read must end by, or None
        self._pending = None          # seconds of a deadline that starts at the next byte
        self.bytes_in = self.bytes_out = 0    # for the session's last log line
        self.deflate = None           # geomail.deflate.Deflate once compression is on
        self.sock.settimeout(timeout)

    def set_timeout(self, timeout):
        """The idle timeout: how long one wait for the peer's next bytes may last."""
        self.timeout = timeout
        if self.deadline is None:
            self.sock.settimeout(timeout)

    # -- deadlines ------------------------------------------------------------

    def set_deadline(self, at):
        """Every read must end by the monotonic instant ``at`` (None: no deadline)."""
        self.deadline = at
        self._pending = None
        if at is None:
            self.sock.settimeout(self.timeout)

    def deadline_from_next_byte(self, seconds):
        """Reads must end ``seconds`` after the next byte arrives (or now, if one is buffered)."""
        self.set_deadline(None)
        if self.buffer:
            self._start_clock(seconds)
        else:
            self._pending = seconds

    def _start_clock(self, seconds):
        at = time.monotonic() + seconds
        self.deadline = at if self.deadline is None else min(self.deadline, at)

    def _wait_limit(self):
        """(seconds the next recv may wait, whether the deadline is what limits it)."""
        if self.deadline is None:
            return self.timeout, False
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded()
        if self.timeout is not None and self.timeout <= left:
            return self.timeout, False
        return left, True

    def _fill(self):
        """Add at least one byte to the buffer (inflated, when compression is on)."""
        if self.deflate is None:
            self.buffer += self._recv()
            return
        data = b"" if self.deflate.pending else self._recv()
        while True:
            try:
                out = self.deflate.inflate(data, CHUNK)
            except CompressedStreamError:
                raise ConnectionClosed() from None
            if out:
                self.buffer += out
                return
            data = self._recv()     # a partial block: more input is needed

    def _recv(self):
        wait, by_deadline = self._wait_limit()
        if self.deadline is not None:
            self.sock.settimeout(wait)
        try:
            data = self.sock.recv(CHUNK)
        except socket.timeout:
            raise (DeadlineExceeded() if by_deadline else Timeout()) from None
        except (ConnectionError, OSError):
            raise ConnectionClosed() from None
        if not data:
            raise ConnectionClosed()
        self.bytes_in += len(data)
        if self._pending is not None:
            self._start_clock(self._pending)
            self._pending = None
        return data

    def _consume(self, size):
        """Drop the first size bytes.

        The memory of a buffer that grew large (a big literal) is given back:
        CPython reallocates a bytearray down once less than half of it is in
        use (measured: 4 MiB read with read_exact leaves 57 bytes allocated;
        tests/server/test_netio.py checks it), so no copy is needed here.
        """
        del self.buffer[:size]

    # -- reading --------------------------------------------------------------

    def readline(self, max_line, deadline=None):
        """One line including its CRLF (or bare LF); LineTooLong past max_line.

        ``deadline``: seconds the line may take from its first byte to its
        end (DeadlineExceeded beyond); any deadline already set still holds.
        """
        if deadline is None:
            return self._readline(max_line)
        outer = self.deadline        # one set with set_deadline (not a pending one)
        if self.buffer:
            self._start_clock(deadline)
        else:
            self._pending = deadline
        try:
            return self._readline(max_line)
        finally:
            self.set_deadline(outer)

    def _readline(self, max_line):
        start = 0
        while True:
            end = self.buffer.find(b"\n", start)
            if end >= 0:
                if end + 1 > max_line:
                    self._consume(end + 1)
                    raise LineTooLong()
                line = bytes(self.buffer[:end + 1])
                self._consume(end + 1)
                return line
            if len(self.buffer) > max_line:
                self._discard_line()
                raise LineTooLong()
            start = len(self.buffer)
            self._fill()

    def _discard_line(self):
        """Throw away bytes up to and including the next LF, without storing them."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                self._consume(end + 1)
                return
            self._consume(len(self.buffer))
            self._fill()

    def read_some(self, limit=CHUNK):
        """Whatever is buffered or arrives next, at most limit bytes."""
        if not self.buffer:
            self._fill()
        data = bytes(self.buffer[:limit])
        self._consume(limit)
        return data

    def read_exact(self, size):
        """Exactly size bytes (use only for small sizes; stream big ones)."""
        while len(self.buffer) < size:
            self._fill()
        data = bytes(self.buffer[:size])
        self._consume(size)
        return data

    def has_buffered(self):
        return bool(self.buffer) or (self.deflate is not None and self.deflate.pending)

    def wait_readable(self, timeout, wakeup):
        """Wait in the calling greenlet until input may be read (True) or the gevent
        Event ``wakeup`` is set (False); Timeout after ``timeout`` seconds.

        IMAP IDLE waits here for DONE and for the watcher at once, with no
        reader greenlet: an idle connection then costs one greenlet, not two
        (each holds its saved C stack and its own page of Python frames).
        Nothing is read, so no buffer is held while waiting.
        """
        pending = getattr(self.sock, "pending", None)    # TLS: bytes already decrypted
        if self.has_buffered() or (pending is not None and pending()):
            return True
        if wakeup.is_set():
            return False
        from gevent.hub import Waiter, get_hub
        hub = get_hub()
        waiter = Waiter(hub)
        readable = hub.loop.io(self.sock.fileno(), 1)
        timer = hub.loop.timer(timeout)
        readable.start(waiter.switch, True)
        timer.start(waiter.switch, None)
        wakeup.rawlink(waiter.switch)      # called with the event itself
        try:
            result = waiter.get()
        finally:
            wakeup.unlink(waiter.switch)
            readable.stop()
            readable.close()
            timer.stop()
            timer.close()
        if result is None:
            raise Timeout()
        return result is True

    def unread(self, data):
        """Put bytes back in front of the buffer (what followed the end of DATA)."""
        if data:
            self.buffer[:0] = data

    def discard_buffer(self):
        """Forget buffered input (before a TLS handshake: RFC 3207 section 4.2)."""
        self.buffer = bytearray()

    def start_tls(self, context):
        """Wrap the socket in TLS as the server (STARTTLS)."""
        import ssl
        timeout = self.sock.gettimeout()
        try:
            self.sock = context.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError):
            raise ConnectionClosed() from None
        self.sock.settimeout(timeout)

    def start_compression(self):
        """From now on both directions are raw DEFLATE (RFC 4978 §3).

        Bytes already buffered arrived after the command that started it: they
        are compressed, and are inflated like any that follow.
        """
        self.deflate = Deflate()
        early = bytes(self.buffer)
        self.buffer.clear()
        if early:
            try:
                self.buffer += self.deflate.inflate(early, CHUNK)
            except CompressedStreamError:
                raise ConnectionClosed() from None

    def write(self, data):
        if self.deflate is not None:
            data = self.deflate.deflate(data)
        self.bytes_out += len(data)
        try:
            # Replies are small: one send() usually takes all of it, without
            # gevent's sendall bookkeeping (a getsockopt and a clock read per call).
            sent = self.sock.send(data)
            if sent < len(data):
                self.sock.sendall(memoryview(data)[sent:])
        except (ConnectionError, OSError):
            raise ConnectionClosed() from None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
