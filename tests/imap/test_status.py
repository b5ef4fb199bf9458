"""STATUS (RFC 3501 §6.3.10) counters kept right by delivery, STORE and EXPUNGE."""

from tests.imap.conftest import message


def test_status_counts(session, deliver):
    assert session.command("STATUS INBOX (MESSAGES RECENT UIDNEXT UNSEEN)") == [
        "* STATUS INBOX (MESSAGES 0 RECENT 0 UIDNEXT 1 UNSEEN 0)", "TAG OK STATUS completed"]
    for n in range(3):
        deliver(session.account.address, message(f"m{n}"))
    assert session.command("STATUS INBOX (MESSAGES RECENT UIDNEXT UNSEEN)") == [
        "* STATUS INBOX (MESSAGES 3 RECENT 3 UIDNEXT 4 UNSEEN 3)", "TAG OK STATUS completed"]
    session.ok("SELECT INBOX")
    session.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    session.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    session.ok("EXPUNGE")
    session.ok("UNSELECT")
    assert session.command("STATUS INBOX (MESSAGES RECENT UIDNEXT UNSEEN)") == [
        "* STATUS INBOX (MESSAGES 2 RECENT 0 UIDNEXT 4 UNSEEN 1)", "TAG OK STATUS completed"]


def test_status_errors(session):
    assert session.command("STATUS Nope (MESSAGES)") == ["TAG NO [NONEXISTENT] Mailbox Nope does not exist"]
    assert session.command("STATUS INBOX (BOGUS)") == ["TAG BAD Syntax error: unknown STATUS item BOGUS"]
    assert session.command("STATUS INBOX") == ["TAG BAD Syntax error: expected space at end of line"]
