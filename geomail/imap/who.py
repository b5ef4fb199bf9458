"""The logged-in IMAP sessions in the store's sessions table (``geomail-admin who``/``kick``).

A row is written at login and deleted when the session ends; a failure to
write it is logged and never refuses a login (the table is for operators,
not for serving mail).  Each worker's ``kick_poller`` asks the table every
KICK_INTERVAL seconds, while it has logged-in sessions, which of them an
administrator asked to end, and ends them with a BYE.
"""

import logging
import os
import socket

import gevent

from geomail.store import sessions as table

log = logging.getLogger("geomail.imap.who")

HOST = socket.gethostname()
KICK_INTERVAL = 2.0
KICK_TEXT = "Disconnected by the administrator"


def _remote(session):
    address = session.address
    return str(address[0]) if isinstance(address, tuple) else str(address)


def logged_in(session):
    try:
        table.add(session.context.db, HOST, os.getpid(), session.id, session.account.id,
                  session.account.address, _remote(session), session.tls)
        session.listed = True
    except Exception as exc:  # noqa: BLE001 - the login stands; only `who` misses it
        log.warning("session %s: not listed for `who`: %s", session.id, exc)


def logged_out(session):
    if not session.listed:
        return
    try:
        table.remove(session.context.db, HOST, os.getpid(), session.id)
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
