"""ESEARCH (RFC 4731): SEARCH RETURN (MIN MAX ALL COUNT), * ESEARCH responses."""

import pytest

from tests.imap.conftest import message


def esearch(session, text):
    """Like session.command(text), the correlator holding the command's tag written "TAG"."""
    tag = f"e{next(session.tags)}"
    session.send(f"{tag} {text}\r\n")
    lines = session.read_response(tag)
    return [line.replace(f'* ESEARCH (TAG "{tag}")', '* ESEARCH (TAG "TAG")', 1)
            .replace(f"{tag} ", "TAG ", 1) for line in lines]


@pytest.fixture
def mailbox(session, deliver):
    for n in range(1, 7):
        deliver(session.account.address, message(f"m{n}", sender="odd@example.org" if n % 2
                                                 else "even@example.org"))
    session.ok("SELECT INBOX")
    session.ok("STORE 1:3,5 +FLAGS.SILENT (\\Seen)")
    return session


def test_return_options(mailbox):
    tagged = "TAG OK SEARCH completed"
    assert esearch(mailbox, "SEARCH RETURN (MIN MAX COUNT ALL) SEEN") == [
        '* ESEARCH (TAG "TAG") MIN 1 MAX 5 ALL 1:3,5 COUNT 4', tagged]
    assert esearch(mailbox, "SEARCH RETURN () SEEN") == ['* ESEARCH (TAG "TAG") ALL 1:3,5', tagged]
    assert esearch(mailbox, "SEARCH RETURN (COUNT) FROM even") == ['* ESEARCH (TAG "TAG") COUNT 3', tagged]
    assert esearch(mailbox, "SEARCH RETURN (MIN) UNSEEN") == ['* ESEARCH (TAG "TAG") MIN 4', tagged]
    assert esearch(mailbox, "SEARCH RETURN (MAX) CHARSET UTF-8 UNSEEN") == [
        '* ESEARCH (TAG "TAG") MAX 6', tagged]
    # nothing matched: MIN, MAX and ALL are left out, COUNT is 0
    assert esearch(mailbox, "SEARCH RETURN (MIN MAX ALL COUNT) DRAFT") == [
        '* ESEARCH (TAG "TAG") COUNT 0', tagged]
    assert esearch(mailbox, "SEARCH RETURN (ALL) ALL") == ['* ESEARCH (TAG "TAG") ALL 1:6', tagged]


def test_uid_esearch(mailbox):
    mailbox.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    mailbox.ok("EXPUNGE")
    assert esearch(mailbox, "UID SEARCH RETURN (ALL MIN MAX COUNT) SEEN") == [
        '* ESEARCH (TAG "TAG") UID MIN 1 MAX 5 ALL 1,3,5 COUNT 3', "TAG OK UID SEARCH completed"]
    assert esearch(mailbox, "SEARCH RETURN (ALL) SEEN") == [
        '* ESEARCH (TAG "TAG") ALL 1:2,4', "TAG OK SEARCH completed"]


def test_return_errors(mailbox):
    assert esearch(mailbox, "SEARCH RETURN (FOO) ALL") == [
        "TAG BAD Syntax error: unknown SEARCH return option FOO"]
    assert esearch(mailbox, "SEARCH RETURN (MIN") == [
        "TAG BAD Syntax error: expected space at end of line"]
    assert esearch(mailbox, "SEARCH RETURN MIN ALL") == [
        "TAG BAD Syntax error: expected '(' at 'MIN ALL'"]
    assert esearch(mailbox, "SEARCH RETURN (MIN)") == [
        "TAG BAD Syntax error: expected space at end of line"]
    assert mailbox.command("NOOP") == ["TAG OK NOOP completed"]


def test_correlator_is_the_command_tag(mailbox):
    mailbox.send("my.tag-1 SEARCH RETURN (COUNT) ALL\r\n")
    assert mailbox.read_response("my.tag-1") == [
        '* ESEARCH (TAG "my.tag-1") COUNT 6', "my.tag-1 OK SEARCH completed"]
