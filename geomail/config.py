"""Every geomail setting, declared once.

The table ``OPTIONS`` is the single source of truth: it builds the
command-line parser (for ``geomail`` and ``geomail-admin``), names the
environment variable of each setting, and renders the sample
``etc/geomail.conf``.  Precedence, highest first (as configargparse does it,
plus the ``.env`` layer)::

    command line  >  environment  >  config file  >  ./.env  >  defaults

This module must stay importable by the master process, so it imports
nothing heavier than the standard library and configargparse.
"""

import argparse
import os
import socket
import sys
import urllib.parse
from dataclasses import dataclass, field

import configargparse

from geomail.store.dburl import parse_db_url

DEFAULT_CONFIG_FILE = "/etc/geomail/geomail.conf"
ENV_PREFIX = "MAIL_"
MiB = 1024 * 1024


# -- value types: each raises ValueError/ArgumentTypeError with a clear text --

def port(text):
    """A TCP port, 1-65535."""
    value = _int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid port (1-65535)")
    return value


def optional_port(text):
    """A TCP port, or 0 for "off"."""
    value = _int(text)
    if value == 0:
        return 0
    return port(text)


def positive_int(text):
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of at least 1")
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def size(text):
    """A byte count; accepts the suffixes K, M, G (powers of 1024)."""
    text = str(text).strip()
    units = {"K": 1024, "M": MiB, "G": 1024 * MiB}
    multiplier = 1
    if text[-1:].upper() in units:
        multiplier = units[text[-1].upper()]
        text = text[:-1]
    value = _int(text) * multiplier
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive size")
    return value


def size_or_zero(text):
    """A byte count as ``size`` reads it, or 0 (for "off")."""
    if str(text).strip() == "0":
        return 0
    return size(text)


def boolean(text):
    """true/false, yes/no, on/off, 1/0."""
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (true/false)")


def db_url(text):
    """A mysql:// URL, or empty for the embedded store."""
    if not str(text).strip():
        return ""
    try:
        parse_db_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def http_url(text):
    if not text:
        return ""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s):// URL")
    try:
        parts.port
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} has an invalid port") from None
    return text


def domain_list(text):
    """Comma- or space-separated domain names, lower-cased."""
    domains = [d.strip().lower() for d in str(text).replace(",", " ").split()]
    for domain in domains:
        if "." not in domain.strip(".") and domain != "localhost":
            raise argparse.ArgumentTypeError(f"{domain!r} is not a domain name")
    return domains


def log_level(text):
    level = str(text).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a log level (debug, info, warning, error)")
    return level


def log_format(text):
    value = str(text).lower()
    if value not in ("text", "json"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a log format (text or json)")
    return value


def _int(text):
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


# -- the table ---------------------------------------------------------------

@dataclass(frozen=True)
class Option:
    """One setting: its flag, type, default, environment name and help."""

    name: str                      # dest, e.g. "smtp_port"
    help: str
    default: object = None
    type: object = str
    section: str = "server"
    env: str = ""                  # defaults to MAIL_<NAME>
    flag_only: bool = False        # a plain switch: --daemon, --smtp-only
    secret: bool = False           # never printed in logs
    admin: bool = True             # also offered by geomail-admin
    metavar: str = None
    choices: tuple = field(default=())

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")

    @property
    def env_name(self):
        return self.env or ENV_PREFIX + self.name.upper()


def _cpu_count():
    return os.cpu_count() or 1


def _privileged():
    return os.geteuid() == 0


def default_port(privileged, unprivileged):
    """The well-known port as root; above 1024 otherwise, so that a user's first run binds."""
    return privileged if _privileged() else unprivileged


def default_data_dir():
    """/var/lib/geomail as root, else $XDG_DATA_HOME/geomail or ~/.local/share/geomail."""
    if _privileged():
        return "/var/lib/geomail"
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                          "share")
    return os.path.join(base, "geomail")


OPTIONS = [
    # server
    Option("workers", "Number of worker processes.", _cpu_count(), positive_int,
           admin=False, metavar="N"),
    Option("host", "Address the SMTP and IMAP listeners bind to.", "0.0.0.0",
           env="MAIL_SERVER_HOST", admin=False, metavar="ADDR"),
    Option("hostname", "Name the server gives itself in greetings and Received headers.",
           socket.getfqdn(), metavar="NAME"),
    Option("smtp_port", "SMTP port.", default_port(25, 2525), port, admin=False),
    Option("imap_port", "IMAP port.", default_port(143, 1143), port, admin=False),
    Option("smtp_only", "Serve SMTP only.", False, boolean, flag_only=True, admin=False),
    Option("imap_only", "Serve IMAP only.", False, boolean, flag_only=True, admin=False),
    Option("max_connections", "Connections served at once per worker and protocol; "
           "beyond it the worker stops accepting (the kernel queues the rest).",
           1000, positive_int, admin=False),
    Option("max_connections_per_ip", "Connections one source address (IPv6: one /64) may hold "
           "at once per protocol, counted over all workers; beyond it 421 4.7.0 or "
           "BYE [UNAVAILABLE] at once. 50 covers a sending MTA's parallel deliveries "
           "(Postfix: 20 per destination) and several IMAP clients behind one NAT, and an "
           "attacker needs 20 addresses per 1000 slots.", 50, positive_int, admin=False),
    Option("smtps_port", "Implicit-TLS SMTP port (RFC 8314); 0: off.", 0, optional_port,
           admin=False),
    Option("imaps_port", "Implicit-TLS IMAP port (RFC 8314); 0: off.", 0, optional_port,
           admin=False),
    Option("http_port", "Port of /metrics (Prometheus) and /health; 0: off.", 0, optional_port,
           admin=False),
    Option("http_host", "Address the /metrics and /health listener binds to (keep it "
           "private: it tells how busy the server is).", "127.0.0.1", admin=False,
           metavar="ADDR"),
    Option("admin_token", "Bearer token of the management API under /api on --http-port "
           "(accounts, mailboxes, quotas, sessions); empty: no API. Use a long random "
           "string (openssl rand -hex 32).", "", admin=False, metavar="TOKEN", secret=True),
    Option("tls_cert", "PEM certificate chain for STARTTLS and the implicit-TLS ports; "
           "empty: no TLS.", "", admin=False, metavar="PATH"),
    Option("tls_key", "PEM private key of --tls-cert.", "", admin=False, metavar="PATH",
           secret=True),
    Option("domains", "Local domains, comma separated: mail is accepted only for these.",
           [], domain_list, metavar="LIST"),
    # SMTP
    Option("auto_create_accounts", "Create the account (and its standard mailboxes) when "
           "mail arrives for a new address in a local domain; off: unknown addresses get 550.",
           True, boolean, section="smtp", admin=False),
    Option("max_message_size", "Largest message accepted, advertised with SIZE (RFC 1870).",
           50 * MiB, size, section="smtp", metavar="BYTES"),
    Option("max_recipients", "Recipients per message (RFC 5321 4.5.3.1.8 asks for at least 100).",
           1000, positive_int, section="smtp", admin=False),
    Option("max_bad_commands", "Unknown or malformed commands before the connection is closed.",
           10, positive_int, section="smtp", admin=False),
    Option("smtp_timeout", "Seconds an SMTP client may stay silent (RFC 5321 4.5.3.2.7: 5 minutes).",
           300.0, positive_float, section="smtp", admin=False, metavar="SECONDS"),
    Option("smtp_command_deadline", "Seconds a session may spend in commands (outside message "
           "data) before it completes a message: counted from the connection or the last "
           "DATA/BDAT LAST, so a client that never sends mail cannot hold a connection "
           "by talking slowly; beyond it 421 4.4.2.", 300.0, positive_float, section="smtp",
           admin=False, metavar="SECONDS"),
    Option("smtp_line_deadline", "Seconds one command line may take from its first byte to "
           "its end (a client trickling bytes gets 421 4.4.2).", 60.0, positive_float,
           section="smtp", admin=False, metavar="SECONDS"),
    Option("upload_buffer_budget", "Bytes of attachment data a worker may hold for S3 uploads "
           "at once; a connection beyond it waits (TCP back-pressure).", 256 * MiB, size,
           section="smtp", admin=False, metavar="BYTES"),
    # IMAP
    Option("imap_require_tls", "Refuse LOGIN and AUTHENTICATE before STARTTLS (LOGINDISABLED).",
           False, boolean, section="imap", admin=False),
    Option("imap_idle_timeout", "Seconds an IMAP client may stay silent, IDLE included "
           "(RFC 3501 5.4: at least 30 minutes).", 1800.0, positive_float, section="imap",
           admin=False, metavar="SECONDS"),
    Option("imap_login_timeout", "Seconds an IMAP client may stay silent before it has "
           "logged in (RFC 9051 5.4 allows a shorter timeout before authentication).", 60.0,
           positive_float, section="imap", admin=False, metavar="SECONDS"),
    Option("imap_command_deadline", "Seconds one command before login may take, from its "
           "first byte to the end of its last literal (a client trickling bytes gets BYE).",
           60.0, positive_float, section="imap", admin=False, metavar="SECONDS"),
    Option("max_literal_size", "Largest IMAP literal accepted (APPENDLIMIT).", 50 * MiB, size,
           section="imap", admin=False, metavar="BYTES"),
    Option("max_login_failures", "Failed logins on one connection before BYE (each failure "
           "is delayed).", 3, positive_int, section="imap", admin=False),
    Option("max_account_login_failures", "Failed logins to one account, from anywhere, in 15 "
           "minutes; past it the password is not even checked until the window ends.", 10,
           positive_int, section="imap", admin=False),
    Option("max_address_login_failures", "Failed logins from one client address (IPv6: /64), "
           "to any accounts, in 15 minutes; past it likewise.", 50, positive_int,
           section="imap", admin=False),
    # storage
    Option("data_dir", "Directory of the embedded store (geomail.sqlite3 and blobs/), used "
           "when neither --db-url nor --oss-endpoint is given.", "", section="storage",
           metavar="PATH"),
    Option("db_url", "MySQL database, mysql://user:password@host:port/database; with "
           "--oss-endpoint, MySQL + S3 replace the embedded store (empty: embedded).",
           "", db_url, section="storage", secret=True, metavar="URL"),
    Option("db_pool_size", "MySQL connections per worker at most; requests wait when all are busy.",
           10, positive_int, section="storage"),
    Option("oss_endpoint", "S3-compatible endpoint URL for attachments, with --db-url "
           "(for AWS: https://s3.REGION.amazonaws.com; empty: the embedded store).", "",
           http_url, section="storage", metavar="URL"),
    Option("oss_bucket", "Bucket for attachments (embedded store: the directory "
           "blobs/NAME in --data-dir).", "mail-attachments", section="storage",
           metavar="NAME"),
    Option("oss_access_key", "S3 access key.", "", section="storage", secret=True,
           metavar="KEY"),
    Option("oss_secret_key", "S3 secret key.", "", section="storage", secret=True,
           metavar="KEY"),
    Option("oss_region", "S3 region.", "us-east-1", section="storage", metavar="REGION"),
    Option("oss_create_bucket", "Create the bucket at start if it is missing.", True,
           boolean, section="storage"),
    Option("oss_multipart_threshold", "Attachments at least this large go to S3 as a multipart "
           "upload; smaller ones in one PUT.", 8 * MiB, size, section="storage",
           metavar="BYTES"),
    Option("oss_part_size", "Part size of multipart uploads (S3 minimum: 5 MiB).", 8 * MiB,
           size, section="storage", metavar="BYTES"),
    Option("janitor_interval", "Seconds between a worker's sweeps for S3 objects and uploads "
           "that no delivery will finish (an intent is forgotten two intervals after its "
           "object was first removed).", 15.0, positive_float, section="storage", admin=False,
           metavar="SECONDS"),
    Option("attachment_memory_cache_size", "Bytes of recently read attachments (up to 1 MiB "
           "of data each, kept as they appear in the message) each worker holds in memory, so "
           "clients reading a message again do not wait for S3; 0 turns the cache off.",
           64 * MiB, size_or_zero, section="storage", admin=False, metavar="BYTES"),
    Option("attachment_cache_dir", "With S3: a local directory where the host keeps a copy "
           "of each attachment object up to 8 MiB, written at delivery and shared by all "
           "workers (verified against its SHA-256 on every read, never trusted over S3), so "
           "FETCH does not wait for S3; empty: off. Ignored by the embedded store, whose "
           "objects are local files already.", "", section="storage", admin=False,
           metavar="PATH"),
    Option("attachment_cache_size", "Bytes the attachment disk cache (--attachment-cache-dir) "
           "holds at most; the least recently used objects go first.", 1024 * MiB, size,
           section="storage", admin=False, metavar="BYTES"),
    # process
    Option("pidfile", "Write the master's pid to this file.", "", section="process",
           admin=False, metavar="PATH"),
    Option("daemon", "Detach from the terminal and run in the background.", False,
           boolean, section="process", flag_only=True, admin=False),
    Option("user", "Run workers as this user (the master binds ports first).", "",
           section="process", admin=False, metavar="USER"),
    Option("group", "Run workers as this group.", "", section="process", admin=False,
           metavar="GROUP"),
    Option("worker_timeout", "Seconds without a heartbeat before a worker is killed "
           "and replaced.", 30.0, positive_float, section="process", admin=False,
           metavar="SECONDS"),
    Option("graceful_timeout", "Seconds a stopping worker has to finish sessions in flight.",
           30.0, positive_float, section="process", admin=False, metavar="SECONDS"),
    Option("log_file", "Log to this file (reopened on SIGUSR1); empty: standard error.", "",
           section="process", metavar="PATH"),
    Option("log_level", "debug, info, warning or error.", "INFO", log_level,
           section="process", metavar="LEVEL"),
    Option("log_format", "text (time [pid] LEVEL logger: [session] message) or json "
           "(one object per line).", "text", log_format, section="process", metavar="FORMAT"),
]

OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}


# -- parsing -----------------------------------------------------------------

class _Parser(configargparse.ArgumentParser):
    """An ArgumentParser whose errors are one clear line and exit code 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def read_dotenv(path=".env"):
    """The KEY=VALUE pairs of a .env file (comments, quotes, export allowed)."""
    values = {}
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.readlines()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return values
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if key.startswith("export "):
            key = key[len("export "):].strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


SETTINGS_EPILOG = (
    "Each setting comes from, in this order: the command line, the MAIL_* environment "
    "variable, ./.env, the config file (-c, default " + DEFAULT_CONFIG_FILE + " when present), "
    "the default.")


def build_parser(prog="geomail", admin=False, description=None):
    """The parser for ``geomail`` (admin=False) or ``geomail-admin``."""
    from geomail import __version__
    parser = _Parser(
        prog=prog,
        description=description,
        epilog=SETTINGS_EPILOG,
        add_config_file_help=False,
        default_config_files=[DEFAULT_CONFIG_FILE],
        config_file_parser_class=configargparse.DefaultConfigFileParser,
        args_for_setting_config_path=["-c", "--config"],
        config_arg_help_message=f"Config file (default {DEFAULT_CONFIG_FILE} when present).",
        add_env_var_help=False,
        ignore_unknown_config_file_keys=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for option in OPTIONS:
        if admin and not option.admin:
            continue
        kwargs = dict(dest=option.name, env_var=option.env_name, type=option.type,
                      default=option.default,
                      help=f"{option.help} [env {option.env_name}; default {_show(option)}]")
        if option.flag_only:
            kwargs.update(nargs="?", const=True, metavar="BOOL")
        elif option.metavar:
            kwargs["metavar"] = option.metavar
        parser.add_argument(option.flag, **kwargs)
    _apply_dotenv_defaults(parser, admin)
    return parser


def _apply_dotenv_defaults(parser, admin):
    """Let ./.env sit just above the defaults: below file, environment and flags."""
    dotenv = read_dotenv()
    defaults = {}
    for option in OPTIONS:
        if admin and not option.admin:
            continue
        if option.env_name in dotenv:
            text = dotenv[option.env_name]
            try:
                defaults[option.name] = option.type(text)
            except (argparse.ArgumentTypeError, ValueError) as exc:
                parser.error(f"argument {option.flag} (from .env {option.env_name}): {exc}")
    parser.set_defaults(**defaults)


def _show(option):
    if option.name == "workers":
        return "number of CPUs"
    if option.name == "hostname":
        return "this host's FQDN"
    if option.name == "smtp_port":
        return "25 as root, else 2525"
    if option.name == "imap_port":
        return "143 as root, else 1143"
    if option.name == "data_dir":
        return "/var/lib/geomail as root, else $XDG_DATA_HOME/geomail or ~/.local/share/geomail"
    if isinstance(option.default, list):
        return ",".join(option.default) or "none"
    if option.default == "" or option.default is None:
        return "empty"
    if isinstance(option.default, bool):
        return "true" if option.default else "false"
    if option.type in (size, size_or_zero):
        return _human_size(option.default)
    return str(option.default)


def _human_size(value):
    for suffix, unit in (("G", 1024 * MiB), ("M", MiB), ("K", 1024)):
        if value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)


def load(argv=None, prog="geomail", admin=False, parser=None):
    """Parse the configuration; exits 2 with one line on any bad value."""
    parser = parser or build_parser(prog, admin)
    config = parser.parse_args(argv)
    if not admin:
        if config.smtp_only and config.imap_only:
            parser.error("--smtp-only and --imap-only exclude each other")
        if bool(config.tls_cert) != bool(config.tls_key):
            parser.error("--tls-cert and --tls-key go together")
        if (config.smtps_port or config.imaps_port) and not config.tls_cert:
            parser.error("--smtps-port and --imaps-port need --tls-cert and --tls-key")
    if getattr(config, "oss_part_size", 5 * MiB) < 5 * MiB:
        parser.error("argument --oss-part-size: S3 needs parts of at least 5M")
    if bool(config.db_url) != bool(config.oss_endpoint):
        parser.error(BACKEND_MISMATCH)
    config.data_dir = os.path.abspath(os.path.expanduser(config.data_dir or default_data_dir()))
    config.backend = backend(config)
    return config


BACKEND_MISMATCH = (
    "--db-url (MAIL_DB_URL) and --oss-endpoint (MAIL_OSS_ENDPOINT) go together: give both "
    "for MySQL + S3, or neither for the embedded store in --data-dir (MAIL_DATA_DIR)")


def backend(config):
    """ "mysql" (MySQL + S3) when --db-url or --oss-endpoint is set, else "embedded".

    load() refuses one without the other; looking at both keeps partial
    configurations (tests, tools passing only the oss_* settings) on S3.
    """
    if getattr(config, "db_url", "") or getattr(config, "oss_endpoint", ""):
        return "mysql"
    return "embedded"


def describe(config):
    """The configuration as a log-friendly string, secrets masked."""
    parts = []
    for option in OPTIONS:
        if not hasattr(config, option.name):
            continue
        value = getattr(config, option.name)
        if option.secret and value:
            value = _mask(option, value)
        parts.append(f"{option.name}={value}")
    return " ".join(parts)


def _mask(option, value):
    if option.name == "db_url":
        parts = urllib.parse.urlsplit(value)
        if parts.password:
            netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
            return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        return value
    return "***"


# -- the sample configuration file -------------------------------------------

SECTION_TITLES = {
    "server": "Listeners, TLS and mail routing",
    "smtp": "SMTP limits and delivery",
    "imap": "IMAP limits",
    "storage": "Storage: embedded (SQLite + a blob directory in data-dir) by default; "
               "MySQL for messages and S3 for attachment bodies with db-url and oss-endpoint",
    "process": "Processes, privileges and logs",
}


def render_sample_config():
    """The text of etc/geomail.conf: every option, commented, with its default."""
    lines = [
        "# geomail configuration.",
        "#",
        "# Every option is shown commented out with its default. Precedence, highest first:",
        "# command-line flag > environment variable > this file > ./.env > default.",
        "# Booleans take true/false. Sizes take K/M/G suffixes.",
        f"# geomail reads {DEFAULT_CONFIG_FILE} when present, or the file given with --config.",
        "# This file is generated from geomail/config.py: python -m geomail.config > etc/geomail.conf",
    ]
    for section, title in SECTION_TITLES.items():
        lines += ["", "#" * 72, f"# {title}", "#" * 72]
        for option in OPTIONS:
            if option.section != section:
                continue
            lines.append("")
            lines.append(f"# {option.help}")
            lines.append(f"# Environment: {option.env_name}. Flag: {option.flag}.")
            if option.secret:
                lines.append("# Secret: keep this file readable by root and the geomail user only.")
            default = _show(option)
            shown = "" if default == "empty" else default
            if option.name in ("workers", "hostname", "smtp_port", "imap_port", "data_dir"):
                lines.append(f"# Default: {default}.")
                shown = ""
            lines.append(f"# {option.name.replace('_', '-')} = {shown}".rstrip())
    return "\n".join(lines) + "\n"


def render_markdown_table():
    """The README's configuration table, generated like etc/geomail.conf."""
    lines = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for option in OPTIONS:
        default = _show(option).replace("|", "\\|")
        lines.append(f"| `{option.flag}` | `{option.env_name}` | {default} | {option.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        sys.stdout.write(render_markdown_table())
    else:
        sys.stdout.write(render_sample_config())
