"""Mailboxes: listing with special use, names, creation."""

import secrets

import pytest

from geomail.store import accounts, mailboxes
from geomail.store.errors import InvalidMailboxName, MailboxExists


@pytest.fixture
def account(migrated_db):
    return accounts.create_account(migrated_db, f"mb-{secrets.token_hex(4)}@example.org")


def test_list_shows_special_use_and_counters(migrated_db, account):
    listed = {b.name: b for b in mailboxes.list_mailboxes(migrated_db, account.id)}
    assert listed["Sent"].special_use == "\\Sent"
    assert listed["Trash"].special_use == "\\Trash"
    assert listed["INBOX"].special_use is None
    assert (listed["INBOX"].message_count, listed["INBOX"].unseen_count) == (0, 0)
    assert listed["INBOX"].uidnext == 1 and listed["INBOX"].uidvalidity > 0


def test_create_nested_and_case_sensitive(migrated_db, account):
    mailboxes.create_mailbox(migrated_db, account.id, "Projects/geomail", subscribe=False)
    mailboxes.create_mailbox(migrated_db, account.id, "projects/Geomail")
    names = {b.name: b.subscribed for b in mailboxes.list_mailboxes(migrated_db, account.id)}
    assert names["Projects/geomail"] is False and names["projects/Geomail"] is True
    with pytest.raises(MailboxExists):
        mailboxes.create_mailbox(migrated_db, account.id, "Projects/geomail")


def test_inbox_is_case_insensitive(migrated_db, account):
    with pytest.raises(MailboxExists):
        mailboxes.create_mailbox(migrated_db, account.id, "inbox")
    mailboxes.create_mailbox(migrated_db, account.id, "Inbox/Receipts")
    assert mailboxes.get_mailbox(migrated_db, account.id, "INBOX/Receipts") is not None
    assert mailboxes.get_mailbox(migrated_db, account.id, "iNbOx").name == "INBOX"


def test_utf8_names(migrated_db, account):
    mailboxes.create_mailbox(migrated_db, account.id, "Entwürfe/日本語 📬")
    assert mailboxes.get_mailbox(migrated_db, account.id, "Entwürfe/日本語 📬") is not None


@pytest.mark.parametrize("bad", ["", "/a", "a/", "a//b", "tab\there", "star*", "per%cent", "x" * 513])
def test_invalid_names(bad):
    with pytest.raises(InvalidMailboxName):
        mailboxes.normalize_name(bad)


def test_uidvalidity_never_repeats_for_a_name(migrated_db, account):
    first = mailboxes.create_mailbox(migrated_db, account.id, "Again")
    before = mailboxes.get_mailbox(migrated_db, account.id, "Again").uidvalidity
    with migrated_db.transaction() as cur:
        cur.execute("DELETE FROM mailboxes WHERE id = %s", (first,))
    mailboxes.create_mailbox(migrated_db, account.id, "Again")
    assert mailboxes.get_mailbox(migrated_db, account.id, "Again").uidvalidity > before
