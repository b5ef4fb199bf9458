"""SEARCHRES (RFC 5182): SEARCH RETURN (SAVE) and $ in the commands that take a set."""

import pytest

from tests.imap.conftest import message
from tests.imap.test_esearch import esearch


@pytest.fixture
def mailbox(session, deliver):
    for n in range(1, 6):
        deliver(session.account.address, message(f"m{n}", sender="odd@example.org" if n % 2
                                                 else "even@example.org"))
    session.ok("SELECT INBOX")
    return session


def test_save_and_use(mailbox):
    # SAVE alone: no ESEARCH response (RFC 5182 §2.1)
    assert esearch(mailbox, "SEARCH RETURN (SAVE) FROM even") == ["TAG OK SEARCH completed"]
    assert mailbox.command("FETCH $ (UID)") == [
        "* 2 FETCH (UID 2)", "* 4 FETCH (UID 4)", "TAG OK FETCH completed"]
    assert mailbox.command("UID FETCH $ (FLAGS)") == [
        "* 2 FETCH (UID 2 FLAGS (\\Recent))", "* 4 FETCH (UID 4 FLAGS (\\Recent))",
        "TAG OK UID FETCH completed"]
    mailbox.ok("STORE $ +FLAGS.SILENT (\\Flagged)")
    assert mailbox.command("SEARCH FLAGGED") == ["* SEARCH 2 4", "TAG OK SEARCH completed"]
    assert mailbox.command("SEARCH $ 3:4") == ["* SEARCH 4", "TAG OK SEARCH completed"]
    assert mailbox.command("UID SEARCH UID $") == ["* SEARCH 2 4", "TAG OK UID SEARCH completed"]
    mailbox.ok("COPY $ Trash")
    assert mailbox.command("STATUS Trash (MESSAGES)")[0] == "* STATUS Trash (MESSAGES 2)"
    # SAVE with ALL: saved and answered
    assert esearch(mailbox, "SEARCH RETURN (SAVE ALL) FROM odd") == [
        '* ESEARCH (TAG "TAG") ALL 1,3,5', "TAG OK SEARCH completed"]
    assert mailbox.command("SEARCH $") == ["* SEARCH 1 3 5", "TAG OK SEARCH completed"]
    # with MIN and MAX only, just those two are saved (RFC 5182 §2.1)
    mailbox.ok("SEARCH RETURN (SAVE MIN MAX) ALL")
    assert mailbox.command("SEARCH $") == ["* SEARCH 1 5", "TAG OK SEARCH completed"]
    mailbox.ok("SEARCH RETURN (SAVE MIN) ALL")
    assert mailbox.command("SEARCH $") == ["* SEARCH 1", "TAG OK SEARCH completed"]
    # $ in the program of a SEARCH that saves is the previous result
    mailbox.ok("SEARCH RETURN (SAVE) OR $ 4")
    assert mailbox.command("SEARCH $") == ["* SEARCH 1 4", "TAG OK SEARCH completed"]
    mailbox.ok("MOVE $ Junk")
    assert mailbox.command("SEARCH ALL") == [
        "* SEARCH 1 2 3", "TAG OK SEARCH completed"]


def test_failed_search_and_saved_result(mailbox):
    """RFC 5182 §2.1: a saving SEARCH answered NO empties $; BAD leaves it (as Dovecot)."""
    mailbox.ok("SEARCH RETURN (SAVE) 1:2")
    assert esearch(mailbox, "SEARCH RETURN (SAVE) FROB") == [
        "TAG BAD Syntax error: unknown search key FROB"]
    assert mailbox.command("SEARCH $") == ["* SEARCH 1 2", "TAG OK SEARCH completed"]
    assert esearch(mailbox, "SEARCH RETURN (SAVE) CHARSET X-NOPE BODY x") == [
        "TAG NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset X-NOPE"]
    assert mailbox.command("FETCH $ (UID)") == ["TAG OK FETCH completed"]


def test_saved_result_reset_on_select(mailbox):
    mailbox.ok("SEARCH RETURN (SAVE) 1:3")
    mailbox.ok("SELECT INBOX")
    assert mailbox.command("SEARCH $") == ["* SEARCH", "TAG OK SEARCH completed"]
    mailbox.ok("SEARCH RETURN (SAVE) 1:3")
    mailbox.ok("UNSELECT")
    mailbox.ok("EXAMINE INBOX")
    assert mailbox.command("SEARCH $") == ["* SEARCH", "TAG OK SEARCH completed"]


def test_saved_result_after_expunge(mailbox):
    mailbox.ok("SEARCH RETURN (SAVE) 2:4")
    mailbox.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
    mailbox.ok("EXPUNGE")
    # the saved UIDs 2 and 4 are now messages 2 and 3; UID 3 is gone
    assert mailbox.command("SEARCH $") == ["* SEARCH 2 3", "TAG OK SEARCH completed"]
    assert mailbox.command("UID SEARCH $") == ["* SEARCH 2 4", "TAG OK UID SEARCH completed"]
