"""Not-authenticated state: STARTTLS, LOGIN, AUTHENTICATE PLAIN with SASL-IR (RFC 3501 §6.2, RFC 4959)."""

import base64
import binascii
import logging

import gevent

from geomail.imap import response as R
from geomail.imap.errors import Bad, Bye, CommandError
from geomail.imap.states import AUTHENTICATED
from geomail import passwords
from geomail.store.accounts import get_account
from geomail.store.accounts import login_record

log = logging.getLogger("geomail.imap")

FAILURE_DELAY = 0.5     # seconds after the first failure, doubled after each further one
MAX_FAILURE_DELAY = 5.0
ANSWERED = object()     # a handler that already sent its tagged response


def starttls(session, p, tag):
    """RFC 3501 §6.2.1: OK, then the TLS handshake; input buffered before it is discarded."""
    p.end()
    if session.context.tls_context is None:
        raise CommandError("TLS is not configured on this server", R.CANNOT)
    if session.tls:
        raise Bad("TLS is already active")
    session.tagged(tag, "OK", "Begin TLS negotiation now")
    session.out.flush()
    conn = session.conn
    conn.buffer.clear()     # RFC 3207-style: nothing sent before the handshake may count
    timeout = conn.sock.gettimeout()
    try:
        conn.sock = session.context.tls_context.wrap_socket(conn.sock, server_side=True)
    except OSError as exc:
        raise Bye(f"TLS handshake failed: {exc}") from None
    conn.sock.settimeout(timeout)
    session.tls = True
    return ANSWERED


def login(session, p, tag):
    user = p.astring_str()
    p.sp()
    password = p.astring_str()
    p.end()
    if session.login_disabled():
        raise CommandError("Use STARTTLS before LOGIN", R.PRIVACYREQUIRED)
    return _authenticate(session, user, password)


def authenticate(session, p, tag):
    """AUTHENTICATE PLAIN [initial-response] (RFC 4616, SASL-IR RFC 4959)."""
    mechanism = p.atom("SASL mechanism").upper()
    initial = None
    if p.take(" "):
        initial = p.atom("initial response")
    p.end()
    if mechanism != "PLAIN":
        raise CommandError(f"Unsupported SASL mechanism {mechanism}", R.CANNOT)
    if session.login_disabled():
        raise CommandError("Use STARTTLS before AUTHENTICATE", R.PRIVACYREQUIRED)
    if initial is None:
        session.out.line(b"+ ")
        session.out.flush()
        line = p.next_line()
        p.pos = len(line)
        initial = line.decode("ascii", "replace").strip()
        if initial == "*":
            raise Bad("AUTHENTICATE cancelled")
    try:
        data = base64.b64decode(initial, validate=True) if initial != "=" else b""
    except (binascii.Error, ValueError):
        raise Bad("Invalid base64 in SASL response") from None
    fields = data.split(b"\0")
    if len(fields) != 3:
        raise Bad("Malformed SASL PLAIN response")
    try:
        authzid, user, password = (f.decode("utf-8") for f in fields)
    except UnicodeDecodeError:
        raise Bad("SASL PLAIN response is not UTF-8") from None
    if authzid and authzid.lower() != user.lower():
        raise CommandError("Authorization as another user is not allowed", R.AUTHORIZATIONFAILED)
    return _authenticate(session, user, password)


def _verify(db, user, password):
    """The Account when the password is right, else None (same cost either way).

    The lookup runs here (pooled connections belong to this thread's hub);
    scrypt (~50 ms of CPU, GIL released) runs in the hub's threadpool so the
    worker's other greenlets go on meanwhile.
    """
    record = login_record(db, user)
    pool = gevent.get_hub().threadpool
    if record is None or record[1] is None:
        pool.apply(passwords.burn_time)
        return None
    if not pool.apply(passwords.verify_password, (password, record[1])):
        return None
    return get_account(db, user)


def _authenticate(session, user, password):
    account = _verify(session.context.db, user, password)
    if account is None:
        session.login_failures += 1
        limit = int(getattr(session.config, "max_login_failures", 3))
        log.info("IMAP login failed for %r from %s", user, session.address)
        gevent.sleep(min(MAX_FAILURE_DELAY, FAILURE_DELAY * 2 ** (session.login_failures - 1)))
        if session.login_failures >= limit:
            raise Bye("Too many failed logins", R.AUTHENTICATIONFAILED)
        raise CommandError("Authentication failed", R.AUTHENTICATIONFAILED)
    session.account = account
    session.state = AUTHENTICATED
    log.info("IMAP login %s from %s", account.address, session.address)
    return R.CAPABILITY + " " + " ".join(session.capabilities()), "Logged in"
