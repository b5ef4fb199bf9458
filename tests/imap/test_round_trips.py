"""What the round-trip savings of issue 13 must not change (docs/DESIGN.md "IMAP
sessions"): \\Recent goes to exactly one session however many catch up at once, a
SELECT claims it without a lock, the catch-up that rides in a STORE's, EXPUNGE's
or FETCH's own request reports other sessions' changes and not the command's own,
and a SELECT is followed by no catch-up of its own."""

import re

from tests.imap.conftest import message


def selected(wire, account, count=1):
    sessions = []
    for _ in range(count):
        w = wire()
        w.login(account)
        w.ok("SELECT INBOX")
        sessions.append(w)
    return sessions


def recent_counts(lines):
    return [int(m.group(1)) for m in (re.match(r"\* (\d+) RECENT", line) for line in lines) if m]


def test_recent_goes_to_one_of_many_sessions_catching_up(session, wire, deliver):
    address = session.account.address
    session.ok("SELECT INBOX")
    others = selected(wire, session.account, 3)
    deliver(address, message("one"))
    deliver(address, message("two"))
    answers = [w.ok("NOOP") for w in [session, *others]]
    assert all("* 2 EXISTS" in lines for lines in answers)
    assert sorted(recent_counts(lines)[0] for lines in answers) == [0, 0, 0, 2]
    late = wire()
    late.login(session.account)
    lines = late.ok("SELECT INBOX")
    assert "* 2 EXISTS" in lines and "* 0 RECENT" in lines


def test_select_claims_recent_and_examine_leaves_it(session, wire, deliver):
    address = session.account.address
    deliver(address, message("one"))
    lines = session.ok("EXAMINE INBOX")
    assert "* 1 EXISTS" in lines and "* 1 RECENT" in lines
    lines = session.ok("SELECT INBOX")
    assert "* 1 RECENT" in lines
    assert session.command("FETCH 1 FLAGS") == ["* 1 FETCH (FLAGS (\\Recent))",
                                               "TAG OK FETCH completed"]
    other = wire()
    other.login(session.account)
    assert "* 0 RECENT" in other.ok("SELECT INBOX")
    deliver(address, message("two"))
    lines = other.ok("SELECT INBOX")     # again: the new message is its \Recent now
    assert "* 2 EXISTS" in lines and "* 1 RECENT" in lines


def test_store_reports_other_sessions_changes_once_and_not_its_own(session, wire, deliver):
    address = session.account.address
    for subject in ("a", "b", "c"):
        deliver(address, message(subject))
    session.ok("SELECT INBOX")
    other, = selected(wire, session.account)
    other.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
    lines = session.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
    # the other session's change, and this one's (its modseq is not the next one)
    assert lines == ["* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))",
                     "* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))"]
    assert session.ok("NOOP") == []
    assert session.ok("STORE 3 +FLAGS (\\Answered)") == ["* 3 FETCH (FLAGS (\\Answered \\Recent))"]
    assert session.ok("STORE 3 +FLAGS.SILENT (\\Draft)") == []      # its own, nothing else
    assert session.ok("NOOP") == []
    assert other.ok("NOOP") == ["* 2 FETCH (UID 2 FLAGS (\\Seen))",
                                "* 3 FETCH (UID 3 FLAGS (\\Answered \\Draft))"]


def test_expunge_sends_its_own_and_others_expunges(session, wire, deliver):
    address = session.account.address
    for subject in ("a", "b", "c", "d"):
        deliver(address, message(subject))
    session.ok("SELECT INBOX")
    other, = selected(wire, session.account)
    other.ok("STORE 4 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    session.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    # STORE's catch-up held the other's expunge back (RFC 3501 §7.4.1); EXPUNGE sends both
    assert session.ok("EXPUNGE") == ["* 4 EXPUNGE", "* 1 EXPUNGE"]
    assert session.command("FETCH 1:* (UID)") == ["* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)",
                                                 "TAG OK FETCH completed"]
    assert session.ok("EXPUNGE") == []            # nothing left to expunge
    assert other.ok("NOOP") == ["* 1 EXPUNGE"]


def test_fetch_reports_changes_made_before_it_and_keeps_expunges_back(session, wire, deliver):
    address = session.account.address
    deliver(address, message("a"))
    deliver(address, message("b"))
    lines = session.ok("SELECT INBOX")
    assert "* 2 EXISTS" in lines
    other, = selected(wire, session.account)
    other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    deliver(address, message("c"))
    lines = session.ok("FETCH 1 (UID)")
    assert lines[0] == "* 1 FETCH (UID 1)"
    assert "* 3 EXISTS" in lines and not any("EXPUNGE" in line for line in lines)
    assert session.ok("NOOP") == ["* 2 EXPUNGE"]
