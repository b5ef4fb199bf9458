"""geomail-admin quota get / set: limits in RFC 9208 units, 0 or none removes one, an
omitted one stays; tables or JSON; exit codes 1 (no such account) and 2 (bad usage)."""

import json

from tests.server.test_admin_commands import admin  # noqa: F401  (the fixture)


def table(storage, messages):
    width = max(len("LIMIT"), len(str(storage)), len(str(messages)))
    return ("RESOURCE  USAGE  " + "LIMIT".ljust(width) + "  UNIT\n"
            f"STORAGE   0      {str(storage).ljust(width)}  KiB\n"
            f"MESSAGE   0      {str(messages).ljust(width)}  messages\n")


def test_quota_get_and_set(admin):  # noqa: F811
    assert admin("account", "add", "eve@example.test", "--password-stdin", stdin="pw\n").returncode == 0
    got = admin("quota", "get", "eve@example.test")
    assert got.returncode == 0 and got.stdout == table("none", "none")
    assert admin("quota", "set", "eve@example.test", "--storage", "2048").stdout == table(2048, "none")
    assert admin("quota", "set", "EVE@example.test", "--messages", "100").stdout == table(2048, 100)
    assert json.loads(admin("--json", "quota", "get", "eve@example.test").stdout) == [
        {"resource": "STORAGE", "usage": 0, "limit": 2048, "unit": "KiB"},
        {"resource": "MESSAGE", "usage": 0, "limit": 100, "unit": "messages"}]
    assert admin("quota", "set", "eve@example.test", "--storage", "none").stdout == table("none", 100)
    assert admin("quota", "set", "eve@example.test", "--messages", "0").stdout == table("none", "none")


def test_quota_errors(admin):  # noqa: F811
    assert admin("account", "add", "fay@example.test", "--password-stdin", stdin="pw\n").returncode == 0
    missing = admin("quota", "get", "nobody@example.test")
    assert missing.returncode == 1 and missing.stderr == "geomail-admin: no account nobody@example.test\n"
    unknown = admin("quota", "set", "nobody@example.test", "--messages", "3")
    assert unknown.returncode == 1 and unknown.stderr == "geomail-admin: no account nobody@example.test\n"
    nothing = admin("quota", "set", "fay@example.test")
    assert nothing.returncode == 2
    assert nothing.stderr == "geomail-admin: quota set needs --storage KIB, --messages N or both\n"
    negative = admin("quota", "set", "fay@example.test", "--storage", "-5")
    assert negative.returncode == 2 and "not a limit: '-5'" in negative.stderr
    assert "Traceback" not in negative.stderr + nothing.stderr + missing.stderr
