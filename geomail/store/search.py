"""SEARCH on MySQL: a key tree (geomail.searchkeys) compiled to one WHERE clause.

The clause is over ``messages m`` (and ``message_contents c`` for body and
header text, joined only when a key needs it), so a large mailbox is
searched in the database, not by loading rows into Python.  Substring
matches are case-insensitive through the utf8mb4_unicode_ci columns.
Every value travels as a query argument; the only client text that becomes
part of a pattern is escaped (LIKE) or ``re.escape``d (REGEXP), and its
length was bounded by the protocol layer (MariaDB's PCRE2 refuses patterns
past 64 KiB).
"""

import datetime
import re

import gevent

from geomail import searchkeys as K
from geomail.store.messages import PAGE, ranges_sql

ADDRESS_COLUMNS = {"from": "m.from_addr", "to": "m.to_addr", "cc": "m.cc_addr",
                   "subject": "m.subject"}
CUT_LENGTH = 1000      # characters kept in from_addr/to_addr/cc_addr/subject (store.delivery)
HEADER_TEXT = "CONVERT(SUBSTRING(c.raw, 1, c.header_size) USING utf8mb4)"
TRACE_TEXT = "CONVERT(m.trace_headers USING utf8mb4)"
# the header block without joining message_contents (alias hc, not c: no join is added)
HEADER_SUBQUERY = ("(SELECT CONVERT(SUBSTRING(hc.raw, 1, hc.header_size) USING utf8mb4) "
                   "FROM message_contents hc WHERE hc.id = m.content_id)")
_DATE_OPS = {"before": "<", "on": "=", "since": ">="}


def search(db, mailbox_id, key, limit_uid=None):
    """UIDs (ascending) of the mailbox's messages that match the key tree."""
    where, args = compile_key(key)
    join = " JOIN message_contents c ON c.id = m.content_id" if re.search(r"\bc\.", where) else ""
    extra = ""
    params = [mailbox_id]
    if limit_uid is not None:
        extra = " AND m.uid <= %s"
        params.append(limit_uid)
    uids, after = [], 0
    while True:     # keyset pages with a yield between them (messages._rows_by_uid)
        with db.cursor() as cur:
            cur.execute(f"SELECT m.uid FROM messages m{join} WHERE m.mailbox_id = %s{extra} "
                        f"AND ({where}) AND m.uid > %s ORDER BY m.uid LIMIT %s",
                        params + list(args) + [after, PAGE * 5])
            page = [r[0] for r in cur.fetchall()]
        uids.extend(page)
        if len(page) < PAGE * 5:
            return uids
        after = page[-1]
        gevent.sleep(0)


def compile_key(key):
    """(SQL condition, arguments) of one node of the key tree."""
    return _COMPILERS[type(key)](key)


def _and(key):
    parts = [compile_key(k) for k in key.keys]
    return (" AND ".join(f"({sql})" for sql, _ in parts),
            [a for _, args in parts for a in args])


def _or(key):
    (left, left_args), (right, right_args) = compile_key(key.left), compile_key(key.right)
    return f"({left}) OR ({right})", left_args + right_args


def _not(key):
    sql, args = compile_key(key.key)
    return f"NOT ({sql})", args


def _flag(key):
    if key.name not in K.FLAG_NAMES:
        raise ValueError(f"not a system flag: {key.name}")
    return f"m.{key.name} = {1 if key.set else 0}", []


def _keyword(key):
    return "CONCAT(' ', m.keywords, ' ') LIKE %s", [like(" " + key.name + " ")]


def _size(key):
    return ("m.rfc822_size > %s" if key.larger else "m.rfc822_size < %s"), [key.octets]


def _date(key):
    """internal: the INTERNALDATE (a UTC moment) by UTC day.  sent: the Date: header's
    own calendar date, "disregarding time and timezone" (RFC 3501 §6.4.4)."""
    day = key.day
    if key.field == "sent":
        return f"m.sent_date {_DATE_OPS[key.relation]} %s", [day]
    column = "m.internal_date"
    if key.relation == "on":
        if day == datetime.date.max:     # 31-Dec-9999: there is no next day to stop at
            return f"{column} >= %s", [day]
        return f"{column} >= %s AND {column} < %s", [day, day + datetime.timedelta(days=1)]
    return f"{column} {_DATE_OPS[key.relation]} %s", [day]


def _address(key):
    """The indexed (decoded) column; the stored header block only where the column was cut.

    The columns hold the decoded field cut to CUT_LENGTH characters: only
    then (or when the field was not indexed) can the header block hold a
    match the column misses.  The trace headers never carry these fields.
    A correlated subquery, so that the usual case needs no join.
    """
    column = ADDRESS_COLUMNS[key.field]
    head_sql, head_args = _header_regex(key.field.capitalize(), key.value, HEADER_SUBQUERY)
    return (f"({column} LIKE %s) OR ((CHAR_LENGTH({column}) >= {CUT_LENGTH} OR {column} IS NULL)"
            f" AND ({head_sql}))", [like(key.value)] + head_args)


def _header(key):
    """A line of the header block or of the trace headers that matches."""
    head_sql, head_args = _header_regex(key.field, key.value, HEADER_TEXT)
    trace_sql, trace_args = _header_regex(key.field, key.value, TRACE_TEXT)
    return f"{head_sql} OR {trace_sql}", head_args + trace_args


def _header_regex(field, value, text):
    pattern = "(?mi)^" + re.escape(field) + ":"
    if value:   # the value may sit on a folded continuation line
        pattern += r"(?:[^\r\n]|\r?\n[ \t])*" + re.escape(value)
    return f"{text} REGEXP %s", [pattern]


def _body(key):
    return "c.text_plain LIKE %s OR c.text_html LIKE %s", [like(key.value), like(key.value)]


def _text(key):
    body_sql, body_args = _body(key)
    return (f"({HEADER_TEXT} LIKE %s OR {TRACE_TEXT} LIKE %s) OR ({body_sql})",
            [like(key.value), like(key.value)] + body_args)


def like(value):
    """A LIKE pattern matching value anywhere."""
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


_COMPILERS = {
    K.All: lambda key: ("TRUE", []),
    K.Nothing: lambda key: ("FALSE", []),
    K.And: _and, K.Or: _or, K.Not: _not,
    K.Uids: lambda key: ranges_sql(list(key.ranges), "m.uid"),
    K.Flag: _flag, K.Keyword: _keyword, K.Size: _size, K.Date: _date,
    K.Address: _address, K.Header: _header, K.Body: _body, K.Text: _text,
}
