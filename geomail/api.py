"""The management API: JSON over HTTP under ``/api`` on ``--http-port``.

What ``geomail-admin`` does, for scripts and panels, through the same
functions (geomail/manage.py), so the two cannot drift.  Off unless
``--admin-token`` (MAIL_ADMIN_TOKEN) is set; every request but the OpenAPI
description must carry ``Authorization: Bearer <token>`` (compared in
constant time), else 401 and nothing changes.  Request bodies are JSON
objects of at most MAX_BODY bytes.  Errors are ``{"error": "..."}`` with
400 (bad argument), 401, 404 (no such account/mailbox/route), 405, 409
(exists already), 413, 503 (store unavailable).

Routes are one table (ROUTES): method, path pattern, handler, and the
summary the OpenAPI description is made from.
"""

import hmac
import json
import logging
import re
import urllib.parse

from geomail import manage
from geomail.store.errors import (AccountExists, AccountNotFound, InvalidAddress,
                                  InvalidMailboxName, MailboxExists, StoreUnavailable)
from geomail.store.messages import MailboxNotFound

log = logging.getLogger("geomail.api")

MAX_BODY = 64 * 1024


class HTTPError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


# -- handlers: (context, params, body, query) -> (status, data) -------------------

def _text(body, name):
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise HTTPError("400 Bad Request", f"body needs a non-empty string {name!r}")
    return value


def accounts(context, params, body, query):
    return 200, manage.list_accounts(context.db)


def account_add(context, params, body, query):
    return 201, manage.add_account(context.db, _text(body, "address"), _text(body, "password"))


def account_show(context, params, body, query):
    return 200, manage.show_account(context.db, params["account"])


def account_delete(context, params, body, query):
    return 200, manage.delete_account(context.db, context.config, params["account"])


def account_password(context, params, body, query):
    manage.account_of(context.db, params["account"])
    return 200, manage.set_password(context.db, params["account"], _text(body, "password"))


def mailboxes(context, params, body, query):
    return 200, manage.list_account_mailboxes(context.db, params["account"])


def mailbox_create(context, params, body, query):
    return 201, manage.create_mailbox(context.db, params["account"], _text(body, "name"))


def mailbox_status(context, params, body, query):
    return 200, manage.mailbox_status(context.db, params["account"], params["mailbox"])


def mailbox_rename(context, params, body, query):
    return 200, manage.rename_mailbox(context.db, params["account"], params["mailbox"],
                                      _text(body, "name"))


def mailbox_delete(context, params, body, query):
    return 200, manage.delete_mailbox(context.db, context.config, params["account"],
                                      params["mailbox"])


def sessions(context, params, body, query):
    return 200, manage.list_sessions(context.db, query.get("account"))


def kick(context, params, body, query):
    return 200, manage.kick(context.db, address=body.get("account"), session=body.get("session"))


def openapi(context, params, body, query):
    return 200, openapi_description()


ROUTES = [
    # method, path ({name} is one URL-encoded segment), handler, summary, body fields
    ("GET", "/api/accounts", accounts, "List accounts with their counts.", ()),
    ("POST", "/api/accounts", account_add, "Create an account with the standard mailboxes.",
     ("address", "password")),
    ("GET", "/api/accounts/{account}", account_show, "One account and its mailboxes.", ()),
    ("DELETE", "/api/accounts/{account}", account_delete,
     "Delete an account, its messages and stored objects.", ()),
    ("PUT", "/api/accounts/{account}/password", account_password, "Set the password.",
     ("password",)),
    ("GET", "/api/accounts/{account}/mailboxes", mailboxes, "The account's mailboxes.", ()),
    ("POST", "/api/accounts/{account}/mailboxes", mailbox_create,
     "Create a mailbox (and missing parents).", ("name",)),
    ("GET", "/api/accounts/{account}/mailboxes/{mailbox}", mailbox_status,
     "Counters of one mailbox (the rest of the path is its name, '/' between levels).", ()),
    ("PATCH", "/api/accounts/{account}/mailboxes/{mailbox}", mailbox_rename,
     "Rename a mailbox and its children.", ("name",)),
    ("DELETE", "/api/accounts/{account}/mailboxes/{mailbox}", mailbox_delete,
     "Delete a mailbox, its messages and their stored objects.", ()),
    ("GET", "/api/sessions", sessions,
     "IMAP sessions logged in now on every host (?account= for one).", ()),
    ("POST", "/api/sessions/kick", kick,
     "End an account's sessions ({\"account\": ...}) or one ({\"session\": id}).",
     ("account", "session")),
    ("GET", "/api/openapi.json", openapi, "This description (OpenAPI 3.0).", ()),
]

def _pattern(path):
    """A route's regex: {account} is one segment; {mailbox}, always last, may hold '/'
    (the server hands PATH_INFO over decoded, so %2F is '/' already)."""
    regex = re.escape(path)
    regex = regex.replace(r"\{mailbox\}", r"(?P<mailbox>.+)")
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
    return re.compile("^" + regex + "$")


_PATTERNS = [(method, _pattern(path), handler) for method, path, handler, _, _ in ROUTES]


def _route(method, path):
    allowed = False
    for route_method, pattern, handler in _PATTERNS:
        match = pattern.match(path)
        if match:
            if route_method == method:
                # PATH_INFO is latin-1 decoded (PEP 3333): names are UTF-8
                return handler, {k: _utf8(v) for k, v in match.groupdict().items()}
            allowed = True
    raise HTTPError("405 Method Not Allowed" if allowed else "404 Not Found",
                    "method not allowed here" if allowed else "no such route (see /api/openapi.json)")


def _utf8(text):
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise HTTPError("400 Bad Request", "the path is not UTF-8") from None


# -- the WSGI side ------------------------------------------------------------

ERRORS = ((AccountNotFound, "404 Not Found"), (MailboxNotFound, "404 Not Found"),
          (AccountExists, "409 Conflict"), (MailboxExists, "409 Conflict"),
          (InvalidAddress, "400 Bad Request"), (InvalidMailboxName, "400 Bad Request"),
          (manage.Invalid, "400 Bad Request"), (StoreUnavailable, "503 Service Unavailable"))


def handle(context, environ, start_response):
    """Answer one /api request."""
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "")
    try:
        token = getattr(context.config, "admin_token", "") or ""
        if not token:
            raise HTTPError("404 Not Found", "no management API: --admin-token is not set")
        handler, params = _route(method, path)
        if handler is not openapi and not _authorized(environ, token):
            raise HTTPError("401 Unauthorized", "missing or wrong bearer token")
        body = _body(environ) if method in ("POST", "PUT", "PATCH") else {}
        query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
        status, data = handler(context, params, body, query)
        status = {200: "200 OK", 201: "201 Created"}[status]
        if method != "GET":
            log.info("api %s %s: %s", method, path[:200].encode("unicode_escape").decode(), status)
    except HTTPError as exc:
        status, data = exc.status, {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - typed store errors become statuses
        status = next((s for kind, s in ERRORS if isinstance(exc, kind)), None)
        if status is None:
            log.exception("api %s %s failed", method, path[:200])
            status = "500 Internal Server Error"
            data = {"error": "internal error (see the server log)"}
        else:
            data = {"error": str(exc)}
    body = (json.dumps(data, default=str, ensure_ascii=False, indent=1) + "\n").encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if status.startswith("401"):
        headers.append(("WWW-Authenticate", 'Bearer realm="geomail"'))
    start_response(status, headers)
    return [body]


def _authorized(environ, token):
    given = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              token.encode())


def _body(environ):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HTTPError("400 Bad Request", "bad Content-Length") from None
    if length > MAX_BODY:
        raise HTTPError("413 Payload Too Large", f"bodies are at most {MAX_BODY} bytes")
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise HTTPError("400 Bad Request", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise HTTPError("400 Bad Request", "the body must be a JSON object")
    return body


def openapi_description():
    """OpenAPI 3.0 of ROUTES: paths, parameters, bodies, the bearer scheme."""
    paths = {}
    for method, path, handler, summary, fields in ROUTES:
        operation = {"summary": summary, "operationId": handler.__name__,
                     "responses": {"200": {"description": "done (JSON)"},
                                   "401": {"description": "missing or wrong token"},
                                   "404": {"description": "no such account, mailbox or route"}}}
        names = re.findall(r"\{(\w+)\}", path)
        if names:
            operation["parameters"] = [{"name": n, "in": "path", "required": True,
                                        "schema": {"type": "string"}} for n in names]
        if fields:
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"type": "object",
                           "properties": {f: {"type": "string"} for f in fields}}}}}
        if handler is openapi:
            operation["security"] = []
        paths.setdefault(path, {})[method.lower()] = operation
    from geomail import __version__
    return {"openapi": "3.0.3",
            "info": {"title": "geomail management API", "version": __version__},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}], "paths": paths}
