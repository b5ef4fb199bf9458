"""One SMTP session per connection (RFC 5321).

One ``smtp_<VERB>`` method per command, each checking its own
preconditions, in the manner of aiosmtpd.  Limits are named constants with
the RFC arithmetic beside them.
"""

import logging

from geomail.netio import Connection, ConnectionClosed, LineTooLong, Timeout
from geomail.smtp.replies import format_reply, reply

log = logging.getLogger("geomail.smtp")

# RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF;
# we accept up to the text-line limit of 1000 (+CRLF) as many servers do.
MAX_COMMAND_LINE = 1000 + 2
IDLE_TIMEOUT = 300.0          # RFC 5321 §4.5.3.2.7 server timeout: 5 minutes
MAX_BAD_COMMANDS = 10


def handle_smtp(context, sock, address, implicit_tls=False):
    SMTPSession(context, sock, address).run()


class SMTPSession:
    def __init__(self, context, sock, address):
        self.context = context
        self.conn = Connection(sock, timeout=IDLE_TIMEOUT)
        self.address = address
        self.helo = None
        self.bad_commands = 0
        self.closing = False

    def run(self):
        self.context.register(self)
        try:
            self.send(format_reply(220, None, f"{self.context.hostname} ESMTP geomail"))
            while not self.closing:
                try:
                    line = self.conn.readline(MAX_COMMAND_LINE)
                except LineTooLong:
                    self.send(reply("line_too_long"))
                    continue
                except Timeout:
                    self.send(reply("timeout"))
                    break
                self.dispatch(line.rstrip(b"\r\n"))
        except ConnectionClosed:
            pass
        finally:
            self.context.unregister(self)
            self.conn.close()

    def dispatch(self, line):
        verb, _, arg = line.decode("utf-8", "replace").partition(" ")
        method = getattr(self, "smtp_" + verb.upper(), None) if verb.isalpha() else None
        if method is None:
            self.bad_commands += 1
            if self.bad_commands >= MAX_BAD_COMMANDS:
                self.send(reply("too_many_errors"))
                self.closing = True
                return
            self.send(reply("unknown_command"))
            return
        method(arg.strip())

    def send(self, data):
        self.conn.write(data)

    def shutdown(self):
        """Graceful stop: an idle session is told to come back later."""
        try:
            self.send(reply("shutting_down"))
        except ConnectionClosed:
            pass
        self.closing = True
        self.conn.close()

    # -- commands ------------------------------------------------------------

    def smtp_EHLO(self, arg):
        if not arg:
            self.send(reply("syntax", "EHLO requires a domain name"))
            return
        self.helo = arg
        lines = [f"{self.context.hostname} Hello {arg}", "PIPELINING", "8BITMIME",
                 "ENHANCEDSTATUSCODES"]
        self.send(format_reply(250, None, "\n".join(lines)))

    def smtp_HELO(self, arg):
        if not arg:
            self.send(reply("syntax", "HELO requires a domain name"))
            return
        self.helo = arg
        self.send(format_reply(250, None, f"{self.context.hostname} Hello {arg}"))

    def smtp_NOOP(self, arg):
        self.send(reply("ok"))

    def smtp_RSET(self, arg):
        self.send(reply("ok"))

    def smtp_VRFY(self, arg):
        self.send(reply("vrfy"))

    def smtp_HELP(self, arg):
        self.send(reply("help"))

    def smtp_QUIT(self, arg):
        self.send(reply("bye"))
        self.closing = True

    def smtp_MAIL(self, arg):
        self.send(reply("not_implemented"))

    smtp_RCPT = smtp_DATA = smtp_MAIL
