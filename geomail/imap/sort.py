"""SORT and UID SORT (RFC 5256 §3), SORT=DISPLAY (RFC 5957) and ESORT (RFC 5267 §3).

The search program is the SEARCH one (search.KeyParser); the store hands
back the fields the criteria need for the matching messages, and the keys
are computed here: the base subject of RFC 5256 §2.1, the first address's
mailbox, the display name.  Messages that compare equal stay in sequence
order (§3), REVERSE or not: every criterion is a stable sort, applied from
the last to the first.
"""

from geomail.imap import search as S
from geomail.imap.parser import ParseError
from geomail.mime.headers import MISSING_DOMAIN, MISSING_MAILBOX, parse_addresses
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
    for name, _, mailbox, host in parse_addresses(value.encode("utf-8", "replace")):
        if host is None:
            continue          # a group's start or end
        def text(b):
            return b.decode("utf-8", "replace") if b else ""
        mailbox = "" if mailbox == MISSING_MAILBOX else text(mailbox)
        host = "" if host == MISSING_DOMAIN else text(host)
        return text(name), mailbox, host
    return None


def mailbox_key(value):
    """FROM/TO/CC: the addr-mailbox of the first address, case-insensitively (§3)."""
    first = first_address(value)
    return first[1].casefold() if first else ""


def display_key(value):
    """DISPLAYFROM/DISPLAYTO: the display name, else the address (RFC 5957 §3)."""
    first = first_address(value)
    if first is None:
        return ""
    name, mailbox, host = first
    if name.strip():
        return name.strip().casefold()
    return (f"{mailbox}@{host}" if host else mailbox).casefold()


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
    "SUBJECT": _field("subject", lambda v: base_subject(v or "")[0].casefold()),
    "FROM": _field("from", mailbox_key), "TO": _field("to", mailbox_key),
    "CC": _field("cc", mailbox_key),
    "DISPLAYFROM": _field("from", display_key), "DISPLAYTO": _field("to", display_key),
}


# -- base subject (RFC 5256 §2.1) -----------------------------------------------

_WSP = " \t"


def base_subject(subject):
    """(base subject, whether a reply/forward marker was removed) of a decoded subject.

    Loops over the text with plain string operations (no regular expression
    on message data); each step removes at least one character, so the work
    is bounded by the length squared of a subject the store cut to 1,000.
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
        while True:                                     # (5): (3) and (4) until nothing changes
            before = text
            while True:                                 # (3) leaders
                stripped, refwd = _strip_leader(text)
                if stripped == text:
                    break
                text = stripped
                marked = marked or refwd
            rest = _strip_blob(text)                    # (4) one blob, if something remains
            if rest is not None and rest:
                text = rest
            if text == before:
                break
        if text[:5].lower() == "[fwd:" and text.endswith("]"):   # (6)
            text = text[5:-1]
            marked = True
            continue
        return text, marked


def _strip_blob(text):
    """text without a leading subj-blob ("[" *BLOBCHAR "]" *WSP), or None."""
    if not text.startswith("["):
        return None
    end = text.find("]")
    if end < 0 or "[" in text[1:end]:
        return None
    return text[end + 1:].lstrip(_WSP)


def _strip_leader(text):
    """(text without one subj-leader, whether it was a subj-refwd)."""
    if text[:1] in (" ", "\t"):
        return text.lstrip(_WSP), False
    # *subj-blob subj-refwd
    rest = text
    while True:
        after = _strip_blob(rest)
        if after is None:
            break
        rest = after
    lower = rest.lower()
    if lower.startswith("re"):
        tail = rest[2:]
    elif lower.startswith("fwd"):
        tail = rest[3:]
    elif lower.startswith("fw"):
        tail = rest[2:]
    else:
        return text, False
    tail = tail.lstrip(_WSP)
    after = _strip_blob(tail)
    if after is not None:
        tail = after
    if tail.startswith(":"):
        return tail[1:], True
    return text, False
