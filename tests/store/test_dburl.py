"""parse_db_url: the --db-url option, validated before anything connects."""

import pathlib
import sys

import pytest

from geomail.store.dburl import parse_db_url, with_database


def test_full_url():
    assert parse_db_url("mysql://mail:s%40cr%3At@db.example:3307/geomail?charset=utf8mb4") == {
        "host": "db.example", "port": 3307, "user": "mail", "password": "s@cr:t",
        "database": "geomail", "charset": "utf8mb4"}


def test_defaults():
    kwargs = parse_db_url("mysql://root@127.0.0.1/geomail")
    assert kwargs["port"] == 3306 and kwargs["charset"] == "utf8mb4"
    assert "password" not in kwargs


def test_timeouts_and_ipv6():
    kwargs = parse_db_url("mysql+pymysql://u:p@[::1]:3306/d?connect_timeout=5")
    assert kwargs["host"] == "::1" and kwargs["connect_timeout"] == 5


@pytest.mark.parametrize("url, words", [
    ("postgres://u@h/d", "mysql://"),
    ("u@h/d", "mysql://"),
    ("mysql://u@h", "no database"),
    ("mysql://u@h/", "no database"),
    ("mysql://u@h:99999/d", "port"),
    ("mysql://u@h:abc/d", "port"),
    ("mysql://u@:3306/d", "no host"),
    ("mysql://u@h/d?charst=utf8", "unknown"),
    ("mysql://u@h/d?connect_timeout=soon", "integer"),
    ("", "empty"),
])
def test_refused_with_a_clear_message(url, words):
    with pytest.raises(ValueError) as info:
        parse_db_url(url)
    assert words in str(info.value)


def test_server_only_url_allowed_when_asked():
    assert "database" not in parse_db_url("mysql://root@127.0.0.1:3306/", require_database=False)


def test_with_database():
    assert with_database("mysql://root@h:1/?charset=utf8mb4", "x") == "mysql://root@h:1/x?charset=utf8mb4"


def test_dburl_does_not_import_pymysql():
    import subprocess
    code = "import sys, geomail.store.dburl; print('pymysql' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=pathlib.Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"
