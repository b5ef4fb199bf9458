"""STORE and UID STORE (RFC 3501 §6.4.6): +FLAGS, -FLAGS, FLAGS, with .SILENT.

The store changes the rows under the mailbox lock with one new modseq; the
answer is an untagged FETCH (FLAGS) for every message of the set unless
.SILENT (then other sessions' changes still come at the command boundary).
"""

from geomail.imap import response as R
from geomail.imap.errors import Bad, CommandError
from geomail.imap.parser import ParseError
from geomail.store import messages

MAX_KEYWORD = messages.MAX_KEYWORD_LENGTH


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


def check_flags(flags):
    out = []
    for flag in flags:
        if flag.startswith("\\"):
            canonical = messages.canonical_flag(flag)
            if canonical == flag and flag not in messages.SYSTEM_FLAGS and flag.lower() != "\\recent":
                raise Bad(f"Invalid system flag {flag}")
            if flag.lower() == "\\recent" or flag == "\\*":
                continue            # \Recent is the server's to set (RFC 3501 §2.3.2)
            flag = canonical
        elif len(flag) > MAX_KEYWORD:
            raise Bad("Keyword too long")
        if flag not in out:
            out.append(flag)
    return out


def _store(session, p, uid_mode):
    seqset = p.sequence_set()
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
    view = session.view
    if view.readonly:
        raise CommandError("Mailbox is read-only", R.READ_ONLY)
    ranges = view.uid_ranges(seqset, uid_mode, saved=session.saved_search)
    if not ranges:
        return
    db = session.context.db
    modseq, changed, _ = messages.store_flags(db, view.mailbox_id, ranges, mode, flags)
    if changed:
        view.own_change(modseq)
    if silent:
        return
    for row in messages.fetch_rows(db, view.mailbox_id, ranges, ["flags"]):
        uid = row["uid"]
        seq = view.seq_of(uid)
        if seq is None:
            continue
        current = list(row["flags"])
        if uid in view.recent:
            current.append("\\Recent")
        if uid_mode:
            session.untagged(b"%d FETCH (UID %d FLAGS %s)" % (seq, uid, R.flag_list(current)))
        else:
            session.untagged(b"%d FETCH (FLAGS %s)" % (seq, R.flag_list(current)))
