"""What every benchmark needs: its own MariaDB database, its own SeaweedFS, a real geomail.

``GEOMAIL_TEST_BACKEND=embedded`` runs it on the embedded store instead (a
SQLite file and a blob directory in the stack's own directory), for the
benchmarks that support it (smtp_throughput, smtp_large_attachment).

Reuses the test fixtures' helpers (tests/fixtures), outside pytest:

    with Stack(workers=2) as stack:
        stack.geomail.smtp_port, stack.db_url, stack.s3.endpoint, stack.bucket

Everything started here is stopped and removed at the end (database dropped,
SeaweedFS stopped and its directory deleted, geomail stopped).
"""

import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fixtures.faults import PrivateS3            # noqa: E402
from tests.fixtures.server import GeomailProcess       # noqa: E402
from tests.fixtures.services import db_server_url, free_port  # noqa: E402
from tests.fixtures.storage import TestStorage                # noqa: E402

MiB = 1024 * 1024


def find_tool(name):
    """Path of a Postfix tool (smtp-source, smtp-sink); exits with a clear message if missing."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}")
                                  else None)
    if path is None:
        sys.exit(f"{name} is missing: install Debian's postfix package (and stop its daemon)")
    return path


class Stack:
    """A fresh database, a private SeaweedFS and ``bin/geomail --workers N`` on free ports."""

    def __init__(self, workers=2, extra_args=()):
        self.workers = workers
        # Every load generator here connects from 127.0.0.1: a per-address limit meant
        # for the internet would measure the refusals, not the server.
        self.extra_args = ["--max-connections-per-ip", "1000000", *extra_args]
        self.directory = tempfile.mkdtemp(prefix="geomail-bench-")
        self.db_url = None
        self.s3 = None
        self.geomail = None
        self.bucket = f"geomail-bench-{secrets.token_hex(4)}"
        self.backend = os.environ.get("GEOMAIL_TEST_BACKEND", "mysql")
        self.storage = None

    def __enter__(self):
        from geomail.store.database import ensure_database
        from geomail.store.dburl import with_database
        if self.backend == "embedded":
            self.storage = TestStorage("embedded", data_dir=os.path.join(self.directory, "data"),
                                       bucket=self.bucket)
            self.geomail = GeomailProcess(Path(self.directory) / "geomail", self.storage,
                                          workers=self.workers, extra_args=self.extra_args)
            try:
                self.geomail.start()
                self.geomail.wait_workers(self.workers)
            except BaseException:
                self.__exit__(None, None, None)
                raise
            return self
        try:
            self.db_url = with_database(db_server_url(),
                                        f"geomail_bench_{os.getpid()}_{secrets.token_hex(3)}")
            ensure_database(self.db_url)
            self.s3 = PrivateS3(os.path.join(self.directory, "weed")).start()
            self.geomail = GeomailProcess(Path(self.directory) / "geomail", self.db_url,
                                          self.s3.endpoint, self.bucket, workers=self.workers,
                                          extra_args=self.extra_args)
            self.geomail.start()
            self.geomail.wait_workers(self.workers)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self.geomail is not None:
            self.geomail.stop()
        if self.s3 is not None:
            self.s3.stop()
        if self.db_url is not None:
            from geomail.store.database import drop_database
            try:
                drop_database(self.db_url)
            except Exception as error:
                print(f"warning: could not drop {self.db_url}: {error}")
        shutil.rmtree(self.directory, ignore_errors=True)

    def worker_pids(self):
        return self.geomail.workers()

    def storage_args(self):
        """The options that point bin/geomail-admin at this stack's storage."""
        if self.storage is not None:
            return self.storage.server_args()
        return TestStorage("mysql", db_url=self.db_url, s3_endpoint=self.s3.endpoint,
                           bucket=self.bucket).server_args()

    def query(self, sql, args=()):
        if self.storage is not None:
            db = self.storage.open_db(1)
            try:
                with db.cursor() as cur:
                    cur.execute(sql, tuple(args))
                    return cur.fetchall()
            finally:
                db.close()
        from tests.fixtures.faults import db_query
        return db_query(self.db_url, sql, args)


class SmtpSink:
    """Postfix's smtp-sink on a free port: accepts and discards (the protocol ceiling)."""

    def __init__(self):
        self.port = free_port()
        command = [find_tool("smtp-sink")]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]        # it refuses to run as root otherwise
        command += [f"127.0.0.1:{self.port}", "1024"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        from tests.fixtures.server import port_open
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"smtp-sink did not start: {self.process.stderr.read()!r}")
            time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def smtp_source(port, messages, sessions=20, length=4096, recipient="rcpt@example.com",
                timeout=600, reuse=False):
    """Run smtp-source; returns (seconds, errors: list of str).

    ``reuse``: ``-d``, each of the sessions sends its share of the messages over one
    connection instead of one connection per message."""
    command = [find_tool("smtp-source"), "-s", str(sessions), "-m", str(messages),
               "-l", str(length), "-f", "sender@x.org", "-t", recipient]
    command += ["-d"] if reuse else []
    command.append(f"127.0.0.1:{port}")
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - started
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    if result.returncode != 0:
        errors.append(f"smtp-source exited with {result.returncode}")
    return elapsed, errors


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pids, reaped_children=False):
    """User + system CPU seconds the processes have used so far (from /proc/PID/stat);
    with ``reaped_children`` also what their children already reaped used (cutime,
    cstime): Dovecot's imap processes end up there once its master reaps them."""
    ticks = os.sysconf("SC_CLK_TCK")
    last = 15 if reaped_children else 13
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
            total += sum(int(f) for f in fields[11:last]) / ticks
        except (OSError, ValueError, IndexError):
            pass
    return total


def median(values):
    return statistics.median(values) if values else float("nan")
