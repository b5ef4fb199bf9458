"""One SMTP session per connection (RFC 5321 with PIPELINING, SIZE, 8BITMIME,
ENHANCEDSTATUSCODES, SMTPUTF8, CHUNKING and STARTTLS).

One ``smtp_<VERB>`` method per command, each checking its own
preconditions, in the manner of aiosmtpd.  The message is never held in
memory: DATA and BDAT bytes go straight into a ``Delivery``, which parses
them and streams attachments to S3 while they arrive; "250" is sent only
after the MySQL transaction has committed.
"""

import datetime
import email.utils
import logging
import secrets
import time

import gevent

from geomail import metrics
from geomail.ingest import Delivery, DeliveryFailed, Target
from geomail.errors import BUG
from geomail.logs import SessionLog, clip
from geomail.netio import Connection, ConnectionClosed, DeadlineExceeded, LineTooLong, Timeout
from geomail.smtp.addresses import AddressError, parse_mailbox, parse_path
from geomail.smtp.dotstream import DotUnstuffer, LineEndFixer
from geomail.smtp.recipients import RecipientDirectory
from geomail.smtp.replies import ehlo_keywords, format_reply, greeting, reply, storage_failure
from geomail.store.quota import get_quota

log = logging.getLogger("geomail.smtp")

# RFC 5321 section 4.5.3.1.4 allows 512 octets per command line; we accept a
# text line's worth (1000 octets including CRLF, section 4.5.3.1.6) because
# long ESMTP parameter lists are common, and answer 500 5.5.2 beyond it.
MAX_COMMAND_LINE = 1000
READ_CHUNK = 64 * 1024


_received = [None, ""]     # (second, its RFC 5322 date-time) for Received: lines


def received_date():
    """Now as a Received: header's date, formatted once a second (not per recipient)."""
    second = int(time.time())
    if _received[0] != second:
        _received[:] = [second, email.utils.format_datetime(
            datetime.datetime.fromtimestamp(second).astimezone())]
    return _received[1]


def handle_smtp(context, sock, address, implicit_tls=False):
    SMTPSession(context, sock, address, implicit_tls).run()


def directory(context):
    """The worker's recipient cache (one per worker, made on first use)."""
    found = getattr(context, "smtp_recipients", None)
    if found is None:
        found = context.smtp_recipients = RecipientDirectory(
            context.db, context.config.auto_create_accounts)
    return found


class Transaction:
    """MAIL ... RCPT ... DATA/BDAT state, reset by RSET, HELO/EHLO and the end of data."""

    def __init__(self, sender, params):
        self.sender = sender                  # Mailbox, or None for <>
        self.smtputf8 = "SMTPUTF8" in params
        self.declared_size = int(params.get("SIZE") or 0)   # RFC 1870; checked by MAIL
        self.recipients = {}                  # key -> (Mailbox, account_id, inbox_id)
        self.limited = set()                  # keys whose account had a quota at RCPT
        self.delivery = None                  # open BDAT delivery
        self.bdat_size = 0
        self.bdat_failed = None               # reply name once a BDAT chunk failed
        self.line_ends = None


class SMTPSession:
    def __init__(self, context, sock, address, implicit_tls=False):
        self.context = context
        self.config = context.config
        self.conn = Connection(sock, timeout=self.config.smtp_timeout)
        # Slowloris: --smtp-timeout bounds each silence, these bound a client that
        # trickles bytes: one command line, and all commands until a message is in.
        self.line_deadline = float(getattr(self.config, "smtp_line_deadline", 60.0))
        self.command_deadline = float(getattr(self.config, "smtp_command_deadline", 300.0))
        self.phase_started = time.monotonic()
        self.peer = address[0] if isinstance(address, tuple) else str(address)
        self.port = address[1] if isinstance(address, tuple) else 0
        self.id = secrets.token_hex(4)        # on every log line of this session
        self.log = SessionLog(log, self.id)
        self.started = time.monotonic()
        self.command = ""                     # the command being answered, for refusal lines
        self.counts = {"commands": 0, "messages": 0, "recipients": 0, "refused": 0}
        self.tls = implicit_tls
        self.helo = None
        self.esmtp = False
        self.transaction = None
        self.bad_commands = 0
        self.closing = False
        self.stopping = False
        self.busy = False
        self.output = []

    # -- the command loop --------------------------------------------------

    def run(self):
        self.context.register(self)
        gevent.getcurrent().session_id = self.id      # for tracebacks nothing caught (logs.py)
        self.log.info("connect from %s port %d%s", self.peer, self.port,
                      " (implicit TLS)" if self.tls else "")
        try:
            self.send(greeting(self.context.hostname))
            while not self.closing:
                if not self.conn.has_buffered():
                    self.flush()                 # RFC 2920: reply in batches to pipelined input
                if self.stopping:
                    self.send(reply("shutting_down"))
                    break
                try:
                    line = self.read_command()
                except LineTooLong:
                    self.count_error(reply("line_too_long"))
                    continue
                except DeadlineExceeded:
                    self.log.info("command deadline passed")
                    self.send(reply("timeout"))
                    break
                except Timeout:
                    self.send(reply("timeout"))
                    break
                self.busy = True
                try:
                    self.dispatch_timed(line.rstrip(b"\r\n"))
                finally:
                    self.busy = False
            self.flush()
        except ConnectionClosed:
            pass
        except Exception:
            self.log.exception("session failed")
        finally:
            self.reset_transaction()
            self.context.unregister(self)
            self.conn.close()
            counts = self.counts
            self.log.info("disconnect after %.1f s: %d commands, %d messages, %d recipients, "
                          "%d refused%s", time.monotonic() - self.started, counts["commands"],
                          counts["messages"], counts["recipients"], counts["refused"],
                          ", TLS" if self.tls else "")

    def read_command(self):
        """The next command line, within the line and the command-phase deadlines."""
        self.conn.set_deadline(self.phase_started + self.command_deadline)
        try:
            return self.conn.readline(MAX_COMMAND_LINE, deadline=self.line_deadline)
        finally:
            self.conn.set_deadline(None)   # message data has only the idle timeout

    def dispatch_timed(self, line):
        """Dispatch; time in DATA/BDAT is not command time, and a message received
        starts a new command phase (--smtp-command-deadline is per transaction)."""
        if line[:4].upper() not in (b"DATA", b"BDAT"):
            self.dispatch(line)
            return
        transaction, started = self.transaction, time.monotonic()
        self.dispatch(line)
        now = time.monotonic()
        if transaction is not None and transaction.recipients and self.transaction is not transaction:
            self.phase_started = now
        else:
            self.phase_started += now - started

    def dispatch(self, line):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text = line.decode("latin-1")
        verb, _, arg = text.partition(" ")
        self.command = text
        self.counts["commands"] += 1
        method = getattr(self, "smtp_" + verb.upper(), None) if verb.isalpha() else None
        if method is None:
            self.count_error(reply("unknown_command"))
            return
        method(arg.strip())

    def count_error(self, response):
        """Answer a bad command; too many of them end the session (421)."""
        self.bad_commands += 1
        if self.bad_commands >= self.config.max_bad_commands:
            self.send(reply("too_many_errors"))
            self.closing = True
        else:
            self.send(response)

    def send(self, data):
        if data[:1] in (b"4", b"5"):                  # a refusal: one line, with what it answered
            self.counts["refused"] += 1
            self.log.info("refused %s: %s", clip(self.command, 120),
                          data.split(b"\r\n", 1)[0].decode("utf-8", "replace"))
        self.output.append(data)

    def flush(self):
        if self.output:
            data = b"".join(self.output)
            self.output = []
            self.conn.write(data)

    def shutdown(self):
        """Graceful stop: an idle session gets 421 now; a transaction in flight finishes first."""
        self.stopping = True
        if not self.busy:
            try:
                self.conn.write(reply("shutting_down"))
            except ConnectionClosed:
                pass
            self.closing = True
            self.conn.close()

    # -- session commands ----------------------------------------------------

    def smtp_EHLO(self, arg):
        if not arg:
            self.send(reply("syntax"))
            return
        self.helo, self.esmtp = arg.split()[0], True
        self.reset_transaction()
        starttls = self.context.tls_context is not None and not self.tls
        self.send(f"250-{self.context.hostname} Hello {self.helo}\r\n".encode("utf-8")
                  + ehlo_keywords(self.config.max_message_size, starttls))

    def smtp_HELO(self, arg):
        if not arg:
            self.send(reply("syntax"))
            return
        self.helo, self.esmtp = arg.split()[0], False
        self.reset_transaction()
        self.send(format_reply(250, None, f"{self.context.hostname} Hello {self.helo}"))

    def smtp_NOOP(self, arg):
        self.send(reply("ok"))

    def smtp_RSET(self, arg):
        if arg:
            self.send(reply("syntax"))
            return
        self.reset_transaction()
        self.send(reply("ok"))

    def smtp_VRFY(self, arg):
        if not arg:
            self.send(reply("syntax"))
            return
        self.send(reply("vrfy"))

    def smtp_HELP(self, arg):
        self.send(reply("help"))

    def smtp_QUIT(self, arg):
        self.send(reply("bye"))
        self.closing = True

    def smtp_STARTTLS(self, arg):
        if arg:
            self.send(reply("syntax"))
        elif self.tls:
            self.send(reply("tls_active"))
        elif self.context.tls_context is None:
            self.send(reply("tls_unavailable"))
        else:
            self.send(reply("tls_go"))
            self.flush()
            # RFC 3207 section 4.2: forget anything pipelined before the handshake.
            self.conn.discard_buffer()
            self.conn.start_tls(self.context.tls_context)
            self.tls = True
            self.helo = None
            self.reset_transaction()

    # -- the mail transaction ----------------------------------------------

    def smtp_MAIL(self, arg):
        if self.helo is None:
            self.send(reply("need_helo"))
            return
        if self.transaction is not None:
            self.send(reply("nested_mail"))
            return
        try:
            sender, params = parse_path(arg, "FROM", allow_null=True, utf8=True)
        except AddressError as exc:
            self.send(reply("bad_sender", reason=exc))
            return
        problem = self.check_mail_params(params)
        if problem:
            self.send(problem)
            return
        if sender is not None and not sender.is_ascii and "SMTPUTF8" not in params:
            self.send(reply("utf8_required"))
            return
        self.transaction = Transaction(sender, params)
        self.send(reply("sender_ok"))

    def check_mail_params(self, params):
        """None if the MAIL parameters are acceptable, else the reply to send."""
        for name, value in params.items():
            if name == "SIZE":
                if value is None or not (value.isascii() and value.isdigit()):   # not "²"
                    return reply("bad_parameter", name=name)
                if int(value) > self.config.max_message_size:
                    return reply("too_big")
            elif name == "BODY":
                if (value or "").upper() not in ("7BIT", "8BITMIME"):
                    return reply("bad_parameter", name=name)
            elif name == "SMTPUTF8":
                if value is not None:
                    return reply("bad_parameter", name=name)
            else:
                return reply("unknown_parameter", name=name)
        return None

    def smtp_RCPT(self, arg):
        transaction = self.transaction
        if transaction is None:
            self.send(reply("need_mail"))
            return
        mailbox = self.parse_recipient(arg, transaction)
        if mailbox is None:
            return
        if mailbox.domain not in self.config.domains:
            self.send(reply("relay_denied"))
            return
        key = mailbox.key
        if key in transaction.recipients:
            self.send(reply("recipient_ok"))
            return
        if len(transaction.recipients) >= self.config.max_recipients:
            self.send(reply("too_many_recipients"))
            return
        try:
            found = directory(self.context).lookup(key)
        except Exception as exc:
            self.log.warning("recipient lookup for %s failed: %s", clip(key), exc)
            self.send(reply("lookup_failed"))
            return
        if found is None:
            self.send(reply("user_unknown"))
            return
        quota = self.quota_of(found[0], key, at_rcpt=True)
        refusal = self.quota_refusal(quota, key, transaction.declared_size, at_rcpt=True)
        if refusal is not None:
            self.send(refusal)
            return
        if quota is not None and quota.limited:
            transaction.limited.add(key)
        transaction.recipients[key] = (mailbox, found[0], found[1])
        self.send(reply("recipient_ok"))

    def quota_of(self, account_id, address, at_rcpt):
        """The account's Quota (None: no such account), or the reply to send when
        it could not be read.  At RCPT "no limits" may come from the recipient
        cache (at most LIMITS_TTL seconds old, geomail/smtp/recipients.py)."""
        try:
            if at_rcpt:
                return directory(self.context).quota(account_id)
            return get_quota(self.context.db, account_id)
        except Exception as exc:
            self.log.warning("quota lookup for %s failed: %s", clip(address), exc)
            return reply("lookup_failed" if at_rcpt else "storage_failed")

    def quota_refusal(self, quota, address, size, at_rcpt):
        """The reply refusing a recipient over its quota (RFC 9208), or None.

        At RCPT an account that holds its quota already gets 452 4.2.2 (mailbox
        full: the sender retries, and mail may be expunged meanwhile); a message
        that would pass a limit, by its SIZE parameter at RCPT (RFC 1870 §6.2)
        or by its bytes after DATA, gets 552 5.2.2.  ``quota`` is what
        ``quota_of`` returned (a reply: the lookup failed).
        """
        if isinstance(quota, bytes):
            return quota
        if quota is None or not quota.limited:
            return None
        if at_rcpt and quota.full():
            return reply("mailbox_full")
        if (size or not at_rcpt) and quota.exceeded_by(1, size):
            return reply("over_quota", address=address)
        return None

    def parse_recipient(self, arg, transaction):
        """The Mailbox of a RCPT TO argument, or None after sending the error reply."""
        try:
            keyword, _, inner = arg.partition(":")
            inner = inner.strip()
            if keyword.strip().upper() == "TO" and inner.lower().startswith("<postmaster>") \
                    and self.config.domains:
                # RFC 5321 section 4.5.1: <Postmaster> without a domain must be accepted.
                mailbox = parse_mailbox(f"postmaster@{self.config.domains[0]}")
                params = inner[len("<postmaster>"):].split()
            else:
                mailbox, params = parse_path(arg, "TO", utf8=True)
        except AddressError as exc:
            self.send(reply("bad_recipient", reason=exc))
            return None
        if params:
            self.send(reply("unknown_parameter", name=next(iter(params))))
            return None
        if not mailbox.is_ascii and not transaction.smtputf8:
            self.send(reply("utf8_required"))
            return None
        return mailbox

    def smtp_DATA(self, arg):
        transaction = self.transaction
        if arg:
            self.send(reply("syntax"))
        elif transaction is None:
            self.send(reply("need_mail"))
        elif transaction.delivery is not None or transaction.bdat_size:
            self.send(reply("data_after_bdat"))
        elif not transaction.recipients:
            self.send(reply("no_valid_recipients"))
        else:
            self.send(reply("data_go"))
            self.flush()
            self.receive_data(transaction)

    def receive_data(self, transaction):
        """Stream the message into a Delivery until <CRLF>.<CRLF>, then answer."""
        delivery = self.new_delivery(transaction)
        unstuffer = DotUnstuffer()
        limit = self.config.max_message_size
        size, too_big = 0, False
        try:
            while True:
                try:
                    data = self.conn.read_some(READ_CHUNK)
                except Timeout:
                    delivery.abort()
                    self.send(reply("timeout"))
                    self.closing = True
                    return
                body, rest = unstuffer.feed(data)
                if body and not too_big:
                    size += len(body)
                    if size > limit:
                        too_big = True            # drain to the end, store nothing
                        delivery.abort()
                    else:
                        delivery.feed(body)
                if rest is not None:
                    self.conn.unread(rest)
                    break
        except BaseException:
            delivery.abort()
            raise
        if too_big:
            self.send(reply("too_big"))
        else:
            self.commit(delivery, transaction)
        self.transaction = None

    def smtp_BDAT(self, arg):
        """RFC 3030 CHUNKING: BDAT size [LAST]; the chunk is read whatever we answer."""
        words = arg.split()
        if not words or not (words[0].isascii() and words[0].isdigit()) or len(words) > 2 or (
                len(words) == 2 and words[1].upper() != "LAST"):
            self.send(reply("syntax"))
            return
        size, last = int(words[0]), len(words) == 2
        transaction = self.transaction
        if transaction is None or not transaction.recipients:
            self.skip_bytes(size)
            self.send(reply("need_mail" if transaction is None else "need_rcpt"))
            return
        if transaction.bdat_failed:
            self.skip_bytes(size)
            self.send(reply("bdat_failed"))
            if last:
                self.transaction = None
            return
        if transaction.delivery is None:
            transaction.delivery = self.new_delivery(transaction)
            transaction.line_ends = LineEndFixer()
        self.receive_chunk(transaction, size, last)

    def receive_chunk(self, transaction, size, last):
        delivery = transaction.delivery
        remaining = size
        try:
            while remaining:
                data = self.conn.read_some(min(remaining, READ_CHUNK))
                remaining -= len(data)
                if transaction.bdat_failed:
                    continue
                body = transaction.line_ends.feed(data, last=last and not remaining)
                transaction.bdat_size += len(body)
                if transaction.bdat_size > self.config.max_message_size:
                    transaction.bdat_failed = "too_big"
                    delivery.abort()
                else:
                    delivery.feed(body)
            if last and not transaction.bdat_failed:
                delivery.feed(transaction.line_ends.feed(b"", last=True))
        except Timeout:
            delivery.abort()
            self.send(reply("timeout"))
            self.closing = True
            return
        except BaseException:
            delivery.abort()
            raise
        if transaction.bdat_failed:
            self.send(reply(transaction.bdat_failed))
            if last:
                self.transaction = None
        elif last:
            transaction.delivery = None
            self.commit(delivery, transaction)
            self.transaction = None
        else:
            self.send(reply("chunk_ok", size=size))

    def skip_bytes(self, size):
        while size:
            size -= len(self.conn.read_some(min(size, READ_CHUNK)))

    # -- storing -------------------------------------------------------------

    def new_delivery(self, transaction):
        owner = next(iter(transaction.recipients.values()))[1]
        return Delivery(self.context, owner)

    def commit(self, delivery, transaction):
        """Store the message for every recipient; 250 only after COMMIT."""
        targets = [Target(inbox, self.trace_headers(transaction, mailbox, delivery.token))
                   for mailbox, _, inbox in transaction.recipients.values()]
        # RFC 9208: one reply for all recipients, so a message that would pass any
        # recipient's quota is stored for none (senders giving SIZE learn it per RCPT).
        # Only accounts that had a limit at RCPT are read again: one without is no
        # more checked than two deliveries racing are (geomail/store/quota.py), and
        # a message then costs one quota query instead of two.
        for (key, (_, account_id, _)), target in zip(transaction.recipients.items(), targets):
            if key not in transaction.limited:
                continue
            refusal = self.quota_refusal(self.quota_of(account_id, key, at_rcpt=False), key,
                                         delivery.size + len(target.trace_headers), at_rcpt=False)
            if refusal is not None:
                delivery.abort()
                self.send(refusal)
                return
        counters = metrics.get()
        counters.smtp_bytes.inc(delivery.size)
        started = time.monotonic()
        try:
            stored = self.context.committer.commit(delivery, targets)   # group commit
        except DeliveryFailed as failed:
            for key in transaction.recipients:
                directory(self.context).forget(key)
            if failed.kind == BUG:
                self.log.error("delivery %s failed", delivery.token, exc_info=failed.cause)
            else:
                self.log.warning("delivery %s failed (%s): %s", delivery.token, failed.kind,
                                 clip(str(failed.cause), 300))
            self.send(storage_failure(failed))
            return
        seconds = time.monotonic() - started
        counters.smtp_time_to_250.observe(seconds)
        counters.smtp_messages.inc()
        self.counts["messages"] += 1
        self.counts["recipients"] += len(transaction.recipients)
        # queue id, Message-ID, size, where each copy went (account/mailbox:UID), time to 250
        places = ", ".join(f"{clip(key)}/INBOX:{uid}"
                           for key, (_, uid) in zip(transaction.recipients, stored))
        self.log.info("stored %s message-id=%s from=<%s> size=%d to=%s in %.3f s", delivery.token,
                      clip(delivery.message_id), clip(str(transaction.sender or "")), delivery.size,
                      places, seconds)
        self.send(reply("queued", token=delivery.token))

    def trace_headers(self, transaction, recipient, token):
        """Return-Path and Received (RFC 5321 section 4.4), one pair per recipient."""
        if transaction.smtputf8:
            protocol = "UTF8SMTPS" if self.tls else "UTF8SMTP"
        elif self.esmtp:
            protocol = "ESMTPS" if self.tls else "ESMTP"
        else:
            protocol = "SMTP"
        date = received_date()
        sender = str(transaction.sender) if transaction.sender else ""
        text = (f"Return-Path: <{sender}>\r\n"
                f"Received: from {self.helo} ([{self.peer}])\r\n"
                f"\tby {self.context.hostname} (geomail) with {protocol} id {token}\r\n"
                f"\tfor <{recipient}>; {date}\r\n")
        return text.encode("utf-8")

    def reset_transaction(self):
        transaction, self.transaction = self.transaction, None
        if transaction is not None and transaction.delivery is not None:
            transaction.delivery.abort()
