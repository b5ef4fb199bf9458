"""STATUS=SIZE (RFC 8438) and STATUS DELETED (RFC 9051 §6.3.11)."""

from tests.imap.conftest import message


def test_size_and_deleted(session, deliver):
    assert session.command("STATUS INBOX (SIZE DELETED)") == [
        "* STATUS INBOX (SIZE 0 DELETED 0)", "TAG OK STATUS completed"]
    deliver(session.account.address, message("one"))
    deliver(session.account.address, message("two", body="A longer body.\r\n" * 10))
    session.ok("SELECT INBOX")
    sizes = [line for line in session.ok("FETCH 1:* RFC822.SIZE")]
    total = sum(int(line.split("RFC822.SIZE ")[1].rstrip(")")) for line in sizes)
    session.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    assert session.command("STATUS INBOX (SIZE DELETED MESSAGES)") == [
        f"* STATUS INBOX (SIZE {total} DELETED 1 MESSAGES 2)", "TAG OK STATUS completed"]
    session.ok("EXPUNGE")
    first = int(sizes[0].split("RFC822.SIZE ")[1].rstrip(")"))
    assert session.command("STATUS INBOX (SIZE DELETED)") == [
        f"* STATUS INBOX (SIZE {first} DELETED 0)", "TAG OK STATUS completed"]


def test_size_follows_copy(session, deliver):
    deliver(session.account.address, message("one"))
    session.ok("SELECT INBOX")
    session.ok("COPY 1 Trash")
    inbox = session.command("STATUS INBOX (SIZE)")[0].split("SIZE ")[1]
    assert session.command("STATUS Trash (SIZE)") == [
        f"* STATUS Trash (SIZE {inbox}", "TAG OK STATUS completed"]
    assert inbox != "0)"
