"""Buffered, bounded reading from a client socket (shared by SMTP and IMAP).

Lines are limited in length: a line without end never grows memory beyond
``max_line`` bytes; the rest of it is discarded and the caller is told.
"""

import socket

CHUNK = 64 * 1024


class ConnectionClosed(Exception):
    """The peer went away (EOF or reset)."""


class LineTooLong(Exception):
    """A line exceeded the limit; its remainder has been discarded."""


class Timeout(Exception):
    """The peer sent nothing within the idle timeout."""


class Connection:
    def __init__(self, sock, timeout=None):
        self.sock = sock
        self.buffer = bytearray()
        self.sock.settimeout(timeout)

    def set_timeout(self, timeout):
        self.sock.settimeout(timeout)

    def _fill(self):
        try:
            data = self.sock.recv(CHUNK)
        except socket.timeout:
            raise Timeout() from None
        except (ConnectionError, OSError):
            raise ConnectionClosed() from None
        if not data:
            raise ConnectionClosed()
        self.buffer += data

    def readline(self, max_line):
        """One line including its CRLF (or bare LF); LineTooLong past max_line."""
        start = 0
        while True:
            end = self.buffer.find(b"\n", start)
            if end >= 0:
                if end + 1 > max_line:
                    del self.buffer[:end + 1]
                    raise LineTooLong()
                line = bytes(self.buffer[:end + 1])
                del self.buffer[:end + 1]
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
                del self.buffer[:end + 1]
                return
            self.buffer.clear()
            self._fill()

    def read_some(self, limit=CHUNK):
        """Whatever is buffered or arrives next, at most limit bytes."""
        if not self.buffer:
            self._fill()
        data = bytes(self.buffer[:limit])
        del self.buffer[:limit]
        return data

    def read_exact(self, size):
        """Exactly size bytes (use only for small sizes; stream big ones)."""
        while len(self.buffer) < size:
            self._fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def has_buffered(self):
        return bool(self.buffer)

    def unread(self, data):
        """Put bytes back in front of the buffer (what followed the end of DATA)."""
        if data:
            self.buffer[:0] = data

    def discard_buffer(self):
        """Forget buffered input (before a TLS handshake: RFC 3207 section 4.2)."""
        self.buffer.clear()

    def start_tls(self, context):
        """Wrap the socket in TLS as the server (STARTTLS)."""
        import ssl
        timeout = self.sock.gettimeout()
        try:
            self.sock = context.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError):
            raise ConnectionClosed() from None
        self.sock.settimeout(timeout)

    def write(self, data):
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
