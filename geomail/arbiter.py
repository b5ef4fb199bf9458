"""The master process: spawns workers, keeps their number right, handles signals.

Modelled on gunicorn's arbiter.  Signal handlers only queue the signal and
wake the main loop through a self-pipe; the loop pops one signal at a time
and calls ``handle_<name>``; between signals it reaps dead workers, kills
stuck ones and brings the count back to target.

The master never touches MySQL, S3 or a client socket, and imports neither
gevent, pymysql, boto3 nor DBUtils: workers import those after fork.
"""

import errno
import logging
import os
import select
import signal
import time
from dataclasses import dataclass, field

from geomail import banner
from geomail import config as configuration
from geomail import connlimit
from geomail import logs
from geomail import metrics
from geomail import preflight
from geomail import httpstatus
from geomail import sdnotify
from geomail.daemon import Pidfile, daemonize
from geomail.heartbeat import Heartbeat
from geomail.sockets import BindError, bind_listener, check_port_free, owner_ids

log = logging.getLogger("geomail.master")

# Exit codes a worker uses to tell the master something.
WORKER_BOOT_ERROR = 3      # the worker cannot start at all: stop instead of fork-looping
PREFLIGHT_FAILED = 4       # storage check before the first worker failed

BACKOFF_FIRST = 0.5        # seconds before respawning a worker that died young
BACKOFF_MAX = 30.0
YOUNG = 5.0                # a worker that dies within this many seconds "died young"


class HaltServer(Exception):
    def __init__(self, reason, exit_status=1):
        super().__init__(reason)
        self.reason = reason
        self.exit_status = exit_status


@dataclass
class WorkerProcess:
    """What the master knows of one worker."""

    pid: int
    slot: int
    generation: int
    heartbeat: Heartbeat
    started: float = field(default_factory=time.monotonic)
    aborted: bool = False          # SIGABRT sent for a missed heartbeat
    stopping: bool = False         # SIGTERM sent


@dataclass
class Slot:
    """A worker position: its listening sockets and its respawn back-off."""

    listeners: dict                # protocol name -> socket
    backoff: float = 0.0
    not_before: float = 0.0        # monotonic time before which no respawn


class Arbiter:
    SIGNALS = ["HUP", "QUIT", "INT", "TERM", "TTIN", "TTOU", "USR1", "CHLD"]

    def __init__(self, config, argv=None):
        self.config = config
        self.argv = argv
        self.generation = 0
        self.num_workers = config.workers
        self.workers = {}           # pid -> WorkerProcess
        self.slots = {}             # slot number -> Slot
        self.signal_queue = []
        self.told_ready = False        # READY=1 sent to systemd (sdnotify.py)
        self.pipe = None
        self.pidfile = None
        self.master_pid = os.getpid()
        self.halt_reason = None
        self.retired_slots = None   # listeners of the previous addresses, after a HUP

    # -- start-up ---------------------------------------------------------

    def run(self):
        """Start, then loop until a stop signal; returns the exit status."""
        try:
            self.start()
            self.spawn_workers()
            self.publish_status()
            while True:
                sig = self.signal_queue.pop(0) if self.signal_queue else None
                if sig is None:
                    self.sleep()
                    self.reap_workers()
                    self.murder_workers()
                    self.manage_workers()
                    self.tell_systemd_ready()
                    self.publish_status()
                    continue
                name = signal.Signals(sig).name[3:].lower()
                log.info("handling signal %s", name.upper())
                getattr(self, "handle_" + name)()
        except StopIteration:
            self.halt()
            return 0
        except HaltServer as exc:
            self.halt(exc.reason, exc.exit_status)
            return exc.exit_status

    def start(self):
        """Bind, check storage, daemonize, write the pidfile, install signals."""
        log.info("geomail master starting: %s", configuration.describe(self.config))
        for name, port in self._ports(self.config):
            try:
                check_port_free(self._host(self.config, name), port)
            except BindError as exc:
                raise HaltServer(f"{exc}; choose another with {_port_option(name)}")
        for slot in range(self.num_workers):
            self.slots[slot] = Slot(self.bind_slot(self.config))
        connlimit.create_shared(self.num_workers)   # before any fork: workers inherit it
        if self.config.http_port:                  # before any fork: workers inherit it
            metrics.enable_multiprocess(owner_ids(self.config.user, self.config.group))
        self.preflight()
        for line in banner.lines(self.config, self._ports(self.config)):
            (log.warning if line.startswith("warning:") else log.info)("%s", line)
        if self.config.daemon:
            daemonize()
            self.master_pid = os.getpid()
            if not self.config.log_file:     # stderr is /dev/null from here: syslog instead
                logs.setup("", self.config.log_level, self.config.log_format, daemon=True)
        if self.config.pidfile:
            self.pidfile = Pidfile(self.config.pidfile)
            try:
                self.pidfile.create(self.master_pid)
            except (OSError, RuntimeError) as exc:
                raise HaltServer(f"cannot write pidfile: {exc}")
        self.init_signals()

    def bind_slot(self, config):
        """One listening socket per served protocol, for one worker slot."""
        listeners = {}
        try:
            for name, port in self._ports(config):
                listeners[name] = bind_listener(self._host(config, name), port)
        except BindError as exc:
            for sock in listeners.values():
                sock.close()
            raise HaltServer(str(exc))
        return listeners

    def preflight(self):
        """Migrate the schema and check the bucket in a child process.

        A child does it so that the master never imports a database or S3
        library; the child's last stderr line is the reason on failure.
        """
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            status = PREFLIGHT_FAILED
            try:
                preflight.run(self.config)
                status = 0
            except Exception as exc:  # the reason travels to the master, as one line
                line = preflight.explain(exc, self.config)
                os.write(write_end, line.encode("utf-8", "replace")[:4000])
            finally:
                os._exit(status)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            reason = pipe.read().decode("utf-8", "replace").strip()
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise HaltServer(f"storage check failed: {reason or 'preflight process died'}")

    def init_signals(self):
        if self.pipe:
            for fd in self.pipe:
                os.close(fd)
        self.pipe = os.pipe()
        for fd in self.pipe:
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)
        for name in self.SIGNALS:
            signal.signal(getattr(signal, "SIG" + name), self.queue_signal)

    def queue_signal(self, sig, frame):
        """Signal handler: queue and wake the loop, nothing else."""
        if sig != signal.SIGCHLD and len(self.signal_queue) < 5:
            self.signal_queue.append(sig)
        self.wakeup()

    def wakeup(self):
        try:
            os.write(self.pipe[1], b".")
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EINTR):
                raise

    def sleep(self):
        """Wait up to a second for a signal."""
        try:
            ready = select.select([self.pipe[0]], [], [], 1.0)
            if ready[0]:
                while os.read(self.pipe[0], 1024):
                    pass
        except (OSError, select.error) as exc:
            if getattr(exc, "errno", None) not in (errno.EAGAIN, errno.EINTR):
                raise

    # -- signal handlers --------------------------------------------------

    def handle_chld(self):
        """Reaping happens in the main loop."""

    def handle_term(self):
        """Graceful stop: workers finish what is in flight, then exit."""
        raise StopIteration

    handle_int = handle_term

    def handle_quit(self):
        """Fast stop."""
        self.stop(graceful=False)
        raise StopIteration

    def handle_hup(self):
        """Re-read the configuration and replace every worker, refusing nothing.

        New workers start on the kept sockets (or new ones, if the addresses
        changed) before the old ones are told to stop, so the kernel always
        has a listener to queue connections on.
        """
        try:
            new_config = configuration.load(self.argv)
        except SystemExit:
            log.error("configuration reload failed; keeping the running configuration")
            return
        # systemd: reloading until the new generation has reported in (READY=1 again)
        sdnotify.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}",
                        "STATUS=reloading")
        self.told_ready = False
        if self._addresses(new_config) != self._addresses(self.config):
            try:
                new_slots = {slot: Slot(self.bind_slot(new_config))
                             for slot in range(new_config.workers)}
            except HaltServer as exc:
                log.error("reload: %s; keeping the running configuration", exc.reason)
                return
            self.retired_slots = self.slots
            self.slots = new_slots
        self.config = new_config
        logs.setup(new_config.log_file, new_config.log_level, new_config.log_format,
                   daemon=new_config.daemon)
        self.num_workers = new_config.workers
        old = [w for w in self.workers.values()]
        self.generation += 1
        self.spawn_workers()
        for worker in old:
            self.kill_worker(worker, signal.SIGTERM)
        log.info("reloaded: %d new workers, %d old workers stopping", self.num_workers, len(old))

    def handle_ttin(self):
        """One worker more."""
        self.num_workers += 1
        log.info("workers: %d", self.num_workers)
        self.manage_workers()

    def handle_ttou(self):
        """One worker less (never fewer than one)."""
        if self.num_workers > 1:
            self.num_workers -= 1
        log.info("workers: %d", self.num_workers)
        self.manage_workers()

    def handle_usr1(self):
        """Reopen log files, here and in every worker."""
        logs.reopen()
        for worker in list(self.workers.values()):
            self.kill_worker(worker, signal.SIGUSR1)

    # -- worker management ------------------------------------------------

    @staticmethod
    def _ports(config):
        """(listener name, port) for every listener the configuration asks for."""
        ports = []
        if not config.imap_only:
            ports += [("smtp", config.smtp_port), ("smtps", config.smtps_port)]
        if not config.smtp_only:
            ports += [("imap", config.imap_port), ("imaps", config.imaps_port)]
        ports.append(("http", config.http_port))
        return [(name, port) for name, port in ports if port]

    @staticmethod
    def _host(config, listener):
        return config.http_host if listener == "http" else config.host

    @classmethod
    def _addresses(cls, config):
        return (config.host, config.http_host, tuple(cls._ports(config)))

    def current_workers(self):
        return [w for w in self.workers.values()
                if w.generation == self.generation and not w.stopping]

    def tell_systemd_ready(self):
        """READY=1 once, when every worker of the first generation is serving (sdnotify.py)."""
        if self.told_ready:
            return
        workers = self.current_workers()
        if len(workers) >= self.num_workers and all(w.heartbeat.notified() for w in workers):
            self.told_ready = True
            sdnotify.notify("READY=1", f"STATUS=serving with {len(workers)} workers",
                            f"MAINPID={self.master_pid}")

    def publish_status(self):
        """With --http-port: what /health reports of the master (httpapi.py reads it)."""
        if self.config.http_port:
            running = len(self.current_workers())
            httpstatus.write(running, self.num_workers)
            metrics.get().workers.set(running)

    def manage_workers(self):
        """Bring the current generation to num_workers: spawn or retire."""
        for worker in self.current_workers():
            if worker.slot >= self.num_workers:
                self.kill_worker(worker, signal.SIGTERM)
        self.spawn_workers()
        self.close_idle_slots()

    def spawn_workers(self):
        """Spawn a worker for every slot below num_workers that has none."""
        busy = {w.slot for w in self.current_workers()}
        now = time.monotonic()
        for slot in range(self.num_workers):
            if slot in busy:
                continue
            if slot not in self.slots:
                try:
                    self.slots[slot] = Slot(self.bind_slot(self.config))
                except HaltServer as exc:
                    log.error("cannot add worker: %s", exc.reason)
                    self.num_workers = slot
                    return
            if self.slots[slot].not_before > now:
                continue
            self.spawn_worker(slot)

    def spawn_worker(self, slot):
        heartbeat = Heartbeat()
        if self.config.user or self.config.group:
            heartbeat.chown(self.config.user, self.config.group)
        pid = os.fork()
        if pid:
            self.workers[pid] = WorkerProcess(pid, slot, self.generation, heartbeat)
            log.info("worker %d started in slot %d", pid, slot)
            return pid
        # -- in the child --
        status = WORKER_BOOT_ERROR
        try:
            self._close_inherited(slot, heartbeat)
            from geomail import worker
            status = worker.run(self.config, slot, self.slots[slot].listeners,
                                heartbeat, self.master_pid)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            log.exception("worker failed to boot")
        finally:
            os._exit(status)

    def _close_inherited(self, slot, heartbeat):
        """In a new worker: drop what belongs to the master or other workers."""
        for fd in self.pipe:
            os.close(fd)
        retired = list((self.retired_slots or {}).values())
        for entry in list(self.slots.values()) + retired:
            if entry is self.slots.get(slot):
                continue
            for sock in entry.listeners.values():
                sock.close()
        for worker in self.workers.values():
            if worker.heartbeat is not heartbeat:
                worker.heartbeat.close()
        for name in self.SIGNALS:
            signal.signal(getattr(signal, "SIG" + name), signal.SIG_DFL)

    def reap_workers(self):
        """Collect dead workers; a worker dying young delays its respawn."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            worker.heartbeat.close()
            metrics.process_gone(pid)
            code = os.waitstatus_to_exitcode(status)
            if code == WORKER_BOOT_ERROR:
                raise HaltServer("a worker failed to boot (see the log above)", WORKER_BOOT_ERROR)
            if worker.stopping:
                log.info("worker %d (slot %d) exited", pid, worker.slot)
            else:
                log.warning("worker %d (slot %d) died: %s", pid, worker.slot, _describe(code))
                self.note_death(worker)

    def note_death(self, worker):
        slot = self.slots.get(worker.slot)
        if slot is None or worker.generation != self.generation:
            return
        if time.monotonic() - worker.started < YOUNG:
            slot.backoff = min(BACKOFF_MAX, max(BACKOFF_FIRST, slot.backoff * 2))
            log.warning("slot %d: respawning in %.1f s", worker.slot, slot.backoff)
        else:
            slot.backoff = 0.0
        slot.not_before = time.monotonic() + slot.backoff

    def murder_workers(self):
        """Kill workers whose heartbeat is late: SIGABRT first, SIGKILL next."""
        timeout = self.config.worker_timeout
        for worker in list(self.workers.values()):
            if worker.stopping:
                continue
            try:
                late = worker.heartbeat.age() > timeout
            except OSError:
                continue
            if not late:
                continue
            if not worker.aborted:
                log.critical("worker %d timed out (no heartbeat for %.0f s): SIGABRT",
                             worker.pid, timeout)
                worker.aborted = True
                self.kill_worker(worker, signal.SIGABRT)
            else:
                self.kill_worker(worker, signal.SIGKILL)

    def close_idle_slots(self):
        """Close listeners of slots no worker uses any more (after TTOU, HUP)."""
        used = {w.slot for w in self.workers.values()}
        for slot in list(self.slots):
            if slot >= self.num_workers and slot not in used:
                for sock in self.slots.pop(slot).listeners.values():
                    sock.close()
        if self.retired_slots and not any(
                w.generation < self.generation for w in self.workers.values()):
            for entry in self.retired_slots.values():
                for sock in entry.listeners.values():
                    sock.close()
            self.retired_slots = None

    def kill_worker(self, worker, sig):
        if sig in (signal.SIGTERM, signal.SIGQUIT):
            worker.stopping = True
        try:
            os.kill(worker.pid, sig)
        except ProcessLookupError:
            pass

    # -- stopping ---------------------------------------------------------

    def stop(self, graceful=True):
        """Stop every worker; graceful waits for in-flight work, bounded."""
        sig = signal.SIGTERM if graceful else signal.SIGQUIT
        limit = time.monotonic() + (self.config.graceful_timeout + 5 if graceful else 5)
        for worker in list(self.workers.values()):
            self.kill_worker(worker, sig)
        while self.workers and time.monotonic() < limit:
            self.reap_quietly()
            time.sleep(0.05)
        for worker in list(self.workers.values()):
            self.kill_worker(worker, signal.SIGKILL)
        while self.workers:
            self.reap_quietly()
            time.sleep(0.01)

    def reap_quietly(self):
        try:
            while True:
                pid, _ = os.waitpid(-1, os.WNOHANG)
                if not pid:
                    return
                worker = self.workers.pop(pid, None)
                if worker:
                    worker.heartbeat.close()
        except ChildProcessError:
            self.workers.clear()

    def halt(self, reason=None, exit_status=0):
        """Stop everything, remove the pidfile, log why."""
        sdnotify.notify("STOPPING=1")
        metrics.remove_multiprocess_dir()
        if self.workers:
            self.stop(graceful=True)
        if self.pidfile is not None:
            self.pidfile.unlink()
        self.halt_reason = reason
        if reason:
            log.error("geomail stopped: %s", reason)
        else:
            log.info("geomail stopped")


def _port_option(listener):
    """The flag and variable that set a listener's port: --smtp-port (MAIL_SMTP_PORT)."""
    option = configuration.OPTIONS_BY_NAME[listener + "_port"]
    return f"{option.flag} ({option.env_name})"


def _describe(code):
    if code < 0:
        return f"killed by signal {signal.Signals(-code).name}"
    return f"exit code {code}"
