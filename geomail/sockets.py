"""Listening sockets and privilege dropping.

The master binds one SO_REUSEPORT socket per worker slot and protocol while
it still has root (ports below 1024); each worker inherits the sockets of
its slot across fork.  Because the master keeps them open, a replaced worker
(HUP, crash) takes over a socket whose accept queue never went away: no
connection is refused while workers come and go.
"""

import errno
import grp
import os
import pwd
import socket

BACKLOG = 1024


class BindError(Exception):
    """A listener could not be bound; the message is meant for the operator."""


def check_port_free(host, port):
    """Fail unless nobody listens on host:port, a geomail included.

    SO_REUSEPORT would let a second geomail started by the same user share
    the port silently (the kernel spreading connections over both); a
    probe bound without SO_REUSEPORT fails against any listener, so the
    master calls this once at start, before binding its own sockets.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise BindError(_explain(host, port, exc)) from None


def bind_listener(host, port):
    """A listening TCP socket on host:port with SO_REUSEPORT set."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise BindError(_explain(host, port, exc)) from None
    sock.set_inheritable(True)
    return sock


def _explain(host, port, exc):
    if exc.errno == errno.EADDRINUSE:
        reason = "the address is already in use by another program (another geomail?)"
    elif exc.errno == errno.EACCES:
        reason = "permission denied (ports below 1024 need root)"
    elif exc.errno == errno.EADDRNOTAVAIL:
        reason = "that address does not belong to this machine"
    else:
        reason = exc.strerror or str(exc)
    return f"cannot listen on {host}:{port}: {reason}"


def owner_ids(user, group):
    """(uid, gid) of --user/--group (names or numbers); None for what is not set."""
    gid = _lookup_group(group) if group else None
    uid = None
    if user:
        entry = _lookup_user(user)
        uid = entry.pw_uid
        if gid is None:
            gid = entry.pw_gid
    return uid, gid


def drop_privileges(user, group):
    """Switch to user/group (names or numbers); a no-op when neither is set."""
    if not user and not group:
        return
    uid, gid = owner_ids(user, group)
    if gid is not None:
        os.setgroups([])
        os.setgid(gid)
    if uid is not None:
        os.setuid(uid)


def _lookup_user(user):
    try:
        return pwd.getpwuid(int(user)) if str(user).isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise ValueError(f"no such user: {user}") from None


def _lookup_group(group):
    try:
        return grp.getgrgid(int(group)).gr_gid if str(group).isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError(f"no such group: {group}") from None
