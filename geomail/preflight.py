"""Checks run once before the first worker starts (in a child of the master).

Prepares the embedded store's directory (embedded backend), applies pending
schema migrations under the migration lock and makes sure the attachment
bucket exists.  Raising an exception is the way to refuse to start;
``explain`` turns it into the one line the operator reads, naming the
option or environment variable to fix.
"""

import logging
import os
import tempfile

from geomail.config import backend

log = logging.getLogger("geomail.preflight")

DATA_DIR_MODE = 0o700      # mail of every account: readable by geomail's user only


class PreflightError(Exception):
    """A start-up check failed; the message is already the operator's line."""


def run(config):
    from geomail.blobs.open import open_blob_store
    from geomail.context import server_tls_context
    from geomail.store.migrations.migrate import migrate
    from geomail.store.open import open_database

    try:
        server_tls_context(config)
    except (OSError, ValueError) as exc:
        raise PreflightError(f"cannot load --tls-cert/--tls-key: {exc}") from None
    embedded = backend(config) == "embedded"
    if embedded:
        prepare_data_dir(config)
    db = open_database(config, 1)
    try:
        migrate(db)
    finally:
        db.close()
    store = open_blob_store(config)
    store.ensure_bucket(create=config.oss_create_bucket)
    if embedded:
        hand_over(config)
    problem = blob_write_problem(store)
    if problem:
        log.warning("warning: the blob store refuses writes (%s): messages with attachments "
                    "will get 451 4.3.0 until it accepts them; check the bucket's permissions "
                    "or the blob directory's owner", problem)


def blob_write_problem(store):
    """Write and remove one small object; the failure in one line, or None."""
    key = f"geomail-preflight-{os.uname().nodename}-{os.getpid()}"    # no directory left
    try:
        store.put(key, b"geomail start-up check\n")
        store.delete([key])
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None


def prepare_data_dir(config):
    """Create --data-dir and its blobs/ (mode 0700) and prove a file can be written there."""
    from geomail.blobs.open import blobs_root
    try:
        os.makedirs(config.data_dir, mode=DATA_DIR_MODE, exist_ok=True)
        os.makedirs(blobs_root(config), mode=DATA_DIR_MODE, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=config.data_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise PreflightError(_data_dir_line(config, exc)) from None


def hand_over(config):
    """As root with --user/--group: give the store's directories and files to the workers' user.

    Preflight runs as root and may just have created them; workers that
    dropped privileges must still write there.  New files are the workers'.
    """
    if os.geteuid() != 0 or not (getattr(config, "user", "") or getattr(config, "group", "")):
        return
    import grp
    import pwd
    from geomail.blobs.open import blobs_root
    from geomail.store.open import database_path
    uid = gid = -1
    if config.user:
        entry = pwd.getpwuid(int(config.user)) if config.user.isdigit() else pwd.getpwnam(config.user)
        uid, gid = entry.pw_uid, entry.pw_gid
    if config.group:
        gid = int(config.group) if config.group.isdigit() else grp.getgrnam(config.group).gr_gid
    database = database_path(config)
    blobs = blobs_root(config)
    paths = [config.data_dir, blobs, os.path.join(blobs, config.oss_bucket),
             os.path.join(blobs, ".uploads"), os.path.join(blobs, ".uploads", config.oss_bucket),
             database, database + "-wal", database + "-shm"]
    for path in paths:
        try:
            os.chown(path, uid, gid)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise PreflightError(_data_dir_line(config, exc)) from None


# -- one line per failure ------------------------------------------------------

DB_URL = "--db-url (MAIL_DB_URL)"
ENDPOINT = "--oss-endpoint (MAIL_OSS_ENDPOINT)"
KEYS = "--oss-access-key and --oss-secret-key (MAIL_OSS_ACCESS_KEY, MAIL_OSS_SECRET_KEY)"
BUCKET = "--oss-bucket (MAIL_OSS_BUCKET)"
CREATE_BUCKET = "--oss-create-bucket true (MAIL_OSS_CREATE_BUCKET)"
DATA_DIR = "--data-dir (MAIL_DATA_DIR)"

# pymysql's error numbers (server: ER_*, client: CR_*)
ER_DBACCESS_DENIED = 1044
ER_ACCESS_DENIED = 1045
ER_BAD_DB = 1049
ER_ACCESS_DENIED_NO_PASSWORD = 1698   # MariaDB: unknown user, or one that logs in otherwise
CR_CONNECTION_ERROR = 2002
CR_CONN_HOST_ERROR = 2003
CR_UNKNOWN_HOST = 2005
CR_SERVER_GONE = 2006
CR_SERVER_LOST = 2013

_S3_CREDENTIALS = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "denied",
                   "403", "Forbidden")


def explain(exc, config):
    """One line for a start-up failure: what failed and which option or variable to fix."""
    from geomail.errors import TEMPORARY
    from geomail.store.errors import StoreError
    for cause in causes(exc):
        if isinstance(cause, PreflightError):
            return str(cause)
        if isinstance(cause, StoreError) and getattr(cause, "kind", None) != TEMPORARY:
            return _one_line(cause)       # raised on purpose: its text says what to do
        module = type(cause).__module__ or ""
        if module.startswith("pymysql"):
            return _mysql_line(cause, config)
        if _is_blob_error(cause):
            if backend(config) == "embedded":
                return _blob_dir_line(cause, config)
            return _s3_line(cause, config)
        if module.startswith("sqlite3"):
            return (f"cannot use the embedded store {_embedded_file(config)} in {DATA_DIR}: "
                    f"{_one_line(cause)}")
    if isinstance(exc, OSError) and backend(config) == "embedded":
        return _data_dir_line(config, exc)
    return _one_line(exc)


def _is_blob_error(exc):
    """A BlobStoreError of either blob store (geomail.blobs.s3, .errors or .localdir)."""
    return any(cls.__name__ == "BlobStoreError" and (cls.__module__ or "").startswith("geomail.blobs")
               for cls in type(exc).__mro__)


def causes(exc):
    """exc, then what it was raised from or during (typed store errors wrap the driver's)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _one_line(exc):
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:1000]


def _mysql_line(exc, config):
    from geomail.store.dburl import parse_db_url
    args = getattr(exc, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    detail = " ".join(str(args[1] if len(args) > 1 else exc).split())
    try:
        url = parse_db_url(config.db_url)
    except (ValueError, AttributeError):
        url = {}
    where = f"{url.get('host', '?')}:{url.get('port', '?')}"
    user = url.get("user", "")
    database = url.get("database", "")
    if code in (ER_ACCESS_DENIED, ER_ACCESS_DENIED_NO_PASSWORD):
        return (f"MySQL at {where} refused user {user!r} (access denied): fix the user or "
                f"password in {DB_URL}")
    if code == ER_DBACCESS_DENIED:
        return (f"MySQL at {where} does not let user {user!r} use database {database!r}: "
                f"grant access, or fix {DB_URL}")
    if code == ER_BAD_DB:
        return (f"MySQL database {database!r} does not exist at {where}: create it "
                f"(`geomail-admin migrate` does), or fix the database name in {DB_URL}")
    if code in (CR_CONNECTION_ERROR, CR_CONN_HOST_ERROR, CR_UNKNOWN_HOST):
        reason = detail.split("(", 1)[1].rstrip(")") if "(" in detail else detail
        if "Name or service not known" in reason or "nodename nor servname" in reason:
            return f"cannot connect to MySQL at {where}: unknown host name; fix the host in {DB_URL}"
        return (f"cannot connect to MySQL at {where} ({reason}): is it running there? "
                f"Fix the host or port in {DB_URL}")
    if code in (CR_SERVER_GONE, CR_SERVER_LOST):
        return f"MySQL at {where} dropped the connection ({detail}): check the server and {DB_URL}"
    return f"MySQL at {where} failed: {detail} (check {DB_URL})"


def _s3_line(exc, config):
    endpoint = getattr(config, "oss_endpoint", "") or "AWS"
    bucket = getattr(config, "oss_bucket", "")
    text = _one_line(exc)
    if "unreachable" in text or "Could not connect" in text or "timed out" in text:
        return f"cannot reach the S3 endpoint {endpoint}: is it running there? Fix {ENDPOINT}"
    if "does not exist" in text or "NoSuchBucket" in text:
        return (f"S3 bucket {bucket!r} does not exist at {endpoint}: create it, fix {BUCKET}, "
                f"or let geomail create it with {CREATE_BUCKET}")
    if "Unable to locate credentials" in text or "NoCredentials" in text:
        return f"S3 at {endpoint} needs credentials: set {KEYS}"
    if any(word in text for word in _S3_CREDENTIALS):
        return f"S3 at {endpoint} refused the credentials for bucket {bucket!r}: fix {KEYS}"
    return f"S3 at {endpoint}, bucket {bucket!r}: {text} (check {ENDPOINT}, {BUCKET}, {KEYS})"


def _blob_dir_line(exc, config):
    text = _one_line(exc)
    if "creating it is turned off" in text:
        return (f"{text}: create it, fix {BUCKET}, or let geomail create it with "
                f"{CREATE_BUCKET}")
    return f"cannot use {config.data_dir} as {DATA_DIR}: {text}"


def _data_dir_line(config, exc):
    reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
    where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
    return f"cannot use {config.data_dir} as {DATA_DIR}: {reason}{where}"


def _embedded_file(config):
    from geomail.store.open import database_path
    return database_path(config)
