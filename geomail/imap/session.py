"""The IMAP session: a state machine over one connection (RFC 3501 §3).

The session reads a command's first line, looks its name up in the command
table (commands.py), checks the state, and hands the parser to the
handler, which pulls its own arguments.  Before the tagged completion the
selected mailbox's view catches up with the database, sending EXISTS,
EXPUNGE and FETCH (FLAGS) as the command table allows (RFC 3501 §7.4.1:
no EXPUNGE during or right after FETCH, STORE, SEARCH).
"""

import logging
import secrets
import time

import gevent
import gevent.event

from geomail import metrics
from geomail.imap import response as R
from geomail.imap import contexts, who
from geomail.imap.auth import ANSWERED
from geomail.imap.commands import COMMANDS
from geomail.errors import BUG, PERMANENT, TEMPORARY, classify
from geomail.imap.errors import Bad, Bye, CommandError
from geomail.imap.parser import LiteralTooBig, ParseError, Parser
from geomail.imap.watcher import watcher_for
from geomail.logs import SessionLog, clip
from geomail.netio import Connection, ConnectionClosed, DeadlineExceeded, LineTooLong, Timeout

log = logging.getLogger("geomail.imap")

from geomail.imap.states import NOT_AUTHENTICATED, SELECTED  # noqa: E402

# Literals before login carry a user name or a password: a few KiB at most.  A
# bigger one gets NO [TOOBIG], so 100 unauthenticated connections cannot make a
# worker hold their megabytes (after login --max-literal-size and MAX_SMALL_LITERAL hold).
PREAUTH_LITERAL_BUDGET = 8 * 1024
SLOW_COMMAND = 1.0             # seconds: a command slower than this is logged with its time
MAX_BAD_COMMANDS = 50          # syntax errors in a row before we hang up
LOGIN_FAILURE_DELAY = 1.0      # seconds, doubled per failure

# What a failed command gets, by geomail.errors.classify (RFC 5530 codes)
FAILURE_REPLIES = {
    TEMPORARY: (R.UNAVAILABLE, "Server storage is unavailable, try again later"),
    PERMANENT: (R.CANNOT, "The server cannot do this"),
    BUG: (R.SERVERBUG, "Internal server error"),
}


# Advertised after login, one per line: an extension is listed only once it is complete.
AUTHENTICATED_CAPABILITIES = [
    "NAMESPACE",            # RFC 2342
    "UIDPLUS",              # RFC 4315
    "MOVE",                 # RFC 6851
    "SPECIAL-USE",          # RFC 6154
    "CREATE-SPECIAL-USE",   # RFC 6154
    "CHILDREN",             # RFC 3348
    "UNSELECT",             # RFC 3691
    "ESEARCH",              # RFC 4731
    "SEARCHRES",            # RFC 5182
    "WITHIN",               # RFC 5032
    "SORT",                 # RFC 5256
    "SORT=DISPLAY",         # RFC 5957
    "ESORT",                # RFC 5267 §3
    "THREAD=ORDEREDSUBJECT",  # RFC 5256
    "THREAD=REFERENCES",    # RFC 5256
    "BINARY",               # RFC 3516
    "COMPRESS=DEFLATE",     # RFC 4978
    "MULTIAPPEND",          # RFC 3502
    "CATENATE",             # RFC 4469 (without URLAUTH)
    "UTF8=ACCEPT",          # RFC 6855
    "LIST-EXTENDED",        # RFC 5258
    "LIST-STATUS",          # RFC 5819
    "STATUS=SIZE",          # RFC 8438
    "QUOTA",                # RFC 9208
    "QUOTA=RES-STORAGE",    # RFC 9208 §5.1
    "QUOTA=RES-MESSAGE",    # RFC 9208 §5.2
    "SAVEDATE",             # RFC 8514
    "OBJECTID",             # RFC 8474
    "PREVIEW",              # RFC 8970
    "CONDSTORE",            # RFC 7162 §3.1
    "QRESYNC",              # RFC 7162 §3.2
    "CONTEXT=SEARCH",       # RFC 5267 §4
    "CONTEXT=SORT",         # RFC 5267 §4
]


MAX_TEXT = 300                 # characters of a tagged response's human-readable text


def _resp_text(text):
    """RFC 3501 resp-text is one line of TEXT-CHARs (7-bit, no CR/LF): client text
    echoed in an error (a mailbox name or charset sent as a literal, a command
    name of 60 KB) may hold CR, LF, NUL or 8-bit bytes; they become '?', and the
    text is cut."""
    text = str(text)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "..."
    if not (text.isascii() and text.isprintable()):
        text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text


class StreamBroken(Exception):
    """A command failed after part of one of its responses was sent: the client cannot resync."""


class Session:
    """One IMAP connection; see the module docstring."""

    def __init__(self, context, sock, address, implicit_tls=False):
        self.context = context
        self.config = context.config
        self.address = address
        self.id = secrets.token_hex(4)   # short session id for the log lines
        self.started = time.monotonic()
        self.commands = 0
        self.idle_timeout = float(getattr(self.config, "imap_idle_timeout", 1800.0))
        # RFC 9051 5.4: before login a much shorter autologout timer is allowed, and
        # one command (line + literals) must arrive within a deadline (slowloris).
        self.login_timeout = float(getattr(self.config, "imap_login_timeout", 60.0))
        self.command_deadline = float(getattr(self.config, "imap_command_deadline", 60.0))
        self.conn = Connection(sock, timeout=self.login_timeout)
        self.out = R.Writer(self.conn)
        self.max_literal = int(getattr(self.config, "max_literal_size", 50 * 1024 * 1024))
        self.parser = Parser(self.conn, self._continuation, self.max_literal)
        self.tls = implicit_tls
        self.state = NOT_AUTHENTICATED
        self.account = None
        self.listed = False            # has a row in the sessions table (imap/who.py)
        self.view = None               # the selected mailbox (view.View)
        self.login_failures = 0
        self.bad_in_a_row = 0
        self.enabled = set()            # ENABLEd extensions (RFC 5161); see condstore.py
        self.closing = False
        self.wakeup = gevent.event.Event()
        self.saved_search = ()          # RFC 5182 $ (only set by SEARCH RETURN (SAVE))
        self.update_contexts = {}       # RFC 5267 §4.2: tag -> contexts.Context
        self.contexts_point = None

    @property
    def log(self):
        """A logger whose lines carry the session id, made when a line is logged:
        an idle session holds none (bench/imap_idle.py counts its bytes)."""
        return SessionLog(log, self.id)

    # -- lifecycle ------------------------------------------------------------

    def run(self):
        self.context.register(self)
        gevent.getcurrent().session_id = self.id      # for tracebacks nothing caught (logs.py)
        peer, port = (self.address[0], self.address[1]) if isinstance(self.address, tuple) \
            else (self.address, 0)
        self.log.info("connect from %s port %s%s", peer, port, " (implicit TLS)" if self.tls else "")
        try:
            self.untagged(f"OK [CAPABILITY {' '.join(self.capabilities())}] "
                          f"{self.context.hostname} geomail IMAP4rev1 ready")
            self.out.flush()
            while not self.closing:
                self.one_command()
                self.out.flush()
        except (ConnectionClosed, OSError, StreamBroken):
            pass
        except Timeout:
            self._bye("Autologout; idle for too long")
        except Bye as bye:
            self._bye(bye.text, bye.code)
        except Exception:
            # only the greeting and the flush run outside one_command's own handling
            self.log.exception("IMAP session %s from %s failed", self.id, self.address)
            self._bye("Internal server error", R.SERVERBUG)
        finally:
            self.close_view()
            who.logged_out(self)
            self.context.unregister(self)
            self.conn.close()
            self.log.info("disconnect after %.1f s: %s, %d commands, %d bytes in, %d bytes out%s",
                          time.monotonic() - self.started,
                          clip(self.account.address) if self.account else "not logged in",
                          self.commands, self.conn.bytes_in, self.conn.bytes_out,
                          ", TLS" if self.tls else "")

    def _bye(self, text, code=None):
        try:
            self.untagged(f"BYE {R.code_text(code)}{text}")
            self.out.flush()
        except (ConnectionClosed, OSError):
            pass
        self.closing = True

    def shutdown(self, text="Server shutting down"):
        """Graceful stop of the worker, or an administrator's kick: tell the client and
        close (called from another greenlet)."""
        if self.closing:
            return
        self.closing = True
        try:
            self.conn.write(f"* BYE {text}\r\n".encode())
        except (ConnectionClosed, OSError):
            pass
        self.conn.close()

    def wake(self):
        """The watcher saw a change in the selected mailbox."""
        self.wakeup.set()

    def close_view(self):
        self.saved_search = ()          # RFC 5182 §2.1: $ is reset on leaving a mailbox
        self.update_contexts = {}       # RFC 5267 §4.2: contexts end with the mailbox
        if self.view is not None:
            watcher_for(self.context).forget(self)
            self.view = None

    # -- output ---------------------------------------------------------------

    def untagged(self, text):
        self.out.line(b"* " + (text.encode("utf-8") if isinstance(text, str) else text))

    def tagged(self, tag, status, text, code=None, code_args=None):
        self.out.line(f"{tag} {status} {R.code_text(code, code_args)}{_resp_text(text)}"
                      .encode("utf-8", "replace"))

    def _continuation(self):
        self.out.line(b"+ Ready for literal data")
        self.out.flush()

    def capabilities(self):
        caps = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"]
        if self.state == NOT_AUTHENTICATED:
            if self.context.tls_context is not None and not self.tls:
                caps.append("STARTTLS")
            if self.login_disabled():
                caps.append("LOGINDISABLED")
            else:
                caps.append("AUTH=PLAIN")
        else:
            caps += AUTHENTICATED_CAPABILITIES
            caps.append(f"APPENDLIMIT={self.max_literal}")
        return caps

    @property
    def utf8(self):
        """ENABLE UTF8=ACCEPT or IMAP4rev2 was given: mailbox names go out in UTF-8
        (RFC 6855 §3, RFC 9051 §5.1)."""
        return self.parser.utf8

    def login_disabled(self):
        return bool(getattr(self.config, "imap_require_tls", False)) and not self.tls

    # -- commands -------------------------------------------------------------

    def one_command(self):
        p = self.parser
        if self.state == NOT_AUTHENTICATED:
            # Before login: the short timeout, a deadline for the whole command and
            # literals of user names and passwords only (PREAUTH_LITERAL_BUDGET).
            self.conn.set_timeout(self.login_timeout)
            self.conn.deadline_from_next_byte(self.command_deadline)
            p.literal_budget = PREAUTH_LITERAL_BUDGET
        else:
            self.conn.set_timeout(self.idle_timeout)
            self.conn.set_deadline(None)
            p.literal_budget = None
        try:
            p.next_line()
        except LineTooLong:
            self.untagged("BAD Command line too long")
            return self._count_bad()
        except DeadlineExceeded:
            raise Bye("Command not received in time") from None
        except Timeout:
            raise Bye("Autologout; idle for too long") from None
        if not p.line.strip():
            return
        tag = "*"
        name = None
        try:
            tag = p.tag()
            p.sp()
            name = p.atom("command name").upper()
            if name == "UID":
                p.sp()
                name = "UID " + p.atom("command name").upper()
            command = COMMANDS.get(name)
            if command is None:
                raise Bad(f"Unknown command {name}")
            if self.state not in command.states:
                raise Bad(f"{name} not allowed in the {self.state} state")
            if command.arguments:
                p.sp()
            started = time.monotonic()
            self.commands += 1
            if self.view is not None:
                self.view.prefetched = None     # reads a failed command sent along
            result = command.handler(self, p, tag)
            self._count(name, "ok", started)
            if name in ("SELECT", "EXAMINE") and self.view is not None:
                self.log.info("%s %s", name.lower(), clip(self.view.name))
            self.bad_in_a_row = 0
            if result is ANSWERED:
                return
            self.after_command(command)
            code, text = result if isinstance(result, tuple) else (None, result)
            self.tagged(tag, "OK", text or f"{name} completed", code)
        except ParseError as exc:
            p.discard()
            self._count(name, "bad")
            self.tagged(tag, "BAD", f"Syntax error: {exc}" if tag != "*" else str(exc))
            self._count_bad()
        except LiteralTooBig as exc:
            self._literal_too_big(tag, exc)
        except LineTooLong:
            self.tagged(tag, "BAD", "Command line too long")
            self._count_bad()
        except CommandError as exc:
            p.discard()
            self._count(name, exc.status.lower())
            if exc.status == "BAD":
                self._count_bad()
            self.tagged(tag, exc.status, exc.text, exc.code, exc.code_args)
        except DeadlineExceeded:
            raise Bye("Command not received in time") from None
        except Timeout:        # silent in the middle of a command (a literal)
            raise Bye("Autologout; idle for too long") from None
        except (ConnectionClosed, Bye, StreamBroken):
            raise
        except Exception as exc:        # noqa: BLE001 - any other failure ends the command only
            self._command_failed(tag, name, exc)
        finally:
            self.conn.set_deadline(None)

    def _count(self, name, result, started=None):
        """A command's result (and its latency when it completed) for /metrics: the
        label is a name of the command table, never client text.  A command slower
        than SLOW_COMMAND seconds gets a log line with its time."""
        if name not in COMMANDS:
            name = "unknown"
        counters = metrics.get()
        counters.imap_commands.labels(name, result).inc()
        if started is not None:
            seconds = time.monotonic() - started
            counters.imap_command_seconds.labels(name).observe(seconds)
            if seconds >= SLOW_COMMAND:
                self.log.info("slow command %s took %.2f s", name, seconds)

    def _command_failed(self, tag, name, exc):
        """A handler raised: one log line, a tagged NO with a code, and the session goes on.

        The response being built when it failed is dropped if none of it has
        been sent; if part of it went out (a literal half written), the client
        cannot find the end of it, so the connection is closed instead (as
        Dovecot does) rather than padding a message body with made-up bytes.
        """
        kind = classify(exc)
        self._count(name, kind)
        code, text = FAILURE_REPLIES[kind]
        peer = self.address[0] if isinstance(self.address, tuple) else self.address
        command = clip(name) if name else "command"
        what = f"IMAP session {self.id} from {peer}: {command} failed ({kind})"
        if kind == BUG:
            self.log.error("%s: %s", what, clip(repr(exc), 500), exc_info=exc)
        else:
            self.log.warning("%s: %s", what, clip(repr(exc), 500))
        if not self.out.rollback():
            raise StreamBroken() from exc
        try:
            self.parser.discard()
        except (LineTooLong, LiteralTooBig, ParseError):
            pass
        self.tagged(tag, "NO", text, code)

    def _count_bad(self):
        self.bad_in_a_row += 1
        if self.bad_in_a_row >= MAX_BAD_COMMANDS:
            raise Bye("Too many invalid commands")

    def _literal_too_big(self, tag, exc):
        """RFC 7888 §4 / RFC 7889: refuse; a non-synchronising literal is drained first."""
        if not exc.synchronizing:
            self.parser.pos = 0
            self.parser.line = b"{%d+}" % exc.size
            self.parser.discard()
        else:
            self.parser.pos = len(self.parser.line)
        self.tagged(tag, "NO", f"Literal of {exc.size} bytes is larger than the limit of {exc.limit}",
                    R.TOOBIG)

    def after_command(self, command):
        """Command boundary: the view catches up (RFC 3501 §5.2, §7.4.1)."""
        if self.view is not None and self.state == SELECTED:
            if self.view.just_opened:
                # SELECT/EXAMINE's snapshot is this moment's state: the next command
                # catches up (a round trip less per SELECT)
                self.view.just_opened = False
                return
            self.view.catch_up(self, allow_expunge=not command.forbids_expunge)
            contexts.refresh(self)

    def require_auth(self):
        if self.account is None:
            raise Bad("Not authenticated")

