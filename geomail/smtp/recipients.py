"""Which local mailbox an RCPT TO address delivers to, cached per worker.

A recipient is looked up (or, with --auto-create-accounts, created with its
standard mailboxes) once, then kept for a short time: a load of mail to the
same address costs no query per RCPT.  A delivery that finds the mailbox
gone (account deleted meanwhile) forgets the entry.

The quota check at RCPT (``quota``) is cached only for accounts without
limits, and only for LIMITS_TTL seconds: most accounts have none, and their
check was one MySQL round trip per message (py-spy: 12% of a worker's time
under smtp-source).  A limit set on such an account is therefore enforced
by SMTP from at most LIMITS_TTL seconds later; an account with a limit has
its usage read at every RCPT, as before (geomail/store/quota.py).
"""

import time

from geomail.store import delivery as sql
from geomail.store.accounts import ensure_account
from geomail.store.quota import Quota, get_quota

TTL = 60.0
LIMITS_TTL = 2.0
MAX_ENTRIES = 10000
_NO_LIMITS = Quota(None, None)


class RecipientDirectory:
    def __init__(self, db, auto_create, limits_ttl=LIMITS_TTL):
        self.db = db
        self.auto_create = auto_create
        self.limits_ttl = limits_ttl
        self._cache = {}
        self._unlimited = {}           # account_id -> monotonic time its "no limits" expires

    def lookup(self, address):
        """(account_id, inbox_id), or None for an unknown address; raises on storage errors."""
        entry = self._cache.get(address)
        now = time.monotonic()
        if entry and entry[1] > now:
            return entry[0]
        found = sql.inbox_of(self.db, address)
        if found is None and self.auto_create:
            ensure_account(self.db, address)
            found = sql.inbox_of(self.db, address)
        if found is not None:
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.clear()
            self._cache[address] = (found, now + TTL)
        return found

    def quota(self, account_id):
        """The account's Quota (None: no such account) for the check at RCPT; an
        account found without limits is taken to have none for ``limits_ttl`` seconds."""
        now = time.monotonic()
        if self._unlimited.get(account_id, 0.0) > now:
            return _NO_LIMITS
        quota = get_quota(self.db, account_id)
        if quota is not None and not quota.limited:
            if len(self._unlimited) >= MAX_ENTRIES:
                self._unlimited.clear()
            self._unlimited[account_id] = now + self.limits_ttl
        return quota

    def forget(self, address):
        entry = self._cache.pop(address, None)
        if entry is not None:
            self._unlimited.pop(entry[0][0], None)
