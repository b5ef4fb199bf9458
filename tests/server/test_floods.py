"""Floods from one address: connections, big pre-login literals, slow clients.

Against a real ``bin/geomail`` with two workers.  Each attack comes from
127.0.0.1; a second client uses 127.0.0.2 as its source address and must be
served within a second meanwhile.  The workers' resident memory is read from
/proc before, during and after, and must come back to within 20 MB once the
attackers are gone.  The figures are printed (run with -s to see them).
"""

import os
import resource
import selectors
import signal
import socket
import threading
import time

import pytest

from geomail.store.accounts import create_account
from geomail.store.database import Database
from tests.fixtures.server import socket_owner, wait_for

ATTACKER = "127.0.0.1"
VICTIM = "127.0.0.2"
PASSWORD = "flood pass"
RSS_SLACK_KB = 20 * 1024


@pytest.fixture(scope="module", autouse=True)
def many_files():
    """The flood needs a few thousand sockets here (and the server inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def account(mysql_url):
    def make(server):
        database = Database(mysql_url, 1)
        try:
            address = f"flood{os.getpid()}x{int(time.time() * 1000)}@example.com"
            create_account(database, address, PASSWORD)
        finally:
            database.close()
        return address
    return make


# -- measuring ----------------------------------------------------------------

def rss_kb(pid):
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def rss_of(pids):
    return {pid: rss_kb(pid) for pid in pids}


def settled_rss(pids, baseline, timeout=10.0, settle=2.5):
    """RSS per worker after the closes were seen (a couple of heartbeats), once it is
    back within the slack of baseline, or the last reading at the timeout."""
    time.sleep(settle)
    deadline = time.monotonic() + timeout
    while True:
        now = rss_of(pids)
        if all(now[pid] - baseline[pid] <= RSS_SLACK_KB for pid in pids):
            return now
        if time.monotonic() > deadline:
            return now
        time.sleep(0.25)


def show_rss(title, before, peak, after):
    for pid in before:
        print(f"{title}: worker {pid} RSS before {before[pid] / 1024:.1f} MB, "
              f"peak {peak[pid] / 1024:.1f} MB, after {after[pid] / 1024:.1f} MB")


def check_attack(title, latencies, before, peak, after, peak_bounded=False):
    """Print the bystander's worst latency and the RSS figures; assert both bounds."""
    worst = max(max(pair) for pair in latencies)
    print(f"\n{title}: 127.0.0.2 client latency max {worst * 1000:.0f} ms")
    show_rss(title, before, peak, after)
    assert worst < 1.0
    for pid in before:
        if peak_bounded:
            assert peak[pid] - before[pid] <= RSS_SLACK_KB, (pid, before[pid], peak[pid])
        assert after[pid] - before[pid] <= RSS_SLACK_KB, (pid, before[pid], after[pid])


# -- raw clients ----------------------------------------------------------------

def connect(port, source=ATTACKER, timeout=10):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source, 0))


def read_line(sock, buffer=b""):
    while b"\r\n" not in buffer:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed; had {buffer!r}")
        buffer += chunk
    line, _, rest = buffer.partition(b"\r\n")
    return line, rest


def read_until_tagged(sock, tag):
    lines, rest = [], b""
    while True:
        line, rest = read_line(sock, rest)
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines


def first_lines(socks, timeout=20.0):
    """The first line each socket receives (b"" when it is closed without one)."""
    selector = selectors.DefaultSelector()
    pending = {}
    for sock in socks:
        sock.setblocking(False)
        pending[sock] = b""
        selector.register(sock, selectors.EVENT_READ)
    lines = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            sock = key.fileobj
            try:
                chunk = sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            data = pending[sock] + chunk
            if b"\r\n" in data or not chunk:
                lines[sock] = data.partition(b"\r\n")[0]
                del pending[sock]
                selector.unregister(sock)
            else:
                pending[sock] = data
    selector.close()
    assert not pending, f"{len(pending)} connections got no first line in {timeout}s"
    return lines


def open_flood(port, count):
    socks = []
    for _ in range(count):
        socks.append(connect(port))
    return socks


def close_all(socks):
    for sock in socks:
        sock.close()


def victim_latency(server, address):
    """Seconds the 127.0.0.2 client waits for the SMTP greeting and for IMAP LOGIN+NOOP."""
    started = time.monotonic()
    with connect(server.smtp_port, VICTIM) as sock:
        greeting, _ = read_line(sock)
        smtp = time.monotonic() - started
        assert greeting.startswith(b"220 "), greeting
        sock.sendall(b"QUIT\r\n")
    started = time.monotonic()
    with connect(server.imap_port, VICTIM) as sock:
        greeting, rest = read_line(sock)
        assert greeting.startswith(b"* OK"), greeting
        sock.sendall(f'a LOGIN "{address}" "{PASSWORD}"\r\nb NOOP\r\n'.encode())
        lines = read_until_tagged(sock, b"b")
        imap = time.monotonic() - started
        assert any(line.startswith(b"a OK") for line in lines), lines
        assert lines[-1].startswith(b"b OK"), lines
        sock.sendall(b"c LOGOUT\r\n")
    return smtp, imap


def wait_serving(server, pids):
    """The listeners accept as soon as the master binds them: wait for the workers."""
    for pid in pids:
        wait_for(lambda: f"[{pid}] INFO geomail.worker: worker ready" in server.output(),
                 message=f"worker {pid} to serve")


def warm_up(server, address, rounds=8):
    """Sessions on both workers first, so that lazy start-up costs are not in the baseline."""
    for _ in range(rounds):
        victim_latency(server, address)


# -- the attacks ------------------------------------------------------------------

class TestIdleFlood:
    FLOOD = 1000            # per protocol, from one address

    def test_idle_connections_from_one_address(self, start_geomail, account):
        server = start_geomail(workers=2)
        pids = server.wait_workers(2)
        address = account(server)
        warm_up(server, address)
        before = rss_of(pids)

        started = time.monotonic()
        smtp_flood = open_flood(server.smtp_port, self.FLOOD)
        imap_flood = open_flood(server.imap_port, self.FLOOD)
        opened = time.monotonic() - started
        smtp_first = first_lines(smtp_flood)
        imap_first = first_lines(imap_flood)
        latencies = [victim_latency(server, address) for _ in range(6)]
        peak = rss_of(pids)

        smtp_served = [s for s, line in smtp_first.items() if line.startswith(b"220 ")]
        imap_served = [s for s, line in imap_first.items() if line.startswith(b"* OK")]
        smtp_refused = [line for line in smtp_first.values() if line.startswith(b"421 4.7.0")]
        imap_refused = [line for line in imap_first.values()
                        if line.startswith(b"* BYE [UNAVAILABLE]")]
        print(f"\nidle flood: {2 * self.FLOOD} connections opened in {opened:.2f}s; "
              f"SMTP served {len(smtp_served)} refused {len(smtp_refused)}, "
              f"IMAP served {len(imap_served)} refused {len(imap_refused)}")
        print("idle flood: 127.0.0.2 client latency, SMTP greeting max "
              f"{max(s for s, _ in latencies) * 1000:.0f} ms, IMAP LOGIN+NOOP max "
              f"{max(i for _, i in latencies) * 1000:.0f} ms")
        # The limit (default 50) holds for the host, not per worker: the two
        # workers together keep exactly 50 of each protocol.
        assert len(smtp_served) == 50 and len(imap_served) == 50
        assert len(smtp_refused) == self.FLOOD - 50
        assert len(imap_refused) == self.FLOOD - 50
        assert max(max(pair) for pair in latencies) < 1.0

        close_all(smtp_flood + imap_flood)
        after = settled_rss(pids, before)
        show_rss("idle flood", before, peak, after)
        for pid in pids:
            assert after[pid] - before[pid] <= RSS_SLACK_KB, (pid, before[pid], after[pid])
        # Every slot is free again: 50 new connections from the attacker are served.
        again = open_flood(server.smtp_port, 50)
        try:
            assert all(line.startswith(b"220 ") for line in first_lines(again).values())
        finally:
            close_all(again)


    def test_held_flood_memory_comes_back(self, start_geomail, account):
        """With the per-address limit out of the way, 2,000 sessions are really held."""
        server = start_geomail(workers=2, extra_args=["--max-connections-per-ip", "100000"])
        pids = server.wait_workers(2)
        address = account(server)
        warm_up(server, address)
        before = rss_of(pids)
        flood = open_flood(server.smtp_port, self.FLOOD) + open_flood(server.imap_port, self.FLOOD)
        greeted = first_lines(flood).values()
        assert sum(line.startswith((b"220 ", b"* OK")) for line in greeted) == 2 * self.FLOOD
        latencies = [victim_latency(server, address) for _ in range(4)]
        peak = rss_of(pids)
        close_all(flood)
        after = settled_rss(pids, before)
        check_attack("held flood", latencies, before, peak, after)

    def test_counts_of_a_killed_worker_are_forgotten(self, start_geomail):
        """A worker killed with SIGKILL leaves its row; its successor clears it."""
        server = start_geomail(workers=2, extra_args=["--max-connections-per-ip", "10"])
        pids = server.wait_workers(2)
        held = open_flood(server.smtp_port, 10)
        assert all(line.startswith(b"220 ") for line in first_lines(held).values())
        owners = {socket_owner(server.smtp_port, s.getsockname()[1], pids) for s in held}
        victim = next(pid for pid in pids if pid in owners)
        kept = [s for s in held
                if socket_owner(server.smtp_port, s.getsockname()[1], pids) != victim]
        os.kill(victim, signal.SIGKILL)
        successor = next(pid for pid in server.wait_workers(2, exclude=[victim])
                         if pid not in pids)
        wait_serving(server, [successor])
        more = open_flood(server.smtp_port, 12)
        lines = list(first_lines(more).values())
        served = sum(line.startswith(b"220 ") for line in lines)
        close_all(held + more)
        # The survivors' connections still count; the dead worker's do not.
        assert served == 10 - len(kept), (served, len(kept), lines)
        assert len(kept) < 10


class TestPreloginLiterals:
    CONNECTIONS = 100

    def test_big_login_literals(self, start_geomail, account):
        server = start_geomail(workers=2, extra_args=["--max-connections-per-ip", "500"])
        pids = server.wait_workers(2)
        address = account(server)
        warm_up(server, address)
        before = rss_of(pids)

        socks = open_flood(server.imap_port, self.CONNECTIONS)
        for sock in socks:
            read_line(sock)
        half = self.CONNECTIONS // 2
        # Synchronising: the server must refuse at once, without "+".
        for sock in socks[:half]:
            sock.sendall(b"a LOGIN {1048576}\r\n")
        answers = [read_line(sock)[0] for sock in socks[:half]]
        assert all(a.startswith(b"a NO [TOOBIG]") for a in answers), answers[:3]
        for sock in socks[:half]:
            sock.sendall(b"b LOGIN {5}\r\n")
        assert all(read_line(sock)[0].startswith(b"+") for sock in socks[:half])
        for sock in socks[:half]:
            sock.sendall(b"ab")                       # and never the rest
        # Non-synchronising (LITERAL+): a whole 1 MiB literal, then half a second one.
        megabyte = b"x" * 1048576
        for sock in socks[half:]:
            sock.sendall(b"a LOGIN {1048576+}\r\n" + megabyte + b" {1048576+}\r\n"
                         + megabyte[:524288])
        time.sleep(1.0)
        peak = rss_of(pids)
        latencies = [victim_latency(server, address) for _ in range(4)]
        close_all(socks)
        after = settled_rss(pids, before)
        check_attack("login literals", latencies, before, peak, after, peak_bounded=True)

    def test_small_login_literals_still_work(self, start_geomail, account):
        server = start_geomail(workers=1)
        address = account(server).encode()
        with connect(server.imap_port) as sock:
            read_line(sock)
            sock.sendall(b"a LOGIN {%d}\r\n" % len(address))
            assert read_line(sock)[0].startswith(b"+")
            sock.sendall(address + b" {%d+}\r\n" % len(PASSWORD) + PASSWORD.encode() + b"\r\n")
            assert read_until_tagged(sock, b"a")[-1].startswith(b"a OK")
            # After login the pre-login budget no longer applies.
            sock.sendall(b"b NOOP\r\n")
            assert read_until_tagged(sock, b"b")[-1].startswith(b"b OK")


def trickle(sock, data, interval=1.0, limit=30.0):
    """Send data a byte at a time; (seconds from the first byte to the server's close, replies)."""
    started = time.monotonic()
    received = b""
    sock.settimeout(interval)
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            break
        try:
            chunk = sock.recv(4096)
            received += chunk
            if not chunk:
                break
        except socket.timeout:
            pass
        except OSError:
            break
        if time.monotonic() - started > limit:
            break
    return time.monotonic() - started, received


class TestSlowClients:
    ARGS = ["--smtp-line-deadline", "2", "--smtp-command-deadline", "4",
            "--imap-command-deadline", "2", "--imap-login-timeout", "3"]

    def test_slow_and_silent_clients_are_cut_off(self, start_geomail, account):
        server = start_geomail(workers=2, extra_args=self.ARGS)
        address = account(server)
        warm_up(server, address, rounds=4)
        results = {}

        def smtp_trickle():
            with connect(server.smtp_port) as sock:
                read_line(sock)
                results["smtp line"] = trickle(sock, b"NOOP " + b"x" * 60 + b"\r\n")

        def smtp_chatter():
            # Complete commands, never a message: the command phase deadline ends it.
            with connect(server.smtp_port) as sock:
                started = time.monotonic()
                read_line(sock)
                replies = b""
                sock.settimeout(1.0)
                while time.monotonic() - started < 20:
                    try:
                        sock.sendall(b"NOOP\r\n")
                        time.sleep(0.5)
                        chunk = sock.recv(4096)
                    except socket.timeout:
                        continue
                    except OSError:
                        break
                    replies += chunk
                    if not chunk or b"421 " in replies:
                        break
                results["smtp commands"] = (time.monotonic() - started, replies)

        def smtp_delivering():
            # The command deadline is per transaction: a client that delivers goes on.
            with connect(server.smtp_port) as sock:
                started = time.monotonic()
                read_line(sock)
                sock.sendall(b"EHLO client.example\r\n")
                replies = b""
                for number in range(3):
                    time.sleep(1.8)
                    sock.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                                 % address.encode())
                    time.sleep(0.2)
                    sock.sendall(b"Subject: %d\r\n\r\nhello\r\n.\r\n" % number)
                    time.sleep(0.5)
                sock.sendall(b"QUIT\r\n")
                sock.settimeout(5)
                while chunk := sock.recv(4096):
                    replies += chunk
                results["smtp delivering"] = (time.monotonic() - started, replies)

        def imap_trickle():
            with connect(server.imap_port) as sock:
                read_line(sock)
                results["imap command"] = trickle(sock, b'a LOGIN "someone" "' + b"y" * 60)

        def imap_silent():
            with connect(server.imap_port) as sock:
                started = time.monotonic()
                read_line(sock)
                sock.settimeout(20)
                data = b""
                while True:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                results["imap silent"] = (time.monotonic() - started, data)

        def imap_logged_in_idle():
            # After login the long idle timeout holds: 4 s of silence is fine.
            with connect(server.imap_port) as sock:
                read_line(sock)
                sock.sendall(f'a LOGIN "{address}" "{PASSWORD}"\r\n'.encode())
                read_until_tagged(sock, b"a")
                time.sleep(4.5)
                sock.sendall(b"b NOOP\r\n")
                results["imap after login"] = read_until_tagged(sock, b"b")[-1]

        threads = [threading.Thread(target=f) for f in
                   (smtp_trickle, smtp_chatter, smtp_delivering, imap_trickle, imap_silent, imap_logged_in_idle)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(40)
        print()
        for name, value in results.items():
            if isinstance(value, tuple):
                print(f"slow clients: {name} ended after {value[0]:.1f}s: {value[1][-60:]!r}")

        elapsed, data = results["smtp line"]
        assert b"421 4.4.2" in data and 1.5 <= elapsed <= 8, (elapsed, data)
        elapsed, data = results["smtp commands"]
        assert data.count(b"250 ") >= 3 and b"421 4.4.2" in data and 3.5 <= elapsed <= 10, \
            (elapsed, data)
        elapsed, data = results["smtp delivering"]
        assert elapsed > 6 and data.count(b"250 2.0.0") >= 3 and b"221 " in data, (elapsed, data)
        assert b"421" not in data, data
        elapsed, data = results["imap command"]
        assert b"* BYE" in data and 1.5 <= elapsed <= 8, (elapsed, data)
        elapsed, data = results["imap silent"]
        assert data.startswith(b"* BYE") and 2.5 <= elapsed <= 9, (elapsed, data)
        assert results["imap after login"].startswith(b"b OK")


class TestImplicitTLS:
    def test_handshakes_are_counted_and_refusals_immediate(self, start_geomail, tls_pair):
        """Connections that never start TLS count against their address; the one over
        the limit is closed at once, and another address still gets TLS and a greeting."""
        import ssl
        from tests.fixtures.services import free_port

        cert, key = tls_pair
        imaps_port = free_port()
        server = start_geomail(workers=2, extra_args=[
            "--imaps-port", str(imaps_port), "--tls-cert", cert, "--tls-key", key,
            "--max-connections-per-ip", "3"])
        wait_serving(server, server.wait_workers(2))
        silent = [connect(imaps_port) for _ in range(3)]    # no ClientHello, ever
        time.sleep(0.5)
        started = time.monotonic()
        with connect(imaps_port) as over:
            over.settimeout(5)
            try:
                data = over.recv(4096)
            except ConnectionResetError:
                data = b""
            refused_after = time.monotonic() - started
        assert data == b"" and refused_after < 1.0, (data, refused_after)

        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False
        started = time.monotonic()
        with context.wrap_socket(connect(imaps_port, VICTIM)) as tls:
            greeting, _ = read_line(tls)
        victim = time.monotonic() - started
        close_all(silent)
        print(f"\nimplicit TLS: over-limit connection closed after {refused_after * 1000:.0f} ms, "
              f"127.0.0.2 TLS greeting after {victim * 1000:.0f} ms")
        assert greeting.startswith(b"* OK") and victim < 1.0
