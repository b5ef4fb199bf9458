"""Fuzzing the IMAP side: the command parser alone, then mutated commands over real connections.

Deterministic (``derandomize=True``): the same inputs every run, about 20 s in
all.  ``bench/fuzz_imap.py`` runs the connection fuzz for as long as asked.

(a) The parser on arbitrary lines and literals, through a real socketpair and
    geomail.netio.Connection, driven by every parser entry point the command
    handlers use: only the typed errors a session turns into BAD/NO may come out.
(b) A real ``bin/geomail``: a few hundred commands of a grammar of real ones,
    with bytes flipped, inserted, deleted or repeated, after LOGIN and SELECT
    of a mailbox with messages.  Never a BYE; NOOP answered after each; no
    traceback in the server's log.
"""

import re
import socket
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geomail.imap import fetch, search
from geomail.store.search import compile_key
from geomail.imap import store_command
from geomail.imap.errors import CommandError
from geomail.imap.listing import Pattern
from geomail.imap.parser import LiteralTooBig, ParseError, Parser
from geomail.imap.view import View
from geomail.netio import Connection, ConnectionClosed, LineTooLong
from geomail.store.accounts import create_account
from geomail.store.database import Database
from geomail.store.messages import MailboxInfo, Snapshot
from tests.fixtures.server import serve_module
from tests.fuzz.imapfuzz import TEMPLATES, FuzzClient, mutate, populate, server_tracebacks
from tests.imap.conftest import PASSWORD

# What a session turns into BAD/NO; ConnectionClosed: the input ended inside a literal.
ALLOWED = (ParseError, LiteralTooBig, CommandError, LineTooLong, ConnectionClosed)


class _Selected:
    """What search.KeyParser reads of a session: a real View of a 5-message mailbox."""

    def __init__(self):
        box = MailboxInfo(1, "INBOX", None, 7, 6, 9, 5, 2, 500, 4)
        self.view = View(box, Snapshot(7, 6, 9, ["$Label1"], [1, 2, 3, 4, 5], [4, 5], 2, 2),
                         readonly=False)
        self.saved_search = [2, 3]


def _search_program(p):
    """Parse a search program; every tree that parses must compile to SQL."""
    key = search.KeyParser(_Selected(), p).program()
    p.end()
    compile_key(key)


def _list_pattern(p):
    Pattern(p.list_mailbox()).match("INBOX/Sent Items/" + "a" * 100)


ENTRY_POINTS = [
    lambda p: p.tag(), lambda p: p.sp(), lambda p: p.atom(), lambda p: p.number(),
    lambda p: p.number32(nonzero=True), lambda p: p.quoted(), lambda p: p.literal(limit=4096),
    lambda p: p.astring(), lambda p: p.astring_str(), lambda p: p.nstring(),
    lambda p: p.list_mailbox(), lambda p: p.flag(), lambda p: p.flag_list(),
    lambda p: p.paren_list(p.astring), lambda p: p.sequence_set(), lambda p: p.date(),
    lambda p: p.date_time(), lambda p: p.end(), lambda p: p.discard(),
    lambda p: fetch.parse_items(p), lambda p: store_command.parse_flags(p),
    _search_program, _list_pattern,
    lambda p: _Selected().view.uid_ranges(p.sequence_set(), uid_mode=False),
]

IMAP_BYTES = st.sampled_from(list(b' ()[]{}<>"\\*%$:,.+-~\r\n0123456789') +
                             [0, 0x7f, 0xc3, 0xa9, 0xff]) | st.integers(0, 255)
LINE = (st.lists(IMAP_BYTES, max_size=120).map(bytes)
        | st.tuples(st.sampled_from(TEMPLATES), st.lists(
            st.tuples(st.integers(0, 3), st.integers(0, 1000), st.integers(0, 255)),
            max_size=6)).map(lambda t: b"a1 " + mutate(*t)))


def _run_parser(data, steps, max_literal=4096, max_line=512):
    left, right = socket.socketpair()
    feeder = threading.Thread(target=lambda: (left.sendall(data), left.shutdown(socket.SHUT_WR)))
    feeder.start()
    try:
        parser = Parser(Connection(right, timeout=5), lambda: None, max_literal, max_line=max_line)
        try:
            parser.next_line()
            for step in steps:
                ENTRY_POINTS[step](parser)
        except ALLOWED:
            try:
                parser.discard()
            except ALLOWED:
                pass
    finally:
        feeder.join()
        left.close()
        right.close()


@settings(derandomize=True, max_examples=1000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINE, min_size=1, max_size=3),
       steps=st.lists(st.integers(0, len(ENTRY_POINTS) - 1), min_size=1, max_size=8))
def test_parser_raises_only_typed_errors(lines, steps):
    _run_parser(b"\r\n".join(lines) + b"\r\n", steps)


# -- (b) over real connections -----------------------------------------------------

@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, mysql_url, s3_endpoint, s3_bucket):
    yield from serve_module(tmp_path_factory, "fuzz", mysql_url, s3_endpoint, s3_bucket)


@pytest.fixture(scope="module")
def fuzz_client(fuzz_server, mysql_url):
    db = Database(mysql_url, 1)
    account = create_account(db, f"fuzz{int(time.time() * 1000) % 10_000_000}@example.com",
                             PASSWORD)
    db.close()
    populate(fuzz_server.imap_port, account)
    client = FuzzClient(fuzz_server.imap_port, account)
    yield client
    client.close()


EDITS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 255)),
                 min_size=1, max_size=4)


class LogTail:
    """What the server logged since the last look (a traceback is a NO [SERVERBUG])."""

    def __init__(self, path):
        self.path = path
        self.offset = path.stat().st_size

    def new_text(self):
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        self.offset += len(data)
        return data.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def fuzz_log(fuzz_server, fuzz_client):
    return LogTail(fuzz_server.log_file)


@pytest.mark.timeout(120)
@settings(derandomize=True, max_examples=600, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(template=st.sampled_from(TEMPLATES), edits=EDITS)
def test_mutated_commands_never_end_the_session(fuzz_client, fuzz_log, template, edits):
    """Each input: no BYE, NOOP and SELECT answered OK, no traceback logged for it."""
    fuzz_client.try_input(mutate(template, edits))
    tracebacks = server_tracebacks(fuzz_log.new_text())
    assert not tracebacks, tracebacks[0][-3000:]


def _reference_match(pattern, name):
    """RFC 3501 §6.3.8 as a regex: fine for the short patterns of the property below."""
    regex = "".join(".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.DOTALL) is not None


@settings(derandomize=True, max_examples=1000, deadline=None, database=None)
@given(pattern=st.text("ab/*%", max_size=10), name=st.text("ab/", max_size=10))
def test_list_pattern_matches_like_the_rfc(pattern, name):
    assert Pattern(pattern).match(name) == _reference_match(pattern, name)
