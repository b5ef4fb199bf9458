"""Base64 segments kept as received (``MessageParser(wire_limit=...)``, ParsedMessage.wire_forms).

Delivery writes them to the host's disk cache so that FETCH never encodes
them; they must be exactly the segment's bytes in the message, which is
also what re-encoding the stored object gives.
"""

import base64
import os
import random

from geomail.mime.rebuild import render_segment
from geomail.mime.segments import BASE64

from tests.mime.mime_helpers import check_roundtrip, parse, random_chunks


def message(*bodies):
    """A multipart message with one base64 attachment per encoded body (bytes as sent)."""
    out = [b"From: a@example.net\r\nSubject: wire\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
           b"Content-Type: text/plain\r\n\r\nhello\r\n"]
    for n, body in enumerate(bodies):
        out.append(b"--b\r\nContent-Type: application/octet-stream\r\n"
                   b"Content-Transfer-Encoding: base64\r\n"
                   b"Content-Disposition: attachment; filename=\"f%d.bin\"\r\n\r\n" % n + body
                   + b"\r\n")                           # the CRLF of the next delimiter
    out.append(b"--b--\r\n")
    return b"".join(out)


def encoded(data, line=76):
    text = base64.b64encode(data)
    return b"\r\n".join(text[i:i + line] for i in range(0, len(text), line)) + b"\r\n"


def offsets(parsed):
    """{segment id: its offset in the message}."""
    pos, out = 0, {}
    for seg in parsed.segments:
        out[id(seg)] = pos
        pos += seg.length
    return out


def check_wire_forms(data, parsed, sink):
    starts = offsets(parsed)
    for index, (seg, wire) in parsed.wire_forms.items():
        assert seg.kind == BASE64 and seg.index == index
        assert wire == data[starts[id(seg)]:starts[id(seg)] + seg.length]
        assert wire == render_segment(seg, sink.read)


def test_base64_attachments_are_kept_as_received_in_any_chunking():
    rng = random.Random(7)
    bodies = [encoded(os.urandom(5000)),                       # last line short, CRLF after
              encoded(os.urandom(57 * 40)),                    # whole lines only
              encoded(os.urandom(3000), line=64).rstrip(b"\r\n"),   # no CRLF after the last
              encoded(os.urandom(1))]
    data = message(*bodies)
    for chunks in (None, random_chunks(rng, 1, 50), random_chunks(rng, 100, 4000)):
        parsed, sink = parse(data, chunks, wire_limit=1 << 20)
        check_roundtrip(data, parsed, sink)
        assert sorted(parsed.wire_forms) == [0, 1, 2, 3]
        assert [seg.eol for seg, _ in parsed.wire_forms.values()] == [True, True, False, True]
        check_wire_forms(data, parsed, sink)


def test_a_deviating_attachment_keeps_only_its_proven_prefix():
    body = encoded(os.urandom(4000))
    lines = body.split(b"\r\n")
    lines[20] = lines[20][:-4]                                  # one short line mid-way
    data = message(b"\r\n".join(lines))
    parsed, sink = parse(data, wire_limit=1 << 20)
    check_roundtrip(data, parsed, sink)
    (seg, wire), = parsed.wire_forms.values()
    assert seg.dend == 20 * 57 and wire == b"\r\n".join(lines[:20]) + b"\r\n"
    check_wire_forms(data, parsed, sink)


def test_nothing_is_kept_past_the_limit_or_without_one():
    """The limit is for the whole message: a message of many attachments holds no more."""
    small, large = encoded(os.urandom(1000)), encoded(os.urandom(30_000))
    data = message(small, large, small, small)
    parsed, sink = parse(data, wire_limit=4000)
    assert sorted(parsed.wire_forms) == [0, 2]          # 1 is too large, 3 past what is left
    check_wire_forms(data, parsed, sink)
    parsed, _ = parse(data)
    assert parsed.wire_forms == {}
