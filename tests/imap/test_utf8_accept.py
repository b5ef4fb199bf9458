"""UTF8=ACCEPT (RFC 6855): ENABLE, mailbox names in UTF-8 both ways, APPEND UTF8 (literal8),
SEARCH CHARSET refused."""

from tests.imap.conftest import message
from tests.imap.test_fetch import session_fetch_bytes


def enable(w):
    assert w.command("ENABLE UTF8=ACCEPT") == ["* ENABLED UTF8=ACCEPT", "TAG OK ENABLE completed"]


def test_enable(session):
    assert session.command("ENABLE FOO") == ["* ENABLED", "TAG OK ENABLE completed"]
    enable(session)
    assert session.command("ENABLE UTF8=ACCEPT") == ["* ENABLED", "TAG OK ENABLE completed"]


def test_enable_refused_when_selected(session):
    session.ok("SELECT INBOX")
    assert session.command("ENABLE UTF8=ACCEPT") == [
        "TAG BAD ENABLE UTF8=ACCEPT is allowed only before SELECT"]
    assert session.command("CAPABILITY")[-1] == "TAG OK CAPABILITY completed"


def test_names_in_utf8_both_ways(session, wire):
    plain = wire()
    plain.login(session.account)
    plain.ok("CREATE Entw&APw-rfe")
    enable(session)
    session.ok('CREATE "Café/Grüße"')
    assert session.command('LIST "" "*"')[:-1] == [
        '* LIST (\\HasNoChildren) "/" INBOX',
        '* LIST (\\HasChildren) "/" "Café"',
        '* LIST (\\HasNoChildren) "/" "Café/Grüße"',
        '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
        '* LIST (\\HasNoChildren) "/" "Entwürfe"',
        '* LIST (\\HasNoChildren \\Junk) "/" Junk',
        '* LIST (\\HasNoChildren \\Sent) "/" Sent',
        '* LIST (\\HasNoChildren \\Trash) "/" Trash',
    ]
    assert session.command('STATUS "Café/Grüße" (MESSAGES)') == [
        '* STATUS "Café/Grüße" (MESSAGES 0)', "TAG OK STATUS completed"]
    assert session.command('LIST "" "Caf*"')[:-1] == [
        '* LIST (\\HasChildren) "/" "Café"', '* LIST (\\HasNoChildren) "/" "Café/Grüße"']
    assert session.command('SELECT "Entwürfe"')[-1] == "TAG OK [READ-WRITE] Select completed"
    # the connection without UTF8=ACCEPT sees modified UTF-7
    assert plain.command('STATUS "Caf&AOk-/Gr&APwA3w-e" (MESSAGES)') == [
        "* STATUS Caf&AOk-/Gr&APwA3w-e (MESSAGES 0)", "TAG OK STATUS completed"]


def test_modified_utf7_is_not_decoded_after_enable(session, wire):
    enable(session)
    session.ok("CREATE &Jjo-")
    assert session.command('LIST "" "&*"') == ['* LIST (\\HasNoChildren) "/" &Jjo-',
                                             "TAG OK LIST completed"]
    plain = wire()
    plain.login(session.account)
    assert plain.command('LIST "" "&-*"') == ['* LIST (\\HasNoChildren) "/" &-Jjo-',
                                            "TAG OK LIST completed"]


def test_invalid_utf8_name(session):
    enable(session)
    session.send(b't1 CREATE "bad\xff"\r\n')
    assert session.read_response("t1") == ["t1 NO [CANNOT] Mailbox name is not UTF-8"]
    assert session.command("NOOP") == ["TAG OK NOOP completed"]


def test_append_utf8_literal8(session):
    data = message("Grüße", "Unicode body: 日本語\r\n")
    before = b"APPEND INBOX UTF8 (~{%d+}\r\n" % len(data) + data + b")"
    assert session.command(before.decode()) == [
        "TAG BAD APPEND UTF8 needs ENABLE UTF8=ACCEPT"]
    enable(session)
    assert session.command(before.decode())[0].startswith("TAG OK [APPENDUID ")
    assert session.command("APPEND INBOX UTF8 ({3+}\r\nabc)") == [
        "TAG BAD APPEND UTF8 takes a literal8 (~{n})"]
    assert session.command("APPEND INBOX UTF8 (~{3+}\r\nabc") == [
        "TAG BAD Syntax error: expected ')' at end of line"]
    session.ok("SELECT INBOX")
    assert session.command("SEARCH ALL") == ["* SEARCH 1", "TAG OK SEARCH completed"]
    assert session_fetch_bytes(session, "FETCH 1 BODY.PEEK[]") == data


def test_search_charset_refused(session, deliver):
    deliver(session.account.address, message("Grüße aus Köln"))
    enable(session)
    session.ok("SELECT INBOX")
    assert session.command("SEARCH CHARSET UTF-8 ALL") == [
        "TAG BAD SEARCH CHARSET is not allowed after ENABLE UTF8=ACCEPT"]
    assert session.command('SEARCH SUBJECT "Köln"') == ["* SEARCH 1", "TAG OK SEARCH completed"]
