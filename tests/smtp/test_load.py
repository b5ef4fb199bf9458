"""20 concurrent senders x 200 messages with Postfix's smtp-source: every message stored once.

smtp-source comes from Debian's ``postfix`` package (``.ci/run`` installs
it).  Without it this test fails: a load test that silently skips proves
nothing.
"""

import shutil
import subprocess
import time

import pytest

from tests.smtp.conftest import count_rows, db_query, stored_messages

SESSIONS = 20
MESSAGES = 4000                # 20 senders x 200
TIME_LIMIT = 120               # seconds for the whole run (about 10 s when healthy)


def smtp_source():
    path = shutil.which("smtp-source") or ("/usr/sbin/smtp-source"
                                           if shutil.which("/usr/sbin/smtp-source") else None)
    if path is None:
        pytest.fail("smtp-source is missing: install Debian's postfix package "
                    "(apt-get install postfix; then stop the postfix daemon)", pytrace=False)
    return path


def test_20_senders_200_messages_each_stored_exactly_once(storage_server):
    source = smtp_source()
    server = storage_server(workers=2)
    command = [source, "-s", str(SESSIONS), "-m", str(MESSAGES), "-l", "4096",
               "-f", "sender@x.org", "-t", "rcpt@example.com", "-S", "load",
               f"127.0.0.1:{server.smtp_port}"]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIME_LIMIT + 60)
    elapsed = time.monotonic() - started
    # smtp-source stops at the first reply it did not expect (no -A): any 4xx/5xx fails it
    assert result.returncode == 0, f"smtp-source: {result.stderr[-2000:]}\n{server.output()}"
    assert "fatal" not in result.stderr and "error" not in result.stderr.lower(), result.stderr
    assert elapsed < TIME_LIMIT, f"{MESSAGES} messages took {elapsed:.1f} s"

    messages = stored_messages(server.db_url)
    assert len(messages) == MESSAGES
    assert {m["address"] for m in messages} == {"rcpt@example.com"}
    uids = sorted(m["uid"] for m in messages)
    assert uids == list(range(1, MESSAGES + 1)), "UIDs must be 1..N, none twice, none missing"
    assert len({m["content_id"] for m in messages}) == MESSAGES     # one content each
    assert count_rows(server.db_url, "message_contents") == MESSAGES
    assert all(m["subject"] == "load" for m in messages)
    # each stored once: the Received trace header names a distinct queue id per message
    ids = {m["trace_headers"].split(b" id ", 1)[1].split(None, 1)[0] for m in messages}
    assert len(ids) == MESSAGES
    (mailbox,) = db_query(server.db_url, "SELECT uidnext, message_count, unseen_count,"
                                         " highestmodseq FROM mailboxes WHERE name = 'INBOX'")
    assert tuple(int(v) for v in mailbox[:3]) == (MESSAGES + 1, MESSAGES, MESSAGES)
    # modseq grows with the UID: each delivery saw the one before it
    by_uid = sorted((m["uid"], m["modseq"]) for m in messages)
    modseqs = [modseq for _, modseq in by_uid]
    assert modseqs == sorted(set(modseqs)) and modseqs[-1] == int(mailbox[3])
    assert count_rows(server.db_url, "pending_objects") == 0
    print(f"\n{MESSAGES} messages in {elapsed:.2f} s: {MESSAGES / elapsed:.0f} msgs/s")
