"""systemd's Type=notify: READY=1 once every worker listens, RELOADING=1 then READY=1 on
SIGHUP, STOPPING=1 on the way out; and the warnings start-up gives.

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


def test_reload_is_told_to_systemd_and_ready_again(tmp_path, start_geomail):
    import signal
    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    try:
        proc = start_geomail(workers=1, env={"NOTIFY_SOCKET": path})
        assert any("READY=1" in m for m in read_notifications(listener, "READY=1"))
        proc.signal(signal.SIGHUP)
        got = read_notifications(listener, "READY=1")
        reloading = [m for m in got if "RELOADING=1" in m]
        assert reloading and "MONOTONIC_USEC=" in reloading[0], got
        assert "READY=1" in got[-1] and got.index(reloading[0]) < len(got) - 1
        proc.stop()
    finally:
        listener.close()


def test_warnings_for_require_tls_without_a_certificate(tmp_path, start_geomail):
    proc = start_geomail(workers=1, extra_args=["--imap-require-tls", "true"])
    assert "warning: --imap-require-tls without --tls-cert: no IMAP client can log in" \
        in proc.output()


def test_warning_when_the_blob_store_refuses_writes(tmp_path, mysql_url):
    """S3 keys that may read but not write: geomail starts, and says why mail with
    attachments will be refused.  (An embedded blob directory that is not writable
    stops the start instead: tests/server/test_startup_errors.py.)"""
    from tests.fixtures.faults import S3_ACCESS_KEY, PrivateS3
    from tests.fixtures.server import GeomailProcess
    from tests.fixtures.storage import TestStorage
    (tmp_path / "weed").mkdir()
    s3 = PrivateS3(str(tmp_path / "weed"), require_auth=True,
                   read_only_keys=("readonly", "readonly-secret")).start()
    proc = None
    try:
        s3.client().create_bucket(Bucket="probe")
        storage = TestStorage("mysql", db_url=mysql_url, s3_endpoint=s3.endpoint, bucket="probe")
        proc = GeomailProcess(tmp_path / "geomail", storage, workers=1,
                              extra_args=["--oss-access-key", "readonly",
                                          "--oss-secret-key", "readonly-secret"])
        assert S3_ACCESS_KEY != "readonly"
        proc.start()
        assert "warning: the blob store refuses writes (" in proc.output()
        assert "AccessDenied" in proc.output()
        assert port_open(proc.imap_port)
    finally:
        if proc is not None:
            proc.stop()
        s3.stop()
