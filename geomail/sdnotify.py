"""Tell systemd how the master is doing (sd_notify(3) without libsystemd).

With ``Type=notify`` systemd starts geomail and waits for ``READY=1`` before
it counts the service as started, so units ordered after it (and
``systemctl start`` itself) wait until every worker is listening.  The
protocol is one datagram of ``KEY=value`` lines to the socket named by
``$NOTIFY_SOCKET`` (a path, or an abstract name written with a leading
``@``).  Without that variable, as outside systemd, nothing is sent.
"""

import os
import socket


def notify(*lines):
    """Send ``lines`` (``"READY=1"``, ``"STATUS=..."``); True if systemd listens."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(lines).encode("utf-8", "replace"), address)
        return True
    except OSError:
        return False
