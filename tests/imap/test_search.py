"""SEARCH and UID SEARCH: RFC 3501 §6.4.4 keys, compiled to SQL."""

import pytest

from tests.imap.conftest import message


@pytest.fixture
def mailbox(session, deliver):
    address = session.account.address
    deliver(address, message("Quarterly report", "The numbers are in.\r\n", sender="boss@example.org"))
    deliver(address, message("Lunch", "Pizza at noon? Zebra crossing.\r\n", sender="friend@example.net",
                             extra="X-Priority: 1\r\n"))
    deliver(address, message("Re: Quarterly report", "Looks good.\r\n" + "x" * 3000 + "\r\n",
                             sender="boss@example.org"))
    session.ok("SELECT INBOX")
    session.ok("STORE 2 +FLAGS.SILENT (\\Seen \\Flagged $Food)")
    session.ok("STORE 3 +FLAGS.SILENT (\\Deleted \\Answered)")
    return session


CASES = [
    ("ALL", "1 2 3"),
    ("SEEN", "2"), ("UNSEEN", "1 3"), ("FLAGGED", "2"), ("UNFLAGGED", "1 3"),
    ("DELETED", "3"), ("UNDELETED", "1 2"), ("ANSWERED", "3"), ("UNANSWERED", "1 2"),
    ("DRAFT", ""), ("UNDRAFT", "1 2 3"),
    ("KEYWORD $Food", "2"), ("UNKEYWORD $Food", "1 3"),
    ("RECENT", "1 2 3"), ("NEW", "1 3"), ("OLD", ""),
    ("FROM boss", "1 3"), ("FROM BOSS@EXAMPLE.ORG", "1 3"), ("TO bob", "1 2 3"), ("CC bob", ""),
    ("SUBJECT quarterly", "1 3"), ('SUBJECT "re: quarterly"', "3"),
    ("BODY zebra", "2"), ("TEXT zebra", "2"), ("TEXT lunch", "2"), ("BODY lunch", ""),
    ("HEADER X-Priority 1", "2"), ('HEADER X-Priority ""', "2"), ("HEADER Received geomail", "1 2 3"),
    ("BCC x", ""),
    ("LARGER 1000", "3"), ("SMALLER 1000", "1 2"),
    # Date: Mon, 7 Feb 1994 21:52:25 -0800 is 8 Feb in UTC; SENT* use the header's own date
    ("SENTBEFORE 8-Feb-1994", "1 2 3"), ("SENTBEFORE 7-Feb-1994", ""), ("SENTON 7-Feb-1994", "1 2 3"),
    ("SENTON 8-Feb-1994", ""), ("SENTSINCE 7-Feb-1994", "1 2 3"), ("SENTSINCE 8-Feb-1994", ""),
    ("BEFORE 1-Jan-2000", ""), ("SINCE 1-Jan-2000", "1 2 3"),
    ("NOT SEEN", "1 3"), ("OR SEEN DELETED", "2 3"), ("(FROM boss UNDELETED)", "1"),
    ("NOT (OR SEEN DELETED)", "1"), ("2:*", "2 3"), ("1,3", "1 3"), ("UID 2:3 SEEN", "2"),
    ("CHARSET UTF-8 SUBJECT lunch", "2"), ("CHARSET US-ASCII SUBJECT lunch", "2"),
    ("CHARSET KOI8-R SUBJECT lunch", "2"), ("CHARSET iso-8859-1 BODY PIZZA", "2"),
]


def test_search_charsets(session, deliver):
    """Strings are decoded from the announced charset (RFC 3501 §6.4.4)."""
    deliver(session.account.address, message("Привет мир", "Café crème.\r\n"))
    session.ok("SELECT INBOX")
    koi8 = "привет".encode("koi8-r")
    session.send(b"a1 SEARCH CHARSET KOI8-R SUBJECT {%d+}\r\n" % len(koi8) + koi8 + b"\r\n")
    assert session.read_response("a1") == ["* SEARCH 1", "a1 OK SEARCH completed"]
    latin = "crème".encode("iso-8859-1")
    session.send(b"a2 SEARCH CHARSET ISO-8859-1 BODY {%d+}\r\n" % len(latin) + latin + b"\r\n")
    assert session.read_response("a2") == ["* SEARCH 1", "a2 OK SEARCH completed"]
    session.send(b"a3 SEARCH CHARSET UTF-8 BODY {%d+}\r\n" % len(latin) + latin + b"\r\n")
    assert session.read_response("a3") == [
        "a3 NO [BADCHARSET (UTF-8 US-ASCII)] Search string is not valid UTF-8"]


def test_sent_dates_fall_back_to_internal_date(session):
    """No Date: or one that cannot be parsed: SENT* use INTERNALDATE (as Dovecot does)."""
    for date in ("", "Date: not a date at all\r\n"):
        data = f"From: a@example.org\r\nSubject: x\r\n{date}\r\nbody\r\n"
        session.ok('APPEND INBOX "15-Mar-2003 23:30:00 +0000" {%d+}\r\n' % len(data) + data)
    session.ok("APPEND INBOX {%d+}\r\n" % len(message("dated")) + message("dated").decode())
    session.ok("SELECT INBOX")
    tagged = "TAG OK SEARCH completed"
    assert session.command("SEARCH SENTON 15-Mar-2003") == ["* SEARCH 1 2", tagged]
    assert session.command("SEARCH SENTBEFORE 15-Mar-2003") == ["* SEARCH 3", tagged]
    assert session.command("SEARCH SENTSINCE 16-Mar-2003") == ["* SEARCH", tagged]
    assert session.command("SEARCH SENTON 7-Feb-1994") == ["* SEARCH 3", tagged]


def test_search_keys(mailbox):
    """Every key against one mailbox (one connection, so the table stays fast)."""
    answers = {criteria: mailbox.command(f"SEARCH {criteria}") for criteria, _ in CASES}
    expected = {criteria: [f"* SEARCH {result}".rstrip(), "TAG OK SEARCH completed"]
                for criteria, result in CASES}
    assert answers == expected


def test_uid_search_and_errors(mailbox):
    mailbox.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    mailbox.ok("UID EXPUNGE 1")
    assert mailbox.command("UID SEARCH FROM boss") == ["* SEARCH 3", "TAG OK UID SEARCH completed"]
    assert mailbox.command("SEARCH FROM boss") == ["* SEARCH 2", "TAG OK SEARCH completed"]
    assert mailbox.command("SEARCH CHARSET X-UNKNOWN FROM x") == [
        "TAG NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset X-UNKNOWN"]
    assert mailbox.command("SEARCH CHARSET HEX FROM x") == [
        "TAG NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset HEX"]
    assert mailbox.command("SEARCH CHARSET US-ASCII FROM {1+}\r\n\xe9") == [
        "TAG NO [BADCHARSET (UTF-8 US-ASCII)] Search string is not valid US-ASCII"]
    assert mailbox.command("SEARCH FROB") == ["TAG BAD Syntax error: unknown search key FROB"]
    assert mailbox.command("SEARCH OR SEEN") == ["TAG BAD Syntax error: expected space at end of line"]
    assert mailbox.command("SEARCH BEFORE 31-Foo-2000") == [
        "TAG BAD Syntax error: invalid date"]
