"""ENVELOPE / BODY / BODYSTRUCTURE: exact strings from RFC 3501 and Dovecot 2.3's own test vectors.

Dovecot's vectors (src/lib-imap/test-imap-bodystructure.c) use LF line ends
and count sizes as CRLF; we feed the same messages with CRLF, so the sizes
are the same.
"""

from geomail.mime import imap_string
from mime_helpers import check_roundtrip, crlf, parse


def structure(msg):
    data = crlf(msg)
    parsed, sink = parse(data)
    check_roundtrip(data, parsed, sink)
    return parsed


def test_rfc3501_envelope_and_body():
    body = b"x" * 56 + b"\r\n"
    msg = (b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
           b"From: Terry Gray <gray@cac.washington.edu>\r\n"
           b"Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
           b"To: imap@cac.washington.edu\r\n"
           b"cc: minutes@CNRI.Reston.VA.US,\r\n    John Klensin <KLENSIN@MIT.EDU>\r\n"
           b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n") + body * 92
    parsed = structure(msg)
    assert parsed.envelope == (
        b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        b'NIL NIL "<B27397-0100000@cac.washington.edu>")')
    assert parsed.body == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" 5336 92)'
    assert parsed.bodystructure == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" 5336 92 NIL NIL NIL NIL)')
    assert parsed.headers["message-id"] == "<B27397-0100000@cac.washington.edu>"
    assert parsed.headers["date_parsed"].utcoffset().total_seconds() == -7 * 3600


def test_envelope_groups_sender_reply_to_and_8bit():
    msg = (b"From: \"Fred \\\"F\\\" Foobar\" <foobar@blurdybloop.example>\r\n"
           b"Sender: \r\nReply-To: r@example.org (Reply Person)\r\n"
           b"To: undisclosed-recipients:;\r\n"
           b"Cc: friends: a@example.org, B <b@example.org>;, c@example.org\r\n"
           b"Subject: =?utf-8?q?caf=C3=A9?= \xc3\xa9\r\n"
           b"In-Reply-To: <x@y>\r\n\r\nbody\r\n")
    parsed = structure(msg)
    subject = "café é".encode()  # raw 8-bit subject: a literal, RFC 2047 left alone
    assert parsed.envelope == (
        b'(NIL {' + str(len(b"=?utf-8?q?caf=C3=A9?= " + "é".encode())).encode() + b'}\r\n'
        + b"=?utf-8?q?caf=C3=A9?= " + "é".encode() + b' '
        b'(("Fred \\"F\\" Foobar" NIL "foobar" "blurdybloop.example")) '
        b'(("Fred \\"F\\" Foobar" NIL "foobar" "blurdybloop.example")) '
        b'(("Reply Person" NIL "r" "example.org")) '
        b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) '
        b'((NIL NIL "friends" NIL)(NIL NIL "a" "example.org")("B" NIL "b" "example.org")(NIL NIL NIL NIL)'
        b'(NIL NIL "c" "example.org")) '
        b'NIL "<x@y>" NIL)')
    assert parsed.headers["subject"] == "café é"
    assert subject


def test_imap_string_quoting():
    assert imap_string(None) == b"NIL"
    assert imap_string(b"plain") == b'"plain"'
    assert imap_string(b'a "q" \\') == b'"a \\"q\\" \\\\"'
    assert imap_string(b"two\r\nlines") == b"{10}\r\ntwo\r\nlines"
    assert imap_string("é") == b"{2}\r\n\xc3\xa9"
    assert imap_string(b"") == b'""'


def test_dovecot_text_plain():
    p = structure(b"From: user@domain.org\nDate: Sat, 24 Mar 2017 23:00:00 +0200\nMime-Version: 1.0\n"
                  b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nbody\n\n")
    assert p.bodystructure == b'("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 8 2 NIL NIL NIL NIL)'
    assert p.body == b'("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 8 2)'


def test_dovecot_folded_boundary():
    p = structure(b'From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nMime-Version: 1.0\n'
                  b'Content-Type: multipart/mixed; boundary="foo\n bar"\n\n--foo bar\n'
                  b"Content-Type: text/x-myown; charset=us-ascii\n\nhello\n\n--foo bar--\n\n")
    assert p.bodystructure == (b'(("text" "x-myown" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL)'
                               b' "mixed" ("boundary" "foo bar") NIL NIL NIL)')
    assert p.body == b'(("text" "x-myown" ("charset" "us-ascii") NIL NIL "7bit" 7 1) "mixed")'


def test_dovecot_message_rfc822():
    p = structure(b'From: user@domain.org\nDate: Sat, 24 Mar 2017 23:00:00 +0200\nMime-Version: 1.0\n'
                  b'Content-Type: multipart/mixed; boundary="foo bar"\n\n'
                  b"--foo bar\nContent-Type: text/plain; charset=us-ascii\nContent-ID: <A.frop.example.com>\n"
                  b"Content-Description: Container message\n\nSee attached...\n\n"
                  b"--foo bar\nContent-Type: message/rfc822\nContent-ID: <B.frop.example.com>\n"
                  b"Content-Description: Forwarded\n\n"
                  b"From: user@domain.org\nDate: Sat, 24 Mar 2017 23:00:00 +0200\nMime-Version: 1.0\n"
                  b"Content-Type: text/plain; charset=us-ascii\n\nbody\n\n--foo bar--\n")
    env = (b'("Sat, 24 Mar 2017 23:00:00 +0200" NIL ((NIL NIL "user" "domain.org")) '
           b'((NIL NIL "user" "domain.org")) ((NIL NIL "user" "domain.org")) NIL NIL NIL NIL NIL)')
    assert p.bodystructure == (
        b'(("text" "plain" ("charset" "us-ascii") "<A.frop.example.com>" "Container message" "7bit" 17 1'
        b' NIL NIL NIL NIL)("message" "rfc822" NIL "<B.frop.example.com>" "Forwarded" "7bit" 133 '
        + env + b' ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL) 6'
        b' NIL NIL NIL NIL) "mixed" ("boundary" "foo bar") NIL NIL NIL)')
    assert p.body == (
        b'(("text" "plain" ("charset" "us-ascii") "<A.frop.example.com>" "Container message" "7bit" 17 1)'
        b'("message" "rfc822" NIL "<B.frop.example.com>" "Forwarded" "7bit" 133 '
        + env + b' ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1) 6) "mixed")')
    assert p.envelope == env
    # section ranges, as IMAP FETCH will use them
    two = p.parts.find("2")
    assert two.message is not None and p.parts.find("2.1") is two.message


def test_dovecot_extension_fields_and_base64():
    png = (b"iVBORw0KGgoAAAANSUhEUgAAAB8AAAAfCAYAAAAfrhY5AAAABHNCSVQICAgIfAhkiAAAAAlwSFlz\n"
           b"AAAGJwAABicBTVTYxwAAABl0RVh0U29mdHdhcmUAd3d3Lmlua3NjYXBlLm9yZ5vuPBoAAAN2SURB\n")
    p = structure(b'From: user@domain.org\nMime-Version: 1.0\nContent-Type: multipart/mixed; boundary="foo bar"\n\n'
                  b"Root MIME prologue\n\n--foo bar\n"
                  b'Content-Type: text/x-myown; charset=us-ascii; foo="quoted\\"string"\n'
                  b"Content-ID: <foo@example.com>\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
                  b"Content-Disposition: inline; foo=bar\nContent-Description: hellodescription\n"
                  b"Content-Language: en, fi, se\nContent-Location: http://example.com/test.txt\n\n"
                  b"hello\n\n--foo bar\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n"
                  b'Content-Disposition: attachment; filename="pigeon.png"\n\n' + png +
                  b"--foo bar\nContent-Type: text/plain\nContent-Transfer-Encoding: ?invalid\n\nx\n"
                  b"--foo bar--\nRoot MIME epilogue\n")
    assert p.bodystructure == (
        b'(("text" "x-myown" ("charset" "us-ascii" "foo" "quoted\\"string") "<foo@example.com>" '
        b'"hellodescription" "7bit" 7 1 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("inline" ("foo" "bar")) '
        b'("en" "fi" "se") "http://example.com/test.txt")'
        b'("image" "png" NIL NIL NIL "base64" 154 NIL ("attachment" ("filename" "pigeon.png")) NIL NIL)'
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL)'
        b' "mixed" ("boundary" "foo bar") NIL NIL NIL)')
    assert p.attachments[0].storage == "base64" and p.attachments[0].filename == "pigeon.png"


def test_dovecot_multipart_without_parts():
    p = structure(b'Content-Type: multipart/mixed; boundary="foo"\n\n')
    assert p.bodystructure == (b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'
                               b' "mixed" ("boundary" "foo") NIL NIL NIL)')
    assert p.body == b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")'


def test_no_content_type_defaults_and_part_ranges():
    data = crlf(b"Subject: x\n\nline1\nline2\n")
    p = structure(data)
    assert p.bodystructure == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 2 NIL NIL NIL NIL)'
    assert p.envelope == b'(NIL "x" NIL NIL NIL NIL NIL NIL NIL NIL)'
    root = p.parts
    assert data[root.header_offset:root.header_offset + root.header_length] == b"Subject: x\r\n\r\n"
    assert p.parts.find("1") is root and p.parts.find("2") is None
    assert p.text_plain == "line1\r\nline2\r\n"
