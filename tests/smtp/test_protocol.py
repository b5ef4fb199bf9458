"""The SMTP conversation: every reply code, limits, pipelining, BDAT, STARTTLS.

Driven over real sockets and smtplib against a real bin/geomail; stored
results are checked in MariaDB and SeaweedFS.
"""

import smtplib
import socket
import ssl
import time

import pytest

from geomail.smtp.replies import REPLIES
from geomail.store.accounts import create_account
from tests.fixtures.server import GeomailProcess
from tests.fixtures.services import free_port
from tests.fixtures.smtpwire import SMTPWire


def expected(reply_name, **fields):
    """The reply text geomail sends for table entry `reply_name`."""
    code, enhanced, text = REPLIES[reply_name]
    text = text.format(**fields) if fields else text
    return f"{code} {enhanced} {text}" if enhanced else f"{code} {text}"


@pytest.fixture(scope="module")
def tight(tmp_path_factory, test_storage, tls_pair):
    """A one-worker server with small limits, TLS, implicit TLS and no auto-creation."""
    cert, key = tls_pair
    smtps_port = free_port()
    proc = GeomailProcess(
        tmp_path_factory.mktemp("tight"), test_storage, workers=1,
        extra_args=["--max-message-size", "200K", "--max-recipients", "3",
                    "--max-bad-commands", "3", "--smtp-timeout", "2", "--max-connections", "5",
                    "--tls-cert", cert, "--tls-key", key, "--smtps-port", str(smtps_port),
                    "--auto-create-accounts", "false"])
    proc.smtps_port = smtps_port
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def wire(geomail_server):
    with SMTPWire(geomail_server.smtp_port) as client:
        yield client


def ehlo(client):
    reply = client.cmd("EHLO client.example")
    assert reply.startswith("250-")
    return reply


def simple_message(subject="test"):
    return (f"From: sender@example.net\r\nTo: someone@example.com\r\nSubject: {subject}\r\n"
            "Message-ID: <1@example.net>\r\n\r\nHello.\r\n")


class TestSession:
    def test_greeting_and_ehlo_extensions(self, wire):
        assert wire.greeting == "220 mx.test.invalid ESMTP geomail"
        assert ehlo(wire).split("\n") == [
            "250-mx.test.invalid Hello client.example", "250-PIPELINING", "250-SIZE 52428800",
            "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250-SMTPUTF8", "250-CHUNKING",
            "250 HELP"]

    def test_helo(self, wire):
        assert wire.cmd("HELO client.example") == "250 mx.test.invalid Hello client.example"

    def test_simple_commands(self, wire):
        assert wire.cmd("NOOP") == expected("ok")
        assert wire.cmd("RSET") == expected("ok")
        assert wire.cmd("VRFY someone") == expected("vrfy")
        assert wire.cmd("HELP") == expected("help")
        assert wire.cmd("QUIT") == expected("bye")
        assert wire.closed()

    def test_unknown_command_and_session_goes_on(self, wire):
        assert wire.cmd("FROBNICATE now") == expected("unknown_command")
        assert wire.cmd("NOOP") == expected("ok")

    def test_command_line_too_long(self, wire):
        assert wire.cmd("NOOP " + "x" * 2000) == expected("line_too_long")
        assert wire.cmd("NOOP") == expected("ok")

    def test_missing_arguments(self, wire):
        assert wire.cmd("EHLO") == expected("syntax")
        assert wire.cmd("HELO") == expected("syntax")
        assert wire.cmd("VRFY") == expected("syntax")


class TestSequence:
    def test_mail_needs_helo(self, wire):
        assert wire.cmd("MAIL FROM:<a@example.net>") == expected("need_helo")

    def test_rcpt_needs_mail(self, wire):
        ehlo(wire)
        assert wire.cmd("RCPT TO:<x@example.com>") == expected("need_mail")

    def test_data_needs_mail_and_recipients(self, wire):
        ehlo(wire)
        assert wire.cmd("DATA") == expected("need_mail")
        assert wire.cmd("MAIL FROM:<a@example.net>") == expected("sender_ok")
        assert wire.cmd("DATA") == expected("no_valid_recipients")

    def test_nested_mail(self, wire):
        ehlo(wire)
        assert wire.cmd("MAIL FROM:<a@example.net>") == expected("sender_ok")
        assert wire.cmd("MAIL FROM:<a@example.net>") == expected("nested_mail")

    def test_rset_ends_the_transaction(self, wire):
        ehlo(wire)
        wire.cmd("MAIL FROM:<a@example.net>")
        assert wire.cmd("RSET") == expected("ok")
        assert wire.cmd("RCPT TO:<x@example.com>") == expected("need_mail")


class TestAddresses:
    @pytest.mark.parametrize("arg", ["FROM:a@example.net", "FROM:<a@>", "FROM:<@example.net>",
                                     "FROM:<a..b@example.net>", "FROM:<a@exa mple.net>",
                                     "FROM:<a@example.net", "FRM:<a@example.net>"])
    def test_bad_sender_syntax(self, wire, arg):
        ehlo(wire)
        assert wire.cmd(f"MAIL {arg}").startswith("501 5.1.7 ")

    @pytest.mark.parametrize("arg", ["TO:x@example.com", "TO:<x@>", "TO:<>",
                                     'TO:<"unterminated@example.com>', "TO:<x y@example.com>"])
    def test_bad_recipient_syntax(self, wire, arg):
        ehlo(wire)
        wire.cmd("MAIL FROM:<a@example.net>")
        assert wire.cmd(f"RCPT {arg}").startswith("501 5.1.3 ")

    def test_never_relays(self, wire):
        ehlo(wire)
        wire.cmd("MAIL FROM:<a@example.net>")
        assert wire.cmd("RCPT TO:<victim@elsewhere.example>") == expected("relay_denied")
        assert wire.cmd("RCPT TO:<x@[127.0.0.1]>") == expected("relay_denied")

    def test_null_sender_is_accepted(self, geomail_server, maildb, address):
        with smtplib.SMTP("127.0.0.1", geomail_server.smtp_port) as client:
            client.sendmail("<>", [address], simple_message("bounce"))
        (row,) = maildb.messages(address)
        assert row["trace"].startswith(b"Return-Path: <>\r\n")

    def test_quoted_local_part(self, geomail_server, maildb):
        with SMTPWire(geomail_server.smtp_port) as client:
            ehlo(client)
            assert client.cmd('MAIL FROM:<"john doe"@example.net>') == expected("sender_ok")
            assert client.cmd('RCPT TO:<"quoted.rcpt"@example.com>') == expected("recipient_ok")
            assert client.cmd("DATA").startswith("354 ")
            client.send(simple_message() + ".\r\n")
            assert client.reply().startswith("250 2.0.0 ")
        (row,) = maildb.messages("quoted.rcpt@example.com")
        assert b'Return-Path: <"john doe"@example.net>' in row["trace"]

    def test_utf8_address_needs_smtputf8(self, wire):
        ehlo(wire)
        assert wire.cmd("MAIL FROM:<jösé@example.net>") == expected("utf8_required")
        assert wire.cmd("MAIL FROM:<a@example.net>") == expected("sender_ok")
        assert wire.cmd("RCPT TO:<ünï@example.com>") == expected("utf8_required")

    def test_utf8_address_with_smtputf8(self, geomail_server, maildb):
        with SMTPWire(geomail_server.smtp_port) as client:
            ehlo(client)
            assert client.cmd("MAIL FROM:<jösé@example.net> SMTPUTF8") == expected("sender_ok")
            assert client.cmd("RCPT TO:<ünïcode@example.com>") == expected("recipient_ok")
            assert client.cmd("DATA").startswith("354 ")
            client.send("Subject: ünïcode\r\n\r\nbody\r\n.\r\n")
            assert client.reply().startswith("250 2.0.0 ")
        (row,) = maildb.messages("ünïcode@example.com")
        assert "with UTF8SMTP id".encode() in row["trace"]
        assert maildb.message_bytes(row) == "Subject: ünïcode\r\n\r\nbody\r\n".encode()

    def test_postmaster_without_domain(self, wire):
        ehlo(wire)
        wire.cmd("MAIL FROM:<a@example.net>")
        assert wire.cmd("RCPT TO:<Postmaster>") == expected("recipient_ok")

    def test_postmaster_needs_the_to_keyword(self, wire):
        ehlo(wire)
        wire.cmd("MAIL FROM:<a@example.net>")
        for line in ("RCPT XYZ:<postmaster>", "RCPT <TO:<postmaster>", "RCPT FROM:<Postmaster>"):
            assert wire.cmd(line).startswith("501 5.1.3 "), line

    def test_duplicate_recipient_gets_one_copy(self, geomail_server, maildb, address):
        with smtplib.SMTP("127.0.0.1", geomail_server.smtp_port) as client:
            client.sendmail("a@example.net", [address, address.upper()], simple_message())
        assert len(maildb.messages(address)) == 1


class TestMailParameters:
    def test_size_over_the_limit(self, wire):
        ehlo(wire)
        assert wire.cmd("MAIL FROM:<a@example.net> SIZE=999999999") == expected("too_big")
        assert wire.cmd("MAIL FROM:<a@example.net> SIZE=1000") == expected("sender_ok")

    def test_bad_and_unknown_parameters(self, wire):
        ehlo(wire)
        assert wire.cmd("MAIL FROM:<a@example.net> SIZE=big") == expected("bad_parameter", name="SIZE")
        assert wire.cmd("MAIL FROM:<a@example.net> BODY=BINARYMIME") == expected(
            "bad_parameter", name="BODY")
        assert wire.cmd("MAIL FROM:<a@example.net> FOO=1") == expected("unknown_parameter", name="FOO")
        assert wire.cmd("MAIL FROM:<a@example.net> BODY=8BITMIME SMTPUTF8") == expected("sender_ok")
        assert wire.cmd("RCPT TO:<x@example.com> NOTIFY=NEVER") == expected(
            "unknown_parameter", name="NOTIFY")


class TestData:
    def test_delivery_stores_exact_bytes_with_trace_headers(self, geomail_server, maildb, address):
        body = ("From: a@example.net\r\nSubject: exact\r\n\r\nline one\r\n..leading dot\r\n"
                ".\tdot tab\r\n\r\n")
        with SMTPWire(geomail_server.smtp_port) as client:
            ehlo(client)
            client.cmd("MAIL FROM:<a@example.net>")
            client.cmd(f"RCPT TO:<{address}>")
            assert client.cmd("DATA") == expected("data_go")
            client.send(body.replace("\r\n.", "\r\n..") + ".\r\n")
            reply = client.reply()
            assert reply.startswith("250 2.0.0 OK: stored as ")
        (row,) = maildb.messages(address)
        assert maildb.message_bytes(row) == body.encode()
        trace = row["trace"].decode()
        assert trace.startswith("Return-Path: <a@example.net>\r\nReceived: from client.example")
        assert f"by mx.test.invalid (geomail) with ESMTP id {reply.split()[-1]}" in trace
        assert f"for <{address}>;" in trace
        assert row["rfc822_size"] == len(row["trace"]) + len(body)
        assert row["subject"] == "exact"

    def test_bare_lf_and_cr_become_crlf(self, geomail_server, maildb, address):
        with SMTPWire(geomail_server.smtp_port) as client:
            ehlo(client)
            client.cmd("MAIL FROM:<a@example.net>")
            client.cmd(f"RCPT TO:<{address}>")
            client.cmd("DATA")
            client.send(b"Subject: lf\n\nbare lf\nbare cr\rend\r\n.\r\n")
            assert client.reply().startswith("250 ")
        (row,) = maildb.messages(address)
        assert maildb.message_bytes(row) == b"Subject: lf\r\n\r\nbare lf\r\nbare cr\r\nend\r\n"

    def test_no_smuggling_with_lf_dot_lf(self, geomail_server, maildb, address):
        """Only <CRLF>.<CRLF> ends DATA (the SMTP smuggling attack uses <LF>.<LF>)."""
        smuggled = ("Subject: outer\r\n\r\nhello\n.\nMAIL FROM:<evil@example.net>\r\n"
                    "RCPT TO:<victim@example.com>\r\nDATA\r\nhi\n.\r\nstill data\r\n.\r\n")
        with SMTPWire(geomail_server.smtp_port) as client:
            ehlo(client)
            client.cmd("MAIL FROM:<a@example.net>")
            client.cmd(f"RCPT TO:<{address}>")
            client.cmd("DATA")
            client.send(smuggled)
            assert client.reply().startswith("250 ")
            assert client.cmd("NOOP") == expected("ok")     # nothing else was executed
        (row,) = maildb.messages(address)
        stored = maildb.message_bytes(row)
        assert b"MAIL FROM:<evil@example.net>" in stored and stored.endswith(b"still data\r\n")

    def test_message_without_final_crlf(self, geomail_server, maildb, address):
        with SMTPWire(geomail_server.smtp_port) as client:
            ehlo(client)
            client.cmd("MAIL FROM:<a@example.net>")
            client.cmd(f"RCPT TO:<{address}>")
            client.cmd("DATA")
            client.send(".\r\n")                       # an empty message
            assert client.reply().startswith("250 ")
        (row,) = maildb.messages(address)
        assert maildb.message_bytes(row) == b""

    def test_several_recipients_share_one_content(self, geomail_server, maildb):
        recipients = [f"share{i}-{time.time_ns()}@example.org" for i in range(3)]
        with smtplib.SMTP("127.0.0.1", geomail_server.smtp_port) as client:
            client.sendmail("a@example.net", recipients, simple_message("shared"))
        rows = [maildb.messages(r)[0] for r in recipients]
        assert len({row["content_id"] for row in rows}) == 1
        (refcount,) = maildb.query("SELECT refcount FROM message_contents WHERE id = %s",
                                   rows[0]["content_id"])[0]
        assert refcount == 3
        for recipient, row in zip(recipients, rows):
            assert f"for <{recipient}>".encode() in row["trace"]

    def test_new_address_gets_an_account_with_standard_mailboxes(self, geomail_server, maildb,
                                                                 address):
        with smtplib.SMTP("127.0.0.1", geomail_server.smtp_port) as client:
            client.sendmail("a@example.net", [address], simple_message())
        names = {r[0] for r in maildb.query(
            "SELECT b.name FROM mailboxes b JOIN accounts a ON a.id = b.account_id"
            " WHERE a.address = %s", address)}
        assert names == {"INBOX", "Sent", "Drafts", "Trash", "Junk"}
        (hashed,) = maildb.query("SELECT password_hash FROM accounts WHERE address = %s",
                                 address)[0]
        assert hashed is None       # no password: cannot log in until an operator sets one

    def test_uids_increase(self, geomail_server, maildb, address):
        with smtplib.SMTP("127.0.0.1", geomail_server.smtp_port) as client:
            for n in range(3):
                client.sendmail("a@example.net", [address], simple_message(f"n{n}"))
        assert [row["uid"] for row in maildb.messages(address)] == [1, 2, 3]


class TestPipelining:
    def test_pipelined_transaction(self, geomail_server, maildb, address):
        with SMTPWire(geomail_server.smtp_port) as client:
            ehlo(client)
            client.send(f"MAIL FROM:<a@example.net>\r\nRCPT TO:<{address}>\r\n"
                        "RCPT TO:<nobody@elsewhere.example>\r\nDATA\r\n")
            assert client.reply() == expected("sender_ok")
            assert client.reply() == expected("recipient_ok")
            assert client.reply() == expected("relay_denied")
            assert client.reply() == expected("data_go")
            client.send(simple_message("pipelined") + ".\r\nRSET\r\nNOOP\r\nQUIT\r\n")
            assert client.reply().startswith("250 2.0.0 OK: stored as ")
            assert client.reply() == expected("ok")
            assert client.reply() == expected("ok")
            assert client.reply() == expected("bye")
        assert [row["subject"] for row in maildb.messages(address)] == ["pipelined"]


class TestChunking:
    def test_bdat_chunks(self, geomail_server, maildb, address):
        message = simple_message("chunked").encode() + b"second line\r\n"
        with SMTPWire(geomail_server.smtp_port) as client:
            ehlo(client)
            client.cmd("MAIL FROM:<a@example.net>")
            client.cmd(f"RCPT TO:<{address}>")
            first, second = message[:37], message[37:]
            client.send(b"BDAT %d\r\n" % len(first) + first)
            assert client.reply() == expected("chunk_ok", size=len(first))
            client.send(b"BDAT %d LAST\r\n" % len(second) + second)
            assert client.reply().startswith("250 2.0.0 OK: stored as ")
            assert client.cmd("NOOP") == expected("ok")
        (row,) = maildb.messages(address)
        assert maildb.message_bytes(row) == message

    def test_bdat_zero_last_and_pipelined(self, geomail_server, maildb, address):
        with SMTPWire(geomail_server.smtp_port) as client:
            ehlo(client)
            client.send(f"MAIL FROM:<a@example.net>\r\nRCPT TO:<{address}>\r\n"
                        "BDAT 11\r\nSubject: x\nBDAT 0 LAST\r\n")
            assert client.reply() == expected("sender_ok")
            assert client.reply() == expected("recipient_ok")
            assert client.reply() == expected("chunk_ok", size=11)
            assert client.reply().startswith("250 2.0.0 OK: stored as ")
        (row,) = maildb.messages(address)
        assert maildb.message_bytes(row) == b"Subject: x\r\n"       # bare LF made CRLF

    def test_data_after_bdat_is_refused(self, wire, address):
        ehlo(wire)
        wire.cmd("MAIL FROM:<a@example.net>")
        wire.cmd(f"RCPT TO:<{address}>")
        wire.send(b"BDAT 4\r\nabcd")
        assert wire.reply() == expected("chunk_ok", size=4)
        assert wire.cmd("DATA") == expected("data_after_bdat")

    def test_bdat_without_transaction_still_reads_the_chunk(self, wire):
        ehlo(wire)
        wire.send(b"BDAT 5\r\nNOOP\n")
        assert wire.reply() == expected("need_mail")
        assert wire.cmd("NOOP") == expected("ok")

    def test_bdat_bad_syntax(self, wire):
        ehlo(wire)
        assert wire.cmd("BDAT") == expected("syntax")
        assert wire.cmd("BDAT x LAST") == expected("syntax")


class TestLimits:
    def test_too_many_recipients(self, tight):
        create_account_once(tight, [f"lim{i}@example.com" for i in range(4)])
        with SMTPWire(tight.smtp_port) as client:
            ehlo(client)
            client.cmd("MAIL FROM:<a@example.net>")
            for i in range(3):
                assert client.cmd(f"RCPT TO:<lim{i}@example.com>") == expected("recipient_ok")
            assert client.cmd("RCPT TO:<lim3@example.com>") == expected("too_many_recipients")

    def test_unknown_user_without_auto_creation(self, tight):
        with SMTPWire(tight.smtp_port) as client:
            ehlo(client)
            client.cmd("MAIL FROM:<a@example.net>")
            assert client.cmd("RCPT TO:<nobody-here@example.com>") == expected("user_unknown")

    def test_oversized_message_is_drained_then_refused(self, tight, maildb):
        create_account_once(tight, ["big@example.com"])
        with SMTPWire(tight.smtp_port) as client:
            ehlo(client)
            assert "250-SIZE 204800" in ehlo(client)
            client.cmd("MAIL FROM:<a@example.net>")
            client.cmd("RCPT TO:<big@example.com>")
            client.cmd("DATA")
            client.send(b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 300 + b".\r\n")
            assert client.reply() == expected("too_big")
            client.cmd("MAIL FROM:<a@example.net>")
            client.cmd("RCPT TO:<big@example.com>")
            client.cmd("DATA")
            client.send(simple_message("small") + ".\r\n")
            assert client.reply().startswith("250 ")
        assert [row["subject"] for row in maildb.messages("big@example.com")] == ["small"]

    def test_oversized_bdat(self, tight, maildb):
        create_account_once(tight, ["bigbdat@example.com"])
        with SMTPWire(tight.smtp_port) as client:
            ehlo(client)
            client.cmd("MAIL FROM:<a@example.net>")
            client.cmd("RCPT TO:<bigbdat@example.com>")
            chunk = b"y" * 150000
            client.send(b"BDAT %d\r\n" % len(chunk) + chunk)
            assert client.reply() == expected("chunk_ok", size=len(chunk))
            client.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
            assert client.reply() == expected("too_big")
            assert client.cmd("NOOP") == expected("ok")
        assert maildb.messages("bigbdat@example.com") == []

    def test_too_many_bad_commands_closes(self, tight):
        with SMTPWire(tight.smtp_port) as client:
            assert client.cmd("BOGUS") == expected("unknown_command")
            assert client.cmd("BOGUS") == expected("unknown_command")
            assert client.cmd("BOGUS") == expected("too_many_errors")
            assert client.closed()

    def test_idle_timeout(self, tight):
        with SMTPWire(tight.smtp_port) as client:
            started = time.monotonic()
            assert client.reply() == expected("timeout")
            assert 1.5 < time.monotonic() - started < 6
            assert client.closed()

    def test_too_many_connections(self, tight):
        clients = [SMTPWire(tight.smtp_port) for _ in range(5)]
        try:
            with SMTPWire(tight.smtp_port) as extra:
                assert extra.greeting == expected("too_many_connections")
                assert extra.closed()
        finally:
            for client in clients:
                client.close()
        time.sleep(0.3)
        with SMTPWire(tight.smtp_port) as again:
            assert again.greeting.startswith("220 ")


class TestTLS:
    def test_starttls(self, tight):
        assert "250-STARTTLS" in _ehlo_text(tight.smtp_port)
        create_account_once(tight, ["tls@example.com"])
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", tight.smtp_port, timeout=10) as client:
            client.ehlo()
            assert client.starttls(context=context)[0] == 220
            code, text = client.ehlo()
            assert code == 250 and b"STARTTLS" not in text
            assert client.docmd("STARTTLS") == (503, b"5.5.1 TLS already active")
            client.sendmail("a@example.net", ["tls@example.com"], simple_message("over tls"))

    def test_implicit_tls_port(self, tight):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP_SSL("127.0.0.1", tight.smtps_port, context=context, timeout=10) as client:
            code, text = client.ehlo()
            assert code == 250 and b"STARTTLS" not in text

    def test_starttls_unavailable_without_certificate(self, wire):
        ehlo(wire)
        assert wire.cmd("STARTTLS") == expected("tls_unavailable")

    def test_plaintext_pipelined_after_starttls_is_discarded(self, tight):
        """RFC 3207 4.2: commands sent with STARTTLS, before the handshake, are dropped."""
        raw = socket.create_connection(("127.0.0.1", tight.smtp_port), timeout=10)
        file = raw.makefile("rb")
        file.readline()
        raw.sendall(b"EHLO x\r\n")
        while not file.readline().startswith(b"250 "):
            pass
        raw.sendall(b"STARTTLS\r\nNOOP\r\n")
        assert file.readline().startswith(b"220 ")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        tls = context.wrap_socket(raw, server_hostname="localhost")
        tls.sendall(b"QUIT\r\n")
        assert tls.recv(100).startswith(b"221 ")     # not a reply to the injected NOOP
        tls.close()


def _ehlo_text(port):
    with SMTPWire(port) as client:
        return ehlo(client)


def create_account_once(server, addresses):
    from geomail.store.errors import AccountExists
    db = server.storage.open_db(1)
    try:
        for address in addresses:
            try:
                create_account(db, address)
            except AccountExists:
                pass
    finally:
        db.close()

