"""SEARCH and UID SEARCH (RFC 3501 §6.4.4): the program parsed into a key tree.

With ESEARCH (RFC 4731) ``SEARCH RETURN (MIN MAX ALL COUNT SAVE)`` answers
``* ESEARCH``; SAVE keeps the result for ``$`` (RFC 5182); OLDER/YOUNGER are
WITHIN's (RFC 5032), MODSEQ is CONDSTORE's (RFC 7162 §3.1.5).  SORT and
THREAD (sort.py, thread.py) parse their programs with the same KeyParser.

``KeyParser`` turns the search keys into a ``geomail.searchkeys`` tree with
everything only the session knows already resolved; the store compiles and
runs it (``geomail.store.search``: one WHERE clause, MySQL does the work).
"""

import codecs
import datetime
import re
import time

import gevent

from geomail import objectids, searchkeys as K
from geomail.imap import condstore, contexts
from geomail.imap import response as R, rev2
from geomail.imap.errors import Bad, CommandError
from geomail.imap.parser import ParseError, SequenceSet
from geomail.store import messages
from geomail.store.search import search_modseqs

CHARSETS = ("UTF-8", "US-ASCII")      # named in BADCHARSET; every Python text codec is accepted
MAX_CHARSET_NAME = 64
# RFC 4731 §3.1, RFC 5182 §2.1, RFC 5267 §4.2 (UPDATE) and §4.4 (PARTIAL)
RETURN_OPTIONS = ("MIN", "MAX", "ALL", "COUNT", "SAVE", "UPDATE", "PARTIAL")
MODSEQ_ENTRY_TYPES = ("PRIV", "SHARED", "ALL")            # RFC 7162 §3.1.5 entry-type-req
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
    # RFC 8514 §4.2
    "SAVEDBEFORE": ("saved", "before"), "SAVEDON": ("saved", "on"), "SAVEDSINCE": ("saved", "since"),
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
        self.codec = codec_of(charset)
        self.depth = 0
        self.uses_modseq = False       # a MODSEQ key: the answer carries (MODSEQ n)
        self.uses_threadid = False     # a THREADID key: older rows get theirs first

    def program(self):
        """search-key *(SP search-key): all must match."""
        keys = [self.key()]
        while self.p.take(" "):
            keys.append(self.key())
        return keys[0] if len(keys) == 1 else K.And(tuple(keys))

    def string(self):
        raw = self.p.astring()
        try:
            return raw.decode(self.codec)
        except UnicodeError:
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
        """A sequence set as a search key: numbers past the last message match nothing
        (``1000`` in six messages; ``5:1000`` is 5:6), where FETCH would answer BAD.
        Dovecot answers so, and RFC 3501 §6.4.4 makes a set a filter like any key."""
        view = self.session.view
        if not uid_mode and not seqset.saved:
            count = len(view)
            ranges = [(low, min(high, count)) for low, high in seqset.resolve(count)
                      if 1 <= low <= count]
            if not ranges:
                return K.Nothing()
            seqset = SequenceSet(ranges)
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
        if word in ("OLDER", "YOUNGER"):
            p.sp()
            return _within(p.number32(nonzero=True), older=word == "OLDER")   # nz-number
        if word == "MODSEQ":
            p.sp()
            return self._modseq()
        if word == "SAVEDATESUPPORTED":      # RFC 8514 §4.2: every mailbox keeps save dates
            return K.All()
        if word in ("EMAILID", "THREADID"):
            p.sp()
            self.uses_threadid = self.uses_threadid or word == "THREADID"
            return objectid_key(word, p.atom("objectid"))
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

    def _modseq(self):
        """MODSEQ [entry-name SP entry-type-req SP] mod-sequence-valzer (RFC 7162 §3.1.5).

        Modseqs are kept per message, not per flag, so the entry only has to be
        well formed: every flag's modseq is the message's (RFC 7162 allows it).
        """
        p = self.p
        if p.peek('"'):
            entry = p.quoted()
            if not entry.lower().startswith(b"/flags/") or len(entry) == 7:
                raise ParseError("MODSEQ entry name must be \"/flags/<flag>\"")
            p.sp()
            if p.atom("entry type").upper() not in MODSEQ_ENTRY_TYPES:
                raise ParseError("MODSEQ entry type must be priv, shared or all")
            p.sp()
        self.uses_modseq = True             # CONDSTORE is enabled once the program parsed
        return K.ModSeq(p.number())

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


def objectid_key(word, value):
    """EMAILID / THREADID objectid (RFC 8474 §6): a malformed id is BAD, an id that
    is not one of ours matches nothing."""
    if not objectids.is_objectid(value):
        raise ParseError(f"invalid {word} objectid")
    if word == "THREADID":
        return K.ThreadId(value) if value[:1] == "T" else K.Nothing()
    content_id = objectids.row_of(value, "M")
    return K.EmailId(content_id) if content_id is not None else K.Nothing()


def _check_header_key(field, value):
    if len(field) > MAX_REGEX_FIELD or len(value) > MAX_REGEX_VALUE:
        raise CommandError(f"Header searches are limited to field names of {MAX_REGEX_FIELD} "
                           f"and values of {MAX_REGEX_VALUE} characters", R.LIMIT)


def _within(seconds, older):
    """OLDER n: arrived at least n seconds ago; YOUNGER n: within the last n seconds
    (RFC 5032 §3), by whole seconds of the server's clock as Dovecot counts them."""
    now = datetime.datetime.fromtimestamp(int(time.time()), datetime.timezone.utc)
    now = now.replace(tzinfo=None)
    try:
        moment = now - datetime.timedelta(seconds=seconds - 1 if older else seconds)
    except OverflowError:
        moment = datetime.datetime.min
    return K.Arrived(moment, before=older)


def codec_of(charset):
    """The Python codec of a SEARCH CHARSET name, or NO [BADCHARSET] (RFC 3501 §6.4.4).

    Every text codec Python knows is accepted; "hex", "rot13" and other
    bytes-to-bytes codecs are not charsets.
    """
    try:
        if len(charset) > MAX_CHARSET_NAME:
            raise LookupError(charset)
        info = codecs.lookup(charset)
        if not getattr(info, "_is_text_encoding", True):
            raise LookupError(charset)
        return info.name
    except (LookupError, ValueError, TypeError):
        raise CommandError(f"Unsupported charset {charset}", R.BADCHARSET,
                           code_args="(" + " ".join(CHARSETS) + ")") from None


class ReturnOptions(list):
    """The RETURN options by name; ``partial`` is PARTIAL's (low, high), low <= high."""

    partial = None


def return_options(p):
    """[RETURN (option ...) SP] (RFC 4731 §3.1): the options, or None without RETURN.

    An empty list means ALL (RFC 4731 §3.1).  PARTIAL takes a range
    (RFC 5267 §4.4) and excludes ALL: both would ask for the same numbers.
    """
    if not p.take("RETURN "):
        return None
    p.expect("(")
    options = ReturnOptions()
    while not p.take(")"):
        if options:
            p.sp()
        word = p.atom("return option").upper()
        if word not in RETURN_OPTIONS:
            raise ParseError(f"unknown SEARCH return option {word}")
        if word == "PARTIAL":
            p.sp()
            options.partial = partial_range(p)
        if word not in options:
            options.append(word)
        if len(options) > len(RETURN_OPTIONS):
            raise ParseError("too many return options")
    if "PARTIAL" in options and "ALL" in options:
        raise ParseError("PARTIAL and ALL cannot be combined")
    if "PARTIAL" in options and "UPDATE" in options:
        raise ParseError("PARTIAL with UPDATE is not supported")
    p.sp()
    return options or ReturnOptions(["ALL"])


def partial_range(p):
    """partial-range = nz-number ":" nz-number (RFC 5267 §4.4); "4:2" is 2:4, "*" is BAD."""
    low = p.number32(nonzero=True)
    p.expect(":")
    high = p.number32(nonzero=True)
    return (min(low, high), max(low, high))


def charset_arg(p):
    """[CHARSET SP astring SP]: the charset name (UTF-8 without one)."""
    if not p.take("CHARSET "):
        return "UTF-8"
    if p.utf8:
        # RFC 6855 §3: after ENABLE UTF8=ACCEPT every string is UTF-8 and SEARCH
        # with a CHARSET argument is refused
        raise Bad("SEARCH CHARSET is not allowed after ENABLE UTF8=ACCEPT")
    charset = p.astring_str().upper()
    codec_of(charset)
    p.sp()
    return charset


def sequence_set_text(numbers):
    """Numbers (in the order given) as a sequence-set: ascending runs become a:b."""
    parts = []
    i, n = 0, len(numbers)
    while i < n:
        j = i
        while j + 1 < n and numbers[j + 1] == numbers[j] + 1:
            j += 1
        parts.append(b"%d" % numbers[i] if i == j else b"%d:%d" % (numbers[i], numbers[j]))
        i = j + 1
    return b",".join(parts)


def write_numbers(session, word, numbers, modseq=None):
    """``* SEARCH n n ...`` (or SORT) on one line built in pieces, "(MODSEQ n)" last."""
    session.out.write(b"* " + word)
    for i in range(0, len(numbers), 1000):
        session.out.write(b"".join(b" %d" % n for n in numbers[i:i + 1000]))
        gevent.sleep(0)
    if modseq:
        session.out.write(b" (MODSEQ %d)" % modseq)
    session.out.write(b"\r\n")


def write_esearch(session, tag, uid_mode, options, numbers, modseq=None):
    """``* ESEARCH (TAG "t") [UID] MIN MAX ALL COUNT [MODSEQ]`` (RFC 4731 §3.1, in
    Dovecot's order); MIN/MAX/ALL only when something matched.  ``numbers`` in
    result order (ascending for SEARCH, the sort order for SORT, RFC 5267 §3)."""
    line = [b"* ESEARCH (TAG " + R.quoted(tag) + b")"]
    if uid_mode:
        line.append(b"UID")
    if numbers:
        if "MIN" in options:
            line.append(b"MIN %d" % numbers[0])
        if "MAX" in options:
            line.append(b"MAX %d" % numbers[-1])
        if "ALL" in options:
            line.append(b"ALL " + sequence_set_text(numbers))
    if "COUNT" in options:
        line.append(b"COUNT %d" % len(numbers))
    if options.partial:         # RFC 5267 §4.4: positions low..high of the result
        low, high = options.partial
        found = sequence_set_text(numbers[low - 1:high]) or R.NIL
        line.append(b"PARTIAL (%d:%d %s)" % (low, high, found))
    if modseq:
        line.append(b"MODSEQ %d" % modseq)
    session.out.line(b" ".join(line))


def answer(session, tag, word, uid_mode, options, uids, modseqs, uses_modseq):
    """The result of SEARCH or SORT: ``uids`` in result order, ``modseqs`` {uid: modseq}.

    RFC 5182 §2.1: SAVE alone sends no ESEARCH; with only MIN and/or MAX just
    those messages are saved (and give the MODSEQ, RFC 7162 §3.1.5), else all.
    """
    view = session.view
    if uid_mode:
        numbers = list(uids)
    else:
        numbers = [view.seq_of(uid) for uid in uids]
    if options is None:
        modseq = max((modseqs[u] for u in uids), default=0) if uses_modseq else None
        return write_numbers(session, word, numbers, modseq)
    chosen = uids
    if uids and set(options) & {"MIN", "MAX"} and not set(options) & {"ALL", "COUNT"}:
        chosen = ([uids[0]] if "MIN" in options else []) + ([uids[-1]] if "MAX" in options else [])
    elif options.partial and not set(options) & {"MIN", "MAX", "COUNT"}:
        chosen = uids[options.partial[0] - 1:options.partial[1]]   # RFC 5267 §4.4 with SAVE
    if "SAVE" in options:
        session.saved_search = sorted(set(chosen))
    modseq = max((modseqs[u] for u in chosen), default=0) if uses_modseq else None
    if options != ["SAVE"]:
        write_esearch(session, tag, uid_mode, options, numbers, modseq)


def search(session, p, tag):
    return _search(session, p, tag, uid_mode=False)


def uid_search(session, p, tag):
    return _search(session, p, tag, uid_mode=True)


def _search(session, p, tag, uid_mode):
    options = return_options(p)
    if options is None and rev2.enabled(session):
        options = ReturnOptions(["ALL"])   # RFC 9051 §6.4.4: IMAP4rev2 answers ESEARCH
    saving = options is not None and "SAVE" in options
    try:
        charset = charset_arg(p)
        parser = KeyParser(session, p, charset)
        key = parser.program()
        p.end()
        if parser.uses_modseq:
            condstore.enable(session)       # a CONDSTORE enabling command (RFC 7162 §3.1)
        if parser.uses_threadid:
            messages.fill_thread_ids(session.context.db, session.view.mailbox_id)
        matches = matching(session, key)
    except Exception as exc:
        forget_saved_on_failure(session, saving, exc)
        raise
    uids = [uid for uid, _ in matches]
    answer(session, tag, b"SEARCH", uid_mode, options, uids, dict(matches), parser.uses_modseq)
    if options is not None and "UPDATE" in options:
        contexts.register(session, tag, uid_mode, key, uids, uses_threadid=parser.uses_threadid)
    return completion(session, uid_mode)


def completion(session, uid_mode):
    """The tagged OK's code: [EXPUNGEISSUED] when sequence numbers the client holds name
    messages another session expunged, whose answer the search could not know (a UID
    SEARCH is followed by their EXPUNGE, so it needs none)."""
    if not uid_mode and session.view.shows_expunged(session.context.db):
        return R.EXPUNGEISSUED, None
    return None


def forget_saved_on_failure(session, saving, exc):
    """RFC 5182 §2.1: a SEARCH ... RETURN (SAVE) answered NO empties $; one answered BAD
    leaves it as it was (as Dovecot does)."""
    if saving and not isinstance(exc, (ParseError, Bad)):
        session.saved_search = []


def matching(session, key):
    """[(uid, modseq)] of the view's messages that match, by ascending UID."""
    view = session.view
    if not len(view):
        return []
    return [(uid, modseq) for uid, modseq in search_modseqs(
        session.context.db, view.mailbox_id, key, limit_uid=view.last_uid) if view.seq_of(uid)]
