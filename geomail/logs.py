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



CLIP_LIMIT = 200


def clip(text, limit=CLIP_LIMIT):
    """Client-supplied text made safe for one log line: escaped, and cut to ``limit``.

    Bytes are decoded leniently (only the first ``limit`` * 4 are looked at,
    whatever their length); control and non-printable characters and
    backslashes are escaped, so a line cannot be forged or broken; what is
    past ``limit`` characters is replaced by a count of what was left out.
    """
    if text is None:
        return "-"
    total = len(text)
    if not isinstance(text, str):
        text = bytes(text[:limit * 4]).decode("utf-8", "replace")
    cut = text[:limit]
    if not cut.isprintable() or "\\" in cut:
        cut = "".join(c if c.isprintable() and c != "\\" else c.encode("unicode_escape").decode()
                      for c in cut)
    left_out = max(0, total - limit)     # characters, or bytes for bytes
    return cut + (f"...(+{left_out})" if left_out > 0 else "")
