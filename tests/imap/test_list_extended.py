"""LIST-EXTENDED (RFC 5258): selection and return options, several patterns, CHILDINFO."""

import pytest

OK = "TAG OK LIST completed"


@pytest.fixture
def tree(session):
    """imaptest's listext tree: t/1, t/2/1, t/3, t/4/5, t/4/52, t/7/7, t/8/8, t/8/9 and a
    subscribed t/6 that was deleted."""
    for name in ("t/1", "t/2/1", "t/3", "t/4/5", "t/4/52", "t/6", "t/7/7", "t/8/8", "t/8/9"):
        session.ok(f"CREATE {name}")
    for name in ("t/1", "t/2/1", "t/6", "t/7/7", "t/8/8", "t/8/9"):
        session.ok(f"SUBSCRIBE {name}")
    session.ok("DELETE t/6")
    return session


def test_several_patterns(tree):
    assert tree.command('LIST "" (t/*2 t/3)') == [
        '* LIST (\\HasChildren) "/" t/2', '* LIST (\\HasNoChildren) "/" t/3',
        '* LIST (\\HasNoChildren) "/" t/4/52', OK]
    # a name matched by two patterns is listed once
    assert tree.command('LIST "" (t/3 t/% t/3)') == [
        '* LIST (\\HasNoChildren) "/" t/1', '* LIST (\\HasChildren) "/" t/2',
        '* LIST (\\HasNoChildren) "/" t/3', '* LIST (\\HasChildren) "/" t/4',
        '* LIST (\\HasChildren) "/" t/7', '* LIST (\\HasChildren) "/" t/8', OK]


def test_subscribed_selection(tree):
    assert tree.command('LIST (SUBSCRIBED) "" t/*') == [
        '* LIST (\\HasNoChildren \\Subscribed) "/" t/1',
        '* LIST (\\HasNoChildren \\Subscribed) "/" t/2/1',
        '* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" t/6',
        '* LIST (\\HasNoChildren \\Subscribed) "/" t/7/7',
        '* LIST (\\HasNoChildren \\Subscribed) "/" t/8/8',
        '* LIST (\\HasNoChildren \\Subscribed) "/" t/8/9', OK]
    # REMOTE changes nothing here: there are no remote mailboxes
    assert tree.command('LIST (SUBSCRIBED REMOTE) "" t/*') == tree.command('LIST (SUBSCRIBED) "" t/*')


def test_return_subscribed_and_children(tree):
    assert tree.command('list "" t/% return (children subscribed)') == [
        '* LIST (\\HasNoChildren \\Subscribed) "/" t/1', '* LIST (\\HasChildren) "/" t/2',
        '* LIST (\\HasNoChildren) "/" t/3', '* LIST (\\HasChildren) "/" t/4',
        '* LIST (\\HasChildren) "/" t/7', '* LIST (\\HasChildren) "/" t/8', OK]
    # RETURN (SUBSCRIBED) does not list subscribed names that do not exist
    assert tree.command('LIST "" t/6 RETURN (SUBSCRIBED)') == [OK]


def test_recursivematch_childinfo(tree):
    assert tree.command('LIST (SUBSCRIBED RECURSIVEMATCH) "" t/2% RETURN (CHILDREN)') == [
        '* LIST (\\HasChildren) "/" t/2 ("CHILDINFO" ("SUBSCRIBED"))', OK]
    # the subscribed inferior is listed itself: no CHILDINFO for t/7
    assert tree.command('LIST (SUBSCRIBED RECURSIVEMATCH) "" *7') == [
        '* LIST (\\HasNoChildren \\Subscribed) "/" t/7/7', OK]
    # t/8/9 is not matched by *8, so t/8 carries CHILDINFO
    assert tree.command('LIST (SUBSCRIBED RECURSIVEMATCH) "" *8') == [
        '* LIST (\\HasChildren) "/" t/8 ("CHILDINFO" ("SUBSCRIBED"))',
        '* LIST (\\HasNoChildren \\Subscribed) "/" t/8/8', OK]
    assert tree.command('LIST (SUBSCRIBED RECURSIVEMATCH) "" (t/2 t/2/1)') == [
        '* LIST (\\HasNoChildren \\Subscribed) "/" t/2/1', OK]
    # without RECURSIVEMATCH there is no CHILDINFO
    assert tree.command('LIST (SUBSCRIBED) "" t/2') == [OK]


def test_childinfo_for_a_name_that_does_not_exist(session):
    session.ok("SUBSCRIBE Ghost/child")
    assert session.command('LIST (SUBSCRIBED RECURSIVEMATCH) "" %') == [
        '* LIST (\\HasNoChildren \\Subscribed) "/" INBOX',
        '* LIST (\\HasNoChildren \\Subscribed \\Drafts) "/" Drafts',
        '* LIST (\\NonExistent \\HasNoChildren) "/" Ghost ("CHILDINFO" ("SUBSCRIBED"))',
        '* LIST (\\HasNoChildren \\Subscribed \\Junk) "/" Junk',
        '* LIST (\\HasNoChildren \\Subscribed \\Sent) "/" Sent',
        '* LIST (\\HasNoChildren \\Subscribed \\Trash) "/" Trash', OK]


def test_special_use_selection_and_return(session):
    session.ok("CREATE Folder/Arch (USE (\\Archive))")
    assert session.command('LIST (SPECIAL-USE) "" * RETURN (SPECIAL-USE)') == [
        '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
        '* LIST (\\HasNoChildren \\Archive) "/" Folder/Arch',
        '* LIST (\\HasNoChildren \\Junk) "/" Junk',
        '* LIST (\\HasNoChildren \\Sent) "/" Sent',
        '* LIST (\\HasNoChildren \\Trash) "/" Trash', OK]
    assert session.command('LIST "" Folder RETURN (SPECIAL-USE)') == [
        '* LIST (\\HasChildren) "/" Folder', OK]


def test_noselect_placeholder_is_not_nonexistent(session):
    session.ok("CREATE a/b")
    session.ok("DELETE a")
    assert session.command('LIST "" (a a/b) RETURN (CHILDREN)') == [
        '* LIST (\\Noselect \\HasChildren) "/" a', '* LIST (\\HasNoChildren) "/" a/b', OK]


def test_empty_options(session):
    assert session.command('LIST () "" INBOX RETURN ()') == [
        '* LIST (\\HasNoChildren) "/" INBOX', OK]


@pytest.mark.parametrize("command, error", [
    ('LIST (imaptest) "" ""', "unknown LIST selection option IMAPTEST"),
    ('LIST (RECURSIVEMATCH) "" ""', "RECURSIVEMATCH needs another selection option"),
    ('LIST (RECURSIVEMATCH REMOTE) "" %', "RECURSIVEMATCH needs another selection option"),
    ('LIST "" "" RETURN (imaptest)', "unknown LIST return option IMAPTEST"),
    ('LIST "" % RETURN (CHILDREN', "expected space at end of line"),
    ('LIST "" ()', "expected mailbox pattern at ')'"),
])
def test_errors(session, command, error):
    assert session.command(command) == [f"TAG BAD Syntax error: {error}"]
    assert session.command("NOOP") == ["TAG OK NOOP completed"]
