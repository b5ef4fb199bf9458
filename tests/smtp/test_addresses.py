"""geomail.smtp.addresses: the shortcuts (quote-free paths, the mailbox cache) give
what the full parse gives."""

import random

import pytest

from geomail.smtp import addresses
from geomail.smtp.addresses import AddressError, parse_mailbox, parse_path


def test_quote_free_split_is_the_full_split():
    rng = random.Random(5)
    alphabet = "<>@ab.\\= :"
    for _ in range(20000):
        text = "<" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        try:
            expected = addresses._split_quoted_path(text)
        except AddressError:
            with pytest.raises(AddressError):
                addresses._split_path(text)
            continue
        assert addresses._split_path(text) == expected, repr(text)


def test_quoted_paths_still_split_by_quotes():
    assert addresses._split_path('<"a>b"@x.example> SIZE=1') == ('<"a>b"@x.example>', "SIZE=1")
    mailbox, params = parse_path('TO:<"a>b"@x.example> SIZE=1', "TO")
    assert (mailbox.local, mailbox.domain, mailbox.quoted, params) == ("a>b", "x.example", True,
                                                                      {"SIZE": "1"})


def test_cached_mailbox_is_the_parsed_one_and_errors_repeat():
    first = parse_mailbox("Some.One@Example.ORG", utf8=True)
    again = parse_mailbox("Some.One@Example.ORG", utf8=True)
    fresh = addresses._parse_mailbox("Some.One@Example.ORG", True)
    assert again is first
    assert (again.local, again.domain, again.quoted, again.key) == (
        fresh.local, fresh.domain, fresh.quoted, fresh.key) == (
        "Some.One", "example.org", False, "some.one@example.org")
    for _ in range(2):
        with pytest.raises(AddressError):
            parse_mailbox("bad..local@example.org")
    # the cache is per utf8 setting: UTF-8 passes only where it is allowed
    assert parse_mailbox("j\u00f6rg@example.org", utf8=True).local == "j\u00f6rg"
    with pytest.raises(AddressError):
        parse_mailbox("j\u00f6rg@example.org", utf8=False)


def test_cache_stays_bounded():
    for n in range(addresses._PARSED_ENTRIES + 10):
        parse_mailbox(f"user{n}@example.org")
    assert len(addresses._parsed) <= addresses._PARSED_ENTRIES
