"""Entry point of the IMAP listener: one Session per connection (see session.py)."""

from geomail.imap.session import Session


def handle_imap(context, sock, address, implicit_tls=False):
    """Serve one IMAP connection until LOGOUT, BYE or disconnect."""
    Session(context, sock, address, implicit_tls=implicit_tls).run()
