"""A private Postfix, the full MTA, as the SMTP benchmark's peer.

    with PrivatePostfix() as postfix:
        smtp_source(postfix.port, 4000, recipient=postfix.recipient)
        postfix.wait_delivered(4000)

Its own ``config_directory`` and ``queue_directory`` in a temporary
directory, its own port on 127.0.0.1, no DNS, no system logger (``postlogd``
to a file of its own): smtpd -> cleanup -> incoming/active queue -> the
``virtual(8)`` delivery agent writing each message into one Maildir.  A
message counts as stored once its file is in ``Maildir/new``, which Postfix
only does after the queue file and the delivered file are fsync()ed, so the
rate compares with geomail's 250-after-COMMIT.  Nothing outside the
temporary directory is read or changed; ``stop()`` runs ``postfix stop``
and removes it.  Needs Debian's ``postfix`` package and root (Postfix's
master runs as root and its daemons as the ``postfix`` user).
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time

DOMAIN = "bench.test"

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
{listen} inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def _main_cf(root, port, uid, gid):
    return f"""\
compatibility_level = 3.6
config_directory = {root}/etc
queue_directory = {root}/queue
data_directory = {root}/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
myhostname = postfix.{DOMAIN}
mydomain = {DOMAIN}
myorigin = {DOMAIN}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
default_process_limit = 100
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = static:{DOMAIN}/Maildir/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = 1
message_size_limit = 52428800
virtual_mailbox_limit = 0
alias_maps =
alias_database =
local_recipient_maps =
biff = no
"""


class PrivatePostfix:
    """Start, feed and stop a Postfix instance that is nobody else's (see module docstring)."""

    recipient = f"rcpt@{DOMAIN}"

    def __init__(self, port):
        if os.geteuid() != 0:
            raise RuntimeError("a private Postfix needs root (its master runs as root); "
                               "run the benchmark as root or pass --no-postfix")
        if shutil.which("postfix") is None and not os.path.exists("/usr/sbin/postfix"):
            raise RuntimeError("postfix is not installed (Debian package postfix; scripts/test "
                               "installs it)")
        self.port = port
        self.root = tempfile.mkdtemp(prefix="geomail-bench-postfix-")
        os.chmod(self.root, 0o755)
        postfix_user = pwd.getpwnam("postfix")
        self.uid, self.gid = postfix_user.pw_uid, postfix_user.pw_gid
        self.maildir_new = os.path.join(self.root, "mail", DOMAIN, "Maildir", "new")
        self.started = False

    def _postfix(self, *args, check=True):
        # Postfix prints its fatal errors on stderr only when that is a terminal; with
        # maillog_file they are in the log file, which log_tail() shows.
        return subprocess.run([shutil.which("postfix") or "/usr/sbin/postfix", "-c", f"{self.root}/etc", *args],
                              capture_output=True, text=True, check=check, timeout=60)

    def __enter__(self):
        for directory in ("etc", "queue", "data", "mail"):
            os.makedirs(os.path.join(self.root, directory), exist_ok=True)
        for directory in ("data", "mail"):
            os.chown(os.path.join(self.root, directory), self.uid, self.gid)
        with open(os.path.join(self.root, "etc", "main.cf"), "w") as handle:
            handle.write(_main_cf(self.root, self.port, self.uid, self.gid))
        with open(os.path.join(self.root, "etc", "master.cf"), "w") as handle:
            handle.write(MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))
        try:
            self._postfix("set-permissions", check=False)   # creates the queue's subdirectories
            self._postfix("start")
            self.started = True
            self._wait_port()
        except BaseException as exc:
            log = self.log_tail()
            self.stop()
            if isinstance(exc, subprocess.CalledProcessError):
                raise RuntimeError(f"private Postfix did not start: {exc.stdout.strip()} "
                                   f"{exc.stderr.strip()} {log}") from None
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def _wait_port(self, seconds=20):
        from tests.fixtures.server import port_open
        deadline = time.monotonic() + seconds
        while not port_open(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"private Postfix is not listening on {self.port}: {self.log_tail()}")
            time.sleep(0.05)

    def delivered(self):
        """Messages in the Maildir's new/ so far."""
        try:
            return len(os.listdir(self.maildir_new))
        except FileNotFoundError:
            return 0

    def wait_delivered(self, count, timeout=300):
        """Block until ``count`` messages are delivered; returns the time that took."""
        started = time.monotonic()
        while self.delivered() < count:
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"Postfix delivered {self.delivered()} of {count} in {timeout} s: "
                                   f"{self.log_tail()}")
            time.sleep(0.01)
        return time.monotonic() - started

    def master_pid(self):
        try:
            with open(os.path.join(self.root, "queue", "pid", "master.pid")) as handle:
                return int(handle.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def cpu_seconds(self):
        """User + system CPU of every Postfix process of this instance, alive now."""
        total = 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        master = self.master_pid()
        if master is None:
            return 0.0
        for pid in [master] + _children(master):
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rpartition(")")[2].split()
                total += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / ticks
            except (OSError, ValueError, IndexError):
                pass
        return total

    def log_tail(self, lines=15):
        try:
            with open(os.path.join(self.root, "maillog"), errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.started:
            self._postfix("stop", check=False)
            self.started = False
            deadline = time.monotonic() + 10
            while self.master_pid() is not None and _alive(self.master_pid()):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []
