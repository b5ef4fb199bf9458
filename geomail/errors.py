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

The store and the blob store raise these themselves: each backend turns its
driver's exceptions into them at the edge (geomail/store/database.py
``typed_error``, geomail/store/sqlite.py ``_typed``, geomail/blobs/errors.py).
``classify`` is what the protocols ask; it imports no driver, so the master
can import this module.
"""

import socket

TEMPORARY = "temporary"
PERMANENT = "permanent"
BUG = "bug"


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
    if isinstance(exc, (ConnectionError, socket.timeout, TimeoutError)):
        return TEMPORARY
    return BUG
