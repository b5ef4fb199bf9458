"""IDLE: new mail delivered by any worker reaches an idling client within a second."""

import time

from tests.imap.conftest import message


def test_idle_sees_delivery_quickly(session, deliver, wire):
    session.ok("SELECT INBOX")
    session.send(b"i1 IDLE\r\n")
    assert session.readline() == b"+ idling\r\n"
    for n in range(1, 4):
        started = time.monotonic()
        deliver(session.account.address, message(f"m{n}"))   # lands on either worker
        assert session.readline() == b"* %d EXISTS\r\n" % n
        assert time.monotonic() - started < 1.0
        assert session.readline() == b"* %d RECENT\r\n" % n
    # flag changes and expunges from another session arrive too
    other = wire()
    other.login(session.account)
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert session.readline() == b"* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent))\r\n"
    other.ok("EXPUNGE")
    assert session.readline() == b"* 1 EXPUNGE\r\n"
    session.send(b"DONE\r\n")
    assert session.read_response("i1") == ["i1 OK IDLE terminated"]
    assert session.command("NOOP") == ["TAG OK NOOP completed"]


def test_idle_without_mailbox_and_bad_end(session):
    session.send(b"i1 IDLE\r\n")
    assert session.readline() == b"+ idling\r\n"
    session.send(b"NOPE\r\n")
    assert session.read_response("i1") == ["i1 BAD Expected DONE to end IDLE"]
