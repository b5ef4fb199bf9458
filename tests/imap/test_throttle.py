"""Password guessing throttled per account and per client address, across connections and workers.

A real ``bin/geomail`` with two workers and a database of its own (the
counters live in it, so the rest of the suite's logins from 127.0.0.1 are
not affected).  Attackers use their own loopback source addresses
(127.0.0.5 ...), the legitimate client 127.0.0.2.
"""

import base64
import re
import socket
import threading
import time

import pytest

from geomail.store.accounts import create_account
from geomail.store.database import Database
from tests.fixtures.server import GeomailProcess, wait_for
from tests.fixtures.services import _create_database, _drop_database, _new_database_url
from tests.imap.conftest import PASSWORD, Wire

ACCOUNT_BUDGET = 5
ADDRESS_BUDGET = 15
LEGIT_ADDRESS = "127.0.0.2"
NO_AUTH = "NO [AUTHENTICATIONFAILED] Authentication failed"
BYE_AUTH = "* BYE [AUTHENTICATIONFAILED] Too many failed logins"


class SourceWire(Wire):
    """A Wire whose connection comes from a chosen loopback address."""

    def __init__(self, port, source, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0))
        self.buffer = b""
        self.tags = iter(range(1, 10 ** 9))
        self.greeting = self.readline()


@pytest.fixture(scope="module")
def throttled(tmp_path_factory, s3_endpoint, s3_bucket):
    url = _create_database(_new_database_url())
    proc = GeomailProcess(tmp_path_factory.mktemp("throttle"), url, s3_endpoint, s3_bucket,
                          workers=2, extra_args=[
                              "--max-account-login-failures", str(ACCOUNT_BUDGET),
                              "--max-address-login-failures", str(ADDRESS_BUDGET)])
    proc.start()
    proc.wait_workers(2)
    db = Database(url, 2)
    yield proc, db
    proc.stop()
    db.close()
    _drop_database(url)


def checked_failures(proc, user):
    """Log lines of failed logins of ``user`` whose password was checked."""
    pattern = re.compile(rf"IMAP login failed for {re.escape(user)} from \S+: wrong password")
    return [line for line in proc.log_file.read_text(errors="replace").splitlines()
            if pattern.search(line)]


def timed_login(port, source, account, password=PASSWORD):
    """(seconds to the tagged answer, the tagged answer) of one LOGIN from ``source``."""
    w = SourceWire(port, source)
    try:
        started = time.monotonic()
        lines = w.command(f'LOGIN {account.address} "{password}"')
        return time.monotonic() - started, lines[-1]
    finally:
        w.close()


class Guessers:
    """``count`` threads guessing ``users`` round robin from ``source`` until ``stop()``.

    Every tagged answer goes to ``answers`` as (time, user, password, line);
    after --max-login-failures the server says BYE and the thread reconnects.
    """

    def __init__(self, port, source, users, count, password_of=lambda n: f"guess{n}"):
        self.port, self.source, self.users, self.count = port, source, users, count
        self.password_of = password_of
        self.stopping = threading.Event()
        self.answers, self.wires = [], set()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(count)]
        for thread in self.threads:
            thread.start()

    def _run(self, index):
        n = index
        while not self.stopping.is_set():
            w = SourceWire(self.port, self.source)
            self.wires.add(w)
            try:
                while not self.stopping.is_set():
                    user, password = self.users[n % len(self.users)], self.password_of(n)
                    n += self.count
                    w.send(f't LOGIN {user} "{password}"\r\n')
                    line = w.readline().decode().rstrip("\r\n")
                    self.answers.append((time.monotonic(), user, password, line))
                    if line.startswith("* BYE"):
                        break
                    assert line == f"t {NO_AUTH}" or line.startswith("t OK"), line
            except (ConnectionError, OSError):
                pass
            finally:
                self.wires.discard(w)
                w.close()

    def stop(self):
        """Stop now: answers still awaited are not waited for."""
        self.stopping.set()
        for w in list(self.wires):
            try:
                w.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self.threads:
            thread.join(timeout=30)
        return self.answers


def test_parallel_guessing_of_one_account(throttled):
    proc, db = throttled
    victim = create_account(db, "victim@example.com", PASSWORD)
    other = create_account(db, "bystander@example.com", PASSWORD)
    started = time.monotonic()
    # once the budget is spent (seen in the log, not assumed after so many seconds, which
    # a loaded machine may not reach), half of the guessers send the right password
    spent = threading.Event()

    def watch_budget():
        while not spent.is_set() and time.monotonic() - started < 30:
            if len(checked_failures(proc, victim.address)) >= ACCOUNT_BUDGET:
                spent.set()
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_budget, daemon=True)
    watcher.start()
    attack = Guessers(proc.imap_port, "127.0.0.5", [victim.address], 20,
                      password_of=lambda n: PASSWORD if spent.is_set() and n % 2 == 0
                      else f"guess{n}")
    legit = []
    for _ in range(5):
        time.sleep(2)
        legit.append(timed_login(proc.imap_port, LEGIT_ADDRESS, other))
    time.sleep(max(0.0, 12.5 - (time.monotonic() - started)))
    # a loaded machine may reach the spent budget late: let the right password be tried
    # (and refused) a few times before stopping, for up to 40 s in all
    while time.monotonic() - started < 40 and sum(
            1 for a in list(attack.answers) if a[2] == PASSWORD and a[3].startswith("t ")) < 3:
        time.sleep(0.2)
    answers = attack.stop()
    spent.set()
    watcher.join()

    checked = checked_failures(proc, victim.address)
    answered = [a for a in answers if a[3].startswith("t ")]
    late = [a for a in answered if 2 <= a[0] - started < 12]
    print(f"\n{len(answered)} guesses answered in {answers[-1][0] - started:.1f} s, "
          f"{len(late) / 10:.2f}/s from 2 s to 12 s; passwords checked: {len(checked)}; "
          f"a bystander's logins from {LEGIT_ADDRESS} took "
          f"{', '.join(f'{s:.2f}' for s, _ in legit)} s")
    # the budget is exact: concurrent attempts on two workers do not slip past it
    assert len(checked) == ACCOUNT_BUDGET
    # after the budget nothing is checked: the right password, sent again and again, is refused
    right = [a for a in answered if a[2] == PASSWORD]
    assert len(right) >= 3 and all(a[3] == f"t {NO_AUTH}" for a in right)
    # answered attempts are slowed too: each of the 20 connections gets one answer per 5 s
    # at most (three rounds fit in 10 s: 6/s; unthrottled, they got 14/s)
    assert len(late) / 10 <= 6
    # a different account from another address is not delayed
    assert all(line.startswith("TAG OK") for _, line in legit), legit
    assert max(seconds for seconds, _ in legit) < 2.0    # a throttle delay is 2 s or more

    # the legitimate owner recovers when the window has passed (aged here in the store)
    with db.cursor() as cur:
        cur.execute("UPDATE login_failures SET window_start = window_start - INTERVAL 1 HOUR "
                    "WHERE kind = 'account' AND subject = %s", (victim.address,))
    seconds, line = timed_login(proc.imap_port, LEGIT_ADDRESS, victim)
    assert line.startswith("TAG OK") and seconds < 1.0


def test_one_address_guessing_many_accounts(throttled):
    proc, db = throttled
    target = create_account(db, "target@example.com", PASSWORD)
    users = [f"sprayed{i}@example.com" for i in range(40)]
    attack = Guessers(proc.imap_port, "127.0.0.6", users, 20)

    def checked_now():
        return sum(len(checked_failures(proc, user)) for user in users)
    # the budget's checks take a scrypt each: seen in the log (a loaded machine is slow),
    # then a second more in which no further one may come
    wait_for(lambda: checked_now() >= ADDRESS_BUDGET, timeout=30, message="the budget spent")
    time.sleep(1)
    answers = attack.stop()
    checked = checked_now()
    print(f"\n{len(answers)} answers to 40 sprayed names from one address; passwords checked: {checked}")
    assert checked == ADDRESS_BUDGET
    # the address is over its budget: even the right password of an account is not checked from it
    refused = []
    thread = threading.Thread(target=lambda: refused.append(timed_login(proc.imap_port, "127.0.0.6",
                                                                        target)))
    thread.start()
    # while the same account from another address logs in at once
    seconds, line = timed_login(proc.imap_port, LEGIT_ADDRESS, target)
    assert line.startswith("TAG OK") and seconds < 1.0
    thread.join(timeout=30)
    assert refused[0][1] == f"TAG {NO_AUTH}" and refused[0][0] >= 4.5


def plain(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_authenticate_plain_shares_the_budget(throttled):
    proc, db = throttled
    account = create_account(db, "plainuser@example.com", PASSWORD)
    wires = [SourceWire(proc.imap_port, f"127.0.0.{10 + i}") for i in range(ACCOUNT_BUDGET)]
    for w in wires:
        w.send(f"t1 AUTHENTICATE PLAIN {plain(account.address, 'wrong')}\r\n")
    # the log line is written when the password has been checked, before the delay
    wait_for(lambda: len(checked_failures(proc, account.address)) == ACCOUNT_BUDGET, timeout=10,
             message="the budget's passwords to be checked")
    # over the account's budget: the right password is refused by LOGIN and AUTHENTICATE alike
    by_login = []
    thread = threading.Thread(target=lambda: by_login.append(
        timed_login(proc.imap_port, "127.0.0.20", account)))
    thread.start()
    w = SourceWire(proc.imap_port, "127.0.0.21")
    assert w.command(f"AUTHENTICATE PLAIN {plain(account.address, PASSWORD)}") == [f"TAG {NO_AUTH}"]
    w.close()
    thread.join(timeout=30)
    assert by_login[0][1] == f"TAG {NO_AUTH}"
    for w in wires:
        assert w.read_response("t1") == [f"t1 {NO_AUTH}"]
        w.close()
    assert len(checked_failures(proc, account.address)) == ACCOUNT_BUDGET


def test_huge_user_name_is_clipped_in_the_log(throttled):
    proc, db = throttled
    logged_before = len(proc.log_file.read_bytes())
    w = SourceWire(proc.imap_port, "127.0.0.30")
    # A 100 KB literal is refused before login (8 KiB budget) without being read ...
    w.send(f"t0 LOGIN {{{100_000}}}\r\n")
    assert w.readline().startswith(b"t0 NO [TOOBIG]")
    # ... and the longest name that fits is cut in the log line of its failure.
    user = "u" * 8_000 + "@example.com"
    w.send(f"t1 LOGIN {{{len(user)}}}\r\n")
    assert w.readline() == b"+ Ready for literal data\r\n"
    w.send(user + ' "x"\r\n')
    assert w.read_response("t1") == [f"t1 {NO_AUTH}"]
    w.close()
    lines = proc.log_file.read_bytes()[logged_before:].decode(errors="replace").splitlines()
    ours = [line for line in lines if "IMAP login failed for uuuu" in line]
    assert len(ours) == 1 and "from 127.0.0.30" in ours[0] and "(+" in ours[0]
    longest = max(lines, key=len)
    print(f"\nlongest log line: {len(longest)} characters")
    assert len(longest) <= 1000, longest[:600]
