"""LIST and LSUB (RFC 3501 §6.3.8-9) with CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154) attributes.

LIST-EXTENDED (RFC 5258): selection options SUBSCRIBED, REMOTE (no remote
mailboxes here, so a no-op), RECURSIVEMATCH and SPECIAL-USE (RFC 6154 §3);
several patterns in parentheses; RETURN (SUBSCRIBED CHILDREN SPECIAL-USE).
\\HasChildren/\\HasNoChildren and special uses are always sent (RFC 5258 §4
allows it).  LIST-STATUS (RFC 5819): RETURN (STATUS (items)).
"""

import dataclasses
import re

import gevent

from geomail.imap import response as R, rev2
from geomail.imap.mailbox import status_items, status_line
from geomail.imap.names import decode_pattern
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


def _superiors(name):
    levels = name.split(DELIMITER)
    return (DELIMITER.join(levels[:depth]) for depth in range(1, len(levels)))


def _parents(names):
    """The names that have at least one inferior in ``names`` (for \\HasChildren)."""
    out = set()
    for name in names:
        out.update(_superiors(name))
    return out


def _pattern(p):
    return decode_pattern(p.list_mailbox().encode("utf-8"), p.utf8)


def _matchers(reference, patterns):
    """(Pattern, text) per pattern; none when the reference or a pattern is not
    modified UTF-7 (names.decode_pattern): such a pattern matches nothing."""
    if reference is None:
        return []
    return [(Pattern(reference + pat), reference + pat) for pat in patterns if pat is not None]


@dataclasses.dataclass
class ListRequest:
    """A parsed LIST command (RFC 5258 §3: selection options, patterns, return options)."""
    select: set
    returns: set
    status: list | None
    reference: str | None      # None: not modified UTF-7, nothing matches
    patterns: list             # str, or None for one that is not modified UTF-7


def _options(p, allowed, what):
    """'(' [option *(SP option)] ')' -> {OPTION: argument or None}; an unknown option is BAD (RFC 5258 §3)."""
    options = {}
    p.expect("(")
    while not p.take(")"):
        if options:
            p.sp()
        option = p.atom(what).upper()
        if option not in allowed:
            raise ParseError(f"unknown LIST {what} {option}")
        options[option] = None
        if option == "STATUS":        # RFC 5819: STATUS takes a list of STATUS items
            p.sp()
            options[option] = status_items(p)
    return options


def parse_list(p):
    select, returns, status = set(), set(), None
    if p.peek("("):
        select = set(_options(p, SELECT_OPTIONS, "selection option"))
        p.sp()
    reference = decode_pattern(p.astring(), p.utf8)
    p.sp()
    if p.peek("("):
        patterns = p.paren_list(lambda: _pattern(p))
    else:
        patterns = [_pattern(p)]
    if p.take(" RETURN "):
        returns = _options(p, RETURN_OPTIONS, "return option")
        status = returns.pop("STATUS", None)
        returns = set(returns)
    p.end()
    # RFC 5258 §3: RECURSIVEMATCH alone, or with only REMOTE, is BAD
    if "RECURSIVEMATCH" in select and not select - {"RECURSIVEMATCH", "REMOTE"}:
        raise ParseError("RECURSIVEMATCH needs another selection option")
    return ListRequest(select, returns, status, reference, patterns)


def list_(session, p, tag):
    """LIST, basic (RFC 3501 §6.3.8) or extended (RFC 5258), with LIST-STATUS (RFC 5819)."""
    request = parse_list(p)
    reference = request.reference or ""
    if request.patterns == [""]:
        # RFC 3501 §6.3.8: the delimiter and the root of the reference
        root = reference.split(DELIMITER)[0] + DELIMITER if DELIMITER in reference else ""
        session.untagged(b'LIST (\\Noselect) "/" ' + R.mailbox(root, session.utf8) if root
                         else b'LIST (\\Noselect) "/" ""')
        return
    boxes, subscribed = messages.all_mailboxes(session.context.db, session.account.id)
    for box, attrs, extra in _select(request, boxes, subscribed, rev2.enabled(session)):
        session.untagged(b"LIST (" + " ".join(attrs).encode() + b') "/" '
                         + R.mailbox(box if isinstance(box, str) else box.name, session.utf8) + extra)
        # RFC 5819 §2: a STATUS right after the LIST of each selectable mailbox
        if request.status and not isinstance(box, str):
            session.untagged(status_line(session, box, request.status))


def _select(request, boxes, subscribed, rev2_names=False):
    """(mailbox or bare name, attributes, extended data) of each name to list, INBOX first.

    RFC 5258 §3: SUBSCRIBED lists subscribed names whether or not they exist
    (\\NonExistent when neither the mailbox nor an inferior does); with
    RECURSIVEMATCH a name that matches a pattern is also listed, with CHILDINFO
    (§3.5), when a subscribed inferior matches no pattern itself (as Dovecot
    does: an inferior that is listed on its own needs no CHILDINFO).
    SPECIAL-USE (RFC 6154 §3) lists mailboxes with a special use only.
    ``rev2_names``: an IMAP4rev2 session, told \\NonExistent for every name that is
    not a mailbox (RFC 9051 §7.3.1), placeholders included.
    """
    by_name = {b.name: b for b in boxes}
    existing = _all_names(by_name)
    parents = _parents(by_name)
    matchers = _matchers(request.reference, request.patterns)
    if not matchers:
        return
    matched = {}

    def match(name):
        if name not in matched:
            matched[name] = any(matches(matcher, pat, name) for matcher, pat in matchers)
        return matched[name]

    only_subscribed = "SUBSCRIBED" in request.select
    names = _all_names(list(by_name) + list(subscribed)) if only_subscribed else existing
    childinfo = set()
    if only_subscribed and "RECURSIVEMATCH" in request.select:
        for name in subscribed:
            if not match(name):
                childinfo.update(_superiors(name))
    show_subscribed = only_subscribed or "SUBSCRIBED" in request.returns
    for count, name in enumerate(sorted(names, key=lambda n: (n != INBOX, n)), 1):
        if count % YIELD_EVERY == 0:
            gevent.sleep(0)
        if not match(name):
            continue
        if only_subscribed and name not in subscribed and name not in childinfo:
            continue
        box = by_name.get(name)
        if "SPECIAL-USE" in request.select and (box is None or not box.special_use):
            continue
        attrs = []
        if box is None:
            # a superior of existing mailboxes is a \Noselect placeholder; a name with
            # neither a mailbox nor an inferior does not exist (RFC 5258 §3.4)
            attrs.append("\\Noselect" if name in existing and not rev2_names
                         else "\\NonExistent")
        attrs.append("\\HasChildren" if name in parents else "\\HasNoChildren")
        if show_subscribed and name in subscribed:
            attrs.append("\\Subscribed")
        if box is not None and box.special_use:
            attrs.append(box.special_use)
        extra = b' ("CHILDINFO" ("SUBSCRIBED"))' if name in childinfo else b""
        yield (box if box is not None else name), attrs, extra


def lsub(session, p, tag):
    reference = decode_pattern(p.astring(), p.utf8)
    p.sp()
    pattern = _pattern(p)
    p.end()
    if pattern == "":
        session.untagged(b'LSUB (\\Noselect) "/" ""')
        return
    boxes, subscribed = messages.all_mailboxes(session.context.db, session.account.id)
    existing = {b.name: b for b in boxes}
    matchers = _matchers(reference, [pattern])
    for count, name in enumerate(sorted(_all_names(subscribed), key=lambda n: (n != INBOX, n)), 1):
        if count % YIELD_EVERY == 0:
            gevent.sleep(0)
        if not any(matches(matcher, text, name) for matcher, text in matchers):
            continue
        attrs = []
        if name not in subscribed or name not in existing:
            attrs.append("\\Noselect")
        box = existing.get(name)
        if box is not None and box.special_use:
            attrs.append(box.special_use)
        session.untagged(b"LSUB (" + " ".join(attrs).encode() + b') "/" ' + R.mailbox(name, session.utf8))
