"""Mail in and out of an account: mbox and Maildir (``geomail-admin import`` / ``export``).

Import delivers every message through the same path as SMTP and APPEND
(``geomail.ingest``: parsed while it streams, attachments to the blob store
behind intents, committed as SMTP's group commit does), so an imported
message is stored exactly as a delivered one.  Line ends become CRLF (what
IMAP serves); flags come from the Maildir info suffix (``:2,DFRST``: Draft,
Flagged, Replied, Seen, Trashed) or the mbox Status/X-Status letters;
Maildir++ folders (``.Work.Projects``) become mailboxes (``Work/Projects``).

It can be run again after an interruption: a message is skipped when the
mailbox already holds one with the same Message-ID and size whose stored
bytes have the same SHA-256.  Messages are committed in the order of the
source, several per transaction, each whole or absent, so an interrupted
import leaves whole messages only.

Export writes Maildir (INBOX in DIR, other mailboxes as Maildir++ folders,
flags in the info suffix, the file's mtime the internal date) or one mbox
file per mailbox (mboxrd quoting, undone on import), each message byte for byte as stored
with LF line ends, the Unix convention of both formats.
"""

import collections
import concurrent.futures
import datetime
import hashlib
import mailbox as stdlib_mailbox
import os
import re
import threading

from geomail.ingest import Delivery, DeliveryFailed, Target, commit_together
from geomail.mime import headers
from geomail.reader import StoredMessage
from geomail.store import messages as store
from geomail.store.mailboxes import list_mailboxes, normalize_name

MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen",
                 "T": "\\Deleted"}
MBOX_FLAGS = {"R": "\\Seen", "A": "\\Answered", "F": "\\Flagged", "D": "\\Deleted",
              "T": "\\Draft"}
LETTER_OF = {flag: letter for letter, flag in MAILDIR_FLAGS.items()}
CHUNK = 64 * 1024
_STATUS = re.compile(rb"(?im)^(?:x-)?status:[ \t]*([A-Za-z]*)")    # mbox flag letters
_FROM_LINE = re.compile(rb"(?m)^(>*From )")            # mboxrd quoting on export
_QUOTED_FROM_LINE = re.compile(rb"(?m)^>(>*From )")    # and its undoing on import


class Item:
    """One message to import: where it goes, its bytes (CRLF), flags, internal date."""

    __slots__ = ("mailbox", "data", "flags", "date")

    def __init__(self, mailbox, data, flags, date):
        self.mailbox, self.data, self.flags, self.date = mailbox, data, flags, date


def crlf(data):
    """LF or CRLF line ends to CRLF (bare CRs stay as they are)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class Source:
    """The messages under ``path`` (an mbox file, a Maildir, or a Maildir++ tree):
    ``total`` known before the first is read (for the progress bar), then iterated."""

    def __init__(self, path):
        if os.path.isfile(path):
            self.box = stdlib_mailbox.mbox(path, create=False)
            self.keys = list(self.box.iterkeys())        # one scan of the file for From_ lines
            self.folders = []
        elif _is_maildir(path):
            self.box = None
            self.folders = [(path, "INBOX")] + [
                (os.path.join(path, entry), normalize_name(entry[1:].replace(".", "/")))
                for entry in sorted(os.listdir(path))
                if entry.startswith(".") and entry not in (".", "..")
                and _is_maildir(os.path.join(path, entry))]
            self.keys = [(folder, name, sub, filename) for folder, name in self.folders
                         for sub in ("new", "cur") if os.path.isdir(os.path.join(folder, sub))
                         for filename in sorted(os.listdir(os.path.join(folder, sub)))
                         if not filename.startswith(".")]
        else:
            raise ValueError(f"{path} is neither an mbox file nor a Maildir (cur/, new/)")
        self.total = len(self.keys)

    def __iter__(self):
        if self.box is not None:
            try:
                for key in self.keys:
                    yield _mbox_item(self.box.get_bytes(key, from_=True), "INBOX")
            finally:
                self.box.close()
        else:
            for folder, name, sub, filename in self.keys:
                yield _maildir_item(os.path.join(folder, sub, filename), name, filename)


def _is_maildir(path):
    return os.path.isdir(os.path.join(path, "cur")) or os.path.isdir(os.path.join(path, "new"))


def _mbox_item(raw, mailbox_name):
    """An mboxrd message with its From_ line: flags from Status/X-Status, the date from
    the From_ line; the bytes without the From_ line, '>From ' quoting undone."""
    from_line, _, data = raw.partition(b"\n")
    head = data.split(b"\n\n", 1)[0]
    letters = set()
    for match in _STATUS.finditer(head):
        letters.update(match.group(1).decode("ascii", "replace"))
    flags = tuple(MBOX_FLAGS[c] for c in sorted(letters) if c in MBOX_FLAGS)
    data = _QUOTED_FROM_LINE.sub(rb"\1", data)
    return Item(mailbox_name, crlf(data), flags,
                _from_line_date(from_line.decode("ascii", "replace")))


def _maildir_item(path, mailbox_name, filename):
    """A Maildir file: flags from the info suffix (':2,FS'; '!2,' where ':' cannot be
    in a file name), the internal date from the file's mtime."""
    info = re.split(r"[:!]2,", filename, maxsplit=1)
    letters = info[1] if len(info) == 2 else ""
    flags = tuple(MAILDIR_FLAGS[c] for c in sorted(set(letters)) if c in MAILDIR_FLAGS)
    with open(path, "rb") as handle:
        data = handle.read()
        stamp = os.fstat(handle.fileno()).st_mtime
    date = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).replace(tzinfo=None)
    return Item(mailbox_name, crlf(data), flags, date.replace(microsecond=0))


def _from_line_date(line):
    """The date of an mbox From_ line ("From sender Thu Nov  4 12:00:00 2004"), naive UTC, or None."""
    parts = (line or "").split()
    try:
        return datetime.datetime.strptime(" ".join(parts[-5:]), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return None


def message_id(data):
    """The Message-ID header's text, read as the MIME parser reads it at delivery."""
    head = data.split(b"\r\n\r\n", 1)[0]
    value = headers.first(headers.split_fields(head + b"\r\n"), "message-id")
    return None if value is None else headers.decode_words(headers.unfold(value)).strip()


class Importer:
    """Deliver Items into one account: parsed and uploaded several at a time by a
    thread pool, committed in source order by the calling thread, up to BATCH
    messages per transaction (group commit), so UIDs follow the order of the
    mbox or Maildir and a commit's log flush is shared."""

    BATCH = 32

    def __init__(self, context, account, parallel=4):
        self.context = context
        self.account = account
        self.parallel = parallel
        boxes = list_mailboxes(context.db, account.id)
        self.mailboxes = {box.name: box.id for box in boxes}
        # mailboxes empty when the run began hold nothing to skip (no query per message)
        self.empty = {box.id for box in boxes if box.message_count == 0}
        self.lock = threading.Lock()
        self.stored = self.skipped = self.bytes = 0

    def mailbox_id(self, name):
        with self.lock:
            if name not in self.mailboxes:
                try:
                    self.mailboxes[name] = store.create_mailbox(self.context.db, self.account.id, name)
                    self.empty.add(self.mailboxes[name])
                except store.MailboxExists:
                    self.mailboxes = {box.name: box.id
                                      for box in list_mailboxes(self.context.db, self.account.id)}
            return self.mailboxes[name]

    def already_there(self, mailbox_id, item):
        if mailbox_id in self.empty:
            return False
        candidates = store.same_message_candidates(self.context.db, mailbox_id,
                                                   message_id(item.data), len(item.data))
        if not candidates:
            return False
        digest = hashlib.sha256(item.data).digest()
        for content_id, trace in candidates:
            stored = hashlib.sha256()
            for chunk in StoredMessage.load(self.context, content_id, trace).read():
                stored.update(chunk)
            if stored.digest() == digest:
                return True
        return False

    def prepare(self, item):
        """(Delivery, Target) with the message parsed and its attachments uploaded,
        or None when the mailbox holds it already.  Runs in the pool."""
        mailbox_id = self.mailbox_id(item.mailbox)
        if self.already_there(mailbox_id, item):
            return None
        delivery = Delivery(self.context, self.account.id)
        try:
            for i in range(0, len(item.data), CHUNK):
                delivery.feed(item.data[i:i + CHUNK])
        except BaseException:
            delivery.abort()
            raise
        return delivery, [Target(mailbox_id, flags=item.flags, internal_date=item.date)]

    def run(self, items, progress=None, stop=None):
        """Import every item (until ``stop`` is set); ``progress(item)`` after each.

        At most ``parallel`` * 2 + BATCH messages are held at once, whatever
        the size of the source.  Stopping drops the messages not yet read and
        commits those already prepared, so what is stored is always whole.
        """
        queue = collections.deque()     # (item, future) in source order
        with concurrent.futures.ThreadPoolExecutor(self.parallel) as pool:
            try:
                for item in items:
                    if stop is not None and stop.is_set():
                        break
                    queue.append((item, pool.submit(self.prepare, item)))
                    if len(queue) >= self.parallel * 2:
                        self._commit_ready(queue, progress)
                while queue:
                    self._commit_ready(queue, progress)
            except BaseException:
                for _, future in queue:
                    future.cancel()
                for _, future in queue:
                    if not future.cancelled() and future.exception() is None \
                            and future.result() is not None:
                        future.result()[0].abort()
                raise

    def _commit_ready(self, queue, progress):
        """Commit the prepared messages at the head of the queue, waiting for the first."""
        batch = []
        while queue and len(batch) < self.BATCH and (not batch or queue[0][1].done()):
            item, future = queue.popleft()
            batch.append((item, future.result()))
        for item, prepared in batch:
            if prepared is None:
                self.skipped += 1
        deliveries = [(item, prepared) for item, prepared in batch if prepared is not None]
        if deliveries:
            outcomes = commit_together([prepared for _, prepared in deliveries])
            failures = [o for o in outcomes if isinstance(o, DeliveryFailed)]
            for (item, _), outcome in zip(deliveries, outcomes):
                if not isinstance(outcome, DeliveryFailed):
                    self.stored += 1
                    self.bytes += len(item.data)
            if failures:
                raise failures[0]
        if progress is not None:
            for item, _ in batch:
                progress(item)


# -- export -------------------------------------------------------------------

def export(context, account, directory, fmt="maildir", progress=None):
    """Write every mailbox of ``account`` under ``directory``; returns the message count."""
    os.makedirs(directory, exist_ok=True)
    count = 0
    for box in list_mailboxes(context.db, account.id):
        rows = store.fetch_rows(context.db, box.id, [(1, 2 ** 32 - 1)],
                                ["flags", "internal_date", "content"])
        if fmt == "mbox":
            count += _export_mbox(context, box.name, rows, directory, progress)
        else:
            count += _export_maildir(context, box.name, rows, directory, progress)
    return count


def _stored_bytes(context, row):
    data = b"".join(StoredMessage.load(context, row["content_id"], row["trace_headers"]).read())
    return data.replace(b"\r\n", b"\n")


def _export_maildir(context, name, rows, directory, progress):
    root = directory if name == "INBOX" else os.path.join(directory, "." + name.replace("/", "."))
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    count = 0
    for row in rows:
        date = row["internal_date"]
        stamp = int(date.replace(tzinfo=datetime.timezone.utc).timestamp()) if date else 0
        letters = "".join(sorted(LETTER_OF[f] for f in row["flags"] if f in LETTER_OF))
        filename = f"{stamp}.M{row['uid']}.geomail:2,{letters}"
        temporary = os.path.join(root, "tmp", filename)
        with open(temporary, "wb") as handle:
            handle.write(_stored_bytes(context, row))
        os.utime(temporary, (stamp, stamp))
        os.replace(temporary, os.path.join(root, "cur", filename))
        count += 1
        if progress:
            progress(row)
    return count


def _export_mbox(context, name, rows, directory, progress):
    """One mboxrd file per mailbox.  The bytes are the stored ones (flags stay in the
    store: a Status header would change the message), so a re-import is byte-exact."""
    path = os.path.join(directory, name.replace("/", ".") + ".mbox")
    count = 0
    with open(path, "wb") as handle:
        for row in rows:
            date = row["internal_date"] or datetime.datetime(1970, 1, 1)
            handle.write(f"From MAILER-DAEMON {date.strftime('%a %b %d %H:%M:%S %Y')}\n".encode())
            data = _stored_bytes(context, row)
            # mboxrd: a line of the message that starts with ">*From " gets one more '>'
            quoted = _FROM_LINE.sub(rb">\1", data)
            handle.write(quoted)
            if not quoted.endswith(b"\n"):
                handle.write(b"\n")
            handle.write(b"\n")
            count += 1
            if progress:
                progress(row)
    return count
