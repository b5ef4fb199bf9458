"""From a stream of message bytes to a stored message (DESIGN.md "Delivery").

One ``Delivery`` per message being received, used by SMTP DATA/BDAT and
IMAP APPEND alike:

1. ``feed(chunk)`` as bytes arrive: the incremental MIME parser keeps every
   non-attachment byte and streams each attachment, decoded, to S3
   (``PipelinedUpload``; before an upload starts, an intent row in
   ``pending_objects`` names it, so a killed worker's objects are found).
2. ``commit(targets)`` at end of data: the last uploads complete, then one
   MySQL transaction stores the content, the attachments and a message row
   per target mailbox.  Only after COMMIT does the caller say "250".
3. Any failure, or ``abort()``: open uploads are aborted, finished objects
   deleted, intent rows removed; nothing half-stored remains.
"""

import datetime
import logging
import os
import secrets
import socket
import time

from geomail.blobs.pipelined import PipelinedUpload
from geomail.mime import MessageParser
from geomail.store import delivery as sql
from geomail.store.delivery import StoredAttachment, Target  # noqa: F401  re-exported

log = logging.getLogger("geomail.delivery")

HOSTNAME = socket.gethostname()


class DeliveryFailed(Exception):
    """Storage failed (S3, MySQL): a temporary failure, the sender should retry."""


def new_token():
    """A unique, roughly time-ordered id for a delivery (queue id, object key part)."""
    return f"{int(time.time() * 1000):011x}{secrets.token_hex(5)}"


class Delivery:
    """One message on its way into the store; see the module docstring."""

    def __init__(self, context, owner_account_id, token=None):
        self.context = context
        self.owner = owner_account_id
        self.token = token or new_token()
        self.uploads = []              # (AttachmentInfo, PipelinedUpload, pending id)
        self.size = 0
        self.error = None
        self.parser = MessageParser(_AttachmentSink(self))

    # -- receiving -------------------------------------------------------

    def feed(self, data):
        """Parse the next chunk; a storage failure is remembered, not raised mid-stream."""
        if self.error is not None or not data:
            return
        self.size += len(data)
        try:
            self.parser.feed(data)
        except Exception as exc:
            self._fail(exc)

    @property
    def failed(self):
        return self.error is not None

    # -- ending ----------------------------------------------------------

    def commit(self, targets):
        """Finish uploads and store the message for targets; returns [(mailbox_id, uid)].

        Raises DeliveryFailed (nothing stored) on any storage failure.
        """
        if self.error is not None:
            self.abort()
            raise DeliveryFailed(str(self.error))
        try:
            parsed = self.parser.close()
            attachments = [self._stored(info) for info, _, _ in self.uploads]
            pending = [pending_id for _, _, pending_id in self.uploads]
            uids = sql.store_message(self.context.db, parsed, attachments, targets, pending)
        except Exception as exc:
            self._fail(exc)
            self.abort()
            raise DeliveryFailed(str(exc)) from None
        self.context.mailbox_changed([mailbox_id for mailbox_id, _ in uids])
        return uids

    def abort(self):
        """Remove everything this delivery wrote to S3 (and its intent rows)."""
        self.parser.abort()
        for _, upload, _ in self.uploads:
            upload.abort()
        pending = [pending_id for _, _, pending_id in self.uploads]
        self.uploads = []
        try:
            sql.forget_pending(self.context.db, pending)
        except Exception:  # the janitor will see the rows and find nothing to delete
            log.warning("could not clear upload intent rows %s", pending, exc_info=True)

    def _fail(self, exc):
        if self.error is None:
            self.error = exc
            log.warning("delivery %s failed: %s", self.token, exc)

    def _stored(self, info):
        upload = next(u for i, u, _ in self.uploads if i is info)
        return StoredAttachment(
            index=info.index, part_number=info.part, filename=info.filename,
            safe_filename=info.safe_filename, content_type=info.content_type,
            transfer_encoding=info.encoding, decoded_size=info.size, sha256=info.sha256,
            encoding={"storage": info.storage}, bucket=upload.store.bucket,
            object_key=upload.key)


class _AttachmentSink:
    """Where the parser sends attachments: one pipelined S3 upload each."""

    def __init__(self, delivery):
        self.delivery = delivery

    def open(self, info):
        delivery = self.delivery
        context = delivery.context
        key = f"{delivery.owner}/{delivery.token}/{info.safe_filename}"
        pending_id = sql.record_pending(context.db, context.blobs.bucket, key, HOSTNAME,
                                        os.getpid())
        upload = PipelinedUpload(context.blobs, key, context.upload_budget)
        delivery.uploads.append((info, upload, pending_id))
        return upload


def store_message(context, chunks, owner_account_id, targets):
    """Store a message given as an iterable of byte chunks (IMAP APPEND, tools, tests)."""
    delivery = Delivery(context, owner_account_id)
    try:
        for chunk in chunks:
            delivery.feed(chunk)
    except BaseException:
        delivery.abort()
        raise
    return delivery.commit(targets)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)
