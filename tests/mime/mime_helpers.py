"""Shared helpers for tests/mime: an in-memory attachment sink and a parse/rebuild round trip."""

import binascii
import email
import email.errors
import email.policy
import json
import os
import random
import re

from geomail.mime import MessageParser, Part, rebuild, segments_from_json
from geomail.mime import imap


class MemoryWriter:
    def __init__(self, sink, info):
        self.sink, self.info, self.buf = sink, info, bytearray()
        self.closed = self.aborted = False

    def write(self, data):
        assert not self.closed
        self.buf += data

    def close(self):
        self.closed = True
        self.sink.objects[self.info.index] = bytes(self.buf)

    def abort(self):
        self.aborted = True


class MemorySink:
    """Keeps decoded attachments in a dict by index (tests only)."""

    def __init__(self):
        self.objects = {}
        self.infos = []
        self.writers = []

    def open(self, info):
        self.infos.append(info)
        w = MemoryWriter(self, info)
        self.writers.append(w)
        return w

    def read(self, index, start, end):
        data = self.objects[index]
        for i in range(start, end, 1000):
            yield data[i:min(end, i + 1000)]


def crlf(data):
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def parse(data, chunks=None, **kw):
    """Parse data fed in the given chunk sizes (an iterable of ints) or whole."""
    sink = MemorySink()
    p = MessageParser(sink, **kw)
    if chunks is None:
        p.feed(data)
    else:
        i = 0
        for n in chunks:
            if i >= len(data):
                break
            p.feed(data[i:i + n])
            i += n
        if i < len(data):
            p.feed(data[i:])
    return p.close(), sink


def random_chunks(rng, lo=1, hi=300):
    while True:
        yield rng.randint(lo, hi)


def rebuilt(parsed, sink, start=0, end=None):
    return b"".join(rebuild(parsed, parsed.raw, sink.read, start, end))


def check_roundtrip(data, parsed, sink, rng=None, ranges=30):
    """Every invariant that does not need an oracle."""
    assert parsed.size == len(data)
    assert sum(s.length for s in parsed.segments) == len(data)
    assert rebuilt(parsed, sink) == data
    # JSON round trip of segments and part tree, as the store will do
    segs = segments_from_json(json.loads(json.dumps(parsed.segments_json())))
    assert b"".join(rebuild(segs, parsed.raw, sink.read)) == data
    tree = Part.from_json(json.loads(json.dumps(parsed.parts.to_json())))
    assert imap.body(tree, True) == parsed.bodystructure
    assert imap.body(tree, False) == parsed.body
    rng = rng or random.Random(0)
    for _ in range(ranges):
        a = rng.randint(0, len(data))
        b = rng.randint(a, min(len(data), a + rng.choice((1, 10, 100, 5000, len(data)))))
        assert rebuilt(parsed, sink, a, b) == data[a:b], (a, b)
    # byte ranges of every part are inside the message and consistent
    for part in parsed.parts.walk():
        assert part.header_offset + part.header_length == part.body_offset
        assert part.body_offset + part.body_length <= len(data)
        assert data[part.body_offset:part.body_offset + part.body_length].count(b"\n") == part.lines


def python_part(msg, number):
    """The email.message.Message whose body is IMAP BODY[number]."""
    node, entity = msg, True
    for step in number.split("."):
        k = int(step)
        if not entity and node.get_content_maintype() == "message" and node.is_multipart():
            node, entity = node.get_payload(0), True
        if node.get_content_maintype() == "multipart" and node.is_multipart():
            node, entity = node.get_payload(k - 1), False
        elif entity and k == 1:
            entity = False
        else:
            raise KeyError(number)
    return node


def expected_payload(msg, number):
    """What an attachment at IMAP part `number` must decode to (None: a container).

    Python's email package is the reference, with one documented divergence:
    with a base64 character count of 4n+1, email returns the undecoded text
    (bpo-27397); a stream cannot take back what it wrote, so we decode the 4n
    characters and drop one.
    """
    pypart = python_part(msg, number)
    expected = pypart.get_payload(decode=True)
    if any(isinstance(d, email.errors.InvalidBase64LengthDefect) for d in pypart.defects):
        chars = re.sub(rb"[^A-Za-z0-9+/]", b"", pypart.get_payload().encode("ascii", "surrogateescape"))
        expected = binascii.a2b_base64(chars[:len(chars) // 4 * 4])
    return expected


def check_attachments(data, parsed, sink):
    """Every sink object equals what Python's email package decodes for that part.

    email.feedparser is the oracle for decoding; for the part tree Dovecot is
    (tests/mime/test_dovecot_reference.py).  Where the two trees differ, and
    Dovecot follows RFC 2046 and RFC 5322 where email does not (a delimiter need
    only begin its line and the innermost boundary wins, RFC 2046 §5.1.1; a
    delimiter repeated at once delimits an empty part; a header block runs to
    the empty line, RFC 5322 §2.1 and the obsolete syntax of §4.5), email cuts a
    different body for a part number: the part's body as our tree cuts it is
    then decoded by email on its own, with the part's type and encoding.
    """
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    for info in parsed.attachments:
        got = sink.objects[info.index]
        assert info.size == len(got)
        ours = parsed.parts.find(info.part)
        assert ours is not None and ours.attachment == info.index
        expected = expected_attachment(msg, data, parsed, info, got)
        if expected is None:
            assert info.storage == "identity"
        assert got == (ours_body(data, ours) if expected is None else expected), info


def ours_body(data, part):
    return data[part.body_offset:part.body_offset + part.body_length]


def expected_attachment(msg, data, parsed, info, got):
    """What attachment info must decode to (None: identity, a message/* body email
    treats as a container); see check_attachments.  ``got`` is what was stored."""
    ours = parsed.parts.find(info.part)
    body = ours_body(data, ours)
    try:
        expected = expected_payload(msg, info.part)
        pypart = python_part(msg, info.part)
        same_tree = expected == got or _email_body(pypart) == body
        # email does not decode "Content-Transfer-Encoding:  Base64 " (blanks around the
        # token, which RFC 2045 §6.1 allows as in any structured field): decode alone
        cte = pypart.get("content-transfer-encoding")
        if cte is not None and str(cte) != str(cte).strip():
            same_tree = False
    except (KeyError, IndexError, TypeError):
        same_tree = False
    if not same_tree:
        expected = _decoded_alone(ours, body)
    return expected


def _email_body(pypart):
    """The encoded body email cut for a part (bytes as in the message), or None."""
    payload = pypart.get_payload()
    if not isinstance(payload, str):
        return None
    try:
        return payload.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return payload.encode("utf-8", "surrogateescape")


def _decoded_alone(part, body):
    """email's decoding of one body with the part's type and transfer encoding."""
    if part.type in ("message", "multipart"):
        return None
    entity = (b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: "
              + part.encoding.encode("latin-1") + b"\r\n\r\n" + body)
    alone = email.message_from_bytes(entity, policy=email.policy.compat32)
    return expected_payload(alone, "1")


CORPUS = os.path.join(os.path.dirname(email.__file__), os.pardir, "test", "test_email", "data")
