"""Exceptions raised by the store; callers never see pymysql's or sqlite3's own.

The backends turn their driver's failures into ``StoreUnavailable`` (try
again later) and ``StoreRejected`` (this value can never be stored) at the
edge of every connection they hand out (``Database.connection``, the SQLite
cursor); anything else that escapes is a bug (geomail/errors.py ``classify``).
"""

import sys

from geomail.errors import PermanentFailure, TemporaryFailure


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class StoreUnavailable(StoreError, TemporaryFailure):
    """The database cannot answer now: connection lost or refused, deadlock, lock
    wait timeout, a busy or unreadable file, a full disk.

    ``retryable``: the transaction was rolled back whole and may simply run
    again (deadlock, lock wait, busy).  ``outcome_unknown``: the connection
    was lost during the request, so a COMMIT may or may not have happened.
    """

    def __init__(self, message, retryable=False, outcome_unknown=False, code=None):
        super().__init__(message)
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown
        self.code = code


class StoreRejected(StoreError, PermanentFailure):
    """The database refuses this value whatever the retry (too long, out of range, invalid)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


def is_duplicate_key(exc):
    """Whether ``exc`` is a UNIQUE/PRIMARY KEY violation, on either backend."""
    pymysql_err = sys.modules.get("pymysql.err")
    if pymysql_err is not None and isinstance(exc, pymysql_err.IntegrityError):
        return bool(exc.args) and exc.args[0] == 1062
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.IntegrityError):
        text = str(exc).lower()
        return "unique" in text or "primary key" in text
    return False


class InvalidAddress(StoreError, ValueError):
    """An address that is not local@domain."""


class AccountExists(StoreError):
    """create_account for an address that already has an account."""


class AccountNotFound(StoreError, LookupError):
    """An operation on an address that has no account."""


class InvalidMailboxName(StoreError, ValueError):
    """A mailbox name the store refuses (empty, bad hierarchy, control characters)."""


class MailboxExists(StoreError):
    """create_mailbox for a name the account already has."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer geomail than this one."""

    def __init__(self, database_version, code_version):
        self.database_version = database_version
        self.code_version = code_version
        super().__init__(
            f"database schema version {database_version} is newer than this geomail knows "
            f"(latest {code_version}); run the newer geomail or point --db-url at another database")


class SchemaTooOld(StoreError):
    """The database needs `geomail-admin migrate` before this geomail can use it."""

    def __init__(self, database_version, code_version):
        self.database_version = database_version
        self.code_version = code_version
        super().__init__(
            f"database schema version {database_version} is older than this geomail needs "
            f"({code_version}); run `geomail-admin migrate`")


class MigrationLockTimeout(StoreError):
    """Another host held the migration lock for too long."""
