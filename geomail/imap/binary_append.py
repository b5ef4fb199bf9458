"""APPEND's message data sent as literal8: NUL is not stored where a literal must
carry it (RFC 3516 §4.4).

A literal8 message that holds NUL is read whole and its binary leaf parts are
stored in base64 (geomail.mime.binary_to_base64), so that FETCH BODY[n] can
send them in an IMAP4rev1 literal (RFC 3501 §4.3) and BINARY[n] still gives
the bytes sent.  A message without NUL is stored exactly as sent.  Holding
the message is bounded by MAX_CONVERTED: a larger literal8 streams as any
other, and if it holds NUL the APPEND fails with NO [UNKNOWN-CTE] (the
§4.4 answer for data the server will not store), the literal read to its end
first and nothing stored.
"""

from geomail.imap import response as R
from geomail.imap.errors import CommandError
from geomail.mime.binary_to_base64 import binary_to_base64

MAX_CONVERTED = 16 * 1024 * 1024    # bytes of a literal8 message held to convert it


def stored_chunks(chunks, size):
    """The chunks to store for a literal8 of ``size`` bytes read as ``chunks``."""
    if size > MAX_CONVERTED:
        yield from _without_nul(chunks)
        return
    message = b"".join(chunks)
    yield binary_to_base64(message) if b"\0" in message else message


def _without_nul(chunks):
    """The chunks as they come, until one holds NUL: then the rest is drained, NO."""
    for chunk in chunks:
        if b"\0" in chunk:
            for _ in chunks:
                pass
            raise CommandError(f"Binary data in a message over {MAX_CONVERTED} bytes "
                               "cannot be stored", R.UNKNOWN_CTE)
        yield chunk
