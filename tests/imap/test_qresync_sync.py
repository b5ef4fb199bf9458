"""Synchronising the way real clients do (Thunderbird with QRESYNC, mbsync with CONDSTORE).

A client keeps a cache of a mailbox (UIDVALIDITY, HIGHESTMODSEQ, each UID's flags),
goes away while another device changes flags, adds keywords, expunges, moves and
receives mail, and comes back: it must learn exactly what changed -- the known UIDs
that vanished, the known messages whose flags changed, nothing else -- and its cache
must then equal what the server holds.
"""

import random
import re

import pytest

from tests.imap.conftest import message

COUNT = 40


def parse_set(text):
    out = set()
    for part in text.split(","):
        low, _, high = part.partition(":")
        out.update(range(int(low), int(high or low) + 1))
    return out


def set_text(uids):
    return ",".join(str(u) for u in sorted(uids))


class CachingClient:
    """A client's cache of one mailbox, updated from the server's responses."""

    def __init__(self):
        self.uidvalidity = None
        self.highestmodseq = 0
        self.flags = {}                  # uid -> frozenset of flags (no \Recent)

    def apply(self, lines):
        """Apply untagged responses; returns (vanished (EARLIER) UIDs, vanished UIDs, fetched UIDs)."""
        earlier, vanished, fetched = set(), set(), set()
        for line in lines:
            if m := re.match(r"\* OK \[UIDVALIDITY (\d+)\]", line):
                self.uidvalidity = int(m.group(1))
            elif m := re.match(r"\* OK \[HIGHESTMODSEQ (\d+)\]", line):
                self.highestmodseq = int(m.group(1))
            elif m := re.match(r"\* VANISHED (\(EARLIER\) )?([\d:,]+)$", line):
                uids = parse_set(m.group(2))
                (earlier if m.group(1) else vanished).update(uids)
                for uid in uids:
                    self.flags.pop(uid, None)
            elif m := re.match(r"\* \d+ FETCH \((.*)\)$", line):
                uid = int(re.search(r"\bUID (\d+)", m.group(1)).group(1))
                flags = re.search(r"\bFLAGS \(([^)]*)\)", m.group(1))
                if flags:
                    self.flags[uid] = frozenset(f for f in flags.group(1).split() if f != "\\Recent")
                    fetched.add(uid)
                modseq = re.search(r"\bMODSEQ \((\d+)\)", m.group(1))
                if modseq:
                    self.highestmodseq = max(self.highestmodseq, int(modseq.group(1)))
        return earlier, vanished, fetched


def truth(wire, account, mailbox="INBOX"):
    """{uid: flags} as a fresh session sees them."""
    w = wire()
    w.login(account)
    w.ok(f"EXAMINE {mailbox}")
    client = CachingClient()
    client.apply(w.ok("UID FETCH 1:* (UID FLAGS)"))
    w.close()
    return client.flags


def another_device(wire, account, deliver, rng, known):
    """Flags added (never taken back, so every change is a real one), new keywords,
    expunges and a MOVE among the known UIDs, then new mail; returns the UIDs gone."""
    w = wire()
    w.login(account)
    w.ok("SELECT INBOX")
    uids = sorted(known)
    for uid in rng.sample(uids, 12):
        flag = rng.choice(["\\Seen", "\\Flagged", "\\Answered", "$Work", "$Todo", "\\Draft"])
        w.ok(f"UID STORE {uid} +FLAGS.SILENT ({flag})")
    gone = set(rng.sample(uids, 6))
    w.ok(f"UID STORE {set_text(gone)} +FLAGS.SILENT (\\Deleted)")
    w.ok(f"UID EXPUNGE {set_text(gone)}")
    moved = rng.choice(sorted(set(uids) - gone))
    w.ok(f"UID MOVE {moved} Junk")
    for n in range(5):
        deliver(account.address, message(f"new{n}"))
    w.close()
    return gone | {moved}


@pytest.fixture
def mailbox(session, deliver):
    for n in range(COUNT):
        deliver(session.account.address, message(f"m{n}"))
    return session.account


def first_sync(wire, account, select):
    w = wire()
    w.login(account)
    client = CachingClient()
    w.ok("ENABLE QRESYNC")
    client.apply(w.ok(select))
    client.apply(w.ok("UID FETCH 1:* (UID FLAGS MODSEQ)"))
    w.ok("LOGOUT")
    w.close()
    return client


@pytest.mark.parametrize("seed", [1, 2])
def test_thunderbird_qresync(mailbox, wire, deliver, seed):
    rng = random.Random(seed)
    client = first_sync(wire, mailbox, "SELECT INBOX")
    assert len(client.flags) == COUNT and client.highestmodseq == COUNT + 1
    before = truth(wire, mailbox)
    gone = another_device(wire, mailbox, deliver, rng, set(client.flags))
    after = truth(wire, mailbox)
    changed = {uid for uid in before if uid in after and after[uid] != before[uid]}
    assert changed and gone

    w = wire()
    w.login(mailbox)
    w.ok("ENABLE QRESYNC")
    known = max(client.flags)
    lines = w.ok(f"SELECT INBOX (QRESYNC ({client.uidvalidity} {client.highestmodseq} 1:{known}))")
    earlier, vanished, fetched = client.apply(lines)
    assert earlier == gone and not vanished
    assert fetched == changed
    assert f"* {len(after)} EXISTS" in lines
    # then the new mail, as a client fetches beyond the UIDs it knows
    _, _, fetched = client.apply(w.ok(f"UID FETCH {known + 1}:* (UID FLAGS)"))
    assert fetched == set(after) - set(before)
    assert client.flags == after
    # nothing changed since: the next resync is empty
    lines = w.ok(f"SELECT INBOX (QRESYNC ({client.uidvalidity} {client.highestmodseq}))")
    assert lines[-1] == f"* OK [HIGHESTMODSEQ {client.highestmodseq}] Highest", lines
    assert client.apply(lines) == (set(), set(), set())


def test_mbsync_condstore(mailbox, wire, deliver):
    """CONDSTORE without QRESYNC: CHANGEDSINCE for flags, UID SEARCH for what is left."""
    rng = random.Random(3)
    w = wire()
    w.login(mailbox)
    client = CachingClient()
    client.apply(w.ok("SELECT INBOX (CONDSTORE)"))
    client.apply(w.ok("UID FETCH 1:* (UID FLAGS)"))
    w.close()
    before = truth(wire, mailbox)
    gone = another_device(wire, mailbox, deliver, rng, set(client.flags))
    after = truth(wire, mailbox)
    changed = {uid for uid in before if uid in after and after[uid] != before[uid]}

    w = wire()
    w.login(mailbox)
    lines = w.ok("SELECT INBOX (CONDSTORE)")
    assert not any("VANISHED" in line or "FETCH" in line for line in lines)
    known = max(client.flags)
    _, _, fetched = client.apply(w.ok(
        f"UID FETCH 1:{known} (UID FLAGS) (CHANGEDSINCE {client.highestmodseq})"))
    assert fetched == changed
    left = set(map(int, w.ok(f"UID SEARCH UID 1:{known}")[0].split()[2:]))
    assert set(before) - left == gone
    for uid in gone:
        del client.flags[uid]
    client.apply(w.ok(f"UID FETCH {known + 1}:* (UID FLAGS)"))
    assert client.flags == after


def test_uidvalidity_changed(mailbox, wire, deliver):
    """The mailbox was deleted and made again: the client's modseq means nothing, so the
    SELECT is a plain one and the new UIDVALIDITY tells the client to start over."""
    w = wire()
    w.login(mailbox)
    w.ok("CREATE Work")
    client = first_sync(wire, mailbox, "SELECT Work")
    w.ok("DELETE Work")
    w.ok("CREATE Work")
    w.ok("SELECT INBOX")
    w.ok("COPY 1:2 Work")
    w.ok("ENABLE QRESYNC")
    lines = w.ok(f"SELECT Work (QRESYNC ({client.uidvalidity} 1))")
    fresh = CachingClient()
    fresh.apply(lines)
    assert fresh.uidvalidity != client.uidvalidity
    assert not any("VANISHED" in line or "FETCH" in line for line in lines), lines


def test_staying_connected(mailbox, wire, deliver):
    """A client that keeps the mailbox selected with QRESYNC on hears VANISHED and FETCH
    (UID FLAGS MODSEQ) as things happen, and its cache stays right."""
    rng = random.Random(4)
    w = wire()
    w.login(mailbox)
    client = CachingClient()
    w.ok("ENABLE QRESYNC")
    client.apply(w.ok("SELECT INBOX"))
    client.apply(w.ok("UID FETCH 1:* (UID FLAGS)"))
    gone = another_device(wire, mailbox, deliver, rng, set(client.flags))
    _, vanished, _ = client.apply(w.ok("NOOP"))
    assert vanished == gone
    client.apply(w.ok(f"UID FETCH {max(client.flags) + 1}:* (UID FLAGS)"))
    assert client.flags == truth(wire, mailbox)
