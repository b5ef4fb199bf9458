"""BINARY (RFC 3516): FETCH BINARY[section]<partial>, BINARY.PEEK, BINARY.SIZE, APPEND literal8.

The expected answers were checked against Dovecot 2.3 (Debian's dovecot-imapd)
on the same message; where they differ the test says which RFC rule geomail
follows instead.
"""

import base64

from tests.imap.conftest import message, multipart

PAYLOAD = b"\x00\x01binary\x00data" * 3
ATTACHMENT = base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n")
MIXED = (b"From: alice@example.org\r\nTo: bob@example.com\r\nSubject: binary\r\n"
         b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\npre\r\n"
         b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 soft=\r\nbreak\r\n"
         b"--XX\r\nContent-Type: application/octet-stream; name=data.bin\r\n"
         b"Content-Transfer-Encoding: base64\r\n\r\n" + ATTACHMENT +
         b"--XX\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-weird\r\n\r\nweird\r\n"
         b"--XX\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\n\r\ninner\r\n--YY--\r\n"
         b"--XX\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
         b"Subject: in\r\n\r\nhi\r\n"
         b"--XX--\r\n")




def fetch(session, items, which="1"):
    return session.command(f"FETCH {which} ({items})")


def test_capability_advertised(session):
    caps = session.command("CAPABILITY")[0].split()
    assert "BINARY" in caps


def test_decoded_parts(session, deliver):
    deliver(session.account.address, MIXED)
    session.ok("SELECT INBOX")
    # quoted-printable undone (soft line break, =XX); 8bit without NUL is a plain
    # literal (RFC 3516 §4.3 SHOULD; Dovecot sends ~{15} here)
    assert fetch(session, "BINARY.PEEK[1] BINARY.SIZE[1]") == [
        "* 1 FETCH (BINARY[1] {15}\r\ncafé softbreak BINARY.SIZE[1] 15)", "TAG OK FETCH completed"]
    # base64 undone, from the attachment's decoded object; it holds NUL: literal8
    assert fetch(session, "BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[2]<3.5>") == [
        "* 1 FETCH (BINARY[2] ~{39}\r\n" + PAYLOAD.decode() + " BINARY.SIZE[2] 39 "
        "BINARY[2]<3> ~{5}\r\ninary)", "TAG OK FETCH completed"]
    # a multipart and a message/rfc822 body are never decoded (RFC 2046 §5.1.1, §5.2.1:
    # their only encodings are identities), as Dovecot
    assert fetch(session, "BINARY.PEEK[4] BINARY.SIZE[4] BINARY.PEEK[5] BINARY.PEEK[5.1] "
                          "BINARY.PEEK[4.1]") == [
        "* 1 FETCH (BINARY[4] {23}\r\n--YY\r\n\r\ninner\r\n--YY--\r\n BINARY.SIZE[4] 23 "
        "BINARY[5] {17}\r\nSubject: in\r\n\r\nhi BINARY[5.1] {2}\r\nhi BINARY[4.1] {5}\r\ninner)",
        "TAG OK FETCH completed"]
    # past the end: an empty literal8, as Dovecot
    assert fetch(session, "BINARY.PEEK[2]<100.5>") == [
        "* 1 FETCH (BINARY[2]<100> ~{0}\r\n)", "TAG OK FETCH completed"]
    # no such part: empty and size 0, as Dovecot
    assert fetch(session, "BINARY.PEEK[9] BINARY.SIZE[9] BINARY.PEEK[9]<2.3>") == [
        "* 1 FETCH (BINARY[9] {0}\r\n BINARY.SIZE[9] 0 BINARY[9]<2> {0}\r\n)", "TAG OK FETCH completed"]
    # the whole message: no transfer encoding of its own to undo
    whole = fetch(session, "BODY.PEEK[]")[0]
    size = int(whole[whole.index("{") + 1:whole.index("}")])
    assert fetch(session, "BINARY.SIZE[] BINARY.PEEK[]<0.13>") == [
        "* 1 FETCH (BINARY.SIZE[] %d BINARY[]<0> {13}\r\nReturn-Path: )" % size, "TAG OK FETCH completed"]
    assert fetch(session, "FLAGS") == ["* 1 FETCH (FLAGS (\\Recent))", "TAG OK FETCH completed"]


def test_unknown_cte_and_binary_sets_seen(session, deliver):
    deliver(session.account.address, MIXED)
    session.ok("SELECT INBOX")
    for items in ("BINARY.PEEK[3]", "BINARY.SIZE[3]", "UID BINARY.PEEK[1] BINARY.PEEK[3]"):
        assert fetch(session, items) == [
            "TAG NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding x-weird"]
    assert fetch(session, "BINARY[1]<0.4>") == [
        "* 1 FETCH (BINARY[1]<0> {4}\r\ncaf\xc3 FLAGS (\\Seen \\Recent))".encode("latin-1").decode(
            "utf-8", "replace"), "TAG OK FETCH completed"]
    assert fetch(session, "FLAGS") == ["* 1 FETCH (FLAGS (\\Seen \\Recent))", "TAG OK FETCH completed"]


def test_syntax(session, deliver):
    deliver(session.account.address, message())
    session.ok("SELECT INBOX")
    for items, error in (
            ("BINARY[1.MIME]", "expected number at 'MIME])'"),
            ("BINARY[HEADER]", "expected number at 'HEADER])'"),
            ("BINARY[1.]", "expected number at '])'"),
            ("BINARY[0]", "number must not be zero"),
            ("BINARY[1", "expected '.' or ']' at ')'"),
            ("BINARY.SIZE[1]<0.5>", "expected space at '<0.5>)'"),
            ("BINARY[1]<0.0>", "number must not be zero"),
            ("BINARY", "BINARY needs a section"),
            ("BINARY.PEEK", "BINARY.PEEK needs a section")):
        assert fetch(session, items) == [f"TAG BAD Syntax error: {error}"], items
    # a one-part message: part 1 is its body, as BODY[1]
    assert fetch(session, "BINARY.PEEK[1] BINARY.SIZE[1]") == [
        "* 1 FETCH (BINARY[1] {11}\r\nHi there.\r\n BINARY.SIZE[1] 11)", "TAG OK FETCH completed"]


def test_large_attachment_ranges(session, deliver):
    data, payload = multipart(size=300_000)
    deliver(session.account.address, data)
    session.ok("SELECT INBOX")
    assert fetch(session, "BINARY.SIZE[2]") == ["* 1 FETCH (BINARY.SIZE[2] 300000)", "TAG OK FETCH completed"]
    for offset, length in ((0, 300_000), (1, 70_000), (123_457, 100_000), (299_990, 100)):
        session.send(f"r1 FETCH 1 (BINARY.PEEK[2]<{offset}.{length}>)\r\n")
        line = session.readline()
        want = payload[offset:offset + length]
        assert line == b"* 1 FETCH (BINARY[2]<%d> ~{%d}\r\n" % (offset, len(want))
        assert session.read_exact(len(want)) == want
        assert session.readline() == b")\r\n"
        assert session.readline().startswith(b"r1 OK")


def test_append_literal8_with_nul(session):
    body = b"Subject: nul\r\nContent-Transfer-Encoding: binary\r\n\r\na\x00b\r\n"
    session.send(b"a1 APPEND INBOX ~{%d}\r\n" % len(body))
    assert session.readline().startswith(b"+ ")
    session.send(body + b"\r\n")
    assert session.readline().startswith(b"a1 OK [APPENDUID ")
    session.ok("SELECT INBOX")
    # stored in base64 (test_append_binary.py), BINARY gives the bytes sent
    stored = b"Subject: nul\r\nContent-Transfer-Encoding: base64\r\n\r\nYQBiDQo=\r\n"
    assert fetch(session, "BINARY.PEEK[1] BINARY.SIZE[1] RFC822.SIZE") == [
        "* 1 FETCH (BINARY[1] ~{5}\r\na\x00b\r\n BINARY.SIZE[1] 5 RFC822.SIZE %d)" % len(stored),
        "TAG OK FETCH completed"]
    assert fetch(session, "BINARY.PEEK[]")[0] == "* 1 FETCH (BINARY[] {%d}\r\n%s)" % (
        len(stored), stored.decode())
    # an 8bit attachment with NUL (stored in base64, served from its object): literal8 as well
    attached = (b"Subject: nul\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
                b"Content-Type: text/plain; name=a.txt\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                b"x\x00y\xff\r\n--B\r\nContent-Type: text/plain; name=b.txt\r\n\r\nplain\r\n--B--\r\n")
    session.send(b"a3 APPEND INBOX ~{%d+}\r\n" % len(attached) + attached + b"\r\n")
    assert session.read_response("a3")[-1].startswith("a3 OK [APPENDUID ")
    session.send(b"f3 FETCH 2 (BINARY.PEEK[1] BINARY.PEEK[2])\r\n")
    assert session.readline() == b"* 2 FETCH (BINARY[1] ~{4}\r\n"
    assert session.read_exact(4) == b"x\x00y\xff"
    assert session.readline() == b" BINARY[2] {5}\r\n"
    assert session.read_exact(5) == b"plain"
    assert session.readline() == b")\r\n"
    assert session.readline().startswith(b"f3 OK")
    # non-synchronising literal8
    session.send(b"a2 APPEND INBOX ~{%d+}\r\n" % len(body) + body + b"\r\n")
    assert session.read_response("a2")[-1].startswith("a2 OK [APPENDUID ")


def test_literal8_only_in_append(session):
    assert session.command("SELECT ~{5+}\r\nINBOX") == [
        "TAG BAD Syntax error: literal8 is allowed only for the message of APPEND"]
    assert session.command("NOOP") == ["TAG OK NOOP completed"]


def test_base64_without_nul_is_a_plain_literal(session, deliver):
    """As imaptest's fetch-binary-mime-base64: decoded data without NUL is a string
    (RFC 3516 §4.3 SHOULD), with NUL a literal8, inline or attachment alike."""
    text = base64.b64encode(b"hello world") + b"\r\n"
    data = (b"Subject: b64\r\nContent-Type: multipart/mixed; boundary=Z\r\n\r\n--Z\r\n"
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + text +
            b"--Z\r\nContent-Type: application/octet-stream; name=a.bin\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + text +
            b"--Z\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            b"nul=00here\r\n--Z--\r\n")
    deliver(session.account.address, data)
    session.ok("SELECT INBOX")
    assert fetch(session, "BINARY.PEEK[1] BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[2]<6.5>") == [
        "* 1 FETCH (BINARY[1] {11}\r\nhello world BINARY[2] {11}\r\nhello world BINARY.SIZE[2] 11 "
        "BINARY[2]<6> {5}\r\nworld)", "TAG OK FETCH completed"]
    assert fetch(session, "BINARY.PEEK[3] BINARY.SIZE[3]") == [
        "* 1 FETCH (BINARY[3] ~{8}\r\nnul\x00here BINARY.SIZE[3] 8)", "TAG OK FETCH completed"]


QP = (b"Subject: qp\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
      b"hello  \r\nbar\r\nfoo\tbar\r\nfoo\t \t= \r\nb\r\nfoo = \t\r\nbar\r\nfoo b\r\nfoo  \r\nbar\r\n"
      b"foo_bar\r\n")


def test_quoted_printable_as_rfc2045(session, deliver):
    """RFC 2045 §6.7 rule 3: blanks ending an encoded line are deleted, "=" then blanks
    is a soft line break; Dovecot's answers (imaptest's fetch-binary-mime-qp message),
    for an inline part and for an attachment alike."""
    decoded = "hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\nbar\r\nfoo_bar\r\n"
    deliver(session.account.address, QP)
    deliver(session.account.address, QP.replace(b"text/plain", b"text/plain; name=qp.txt"))
    session.ok("SELECT INBOX")
    for n in (1, 2):
        assert fetch(session, "BINARY.SIZE[1] BINARY.PEEK[1] BINARY.PEEK[1]<10.10> BINARY.PEEK[1]<40.100>",
                     str(n)) == [
            f"* {n} FETCH (BINARY.SIZE[1] 65 BINARY[1] {{65}}\r\n{decoded} BINARY[1]<10> {{10}}\r\n"
            f"{decoded[10:20]} BINARY[1]<40> {{25}}\r\n{decoded[40:]})", "TAG OK FETCH completed"]
