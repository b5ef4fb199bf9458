"""imaptest's default stress profile against geomail and a private Dovecot, in the same run.

    python bench/imap_stress.py [--secs 60 | --quick] [--runs 3] [--clients 10]
                                [--imaptest PATH] [--profile DIR]

imaptest (Dovecot's IMAP tester, built apart: it is not part of geomail) is found
with ``--imaptest PATH`` or ``$IMAPTEST``; it needs Dovecot's libraries
(``LD_LIBRARY_PATH=/usr/lib/dovecot`` is set for it).  Both servers get the same
account, an empty INBOX and the same generated mbox for imaptest to APPEND
from; the runs alternate geomail, Dovecot, geomail, ...  Each run reads
imaptest's totals (commands of every kind, errors) and the CPU the server's
processes used meanwhile (/proc/PID/stat): geomail's workers, MariaDB (apart:
the server is shared with whatever else runs on the machine) and every
Dovecot process.  Printed: commands/s, errors, CPU ms per command, and the
ratio geomail/Dovecot, medians over ``--runs``.

With ``--profile DIR`` one more geomail run is sampled by py-spy on every
worker (raw format) and the top frames by self and inclusive time are printed.

Target (issue 13): geomail's commands/s >= Dovecot's, server CPU per command
<= 2.5 ms, no errors.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import ROOT, Stack, cpu_seconds, median  # noqa: E402
from imap_fetch_search import ADDRESS, PASSWORD, Dovecot, create_account  # noqa: E402

MBOX_MESSAGES = 300
CPU_TARGET_MS = 2.5
ERROR_LINE = re.compile(r"^Error: ", re.M)


def find_imaptest(path):
    """imaptest's path from --imaptest or $IMAPTEST; exits with a clear message if absent."""
    path = path or os.environ.get("IMAPTEST")
    if not path:
        sys.exit("imaptest not given: pass --imaptest PATH or set $IMAPTEST "
                 "(Dovecot's imaptest, built apart; it is not part of geomail)")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        sys.exit(f"imaptest not found or not executable at {path}")
    return path


def write_stress_mbox(path, count=MBOX_MESSAGES):
    """An mbox of ordinary generated messages for imaptest to APPEND from."""
    sys.path.insert(0, str(ROOT))
    from tests.fixtures import mailgen
    mailgen.write_mbox(path, mailgen.messages(count, seed=13))


def parse_totals(output):
    """imaptest's last "Totals:" table: {command abbreviation: count}.

    The table is the command names, a line or two of percentages (the profile's
    probabilities), then the counts: the first line of only numbers."""
    lines = output.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("Totals:") and i + 1 < len(lines):
            names = lines[i + 1].split()
            for line in lines[i + 2:]:
                counts = line.split()
                if counts and all(c.isdigit() for c in counts):
                    return dict(zip(names, (int(c) for c in counts)))
    return {}


def tree_cpu_seconds(pids):
    """Dovecot forks an imap process per login and its master reaps it: what it used is
    then in the master's cutime/cstime, no longer under a pid of its own."""
    return cpu_seconds(pids, reaped_children=True)


def mariadb_pids():
    """The MariaDB server's pid(s) (mariadbd or mysqld), from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as handle:
                    if handle.read().strip() in ("mariadbd", "mysqld"):
                        out.append(int(entry))
            except OSError:
                pass
    return out


class Target:
    """One server: its port, the processes whose CPU counts, the figures of its runs."""

    def __init__(self, name, port, pids, db_pids=(), cpu=cpu_seconds):
        self.name, self.port, self.pids, self.db_pids = name, port, pids, db_pids
        self.cpu = cpu
        self.rates, self.commands, self.errors = [], [], []
        self.cpu_ms, self.db_cpu_ms = [], []

    def run(self, imaptest, mbox, secs, clients):
        pids, db_pids = self.pids(), list(self.db_pids)
        cpu0, db0 = self.cpu(pids), cpu_seconds(db_pids)
        started = time.monotonic()
        result = subprocess.run(
            [imaptest, "host=127.0.0.1", f"port={self.port}", f"user={ADDRESS}",
             f"pass={PASSWORD}", f"mbox={mbox}", f"clients={clients}", f"secs={secs}"],
            capture_output=True, text=True, errors="replace", timeout=secs + 120,
            env={**os.environ, "LD_LIBRARY_PATH": "/usr/lib/dovecot"})
        elapsed = time.monotonic() - started
        cpu = self.cpu(self.pids()) - cpu0     # Dovecot forks per login: pids anew
        db_cpu = cpu_seconds(db_pids) - db0
        if os.environ.get("STRESS_DEBUG"):
            print(result.stdout[-3000:])
        totals = parse_totals(result.stdout)
        commands = sum(totals.values())
        errors = len(ERROR_LINE.findall(result.stdout + result.stderr))
        if not totals:
            errors += 1
            print(f"   {self.name}: no totals from imaptest (exit {result.returncode}):\n"
                  f"{result.stdout[-1500:]}{result.stderr[-1500:]}")
        self.rates.append(commands / elapsed)
        self.commands.append(commands)
        self.errors.append(errors)
        per = 1000 / commands if commands else float("nan")
        self.cpu_ms.append(cpu * per)
        self.db_cpu_ms.append(db_cpu * per)
        db_note = f", MariaDB {db_cpu * per:.2f} ms" if db_pids else ""
        print(f"   {self.name:8} {commands:8d} commands in {elapsed:5.1f} s = "
              f"{commands / elapsed:7.0f}/s, {errors} errors, CPU {cpu * per:.2f} ms/command"
              f"{db_note}  {totals}", flush=True)
        for line in [text for text in result.stdout.splitlines()
                     if text.startswith("Error: ")][:5]:
            print(f"      {line}")


def profile(stack, imaptest, mbox, secs, clients, directory):
    """py-spy (raw) on every worker during one geomail run; prints the top frames."""
    from smtp_throughput import summarise
    spy_path = shutil.which("py-spy") or "/work/venv/bin/py-spy"
    if not os.path.exists(spy_path):
        print("py-spy is not installed (pip install py-spy): no profile")
        return
    os.makedirs(directory, exist_ok=True)
    spies = []
    for pid in stack.worker_pids():
        out = os.path.join(directory, f"stress-{pid}.txt")
        spies.append((out, subprocess.Popen(
            [spy_path, "record", "-r", "100", "-p", str(pid), "-o", out, "--format", "raw",
             "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    time.sleep(1.0)
    probe = Target("geomail", stack.geomail.imap_port, stack.worker_pids)
    probe.run(imaptest, mbox, secs, clients)
    merged = os.path.join(directory, "stress-all.txt")
    with open(merged, "w") as joined:
        for out, spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            if os.path.exists(out):
                with open(out) as part:
                    joined.write(part.read())
    top = summarise(merged, top=30)
    print(f"-- py-spy, all workers: {top['samples']} samples ({merged})")
    print("   self time:")
    for frame, share in top["self"][:25]:
        print(f"   {share:6.1%}  {frame}")
    print("   inclusive time:")
    for frame, share in top["inclusive"][:40]:
        print(f"   {share:6.1%}  {frame}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secs", type=int, default=60, help="seconds per imaptest run")
    parser.add_argument("--quick", action="store_true", help="20 s runs")
    parser.add_argument("--runs", type=int, default=3, help="runs per server (median)")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--imaptest", metavar="PATH", help="imaptest binary (or $IMAPTEST)")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the geomail workers, once more")
    parser.add_argument("--no-dovecot", action="store_true", help="geomail only")
    args = parser.parse_args(argv)
    imaptest = find_imaptest(args.imaptest)
    secs = 20 if args.quick else args.secs

    tmp = tempfile.mkdtemp(prefix="geomail-bench-stress-")
    mbox = os.path.join(tmp, "stress.mbox")
    write_stress_mbox(mbox)
    dovecot = None if args.no_dovecot else Dovecot()
    try:
        with Stack(workers=args.workers) as stack:
            create_account(stack.db_url)
            targets = [Target("geomail", stack.geomail.imap_port, stack.worker_pids,
                              mariadb_pids())]
            if dovecot is not None:
                dovecot.start()
                targets.append(Target("dovecot", dovecot.port, dovecot.pids,
                                      cpu=tree_cpu_seconds))
            print(f"imaptest stress: {args.clients} clients, {secs} s per run, "
                  f"{args.runs} runs each, alternating", flush=True)
            for _ in range(args.runs):
                for target in targets:
                    target.run(imaptest, mbox, secs, args.clients)
            if args.profile:
                profile(stack, imaptest, mbox, secs, args.clients, args.profile)
    finally:
        if dovecot is not None:
            dovecot.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    geomail = targets[0]
    result = {"geomail": summary(geomail)}
    print(f"\n{'server':10} {'commands/s':>11} {'errors':>7} {'CPU ms/cmd':>11} {'MariaDB ms':>11}")
    line = "{:10} {:11.0f} {:7d} {:11.2f} {:>11}"
    print(line.format("geomail", result["geomail"]["rate"], sum(geomail.errors),
                      result["geomail"]["cpu_ms"], f"{result['geomail']['db_cpu_ms']:.2f}"))
    met = sum(geomail.errors) == 0 and (result["geomail"]["cpu_ms"]
                                        + result["geomail"]["db_cpu_ms"]) <= CPU_TARGET_MS
    if dovecot is not None:
        peer = targets[1]
        result["dovecot"] = summary(peer)
        print(line.format("Dovecot", result["dovecot"]["rate"], sum(peer.errors),
                          result["dovecot"]["cpu_ms"], "-"))
        ratio = result["geomail"]["rate"] / result["dovecot"]["rate"]
        result["ratio"] = ratio
        met = met and ratio >= 1.0
        print(f"ratio geomail/Dovecot commands/s: {ratio:.2f}x (target >= 1.00x); "
              f"geomail CPU per command, workers + MariaDB: "
              f"{result['geomail']['cpu_ms'] + result['geomail']['db_cpu_ms']:.2f} ms "
              f"(target <= {CPU_TARGET_MS} ms)")
    result["target_met"] = met
    print("target", "met" if met else "MISSED")
    return result


def summary(target):
    return {"rate": median(target.rates), "commands": target.commands,
            "errors": sum(target.errors), "cpu_ms": median(target.cpu_ms),
            "db_cpu_ms": median(target.db_cpu_ms) if target.db_pids else 0.0}


if __name__ == "__main__":
    sys.exit(0 if main()["target_met"] else 1)
