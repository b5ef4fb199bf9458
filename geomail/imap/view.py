"""The selected mailbox as the session sees it (RFC 3501 §2.3.1): UIDs <-> sequence numbers.

The view holds only the UID list, the session's \\Recent UIDs, the modseq it
has caught up to, UIDs expunged elsewhere whose EXPUNGE it may not send yet,
and the keywords the session was told of in FLAGS.  Flags and everything else
stay in the store and are read per command.
"""

import bisect
from array import array

import gevent

from geomail.flags import RESPONSE_ORDER
from geomail.imap import condstore, contexts, qresync
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
        self.keywords = list(snapshot.keywords)     # as announced in FLAGS, in that order
        self.announced = set(self.keywords)
        self.uids = array("I", snapshot.uids)
        self.recent = set(snapshot.recent)
        self.tracks_recent = True   # False for IMAP4rev2, which has no \Recent (RFC 9051)
        self.pending = set()      # expunged elsewhere, EXPUNGE not yet sent
        self.just_opened = False  # SELECT's snapshot, no catch-up needed at its end
        self.prefetched = None    # (modseq, results) of catch-up reads a command sent along

    def stop_recent(self):
        """IMAP4rev2: no \\Recent flags, no RECENT responses, none claimed (RFC 9051 App. E)."""
        self.tracks_recent = False
        self.recent = set()

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

    def send_flags(self, session):
        """``* FLAGS`` and ``* OK [PERMANENTFLAGS]`` (RFC 3501 §7.2.6, §7.1): the keywords
        the client may see; none may be stored in a read-only mailbox."""
        flags = self.flag_names()
        session.untagged(b"FLAGS " + R.flag_list(flags))
        permanent = [] if self.readonly else flags + ["\\*"]
        session.untagged(b"OK [PERMANENTFLAGS " + R.flag_list(permanent) + b"] Flags permitted")

    def unannounced(self, flags):
        """Does ``flags`` hold a keyword the client has not been told of?"""
        announced = self.announced
        return any(f not in announced and not f.startswith("\\") for f in flags)

    def announce_keywords(self, session, keywords):
        """Send FLAGS again if ``keywords`` hold one the client has not been told of.

        A client may refuse a keyword in a FETCH that no FLAGS response named
        (imaptest: "Keyword used without being in FLAGS"), so every FETCH that
        shows flags comes through here first, whichever session or race
        brought the keyword in (RFC 3501 §7.2.6: FLAGS may be sent any time).
        """
        new = [k for k in keywords if k not in self.announced and not k.startswith("\\")]
        if new:
            self.keywords.extend(dict.fromkeys(new))
            self.announced.update(new)
            self.send_flags(session)

    def announced_flags(self, session, uid, flags):
        """The flags a FETCH shows for ``uid`` (with \\Recent), their keywords announced."""
        self.announce_keywords(session, flags)
        return list(flags) + ["\\Recent"] if uid in self.recent else list(flags)

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
        gone = messages.expunged_up_to(db, self.mailbox_id, self.modseq, self.last_uid,
                                       limit=EXPUNGED_LOOKUP)
        return len(gone) == EXPUNGED_LOOKUP or any(self.seq_of(uid) for uid in gone)

    # -- catching up --------------------------------------------------------------

    def own_change(self, modseq):
        """This session made the change with ``modseq``: no need to announce it back."""
        if modseq == self.modseq + 1:
            self.modseq = modseq

    def catch_up_reads(self, db):
        """The reads of the next catch-up, for a command to send in its own last request
        (after its COMMIT): the catch-up at the command's end then costs no round trip.
        The command hands their results to ``reads_done``."""
        return messages.changes_queries(db, self.mailbox_id, self.modseq,
                                        claim_recent=not self.readonly and self.tracks_recent)

    def reads_done(self, read_since, results):
        """Results of catch_up_reads() asked when the view was at modseq ``read_since``;
        None (the reads failed) leaves the catch-up to read itself."""
        self.prefetched = None if results is None else (read_since, results)

    def catch_up(self, session, allow_expunge, shared=False):
        """Send what changed since the last catch-up (RFC 3501 §7.3.1, §7.4.1, §7.4.2).

        ``shared`` (IDLE): the worker's watcher asks the database once for all
        the idlers it woke that catch up from the same point.  Reads the command
        sent along (``reads_done``) are used instead of asking again.
        """
        prefetched, self.prefetched = self.prefetched, None
        claim_recent = not self.readonly and self.tracks_recent
        if prefetched is not None and prefetched[0] <= self.modseq:
            changes = messages.changes_from(session.context.db, self.mailbox_id, self.modseq,
                                            self.last_uid, claim_recent, prefetched[1])
        elif shared:
            from geomail.imap.watcher import watcher_for
            changes = watcher_for(session.context).changes_since(
                session.context.db, self.mailbox_id, self.modseq, self.last_uid,
                claim_recent=claim_recent)
        else:
            changes = messages.changes_since(session.context.db, self.mailbox_id, self.modseq,
                                             self.last_uid, claim_recent=claim_recent)
        if changes is None:
            raise Bye("Selected mailbox was deleted, have to disconnect")
        for uid in changes.expunged:
            if self.seq_of(uid):
                self.pending.add(uid)
        if allow_expunge and self.pending:
            self.send_expunges(session, self.pending)
            self.pending = set()
        self.announce_keywords(session, changes.keywords)
        with_modseq = condstore.is_on(session)
        for count, (uid, flags, modseq) in enumerate(changes.changed, 1):
            if count % YIELD_EVERY == 0:
                gevent.sleep(0)      # another session's STORE 1:* is 10,000 responses here
            if uid in self.pending:
                continue
            seq = self.seq_of(uid)
            if seq:
                flags = R.flag_list(self.announced_flags(session, uid, flags))
                if with_modseq:      # RFC 7162 §3.1.4.1
                    session.untagged(b"%d FETCH (UID %d FLAGS %s MODSEQ (%d))"
                                     % (seq, uid, flags, modseq))
                else:
                    session.untagged(b"%d FETCH (UID %d FLAGS %s)" % (seq, uid, flags))
        new = [uid for uid, _ in changes.new if uid > self.last_uid]
        if new:
            self.uids.extend(new)
            if changes.claimed_recent:
                low, high = changes.claimed_recent
                self.recent.update(u for u in new if low <= u <= high)
            elif self.readonly:     # EXAMINE: recent until a SELECT claims it (select.py)
                self.recent.update(u for u in new if u >= changes.first_recent_uid)
            session.untagged(b"%d EXISTS" % len(self.uids))
            if self.tracks_recent:
                session.untagged(b"%d RECENT" % len(self.recent))
            self.uidnext = max(self.uidnext, new[-1] + 1)
        self.modseq = max(self.modseq, changes.highestmodseq)

    def send_expunges(self, session, uids):
        """EXPUNGE responses for uids, highest sequence number first (no renumbering);
        once QRESYNC is enabled one ``* VANISHED uids`` instead (RFC 7162 §3.2.10).
        Update contexts say REMOVEFROM first, while the numbers hold (contexts.py)."""
        contexts.before_expunge(session, uids)
        if condstore.qresync_on(session):
            gone = [uid for uid in sorted(uids) if self.seq_of(uid) is not None]
            qresync.write_vanished(session, gone)
            self.remove_silently(gone)
            return
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
        """Drop uids from the view (their EXPUNGE or VANISHED was sent)."""
        gone = set(uids)
        if len(gone) > 16:        # one pass instead of a shift of the array per UID
            self.uids = array("I", (uid for uid in self.uids if uid not in gone))
            self.recent -= gone
            return
        for uid in gone:
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
