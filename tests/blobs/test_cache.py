"""The worker's attachment cache: bounded, least recently used out first, never stale."""

import base64
import os

import pytest

from geomail.blobs.cache import AttachmentCache
from geomail.reader import StoredMessage
from tests.smtp.test_ingest import send_all


class TestAttachmentCache:
    def test_budget_bounds_memory_and_evicts_least_recently_used(self):
        cache = AttachmentCache(800)              # entries of up to 100 bytes
        for name in "abcdefgh":
            cache.put(name, name.encode() * 100)
        assert cache.used == 800 and len(cache) == 8
        assert cache.get("a") == b"a" * 100            # a is now the most recent
        cache.put("i", b"i" * 100)
        assert cache.used == 800
        assert cache.get("b") is None                   # the least recent went
        assert cache.get("a") is not None and cache.get("i") is not None

    def test_large_entries_are_not_kept(self):
        cache = AttachmentCache(800)
        cache.put("big", b"x" * 101)
        assert len(cache) == 0 and cache.used == 0

    def test_replacing_keeps_the_count_right(self):
        cache = AttachmentCache(800)
        cache.put("k", b"1" * 50)
        cache.put("k", b"2" * 70)
        assert cache.used == 70 and cache.get("k") == b"2" * 70

    def test_zero_budget_keeps_nothing(self):
        cache = AttachmentCache(0)
        cache.put("k", b"x")
        assert len(cache) == 0


def message_with(attachments):
    parts = []
    for i, data in enumerate(attachments):
        encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
        parts.append(b"--b\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Transfer-Encoding: base64\r\n"
                     b"Content-Disposition: attachment; filename=\"f%d.bin\"\r\n\r\n" % i + encoded)
    return (b"From: a@example.net\r\nSubject: cached\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
            b"Content-Type: text/plain\r\n\r\nsee attached\r\n"
            + b"".join(parts) + b"--b--\r\n")


@pytest.fixture
def stored_message(geomail_server, maildb, address):
    """A delivered message with a small and a 2 MiB attachment: (row, bytes with trace)."""
    data = message_with([os.urandom(150_000), os.urandom(2 * 1024 * 1024)])
    send_all(geomail_server.smtp_port, address, [("cached", data)])
    (row,) = maildb.messages(address)
    return row, row["trace"] + data


def test_reads_come_from_the_cache_once_filled(maildb, stored_message):
    row, full = stored_message
    context = maildb.with_cache()
    message = StoredMessage(context, row["trace"], maildb.stored(row).content)
    assert message.bytes() == full
    assert not message.cached(1)                        # 2 MiB: streamed, never cached
    assert message.cached(0)
    small_key = message.content["attachments"][0]["key"]
    maildb.blobs.delete([small_key])                    # gone from S3 ...
    start = full.index(b"Content-Disposition: attachment; filename=\"f0.bin\"")
    assert message.bytes(start, start + 100_000) == full[start:start + 100_000]   # ... still read
    assert context.attachment_cache.used <= context.attachment_cache.budget


def test_a_small_cache_stays_within_its_budget(maildb, stored_message):
    row, full = stored_message
    context = maildb.with_cache(budget=1024 * 1024)        # too small for the 200 KB base64 part
    message = StoredMessage(context, row["trace"], maildb.stored(row).content)
    assert message.bytes() == full
    assert len(context.attachment_cache) == 0 and not message.cached(0)
