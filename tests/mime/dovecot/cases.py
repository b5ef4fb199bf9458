"""Deterministic hard-case messages compared with Dovecot (besides CPython's corpus).

Mirrors tests/mime/test_mime_cases.py and test_mime_imap.py with fixed
pseudo-random data (the reference answers must not change between runs),
plus a few structures those files do not cover.  Every message is CRLF
normalised, as the SMTP layer stores them (geomail/smtp/dotstream.py).
"""

import base64
import quopri
import random
import re

HEAD = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: test\r\nMIME-Version: 1.0\r\n"
TEXT = b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello \xc3\xa9t\xc3\xa9\r\n"


def crlf(data):
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def _bytes(seed, n):
    return random.Random(seed).randbytes(n)


def b64(data, line=76):
    enc = base64.b64encode(data)
    return b"".join(enc[i:i + line] + b"\r\n" for i in range(0, len(enc), line))


def att(name, data, ctype=b"application/octet-stream", line=76):
    return (b"Content-Type: " + ctype + b'; name="' + name + b'"\r\n'
            b"Content-Transfer-Encoding: base64\r\n"
            b'Content-Disposition: attachment; filename="' + name + b'"\r\n\r\n' + b64(data, line))


def multipart(parts, boundary=b"BOUNDARY", subtype=b"mixed", close=True, head=HEAD):
    out = head + b"Content-Type: multipart/" + subtype + b'; boundary="' + boundary + b'"\r\n\r\n'
    out += b"This is a multi-part message in MIME format.\r\n"
    for p in parts:
        out += b"--" + boundary + b"\r\n" + p + b"\r\n"
    if close:
        out += b"--" + boundary + b"--\r\n"
    return out


def _deep():
    inner = att(b"deep.bin", _bytes(1, 1000))
    for level in range(20):
        inner = (b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % level
                 + b"--b%d\r\n" % level + TEXT + b"\r\n--b%d\r\n" % level + inner
                 + b"\r\n--b%d--\r\n" % level)
    return HEAD + inner


def _rfc822_nested():
    nested = multipart([TEXT, att(b"in.pdf", b"%PDF" * 100, b"application/pdf")],
                       boundary=b"inner", head=b"From: x@y\r\nSubject: inner\r\n")
    return multipart([TEXT, b"Content-Type: message/rfc822\r\n\r\n" + nested])


def _twenty():
    names = [b"report.pdf"] * 5 + [b"../../etc/passwd", b"..", b"", b"a\\b/c.txt",
                                   b"\x01ctl\x7f.txt", b".hidden"] + [b"x%d.bin" % i for i in range(9)]
    return multipart([att(n, _bytes(100 + i, 100 + i)) for i, n in enumerate(names)])


def _rfc2231():
    p1 = (b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
          b"Content-Disposition: attachment;\r\n filename*0*=utf-8''%E2%82%AC%20rate;\r\n"
          b" filename*1*=%20%C3%A9t%C3%A9;\r\n filename*2=.pdf\r\n\r\n" + b64(b"%PDF-1.4"))
    p2 = (b'Content-Type: image/jpeg; name="=?utf-8?b?w6l0w6kuanBn?="\r\n'
          b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(b"\xff\xd8\xff"))
    p3 = (b"Content-Type: text/plain; charset*=iso-8859-1'fr'; title*=us-ascii'en'This%20is%20%2A\r\n"
          b"Content-Disposition: inline; filename*0=\"a b\"; filename*1=\" c\"; FileName*2*=%41\r\n\r\nx\r\n")
    p4 = (b"Content-Type: application/octet-stream; name*1=second; name*0=first; name*3=gap\r\n"
          b"Content-Language: de-CH\r\n\r\nx\r\n")
    return multipart([p1, p2, p3, p4])


BASE64_BODIES = [
    b64(b"x" * 3000, 74),
    b64(b"x" * 3000)[:500] + b"garbage!\r\n" + b64(b"y" * 300),
    b64(b"x" * 3000)[:-3] + b"=\r\n",
    b64(b"abcd") + b"\r\n\r\n",
    b64(b"x" * 300) + b"\r\n\r\n",
    b64(b"x" * 3000)[:-2] + b" \r\n",
    b"YQ==YWJj\r\n",
    b"Some removed base64 encoded chars.",
    b"QUJD\r\nRA\r\n",
    b"QUJD\r\nREU=\r\nQUJD\r\n",
    b"QUJD\r\n",
    b"QUJD",
    b"",
]


def _fuzz(seed):
    rng = random.Random(seed)
    pieces = [b"--B\r\n", b"--B--\r\n", b"--C\r\n", b"\r\n", b"Content-Type: multipart/mixed; boundary=C\r\n",
              b"Content-Transfer-Encoding: base64\r\n", b"Content-Type: image/gif\r\n", b"QUJD\r\n",
              b"AAAA", b"=", b"-", b"Content-Type: message/rfc822\r\n", b"\xff",
              b"Content-Transfer-Encoding: quoted-printable\r\n", b"=4", b"x: y\r\n", b" folded\r\n"]
    return (HEAD + b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
            + b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 60))))


def cases():
    """[(name, message bytes)]; names are file-name safe."""
    out = [
        ("deep_nesting", _deep()),
        ("rfc822_nested", _rfc822_nested()),
        ("missing_final_boundary", multipart([TEXT, att(b"a.bin", b"x" * 500)], close=False).rstrip(b"\r\n")),
        ("bare_consecutive_boundaries", HEAD + (
            b"Content-Type: multipart/mixed; boundary=bare\r\n\r\n--bare\r\n--bare\r\n"
            b"--bare\r\nContent-Type: image/png\r\n\r\nPNG\r\n--bare\r\n--bare--")),
        ("only_headers", HEAD),
        ("only_headers_blank", HEAD + b"\r\n"),
        ("empty", b""),
        ("blank_line", b"\r\n"),
        ("header_no_eol", b"Subject: x"),
        ("no_colon", b"no colon here\r\n\r\nbody"),
        ("no_content_type", b"Subject: hi\r\n\r\nplain body\r\n"),
        ("multipart_no_boundary", HEAD + b"Content-Type: multipart/mixed\r\n\r\n--x\r\nfoo\r\n--x--\r\n"),
        ("multipart_empty_boundary", HEAD + b'Content-Type: multipart/mixed; boundary=""\r\n\r\nbody\r\n'),
        ("header_8bit_long_no_colon", b"Subject: caf\xc3\xa9 \xff\r\nX-Long: " + b"y" * 300000
         + b"\r\nbroken line\r\nContent-Type: text/plain\r\n\r\nbody\r\n"),
        ("duplicate_headers", b"Subject: one\r\nSubject: two\r\nContent-Type: image/gif\r\n"
         b"Content-Type: text/plain\r\n\r\nGIF89a"),
        ("part_without_body", multipart([b"Content-Type: image/png", b"Content-Type: text/plain\r\n", b""])),
        ("twenty_attachments", _twenty()),
        ("rfc2231_rfc2047_params", _rfc2231()),
        ("quoted_printable", multipart([b'Content-Type: application/x-thing; name="q.bin"\r\n'
                                        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                                        + quopri.encodestring(bytes(range(256)) * 3 + b"sp \r\nend")])),
        ("identity_binary", multipart([b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: binary"
                                       b"\r\n\r\n%PDF\x00\xff\r\n"])),
    ]
    for i, body in enumerate(BASE64_BODIES):
        part = (b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body)
        out.append(("base64_%02d_multipart" % i, multipart([part])))
        out.append(("base64_%02d_single" % i, HEAD + part))
    out += [
        ("rfc3501_example", b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
         b"From: Terry Gray <gray@cac.washington.edu>\r\n"
         b"Subject: IMAP4rev1 WG mtg summary and minutes\r\nTo: imap@cac.washington.edu\r\n"
         b"cc: minutes@CNRI.Reston.VA.US,\r\n    John Klensin <KLENSIN@MIT.EDU>\r\n"
         b"Message-Id: <B27397-0100000@cac.washington.edu>\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n" + (b"x" * 56 + b"\r\n") * 92),
        ("groups_sender_8bit", b"From: \"Fred \\\"F\\\" Foobar\" <foobar@blurdybloop.example>\r\n"
         b"Sender: \r\nReply-To: r@example.org (Reply Person)\r\n"
         b"To: undisclosed-recipients:;\r\n"
         b"Cc: friends: a@example.org, B <b@example.org>;, c@example.org\r\n"
         b"Subject: =?utf-8?q?caf=C3=A9?= \xc3\xa9\r\nIn-Reply-To: <x@y>\r\n\r\nbody\r\n"),
        ("addresses_odd", b"From: <@route1,@route2:user@host> , \"quoted@at\" <q@h>, plain\r\n"
         b"To: Name With . Dot <n@h>, (comment only) c@h, a.b.@h, @nohost, user@, <>\r\n"
         b"Cc: \"\" <e@h>, g1: ;, g2: x@y (X), \"z\" <z@y>; trailing@t\r\n"
         b"Bcc: =?utf-8?q?=C3=A9?= <enc@h>, caf\xc3\xa9 <raw@h>\r\n"
         b"Sender: s@h, second@h\r\nReply-To:\r\nDate: \r\n  folded date\r\n"
         b"Message-ID:\r\n <folded@id>\r\nIn-Reply-To: <a@b> <c@d>\r\n\r\nbody\r\n"),
        ("dovecot_folded_boundary", crlf(
            b'From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\nMime-Version: 1.0\n'
            b'Content-Type: multipart/mixed; boundary="foo\n bar"\n\n--foo bar\n'
            b"Content-Type: text/x-myown; charset=us-ascii\n\nhello\n\n--foo bar--\n\n")),
        ("dovecot_extension_fields", crlf(
            b'From: user@domain.org\nMime-Version: 1.0\nContent-Type: multipart/mixed; boundary="foo bar"\n\n'
            b"Root MIME prologue\n\n--foo bar\n"
            b'Content-Type: text/x-myown; charset=us-ascii; foo="quoted\\"string"\n'
            b"Content-ID: <foo@example.com>\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
            b"Content-Disposition: inline; foo=bar\nContent-Description: hellodescription\n"
            b"Content-Language: en, fi, se\nContent-Location: http://example.com/test.txt\n\n"
            b"hello\n\n--foo bar\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n"
            b'Content-Disposition: attachment; filename="pigeon.png"\n\n'
            b"iVBORw0KGgoAAAANSUhEUgAAAB8AAAAfCAYAAAAfrhY5AAAABHNCSVQICAgIfAhkiAAAAAlwSFlz\n"
            b"--foo bar\nContent-Type: text/plain\nContent-Transfer-Encoding: ?invalid\n\nx\n"
            b"--foo bar--\nRoot MIME epilogue\n")),
        ("multipart_without_parts", b'Content-Type: multipart/mixed; boundary="foo"\r\n\r\n'),
        ("content_type_odd", multipart([
            b"Content-Type: text\r\n\r\nno subtype\r\n",
            b"Content-Type: APPLICATION/X-Foo; A=1; b=\"two words\"; c=\"\"\r\n\r\nx\r\n",
            b"Content-Type: ;charset=utf-8\r\n\r\nno type\r\n",
            b"Content-Type: image/png (comment) ; (c) name = \"a.png\" (x)\r\n\r\nx\r\n",
            b"Content-Type: text/html; charset=\"utf-8\r\n\r\nunterminated quote\r\n",
            b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7BIT\r\n\r\n"
            b"Subject: inner\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n"
            b"--alt\r\nContent-Type: text/plain\r\n\r\nplain\r\n--alt\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--alt--\r\n",
            b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n",
            b"Content-Type: multipart/digest; boundary=dig\r\n\r\n--dig\r\n\r\nSubject: digested\r\n\r\nbody\r\n--dig--\r\n",
            b"Content-Disposition: ATTACHMENT; FILENAME=x.txt\r\nContent-Description: =?utf-8?q?d=C3=A9sc?=\r\n"
            b"Content-Location:\r\n http://x/\r\n y\r\nContent-Language: (c) en , fr-CA\r\n\r\nx\r\n",
        ], boundary=b"odd")),
        ("boundary_prefix_nesting", HEAD + b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n"
         b"--ab\r\nContent-Type: multipart/mixed; boundary=abc\r\n\r\n--abc\r\n\r\ninner\r\n--ab\r\n\r\nouter\r\n--ab--\r\n"),
        ("boundary_whitespace", HEAD + b'Content-Type: multipart/mixed; boundary="w s"\r\n\r\n'
         b"--w s  \r\n\r\ntrailing blanks\r\n--w s\t\r\n\r\ntab\r\n--w s--  \r\nepilogue\r\n"),
        ("field_edges", HEAD.replace(b"Subject: test", b"Subject:   \r\n\tfolded\tby tab\r\n \tx")
         + b"Message-ID: <first@id>\r\nMessage-ID: <second@id>\r\nReply-To: <>\r\n"
         + b"Content-Type: multipart/mixed; boundary=e\r\n\r\n"
         b"--e\r\nContent-Disposition: inline\r\nContent-Disposition: attachment; a=1\r\n"
         b"Content-Disposition: x; b=2\r\nContent-Transfer-Encoding: base64 junk\r\n"
         b"Content-Type: text/plain; x*2=two; y*=a'b'c; z*0=\"q%\"; z*1*=%41\r\n\r\nx\r\n"
         b"--e\r\nContent-Type: message/global\r\n\r\nSubject: global\r\n\r\nbody\r\n"
         b"--e\r\nContent-Type: text/plain; charset=\"a\\\"b\"; (c) n (d) = (e) v\r\nContent-ID:\t<tab@id>\r\n"
         b"Content-Language: en.x, fr\r\n\r\nx\r\n--e--\r\n"),
        ("display_names", b"From: \"  a\tb   c \" <x@y>, d\t e <f@g>, \"\" <h@i>\r\n"
         b"To: (  spaced   comment ) j@k, group \t name: l@m;\r\nSubject: \r\n\r\nx\r\n"),
    ]
    for seed in range(12):
        out.append(("fuzz_%02d" % seed, _fuzz(seed)))
    return [(name, crlf(data)) for name, data in out]
