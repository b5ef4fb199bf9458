"""A worker process: gevent, one greenlet per connection, its own storage clients.

Runs in a child the master forked.  gevent is imported and the standard
library monkey-patched here, after fork, so that the master stays a plain
process.  Each listener (one per protocol, inherited from the master) gets a
``StreamServer`` with a bounded pool: a full pool stops accepting, and the
kernel queues the rest (back-pressure).  The MySQL pool and the S3 client
are created here, after patching, because DBUtils uses threading.Condition.
"""

import gc
import os
import signal
import time

REFUSAL_SLOTS = 64
REFUSALS = {
    "smtp": b"421 4.7.0 Too many connections, try again later\r\n",
    "imap": b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
}


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
    import geomail.delivery  # noqa: F401
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
        self.alive = True
        self.fast_exit = False

    def serve(self):
        import gevent
        from geomail import logs
        from geomail.context import ServerContext
        from geomail.sockets import drop_privileges

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
        self.log.info("worker ready (slot %d): %s", self.slot,
                      ", ".join(f"{name} on port {server.server_port}"
                                for name, server in zip(self.listeners, self.servers)))
        interval = max(0.1, min(1.0, self.config.worker_timeout / 4))
        while self.alive:
            self.heartbeat.notify()
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
        from geomail.imap.server import handle_imap
        from geomail.smtp.server import handle_smtp

        handlers = {"smtp": handle_smtp, "smtps": handle_smtp,
                    "imap": handle_imap, "imaps": handle_imap}
        limit = self.config.max_connections
        for name, sock in self.listeners.items():
            listener = gsocket.socket(sock.family, sock.type, fileno=sock.detach())
            # A few greenlets beyond the limit answer "too many connections" and
            # hang up; past those the pool is full and the kernel queues the rest.
            pool = Pool(limit + REFUSAL_SLOTS)
            protocol = name.rstrip("s")
            self.active[protocol] = 0

            def handle(client, address, handler=handlers[name], protocol=protocol,
                       implicit_tls=name.endswith("s")):
                if self.active[protocol] >= limit:
                    self.refuse(client, protocol)
                    return
                self.active[protocol] += 1
                try:
                    handler(self.context, client, address, implicit_tls=implicit_tls)
                finally:
                    self.active[protocol] -= 1

            extra = {"ssl_context": self.context.tls_context} if name.endswith("s") else {}
            server = StreamServer(listener, handle, spawn=pool, **extra)
            # Several processes share the port: take few connections per wake-up
            # so the kernel's spreading is not undone (gevent's baseserver notes).
            server.max_accept = 10
            server.start()
            self.servers.append(server)

    @staticmethod
    def refuse(client, protocol):
        try:
            client.sendall(REFUSALS[protocol])
        except OSError:
            pass
        client.close()

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
