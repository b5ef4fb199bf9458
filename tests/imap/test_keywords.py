"""Keyword announcement: a keyword new to the mailbox reaches every session that has it
selected in ``* FLAGS`` and ``* OK [PERMANENTFLAGS]`` before any FETCH shows it (imaptest's
"Keyword used without being in FLAGS"), whether a STORE, an APPEND or a COPY brought it
and whichever session did; a read-only session is told it may store none."""

import re
import threading

import pytest

from tests.imap.conftest import message

SYSTEM = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"


def flags_lines(keywords, readonly=False):
    flags = " ".join([SYSTEM] + keywords)
    permanent = "" if readonly else f"{flags} \\*"
    return [f"* FLAGS ({flags})", f"* OK [PERMANENTFLAGS ({permanent})] Flags permitted"]


@pytest.fixture
def three(session, deliver):
    for n in range(1, 4):
        deliver(session.account.address, message(f"m{n}"))
    return session


def connect(wire, account, command="SELECT INBOX"):
    w = wire()
    w.login(account)
    w.ok(command)
    return w


def test_store_announces_to_every_session(three, wire):
    three.ok("SELECT INBOX")
    other = connect(wire, three.account)
    reader = connect(wire, three.account, "EXAMINE INBOX")
    assert three.command("STORE 1 +FLAGS ($Label1)") == flags_lines(["$Label1"]) + [
        "* 1 FETCH (FLAGS ($Label1 \\Recent))", "TAG OK STORE completed"]
    # a FETCH before any catch-up shows the keyword: FLAGS comes first
    assert other.command("FETCH 1 (FLAGS)") == flags_lines(["$Label1"]) + [
        "* 1 FETCH (FLAGS ($Label1))", "* 1 FETCH (UID 1 FLAGS ($Label1))",
        "TAG OK FETCH completed"]
    assert reader.command("NOOP") == flags_lines(["$Label1"], readonly=True) + [
        "* 1 FETCH (UID 1 FLAGS ($Label1))", "TAG OK NOOP completed"]
    # known keywords are not announced again; .SILENT announces at the command's end
    assert three.command("STORE 2 +FLAGS ($Label1)") == [
        "* 2 FETCH (FLAGS ($Label1 \\Recent))", "TAG OK STORE completed"]
    assert three.command("STORE 3 +FLAGS.SILENT ($Label2)") == flags_lines(
        ["$Label1", "$Label2"]) + ["TAG OK STORE completed"]
    assert other.command("NOOP") == flags_lines(["$Label1", "$Label2"]) + [
        "* 2 FETCH (UID 2 FLAGS ($Label1))", "* 3 FETCH (UID 3 FLAGS ($Label2))",
        "TAG OK NOOP completed"]


def test_append_and_copy_announce(three, wire):
    three.ok("SELECT INBOX")
    other = connect(wire, three.account)
    data = message("appended").decode()
    three.send(f"a1 APPEND INBOX ($Appended) {{{len(data)}+}}\r\n{data}\r\n")
    lines = three.read_response("a1")
    assert lines[:3] == flags_lines(["$Appended"]) + ["* 4 EXISTS"], lines
    assert lines[-1].startswith("a1 OK [APPENDUID ")
    assert other.command("NOOP") == flags_lines(["$Appended"]) + [
        "* 4 EXISTS", "* 0 RECENT", "TAG OK NOOP completed"]
    # COPY from another mailbox brings its keywords along
    writer = connect(wire, three.account, "SELECT Drafts")
    writer.send(f"a2 APPEND Drafts ($Copied) {{{len(data)}+}}\r\n{data}\r\n")
    writer.read_response("a2")
    writer.ok("NOOP")
    writer.ok("COPY 1 INBOX")
    assert other.command("NOOP") == flags_lines(["$Appended", "$Copied"]) + [
        "* 5 EXISTS", "* 1 RECENT", "TAG OK NOOP completed"]
    assert other.command("FETCH 5 (FLAGS)") == [
        "* 5 FETCH (FLAGS ($Copied \\Recent))", "TAG OK FETCH completed"]


def _announced_before_use(lines, known):
    """Walk a session's untagged responses: every keyword a FETCH shows must have been
    in a FLAGS response before it.  Returns the keywords seen in FETCHes."""
    used = set()
    for line in lines:
        flags = re.match(r"\* FLAGS \((.*)\)$", line)
        if flags:
            known = set(flags.group(1).split())
            continue
        fetch = re.match(r"\* \d+ FETCH \(.*FLAGS \(([^)]*)\)", line)
        if fetch:
            keywords = {f for f in fetch.group(1).split() if not f.startswith("\\")}
            assert keywords <= known, (line, keywords - known)
            used |= keywords
    return used


def test_announced_under_concurrent_stores(three, wire):
    """Writers add 60 new keywords while readers FETCH and NOOP: no FETCH of any session
    (the writers' own included) shows a keyword its FLAGS did not name first."""
    three.ok("SELECT INBOX")
    sessions = [connect(wire, three.account) for _ in range(3)]
    transcripts = {id(s): [] for s in sessions + [three]}
    done = threading.Event()
    errors = []

    def writer(w, offset):
        try:
            for i in range(30):
                transcripts[id(w)] += w.command(f"STORE {i % 3 + 1} +FLAGS ($kw{offset + i})")
        except Exception as exc:           # reported below, in the test's thread
            errors.append(exc)

    def reader(w):
        try:
            while not done.is_set():
                transcripts[id(w)] += w.command("FETCH 1:* (FLAGS)")
                transcripts[id(w)] += w.command("NOOP")
        except Exception as exc:
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(three, 0)),
               threading.Thread(target=writer, args=(sessions[0], 100))]
    readers = [threading.Thread(target=reader, args=(w,)) for w in sessions[1:]]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join(60)
    done.set()
    for t in readers:
        t.join(60)
    assert not errors, errors
    for w in sessions[1:]:
        transcripts[id(w)] += w.command("FETCH 1:* (FLAGS)")
    everything = {f"$kw{i}" for i in range(30)} | {f"$kw{100 + i}" for i in range(30)}
    for w in sessions + [three]:
        used = _announced_before_use(transcripts[id(w)], set(SYSTEM.split()))
        if w in sessions[1:]:
            assert used == everything
