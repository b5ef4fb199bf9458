"""geomail-admin import and export on the suite's storage (MySQL + S3, or embedded):
mbox and Maildir in through the ingest path, out again byte for byte, flags kept,
a second run skipping what is there, Ctrl-C leaving only whole messages."""

import imaplib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from geomail import mailio
from tests.fixtures import mailgen
from tests.fixtures.admin import admin, new_account
from tests.fixtures.server import ADMIN, clean_env



@pytest.fixture(scope="module")
def storage(geomail_server, test_storage):
    """The suite's storage, migrated by the running server (which also serves IMAP here)."""
    return test_storage


@pytest.fixture
def account(storage):
    return new_account(storage, "import")


def mailboxes(storage, address):
    result = admin(storage, "mailbox", "list", address, "--json")
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


def exported_mbox(path):
    """The messages of an exported mboxrd file, as LF bytes, quoting undone."""
    return [item.data.replace(b"\r\n", b"\n") for item in mailio.Source(str(path))]


def expected(data):
    return data if data.endswith(b"\n") else data + b"\n"     # mbox ends every message


def test_mbox_in_and_out_byte_for_byte_and_a_second_run_skips_all(storage, account, tmp_path,
                                                                  geomail_server):
    bodies = mailgen.messages(300)
    source = tmp_path / "list.mbox"
    mailgen.write_mbox(source, bodies, status=lambda n: {0: "RO", 1: "O"}.get(n % 5, ""))

    sent = [expected(b"Status: RO\n" + d if n % 5 == 0 else b"Status: O\n" + d if n % 5 == 1 else d)
            for n, d in enumerate(bodies)]
    first = admin(storage, "import", account, str(source))
    assert first.returncode == 0, first.stderr
    assert "imported 300 messages" in first.stdout and "0 already there" in first.stdout
    inbox = mailboxes(storage, account)["INBOX"]
    assert inbox["messages"] == 300
    assert inbox["unseen"] == 300 - len(range(0, 300, 5))          # Status: R is \Seen

    with imaplib.IMAP4("127.0.0.1", geomail_server.imap_port) as imap:   # served as stored
        imap.login(account, "pw")
        imap.select("INBOX", readonly=True)
        for uid in (1, 3, 150, 300):
            _, data = imap.uid("FETCH", str(uid), "(BODY.PEEK[])")
            assert data[0][1] == mailio.crlf(sent[uid - 1])

    again = admin(storage, "import", account, str(source))
    assert again.returncode == 0, again.stderr
    assert "imported 0 messages" in again.stdout and "300 already there" in again.stdout
    assert mailboxes(storage, account)["INBOX"]["messages"] == 300

    out = tmp_path / "out"
    export = admin(storage, "export", account, str(out), "--format", "mbox")
    assert export.returncode == 0, export.stderr
    assert "exported 300 messages" in export.stdout
    back = exported_mbox(out / "INBOX.mbox")
    assert len(back) == len(sent)
    assert [n for n, (a, b) in enumerate(zip(back, sent)) if a != b] == []


def test_maildir_flags_and_folders_in_and_out(storage, account, tmp_path):
    bodies = mailgen.messages(40, seed=7)
    letters = ["S", "RS", "F", "", "DS", None, "T", "FRS"]
    folders = {"INBOX": [(d, letters[i % len(letters)]) for i, d in enumerate(bodies[:24])],
               "Work/Projects": [(d, "S") for d in bodies[24:34]],
               "Archive": [(d, None) for d in bodies[34:]]}
    source = tmp_path / "Maildir"
    mailgen.write_maildir(str(source), folders)

    result = admin(storage, "import", account, str(source))
    assert result.returncode == 0, result.stderr
    assert "imported 40 messages" in result.stdout
    boxes = mailboxes(storage, account)
    assert boxes["INBOX"]["messages"] == 24 and boxes["Work/Projects"]["messages"] == 10
    assert boxes["Work"]["messages"] == 0 and boxes["Archive"]["messages"] == 6
    seen_in_inbox = sum(1 for i in range(24) if "S" in (letters[i % len(letters)] or ""))
    assert boxes["INBOX"]["unseen"] == 24 - seen_in_inbox
    assert boxes["Work/Projects"]["unseen"] == 0 and boxes["Archive"]["unseen"] == 6

    out = tmp_path / "out"
    assert admin(storage, "export", account, str(out)).returncode == 0
    for name, items in folders.items():
        where = out if name == "INBOX" else out / ("." + name.replace("/", "."))
        files = sorted(os.listdir(where / "cur"))
        assert len(files) == len(items)
        got = sorted((open(where / "cur" / f, "rb").read(), f.split(":2,")[1]) for f in files)
        want = sorted((data, "".join(sorted(flags or "")))
                      for data, flags in items)
        assert got == want, name
    # the exported tree imports again as the same messages: nothing new
    other = admin(storage, "import", account, str(out))
    assert "imported 0 messages" in other.stdout and "40 already there" in other.stdout


def test_interrupted_import_leaves_whole_messages_and_resumes(storage, account, tmp_path):
    bodies = mailgen.messages(1500, seed=3)
    source = tmp_path / "big.mbox"
    mailgen.write_mbox(source, bodies)
    command = [sys.executable, str(ADMIN), *storage.server_args(), "import", account, str(source)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=clean_env(), text=True)
    db = storage.open_db()
    try:
        from geomail.store.accounts import get_account
        from geomail.store.mailboxes import list_mailboxes
        owner = get_account(db, account)

        def stored():
            return sum(b.message_count for b in list_mailboxes(db, owner.id))
        deadline = time.monotonic() + 60
        while stored() < 30 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None, "the import ended before it could be interrupted"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 130, err[-2000:]
        assert "interrupted after" in err and "Traceback" not in err
        partial = stored()
        assert 30 <= partial < 1500
    finally:
        db.close()
    resumed = admin(storage, "import", account, str(source))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{partial} already there" in resumed.stdout
    assert f"imported {1500 - partial} messages" in resumed.stdout
    out = tmp_path / "out"
    assert admin(storage, "export", account, str(out), "--format", "mbox").returncode == 0
    assert sorted(exported_mbox(out / "INBOX.mbox")) == sorted(expected(d) for d in bodies)


def test_bad_source_and_unknown_account(storage, account, tmp_path):
    missing = admin(storage, "import", account, str(tmp_path / "nothing"))
    assert missing.returncode == 1 and "neither an mbox file nor a Maildir" in missing.stderr
    (tmp_path / "empty.mbox").write_bytes(b"")
    unknown = admin(storage, "import", "nobody@example.com", str(tmp_path / "empty.mbox"))
    assert unknown.returncode == 1 and "no account nobody@example.com" in unknown.stderr
