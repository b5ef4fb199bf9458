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


def _mp(parts, boundary=b"B", head=HEAD, close=True):
    """A multipart/mixed with boundary B, each part as given (header block included)."""
    return multipart(parts, boundary=boundary, head=head, close=close)


PNG = b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(b"\x89PNG\r\n")


def _torture():
    """Round two: obsolete syntax, lines without a colon, boundaries missing, doubled and
    prefixing, 8-bit and encoded headers and parameters, nested messages, empty parts,
    charsets and transfer encodings (each compared with Dovecot)."""
    inner = b"From: in@example.org\r\nSubject: inner\r\n\r\ninner body\r\n"
    inner_mp = multipart([TEXT, PNG], boundary=b"in", head=b"Subject: inner mp\r\n")
    return [
        # RFC 5322 §4.5 obsolete syntax
        ("obs_space_before_colon", b"From : a@example.org\r\nTo    : b@example.org, c@example.org\r\n"
         b"Subject\t: obsolete\r\nDate  : Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\nbody\r\n"),
        ("obs_space_before_colon_mime", b"Subject: x\r\nMIME-Version : 1.0\r\n"
         b"Content-Type  : multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type : text/html\r\n\r\n"
         b"<b>x</b>\r\n--B--\r\n"),
        ("obs_dates", b"Date: 1 Jan 99 00:00 EST\r\nSubject: obs date\r\n\r\nx\r\n"),
        ("obs_route_and_empty_members", b"From: John Doe <jdoe@machine.example>(comment)\r\n"
         b"To: Mary Smith <@node.test:mary@example.net>, , jdoe@test   . example\r\n"
         b"Cc: <@a.test,@b.test:user@host.test>\r\nSubject: obs route\r\n\r\nx\r\n"),
        ("obs_phrase_dots", b"From: Joe Q. Public <john.q.public@example.com>\r\n"
         b"To: Mr. J. Smith <s@example.com>, A.B.C. <abc@example.com>\r\n\r\nx\r\n"),
        ("obs_comments", b"From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\r\n"
         b"To:A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n"
         b"         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)\r\n"
         b"Cc:(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;\r\n"
         b"Date: Thu,\r\n      13\r\n        Feb\r\n          1969\r\n      23:32\r\n"
         b"               -0330 (Newfoundland Time)\r\nMessage-ID:              <testabcd.1234@silly.test>\r\n"
         b"\r\nTesting.\r\n"),
        ("obs_no_space_after_colon", b"Subject:nospace\r\nFrom:a@example.org\r\nTo:b@example.org\r\n"
         b"Content-Type:text/plain;charset=iso-8859-1\r\n\r\nx\r\n"),
        ("obs_blank_continuation", b"Subject: a\r\n   \r\n b\r\nFrom: f@example.org\r\n\r\nbody\r\n"),
        # lines without a colon: the header block still runs to the empty line
        ("no_colon_middle", b"From: a@example.org\r\nthis is not a header\r\nSubject: after\r\n"
         b"Content-Type: text/html\r\n\r\n<p>x</p>\r\n"),
        ("no_colon_first_line", b"garbage first line\r\nContent-Type: image/gif\r\n\r\nGIF89a\r\n"),
        ("no_colon_in_part", _mp([b"Content-Type: text/plain\r\nnot a field\r\nContent-ID: <p1@x>\r\n\r\nx",
                                  b"just text, no header, no colon\r\nsecond line\r\n\r\nbody"])),
        ("mbox_from_line", b"From sender@example.org Mon Jan  1 00:00:00 2024\r\nFrom: a@example.org\r\n"
         b"Subject: mbox\r\n\r\nbody\r\n"),
        ("no_colon_long_line", b"Subject: long\r\n" + b"x" * 3000 + b"\r\nContent-Type: text/html\r\n\r\nb\r\n"),
        ("continuation_first", b" leading blank\r\nSubject: x\r\n\r\nbody\r\n"),
        ("colon_first", b": no name\r\nSubject: x\r\n\r\nbody\r\n"),
        ("no_blank_line_at_all", b"Subject: x\r\nFrom: a@example.org\r\nno colon\r\nlast"),
        # boundaries missing, doubled, prefixing
        ("doubled_delimiter", HEAD + b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n--B\r\n"
         b"Content-Type: text/html\r\n\r\nx\r\n--B\r\n\r\n--B\r\n--B--\r\n"),
        ("doubled_close", _mp([TEXT]) + b"--B--\r\nepilogue\r\n"),
        ("missing_inner_close", _mp([b"Content-Type: multipart/alternative; boundary=I\r\n\r\n--I\r\n"
                                     b"\r\nplain\r\n--I\r\nContent-Type: text/html\r\n\r\n<b>", PNG])),
        ("close_only", HEAD + b"Content-Type: multipart/mixed; boundary=B\r\n\r\npreamble\r\n--B--\r\n"),
        ("preamble_only", HEAD + b"Content-Type: multipart/mixed; boundary=B\r\n\r\njust a preamble\r\n"),
        ("boundary_prefix_of_line", HEAD + b"Content-Type: multipart/mixed; boundary=abc\r\n\r\n"
         b"--abc\r\n\r\none\r\n--abcdef\r\nContent-Type: text/html\r\n\r\ntwo\r\n--abc--\r\n"),
        ("close_with_trailing_text", _mp([TEXT], close=False) + b"--B--garbage after\r\nepilogue\r\n"),
        ("inner_same_boundary", _mp([b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\n"
                                     b"inner\r\n--B--", b"\r\nouter two"])),
        ("inner_prefixes_outer", HEAD + b"Content-Type: multipart/mixed; boundary=abc\r\n\r\n--abc\r\n"
         b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n\r\ninner\r\n--abc\r\n\r\n"
         b"outer\r\n--ab--\r\n--abc--\r\n"),
        ("boundary_case", HEAD + b"Content-Type: multipart/mixed; boundary=Bound\r\n\r\n--Bound\r\n\r\n"
         b"a\r\n--bound\r\n\r\nnot a delimiter\r\n--BOUND--\r\n--Bound--\r\n"),
        ("boundary_long", _mp([TEXT, PNG], boundary=b"=_" + b"x" * 120)),
        ("boundary_leading_blank", HEAD + b'Content-Type: multipart/mixed; boundary="  lead"\r\n\r\n'
         b"--  lead\r\n\r\nx\r\n--  lead--\r\n"),
        ("delimiter_mid_line", HEAD + b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\n"
         b"text --B not at start\r\n --B indented\r\n--B--\r\n"),
        ("epilogue_delimiters", _mp([TEXT]) + b"--B\r\n\r\nafter close\r\n--B--\r\n"),
        ("empty_parts", HEAD + b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\n--B\r\n\r\n"
         b"\r\n--B\r\n--B--\r\n"),
        ("long_delimiter_line", HEAD + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b"
         + b"x" * 5000 + b"\r\nContent-Type: text/html\r\n\r\ntwo\r\n--b--\r\n"),
        ("abc_dash_boundaries", HEAD + b'Content-Type: multipart/mixed; boundary="abc--"\r\n\r\n'
         b'--abc-- \t\r\nContent-Type: multipart/mixed; boundary="abc"\r\n\r\n'
         b"--abc\r\n\r\ninner\r\n--abc-- \r\n--abc--\r\n\r\nsecond\r\n--abc----\r\n"),
        ("delimiter_in_header", _mp([b"Content-Type: text/plain\r\nContent-ID: <a@b>", PNG])),
        # 8-bit headers
        ("subject_latin1", b"Subject: caf\xe9 cr\xe8me\r\nFrom: Andr\xe9 <a@example.org>\r\n\r\nx\r\n"),
        ("names_utf8_raw", b"From: Jos\xc3\xa9 Mar\xc3\xada <j@example.org>\r\n"
         b"To: \"\xe5\xb1\xb1\xe7\x94\xb0\" <y@example.jp>\r\nSubject: \xe2\x82\xac\r\n\r\nx\r\n"),
        ("filename_8bit_raw", _mp([b"Content-Type: application/pdf; name=\"r\xc3\xa9sum\xc3\xa9.pdf\"\r\n"
                                   b"Content-Disposition: attachment; filename=\"r\xc3\xa9sum\xc3\xa9.pdf\"\r\n"
                                   b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(b"%PDF")])),
        ("header_name_8bit", b"X-\xc3\xa9t\xc3\xa9: v\r\nSubject: s\r\n\r\nx\r\n"),
        ("address_8bit_local", b"From: us\xc3\xa9r@ex\xc3\xa4mple.org\r\nTo: <\xe2\x82\xac@example.org>\r\n\r\nx\r\n"),
        # RFC 2047 encoded words and RFC 2231 parameters, in every place
        ("ew_subjects", b"Subject: =?utf-8?B?w6l0w6k=?= =?UTF-8?Q?caf=C3=A9_au_lait?=\r\n"
         b"  =?iso-8859-1?q?cr=E8me?= plain =?bogus?q?x?= =?utf-8?q?unterminated\r\n\r\nx\r\n"),
        ("ew_in_names", b"From: =?iso-8859-1?q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\r\n"
         b"To: \"=?utf-8?q?quoted_word?=\" <q@example.org>, =?utf-8?b?5bGx55Sw?= <y@example.jp>\r\n"
         b"Cc: =?utf-8?q?Group?=: m@example.org;\r\n\r\nx\r\n"),
        ("ew_filename_quoted", _mp([b'Content-Type: application/pdf; name="=?UTF-8?B?0YTQsNC50LsucGRm?="\r\n'
                                    b'Content-Disposition: attachment; filename="=?UTF-8?Q?f=C3=A9.pdf?="\r\n'
                                    b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(b"%PDF")])),
        ("ew_name_unquoted", _mp([b"Content-Type: image/png; name==?utf-8?q?x.png?=\r\n"
                                  b"Content-Disposition: attachment; filename==?utf-8?b?eC5wbmc=?=\r\n\r\nx"])),
        ("rfc2231_filename_encoded", _mp([b"Content-Type: application/octet-stream;\r\n"
                                          b" name*0*=utf-8'fr'%C3%A9; name*1*=t%C3%A9.bin\r\n"
                                          b"Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC.bin\r\n\r\nx"])),
        ("rfc2231_boundary", HEAD + b"Content-Type: multipart/mixed; boundary*=''abc\r\n\r\n--abc\r\n\r\nx\r\n--abc--\r\n"),
        ("rfc2231_boundary_continued", HEAD + b'Content-Type: multipart/mixed; boundary*0="ab"; boundary*1="cd"\r\n'
         b"\r\n--abcd\r\n\r\nx\r\n--abcd--\r\n"),
        ("rfc2231_charset", b"Content-Type: text/plain; charset*=us-ascii'en'utf-8\r\n\r\nx\r\n"),
        ("rfc2231_language_title", _mp([b"Content-Type: text/plain; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A\r\n"
                                        b"\r\nx"])),
        ("ew_description_and_params", _mp([b"Content-Type: text/plain; charset=\"=?utf-8?q?x?=\"\r\n"
                                           b"Content-Description: =?utf-8?q?d=C3=A9scription?=\r\n\r\nx"])),
        ("ew_boundary_param", HEAD + b'Content-Type: multipart/mixed; boundary="=?utf-8?q?b?="\r\n\r\n'
         b"--=?utf-8?q?b?=\r\n\r\nx\r\n--=?utf-8?q?b?=--\r\n"),
        # message/rfc822 and message/global nesting
        ("rfc822_top", b"Subject: outer\r\nContent-Type: message/rfc822\r\n\r\n" + inner),
        ("rfc822_twice", b"Subject: outer\r\nContent-Type: message/rfc822\r\n\r\n"
         b"Subject: middle\r\nContent-Type: message/rfc822\r\n\r\n" + inner_mp),
        ("rfc822_base64", _mp([b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                               + b64(inner)])),
        ("global_multipart", _mp([b"Content-Type: message/global\r\n\r\n" + inner_mp])),
        ("rfc822_empty", _mp([b"Content-Type: message/rfc822\r\n\r\n", TEXT])),
        ("rfc822_no_header", _mp([b"Content-Type: message/rfc822\r\n\r\n\r\nbody of a headerless message"])),
        ("rfc822_inner_unclosed", _mp([b"Content-Type: message/rfc822\r\n\r\n"
                                       + multipart([TEXT, PNG], boundary=b"in", close=False), PNG])),
        ("digest_defaults", HEAD + b"Content-Type: multipart/digest; boundary=D\r\n\r\n--D\r\n\r\n" + inner
         + b"\r\n--D\r\nContent-Type: text/plain\r\n\r\nnot a message\r\n--D\r\n\r\n" + inner_mp + b"\r\n--D--\r\n"),
        ("rfc822_headers_only", _mp([b"Content-Type: message/rfc822\r\n\r\nSubject: only headers", TEXT])),
        # empty parts and parts without a header
        ("part_no_header", _mp([b"\r\ntext of a part without header", b"\r\n", b""])),
        ("part_header_no_blank", _mp([b"Content-Type: text/html", b"Content-Type: image/png\r\n"])),
        ("all_parts_empty", HEAD + b"Content-Type: multipart/alternative; boundary=E\r\n\r\n--E\r\n--E\r\n--E--"),
        ("part_text_looks_like_header", _mp([b"Dear John: hello\r\nhow are you\r\n\r\nbody"])),
        # charsets
        ("charset_default", _mp([b"Content-Type: text/plain\r\n\r\nx", b"Content-Type: text/html\r\n\r\nx",
                                 b"Content-Type: text/x-custom\r\n\r\nx", b"\r\nno content-type"])),
        ("charset_unknown", _mp([b"Content-Type: text/plain; charset=x-unknown-42\r\n\r\nx",
                                 b'Content-Type: text/plain; charset=""\r\n\r\nx',
                                 b"Content-Type: text/plain; CHARSET=UTF-8\r\n\r\nx",
                                 b"Content-Type: application/json; charset=utf-8\r\n\r\n{}"])),
        ("charset_no_mime_version", b"Subject: x\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\nx\r\n"),
        ("text_params_many", b"Content-Type: text/plain; format=flowed; delsp=yes; charset=utf-8; x=1\r\n\r\nx\r\n"),
        # transfer encodings
        ("cte_unknown", _mp([b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
                             b"begin 644 a.txt\r\n#86)C\r\n`\r\nend",
                             b"Content-Type: text/plain\r\nContent-Transfer-Encoding: 8-bit\r\n\r\nx",
                             b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-gzip\r\n\r\nx"])),
        ("cte_case_blanks", _mp([b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding:  Base64 \r\n\r\n"
                                 + b64(b"data"), b"Content-Type: text/plain\r\nContent-Transfer-Encoding: QUOTED-PRINTABLE"
                                 b"\r\n\r\ncaf=C3=A9"])),
        ("cte_on_multipart", HEAD + b"Content-Type: multipart/mixed; boundary=B\r\nContent-Transfer-Encoding: base64\r\n"
         b"\r\n--B\r\n\r\nx\r\n--B--\r\n"),
        ("cte_empty_and_comment", _mp([b"Content-Type: text/plain\r\nContent-Transfer-Encoding:\r\n\r\nx",
                                       b"Content-Type: text/plain\r\nContent-Transfer-Encoding: 7bit (comment)\r\n\r\nx",
                                       b"Content-Type: text/plain\r\nContent-Transfer-Encoding: \"base64\"\r\n\r\neA=="])),
        ("content_type_multipart_no_subtype", HEAD + b"Content-Type: multipart; boundary=B\r\n\r\n--B\r\n\r\nx\r\n--B--\r\n"),
        ("content_type_garbage", _mp([b"Content-Type: /\r\n\r\nx", b"Content-Type: text/\r\n\r\nx",
                                      b"Content-Type: \xc3\xa9/\xc3\xa9\r\n\r\nx", b"Content-Type: a/b/c\r\n\r\nx"])),
    ]


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
    out += _torture()
    return [(name, crlf(data)) for name, data in out]
