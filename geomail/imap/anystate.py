"""Commands valid in any state: CAPABILITY, NOOP, LOGOUT (RFC 3501 §6.1) and ID (RFC 2971)."""

from geomail.imap import response as R
from geomail.imap import who
from geomail.imap.parser import ParseError
from geomail.imap.states import LOGOUT

ID_FIELDS_MAX = 30    # RFC 2971 §3.3: at most 30 field-value pairs
SERVER_ID = (("name", "geomail"), ("vendor", "geomail"), ("support-url", "https://example.invalid/geomail"))


def capability(session, p, tag):
    p.end()
    session.untagged("CAPABILITY " + " ".join(session.capabilities()))


def noop(session, p, tag):
    p.end()     # the view catches up at the command boundary


def logout(session, p, tag):
    p.end()
    who.logging_out(session)
    session.untagged("BYE geomail logging out")
    session.state = LOGOUT
    session.closing = True


def id_(session, p, tag):
    """ID (RFC 2971): read the client's list (NIL or pairs), answer with ours."""
    if not p.take("NIL"):
        p.expect("(")
        count = 0
        while not p.take(")"):
            if count:
                p.sp()
            p.string()
            p.sp()
            p.nstring()
            count += 1
            if count > ID_FIELDS_MAX:
                raise ParseError("too many ID fields")
    p.end()
    session.untagged(b"ID (" + b" ".join(R.string(k) + b" " + R.string(v) for k, v in SERVER_ID) + b")")
