"""The worker's verified-credentials cache (geomail/imap/authcache.py): a client that
logs in again skips scrypt (the log says "cached credentials"), a password changed
in the store is never served from the cache, wrong passwords stay wrong."""

import imaplib
import re

import pytest

from geomail.imap.authcache import CredentialCache
from geomail.store.accounts import set_password
from tests.imap.conftest import PASSWORD


def logins_of(server, address):
    return [line for line in server.output().splitlines()
            if re.search(rf"IMAP login {re.escape(address)} from", line)]


def login(server, address, password):
    imap = imaplib.IMAP4("127.0.0.1", server.imap_port)
    try:
        imap.login(address, password)
        imap.logout()
        return True
    except imaplib.IMAP4.error:
        imap.shutdown()
        return False


def test_logging_in_again_is_served_from_the_cache(server, account):
    for _ in range(8):              # two workers: several logins reach each twice
        assert login(server, account.address, PASSWORD)
    lines = logins_of(server, account.address)
    assert len(lines) == 8
    assert "cached credentials" not in lines[0]
    assert sum("cached credentials" in line for line in lines) >= 4


def test_a_changed_password_is_not_served_from_the_cache(server, db, account):
    for _ in range(6):
        assert login(server, account.address, PASSWORD)
    set_password(db, account.address, "a new one")
    assert not any(login(server, account.address, PASSWORD) for _ in range(4))
    assert login(server, account.address, "a new one")


def test_a_wrong_password_stays_wrong_and_the_right_one_works(server, account):
    assert not login(server, account.address, "wrong")
    assert not login(server, account.address, "wrong")
    assert login(server, account.address, PASSWORD)


def test_bounded_and_keyed():
    clock = [0.0]
    cache = CredentialCache(max_entries=3, positive_ttl=10, negative_ttl=1,
                            clock=lambda: clock[0])
    for n in range(5):
        cache.remember(f"u{n}", "pw", "hash", True)
    assert len(cache.entries) == 3
    assert cache.verdict("u0", "pw", "hash") is None           # the oldest went first
    assert cache.verdict("u4", "pw", "hash") is True
    assert cache.verdict("U4 ", "pw", "hash") is True          # user names as logins read them
    assert cache.verdict("u4", "pw", "other hash") is None      # a new stored hash: not known
    assert all(b"pw" not in key for key in cache.entries)       # keyed hashes, no passwords
    cache.remember("u9", "bad", "hash", False)
    assert cache.verdict("u9", "bad", "hash") is False
    clock[0] = 2.0
    assert cache.verdict("u9", "bad", "hash") is None           # negative results expire soon
    assert CredentialCache().key("u", "p") != CredentialCache().key("u", "p")   # per process
