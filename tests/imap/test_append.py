"""APPEND: flags, internal date, synchronising and non-synchronising literals, APPENDUID, limits."""

import time

from tests.imap.conftest import message, multipart
from tests.imap.test_fetch import session_fetch_bytes


def test_append_synchronizing(session):
    data = message("Appended")
    session.send(f'a1 APPEND Drafts (\\Draft $Todo) "07-Feb-1994 21:52:25 -0800" {{{len(data)}}}\r\n')
    assert session.readline() == b"+ Ready for literal data\r\n"
    session.send(data + b"\r\n")
    done = session.read_response("a1")
    assert done[0].startswith("a1 OK [APPENDUID ") and done[0].endswith(" 1] APPEND completed")
    session.ok("SELECT Drafts")
    assert session.command("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)") == [
        f'* 1 FETCH (FLAGS (\\Draft $Todo \\Recent) INTERNALDATE "08-Feb-1994 05:52:25 +0000" '
        f"RFC822.SIZE {len(data)})", "TAG OK FETCH completed"]
    assert session_fetch_bytes(session, "FETCH 1 BODY.PEEK[]") == data


def test_append_literal_plus_with_attachment(session, db):
    data, payload = multipart()
    session.send(b"a1 APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n")
    assert session.read_response("a1")[0].endswith(" 1] APPEND completed")
    session.ok("SELECT INBOX")
    assert session_fetch_bytes(session, "FETCH 1 BODY.PEEK[]") == data
    assert session.command("UID SEARCH BODY zebra") == ["* SEARCH 1", "TAG OK UID SEARCH completed"]


def test_append_to_selected_mailbox_reports_exists(session):
    session.ok("SELECT INBOX")
    data = message()
    lines = session.command(f"APPEND INBOX {{{len(data)}+}}\r\n".rstrip("\r\n") + "\r\n" + data.decode())
    assert lines[:2] == ["* 1 EXISTS", "* 1 RECENT"] and lines[-1].endswith(" 1] APPEND completed")


def test_append_errors(session):
    session.send(b"a1 APPEND Nowhere {5}\r\n")
    assert session.read_response("a1") == ["a1 NO [TRYCREATE] Mailbox Nowhere does not exist"]
    # non-synchronising: the literal is drained, the session goes on
    session.send(b"a2 APPEND Nowhere {5+}\r\nhello\r\na3 NOOP\r\n")
    assert session.read_response("a2") == ["a2 NO [TRYCREATE] Mailbox Nowhere does not exist"]
    assert session.read_response("a3") == ["a3 OK NOOP completed"]
    assert session.command("APPEND INBOX {0+}\r\n") == ["TAG NO [CANNOT] Cannot append an empty message"]
    assert session.command("APPEND INBOX (\\Bogus) {1+}\r\nx") == ["TAG BAD Invalid system flag \\Bogus"]
    assert session.command("STATUS INBOX (MESSAGES)") == ["* STATUS INBOX (MESSAGES 0)", "TAG OK STATUS completed"]


def test_disconnect_mid_literal_stores_nothing(session, wire, db):
    data, _ = multipart(size=300_000)
    session.send(b"a1 APPEND INBOX {%d+}\r\n" % len(data) + data[:200_000])
    time.sleep(0.3)
    session.close()
    other = wire()
    other.login(session.account)
    time.sleep(0.5)
    assert other.command("STATUS INBOX (MESSAGES)") == ["* STATUS INBOX (MESSAGES 0)", "TAG OK STATUS completed"]
    with db.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM pending_objects WHERE object_key LIKE %s", (f"{session.account.id}/%",))
        assert cur.fetchone()[0] == 0
