"""geomail.netio.Connection: deadlines and buffer memory, over a real socket pair."""

import socket
import sys
import threading
import time

import pytest

from geomail.netio import Connection, DeadlineExceeded, LineTooLong, Timeout


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def trickle(sock, data, interval):
    def run():
        for byte in data:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return
            time.sleep(interval)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_line_deadline_cuts_a_trickling_line(pair):
    server, client = pair
    conn = Connection(server, timeout=5)
    trickle(client, b"NOOP and more and more\r\n", 0.1)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        conn.readline(1000, deadline=0.5)
    assert 0.4 <= time.monotonic() - started <= 1.5
    assert server.gettimeout() == 5          # the idle timeout is back


def test_line_deadline_starts_at_the_first_byte(pair):
    server, client = pair
    conn = Connection(server, timeout=5)

    def later():
        time.sleep(0.8)
        client.sendall(b"QUIT\r\n")
    threading.Thread(target=later, daemon=True).start()
    # 0.8 s of silence before the line is the idle timeout's business, not the deadline's.
    assert conn.readline(1000, deadline=0.5) == b"QUIT\r\n"


def test_idle_timeout_is_not_a_deadline(pair):
    server, _ = pair
    conn = Connection(server, timeout=0.3)
    with pytest.raises(Timeout) as caught:
        conn.readline(1000, deadline=10)
    assert not isinstance(caught.value, DeadlineExceeded)


def test_deadline_from_next_byte_spans_several_reads(pair):
    server, client = pair
    conn = Connection(server, timeout=5)
    conn.deadline_from_next_byte(0.6)
    client.sendall(b"a LOGIN {5}\r\n")
    assert conn.readline(1000) == b"a LOGIN {5}\r\n"
    trickle(client, b"abcde", 0.3)
    with pytest.raises(DeadlineExceeded):
        conn.read_exact(5)
    conn.set_deadline(None)
    assert server.gettimeout() == 5


def test_absolute_deadline_and_line_deadline_combine(pair):
    server, client = pair
    conn = Connection(server, timeout=5)
    conn.set_deadline(time.monotonic() + 0.4)
    trickle(client, b"x" * 40 + b"\r\n", 0.05)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        conn.readline(1000, deadline=30)
    assert time.monotonic() - started < 1.0


def test_endless_line_is_cut_by_the_deadline(pair):
    server, client = pair
    conn = Connection(server, timeout=5)
    stop = threading.Event()

    def flood():
        while not stop.is_set():
            try:
                client.sendall(b"y" * 4096)
            except OSError:
                return
            time.sleep(0.01)
    threading.Thread(target=flood, daemon=True).start()
    try:
        with pytest.raises((DeadlineExceeded, LineTooLong)):
            conn.readline(1000, deadline=0.5)
        with pytest.raises(DeadlineExceeded):
            conn.readline(1000, deadline=0.5)     # the discarded rest never ends either
    finally:
        stop.set()


def test_a_big_buffer_is_released_once_read(pair):
    server, client = pair
    conn = Connection(server, timeout=5)
    payload = b"z" * (4 * 1024 * 1024)
    sender = threading.Thread(target=client.sendall, args=(payload + b"tail\r\n",), daemon=True)
    sender.start()
    assert conn.read_exact(len(payload)) == payload
    assert conn.readline(100) == b"tail\r\n"
    sender.join(5)
    assert not conn.buffer
    assert sys.getsizeof(conn.buffer) < 4096
