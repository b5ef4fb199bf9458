"""QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT, SETQUOTA, and NO [OVERQUOTA] for APPEND and COPY."""

import pytest

from geomail.store.quota import set_quota
from tests.imap.conftest import message


@pytest.fixture
def limit(session, db):
    def set_limits(**limits):
        set_quota(db, session.account.address, **limits)
    return set_limits


def test_no_limits_no_root(session):
    assert session.command("GETQUOTAROOT INBOX") == ["* QUOTAROOT INBOX", "TAG OK GETQUOTAROOT completed"]
    assert session.command('GETQUOTA ""') == ["TAG NO [NONEXISTENT] No such quota root"]


def test_usage_and_limits(session, deliver, limit):
    limit(storage_kib=10, messages=3)
    assert session.command("GETQUOTAROOT INBOX") == [
        '* QUOTAROOT INBOX ""', '* QUOTA "" (STORAGE 0 10 MESSAGE 0 3)',
        "TAG OK GETQUOTAROOT completed"]
    deliver(session.account.address, message("one"))
    session.ok("SELECT INBOX")
    session.ok("COPY 1 Trash")
    size = int(session.ok("FETCH 1 RFC822.SIZE")[0].split("RFC822.SIZE ")[1].rstrip(")"))
    used = -(-2 * size // 1024)
    assert session.command('GETQUOTA ""') == [
        f'* QUOTA "" (STORAGE {used} 10 MESSAGE 2 3)', "TAG OK GETQUOTA completed"]
    assert session.command("GETQUOTAROOT Trash") == [
        '* QUOTAROOT Trash ""', f'* QUOTA "" (STORAGE {used} 10 MESSAGE 2 3)',
        "TAG OK GETQUOTAROOT completed"]
    limit(storage_kib=None)
    assert session.command('GETQUOTA ""') == ['* QUOTA "" (MESSAGE 2 3)', "TAG OK GETQUOTA completed"]


def test_errors(session, limit):
    limit(messages=5)
    assert session.command("GETQUOTAROOT Nope") == ["TAG NO [NONEXISTENT] Mailbox Nope does not exist"]
    assert session.command('GETQUOTA "user.other"') == ["TAG NO [NONEXISTENT] No such quota root"]
    assert session.command('SETQUOTA "" (STORAGE 512)') == [
        "TAG NO [NOPERM] Quotas are set by the administrator"]
    assert session.command('SETQUOTA "" ()') == ["TAG NO [NOPERM] Quotas are set by the administrator"]
    assert session.command('SETQUOTA "" (STORAGE lots)') == [
        "TAG BAD Syntax error: expected number at 'lots)'"]
    assert session.command("SETQUOTA") == ["TAG BAD Syntax error: expected space at end of line"]
    assert session.command("GETQUOTA") == ["TAG BAD Syntax error: expected space at end of line"]
    assert session.command('GETQUOTA "" extra') == [
        "TAG BAD Syntax error: unexpected ' extra' at end of command"]


def test_append_over_message_limit_refused_before_the_literal(session, deliver, limit):
    deliver(session.account.address, message("one"))
    limit(messages=1)
    # synchronising literal: no '+', the client sends nothing more
    session.send("a1 APPEND INBOX {20}\r\n")
    assert session.readline() == b"a1 NO [OVERQUOTA] Quota exceeded: the MESSAGE limit would be passed\r\n"
    # non-synchronising: the literal is read and dropped
    session.send("a2 APPEND INBOX {5+}\r\nhello\r\n")
    assert session.readline() == b"a2 NO [OVERQUOTA] Quota exceeded: the MESSAGE limit would be passed\r\n"
    assert session.command("STATUS INBOX (MESSAGES)") == [
        "* STATUS INBOX (MESSAGES 1)", "TAG OK STATUS completed"]


def test_append_over_storage_limit(session, limit):
    limit(storage_kib=1)
    big = message("big", body="x" * 2000 + "\r\n")
    assert session.command(f"APPEND INBOX {{{len(big)}+}}\r\n{big.decode()}") == [
        "TAG NO [OVERQUOTA] Quota exceeded: the STORAGE limit would be passed"]
    small = message("small")
    assert session.command(f"APPEND INBOX {{{len(small)}+}}\r\n{small.decode()}")[-1].startswith(
        "TAG OK [APPENDUID ")


def test_copy_over_quota_move_allowed(session, deliver, limit):
    deliver(session.account.address, message("one"))
    deliver(session.account.address, message("two"))
    limit(messages=3)
    session.ok("SELECT INBOX")
    assert session.command("COPY 1:2 Trash") == [
        "TAG NO [OVERQUOTA] Quota exceeded: the MESSAGE limit would be passed"]
    assert session.command("STATUS Trash (MESSAGES)")[0] == "* STATUS Trash (MESSAGES 0)"
    assert session.command("COPY 1 Trash")[-1].startswith("TAG OK [COPYUID ")
    # the account is full now, but MOVE does not change its usage (one quota root)
    assert session.command("UID MOVE 2 Trash")[-1] == "TAG OK UID MOVE completed"
    assert session.command("STATUS Trash (MESSAGES)")[0] == "* STATUS Trash (MESSAGES 2)"


def test_status_deleted_storage(session, deliver):
    deliver(session.account.address, message("one", body="x" * 3000 + "\r\n"))
    session.ok("SELECT INBOX")
    size = int(session.ok("FETCH 1 RFC822.SIZE")[0].split("RFC822.SIZE ")[1].rstrip(")"))
    assert session.command("STATUS INBOX (DELETED-STORAGE)") == [
        "* STATUS INBOX (DELETED-STORAGE 0)", "TAG OK STATUS completed"]
    session.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert session.command("STATUS INBOX (DELETED DELETED-STORAGE)") == [
        f"* STATUS INBOX (DELETED 1 DELETED-STORAGE {-(-size // 1024)})", "TAG OK STATUS completed"]
