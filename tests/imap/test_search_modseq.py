"""SEARCH MODSEQ (RFC 7162 §3.1.5) and the (MODSEQ n) of its answers."""

import pytest

from tests.imap.conftest import message
from tests.imap.test_esearch import esearch


@pytest.fixture
def mailbox(session, deliver):
    for n in range(1, 5):
        deliver(session.account.address, message(f"m{n}"))
    session.ok("SELECT INBOX")
    return session




def test_modseq_key(mailbox, db):
    # deliveries gave modseqs 2..5 (a new mailbox starts at 1); STORE raises 3 to 6
    with db.cursor() as cur:
        cur.execute("SELECT m.uid, m.modseq FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
                    "JOIN accounts a ON a.id = b.account_id WHERE a.address = %s AND b.name = 'INBOX' "
                    "ORDER BY m.uid", (mailbox.account.address,))
        before = [(int(u), int(s)) for u, s in cur.fetchall()]
    base = before[0][1]
    assert [s - base for _, s in before] == [0, 1, 2, 3]
    mailbox.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
    top = base + 4
    tagged = "TAG OK SEARCH completed"
    # the first CONDSTORE enabling command tells HIGHESTMODSEQ (RFC 7162 §3.1)
    assert mailbox.command(f"SEARCH MODSEQ {base + 2}") == [
        f"* OK [HIGHESTMODSEQ {top}] Highest", f"* SEARCH 2 3 4 (MODSEQ {top})", tagged]
    assert mailbox.command(f"SEARCH MODSEQ {base + 3} NOT SEEN") == [
        f"* SEARCH 4 (MODSEQ {base + 3})", tagged]
    assert mailbox.command(f'SEARCH MODSEQ "/flags/\\\\Seen" all {base}') == [
        f"* SEARCH 1 2 3 4 (MODSEQ {top})", tagged]
    assert mailbox.command(f"SEARCH MODSEQ {top + 1}") == ["* SEARCH", tagged]
    assert mailbox.command("SEARCH MODSEQ 0 1") == [f"* SEARCH 1 (MODSEQ {base})", tagged]
    # no MODSEQ key: no (MODSEQ n)
    assert mailbox.command("SEARCH 1") == ["* SEARCH 1", tagged]
    # ESEARCH: the highest of all matches, or of the MIN/MAX message only
    assert esearch(mailbox, f"SEARCH RETURN (ALL) MODSEQ {base}") == [
        f'* ESEARCH (TAG "TAG") ALL 1:4 MODSEQ {top}', tagged]
    assert esearch(mailbox, f"SEARCH RETURN (MIN) MODSEQ {base}") == [
        f'* ESEARCH (TAG "TAG") MIN 1 MODSEQ {base}', tagged]
    assert esearch(mailbox, f"UID SEARCH RETURN (MIN MAX) MODSEQ {base}") == [
        f'* ESEARCH (TAG "TAG") UID MIN 1 MAX 4 MODSEQ {base + 3}', "TAG OK UID SEARCH completed"]
    assert esearch(mailbox, f"SEARCH RETURN (COUNT) MODSEQ {top + 1}") == [
        '* ESEARCH (TAG "TAG") COUNT 0', tagged]


def test_modseq_errors(mailbox):
    assert mailbox.command("SEARCH MODSEQ x") == ["TAG BAD Syntax error: expected number at 'x'"]
    assert mailbox.command('SEARCH MODSEQ "/flags/\\\\Seen" mine 5') == [
        "TAG BAD Syntax error: MODSEQ entry type must be priv, shared or all"]
    assert mailbox.command('SEARCH MODSEQ "/other" all 5') == [
        'TAG BAD Syntax error: MODSEQ entry name must be "/flags/<flag>"']
    assert mailbox.command("SEARCH MODSEQ 9223372036854775808") == [
        "TAG BAD Syntax error: number too large"]
