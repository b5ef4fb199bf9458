"""Parsing of MAIL FROM / RCPT TO arguments (RFC 5321 section 4.1.2, RFC 6531).

``parse_path("<a@b.example> SIZE=10", ...)`` gives the mailbox and the ESMTP
parameters.  Local parts may be dot-strings or quoted strings; with
SMTPUTF8, UTF-8 is allowed in both halves.  Source routes (``<@a,@b:x@y>``)
are accepted and ignored, as RFC 5321 section 4.1.1.3 asks.
"""

import re

MAX_LOCAL_PART = 64            # RFC 5321 section 4.5.3.1.1
MAX_DOMAIN = 255               # RFC 5321 section 4.5.3.1.2
MAX_PATH = 256                 # RFC 5321 section 4.5.3.1.3

_ATEXT = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
_DOT_STRING = re.compile(rf"^[{_ATEXT}]+(\.[{_ATEXT}]+)*$")
_DOT_STRING_UTF8 = re.compile(rf"^[{_ATEXT}\u0080-\U0010ffff]+(\.[{_ATEXT}\u0080-\U0010ffff]+)*$")
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_LABEL_UTF8 = re.compile(r"^[A-Za-z0-9\u0080-\U0010ffff]([A-Za-z0-9\u0080-\U0010ffff-]*"
                         r"[A-Za-z0-9\u0080-\U0010ffff])?$")
_QUOTED_OK = re.compile(r'^[\x20-\x7e\u0080-\U0010ffff]*$')
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_PARAM_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


class AddressError(ValueError):
    """The argument is not a valid path; the message says why."""


class Mailbox:
    """local@domain as received; ``key`` is the form accounts are looked up by."""

    __slots__ = ("local", "domain", "quoted")

    def __init__(self, local, domain, quoted=False):
        self.local = local
        self.domain = domain
        self.quoted = quoted

    def __str__(self):
        return f"{self.local_text()}@{self.domain}"

    def local_text(self):
        if not self.quoted:
            return self.local
        escaped = self.local.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'

    @property
    def key(self):
        """Lower-cased address; a quoted local part that needs no quotes loses them."""
        local = self.local if (not self.quoted or _DOT_STRING_UTF8.match(self.local)) \
            else self.local_text()
        return f"{local}@{self.domain}".lower()

    @property
    def is_ascii(self):
        return str(self).isascii()


def parse_path(text, keyword, allow_null=False, utf8=False):
    """Split "KEYWORD:<path> params" -> (Mailbox or None for <>, {PARAM: value or None})."""
    head, sep, rest = text.partition(":")
    if not sep or head.strip().upper() != keyword:
        raise AddressError(f"Syntax: {keyword}:<address>")
    rest = rest.lstrip(" ")
    if not rest.startswith("<"):
        raise AddressError("Address must be in angle brackets")
    path, params = _split_path(rest)
    if len(path) > MAX_PATH + 2:
        raise AddressError("Path too long")
    inner = path[1:-1]
    if inner == "":
        if not allow_null:
            raise AddressError("Null address not allowed here")
        return None, parse_params(params)
    if inner.startswith("@"):          # source route: <@a.example,@b.example:user@c.example>
        colon = inner.find(":")
        if colon < 0:
            raise AddressError("Bad source route")
        inner = inner[colon + 1:]
    return parse_mailbox(inner, utf8), parse_params(params)


def _split_path(text):
    """'<...> rest' -> ('<...>', 'rest'), honouring quotes inside the brackets."""
    if '"' not in text:                # no quotes: the first '>' ends the path
        end = text.find(">")
        if end < 0:
            raise AddressError("Missing closing angle bracket")
        return text[:end + 1], text[end + 1:].strip()
    return _split_quoted_path(text)


def _split_quoted_path(text):
    """_split_path, character by character: a '>' inside quotes is not the end."""
    quoted = escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ">" and not quoted:
            return text[:index + 1], text[index + 1:].strip()
    raise AddressError("Missing closing angle bracket")


# Mailboxes parsed lately, by (text, utf8): mail comes again and again from and to
# the same addresses.  A Mailbox is never changed once made, so one may be shared.
_parsed = {}
_PARSED_ENTRIES = 4096


def parse_mailbox(text, utf8=False):
    """A Mailbox from 'local@domain'; raises AddressError."""
    key = (text, utf8)
    found = _parsed.get(key)
    if found is None:
        found = _parse_mailbox(text, utf8)      # errors are not kept: they raise again
        if len(_parsed) >= _PARSED_ENTRIES:
            _parsed.clear()
        _parsed[key] = found
    return found


def _parse_mailbox(text, utf8):
    if text.startswith('"'):
        local, rest = _quoted_local(text)
        if not rest.startswith("@"):
            raise AddressError("Missing @ after the quoted local part")
        domain, quoted = rest[1:], True
        if not _QUOTED_OK.match(local) or (not utf8 and not local.isascii()):
            raise AddressError("Bad character in the local part")
    else:
        local, at, domain = text.rpartition("@")
        if not at:
            raise AddressError("Address must be local@domain")
        quoted = False
        pattern = _DOT_STRING_UTF8 if utf8 else _DOT_STRING
        if not pattern.match(local):
            raise AddressError("Bad local part")
    if len(local.encode("utf-8")) > MAX_LOCAL_PART:
        raise AddressError("Local part too long")
    return Mailbox(local, _domain(domain, utf8), quoted)


def _quoted_local(text):
    out, index, escaped = [], 1, False
    while index < len(text):
        char = text[index]
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return "".join(out), text[index + 1:]
        else:
            out.append(char)
        index += 1
    raise AddressError("Unterminated quoted local part")


def _domain(domain, utf8):
    if not domain or len(domain.encode("utf-8")) > MAX_DOMAIN:
        raise AddressError("Bad domain")
    if domain.startswith("[") and domain.endswith("]"):
        literal = domain[1:-1]
        if _IPV4.match(literal) and all(int(x) < 256 for x in literal.split(".")):
            return domain
        if literal.lower().startswith("ipv6:"):
            return domain.lower()
        raise AddressError("Bad address literal")
    pattern = _LABEL_UTF8 if utf8 else _LABEL
    labels = domain.rstrip(".").split(".")
    if not all(pattern.match(label) for label in labels):
        raise AddressError("Bad domain")
    return domain.rstrip(".").lower()


def parse_params(text):
    """'SIZE=100 BODY=8BITMIME SMTPUTF8' -> {'SIZE': '100', 'BODY': '8BITMIME', 'SMTPUTF8': None}."""
    params = {}
    for item in text.split():
        key, sep, value = item.partition("=")
        if not _PARAM_KEY.match(key) or (sep and not value):
            raise AddressError(f"Bad parameter {item!r}")
        params[key.upper()] = value if sep else None
    return params
