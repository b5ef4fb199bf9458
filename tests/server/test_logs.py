"""The log follows every session and message; rotation under load loses no line.

A real ``bin/geomail``: one SMTP session with a refusal and a message, its
lines found by the session id; the JSON format; and the shipped
etc/logrotate.d/geomail run by the real logrotate three times while mail
keeps arriving, after which every stored message has its line.
"""

import gzip
import json
import re
import smtplib
import subprocess
import threading
import time

from tests.fixtures.server import ROOT

MESSAGE_ID = "<" + "x" * 3000 + "@example.net>"


def session_lines(log, session):
    return [line for line in log.splitlines() if f"[{session}]" in line]


def test_one_session_from_connect_to_disconnect(start_geomail):
    proc = start_geomail(workers=1)
    with smtplib.SMTP("127.0.0.1", proc.smtp_port) as client:
        client.ehlo("client.example")
        client.mail("sender@example.net")
        code, _ = client.rcpt("someone@elsewhere.example")          # not a local domain
        assert code == 550
        client.rcpt("carol@example.com")
        client.data(f"Message-ID: {MESSAGE_ID}\r\nSubject: logs\r\n\r\nhello\r\n")
    time.sleep(0.3)
    log = proc.output()
    stored = [line for line in log.splitlines() if " stored " in line and "carol@example.com" in line]
    assert len(stored) == 1, log
    session = re.search(r"\[([0-9a-f]{8})\]", stored[0]).group(1)
    lines = session_lines(log, session)
    assert re.search(r"connect from 127\.0\.0\.1 port \d+$", lines[0]), lines
    refused = [line for line in lines if f"[{session}] refused " in line]
    assert len(refused) == 1 and "rcpt TO:<someone@elsewhere.example>" in refused[0] \
        and "550 5.7.1 Relay access denied" in refused[0], lines
    # queue id, Message-ID cut (3,000 characters sent), size, account/mailbox:UID, time to 250
    assert re.search(r"stored [0-9a-f]+ message-id=<x{199}\.\.\.\(\+\d+\) from=<sender@example\.net> "
                     r"size=\d+ to=carol@example\.com/INBOX:1 in \d+\.\d{3} s$", stored[0]), stored[0]
    assert len(stored[0]) < 600
    assert re.search(r"disconnect after \d+\.\d s: \d+ commands, 1 messages, 1 recipients, 1 refused$",
                     lines[-1]), lines


def test_json_lines(start_geomail):
    proc = start_geomail(workers=1, extra_args=["--log-format", "json"])
    with smtplib.SMTP("127.0.0.1", proc.smtp_port) as client:
        client.sendmail("a@example.net", ["dave@example.com"], "Subject: j\r\n\r\nx\r\n")
    time.sleep(0.3)
    entries = [json.loads(line) for line in proc.log_file.read_text().splitlines()]
    assert all({"time", "level", "logger", "pid", "message"} <= set(e) for e in entries)
    stored = [e for e in entries if e["message"].startswith("stored ")]
    assert len(stored) == 1 and re.fullmatch(r"[0-9a-f]{8}", stored[0]["session"])
    same = [e for e in entries if e.get("session") == stored[0]["session"]]
    assert same[0]["message"].startswith("connect from") and same[-1]["message"].startswith("disconnect")
    assert not any("session" in e for e in entries if e["logger"] == "geomail.master")


def test_logrotate_under_load_loses_no_line(tmp_path, start_geomail):
    proc = start_geomail(workers=2)
    config = (ROOT / "etc" / "logrotate.d" / "geomail").read_text()
    config = (config.replace("/var/log/geomail/geomail.log", str(proc.log_file))
                    .replace("/run/geomail.pid", str(proc.pidfile))
                    .replace("    create 0640 geomail adm\n", "    create\n")
                    .replace("    daily\n", "    size 1\n"))
    conf = tmp_path / "logrotate.conf"
    conf.write_text(config)
    sent = []
    stop = threading.Event()

    def load():
        while not stop.is_set() and len(sent) < 2000:
            with smtplib.SMTP("127.0.0.1", proc.smtp_port) as client:
                for _ in range(10):
                    client.sendmail("load@example.net", ["erin@example.com"],
                                    f"Subject: {len(sent)}\r\n\r\nx\r\n")
                    sent.append(1)

    sender = threading.Thread(target=load)
    sender.start()
    try:
        for _ in range(3):
            time.sleep(1.0)
            result = subprocess.run(["logrotate", "-f", "-s", str(tmp_path / "state"), str(conf)],
                                    capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
    finally:
        stop.set()
        sender.join(60)
    time.sleep(1.0)
    texts = []
    for path in sorted(tmp_path.glob("**/geomail.log*")):
        data = path.read_bytes()
        texts.append(gzip.decompress(data).decode() if path.suffix == ".gz" else data.decode())
    assert len(texts) >= 3, [str(p) for p in tmp_path.glob("**/geomail.log*")]
    stored = sum(text.count(" stored ") for text in texts)
    assert len(sent) >= 30 and stored == len(sent), (stored, len(sent))


UNCAUGHT = r"""
import gevent, logging, sys
from geomail import logs
logs.setup(sys.argv[1], "INFO")
logs.log_uncaught(logging.getLogger("geomail.worker"))
def session():
    gevent.getcurrent().session_id = "0badc0de"
    raise RuntimeError("client gone during IDLE")
gevent.spawn(session).join()
gevent.sleep(0)
"""


def test_an_uncaught_greenlet_exception_goes_to_the_log_with_its_session(tmp_path):
    import sys
    log = tmp_path / "uncaught.log"
    result = subprocess.run([sys.executable, "-c", UNCAUGHT, str(log)], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""                       # nothing printed around the logger
    text = log.read_text()
    assert "ERROR geomail.worker: [0badc0de] uncaught exception in Greenlet: RuntimeError: " \
           "client gone during IDLE" in text, text
    assert "Traceback" in text


def test_an_imap_session_from_login_to_logout(start_geomail):
    import imaplib
    from geomail.store.accounts import create_account
    proc = start_geomail(workers=1)
    db = proc.storage.open_db()
    try:
        account = create_account(db, "frank@example.com", "pw")
    finally:
        db.close()
    client = imaplib.IMAP4("127.0.0.1", proc.imap_port)
    client.login(account.address, "pw")
    client.select("INBOX")
    client.logout()
    try:
        client = imaplib.IMAP4("127.0.0.1", proc.imap_port)
        client.login("u" * 5000 + "@example.com", "wrong")
    except imaplib.IMAP4.error:
        pass
    time.sleep(0.3)
    log = proc.output()
    login = [line for line in log.splitlines() if "IMAP login frank@example.com" in line]
    assert len(login) == 1 and "(LOGIN)" in login[0], log
    session = re.search(r"\[([0-9a-f]{8})\]", login[0]).group(1)
    lines = session_lines(log, session)
    assert "connect from 127.0.0.1 port" in lines[0]
    assert any(line.endswith("select INBOX") for line in lines), lines
    assert re.search(r"disconnect after \d+\.\d s: frank@example\.com, 4 commands, \d+ bytes in, "
                     r"\d+ bytes out$", lines[-1]), lines
    failed = [line for line in log.splitlines() if "IMAP login failed for u" in line]
    assert failed and len(failed[0]) < 700 and "...(+" in failed[0]
