"""Regressions found by Dovecot's imaptest (its scripted groups and stress profile).

Each test replays the part of an imaptest group that geomail failed, over a
real connection, with the answers Dovecot 2.3 gives to the same commands.
"""

from tests.imap.conftest import message


def append(session, mailbox, data):
    session.send(f"A APPEND {mailbox} {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    assert session.read_response("A")[-1].startswith("A OK")


# -- imaptest "select": EXAMINE shows \Recent and leaves it for SELECT (RFC 3501 §6.3.2) --

def test_examine_reports_recent_without_claiming_it(session, deliver):
    address = session.account.address
    deliver(address, message("one"))
    deliver(address, message("two"))
    lines = session.ok("EXAMINE INBOX")
    assert "* 2 EXISTS" in lines and "* 2 RECENT" in lines and "* OK [UNSEEN 1] First unseen" in lines
    assert session.command("FETCH 1:2 FLAGS") == [
        "* 1 FETCH (FLAGS (\\Recent))", "* 2 FETCH (FLAGS (\\Recent))", "TAG OK FETCH completed"]
    assert session.command("SEARCH RECENT") == ["* SEARCH 1 2", "TAG OK SEARCH completed"]
    session.ok("CLOSE")
    assert session.command("STATUS INBOX (MESSAGES RECENT UNSEEN)") == [
        "* STATUS INBOX (MESSAGES 2 RECENT 2 UNSEEN 2)", "TAG OK STATUS completed"]
    lines = session.ok("SELECT INBOX")
    assert "* 2 RECENT" in lines
    session.ok("CLOSE")
    assert session.command("STATUS INBOX (RECENT)") == [
        "* STATUS INBOX (RECENT 0)", "TAG OK STATUS completed"]
    assert "* 0 RECENT" in session.ok("EXAMINE INBOX")


def test_examined_mailbox_sees_new_mail_as_recent(session, wire, deliver):
    address = session.account.address
    session.ok("EXAMINE INBOX")
    deliver(address, message("new"))
    assert session.command("NOOP") == ["* 1 EXISTS", "* 1 RECENT", "TAG OK NOOP completed"]
    other = wire()
    other.login(session.account)
    assert "* 1 RECENT" in other.ok("SELECT INBOX")     # EXAMINE left it to this SELECT


def esearch(session, command):
    """What follows ``* ESEARCH (TAG "<tag>")`` in the answer to command."""
    tag = f"t{next(session.tags)}"
    session.send(f"{tag} {command}\r\n")
    lines = session.read_response(tag)
    name = "UID SEARCH" if command.startswith("UID ") else "SEARCH"
    assert len(lines) == 2 and lines[1] == f"{tag} OK {name} completed", lines
    prefix = f'* ESEARCH (TAG "{tag}")'
    assert lines[0].startswith(prefix), lines
    return lines[0][len(prefix):]


# -- imaptest "esearch": a sequence number past the last message matches nothing --

def test_search_sequence_numbers_past_the_end_match_nothing(session):
    for n in range(3):
        append(session, "INBOX", message(f"m{n}"))
    session.ok("SELECT INBOX")
    assert session.command("SEARCH 1000") == ["* SEARCH", "TAG OK SEARCH completed"]
    assert session.command("SEARCH 2:1000") == ["* SEARCH 2 3", "TAG OK SEARCH completed"]
    assert session.command("SEARCH 1000:2") == ["* SEARCH 2 3", "TAG OK SEARCH completed"]
    assert session.command("SEARCH 1000,1") == ["* SEARCH 1", "TAG OK SEARCH completed"]
    assert session.command("SEARCH 3:*") == ["* SEARCH 3", "TAG OK SEARCH completed"]
    assert session.command("SEARCH NOT 1000") == ["* SEARCH 1 2 3", "TAG OK SEARCH completed"]
    assert esearch(session, "SEARCH RETURN () 1000") == ""
    assert esearch(session, "SEARCH RETURN (MIN MAX COUNT) 1000") == " COUNT 0"
    assert esearch(session, "UID SEARCH RETURN () 1000") == " UID"
    assert esearch(session, "UID SEARCH RETURN (ALL) 2:1000") == " UID ALL 2:3"
    # FETCH still refuses the number (as Dovecot does)
    assert session.command("FETCH 1000 FLAGS")[-1].startswith("TAG BAD ")


def test_search_sequence_numbers_in_an_empty_mailbox(session):
    session.ok("SELECT INBOX")
    assert session.command("SEARCH 1") == ["* SEARCH", "TAG OK SEARCH completed"]
    assert session.command("SEARCH *") == ["* SEARCH", "TAG OK SEARCH completed"]
    assert session.command("SEARCH NOT 1:*") == ["* SEARCH", "TAG OK SEARCH completed"]


# -- imaptest "search-addresses": FROM/TO/CC match the parsed addresses, as Dovecot --

ADDRESSED = [
    (b"From: user-from@domain.org\r\nTo: user-to@domain.org\r\n"),
    (b"From: RealFrom <user-from@domain.org>\r\nTo: RealTo <user-to@domain.org>\r\n"),
    (b"From: <user-from (comment)@ (comment) domain.org>\r\nTo: <user-to@domain.org>\r\n"),
    (b"From: user-from@domain.org (RealFrom)\r\nTo: user-to@domain.org (RealTo)\r\n"),
    (b"From: user-from1@domain.org, user-from2@domain.org\r\nCc: user-cc@domain.org\r\n"),
    (b"From: RealFrom <user-from@domain.org>\r\nTo: groupname: groupuser1@domain.org, "
     b"groupuser2@domain.org;,\r\n  groupname2: groupuser3@domain.org;\r\n"),
    (b"From: RealFrom <user-from@domain.org>\r\nTo: groupname:;\r\n"),
    (b'From: "Doe, John" <j@x.example>\r\nTo: John Q. Public <jqp@x.example>\r\n'),
    (b"From: =?utf-8?q?J=C3=B6rg_Doe?= <jd@x.example>\r\n"),
]


def test_address_searches_match_the_parsed_addresses(session):
    for n, header in enumerate(ADDRESSED):
        append(session, "INBOX", header + b"Subject: s%d\r\n\r\nbody\r\n" % n)
    session.ok("SELECT INBOX")

    def search(program):
        lines = session.command(program)
        assert lines[-1] == "TAG OK SEARCH completed", lines
        return lines[0]

    # answers checked against Dovecot 2.3.19 (imaptest's search-addresses and more)
    assert search("SEARCH FROM user-from@domain.org") == "* SEARCH 1 2 3 4 6 7"
    assert search("SEARCH FROM ser-fro") == "* SEARCH 1 2 3 4 5 6 7"
    assert search("SEARCH FROM realfrom") == "* SEARCH 2 4 6 7"
    assert search("SEARCH TO realto") == "* SEARCH 2 4"
    assert search("SEARCH TO user-to@domain.org") == "* SEARCH 1 2 3 4"
    assert search("SEARCH FROM user-from2") == "* SEARCH 5"
    assert search("SEARCH CC user-cc@domain.org") == "* SEARCH 5"
    assert search("SEARCH TO groupname") == "* SEARCH 6 7"
    assert search("SEARCH TO groupname2") == "* SEARCH 6"
    assert search("SEARCH TO groupuser3") == "* SEARCH 6"
    assert search('SEARCH TO "groupname:;"') == "* SEARCH 7"
    assert search("SEARCH TO groupuser4") == "* SEARCH"
    # the written-back form: names of more than atoms quoted, "<addr>" after a name
    assert search('SEARCH FROM "\\"Doe, John\\" <j@x.example>"') == "* SEARCH 8"
    assert search('SEARCH TO "\\"John Q. Public\\" <jqp@x.example>"') == "* SEARCH 8"
    assert search('SEARCH TO "John Q. Public <jqp"') == "* SEARCH"
    assert search('SEARCH FROM "realfrom <user-from@domain.org>"') == "* SEARCH 2 4 6 7"
    assert search('SEARCH FROM "(comment)"') == "* SEARCH"
    assert search("SEARCH CHARSET UTF-8 FROM {14+}\r\nJ\u00f6rg Doe <jd@") == "* SEARCH 9"


def test_sort_reads_the_first_address_of_the_written_back_field(session):
    for header in (b'From: "Doe, Zed" <a@x.example>\r\n', b"From: b@x.example (Adam)\r\n",
                   b"From: <c@x.example>\r\n"):
        append(session, "INBOX", header + b"Subject: s\r\n\r\nbody\r\n")
    session.ok("SELECT INBOX")
    assert session.command("SORT (FROM) UTF-8 ALL") == ["* SORT 1 2 3", "TAG OK SORT completed"]
    assert session.command("SORT (DISPLAYFROM) UTF-8 ALL") == [
        "* SORT 2 3 1", "TAG OK SORT completed"]


# -- imaptest stress ("SEARCH result missing", "UIDFETCH failed"): another session expunges --

def _expunged_elsewhere(session, wire, count=3):
    for n in range(count):
        append(session, "INBOX", message(f"x{n}", body=f"word{n}\r\n"))
    session.ok("SELECT INBOX")
    other = wire()
    other.login(session.account)
    other.ok("SELECT INBOX")
    other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    return other


def test_search_says_when_it_could_not_see_an_expunged_message(session, wire):
    """The client still holds message 2, whose row is gone: SEARCH cannot tell whether it
    matches, so it ends OK [EXPUNGEISSUED] (RFC 5530 §3, Dovecot's answer) before and
    after the session has learnt of the expunge; the next NOOP sends the EXPUNGE."""
    _expunged_elsewhere(session, wire)
    assert session.command("SEARCH BODY word") == [
        "* SEARCH 1 3", "TAG OK [EXPUNGEISSUED] SEARCH completed"]
    assert session.command("FETCH 1 FLAGS") == ["* 1 FETCH (FLAGS (\\Recent))", "TAG OK FETCH completed"]
    tag = f"t{next(session.tags)}"
    session.send(f"{tag} SEARCH RETURN (COUNT) ALL\r\n")
    assert session.read_response(tag) == [
        f'* ESEARCH (TAG "{tag}") COUNT 2', f"{tag} OK [EXPUNGEISSUED] SEARCH completed"]
    assert session.command("SORT (SUBJECT) UTF-8 ALL") == [
        "* SORT 1 3", "TAG OK [EXPUNGEISSUED] SORT completed"]
    assert session.command("UID SEARCH ALL") == ["* SEARCH 1 3", "* 2 EXPUNGE", "TAG OK UID SEARCH completed"]
    assert session.command("SEARCH ALL") == ["* SEARCH 1 2", "TAG OK SEARCH completed"]


def test_uid_fetch_leaves_out_an_expunged_message_and_says_ok(session, wire):
    """RFC 2180 §4.1.2: UID FETCH answers the others, then the EXPUNGE; OK [EXPUNGEISSUED]
    as Dovecot (imaptest counts a NO to UID FETCH as an error); FETCH keeps its NO."""
    _expunged_elsewhere(session, wire)
    assert session.command("FETCH 1:3 (UID)") == [
        "* 1 FETCH (UID 1)", "* 3 FETCH (UID 3)",
        "TAG NO [EXPUNGEISSUED] Some of the requested messages no longer exist"]
    assert session.command("UID FETCH 1:3 (FLAGS)") == [
        "* 1 FETCH (UID 1 FLAGS (\\Recent))", "* 3 FETCH (UID 3 FLAGS (\\Recent))", "* 2 EXPUNGE",
        "TAG OK [EXPUNGEISSUED] Some messages were already expunged"]
    assert session.command("UID FETCH 1:3 (FLAGS)") == [
        "* 1 FETCH (UID 1 FLAGS (\\Recent))", "* 2 FETCH (UID 3 FLAGS (\\Recent))",
        "TAG OK UID FETCH completed"]


# -- FETCH ENVELOPE: addresses without angle brackets read as Dovecot reads them --------

ENVELOPE_FROM = [    # a From: value, and Dovecot 2.3.19's ENVELOPE from-list for it
    ("a@b (c)", '(("c" NIL "a" "b"))'),
    ("<a@b> (c)", '((NIL NIL "a" "b"))'),
    ("<a@b (c)>", '((NIL NIL "a" "b"))'),
    ("<a (c)@b>", '((NIL NIL "a" "b"))'),
    ("(c) a@b", '((NIL NIL "a" "b"))'),
    ("a (c) @b", '(("c" NIL "a" "b"))'),
    ("Name <a@b> (c)", '(("Name" NIL "a" "b"))'),
    ("foo bar", '(("foo bar" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))'),
    ("foo", '((NIL NIL "foo" "MISSING_DOMAIN"))'),
    ('"foo bar"', '(("foo bar" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))'),
    ("foo bar <>", '(("foo bar" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))'),
    ('"quoted" x@y', '(("quoted x" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))'),
    ("a@b c", '((NIL NIL "a" "b"))'),
    ("a b@c", '(("a b" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))'),
    ("(c) foo", '((NIL NIL "foo" "MISSING_DOMAIN"))'),
    ("foo (c)", '(("c" NIL "foo" "MISSING_DOMAIN"))'),
    ("foo (c) bar", '(("c" NIL "foo" "MISSING_DOMAIN"))'),
    ("a@b (c) (d)", '(("d" NIL "a" "b"))'),
    ('"a b"@c', '((NIL NIL "a b" "c"))'),
    ("<user-from (comment)@ (comment) domain.org>", '((NIL NIL "user-from" "domain.org"))'),
    ("Name (c) <a@b>", '(("Name" NIL "a" "b"))'),
    ("a@b, foo bar, c@d",
     '((NIL NIL "a" "b")("foo bar" NIL "MISSING_MAILBOX" "MISSING_DOMAIN")(NIL NIL "c" "d"))'),
    ("a@b@c", '((NIL NIL "a" "b"))'),
    ("@nohost", '((NIL NIL "MISSING_MAILBOX" "nohost"))'),
    ("user@", '((NIL NIL "user" "MISSING_DOMAIN"))'),
    ("a.b.@h", '((NIL NIL "a.b." "h"))'),
    ('"a"."b"@c', '(("a" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))'),
    ("x@[1.2.3.4]", '((NIL NIL "x" "[1.2.3.4]"))'),
    ("x@[1.2.3.4] y", '((NIL NIL "x" "[1.2.3.4]"))'),
    ('"q" <x@y>', '(("q" NIL "x" "y"))'),
    ("a@b.c.d (Full Name)", '(("Full Name" NIL "a" "b.c.d"))'),
    ("first.last@ex.com", '((NIL NIL "first.last" "ex.com"))'),
    ("Undisclosed <>", '(("Undisclosed" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))'),
]


def test_envelope_addresses_as_dovecot(session):
    """A comment names an addr-spec only outside angle brackets; words and no "@" are a
    display name ("foo bar"); text after the domain is dropped (message-address.c)."""
    for n, (sender, _) in enumerate(ENVELOPE_FROM):
        append(session, "INBOX", f"From: {sender}\r\nSubject: e{n}\r\n\r\nbody\r\n".encode())
    session.ok("SELECT INBOX")
    lines = session.command(f"FETCH 1:{len(ENVELOPE_FROM)} (ENVELOPE)")
    assert lines[-1] == "TAG OK FETCH completed"
    for n, ((sender, expected), line) in enumerate(zip(ENVELOPE_FROM, lines), 1):
        assert line == (f'* {n} FETCH (ENVELOPE (NIL "e{n - 1}" {expected} {expected} {expected} '
                        'NIL NIL NIL NIL NIL))'), sender
    # SEARCH reads the same addresses (Dovecot: a display name alone is found as itself)
    assert session.command('SEARCH FROM "foo bar"') == ["* SEARCH 8 10 11 22", "TAG OK SEARCH completed"]
    assert session.command('SEARCH FROM "foo bar <"') == ["* SEARCH", "TAG OK SEARCH completed"]
    assert session.command("SEARCH FROM comment") == ["* SEARCH", "TAG OK SEARCH completed"]
