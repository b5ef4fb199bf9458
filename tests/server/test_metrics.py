"""``--http-port``: /metrics added up over every worker, /health that tells the truth.

A real ``bin/geomail`` with two workers; mail and IMAP commands go through
both (connections are spread by the kernel), then /metrics must show all
of them, however the work was split.  /health turns 503 with the reason
when the blob store stops answering and 200 again when it is back.
"""

import imaplib
import re
import smtplib
import urllib.error
import urllib.request

import pytest

from tests.fixtures.faults import PrivateS3
from tests.fixtures.server import GeomailProcess, wait_for
from tests.fixtures.services import free_port
from tests.fixtures.storage import TestStorage
from geomail.store.accounts import create_account

MESSAGE = "Subject: metrics\r\n\r\nhello\r\n"


def get(port, path):
    """(status, body) of one GET to the operator endpoint."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def value(text, name, **labels):
    """The sample ``name{labels}`` of a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{key}="{val}"' for key, val in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
        if found == wanted:
            return float(match.group(3))
    return 0.0


@pytest.fixture
def server(tmp_path, test_storage):
    port = free_port()
    proc = GeomailProcess(tmp_path / "geomail", test_storage, workers=2,
                          extra_args=["--http-port", str(port)])
    proc.http_port = port
    proc.start()
    proc.wait_workers(2)
    yield proc
    proc.stop()


def test_metrics_add_up_every_worker(server, test_storage):
    db = test_storage.open_db()
    try:
        account = create_account(db, "metrics@example.com", "pw")
    finally:
        db.close()
    before = get(server.http_port, "/metrics")[1]    # the fixture's port probes count too
    for _ in range(6):                       # six connections: both workers take some
        with smtplib.SMTP("127.0.0.1", server.smtp_port) as client:
            client.sendmail("a@example.net", [account.address], MESSAGE)
    with smtplib.SMTP("127.0.0.1", server.smtp_port) as client:
        code, _ = client.docmd("RCPT TO:<x@example.com>")   # out of sequence: 503
        assert code == 503
    for _ in range(4):
        imap = imaplib.IMAP4("127.0.0.1", server.imap_port)
        imap.login(account.address, "pw")
        imap.select("INBOX")
        imap.fetch("1:*", "(FLAGS)")
        imap.logout()

    status, text = get(server.http_port, "/metrics")
    assert status == 200
    assert value(text, "geomail_smtp_messages_stored_total") == 6
    # (>=: a port probe of the fixture may reach a worker after the first snapshot)
    sessions = value(text, "geomail_smtp_sessions_total") - value(before, "geomail_smtp_sessions_total")
    assert sessions >= 7
    assert value(text, "geomail_smtp_received_bytes_total") >= 6 * len(MESSAGE)
    assert value(text, "geomail_smtp_time_to_250_seconds_count") == 6
    assert value(text, "geomail_smtp_refused_total", reason="need_mail") == 1
    assert value(text, "geomail_imap_sessions_total") - value(before, "geomail_imap_sessions_total") >= 4
    assert value(text, "geomail_imap_commands_total", command="LOGIN", result="ok") == 4
    assert value(text, "geomail_imap_commands_total", command="FETCH", result="ok") == 4
    assert value(text, "geomail_imap_command_seconds_count", command="SELECT") == 4
    assert value(text, "geomail_store_pool_wait_seconds_count") > 0
    assert value(text, "geomail_store_connection_seconds_count", use="transaction") >= 6
    assert any(line.startswith("geomail_blob_request_seconds_count{") for line in text.splitlines())
    # every connection above is closed: nothing open is left counted
    wait_for(lambda: value(get(server.http_port, "/metrics")[1], "geomail_connections_open",
                           protocol="imap") == 0, timeout=10, message="IMAP connections to close")


def test_health_is_ok_when_everything_answers(server):
    # the master reports about once a second; its first report comes with the workers
    wait_for(lambda: get(server.http_port, "/health")[0] == 200, timeout=10, message="healthy")
    assert get(server.http_port, "/health") == (200, "ok\n")
    assert get(server.http_port, "/nothing")[0] == 404


def test_endpoint_listens_on_loopback_only_by_default(server):
    import socket
    listening = [line for line in server.output().splitlines() if "geomail ready:" in line]
    assert listening and f"HTTP /metrics /health 127.0.0.1:{server.http_port}" in listening[0]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", server.http_port), timeout=2)


@pytest.mark.mysql_s3
def test_health_says_what_is_down(tmp_path, fresh_db_url):
    s3 = PrivateS3().start()
    port = free_port()
    storage = TestStorage("mysql", db_url=fresh_db_url(), s3_endpoint=s3.endpoint,
                          bucket="health-check")
    proc = GeomailProcess(tmp_path / "geomail", storage, workers=2,
                          extra_args=["--http-port", str(port)])
    try:
        proc.start()
        proc.wait_workers(2)
        wait_for(lambda: get(port, "/health")[0] == 200, timeout=10, message="healthy")
        assert get(port, "/health") == (200, "ok\n")
        s3.stop()
        status, text = get(port, "/health")
        assert status == 503 and text.startswith("blob store: "), text
        s3.start()
        wait_for(lambda: get(port, "/health")[0] == 200, timeout=30, message="healthy again")
    finally:
        proc.stop()
        s3.stop()
