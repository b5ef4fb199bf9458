"""IDLE waits in the session's own greenlet for DONE or the watcher (geomail/imap/idle.py):
DONE however it arrives, TLS, the idle timeout, and Connection.wait_readable itself."""

import socket
import ssl
import time

import gevent
import gevent.event
import pytest

from geomail.netio import Connection, Timeout
from tests.imap.conftest import Wire, message
from tests.imap.test_login import make_cert


def test_done_in_the_same_packet_as_idle(session):
    session.ok("SELECT INBOX")
    session.send(b"i1 IDLE\r\nDONE\r\n")
    assert session.readline() == b"+ idling\r\n"
    assert session.read_response("i1") == ["i1 OK IDLE terminated"]
    assert session.command("NOOP") == ["TAG OK NOOP completed"]


def test_done_split_over_two_packets(session):
    session.ok("SELECT INBOX")
    session.send(b"i1 IDLE\r\n")
    assert session.readline() == b"+ idling\r\n"
    session.send(b"DO")
    time.sleep(0.3)
    session.send(b"NE\r\n")
    assert session.read_response("i1") == ["i1 OK IDLE terminated"]


def test_idle_twice_then_delivery(session, deliver):
    session.ok("SELECT INBOX")
    for n in (1, 2):
        session.send(b"i%d IDLE\r\n" % n)
        assert session.readline() == b"+ idling\r\n"
        deliver(session.account.address, message(f"m{n}"))
        assert session.readline() == b"* %d EXISTS\r\n" % n
        assert session.readline() == b"* %d RECENT\r\n" % n
        session.send(b"DONE\r\n")
        assert session.read_response(f"i{n}") == [f"i{n} OK IDLE terminated"]


def test_idle_over_starttls(start_geomail, account, tmp_path, deliver):
    cert, key = make_cert(tmp_path)
    tls_server = start_geomail(workers=1, extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    w = Wire(tls_server.imap_port)
    try:
        assert w.command("STARTTLS") == ["TAG OK Begin TLS negotiation now"]
        w.sock = ssl.create_default_context(cafile=str(cert)).wrap_socket(
            w.sock, server_hostname="mx.test.invalid")
        w.login(account)
        w.ok("SELECT INBOX")
        w.send(b"i1 IDLE\r\n")
        assert w.readline() == b"+ idling\r\n"
        deliver(account.address, message("over tls"))
        assert w.readline() == b"* 1 EXISTS\r\n"
        assert w.readline() == b"* 1 RECENT\r\n"
        w.send(b"DONE\r\n")
        assert w.read_response("i1") == ["i1 OK IDLE terminated"]
    finally:
        w.close()


def test_idle_ends_with_autologout(start_geomail, account):
    short = start_geomail(workers=1, extra_args=["--imap-idle-timeout", "1.5"])
    w = Wire(short.imap_port)
    try:
        w.login(account)
        w.ok("SELECT INBOX")
        w.send(b"i1 IDLE\r\n")
        assert w.readline() == b"+ idling\r\n"
        started = time.monotonic()
        assert w.readline() == b"* BYE Autologout; idle for too long\r\n"
        assert 1.0 <= time.monotonic() - started < 5.0
    finally:
        w.close()


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    yield Connection(server, timeout=5), client
    server.close()
    client.close()


def test_wait_readable_sees_bytes_buffered_or_arriving(pair):
    conn, client = pair
    event = gevent.event.Event()
    conn.unread(b"x")
    assert conn.wait_readable(5, event) is True       # buffered: no wait
    conn.read_exact(1)
    gevent.spawn_later(0.1, client.sendall, b"DONE\r\n")
    assert conn.wait_readable(5, event) is True
    assert conn.readline(100) == b"DONE\r\n"          # nothing was read meanwhile


def test_wait_readable_returns_on_wakeup_and_times_out(pair):
    conn, _client = pair
    event = gevent.event.Event()
    gevent.spawn_later(0.1, event.set)
    started = time.monotonic()
    assert conn.wait_readable(5, event) is False
    assert time.monotonic() - started < 2
    assert conn.wait_readable(5, event) is False       # still set: at once
    event.clear()
    with pytest.raises(Timeout):
        conn.wait_readable(0.2, event)
