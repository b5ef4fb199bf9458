"""Long fuzz run of the SMTP and MIME targets of tests/fuzz (the CI pass is short and fixed).

    python bench/fuzz_smtp_mime.py --seconds 300          # about five minutes in all
    python bench/fuzz_smtp_mime.py --count 2000           # 2000 inputs per target
    python bench/fuzz_smtp_mime.py --seconds 60 --targets smtp-sessions,mime-structured

In-process targets (hypothesis, not derandomized, in rounds of --round
examples): dot-stream, line-ends, paths, mime-bytes, mime-structured.
smtp-sessions plays mutated SMTP sessions against a real bin/geomail
(--workers 2, its own database and SeaweedFS: bench/common.Stack).

Prints, per target, the inputs tried and the failures (hypothesis prints
the minimal falsifying input of each); exits 1 when anything failed.
"""

import argparse
import os
import random
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Stack  # noqa: E402  (puts the repository on sys.path)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import InvalidArgument  # noqa: E402

from tests.fuzz import test_mime_fuzz as mime  # noqa: E402
from tests.fuzz import test_smtp_fuzz as smtp  # noqa: E402

IN_PROCESS = ["dot-stream", "line-ends", "paths", "mime-bytes", "mime-structured"]
ALL_TARGETS = IN_PROCESS + ["smtp-sessions"]


def _structured(rng, chunks):
    mime.check_message(mime.MessageGenerator(rng).message(), chunks)


def in_process_targets():
    """name -> (hypothesis strategies, check function)."""
    return {
        "dot-stream": ((smtp.streams, smtp.cut_lists), smtp.check_dot_stream),
        "line-ends": ((smtp.streams, smtp.cut_lists), smtp.check_line_end_fixer),
        "paths": ((st.sampled_from(["FROM", "TO"]), smtp.paths, st.booleans(), st.booleans()),
                  smtp.check_parse_path),
        "mime-bytes": ((st.binary(max_size=20000), mime.chunk_sizes), mime.check_message),
        "mime-structured": ((st.randoms(use_true_random=False), mime.chunk_sizes), _structured),
    }


class Tally:
    def __init__(self, names):
        self.tried = {name: 0 for name in names}
        self.failures = {name: [] for name in names}

    def report(self, elapsed):
        print(f"\n{'target':<18}{'inputs':>10}{'failures':>10}   ({elapsed:.0f} s)")
        for name in self.tried:
            print(f"{name:<18}{self.tried[name]:>10}{len(self.failures[name]):>10}")
        return sum(len(f) for f in self.failures.values())


def run_round(name, strategies, check, examples, tally):
    """One hypothesis run of ``examples`` inputs; a failure is shrunk, printed and counted."""
    def counted(args):
        tally.tried[name] += 1
        check(*args)

    test = settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                    suppress_health_check=list(HealthCheck))(given(st.tuples(*strategies))(counted))
    try:
        test()
    except InvalidArgument:
        raise                              # a mistake in this script, not a finding
    except Exception as exc:               # hypothesis re-raises the minimal example's error
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        tally.failures[name].append(text)
        print(f"[{name}] FAILURE: {text[:2000]}")


def run_smtp(deadline, count, tally, seed):
    """Mutated sessions against a real server until the deadline or ``count`` sessions."""
    with Stack(workers=2, extra_args=["--max-message-size", "4096"]) as stack:
        port, rng = stack.geomail.smtp_port, random.Random(seed)
        while time.monotonic() < deadline and (count is None or tally.tried["smtp-sessions"] < count):
            batch = 100 if count is None else min(100, count - tally.tried["smtp-sessions"])
            played, problems = smtp.fuzz_server(port, rng, sessions=batch * 5 // 6,
                                                rcpt_sessions=batch - batch * 5 // 6,
                                                stop_at=deadline)
            tally.tried["smtp-sessions"] += played
            for kind, script, problem in problems:
                tally.failures["smtp-sessions"].append(problem)
                print(f"[smtp-sessions] FAILURE ({kind}): {problem}\n  input: {script!r}"[:3000])
        tracebacks = smtp.log_tracebacks(stack.geomail.log_file)
        for block in tracebacks:
            tally.failures["smtp-sessions"].append("traceback in the server log")
            print(f"[smtp-sessions] TRACEBACK in the server log:\n{block}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300, help="total time (default 300)")
    parser.add_argument("--count", type=int, help="stop each target after this many inputs")
    parser.add_argument("--targets", default=",".join(ALL_TARGETS),
                        help=f"comma-separated, from {','.join(ALL_TARGETS)}")
    parser.add_argument("--round", type=int, default=500, help="examples per hypothesis run")
    parser.add_argument("--smtp-share", type=float, default=0.4,
                        help="fraction of --seconds for smtp-sessions (default 0.4)")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    names = [n for n in args.targets.split(",") if n]
    unknown = set(names) - set(ALL_TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    tally = Tally(names)
    started = time.monotonic()
    end = started + args.seconds
    print(f"seed {args.seed}; targets {', '.join(names)}")
    if "smtp-sessions" in names:
        share = args.smtp_share if len(names) > 1 else 1.0
        run_smtp(started + args.seconds * share, args.count, tally, args.seed)
    targets = {n: t for n, t in in_process_targets().items() if n in names}
    while targets and time.monotonic() < end:
        for name, (strategies, check) in list(targets.items()):
            if time.monotonic() >= end:
                break
            examples = args.round
            if args.count is not None:
                examples = min(examples, args.count - tally.tried[name])
                if examples <= 0:
                    del targets[name]
                    continue
            run_round(name, strategies, check, examples, tally)
    failures = tally.report(time.monotonic() - started)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
