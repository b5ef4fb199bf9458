"""SEARCH and UID SEARCH (RFC 3501 §6.4.4): every key becomes SQL; MySQL does the work.

The search program is compiled into one WHERE clause over ``messages m``
(and ``message_contents c`` for body and header text), so a large mailbox is
searched in the database, not by loading rows into Python.  Substring
matches are case-insensitive through the utf8mb4_unicode_ci columns.
"""

import datetime
import re

import gevent

from geomail.imap import response as R
from geomail.imap.errors import Bad, CommandError
from geomail.imap.parser import ParseError
from geomail.store import messages

CHARSETS = ("UTF-8", "US-ASCII")
MAX_DEPTH = 50
FLAG_KEYS = {
    "ANSWERED": "m.answered = 1", "UNANSWERED": "m.answered = 0",
    "DELETED": "m.deleted = 1", "UNDELETED": "m.deleted = 0",
    "DRAFT": "m.draft = 1", "UNDRAFT": "m.draft = 0",
    "FLAGGED": "m.flagged = 1", "UNFLAGGED": "m.flagged = 0",
    "SEEN": "m.seen = 1", "UNSEEN": "m.seen = 0",
}
ADDRESS_COLUMNS = {"FROM": "m.from_addr", "TO": "m.to_addr", "CC": "m.cc_addr", "SUBJECT": "m.subject"}
DATE_KEYS = ("BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE")
HEADER_TEXT = "CONVERT(SUBSTRING(c.raw, 1, c.header_size) USING utf8mb4)"
TRACE_TEXT = "CONVERT(m.trace_headers USING utf8mb4)"
# the header block without joining message_contents (alias hc, not c: no join is added)
HEADER_SUBQUERY = ("(SELECT CONVERT(SUBSTRING(hc.raw, 1, hc.header_size) USING utf8mb4) "
                   "FROM message_contents hc WHERE hc.id = m.content_id)")
CUT_LENGTH = 1000      # characters kept in from_addr/to_addr/cc_addr/subject (store.delivery)
# HEADER (and the header-block fallback of FROM/TO/CC/SUBJECT) is a MySQL REGEXP built
# from the client's field name and value.  MariaDB's PCRE2 refuses patterns past 64 KiB
# ("regular expression too large", which used to end the session), and the match time
# grows with the value's length times the header's, so the client text that goes into
# a regex is bounded: at most MAX_REGEX_FIELD + MAX_REGEX_VALUE characters, some 4 KiB
# of pattern at 4 bytes a character.  A longer key cannot be searched without either
# that blow-up or a false match (LIKE alone would find the text in another field), so
# it gets NO [LIMIT] (RFC 5530), which tells the client the reason.
MAX_REGEX_FIELD = 200
MAX_REGEX_VALUE = 1000


def like(value):
    """A LIKE pattern matching value anywhere."""
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Compiler:
    """Search keys -> (SQL, args), pulled from the parser."""

    def __init__(self, session, p, charset="UTF-8"):
        self.session = session
        self.p = p
        self.charset = charset
        self.depth = 0

    def program(self):
        """search-key *(SP search-key): all must match."""
        parts = [self.key()]
        while self.p.take(" "):
            parts.append(self.key())
        return self._and(parts)

    @staticmethod
    def _and(parts):
        sql = " AND ".join(f"({s})" for s, _ in parts)
        args = [a for _, values in parts for a in values]
        return sql, args

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
                return "FALSE", []
        ranges = view.uid_ranges(seqset, uid_mode, saved=self.session.saved_search)
        return messages.ranges_sql(ranges, "m.uid")

    def _keyword(self, word):
        p = self.p
        if word == "ALL":
            return "TRUE", []
        if word in FLAG_KEYS:
            return FLAG_KEYS[word], []
        if word in ("NEW", "OLD", "RECENT"):
            recent = messages.compress(sorted(self.session.view.recent))
            sql, args = messages.ranges_sql(recent, "m.uid")
            if word == "OLD":
                return f"NOT {sql}", args
            if word == "NEW":
                return f"{sql} AND m.seen = 0", args
            return sql, args
        if word == "NOT":
            p.sp()
            sql, args = self.key()
            return f"NOT ({sql})", args
        if word == "OR":
            p.sp()
            left = self.key()
            p.sp()
            right = self.key()
            return f"({left[0]}) OR ({right[0]})", left[1] + right[1]
        if word == "UID":
            p.sp()
            return self._set(p.sequence_set(), uid_mode=True)
        if word in ("LARGER", "SMALLER"):
            p.sp()
            return ("m.rfc822_size > %s" if word == "LARGER" else "m.rfc822_size < %s"), [p.number()]
        if word in ("KEYWORD", "UNKEYWORD"):
            p.sp()
            flag = p.flag()
            sql = "CONCAT(' ', m.keywords, ' ') LIKE %s"
            args = [like(" " + flag + " ")]
            if flag.startswith("\\"):
                column = messages.FLAG_COLUMNS.get(messages.canonical_flag(flag))
                sql, args = (f"m.{column} = 1", []) if column else ("FALSE", [])
            return (sql, args) if word == "KEYWORD" else (f"NOT ({sql})", args)
        if word in DATE_KEYS:
            p.sp()
            return self._date(word, p.date())
        if word in ADDRESS_COLUMNS:
            p.sp()
            value = self.string()
            column = ADDRESS_COLUMNS[word]
            return self._header_or(f"{column} LIKE %s", [like(value)], word.capitalize(), value,
                                   column)
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
            return self._body(self.string())
        if word == "TEXT":
            p.sp()
            value = self.string()
            body_sql, body_args = self._body(value)
            head_sql, head_args = self._header_any(value)
            return f"({head_sql}) OR ({body_sql})", head_args + body_args
        raise ParseError(f"unknown search key {word}")

    def _date(self, word, day):
        """BEFORE/ON/SINCE: the internal date (a UTC moment) by UTC day.  SENT*: the
        Date: header's own calendar date, "disregarding time and timezone" (§6.4.4)."""
        if word.startswith("SENT"):
            op = {"SENTBEFORE": "<", "SENTON": "=", "SENTSINCE": ">="}[word]
            return f"m.sent_date {op} %s", [day]
        column = "m.internal_date"
        if word == "BEFORE":
            return f"{column} < %s", [day]
        if word == "ON":
            if day == datetime.date.max:     # 31-Dec-9999: there is no next day to stop at
                return f"{column} >= %s", [day]
            return f"{column} >= %s AND {column} < %s", [day, day + datetime.timedelta(days=1)]
        return f"{column} >= %s", [day]

    def _header(self, field, value, text=HEADER_TEXT, trace=True):
        """HEADER field value: a line of the header block (or the trace headers) that matches."""
        if not re.fullmatch(r"[!-9;-~]+", field):
            raise Bad("Invalid header field name")
        if len(field) > MAX_REGEX_FIELD or len(value) > MAX_REGEX_VALUE:
            raise CommandError(f"Header searches are limited to field names of {MAX_REGEX_FIELD} "
                               f"and values of {MAX_REGEX_VALUE} characters", R.LIMIT)
        pattern = "(?mi)^" + re.escape(field) + ":"
        if value:   # the value may sit on a folded continuation line
            pattern += r"(?:[^\r\n]|\r?\n[ \t])*" + re.escape(value)
        if not trace:
            return f"{text} REGEXP %s", [pattern]
        return f"{text} REGEXP %s OR {TRACE_TEXT} REGEXP %s", [pattern, pattern]

    def _header_or(self, sql, args, field, value, column):
        """The indexed (decoded) column; the stored header block only where the column was cut.

        The columns hold the decoded field cut to CUT_LENGTH characters: only
        then (or when the field was not indexed) can the header block hold a
        match the column misses.  The trace headers never carry these fields.
        A correlated subquery, so that the usual case needs no join.
        """
        head_sql, head_args = self._header(field, value, text=HEADER_SUBQUERY, trace=False)
        return (f"({sql}) OR ((CHAR_LENGTH({column}) >= {CUT_LENGTH} OR {column} IS NULL) "
                f"AND ({head_sql}))", args + head_args)

    def _header_any(self, value):
        return f"{HEADER_TEXT} LIKE %s OR {TRACE_TEXT} LIKE %s", [like(value), like(value)]

    def _body(self, value):
        return "c.text_plain LIKE %s OR c.text_html LIKE %s", [like(value), like(value)]


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
    where, args = Compiler(session, p, charset).program()
    p.end()
    view = session.view
    uids = messages.search(session.context.db, view.mailbox_id, where, args,
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
