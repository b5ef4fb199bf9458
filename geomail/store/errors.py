"""Exceptions raised by the store; callers never see pymysql's own."""


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


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
