"""The logged-in IMAP sessions in the store's sessions table (``geomail-admin who``/``kick``).

A row is written when a session logs in, before its OK (``who`` and the API
list it as soon as the client is in), deleted at LOGOUT before its OK, and
when a session ends otherwise (connection lost, BYE) by the worker's
``Unlister``: a greenlet that sends the deletions queued in WRITE_DELAY in
one DELETE, so a dropped session costs no round trip and many share one
request.  A failure to write a row is logged and never
refuses a login (the table is for operators, not for serving mail); rows a
worker leaves behind are removed at the next start (``forget_dead``).  Each
worker's ``kick_poller`` asks the table every KICK_INTERVAL seconds, while
it has listed sessions, which of them an administrator asked to end, and
ends them with a BYE.
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
WRITE_DELAY = 0.1      # seconds a deletion waits for others to share its request


def _remote(session):
    address = session.address
    return str(address[0]) if isinstance(address, tuple) else str(address)


class Unlister:
    """The worker's deleter of ended sessions' rows (module docstring)."""

    def __init__(self, db):
        self.db = db
        self.ended = []           # session ids whose row is to go
        self.pending = gevent.event.Event()
        self.greenlet = None

    def remove(self, session_id):
        self.ended.append(session_id)
        self.pending.set()
        if self.greenlet is None or self.greenlet.dead:
            self.greenlet = gevent.spawn(self._run)

    def _run(self):
        while True:
            self.pending.wait()
            gevent.sleep(WRITE_DELAY)     # what else ends meanwhile shares the request
            self.pending.clear()
            ended, self.ended = self.ended, []
            if not ended:
                continue
            try:
                table.write(self.db, HOST, os.getpid(), [], ended)
            except Exception as exc:  # noqa: BLE001 - the next worker start removes them
                log.warning("%d `who` rows stay: %s", len(ended), exc)


def unlister_for(context):
    unlister = getattr(context, "_imap_unlister", None)
    if unlister is None:
        unlister = context._imap_unlister = Unlister(context.db)
    return unlister


def logged_in(session):
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    try:
        table.write(session.context.db, HOST, os.getpid(),
                    [(session.id, session.account.id, session.account.address, _remote(session),
                      session.tls, now)], [])
        session.listed = True
    except Exception as exc:  # noqa: BLE001 - the login stands; only `who` misses it
        log.warning("session %s: not listed for `who`: %s", session.id, exc)


def logged_out(session):
    """The session has ended: its row goes with the Unlister's next request."""
    if session.listed:
        unlister_for(session.context).remove(session.id)


def logging_out(session):
    """LOGOUT: the row goes before the client hears OK, so the client's (or its
    operator's) next look at ``who`` no longer lists it; one round trip, once."""
    if not session.listed:
        return
    session.listed = False
    try:
        table.write(session.context.db, HOST, os.getpid(), [], [session.id])
    except Exception as exc:  # noqa: BLE001 - the next worker start removes it
        log.warning("session %s: its `who` row stays: %s", session.id, exc)


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
