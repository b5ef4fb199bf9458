"""STORE (+FLAGS, -FLAGS, FLAGS, .SILENT, keywords) and flag changes seen by other sessions."""

from tests.imap.conftest import message


def test_store_forms(session, deliver):
    for n in range(3):
        deliver(session.account.address, message(f"m{n}"))
    session.ok("SELECT INBOX")
    assert session.command("STORE 1:2 +FLAGS (\\Seen \\Flagged)") == [
        "* 1 FETCH (FLAGS (\\Seen \\Flagged \\Recent))", "* 2 FETCH (FLAGS (\\Seen \\Flagged \\Recent))",
        "TAG OK STORE completed"]
    assert session.command("STORE 2 -FLAGS \\Flagged") == [
        "* 2 FETCH (FLAGS (\\Seen \\Recent))", "TAG OK STORE completed"]
    assert session.command("UID STORE 3 FLAGS ($Work \\Answered)") == [
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] Flags permitted",
        "* 3 FETCH (UID 3 FLAGS (\\Answered $Work \\Recent))", "TAG OK UID STORE completed"]
    assert session.command("STORE 1 +FLAGS.SILENT (\\Deleted)") == ["TAG OK STORE completed"]
    assert session.command("FETCH 1:3 FLAGS") == [
        "* 1 FETCH (FLAGS (\\Seen \\Flagged \\Deleted \\Recent))", "* 2 FETCH (FLAGS (\\Seen \\Recent))",
        "* 3 FETCH (FLAGS (\\Answered $Work \\Recent))", "TAG OK FETCH completed"]
    assert session.command("STORE 1 +FLAGS (\\Bogus)") == ["TAG BAD Invalid system flag \\Bogus"]
    assert session.command("STORE 1 FLAGZ (\\Seen)") == [
        "TAG BAD Syntax error: expected FLAGS, +FLAGS or -FLAGS"]
    assert session.command("STATUS INBOX (UNSEEN)") == ["* STATUS INBOX (UNSEEN 1)", "TAG OK STATUS completed"]


def test_other_session_sees_flag_changes(session, wire, deliver):
    deliver(session.account.address, message())
    session.ok("SELECT INBOX")
    other = wire()
    other.login(session.account)
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
    assert session.command("NOOP") == ["* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))", "TAG OK NOOP completed"]
    assert session.command("NOOP") == ["TAG OK NOOP completed"]
