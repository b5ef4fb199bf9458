"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): RETURN (PARTIAL), RETURN (UPDATE)
contexts with ADDTO/REMOVEFROM, CANCELUPDATE, and their errors."""

import pytest

from tests.imap.conftest import message


def run(session, tag, text):
    """Send ``tag text``; the lines up to the tagged one, tags as sent."""
    session.send(f"{tag} {text}\r\n")
    return session.read_response(tag)


@pytest.fixture
def mailbox(session, deliver):
    """INBOX with m1..m6, 1:3 and 5 \\Seen."""
    for n in range(1, 7):
        deliver(session.account.address, message(f"m{n}"))
    session.ok("SELECT INBOX")
    session.ok("STORE 1:3,5 +FLAGS.SILENT (\\Seen)")
    return session


def test_partial_search(mailbox):
    ok = "p OK SEARCH completed"
    assert run(mailbox, "p", "SEARCH RETURN (PARTIAL 2:4) ALL") == [
        '* ESEARCH (TAG "p") PARTIAL (2:4 2:4)', ok]
    assert run(mailbox, "p", "SEARCH RETURN (PARTIAL 4:2) ALL") == [
        '* ESEARCH (TAG "p") PARTIAL (2:4 2:4)', ok]
    assert run(mailbox, "p", "SEARCH RETURN (PARTIAL 5:9) ALL") == [
        '* ESEARCH (TAG "p") PARTIAL (5:9 5:6)', ok]
    assert run(mailbox, "p", "SEARCH RETURN (PARTIAL 7:8) ALL") == [
        '* ESEARCH (TAG "p") PARTIAL (7:8 NIL)', ok]
    # positions in the result, not sequence numbers; MIN and COUNT of the whole result
    assert run(mailbox, "p", "SEARCH RETURN (MIN COUNT PARTIAL 3:4) SEEN") == [
        '* ESEARCH (TAG "p") MIN 1 COUNT 4 PARTIAL (3:4 3,5)', ok]


def test_partial_uid_search_and_save(mailbox):
    mailbox.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    mailbox.ok("EXPUNGE")
    assert run(mailbox, "p", "UID SEARCH RETURN (PARTIAL 2:3) ALL") == [
        '* ESEARCH (TAG "p") UID PARTIAL (2:3 3:4)', "p OK UID SEARCH completed"]
    # SAVE with PARTIAL keeps only the partial result in $
    assert run(mailbox, "p", "UID SEARCH RETURN (SAVE PARTIAL 1:2) ALL") == [
        '* ESEARCH (TAG "p") UID PARTIAL (1:2 1,3)', "p OK UID SEARCH completed"]
    assert run(mailbox, "p", "UID SEARCH UID $") == ["* SEARCH 1 3", "p OK UID SEARCH completed"]


def test_partial_sort(mailbox):
    assert run(mailbox, "p", "SORT RETURN (PARTIAL 1:3) (REVERSE SUBJECT) UTF-8 ALL") == [
        '* ESEARCH (TAG "p") PARTIAL (1:3 6,5,4)', "p OK SORT completed"]
    assert run(mailbox, "p", "UID SORT RETURN (COUNT PARTIAL 5:10) (REVERSE SUBJECT) UTF-8 ALL") == [
        '* ESEARCH (TAG "p") UID COUNT 6 PARTIAL (5:10 2,1)', "p OK UID SORT completed"]


def test_partial_errors(mailbox):
    assert run(mailbox, "b", "SEARCH RETURN (PARTIAL 1) ALL") == [
        "b BAD Syntax error: expected ':' at ') ALL'"]
    assert run(mailbox, "b", "SEARCH RETURN (PARTIAL 1:*) ALL") == [
        "b BAD Syntax error: expected number at '*) ALL'"]
    assert run(mailbox, "b", "SEARCH RETURN (PARTIAL 0:3) ALL") == [
        "b BAD Syntax error: number must not be zero"]
    assert run(mailbox, "b", "SEARCH RETURN (PARTIAL 1:4294967296) ALL") == [
        "b BAD Syntax error: number too large"]
    assert run(mailbox, "b", "SEARCH RETURN (ALL PARTIAL 1:2) ALL") == [
        "b BAD Syntax error: PARTIAL and ALL cannot be combined"]
    assert run(mailbox, "b", "SORT RETURN (UPDATE PARTIAL 1:2) (ARRIVAL) UTF-8 ALL") == [
        "b BAD Syntax error: PARTIAL with UPDATE is not supported"]
    assert mailbox.command("NOOP") == ["TAG OK NOOP completed"]


def test_update_uid_search(mailbox, deliver, wire):
    assert run(mailbox, "u1", "UID SEARCH RETURN (UPDATE ALL) UNSEEN") == [
        '* ESEARCH (TAG "u1") UID ALL 4,6', "u1 OK UID SEARCH completed"]
    deliver(mailbox.account.address, message("m7"))
    assert mailbox.command("NOOP") == [
        "* 7 EXISTS", "* 7 RECENT", '* ESEARCH (TAG "u1") UID ADDTO (0 7)', "TAG OK NOOP completed"]
    other = wire()
    other.login(mailbox.account)
    other.ok("SELECT INBOX")
    other.ok("STORE 6 +FLAGS.SILENT (\\Seen)")
    other.ok("STORE 4 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    # the expunged message leaves the result before its EXPUNGE renumbers the mailbox
    assert mailbox.command("NOOP") == [
        '* ESEARCH (TAG "u1") UID REMOVEFROM (0 4)', "* 4 EXPUNGE",
        "* 5 FETCH (UID 6 FLAGS (\\Seen \\Recent))", '* ESEARCH (TAG "u1") UID REMOVEFROM (0 6)',
        "TAG OK NOOP completed"]
    assert run(mailbox, "c", 'CANCELUPDATE "u1"') == ["c OK CANCELUPDATE completed"]
    other.ok("STORE 1 -FLAGS.SILENT (\\Seen)")
    assert mailbox.command("NOOP") == ["* 1 FETCH (UID 1 FLAGS (\\Recent))", "TAG OK NOOP completed"]


def test_update_own_changes_by_sequence_number(mailbox):
    assert run(mailbox, "s1", "SEARCH RETURN (UPDATE) SEEN") == [
        '* ESEARCH (TAG "s1")', "s1 OK SEARCH completed"]
    assert mailbox.command("STORE 4,6 +FLAGS.SILENT (\\Seen)") == [
        '* ESEARCH (TAG "s1") ADDTO (0 4,6)', "TAG OK STORE completed"]
    mailbox.ok("STORE 2:3 +FLAGS.SILENT (\\Deleted)")
    assert mailbox.command("EXPUNGE") == [
        '* ESEARCH (TAG "s1") REMOVEFROM (0 2:3)', "* 3 EXPUNGE", "* 2 EXPUNGE",
        "TAG OK EXPUNGE completed"]
    assert mailbox.command("STORE 1 -FLAGS.SILENT (\\Seen)") == [
        '* ESEARCH (TAG "s1") REMOVEFROM (0 1)', "TAG OK STORE completed"]


def test_update_sort_positions(mailbox, deliver):
    assert run(mailbox, "o1", "SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 ALL") == [
        '* ESEARCH (TAG "o1") ALL 1:6', "o1 OK SORT completed"]
    deliver(mailbox.account.address, message("m35"))
    # M1 M2 M3 M35 M4 M5 M6: the new message is 4th in the sort order
    assert mailbox.command("NOOP") == [
        "* 7 EXISTS", "* 7 RECENT", '* ESEARCH (TAG "o1") ADDTO (4 7)', "TAG OK NOOP completed"]
    mailbox.ok("STORE 2,5 +FLAGS.SILENT (\\Deleted)")
    assert mailbox.command("EXPUNGE") == [
        '* ESEARCH (TAG "o1") REMOVEFROM (6 5) REMOVEFROM (2 2)', "* 5 EXPUNGE", "* 2 EXPUNGE",
        "TAG OK EXPUNGE completed"]


def test_cancelupdate_errors_and_limit(mailbox):
    assert run(mailbox, "c", 'CANCELUPDATE "nope"') == [
        "c NO [NONEXISTENT] No update context for tag nope"]
    assert run(mailbox, "c", "CANCELUPDATE") == ["c BAD Syntax error: expected space at end of line"]
    for n in range(1, 11):
        assert run(mailbox, f"k{n}", "SEARCH RETURN (UPDATE COUNT) SEEN") == [
            f'* ESEARCH (TAG "k{n}") COUNT 4', f"k{n} OK SEARCH completed"]
    assert run(mailbox, "k11", "SEARCH RETURN (UPDATE COUNT) SEEN") == [
        '* ESEARCH (TAG "k11") COUNT 4', '* NO [NOUPDATE "k11"] Too many update contexts',
        "k11 OK SEARCH completed"]
    assert run(mailbox, "c", 'CANCELUPDATE "k1" k2') == ["c OK CANCELUPDATE completed"]
    assert run(mailbox, "c", 'CANCELUPDATE "k1"') == [
        "c NO [NONEXISTENT] No update context for tag k1"]
    # leaving the mailbox ends every context
    mailbox.ok("UNSELECT")
    mailbox.ok("SELECT INBOX")
    assert run(mailbox, "c", 'CANCELUPDATE "k3"') == [
        "c NO [NONEXISTENT] No update context for tag k3"]
    assert mailbox.command("STORE 4 +FLAGS.SILENT (\\Seen)") == ["TAG OK STORE completed"]
