"""One IMAP session per connection (RFC 3501).

The foundation serves the any-state commands; the full command set lives
in one module per command once the IMAP issue lands.
"""

import logging

from geomail.netio import Connection, ConnectionClosed, LineTooLong, Timeout

log = logging.getLogger("geomail.imap")

CAPABILITIES = "IMAP4rev1"
MAX_LINE = 64 * 1024
IDLE_TIMEOUT = 30 * 60.0      # RFC 3501 §5.4: at least 30 minutes


def handle_imap(context, sock, address, implicit_tls=False):
    IMAPSession(context, sock, address).run()


class IMAPSession:
    def __init__(self, context, sock, address):
        self.context = context
        self.conn = Connection(sock, timeout=IDLE_TIMEOUT)
        self.address = address
        self.closing = False

    def run(self):
        self.context.register(self)
        try:
            self.send(f"* OK [CAPABILITY {CAPABILITIES}] geomail ready")
            while not self.closing:
                try:
                    line = self.conn.readline(MAX_LINE)
                except LineTooLong:
                    self.send("* BAD Line too long")
                    continue
                except Timeout:
                    self.send("* BYE Autologout; idle for too long")
                    break
                self.dispatch(line.rstrip(b"\r\n").decode("utf-8", "replace"))
        except ConnectionClosed:
            pass
        finally:
            self.context.unregister(self)
            self.conn.close()

    def send(self, text):
        self.conn.write(text.encode("utf-8") + b"\r\n")

    def shutdown(self):
        try:
            self.send("* BYE Server shutting down")
        except ConnectionClosed:
            pass
        self.closing = True
        self.conn.close()

    def dispatch(self, line):
        tag, _, rest = line.partition(" ")
        if not tag or not rest:
            self.send("* BAD Missing tag or command")
            return
        command = rest.split(" ", 1)[0].upper()
        if command == "CAPABILITY":
            self.send(f"* CAPABILITY {CAPABILITIES}")
            self.send(f"{tag} OK CAPABILITY completed")
        elif command == "NOOP":
            self.send(f"{tag} OK NOOP completed")
        elif command == "LOGOUT":
            self.send("* BYE geomail logging out")
            self.send(f"{tag} OK LOGOUT completed")
            self.closing = True
        else:
            self.send(f"{tag} BAD Unknown command")
