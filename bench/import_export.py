"""geomail-admin import and export of a mailing-list mbox, compared byte for byte.

    python bench/import_export.py [--messages 10000] [--parallel 4]

Generates an mbox of --messages messages (tests/fixtures/mailgen.py: 'From '
lines in bodies, attachments, no Message-ID, 8-bit headers), imports it with
the real bin/geomail-admin into a fresh stack (MariaDB + SeaweedFS, or the
embedded store with GEOMAIL_TEST_BACKEND=embedded), imports it again (every
message skipped), exports it as mbox and as Maildir and compares each
message with the source.  Prints messages/s for each step; the issue's goal
is >= 500 messages/s imported.  Exit 1 if any message differs.
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import Stack                                   # noqa: E402
from geomail import mailio                                       # noqa: E402
from tests.fixtures import mailgen                               # noqa: E402
from tests.fixtures.server import ADMIN, clean_env               # noqa: E402

GOAL = 500


def admin(stack, *args, stdin=""):
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(ADMIN), *stack.storage_args(), *args],
                            input=stdin, capture_output=True, text=True, env=clean_env(),
                            timeout=3600)
    if result.returncode != 0:
        sys.exit(f"geomail-admin {' '.join(args[:2])} failed: {result.stderr[-2000:]}")
    return time.monotonic() - started, result.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    bodies = mailgen.messages(args.messages)
    with Stack(workers=1) as stack:
        source = os.path.join(stack.directory, "list.mbox")
        mailgen.write_mbox(source, bodies)
        size = os.path.getsize(source)
        print(f"mbox: {args.messages} messages, {size / 1048576:.1f} MiB, backend {stack.backend}")
        admin(stack, "account", "add", "list@example.test", "--password-stdin", stdin="pw\n")
        seconds, text = admin(stack, "import", "list@example.test", source,
                              "--parallel", str(args.parallel))
        rate = args.messages / seconds
        print(f"import: {seconds:.1f} s, {rate:.0f} messages/s, {size / seconds / 1048576:.1f} MiB/s "
              f"(goal >= {GOAL}/s: {'met' if rate >= GOAL else 'NOT met'})  [{text}]")
        seconds, text = admin(stack, "import", "list@example.test", source)
        print(f"import again (all skipped): {seconds:.1f} s, {args.messages / seconds:.0f} messages/s")
        differ = 0
        for fmt in ("mbox", "maildir"):
            out = os.path.join(stack.directory, "out-" + fmt)
            seconds, text = admin(stack, "export", "list@example.test", out, "--format", fmt)
            print(f"export {fmt}: {seconds:.1f} s, {args.messages / seconds:.0f} messages/s")
            if fmt == "mbox":
                back = [i.data.replace(b"\r\n", b"\n") for i in mailio.Source(os.path.join(out, "INBOX.mbox"))]
            else:
                cur = os.path.join(out, "cur")
                back = [open(os.path.join(cur, f), "rb").read()
                        for f in sorted(os.listdir(cur), key=lambda f: int(f.split(".M")[1].split(".")[0]))]
            want = [d if d.endswith(b"\n") else d + b"\n" for d in bodies]
            bad = sum(1 for a, b in zip(back, want) if a != b) + abs(len(back) - len(want))
            differ += bad
            print(f"  {fmt} compared with the source, message by message: {len(back)} messages, "
                  f"{bad} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
