"""FETCH: metadata, cached ENVELOPE/BODYSTRUCTURE, byte-exact bodies with S3 attachments, sections."""

import re

from tests.imap.conftest import fetch_literal, message, multipart

ENVELOPE = ('ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "Hello" ((NIL NIL "alice" "example.org")) '
            '((NIL NIL "alice" "example.org")) ((NIL NIL "alice" "example.org")) '
            '((NIL NIL "bob" "example.com")) NIL NIL NIL "<Hello@example.org>")')


def test_fetch_metadata(session, deliver):
    data = message()
    deliver(session.account.address, data)
    session.ok("EXAMINE INBOX")
    lines = session.command("FETCH 1 (UID FLAGS RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE)")
    body = '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 1)'
    structure = '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 1 NIL NIL NIL NIL)'
    size = int(re.search(r"RFC822.SIZE (\d+)", lines[0]).group(1))
    # EXAMINE sees the new message as \Recent (and leaves it so: RFC 3501 §6.3.2)
    assert lines == [f"* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE {size} {ENVELOPE} BODY {body} "
                     f"BODYSTRUCTURE {structure})", "TAG OK FETCH completed"]
    whole = session.command("FETCH 1 RFC822")
    assert whole[0].startswith(f"* 1 FETCH (RFC822 {{{size}}}\r\nReturn-Path: <alice@example.org>\r\n")
    assert fetch_literal(whole).endswith(data.decode())
    assert len(fetch_literal(whole)) == size
    fast = session.command("FETCH 1 FAST")[0]
    assert re.fullmatch(r'\* 1 FETCH \(FLAGS \(\\Recent\) INTERNALDATE "\d\d-\w\w\w-\d{4} \d\d:\d\d:\d\d \+0000" '
                        rf"RFC822.SIZE {size}\)", fast)


def test_body_is_byte_exact_and_sets_seen(session, deliver, db):
    data, payload = multipart()
    deliver(session.account.address, data)
    session.ok("SELECT INBOX")
    lines = session.command("FETCH 1 (RFC822.SIZE BODY[])")
    size = int(re.search(r"RFC822.SIZE (\d+)", lines[0]).group(1))
    raw = session_fetch_bytes(session, "UID FETCH 1 BODY.PEEK[]")
    assert raw.endswith(data) and len(raw) == size
    assert lines[0].endswith(" FLAGS (\\Seen \\Recent))")
    # partial fetches agree with the whole
    for offset, length in ((0, 10), (500, 4096), (size - 100, 1000), (size + 5, 10)):
        part = session_fetch_bytes(session, f"FETCH 1 BODY.PEEK[]<{offset}.{length}>")
        assert part == raw[offset:offset + length]


def session_fetch_bytes(session, command):
    """Send a FETCH with one literal and return its bytes exactly."""
    tag = "raw1"
    session.send(f"{tag} {command}\r\n")
    line = session.readline()
    match = re.search(rb"\{(\d+)\}\r\n$", line)
    assert match, line
    data = session.read_exact(int(match.group(1)))
    rest = session.read_response(tag)
    assert rest[-1].startswith(f"{tag} OK"), rest
    return data


def test_sections(session, deliver):
    data, payload = multipart()
    deliver(session.account.address, data)
    session.ok("EXAMINE INBOX")
    assert session_fetch_bytes(session, "FETCH 1 BODY.PEEK[1]") == b"See the attached file, zebra."
    assert session_fetch_bytes(session, "FETCH 1 BODY.PEEK[1.MIME]") == \
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    import base64
    encoded = session_fetch_bytes(session, "FETCH 1 BODY.PEEK[2]")
    assert base64.b64decode(encoded) == payload
    assert encoded == base64.encodebytes(payload).replace(b"\n", b"\r\n")[:-2]
    assert session_fetch_bytes(session, "FETCH 1 BODY.PEEK[2]<76.10>") == encoded[76:86]
    assert session_fetch_bytes(session, "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT to)]") == \
        b"To: bob@example.com\r\nSubject: With attachment\r\n\r\n"
    header = session_fetch_bytes(session, "FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (Received Return-Path)]")
    assert header == data[:data.index(b"\r\n\r\n") + 4]
    text = session_fetch_bytes(session, "FETCH 1 BODY.PEEK[TEXT]")
    assert text == data[data.index(b"\r\n\r\n") + 4:]
    assert session.command("FETCH 1 BODY.PEEK[7]") == ["* 1 FETCH (BODY[7] NIL)", "TAG OK FETCH completed"]
    structure = session.command("FETCH 1 BODYSTRUCTURE")[0]
    assert structure.startswith('* 1 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL '
                                '"7bit" 29 0 NIL NIL NIL NIL)("application" "octet-stream" ("name" "data.bin")')
    # read-only: nothing became \Seen
    assert session.command("FETCH 1 FLAGS") == ["* 1 FETCH (FLAGS (\\Recent))", "TAG OK FETCH completed"]


def test_rfc822_header_and_text(session, deliver):
    data = message("Parts", "line one\r\nline two\r\n")
    deliver(session.account.address, data)
    session.ok("SELECT INBOX")
    header = session_fetch_bytes(session, "FETCH 1 RFC822.HEADER")
    assert header.startswith(b"Return-Path: ") and header.endswith(data[:data.index(b"\r\n\r\n") + 4])
    assert session.command("FETCH 1 FLAGS") == ["* 1 FETCH (FLAGS (\\Recent))", "TAG OK FETCH completed"]
    assert session_fetch_bytes(session, "FETCH 1 RFC822.TEXT") == b"line one\r\nline two\r\n"
    assert session.command("FETCH 1 FLAGS") == ["* 1 FETCH (FLAGS (\\Seen \\Recent))", "TAG OK FETCH completed"]


def test_fetch_syntax_errors(session, deliver):
    deliver(session.account.address, message())
    session.ok("SELECT INBOX")
    assert session.command("FETCH 1 (FLAGS BOGUS)") == ["TAG BAD Syntax error: unknown FETCH item BOGUS"]
    assert session.command("FETCH 1 BODY[1.]") == ["TAG BAD Syntax error: section ends with '.'"]
    assert session.command("FETCH 1 BODY.PEEK") == ["TAG BAD Syntax error: BODY.PEEK needs a section"]
    assert session.command("FETCH 2 FLAGS") == ["TAG BAD Invalid message sequence number 2 (mailbox has 1)"]
    assert session.command("UID FETCH 5:9 FLAGS") == ["TAG OK UID FETCH completed"]
    assert session.command("UID FETCH 9:* FLAGS") == ["* 1 FETCH (UID 1 FLAGS (\\Recent))",
                                                      "TAG OK UID FETCH completed"]
