"""Logging set-up shared by the master and its workers.

One format for every process (the pid tells master and workers apart), as
text (``time [pid] LEVEL logger: [session] message``) or, with
``--log-format json``, one JSON object per line.  Lines of a session carry
its short id (``SessionLog``), so ``grep`` finds a whole SMTP or IMAP
session, and a message by its queue id.  The destination is ``--log-file``,
else syslog (facility mail) in daemon mode, where stderr goes nowhere,
else stderr.  SIGUSR1 reopens the log file so that logrotate can move it.
"""

import json
import logging
import logging.handlers
import os
import sys
import time

FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(session_prefix)s%(message)s"
SYSLOG_FORMAT = "geomail[%(process)d]: %(levelname)s %(name)s: %(session_prefix)s%(message)s"
FORMATS = ("text", "json")


class _SessionField(logging.Filter):
    """Gives every record ``session`` and ``session_prefix`` (empty outside a session)."""

    def filter(self, record):
        session = getattr(record, "session", None)
        record.session = session
        record.session_prefix = f"[{session}] " if session else ""
        return True


class _SecondCache:
    """formatTime with the date and time formatted once a second, not once a line:
    a busy worker writes a few lines per message (py-spy: strftime and
    localtime were a tenth of its logging cost)."""

    _second = None
    _stamp = ""
    _datefmt = None

    def formatTime(self, record, datefmt=None):
        second = int(record.created)
        if second != self._second or datefmt != self._datefmt:
            self._stamp = time.strftime(datefmt or self.default_time_format,
                                        self.converter(record.created))
            self._second, self._datefmt = second, datefmt
        if datefmt:
            return self._stamp
        return self.default_msec_format % (self._stamp, record.msecs)


class TextFormatter(_SecondCache, logging.Formatter):
    """The text format (FORMAT or SYSLOG_FORMAT)."""


class JSONFormatter(_SecondCache, logging.Formatter):
    """One object per line: time, level, logger, pid, session, message (and the traceback)."""

    def format(self, record):
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
                 "level": record.levelname, "logger": record.name, "pid": record.process,
                 "message": record.getMessage()}
        if record.session:
            entry["session"] = record.session
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class SessionLog(logging.LoggerAdapter):
    """A logger whose lines carry one session's id (``[a1b2c3d4]``, or ``"session"`` in JSON)."""

    def __init__(self, logger, session_id):
        super().__init__(logger, {"session": session_id})

    def process(self, msg, kwargs):
        kwargs.setdefault("extra", {})["session"] = self.extra["session"]
        return msg, kwargs


def setup(log_file="", level="INFO", log_format="text", daemon=False):
    """Send the root logger to log_file, syslog (daemon without a file) or stderr."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
        text = FORMAT
    elif daemon:
        handler = _syslog_handler()
        text = SYSLOG_FORMAT
    else:
        handler = logging.StreamHandler(sys.stderr)
        text = FORMAT
    handler.addFilter(_SessionField())
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter(text))
    # No format here names a source file, function, thread or process name:
    # skip finding them for every record (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    root.addHandler(handler)
    root.setLevel(level)


def _syslog_handler():
    """The local syslog daemon's socket, facility mail (as Postfix and Dovecot log)."""
    for path in ("/dev/log", "/var/run/syslog"):
        if os.path.exists(path):
            return logging.handlers.SysLogHandler(
                address=path, facility=logging.handlers.SysLogHandler.LOG_MAIL)
    return logging.handlers.SysLogHandler(facility=logging.handlers.SysLogHandler.LOG_MAIL)


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


def log_uncaught(logger):
    """Exceptions that nothing caught (a greenlet's, the hub's, the process's) go to
    ``logger`` with the session id of the greenlet they happened in, never to bare stderr."""
    def report(kind, exc_type, value, tb, session=None):
        logger.error("uncaught %s: %s", kind, clip(f"{exc_type.__name__}: {value}", 500),
                     exc_info=(exc_type, value, tb), extra={"session": session})

    sys.excepthook = lambda t, v, tb: report("exception", t, v, tb)
    try:
        import gevent
    except ImportError:
        return

    def print_exception(context, exc_type, value, tb):
        session = getattr(context, "session_id", None)
        report(f"exception in {type(context).__name__}" if context is not None else "exception",
               exc_type, value, tb, session)

    gevent.get_hub().print_exception = print_exception


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
