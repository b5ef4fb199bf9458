"""Configuration precedence: flag > environment > config file > ./.env > default."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from geomail import config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory and an environment without MAIL_* variables."""
    for key in list(__import__("os").environ):
        if key.startswith("MAIL_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load(argv=()):
    return config.load(list(argv))


def test_defaults(workdir):
    cfg = load()
    ports = (25, 143) if os.geteuid() == 0 else (2525, 1143)
    assert (cfg.host, cfg.smtp_port, cfg.imap_port) == ("0.0.0.0", *ports)
    assert cfg.oss_bucket == "mail-attachments"
    assert cfg.oss_endpoint == "" and cfg.db_url == ""
    assert cfg.backend == "embedded" and config.backend(cfg) == "embedded"
    assert cfg.smtp_only is False and cfg.daemon is False
    assert cfg.workers >= 1


def test_each_layer_beats_the_one_below(workdir, monkeypatch):
    (workdir / ".env").write_text(
        "# comment\nMAIL_SMTP_PORT=2001\nMAIL_IMAP_PORT=3001\nexport MAIL_OSS_BUCKET='from-dotenv'\n"
        "MAIL_SERVER_HOST=127.0.0.4\nMAIL_OSS_ENDPOINT=http://dotenv:1\n"
        "MAIL_DB_URL=mysql://dotenv/mail\n")
    conf = workdir / "geomail.conf"
    conf.write_text("smtp-port = 2002\nimap-port = 3002\noss-bucket = from-file\n")
    monkeypatch.setenv("MAIL_SMTP_PORT", "2003")
    cfg = load(["--config", str(conf), "--smtp-port", "2004"])
    assert cfg.smtp_port == 2004            # flag
    monkeypatch.setenv("MAIL_IMAP_PORT", "3003")
    cfg = load(["--config", str(conf)])
    assert cfg.smtp_port == 2003            # environment over file
    assert cfg.imap_port == 3003
    assert cfg.oss_bucket == "from-file"    # file over .env
    assert cfg.host == "127.0.0.4"          # .env over default
    assert cfg.oss_endpoint == "http://dotenv:1"
    assert cfg.workers >= 1                 # default


def test_documented_environment_names(workdir, monkeypatch):
    monkeypatch.setenv("MAIL_SMTP_PORT", "2525")
    monkeypatch.setenv("MAIL_IMAP_PORT", "1143")
    monkeypatch.setenv("MAIL_OSS_BUCKET", "bucket-x")
    monkeypatch.setenv("MAIL_OSS_ENDPOINT", "http://127.0.0.1:8333")
    monkeypatch.setenv("MAIL_SERVER_HOST", "127.0.0.1")
    monkeypatch.setenv("MAIL_DB_URL", "mysql://u:p%40ss@db.example:3307/mail")
    monkeypatch.setenv("MAIL_DOMAINS", "Example.COM, example.org")
    cfg = load()
    assert (cfg.smtp_port, cfg.imap_port, cfg.oss_bucket) == (2525, 1143, "bucket-x")
    assert cfg.oss_endpoint == "http://127.0.0.1:8333" and cfg.host == "127.0.0.1"
    assert cfg.db_url == "mysql://u:p%40ss@db.example:3307/mail"
    assert cfg.domains == ["example.com", "example.org"]


def test_boolean_switches(workdir, monkeypatch):
    assert load(["--smtp-only"]).smtp_only is True
    assert load(["--daemon=false"]).daemon is False
    monkeypatch.setenv("MAIL_IMAP_ONLY", "yes")
    assert load().imap_only is True
    (workdir / "c.conf").write_text("oss-create-bucket = false\n")
    assert load(["--config", str(workdir / "c.conf")]).oss_create_bucket is False


def test_default_config_file_is_read_when_present(workdir, monkeypatch, tmp_path):
    path = tmp_path / "default.conf"
    path.write_text("imap-port = 1999\n")
    monkeypatch.setattr(config, "DEFAULT_CONFIG_FILE", str(path))
    assert load().imap_port == 1999


def run_geomail(args, cwd, env=None):
    return subprocess.run([sys.executable, str(ROOT / "bin" / "geomail"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=30, env=env)


@pytest.mark.parametrize("setting, message", [
    ("MAIL_SMTP_PORT=70000", "argument --smtp-port (from .env MAIL_SMTP_PORT): '70000' is not a valid port"),
    ("MAIL_DB_URL=nonsense", "argument --db-url (from .env MAIL_DB_URL)"),
])
def test_bad_dotenv_value_exits_2(workdir, setting, message):
    (workdir / ".env").write_text(setting + "\n")
    result = run_geomail([], cwd=workdir)
    assert result.returncode == 2
    assert message in result.stderr


def test_bad_config_file_value_exits_2(workdir):
    (workdir / "bad.conf").write_text("imap-port = -1\n")
    result = run_geomail(["--config", str(workdir / "bad.conf")], cwd=workdir)
    assert result.returncode == 2
    assert "argument --imap-port: '-1' is not a valid port" in result.stderr


def test_unknown_config_file_key_exits_2(workdir):
    (workdir / "bad.conf").write_text("smtp-prot = 25\n")
    result = run_geomail(["--config", str(workdir / "bad.conf")], cwd=workdir)
    assert result.returncode == 2
    assert "smtp-prot" in result.stderr


def test_smtp_only_and_imap_only_exclude_each_other(workdir):
    result = run_geomail(["--smtp-only", "--imap-only"], cwd=workdir)
    assert result.returncode == 2
    assert "--smtp-only and --imap-only exclude each other" in result.stderr


def test_sample_config_is_generated_from_the_table():
    """etc/geomail.conf lists every option; regenerate with python -m geomail.config."""
    assert (ROOT / "etc" / "geomail.conf").read_text() == config.render_sample_config()
    for option in config.OPTIONS:
        assert option.env_name in config.render_sample_config()


def test_sample_config_parses(workdir):
    cfg = load(["--config", str(ROOT / "etc" / "geomail.conf")])
    assert cfg.smtp_port == config.OPTIONS_BY_NAME["smtp_port"].default
    assert cfg.backend == "embedded"


def test_secrets_are_masked_in_logs(workdir):
    cfg = load(["--db-url", "mysql://u:hunter2@h/db", "--oss-endpoint", "http://s3:1",
                "--oss-secret-key", "s3cr3t"])
    text = config.describe(cfg)
    assert "hunter2" not in text and "s3cr3t" not in text


def test_readme_table_is_generated_from_the_table():
    """README's configuration table: python -m geomail.config --markdown."""
    readme = (ROOT / "README.md").read_text()
    begin = readme.index("-->\n", readme.index("<!-- options:begin")) + 4
    end = readme.index("<!-- options:end -->")
    assert readme[begin:end] == config.render_markdown_table()


# -- the backend, --data-dir and the ports a user's first run gets --------------

def test_backend_is_chosen_by_db_url_and_oss_endpoint(workdir):
    assert load().backend == "embedded"
    cfg = load(["--db-url", "mysql://u@h/mail", "--oss-endpoint", "http://s3:1"])
    assert cfg.backend == "mysql" and config.backend(cfg) == "mysql"


@pytest.mark.parametrize("argv, env", [
    (["--db-url", "mysql://u@h/mail"], {}),
    (["--oss-endpoint", "http://s3:1"], {}),
    ([], {"MAIL_DB_URL": "mysql://u@h/mail"}),
    (["--db-url", "mysql://u@h/mail", "--oss-endpoint", ""], {}),
])
def test_one_of_db_url_and_oss_endpoint_is_refused(workdir, monkeypatch, capsys, argv, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as stop:
        load(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    for name in ("--db-url", "MAIL_DB_URL", "--oss-endpoint", "MAIL_OSS_ENDPOINT"):
        assert name in err


def test_data_dir_default_follows_the_user(workdir, monkeypatch):
    monkeypatch.setattr(config, "_privileged", lambda: True)
    assert config.default_data_dir() == "/var/lib/geomail"
    assert load().data_dir == "/var/lib/geomail"
    monkeypatch.setattr(config, "_privileged", lambda: False)
    monkeypatch.setenv("HOME", str(workdir / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert load().data_dir == str(workdir / "home" / ".local" / "share" / "geomail")
    monkeypatch.setenv("XDG_DATA_HOME", str(workdir / "xdg"))
    assert load().data_dir == str(workdir / "xdg" / "geomail")


def test_data_dir_is_absolute(workdir, monkeypatch):
    """Made absolute at load: --daemon changes directory before the workers open the store."""
    assert load(["--data-dir", "rel/dir"]).data_dir == str(workdir / "rel" / "dir")
    monkeypatch.setenv("HOME", str(workdir))
    assert load(["--data-dir", "~/x"]).data_dir == str(workdir / "x")
    monkeypatch.setenv("MAIL_DATA_DIR", "/srv/mail")
    assert load().data_dir == "/srv/mail"


def test_default_ports_need_no_root_for_a_user(monkeypatch):
    monkeypatch.setattr(config, "_privileged", lambda: True)
    assert config.default_port(25, 2525) == 25
    monkeypatch.setattr(config, "_privileged", lambda: False)
    assert config.default_port(25, 2525) == 2525


def test_factories_build_mysql_and_s3_from_the_settings(workdir):
    from geomail.blobs.open import open_blob_store
    from geomail.blobs.s3 import BlobStore
    from geomail.store.database import Database
    from geomail.store.open import open_database
    cfg = load(["--db-url", "mysql://u@h:3307/mail", "--oss-endpoint", "http://s3:1",
                "--oss-bucket", "b", "--oss-part-size", "6M"])
    db = open_database(cfg, 3)
    assert isinstance(db, Database) and (db.url, db.pool_size) == ("mysql://u@h:3307/mail", 3)
    store = open_blob_store(cfg)
    assert isinstance(store.wrapped, BlobStore)   # inside the timing wrapper (blobs/timed.py)
    assert (store.endpoint, store.bucket, store.part_size) == ("http://s3:1", "b", 6 * 1024 * 1024)
    assert open_blob_store(cfg, "older-bucket").bucket == "older-bucket"


def test_banner_for_the_embedded_store(workdir):
    from geomail import banner
    cfg = load(["--domains", "example.test", "--workers", "4", "--data-dir", "store",
                "--smtp-port", "2525", "--imap-port", "1143"])
    lines = banner.lines(cfg, [("smtp", 2525), ("imap", 1143)])
    text = "\n".join(lines)
    assert lines[0] == "geomail ready: SMTP 0.0.0.0:2525, IMAP 0.0.0.0:1143 (4 workers; domains example.test)"
    assert f"embedded SQLite + local blob directory in {workdir / 'store'}" in text
    assert "account add user@example.test" in text and f"--data-dir {workdir / 'store'}" in text
    assert "swaks --server 127.0.0.1:2525 --to user@example.test" in text
    assert "IMAP client at 127.0.0.1:1143" in text


def test_banner_for_mysql_and_s3_hides_the_password(workdir):
    from geomail import banner
    cfg = load(["--db-url", "mysql://mail:hunter2@db.example:3307/geo", "--oss-endpoint",
                "http://s3:1", "--oss-bucket", "b", "--host", "127.0.0.5"])
    text = "\n".join(banner.lines(cfg, [("smtp", 25)]))
    assert "MySQL mail@db.example:3307/geo + S3 http://s3:1 bucket b" in text
    assert "hunter2" not in text and "--data-dir" not in text
    assert "no --domains (MAIL_DOMAINS) set" in text
    assert "swaks --server 127.0.0.5:25" in text and "IMAP client" not in text
