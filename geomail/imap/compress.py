"""COMPRESS DEFLATE (RFC 4978): the rest of the connection is raw DEFLATE both ways.

The tagged OK goes out uncompressed; compression starts right after it
(§3).  The stream itself, and its memory bounds, are geomail/deflate.py's;
geomail/netio.py runs every read and write through it, so TLS (below it)
and IDLE (above it) need nothing of their own.
"""

from geomail.imap import response as R
from geomail.imap.auth import ANSWERED
from geomail.imap.errors import Bad, CommandError

ALGORITHMS = ("DEFLATE",)


def compress(session, p, tag):
    algorithm = p.atom("compression algorithm").upper()
    p.end()
    if algorithm not in ALGORITHMS:
        raise Bad(f"Unsupported compression algorithm {algorithm}")
    conn = session.conn
    if conn.deflate is not None:
        raise CommandError("DEFLATE is active already", R.COMPRESSIONACTIVE)
    tls_compression = getattr(conn.sock, "compression", None)
    if tls_compression is not None and tls_compression():
        # §3: compressing twice is pointless; TLS-level compression counts too
        raise CommandError("TLS compression is active", R.COMPRESSIONACTIVE)
    session.tagged(tag, "OK", "DEFLATE active")
    session.out.flush()
    conn.start_compression()
    return ANSWERED
