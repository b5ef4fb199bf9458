"""IMAP FETCH and SEARCH over a 10,000-message INBOX: geomail vs Dovecot 2.3, in the same run.

    python bench/imap_fetch_search.py [--messages 10000] [--small 1000] [--runs 5]
                                      [--no-disk-cache] [--profile DIR]

The same generated messages (9 in 10 small text messages, 1 in 10 a
multipart with a 100 KB base64 attachment) go into geomail's INBOX, over
SMTP with several sessions in parallel (``bin/geomail --workers 2``, own
MariaDB database, own SeaweedFS), and into the Maildir of a private Dovecot
daemon (Debian's ``dovecot-imapd``, own config, passwd-file, a free port).
Then, with imaplib over loopback, each command is run once to warm up and
``--runs`` times measured on both servers (alternating):

    FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)
    FETCH 1:1000 BODY.PEEK[]
    UID SEARCH TEXT <word>          (a word in about 1% of the bodies)
    UID SEARCH FROM <name>          (one sender in 50)

The median seconds and the ratio geomail/Dovecot are printed.  Both servers
must return the same number of FETCH responses and the same number of hits.
With ``--profile DIR`` each geomail command is repeated while py-spy samples
every worker, and the top frames are printed.

geomail runs with the host's attachment disk cache (``--attachment-cache-dir``
in a directory of the run's own; ``--no-disk-cache`` leaves it off), so the
first FETCH of bodies after delivery reads the copies written at delivery.

Linearity (issue 13): ``FETCH 1:* BODY.PEEK[]`` (after its warm-up run) at two
mailbox sizes, ``--messages`` and ``--small`` (a second, fresh pair of servers
filled with the first ``--small`` messages): the cost per message at each size
and its ratio, large over small (1.00: linear).

Targets: FETCH summary and SEARCH <= 2x Dovecot (issue 4); full-body FETCH
<= 1.3x, first read and again (issue 13).
"""

import argparse
import concurrent.futures
import imaplib
import os
import pwd
import random
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Stack, median  # noqa: E402

PASSWORD = "bench pass"
ADDRESS = "bench@example.com"
SEARCH_WORD = "quuxinator"
SENDERS = [f"Sender{n:02d} Person <sender{n:02d}@x{n % 7}.example.org>" for n in range(50)]
FROM_NAME = "sender07"
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
         "zulu mail server message meeting report budget quarterly notes draft review").split()
FETCH_HEAD = re.compile(rb"\d+ \(")          # "n (" starts a FETCH response in imaplib's list
TARGETS = {"fetch_summary": 2.0, "fetch_bodies": 1.3, "search_text": 2.0, "search_from": 2.0}
FIRST_READ_TARGET = 1.3
COMMANDS = {
    "fetch_summary": ("FETCH", "1:*", "(UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)"),
    "fetch_bodies": ("FETCH", "1:1000", "BODY.PEEK[]"),
    "search_text": ("UID SEARCH", "TEXT", SEARCH_WORD),
    "search_from": ("UID SEARCH", "FROM", FROM_NAME),
    "fetch_all_bodies": ("FETCH", "1:*", "BODY.PEEK[]"),      # linearity only
}
TABLE = ("fetch_summary", "fetch_bodies", "search_text", "search_from")
LABELS = {
    "fetch_summary": "FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)",
    "fetch_bodies": "FETCH 1:1000 BODY.PEEK[]",
    "search_text": f"UID SEARCH TEXT {SEARCH_WORD}",
    "search_from": f"UID SEARCH FROM {FROM_NAME}",
    "fetch_all_bodies": "FETCH 1:* BODY.PEEK[]",
}


# -- the messages ------------------------------------------------------------------

def make_message(i, rng):
    """Message i as CRLF bytes (deterministic for a given rng state)."""
    sender = SENDERS[i % len(SENDERS)]
    words = [rng.choice(WORDS) for _ in range(rng.randint(60, 400))]
    if i % 97 == 5:
        words.insert(rng.randint(0, len(words)), SEARCH_WORD)
    lines, line = [], []
    for word in words:
        line.append(word)
        if len(line) == 12:
            lines.append(" ".join(line))
            line = []
    lines.append(" ".join(line))
    text = "\r\n".join(lines) + "\r\n"
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7)))
    head = (f"From: {sender}\r\n"
            f"To: Bench User <{ADDRESS}>\r\n"
            f"Subject: {subject} #{i}\r\n"
            f"Date: Mon, 2 Jan 2023 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} +0000\r\n"
            f"Message-ID: <bench{i}@x.example.org>\r\n"
            "MIME-Version: 1.0\r\n")
    if i % 10 != 3:
        return (head + "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text).encode()
    import base64
    blob = rng.randbytes(100 * 1024)
    encoded = base64.encodebytes(blob).replace(b"\n", b"\r\n")
    boundary = f"=_bench_{i}_boundary"
    return ((head + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
             f"This is a multi-part message in MIME format.\r\n\r\n--{boundary}\r\n"
             "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text +
             f"\r\n--{boundary}\r\n"
             f'Content-Type: application/octet-stream; name="report{i}.bin"\r\n'
             "Content-Transfer-Encoding: base64\r\n"
             f'Content-Disposition: attachment; filename="report{i}.bin"\r\n\r\n').encode()
            + encoded + f"\r\n--{boundary}--\r\n".encode())


def all_messages(count, seed=4):
    rng = random.Random(seed)
    return [make_message(i, rng) for i in range(count)]


# -- filling geomail -------------------------------------------------------------------

def create_account(db_url):
    from geomail.store.accounts import create_account as create
    from geomail.store.database import Database
    db = Database(db_url, 1)
    try:
        create(db, ADDRESS, PASSWORD)
    finally:
        db.close()


def fill_geomail(port, messages, sessions=8):
    """Deliver messages over SMTP, ``sessions`` connections in parallel; returns seconds.

    Messages keep their order within a session; UIDs interleave across sessions.
    """
    def send(part):
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
            for data in part:
                smtp.sendmail("sender@x.example.org", [ADDRESS], data)
        return len(part)

    started = time.monotonic()
    parts = [messages[k::sessions] for k in range(sessions)]
    with concurrent.futures.ThreadPoolExecutor(sessions) as pool:
        sent = sum(pool.map(send, parts))
    assert sent == len(messages)
    return time.monotonic() - started


# -- a private Dovecot ----------------------------------------------------------------

DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{tmp}/home/Maildir
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 0
default_internal_user = {internal}
default_login_user = {login}
default_process_limit = {process_limit}
default_client_limit = {client_limit}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {tmp}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={tmp}/home
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  process_min_avail = {login_processes}
  service_count = 0
  client_limit = {client_limit}
}}
protocol imap {{
  mail_max_userip_connections = {process_limit}
}}
service imap {{
  process_limit = {process_limit}
}}
service anvil {{
  client_limit = {anvil_limit}
}}
service auth {{
  client_limit = {anvil_limit}
}}
"""


class Dovecot:
    """``dovecot -F -c <own config>``: its own base_dir, Maildir, passwd-file and port."""

    def __init__(self, port=None, process_limit=200, login_processes=2):
        from tests.fixtures.services import free_port
        self.tmp = tempfile.mkdtemp(prefix="geomail-bench-dovecot-")
        os.chmod(self.tmp, 0o755)           # Dovecot's auth and mail processes read in here
        self.port = port or free_port()
        self.maildir = os.path.join(self.tmp, "home", "Maildir")
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, d))
        for d in ("run", "state"):
            os.makedirs(os.path.join(self.tmp, d))
        if os.geteuid() == 0:
            user = pwd.getpwnam("nobody")
            uid, gid, internal, login = user.pw_uid, user.pw_gid, "dovecot", "dovenull"
        else:   # unprivileged: everything as the calling user
            user = pwd.getpwuid(os.getuid())
            uid, gid, internal, login = user.pw_uid, user.pw_gid, user.pw_name, user.pw_name
        self.uid, self.gid = uid, gid
        with open(os.path.join(self.tmp, "passwd"), "w") as f:
            f.write(f"{ADDRESS}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{self.tmp}/home\n")
        os.chmod(os.path.join(self.tmp, "passwd"), 0o644)
        self.config = os.path.join(self.tmp, "dovecot.conf")
        with open(self.config, "w") as f:
            f.write(DOVECOT_CONF.format(tmp=self.tmp, port=self.port, uid=uid, gid=gid,
                                        internal=internal, login=login,
                                        process_limit=process_limit,
                                        client_limit=max(1000, process_limit + 100),
                                        anvil_limit=max(1000, process_limit * 3),
                                        login_processes=login_processes))
        self.process = None

    def fill(self, messages):
        """Write the messages into the Maildir (cur/, flags none), in order; returns seconds."""
        started = time.monotonic()
        base = 1700000000
        for i, data in enumerate(messages):
            name = f"{base + i}.M{i}P1.bench,S={len(data)}:2,"
            with open(os.path.join(self.maildir, "cur", name), "wb") as f:
                f.write(data)
        self._chown()
        return time.monotonic() - started

    def _chown(self):
        home = os.path.join(self.tmp, "home")
        for root, dirs, files in os.walk(home):
            for n in dirs + files + ["."]:
                os.chown(os.path.join(root, n), self.uid, self.gid)

    def start(self):
        from tests.fixtures.server import port_open
        self._chown()
        self.process = subprocess.Popen(["dovecot", "-F", "-c", self.config],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.log()
                raise RuntimeError(f"dovecot did not start: {self.process.stderr.read()!r}\n{log}")
            time.sleep(0.05)
        return self

    def log(self):
        try:
            with open(os.path.join(self.tmp, "dovecot.log"), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def pids(self):
        """The master and every process under it."""
        from tests.fixtures.server import children_of
        out, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children_of(pid))
        return out

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- measuring ------------------------------------------------------------------------

def connect(port):
    client = imaplib.IMAP4("127.0.0.1", port)
    client.login(ADDRESS, PASSWORD)
    typ, data = client.select("INBOX", readonly=True)
    assert typ == "OK", data
    return client, int(data[0])


def run_command(client, name):
    """Time one command; returns (seconds, a count to compare between servers)."""
    command, *args = COMMANDS[name]
    started = time.perf_counter()
    if command == "FETCH":
        typ, data = client.fetch(*args)
    else:
        typ, data = client.uid("SEARCH", *args)
    elapsed = time.perf_counter() - started
    assert typ == "OK", (name, typ, data[:3])
    if command == "FETCH":
        heads = [item[0] if isinstance(item, tuple) else item for item in data]
        count = sum(1 for head in heads if isinstance(head, bytes) and FETCH_HEAD.match(head))
    else:
        count = len(data[0].split()) if data and data[0] else 0
    return elapsed, count


def measure(servers, runs, names=TABLE):
    """{name: {server: [seconds]}}, {name: {server: count}}, {name: {server: first run's seconds}}.

    Servers alternate per run.  The first run of each command is a warm-up
    (Dovecot builds its index cache, geomail's worker fills its attachment
    cache); it is reported apart.
    """
    clients = {label: connect(port) for label, port in servers.items()}
    times = {name: {label: [] for label in servers} for name in names}
    counts = {name: {} for name in names}
    first = {name: {} for name in names}
    try:
        for name in names:
            for label, (client, _) in clients.items():
                first[name][label], counts[name][label] = run_command(client, name)
            for _ in range(runs):
                for label, (client, _) in clients.items():
                    elapsed, _ = run_command(client, name)
                    times[name][label].append(elapsed)
    finally:
        for client, _ in clients.values():
            try:
                client.logout()
            except Exception:
                pass
    return times, counts, first


def profile(stack, directory, repeat=5):
    """py-spy on every worker while each geomail command repeats; prints the top frames."""
    from smtp_throughput import summarise
    if shutil.which("py-spy") is None:
        print("py-spy is not installed (pip install py-spy): no profile")
        return
    os.makedirs(directory, exist_ok=True)
    for name in TABLE:
        client, _ = connect(stack.geomail.imap_port)
        spies = {}
        for pid in stack.worker_pids():
            out = os.path.join(directory, f"{name}-{pid}.txt")
            spies[pid] = (out, subprocess.Popen(
                ["py-spy", "record", "-r", "250", "-p", str(pid), "-o", out,
                 "--format", "raw", "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)
        for _ in range(repeat):
            run_command(client, name)
        client.logout()
        for pid, (out, spy) in spies.items():
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            if not os.path.exists(out):
                continue
            top = summarise(out)
            if not top["samples"]:
                continue
            print(f"-- {name}, worker {pid}: {top['samples']} samples, top self time")
            for frame, share in top["self"][:15]:
                print(f"   {share:6.1%}  {frame}")


def servers_filled(messages, sessions, disk_cache):
    """(Stack, Dovecot, fill seconds): both started and holding ``messages``; the caller
    stops both (Stack as a context manager, then dovecot.stop())."""
    cache_dir = tempfile.mkdtemp(prefix="geomail-bench-cache-")
    extra = ["--attachment-cache-dir", cache_dir] if disk_cache else []
    dovecot = Dovecot()
    stack = Stack(workers=2, extra_args=extra)
    stack.cache_dir = cache_dir
    try:
        stack.__enter__()
        create_account(stack.db_url)
        fill_seconds = fill_geomail(stack.geomail.smtp_port, messages, sessions)
        dovecot.fill(messages)
        dovecot.start()
    except BaseException:
        stop_servers(stack, dovecot)
        raise
    return stack, dovecot, fill_seconds


def stop_servers(stack, dovecot):
    try:
        stack.__exit__(None, None, None)
    finally:
        dovecot.stop()
        shutil.rmtree(stack.cache_dir, ignore_errors=True)


def per_message(times, counts, size):
    """{server: seconds per message} of the linearity FETCH's medians."""
    name = "fetch_all_bodies"
    assert counts[name]["geomail"] == counts[name]["dovecot"] == size, counts[name]
    return {label: median(values) / size for label, values in times[name].items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--small", type=int, default=None,
                        help="the smaller mailbox of the linearity check (default messages/10)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=8, help="parallel SMTP sessions to fill")
    parser.add_argument("--no-disk-cache", dest="disk_cache", action="store_false",
                        help="run geomail without --attachment-cache-dir")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the geomail workers")
    args = parser.parse_args(argv)
    small = args.small or max(100, args.messages // 10)
    linearity_runs = max(1, min(args.runs, 3))

    messages = all_messages(args.messages)
    total = sum(len(m) for m in messages)
    print(f"{len(messages)} messages, {total / 2**20:.1f} MiB "
          f"({sum(1 for i in range(len(messages)) if i % 10 == 3)} with a 100 KB attachment), "
          f"attachment disk cache {'on' if args.disk_cache else 'off'}", flush=True)
    stack, dovecot, fill_seconds = servers_filled(messages, args.sessions, args.disk_cache)
    try:
        print(f"geomail fill over SMTP ({args.sessions} sessions): {fill_seconds:.1f} s, "
              f"{len(messages) / fill_seconds:.0f} msgs/s", flush=True)
        servers = {"geomail": stack.geomail.imap_port, "dovecot": dovecot.port}
        times, counts, first = measure(servers, args.runs)
        big = measure(servers, linearity_runs, ("fetch_all_bodies",))
        if args.profile:
            profile(stack, args.profile)
    finally:
        stop_servers(stack, dovecot)
    stack, dovecot, _ = servers_filled(messages[:small], args.sessions, args.disk_cache)
    del messages
    try:
        servers = {"geomail": stack.geomail.imap_port, "dovecot": dovecot.port}
        little = measure(servers, linearity_runs, ("fetch_all_bodies",))
    finally:
        stop_servers(stack, dovecot)

    result = {"fill_seconds": fill_seconds, "commands": {}, "target_met": True,
              "disk_cache": args.disk_cache}
    print(f"\n{'command':58} {'geomail s':>10} {'Dovecot s':>10} {'ratio':>7} {'target':>7}")
    for name in TABLE:
        g, d = median(times[name]["geomail"]), median(times[name]["dovecot"])
        ratio = g / d if d else float("inf")
        same = counts[name]["geomail"] == counts[name]["dovecot"]
        met = ratio <= TARGETS[name] and same
        result["commands"][name] = {"geomail": g, "dovecot": d, "ratio": ratio, "met": met,
                                    "counts": counts[name]}
        result["target_met"] &= met
        note = "" if same else f"  COUNTS DIFFER {counts[name]}"
        print(f"{LABELS[name]:58} {g:10.3f} {d:10.3f} {ratio:6.2f}x {TARGETS[name]:5.1f}x "
              f"{'met' if met else 'MISSED'}{note}")
    cold_g, cold_d = first["fetch_bodies"]["geomail"], first["fetch_bodies"]["dovecot"]
    cold_met = cold_g / cold_d <= FIRST_READ_TARGET
    result["fetch_bodies_first_run"] = {"geomail": cold_g, "dovecot": cold_d, "met": cold_met}
    result["target_met"] &= cold_met
    print(f"{'  first read after delivery (memory caches empty)':58} {cold_g:10.3f} "
          f"{cold_d:10.3f} {cold_g / cold_d:6.2f}x {FIRST_READ_TARGET:5.1f}x "
          f"{'met' if cold_met else 'MISSED'}")

    cost_big = per_message(*big[:2], args.messages)
    cost_small = per_message(*little[:2], small)
    result["linearity"] = {"sizes": (small, args.messages), "small": cost_small,
                           "large": cost_big}
    print(f"\nlinearity, {LABELS['fetch_all_bodies']} (median of {linearity_runs} after a warm-up),"
          " ms per message:")
    print(f"{'':12} {small:>10} msgs {args.messages:>10} msgs {'large/small':>12}")
    for label in ("geomail", "dovecot"):
        print(f"{label:12} {cost_small[label] * 1000:15.4f} {cost_big[label] * 1000:15.4f} "
              f"{cost_big[label] / cost_small[label]:11.2f}x")
    print(f"{'geomail/Dovecot':12} {cost_small['geomail'] / cost_small['dovecot']:14.2f}x "
          f"{cost_big['geomail'] / cost_big['dovecot']:14.2f}x")
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["target_met"] else 1)
