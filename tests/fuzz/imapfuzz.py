"""Shared by the IMAP fuzz test and bench/fuzz_imap.py: a grammar of real commands,
byte mutations, and a client that checks the server's answer to each input.

A mutated command must get BAD, NO or OK (tagged or untagged), never BYE, and
the session must answer the NOOP that follows.  Literal markers at the end of a
line are defused (the server would rightly wait for the literal's bytes, and
the client would wait for the server); the parser fuzz covers literals.
"""

import re
import socket

from tests.imap.conftest import PASSWORD, message, multipart

# Commands of the selected state, as clients send them (no LOGOUT, IDLE, STARTTLS,
# EXPUNGE or MOVE: they end the session, wait for more input or empty the mailbox).
TEMPLATES = [
    b"FETCH 1 FLAGS",
    b"FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)",
    b"FETCH 1:3 (ENVELOPE BODYSTRUCTURE)",
    b"FETCH 2 BODY.PEEK[HEADER.FIELDS (Subject From Date)]",
    b"FETCH 1 BODY.PEEK[1.MIME]",
    b"FETCH 3 (BODY.PEEK[2]<0.100> BODY[TEXT])",
    b"UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER])",
    b"FETCH $ FAST",
    b"FETCH 1 (BODY[HEADER.FIELDS.NOT (Received)] RFC822.HEADER)",
    b"SEARCH ALL",
    b"SEARCH CHARSET UTF-8 SUBJECT \"hello\"",
    b"SEARCH OR FROM alice TO bob NOT SEEN",
    b"SEARCH HEADER Message-ID \"<m1@example.org>\"",
    b"SEARCH SINCE 01-Jan-2000 BEFORE 31-Dec-2030 LARGER 10 SMALLER 100000",
    b"SEARCH SENTON 7-Feb-1994 UID 1:* KEYWORD $Label1",
    b"SEARCH (TEXT zebra BODY attached) UNKEYWORD foo NEW OLD RECENT",
    b"UID SEARCH 1,3:5 NOT DELETED",
    b"STORE 1 +FLAGS (\\Seen $Label1)",
    b"STORE 1:2 -FLAGS.SILENT (\\Flagged)",
    b"UID STORE 1:* FLAGS (\\Answered)",
    b"COPY 1:2 Archive",
    b"UID COPY 1 \"Other box\"",
    b"LIST \"\" *",
    b"LIST \"\" \"%/%\"",
    b"LIST (SUBSCRIBED) \"\" * RETURN (CHILDREN STATUS (MESSAGES UNSEEN))",
    b"LSUB \"\" INBOX*",
    b"STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)",
    b"CREATE \"Fuzz/&AOk-t&AOk-\"",
    b"RENAME Fuzz2 Fuzz3",
    b"SUBSCRIBE Archive",
    b"EXAMINE Archive",
    b"NAMESPACE",
    b"ID (\"name\" \"fuzz\" \"version\" \"1\")",
    b"ENABLE UTF8=ACCEPT",
    b"ENABLE CONDSTORE QRESYNC",
    b"SELECT INBOX (QRESYNC (1 2 1:5,7 (1:3 1:3)) CONDSTORE)",
    b"UID FETCH 1:* (FLAGS MODSEQ) (CHANGEDSINCE 3 VANISHED)",
    b"FETCH 1:2 (BODY[TEXT]) (CHANGEDSINCE 1)",
    b"STORE 1:3 (UNCHANGEDSINCE 4) +FLAGS.SILENT ($Label2)",
    b"STATUS INBOX (HIGHESTMODSEQ MESSAGES)",
    b"CHECK",
    b"CAPABILITY",
    b"APPEND Archive (\\Seen) \"07-Feb-1994 21:52:25 -0800\" x",
]

_LITERAL_END = re.compile(rb"~?\{\d*\+?\}\r?$")


def defuse_literals(data):
    """Break every literal marker that ends a line (see the module docstring)."""
    return b"\n".join(_LITERAL_END.sub(b"{x}", piece) for piece in data.split(b"\n"))


def mutate(data, edits):
    """Apply edits [(kind, position, byte)]: 0 flip, 1 insert, 2 delete, 3 duplicate a span."""
    out = bytearray(data)
    for kind, position, value in edits:
        if not out:
            out.append(value)
            continue
        i = position % len(out)
        if kind == 0:
            out[i] = value
        elif kind == 1:
            out.insert(i, value)
        elif kind == 2:
            del out[i]
        else:
            span = bytes(out[i:i + 1 + value % 16])
            out[i:i] = span * (1 + value % 4)
    return bytes(out)


class FuzzClient:
    """A logged-in, selected raw connection that sends one input and checks the answers."""

    def __init__(self, port, account, timeout=20, select=True):
        self.count = 0
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        self.readline()
        self.expect_ok(b"LOGIN %s \"%s\"" % (account.address.encode(), PASSWORD.encode()))
        if select:
            self.expect_ok(b"SELECT INBOX")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def readline(self):
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def until(self, tag):
        """Lines up to the tagged response of tag; literals skipped; any BYE is an error."""
        lines = []
        while True:
            line = self.readline()
            match = re.search(rb"\{(\d+)\}$", line)
            if match:            # a literal in a response: skip its bytes
                size = int(match.group(1))
                while len(self.buffer) < size:
                    data = self.sock.recv(65536)
                    if not data:
                        raise ConnectionError("server closed the connection in a literal")
                    self.buffer += data
                self.buffer = self.buffer[size:]
            lines.append(line)
            if line.startswith(b"* BYE"):
                raise AssertionError(f"BYE: {line!r}")
            if line.startswith(tag + b" "):
                return lines

    def expect_ok(self, command):
        self.count += 1
        tag = b"z%d" % self.count
        self.sock.sendall(tag + b" " + command + b"\r\n")
        lines = self.until(tag)
        if not lines[-1].startswith(tag + b" OK"):
            raise AssertionError(f"{command[:80]!r} -> {lines[-1][:200]!r}")
        return lines

    def try_input(self, data):
        """Send one (mutated) command line, then NOOP and SELECT: both must be OK."""
        self.count += 1
        self.sock.sendall(b"f%d " % self.count + defuse_literals(data) + b"\r\n")
        self.expect_ok(b"NOOP")
        self.expect_ok(b"SELECT INBOX")


def server_tracebacks(log_text):
    """The traceback blocks of a server log (a BUG that reached NO [SERVERBUG])."""
    return [block for block in log_text.split("Traceback (most recent call last):")[1:]]


def populate(port, account):
    """INBOX with plain and multipart messages; the mailboxes the grammar names."""
    client = FuzzClient(port, account, select=False)
    for name in (b"Archive", b'"Other box"', b"Fuzz2"):
        client.expect_ok(b"CREATE " + name)
    for data in (message("hello", extra="Cc: carol@example.org\r\n"), multipart("zebra")[0],
                 message("third", body="zebra " * 50 + "\r\n"), multipart("fourth", 2000)[0]):
        client.count += 1
        tag = b"ap%d" % client.count
        client.sock.sendall(tag + b" APPEND INBOX (\\Seen) {%d+}\r\n" % len(data) + data + b"\r\n")
        assert client.until(tag)[-1].startswith(tag + b" OK")
    client.close()
