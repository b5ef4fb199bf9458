"""geomail-admin against a real database and a real S3 server."""

import pytest

from tests.fixtures.faults import db_query
from tests.fixtures.server import run_admin


@pytest.fixture
def admin(fresh_db_url, s3_endpoint, s3_bucket):
    url = fresh_db_url()

    def run(*args, stdin=None):
        return run_admin(list(args), url, s3_endpoint, s3_bucket, stdin=stdin)

    run.url = url
    assert run("migrate").returncode == 0
    return run


def query(url, sql, *params):
    return db_query(url, sql, params)


def test_migrate_twice_is_a_no_op(fresh_db_url, s3_endpoint, s3_bucket):
    url = fresh_db_url()
    first = run_admin(["migrate"], url, s3_endpoint, s3_bucket)
    assert first.returncode == 0, first.stderr
    assert "migrated from version 0" in first.stdout
    second = run_admin(["migrate"], url, s3_endpoint, s3_bucket)
    assert second.returncode == 0
    assert "up to date" in second.stdout


def test_newer_schema_is_refused(admin):
    query(admin.url, "INSERT INTO schema_version (version, name) VALUES (9999, 'future')")
    result = admin("migrate")
    assert result.returncode == 1
    assert "newer than this geomail knows" in result.stderr


def test_account_add_list_passwd_delete(admin):
    result = admin("account", "add", "Alice@Example.com", "--password-stdin", stdin="s3cret\n")
    assert result.returncode == 0, result.stderr
    assert "created alice@example.com" in result.stdout
    (stored,) = query(admin.url, "SELECT password_hash FROM accounts WHERE address = %s",
                      "alice@example.com")[0]
    assert stored and "s3cret" not in stored and stored.startswith("$scrypt$")

    listing = admin("account", "list")
    assert "alice@example.com" in listing.stdout and "yes" in listing.stdout

    boxes = admin("mailbox", "list", "alice@example.com").stdout
    for name, use in [("INBOX", ""), ("Sent", "\\Sent"), ("Drafts", "\\Drafts"),
                      ("Trash", "\\Trash"), ("Junk", "\\Junk")]:
        assert any(line.split()[:2] == [name, use] or (not use and line.split()[0] == name)
                   for line in boxes.splitlines()), boxes

    assert admin("account", "passwd", "alice@example.com", "--password-stdin",
                 stdin="other\n").returncode == 0
    (changed,) = query(admin.url, "SELECT password_hash FROM accounts WHERE address = %s",
                       "alice@example.com")[0]
    assert changed != stored

    duplicate = admin("account", "add", "alice@example.com", "--password-stdin", stdin="x\n")
    assert duplicate.returncode == 1 and "alice@example.com" in duplicate.stderr

    deleted = admin("account", "delete", "alice@example.com")
    assert deleted.returncode == 0, deleted.stderr
    assert query(admin.url, "SELECT COUNT(*) FROM accounts")[0][0] == 0
    assert query(admin.url, "SELECT COUNT(*) FROM mailboxes")[0][0] == 0


def test_delete_removes_the_accounts_s3_objects(admin, blob_store):
    from geomail.store.database import Database
    assert admin("account", "add", "bob@example.com", "--password-stdin", stdin="pw\n").returncode == 0
    (account_id,) = query(admin.url, "SELECT id FROM accounts")[0]
    (inbox,) = query(admin.url, "SELECT id FROM mailboxes WHERE name = 'INBOX'")[0]
    key = f"{account_id}/1/report.pdf"
    blob_store.put(key, b"%PDF-1.4 test")
    db = Database(admin.url, 1)
    try:
        with db.transaction() as cur:
            cur.execute("INSERT INTO message_contents (raw, segments, size, header_size, envelope,"
                        " bodystructure, body, refcount) VALUES ('x', '[]', 1, 1, '', '', '', 1)")
            content_id = cur.lastrowid
            cur.execute("INSERT INTO messages (mailbox_id, uid, modseq, content_id, internal_date,"
                        " rfc822_size, trace_headers) VALUES (%s, 1, 1, %s, NOW(), 1, '')",
                        (inbox, content_id))
            cur.execute("INSERT INTO attachments (content_id, idx, part_number, safe_filename,"
                        " content_type, transfer_encoding, decoded_size, sha256, encoding, bucket,"
                        " object_key) VALUES (%s, 0, '2', 'report.pdf', 'application/pdf', 'base64',"
                        " 13, %s, '{}', %s, %s)",
                        (content_id, "0" * 64, blob_store.bucket, key))
    finally:
        db.close()
    result = admin("account", "delete", "bob@example.com")
    assert result.returncode == 0, result.stderr
    assert "1 stored attachments removed" in result.stdout
    assert key not in blob_store.list_keys(f"{account_id}/")


def test_unknown_account_is_a_clear_error(admin):
    result = admin("mailbox", "list", "nobody@example.com")
    assert result.returncode == 1
    assert "no account nobody@example.com" in result.stderr


def test_unreachable_database_is_one_line(s3_endpoint, s3_bucket):
    result = run_admin(["account", "list"], "mysql://root@127.0.0.1:9/nothing", s3_endpoint,
                       s3_bucket)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_server_start_migrates_the_schema(start_geomail, mysql_url):
    start_geomail(workers=1)
    assert query(mysql_url, "SELECT MAX(version) FROM schema_version")[0][0] >= 1
