"""SEARCH and SORT RETURN (UPDATE) contexts and CANCELUPDATE (RFC 5267 §4.2, §4.3).

A context keeps the search key (its sequence sets already UIDs), the sort
program for SORT, and the result the client holds.  Whenever the view moved
on (a new modseq, messages in or out) the key is run again and the
difference goes out as ``* ESEARCH (TAG "t") [UID] ADDTO (pos set)`` and
``REMOVEFROM (pos set)``.  Expunged messages leave the result *before*
their EXPUNGE is sent, so the sequence numbers in REMOVEFROM are still the
client's.  Contexts end with CANCELUPDATE or when the mailbox is closed.

Positions (§4.3): 0 for SEARCH, whose result has no order; for SORT the
1-based place in the sorted result of the first message of each run.
"""

import dataclasses

from geomail.imap import response as R
from geomail.imap.errors import CommandError
from geomail.imap.parser import ParseError
from geomail.store import messages

MAX_CONTEXTS = 10       # per session; one more gets NO [NOUPDATE] (§4.2)


@dataclasses.dataclass
class Context:
    tag: str
    uid_mode: bool
    key: object
    uids: list                   # the result the client holds, in result order
    sort_program: tuple = None   # SORT: (criteria, fields); None for SEARCH
    uses_threadid: bool = False  # a THREADID key: new messages get theirs first


def register(session, tag, uid_mode, key, uids, sort_program=None, uses_threadid=False):
    """Keep a SEARCH/SORT RETURN (UPDATE) result; past MAX_CONTEXTS say NOUPDATE instead."""
    contexts = session.update_contexts
    if tag not in contexts and len(contexts) >= MAX_CONTEXTS:
        session.untagged(b"NO [" + R.NOUPDATE.encode() + b" " + R.quoted(tag)
                         + b"] Too many update contexts")
        return
    contexts[tag] = Context(tag, uid_mode, key, list(uids), sort_program, uses_threadid)
    session.contexts_point = _point(session.view)


def cancelupdate(session, p, tag):
    """CANCELUPDATE tag-string *(SP tag-string) (RFC 5267 §4.2)."""
    tags = [p.astring_str()]
    while p.take(" "):
        tags.append(p.astring_str())
        if len(tags) > MAX_CONTEXTS * 10:
            raise ParseError("too many tags")
    p.end()
    unknown = [t for t in tags if t not in session.update_contexts]
    if unknown:
        raise CommandError(f"No update context for tag {unknown[0][:100]}", R.NONEXISTENT)
    for t in tags:
        del session.update_contexts[t]
    return None


def before_expunge(session, uids):
    """REMOVEFROM for expunged messages, while their sequence numbers are still valid."""
    gone = set(uids)
    for context in session.update_contexts.values():
        removed = [u for u in context.uids if u in gone]
        if removed:
            _send_removed(session, context, removed)
            context.uids = [u for u in context.uids if u not in gone]


def refresh(session):
    """Run every context's key again if the view moved on, and send the difference."""
    view = session.view
    if not session.update_contexts or view is None:
        return
    point = _point(view)
    if point == session.contexts_point:
        return
    session.contexts_point = point
    for context in list(session.update_contexts.values()):
        new = _result(session, context)
        old = set(context.uids)
        now = set(new)
        removed = [u for u in context.uids if u not in now]
        if removed:
            _send_removed(session, context, removed)
        added = [u for u in new if u not in old]
        context.uids = new
        if added:
            _send_added(session, context, new, set(added))


def _point(view):
    return (view.modseq, len(view), view.last_uid)


def _result(session, context):
    from geomail.imap import search, sort
    if context.uses_threadid:
        messages.fill_thread_ids(session.context.db, session.view.mailbox_id)
    if context.sort_program is None:
        return [uid for uid, _ in search.matching(session, context.key)]
    program, fields = context.sort_program
    return sort.sorted_uids(sort.rows_of_view(session, context.key, fields), fields, program)


def _send_removed(session, context, removed):
    """REMOVEFROM runs, the last first, so each position holds while the client applies them."""
    if context.sort_program is None:
        return _send(session, context, b"REMOVEFROM", [(0, removed)])
    gone = set(removed)
    runs = _runs([(i, u) for i, u in enumerate(context.uids, 1) if u in gone])
    _send(session, context, b"REMOVEFROM", list(reversed(runs)))


def _send_added(session, context, new, added):
    """ADDTO runs in ascending position of the new result."""
    if context.sort_program is None:
        return _send(session, context, b"ADDTO", [(0, [u for u in new if u in added])])
    _send(session, context, b"ADDTO", _runs([(i, u) for i, u in enumerate(new, 1) if u in added]))


def _runs(placed):
    """[(position, uid)] -> [(first position, [uids])] of consecutive positions."""
    runs = []
    for position, uid in placed:
        if runs and runs[-1][0] + len(runs[-1][1]) == position:
            runs[-1][1].append(uid)
        else:
            runs.append((position, [uid]))
    return runs


def _send(session, context, word, runs):
    from geomail.imap.search import sequence_set_text
    view = session.view
    line = [b"* ESEARCH (TAG " + R.quoted(context.tag) + b")"]
    if context.uid_mode:
        line.append(b"UID")
    for position, uids in runs:
        numbers = uids if context.uid_mode else [n for n in map(view.seq_of, uids) if n]
        if context.sort_program is None:
            numbers = sorted(numbers)
        line.append(word + b" (%d %s)" % (position, sequence_set_text(numbers)))
    session.out.line(b" ".join(line))
