"""Logging set-up shared by the master and its workers.

One format for every process (the pid tells master and workers apart);
SIGUSR1 reopens the log file so that logrotate can move it away.
"""

import logging
import sys

FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"


def setup(log_file="", level="INFO"):
    """Send the root logger to log_file (or stderr) at level."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)


def reopen():
    """Reopen every file handler (after logrotate renamed the file)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                handler.close()
                handler.stream = handler._open()
            finally:
                handler.release()
