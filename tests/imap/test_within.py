"""WITHIN (RFC 5032): SEARCH OLDER n / YOUNGER n by INTERNALDATE."""

from tests.imap.conftest import message
from tests.imap.test_esearch import esearch


def test_older_younger(session, deliver):
    address = session.account.address
    session.ok('APPEND INBOX "01-Jan-2001 10:00:00 +0000" {%d+}\r\n' % len(message("old"))
               + message("old").decode())
    deliver(address, message("new"))
    session.ok("SELECT INBOX")
    tagged = "TAG OK SEARCH completed"
    assert session.command("SEARCH YOUNGER 3600") == ["* SEARCH 2", tagged]
    assert session.command("SEARCH OLDER 3600") == ["* SEARCH 1", tagged]
    assert session.command("SEARCH YOUNGER 4294967295") == ["* SEARCH 1 2", tagged]
    assert session.command("SEARCH OLDER 4294967295") == ["* SEARCH", tagged]
    assert session.command("SEARCH OLDER 4294967296") == ["TAG BAD Syntax error: number too large"]
    assert session.command("SEARCH NOT YOUNGER 86400") == ["* SEARCH 1", tagged]
    assert esearch(session, "UID SEARCH RETURN (COUNT) OLDER 100") == [
        '* ESEARCH (TAG "TAG") UID COUNT 1', "TAG OK UID SEARCH completed"]
    assert session.command("SEARCH OLDER 0") == ["TAG BAD Syntax error: number must not be zero"]
    assert session.command("SEARCH YOUNGER x") == ["TAG BAD Syntax error: expected number at 'x'"]
    assert session.command("SEARCH OLDER 99999999999999999999999") == [
        "TAG BAD Syntax error: expected number at '99999999999999999999'"]
