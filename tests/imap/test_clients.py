"""Scripted sessions with real client libraries: imaplib and imapclient."""

import imaplib

import imapclient

from tests.imap.conftest import PASSWORD, message, multipart


def test_imaplib_session(server, account, deliver):
    data, payload = multipart()
    deliver(account.address, data)
    deliver(account.address, message("Plain"))
    client = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
    try:
        assert client.login(account.address, PASSWORD)[0] == "OK"
        typ, count = client.select("INBOX")
        assert (typ, count) == ("OK", [b"2"])
        typ, hits = client.uid("SEARCH", None, "SUBJECT", "Plain")
        assert hits == [b"2"]
        typ, parts = client.uid("FETCH", "1", "(RFC822.SIZE BODY.PEEK[])")
        assert parts[0][1].endswith(data)
        typ, parts = client.fetch("1:2", "(FLAGS)")
        assert parts == [b"1 (FLAGS (\\Recent))", b"2 (FLAGS (\\Recent))"]
        assert client.store("2", "+FLAGS", "\\Deleted")[0] == "OK"
        assert client.expunge() == ("OK", [b"2"])
        assert client.create("Archive/2024")[0] == "OK"
        assert client.copy("1", "Archive/2024")[0] == "OK"
        typ, listing = client.list('""', "Archive*")
        assert listing == [b'(\\HasChildren) "/" Archive', b'(\\HasNoChildren) "/" Archive/2024']
        assert client.status("Archive/2024", "(MESSAGES UNSEEN)") == (
            "OK", [b'Archive/2024 (MESSAGES 1 UNSEEN 1)'])
        assert client.close()[0] == "OK"
    finally:
        client.logout()


def test_imapclient_session(server, account, deliver):
    deliver(account.address, message("One"))
    deliver(account.address, message("Two", "zebra\r\n"))
    with imapclient.IMAPClient("127.0.0.1", port=server.imap_port, ssl=False, timeout=10) as client:
        client.login(account.address, PASSWORD)
        assert b"MOVE" in client.capabilities() and client.has_capability("UIDPLUS")
        folders = client.list_folders()
        assert ((b"\\HasNoChildren", b"\\Sent"), b"/", "Sent") in folders
        assert client.find_special_folder(b"\\Sent") == "Sent"
        info = client.select_folder("INBOX")
        assert info[b"EXISTS"] == 2 and info[b"UIDNEXT"] == 3
        assert client.search(["BODY", "zebra"]) == [2]
        fetched = client.fetch([1, 2], ["ENVELOPE", "FLAGS", "RFC822.SIZE"])
        assert fetched[1][b"ENVELOPE"].subject == b"One"
        assert fetched[2][b"FLAGS"] == (b"\\Recent",)
        client.add_flags([1], [imapclient.SEEN, b"$Label"])
        assert client.get_flags([1]) == {1: (b"\\Seen", b"$Label", b"\\Recent")}
        client.move([2], "Trash")
        assert client.search() == [1]
        assert client.folder_status("Trash", ["MESSAGES"]) == {b"MESSAGES": 1}
        client.create_folder("Entwürfe")
        assert "Entwürfe" in [name for _, _, name in client.list_folders()]
        client.idle()
        deliver(account.address, message("Three"))
        responses = client.idle_check(timeout=2)
        client.idle_done()
        assert (2, b"EXISTS") in responses
        client.append("INBOX", message("Appended"), flags=[imapclient.DRAFT])
        assert client.search(["DRAFT"]) == [4]   # UIDs: 2 moved away, 3 delivered during IDLE
