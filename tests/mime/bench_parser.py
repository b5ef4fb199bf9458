"""Benchmark: python tests/mime/bench_parser.py (not collected by pytest)."""

import base64
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from geomail.mime import MessageParser, rebuild  # noqa: E402


class NullWriter:
    def write(self, data):
        pass

    def close(self):
        pass

    def abort(self):
        pass


class NullSink:
    def open(self, info):
        return NullWriter()


def small_message(i):
    body = (b"Hello there, this is line %d of a small test message body.\r\n" % i) * 60
    return (b"Return-Path: <a@example.org>\r\nReceived: from x by y; Mon, 7 Feb 1994 21:52:25 -0800\r\n"
            b"From: Fred Foobar <foobar@blurdybloop.example>\r\nTo: mooch@owatagu.example\r\n"
            b"Subject: =?utf-8?q?afternoon_meeting_%d?=\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
            b"Message-Id: <B27397-%d@blurdybloop.example>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" % (i, i)) + body[:3600]


def bench_small(n=3000):
    msgs = [small_message(i) for i in range(100)]
    size = len(msgs[0])
    t = time.process_time()
    for i in range(n):
        p = MessageParser(NullSink())
        p.feed(msgs[i % 100])
        p.close()
    dt = time.process_time() - t
    print("4 KiB messages: %d msgs in %.2fs CPU: %.0f msgs/s, %.1f MB/s"
          % (n, dt, n / dt, n * size / dt / 1e6))


def bench_attachment(mib=50):
    payload = os.urandom(mib << 20)
    enc = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    msg = (b"From: a@b\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
           b"Content-Type: text/plain\r\n\r\nsee attached\r\n--zz\r\n"
           b"Content-Type: application/octet-stream; name=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + enc + b"--zz--\r\n")
    t = time.process_time()
    p = MessageParser(NullSink())
    for i in range(0, len(msg), 65536):
        p.feed(msg[i:i + 65536])
    parsed = p.close()
    dt = time.process_time() - t
    print("%d MiB base64 attachment (%.1f MB encoded): parse %.2fs CPU, %.0f MB/s, raw kept %d bytes"
          % (mib, len(msg) / 1e6, dt, len(msg) / dt / 1e6, len(parsed.raw)))

    def read(index, a, b):
        for i in range(a, b, 1 << 20):
            yield payload[i:min(b, i + (1 << 20))]
    t = time.process_time()
    n = sum(len(c) for c in rebuild(parsed, parsed.raw, read))
    dt = time.process_time() - t
    print("rebuild of the same: %.2fs CPU, %.0f MB/s (%d bytes)" % (dt, n / dt / 1e6, n))


if __name__ == "__main__":
    bench_small()
    bench_attachment()
