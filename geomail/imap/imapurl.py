"""IMAP URLs of one message or part (RFC 5092), as CATENATE uses them (RFC 4469 §5).

Three forms are accepted, all naming a message of the logged-in account:

* absolute: ``imap://[user[;AUTH=x]@]host[:port]/Mailbox[;UIDVALIDITY=n]/;UID=u...``,
  where user, if given, must be the account and host this server's name;
* relative to the server (RFC 3986 §4.2 absolute-path reference):
  ``/Mailbox[;UIDVALIDITY=n]/;UID=u...``;
* relative to the selected mailbox: ``;UID=u...`` (RFC 5092 §7, iuid-only).

After the UID come an optional ``/;SECTION=s`` and ``/;PARTIAL=o[.l]`` (the
slash before them is optional, as in RFC 4469's own example).  URLAUTH
(RFC 4467) is not supported: a URL carrying it is refused.  Parsing is by
splitting on fixed separators, never a backtracking regex; every failure is
``BadUrl``, which becomes NO [BADURL url].
"""

import dataclasses
import urllib.parse

MAX_URL = 4096                 # bytes: a longer URL names nothing we hold
MAX_ECHO = 200                 # characters of the URL echoed in [BADURL ...]


class BadUrl(Exception):
    """The URL is not one this server can resolve (RFC 4469 §3: NO [BADURL])."""


@dataclasses.dataclass(frozen=True)
class MessageUrl:
    mailbox: bytes             # percent-decoded, still in wire form (None: the selected one)
    uidvalidity: int           # None when the URL does not say
    uid: int
    section: bytes             # b"" for the whole message
    partial: tuple             # (offset, length or None), or None


def echo(url):
    """The URL as it may appear in the response code: printable ASCII, no ']', cut."""
    text = url.decode("ascii", "replace") if isinstance(url, bytes) else str(url)
    text = "".join(c if "!" <= c <= "~" and c != "]" else "?" for c in text[:MAX_ECHO])
    return text or "?"


def parse(url, hostname, user):
    """A MessageUrl from the bytes of a URL; BadUrl when it is not one we resolve."""
    if len(url) > MAX_URL or not url.isascii():
        raise BadUrl("URL too long or not US-ASCII")
    text = url.decode("ascii")
    if text[:7].lower() == "imap://":
        text = _server_path(text[7:], hostname, user)
    if text.startswith("/"):
        mailbox_ref, sep, rest = text[1:].partition("/")
        if not sep or not mailbox_ref:
            raise BadUrl("expected /mailbox/;UID=")
        mailbox, uidvalidity = _mailbox_ref(mailbox_ref)
    elif text[:5].upper() == ";UID=":
        mailbox, uidvalidity, rest = None, None, text
    else:
        raise BadUrl("not an IMAP URL of a message")
    uid, section, partial = _message_part(rest)
    return MessageUrl(mailbox, uidvalidity, uid, section, partial)


def _server_path(rest, hostname, user):
    """After "imap://": check the authority (user, host) and return the path."""
    authority, sep, path = rest.partition("/")
    if not sep:
        raise BadUrl("no mailbox in the URL")
    userinfo, at, hostport = authority.rpartition("@")
    if at:
        name = urllib.parse.unquote(userinfo.partition(";")[0])
        if name and name.lower() != user.lower():
            raise BadUrl("the URL names another user")
    host = hostport.rpartition(":")[0] if ":" in hostport else hostport
    if host.lower() != hostname.lower():
        raise BadUrl("the URL names another server")
    return "/" + path


def _mailbox_ref(ref):
    """'name[;UIDVALIDITY=n]' -> (percent-decoded name bytes, n or None)."""
    name, sep, param = ref.partition(";")
    uidvalidity = None
    if sep:
        key, eq, value = param.partition("=")
        if key.upper() != "UIDVALIDITY" or not eq:
            raise BadUrl(f"unexpected ;{key} after the mailbox")
        uidvalidity = _nz_number(value)
    return urllib.parse.unquote_to_bytes(name), uidvalidity


def _message_part(rest):
    """';UID=u[/;SECTION=s][/;PARTIAL=o[.l]]' -> (uid, section bytes, partial)."""
    if not rest.startswith(("/;", ";")):
        _no_uid()
    params = {}
    for piece in rest.replace("/;", ";").split(";")[1:]:
        key, eq, value = piece.partition("=")
        key = key.upper()
        if not eq or key in params or key not in ("UID", "SECTION", "PARTIAL"):
            raise BadUrl(f"unsupported or repeated ;{key}" if key else "empty URL parameter")
        params[key] = value
    if "UID" not in params:
        _no_uid()
    section = urllib.parse.unquote_to_bytes(params.get("SECTION", ""))
    partial = None
    if "PARTIAL" in params:
        offset, dot, length = params["PARTIAL"].partition(".")
        partial = (_number(offset), _nz_number(length) if dot else None)
    return _nz_number(params["UID"]), section, partial


def _no_uid():
    raise BadUrl("the URL names no message (;UID=)")


def _number(value):
    if not value.isdigit() or not value.isascii() or len(value) > 10:
        raise BadUrl(f"expected a number, not {value!r}")
    number = int(value)
    if number >= 2 ** 32:
        raise BadUrl("number too large")
    return number


def _nz_number(value):
    number = _number(value)
    if number == 0:
        raise BadUrl("zero is not a valid number here")
    return number
