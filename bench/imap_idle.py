"""Thousands of idling IMAP connections: memory per connection and new-mail latency.

    python bench/imap_idle.py [--sizes 1000,5000] [--runs 3] [--workers 2] [--deliveries 3]
                              [--client-processes 2] [--connections N] [--dovecot 1000]
                              [--profile DIR]

Each run starts a fresh ``bin/geomail --workers 2`` (own MariaDB database,
own SeaweedFS) and grows the idlers to each size in turn (1,000, then 5,000);
each idler LOGINs, SELECTs INBOX and IDLEs.  The idlers are held by
``--client-processes`` selectors-based processes (bench/idle_clients.py),
so 5,000 of them cost the 2-core box little.  The file-descriptor limit is
raised with ``resource.setrlimit`` here and inherited by geomail and the
clients; every idler comes from 127.0.0.1, so the stack passes
``--max-connections-per-ip`` (bench/common.py) and ``--max-connections``
is set above the largest size's share per worker.

- Memory: the sum of PSS (``/proc/PID/smaps_rollup``) of the master and all
  workers once every connection idles, minus the same sum before connecting
  (after one warm-up session, so that loading code is not counted), divided
  by the number of connections; per size, the median over the runs, and the
  ratio of the per-idler cost at the largest size to the smallest's.
- Latency: a message is delivered over SMTP; for each idler, the time from
  the SMTP server's 250 (the message is stored) until that connection has
  read ``* n EXISTS``.  p50/p99 over all idlers, per delivery; the figure
  reported is the worst delivery's (median over the runs).  Times from the start of the SMTP
  transaction are printed too.

The bench account's password is stored with cheap scrypt parameters
(ln=4; they travel with the hash), so that thousands of LOGINs measure the
server, not scrypt.  With ``--dovecot N`` (0: off) a private Dovecot 2.3
(one imap process per connection) is measured the same way with N idlers,
delivering by writing into the Maildir's new/.  Dovecot notices new mail
through inotify; past ``fs.inotify.max_user_instances`` (128 by default) its
imap processes fall back to polling every ``mailbox_idle_check_interval``
(30 s), which then dominates its latency.

Targets (issue 13): <= 20 KiB PSS per idle connection at every size, the
per-idler cost at 5,000 within 1.3x of that at 1,000; p99 <= 1 s at 5,000.
"""

import argparse
import base64
import hashlib
import os
import resource
import signal
import smtplib
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Stack  # noqa: E402
from imap_fetch_search import ADDRESS, PASSWORD, Dovecot  # noqa: E402

TARGET_KIB = 20
TARGET_P99 = 1.0
TARGET_RATIO = 1.3       # per-idler cost at the largest size / at the smallest


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


class ClientProcesses:
    """Idlers held by a few bench/idle_clients.py processes, spread evenly over them."""

    def __init__(self, port, processes):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "idle_clients.py")
        self.children = [subprocess.Popen([sys.executable, script, str(port), ADDRESS, PASSWORD],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                         for _ in range(processes)]

    def _ask(self, lines):
        for child, line in zip(self.children, lines):
            child.stdin.write(line + "\n")
            child.stdin.flush()
        return [child.stdout.readline().split() for child in self.children]

    def open(self, count):
        """(idlers opened, failures, first error)."""
        shares = [count // len(self.children) + (i < count % len(self.children))
                  for i in range(len(self.children))]
        answers = self._ask([f"open {n}" for n in shares])
        errors = [" ".join(a[3:]) for a in answers if len(a) > 3]
        return (sum(int(a[1]) for a in answers), sum(int(a[2]) for a in answers),
                errors[0] if errors else "")

    def start_expecting(self, count, seconds):
        for child in self.children:
            child.stdin.write(f"expect {count} {seconds}\n")
            child.stdin.flush()

    def seen(self):
        """(idlers that never saw it, the monotonic times the others did)."""
        missing, times = 0, []
        for child in self.children:
            words = child.stdout.readline().split()
            missing += int(words[1])
            times += [float(t) for t in words[3:]]
        return missing, times

    def close(self):
        for child in self.children:
            try:
                child.stdin.write("quit\n")
                child.stdin.close()
            except OSError:
                pass
        for child in self.children:
            child.wait(30)


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(q / 100 * len(values) + 0.5)) - 1))
    return values[k]


def measure(port, sizes, pids_of, deliver, deliveries, label, processes, messages=1,
            timeout=30.0):
    """Grow the idlers to each of sizes in turn: PSS growth per idler, then new-mail latency.

    The baseline is taken once, after a warm-up idler came and went (code loaded),
    and every size is measured against it, so per-idler costs of two sizes compare.
    """
    warm = ClientProcesses(port, 1)
    warm.open(1)
    warm.close()
    time.sleep(1.0)
    before = pss_kib(pids_of())
    clients = ClientProcesses(port, processes)
    results = []
    try:
        total = failures = 0
        for size in sizes:
            started = time.monotonic()
            opened, failed, error = clients.open(size - total)
            total += opened
            failures += failed
            connect_seconds = time.monotonic() - started
            print(f"{label}: {total} idling ({opened} opened in {connect_seconds:.1f} s)"
                  + (f", {failed} failed: {error}" if failed else ""), flush=True)
            time.sleep(3.0)                 # let everything settle
            pids = pids_of()
            after = pss_kib(pids)
            per_conn = (after - before) / max(1, total)
            print(f"{label}: PSS of {len(pids)} processes {before / 1024:.1f} MiB -> "
                  f"{after / 1024:.1f} MiB: {per_conn:.1f} KiB per idle connection "
                  f"at {total}", flush=True)
            rounds = []
            for n in range(deliveries):
                messages += 1
                clients.start_expecting(messages, timeout)   # the clients poll from now on
                t_start, t_stored = deliver(n)
                missing, seen = clients.seen()
                delays = [t - t_stored for t in seen]
                from_start = [t - t_start for t in seen]
                rounds.append({"p50": percentile(delays, 50), "p99": percentile(delays, 99),
                               "max": max(delays) if delays else float("nan"),
                               "p99_from_start": percentile(from_start, 99),
                               "missing": missing, "smtp_seconds": t_stored - t_start})
                r = rounds[-1]
                print(f"{label}: {total} idlers, delivery {n + 1}: p50 {r['p50']:.3f} s, "
                      f"p99 {r['p99']:.3f} s, max {r['max']:.3f} s after the 250 "
                      f"(delivery took {r['smtp_seconds']:.3f} s; p99 from its start "
                      f"{r['p99_from_start']:.3f} s)"
                      + (f", {missing} never saw it" if missing else ""), flush=True)
                time.sleep(1.0)
            worst = max(rounds, key=lambda r: (r["missing"], r["p99"]))
            results.append({"connections": total, "failures": failures,
                            "connect_seconds": connect_seconds, "pss_before_kib": before,
                            "pss_after_kib": after, "kib_per_connection": per_conn,
                            "rounds": rounds, "p50": worst["p50"], "p99": worst["p99"],
                            "missing": worst["missing"]})
    finally:
        clients.close()
        time.sleep(0.5)
    return results


def profile_workers(pids, directory, seconds):
    os.makedirs(directory, exist_ok=True)
    return [subprocess.Popen(["py-spy", "record", "-r", "200", "-d", str(seconds), "-p", str(pid),
                              "-o", os.path.join(directory, f"idle-{pid}.txt"), "--format", "raw",
                              "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for pid in pids]


def median(values):
    return statistics.median(values) if values else float("nan")


def run_geomail(args, sizes):
    """One fresh stack, idlers grown to each size; [result per size]."""
    per_worker = max(sizes) // args.workers + 1000    # the kernel's spreading is uneven
    # Stack also passes --max-connections-per-ip: every idler comes from 127.0.0.1.
    extra = ["--max-connections", str(per_worker), "--imap-idle-timeout", "3600"]
    with Stack(workers=args.workers, extra_args=extra) as stack:
        cheap_password(stack.db_url)
        smtp_deliver(stack.geomail.smtp_port, -1)            # INBOX is not empty

        def pids():
            return [stack.geomail.pid] + stack.worker_pids()

        def deliver(n):
            return smtp_deliver(stack.geomail.smtp_port, n)

        spies = profile_workers(stack.worker_pids(), args.profile, 60) if args.profile else []
        results = measure(stack.geomail.imap_port, sizes, pids, deliver, args.deliveries,
                          "geomail", args.client_processes)
        for spy in spies:
            spy.send_signal(signal.SIGINT)        # py-spy writes its file on SIGINT
            spy.wait(60)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000",
                        help="idlers to measure at, comma-separated, grown in turn")
    parser.add_argument("--connections", type=int, metavar="N",
                        help="measure at N idlers only (instead of --sizes)")
    parser.add_argument("--runs", type=int, default=3, help="fresh stacks; medians over them")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--deliveries", type=int, default=3)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--dovecot", type=int, default=0, metavar="N",
                        help="also measure Dovecot with N idlers (0: no)")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the workers during deliveries")
    args = parser.parse_args(argv)
    sizes = [args.connections] if args.connections else sorted(
        int(n) for n in args.sizes.split(","))

    limit = raise_fd_limit(max(65536, max(sizes) * 3 + 1000))
    print(f"fd limit {limit}; {sizes} idlers over {args.workers} workers, "
          f"{args.client_processes} client processes, {args.runs} runs", flush=True)
    runs = []
    for run in range(args.runs):
        print(f"-- run {run + 1} of {args.runs}", flush=True)
        runs.append(run_geomail(args, sizes))
    dovecot_result = None
    if args.dovecot:
        dovecot = Dovecot(process_limit=args.dovecot + 100)
        try:
            dovecot.fill([b"From: <a@x.example.org>\r\nSubject: first\r\n\r\nhello\r\n"])
            dovecot.start()
            dovecot_result = measure(dovecot.port, [args.dovecot], dovecot.pids,
                                     lambda n: maildir_deliver(dovecot, n), args.deliveries,
                                     "Dovecot", 1)[0]
        finally:
            dovecot.stop()

    by_size = []
    for i, size in enumerate(sizes):
        results = [run[i] for run in runs]
        by_size.append({
            "size": size, "connections": min(r["connections"] for r in results),
            "kib_per_connection": median([r["kib_per_connection"] for r in results]),
            "kib_runs": [r["kib_per_connection"] for r in results],
            "p50": median([r["p50"] for r in results]), "p99": median([r["p99"] for r in results]),
            "p99_worst": max(r["p99"] for r in results),
            "missing": max(r["missing"] for r in results),
            "failures": max(r["failures"] for r in results)})
    ratio = median([run[-1]["kib_per_connection"] / run[0]["kib_per_connection"]
                    for run in runs]) if len(sizes) > 1 else 1.0
    largest = by_size[-1]
    met = (all(s["kib_per_connection"] <= TARGET_KIB and not s["missing"] and not s["failures"]
               for s in by_size)
           and largest["p99"] <= TARGET_P99 and ratio <= TARGET_RATIO)

    print(f"\ngeomail, LOGIN + SELECT + IDLE, {args.workers} workers, medians of {args.runs} runs:")
    for s in by_size:
        print(f"  {s['connections']} idlers: PSS per idle connection {s['kib_per_connection']:.1f} "
              f"KiB (runs: {', '.join(f'{k:.1f}' for k in s['kib_runs'])}; target <= "
              f"{TARGET_KIB} KiB); new mail to EXISTS, worst of {args.deliveries} deliveries: "
              f"p50 {s['p50']:.3f} s, p99 {s['p99']:.3f} s (worst run {s['p99_worst']:.3f} s)"
              + (f", {s['missing']} missed" if s["missing"] else "")
              + (f", {s['failures']} failed to connect" if s["failures"] else ""))
    if len(sizes) > 1:
        print(f"  per-idler cost at {sizes[-1]} / at {sizes[0]}: {ratio:.2f}x "
              f"(target <= {TARGET_RATIO}x)")
    print(f"  p99 at {largest['connections']}: {largest['p99']:.3f} s (target <= {TARGET_P99:.0f} s)")
    if dovecot_result:
        print(f"Dovecot, {dovecot_result['connections']} idle connections: "
              f"{dovecot_result['kib_per_connection']:.1f} KiB per connection, "
              f"p50 {dovecot_result['p50']:.3f} s, p99 {dovecot_result['p99']:.3f} s")
    print(f"  target: {'met' if met else 'MISSED'}")
    return {"connections": largest["connections"],
            "kib_per_connection": largest["kib_per_connection"], "p50": largest["p50"],
            "p99": largest["p99"], "missing": largest["missing"], "sizes": by_size,
            "ratio": ratio, "target_met": met, "dovecot": dovecot_result}


if __name__ == "__main__":
    sys.exit(0 if main()["target_met"] else 1)
