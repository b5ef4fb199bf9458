"""Verified credentials, remembered per worker so a client that logs in again skips scrypt.

As Dovecot's ``auth_cache``: the key is a keyed hash (HMAC-SHA256 with a
secret made in this process) of the user name and the password, so the
cache never holds a password and cannot be read back into one.  An entry
remembers the stored password hash it was checked against: the login path
reads the account's row anyway (store/accounts.login_lookup), and an entry
whose hash is no longer the stored one does not count, so a password
changed on any host invalidates it at once.  Wrong passwords are remembered
too, briefly (NEGATIVE_TTL), and still go through the login throttle and
its delays (auth.py); a right one known here logs in without the throttle's
writes, if neither budget is spent (auth._authenticate).  Bounded:
MAX_ENTRIES, least recently used first out.
"""

import collections
import hashlib
import hmac
import secrets
import time

MAX_ENTRIES = 10000
POSITIVE_TTL = 3600.0          # seconds; Dovecot's auth_cache_ttl default is 1 hour
NEGATIVE_TTL = 60.0


class CredentialCache:
    def __init__(self, max_entries=MAX_ENTRIES, positive_ttl=POSITIVE_TTL,
                 negative_ttl=NEGATIVE_TTL, clock=time.monotonic):
        self.secret = secrets.token_bytes(32)
        self.entries = collections.OrderedDict()   # key -> (stored hash, verdict, expiry)
        self.max_entries = max_entries
        self.ttl = {True: positive_ttl, False: negative_ttl}
        self.clock = clock
        self.hits = self.misses = 0

    def key(self, user, password):
        message = user.strip().lower().encode("utf-8") + b"\0" + password.encode("utf-8")
        return hmac.new(self.secret, message, hashlib.sha256).digest()

    def verdict(self, user, password, stored_hash):
        """True/False when this password was checked against ``stored_hash`` lately, else None."""
        key = self.key(user, password)
        entry = self.entries.get(key)
        if entry is None or entry[0] != stored_hash or entry[2] < self.clock():
            if entry is not None:
                del self.entries[key]
            self.misses += 1
            return None
        self.entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def remember(self, user, password, stored_hash, verdict):
        key = self.key(user, password)
        self.entries[key] = (stored_hash, bool(verdict), self.clock() + self.ttl[bool(verdict)])
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)


_cache = None


def cache():
    """This process's cache (made on first use: after fork, with a secret of its own)."""
    global _cache
    if _cache is None:
        _cache = CredentialCache()
    return _cache
