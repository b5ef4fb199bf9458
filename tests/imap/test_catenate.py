"""CATENATE (RFC 4469): APPEND from TEXT literals and URLs of stored messages and parts,
BADURL for URLs naming nothing of this account's, TOOBIG against APPENDLIMIT."""

import pytest

from tests.imap.conftest import PASSWORD, Wire, message, multipart
from tests.imap.test_fetch import session_fetch_bytes
from tests.imap.test_multiappend import count, uidvalidity


@pytest.fixture
def stored(session, deliver):
    """The session with one multipart message (text part, S3 attachment) in INBOX."""
    data, payload = multipart("Source")
    deliver(session.account.address, data)
    session.ok("SELECT INBOX")
    session.source = session_fetch_bytes(session, "FETCH 1 BODY.PEEK[]")
    session.part1 = session_fetch_bytes(session, "FETCH 1 BODY.PEEK[1]")
    session.part2 = session_fetch_bytes(session, "FETCH 1 BODY.PEEK[2]")
    session.ok("UNSELECT")
    session.validity = uidvalidity(session)
    return session


def appended(session, mailbox="Drafts", uid=1):
    session.ok(f"SELECT {mailbox}")
    data = session_fetch_bytes(session, f"UID FETCH {uid} BODY.PEEK[]")
    session.ok("UNSELECT")
    return data


def cat(*parts):
    """A CATENATE list with non-synchronising TEXT literals, as one command text."""
    out = []
    for kind, value in parts:
        if kind == "TEXT":
            out.append(b"TEXT {%d+}\r\n" % len(value) + value)
        else:
            out.append(b'URL "' + value + b'"')
    return b"CATENATE (" + b" ".join(out) + b")"


def test_text_and_parts(stored):
    head = b"From: me@example.com\r\nSubject: Forward\r\nMIME-Version: 1.0\r\n" \
           b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n\r\n'
    url1 = b"/INBOX;UIDVALIDITY=%d/;UID=1/;SECTION=1" % stored.validity
    url2 = b"/INBOX/;UID=1/;SECTION=2.MIME"
    url3 = b"imap://%s@mx.test.invalid/INBOX/;UID=1/;SECTION=2" % stored.account.address.encode()
    command = b"APPEND Drafts (\\Draft) " + cat(("TEXT", head), ("URL", url1),
                                                 ("TEXT", b"\r\n--B\r\n"), ("URL", url2),
                                                 ("URL", url3), ("TEXT", b"\r\n--B--\r\n"))
    assert stored.command(command.decode()) == [
        f"TAG OK [APPENDUID {uidvalidity(stored, 'Drafts')} 1] APPEND completed"]
    mime = stored.source[stored.source.index(b"--XX\r\nContent-Type: application") + 6:]
    mime = mime[:mime.index(b"\r\n\r\n") + 4]
    assert appended(stored) == (head + stored.part1 + b"\r\n--B\r\n" + mime + stored.part2
                                + b"\r\n--B--\r\n")


def test_whole_message_synchronizing_and_relative(stored):
    """A sync TEXT literal gets its '+' mid-command; ';UID=1' is relative to the selected INBOX."""
    stored.ok("SELECT INBOX")
    text = b"X-Note: resent\r\n"
    stored.send(b"a1 APPEND Drafts CATENATE (TEXT {%d}\r\n" % len(text))
    assert stored.readline() == b"+ Ready for literal data\r\n"
    stored.send(text + b' URL ";UID=1" URL ";UID=1/;PARTIAL=0.4")\r\n')
    assert stored.read_response("a1") == [
        f"a1 OK [APPENDUID {uidvalidity(stored, 'Drafts')} 1] APPEND completed"]
    assert appended(stored) == text + stored.source + stored.source[:4]


def test_with_multiappend(stored):
    command = (b"APPEND Drafts " + cat(("URL", b"/INBOX/;UID=1/;SECTION=TEXT"))
               + b" (\\Seen) " + cat(("TEXT", b"Subject: two\r\n\r\n"), ("URL", b"/INBOX/;UID=1/;SECTION=1")))
    assert stored.command(command.decode()) == [
        f"TAG OK [APPENDUID {uidvalidity(stored, 'Drafts')} 1:2] APPEND completed"]
    assert appended(stored, uid=2) == b"Subject: two\r\n\r\n" + stored.part1


@pytest.mark.parametrize("url, reason", [
    ("/INBOX;UIDVALIDITY=1/;UID=1", "UIDVALIDITY does not match"),
    ("/INBOX/;UID=7", "no such message"),
    ("/Nowhere/;UID=1", "no such mailbox"),
    ("/INBOX/;UID=1/;SECTION=9", "no such part"),
    ("/INBOX/;UID=1/;SECTION=1.HEADER", "no such part"),
    ("/INBOX/;UID=1/;SECTION=BOGUS", "invalid section"),
    ("/INBOX/;UID=1/;URLAUTH=anonymous", "unsupported or repeated ;URLAUTH"),
    ("/INBOX/;UID=1/;UID=2", "unsupported or repeated ;UID"),
    ("/INBOX/;UID=0", "zero is not a valid number here"),
    ("/INBOX", "expected /mailbox/;UID="),
    ("/INBOX/;UID=1/;PARTIAL=x", "expected a number, not 'x'"),
    ("imap://eve@mx.test.invalid/INBOX/;UID=1", "the URL names another user"),
    ("imap://elsewhere.example/INBOX/;UID=1", "the URL names another server"),
    (";UID=1", "a relative URL needs a selected mailbox"),
    ("http://example.com/", "not an IMAP URL of a message"),
])
def test_badurl(stored, url, reason):
    command = b"APPEND Drafts " + cat(("TEXT", b"Subject: x\r\n\r\n"), ("URL", url.encode()))
    assert stored.command(command.decode()) == [f"TAG NO [BADURL {url}] Cannot use this URL: {reason}"]
    assert count(stored, "Drafts") == 0


def test_badurl_echo_is_sanitised(stored):
    url = b"/IN]BOX/;UID=1"
    command = b"APPEND Drafts " + cat(("URL", url))
    assert stored.command(command.decode()) == [
        "TAG NO [BADURL /IN?BOX/;UID=1] Cannot use this URL: no such mailbox"]


def test_syntax_errors(stored):
    assert stored.command("APPEND Drafts CATENATE ()") == [
        "TAG BAD Syntax error: CATENATE needs at least one part"]
    assert stored.command('APPEND Drafts CATENATE (FILE "x")') == [
        "TAG BAD Syntax error: expected TEXT or URL at 'FILE \"x\")'"]
    assert stored.command('APPEND Drafts CATENATE (URL "/INBOX/;UID=1"') == [
        "TAG BAD Syntax error: expected space at end of line"]
    # a failing part after a literal: the literal is read, nothing is stored
    assert stored.command('APPEND Drafts CATENATE (TEXT {3+}\r\nabc URL "/INBOX/;UID=9")') == [
        "TAG NO [BADURL /INBOX/;UID=9] Cannot use this URL: no such message"]
    # a failing URL before a non-synchronising literal: the literal is drained
    assert stored.command('APPEND Drafts CATENATE (URL "/INBOX/;UID=9" TEXT {5+}\r\nNOOP\r)') == [
        "TAG NO [BADURL /INBOX/;UID=9] Cannot use this URL: no such message"]
    assert stored.command("NOOP") == ["TAG OK NOOP completed"]
    assert count(stored, "Drafts") == 0


def test_toobig_against_appendlimit(start_geomail, account):
    server = start_geomail(workers=1, extra_args=["--max-literal-size", "150000"])
    data, _ = multipart("Big", size=60_000)            # about 81 KB stored
    import smtplib
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=20) as smtp:
        smtp.sendmail("alice@example.org", [account.address], data)
    w = Wire(server.imap_port)
    try:
        w.ok(f'LOGIN {account.address} "{PASSWORD}"')
        twice = b"APPEND Drafts " + cat(("URL", b"/INBOX/;UID=1"), ("URL", b"/INBOX/;UID=1"))
        assert w.command(twice.decode()) == [
            "TAG NO [TOOBIG] The message would be larger than the limit of 150000"]
        text_after = b'APPEND Drafts CATENATE (URL "/INBOX/;UID=1" TEXT {100000}'
        assert w.command(text_after.decode())[0].startswith(
            "TAG NO [TOOBIG] Literal of 100000 bytes is larger than the limit of ")
        once = b"APPEND Drafts " + cat(("URL", b"/INBOX/;UID=1"))
        assert w.command(once.decode())[0].startswith("TAG OK [APPENDUID ")
    finally:
        w.close()
