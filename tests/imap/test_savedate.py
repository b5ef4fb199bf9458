"""SAVEDATE (RFC 8514): when a message was placed in its mailbox, FETCH SAVEDATE and SEARCH SAVED*."""

import datetime
import re

from tests.imap.conftest import message

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
OLD = '"01-Jan-2001 10:00:00 +0000"'


def imap_date(day):
    return f"{day.day}-{MONTHS[day.month - 1]}-{day.year}"


def save_dates(lines):
    """{seq: datetime or None} of FETCH (SAVEDATE ...) lines."""
    found = {}
    for line in lines[:-1]:
        match = re.fullmatch(r'\* (\d+) FETCH \(SAVEDATE (NIL|"([^"]+)")\)', line)
        assert match, line
        value = match.group(3)
        found[int(match.group(1))] = (datetime.datetime.strptime(value, "%d-%b-%Y %H:%M:%S %z")
                                      if value else None)
    return found


def append(session, subject, date=OLD):
    data = message(subject)
    session.ok(f"APPEND INBOX {date} {{{len(data)}+}}\r\n" + data.decode())


def set_save_date(db, address, subject, value):
    """Give a stored message another save date (a message of before schema 8: NULL)."""
    with db.transaction() as cur:
        cur.execute("UPDATE messages SET save_date = %s WHERE subject = %s AND mailbox_id IN "
                    "(SELECT b.id FROM mailboxes b JOIN accounts a ON a.id = b.account_id "
                    "WHERE a.address = %s)", (value, subject, address))


def test_savedate_is_when_the_message_was_placed_here(session, deliver):
    append(session, "appended")
    deliver(session.account.address, message("delivered"))
    session.ok("SELECT INBOX")
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = session.command("FETCH 1:2 SAVEDATE")
    assert lines[-1] == "TAG OK FETCH completed"
    dates = save_dates(lines)
    assert all(abs((dates[n] - now).total_seconds()) < 120 for n in (1, 2)), dates
    # APPEND's date is the INTERNALDATE; the save date is the time of the APPEND
    assert session.command("FETCH 1 INTERNALDATE") == [
        '* 1 FETCH (INTERNALDATE "01-Jan-2001 10:00:00 +0000")', "TAG OK FETCH completed"]


def test_copy_and_move_get_a_new_save_date(session, db):
    append(session, "one")
    append(session, "two")
    set_save_date(db, session.account.address, "one", datetime.datetime(2002, 3, 4, 5, 6, 7))
    session.ok("SELECT INBOX")
    assert session.command("FETCH 1 SAVEDATE") == [
        '* 1 FETCH (SAVEDATE "04-Mar-2002 05:06:07 +0000")', "TAG OK FETCH completed"]
    session.ok("COPY 1 Trash")
    session.ok("MOVE 2 Junk")
    now = datetime.datetime.now(datetime.timezone.utc)
    for mailbox in ("Trash", "Junk"):
        session.ok(f"SELECT {mailbox}")
        copied = save_dates(session.command("FETCH 1 SAVEDATE"))[1]
        assert abs((copied - now).total_seconds()) < 120, (mailbox, copied)
        # INTERNALDATE goes with the message (RFC 3501 §6.4.7)
        assert session.command("FETCH 1 INTERNALDATE") == [
            '* 1 FETCH (INTERNALDATE "01-Jan-2001 10:00:00 +0000")', "TAG OK FETCH completed"]
    session.ok("SELECT INBOX")
    assert session.command("FETCH 1 SAVEDATE") == [
        '* 1 FETCH (SAVEDATE "04-Mar-2002 05:06:07 +0000")', "TAG OK FETCH completed"]


def test_search_saved_keys(session, db):
    for subject in ("old", "unknown", "new"):
        append(session, subject)
    address = session.account.address
    set_save_date(db, address, "old", datetime.datetime(2002, 3, 4, 23, 59, 59))
    set_save_date(db, address, "unknown", None)      # stored before save dates were kept
    session.ok("SELECT INBOX")
    today = imap_date(datetime.datetime.now(datetime.timezone.utc).date())
    tagged = "TAG OK SEARCH completed"
    assert session.command("SEARCH SAVEDON 4-Mar-2002") == ["* SEARCH 1", tagged]
    assert session.command("SEARCH SAVEDON 5-Mar-2002") == ["* SEARCH", tagged]
    # no save date: FETCH says NIL, SEARCH goes by the internal date (1-Jan-2001)
    assert session.command("FETCH 2 SAVEDATE") == ["* 2 FETCH (SAVEDATE NIL)", "TAG OK FETCH completed"]
    assert session.command("SEARCH SAVEDON 1-Jan-2001") == ["* SEARCH 2", tagged]
    assert session.command("SEARCH SAVEDBEFORE 5-Mar-2002") == ["* SEARCH 1 2", tagged]
    assert session.command("SEARCH SAVEDBEFORE 4-Mar-2002") == ["* SEARCH 2", tagged]
    assert session.command(f"SEARCH SAVEDSINCE {today}") == ["* SEARCH 3", tagged]
    assert session.command(f"SEARCH SAVEDON {today}") == ["* SEARCH 3", tagged]
    assert session.command("SEARCH SAVEDSINCE 4-Mar-2002") == ["* SEARCH 1 3", tagged]
    assert session.command("SEARCH NOT SAVEDSINCE 4-Mar-2002") == ["* SEARCH 2", tagged]
    assert session.command("SEARCH SAVEDATESUPPORTED") == ["* SEARCH 1 2 3", tagged]
    assert session.command("UID SEARCH SAVEDATESUPPORTED SAVEDON 4-Mar-2002") == [
        "* SEARCH 1", "TAG OK UID SEARCH completed"]


def test_bad_input(session):
    append(session, "x")
    session.ok("SELECT INBOX")
    assert session.command("SEARCH SAVEDON") == ["TAG BAD Syntax error: expected space at end of line"]
    assert session.command("SEARCH SAVEDON 32-Jan-2002")[-1].startswith("TAG BAD Syntax error")
    assert session.command("SEARCH SAVEDBEFORE yesterday")[-1].startswith("TAG BAD Syntax error")
    assert session.command("FETCH 1 SAVEDATE.PEEK") == [
        "TAG BAD Syntax error: unknown FETCH item SAVEDATE.PEEK"]
    assert session.command("FETCH 1 (SAVEDATE UID)") == [
        save_date_line(session), "TAG OK FETCH completed"]


def save_date_line(session):
    line = session.command("FETCH 1 SAVEDATE")[0]
    return line[:-1] + " UID 1)"


def test_capability(session):
    assert "SAVEDATE" in session.command("CAPABILITY")[0].split()
