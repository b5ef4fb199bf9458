"""FETCH items of SAVEDATE (RFC 8514), OBJECTID (RFC 8474) and PREVIEW (RFC 8970).

Each is answered from the messages row (and the content row's preview), so
they join FETCH's metadata path (fetch.py asks ``ITEMS``, ``parse``,
``prepare_rows`` and ``response``) and never load a message body.
"""

from geomail import objectids
from geomail.imap import response as R
from geomail.imap.parser import ParseError
from geomail.store.contents import stored_preview

# FETCH item -> the field of geomail.store.messages.fetch_rows it needs
ITEMS = {"SAVEDATE": "save_date", "EMAILID": "email_id", "THREADID": "thread_id",
         "PREVIEW": "preview"}
PREVIEW_MODIFIERS = ("LAZY",)     # RFC 8970 §3.1 preview-mod


def parse_preview_modifiers(p):
    """[SP "(" preview-mod *(SP preview-mod) ")"] after PREVIEW (RFC 8970 §7).

    A space and "(" can only start modifiers: no fetch-att begins with "(".
    LAZY lets a server answer NIL for a preview it would have to compute;
    ours are computed at delivery (or once, for older messages), so LAZY
    changes nothing.
    """
    if not p.take(" ("):
        return
    while True:
        word = p.atom("preview modifier").upper()
        if word not in PREVIEW_MODIFIERS:
            raise ParseError(f"unknown PREVIEW modifier {word}")
        if p.take(")"):
            return
        p.sp()


def prepare_rows(db, rows):
    """Rows of content stored before previews were kept get theirs now (stored once)."""
    for row in rows:
        if row.get("preview", "") is None:
            row["preview"] = stored_preview(db, row["preview_of"]) or ""
        yield row


def response(kind, row, internal_date):
    """The response bytes of one of ITEMS; ``internal_date`` formats a date-time."""
    if kind == "SAVEDATE":
        value = row["save_date"]        # NULL: stored before save dates were kept (§4.1)
        return b"SAVEDATE " + (internal_date(value).encode() if value is not None else R.NIL)
    if kind == "EMAILID":
        return b"EMAILID (" + objectids.email_id(row["email_id"]).encode() + b")"
    if kind == "THREADID":
        value = row["thread_id"]
        return b"THREADID " + (b"(" + value.encode("ascii") + b")" if value else R.NIL)
    return b"PREVIEW " + R.nstring(row["preview"] or None)
