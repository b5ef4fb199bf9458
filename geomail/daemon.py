"""Daemon mode and the pidfile, as the init script expects them."""

import errno
import os
import sys


def daemonize():
    """Detach: double fork, new session, stdio to /dev/null, cwd kept.

    The working directory is kept so that relative paths and ./.env behave
    as on the command line; the init script changes to / itself.
    """
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.umask(0o027)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    sys.stdout = sys.stderr = open(os.devnull, "w")


class Pidfile:
    """A pidfile that refuses to overwrite the file of a running master."""

    def __init__(self, path):
        self.path = path
        self.pid = None

    def create(self, pid):
        running = self.running_pid()
        if running and running != pid:
            raise RuntimeError(f"pidfile {self.path} names a running process ({running})")
        tmp = f"{self.path}.{pid}.tmp"
        with open(tmp, "w") as handle:
            handle.write(f"{pid}\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path)
        self.pid = pid

    def running_pid(self):
        """The pid in the file if that process is alive, else None."""
        try:
            with open(self.path) as handle:
                pid = int(handle.read().strip() or 0)
        except (OSError, ValueError):
            return None
        if pid <= 0:
            return None
        try:
            os.kill(pid, 0)
        except OSError as exc:
            if exc.errno == errno.ESRCH:
                return None
        return pid

    def unlink(self):
        """Remove the file, but only if it is still ours."""
        try:
            with open(self.path) as handle:
                if int(handle.read().strip() or 0) == self.pid:
                    os.unlink(self.path)
        except (OSError, ValueError):
            pass
