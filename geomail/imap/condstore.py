"""CONDSTORE and QRESYNC (RFC 7162): the session's switches and the command modifiers.

CONDSTORE is on for the rest of the connection once the client issues a
"CONDSTORE enabling command" (§3.1: ENABLE, SELECT/EXAMINE (CONDSTORE),
FETCH MODSEQ or CHANGEDSINCE, SEARCH MODSEQ, STORE UNCHANGEDSINCE, STATUS
HIGHESTMODSEQ); from then on every untagged FETCH the client did not ask
for carries UID and MODSEQ (§3.1.4.1).  QRESYNC is on only after ENABLE
QRESYNC (§3.2.3), which turns CONDSTORE on too; then expunges are
reported as VANISHED (§3.2.10).

Every message and mailbox keeps its modseq in the store, so HIGHESTMODSEQ
is sent on every SELECT/EXAMINE and NOMODSEQ never (§3.1.2.1).
"""

from geomail.imap import response as R
from geomail.imap.parser import ParseError

CONDSTORE = "CONDSTORE"
QRESYNC = "QRESYNC"
ENABLEABLE = (CONDSTORE, QRESYNC)     # RFC 5161 ENABLE


def enable(session, name=CONDSTORE):
    """Turn CONDSTORE (or QRESYNC, which implies it) on for the connection.

    RFC 7162 §3.1: a CONDSTORE enabling command run while a mailbox is selected
    tells the mailbox's HIGHESTMODSEQ in an OK response (imaptest esearch-condstore).
    """
    first = CONDSTORE not in session.enabled
    session.enabled.add(CONDSTORE)
    if name == QRESYNC:
        session.enabled.add(QRESYNC)
    if first and session.view is not None:
        session.untagged(f"OK [{R.HIGHESTMODSEQ} {session.view.modseq}] Highest")


def is_on(session):
    """Has a CONDSTORE enabling command run on this connection?"""
    return CONDSTORE in session.enabled


def qresync_on(session):
    """Has ENABLE QRESYNC run on this connection?"""
    return QRESYNC in session.enabled


def modseq_value(p):
    """mod-sequence-value (RFC 7162 §7): at most 2^63 - 1.  0, where the grammar wants
    a positive number, is taken as Dovecot takes it: it only means "everything"."""
    return p.number()


def _modifiers(p, read_one):
    """"(" modifier *(SP modifier) ")": {NAME: value}, each name once."""
    seen = {}
    p.expect("(")
    while True:
        name = p.atom("modifier").upper()
        if name in seen:
            raise ParseError(f"{name} given twice")
        seen[name] = read_one(name)
        if p.take(")"):
            return seen
        p.sp()


def fetch_modifiers(p):
    """FETCH modifiers (RFC 7162 §3.1.4.1, §3.2.6): {"CHANGEDSINCE": n, "VANISHED": True}."""
    def one(name):
        if name == "CHANGEDSINCE":
            p.sp()
            return modseq_value(p)
        if name == "VANISHED":
            return True
        raise ParseError(f"unknown FETCH modifier {name}")
    return _modifiers(p, one)


def store_modifiers(p):
    """STORE modifiers (RFC 7162 §3.1.3): {"UNCHANGEDSINCE": n} (mod-sequence-valzer)."""
    def one(name):
        if name != "UNCHANGEDSINCE":
            raise ParseError(f"unknown STORE modifier {name}")
        p.sp()
        return modseq_value(p)
    return _modifiers(p, one)
