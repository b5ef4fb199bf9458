"""SELECT, EXAMINE, UNSELECT, CLOSE, CHECK, and \\Recent across sessions."""

import re

from tests.imap.conftest import message


def uidvalidity(lines):
    return int(re.search(r"UIDVALIDITY (\d+)", "\n".join(lines)).group(1))


def mailboxid(lines):
    return re.search(r"MAILBOXID \((F\d+)\)", "\n".join(lines)).group(1)


def test_select_empty_and_examine(session):
    lines = session.ok("SELECT INBOX")
    v = uidvalidity(lines)
    m = mailboxid(lines)
    assert lines == [
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted",
        "* 0 EXISTS", "* 0 RECENT",
        f"* OK [UIDVALIDITY {v}] UIDs valid", "* OK [UIDNEXT 1] Predicted next UID",
        f"* OK [MAILBOXID ({m})] Ok",
        "* OK [HIGHESTMODSEQ 1] Highest"]
    assert session.command("EXAMINE inbox") == [
        "* OK [CLOSED] Previous mailbox closed",        # RFC 7162 §3.2.11
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        "* OK [PERMANENTFLAGS ()] Flags permitted",
        "* 0 EXISTS", "* 0 RECENT",
        f"* OK [UIDVALIDITY {v}] UIDs valid", "* OK [UIDNEXT 1] Predicted next UID",
        f"* OK [MAILBOXID ({m})] Ok",
        "* OK [HIGHESTMODSEQ 1] Highest",
        "TAG OK [READ-ONLY] Examine completed"]
    assert session.command("STORE 1:* +FLAGS (\\Seen)") == ["TAG NO [READ-ONLY] Mailbox is read-only"]


def test_select_missing_leaves_selected_state(session):
    session.ok("SELECT INBOX")
    assert session.command("SELECT Nope") == ["* OK [CLOSED] Previous mailbox closed",
                                              "TAG NO [NONEXISTENT] Mailbox Nope does not exist"]
    assert session.command("FETCH 1 FLAGS") == ["TAG BAD FETCH not allowed in the authenticated state"]


def test_recent_goes_to_the_first_session(session, wire, deliver):
    address = session.account.address
    deliver(address, message("one"))
    deliver(address, message("two"))
    lines = session.ok("SELECT INBOX")
    assert "* 2 EXISTS" in lines and "* 2 RECENT" in lines and "* OK [UNSEEN 1] First unseen" in lines
    other = wire()
    other.login(session.account)
    lines = other.ok("SELECT INBOX")
    assert "* 2 EXISTS" in lines and "* 0 RECENT" in lines
    assert session.command("FETCH 1:2 FLAGS") == [
        "* 1 FETCH (FLAGS (\\Recent))", "* 2 FETCH (FLAGS (\\Recent))", "TAG OK FETCH completed"]
    assert other.command("FETCH 1:2 FLAGS") == [
        "* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())", "TAG OK FETCH completed"]


def test_new_mail_appears_at_noop(session, deliver):
    session.ok("SELECT INBOX")
    deliver(session.account.address, message())
    assert session.command("NOOP") == ["* 1 EXISTS", "* 1 RECENT", "TAG OK NOOP completed"]
    assert session.command("NOOP") == ["TAG OK NOOP completed"]


def test_close_expunges_silently_unselect_does_not(session, deliver):
    deliver(session.account.address, message("a"))
    deliver(session.account.address, message("b"))
    session.ok("SELECT INBOX")
    session.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert session.command("UNSELECT") == ["TAG OK UNSELECT completed"]
    assert "* 2 EXISTS" in session.ok("SELECT INBOX")
    assert session.command("CHECK") == ["TAG OK CHECK completed"]
    assert session.command("CLOSE") == ["TAG OK CLOSE completed"]
    assert session.command("STATUS INBOX (MESSAGES)") == [
        "* STATUS INBOX (MESSAGES 1)", "TAG OK STATUS completed"]
