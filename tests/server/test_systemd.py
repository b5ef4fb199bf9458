"""systemd's Type=notify: READY=1 once every worker listens, STOPPING=1 on the way out.

The test plays systemd: it binds a datagram socket, hands its path to a
real ``bin/geomail`` in NOTIFY_SOCKET and reads what arrives.
"""

import socket
import time

from tests.fixtures.server import port_open


def read_notifications(sock, until, timeout=30):
    """Datagrams received until one contains ``until`` (or the timeout)."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
        if until in got[-1]:
            break
    return got


def test_ready_only_when_workers_listen_and_stopping_at_exit(tmp_path, start_geomail):
    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    try:
        proc = start_geomail(workers=2, env={"NOTIFY_SOCKET": path})
        got = read_notifications(listener, "READY=1")
        assert any("READY=1" in message for message in got), got
        ready = next(message for message in got if "READY=1" in message)
        assert "STATUS=serving with 2 workers" in ready and f"MAINPID={proc.pid}" in ready
        # by the time READY=1 came, both workers had reported in: both ports answer
        assert port_open(proc.smtp_port) and port_open(proc.imap_port)
        assert len(proc.workers()) == 2
        assert "worker ready (slot 1)" in proc.output() and "worker ready (slot 0)" in proc.output()
        proc.stop()
        assert any("STOPPING=1" in message for message in read_notifications(listener, "STOPPING=1"))
    finally:
        listener.close()


def test_ready_is_sent_once(tmp_path, start_geomail):
    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    try:
        proc = start_geomail(workers=1, env={"NOTIFY_SOCKET": path})
        assert any("READY=1" in m for m in read_notifications(listener, "READY=1"))
        time.sleep(2.5)          # several turns of the master's loop
        assert read_notifications(listener, "READY=1", timeout=0.5) == []
        proc.stop()
    finally:
        listener.close()


def test_warnings_at_start_for_a_localhost_name_and_no_domains(tmp_path, start_geomail):
    proc = start_geomail(workers=1, hostname="localhost", domains="")
    log = proc.output()
    assert "WARNING geomail.master: warning: this server calls itself 'localhost'" in log
    assert "WARNING geomail.master: warning: no --domains (MAIL_DOMAINS) set" in log
