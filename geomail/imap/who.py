"""The logged-in IMAP sessions in the store's sessions table (``geomail-admin who``/``kick``).

A row is written when a session logs in and deleted when it ends; a failure
to write it is logged and never refuses a login (the table is for operators,
not for serving mail).  The writes are the worker's ``Register``'s: a
greenlet that sends every row queued in one request (a multi-row INSERT and
one DELETE), WRITE_DELAY after the first, so a login does not wait for its
row and many logins and logouts share a request; a session that ends before
its row went out writes nothing.  Each worker's
``kick_poller`` asks the table every KICK_INTERVAL seconds, while it has
listed sessions, which of them an administrator asked to end, and ends them
with a BYE.
"""

import datetime
import logging
import os
import socket

import gevent
import gevent.event

from geomail.store import sessions as table

log = logging.getLogger("geomail.imap.who")

HOST = socket.gethostname()
KICK_INTERVAL = 2.0
KICK_TEXT = "Disconnected by the administrator"
WRITE_DELAY = 0.1      # seconds a row may wait for others to share its request


def _remote(session):
    address = session.address
    return str(address[0]) if isinstance(address, tuple) else str(address)


class Register:
    """The worker's writer of sessions rows (module docstring)."""

    def __init__(self, db):
        self.db = db
        self.adding = {}          # session id -> (session, row values): not yet sent
        self.removing = set()     # session ids whose row was sent (or is being sent)
        self.in_flight = set()    # session ids of the INSERT being sent now
        self.pending = gevent.event.Event()
        self.greenlet = None

    def add(self, session):
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        self.adding[session.id] = (session, (session.id, session.account.id,
                                             session.account.address, _remote(session),
                                             session.tls, now))
        self._wake()

    def remove(self, session):
        if self.adding.pop(session.id, None) is not None:
            return                          # never written: nothing to delete
        if session.listed or session.id in self.in_flight:
            self.removing.add(session.id)
            self._wake()

    def _wake(self):
        self.pending.set()
        if self.greenlet is None or self.greenlet.dead:
            self.greenlet = gevent.spawn(self._run)

    def _run(self):
        while True:
            self.pending.wait()
            gevent.sleep(WRITE_DELAY)     # what else comes meanwhile shares the request
            self.pending.clear()
            if not (self.adding or self.removing):
                continue
            self.write()

    def write(self):
        """Send what is queued now in one request."""
        adding, self.adding = self.adding, {}
        removing, self.removing = self.removing, set()
        self.in_flight = set(adding)
        try:
            table.write(self.db, HOST, os.getpid(), [row for _, row in adding.values()],
                        sorted(removing))
        except Exception as exc:  # noqa: BLE001 - logins stand; only `who` misses them
            log.warning("%d sessions not listed for `who`, %d rows stay: %s",
                        len(adding), len(removing), exc)
            return
        finally:
            self.in_flight = set()
        for session, _ in adding.values():
            # (one that ended meanwhile is in self.removing: the next write deletes it)
            session.listed = True


def register_for(context):
    register = getattr(context, "_imap_who", None)
    if register is None:
        register = context._imap_who = Register(context.db)
    return register


def logged_in(session):
    register_for(session.context).add(session)


def logged_out(session):
    register_for(session.context).remove(session)


def kick_poller(worker):
    """Greenlet: end the sessions of this worker marked to be kicked."""
    try:
        table.forget_dead(worker.context.db, HOST, os.getpid())
    except Exception as exc:  # noqa: BLE001 - stale rows stay until the next start
        log.warning("could not remove the `who` rows of stopped workers: %s", exc)
    while worker.alive:
        gevent.sleep(KICK_INTERVAL)
        listed = {s.id: s for s in list(worker.sessions) if getattr(s, "listed", False)}  # IMAP
        if not listed:
            continue
        try:
            ids = table.kicked(worker.context.db, HOST, os.getpid())
        except Exception as exc:  # noqa: BLE001 - storage down: next round
            log.warning("kick poll failed: %s", exc)
            continue
        for session_id in ids:
            session = listed.get(session_id)
            if session is not None:
                session.log.info("kicked by the administrator")
                session.shutdown(KICK_TEXT)
