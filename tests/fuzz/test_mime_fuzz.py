"""Fuzzing of the MIME parser with its rebuild: any input, no exception, rebuild(parse(x)) == x.

Inputs: arbitrary bytes, and structured-random messages (nesting, boundaries
that collide or never close, every transfer encoding, valid and broken
base64/quoted-printable, 8-bit and NUL bytes, broken, folded and huge header
lines, LF / CR / CRLF line ends), some of them then mutated byte by byte.
Each is parsed whole and in random chunk sizes; every chunking must give
the same result (tests/mime/mime_helpers.check_roundtrip checks the rebuild,
byte ranges, the JSON round trip and the part offsets).

Deterministic in CI (hypothesis derandomized); bench/fuzz_smtp_mime.py runs
the same checks for longer.
"""

import base64
import quopri

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.mime.mime_helpers import check_roundtrip, parse

CI = settings(derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
MAX_DEPTH = 6


def check_message(data, chunk_sizes):
    """Parse ``data`` whole and in ``chunk_sizes``: same result, exact rebuild, no exception."""
    whole, whole_sink = parse(data)
    check_roundtrip(data, whole, whole_sink, ranges=5)
    chunked, chunked_sink = parse(data, chunk_sizes)
    check_roundtrip(data, chunked, chunked_sink, ranges=5)
    assert chunked.raw == whole.raw
    assert chunked.segments_json() == whole.segments_json()
    assert chunked.bodystructure == whole.bodystructure
    assert chunked_sink.objects == whole_sink.objects


# -- structured messages -----------------------------------------------------

TOKENS = [b"a", b"x-y", b"\xc3\xa9", b"\xff", b"\x00", b" ", b"\t", b";", b"=", b'"', b"\\",
          b"(", b")", b"=?utf-8?B?w6k=?=", b"=?x?Q?a_b?=", b"*0*", b"''", b"%41", b"\r", b"\n"]
CONTENT_TYPES = [b"text/plain", b"text/html", b"application/octet-stream", b"image/png",
                 b"message/rfc822", b"multipart/mixed", b"multipart/alternative",
                 b"multipart/digest", b"message/global", b"TEXT/PLAIN", b"multipart/", b"/"]
ENCODINGS = [b"7bit", b"8bit", b"binary", b"base64", b"quoted-printable", b"BASE64", b"x-uue",
             b"base64 ; junk", b"\xc3\xa9" * 20, b"b" * 40]
BOUNDARIES = [b"b", b"bb", b"BOUNDARY", b"b" * 70, b"b" * 200, b"-", b"=_x", b"b\xc3\xa9", b"sp ace"]
FILENAMES = [b"a.bin", b"x" * 1200, b"\xc3\xa9t\xc3\xa9.txt", b"../../etc/passwd", b""]


class MessageGenerator:
    """Structured-random messages from a random.Random (seeded by hypothesis or the bench).

    A plain generator rather than nested hypothesis strategies: drawing
    hundreds of kilobytes through strategies costs seconds per example.
    """

    def __init__(self, rng):
        self.rng = rng

    def chance(self, one_in):
        return self.rng.randrange(one_in) == 0

    def bits(self, most=12):
        rng = self.rng
        return b"".join(rng.choice(TOKENS) if rng.random() < 0.7 else rng.randbytes(rng.randrange(6))
                        for _ in range(rng.randrange(most + 1)))

    def header_lines(self, depth):
        """A few headers that are not structural: well formed, folded, long, broken."""
        rng, lines = self.rng, []
        for _ in range(rng.randrange(5)):
            kind = rng.randrange(9)
            if kind == 0:
                lines.append(b"Subject: " + self.bits())
            elif kind == 1:
                count = rng.choice([1, 3, 3, 3, 2000])
                lines.append(b"References: " + b" ".join(b"<%d@x>" % i for i in range(count)))
            elif kind == 2:
                lines.append(b"X-Folded: " + self.bits() + b"\r\n\t" + self.bits())
            elif kind == 3:
                lines.append(b"no colon here " + self.bits())
            elif kind == 4:
                lines.append(b"X-Long: " + b"h" * rng.choice([998, 5000, 70000] if depth == 0
                                                             else [998, 5000]))
            elif kind == 5:
                lines.append(b" continuation without a header")
            else:
                lines.append(b"From: " + self.bits() + b" <a@example.org>")
        return lines

    def content_type(self, depth):
        if depth < MAX_DEPTH and self.rng.randrange(3) < (2 if depth == 0 else 1):
            return self.rng.choice([b"multipart/mixed", b"multipart/alternative", b"message/rfc822"])
        if depth < MAX_DEPTH:
            return self.rng.choice(CONTENT_TYPES)
        return b"text/plain"

    def entity(self, depth=0):
        """One MIME entity (headers, blank line, body) with CRLF line ends."""
        rng = self.rng
        ctype = self.content_type(depth)
        headers = self.header_lines(depth)
        boundary, params = None, []
        if ctype.startswith(b"multipart"):
            boundary = rng.choice(BOUNDARIES) + (b"%d" % depth if rng.random() < 0.5 else b"")
            params.append((b"boundary", b'"' + boundary + b'"' if rng.random() < 0.5 else boundary))
        if rng.random() < 0.5:
            params.append((b"name", b'"' + self.bits() + b'"'))
        if self.chance(5):
            params.append((b"name*", b"utf-8''" + b"%C3%A9" * rng.choice([1, 300])))
        if self.chance(4):
            params.append((self.bits() or b"x", self.bits()))
        headers.append(b"Content-Type: " + ctype + b"".join(b"; " + k + b"=" + v for k, v in params))
        encoding = None
        if not ctype.startswith(b"multipart") and rng.random() < 0.5:
            encoding = rng.choice(ENCODINGS)
            headers.append(b"Content-Transfer-Encoding: " + encoding)
        if self.chance(3):
            headers.append(b'Content-Disposition: attachment; filename="' + rng.choice(FILENAMES) + b'"')
        head = b"".join(line + b"\r\n" for line in headers)
        if self.chance(20):
            return head                                   # no blank line, no body
        return head + b"\r\n" + self.body(ctype, boundary, encoding, depth)

    def body(self, ctype, boundary, encoding, depth):
        rng = self.rng
        if boundary is not None:
            return self.multipart_body(boundary, depth)
        if ctype.startswith(b"message/"):
            return self.entity(depth + 1)
        payload = rng.choice([rng.randbytes(rng.randrange(300)), self.bits(), b"", b"\x00" * 100,
                              bytes(range(256)) * 20])
        kind = (encoding or b"").lower()
        if kind.startswith(b"base64"):
            encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
            damage = rng.randrange(5)
            if damage == 1 and encoded:
                encoded = encoded[:-3]                            # lost padding
            elif damage == 2:
                encoded = encoded.replace(b"A", b"!", 3)          # characters outside the alphabet
            elif damage == 3:
                encoded = encoded + b"====\r\nQUJD\r\n"            # data after the padding
            return encoded
        if kind == b"quoted-printable":
            encoded = quopri.encodestring(payload).replace(b"\n", b"\r\n")
            return encoded + rng.choice([b"", b"=", b"=4", b"=ZZ", b"=\r\n"])
        return payload

    def multipart_body(self, boundary, depth):
        rng = self.rng
        out = rng.choice([b"", b"preamble\r\n", b"--" + boundary + b"x\r\n"])
        for _ in range(rng.randrange(1, 5)):
            delimiter = b"--" + boundary
            if self.chance(5):
                delimiter = rng.choice([delimiter + b"  \t", delimiter + b"-x", delimiter[:-1]])
            out += delimiter + b"\r\n" + self.entity(depth + 1) + b"\r\n"
        if not self.chance(4):
            out += b"--" + boundary + b"--" + rng.choice([b"\r\n", b"", b"  \r\nepilogue\r\n",
                                                          b"\r\n--" + boundary + b"\r\n"])
        return out

    def line_ends(self, data):
        """The same message with other line ends: LF only, CR only, or a mix."""
        style = self.rng.randrange(6)
        if style == 1:
            return data.replace(b"\r\n", b"\n")
        if style == 2:
            return data.replace(b"\r\n", b"\r")
        if style == 3:
            parts = data.split(b"\r\n")
            return b"".join(part + (b"\r\n", b"\n", b"\r")[i % 3] for i, part in enumerate(parts))
        return data

    def mutate(self, data):
        rng, data = self.rng, bytearray(data)
        for _ in range(rng.randrange(1, 5)):
            where = rng.randrange(len(data) + 1)
            how = rng.randrange(3)
            if how == 0 and where < len(data):
                data[where] ^= 1 << rng.randrange(8)
            elif how == 1:
                data[where:where] = rng.choice([b"\r\n", b"\n", b"--", b"\r\n--b\r\n", b"\x00",
                                                b":", b"=", b"\xff"])
            elif where < len(data):
                del data[where:where + rng.randrange(1, 21)]
        return bytes(data)

    def message(self):
        data = self.line_ends(b"From: a@example.org\r\nMIME-Version: 1.0\r\n" + self.entity())
        return self.mutate(data) if self.chance(4) else data


chunk_sizes = st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=40)


@settings(CI, max_examples=1000)
@given(st.binary(max_size=3000), chunk_sizes)
@example(b"", [1])
@example(b"\r\n\r\n--\r\n", [1, 1, 1])
def test_arbitrary_bytes(data, chunks):
    check_message(data, chunks)


@settings(CI, max_examples=600)
@given(st.randoms(use_true_random=False), chunk_sizes)
def test_structured_messages(rng, chunks):
    check_message(MessageGenerator(rng).message(), chunks)


def nested(levels, boundary=b"b"):
    """``levels`` multiparts inside each other, the innermost with a base64 attachment."""
    inner = (b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
             + base64.encodebytes(b"payload" * 50).replace(b"\n", b"\r\n"))
    for level in range(levels):
        mark = boundary + b"%d" % level
        inner = (b'Content-Type: multipart/mixed; boundary="' + mark + b'"\r\n\r\n--' + mark
                 + b"\r\n" + inner + b"\r\n--" + mark + b"--\r\n")
    return b"From: a@example.org\r\n" + inner


@settings(CI, max_examples=20)
@given(st.sampled_from([40, 100, 300]), chunk_sizes)
def test_deep_nesting(levels, chunks):
    check_message(nested(levels), chunks)
