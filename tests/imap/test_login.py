"""LOGIN, AUTHENTICATE PLAIN (with and without SASL-IR), failures, LOGINDISABLED."""

import base64
import imaplib
import socket
import ssl
import subprocess
import time

import pytest

from tests.imap.conftest import PASSWORD, Wire
from tests.imap.test_capability import POST_AUTH


def plain(user, password, authz=""):
    return base64.b64encode(f"{authz}\0{user}\0{password}".encode()).decode()


def test_login(wire, account):
    w = wire()
    assert w.command(f'LOGIN {account.address} "{PASSWORD}"') == [
        f"TAG OK [CAPABILITY {POST_AUTH}] Logged in"]
    assert w.command(f'LOGIN {account.address} "{PASSWORD}"') == [
        "TAG BAD LOGIN not allowed in the authenticated state"]


def test_login_literal_password(wire, account):
    w = wire()
    w.send(f"a LOGIN {account.address} {{{len(PASSWORD)}}}\r\n")
    assert w.readline() == b"+ Ready for literal data\r\n"
    w.send(PASSWORD + "\r\n")
    assert w.read_response("a")[-1].startswith("a OK [CAPABILITY")


def test_authenticate_plain_sasl_ir(wire, account):
    w = wire()
    lines = w.command(f"AUTHENTICATE PLAIN {plain(account.address, PASSWORD)}")
    assert lines == [f"TAG OK [CAPABILITY {POST_AUTH}] Logged in"]


def test_authenticate_plain_continuation(wire, account):
    w = wire()
    w.send("a AUTHENTICATE PLAIN\r\n")
    assert w.readline() == b"+ \r\n"
    w.send(plain(account.address, PASSWORD) + "\r\n")
    assert w.read_response("a") == [f"a OK [CAPABILITY {POST_AUTH}] Logged in"]


def test_authenticate_cancel_and_bad(wire, account):
    w = wire()
    w.send("a AUTHENTICATE PLAIN\r\n")
    assert w.readline() == b"+ \r\n"
    w.send("*\r\n")
    assert w.read_response("a") == ["a BAD AUTHENTICATE cancelled"]
    assert w.command("AUTHENTICATE CRAM-MD5") == ["TAG NO [CANNOT] Unsupported SASL mechanism CRAM-MD5"]
    assert w.command("AUTHENTICATE PLAIN !!!") == ["TAG BAD Invalid base64 in SASL response"]
    assert w.command(f"AUTHENTICATE PLAIN {plain(account.address, PASSWORD, 'other@example.com')}") == [
        "TAG NO [AUTHORIZATIONFAILED] Authorization as another user is not allowed"]


def test_failures_are_delayed_then_bye(wire, account):
    w = wire()
    started = time.monotonic()
    assert w.command(f"LOGIN {account.address} wrong") == ["TAG NO [AUTHENTICATIONFAILED] Authentication failed"]
    assert w.command("LOGIN nobody@example.com wrong") == ["TAG NO [AUTHENTICATIONFAILED] Authentication failed"]
    assert time.monotonic() - started >= 1.5          # 0.5 s, then 1 s
    w.send("a LOGIN x@example.com y\r\n")
    assert w.readline() == b"* BYE [AUTHENTICATIONFAILED] Too many failed logins\r\n"
    assert w.sock.recv(10) == b""


def make_cert(directory):
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=mx.test.invalid", "-addext", "subjectAltName=DNS:mx.test.invalid", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_require_tls_then_starttls(start_geomail, account, tmp_path):
    cert, key = make_cert(tmp_path)
    server = start_geomail(workers=1, extra_args=["--imap-require-tls", "true", "--tls-cert", str(cert),
                                                  "--tls-key", str(key)])
    w = Wire(server.imap_port)
    try:
        assert w.greeting == (b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE STARTTLS "
                              b"LOGINDISABLED] mx.test.invalid geomail IMAP4rev1 ready\r\n")
        assert w.command(f'LOGIN {account.address} "{PASSWORD}"') == [
            "TAG NO [PRIVACYREQUIRED] Use STARTTLS before LOGIN"]
        assert w.command(f"AUTHENTICATE PLAIN {plain(account.address, PASSWORD)}") == [
            "TAG NO [PRIVACYREQUIRED] Use STARTTLS before AUTHENTICATE"]
        assert w.command("STARTTLS") == ["TAG OK Begin TLS negotiation now"]
        context = ssl.create_default_context(cafile=str(cert))
        w.sock = context.wrap_socket(w.sock, server_hostname="mx.test.invalid")
        assert w.command("CAPABILITY") == [
            "* CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE AUTH=PLAIN",
            "TAG OK CAPABILITY completed"]
        assert w.command("STARTTLS") == ["TAG BAD TLS is already active"]
        w.login(account)
    finally:
        w.close()
    client = imaplib.IMAP4("127.0.0.1", server.imap_port)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False      # imaplib connects to 127.0.0.1
    client.starttls(context)
    assert client.login(account.address, PASSWORD)[0] == "OK"
    client.logout()


def test_implicit_tls_port(start_geomail, account, tls_pair):
    """--imaps-port (RFC 8314): TLS from the first byte; LOGIN allowed there even with
    --imap-require-tls, while the plaintext port still advertises LOGINDISABLED."""
    from tests.fixtures.services import free_port
    from tests.imap.conftest import message

    cert, key = tls_pair
    imaps_port = free_port()
    server = start_geomail(workers=1, extra_args=["--imaps-port", str(imaps_port), "--tls-cert", cert,
                                                  "--tls-key", key, "--imap-require-tls", "true"])
    import smtplib
    data = message("Over TLS", "Sent to be read over implicit TLS.\r\n")
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=20) as smtp:
        smtp.sendmail("alice@example.org", [account.address], data)

    context = ssl.create_default_context(cafile=cert)
    context.check_hostname = False          # the certificate names localhost; we dial 127.0.0.1
    client = imaplib.IMAP4_SSL("127.0.0.1", imaps_port, ssl_context=context, timeout=10)
    try:
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert client.welcome == (b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE AUTH=PLAIN] "
                                  b"mx.test.invalid geomail IMAP4rev1 ready")
        assert "STARTTLS" not in client.capabilities and "LOGINDISABLED" not in client.capabilities
        with pytest.raises(imaplib.IMAP4.error, match="TLS is already active"):
            client._simple_command("STARTTLS")
        assert client.login(account.address, PASSWORD)[0] == "OK"
        assert client.select("INBOX") == ("OK", [b"1"])
        typ, parts = client.fetch("1", "(BODY.PEEK[])")
        assert parts[0][1].endswith(data) and parts[0][1].startswith(b"Return-Path: <alice@example.org>\r\n")
    finally:
        client.logout()

    # the plaintext port of the same server refuses LOGIN until STARTTLS
    w = Wire(server.imap_port)
    try:
        assert b"LOGINDISABLED" in w.greeting and b"STARTTLS" in w.greeting
        assert w.command(f'LOGIN {account.address} "{PASSWORD}"') == [
            "TAG NO [PRIVACYREQUIRED] Use STARTTLS before LOGIN"]
    finally:
        w.close()

    # a plaintext client on the TLS port gets no greeting, the server does not hang
    with socket.create_connection(("127.0.0.1", imaps_port), timeout=10) as raw:
        raw.sendall(b"a1 CAPABILITY\r\n")
        reply = b""
        try:
            while chunk := raw.recv(4096):
                reply += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert b"* OK" not in reply and b"CAPABILITY IMAP4rev1" not in reply


def test_failure_log_line_is_clipped_and_names_the_address(wire, server):
    user = "x" * 5000 + "\r\n* forged line@example.com"
    w = wire()
    w.send(f"a LOGIN {{{len(user)}}}\r\n")
    assert w.readline() == b"+ Ready for literal data\r\n"
    w.send(user + " wrong\r\n")
    assert w.read_response("a") == ["a NO [AUTHENTICATIONFAILED] Authentication failed"]
    lines = [line for line in server.log_file.read_text(errors="replace").splitlines()
             if "IMAP login failed for xxxx" in line]
    assert lines and all(len(line) < 400 for line in lines)
    assert "from 127.0.0.1: wrong password or no such account" in lines[-1]
    assert "...(+" in lines[-1] and "forged" not in lines[-1]


def test_throttled_address_units():
    from geomail.imap.auth import address_subject
    assert address_subject(("192.0.2.7", 4711)) == "192.0.2.7"
    assert address_subject(("::ffff:192.0.2.7", 4711, 0, 0)) == "192.0.2.7"
    assert address_subject(("2001:db8:1:2:3:4:5:6", 4711, 0, 0)) == "2001:db8:1:2::/64"
    assert address_subject("unix-socket") == "unix-socket"
