"""THREAD and UID THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES."""

import time

import pytest

from tests.imap.test_sort import append


def msg(session, n, subject, day, message_id=True, refs=None, in_reply_to=None, year=2001):
    headers = [f"From: a{n}@example.org", f"Subject: {subject}",
               f"Date: {day:02d} Jan {year} 10:00:00 +0000"]
    if message_id:
        headers.append(f"Message-ID: <{n}@x>")
    if refs:
        headers.append("References: " + " ".join(f"<{r}@x>" for r in refs))
    if in_reply_to:
        headers.append(f"In-Reply-To: <{in_reply_to}@x>")
    append(session, headers)


@pytest.fixture
def mailbox(session):
    msg(session, 1, "A", 1)
    msg(session, 2, "Re: A", 2, in_reply_to=1)
    msg(session, 3, "B", 3)
    msg(session, 4, "Re: A", 4, refs=[1, 2])
    msg(session, 5, "Re: A", 5, refs=[1])
    msg(session, 6, "Re: B", 6, refs=["missing"])       # parent unknown: joins B by subject
    msg(session, 7, "C", 7, message_id=False)
    msg(session, 8, "Re: C", 8, refs=["gone"])          # 8 and 9 share an unknown parent
    msg(session, 9, "Re: C", 9, refs=["gone"])
    msg(session, 10, "Re: D", 1, year=2000)                        # the oldest: its thread comes first
    session.ok("SELECT INBOX")
    return session


def test_references(mailbox):
    assert mailbox.command("THREAD REFERENCES UTF-8 ALL") == [
        "* THREAD (10)(1 (2 4)(5))(3 6)((7)(8)(9))", "TAG OK THREAD completed"]
    assert mailbox.command("THREAD REFERENCES US-ASCII NOT 2") == [
        "* THREAD (10)(1 (4)(5))(3 6)((7)(8)(9))", "TAG OK THREAD completed"]


def test_ordered_subject(mailbox):
    assert mailbox.command("THREAD ORDEREDSUBJECT UTF-8 ALL") == [
        "* THREAD (10)(1 (2)(4)(5))(3 6)(7 (8)(9))", "TAG OK THREAD completed"]


def test_uid_thread(mailbox):
    mailbox.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    mailbox.ok("EXPUNGE")
    # without 1, its replies 2 and 5 hang under a dummy for <1@x>
    assert mailbox.command("UID THREAD REFERENCES UTF-8 ALL") == [
        "* THREAD (10)((2 4)(5))(3 6)((7)(8)(9))", "TAG OK UID THREAD completed"]
    assert mailbox.command("THREAD REFERENCES UTF-8 ALL") == [
        "* THREAD (9)((1 3)(4))(2 5)((6)(7)(8))", "TAG OK THREAD completed"]
    assert mailbox.command("UID THREAD ORDEREDSUBJECT UTF-8 UID 3") == [
        "* THREAD (3)", "TAG OK UID THREAD completed"]
    assert mailbox.command("THREAD REFERENCES UTF-8 DRAFT") == [
        "* THREAD", "TAG OK THREAD completed"]


def test_thread_errors(mailbox):
    assert mailbox.command("THREAD FOO UTF-8 ALL") == [
        "TAG BAD Syntax error: unknown threading algorithm FOO"]
    assert mailbox.command("THREAD REFERENCES X-NOPE ALL") == [
        "TAG NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset X-NOPE"]
    assert mailbox.command("THREAD REFERENCES UTF-8") == [
        "TAG BAD Syntax error: expected space at end of line"]
    assert mailbox.command("NOOP") == ["TAG OK NOOP completed"]


def test_hostile_references(session):
    """Loops, self-references and a long chain: bounded work, a well-formed answer."""
    msg(session, 1, "x", 1, refs=[2])            # 1 under 2; 2 under 1 would close a loop
    msg(session, 2, "x", 2, refs=[1])
    msg(session, 3, "y", 3, refs=[3])            # its own parent
    msg(session, 4, "z", 4, refs=list(range(5000, 5000 + 3000)))   # a very long chain
    session.ok("SELECT INBOX")
    started = time.monotonic()
    assert session.command("THREAD REFERENCES UTF-8 ALL") == [
        "* THREAD (2 1)(3)(4)", "TAG OK THREAD completed"]
    assert time.monotonic() - started < 2


def test_references_rules_as_dovecot(session):
    """§3 REFERENCES step 1 corner cases; the answer is Dovecot 2.3.19's."""
    msg(session, 1, "one", 1)
    msg(session, 2, "two", 2, refs=[1, 2, 3])      # its own id inside its References
    msg(session, 3, "three", 3, refs=[2])
    msg(session, 4, "four", 4, refs=[1], in_reply_to=3)   # References wins over In-Reply-To
    msg(session, 5, "five", 5, in_reply_to=4)
    msg(session, 6, "six", 6, refs=[5, 7])         # 7 arrives later and fills the dummy
    msg(session, 7, "seven", 7, refs=[1])
    msg(session, 8, "dup", 8)
    data = ("From: a@x.org\r\nSubject: dup2\r\nDate: 09 Jan 2001 10:00:00 +0000\r\n"
            "Message-ID: <8@x>\r\nReferences: <1@x>\r\n\r\nb\r\n")   # a duplicate Message-ID
    session.ok("APPEND INBOX {%d+}\r\n" % len(data) + data)
    session.ok("SELECT INBOX")
    assert session.command("THREAD REFERENCES UTF-8 ALL") == [
        "* THREAD (1 (4 5)(7 6)(9))(2 3)(8)", "TAG OK THREAD completed"]


def test_thread_large_mailbox(session):
    """10,240 messages (COPY doubling, so Message-IDs repeat): both algorithms answer in time."""
    for n in range(1, 11):
        msg(session, n, "Re: topic" if n % 2 else "topic", n, refs=[1, 100 + n] if n > 1 else None)
    session.ok("SELECT INBOX")
    for _ in range(10):
        session.ok("COPY 1:* INBOX")
    session.ok("NOOP")
    for algorithm in ("REFERENCES", "ORDEREDSUBJECT"):
        started = time.monotonic()
        lines = session.command(f"THREAD {algorithm} UTF-8 ALL")
        elapsed = time.monotonic() - started
        assert lines[-1] == "TAG OK THREAD completed"
        numbers = lines[0].replace("(", " ").replace(")", " ").split()[2:]
        assert sorted(map(int, numbers)) == list(range(1, 10241))
        assert elapsed < 2, (algorithm, elapsed)
