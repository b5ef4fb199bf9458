"""Stored 4 KiB messages per second: geomail vs Postfix's smtp-sink, in the same run.

    python bench/smtp_throughput.py [--messages 4000] [--runs 3] [--profile DIR]

``smtp-source -s 20 -l 4096 -m N`` (a new connection per message) against
``bin/geomail --workers 2`` (own MariaDB database, own SeaweedFS) and against
``smtp-sink`` (stores nothing: the protocol ceiling on this machine).  Runs
alternate between the two so that both see the same machine state; the
median of the runs is reported, with the ratio and the error count.  Every
geomail run is checked: the INBOX must have grown by exactly N messages.

With ``--profile DIR``, one extra geomail run is profiled with py-spy on
every worker (``py-spy record --format raw``), and the top frames are printed.

Targets (issue 3): >= 600 msgs/s, >= 25% of smtp-sink, zero errors.
"""

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import SmtpSink, Stack, median, smtp_source  # noqa: E402

TARGET_RATE = 600
TARGET_RATIO = 0.25


def inbox_count(stack):
    rows = stack.query("SELECT COALESCE(SUM(message_count), 0) FROM mailboxes WHERE name = 'INBOX'")
    return int(rows[0][0])


def profile_run(stack, messages, directory, seconds=8):
    """Run the load while py-spy samples every worker; returns {worker: [(frame, share)]}."""
    if shutil.which("py-spy") is None:
        print("py-spy is not installed (pip install py-spy): no profile")
        return {}
    os.makedirs(directory, exist_ok=True)
    spies = {}
    for pid in stack.worker_pids():
        out = os.path.join(directory, f"worker-{pid}.txt")
        spies[pid] = (out, subprocess.Popen(
            ["py-spy", "record", "-d", str(seconds), "-r", "200", "-p", str(pid), "-o", out,
             "--format", "raw", "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    time.sleep(1.0)                                  # py-spy attaches
    smtp_source(stack.geomail.smtp_port, messages)
    result = {}
    for pid, (out, spy) in spies.items():
        spy.wait(timeout=seconds + 60)
        if not os.path.exists(out):
            print(f"py-spy on {pid} failed: {spy.stderr.read().decode(errors='replace')[-500:]}")
            continue
        result[pid] = summarise(out)
    return result


def summarise(path, top=25):
    """Self time and inclusive time per function from a py-spy raw (collapsed stacks) file."""
    own = collections.Counter()
    inclusive = collections.Counter()
    total = 0
    with open(path) as handle:
        for line in handle:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            count = int(count)
            total += count
            frames = stack.split(";")
            idle = frames and ("wait" in frames[-1] and "hub" in stack)
            own["<idle: gevent hub wait>" if idle else frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
    return {"samples": total,
            "self": [(frame, n / total) for frame, n in own.most_common(top)] if total else [],
            "inclusive": [(frame, n / total) for frame, n in inclusive.most_common(top * 2)]
            if total else []}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--profile", metavar="DIR", help="also profile one run with py-spy")
    parser.add_argument("--json", metavar="FILE", help="write the figures here")
    args = parser.parse_args(argv)

    sink = SmtpSink()
    rates = {"geomail": [], "smtp-sink": []}
    errors = {"geomail": [], "smtp-sink": []}
    profile = {}
    try:
        with Stack(workers=2, extra_args=["--db-pool-size", "10"]) as stack:
            port = stack.geomail.smtp_port
            # warm up: the recipient's account exists, pools are open, code is loaded
            smtp_source(port, 200, sessions=args.sessions)
            smtp_source(sink.port, 200, sessions=args.sessions)
            for run in range(args.runs):
                for name, target in (("smtp-sink", sink.port), ("geomail", port)):
                    before = inbox_count(stack) if name == "geomail" else 0
                    seconds, problems = smtp_source(target, args.messages, args.sessions)
                    if name == "geomail":
                        stored = inbox_count(stack) - before
                        if stored != args.messages:
                            problems.append(f"stored {stored} of {args.messages} messages")
                    rate = args.messages / seconds
                    rates[name].append(rate)
                    errors[name] += problems
                    print(f"run {run + 1} {name:9}: {args.messages} msgs in {seconds:6.2f} s = "
                          f"{rate:7.0f} msgs/s" + (f"  ERRORS: {problems[:3]}" if problems else ""),
                          flush=True)
            if args.profile:
                profile = profile_run(stack, args.messages, args.profile)
    finally:
        sink.stop()

    geomail, ceiling = median(rates["geomail"]), median(rates["smtp-sink"])
    ratio = geomail / ceiling if ceiling else 0.0
    print()
    print(f"smtp-source -s {args.sessions} -l 4096 -m {args.messages}, median of {args.runs}:")
    backend = ("embedded SQLite + blob directory"
               if os.environ.get("GEOMAIL_TEST_BACKEND") == "embedded" else "MariaDB, SeaweedFS")
    print(f"  geomail (--workers 2, {backend}): {geomail:7.0f} msgs/s")
    print(f"  smtp-sink (stores nothing):                 {ceiling:7.0f} msgs/s")
    print(f"  ratio: {ratio:.1%}   errors: geomail {len(errors['geomail'])}, "
          f"smtp-sink {len(errors['smtp-sink'])}")
    for pid, summary in profile.items():
        print(f"\n  py-spy, worker {pid} ({summary['samples']} samples), top self time:")
        for frame, share in summary["self"][:15]:
            print(f"    {share:6.1%}  {frame}")
    ok = geomail >= TARGET_RATE and ratio >= TARGET_RATIO and not errors["geomail"]
    print(f"  target (>= {TARGET_RATE} msgs/s, >= {TARGET_RATIO:.0%} of smtp-sink, no errors): "
          f"{'met' if ok else 'MISSED'}")
    figures = {"geomail_msgs_per_s": geomail, "smtp_sink_msgs_per_s": ceiling, "ratio": ratio,
               "runs": rates, "errors": errors, "target_met": ok}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    return figures


if __name__ == "__main__":
    sys.exit(0 if main()["target_met"] else 1)
