"""ENVELOPE, BODYSTRUCTURE and BODY compared with Dovecot 2.3's answers.

The reference answers live in tests/mime/dovecot/*.json, written by
tests/mime/dovecot/generate.py (run by hand against Debian's dovecot-imapd;
see that script for how Dovecot is run).  Answers are compared in the
canonical form of tests/mime/dovecot/wire.py, which only makes a quoted
string and a literal of the same bytes equal; anything else must match byte
for byte.  Differences we keep on purpose are in ALLOWED, one reason each.
"""

import glob
import hashlib
import json
import os
import sys

import pytest

from mime_helpers import CORPUS, crlf, parse

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dovecot")
sys.path.insert(0, HERE)

import cases  # noqa: E402
import wire   # noqa: E402

# Known differences: (source, name) -> reason, each with the rule that says
# geomail is right.  ALLOWED covers the part tree (BODYSTRUCTURE and BODY),
# ENVELOPE_ALLOWED the ENVELOPE; anything else must match.
_HEADER_CAP = ("parser stops buffering a header block at max_header_bytes (256 KiB, bounded "
               "memory) and starts the body there; Dovecot reads a 300 KB field on. RFC 5322 "
               "§2.1.1: a line MUST be at most 998 characters, so the message is not RFC 5322 "
               "and no reading of it is wrong")
ALLOWED = {
    ("case", "header_8bit_long_no_colon"): _HEADER_CAP,
}
_NULL_MEMBER = ("an empty member of an address list (\"a, , b\") is no address (RFC 5322 §4.4 "
                "obs-addr-list: null members, not addresses); Dovecot answers one "
                "(NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\") for it, geomail leaves it out")
ENVELOPE_ALLOWED = {
    ("case", "obs_route_and_empty_members"): _NULL_MEMBER,
}

REFERENCES = sorted(glob.glob(os.path.join(HERE, "*.json")))
_CASES = None


def load_message(ref):
    global _CASES
    if ref["source"] == "corpus":
        with open(os.path.join(CORPUS, ref["name"] + ".txt"), "rb") as f:
            data = crlf(f.read())
    else:
        if _CASES is None:
            _CASES = dict(cases.cases())
        data = _CASES[ref["name"]]
    assert hashlib.sha256(data).hexdigest() == ref["sha256"], (
        "%s changed since its Dovecot answer was recorded: run tests/mime/dovecot/generate.py" % ref["name"])
    return data


def test_reference_set_is_complete():
    names = {(r["source"], r["name"]) for r in map(_read, REFERENCES)}
    corpus = {("corpus", os.path.basename(p)[:-4]) for p in glob.glob(os.path.join(CORPUS, "msg_*.txt"))}
    case_names = {("case", n) for n, _ in cases.cases()}
    assert len(corpus) >= 40 and len(case_names) >= 40
    missing = (corpus | case_names) - names
    assert not missing, "no Dovecot answer for %s: run tests/mime/dovecot/generate.py" % sorted(missing)
    assert not (set(ALLOWED) | set(ENVELOPE_ALLOWED)) - names


def test_canonical_form():
    assert wire.canonical(b'("a\\"b" {3}\r\nx\r\n NIL 12)') == b'("a\\"b" "x\r\n" NIL 12)'
    assert wire.canonical(b'({2}\r\n\\" "\\\\")') == b'("\\\\\\"" "\\\\")'
    for bad in (b'("a"', b'"\xc3\xa9"', b'"a\r\nb"', b"(a) x", b'"\\x"'):
        with pytest.raises(wire.WireError):
            wire.canonical(bad)


def _read(path):
    with open(path) as f:
        return json.load(f)


@pytest.mark.parametrize("path", REFERENCES, ids=lambda p: os.path.basename(p)[:-5])
def test_matches_dovecot(path):
    ref = _read(path)
    data = load_message(ref)
    parsed, _ = parse(data)
    diffs = []
    for item in ("envelope", "bodystructure", "body"):
        ours = wire.canonical(getattr(parsed, item))   # also: valid IMAP syntax
        theirs = wire.from_json(ref[item])
        allowed = is_allowed(ref, item)
        if ours != theirs and not allowed:
            diffs.append("%s\n  dovecot: %r\n  geomail: %r" % (item, theirs, ours))
        if allowed and item != "body":
            assert ours != theirs, "%s matches Dovecot now: drop it from ALLOWED" % ref["name"]
    assert not diffs, "\n".join(diffs)


def is_allowed(ref, item):
    """May geomail's answer for this FETCH item differ from Dovecot's on this message?"""
    key = (ref["source"], ref["name"])
    return key in (ENVELOPE_ALLOWED if item == "envelope" else ALLOWED)


def test_agreement_rate():
    """The target: the same answer as Dovecot in at least 99% of FETCH items."""
    refs = [_read(path) for path in REFERENCES]
    differing = sum(is_allowed(ref, item) for ref in refs for item in ("envelope", "bodystructure", "body"))
    assert differing <= 0.01 * 3 * len(refs), (differing, len(refs))
