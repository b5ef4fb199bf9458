"""SORT and UID SORT (RFC 5256 §3), SORT=DISPLAY (RFC 5957) and ESORT (RFC 5267 §3).

The search program is the SEARCH one (search.KeyParser); the store hands
back the fields the criteria need for the matching messages, and the keys
are computed here: the base subject of RFC 5256 §2.1, the first address's
mailbox, the display name.  Messages that compare equal stay in sequence
order (§3), REVERSE or not: every criterion is a stable sort, applied from
the last to the first.
"""

import unicodedata

from geomail.imap import contexts, search as S
from geomail.imap.parser import ParseError
from geomail.mime.headers import parse_addresses
from geomail.store.search import matching_rows

# criterion -> the store field it reads (RFC 5256 §3, RFC 5957 §3)
CRITERIA = {
    "ARRIVAL": ("internal_date",), "DATE": ("date_sent", "internal_date"), "SIZE": ("size",),
    "SUBJECT": ("subject",), "FROM": ("from",), "TO": ("to",), "CC": ("cc",),
    "DISPLAYFROM": ("from",), "DISPLAYTO": ("to",),
}
MAX_CRITERIA = 20


def sort(session, p, tag):
    return _sort(session, p, tag, uid_mode=False)


def uid_sort(session, p, tag):
    return _sort(session, p, tag, uid_mode=True)


def criteria(p):
    """'(' [REVERSE SP] key *(SP [REVERSE SP] key) ')': [(key, reverse)]."""
    p.expect("(")
    out = []
    while True:
        word = p.atom("sort criterion").upper()
        reverse = word == "REVERSE"
        if reverse:
            p.sp()
            word = p.atom("sort criterion").upper()
        if word not in CRITERIA:
            raise ParseError(f"unknown sort criterion {word}")
        out.append((word, reverse))
        if len(out) > MAX_CRITERIA:
            raise ParseError("too many sort criteria")
        if p.take(")"):
            return out
        p.sp()


def charset_and_program(session, p):
    """SP charset SP search-key *(SP search-key) (RFC 5256 §3: the charset is required)."""
    charset = p.astring_str().upper()
    p.sp()                # "SORT (DATE) ALL": no program, BAD (as Dovecot) before the charset
    S.codec_of(charset)
    parser = S.KeyParser(session, p, charset)
    key = parser.program()
    p.end()
    if parser.uses_modseq:
        S.condstore.enable(session)         # a CONDSTORE enabling command (RFC 7162 §3.1)
    return parser, key


def _sort(session, p, tag, uid_mode):
    options = S.return_options(p)
    saving = options is not None and "SAVE" in options
    try:
        program = criteria(p)
        p.sp()
        parser, key = charset_and_program(session, p)
        fields = tuple(dict.fromkeys(f for word, _ in program for f in CRITERIA[word]))
        rows = rows_of_view(session, key, fields)
    except Exception as exc:
        S.forget_saved_on_failure(session, saving, exc)
        raise
    order = sorted_uids(rows, fields, program)
    modseqs = {row[0]: row[1] for row in rows}
    S.answer(session, tag, b"SORT", uid_mode, options, order, modseqs, parser.uses_modseq)
    if options is not None and "UPDATE" in options:
        contexts.register(session, tag, uid_mode, key, order, (program, fields))
    return S.completion(session, uid_mode)


def rows_of_view(session, key, fields):
    view = session.view
    if not len(view):
        return []
    return [row for row in matching_rows(session.context.db, view.mailbox_id, key, fields,
                                         limit_uid=view.last_uid) if view.seq_of(row[0])]


def sorted_uids(rows, fields, program):
    """UIDs of rows (uid, modseq, *fields) in the order of the sort program."""
    index = {name: i + 2 for i, name in enumerate(fields)}
    items = list(rows)                    # ascending UID = sequence order
    for word, reverse in reversed(program):
        key = _KEY_OF[word]
        memo = {}            # one computation per distinct value (a mailbox repeats senders)
        cached = {row[0]: key(row, index, memo) for row in items}
        items.sort(key=lambda row: cached[row[0]], reverse=reverse)
    return [row[0] for row in items]


def fold(text):
    """Text as it compares in a sort: upper case, decomposed, like Dovecot's titlecased
    decomposed keys (so "[" sorts after the letters, as there)."""
    if text.isascii():
        return text.upper()
    return unicodedata.normalize("NFKD", text.upper())


def _date(row, index, memo):
    """DATE: the Date: header's moment (UTC), INTERNALDATE without one (RFC 5256 §2.2)."""
    sent = row[index["date_sent"]]
    return sent if sent is not None else row[index["internal_date"]]


_SIMPLE_SPECIALS = frozenset('",();:\\[]')


def first_address(value):
    """(display name, mailbox, host) of the first address of a decoded field, or None."""
    if not value:
        return None
    if value.count("<") <= 1 and value.count(">") <= 1 and _SIMPLE_SPECIALS.isdisjoint(value):
        # "Name <a@b>" or "a@b", most fields: read without the full parser
        name, _, rest = value.rpartition("<")
        address = rest.partition(">")[0] if "<" in value else rest
        mailbox, at, host = address.strip().rpartition("@")
        if not at:
            mailbox, host = host, ""
        if mailbox and " " not in mailbox and " " not in host:
            return name.strip(), mailbox, host
    # the first entry as Dovecot takes it: a group's start is its name as the
    # mailbox; a missing mailbox or domain keeps the parser's MISSING_* filler
    for name, _, mailbox, host in parse_addresses(value.encode("utf-8", "replace"))[:1]:
        def text(b):
            return b.decode("utf-8", "replace") if b else ""
        return text(name), text(mailbox), text(host)
    return None


def mailbox_key(value):
    """FROM/TO/CC: the addr-mailbox of the first address, case-insensitively (§3)."""
    first = first_address(value)
    return fold(first[1]) if first else ""


def display_key(value):
    """DISPLAYFROM/DISPLAYTO: the display name, else the address (RFC 5957 §3)."""
    first = first_address(value)
    if first is None:
        return ""
    name, mailbox, host = first
    if name.strip():
        return fold(name.strip())
    return fold(f"{mailbox}@{host}" if host else mailbox)


def _field(name, convert):
    def key(row, index, memo):
        value = row[index[name]]
        found = memo.get(value)
        if found is None:
            found = memo[value] = convert(value)
        return found
    return key


_KEY_OF = {
    "ARRIVAL": lambda row, index, memo: row[index["internal_date"]],
    "DATE": _date,
    "SIZE": lambda row, index, memo: int(row[index["size"]]),
    "SUBJECT": _field("subject", lambda v: fold(base_subject(v or "")[0])),
    "FROM": _field("from", mailbox_key), "TO": _field("to", mailbox_key),
    "CC": _field("cc", mailbox_key),
    "DISPLAYFROM": _field("from", display_key), "DISPLAYTO": _field("to", display_key),
}


# -- base subject (RFC 5256 §2.1) -----------------------------------------------

_WSP = " \t"


def base_subject(subject):
    """(base subject, whether a reply/forward marker was removed) of a decoded subject.

    Positions move over the text with plain string operations (no regular
    expression on message data) and every pass of steps (3)-(5) moves forward
    only, so the work stays linear in the subject's length (the store cut it
    to 1,000 characters) even for "[a][a][a]..." or "re:re:re:...".
    """
    text = " ".join(subject.replace("\r", " ").replace("\n", " ").split())   # (1)
    marked = False
    while True:
        while True:                                     # (2) trailers
            if text[-5:].lower() == "(fwd)":
                text = text[:-5].rstrip(_WSP)
                marked = True
            elif text[-1:] in (" ", "\t"):
                text = text.rstrip(_WSP)
            else:
                break
        pos = 0
        while True:                                     # (5): (3) and (4) until nothing changes
            while pos < len(text) and text[pos] in _WSP:        # (3) a WSP leader
                pos += 1
            blobs = []                                  # *subj-blob, then subj-refwd?
            at = pos
            while True:
                end = _blob_end(text, at)
                if end < 0:
                    break
                blobs.append(at)
                at = end
            after = _refwd_end(text, at)
            if after >= 0:                              # (3) a leader: blobs and Re:/Fw:/Fwd:
                pos = after
                marked = True
                continue
            # (4) a leading blob goes when something remains after it; with no
            # leader behind the blobs, (3) and (4) would take them one by one
            if blobs:
                pos = at if at < len(text) else blobs[-1]
            break
        text = text[pos:]
        if text[:5].lower() == "[fwd:" and text.endswith("]"):   # (6)
            text = text[5:-1]
            marked = True
            continue
        return text, marked


def _blob_end(text, pos):
    """Where a subj-blob ("[" *BLOBCHAR "]" *WSP) starting at pos ends, or -1."""
    if not text.startswith("[", pos):
        return -1
    end = text.find("]", pos + 1)
    if end < 0:
        return -1
    inner = text.find("[", pos + 1, end)
    if inner >= 0:
        return -1
    end += 1
    while end < len(text) and text[end] in _WSP:
        end += 1
    return end


def _refwd_end(text, pos):
    """Where a subj-refwd (("re" / "fw" ["d"]) *WSP [subj-blob] ":") at pos ends, or -1."""
    head = text[pos:pos + 3].lower()
    if head.startswith("re"):
        at = pos + 2
    elif head == "fwd":
        at = pos + 3
    elif head.startswith("fw"):
        at = pos + 2
    else:
        return -1
    while at < len(text) and text[at] in _WSP:
        at += 1
    end = _blob_end(text, at)
    if end >= 0:
        at = end
    return at + 1 if text.startswith(":", at) else -1
