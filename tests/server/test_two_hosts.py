"""Two geomail hosts on one MySQL database and one bucket (issue 10, item 8).

Two master processes run as two machines would: bound to 127.0.0.1 and
127.0.0.2 (Linux routes all of 127/8 to lo), each with its own ports,
``--hostname`` and log, sharing nothing but the database and the bucket.
The database is then the only channel between them, so IDLE, flag changes,
UID allocation and the janitor's lock are proven across hosts, not only
across the workers of one master.
"""

import itertools
import re
import smtplib
import socket
import threading
import time
import uuid

import pytest

from geomail import janitor
from geomail.store import intents
from geomail.store.accounts import create_account
from geomail.store.database import Database
from tests.fixtures.server import GeomailProcess, wait_for
from tests.fixtures.services import _create_database, _drop_database, _new_database_url
from tests.imap.conftest import PASSWORD, Wire, message

HOSTS = (("127.0.0.1", "host-a.geomail.test"), ("127.0.0.2", "host-b.geomail.test"))
WORKERS = 2                      # per host: changes cross workers as well as hosts
JANITOR_INTERVAL = 0.5           # seconds; the grace before an intent is forgotten is 2x
LEVEL = re.compile(r"^\S+ \S+ \[\d+\] (WARNING|ERROR|CRITICAL) ", re.M)
_accounts = itertools.count(1)


@pytest.fixture(scope="module")
def shared_db_url():
    """A database for this module alone: no other test's server delivers into it or sweeps it."""
    url = _create_database(_new_database_url())
    yield url
    _drop_database(url)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, shared_db_url, s3_endpoint, s3_bucket):
    """Host A and host B, started at once (both migrate the same empty database)."""
    procs = [GeomailProcess(tmp_path_factory.mktemp(name.split(".")[0]), shared_db_url,
                            s3_endpoint, s3_bucket, workers=WORKERS, hostname=name, host=address,
                            extra_args=["--janitor-interval", str(JANITOR_INTERVAL),
                                        "--log-level", "debug"])
             for address, name in HOSTS]
    try:
        for proc in procs:
            proc.start(wait=False)
        for proc in procs:
            proc.wait_ready(workers=WORKERS)
        yield procs
    finally:
        for proc in procs:
            proc.stop()
    for proc in procs:           # whatever the tests did, neither host complained
        log = proc.log_file.read_text(errors="replace")
        assert not LEVEL.search(log) and "Traceback" not in log, (proc.hostname, proc.output())


@pytest.fixture(scope="module")
def db(hosts, shared_db_url):
    database = Database(shared_db_url, 4)
    yield database
    database.close()


@pytest.fixture
def account(db):
    return create_account(db, f"twohosts{next(_accounts)}x{uuid.uuid4().hex[:8]}@example.com",
                          PASSWORD)


class HostWire(Wire):
    """tests/imap's raw IMAP client, connected to one host's own address."""

    def __init__(self, proc, timeout=30):
        self.sock = socket.create_connection((proc.host, proc.imap_port), timeout=timeout)
        self.buffer = b""
        self.tags = itertools.count(1)
        self.greeting = self.readline()
        assert proc.hostname.encode() in self.greeting, self.greeting


def session(proc, account, mailbox="INBOX"):
    """A logged-in IMAP session on proc with mailbox selected."""
    wire = HostWire(proc)
    wire.login(account)
    wire.ok(f"SELECT {mailbox}")
    return wire


class Idler:
    """An IDLE command whose untagged lines a thread reads and stamps on arrival."""

    def __init__(self, wire):
        self.wire = wire
        self.lines = []          # (time.monotonic() on arrival, line)
        self.consumed = 0
        self.cond = threading.Condition()
        wire.send(b"i1 IDLE\r\n")
        assert wire.readline() == b"+ idling\r\n"
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                line = self.wire.readline().decode("utf-8", "replace").rstrip("\r\n")
            except (OSError, ConnectionError):
                return
            with self.cond:
                self.lines.append((time.monotonic(), line))
                self.cond.notify_all()
            if line.startswith("i1 "):
                return

    def wait_for(self, pattern, timeout=5.0):
        """(arrival time, match) of the next line matching pattern."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for index in range(self.consumed, len(self.lines)):
                    match = re.search(pattern, self.lines[index][1])
                    if match:
                        self.consumed = index + 1
                        return self.lines[index][0], match
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line matching {pattern!r} within {timeout} s: "
                                         f"{[line for _, line in self.lines]}")
                self.cond.wait(left)

    def done(self):
        self.wire.send(b"DONE\r\n")
        self.wait_for(r"^i1 OK IDLE terminated$")
        self.thread.join(5)


def smtp_to(proc):
    smtp = smtplib.SMTP(proc.host, proc.smtp_port, timeout=20)
    smtp.ehlo("client.test")
    return smtp


def send(smtp, address, data):
    """One transaction on an open SMTP connection: (time DATA began, time of its 250)."""
    assert smtp.mail("alice@example.org")[0] == 250
    assert smtp.rcpt(address)[0] == 250
    started = time.monotonic()
    code, reply = smtp.data(data)
    accepted = time.monotonic()
    assert code == 250, reply
    return started, accepted


def flags_of(match):
    return set(match.group(1).split())


def test_delivery_through_a_reaches_an_idler_on_b(hosts, account):
    host_a, host_b = hosts
    idle = session(host_b, account)
    idler = Idler(idle)
    latencies = []
    with smtp_to(host_a) as smtp:
        for n in range(1, 4):
            started, accepted = send(smtp, account.address, message(f"through A {n}"))
            arrived, _ = idler.wait_for(rf"^\* {n} EXISTS$")
            latencies.append((arrived - accepted, arrived - started))
    idler.done()
    print("\nA's 250 -> B's EXISTS: " + ", ".join(f"{a * 1000:.0f} ms" for a, _ in latencies)
          + "; A's DATA -> B's EXISTS: " + ", ".join(f"{d * 1000:.0f} ms" for _, d in latencies))
    assert max(a for a, _ in latencies) < 1.0, latencies
    # what B's idler was told about is what A stored: A's Received header, read on B
    lines = idle.ok("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT RECEIVED)])")
    assert len(lines) == 3, lines
    for n, line in enumerate(lines, 1):
        assert f"Subject: through A {n}\r\n" in line and f"by {host_a.hostname} (geomail)" in line
    idle.close()


def test_concurrent_delivery_through_both_hosts(hosts, account, db):
    per_host, threads_per_host = 100, 4
    sent, errors = [], []        # (subject, host, time DATA began, time of its 250)

    def deliver(proc, thread):
        try:
            with smtp_to(proc) as smtp:
                for n in range(per_host // threads_per_host):
                    subject = f"{proc.hostname} t{thread} n{n}"
                    started, accepted = send(smtp, account.address, message(subject))
                    sent.append((subject, proc.hostname, started, accepted))
        except Exception as exc:  # noqa: BLE001 - reported below, with the thread's name
            errors.append(f"{proc.hostname} thread {thread}: {exc!r}")

    threads = [threading.Thread(target=deliver, args=(proc, t))
               for t in range(threads_per_host) for proc in hosts]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    elapsed = time.monotonic() - began
    assert not errors, errors
    total = per_host * len(hosts)
    assert len(sent) == total

    # the database: every message once, UIDs 1..200 with no gap, counters that add up
    with db.cursor() as cur:
        cur.execute("SELECT m.uid, m.modseq, m.subject, m.trace_headers, m.rfc822_size"
                    " FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
                    " WHERE b.account_id = %s AND b.name = 'INBOX' ORDER BY m.uid",
                    (account.id,))
        rows = cur.fetchall()
        cur.execute("SELECT uidnext, highestmodseq, message_count, unseen_count, total_size"
                    " FROM mailboxes WHERE account_id = %s AND name = 'INBOX'", (account.id,))
        uidnext, highestmodseq, count, unseen, size = cur.fetchone()
    uids = [row[0] for row in rows]
    assert uids == list(range(1, total + 1))
    assert sorted(row[2] for row in rows) == sorted(subject for subject, *_ in sent)
    modseqs = [row[1] for row in rows]
    assert modseqs == sorted(set(modseqs)), "MODSEQ must grow with the UID (one row lock)"
    assert (uidnext, highestmodseq, count, unseen, size) == (
        total + 1, modseqs[-1], total, total, sum(row[4] for row in rows))
    uid_of = {row[2]: row[0] for row in rows}
    for row in rows:             # each message went through the host it was sent to
        host = row[2].split()[0]
        assert f"by {host} (geomail)".encode() in bytes(row[3])

    # arrival order: a message accepted (250) before another's DATA began has the lower UID
    ordered_pairs = 0
    by_accepted = sorted(sent, key=lambda item: item[3])
    for subject, _, _, accepted in by_accepted:
        for later, _, started, _ in sent:
            if started > accepted:
                ordered_pairs += 1
                assert uid_of[subject] < uid_of[later], (subject, later)
    print(f"\n{total} messages through 2 hosts x {threads_per_host} threads in {elapsed:.2f} s; "
          f"{ordered_pairs} accepted-before-sent pairs all in UID order")

    # IMAP on both hosts says the same
    status = (f'* STATUS INBOX (MESSAGES {total} UIDNEXT {total + 1} UNSEEN {total} '
              f'SIZE {size})')
    for proc in hosts:
        wire = HostWire(proc)
        wire.login(account)
        assert wire.ok("STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE)") == [status]
        selected = wire.ok("EXAMINE INBOX")
        assert f"* {total} EXISTS" in selected and f"* OK [UIDNEXT {total + 1}] Predicted next UID" \
            in selected
        assert wire.ok("UID SEARCH ALL") == ["* SEARCH " + " ".join(map(str, uids))]
        fetched = wire.ok("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        seen = {}
        for line in fetched:
            match = re.search(r"UID (\d+) BODY\[HEADER\.FIELDS \(SUBJECT\)\] \{\d+\}\r\n"
                              r"Subject: ([^\r]*)\r\n", line)
            seen[match.group(2)] = int(match.group(1))
        assert seen == uid_of, proc.hostname
        wire.close()


def test_flag_change_on_a_reaches_sessions_on_b(hosts, account):
    host_a, host_b = hosts
    with smtp_to(host_b) as smtp:
        send(smtp, account.address, message("flag me"))
    idle = session(host_b, account)
    idler = Idler(idle)
    poller = session(host_b, account)
    writer = session(host_a, account)
    fetch = r"^\* 1 FETCH \(.*FLAGS \(([^)]*)\)"

    changes = [("+FLAGS (\\Seen $TwoHosts)", {"\\Seen", "$TwoHosts"}, set()),
               ("-FLAGS ($TwoHosts)", {"\\Seen"}, {"$TwoHosts"})]
    for change, present, absent in changes:
        writer.ok(f"UID STORE 1 {change}")
        stored = time.monotonic()
        deadline = stored + 2.0  # the idler's thread stamps its lines meanwhile
        while True:              # NOOP on the other session of B until it reports the change
            match = next(filter(None, (re.search(fetch, line) for line in poller.ok("NOOP"))),
                         None)
            if match or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        noop_latency = time.monotonic() - stored
        assert match, f"NOOP on B never reported {change}"
        assert present <= flags_of(match) and not absent & flags_of(match), match.group(0)
        arrived, match = idler.wait_for(fetch)
        assert present <= flags_of(match) and not absent & flags_of(match), match.group(0)
        idle_latency = arrived - stored
        print(f"\nSTORE {change} on A: IDLE on B {idle_latency * 1000:.0f} ms, "
              f"NOOP on B {noop_latency * 1000:.0f} ms")
        assert idle_latency < 1.0
    idler.done()
    for wire in (idle, poller, writer):
        wire.close()


def log_marks(procs):
    return [proc.log_file.stat().st_size for proc in procs]


def log_since(proc, mark):
    with open(proc.log_file, "rb") as log:
        log.seek(mark)
        return log.read().decode("utf-8", "replace")


def test_janitor_work_is_done_once(hosts, db, blob_store):
    """A released intent with its object: while we hold the janitor's MySQL lock both hosts
    skip; once we let go, one sweep settles it, once, and the object is gone."""
    key = f"twohosts/{uuid.uuid4().hex}/stale.bin"
    blob_store.put(key, b"abandoned by a delivery that gave up\r\n" * 100)
    grace = 2 * JANITOR_INTERVAL
    marks = log_marks(hosts)
    with intents.sweep_lock(db, janitor.lock_name(db)) as held:
        assert held
        row = intents.record(db, blob_store.bucket, key, "gone.geomail.test", 4242)
        intents.release(db, [row])           # any host's janitor's, after the grace
        time.sleep(grace + 3 * JANITOR_INTERVAL)
        for proc, mark in zip(hosts, marks):
            assert "sweep skipped" in log_since(proc, mark), proc.hostname
        assert blob_store.exists(key)
        assert intents.by_keys(db, [key]) == [(row, blob_store.bucket, key)]
    let_go = time.monotonic()
    wait_for(lambda: not intents.by_keys(db, [key]), timeout=15, message="the intent settled")
    settled_after = time.monotonic() - let_go
    assert not blob_store.exists(key)

    logs = [log_since(proc, mark) for proc, mark in zip(hosts, marks)]
    settled = [(proc.hostname, line) for proc, log in zip(hosts, logs)
               for line in log.splitlines() if "janitor: settled" in line]
    assert len(settled) == 1 and "settled 1 abandoned" in settled[0][1], settled
    removals = {proc.hostname: log.count(f"janitor: removed {blob_store.bucket}/{key}")
                for proc, log in zip(hosts, logs)}
    skipped = {proc.hostname: log.count("sweep skipped") for proc, log in zip(hosts, logs)}
    print(f"\nintent settled {settled_after:.2f} s after the lock was free, by {settled[0][0]}; "
          f"object removals per host {removals}; sweeps skipped per host {skipped}")
    assert removals[settled[0][0]] >= 1   # the host that forgot the row removed the object
    for log in logs:
        assert not LEVEL.search(log) and "Traceback" not in log
