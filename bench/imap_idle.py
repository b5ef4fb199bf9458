"""Thousands of idling IMAP connections: memory per connection and new-mail latency.

    python bench/imap_idle.py [--connections 5000] [--workers 2] [--deliveries 3]
                              [--dovecot 1000] [--profile DIR]

One asyncio client process opens ``--connections`` sockets to
``bin/geomail --workers 2`` (own MariaDB database, own SeaweedFS); each
LOGINs, SELECTs INBOX and IDLEs.  The file-descriptor limit is raised with
``resource.setrlimit`` here and inherited by geomail.

- Memory: the sum of PSS (``/proc/PID/smaps_rollup``) of the master and all
  workers once every connection idles, minus the same sum before connecting
  (after one warm-up session, so that loading code is not counted), divided
  by the number of connections.
- Latency: a message is delivered over SMTP; for each idler, the time from
  the SMTP server's 250 (the message is stored) until that connection has
  read ``* n EXISTS``.  p50/p99 over all idlers, per delivery; the figure
  reported is the worst delivery's.  Times from the start of the SMTP
  transaction are printed too.

The bench account's password is stored with cheap scrypt parameters
(ln=4; they travel with the hash), so that thousands of LOGINs measure the
server, not scrypt.  With ``--dovecot N`` (0: off) a private Dovecot 2.3
(one imap process per connection) is measured the same way with N idlers,
delivering by writing into the Maildir's new/.  Dovecot notices new mail
through inotify; past ``fs.inotify.max_user_instances`` (128 by default) its
imap processes fall back to polling every ``mailbox_idle_check_interval``
(30 s), which then dominates its latency.

Targets (issue 4): < 40 KiB PSS per idle connection; p99 < 1 s.
"""

import argparse
import asyncio
import base64
import hashlib
import os
import resource
import signal
import smtplib
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Stack  # noqa: E402
from imap_fetch_search import ADDRESS, PASSWORD, Dovecot  # noqa: E402

TARGET_KIB = 40
TARGET_P99 = 1.0
CONNECT_CONCURRENCY = 200


def raise_fd_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))   # root may raise hard
            return wanted
        except (ValueError, OSError):
            wanted = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def cheap_password(db_url):
    """The bench account with a low-cost scrypt hash (parameters travel with the hash)."""
    from geomail.store.accounts import create_account
    from geomail.store.database import Database
    salt = os.urandom(16)
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2 ** 4, r=8, p=1, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode().rstrip("=")   # noqa: E731
    stored = f"$scrypt$ln=4,r=8,p=1${b64(salt)}${b64(digest)}"
    db = Database(db_url, 1)
    try:
        create_account(db, ADDRESS, None)
        with db.transaction() as cur:
            cur.execute("UPDATE accounts SET password_hash = %s WHERE address = %s",
                        (stored, ADDRESS))
    finally:
        db.close()


def smtp_deliver(port, n):
    message = (f"From: <sender@x.example.org>\r\nTo: <{ADDRESS}>\r\nSubject: idle bench {n}\r\n"
               f"Message-ID: <idle{n}.{time.time()}@x.example.org>\r\n\r\nwake up {n}\r\n")
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.sendmail("sender@x.example.org", [ADDRESS], message.encode())
        stored = time.monotonic()         # the 250 after DATA has arrived
    return started, stored


def maildir_deliver(dovecot, n):
    message = (f"From: <sender@x.example.org>\r\nTo: <{ADDRESS}>\r\nSubject: idle bench {n}\r\n"
               f"\r\nwake up {n}\r\n").encode()
    started = time.monotonic()
    name = f"{int(time.time())}.M{n}P{os.getpid()}.idlebench"
    tmp = os.path.join(dovecot.maildir, "tmp", name)
    with open(tmp, "wb") as handle:
        handle.write(message)
    os.chown(tmp, dovecot.uid, dovecot.gid)
    os.rename(tmp, os.path.join(dovecot.maildir, "new", name))
    return started, time.monotonic()


class Idler:
    """One connection: LOGIN, SELECT INBOX, IDLE; then notes when it reads EXISTS."""

    __slots__ = ("reader", "writer", "exists", "seen_at")

    def __init__(self):
        self.reader = self.writer = None
        self.exists = 0
        self.seen_at = {}             # EXISTS count -> monotonic time first seen

    async def open(self, port, semaphore):
        async with semaphore:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
            await self._until(b"* OK")
            self.writer.write(f'a LOGIN "{ADDRESS}" "{PASSWORD}"\r\n'.encode())
            await self._until(b"a OK")
            self.writer.write(b"b SELECT INBOX\r\n")
            await self._until(b"b OK")
            self.writer.write(b"c IDLE\r\n")
            await self._until(b"+ ")

    async def _until(self, prefix):
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError(f"closed while waiting for {prefix!r}")
            self._note(line)
            if line.startswith(prefix):
                return line
            if not line.startswith((b"*", b"+")) and (b" NO " in line or b" BAD " in line):
                raise RuntimeError(f"server said {line!r}")

    def _note(self, line):
        if line.startswith(b"* ") and line.rstrip().endswith(b" EXISTS"):
            count = int(line.split()[1])
            self.exists = count
            self.seen_at.setdefault(count, time.monotonic())

    async def listen(self):
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    return
                self._note(line)
        except (ConnectionError, asyncio.CancelledError):
            return

    def close(self):
        if self.writer is not None:
            self.writer.close()


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(q / 100 * len(values) + 0.5)) - 1))
    return values[k]


async def measure(port, count, pids_of, deliver, deliveries, label, timeout=30.0):
    """Open count idlers, measure PSS growth, deliver and time the EXISTS notices."""
    warm = Idler()                         # load the code paths before the baseline
    await warm.open(port, asyncio.Semaphore(1))
    warm.close()
    await asyncio.sleep(1.0)
    before = pss_kib(pids_of())
    semaphore = asyncio.Semaphore(CONNECT_CONCURRENCY)
    idlers = [Idler() for _ in range(count)]
    started = time.monotonic()
    results = await asyncio.gather(*(i.open(port, semaphore) for i in idlers),
                                   return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    idlers = [i for i, r in zip(idlers, results) if not isinstance(r, BaseException)]
    connect_seconds = time.monotonic() - started
    print(f"{label}: {len(idlers)} idling in {connect_seconds:.1f} s"
          + (f", {len(failures)} failed: {failures[0]!r}" if failures else ""), flush=True)
    await asyncio.sleep(3.0)               # let everything settle
    pids = pids_of()
    after = pss_kib(pids)
    per_conn = (after - before) / max(1, len(idlers))
    print(f"{label}: PSS of {len(pids)} processes {before / 1024:.1f} MiB -> "
          f"{after / 1024:.1f} MiB: {per_conn:.1f} KiB per idle connection", flush=True)
    listeners = [asyncio.ensure_future(i.listen()) for i in idlers]
    rounds = []
    loop = asyncio.get_running_loop()
    try:
        for n in range(deliveries):
            target = max(i.exists for i in idlers) + 1
            t_start, t_stored = await loop.run_in_executor(None, deliver, n)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if all(target in i.seen_at for i in idlers):
                    break
                await asyncio.sleep(0.01)
            seen = [i.seen_at[target] for i in idlers if target in i.seen_at]
            missing = len(idlers) - len(seen)
            delays = [t - t_stored for t in seen]
            from_start = [t - t_start for t in seen]
            rounds.append({"p50": percentile(delays, 50), "p99": percentile(delays, 99),
                           "max": max(delays) if delays else float("nan"),
                           "p99_from_start": percentile(from_start, 99), "missing": missing,
                           "smtp_seconds": t_stored - t_start})
            r = rounds[-1]
            print(f"{label}: delivery {n + 1}: p50 {r['p50']:.3f} s, p99 {r['p99']:.3f} s, "
                  f"max {r['max']:.3f} s after the 250 (SMTP took {r['smtp_seconds']:.3f} s; "
                  f"p99 from its start {r['p99_from_start']:.3f} s)"
                  + (f", {missing} never saw it" if missing else ""), flush=True)
            await asyncio.sleep(2.0)
    finally:
        for task in listeners:
            task.cancel()
        for i in idlers:
            i.close()
        await asyncio.sleep(0.5)
    worst = max(rounds, key=lambda r: (r["missing"], r["p99"]))
    return {"connections": len(idlers), "failures": len(failures),
            "connect_seconds": connect_seconds, "pss_before_kib": before,
            "pss_after_kib": after, "kib_per_connection": per_conn, "rounds": rounds,
            "p50": worst["p50"], "p99": worst["p99"], "missing": worst["missing"]}


def profile_workers(pids, directory, seconds):
    os.makedirs(directory, exist_ok=True)
    return [subprocess.Popen(["py-spy", "record", "-r", "200", "-d", str(seconds), "-p", str(pid),
                              "-o", os.path.join(directory, f"idle-{pid}.txt"), "--format", "raw",
                              "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for pid in pids]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--deliveries", type=int, default=3)
    parser.add_argument("--dovecot", type=int, default=0, metavar="N",
                        help="also measure Dovecot with N idlers (0: no)")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the workers during deliveries")
    args = parser.parse_args(argv)

    limit = raise_fd_limit(max(65536, args.connections * 3 + 1000))
    print(f"fd limit {limit}; {args.connections} connections over {args.workers} workers",
          flush=True)
    per_worker = args.connections // args.workers + 1000    # the kernel's spreading is uneven
    extra = ["--max-connections", str(per_worker), "--imap-idle-timeout", "3600"]
    with Stack(workers=args.workers, extra_args=extra) as stack:
        cheap_password(stack.db_url)
        smtp_deliver(stack.geomail.smtp_port, -1)            # INBOX is not empty

        def pids():
            return [stack.geomail.pid] + stack.worker_pids()

        def deliver(n):
            return smtp_deliver(stack.geomail.smtp_port, n)

        spies = profile_workers(stack.worker_pids(), args.profile, 60) if args.profile else []
        result = asyncio.run(measure(stack.geomail.imap_port, args.connections, pids, deliver,
                                     args.deliveries, "geomail"))
        for spy in spies:
            spy.send_signal(signal.SIGINT)        # py-spy writes its file on SIGINT
            spy.wait(60)
    dovecot_result = None
    if args.dovecot:
        dovecot = Dovecot(process_limit=args.dovecot + 100)
        try:
            dovecot.fill([b"From: <a@x.example.org>\r\nSubject: first\r\n\r\nhello\r\n"])
            dovecot.start()
            dovecot_result = asyncio.run(measure(
                dovecot.port, args.dovecot, dovecot.pids, lambda n: maildir_deliver(dovecot, n),
                args.deliveries, "Dovecot"))
        finally:
            dovecot.stop()

    met = (result["kib_per_connection"] < TARGET_KIB and result["p99"] < TARGET_P99
           and not result["missing"] and not result["failures"])
    print(f"\ngeomail, {result['connections']} idle connections over {args.workers} workers:")
    print(f"  PSS per idle connection: {result['kib_per_connection']:.1f} KiB "
          f"(target < {TARGET_KIB} KiB)")
    print(f"  new mail to EXISTS, worst of {args.deliveries} deliveries: p50 {result['p50']:.3f} s,"
          f" p99 {result['p99']:.3f} s (target < {TARGET_P99:.0f} s)")
    if dovecot_result:
        print(f"Dovecot, {dovecot_result['connections']} idle connections: "
              f"{dovecot_result['kib_per_connection']:.1f} KiB per connection, "
              f"p50 {dovecot_result['p50']:.3f} s, p99 {dovecot_result['p99']:.3f} s")
    print(f"  target: {'met' if met else 'MISSED'}")
    result["target_met"] = met
    result["dovecot"] = dovecot_result
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["target_met"] else 1)
