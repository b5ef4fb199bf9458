"""APPEND of a literal8 holding NUL (RFC 3516 §4.4): binary parts stored in base64.

An IMAP4rev1 literal cannot carry NUL (RFC 3501 §4.3), so FETCH BODY[n] of a
part appended with NUL must not send those bytes: the part is stored in
base64, as Dovecot does (imaptest's append-binary), and BINARY[n] gives back
the bytes sent.  Everything else in the message is stored byte for byte.
"""

import base64

from tests.imap.conftest import message

MiB = 1024 * 1024

IMAPTEST = (b"From: user@domain.org\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\n"
            b"Mime-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: binary\r\n\r\n\x00-\xe4\r\n\r\n")


def raw(session, command):
    """The whole answer to a command as bytes, literals inline, the tagged line last."""
    session.send(f"r1 {command}\r\n")
    lines = []
    while True:
        lines.append(session.read_item())
        if lines[-1].startswith(b"r1 "):
            return lines


def append(session, data, mailbox="INBOX", literal8=True):
    """APPEND with a synchronising literal(8); the tagged answer."""
    session.send(b"a1 APPEND %s %s{%d}\r\n" % (mailbox.encode(), b"~" if literal8 else b"",
                                                 len(data)))
    assert session.readline() == b"+ Ready for literal data\r\n"
    session.send(data + b"\r\n")
    return session.read_response("a1")[-1]


def b64(data):
    """data in base64 lines of 76 characters ending CRLF (RFC 2045 §6.8)."""
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def test_imaptest_append_binary(session):
    """imaptest's append-binary: BODY[1] is base64, BINARY[1] the bytes sent."""
    assert append(session, IMAPTEST).startswith("a1 OK [APPENDUID ")
    session.ok("SELECT INBOX")
    stored = IMAPTEST.replace(b"Encoding: binary", b"Encoding: base64").replace(
        b"\x00-\xe4\r\n\r\n", b"AC3kDQoNCg==\r\n")
    assert raw(session, "FETCH 1 (BODY.PEEK[1])") == [
        b"* 1 FETCH (BODY[1] {14}\r\nAC3kDQoNCg==\r\n)", b"r1 OK FETCH completed"]
    assert raw(session, "FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])") == [
        b"* 1 FETCH (BINARY.SIZE[1] 7 BINARY[1] ~{7}\r\n\x00-\xe4\r\n\r\n)", b"r1 OK FETCH completed"]
    assert raw(session, "FETCH 1 (BODY.PEEK[] RFC822.SIZE)") == [
        b"* 1 FETCH (BODY[] {%d}\r\n%s RFC822.SIZE %d)" % (len(stored), stored, len(stored)),
        b"r1 OK FETCH completed"]
    assert raw(session, "FETCH 1 (BODYSTRUCTURE)") == [
        b'* 1 FETCH (BODYSTRUCTURE ("application" "octet-stream" NIL NIL NIL "base64" 14 NIL NIL '
        b'NIL NIL))', b"r1 OK FETCH completed"]


TEXT_PART = (b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
             b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9, text\r\n")
BLOB = bytes(range(256)) * 2
INNER = b"\x00\x01\x02 raw image \xff"


def mixed(blob_cte, blob, inner_header, inner):
    """A multipart/mixed with a text part, a binary part, and a message/rfc822 whose
    multipart holds another binary part (without a Content-Transfer-Encoding)."""
    return (b"From: alice@example.org\r\nSubject: mixed\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\npreamble\r\n' + TEXT_PART +
            b"--b1\r\nContent-Type: application/octet-stream; name=blob.bin\r\n"
            b"Content-Transfer-Encoding: " + blob_cte + b"\r\nX-After: kept\r\n\r\n" + blob +
            b"\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n"
            b"Content-Type: multipart/mixed; boundary=b2\r\n\r\n--b2\r\n"
            b"Content-Type: image/x-raw\r\n" + inner_header + b"\r\n" + inner +
            b"\r\n--b2--\r\n\r\n--b1--\r\nepilogue\r\n")


def test_multipart_binary_parts_only(session):
    sent = mixed(b"binary", BLOB, b"", INNER)
    stored = mixed(b"base64", b64(BLOB)[:-2], b"Content-Transfer-Encoding: base64\r\n",
                   b64(INNER)[:-2])
    assert append(session, sent).startswith("a1 OK [APPENDUID ")
    session.ok("SELECT INBOX")
    assert raw(session, "FETCH 1 (BODY.PEEK[])") == [
        b"* 1 FETCH (BODY[] {%d}\r\n%s)" % (len(stored), stored), b"r1 OK FETCH completed"]
    # the text part byte for byte, its header too
    assert raw(session, "FETCH 1 (BODY.PEEK[1.MIME] BODY.PEEK[1])") == [
        b"* 1 FETCH (BODY[1.MIME] {76}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n BODY[1] {11}\r\ncaf\xc3\xa9, text)",
        b"r1 OK FETCH completed"]
    # the binary parts: base64 in BODY, the bytes sent in BINARY (literal8, RFC 3516 §4.3)
    assert raw(session, "FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2] BINARY.SIZE[3.1] BINARY.PEEK[3.1])") == [
        b"* 1 FETCH (BINARY.SIZE[2] 512 BINARY[2] ~{512}\r\n%s BINARY.SIZE[3.1] 15 "
        b"BINARY[3.1] ~{15}\r\n%s)" % (BLOB, INNER), b"r1 OK FETCH completed"]
    assert raw(session, "FETCH 1 (BODY.PEEK[3.1.MIME] BODY.PEEK[3.1])") == [
        b"* 1 FETCH (BODY[3.1.MIME] {64}\r\nContent-Type: image/x-raw\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n BODY[3.1] {20}\r\nAAECIHJhdyBpbWFnZSD/)",
        b"r1 OK FETCH completed"]
    body = raw(session, "FETCH 1 (BODYSTRUCTURE)")[0]
    assert b'("application" "octet-stream" ("name" "blob.bin") NIL NIL "base64" 700 ' in body
    assert b'("image" "x-raw" NIL NIL NIL "base64" 20 ' in body


def test_without_nul_stored_as_sent(session):
    """A literal8 without NUL, 8bit and binary alike, is stored byte for byte; so is
    a message whose only NUL is in a part whose encoding is unknown."""
    sent = message("eight", body="\xe9t\xe9 \x01\x7f\r\n",
                   extra="Content-Transfer-Encoding: binary\r\n").replace(b"\xc3\xa9", b"\xe9")
    weird = (b"Subject: weird\r\nContent-Transfer-Encoding: x-private\r\n\r\nkeep\x00this\r\n")
    assert append(session, sent).startswith("a1 OK [APPENDUID ")
    assert append(session, weird).startswith("a1 OK [APPENDUID ")
    session.ok("SELECT INBOX")
    assert raw(session, "FETCH 1 (BODY.PEEK[] RFC822.SIZE)") == [
        b"* 1 FETCH (BODY[] {%d}\r\n%s RFC822.SIZE %d)" % (len(sent), sent, len(sent)),
        b"r1 OK FETCH completed"]
    assert raw(session, "FETCH 2 (RFC822.SIZE BINARY.SIZE[1])") == [
        b"r1 NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding x-private"]
    assert raw(session, "FETCH 2 (RFC822.SIZE)") == [
        b"* 2 FETCH (RFC822.SIZE %d)" % len(weird), b"r1 OK FETCH completed"]


def test_plain_literal_and_utf8_literal8(session):
    """Only literal8 data is converted: a {n} literal is stored as sent; UTF8 (~{n})
    (RFC 6855 §4) is a literal8 and is converted."""
    nul = b"Subject: nul\r\n\r\na\x00b\r\n"
    assert append(session, nul, literal8=False).startswith("a1 OK [APPENDUID ")
    session.ok("ENABLE UTF8=ACCEPT")
    session.send(b"a2 APPEND INBOX UTF8 (~{%d+}\r\n%s)\r\n" % (len(nul), nul))
    assert session.read_response("a2")[-1].startswith("a2 OK [APPENDUID ")
    session.ok("SELECT INBOX")
    assert raw(session, "FETCH 1:2 (RFC822.SIZE BINARY.PEEK[1])") == [
        b"* 1 FETCH (RFC822.SIZE %d BINARY[1] ~{5}\r\na\x00b\r\n)" % len(nul),
        b"* 2 FETCH (RFC822.SIZE 61 BINARY[1] ~{5}\r\na\x00b\r\n)", b"r1 OK FETCH completed"]
    assert raw(session, "FETCH 2 (BODY.PEEK[])") == [
        b"* 2 FETCH (BODY[] {61}\r\nSubject: nul\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"YQBiDQo=\r\n)", b"r1 OK FETCH completed"]


def test_over_limit_with_nul_is_refused(session):
    """Over 16 MiB a literal8 streams; one that holds NUL is NO [UNKNOWN-CTE] (RFC 3516
    §4.4) with nothing stored, the literal drained, MULTIAPPEND undone; without NUL
    it is stored."""
    head = b"Subject: big\r\nContent-Type: application/octet-stream\r\n\r\n"
    big = head + b"x" * (16 * MiB) + b"\x00end\r\n"
    small = b"Subject: small\r\n\r\nfirst\r\n"
    session.send(b"a1 APPEND INBOX ~{%d+}\r\n%s ~{%d+}\r\n%s\r\na2 NOOP\r\n"
                 % (len(small), small, len(big), big))
    assert session.read_response("a1") == [
        "a1 NO [UNKNOWN-CTE] Binary data in a message over 16777216 bytes cannot be stored"]
    assert session.read_response("a2") == ["a2 OK NOOP completed"]
    assert session.command("STATUS INBOX (MESSAGES)") == [
        "* STATUS INBOX (MESSAGES 0)", "TAG OK STATUS completed"]
    clean = big.replace(b"\x00", b"0")
    session.send(b"a3 APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(clean), clean))
    assert session.read_response("a3")[-1].startswith("a3 OK [APPENDUID ")
    session.ok("SELECT INBOX")
    assert raw(session, "FETCH 1 (RFC822.SIZE BODY.PEEK[]<16777200.100>)") == [
        b"* 1 FETCH (RFC822.SIZE %d BODY[]<16777200> {%d}\r\n%s)"
        % (len(clean), len(clean) - 16777200, clean[16777200:]), b"r1 OK FETCH completed"]
