"""QRESYNC (RFC 7162 §3.2): SELECT's parameters, the resynchronisation, VANISHED.

``SELECT box (QRESYNC (uidvalidity modseq [known-uids [seq-match-data]]))``
answers, after the usual SELECT responses, ``* VANISHED (EARLIER) uids`` for
the known UIDs expunged since modseq and ``* n FETCH (UID FLAGS MODSEQ)`` for
the known messages changed since (§3.2.5).  The store's change log of
expunges is never pruned, so the answer is exact and seq-match-data (a hint
for servers that forget) is checked for syntax only.
"""

import gevent

from geomail.imap import condstore
from geomail.imap import response as R
from geomail.imap.errors import Bad
from geomail.imap.parser import ParseError, SequenceSet
from geomail.store import messages

YIELD_EVERY = 200        # responses written between two yields to the other greenlets
UIDS_PER_WRITE = 1000    # ranges of a VANISHED line written at a time


class SelectParameters:
    """What SELECT/EXAMINE's parameters asked for (RFC 4466 §2.1 select-params)."""

    def __init__(self):
        self.condstore = False
        self.uidvalidity = None       # QRESYNC: the client's cache, if any
        self.modseq = None
        self.known_uids = None        # SequenceSet of UIDs; None: all


def select_parameters(session, p):
    """[SP "(" select-param *(SP select-param) ")"] after the mailbox name."""
    params = SelectParameters()
    if not p.take(" "):
        return params
    p.expect("(")
    while True:
        name = p.atom("SELECT parameter").upper()
        if name == "CONDSTORE" and not params.condstore:
            params.condstore = True
        elif name == "QRESYNC" and params.modseq is None:
            if not condstore.qresync_on(session):
                # RFC 7162 §3.2.5: BAD unless ENABLE QRESYNC came first
                raise Bad("QRESYNC is not enabled")
            p.sp()
            _qresync_parameters(p, params)
        else:
            raise ParseError(f"unknown or repeated SELECT parameter {name}")
        if p.take(")"):
            return params
        p.sp()


def _qresync_parameters(p, params):
    """"(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"."""
    p.expect("(")
    params.uidvalidity = p.number32(nonzero=True)
    p.sp()
    params.modseq = condstore.modseq_value(p)
    if p.take(" "):
        if not p.peek("("):
            params.known_uids = _uid_set(p, "known-uids")
            if p.take(" "):
                _seq_match_data(p)
        else:
            _seq_match_data(p)
    p.expect(")")


def _seq_match_data(p):
    """"(" known-sequence-set SP known-uid-set ")": checked, not needed (module docstring)."""
    p.expect("(")
    _uid_set(p, "known-sequence-set")
    p.sp()
    _uid_set(p, "known-uid-set")
    p.expect(")")


def _uid_set(p, what):
    """A sequence-set without "*" or "$" (RFC 7162 §7 known-uids and its kin)."""
    if p.peek("$"):
        raise ParseError(f"{what} cannot be $")
    numbers = p.sequence_set()
    if any(low is None or high is None for low, high in numbers.ranges):
        raise ParseError(f"{what} cannot hold *")
    return numbers


def resync(session, view, params):
    """The VANISHED (EARLIER) and FETCH responses of a QRESYNC SELECT (§3.2.5.2)."""
    if params.modseq is None or params.uidvalidity != view.uidvalidity:
        return            # another UIDVALIDITY: the client's cache is void, a plain SELECT
    known = params.known_uids or SequenceSet([(1, None)])
    db = session.context.db
    vanished_earlier(session, view, params.modseq,
                     known.resolve(max(view.uidnext - 1, 1)))
    ranges = view.uid_ranges(known, uid_mode=True)
    if not ranges:
        return
    rows = messages.fetch_rows(db, view.mailbox_id, ranges, ["flags", "modseq"],
                               changedsince=params.modseq)
    for count, row in enumerate(rows, 1):
        if count % YIELD_EVERY == 0:
            gevent.sleep(0)
        seq = view.seq_of(row["uid"])
        if seq is None:
            continue
        flags = view.announced_flags(session, row["uid"], row["flags"])
        session.untagged(b"%d FETCH (UID %d FLAGS %s MODSEQ (%d))"
                         % (seq, row["uid"], R.flag_list(flags), row["modseq"]))


def vanished_earlier(session, view, since, ranges):
    """``* VANISHED (EARLIER) uids`` for UIDs in ``ranges`` expunged after ``since``
    (§3.2.10) that the view no longer holds: an expunge the client has not been told
    of yet comes as a plain VANISHED at the command's end instead."""
    uids = messages.expunged_since(session.context.db, view.mailbox_id, since, ranges)
    write_vanished(session, (uid for uid in uids if view.seq_of(uid) is None), earlier=True)


def write_vanished(session, uids, earlier=False):
    """``* VANISHED [(EARLIER)] set`` for ascending ``uids`` (any iterable), written in
    pieces as the ranges close, so a long history never sits in memory; nothing if
    ``uids`` is empty."""
    head = b"* VANISHED (EARLIER) " if earlier else b"* VANISHED "
    out = session.out
    started = False
    pending = []
    low = high = None
    for uid in uids:
        if high is not None and uid == high + 1:
            high = uid
            continue
        if high is not None:
            pending.append(_range(low, high))
        low = high = uid
        if len(pending) >= UIDS_PER_WRITE:
            out.write((b"," if started else head) + b",".join(pending))
            started = True
            pending = []
            gevent.sleep(0)
    if high is None:
        return
    pending.append(_range(low, high))
    out.write((b"," if started else head) + b",".join(pending) + b"\r\n")


def _range(low, high):
    return b"%d" % low if low == high else b"%d:%d" % (low, high)
