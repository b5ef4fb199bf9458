"""A worker process: gevent, one greenlet per connection, its own storage clients.

Runs in a child the master forked.  gevent is imported and the standard
library monkey-patched here, after fork, so that the master stays a plain
process.  Each listener (one per protocol, inherited from the master) gets a
``StreamServer`` with a bounded pool: a full pool stops accepting, and the
kernel queues the rest (back-pressure).  The MySQL pool and the S3 client
are created here, after patching, because DBUtils uses threading.Condition.
"""

import functools
import gc
import os
import signal
import time

from geomail import metrics

# Greenlets beyond --max-connections that only answer "too many" and hang up.
# A refusal is one send of a line that fits the new socket's send buffer,
# bounded anyway by REFUSAL_TIMEOUT, and no TLS handshake (see refuse), so a
# flood of refused connections cannot keep these slots, or the pool, full.
REFUSAL_SLOTS = 64
REFUSAL_TIMEOUT = 2.0
# How long the TLS handshake of an implicit-TLS port (RFC 8314) may take.
HANDSHAKE_TIMEOUT = 30.0
HTTP_CONNECTIONS = 16              # /metrics and /health requests served at once per worker
# Sessions closed since the last malloc_trim that make it worth another, and the
# least seconds between two (a trim walks the heap: 10-45 ms measured for 200 MB).
TRIM_AFTER_CLOSES = 100
TRIM_INTERVAL = 5.0
REFUSALS = {
    "smtp": b"421 4.7.0 Too many connections, try again later\r\n",
    "imap": b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
}
SOURCE_REFUSALS = {
    "smtp": b"421 4.7.0 Too many connections from your address, try again later\r\n",
    "imap": b"* BYE [UNAVAILABLE] Too many connections from your address, try again later\r\n",
}


def _load_malloc_trim():
    """glibc's malloc_trim, or None (another libc)."""
    import ctypes
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_malloc_trim = _load_malloc_trim()


def run(config, slot, listeners, heartbeat, master_pid):
    """Entry point in the forked child; returns the process exit status."""
    from gevent import monkey
    monkey.patch_all()
    worker = Worker(config, slot, listeners, heartbeat, master_pid)
    return worker.serve()


def import_session_code(preload_codecs=False):
    """Import every module a session may need, while files are still readable.

    Python finds codecs lazily (a message in iso-2022-jp imports
    encodings.iso2022_jp on first use); when the worker will drop root,
    load them all now, since the unprivileged user may not read the library.
    """
    if preload_codecs:
        import encodings
        import importlib
        import pkgutil
        for module in pkgutil.iter_modules(encodings.__path__):
            try:
                importlib.import_module("encodings." + module.name)
            except Exception:  # platform-specific codecs (mbcs, oem) do not import here
                pass
    import geomail.ingest  # noqa: F401
    import geomail.imap.server  # noqa: F401
    import geomail.janitor  # noqa: F401
    import geomail.reader  # noqa: F401
    import geomail.smtp.server  # noqa: F401
    import geomail.imap.session  # noqa: F401


class Worker:
    def __init__(self, config, slot, listeners, heartbeat, master_pid):
        import logging
        self.log = logging.getLogger("geomail.worker")
        self.config = config
        self.slot = slot
        self.listeners = listeners
        self.heartbeat = heartbeat
        self.master_pid = master_pid
        self.servers = []
        self.sessions = set()
        self.active = {}
        self.session_metrics = {}       # protocol -> (open connections gauge, sessions counter)
        self.per_source = None         # connlimit.Counter, made in start_servers
        self.handlers = {}             # protocol -> session entry point
        self.closed_since_trim = 0
        self.last_trim = 0.0
        self.alive = True
        self.fast_exit = False

    def serve(self):
        import gevent
        from geomail import logs
        from geomail.context import ServerContext
        from geomail.sockets import drop_privileges

        logs.log_uncaught(self.log)                    # the hub's tracebacks too, with session ids
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C reaches the master, which decides
        gevent.signal_handler(signal.SIGTERM, self.stop, False)
        gevent.signal_handler(signal.SIGQUIT, self.stop, True)
        gevent.signal_handler(signal.SIGUSR1, logs.reopen)
        # Everything that reads files (code, TLS key, boto3's models) happens
        # before root is given up: the unprivileged user may not read them.
        import_session_code(preload_codecs=bool(self.config.user or self.config.group))
        self.context = ServerContext.create(self.config, self)
        if self.config.user or self.config.group:
            self.context.warm_up()
        self.start_servers()
        # Everything loaded so far (code, boto3's service models, ...) lives as long as the
        # worker: take it out of the garbage collector's view, so the full collections that
        # a big FETCH or SEARCH triggers do not walk it again and again.
        gc.collect()
        gc.freeze()
        # No greenlet has run yet: no session ever runs as root.
        drop_privileges(self.config.user, self.config.group)
        gevent.spawn(self.janitor)
        if "imap" in self.listeners or "imaps" in self.listeners:
            from geomail.imap.who import kick_poller
            gevent.spawn(kick_poller, self)
        self.log.info("worker ready (slot %d): %s", self.slot,
                      ", ".join(f"{name} on port {server.server_port}"
                                for name, server in zip(self.listeners, self.servers)))
        interval = max(0.1, min(1.0, self.config.worker_timeout / 4))
        while self.alive:
            self.heartbeat.notify()
            self.trim_after_burst()
            if os.getppid() != self.master_pid:
                self.log.warning("master went away; stopping")
                break
            gevent.sleep(interval)
        if self.fast_exit:
            return 0
        self.drain()
        return 0

    def start_servers(self):
        from gevent.pool import Pool
        from gevent.server import StreamServer
        from gevent import socket as gsocket
        from geomail import connlimit
        from geomail.imap.server import handle_imap
        from geomail.smtp.server import handle_smtp

        self.handlers = {"smtp": handle_smtp, "imap": handle_imap}
        limit = self.config.max_connections
        # One count per source address for the whole host (see geomail.connlimit).
        self.per_source = connlimit.Counter(self.config.max_connections_per_ip,
                                            connlimit.shared_table())
        if not self.per_source.shared:
            self.log.warning("no shared connection table: --max-connections-per-ip "
                             "holds per worker")
        for name, sock in self.listeners.items():
            listener = gsocket.socket(sock.family, sock.type, fileno=sock.detach())
            if name == "http":
                self.servers.append(self.start_http(listener))
                continue
            # A few greenlets beyond the limit answer "too many connections" and
            # hang up; past those the pool is full and the kernel queues the rest.
            pool = Pool(limit + REFUSAL_SLOTS)
            protocol = name.rstrip("s")
            self.active[protocol] = 0
            counters = metrics.get()
            # the labelled gauge and the session counter, found once, not per connection
            # (prometheus_client's labels() takes a lock and builds a key: py-spy, 1.5%)
            self.session_metrics[protocol] = (
                counters.connections_open.labels(protocol),
                counters.smtp_sessions if protocol == "smtp" else counters.imap_sessions)
            handle = functools.partial(self.handle, protocol=protocol,
                                       implicit_tls=name.endswith("s"))
            # No ssl_context here: gevent would run the handshake, without a
            # timeout, before the limits are checked; self.handle does it.
            server = StreamServer(listener, handle, spawn=pool)
            # Several processes share the port: take few connections per wake-up
            # so the kernel's spreading is not undone (gevent's baseserver notes).
            server.max_accept = 10
            server.start()
            self.servers.append(server)

    def start_http(self, listener):
        """/metrics and /health (geomail/httpapi.py), a few connections at a time."""
        from gevent.pool import Pool
        from gevent.pywsgi import WSGIServer
        from geomail.httpapi import application
        server = WSGIServer(listener, application(self.context), spawn=Pool(HTTP_CONNECTIONS),
                            log=None, error_log=self.log)
        server.start()
        return server

    def handle(self, client, address, protocol, implicit_tls):
        """Check the limits, then serve one connection (in its own greenlet)."""
        if self.active[protocol] >= self.config.max_connections:
            self.refuse(client, protocol, REFUSALS, implicit_tls)
            return
        token = self.per_source.acquire(protocol, address)
        if token is None:
            self.refuse(client, protocol, SOURCE_REFUSALS, implicit_tls)
            return
        self.active[protocol] += 1
        gauge, sessions = self.session_metrics[protocol]
        gauge.inc()
        sessions.inc()
        try:
            if implicit_tls:
                client = self.start_tls(client, HANDSHAKE_TIMEOUT)
                if client is None:
                    return
            self.handlers[protocol](self.context, client, address, implicit_tls=implicit_tls)
        finally:
            gauge.dec()
            self.active[protocol] -= 1
            self.per_source.release(token)
            self.closed_since_trim += 1

    def start_tls(self, client, timeout):
        """The server side of an implicit-TLS handshake, bounded in time; None on failure."""
        client.settimeout(timeout)
        try:
            tls = self.context.tls_context.wrap_socket(client, server_side=True)
        except (OSError, ValueError):
            client.close()
            return None
        return tls

    @staticmethod
    def refuse(client, protocol, texts, implicit_tls=False):
        """Answer "too many" and hang up, at once.

        On an implicit-TLS port the connection is just closed: the answer
        would need a handshake first, and a handshake can be made to last
        (REFUSAL_TIMEOUT each), which would let refused connections fill the pool.
        """
        if not implicit_tls:
            client.settimeout(REFUSAL_TIMEOUT)
            try:
                client.sendall(texts[protocol])
            except OSError:
                pass
        client.close()

    def trim_after_burst(self):
        """Give freed memory back to the system after many connections closed.

        glibc keeps freed heap memory for reuse, so after a flood of sessions
        closes, what they used stays resident; malloc_trim(0) returns the free
        pages.  Measured (tests/server/test_floods.py, 2,000 sessions held on
        2 workers, peak +9.7 MB per worker): RSS after close +6.0/+5.6 MB over
        the baseline without it, +2.3/+2.4 MB with it.
        """
        if self.closed_since_trim < TRIM_AFTER_CLOSES or _malloc_trim is None:
            return
        now = time.monotonic()
        if now - self.last_trim < TRIM_INTERVAL:
            return
        self.closed_since_trim = 0
        self.last_trim = now
        _malloc_trim(0)

    def janitor(self):
        """Sweep abandoned uploads at start and then periodically (see geomail.janitor)."""
        import gevent
        from geomail import janitor
        while self.alive:
            try:
                janitor.sweep(self.context)
            except Exception as exc:  # storage down: try again next round
                self.log.warning("janitor sweep failed: %s", exc)
            gevent.sleep(janitor.interval(self.config))

    def stop(self, fast=False):
        """SIGTERM: stop accepting and finish; SIGQUIT: leave now."""
        self.alive = False
        self.fast_exit = fast
        if fast:
            os._exit(0)

    def drain(self):
        """Graceful stop: no new connections, sessions finish within the timeout."""
        import gevent
        for server in self.servers:
            server.close()
        for session in list(self.sessions):
            session.shutdown()
        deadline = time.monotonic() + self.config.graceful_timeout
        for server in self.servers:
            remaining = max(0.0, deadline - time.monotonic())
            server.pool.join(timeout=remaining)
        for server in self.servers:
            server.pool.kill(block=True, timeout=1)
        self.context.close()
        gevent.sleep(0)
        self.log.info("worker stopped")
