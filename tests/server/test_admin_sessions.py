"""geomail-admin who, kick, search and fetch against the running bin/geomail of the suite
(the sessions table is shared by every worker and host; kick is carried out by the
worker that serves the session)."""

import imaplib
import json
import subprocess
import sys

import pytest

from geomail.store.accounts import create_account
from tests.fixtures.admin import admin, new_account
from tests.fixtures.server import ADMIN, clean_env, wait_for

MESSAGES = [
    b"From: Alice <alice@example.org>\r\nSubject: two words here\r\n\r\nfirst body\r\n",
    b"From: Bob <bob@example.org>\r\nSubject: other\r\n\r\nsecond body\r\n",
    b"From: Alice <alice@example.org>\r\nSubject: again\r\n\r\nthird body\r\n",
]


@pytest.fixture
def account(geomail_server, test_storage):
    return new_account(test_storage, "who")


def admin_bytes(storage, *args):
    return subprocess.run([sys.executable, str(ADMIN), *storage.server_args(), *args],
                          capture_output=True, env=clean_env(), timeout=60)


def login(server, address):
    imap = imaplib.IMAP4("127.0.0.1", server.imap_port)
    imap.login(address, "pw")
    return imap


def who(storage, *args):
    result = admin(storage, "who", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_who_lists_logged_in_sessions_and_forgets_them_at_logout(geomail_server, test_storage,
                                                                  account):
    assert who(test_storage, account) == []
    first, second = login(geomail_server, account), login(geomail_server, account)
    rows = who(test_storage, account)
    assert len(rows) == 2 and {row["address"] for row in rows} == {account}
    assert all(row["remote"] == "127.0.0.1" and row["tls"] is False for row in rows)
    assert len({row["session"] for row in rows}) == 2
    table = admin(test_storage, "who", account)
    assert table.stdout.splitlines()[0].split() == ["ADDRESS", "SESSION", "REMOTE", "TLS", "HOST",
                                                    "PID", "STARTED_AT"]
    assert all(account in line for line in table.stdout.splitlines()[1:])
    first.logout()
    assert len(who(test_storage, account)) == 1
    second.logout()
    assert who(test_storage, account) == []


def test_kick_ends_the_sessions_of_an_account_only(geomail_server, test_storage, account):
    other = account.replace("who", "other", 1)
    db = test_storage.open_db()
    create_account(db, other, "pw")
    db.close()
    victims = [login(geomail_server, account), login(geomail_server, account)]
    bystander = login(geomail_server, other)
    result = admin(test_storage, "kick", account)
    assert result.returncode == 0 and "2 session(s) asked to end" in result.stdout

    def ended(imap):
        try:
            imap.noop()
            return False
        except (imaplib.IMAP4.abort, OSError):
            return True
    wait_for(lambda: all(ended(imap) for imap in victims), timeout=15, message="kicked sessions")
    wait_for(lambda: who(test_storage, account) == [], timeout=10, message="rows gone")
    assert bystander.noop()[0] == "OK"              # the other account's session goes on
    assert len(who(test_storage, other)) == 1
    session_id = who(test_storage, other)[0]["session"]
    assert admin(test_storage, "kick", "--session", session_id).returncode == 0
    wait_for(lambda: ended(bystander), timeout=15, message="session kicked by id")
    nothing = admin(test_storage, "kick", account)
    assert nothing.returncode == 1 and "0 session(s)" in nothing.stdout
    usage = admin(test_storage, "kick")
    assert usage.returncode == 2 and "give an account or a session id" in usage.stderr


def test_search_and_fetch_with_imap_search_keys(geomail_server, test_storage, account):
    imap = login(geomail_server, account)
    for message in MESSAGES:
        imap.append("INBOX", "", None, message)
    imap.logout()
    found = json.loads(admin(test_storage, "search", account, "INBOX", "FROM", "alice",
                             "--json").stdout)
    assert [row["uid"] for row in found] == [1, 3]
    assert found[0]["subject"] == "two words here" and "alice@example.org" in found[0]["from"]
    quoted = json.loads(admin(test_storage, "search", account, "INBOX",
                              'SUBJECT "two words"', "--json").stdout)
    assert [row["uid"] for row in quoted] == [1]
    assert [row["uid"] for row in json.loads(admin(test_storage, "search", account, "INBOX",
                                                   "2:*", "NOT", "FROM", "bob", "--json").stdout)] == [3]
    everything = admin(test_storage, "search", account, "INBOX")
    assert everything.returncode == 0 and len(everything.stdout.splitlines()) == 4   # header + 3
    bad = admin(test_storage, "search", account, "INBOX", "FROM")
    assert bad.returncode == 2 and "search keys" in bad.stderr
    raw = admin_bytes(test_storage, "fetch", account, "INBOX", "2", "--raw")
    assert raw.returncode == 0 and raw.stdout == MESSAGES[1]           # every byte as stored
    head = admin_bytes(test_storage, "fetch", account, "INBOX", "1")
    assert head.stdout == b"From: Alice <alice@example.org>\r\nSubject: two words here\r\n"
    missing = admin(test_storage, "fetch", account, "INBOX", "99")
    assert missing.returncode == 1 and "no message with UID 99" in missing.stderr
    nobox = admin(test_storage, "search", account, "Nope", "ALL")
    assert nobox.returncode == 1 and "has no mailbox Nope" in nobox.stderr
