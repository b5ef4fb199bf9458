"""Every well-formed message is deliverable (issue 8, deliverable 3).

Each message below once made MySQL refuse a row (1406 Data too long, 1366
Incorrect string value) or the parser fail, so the sender got 451 on every
retry.  Each is now sent to a real bin/geomail over SMTP and must be answered
250, come back byte for byte from IMAP ``FETCH BODY[]`` (imaplib), and have
its BODYSTRUCTURE and ENVELOPE answered; the same bytes by IMAP APPEND are
stored too.  A message over max_allowed_packet is stored in chunks.  A failure
that will recur on retry (a column narrowed by hand; a BODYSTRUCTURE over its
column) gets ``554 5.6.0`` / ``552 5.3.4`` and ``NO [CANNOT]`` / ``[TOOBIG]``,
a temporary one (S3 stopped) still ``451`` / ``NO [UNAVAILABLE]``.  While the
hostile ones are parsed, another session on the same worker is served.
"""

import base64
import imaplib
import re
import secrets
import time

import pytest

from geomail.mime.parser import MAX_PARTS
from geomail.store.accounts import create_account
from geomail.store.contents import SQLITE_STATEMENT_LIMIT
from geomail.store.sqlite import SQLiteDatabase
# server (the session's geomail) and db (a pool on its database): the IMAP tests' fixtures
from tests.imap.conftest import db, server  # noqa: F401  pytest finds fixtures by name
from tests.smtp.conftest import RawSMTP, db_query, leftovers

PASSWORD = "deliverable pw"


# -- messages -----------------------------------------------------------------

def _headers(extra=b"", message_id=None):
    message_id = message_id or b"<%s@x.org>" % secrets.token_hex(8).encode()
    return (b"From: Sender <sender@x.org>\r\nTo: <rcpt@example.com>\r\nSubject: deliverable\r\n"
            b"Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: " + message_id + b"\r\n"
            + extra + b"MIME-Version: 1.0\r\n")


def _with_attachment(part_headers, payload=b"attachment body\r\n", encoding=b"base64"):
    """multipart/mixed: a text part and one attachment with the given part headers."""
    boundary = b"=_b_" + secrets.token_hex(6).encode()
    body = base64.encodebytes(payload).replace(b"\n", b"\r\n") if encoding == b"base64" else payload
    return (_headers() + b"Content-Type: multipart/mixed; boundary=\"" + boundary + b"\"\r\n\r\n"
            b"--" + boundary + b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n"
            b"--" + boundary + b"\r\n" + part_headers + b"\r\n" + body
            + b"\r\n--" + boundary + b"--\r\n")


def long_filename(length):
    name = b"r" * (length - 4) + b".pdf"
    return _with_attachment(b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
                            b"Content-Disposition: attachment; filename=\"" + name + b"\"\r\n")


def long_filename_rfc2231(length):
    """A 2,000-character UTF-8 filename in RFC 2231 continuations (how MUAs send long names)."""
    name = ("é" * (length - 4) + ".txt").encode("utf-8")
    quoted = "".join("%%%02X" % b for b in name)
    pieces = [quoted[i:i + 60] for i in range(0, len(quoted), 60)]
    params = b"".join(b";\r\n filename*%d*=%s%s" % (n, b"utf-8''" if n == 0 else b"", p.encode())
                      for n, p in enumerate(pieces))
    return _with_attachment(b"Content-Type: text/plain; charset=utf-8\r\n"
                            b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment"
                            + params + b"\r\n")


def long_content_type():
    return _with_attachment(b"Content-Type: application/x-" + b"t" * 300 + b"; name=\"a.bin\"\r\n"
                            b"Content-Transfer-Encoding: base64\r\n")


def long_transfer_encoding():
    return _with_attachment(b"Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
                            b"Content-Transfer-Encoding: x-" + b"e" * 60 + b"\r\n",
                            encoding=b"x")


def eight_bit_transfer_encoding():
    return _with_attachment(b"Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
                            b"Content-Transfer-Encoding: b\xc3\xa4se64\xff\r\n", encoding=b"x")


def nested(levels):
    """levels multiparts, each holding a text part and the next, an attachment at the bottom."""
    head = _headers()
    opening, closing = [], []
    for level in range(levels):
        boundary = b"b%d" % level
        opening.append((b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n"
                        b"--" + boundary + b"\r\nContent-Type: text/plain\r\n\r\nlevel %d\r\n"
                        % level + b"--" + boundary + b"\r\n"))
        closing.append(b"\r\n--" + boundary + b"--\r\n")
    leaf = (b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment;"
            b" filename=deep.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(b"deep" * 100).replace(b"\n", b"\r\n"))
    return head + b"".join(opening) + leaf + b"".join(reversed(closing))


def long_references():
    ids = b"".join(b" <%06d.%s@references.example.org>\r\n" % (n, secrets.token_hex(8).encode())
                   for n in range(2000))
    assert len(ids) > 64 * 1024
    return _headers(b"References:" + ids + b"In-Reply-To: <1@references.example.org>\r\n") \
        + b"\r\nA reply deep in a thread.\r\n"


def non_ascii_references():
    """60,000 characters of this are 115 KB of UTF-8: over the TEXT column's 64 KiB."""
    ids = b"".join(b" <" + "é".encode() * 40 + b"%05d@x.org>\r\n" % n for n in range(2000))
    return _headers(b"References:" + ids) + b"\r\nbody\r\n"


def megabyte_header_line():
    return _headers(b"X-Long: " + b"a" * (1024 * 1024) + b"\r\n") + b"\r\nbody\r\n"


def megabyte_subject():
    return (b"Subject: " + b"s" * (1024 * 1024) + b"\r\n" + _headers()) + b"\r\nbody\r\n"


def long_message_id():
    return _headers(b"In-Reply-To: <" + b"i" * 400 + b"@x.org>\r\n",
                    message_id=b"<" + b"m" * 400 + b"@x.org>") + b"\r\nbody\r\n"


def invalid_utf8_headers():
    return (b"From: J\xc3\x28rg \xff <j@x.org>\r\nTo: <rcpt@example.com>\r\n"
            b"Subject: caf\xe9 \xed\xa0\x80 \xf4\x90\x80\x80 =?utf-8?q?=ff=fe?=\r\n"
            b"Message-ID: <\xff\xfe@x.org>\r\nCc: \x80\x81 <c@x.org>\r\n\r\nbody \xff\r\n")


def invalid_utf8_filename():
    return _with_attachment(b"Content-Type: application/octet-stream; name=\"\xff\xfe\xed\xa0\x80.bin\"\r\n"
                            b"Content-Transfer-Encoding: base64\r\n"
                            b"Content-Disposition: attachment; filename=\"r\xe9sum\xe9 \xc3\x28.pdf\"\r\n")


def surrogate_producing_charsets():
    """Charsets Python decodes to lone surrogates (unicode_escape, utf-7) or not to text at all."""
    return _with_attachment(b"Content-Type: application/octet-stream\r\n"
                            b"Content-Transfer-Encoding: base64\r\n"
                            b"Content-Disposition: attachment; filename*=unicode_escape''%5Cud800.bin\r\n"
                            b"Content-Description: =?utf-7?b?K2REMC0=?= =?rot13?q?nop?=\r\n") \
        .replace(b"Subject: deliverable", b"Subject: =?unicode_escape?q?=5Cud800?=")


def surrogate_text_body():
    return _headers() + (b"Content-Type: text/plain; charset=unicode_escape\r\n\r\n"
                         b"\\ud800 lone surrogate\r\n")


def many_parts(count):
    boundary = b"many"
    parts = b"".join(b"--many\r\nContent-Type: text/plain\r\n\r\n%d\r\n" % n for n in range(count))
    return (_headers() + b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n"
            + parts + b"--many--\r\n")


CASES = {
    "filename_1500": lambda: long_filename(1500),
    "filename_2000": lambda: long_filename(2000),
    "filename_2000_rfc2231": lambda: long_filename_rfc2231(2000),
    "content_type_300": long_content_type,
    "transfer_encoding_62": long_transfer_encoding,
    "transfer_encoding_8bit": eight_bit_transfer_encoding,
    "nesting_40": lambda: nested(40),
    "nesting_100": lambda: nested(100),
    "nesting_1000": lambda: nested(1000),
    "references_70k": long_references,
    "references_non_ascii": non_ascii_references,
    "header_line_1mb": megabyte_header_line,
    "subject_1mb": megabyte_subject,
    "message_id_400": long_message_id,
    "invalid_utf8_headers": invalid_utf8_headers,
    "invalid_utf8_filename": invalid_utf8_filename,
    "surrogate_charsets": surrogate_producing_charsets,
    "surrogate_text_body": surrogate_text_body,
    "parts_3000": lambda: many_parts(3000),
}


# -- the server and its clients -------------------------------------------------

def new_account(db):
    return create_account(db, f"deliver{secrets.token_hex(6)}@example.com", PASSWORD)


def smtp_send(port, recipient, message):
    """(code, text) of the final reply to DATA; the message is sent in 64 KiB pieces."""
    client = RawSMTP(port)
    try:
        client.envelope(recipients=(recipient,))
        return client.data(message, chunk=64 * 1024)
    finally:
        client.quit()


def imap_login(port, account):
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=60)
    imap.login(account.address, PASSWORD)
    return imap


def fetch_one(imap, item):
    """The value of one FETCH item of the last message of the selected mailbox."""
    typ, data = imap.fetch("*", f"({item})")
    assert typ == "OK", data
    return data


def check_stored(imap, mailbox, message, trace):
    """BODY[] is the message byte for byte (behind the trace headers when trace);
    BODYSTRUCTURE, BODY and ENVELOPE are answered."""
    typ, _ = imap.select(mailbox)
    assert typ == "OK"
    data = fetch_one(imap, "BODY.PEEK[]")
    fetched = data[0][1]
    if trace:
        assert fetched.endswith(message), (len(fetched), len(message))
        prefix = fetched[:len(fetched) - len(message)]
        assert prefix.startswith(b"Return-Path: <") and b"\r\nReceived: from " in prefix, prefix
    else:
        assert fetched == message
    for item in ("BODYSTRUCTURE", "BODY", "ENVELOPE", "RFC822.SIZE"):
        data = fetch_one(imap, item)
        text = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
        assert item.encode() + b" (" in text or item.encode() + b" " in text, text[:300]


@pytest.mark.parametrize("name", sorted(CASES))
def test_delivered_and_byte_exact(server, db, name):
    message = CASES[name]()
    account = new_account(db)
    code, text = smtp_send(server.smtp_port, account.address, message)
    assert code == 250, text
    imap = imap_login(server.imap_port, account)
    try:
        check_stored(imap, "INBOX", message, trace=True)
        typ, data = imap.append("Drafts", None, None, message)
        assert typ == "OK", data
        check_stored(imap, "Drafts", message, trace=False)
    finally:
        imap.logout()


# -- what cannot be stored gets a permanent answer --------------------------------

def _rows(db, sql, args=()):
    with db.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def _fresh_account(server):
    database = server.storage.open_db(1)
    try:
        return create_account(database, f"refused{secrets.token_hex(4)}@example.com", PASSWORD)
    finally:
        database.close()


def test_refused_row_gets_554_and_append_no_cannot(storage_server):
    """A value the schema refuses (here: a subject column narrowed by an operator) fails the
    same way on every retry: 554 5.6.0 and NO [CANNOT], never 451 / [UNAVAILABLE]."""
    server = storage_server(workers=1)
    account = _fresh_account(server)
    if server.storage.embedded:     # SQLite cannot narrow a column: a trigger refuses the same
        db_query(server.storage, "CREATE TRIGGER narrow_subject BEFORE INSERT ON messages"
                 " WHEN length(NEW.subject) > 8 BEGIN SELECT RAISE(ABORT, 'subject too long'); END")
    else:
        db_query(server.db_url, "ALTER TABLE messages MODIFY subject VARCHAR(8) NULL")
    message = long_filename(40).replace(b"Subject: deliverable", b"Subject: longer than eight")
    for attempt in range(2):         # a retry fails the same way, and leaves nothing
        code, text = smtp_send(server.smtp_port, account.address, message)
        assert (code, text) == (554, "554 5.6.0 Message content cannot be stored, do not retry")
        assert leftovers(server.db_url, server.s3_endpoint, server.bucket) == {}
    imap = imap_login(server.imap_port, account)
    try:
        assert imap.append("INBOX", None, None, message) == (
            "NO", [b"[CANNOT] This message cannot be stored"])
        assert imap.noop()[0] == "OK"            # the session goes on
    finally:
        imap.logout()
    code, text = smtp_send(server.smtp_port, account.address, message.replace(
        b"Subject: longer than eight", b"Subject: short"))
    assert code == 250, text


def test_long_text_message_is_stored_in_chunks(server, db):
    """A plain-text message over MariaDB's max_allowed_packet once the store sends it as hex
    (18 MB of text is a 36 MB statement) dropped the connection (2006): 451 forever.  Its raw
    bytes past the header now go to message_content_chunks; SEARCH BODY still finds its text."""
    if isinstance(db, SQLiteDatabase):     # the embedded store keeps rows to MariaDB's default
        packet = SQLITE_STATEMENT_LIMIT
    else:
        packet = int(_rows(db, "SELECT @@max_allowed_packet")[0][0])
    account = new_account(db)
    lines = packet // 1000 + 1
    message = _headers() + b"\r\nneedle-at-the-start\r\n" + (b"x" * 998 + b"\r\n") * lines
    code, text = smtp_send(server.smtp_port, account.address, message)
    assert code == 250, text
    imap = imap_login(server.imap_port, account)
    try:
        check_stored(imap, "INBOX", message, trace=True)
        assert imap.search(None, "BODY", "needle-at-the-start") == ("OK", [b"1"])
        typ, data = imap.append("Drafts", None, None, message)
        assert typ == "OK", data
        check_stored(imap, "Drafts", message, trace=False)
    finally:
        imap.logout()
    chunks = _rows(db, "SELECT COUNT(*), SUM(LENGTH(k.data)) FROM message_content_chunks k"
                      " JOIN messages m ON m.content_id = k.content_id JOIN mailboxes b"
                      " ON b.id = m.mailbox_id WHERE b.account_id = %s", (account.id,))
    assert chunks[0][0] >= 4 and int(chunks[0][1]) > 2 * len(message) - 2 * 4096


def test_forms_over_the_column_get_552_not_451(storage_server):
    """A BODYSTRUCTURE over its MEDIUMTEXT column (100 parts with a 90 KB 8-bit parameter
    each: 18 MB as the column's UTF-8) cannot be stored however often the sender retries:
    552 5.3.4 and NO [TOOBIG]."""
    server = storage_server(workers=1)
    account = _fresh_account(server)
    parts = b"".join(b"--p\r\nContent-Type: text/plain; x=\"" + b"\xe9" * 90000
                     + b"\"\r\n\r\n%d\r\n" % n for n in range(100))
    message = (_headers() + b"Content-Type: multipart/mixed; boundary=p\r\n\r\n" + parts
               + b"--p--\r\n")
    code, text = smtp_send(server.smtp_port, account.address, message)
    assert (code, text) == (552, "552 5.3.4 Message too big for system")
    assert leftovers(server.db_url, server.s3_endpoint, server.bucket) == {}
    imap = imap_login(server.imap_port, account)
    try:
        assert imap.append("INBOX", None, None, message) == (
            "NO", [b"[TOOBIG] Message too big for the store"])
        assert imap.noop()[0] == "OK"
    finally:
        imap.logout()
    assert re.search(r"BODYSTRUCTURE of the message is over", server.output())


def test_bdat_delivers_the_same_messages(server, db):
    """CHUNKING (RFC 3030) ends in the same commit: a deep and an 8-bit message in 3 chunks."""
    for message in (nested(1000), invalid_utf8_filename()):
        account = new_account(db)
        client = RawSMTP(server.smtp_port)
        try:
            assert client.command("EHLO client.test")[0] == 250
            client.mail_rcpt(recipients=(account.address,))
            third = len(message) // 3
            pieces = [message[:third], message[third:2 * third], message[2 * third:]]
            for n, piece in enumerate(pieces):
                last = " LAST" if n == len(pieces) - 1 else ""
                client.sock.sendall(b"BDAT %d%s\r\n" % (len(piece), last.encode()) + piece)
                code, text = client.reply()
                assert code == 250, text
        finally:
            client.quit()
        imap = imap_login(server.imap_port, account)
        try:
            check_stored(imap, "INBOX", message, trace=True)
        finally:
            imap.logout()


@pytest.mark.mysql_s3
def test_temporary_failure_stays_451_and_unavailable(storage_server, private_s3):
    """S3 down is temporary: 451 4.3.0 and NO [UNAVAILABLE], then delivered once it is back."""
    server = storage_server(s3_endpoint=private_s3.endpoint, workers=1)
    account = _fresh_account(server)
    message = long_filename(1500)
    private_s3.stop()
    try:
        code, text = smtp_send(server.smtp_port, account.address, message)
        assert (code, text) == (451, "451 4.3.0 Temporary storage failure, try again later")
        imap = imap_login(server.imap_port, account)
        try:
            assert imap.append("INBOX", None, None, message) == (
                "NO", [b"[UNAVAILABLE] Could not store the message, try again"])
        finally:
            imap.logout()
    finally:
        private_s3.start()
    code, text = smtp_send(server.smtp_port, account.address, message)
    assert code == 250, text


# -- the worker keeps serving others meanwhile ------------------------------------

def hostile_header_messages():
    """Header blocks near the parser's 256 KiB bound that were slow to parse."""
    n = 250000
    return {
        "from_colons": _headers(b"Cc: a@b" + b":" * (n - 10) + b"\r\n") + b"\r\nbody\r\n",
        "subject_words": _headers(b"X-Words: x\r\n").replace(
            b"Subject: deliverable", b"Subject:" + b" =?utf-8?q?a?=" * (n // 14)) + b"\r\nbody\r\n",
        "many_params": _with_attachment(b"Content-Type: application/x-y" + b";p=v" * (n // 4)
                                        + b"\r\nContent-Transfer-Encoding: base64\r\n"),
        "parts_5500": many_parts(MAX_PARTS + 500),
        "nesting_1000": nested(1000),
    }


def test_other_sessions_are_served_during_hostile_messages(storage_server):
    """One worker: while each message above is parsed, a second client's NOOP is answered
    within 1 s (the parse never holds the worker's loop long)."""
    import threading
    server = storage_server(workers=1)
    account = _fresh_account(server)
    other = RawSMTP(server.smtp_port)
    assert other.command("EHLO other.test")[0] == 250
    worst = {}
    try:
        for name, message in hostile_header_messages().items():
            result = {}
            sender = threading.Thread(target=lambda: result.update(
                reply=smtp_send(server.smtp_port, account.address, message)))
            sender.start()
            latencies = []
            while sender.is_alive():
                started = time.monotonic()
                assert other.command("NOOP")[0] == 250
                latencies.append(time.monotonic() - started)
                time.sleep(0.02)
            sender.join()
            assert result["reply"][0] == 250, (name, result)
            worst[name] = max(latencies, default=0.0)
    finally:
        other.quit()
    print("worst NOOP latency (s):", {name: round(value, 3) for name, value in worst.items()})
    assert max(worst.values()) < 1.0, worst


def test_append_date_outside_the_store_is_bad_not_bye(server, db):
    """A date-time no DATETIME holds ("01-Jan-0001 ... +0100" overflowed datetime and ended
    the session with BYE [SERVERBUG]) gets BAD, synchronising literal or not."""
    import socket
    account = new_account(db)
    sock = socket.create_connection(("127.0.0.1", server.imap_port), timeout=10)
    lines = sock.makefile("rb")
    try:
        lines.readline()
        sock.sendall(b'a LOGIN %s "%s"\r\n' % (account.address.encode(), PASSWORD.encode()))
        assert lines.readline().startswith(b"a OK")
        for date in (b"01-Jan-0001 00:00:00 +0100", b"01-Jan-0999 23:00:00 -0100",
                     b"31-Dec-9999 23:59:59 -1200"):
            sock.sendall(b'b APPEND INBOX "%s" {5+}\r\nhello\r\n' % date)
            assert lines.readline().startswith(b"b BAD ")
        sock.sendall(b'c APPEND INBOX "01-Jan-0001 00:00:00 +0100" {5}\r\n')
        assert lines.readline().startswith(b"c BAD ")
        sock.sendall(b'd APPEND INBOX "31-Dec-9999 13:59:59 +0000" {5+}\r\nhello\r\n')
        assert lines.readline().startswith(b"d OK [APPENDUID ")
    finally:
        sock.close()


# -- mutated messages ------------------------------------------------------------

MUTATIONS = [
    b"\r\n", b"--", b"\r\n--", b"Content-Type: multipart/mixed; boundary=",
    b"Content-Type: message/rfc822\r\n\r\n", b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: \xff\xfe" + b"x" * 40 + b"\r\n", b"=?utf-8?q?", b"?=",
    b"filename*0*=", b"''", b"%ff", b'"', b"\\", b"(", b")", b"<", b">", b"@", b":", b";", b",",
    b"\xff", b"\xc3", b" ", b"\t", b"charset=utf-7", b"charset=unicode_escape",
    b"=?unicode_escape?q?=5Cud800?=", b"name=", b"begin 644 x\r\n", b"quoted-printable",
    b'Content-Disposition: attachment; filename="' + b"n" * 1200 + b'"\r\n',
    b"Content-Type: a/" + b"b" * 300 + b"\r\n", b"Message-ID: <" + b"m" * 300 + b">\r\n",
    b"Date: 1 Jan 0001 00:00 +2359\r\n",
]


def mutated_corpus(count, seed):
    """count messages of the CPython email corpus with random MIME-ish mutations (CRLF only,
    ending with CRLF: SMTP itself turns bare CR and LF into CRLF)."""
    import glob
    import os
    import random
    from tests.mime.mime_helpers import CORPUS, crlf
    seeds = [crlf(open(path, "rb").read()) for path in sorted(glob.glob(os.path.join(CORPUS, "msg_*.txt")))]
    assert seeds, CORPUS
    rng = random.Random(seed)
    for _ in range(count):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 10)):
            pos = rng.randint(0, len(data))
            choice = rng.random()
            if choice < 0.6:
                data[pos:pos] = rng.choice(MUTATIONS) * rng.choice((1, 1, 2, 30))
            elif choice < 0.8:
                del data[pos:pos + rng.randint(1, 40)]
            else:
                data[pos:pos] = data[rng.randint(0, len(data)):][:rng.randint(0, 500)]
        data = crlf(bytes(data))
        yield data if data.endswith(b"\r\n") else data + b"\r\n"   # as DATA ends it


def test_mutated_messages_are_all_delivered_byte_exact(server, db):
    """60 mutated corpus messages (600 with other seeds in development): every one 250,
    every one back byte for byte with its BODYSTRUCTURE and ENVELOPE."""
    account = new_account(db)
    messages = list(mutated_corpus(60, seed=5))
    for number, message in enumerate(messages):
        code, text = smtp_send(server.smtp_port, account.address, message)
        assert code == 250, (number, text)
    imap = imap_login(server.imap_port, account)
    try:
        imap.select("INBOX")
        for number, message in enumerate(messages, 1):
            typ, data = imap.fetch(str(number), "(BODY.PEEK[] BODYSTRUCTURE ENVELOPE)")
            assert typ == "OK", data
            assert data[0][1].endswith(message), number
    finally:
        imap.logout()
