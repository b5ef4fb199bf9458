"""Modified UTF-7 for mailbox names on the wire (RFC 3501 §5.1.3).

The store keeps names in UTF-8; the protocol edge converts both ways.
"""

import base64


class InvalidName(ValueError):
    """Not valid modified UTF-7."""


def encode(name):
    """UTF-8 str -> modified UTF-7 str."""
    out = []
    pending = []

    def flush():
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def decode(text):
    """Modified UTF-7 str -> str; raises InvalidName."""
    out = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ord(ch) > 0x7e or ord(ch) < 0x20:
            raise InvalidName("mailbox name has a character outside printable US-ASCII")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = text.find("-", i + 1)
        if end < 0:
            raise InvalidName("unterminated &...- sequence in mailbox name")
        chunk = text[i + 1:end]
        i = end + 1
        if not chunk:
            out.append("&")
            continue
        b64 = chunk.replace(",", "/")
        b64 += "=" * (-len(b64) % 4)
        try:
            data = base64.b64decode(b64, validate=True)
            decoded = data.decode("utf-16-be")
        except (ValueError, UnicodeDecodeError):
            raise InvalidName("invalid modified UTF-7 in mailbox name") from None
        if encode(decoded) != "&" + chunk + "-":
            raise InvalidName("non-canonical modified UTF-7 in mailbox name")
        out.append(decoded)
    return "".join(out)
