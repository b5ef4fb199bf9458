"""Accounts against the real MariaDB: creation, races, passwords, deletion."""

import datetime
import secrets
import threading

import pytest

from geomail.store import accounts
from geomail.store.errors import AccountExists, AccountNotFound, InvalidAddress
from geomail.store.mailboxes import list_mailboxes


def address(local="user"):
    return f"{local}-{secrets.token_hex(4)}@example.org"


class TestCreate:
    def test_create_lower_cases_and_makes_standard_mailboxes(self, migrated_db):
        given = address("Mixed.Case").replace("example.org", "Example.ORG")
        account = accounts.create_account(migrated_db, given)
        assert account.address == given.lower()
        assert account.domain == "example.org"
        assert account.can_login is False
        boxes = list_mailboxes(migrated_db, account.id)
        assert [(b.name, b.special_use) for b in boxes] == [
            ("INBOX", None), ("Drafts", "\\Drafts"), ("Junk", "\\Junk"),
            ("Sent", "\\Sent"), ("Trash", "\\Trash")]
        assert all(b.subscribed and b.uidnext == 1 and b.message_count == 0 for b in boxes)
        assert len({b.uidvalidity for b in boxes}) == len(boxes)

    def test_duplicate_is_refused(self, migrated_db):
        given = address()
        accounts.create_account(migrated_db, given)
        with pytest.raises(AccountExists):
            accounts.create_account(migrated_db, given.upper())

    @pytest.mark.parametrize("bad", ["", "nobody", "@example.org", "user@", "a b@example.org",
                                     "user@exa..mple", "x" * 65 + "@example.org"])
    def test_invalid_address(self, migrated_db, bad):
        with pytest.raises(InvalidAddress):
            accounts.create_account(migrated_db, bad)

    def test_get_missing_is_none(self, migrated_db):
        assert accounts.get_account(migrated_db, address()) is None
        assert accounts.get_account(migrated_db, "not an address") is None


class TestEnsure:
    def test_ensure_creates_once(self, migrated_db):
        given = address()
        first = accounts.ensure_account(migrated_db, given)
        assert accounts.ensure_account(migrated_db, given.upper()) == first
        assert first.can_login is False

    def test_concurrent_ensure_makes_one_account(self, migrated_db):
        given = address("race")
        workers = 8
        barrier = threading.Barrier(workers)
        results, errors = [], []

        def deliver():
            barrier.wait()
            try:
                results.append(accounts.ensure_account(migrated_db, given))
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=deliver) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        assert len(results) == workers and len({a.id for a in results}) == 1
        matching = [a for a in accounts.list_accounts(migrated_db) if a.address == given]
        assert len(matching) == 1 and matching[0].mailbox_count == 5


class TestPasswords:
    def test_login(self, migrated_db):
        given = address()
        accounts.create_account(migrated_db, given, password="s3cret")
        with migrated_db.cursor() as cur:
            cur.execute("SELECT password_hash FROM accounts WHERE address = %s", (given,))
            stored = cur.fetchone()[0]
        assert "s3cret" not in stored and stored.startswith("$scrypt$")
        assert accounts.verify_login(migrated_db, given.upper(), "s3cret").address == given
        assert accounts.verify_login(migrated_db, given, "wrong") is None
        assert accounts.verify_login(migrated_db, address(), "s3cret") is None
        assert accounts.verify_login(migrated_db, "garbage", "s3cret") is None

    def test_auto_created_account_cannot_log_in_until_password_set(self, migrated_db):
        given = address()
        accounts.ensure_account(migrated_db, given)
        assert accounts.verify_login(migrated_db, given, "") is None
        accounts.set_password(migrated_db, given, "now")
        assert accounts.get_account(migrated_db, given).can_login
        assert accounts.verify_login(migrated_db, given, "now") is not None
        accounts.set_password(migrated_db, given, None)
        assert accounts.verify_login(migrated_db, given, "now") is None

    def test_set_password_of_missing_account(self, migrated_db):
        with pytest.raises(AccountNotFound):
            accounts.set_password(migrated_db, address(), "pw")


def add_content(db, attachments=()):
    """A message_contents row with attachment rows; returns its id (refcount 0 until messages refer to it)."""
    with db.transaction() as cur:
        cur.execute("INSERT INTO message_contents (raw, segments, size, header_size, envelope, "
                    "bodystructure, body) VALUES (%s, '[]', %s, 10, '', '', '')", (b"raw\xff", 4))
        content_id = cur.lastrowid
        for idx, (bucket, key) in enumerate(attachments):
            cur.execute("INSERT INTO attachments (content_id, idx, part_number, safe_filename, "
                        "content_type, transfer_encoding, decoded_size, sha256, encoding, bucket, "
                        "object_key) VALUES (%s, %s, %s, 'a.pdf', 'application/pdf', 'base64', 3, "
                        "%s, '{}', %s, %s)", (content_id, idx, str(idx + 2), "0" * 64, bucket, key))
    return content_id


def add_message(db, mailbox_id, content_id):
    """What delivery/COPY will do: a message row with the next UID, the content's refcount +1."""
    with db.transaction() as cur:
        cur.execute("SELECT uidnext, highestmodseq FROM mailboxes WHERE id = %s FOR UPDATE", (mailbox_id,))
        uid, modseq = cur.fetchone()
        cur.execute("INSERT INTO messages (mailbox_id, uid, modseq, content_id, internal_date, "
                    "rfc822_size, trace_headers) VALUES (%s, %s, %s, %s, %s, 4, '')",
                    (mailbox_id, uid, modseq + 1, content_id, datetime.datetime.utcnow()))
        cur.execute("UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = %s, "
                    "message_count = message_count + 1, total_size = total_size + 4 WHERE id = %s",
                    (modseq + 1, mailbox_id))
        cur.execute("UPDATE message_contents SET refcount = refcount + 1 WHERE id = %s", (content_id,))


class TestDelete:
    def test_delete_returns_only_unreferenced_objects(self, migrated_db):
        db = migrated_db
        alice = accounts.create_account(db, address("alice"))
        bob = accounts.create_account(db, address("bob"))
        alice_boxes = {b.name: b.id for b in list_mailboxes(db, alice.id)}
        bob_inbox = list_mailboxes(db, bob.id)[0].id
        tag = secrets.token_hex(4)
        shared = add_content(db, [("bucket-a", f"{tag}/shared/1")])  # one delivery to both
        own = add_content(db, [("bucket-a", f"{tag}/own/1"), ("bucket-b", f"{tag}/own/2")])
        copied = add_content(db, [("bucket-a", f"{tag}/copied/1")])  # INBOX + COPY to Trash
        plain = add_content(db)  # no attachments
        add_message(db, alice_boxes["INBOX"], shared)
        add_message(db, bob_inbox, shared)
        add_message(db, alice_boxes["INBOX"], own)
        add_message(db, alice_boxes["INBOX"], copied)
        add_message(db, alice_boxes["Trash"], copied)
        add_message(db, alice_boxes["Sent"], plain)
        summary = {a.address: a for a in accounts.list_accounts(db)}[alice.address]
        assert summary.message_count == 5 and summary.total_size == 20

        objects = accounts.delete_account(db, alice.address)

        assert sorted(objects) == sorted([("bucket-a", f"{tag}/own/1"), ("bucket-b", f"{tag}/own/2"),
                                          ("bucket-a", f"{tag}/copied/1")])
        assert accounts.get_account(db, alice.address) is None
        with db.cursor() as cur:
            cur.execute("SELECT id, refcount FROM message_contents WHERE id IN (%s, %s, %s, %s)",
                        (shared, own, copied, plain))
            assert dict(cur.fetchall()) == {shared: 1}
            cur.execute("SELECT object_key FROM attachments WHERE object_key LIKE %s", (f"{tag}/%",))
            assert [row[0] for row in cur.fetchall()] == [f"{tag}/shared/1"]
            cur.execute("SELECT COUNT(*) FROM mailboxes WHERE account_id = %s", (alice.id,))
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT COUNT(*) FROM subscriptions WHERE account_id = %s", (alice.id,))
            assert cur.fetchone()[0] == 0
        assert [b.message_count for b in list_mailboxes(db, bob.id) if b.name == "INBOX"] == [1]

    def test_delete_missing_account(self, migrated_db):
        with pytest.raises(AccountNotFound):
            accounts.delete_account(migrated_db, address())

    def test_recreated_account_gets_new_uidvalidity(self, migrated_db):
        given = address()
        before = {b.name: b.uidvalidity for b in
                  list_mailboxes(migrated_db, accounts.create_account(migrated_db, given).id)}
        accounts.delete_account(migrated_db, given)
        after = {b.name: b.uidvalidity for b in
                 list_mailboxes(migrated_db, accounts.create_account(migrated_db, given).id)}
        assert all(after[name] != before[name] for name in before)
