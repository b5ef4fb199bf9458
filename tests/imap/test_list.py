"""LIST, LSUB, CREATE (with USE), DELETE, RENAME (hierarchy, INBOX), SUBSCRIBE, NAMESPACE."""

STANDARD = ['* LIST (\\HasNoChildren) "/" INBOX',
            '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
            '* LIST (\\HasNoChildren \\Junk) "/" Junk',
            '* LIST (\\HasNoChildren \\Sent) "/" Sent',
            '* LIST (\\HasNoChildren \\Trash) "/" Trash']


def test_list_standard_mailboxes(session):
    assert session.command('LIST "" *') == STANDARD + ["TAG OK LIST completed"]
    assert session.command('LIST "" ""') == ['* LIST (\\Noselect) "/" ""', "TAG OK LIST completed"]
    assert session.command('LIST "" inbox') == [STANDARD[0], "TAG OK LIST completed"]
    assert session.command("NAMESPACE") == ['* NAMESPACE (("" "/")) NIL NIL', "TAG OK NAMESPACE completed"]


def test_create_hierarchy_and_wildcards(session):
    session.ok("CREATE Work/Projects/Alpha")
    assert session.command("CREATE Work/") == ["TAG NO [ALREADYEXISTS] Mailbox already exists"]
    assert session.command("CREATE Work") == ["TAG NO [ALREADYEXISTS] Mailbox already exists"]
    assert session.command("CREATE inbox") == ["TAG NO [ALREADYEXISTS] INBOX already exists"]
    assert session.command('LIST "" Work/%') == [
        '* LIST (\\HasChildren) "/" Work/Projects', "TAG OK LIST completed"]
    assert session.command('LIST Work/ *') == [
        '* LIST (\\HasChildren) "/" Work/Projects',
        '* LIST (\\HasNoChildren) "/" Work/Projects/Alpha', "TAG OK LIST completed"]
    assert session.command('LIST "" W%') == ['* LIST (\\HasChildren) "/" Work', "TAG OK LIST completed"]


def test_create_special_use(session):
    session.ok("CREATE Archive (USE (\\Archive))")
    assert session.command('LIST "" Archive') == [
        '* LIST (\\HasNoChildren \\Archive) "/" Archive', "TAG OK LIST completed"]
    assert session.command("CREATE Other (USE (\\Bogus))") == [
        "TAG NO [USEATTR] Unsupported special use \\Bogus"]
    assert session.command('LIST (SPECIAL-USE) "" *') == [
        '* LIST (\\HasNoChildren \\Archive) "/" Archive',
        '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
        '* LIST (\\HasNoChildren \\Junk) "/" Junk',
        '* LIST (\\HasNoChildren \\Sent) "/" Sent',
        '* LIST (\\HasNoChildren \\Trash) "/" Trash', "TAG OK LIST completed"]


def test_modified_utf7_names(session):
    session.ok('CREATE "Entw&APw-rfe"')
    assert session.command('LIST "" Entw*') == [
        '* LIST (\\HasNoChildren) "/" Entw&APw-rfe', "TAG OK LIST completed"]
    assert session.command('CREATE "bad&-name&AAA"')[-1].startswith("TAG NO [CANNOT]")


def test_delete(session):
    session.ok("CREATE a/b")
    session.ok("DELETE a")
    assert session.command('LIST "" *') == STANDARD + [
        '* LIST (\\Noselect \\HasChildren) "/" a', '* LIST (\\HasNoChildren) "/" a/b',
        "TAG OK LIST completed"]
    assert session.command("DELETE a") == ["TAG NO [NONEXISTENT] Mailbox a does not exist"]
    assert session.command("DELETE INBOX") == ["TAG NO [CANNOT] INBOX cannot be deleted"]
    session.ok("DELETE a/b")
    assert session.command('LIST "" a*') == ["TAG OK LIST completed"]


def test_rename_with_children(session):
    session.ok("CREATE a/b/c")
    session.ok("SUBSCRIBE a/b")
    session.ok("RENAME a/b x/y")
    assert session.command('LIST "" x*') == [
        '* LIST (\\HasChildren) "/" x', '* LIST (\\HasChildren) "/" x/y',
        '* LIST (\\HasNoChildren) "/" x/y/c', "TAG OK LIST completed"]
    assert session.command('LSUB "" x/*') == ['* LSUB () "/" x/y', "TAG OK LSUB completed"]
    assert session.command("RENAME nope z") == ["TAG NO [NONEXISTENT] Mailbox nope does not exist"]
    assert session.command("RENAME x Sent") == ["TAG NO [ALREADYEXISTS] Mailbox Sent already exists"]


def test_rename_inbox_moves_messages(session, deliver):
    from tests.imap.conftest import message
    deliver(session.account.address, message("one"))
    deliver(session.account.address, message("two"))
    session.ok("RENAME INBOX Old")
    assert session.command("STATUS INBOX (MESSAGES UIDNEXT)") == [
        "* STATUS INBOX (MESSAGES 0 UIDNEXT 3)", "TAG OK STATUS completed"]
    assert session.command("STATUS Old (MESSAGES UIDNEXT UNSEEN)") == [
        "* STATUS Old (MESSAGES 2 UIDNEXT 3 UNSEEN 2)", "TAG OK STATUS completed"]
    session.ok("SELECT Old")
    assert session.command("UID FETCH 1:* (FLAGS)") == [
        "* 1 FETCH (UID 1 FLAGS (\\Recent))", "* 2 FETCH (UID 2 FLAGS (\\Recent))",
        "TAG OK UID FETCH completed"]


def test_subscribe_lsub(session):
    session.ok("CREATE Lists/Python")
    session.ok("SUBSCRIBE Lists/Python")
    session.ok("SUBSCRIBE Ghost")
    assert session.command('LSUB "" %') == [
        '* LSUB () "/" INBOX', '* LSUB (\\Drafts) "/" Drafts', '* LSUB (\\Noselect) "/" Ghost',
        '* LSUB (\\Junk) "/" Junk', '* LSUB (\\Noselect) "/" Lists', '* LSUB (\\Sent) "/" Sent',
        '* LSUB (\\Trash) "/" Trash', "TAG OK LSUB completed"]
    session.ok("UNSUBSCRIBE Ghost")
    assert session.command('LSUB "" G*') == ["TAG OK LSUB completed"]
    assert session.command('LIST (SUBSCRIBED) "" L*') == [
        '* LIST (\\HasNoChildren \\Subscribed) "/" Lists/Python', "TAG OK LIST completed"]
