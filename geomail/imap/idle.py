"""IDLE (RFC 2177): wait for DONE while the watcher wakes us on changes.

The session's own greenlet waits for either: the client's next bytes or the
watcher's wake-up (``Connection.wait_readable``).  On a wake-up it catches
the view up and sends EXISTS/EXPUNGE/FETCH at once (EXPUNGE is allowed
during IDLE).  No second greenlet reads the socket meanwhile, and nothing
is read or buffered until the client speaks, so an idler costs only its
session (bench/imap_idle.py measures it).
"""

import time

from geomail.imap import contexts
from geomail.imap.errors import Bad, Bye
from geomail.netio import Timeout

AUTOLOGOUT = "Autologout; idle for too long"


def idle(session, p, tag):
    p.end()
    session.out.line(b"+ idling")
    session.out.flush()
    deadline = time.monotonic() + session.idle_timeout
    while True:
        session.wakeup.clear()
        if session.view is not None:
            session.view.catch_up(session, allow_expunge=True, shared=True)
            contexts.refresh(session)
            session.out.flush()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Bye(AUTOLOGOUT)
        try:
            if session.conn.wait_readable(remaining, session.wakeup):
                break
        except Timeout:
            raise Bye(AUTOLOGOUT) from None
    try:
        line = p.next_line()
    except Timeout:
        raise Bye(AUTOLOGOUT) from None
    p.pos = len(line)
    if line.strip().upper() != b"DONE":
        raise Bad("Expected DONE to end IDLE")
    return "IDLE terminated"
