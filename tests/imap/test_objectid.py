"""OBJECTID (RFC 8474): MAILBOXID (CREATE, SELECT, STATUS), EMAILID and THREADID (FETCH, SEARCH)."""

import re

from tests.imap.conftest import message

OBJECTID = r"[A-Za-z0-9_-]{1,255}"


def created_id(session, name):
    lines = session.command(f"CREATE {name}")
    match = re.fullmatch(rf"TAG OK \[MAILBOXID \(({OBJECTID})\)\] CREATE completed", lines[-1])
    assert match and len(lines) == 1, lines
    return match.group(1)


def status_id(session, name):
    lines = session.command(f"STATUS {name} (MAILBOXID)")
    match = re.fullmatch(rf"\* STATUS {name} \(MAILBOXID \(({OBJECTID})\)\)", lines[0])
    assert match and lines[1:] == ["TAG OK STATUS completed"], lines
    return match.group(1)


def fetched(session, item, count):
    """[value] of FETCH 1:count item, in order (None for NIL)."""
    lines = session.command(f"FETCH 1:{count} {item}")
    assert lines[-1] == "TAG OK FETCH completed", lines
    values = []
    for n, line in enumerate(lines[:-1], 1):
        match = re.fullmatch(rf"\* {n} FETCH \({item} (?:\(({OBJECTID})\)|NIL)\)", line)
        assert match, line
        values.append(match.group(1))
    return values


def test_mailboxid_survives_rename(session):
    made = created_id(session, "Projects")
    assert status_id(session, "Projects") == made
    assert session.command("RENAME Projects Archive2") == ["TAG OK RENAME completed"]
    assert status_id(session, "Archive2") == made
    selected = session.ok("SELECT Archive2")
    assert f"* OK [MAILBOXID ({made})] Ok" in selected
    other = created_id(session, "Other")
    assert other != made and status_id(session, "INBOX") not in (made, other)
    # a name deleted and created again is a new mailbox, with a new id (RFC 8474 §4.1)
    session.ok("UNSELECT")
    session.ok("DELETE Archive2")
    assert created_id(session, "Archive2") not in (made, other)
    assert session.command("STATUS Nope (MAILBOXID)") == [
        "TAG NO [NONEXISTENT] Mailbox Nope does not exist"]


def test_renaming_inbox_gives_the_new_mailbox_a_new_id(session):
    inbox = status_id(session, "INBOX")
    session.ok("RENAME INBOX Old")
    assert status_id(session, "INBOX") == inbox
    assert status_id(session, "Old") != inbox


def test_emailid_same_for_copies(session, deliver):
    address = session.account.address
    deliver(address, message("first"))
    deliver(address, message("second"))
    session.ok("SELECT INBOX")
    first, second = fetched(session, "EMAILID", 2)
    assert first != second and None not in (first, second)
    session.ok("COPY 1 Trash")
    session.ok("MOVE 2 Junk")
    tagged = "TAG OK SEARCH completed"
    assert session.command(f"SEARCH EMAILID {first}") == ["* SEARCH 1", tagged]
    assert session.command(f"SEARCH EMAILID {second}") == ["* SEARCH", tagged]
    for mailbox, expected in (("Trash", first), ("Junk", second)):
        session.ok(f"SELECT {mailbox}")
        assert fetched(session, "EMAILID", 1) == [expected]
        assert session.command(f"UID SEARCH EMAILID {expected}") == [
            "* SEARCH 1", "TAG OK UID SEARCH completed"]


def test_threadid_by_thread_root(session, deliver, db):
    address = session.account.address
    deliver(address, message("root"))
    deliver(address, message("reply", extra="In-Reply-To: <root@example.org>\r\n"
                                            "References: <root@example.org>\r\n"))
    deliver(address, message("deeper", extra="References: <root@example.org> <reply@example.org>\r\n"))
    deliver(address, message("alone"))
    session.ok("SELECT INBOX")
    root, reply, deeper, alone = fetched(session, "THREADID", 4)
    assert root == reply == deeper and alone not in (None, root)
    assert session.command(f"SEARCH THREADID {root}") == ["* SEARCH 1 2 3", "TAG OK SEARCH completed"]
    assert session.command(f"SEARCH NOT THREADID {root}") == ["* SEARCH 4", "TAG OK SEARCH completed"]
    assert session.command("FETCH 4 (EMAILID THREADID)")[0].startswith("* 4 FETCH (EMAILID (M")
    session.ok("COPY 2 Trash")
    # messages stored before thread ids were kept get theirs on first request, the same
    forget_thread_ids(db, address)
    assert fetched(session, "THREADID", 4) == [root, root, root, alone]
    forget_thread_ids(db, address)
    assert session.command(f"UID SEARCH THREADID {alone}") == ["* SEARCH 4", "TAG OK UID SEARCH completed"]
    session.ok("SELECT Trash")
    assert fetched(session, "THREADID", 1) == [root]


def forget_thread_ids(db, address):
    """Make the account's INBOX look as stored before schema 8 (no thread_id)."""
    with db.transaction() as cur:
        cur.execute("UPDATE messages SET thread_id = NULL WHERE mailbox_id IN "
                    "(SELECT b.id FROM mailboxes b JOIN accounts a ON a.id = b.account_id "
                    "WHERE a.address = %s AND b.name = 'INBOX')", (address,))
        assert cur.rowcount == 4


def test_bad_ids(session, deliver):
    deliver(session.account.address, message("m"))
    session.ok("SELECT INBOX")
    tagged = "TAG OK SEARCH completed"
    # well formed, not one of ours: nothing matches
    for unknown in ("M0", "Mx1", "X12", "T", "M99999999999999999999", "-_-", "m1"):
        assert session.command(f"SEARCH EMAILID {unknown}") == ["* SEARCH", tagged], unknown
        assert session.command(f"SEARCH THREADID {unknown[1:] or 'a'}") == ["* SEARCH", tagged]
    assert session.command("SEARCH EMAILID M1+2") == ["TAG BAD Syntax error: invalid EMAILID objectid"]
    assert session.command("SEARCH THREADID T" + "a" * 255) == [
        "TAG BAD Syntax error: invalid THREADID objectid"]
    assert session.command("SEARCH EMAILID")[-1].startswith("TAG BAD Syntax error")
    assert session.command("STATUS INBOX (MAILBOXID")[-1].startswith("TAG BAD Syntax error")
    assert session.command("FETCH 1 EMAILID.X") == ["TAG BAD Syntax error: unknown FETCH item EMAILID.X"]


def test_capability(session):
    assert "OBJECTID" in session.command("CAPABILITY")[0].split()
