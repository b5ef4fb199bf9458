"""The selected mailbox as the session sees it (RFC 3501 §2.3.1): UIDs <-> sequence numbers.

The view holds only the UID list, the session's \\Recent UIDs, the modseq it
has caught up to, and UIDs expunged elsewhere whose EXPUNGE it may not send
yet.  Flags and everything else stay in MySQL and are read per command.
"""

import bisect
from array import array

import gevent

from geomail.flags import RESPONSE_ORDER
from geomail.imap import response as R
from geomail.imap.errors import Bad, Bye
from geomail.store import messages

YIELD_EVERY = 200      # untagged responses between two yields to the worker's other greenlets
EXPUNGED_LOOKUP = 1000  # expunged UIDs read to see if the view shows one (more: assume so)
PERMANENT_SYSTEM = RESPONSE_ORDER   # geomail/flags.py


class View:
    def __init__(self, mailbox, snapshot, readonly):
        self.mailbox_id = mailbox.id
        self.name = mailbox.name
        self.readonly = readonly
        self.uidvalidity = snapshot.uidvalidity
        self.uidnext = snapshot.uidnext
        self.modseq = snapshot.highestmodseq
        self.keywords = list(snapshot.keywords)
        self.uids = array("I", snapshot.uids)
        self.recent = set(snapshot.recent)
        self.pending = set()      # expunged elsewhere, EXPUNGE not yet sent

    # -- numbering --------------------------------------------------------------

    def __len__(self):
        return len(self.uids)

    @property
    def last_uid(self):
        return self.uids[-1] if self.uids else 0

    def seq_of(self, uid):
        i = bisect.bisect_left(self.uids, uid)
        if i < len(self.uids) and self.uids[i] == uid:
            return i + 1
        return None

    def flag_names(self):
        return list(PERMANENT_SYSTEM) + self.keywords

    def uid_ranges(self, seqset, uid_mode, saved=None):
        """UID ranges [(low, high)] of the view's messages named by a sequence set.

        Each range holds only UIDs of the view (a UID range is clipped to the
        view's UIDs), so it can go to SQL as BETWEEN.  A sequence number
        beyond the view is an error (BAD), as in Dovecot.
        """
        uids = self.uids
        if seqset.saved:
            return messages.compress(sorted(u for u in (saved or ()) if self.seq_of(u)))
        out = []
        if uid_mode:
            for low, high in seqset.resolve(self.last_uid):
                i = bisect.bisect_left(uids, low)
                j = bisect.bisect_right(uids, high)
                if i < j:
                    out.append((uids[i], uids[j - 1]))
        else:
            count = len(uids)
            if count == 0:
                # "1:*" or "*" in an empty mailbox names nothing; "3" is an error
                if all(a is None or b is None for a, b in seqset.ranges):
                    return []
                raise Bad("Invalid message sequence number: the mailbox is empty")
            for low, high in seqset.resolve(count):
                if high > count:
                    raise Bad(f"Invalid message sequence number {high} (mailbox has {count})")
                out.append((uids[low - 1], uids[high - 1]))
        return _merge(out)

    def uids_in(self, ranges):
        """The view's UIDs inside ranges, ascending."""
        out = []
        for low, high in ranges:
            i = bisect.bisect_left(self.uids, low)
            j = bisect.bisect_right(self.uids, high)
            out.extend(self.uids[i:j])
        return out

    def shows_expunged(self, db):
        """Does the view still show messages another session expunged (announced or not)?

        Their rows are gone, so a SEARCH cannot say whether they match: it ends
        OK [EXPUNGEISSUED] (RFC 5530 §3), as Dovecot's does, and the client knows
        to NOOP.  Asked only of the store's expunge log since the last catch-up.
        """
        if self.pending:
            return True
        gone = messages.expunged_since(db, self.mailbox_id, self.modseq, self.last_uid,
                                       limit=EXPUNGED_LOOKUP)
        return len(gone) == EXPUNGED_LOOKUP or any(self.seq_of(uid) for uid in gone)

    # -- catching up --------------------------------------------------------------

    def own_change(self, modseq):
        """This session made the change with ``modseq``: no need to announce it back."""
        if modseq == self.modseq + 1:
            self.modseq = modseq

    def catch_up(self, session, allow_expunge, shared=False):
        """Send what changed since the last catch-up (RFC 3501 §7.3.1, §7.4.1, §7.4.2).

        ``shared`` (IDLE): the worker's watcher asks the database once for all
        the idlers it woke that catch up from the same point.
        """
        if shared:
            from geomail.imap.watcher import watcher_for
            changes = watcher_for(session.context).changes_since(
                session.context.db, self.mailbox_id, self.modseq, self.last_uid,
                claim_recent=not self.readonly)
        else:
            changes = messages.changes_since(session.context.db, self.mailbox_id, self.modseq,
                                             self.last_uid, claim_recent=not self.readonly)
        if changes is None:
            raise Bye("Selected mailbox was deleted, have to disconnect")
        for uid in changes.expunged:
            if self.seq_of(uid):
                self.pending.add(uid)
        if allow_expunge and self.pending:
            self.send_expunges(session, self.pending)
            self.pending = set()
        if changes.keywords != self.keywords:
            self.keywords = changes.keywords
            session.untagged(b"FLAGS " + R.flag_list(self.flag_names() + []))
            session.untagged(b"OK [PERMANENTFLAGS " + R.flag_list(self.flag_names() + ["\\*"])
                             + b"] Flags permitted")
        for count, (uid, flags, _) in enumerate(changes.changed, 1):
            if count % YIELD_EVERY == 0:
                gevent.sleep(0)      # another session's STORE 1:* is 10,000 responses here
            if uid in self.pending:
                continue
            seq = self.seq_of(uid)
            if seq:
                if uid in self.recent:
                    flags = flags + ["\\Recent"]
                session.untagged(b"%d FETCH (UID %d FLAGS %s)" % (seq, uid, R.flag_list(flags)))
        new = [uid for uid, _ in changes.new if uid > self.last_uid]
        if new:
            self.uids.extend(new)
            if changes.claimed_recent:
                low, high = changes.claimed_recent
                self.recent.update(u for u in new if low <= u <= high)
            elif self.readonly:     # EXAMINE: recent until a SELECT claims it (select.py)
                self.recent.update(u for u in new if u >= changes.first_recent_uid)
            session.untagged(b"%d EXISTS" % len(self.uids))
            session.untagged(b"%d RECENT" % len(self.recent))
            self.uidnext = max(self.uidnext, new[-1] + 1)
        self.modseq = max(self.modseq, changes.highestmodseq)

    def send_expunges(self, session, uids):
        """EXPUNGE responses for uids, highest sequence number first (no renumbering)."""
        for count, uid in enumerate(sorted(uids, reverse=True), 1):
            if count % YIELD_EVERY == 0:
                gevent.sleep(0)
            seq = self.seq_of(uid)
            if seq is None:
                continue
            session.untagged(b"%d EXPUNGE" % seq)
            del self.uids[seq - 1]
            self.recent.discard(uid)

    def remove_silently(self, uids):
        for uid in uids:
            seq = self.seq_of(uid)
            if seq is not None:
                del self.uids[seq - 1]
                self.recent.discard(uid)


def _merge(ranges):
    ranges = sorted(ranges)
    out = []
    for low, high in ranges:
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out
