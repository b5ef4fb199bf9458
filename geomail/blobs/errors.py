"""What every blob store raises and lists, S3 or local directory (no boto3 here).

``BlobStoreError`` is a ``geomail.errors.TemporaryFailure``: S3 answering 5xx
or not at all, a full or failing disk, a directory the server may not write,
are all things the same request may get past later, so SMTP answers 451 and
IMAP ``NO [UNAVAILABLE]``.

Two subclasses say otherwise through ``kind`` (what ``geomail.errors.classify``
reads):

- ``BlobNotFound`` is a BUG.  An object geomail reads is one an attachments
  row names; its absence breaks the invariant "intent before object, object
  before row, row before delete" (fsck reports it as ``missing``).  Retrying
  cannot bring it back, and it is not the client's input that is wrong, so it
  is neither temporary nor permanent: IMAP answers ``NO [SERVERBUG]`` (the
  session goes on), the log has the key and a traceback for the operator.
- ``InvalidKey`` (a key the local directory refuses: ``..``, absolute, NUL)
  is a BUG too: geomail never makes such keys.
"""

import collections

from geomail.errors import BUG, TemporaryFailure


class BlobStoreError(TemporaryFailure):
    """A blob store operation failed; the message is one line naming where and why.

    ``uncertain`` is true when the store gave no definite answer (timeout,
    connection lost, 5xx): a write may still have been, or may yet be,
    carried out.  A local directory always answers definitely.
    """

    uncertain = False


class BlobNotFound(BlobStoreError, KeyError):
    """The object does not exist (a BUG when read: see the module docstring)."""

    kind = BUG

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "object not found"


class InvalidKey(BlobStoreError, ValueError):
    """A key that cannot name a file under the bucket directory."""

    kind = BUG


StoredObject = collections.namedtuple("StoredObject", "key size last_modified")
OpenUpload = collections.namedtuple("OpenUpload", "key upload_id initiated")
