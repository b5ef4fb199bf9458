"""THREAD and UID THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES.

The store hands back each matching message's Message-ID, In-Reply-To, the
end of its References, subject and dates; the threads are built here.  Every
walk is a loop over an explicit stack, never recursion, and bounded: a
message's references are cut to its last MAX_REFERENCES ids, and a parent
chain is followed at most MAX_WALK steps when looking for a loop (a longer
chain is taken for one and the link is not made), so a mailbox of hostile
messages costs work proportional to its size.
"""

import gevent

from geomail.imap.parser import ParseError
from geomail.imap.sort import base_subject, charset_and_program, fold, rows_of_view

ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")
FIELDS = ("date_sent", "internal_date", "subject", "message_id", "in_reply_to", "references")
MAX_REFERENCES = 50
MAX_WALK = 1000
YIELD_EVERY = 1000


def thread(session, p, tag):
    return _thread(session, p, uid_mode=False)


def uid_thread(session, p, tag):
    return _thread(session, p, uid_mode=True)


def _thread(session, p, uid_mode):
    algorithm = p.atom("threading algorithm").upper()
    if algorithm not in ALGORITHMS:
        raise ParseError(f"unknown threading algorithm {algorithm}")
    p.sp()
    _, key = charset_and_program(session, p)
    rows = rows_of_view(session, key, FIELDS)
    messages = [Message(row) for row in rows]
    roots = ordered_subject(messages) if algorithm == "ORDEREDSUBJECT" else references(messages)
    view = session.view
    number = (lambda uid: uid) if uid_mode else view.seq_of
    session.out.write(b"* THREAD" + (b" " if roots else b""))
    for count, root in enumerate(roots, 1):
        session.out.write(_thread_text(root, number))
        if count % YIELD_EVERY == 0:
            gevent.sleep(0)
    session.out.write(b"\r\n")


class Message:
    """One message as threading sees it."""

    __slots__ = ("uid", "date", "subject", "reply", "id", "refs")

    def __init__(self, row):
        uid, _, date_sent, internal_date, subject, message_id, in_reply_to, refs = row
        self.uid = uid
        self.date = date_sent if date_sent is not None else internal_date   # RFC 5256 §2.2
        self.subject, self.reply = base_subject(subject or "")
        self.subject = fold(self.subject)
        ids = message_ids(message_id or "", 1)
        self.id = ids[0] if ids else None
        self.refs = message_ids(refs or "", MAX_REFERENCES, last=True)
        if not self.refs:
            self.refs = message_ids(in_reply_to or "", 1)


def message_ids(text, limit, last=False):
    """The "<...>" ids of a header value (the first or the last ``limit`` of them)."""
    ids, pos = [], 0
    while True:
        start = text.find("<", pos)
        if start < 0:
            break
        end = text.find(">", start + 1)
        if end < 0:
            break
        inner = text[start + 1:end].strip()
        if inner:
            ids.append(inner)
            if not last and len(ids) >= limit:
                break
        pos = end + 1
    return ids[-limit:] if last else ids


class Node:
    """A container of §3 REFERENCES: a message, or a dummy (message None)."""

    __slots__ = ("message", "parent", "children")

    def __init__(self, message=None):
        self.message = message
        self.parent = None
        self.children = []


def _first_message(node):
    """The node's message, or a dummy's first child's (§3 REFERENCES 4)."""
    while node.message is None and node.children:
        node = node.children[0]
    return node.message


def _date_key(node):
    """Sent date, then sequence order."""
    message = _first_message(node)
    return (message.date, message.uid)


# -- ORDEREDSUBJECT ---------------------------------------------------------------

def ordered_subject(messages):
    """Threads of messages of one base subject, each in date order under the first (§3)."""
    groups = {}
    for message in sorted(messages, key=lambda m: (m.subject, m.date, m.uid)):
        groups.setdefault(message.subject, []).append(message)
    roots = []
    for members in groups.values():
        root = Node(members[0])
        for message in members[1:]:
            child = Node(message)
            child.parent = root
            root.children.append(child)
        roots.append(root)
    roots.sort(key=_date_key)
    return roots


# -- REFERENCES ---------------------------------------------------------------------

def _is_ancestor(candidate, node):
    """Whether ``candidate`` is ``node`` or above it; a chain past MAX_WALK counts as yes."""
    steps = 0
    while node is not None:
        if node is candidate:
            return True
        steps += 1
        if steps > MAX_WALK:
            return True
        node = node.parent
    return False


def _link(parent, child):
    """Make child a child of parent unless that would make a loop."""
    if child.children and _is_ancestor(child, parent):
        return
    if parent is child:
        return
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def references(messages):
    """The REFERENCES algorithm of RFC 5256 §3, steps 1 to 6."""
    by_id = {}
    nodes = []
    for count, message in enumerate(messages, 1):          # (1)
        if count % YIELD_EVERY == 0:
            gevent.sleep(0)
        node = by_id.get(message.id) if message.id else None
        if node is not None and node.message is None:
            node.message = message
        else:                 # no Message-ID, or a duplicate: a container of its own
            node = Node(message)
            if message.id and message.id not in by_id:
                by_id[message.id] = node
        nodes.append(node)
        previous = None
        for ref in message.refs:                           # (1B)
            ref_node = by_id.get(ref)
            if ref_node is None:
                ref_node = by_id[ref] = Node()
            if previous is not None and ref_node.parent is None and ref_node is not previous:
                _link(previous, ref_node)
            previous = ref_node
        # (1C) the last reference is the parent: an older link (from a cut References)
        # is broken first, and the new one is not made if it would close a loop
        if node.parent is not None and node.parent is not previous:
            node.parent.children.remove(node)
            node.parent = None
        if previous is not None and node.parent is None and not _is_ancestor(node, previous):
            _link(previous, node)
    roots = [n for n in by_id.values() if n.parent is None]
    seen = set(map(id, roots))
    roots += [n for n in nodes if n.parent is None and id(n) not in seen]   # (2)
    roots = _prune(roots)                                  # (3)
    _sort_all(roots)                                       # (4)
    roots = _group_by_subject(roots)                       # (5)
    _sort_all(roots)                                       # (6)
    return roots


def _prune(roots):
    """(3): dummies without children go; a dummy's children move up, except a dummy root
    with several children, which stays.  Children lists are rebuilt bottom-up (no
    list.index per dummy: a parent of 10,000 dummies stays linear)."""
    order, stack = [], list(roots)
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    for node in reversed(order):          # every child before its parent
        if not any(child.message is None for child in node.children):
            continue
        kept = []
        for child in node.children:
            kept.extend(child.children if child.message is None else (child,))
        for child in kept:
            child.parent = node
        node.children = kept
    out = []
    for root in roots:
        if root.message is None and len(root.children) < 2:
            for child in root.children:
                child.parent = None
            out.extend(root.children)
        else:
            out.append(root)
    return out


def _sort_all(roots):
    roots.sort(key=_date_key)
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node.children:
            node.children.sort(key=_date_key)
            stack.extend(node.children)
    roots.sort(key=_date_key)


def _group_by_subject(roots):
    """(5): roots of one base subject gathered under one thread (the order of the
    result does not matter: step 6 sorts it)."""
    table = {}
    for root in roots:                                     # (5B)-(5C)
        message = _first_message(root)
        if not message.subject:
            continue
        old = table.get(message.subject)
        if old is None or (old.message is not None and (
                root.message is None or (old.message.reply and not message.reply))):
            table[message.subject] = root
    out, where = [], {}
    for root in roots:                                     # (5E)
        if root.parent is not None:      # already placed under a new dummy
            continue
        message = _first_message(root)
        other = table.get(message.subject) if message.subject else None
        if other is None or other is root:
            where[id(root)] = len(out)
            out.append(root)
            continue
        if other.message is None and root.message is None:
            for child in root.children:
                child.parent = other
            other.children.extend(root.children)
        elif other.message is None or (root.message is not None and message.reply
                                       and not other.message.reply):
            root.parent = other
            other.children.append(root)
        else:
            dummy = Node()
            for node in (other, root):
                node.parent = dummy
                dummy.children.append(node)
            table[message.subject] = dummy
            if id(other) in where:
                index = where.pop(id(other))
                out[index] = dummy
                where[id(dummy)] = index
            else:
                where[id(dummy)] = len(out)
                out.append(dummy)
    return out


# -- the response -----------------------------------------------------------------

def _thread_text(root, number):
    """One thread as RFC 5256 §4 writes it: a chain "(a b c)", siblings "(a (b)(c))"."""
    out = bytearray()
    stack = [("open", root)]
    while stack:
        action, node = stack.pop()
        if action == "close":
            out += b")"
            continue
        out += b"("
        # the chain of single children goes on one level
        first = True
        while True:
            if node.message is not None:
                if not first:
                    out += b" "
                out += b"%d" % number(node.message.uid)
                first = False
            if len(node.children) == 1:
                node = node.children[0]
                continue
            break
        stack.append(("close", None))
        if node.children and not first:
            out += b" "
        for child in reversed(node.children):
            stack.append(("open", child))
    return bytes(out)
