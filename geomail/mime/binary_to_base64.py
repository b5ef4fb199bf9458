"""Leaf parts whose body holds NUL, rewritten in base64 (RFC 3516 §4.4).

An IMAP4rev1 literal cannot carry NUL (RFC 3501 §4.3), so a part whose bytes
hold NUL, APPENDed as a literal8, could never be sent by FETCH BODY[n] as it
was received.  RFC 3516 §4.4 lets the server convert such data when it
stores it; Dovecot (lib-mail/istream-binary-converter.c) stores it in base64,
and so does this module: each such leaf's Content-Transfer-Encoding field
says base64 and its body becomes the base64 of its decoded bytes, in lines
of 76 characters ending CRLF (RFC 2045 §6.8).  Every other byte of the
message (the part's other header fields, other parts, boundaries, preamble,
epilogue) is left as it was.

The parts are found by ``MessageParser``, the parser of delivery and FETCH,
so what is converted is exactly what FETCH will call a part; one pass, linear
in the message size.
"""

import base64

from .decoders import Base64Decoder, Rfc2045QPDecoder
from .parser import MessageParser

# The encodings whose decoded bytes are known, as geomail.imap.body.DECODERS (what
# BINARY undoes): RFC 2045 §6.2's identities, base64 and quoted-printable.  A part
# in any other encoding keeps its bytes, since what they stand for is unknown.
DECODERS = {"7bit": None, "8bit": None, "binary": None,
            "base64": Base64Decoder, "quoted-printable": Rfc2045QPDecoder}
CTE_BASE64 = b"Content-Transfer-Encoding: base64"
_CTE_NAME = b"content-transfer-encoding"


def binary_to_base64(message):
    """``message`` (bytes) with each leaf part whose body holds NUL in base64."""
    out = []
    done = 0
    for part in _parts(message):          # depth first: in the order of the bytes
        body_end = part.body_offset + part.body_length
        if not _convertible(part, message, body_end):
            continue
        out.append(message[done:part.header_offset])
        out.append(_header(message[part.header_offset:part.body_offset]))
        out.append(_encoded(part.encoding, message[part.body_offset:body_end],
                            body_end == len(message)))
        done = body_end
    if not out:
        return message
    out.append(message[done:])
    return b"".join(out)


def _parts(message):
    """Every entity of the message with its byte offsets (attachments decoded to nowhere)."""
    parser = MessageParser(_Discard())
    parser.feed(message)
    return parser.close().parts.walk()


def _convertible(part, message, body_end):
    """A leaf (not multipart, not message/rfc822, not an opaque container, RFC 2045
    §6.4: those take no base64), in a known encoding, whose body holds NUL."""
    return (part.boundary is None and part.message is None and not part.opaque
            and part.encoding in DECODERS
            and message.find(b"\0", part.body_offset, body_end) >= 0)


def _header(block):
    """The header block with its Content-Transfer-Encoding saying base64: the first
    such field replaced where it stands, any later one dropped, or one added before
    the empty line.  Lines are split as geomail.mime.headers.split_fields splits them,
    so the field removed is the field the parser read."""
    out = []
    replaced = dropping = False
    for line in block.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):       # a continuation belongs to the field before
            if not dropping:
                out.append(line)
            continue
        dropping = _is_cte(line)
        if not dropping:
            out.append(line)
        elif not replaced:
            out.append(CTE_BASE64 + _line_end(line))
            replaced = True
    if not replaced:
        at = len(out) - 1 if out and not out[-1].strip() else len(out)
        out.insert(at, CTE_BASE64 + (_line_end(out[at]) if at < len(out) else b"\r\n"))
    return b"".join(out)


def _is_cte(line):
    colon = line.find(b":")
    return colon > 0 and line[:colon].strip().lower() == _CTE_NAME


def _line_end(line):
    if line.endswith(b"\r\n"):
        return b"\r\n"
    return line[len(line.rstrip(b"\r\n")):] or b"\r\n"


def _encoded(encoding, body, ends_message):
    """The base64 body.  The CRLF before a following delimiter belongs to the delimiter
    (RFC 2046 §5.1.1) and is still there, so the last line's CRLF is dropped unless
    the body ends the message."""
    decoder = DECODERS[encoding]
    if decoder is not None:
        decoder = decoder()
        body = decoder.feed(body) + decoder.finish()
    text = base64.encodebytes(body).replace(b"\n", b"\r\n")
    return text if ends_message else text[:-2]


class _Discard:
    """An attachment sink that keeps nothing: only the part tree is wanted."""

    def open(self, info):
        return self

    def write(self, data):
        pass

    def close(self):
        pass

    def abort(self):
        pass
