"""Any-state commands (CAPABILITY, NOOP, LOGOUT, ID) and bad input handling."""

PRE_AUTH = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE AUTH=PLAIN"
POST_AUTH = ("IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE SPECIAL-USE "
             "CREATE-SPECIAL-USE CHILDREN UNSELECT ESEARCH SEARCHRES WITHIN SORT SORT=DISPLAY ESORT "
             "THREAD=ORDEREDSUBJECT THREAD=REFERENCES BINARY COMPRESS=DEFLATE MULTIAPPEND CATENATE "
             "UTF8=ACCEPT LIST-EXTENDED LIST-STATUS STATUS=SIZE QUOTA QUOTA=RES-STORAGE "
             "QUOTA=RES-MESSAGE SAVEDATE OBJECTID PREVIEW CONDSTORE QRESYNC CONTEXT=SEARCH CONTEXT=SORT APPENDLIMIT=52428800")


def test_greeting_and_capability(wire):
    w = wire()
    assert w.greeting == f"* OK [CAPABILITY {PRE_AUTH}] mx.test.invalid geomail IMAP4rev1 ready\r\n".encode()
    assert w.command("CAPABILITY") == [f"* CAPABILITY {PRE_AUTH}", "TAG OK CAPABILITY completed"]


def test_capability_after_login(session):
    assert session.command("CAPABILITY") == [f"* CAPABILITY {POST_AUTH}", "TAG OK CAPABILITY completed"]


def test_noop_and_logout(wire):
    w = wire()
    assert w.command("NOOP") == ["TAG OK NOOP completed"]
    assert w.command("LOGOUT") == ["* BYE geomail logging out", "TAG OK LOGOUT completed"]
    assert w.sock.recv(10) == b""


def test_id(wire):
    w = wire()
    server_id = '* ID ("name" "geomail" "vendor" "geomail" "support-url" "https://example.invalid/geomail")'
    assert w.command('ID ("name" "test" "version" NIL)') == [server_id, "TAG OK ID completed"]
    assert w.command("ID NIL") == [server_id, "TAG OK ID completed"]
    assert w.command("ID (")[-1].startswith("TAG BAD Syntax error")


def test_unknown_and_wrong_state(wire):
    w = wire()
    assert w.command("FROB") == ["TAG BAD Unknown command FROB"]
    assert w.command("SELECT INBOX") == ["TAG BAD SELECT not allowed in the not authenticated state"]
    assert w.command("NOOP extra") == ["TAG BAD Syntax error: unexpected ' extra' at end of command"]
    assert w.command("NOOP") == ["TAG OK NOOP completed"]


def test_missing_tag_and_empty_lines(wire):
    w = wire()
    w.send(b"\r\n(bad\r\n")
    assert w.readline() == b"* BAD missing or invalid tag\r\n"
    assert w.command("NOOP") == ["TAG OK NOOP completed"]


def test_line_too_long(wire):
    w = wire()
    w.send(b"a1 NOOP " + b"x" * 70000 + b"\r\n")
    assert w.readline() == b"* BAD Command line too long\r\n"
    assert w.command("NOOP") == ["TAG OK NOOP completed"]


def test_literal_too_big(session):
    # synchronizing: no '+', NO [TOOBIG], and the session goes on
    assert session.command("APPEND INBOX {60000000}") == [
        "TAG NO [TOOBIG] Literal of 60000000 bytes is larger than the limit of 52428800"]
    assert session.command("NOOP") == ["TAG OK NOOP completed"]


def test_bad_sequence_set(session):
    session.ok("SELECT INBOX")
    assert session.command("FETCH 0 FLAGS") == ["TAG BAD Syntax error: number must not be zero"]
    assert session.command("FETCH 5 FLAGS") == [
        "TAG BAD Invalid message sequence number: the mailbox is empty"]
    assert session.command("FETCH 1:* FLAGS") == ["TAG OK FETCH completed"]
