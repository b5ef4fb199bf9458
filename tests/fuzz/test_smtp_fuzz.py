"""Fuzzing of SMTP: the DATA stream, path parsing, and whole sessions against a real server.

Deterministic in CI: hypothesis derandomized, the session generator seeded.
``bench/fuzz_smtp_mime.py`` runs the same targets for as long as asked.

(a) DotUnstuffer / LineEndFixer on arbitrary byte streams split anywhere:
    the same output whatever the chunking, equal to a plain reference.
(b) parse_path on arbitrary text: AddressError or a result, in bounded time.
(c) mutated sessions over real connections to ``bin/geomail`` (2 workers):
    every reply well formed, no drop but after 421 (or 221), no relaying,
    no traceback in the server log.
"""

import random
import re
import select
import socket
import threading
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from geomail.smtp.addresses import AddressError, parse_path
from geomail.smtp.dotstream import MAX_HELD, DotUnstuffer, LineEndFixer
from tests.fixtures.server import serve_module

CI = settings(derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LOCAL_DOMAINS = ("example.com", "example.org")


# -- (a) the DATA stream --------------------------------------------------------

def normalised(data):
    """The reference line-end rule: every CRLF, bare CR and bare LF is one CRLF."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def reference_data(stream):
    """(message, bytes after the end) of a DATA stream, or (None, None) without an end.

    RFC 5321 4.5.2 done the plain way on the whole stream: the data starts at
    a line start, only CRLF.CRLF ends it, a line's leading dot is removed.
    """
    text = b"\r\n" + stream
    end = text.find(b"\r\n.\r\n")
    if end < 0:
        return None, None
    body = text[:end + 2].replace(b"\r\n.", b"\r\n")[2:]
    return normalised(body), text[end + 5:]


def chunked(data, cuts):
    """``data`` split at the given cut points (any ints; taken modulo the length)."""
    points = sorted({c % (len(data) + 1) for c in cuts}) if data else []
    pieces, start = [], 0
    for point in points + [len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


def check_dot_stream(stream, cuts):
    """DotUnstuffer fed ``stream`` in pieces agrees with ``reference_data``."""
    stream_with_end = stream + b"\r\n.\r\n"     # so that every stream has an end
    want_message, want_rest = reference_data(stream_with_end)
    unstuffer, out, rest = DotUnstuffer(), [], None
    pieces = chunked(stream, cuts) + [b"\r\n.\r\n"]
    for index, piece in enumerate(pieces):
        body, rest = unstuffer.feed(piece)
        out.append(body)
        assert len(unstuffer.held) <= MAX_HELD
        if rest is not None:
            rest += b"".join(pieces[index + 1:])
            break
    assert rest is not None, "the end was not found"
    assert b"".join(out) == want_message
    assert rest == want_rest


def check_line_end_fixer(data, cuts):
    fixer = LineEndFixer()
    pieces = chunked(data, cuts)
    out = [fixer.feed(piece, last=index == len(pieces) - 1) for index, piece in enumerate(pieces)]
    assert b"".join(out) == normalised(data)


# Pieces that make the interesting cases likely: dots at line starts, every
# kind of line end, the smuggling variants, and one line longer than MAX_HELD.
STREAM_PIECES = [b"\r\n", b"\n", b"\r", b".", b"..", b"\r\n.", b"\r\n..", b"\n.\n", b"\n.\r\n",
                 b"\r.\r", b"\r\n.\r\n", b"a", b"text ", b"\x00", b"\xff"]
streams = st.one_of(
    st.binary(max_size=200),
    st.lists(st.one_of(st.sampled_from(STREAM_PIECES), st.binary(max_size=6)),
             max_size=60).map(b"".join),
    st.tuples(st.sampled_from([b"", b".", b"\r\n."]), st.integers(MAX_HELD - 3, MAX_HELD + 5),
              st.sampled_from([b"\r", b"\r\n", b"\r\n.\r\n", b"\n"])).map(
        lambda t: t[0] + b"x" * t[1] + t[2]),
)
cut_lists = st.lists(st.integers(min_value=0, max_value=10 ** 6), max_size=12)


@settings(CI, max_examples=700)
@given(streams, cut_lists)
@example(b".\r\n", [])
@example(b"a\r\n..\r\n.", [3, 4])
@example(b"a\n.\nb\n.\r\nc", [1, 2, 3])
def test_dot_unstuffer_matches_reference(stream, cuts):
    check_dot_stream(stream, cuts)


@settings(CI, max_examples=400)
@given(streams, cut_lists)
@example(b"a\r", [1])
@example(b"\r\r\n\n", [1, 2, 3])
def test_line_end_fixer_matches_reference(data, cuts):
    check_line_end_fixer(data, cuts)


# -- (b) paths ------------------------------------------------------------------

PATH_PIECES = ["<", ">", "@", ":", ",", '"', "\\", ".", " ", "%", "!", "[", "]", "IPv6:", "a",
               "example.com", "postmaster", "\u00e9", "\x00", "=", "SIZE=1", "BODY=8BITMIME"]
paths = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(PATH_PIECES), st.text(max_size=4)), max_size=80).map("".join),
)


def check_parse_path(keyword, rest, allow_null, utf8):
    started = time.process_time()
    try:
        parse_path(f"{keyword}:{rest}", keyword, allow_null=allow_null, utf8=utf8)
    except AddressError:
        pass
    spent = time.process_time() - started
    assert spent < 0.05 + len(rest) * 2e-6, f"{spent:.3f} s of CPU for {len(rest)} characters"


@settings(CI, max_examples=500)
@given(st.sampled_from(["FROM", "TO"]), paths, st.booleans(), st.booleans())
def test_parse_path_only_address_errors(keyword, rest, allow_null, utf8):
    check_parse_path(keyword, rest, allow_null, utf8)


@pytest.mark.parametrize("rest", ['<"' + "\\" * 200_000 + ">", "<" + '"' * 200_001 + ">",
                                  "<" + "@a," * 100_000 + ":x@example.com>",
                                  "<" + "a." * 100_000 + "@example.com>", "<" * 300_000])
def test_parse_path_huge_inputs_bounded(rest):
    check_parse_path("TO", rest, True, True)


# -- (c) sessions over real connections ----------------------------------------

SENDERS = ["<>", "<alice@example.net>", "<bob@[192.0.2.1]>", '<"odd sender"@example.net>',
           "<\u00e9l\u00e8ve@example.net>"]
LOCAL_RECIPIENTS = ["fuzz1@example.com", "Fuzz2@Example.ORG", "postmaster@example.com", "<postmaster>"]
# forms that must never be accepted for delivery elsewhere
REMOTE_RECIPIENTS = ["victim@remote.test", "@example.com:victim@remote.test",
                     "victim%remote.test@example.com.remote.test", "remote.test!victim@relay.test",
                     '"victim@remote.test"@remote.test', "victim@[192.0.2.7]", "victim@example.com.",
                     "victim@examp1e.com", "victim@example.com.evil.test", "victim@EXAMPLE.COM@remote.test",
                     "victim@xn--exmple-cua.com", "victim@[IPv6:2001:db8::1]"]
BODIES = [b"Subject: fuzz\r\n\r\nhello\r\n", b"Subject: dots\r\n\r\n.leading\r\n..two\r\n",
          b"Subject: smuggle\r\n\r\nA\n.\nMAIL FROM:<x@remote.test>\r\n",
          b"Subject: bare\r\n\r\nline\rline\nline\r\n", b"\xff\xfe 8-bit \x00 body\r\n"]


class SessionGenerator:
    """Random SMTP sessions from a small grammar, then mutated byte by byte."""

    def __init__(self, rng):
        self.rng = rng

    def recipient(self):
        pool = LOCAL_RECIPIENTS if self.rng.random() < 0.5 else REMOTE_RECIPIENTS
        address = self.rng.choice(pool)
        return address if address.startswith("<") else f"<{address}>"

    def command(self):
        rng = self.rng
        kind = rng.choices(["EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "VRFY",
                            "HELP", "STARTTLS", "garbage", "long", "QUIT"],
                           [3, 1, 4, 6, 3, 3, 1, 1, 1, 1, 1, 2, 1, 0.3])[0]
        if kind in ("EHLO", "HELO"):
            return f"{kind} {rng.choice(['client.test', '[127.0.0.1]', '', 'x' * 300])}\r\n".encode()
        if kind == "MAIL":
            params = rng.choice(["", " SIZE=100", " BODY=8BITMIME", " SMTPUTF8", " SIZE=99999999999",
                                 " FOO=bar", " SIZE=x"])
            return f"MAIL FROM:{rng.choice(SENDERS)}{params}\r\n".encode()
        if kind == "RCPT":
            return f"RCPT TO:{self.recipient()}{rng.choice(['', '', ' NOTIFY=NEVER'])}\r\n".encode()
        if kind == "DATA":
            return b"DATA\r\n" + rng.choice(BODIES) + rng.choice([b".\r\n", b".\r\n", b"\n.\n"])
        if kind == "BDAT":
            data = rng.choice(BODIES)
            announced = max(0, len(data) + rng.choice([0, 0, 0, -3, 5, -len(data)]))
            last = rng.choice([" LAST", "", " last", " LAST extra"])
            return f"BDAT {announced}{last}\r\n".encode() + data
        if kind == "VRFY":
            return f"VRFY {self.recipient()}\r\n".encode()
        if kind == "garbage":
            return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) + b"\r\n"
        if kind == "long":
            return b"NOOP " + b"y" * rng.choice([990, 1100, 5000]) + b"\r\n"
        return f"{kind}\r\n".encode()

    def mutate(self, data):
        rng = self.rng
        data = bytearray(data)
        for _ in range(rng.choice([1, 1, 2, 3])):
            where = rng.randrange(len(data) + 1)
            how = rng.randrange(4)
            if how == 0 and where < len(data):
                data[where] ^= 1 << rng.randrange(8)
            elif how == 1:
                data[where:where] = bytes([rng.choice([0, 10, 13, 32, 46, 58, 60, 62, 64, 255,
                                                       rng.randrange(256)])])
            elif how == 2 and where < len(data):
                del data[where]
            else:
                data[where:where] = data[where:where + rng.randrange(1, 8)]
        return bytes(data)

    def session(self):
        """A list of batches (bytes), each sent with one write: pipelining."""
        rng = self.rng
        commands = [b"EHLO fuzz.test\r\n"] if rng.random() < 0.8 else []
        commands += [self.command() for _ in range(rng.randrange(1, 14))]
        commands = [self.mutate(c) if rng.random() < 0.3 else c for c in commands]
        batches, i = [], 0
        while i < len(commands):
            n = rng.choice([1, 1, 2, 3, 5])
            batches.append(b"".join(commands[i:i + n]))
            i += n
        return batches

    def rcpt_lines(self):
        """MAIL then mutated RCPT lines, each line answered by exactly one reply."""
        lines = []
        for _ in range(self.rng.randrange(3, 12)):
            line = f"RCPT TO:{self.recipient()}".encode()
            if self.rng.random() < 0.6:
                line = self.mutate(line)
            lines.extend(line.split(b"\n"))      # the server reads a line up to each LF
        # a line the server reads as DATA or BDAT would consume the next ones
        return [line for line in lines
                if not re.match(rb"(?i)(data|bdat|quit)\b", line.lstrip()) and len(line) < 900]


REPLY_LINE = re.compile(rb"([2-5][0-5][0-9])([ -])([^\r\n]*)\r\n")


def parse_replies(data):
    """[(code, [lines])] of a reply stream, or raise AssertionError on any malformed byte."""
    replies, pos, current = [], 0, []
    while pos < len(data):
        match = REPLY_LINE.match(data, pos)
        assert match, f"malformed reply at {pos}: {data[pos:pos + 80]!r}"
        code, more = match.group(1), match.group(2) == b"-"
        assert not current or current[0][0] == code, f"code changed inside a reply: {data[pos:pos + 80]!r}"
        current.append((code, match.group(0)))
        if not more:
            replies.append((int(code), [line for _, line in current]))
            current = []
        pos = match.end()
    assert not current, f"reply left unfinished: {current!r}"
    return replies


def _read_available(sock, wait, quiet=0.02):
    """(bytes read, True when the server closed): waits up to ``wait`` s for the
    first bytes, then reads on until ``quiet`` s pass without any."""
    data = b""
    deadline = time.monotonic() + wait
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return data, False
        ready, _, _ = select.select([sock], [], [], remaining)
        if not ready:
            return data, False
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
        deadline = time.monotonic() + quiet


def run_session(port, batches, pause=0.02):
    """Play one session; returns a list of problems (empty when all held)."""
    problems, received = [], b""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        data, closed = _read_available(sock, 5)
        received += data
        for batch in batches + [b"QUIT\r\n"]:
            if closed:
                break
            try:
                sock.sendall(batch)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            data, closed = _read_available(sock, pause)
            received += data
        if not closed:
            sock.shutdown(socket.SHUT_WR)
            data, closed = _read_available(sock, 15, quiet=15)
            received += data
            if not closed:
                problems.append("the server did not close the connection after the client's EOF")
            closed_early = False
        else:
            closed_early = True
    finally:
        sock.close()
    try:
        replies = parse_replies(received)
    except AssertionError as exc:
        return problems + [str(exc)]
    if not replies or replies[0][0] != 220:
        problems.append(f"no greeting: {received[:100]!r}")
    if closed_early and replies and replies[-1][0] not in (221, 421):
        problems.append(f"connection dropped after {replies[-1][1][-1]!r}")
    return problems


def local_destination(line):
    """True when a RCPT line could only mean a mailbox of a local domain.

    An independent reading of RFC 5321 4.1.2: the path is what lies, after
    the first ':', between '<' and the first '>' outside a quoted string; a source route is ignored
    (RFC 5321 C); the domain follows the last '@'; a trailing dot is the same
    domain.  <postmaster> alone is local (4.5.1).
    """
    text = line.decode("utf-8", "replace").partition(":")[2]     # what follows "TO:"
    start = text.find("<")
    if start < 0:
        return False
    quoted = escaped = False
    for index in range(start + 1, len(text)):
        char = text[index]
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ">" and not quoted:
            path = text[start + 1:index]
            break
    else:
        return False
    if path.lower() == "postmaster":
        return True
    if path.startswith("@"):
        path = path.partition(":")[2]
    return path.rpartition("@")[2].rstrip(".").lower() in LOCAL_DOMAINS


def run_rcpt_session(port, lines):
    """Pipelined RCPT lines after MAIL: a 250 only for local domains. Returns problems."""
    problems = []
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        script = [b"EHLO fuzz.test", b"MAIL FROM:<alice@example.net>"] + lines + [b"QUIT"]
        sock.sendall(b"".join(line + b"\r\n" for line in script))
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    try:
        replies = parse_replies(received)[1:]     # the greeting first
    except AssertionError as exc:
        return [str(exc)]
    if len(replies) < len(script) and not (replies and replies[-1][0] == 421):
        return [f"{len(script)} commands, {len(replies)} replies: {received[-200:]!r}"]
    if len(replies) > len(script):
        return [f"{len(script)} commands, {len(replies)} replies: {received[-200:]!r}"]
    for line, (code, reply_lines) in zip(lines, replies[2:]):
        if code == 250 and not local_destination(line):
            problems.append(f"relay: {line!r} got {reply_lines[-1]!r}")
    return problems


def fuzz_server(port, rng, sessions, rcpt_sessions, threads=8, stop_at=None):
    """Run the sessions in parallel; returns (sessions played, [problems])."""
    generator = SessionGenerator(rng)
    work = [("chaos", generator.session()) for _ in range(sessions)]
    work += [("rcpt", generator.rcpt_lines()) for _ in range(rcpt_sessions)]
    rng.shuffle(work)
    problems, played, lock = [], [0], threading.Lock()

    def worker():
        while True:
            with lock:
                if not work or (stop_at and time.monotonic() > stop_at):
                    return
                kind, script = work.pop()
            found = run_session(port, script) if kind == "chaos" else run_rcpt_session(port, script)
            with lock:
                played[0] += 1
                problems.extend((kind, script, problem) for problem in found)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return played[0], problems


def log_tracebacks(log_file):
    text = log_file.read_text(errors="replace")
    return [block[:2000] for block in text.split("Traceback (most recent call last)")[1:]]


@pytest.fixture(scope="module")
def smtp_server(tmp_path_factory, mysql_url, s3_endpoint, s3_bucket):
    yield from serve_module(tmp_path_factory, "smtpfuzz", mysql_url, s3_endpoint, s3_bucket,
                            workers=2, extra_args=["--max-message-size", "4096"])


def test_mutated_sessions_over_real_connections(smtp_server):
    started = time.monotonic()
    played, problems = fuzz_server(smtp_server.smtp_port, random.Random(8), sessions=300,
                                   rcpt_sessions=60)
    print(f"\n{played} sessions in {time.monotonic() - started:.1f} s, {len(problems)} problems")
    assert played == 360
    assert not problems, problems[:5]
    assert not log_tracebacks(smtp_server.log_file)


TRANSACTION = b"EHLO fuzz.test\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<fuzz1@example.com>\r\n"


@pytest.mark.parametrize("script", [TRANSACTION + b"BDAT \xc2\xb24 LAST\r\n",
                                    b"EHLO fuzz.test\r\nMAIL FROM:<> SIZE=\xc2\xb2\r\n"])
def test_unicode_digits_are_a_syntax_error(smtp_server, script):
    """Found by the long run: str.isdigit() is true for "²", int() is not (ValueError, dropped)."""
    with socket.create_connection(("127.0.0.1", smtp_server.smtp_port), timeout=10) as sock:
        sock.sendall(script + b"QUIT\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    replies = parse_replies(received)
    assert [code for code, _ in replies][-2:] == [501, 221], replies
    assert not log_tracebacks(smtp_server.log_file)
