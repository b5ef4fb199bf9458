"""Mailbox names with unusual atom characters (RFC 3501 §5.1.3: '&-' is '&', every other
printable US-ASCII character stands for itself): CREATE, LIST, SELECT, STATUS, and what is
refused."""

import pytest

# (name as the client sends it, as LIST gives it back)
NAMES = [
    ("&-", "&-"),
    ("a&-b-c", "a&-b-c"),
    ("R&-D", "R&-D"),
    ("~user", "~user"),
    ("&-&-", "&-&-"),
    ("x!#$'+,-.:;<=>?@^_`|}~", "x!#$'+,-.:;<=>?@^_`|}~"),
    ('"[brackets]"', '"[brackets]"'),
    ('"a (b) {c}"', '"a (b) {c}"'),
    ('"quote\\"back\\\\slash"', '"quote\\"back\\\\slash"'),
    ('"Entw&APw-rfe&-Co"', "Entw&APw-rfe&-Co"),
    ("&AOQ-&-", "&AOQ-&-"),
    ('"p&AOQA5A-"', "p&AOQA5A-"),          # imaptest's mutf7 group
]


@pytest.mark.parametrize("sent, listed", NAMES)
def test_create_list_select_status(session, sent, listed):
    session.ok(f"CREATE {sent}")
    assert session.command(f'LIST "" {sent}') == [
        f'* LIST (\\HasNoChildren) "/" {listed}', "TAG OK LIST completed"]
    assert session.command(f"SELECT {sent}")[-1] == "TAG OK [READ-WRITE] Select completed"
    assert session.command(f"STATUS {sent} (MESSAGES)") == [
        f"* STATUS {listed} (MESSAGES 0)", "TAG OK STATUS completed"]
    session.ok(f"SUBSCRIBE {sent}")
    assert session.command(f'LSUB "" {sent}') == [f'* LSUB () "/" {listed}', "TAG OK LSUB completed"]
    session.ok(f"DELETE {sent}")
    assert session.command(f'LIST "" {sent}') == ["TAG OK LIST completed"]


def test_names_listed_back_as_sent(session):
    for sent, _ in NAMES:
        session.ok(f"CREATE {sent}")
    listed = session.command('LIST "" *')
    for _, name in NAMES:
        assert f'* LIST (\\HasNoChildren) "/" {name}' in listed


@pytest.mark.parametrize("name, error", [
    ('"R&D-Lab"', "invalid modified UTF-7 in mailbox name"),
    ('"AT&T"', "unterminated &...- sequence in mailbox name"),
    ('"&AGE-"', "non-canonical modified UTF-7 in mailbox name"),
    ('"x%y"', "mailbox name contains a LIST wildcard (* or %)"),
    ('"x*y"', "mailbox name contains a LIST wildcard (* or %)"),
])
def test_refused_names(session, name, error):
    assert session.command(f"CREATE {name}") == [f"TAG NO [CANNOT] {error}"]
    assert session.command(f"SELECT {name}") == [f"TAG NO [CANNOT] {error}"]


def test_pattern_no_name_can_match_is_an_empty_list(session):
    session.ok("CREATE R&-D")
    assert session.command('LIST "" "R&D-*"') == ["TAG OK LIST completed"]
    assert session.command('LIST "R&D-" *') == ["TAG OK LIST completed"]
    assert session.command('LIST "" ("R&D-*" R&-%)') == [
        '* LIST (\\HasNoChildren) "/" R&-D', "TAG OK LIST completed"]
    assert session.command('LSUB "" "AT&T*"') == ["TAG OK LSUB completed"]
    assert session.command('LIST "" R&-*') == ['* LIST (\\HasNoChildren) "/" R&-D', "TAG OK LIST completed"]


def test_imaptest_atoms_group(session):
    """imaptest's 'atoms': '~' before anything but '{' is no literal8, and a pattern made of
    every atom character (its '&' starts no valid shift) is a LIST that matches nothing."""
    assert session.command('LIST "" ~foo') == ["TAG OK LIST completed"]
    assert session.command("SELECT ~foo") == ["TAG NO [NONEXISTENT] Mailbox ~foo does not exist"]
    atoms = "!#$&'+,-.0123456789:;<=>?@^_`|[}"
    assert session.command(f"SELECT {atoms}") == [
        "TAG NO [CANNOT] invalid modified UTF-7 in mailbox name"]
    assert session.command(f'LIST "" {atoms}%*') == ["TAG OK LIST completed"]
    assert session.command(f'LSUB "" {atoms}%*') == ["TAG OK LSUB completed"]
