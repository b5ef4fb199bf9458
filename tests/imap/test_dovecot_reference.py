"""FETCH ENVELOPE / BODYSTRUCTURE / BODY over IMAP, compared with Dovecot 2.3's answers.

Every message with a recorded Dovecot answer (tests/mime/dovecot/: the CPython
email corpus and the hard cases) is delivered over SMTP to a real geomail,
fetched back over IMAP, and compared in the canonical wire form (a quoted
string equals a literal of the same bytes; nothing else is forgiven).  The
differences listed in tests/mime/test_dovecot_reference.py (ALLOWED,
ENVELOPE_ALLOWED) are the only exceptions.
"""

import glob
import json
import os
import sys

from tests.smtp.test_ingest import send_all

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "mime")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "dovecot"))

import wire as dovecot_wire  # noqa: E402
from test_dovecot_reference import is_allowed, load_message  # noqa: E402

ITEMS = {b"ENVELOPE": "envelope", b"BODYSTRUCTURE": "bodystructure", b"BODY": "body"}


def references():
    paths = sorted(glob.glob(os.path.join(HERE, "dovecot", "*.json")))
    assert paths, "no Dovecot reference answers found"
    refs = []
    for path in paths:
        with open(path) as handle:
            refs.append(json.load(handle))
    return refs


def fetch_items(item_line):
    """{'envelope': canonical, ...} from one '* n FETCH (...)' line (literals inlined)."""
    start = item_line.index(b"FETCH (") + len(b"FETCH (")
    found, i = {}, start
    while item_line[i:i + 1] != b")":
        if item_line[i:i + 1] == b" ":
            i += 1
            continue
        end = item_line.index(b" ", i)
        name = item_line[i:end]
        value, i = dovecot_wire.read_value(item_line, end + 1)
        if name in ITEMS:
            found[ITEMS[name]] = value
    return found


def test_imap_answers_match_dovecot(server, account, wire):
    refs = references()
    messages = [(ref["name"], load_message(ref)) for ref in refs]
    send_all(server.smtp_port, account.address, messages)
    session = wire()
    session.login(account)
    assert any("EXISTS" in line for line in session.ok("SELECT INBOX"))
    session.send(b"f1 FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)\r\n")
    answers = []
    while True:
        item = session.read_item()
        if item.startswith(b"f1 "):
            assert item.startswith(b"f1 OK"), item
            break
        answers.append(fetch_items(item))
    assert len(answers) == len(refs)
    differences = []
    for ref, ours in zip(refs, answers):
        for item in ("envelope", "bodystructure", "body"):
            theirs = dovecot_wire.from_json(ref[item])
            if ours[item] != theirs and not is_allowed(ref, item):
                differences.append(f"{ref['name']} {item}\n  dovecot: {theirs!r}\n"
                                   f"  geomail: {ours[item]!r}")
    assert not differences, "\n".join(differences)
