"""Mailbox name arguments: modified UTF-7 on the wire, UTF-8 in the store (RFC 3501 §5.1).

After ENABLE UTF8=ACCEPT the wire form is UTF-8 itself and modified UTF-7 is
no longer decoded (RFC 6855 §3): "&Jjo-" is then a name of five characters.
The parser carries the switch (``Parser.utf8``) since it is a rule of the
grammar for the rest of the session.
"""

from geomail.imap import mutf7
from geomail.imap.errors import CommandError
from geomail.imap import response as R
from geomail.store.errors import InvalidMailboxName
from geomail.store.mailboxes import normalize_name


def decode_name(raw, utf8=False):
    """Wire bytes -> UTF-8 str; raises CommandError.  ``utf8``: UTF8=ACCEPT is on."""
    if utf8:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError("Mailbox name is not UTF-8", R.CANNOT) from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        try:
            return raw.decode("utf-8")     # lenient: some clients send raw UTF-8
        except UnicodeDecodeError:
            raise CommandError("Mailbox name is neither modified UTF-7 nor UTF-8", R.CANNOT) from None
    try:
        return mutf7.decode(text)
    except mutf7.InvalidName as exc:
        raise CommandError(str(exc), R.CANNOT) from None


def mailbox_arg(p):
    """A mailbox argument, normalised (INBOX in any case is INBOX); raises CommandError."""
    name = decode_name(p.astring(), p.utf8)
    try:
        return normalize_name(name)
    except InvalidMailboxName as exc:
        raise CommandError(str(exc), R.CANNOT) from None
