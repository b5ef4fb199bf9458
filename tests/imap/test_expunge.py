"""EXPUNGE, UID EXPUNGE, and when other sessions are told (never during FETCH/STORE/SEARCH)."""

from tests.imap.conftest import message


def test_expunge_and_uid_expunge(session, deliver):
    for n in range(4):
        deliver(session.account.address, message(f"m{n}"))
    session.ok("SELECT INBOX")
    session.ok("STORE 1:4 +FLAGS.SILENT (\\Deleted)")
    assert session.command("UID EXPUNGE 2:3") == ["* 3 EXPUNGE", "* 2 EXPUNGE", "TAG OK UID EXPUNGE completed"]
    assert session.command("UID SEARCH ALL") == ["* SEARCH 1 4", "TAG OK UID SEARCH completed"]
    assert session.command("EXPUNGE") == ["* 2 EXPUNGE", "* 1 EXPUNGE", "TAG OK EXPUNGE completed"]
    assert session.command("EXPUNGE") == ["TAG OK EXPUNGE completed"]
    session.ok("EXAMINE INBOX")
    assert session.command("EXPUNGE") == ["TAG NO [READ-ONLY] Mailbox is read-only"]


def test_expunge_by_another_session_waits_for_an_allowed_point(session, wire, deliver):
    for n in range(2):
        deliver(session.account.address, message(f"m{n}"))
    session.ok("SELECT INBOX")
    other = wire()
    other.login(session.account)
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    # FETCH, STORE, SEARCH: no EXPUNGE; the expunged message has no data and the
    # FETCH says so (RFC 2180 4.1.3, RFC 5530 EXPUNGEISSUED)
    assert session.command("FETCH 1:2 (UID)") == [
        "* 2 FETCH (UID 2)", "TAG NO [EXPUNGEISSUED] Some of the requested messages no longer exist"]
    # SEARCH cannot answer for the expunged message: OK [EXPUNGEISSUED] (as Dovecot)
    assert session.command("SEARCH ALL") == ["* SEARCH 2", "TAG OK [EXPUNGEISSUED] SEARCH completed"]
    assert session.command("STORE 2 +FLAGS (\\Seen)") == [
        "* 2 FETCH (FLAGS (\\Seen \\Recent))", "TAG OK STORE completed"]
    # UID commands and NOOP may send it
    assert session.command("NOOP") == ["* 1 EXPUNGE", "TAG OK NOOP completed"]
    assert session.command("FETCH 1 (UID)") == ["* 1 FETCH (UID 2)", "TAG OK FETCH completed"]
