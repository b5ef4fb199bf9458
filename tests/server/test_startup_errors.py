"""A real ``bin/geomail`` (and ``geomail-admin``) that cannot start says why in one line.

Every case runs the launcher as an operator would, stderr not a terminal,
once logging to stderr and once with --log-file: exit status non-zero, the
reason on exactly one line naming the option and environment variable to
fix, and no traceback anywhere.
"""

import secrets
import socket
import subprocess
import sys

import pytest

from tests.fixtures.faults import PrivateS3
from tests.fixtures.server import ADMIN, GEOMAIL, clean_env, run_admin
from tests.fixtures.services import S3_ACCESS_KEY, db_server_url, free_port

DB_SERVER = db_server_url().rstrip("/")


def geomail(tmp_path, *args, log_file=False, env=None, drop=()):
    command = [sys.executable, str(GEOMAIL), "--host", "127.0.0.1", "--workers", "1",
               "--smtp-port", str(free_port()), "--imap-port", str(free_port()), *args]
    if log_file:
        command += ["--log-file", str(tmp_path / "geomail.log")]
    environment = clean_env(**(env or {}))
    for name in drop:
        environment.pop(name, None)
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=environment)


def assert_one_line(result, *needles, log_file=None):
    """Failed, no traceback, and exactly one stderr line (with --log-file: all of stderr)."""
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    matching = [line for line in lines if all(needle in line for needle in needles)]
    assert len(matching) == 1, result.stderr
    if log_file:
        assert len(lines) == 1, result.stderr
        log = log_file.read_text()
        assert "Traceback" not in log and needles[0] in log
    return matching[0]


@pytest.fixture(scope="module")
def s3_with_keys():
    """A SeaweedFS that admits only S3_ACCESS_KEY/S3_SECRET_KEY."""
    server = PrivateS3(require_auth=True).start()
    yield server
    server.close()


def mysql(path="", password=None, port=None):
    base = DB_SERVER
    if password is not None:
        base = base.replace("@", f":{password}@", 1)
    if port is not None:
        host = base.rsplit("@", 1)[1].split(":")[0]
        base = base.rsplit("@", 1)[0] + f"@{host}:{port}"
    return f"{base}/{path}"


def storage(db_url, endpoint, *extra, keys=("geomail-test", "geomail-test")):
    return ["--db-url", db_url, "--oss-endpoint", endpoint, "--oss-access-key", keys[0],
            "--oss-secret-key", keys[1], "--oss-bucket", f"startup-{secrets.token_hex(4)}", *extra]


LOG_MODES = pytest.mark.parametrize("log_file", [False, True], ids=["stderr", "log-file"])


@LOG_MODES
class TestGeomail:
    def check(self, tmp_path, args, *needles, log_file, env=None):
        result = geomail(tmp_path, *args, log_file=log_file, env=env)
        return assert_one_line(result, *needles,
                               log_file=tmp_path / "geomail.log" if log_file else None)

    @pytest.mark.parametrize("args, env", [
        (["--db-url", "mysql://root@127.0.0.1/geomail"], {}),
        (["--oss-endpoint", "http://127.0.0.1:8333"], {}),
        ([], {"MAIL_OSS_ENDPOINT": "http://127.0.0.1:8333"}),
    ], ids=["db-url", "oss-endpoint", "env"])
    def test_only_one_of_db_url_and_oss_endpoint(self, tmp_path, args, env, log_file):
        result = geomail(tmp_path, *args, log_file=log_file, env=env)
        assert result.returncode == 2
        # refused while parsing: nothing is logged yet, so stderr is this one line
        assert_one_line(result, "--db-url (MAIL_DB_URL) and --oss-endpoint (MAIL_OSS_ENDPOINT)",
                        log_file=None)
        assert len(result.stderr.strip().splitlines()) == 1

    def test_db_url_syntax(self, tmp_path, log_file):
        result = geomail(tmp_path, "--db-url", "mysql://root@127.0.0.1:3306/",
                         "--oss-endpoint", "http://127.0.0.1:9", log_file=log_file)
        assert result.returncode == 2
        assert_one_line(result, "argument --db-url", "names no database")

    def test_mysql_down(self, tmp_path, s3_endpoint, log_file):
        line = self.check(tmp_path, storage(mysql("geomail", port=free_port()), s3_endpoint),
                          "cannot connect to MySQL", "--db-url (MAIL_DB_URL)", log_file=log_file)
        assert "Connection refused" in line and "is it running" in line

    def test_mysql_host_unknown(self, tmp_path, s3_endpoint, log_file):
        self.check(tmp_path, storage("mysql://root@no-such-host.invalid/geomail", s3_endpoint),
                   "cannot connect to MySQL at no-such-host.invalid:3306: unknown host name",
                   "--db-url (MAIL_DB_URL)",
                   log_file=log_file)

    def test_mysql_access_denied(self, tmp_path, s3_endpoint, log_file):
        self.check(tmp_path, storage(mysql("geomail", password="wrong-password"), s3_endpoint),
                   "access denied", "fix the user or password in --db-url (MAIL_DB_URL)",
                   log_file=log_file)

    def test_mysql_unknown_database(self, tmp_path, s3_endpoint, log_file):
        name = f"geomail_missing_{secrets.token_hex(4)}"
        self.check(tmp_path, storage(mysql(name), s3_endpoint),
                   f"MySQL database '{name}' does not exist", "--db-url (MAIL_DB_URL)",
                   log_file=log_file)

    def test_bucket_missing_and_not_to_be_created(self, tmp_path, mysql_url, s3_endpoint,
                                                  log_file):
        self.check(tmp_path, storage(mysql_url, s3_endpoint, "--oss-create-bucket", "false"),
                   "does not exist", "--oss-bucket (MAIL_OSS_BUCKET)",
                   "--oss-create-bucket true (MAIL_OSS_CREATE_BUCKET)", log_file=log_file)

    def test_bad_s3_credentials(self, tmp_path, mysql_url, s3_with_keys, log_file):
        line = self.check(tmp_path, storage(mysql_url, s3_with_keys.endpoint,
                                            keys=(S3_ACCESS_KEY, "not-the-secret")),
                          "refused the credentials", "--oss-access-key and --oss-secret-key",
                          "MAIL_OSS_SECRET_KEY", log_file=log_file)
        assert s3_with_keys.endpoint in line

    def test_no_s3_credentials(self, tmp_path, mysql_url, s3_endpoint, log_file):
        """Neither --oss-access-key nor AWS's own places (environment, ~/.aws) have any."""
        nowhere = str(tmp_path / "no-such-file")
        env = {"AWS_SHARED_CREDENTIALS_FILE": nowhere, "AWS_CONFIG_FILE": nowhere,
               "AWS_EC2_METADATA_DISABLED": "true"}
        result = geomail(tmp_path, *storage(mysql_url, s3_endpoint, keys=("", "")),
                         log_file=log_file, env=env, drop=("AWS_ACCESS_KEY_ID",
                                                           "AWS_SECRET_ACCESS_KEY",
                                                           "AWS_SESSION_TOKEN"))
        assert_one_line(result, f"S3 at {s3_endpoint} needs credentials",
                        "--oss-access-key and --oss-secret-key", "MAIL_OSS_ACCESS_KEY",
                        log_file=tmp_path / "geomail.log" if log_file else None)

    def test_s3_endpoint_unreachable(self, tmp_path, mysql_url, log_file):
        endpoint = f"http://127.0.0.1:{free_port()}"
        self.check(tmp_path, storage(mysql_url, endpoint),
                   f"cannot reach the S3 endpoint {endpoint}", "--oss-endpoint (MAIL_OSS_ENDPOINT)",
                   log_file=log_file)

    def test_unwritable_data_dir(self, tmp_path, log_file):
        """A regular file where a directory must be: refused even as root."""
        (tmp_path / "file").write_text("not a directory\n")
        self.check(tmp_path, ["--data-dir", str(tmp_path / "file" / "geomail")],
                   f"cannot use {tmp_path / 'file' / 'geomail'} as --data-dir (MAIL_DATA_DIR)",
                   "Not a directory", log_file=log_file)

    @pytest.mark.parametrize("listener", ["smtp", "imap"])
    def test_port_in_use_names_the_option(self, tmp_path, log_file, listener):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        try:
            self.check(tmp_path, [f"--{listener}-port", str(port), "--data-dir", str(tmp_path)],
                       f"cannot listen on 127.0.0.1:{port}",
                       f"--{listener}-port (MAIL_{listener.upper()}_PORT)", log_file=log_file)
        finally:
            blocker.close()


class TestAdmin:
    def test_wrong_db_url(self, s3_endpoint, s3_bucket):
        result = run_admin(["account", "list"], mysql("geomail", password="wrong-password"),
                           s3_endpoint, s3_bucket)
        assert result.returncode == 1
        line = assert_one_line(result, "geomail-admin: ", "--db-url (MAIL_DB_URL)")
        assert "access denied" in line
        assert len(result.stderr.strip().splitlines()) == 1

    def test_migrate_with_mysql_down(self, s3_endpoint, s3_bucket):
        result = run_admin(["migrate"], mysql("geomail", port=free_port()), s3_endpoint, s3_bucket)
        assert result.returncode == 1
        assert_one_line(result, "cannot connect to MySQL", "--db-url (MAIL_DB_URL)")
        assert len(result.stderr.strip().splitlines()) == 1

    def test_only_one_of_db_url_and_oss_endpoint(self, tmp_path):
        result = subprocess.run([sys.executable, str(ADMIN), "--db-url", mysql("geomail"),
                                 "account", "list"], capture_output=True, text=True,
                                timeout=60, env=clean_env(), cwd=tmp_path)
        assert result.returncode == 2
        assert_one_line(result, "--db-url (MAIL_DB_URL) and --oss-endpoint (MAIL_OSS_ENDPOINT)")
        assert len(result.stderr.strip().splitlines()) == 1

    def test_unwritable_data_dir(self, tmp_path):
        (tmp_path / "file").write_text("not a directory\n")
        result = subprocess.run([sys.executable, str(ADMIN), "--data-dir",
                                 str(tmp_path / "file" / "geomail"), "account", "list"],
                                capture_output=True, text=True, timeout=60, env=clean_env(),
                                cwd=tmp_path)
        assert result.returncode == 1
        assert_one_line(result, "as --data-dir (MAIL_DATA_DIR)", "Not a directory")
        assert len(result.stderr.strip().splitlines()) == 1


def test_ready_server_says_where_it_listens_and_where_data_goes(start_geomail, mysql_url,
                                                                s3_endpoint):
    """The MySQL + S3 branch of the banner, from a real start (the log, not a terminal)."""
    server = start_geomail(workers=1)
    log = server.log_file.read_text()
    assert (f"geomail ready: SMTP 127.0.0.1:{server.smtp_port}, IMAP 127.0.0.1:"
            f"{server.imap_port} (1 workers; domains example.com,example.org)") in log
    database = mysql_url.split("://", 1)[1]
    assert f"data: MySQL {database} + S3 {s3_endpoint} bucket " in log
    assert "account add user@example.com (with the same --db-url and --oss-* settings)" in log
    assert f"swaks --server 127.0.0.1:{server.smtp_port} --to user@example.com" in log
    assert f"any IMAP client at 127.0.0.1:{server.imap_port}" in log


def test_data_dir_is_private_and_handed_to_the_workers_user(tmp_path):
    """preflight makes --data-dir and blobs/ mode 0700 and, as root with --user, gives them
    (and the SQLite files) to that user, whom the workers run as."""
    import argparse
    import os
    import pwd
    import stat
    from geomail import preflight
    config = argparse.Namespace(data_dir=str(tmp_path / "data"), oss_bucket="b", db_url="",
                                oss_endpoint="", user="nobody", group="")
    preflight.prepare_data_dir(config)
    for path in (tmp_path / "data", tmp_path / "data" / "blobs"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert os.listdir(tmp_path / "data") == ["blobs"]        # the write probe is gone
    (tmp_path / "data" / "geomail.sqlite3").write_bytes(b"")
    (tmp_path / "data" / "blobs" / "b").mkdir()
    preflight.hand_over(config)
    owner = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid()
    for path in ("", "blobs", "blobs/b", "geomail.sqlite3"):
        assert os.stat(tmp_path / "data" / path).st_uid == owner, path


def test_blob_directory_failures_name_the_data_dir_options(tmp_path):
    """The local blob store's errors (the embedded backend) point at --data-dir and the bucket
    options, not at S3's."""
    import argparse
    from geomail import preflight
    from geomail.blobs.s3 import BlobStoreError
    config = argparse.Namespace(data_dir=str(tmp_path), oss_bucket="b", db_url="", oss_endpoint="")
    missing = BlobStoreError(f"blob directory {tmp_path}/blobs/b does not exist and creating it "
                             "is turned off")
    line = preflight.explain(missing, config)
    assert "--oss-create-bucket true (MAIL_OSS_CREATE_BUCKET)" in line and "S3" not in line
    unwritable = BlobStoreError(f"blob directory {tmp_path}/blobs/b is not writable by this user")
    assert preflight.explain(unwritable, config).startswith(
        f"cannot use {tmp_path} as --data-dir (MAIL_DATA_DIR): blob directory")
