"""Configuration precedence: flag > environment > config file > ./.env > default."""

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
    assert (cfg.host, cfg.smtp_port, cfg.imap_port) == ("0.0.0.0", 25, 143)
    assert cfg.oss_bucket == "mail-attachments"
    assert cfg.oss_endpoint == ""
    assert cfg.smtp_only is False and cfg.daemon is False
    assert cfg.workers >= 1


def test_each_layer_beats_the_one_below(workdir, monkeypatch):
    (workdir / ".env").write_text(
        "# comment\nMAIL_SMTP_PORT=2001\nMAIL_IMAP_PORT=3001\nexport MAIL_OSS_BUCKET='from-dotenv'\n"
        "MAIL_SERVER_HOST=127.0.0.4\nMAIL_OSS_ENDPOINT=http://dotenv:1\n")
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
    assert cfg.smtp_port == 25


def test_secrets_are_masked_in_logs(workdir):
    cfg = load(["--db-url", "mysql://u:hunter2@h/db", "--oss-secret-key", "s3cr3t"])
    text = config.describe(cfg)
    assert "hunter2" not in text and "s3cr3t" not in text


def test_readme_table_is_generated_from_the_table():
    """README's configuration table: python -m geomail.config --markdown."""
    readme = (ROOT / "README.md").read_text()
    begin = readme.index("-->\n", readme.index("<!-- options:begin")) + 4
    end = readme.index("<!-- options:end -->")
    assert readme[begin:end] == config.render_markdown_table()
