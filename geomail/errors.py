"""Typed storage failures: what a protocol session needs to know about an exception.

A failure of MySQL or the blob store is one of three kinds (in the manner of
Dovecot's MAIL_ERROR_TEMP / MAIL_ERROR_NOTPOSSIBLE and mox's user/server
errors):

- ``TEMPORARY``: the same request may succeed later (connection lost,
  deadlock, lock wait timeout, S3 5xx or unreachable).  SMTP answers
  ``451 4.3.0``, IMAP ``NO [UNAVAILABLE]``.
- ``PERMANENT``: this input can never be stored (a value the schema refuses).
  Retrying would fail the same way: SMTP answers ``554 5.6.0``, IMAP ``NO``
  with a code that says so.
- ``BUG``: anything else.  Logged with its traceback; IMAP answers
  ``NO [SERVERBUG]`` and the session goes on.

``classify`` is the one place that knows the exceptions of pymysql; it looks
them up in ``sys.modules`` so that importing this module (the master does)
does not pull it in.  The blob stores' errors (``geomail.blobs.errors``) are
StorageErrors and carry their own kind.
"""

import socket
import sys

TEMPORARY = "temporary"
PERMANENT = "permanent"
BUG = "bug"

# MySQL error numbers that say "this value cannot be stored", whatever the retry:
# 1048 column cannot be null, 1153 packet bigger than max_allowed_packet,
# 1264 out of range, 1292 incorrect datetime, 1366 incorrect string value,
# 1406 data too long, 1118 row size too large, 3140 invalid JSON,
# 4025 CHECK constraint failed.
PERMANENT_MYSQL_ERRORS = frozenset((1048, 1118, 1153, 1264, 1292, 1366, 1406, 3140, 4025))


class StorageError(Exception):
    """A failure of storage, of a known kind (see the module docstring)."""

    kind = BUG


class TemporaryFailure(StorageError):
    """Storage is unavailable for now; the client should retry."""

    kind = TEMPORARY


class PermanentFailure(StorageError):
    """The input cannot be stored; retrying would fail the same way."""

    kind = PERMANENT


def classify(exc):
    """TEMPORARY, PERMANENT or BUG for any exception raised while using storage."""
    if isinstance(exc, StorageError):
        return exc.kind
    pymysql_err = sys.modules.get("pymysql.err")
    if pymysql_err is not None and isinstance(exc, pymysql_err.MySQLError):
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in PERMANENT_MYSQL_ERRORS:
            return PERMANENT
        if isinstance(exc, (pymysql_err.OperationalError, pymysql_err.InterfaceError)):
            return TEMPORARY
        return BUG
    if isinstance(exc, (ConnectionError, socket.timeout, TimeoutError)):
        return TEMPORARY
    return BUG
