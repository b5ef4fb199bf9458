"""The idle bench's client: one process holding thousands of IMAP idlers cheaply.

    python bench/idle_clients.py PORT ADDRESS PASSWORD

Driven over stdin/stdout by bench/imap_idle.py, one command a line:

- ``open N``: open N more connections (CONCURRENCY at a time), each LOGIN,
  SELECT INBOX, IDLE; answers ``opened OK FAILED [first error]``.
- ``expect COUNT SECONDS``: answers ``seen T T ...`` with, per idler, the
  CLOCK_MONOTONIC time it read ``* COUNT EXISTS`` (the clock is the whole
  machine's, so the parent compares it with its own), once all have or
  SECONDS have passed (``missing N`` before the times).
- ``quit``.

A selectors loop with a few bytes of state per connection: no asyncio
stream objects, no thread, so 5,000 idlers cost the client little CPU and
the server's figures are not the client's.
"""

import selectors
import socket
import sys
import time

CONCURRENCY = 200


class Conn:
    __slots__ = ("sock", "step", "pending", "exists")

    def __init__(self, sock):
        self.sock = sock
        self.step = 0
        self.pending = b""
        self.exists = {}          # EXISTS count -> monotonic time first seen


class Clients:
    def __init__(self, port, address, password):
        self.port = port
        self.steps = [(b"* OK", f'a LOGIN "{address}" "{password}"\r\n'.encode()),
                      (b"a OK", b"b SELECT INBOX\r\n"), (b"b OK", b"c IDLE\r\n"), (b"+ ", None)]
        self.selector = selectors.DefaultSelector()
        self.idlers = []
        self.connecting = 0
        self.failed = 0
        self.first_error = ""

    def _start(self):
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        except OSError as exc:
            self._fail(repr(exc))
            return
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, Conn(sock))
        self.connecting += 1

    def _fail(self, text):
        self.failed += 1
        self.first_error = self.first_error or text

    def _drop(self, conn, text):
        self.selector.unregister(conn.sock)
        conn.sock.close()
        if conn.step < len(self.steps) - 1:
            self.connecting -= 1
            self._fail(text)

    def _readable(self, conn):
        try:
            data = conn.sock.recv(65536)
        except OSError as exc:
            data, error = b"", repr(exc)
        else:
            error = "closed by the server"
        if not data:
            self._drop(conn, error + (f" after {conn.pending[-200:]!r}" if conn.pending else ""))
            return
        conn.pending += data
        while b"\r\n" in conn.pending:
            line, _, conn.pending = conn.pending.partition(b"\r\n")
            if line.startswith(b"* ") and line.endswith(b" EXISTS"):
                conn.exists.setdefault(int(line.split()[1]), time.monotonic())
            if conn.step == len(self.steps) - 1:
                continue
            want, send = self.steps[conn.step]
            if line.startswith(want):
                conn.step += 1
                if send is not None:
                    conn.sock.send(send)
                if conn.step == len(self.steps) - 1:
                    self.connecting -= 1
                    self.idlers.append(conn)
            elif line[:1] in b"abc" and (b" NO " in line or b" BAD " in line):
                self._drop(conn, f"server said {line!r}")
                return

    def poll(self, timeout):
        for key, _ in self.selector.select(timeout):
            self._readable(key.data)

    def open(self, count):
        started, failed = len(self.idlers), self.failed
        to_start = count
        while to_start or self.connecting:
            while to_start and self.connecting < CONCURRENCY:
                self._start()
                to_start -= 1
            self.poll(1.0)
        return len(self.idlers) - started, self.failed - failed

    def expect(self, count, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if all(count in c.exists for c in self.idlers):
                break
            self.poll(0.01)
        seen = [c.exists[count] for c in self.idlers if count in c.exists]
        return len(self.idlers) - len(seen), seen


def main():
    port, address, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    clients = Clients(port, address, password)
    for line in sys.stdin:
        words = line.split()
        if words[0] == "open":
            opened, failed = clients.open(int(words[1]))
            print(f"opened {opened} {failed} {clients.first_error}", flush=True)
        elif words[0] == "expect":
            missing, seen = clients.expect(int(words[1]), float(words[2]))
            print(f"missing {missing} seen " + " ".join(f"{t:.6f}" for t in seen), flush=True)
        elif words[0] == "quit":
            return


if __name__ == "__main__":
    main()
