"""RFC 3501 §7.4.2 ENVELOPE, BODY and BODYSTRUCTURE, serialised as IMAP text.

Follows what Dovecot 2.3 answers (src/lib-imap/imap-bodystructure.c,
imap-envelope.c): header values unfolded but otherwise as received (no RFC
2047 decoding), parameters as written with RFC 2231 sections merged into
``name*``, text parts without a charset get ("charset" "us-ascii"), a
multipart without parts gets one empty text/plain part.
"""

import re

from . import headers as H

NIL = b"NIL"
DEFAULT_CHARSET = b'"charset" "us-ascii"'
EMPTY_BODY = b'"text" "plain" (' + DEFAULT_CHARSET + b') NIL NIL "7bit" 0 0'


def imap_string(value):
    """The one quoting decision: NIL, "quoted" or a {n} literal (RFC 3501 §4.3)."""
    if value is None:
        return NIL
    if isinstance(value, str):
        value = value.encode("utf-8")
    if len(value) < 4096 and not value.translate(None, _QUOTABLE):
        if b'"' in value or b"\\" in value:
            value = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        return b'"' + value + b'"'
    return b"{%d}\r\n" % len(value) + value


# quoted strings may hold any 7-bit char but NUL, CR and LF (RFC 3501 §9 QUOTED-CHAR)
_QUOTABLE = bytes(range(1, 10)) + bytes([11, 12]) + bytes(range(14, 128))


def _list(items):
    return b"(" + b" ".join(items) + b")" if items else NIL


def _address_list(addrs):
    if not addrs:
        return NIL
    return b"(" + b"".join(
        b"(" + b" ".join([imap_string(_for_humans(addr[0]))]
                         + [imap_string(x) for x in addr[1:]]) + b")" for addr in addrs) + b")"


def envelope(fields):
    """ENVELOPE of a header block given as split_fields() output.

    As Dovecot 2.3: the last Date/Subject/In-Reply-To/Message-ID field wins,
    the addresses of repeated address fields are concatenated, values are
    unfolded the way its header parser does (headers.imap_value).
    """
    strings = {}
    addrs = {}
    for name, v in fields:
        if name in _STRING_FIELDS:
            strings[name] = H.imap_value(v)
        elif name in _ADDRESS_FIELDS:
            addrs.setdefault(name, []).extend(H.parse_addresses(v))

    def address_list(name):
        return _address_list(addrs.get(name))

    from_list = address_list("from")
    items = [
        imap_string(strings.get("date")),
        imap_string(_for_humans(strings.get("subject"))),
        from_list,
        address_list("sender") if addrs.get("sender") else from_list,
        address_list("reply-to") if addrs.get("reply-to") else from_list,
        address_list("to"),
        address_list("cc"),
        address_list("bcc"),
        imap_string(strings.get("in-reply-to")),
        imap_string(strings.get("message-id")),
    ]
    return b"(" + b" ".join(items) + b")"


def _for_humans(value):
    """Dovecot writes the Subject and display names for humans: blank runs (TAB, CR, LF too)
    become one space, none at either end (imap_append_string_for_humans)."""
    if value is None:
        return None
    return re.sub(rb"[ \t\r\n]+", b" ", value).strip(b" ")


_STRING_FIELDS = frozenset(("date", "subject", "in-reply-to", "message-id"))
_ADDRESS_FIELDS = frozenset(("from", "sender", "reply-to", "to", "cc", "bcc"))


def _params(params, text):
    items = []
    charset = False
    for k, v in params:
        if k.lower() == b"charset":
            charset = True
        items.append(imap_string(k) + b" " + imap_string(v))
    if text and not charset:
        items.append(DEFAULT_CHARSET)
    return _list(items)


def _extension(part, leaf):
    out = []
    if leaf:
        out.append(imap_string(part.md5))
    else:
        out.append(_params(part.params, False))
    if part.disposition is None:
        out.append(NIL)
    else:
        out.append(b"(" + imap_string(part.disposition) + b" "
                   + _params(part.disposition_params, False) + b")")
    out.append(_list([imap_string(x) for x in part.language]) if part.language else NIL)
    out.append(imap_string(part.location))
    return b" ".join(out)


def body(part, extended=True):
    """BODYSTRUCTURE (extended) or BODY of a message entity or part, with parens."""
    return bodies(part)[0 if extended else 1]


def bodies(part):
    """(BODYSTRUCTURE, BODY) of an entity in one walk of its tree: BODY is
    BODYSTRUCTURE without the extension data, so the rest is built once (a
    message of 10,000 parts or 60,000 parameters spent half its parse here)."""
    extended, basic = _bodies_inner(part)
    return b"(" + extended + b")", b"(" + basic + b")"


def _bodies_inner(part):
    if part.opaque:
        out = _opaque_fields(part)
        return out + b" " + _extension(part, True), out
    if part.boundary is not None or (part.type == "multipart" and part.subtype_raw is not None):
        if part.children:
            pairs = [bodies(c) for c in part.children]
            kids_extended = b"".join(pair[0] for pair in pairs)
            kids_basic = b"".join(pair[1] for pair in pairs)
        else:
            kids_extended = b"(" + EMPTY_BODY + b" NIL NIL NIL NIL)"
            kids_basic = b"(" + EMPTY_BODY + b")"
        subtype = b" " + imap_string(part.subtype_raw or b"x-unknown")
        return kids_extended + subtype + b" " + _extension(part, False), kids_basic + subtype
    if part.message is not None:
        out = b'"message" "rfc822" ' + _params(part.params, False)
    else:
        text = part.type_raw is None or part.type_raw.lower() == b"text"
        if part.type_raw is None:
            out = b'"text" "plain"'
        else:   # Dovecot: a broken Content-Type is "" "", a type alone "text" ""
            out = imap_string(part.type_raw) + b" " + imap_string(part.subtype_raw or b"")
        out += b" " + _params(part.params, text)
    out += b" %s %s %s %d" % (imap_string(part.content_id), imap_string(part.description),
                              imap_string(part.encoding_raw or b"7bit"), part.body_length)
    extended = basic = out
    if part.message is not None:
        nested = part.message
        nested_extended, nested_basic = bodies(nested)
        envelope_ = b" " + envelope(nested.fields) + b" "
        lines = b" %d" % part.lines
        extended = out + envelope_ + nested_extended + lines
        basic = out + envelope_ + nested_basic + lines
    elif part.type_raw is None or part.type_raw.lower() == b"text":
        extended = basic = out + b" %d" % part.lines
    return extended + b" " + _extension(part, True), basic


def _opaque_fields(part):
    """A container past the parser's MAX_DEPTH, written as one application/octet-stream
    leaf: a message/rfc822 body-type-msg needs the ENVELOPE and BODY of a message we
    did not parse, and "multipart" as a one-part type confuses client parsers
    (Dovecot, imap-bodystructure.c, does the same for parts it did not parse)."""
    out = b'"application" "octet-stream" ' + _params(part.params, False)
    return out + b" %s %s %s %d" % (imap_string(part.content_id), imap_string(part.description),
                                    imap_string(part.encoding_raw or b"7bit"), part.body_length)
