"""SORT and UID SORT (RFC 5256), SORT=DISPLAY (RFC 5957), ESORT (RFC 5267 §3)."""

import time

import pytest

from tests.imap.test_esearch import esearch


def append(session, headers, body="body\r\n", date=None):
    data = "".join(f"{h}\r\n" for h in headers) + "\r\n" + body
    when = f' "{date}"' if date else ""
    session.ok(f"APPEND INBOX{when} {{{len(data.encode())}+}}\r\n{data}")


@pytest.fixture
def mailbox(session):
    # 1..5: arrival order; sizes grow with the body
    append(session, ["From: Zed <alpha@example.org>", "To: mike@example.org", "Cc: b@x.org",
                     "Subject: Re: banana", "Date: Tue, 2 Jan 2001 10:00:00 +0000"],
           "x" * 50, "01-Feb-2001 00:00:00 +0000")
    append(session, ["From: \"Adams, Al\" <zulu@example.org>", "To: Bob <alpha@example.org>",
                     "Subject: [list] apple", "Date: Mon, 1 Jan 2001 10:00:00 +0000"],
           "x" * 10, "02-Feb-2001 00:00:00 +0000")
    append(session, ["From: mike@example.org", "To: zed@example.org", "Cc: a@x.org",
                     "Subject: =?utf-8?q?Fwd=3A_Cherry?=", "Date: Wed, 3 Jan 2001 10:00:00 +0000"],
           "x" * 500, "03-Feb-2001 00:00:00 +0000")
    # no Date: sorts by its internal date (31 Dec 2000)
    append(session, ["From: Beth <beth@example.org>", "Subject: APPLE (fwd)"],
           "x" * 200, "31-Dec-2000 00:00:00 +0000")
    append(session, ["From: <carl@example.org>", "To: \"\" <yank@example.org>",
                     "Subject: banana", "Date: Thu, 4 Jan 2001 10:00:00 +0000"],
           "x" * 5, "05-Feb-2001 00:00:00 +0000")
    session.ok("SELECT INBOX")
    return session


CASES = [
    # ARRIVAL is the internal date: 4's is 31 Dec 2000
    ("(ARRIVAL)", "4 1 2 3 5"), ("(REVERSE ARRIVAL)", "5 3 2 1 4"),
    ("(DATE)", "4 2 1 3 5"), ("(REVERSE DATE)", "5 3 1 2 4"),
    ("(SIZE)", "5 2 1 4 3"), ("(REVERSE SIZE)", "3 4 1 2 5"),
    # base subjects: banana, apple, cherry, apple, banana; ties in sequence order
    ("(SUBJECT)", "2 4 1 5 3"), ("(REVERSE SUBJECT)", "3 1 5 2 4"),
    ("(SUBJECT REVERSE DATE)", "2 4 5 1 3"),
    # first From mailbox: alpha, zulu, mike, beth, carl
    ("(FROM)", "1 4 5 3 2"), ("(TO)", "4 2 1 5 3"), ("(CC)", "2 4 5 3 1"),
    # display names: Zed, "Adams, Al", mike@example.org, Beth, carl@example.org
    ("(DISPLAYFROM)", "2 4 5 3 1"), ("(DISPLAYTO)", "4 2 1 5 3"),
    ("(REVERSE DISPLAYFROM SIZE)", "1 3 5 4 2"),
]


def test_sort_criteria(mailbox):
    answers = {c: mailbox.command(f"SORT {c} UTF-8 ALL") for c, _ in CASES}
    assert answers == {c: [f"* SORT {r}", "TAG OK SORT completed"] for c, r in CASES}


def test_sort_with_search_and_uid(mailbox):
    assert mailbox.command("SORT (SUBJECT) US-ASCII NOT FROM mike") == [
        "* SORT 2 4 1 5", "TAG OK SORT completed"]
    mailbox.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    mailbox.ok("EXPUNGE")
    assert mailbox.command("UID SORT (DATE) UTF-8 ALL") == ["* SORT 4 1 3 5", "TAG OK UID SORT completed"]
    assert mailbox.command("SORT (DATE) UTF-8 ALL") == ["* SORT 3 1 2 4", "TAG OK SORT completed"]
    assert mailbox.command("SORT (DATE) UTF-8 DRAFT") == ["* SORT", "TAG OK SORT completed"]


def test_esort(mailbox):
    tagged = "TAG OK SORT completed"
    # MIN and MAX are the first and last in sort order; ALL in sort order (RFC 5267 §3)
    assert esearch(mailbox, "SORT RETURN (MIN MAX ALL COUNT) (DATE) UTF-8 ALL") == [
        '* ESEARCH (TAG "TAG") MIN 4 MAX 5 ALL 4,2,1,3,5 COUNT 5', tagged]
    assert esearch(mailbox, "SORT RETURN () (REVERSE ARRIVAL) UTF-8 ALL") == [
        '* ESEARCH (TAG "TAG") ALL 5,3,2,1,4', tagged]
    assert esearch(mailbox, "SORT RETURN (ALL) (ARRIVAL) UTF-8 2:4") == [
        '* ESEARCH (TAG "TAG") ALL 4,2:3', tagged]
    assert esearch(mailbox, "UID SORT RETURN (COUNT) (ARRIVAL) UTF-8 DRAFT") == [
        '* ESEARCH (TAG "TAG") UID COUNT 0', "TAG OK UID SORT completed"]
    assert esearch(mailbox, "SORT RETURN (SAVE) (SIZE) UTF-8 LARGER 400") == [tagged]
    assert mailbox.command("FETCH $ (UID)") == ["* 3 FETCH (UID 3)", "TAG OK FETCH completed"]


def test_sort_errors(mailbox):
    assert mailbox.command("SORT (FOO) UTF-8 ALL") == [
        "TAG BAD Syntax error: unknown sort criterion FOO"]
    assert mailbox.command("SORT () UTF-8 ALL") == [
        "TAG BAD Syntax error: expected sort criterion at ') UTF-8 ALL'"]
    # the charset is required (RFC 5256 §3): "ALL" is taken for one, the program is missing
    assert mailbox.command("SORT (DATE) ALL") == [
        "TAG BAD Syntax error: expected space at end of line"]
    assert mailbox.command("SORT (DATE) UTF-8") == [
        "TAG BAD Syntax error: expected space at end of line"]
    assert mailbox.command("SORT (DATE) X-NOPE ALL") == [
        "TAG NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset X-NOPE"]
    assert mailbox.command("SORT (REVERSE) UTF-8 ALL") == [
        "TAG BAD Syntax error: expected space at ') UTF-8 ALL'"]
    assert mailbox.command("SORT (" + "DATE " * 30 + "SIZE) UTF-8 ALL") == [
        "TAG BAD Syntax error: too many sort criteria"]
    assert mailbox.command("NOOP") == ["TAG OK NOOP completed"]


def test_sort_large_mailbox_is_fast(session):
    """10,240 messages (COPY doubling 10 different ones) sort in well under a second."""
    for n in range(10):
        append(session, [f"From: Person {9 - n} <p{n}@example.org>", f"To: t{n % 3}@example.org",
                         f"Subject: Re: [list] topic {n % 4} (fwd)",
                         f"Date: Mon, {n + 1} Jan 2001 10:00:00 +0000"], "x" * n)
    session.ok("SELECT INBOX")
    for _ in range(10):
        session.ok("COPY 1:* INBOX")
    session.ok("NOOP")
    started = time.monotonic()
    lines = session.command("SORT (SUBJECT REVERSE DATE DISPLAYFROM TO SIZE) UTF-8 ALL")
    elapsed = time.monotonic() - started
    numbers = lines[0].split()[2:]
    assert lines[-1] == "TAG OK SORT completed" and len(numbers) == 10240
    # topic 0: messages 1, 5, 9 (and their copies, every 10th), latest date first
    assert numbers[:3] == ["9", "19", "29"]
    assert elapsed < 1.0, elapsed
    print(f"SORT of 10,240 messages: {elapsed:.3f} s")


# Checked against Dovecot 2.3.19: the same SORT answers for these fields.
TRICKY_FROM = ["Zoë <b@x.org>", "undisclosed-recipients:;", "(comment) c@x.org", "C@X.org",
               "\"\" <d@x.org>", "group: e@x.org, f@x.org;", "Ä Name <g@x.org>", "<>",
               "h@x.org (Hank)", "a b <i@x.org>", "\"Q, R\" <j@x.org>, k@x.org", "", "@nohost",
               "Émile <E@x.org>", "x", "Mr. Smith <smith@x.org>", "<@route:n@x.org>", "o@[1.2.3.4]"]


def test_sort_addresses_as_dovecot(session):
    for n, sender in enumerate(TRICKY_FROM, 1):
        append(session, [f"From: {sender}", f"Subject: s{n}"] if sender else [f"Subject: s{n}"])
    session.ok("SELECT INBOX")
    # a group sorts by its name, a missing mailbox as MISSING_MAILBOX, accents decomposed
    assert session.command("SORT (FROM) UTF-8 ALL")[0] == (
        "* SORT 12 1 3 4 5 14 7 6 9 10 11 8 13 17 18 16 2 15")
    assert session.command("SORT (DISPLAYFROM) UTF-8 ALL")[0] == (
        "* SORT 12 10 7 3 4 5 14 6 9 8 13 16 17 18 11 2 15 1")


SUBJECTS = ["z", "[a] re: [b] fwd[c]: z", "a", "[fwd: [fwd: a]]", "[b]", "[a][b]", "fwd x", "Fwd x",
            "re: [x] (fwd) (FWD)", "[x]", "Re[2]: q", "q", "[fwd: x]", "x", "RE:  RE : r", "r",
            "[l] [m]", "[m]", "Re: [l] Re: w", "w", "[a] ", "[a]", "Fw: Fw:", "", "re:",
            "=?utf-8?q?Re=3A_[list]_abc?=", "abc"]


def test_base_subjects_as_dovecot(session):
    """RFC 5256 §2.1 base subjects: each odd message's equals the next one's; "[" sorts
    after the letters (upper-cased keys, as Dovecot)."""
    for n, subject in enumerate(SUBJECTS, 1):
        append(session, ["From: a@x.org", f"Subject: {subject}",
                         f"Date: {n:02d} Jan 2001 10:00:00 +0000"])
    session.ok("SELECT INBOX")
    assert session.command("THREAD ORDEREDSUBJECT UTF-8 ALL")[0] == (
        "* THREAD (1 2)(3 4)(5 6)(7 8)(9 10)(11 12)(13 14)(15 16)(17 18)(19 20)(21 22)"
        "(23 (24)(25))(26 27)")
    assert session.command("SORT (SUBJECT) UTF-8 ALL")[0] == (
        "* SORT 23 24 25 3 4 26 27 7 8 11 12 15 16 19 20 13 14 1 2 21 22 5 6 17 18 9 10")


def test_hostile_subjects_and_options(session):
    """Subjects built to make base-subject extraction slow, and a 60 KB RETURN list."""
    for subject in ("[a]" * 330, "re:" * 330, "[a] " * 240 + "x", "[fwd:" * 150 + "]" * 150,
                    "(fwd)" * 190, "[" * 990):
        append(session, ["From: a@x.org", f"Subject: {subject}"])
    session.ok("SELECT INBOX")
    started = time.monotonic()
    assert session.command("SORT (SUBJECT) UTF-8 ALL") == ["* SORT 2 4 5 3 1 6", "TAG OK SORT completed"]
    assert session.command("THREAD ORDEREDSUBJECT UTF-8 ALL") == [
        "* THREAD (1)(2 (4)(5))(3)(6)", "TAG OK THREAD completed"]
    assert time.monotonic() - started < 1
    assert esearch(session, "SEARCH RETURN (" + "MIN " * 15000 + "MAX) ALL") == [
        '* ESEARCH (TAG "TAG") MIN 1 MAX 6', "TAG OK SEARCH completed"]
