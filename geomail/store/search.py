"""SEARCH in the database: a key tree (geomail.searchkeys) compiled to one WHERE clause.

The clause is over ``messages m`` (and ``message_contents c`` for body and
header text, joined only when a key needs it), so a large mailbox is
searched in the database, not by loading rows into Python.  Substring
matches are case-insensitive: on MySQL through the utf8mb4_unicode_ci
columns (LIKE), on SQLite by Unicode case folding (the CASEFOLD and REGEXP
functions geomail/store/sqlite.py gives every connection).  The two
backends differ only in the ``TextOps`` below.
Every value travels as a query argument; the only client text that becomes
part of a pattern is escaped (LIKE) or ``re.escape``d (REGEXP), and its
length was bounded by the protocol layer (MariaDB's PCRE2 refuses patterns
past 64 KiB).
"""

import datetime
import re

import gevent

from geomail import searchkeys as K
from geomail.store import dialect
from geomail.store.messages import PAGE, ranges_sql

ADDRESS_COLUMNS = {"from": "m.from_addr", "to": "m.to_addr", "cc": "m.cc_addr",
                   "subject": "m.subject"}
CUT_LENGTH = 1000      # characters kept in from_addr/to_addr/cc_addr/subject (store.delivery)
_DATE_OPS = {"before": "<", "on": "=", "since": ">="}


class TextOps:
    """How one backend matches text: substrings, regular expressions, the header block."""

    def __init__(self, the_dialect, header_text, trace_text, header_subquery):
        self.dialect = the_dialect
        self.header_text = header_text
        self.trace_text = trace_text
        # the header block without joining message_contents (alias hc, not c: no join)
        self.header_subquery = header_subquery

    def contains(self, text, value):
        """(SQL, args): ``value`` occurs in ``text``, case-insensitively."""
        if self.dialect.name == dialect.SQLITE_NAME:
            return f"instr(CASEFOLD({text}), %s) > 0", [value.casefold()]
        return f"{text} LIKE %s", [like(value)]

    def tail(self, text, chars):
        """SQL: the last ``chars`` characters of ``text`` (all of a shorter one)."""
        if self.dialect.name == dialect.SQLITE_NAME:
            return f"substr({text}, -{int(chars)})"
        return (f"(CASE WHEN CHAR_LENGTH({text}) > {int(chars)} "
                f"THEN SUBSTRING({text}, -{int(chars)}) ELSE {text} END)")

    def char_length(self, text):
        return self.dialect.char_length.format(text)

    def keyword(self, name):
        """(SQL, args): the space-separated keywords column holds ``name`` (exactly)."""
        spaced = self.dialect.concat("' '", "m.keywords", "' '")
        if self.dialect.name == dialect.SQLITE_NAME:
            return f"instr({spaced}, %s) > 0", [" " + name + " "]
        return f"{spaced} LIKE %s", [like(" " + name + " ")]


MYSQL_TEXT = TextOps(
    dialect.MYSQL,
    header_text="CONVERT(SUBSTRING(c.raw, 1, c.header_size) USING utf8mb4)",
    trace_text="CONVERT(m.trace_headers USING utf8mb4)",
    header_subquery="(SELECT CONVERT(SUBSTRING(hc.raw, 1, hc.header_size) USING utf8mb4) "
                    "FROM message_contents hc WHERE hc.id = m.content_id)")
SQLITE_TEXT = TextOps(
    dialect.SQLITE,
    header_text="substr(c.raw, 1, c.header_size)",
    trace_text="m.trace_headers",
    header_subquery="(SELECT substr(hc.raw, 1, hc.header_size) "
                    "FROM message_contents hc WHERE hc.id = m.content_id)")
_TEXT_OPS = {dialect.MYSQL_NAME: MYSQL_TEXT, dialect.SQLITE_NAME: SQLITE_TEXT}


def search(db, mailbox_id, key, limit_uid=None):
    """UIDs (ascending) of the mailbox's messages that match the key tree."""
    return [uid for uid, _ in search_modseqs(db, mailbox_id, key, limit_uid)]


def search_modseqs(db, mailbox_id, key, limit_uid=None):
    """[(uid, modseq)] (by ascending UID) of the messages that match the key tree:
    the modseqs give SEARCH MODSEQ's "(MODSEQ n)" (RFC 7162 §3.1.5)."""
    return [(row[0], row[1]) for row in matching_rows(db, mailbox_id, key, (), limit_uid)]


# What SORT and THREAD (RFC 5256) read of each matching message, by name; the
# IMAP layer computes sort keys and threads from them (geomail/imap/sort.py,
# thread.py).  References are read from their end only (the parent is the last
# id): a hostile list of 64 KiB per message times a large mailbox stays small.
REFERENCES_TAIL = 4000
FIELDS = {
    "internal_date": "m.internal_date", "date_sent": "m.date_sent", "size": "m.rfc822_size",
    "subject": "m.subject", "from": "m.from_addr", "to": "m.to_addr", "cc": "m.cc_addr",
    "message_id": "m.message_id", "in_reply_to": "m.in_reply_to",
}


def matching_rows(db, mailbox_id, key, fields, limit_uid=None):
    """[(uid, modseq, *fields)] by ascending UID of the messages that match the key tree;
    ``fields`` are names of FIELDS or "references" (its last REFERENCES_TAIL characters)."""
    text = _TEXT_OPS[dialect.of(db).name]
    where, args = compile_key(key, text)
    columns = "".join(", " + (text.tail("m.references_ids", REFERENCES_TAIL)
                              if name == "references" else FIELDS[name]) for name in fields)
    join = " JOIN message_contents c ON c.id = m.content_id" if re.search(r"\bc\.", where) else ""
    extra = ""
    params = [mailbox_id]
    if limit_uid is not None:
        extra = " AND m.uid <= %s"
        params.append(limit_uid)
    rows, after = [], 0
    while True:     # keyset pages with a yield between them (messages._rows_by_uid)
        with db.cursor() as cur:
            cur.execute(f"SELECT m.uid, m.modseq{columns} FROM messages m{join} "
                        f"WHERE m.mailbox_id = %s{extra} "
                        f"AND ({where}) AND m.uid > %s ORDER BY m.uid LIMIT %s",
                        params + list(args) + [after, PAGE * 5])
            page = [(int(r[0]), int(r[1]), *r[2:]) for r in cur.fetchall()]
        rows.extend(page)
        if len(page) < PAGE * 5:
            return rows
        after = page[-1][0]
        gevent.sleep(0)


def compile_key(key, text=MYSQL_TEXT):
    """(SQL condition, arguments) of one node of the key tree, for the backend of ``text``."""
    return _COMPILERS[type(key)](key, text)


def _and(key, text):
    parts = [compile_key(k, text) for k in key.keys]
    return (" AND ".join(f"({sql})" for sql, _ in parts),
            [a for _, args in parts for a in args])


def _or(key, text):
    (left, left_args), (right, right_args) = compile_key(key.left, text), compile_key(key.right, text)
    return f"({left}) OR ({right})", left_args + right_args


def _not(key, text):
    sql, args = compile_key(key.key, text)
    return f"NOT ({sql})", args


def _flag(key, text):
    if key.name not in K.FLAG_NAMES:
        raise ValueError(f"not a system flag: {key.name}")
    return f"m.{key.name} = {1 if key.set else 0}", []


def _keyword(key, text):
    return text.keyword(key.name)


def _size(key, text):
    return ("m.rfc822_size > %s" if key.larger else "m.rfc822_size < %s"), [key.octets]


def _date(key, text):
    """internal: the INTERNALDATE (a UTC moment) by UTC day.  sent: the Date: header's
    own calendar date, "disregarding time and timezone" (RFC 3501 §6.4.4)."""
    day = key.day
    if key.field == "sent":
        # no Date: or one that cannot be parsed: the internal date's day, as Dovecot does
        return f"COALESCE(m.sent_date, DATE(m.internal_date)) {_DATE_OPS[key.relation]} %s", [day]
    column = "m.internal_date"
    if key.field == "saved":
        # RFC 8514 §4.2; a row stored before save dates were kept: its internal date
        column = "COALESCE(m.save_date, m.internal_date)"
    if key.relation == "on":
        if day == datetime.date.max:     # 31-Dec-9999: there is no next day to stop at
            return f"{column} >= %s", [day]
        return f"{column} >= %s AND {column} < %s", [day, day + datetime.timedelta(days=1)]
    return f"{column} {_DATE_OPS[key.relation]} %s", [day]


def _arrived(key, text):
    """OLDER/YOUNGER (RFC 5032): the INTERNALDATE against a moment."""
    return ("m.internal_date < %s" if key.before else "m.internal_date >= %s"), [key.moment]


def _modseq(key, text):
    return "m.modseq >= %s", [key.value]


def _email_id(key, text):
    return "m.content_id = %s", [key.content_id]


def _thread_id(key, text):
    return "m.thread_id = %s", [key.value]


def _address(key, text):
    """The indexed (decoded) column; the stored header block only where the column was cut.

    The columns hold the decoded field cut to CUT_LENGTH characters: only
    then (or when the field was not indexed) can the header block hold a
    match the column misses.  The trace headers never carry these fields.
    A correlated subquery, so that the usual case needs no join.
    """
    column = ADDRESS_COLUMNS[key.field]
    column_sql, column_args = text.contains(column, key.value)
    head_sql, head_args = _header_regex(key.field.capitalize(), key.value, text.header_subquery)
    return (f"({column_sql}) OR (({text.char_length(column)} >= {CUT_LENGTH} OR {column} IS NULL)"
            f" AND ({head_sql}))", column_args + head_args)


def _header(key, text):
    """A line of the header block or of the trace headers that matches."""
    head_sql, head_args = _header_regex(key.field, key.value, text.header_text)
    trace_sql, trace_args = _header_regex(key.field, key.value, text.trace_text)
    return f"{head_sql} OR {trace_sql}", head_args + trace_args


def _header_regex(field, value, text):
    pattern = "(?mi)^" + re.escape(field) + ":"
    if value:   # the value may sit on a folded continuation line
        pattern += r"(?:[^\r\n]|\r?\n[ \t])*" + re.escape(value)
    return f"{text} REGEXP %s", [pattern]


def _body(key, text):
    plain_sql, plain_args = text.contains("c.text_plain", key.value)
    html_sql, html_args = text.contains("c.text_html", key.value)
    return f"{plain_sql} OR {html_sql}", plain_args + html_args


def _text(key, text):
    head_sql, head_args = text.contains(text.header_text, key.value)
    trace_sql, trace_args = text.contains(text.trace_text, key.value)
    body_sql, body_args = _body(key, text)
    return (f"({head_sql} OR {trace_sql}) OR ({body_sql})",
            head_args + trace_args + body_args)


def like(value):
    """A LIKE pattern matching value anywhere."""
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


_COMPILERS = {
    K.All: lambda key, text: ("TRUE", []),
    K.Nothing: lambda key, text: ("FALSE", []),
    K.And: _and, K.Or: _or, K.Not: _not,
    K.Uids: lambda key, text: ranges_sql(list(key.ranges), "m.uid"),
    K.Flag: _flag, K.Keyword: _keyword, K.Size: _size, K.Date: _date,
    K.Arrived: _arrived, K.ModSeq: _modseq, K.EmailId: _email_id, K.ThreadId: _thread_id,
    K.Address: _address, K.Header: _header, K.Body: _body, K.Text: _text,
}
