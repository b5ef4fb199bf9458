"""Every metric geomail exports, defined once (Prometheus, via prometheus-client).

With ``--http-port`` the master points ``PROMETHEUS_MULTIPROC_DIR`` at a
directory of its own before it forks (``enable_multiprocess``), so each
worker's values live in small memory-mapped files there and ``/metrics``,
served by any worker, adds up every process, the way gunicorn's workers do it
(prometheus-client's multiprocess mode).  Without ``--http-port`` the
metrics are plain in-process counters that nobody reads: an increment costs
a lock and an addition, so the code paths do not branch on it.

The environment variable must be set before ``prometheus_client`` is first
imported in a process, which is why this module imports it lazily and the
master calls ``enable_multiprocess`` before any worker exists.
"""

import os
import shutil
import tempfile
import time

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Latency buckets, seconds: SMTP replies and IMAP commands are milliseconds when all
# is well and seconds when storage is slow.
LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

_metrics = None


def enable_multiprocess(owner=(None, None)):
    """Master, before forking: a fresh directory for the workers' value files
    (``owner``: the (uid, gid) workers run as, or Nones)."""
    directory = tempfile.mkdtemp(prefix="geomail-metrics-")
    uid, gid = owner
    if uid is not None or gid is not None:
        os.chown(directory, -1 if uid is None else uid, -1 if gid is None else gid)
    os.environ[MULTIPROC_ENV] = directory
    return directory


def remove_multiprocess_dir():
    directory = os.environ.pop(MULTIPROC_ENV, None)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)


def process_gone(pid):
    """Master, when a worker has exited: its live gauges (open connections) stop counting."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(pid)


class _Metrics:
    def __init__(self):
        from prometheus_client import Counter, Gauge, Histogram
        self.smtp_sessions = Counter("geomail_smtp_sessions", "SMTP connections served")
        self.smtp_messages = Counter("geomail_smtp_messages_stored",
                                     "Messages stored (250 sent after COMMIT)")
        self.smtp_refused = Counter("geomail_smtp_refused",
                                    "SMTP replies 4xx/5xx, by reason (the reply's name)",
                                    ["reason"])
        self.smtp_bytes = Counter("geomail_smtp_received_bytes", "Message bytes received")
        self.smtp_time_to_250 = Histogram("geomail_smtp_time_to_250_seconds",
                                          "End of data to the 250 (storing the message)",
                                          buckets=LATENCY)
        self.imap_sessions = Counter("geomail_imap_sessions", "IMAP connections served")
        self.imap_commands = Counter("geomail_imap_commands", "IMAP commands, by name and result",
                                     ["command", "result"])
        self.imap_command_seconds = Histogram("geomail_imap_command_seconds",
                                              "IMAP command latency, by name", ["command"],
                                              buckets=LATENCY)
        self.connections_open = Gauge("geomail_connections_open",
                                      "Connections open now, by protocol", ["protocol"],
                                      multiprocess_mode="livesum")
        self.store_seconds = Histogram("geomail_store_connection_seconds",
                                       "Time a store connection was held (its queries), by use",
                                       ["use"], buckets=LATENCY)
        self.store_pool_wait = Histogram("geomail_store_pool_wait_seconds",
                                         "Time spent waiting for a free store connection",
                                         buckets=LATENCY)
        self.store_errors = Counter("geomail_store_errors", "Store failures, by kind", ["kind"])
        self.blob_seconds = Histogram("geomail_blob_request_seconds",
                                      "Blob-store request latency, by operation", ["operation"],
                                      buckets=LATENCY)
        self.blob_errors = Counter("geomail_blob_errors", "Blob-store failures, by operation",
                                   ["operation"])
        self.attachment_disk_cache = Counter(
            "geomail_attachment_disk_cache",
            "Attachment disk cache: reads (hit, miss, corrupt), writes of objects (write) "
            "and of base64 wire forms (wire_write), bytes evicted",
            ["event"])
        self.janitor_actions = Counter("geomail_janitor_actions",
                                       "Janitor work: intents settled, objects removed",
                                       ["action"])
        self.workers = Gauge("geomail_workers", "Workers the master runs now",
                             multiprocess_mode="max")


def get():
    """The process's metrics (created on first use, after the environment is final)."""
    global _metrics
    if _metrics is None:
        _metrics = _Metrics()
    return _metrics


class timer:
    """``with metrics.timer(histogram):`` observes the block's duration in seconds."""

    __slots__ = ("histogram", "started")

    def __init__(self, histogram):
        self.histogram = histogram

    def __enter__(self):
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.histogram.observe(time.monotonic() - self.started)
        return False


def exposition():
    """(content type, body) of /metrics: every process's values added up."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        from prometheus_client import multiprocess
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        from prometheus_client import REGISTRY as registry
    return CONTENT_TYPE_LATEST, generate_latest(registry)
