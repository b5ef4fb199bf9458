"""Header fields: splitting a header block, MIME parameters, encoded words, addresses.

Values are kept as bytes as received (8-bit allowed); helpers unfold and
decode them where a caller needs text.
"""

import re
import urllib.parse
from email.header import decode_header

# Python's email feedparser: a line that is not a header line ends the block.
HEADER_LINE = re.compile(rb"From |[\041-\071\073-\176]*:|[ \t]")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_TOKEN_CHARS = frozenset(b"!#$%&'*+-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz{|}~")


def split_fields(block):
    """[(lower-case name, value bytes)] of a header block; value keeps its folding.

    Follows email.feedparser: continuation lines join the previous field, a
    line without a colon is skipped (a defect), the first 'From ' line too.
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


def decode_words(value):
    """RFC 2047 decoding of an unfolded header value (bytes or str) to str."""
    if isinstance(value, bytes):
        value = to_text(value)
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
                    text = part.decode(_charset(charset), "replace")
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


def _charset(name):
    import codecs
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"


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
                cs = _charset(charset.decode("latin-1")) if charset else "utf-8"
                try:
                    return raw.decode(cs)
                except UnicodeDecodeError:
                    return raw.decode(cs, "replace")
            return to_text(urllib.parse.unquote_to_bytes(val))
    return None


# --- Addresses (RFC 5322 §3.4) for the IMAP ENVELOPE -----------------------------

_ADDR_TOKEN = re.compile(
    rb'\s+|"(?:[^"\\]|\\.)*"?|\((?:[^()\\]|\\.)*\)?|[<>@,;:.\[\]]|[^\s"(<>@,;:.\[\]]+',
    re.S)

MISSING_MAILBOX = b"MISSING_MAILBOX"
MISSING_DOMAIN = b"MISSING_DOMAIN"


def _unquote(tok):
    if tok[:1] == b'"':
        body = tok[1:-1] if tok.endswith(b'"') and len(tok) > 1 else tok[1:]
        return re.sub(rb"\\(.)", rb"\1", body)
    return tok


def parse_addresses(value):
    """[(name, route, mailbox, host)] (bytes or None) per RFC 3501 §7.4.2,
    group start (None, None, group, None) and end (None, None, None, None)."""
    toks = [t for t in _ADDR_TOKEN.findall(unfold(value)) if not t.isspace()]
    out = []
    i, n = 0, len(toks)
    in_group = False
    while i < n:
        # collect one address: up to ',' (or ';' ending a group)
        j = i
        depth = 0
        while j < n:
            t = toks[j]
            if t == b"<":
                depth += 1
            elif t == b">":
                depth = max(0, depth - 1)
            elif depth == 0 and (t == b"," or (t == b";" and in_group) or (t == b":" and not in_group and b"<" not in toks[i:j] and b"@" not in toks[i:j])):
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
        i = j + 1
    if in_group:
        out.append((None, None, None, None))
    return out


def _one_address(toks):
    comments = [t for t in toks if t[:1] == b"("]
    toks = [t for t in toks if t[:1] != b"("]
    if not toks:
        return None
    route = None
    if b"<" in toks:
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
    else:
        inner = toks
        name = None
    if b"@" in inner:
        k = len(inner) - 1 - inner[::-1].index(b"@")
        mailbox = b"".join(_unquote(t) if t[:1] == b'"' else t for t in inner[:k])
        host = b"".join(inner[k + 1:])
    else:
        mailbox = b"".join(_unquote(t) if t[:1] == b'"' else t for t in inner)
        host = b""
    if name is None and comments:
        c = comments[-1]
        name = c[1:-1] if c.endswith(b")") else c[1:]
        name = name.strip() or None
    return (name, route, mailbox or MISSING_MAILBOX, host or MISSING_DOMAIN)


def _phrase(toks):
    words = []
    for t in toks:
        if t == b".":
            if words:
                words[-1] += b"."
                continue
        words.append(_unquote(t))
    return b" ".join(words) or None
