"""Ranged GETs of S3 objects over kept-alive HTTP/1.1 connections (the IMAP read path).

FETCH BODY[] of a thousand messages reads a hundred attachments; through
boto3 each GET costs about 0.9 ms of CPU, through a signed URL and urllib3
0.5 ms, here about 0.14 ms (bench figures in the README).  What is left is
what a GET needs: a SigV4-signed request line and headers written on an idle
connection, the status line and headers read back, the body streamed in
chunks.  Connections are plain sockets (cooperative under gevent's
monkey-patching), TLS for https endpoints.
"""

import os
import socket
import ssl
import urllib.parse

from geomail.blobs.sigv4 import quote_path

CHUNK_SIZE = 64 * 1024
MAX_HEADER_LINE = 8192
MAX_HEADERS = 100


class HttpError(Exception):
    """The connection failed or the server answered something that is not HTTP/1.x."""


class Response:
    """Status, headers and the body still to be read from ``conn``."""

    def __init__(self, status, headers, conn, pool):
        self.status = status
        self.headers = headers
        self._conn = conn
        self._pool = pool

    def chunks(self):
        """Yield the body in pieces of at most CHUNK_SIZE; the connection goes back when done."""
        conn, self._conn = self._conn, None
        reusable = False
        try:
            yield from conn.body(self.headers)
            reusable = self.headers.get("connection", "").lower() != "close"
        finally:
            if reusable:
                self._pool.release(conn)
            else:
                conn.close()

    def read(self, limit):
        """At most ``limit`` bytes of the body (for error documents); the connection is closed."""
        conn, self._conn = self._conn, None
        data = bytearray()
        try:
            for chunk in conn.body(self.headers):
                data += chunk
                if len(data) >= limit:
                    break
        except (HttpError, OSError):
            pass                      # an error document cut short: what arrived is enough
        finally:
            conn.close()
        return bytes(data[:limit])

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Connection:
    def __init__(self, sock):
        self.sock = sock
        self.file = sock.makefile("rb", buffering=CHUNK_SIZE)
        self.reused = False

    def close(self):
        try:
            self.file.close()
        finally:
            self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def head(self):
        """(status, {lower-case name: value}) of the next response."""
        line = self.file.readline(MAX_HEADER_LINE)
        if not line:
            raise HttpError("connection closed before the response")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise HttpError(f"not an HTTP response: {line[:60]!r}")
        headers = {}
        for _ in range(MAX_HEADERS):
            line = self.file.readline(MAX_HEADER_LINE)
            if line in (b"\r\n", b"\n"):
                return int(parts[1]), headers
            if not line.endswith(b"\n"):
                raise HttpError("response header line too long or cut off")
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raise HttpError("too many response headers")

    def body(self, headers):
        if headers.get("transfer-encoding", "").lower() == "chunked":
            yield from self._chunked()
            return
        length = headers.get("content-length")
        if length is None:
            raise HttpError("response without Content-Length")
        remaining = int(length)
        while remaining:
            data = self.file.read1(min(remaining, CHUNK_SIZE))
            if not data:
                raise HttpError(f"connection closed with {remaining} body bytes missing")
            remaining -= len(data)
            yield data

    def _chunked(self):
        while True:
            size_line = self.file.readline(MAX_HEADER_LINE)
            try:
                size = int(size_line.split(b";")[0], 16)
            except ValueError:
                raise HttpError(f"bad chunk size line {size_line[:40]!r}") from None
            if size == 0:
                while self.file.readline(MAX_HEADER_LINE) not in (b"\r\n", b"\n", b""):
                    pass              # trailers
                return
            while size:
                data = self.file.read1(min(size, CHUNK_SIZE))
                if not data:
                    raise HttpError("connection closed inside a chunk")
                size -= len(data)
                yield data
            self.file.readline(MAX_HEADER_LINE)


class Pool:
    """Idle kept-alive connections to one endpoint, reused last-in first-out."""

    def __init__(self, endpoint, connect_timeout, read_timeout, max_idle=16):
        url = urllib.parse.urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"S3 endpoint must be an http(s) URL, not {endpoint!r}")
        self.tls = url.scheme == "https"
        self.hostname = url.hostname
        self.port = url.port or (443 if self.tls else 80)
        default = 443 if self.tls else 80
        self.host_header = url.netloc if url.port not in (None, default) else url.hostname
        self.base_path = url.path.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle
        self._idle = []
        # Certificates as botocore checks them for the writes: the system's roots, or
        # the bundle named by AWS_CA_BUNDLE (a private CA in front of an on-site S3).
        self._tls_context = (ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE")
                                                        or None) if self.tls else None)

    def path(self, bucket, key):
        """The canonical, quoted path of an object (path-style addressing)."""
        return quote_path(f"{self.base_path}/{bucket}/{key}")

    def request(self, method, path, headers):
        """Send a request without a body; returns its Response (body not yet read).

        A kept-alive connection the server closed meanwhile fails before any
        response byte: the request is then sent once more on a new connection
        (GET is idempotent).
        """
        data = (f"{method} {path} HTTP/1.1\r\n"
                + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
                + "\r\n").encode("latin-1")
        while True:
            try:
                conn = self._take()
            except OSError as exc:
                raise HttpError(f"cannot connect to {self.host_header}: {exc}") from None
            try:
                conn.send(data)
                status, response_headers = conn.head()
            except (OSError, HttpError) as exc:
                conn.close()
                if conn.reused and not isinstance(exc, socket.timeout):
                    continue          # stale keep-alive connection: try a fresh one
                raise HttpError(f"{type(exc).__name__}: {exc}") from None
            except BaseException:
                conn.close()
                raise
            return Response(status, response_headers, conn, self)

    def release(self, conn):
        conn.reused = True
        if len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    def close(self):
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _take(self):
        if self._idle:
            return self._idle.pop()
        sock = socket.create_connection((self.hostname, self.port), timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls_context is not None:
                sock = self._tls_context.wrap_socket(sock, server_hostname=self.hostname)
            sock.settimeout(self.read_timeout)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)
