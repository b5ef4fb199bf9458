"""One new-mail watcher per worker (docs/DESIGN.md "IMAP sessions").

Sessions with a mailbox selected register here.  A single greenlet polls
MySQL for the (highestmodseq, uidnext) of every watched mailbox every
POLL_INTERVAL seconds — one cheap primary-key query for the whole worker —
and wakes the sessions whose mailbox changed; an IDLE session then catches
up and sends EXISTS/EXPUNGE/FETCH.  Deliveries in the same worker wake
sessions at once through the context's mailbox-change hook, when present.
The database is the only channel, so this works across workers and hosts.
"""

import dataclasses
import logging

import gevent
from gevent.event import AsyncResult

from geomail.store.messages import changes_since, mailbox_states

log = logging.getLogger("geomail.imap.watcher")

POLL_INTERVAL = 0.25


class Watcher:
    def __init__(self, context):
        self.context = context
        self.sessions = {}        # mailbox_id -> set of sessions
        self.known = {}           # mailbox_id -> (highestmodseq, uidnext)
        self.generation = {}      # mailbox_id -> number of change notices so far
        self.shared = {}          # mailbox_id -> (generation, {catch-up point: AsyncResult})
        self.greenlet = None
        hook = getattr(context, "on_mailbox_change", None)
        if hook is not None:
            hook(self.changed)

    def watch(self, session, mailbox_id):
        self.forget(session)
        self.sessions.setdefault(mailbox_id, set()).add(session)
        session.watched_mailbox = mailbox_id
        if self.greenlet is None or self.greenlet.dead:
            self.greenlet = gevent.spawn(self._run)

    def forget(self, session):
        mailbox_id = getattr(session, "watched_mailbox", None)
        if mailbox_id is None:
            return
        session.watched_mailbox = None
        watchers = self.sessions.get(mailbox_id)
        if watchers is not None:
            watchers.discard(session)
            if not watchers:
                del self.sessions[mailbox_id]
                self.known.pop(mailbox_id, None)
                self.generation.pop(mailbox_id, None)
                self.shared.pop(mailbox_id, None)

    def changed(self, mailbox_ids):
        """Same-worker notice: wake at once."""
        for mailbox_id in mailbox_ids:
            if mailbox_id in self.sessions:
                self.generation[mailbox_id] = self.generation.get(mailbox_id, 0) + 1
            for session in list(self.sessions.get(mailbox_id, ())):
                session.wake()

    def changes_since(self, db, mailbox_id, since, last_uid, claim_recent):
        """``messages.changes_since``, asked once for all idlers woken by the same notice.

        Thousands of sessions idling on one mailbox wake together and would
        each run the same queries; the first one asks (the others wait for its
        answer) when they catch up from the same point (modseq, last UID).
        An answer serves only until the next change notice for the mailbox, so
        it always includes the change that woke them.  \Recent goes to the
        session that asked (the others would find it claimed anyway).
        """
        generation = self.generation.get(mailbox_id, 0)
        entry = self.shared.get(mailbox_id)
        if entry is None or entry[0] != generation:
            entry = (generation, {})
            if mailbox_id in self.sessions:
                self.shared[mailbox_id] = entry
        point = (since, last_uid, claim_recent)
        result = entry[1].get(point)
        if result is not None:
            changes = result.get()
            if changes is None or not changes.claimed_recent:
                return changes
            return dataclasses.replace(changes, claimed_recent=[])
        result = entry[1][point] = AsyncResult()
        try:
            changes = changes_since(db, mailbox_id, since, last_uid, claim_recent=claim_recent)
        except BaseException as exc:
            entry[1].pop(point, None)
            result.set_exception(exc)
            raise
        result.set(changes)
        return changes

    def _run(self):
        while self.sessions:
            gevent.sleep(POLL_INTERVAL)
            try:
                self.poll()
            except Exception:
                log.warning("new-mail poll failed", exc_info=True)
                gevent.sleep(1.0)

    def poll(self):
        ids = list(self.sessions)
        if not ids:
            return
        states = mailbox_states(self.context.db, ids)
        for mailbox_id in ids:
            state = states.get(mailbox_id)
            previous = self.known.get(mailbox_id)
            self.known[mailbox_id] = state
            # the first poll of a mailbox wakes too: a change may have landed
            # between the session's SELECT snapshot and this poll
            if state != previous or state is None:
                self.changed([mailbox_id])


def watcher_for(context):
    watcher = getattr(context, "_imap_watcher", None)
    if watcher is None:
        watcher = Watcher(context)
        context._imap_watcher = watcher
    return watcher
