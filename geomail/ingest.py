"""From a stream of message bytes to a stored message (docs/DESIGN.md "Delivery").

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
   deleted; the intent row of each object known to be gone is removed, the
   others are released to the janitor (geomail/janitor.py), which removes
   them later.  Nothing half-stored remains, and nothing leaks.
"""

import datetime
import logging
import os
import secrets
import socket
import time

from geomail.blobs.pipelined import PipelinedUpload
from geomail.errors import classify
from geomail.mime import MessageParser
from geomail.reader import wire_form
from geomail.store import contents
from geomail.store import delivery as sql
from geomail.store import intents
from geomail.store.contents import StoredAttachment  # noqa: F401  re-exported
from geomail.store.delivery import Target  # noqa: F401  re-exported

log = logging.getLogger("geomail.ingest")

HOSTNAME = socket.gethostname()

# Upload keys this process gave up on while their intent row may still exist:
# key -> time.monotonic() when it was left.  A delivery that could not remove
# its intent rows (MySQL lost), whose row INSERT may have committed although
# the client saw an error, or whose COMMIT's outcome is unknown, leaves its
# keys here; this worker's janitor then removes each object whose row still
# exists (after a grace period, so a COMMIT still running on the server is
# over), without waiting for the worker to die.  A committed delivery's rows
# are gone, so its objects are never touched.
ABANDONED = {}



class DeliveryFailed(Exception):
    """Nothing was stored.  ``kind`` (geomail.errors: TEMPORARY, PERMANENT, BUG) says
    whether a retry may succeed; ``too_big`` that the stored form is over a limit."""

    def __init__(self, cause):
        super().__init__(str(cause))
        self.cause = cause
        self.kind = classify(cause)
        self.too_big = isinstance(cause, contents.ContentTooLarge)


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
        self.message_id = None         # the Message-ID header, once committed (for the log)
        files = getattr(context, "attachment_files", None)
        self.parser = MessageParser(_AttachmentSink(self), wire_limit=_wire_limit(files))

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
        outcome = commit_together([(self, targets)])[0]
        if isinstance(outcome, DeliveryFailed):
            raise outcome
        return outcome

    def _prepare(self):
        """The parsed message, its attachments' rows and intent ids, uploads finished;
        on failure everything written is removed and DeliveryFailed raised."""
        if self.error is not None:
            self.abort()
            raise DeliveryFailed(self.error)
        try:
            parsed = self.parser.close()
            self.message_id = parsed.headers.get("message-id")
            attachments = [self._stored(info, upload) for info, upload, _ in self.uploads]
            pending = [pending_id for _, _, pending_id in self.uploads]
        except Exception as exc:
            self._fail(exc)
            self.abort()
            raise DeliveryFailed(exc) from None
        return parsed, attachments, pending

    def _failed_commit(self, exc):
        self._fail(exc)
        if self.uploads and _outcome_unknown(exc):
            # The connection died: the transaction may have committed (its
            # reply was lost).  Deleting the objects could leave a stored
            # message without its attachments, so leave them to the janitor,
            # which removes an object only while its intent row exists,
            # that is, only if the transaction did not commit.
            self._leave_to_janitor()
        else:
            self.abort()
        return DeliveryFailed(exc)

    def abort(self):
        """Remove everything this delivery wrote to S3; forget the intents of what is gone.

        An intent row goes only once its object is known to be gone.  The rows
        of objects S3 could not confirm removed (S3 down, or a request that
        failed without an answer and may still be carried out) are released
        to the janitor of any host, which removes them after a grace period.
        """
        self.parser.abort()            # aborts every upload it opened
        gone, left = [], []
        for _, upload, pending_id in self.uploads:
            removed = upload.removed if upload.removed is not None else upload.abort()
            (gone if removed else left).append(pending_id)
        try:
            intents.forget(self.context.db, gone)
            intents.release(self.context.db, left)
        except Exception:  # this worker's janitor removes them (see ABANDONED)
            log.warning("could not settle upload intent rows %s", gone + left, exc_info=True)
            self._abandon_keys()
        if left:
            log.warning("delivery %s: %d object(s) not confirmed removed, left to the janitor",
                        self.token, len(left))
        self.uploads = []

    def _leave_to_janitor(self):
        """Stop without deleting finished objects; their intent rows decide their fate.

        (Not parser.abort(): that aborts every writer, and aborting a closed
        upload deletes its object.  The parser is closed already here.)
        """
        for _, upload, _ in self.uploads:
            if not upload.closed:
                upload.abort()         # an unfinished upload is referred to by nothing
        self._abandon_keys()
        self.uploads = []

    def _abandon_keys(self):
        now = time.monotonic()
        for _, upload, _ in self.uploads:
            ABANDONED[upload.key] = now

    def _fail(self, exc):
        if self.error is None:
            self.error = exc
            log.warning("delivery %s failed: %s", self.token, exc)

    @staticmethod
    def _stored(info, upload):
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
        try:
            pending_id = intents.record(context.db, context.blobs.bucket, key, HOSTNAME,
                                        os.getpid())
        except BaseException:
            ABANDONED[key] = time.monotonic()   # the row may exist (its OK was lost)
            raise
        upload = PipelinedUpload(context.blobs, key, context.upload_budget)
        delivery.uploads.append((info, upload, pending_id))
        return upload


def _outcome_unknown(exc):
    """The connection went away during the COMMIT: it may have happened (StoreUnavailable)."""
    return bool(getattr(exc, "outcome_unknown", False))


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


def commit_together(deliveries):
    """Commit ``[(delivery, targets)]`` in one transaction (group commit); returns, per
    delivery, its [(mailbox_id, uid)] or the DeliveryFailed that says why not.

    A message that cannot be prepared fails alone.  When the shared
    transaction fails and its outcome is known (it did not commit), each
    message is tried again on its own, so one bad message never takes the
    others with it; when the outcome is unknown, none is retried (it may be
    stored) and each is left to the janitor as a single commit would be.
    """
    outcomes = [None] * len(deliveries)
    ready = []
    for i, (delivery, targets) in enumerate(deliveries):
        try:
            parsed, attachments, pending = delivery._prepare()
            ready.append((i, delivery, (parsed, attachments, targets, pending)))
        except DeliveryFailed as failure:
            outcomes[i] = failure
    if not ready:
        return outcomes
    context = ready[0][1].context
    try:
        stored = sql.store_messages(context.db, [message for _, _, message in ready])
    except Exception as exc:
        if len(ready) > 1 and not _outcome_unknown(exc):
            for i, delivery, message in ready:
                outcomes[i] = _commit_prepared(delivery, message)
            return outcomes
        for i, delivery, _ in ready:
            outcomes[i] = delivery._failed_commit(exc)
        return outcomes
    changed = []
    for (i, delivery, message), uids in zip(ready, stored):
        delivery.uploads = []
        outcomes[i] = uids
        changed += [mailbox_id for mailbox_id, _ in uids]
        _keep_wire_forms(context, *message[:2])
    context.mailbox_changed(sorted(set(changed)))
    return outcomes


def _commit_prepared(delivery, message):
    try:
        uids = sql.store_message(delivery.context.db, *message)
    except Exception as exc:
        return delivery._failed_commit(exc)
    delivery.uploads = []
    _keep_wire_forms(delivery.context, *message[:2])
    delivery.context.mailbox_changed([mailbox_id for mailbox_id, _ in uids])
    return uids


WIRE_CAPTURE = 2 * 1024 * 1024     # base64 segments kept as received, at most, per message


def _wire_limit(files):
    """How many bytes of its base64 attachments the parser keeps as received: at most
    WIRE_CAPTURE per message (held in memory until COMMIT, beside the upload budget),
    none without a disk cache."""
    return min(WIRE_CAPTURE, files.max_object) if files is not None else 0


def _keep_wire_forms(context, parsed, attachments):
    """After COMMIT: each base64 attachment's segment as received goes to the host's
    disk cache as its wire form, so that no FETCH has to encode it (the parser proved
    those bytes are what encoding the stored object gives)."""
    files = getattr(context, "attachment_files", None)
    if files is None or not parsed.wire_forms:
        return
    for stored in attachments:
        kept = parsed.wire_forms.get(stored.index)
        if kept is not None:
            seg, data = kept
            files.write_wire(stored.bucket, stored.object_key, wire_form(seg), data)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)
