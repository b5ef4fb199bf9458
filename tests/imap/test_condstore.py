"""CONDSTORE (RFC 7162 §3.1): HIGHESTMODSEQ, FETCH MODSEQ and CHANGEDSINCE, STORE
UNCHANGEDSINCE with [MODIFIED], STATUS HIGHESTMODSEQ, ENABLE, and the MODSEQ that
every later unsolicited FETCH carries.

A new INBOX starts at modseq 1 and each delivery takes the next one, so after
three deliveries the messages have modseqs 2, 3 and 4.
"""

import re

import pytest

from tests.imap.conftest import no_mailboxid, message

SYSTEM = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"


@pytest.fixture
def three(session, deliver):
    for n in range(1, 4):
        deliver(session.account.address, message(f"m{n}"))
    return session


def uidvalidity(lines):
    return int(re.search(r"UIDVALIDITY (\d+)", "\n".join(lines)).group(1))


def test_select_condstore_and_highestmodseq(three):
    lines = no_mailboxid(three, "SELECT INBOX (CONDSTORE)")
    v = uidvalidity(lines)
    assert lines == [
        f"* FLAGS ({SYSTEM})", f"* OK [PERMANENTFLAGS ({SYSTEM} \\*)] Flags permitted",
        "* 3 EXISTS", "* 3 RECENT", "* OK [UNSEEN 1] First unseen",
        f"* OK [UIDVALIDITY {v}] UIDs valid", "* OK [UIDNEXT 4] Predicted next UID",
        "* OK [HIGHESTMODSEQ 4] Highest", "TAG OK [READ-WRITE] Select completed"]
    # SELECT (CONDSTORE) turned CONDSTORE on: STORE answers carry UID and MODSEQ
    assert no_mailboxid(three, "STORE 1 +FLAGS (\\Seen)") == [
        "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (5))", "TAG OK STORE completed"]
    assert no_mailboxid(three, "EXAMINE INBOX (CONDSTORE)")[-3:] == [
        "* OK [UIDNEXT 4] Predicted next UID", "* OK [HIGHESTMODSEQ 5] Highest",
        "TAG OK [READ-ONLY] Examine completed"]


def test_fetch_modseq_and_changedsince(three):
    three.ok("SELECT INBOX")
    assert no_mailboxid(three, "FETCH 1:3 (MODSEQ)") == [
        "* OK [HIGHESTMODSEQ 4] Highest", "* 1 FETCH (MODSEQ (2))", "* 2 FETCH (MODSEQ (3))", "* 3 FETCH (MODSEQ (4))",
        "TAG OK FETCH completed"]
    assert no_mailboxid(three, "FETCH 1:* (FLAGS) (CHANGEDSINCE 3)") == [
        "* 3 FETCH (FLAGS (\\Recent) MODSEQ (4))", "TAG OK FETCH completed"]
    assert no_mailboxid(three, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 2)") == [
        "* 2 FETCH (UID 2 FLAGS (\\Recent) MODSEQ (3))",
        "* 3 FETCH (UID 3 FLAGS (\\Recent) MODSEQ (4))", "TAG OK UID FETCH completed"]
    assert no_mailboxid(three, "UID FETCH 1:* (UID MODSEQ FLAGS) (CHANGEDSINCE 4)") == [
        "TAG OK UID FETCH completed"]
    assert no_mailboxid(three, "FETCH 2 FLAGS (changedsince 0)") == [
        "* 2 FETCH (FLAGS (\\Recent) MODSEQ (3))", "TAG OK FETCH completed"]


def test_fetch_that_sets_seen_carries_uid_and_modseq(three):
    three.ok("SELECT INBOX")
    assert no_mailboxid(three, "FETCH 1 (BODY[TEXT])") == [
        "* 1 FETCH (BODY[TEXT] {11}\r\nHi there.\r\n FLAGS (\\Seen \\Recent))",
        "TAG OK FETCH completed"]
    three.ok("ENABLE CONDSTORE")
    assert no_mailboxid(three, "FETCH 2 (BODY[TEXT])") == [
        "* 2 FETCH (BODY[TEXT] {11}\r\nHi there.\r\n FLAGS (\\Seen \\Recent) UID 2 MODSEQ (6))",
        "TAG OK FETCH completed"]
    assert no_mailboxid(three, "FETCH 3 (RFC822.SIZE BODY[])")[0].endswith(
        " FLAGS (\\Seen \\Recent) UID 3 MODSEQ (7))")
    assert no_mailboxid(three, "FETCH 3 (UID MODSEQ BODY[TEXT])") == [
        "* 3 FETCH (UID 3 MODSEQ (7) BODY[TEXT] {11}\r\nHi there.\r\n)", "TAG OK FETCH completed"]


def test_store_unchangedsince(three):
    three.ok("SELECT INBOX")
    assert no_mailboxid(three, "STORE 1 +FLAGS (\\Seen)") == [
        "* 1 FETCH (FLAGS (\\Seen \\Recent))", "TAG OK STORE completed"]          # modseq 5
    # RFC 7162 §3.1.3: message 1 changed after modseq 4 and is left alone
    assert no_mailboxid(three, "STORE 1:3 (UNCHANGEDSINCE 4) +FLAGS (\\Flagged)") == [
        "* OK [HIGHESTMODSEQ 5] Highest", "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ (6))",
        "* 3 FETCH (UID 3 FLAGS (\\Flagged \\Recent) MODSEQ (6))",
        "TAG OK [MODIFIED 1] Conditional STORE failed"]
    assert no_mailboxid(three, "UID STORE 1:3 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Deleted)") == [
        "* 1 FETCH (UID 1 MODSEQ (7))", "TAG OK [MODIFIED 2:3] Conditional STORE failed"]
    # 0 always fails (every message has a modseq); nothing changes, nothing is announced
    assert no_mailboxid(three, "STORE 2,3 (UNCHANGEDSINCE 0) -FLAGS (\\Flagged)") == [
        "TAG OK [MODIFIED 2:3] Conditional STORE failed"]
    assert no_mailboxid(three, "FETCH 1:3 (FLAGS MODSEQ)") == [
        "* 1 FETCH (FLAGS (\\Seen \\Deleted \\Recent) MODSEQ (7))",
        "* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (6))",
        "* 3 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (6))", "TAG OK FETCH completed"]
    # a STORE that passes the test for every message is a plain OK
    assert no_mailboxid(three, "STORE 2 (UNCHANGEDSINCE 6) +FLAGS.SILENT (\\Answered)") == [
        "* 2 FETCH (UID 2 MODSEQ (8))", "TAG OK STORE completed"]


def test_store_modifier_errors(three):
    three.ok("SELECT INBOX")
    assert no_mailboxid(three, "STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)") == [
        "TAG BAD Syntax error: expected number at 'x) +FLAGS (\\\\Seen)'"]
    assert no_mailboxid(three, "STORE 1 (NOTHING 5) +FLAGS (\\Seen)") == [
        "TAG BAD Syntax error: unknown STORE modifier NOTHING"]
    assert no_mailboxid(three, "STORE 1 (UNCHANGEDSINCE 5 UNCHANGEDSINCE 6) +FLAGS (\\Seen)") == [
        "TAG BAD Syntax error: UNCHANGEDSINCE given twice"]
    assert no_mailboxid(three, "STORE 1 (UNCHANGEDSINCE 9223372036854775808) +FLAGS (\\Seen)") == [
        "TAG BAD Syntax error: number too large"]
    assert no_mailboxid(three, "STORE 1 (UNCHANGEDSINCE 5)+FLAGS (\\Seen)") == [
        "TAG BAD Syntax error: expected space at '+FLAGS (\\\\Seen)'"]
    three.ok("EXAMINE INBOX")
    assert no_mailboxid(three, "STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)") == [
        "* OK [HIGHESTMODSEQ 4] Highest", "TAG NO [READ-ONLY] Mailbox is read-only"]
    assert no_mailboxid(three, "NOOP") == ["TAG OK NOOP completed"]


def test_fetch_modifier_errors(three):
    three.ok("SELECT INBOX")
    for command, reply in [
            ("FETCH 1 (FLAGS) (CHANGEDSINCE)", "TAG BAD Syntax error: expected space at ')'"),
            ("FETCH 1 (FLAGS) (CHANGEDSINCE -1)", "TAG BAD Syntax error: expected number at '-1)'"),
            ("FETCH 1 (FLAGS) (SOMETHING)", "TAG BAD Syntax error: unknown FETCH modifier SOMETHING"),
            ("FETCH 1 (FLAGS) ()", "TAG BAD Syntax error: expected modifier at ')'"),
            ("FETCH 1 (FLAGS) (CHANGEDSINCE 1", "TAG BAD Syntax error: expected space at end of line"),
            ("FETCH 1 (FLAGS) (CHANGEDSINCE 1 CHANGEDSINCE 2)",
             "TAG BAD Syntax error: CHANGEDSINCE given twice"),
            ("FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)", "TAG BAD VANISHED is allowed in UID FETCH only"),
            ("UID FETCH 1 (FLAGS) (VANISHED)", "TAG BAD VANISHED needs CHANGEDSINCE"),
            ("UID FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)", "TAG BAD VANISHED needs ENABLE QRESYNC first"),
            ("FETCH 1 (MODSEQ) extra", "TAG BAD Syntax error: expected '(' at 'extra'"),
            ("FETCH 1 MODSEQ.X", "TAG BAD Syntax error: unknown FETCH item MODSEQ.X")]:
        assert no_mailboxid(three, command) == [reply], command
    assert no_mailboxid(three, "NOOP") == ["TAG OK NOOP completed"]


def test_unsolicited_fetch_carries_modseq_once_enabled(three, wire):
    three.ok("SELECT INBOX")
    other = wire()
    other.login(three.account)
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT (\\Seen)")                          # modseq 5
    assert no_mailboxid(three, "NOOP") == [
        "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))", "TAG OK NOOP completed"]
    assert no_mailboxid(three, "ENABLE CONDSTORE") == [
        "* OK [HIGHESTMODSEQ 5] Highest", "* ENABLED CONDSTORE", "TAG OK ENABLE completed"]
    other.ok("STORE 2 +FLAGS.SILENT (\\Answered)")                      # modseq 6
    assert no_mailboxid(three, "NOOP") == [
        "* 2 FETCH (UID 2 FLAGS (\\Answered \\Recent) MODSEQ (6))", "TAG OK NOOP completed"]


@pytest.mark.parametrize("enabler", ["SEARCH MODSEQ 1", "STATUS INBOX (HIGHESTMODSEQ)",
                                     "FETCH 1 (MODSEQ)", "FETCH 1 FLAGS (CHANGEDSINCE 1)",
                                     "STORE 1 (UNCHANGEDSINCE 99) +FLAGS.SILENT (\\Seen)"])
def test_enabling_commands(three, enabler):
    """RFC 7162 §3.1: each of these turns CONDSTORE on for the rest of the connection."""
    three.ok("SELECT INBOX")
    assert no_mailboxid(three, "STORE 3 +FLAGS (\\Draft)") == [
        "* 3 FETCH (FLAGS (\\Draft \\Recent))", "TAG OK STORE completed"]
    three.ok(enabler)
    assert no_mailboxid(three, "STORE 3 -FLAGS (\\Draft)")[-2:] == [
        "* 3 FETCH (UID 3 FLAGS (\\Recent) MODSEQ (%d))" % (7 if "STORE" in enabler else 6),
        "TAG OK STORE completed"]
    assert no_mailboxid(three, "ENABLE CONDSTORE") == ["* ENABLED", "TAG OK ENABLE completed"]


def test_status_highestmodseq(three):
    assert no_mailboxid(three, "STATUS INBOX (HIGHESTMODSEQ MESSAGES)") == [
        "* STATUS INBOX (HIGHESTMODSEQ 4 MESSAGES 3)", "TAG OK STATUS completed"]
    three.ok("SELECT INBOX")
    three.ok("STORE 1:2 +FLAGS.SILENT (\\Flagged)")
    three.ok("CREATE Empty")
    assert no_mailboxid(three, "STATUS INBOX (HIGHESTMODSEQ)") == [
        "* STATUS INBOX (HIGHESTMODSEQ 5)", "TAG OK STATUS completed"]
    assert no_mailboxid(three, "STATUS Empty (HIGHESTMODSEQ UIDNEXT)") == [
        "* STATUS Empty (HIGHESTMODSEQ 1 UIDNEXT 1)", "TAG OK STATUS completed"]


def test_enable(session):
    assert session.command("ENABLE CONDSTORE X-NOTHING") == [
        "* ENABLED CONDSTORE", "TAG OK ENABLE completed"]
    assert session.command("ENABLE condstore") == ["* ENABLED", "TAG OK ENABLE completed"]
    assert session.command("ENABLE") == ["TAG BAD Syntax error: expected space at end of line"]


def test_select_parameter_errors(three):
    three.ok("SELECT INBOX")
    for command, reply in [
            ("SELECT INBOX (NOTHING)", "TAG BAD Syntax error: unknown or repeated SELECT parameter NOTHING"),
            ("SELECT INBOX (CONDSTORE CONDSTORE)",
             "TAG BAD Syntax error: unknown or repeated SELECT parameter CONDSTORE"),
            ("SELECT INBOX ()", "TAG BAD Syntax error: expected SELECT parameter at ')'"),
            ("SELECT INBOX (CONDSTORE", "TAG BAD Syntax error: expected space at end of line"),
            ("EXAMINE INBOX (QRESYNC (1 1))", "TAG BAD QRESYNC is not enabled")]:
        assert no_mailboxid(three, command) == [reply], command
    # the mailbox stayed selected
    assert no_mailboxid(three, "FETCH 1 (UID)") == ["* 1 FETCH (UID 1)", "TAG OK FETCH completed"]


def test_search_and_esearch_give_modseq(three):
    """§3.1.5: the highest modseq of the messages found (of MIN/MAX alone, for ESEARCH)."""
    three.ok("SELECT INBOX")
    three.ok("STORE 2 +FLAGS.SILENT (\\Seen)")                    # modseq 5
    assert no_mailboxid(three, "SEARCH MODSEQ 3") == [
        "* OK [HIGHESTMODSEQ 5] Highest", "* SEARCH 2 3 (MODSEQ 5)", "TAG OK SEARCH completed"]
    lines = no_mailboxid(three, "UID SEARCH RETURN (MIN ALL) MODSEQ 1")
    assert re.fullmatch(r'\* ESEARCH \(TAG "t\d+"\) UID MIN 1 ALL 1:3 MODSEQ 5', lines[0]), lines


def test_changedsince_marks_only_what_it_reads(three):
    """A body FETCH with CHANGEDSINCE reads, and so marks \\Seen, only the messages changed."""
    three.ok("SELECT INBOX")
    assert no_mailboxid(three, "FETCH 1:3 (BODY[TEXT]) (CHANGEDSINCE 3)") == [
        "* OK [HIGHESTMODSEQ 4] Highest", "* 3 FETCH (BODY[TEXT] {11}\r\nHi there.\r\n MODSEQ (5) FLAGS (\\Seen \\Recent) UID 3)",
        "TAG OK FETCH completed"]
    assert no_mailboxid(three, "FETCH 1:3 (FLAGS)") == [
        "* 1 FETCH (FLAGS (\\Recent))", "* 2 FETCH (FLAGS (\\Recent))",
        "* 3 FETCH (FLAGS (\\Seen \\Recent))", "TAG OK FETCH completed"]
    assert no_mailboxid(three, "FETCH 1:3 (BODY[TEXT]) (CHANGEDSINCE 5)") == ["TAG OK FETCH completed"]


def test_an_enabling_command_in_a_selected_mailbox_tells_highestmodseq(three):
    """RFC 7162 §3.1 (imaptest's esearch-condstore): the first CONDSTORE enabling command
    with a mailbox selected gets OK [HIGHESTMODSEQ]; later ones do not repeat it."""
    three.ok("SELECT INBOX")
    assert three.command("FETCH 1 (MODSEQ)") == [
        "* OK [HIGHESTMODSEQ 4] Highest", "* 1 FETCH (MODSEQ (2))", "TAG OK FETCH completed"]
    assert three.command("FETCH 2 (MODSEQ)") == ["* 2 FETCH (MODSEQ (3))", "TAG OK FETCH completed"]
