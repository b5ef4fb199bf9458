"""etc/init.d/geomail start/status/reload/stop against a temporary pidfile."""

import os
import subprocess
import sys

from tests.fixtures.server import GEOMAIL, ROOT, children_of, clean_env, port_open, wait_for
from tests.fixtures.services import free_port

SCRIPT = ROOT / "etc" / "init.d" / "geomail"


def test_start_status_reload_stop(tmp_path, mysql_url, s3_endpoint, s3_bucket):
    smtp_port, imap_port = free_port(), free_port()
    conf = tmp_path / "geomail.conf"
    conf.write_text("\n".join([
        "workers = 2", "host = 127.0.0.1", f"smtp-port = {smtp_port}", f"imap-port = {imap_port}",
        f"db-url = {mysql_url}", f"oss-endpoint = {s3_endpoint}", f"oss-bucket = {s3_bucket}", "oss-access-key = k", "oss-secret-key = s",
        f"log-file = {tmp_path / 'geomail.log'}", "domains = example.com", "graceful-timeout = 5",
    ]) + "\n")
    launcher = tmp_path / "geomail-launcher"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} {GEOMAIL} \"$@\"\n")
    launcher.chmod(0o755)
    pidfile = tmp_path / "run" / "geomail.pid"
    pidfile.parent.mkdir()
    env = clean_env(GEOMAIL_BIN=launcher, GEOMAIL_CONFIG=conf, PIDFILE=pidfile, STOP_TIMEOUT=20)

    def init(action):
        return subprocess.run(["sh", str(SCRIPT), action], env=env, capture_output=True,
                              text=True, timeout=60, cwd=tmp_path)

    assert init("status").returncode == 3
    started = init("start")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        master = int(pidfile.read_text())
        assert port_open(smtp_port) and port_open(imap_port)
        status = init("status")
        assert status.returncode == 0 and f"running (pid {master})" in status.stdout
        assert init("start").returncode == 0          # already running: nothing happens
        assert int(pidfile.read_text()) == master

        workers = wait_for(lambda: len(children_of(master)) == 2 and children_of(master),
                           message="2 workers")
        assert init("reload").returncode == 0
        wait_for(lambda: len(children_of(master)) == 2 and not set(children_of(master)) & set(workers),
                 timeout=30, message="workers replaced after reload")
        assert int(pidfile.read_text()) == master       # same master, new workers
    finally:
        stopped = init("stop")
    assert stopped.returncode == 0
    assert not pidfile.exists()
    assert not os.path.exists(f"/proc/{master}")
    assert init("status").returncode == 3
    assert not port_open(smtp_port)
