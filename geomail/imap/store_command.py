"""STORE and UID STORE (RFC 3501 §6.4.6): +FLAGS, -FLAGS, FLAGS, with .SILENT,
and CONDSTORE's (UNCHANGEDSINCE n) (RFC 7162 §3.1.3).

The store changes the rows under the mailbox lock with one new modseq; the
answer is an untagged FETCH (FLAGS) for every message of the set unless
.SILENT (then other sessions' changes still come at the command boundary).
A keyword new to the mailbox is announced in FLAGS before the first FETCH
that shows it (view.announce_keywords).
"""

import gevent

from geomail.imap import condstore
from geomail.imap import response as R
from geomail.imap.errors import Bad, CommandError
from geomail.imap.parser import ParseError
from geomail.imap.search import sequence_set_text
from geomail.store import messages

MAX_KEYWORD = messages.MAX_KEYWORD_LENGTH
MAX_KEYWORDS = messages.MAX_MESSAGE_KEYWORDS
YIELD_EVERY = 200        # untagged FETCH responses between two yields to other greenlets


def store(session, p, tag):
    return _store(session, p, uid_mode=False)


def uid_store(session, p, tag):
    return _store(session, p, uid_mode=True)


def parse_flags(p):
    """flag-list or flag *(SP flag); validates system flags and keywords."""
    if p.peek("("):
        flags = p.flag_list()
    else:
        flags = [p.flag()]
        while p.take(" "):
            flags.append(p.flag())
    return check_flags(flags)


def keyword_limit():
    return CommandError(f"At most {MAX_KEYWORDS} keywords of at most {MAX_KEYWORD} characters "
                        f"per message, {messages.MAX_MAILBOX_KEYWORDS} per mailbox", R.LIMIT)


def check_flags(flags):
    """The flags of STORE/APPEND, each once; BAD for invalid ones, NO [LIMIT] for too many."""
    out = []
    seen = set()
    for flag in flags:
        if flag.startswith("\\"):
            canonical = messages.canonical_flag(flag)
            if canonical == flag and flag not in messages.SYSTEM_FLAGS and flag.lower() != "\\recent":
                raise Bad(f"Invalid system flag {flag}")
            if flag.lower() == "\\recent" or flag == "\\*":
                continue            # \Recent is the server's to set (RFC 3501 §2.3.2)
            flag = canonical
        elif len(flag) > MAX_KEYWORD:
            raise keyword_limit()
        if flag not in seen:
            seen.add(flag)
            out.append(flag)
    if len(out) > MAX_KEYWORDS + len(messages.SYSTEM_FLAGS):
        raise keyword_limit()
    return out


def _store(session, p, uid_mode):
    seqset = p.sequence_set()
    p.sp()
    modifiers = {}
    if p.peek("("):
        modifiers = condstore.store_modifiers(p)
        p.sp()
    mode = "="
    if p.take("+"):
        mode = "+"
    elif p.take("-"):
        mode = "-"
    if not p.take("FLAGS"):
        raise ParseError("expected FLAGS, +FLAGS or -FLAGS")
    silent = p.take(".SILENT")
    p.sp()
    flags = parse_flags(p)
    p.end()
    unchangedsince = modifiers.get("UNCHANGEDSINCE")
    if unchangedsince is not None:
        condstore.enable(session)          # a CONDSTORE enabling command (RFC 7162 §3.1)
    view = session.view
    if view.readonly:
        raise CommandError("Mailbox is read-only", R.READ_ONLY)
    ranges = view.uid_ranges(seqset, uid_mode, saved=session.saved_search)
    if not ranges:
        return
    db = session.context.db
    read_since = view.modseq
    try:
        stored = messages.store_flags(db, view.mailbox_id, ranges, mode, flags, unchangedsince,
                                      reads=view.catch_up_reads(db))
    except messages.KeywordLimit:
        raise keyword_limit() from None
    modseq, changed, failed, current = stored.modseq, stored.changed, stored.failed, stored.current
    view.reads_done(read_since, stored.reads)
    if changed:
        view.own_change(modseq)
    with_modseq = condstore.is_on(session)
    if not silent:
        _answer(session, view, current, uid_mode or with_modseq, with_modseq)
    elif with_modseq and changed:
        _answer_modseq(session, view, sorted(changed), modseq)
    # Messages another session expunged meanwhile are left out and the STORE is OK: RFC 2180 4.2.1 (.SILENT) and 4.2.3 allow it, and Dovecot does so
    # (a client cannot do anything useful with a NO for a message it will see vanish).
    if failed:
        # RFC 7162 §3.1.3: the messages whose modseq was above UNCHANGEDSINCE were left alone
        numbers = failed if uid_mode else [view.seq_of(uid) for uid in failed]
        return f"{R.MODIFIED} {sequence_set_text(numbers).decode()}", "Conditional STORE failed"


def _answer(session, view, current, with_uid, with_modseq):
    """The untagged FETCH (FLAGS) of every message of the set still there, but those that
    failed UNCHANGEDSINCE, as the STORE left them (``current``: {uid: (flags, modseq)});
    with UID and MODSEQ once CONDSTORE is on (RFC 7162 §3.1.4.1)."""
    for count, (uid, (flags, modseq)) in enumerate(current.items(), 1):
        if count % YIELD_EVERY == 0:
            gevent.sleep(0)
        seq = view.seq_of(uid)
        if seq is None:
            continue
        items = b"FLAGS " + R.flag_list(view.announced_flags(session, uid, flags))
        if with_uid:
            items = b"UID %d %s" % (uid, items)
        if with_modseq:
            items += b" MODSEQ (%d)" % modseq
        session.untagged(b"%d FETCH (%s)" % (seq, items))


def _answer_modseq(session, view, uids, modseq):
    """STORE.SILENT once CONDSTORE is on: each changed message's new MODSEQ, so the client's
    cache stays right (RFC 7162 §3.1.3, example 4)."""
    for count, uid in enumerate(uids, 1):
        if count % YIELD_EVERY == 0:
            gevent.sleep(0)
        seq = view.seq_of(uid)
        if seq is not None:
            session.untagged(b"%d FETCH (UID %d MODSEQ (%d))" % (seq, uid, modseq))
