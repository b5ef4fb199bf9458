"""The pre-forking master, driven as an operator would: a process and signals."""

import imaplib
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.fixtures.services import free_port
from tests.fixtures.server import GEOMAIL, clean_env, socket_owner, wait_for


def greet(port, timeout=5):
    """Connect and read the greeting line; raises on refusal or silence."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(1024)
            if not chunk:
                raise ConnectionError("closed before greeting")
            data += chunk
        return data


class TestProtocolsAnswer:
    def test_smtp_greeting_and_quit(self, start_geomail):
        server = start_geomail(workers=2)
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            code, message = client.ehlo("client.example")
            assert code == 250
            assert b"ENHANCEDSTATUSCODES" in message
            assert client.noop()[0] == 250
        banner = greet(server.smtp_port)
        assert banner == b"220 mx.test.invalid ESMTP geomail\r\n"

    def test_imap_greeting_capability_logout(self, start_geomail):
        server = start_geomail(workers=2)
        assert greet(server.imap_port).startswith(b"* OK [CAPABILITY IMAP4rev1")
        client = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
        typ, caps = client.capability()
        assert typ == "OK" and b"IMAP4rev1" in caps[0]
        assert client.logout()[0] == "BYE"


class TestWorkers:
    def test_connections_spread_over_workers(self, start_geomail):
        server = start_geomail(workers=4)
        workers = server.wait_workers(4)
        owners = set()
        sockets = []
        try:
            for _ in range(60):
                sock = socket.create_connection(("127.0.0.1", server.smtp_port), timeout=5)
                sock.recv(100)
                sockets.append(sock)
                owners.add(socket_owner(server.smtp_port, sock.getsockname()[1], workers))
        finally:
            for sock in sockets:
                sock.close()
        owners.discard(None)
        assert len(owners) >= 2, f"all connections landed on {owners}"

    def test_killed_worker_is_replaced_and_serves(self, start_geomail):
        server = start_geomail(workers=2)
        before = server.wait_workers(2)
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        after = server.wait_workers(2, exclude=[victim])
        (newcomer,) = set(after) - set(before)
        served = False
        for _ in range(200):
            with socket.create_connection(("127.0.0.1", server.smtp_port), timeout=5) as sock:
                assert sock.recv(100).startswith(b"220 ")
                if socket_owner(server.smtp_port, sock.getsockname()[1], [newcomer]) == newcomer:
                    served = True
                    break
        assert served, "the replacement worker never served a connection"

    def test_stuck_worker_is_killed_and_replaced(self, start_geomail):
        server = start_geomail(workers=2, extra_args=["--worker-timeout", "2"])
        before = server.wait_workers(2)
        os.kill(before[0], signal.SIGSTOP)
        server.wait_workers(2, exclude=[before[0]], timeout=20)
        assert "timed out" in server.output()

    def test_ttin_ttou_change_worker_count(self, start_geomail):
        server = start_geomail(workers=2)
        server.wait_workers(2)
        server.signal(signal.SIGTTIN)
        server.wait_workers(3)
        server.signal(signal.SIGTTIN)
        server.wait_workers(4)
        server.signal(signal.SIGTTOU)
        server.wait_workers(3)
        assert greet(server.smtp_port).startswith(b"220 ")


class TestSignals:
    def test_hup_replaces_every_worker_without_refusing(self, start_geomail):
        server = start_geomail(workers=2)
        before = server.wait_workers(2)
        failures, successes = [], []
        stop = threading.Event()

        def client_loop():
            while not stop.is_set():
                try:
                    line = greet(server.smtp_port)
                    (successes if line.startswith(b"220 ") else failures).append(line)
                except OSError as exc:
                    failures.append(repr(exc))
                time.sleep(0.05)   # 20 connections a second

        thread = threading.Thread(target=client_loop)
        thread.start()
        try:
            time.sleep(0.5)
            server.signal(signal.SIGHUP)
            server.wait_workers(2, exclude=before, timeout=30)
            time.sleep(1.0)
        finally:
            stop.set()
            thread.join()
        assert not failures, failures
        assert len(successes) >= 20
        assert server.proc.poll() is None

    def test_hup_rereads_the_config_file(self, start_geomail, tmp_path):
        conf = tmp_path / "geomail.conf"
        conf.write_text("hostname = before.example\nworkers = 1\n")
        server = start_geomail(workers=None, hostname=None, extra_args=["--config", str(conf)])
        before = server.wait_workers(1)
        assert greet(server.smtp_port) == b"220 before.example ESMTP geomail\r\n"
        conf.write_text("hostname = after.example\nworkers = 2\n")
        server.signal(signal.SIGHUP)
        server.wait_workers(2, exclude=before)
        assert greet(server.smtp_port) == b"220 after.example ESMTP geomail\r\n"

    def test_term_stops_within_10s_and_removes_pidfile(self, start_geomail):
        server = start_geomail(workers=2)
        workers = server.wait_workers(2)
        assert server.pidfile.read_text().strip() == str(server.pid)
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
        assert not server.pidfile.exists()
        for pid in workers:
            assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read()

    def test_term_lets_a_session_in_flight_finish_then_closes_it(self, start_geomail):
        server = start_geomail(workers=1)
        client = smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10)
        client.ehlo("x.example")
        server.signal(signal.SIGTERM)
        assert server.proc.wait(timeout=10) == 0
        with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
            client.noop()
            client.noop()

    def test_quit_stops_fast(self, start_geomail):
        server = start_geomail(workers=2)
        server.signal(signal.SIGQUIT)
        assert server.proc.wait(timeout=10) == 0
        assert not server.pidfile.exists()

    def test_usr1_reopens_the_log_file(self, start_geomail):
        server = start_geomail(workers=1)
        rotated = server.log_file.with_suffix(".log.1")
        os.rename(server.log_file, rotated)
        server.signal(signal.SIGUSR1)
        wait_for(server.log_file.exists, message="a new log file")
        server.signal(signal.SIGTTIN)   # something that logs
        wait_for(lambda: "workers: 2" in server.log_file.read_text(), message="log line")


class TestStartupErrors:
    def run(self, *args, timeout=30):
        return subprocess.run([sys.executable, str(GEOMAIL), *args], capture_output=True,
                              text=True, timeout=timeout, env=clean_env())

    def test_port_in_use_is_one_clear_error(self, mysql_url, s3_endpoint, s3_bucket):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        try:
            result = self.run("--host", "127.0.0.1", "--smtp-port", str(port), "--imap-port",
                              "1", "--db-url", mysql_url, "--oss-endpoint", s3_endpoint)
        finally:
            blocker.close()
        assert result.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}: the address is already in use" in result.stderr
        assert "Traceback" not in result.stderr

    def test_a_second_geomail_on_the_same_port_refuses_to_start(self, geomail_server, mysql_url,
                                                                s3_endpoint):
        """SO_REUSEPORT would let it share the port silently; the start-up probe stops it."""
        port = geomail_server.smtp_port
        result = self.run("--host", "127.0.0.1", "--smtp-port", str(port), "--imap-port",
                          str(free_port()), "--db-url", mysql_url, "--oss-endpoint", s3_endpoint)
        assert result.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}: the address is already in use" in result.stderr
        assert "another geomail?" in result.stderr
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:   # the first one still serves
            assert client.noop()[0] == 250

    def test_unbindable_address_is_one_clear_error(self, mysql_url, s3_endpoint):
        """As root any port binds, so use an address this host lacks; as a user, port 25."""
        if os.geteuid() == 0:
            host, port, reason = "192.0.2.1", str(free_port()), "does not belong to this machine"
        else:
            host, port, reason = "127.0.0.1", "25", "permission denied"
        result = self.run("--host", host, "--smtp-port", port, "--imap-port", str(free_port()),
                          "--db-url", mysql_url, "--oss-endpoint", s3_endpoint)
        assert result.returncode != 0
        assert f"cannot listen on {host}:{port}: " in result.stderr
        assert reason in result.stderr
        assert "Traceback" not in result.stderr

    @pytest.mark.parametrize("args, message", [
        (["--smtp-port", "70000"], "argument --smtp-port: '70000' is not a valid port"),
        (["--db-url", "postgres://x/y"], "argument --db-url: database URL must start with mysql://"),
        (["--oss-endpoint", "ftp://x"], "argument --oss-endpoint"),
        (["--workers", "0"], "argument --workers"),
        (["--no-such-option"], "unrecognized arguments: --no-such-option"),
    ])
    def test_bad_option_exits_2_with_one_line(self, args, message):
        result = self.run(*args)
        assert result.returncode == 2
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1

    def test_unreachable_storage_is_one_clear_error(self, mysql_url):
        result = self.run("--host", "127.0.0.1", "--smtp-port", str(free_port()),
                          "--imap-port", str(free_port()), "--db-url", mysql_url,
                          "--oss-endpoint", "http://127.0.0.1:9")
        assert result.returncode != 0
        assert "storage check failed" in result.stderr
        assert "Traceback" not in result.stderr


def test_master_imports_no_worker_libraries():
    code = ("import sys, geomail.cli, geomail.arbiter, geomail.config;"
            "heavy = [m for m in ('gevent', 'pymysql', 'boto3', 'botocore', 'dbutils')"
            " if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=str(GEOMAIL.parent.parent))
    assert result.returncode == 0, result.stdout + result.stderr


def test_workers_drop_to_the_configured_user(start_geomail, maildb):
    """The master keeps root to bind; workers run as --user and still deliver."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    server = start_geomail(workers=2, extra_args=["--user", "nobody"])
    def uids(pid):
        with open(f"/proc/{pid}/status") as handle:
            return next(line for line in handle if line.startswith("Uid:")).split()[1:]

    for pid in server.wait_workers(2):
        wait_for(lambda: uids(pid) == [str(nobody.pw_uid)] * 4, message="worker to drop root")
    assert uids(server.pid) == ["0"] * 4
    address = f"dropped{time.time_ns()}@example.com"
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.sendmail("a@example.net", [address],
                        "Subject: =?iso-2022-jp?b?GyRCJUYlOSVIGyhC?=\r\n"
                        "Content-Type: text/plain; charset=iso-2022-jp\r\n\r\n\x1b$B%F%9%H\x1b(B\r\n")
    assert len(maildb.messages(address)) == 1


def test_term_lets_a_data_transfer_in_flight_finish(start_geomail, maildb):
    """Graceful stop: a message half-sent when TERM arrives is still stored and answered 250."""
    from tests.fixtures.smtpwire import SMTPWire
    server = start_geomail(workers=1)
    address = f"inflight{time.time_ns()}@example.com"
    with SMTPWire(server.smtp_port) as client:
        client.cmd("EHLO x.example")
        client.cmd("MAIL FROM:<a@example.net>")
        client.cmd(f"RCPT TO:<{address}>")
        assert client.cmd("DATA").startswith("354")
        client.send("Subject: in flight\r\n\r\nfirst half\r\n")
        server.signal(signal.SIGTERM)
        time.sleep(0.5)
        client.send("second half\r\n.\r\n")
        assert client.reply().startswith("250 2.0.0")
        assert client.reply() == "421 4.3.2 Server shutting down, try again later"
    assert server.proc.wait(timeout=10) == 0
    (row,) = maildb.messages(address)
    assert maildb.message_bytes(row) == b"Subject: in flight\r\n\r\nfirst half\r\nsecond half\r\n"


def test_term_says_bye_to_imap_sessions(start_geomail):
    """Graceful stop: IMAP sessions get * BYE, then the master exits 0."""
    server = start_geomail(workers=1)
    sock = socket.create_connection(("127.0.0.1", server.imap_port), timeout=10)
    file = sock.makefile("rb")
    assert file.readline().startswith(b"* OK")
    server.signal(signal.SIGTERM)
    assert file.readline() == b"* BYE Server shutting down\r\n"
    assert file.readline() == b""
    file.close()
    sock.close()
    assert server.proc.wait(timeout=10) == 0
