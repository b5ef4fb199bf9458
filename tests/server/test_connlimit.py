"""geomail.connlimit: what counts as one source, and rows shared between processes."""

import os

from geomail import connlimit


def test_source_keys():
    key = connlimit.source_key
    assert key(("192.0.2.1", 25)) == bytes([192, 0, 2, 1])
    assert key(("::ffff:192.0.2.1", 25, 0, 0)) == key(("192.0.2.1", 4000))
    assert key(("2001:db8:1:2::1", 25, 0, 0)) == key(("2001:db8:1:2:ffff::9", 1, 0, 0))
    assert key(("2001:db8:1:2::1", 25, 0, 0)) != key(("2001:db8:1:3::1", 25, 0, 0))


def test_limit_per_protocol_and_release():
    counter = connlimit.Counter(2, connlimit.SharedTable(rows=4))
    assert counter.shared
    first = counter.acquire("smtp", ("198.51.100.7", 1))
    second = counter.acquire("smtp", ("198.51.100.7", 2))
    assert first is not None and second is not None
    assert counter.acquire("smtp", ("198.51.100.7", 3)) is None
    assert counter.acquire("imap", ("198.51.100.7", 4)) is not None
    counter.release(first)
    assert counter.acquire("smtp", ("198.51.100.7", 5)) is not None


class Worker:
    """A forked process with its own Counter (POSIX locks are per process, as in geomail)."""

    def __init__(self, table, held):
        self.commands_r, self.commands_w = os.pipe()
        self.answers_r, self.answers_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            counter = connlimit.Counter(3, table)
            for port in range(held):
                counter.acquire("imap", ("203.0.113.5", port))
            os.write(self.answers_w, bytes([counter.row]))
            while os.read(self.commands_r, 1) == b"?":       # "?": try one more
                token = counter.acquire("imap", ("203.0.113.5", 99))
                os.write(self.answers_w, b"+" if token is not None else b"-")
            os._exit(0)
        self.row = os.read(self.answers_r, 1)[0]

    def one_more(self):
        os.write(self.commands_w, b"?")
        return os.read(self.answers_r, 1) == b"+"

    def die(self):
        os.write(self.commands_w, b"x")
        os.waitpid(self.pid, 0)


def test_rows_are_counted_across_processes_and_freed_by_death():
    table = connlimit.SharedTable(rows=4)
    first = Worker(table, held=2)
    second = Worker(table, held=0)
    try:
        assert first.row != second.row
        assert second.one_more()             # 2 in the first worker + 1 here
        assert not second.one_more()         # the limit of 3 is over both
        first.die()                          # its row still says 2 (nobody cleared it)...
        assert not second.one_more()
        third = Worker(table, held=0)        # ...until the next worker starts
        try:
            assert third.one_more()
            assert third.one_more()
            assert not third.one_more()      # 1 in the second + 2 in the third
        finally:
            third.die()
    finally:
        second.die()
