"""Several messages stored in one transaction (group commit), on both backends: on
MySQL as one script (one round trip), on SQLite statement by statement; the same
UIDs, modseqs, counters and refcounts either way, and nothing stored when one
target is gone."""

import secrets

import pytest

from geomail.store import accounts, intents, mailboxes
from geomail.store.delivery import Target, store_messages
from geomail.store.contents import StoredAttachment
from tests.mime.mime_helpers import parse


def message(subject):
    return parse(f"From: a@example.org\r\nSubject: {subject}\r\n\r\nbody {subject}\r\n".encode())[0]


@pytest.fixture
def boxes(migrated_db):
    account = accounts.create_account(migrated_db, f"batch-{secrets.token_hex(4)}@example.org")
    mailboxes.create_mailbox(migrated_db, account.id, "Other")
    listed = {b.name: b.id for b in mailboxes.list_mailboxes(migrated_db, account.id)}
    return listed["INBOX"], listed["Other"]


def query(db, sql, args=()):
    with db.cursor() as cur:
        cur.execute(sql, args)
        return [tuple(row) for row in cur.fetchall()]


def test_a_batch_gets_ascending_uids_one_modseq_each_and_counters(migrated_db, boxes):
    inbox, other = boxes
    key = f"test/{secrets.token_hex(4)}/a.bin"
    pending = intents.record(migrated_db, "bucket", key, "host", 1)
    attachment = StoredAttachment(index=0, part_number="2", filename="a.bin",
                                  safe_filename="a.bin", content_type="application/octet-stream",
                                  transfer_encoding="base64", decoded_size=3, sha256="0" * 64,
                                  bucket="bucket", object_key=key)
    batch = [
        (message("one"), [], [Target(inbox, b"X-Trace: 1\r\n")], ()),
        (message("two"), [], [Target(other), Target(inbox, flags=("\\Seen", "\\Flagged"))], ()),
        (message("three"), [attachment], [Target(inbox)], (pending,)),
    ]
    assert store_messages(migrated_db, batch) == [
        [(inbox, 1)], [(other, 1), (inbox, 2)], [(inbox, 3)]]

    rows = query(migrated_db, "SELECT uid, modseq, seen, flagged, subject, rfc822_size,"
                              " content_id FROM messages WHERE mailbox_id = %s ORDER BY uid",
                 (inbox,))
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
        (1, 0, 0, "one"), (2, 1, 1, "two"), (3, 0, 0, "three")]
    modseqs = [r[1] for r in rows]
    assert modseqs == sorted(set(modseqs))
    assert rows[0][5] == batch[0][0].size + len(b"X-Trace: 1\r\n")
    (box,) = query(migrated_db, "SELECT uidnext, message_count, unseen_count, total_size,"
                                " highestmodseq FROM mailboxes WHERE id = %s", (inbox,))
    assert box[:4] == (4, 3, 2, sum(r[5] for r in rows)) and box[4] == modseqs[-1]
    (copy,) = query(migrated_db, "SELECT uid, content_id FROM messages WHERE mailbox_id = %s",
                    (other,))
    assert copy == (1, rows[1][6])                 # both recipients share one content
    assert query(migrated_db, "SELECT refcount FROM message_contents WHERE id = %s",
                 (rows[1][6],)) == [(2,)]
    assert query(migrated_db, "SELECT content_id, object_key FROM attachments"
                              " WHERE object_key = %s", (key,)) == [(rows[2][6], key)]
    assert query(migrated_db, "SELECT id FROM pending_objects WHERE id = %s", (pending,)) == []

    # the next batch goes on from there
    assert store_messages(migrated_db, [(message("four"), [], [Target(inbox)], ())]) == [
        [(inbox, 4)]]


def test_a_target_that_is_gone_stores_nothing_of_the_batch(migrated_db, boxes):
    inbox, _ = boxes
    (contents_before,) = query(migrated_db, "SELECT COUNT(*) FROM message_contents")
    batch = [(message("kept?"), [], [Target(inbox)], ()),
             (message("lost"), [], [Target(10 ** 12)], ())]
    with pytest.raises(Exception):
        store_messages(migrated_db, batch)
    assert query(migrated_db, "SELECT COUNT(*) FROM messages WHERE mailbox_id = %s",
                 (inbox,)) == [(0,)]
    assert query(migrated_db, "SELECT COUNT(*) FROM message_contents") == [contents_before]
    assert query(migrated_db, "SELECT uidnext, message_count FROM mailboxes WHERE id = %s",
                 (inbox,)) == [(1, 0)]
    # the connection it failed on was rolled back and serves the next delivery
    assert store_messages(migrated_db, [(message("next"), [], [Target(inbox)], ())]) == [
        [(inbox, 1)]]


def test_a_gone_target_after_deliveries_on_the_same_connection(migrated_db, boxes):
    """The UPDATE that reads a mailbox's first UID into @u0 finds no row for a mailbox
    that is gone, after earlier scripts on the connection set @u0: the messages'
    INSERT still fails, before COMMIT, and nothing of the delivery is stored."""
    inbox, _ = boxes
    uids = [store_messages(migrated_db, [(message(f"m{n}"), [], [Target(inbox)], ())])[0][0][1]
            for n in range(3)]
    assert uids == list(range(uids[0], uids[0] + 3)) and uids[0] >= 1
    (contents_before,) = query(migrated_db, "SELECT COUNT(*) FROM message_contents")
    (messages_before,) = query(migrated_db, "SELECT COUNT(*) FROM messages")
    with pytest.raises(Exception):
        store_messages(migrated_db, [(message("lost"), [], [Target(10 ** 12)], ())])
    assert query(migrated_db, "SELECT COUNT(*) FROM message_contents") == [contents_before]
    assert query(migrated_db, "SELECT COUNT(*) FROM messages") == [messages_before]


def test_one_target_object_shared_by_two_messages_gets_two_uids(migrated_db, boxes):
    inbox, _ = boxes
    target = Target(inbox)
    assert store_messages(migrated_db, [(message("a"), [], [target], ()),
                                        (message("b"), [], [target], ())]) == [
        [(inbox, 1)], [(inbox, 2)]]
