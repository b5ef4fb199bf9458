"""The command parser on its own, fed through a socket in random chunk sizes."""

import random
import socket
import threading

import pytest

from geomail.imap.parser import LiteralTooBig, ParseError, Parser
from geomail.netio import Connection


def parse_with(data, handler, chunk_seed, max_literal=1000):
    """Send data in random chunks from a thread; run handler(parser) on the other end."""
    left, right = socket.socketpair()
    rng = random.Random(chunk_seed)

    def feed():
        pos = 0
        while pos < len(data):
            size = rng.randint(1, 7)
            left.sendall(data[pos:pos + size])
            pos += size
        left.shutdown(socket.SHUT_WR)

    continuations = []
    thread = threading.Thread(target=feed)
    thread.start()
    try:
        parser = Parser(Connection(right, timeout=5), lambda: continuations.append(1), max_literal)
        return handler(parser), continuations
    finally:
        thread.join()
        left.close()
        right.close()


def command(p):
    p.next_line()
    tag = p.tag()
    p.sp()
    name = p.atom()
    args = []
    while p.take(" "):
        if p.peek("("):
            args.append(p.paren_list(p.astring))
        else:
            args.append(p.astring())
    p.end()
    return tag, name, args


CASES = [
    (b"a1 LOGIN joe secret\r\n", ("a1", "LOGIN", [b"joe", b"secret"]), 0),
    (b'a2 LOGIN "jo\\"e" "p a\\\\ss"\r\n', ("a2", "LOGIN", [b'jo"e', b"p a\\ss"]), 0),
    (b"a3 LOGIN {3}\r\njoe {6}\r\nsec\r\nt\r\n", ("a3", "LOGIN", [b"joe", b"sec\r\nt"]), 2),
    (b"a4 LOGIN {3+}\r\njoe {0+}\r\n\r\n", ("a4", "LOGIN", [b"joe", b""]), 0),
    (b"a5 X (a b {2+}\r\nc)) z\r\n", ("a5", "X", [[b"a", b"b", b"c)"], b"z"]), 0),
]


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("data,expected,continuations", CASES)
def test_commands_in_random_chunks(data, expected, continuations, seed):
    result, sent = parse_with(data, command, seed)
    assert result == expected
    assert len(sent) == continuations


@pytest.mark.parametrize("seed", range(10))
def test_many_commands_back_to_back(seed):
    data = b"".join(case[0] for case in CASES) * 3

    def all_commands(p):
        return [command(p) for _ in range(len(CASES) * 3)]

    result, _ = parse_with(data, all_commands, seed)
    assert result == [case[1] for case in CASES] * 3


def test_sequence_sets():
    def parse(p):
        p.next_line()
        return [p.sequence_set() for _ in range(1) if True] + [
            (p.sp(), p.sequence_set())[1] for _ in range(3)]
    (a, b, c, d), _ = parse_with(b"1:3,5,*:7 * $ 4294967295\r\n", parse, 1)
    assert a.ranges == [(1, 3), (5, 5), (None, 7)]
    assert a.resolve(10) == [(1, 3), (5, 5), (7, 10)]
    assert b.ranges == [(None, None)] and c.saved and d.ranges == [(2 ** 32 - 1, 2 ** 32 - 1)]


@pytest.mark.parametrize("line,message", [
    (b"0:3", "number must not be zero"),
    (b"1:", "expected number"),
    (b"x", "expected number"),
    (b"4294967296", "number too large"),
])
def test_bad_sequence_sets(line, message):
    def parse(p):
        p.next_line()
        with pytest.raises(ParseError) as info:
            p.sequence_set()
            p.end()
        return str(info.value)
    result, _ = parse_with(line + b"\r\n", parse, 1)
    assert message in result


@pytest.mark.parametrize("line,message", [
    (b'a LOGIN "unterminated\r\n', "unterminated quoted string"),
    (b"a LOGIN (x\r\n", "expected space at end of line"),
    (b'a LOGIN "bad\\q"\r\n', "invalid escape"),
    (b"+ LOGIN\r\n", "invalid tag"),
])
def test_syntax_errors(line, message):
    def parse(p):
        with pytest.raises(ParseError) as info:
            command(p)
        return str(info.value)
    result, _ = parse_with(line, parse, 3)
    assert message in result


def test_literal_too_big_synchronizing_sends_no_continuation():
    def parse(p):
        p.next_line()
        p.tag(), p.sp(), p.atom(), p.sp()
        with pytest.raises(LiteralTooBig) as info:
            p.astring()
        return info.value
    exc, sent = parse_with(b"a APPEND {5000000}\r\n", parse, 1)
    assert exc.synchronizing and exc.size == 5000000 and sent == []


def test_discard_drains_non_synchronizing_literals():
    data = b"a BOGUS ( {5+}\r\nhello {3+}\r\nabc more\r\nb NOOP\r\n"

    def parse(p):
        p.next_line()
        p.tag()
        p.sp()
        p.atom()
        p.sp()
        with pytest.raises(ParseError):
            p.astring()
        p.discard()
        return command(p)
    result, _ = parse_with(data, parse, 5)
    assert result == ("b", "NOOP", [])


@pytest.mark.parametrize("seed", range(5))
def test_streamed_literal(seed):
    body = bytes(range(256)) * 40

    def parse(p):
        p.next_line()
        p.tag(), p.sp(), p.atom(), p.sp()
        size, chunks = p.literal_stream(100000)
        data = b"".join(chunks)
        p.end()
        return size, data, command(p)
    data = b"a APPEND {%d}\r\n" % len(body) + body + b"\r\nb NOOP\r\n"
    (size, got, after), sent = parse_with(data, parse, seed)
    assert size == len(body) and got == body and after == ("b", "NOOP", []) and sent == [1]


def test_date_time():
    def parse(p):
        p.next_line()
        return p.date_time()
    value, _ = parse_with(b'" 7-Feb-1994 21:52:25 -0800"\r\n', parse, 1)
    assert value.isoformat() == "1994-02-07T21:52:25-08:00"
