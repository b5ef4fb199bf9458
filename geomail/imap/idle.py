"""IDLE (RFC 2177): wait for DONE while the watcher wakes us on changes.

A reader greenlet waits for the client's DONE; the session greenlet waits
for it or for the watcher's wake-up, then catches the view up and sends
EXISTS/EXPUNGE/FETCH at once (EXPUNGE is allowed during IDLE).
"""

import time

import gevent

from geomail.imap import contexts
from geomail.imap.errors import Bad, Bye
from geomail.netio import Timeout


def idle(session, p, tag):
    p.end()
    session.out.line(b"+ idling")
    session.out.flush()
    reader = gevent.spawn(p.next_line)
    deadline = time.monotonic() + session.idle_timeout
    try:
        while True:
            session.wakeup.clear()
            if session.view is not None:
                session.view.catch_up(session, allow_expunge=True, shared=True)
                contexts.refresh(session)
                session.out.flush()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Bye("Autologout; idle for too long")
            gevent.wait([reader, session.wakeup], count=1, timeout=remaining)
            if reader.ready():
                break
    finally:
        if not reader.ready():
            reader.kill()
    try:
        line = reader.get()
    except Timeout:
        raise Bye("Autologout; idle for too long") from None
    p.pos = len(line)
    if line.strip().upper() != b"DONE":
        raise Bad("Expected DONE to end IDLE")
    return "IDLE terminated"
