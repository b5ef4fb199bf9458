"""QRESYNC (RFC 7162 §3.2): ENABLE QRESYNC, SELECT (QRESYNC ...) with VANISHED (EARLIER)
and the changed messages, UID FETCH (CHANGEDSINCE n VANISHED), expunges reported as
VANISHED in every path, [CLOSED].

Six deliveries into a new INBOX give UIDs 1-6 with modseqs 2-7 (HIGHESTMODSEQ 7).
"""

import re

import pytest

from tests.imap.conftest import no_mailboxid, message

SYSTEM = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"


@pytest.fixture
def six(session, deliver):
    for n in range(1, 7):
        deliver(session.account.address, message(f"m{n}"))
    return session


def uidvalidity(lines):
    return int(re.search(r"UIDVALIDITY (\d+)", "\n".join(lines)).group(1))


def other_session(wire, account):
    other = wire()
    other.login(account)
    other.ok("SELECT INBOX")
    return other


def changes_elsewhere(wire, account):
    """Another client flags 2 (modseq 8), deletes 3 and 5 (9), expunges them (10)."""
    other = other_session(wire, account)
    other.ok("STORE 2 +FLAGS.SILENT (\\Seen $Work)")
    other.ok("STORE 3,5 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    return other


def test_enable_qresync(session):
    assert session.command("ENABLE QRESYNC") == ["* ENABLED QRESYNC", "TAG OK ENABLE completed"]
    # QRESYNC turned CONDSTORE on as well (RFC 7162 §3.2.3)
    assert session.command("ENABLE CONDSTORE QRESYNC") == ["* ENABLED", "TAG OK ENABLE completed"]


def test_select_qresync(six, wire):
    v = uidvalidity(six.ok("EXAMINE INBOX"))
    changes_elsewhere(wire, six.account)
    six.ok("ENABLE QRESYNC")
    assert no_mailboxid(six, f"SELECT INBOX (QRESYNC ({v} 7))") == [
        "* OK [CLOSED] Previous mailbox closed",
        f"* FLAGS ({SYSTEM} $Work)", f"* OK [PERMANENTFLAGS ({SYSTEM} $Work \\*)] Flags permitted",
        "* 4 EXISTS", "* 0 RECENT", "* OK [UNSEEN 1] First unseen",
        f"* OK [UIDVALIDITY {v}] UIDs valid", "* OK [UIDNEXT 7] Predicted next UID",
        "* OK [HIGHESTMODSEQ 10] Highest",
        "* VANISHED (EARLIER) 3,5",
        "* 2 FETCH (UID 2 FLAGS (\\Seen $Work) MODSEQ (8))",
        "TAG OK [READ-WRITE] Select completed"]
    # known-uids limit both answers (2 changed but is not known); seq-match-data is
    # taken, and not needed: the change log of expunges is complete
    assert no_mailboxid(six, f"EXAMINE INBOX (QRESYNC ({v} 7 1,3:4 (1:2 1:2)))")[-3:] == [
        "* OK [HIGHESTMODSEQ 10] Highest", "* VANISHED (EARLIER) 3",
        "TAG OK [READ-ONLY] Examine completed"]
    assert no_mailboxid(six, f"EXAMINE INBOX (QRESYNC ({v} 8 2:6))")[-3:] == [
        "* OK [HIGHESTMODSEQ 10] Highest", "* VANISHED (EARLIER) 3,5",
        "TAG OK [READ-ONLY] Examine completed"]
    assert no_mailboxid(six, f"EXAMINE INBOX (QRESYNC ({v} 1 (1:2 1:2)))")[-6:] == [
        "* VANISHED (EARLIER) 3,5", "* 1 FETCH (UID 1 FLAGS () MODSEQ (2))",
        "* 2 FETCH (UID 2 FLAGS (\\Seen $Work) MODSEQ (8))",
        "* 3 FETCH (UID 4 FLAGS () MODSEQ (5))", "* 4 FETCH (UID 6 FLAGS () MODSEQ (7))",
        "TAG OK [READ-ONLY] Examine completed"]
    # nothing changed since 10; another UIDVALIDITY is a plain SELECT
    assert no_mailboxid(six, f"EXAMINE INBOX (QRESYNC ({v} 10))")[-2:] == [
        "* OK [HIGHESTMODSEQ 10] Highest", "TAG OK [READ-ONLY] Examine completed"]
    assert no_mailboxid(six, f"SELECT INBOX (QRESYNC ({v + 1} 1 1:6))")[-2:] == [
        "* OK [HIGHESTMODSEQ 10] Highest", "TAG OK [READ-WRITE] Select completed"]


def test_select_qresync_all_changes(six, wire):
    v = uidvalidity(six.ok("SELECT INBOX"))
    changes_elsewhere(wire, six.account)
    six.ok("UNSELECT")
    six.ok("ENABLE QRESYNC")
    assert no_mailboxid(six, f"EXAMINE INBOX (QRESYNC ({v} 1))")[-7:] == [
        "* OK [HIGHESTMODSEQ 10] Highest", "* VANISHED (EARLIER) 3,5",
        "* 1 FETCH (UID 1 FLAGS () MODSEQ (2))",
        "* 2 FETCH (UID 2 FLAGS (\\Seen $Work) MODSEQ (8))",
        "* 3 FETCH (UID 4 FLAGS () MODSEQ (5))",
        "* 4 FETCH (UID 6 FLAGS () MODSEQ (7))",
        "TAG OK [READ-ONLY] Examine completed"]


def test_select_qresync_errors(six):
    six.ok("SELECT INBOX")
    assert no_mailboxid(six, "SELECT INBOX (QRESYNC (1 1))") == ["TAG BAD QRESYNC is not enabled"]
    six.ok("ENABLE QRESYNC")
    for args, reply in [
            ("(QRESYNC (1))", "expected space at '))'"),
            ("(QRESYNC (0 1))", "number must not be zero"),
            ("(QRESYNC (4294967296 1))", "number too large"),
            ("(QRESYNC (1 x))", "expected number at 'x))'"),
            ("(QRESYNC (1 1 1:*))", "known-uids cannot hold *"),
            ("(QRESYNC (1 1 $))", "known-uids cannot be $"),
            ("(QRESYNC (1 1 1:5 (1:2)))", "expected space at ')))'"),
            ("(QRESYNC (1 1 1:5 (1:2 *)))", "known-uid-set cannot hold *"),
            ("(QRESYNC (1 1 1:5) )", "expected SELECT parameter at ')'"),
            ("(QRESYNC (1 1) QRESYNC (1 1))", "unknown or repeated SELECT parameter QRESYNC"),
            ("(QRESYNC)", "expected space at ')'"),
            ("(QRESYNC 1 1)", "expected '(' at '1 1)'")]:
        assert no_mailboxid(six, f"SELECT INBOX {args}") == [f"TAG BAD Syntax error: {reply}"], args
    assert no_mailboxid(six, "FETCH 1 (UID)") == ["* 1 FETCH (UID 1)", "TAG OK FETCH completed"]


def test_uid_fetch_vanished(six, wire):
    six.ok("ENABLE QRESYNC")
    six.ok("SELECT INBOX")
    other = changes_elsewhere(wire, six.account)
    # 3 and 5 are gone but the client has not been told: no EARLIER for them, a plain
    # VANISHED at the command's end; $Work is announced before the FETCH that shows it
    changed = "* 2 FETCH (UID 2 FLAGS (\\Seen $Work \\Recent) MODSEQ (8))"
    assert no_mailboxid(six, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 7 VANISHED)") == [
        f"* FLAGS ({SYSTEM} $Work)", f"* OK [PERMANENTFLAGS ({SYSTEM} $Work \\*)] Flags permitted",
        changed, "* VANISHED 3,5", changed, "TAG OK UID FETCH completed"]
    other.ok("UID STORE 6 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")                                      # the last UID goes: modseq 12
    assert no_mailboxid(six, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 7 VANISHED)") == [
        "* VANISHED (EARLIER) 3,5", changed, "* VANISHED 6", "TAG OK UID FETCH completed"]


def test_uid_fetch_vanished_after_expunges_were_told(six, wire):
    six.ok("ENABLE QRESYNC")
    six.ok("SELECT INBOX")
    other = changes_elsewhere(wire, six.account)
    assert no_mailboxid(six, "NOOP") == [
        "* VANISHED 3,5", f"* FLAGS ({SYSTEM} $Work)",
        f"* OK [PERMANENTFLAGS ({SYSTEM} $Work \\*)] Flags permitted",
        "* 2 FETCH (UID 2 FLAGS (\\Seen $Work \\Recent) MODSEQ (8))", "TAG OK NOOP completed"]
    other.ok("UID STORE 6 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")                                      # the highest UID goes too
    assert no_mailboxid(six, "NOOP") == ["* VANISHED 6", "TAG OK NOOP completed"]
    assert no_mailboxid(six, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 7 VANISHED)") == [
        "* VANISHED (EARLIER) 3,5:6", "* 2 FETCH (UID 2 FLAGS (\\Seen $Work \\Recent) MODSEQ (8))",
        "TAG OK UID FETCH completed"]
    assert no_mailboxid(six, "UID FETCH 4:5 (FLAGS) (CHANGEDSINCE 1 VANISHED)") == [
        "* VANISHED (EARLIER) 5", "* 3 FETCH (UID 4 FLAGS (\\Recent) MODSEQ (5))",
        "TAG OK UID FETCH completed"]
    assert no_mailboxid(six, "UID FETCH 6:9 (FLAGS) (CHANGEDSINCE 1 VANISHED)") == [
        "* VANISHED (EARLIER) 6", "TAG OK UID FETCH completed"]
    assert no_mailboxid(six, "UID FETCH 7:9 (FLAGS) (CHANGEDSINCE 1 VANISHED)") == [
        "TAG OK UID FETCH completed"]
    assert no_mailboxid(six, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12 VANISHED)") == [
        "TAG OK UID FETCH completed"]


def test_expunge_paths_report_vanished(six, wire, deliver):
    six.ok("ENABLE QRESYNC")
    six.ok("SELECT INBOX")
    six.ok("STORE 1,3,4 +FLAGS.SILENT (\\Deleted)")
    # the tagged OK gives the modseq of the expunge, which VANISHED does not carry
    assert no_mailboxid(six, "EXPUNGE") == ["* VANISHED 1,3:4", "TAG OK [HIGHESTMODSEQ 9] EXPUNGE completed"]
    six.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")            # UIDs 2, 5, 6
    assert no_mailboxid(six, "UID EXPUNGE 5:6") == [
        "* VANISHED 5:6", "TAG OK [HIGHESTMODSEQ 11] UID EXPUNGE completed"]
    assert no_mailboxid(six, "UID EXPUNGE 5:6") == ["TAG OK [HIGHESTMODSEQ 11] UID EXPUNGE completed"]
    lines = no_mailboxid(six, "MOVE 1 Junk")
    assert lines[0].startswith("* OK [COPYUID ") and lines[1:] == [
        "* VANISHED 2", "TAG OK MOVE completed"]
    # another session's expunges, at NOOP and during IDLE
    for n in range(3):
        deliver(six.account.address, message(f"n{n}"))        # UIDs 7, 8, 9
    six.ok("NOOP")
    other = other_session(wire, six.account)
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    assert no_mailboxid(six, "NOOP") == ["* VANISHED 7", "TAG OK NOOP completed"]
    six.send(b"i1 IDLE\r\n")
    assert six.readline() == b"+ idling\r\n"
    other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    assert six.readline() == b"* 2 FETCH (UID 9 FLAGS (\\Deleted \\Recent) MODSEQ (18))\r\n"
    other.ok("EXPUNGE")
    assert six.readline() == b"* VANISHED 9\r\n"
    six.send(b"DONE\r\n")
    assert six.read_response("i1") == ["i1 OK IDLE terminated"]
    # CLOSE expunges without a word (RFC 3501 §6.4.2), QRESYNC or not
    six.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert no_mailboxid(six, "CLOSE") == ["TAG OK CLOSE completed"]
    assert no_mailboxid(six, "STATUS INBOX (MESSAGES)") == ["* STATUS INBOX (MESSAGES 0)",
                                                     "TAG OK STATUS completed"]


def test_no_vanished_during_sequence_number_commands(six, wire):
    """VANISHED renumbers like EXPUNGE, so it waits where EXPUNGE must (RFC 7162 §3.2.10)."""
    six.ok("ENABLE QRESYNC")
    six.ok("SELECT INBOX")
    other = other_session(wire, six.account)
    other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    assert no_mailboxid(six, "FETCH 3 (UID)") == ["* 3 FETCH (UID 3)", "TAG OK FETCH completed"]
    assert no_mailboxid(six, "UID FETCH 3 (UID)") == [
        "* 3 FETCH (UID 3)", "* VANISHED 2", "TAG OK UID FETCH completed"]


def test_closed_only_when_a_mailbox_was_selected(six):
    assert "* OK [CLOSED] Previous mailbox closed" not in no_mailboxid(six, "SELECT INBOX")
    assert no_mailboxid(six, "EXAMINE Nope") == ["* OK [CLOSED] Previous mailbox closed",
                                          "TAG NO [NONEXISTENT] Mailbox Nope does not exist"]
    assert no_mailboxid(six, "EXAMINE Nope") == ["TAG NO [NONEXISTENT] Mailbox Nope does not exist"]
    six.ok("SELECT INBOX")
    assert no_mailboxid(six, "UNSELECT") == ["TAG OK UNSELECT completed"]


def test_long_history_streams(session, deliver):
    """2,560 messages, every other one expunged: VANISHED lines of 1,280 ranges are
    written in pieces and the change log read in pages, and still say exactly that."""
    for n in range(5):
        deliver(session.account.address, message(f"m{n}"))
    session.ok("ENABLE QRESYNC")
    lines = session.ok("SELECT INBOX")
    v = uidvalidity(lines)
    for _ in range(9):                                       # 5 x 2^9 = 2,560 messages
        lines = session.ok("COPY 1:* INBOX")
    assert "* 2560 EXISTS" in lines
    odd = list(range(1, 2561, 2))
    odd_text = ",".join(map(str, odd))
    session.ok(f"UID STORE {odd_text} +FLAGS.SILENT (\\Deleted)")
    lines = session.command("EXPUNGE")
    assert lines[0] == f"* VANISHED {odd_text}" and len(lines) == 2
    top = int(re.search(r"HIGHESTMODSEQ (\d+)", lines[1]).group(1))
    assert session.command("UID FETCH 1:* (UID) (CHANGEDSINCE 1 VANISHED)")[:1] == [
        f"* VANISHED (EARLIER) {odd_text}"]
    lines = session.command(f"EXAMINE INBOX (QRESYNC ({v} {top - 1} 1:2560))")
    assert lines[-2:] == [f"* VANISHED (EARLIER) {odd_text}", "TAG OK [READ-ONLY] Examine completed"]
    # known-uids of 1,280 single UIDs: only those are answered for
    evens = ",".join(map(str, range(2, 2561, 2)))
    lines = session.command(f"EXAMINE INBOX (QRESYNC ({v} {top - 1} {evens},2559))")
    assert lines[-2:] == ["* VANISHED (EARLIER) 2559", "TAG OK [READ-ONLY] Examine completed"]
