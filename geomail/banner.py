"""The lines the master logs once it is ready: where it listens, where data goes, what next.

A newcomer running ``bin/geomail`` with nothing configured learns from these
lines alone how to add an account, send a message and read it; an operator
sees which backend and which addresses a master really uses.
"""

import os
import shutil
import sys

from geomail import config as configuration
from geomail.store.dburl import parse_db_url

LABELS = {"smtp": "SMTP", "smtps": "SMTPS", "imap": "IMAP", "imaps": "IMAPS",
          "http": "HTTP /metrics /health"}


def lines(config, ports):
    """Log lines for ``config`` and its ``[(listener, port)]``."""
    listening = ", ".join(
        f"{LABELS[name]} {_address(config.http_host if name == 'http' else config.host, port)}"
        for name, port in ports)
    domains = ",".join(config.domains) or "none"
    result = [f"geomail ready: {listening} ({config.workers} workers; domains {domains})",
              f"data: {storage(config)}"]
    ports = dict(ports)
    user = f"user@{config.domains[0]}" if config.domains else None
    if user is None:
        result.append("warning: no --domains (MAIL_DOMAINS) set: no address receives mail; "
                      "start with --domains example.test, say")
        user = "user@example.test"
    if config.hostname.lower().rstrip(".") in ("localhost", "localhost.localdomain") \
            or "." not in config.hostname:
        result.append(f"warning: this server calls itself {config.hostname!r} in greetings and "
                      "Received headers; set --hostname (MAIL_HOSTNAME) to the name your MX "
                      "record points at, or other servers may refuse its mail")
    if getattr(config, "imap_require_tls", False) and not getattr(config, "tls_cert", ""):
        result.append("warning: --imap-require-tls without --tls-cert: no IMAP client can log "
                      "in (LOGIN is disabled until STARTTLS, which needs a certificate); set "
                      "--tls-cert and --tls-key (MAIL_TLS_CERT, MAIL_TLS_KEY)")
    same = "" if configuration.backend(config) == "embedded" else \
        " (with the same --db-url and --oss-* settings)"
    result.append(f"next: add an account: {_admin_command(config)} account add {user}{same}")
    client_host = _client_host(config.host)
    if "smtp" in ports:
        smtp = ports["smtp"]
        result.append(f"next: send: swaks --server {client_host}:{smtp} --to {user}, or "
                      f"python3 -c \"import smtplib; smtplib.SMTP('{client_host}', {smtp})"
                      f".sendmail('me@example.org', ['{user}'], 'Subject: hi\\r\\n\\r\\nhello\\r\\n')\"")
    if "imap" in ports:
        result.append(f"next: read: any IMAP client at {client_host}:{ports['imap']}, "
                      f"login {user} with the password you set")
    return result


def storage(config):
    """Where data goes, in words: the backend and its place."""
    if configuration.backend(config) == "embedded":
        return (f"embedded SQLite + local blob directory in {config.data_dir} "
                f"(geomail.sqlite3, blobs/{config.oss_bucket}/)")
    url = parse_db_url(config.db_url)
    database = f"{url.get('user', '')}@{url['host']}:{url['port']}/{url['database']}".lstrip("@")
    return (f"MySQL {database} + S3 {config.oss_endpoint or 'AWS ' + config.oss_region} "
            f"bucket {config.oss_bucket}")


def _admin_command(config):
    """geomail-admin as this geomail was started, with what it needs to find the same store."""
    sibling = os.path.join(os.path.dirname(sys.argv[0] or ""), "geomail-admin")
    command = "geomail-admin"
    if os.path.exists(sibling) and shutil.which("geomail-admin") != os.path.abspath(sibling):
        command = sibling
    if getattr(config, "config", None):
        command += f" --config {config.config}"
    if configuration.backend(config) == "embedded":
        if config.data_dir != os.path.abspath(configuration.default_data_dir()):
            command += f" --data-dir {config.data_dir}"
    return command


def _address(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _client_host(host):
    """The address a client on this machine dials to reach a listener bound to ``host``."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host
