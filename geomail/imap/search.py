"""SEARCH and UID SEARCH (RFC 3501 §6.4.4): the program parsed into a key tree.

``KeyParser`` turns the search keys into a ``geomail.searchkeys`` tree with
everything only the session knows already resolved; the store compiles and
runs it (``geomail.store.search``: one WHERE clause, MySQL does the work).
"""

import re

import gevent

from geomail import searchkeys as K
from geomail.imap import response as R
from geomail.imap.errors import Bad, CommandError
from geomail.imap.parser import ParseError
from geomail.store import messages
from geomail.store.search import search as run_search

CHARSETS = ("UTF-8", "US-ASCII")
MAX_DEPTH = 50
FLAG_KEYS = {                   # key -> (system flag, set)
    "ANSWERED": ("answered", True), "UNANSWERED": ("answered", False),
    "DELETED": ("deleted", True), "UNDELETED": ("deleted", False),
    "DRAFT": ("draft", True), "UNDRAFT": ("draft", False),
    "FLAGGED": ("flagged", True), "UNFLAGGED": ("flagged", False),
    "SEEN": ("seen", True), "UNSEEN": ("seen", False),
}
DATE_KEYS = {                   # key -> (which date, relation)
    "BEFORE": ("internal", "before"), "ON": ("internal", "on"), "SINCE": ("internal", "since"),
    "SENTBEFORE": ("sent", "before"), "SENTON": ("sent", "on"), "SENTSINCE": ("sent", "since"),
}
ADDRESS_KEYS = ("FROM", "TO", "CC", "SUBJECT")
# HEADER (and the header-block fallback of FROM/TO/CC/SUBJECT) is matched by the store
# with a regular expression built from the client's field name and value.  MariaDB's
# PCRE2 refuses patterns past 64 KiB ("regular expression too large", which used to end
# the session), and the match time grows with the value's length times the header's, so
# the client text that goes into a pattern is bounded: at most MAX_REGEX_FIELD +
# MAX_REGEX_VALUE characters, some 4 KiB of pattern at 4 bytes a character.  A longer
# key cannot be searched without either that blow-up or a false match (a substring
# search alone would find the text in another field), so it gets NO [LIMIT] (RFC 5530).
MAX_REGEX_FIELD = 200
MAX_REGEX_VALUE = 1000


class KeyParser:
    """Search keys -> a geomail.searchkeys tree, pulled from the parser.

    Everything only the session knows is resolved here: sequence numbers and
    ``$`` become UID ranges, NEW/OLD/RECENT the session's \\Recent UIDs, strings
    text in the announced charset.
    """

    def __init__(self, session, p, charset="UTF-8"):
        self.session = session
        self.p = p
        self.charset = charset
        self.depth = 0

    def program(self):
        """search-key *(SP search-key): all must match."""
        keys = [self.key()]
        while self.p.take(" "):
            keys.append(self.key())
        return keys[0] if len(keys) == 1 else K.And(tuple(keys))

    def string(self):
        raw = self.p.astring()
        try:
            return raw.decode("utf-8" if self.charset == "UTF-8" else "ascii")
        except UnicodeDecodeError:
            raise CommandError(f"Search string is not valid {self.charset}", R.BADCHARSET,
                               code_args="(UTF-8 US-ASCII)") from None

    def key(self):
        p = self.p
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError("search program nested too deeply")
        try:
            if p.peek("("):
                p.expect("(")
                result = self.program()
                p.expect(")")
                return result
            if p.peek().isdigit() or p.peek("*") or p.peek("$"):
                return self._set(p.sequence_set(), uid_mode=False)
            word = p.atom("search key").upper()
            return self._keyword(word)
        finally:
            self.depth -= 1

    def _set(self, seqset, uid_mode):
        view = self.session.view
        if not uid_mode and not seqset.saved:
            count = len(view)
            clipped = [(min(a, count) if a else a, min(b, count) if b else b)
                       for a, b in seqset.ranges]
            seqset.ranges = [(a, b) for a, b in clipped if a != 0 and b != 0]
            if not seqset.ranges:
                return K.Nothing()
        return K.Uids(tuple(view.uid_ranges(seqset, uid_mode, saved=self.session.saved_search)))

    def _keyword(self, word):
        p = self.p
        if word == "ALL":
            return K.All()
        if word in FLAG_KEYS:
            return K.Flag(*FLAG_KEYS[word])
        if word in ("NEW", "OLD", "RECENT"):
            recent = K.Uids(tuple(messages.compress(sorted(self.session.view.recent))))
            if word == "OLD":
                return K.Not(recent)
            if word == "NEW":
                return K.And((recent, K.Flag("seen", False)))
            return recent
        if word == "NOT":
            p.sp()
            return K.Not(self.key())
        if word == "OR":
            p.sp()
            left = self.key()
            p.sp()
            return K.Or(left, self.key())
        if word == "UID":
            p.sp()
            return self._set(p.sequence_set(), uid_mode=True)
        if word in ("LARGER", "SMALLER"):
            p.sp()
            return K.Size(p.number(), larger=word == "LARGER")
        if word in ("KEYWORD", "UNKEYWORD"):
            p.sp()
            found = self._flag_key(p.flag())
            return found if word == "KEYWORD" else K.Not(found)
        if word in DATE_KEYS:
            p.sp()
            return K.Date(*DATE_KEYS[word], p.date())
        if word in ADDRESS_KEYS:
            p.sp()
            value = self.string()
            _check_header_key(word.capitalize(), value)
            return K.Address(word.lower(), value)
        if word == "BCC":
            p.sp()
            return self._header("Bcc", self.string())
        if word == "HEADER":
            p.sp()
            field = self.string()
            p.sp()
            return self._header(field, self.string())
        if word == "BODY":
            p.sp()
            return K.Body(self.string())
        if word == "TEXT":
            p.sp()
            return K.Text(self.string())
        raise ParseError(f"unknown search key {word}")

    @staticmethod
    def _flag_key(flag):
        """KEYWORD \\Seen is the system flag; another \\Flag is never set; else a keyword."""
        if not flag.startswith("\\"):
            return K.Keyword(flag)
        column = messages.FLAG_COLUMNS.get(messages.canonical_flag(flag))
        return K.Flag(column) if column else K.Nothing()

    @staticmethod
    def _header(field, value):
        """HEADER field value: a line of the header block (or the trace headers) that matches."""
        if not re.fullmatch(r"[!-9;-~]+", field):
            raise Bad("Invalid header field name")
        _check_header_key(field, value)
        return K.Header(field, value)


def _check_header_key(field, value):
    if len(field) > MAX_REGEX_FIELD or len(value) > MAX_REGEX_VALUE:
        raise CommandError(f"Header searches are limited to field names of {MAX_REGEX_FIELD} "
                           f"and values of {MAX_REGEX_VALUE} characters", R.LIMIT)


def search(session, p, tag):
    return _search(session, p, uid_mode=False)


def uid_search(session, p, tag):
    return _search(session, p, uid_mode=True)


def _search(session, p, uid_mode):
    charset = "UTF-8"
    if p.take("CHARSET "):
        charset = p.astring_str().upper()
        if charset not in CHARSETS:
            p.discard()
            raise CommandError(f"Unsupported charset {charset}", R.BADCHARSET,
                               code_args="(" + " ".join(CHARSETS) + ")")
        p.sp()
    key = KeyParser(session, p, charset).program()
    p.end()
    view = session.view
    uids = run_search(session.context.db, view.mailbox_id, key,
                      limit_uid=view.last_uid) if len(view) else []
    if uid_mode:
        numbers = [uid for uid in uids if view.seq_of(uid)]
    else:
        numbers = [seq for seq in map(view.seq_of, uids) if seq]
    # one response line, built in pieces (a large mailbox gives a long line)
    session.out.write(b"* SEARCH")
    for i in range(0, len(numbers), 1000):
        session.out.write(b"".join(b" %d" % n for n in numbers[i:i + 1000]))
        gevent.sleep(0)
    session.out.write(b"\r\n")
