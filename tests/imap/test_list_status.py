"""LIST-STATUS (RFC 5819): LIST ... RETURN (STATUS (...)) answers a STATUS after each LIST line."""

from tests.imap.conftest import message

OK = "TAG OK LIST completed"


def test_status_follows_each_list_line(session, deliver):
    deliver(session.account.address, message("one"))
    deliver(session.account.address, message("two"))
    session.ok("CREATE Work/Sub")
    session.ok("DELETE Work")          # Work stays as a \Noselect placeholder
    assert session.command('LIST "" (INBOX Work Work/%) RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))') == [
        '* LIST (\\HasNoChildren) "/" INBOX',
        "* STATUS INBOX (MESSAGES 2 UNSEEN 2 UIDNEXT 3)",
        '* LIST (\\Noselect \\HasChildren) "/" Work',
        '* LIST (\\HasNoChildren) "/" Work/Sub',
        "* STATUS Work/Sub (MESSAGES 0 UNSEEN 0 UIDNEXT 1)", OK]


def test_no_status_for_nonexistent(session):
    session.ok("SUBSCRIBE Gone")
    assert session.command('LIST (SUBSCRIBED) "" Gone RETURN (STATUS (MESSAGES))') == [
        '* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" Gone', OK]


def test_status_with_other_return_options(session):
    assert session.command('LIST "" Sent RETURN (SPECIAL-USE STATUS (UIDVALIDITY SIZE) SUBSCRIBED)')[1:] == [
        session.command("STATUS Sent (UIDVALIDITY SIZE)")[0], OK]


def test_bad_status_items(session):
    assert session.command('LIST "" % RETURN (STATUS (BOGUS))') == [
        "TAG BAD Syntax error: unknown STATUS item BOGUS"]
    assert session.command('LIST "" % RETURN (STATUS)') == [
        "TAG BAD Syntax error: expected space at ')'"]
    assert session.command('LIST "" % RETURN (STATUS ())') == [
        "TAG BAD Syntax error: expected status item at '))'"]
