"""PREVIEW (RFC 8970): FETCH PREVIEW and PREVIEW (LAZY), computed at delivery or once on request."""

from tests.imap.conftest import message, multipart

HTML = (b"From: a@example.org\r\nTo: b@example.com\r\nSubject: html\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><title>Title</title><style>p { color: red }</style></head>\r\n"
        b"<body><!-- hidden --><p>Caf&eacute; &amp; <b>bar</b></p>\r\n\r\n<div>next</div></body></html>\r\n")
ALTERNATIVE = (b"From: a@example.org\r\nTo: b@example.com\r\nSubject: alt\r\nMIME-Version: 1.0\r\n"
               b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
               b"--b\r\nContent-Type: text/plain\r\n\r\nplain\tversion\r\n"
               b"--b\r\nContent-Type: text/html\r\n\r\n<p>html version</p>\r\n--b--\r\n")
ONLY_ATTACHMENT = (b"From: a@example.org\r\nTo: b@example.com\r\nSubject: bin\r\nMIME-Version: 1.0\r\n"
                   b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                   b"AAECAwQF\r\n")


def test_preview_of_each_kind_of_message(session, deliver):
    address = session.account.address
    deliver(address, message("plain", body="  Hello   there,\r\n\r\n\tfriend.  \r\n"))
    deliver(address, HTML)
    deliver(address, ALTERNATIVE)
    deliver(address, ONLY_ATTACHMENT)
    deliver(address, message("empty", body=""))
    deliver(address, multipart()[0])
    session.ok("SELECT INBOX")
    assert session.command("FETCH 1:6 PREVIEW") == [
        '* 1 FETCH (PREVIEW "Hello there, friend.")',
        '* 2 FETCH (PREVIEW {16}\r\nCaf\u00e9 & bar next)',
        '* 3 FETCH (PREVIEW "plain version")',
        "* 4 FETCH (PREVIEW NIL)",
        "* 5 FETCH (PREVIEW NIL)",
        '* 6 FETCH (PREVIEW "See the attached file, zebra.")',
        "TAG OK FETCH completed"]
    assert session.command("FETCH 1 (PREVIEW (LAZY) UID)") == [
        '* 1 FETCH (PREVIEW "Hello there, friend." UID 1)', "TAG OK FETCH completed"]
    assert session.command("UID FETCH 3 PREVIEW (lazy)") == [
        '* 3 FETCH (UID 3 PREVIEW "plain version")', "TAG OK UID FETCH completed"]
    assert session.command("FETCH 1 (FLAGS PREVIEW)") == [
        '* 1 FETCH (FLAGS (\\Recent) PREVIEW "Hello there, friend.")', "TAG OK FETCH completed"]


def test_long_text_is_cut_at_256_characters(session, deliver):
    words = " ".join(f"w\u00e9rd{n}" for n in range(200))
    deliver(session.account.address, message("long", body=words + "\r\n"))
    session.ok("SELECT INBOX")
    lines = session.command("FETCH 1 PREVIEW")
    expected = words[:256].encode("utf-8")
    assert lines == ['* 1 FETCH (PREVIEW {%d}\r\n%s)' % (len(expected), words[:256]),
                     "TAG OK FETCH completed"]
    assert len(words[:256]) == 256


def test_older_messages_get_a_preview_on_first_request(session, deliver, db):
    address = session.account.address
    deliver(address, message("before", body="Stored before previews were kept.\r\n"))
    deliver(address, ONLY_ATTACHMENT)
    query = ("SELECT c.preview FROM message_contents c JOIN messages m ON m.content_id = c.id "
             "JOIN mailboxes b ON b.id = m.mailbox_id JOIN accounts a ON a.id = b.account_id "
             "WHERE a.address = %s ORDER BY m.uid")
    with db.transaction() as cur:
        cur.execute("UPDATE message_contents SET preview = NULL WHERE id IN (SELECT m.content_id "
                    "FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id JOIN accounts a "
                    "ON a.id = b.account_id WHERE a.address = %s)", (address,))
    with db.cursor() as cur:
        cur.execute(query, (address,))
        assert [r[0] for r in cur.fetchall()] == [None, None]
    session.ok("SELECT INBOX")
    assert session.command("FETCH 1:2 PREVIEW") == [
        '* 1 FETCH (PREVIEW "Stored before previews were kept.")', "* 2 FETCH (PREVIEW NIL)",
        "TAG OK FETCH completed"]
    with db.cursor() as cur:
        cur.execute(query, (address,))
        assert [r[0] for r in cur.fetchall()] == ["Stored before previews were kept.", ""]


def test_bad_modifiers(session, deliver):
    deliver(session.account.address, message("m"))
    session.ok("SELECT INBOX")
    assert session.command("FETCH 1 PREVIEW (FUZZY)") == [
        "TAG BAD Syntax error: unknown PREVIEW modifier FUZZY"]
    assert session.command("FETCH 1 PREVIEW ()")[-1].startswith(
        "TAG BAD Syntax error: expected preview modifier")
    assert session.command("FETCH 1 PREVIEW (LAZY")[-1].startswith("TAG BAD Syntax error")
    assert session.command("FETCH 1 (PREVIEW (LAZY LAZY))") == [
        '* 1 FETCH (PREVIEW "Hi there.")', "TAG OK FETCH completed"]
    assert session.command("FETCH 1 PREVIEW.PEEK") == [
        "TAG BAD Syntax error: unknown FETCH item PREVIEW.PEEK"]


def test_capability(session):
    assert "PREVIEW" in session.command("CAPABILITY")[0].split()
