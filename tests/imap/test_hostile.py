"""Hostile IMAP commands: each gets BAD or NO (never BYE), and never holds the worker's loop.

One ``bin/geomail`` with ``--workers 1``, so that the attacker (client A) and
the bystander (client B) are served by the same worker's gevent loop.  While
A sends each hostile or heavy command, B sends NOOP after NOOP; every NOOP must
be answered within NOOP_BUDGET, A's command must end with the expected status,
and A's next NOOP must be OK.  ``pytest -s`` prints the worst NOOP latency per
attack.  The mailbox holds over 10,000 messages (COPY doubling, so it takes
seconds) for the commands that walk large ranges.
"""

import re
import threading
import time

import pytest

from geomail.store.accounts import create_account
from tests.fixtures.server import serve_module
from tests.imap.conftest import PASSWORD, Wire, attachment_keys, message, multipart

NOOP_BUDGET = 1.0         # seconds: the bystander's NOOP, whatever A sends
MESSAGES = 10_240         # 5 appended, then doubled 11 times by COPY


@pytest.fixture(scope="module")
def lone_worker(tmp_path_factory, test_storage):
    yield from serve_module(tmp_path_factory, "hostile", test_storage)


@pytest.fixture(scope="module")
def hostile_db(test_storage):
    database = test_storage.open_db()
    yield database
    database.close()


def _account(db, name):
    return create_account(db, f"{name}{int(time.time() * 1000) % 10_000_000}@example.com", PASSWORD)


def append(w, data, mailbox="INBOX"):
    tag = "ap%d" % next(w.tags)
    w.send(f"{tag} APPEND {mailbox} {{{len(data)}}}\r\n")
    assert w.readline().startswith(b"+")
    w.send(data + b"\r\n")
    lines = w.read_response(tag)
    assert lines[-1].startswith(f"{tag} OK"), lines


def raw_command(w, data, timeout=120):
    """Send one command (bytes after the tag); the lines up to its tagged response."""
    tag = "h%d" % next(w.tags)
    w.sock.settimeout(timeout)
    w.send(tag.encode() + b" " + data + b"\r\n")
    lines = w.read_response(tag)
    return [line.replace(tag + " ", "TAG ", 1) if line.startswith(tag + " ") else line
            for line in lines]


@pytest.fixture(scope="module")
def big_mailbox(lone_worker, hostile_db):
    """An account whose INBOX holds MESSAGES messages (one with an S3 attachment)."""
    account = _account(hostile_db, "hostile")
    w = Wire(lone_worker.imap_port, timeout=120)
    w.login(account)
    for n in range(4):
        append(w, message(f"big{n}", body=f"Body number {n}, zebra.\r\n"))
    append(w, multipart("Attached")[0])
    w.ok("SELECT INBOX")
    count = 5
    while count < MESSAGES:
        w.ok("COPY 1:* INBOX")
        count *= 2
    w.ok("NOOP")
    w.close()
    return account


class Bystander:
    """Client B: NOOP after NOOP in a thread, recording each round trip."""

    def __init__(self, port, account):
        self.wire = Wire(port, timeout=30)
        self.wire.login(account)
        self.latencies = []
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                lines = self.wire.command("NOOP")
            except Exception as exc:          # reported by the test, not lost in the thread
                self.errors.append(repr(exc))
                return
            self.latencies.append(time.monotonic() - started)
            if lines[-1] != "TAG OK NOOP completed":
                self.errors.append(lines)
                return
            time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=30)
        self.wire.close()


@pytest.fixture(scope="module")
def attacker(lone_worker, big_mailbox):
    w = Wire(lone_worker.imap_port, timeout=120)
    w.login(big_mailbox)
    w.ok("SELECT INBOX")
    yield w
    w.close()


@pytest.fixture(scope="module")
def latency_report():
    report = {}
    yield report
    print("\nworst NOOP latency of a second client on the same worker, per command:")
    for name, (worst, count, status, took) in report.items():
        print(f"  {name:40s} worst {worst * 1000:7.1f} ms over {count:4d} NOOPs; "
              f"A got {status} after {took:.2f} s")


def _many_keywords(count, width, start=0):
    return b" ".join(b"k%0*d" % (width - 1, i) for i in range(start, start + count))


ATTACKS = [
    # (name, command, status A must get, a regex its tagged line must match)
    ("LIST *%*%...x (40 pairs)", b'LIST "" "' + b"*%" * 40 + b'x"', "OK", r"^TAG OK"),
    ("LSUB *%*%...x (40 pairs)", b'LSUB "" "' + b"*%" * 40 + b'x"', "OK", r"^TAG OK"),
    ("LIST 60 KB of *a", b'LIST "" ' + b"*a" * 30000, "OK", r"^TAG OK"),
    ("SEARCH HEADER Subject <60,000 x a>", b"SEARCH HEADER Subject " + b"a" * 60000, "NO",
     r"^TAG NO \[LIMIT\]"),
    ("SEARCH SUBJECT <60,000 x a>", b"SEARCH SUBJECT " + b"a" * 60000, "NO", r"^TAG NO \[LIMIT\]"),
    ("SEARCH HEADER X-<1000>: a", b"SEARCH HEADER X-" + b"y" * 1000 + b" a", "NO",
     r"^TAG NO \[LIMIT\]"),
    ("SEARCH SINCE 31-Dec-9999", b"SEARCH SINCE 31-Dec-9999", "OK", r"^TAG OK"),
    ("SEARCH ON 31-Dec-9999", b"SEARCH ON 31-Dec-9999", "OK", r"^TAG OK"),
    ("SEARCH SENTON 31-Dec-9999", b"SEARCH SENTON 31-Dec-9999", "OK", r"^TAG OK"),
    ("SEARCH BEFORE 01-Jan-0001", b"SEARCH BEFORE 01-Jan-0001", "OK", r"^TAG OK"),
    ("SEARCH SINCE 01-Jan-0000", b"SEARCH SINCE 01-Jan-0000", "BAD", r"^TAG BAD"),
    ("APPEND date-time past year 9999", b'APPEND INBOX "31-Dec-9999 23:59:59 -2359" {5+}\r\nhello',
     "BAD", r"^TAG BAD"),
    ("FETCH 1 FLAGS\\xc3\\xa9", b"FETCH 1 FLAGS\xc3\xa9", "BAD", r"^TAG BAD"),
    ("FETCH 1 (FLAGS \\xff)", b"FETCH 1 (FLAGS \xff)", "BAD", r"^TAG BAD"),
    ("SEARCH \\xc3\\xa9", b"SEARCH \xc3\xa9", "BAD", r"^TAG BAD"),
    ("STORE 1 +FLAGS (1,000 keywords)", b"STORE 1 +FLAGS (" + _many_keywords(1000, 6) + b")",
     "NO", r"^TAG NO \[LIMIT\]"),
    ("STORE 1 +FLAGS (keyword of 1,000 chars)", b"STORE 1 +FLAGS (" + b"k" * 1000 + b")", "NO",
     r"^TAG NO \[LIMIT\]"),
    ("FETCH 1:* (FLAGS ENVELOPE ...) 10k", b"FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
     "OK", r"^TAG OK"),
    ("FETCH 1:* BODYSTRUCTURE 10k", b"FETCH 1:* BODYSTRUCTURE", "OK", r"^TAG OK"),
    ("UID FETCH 1:* BODY.PEEK[HEADER.FIELDS] 10k",
     b"UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (Subject From)])", "OK", r"^TAG OK"),
    ("FETCH 1:300 (BODY.PEEK[] BODY.PEEK[1])", b"FETCH 1:300 (BODY.PEEK[] BODY.PEEK[1])", "OK",
     r"^TAG OK"),
    ("SEARCH TEXT zebra 10k", b"SEARCH TEXT zebra", "OK", r"^TAG OK"),
    ("SEARCH OR ... HEADER 10k", b"SEARCH OR HEADER Subject big3 NOT SMALLER 10 UID 1:*", "OK",
     r"^TAG OK"),
    ("SEARCH 5,000 single numbers", b"SEARCH " + b",".join(b"%d" % n for n in range(1, 10001, 2)),
     "OK", r"^TAG OK"),
    ("STORE 1:* +FLAGS (\\Flagged) 10k", b"STORE 1:* +FLAGS (\\Flagged $Hostile)", "OK",
     r"^TAG OK"),
    ("STORE 1:* -FLAGS.SILENT 10k", b"STORE 1:* -FLAGS.SILENT (\\Flagged $Hostile)", "OK",
     r"^TAG OK"),
    ("FETCH 1:* (UID FLAGS) odd numbers",
     b"FETCH " + b",".join(b"%d" % n for n in range(1, 10001, 2)) + b" (UID FLAGS)", "OK",
     r"^TAG OK"),
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name,command,status,pattern", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_hostile_command_answered_and_worker_responsive(lone_worker, big_mailbox, attacker,
                                                        latency_report, name, command, status,
                                                        pattern):
    with Bystander(lone_worker.imap_port, big_mailbox) as bystander:
        started = time.monotonic()
        lines = raw_command(attacker, command)
        took = time.monotonic() - started
        time.sleep(0.05)
    assert not bystander.errors, bystander.errors
    assert bystander.latencies, "the bystander got no NOOP answered"
    worst = max(bystander.latencies)
    latency_report[name] = (worst, len(bystander.latencies), lines[-1][:40], took)
    assert not any(line.startswith("* BYE") for line in lines), lines[-3:]
    assert re.match(pattern, lines[-1]), lines[-3:]
    assert lines[-1].split(" ")[1] == status
    assert worst < NOOP_BUDGET, f"{name}: a NOOP took {worst:.3f} s"
    assert attacker.command("NOOP")[-1] == "TAG OK NOOP completed"


def test_keywords_past_the_columns_get_limit(lone_worker, hostile_db):
    """STORE of keywords 100 at a time: the message and then the mailbox hit NO [LIMIT],
    long before the 64 KiB TEXT columns; the session goes on and the flags are intact."""
    account = _account(hostile_db, "keywords")
    w = Wire(lone_worker.imap_port, timeout=60)
    w.login(account)
    for n in range(2):
        append(w, message(f"kw{n}"))
    w.ok("SELECT INBOX")
    assert w.command("STORE 1 +FLAGS.SILENT (" + _many_keywords(100, 100).decode() + ")")[-1] \
        == "TAG OK STORE completed"
    # one more keyword on message 1: past the per-message bound
    lines = w.command("STORE 1 +FLAGS (extra)")
    assert lines[-1].startswith("TAG NO [LIMIT]"), lines
    # the mailbox list grows by 100 per message until it is past the per-mailbox bound
    answers = []
    for batch in range(1, 6):
        answers.append(w.command(f"STORE 2 FLAGS.SILENT ("
                                 f"{_many_keywords(100, 100, start=batch * 100).decode()})")[-1])
    assert answers[:4] == ["TAG OK STORE completed"] * 4, answers
    assert answers[4].startswith("TAG NO [LIMIT]"), answers
    assert w.command("NOOP")[-1] == "TAG OK NOOP completed"
    flags = w.command("FETCH 1 FLAGS")[0]
    assert len(re.findall(r"[( ]k\d{99}\b", flags)) == 100 and "extra" not in flags
    # COPY into a mailbox whose FLAGS list would pass the bound copies nothing
    w.ok("CREATE Full")
    append(w, message("full"), mailbox="Full")
    w.ok("SELECT Full")
    for batch in range(10, 14):
        w.ok(f"STORE 1 FLAGS.SILENT ({_many_keywords(100, 100, start=batch * 100).decode()})")
    w.ok("SELECT INBOX")
    assert w.command("COPY 1 Full")[-1].startswith("TAG OK [COPYUID")      # 400 + 100
    lines = w.command("COPY 2 Full")                                        # 500 + 100
    assert lines[-1].startswith("TAG NO [LIMIT]"), lines
    assert w.command("STATUS Full (MESSAGES)")[0] == "* STATUS Full (MESSAGES 2)"
    # APPEND with a keyword the full mailbox does not know yet stores nothing
    data = message("one keyword too many")
    w.send(f"apk APPEND Full (brandnew) {{{len(data)}}}\r\n")
    assert w.readline().startswith(b"+")
    w.send(data + b"\r\n")
    lines = w.read_response("apk")
    assert lines[-1].startswith("apk NO [LIMIT]"), lines
    assert w.command("STATUS Full (MESSAGES)")[0] == "* STATUS Full (MESSAGES 2)"
    w.close()
    assert "Traceback" not in lone_worker.output()


def test_fetch_of_message_expunged_by_another_session(lone_worker, hostile_db):
    """RFC 2180 4.1: B expunges message 2 while A still has it; A's FETCH of body sections
    answers 1 and 3 and ends NO [EXPUNGEISSUED]; STORE likewise; COPY copies nothing;
    A's session goes on and learns of the EXPUNGE at its next NOOP."""
    account = _account(hostile_db, "expunged")
    a = Wire(lone_worker.imap_port, timeout=60)
    a.login(account)
    for n in range(3):
        append(a, message(f"gone{n}", body=f"body {n}\r\n"))
    a.ok("CREATE Other")
    a.ok("SELECT INBOX")
    b = Wire(lone_worker.imap_port, timeout=60)
    b.login(account)
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    lines = a.command("FETCH 1:3 (UID BODY.PEEK[TEXT] BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert lines[-1] == "TAG NO [EXPUNGEISSUED] Some of the requested messages no longer exist", lines
    fetched = [line for line in lines if " FETCH " in line]
    assert [line.split(" ")[1] for line in fetched] == ["1", "3"]
    assert "body 0" in fetched[0] and "body 2" in fetched[1] and "Subject: gone2" in fetched[1]
    lines = a.command("FETCH 2 BODY[]")
    assert lines == ["TAG NO [EXPUNGEISSUED] Some of the requested messages no longer exist"], lines
    lines = a.command("STORE 1:3 +FLAGS (\\Flagged)")
    assert lines[-1] == "TAG OK STORE completed", lines
    assert {line.split(" ")[1] for line in lines[:-1]} == {"1", "3"}, lines
    lines = a.command("COPY 1:3 Other")
    assert lines[-1].startswith("TAG NO [EXPUNGEISSUED]"), lines
    lines = a.command("MOVE 2:3 Other")
    assert lines[-1].startswith("TAG NO [EXPUNGEISSUED]"), lines
    lines = a.command("NOOP")     # the EXPUNGE, and the FLAGS this session's STORE set
    assert lines[0] == "* 2 EXPUNGE" and lines[-1] == "TAG OK NOOP completed", lines
    assert a.command("STATUS Other (MESSAGES)")[0] == "* STATUS Other (MESSAGES 0)"
    assert a.command("FETCH 1:2 (UID)") == ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)",
                                            "TAG OK FETCH completed"]
    a.close()
    b.close()


def test_storage_failure_is_a_tagged_no_and_the_session_goes_on(lone_worker, hostile_db,
                                                                  blob_store):
    """An attachment object gone from S3 behind geomail's back: FETCH BODY[] fails in the
    blob store; the client gets NO [UNAVAILABLE] (a storage failure), no partial response,
    one log line with the session id, and its next commands work."""
    account = _account(hostile_db, "s3gone")
    w = Wire(lone_worker.imap_port, timeout=60)
    w.login(account)
    append(w, multipart("Lost attachment")[0])
    append(w, message("still here"))
    for key in attachment_keys(hostile_db, account.address):
        blob_store.delete([key])
    w.ok("SELECT INBOX")
    lines = w.command("FETCH 1 BODY.PEEK[]")
    assert lines == [lines[-1]] and re.match(r"TAG NO \[(UNAVAILABLE|SERVERBUG)\] ", lines[-1]), \
        lines
    assert w.command("NOOP")[-1] == "TAG OK NOOP completed"
    assert "Subject: still here" in w.command("FETCH 2 BODY.PEEK[HEADER]")[0]
    log = lone_worker.output()
    failures = [line for line in log.splitlines() if "FETCH failed" in line]
    assert failures and re.search(r"IMAP session [0-9a-f]{8} from 127\.0\.0\.1", failures[-1])


@pytest.mark.timeout(120)
def test_catch_up_of_10k_changes_does_not_hold_the_loop(lone_worker, big_mailbox, attacker,
                                                        latency_report):
    """Session C learns at its NOOP of A's STORE 1:* (10,240 FETCH responses); B meanwhile."""
    watcher = Wire(lone_worker.imap_port, timeout=120)
    watcher.login(big_mailbox)
    watcher.ok("SELECT INBOX")
    attacker.ok("STORE 1:* +FLAGS.SILENT (\\Answered)")
    try:
        with Bystander(lone_worker.imap_port, big_mailbox) as bystander:
            started = time.monotonic()
            lines = watcher.command("NOOP")
            took = time.monotonic() - started
            time.sleep(0.05)
        assert not bystander.errors, bystander.errors
        worst = max(bystander.latencies)
        latency_report["NOOP catching up 10k flag changes"] = (worst, len(bystander.latencies),
                                                               lines[-1][:40], took)
        assert lines[-1] == "TAG OK NOOP completed"
        assert sum(1 for line in lines if "\\Answered" in line) >= MESSAGES
        assert worst < NOOP_BUDGET
    finally:
        attacker.ok("STORE 1:* -FLAGS.SILENT (\\Answered)")
        watcher.close()


def test_client_text_echoed_in_a_reply_stays_one_ascii_line(lone_worker, big_mailbox):
    """Client text echoed in a NO (a charset, a mailbox name, sent as literals) with CR LF,
    NUL and 8-bit bytes: the reply is one line of 7-bit text (RFC 3501 resp-text), cut
    short, and nothing the client wrote becomes a response line of its own."""
    w = Wire(lone_worker.imap_port, timeout=30)
    w.login(big_mailbox)
    w.ok("SELECT INBOX")
    charset = b"x\r\n* BYE forged\r\n\x00\xc3\xa9" + b"y" * 400
    w.send(b"t1 SEARCH CHARSET {%d+}\r\n" % len(charset) + charset + b" ALL\r\n")
    name = "\u00e9t\u00e9".encode() + b"z" * 400
    w.send(b"t2 STATUS {%d+}\r\n" % len(name) + name + b" (MESSAGES)\r\n")
    for tag, code in (("t1", "BADCHARSET"), ("t2", "NONEXISTENT")):
        lines = w.read_response(tag)
        assert len(lines) == 1 and lines[0].startswith(f"{tag} NO [{code}"), lines
        assert lines[0].isascii() and lines[0].endswith("...") and len(lines[0]) < 400, lines
    assert w.command("NOOP") == ["TAG OK NOOP completed"]       # no forged line in between
    w.close()
