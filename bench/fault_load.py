"""Fault-and-load run: parallel SMTP senders while workers, SeaweedFS and MariaDB fail.

A private MariaDB (its own data directory, port and socket: the machine's
shared server is never touched), a private SeaweedFS and a real
``bin/geomail --workers 2`` with a one-second janitor and small multipart
settings.  Senders deliver a mix of plain messages, small attachments (one
PUT) and 6 MiB attachments (two-part multipart uploads) while an injector,
every few seconds, in turn: kill -9s a worker (the master replaces it),
pauses SeaweedFS (SIGSTOP, SIGCONT), KILLs every MySQL connection of the
database, kill -9s SeaweedFS (and starts it again); MariaDB is kill -9ed
and restarted once, half-way.  Afterwards, once the janitor has run:

  lost          messages answered 250 that are not stored
  half-stored   stored messages whose attachments are missing or differ
                (each object's bytes are checked against its row's sha256)
  leaked        objects no attachments row names, open multipart uploads,
                intent rows left

Exit status 0 when all three are 0.  Usage (CI runs a small size through
tests/test_fault_load.py):

    python bench/fault_load.py --seconds 180 --senders 6
"""

import argparse
import hashlib
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fixtures.faults import (PrivateMariaDB, PrivateS3, db_query,  # noqa: E402
                                   kill_db_connections)
from tests.fixtures.server import GeomailProcess                    # noqa: E402
from tests.smtp.conftest import (RawSMTP, attachment_message, attachment_payload,  # noqa: E402
                                 bucket_keys, multipart_uploads, plain_message,
                                 s3_client)

KiB, MiB = 1024, 1024 * 1024
KINDS = (("plain", 0, 40), ("small", 100 * KiB, 45), ("multipart", 6 * MiB, 15))


# -- sending -----------------------------------------------------------------------

def build(kind, size, subject):
    """(message bytes, sha256 of the attachment or None)."""
    if not size:
        return plain_message(subject=subject), None
    payload = attachment_payload(size, seed=subject.encode())
    return (attachment_message(size, subject=subject, payload=payload),
            hashlib.sha256(payload).hexdigest())


def deliver(port, message):
    """One SMTP transaction; the final reply code, the first non-2xx/3xx, or None (lost)."""
    try:
        client = RawSMTP(port, timeout=60)
    except OSError:
        return None
    try:
        code = int(client.greeting[0])
        if code != 220:
            return code
        for command, expected in (("EHLO load.test", 250), ("MAIL FROM:<load@x.org>", 250),
                                  ("RCPT TO:<load@example.com>", 250), ("DATA", 354)):
            code, _ = client.command(command)
            if code != expected:
                return code
        code, _ = client.data(message)
        client.quit()
        return code
    except (OSError, ConnectionError, ValueError):
        return None
    finally:
        client.close()


class Senders:
    def __init__(self, port, count, seed):
        self.port = port
        self.records = []            # (subject, kind, sha or None, code)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.random = random.Random(seed)
        self.threads = [threading.Thread(target=self.run, args=(n,), daemon=True)
                        for n in range(count)]

    def run(self, n):
        rng = random.Random(self.random.random() + n)
        kinds, weights = [k[:2] for k in KINDS], [k[2] for k in KINDS]
        i = 0
        while not self.stop.is_set():
            kind, size = rng.choices(kinds, weights)[0]
            subject = f"load-{n}-{i}-{kind}-{secrets.token_hex(3)}"
            message, sha = build(kind, size, subject)
            code = deliver(self.port, message)
            with self.lock:
                self.records.append((subject, kind, sha, code))
            i += 1
            if code != 250:
                time.sleep(0.2)      # a real MTA would wait longer before its retry

    def start(self):
        for thread in self.threads:
            thread.start()

    def finish(self, timeout=180):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self.threads)


# -- faults ----------------------------------------------------------------------------

class Injector:
    """Injects one fault every ``interval`` seconds, in turn; MariaDB once, half-way."""

    def __init__(self, stack, interval, seconds, log):
        self.stack = stack
        self.interval = interval
        self.seconds = seconds
        self.log = log
        self.counts = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.error = None

    def run(self):
        faults = [self.kill_worker, self.pause_s3, self.kill_db_connections, self.kill_s3]
        started = time.monotonic()
        db_restarted = False
        turn = 0
        try:
            while not self.stop.wait(self.interval):
                if not db_restarted and time.monotonic() - started >= self.seconds / 2:
                    self.restart_mariadb()
                    db_restarted = True
                    continue
                faults[turn % len(faults)]()
                turn += 1
            # a short run still gets every kind once (the senders are still sending)
            for fault in faults[turn:]:
                fault()
            if not db_restarted:
                self.restart_mariadb()
        except Exception as exc:     # reported by the run; the stack is left as it is
            self.error = exc

    def note(self, name, detail=""):
        self.counts[name] = self.counts.get(name, 0) + 1
        self.log(f"fault: {name} {detail}".rstrip())

    def kill_worker(self):
        workers = self.stack.geomail.workers()
        if workers:
            pid = random.choice(workers)
            os.kill(pid, signal.SIGKILL)
            self.note("worker kill -9", f"pid {pid}")

    def pause_s3(self):
        self.stack.s3.pause()
        self.note("SeaweedFS paused")
        time.sleep(random.uniform(1.0, 3.0))
        self.stack.s3.resume()

    def kill_s3(self):
        self.stack.s3.kill()
        self.note("SeaweedFS kill -9")
        time.sleep(1.0)
        self.stack.s3.start()

    def kill_db_connections(self):
        killed = kill_db_connections(self.stack.db_url)
        self.note("MySQL connections killed", f"({len(killed)})")

    def restart_mariadb(self):
        self.stack.mariadb.kill()
        self.note("MariaDB kill -9 and restart")
        time.sleep(0.5)
        self.stack.mariadb.start()

    def start(self):
        self.thread.start()

    def finish(self):
        self.stop.set()
        self.thread.join(120)


# -- the stack -----------------------------------------------------------------------

class Stack:
    def __init__(self, workers):
        self.directory = tempfile.mkdtemp(prefix="geomail-fault-load-")
        self.workers = workers
        self.mariadb = PrivateMariaDB(os.path.join(self.directory, "mariadb"))
        self.s3 = None
        self.geomail = None
        self.bucket = f"geomail-load-{secrets.token_hex(4)}"
        self.db_url = None

    def __enter__(self):
        from geomail.store.database import ensure_database
        os.makedirs(self.mariadb.directory, exist_ok=True)
        self.mariadb.install().start()
        self.db_url = self.mariadb.url("geomail_load")
        ensure_database(self.db_url)
        self.s3 = PrivateS3(os.path.join(self.directory, "s3")).start()
        self.geomail = GeomailProcess(
            os.path.join(self.directory, "geomail"), self.db_url, self.s3.endpoint, self.bucket,
            workers=self.workers, extra_args=[
                "--janitor-interval", "1", "--oss-multipart-threshold", "1M",
                "--oss-part-size", "5M", "--worker-timeout", "10"])
        self.geomail.start()
        self.geomail.wait_workers(self.workers)
        return self

    def __exit__(self, *exc):
        import shutil
        if self.geomail is not None:
            self.geomail.stop()
        if self.s3 is not None:
            self.s3.close()
        self.mariadb.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def recover(self):
        """Every service up again (a fault may have been cut short)."""
        if self.s3.paused:
            self.s3.resume()
        if not self.s3.running:
            self.s3.start()
        if not self.mariadb.running:
            self.mariadb.start()
        self.geomail.wait_workers(self.workers, timeout=60)


# -- checking ----------------------------------------------------------------------

def wait_for_janitor(stack, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            left = db_query(stack.db_url, "SELECT COUNT(*) FROM pending_objects")[0][0]
            if not left and not multipart_uploads(stack.s3.endpoint, stack.bucket):
                return True
        except Exception:        # MariaDB still recovering
            pass
        time.sleep(0.5)
    return False


def check(stack, records):
    """The figures: lost, half-stored, leaked (see the module docstring)."""
    rows = db_query(stack.db_url, "SELECT m.id, m.subject, a.object_key, a.decoded_size,"
                                  " a.sha256 FROM messages m LEFT JOIN attachments a"
                                  " ON a.content_id = m.content_id ORDER BY m.id, a.idx")
    copies = {}
    for message_id, subject, key, size, sha in rows:
        entry = copies.setdefault(subject, {}).setdefault(message_id, [])
        if key is not None:
            entry.append((key, int(size), sha))
    keys = set(bucket_keys(stack.s3.endpoint, stack.bucket))
    referenced = {key for by_id in copies.values() for atts in by_id.values()
                  for key, _, _ in atts}
    client = s3_client(stack.s3.endpoint)
    good_objects = {}
    for key in referenced & keys:
        body = client.get_object(Bucket=stack.bucket, Key=key)["Body"].read()
        good_objects[key] = (len(body), hashlib.sha256(body).hexdigest())
    figures = dict(sent=len(records), acknowledged=0, refused=0, connection_lost=0, lost=0,
                   half_stored=0, duplicates=0, refused_but_stored=0)
    problems = []
    for subject, kind, sha, code in records:
        if code == 250:
            figures["acknowledged"] += 1
        elif code is None:
            figures["connection_lost"] += 1
        else:
            figures["refused"] += 1
        stored = list(copies.get(subject, {}).values())
        if code == 250 and not stored:
            figures["lost"] += 1
            problems.append(f"lost: {subject}")
        if len(stored) > 1:
            figures["duplicates"] += len(stored) - 1
        if stored and code not in (250, None):
            figures["refused_but_stored"] += 1
        expected = [sha] if sha else []
        for attachments in stored:
            whole = ([s for _, _, s in attachments] == expected and all(
                good_objects.get(key) == (size, s) for key, size, s in attachments))
            if not whole:
                figures["half_stored"] += 1
                problems.append(f"half-stored ({code}): {subject} {attachments}")
    figures["leaked_objects"] = len(keys - referenced)
    figures["missing_objects"] = len(referenced - keys)
    figures["open_uploads"] = len(multipart_uploads(stack.s3.endpoint, stack.bucket))
    figures["intents_left"] = int(db_query(stack.db_url,
                                           "SELECT COUNT(*) FROM pending_objects")[0][0])
    problems += [f"leaked object: {k}" for k in sorted(keys - referenced)[:20]]
    return figures, problems


def run(seconds, senders, fault_interval, workers, seed, log=print):
    with Stack(workers) as stack:
        started = time.monotonic()
        sending = Senders(stack.geomail.smtp_port, senders, seed)
        injector = Injector(stack, fault_interval, seconds, log)
        sending.start()
        injector.start()
        time.sleep(seconds)
        injector.finish()
        stack.recover()
        finished = sending.finish()
        stack.recover()
        settled = wait_for_janitor(stack, timeout=120)
        figures, problems = check(stack, sending.records)
        figures.update(seconds=round(time.monotonic() - started, 1),
                       senders_finished=finished, janitor_settled=settled,
                       faults=dict(injector.counts),
                       faults_injected=sum(injector.counts.values()),
                       injector_error=repr(injector.error) if injector.error else None)
        return figures, problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120, help="how long senders send")
    parser.add_argument("--senders", type=int, default=6, help="parallel SMTP senders")
    parser.add_argument("--fault-interval", type=float, default=3.0,
                        help="seconds between faults")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args(argv)
    figures, problems = run(args.seconds, args.senders, args.fault_interval, args.workers,
                            args.seed, log=lambda line: print(line, flush=True))
    for problem in problems[:50]:
        print("problem:", problem)
    print(f"messages sent {figures['sent']}, acknowledged {figures['acknowledged']}, "
          f"refused {figures['refused']}, connection lost {figures['connection_lost']}")
    print(f"lost {figures['lost']}, half-stored {figures['half_stored']}, "
          f"duplicates {figures['duplicates']} (4xx but stored: {figures['refused_but_stored']})")
    print(f"faults injected {figures['faults_injected']}: "
          + ", ".join(f"{k} {v}" for k, v in sorted(figures['faults'].items())))
    print(f"leaked objects {figures['leaked_objects']}, open uploads {figures['open_uploads']}, "
          f"intents left {figures['intents_left']}, missing objects {figures['missing_objects']}")
    print("RESULT " + json.dumps(figures, sort_keys=True))
    ok = (not figures["lost"] and not figures["half_stored"] and not figures["leaked_objects"]
          and not figures["open_uploads"] and not figures["intents_left"]
          and not figures["missing_objects"] and figures["senders_finished"]
          and figures["injector_error"] is None)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
