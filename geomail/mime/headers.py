"""Header fields: splitting a header block, MIME parameters, encoded words, addresses.

Values are kept as bytes as received (8-bit allowed); helpers unfold and
decode them where a caller needs text.
"""

import functools
import re
import urllib.parse
from email.header import decode_header

_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_TOKEN_CHARS = frozenset(b"!#$%&'*+-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz{|}~")


def split_fields(block):
    """[(lower-case name, value bytes)] of a header block; value keeps its folding.

    As Dovecot 2.3 (lib-mail/message-header-parser.c): continuation lines join
    the previous field, blanks before the colon are not part of the name
    (obsolete syntax, RFC 5322 §4.5.3), a line without a colon has no name
    and so is no field here.
    """
    fields = []
    name = None
    value = []
    for line in block.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                value.append(line)
            continue
        if name is not None:
            fields.append((name, b"".join(value)))
            name = None
        i = line.find(b":")
        if i <= 0:
            continue
        name = line[:i].strip().lower().decode("latin-1")
        value = [line[i + 1:]]
    if name is not None:
        fields.append((name, b"".join(value)))
    return fields


def unfold(value):
    """RFC 5322 §2.2.3 unfolding, minus leading blanks and the final line end."""
    value = value.lstrip(b" \t").rstrip(b"\r\n")
    if b"\n" in value:
        value = _FOLD.sub(b"", value)
    return value


def first(fields, name):
    """Value (bytes, folded) of the first field called `name`, or None."""
    for n, v in fields:
        if n == name:
            return v
    return None


def to_text(value):
    """Bytes of a header value to str: UTF-8 when valid, else Latin-1."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


# RFC 2047 decoding reads at most this much of a value: every caller keeps at
# most 1,000 characters of the result (the index columns, file names), and
# email.header.decode_header is quadratic in the number of encoded words
# (256 KiB of "=?utf-8?q?a?= " took 2 s of CPU, holding the worker's loop).
MAX_DECODED_CHARS = 16 * 1024


def decode_words(value):
    """RFC 2047 decoding of an unfolded header value (bytes or str) to str.

    Only the first MAX_DECODED_CHARS characters are decoded and returned.
    """
    if isinstance(value, bytes):
        value = to_text(value[:4 * MAX_DECODED_CHARS])
    value = value[:MAX_DECODED_CHARS]
    if "=?" not in value:
        return value
    try:
        out = []
        last_encoded = False
        for part, charset in decode_header(value):
            if isinstance(part, bytes):
                if charset is None:
                    text = part.decode("latin-1")
                else:
                    text = part.decode(codec_for(charset), "replace")
                encoded = charset is not None
            else:
                text, encoded = part, False
            if out and not (encoded and last_encoded) and not text.startswith(" ") \
                    and not out[-1].endswith(" "):
                text = " " + text
            out.append(text)
            last_encoded = encoded
        return "".join(out)
    except Exception:   # malformed words: leave as is
        return value


def codec_for(name):
    """The Python codec for a MIME charset name, UTF-8 if unknown.

    Only text encodings: Python also knows "hex", "rot13", "zlib"... whose
    bytes.decode raises LookupError.  A codec that can decode to lone
    surrogates (utf-7, unicode_escape) is allowed: the store cleans what
    goes to the database (geomail.store.delivery).
    """
    import codecs
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return "utf-8"
    if not getattr(info, "_is_text_encoding", True):
        return "utf-8"
    return info.name


# --- MIME parameters (RFC 2045 §5.1, RFC 2231) -------------------------------

class _Scanner:
    """Tiny RFC 822 lexer over bytes: tokens, quoted strings, comments."""

    __slots__ = ("s", "i")

    def __init__(self, s):
        self.s = s
        self.i = 0

    def skip_cfws(self):
        s, n = self.s, len(self.s)
        while self.i < n:
            c = s[self.i]
            if c in b" \t\r\n":
                self.i += 1
            elif c == 0x28:   # '('
                depth = 0
                while self.i < n:
                    c = s[self.i]
                    if c == 0x5c:
                        self.i += 2
                        continue
                    if c == 0x28:
                        depth += 1
                    elif c == 0x29:
                        depth -= 1
                        if depth == 0:
                            self.i += 1
                            break
                    self.i += 1
            else:
                break
        return self.i < n

    def token(self):
        s, j = self.s, self.i
        n = len(s)
        while j < n and (s[j] in _TOKEN_CHARS or s[j] >= 0x80):
            j += 1
        tok = s[self.i:j]
        self.i = j
        return tok

    def quoted(self):
        s, n = self.s, len(self.s)
        self.i += 1
        out = bytearray()
        while self.i < n:
            c = s[self.i]
            if c == 0x22:
                self.i += 1
                return bytes(out)
            if c == 0x5c and self.i + 1 < n:
                self.i += 1
                c = s[self.i]
            if c not in b"\r\n":
                out.append(c)
            self.i += 1
        return bytes(out)

    def peek(self):
        return self.s[self.i] if self.i < len(self.s) else None


def parse_content_value(value):
    """(main value bytes or None, [(name bytes, value bytes)]) of a Content-Type
    or Content-Disposition value; RFC 2231 sections are left unmerged."""
    sc = _Scanner(unfold(value))
    sc.skip_cfws()
    main = sc.token()
    if sc.peek() == 0x2f:  # '/'
        sc.i += 1
        sc.skip_cfws()
        sub = sc.token()
        main = main + b"/" + sub if main and sub else None
    main = main or None
    params = []
    n = len(sc.s)
    while sc.i < n:
        sc.skip_cfws()
        if sc.i >= n:
            break
        if sc.peek() != 0x3b:   # not ';': broken, skip a byte (as Dovecot does)
            sc.i += 1
            continue
        sc.i += 1
        sc.skip_cfws()
        key = sc.token()
        sc.skip_cfws()
        if not key or sc.peek() != 0x3d:   # '='
            continue
        sc.i += 1
        sc.skip_cfws()
        if sc.peek() == 0x22:
            val = sc.quoted()
        elif sc.peek() == 0x3d:   # name==?utf-8?b?...?= (broken, common)
            j = sc.i
            while sc.i < n and sc.s[sc.i] not in b"; \t\r\n":
                sc.i += 1
            val = sc.s[j:sc.i]
        else:
            val = sc.token()
        params.append((key, val))
    return main, params


_SECTION = re.compile(rb"^(.*?)\*(?:(\d+)(\*?))?$|^(.*?)\*$")


def merge_rfc2231(params):
    """Merge key*0*=..., key*1=... sections into 'key*' = "charset'lang'value"
    (still %-encoded), the way Dovecot writes BODYSTRUCTURE parameters."""
    plain = []
    sections = {}
    order = []
    for key, val in params:
        star = key.find(b"*")
        if star < 0:
            plain.append((key, val))
            continue
        base, rest = key[:star], key[star + 1:]
        idx, ext = 0, False
        if rest:
            digits = rest.rstrip(b"*")
            if not digits.isdigit() or len(rest) - len(digits) > 1:
                plain.append((key, val))
                continue
            idx, ext = int(digits), rest.endswith(b"*")
        else:
            ext = True
        lbase = base.lower()
        if lbase not in sections:
            sections[lbase] = (base, [])
            order.append(lbase)
        sections[lbase][1].append((idx, ext, val))
    out = list(plain)
    for lbase in order:
        base, items = sections[lbase]
        items.sort(key=lambda t: t[0])
        if [t[0] for t in items] != list(range(len(items))):
            for idx, ext, val in items:
                out.append((base + b"*%d" % idx + (b"*" if ext else b""), val))
            continue
        have_ext = any(ext for _, ext, _ in items)
        buf = b"''" if have_ext and not items[0][1] else b""
        for idx, ext, val in items:
            buf += val.replace(b"%", b"%25") if have_ext and not ext else val
        out.append((base + (b"*" if have_ext else b""), buf))
    return out


def param_value(params, name):
    """Decoded (str) value of parameter `name`, RFC 2231 and RFC 2047 aware."""
    name = name.encode() if isinstance(name, str) else name
    for key, val in merge_rfc2231(params):
        lkey = key.lower()
        if lkey == name:
            return decode_words(val)
        if lkey == name + b"*":
            parts = val.split(b"'", 2)
            if len(parts) == 3:
                charset, _lang, enc = parts
                raw = urllib.parse.unquote_to_bytes(enc)
                cs = codec_for(charset.decode("latin-1")) if charset else "utf-8"
                try:
                    return raw.decode(cs)
                except (UnicodeDecodeError, ValueError):
                    return raw.decode(cs, "replace")
            return to_text(urllib.parse.unquote_to_bytes(val))
    return None


# --- Addresses (RFC 5322 §3.4) for the IMAP ENVELOPE -----------------------------

_ADDR_TOKEN = re.compile(
    rb'"(?:[^"\\]|\\.)*"?|[<>@,;:\[\]]|[^\s"(<>@,;:\[\]]+|\(',
    re.S)


def _address_tokens(value):
    """Tokens of an address list; a comment is one token, nested comments in it
    (RFC 5322 §3.2.2: a comment may contain comments), scanned in linear time.

    Whitespace separates tokens and is no token: the pattern matches every other
    byte, so the regex engine skips it.  Without a "(" the whole list is one
    findall (a 250 KB field of 250,000 tokens in ~20 ms, not a Python step each).
    """
    if b"(" not in value:
        return _ADDR_TOKEN.findall(value)
    out = []
    i, n = 0, len(value)
    while i < n:
        for m in _ADDR_TOKEN.finditer(value, i):
            if m.group() != b"(":
                out.append(m.group())
                continue
            i = _comment_end(value, m.start())
            out.append(value[m.start():i])
            break
        else:
            break
    return out


def _comment_end(value, start):
    """Where the comment opening at start ends: after its balancing ")", or the end."""
    j, depth, n = start, 0, len(value)
    while j < n:
        c = value[j]
        if c == 0x5c:
            j += 2
            continue
        j += 1
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                break
    return min(j, n)

MISSING_MAILBOX = b"MISSING_MAILBOX"
MISSING_DOMAIN = b"MISSING_DOMAIN"


_QUOTED_PAIR = re.compile(rb"\\(.)")


def _unquote(tok):
    if tok[:1] == b'"':
        body = tok[1:-1] if tok.endswith(b'"') and len(tok) > 1 else tok[1:]
        return _QUOTED_PAIR.sub(rb"\1", body) if b"\\" in body else body
    return tok


def parse_addresses(value):
    """[(name, route, mailbox, host)] (bytes or None) per RFC 3501 §7.4.2,
    group start (None, None, group, None) and end (None, None, None, None).

    Delivery parses each address field twice (ENVELOPE, and the SEARCH text
    of From/To/Cc: address_text), so results are kept a while: many short
    fields, and the last two long ones (a field may be as long as the header
    block, and one parse of it is enough).
    """
    if type(value) is not bytes:
        return _parse_addresses(value)
    if len(value) <= _CACHED_FIELD_BYTES:
        return list(_parse_short_addresses(value))
    return list(_parse_long_addresses(value))


_CACHED_FIELD_BYTES = 1024


@functools.lru_cache(maxsize=256)
def _parse_short_addresses(value):
    return tuple(_parse_addresses(value))


@functools.lru_cache(maxsize=2)
def _parse_long_addresses(value):
    return tuple(_parse_addresses(value))


def _parse_addresses(value):
    toks = _address_tokens(unfold(value))
    out = []
    i, n = 0, len(toks)
    in_group = False
    while i < n:
        # collect one address: up to ',' (or ';' ending a group)
        j = i
        depth = 0
        address_seen = False   # a "<" or "@" since i: a ":" no longer starts a group
        while j < n:           # (flags, not a scan of toks[i:j] per ":", which was quadratic)
            t = toks[j]
            if t == b"<":
                depth += 1
                address_seen = True
            elif t == b">":
                depth = max(0, depth - 1)
            elif t == b"@":
                address_seen = True
            elif depth == 0 and (t == b"," or (t == b";" and in_group)
                                 or (t == b":" and not in_group and not address_seen)):
                break
            j += 1
        chunk = toks[i:j]
        sep = toks[j] if j < n else None
        if sep == b":":
            name = b" ".join(_unquote(t) for t in chunk if t[:1] != b"(")
            out.append((None, None, name, None))
            in_group = True
        else:
            addr = _one_address(chunk)
            if addr is not None:
                out.append(addr)
            if sep == b";":
                out.append((None, None, None, None))
                in_group = False
                if j + 1 < n and toks[j + 1] != b",":
                    break    # as Dovecot: nothing but ',' may follow a group
        i = j + 1
    if in_group:
        out.append((None, None, None, None))
    return out


def _one_address(toks):
    if b"<" not in toks:
        return _addr_spec(toks)
    # name-addr: the phrase before "<" is the name; a comment never is (Dovecot)
    toks = [t for t in toks if t[:1] != b"("]
    route = None
    k = toks.index(b"<")
    name_toks = toks[:k]
    inner = toks[k + 1:]
    if b">" in inner:
        inner = inner[:inner.index(b">")]
    if b":" in inner:   # obsolete route: <@a,@b:user@host>
        c = inner.index(b":")
        route = b"".join(inner[:c]) or None
        inner = inner[c + 1:]
    name = _phrase(name_toks)
    if b"@" in inner:
        k = len(inner) - 1 - inner[::-1].index(b"@")
        mailbox = b"".join(_unquote(t) if t[:1] == b'"' else t for t in inner[:k])
        host = b"".join(inner[k + 1:])
    else:
        mailbox = b"".join(_unquote(t) if t[:1] == b'"' else t for t in inner)
        host = b""
    return (name, route, mailbox or MISSING_MAILBOX, host or MISSING_DOMAIN)


_SPECIAL_TOKENS = frozenset((b"<", b">", b"@", b",", b";", b":", b"[", b"]"))


def _addr_spec(toks):
    """An address without angle brackets, read as Dovecot's parse_addr_spec() reads it
    (lib-mail/message-address.c), so ENVELOPE and SEARCH agree with it: the last
    comment in or after the addr-spec is the name (``a@b (Name)``); a local part
    followed by more words and no "@" is a display name with neither mailbox nor
    host (``foo bar``, ``a b@c``, ``"quoted" x@y``), as is a lone quoted string;
    words after the domain are dropped (``a@b c``)."""
    comments = []
    i = _skip_comments(toks, 0, None)          # a comment before it is no name
    local, i = _dotted(toks, i, comments)
    i = _skip_comments(toks, i, comments)
    host = None
    if i < len(toks) and toks[i] == b"@":
        i = _skip_comments(toks, i + 1, comments)
        if i < len(toks) and toks[i] == b"[":  # domain-literal
            j = toks.index(b"]", i) + 1 if b"]" in toks[i:] else len(toks)
            host, i = b"".join(toks[i:j]), j
        else:
            labels, i = _dotted(toks, i, comments)
            host = b"".join(labels)
        _skip_comments(toks, i, comments)
    mailbox = b"".join(_unquote(t) if t[:1] == b'"' else t for t in local)
    if comments:
        c = comments[-1]
        name = (c[1:-1] if c.endswith(b")") else c[1:]).strip() or None
        return (name, None, mailbox or MISSING_MAILBOX, host or MISSING_DOMAIN)
    if host is None:
        phrase, _ = _dotted(toks, i, [], words=True)
        if phrase and phrase[0][:1] == b".":
            phrase = []         # obs-phrase: a word first
        if phrase or (len(local) == 1 and local[0][:1] == b'"'):
            name = b" ".join([mailbox] + [_unquote(t) for t in phrase])
            return (name, None, MISSING_MAILBOX, MISSING_DOMAIN)
    if not local and host is None:
        return None
    return (None, None, mailbox or MISSING_MAILBOX, host or MISSING_DOMAIN)


def _skip_comments(toks, i, comments):
    while i < len(toks) and toks[i][:1] == b"(":
        if comments is not None:
            comments.append(toks[i])
        i += 1
    return i


def _dotted(toks, i, comments, words=False):
    """The tokens of a dot-atom (or obs-local-part: words joined by "."), from i, and
    where it ends; ``words``: any run of words, as a phrase (obs-phrase allows ".")."""
    out = []
    n = len(toks)
    while i < n:
        t = toks[i]
        if t[:1] == b"(":
            i = _skip_comments(toks, i, comments)
            continue
        if t in _SPECIAL_TOKENS:
            break
        if out and not words and (out[-1][:1] == b'"' or not (out[-1].endswith(b".")
                                                                or t.startswith(b"."))):
            break       # a quoted local part ends there ("a"."b"@c: Dovecot's name "a")
        out.append(t)
        i += 1
    return out, i


def _phrase(toks):
    return b" ".join(_unquote(t) for t in toks) or None


def address_text(value):
    """An address field (bytes, folded) written back from its parsed addresses, as str.

    FROM, TO and CC search this text, not the raw field: Dovecot's SEARCH
    (index-search.c) matches message_address_write()'s form of the parsed
    list, so ``<user (c)@ (c) host>`` is found as ``user@host``.  As there,
    an entry is ``mailbox@host`` or ``name <@route:mailbox@host>``, a display
    name alone (``foo bar``) when there is neither mailbox nor host (``<>``
    if the name is one word or none, which SORT reads back as MISSING_MAILBOX);
    a group is ``group: a, b;``.  A name of more than atoms and blanks is
    quoted (``"John Q. Public" <j@x>``), so is a local part that is no
    dot-atom: the text parses back to the same addresses (SORT reads its
    first address from it).  Encoded words are decoded last (RFC 2047 §6.1).
    """
    out, members = [], None
    for name, route, mailbox, host in parse_addresses(value):
        if host is None and mailbox is not None:          # group start
            members = []
            out.append(_quoted(mailbox, _PHRASE_CHARS) + b":")
        elif host is None:                                # group end
            out[-1] += (b" " + b", ".join(members) if members else b"") + b";"
            members = None
        else:
            (out if members is None else members).append(_address_entry(name, route, mailbox, host))
    return decode_words(b", ".join(out))


def _address_entry(name, route, mailbox, host):
    spec = b"" if mailbox == MISSING_MAILBOX else _quoted(mailbox, _LOCAL_PART_CHARS)
    if host != MISSING_DOMAIN:
        spec += b"@" + host
    if spec and not name and not route:
        return spec
    if not spec and not route and name and b" " in name.strip():
        return _quoted(name, _PHRASE_CHARS)     # "foo bar": parses back as a name alone
    name = _quoted(name, _PHRASE_CHARS) + b" " if name else b""
    return name + b"<" + (route + b":" if route else b"") + spec + b">"


_ATEXT_8BIT = frozenset(         # atext (RFC 5322 §3.2.3) and 8-bit bytes, as Dovecot
    b"!#$%&'*+-/=?^_`{|}~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
) | frozenset(range(0x80, 0x100))
_PHRASE_CHARS = _ATEXT_8BIT | frozenset(b" ")        # a display name of atoms
_LOCAL_PART_CHARS = _ATEXT_8BIT | frozenset(b".")    # a dot-atom local part


def _quoted(text, plain):
    """text as message_address_write() gives it: quoted unless made of ``plain`` bytes."""
    if plain.issuperset(text):
        return text
    return b'"' + text.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


# --- Dovecot 2.3 compatible field parsing, for ENVELOPE and BODYSTRUCTURE -----
#
# What an IMAP server answers must match what a reference server answers
# (Dovecot 2.3; tests/mime/test_dovecot_reference.py), so the Content-*
# fields are read the way its lib-mail does (message-header-parser.c,
# rfc822-parser.c, rfc2231-parser.c, message-part-data.c).

_LWSP = b" \t"


def imap_value(value):
    """A header value as Dovecot's header parser hands it on (full_value with
    CLEAN_ONELINE and SKIP_INITIAL_LWSP): blanks after the colon dropped (but
    one kept if the first line is nothing else), line ends of folded lines
    removed and a TAB starting a continuation line turned into a space."""
    lines = re.split(rb"\r?\n", value)
    if len(lines) > 1 and lines[-1] == b"":
        lines.pop()
    first = lines[0]
    stripped = first.lstrip(_LWSP)
    if not stripped and first:
        stripped = first[1:]
    out = [stripped]
    for line in lines[1:]:
        if line[:1] == b"\t":
            line = b" " + line[1:]
        out.append(line)
    return b"".join(out)


# rfc822-parser.c character classes: atext (8-bit counts as atext), and the
# MIME token, which is dot-atom text without '/', '?' and '='.
_ATEXT = frozenset(b"!#$%&'*+-/=?^_`{|}~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   + bytes(range(0x80, 0x100)))
_MIME_TOKEN = (_ATEXT | frozenset(b".")) - frozenset(b"/?=")


def _run_of(chars):
    return re.compile(b"[" + b"".join(re.escape(bytes([c])) for c in sorted(chars)) + b"]*")


_ATEXT_RUN = _run_of(_ATEXT)
_MIME_TOKEN_RUN = _run_of(_MIME_TOKEN)
_QUOTED_RUN = re.compile(rb'[^"\\\n]*')


class _Rfc822:
    """The subset of Dovecot's rfc822 parser context the Content-* fields use.
    Methods return 1 (more data), 0 (end of data) or -1 (broken), as there."""

    __slots__ = ("s", "i", "n")

    def __init__(self, s):
        self.s, self.i, self.n = s, 0, len(s)

    def skip_lwsp(self):
        s, n = self.s, self.n
        while self.i < n:
            c = s[self.i]
            if c in b" \t\r\n":
                self.i += 1
            elif c == 0x28:
                depth = 0
                while True:
                    if self.i >= n:
                        return -1
                    c = s[self.i]
                    self.i += 1
                    if c == 0x5c:
                        self.i += 1
                    elif c == 0x28:
                        depth += 1
                    elif c == 0x29:
                        depth -= 1
                        if depth == 0:
                            break
            else:
                return 1
        return 0

    def _run(self, run):
        """The token matched by run (a regex of one character class, starred) at i."""
        j = run.match(self.s, self.i).end()
        tok = self.s[self.i:j]
        self.i = j
        return tok

    def mime_token(self):
        tok = self._run(_MIME_TOKEN_RUN)
        return tok, self.skip_lwsp()

    def atom(self):
        tok = self._run(_ATEXT_RUN)
        if not tok:
            return tok, -1
        return tok, self.skip_lwsp()

    def quoted_string(self):
        """Runs of plain characters are copied whole (a regex of one class: linear,
        no backtracking); a 180 KB parameter value took 0.1 s a character at a time."""
        s, n = self.s, self.n
        self.i += 1
        out = bytearray()
        while self.i < n:
            j = _QUOTED_RUN.match(s, self.i).end()
            out += s[self.i:j]
            if j >= n:
                self.i = j
                break
            c = s[j]
            self.i = j + 1
            if c == 0x22:
                return bytes(out), self.skip_lwsp()
            if c == 0x5c:
                if self.i >= n:
                    break
                out.append(s[self.i])
                self.i += 1
            elif out[-1:] == b"\r":     # LF: a folded line; drop its CR too
                out.pop()
        return bytes(out), -1

    def peek(self):
        return self.s[self.i] if self.i < self.n else None

    def content_param(self):
        """(ret, key, value) of the next ';' key '=' value."""
        if self.i >= self.n:
            return 0, None, None
        if self.s[self.i] != 0x3b:
            return -1, None, None
        self.i += 1
        if self.skip_lwsp() <= 0:
            return -1, None, None
        key, ret = self.mime_token()
        if not key or ret <= 0 or self.peek() != 0x3d:
            return -1, None, None
        self.i += 1
        ret = self.skip_lwsp()
        value = b""
        if ret > 0:
            c = self.peek()
            if c == 0x22:
                value, ret = self.quoted_string()
            elif c == 0x3d:   # name==?utf-8?b?...?= (broken, common)
                j = self.i
                while self.i < self.n and self.s[self.i] not in b"; \t\r\n":
                    self.i += 1
                value = self.s[j:self.i]
            else:
                value, ret = self.mime_token()
        return (-1 if ret < 0 else 1), key, value


def rfc2231_params(sc):
    """Dovecot's rfc2231_parse(): [(key, value)] with plain parameters first in
    their order, then key*N[*] sections sorted (by key, case-sensitively, then
    index) and merged into key / key* where the indexes run 0, 1, 2..."""
    plain, sections = [], []
    idx = 0   # as in Dovecot, a bare key* keeps the index of the previous section
    while True:
        ret, key, value = sc.content_param()
        if ret == 0:
            break
        if ret < 0:
            if sc.i >= sc.n:
                break
            sc.i += 1
            continue
        star = key.find(b"*")
        if star < 0:
            plain.append((key, value))
            continue
        p = star
        if p + 1 < len(key):
            p += 1
            j = p
            while j < len(key) and 0x30 <= key[j] <= 0x39:
                j += 1
            idx = int(key[p:j]) if j > p else 0
            p = j
        extended = p < len(key) and key[p] == 0x2a
        if extended:
            p += 1
        if p != len(key):
            plain.append((key, value))
            continue
        sections.append((key[:star], idx, extended, value))
    sections.sort(key=lambda t: (t[0], t[1]))
    out = plain
    i = 0
    while i < len(sections):
        base = sections[i][0].lower()
        j = i
        ok, have_ext = True, False
        while j < len(sections) and sections[j][0].lower() == base:
            if sections[j][1] != j - i:
                ok = False
            have_ext = have_ext or sections[j][2]
            j += 1
        group = sections[i:j]
        if not ok:
            for key, n, ext, value in group:
                out.append((key + b"*%d" % n + (b"*" if ext else b""), value))
        else:
            buf = b"''" if have_ext and not group[0][2] else b""
            for key, n, ext, value in group:
                buf += value.replace(b"%", b"%25") if have_ext and not ext else value
            out.append((group[0][0] + (b"*" if have_ext else b""), buf))
        i = j
    return out


def dovecot_content_type(value):
    """(type, subtype or None, params) of a Content-Type value as Dovecot 2.3
    reads it; a broken type gives b"" (and no parameters), except that a
    lone type at the very end of the value is kept ("text" -> type "text")."""
    sc = _Rfc822(imap_value(value))
    sc.skip_lwsp()
    if sc.skip_lwsp() <= 0:
        return b"", None, []
    mtype, ret = sc.mime_token()
    if not mtype:
        return b"", None, []
    if ret <= 0:
        return mtype, None, []
    if sc.peek() != 0x2f:
        return b"", None, []
    sc.i += 1
    if sc.skip_lwsp() <= 0:
        return b"", None, []
    sub, ret = sc.mime_token()
    if ret < 0 or not sub or (sc.i < sc.n and sc.peek() != 0x3b):
        return b"", None, []
    return mtype, sub, rfc2231_params(sc)


def dovecot_disposition(value):
    """(disposition or None, params) as Dovecot 2.3 reads Content-Disposition."""
    sc = _Rfc822(imap_value(value))
    sc.skip_lwsp()
    disp, ret = sc.mime_token()
    if ret < 0:
        return None, []
    return disp, rfc2231_params(sc)


def dovecot_encoding(value):
    """Content-Transfer-Encoding token, or None if it is not one clean token."""
    sc = _Rfc822(imap_value(value))
    sc.skip_lwsp()
    tok, ret = sc.mime_token()
    if ret < 0 or sc.skip_lwsp() != 0 or not tok:
        return None
    return tok


def dovecot_language(value):
    """Content-Language tags: atoms separated by commas, comments skipped."""
    sc = _Rfc822(value)
    sc.skip_lwsp()
    langs = []
    while True:
        tok, ret = sc.atom()
        if ret < 0:
            break
        langs.append(tok)
        if sc.peek() != 0x2c:
            break
        sc.i += 1
        sc.skip_lwsp()
    return langs
