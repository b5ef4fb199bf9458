"""geomail-admin as an operator and a script use it: options anywhere, passwords from
anywhere but never an EOFError, tables or JSON, mailboxes managed, exit codes that mean
something.  The real bin/geomail-admin on an embedded store of its own."""

import json
import subprocess
import sys

import pytest

from tests.fixtures.server import ADMIN, clean_env


@pytest.fixture
def admin(tmp_path):
    data = str(tmp_path / "data")

    def run(*args, stdin="", where="after"):
        storage = ["--data-dir", data]
        command = [sys.executable, str(ADMIN)]
        command += [*args, *storage] if where == "after" else [*storage, *args]
        return subprocess.run(command, input=stdin, capture_output=True, text=True,
                              env=clean_env(), timeout=60, cwd=tmp_path)
    return run


def test_storage_options_before_or_after_the_command(admin):
    assert admin("account", "add", "ann@example.test", "--password-stdin", stdin="pw\n").returncode == 0
    before = admin("account", "list", where="before")
    after = admin("account", "list")
    assert before.returncode == after.returncode == 0
    assert before.stdout == after.stdout and "ann@example.test" in after.stdout


def test_no_terminal_and_no_password_option_is_a_usage_error(admin):
    result = admin("account", "add", "bob@example.test")          # stdin is not a terminal
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "EOFError" not in result.stderr
    assert result.stderr.strip() == ("geomail-admin: no terminal to ask for the password on: "
                                     "give --password-stdin or --password-file PATH")
    assert "bob@example.test" not in admin("account", "list").stdout


def test_password_file(admin, tmp_path):
    (tmp_path / "pw").write_text("from a file\n")
    assert admin("account", "add", "cat@example.test", "--password-file",
                 str(tmp_path / "pw")).returncode == 0
    missing = admin("account", "passwd", "cat@example.test", "--password-file", str(tmp_path / "no"))
    assert missing.returncode == 2 and "cannot read --password-file" in missing.stderr
    both = admin("account", "passwd", "cat@example.test", "--password-file", "x", "--password-stdin")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_version_and_help_without_link_footers(admin):
    from geomail import __version__
    version = admin("--version", where="before")
    assert version.returncode == 0 and version.stdout.strip() == f"geomail-admin {__version__}"
    for args in (("--help",), ("account", "add", "--help"), ("mailbox", "rename", "--help")):
        result = admin(*args, where="before")
        assert result.returncode == 0
        assert "goo.gl" not in result.stdout and "Args that start with" not in result.stdout
        assert "the MAIL_* environment variable" in result.stdout.replace("\n", " ")


def test_mailboxes_created_renamed_shown_deleted(admin):
    assert admin("account", "add", "dan@example.test", "--password-stdin", stdin="pw\n").returncode == 0
    assert admin("mailbox", "create", "dan@example.test", "Work/Projects").returncode == 0
    assert admin("mailbox", "create", "dan@example.test", "Work/Projects").returncode == 1
    assert admin("mailbox", "rename", "dan@example.test", "Work", "Job").returncode == 0
    names = [row["name"] for row in json.loads(admin("--json", "mailbox", "list",
                                                    "dan@example.test").stdout)]
    assert "Job" in names and "Job/Projects" in names and "Work" not in names
    status = json.loads(admin("mailbox", "status", "dan@example.test", "Job/Projects",
                              "--json").stdout)
    assert status == [{"name": "Job/Projects", "special_use": "", "messages": 0, "unseen": 0,
                       "size": 0, "uidvalidity": status[0]["uidvalidity"], "uidnext": 1}]
    assert admin("mailbox", "delete", "dan@example.test", "Job/Projects").returncode == 0
    gone = admin("mailbox", "status", "dan@example.test", "Job/Projects")
    assert gone.returncode == 1 and gone.stderr.strip() == \
        "geomail-admin: dan@example.test has no mailbox Job/Projects"
    assert admin("mailbox", "delete", "dan@example.test", "INBOX").returncode == 1


def test_account_show_and_tables(admin):
    assert admin("account", "add", "eve@example.test", "--password-stdin", stdin="pw\n").returncode == 0
    shown = admin("account", "show", "eve@example.test")
    assert shown.returncode == 0 and "address:   eve@example.test" in shown.stdout
    assert shown.stdout.splitlines()[6].split() == ["NAME", "SPECIAL_USE", "MESSAGES", "UNSEEN",
                                                    "SIZE", "UIDVALIDITY", "UIDNEXT"]
    data = json.loads(admin("account", "show", "eve@example.test", "--json").stdout)
    assert data["address"] == "eve@example.test" and data["login"] is True
    assert {box["name"] for box in data["mailboxes"]} == {"INBOX", "Sent", "Drafts", "Trash", "Junk"}
    unknown = admin("account", "show", "nobody@example.test")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "geomail-admin: no account nobody@example.test"
