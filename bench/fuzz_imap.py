"""A long IMAP fuzz run over real connections: mutated real commands, never a BYE.

    python bench/fuzz_imap.py [--seconds 300] [--count 0] [--seed 1] [--workers 1]
                              [--edits 4] [--random 0.1]

Starts its own ``bin/geomail`` (own MariaDB database, own SeaweedFS), creates
an account with messages in INBOX, logs in, SELECTs it, then sends commands
of the grammar of tests/fuzz/imapfuzz.py with 1 to ``--edits`` bytes flipped,
inserted, deleted or spans repeated (and a ``--random`` fraction of lines of
random bytes, some after a random template's name), each followed by NOOP and
SELECT INBOX, which must be OK.
A failure (a BYE, a lost connection, a missing answer) is printed with its
input, and the run goes on with a new connection.  At the end: inputs tried,
failures, and the tracebacks in the server's log (a NO [SERVERBUG] each).

Stops after ``--seconds`` or ``--count`` inputs (0: no limit), whichever
comes first.  The same seed gives the same inputs.  tests/fuzz runs the same
with hypothesis for a few hundred inputs.
"""

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Stack                                  # noqa: E402
from geomail.store.accounts import create_account               # noqa: E402
from geomail.store.database import Database                     # noqa: E402
from tests.fuzz.imapfuzz import (TEMPLATES, FuzzClient, mutate, populate,  # noqa: E402
                                  server_tracebacks)
from tests.imap.conftest import PASSWORD                        # noqa: E402


def random_input(rng, max_edits, random_share):
    template = rng.choice(TEMPLATES)
    if rng.random() < random_share:
        noise = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        return (template.split(b" ")[0] + b" " + noise) if rng.random() < 0.5 else noise
    edits = [(rng.randrange(4), rng.randrange(10_000), rng.randrange(256))
             for _ in range(rng.randint(1, max_edits))]
    return mutate(template, edits)


def run(args):
    rng = random.Random(args.seed)
    with Stack(workers=args.workers) as stack:
        db = Database(stack.db_url, 1)
        account = create_account(db, "fuzz@example.com", PASSWORD)
        db.close()
        port = stack.geomail.imap_port
        populate(port, account)
        client = FuzzClient(port, account)
        tried, failures = 0, []
        started = time.monotonic()
        last_report = started
        while True:
            elapsed = time.monotonic() - started
            if (args.seconds and elapsed >= args.seconds) or (args.count and tried >= args.count):
                break
            data = random_input(rng, args.edits, args.random)
            tried += 1
            try:
                client.try_input(data)
            except (AssertionError, OSError, ConnectionError) as exc:
                failures.append((data, repr(exc)[:300]))
                print(f"FAILURE #{len(failures)} on input {data!r}: {exc!r}"[:600], flush=True)
                client.close()
                client = FuzzClient(port, account)
            if time.monotonic() - last_report >= 30:
                last_report = time.monotonic()
                print(f"  {tried} inputs, {len(failures)} failures, "
                      f"{tried / (last_report - started):.0f}/s", flush=True)
        client.close()
        elapsed = time.monotonic() - started
        tracebacks = server_tracebacks(stack.geomail.log_file.read_text(errors="replace"))
        print(f"inputs tried: {tried} in {elapsed:.0f} s ({tried / max(elapsed, 1e-9):.0f}/s), "
              f"seed {args.seed}")
        print(f"failures (BYE, lost connection or no answer): {len(failures)}")
        print(f"tracebacks in the server log (NO [SERVERBUG]): {len(tracebacks)}")
        for block in tracebacks[:5]:
            print("---", block[-1500:])
        return 1 if failures or tracebacks else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--edits", type=int, default=4, help="most byte edits per input")
    parser.add_argument("--random", type=float, default=0.1,
                        help="share of inputs that are random bytes")
    sys.exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
