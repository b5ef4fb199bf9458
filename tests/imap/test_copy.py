"""COPY, MOVE, UID variants with COPYUID; content shared, S3 objects never copied, deleted with the last reference."""

import pytest

from geomail.blobs.errors import BlobNotFound
from tests.imap.conftest import attachment_keys, message, multipart


def test_copy_and_uid_copy(session, deliver):
    for n in range(3):
        deliver(session.account.address, message(f"m{n}"))
    session.ok("SELECT INBOX")
    session.ok("STORE 2 +FLAGS.SILENT (\\Flagged $X)")
    lines = session.command("COPY 2:3 Trash")
    assert lines[-1].endswith(" 2:3 1:2] COPY completed") and lines[-1].startswith("TAG OK [COPYUID ")
    assert session.command("UID COPY 1 Trash")[-1].endswith(" 1 3] COPY completed")
    assert session.command("COPY 1 Nope") == ["TAG NO [TRYCREATE] Mailbox Nope does not exist"]
    session.ok("SELECT Trash")
    assert session.command("FETCH 1:* (UID FLAGS)") == [
        "* 1 FETCH (UID 1 FLAGS (\\Flagged $X \\Recent))", "* 2 FETCH (UID 2 FLAGS (\\Recent))",
        "* 3 FETCH (UID 3 FLAGS (\\Recent))", "TAG OK FETCH completed"]
    assert session.command("SEARCH SUBJECT m1") == ["* SEARCH 1", "TAG OK SEARCH completed"]


def test_move(session, deliver):
    for n in range(3):
        deliver(session.account.address, message(f"m{n}"))
    session.ok("SELECT INBOX")
    lines = session.command("MOVE 1:2 Junk")
    assert lines[0].startswith("* OK [COPYUID ") and lines[0].endswith(" 1:2 1:2] Moved UIDs")
    assert lines[1:] == ["* 2 EXPUNGE", "* 1 EXPUNGE", "TAG OK MOVE completed"]
    assert session.command("UID MOVE 3 Junk")[1:] == ["* 1 EXPUNGE", "TAG OK UID MOVE completed"]
    assert session.command("STATUS Junk (MESSAGES UIDNEXT UNSEEN)") == [
        "* STATUS Junk (MESSAGES 3 UIDNEXT 4 UNSEEN 3)", "TAG OK STATUS completed"]


def test_attachment_shared_then_deleted_with_last_copy(session, deliver, db, blob_store):
    data, payload = multipart()
    deliver(session.account.address, data)
    keys = attachment_keys(db, session.account.address)
    assert len(keys) == 1 and blob_store.get(keys[0]) == payload
    session.ok("SELECT INBOX")
    session.ok("COPY 1 Trash")
    assert attachment_keys(db, session.account.address) == keys      # no new object
    session.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert session.command("EXPUNGE") == ["* 1 EXPUNGE", "TAG OK EXPUNGE completed"]
    assert blob_store.get(keys[0]) == payload                         # Trash still refers to it
    session.ok("SELECT Trash")
    session.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    session.ok("EXPUNGE")
    with pytest.raises(BlobNotFound):
        blob_store.get(keys[0])
    with db.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM attachments WHERE object_key = %s", (keys[0],))
        assert cur.fetchone()[0] == 0
