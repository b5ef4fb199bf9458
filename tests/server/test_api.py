"""The management API on --http-port, driven by a real HTTP client (http.client) against
a running bin/geomail: a token or 401 and nothing changed, what geomail-admin does,
JSON errors with the right status, the OpenAPI description of every route."""

import http.client
import imaplib
import json
import os
import time

import pytest

from geomail import api
from tests.fixtures.server import GeomailProcess, wait_for
from tests.fixtures.services import free_port

TOKEN = "t0ken-" + "x" * 40


def start(tmp_path, storage, token):
    port = free_port()
    extra = ["--http-port", str(port)] + (["--admin-token", token] if token else [])
    proc = GeomailProcess(tmp_path / "geomail", storage, workers=2, extra_args=extra)
    proc.http_port = port
    proc.start()
    proc.wait_workers(2)
    return proc


@pytest.fixture(scope="module")
def server(tmp_path_factory, test_storage):
    proc = start(tmp_path_factory.mktemp("api"), test_storage, TOKEN)
    yield proc
    proc.stop()


def call(server, method, path, body=None, token=TOKEN, raw=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    connection.request(method, path, body=data, headers=headers)
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    assert response.getheader("Content-Type") == "application/json"
    return response.status, json.loads(payload)


def address():
    return f"api{os.getpid()}x{int(time.time() * 1000) % 10 ** 7}@example.com"


def test_no_token_configured_no_api(tmp_path, test_storage):
    proc = start(tmp_path, test_storage, None)
    try:
        status, data = call(proc, "GET", "/api/accounts")
        assert status == 404 and "--admin-token is not set" in data["error"]
    finally:
        proc.stop()


def test_missing_or_wrong_token_is_401_and_changes_nothing(server):
    who = address()
    for token in (None, "wrong", TOKEN + "x", ""):
        status, data = call(server, "POST", "/api/accounts",
                            {"address": who, "password": "pw"}, token=token)
        assert status == 401 and data == {"error": "missing or wrong bearer token"}
        assert call(server, "GET", "/api/accounts", token=token)[0] == 401
    status, _ = call(server, "GET", f"/api/accounts/{who}")
    assert status == 404                                   # never created


def test_accounts_mailboxes_and_sessions(server):
    who = address()
    status, created = call(server, "POST", "/api/accounts", {"address": who, "password": "one"})
    assert status == 201 and created["address"] == who
    assert call(server, "POST", "/api/accounts", {"address": who, "password": "x"})[0] == 409
    assert who in [row["address"] for row in call(server, "GET", "/api/accounts")[1]]
    status, shown = call(server, "GET", f"/api/accounts/{who}")
    assert status == 200 and {b["name"] for b in shown["mailboxes"]} == {
        "INBOX", "Sent", "Drafts", "Trash", "Junk"}
    assert call(server, "PUT", f"/api/accounts/{who}/password", {"password": "two"})[0] == 200

    status, box = call(server, "POST", f"/api/accounts/{who}/mailboxes", {"name": "Work/Q1"})
    assert status == 201 and box["name"] == "Work/Q1"
    status, renamed = call(server, "PATCH", f"/api/accounts/{who}/mailboxes/Work/Q1",
                           {"name": "Work/Q2"})
    assert status == 200 and renamed == {"address": who, "name": "Work/Q2", "was": "Work/Q1"}
    status, counters = call(server, "GET", f"/api/accounts/{who}/mailboxes/Work%2FQ2")
    assert status == 200 and counters["messages"] == 0 and counters["name"] == "Work/Q2"
    assert call(server, "GET", f"/api/accounts/{who}/mailboxes/Work/Q1")[0] == 404
    assert call(server, "DELETE", f"/api/accounts/{who}/mailboxes/Work/Q2")[0] == 200
    names = [b["name"] for b in call(server, "GET", f"/api/accounts/{who}/mailboxes")[1]]
    assert "Work/Q2" not in names and "Work" in names

    imap = imaplib.IMAP4("127.0.0.1", server.imap_port)
    imap.login(who, "two")                                  # the new password
    status, listed = call(server, "GET", f"/api/sessions?account={who}")
    assert status == 200 and len(listed) == 1 and listed[0]["address"] == who
    status, kicked = call(server, "POST", "/api/sessions/kick", {"account": who})
    assert status == 200 and kicked == {"kicked": 1}

    def ended():
        try:
            imap.noop()
            return False
        except (imaplib.IMAP4.abort, OSError):
            return True
    wait_for(ended, timeout=15, message="kicked session")
    status, deleted = call(server, "DELETE", f"/api/accounts/{who}")
    assert status == 200 and deleted["address"] == who
    assert call(server, "GET", f"/api/accounts/{who}")[0] == 404


def test_errors_are_json_with_the_right_status(server):
    assert call(server, "GET", "/api/nothing")[0] == 404
    assert call(server, "PUT", "/api/accounts")[0] == 405
    assert call(server, "POST", "/api/accounts", raw=b"{not json")[0] == 400
    assert call(server, "POST", "/api/accounts", raw=b"[1, 2]")[0] == 400
    status, data = call(server, "POST", "/api/accounts", {"address": "x@example.com"})
    assert status == 400 and "password" in data["error"]
    assert call(server, "POST", "/api/accounts", {"address": "not an address", "password": "p"})[0] == 400
    assert call(server, "POST", "/api/accounts", raw=b" " * (api.MAX_BODY + 1))[0] == 413
    assert call(server, "POST", "/api/sessions/kick", {})[0] == 400


def test_openapi_describes_every_route(server):
    status, spec = call(server, "GET", "/api/openapi.json", token=None)
    assert status == 200 and spec["openapi"].startswith("3.")
    described = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert described == {(method, path) for method, path, *_ in api.ROUTES}
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
