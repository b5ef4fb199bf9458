"""Parse the ``--db-url`` setting into pymysql connect arguments.

This module must not import pymysql: the configuration module imports it to
validate the option, and the master process never loads a database driver.
"""

import urllib.parse

SCHEMES = ("mysql", "mysql+pymysql")
DEFAULT_PORT = 3306
DEFAULT_CHARSET = "utf8mb4"

# Query parameters a URL may carry, with the converter for each. Anything else
# is rejected so that a typo does not silently change nothing.
_INT_PARAMS = ("connect_timeout", "read_timeout", "write_timeout")
_STR_PARAMS = ("charset", "unix_socket")


def parse_db_url(url, require_database=True):
    """Return pymysql ``connect()`` keyword arguments for a ``mysql://`` URL.

    ``mysql://user:password@host:port/database?charset=utf8mb4``; user and
    password are URL-decoded, the port defaults to 3306 and the charset to
    utf8mb4. Raises ``ValueError`` naming what is wrong. ``require_database``
    is False only for URLs that name a server, not a database (tests, admin).
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("database URL is empty; expected mysql://user:password@host:port/database")
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError as exc:
        raise ValueError(f"database URL is malformed: {exc}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise ValueError(f"database URL must start with mysql://, not {parts.scheme or '(none)'}://"
                         if parts.scheme else
                         "database URL must look like mysql://user:password@host:port/database")
    if parts.fragment:
        raise ValueError("database URL must not contain a #fragment")
    kwargs = _server_kwargs(parts)
    database = urllib.parse.unquote(parts.path.lstrip("/"))
    if "/" in database:
        raise ValueError(f"database name {database!r} must not contain '/'")
    if database:
        if len(database) > 64:
            raise ValueError("database name is longer than 64 characters")
        kwargs["database"] = database
    elif require_database:
        raise ValueError("database URL names no database; expected mysql://user:password@host:port/database")
    kwargs["charset"] = DEFAULT_CHARSET
    kwargs.update(_query_kwargs(parts.query))
    return kwargs


def _server_kwargs(parts):
    """Host, port, user and password from the URL's network location."""
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"database URL has a bad port in {parts.netloc!r}") from None
    host = parts.hostname
    if not host:
        raise ValueError("database URL names no host; expected mysql://user:password@host:port/database")
    kwargs = {"host": host, "port": port if port is not None else DEFAULT_PORT}
    if port == 0:
        raise ValueError("database URL has port 0")
    if parts.username:
        kwargs["user"] = urllib.parse.unquote(parts.username)
    if parts.password is not None:
        kwargs["password"] = urllib.parse.unquote(parts.password)
    return kwargs


def _query_kwargs(query):
    """The optional ``?charset=...&connect_timeout=...`` parameters."""
    kwargs = {}
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError(f"database URL has a malformed query string {query!r}") from None
    for name, value in pairs:
        if name in _INT_PARAMS:
            try:
                number = int(value)
            except ValueError:
                raise ValueError(f"database URL parameter {name} must be an integer, not {value!r}") from None
            if number <= 0:
                raise ValueError(f"database URL parameter {name} must be positive")
            kwargs[name] = number
        elif name in _STR_PARAMS:
            if not value:
                raise ValueError(f"database URL parameter {name} is empty")
            kwargs[name] = value
        else:
            known = ", ".join(_STR_PARAMS + _INT_PARAMS)
            raise ValueError(f"database URL parameter {name!r} is unknown (known: {known})")
    return kwargs


def with_database(url, database):
    """The same server URL naming another database (used by tests and admin tools)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(database)))
