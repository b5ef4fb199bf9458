"""Quota enforcement at SMTP delivery (RFC 9208 limits, RFC 3463 X.2.2 codes): per recipient
at RCPT, for the whole message after DATA or BDAT; nothing stored past a limit."""

import smtplib
import time

import pytest

from geomail.store.accounts import create_account
from geomail.smtp.recipients import RecipientDirectory
from geomail.store.quota import set_quota
from tests.fixtures.smtpwire import SMTPWire
from tests.smtp.test_protocol import ehlo, expected, simple_message


@pytest.fixture
def limited(maildb, address):
    """An account and a way to set its limits."""
    create_account(maildb.db, address)

    def limit(**limits):
        set_quota(maildb.db, address, **limits)
        return address
    return limit


def test_full_account_refused_at_rcpt_others_served(geomail_server, maildb, limited, address):
    full = limited(messages=1)
    with smtplib.SMTP("127.0.0.1", geomail_server.smtp_port) as client:
        client.sendmail("a@example.net", [full], simple_message("first"))
    other = f"other.{address}"
    with SMTPWire(geomail_server.smtp_port) as wire:
        ehlo(wire)
        assert wire.cmd("MAIL FROM:<a@example.net>") == expected("sender_ok")
        assert wire.cmd(f"RCPT TO:<{full}>") == expected("mailbox_full") == "452 4.2.2 Mailbox full"
        assert wire.cmd(f"RCPT TO:<{other}>") == expected("recipient_ok")
        assert wire.cmd("DATA") == expected("data_go")
        assert wire.cmd(simple_message("second") + ".").startswith("250 2.0.0 OK: stored as ")
    assert [row["subject"] for row in maildb.messages(full)] == ["first"]
    assert [row["subject"] for row in maildb.messages(other)] == ["second"]


def test_declared_size_over_quota_refused_at_rcpt(geomail_server, limited):
    address = limited(storage_kib=1)
    with SMTPWire(geomail_server.smtp_port) as wire:
        ehlo(wire)
        assert wire.cmd("MAIL FROM:<a@example.net> SIZE=5000") == expected("sender_ok")
        assert wire.cmd(f"RCPT TO:<{address}>") == expected("over_quota", address=address)
        assert expected("over_quota", address=address).startswith("552 5.2.2 ")
        assert wire.cmd("RSET") == expected("ok")
        assert wire.cmd("MAIL FROM:<a@example.net> SIZE=200") == expected("sender_ok")
        assert wire.cmd(f"RCPT TO:<{address}>") == expected("recipient_ok")


def test_message_passing_the_limit_after_data(geomail_server, maildb, limited):
    address = limited(storage_kib=2)
    big = simple_message("big") + ("y" * 70 + "\r\n") * 40        # about 3 KiB
    with SMTPWire(geomail_server.smtp_port) as wire:
        ehlo(wire)
        assert wire.cmd("MAIL FROM:<a@example.net>") == expected("sender_ok")
        assert wire.cmd(f"RCPT TO:<{address}>") == expected("recipient_ok")
        assert wire.cmd("DATA") == expected("data_go")
        assert wire.cmd(big + ".") == expected("over_quota", address=address)
        assert maildb.messages(address) == []
        # the session goes on, and a message that fits is stored
        assert wire.cmd("MAIL FROM:<a@example.net>") == expected("sender_ok")
        assert wire.cmd(f"RCPT TO:<{address}>") == expected("recipient_ok")
        small = simple_message("small")
        assert wire.cmd("DATA") == expected("data_go")
        assert wire.cmd(small + ".").startswith("250 ")
    assert [row["subject"] for row in maildb.messages(address)] == ["small"]


def test_bdat_passing_the_limit(geomail_server, maildb, limited):
    address = limited(storage_kib=1)
    body = simple_message("chunked") + "z" * 2000 + "\r\n"
    with SMTPWire(geomail_server.smtp_port) as wire:
        ehlo(wire)
        assert wire.cmd("MAIL FROM:<a@example.net>") == expected("sender_ok")
        assert wire.cmd(f"RCPT TO:<{address}>") == expected("recipient_ok")
        wire.send(f"BDAT {len(body)} LAST\r\n{body}")
        assert wire.reply() == expected("over_quota", address=address)
        assert wire.cmd("NOOP") == expected("ok")
    assert maildb.messages(address) == []


def test_limit_removed_accepts_again(geomail_server, maildb, limited):
    address = limited(messages=0)       # a limit of 0 messages: nothing fits
    with SMTPWire(geomail_server.smtp_port) as wire:
        ehlo(wire)
        wire.cmd("MAIL FROM:<a@example.net>")
        assert wire.cmd(f"RCPT TO:<{address}>") == expected("mailbox_full")
    limited(messages=None)
    with smtplib.SMTP("127.0.0.1", geomail_server.smtp_port) as client:
        client.sendmail("a@example.net", [address], simple_message("free"))
    assert [row["subject"] for row in maildb.messages(address)] == ["free"]


def test_rcpt_cache_of_no_limits_lasts_limits_ttl(maildb, address):
    """An account without limits is not queried again at each RCPT, but a limit set
    on it holds once the cached "no limits" is LIMITS_TTL old."""
    account_id = create_account(maildb.db, address).id
    directory = RecipientDirectory(maildb.db, auto_create=False, limits_ttl=0.3)
    assert not directory.quota(account_id).limited
    set_quota(maildb.db, address, messages=0)
    assert not directory.quota(account_id).limited          # the cached answer
    time.sleep(0.35)
    limited = directory.quota(account_id)
    assert limited.limited and limited.full()
    assert directory.quota(account_id).full()               # a limit is never cached
    set_quota(maildb.db, address, messages=None)
    assert not directory.quota(account_id).limited


def test_rcpt_cache_forgets_with_the_recipient(maildb, address):
    create_account(maildb.db, address)
    directory = RecipientDirectory(maildb.db, auto_create=False, limits_ttl=60)
    account_id, _ = directory.lookup(address)
    assert not directory.quota(account_id).limited
    set_quota(maildb.db, address, messages=0)
    directory.forget(address)            # what a failed delivery does
    assert directory.quota(account_id).full()


def test_unknown_account_quota_is_none(maildb):
    assert RecipientDirectory(maildb.db, auto_create=False).quota(2 ** 40) is None
