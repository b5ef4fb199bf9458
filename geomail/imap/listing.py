"""LIST and LSUB (RFC 3501 §6.3.8-9) with CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154) attributes.

Also accepts the RFC 5258 forms (selection options SUBSCRIBED, SPECIAL-USE,
REMOTE, RECURSIVEMATCH; RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS ...)) so
that LIST-EXTENDED and LIST-STATUS only need advertising later.
"""

import re

import gevent

from geomail.imap import response as R
from geomail.imap.mailbox import status_items, status_line
from geomail.imap.names import decode_name
from geomail.imap.parser import ParseError
from geomail.store import messages
from geomail.store.mailboxes import DELIMITER, INBOX

MAX_NAME = 1024        # characters; stored names are at most 512 (mailboxes.name)
_WILDCARD_RUN = re.compile(r"[*%]{2,}")
YIELD_EVERY = 50       # names matched between two yields to the other greenlets
SELECT_OPTIONS = ("SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE")
RETURN_OPTIONS = ("SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS")


class Pattern:
    """A LIST/LSUB pattern (RFC 3501 §6.3.8): '*' matches anything, '%' anything but the delimiter.

    Matched by simulating its automaton over the name, all states at once as
    the bits of one integer (shift-and), never by backtracking: the work is
    len(name) steps of a few integer operations whatever the pattern.  (A
    regex of '.*'s backtracked on "*%*%...x" for longer than the worker's
    heartbeat.)  Bit i set means "the first i tokens are matched"; runs of
    wildcards are collapsed first ('*' in a run makes the run '*').
    """

    def __init__(self, text):
        self.text = text
        # a run of one character class, no nesting: linear, in C (the pattern may be 1 MB)
        tokens = _WILDCARD_RUN.sub(lambda run: "*" if "*" in run.group() else "%", text)
        self.literals = len(tokens) - tokens.count("*") - tokens.count("%")
        if self.literals > MAX_NAME:
            tokens = ""        # longer than any name: matches nothing (see match())
        self.star = self.percent = 0
        self.by_char = {}
        for i, token in enumerate(tokens):
            bit = 1 << i
            if token == "*":
                self.star |= bit
            elif token == "%":
                self.percent |= bit
            else:
                self.by_char[token] = self.by_char.get(token, 0) | bit
        self.wild = self.star | self.percent
        self.accept = 1 << len(tokens)

    def _closure(self, states):
        # a wildcard matches the empty string; wildcards never follow each other
        return states | (states & self.wild) << 1

    def match(self, name):
        if self.literals > len(name):
            return False
        states = self._closure(1)
        for ch in name:
            stay = states & (self.star if ch == DELIMITER else self.wild)
            states = self._closure(stay | (states & self.by_char.get(ch, 0)) << 1)
            if not states:
                return False
        return bool(states & self.accept)


def matches(compiled, pattern, name):
    if compiled.match(name):
        return True
    # INBOX is case-insensitive: "inbox", "Inbox/%" match INBOX and its inferiors
    if (name == INBOX or name.startswith(INBOX + DELIMITER)) and pattern[:5].upper() == INBOX:
        return Pattern(INBOX + pattern[5:]).match(name)
    return False


def _all_names(names):
    """Every name plus the superiors implied by hierarchy: {name: exists}."""
    out = {}
    for name in names:
        out[name] = True
        levels = name.split(DELIMITER)
        for depth in range(1, len(levels)):
            out.setdefault(DELIMITER.join(levels[:depth]), False)
    return out


def _has_children(name, names):
    prefix = name + DELIMITER
    return any(other.startswith(prefix) for other in names)


def _pattern(p):
    return decode_name(p.list_mailbox().encode("utf-8"), p.utf8)


def list_(session, p, tag):
    select_opts, return_opts, status = set(), set(), None
    if p.peek("("):
        p.expect("(")
        while not p.take(")"):
            if select_opts:
                p.sp()
            select_opts.add(p.atom("selection option").upper())
        if not select_opts <= set(SELECT_OPTIONS):
            raise ParseError("unknown LIST selection option")
        p.sp()
    reference = decode_name(p.astring(), p.utf8)
    p.sp()
    if p.peek("("):
        patterns = p.paren_list(lambda: _pattern(p))
    else:
        patterns = [_pattern(p)]
    if p.take(" RETURN "):
        p.expect("(")
        while not p.take(")"):
            if return_opts:
                p.sp()
            option = p.atom("return option").upper()
            if option not in RETURN_OPTIONS:
                raise ParseError(f"unknown LIST return option {option}")
            return_opts.add(option)
            if option == "STATUS":
                p.sp()
                status = status_items(p)
    p.end()
    if "RECURSIVEMATCH" in select_opts and not select_opts - {"RECURSIVEMATCH", "REMOTE"}:
        raise ParseError("RECURSIVEMATCH needs another selection option")
    if patterns == [""]:
        # RFC 3501 §6.3.8: the delimiter and the root of the reference
        root = reference.split(DELIMITER)[0] + DELIMITER if DELIMITER in reference else ""
        session.untagged(b'LIST (\\Noselect) "/" ' + R.mailbox(root, session.utf8) if root
                         else b'LIST (\\Noselect) "/" ""')
        return
    boxes, subscribed = messages.all_mailboxes(session.context.db, session.account.id)
    by_name = {b.name: b for b in boxes}
    names = _all_names(by_name)
    if "SUBSCRIBED" in select_opts:
        names = _all_names(list(by_name) + list(subscribed))
    compiled = [(Pattern(reference + pat), reference + pat) for pat in patterns]
    listed = []
    for count, name in enumerate(sorted(names, key=lambda n: (n != INBOX, n)), 1):
        if count % YIELD_EVERY == 0:
            gevent.sleep(0)
        if not any(matches(matcher, pat, name) for matcher, pat in compiled):
            continue
        box = by_name.get(name)
        attrs = []
        if "SUBSCRIBED" in select_opts and name not in subscribed:
            continue
        if box is None:
            attrs.append("\\NonExistent" if select_opts or return_opts else "\\Noselect")
        if _has_children(name, names):
            attrs.append("\\HasChildren")
        else:
            attrs.append("\\HasNoChildren")
        if ("SUBSCRIBED" in select_opts or "SUBSCRIBED" in return_opts) and name in subscribed:
            attrs.append("\\Subscribed")
        if box is not None and box.special_use:
            attrs.append(box.special_use)
        elif "SPECIAL-USE" in select_opts:
            continue
        session.untagged(b"LIST (" + " ".join(attrs).encode() + b') "/" ' + R.mailbox(name, session.utf8))
        listed.append(box)
    if status:
        for box in listed:
            if box is not None:
                session.untagged(status_line(session, box, status))


def lsub(session, p, tag):
    reference = decode_name(p.astring(), p.utf8)
    p.sp()
    pattern = _pattern(p)
    p.end()
    if pattern == "":
        session.untagged(b'LSUB (\\Noselect) "/" ""')
        return
    boxes, subscribed = messages.all_mailboxes(session.context.db, session.account.id)
    existing = {b.name: b for b in boxes}
    matcher = Pattern(reference + pattern)
    for count, name in enumerate(sorted(_all_names(subscribed), key=lambda n: (n != INBOX, n)), 1):
        if count % YIELD_EVERY == 0:
            gevent.sleep(0)
        if not matches(matcher, reference + pattern, name):
            continue
        attrs = []
        if name not in subscribed or name not in existing:
            attrs.append("\\Noselect")
        box = existing.get(name)
        if box is not None and box.special_use:
            attrs.append(box.special_use)
        session.untagged(b"LSUB (" + " ".join(attrs).encode() + b') "/" ' + R.mailbox(name, session.utf8))
