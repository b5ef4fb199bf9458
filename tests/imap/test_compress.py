"""COMPRESS=DEFLATE (RFC 4978): raw deflate both ways, with TLS, IDLE and imaplib;
a decompression bomb leaves the worker's memory where it was."""

import imaplib
import ssl
import time
import zlib

import pytest

from geomail.netio import Connection, LineTooLong
from tests.fixtures.server import socket_owner
from tests.imap.conftest import PASSWORD, Wire, message
from tests.imap.test_login import make_cert


class DeflateSocket:
    """The client side of a compressed connection, for Wire (recv / sendall)."""

    def __init__(self, sock):
        self.sock = sock
        self.inflate = zlib.decompressobj(-15)
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)

    def recv(self, size):
        while True:
            data = self.sock.recv(size)
            if not data:
                return b""
            out = self.inflate.decompress(data)
            if out:
                return out

    def sendall(self, data):
        self.sock.sendall(self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH))

    def close(self):
        self.sock.close()


def compressed(w):
    assert w.command("COMPRESS DEFLATE") == ["TAG OK DEFLATE active"]
    assert w.buffer == b""
    w.sock = DeflateSocket(w.sock)
    return w


def test_compress_then_commands(session, deliver):
    compressed(session)
    deliver(session.account.address, message("Squeezed", "Compressed body text.\r\n" * 50))
    lines = session.command("SELECT INBOX")
    assert "* 1 EXISTS" in lines and lines[-1] == "TAG OK [READ-WRITE] Select completed"
    lines = session.command("FETCH 1 (BODY.PEEK[TEXT])")
    assert lines[0] == ("* 1 FETCH (BODY[TEXT] {1150}\r\n" + "Compressed body text.\r\n" * 50 + ")")
    assert session.command("COMPRESS DEFLATE") == [
        "TAG NO [COMPRESSIONACTIVE] DEFLATE is active already"]
    assert session.command("NOOP") == ["TAG OK NOOP completed"]


def test_compress_errors(wire, session):
    assert session.command("COMPRESS GZIP") == ["TAG BAD Unsupported compression algorithm GZIP"]
    assert session.command("COMPRESS") == ["TAG BAD Syntax error: expected space at end of line"]
    assert session.command("COMPRESS DEFLATE extra") == [
        "TAG BAD Syntax error: unexpected ' extra' at end of command"]
    before_login = wire()
    assert before_login.command("COMPRESS DEFLATE") == [
        "TAG BAD COMPRESS not allowed in the not authenticated state"]
    assert session.command("NOOP") == ["TAG OK NOOP completed"]


def test_idle_flushes_each_response(session, deliver):
    compressed(session)
    session.ok("SELECT INBOX")
    session.send(b"i1 IDLE\r\n")
    assert session.readline() == b"+ idling\r\n"
    deliver(session.account.address, message("While idling"))
    assert session.readline() == b"* 1 EXISTS\r\n"      # arrives without any further input
    assert session.readline() == b"* 1 RECENT\r\n"
    session.send(b"DONE\r\n")
    assert session.read_response("i1") == ["i1 OK IDLE terminated"]


def test_garbage_after_compress_ends_the_connection(session):
    assert session.command("COMPRESS DEFLATE") == ["TAG OK DEFLATE active"]
    session.sock.sendall(b"\xff" * 64)           # not a deflate stream
    session.sock.settimeout(5)
    assert session.sock.recv(100) == b""


class DeflateIMAP4(imaplib.IMAP4):
    """imaplib with COMPRESS=DEFLATE: after compress(), reads inflate and writes deflate."""

    def compress(self):
        imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))
        typ, data = self._simple_command("COMPRESS", "DEFLATE")
        if typ == "OK":
            self._inflate = zlib.decompressobj(-15)
            self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
            self._plain = b""
        return typ, data

    def _more(self):
        data = self.file.read1(65536)
        if not data:
            raise imaplib.IMAP4.abort("connection closed")
        self._plain += self._inflate.decompress(data)

    def read(self, size):
        if not hasattr(self, "_inflate"):
            return super().read(size)
        while len(self._plain) < size:
            self._more()
        data, self._plain = self._plain[:size], self._plain[size:]
        return data

    def readline(self):
        if not hasattr(self, "_inflate"):
            return super().readline()
        while b"\n" not in self._plain:
            self._more()
        line, _, self._plain = self._plain.partition(b"\n")
        return line + b"\n"

    def send(self, data):
        if hasattr(self, "_deflate"):
            data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)


def test_imaplib_over_compression(server, account):
    client = DeflateIMAP4("127.0.0.1", server.imap_port)
    try:
        assert client.login(account.address, PASSWORD)[0] == "OK"
        assert client.compress() == ("OK", [b"DEFLATE active"])
        data = message("Via imaplib", "x" * 200_000 + "\r\n")
        assert client.append("INBOX", None, None, data)[0] == "OK"
        assert client.select("INBOX") == ("OK", [b"1"])
        typ, parts = client.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK" and parts[0][1] == data
    finally:
        assert client.logout()[0] == "BYE"


def test_compress_over_starttls(start_geomail, account, tmp_path):
    cert, key = make_cert(tmp_path)
    tls_server = start_geomail(workers=1, extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    w = Wire(tls_server.imap_port)
    try:
        assert w.command("STARTTLS") == ["TAG OK Begin TLS negotiation now"]
        context = ssl.create_default_context(cafile=str(cert))
        w.sock = context.wrap_socket(w.sock, server_hostname="mx.test.invalid")
        w.login(account)
        compressed(w)
        assert w.command("STATUS INBOX (MESSAGES)") == [
            "* STATUS INBOX (MESSAGES 0)", "TAG OK STATUS completed"]
    finally:
        w.close()


def _peak_rss_kib(pid, reset=False):
    """VmHWM, the peak resident size; ``reset``: start a new peak from now (proc(5) clear_refs)."""
    if reset:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_decompression_bomb_keeps_worker_memory_bounded(server, session):
    """256 MiB of command line in about 250 KiB of deflate: the worker inflates it 64 KiB
    at a time and throws the line away (BAD), its memory does not follow."""
    compressed(session)
    worker = socket_owner(server.imap_port, session.sock.sock.getsockname()[1], server.workers())
    assert worker is not None
    before = _peak_rss_kib(worker, reset=True)
    deflate = session.sock.deflate
    session.sock.sock.sendall(deflate.compress(b"b1 NOOP "))
    block = b"x" * (1 << 20)
    for _ in range(256):
        session.sock.sock.sendall(deflate.compress(block))
    session.sock.sock.sendall(deflate.compress(b"\r\n") + deflate.flush(zlib.Z_SYNC_FLUSH))
    session.sock.sock.settimeout(60)
    assert session.readline() == b"* BAD Command line too long\r\n"
    assert session.command("NOOP") == ["TAG OK NOOP completed"]
    grown = _peak_rss_kib(worker) - before
    assert grown < 16 * 1024, f"worker grew by {grown} KiB"


def test_connection_inflates_only_what_is_read():
    """In-process: a 64 MiB bomb, read line by line, never buffers more than one chunk."""
    import socket
    import threading
    import tracemalloc

    server_sock, client_sock = socket.socketpair()
    conn = Connection(server_sock, timeout=10)
    conn.start_compression()
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = b"".join(deflate.compress(b"y" * (1 << 20)) for _ in range(64))
    bomb += deflate.compress(b"\r\nok\r\n") + deflate.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 1 << 18

    def send():
        client_sock.sendall(bomb)
    sender = threading.Thread(target=send, daemon=True)
    tracemalloc.start()
    try:
        sender.start()
        with pytest.raises(LineTooLong):
            conn.readline(64 * 1024)
        assert conn.readline(64 * 1024) == b"ok\r\n"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server_sock.close()
        client_sock.close()
    assert peak < 1 << 20, peak
