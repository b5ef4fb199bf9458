"""IMAP4rev2 (RFC 9051) beside IMAP4rev1: what ENABLE IMAP4rev2 switches (Appendix E)."""

import re

from tests.imap.conftest import PASSWORD, message
from tests.imap.test_esearch import esearch

FLAGS = "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
PERMANENT = "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted"


def rev2(wire, account):
    w = wire()
    w.ok(f'LOGIN {account.address} "{PASSWORD}"')
    assert w.command("ENABLE IMAP4rev2") == ["* ENABLED IMAP4rev2", "TAG OK ENABLE completed"]
    return w


def codes(lines):
    """UIDVALIDITY and MAILBOXID of a SELECT's responses."""
    text = "\n".join(lines)
    return (re.search(r"UIDVALIDITY (\d+)", text).group(1),
            re.search(r"MAILBOXID \((\w+)\)", text).group(1))


def test_both_revisions_advertised_and_enable(wire, session):
    assert "IMAP4rev1 IMAP4rev2 " in wire().command("CAPABILITY")[0]
    assert session.command("CAPABILITY")[0].startswith("* CAPABILITY IMAP4rev1 IMAP4rev2 ")
    assert session.command("ENABLE IMAP4rev2 FROB") == ["* ENABLED IMAP4rev2", "TAG OK ENABLE completed"]
    assert session.command("ENABLE imap4rev2") == ["* ENABLED", "TAG OK ENABLE completed"]
    assert wire().command("ENABLE IMAP4rev2") == ["TAG BAD ENABLE not allowed in the not authenticated state"]
    assert session.command("ENABLE") == ["TAG BAD Syntax error: expected space at end of line"]


def test_select_without_recent_or_unseen_with_list(wire, account, deliver):
    deliver(account.address, message("one"))
    deliver(account.address, message("two"))
    w = rev2(wire, account)
    lines = w.command("SELECT INBOX")
    validity, mailboxid = codes(lines)
    assert lines == [FLAGS, PERMANENT, "* 2 EXISTS", f"* OK [UIDVALIDITY {validity}] UIDs valid",
                     "* OK [UIDNEXT 3] Predicted next UID", f"* OK [MAILBOXID ({mailboxid})] Ok",
                     "* OK [HIGHESTMODSEQ 3] Highest",
                     '* LIST (\\HasNoChildren) "/" INBOX', "TAG OK [READ-WRITE] Select completed"]
    assert w.command("FETCH 1:2 FLAGS") == ["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())",
                                            "TAG OK FETCH completed"]
    assert esearch(w, "SEARCH RECENT") == ['* ESEARCH (TAG "TAG")', "TAG OK SEARCH completed"]
    # new mail: EXISTS without RECENT
    deliver(account.address, message("three"))
    assert w.command("NOOP") == ["* 3 EXISTS", "TAG OK NOOP completed"]
    # the IMAP4rev2 session claimed no \Recent: an IMAP4rev1 session still gets them
    old = wire()
    old.ok(f'LOGIN {account.address} "{PASSWORD}"')
    selected = old.ok("SELECT INBOX")
    assert "* 3 RECENT" in selected and "* OK [UNSEEN 1] First unseen" in selected
    assert not any(line.startswith("* LIST") for line in selected)
    # another SELECT (or EXAMINE) closes the mailbox first: [CLOSED] (RFC 9051 §6.3.2)
    lines = w.command("EXAMINE Sent")
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed"
    assert lines[-2:] == ['* LIST (\\HasNoChildren \\Sent) "/" Sent', "TAG OK [READ-ONLY] Examine completed"]
    assert old.ok("SELECT Sent")[:2] == ["* OK [CLOSED] Previous mailbox closed", FLAGS]   # RFC 7162 too


def test_enable_while_selected_drops_recent(session, deliver):
    deliver(session.account.address, message("one"))
    assert "* 1 RECENT" in session.ok("SELECT INBOX")
    assert session.command("FETCH 1 FLAGS") == ["* 1 FETCH (FLAGS (\\Recent))", "TAG OK FETCH completed"]
    session.ok("ENABLE IMAP4rev2")
    assert session.command("FETCH 1 FLAGS") == ["* 1 FETCH (FLAGS ())", "TAG OK FETCH completed"]


def test_search_answers_esearch(wire, account, deliver):
    for n in range(3):
        deliver(account.address, message(f"m{n}"))
    w = rev2(wire, account)
    w.ok("SELECT INBOX")
    assert esearch(w, "SEARCH ALL") == ['* ESEARCH (TAG "TAG") ALL 1:3', "TAG OK SEARCH completed"]
    assert esearch(w, "UID SEARCH 2:3") == ['* ESEARCH (TAG "TAG") UID ALL 2:3',
                                            "TAG OK UID SEARCH completed"]
    assert esearch(w, "SEARCH SUBJECT nothing") == ['* ESEARCH (TAG "TAG")', "TAG OK SEARCH completed"]
    assert esearch(w, "UID SEARCH SUBJECT nothing") == ['* ESEARCH (TAG "TAG") UID',
                                                        "TAG OK UID SEARCH completed"]
    assert esearch(w, "SEARCH RETURN (COUNT) ALL") == ['* ESEARCH (TAG "TAG") COUNT 3',
                                                       "TAG OK SEARCH completed"]
    assert esearch(w, "SEARCH RETURN (SAVE) 2") == ["TAG OK SEARCH completed"]
    assert esearch(w, "SEARCH $") == ['* ESEARCH (TAG "TAG") ALL 2', "TAG OK SEARCH completed"]
    assert w.command("SEARCH FROB") == ["TAG BAD Syntax error: unknown search key FROB"]


def test_status_deleted_and_size(wire, account, deliver):
    deliver(account.address, message("one"))
    deliver(account.address, message("two"))
    w = rev2(wire, account)
    assert w.command("STATUS INBOX (DELETED)") == ["* STATUS INBOX (DELETED 0)", "TAG OK STATUS completed"]
    w.ok("SELECT INBOX")
    w.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    w.ok("STORE 1 -FLAGS.SILENT (\\Deleted)")
    size = re.search(r"SIZE (\d+)", w.command("STATUS INBOX (SIZE)")[0]).group(1)
    assert w.command("STATUS INBOX (MESSAGES DELETED SIZE)") == [
        f"* STATUS INBOX (MESSAGES 2 DELETED 1 SIZE {size})", "TAG OK STATUS completed"]
    assert int(size) > 0


def test_mailbox_names_are_utf8(wire, account):
    w = rev2(wire, account)
    old = wire()
    old.ok(f'LOGIN {account.address} "{PASSWORD}"')
    assert w.command('CREATE "Caf\u00e9"')[-1].endswith("CREATE completed")
    assert w.command("CREATE A&B")[-1].endswith("CREATE completed")
    assert w.command('LIST "" "Caf*"') == ['* LIST (\\HasNoChildren) "/" "Caf\u00e9"',
                                           "TAG OK LIST completed"]
    assert w.command('LIST "" "A&B"') == ['* LIST (\\HasNoChildren) "/" A&B', "TAG OK LIST completed"]
    assert w.command('STATUS "Caf\u00e9" (MESSAGES)') == [
        '* STATUS "Caf\u00e9" (MESSAGES 0)', "TAG OK STATUS completed"]
    # the same mailboxes as IMAP4rev1 sees them: modified UTF-7 (RFC 3501 §5.1.3)
    assert old.command('LIST "" "Caf*"') == ['* LIST (\\HasNoChildren) "/" Caf&AOk-', "TAG OK LIST completed"]
    assert old.command('LIST "" "A&-B"') == ['* LIST (\\HasNoChildren) "/" A&-B', "TAG OK LIST completed"]
    lines = w.command('SELECT "Caf\u00e9"')
    assert lines[-2:] == ['* LIST (\\HasNoChildren) "/" "Caf\u00e9"', "TAG OK [READ-WRITE] Select completed"]
    w.send(b'x1 CREATE "bad\xff"\r\n')
    assert w.read_response("x1") == ["x1 NO [CANNOT] Mailbox name is not UTF-8"]


def test_list_says_nonexistent(wire, account):
    w = rev2(wire, account)
    old = wire()
    old.ok(f'LOGIN {account.address} "{PASSWORD}"')
    w.ok("CREATE Top/Child")
    w.ok("DELETE Top")
    assert w.command('LIST "" "Top*"') == ['* LIST (\\NonExistent \\HasChildren) "/" Top',
                                          '* LIST (\\HasNoChildren) "/" Top/Child', "TAG OK LIST completed"]
    assert old.command('LIST "" "Top"') == ['* LIST (\\Noselect \\HasChildren) "/" Top',
                                           "TAG OK LIST completed"]
    lines = w.command("SELECT Top/Child")
    assert lines[-2] == '* LIST (\\HasNoChildren) "/" Top/Child'
    w.ok("CREATE Top")
    assert w.command("SELECT Top")[-2:] == ['* LIST (\\HasChildren) "/" Top',
                                            "TAG OK [READ-WRITE] Select completed"]
