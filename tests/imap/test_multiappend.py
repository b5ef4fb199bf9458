"""MULTIAPPEND (RFC 3502): several messages in one APPEND, all or nothing, one APPENDUID
with a uid-set (RFC 4315)."""

import time

from tests.imap.conftest import attachment_keys, message, multipart
from tests.imap.test_fetch import session_fetch_bytes


def uidvalidity(session, mailbox="INBOX"):
    line = session.command(f"STATUS {mailbox} (UIDVALIDITY)")[0]
    return int(line.rsplit(" ", 1)[1].rstrip(")"))


def count(session, mailbox="INBOX"):
    line = session.command(f"STATUS {mailbox} (MESSAGES)")[0]
    return int(line.rsplit(" ", 1)[1].rstrip(")"))


def test_two_messages_synchronizing(session):
    first, second = message("First"), message("Second")
    session.send(b"a1 APPEND INBOX (\\Seen) {%d}\r\n" % len(first))
    assert session.readline() == b"+ Ready for literal data\r\n"
    session.send(first + b' (\\Flagged $Work) "07-Feb-1994 21:52:25 -0800" {%d}\r\n' % len(second))
    assert session.readline() == b"+ Ready for literal data\r\n"
    session.send(second + b"\r\n")
    assert session.read_response("a1") == [
        f"a1 OK [APPENDUID {uidvalidity(session)} 1:2] APPEND completed"]
    session.ok("SELECT INBOX")
    assert session.command("FETCH 1:2 (FLAGS INTERNALDATE)")[1] == (
        '* 2 FETCH (FLAGS (\\Flagged $Work \\Recent) INTERNALDATE "08-Feb-1994 05:52:25 +0000")')
    assert session_fetch_bytes(session, "FETCH 1 BODY.PEEK[]") == first
    assert session_fetch_bytes(session, "FETCH 2 BODY.PEEK[]") == second


def test_three_messages_literal_plus_and_uid_set(session, deliver):
    deliver(session.account.address, message("Already there"))
    data = [message(f"Number {i}") for i in range(3)]
    command = b"APPEND INBOX " + b" ".join(b"{%d+}\r\n" % len(d) + d for d in data)
    assert session.command(command.decode()) == [
        f"TAG OK [APPENDUID {uidvalidity(session)} 2:4] APPEND completed"]
    assert count(session) == 4


def test_a_failing_message_undoes_the_others(session, db, blob_store):
    """The second message is refused: the first, with its attachment, is removed again."""
    first, _ = multipart("Stored then removed")
    bogus = b"APPEND INBOX {%d+}\r\n" % len(first) + first + b" (\\Bogus) {2+}\r\nhi"
    assert session.command(bogus.decode()) == ["TAG BAD Invalid system flag \\Bogus"]
    assert count(session) == 0
    assert attachment_keys(db, session.account.address) == []
    with db.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
                    "WHERE b.account_id = %s", (session.account.id,))
        assert cur.fetchone()[0] == 0
    # the next APPEND gets a new UID: the removed one is never reused
    data = message("After")
    assert session.command(f"APPEND INBOX {{{len(data)}+}}\r\n{data.decode()}") == [
        f"TAG OK [APPENDUID {uidvalidity(session)} 2] APPEND completed"]


def test_empty_and_too_big_later_messages(session):
    data = message("Fine")
    empty = b"APPEND INBOX {%d+}\r\n" % len(data) + data + b" {0+}\r\n"
    assert session.command(empty.decode()) == ["TAG NO [CANNOT] Cannot append an empty message"]
    session.send(b"a2 APPEND INBOX {%d+}\r\n" % len(data) + data + b" {60000000}\r\n")
    assert session.read_response("a2") == [
        "a2 NO [TOOBIG] Literal of 60000000 bytes is larger than the limit of 52428800"]
    assert session.command("NOOP") == ["TAG OK NOOP completed"]
    assert count(session) == 0


def test_bad_syntax_between_messages(session):
    data = message("Fine")
    assert session.command((b"APPEND INBOX {%d+}\r\n" % len(data) + data + b" junk").decode()) == [
        "TAG BAD Syntax error: expected literal at 'junk'"]
    assert session.command((b"APPEND INBOX {%d+}\r\n" % len(data) + data + b"  ").decode())[0] \
        .startswith("TAG BAD Syntax error")
    assert count(session) == 0


def test_selected_session_sees_nothing_of_the_undo(session, wire):
    """Another session catching up after the failed command finds no message (the one
    stored and removed again is in neither its view nor the mailbox)."""
    watcher = wire()
    watcher.login(session.account)
    watcher.ok("SELECT INBOX")
    data = message("Fleeting")
    bogus = b"APPEND INBOX {%d+}\r\n" % len(data) + data + b" (\\Bogus) {2+}\r\nhi"
    assert session.command(bogus.decode()) == ["TAG BAD Invalid system flag \\Bogus"]
    assert watcher.command("NOOP") == ["TAG OK NOOP completed"]
    assert watcher.command("SEARCH ALL") == ["* SEARCH", "TAG OK SEARCH completed"]


def test_disconnect_during_second_message_leaves_nothing(session, wire):
    first, (second, _) = message("One"), multipart(size=300_000)
    session.send(b"a1 APPEND INBOX {%d+}\r\n" % len(first) + first
                 + b" {%d+}\r\n" % len(second) + second[:150_000])
    time.sleep(0.5)
    session.close()
    other = wire()
    other.login(session.account)
    deadline = time.monotonic() + 10
    while count(other) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert count(other) == 0
