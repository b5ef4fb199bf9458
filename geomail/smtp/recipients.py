"""Which local mailbox an RCPT TO address delivers to, cached per worker.

A recipient is looked up (or, with --auto-create-accounts, created with its
standard mailboxes) once, then kept for a short time: a load of mail to the
same address costs no query per RCPT.  A delivery that finds the mailbox
gone (account deleted meanwhile) forgets the entry.
"""

import time

from geomail.store import delivery as sql
from geomail.store.accounts import ensure_account

TTL = 60.0
MAX_ENTRIES = 10000


class RecipientDirectory:
    def __init__(self, db, auto_create):
        self.db = db
        self.auto_create = auto_create
        self._cache = {}

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

    def forget(self, address):
        self._cache.pop(address, None)
