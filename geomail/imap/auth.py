"""Not-authenticated state: STARTTLS, LOGIN, AUTHENTICATE PLAIN with SASL-IR (RFC 3501 §6.2, RFC 4959)."""

import base64
import binascii
import ipaddress
import itertools
import logging

import gevent

from geomail.imap import authcache
from geomail.imap import response as R
from geomail.imap import who
from geomail.imap.errors import Bad, Bye, CommandError
from geomail.imap.states import AUTHENTICATED
from geomail import passwords
from geomail.logs import clip
from geomail.store import logins
from geomail.store.accounts import login_lookup, normalize_address
from geomail.store.errors import InvalidAddress

log = logging.getLogger("geomail.imap")

FAILURE_DELAY = 0.5     # seconds after the first failure, doubled after each further one
MAX_FAILURE_DELAY = 5.0
LOGIN_FAILURE_WINDOW = 900  # seconds a failed attempt counts against the shared budgets
USER_LOG_LIMIT = 100        # characters of a failed login's user name written to the log
PURGE_EVERY = 64
_attempt_counter = itertools.count(1)
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
    return _authenticate(session, user, password, "AUTHENTICATE PLAIN")


def _cached_verdict(user, password, account, stored_hash):
    """The credential cache's verdict (authcache.py) for this password and stored hash:
    True, False, or None when it does not know."""
    if account is None or stored_hash is None:
        return None
    return authcache.cache().verdict(user, password, stored_hash)


def _verify(user, password, account, stored_hash, known):
    """(the Account when the password is right, else None; whether the verdict came
    from the worker's credential cache: ``known``, _cached_verdict's answer).

    scrypt (~50 ms of CPU, GIL released) runs in the hub's threadpool so the
    worker's other greenlets go on meanwhile, unless the cache knew.  An
    unknown account costs a scrypt's time always.
    """
    pool = gevent.get_hub().threadpool
    if account is None or stored_hash is None:
        pool.apply(passwords.burn_time)
        return None, False
    cached = known is not None
    if not cached:
        known = pool.apply(passwords.verify_password, (password, stored_hash))
        authcache.cache().remember(user, password, stored_hash, known)
    return (account if known else None), cached


def _authenticate(session, user, password, method="LOGIN"):
    """LOGIN and AUTHENTICATE PLAIN alike: throttled, then checked (see ``LoginThrottle``).

    One request finds the account, its password hash and the throttle's counts.
    A password the worker's credential cache knows to be right for that hash
    logs in at once if neither budget is spent (a right password's attempt is
    given back anyway, so it need not be counted); any other is counted before
    it is checked."""
    db = session.context.db
    throttle = LoginThrottle(session.config)
    keys = throttle.keys(user, session.address)
    account, stored_hash, counts = login_lookup(db, user, keys, LOGIN_FAILURE_WINDOW)
    known = _cached_verdict(user, password, account, stored_hash)
    if known and not throttle.over_budget({key: count + 1 for key, count in counts.items()}):
        return _logged_in(session, account, method, cached=True)
    attempts = logins.reserve(db, keys, LOGIN_FAILURE_WINDOW)
    throttle.purge_now_and_then(db)
    over = throttle.over_budget(attempts)
    account, cached = (None, False) if over else _verify(user, password, account,
                                                         stored_hash, known)
    if account is None:
        return _failed(session, user, throttle, attempts, over)
    logins.refund(db, keys)
    return _logged_in(session, account, method, cached)


def _logged_in(session, account, method, cached):
    session.account = account
    session.state = AUTHENTICATED
    who.logged_in(session)
    session.log.info("IMAP login %s from %s (%s%s%s)", clip(account.address, USER_LOG_LIMIT),
                     _ip(session.address), method, ", TLS" if session.tls else "",
                     ", cached credentials" if cached else "")
    return R.CAPABILITY + " " + " ".join(session.capabilities()), "Logged in"


def _failed(session, user, throttle, attempts, over):
    """Log, wait (without holding the loop), then NO, or BYE past --max-login-failures."""
    session.login_failures += 1
    delay = throttle.delay(session.login_failures, attempts, over)
    session.log.info("IMAP login failed for %s from %s: %s; answered after %.1f s",
             clip(user, USER_LOG_LIMIT), _ip(session.address),
             "over budget, password not checked" if over else "wrong password or no such account",
             delay)
    gevent.sleep(delay)
    limit = int(getattr(session.config, "max_login_failures", 3))
    if session.login_failures >= limit:
        raise Bye("Too many failed logins", R.AUTHENTICATIONFAILED)
    raise CommandError("Authentication failed", R.AUTHENTICATIONFAILED)


def _ip(address):
    """The host part of a peer address ((host, port, ...) tuple or text)."""
    if isinstance(address, (tuple, list)) and address:
        return str(address[0])
    return str(address)


def address_subject(address):
    """The throttled unit of a client address: IPv4 as is, IPv6 by its /64 (one subscriber's)."""
    host = _ip(address)
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host[:logins.MAX_SUBJECT_LENGTH]
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class LoginThrottle:
    """Budgets of failed logins per account and per client address, shared through the store.

    Every attempt is counted against both subjects *before* the password is
    checked (an atomic reservation, so 20 connections on two workers cannot
    all slip under the budget at once) and given back when it succeeds.
    Once either count passes its budget the password is no longer checked:
    the answer is NO after the longest delay, right password or not, so a
    guesser learns nothing more until the window (15 minutes from the first
    counted attempt) ends.  That is also how a locked-out user recovers: by
    waiting for the window to pass (or an operator deleting the row).

    A success gives back only its own attempt: it neither clears the
    account's earlier failures (a user logging in often would otherwise
    renew a guesser's budget) nor the address's failures against other
    accounts (an attacker logging into an account of their own between
    guesses would otherwise reset their address's count).

    The delay before each NO grows with the failures seen: doubling per
    failure on the connection, as before, and in proportion to how much of
    either shared budget is used, up to MAX_FAILURE_DELAY.
    """

    def __init__(self, config):
        self.account_budget = int(getattr(config, "max_account_login_failures", 10))
        self.address_budget = int(getattr(config, "max_address_login_failures", 50))

    @staticmethod
    def keys(user, address):
        """[(kind, subject)]: the address always, the account when the name could be one."""
        keys = [(logins.ADDRESS, address_subject(address))]
        try:
            keys.append((logins.ACCOUNT, normalize_address(user)))
        except InvalidAddress:
            pass   # no account has this name; the address budget covers such guesses
        return keys

    def _budget(self, key):
        return self.account_budget if key[0] == logins.ACCOUNT else self.address_budget

    def over_budget(self, attempts):
        return any(count > self._budget(key) for key, count in attempts.items())

    def delay(self, connection_failures, attempts, over):
        if over:
            return MAX_FAILURE_DELAY
        per_connection = FAILURE_DELAY * 2 ** (connection_failures - 1)
        used = max((count / self._budget(key) for key, count in attempts.items()), default=0.0)
        return min(MAX_FAILURE_DELAY, max(per_connection, MAX_FAILURE_DELAY * used))

    @staticmethod
    def purge_now_and_then(db):
        """Delete passed windows' rows every PURGE_EVERY attempts of this worker."""
        if next(_attempt_counter) % PURGE_EVERY == 0:
            logins.purge_expired(db, LOGIN_FAILURE_WINDOW)
